//! 2-D convolution on contiguous NCHW buffers, with PyTorch's semantics
//! (`torch.nn.functional.conv2d` / `conv_transpose2d`).
//!
//! Every product goes through faer's GEMM: per batch item and group the input is unfolded
//! into a column matrix of `(C/g·kH·kW) × (Ho·Wo)` (im2col), multiplied by the weight
//! `(O/g) × (C/g·kH·kW)`, and the input gradient folds `Wᵀ·dy` back (col2im). A 1×1
//! stride-1 unpadded convolution skips the unfolding: the input plane already is the column
//! matrix. A 1-D convolution is the 2-D one with `in_h = 1` and `kernel[0] = 1`.
//!
//! Large problems run over the batch on sinew's thread pool, each task with its own column
//! buffer and sequential GEMMs. The weight gradient sums over the batch in chunks whose
//! boundaries depend only on the geometry, and adds the chunk sums in a fixed order, so its
//! result does not depend on the number of threads.
//!
//! A geometry is checked once: [`Conv2dGeometry::validate`] and
//! [`ConvTranspose2dGeometry::validate`] run the checks and derive the kernels' plan, and
//! the [`Checked`] value they return is what the tensor ops hand to the kernels, which then
//! only compare buffer lengths.

use crate::dtype::Float;
use crate::kernels::gemm::{Strided, gemm, split_for};
use faer::Par;
use rayon::prelude::*;
use std::ops::Range;

/// Multiply-adds (over the whole batch) from which a convolution is spread over threads,
/// one batch item (or chunk of items) per task. Below it a task costs more to wake than
/// it saves.
pub const PARALLEL_CONV_WORK: usize = 1 << 20;

/// Multiply-adds each weight-gradient chunk aims at (whole batch items per chunk).
const WEIGHT_GRAD_CHUNK_WORK: usize = 1 << 19;

/// Most chunks the weight gradient is split into (each holds a partial weight gradient).
const MAX_WEIGHT_GRAD_CHUNKS: usize = 32;

/// Elements all partial weight gradients may occupy together; a weight too large for two
/// partials is computed in one chunk with faer's parallel GEMM instead.
const WEIGHT_GRAD_PARTIALS_BUDGET: usize = 1 << 22;

/// Output length of a convolution along one axis: `(in + 2p − d(k−1) − 1)/s + 1`, or 0
/// when the dilated kernel does not fit in the padded input (or a parameter is zero).
/// Computed in 128 bits, so no argument overflows it; a length past `usize` saturates (and
/// fails [`Conv2dGeometry::check`]'s size check).
fn conv_out_len(input: usize, k: usize, s: usize, p: usize, d: usize) -> usize {
    let padded = input as u128 + 2 * p as u128;
    let eff = d as u128 * k.saturating_sub(1) as u128 + 1;
    if s == 0 || k == 0 || d == 0 || padded < eff { 0 } else { saturate((padded - eff) / s as u128 + 1) }
}

fn saturate(n: u128) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Checks that every buffer a convolution touches has a shape sinew can hold
/// ([`MAX_EXTENT`](crate::shape::MAX_EXTENT)), so that no product of sizes in the kernels
/// overflows and nothing is allocated before the sizes are known to be sound.
fn check_extents(buffers: &[(&str, &[usize])]) -> Result<(), String> {
    for (name, shape) in buffers {
        if crate::shape::checked_numel(shape).is_none() {
            return Err(format!("the {name} would have shape {shape:?}, more than 2^60 elements"));
        }
    }
    Ok(())
}

/// The shape parameters of a 2-D convolution: input `(batch, in_channels, in_h, in_w)`,
/// weight `(out_channels, in_channels/groups, kernel[0], kernel[1])`, output
/// `(batch, out_channels, out_h(), out_w())`. Pairs are `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Batch size `N` (may be 0).
    pub batch: usize,
    /// Input channels `C`.
    pub in_channels: usize,
    /// Input height `H`.
    pub in_h: usize,
    /// Input width `W`.
    pub in_w: usize,
    /// Output channels `O`.
    pub out_channels: usize,
    /// Kernel size `[kH, kW]`.
    pub kernel: [usize; 2],
    /// Stride `[sH, sW]`.
    pub stride: [usize; 2],
    /// Zero padding on each side `[pH, pW]`.
    pub padding: [usize; 2],
    /// Kernel dilation `[dH, dW]`.
    pub dilation: [usize; 2],
    /// Number of groups `g`: both channel counts must be multiples of it.
    pub groups: usize,
}

impl Conv2dGeometry {
    /// Output height, `(H + 2pH − dH(kH−1) − 1)/sH + 1` (0 if the geometry is invalid).
    pub fn out_h(&self) -> usize {
        conv_out_len(self.in_h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0])
    }

    /// Output width, `(W + 2pW − dW(kW−1) − 1)/sW + 1` (0 if the geometry is invalid).
    pub fn out_w(&self) -> usize {
        conv_out_len(self.in_w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1])
    }

    /// Number of input elements, `N·C·H·W`.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_h * self.in_w
    }

    /// Number of weight elements, `O·(C/g)·kH·kW`.
    pub fn weight_len(&self) -> usize {
        self.out_channels * (self.in_channels / self.groups.max(1)) * self.kernel[0] * self.kernel[1]
    }

    /// Number of output elements, `N·O·Ho·Wo`.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_h() * self.out_w()
    }

    /// Checks that the geometry describes a valid convolution, saying what is wrong if not.
    pub fn check(&self) -> Result<(), String> {
        #[cfg(test)]
        tests::count_check();
        check_common(
            self.in_channels,
            self.out_channels,
            [self.in_h, self.in_w],
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )?;
        for (axis, name) in ["height", "width"].iter().enumerate() {
            let padded = [self.in_h, self.in_w][axis] as u128 + 2 * self.padding[axis] as u128;
            let eff = self.dilation[axis] as u128 * (self.kernel[axis] - 1) as u128 + 1;
            if padded < eff {
                return Err(format!(
                    "dilated kernel {name} {eff} (kernel {}, dilation {}) is larger than the padded input \
                     {name} {padded} (input {}, padding {})",
                    self.kernel[axis],
                    self.dilation[axis],
                    [self.in_h, self.in_w][axis],
                    self.padding[axis]
                ));
            }
        }
        let (oh, ow) = (self.out_h(), self.out_w());
        let cg = self.in_channels / self.groups;
        check_extents(&[
            ("input", &[self.batch, self.in_channels, self.in_h, self.in_w]),
            ("weight", &[self.out_channels, cg, self.kernel[0], self.kernel[1]]),
            ("output", &[self.batch, self.out_channels, oh, ow]),
            ("column matrix", &[cg, self.kernel[0], self.kernel[1], oh, ow]),
        ])
    }

    /// Runs [`check`](Self::check) and derives the kernels' plan: the one validation a
    /// convolution's geometry goes through.
    pub fn validate(&self) -> Result<Checked<Self>, String> {
        self.check()?;
        Ok(Checked { geometry: *self, plan: Plan::new(self, self.out_h(), self.out_w()) })
    }
}

/// A geometry that passed its checks, with the plan the kernels run derived from it once.
/// Only [`Conv2dGeometry::validate`] and [`ConvTranspose2dGeometry::validate`] make one, so
/// holding one proves the checks ran; it dereferences to the geometry.
#[derive(Clone, Copy, Debug)]
pub struct Checked<G> {
    geometry: G,
    plan: Plan,
}

impl<G> std::ops::Deref for Checked<G> {
    type Target = G;
    fn deref(&self) -> &G {
        &self.geometry
    }
}

/// The geometry argument of a kernel: a [`Checked`] geometry is used as it is; a bare one is
/// validated on entry, a failed check panicking with the kernel's name (the tensor ops pass
/// the former, the kernels' own tests the latter).
pub trait KernelGeometry<G> {
    /// The checked geometry (`what` names the kernel in the panic message).
    fn checked(&self, what: &str) -> Checked<G>;
}

