//! A minimal PNG writer for the examples (8-bit RGB, uncompressed deflate blocks), so
//! they can show pictures without an image crate.

#![allow(dead_code)] // each example uses part of it

use std::io::Write;
use std::path::Path;

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// Writes `rgb` (`width * height * 3` bytes, row-major) as a PNG file.
pub fn write_rgb(path: &Path, width: usize, height: usize, rgb: &[u8]) -> std::io::Result<()> {
    assert_eq!(rgb.len(), width * height * 3, "png: pixel buffer size");
    let mut raw = Vec::with_capacity(height * (width * 3 + 1));
    for row in rgb.chunks(width * 3) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    // zlib stream of stored (uncompressed) deflate blocks
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(if i + 1 == blocks.len() { 1 } else { 0 });
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    std::fs::File::create(path)?.write_all(&png)
}

/// Writes a grid of grey-scale images (values in [0, 1]), `cols` per row, each `side × side`,
/// scaled up by `scale`.
pub fn write_grey_grid(
    path: &Path,
    images: &[Vec<f32>],
    side: usize,
    cols: usize,
    scale: usize,
) -> std::io::Result<()> {
    let rows = images.len().div_ceil(cols);
    let (w, h) = (cols * side * scale, rows * side * scale);
    let mut rgb = vec![0u8; w * h * 3];
    for (k, img) in images.iter().enumerate() {
        let (gx, gy) = ((k % cols) * side * scale, (k / cols) * side * scale);
        for y in 0..side * scale {
            for x in 0..side * scale {
                let v = (img[(y / scale) * side + x / scale].clamp(0.0, 1.0) * 255.0) as u8;
                let o = ((gy + y) * w + gx + x) * 3;
                rgb[o..o + 3].copy_from_slice(&[v, v, v]);
            }
        }
    }
    write_rgb(path, w, h, &rgb)
}

/// Writes a line chart of `series` (each: its y values at x = 0, 1, ..., and its colour)
/// on shared axes, with optional horizontal reference lines (value, colour), as a
/// `width × height` PNG with a margin and a light grid at round y values.
pub fn write_line_chart(
    path: &Path,
    width: usize,
    height: usize,
    series: &[(&[f64], [u8; 3])],
    hlines: &[(f64, [u8; 3])],
) -> std::io::Result<()> {
    let mut rgb = vec![255u8; width * height * 3];
    let margin = 20usize;
    let values = series.iter().flat_map(|(ys, _)| ys.iter()).chain(hlines.iter().map(|(y, _)| y));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &y| (lo.min(y), hi.max(y)));
    let (lo, hi) = (lo.floor().min(hi - 1.0), hi.ceil());
    let longest = series.iter().map(|(ys, _)| ys.len()).max().unwrap_or(2).max(2);
    let (pw, ph) = ((width - 2 * margin) as f64, (height - 2 * margin) as f64);
    let to_px = |i: f64, y: f64| {
        (margin as f64 + i / (longest - 1) as f64 * pw, margin as f64 + (hi - y) / (hi - lo) * ph)
    };
    let mut put = |x: f64, y: f64, c: [u8; 3]| {
        let (x, y) = (x.round() as isize, y.round() as isize);
        if (0..width as isize).contains(&x) && (0..height as isize).contains(&y) {
            let at = (y as usize * width + x as usize) * 3;
            rgb[at..at + 3].copy_from_slice(&c);
        }
    };
    // grid at every whole y value, then the axes
    let mut y = lo;
    while y <= hi {
        let (_, py) = to_px(0.0, y);
        (0..pw as usize).for_each(|dx| put((margin + dx) as f64, py, [225, 225, 225]));
        y += 1.0;
    }
    (0..=ph as usize).for_each(|dy| put(margin as f64, (margin + dy) as f64, [0, 0, 0]));
    (0..=pw as usize).for_each(|dx| put((margin + dx) as f64, (height - margin) as f64, [0, 0, 0]));
    for &(y, c) in hlines {
        let (_, py) = to_px(0.0, y);
        (0..pw as usize).filter(|dx| dx % 6 < 3).for_each(|dx| put((margin + dx) as f64, py, c));
    }
    for (ys, c) in series {
        for (i, w) in ys.windows(2).enumerate() {
            let (x0, y0) = to_px(i as f64, w[0]);
            let (x1, y1) = to_px((i + 1) as f64, w[1]);
            let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
            for k in 0..=n {
                let t = k as f64 / n as f64;
                let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
                put(x, y, *c);
                put(x, y + 1.0, *c);
            }
        }
    }
    write_rgb(path, width, height, &rgb)
}
