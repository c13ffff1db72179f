//! Fused recurrent ops: one LSTM step, and a whole LSTM layer over a sequence with its
//! backpropagation through time, each as one kernel (see [`crate::kernels::recurrent`]).

use crate::dtype::Element;
use crate::error::{Result, TensorError, or_panic};
use crate::kernels::gemm::{self, Strided};
use crate::kernels::recurrent as k;
use crate::tensor::{Tensor, with_float};

fn two_d(op: &'static str, name: &str, t: &Tensor, rows: usize, cols: usize) -> Result<()> {
    if t.dims() != [rows, cols] {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("{name} must have shape [{rows}, {cols}], got {:?}", t.dims()),
        });
    }
    Ok(())
}

/// Every operand is a float tensor of one dtype (shared with the other fused ops).
pub(crate) fn same_float_dtype(op: &'static str, ts: &[&Tensor]) -> Result<()> {
    let dtype = ts[0].dtype();
    if !dtype.is_float() {
        return Err(TensorError::UnsupportedDType { op, dtype, detail: String::new() });
    }
    if let Some(other) = ts.iter().find(|t| t.dtype() != dtype) {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("all operands must share one dtype, got {dtype} and {}", other.dtype()),
        });
    }
    Ok(())
}

impl Tensor {
    /// [`Tensor::lstm_cell`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If the shapes are not `(N, 4H)`, `(N, 4H)`, `(N, H)` or the dtypes differ or are
    /// not float.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let (hc, act) = Tensor::try_lstm_cell(&Tensor::zeros(&[2, 12]), &Tensor::zeros(&[2, 12]), &Tensor::zeros(&[2, 3]))?;
    /// assert_eq!((hc.dims(), act.dims()), (&[2, 2, 3][..], &[2, 12][..]));
    /// // the gates must be 4 × the state size
    /// assert!(Tensor::try_lstm_cell(&Tensor::zeros(&[2, 8]), &Tensor::zeros(&[2, 8]), &Tensor::zeros(&[2, 3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_lstm_cell(xg: &Tensor, hg: &Tensor, c_prev: &Tensor) -> Result<(Tensor, Tensor)> {
        const OP: &str = "lstm_cell";
        let (n, h) = state_dims(OP, "c_prev", c_prev)?;
        two_d(OP, "xg", xg, n, 4 * h)?;
        two_d(OP, "hg", hg, n, 4 * h)?;
        same_float_dtype(OP, &[xg, hg, c_prev])?;
        Ok(with_float!(xg.dtype(), OP, |T| {
            let mut hc = crate::buffer::filled(2 * n * h, T::ZERO);
            let mut act = crate::buffer::filled(4 * n * h, T::ZERO);
            let (h_out, c_out) = hc.split_at_mut(n * h);
            k::lstm_cell_forward(
                &xg.contiguous_slice::<T>(),
                &hg.contiguous_slice::<T>(),
                &c_prev.contiguous_slice::<T>(),
                n,
                h,
                h_out,
                c_out,
                &mut act,
            );
            (Tensor::from_parts(hc, &[2, n, h]), Tensor::from_parts(act, &[n, 4 * h]))
        }))
    }

    /// One LSTM step, fused: from the input projection `xg` and recurrent projection `hg`
    /// (each `(N, 4H)`, gates in PyTorch's order i, f, g, o) and the previous cell state
    /// `c_prev` (`(N, H)`), returns the new states stacked as `(2, N, H)` (`h` then `c`)
    /// and the activated gates (`(N, 4H)`), which [`Tensor::lstm_cell_backward`] takes.
    ///
    /// # Panics
    /// As [`Tensor::try_lstm_cell`] errs.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // zero pre-activations: i = f = o = 1/2, g = 0, so c = c_prev / 2
    /// let (hc, _) = Tensor::lstm_cell(&Tensor::zeros(&[1, 4]), &Tensor::zeros(&[1, 4]), &Tensor::ones(&[1, 1]));
    /// assert_eq!(hc.to_vec::<f32>()[1], 0.5);
    /// ```
    #[track_caller]
    pub fn lstm_cell(xg: &Tensor, hg: &Tensor, c_prev: &Tensor) -> (Tensor, Tensor) {
        or_panic(Tensor::try_lstm_cell(xg, hg, c_prev))
    }

    /// Gradient of [`Tensor::lstm_cell`]: from the activated gates, `c_prev`, the output
    /// `hc` (`(2, N, H)`) and its gradient `dhc`, returns the gradient of the
    /// pre-activations (`(N, 4H)`, the same for `xg` and `hg`) and of `c_prev` (`(N, H)`).
    ///
    /// # Panics
    /// If the shapes do not match those of [`Tensor::lstm_cell`] or dtypes differ.
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let r = |s: &[usize], g: &mut Generator| Tensor::randn_with(s, DType::F64, g);
    /// let (xg, hg, c, dhc) = (r(&[2, 8], &mut g), r(&[2, 8], &mut g), r(&[2, 2], &mut g), r(&[2, 2, 2], &mut g));
    /// let (hc, act) = Tensor::lstm_cell(&xg, &hg, &c);
    /// let (d_gates, d_c) = Tensor::lstm_cell_backward(&act, &c, &hc, &dhc);
    /// // check both against central differences of loss = Σ hc·dhc
    /// let loss = |xg: &Tensor, c: &Tensor| Tensor::lstm_cell(xg, &hg, c).0.mul(&dhc).sum_all().item();
    /// let bump = |t: &Tensor, i: usize, e: f64| {
    ///     let mut v = vec![0.0; t.numel()];
    ///     v[i] = e;
    ///     t.add(&Tensor::from_vec(v, t.dims()).unwrap())
    /// };
    /// let e = 1e-6;
    /// let num_g = (loss(&bump(&xg, 5, e), &c) - loss(&bump(&xg, 5, -e), &c)) / (2.0 * e);
    /// let num_c = (loss(&xg, &bump(&c, 3, e)) - loss(&xg, &bump(&c, 3, -e))) / (2.0 * e);
    /// assert!((num_g - d_gates.to_vec::<f64>()[5]).abs() < 1e-6);
    /// assert!((num_c - d_c.to_vec::<f64>()[3]).abs() < 1e-6);
    /// ```
    #[track_caller]
    pub fn lstm_cell_backward(act: &Tensor, c_prev: &Tensor, hc: &Tensor, dhc: &Tensor) -> (Tensor, Tensor) {
        const OP: &str = "lstm_cell_backward";
        let check = || -> Result<(usize, usize)> {
            let (n, h) = state_dims(OP, "c_prev", c_prev)?;
            two_d(OP, "act", act, n, 4 * h)?;
            three_d(OP, "hc", hc, [2, n, h])?;
            three_d(OP, "dhc", dhc, [2, n, h])?;
            same_float_dtype(OP, &[act, c_prev, hc, dhc])?;
            Ok((n, h))
        };
        let (n, h) = or_panic(check());
        with_float!(act.dtype(), OP, |T| {
            let mut d_gates = crate::buffer::filled(4 * n * h, T::ZERO);
            let mut d_c_prev = crate::buffer::filled(n * h, T::ZERO);
            let (hc, dhc) = (hc.contiguous_slice::<T>(), dhc.contiguous_slice::<T>());
            k::lstm_cell_backward(
                &act.contiguous_slice::<T>(),
                &c_prev.contiguous_slice::<T>(),
                &hc[n * h..],
                &dhc[..n * h],
                &dhc[n * h..],
                n,
                h,
                &mut d_gates,
                &mut d_c_prev,
            );
            (Tensor::from_parts(d_gates, &[n, 4 * h]), Tensor::from_parts(d_c_prev, &[n, h]))
        })
    }

    /// A whole LSTM layer over a sequence: from the input projection `projected`
    /// (`(T, N, 4H)`, biases included), the recurrent weight `w_hh` (`(4H, H)`) and the
    /// initial states `h0`, `c0` (`(N, H)`), runs the `T` steps and returns
    /// `(y, cells, gates)`: `y` is `(T + 1, N, H)`, the hidden states `h_1 .. h_T` followed
    /// by the last cell state `c_T`; `cells` (`(T, N, H)`) and `gates` (`(T, N, 4H)`,
    /// activated) are what [`Tensor::lstm_sequence_backward`] needs.
    ///
    /// # Panics
    /// If the shapes do not fit each other or the dtypes differ.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let (y, _, _) = Tensor::lstm_sequence(&Tensor::zeros(&[3, 2, 4]), &Tensor::zeros(&[4, 1]), &Tensor::zeros(&[2, 1]), &Tensor::ones(&[2, 1]));
    /// assert_eq!(y.dims(), &[4, 2, 1]);
    /// assert_eq!(y.to_vec::<f32>()[6], 0.125); // c halves at every step
    /// ```
    #[track_caller]
    pub fn lstm_sequence(
        projected: &Tensor,
        w_hh: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        const OP: &str = "lstm_sequence";
        let (steps, n, h) = or_panic(sequence_dims(OP, projected, w_hh, h0, c0));
        with_float!(projected.dtype(), OP, |T| {
            let (p, w) = (projected.contiguous_slice::<T>(), w_hh.contiguous_slice::<T>());
            let (h0, c0) = (h0.contiguous_slice::<T>(), c0.contiguous_slice::<T>());
            let nh = n * h;
            let mut y = crate::buffer::scratch::<T>((steps + 1) * nh);
            let mut cells = crate::buffer::scratch::<T>(steps * nh);
            let mut gates = crate::buffer::scratch::<T>(steps * 4 * nh);
            let mut hg = crate::buffer::scratch::<T>(4 * nh);
            // The recurrence runs on sinew's pool, so each step's two GEMM halves can run
            // on two threads without waking one up from outside.
            crate::parallel::install(|| {
                for t in 0..steps {
                    // hg = h_prev · W_hhᵀ
                    let (done, rest) = y.split_at_mut(t * nh);
                    let h_prev: &[T] = if t == 0 { &h0 } else { &done[(t - 1) * nh..] };
                    let w_t = Strided::row_major(4 * h, h).t();
                    gemm::gemm_halves(
                        &mut hg,
                        Strided::row_major(n, 4 * h),
                        h_prev,
                        Strided::row_major(n, h),
                        &w,
                        w_t,
                        false,
                    );
                    let (c_done, c_rest) = cells.split_at_mut(t * nh);
                    let c_prev: &[T] = if t == 0 { &c0 } else { &c_done[(t - 1) * nh..] };
                    k::lstm_cell_forward(
                        &p[t * 4 * nh..(t + 1) * 4 * nh],
                        &hg,
                        c_prev,
                        n,
                        h,
                        &mut rest[..nh],
                        &mut c_rest[..nh],
                        &mut gates[t * 4 * nh..(t + 1) * 4 * nh],
                    );
                }
            });
            let last = if steps == 0 { c0.to_vec() } else { cells[(steps - 1) * nh..].to_vec() };
            y[steps * nh..].copy_from_slice(&last);
            (
                Tensor::from_parts(y, &[steps + 1, n, h]),
                Tensor::from_parts(cells, &[steps, n, h]),
                Tensor::from_parts(gates, &[steps, n, 4 * h]),
            )
        })
    }

    /// Gradient of [`Tensor::lstm_sequence`] (backpropagation through time in one kernel):
    /// given its inputs `w_hh`, `h0`, `c0`, its outputs `y`, `cells`, `gates` and the
    /// gradient `dy` of `y`, returns the gradients of `projected` (`(T, N, 4H)`), `w_hh`
    /// (one GEMM over all steps), `h0` and `c0`.
    ///
    /// # Panics
    /// If the shapes do not fit each other or the dtypes differ.
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let r = |s: &[usize], g: &mut Generator| Tensor::randn_with(s, DType::F64, g);
    /// let (x, w, h0, c0) = (r(&[3, 2, 8], &mut g), r(&[8, 2], &mut g), r(&[2, 2], &mut g), r(&[2, 2], &mut g));
    /// let (y, cells, gates) = Tensor::lstm_sequence(&x, &w, &h0, &c0);
    /// let dy = r(y.dims(), &mut g);
    /// let (dx, dw, dh0, dc0) = Tensor::lstm_sequence_backward(&w, &h0, &c0, &y, &cells, &gates, &dy);
    /// assert_eq!((dx.dims(), dw.dims(), dh0.dims(), dc0.dims()), (x.dims(), w.dims(), h0.dims(), c0.dims()));
    /// // check the recurrent weight's gradient against a central difference of Σ y·dy
    /// let loss = |w: &Tensor| Tensor::lstm_sequence(&x, w, &h0, &c0).0.mul(&dy).sum_all().item();
    /// let e = 1e-6;
    /// let mut v = vec![0.0; 16];
    /// v[7] = e;
    /// let bump = Tensor::from_vec(v, &[8, 2]).unwrap();
    /// let numeric = (loss(&w.add(&bump)) - loss(&w.sub(&bump))) / (2.0 * e);
    /// assert!((numeric - dw.to_vec::<f64>()[7]).abs() < 1e-6);
    /// ```
    #[track_caller]
    pub fn lstm_sequence_backward(
        w_hh: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        y: &Tensor,
        cells: &Tensor,
        gates: &Tensor,
        dy: &Tensor,
    ) -> (Tensor, Tensor, Tensor, Tensor) {
        const OP: &str = "lstm_sequence_backward";
        let (steps, n, h) = or_panic(sequence_dims(OP, gates, w_hh, h0, c0));
        or_panic(three_d(OP, "y", y, [steps + 1, n, h]));
        or_panic(three_d(OP, "dy", dy, [steps + 1, n, h]));
        or_panic(three_d(OP, "cells", cells, [steps, n, h]));
        or_panic(same_float_dtype(OP, &[gates, w_hh, h0, c0, y, cells, dy]));
        with_float!(gates.dtype(), OP, |T| {
            let (w, h0v, c0v) =
                (w_hh.contiguous_slice::<T>(), h0.contiguous_slice::<T>(), c0.contiguous_slice::<T>());
            let (y, cells, gates, dy) = (
                y.contiguous_slice::<T>(),
                cells.contiguous_slice::<T>(),
                gates.contiguous_slice::<T>(),
                dy.contiguous_slice::<T>(),
            );
            let nh = n * h;
            let mut d_proj = crate::buffer::scratch::<T>(steps * 4 * nh);
            // the GEMMs below replace every element, unless there is nothing to sum
            let mut dw = if steps > 0 && n > 0 {
                crate::buffer::scratch::<T>(4 * h * h)
            } else {
                crate::buffer::filled(4 * h * h, T::ZERO)
            };
            // running gradients of h_t and c_t, and the previous step's
            let mut dh = crate::buffer::filled(nh, T::ZERO);
            let mut dc = crate::buffer::filled(nh, T::ZERO);
            let mut dc_prev = crate::buffer::filled(nh, T::ZERO);
            if steps > 0 {
                dh.copy_from_slice(&dy[(steps - 1) * nh..steps * nh]);
            }
            dc.copy_from_slice(&dy[steps * nh..]);
            crate::parallel::install(|| {
                for t in (0..steps).rev() {
                    let c_prev: &[T] = if t == 0 { &c0v } else { &cells[(t - 1) * nh..t * nh] };
                    let dg = &mut d_proj[t * 4 * nh..(t + 1) * 4 * nh];
                    k::lstm_cell_backward(
                        &gates[t * 4 * nh..(t + 1) * 4 * nh],
                        c_prev,
                        &cells[t * nh..(t + 1) * nh],
                        &dh,
                        &dc,
                        n,
                        h,
                        dg,
                        &mut dc_prev,
                    );
                    // dh_prev = d_gates · W_hh (+ the output's own gradient at t - 1)
                    if t > 0 {
                        dh.copy_from_slice(&dy[(t - 1) * nh..t * nh]);
                    }
                    let accumulate = t > 0;
                    let (wv, dgv) = (Strided::row_major(4 * h, h), Strided::row_major(n, 4 * h));
                    gemm::gemm_halves(&mut dh, Strided::row_major(n, h), dg, dgv, &w, wv, accumulate);
                    std::mem::swap(&mut dc, &mut dc_prev);
                }
            });
            recurrent_weight_grad(&mut dw, &d_proj, 4, &h0v, &y, steps, n, h);
            (
                Tensor::from_parts(d_proj, &[steps, n, 4 * h]),
                Tensor::from_parts(dw, &[4 * h, h]),
                Tensor::from_parts(dh, &[n, h]),
                Tensor::from_parts(dc, &[n, h]),
            )
        })
    }

    /// A whole GRU layer over a sequence: from the input projection `projected`
    /// (`(T, N, 3H)`, every bias but `b_hn` included), the recurrent weight `w_hh`
    /// (`(3H, H)`), the new gate's recurrent bias `b_hn` (`(H)`, which the reset gate
    /// multiplies) and the initial state `h0` (`(N, H)`), runs the `T` steps of
    /// the fused GRU cell (PyTorch's gate order `r, z, n`)
    /// and returns `(y, act)`: the hidden states `h_1 .. h_T` (`(T, N, H)`) and the saved
    /// gates (`(T, N, 4H)`) that [`Tensor::gru_sequence_backward`] needs.
    ///
    /// # Panics
    /// If the shapes do not fit each other or the dtypes differ.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // zero pre-activations: z = 1/2, n = 0, so h halves at every step
    /// let (y, _) = Tensor::gru_sequence(&Tensor::zeros(&[2, 1, 3]), &Tensor::zeros(&[3, 1]), &Tensor::zeros(&[1]), &Tensor::ones(&[1, 1]));
    /// assert_eq!(y.to_vec::<f32>(), vec![0.5, 0.25]);
    /// ```
    #[track_caller]
    pub fn gru_sequence(projected: &Tensor, w_hh: &Tensor, b_hn: &Tensor, h0: &Tensor) -> (Tensor, Tensor) {
        const OP: &str = "gru_sequence";
        let (steps, n, h) = or_panic(gru_dims(OP, projected, w_hh, b_hn, h0));
        with_float!(projected.dtype(), OP, |T| {
            let (p, w) = (projected.contiguous_slice::<T>(), w_hh.contiguous_slice::<T>());
            let (b, h0) = (b_hn.contiguous_slice::<T>(), h0.contiguous_slice::<T>());
            let nh = n * h;
            let mut y = crate::buffer::scratch::<T>(steps * nh);
            let mut act = crate::buffer::scratch::<T>(steps * 4 * nh);
            let mut hg = crate::buffer::scratch::<T>(3 * nh);
            // on sinew's pool, so each step's two GEMM halves can run on two threads
            crate::parallel::install(|| {
                for t in 0..steps {
                    let (done, rest) = y.split_at_mut(t * nh);
                    let h_prev: &[T] = if t == 0 { &h0 } else { &done[(t - 1) * nh..] };
                    let w_t = Strided::row_major(3 * h, h).t();
                    gemm::gemm_halves(
                        &mut hg,
                        Strided::row_major(n, 3 * h),
                        h_prev,
                        Strided::row_major(n, h),
                        &w,
                        w_t,
                        false,
                    );
                    k::gru_cell_forward(
                        &p[t * 3 * nh..(t + 1) * 3 * nh],
                        &hg,
                        &b,
                        h_prev,
                        n,
                        h,
                        &mut rest[..nh],
                        &mut act[t * 4 * nh..(t + 1) * 4 * nh],
                    );
                }
            });
            (Tensor::from_parts(y, &[steps, n, h]), Tensor::from_parts(act, &[steps, n, 4 * h]))
        })
    }

    /// Gradient of [`Tensor::gru_sequence`] (backpropagation through time in one kernel):
    /// given `w_hh`, `h0`, the outputs `y` and `act` and the gradient `dy` of `y`, returns
    /// the gradients of `projected` (`(T, N, 3H)`), `w_hh` (one GEMM over all steps),
    /// `b_hn` and `h0`.
    ///
    /// # Panics
    /// If the shapes do not fit each other or the dtypes differ.
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let r = |s: &[usize], g: &mut Generator| Tensor::randn_with(s, DType::F64, g);
    /// let (x, w, b, h0) = (r(&[3, 2, 6], &mut g), r(&[6, 2], &mut g), r(&[2], &mut g), r(&[2, 2], &mut g));
    /// let (y, act) = Tensor::gru_sequence(&x, &w, &b, &h0);
    /// let dy = r(y.dims(), &mut g);
    /// let (dx, dw, db, dh0) = Tensor::gru_sequence_backward(&w, &h0, &y, &act, &dy);
    /// assert_eq!((dx.dims(), dw.dims(), db.dims(), dh0.dims()), (x.dims(), w.dims(), b.dims(), h0.dims()));
    /// // check b_hn's gradient against a central difference of Σ y·dy
    /// let loss = |b: &Tensor| Tensor::gru_sequence(&x, &w, b, &h0).0.mul(&dy).sum_all().item();
    /// let e = 1e-6;
    /// let bump = Tensor::from_vec(vec![e, 0.0], &[2]).unwrap();
    /// let numeric = (loss(&b.add(&bump)) - loss(&b.sub(&bump))) / (2.0 * e);
    /// assert!((numeric - db.to_vec::<f64>()[0]).abs() < 1e-6);
    /// ```
    #[track_caller]
    pub fn gru_sequence_backward(
        w_hh: &Tensor,
        h0: &Tensor,
        y: &Tensor,
        act: &Tensor,
        dy: &Tensor,
    ) -> (Tensor, Tensor, Tensor, Tensor) {
        const OP: &str = "gru_sequence_backward";
        let (n, h) = or_panic(state_dims(OP, "h0", h0));
        let steps = y.dims().first().copied().unwrap_or(0);
        or_panic(two_d(OP, "w_hh", w_hh, 3 * h, h));
        or_panic(three_d(OP, "y", y, [steps, n, h]));
        or_panic(three_d(OP, "dy", dy, [steps, n, h]));
        or_panic(three_d(OP, "act", act, [steps, n, 4 * h]));
        or_panic(same_float_dtype(OP, &[w_hh, h0, y, act, dy]));
        with_float!(y.dtype(), OP, |T| {
            let (w, h0v) = (w_hh.contiguous_slice::<T>(), h0.contiguous_slice::<T>());
            let (y, act, dy) =
                (y.contiguous_slice::<T>(), act.contiguous_slice::<T>(), dy.contiguous_slice::<T>());
            let nh = n * h;
            let mut d_proj = crate::buffer::scratch::<T>(steps * 3 * nh);
            let mut d_hg = crate::buffer::scratch::<T>(steps * 3 * nh);
            let mut dw = crate::buffer::filled(3 * h * h, T::ZERO);
            let mut dh = crate::buffer::filled(nh, T::ZERO);
            let mut dh_direct = crate::buffer::filled(nh, T::ZERO);
            if steps > 0 {
                dh.copy_from_slice(&dy[(steps - 1) * nh..]);
            }
            crate::parallel::install(|| {
                for t in (0..steps).rev() {
                    let h_prev: &[T] = if t == 0 { &h0v } else { &y[(t - 1) * nh..t * nh] };
                    let dg = &mut d_hg[t * 3 * nh..(t + 1) * 3 * nh];
                    k::gru_cell_backward(
                        &act[t * 4 * nh..(t + 1) * 4 * nh],
                        h_prev,
                        &dh,
                        n,
                        h,
                        &mut d_proj[t * 3 * nh..(t + 1) * 3 * nh],
                        dg,
                        &mut dh_direct,
                    );
                    // dh_{t-1} = dh·z + d_hg · W_hh (+ the output's own gradient at t - 1)
                    if t > 0 {
                        for ((d, &a), &b) in dh.iter_mut().zip(&dh_direct).zip(&dy[(t - 1) * nh..t * nh]) {
                            *d = a + b;
                        }
                    } else {
                        dh.copy_from_slice(&dh_direct);
                    }
                    let (wv, dgv) = (Strided::row_major(3 * h, h), Strided::row_major(n, 3 * h));
                    gemm::gemm_halves(&mut dh, Strided::row_major(n, h), dg, dgv, &w, wv, true);
                }
            });
            recurrent_weight_grad(&mut dw, &d_hg, 3, &h0v, &y, steps, n, h);
            // b_hn's gradient: the new gate's third of d_hg, summed over steps and rows
            let mut db = crate::buffer::filled(h, T::ZERO);
            for row in d_hg.chunks_exact(3 * h) {
                for (a, &b) in db.iter_mut().zip(&row[2 * h..]) {
                    *a += b;
                }
            }
            (
                Tensor::from_parts(d_proj, &[steps, n, 3 * h]),
                Tensor::from_parts(dw, &[3 * h, h]),
                Tensor::from_parts(db, &[h]),
                Tensor::from_parts(dh, &[n, h]),
            )
        })
    }
}

