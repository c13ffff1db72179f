//! PyTorch's `torch.save` files (`.pt`, `.pth`, `.bin`), read as
//! `torch.load(path, weights_only=True)` reads them, and never by running their code.
//!
//! A `torch.save` file is a pickle (Python's object serialisation) that names each
//! tensor's storage by a key, with the storages' bytes beside it: in a zip archive
//! (`<folder>/data.pkl`, `<folder>/data/<key>`, PyTorch 1.6 and later), or, in the legacy
//! format, as raw records after the pickle in one stream. A pickle is a program for a
//! small stack machine whose `GLOBAL` opcode imports any Python name and whose `REDUCE`
//! calls it, which is how a `.pt` file can run `os.system`: sinew's unpickler
//! ([`pickle`]) knows only the globals of PyTorch's weights-only allowlist, builds what
//! they would build as data, and refuses any other global by name.
//!
//! [`read_torch_object`] returns the whole pickled object as a [`TorchValue`] (a
//! checkpoint dict's model, optimizer state and epoch, each by key); [`read_torch`] its
//! tensors as a [`StateDict`]. Every tensor is materialised contiguous in sinew's
//! matching type (as [`read_safetensors`](crate::read_safetensors) does: `f16`/`bf16`
//! become `f32`; `i32`, `i16`, `i8`, `u8`, `bool` become `i64`), whatever its storage
//! offset and strides.

mod pickle;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use sinew_tensor::Tensor;

use self::pickle::{Id, MAX_DIMS, Node, StorageRef, TensorRef, Unpickler};
use crate::atomic::read_file;
use crate::element::decode_le;
use crate::error::{Result, SerializeError};
use crate::state_dict::StateDict;

/// Deepest nesting of containers in a file's object (a state dict nests 1 to 4 deep).
const MAX_DEPTH: usize = 200;
/// A deflated zip entry may expand at most this many times its compressed size, and all
/// of them together at most this many times the file's size: past it, a zip bomb.
const MAX_EXPANSION: u64 = 64;
/// The first pickle of a legacy file: `0x1950a86a20f9469cfc6c`, little-endian.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The legacy format's protocol version, its second pickle.
const LEGACY_PROTOCOL: i64 = 1001;

/// A Python object from a `torch.save` file, as far as a weights-only file holds one.
///
/// ```
/// use sinew_serialize::TorchValue;
/// use sinew_tensor::Tensor;
/// let checkpoint = TorchValue::Dict(vec![
///     (TorchValue::Str("epoch".into()), TorchValue::Int(3)),
///     (TorchValue::Str("w".into()), TorchValue::Tensor(Tensor::ones(&[2]))),
/// ]);
/// assert_eq!(checkpoint.get("epoch").and_then(TorchValue::as_int), Some(3));
/// assert_eq!(checkpoint.tensors().names().collect::<Vec<_>>(), ["w"]);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TorchValue {
    /// `None`.
    None,
    /// A `bool`.
    Bool(bool),
    /// An `int` (within 64 bits; a wider one is an error when read).
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// `bytes` or a `bytearray`.
    Bytes(Vec<u8>),
    /// A `list`, or a `set` in its pickled order.
    List(Vec<TorchValue>),
    /// A `tuple` or a `torch.Size`.
    Tuple(Vec<TorchValue>),
    /// A `dict` or an `OrderedDict`: its items in order.
    Dict(Vec<(TorchValue, TorchValue)>),
    /// A tensor or an `nn.Parameter`, materialised contiguous.
    Tensor(Tensor),
    /// A global named as a value: a dtype (`torch.float32`), a storage type.
    Global(String),
}

