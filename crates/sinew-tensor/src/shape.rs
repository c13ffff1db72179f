//! Layout: a shape, strides (in elements) and an offset into storage; broadcasting rules;
//! and the strided walks every kernel that accepts non-contiguous input uses.

use crate::error::{Result, TensorError};

/// Row-major (C-order) strides for `shape`.
///
/// ```
/// use sinew_tensor::shape::contiguous_strides;
/// assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);   // torch.empty(2, 3, 4).stride()
/// assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
/// ```
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1usize;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc = acc.saturating_mul(shape[i].max(1));
    }
    strides
}

/// The largest extent a tensor's shape may have (2^60): the product of its dimensions,
/// each counted as at least 1, is at most this.
///
/// Every tensor, views included, obeys it, so kernels may multiply any of a shape's sizes
/// together, and by an element size of up to 8 bytes, without overflowing `isize`. A
/// shape past it (`expand` to `[2^62 + 1, 4]`, a `[2^40, 2^40]` broadcast, `eye(2^31)`)
/// is refused with [`TensorError::TooLarge`] before anything is allocated. Zero-size
/// dimensions count as 1 so that an empty tensor such as `[2^62, 0]` cannot hide sizes
/// whose partial products overflow.
pub const MAX_EXTENT: usize = 1 << 60;

/// Number of elements of `shape` (1 for a scalar). The shape must obey [`MAX_EXTENT`]
/// (every tensor's does); use [`checked_numel`] for a shape from outside.
///
/// ```
/// use sinew_tensor::shape::numel;
/// assert_eq!(numel(&[2, 3, 4]), 24);
/// assert_eq!(numel(&[]), 1);   // a scalar
/// assert_eq!(numel(&[5, 0]), 0);
/// ```
#[inline]
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Number of elements of `shape`, or `None` if its extent (the product of its
/// dimensions, each counted as at least 1) exceeds [`MAX_EXTENT`].
///
/// ```
/// use sinew_tensor::shape::checked_numel;
/// assert_eq!(checked_numel(&[2, 3]), Some(6));
/// assert_eq!(checked_numel(&[1 << 40, 0]), Some(0));
/// assert_eq!(checked_numel(&[1 << 62, 0]), None);
/// assert_eq!(checked_numel(&[(1 << 62) + 1, 4]), None);
/// ```
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    let extent = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))?;
    (extent <= MAX_EXTENT).then(|| numel(shape))
}

/// [`checked_numel`] as a `Result` naming the op and the shape.
///
/// # Errors
/// [`TensorError::TooLarge`] if the shape's extent exceeds [`MAX_EXTENT`].
///
/// ```
/// use sinew_tensor::{TensorError, shape::try_numel};
/// assert_eq!(try_numel("zeros", &[2, 3]).unwrap(), 6);
/// let err = try_numel("zeros", &[1 << 31, 1 << 31]).unwrap_err();   // 2^62 > 2^60
/// assert!(matches!(err, TensorError::TooLarge { op: "zeros", .. }));
/// ```
pub fn try_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    checked_numel(shape).ok_or_else(|| TensorError::TooLarge { op, shape: shape.to_vec() })
}

/// Turns a possibly negative dimension (`-1` = last) into an index, PyTorch-style.
///
/// ```
/// use sinew_tensor::shape::normalize_dim;
/// assert_eq!(normalize_dim("sum", -1, 3).unwrap(), 2);
/// assert_eq!(normalize_dim("sum", 0, 3).unwrap(), 0);
/// assert!(normalize_dim("sum", 3, 3).is_err());
/// assert!(normalize_dim("sum", -4, 3).is_err());
/// ```
pub fn normalize_dim(op: &'static str, dim: isize, ndim: usize) -> Result<usize> {
    let n = ndim as isize;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n.max(1) || (ndim == 0 && d != 0) {
        return Err(TensorError::DimOutOfRange { op, dim, ndim });
    }
    Ok(d as usize)
}

/// The broadcast of two shapes under NumPy/PyTorch rules (align right; sizes equal or 1).
///
/// ```
/// use sinew_tensor::shape::broadcast_shapes;
/// // torch.broadcast_shapes((8, 1, 3), (5, 1))
/// assert_eq!(broadcast_shapes("add", &[8, 1, 3], &[5, 1]).unwrap(), vec![8, 5, 3]);
/// assert!(broadcast_shapes("add", &[2, 3], &[4]).is_err());
/// ```
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(TensorError::ShapeMismatch {
                op,
                lhs: a.to_vec(),
                rhs: b.to_vec(),
                detail: format!(": sizes {da} and {db} at dimension {i} of the broadcast cannot broadcast"),
            });
        };
    }
    try_numel(op, &out)?;
    Ok(out)
}

