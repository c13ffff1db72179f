//! The bodies of sinew's fuzz targets, one public function per target in
//! `fuzz_targets/`, so that they build and run on stable too: `tests/corpus.rs` runs each
//! over its seed corpus (`corpus/TARGET/`) and over seeded mutations of it.
//!
//! Every body returns whether the input loaded. A body panics only when a property of
//! sinew fails: a loader panicking on its input, a loaded value that does not survive a
//! save and reload, or a failed resume that changed the model or the optimizer.

use sinew_nn::{Linear, Module, Relu, Sequential};
use sinew_optim::{Adam, Optimizer};
use sinew_serialize::{CHECKPOINT_MAGIC, CHECKPOINT_VERSION, Checkpoint, crc32, write_safetensors};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::{Loss, ModelCheckpoint, Trainer, Verbosity};

pub mod seeds;

/// `Checkpoint::from_bytes` on the raw input; whatever loads must encode, and decode
/// again to the same checkpoint.
pub fn checkpoint_from_bytes(data: &[u8]) -> bool {
    let Ok(c) = Checkpoint::from_bytes(data) else { return false };
    let again = c.to_bytes().expect("a loaded checkpoint encodes (its names are unique)");
    let back = Checkpoint::from_bytes(&again).expect("a checkpoint sinew wrote loads");
    assert_eq!(back.to_bytes().expect("and encodes"), again, "a checkpoint changed through a save and load");
    true
}

/// Frames `payload` as a checkpoint file of the current version with correct lengths and
/// both checksums, so that the fuzzer's bytes reach the payload decoder.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = CHECKPOINT_MAGIC.to_vec();
    out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let header_crc = crc32(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out
}

/// The model `checkpoint_payload` resumes into: 3 inputs, 4 hidden units, 2 classes.
pub fn fixed_model() -> Sequential {
    let mut g = Generator::new(0);
    Sequential::new().add(Linear::new(3, 4, &mut g)).add(Relu).add(Linear::new(4, 2, &mut g))
}

/// The optimizer `checkpoint_payload` resumes into.
pub fn fixed_optimizer(model: &Sequential) -> Adam {
    Adam::new(model.parameters(), 0.01)
}

/// Every value of a state dict, bit for bit.
fn bits(model: &dyn Module) -> Vec<(String, Vec<usize>, Vec<u64>)> {
    model.state_dict().into_iter().map(|(n, t)| (n, t.dims().to_vec(), tensor_bits(&t))).collect()
}

fn tensor_bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t.to_vec::<f32>().into_iter().map(|v| v.to_bits() as u64).collect(),
        DType::F64 => t.to_vec::<f64>().into_iter().map(f64::to_bits).collect(),
        DType::I64 => t.to_vec::<i64>().into_iter().map(|v| v as u64).collect(),
    }
}

/// The input as a checkpoint payload in valid framing ([`frame`]); on success,
/// `Trainer::resume_from_checkpoint` with [`fixed_model`] and [`fixed_optimizer`].
/// Returns whether the resume succeeded. A refused resume must leave the model and the
/// optimizer exactly as they were.
pub fn checkpoint_payload(payload: &[u8]) -> bool {
    let Ok(c) = Checkpoint::from_bytes(&frame(payload)) else { return false };
    let model = fixed_model();
    let mut opt = fixed_optimizer(&model);
    let (model_before, opt_before) = (bits(&model), opt.state());
    // the callbacks of the run that wrote the seeds (`src/seeds.rs`): a checkpoint with
    // callback states resumes only into a trainer that has them; nothing is written
    let unused = std::env::temp_dir().join("sinew-fuzz-never-written.sinew");
    let result = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .verbosity(Verbosity::Quiet)
        .callback(ModelCheckpoint::new(unused))
        .resume_from_checkpoint(&c)
        .map(drop);
    match result {
        Ok(()) => true,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(opt.state() == opt_before, "a refused resume ({e}) changed the optimizer");
            assert!(bits(&model) == model_before, "a refused resume ({e}) changed the model");
            false
        }
    }
}

/// `read_safetensors` on the input; whatever loads must save and load again unchanged
/// (names, order, dtypes, shapes, values bit for bit).
pub fn read_safetensors(data: &[u8]) -> bool {
    let Ok(tensors) = sinew_serialize::read_safetensors(data) else { return false };
    let bytes = write_safetensors(&tensors).expect("loaded names are unique");
    let back = sinew_serialize::read_safetensors(&bytes).expect("what sinew writes, it reads");
    assert_eq!(tensors.len(), back.len());
    for ((n1, t1), (n2, t2)) in tensors.iter().zip(&back) {
        assert_eq!((n1, t1.dtype(), t1.dims()), (n2, t2.dtype(), t2.dims()));
        assert!(tensor_bits(t1) == tensor_bits(t2), "{n1:?} changed through a save and load");
    }
    true
}

