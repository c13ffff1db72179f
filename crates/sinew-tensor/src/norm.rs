//! Layer normalisation forward and backward, and the gradients of `softmax` /
//! `log_softmax`, each one pass over the rows (kernels in [`crate::kernels::norm`]).
//! What autograd's fused ops call instead of a chain of elementwise ops and reductions.

use crate::dtype::Element;
use crate::error::{Result, TensorError, or_panic};
use crate::kernels::norm as k;
use crate::recurrent::same_float_dtype;
use crate::tensor::{Tensor, with_float};

/// The rows and row length of `x` normalised over its trailing `normalized_shape`, and
/// the shape of the statistics (`x`'s leading dims, then a 1 per normalised dim).
fn layer_norm_dims(
    op: &'static str,
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
) -> Result<(usize, usize, Vec<usize>)> {
    let (nd, kd) = (x.ndim(), normalized_shape.len());
    let fits = |p: Option<&Tensor>| p.is_none_or(|p| p.dims() == normalized_shape);
    if kd == 0 || nd < kd || x.dims()[nd - kd..] != *normalized_shape || !fits(weight) || !fits(bias) {
        let dims = |p: Option<&Tensor>| p.map(|p| p.dims().to_vec());
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!(
                "expected input ending in a non-empty normalized_shape {normalized_shape:?} and weight and \
                 bias of that shape, got {:?}, {:?} and {:?}",
                x.dims(),
                dims(weight),
                dims(bias)
            ),
        });
    }
    let rows = x.dims()[..nd - kd].iter().product();
    let n = normalized_shape.iter().product();
    let mut stats = x.dims()[..nd - kd].to_vec();
    stats.resize(nd, 1);
    Ok((rows, n, stats))
}

impl Tensor {
    /// Layer normalisation over the trailing `normalized_shape` dimensions, as PyTorch's
    /// `torch.native_layer_norm`: returns `(y, mean, rstd)` with
    ///
    /// ```text
    /// mean = E[x],  rstd = 1 / √(Var[x] + eps)  (biased variance, over the normalised dims)
    /// y = (x - mean)·rstd·weight + bias
    /// ```
    ///
    /// `mean` and `rstd` have `x`'s leading dimensions followed by a 1 per normalised
    /// dimension; [`Tensor::layer_norm_backward`] takes them. One pass per row (the
    /// statistics from two sweeps of it, so no cancellation), rows in parallel when large.
    ///
    /// # Panics
    /// If `normalized_shape` is empty, `x` does not end in it, `weight` or `bias` are not
    /// shaped like it, or the dtypes differ or are not float.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from([[1.0f64, 3.0], [10.0, 30.0]]);
    /// let (w, b) = (Tensor::from([2.0f64, 1.0]), Tensor::from([0.0f64, 0.5]));
    /// let (y, mean, rstd) = x.layer_norm(&[2], Some(&w), Some(&b), 0.0); // F.layer_norm
    /// assert_eq!(y.to_vec::<f64>(), vec![-2.0, 1.5, -2.0, 1.5]);
    /// assert_eq!((mean.dims(), mean.to_vec::<f64>()), (&[2, 1][..], vec![2.0, 20.0]));
    /// assert_eq!(rstd.to_vec::<f64>(), vec![1.0, 0.1]);
    /// ```
    #[track_caller]
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> (Tensor, Tensor, Tensor) {
        const OP: &str = "layer_norm";
        let check = || {
            let dims = layer_norm_dims(OP, self, normalized_shape, weight, bias)?;
            let params: Vec<&Tensor> = [Some(self), weight, bias].into_iter().flatten().collect();
            same_float_dtype(OP, &params)?;
            Ok(dims)
        };
        let (rows, n, stats) = or_panic(check());
        with_float!(self.dtype(), OP, |T| {
            let x = self.contiguous_slice::<T>();
            let (w, b) = (weight.map(|w| w.contiguous_slice::<T>()), bias.map(|b| b.contiguous_slice::<T>()));
            let mut y = crate::buffer::scratch::<T>(rows * n);
            let mut mean = crate::buffer::scratch::<T>(rows);
            let mut rstd = crate::buffer::scratch::<T>(rows);
            k::layer_norm_forward(
                &x,
                w.as_deref(),
                b.as_deref(),
                rows,
                n,
                T::from_f64(eps),
                &mut y,
                &mut mean,
                &mut rstd,
            );
            (
                Tensor::from_parts(y, self.dims()),
                Tensor::from_parts(mean, &stats),
                Tensor::from_parts(rstd, &stats),
            )
        })
    }