impl TorchValue {
    /// The value of a dict's string key `key`; `None` for other values and missing keys.
    ///
    /// ```
    /// use sinew_serialize::TorchValue;
    /// let d = TorchValue::Dict(vec![(TorchValue::Str("lr".into()), TorchValue::Float(0.1))]);
    /// assert_eq!(d.get("lr").and_then(TorchValue::as_f64), Some(0.1));
    /// assert!(d.get("momentum").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<&TorchValue> {
        self.as_dict()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// The dict's items.
    ///
    /// ```
    /// use sinew_serialize::TorchValue;
    /// assert!(TorchValue::Dict(vec![]).as_dict().unwrap().is_empty());
    /// assert!(TorchValue::Int(1).as_dict().is_none());
    /// ```
    pub fn as_dict(&self) -> Option<&[(TorchValue, TorchValue)]> {
        match self {
            TorchValue::Dict(items) => Some(items),
            _ => None,
        }
    }

    /// The items of a list or a tuple.
    ///
    /// ```
    /// use sinew_serialize::TorchValue;
    /// let t = TorchValue::Tuple(vec![TorchValue::Float(0.9), TorchValue::Float(0.999)]);
    /// assert_eq!(t.as_list().unwrap().len(), 2);
    /// ```
    pub fn as_list(&self) -> Option<&[TorchValue]> {
        match self {
            TorchValue::List(items) | TorchValue::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The tensor.
    ///
    /// ```
    /// use sinew_serialize::TorchValue;
    /// assert!(TorchValue::Tensor(sinew_tensor::Tensor::zeros(&[1])).as_tensor().is_some());
    /// ```
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            TorchValue::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The string.
    ///
    /// ```
    /// assert_eq!(sinew_serialize::TorchValue::Str("cpu".into()).as_str(), Some("cpu"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TorchValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer (a `bool` counts, as in Python).
    ///
    /// ```
    /// use sinew_serialize::TorchValue;
    /// assert_eq!(TorchValue::Int(3).as_int(), Some(3));
    /// assert_eq!(TorchValue::Bool(true).as_int(), Some(1));
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match self {
            TorchValue::Int(i) => Some(*i),
            TorchValue::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The number, integer or float, as `f64`.
    ///
    /// ```
    /// use sinew_serialize::TorchValue;
    /// assert_eq!(TorchValue::Int(2).as_f64(), Some(2.0));
    /// assert_eq!(TorchValue::Float(0.5).as_f64(), Some(0.5));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            TorchValue::Float(f) => Some(*f),
            TorchValue::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The boolean.
    ///
    /// ```
    /// assert_eq!(sinew_serialize::TorchValue::Bool(false).as_bool(), Some(false));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            TorchValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Every tensor inside, by its path of keys and indices joined with `.`: a state
    /// dict's own names for a state dict, `model.fc.weight` and
    /// `optimizer.state.0.exp_avg` for a checkpoint that nests them. Other values are
    /// left out.
    ///
    /// ```
    /// use sinew_serialize::TorchValue;
    /// use sinew_tensor::Tensor;
    /// let state = TorchValue::Dict(vec![(TorchValue::Int(0), TorchValue::List(vec![
    ///     TorchValue::Tensor(Tensor::zeros(&[1])),
    ///     TorchValue::Str("not a tensor".into()),
    /// ]))]);
    /// let ckpt = TorchValue::Dict(vec![(TorchValue::Str("state".into()), state)]);
    /// assert_eq!(ckpt.tensors().names().collect::<Vec<_>>(), ["state.0.0"]);
    /// ```
    pub fn tensors(&self) -> StateDict {
        let mut out = StateDict::new();
        self.collect_tensors(String::new(), &mut out);
        out
    }

    fn collect_tensors(&self, path: String, out: &mut StateDict) {
        let join = |key: String| if path.is_empty() { key } else { format!("{path}.{key}") };
        match self {
            TorchValue::Tensor(t) => {
                out.insert(path, t.clone());
            }
            TorchValue::Dict(items) => {
                for (k, v) in items {
                    v.collect_tensors(join(k.key_text()), out);
                }
            }
            TorchValue::List(items) | TorchValue::Tuple(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.collect_tensors(join(i.to_string()), out);
                }
            }
            _ => {}
        }
    }

    /// A dict key as a path component.
    fn key_text(&self) -> String {
        match self {
            TorchValue::Str(s) => s.clone(),
            TorchValue::Int(i) => i.to_string(),
            TorchValue::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            TorchValue::None => "None".to_string(),
            TorchValue::Float(f) => f.to_string(),
            other => format!("{other:?}"),
        }
    }
}

/// Whether `bytes` look like a `torch.save` file (a zip archive, or a legacy pickle
/// stream starting with PyTorch's magic number).
pub(crate) fn is_torch_file(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || is_legacy(bytes)
}

fn is_legacy(bytes: &[u8]) -> bool {
    // PROTO n, LONG1 of 10 bytes: the magic number
    bytes.len() >= 14
        && bytes[0] == 0x80
        && bytes[2] == 0x8a
        && bytes[3] == 10
        && bytes[4..14] == LEGACY_MAGIC
}

/// Reads the object a `torch.save` file holds: the zip format of PyTorch 1.6 and later,
/// or the legacy format (`_use_new_zipfile_serialization=False`).
///
/// ```
/// use sinew_serialize::{SerializeError, read_torch_object};
/// // a pickle that would call os.system when unpickled by Python
/// let hostile = b"\x80\x02cos\nsystem\nq\x00X\x05\x00\x00\x00echo!q\x01\x85q\x02Rq\x03.";
/// let mut legacy = vec![0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'];
/// legacy.extend_from_slice(b"\x80\x02M\xe9\x03.\x80\x02}q\x00.");
/// legacy.extend_from_slice(hostile);
/// match read_torch_object(&legacy) {
///     Err(SerializeError::ForbiddenGlobal { name }) => assert_eq!(name, "os.system"),
///     other => panic!("{other:?}"),
/// }
/// ```
///
/// # Errors
/// [`SerializeError::ForbiddenGlobal`] naming any global outside the weights-only
/// allowlist; [`SerializeError::Pickle`] for a malformed pickle (with its byte offset);
/// [`SerializeError::Torch`] for a malformed archive, a missing or short storage, a
/// tensor that reaches past its storage, or a file that expands past its bounds. No
/// input panics.
pub fn read_torch_object(bytes: &[u8]) -> Result<TorchValue> {
    // The zip crate is fuzzed, but it is a dependency: a panic in it is an error here too.
    std::panic::catch_unwind(|| read_torch_object_inner(bytes)).unwrap_or_else(|_| {
        Err(SerializeError::Torch("the zip archive is malformed (its reader failed)".into()))
    })
}

fn read_torch_object_inner(bytes: &[u8]) -> Result<TorchValue> {
    if bytes.starts_with(b"PK\x03\x04") {
        return read_zip(bytes);
    }
    if is_legacy(bytes) {
        return read_legacy(bytes);
    }
    if bytes.len() >= 262 && &bytes[257..262] == b"ustar" {
        return Err(SerializeError::Torch(
            "this is a tar archive: PyTorch's oldest (pre-0.4) format, which sinew does not read; \
             load and save it again with a recent PyTorch (torch.save writes the zip format)"
                .into(),
        ));
    }
    Err(SerializeError::Torch(
        "not a torch.save file: neither a zip archive nor a legacy pickle with PyTorch's magic number".into(),
    ))
}

/// Reads the tensors of a `torch.save` file: [`read_torch_object`], then
/// [`TorchValue::tensors`] (a state dict's names as they are).
///
/// # Errors
/// As [`read_torch_object`].
///
/// ```
/// use sinew_serialize::read_torch;
/// assert!(read_torch(b"not a checkpoint").unwrap_err().to_string().contains("not a torch.save file"));
/// ```
pub fn read_torch(bytes: &[u8]) -> Result<StateDict> {
    Ok(read_torch_object(bytes)?.tensors())
}

/// Reads a `torch.save` file's object. See [`read_torch_object`].
///
/// ```
/// use sinew_serialize::{SerializeError, load_torch_object};
/// let err = load_torch_object("/no/such/model.pt").unwrap_err();
/// assert!(matches!(err, SerializeError::Io { action: "read", .. }));
/// ```
///
/// # Errors
/// As [`read_torch_object`], plus I/O errors naming the path.
pub fn load_torch_object(path: impl AsRef<Path>) -> Result<TorchValue> {
    read_torch_object(&read_file(path.as_ref())?)
}

/// Reads a `torch.save` file's tensors. See [`read_torch`].
///
/// ```
/// use sinew_serialize::load_torch;
/// assert!(load_torch("/no/such/model.pth").is_err());
/// ```
///
/// # Errors
/// As [`read_torch_object`], plus I/O errors naming the path.
pub fn load_torch(path: impl AsRef<Path>) -> Result<StateDict> {
    read_torch(&read_file(path.as_ref())?)
}

fn torch_error(msg: impl Into<String>) -> SerializeError {
    SerializeError::Torch(msg.into())
}

/// The zip format: `<folder>/data.pkl`, `<folder>/data/<key>`, `<folder>/byteorder`.
fn read_zip(bytes: &[u8]) -> Result<TorchValue> {
    let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| torch_error(format!("invalid zip archive: {e}")))?;
    let mut names = Vec::with_capacity(archive.len());
    for name in archive.file_names() {
        let name = name.map_err(|e| torch_error(format!("invalid zip entry name: {e}")))?;
        names.push(name.into_owned());
    }
    for name in &names {
        let escapes = name.starts_with('/')
            || name.contains('\\')
            || name.contains('\0')
            || name.split('/').any(|part| part == "..")
            || name.as_bytes().get(1) == Some(&b':');
        if escapes {
            return Err(torch_error(format!("zip entry {name:?} escapes the archive's folder")));
        }
    }
    let pickles: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.strip_suffix("data.pkl").is_some_and(|p| p.matches('/').count() == 1 && p.ends_with('/'))
        })
        .collect();
    let prefix = match pickles.as_slice() {
        [one] => one.strip_suffix("data.pkl").expect("filtered").to_string(),
        [] => {
            return Err(torch_error(
                "the zip archive has no <folder>/data.pkl: not a torch.save file (a zip of something else?)",
            ));
        }
        _ => return Err(torch_error("the zip archive has more than one <folder>/data.pkl")),
    };
    let mut reader =
        ZipReader { archive, budget: (bytes.len() as u64).saturating_mul(MAX_EXPANSION) + (1 << 20) };
    let big_endian = match reader.entry(&format!("{prefix}byteorder"), 64)? {
        None => false,
        Some(b) => match b.trim_ascii() {
            b"little" => false,
            b"big" => true,
            other => return Err(torch_error(format!("byteorder {:?}", String::from_utf8_lossy(other)))),
        },
    };
    let pkl = reader
        .entry(&format!("{prefix}data.pkl"), u64::MAX)?
        .ok_or_else(|| torch_error("data.pkl vanished"))?;
    let mut unpickler = Unpickler::new(&pkl);
    let root = unpickler.load()?;
    let mut storages = HashMap::new();
    for &id in &unpickler.storages {
        let Node::Storage(s) = &unpickler.nodes[id] else { unreachable!("storages are storage nodes") };
        if storages.contains_key(&s.key) {
            continue;
        }
        if s.key.is_empty() || !s.key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
            return Err(torch_error(format!("storage key {:?} is not a file name", s.key)));
        }
        let Some(element) = s.element else {
            continue; // reported when a tensor uses it
        };
        let want = s
            .numel
            .checked_mul(element.size() as u64)
            .ok_or_else(|| torch_error("a storage size overflows"))?;
        let data = reader.entry(&format!("{prefix}data/{}", s.key), want)?.ok_or_else(|| {
            torch_error(format!("storage {} (data/{}) is missing from the archive", s.key, s.key))
        })?;
        if data.len() as u64 != want {
            return Err(torch_error(format!(
                "storage {} holds {} bytes, but the pickle declares {} elements of {} bytes",
                s.key,
                data.len(),
                s.numel,
                element.size()
            )));
        }
        storages.insert(s.key.clone(), data);
    }
    Builder::new(&unpickler, storages, big_endian).value(root, 0, "")
}

