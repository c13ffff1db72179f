//! The seed corpus: small files of each format as sinew itself writes them (and a few
//! written by hand for what sinew reads but does not write: `f16`, `bf16` and `i32`
//! safetensors, gzip IDX). `tests/corpus.rs` checks that `corpus/` holds exactly these,
//! and regenerates them when run with `--ignored`.

use std::collections::BTreeMap;
use std::io::Write;

use sinew_autograd::Var;
use sinew_nn::{Forward, Module};
use sinew_optim::{CosineAnnealingLr, Optimizer, Scheduler, Sgd};
use sinew_serialize::{Checkpoint, write_safetensors};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::{Loss, ModelCheckpoint, Trainer, Verbosity};

use crate::{fixed_model, fixed_optimizer};

/// One seed file: the target it feeds, its file name, its bytes.
pub struct Seed {
    /// The fuzz target (a folder of `corpus/`).
    pub target: &'static str,
    /// The file name.
    pub name: &'static str,
    /// The contents.
    pub bytes: Vec<u8>,
}

fn seed(target: &'static str, name: &'static str, bytes: Vec<u8>) -> Seed {
    Seed { target, name, bytes }
}

/// A checkpoint's payload: the bytes between the 28-byte header and the 4-byte CRC.
fn payload(file: &[u8]) -> Vec<u8> {
    file[28..file.len() - 4].to_vec()
}

/// [`fixed_model`] after two Adam steps under a cosine schedule, with an `f64` and an
/// `i64` tensor added, the data generator's state and metadata.
fn adam_checkpoint() -> Checkpoint {
    let model = fixed_model();
    let mut opt = fixed_optimizer(&model);
    let mut sched = Scheduler::new(CosineAnnealingLr { t_max: 10, eta_min: 0.0 }, &mut opt);
    let mut g = Generator::new(3);
    for _ in 0..2 {
        let x = Var::constant(Tensor::randn_with(&[4, 3], DType::F32, &mut g));
        let loss = model.forward(&x).square().mean_all();
        opt.step(&loss.backward());
        sched.step(&mut opt);
    }
    Checkpoint {
        optimizer: Some(opt.state()),
        scheduler: Some(sched.state()),
        epoch: 1,
        step: 2,
        rng: Some(g.state()),
        metadata: BTreeMap::from([("note".into(), "seed".into())]),
        ..Checkpoint::new(&model)
    }
}

/// [`fixed_model`] with SGD's state: resuming it into Adam is refused.
fn sgd_checkpoint() -> Checkpoint {
    let model = fixed_model();
    let opt = Sgd::momentum(model.parameters(), 0.1, 0.9);
    Checkpoint { optimizer: Some(opt.state()), ..Checkpoint::new(&model) }
}

/// The checkpoint `Trainer::fit` writes after one epoch of [`fixed_model`] (with the
/// trainer's metadata: seed, history, callback states).
fn trainer_checkpoint() -> Vec<u8> {
    let mut g = Generator::new(11);
    let x = Tensor::randn_with(&[8, 3], DType::F32, &mut g);
    let y = Tensor::from_vec((0..8i64).map(|i| i % 2).collect::<Vec<_>>(), &[8]).unwrap();
    let model = fixed_model();
    let mut opt = fixed_optimizer(&model);
    let path = std::env::temp_dir().join(format!("sinew-fuzz-seed-{}.sinew", std::process::id()));
    Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .epochs(1)
        .batch_size(4)
        .seed(1)
        .callback(ModelCheckpoint::new(&path))
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    let bytes = std::fs::read(&path).expect("the trainer wrote its checkpoint");
    std::fs::remove_file(&path).ok();
    bytes
}