    /// Gradient of [`Tensor::layer_norm`]: from its input `x`, `normalized_shape`, the
    /// statistics `mean` and `rstd` it returned, its `weight` (`None`: no weight) and the
    /// gradient `grad` of `y`, returns `(dx, dweight, dbias)`. With `x̂ = (x - mean)·rstd`
    /// and `ĝ = grad·weight`, per row
    ///
    /// ```text
    /// dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)),   dweight = Σ grad·x̂,   dbias = Σ grad
    /// ```
    ///
    /// (sums over the leading dimensions; `dweight` and `dbias` are shaped like
    /// `normalized_shape` and computed whether or not the forward had a weight or bias).
    /// One pass over the rows; the parameter gradients are summed per fixed chunk of rows
    /// and the chunks added in order, so the result is the same for any thread count.
    ///
    /// # Panics
    /// If the shapes do not fit those of [`Tensor::layer_norm`] or the dtypes differ or are
    /// not float.
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let x = Tensor::randn_with(&[3, 4], DType::F64, &mut g);
    /// let w = Tensor::randn_with(&[4], DType::F64, &mut g);
    /// let dy = Tensor::randn_with(&[3, 4], DType::F64, &mut g);
    /// let (_, mean, rstd) = x.layer_norm(&[4], Some(&w), None, 1e-5);
    /// let (dx, dw, db) = Tensor::layer_norm_backward(&x, &[4], &mean, &rstd, Some(&w), &dy);
    /// assert_eq!((dx.dims(), dw.dims()), (&[3, 4][..], &[4][..]));
    /// assert!(db.allclose(&dy.sum(&[0], false), 1e-12, 1e-12));
    /// // dx against a central difference of loss = Σ y·dy
    /// let loss = |x: &Tensor| x.layer_norm(&[4], Some(&w), None, 1e-5).0.mul(&dy).sum_all().item();
    /// let mut bump = vec![0.0; 12];
    /// bump[5] = 1e-6;
    /// let e = Tensor::from_vec(bump, &[3, 4])?;
    /// let numeric = (loss(&x.add(&e)) - loss(&x.sub(&e))) / 2e-6;
    /// assert!((numeric - dx.to_vec::<f64>()[5]).abs() < 1e-6);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn layer_norm_backward(
        x: &Tensor,
        normalized_shape: &[usize],
        mean: &Tensor,
        rstd: &Tensor,
        weight: Option<&Tensor>,
        grad: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        const OP: &str = "layer_norm_backward";
        let check = || {
            let (rows, n, stats) = layer_norm_dims(OP, x, normalized_shape, weight, None)?;
            for (name, t) in [("mean", mean), ("rstd", rstd)] {
                if t.dims() != stats {
                    return Err(TensorError::InvalidArgument {
                        op: OP,
                        msg: format!(
                            "{name} must have shape {stats:?} for input {:?}, got {:?}",
                            x.dims(),
                            t.dims()
                        ),
                    });
                }
            }
            if grad.dims() != x.dims() {
                return Err(TensorError::ShapeMismatch {
                    op: OP,
                    lhs: x.dims().to_vec(),
                    rhs: grad.dims().to_vec(),
                    detail: ": the gradient must have the input's shape".into(),
                });
            }
            let ts: Vec<&Tensor> =
                [Some(x), Some(mean), Some(rstd), weight, Some(grad)].into_iter().flatten().collect();
            same_float_dtype(OP, &ts)?;
            Ok((rows, n))
        };
        let (rows, n) = or_panic(check());
        with_float!(x.dtype(), OP, |T| {
            let w = weight.map(|w| w.contiguous_slice::<T>());
            let mut dx = crate::buffer::scratch::<T>(rows * n);
            let mut dw = crate::buffer::scratch::<T>(n);
            let mut db = crate::buffer::scratch::<T>(n);
            k::layer_norm_backward(
                &x.contiguous_slice::<T>(),
                &mean.contiguous_slice::<T>(),
                &rstd.contiguous_slice::<T>(),
                w.as_deref(),
                &grad.contiguous_slice::<T>(),
                rows,
                n,
                &mut dx,
                &mut dw,
                &mut db,
            );
            (
                Tensor::from_parts(dx, x.dims()),
                Tensor::from_parts(dw, normalized_shape),
                Tensor::from_parts(db, normalized_shape),
            )
        })
    }

    /// Gradient of [`Tensor::softmax`] along `dim`, from its output `y` and the gradient
    /// `grad` of `y`: `y·(grad - Σ grad·y)`, the sum along `dim`, in one pass per lane. The
    /// sums are added in the order [`Tensor::sum`] adds them, so the result has the bits of
    /// `y.mul(&grad.sub(&grad.mul(y).sum(&[dim], true)))` (but for a single lane longer
    /// than [`CHUNK`](crate::parallel::CHUNK), which `sum` adds block by block).
    ///
    /// # Panics
    /// If the shapes differ, `dim` is out of range, or the dtypes differ or are not float.
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let y = Tensor::randn_with(&[2, 5, 3], DType::F64, &mut g).softmax(1);
    /// let dy = Tensor::randn_with(&[2, 5, 3], DType::F64, &mut g);
    /// let dx = Tensor::softmax_backward(&y, &dy, 1);
    /// let composed = y.mul(&dy.sub(&dy.mul(&y).sum(&[1], true)));
    /// assert_eq!(dx.to_vec::<f64>(), composed.to_vec::<f64>());
    /// ```
    #[track_caller]
    pub fn softmax_backward(y: &Tensor, grad: &Tensor, dim: isize) -> Tensor {
        softmax_family_backward("softmax_backward", y, grad, dim, false)
    }

    /// Gradient of [`Tensor::log_softmax`] along `dim`, from its output `y` and the
    /// gradient `grad` of `y`: `grad - exp(y)·Σ grad`, the sum along `dim`, in one pass per
    /// lane, with the bits of the composed formula as for [`Tensor::softmax_backward`].
    ///
    /// # Panics
    /// If the shapes differ, `dim` is out of range, or the dtypes differ or are not float.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // cross entropy of class 0 from two equal logits: the gradient is p - onehot
    /// let y = Tensor::from([0.0f64, 0.0]).log_softmax(0);
    /// let dx = Tensor::log_softmax_backward(&y, &Tensor::from([-1.0f64, 0.0]), 0);
    /// assert_eq!(dx.to_vec::<f64>(), vec![-0.5, 0.5]);
    /// ```
    #[track_caller]
    pub fn log_softmax_backward(y: &Tensor, grad: &Tensor, dim: isize) -> Tensor {
        softmax_family_backward("log_softmax_backward", y, grad, dim, true)
    }
}

