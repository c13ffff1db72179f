//! Indexing with index tensors: `index_select`, `gather`, `scatter_add`, `one_hot`.
//! Indices are `i64` tensors; an index out of range panics naming the op, the index and
//! the size (`try_` twins return the error instead).

use crate::dtype::{DType, Element};
use crate::error::{Result, TensorError, or_panic};
use crate::shape::normalize_dim;
use crate::tensor::{Tensor, with_elem};

fn indices(op: &'static str, index: &Tensor) -> Result<Vec<i64>> {
    if index.dtype() != DType::I64 {
        return Err(TensorError::UnsupportedDType {
            op,
            dtype: index.dtype(),
            detail: ": indices must be int64".into(),
        });
    }
    Ok(index.to_vec::<i64>())
}

fn check_index(op: &'static str, i: i64, size: usize) -> Result<usize> {
    if i < 0 || i as usize >= size {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("index {i} is out of range for size {size}"),
        });
    }
    Ok(i as usize)
}

impl Tensor {
    /// [`Tensor::index_select`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If `index` is not a 1-D `i64` tensor or holds an out-of-range index.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 4.0, 1.0);
    /// let idx = Tensor::from_vec(vec![3i64, 0], &[2])?;
    /// assert_eq!(t.try_index_select(0, &idx)?.to_vec::<f32>(), vec![3.0, 0.0]);
    /// let bad = Tensor::from_vec(vec![4i64], &[1])?;
    /// assert!(t.try_index_select(0, &bad).is_err());   // out of range
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_index_select(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = normalize_dim("index_select", dim, self.ndim())?;
        if index.ndim() > 1 {
            return Err(TensorError::InvalidArgument {
                op: "index_select",
                msg: format!("index must be 1-D, got shape {:?}", index.dims()),
            });
        }
        let mut shape = self.dims().to_vec();
        shape[d] = index.numel();
        crate::shape::try_numel("index_select", &shape)?;
        let idx = indices("index_select", index)?;
        let size = self.dims()[d];
        let idx: Vec<usize> =
            idx.iter().map(|&i| check_index("index_select", i, size)).collect::<Result<_>>()?;
        let outer: usize = self.dims()[..d].iter().product();
        let inner: usize = self.dims()[d + 1..].iter().product();
        Ok(with_elem!(self.dtype(), |T| {
            let src = self.contiguous_slice::<T>();
            let mut out = crate::buffer::take(outer * idx.len() * inner);
            for o in 0..outer {
                for &i in &idx {
                    out.extend_from_slice(&src[(o * size + i) * inner..][..inner]);
                }
            }
            Tensor::from_parts(out, &shape)
        }))
    }

