//! The LSTM cell update fused into one pass: forward from the gate pre-activations, and
//! its gradient, on plain row-major slices.
//!
//! Gates are laid out as PyTorch's `nn.LSTM` lays out its weight rows: each row of the
//! `(N, 4H)` pre-activations holds the input, forget, cell and output gates, `H` each.
//! One pass replaces about a dozen elementwise ops (chunk, three sigmoids, two tanhs,
//! three products, a sum) and their buffers per time step.

use crate::dtype::Float;

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

fn check(what: &str, name: &str, got: usize, want: usize) {
    assert!(got == want, "{what}: {name} has {got} elements, expected {want}");
}

/// Forward of one LSTM step for `n` rows of hidden size `h`:
///
/// ```text
/// i, f, g, o = σ(x_i + h_i), σ(x_f + h_f), tanh(x_g + h_g), σ(x_o + h_o)
/// c = f·c_prev + i·g,   h = o·tanh(c)
/// ```
///
/// where the pre-activations are `xg + hg` (the input and recurrent projections, each
/// `(n, 4h)`). Writes `hc` (`(n, 2h)`: `h` then `c` on each row) and `act` (`(n, 4h)`: the
/// activated gates `i, f, g, o`, which the backward pass needs).
///
/// # Panics
/// If a buffer has the wrong length.
pub fn lstm_cell_forward<T: Float>(
    xg: &[T],
    hg: &[T],
    c_prev: &[T],
    n: usize,
    h: usize,
    hc: &mut [T],
    act: &mut [T],
) {
    const WHAT: &str = "lstm_cell_forward";
    for (name, buf, want) in
        [("xg", xg.len(), 4 * n * h), ("hg", hg.len(), 4 * n * h), ("c_prev", c_prev.len(), n * h)]
    {
        check(WHAT, name, buf, want);
    }
    check(WHAT, "hc", hc.len(), 2 * n * h);
    check(WHAT, "act", act.len(), 4 * n * h);
    if h == 0 {
        return;
    }
    crate::simd::vectorized(ForwardRows { xg, hg, c_prev, h, hc, act });
}

struct ForwardRows<'a, T> {
    xg: &'a [T],
    hg: &'a [T],
    c_prev: &'a [T],
    h: usize,
    hc: &'a mut [T],
    act: &'a mut [T],
}

impl<T: Float> crate::simd::Kernel for ForwardRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ForwardRows { xg, hg, c_prev, h, hc, act } = self;
        forward_rows(xg, hg, c_prev, h, hc, act);
    }
}

#[inline(always)]
fn forward_rows<T: Float>(xg: &[T], hg: &[T], c_prev: &[T], h: usize, hc: &mut [T], act: &mut [T]) {
    let rows = xg.chunks_exact(4 * h).zip(hg.chunks_exact(4 * h)).zip(c_prev.chunks_exact(h));
    for (((xr, hr), cp), (hcr, ar)) in rows.zip(hc.chunks_exact_mut(2 * h).zip(act.chunks_exact_mut(4 * h))) {
        // Each gate in its own vectorisable sweep: sigmoid, but tanh for the cell gate.
        for (gate, ((a, x), y)) in
            ar.chunks_exact_mut(h).zip(xr.chunks_exact(h)).zip(hr.chunks_exact(h)).enumerate()
        {
            if gate == 2 {
                a.iter_mut().zip(x).zip(y).for_each(|((a, &x), &y)| *a = (x + y).tanh());
            } else {
                a.iter_mut().zip(x).zip(y).for_each(|((a, &x), &y)| *a = sigmoid(x + y));
            }
        }
        let (i, rest) = ar.split_at(h);
        let (f, rest) = rest.split_at(h);
        let (g, o) = rest.split_at(h);
        let (h_out, c_out) = hcr.split_at_mut(h);
        let (i, f, g, o, cp, h_out, c_out) =
            (&i[..h], &f[..h], &g[..h], &o[..h], &cp[..h], &mut h_out[..h], &mut c_out[..h]);
        for k in 0..h {
            let c = f[k] * cp[k] + i[k] * g[k];
            c_out[k] = c;
            h_out[k] = o[k] * c.tanh();
        }
    }
}

