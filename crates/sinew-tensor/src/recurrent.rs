//! Fused recurrent-cell ops: the LSTM step as one kernel (see [`kernels::recurrent`]).

use crate::dtype::Element;
use crate::error::{Result, TensorError, or_panic};
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

fn same_float_dtype(op: &'static str, ts: &[&Tensor]) -> Result<()> {
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
    pub fn try_lstm_cell(xg: &Tensor, hg: &Tensor, c_prev: &Tensor) -> Result<(Tensor, Tensor)> {
        const OP: &str = "lstm_cell";
        if c_prev.ndim() != 2 {
            return Err(TensorError::InvalidArgument {
                op: OP,
                msg: format!("c_prev must be 2-D (N, H), got {:?}", c_prev.dims()),
            });
        }
        let (n, h) = (c_prev.dims()[0], c_prev.dims()[1]);
        two_d(OP, "xg", xg, n, 4 * h)?;
        two_d(OP, "hg", hg, n, 4 * h)?;
        same_float_dtype(OP, &[xg, hg, c_prev])?;
        Ok(with_float!(xg.dtype(), OP, |T| {
            let mut hc = crate::buffer::filled(2 * n * h, T::ZERO);
            let mut act = crate::buffer::filled(4 * n * h, T::ZERO);
            k::lstm_cell_forward(
                &xg.contiguous_slice::<T>(),
                &hg.contiguous_slice::<T>(),
                &c_prev.contiguous_slice::<T>(),
                n,
                h,
                &mut hc,
                &mut act,
            );
            (Tensor::from_parts(hc, &[n, 2 * h]), Tensor::from_parts(act, &[n, 4 * h]))
        }))
    }

    /// One LSTM step, fused: from the input projection `xg` and recurrent projection `hg`
    /// (each `(N, 4H)`, gates in PyTorch's order i, f, g, o) and the previous cell state
    /// `c_prev` (`(N, H)`), returns `hc` (`(N, 2H)`: the new hidden state `h` in the first
    /// `H` columns, the new cell state `c` in the last `H`) and the activated gates
    /// (`(N, 4H)`), which [`Tensor::lstm_cell_backward`] takes.
    ///
    /// # Panics
    /// As [`Tensor::try_lstm_cell`] errs.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // zero pre-activations: i = f = o = 1/2, g = 0, so c = c_prev / 2
    /// let (hc, _) = Tensor::lstm_cell(&Tensor::zeros(&[1, 4]), &Tensor::zeros(&[1, 4]), &Tensor::ones(&[1, 1]));
    /// let c = hc.to_vec::<f32>()[1];
    /// assert_eq!(c, 0.5);
    /// ```
    #[track_caller]
    pub fn lstm_cell(xg: &Tensor, hg: &Tensor, c_prev: &Tensor) -> (Tensor, Tensor) {
        or_panic(Tensor::try_lstm_cell(xg, hg, c_prev))
    }

    /// Gradient of [`Tensor::lstm_cell`]: from the activated gates, `c_prev`, the output
    /// `hc` and its gradient `dhc`, returns the gradient of the pre-activations (`(N, 4H)`,
    /// the same for `xg` and `hg`) and of `c_prev` (`(N, H)`).
    ///
    /// # Panics
    /// If the shapes do not match those of [`Tensor::lstm_cell`] or dtypes differ.
    #[track_caller]
    pub fn lstm_cell_backward(act: &Tensor, c_prev: &Tensor, hc: &Tensor, dhc: &Tensor) -> (Tensor, Tensor) {
        const OP: &str = "lstm_cell_backward";
        let check = || -> Result<(usize, usize)> {
            if c_prev.ndim() != 2 {
                return Err(TensorError::InvalidArgument {
                    op: OP,
                    msg: format!("c_prev must be 2-D (N, H), got {:?}", c_prev.dims()),
                });
            }
            let (n, h) = (c_prev.dims()[0], c_prev.dims()[1]);
            two_d(OP, "act", act, n, 4 * h)?;
            two_d(OP, "hc", hc, n, 2 * h)?;
            two_d(OP, "dhc", dhc, n, 2 * h)?;
            same_float_dtype(OP, &[act, c_prev, hc, dhc])?;
            Ok((n, h))
        };
        let (n, h) = or_panic(check());
        with_float!(act.dtype(), OP, |T| {
            let mut d_gates = crate::buffer::filled(4 * n * h, T::ZERO);
            let mut d_c_prev = crate::buffer::filled(n * h, T::ZERO);
            k::lstm_cell_backward(
                &act.contiguous_slice::<T>(),
                &c_prev.contiguous_slice::<T>(),
                &hc.contiguous_slice::<T>(),
                &dhc.contiguous_slice::<T>(),
                n,
                h,
                &mut d_gates,
                &mut d_c_prev,
            );
            (Tensor::from_parts(d_gates, &[n, 4 * h]), Tensor::from_parts(d_c_prev, &[n, h]))
        })
    }
}
