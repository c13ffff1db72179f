//! sinew's native checkpoint: a model's state dict with the optimizer, scheduler, RNG and
//! progress needed to resume training exactly, in one checksummed file.
//!
//! The byte layout is documented on [`Checkpoint`].

use std::collections::{BTreeMap, HashSet};
use std::marker::PhantomData;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};
use sinew_optim::{OptimizerState, SchedulerState};
use sinew_tensor::{DType, GeneratorState, Tensor};

use crate::atomic::write_atomic;
use crate::crc32::crc32;
use crate::error::{Result, SerializeError};
use crate::guard::GuardedSeed;
use crate::state_dict::StateDict;

/// The first eight bytes of every sinew checkpoint.
///
/// ```
/// use sinew_serialize::{CHECKPOINT_MAGIC, Checkpoint};
/// assert!(Checkpoint::default().to_bytes()?.starts_with(&CHECKPOINT_MAGIC));
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"SINEWCKP";

/// The checkpoint format version this build writes and reads (bytes 8..12 of the file).
///
/// ```
/// use sinew_serialize::{CHECKPOINT_VERSION, Checkpoint};
/// let bytes = Checkpoint::default().to_bytes()?;
/// assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), CHECKPOINT_VERSION);
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
pub const CHECKPOINT_VERSION: u32 = 1;

/// Bytes before the payload: magic, version, flags, payload length, header CRC.
const HEADER_LEN: usize = 28;
/// Bytes after the payload: its CRC.
const TRAILER_LEN: usize = 4;

/// Everything needed to resume training: the model's state dict, the optimizer's and the
/// scheduler's state, progress counters, the data generator's state and free-form
/// metadata. Saved atomically; loading verifies magic, version, lengths and checksums
/// before decoding anything, and checks every tensor's shape against its data.
///
/// # File format
///
/// Version 1; all integers little-endian.
///
/// | offset | bytes | field |
/// | --- | --- | --- |
/// | 0 | 8 | magic `SINEWCKP` |
/// | 8 | 4 | format version, `u32` (1) |
/// | 12 | 4 | flags, `u32`, reserved (0) |
/// | 16 | 8 | payload length `P`, `u64` |
/// | 24 | 4 | CRC-32 of bytes 0..24 |
/// | 28 | `P` | payload: bincode 2 (standard configuration: varint integers) |
/// | 28 + `P` | 4 | CRC-32 of the payload |
///
/// The magic and version (bytes 0..12) are the same for every version; the rest is
/// version 1's. The payload is, in this order: the state dict (a sequence of tensors, each
/// name, dtype tag `0` f32 / `1` f64 / `2` i64, shape as `u64`s, raw little-endian data as
/// a byte string), the optimizer state (`Option<OptimizerState>`), the scheduler state
/// (`Option<SchedulerState>`), epoch and step (`u64`), the RNG state (`Option` of seed
/// `[u8; 32]`, stream `u64`, word position `u128`) and the metadata (string map).
///
/// # Example
///
/// ```
/// use sinew_autograd::Var;
/// use sinew_nn::{Forward, Linear, Module};
/// use sinew_optim::{Adam, CosineAnnealingLr, Optimizer, Scheduler};
/// use sinew_serialize::Checkpoint;
/// use sinew_tensor::{DType, Generator, Tensor};
///
/// let mut data = Generator::new(7);
/// let model = Linear::new(3, 1, &mut Generator::new(0));
/// let mut opt = Adam::new(model.parameters(), 0.01);
/// let mut sched = Scheduler::new(CosineAnnealingLr { t_max: 10, eta_min: 0.0 }, &mut opt);
/// let x = Var::constant(Tensor::randn_with(&[8, 3], DType::F32, &mut data));
/// let loss = model.forward(&x).square().mean_all();
/// opt.step(&loss.backward());
/// sched.step(&mut opt);
///
/// let ckpt = Checkpoint {
///     optimizer: Some(opt.state()),
///     scheduler: Some(sched.state()),
///     step: 1,
///     rng: Some(data.state()),
///     ..Checkpoint::new(&model)
/// };
/// let path = std::env::temp_dir().join(format!("doc-ckpt-{}.sinew", std::process::id()));
/// ckpt.save(&path)?;
///
/// // later, maybe in another process: rebuild, then restore
/// let back = Checkpoint::load(&path)?;
/// let model2 = Linear::new(3, 1, &mut Generator::new(99));
/// back.model.load_into(&model2, true)?;
/// let mut opt2 = Adam::new(model2.parameters(), 0.01);
/// opt2.load_state(back.optimizer.as_ref().unwrap()).unwrap();
/// let mut sched2 = Scheduler::new(CosineAnnealingLr { t_max: 10, eta_min: 0.0 }, &mut opt2);
/// sched2.load_state(back.scheduler.clone().unwrap(), &mut opt2).unwrap();
/// let data2 = Generator::from_state(back.rng.unwrap());
/// assert_eq!((back.step, opt2.lr()), (1, opt.lr()));
/// assert_eq!(data2.state(), data.state());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// The model's parameters and buffers by name ([`sinew_nn::Module::state_dict`]).
    pub model: StateDict,
    /// The optimizer's state ([`sinew_optim::Optimizer::state`]).
    pub optimizer: Option<OptimizerState>,
    /// The learning-rate scheduler's state ([`sinew_optim::Scheduler::state`]).
    pub scheduler: Option<SchedulerState>,
    /// Completed epochs.
    pub epoch: u64,
    /// Completed optimizer steps.
    pub step: u64,
    /// The state of the generator that drives data order, dropout or augmentation
    /// ([`sinew_tensor::Generator::state`]).
    pub rng: Option<GeneratorState>,
    /// Anything else worth keeping (configuration, git revision, metrics).
    pub metadata: BTreeMap<String, String>,
}

