//! A restricted unpickler: the pickle virtual machine (protocols 0 to 5) with only the
//! globals that `torch.load(weights_only=True)` allows, and none of them run. A global is
//! a name looked up in a fixed table when the pickle mentions it; anything outside the
//! table (`os.system`, `builtins.eval`, a user's class) stops the load with an error
//! naming it, before any later opcode is read. What the allowed callables would build
//! (an `OrderedDict`, a tensor view of a storage, a `torch.Size`) is built here as data.
//!
//! Every object lives in one arena ([`Unpickler::nodes`]) and containers hold indices
//! into it, so a memo reference is the same object as in Python (a dict filled after it
//! was memoised is seen filled), cycles and sharing cost nothing, and dropping the arena
//! never recurses. What a declared length asks for is checked against the bytes left
//! before anything is copied; the stack, the marks and the memo have fixed limits; the
//! arena grows by at most one node per opcode, so by at most one per input byte.

use std::collections::HashMap;

use crate::element::ElementType;
use crate::error::{Result, SerializeError};

/// An index into [`Unpickler::nodes`].
pub(crate) type Id = usize;

/// Most entries the pickle stack may hold (a state dict's pickle needs a few thousand).
const MAX_STACK: usize = 1 << 20;
/// Most open marks (`MARK` without its `TUPLE`, `LIST`, `DICT`, ... yet).
const MAX_MARKS: usize = 1 << 16;
/// Most memo entries.
const MAX_MEMO: usize = 1 << 22;
/// Most dimensions of a tensor.
pub(crate) const MAX_DIMS: usize = 64;

/// One Python object, as far as a weights-only pickle can make one.
#[derive(Debug)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits: little-endian two's complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Box<Dict>),
    Set(Vec<Id>),
    /// An allowed global, named as a value (a callable, a dtype, a storage type).
    Global(Global),
    /// A storage, from a persistent id: its bytes live outside the pickle.
    Storage(Box<StorageRef>),
    /// A tensor: a view of a storage.
    Tensor(Box<TensorRef>),
}

impl Node {
    /// What the node is, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::None => "None",
            Node::Bool(_) => "a bool",
            Node::Int(_) | Node::BigInt(_) => "an int",
            Node::Float(_) => "a float",
            Node::Str(_) => "a str",
            Node::Bytes(_) => "bytes",
            Node::Tuple(_) => "a tuple",
            Node::List(_) => "a list",
            Node::Dict(_) => "a dict",
            Node::Set(_) => "a set",
            Node::Global(_) => "a global",
            Node::Storage(_) => "a storage",
            Node::Tensor(_) => "a tensor",
        }
    }
}

/// A dict: items in insertion order, with an index on their (hashable) keys so that a
/// key given twice replaces its value, as in Python.
#[derive(Debug, Default)]
pub(crate) struct Dict {
    pub(crate) items: Vec<(Id, Id)>,
    index: HashMap<Key, usize>,
}

/// A hashable key's identity. Python's `True == 1 == 1.0` share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    None,
    Int(i64),
    BigInt(Vec<u8>),
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Key>),
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location,
/// numel)`, plus, in the legacy format, a view of a root storage.
#[derive(Debug, Clone)]
pub(crate) struct StorageRef {
    /// Its element type; `None` when sinew has no equivalent.
    pub(crate) element: Option<ElementType>,
    /// Its type's name (`FloatStorage`).
    pub(crate) type_name: String,
    /// The key of the bytes: `archive/data/<key>` in a zip file.
    pub(crate) key: String,
    /// Elements the root storage declares.
    pub(crate) numel: u64,
    /// A legacy storage view: its first element in the root storage, and its length.
    pub(crate) view: Option<(u64, u64)>,
}

/// A tensor: `size` and `stride` (in elements) over a storage from `offset`.
#[derive(Debug, Clone)]
pub(crate) struct TensorRef {
    /// The `Node::Storage` it views.
    pub(crate) storage: Id,
    /// Its element type, when it differs from the storage's (`_rebuild_tensor_v3`).
    pub(crate) element: Option<ElementType>,
    pub(crate) offset: u64,
    pub(crate) size: Vec<u64>,
    pub(crate) stride: Vec<u64>,
}

/// The globals a weights-only load may name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Global {
    OrderedDict,
    Set,
    FrozenSet,
    ByteArray,
    CodecsEncode,
    RebuildTensor,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    Parameter,
    TensorType,
    Size,
    Device,
    StorageType { name: Box<str>, element: Option<ElementType> },
    Dtype { name: &'static str, element: Option<ElementType> },
}

impl Global {
    /// Its Python name, as a value of the object (`torch.float32`).
    pub(crate) fn python_name(&self) -> String {
        let name = match self {
            Global::OrderedDict => "collections.OrderedDict",
            Global::Set => "builtins.set",
            Global::FrozenSet => "builtins.frozenset",
            Global::ByteArray => "builtins.bytearray",
            Global::CodecsEncode => "_codecs.encode",
            Global::RebuildTensor => "torch._utils._rebuild_tensor",
            Global::RebuildTensorV2 => "torch._utils._rebuild_tensor_v2",
            Global::RebuildTensorV3 => "torch._utils._rebuild_tensor_v3",
            Global::RebuildParameter => "torch._utils._rebuild_parameter",
            Global::RebuildParameterWithState => "torch._utils._rebuild_parameter_with_state",
            Global::RebuildFromTypeV2 => "torch._tensor._rebuild_from_type_v2",
            Global::Parameter => "torch.nn.parameter.Parameter",
            Global::TensorType => "torch.Tensor",
            Global::Size => "torch.Size",
            Global::Device => "torch.device",
            Global::StorageType { name, .. } => return format!("torch.{name}"),
            Global::Dtype { name, .. } => return format!("torch.{name}"),
        };
        name.to_string()
    }
}

