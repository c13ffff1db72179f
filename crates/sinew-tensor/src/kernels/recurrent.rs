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
/// `(n, 4h)`). Writes the new states `h_out` and `c_out` (`(n, h)` each) and `act`
/// (`(n, 4h)`: the activated gates `i, f, g, o`, which the backward pass needs).
///
/// # Panics
/// If a buffer has the wrong length.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_forward<T: Float>(
    xg: &[T],
    hg: &[T],
    c_prev: &[T],
    n: usize,
    h: usize,
    h_out: &mut [T],
    c_out: &mut [T],
    act: &mut [T],
) {
    const WHAT: &str = "lstm_cell_forward";
    for (name, got, want) in [
        ("xg", xg.len(), 4 * n * h),
        ("hg", hg.len(), 4 * n * h),
        ("c_prev", c_prev.len(), n * h),
        ("h_out", h_out.len(), n * h),
        ("c_out", c_out.len(), n * h),
        ("act", act.len(), 4 * n * h),
    ] {
        check(WHAT, name, got, want);
    }
    if h == 0 {
        return;
    }
    crate::simd::vectorized(ForwardRows { xg, hg, c_prev, h, h_out, c_out, act });
}

struct ForwardRows<'a, T> {
    xg: &'a [T],
    hg: &'a [T],
    c_prev: &'a [T],
    h: usize,
    h_out: &'a mut [T],
    c_out: &'a mut [T],
    act: &'a mut [T],
}

impl<T: Float> crate::simd::Kernel for ForwardRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ForwardRows { xg, hg, c_prev, h, h_out, c_out, act } = self;
        let rows = xg.chunks_exact(4 * h).zip(hg.chunks_exact(4 * h)).zip(c_prev.chunks_exact(h));
        let outs = h_out.chunks_exact_mut(h).zip(c_out.chunks_exact_mut(h)).zip(act.chunks_exact_mut(4 * h));
        for (((xr, hr), cp), ((ho, co), ar)) in rows.zip(outs) {
            // Each gate in its own vectorisable sweep: sigmoid, but tanh for the cell gate.
            let gates = ar.chunks_exact_mut(h).zip(xr.chunks_exact(h)).zip(hr.chunks_exact(h));
            for (gate, ((a, x), y)) in gates.enumerate() {
                if gate == 2 {
                    a.iter_mut().zip(x).zip(y).for_each(|((a, &x), &y)| *a = (x + y).tanh());
                } else {
                    a.iter_mut().zip(x).zip(y).for_each(|((a, &x), &y)| *a = sigmoid(x + y));
                }
            }
            // Every slice exactly `h` long, so the loop has no bounds checks and vectorises.
            let (i, f, g, o) = (&ar[..h], &ar[h..2 * h], &ar[2 * h..3 * h], &ar[3 * h..4 * h]);
            let (cp, ho, co) = (&cp[..h], &mut ho[..h], &mut co[..h]);
            for k in 0..h {
                let c = f[k] * cp[k] + i[k] * g[k];
                co[k] = c;
                ho[k] = o[k] * c.tanh();
            }
        }
    }
}

/// Gradient of [`lstm_cell_forward`]. Given the activated gates `act`, the previous and new
/// cell states, and the gradients `dh`, `dc` of the new states, writes the gradient of the
/// pre-activations (`d_gates`, `(n, 4h)`; the same for both projections, since they add)
/// and of `c_prev` (`(n, h)`).
///
/// # Panics
/// If a buffer has the wrong length.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_backward<T: Float>(
    act: &[T],
    c_prev: &[T],
    c: &[T],
    dh: &[T],
    dc: &[T],
    n: usize,
    h: usize,
    d_gates: &mut [T],
    d_c_prev: &mut [T],
) {
    const WHAT: &str = "lstm_cell_backward";
    for (name, got, want) in [
        ("act", act.len(), 4 * n * h),
        ("c_prev", c_prev.len(), n * h),
        ("c", c.len(), n * h),
        ("dh", dh.len(), n * h),
        ("dc", dc.len(), n * h),
        ("d_gates", d_gates.len(), 4 * n * h),
        ("d_c_prev", d_c_prev.len(), n * h),
    ] {
        check(WHAT, name, got, want);
    }
    if h == 0 {
        return;
    }
    crate::simd::vectorized(BackwardRows { act, c_prev, c, dh, dc, h, d_gates, d_c_prev });
}

