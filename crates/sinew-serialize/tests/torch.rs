//! PyTorch's `torch.save` files (tests/fixtures/torch/, written by its gen_torch.py):
//! every tensor reads bit for bit equal to its safetensors copy, the models reproduce
//! PyTorch's outputs, a checkpoint's parts are reached by key, and hostile or broken
//! files (globals that would run code, zip bombs, escaping paths, truncations, random
//! mutations, deep nesting, huge declared lengths) are errors naming the problem, never
//! panics.

use sinew_autograd::Var;
use sinew_nn::{BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Forward, Gru, Linear, Lstm, MaxPool2d, Relu};
use sinew_nn::{RecurrentOptions, Sequential};
use sinew_serialize::{
    SerializeError, TorchValue, load_module, read_safetensors, read_torch, read_torch_object,
};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

macro_rules! fixture {
    ($name:literal) => {
        &include_bytes!(concat!("../../../tests/fixtures/torch/", $name))[..]
    };
}

fn interop(name: &str) -> Vec<(String, Tensor)> {
    let bytes = match name {
        "mlp_io" => &include_bytes!("../../../tests/fixtures/interop/mlp_io.safetensors")[..],
        "cnn_io" => &include_bytes!("../../../tests/fixtures/interop/cnn_io.safetensors")[..],
        "lstm_io" => &include_bytes!("../../../tests/fixtures/interop/lstm_io.safetensors")[..],
        "rnn_bn_io" => fixture!("rnn_bn_io.safetensors"),
        other => panic!("no fixture {other}"),
    };
    read_safetensors(bytes).unwrap()
}

fn get<'a>(tensors: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &tensors.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no tensor {name}")).1
}

/// The `.pt` file's tensors are its safetensors copy's, bit for bit: same names, dtypes,
/// shapes and bytes.
fn assert_same_as_copy(what: &str, pt: &[u8], copy: &[u8]) {
    let ours = read_torch(pt).unwrap_or_else(|e| panic!("{what}: {e}"));
    let theirs = read_safetensors(copy).unwrap();
    assert_eq!(ours.len(), theirs.len(), "{what}: number of tensors");
    for (name, want) in &theirs {
        let got = ours.get(name).unwrap_or_else(|| panic!("{what}: no tensor {name}"));
        assert_eq!((got.dtype(), got.dims()), (want.dtype(), want.dims()), "{what}: {name}");
        assert_eq!(got.to_le_bytes(), want.to_le_bytes(), "{what}: bytes of {name}");
    }
}

#[test]
fn every_tensor_reads_bit_for_bit_as_its_safetensors_copy() {
    let cases: &[(&str, &[u8], &[u8])] = &[
        ("mlp", fixture!("mlp.pt"), fixture!("mlp.safetensors")),
        ("cnn", fixture!("cnn.pt"), fixture!("cnn.safetensors")),
        ("lstm", fixture!("lstm.pt"), fixture!("lstm.safetensors")),
        ("rnn_bn", fixture!("rnn_bn.pt"), fixture!("rnn_bn.safetensors")),
        ("checkpoint", fixture!("checkpoint.pt"), fixture!("checkpoint.safetensors")),
        ("dtypes", fixture!("dtypes.pt"), fixture!("dtypes.safetensors")),
        ("views", fixture!("views.pt"), fixture!("views.safetensors")),
        ("views_legacy", fixture!("views_legacy.pt"), fixture!("views_legacy.safetensors")),
        // mlp's state dict, written four other ways
        ("legacy", fixture!("legacy.pt"), fixture!("mlp.safetensors")),
        ("protocol4", fixture!("protocol4.pt"), fixture!("mlp.safetensors")),
        ("deflated", fixture!("deflated.pt"), fixture!("mlp.safetensors")),
        ("renamed", fixture!("renamed.pt"), fixture!("mlp.safetensors")),
    ];
    for (what, pt, copy) in cases {
        assert_same_as_copy(what, pt, copy);
    }
}

#[test]
fn a_state_dict_keeps_pytorchs_order() {
    let names: Vec<String> = read_torch(fixture!("cnn.pt")).unwrap().names().map(String::from).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked",
            "5.weight",
            "5.bias"
        ]
    );
}