/// PyTorch's dtype names (`torch.float32` and its aliases) and their element types.
const DTYPES: &[(&str, Option<ElementType>)] = &[
    ("float64", Some(ElementType::F64)),
    ("double", Some(ElementType::F64)),
    ("float32", Some(ElementType::F32)),
    ("float", Some(ElementType::F32)),
    ("float16", Some(ElementType::F16)),
    ("half", Some(ElementType::F16)),
    ("bfloat16", Some(ElementType::BF16)),
    ("int64", Some(ElementType::I64)),
    ("long", Some(ElementType::I64)),
    ("int32", Some(ElementType::I32)),
    ("int", Some(ElementType::I32)),
    ("int16", Some(ElementType::I16)),
    ("short", Some(ElementType::I16)),
    ("int8", Some(ElementType::I8)),
    ("uint8", Some(ElementType::U8)),
    ("bool", Some(ElementType::Bool)),
    ("complex64", None),
    ("complex128", None),
    ("cfloat", None),
    ("cdouble", None),
    ("uint16", None),
    ("uint32", None),
    ("uint64", None),
    ("float8_e4m3fn", None),
    ("float8_e5m2", None),
];

/// The storage types of `torch.save` (`torch.FloatStorage`, ...).
const STORAGES: &[(&str, ElementType)] = &[
    ("DoubleStorage", ElementType::F64),
    ("FloatStorage", ElementType::F32),
    ("HalfStorage", ElementType::F16),
    ("BFloat16Storage", ElementType::BF16),
    ("LongStorage", ElementType::I64),
    ("IntStorage", ElementType::I32),
    ("ShortStorage", ElementType::I16),
    ("CharStorage", ElementType::I8),
    ("ByteStorage", ElementType::U8),
    ("BoolStorage", ElementType::Bool),
    ("UntypedStorage", ElementType::U8),
];

/// Globals of PyTorch's weights-only allowlist that sinew recognises but cannot build.
const ALLOWED_NOT_BUILT: &[(&str, &str)] = &[
    ("torch._utils._rebuild_sparse_tensor", "sparse tensors"),
    ("torch._utils._rebuild_sparse_csr_tensor", "sparse tensors"),
    ("torch._utils._rebuild_qtensor", "quantized tensors"),
    ("torch._utils._rebuild_nested_tensor", "nested tensors"),
    ("torch._utils._rebuild_meta_tensor_no_storage", "meta tensors (they hold no data)"),
    ("torch._utils._rebuild_wrapper_subclass", "tensor subclasses"),
    ("torch._utils._rebuild_device_tensor_from_numpy", "tensors saved from NumPy arrays"),
    ("torch._utils._rebuild_device_tensor_from_cpu_tensor", "device tensors"),
    ("torch.serialization._get_layout", "non-strided layouts"),
    ("builtins.complex", "complex numbers"),
    ("builtins.slice", "slices"),
];

/// Resolves `module.name` to an allowed global, or refuses it by name.
fn resolve_global(as_named: &str, name: &str) -> Result<Global> {
    // Python 2 pickles name the builtins `__builtin__`; Python 3 reads them as `builtins`
    let module = if as_named == "__builtin__" { "builtins" } else { as_named };
    let global = match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("builtins", "set") => Global::Set,
        ("builtins", "frozenset") => Global::FrozenSet,
        ("builtins", "bytearray") => Global::ByteArray,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor_v3") => Global::RebuildTensorV3,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch._tensor", "_rebuild_from_type_v2") => Global::RebuildFromTypeV2,
        ("torch.nn.parameter", "Parameter") | ("torch", "Parameter") => Global::Parameter,
        ("torch", "Tensor") | ("torch._tensor", "Tensor") => Global::TensorType,
        ("torch", "Size") => Global::Size,
        ("torch", "device") => Global::Device,
        ("torch", _) | ("torch.storage", _) if STORAGES.iter().any(|(n, _)| *n == name) => {
            let element = STORAGES.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
            Global::StorageType { name: name.into(), element }
        }
        ("torch", _) if name.ends_with("Storage") && name.chars().all(|c| c.is_ascii_alphanumeric()) => {
            // ComplexFloatStorage, QInt8Storage, ...: a storage sinew has no type for
            Global::StorageType { name: name.into(), element: None }
        }
        ("torch", _) if DTYPES.iter().any(|(n, _)| *n == name) => {
            let &(name, element) = DTYPES.iter().find(|(n, _)| *n == name).expect("found above");
            Global::Dtype { name, element }
        }
        _ => {
            let full = format!("{module}.{name}");
            if let Some((_, what)) = ALLOWED_NOT_BUILT.iter().find(|(n, _)| *n == full) {
                return Err(SerializeError::Torch(format!(
                    "the file holds {what} ({full}): PyTorch's weights-only loader allows them, \
                     but sinew does not read them"
                )));
            }
            // named as the file names it
            return Err(SerializeError::ForbiddenGlobal { name: format!("{as_named}.{name}") });
        }
    };
    Ok(global)
}