/// On-disk element types (the payload's dtype tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum DTypeTag {
    F32,
    F64,
    I64,
}

impl DTypeTag {
    fn of(dtype: DType) -> Self {
        match dtype {
            DType::F32 => DTypeTag::F32,
            DType::F64 => DTypeTag::F64,
            DType::I64 => DTypeTag::I64,
        }
    }

    fn dtype(self) -> DType {
        match self {
            DTypeTag::F32 => DType::F32,
            DTypeTag::F64 => DType::F64,
            DTypeTag::I64 => DType::I64,
        }
    }
}

/// Raw bytes, serialized as one byte string (a length, then the bytes).
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

#[derive(Serialize)]
struct TensorOut<'a> {
    name: &'a str,
    dtype: DTypeTag,
    shape: Vec<u64>,
    data: RawBytes<'a>,
}

#[derive(Deserialize)]
struct TensorIn<'a> {
    name: String,
    dtype: DTypeTag,
    shape: Vec<u64>,
    #[serde(borrow)]
    data: &'a [u8],
}

/// [`GeneratorState`] as serde data.
#[derive(Serialize, Deserialize)]
struct RngV1 {
    seed: [u8; 32],
    stream: u64,
    word_pos: u128,
}

/// The payload as written. Field order and types must match [`PayloadIn`].
#[derive(Serialize)]
struct PayloadOut<'a> {
    model: Vec<TensorOut<'a>>,
    optimizer: Option<&'a OptimizerState>,
    scheduler: Option<&'a SchedulerState>,
    epoch: u64,
    step: u64,
    rng: Option<RngV1>,
    metadata: &'a BTreeMap<String, String>,
}

/// The payload as read, tensor data borrowed from the file's bytes.
#[derive(Deserialize)]
struct PayloadIn<'a> {
    #[serde(borrow)]
    model: Vec<TensorIn<'a>>,
    optimizer: Option<OptimizerState>,
    scheduler: Option<SchedulerState>,
    epoch: u64,
    step: u64,
    rng: Option<RngV1>,
    metadata: BTreeMap<String, String>,
}

fn tensor_bytes(t: &Tensor) -> (DTypeTag, Vec<u8>) {
    (DTypeTag::of(t.dtype()), t.to_le_bytes())
}