/// Strides that read a tensor of `shape`/`strides` as if it had the (broadcast) shape
/// `target`: size-1 and missing leading dimensions get stride 0.
///
/// ```
/// use sinew_tensor::shape::broadcast_strides;
/// // a [3, 1] column (strides [1, 1]) read as [2, 3, 4]: the new and the size-1 dimensions repeat
/// assert_eq!(broadcast_strides(&[3, 1], &[1, 1], &[2, 3, 4]), vec![0, 1, 0]);
/// ```
pub fn broadcast_strides(shape: &[usize], strides: &[usize], target: &[usize]) -> Vec<usize> {
    let lead = target.len() - shape.len();
    let mut out = vec![0; target.len()];
    for i in 0..shape.len() {
        out[lead + i] = if shape[i] == 1 && target[lead + i] != 1 { 0 } else { strides[i] };
    }
    out
}

/// Shape, strides and offset of a tensor within its storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// Elements to skip to move one step along each dimension.
    pub strides: Vec<usize>,
    /// Index of the first element in storage.
    pub offset: usize,
}

impl Layout {
    /// A row-major layout starting at offset 0.
    ///
    /// ```
    /// use sinew_tensor::Layout;
    /// let l = Layout::contiguous(&[2, 3]);
    /// assert_eq!((l.strides.as_slice(), l.offset), (&[3, 1][..], 0));
    /// assert!(l.is_contiguous());
    /// ```
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout { strides: contiguous_strides(shape), shape: shape.to_vec(), offset: 0 }
    }

    /// Number of elements.
    ///
    /// ```
    /// use sinew_tensor::Layout;
    /// assert_eq!(Layout::contiguous(&[2, 3, 4]).numel(), 24);
    /// ```
    #[inline]
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Whether elements are row-major with no gaps (size-1 dimensions may have any stride).
    ///
    /// ```
    /// use sinew_tensor::{Layout, Tensor};
    /// assert!(Layout::contiguous(&[2, 3]).is_contiguous());
    /// let t = Tensor::zeros(&[2, 3]).t();
    /// assert!(!t.layout().is_contiguous());   // strides [1, 3]
    /// assert!(Layout { shape: vec![1, 3], strides: vec![99, 1], offset: 0 }.is_contiguous());   // size 1: any stride
    /// ```
    pub fn is_contiguous(&self) -> bool {
        if self.shape.contains(&0) {
            return true; // no elements: any strides describe them
        }
        let mut expected = 1usize;
        for i in (0..self.shape.len()).rev() {
            if self.shape[i] != 1 {
                if self.strides[i] != expected {
                    return false;
                }
                expected *= self.shape[i];
            }
        }
        true
    }

    /// Storage index of the element at a multi-index.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 12.0, 1.0).reshape(&[3, 4]).narrow(1, 1, 2);   // columns 1..3: offset 1
    /// assert_eq!(t.layout().index_of(&[2, 1]), 1 + 2 * 4 + 1);   // offset + Σ index·stride
    /// assert_eq!(t.to_vec::<f32>()[2 * 2 + 1], 10.0);   // and storage[10] holds 10
    /// ```
    #[inline]
    pub fn index_of(&self, idx: &[usize]) -> usize {
        self.offset + idx.iter().zip(&self.strides).map(|(i, s)| i * s).sum::<usize>()
    }
}

