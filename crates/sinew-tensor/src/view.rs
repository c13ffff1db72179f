//! Shape and view ops: reshape, permute, transpose, narrow, squeeze, broadcast, and the
//! joining/splitting ops cat, stack, split, chunk. Views never copy; `reshape` copies only
//! when the data cannot be reinterpreted in place.

use crate::error::{Result, TensorError, or_panic};
use crate::shape::{self, Layout, normalize_dim};
use crate::tensor::{Tensor, with_elem};

impl Tensor {
    /// [`Tensor::reshape`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] if the element counts differ;
    /// [`TensorError::TooLarge`] if `shape` exceeds [`shape::MAX_EXTENT`].
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0);
    /// assert_eq!(t.try_reshape(&[3, 2])?.dims(), &[3, 2]);
    /// assert!(t.try_reshape(&[4, 2]).is_err());   // 6 elements cannot be [4, 2]
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let numel = shape::try_numel("reshape", shape)?;
        if numel != self.numel() {
            return Err(TensorError::ShapeMismatch {
                op: "reshape",
                lhs: self.dims().to_vec(),
                rhs: shape.to_vec(),
                detail: format!(": {} elements cannot take a shape of {numel}", self.numel()),
            });
        }
        if shape == self.dims() {
            return Ok(self.clone()); // nothing to do, whatever the strides
        }
        if self.is_contiguous() {
            let mut layout = Layout::contiguous(shape);
            layout.offset = self.layout().offset;
            return Ok(self.with_layout(layout));
        }
        Ok(self.contiguous().try_reshape(shape).expect("contiguous reshape"))
    }

    /// The same elements with another shape: a view when the tensor is contiguous, else a
    /// copy (PyTorch's `reshape`).
    ///
    /// # Panics
    /// If the number of elements differs.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
    /// assert_eq!(t.dims(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        or_panic(self.try_reshape(shape))
    }

    /// Flattens dimensions `start..=end` into one (`torch.flatten`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3, 4]).flatten(1, -1).dims(), &[2, 12]);
    /// ```
    #[track_caller]
    pub fn flatten(&self, start: isize, end: isize) -> Tensor {
        if self.ndim() == 0 {
            return self.reshape(&[1]);
        }
        let s = or_panic(normalize_dim("flatten", start, self.ndim()));
        let e = or_panic(normalize_dim("flatten", end, self.ndim()));
        assert!(s <= e, "flatten: start dimension {start} comes after end dimension {end}");
        let d = self.dims();
        let mut shape = d[..s].to_vec();
        shape.push(d[s..=e].iter().product());
        shape.extend_from_slice(&d[e + 1..]);
        self.reshape(&shape)
    }

    /// Reorders dimensions: output dimension `i` is input dimension `perm[i]`. A view.
    ///
    /// # Panics
    /// If `perm` is not a permutation of `0..ndim`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::zeros(&[2, 3, 4]).permute(&[2, 0, 1]);
    /// assert_eq!(t.dims(), &[4, 2, 3]);
    /// ```
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let n = self.ndim();
        let mut seen = vec![false; n];
        let valid = perm.len() == n && perm.iter().all(|&p| p < n && !std::mem::replace(&mut seen[p], true));
        assert!(
            valid,
            "permute: {perm:?} is not a permutation of the {n} dimensions of shape {:?}",
            self.dims()
        );
        let l = self.layout();
        self.with_layout(Layout {
            shape: perm.iter().map(|&p| l.shape[p]).collect(),
            strides: perm.iter().map(|&p| l.strides[p]).collect(),
            offset: l.offset,
        })
    }

    /// Swaps two dimensions. A view.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3, 4]).transpose(0, -1).dims(), &[4, 3, 2]);
    /// ```
    #[track_caller]
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Tensor {
        let a = or_panic(normalize_dim("transpose", dim0, self.ndim()));
        let b = or_panic(normalize_dim("transpose", dim1, self.ndim()));
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Transpose of a matrix (swaps the last two dimensions; 0-D and 1-D tensors are
    /// returned as they are, like `torch.t`). A view.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
    /// let mt = m.t();   // m.T, a view
    /// assert_eq!(mt.dims(), &[3, 2]);
    /// assert_eq!(mt.to_vec::<f32>(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    /// assert_eq!(Tensor::zeros(&[4]).t().dims(), &[4]);   // 1-D: unchanged
    /// ```
    pub fn t(&self) -> Tensor {
        if self.ndim() < 2 { self.clone() } else { self.transpose(-2, -1) }
    }

    /// `len` elements of dimension `dim` starting at `start`. A view.
    ///
    /// # Panics
    /// If `start + len` exceeds the dimension.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0).narrow(0, 2, 3);
    /// assert_eq!(t.to_vec::<f32>(), vec![2.0, 3.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Tensor {
        let d = or_panic(normalize_dim("narrow", dim, self.ndim()));
        let size = self.dims()[d];
        assert!(
            start.checked_add(len).is_some_and(|e| e <= size),
            "narrow: start {start} + length {len} exceeds size {size} of dimension {d} (shape {:?})",
            self.dims()
        );
        let mut l = self.layout().clone();
        if len > 0 {
            l.offset += start * l.strides[d];
        }
        l.shape[d] = len;
        self.with_layout(l)
    }

    /// Elements `start..end` of dimension `dim`, every `step`-th one (Python's
    /// `t[..., start:end:step]`, with `end` clamped to the size). A view.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 10.0, 1.0).slice(0, 1, 8, 3);
    /// assert_eq!(t.to_vec::<f32>(), vec![1.0, 4.0, 7.0]);
    /// ```
    #[track_caller]
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Tensor {
        assert!(step > 0, "slice: step must be positive");
        let d = or_panic(normalize_dim("slice", dim, self.ndim()));
        let size = self.dims()[d];
        let end = end.min(size);
        let start = start.min(end);
        let len = (end - start).div_ceil(step);
        let mut l = self.layout().clone();
        if len > 0 {
            l.offset += start * l.strides[d];
        }
        l.shape[d] = len;
        l.strides[d] *= step;
        self.with_layout(l)
    }

    /// The sub-tensor at `index` along `dim`, with that dimension removed. A view.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
    /// assert_eq!(t.select(1, 2).to_vec::<f32>(), vec![2.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn select(&self, dim: isize, index: usize) -> Tensor {
        let d = or_panic(normalize_dim("select", dim, self.ndim()));
        assert!(
            index < self.dims()[d],
            "select: index {index} out of range for dimension {d} of shape {:?}",
            self.dims()
        );
        let mut l = self.narrow(d as isize, index, 1).layout().clone();
        l.shape.remove(d);
        l.strides.remove(d);
        self.with_layout(l)
    }

    /// Removes every size-1 dimension. A view.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[1, 3, 1, 2]).squeeze().dims(), &[3, 2]);
    /// ```
    pub fn squeeze(&self) -> Tensor {
        let l = self.layout();
        let keep: Vec<usize> = (0..self.ndim()).filter(|&i| l.shape[i] != 1).collect();
        self.with_layout(Layout {
            shape: keep.iter().map(|&i| l.shape[i]).collect(),
            strides: keep.iter().map(|&i| l.strides[i]).collect(),
            offset: l.offset,
        })
    }

    /// Removes dimension `dim` if its size is 1 (else returns the tensor unchanged, like
    /// PyTorch). A view.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::zeros(&[3, 1]);
    /// assert_eq!(t.squeeze_dim(-1).dims(), &[3]);     // t.squeeze(-1)
    /// assert_eq!(t.squeeze_dim(0).dims(), &[3, 1]);   // size 3: unchanged
    /// ```
    #[track_caller]
    pub fn squeeze_dim(&self, dim: isize) -> Tensor {
        let d = or_panic(normalize_dim("squeeze", dim, self.ndim()));
        if self.dims()[d] != 1 {
            return self.clone();
        }
        let mut l = self.layout().clone();
        l.shape.remove(d);
        l.strides.remove(d);
        self.with_layout(l)
    }

    /// Inserts a size-1 dimension at `dim` (`-1` appends). A view.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[3]).unsqueeze(0).dims(), &[1, 3]);
    /// assert_eq!(Tensor::zeros(&[3]).unsqueeze(-1).dims(), &[3, 1]);
    /// ```
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Tensor {
        let d = or_panic(normalize_dim("unsqueeze", dim, self.ndim() + 1));
        let mut l = self.layout().clone();
        let stride = if d < l.shape.len() { l.strides[d] * l.shape[d] } else { 1 };
        l.shape.insert(d, 1);
        l.strides.insert(d, stride);
        self.with_layout(l)
    }

    /// [`Tensor::broadcast_to`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] if the shape cannot broadcast to `shape`;
    /// [`TensorError::TooLarge`] if `shape` exceeds [`shape::MAX_EXTENT`] (a view that
    /// large would make the element count, and any copy of it, overflow).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::ones(&[3, 1]);
    /// assert_eq!(t.try_broadcast_to(&[2, 3, 4])?.dims(), &[2, 3, 4]);
    /// assert!(t.try_broadcast_to(&[2, 4]).is_err());   // 3 cannot become 2
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let ok = shape.len() >= self.ndim()
            && self.dims().iter().rev().zip(shape.iter().rev()).all(|(&a, &b)| a == b || a == 1);
        if !ok {
            return Err(TensorError::ShapeMismatch {
                op: "broadcast_to",
                lhs: self.dims().to_vec(),
                rhs: shape.to_vec(),
                detail: String::new(),
            });
        }
        shape::try_numel("broadcast_to", shape)?;
        let strides = shape::broadcast_strides(self.dims(), self.strides(), shape);
        Ok(self.with_layout(Layout { shape: shape.to_vec(), strides, offset: self.layout().offset }))
    }

    /// A view with size-1 (or missing leading) dimensions repeated to `shape`, without
    /// copying (stride 0).
    ///
    /// # Panics
    /// If the shapes are not broadcast-compatible.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0], &[2, 1])?.broadcast_to(&[2, 3]);
    /// assert_eq!(t.to_vec::<f32>(), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        or_panic(self.try_broadcast_to(shape))
    }

    /// `torch.expand`: like [`Tensor::broadcast_to`], where `-1` keeps a dimension's size.
    ///
    /// # Panics
    /// As [`Tensor::broadcast_to`]; also for a size below `-1`, or `-1` for a new leading
    /// dimension.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::ones(&[1, 4]).expand(&[3, -1]).dims(), &[3, 4]);
    /// ```
    #[track_caller]
    pub fn expand(&self, sizes: &[isize]) -> Tensor {
        or_panic(self.try_expand(sizes))
    }

    /// [`Tensor::expand`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// As [`Tensor::try_broadcast_to`]; [`TensorError::InvalidArgument`] for a size below
    /// `-1`, or `-1` for a new leading dimension.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::ones(&[1, 4]);
    /// assert_eq!(t.try_expand(&[2, -1])?.dims(), &[2, 4]);
    /// assert!(t.try_expand(&[-1, 2, 4]).is_err());   // -1 for a new leading dimension
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_expand(&self, sizes: &[isize]) -> Result<Tensor> {
        let lead = sizes.len().saturating_sub(self.ndim());
        let mut shape = Vec::with_capacity(sizes.len());
        for (i, &s) in sizes.iter().enumerate() {
            shape.push(match s {
                0.. => s as usize,
                -1 if i >= lead => self.dims()[i - lead],
                _ => {
                    return Err(TensorError::InvalidArgument {
                        op: "expand",
                        msg: format!(
                            "size {s} at dimension {i} of {sizes:?} (shape {:?}): sizes are non-negative, \
                             or -1 to keep an existing dimension",
                            self.dims()
                        ),
                    });
                }
            });
        }
        self.try_broadcast_to(&shape).map_err(|e| match e {
            TensorError::ShapeMismatch { lhs, rhs, detail, .. } => {
                TensorError::ShapeMismatch { op: "expand", lhs, rhs, detail }
            }
            TensorError::TooLarge { shape, .. } => TensorError::TooLarge { op: "expand", shape },
            e => e,
        })
    }

    /// [`Tensor::cat`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If `tensors` is empty, dtypes differ, or shapes differ outside `dim`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let (a, b) = (Tensor::zeros(&[2, 3]), Tensor::ones(&[1, 3]));
    /// assert_eq!(Tensor::try_cat(&[&a, &b], 0)?.dims(), &[3, 3]);
    /// assert!(Tensor::try_cat(&[&a, &b], 1).is_err());   // sizes differ outside dim 1
    /// assert!(Tensor::try_cat(&[], 0).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_cat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors.first().ok_or_else(|| TensorError::InvalidArgument {
            op: "cat",
            msg: "expected a non-empty list of tensors".into(),
        })?;
        let d = normalize_dim("cat", dim, first.ndim())?;
        for t in &tensors[1..] {
            let same_rest = t.ndim() == first.ndim()
                && t.dims().iter().zip(first.dims()).enumerate().all(|(i, (a, b))| i == d || a == b);
            if !same_rest {
                return Err(TensorError::ShapeMismatch {
                    op: "cat",
                    lhs: first.dims().to_vec(),
                    rhs: t.dims().to_vec(),
                    detail: format!(": sizes must match except in dimension {d}"),
                });
            }
            if t.dtype() != first.dtype() {
                return Err(TensorError::InvalidArgument {
                    op: "cat",
                    msg: format!("tensors have different dtypes ({} and {})", first.dtype(), t.dtype()),
                });
            }
        }
        let mut shape = first.dims().to_vec();
        let total = tensors.iter().try_fold(0usize, |acc, t| acc.checked_add(t.dims()[d]));
        shape[d] = total.unwrap_or(usize::MAX);
        shape::try_numel("cat", &shape)?;
        let outer: usize = shape[..d].iter().product();
        Ok(with_elem!(first.dtype(), |T| {
            let parts: Vec<_> = tensors.iter().map(|t| t.contiguous_slice::<T>()).collect();
            let rows: Vec<usize> = tensors.iter().map(|t| t.dims()[d..].iter().product()).collect();
            let mut out = crate::buffer::take(shape::numel(&shape));
            for o in 0..outer {
                for (p, &r) in parts.iter().zip(&rows) {
                    out.extend_from_slice(&p[o * r..(o + 1) * r]);
                }
            }
            Tensor::from_parts(out, &shape)
        }))
    }

    /// Concatenates tensors along an existing dimension.
    ///
    /// # Panics
    /// If the list is empty, dtypes differ, or shapes differ outside `dim`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::zeros(&[2, 3]);
    /// let b = Tensor::ones(&[2, 1]);
    /// assert_eq!(Tensor::cat(&[&a, &b], 1).dims(), &[2, 4]);
    /// ```
    #[track_caller]
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Tensor {
        or_panic(Tensor::try_cat(tensors, dim))
    }

    /// Stacks equal-shaped tensors along a new dimension `dim`.
    ///
    /// # Panics
    /// If the list is empty or shapes or dtypes differ.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::zeros(&[3]);
    /// assert_eq!(Tensor::stack(&[&a, &a], 0).dims(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Tensor {
        assert!(!tensors.is_empty(), "stack: expected a non-empty list of tensors");
        let first = tensors[0];
        for t in tensors {
            assert!(
                t.dims() == first.dims(),
                "stack: all tensors need the same shape, got {:?} and {:?}",
                first.dims(),
                t.dims()
            );
        }
        let unsq: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(dim)).collect();
        let refs: Vec<&Tensor> = unsq.iter().collect();
        Tensor::cat(&refs, dim)
    }

    /// Splits into views of `size` along `dim` (the last may be smaller), like
    /// `torch.split` with an int.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let parts = Tensor::arange(0.0, 5.0, 1.0).split(2, 0);
    /// assert_eq!(parts.iter().map(|p| p.numel()).collect::<Vec<_>>(), vec![2, 2, 1]);
    /// ```
    #[track_caller]
    pub fn split(&self, size: usize, dim: isize) -> Vec<Tensor> {
        assert!(size > 0, "split: size must be positive");
        let d = or_panic(normalize_dim("split", dim, self.ndim()));
        let n = self.dims()[d];
        let sizes: Vec<usize> = (0..n).step_by(size).map(|s| size.min(n - s)).collect();
        self.split_sizes(&sizes, d as isize)
    }

    /// Splits into views with the given sizes along `dim` (`torch.split` with a list).
    ///
    /// # Panics
    /// If the sizes do not add up to the dimension's size.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let parts = Tensor::arange(0.0, 6.0, 1.0).split_sizes(&[1, 2, 3], 0);   // torch.split(t, [1, 2, 3])
    /// assert_eq!(parts[1].to_vec::<f32>(), vec![1.0, 2.0]);
    /// assert_eq!(parts[2].to_vec::<f32>(), vec![3.0, 4.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Vec<Tensor> {
        let d = or_panic(normalize_dim("split", dim, self.ndim()));
        let total = sizes.iter().try_fold(0usize, |acc, &s| acc.checked_add(s));
        assert_eq!(
            total,
            Some(self.dims()[d]),
            "split: sizes {sizes:?} do not add up to {} (shape {:?})",
            self.dims()[d],
            self.dims()
        );
        let mut start = 0;
        sizes
            .iter()
            .map(|&s| {
                let v = self.narrow(d as isize, start, s);
                start += s;
                v
            })
            .collect()
    }

    /// Splits into `chunks` nearly equal views along `dim` (`torch.chunk`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 10.0, 1.0).reshape(&[2, 5]);
    /// let c = t.chunk(2, 1);   // torch.chunk(t, 2, dim=1): sizes 3 and 2
    /// assert_eq!(c.iter().map(|p| p.dims().to_vec()).collect::<Vec<_>>(), vec![vec![2, 3], vec![2, 2]]);
    /// assert_eq!(c[1].to_vec::<f32>(), vec![3.0, 4.0, 8.0, 9.0]);
    /// ```
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Vec<Tensor> {
        assert!(chunks > 0, "chunk: number of chunks must be positive");
        let d = or_panic(normalize_dim("chunk", dim, self.ndim()));
        let size = self.dims()[d].div_ceil(chunks).max(1);
        self.split(size, d as isize)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use proptest::prelude::*;

    fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(1usize..5, 0..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn permute_round_trips(shape in shape_strategy(), seed in any::<u64>()) {
            let n: usize = shape.iter().product();
            let t = Tensor::arange(0.0, n as f64, 1.0).reshape(&shape);
            let mut perm: Vec<usize> = (0..shape.len()).collect();
            // a seeded Fisher-Yates shuffle
            let mut s = seed;
            for i in (1..perm.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                perm.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() { inv[p] = i; }
            let back = t.permute(&perm).contiguous().permute(&inv);
            prop_assert_eq!(back.to_vec::<f32>(), t.to_vec::<f32>());
            prop_assert_eq!(back.dims(), t.dims());
        }

        #[test]
        fn reshape_round_trips(shape in shape_strategy()) {
            let n: usize = shape.iter().product();
            let t = Tensor::arange(0.0, n as f64, 1.0).reshape(&shape);
            let flat = t.t().reshape(&[n]);
            let again = flat.reshape(t.t().dims());
            prop_assert_eq!(again.to_vec::<f32>(), t.t().to_vec::<f32>());
        }

        #[test]
        fn split_then_cat_is_identity(shape in proptest::collection::vec(1usize..6, 1..4), size in 1usize..4, dim_seed in any::<usize>()) {
            let n: usize = shape.iter().product();
            let t = Tensor::arange(0.0, n as f64, 1.0).reshape(&shape);
            let d = (dim_seed % shape.len()) as isize;
            let parts = t.split(size, d);
            let refs: Vec<&Tensor> = parts.iter().collect();
            prop_assert_eq!(Tensor::cat(&refs, d).to_vec::<f32>(), t.to_vec::<f32>());
        }
    }

    #[test]
    fn views_share_storage() {
        let t = Tensor::zeros(&[4, 5]);
        for v in [
            t.t(),
            t.narrow(1, 1, 2),
            t.unsqueeze(0),
            t.reshape(&[20]),
            t.unsqueeze(0).broadcast_to(&[3, 4, 5]),
        ] {
            assert!(v.shares_storage(&t));
        }
        assert!(!t.t().reshape(&[20]).shares_storage(&t), "reshape of a non-contiguous view copies");
    }

    #[test]
    #[should_panic(expected = "reshape: incompatible shapes [2, 3] and [4]")]
    fn reshape_mismatch_panics_with_shapes() {
        Tensor::zeros(&[2, 3]).reshape(&[4]);
    }

    #[test]
    fn cat_reports_mismatch() {
        let e = Tensor::try_cat(&[&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[3, 3])], 1).unwrap_err();
        assert!(e.to_string().contains("[2, 3] and [3, 3]"), "{e}");
    }

    #[test]
    fn chunk_and_split_sizes() {
        let t = Tensor::arange(0.0, 7.0, 1.0);
        assert_eq!(t.chunk(3, 0).iter().map(|c| c.numel()).collect::<Vec<_>>(), vec![3, 3, 1]);
        assert_eq!(t.split_sizes(&[4, 3], 0)[1].to_vec::<f32>(), vec![4.0, 5.0, 6.0]);
    }
}