struct ZipReader<'a> {
    archive: zip::ZipArchive<std::io::Cursor<&'a [u8]>>,
    /// Bytes all entries together may still expand to.
    budget: u64,
}

impl ZipReader<'_> {
    /// The bytes of entry `name`, at most `limit` of them (`None` if there is no such
    /// entry).
    fn entry(&mut self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let mut file = match self.archive.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(torch_error(format!("zip entry {name}: {e}"))),
        };
        let size = file.size();
        let packed = file.compressed_size();
        if size > limit {
            return Err(torch_error(format!(
                "zip entry {name} declares {size} bytes, more than the {limit} expected"
            )));
        }
        if size > packed.saturating_mul(MAX_EXPANSION).saturating_add(4096) || size > self.budget {
            return Err(torch_error(format!(
                "zip entry {name} expands {packed} bytes to {size}: past {MAX_EXPANSION} times (a zip bomb?)"
            )));
        }
        self.budget -= size;
        // `size` is the entry's declared length, now bounded by the file's: read at most
        // one byte past it, so a stream longer than declared is caught without growing
        let mut out = Vec::with_capacity(size as usize);
        (&mut file)
            .take(size + 1)
            .read_to_end(&mut out)
            .map_err(|e| torch_error(format!("zip entry {name}: {e}")))?;
        if out.len() as u64 != size {
            return Err(torch_error(format!(
                "zip entry {name}: {} bytes where {size} are declared",
                out.len()
            )));
        }
        Ok(Some(out))
    }
}

