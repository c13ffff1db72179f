//! Reductions (`sum`, `mean`, `max`, `min`, `argmax`, `argmin`, `var`, `std`,
//! `logsumexp`, `norm`) over one axis, several axes or all, and the normalisations
//! `softmax` / `log_softmax`.
//!
//! Every reduction views its input as `(outer, reduced, inner)` and computes each output
//! lane on its own, so lanes can run on different threads without changing a single
//! bit; long full reductions sum fixed-size blocks and add the block sums in order, the
//! same with one thread or many.

use rayon::prelude::*;

use crate::dtype::{DType, Element, Float};
use crate::error::or_panic;
use crate::parallel;
use crate::shape::normalize_dim;
use crate::tensor::{StorageElement, Tensor, with_elem, with_float};

/// A tensor viewed as `(outer, reduced, inner)` over contiguous data, plus the output shape.
pub(crate) struct Plan {
    pub(crate) src: Tensor,
    pub(crate) outer: usize,
    pub(crate) reduced: usize,
    pub(crate) inner: usize,
    pub(crate) out_shape: Vec<usize>,
}

impl Tensor {
    #[track_caller]
    pub(crate) fn plan(&self, op: &'static str, dims: &[isize], keepdim: bool) -> Plan {
        let nd = self.ndim();
        let mut axes: Vec<usize> = if dims.is_empty() {
            (0..nd).collect()
        } else {
            dims.iter().map(|&d| or_panic(normalize_dim(op, d, nd))).collect()
        };
        axes.sort_unstable();
        axes.dedup();
        if nd == 0 {
            axes.clear();
        }
        let d = self.dims();
        let out_shape: Vec<usize> = if keepdim {
            (0..nd).map(|i| if axes.contains(&i) { 1 } else { d[i] }).collect()
        } else {
            (0..nd).filter(|i| !axes.contains(i)).map(|i| d[i]).collect()
        };
        let reduced: usize = axes.iter().map(|&a| d[a]).product();
        let adjacent = axes.windows(2).all(|w| w[1] == w[0] + 1);
        if axes.is_empty() {
            return Plan { src: self.contiguous(), outer: self.numel(), reduced: 1, inner: 1, out_shape };
        }
        if adjacent {
            let (first, last) = (axes[0], *axes.last().unwrap());
            return Plan {
                src: self.contiguous(),
                outer: d[..first].iter().product(),
                reduced,
                inner: d[last + 1..].iter().product(),
                out_shape,
            };
        }
        // Move the reduced axes to the back and copy once.
        let mut perm: Vec<usize> = (0..nd).filter(|i| !axes.contains(i)).collect();
        perm.extend(&axes);
        let src = self.permute(&perm).contiguous();
        Plan { src, outer: self.numel() / reduced.max(1), reduced, inner: 1, out_shape }
    }
}

/// One lane of a reduction: `len` elements `data[start + i*stride]`.
#[derive(Clone, Copy)]
struct Lane<'a, T> {
    data: &'a [T],
    start: usize,
    stride: usize,
    len: usize,
}

impl<T: Copy> Lane<'_, T> {
    #[inline(always)]
    fn get(&self, i: usize) -> T {
        self.data[self.start + i * self.stride]
    }
    #[inline(always)]
    fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len).map(move |i| self.get(i))
    }
    #[inline(always)]
    fn as_slice(&self) -> Option<&[T]> {
        (self.stride == 1).then(|| &self.data[self.start..self.start + self.len])
    }
}