/// The pickle machine over one byte string, which may hold several pickles one after
/// another (the legacy format): [`Unpickler::load`] reads the next.
#[derive(Debug)]
pub(crate) struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    /// Every object made so far, by every pickle of the stream.
    pub(crate) nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    /// The storages the persistent ids named, in order (ids of `Node::Storage`).
    pub(crate) storages: Vec<Id>,
}

impl<'a> Unpickler<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Unpickler {
            data,
            pos: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            storages: Vec::new(),
        }
    }

    /// Where the next pickle (or the bytes after the last) starts.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn error(&self, msg: impl Into<String>) -> SerializeError {
        SerializeError::Pickle { offset: self.pos, msg: msg.into() }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(SerializeError::Pickle {
                offset: self.pos,
                msg: format!("{what} declares {n} bytes, but only {left} remain (the pickle is truncated?)"),
            });
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn le_u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn le_u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A length read from the pickle, as `usize` (checked against the bytes by `take`).
    fn len_u64(&mut self, what: &str) -> Result<usize> {
        let n = self.le_u64(what)?;
        usize::try_from(n).map_err(|_| self.error(format!("{what} declares {n} bytes")))
    }

    /// A text line (protocol 0's arguments), without its `\n`.
    fn line(&mut self, what: &str) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.error(format!("{what}: no end of line before the end of the data")));
        };
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    fn line_str(&mut self, what: &str) -> Result<&'a str> {
        let line = self.line(what)?;
        std::str::from_utf8(line).map_err(|_| self.error(format!("{what}: not UTF-8")))
    }

    fn utf8(&self, bytes: &[u8], what: &str) -> Result<String> {
        String::from_utf8(bytes.to_vec()).map_err(|_| self.error(format!("{what}: invalid UTF-8")))
    }

    fn add(&mut self, node: Node) -> Id {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn push(&mut self, id: Id) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(self.error(format!("the stack grows past {MAX_STACK} entries")));
        }
        self.stack.push(id);
        Ok(())
    }

    fn push_new(&mut self, node: Node) -> Result<()> {
        let id = self.add(node);
        self.push(id)
    }

    fn pop(&mut self, op: &str) -> Result<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.error(format!("{op} on an empty stack")));
        }
        Ok(self.stack.pop().expect("checked"))
    }

    fn top(&self, op: &str) -> Result<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.error(format!("{op} on an empty stack")));
        }
        Ok(*self.stack.last().expect("checked"))
    }

    /// The items above the last mark, which is removed.
    fn pop_mark(&mut self, op: &str) -> Result<Vec<Id>> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.error(format!("{op} without a MARK")));
        };
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, index: u64) -> Result<()> {
        let id = self.top("PUT")?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&index) {
            return Err(self.error(format!("the memo grows past {MAX_MEMO} entries")));
        }
        self.memo.insert(index, id);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<()> {
        let Some(&id) = self.memo.get(&index) else {
            return Err(self.error(format!("GET of memo entry {index}, which was never PUT")));
        };
        self.push(id)
    }

    /// Reads the next pickle of the stream, up to its `STOP`, and returns its object.
    pub(crate) fn load(&mut self) -> Result<Id> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        loop {
            let at = self.pos;
            let op = self.byte("opcode").map_err(|_| self.error("the pickle ends before its STOP opcode"))?;
            match op {
                0x80 => {
                    let proto = self.byte("PROTO")?;
                    if proto > 5 {
                        return Err(self.error(format!("pickle protocol {proto} (sinew reads 0 to 5)")));
                    }
                }
                // FRAME: a length prefix for the frame's opcodes, which are read as they come
                0x95 => {
                    self.le_u64("FRAME")?;
                }
                b'.' => {
                    let id = self.pop("STOP")?;
                    return Ok(id);
                }
                b'(' => {
                    if self.marks.len() >= MAX_MARKS {
                        return Err(self.error(format!("more than {MAX_MARKS} open MARKs")));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    // POP: the top item, or the mark on top when there is no item above it
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop("POP")?;
                    }
                }
                b'1' => {
                    self.pop_mark("POP_MARK")?;
                }
                b'2' => {
                    let id = self.top("DUP")?;
                    self.push(id)?;
                }
                // integers
                b'J' => {
                    let v = self.le_u32("BININT")? as i32;
                    self.push_new(Node::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.byte("BININT1")?;
                    self.push_new(Node::Int(i64::from(v)))?;
                }
                b'M' => {
                    let b = self.take(2, "BININT2")?;
                    self.push_new(Node::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))))?;
                }
                0x8a => {
                    let n = usize::from(self.byte("LONG1")?);
                    let b = self.take(n, "LONG1")?;
                    self.push_new(long_from_bytes(b))?;
                }
                0x8b => {
                    let n = self.le_u32("LONG4")? as i32;
                    let n = usize::try_from(n).map_err(|_| self.error("LONG4 with a negative length"))?;
                    let b = self.take(n, "LONG4")?;
                    self.push_new(long_from_bytes(b))?;
                }
                b'I' => {
                    let line = self.line_str("INT")?;
                    let node = match line {
                        "00" => Node::Bool(false),
                        "01" => Node::Bool(true),
                        s => Node::Int(s.parse().map_err(|_| self.error(format!("INT {s:?}")))?),
                    };
                    self.push_new(node)?;
                }
                b'L' => {
                    let line = self.line_str("LONG")?;
                    let digits = line.strip_suffix('L').unwrap_or(line);
                    let v: i64 =
                        digits.parse().map_err(|_| self.error(format!("LONG {line:?} (past 64 bits?)")))?;
                    self.push_new(Node::Int(v))?;
                }
                // floats
                b'G' => {
                    let b = self.take(8, "BINFLOAT")?;
                    self.push_new(Node::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))))?;
                }
                b'F' => {
                    let line = self.line_str("FLOAT")?;
                    let v: f64 = line.parse().map_err(|_| self.error(format!("FLOAT {line:?}")))?;
                    self.push_new(Node::Float(v))?;
                }
                // constants
                b'N' => self.push_new(Node::None)?,
                0x88 => self.push_new(Node::Bool(true))?,
                0x89 => self.push_new(Node::Bool(false))?,
                // strings (Python 3 str)
                b'X' => {
                    let n = self.le_u32("BINUNICODE")? as usize;
                    let b = self.take(n, "BINUNICODE")?;
                    let s = self.utf8(b, "BINUNICODE")?;
                    self.push_new(Node::Str(s))?;
                }
                0x8c => {
                    let n = usize::from(self.byte("SHORT_BINUNICODE")?);
                    let b = self.take(n, "SHORT_BINUNICODE")?;
                    let s = self.utf8(b, "SHORT_BINUNICODE")?;
                    self.push_new(Node::Str(s))?;
                }
                0x8d => {
                    let n = self.len_u64("BINUNICODE8")?;
                    let b = self.take(n, "BINUNICODE8")?;
                    let s = self.utf8(b, "BINUNICODE8")?;
                    self.push_new(Node::Str(s))?;
                }
                b'V' => {
                    let line = self.line("UNICODE")?;
                    let s = raw_unicode_escape(line).ok_or_else(|| self.error("UNICODE: bad escape"))?;
                    self.push_new(Node::Str(s))?;
                }
                // Python 2 str: read as UTF-8 text, as torch.load does
                b'T' => {
                    let n = self.le_u32("BINSTRING")? as i32;
                    let n = usize::try_from(n).map_err(|_| self.error("BINSTRING with a negative length"))?;
                    let b = self.take(n, "BINSTRING")?;
                    let s = self.utf8(b, "BINSTRING")?;
                    self.push_new(Node::Str(s))?;
                }
                b'U' => {
                    let n = usize::from(self.byte("SHORT_BINSTRING")?);
                    let b = self.take(n, "SHORT_BINSTRING")?;
                    let s = self.utf8(b, "SHORT_BINSTRING")?;
                    self.push_new(Node::Str(s))?;
                }
                b'S' => {
                    let line = self.line("STRING")?;
                    let bytes = python_string_literal(line)
                        .ok_or_else(|| self.error("STRING: not a quoted literal"))?;
                    let s = self.utf8(&bytes, "STRING")?;
                    self.push_new(Node::Str(s))?;
                }
                // bytes
                b'B' => {
                    let n = self.le_u32("BINBYTES")? as usize;
                    let b = self.take(n, "BINBYTES")?;
                    self.push_new(Node::Bytes(b.to_vec()))?;
                }
                b'C' => {
                    let n = usize::from(self.byte("SHORT_BINBYTES")?);
                    let b = self.take(n, "SHORT_BINBYTES")?;
                    self.push_new(Node::Bytes(b.to_vec()))?;
                }
                0x8e | 0x96 => {
                    let name = if op == 0x8e { "BINBYTES8" } else { "BYTEARRAY8" };
                    let n = self.len_u64(name)?;
                    let b = self.take(n, name)?;
                    self.push_new(Node::Bytes(b.to_vec()))?;
                }
                0x97 | 0x98 => {
                    return Err(
                        self.error("out-of-band buffers (NEXT_BUFFER), which torch.save never writes")
                    );
                }
                // tuples
                b')' => self.push_new(Node::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark("TUPLE")?;
                    self.push_new(Node::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop("TUPLE1/2/3")?);
                    }
                    items.reverse();
                    self.push_new(Node::Tuple(items))?;
                }
                // lists
                b']' => self.push_new(Node::List(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark("LIST")?;
                    self.push_new(Node::List(items))?;
                }
                b'a' => {
                    let item = self.pop("APPEND")?;
                    let list = self.top("APPEND")?;
                    self.extend(list, vec![item], "APPEND")?;
                }
                b'e' => {
                    let items = self.pop_mark("APPENDS")?;
                    let list = self.top("APPENDS")?;
                    self.extend(list, items, "APPENDS")?;
                }
                // dicts
                b'}' => self.push_new(Node::Dict(Box::default()))?,
                b'd' => {
                    let items = self.pop_mark("DICT")?;
                    let id = self.add(Node::Dict(Box::default()));
                    self.set_items(id, &items, "DICT")?;
                    self.push(id)?;
                }
                b's' => {
                    let value = self.pop("SETITEM")?;
                    let key = self.pop("SETITEM")?;
                    let dict = self.top("SETITEM")?;
                    self.set_items(dict, &[key, value], "SETITEM")?;
                }
                b'u' => {
                    let items = self.pop_mark("SETITEMS")?;
                    let dict = self.top("SETITEMS")?;
                    self.set_items(dict, &items, "SETITEMS")?;
                }
                // sets
                0x8f => self.push_new(Node::Set(Vec::new()))?,
                0x90 => {
                    let items = self.pop_mark("ADDITEMS")?;
                    let set = self.top("ADDITEMS")?;
                    match &mut self.nodes[set] {
                        Node::Set(v) => v.extend(items),
                        other => {
                            let kind = other.kind();
                            return Err(self.error(format!("ADDITEMS to {kind}, not a set")));
                        }
                    }
                }
                0x91 => {
                    let items = self.pop_mark("FROZENSET")?;
                    self.push_new(Node::Set(items))?;
                }
                // the memo
                b'p' => {
                    let line = self.line_str("PUT")?;
                    let i = line.parse().map_err(|_| self.error(format!("PUT {line:?}")))?;
                    self.memo_put(i)?;
                }
                b'q' => {
                    let i = self.byte("BINPUT")?;
                    self.memo_put(u64::from(i))?;
                }
                b'r' => {
                    let i = self.le_u32("LONG_BINPUT")?;
                    self.memo_put(u64::from(i))?;
                }
                0x94 => {
                    let i = self.memo.len() as u64;
                    self.memo_put(i)?;
                }
                b'g' => {
                    let line = self.line_str("GET")?;
                    let i = line.parse().map_err(|_| self.error(format!("GET {line:?}")))?;
                    self.memo_get(i)?;
                }
                b'h' => {
                    let i = self.byte("BINGET")?;
                    self.memo_get(u64::from(i))?;
                }
                b'j' => {
                    let i = self.le_u32("LONG_BINGET")?;
                    self.memo_get(u64::from(i))?;
                }
                // globals: looked up in the allowlist, never imported
                b'c' => {
                    let module = self.line_str("GLOBAL")?;
                    let name = self.line_str("GLOBAL")?;
                    let g = resolve_global(module, name)?;
                    self.push_new(Node::Global(g))?;
                }
                0x93 => {
                    let name = self.pop("STACK_GLOBAL")?;
                    let module = self.pop("STACK_GLOBAL")?;
                    let (Node::Str(module), Node::Str(name)) = (&self.nodes[module], &self.nodes[name])
                    else {
                        return Err(self.error("STACK_GLOBAL of something other than two strings"));
                    };
                    let g = resolve_global(module, name)?;
                    self.push_new(Node::Global(g))?;
                }
                0x82..=0x84 => {
                    return Err(self
                        .error("an extension-registry global (EXT1/2/4), which weights-only loads refuse"));
                }
                // calls: only of allowed globals, built here as data
                b'R' => {
                    let args = self.pop("REDUCE")?;
                    let callable = self.pop("REDUCE")?;
                    let args = self.tuple_items(args, "REDUCE's arguments")?;
                    let node = self.call(callable, &args)?;
                    self.push_new(node)?;
                }
                0x81 => {
                    let args = self.pop("NEWOBJ")?;
                    let class = self.pop("NEWOBJ")?;
                    let args = self.tuple_items(args, "NEWOBJ's arguments")?;
                    let node = self.call(class, &args)?;
                    self.push_new(node)?;
                }
                0x92 => {
                    let kwargs = self.pop("NEWOBJ_EX")?;
                    let args = self.pop("NEWOBJ_EX")?;
                    let class = self.pop("NEWOBJ_EX")?;
                    if !matches!(&self.nodes[kwargs], Node::Dict(d) if d.items.is_empty()) {
                        return Err(self.error("NEWOBJ_EX with keyword arguments"));
                    }
                    let args = self.tuple_items(args, "NEWOBJ_EX's arguments")?;
                    let node = self.call(class, &args)?;
                    self.push_new(node)?;
                }
                b'i' => {
                    let module = self.line_str("INST")?;
                    let name = self.line_str("INST")?;
                    let g = resolve_global(module, name)?;
                    let class = self.add(Node::Global(g));
                    let args = self.pop_mark("INST")?;
                    let node = self.call(class, &args)?;
                    self.push_new(node)?;
                }
                b'o' => {
                    let mut items = self.pop_mark("OBJ")?;
                    if items.is_empty() {
                        return Err(self.error("OBJ without a class"));
                    }
                    let class = items.remove(0);
                    let node = self.call(class, &items)?;
                    self.push_new(node)?;
                }
                b'b' => {
                    let state = self.pop("BUILD")?;
                    let target = self.top("BUILD")?;
                    // a state dict's `_metadata`, or a tensor's Python attributes: kept out
                    match &self.nodes[target] {
                        Node::Dict(_) | Node::Tensor(_) => {}
                        other => {
                            let kind = other.kind();
                            return Err(self.error(format!("BUILD (setting the state) of {kind}")));
                        }
                    }
                    let _ = state;
                }
                // persistent ids: the storages
                b'Q' => {
                    let pid = self.pop("BINPERSID")?;
                    let storage = self.persistent_load(pid)?;
                    self.push(storage)?;
                }
                b'P' => {
                    return Err(self.error("a text persistent id (PERSID), which torch.save never writes"));
                }
                other => {
                    return Err(SerializeError::Pickle {
                        offset: at,
                        msg: format!("unknown opcode {other:#04x} (not a pickle, or a corrupt one)"),
                    });
                }
            }
        }
    }

    fn extend(&mut self, list: Id, items: Vec<Id>, op: &str) -> Result<()> {
        match &mut self.nodes[list] {
            Node::List(v) => {
                v.extend(items);
                Ok(())
            }
            other => {
                let kind = other.kind();
                Err(self.error(format!("{op} to {kind}, not a list")))
            }
        }
    }

    /// A hashable node's key, as Python hashes it; `None` for unhashable ones.
    fn key(&self, id: Id, depth: usize) -> Option<Key> {
        if depth > 64 {
            return None;
        }
        Some(match &self.nodes[id] {
            Node::None => Key::None,
            Node::Bool(b) => Key::Int(i64::from(*b)),
            Node::Int(i) => Key::Int(*i),
            Node::BigInt(b) => Key::BigInt(b.clone()),
            Node::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Key::Int(*f as i64),
            Node::Float(f) => Key::Float(f.to_bits()),
            Node::Str(s) => Key::Str(s.clone()),
            Node::Bytes(b) => Key::Bytes(b.clone()),
            Node::Tuple(items) => {
                Key::Tuple(items.iter().map(|&i| self.key(i, depth + 1)).collect::<Option<Vec<_>>>()?)
            }
            // tensors and storages hash by identity
            Node::Tensor(_) | Node::Storage(_) | Node::Global(_) => {
                Key::Tuple(vec![Key::Int(-1), Key::Int(id as i64)])
            }
            Node::List(_) | Node::Dict(_) | Node::Set(_) => return None,
        })
    }

    fn set_items(&mut self, dict: Id, flat: &[Id], op: &str) -> Result<()> {
        if !flat.len().is_multiple_of(2) {
            return Err(self.error(format!("{op} with an odd number of items")));
        }
        if !matches!(self.nodes[dict], Node::Dict(_)) {
            let kind = self.nodes[dict].kind();
            return Err(self.error(format!("{op} on {kind}, not a dict")));
        }
        for pair in flat.chunks_exact(2) {
            let (k, v) = (pair[0], pair[1]);
            let Some(key) = self.key(k, 0) else {
                let kind = self.nodes[k].kind();
                return Err(self.error(format!("{op}: {kind} as a dict key (unhashable)")));
            };
            let Node::Dict(d) = &mut self.nodes[dict] else { unreachable!("checked above") };
            match d.index.get(&key) {
                Some(&i) => d.items[i].1 = v,
                None => {
                    d.index.insert(key, d.items.len());
                    d.items.push((k, v));
                }
            }
        }
        Ok(())
    }

    fn tuple_items(&self, id: Id, what: &str) -> Result<Vec<Id>> {
        match &self.nodes[id] {
            Node::Tuple(items) => Ok(items.clone()),
            other => Err(self.error(format!("{what} are {}, not a tuple", other.kind()))),
        }
    }

    fn int(&self, id: Id, what: &str) -> Result<i64> {
        match &self.nodes[id] {
            Node::Int(i) => Ok(*i),
            Node::Bool(b) => Ok(i64::from(*b)),
            other => Err(self.error(format!("{what} is {}, not an int", other.kind()))),
        }
    }

    fn non_negative(&self, id: Id, what: &str) -> Result<u64> {
        let v = self.int(id, what)?;
        u64::try_from(v).map_err(|_| self.error(format!("{what} is negative ({v})")))
    }

    /// A tuple (or list) of non-negative ints: a size or a stride.
    fn dims(&self, id: Id, what: &str) -> Result<Vec<u64>> {
        let items = match &self.nodes[id] {
            Node::Tuple(items) | Node::List(items) => items,
            other => return Err(self.error(format!("{what} is {}, not a tuple of ints", other.kind()))),
        };
        if items.len() > MAX_DIMS {
            return Err(self.error(format!("{what} has {} dimensions (at most {MAX_DIMS})", items.len())));
        }
        items.iter().map(|&i| self.non_negative(i, what)).collect()
    }

    /// What calling the allowed global `callable` with `args` builds.
    fn call(&mut self, callable: Id, args: &[Id]) -> Result<Node> {
        let Node::Global(g) = &self.nodes[callable] else {
            let kind = self.nodes[callable].kind();
            return Err(self.error(format!("a call of {kind}, not of a global")));
        };
        let g = g.clone();
        let arity = |lo: usize, hi: usize, name: &str| -> Result<()> {
            if (lo..=hi).contains(&args.len()) {
                Ok(())
            } else {
                Err(self.error(format!("{name} called with {} arguments", args.len())))
            }
        };
        match g {
            Global::OrderedDict => {
                arity(0, 1, "OrderedDict")?;
                let dict = self.add(Node::Dict(Box::default()));
                if let Some(&pairs) = args.first() {
                    let pairs = match &self.nodes[pairs] {
                        Node::List(items) | Node::Tuple(items) => items.clone(),
                        other => return Err(self.error(format!("OrderedDict of {}", other.kind()))),
                    };
                    let mut flat = Vec::with_capacity(pairs.len() * 2);
                    for p in pairs {
                        match &self.nodes[p] {
                            Node::List(kv) | Node::Tuple(kv) if kv.len() == 2 => flat.extend_from_slice(kv),
                            _ => return Err(self.error("OrderedDict of items that are not pairs")),
                        }
                    }
                    self.set_items(dict, &flat, "OrderedDict")?;
                }
                Ok(std::mem::replace(&mut self.nodes[dict], Node::None))
            }
            Global::Set | Global::FrozenSet => {
                arity(0, 1, "set")?;
                let items = match args.first().map(|&a| &self.nodes[a]) {
                    None => Vec::new(),
                    Some(Node::List(v) | Node::Tuple(v) | Node::Set(v)) => v.clone(),
                    Some(other) => return Err(self.error(format!("set of {}", other.kind()))),
                };
                Ok(Node::Set(items))
            }
            Global::ByteArray => {
                arity(0, 2, "bytearray")?;
                match args.first().map(|&a| &self.nodes[a]) {
                    None => Ok(Node::Bytes(Vec::new())),
                    Some(Node::Bytes(b)) => Ok(Node::Bytes(b.clone())),
                    Some(Node::Str(_)) if args.len() == 2 => self.encode(args[0], args[1]),
                    Some(other) => Err(self.error(format!("bytearray of {}", other.kind()))),
                }
            }
            Global::CodecsEncode => {
                arity(2, 2, "_codecs.encode")?;
                self.encode(args[0], args[1])
            }
            Global::Size => {
                arity(1, 1, "torch.Size")?;
                match &self.nodes[args[0]] {
                    Node::Tuple(v) | Node::List(v) => Ok(Node::Tuple(v.clone())),
                    other => Err(self.error(format!("torch.Size of {}", other.kind()))),
                }
            }
            Global::Device => {
                arity(1, 2, "torch.device")?;
                let Node::Str(kind) = &self.nodes[args[0]] else {
                    return Err(self.error("torch.device of something other than a str"));
                };
                let mut name = kind.clone();
                if let Some(&index) = args.get(1) {
                    let index = self.int(index, "torch.device's index")?;
                    name = format!("{name}:{index}");
                }
                Ok(Node::Str(name))
            }
            Global::RebuildTensor | Global::RebuildTensorV2 | Global::RebuildTensorV3 => {
                let (name, lo, hi) = match g {
                    Global::RebuildTensor => ("_rebuild_tensor", 4, 4),
                    Global::RebuildTensorV2 => ("_rebuild_tensor_v2", 6, 7),
                    _ => ("_rebuild_tensor_v3", 7, 8),
                };
                arity(lo, hi, name)?;
                let storage = args[0];
                if !matches!(self.nodes[storage], Node::Storage(_)) {
                    let kind = self.nodes[storage].kind();
                    return Err(self.error(format!("{name} of {kind}, not a storage")));
                }
                let offset = self.non_negative(args[1], "a tensor's storage offset")?;
                let size = self.dims(args[2], "a tensor's size")?;
                let stride = self.dims(args[3], "a tensor's stride")?;
                if size.len() != stride.len() {
                    return Err(self.error(format!(
                        "a tensor of {} dimensions with {} strides",
                        size.len(),
                        stride.len()
                    )));
                }
                let element = if matches!(g, Global::RebuildTensorV3) {
                    match &self.nodes[args[6]] {
                        Node::Global(Global::Dtype { element: Some(e), .. }) => Some(*e),
                        Node::Global(Global::Dtype { name, element: None }) => {
                            return Err(SerializeError::Torch(format!(
                                "a tensor of dtype torch.{name}, which sinew has no type for"
                            )));
                        }
                        other => {
                            return Err(self.error(format!("_rebuild_tensor_v3's dtype is {}", other.kind())));
                        }
                    }
                } else {
                    None
                };
                Ok(Node::Tensor(Box::new(TensorRef { storage, element, offset, size, stride })))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState | Global::Parameter => {
                arity(1, 4, "a Parameter")?;
                match &self.nodes[args[0]] {
                    Node::Tensor(t) => Ok(Node::Tensor(t.clone())),
                    other => Err(self.error(format!("a Parameter of {}", other.kind()))),
                }
            }
            Global::RebuildFromTypeV2 => {
                // (func, type, args, state): a tensor's rebuild, then its Python state set
                arity(4, 4, "_rebuild_from_type_v2")?;
                match &self.nodes[args[1]] {
                    Node::Global(Global::TensorType | Global::Parameter) => {}
                    other => {
                        return Err(self
                            .error(format!("_rebuild_from_type_v2 of {}, not a tensor type", other.kind())));
                    }
                }
                let inner = self.tuple_items(args[2], "_rebuild_from_type_v2's arguments")?;
                self.call(args[0], &inner)
            }
            Global::TensorType | Global::StorageType { .. } | Global::Dtype { .. } => {
                Err(self
                    .error(format!("a call of {}, which builds nothing a state dict holds", g.python_name())))
            }
        }
    }

    /// `_codecs.encode(text, encoding)`: how protocol 2 pickles `bytes`.
    fn encode(&self, text: Id, encoding: Id) -> Result<Node> {
        let (Node::Str(text), Node::Str(encoding)) = (&self.nodes[text], &self.nodes[encoding]) else {
            return Err(self.error("_codecs.encode of something other than two strings"));
        };
        match encoding.as_str() {
            "latin1" | "latin-1" | "iso-8859-1" => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
                .map(Node::Bytes)
                .ok_or_else(|| self.error("_codecs.encode: a character past latin-1")),
            "utf-8" | "utf8" => Ok(Node::Bytes(text.as_bytes().to_vec())),
            other => Err(self.error(format!("_codecs.encode with encoding {other:?}"))),
        }
    }

    /// A persistent id: `('storage', storage type, key, location, numel[, view])`.
    fn persistent_load(&mut self, pid: Id) -> Result<Id> {
        let items = self.tuple_items(pid, "a persistent id")?;
        let Some(&first) = items.first() else {
            return Err(self.error("an empty persistent id"));
        };
        match &self.nodes[first] {
            Node::Str(s) if s == "storage" => {}
            Node::Str(s) if s == "module" => {
                return Err(SerializeError::Torch(
                    "the file pickles a whole nn.Module (torch.save(model)), whose loading runs its \
                     Python code; save model.state_dict() instead"
                        .into(),
                ));
            }
            _ => return Err(self.error("a persistent id that is not a storage")),
        }
        if !(5..=6).contains(&items.len()) {
            return Err(self.error(format!("a storage persistent id of {} items", items.len())));
        }
        let (element, type_name) = match &self.nodes[items[1]] {
            Node::Global(Global::StorageType { name, element }) => (*element, name.to_string()),
            other => return Err(self.error(format!("a storage whose type is {}", other.kind()))),
        };
        let key = match &self.nodes[items[2]] {
            Node::Str(s) => s.clone(),
            Node::Int(i) => i.to_string(),
            other => return Err(self.error(format!("a storage key that is {}", other.kind()))),
        };
        let numel = self.non_negative(items[4], "a storage's size")?;
        let view = match items.get(5).map(|&v| &self.nodes[v]) {
            None | Some(Node::None) => None,
            Some(Node::Tuple(v)) if v.len() == 3 => {
                let offset = self.non_negative(v[1], "a storage view's offset")?;
                let len = self.non_negative(v[2], "a storage view's size")?;
                Some((offset, len))
            }
            Some(other) => return Err(self.error(format!("a storage view that is {}", other.kind()))),
        };
        let id = self.add(Node::Storage(Box::new(StorageRef { element, type_name, key, numel, view })));
        self.storages.push(id);
        Ok(id)
    }
}