fn idx(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        f.extend(d.to_be_bytes());
    }
    f.extend_from_slice(data);
    f
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A safetensors file of the types sinew reads but does not write, with no order in its
/// metadata.
fn foreign_safetensors() -> Vec<u8> {
    let header = concat!(
        r#"{"__metadata__":{"format":"pt"},"#,
        r#""half":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"#,
        r#""brain":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},"#,
        r#""ints":{"dtype":"I32","shape":[2],"data_offsets":[14,22]}}"#
    );
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7e]); // 1, -2, tiny, NaN
    out.extend([0x80, 0x3f, 0x00, 0xc0, 0x80, 0x7f]); // 1, -2, inf
    out.extend([7, 0, 0, 0, 0xf9, 0xff, 0xff, 0xff]); // 7, -7
    out
}

/// PyTorch's own files (tests/fixtures/torch/, written by gen_torch.py): the zip format,
/// protocol 4, deflated entries, and the legacy format.
fn torch_files() -> [(&'static str, &'static [u8]); 7] {
    [
        ("mlp.pt", include_bytes!("../../tests/fixtures/torch/mlp.pt")),
        ("checkpoint.pt", include_bytes!("../../tests/fixtures/torch/checkpoint.pt")),
        ("dtypes.pt", include_bytes!("../../tests/fixtures/torch/dtypes.pt")),
        ("views.pt", include_bytes!("../../tests/fixtures/torch/views.pt")),
        ("protocol4.pt", include_bytes!("../../tests/fixtures/torch/protocol4.pt")),
        ("deflated.pt", include_bytes!("../../tests/fixtures/torch/deflated.pt")),
        ("views_legacy.pt", include_bytes!("../../tests/fixtures/torch/views_legacy.pt")),
    ]
}

/// A tensor of [`tensor_dict_pickle`]: name, storage type, storage key, the storage's
/// element count, size, stride, storage offset.
type PickledTensor<'a> = (&'a str, &'a str, u8, u32, &'a [u32], &'a [u32], u32);