/// Computes one output per lane, in parallel over lanes when the work is large.
fn per_lane<T: StorageElement, U: StorageElement>(
    plan: &Plan,
    f: impl Fn(Lane<'_, T>) -> U + Sync + Send,
) -> Tensor {
    let data = plan.src.as_slice::<T>().expect("plan source is contiguous");
    let (outer, reduced, inner) = (plan.outer, plan.reduced, plan.inner);
    let lanes = outer * inner;
    let lane = |l: usize| {
        let (o, i) = (l / inner, l % inner);
        f(Lane { data, start: o * reduced * inner + i, stride: inner, len: reduced })
    };
    let out: Vec<U> = if lanes > 1 && parallel::worth_parallel(data.len()) {
        parallel::install(|| (0..lanes).into_par_iter().with_min_len(64).map(lane).collect())
    } else {
        (0..lanes).map(lane).collect()
    };
    Tensor::from_parts(out, &plan.out_shape)
}

/// Sum of a contiguous run with eight independent accumulators (vectorises, and loses
/// less precision than one running sum).
#[inline]
fn sum_contiguous<T: Element>(x: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in rest {
        s += v;
    }
    s
}

/// Sum of a long contiguous run: fixed blocks (in parallel when large) added in order.
fn sum_long<T: Element>(x: &[T]) -> T {
    const BLOCK: usize = parallel::CHUNK;
    if x.len() <= BLOCK {
        return sum_contiguous(x);
    }
    let partial: Vec<T> = if parallel::worth_parallel(x.len()) {
        parallel::install(|| x.par_chunks(BLOCK).map(sum_contiguous).collect())
    } else {
        x.chunks(BLOCK).map(sum_contiguous).collect()
    };
    partial.into_iter().fold(T::ZERO, |a, b| a + b)
}

fn lane_sum<T: Element>(l: Lane<'_, T>) -> T {
    match l.as_slice() {
        Some(s) => sum_contiguous(s),
        None => l.iter().fold(T::ZERO, |a, b| a + b),
    }
}

/// Sum over the reduced axis; rows accumulate when `inner > 1` (vectorised).
fn sum_plan<T: Element + StorageElement>(plan: &Plan) -> Tensor {
    let data = plan.src.as_slice::<T>().expect("contiguous");
    let (outer, reduced, inner) = (plan.outer, plan.reduced, plan.inner);
    if outer * inner == 0 {
        return Tensor::from_parts(Vec::<T>::new(), &plan.out_shape);
    }
    if outer == 1 && inner == 1 {
        return Tensor::from_parts(vec![sum_long(data)], &plan.out_shape);
    }
    if inner == 1 {
        return per_lane(plan, lane_sum::<T>);
    }
    let block = |o: usize, out: &mut [T]| {
        for r in 0..reduced {
            let row = &data[(o * reduced + r) * inner..][..inner];
            for (a, &b) in out.iter_mut().zip(row) {
                *a += b;
            }
        }
    };
    let mut out = crate::buffer::filled(outer * inner, T::ZERO);
    if outer > 1 && parallel::worth_parallel(data.len()) {
        parallel::install(|| out.par_chunks_mut(inner).enumerate().for_each(|(o, c)| block(o, c)));
    } else {
        for (o, c) in out.chunks_mut(inner).enumerate() {
            block(o, c);
        }
    }
    Tensor::from_parts(out, &plan.out_shape)
}

#[inline]
fn lane_max<T: Float>(l: Lane<'_, T>) -> T {
    l.iter().fold(T::NEG_INFINITY, |m, v| m.max_nan(v))
}

#[inline]
fn lane_logsumexp<T: Float>(l: Lane<'_, T>) -> T {
    let m = lane_max(l);
    if !m.is_finite() {
        // all -inf (gives -inf), any +inf (gives +inf), or NaN
        return m;
    }
    let s: T = l.iter().map(|v| (v - m).exp()).fold(T::ZERO, |a, b| a + b);
    m + s.ln()
}

#[track_caller]
fn check_nonempty(op: &str, plan: &Plan, t: &Tensor) {
    assert!(
        plan.reduced > 0 || plan.outer * plan.inner == 0,
        "{op}: cannot reduce over an empty dimension (shape {:?})",
        t.dims()
    );
}

impl Tensor {
    /// Sum over `dims` (all dimensions when `dims` is empty), keeping them as size 1 if
    /// `keepdim`.
    ///
    /// # Panics
    /// If a dimension is out of range.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
    /// assert_eq!(t.sum(&[0], false).to_vec::<f32>(), vec![3.0, 5.0, 7.0]);
    /// assert_eq!(t.sum(&[1], true).dims(), &[2, 1]);
    /// ```
    #[track_caller]
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Tensor {
        // Axes that are not one run (a bias gradient: N, H, W of NCHW) are summed one run
        // at a time, last run first, instead of permuting them together with a copy.
        let nd = self.ndim();
        let mut axes: Vec<usize> = dims.iter().map(|&d| or_panic(normalize_dim("sum", d, nd))).collect();
        axes.sort_unstable();
        axes.dedup();
        if let Some(split) = axes.windows(2).rposition(|w| w[1] != w[0] + 1) {
            let last_run: Vec<isize> = axes[split + 1..].iter().map(|&a| a as isize).collect();
            let rest: Vec<isize> = axes[..=split].iter().map(|&a| a as isize).collect();
            let partial = self.sum(&last_run, true).sum(&rest, true);
            if keepdim {
                return partial;
            }
            let out: Vec<usize> = (0..nd).filter(|i| !axes.contains(i)).map(|i| self.dims()[i]).collect();
            return partial.reshape(&out);
        }
        let plan = self.plan("sum", dims, keepdim);
        with_elem!(self.dtype(), |T| sum_plan::<T>(&plan))
    }

    /// Sum of all elements, as a 0-d tensor.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(1.0, 5.0, 1.0).reshape(&[2, 2]);
    /// let s = t.sum_all();  // t.sum()
    /// assert_eq!((s.dims(), s.item()), (&[][..], 10.0));
    /// ```
    pub fn sum_all(&self) -> Tensor {
        self.sum(&[], false)
    }

    /// Mean over `dims` (all when empty). Integers average in `f32`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
    /// assert_eq!(t.mean(&[1], false).to_vec::<f32>(), vec![1.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let t = if self.dtype() == DType::I64 { self.to_dtype(DType::F32) } else { self.clone() };
        let plan = t.plan("mean", dims, keepdim);
        let count = plan.reduced as f64;
        with_float!(t.dtype(), "mean", |T| sum_plan::<T>(&plan)).div_scalar(count)
    }

    /// Mean of all elements, as a 0-d tensor.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(1.0, 5.0, 1.0).reshape(&[2, 2]);
    /// assert_eq!(t.mean_all().item(), 2.5);  // t.mean()
    /// ```
    pub fn mean_all(&self) -> Tensor {
        self.mean(&[], false)
    }

    fn extreme(&self, op: &'static str, dims: &[isize], keepdim: bool, want_max: bool) -> Tensor {
        let plan = self.plan(op, dims, keepdim);
        check_nonempty(op, &plan, self);
        match self.dtype() {
            DType::I64 => per_lane(&plan, |l: Lane<'_, i64>| {
                l.iter().fold(if want_max { i64::MIN } else { i64::MAX }, |m, v| {
                    if want_max { m.max(v) } else { m.min(v) }
                })
            }),
            dt => with_float!(dt, op, |T| per_lane(&plan, |l: Lane<'_, T>| {
                if want_max { lane_max(l) } else { l.iter().fold(T::INFINITY, |m, v| m.min_nan(v)) }
            })),
        }
    }

    /// Largest value over `dims` (all when empty); NaN if any is NaN (`torch.amax`).
    ///
    /// # Panics
    /// If a reduced dimension is empty.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 3.0], &[2, 2])?;
    /// assert_eq!(t.max(&[1], false).to_vec::<f32>(), vec![5.0, 3.0]);  // torch.amax(t, 1)
    /// assert_eq!(t.max(&[0], true).dims(), &[1, 2]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Tensor {
        self.extreme("max", dims, keepdim, true)
    }

    /// Largest element, as a 0-d tensor.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 3.0], &[2, 2])?;
    /// assert_eq!(t.max_all().item(), 5.0);  // t.max()
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn max_all(&self) -> Tensor {
        self.max(&[], false)
    }

    /// Smallest value over `dims` (all when empty); NaN if any is NaN (`torch.amin`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 3.0], &[2, 2])?;
    /// assert_eq!(t.min(&[0], false).to_vec::<f32>(), vec![1.0, 3.0]);  // torch.amin(t, 0)
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Tensor {
        self.extreme("min", dims, keepdim, false)
    }

    /// Smallest element, as a 0-d tensor.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1i64, -5, 2], &[3])?;
    /// assert_eq!(t.min_all().item(), -5.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn min_all(&self) -> Tensor {
        self.min(&[], false)
    }

    fn arg_extreme(&self, op: &'static str, dim: Option<isize>, keepdim: bool, want_max: bool) -> Tensor {
        let flat;
        let (t, dims): (&Tensor, Vec<isize>) = match dim {
            Some(d) => (self, vec![d]),
            None => {
                flat = self.reshape(&[self.numel()]);
                (&flat, vec![0])
            }
        };
        let plan = t.plan(op, &dims, keepdim && dim.is_some());
        check_nonempty(op, &plan, self);
        with_elem!(t.dtype(), |T| per_lane(&plan, |l: Lane<'_, T>| {
            // first occurrence wins; NaN counts as the extreme (PyTorch)
            let mut best = 0usize;
            let mut bv = l.get(0);
            for i in 1..l.len {
                let v = l.get(i);
                if bv.is_nan() {
                    break;
                }
                let better = v.is_nan() || if want_max { v > bv } else { v < bv };
                if better {
                    best = i;
                    bv = v;
                }
            }
            best as i64
        }))
    }

    /// Index of the largest value along `dim`, as `i64` (first occurrence on ties).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 7.0, 0.0, 7.0], &[2, 3])?;
    /// assert_eq!(t.argmax(1, false).to_vec::<i64>(), vec![1, 0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Tensor {
        self.arg_extreme("argmax", Some(dim), keepdim, true)
    }

    /// Index of the largest element of the flattened tensor, as a 0-d `i64` tensor.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::from_vec(vec![1.0f32, 5.0, 7.0, 3.0], &[2, 2])?;
    /// let i = t.argmax_all();  // t.argmax()
    /// assert_eq!(i.dtype(), DType::I64);
    /// assert_eq!(i.item(), 2.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn argmax_all(&self) -> Tensor {
        self.arg_extreme("argmax", None, false, true)
    }

    /// Index of the smallest value along `dim`, as `i64` (first occurrence on ties).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![4.0f32, 1.0, 1.0, 0.0, 3.0, 2.0], &[2, 3])?;
    /// assert_eq!(t.argmin(1, false).to_vec::<i64>(), vec![1, 0]);  // first of the ties
    /// assert_eq!(t.argmin(0, true).dims(), &[1, 3]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Tensor {
        self.arg_extreme("argmin", Some(dim), keepdim, false)
    }

    /// Index of the smallest element of the flattened tensor, as a 0-d `i64` tensor.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![4.0f32, 1.0, 0.0, 3.0], &[2, 2])?;
    /// assert_eq!(t.argmin_all().item(), 2.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn argmin_all(&self) -> Tensor {
        self.arg_extreme("argmin", None, false, false)
    }

    /// Largest values along `dim` and their indices (`torch.max(x, dim)`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 7.0, 0.0, 3.0], &[2, 3])?;
    /// let (values, indices) = t.max_dim(1, false);  // torch.max(t, 1)
    /// assert_eq!(values.to_vec::<f32>(), vec![5.0, 7.0]);
    /// assert_eq!(indices.to_vec::<i64>(), vec![1, 0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> (Tensor, Tensor) {
        (self.max(&[dim], keepdim), self.argmax(dim, keepdim))
    }

    /// Smallest values along `dim` and their indices (`torch.min(x, dim)`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 7.0, 0.0, 3.0], &[2, 3])?;
    /// let (values, indices) = t.min_dim(-1, true);  // torch.min(t, -1, keepdim=True)
    /// assert_eq!(values.dims(), &[2, 1]);
    /// assert_eq!(values.to_vec::<f32>(), vec![1.0, 0.0]);
    /// assert_eq!(indices.to_vec::<i64>(), vec![0, 1]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> (Tensor, Tensor) {
        (self.min(&[dim], keepdim), self.argmin(dim, keepdim))
    }

    /// Variance over `dims` (all when empty): divides by `n - 1` when `unbiased`, by `n`
    /// otherwise (`torch.var(correction=1|0)`). Two passes, so no cancellation.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[4])?;
    /// assert_eq!(t.var(&[], false, false).item(), 1.25);
    /// assert_eq!(t.var(&[], true, false).item(), 5.0 / 3.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn var(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Tensor {
        let t = if self.dtype() == DType::I64 { self.to_dtype(DType::F32) } else { self.clone() };
        let plan = t.plan("var", dims, keepdim);
        let n = plan.reduced;
        let denom = if unbiased { n as f64 - 1.0 } else { n as f64 };
        with_float!(t.dtype(), "var", |T| per_lane(&plan, |l: Lane<'_, T>| {
            let mean = lane_sum(l) / T::from_f64(n as f64);
            let ss = l.iter().map(|v| (v - mean) * (v - mean)).fold(T::ZERO, |a, b| a + b);
            ss / T::from_f64(denom)
        }))
    }

    /// Standard deviation: the square root of [`Tensor::var`].
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![2.0f64, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], &[8])?;
    /// assert_eq!(t.std(&[], false, false).item(), 2.0);  // torch.std(t, correction=0)
    /// assert_eq!(t.std(&[0], true, false).item(), (32.0f64 / 7.0).sqrt());  // torch.std(t, 0)
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn std(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Tensor {
        self.var(dims, unbiased, keepdim).sqrt()
    }

    /// `log(sum(exp(x)))` over `dims` (all when empty), computed stably by shifting by the maximum.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1000.0f64, 1000.0], &[2])?;
    /// assert!((t.logsumexp(&[0], false).item() - (1000.0 + 2f64.ln())).abs() < 1e-9);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let t = if self.dtype() == DType::I64 { self.to_dtype(DType::F32) } else { self.clone() };
        let plan = t.plan("logsumexp", dims, keepdim);
        with_float!(t.dtype(), "logsumexp", |T| per_lane(&plan, lane_logsumexp::<T>))
    }

    /// The `p`-norm over `dims` (all when empty): `(Σ|x|^p)^(1/p)`; `p = ∞` gives the
    /// largest magnitude.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![3.0f32, -4.0], &[2])?;
    /// assert_eq!(t.norm(2.0, &[], false).item(), 5.0);
    /// assert_eq!(t.norm(1.0, &[], false).item(), 7.0);
    /// assert_eq!(t.norm(f64::INFINITY, &[], false).item(), 4.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn norm(&self, p: f64, dims: &[isize], keepdim: bool) -> Tensor {
        let a = self.abs();
        if p == f64::INFINITY {
            return a
                .to_dtype(if a.dtype() == DType::I64 { DType::F32 } else { a.dtype() })
                .max(dims, keepdim);
        }
        if p == 2.0 {
            return a.square().sum(dims, keepdim).to_dtype(float_of(a.dtype())).sqrt();
        }
        if p == 1.0 {
            return a.sum(dims, keepdim).to_dtype(float_of(a.dtype()));
        }
        a.powf(p).sum(dims, keepdim).powf(1.0 / p)
    }

    /// Softmax along `dim`: `exp(x - max) / Σ exp(x - max)`, stable for any input.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let p = Tensor::from_vec(vec![1.0f32, 1.0, 1000.0, 1000.0], &[2, 2])?.softmax(-1);
    /// assert_eq!(p.to_vec::<f32>(), vec![0.5, 0.5, 0.5, 0.5]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Tensor {
        self.normalize_lanes("softmax", dim, false)
    }

    /// `log(softmax(x))` along `dim`, computed as `x - logsumexp(x)` (no underflow).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![0.0f64, 0.0, 1000.0, 0.0], &[2, 2])?;
    /// let y = t.log_softmax(-1);  // F.log_softmax(t, -1): no -inf from underflow
    /// let expect = vec![-2f64.ln(), -2f64.ln(), 0.0, -1000.0];
    /// assert!(y.allclose(&Tensor::from_vec(expect, &[2, 2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Tensor {
        self.normalize_lanes("log_softmax", dim, true)
    }

    #[track_caller]
    fn normalize_lanes(&self, op: &'static str, dim: isize, log: bool) -> Tensor {
        let t = if self.dtype() == DType::I64 { self.to_dtype(DType::F32) } else { self.clone() };
        let plan = t.plan(op, &[dim], true);
        with_float!(t.dtype(), op, |T| {
            let x = plan.src.as_slice::<T>().expect("contiguous");
            // every element is written by the kernel
            let mut out = crate::buffer::scratch::<T>(x.len());
            crate::kernels::norm::softmax_forward(x, plan.outer, plan.reduced, plan.inner, log, &mut out);
            Tensor::from_parts(out, t.dims())
        })
    }
}

