//! [`StateDict`]: named tensors in order, and [`save_module`] / [`load_module`].

use std::path::Path;

use sinew_nn::{LoadReport, Module};
use sinew_tensor::Tensor;

use crate::error::{Result, SerializeError};
use crate::safetensors::{read_safetensors, save_safetensors};

/// Tensors by PyTorch-style qualified name (`"0.weight"`, `"bn.running_mean"`), in
/// order: what [`Module::state_dict`] returns and [`Module::load_state_dict`] takes, as a
/// type. A thin wrapper over `Vec<(String, Tensor)>`; names are keys ([`StateDict::insert`]
/// replaces), lookups are linear, as state dicts are small.
///
/// ```
/// use sinew_nn::{Linear, Module};
/// use sinew_serialize::StateDict;
/// use sinew_tensor::Generator;
///
/// let layer = Linear::new(3, 2, &mut Generator::new(0));
/// let state = StateDict::from_module(&layer);
/// assert_eq!(state.names().collect::<Vec<_>>(), ["weight", "bias"]);
/// assert_eq!(state.get("weight").unwrap().dims(), &[2, 3]);
/// let fresh = Linear::new(3, 2, &mut Generator::new(1));
/// let report = state.load_into(&fresh, true)?;
/// assert!(report.is_clean());
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct StateDict(Vec<(String, Tensor)>);

impl StateDict {
    /// An empty state dict.
    ///
    /// ```
    /// let s = sinew_serialize::StateDict::new();
    /// assert!(s.is_empty());
    /// ```
    pub fn new() -> Self {
        StateDict(Vec::new())
    }

    /// The parameters and buffers of `module`, in PyTorch's `state_dict` order.
    ///
    /// ```
    /// use sinew_nn::BatchNorm1d;
    /// use sinew_serialize::StateDict;
    /// let s = StateDict::from_module(&BatchNorm1d::new(4));
    /// assert_eq!(
    ///     s.names().collect::<Vec<_>>(),
    ///     ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    /// );
    /// ```
    pub fn from_module(module: &dyn Module) -> Self {
        StateDict(module.state_dict())
    }

    /// The tensor named `name`.
    ///
    /// ```
    /// use sinew_serialize::StateDict;
    /// use sinew_tensor::Tensor;
    /// let s = StateDict::from(vec![("w".to_string(), Tensor::ones(&[2]))]);
    /// assert!(s.get("w").is_some());
    /// assert!(s.get("b").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Sets `name` to `tensor`: in place (returning the old tensor) if the name exists,
    /// appended otherwise.
    ///
    /// ```
    /// use sinew_serialize::StateDict;
    /// use sinew_tensor::Tensor;
    /// let mut s = StateDict::new();
    /// assert!(s.insert("a", Tensor::zeros(&[1])).is_none());
    /// s.insert("b", Tensor::zeros(&[1]));
    /// assert!(s.insert("a", Tensor::ones(&[3])).is_some());
    /// assert_eq!(s.names().collect::<Vec<_>>(), ["a", "b"]); // order kept
    /// assert_eq!(s.get("a").unwrap().dims(), &[3]);
    /// ```
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) -> Option<Tensor> {
        let name = name.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => Some(std::mem::replace(t, tensor)),
            None => {
                self.0.push((name, tensor));
                None
            }
        }
    }

    /// Removes `name`, keeping the order of the rest.
    ///
    /// ```
    /// use sinew_serialize::StateDict;
    /// use sinew_tensor::Tensor;
    /// let mut s = StateDict::from(vec![("a".to_string(), Tensor::zeros(&[1]))]);
    /// assert!(s.remove("a").is_some());
    /// assert!(s.is_empty());
    /// ```
    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(i).1)
    }

    /// The entries in order.
    ///
    /// ```
    /// use sinew_serialize::StateDict;
    /// use sinew_tensor::Tensor;
    /// let s = StateDict::from(vec![("a".to_string(), Tensor::zeros(&[2, 3]))]);
    /// for (name, t) in s.iter() {
    ///     assert_eq!((name, t.numel()), ("a", 6));
    /// }
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Tensor)> + '_ {
        self.0.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The names in order.
    ///
    /// ```
    /// use sinew_serialize::StateDict;
    /// use sinew_tensor::Tensor;
    /// let s = StateDict::from(vec![("b".to_string(), Tensor::zeros(&[1])), ("a".to_string(), Tensor::zeros(&[1]))]);
    /// assert_eq!(s.names().collect::<Vec<_>>(), ["b", "a"]);
    /// ```
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// The number of tensors.
    ///
    /// ```
    /// use sinew_nn::Linear;
    /// use sinew_serialize::StateDict;
    /// use sinew_tensor::Generator;
    /// assert_eq!(StateDict::from_module(&Linear::new(2, 2, &mut Generator::new(0))).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no tensors.
    ///
    /// ```
    /// assert!(sinew_serialize::StateDict::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries as the slice [`Module::load_state_dict`] and
    /// [`write_safetensors`](crate::write_safetensors) take.
    ///
    /// ```
    /// use sinew_serialize::{StateDict, read_safetensors, write_safetensors};
    /// use sinew_tensor::Tensor;
    /// let s = StateDict::from(vec![("a".to_string(), Tensor::zeros(&[1]))]);
    /// let bytes = write_safetensors(s.as_slice())?;
    /// assert_eq!(read_safetensors(&bytes)?.len(), 1);
    /// # Ok::<(), sinew_serialize::SerializeError>(())
    /// ```
    pub fn as_slice(&self) -> &[(String, Tensor)] {
        &self.0
    }

    /// Loads the tensors into `module` by name ([`Module::load_state_dict`]).
    ///
    /// ```
    /// use sinew_nn::Linear;
    /// use sinew_serialize::StateDict;
    /// use sinew_tensor::{Generator, Tensor};
    /// let layer = Linear::new(2, 1, &mut Generator::new(0));
    /// let mut s = StateDict::from_module(&layer);
    /// s.insert("extra", Tensor::zeros(&[1]));
    /// assert!(s.load_into(&layer, true).is_err()); // strict: unexpected key
    /// assert_eq!(s.load_into(&layer, false)?.unexpected, ["extra"]);
    /// # Ok::<(), sinew_serialize::SerializeError>(())
    /// ```
    ///
    /// # Errors
    /// With `strict`, [`SerializeError::StateDict`] with the report of every missing,
    /// unexpected or mismatched name; the module is then unchanged.
    pub fn load_into(&self, module: &dyn Module, strict: bool) -> Result<LoadReport> {
        module.load_state_dict(&self.0, strict).map_err(SerializeError::StateDict)
    }

    /// The entries, consuming the state dict.
    ///
    /// ```
    /// use sinew_serialize::StateDict;
    /// let v: Vec<(String, sinew_tensor::Tensor)> = StateDict::new().into_vec();
    /// assert!(v.is_empty());
    /// ```
    pub fn into_vec(self) -> Vec<(String, Tensor)> {
        self.0
    }
}