/// `dW_hh = Σ_t d_tᵀ · h_{t-1}` for a recurrence with `gates·h` rows of `W_hh`: the
/// gradients `d` of the recurrent projections of all `steps` (`(steps·n, gates·h)`), the
/// states they multiplied (`h0`, then the first `steps - 1` rows of `hs`, `(n, h)` each):
/// `h0`'s step alone, then every later step in one GEMM. Writes `dw` (`(gates·h, h)`)
/// entirely when there is a step and a row; leaves it alone otherwise.
#[allow(clippy::too_many_arguments)]
fn recurrent_weight_grad<T: crate::dtype::Float>(
    dw: &mut [T],
    d: &[T],
    gates: usize,
    h0: &[T],
    hs: &[T],
    steps: usize,
    n: usize,
    h: usize,
) {
    if steps == 0 || n == 0 {
        return;
    }
    let (rows, nh) = (gates * h, n * h);
    let dwv = Strided::row_major(rows, h);
    let par = gemm::split_for(rows, h, (steps - 1).max(1) * n);
    let first = Strided::row_major(n, rows).t();
    gemm::gemm(dw, dwv, &d[..n * rows], first, h0, Strided::row_major(n, h), false, par);
    if steps > 1 {
        let rest = Strided::row_major((steps - 1) * n, rows).t();
        let prev = Strided::row_major((steps - 1) * n, h);
        gemm::gemm(dw, dwv, &d[n * rows..], rest, &hs[..(steps - 1) * nh], prev, true, par);
    }
}