#[test]
fn dtypes_widen_as_documented() {
    let t = read_torch(fixture!("dtypes.pt")).unwrap();
    let dtype = |n: &str| t.get(n).unwrap().dtype();
    for (name, want) in [
        ("f32", DType::F32),
        ("f64", DType::F64),
        ("f16", DType::F32),
        ("bf16", DType::F32),
        ("i64", DType::I64),
        ("i32", DType::I64),
        ("i16", DType::I64),
        ("i8", DType::I64),
        ("u8", DType::I64),
        ("bool", DType::I64),
    ] {
        assert_eq!(dtype(name), want, "{name}");
    }
    assert_eq!(t.get("scalar").unwrap().dims(), &[] as &[usize]);
    assert_eq!(t.get("scalar").unwrap().to_vec::<f32>(), vec![2.5]);
    assert_eq!(t.get("param").unwrap().to_vec::<f32>(), vec![0.0, 1.0, 2.0, 3.0]);
    assert_eq!(t.get("empty").unwrap().dims(), &[0, 3]);
    let bools = t.get("bool").unwrap().to_vec::<i64>();
    assert!(bools.iter().all(|&b| b == 0 || b == 1));
}

#[test]
fn views_of_one_storage_are_materialised_as_pytorch_sees_them() {
    for bytes in [fixture!("views.pt"), fixture!("views_legacy.pt")] {
        let t = read_torch(bytes).unwrap();
        let v = |n: &str| t.get(n).unwrap().to_vec::<f32>();
        let base: Vec<f32> = (0..24).map(|i| i as f32).collect();
        assert_eq!(v("shared_a"), base);
        assert_eq!(v("shared_b"), base[12..18].to_vec());
        assert_eq!(v("sliced"), vec![8.0, 9.0, 10.0, 14.0, 15.0, 16.0]);
        assert_eq!(t.get("transposed").unwrap().dims(), &[6, 4]);
        assert_eq!(&v("transposed")[..5], &[0.0, 6.0, 12.0, 18.0, 1.0]);
        assert_eq!(&v("strided")[..4], &[0.0, 2.0, 4.0, 6.0]);
        assert_eq!(v("expanded"), [0.0, 1.0, 2.0].repeat(4));
    }
}

/// The `lstm` interop model: a 2-layer batch-first LSTM and a linear head on the last step.
#[derive(sinew_nn::Module)]
struct LstmModel {
    lstm: Lstm,
    head: Linear,
}

impl Forward for LstmModel {
    fn forward(&self, x: &Var) -> Var {
        let out = self.lstm.forward(x);
        self.head.forward(&out.select(1, out.dims()[1] - 1))
    }
}

/// gen_torch.py's `RnnBn`: LSTM(3, 4) -> GRU(4, 5) -> last step -> BatchNorm1d(5) -> Linear(5, 2).
#[derive(sinew_nn::Module)]
struct RnnBn {
    lstm: Lstm,
    gru: Gru,
    bn: BatchNorm1d,
    head: Linear,
}

impl Forward for RnnBn {
    fn forward(&self, x: &Var) -> Var {
        let h = self.gru.forward(&self.lstm.forward(x));
        let last = h.select(1, h.dims()[1] - 1);
        self.head.forward(&self.bn.forward(&last))
    }
}

fn assert_reproduces(what: &str, model: &dyn Forward, io: &[(String, Tensor)]) {
    model.eval();
    let y = model.forward(&Var::constant(get(io, "input").clone()));
    let want = get(io, "output");
    assert!(y.value().allclose(want, 1e-4, 1e-5), "{what}: sinew {} vs PyTorch {want}", y.value());
}