impl<G: Copy> KernelGeometry<G> for Checked<G> {
    fn checked(&self, _: &str) -> Checked<G> {
        *self
    }
}

impl KernelGeometry<Conv2dGeometry> for Conv2dGeometry {
    fn checked(&self, what: &str) -> Checked<Conv2dGeometry> {
        self.validate().unwrap_or_else(|e| panic!("{what}: invalid geometry: {e}"))
    }
}

/// Checks shared by convolution and transposed convolution.
fn check_common(
    in_channels: usize,
    out_channels: usize,
    spatial: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Result<(), String> {
    if stride.contains(&0) {
        return Err(format!("stride must be positive, got {stride:?}"));
    }
    if dilation.contains(&0) {
        return Err(format!("dilation must be positive, got {dilation:?}"));
    }
    if kernel.contains(&0) {
        return Err(format!("kernel size must be positive, got {kernel:?}"));
    }
    if groups == 0 {
        return Err("groups must be positive".to_string());
    }
    if in_channels == 0 || out_channels == 0 {
        return Err(format!(
            "channel counts must be positive, got in_channels {in_channels}, out_channels {out_channels}"
        ));
    }
    if !in_channels.is_multiple_of(groups) {
        return Err(format!("in_channels ({in_channels}) must be divisible by groups ({groups})"));
    }
    if !out_channels.is_multiple_of(groups) {
        return Err(format!("out_channels ({out_channels}) must be divisible by groups ({groups})"));
    }
    if spatial.contains(&0) {
        return Err(format!("input spatial size must be positive, got {spatial:?}"));
    }
    // Bounds that keep every window offset in the kernels (`k·d − p`, `o·s + off`) inside
    // `isize`, once the output sizes are checked too.
    let max = crate::shape::MAX_EXTENT;
    for (name, v) in
        [("padding", padding), ("stride", stride), ("dilation", dilation), ("kernel size", kernel)]
    {
        if v.iter().any(|&x| x > max) {
            return Err(format!("{name} {v:?} is larger than 2^60"));
        }
    }
    if (0..2).any(|a| dilation[a] as u128 * (kernel[a] as u128 - 1) + 1 > max as u128) {
        return Err(format!("dilated kernel (kernel {kernel:?}, dilation {dilation:?}) is larger than 2^60"));
    }
    Ok(())
}

/// Everything a kernel needs, derived once from a convolution geometry. The output size is
/// explicit: the transposed convolution with `output_padding ≥ stride` uses a convolution
/// whose natural output is larger than the buffer it works on (the rest is zero).
#[derive(Clone, Copy, Debug)]
struct Plan {
    batch: usize,
    h: usize,
    w: usize,
    o: usize,
    c: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    dh: usize,
    dw: usize,
    groups: usize,
    oh: usize,
    ow: usize,
    cg: usize,
    og: usize,
    /// `C/g·kH·kW`: rows of the column matrix.
    ckk: usize,
    /// `Ho·Wo`: columns of the column matrix.
    ohw: usize,
    hw: usize,
    /// 1×1, stride 1, no padding, output the size of the input: no im2col needed.
    pointwise: bool,
}

impl Plan {
    fn new(g: &Conv2dGeometry, oh: usize, ow: usize) -> Plan {
        let [kh, kw] = g.kernel;
        let cg = g.in_channels / g.groups;
        let pointwise =
            kh == 1 && kw == 1 && g.stride == [1, 1] && g.padding == [0, 0] && oh == g.in_h && ow == g.in_w;
        Plan {
            batch: g.batch,
            h: g.in_h,
            w: g.in_w,
            o: g.out_channels,
            c: g.in_channels,
            kh,
            kw,
            sh: g.stride[0],
            sw: g.stride[1],
            ph: g.padding[0],
            pw: g.padding[1],
            dh: g.dilation[0],
            dw: g.dilation[1],
            groups: g.groups,
            oh,
            ow,
            cg,
            og: g.out_channels / g.groups,
            ckk: cg * kh * kw,
            ohw: oh * ow,
            hw: g.in_h * g.in_w,
            pointwise,
        }
    }

    fn x_item(&self) -> usize {
        self.c * self.hw
    }

    fn y_item(&self) -> usize {
        self.o * self.ohw
    }

    fn w_len(&self) -> usize {
        self.o * self.ckk
    }

    /// Multiply-adds of one batch item (all groups).
    fn item_work(&self) -> usize {
        self.o * self.ckk * self.ohw
    }

    /// Stride 1 along both axes and output rows as wide as the input's (a "same"
    /// convolution, or any whose padding makes up for the kernel's width): then one
    /// kernel offset's column-matrix row is a shifted copy of the input plane, fixed up at
    /// the edges (see [`unfold_shifted`]).
    fn same_rows(&self) -> bool {
        self.sh == 1 && self.sw == 1 && self.ow == self.w
    }

    /// Whether to spread the batch over threads.
    fn parallel(&self) -> bool {
        self.batch > 1
            && crate::parallel::num_threads() > 1
            && self.batch.saturating_mul(self.item_work()) >= PARALLEL_CONV_WORK
    }
}

/// Output indices `o < out_len` whose input position `o·s + off` lies in `[0, in_len)`,
/// as a range `lo..hi`.
fn valid_range(off: isize, s: usize, in_len: usize, out_len: usize) -> (usize, usize) {
    let lo = if off >= 0 { 0 } else { (off.unsigned_abs()).div_ceil(s) };
    let room = in_len as isize - off;
    let hi = if room <= 0 { 0 } else { ((room - 1) as usize / s + 1).min(out_len) };
    (lo.min(hi), hi)
}

/// Unfolds one group of one batch item (`C/g` planes of `H×W`) into the column matrix
/// `(C/g·kH·kW) × (Ho·Wo)`, row-major, zeros where the kernel reads padding.
fn im2col<T: Float>(p: &Plan, xg: &[T], col: &mut Vec<T>) {
    col.resize(p.ckk * p.ohw, T::ZERO);
    let mut rows = col.chunks_exact_mut(p.ohw);
    for plane in xg.chunks_exact(p.hw).take(p.cg) {
        for ki in 0..p.kh {
            let off_h = (ki * p.dh) as isize - p.ph as isize;
            let (lo_h, hi_h) = valid_range(off_h, p.sh, p.h, p.oh);
            for kj in 0..p.kw {
                let off_w = (kj * p.dw) as isize - p.pw as isize;
                let (lo_w, hi_w) = valid_range(off_w, p.sw, p.w, p.ow);
                let row = rows.next().expect("im2col: column matrix too small");
                if p.same_rows() {
                    unfold_shifted(p, plane, row, (off_h, lo_h, hi_h), (off_w, lo_w, hi_w));
                    continue;
                }
                for (oy, dst) in row.chunks_exact_mut(p.ow).enumerate() {
                    if oy < lo_h || oy >= hi_h {
                        dst.fill(T::ZERO);
                        continue;
                    }
                    let iy = ((oy * p.sh) as isize + off_h) as usize;
                    let src = &plane[iy * p.w..(iy + 1) * p.w];
                    dst[..lo_w].fill(T::ZERO);
                    dst[hi_w..].fill(T::ZERO);
                    if p.sw == 1 && hi_w > lo_w {
                        let ix0 = (lo_w as isize + off_w) as usize;
                        dst[lo_w..hi_w].copy_from_slice(&src[ix0..ix0 + (hi_w - lo_w)]);
                    } else {
                        for ox in lo_w..hi_w {
                            dst[ox] = src[((ox * p.sw) as isize + off_w) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// The stretch of one kernel offset's column-matrix row that reads the input, when
/// [`Plan::same_rows`] holds: element `(oy, ox)` reads the input at
/// `(oy + off_h, ox + off_w)`, so the valid rows `lo_h..hi_h` read one contiguous stretch
/// of the input plane, shifted by `off_h·W + off_w`. Returns the stretch's range in the
/// row (from `(lo_h, lo_w)` to `(hi_h − 1, hi_w)`) and where it starts in the plane; its
/// positions outside `lo_w..hi_w` wrapped to a neighbouring input row (see
/// [`zero_wrapped`]). `None` when the kernel offset reads only padding.
fn shifted_stretch(
    p: &Plan,
    (off_h, lo_h, hi_h): (isize, usize, usize),
    (off_w, lo_w, hi_w): (isize, usize, usize),
) -> Option<(std::ops::Range<usize>, usize)> {
    if lo_h >= hi_h || lo_w >= hi_w {
        return None;
    }
    let start = lo_h * p.ow + lo_w;
    let end = (hi_h - 1) * p.ow + hi_w;
    let src_start = (start as isize + off_h * p.w as isize + off_w) as usize;
    Some((start..end, src_start))
}

/// [`im2col`] of one kernel offset for a stride-1 convolution whose output rows are as
/// wide as the input's: one copy of the shifted plane, then zeros at the padding and at
/// the positions that wrapped to a neighbouring input row (a few per output row), instead
/// of a copy per output row.
fn unfold_shifted<T: Float>(
    p: &Plan,
    plane: &[T],
    row: &mut [T],
    rows: (isize, usize, usize),
    cols: (isize, usize, usize),
) {
    let Some((stretch, src_start)) = shifted_stretch(p, rows, cols) else {
        row.fill(T::ZERO);
        return;
    };
    let (lo_w, hi_w) = (cols.1, cols.2);
    row[..stretch.start].fill(T::ZERO);
    row[stretch.end..].fill(T::ZERO);
    row[stretch.clone()].copy_from_slice(&plane[src_start..src_start + stretch.len()]);
    zero_wrapped(p, row, stretch, hi_w - lo_w);
}

/// Zeroes the positions of `row[stretch]` that wrapped to a neighbouring input row: the
/// stretch starts at `lo_w` of an output row, so of each `Wo` elements the first `valid`
/// (`hi_w − lo_w`) are that row's and the rest, up to the next row's `lo_w`, wrapped. They
/// are one or two per row for a 3×3 or 5×5 kernel, written directly (a `fill` of that
/// length is a `memset` call per row).
fn zero_wrapped<T: Float>(p: &Plan, row: &mut [T], stretch: std::ops::Range<usize>, valid: usize) {
    let wrap = p.ow - valid;
    if wrap == 0 {
        return;
    }
    let mut q = stretch.start + valid;
    while q < stretch.end {
        match &mut row[q..q + wrap] {
            [a] => *a = T::ZERO,
            [a, b] => (*a, *b) = (T::ZERO, T::ZERO),
            few => few.fill(T::ZERO),
        }
        q += p.ow;
    }
}

/// Folds a column matrix back onto one group's input planes, adding (the adjoint of
/// [`im2col`]). With [`Plan::same_rows`] each kernel offset's rows are added as one
/// shifted stretch (see [`fold_shifted`], which clobbers `col`).
fn col2im<T: Float>(p: &Plan, col: &mut [T], dxg: &mut [T]) {
    let mut rows = col.chunks_exact_mut(p.ohw);
    for plane in dxg.chunks_exact_mut(p.hw).take(p.cg) {
        for ki in 0..p.kh {
            let off_h = (ki * p.dh) as isize - p.ph as isize;
            let (lo_h, hi_h) = valid_range(off_h, p.sh, p.h, p.oh);
            for kj in 0..p.kw {
                let off_w = (kj * p.dw) as isize - p.pw as isize;
                let (lo_w, hi_w) = valid_range(off_w, p.sw, p.w, p.ow);
                let row = rows.next().expect("col2im: column matrix too small");
                if p.same_rows() {
                    fold_shifted(p, plane, row, (off_h, lo_h, hi_h), (off_w, lo_w, hi_w));
                    continue;
                }
                for oy in lo_h..hi_h {
                    let iy = ((oy * p.sh) as isize + off_h) as usize;
                    let dst = &mut plane[iy * p.w..(iy + 1) * p.w];
                    let src = &row[oy * p.ow..(oy + 1) * p.ow];
                    if p.sw == 1 && hi_w > lo_w {
                        let ix0 = (lo_w as isize + off_w) as usize;
                        for (d, s) in dst[ix0..ix0 + (hi_w - lo_w)].iter_mut().zip(&src[lo_w..hi_w]) {
                            *d += *s;
                        }
                    } else {
                        for ox in lo_w..hi_w {
                            dst[((ox * p.sw) as isize + off_w) as usize] += src[ox];
                        }
                    }
                }
            }
        }
    }
}

/// [`col2im`] of one kernel offset when [`Plan::same_rows`] holds, the adjoint of
/// [`unfold_shifted`]: zeroes the row's positions that wrapped to a neighbouring input
/// row, then adds the shifted stretch onto the plane in one vectorised pass.
fn fold_shifted<T: Float>(
    p: &Plan,
    plane: &mut [T],
    row: &mut [T],
    rows: (isize, usize, usize),
    cols: (isize, usize, usize),
) {
    let Some((stretch, dst_start)) = shifted_stretch(p, rows, cols) else {
        return;
    };
    zero_wrapped(p, row, stretch.clone(), cols.2 - cols.1);
    let src = &row[stretch];
    let dst = &mut plane[dst_start..dst_start + src.len()];
    crate::simd::vectorized(|| {
        for (d, s) in dst.iter_mut().zip(src.iter()) {
            *d += *s;
        }
    });
}

/// Runs `f(item, out_chunk, column_buffer)` for every batch item, `out` being split into
/// `out_item`-sized chunks: over threads when `parallel` (each task with its own column
/// buffer), else in order with one buffer.
fn for_each_item<T, F>(out: &mut [T], out_item: usize, parallel: bool, f: F)
where
    T: Float,
    F: Fn(usize, &mut [T], &mut Vec<T>) + Sync + Send,
{
    if out_item == 0 {
        return;
    }
    if parallel {
        crate::parallel::install(|| {
            out.par_chunks_mut(out_item)
                .enumerate()
                .for_each_init(Vec::new, |col, (i, chunk)| f(i, chunk, col))
        });
    } else {
        let mut col = Vec::new();
        for (i, chunk) in out.chunks_mut(out_item).enumerate() {
            f(i, chunk, &mut col);
        }
    }
}

/// Forward convolution with an explicit output size (≤ the natural one).
fn forward_impl<T: Float>(x: &[T], w: &[T], bias: Option<&[T]>, p: &Plan, allow_parallel: bool) -> Vec<T> {
    let (x_item, y_item) = (p.x_item(), p.y_item());
    // Every element is written below: a bias row fill then an accumulating product, or a
    // product that replaces its output (the geometry check makes `ckk` at least 1).
    let mut y = crate::buffer::scratch(p.batch * y_item);
    let parallel = allow_parallel && p.parallel();
    let par = if parallel { Par::Seq } else { split_for(p.og, p.ohw, p.ckk) };
    for_each_item(&mut y, y_item, parallel, |i, yi, col| {
        let xi = &x[i * x_item..(i + 1) * x_item];
        for gi in 0..p.groups {
            let wg = &w[gi * p.og * p.ckk..(gi + 1) * p.og * p.ckk];
            let yg = &mut yi[gi * p.og * p.ohw..(gi + 1) * p.og * p.ohw];
            if let Some(b) = bias {
                for (row, &bv) in yg.chunks_exact_mut(p.ohw).zip(&b[gi * p.og..(gi + 1) * p.og]) {
                    row.fill(bv);
                }
            }
            let xg = &xi[gi * p.cg * p.hw..(gi + 1) * p.cg * p.hw];
            if !p.pointwise {
                im2col(p, xg, col);
            }
            let cols: &[T] = if p.pointwise { xg } else { col };
            gemm(
                yg,
                Strided::row_major(p.og, p.ohw),
                wg,
                Strided::row_major(p.og, p.ckk),
                cols,
                Strided::row_major(p.ckk, p.ohw),
                bias.is_some(),
                par,
            );
        }
    });
    y
}

/// Input gradient (`col2im(Wᵀ·dy)`) with an explicit output size.
fn input_grad_impl<T: Float>(dy: &[T], w: &[T], p: &Plan, allow_parallel: bool) -> Vec<T> {
    let (x_item, y_item) = (p.x_item(), p.y_item());
    let mut dx = crate::buffer::filled(p.batch * x_item, T::ZERO);
    let parallel = allow_parallel && p.parallel();
    let par = if parallel { Par::Seq } else { split_for(p.ckk, p.ohw, p.og) };
    for_each_item(&mut dx, x_item, parallel, |i, dxi, col| {
        let dyi = &dy[i * y_item..(i + 1) * y_item];
        for gi in 0..p.groups {
            let wg = &w[gi * p.og * p.ckk..(gi + 1) * p.og * p.ckk];
            let wt = Strided::row_major(p.og, p.ckk).t();
            let dyg = &dyi[gi * p.og * p.ohw..(gi + 1) * p.og * p.ohw];
            let dy_view = Strided::row_major(p.og, p.ohw);
            let dxg = &mut dxi[gi * p.cg * p.hw..(gi + 1) * p.cg * p.hw];
            if p.pointwise {
                gemm(dxg, Strided::row_major(p.cg, p.hw), wg, wt, dyg, dy_view, false, par);
            } else {
                col.resize(p.ckk * p.ohw, T::ZERO);
                gemm(col, Strided::row_major(p.ckk, p.ohw), wg, wt, dyg, dy_view, false, par);
                col2im(p, col, dxg);
            }
        }
    });
    dx
}

/// Batch items per weight-gradient chunk: enough work per chunk to be worth a task, at
/// most [`MAX_WEIGHT_GRAD_CHUNKS`] chunks and [`WEIGHT_GRAD_PARTIALS_BUDGET`] elements of
/// partial sums. Depends on the geometry only, never on the thread count.
fn weight_grad_chunk_items(p: &Plan) -> usize {
    let max_chunks = (WEIGHT_GRAD_PARTIALS_BUDGET / p.w_len().max(1)).clamp(1, MAX_WEIGHT_GRAD_CHUNKS);
    let per = WEIGHT_GRAD_CHUNK_WORK.div_ceil(p.item_work().max(1)).max(1);
    per.max(p.batch.div_ceil(max_chunks)).min(p.batch.max(1))
}

/// Weight gradient summed over the batch items `items`, written into `out` (`O × C/g·kH·kW`).
fn weight_grad_chunk<T: Float>(
    p: &Plan,
    x: &[T],
    dy: &[T],
    items: Range<usize>,
    out: &mut [T],
    col: &mut Vec<T>,
    par: Par,
) {
    let (x_item, y_item) = (p.x_item(), p.y_item());
    for (k, i) in items.enumerate() {
        for gi in 0..p.groups {
            let xg = &x[i * x_item + gi * p.cg * p.hw..i * x_item + (gi + 1) * p.cg * p.hw];
            let dyg = &dy[i * y_item + gi * p.og * p.ohw..i * y_item + (gi + 1) * p.og * p.ohw];
            if !p.pointwise {
                im2col(p, xg, col);
            }
            let cols: &[T] = if p.pointwise { xg } else { col };
            gemm(
                &mut out[gi * p.og * p.ckk..(gi + 1) * p.og * p.ckk],
                Strided::row_major(p.og, p.ckk),
                dyg,
                Strided::row_major(p.og, p.ohw),
                cols,
                Strided::row_major(p.ckk, p.ohw).t(),
                k > 0,
                par,
            );
        }
    }
}

/// Weight gradient `Σₙ dyₙ·colₙᵀ`, deterministic: fixed chunks, combined in order.
fn weight_grad_impl<T: Float>(x: &[T], dy: &[T], p: &Plan, allow_parallel: bool) -> Vec<T> {
    let w_len = p.w_len();
    let mut dw = crate::buffer::filled(w_len, T::ZERO);
    if p.batch == 0 || w_len == 0 {
        return dw;
    }
    let per = weight_grad_chunk_items(p);
    let chunks = p.batch.div_ceil(per);
    if chunks == 1 {
        let mut col = Vec::new();
        weight_grad_chunk(p, x, dy, 0..p.batch, &mut dw, &mut col, split_for(p.og, p.ckk, p.ohw));
        return dw;
    }
    let mut partials = crate::buffer::filled(chunks * w_len, T::ZERO);
    let parallel = allow_parallel && p.parallel();
    for_each_item(&mut partials, w_len, parallel, |ci, out, col| {
        let items = ci * per..((ci + 1) * per).min(p.batch);
        weight_grad_chunk(p, x, dy, items, out, col, Par::Seq);
    });
    let mut parts = partials.chunks_exact(w_len);
    dw.copy_from_slice(parts.next().expect("at least two chunks"));
    for part in parts {
        for (a, &b) in dw.iter_mut().zip(part) {
            *a += b;
        }
    }
    dw
}

fn check_len(what: &str, name: &str, got: usize, want: usize) {
    assert!(got == want, "{what}: {name} has {got} elements, the geometry needs {want}");
}

/// `y = conv2d(x, w) (+ bias)`, PyTorch's `F.conv2d`: `x` is `(N, C, H, W)`, `w` is
/// `(O, C/g, kH, kW)`, `bias` is `(O)`; returns the `(N, O, Ho, Wo)` output.
///
/// # Panics
/// If the geometry is invalid ([`Conv2dGeometry::check`]) or a buffer has the wrong length.
pub fn conv2d_forward<T: Float>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &impl KernelGeometry<Conv2dGeometry>,
) -> Vec<T> {
    let g = g.checked("conv2d_forward");
    check_len("conv2d_forward", "input", x.len(), g.input_len());
    check_len("conv2d_forward", "weight", w.len(), g.weight_len());
    if let Some(b) = bias {
        check_len("conv2d_forward", "bias", b.len(), g.out_channels);
    }
    forward_impl(x, w, bias, &g.plan, true)
}

/// `dL/dx` of [`conv2d_forward`] given `dy = dL/dy` `(N, O, Ho, Wo)`: the transposed
/// convolution `col2im(Wᵀ·dy)`; returns `(N, C, H, W)`.
///
/// # Panics
/// If the geometry is invalid or a buffer has the wrong length.
pub fn conv2d_input_grad<T: Float>(dy: &[T], w: &[T], g: &impl KernelGeometry<Conv2dGeometry>) -> Vec<T> {
    let g = g.checked("conv2d_input_grad");
    check_len("conv2d_input_grad", "output gradient", dy.len(), g.output_len());
    check_len("conv2d_input_grad", "weight", w.len(), g.weight_len());
    input_grad_impl(dy, w, &g.plan, true)
}

/// `dL/dw` of [`conv2d_forward`] given the input `x` and `dy = dL/dy`; returns
/// `(O, C/g, kH, kW)`. Deterministic: the batch is summed in chunks fixed by the geometry.
///
/// # Panics
/// If the geometry is invalid or a buffer has the wrong length.
pub fn conv2d_weight_grad<T: Float>(x: &[T], dy: &[T], g: &impl KernelGeometry<Conv2dGeometry>) -> Vec<T> {
    let g = g.checked("conv2d_weight_grad");
    check_len("conv2d_weight_grad", "input", x.len(), g.input_len());
    check_len("conv2d_weight_grad", "output gradient", dy.len(), g.output_len());
    weight_grad_impl(x, dy, &g.plan, true)
}

/// Output length of a transposed convolution along one axis:
/// `(in − 1)s − 2p + d(k − 1) + output_padding + 1`, or 0 if that is not positive.
fn transpose_out_len(input: usize, k: usize, s: usize, p: usize, op: usize, d: usize) -> usize {
    if input == 0 || k == 0 {
        return 0;
    }
    // in 128 bits every term is exact (each product is below 2^128 and their sum, for
    // sizes that pass the checks, far below); saturating where a hostile one is not
    let full = ((input as u128 - 1) * s as u128)
        .saturating_add(d as u128 * (k as u128 - 1))
        .saturating_add(op as u128 + 1);
    saturate(full.saturating_sub(2 * p as u128))
}

/// The shape parameters of a 2-D transposed convolution (PyTorch's `conv_transpose2d`):
/// input `(batch, in_channels, in_h, in_w)`, weight
/// `(in_channels, out_channels/groups, kernel[0], kernel[1])`, output
/// `(batch, out_channels, out_h(), out_w())`. Pairs are `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dGeometry {
    /// Batch size `N` (may be 0).
    pub batch: usize,
    /// Input channels `C_in`.
    pub in_channels: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels `C_out`.
    pub out_channels: usize,
    /// Kernel size `[kH, kW]`.
    pub kernel: [usize; 2],
    /// Stride `[sH, sW]`.
    pub stride: [usize; 2],
    /// Padding `[pH, pW]` (removed from each side of the full output).
    pub padding: [usize; 2],
    /// Extra size added to one side of the output `[opH, opW]`; each must be smaller than
    /// the stride or the dilation on its axis.
    pub output_padding: [usize; 2],
    /// Kernel dilation `[dH, dW]`.
    pub dilation: [usize; 2],
    /// Number of groups: both channel counts must be multiples of it.
    pub groups: usize,
}

impl ConvTranspose2dGeometry {
    /// Output height, `(H − 1)sH − 2pH + dH(kH − 1) + opH + 1` (0 if not positive).
    pub fn out_h(&self) -> usize {
        transpose_out_len(
            self.in_h,
            self.kernel[0],
            self.stride[0],
            self.padding[0],
            self.output_padding[0],
            self.dilation[0],
        )
    }

    /// Output width, `(W − 1)sW − 2pW + dW(kW − 1) + opW + 1` (0 if not positive).
    pub fn out_w(&self) -> usize {
        transpose_out_len(
            self.in_w,
            self.kernel[1],
            self.stride[1],
            self.padding[1],
            self.output_padding[1],
            self.dilation[1],
        )
    }

    /// Number of input elements, `N·C_in·H·W`.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_h * self.in_w
    }

    /// Number of weight elements, `C_in·(C_out/g)·kH·kW`.
    pub fn weight_len(&self) -> usize {
        self.in_channels * (self.out_channels / self.groups.max(1)) * self.kernel[0] * self.kernel[1]
    }

    /// Number of output elements, `N·C_out·Ho·Wo`.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_h() * self.out_w()
    }

    /// Checks that the geometry describes a valid transposed convolution, saying what is
    /// wrong if not.
    pub fn check(&self) -> Result<(), String> {
        #[cfg(test)]
        tests::count_check();
        check_common(
            self.in_channels,
            self.out_channels,
            [self.in_h, self.in_w],
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )?;
        for axis in 0..2 {
            let op = self.output_padding[axis];
            if op >= self.stride[axis] && op >= self.dilation[axis] {
                return Err(format!(
                    "output padding must be smaller than either stride or dilation, got output_padding {:?}, \
                     stride {:?}, dilation {:?}",
                    self.output_padding, self.stride, self.dilation
                ));
            }
        }
        if self.out_h() == 0 || self.out_w() == 0 {
            return Err(format!(
                "output size is not positive: input {}x{}, kernel {:?}, stride {:?}, padding {:?}, \
                 output_padding {:?}, dilation {:?}",
                self.in_h,
                self.in_w,
                self.kernel,
                self.stride,
                self.padding,
                self.output_padding,
                self.dilation
            ));
        }
        let (oh, ow) = (self.out_h(), self.out_w());
        let ocg = self.out_channels / self.groups;
        check_extents(&[
            ("input", &[self.batch, self.in_channels, self.in_h, self.in_w]),
            ("weight", &[self.in_channels, ocg, self.kernel[0], self.kernel[1]]),
            ("output", &[self.batch, self.out_channels, oh, ow]),
            ("column matrix", &[ocg, self.kernel[0], self.kernel[1], self.in_h, self.in_w]),
        ])
    }

    /// Runs [`check`](Self::check) and derives the kernels' plan: that of the convolution
    /// whose input gradient this transposed convolution is (its input is our output, its
    /// output, cropped to our input's size, is our input). A valid transposed geometry makes
    /// a valid convolution, so that one is not checked again.
    pub fn validate(&self) -> Result<Checked<Self>, String> {
        self.check()?;
        let conv = Conv2dGeometry {
            batch: self.batch,
            in_channels: self.out_channels,
            in_h: self.out_h(),
            in_w: self.out_w(),
            out_channels: self.in_channels,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        };
        debug_assert!(conv.out_h() >= self.in_h && conv.out_w() >= self.in_w);
        Ok(Checked { geometry: *self, plan: Plan::new(&conv, self.in_h, self.in_w) })
    }
}

impl KernelGeometry<ConvTranspose2dGeometry> for ConvTranspose2dGeometry {
    fn checked(&self, what: &str) -> Checked<ConvTranspose2dGeometry> {
        self.validate().unwrap_or_else(|e| panic!("{what}: invalid geometry: {e}"))
    }
}

/// `y = conv_transpose2d(x, w) (+ bias)`, PyTorch's `F.conv_transpose2d`: `x` is
/// `(N, C_in, H, W)`, `w` is `(C_in, C_out/g, kH, kW)`, `bias` is `(C_out)`; returns
/// `(N, C_out, Ho, Wo)`. Computed as the input gradient of the matching convolution.
///
/// # Panics
/// If the geometry is invalid or a buffer has the wrong length.
pub fn conv_transpose2d_forward<T: Float>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &impl KernelGeometry<ConvTranspose2dGeometry>,
) -> Vec<T> {
    const WHAT: &str = "conv_transpose2d_forward";
    let g = g.checked(WHAT);
    let p = &g.plan;
    check_len(WHAT, "input", x.len(), g.input_len());
    check_len(WHAT, "weight", w.len(), g.weight_len());
    let mut y = input_grad_impl(x, w, p, true);
    if let Some(b) = bias {
        check_len(WHAT, "bias", b.len(), g.out_channels);
        if p.hw > 0 {
            for (plane, &bv) in y.chunks_exact_mut(p.hw).zip(b.iter().cycle()) {
                for v in plane {
                    *v += bv;
                }
            }
        }
    }
    y
}

/// `dL/dx` of [`conv_transpose2d_forward`] given `dy` `(N, C_out, Ho, Wo)`: a plain
/// convolution of `dy` with `w`; returns `(N, C_in, H, W)`.
///
/// # Panics
/// If the geometry is invalid or a buffer has the wrong length.
pub fn conv_transpose2d_input_grad<T: Float>(
    dy: &[T],
    w: &[T],
    g: &impl KernelGeometry<ConvTranspose2dGeometry>,
) -> Vec<T> {
    const WHAT: &str = "conv_transpose2d_input_grad";
    let g = g.checked(WHAT);
    check_len(WHAT, "output gradient", dy.len(), g.output_len());
    check_len(WHAT, "weight", w.len(), g.weight_len());
    forward_impl(dy, w, None, &g.plan, true)
}

/// `dL/dw` of [`conv_transpose2d_forward`] given the input `x` and `dy`; returns
/// `(C_in, C_out/g, kH, kW)`. Deterministic like [`conv2d_weight_grad`].
///
/// # Panics
/// If the geometry is invalid or a buffer has the wrong length.
pub fn conv_transpose2d_weight_grad<T: Float>(
    x: &[T],
    dy: &[T],
    g: &impl KernelGeometry<ConvTranspose2dGeometry>,
) -> Vec<T> {
    const WHAT: &str = "conv_transpose2d_weight_grad";
    let g = g.checked(WHAT);
    check_len(WHAT, "input", x.len(), g.input_len());
    check_len(WHAT, "output gradient", dy.len(), g.output_len());
    // ⟨dy, convT(x, w)⟩ = ⟨conv(dy, w), x⟩: the weight gradient of the convolution whose
    // input is `dy` and whose output gradient is `x`.
    weight_grad_impl(dy, x, &g.plan, true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    thread_local! {
        /// Geometry checks run on this thread (both geometries' `check`).
        static CHECKS: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn count_check() {
        CHECKS.with(|c| c.set(c.get() + 1));
    }

    /// The geometry checks `f` runs on this thread.
    pub(crate) fn checks_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
        let before = CHECKS.with(Cell::get);
        let r = f();
        (r, CHECKS.with(Cell::get) - before)
    }

    /// Deterministic uniform values in `[-1, 1)` (splitmix64).
    pub(crate) fn rand_vec(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed ^ 0x5DEE_CE66_D1CE_4E5B;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect()
    }

    /// `|got − want| ≤ tol · max(1, |want|)` elementwise (equal infinities and NaNs pass).
    #[track_caller]
    pub(crate) fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
            let ok = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * b.abs().max(1.0);
            assert!(ok, "{what}[{i}]: got {a}, want {b} (tolerance {tol})");
        }
    }

    pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Central finite differences of the scalar `f` at `x`.
    pub(crate) fn finite_diff(x: &[f64], eps: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let mut xp = x.to_vec();
        (0..x.len())
            .map(|i| {
                xp[i] = x[i] + eps;
                let up = f(&xp);
                xp[i] = x[i] - eps;
                let down = f(&xp);
                xp[i] = x[i];
                (up - down) / (2.0 * eps)
            })
            .collect()
    }

    // ---- naive references -----------------------------------------------------------

    /// The direct 7-deep convolution loop: calls `f(x_index, w_index, y_index)` for every
    /// input·weight product that lands in an output element.
    fn conv_visit(g: &Conv2dGeometry, mut f: impl FnMut(usize, usize, usize)) {
        let (oh, ow) = (g.out_h(), g.out_w());
        let cg = g.in_channels / g.groups;
        let og = g.out_channels / g.groups;
        let [kh, kw] = g.kernel;
        for n in 0..g.batch {
            for oc in 0..g.out_channels {
                let gi = oc / og;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let yi = ((n * g.out_channels + oc) * oh + oy) * ow + ox;
                        for ci in 0..cg {
                            for ki in 0..kh {
                                let iy =
                                    (oy * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                                if iy < 0 || iy >= g.in_h as isize {
                                    continue;
                                }
                                for kj in 0..kw {
                                    let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize
                                        - g.padding[1] as isize;
                                    if ix < 0 || ix >= g.in_w as isize {
                                        continue;
                                    }
                                    let c = gi * cg + ci;
                                    let xi = ((n * g.in_channels + c) * g.in_h + iy as usize) * g.in_w
                                        + ix as usize;
                                    let wi = ((oc * cg + ci) * kh + ki) * kw + kj;
                                    f(xi, wi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn naive_conv(x: &[f64], w: &[f64], bias: Option<&[f64]>, g: &Conv2dGeometry) -> Vec<f64> {
        let mut y = vec![0.0; g.output_len()];
        if let Some(b) = bias {
            let plane = g.out_h() * g.out_w();
            for (i, v) in y.iter_mut().enumerate() {
                *v = b[(i / plane) % g.out_channels];
            }
        }
        conv_visit(g, |xi, wi, yi| y[yi] += x[xi] * w[wi]);
        y
    }

    fn naive_conv_input_grad(dy: &[f64], w: &[f64], g: &Conv2dGeometry) -> Vec<f64> {
        let mut dx = vec![0.0; g.input_len()];
        conv_visit(g, |xi, wi, yi| dx[xi] += dy[yi] * w[wi]);
        dx
    }

    fn naive_conv_weight_grad(x: &[f64], dy: &[f64], g: &Conv2dGeometry) -> Vec<f64> {
        let mut dw = vec![0.0; g.weight_len()];
        conv_visit(g, |xi, wi, yi| dw[wi] += x[xi] * dy[yi]);
        dw
    }

    /// The transposed convolution as a scatter: calls `f(x_index, w_index, y_index)` for
    /// every input element, kernel tap and output position it lands on.
    fn conv_t_visit(g: &ConvTranspose2dGeometry, mut f: impl FnMut(usize, usize, usize)) {
        let (oh, ow) = (g.out_h() as isize, g.out_w() as isize);
        let cin_g = g.in_channels / g.groups;
        let cout_g = g.out_channels / g.groups;
        let [kh, kw] = g.kernel;
        for n in 0..g.batch {
            for ci in 0..g.in_channels {
                let gi = ci / cin_g;
                for iy in 0..g.in_h {
                    for ix in 0..g.in_w {
                        let xi = ((n * g.in_channels + ci) * g.in_h + iy) * g.in_w + ix;
                        for co in 0..cout_g {
                            for ki in 0..kh {
                                let oy =
                                    (iy * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                                if oy < 0 || oy >= oh {
                                    continue;
                                }
                                for kj in 0..kw {
                                    let ox = (ix * g.stride[1] + kj * g.dilation[1]) as isize
                                        - g.padding[1] as isize;
                                    if ox < 0 || ox >= ow {
                                        continue;
                                    }
                                    let c = gi * cout_g + co;
                                    let yi =
                                        (((n * g.out_channels + c) as isize * oh + oy) * ow + ox) as usize;
                                    let wi = ((ci * cout_g + co) * kh + ki) * kw + kj;
                                    f(xi, wi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // ---- strategies -----------------------------------------------------------------

    fn conv_geometry(
        max_batch: usize,
        max_group_ch: usize,
        max_groups: usize,
        max_hw: usize,
    ) -> impl Strategy<Value = Conv2dGeometry> {
        (
            1..=max_batch,
            1..=max_groups,
            1..=max_group_ch,
            1..=max_group_ch,
            1..=max_hw,
            1..=max_hw,
            prop::array::uniform2(1usize..=3),
            prop::array::uniform2(1usize..=3),
            prop::array::uniform2(0usize..=2),
            prop::array::uniform2(1usize..=2),
        )
            .prop_map(|(batch, groups, cg, og, in_h, in_w, kernel, stride, padding, dilation)| {
                Conv2dGeometry {
                    batch,
                    in_channels: groups * cg,
                    in_h,
                    in_w,
                    out_channels: groups * og,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    groups,
                }
            })
            .prop_filter("valid convolution", |g| g.check().is_ok())
    }

    fn conv_t_geometry(max_hw: usize) -> impl Strategy<Value = ConvTranspose2dGeometry> {
        (
            1usize..=2,
            1usize..=3,
            1usize..=2,
            1usize..=3,
            prop::array::uniform2(1..=max_hw),
            prop::array::uniform2(1usize..=3),
            prop::array::uniform2(1usize..=3),
            prop::array::uniform2(0usize..=2),
            prop::array::uniform2(0usize..=2),
            prop::array::uniform2(1usize..=2),
        )
            .prop_map(
                |(batch, groups, cin_g, cout_g, in_hw, kernel, stride, padding, output_padding, dilation)| {
                    ConvTranspose2dGeometry {
                        batch,
                        in_channels: groups * cin_g,
                        in_h: in_hw[0],
                        in_w: in_hw[1],
                        out_channels: groups * cout_g,
                        kernel,
                        stride,
                        padding,
                        output_padding,
                        dilation,
                        groups,
                    }
                },
            )
            .prop_filter("valid transposed convolution", |g| g.check().is_ok())
    }

    /// The three kernels on random data against the naive loops.
    fn forward_and_grads_match_naive_loops(g: &Conv2dGeometry, with_bias: bool, seed: u64) {
        let x = rand_vec(seed, g.input_len());
        let w = rand_vec(seed ^ 1, g.weight_len());
        let b = rand_vec(seed ^ 2, g.out_channels);
        let dy = rand_vec(seed ^ 3, g.output_len());
        let bias = with_bias.then_some(&b[..]);
        assert_close(&conv2d_forward(&x, &w, bias, g), &naive_conv(&x, &w, bias, g), 1e-10, "forward");
        assert_close(&conv2d_input_grad(&dy, &w, g), &naive_conv_input_grad(&dy, &w, g), 1e-10, "input grad");
        assert_close(
            &conv2d_weight_grad(&x, &dy, g),
            &naive_conv_weight_grad(&x, &dy, g),
            1e-10,
            "weight grad",
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn forward_and_grads_match_naive(g in conv_geometry(3, 3, 3, 9), with_bias in any::<bool>(), seed in any::<u64>()) {
            forward_and_grads_match_naive_loops(&g, with_bias, seed);
        }

        #[test]
        fn same_width_fast_path_matches_naive(
            g in conv_geometry(2, 3, 2, 8)
                .prop_map(|g| {
                    let kw = if g.kernel[1] == 2 { 3 } else { g.kernel[1] };
                    let pw = g.dilation[1] * (kw - 1) / 2;
                    Conv2dGeometry { kernel: [g.kernel[0], kw], stride: [1, 1], padding: [g.padding[0], pw], ..g }
                })
                .prop_filter("valid convolution", |g| g.check().is_ok()),
            with_bias in any::<bool>(),
            seed in any::<u64>(),
        ) {
            prop_assert!(Plan::new(&g, g.out_h(), g.out_w()).same_rows(), "{g:?} takes the per-row path");
            forward_and_grads_match_naive_loops(&g, with_bias, seed);
        }

        #[test]
        fn pointwise_fast_path_matches_naive(
            g in conv_geometry(3, 4, 2, 7).prop_map(|g| Conv2dGeometry { kernel: [1, 1], stride: [1, 1], padding: [0, 0], ..g }),
            seed in any::<u64>(),
        ) {
            prop_assert!(Plan::new(&g, g.out_h(), g.out_w()).pointwise);
            let x = rand_vec(seed, g.input_len());
            let w = rand_vec(seed ^ 1, g.weight_len());
            let b = rand_vec(seed ^ 2, g.out_channels);
            let dy = rand_vec(seed ^ 3, g.output_len());
            assert_close(&conv2d_forward(&x, &w, Some(&b), &g), &naive_conv(&x, &w, Some(&b), &g), 1e-10, "forward");
            assert_close(&conv2d_input_grad(&dy, &w, &g), &naive_conv_input_grad(&dy, &w, &g), 1e-10, "input grad");
            assert_close(&conv2d_weight_grad(&x, &dy, &g), &naive_conv_weight_grad(&x, &dy, &g), 1e-10, "weight grad");
        }

        #[test]
        fn grads_match_finite_differences(g in conv_geometry(2, 2, 2, 6), seed in any::<u64>()) {
            let x = rand_vec(seed, g.input_len());
            let w = rand_vec(seed ^ 1, g.weight_len());
            let dy = rand_vec(seed ^ 3, g.output_len());
            let dx_fd = finite_diff(&x, 1e-6, |x| dot(&conv2d_forward(x, &w, None, &g), &dy));
            let dw_fd = finite_diff(&w, 1e-6, |w| dot(&conv2d_forward(&x, w, None, &g), &dy));
            assert_close(&conv2d_input_grad(&dy, &w, &g), &dx_fd, 1e-6, "input grad vs finite differences");
            assert_close(&conv2d_weight_grad(&x, &dy, &g), &dw_fd, 1e-6, "weight grad vs finite differences");
        }

        #[test]
        fn conv1d_through_2d_kernels_matches_naive_1d_loop(
            (batch, groups, cg, og, len, k, s, p, d) in (1usize..=3, 1usize..=3, 1usize..=3, 1usize..=3, 1usize..=12,
                1usize..=4, 1usize..=3, 0usize..=2, 1usize..=2),
            seed in any::<u64>(),
        ) {
            let (c, o) = (groups * cg, groups * og);
            let g = Conv2dGeometry {
                batch, in_channels: c, in_h: 1, in_w: len, out_channels: o,
                kernel: [1, k], stride: [1, s], padding: [0, p], dilation: [1, d], groups,
            };
            prop_assume!(len + 2 * p > d * (k - 1));
            g.check().unwrap();
            let lo = (len + 2 * p - d * (k - 1) - 1) / s + 1;
            let x = rand_vec(seed, batch * c * len);
            let w = rand_vec(seed ^ 1, o * cg * k);
            let b = rand_vec(seed ^ 2, o);
            let mut want = vec![0.0; batch * o * lo];
            for n in 0..batch {
                for oc in 0..o {
                    let gi = oc / og;
                    for t in 0..lo {
                        let mut acc = b[oc];
                        for ci in 0..cg {
                            for kk in 0..k {
                                let i = (t * s + kk * d) as isize - p as isize;
                                if i >= 0 && (i as usize) < len {
                                    acc += x[(n * c + gi * cg + ci) * len + i as usize] * w[(oc * cg + ci) * k + kk];
                                }
                            }
                        }
                        want[(n * o + oc) * lo + t] = acc;
                    }
                }
            }
            prop_assert_eq!(g.out_w(), lo);
            assert_close(&conv2d_forward(&x, &w, Some(&b), &g), &want, 1e-10, "conv1d");
        }

        #[test]
        fn conv_transpose_matches_naive_scatter_and_is_the_adjoint(g in conv_t_geometry(6), seed in any::<u64>()) {
            let x = rand_vec(seed, g.input_len());
            let w = rand_vec(seed ^ 1, g.weight_len());
            let b = rand_vec(seed ^ 2, g.out_channels);
            let dy = rand_vec(seed ^ 3, g.output_len());
            let plane = g.out_h() * g.out_w();
            let mut want = (0..g.output_len()).map(|i| b[(i / plane) % g.out_channels]).collect::<Vec<_>>();
            conv_t_visit(&g, |xi, wi, yi| want[yi] += x[xi] * w[wi]);
            let y = conv_transpose2d_forward(&x, &w, Some(&b), &g);
            assert_close(&y, &want, 1e-10, "conv_transpose2d forward");

            let mut dx_want = vec![0.0; g.input_len()];
            conv_t_visit(&g, |xi, wi, yi| dx_want[xi] += dy[yi] * w[wi]);
            let dx = conv_transpose2d_input_grad(&dy, &w, &g);
            assert_close(&dx, &dx_want, 1e-10, "conv_transpose2d input grad");
            let mut dw_want = vec![0.0; g.weight_len()];
            conv_t_visit(&g, |xi, wi, yi| dw_want[wi] += x[xi] * dy[yi]);
            assert_close(&conv_transpose2d_weight_grad(&x, &dy, &g), &dw_want, 1e-10, "conv_transpose2d weight grad");

            // ⟨convT(x), dy⟩ = ⟨x, convT_input_grad(dy)⟩, the latter a conv2d of dy.
            let y0 = conv_transpose2d_forward(&x, &w, None, &g);
            let (lhs, rhs) = (dot(&y0, &dy), dot(&x, &dx));
            prop_assert!((lhs - rhs).abs() <= 1e-10 * lhs.abs().max(1.0), "adjoint: {} vs {}", lhs, rhs);
            let conv = Conv2dGeometry {
                batch: g.batch, in_channels: g.out_channels, in_h: g.out_h(), in_w: g.out_w(),
                out_channels: g.in_channels, kernel: g.kernel, stride: g.stride, padding: g.padding,
                dilation: g.dilation, groups: g.groups,
            };
            if conv.out_h() == g.in_h && conv.out_w() == g.in_w {
                // No cropping (output_padding < stride): exactly conv2d and its input gradient.
                assert_close(&conv2d_forward(&dy, &w, None, &conv), &dx, 1e-12, "convT input grad = conv2d");
                assert_close(&conv2d_input_grad(&x, &w, &conv), &y0, 1e-12, "convT = conv2d input grad");
                // ⟨conv(z), x⟩ = ⟨z, convT(x)⟩ for the plain conv2d kernel too.
                let cz = conv2d_forward(&dy, &w, None, &conv);
                let (l2, r2) = (dot(&cz, &x), dot(&dy, &y0));
                prop_assert!((l2 - r2).abs() <= 1e-10 * l2.abs().max(1.0), "conv adjoint: {} vs {}", l2, r2);
            }
        }

        #[test]
        fn conv_transpose_grads_match_finite_differences(g in conv_t_geometry(4), seed in any::<u64>()) {
            let x = rand_vec(seed, g.input_len());
            let w = rand_vec(seed ^ 1, g.weight_len());
            let dy = rand_vec(seed ^ 3, g.output_len());
            let dx_fd = finite_diff(&x, 1e-6, |x| dot(&conv_transpose2d_forward(x, &w, None, &g), &dy));
            let dw_fd = finite_diff(&w, 1e-6, |w| dot(&conv_transpose2d_forward(&x, w, None, &g), &dy));
            assert_close(&conv_transpose2d_input_grad(&dy, &w, &g), &dx_fd, 1e-6, "input grad vs finite differences");
            assert_close(&conv_transpose2d_weight_grad(&x, &dy, &g), &dw_fd, 1e-6, "weight grad vs finite differences");
        }
    }

    /// A problem large enough for the batch-parallel path and several weight-gradient
    /// chunks: the parallel and sequential paths agree bit for bit, and with the naive loops.
    #[test]
    fn parallel_paths_are_deterministic_and_correct() {
        let g = Conv2dGeometry {
            batch: 9,
            in_channels: 16,
            in_h: 16,
            in_w: 17,
            out_channels: 16,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 2,
        };
        let p = Plan::new(&g, g.out_h(), g.out_w());
        assert!(g.batch * p.item_work() >= PARALLEL_CONV_WORK);
        assert!(g.batch.div_ceil(weight_grad_chunk_items(&p)) > 1, "several weight-gradient chunks");
        let x = rand_vec(7, g.input_len());
        let w = rand_vec(8, g.weight_len());
        let b = rand_vec(9, g.out_channels);
        let dy = rand_vec(10, g.output_len());
        let y_par = forward_impl(&x, &w, Some(&b), &p, true);
        assert_eq!(y_par, forward_impl(&x, &w, Some(&b), &p, false));
        assert_close(&y_par, &naive_conv(&x, &w, Some(&b), &g), 1e-10, "forward");
        let dx_par = input_grad_impl(&dy, &w, &p, true);
        assert_eq!(dx_par, input_grad_impl(&dy, &w, &p, false));
        assert_close(&dx_par, &naive_conv_input_grad(&dy, &w, &g), 1e-10, "input grad");
        let dw_par = weight_grad_impl(&x, &dy, &p, true);
        assert_eq!(dw_par, weight_grad_impl(&x, &dy, &p, false));
        assert_eq!(dw_par, conv2d_weight_grad(&x, &dy, &g));
        assert_close(&dw_par, &naive_conv_weight_grad(&x, &dy, &g), 1e-10, "weight grad");
    }

    #[test]
    fn f32_matches_f64() {
        let g = Conv2dGeometry {
            batch: 2,
            in_channels: 3,
            in_h: 7,
            in_w: 6,
            out_channels: 4,
            kernel: [3, 2],
            stride: [2, 1],
            padding: [1, 0],
            dilation: [1, 2],
            groups: 1,
        };
        let x = rand_vec(1, g.input_len());
        let w = rand_vec(2, g.weight_len());
        let dy = rand_vec(3, g.output_len());
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let back = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<f64>>();
        assert_close(
            &back(conv2d_forward(&f(&x), &f(&w), None, &g)),
            &conv2d_forward(&x, &w, None, &g),
            1e-5,
            "y",
        );
        assert_close(
            &back(conv2d_input_grad(&f(&dy), &f(&w), &g)),
            &conv2d_input_grad(&dy, &w, &g),
            1e-5,
            "dx",
        );
        assert_close(
            &back(conv2d_weight_grad(&f(&x), &f(&dy), &g)),
            &conv2d_weight_grad(&x, &dy, &g),
            1e-5,
            "dw",
        );
    }

    #[test]
    fn empty_batch_gives_empty_outputs_and_zero_weight_grad() {
        let g = Conv2dGeometry {
            batch: 0,
            in_channels: 2,
            in_h: 4,
            in_w: 4,
            out_channels: 3,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        };
        let w = rand_vec(1, g.weight_len());
        assert!(conv2d_forward::<f64>(&[], &w, None, &g).is_empty());
        assert!(conv2d_input_grad::<f64>(&[], &w, &g).is_empty());
        assert_eq!(conv2d_weight_grad::<f64>(&[], &[], &g), vec![0.0; g.weight_len()]);
    }

    #[test]
    fn geometry_sizes_and_checks() {
        let g = Conv2dGeometry {
            batch: 1,
            in_channels: 4,
            in_h: 8,
            in_w: 5,
            out_channels: 6,
            kernel: [3, 3],
            stride: [2, 1],
            padding: [1, 0],
            dilation: [1, 2],
            groups: 2,
        };
        assert!(g.check().is_ok());
        assert_eq!((g.out_h(), g.out_w()), (4, 1)); // (8+2-3)/2+1, (5-5)/1+1
        assert_eq!(g.weight_len(), 6 * 2 * 9);
        let bad = |f: fn(&mut Conv2dGeometry), needle: &str| {
            let mut b = g;
            f(&mut b);
            let e = b.check().unwrap_err();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        };
        bad(|g| g.stride = [0, 1], "stride");
        bad(|g| g.dilation = [1, 0], "dilation");
        bad(|g| g.kernel = [0, 1], "kernel");
        bad(|g| g.groups = 0, "groups");
        bad(|g| g.groups = 3, "divisible");
        bad(|g| g.out_channels = 5, "out_channels");
        bad(|g| g.in_w = 4, "larger than the padded input");
        bad(|g| g.in_h = 0, "spatial");

        let t = ConvTranspose2dGeometry {
            batch: 1,
            in_channels: 2,
            in_h: 3,
            in_w: 4,
            out_channels: 3,
            kernel: [3, 2],
            stride: [2, 3],
            padding: [1, 0],
            output_padding: [1, 2],
            dilation: [1, 1],
            groups: 1,
        };
        assert!(t.check().is_ok());
        assert_eq!((t.out_h(), t.out_w()), (6, 13)); // 2*2-2+2+1+1, 3*3+1+2+1
        let e = ConvTranspose2dGeometry { output_padding: [2, 0], ..t }.check().unwrap_err();
        assert!(e.contains("output padding"), "{e}");
        let e =
            ConvTranspose2dGeometry { in_h: 1, kernel: [1, 2], padding: [1, 0], ..t }.check().unwrap_err();
        assert!(e.contains("not positive"), "{e}");
    }

    #[test]
    #[should_panic(expected = "conv2d_forward: weight has")]
    fn wrong_buffer_length_panics() {
        let g = Conv2dGeometry {
            batch: 1,
            in_channels: 1,
            in_h: 3,
            in_w: 3,
            out_channels: 1,
            kernel: [2, 2],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        conv2d_forward(&[0.0f64; 9], &[0.0; 3], None, &g);
    }
}