/// A `LONG1`/`LONG4` integer: little-endian two's complement.
fn long_from_bytes(b: &[u8]) -> Node {
    if b.is_empty() {
        return Node::Int(0);
    }
    if b.len() <= 8 {
        let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
        let mut full = [fill; 8];
        full[..b.len()].copy_from_slice(b);
        return Node::Int(i64::from_le_bytes(full));
    }
    Node::BigInt(b.to_vec())
}

/// Protocol 0's `UNICODE` argument: latin-1 text with `\uXXXX` and `\UXXXXXXXX` escapes.
fn raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b == b'\\' && i + 1 < line.len() && (line[i + 1] == b'u' || line[i + 1] == b'U') {
            let n = if line[i + 1] == b'u' { 4 } else { 8 };
            let hex = std::str::from_utf8(line.get(i + 2..i + 2 + n)?).ok()?;
            out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
            i += 2 + n;
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    Some(out)
}

/// Protocol 0's `STRING` argument: a Python 2 string literal in quotes, with escapes.
fn python_string_literal(line: &[u8]) -> Option<Vec<u8>> {
    let (&q, rest) = line.split_first()?;
    if q != b'\'' && q != b'"' {
        return None;
    }
    let body = rest.strip_suffix(&[q])?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let c = *body.get(i + 1)?;
        i += 2;
        out.push(match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'0' => 0,
            b'\\' | b'\'' | b'"' => c,
            b'x' => {
                let hex = std::str::from_utf8(body.get(i..i + 2)?).ok()?;
                i += 2;
                u8::from_str_radix(hex, 16).ok()?
            }
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(bytes: &[u8]) -> Result<(Unpickler<'_>, Id)> {
        let mut u = Unpickler::new(bytes);
        let id = u.load()?;
        Ok((u, id))
    }

    #[test]
    fn a_node_is_small() {
        // one node per opcode, an opcode as short as one byte: this bounds memory per byte
        assert!(std::mem::size_of::<Node>() <= 32, "{}", std::mem::size_of::<Node>());
    }

    #[test]
    fn a_memoised_dict_is_seen_filled() {
        // {'a': [d, d]} where d = {} filled after it was memoised: EMPTY_DICT PUT 0,
        // 'k' 1 SETITEM, then a list of GET 0 twice
        let bytes = b"\x80\x02}q\x00X\x01\x00\x00\x00kK\x01s]q\x01(h\x00h\x00e\x86.";
        let (u, root) = load(bytes).unwrap();
        let Node::Tuple(items) = &u.nodes[root] else { panic!() };
        let Node::List(l) = &u.nodes[items[1]] else { panic!() };
        assert_eq!(l[0], items[0]);
        let Node::Dict(d) = &u.nodes[l[1]] else { panic!() };
        assert_eq!(d.items.len(), 1);
    }

    #[test]
    fn a_key_given_twice_replaces_its_value_and_true_is_one() {
        let bytes = b"(K\x01K\x02\x88K\x03d.";
        let (u, root) = load(bytes).unwrap();
        let Node::Dict(d) = &u.nodes[root] else { panic!() };
        assert_eq!(d.items.len(), 1);
        assert!(matches!(u.nodes[d.items[0].1], Node::Int(3)));
    }

    #[test]
    fn forbidden_globals_are_named_and_nothing_after_them_is_read() {
        for (module, name) in
            [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"), ("__builtin__", "getattr")]
        {
            let bytes = format!("c{module}\n{name}\n(S'echo pwned'\ntR.");
            match load(bytes.as_bytes()) {
                // named as the file names it
                Err(SerializeError::ForbiddenGlobal { name: n }) => assert_eq!(n, format!("{module}.{name}")),
                other => panic!("{module}.{name}: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn text_literals_decode() {
        assert_eq!(python_string_literal(b"'a\\'b\\x41'").unwrap(), b"a'bA");
        assert_eq!(raw_unicode_escape(b"caf\\u00e9").unwrap(), "café");
        assert!(matches!(long_from_bytes(&[0xff]), Node::Int(-1)));
        assert!(matches!(long_from_bytes(&[0x00, 0x01]), Node::Int(256)));
        assert!(matches!(long_from_bytes(&[0; 10]), Node::BigInt(_)));
    }

    #[test]
    fn declared_lengths_are_checked_before_copying() {
        let err = load(b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f").unwrap_err().to_string();
        assert!(err.contains("only 0 remain"), "{err}");
        let err = load(b"B\xff\xff\xff\xffabc").unwrap_err().to_string();
        assert!(err.contains("BINBYTES declares 4294967295 bytes"), "{err}");
    }
}