/// Writes `bytes` to a temporary file with `extension` (load_module reads paths).
fn temp_file(stem: &str, extension: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sinew-torch-{stem}-{}.{extension}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn models_load_from_pt_files_and_reproduce_pytorch() {
    let mut g = Generator::new(0);
    let mlp = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 3, &mut g));
    let cnn = Sequential::new()
        .add(Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1), &mut g))
        .add(BatchNorm2d::new(4))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(64, 5, &mut g));
    let lstm = LstmModel {
        lstm: Lstm::new(3, 5, RecurrentOptions::default().num_layers(2).batch_first(true), &mut g),
        head: Linear::new(5, 2, &mut g),
    };
    let rnn_bn = RnnBn {
        lstm: Lstm::new(3, 4, RecurrentOptions::default().batch_first(true), &mut g),
        gru: Gru::new(4, 5, RecurrentOptions::default().batch_first(true), &mut g),
        bn: BatchNorm1d::new(5),
        head: Linear::new(5, 2, &mut g),
    };
    // (what, model, file, its input and output, the extension it is saved under)
    type Case<'a> = (&'a str, &'a dyn Forward, &'a [u8], &'a str, &'a str);
    let cases: [Case<'_>; 6] = [
        ("mlp", &mlp, fixture!("mlp.pt"), "mlp_io", "pt"),
        ("cnn", &cnn, fixture!("cnn.pt"), "cnn_io", "pth"),
        ("lstm", &lstm, fixture!("lstm.pt"), "lstm_io", "bin"),
        ("rnn_bn", &rnn_bn, fixture!("rnn_bn.pt"), "rnn_bn_io", "pt"),
        ("legacy", &mlp, fixture!("legacy.pt"), "mlp_io", "pt"),
        // the format is told by the bytes, not the extension
        ("protocol4", &mlp, fixture!("protocol4.pt"), "mlp_io", "weights"),
    ];
    for (what, model, bytes, io, extension) in cases {
        let path = temp_file(what, extension, bytes);
        let report = load_module(&path, model, true).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(report.is_clean(), "{what}: {report}");
        assert_reproduces(what, model, &interop(io));
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn a_checkpoints_parts_are_reached_by_key() {
    let ckpt = read_torch_object(fixture!("checkpoint.pt")).unwrap();
    assert_eq!(ckpt.get("epoch").and_then(TorchValue::as_int), Some(3));
    assert_eq!(ckpt.get("loss").and_then(TorchValue::as_f64), Some(0.25));
    assert_eq!(ckpt.get("tag").and_then(TorchValue::as_str), Some("run-1"));
    assert!(matches!(ckpt.get("best"), Some(TorchValue::None)));
    assert_eq!(ckpt.get("done").and_then(TorchValue::as_bool), Some(false));
    let history: Vec<f64> =
        ckpt.get("history").unwrap().as_list().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(history, [1.5, 0.75]);
    // the optimizer's state dict, as torch.optim.Adam writes it
    let opt = ckpt.get("optimizer").unwrap();
    let group = &opt.get("param_groups").unwrap().as_list().unwrap()[0];
    assert_eq!(group.get("lr").and_then(TorchValue::as_f64), Some(1e-3));
    let betas: Vec<f64> =
        group.get("betas").unwrap().as_list().unwrap().iter().map(|b| b.as_f64().unwrap()).collect();
    assert_eq!(betas, [0.9, 0.999]);
    let params: Vec<i64> =
        group.get("params").unwrap().as_list().unwrap().iter().map(|p| p.as_int().unwrap()).collect();
    assert_eq!(params, [0, 1, 2, 3]);
    let state = opt.get("state").unwrap().as_dict().unwrap();
    assert_eq!(state.len(), 4);
    assert_eq!(state[0].0.as_int(), Some(0)); // keyed by parameter index
    let exp_avg = state[0].1.get("exp_avg").and_then(TorchValue::as_tensor).unwrap();
    assert_eq!(exp_avg.dims(), &[8, 4]);
    assert_eq!(state[0].1.get("step").and_then(TorchValue::as_tensor).unwrap().to_vec::<f32>(), vec![3.0]);
    // the model part loads into the model
    let mut g = Generator::new(0);
    let mlp = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 3, &mut g));
    let model_state = ckpt.get("model").unwrap().tensors();
    assert!(model_state.load_into(&mlp, true).unwrap().is_clean());
    // read_torch gives every tensor by its path
    let all = read_torch(fixture!("checkpoint.pt")).unwrap();
    assert!(all.get("model.0.weight").is_some() && all.get("optimizer.state.3.exp_avg_sq").is_some());
}

#[test]
fn hostile_pickles_are_refused_by_the_global_they_name() {
    let cases: [(&[u8], &str); 4] = [
        (fixture!("hostile/os_system.pt"), "posix.system"), // os.system, as Python pickles it on Linux
        (fixture!("hostile/builtins_eval.pt"), "builtins.eval"),
        (fixture!("hostile/subprocess_popen.pt"), "subprocess.Popen"),
        (fixture!("hostile/builtin_getattr.pt"), "__builtin__.getattr"),
    ];
    for (bytes, want) in cases {
        match read_torch_object(bytes) {
            Err(SerializeError::ForbiddenGlobal { name }) => assert_eq!(name, want),
            other => panic!("{want}: expected a forbidden-global error, got {other:?}"),
        }
        let msg = read_torch_object(bytes).unwrap_err().to_string();
        assert!(msg.contains(want) && msg.contains("nothing was run"), "{msg}");
    }
}

