//! A serde adapter that keeps a decoder from allocating for lengths the data cannot back.
//!
//! bincode 2's byte limit is a compile-time constant (`Configuration::with_limit::<N>()`),
//! so it cannot be set to a file's payload length, and without one bincode decodes an
//! owned `String` or byte buffer by allocating the declared length *before* reading it
//! (`vec![0u8; len]`): eight corrupt bytes could ask for an exabyte. Decoding from a
//! borrowed slice through [`Guarded`] closes that door generically, for every type
//! (including ones defined in other crates, such as the optimizer state):
//!
//! - owned strings and byte buffers are requested as *borrowed* ones, which bincode
//!   checks against the bytes actually left in the slice before anything is copied, and
//!   the visitor then copies exactly those bytes;
//! - sequences and maps report no size hint, so collections never pre-allocate from a
//!   declared length and grow only as elements actually decode (each takes at least one
//!   byte of input).
//!
//! Everything else is forwarded unchanged, so the wire format is plain bincode.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// A [`DeserializeSeed`] that deserializes `T` through [`Guarded`].
pub(crate) struct GuardedSeed<T>(pub(crate) PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for GuardedSeed<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::deserialize(Guarded(d))
    }
}

/// Wraps a deserializer: see the module documentation.
pub(crate) struct Guarded<D>(D);

/// Wraps a seed so that what it deserializes is guarded too.
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Guarded(d))
    }
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(Wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guarded<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_bytes,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        // borrowed: the length is checked against the remaining input before any copy
        self.0.deserialize_str(Wrap(visitor))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_bytes(Wrap(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_struct(name, fields, Wrap(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Wraps a visitor so that the deserializers and accessors it is handed are guarded.
struct Wrap<V>(V);

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Guarded(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Guarded(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Map(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Enum(data))
    }
}

/// A sequence whose elements are guarded and whose declared length is not a size hint.
struct Seq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        None
    }
}

/// A map whose keys and values are guarded and whose declared length is not a size hint.
struct Map<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Seed(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        None
    }
}

/// An enum whose variant tag and contents are guarded.
struct Enum<A>(A);

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), A::Error> {
        self.0.variant_seed(Seed(seed)).map(|(v, variant)| (v, Variant(variant)))
    }
}

struct Variant<A>(A);

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap(visitor))
    }
}

/// Decodes a value written by bincode's standard configuration (as
/// `bincode::serde::encode_to_vec(value, bincode::config::standard())` writes it) from
/// exactly `bytes`, through the same guard as a checkpoint's payload: no declared length
/// of a string, byte buffer or collection allocates more than the bytes can back, so a
/// crafted length costs an error, not an exabyte. For state that rides inside a checkpoint
/// as bytes (the training loop's history and callback states).
///
/// ```
/// let bytes = bincode::serde::encode_to_vec(&vec![1u32, 2, 3], bincode::config::standard()).unwrap();
/// let v: Vec<u32> = sinew_serialize::decode_bounded(&bytes)?;
/// assert_eq!(v, [1, 2, 3]);
/// // a vector claiming 2^40 elements in 10 bytes is refused without allocating for them
/// let mut hostile = vec![0xFD];
/// hostile.extend_from_slice(&(1u64 << 40).to_le_bytes());
/// hostile.push(0);
/// assert!(sinew_serialize::decode_bounded::<Vec<u64>>(&hostile).is_err());
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
///
/// # Errors
/// [`SerializeError::Corrupt`](crate::SerializeError::Corrupt) if the bytes do not decode
/// as a `T`, or bytes are left over after it.
pub fn decode_bounded<T: de::DeserializeOwned>(bytes: &[u8]) -> crate::Result<T> {
    let (value, used): (T, usize) =
        bincode::serde::seed_decode_from_slice(GuardedSeed(PhantomData), bytes, bincode::config::standard())
            .map_err(|e| crate::SerializeError::Corrupt(format!("does not decode: {e}")))?;
    if used != bytes.len() {
        return Err(crate::SerializeError::Corrupt(format!(
            "{} bytes left over after decoding",
            bytes.len() - used
        )));
    }
    Ok(value)
}