struct BackwardRows<'a, T> {
    act: &'a [T],
    c_prev: &'a [T],
    c: &'a [T],
    dh: &'a [T],
    dc: &'a [T],
    h: usize,
    d_gates: &'a mut [T],
    d_c_prev: &'a mut [T],
}

impl<T: Float> crate::simd::Kernel for BackwardRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let BackwardRows { act, c_prev, c, dh, dc: dc_upstream, h, d_gates, d_c_prev } = self;
        // per-row scratch: tanh(c) and the total gradient of c
        let (mut tc, mut dc) = (vec![T::ZERO; h], vec![T::ZERO; h]);
        let inputs = act
            .chunks_exact(4 * h)
            .zip(c_prev.chunks_exact(h))
            .zip(c.chunks_exact(h))
            .zip(dh.chunks_exact(h).zip(dc_upstream.chunks_exact(h)));
        let outputs = d_gates.chunks_exact_mut(4 * h).zip(d_c_prev.chunks_exact_mut(h));
        for ((((ar, cp), c), (dh, dc_in)), (dg, dcp)) in inputs.zip(outputs) {
            // Every slice exactly `h` long, so the loop has no bounds checks and vectorises.
            let (i, f, g, o) = (&ar[..h], &ar[h..2 * h], &ar[2 * h..3 * h], &ar[3 * h..4 * h]);
            let (cp, c, dh, dc_in) = (&cp[..h], &c[..h], &dh[..h], &dc_in[..h]);
            let (di, rest) = dg.split_at_mut(h);
            let (df, rest) = rest.split_at_mut(h);
            let (dgg, d_o) = rest.split_at_mut(h);
            let (di, df, dgg, d_o, dcp) =
                (&mut di[..h], &mut df[..h], &mut dgg[..h], &mut d_o[..h], &mut dcp[..h]);
            // One output per loop: a loop storing into several slices held in a struct
            // does not vectorise (LLVM cannot rule out their aliasing), one store does.
            let (tc, dc) = (&mut tc[..h], &mut dc[..h]);
            tc.iter_mut().zip(c).for_each(|(t, &c)| *t = c.tanh());
            for k in 0..h {
                dc[k] = dc_in[k] + dh[k] * o[k] * (T::ONE - tc[k] * tc[k]);
            }
            for k in 0..h {
                d_o[k] = dh[k] * tc[k] * o[k] * (T::ONE - o[k]);
            }
            for k in 0..h {
                di[k] = dc[k] * g[k] * i[k] * (T::ONE - i[k]);
            }
            for k in 0..h {
                df[k] = dc[k] * cp[k] * f[k] * (T::ONE - f[k]);
            }
            for k in 0..h {
                dgg[k] = dc[k] * i[k] * (T::ONE - g[k] * g[k]);
            }
            for k in 0..h {
                dcp[k] = dc[k] * f[k];
            }
        }
    }
}

/// Forward of one GRU step for `n` rows of hidden size `h` (PyTorch's `nn.GRU` gate
/// order: reset, update, new):
///
/// ```text
/// r = σ(x_r + h_r),  z = σ(x_z + h_z),  hn = h_n + b_hn,  n = tanh(x_n + r·hn)
/// h' = (1 - z)·n + z·h_prev
/// ```
///
/// where `xg` is the input projection with every bias but `b_hn` folded in and `hg` the
/// recurrent projection `h_prev · W_hhᵀ` without bias (each `(n, 3h)`). Writes `h_out`
/// (`(n, h)`) and `act` (`(n, 4h)`: `r, z, n, hn`, which the backward pass needs).
///
/// # Panics
/// If a buffer has the wrong length.
#[allow(clippy::too_many_arguments)]
pub fn gru_cell_forward<T: Float>(
    xg: &[T],
    hg: &[T],
    b_hn: &[T],
    h_prev: &[T],
    n: usize,
    h: usize,
    h_out: &mut [T],
    act: &mut [T],
) {
    const WHAT: &str = "gru_cell_forward";
    for (name, got, want) in [
        ("xg", xg.len(), 3 * n * h),
        ("hg", hg.len(), 3 * n * h),
        ("b_hn", b_hn.len(), h),
        ("h_prev", h_prev.len(), n * h),
        ("h_out", h_out.len(), n * h),
        ("act", act.len(), 4 * n * h),
    ] {
        check(WHAT, name, got, want);
    }
    if h == 0 {
        return;
    }
    crate::simd::vectorized(GruForwardRows { xg, hg, b_hn, h_prev, h, h_out, act });
}

