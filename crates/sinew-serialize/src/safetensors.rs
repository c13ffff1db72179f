//! safetensors, the format of `safetensors.torch.save_file`: read and write lists of
//! named tensors, name-compatible with PyTorch's `state_dict`.

use std::borrow::Cow;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};
use sinew_tensor::{DType, Tensor};

use crate::atomic::write_atomic;
use crate::element::{ElementType, decode_le};
use crate::error::{Result, SerializeError};

fn decode(name: &str, dtype: Dtype, shape: &[usize], data: &[u8]) -> Result<Tensor> {
    let element = match dtype {
        Dtype::F64 => ElementType::F64,
        Dtype::F32 => ElementType::F32,
        Dtype::F16 => ElementType::F16,
        Dtype::BF16 => ElementType::BF16,
        Dtype::I64 => ElementType::I64,
        Dtype::I32 => ElementType::I32,
        Dtype::I16 => ElementType::I16,
        Dtype::I8 => ElementType::I8,
        Dtype::U8 => ElementType::U8,
        Dtype::BOOL => ElementType::Bool,
        other => {
            return Err(SerializeError::UnsupportedDType {
                name: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    };
    decode_le(name, element, shape, data)
}

/// Metadata key under which sinew records the order of the tensors it writes.
const ORDER_KEY: &str = "sinew.order";

/// The first integer literal in the JSON header so large that adding the header's length
/// to it would overflow `usize` (see [`read_safetensors`]). Scans every digit run, inside
/// strings too, which can only over-report, and only for 20-digit names.
fn offset_literal_near_overflow(bytes: &[u8]) -> Option<u64> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header = bytes.get(8..8usize.checked_add(usize::try_from(n).ok()?)?)?;
    let limit = (usize::MAX as u64).saturating_sub(n.saturating_add(8));
    header
        .split(|b| !b.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .filter_map(|run| std::str::from_utf8(run).ok()?.parse::<u64>().ok())
        .find(|&v| v > limit)
}

/// What a file handed to the safetensors reader is instead, when its first bytes say so
/// (a PyTorch file is pointed to [`load_torch`](crate::load_torch)):
/// the same recognition [`Checkpoint::load`](crate::Checkpoint::load) makes, so every
/// loader names a PyTorch file as such instead of reporting a nonsensical header length.
fn foreign_format(bytes: &[u8]) -> Option<String> {
    const CONVERT: &str = "read it with sinew_serialize::load_torch (load_module takes both formats)";
    if bytes.starts_with(b"PK\x03\x04") {
        return Some(format!(
            "this is a zip archive (a PyTorch `torch.save` file: .pt, .pth, .bin?); {CONVERT}"
        ));
    }
    // a pickle's protocol opcode; a safetensors header of 640 bytes starts with the same
    // two bytes, but has its JSON object at offset 8
    if bytes.len() >= 2 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]) && bytes.get(8) != Some(&b'{') {
        return Some(format!("this is a Python pickle (a PyTorch file in the legacy format?); {CONVERT}"));
    }
    if bytes.starts_with(&crate::CHECKPOINT_MAGIC) {
        return Some("this is a sinew checkpoint: read it with Checkpoint::load".into());
    }
    None
}

/// The first name the JSON header holds twice (the `safetensors` crate reads the header
/// into a map, where a second entry silently replaces the first). `None` for a header
/// without duplicates, and for one that is not a JSON object at all (the crate reports it).
fn duplicate_header_key(bytes: &[u8]) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

    struct FirstDuplicate;
    impl<'de> Visitor<'de> for FirstDuplicate {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(key.clone()) {
                    return Ok(Some(key));
                }
            }
            Ok(None)
        }
    }

    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header = bytes.get(8..8usize.checked_add(usize::try_from(len).ok()?)?)?;
    let mut de = serde_json::Deserializer::from_slice(header);
    de.deserialize_map(FirstDuplicate).ok().flatten()
}