/// Builds a tensor from a record, after checking that its shape accounts for exactly its
/// bytes (`Tensor::try_from_le_bytes`: overflow-checked arithmetic and the shape limit
/// first, so no shape can make it allocate more).
fn tensor_from_record(r: &TensorIn<'_>) -> Result<Tensor> {
    let mismatch = |shape: Vec<usize>| SerializeError::ShapeMismatch {
        name: r.name.clone(),
        shape,
        bytes: r.data.len(),
    };
    let shape: Vec<usize> = r
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| mismatch(r.shape.iter().map(|&d| d as usize).collect()))?;
    Tensor::try_from_le_bytes(r.data, r.dtype.dtype(), &shape).map_err(|_| mismatch(shape))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// What a file that is not a checkpoint looks like, for the error message.
fn describe_foreign(bytes: &[u8]) -> String {
    // safetensors: u64 header length, then a JSON object
    if bytes.len() > 8 && bytes[8] == b'{' {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        if n <= (bytes.len() - 8) as u64 {
            return "this is a safetensors file (read it with load_safetensors or load_module)".into();
        }
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return "this is a zip archive (a PyTorch `torch.save` file?); sinew reads safetensors".into();
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("unknown file, starting with bytes [{}]", head.join(" "))
}

impl Checkpoint {
    /// A checkpoint of `model`'s state dict, everything else empty or zero.
    ///
    /// ```
    /// use sinew_nn::Linear;
    /// use sinew_serialize::Checkpoint;
    /// use sinew_tensor::Generator;
    /// let c = Checkpoint::new(&Linear::new(2, 3, &mut Generator::new(0)));
    /// assert_eq!(c.model.len(), 2);
    /// assert!(c.optimizer.is_none() && c.step == 0);
    /// ```
    pub fn new(model: &dyn sinew_nn::Module) -> Self {
        Checkpoint { model: StateDict::from_module(model), ..Checkpoint::default() }
    }

    /// Encodes the checkpoint in the file format (see [the layout](Checkpoint#file-format)).
    ///
    /// ```
    /// use sinew_serialize::Checkpoint;
    /// let mut c = Checkpoint::default();
    /// c.metadata.insert("run".into(), "baseline".into());
    /// let bytes = c.to_bytes()?;
    /// assert_eq!(Checkpoint::from_bytes(&bytes)?.metadata["run"], "baseline");
    /// # Ok::<(), sinew_serialize::SerializeError>(())
    /// ```
    ///
    /// # Errors
    /// [`SerializeError::DuplicateName`] if two tensors share a name.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut seen = HashSet::with_capacity(self.model.len());
        for name in self.model.names() {
            if !seen.insert(name) {
                return Err(SerializeError::DuplicateName(name.to_string()));
            }
        }
        let encoded: Vec<(DTypeTag, Vec<u8>)> = self.model.iter().map(|(_, t)| tensor_bytes(t)).collect();
        let payload = PayloadOut {
            model: self
                .model
                .iter()
                .zip(&encoded)
                .map(|((name, t), (dtype, data))| TensorOut {
                    name,
                    dtype: *dtype,
                    shape: t.dims().iter().map(|&d| d as u64).collect(),
                    data: RawBytes(data),
                })
                .collect(),
            optimizer: self.optimizer.as_ref(),
            scheduler: self.scheduler.as_ref(),
            epoch: self.epoch,
            step: self.step,
            rng: self.rng.map(|r| RngV1 { seed: r.seed, stream: r.stream, word_pos: r.word_pos }),
            metadata: &self.metadata,
        };
        let data_len: usize = encoded.iter().map(|(_, d)| d.len()).sum();
        let mut out = Vec::with_capacity(HEADER_LEN + data_len + 1024);
        out.extend_from_slice(&[0; HEADER_LEN]);
        bincode::serde::encode_into_std_write(&payload, &mut out, bincode::config::standard())
            .map_err(|e| SerializeError::Encode(e.to_string()))?;
        let payload_len = (out.len() - HEADER_LEN) as u64;
        let payload_crc = crc32(&out[HEADER_LEN..]);
        out[0..8].copy_from_slice(&CHECKPOINT_MAGIC);
        out[8..12].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&0u32.to_le_bytes());
        out[16..24].copy_from_slice(&payload_len.to_le_bytes());
        let header_crc = crc32(&out[0..24]);
        out[24..28].copy_from_slice(&header_crc.to_le_bytes());
        out.extend_from_slice(&payload_crc.to_le_bytes());
        Ok(out)
    }

    /// Decodes a checkpoint, trusting nothing: in order, it checks the magic bytes, the
    /// version, the header checksum and flags, that the declared payload length is
    /// exactly what the bytes hold, the payload checksum, then decodes the payload without
    /// allocating for any length the payload cannot back, rejects trailing bytes inside
    /// it, and checks every tensor's shape against its data before building it.
    ///
    /// ```
    /// use sinew_serialize::{Checkpoint, SerializeError};
    /// let bytes = Checkpoint { step: 3, ..Default::default() }.to_bytes()?;
    /// assert_eq!(Checkpoint::from_bytes(&bytes)?.step, 3);
    ///
    /// let cut = Checkpoint::from_bytes(&bytes[..bytes.len() - 1]).unwrap_err();
    /// assert!(matches!(cut, SerializeError::Truncated { .. }), "{cut}");
    /// let mut flipped = bytes.clone();
    /// flipped[30] ^= 0x10;
    /// let bad = Checkpoint::from_bytes(&flipped).unwrap_err();
    /// assert!(matches!(bad, SerializeError::Checksum { what: "payload", .. }), "{bad}");
    /// # Ok::<(), SerializeError>(())
    /// ```
    ///
    /// # Errors
    /// [`SerializeError::WrongFormat`] (another kind of file, named when recognised),
    /// [`SerializeError::UnsupportedVersion`], [`SerializeError::Truncated`],
    /// [`SerializeError::Checksum`], [`SerializeError::Corrupt`],
    /// [`SerializeError::ShapeMismatch`] or [`SerializeError::DuplicateName`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let len = bytes.len() as u64;
        let truncated = |what, expected: u64| SerializeError::Truncated { what, expected, found: len };
        // 1. what kind of file is this?
        let magic_len = CHECKPOINT_MAGIC.len();
        if bytes.len() < magic_len {
            return Err(if CHECKPOINT_MAGIC.starts_with(bytes) {
                truncated("checkpoint header", HEADER_LEN as u64)
            } else {
                SerializeError::WrongFormat { found: describe_foreign(bytes) }
            });
        }
        if bytes[..magic_len] != CHECKPOINT_MAGIC {
            return Err(SerializeError::WrongFormat { found: describe_foreign(bytes) });
        }
        if bytes.len() < 12 {
            return Err(truncated("checkpoint header", HEADER_LEN as u64));
        }
        // 2. a version we read? (bytes 0..12 are the same in every version)
        let version = u32_at(bytes, 8);
        if version != CHECKPOINT_VERSION {
            return Err(SerializeError::UnsupportedVersion { found: version, supported: CHECKPOINT_VERSION });
        }
        // 3. the rest of the header, checksummed
        if bytes.len() < HEADER_LEN {
            return Err(truncated("checkpoint header", HEADER_LEN as u64));
        }
        let (stored, computed) = (u32_at(bytes, 24), crc32(&bytes[..24]));
        if stored != computed {
            return Err(SerializeError::Checksum { what: "header", stored, computed });
        }
        let flags = u32_at(bytes, 12);
        if flags != 0 {
            return Err(SerializeError::Corrupt(format!("unknown header flags {flags:#x}")));
        }
        // 4. the declared length against the real size, before touching the payload
        let declared = u64::from_le_bytes(bytes[16..24].try_into().unwrap_or([0xff; 8]));
        let total = declared
            .checked_add((HEADER_LEN + TRAILER_LEN) as u64)
            .ok_or_else(|| SerializeError::Corrupt(format!("absurd payload length {declared}")))?;
        if len < total {
            return Err(truncated("checkpoint", total));
        }
        if len > total {
            return Err(SerializeError::Corrupt(format!(
                "{} bytes after the end the header declares ({total} bytes)",
                len - total
            )));
        }
        // `total == len`, so this fits in usize
        let payload = &bytes[HEADER_LEN..bytes.len() - TRAILER_LEN];
        // 5. the payload checksum, before decoding
        let (stored, computed) = (u32_at(bytes, bytes.len() - TRAILER_LEN), crc32(payload));
        if stored != computed {
            return Err(SerializeError::Checksum { what: "payload", stored, computed });
        }
        // 6. decode within the payload's bytes
        let (p, used): (PayloadIn<'_>, usize) = bincode::serde::seed_decode_from_slice(
            GuardedSeed(PhantomData),
            payload,
            bincode::config::standard(),
        )
        .map_err(|e| SerializeError::Corrupt(format!("payload does not decode: {e}")))?;
        if used != payload.len() {
            return Err(SerializeError::Corrupt(format!(
                "payload has {} undecoded bytes at its end",
                payload.len() - used
            )));
        }
        // 7. tensors: unique names, shapes that account for their data
        let mut seen = HashSet::with_capacity(p.model.len());
        let mut model = Vec::with_capacity(p.model.len());
        for r in &p.model {
            if !seen.insert(r.name.as_str()) {
                return Err(SerializeError::DuplicateName(r.name.clone()));
            }
            model.push((r.name.clone(), tensor_from_record(r)?));
        }
        if let Some(opt) = &p.optimizer {
            for (i, buffers) in opt.buffers.iter().enumerate() {
                for (name, t) in buffers {
                    if t.to_tensor().is_err() {
                        return Err(SerializeError::Corrupt(format!(
                            "optimizer state: buffer {name:?} of parameter {i} has a shape that does not match its data"
                        )));
                    }
                }
            }
        }
        Ok(Checkpoint {
            model: StateDict::from(model),
            optimizer: p.optimizer,
            scheduler: p.scheduler,
            epoch: p.epoch,
            step: p.step,
            rng: p.rng.map(|r| GeneratorState { seed: r.seed, stream: r.stream, word_pos: r.word_pos }),
            metadata: p.metadata,
        })
    }

    /// Writes the checkpoint to `path` atomically: a crash or kill mid-save leaves the
    /// previous file intact (see [`write_atomic`](crate::write_atomic)).
    ///
    /// ```
    /// use sinew_serialize::Checkpoint;
    /// let path = std::env::temp_dir().join(format!("doc-save-{}.sinew", std::process::id()));
    /// Checkpoint { epoch: 1, ..Default::default() }.save(&path)?;
    /// Checkpoint { epoch: 2, ..Default::default() }.save(&path)?; // replaces it
    /// assert_eq!(Checkpoint::load(&path)?.epoch, 2);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), sinew_serialize::SerializeError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Checkpoint::to_bytes`], or I/O errors naming the path.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Reads and decodes a checkpoint file (see [`Checkpoint::from_bytes`] for the checks).
    ///
    /// ```
    /// use sinew_serialize::{Checkpoint, SerializeError, save_safetensors};
    /// let path = std::env::temp_dir().join(format!("doc-load-{}.safetensors", std::process::id()));
    /// save_safetensors(&path, &[])?;
    /// let err = Checkpoint::load(&path).unwrap_err();
    /// assert!(err.to_string().contains("safetensors file"), "{err}");
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), SerializeError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Checkpoint::from_bytes`], or I/O errors naming the path.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Checkpoint::from_bytes(&crate::atomic::read_file(path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_optim::{GroupState, StateTensor};

    /// Frames an arbitrary payload as a checkpoint with valid lengths and checksums.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&CHECKPOINT_MAGIC);
        out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        let h = crc32(&out);
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&crc32(payload).to_le_bytes());
        out
    }

    fn encode(p: &PayloadOut<'_>) -> Vec<u8> {
        bincode::serde::encode_to_vec(p, bincode::config::standard()).unwrap()
    }

    fn empty_meta() -> &'static BTreeMap<String, String> {
        static M: BTreeMap<String, String> = BTreeMap::new();
        &M
    }

    fn payload<'a>(model: Vec<TensorOut<'a>>, optimizer: Option<&'a OptimizerState>) -> PayloadOut<'a> {
        PayloadOut { model, optimizer, scheduler: None, epoch: 0, step: 0, rng: None, metadata: empty_meta() }
    }

    #[test]
    fn framing_matches_to_bytes() {
        let c = Checkpoint { epoch: 5, ..Default::default() };
        let bytes = c.to_bytes().unwrap();
        assert_eq!(frame(&bytes[HEADER_LEN..bytes.len() - TRAILER_LEN]), bytes);
    }

    #[test]
    fn shape_that_disagrees_with_data_is_named() {
        let data = [0u8; 12];
        for (shape, dtype) in [
            (vec![4u64], DTypeTag::F32),
            (vec![2, 2], DTypeTag::F32),
            (vec![3], DTypeTag::F64),
            (vec![u64::MAX, 2], DTypeTag::F32),
            (vec![1 << 62, 1 << 62, 0], DTypeTag::I64),
            (vec![1 << 62], DTypeTag::I64),
        ] {
            let t = TensorOut { name: "w", dtype, shape: shape.clone(), data: RawBytes(&data) };
            let err = Checkpoint::from_bytes(&frame(&encode(&payload(vec![t], None)))).unwrap_err();
            assert!(matches!(err, SerializeError::ShapeMismatch { .. }), "{shape:?}: {err}");
            assert!(err.to_string().contains("\"w\""), "{err}");
        }
        // a zero dimension with no data is fine, however large the others
        let t = TensorOut { name: "e", dtype: DTypeTag::F32, shape: vec![1 << 40, 0], data: RawBytes(&[]) };
        let c = Checkpoint::from_bytes(&frame(&encode(&payload(vec![t], None)))).unwrap();
        assert_eq!(c.model.get("e").unwrap().dims(), &[1 << 40, 0]);
        // [2^62, 0] once made a checkpoint sinew wrote but could not read; now no tensor may
        // have that shape (its extent passes 2^60), so it can be neither built nor read
        assert!(Tensor::from_vec(Vec::<f32>::new(), &[1 << 62, 0]).is_err());
        let t = TensorOut { name: "e", dtype: DTypeTag::F32, shape: vec![1 << 62, 0], data: RawBytes(&[]) };
        let err = Checkpoint::from_bytes(&frame(&encode(&payload(vec![t], None)))).unwrap_err();
        assert!(err.to_string().contains("\"e\""), "{err}");
    }

    #[test]
    fn duplicate_names_are_rejected_both_ways() {
        let t = || TensorOut { name: "w", dtype: DTypeTag::F32, shape: vec![], data: RawBytes(&[0; 4]) };
        let err = Checkpoint::from_bytes(&frame(&encode(&payload(vec![t(), t()], None)))).unwrap_err();
        assert!(matches!(err, SerializeError::DuplicateName(ref n) if n == "w"), "{err}");
        let dup = StateDict::from(vec![("w".into(), Tensor::zeros(&[1])), ("w".into(), Tensor::zeros(&[1]))]);
        let err = Checkpoint { model: dup, ..Default::default() }.to_bytes().unwrap_err();
        assert!(matches!(err, SerializeError::DuplicateName(_)), "{err}");
    }

    #[test]
    fn optimizer_buffer_that_disagrees_with_its_shape_is_rejected() {
        let state = OptimizerState {
            kind: "adam".into(),
            step: 1,
            param_steps: vec![1],
            groups: vec![GroupState { lr: 0.1, weight_decay: 0.0 }],
            buffers: vec![vec![("exp_avg".into(), StateTensor::F32 { shape: vec![3], data: vec![0.0; 2] })]],
        };
        let err = Checkpoint::from_bytes(&frame(&encode(&payload(vec![], Some(&state))))).unwrap_err();
        assert!(err.to_string().contains("exp_avg"), "{err}");
    }

    /// Lengths declared inside a checksum-valid payload that the payload cannot back: each
    /// is an error, quickly, without allocating the declared size (which would abort).
    #[test]
    fn absurd_declared_lengths_inside_a_valid_frame() {
        let varint_u64 = |v: u64| {
            let mut b = vec![253u8];
            b.extend_from_slice(&v.to_le_bytes());
            b
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("tensor count", varint_u64(u64::MAX)),
            ("tensor count 2^40", varint_u64(1 << 40)),
            ("name length", [vec![1], varint_u64(1 << 62)].concat()),
            ("shape length", [vec![1, 1, b'w', 0], varint_u64(1 << 61)].concat()),
            ("data length", [vec![1, 1, b'w', 0, 1, 4], varint_u64(1 << 60)].concat()),
            // no tensors, optimizer Some, kind string of 2^50 bytes
            ("optimizer kind", [vec![0, 1], varint_u64(1 << 50)].concat()),
            // metadata map of 2^60 entries, after no tensors, None, None, 0, 0, None
            ("metadata count", [vec![0, 0, 0, 0, 0, 0], varint_u64(1 << 60)].concat()),
        ];
        for (what, payload) in cases {
            let err = Checkpoint::from_bytes(&frame(&payload)).unwrap_err();
            assert!(matches!(err, SerializeError::Corrupt(_)), "{what}: {err}");
        }
    }

    #[test]
    fn trailing_bytes_inside_the_payload_are_rejected() {
        let mut p = encode(&payload(vec![], None));
        p.push(0);
        let err = Checkpoint::from_bytes(&frame(&p)).unwrap_err();
        assert!(err.to_string().contains("undecoded"), "{err}");
    }

    #[test]
    fn header_problems_are_named() {
        let good = Checkpoint::default().to_bytes().unwrap();
        // future version
        let mut v2 = good.clone();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        let err = Checkpoint::from_bytes(&v2).unwrap_err();
        assert!(matches!(err, SerializeError::UnsupportedVersion { found: 2, supported: 1 }), "{err}");
        assert!(err.to_string().contains("newer sinew"), "{err}");
        // corrupt declared length, caught by the header checksum
        let mut long = good.clone();
        long[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Checkpoint::from_bytes(&long),
            Err(SerializeError::Checksum { what: "header", .. })
        ));
        // the same with a recomputed header checksum: caught by the length check
        let h = crc32(&long[..24]);
        long[24..28].copy_from_slice(&h.to_le_bytes());
        let err = Checkpoint::from_bytes(&long).unwrap_err();
        assert!(matches!(err, SerializeError::Corrupt(_)), "{err}");
        let mut big = good.clone();
        big[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let h = crc32(&big[..24]);
        big[24..28].copy_from_slice(&h.to_le_bytes());
        let err = Checkpoint::from_bytes(&big).unwrap_err();
        assert!(
            matches!(err, SerializeError::Truncated { expected, .. } if expected == (1 << 40) + 32),
            "{err}"
        );
        // trailing garbage after the file
        let mut extra = good.clone();
        extra.push(0);
        assert!(matches!(Checkpoint::from_bytes(&extra), Err(SerializeError::Corrupt(_))));
        // flags
        let mut flags = good.clone();
        flags[12] = 1;
        let h = crc32(&flags[..24]);
        flags[24..28].copy_from_slice(&h.to_le_bytes());
        assert!(Checkpoint::from_bytes(&flags).unwrap_err().to_string().contains("flags"));
        // every prefix is an error
        for n in 0..good.len() {
            assert!(Checkpoint::from_bytes(&good[..n]).is_err(), "prefix {n}");
        }
        // other kinds of file
        for junk in [&b"PK\x03\x04rest"[..], b"\x00\x01\x02\x03\x04\x05\x06\x07\x08", b"x"] {
            assert!(matches!(Checkpoint::from_bytes(junk), Err(SerializeError::WrongFormat { .. })));
        }
    }
}