/// Gradient of [`lstm_cell_forward`]. Given the activated gates `act`, the previous cell
/// state, the new cell state `c` (read from `hc`), and the gradient `dhc` of `hc`, writes
/// the gradient of the pre-activations (`d_gates`, `(n, 4h)`; the same for both
/// projections, since they add) and of `c_prev` (`(n, h)`).
///
/// # Panics
/// If a buffer has the wrong length.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_backward<T: Float>(
    act: &[T],
    c_prev: &[T],
    hc: &[T],
    dhc: &[T],
    n: usize,
    h: usize,
    d_gates: &mut [T],
    d_c_prev: &mut [T],
) {
    const WHAT: &str = "lstm_cell_backward";
    check(WHAT, "act", act.len(), 4 * n * h);
    check(WHAT, "c_prev", c_prev.len(), n * h);
    check(WHAT, "hc", hc.len(), 2 * n * h);
    check(WHAT, "dhc", dhc.len(), 2 * n * h);
    check(WHAT, "d_gates", d_gates.len(), 4 * n * h);
    check(WHAT, "d_c_prev", d_c_prev.len(), n * h);
    if h == 0 {
        return;
    }
    crate::simd::vectorized(BackwardRows { act, c_prev, hc, dhc, h, d_gates, d_c_prev });
}

struct BackwardRows<'a, T> {
    act: &'a [T],
    c_prev: &'a [T],
    hc: &'a [T],
    dhc: &'a [T],
    h: usize,
    d_gates: &'a mut [T],
    d_c_prev: &'a mut [T],
}

impl<T: Float> crate::simd::Kernel for BackwardRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let BackwardRows { act, c_prev, hc, dhc, h, d_gates, d_c_prev } = self;
        backward_rows(act, c_prev, hc, dhc, h, d_gates, d_c_prev);
    }
}