/// Parses safetensors bytes into named tensors: in the order they were written for files
/// sinew wrote, in the order of their data otherwise. `f16`/`bf16` become `f32`;
/// `i32`, `i16`, `i8`, `u8` and `bool` become `i64`.
///
/// ```
/// use sinew_serialize::{read_safetensors, write_safetensors};
/// use sinew_tensor::Tensor;
/// let bytes = write_safetensors(&[("b".to_string(), Tensor::ones(&[2])), ("a".to_string(), Tensor::scalar(3i64))])?;
/// let back = read_safetensors(&bytes)?;
/// assert_eq!((back[0].0.as_str(), back[1].0.as_str()), ("b", "a"));
/// assert!(read_safetensors(&bytes[..bytes.len() - 1]).is_err()); // truncated
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
///
/// # Errors
/// Malformed headers, a tensor name given twice ([`SerializeError::DuplicateName`]),
/// data that disagrees with the declared shapes, and unsupported element types, each
/// named; a corrupt file never panics.
pub fn read_safetensors(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    // The `safetensors` crate validates the header, but one sum in it
    // (`data end + 8 + header length`) is unchecked: a crafted header whose last data
    // offset is within `8 + header length` of `usize::MAX` overflows it, which panics
    // where overflow checks are on. That offset is a literal in the header, so reject
    // such literals first; `catch_unwind` stays as a backstop, so no input makes this
    // function panic.
    if let Some(bad) = offset_literal_near_overflow(bytes) {
        return Err(SerializeError::SafeTensors(format!("header declares an impossible data offset {bad}")));
    }
    if let Some(what) = foreign_format(bytes) {
        return Err(SerializeError::SafeTensors(what));
    }
    if let Some(name) = duplicate_header_key(bytes) {
        return Err(SerializeError::DuplicateName(name));
    }
    let parsed = std::panic::catch_unwind(|| -> Result<_> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| SerializeError::SafeTensors(e.to_string()))?;
        let (_, meta) =
            SafeTensors::read_metadata(bytes).map_err(|e| SerializeError::SafeTensors(e.to_string()))?;
        let order = meta.metadata().as_ref().and_then(|m| m.get(ORDER_KEY)).cloned();
        Ok((st.tensors(), order))
    })
    .map_err(|_| SerializeError::SafeTensors("header declares impossible data offsets".into()))?;
    let (mut views, order) = parsed?;
    views.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    // files written by sinew record the original order in their metadata
    if let Some(order) = order {
        // a JSON array of the names; files of earlier sinew versions joined them with
        // newlines, which a name holding a newline breaks
        let names: Vec<String> =
            serde_json::from_str(&order).unwrap_or_else(|_| order.split('\n').map(str::to_string).collect());
        let mut rank = std::collections::HashMap::new();
        for (i, name) in names.iter().enumerate() {
            rank.entry(name.as_str()).or_insert(i);
        }
        views.sort_by_key(|(n, _)| rank.get(n.as_str()).copied().unwrap_or(usize::MAX));
    }
    views
        .into_iter()
        .map(|(name, v)| {
            let t = decode(&name, v.dtype(), v.shape(), v.data())?;
            Ok((name, t))
        })
        .collect()
}

/// Reads a safetensors file. See [`read_safetensors`].
///
/// ```
/// use sinew_serialize::{SerializeError, load_safetensors};
/// let err = load_safetensors("/no/such/file.safetensors").unwrap_err();
/// assert!(matches!(err, SerializeError::Io { action: "read", .. }));
/// ```
///
/// # Errors
/// As [`read_safetensors`], plus I/O errors naming the path.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    read_safetensors(&crate::atomic::read_file(path.as_ref())?)
}

struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &TensorBytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn encode(t: &Tensor) -> TensorBytes {
    let dtype = match t.dtype() {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::I64 => Dtype::I64,
    };
    TensorBytes { dtype, shape: t.dims().to_vec(), bytes: t.to_le_bytes() }
}

/// Serialises named tensors as safetensors bytes (loadable by
/// `safetensors.torch.load_file`). sinew records the tensors' order in the metadata, so
/// [`read_safetensors`] returns them in the same order.
///
/// ```
/// use sinew_serialize::write_safetensors;
/// use sinew_tensor::Tensor;
/// let bytes = write_safetensors(&[("w".to_string(), Tensor::zeros(&[2, 2]))])?;
/// assert_eq!(bytes[8], b'{'); // 8-byte header length, then the JSON header
/// assert!(write_safetensors(&[("w".to_string(), Tensor::zeros(&[1])), ("w".to_string(), Tensor::zeros(&[1]))]).is_err());
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
///
/// # Errors
/// Duplicate names.
pub fn write_safetensors(tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let encoded: Vec<(String, TensorBytes)> = tensors.iter().map(|(n, t)| (n.clone(), encode(t))).collect();
    let mut names: Vec<&str> = encoded.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(SerializeError::DuplicateName(w[0].to_string()));
    }
    let order: Vec<&str> = encoded.iter().map(|(n, _)| n.as_str()).collect();
    // one key only: the safetensors crate writes the metadata map in a HashMap's order,
    // which differs from process to process, and files must be byte-for-byte reproducible
    let order = serde_json::to_string(&order).expect("strings encode as JSON");
    let meta = std::collections::HashMap::from([(ORDER_KEY.to_string(), order)]);
    safetensors::tensor::serialize(encoded.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| SerializeError::SafeTensors(e.to_string()))
}

