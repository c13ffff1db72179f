//! Saved training state: [`CallbackState`] (a callback's counters as serde data),
//! [`ResumeError`], and how [`Trainer`](crate::Trainer) stores its own state and its
//! callbacks' in a [`Checkpoint`](sinew_serialize::Checkpoint)'s metadata.
//!
//! Values are encoded with bincode (every `f64` exactly, NaN and infinities included),
//! then base64, under metadata keys starting with `sinew_train.`; the checkpoint format
//! itself is unchanged.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sinew_optim::StateError;
use sinew_serialize::SerializeError;
use sinew_tensor::GeneratorState;

use crate::history::Logs;

/// A callback's state as bytes, for a checkpoint: what
/// [`Callback::state`](crate::Callback::state) returns and
/// [`Callback::load_state`](crate::Callback::load_state) reads back. Build one from any
/// serde value with [`encode`](CallbackState::encode) and read it with
/// [`decode`](CallbackState::decode); floats round-trip bit for bit.
///
/// ```
/// use sinew_train::CallbackState;
/// let state = CallbackState::encode(&(3usize, Some(0.1f64), vec![f64::INFINITY]));
/// let (count, best, v): (usize, Option<f64>, Vec<f64>) = state.decode()?;
/// assert_eq!((count, best, v), (3, Some(0.1), vec![f64::INFINITY]));
/// # Ok::<(), sinew_train::ResumeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackState(Vec<u8>);

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

impl CallbackState {
    /// Encodes `value` (bincode, standard configuration).
    ///
    /// # Panics
    /// If `value`'s `Serialize` implementation fails (derived ones do not; maps with
    /// non-string keys and sequences of unknown length are fine in bincode).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use sinew_train::CallbackState;
    /// let counts = BTreeMap::from([("epochs".to_string(), 4u64)]);
    /// let state = CallbackState::encode(&counts);
    /// assert_eq!(state.decode::<BTreeMap<String, u64>>()?, counts);
    /// // standard bincode: a one-byte length, then the key and the value
    /// assert_eq!(state.as_bytes()[..2], [1, 6]);
    /// # Ok::<(), sinew_train::ResumeError>(())
    /// ```
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> CallbackState {
        CallbackState(
            bincode::serde::encode_to_vec(value, config())
                .expect("CallbackState::encode: value did not serialize"),
        )
    }

    /// Decodes the value [`encode`](CallbackState::encode) was given.
    ///
    /// # Errors
    /// [`ResumeError::Decode`] if the bytes are not a `T`, or are followed by bytes a `T`
    /// does not use.
    ///
    /// ```
    /// use sinew_train::{CallbackState, ResumeError};
    /// let state = CallbackState::encode(&(2u32, 0.5f64));
    /// assert_eq!(state.decode::<(u32, f64)>()?, (2, 0.5));
    /// // the wrong type, or bytes left over, is an error naming the type, never a panic
    /// assert!(matches!(state.decode::<u8>(), Err(ResumeError::Decode { .. })));
    /// assert!(CallbackState::from_bytes(vec![]).decode::<u64>().is_err());
    /// # Ok::<(), ResumeError>(())
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ResumeError> {
        decode(&self.0, std::any::type_name::<T>())
    }

    /// The encoded bytes.
    ///
    /// ```
    /// use sinew_train::CallbackState;
    /// assert_eq!(CallbackState::encode(&7u8).as_bytes(), &[7]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A state from bytes made by [`encode`](CallbackState::encode) (or by hand).
    ///
    /// ```
    /// use sinew_train::CallbackState;
    /// let s = CallbackState::from_bytes(vec![7]);
    /// assert_eq!(s.decode::<u8>()?, 7);
    /// # Ok::<(), sinew_train::ResumeError>(())
    /// ```
    pub fn from_bytes(bytes: Vec<u8>) -> CallbackState {
        CallbackState(bytes)
    }
}

/// Decodes through sinew-serialize's size guard: these bytes come from a checkpoint, and
/// a declared length in them must not allocate more than the bytes can back.
fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ResumeError> {
    sinew_serialize::decode_bounded(bytes).map_err(|e| ResumeError::Decode {
        what: what.to_string(),
        msg: match e {
            SerializeError::Corrupt(msg) => msg,
            e => e.to_string(),
        },
    })
}

