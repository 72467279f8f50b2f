//! QR codes for posters and merch tables: a fan page's public URL as an
//! SVG, written for this one job (byte mode, error correction level M,
//! versions 1 to 10, so URLs up to 213 bytes) following ISO/IEC 18004.
//!
//! Shared by the fan-facing functions (signup's `/s/{page}/qr.svg`, links'
//! `/l/{slug}/qr.svg`). Why not the `qrcode` crate the dashboard
//! uses: it covers every mode, version and Micro QR, far more wasm than a
//! hot-path function should carry. A test checks this encoder module for
//! module against that crate.

use std::fmt::Write;

/// Level M: about 15 % of the code can be damaged or covered and it still
/// reads, which suits print; level H would need bigger codes for the same URL.
const FORMAT_EC_M: u32 = 0b00;

/// Per version 1..=10 at level M: (EC codewords per block, blocks with
/// `short` data codewords, `short`, blocks with `short + 1`).
const BLOCKS: [(usize, usize, usize, usize); 10] = [
    (10, 1, 16, 0),
    (16, 1, 28, 0),
    (26, 1, 44, 0),
    (18, 2, 32, 0),
    (24, 2, 43, 0),
    (16, 4, 27, 0),
    (18, 4, 31, 0),
    (22, 2, 38, 2),
    (22, 3, 36, 2),
    (26, 4, 43, 1),
];

/// Alignment pattern centres (rows and columns) for versions 2..=10.
const ALIGN: [&[usize]; 10] = [&[], &[6, 18], &[6, 22], &[6, 26], &[6, 30], &[6, 34], &[6, 22, 38], &[6, 24, 42], &[6, 26, 46], &[6, 28, 50]];

pub const MAX_VERSION: usize = 10;

const DARK: u8 = 1;
/// Finder, timing, alignment, format and version modules: never data, never masked.
const FIXED: u8 = 2;

/// A square of modules, row by row.
pub struct Code {
    pub version: usize,
    pub size: usize,
    pub mask: u8,
    modules: Vec<u8>,
}

impl Code {
    pub fn dark(&self, x: usize, y: usize) -> bool {
        self.modules[y * self.size + x] & DARK != 0
    }

    /// The smallest code that holds `data`, with the mask of least penalty
    /// (the standard's choice); `None` if it needs more than version 10.
    pub fn encode(data: &[u8]) -> Option<Code> {
        let version = (1..=MAX_VERSION).find(|&v| data.len() <= capacity(v))?;
        (0..8).map(|m| Code::with_mask(data, version, m)).min_by_key(Code::penalty)
    }

    /// `data` in the given version and mask (the tests compare each mask).
    pub fn with_mask(data: &[u8], version: usize, mask: u8) -> Code {
        let size = 17 + 4 * version;
        let mut code = Code { version, size, mask, modules: vec![0; size * size] };
        code.draw_fixed();
        code.draw_data(&codewords(data, version));
        code.apply_mask();
        code.draw_format();
        code
    }

    fn set(&mut self, x: usize, y: usize, dark: bool) {
        self.modules[y * self.size + x] = FIXED | u8::from(dark);
    }