    /// Picks the entries `index` along `dim` (`torch.index_select`; embedding lookup is
    /// `weight.index_select(0, ids)`).
    ///
    /// # Panics
    /// If `index` is not a 1-D `i64` tensor or holds an out-of-range index.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[3, 2]);
    /// let i = Tensor::from_vec(vec![2i64, 0], &[2])?;
    /// assert_eq!(t.index_select(0, &i).to_vec::<f32>(), vec![4.0, 5.0, 0.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Tensor {
        or_panic(self.try_index_select(dim, index))
    }

    /// Checks `gather`/`scatter_add` shapes: `index` has the same number of dimensions as
    /// `self`, and no larger a size than `self` outside `dim`.
    fn check_gather_shape(&self, op: &'static str, d: usize, index: &Tensor, limit: &[usize]) -> Result<()> {
        let ok = index.ndim() == self.ndim()
            && index.dims().iter().zip(limit).enumerate().all(|(i, (&a, &b))| i == d || a <= b);
        if !ok {
            return Err(TensorError::ShapeMismatch {
                op,
                lhs: self.dims().to_vec(),
                rhs: index.dims().to_vec(),
                detail: format!(
                    ": index must have the same number of dimensions and no larger sizes outside dimension {d}"
                ),
            });
        }
        Ok(())
    }

    /// [`Tensor::gather`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If the index shape is incompatible or an index is out of range.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let idx = Tensor::from_vec(vec![1i64, 0], &[2, 1])?;
    /// assert_eq!(t.try_gather(1, &idx)?.to_vec::<f32>(), vec![2.0, 3.0]);
    /// let bad = Tensor::from_vec(vec![2i64, 0], &[2, 1])?;
    /// assert!(t.try_gather(1, &bad).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = normalize_dim("gather", dim, self.ndim())?;
        self.check_gather_shape("gather", d, index, self.dims())?;
        let idx = indices("gather", index)?;
        let ishape = index.dims().to_vec();
        let istrides = crate::shape::contiguous_strides(&ishape);
        let size = self.dims()[d];
        let l = self.layout().clone();
        with_elem!(self.dtype(), |T| {
            let src = self.storage_slice::<T>();
            let mut out = Vec::with_capacity(idx.len());
            for (flat, &i) in idx.iter().enumerate() {
                let i = check_index("gather", i, size)?;
                let mut off = l.offset;
                for k in 0..ishape.len() {
                    let c = (flat / istrides[k]) % ishape[k];
                    off += if k == d { i } else { c } * l.strides[k];
                }
                out.push(src[off]);
            }
            Ok(Tensor::from_parts(out, &ishape))
        })
    }

    /// `out[i][j] = self[index[i][j]][j]` for `dim = 0` (and likewise for other dims):
    /// `torch.gather`. The output has the index's shape.
    ///
    /// # Panics
    /// If the index shape is incompatible or an index is out of range.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let i = Tensor::from_vec(vec![1i64, 0], &[2, 1])?;
    /// assert_eq!(t.gather(1, &i).to_vec::<f32>(), vec![2.0, 3.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn gather(&self, dim: isize, index: &Tensor) -> Tensor {
        or_panic(self.try_gather(dim, index))
    }

    /// [`Tensor::scatter_add`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If shapes are incompatible, dtypes differ or an index is out of range.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let z = Tensor::zeros(&[2]);
    /// let i = Tensor::from_vec(vec![1i64, 1, 0], &[3])?;
    /// let s = Tensor::ones(&[3]);
    /// assert_eq!(z.try_scatter_add(0, &i, &s)?.to_vec::<f32>(), vec![1.0, 2.0]);
    /// let bad = Tensor::from_vec(vec![2i64, 0, 0], &[3])?;
    /// assert!(z.try_scatter_add(0, &bad, &s).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let d = normalize_dim("scatter_add", dim, self.ndim())?;
        src.check_gather_shape("scatter_add", d, index, src.dims())?;
        self.check_gather_shape("scatter_add", d, index, self.dims())?;
        if src.dtype() != self.dtype() {
            return Err(TensorError::InvalidArgument {
                op: "scatter_add",
                msg: format!("src is {} but self is {}", src.dtype(), self.dtype()),
            });
        }
        let idx = indices("scatter_add", index)?;
        let ishape = index.dims().to_vec();
        let istrides = crate::shape::contiguous_strides(&ishape);
        let out_strides = crate::shape::contiguous_strides(self.dims());
        let size = self.dims()[d];
        let sl = src.layout().clone();
        with_elem!(self.dtype(), |T| {
            let mut out: Vec<T> = self.to_vec::<T>();
            let s = src.storage_slice::<T>();
            for (flat, &i) in idx.iter().enumerate() {
                let i = check_index("scatter_add", i, size)?;
                let (mut o, mut so) = (0usize, sl.offset);
                for k in 0..ishape.len() {
                    let c = (flat / istrides[k]) % ishape[k];
                    o += if k == d { i } else { c } * out_strides[k];
                    so += c * sl.strides[k];
                }
                out[o] += s[so];
            }
            Ok(Tensor::from_parts(out, self.dims()))
        })
    }

    /// Adds `src` into a copy of `self` at positions given by `index` along `dim`
    /// (`torch.scatter_add`): the adjoint of [`Tensor::gather`].
    ///
    /// # Panics
    /// If shapes are incompatible, dtypes differ or an index is out of range.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let z = Tensor::zeros(&[3]);
    /// let i = Tensor::from_vec(vec![0i64, 2, 0], &[3])?;
    /// let s = Tensor::ones(&[3]);
    /// assert_eq!(z.scatter_add(0, &i, &s).to_vec::<f32>(), vec![2.0, 0.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Tensor {
        or_panic(self.try_scatter_add(dim, index, src))
    }

    /// [`Tensor::index_add`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If `index` is not 1-D `i64`, shapes disagree or an index is out of range.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let z = Tensor::zeros(&[3]);
    /// let i = Tensor::from_vec(vec![0i64, 2], &[2])?;
    /// let s = Tensor::ones(&[2]);
    /// assert_eq!(z.try_index_add(0, &i, &s)?.to_vec::<f32>(), vec![1.0, 0.0, 1.0]);
    /// assert!(z.try_index_add(0, &i, &Tensor::ones(&[3])).is_err());   // src must be [2]
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_index_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let d = normalize_dim("index_add", dim, self.ndim())?;
        let idx = indices("index_add", index)?;
        let mut expect = self.dims().to_vec();
        expect[d] = idx.len();
        if src.dims() != expect.as_slice() || index.ndim() > 1 {
            return Err(TensorError::ShapeMismatch {
                op: "index_add",
                lhs: self.dims().to_vec(),
                rhs: src.dims().to_vec(),
                detail: format!(": src must have shape {expect:?} for a 1-D index of {} entries", idx.len()),
            });
        }
        let size = self.dims()[d];
        let outer: usize = self.dims()[..d].iter().product();
        let inner: usize = self.dims()[d + 1..].iter().product();
        with_elem!(self.dtype(), |T| {
            let mut out: Vec<T> = self.to_vec::<T>();
            let s = src.to_dtype(T::DTYPE);
            let s = s.contiguous_slice::<T>();
            for o in 0..outer {
                for (j, &i) in idx.iter().enumerate() {
                    let i = check_index("index_add", i, size)?;
                    let dst = &mut out[(o * size + i) * inner..][..inner];
                    for (a, &b) in dst.iter_mut().zip(&s[(o * idx.len() + j) * inner..][..inner]) {
                        *a += b;
                    }
                }
            }
            Ok(Tensor::from_parts(out, self.dims()))
        })
    }

    /// Adds the slices of `src` into a copy of `self` at the entries `index` along `dim`
    /// (`torch.index_add`): the adjoint of [`Tensor::index_select`].
    ///
    /// # Panics
    /// If `index` is not 1-D `i64`, shapes disagree or an index is out of range.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // embedding-style accumulation: rows 0 and 2 receive, row 0 twice
    /// let acc = Tensor::zeros(&[3, 2]);
    /// let idx = Tensor::from_vec(vec![0i64, 2, 0], &[3])?;
    /// let src = Tensor::arange(1.0, 7.0, 1.0).reshape(&[3, 2]);
    /// let out = acc.index_add(0, &idx, &src);   // acc.index_add(0, idx, src)
    /// assert_eq!(out.to_vec::<f32>(), vec![6.0, 8.0, 0.0, 0.0, 3.0, 4.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn index_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Tensor {
        or_panic(self.try_index_add(dim, index, src))
    }

    /// One-hot encoding of an `i64` class tensor: shape `[..., num_classes]`, `f32`.
    ///
    /// # Panics
    /// If the tensor is not `i64` or a class is outside `0..num_classes`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let y = Tensor::from_vec(vec![2i64, 0], &[2])?;
    /// assert_eq!(y.one_hot(3).to_vec::<f32>(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn one_hot(&self, num_classes: usize) -> Tensor {
        let mut shape = self.dims().to_vec();
        shape.push(num_classes);
        let n = crate::tensor::checked_numel_or_panic("one_hot", &shape);
        let idx = or_panic(indices("one_hot", self));
        let mut out = crate::buffer::filled(n, 0f32);
        for (r, &c) in idx.iter().enumerate() {
            let c = or_panic(check_index("one_hot", c, num_classes));
            out[r * num_classes + c] = 1.0;
        }
        Tensor::from_parts(out, &shape)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn gather_and_scatter_add_are_adjoint() {
        let x = Tensor::arange_dtype(0.0, 12.0, 1.0, DType::F64).reshape(&[3, 4]).sin();
        let idx = Tensor::from_vec(vec![2i64, 0, 1, 1, 0, 0, 2, 2], &[2, 4]).unwrap();
        let g = Tensor::arange_dtype(1.0, 9.0, 1.0, DType::F64).reshape(&[2, 4]);
        // <gather(x), g> == <x, scatter_add(0, g)>
        let lhs = x.gather(0, &idx).mul(&g).sum_all().item();
        let rhs = x.mul(&x.zeros_like().scatter_add(0, &idx, &g)).sum_all().item();
        assert!((lhs - rhs).abs() < 1e-12);
    }

    #[test]
    fn index_add_is_adjoint_of_index_select() {
        let x = Tensor::arange_dtype(0.0, 12.0, 1.0, DType::F64).reshape(&[4, 3]).cos();
        let idx = Tensor::from_vec(vec![3i64, 3, 0], &[3]).unwrap();
        let g = Tensor::arange_dtype(1.0, 10.0, 1.0, DType::F64).reshape(&[3, 3]);
        let lhs = x.index_select(0, &idx).mul(&g).sum_all().item();
        let rhs = x.mul(&x.zeros_like().index_add(0, &idx, &g)).sum_all().item();
        assert!((lhs - rhs).abs() < 1e-12);
    }

    #[test]
    fn out_of_range_index_is_named() {
        let e = Tensor::zeros(&[3])
            .try_index_select(0, &Tensor::from_vec(vec![3i64], &[1]).unwrap())
            .unwrap_err();
        assert_eq!(e.to_string(), "index_select: index 3 is out of range for size 3");
    }

    #[test]
    #[should_panic(expected = "one_hot: index -1 is out of range for size 4")]
    fn one_hot_checks_classes() {
        Tensor::from_vec(vec![-1i64], &[1]).unwrap().one_hot(4);
    }
}