#[track_caller]
fn softmax_family_backward(op: &'static str, y: &Tensor, grad: &Tensor, dim: isize, log: bool) -> Tensor {
    if y.dims() != grad.dims() {
        or_panic(Err(TensorError::ShapeMismatch {
            op,
            lhs: y.dims().to_vec(),
            rhs: grad.dims().to_vec(),
            detail: ": the gradient must have the output's shape".into(),
        }))
    }
    or_panic(same_float_dtype(op, &[y, grad]));
    let (py, pg) = (y.plan(op, &[dim], true), grad.plan(op, &[dim], true));
    with_float!(y.dtype(), op, |T| {
        let (ys, gs) =
            (py.src.as_slice::<T>().expect("contiguous"), pg.src.as_slice::<T>().expect("contiguous"));
        let mut dx = crate::buffer::scratch::<T>(ys.len());
        k::softmax_backward(ys, gs, py.outer, py.reduced, py.inner, log, &mut dx);
        Tensor::from_parts(dx, y.dims())
    })
}

#[cfg(test)]
mod tests {
    use crate::{DType, Generator, Tensor};
    use proptest::prelude::*;

    fn randn(shape: &[usize], g: &mut Generator) -> Tensor {
        Tensor::randn_with(shape, DType::F64, g)
    }