impl From<Vec<(String, Tensor)>> for StateDict {
    /// Wraps entries as they are (no check for duplicate names).
    fn from(v: Vec<(String, Tensor)>) -> Self {
        StateDict(v)
    }
}

impl From<StateDict> for Vec<(String, Tensor)> {
    fn from(s: StateDict) -> Self {
        s.0
    }
}

impl FromIterator<(String, Tensor)> for StateDict {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> Self {
        StateDict(iter.into_iter().collect())
    }
}

impl IntoIterator for StateDict {
    type Item = (String, Tensor);
    type IntoIter = std::vec::IntoIter<(String, Tensor)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a StateDict {
    type Item = &'a (String, Tensor);
    type IntoIter = std::slice::Iter<'a, (String, Tensor)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl AsRef<[(String, Tensor)]> for StateDict {
    fn as_ref(&self) -> &[(String, Tensor)] {
        &self.0
    }
}

/// Saves `module`'s state dict as a safetensors file, atomically: PyTorch loads it with
/// `model.load_state_dict(safetensors.torch.load_file(path))`.
///
/// ```
/// use sinew_nn::{Linear, Module, Relu, Sequential};
/// use sinew_serialize::{load_module, save_module};
/// use sinew_tensor::Generator;
///
/// let build = |seed| Sequential::new().add(Linear::new(4, 8, &mut Generator::new(seed))).add(Relu);
/// let path = std::env::temp_dir().join(format!("doc-save-module-{}.safetensors", std::process::id()));
/// let trained = build(0);
/// save_module(&path, &trained)?;
/// let fresh = build(1);
/// let report = load_module(&path, &fresh, true)?;
/// assert!(report.is_clean());
/// assert_eq!(fresh.state_dict()[0].1.to_vec::<f32>(), trained.state_dict()[0].1.to_vec::<f32>());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), sinew_serialize::SerializeError>(())
/// ```
///
/// # Errors
/// Duplicate names, or I/O errors naming the path.
pub fn save_module(path: impl AsRef<Path>, module: &dyn Module) -> Result<()> {
    save_safetensors(path, &module.state_dict())
}

/// Loads a safetensors file (written by [`save_module`] or by PyTorch) or a PyTorch
/// `torch.save` file of a state dict (`.pt`, `.pth`, `.bin`, told apart by their bytes,
/// read by [`read_torch`](crate::read_torch)) into `module` by name. With `strict`, any missing, unexpected or mismatched name is an error and the
/// module is left unchanged; otherwise the matching tensors are loaded and the report
/// lists the rest.
///
/// ```
/// use sinew_nn::Linear;
/// use sinew_serialize::{SerializeError, load_module, save_module};
/// use sinew_tensor::Generator;
/// let path = std::env::temp_dir().join(format!("doc-load-module-{}.safetensors", std::process::id()));
/// save_module(&path, &Linear::new(4, 2, &mut Generator::new(0)))?;
/// let wrong = Linear::new(4, 3, &mut Generator::new(0));
/// match load_module(&path, &wrong, true) {
///     Err(SerializeError::StateDict(report)) => assert_eq!(report.mismatched.len(), 2),
///     other => panic!("{other:?}"),
/// }
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), SerializeError>(())
/// ```
///
/// # Errors
/// As [`load_safetensors`](crate::load_safetensors) or [`read_torch`](crate::read_torch),
/// and with `strict` [`SerializeError::StateDict`] with the report.
pub fn load_module(path: impl AsRef<Path>, module: &dyn Module, strict: bool) -> Result<LoadReport> {
    let path = path.as_ref();
    let bytes = crate::atomic::read_file(path)?;
    let state = if crate::torch::is_torch_file(&bytes) {
        crate::torch::read_torch(&bytes)?.into_vec()
    } else {
        read_safetensors(&bytes)?
    };
    module.load_state_dict(&state, strict).map_err(SerializeError::StateDict)
}