    fn draw_fixed(&mut self) {
        let s = self.size;
        for i in 0..s {
            self.set(6, i, i % 2 == 0);
            self.set(i, 6, i % 2 == 0);
        }
        for (cx, cy) in [(3, 3), (s - 4, 3), (3, s - 4)] {
            // The finder and its light separator ring, clipped at the edges.
            for dy in -4i32..=4 {
                for dx in -4i32..=4 {
                    let (x, y) = (cx as i32 + dx, cy as i32 + dy);
                    if (0..s as i32).contains(&x) && (0..s as i32).contains(&y) {
                        let d = dx.abs().max(dy.abs());
                        self.set(x as usize, y as usize, d != 2 && d != 4);
                    }
                }
            }
        }
        let centres = ALIGN[self.version - 1];
        for &cy in centres {
            for &cx in centres {
                // Not over the finders.
                let far = centres[centres.len() - 1];
                if (cx == 6 && (cy == 6 || cy == far)) || (cy == 6 && cx == far) {
                    continue;
                }
                for dy in -2i32..=2 {
                    for dx in -2i32..=2 {
                        self.set((cx as i32 + dx) as usize, (cy as i32 + dy) as usize, dx.abs().max(dy.abs()) != 1);
                    }
                }
            }
        }
        // Reserve the format areas (drawn after masking) and the dark module.
        self.draw_format();
        if self.version >= 7 {
            let bits = bch(self.version as u32, 12, 0x1F25);
            for i in 0..18 {
                let dark = bits >> i & 1 != 0;
                let (a, b) = (s - 11 + i % 3, i / 3);
                self.set(a, b, dark);
                self.set(b, a, dark);
            }
        }
    }

    fn draw_format(&mut self) {
        let s = self.size;
        let bits = bch(FORMAT_EC_M << 3 | u32::from(self.mask), 10, 0x537) ^ 0x5412;
        let bit = |i: usize| bits >> i & 1 != 0;
        for i in 0..=5 {
            self.set(8, i, bit(i));
        }
        self.set(8, 7, bit(6));
        self.set(8, 8, bit(7));
        self.set(7, 8, bit(8));
        for i in 9..15 {
            self.set(14 - i, 8, bit(i));
        }
        for i in 0..8 {
            self.set(s - 1 - i, 8, bit(i));
        }
        for i in 8..15 {
            self.set(8, s - 15 + i, bit(i));
        }
        self.set(8, s - 8, true);
    }

    /// The codewords in the standard's zigzag, two columns at a time from
    /// the right, skipping the vertical timing column; left-over modules
    /// (the remainder bits) stay light.
    fn draw_data(&mut self, data: &[u8]) {
        let s = self.size;
        let mut i = 0;
        let mut right = s - 1;
        while right >= 1 {
            if right == 6 {
                right = 5;
            }
            let upward = (right + 1) & 2 == 0;
            for vert in 0..s {
                let y = if upward { s - 1 - vert } else { vert };
                for x in [right, right - 1] {
                    let m = &mut self.modules[y * s + x];
                    if *m & FIXED == 0 {
                        if let Some(&byte) = data.get(i / 8) {
                            *m = byte >> (7 - i % 8) & 1;
                        }
                        i += 1;
                    }
                }
            }
            if right < 2 {
                break;
            }
            right -= 2;
        }
    }

    fn apply_mask(&mut self) {
        let s = self.size;
        for y in 0..s {
            for x in 0..s {
                let flip = match self.mask {
                    0 => (x + y) % 2 == 0,
                    1 => y % 2 == 0,
                    2 => x % 3 == 0,
                    3 => (x + y) % 3 == 0,
                    4 => (x / 3 + y / 2) % 2 == 0,
                    5 => x * y % 2 + x * y % 3 == 0,
                    6 => (x * y % 2 + x * y % 3) % 2 == 0,
                    _ => ((x + y) % 2 + x * y % 3) % 2 == 0,
                };
                let m = &mut self.modules[y * s + x];
                if flip && *m & FIXED == 0 {
                    *m ^= DARK;
                }
            }
        }
    }