/// The legacy format: five pickles (magic number, protocol version, system info, the
/// object, the storage keys), then each storage as an 8-byte element count and its bytes.
fn read_legacy(bytes: &[u8]) -> Result<TorchValue> {
    let mut u = Unpickler::new(bytes);
    let magic = u.load()?;
    if !matches!(&u.nodes[magic], Node::BigInt(b) if b.as_slice() == LEGACY_MAGIC) {
        return Err(torch_error("the legacy file's magic number is wrong"));
    }
    let protocol = u.load()?;
    if !matches!(u.nodes[protocol], Node::Int(LEGACY_PROTOCOL)) {
        return Err(torch_error(format!(
            "legacy protocol {:?} (sinew reads {LEGACY_PROTOCOL})",
            u.nodes[protocol]
        )));
    }
    let info = u.load()?;
    let big_endian = match &u.nodes[info] {
        Node::Dict(d) => d.items.iter().any(|&(k, v)| {
            matches!(&u.nodes[k], Node::Str(s) if s == "little_endian")
                && matches!(u.nodes[v], Node::Bool(false))
        }),
        _ => return Err(torch_error("the legacy file's system info is not a dict")),
    };
    let root = u.load()?;
    let keys_id = u.load()?;
    let Node::List(key_ids) = &u.nodes[keys_id] else {
        return Err(torch_error("the legacy file's storage keys are not a list"));
    };
    let mut keys = Vec::with_capacity(key_ids.len());
    for &k in key_ids {
        match &u.nodes[k] {
            Node::Str(s) => keys.push(s.clone()),
            Node::Int(i) => keys.push(i.to_string()),
            _ => return Err(torch_error("a legacy storage key is not a string")),
        }
    }
    // each key's element type, from the persistent ids that named it
    let mut types: HashMap<&str, &StorageRef> = HashMap::new();
    for &id in &u.storages {
        if let Node::Storage(s) = &u.nodes[id] {
            types.entry(s.key.as_str()).or_insert(s);
        }
    }
    let mut pos = u.position();
    let mut storages = HashMap::new();
    for key in keys {
        let Some(s) = types.get(key.as_str()) else {
            return Err(torch_error(format!("legacy storage {key} is listed but no tensor names it")));
        };
        let element = s
            .element
            .ok_or_else(|| torch_error(format!("storage type torch.{} is not supported", s.type_name)))?;
        let head = bytes.get(pos..pos + 8).ok_or_else(|| SerializeError::Truncated {
            what: "legacy storage record",
            expected: pos as u64 + 8,
            found: bytes.len() as u64,
        })?;
        let head: [u8; 8] = head.try_into().expect("8 bytes");
        let numel = if big_endian { u64::from_be_bytes(head) } else { u64::from_le_bytes(head) };
        pos += 8;
        if numel != s.numel {
            return Err(torch_error(format!(
                "legacy storage {key} holds {numel} elements, the pickle declares {}",
                s.numel
            )));
        }
        let len = numel
            .checked_mul(element.size() as u64)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= bytes.len() - pos)
            .ok_or_else(|| SerializeError::Truncated {
                what: "legacy storage data",
                expected: numel.saturating_mul(element.size() as u64).saturating_add(pos as u64),
                found: bytes.len() as u64,
            })?;
        storages.insert(key, bytes[pos..pos + len].to_vec());
        pos += len;
    }
    Builder::new(&u, storages, big_endian).value(root, 0, "")
}