/// Saves named tensors as a safetensors file, atomically (the previous file survives a
/// crash mid-save).
///
/// ```
/// use sinew_serialize::{load_safetensors, save_safetensors};
/// use sinew_tensor::Tensor;
/// let path = std::env::temp_dir().join(format!("doc-{}.safetensors", std::process::id()));
/// let w = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
/// save_safetensors(&path, &[("weight".to_string(), w.clone())])?;
/// let back = load_safetensors(&path)?;
/// assert_eq!(back[0].0, "weight");
/// assert_eq!(back[0].1.to_vec::<f32>(), w.to_vec::<f32>());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
///
/// # Errors
/// Duplicate names, or I/O errors naming the path.
pub fn save_safetensors(path: impl AsRef<Path>, tensors: &[(String, Tensor)]) -> Result<()> {
    write_atomic(path.as_ref(), &write_safetensors(tensors)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_and_sinew_files_are_named_as_such() {
        let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl";
        let err = read_safetensors(zip).unwrap_err().to_string();
        assert!(err.contains("torch.save") && err.contains("load_torch"), "{err}");
        let err = read_safetensors(b"\x80\x02}q\x00(X\x06\x00\x00\x00weight").unwrap_err().to_string();
        assert!(err.contains("pickle"), "{err}");
        // a real safetensors file whose header is 640 bytes starts with 80 02 too
        let name = "x".repeat(587);
        let header = format!(r#"{{"{name}":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#);
        assert_eq!(header.len(), 640);
        let mut st = (header.len() as u64).to_le_bytes().to_vec();
        st.extend_from_slice(header.as_bytes());
        st.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(&st[..2], &[0x80, 0x02]);
        assert_eq!(read_safetensors(&st).unwrap()[0].1.to_vec::<f32>(), vec![2.0]);
        let ckpt = crate::Checkpoint::default().to_bytes().unwrap();
        assert!(read_safetensors(&ckpt).unwrap_err().to_string().contains("Checkpoint::load"));
    }

    #[test]
    fn a_name_given_twice_in_the_header_is_an_error_naming_it() {
        let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&1.0f32.to_le_bytes());
        match read_safetensors(&bytes) {
            Err(SerializeError::DuplicateName(n)) => assert_eq!(n, "w"),
            other => panic!("expected a duplicate-name error, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_keeps_dtypes_and_order() {
        let tensors = vec![
            ("b".to_string(), Tensor::arange(0.0, 4.0, 1.0)),
            ("a".to_string(), Tensor::from_vec(vec![1.5f64, -2.0], &[2, 1]).unwrap()),
            ("n".to_string(), Tensor::scalar(7i64)),
            ("e".to_string(), Tensor::zeros(&[0, 3])),
        ];
        let back = read_safetensors(&write_safetensors(&tensors).unwrap()).unwrap();
        for ((n1, t1), (n2, t2)) in tensors.iter().zip(&back) {
            assert_eq!(n1, n2);
            assert_eq!((t1.dtype(), t1.dims()), (t2.dtype(), t2.dims()));
            assert_eq!(t1.to_vec::<f64>(), t2.to_vec::<f64>());
        }
    }

    #[test]
    fn any_name_keeps_its_place() {
        // a newline in a name (a dict key of a .pt file, say) once broke the recorded order
        let names = ["z\nb", "a", "[\"q\"]", ""];
        let tensors: Vec<(String, Tensor)> =
            names.iter().map(|n| (n.to_string(), Tensor::ones(&[1]))).collect();
        let back = read_safetensors(&write_safetensors(&tensors).unwrap()).unwrap();
        assert_eq!(back.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), names);
        // and files that joined the names with newlines still read in their order
        let header = r#"{"__metadata__":{"sinew.order":"b\na"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        let mut old = (header.len() as u64).to_le_bytes().to_vec();
        old.extend_from_slice(header.as_bytes());
        old.extend_from_slice(&[0; 8]);
        let back = read_safetensors(&old).unwrap();
        assert_eq!(back.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["b", "a"]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(read_safetensors(b"").is_err());
        assert!(read_safetensors(&[255; 64]).is_err());
    }
}