/// Why a run could not be resumed from a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The file could not be read, or its state dict does not fit the model.
    #[error("resume: {0}")]
    Serialize(#[from] SerializeError),
    /// The checkpoint's optimizer state does not fit the optimizer.
    #[error("resume: optimizer state: {0}")]
    Optimizer(#[from] StateError),
    /// The checkpoint holds no optimizer state (resuming needs it to continue exactly).
    #[error("resume: the checkpoint holds no optimizer state")]
    NoOptimizerState,
    /// A saved value could not be decoded (a callback's state, the history, ...).
    #[error("resume: cannot decode {what}: {msg}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The decoder's complaint.
        msg: String,
    },
    /// The checkpoint and the trainer disagree (a callback with saved state is missing,
    /// a loader's seed differs, ...).
    #[error("resume: {0}")]
    Mismatch(String),
}

// ---- the trainer's metadata --------------------------------------------------------

/// Metadata key: the format of the trainer's entries ("1").
pub(crate) const KEY_VERSION: &str = "sinew_train.version";
/// Metadata key: the trainer's shuffling seed, decimal.
pub(crate) const KEY_SEED: &str = "sinew_train.seed";
/// Metadata key: the training loader's seed, decimal (fits from a shuffling loader only).
pub(crate) const KEY_LOADER_SEED: &str = "sinew_train.loader_seed";
/// Metadata key: whether a callback had stopped training ("true"/"false").
pub(crate) const KEY_STOPPED: &str = "sinew_train.stopped";
/// Metadata key: the logs of the epochs run so far, base64 of bincode `Vec<Logs>`.
pub(crate) const KEY_HISTORY: &str = "sinew_train.history";
/// Metadata key: the callbacks' names and states, base64 of bincode
/// `Vec<(String, Option<Vec<u8>>)>`.
pub(crate) const KEY_CALLBACKS: &str = "sinew_train.callbacks";
/// Metadata key: the model's random generators (`Dropout`'s) by qualified name, base64 of
/// bincode `Vec<(String, [u8; 32], u64, u128)>` (key, stream, word position).
pub(crate) const KEY_GENERATORS: &str = "sinew_train.generators";

/// The trainer's state read back from a checkpoint's metadata.
#[derive(Clone, Debug, Default)]
pub(crate) struct SavedTrainer {
    pub(crate) seed: Option<u64>,
    pub(crate) loader_seed: Option<u64>,
    pub(crate) stopped: bool,
    pub(crate) history: Vec<Logs>,
    pub(crate) callbacks: Vec<(String, Option<CallbackState>)>,
    /// `None` for a checkpoint without the entry (saved by hand, or before it existed).
    pub(crate) generators: Option<Vec<(String, GeneratorState)>>,
}

type RawGenerator = (String, [u8; 32], u64, u128);

pub(crate) fn encode_generators(states: &[(String, GeneratorState)]) -> String {
    let raw: Vec<RawGenerator> =
        states.iter().map(|(n, g)| (n.clone(), g.seed, g.stream, g.word_pos)).collect();
    base64_encode(CallbackState::encode(&raw).as_bytes())
}

pub(crate) fn encode_history(history: &[Logs]) -> String {
    base64_encode(CallbackState::encode(history).as_bytes())
}

pub(crate) fn encode_callbacks(states: &[(String, Option<CallbackState>)]) -> String {
    let raw: Vec<(&str, Option<&[u8]>)> =
        states.iter().map(|(n, s)| (n.as_str(), s.as_ref().map(CallbackState::as_bytes))).collect();
    base64_encode(CallbackState::encode(&raw).as_bytes())
}