/// Turns the unpickler's arena into a [`TorchValue`] tree, materialising tensors.
struct Builder<'u, 'a> {
    u: &'u Unpickler<'a>,
    storages: HashMap<String, Vec<u8>>,
    big_endian: bool,
    /// Tensors already built, by node: a tensor the pickle references twice is built once.
    built: HashMap<Id, Tensor>,
    /// Values the tree may still hold: shared references cannot blow it up.
    nodes_left: usize,
    /// Tensor elements that may still be materialised (views of one storage are copies).
    elements_left: u64,
}

impl<'u, 'a> Builder<'u, 'a> {
    fn new(u: &'u Unpickler<'a>, storages: HashMap<String, Vec<u8>>, big_endian: bool) -> Self {
        let stored: u64 = storages.values().map(|b| b.len() as u64).sum();
        Builder {
            u,
            storages,
            big_endian,
            built: HashMap::new(),
            nodes_left: u.nodes.len().saturating_mul(4) + 4096,
            elements_left: stored.saturating_mul(4) + (1 << 16),
        }
    }

    fn value(&mut self, id: Id, depth: usize, path: &str) -> Result<TorchValue> {
        if depth > MAX_DEPTH {
            return Err(torch_error(format!(
                "the object nests deeper than {MAX_DEPTH} levels (at {path:?})"
            )));
        }
        if self.nodes_left == 0 {
            return Err(torch_error("the object's shared references expand past its size"));
        }
        self.nodes_left -= 1;
        let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
        Ok(match &self.u.nodes[id] {
            Node::None => TorchValue::None,
            Node::Bool(b) => TorchValue::Bool(*b),
            Node::Int(i) => TorchValue::Int(*i),
            Node::BigInt(_) => {
                return Err(torch_error(format!("an integer wider than 64 bits (at {path:?})")));
            }
            Node::Float(f) => TorchValue::Float(*f),
            Node::Str(s) => TorchValue::Str(s.clone()),
            Node::Bytes(b) => TorchValue::Bytes(b.clone()),
            Node::Tuple(items) | Node::List(items) | Node::Set(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, &item) in items.iter().enumerate() {
                    out.push(self.value(item, depth + 1, &join(&i.to_string()))?);
                }
                match &self.u.nodes[id] {
                    Node::Tuple(_) => TorchValue::Tuple(out),
                    _ => TorchValue::List(out),
                }
            }
            Node::Dict(d) => {
                let mut out = Vec::with_capacity(d.items.len());
                for &(k, v) in &d.items {
                    let key = self.value(k, depth + 1, path)?;
                    let value = self.value(v, depth + 1, &join(&key.key_text()))?;
                    out.push((key, value));
                }
                TorchValue::Dict(out)
            }
            Node::Global(g) => TorchValue::Global(g.python_name()),
            Node::Storage(s) => {
                return Err(torch_error(format!("a bare storage {} (at {path:?}), not a tensor", s.key)));
            }
            Node::Tensor(t) => {
                if let Some(t) = self.built.get(&id) {
                    return Ok(TorchValue::Tensor(t.clone()));
                }
                let t = self.tensor(t, path)?;
                self.built.insert(id, t.clone());
                TorchValue::Tensor(t)
            }
        })
    }

    /// Materialises a view of a storage as a contiguous tensor, after checking that every
    /// element it reaches lies inside the storage.
    fn tensor(&mut self, t: &TensorRef, path: &str) -> Result<Tensor> {
        let Node::Storage(s) = &self.u.nodes[t.storage] else { unreachable!("checked when built") };
        let stored = s.element.ok_or_else(|| SerializeError::UnsupportedDType {
            name: path.to_string(),
            dtype: format!("torch.{}", s.type_name),
        })?;
        let element = t.element.unwrap_or(stored);
        let raw =
            self.storages.get(&s.key).ok_or_else(|| torch_error(format!("storage {} has no data", s.key)))?;
        // a legacy view: a window of the root storage
        let raw: &[u8] = match s.view {
            None => raw,
            Some((offset, len)) => {
                let size = stored.size() as u64;
                let range = offset
                    .checked_mul(size)
                    .and_then(|a| Some((a, a.checked_add(len.checked_mul(size)?)?)))
                    .filter(|&(_, b)| b <= raw.len() as u64)
                    .ok_or_else(|| torch_error(format!("storage view of {} reaches past it", s.key)))?;
                &raw[range.0 as usize..range.1 as usize]
            }
        };
        let size = element.size();
        let capacity = (raw.len() / size) as u64;
        debug_assert!(t.size.len() <= MAX_DIMS);
        let shape: Vec<usize> = t
            .size
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<_>>()
            .ok_or_else(|| torch_error(format!("tensor {path:?}: size {:?} is too large", t.size)))?;
        let numel = t
            .size
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| torch_error(format!("tensor {path:?}: size {:?} overflows", t.size)))?;
        if numel > 0 {
            let last = t
                .size
                .iter()
                .zip(&t.stride)
                .try_fold(t.offset, |acc, (&d, &s)| acc.checked_add((d - 1).checked_mul(s)?))
                .filter(|&last| last < capacity);
            if last.is_none() {
                return Err(torch_error(format!(
                    "tensor {path:?} (size {:?}, stride {:?}, offset {}) reaches past its storage {} of {capacity} elements",
                    t.size, t.stride, t.offset, s.key
                )));
            }
        }
        if numel > self.elements_left {
            return Err(torch_error(format!(
                "tensor {path:?}: the file's views of its storages expand past 4 times the data it holds"
            )));
        }
        self.elements_left -= numel;
        let numel = numel as usize; // fits: below the storage's length in bytes
        let row_major = {
            let mut expect = 1u64;
            let mut ok = true;
            for (&d, &s) in t.size.iter().zip(&t.stride).rev() {
                if d != 1 && s != expect {
                    ok = false;
                }
                expect = expect.saturating_mul(d);
            }
            ok
        };
        if numel == 0 {
            return decode_le(path, element, &shape, &[]);
        }
        if row_major && (!self.big_endian || size == 1) {
            // the view is a run of the storage, in the byte order decode_le reads
            let start = t.offset as usize * size;
            return decode_le(path, element, &shape, &raw[start..start + numel * size]);
        }
        let mut bytes = Vec::with_capacity(numel * size);
        if row_major {
            let start = t.offset as usize * size;
            bytes.extend_from_slice(&raw[start..start + numel * size]);
        } else {
            // an odometer over the multi-index, each element's bytes copied in order
            let mut index = vec![0u64; t.size.len()];
            let mut at = t.offset;
            for _ in 0..numel {
                let start = at as usize * size;
                bytes.extend_from_slice(&raw[start..start + size]);
                for d in (0..index.len()).rev() {
                    index[d] += 1;
                    at += t.stride[d];
                    if index[d] < t.size[d] {
                        break;
                    }
                    at -= t.stride[d] * t.size[d];
                    index[d] = 0;
                }
            }
        }
        if self.big_endian && size > 1 {
            for chunk in bytes.chunks_exact_mut(size) {
                chunk.reverse();
            }
        }
        decode_le(path, element, &shape, &bytes)
    }
}