    /// The unfused formula, with tensor ops.
    fn composed(x: &Tensor, k: usize, w: Option<&Tensor>, b: Option<&Tensor>, eps: f64) -> Tensor {
        let dims: Vec<isize> = (x.ndim() - k..x.ndim()).map(|d| d as isize).collect();
        let mean = x.mean(&dims, true);
        let var = x.var(&dims, false, true);
        let mut y = x.sub(&mean).mul(&var.add_scalar(eps).rsqrt());
        if let Some(w) = w {
            y = y.mul(w);
        }
        if let Some(b) = b {
            y = y.add(b);
        }
        y
    }

    /// The gradient of the unfused formula, written out with tensor ops.
    fn composed_backward(
        x: &Tensor,
        k: usize,
        w: Option<&Tensor>,
        dy: &Tensor,
        eps: f64,
    ) -> (Tensor, Tensor, Tensor) {
        let nd = x.ndim();
        let dims: Vec<isize> = (nd - k..nd).map(|d| d as isize).collect();
        let lead: Vec<isize> = (0..nd - k).map(|d| d as isize).collect();
        let rstd = x.var(&dims, false, true).add_scalar(eps).rsqrt();
        let xhat = x.sub(&x.mean(&dims, true)).mul(&rstd);
        let gw = match w {
            Some(w) => dy.mul(w),
            None => dy.clone(),
        };
        let dx = rstd.mul(&gw.sub(&gw.mean(&dims, true)).sub(&xhat.mul(&gw.mul(&xhat).mean(&dims, true))));
        // (`sum(&[])` would sum over everything)
        let sum_lead = |t: Tensor| if lead.is_empty() { t } else { t.sum(&lead, false) };
        let (dw, db) = (sum_lead(dy.mul(&xhat)), sum_lead(dy.clone()));
        (dx, dw, db)
    }