struct GruForwardRows<'a, T> {
    xg: &'a [T],
    hg: &'a [T],
    b_hn: &'a [T],
    h_prev: &'a [T],
    h: usize,
    h_out: &'a mut [T],
    act: &'a mut [T],
}

impl<T: Float> crate::simd::Kernel for GruForwardRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let GruForwardRows { xg, hg, b_hn, h_prev, h, h_out, act } = self;
        let b_hn = &b_hn[..h];
        let rows = xg.chunks_exact(3 * h).zip(hg.chunks_exact(3 * h)).zip(h_prev.chunks_exact(h));
        for (((xr, hr), hp), (ho, ar)) in rows.zip(h_out.chunks_exact_mut(h).zip(act.chunks_exact_mut(4 * h)))
        {
            let (ra, rest) = ar.split_at_mut(h);
            let (za, rest) = rest.split_at_mut(h);
            let (na, hna) = rest.split_at_mut(h);
            // one output per loop, so each vectorises
            let (xr_, xz, xn) = (&xr[..h], &xr[h..2 * h], &xr[2 * h..3 * h]);
            let (hr_, hz, hn) = (&hr[..h], &hr[h..2 * h], &hr[2 * h..3 * h]);
            ra.iter_mut().zip(xr_).zip(hr_).for_each(|((a, &x), &y)| *a = sigmoid(x + y));
            za.iter_mut().zip(xz).zip(hz).for_each(|((a, &x), &y)| *a = sigmoid(x + y));
            hna.iter_mut().zip(hn).zip(b_hn).for_each(|((a, &x), &b)| *a = x + b);
            na.iter_mut()
                .zip(xn)
                .zip(ra.iter().zip(hna.iter()))
                .for_each(|((a, &x), (&r, &hn))| *a = (x + r * hn).tanh());
            let (za, na, hp, ho) = (&za[..h], &na[..h], &hp[..h], &mut ho[..h]);
            for k in 0..h {
                ho[k] = (T::ONE - za[k]) * na[k] + za[k] * hp[k];
            }
        }
    }
}

/// Gradient of [`gru_cell_forward`]. Given the saved `act` (`r, z, n, hn`), `h_prev` and
/// the gradient `dh` of the new state, writes the gradient of the input projection
/// (`d_x`, `(n, 3h)`), of the recurrent projection with `b_hn` (`d_hg`, `(n, 3h)`: its last
/// third is also `b_hn`'s gradient, row by row) and the part of `h_prev`'s gradient that
/// does not pass through `W_hh` (`dh_prev`, `(n, h)`: `dh·z`).
///
/// # Panics
/// If a buffer has the wrong length.
#[allow(clippy::too_many_arguments)]
pub fn gru_cell_backward<T: Float>(
    act: &[T],
    h_prev: &[T],
    dh: &[T],
    n: usize,
    h: usize,
    d_x: &mut [T],
    d_hg: &mut [T],
    dh_prev: &mut [T],
) {
    const WHAT: &str = "gru_cell_backward";
    for (name, got, want) in [
        ("act", act.len(), 4 * n * h),
        ("h_prev", h_prev.len(), n * h),
        ("dh", dh.len(), n * h),
        ("d_x", d_x.len(), 3 * n * h),
        ("d_hg", d_hg.len(), 3 * n * h),
        ("dh_prev", dh_prev.len(), n * h),
    ] {
        check(WHAT, name, got, want);
    }
    if h == 0 {
        return;
    }
    crate::simd::vectorized(GruBackwardRows { act, h_prev, dh, h, d_x, d_hg, dh_prev });
}

struct GruBackwardRows<'a, T> {
    act: &'a [T],
    h_prev: &'a [T],
    dh: &'a [T],
    h: usize,
    d_x: &'a mut [T],
    d_hg: &'a mut [T],
    dh_prev: &'a mut [T],
}