fn state_dims(op: &'static str, name: &str, t: &Tensor) -> Result<(usize, usize)> {
    if t.ndim() != 2 {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("{name} must be 2-D (N, H), got {:?}", t.dims()),
        });
    }
    Ok((t.dims()[0], t.dims()[1]))
}

fn three_d(op: &'static str, name: &str, t: &Tensor, dims: [usize; 3]) -> Result<()> {
    if t.dims() != dims {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("{name} must have shape {dims:?}, got {:?}", t.dims()),
        });
    }
    Ok(())
}

/// `(T, N, H)` of a sequence op from `(T, N, 4H)` gates or projections, `w_hh`, `h0`, `c0`.
fn sequence_dims(
    op: &'static str,
    per_step: &Tensor,
    w_hh: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
) -> Result<(usize, usize, usize)> {
    let (n, h) = state_dims(op, "h0", h0)?;
    two_d(op, "c0", c0, n, h)?;
    two_d(op, "w_hh", w_hh, 4 * h, h)?;
    if per_step.ndim() != 3 || per_step.dims()[1..] != [n, 4 * h] {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("the per-step input must have shape [T, {n}, {}], got {:?}", 4 * h, per_step.dims()),
        });
    }
    same_float_dtype(op, &[per_step, w_hh, h0, c0])?;
    Ok((per_step.dims()[0], n, h))
}

/// `(T, N, H)` of a GRU sequence from `(T, N, 3H)` projections, `w_hh`, `b_hn`, `h0`.
fn gru_dims(
    op: &'static str,
    projected: &Tensor,
    w_hh: &Tensor,
    b_hn: &Tensor,
    h0: &Tensor,
) -> Result<(usize, usize, usize)> {
    let (n, h) = state_dims(op, "h0", h0)?;
    two_d(op, "w_hh", w_hh, 3 * h, h)?;
    if b_hn.dims() != [h] {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("b_hn must have shape [{h}], got {:?}", b_hn.dims()),
        });
    }
    if projected.ndim() != 3 || projected.dims()[1..] != [n, 3 * h] {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("projected must have shape [T, {n}, {}], got {:?}", 3 * h, projected.dims()),
        });
    }
    same_float_dtype(op, &[projected, w_hh, b_hn, h0])?;
    Ok((projected.dims()[0], n, h))
}