/// `read_torch_object` on the raw input (a zip archive or a legacy stream); whatever
/// loads gives its tensors, which survive a safetensors save and load bit for bit.
pub fn read_torch(data: &[u8]) -> bool {
    let Ok(value) = sinew_serialize::read_torch_object(data) else { return false };
    let tensors = value.tensors();
    let bytes = write_safetensors(tensors.as_slice()).expect("tensors() gives unique names");
    let back = sinew_serialize::read_safetensors(&bytes).expect("what sinew writes, it reads");
    assert_eq!(tensors.len(), back.len());
    for ((n1, t1), (n2, t2)) in tensors.iter().zip(&back) {
        assert_eq!((n1, t1.dtype(), t1.dims()), (n2.as_str(), t2.dtype(), t2.dims()));
        assert!(tensor_bits(t1) == tensor_bits(t2), "{n1:?} changed through a save and load");
    }
    true
}

/// Bytes of each storage [`torch_pickle`] puts beside the pickle: 64 `f32`s, 32 `f64`s, ...
pub const TORCH_STORAGE_BYTES: usize = 256;
/// The storage keys [`torch_pickle`] provides: `0` to `7`.
pub const TORCH_STORAGE_KEYS: usize = 8;

/// A torch.save zip archive around `pickle` (stored entries, checksums right), with the
/// storages `0` to `7`, each [`TORCH_STORAGE_BYTES`] bytes of a fixed pattern.
pub fn torch_zip(pickle: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("archive/data.pkl", stored).expect("in memory");
    z.write_all(pickle).expect("in memory");
    for key in 0..TORCH_STORAGE_KEYS {
        z.start_file(format!("archive/data/{key}"), stored).expect("in memory");
        let data: Vec<u8> = (0..TORCH_STORAGE_BYTES).map(|i| (i * 7 + key * 31) as u8).collect();
        z.write_all(&data).expect("in memory");
    }
    z.finish().expect("in memory");
    out.into_inner()
}

/// The input as the `data.pkl` of a torch.save archive ([`torch_zip`]): every input
/// reaches the unpickler, and pickles naming the provided storages reach the tensor views.
pub fn torch_pickle(pickle: &[u8]) -> bool {
    read_torch(&torch_zip(pickle))
}

/// `read_idx_bytes` on the input, with the file's own element type and as `f32`.
pub fn read_idx_bytes(data: &[u8]) -> bool {
    let mut loaded = false;
    for dtype in [None, Some(DType::F32)] {
        if let Ok(t) = sinew_data::read_idx_bytes(data, dtype) {
            assert!(t.ndim() >= 1, "an IDX tensor of {} dimensions", t.ndim());
            if let Some(d) = dtype {
                assert_eq!(t.dtype(), d);
            }
            loaded = true;
        }
    }
    loaded
}

/// `read_csv_bytes` on the input after its first byte, which picks the options: bit 0 a
/// header, bits 1-2 the delimiter (`,` `;` tab `|`), bits 3-4 the target column (last,
/// first, none, second), bit 5 an `f64` target, bit 6 `f64` features, bit 7 features
/// `[0, -1]` only.
pub fn read_csv_bytes(data: &[u8]) -> bool {
    let Some((&options, text)) = data.split_first() else { return false };
    let opts = csv_options(options);
    let Ok(d) = sinew_data::read_csv_bytes(text, &opts) else { return false };
    let rows = d.features.dims()[0];
    assert_eq!(d.features.ndim(), 2);
    assert_eq!(d.features.dtype(), opts.feature_dtype);
    match (&d.targets, opts.target) {
        (Some(t), Some(_)) => assert_eq!((t.dims(), t.dtype()), (&[rows][..], opts.target_dtype)),
        (None, None) => {}
        (t, want) => panic!("targets {:?} for target option {want:?}", t.as_ref().map(Tensor::dims)),
    }
    true
}

/// The CSV options the first byte of a `read_csv_bytes` input picks.
pub fn csv_options(bits: u8) -> sinew_data::CsvOptions {
    let mut o = sinew_data::CsvOptions::new()
        .header(bits & 1 != 0)
        .delimiter([b',', b';', b'\t', b'|'][(bits >> 1 & 3) as usize])
        .target([Some(-1), Some(0), None, Some(1)][(bits >> 3 & 3) as usize]);
    if bits & 0x20 != 0 {
        o = o.target_dtype(DType::F64);
    }
    if bits & 0x40 != 0 {
        o = o.feature_dtype(DType::F64);
    }
    if bits & 0x80 != 0 {
        o = o.features([0, -1]);
    }
    o
}