    /// The standard's four penalty rules: long runs, 2×2 blocks,
    /// finder-like patterns and the balance of dark and light.
    fn penalty(&self) -> u32 {
        let s = self.size;
        let mut score = 0;
        for horizontal in [true, false] {
            for a in 0..s {
                let at = |b: usize| if horizontal { self.dark(b, a) } else { self.dark(a, b) };
                let mut run = 1;
                for b in 1..=s {
                    if b < s && at(b) == at(b - 1) {
                        run += 1;
                        continue;
                    }
                    if run >= 5 {
                        score += run - 2;
                    }
                    run = 1;
                }
                for b in 0..s.saturating_sub(10) {
                    let window: [bool; 11] = std::array::from_fn(|k| at(b + k));
                    const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
                    if (window[..7] == FINDER && window[7..].iter().all(|d| !d)) || (window[4..] == FINDER && window[..4].iter().all(|d| !d)) {
                        score += 40;
                    }
                }
            }
        }
        for y in 0..s - 1 {
            for x in 0..s - 1 {
                let c = self.dark(x, y);
                if c == self.dark(x + 1, y) && c == self.dark(x, y + 1) && c == self.dark(x + 1, y + 1) {
                    score += 3;
                }
            }
        }
        let dark = self.modules.iter().filter(|m| **m & DARK != 0).count();
        let percent = dark * 100 / (s * s);
        score + 10 * (percent.abs_diff(50) / 5) as u32
    }

    /// Dark modules as one path of horizontal runs, inside the standard's
    /// four-module quiet zone; black on white whatever the page's colours,
    /// since scanners expect dark on light.
    pub fn svg(&self) -> String {
        let s = self.size;
        let mut out = String::with_capacity(s * s * 4 + 256);
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {0}\" width=\"{1}\" height=\"{1}\" shape-rendering=\"crispEdges\">\
             <rect width=\"{0}\" height=\"{0}\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
            s + 8,
            (s + 8) * 8
        );
        for y in 0..s {
            let mut x = 0;
            while x < s {
                if !self.dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < s && self.dark(x, y) {
                    x += 1;
                }
                let _ = write!(out, "M{} {}h{}v1h-{}z", start + 4, y + 4, x - start, x - start);
            }
        }
        out.push_str("\"/></svg>");
        out
    }
}

/// How many bytes version `v` holds at level M in byte mode.
pub fn capacity(v: usize) -> usize {
    let (_, short_blocks, short, long_blocks) = BLOCKS[v - 1];
    let data_bits = 8 * (short_blocks * short + long_blocks * (short + 1));
    (data_bits - 4 - count_bits(v)) / 8
}

/// Length of the character count field in byte mode.
fn count_bits(v: usize) -> usize {
    if v < 10 {
        8
    } else {
        16
    }
}

/// Mode, count, data, terminator and padding, split into blocks, each with
/// its Reed–Solomon codewords, interleaved as the standard lays them out.
fn codewords(data: &[u8], v: usize) -> Vec<u8> {
    let (ec_len, short_blocks, short, long_blocks) = BLOCKS[v - 1];
    let total_data = short_blocks * short + long_blocks * (short + 1);
    let mut bits = Bits { bytes: Vec::with_capacity(total_data), len: 0 };
    bits.push(0b0100, 4);
    bits.push(data.len() as u32, count_bits(v));
    for &b in data {
        bits.push(u32::from(b), 8);
    }
    let room = total_data * 8 - bits.len;
    bits.push(0, room.min(4));
    bits.push(0, (8 - bits.len % 8) % 8);
    for pad in [0xEC, 0x11].into_iter().cycle().take(total_data - bits.bytes.len()) {
        bits.bytes.push(pad);
    }
    let divisor = rs_divisor(ec_len);
    let mut blocks = Vec::with_capacity(short_blocks + long_blocks);
    let mut at = 0;
    for i in 0..short_blocks + long_blocks {
        let len = short + usize::from(i >= short_blocks);
        let block = &bits.bytes[at..at + len];
        blocks.push((block, rs_remainder(block, &divisor)));
        at += len;
    }
    let mut out = Vec::with_capacity(total_data + ec_len * blocks.len());
    for i in 0..=short {
        out.extend(blocks.iter().filter_map(|(d, _)| d.get(i)));
    }
    for i in 0..ec_len {
        out.extend(blocks.iter().map(|(_, e)| e[i]));
    }
    out
}

struct Bits {
    bytes: Vec<u8>,
    len: usize,
}