fn float_of(dt: DType) -> DType {
    if dt == DType::I64 { DType::F32 } else { dt }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};
    use proptest::prelude::*;

    /// Reference: sum over one axis by explicit multi-index arithmetic.
    fn reference_sum(data: &[f64], shape: &[usize], axis: usize) -> Vec<f64> {
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let mut out = vec![0.0; outer * inner];
        for o in 0..outer {
            for r in 0..shape[axis] {
                for i in 0..inner {
                    out[o * inner + i] += data[(o * shape[axis] + r) * inner + i];
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn sums_agree_with_reference(shape in proptest::collection::vec(1usize..5, 1..5), axis_seed in any::<usize>(), permuted in any::<bool>()) {
            let n: usize = shape.iter().product();
            let t = Tensor::arange_dtype(0.0, n as f64, 1.0, DType::F64).sin().reshape(&shape);
            let axis = axis_seed % shape.len();
            let expected = reference_sum(&t.to_vec::<f64>(), &shape, axis);
            let src = if permuted { t.t().contiguous().t() } else { t.clone() };
            let got = src.sum(&[axis as isize], false).to_vec::<f64>();
            prop_assert!(got.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-12));
            // several axes at once equals reducing one at a time
            if shape.len() >= 3 {
                let two = t.sum(&[0, 2], false).to_vec::<f64>();
                let seq = t.sum(&[2], false).sum(&[0], false).to_vec::<f64>();
                prop_assert!(two.iter().zip(&seq).all(|(a, b)| (a - b).abs() < 1e-12));
            }
        }

        #[test]
        fn softmax_rows_sum_to_one(shape in proptest::collection::vec(1usize..6, 1..4), scale in 0.1f64..500.0) {
            let n: usize = shape.iter().product();
            let t = Tensor::arange_dtype(0.0, n as f64, 1.0, DType::F64).cos().mul_scalar(scale).reshape(&shape);
            for d in 0..shape.len() {
                let s = t.softmax(d as isize).sum(&[d as isize], false);
                prop_assert!(s.to_vec::<f64>().iter().all(|v| (v - 1.0).abs() < 1e-12));
                let ls = t.log_softmax(d as isize).exp();
                prop_assert!(ls.allclose(&t.softmax(d as isize), 1e-10, 1e-12));
            }
        }
    }

    #[test]
    fn full_reduction_is_thread_count_independent() {
        let n = (1 << 19) + 17;
        let t = Tensor::arange_dtype(0.0, n as f64, 1.0, DType::F32).sin();
        crate::set_num_threads(1);
        let one = t.sum_all().item();
        crate::set_num_threads(2);
        let two = t.sum_all().item();
        crate::set_num_threads(0);
        assert_eq!(one.to_bits(), two.to_bits());
    }

    #[test]
    fn max_min_argmax() {
        let t = Tensor::from_vec(vec![3.0f32, 1.0, 4.0, 1.0, 5.0, 9.0], &[2, 3]).unwrap();
        assert_eq!(t.max(&[1], false).to_vec::<f32>(), vec![4.0, 9.0]);
        assert_eq!(t.min(&[0], true).to_vec::<f32>(), vec![1.0, 1.0, 4.0]);
        assert_eq!(t.argmin(1, false).to_vec::<i64>(), vec![1, 0]);
        assert_eq!(t.argmax_all().item(), 5.0);
        assert_eq!(t.max_all().item(), 9.0);
    }

    #[test]
    fn var_unbiased_and_biased() {
        let t = Tensor::from_vec(vec![1.0f64, 2.0, 4.0, 7.0], &[2, 2]).unwrap();
        assert_eq!(t.var(&[1], false, false).to_vec::<f64>(), vec![0.25, 2.25]);
        assert_eq!(t.var(&[1], true, false).to_vec::<f64>(), vec![0.5, 4.5]);
    }

    #[test]
    fn empty_tensors_reduce_and_map() {
        let e = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]).narrow(1, 3, 0);
        assert_eq!(e.dims(), &[2, 0]);
        assert_eq!(e.sin().sum_all().item(), 0.0);
        assert_eq!(e.sum(&[1], false).to_vec::<f32>(), vec![0.0, 0.0]);
        assert_eq!(e.sum(&[0], false).dims(), &[0]);
    }

    #[test]
    fn logsumexp_of_neg_infinity() {
        let t = Tensor::from_vec(vec![f64::NEG_INFINITY; 3], &[3]).unwrap();
        assert_eq!(t.logsumexp(&[0], false).item(), f64::NEG_INFINITY);
    }

    #[test]
    #[should_panic(expected = "dimension 2 is out of range")]
    fn bad_axis_panics() {
        Tensor::zeros(&[2, 2]).sum(&[2], false);
    }
}