#[test]
fn a_zip_bomb_and_an_escaping_path_are_named() {
    let err = read_torch_object(fixture!("hostile/zip_bomb.pt")).unwrap_err().to_string();
    assert!(err.contains("zip bomb"), "{err}");
    let err = read_torch_object(fixture!("hostile/path_escape.pt")).unwrap_err().to_string();
    assert!(err.contains("escapes the archive's folder") && err.contains("../../escaped"), "{err}");
}

#[test]
fn every_truncation_is_an_error() {
    for (what, bytes) in [
        ("mlp", fixture!("mlp.pt")),
        ("legacy", fixture!("legacy.pt")),
        ("views_legacy", fixture!("views_legacy.pt")),
    ] {
        for len in 0..bytes.len() {
            assert!(read_torch_object(&bytes[..len]).is_err(), "{what} cut to {len} bytes loaded");
        }
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One to four random edits: a byte set to a random or boundary value, a byte inserted
/// or removed, or a 4-byte run overwritten with a large length.
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len().max(1));
        match rng.below(5) {
            0 | 1 => {
                if let Some(x) = b.get_mut(at) {
                    *x = rng.next() as u8;
                }
            }
            2 => b.insert(at.min(b.len()), [0x00, 0xff, 0x7f, 0x80][rng.below(4)]),
            3 => {
                if at < b.len() {
                    b.remove(at);
                }
            }
            _ => {
                let len = [u32::MAX, 1 << 30, 0x7fff_ffff, 65536][rng.below(4)].to_le_bytes();
                for (i, x) in len.iter().enumerate() {
                    if let Some(y) = b.get_mut(at + i) {
                        *y = *x;
                    }
                }
            }
        }
    }
    b
}

/// A zip archive laid out as torch.save's around `pickle` (stored entries, so a mutated
/// pickle reaches the unpickler with a valid checksum).
fn torch_zip(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("archive/data.pkl", stored).unwrap();
    z.write_all(pickle).unwrap();
    for (key, data) in storages {
        z.start_file(format!("archive/data/{key}"), stored).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
    out.into_inner()
}

/// A torch.save zip file's data.pkl, and its storages by key.
type Unzipped = (Vec<u8>, Vec<(String, Vec<u8>)>);

/// The data.pkl and storages of a torch.save zip file, by the reader of the tests.
fn unzip(bytes: &[u8]) -> Unzipped {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut pickle = Vec::new();
    let mut storages = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if name.ends_with("/data.pkl") {
            pickle = data;
        } else if let Some((_, key)) = name.split_once("/data/") {
            storages.push((key.to_string(), data));
        }
    }
    (pickle, storages)
}

#[test]
fn ten_thousand_mutations_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut loaded = 0;
    // the legacy files are one pickle stream: mutations reach the unpickler and storages
    let streams = [fixture!("legacy.pt"), fixture!("views_legacy.pt")];
    // the zip files' pickles, mutated and re-zipped with valid checksums
    let zipped: Vec<Unzipped> =
        [fixture!("checkpoint.pt"), fixture!("views.pt"), fixture!("dtypes.pt"), fixture!("protocol4.pt")]
            .iter()
            .map(|b| unzip(b))
            .collect();
    for case in 0..10_000 {
        let bytes = match case % 4 {
            0 => mutate(streams[rng.below(2)], &mut rng),
            1 => mutate(fixture!("mlp.pt"), &mut rng),
            _ => {
                let (pickle, storages) = &zipped[rng.below(zipped.len())];
                let storages: Vec<(&str, &[u8])> =
                    storages.iter().map(|(k, d)| (k.as_str(), d.as_slice())).collect();
                torch_zip(&mutate(pickle, &mut rng), &storages)
            }
        };
        let result = std::panic::catch_unwind(|| read_torch_object(&bytes));
        match result {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(e)) => assert!(!e.to_string().is_empty()),
            Err(_) => panic!("case {case} panicked"),
        }
    }
    // some mutations leave a valid file (a changed weight byte); most do not
    assert!(loaded > 0 && loaded < 10_000, "{loaded} of 10000 loaded");
}