impl Bits {
    fn push(&mut self, value: u32, n: usize) {
        for i in (0..n).rev() {
            if self.len.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if value >> i & 1 != 0 {
                if let Some(last) = self.bytes.last_mut() {
                    *last |= 0x80 >> (self.len % 8);
                }
            }
            self.len += 1;
        }
    }
}

/// `value` followed by its BCH remainder (`len` bits) under `poly`.
fn bch(value: u32, len: u32, poly: u32) -> u32 {
    let degree = 31 - poly.leading_zeros();
    let mut rem = value << degree;
    for i in (degree..degree + len).rev() {
        if rem >> i & 1 != 0 {
            rem ^= poly << (i - degree);
        }
    }
    value << degree | rem
}

/// Multiplication in GF(2⁸) modulo x⁸ + x⁴ + x³ + x² + 1.
fn gf_mul(x: u8, y: u8) -> u8 {
    let mut z = 0u8;
    for i in (0..8).rev() {
        z = (z << 1) ^ ((z >> 7) * 0x1D);
        z ^= ((y >> i) & 1) * x;
    }
    z
}

/// The generator polynomial of degree `n` (leading 1 left out).
fn rs_divisor(n: usize) -> Vec<u8> {
    let mut r = vec![0u8; n];
    r[n - 1] = 1;
    let mut root = 1u8;
    for _ in 0..n {
        for j in 0..n {
            r[j] = gf_mul(r[j], root);
            if j + 1 < n {
                r[j] ^= r[j + 1];
            }
        }
        root = gf_mul(root, 2);
    }
    r
}

fn rs_remainder(data: &[u8], divisor: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; divisor.len()];
    for &b in data {
        let factor = b ^ r[0];
        r.rotate_left(1);
        if let Some(last) = r.last_mut() {
            *last = 0;
        }
        for (x, &d) in r.iter_mut().zip(divisor) {
            *x ^= gf_mul(d, factor);
        }
    }
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_encoder_module_for_module() {
        use qrcode::bits::Bits;
        use qrcode::canvas::{Canvas, MaskPattern};
        use qrcode::types::{Color, EcLevel, Version};
        let masks = [
            MaskPattern::Checkerboard,
            MaskPattern::HorizontalLines,
            MaskPattern::VerticalLines,
            MaskPattern::DiagonalLines,
            MaskPattern::LargeCheckerboard,
            MaskPattern::Fields,
            MaskPattern::Diamonds,
            MaskPattern::Meadow,
        ];
        let long = format!("https://fans.example/s/{}", "a".repeat(64));
        let longest = "x".repeat(capacity(MAX_VERSION));
        for data in ["https://x.io/s/abc", "https://fans.example/s/tour", "http://localhost:8787/s/demo", long.as_str(), longest.as_str()] {
            let code = Code::encode(data.as_bytes()).expect("fits");
            let v = code.version;
            assert!(v == 1 || data.len() > capacity(v - 1), "{data}: not the smallest version");
            for (m, pattern) in masks.into_iter().enumerate() {
                let version = Version::Normal(v as i16);
                let mut bits = Bits::new(version);
                bits.push_byte_data(data.as_bytes()).expect("bits");
                bits.push_terminator(EcLevel::M).expect("terminator");
                let (data_cw, ec_cw) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).expect("ec");
                let mut canvas = Canvas::new(version, EcLevel::M);
                canvas.draw_all_functional_patterns();
                canvas.draw_data(&data_cw, &ec_cw);
                canvas.apply_mask(pattern);
                let theirs = canvas.into_colors();
                let ours = Code::with_mask(data.as_bytes(), v, m as u8);
                assert_eq!(theirs.len(), ours.size * ours.size);
                for y in 0..ours.size {
                    for x in 0..ours.size {
                        assert_eq!(ours.dark(x, y), theirs[y * ours.size + x] == Color::Dark, "{data} v{v} mask {m}: module ({x}, {y})");
                    }
                }
            }
        }
        assert!(Code::encode("x".repeat(capacity(MAX_VERSION) + 1).as_bytes()).is_none());
    }
}
