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