    fn close(a: &Tensor, b: &Tensor) -> bool {
        a.dims() == b.dims() && a.allclose(b, 1e-10, 1e-10)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn layer_norm_equals_the_composed_formula(
            lead in proptest::collection::vec(0usize..4, 0..3),
            normalized in proptest::collection::vec(1usize..6, 1..3),
            affine in 0u8..4,
            seed: u64,
        ) {
            let mut g = Generator::new(seed);
            let shape: Vec<usize> = lead.iter().chain(&normalized).copied().collect();
            let x = randn(&shape, &mut g).mul_scalar(3.0).add_scalar(1.5);
            let w = (affine & 1 == 1).then(|| randn(&normalized, &mut g));
            let b = (affine & 2 == 2).then(|| randn(&normalized, &mut g));
            let dy = randn(&shape, &mut g);
            let k = normalized.len();
            let (y, mean, rstd) = x.layer_norm(&normalized, w.as_ref(), b.as_ref(), 1e-5);
            prop_assert!(close(&y, &composed(&x, k, w.as_ref(), b.as_ref(), 1e-5)));
            let mut stats = lead.clone();
            stats.resize(shape.len(), 1);
            prop_assert_eq!(mean.dims(), &stats[..]);
            prop_assert_eq!(rstd.dims(), &stats[..]);
            let (dx, dw, db) = Tensor::layer_norm_backward(&x, &normalized, &mean, &rstd, w.as_ref(), &dy);
            let (ex, ew, eb) = composed_backward(&x, k, w.as_ref(), &dy, 1e-5);
            prop_assert!(close(&dx, &ex));
            prop_assert!(close(&dw, &ew), "{:?} vs {:?}", dw.to_vec::<f64>(), ew.to_vec::<f64>());
            prop_assert!(close(&db, &eb));
            // a strided input gives the same
            if shape.len() >= 2 {
                let xt = x.t().contiguous().t();
                prop_assert_eq!(xt.layer_norm(&normalized, w.as_ref(), b.as_ref(), 1e-5).0.to_vec::<f64>(), y.to_vec::<f64>());
            }
        }

        #[test]
        fn softmax_gradients_equal_the_composed_formulas(
            shape in proptest::collection::vec(1usize..6, 1..4),
            pick: usize,
            seed: u64,
        ) {
            let mut g = Generator::new(seed);
            let d = (pick % shape.len()) as isize;
            let x = randn(&shape, &mut g).mul_scalar(2.0);
            let dy = randn(&shape, &mut g);
            let y = x.softmax(d);
            let want = y.mul(&dy.sub(&dy.mul(&y).sum(&[d], true)));
            prop_assert_eq!(Tensor::softmax_backward(&y, &dy, d).to_vec::<f64>(), want.to_vec::<f64>());
            let ly = x.log_softmax(d);
            let want = dy.sub(&ly.exp().mul(&dy.sum(&[d], true)));
            prop_assert_eq!(Tensor::log_softmax_backward(&ly, &dy, d).to_vec::<f64>(), want.to_vec::<f64>());
            // f32 too, and a transposed (non-contiguous) gradient
            let (y32, dy32) = (y.to_dtype(DType::F32), dy.to_dtype(DType::F32));
            let want = y32.mul(&dy32.sub(&dy32.mul(&y32).sum(&[d], true)));
            prop_assert_eq!(Tensor::softmax_backward(&y32, &dy32, d).to_vec::<f32>(), want.to_vec::<f32>());
            if shape.len() >= 2 {
                let dyt = dy.t().contiguous().t();
                let want = y.mul(&dyt.sub(&dyt.mul(&y).sum(&[d], true)));
                prop_assert_eq!(Tensor::softmax_backward(&y, &dyt, d).to_vec::<f64>(), want.to_vec::<f64>());
            }
        }
    }

    #[test]
    fn f32_layer_norm_is_close_to_f64() {
        let mut g = Generator::new(4);
        let x = randn(&[16, 96], &mut g).mul_scalar(5.0).add_scalar(20.0);
        let (w, b, dy) = (randn(&[96], &mut g), randn(&[96], &mut g), randn(&[16, 96], &mut g));
        let f = |t: &Tensor| t.to_dtype(DType::F32);
        let (y, m, r) = x.layer_norm(&[96], Some(&w), Some(&b), 1e-5);
        let (y32, m32, r32) = f(&x).layer_norm(&[96], Some(&f(&w)), Some(&f(&b)), 1e-5);
        assert!(y32.to_dtype(DType::F64).allclose(&y, 1e-4, 1e-4));
        let (dx, dw, db) = Tensor::layer_norm_backward(&x, &[96], &m, &r, Some(&w), &dy);
        let (dx32, dw32, db32) =
            Tensor::layer_norm_backward(&f(&x), &[96], &m32, &r32, Some(&f(&w)), &f(&dy));
        for (a, b) in [(dx32, dx), (dw32, dw), (db32, db)] {
            assert!(a.to_dtype(DType::F64).allclose(&b, 1e-3, 1e-4));
        }
    }