/// Merges adjacent dimensions that are contiguous with each other in every one of the
/// given stride sets, and drops size-1 dimensions: a walk over the result visits the
/// same offsets in the same order with fewer, longer inner loops.
///
/// ```
/// use sinew_tensor::shape::collapse;
/// // a contiguous [2, 3, 4] walks as one run of 24
/// let (shape, [s]) = collapse(&[2, 3, 4], [&[12, 4, 1]]);
/// assert_eq!((shape, s), (vec![24], vec![1]));
/// // a transposed [3, 2] view (strides [1, 3]) cannot merge
/// let (shape, [s]) = collapse(&[3, 2], [&[1, 3]]);
/// assert_eq!((shape, s), (vec![3, 2], vec![1, 3]));
/// ```
pub fn collapse<const K: usize>(shape: &[usize], strides: [&[usize]; K]) -> (Vec<usize>, [Vec<usize>; K]) {
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: [Vec<usize>; K] = std::array::from_fn(|_| Vec::with_capacity(shape.len()));
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if let Some(&last) = out_shape.last() {
            let mergeable = (0..K).all(|k| *out_strides[k].last().unwrap() == strides[k][i] * shape[i]);
            if mergeable {
                *out_shape.last_mut().unwrap() = last * shape[i];
                for k in 0..K {
                    *out_strides[k].last_mut().unwrap() = strides[k][i];
                }
                continue;
            }
        }
        out_shape.push(shape[i]);
        for k in 0..K {
            out_strides[k].push(strides[k][i]);
        }
    }
    if out_shape.is_empty() {
        out_shape.push(1);
        for s in &mut out_strides {
            s.push(1);
        }
    }
    (out_shape, out_strides)
}

/// Walks every element of `shape` in row-major order, for `K` operands with their own
/// strides and offsets, calling `inner(offsets, len, inner_strides)` once per run of the
/// innermost (collapsed) dimension.
///
/// ```
/// use sinew_tensor::{Tensor, shape::walk};
/// let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]).t();   // [3, 2], strides [1, 3]
/// let data = t.contiguous_slice::<f32>().into_owned();
/// let src = Tensor::arange(0.0, 6.0, 1.0);
/// let src = src.as_slice::<f32>().unwrap();
/// let mut out = Vec::new();
/// walk(t.dims(), [t.strides()], [t.layout().offset], |[o], len, [s]| {
///     out.extend((0..len).map(|i| src[o + i * s]));
/// });
/// assert_eq!(out, data);   // the row-major order of the view: 0, 3, 1, 4, 2, 5
/// assert_eq!(out, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
/// ```
pub fn walk<const K: usize>(
    shape: &[usize],
    strides: [&[usize]; K],
    offsets: [usize; K],
    mut inner: impl FnMut([usize; K], usize, [usize; K]),
) {
    if shape.contains(&0) {
        return;
    }
    let (shape, strides) = collapse(shape, strides);
    let nd = shape.len();
    let inner_len = shape[nd - 1];
    let inner_strides: [usize; K] = std::array::from_fn(|k| strides[k][nd - 1]);
    let outer: usize = shape[..nd - 1].iter().product();
    let mut idx = vec![0usize; nd - 1];
    let mut offs = offsets;
    for _ in 0..outer {
        inner(offs, inner_len, inner_strides);
        // advance the outer multi-index (odometer), updating offsets incrementally
        for d in (0..nd - 1).rev() {
            idx[d] += 1;
            for k in 0..K {
                offs[k] += strides[k][d];
            }
            if idx[d] < shape[d] {
                break;
            }
            for k in 0..K {
                offs[k] -= strides[k][d] * shape[d];
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes("t", &[3, 1, 4], &[5, 1]).unwrap(), vec![3, 5, 4]);
        assert_eq!(broadcast_shapes("t", &[], &[2]).unwrap(), vec![2]);
        assert!(broadcast_shapes("t", &[3], &[4]).is_err());
    }

    #[test]
    fn collapse_merges_contiguous_dims() {
        let (s, [st]) = collapse(&[2, 3, 4], [&[12, 4, 1]]);
        assert_eq!((s, st), (vec![24], vec![1]));
        let (s, [a, b]) = collapse(&[2, 3, 4], [&[12, 4, 1], &[0, 0, 1]]);
        assert_eq!((s, a, b), (vec![6, 4], vec![4, 1], vec![0, 1]));
    }

    #[test]
    fn walk_visits_row_major_order() {
        // transposed 2x3 view of a 3x2 buffer
        let mut seen = vec![];
        walk(&[2, 3], [&[1, 2]], [0], |[o], n, [s]| {
            for i in 0..n {
                seen.push(o + i * s);
            }
        });
        assert_eq!(seen, vec![0, 2, 4, 1, 3, 5]);
    }

    #[test]
    fn empty_layouts_are_contiguous() {
        let l = Layout { shape: vec![2, 0], strides: vec![1, 1], offset: 0 };
        assert!(l.is_contiguous());
    }

    #[test]
    fn negative_dims_normalize() {
        assert_eq!(normalize_dim("t", -1, 3).unwrap(), 2);
        assert!(normalize_dim("t", 3, 3).is_err());
        assert!(normalize_dim("t", -4, 3).is_err());
    }
}