impl<T: Float> crate::simd::Kernel for GruBackwardRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let GruBackwardRows { act, h_prev, dh, h, d_x, d_hg, dh_prev } = self;
        let inputs = act.chunks_exact(4 * h).zip(h_prev.chunks_exact(h)).zip(dh.chunks_exact(h));
        let outputs =
            d_x.chunks_exact_mut(3 * h).zip(d_hg.chunks_exact_mut(3 * h)).zip(dh_prev.chunks_exact_mut(h));
        for (((ar, hp), dh), ((dx, dhg), dhp)) in inputs.zip(outputs) {
            let (r, z, nn, hn) = (&ar[..h], &ar[h..2 * h], &ar[2 * h..3 * h], &ar[3 * h..4 * h]);
            let (hp, dh) = (&hp[..h], &dh[..h]);
            let (dx_r, rest) = dx.split_at_mut(h);
            let (dx_z, dx_n) = rest.split_at_mut(h);
            let (dhg_r, rest) = dhg.split_at_mut(h);
            let (dhg_z, dhg_n) = rest.split_at_mut(h);
            let (dx_r, dx_z, dx_n) = (&mut dx_r[..h], &mut dx_z[..h], &mut dx_n[..h]);
            let (dhg_r, dhg_z, dhg_n, dhp) =
                (&mut dhg_r[..h], &mut dhg_z[..h], &mut dhg_n[..h], &mut dhp[..h]);
            // dn_pre = dh·(1 - z)·(1 - n²), the new gate's pre-activation gradient
            for k in 0..h {
                dx_n[k] = dh[k] * (T::ONE - z[k]) * (T::ONE - nn[k] * nn[k]);
            }
            for k in 0..h {
                dhg_n[k] = dx_n[k] * r[k];
            }
            for k in 0..h {
                dx_r[k] = dx_n[k] * hn[k] * r[k] * (T::ONE - r[k]);
            }
            for k in 0..h {
                dx_z[k] = dh[k] * (hp[k] - nn[k]) * z[k] * (T::ONE - z[k]);
            }
            dhg_r.copy_from_slice(dx_r);
            dhg_z.copy_from_slice(dx_z);
            for k in 0..h {
                dhp[k] = dh[k] * z[k];
            }
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
        let (mut hs, mut cs, mut act) = (vec![0.0; n * h], vec![0.0; n * h], vec![0.0; 4 * n * h]);
        lstm_cell_forward(&xg, &hg, &cp, n, h, &mut hs, &mut cs, &mut act);
        let want = reference(&xg, &hg, &cp, n, h);
        for r in 0..n {
            for k in 0..h {
                let (wh, wc) = (want[r * 2 * h + k], want[r * 2 * h + h + k]);
                assert!((hs[r * h + k] - wh).abs() < 1e-14, "h: {} vs {wh}", hs[r * h + k]);
                assert!((cs[r * h + k] - wc).abs() < 1e-14, "c: {} vs {wc}", cs[r * h + k]);
            }
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
        let (mut hs, mut cs, mut act) = (vec![0.0; n * h], vec![0.0; n * h], vec![0.0; 4 * n * h]);
        lstm_cell_forward(&xg, &hg, &cp, n, h, &mut hs, &mut cs, &mut act);
        // the reference interleaves h and c per row; split the upstream gradient the same way
        let dh: Vec<f64> = (0..n).flat_map(|r| dhc[r * 2 * h..r * 2 * h + h].to_vec()).collect();
        let dc: Vec<f64> = (0..n).flat_map(|r| dhc[r * 2 * h + h..(r + 1) * 2 * h].to_vec()).collect();
        let (mut dg, mut dcp) = (vec![0.0; 4 * n * h], vec![0.0; n * h]);
        lstm_cell_backward(&act, &cp, &cs, &dh, &dc, n, h, &mut dg, &mut dcp);
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
        let (mut hs, mut cs, mut act) = (vec![0.0; 6], vec![0.0; 6], vec![0.0; 24]);
        lstm_cell_forward(&[0.0f64; 24], &[0.0; 24], &[0.0; 5], 2, 3, &mut hs, &mut cs, &mut act);
    }
}