    #[test]
    fn empty_rows_and_gradients() {
        let x = Tensor::zeros(&[0, 3]);
        let (y, mean, _) = x.layer_norm(&[3], None, None, 1e-5);
        assert_eq!((y.dims(), mean.dims()), (&[0, 3][..], &[0, 1][..]));
        let (dx, dw, db) = Tensor::layer_norm_backward(&x, &[3], &mean, &mean, None, &x);
        assert_eq!(
            (dx.dims(), dw.to_vec::<f32>(), db.to_vec::<f32>()),
            (&[0, 3][..], vec![0.0; 3], vec![0.0; 3])
        );
        let e = Tensor::zeros(&[2, 0]);
        assert_eq!(Tensor::softmax_backward(&e, &e, 1).dims(), &[2, 0]);
        // rows of nothing: NaN statistics, as the mean of nothing is
        let (y, mean, rstd) = e.layer_norm(&[0], None, None, 1e-5);
        assert_eq!(y.dims(), &[2, 0]);
        assert!(mean.to_vec::<f32>().iter().chain(&rstd.to_vec::<f32>()).all(|v| v.is_nan()));
        assert!(e.mean(&[1], false).to_vec::<f32>().iter().all(|v| v.is_nan()));
        let (dx, dw, _) = Tensor::layer_norm_backward(&e, &[0], &mean, &rstd, None, &e);
        assert_eq!((dx.dims(), dw.dims()), (&[2, 0][..], &[0][..]));
    }

    /// Sizes above the parallel threshold, with a row count that is not a multiple of the
    /// chunk: the same bits with one thread and two.
    #[test]
    fn bit_identical_for_any_thread_count() {
        let mut g = Generator::new(7);
        let f32s = |s: &[usize], g: &mut Generator| Tensor::randn_with(s, DType::F32, g);
        let (x, w, b, dy) = (
            f32s(&[2051, 128], &mut g),
            f32s(&[128], &mut g),
            f32s(&[128], &mut g),
            f32s(&[2051, 128], &mut g),
        );
        let scores = f32s(&[9, 4, 61, 64], &mut g);
        let ds = f32s(&[9, 4, 61, 64], &mut g);
        assert!(x.numel() >= crate::parallel::PARALLEL_ELEMENT_THRESHOLD);
        let run = |threads: usize| {
            crate::set_num_threads(threads);
            let (y, m, r) = x.layer_norm(&[128], Some(&w), Some(&b), 1e-5);
            let (dx, dw, db) = Tensor::layer_norm_backward(&x, &[128], &m, &r, Some(&w), &dy);
            let p = scores.softmax(-1);
            let lp = scores.log_softmax(2);
            let out = [
                y,
                m,
                r,
                dx,
                dw,
                db,
                Tensor::softmax_backward(&p, &ds, -1),
                Tensor::log_softmax_backward(&lp, &ds, 2),
                p,
                lp,
            ];
            crate::set_num_threads(0);
            out.map(|t| t.to_vec::<f32>().iter().map(|v| v.to_bits()).collect::<Vec<u32>>())
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    #[should_panic(
        expected = "layer_norm: expected input ending in a non-empty normalized_shape [4] and weight and bias of that shape, got [2, 3], None and None"
    )]
    fn layer_norm_wrong_shape_panics() {
        Tensor::zeros(&[2, 3]).layer_norm(&[4], None, None, 1e-5);
    }

    #[test]
    #[should_panic(expected = "layer_norm_backward: rstd must have shape [2, 1] for input [2, 3], got [2]")]
    fn layer_norm_backward_wrong_stats_panics() {
        let x = Tensor::zeros(&[2, 3]);
        Tensor::layer_norm_backward(&x, &[3], &Tensor::zeros(&[2, 1]), &Tensor::zeros(&[2]), None, &x);
    }

    #[test]
    #[should_panic(
        expected = "softmax_backward: incompatible shapes [2, 3] and [3, 2]: the gradient must have the output's shape"
    )]
    fn softmax_backward_wrong_shape_panics() {
        Tensor::softmax_backward(&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[3, 2]), -1);
    }

    #[test]
    #[should_panic(expected = "layer_norm: not supported for int64 tensors")]
    fn layer_norm_of_integers_panics() {
        Tensor::from([1i64, 2]).layer_norm(&[2], None, None, 1e-5);
    }
}