/// A pickle of `{name: tensor}` for each tensor, as torch.save writes one (protocol 2),
/// for `torch_pickle`'s fixed storages.
fn tensor_dict_pickle(tensors: &[PickledTensor<'_>]) -> Vec<u8> {
    let int = |v: u32| [&[b'J'][..], &v.to_le_bytes()].concat();
    let tuple = |vs: &[u32]| {
        let mut t = vec![b'('];
        for &v in vs {
            t.extend(int(v));
        }
        t.push(b't');
        t
    };
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(".to_vec();
    for &(name, storage, key, numel, size, stride, offset) in tensors {
        p.push(b'X');
        p.extend((name.len() as u32).to_le_bytes());
        p.extend(name.as_bytes());
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n");
        p.extend(storage.as_bytes());
        p.extend(b"\nX\x01\x00\x00\x00");
        p.push(b'0' + key);
        p.extend(b"X\x03\x00\x00\x00cpu");
        p.extend(int(numel));
        p.extend(b"tQ");
        p.extend(int(offset));
        p.extend(tuple(size));
        p.extend(tuple(stride));
        p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend(b"u.");
    p
}

/// The data.pkl of a torch.save zip file.
fn data_pkl(file: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(file)).expect("a fixture zip");
    let name = z.file_names().map(|n| n.unwrap().into_owned()).find(|n| n.ends_with("/data.pkl")).unwrap();
    let mut out = Vec::new();
    z.by_name(&name).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Every seed file.
pub fn all() -> Vec<Seed> {
    let default = Checkpoint::default().to_bytes().unwrap();
    let adam = adam_checkpoint().to_bytes().unwrap();
    let sgd = sgd_checkpoint().to_bytes().unwrap();
    let trainer = trainer_checkpoint();
    let model = fixed_model();
    let dtypes = vec![
        ("f32".to_string(), Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3])),
        ("f64".to_string(), Tensor::from_vec(vec![1.5f64, -0.0, 1e300], &[3]).unwrap()),
        ("i64".to_string(), Tensor::from_vec(vec![i64::MIN, 0, i64::MAX], &[3, 1]).unwrap()),
        ("scalar".to_string(), Tensor::scalar(2.5f32)),
        ("empty".to_string(), Tensor::zeros(&[0, 4])),
    ];
    let pixels: Vec<u8> = (0..4 * 6 * 6).map(|i| (i * 37 % 256) as u8).collect();
    let images = idx(0x08, &[4, 6, 6], &pixels);
    let f32s: Vec<u8> = (0..6).flat_map(|i| (i as f32 - 2.5).to_be_bytes()).collect();
    let i16s: Vec<u8> = [-300i16, 0, 300, 32767].iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut seeds = vec![
        seed("checkpoint_from_bytes", "default.sinew", default.clone()),
        seed("checkpoint_from_bytes", "adam_cosine.sinew", adam.clone()),
        seed("checkpoint_from_bytes", "sgd.sinew", sgd.clone()),
        seed("checkpoint_from_bytes", "trainer.sinew", trainer.clone()),
        seed("checkpoint_payload", "default.bin", payload(&default)),
        seed("checkpoint_payload", "adam_cosine.bin", payload(&adam)),
        seed("checkpoint_payload", "sgd.bin", payload(&sgd)),
        seed("checkpoint_payload", "trainer.bin", payload(&trainer)),
        seed("read_safetensors", "model.safetensors", write_safetensors(&model.state_dict()).unwrap()),
        seed("read_safetensors", "dtypes.safetensors", write_safetensors(&dtypes).unwrap()),
        seed("read_safetensors", "f16_bf16_i32.safetensors", foreign_safetensors()),
        seed("read_idx_bytes", "images.idx", images.clone()),
        seed("read_idx_bytes", "images.idx.gz", gzip(&images)),
        seed("read_idx_bytes", "labels.idx", idx(0x08, &[4], &[5, 0, 4, 1])),
        seed("read_idx_bytes", "f32.idx", idx(0x0D, &[2, 3], &f32s)),
        seed("read_idx_bytes", "i16.idx.gz", gzip(&idx(0x0B, &[2, 2], &i16s))),
        seed(
            "torch_pickle",
            "views.pkl",
            tensor_dict_pickle(&[
                // (name, storage type, key, numel, size, stride, offset) over 256-byte storages
                ("w", "FloatStorage", 0, 64, &[4, 8], &[8, 1], 0),
                ("w_t", "FloatStorage", 0, 64, &[8, 4], &[1, 8], 0),
                ("row", "FloatStorage", 0, 64, &[8], &[1], 16),
                ("expanded", "DoubleStorage", 1, 32, &[3, 4], &[0, 1], 2),
                ("half", "HalfStorage", 2, 128, &[2, 2, 2], &[16, 4, 1], 3),
                ("mask", "BoolStorage", 3, 256, &[16], &[16], 0),
                ("ids", "LongStorage", 4, 32, &[], &[], 31),
            ]),
        ),
        seed("torch_pickle", "mlp.pkl", data_pkl(torch_files()[0].1)),
        seed("torch_pickle", "checkpoint.pkl", data_pkl(torch_files()[1].1)),
        seed("torch_pickle", "protocol4.pkl", data_pkl(torch_files()[4].1)),
        // the first byte picks the options (see `csv_options`)
        seed(
            "read_csv_bytes",
            "iris_header.csv",
            b"\x01a,b,c,d,class\n5.1,3.5,1.4,0.2,0\n6.3,2.9,5.6,1.8,2\n".to_vec(),
        ),
        seed(
            "read_csv_bytes",
            "semicolon_regression.csv",
            b"\x2by;x1;\"x 2\"\r\n0.25;1e-3;\"4\"\r\n\r\n-1.5; inf ;NaN\r\n".to_vec(),
        ),
        seed("read_csv_bytes", "no_target.csv", b"\x10\"1\",\"2\"\n3,4\n\n5,6".to_vec()),
    ];
    seeds.extend(torch_files().into_iter().map(|(name, bytes)| seed("read_torch", name, bytes.to_vec())));
    seeds
}