#[inline(always)]
fn backward_rows<T: Float>(
    act: &[T],
    c_prev: &[T],
    hc: &[T],
    dhc: &[T],
    h: usize,
    d_gates: &mut [T],
    d_c_prev: &mut [T],
) {
    let inputs = act
        .chunks_exact(4 * h)
        .zip(c_prev.chunks_exact(h))
        .zip(hc.chunks_exact(2 * h))
        .zip(dhc.chunks_exact(2 * h));
    let outputs = d_gates.chunks_exact_mut(4 * h).zip(d_c_prev.chunks_exact_mut(h));
    for ((((ar, cp), hcr), dr), (dg, dcp)) in inputs.zip(outputs) {
        let (i, rest) = ar.split_at(h);
        let (f, rest) = rest.split_at(h);
        let (g, o) = rest.split_at(h);
        let c = &hcr[h..];
        let (dh, dc_in) = dr.split_at(h);
        let (di, rest) = dg.split_at_mut(h);
        let (df, rest) = rest.split_at_mut(h);
        let (dgg, d_o) = rest.split_at_mut(h);
        // Every slice exactly `h` long, so the loop has no bounds checks and vectorises.
        let (i, f, g, o, c, cp, dh, dc_in) =
            (&i[..h], &f[..h], &g[..h], &o[..h], &c[..h], &cp[..h], &dh[..h], &dc_in[..h]);
        let (di, df, dgg, d_o, dcp) =
            (&mut di[..h], &mut df[..h], &mut dgg[..h], &mut d_o[..h], &mut dcp[..h]);
        // dc = dc_in + dh·o·(1 - tanh²c); then each gate's pre-activation gradient
        for k in 0..h {
            let (i, f, g, o) = (i[k], f[k], g[k], o[k]);
            let tc = c[k].tanh();
            let dc = dc_in[k] + dh[k] * o * (T::ONE - tc * tc);
            d_o[k] = dh[k] * tc * o * (T::ONE - o);
            di[k] = dc * g * i * (T::ONE - i);
            df[k] = dc * cp[k] * f * (T::ONE - f);
            dgg[k] = dc * i * (T::ONE - g * g);
            dcp[k] = dc * f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(xg: &[f64], hg: &[f64], cp: &[f64], n: usize, h: usize) -> Vec<f64> {
        let mut out = vec![0.0; 2 * n * h];
        for r in 0..n {
            let z = |gate: usize, k: usize| xg[r * 4 * h + gate * h + k] + hg[r * 4 * h + gate * h + k];
            let s = |v: f64| 1.0 / (1.0 + (-v).exp());
            for k in 0..h {
                let c = s(z(1, k)) * cp[r * h + k] + s(z(0, k)) * z(2, k).tanh();
                out[r * 2 * h + h + k] = c;
                out[r * 2 * h + k] = s(z(3, k)) * c.tanh();
            }
        }
        out
    }

    fn data(len: usize, seed: u64) -> Vec<f64> {
        (0..len).map(|i| (i as f64 * 0.7 + seed as f64 * 1.3).sin() * 2.5).collect()
    }

    #[test]
    fn forward_matches_the_unfused_formula() {
        let (n, h) = (3, 5);
        let (xg, hg, cp) = (data(4 * n * h, 1), data(4 * n * h, 2), data(n * h, 3));
        let (mut hc, mut act) = (vec![0.0; 2 * n * h], vec![0.0; 4 * n * h]);
        lstm_cell_forward(&xg, &hg, &cp, n, h, &mut hc, &mut act);
        for (a, b) in hc.iter().zip(reference(&xg, &hg, &cp, n, h)) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
    }

    #[test]
    fn backward_matches_central_differences() {
        let (n, h) = (2, 3);
        let (xg, hg, cp) = (data(4 * n * h, 4), vec![0.0; 4 * n * h], data(n * h, 5));
        let dhc = data(2 * n * h, 6);
        let loss = |xg: &[f64], cp: &[f64]| -> f64 {
            reference(xg, &hg, cp, n, h).iter().zip(&dhc).map(|(a, b)| a * b).sum()
        };
        let (mut hc, mut act) = (vec![0.0; 2 * n * h], vec![0.0; 4 * n * h]);
        lstm_cell_forward(&xg, &hg, &cp, n, h, &mut hc, &mut act);
        let (mut dg, mut dcp) = (vec![0.0; 4 * n * h], vec![0.0; n * h]);
        lstm_cell_backward(&act, &cp, &hc, &dhc, n, h, &mut dg, &mut dcp);
        let eps = 1e-6;
        for j in 0..xg.len() {
            let (mut a, mut b) = (xg.clone(), xg.clone());
            a[j] += eps;
            b[j] -= eps;
            let numeric = (loss(&a, &cp) - loss(&b, &cp)) / (2.0 * eps);
            assert!((numeric - dg[j]).abs() < 1e-7, "gate {j}: {numeric} vs {}", dg[j]);
        }
        for j in 0..cp.len() {
            let (mut a, mut b) = (cp.clone(), cp.clone());
            a[j] += eps;
            b[j] -= eps;
            let numeric = (loss(&xg, &a) - loss(&xg, &b)) / (2.0 * eps);
            assert!((numeric - dcp[j]).abs() < 1e-7, "c_prev {j}: {numeric} vs {}", dcp[j]);
        }
    }

    #[test]
    #[should_panic(expected = "lstm_cell_forward: c_prev has 5 elements, expected 6")]
    fn wrong_lengths_are_named() {
        let (mut hc, mut act) = (vec![0.0; 12], vec![0.0; 24]);
        lstm_cell_forward(&[0.0f64; 24], &[0.0; 24], &[0.0; 5], 2, 3, &mut hc, &mut act);
    }
}