/// A legacy stream around `pickle`: magic, protocol 1001, system info, the pickle, no
/// storage keys.
fn legacy(pickle: &[u8]) -> Vec<u8> {
    let mut b =
        vec![0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'];
    b.extend_from_slice(b"\x80\x02M\xe9\x03.");
    b.extend_from_slice(b"\x80\x02}X\x0d\x00\x00\x00little_endian\x88s.");
    b.extend_from_slice(pickle);
    b.extend_from_slice(b"\x80\x02].");
    b
}

#[test]
fn deep_nesting_and_shared_reference_bombs_are_errors() {
    // a million nested empty lists: EMPTY_LIST × n, then APPEND × (n - 1)
    let n = 1_000_000;
    let mut p = vec![b']'; n];
    p.extend(std::iter::repeat_n(b'a', n - 1));
    p.push(b'.');
    let err = read_torch_object(&legacy(&p)).unwrap_err().to_string();
    assert!(err.contains("nests deeper"), "{err}");
    // the same with tuples, which are built bottom-up: ) then TUPLE1 × n
    let mut p = vec![b')'];
    p.extend(std::iter::repeat_n(0x85u8, n));
    p.push(b'.');
    let err = read_torch_object(&legacy(&p)).unwrap_err().to_string();
    assert!(err.contains("nests deeper"), "{err}");
    // "billion laughs": each level a list holding the previous level ten times
    let mut p = b"]q\x00".to_vec();
    for level in 1..40u8 {
        p.push(b'(');
        p.extend(std::iter::repeat_n([b'h', level - 1], 10).flatten());
        p.extend_from_slice(&[b'l', b'q', level]);
    }
    p.push(b'.');
    let err = read_torch_object(&legacy(&p)).unwrap_err().to_string();
    assert!(err.contains("shared references expand"), "{err}");
    // a list holding itself
    let p = b"]q\x00h\x00a.";
    assert!(read_torch_object(&legacy(p)).unwrap_err().to_string().contains("nests deeper"));
}

#[test]
fn huge_declared_lengths_are_errors_before_any_allocation() {
    let cases: [(&[u8], &str); 5] = [
        (b"\x8d\xff\xff\xff\xff\xff\xff\xff\x0f", "BINUNICODE8 declares"),
        (b"\x8e\x00\x00\x00\x00\x00\x00\x00\x40", "BINBYTES8 declares"),
        (b"X\xff\xff\xff\xffabc", "BINUNICODE declares"),
        (b"\x8b\xff\xff\xff\x7f\x01", "LONG4 declares"),
        (b"r\xff\xff\xff\xff.", "on an empty stack"),
    ];
    for (p, want) in cases {
        let err = read_torch_object(&legacy(p)).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
    // a storage declaring 2^60 elements, in a zip and in the legacy format
    let pickle = b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x10tQK\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.";
    let err = read_torch_object(&torch_zip(pickle, &[("0", &[0; 4])])).unwrap_err().to_string();
    assert!(err.contains("holds 4 bytes, but the pickle declares 1152921504606846976 elements"), "{err}");
    let mut stream = legacy(&[]);
    stream.truncate(stream.len() - 4); // drop the empty key list
    stream.extend_from_slice(pickle);
    stream.extend_from_slice(b"\x80\x02]X\x01\x00\x00\x000a.");
    stream.extend_from_slice(&(1u64 << 60).to_le_bytes());
    let err = read_torch_object(&stream).unwrap_err().to_string();
    assert!(err.contains("truncated legacy storage data"), "{err}");
    // a tensor that reaches past its storage
    let short = pickle.replace_bytes(b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x10", b"K\x01");
    let past = short.replace_bytes(b"K\x00K\x01\x85K\x01\x85", b"K\x00K\x02\x85K\x01\x85");
    let err = read_torch_object(&torch_zip(&past, &[("0", &[0; 4])])).unwrap_err().to_string();
    assert!(err.contains("reaches past its storage"), "{err}");
    assert!(read_torch_object(&torch_zip(&short, &[("0", &[0; 4])])).is_ok());
}

trait ReplaceBytes {
    fn replace_bytes(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceBytes for [u8] {
    fn replace_bytes(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self.windows(from.len()).position(|w| w == from).expect("pattern present");
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}

#[test]
fn other_files_are_named() {
    let err = read_torch_object(fixture!("mlp.safetensors")).unwrap_err().to_string();
    assert!(err.contains("not a torch.save file"), "{err}");
    let mut tar = vec![0u8; 600];
    tar[257..262].copy_from_slice(b"ustar");
    assert!(read_torch_object(&tar).unwrap_err().to_string().contains("tar archive"));
    // a zip that is not a torch.save file
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    z.start_file("readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
    z.finish().unwrap();
    let err = read_torch_object(out.get_ref()).unwrap_err().to_string();
    assert!(err.contains("no <folder>/data.pkl"), "{err}");
    // a storage missing from the archive
    let (pickle, _) = unzip(fixture!("mlp.pt"));
    let err = read_torch_object(&torch_zip(&pickle, &[])).unwrap_err().to_string();
    assert!(err.contains("missing from the archive"), "{err}");
}