impl SavedTrainer {
    /// Reads the trainer's entries; a checkpoint without them (one saved by hand) gives
    /// the default (nothing to restore beyond model, optimizer, epoch and step).
    pub(crate) fn from_metadata(meta: &BTreeMap<String, String>) -> Result<SavedTrainer, ResumeError> {
        let mut saved = SavedTrainer::default();
        if let Some(v) = meta.get(KEY_VERSION).filter(|v| v.as_str() != "1") {
            return Err(ResumeError::Decode {
                what: KEY_VERSION.into(),
                msg: format!("version {v} of the trainer's state is newer than this build reads (1)"),
            });
        }
        let number = |key: &str| -> Result<Option<u64>, ResumeError> {
            meta.get(key)
                .map(|v| {
                    v.parse::<u64>().map_err(|e| ResumeError::Decode { what: key.into(), msg: e.to_string() })
                })
                .transpose()
        };
        saved.seed = number(KEY_SEED)?;
        saved.loader_seed = number(KEY_LOADER_SEED)?;
        saved.stopped = meta.get(KEY_STOPPED).is_some_and(|v| v == "true");
        if let Some(h) = meta.get(KEY_HISTORY) {
            saved.history = decode(&base64_decode(h, KEY_HISTORY)?, KEY_HISTORY)?;
        }
        if let Some(c) = meta.get(KEY_CALLBACKS) {
            let raw: Vec<(String, Option<Vec<u8>>)> =
                decode(&base64_decode(c, KEY_CALLBACKS)?, KEY_CALLBACKS)?;
            saved.callbacks = raw.into_iter().map(|(n, s)| (n, s.map(CallbackState))).collect();
        }
        if let Some(g) = meta.get(KEY_GENERATORS) {
            let raw: Vec<RawGenerator> = decode(&base64_decode(g, KEY_GENERATORS)?, KEY_GENERATORS)?;
            let states = raw
                .into_iter()
                .map(|(n, seed, stream, word_pos)| (n, GeneratorState { seed, stream, word_pos }));
            saved.generators = Some(states.collect());
        }
        Ok(saved)
    }
}

// ---- base64 (RFC 4648, with padding) ------------------------------------------------

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn base64_decode(text: &str, what: &str) -> Result<Vec<u8>, ResumeError> {
    let bad = |msg: String| ResumeError::Decode { what: what.to_string(), msg };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(bad(format!("base64 length {} is not a multiple of 4", bytes.len())));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (q, chunk) in bytes.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return Err(bad("misplaced base64 padding".into()));
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(|| bad(format!("`{}` is not a base64 character", c as char)))?;
            n = (n << 6) | v as u32;
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_the_rfc_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), coded);
            assert_eq!(base64_decode(coded, "t").unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all), "t").unwrap(), all);
        for bad in ["Zg=", "Z===", "Zg==Zm9v", "Zm9*", "Zm\u{e9}v"] {
            assert!(base64_decode(bad, "t").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn callback_state_is_exact_and_rejects_other_types() {
        let v = (f64::NAN.to_bits(), -0.0f64, f64::MIN_POSITIVE, 0.1 + 0.2);
        let s = CallbackState::encode(&v);
        let back: (u64, f64, f64, f64) = s.decode().unwrap();
        assert_eq!(back.0, v.0);
        assert_eq!(back.1.to_bits(), v.1.to_bits());
        assert_eq!((back.2, back.3), (v.2, v.3));
        // trailing bytes and truncation are errors
        assert!(CallbackState::encode(&(1u8, 2u8)).decode::<u8>().is_err());
        assert!(CallbackState::from_bytes(vec![]).decode::<u64>().is_err());
    }

    #[test]
    fn trainer_metadata_round_trips() {
        let mut logs = Logs::new();
        logs.insert("loss".into(), 0.1 + 0.2);
        let history = vec![logs.clone(), logs];
        let callbacks = vec![("a".to_string(), Some(CallbackState::encode(&5u32))), ("b".to_string(), None)];
        let mut meta = BTreeMap::new();
        meta.insert(KEY_VERSION.to_string(), "1".to_string());
        meta.insert(KEY_SEED.to_string(), "18446744073709551615".to_string());
        meta.insert(KEY_HISTORY.to_string(), encode_history(&history));
        meta.insert(KEY_CALLBACKS.to_string(), encode_callbacks(&callbacks));
        let saved = SavedTrainer::from_metadata(&meta).unwrap();
        assert_eq!(saved.seed, Some(u64::MAX));
        assert_eq!(saved.history, history);
        assert_eq!(saved.callbacks, callbacks);
        assert!(!saved.stopped && saved.loader_seed.is_none());
        meta.insert(KEY_VERSION.to_string(), "2".to_string());
        assert!(matches!(SavedTrainer::from_metadata(&meta), Err(ResumeError::Decode { .. })));
        // nothing saved by the trainer: nothing to restore
        let empty = SavedTrainer::from_metadata(&BTreeMap::new()).unwrap();
        assert!(empty.seed.is_none() && empty.history.is_empty() && empty.callbacks.is_empty());
    }
}
