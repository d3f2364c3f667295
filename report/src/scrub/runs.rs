//! Where text lies inside a binary buffer: runs of printable characters, in
//! ASCII/UTF-8 and in UTF-16LE at both alignments.
//!
//! Every upload's dump is searched this way twice (names learned, then values
//! masked), so it is built for speed: each byte (or UTF-16 unit) is classified
//! without branches into a bit set, 64 positions to a word: on x86_64 with AVX2
//! where the CPU has it (32 bytes or 16 units per compare), else with SSE2 (in
//! every x86_64 CPU; 16 bytes or 8 units), the answers gathered with
//! `movemask`; on other architectures in a u64 (SWAR), 8 bytes or 4 units at a
//! time. Runs shorter than [`MIN_RUN`] are removed with word-wide shifts, and
//! only the words that still hold a run are looked at again. Most of a dump
//! (pointers, code, zeros) is passed over 64 bytes at a time. The runs found are
//! exactly those of a plain left-to-right scan (the tests compare the two, and
//! the AVX2, SSE2 and SWAR classes to each other and to a table).

use std::ops::Range;

use super::text::Encoding;

/// A run of printable text found in a buffer.
pub(crate) struct TextRun<'a> {
    /// Byte offset of the run in the buffer.
    pub(crate) start: usize,
    pub(crate) encoding: Encoding,
    /// The decoded text: borrowed from the buffer for UTF-8; for UTF-16, from a
    /// buffer the scan reuses for every run (so valid only during the call).
    pub(crate) text: &'a str,
    /// For UTF-16: the unit index of each byte of `text` (plus one past the
    /// end); empty when every unit is ASCII (byte `i` of `text` is unit `i`).
    units: &'a [u32],
}

impl TextRun<'_> {
    /// The buffer byte range of a byte range of `text`.
    pub(crate) fn buffer_range(&self, r: &Range<usize>) -> Range<usize> {
        match self.encoding {
            Encoding::Utf8 => self.start + r.start..self.start + r.end,
            Encoding::Utf16Le => {
                let (a, b) = if self.units.is_empty() {
                    (r.start, r.end)
                } else {
                    (self.units[r.start] as usize, self.units[r.end] as usize)
                };
                self.start + 2 * a..self.start + 2 * b
            }
        }
    }
}

/// Shortest run of printable characters worth looking at.
pub(crate) const MIN_RUN: usize = 4;

/// A printable UTF-16 unit: ASCII, tab, Latin-1 and Latin Extended-A letters.
#[cfg(any(test, fuzzing))]
fn printable_unit(u: u16) -> bool {
    matches!(u, 0x20..=0x7e | 0x09 | 0xa0..=0x17f)
}

/// Byte classes for the UTF-8 scan, one bit each ([`classes64`]): printable
/// ASCII or tab.
const ASCII: u8 = 1;
/// First byte of a 2-byte UTF-8 Latin letter (U+0080..U+017F).
const LEAD: u8 = 2;
/// A UTF-8 continuation byte.
const CONT: u8 = 4;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = if (b >= 0x20 && b <= 0x7e) || b == 0x09 {
            ASCII
        } else if b >= 0xc2 && b <= 0xc5 {
            LEAD
        } else if b >= 0x80 && b <= 0xbf {
            CONT
        } else {
            0
        };
        b += 1;
    }
    t
};

/// The classes of 64 bytes, a bit per byte (byte 0 is bit 0) for each of
/// [`ASCII`], [`LEAD`] and [`CONT`], in that order.
fn classes64(chunk: &[u8; 64]) -> [u64; 3] {
    #[cfg(target_arch = "x86_64")]
    {
        sse2::classes64(chunk)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        swar::classes64(chunk)
    }
}

/// Whether each of the 64 UTF-16LE units of 128 bytes is printable (0x20..=0x7e,
/// 0x09, 0xa0..=0x17f), a bit per unit (unit 0 is bit 0).
fn units64(chunk: &[u8; 128]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        sse2::units64(chunk)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        swar::units64(chunk)
    }
}

/// The classification in a u64, 8 bytes (or 4 UTF-16 units) at a time: each
/// lane's answer is its top bit. No lane borrows from or carries into another.
/// Any architecture; x86_64 uses [`sse2`], and the tests compare the two.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
mod swar {
    /// Top bit of each byte.
    const BYTE_TOPS: u64 = 0x8080_8080_8080_8080;
    /// One in each byte.
    const BYTE_ONES: u64 = 0x0101_0101_0101_0101;
    /// Top bit of each 16-bit lane.
    const UNIT_TOPS: u64 = 0x8000_8000_8000_8000;
    /// One in each 16-bit lane.
    const UNIT_ONES: u64 = 0x0001_0001_0001_0001;

    /// Each lane minus `y`'s, wrapping within the lane (`tops`: the lanes' top bits).
    fn lanes_sub(x: u64, y: u64, tops: u64) -> u64 {
        ((x | tops).wrapping_sub(y & !tops)) ^ ((x ^ !y) & tops)
    }

    /// Top bit set in each lane of `x` below `n` (1 ≤ n ≤ the lane's top bit).
    fn lanes_below(x: u64, n: u64, tops: u64, ones: u64) -> u64 {
        // (top + n - 1 - low bits) keeps its top bit exactly when low bits < n; a
        // lane whose own top bit is set is not below n.
        let low = x & !tops;
        (((tops | (ones * (n - 1))).wrapping_sub(low)) & !x) & tops
    }

    /// Top bit set in each lane of `x` within `lo..=hi` (`hi - lo` below the
    /// lane's top bit).
    fn within(x: u64, lo: u64, hi: u64, tops: u64, ones: u64) -> u64 {
        let shifted = lanes_sub(x, ones * lo, tops);
        lanes_below(shifted, hi - lo + 1, tops, ones)
    }

    /// Top bit set in each byte of `x` within `lo..=hi` (`hi - lo` < 128).
    fn bytes_in(x: u64, lo: u64, hi: u64) -> u64 {
        within(x, lo, hi, BYTE_TOPS, BYTE_ONES)
    }

    /// Top bit set in each 16-bit lane of `x` within `lo..=hi` (`hi - lo` < 0x8000).
    fn units_in(x: u64, lo: u64, hi: u64) -> u64 {
        within(x, lo, hi, UNIT_TOPS, UNIT_ONES)
    }

    /// The bytes' top bits as bits 0..8 (byte 0 first).
    fn gather_bytes(tops: u64) -> u64 {
        ((tops >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
    }

    /// The 16-bit lanes' top bits as bits 0..4 (lane 0 first).
    fn gather_units(tops: u64) -> u64 {
        let t = tops >> 15;
        (t | (t >> 15) | (t >> 30) | (t >> 45)) & 0xf
    }

    /// [`super::classes64`] 8 bytes at a time.
    pub(super) fn classes64(chunk: &[u8; 64]) -> [u64; 3] {
        let (mut a, mut l, mut c) = (0u64, 0u64, 0u64);
        for (k, eight) in chunk.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
            let printable = bytes_in(x, 0x20, 0x7e) | bytes_in(x, 0x09, 0x09);
            a |= gather_bytes(printable) << (8 * k);
            l |= gather_bytes(bytes_in(x, 0xc2, 0xc5)) << (8 * k);
            c |= gather_bytes(bytes_in(x, 0x80, 0xbf)) << (8 * k);
        }
        [a, l, c]
    }

    /// [`super::units64`] 4 units at a time.
    pub(super) fn units64(chunk: &[u8; 128]) -> u64 {
        let mut v = 0u64;
        for (k, four) in chunk.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes(four.try_into().expect("8 bytes"));
            let printable =
                units_in(x, 0x20, 0x7e) | units_in(x, 0x09, 0x09) | units_in(x, 0xa0, 0x17f);
            v |= gather_units(printable) << (4 * k);
        }
        v
    }
}

/// The classification with SSE2, part of every x86_64 CPU (so no runtime
/// detection): 16 bytes (or 8 UTF-16 units) per compare, each lane all ones or
/// all zeros, the lanes gathered into bits by `movemask`. The compares are
/// signed, so bytes from 0x80 (units from 0x8000) are the negative ones.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_add_epi16, _mm_cmpeq_epi8, _mm_cmpeq_epi16, _mm_cmpgt_epi8,
        _mm_cmpgt_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_packs_epi16,
        _mm_set1_epi8, _mm_set1_epi16,
    };

    /// [`super::classes64`] 16 bytes at a time.
    pub(super) fn classes64(chunk: &[u8; 64]) -> [u64; 3] {
        // SAFETY: SSE2 is in every x86_64 CPU (the target's baseline features).
        unsafe { classes64_sse2(chunk) }
    }

    /// [`super::units64`] 8 units at a time.
    pub(super) fn units64(chunk: &[u8; 128]) -> u64 {
        // SAFETY: SSE2 is in every x86_64 CPU (the target's baseline features).
        unsafe { units64_sse2(chunk) }
    }

    /// The 16 bytes at `at` of `chunk`.
    #[target_feature(enable = "sse2")]
    fn load<const N: usize>(chunk: &[u8; N], at: usize) -> __m128i {
        let bytes: &[u8; 16] = chunk[at..at + 16].try_into().expect("16 bytes");
        // SAFETY: `bytes` is 16 readable bytes, all `_mm_loadu_si128` reads; it
        // needs no alignment.
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    }

    /// Each lane's top bit, lane 0 as bit 0 (16 bits).
    #[target_feature(enable = "sse2")]
    fn gather(x: __m128i) -> u64 {
        u64::from(_mm_movemask_epi8(x) as u16)
    }

    /// The byte `b` in each lane.
    #[target_feature(enable = "sse2")]
    fn splat(b: u8) -> __m128i {
        _mm_set1_epi8(b as i8)
    }

    /// Each byte of `x` within `lo..=hi`: all ones, else zeros. Moved by
    /// `0x80 - lo` (wrapping), the range starts at the least signed byte, so one
    /// compare is enough.
    #[target_feature(enable = "sse2")]
    fn bytes_in(x: __m128i, lo: u8, hi: u8) -> __m128i {
        let moved = _mm_add_epi8(x, splat(0x80u8.wrapping_sub(lo)));
        _mm_cmpgt_epi8(splat((hi - lo + 1) ^ 0x80), moved)
    }

    /// Each 16-bit lane of `x` within `lo..=hi` (`hi - lo` < 0x7fff): all ones,
    /// else zeros, as [`bytes_in`].
    #[target_feature(enable = "sse2")]
    fn units_in(x: __m128i, lo: u16, hi: u16) -> __m128i {
        let moved = _mm_add_epi16(x, _mm_set1_epi16(0x8000u16.wrapping_sub(lo) as i16));
        _mm_cmpgt_epi16(_mm_set1_epi16(((hi - lo + 1) ^ 0x8000) as i16), moved)
    }

    #[target_feature(enable = "sse2")]
    fn classes64_sse2(chunk: &[u8; 64]) -> [u64; 3] {
        let (mut a, mut l, mut c) = (0u64, 0u64, 0u64);
        for k in 0..4 {
            let x = load(chunk, 16 * k);
            let printable = _mm_or_si128(bytes_in(x, 0x20, 0x7e), _mm_cmpeq_epi8(x, splat(0x09)));
            let lead = bytes_in(x, 0xc2, 0xc5);
            // 0x80..=0xbf: below 0xc0, the least of all.
            let cont = _mm_cmpgt_epi8(splat(0xc0), x);
            a |= gather(printable) << (16 * k);
            l |= gather(lead) << (16 * k);
            c |= gather(cont) << (16 * k);
        }
        [a, l, c]
    }

    /// Each of the 8 UTF-16LE units of `x` printable: all ones, else zeros.
    #[target_feature(enable = "sse2")]
    fn printable_units(x: __m128i) -> __m128i {
        let (ascii, latin) = (units_in(x, 0x20, 0x7e), units_in(x, 0xa0, 0x17f));
        _mm_or_si128(
            _mm_or_si128(ascii, latin),
            _mm_cmpeq_epi16(x, _mm_set1_epi16(0x09)),
        )
    }

    #[target_feature(enable = "sse2")]
    fn units64_sse2(chunk: &[u8; 128]) -> u64 {
        let mut v = 0u64;
        for k in 0..4 {
            let lo = printable_units(load(chunk, 32 * k));
            let hi = printable_units(load(chunk, 32 * k + 16));
            // Each unit's answer (0 or -1) narrowed to a byte, 16 units in order.
            v |= gather(_mm_packs_epi16(lo, hi)) << (16 * k);
        }
        v
    }
}

/// The classification with AVX2, where the CPU has it (detected at run time;
/// std caches the answer): as [`sse2`], 32 bytes (or 16 units) per compare.
// Not shared with `sse2` though step for step alike: each step is another
// width's intrinsic, and a macro over their names would hide which instruction
// runs; the tests hold both to the plain scan.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi8, _mm256_add_epi16, _mm256_cmpeq_epi8, _mm256_cmpeq_epi16,
        _mm256_cmpgt_epi8, _mm256_cmpgt_epi16, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_packs_epi16, _mm256_permute4x64_epi64, _mm256_set1_epi8,
        _mm256_set1_epi16,
    };

    use super::Bits;

    #[cfg(test)]
    thread_local! {
        /// Tests set this to take the SSE2 path on a CPU with AVX2.
        pub(super) static OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Whether the CPU has AVX2.
    fn available() -> bool {
        #[cfg(test)]
        if OFF.get() {
            return false;
        }
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// [`Bits::utf8`] with AVX2, if the CPU has it.
    pub(super) fn utf8(bytes: &[u8]) -> Option<(Bits, Bits)> {
        // SAFETY: the CPU has AVX2.
        available().then(|| unsafe { utf8_avx2(bytes) })
    }

    /// [`Bits::printable_units`] with AVX2, if the CPU has it.
    pub(super) fn printable_units(bytes: &[u8]) -> Option<Bits> {
        // SAFETY: the CPU has AVX2.
        available().then(|| unsafe { printable_units_avx2(bytes) })
    }

    /// [`super::classes64`] with AVX2, if the CPU has it.
    #[cfg(test)]
    pub(super) fn classes64(chunk: &[u8; 64]) -> Option<[u64; 3]> {
        // SAFETY: the CPU has AVX2.
        available().then(|| unsafe { classes64_avx2(chunk) })
    }

    /// [`super::units64`] with AVX2, if the CPU has it.
    #[cfg(test)]
    pub(super) fn units64(chunk: &[u8; 128]) -> Option<u64> {
        // SAFETY: the CPU has AVX2.
        available().then(|| unsafe { units64_avx2(chunk) })
    }

    #[target_feature(enable = "avx2")]
    fn utf8_avx2(bytes: &[u8]) -> (Bits, Bits) {
        Bits::utf8_with(bytes, |chunk| classes64_avx2(chunk))
    }

    #[target_feature(enable = "avx2")]
    fn printable_units_avx2(bytes: &[u8]) -> Bits {
        Bits::printable_units_with(bytes, |chunk| units64_avx2(chunk))
    }

    /// The 32 bytes at `at` of `chunk`.
    #[target_feature(enable = "avx2")]
    fn load<const N: usize>(chunk: &[u8; N], at: usize) -> __m256i {
        let bytes: &[u8; 32] = chunk[at..at + 32].try_into().expect("32 bytes");
        // SAFETY: `bytes` is 32 readable bytes, all `_mm256_loadu_si256` reads;
        // it needs no alignment.
        unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
    }

    /// Each lane's top bit, lane 0 as bit 0 (32 bits).
    #[target_feature(enable = "avx2")]
    fn gather(x: __m256i) -> u64 {
        u64::from(_mm256_movemask_epi8(x) as u32)
    }

    /// The byte `b` in each lane.
    #[target_feature(enable = "avx2")]
    fn splat(b: u8) -> __m256i {
        _mm256_set1_epi8(b as i8)
    }

    /// Each byte of `x` within `lo..=hi`: all ones, else zeros (as `sse2`'s).
    #[target_feature(enable = "avx2")]
    fn bytes_in(x: __m256i, lo: u8, hi: u8) -> __m256i {
        let moved = _mm256_add_epi8(x, splat(0x80u8.wrapping_sub(lo)));
        _mm256_cmpgt_epi8(splat((hi - lo + 1) ^ 0x80), moved)
    }

    /// Each 16-bit lane of `x` within `lo..=hi`: all ones, else zeros (as
    /// `sse2`'s).
    #[target_feature(enable = "avx2")]
    fn units_in(x: __m256i, lo: u16, hi: u16) -> __m256i {
        let moved = _mm256_add_epi16(x, _mm256_set1_epi16(0x8000u16.wrapping_sub(lo) as i16));
        _mm256_cmpgt_epi16(_mm256_set1_epi16(((hi - lo + 1) ^ 0x8000) as i16), moved)
    }

    #[target_feature(enable = "avx2")]
    fn classes64_avx2(chunk: &[u8; 64]) -> [u64; 3] {
        let (mut a, mut l, mut c) = (0u64, 0u64, 0u64);
        for k in 0..2 {
            let x = load(chunk, 32 * k);
            let printable =
                _mm256_or_si256(bytes_in(x, 0x20, 0x7e), _mm256_cmpeq_epi8(x, splat(0x09)));
            let lead = bytes_in(x, 0xc2, 0xc5);
            // 0x80..=0xbf: below 0xc0, the least of all.
            let cont = _mm256_cmpgt_epi8(splat(0xc0), x);
            a |= gather(printable) << (32 * k);
            l |= gather(lead) << (32 * k);
            c |= gather(cont) << (32 * k);
        }
        [a, l, c]
    }

    /// Each of the 16 UTF-16LE units of `x` printable: all ones, else zeros.
    #[target_feature(enable = "avx2")]
    fn printable16(x: __m256i) -> __m256i {
        let (ascii, latin) = (units_in(x, 0x20, 0x7e), units_in(x, 0xa0, 0x17f));
        let tab = _mm256_cmpeq_epi16(x, _mm256_set1_epi16(0x09));
        _mm256_or_si256(_mm256_or_si256(ascii, latin), tab)
    }

    #[target_feature(enable = "avx2")]
    fn units64_avx2(chunk: &[u8; 128]) -> u64 {
        let mut v = 0u64;
        for k in 0..2 {
            let lo = printable16(load(chunk, 64 * k));
            let hi = printable16(load(chunk, 64 * k + 32));
            // Narrowed to bytes within each 128-bit half (lo's first 8 units,
            // hi's first 8, lo's last 8, hi's last 8), then the middle quarters
            // swapped: 32 units in order.
            let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi16(lo, hi));
            v |= gather(packed) << (32 * k);
        }
        v
    }
}

/// Word `w` (64 positions of `width` bytes each) of `bytes`, zero past its end.
fn word_of<const N: usize>(bytes: &[u8], w: usize) -> std::borrow::Cow<'_, [u8; N]> {
    let rest = &bytes[(N * w).min(bytes.len())..];
    match rest.get(..N) {
        Some(whole) => std::borrow::Cow::Borrowed(whole.try_into().expect("N bytes")),
        None => {
            let mut padded = [0u8; N];
            padded[..rest.len()].copy_from_slice(rest);
            std::borrow::Cow::Owned(padded)
        }
    }
}

/// A bit per position of a buffer, 64 to a word.
struct Bits(Vec<u64>);

impl Bits {
    /// A bit per byte of `bytes` for each class of [`CLASS`]: printable ASCII,
    /// 2-byte UTF-8 lead, continuation.
    #[cfg(test)]
    fn classes(bytes: &[u8]) -> [Bits; 3] {
        let mut sets: [Vec<u64>; 3] = Default::default();
        for w in 0..bytes.len().div_ceil(64) {
            for (set, word) in sets.iter_mut().zip(classes64(&word_of::<64>(bytes, w))) {
                set.push(word);
            }
        }
        sets.map(Bits)
    }

    /// The UTF-8 reading of `bytes`: a bit per byte that is printable (ASCII or
    /// tab, or either byte of a 2-byte Latin letter), and a bit per byte that
    /// leads such a letter.
    fn utf8(bytes: &[u8]) -> (Bits, Bits) {
        #[cfg(target_arch = "x86_64")]
        if let Some(bits) = avx2::utf8(bytes) {
            return bits;
        }
        Bits::utf8_with(bytes, classes64)
    }

    /// [`Bits::utf8`] with `classes64` for [`classes64`] (inlined, so the loop is
    /// compiled with the caller's target features).
    #[inline(always)]
    fn utf8_with(bytes: &[u8], classes64: impl Fn(&[u8; 64]) -> [u64; 3]) -> (Bits, Bits) {
        let words = bytes.len().div_ceil(64);
        let (mut printable, mut pair_lead) = (Vec::with_capacity(words), Vec::with_capacity(words));
        let classes = |w: usize| {
            if w < words {
                classes64(&word_of::<64>(bytes, w))
            } else {
                [0; 3]
            }
        };
        // A lead counts with the continuation byte after it (the next word's
        // first), which counts with it (the previous word's last).
        let (mut now, mut carry) = (classes(0), 0u64);
        for w in 0..words {
            let next = classes(w + 1);
            let [ascii, lead, cont] = now;
            let leads = lead & ((cont >> 1) | (next[2] << 63));
            printable.push(ascii | leads | (leads << 1) | carry);
            pair_lead.push(leads);
            carry = leads >> 63;
            now = next;
        }
        (Bits(printable), Bits(pair_lead))
    }

    /// A bit per whole UTF-16LE unit of `bytes`: whether it is printable
    /// (0x20..=0x7e, 0x09, 0xa0..=0x17f).
    fn printable_units(bytes: &[u8]) -> Bits {
        #[cfg(target_arch = "x86_64")]
        if let Some(bits) = avx2::printable_units(bytes) {
            return bits;
        }
        Bits::printable_units_with(bytes, units64)
    }

    /// [`Bits::printable_units`] with `units64` for [`units64`] (inlined, as
    /// [`Bits::utf8_with`]).
    #[inline(always)]
    fn printable_units_with(bytes: &[u8], units64: impl Fn(&[u8; 128]) -> u64) -> Bits {
        let bytes = &bytes[..bytes.len() / 2 * 2];
        let words = bytes.len().div_ceil(128);
        Bits(
            (0..words)
                .map(|w| units64(&word_of::<128>(bytes, w)))
                .collect(),
        )
    }

    /// Whether bit `i` is set.
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// How many bits of `r` are set.
    fn count(&self, r: Range<usize>) -> usize {
        if r.is_empty() {
            return 0;
        }
        let (first, last) = (r.start / 64, (r.end - 1) / 64);
        (first..=last)
            .map(|w| {
                let mut word = self.0.get(w).copied().unwrap_or(0);
                if w == first {
                    word &= !0u64 << (r.start % 64);
                }
                if w == last {
                    word &= !0u64 >> (63 - (r.end - 1) % 64);
                }
                word.count_ones() as usize
            })
            .sum()
    }

    /// The positions of runs of [`MIN_RUN`] or more set bits kept; the others
    /// cleared.
    fn long_runs(&self) -> Bits {
        const { assert!(MIN_RUN >= 1 && MIN_RUN <= 64) };
        let w = &self.0;
        let mut prev_starts = 0u64;
        Bits(
            (0..w.len())
                .map(|i| {
                    // Where MIN_RUN set bits in a row start: bit i and the
                    // MIN_RUN - 1 after it (reaching into the next word).
                    let pair =
                        u128::from(w[i]) | u128::from(w.get(i + 1).copied().unwrap_or(0)) << 64;
                    let starts = (0..MIN_RUN).fold(!0u128, |acc, k| acc & (pair >> k)) as u64;
                    // Each start spread over the MIN_RUN - 1 bits after it (from the
                    // word before).
                    let pair = u128::from(prev_starts) | u128::from(starts) << 64;
                    prev_starts = starts;
                    ((0..MIN_RUN).fold(0u128, |acc, k| acc | (pair << k)) >> 64) as u64
                })
                .collect(),
        )
    }

    /// The maximal runs of set bits, in order.
    fn runs(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let words = &self.0;
        let mut pos = 0usize;
        std::iter::from_fn(move || {
            // The next set bit.
            let mut w = pos / 64;
            let mut word = *words.get(w)? & (!0u64).checked_shl((pos % 64) as u32).unwrap_or(0);
            while word == 0 {
                w += 1;
                word = *words.get(w)?;
            }
            let start = w * 64 + word.trailing_zeros() as usize;
            // The next clear bit after it.
            let mut e = start / 64;
            let mut inverted = !words[e] & (!0u64).checked_shl((start % 64) as u32).unwrap_or(0);
            while inverted == 0 {
                e += 1;
                match words.get(e) {
                    Some(next) => inverted = !next,
                    None => {
                        pos = words.len() * 64;
                        return Some(start..pos);
                    }
                }
            }
            let end = e * 64 + inverted.trailing_zeros() as usize;
            pos = end;
            Some(start..end)
        })
    }
}
/// Whether byte `i` of `seg` is printable as [`for_each_run`] reads `seg`:
/// ASCII or tab, or one of a 2-byte UTF-8 Latin letter.
fn utf8_printable(seg: &[u8], i: usize) -> bool {
    let class = |j: usize| seg.get(j).map_or(0, |&b| CLASS[b as usize]);
    let c = class(i);
    c == ASCII
        || (c == LEAD && class(i + 1) == CONT)
        || (c == CONT && i > 0 && class(i - 1) == LEAD)
}

/// Whether the UTF-16LE unit at bytes `i`, `i + 1` of `seg` is printable (and
/// whole).
fn unit_printable(seg: &[u8], i: usize) -> bool {
    match (seg.get(i), seg.get(i + 1)) {
        (Some(&lo), Some(&hi)) => {
            let u = u16::from_le_bytes([lo, hi]);
            matches!(u, 0x20..=0x7e | 0x09 | 0xa0..=0x17f)
        }
        _ => false,
    }
}

/// Whether [`for_each_run`] of `seg[..p]` and then of `seg[p..]` finds exactly
/// the runs of `seg` (`p` even, so both UTF-16 alignments stay as they were):
/// no run of any encoding crosses `p`. Reads `seg[p - 2..p + 2]`.
pub(crate) fn splits_no_run(seg: &[u8], p: usize) -> bool {
    debug_assert!(p.is_multiple_of(2));
    if p == 0 || p >= seg.len() {
        return true;
    }
    let utf8 = !(utf8_printable(seg, p - 1) && utf8_printable(seg, p));
    let even = p < 2 || !(unit_printable(seg, p - 2) && unit_printable(seg, p));
    let odd = !unit_printable(seg, p - 1);
    utf8 && even && odd
}

/// Positions (bytes, or UTF-16 units) classified at once: the bit sets of a
/// window take an eighth of it each, so a 200 MB dump is scanned in bounded
/// memory. A run that reaches a window's end is taken up again by the next one
/// from its start, so windows never split a run.
const WINDOW: usize = 1 << 20;

/// Calls `f` for each run of printable text of at least [`MIN_RUN`] characters in
/// `buf`: ASCII/UTF-8 runs, then UTF-16LE runs at even and at odd offsets.
pub(crate) fn for_each_run(buf: &[u8], f: impl FnMut(&TextRun<'_>)) {
    for_each_run_in_windows(buf, WINDOW, f);
}

/// Where the runs of a window that classified `len` positions as `printable`
/// are complete: before the run that reaches its end (unless the window ends the
/// input), else all of it. 0 when one run fills the window.
fn complete_before(printable: &Bits, len: usize, input_ends: bool) -> usize {
    if input_ends || len == 0 || !printable.get(len - 1) {
        return len;
    }
    let mut start = len - 1;
    while start > 0 && printable.get(start - 1) {
        start -= 1;
    }
    start
}

/// Walks `len` positions in windows of about `window`, never splitting a run:
/// `classify(at, end)` gives the printable bits of positions `at..end` (bit `i`
/// is position `at + i`) with what else the window needs, and `complete(at,
/// done, printable, extra)` takes the window's runs that start before `done`.
fn in_windows<T>(
    len: usize,
    window: usize,
    mut classify: impl FnMut(usize, usize) -> (Bits, T),
    mut complete: impl FnMut(usize, usize, &Bits, &T),
) {
    let window = window.max(1);
    let (mut at, mut width) = (0, window);
    while at < len {
        let end = (at + width).min(len);
        let (printable, extra) = classify(at, end);
        let done = complete_before(&printable, end - at, end == len);
        if done == 0 {
            // One run fills the window: look at more of it at once.
            width *= 2;
            continue;
        }
        complete(at, done, &printable, &extra);
        at += done;
        width = window;
    }
}

/// [`for_each_run`], classifying at most about `window` positions at once.
fn for_each_run_in_windows(buf: &[u8], window: usize, mut f: impl FnMut(&TextRun<'_>)) {
    let n = buf.len();
    // ASCII and 2-byte UTF-8 (Latin letters in names): a lead byte counts with
    // the continuation byte after it. The classes don't overlap, so the pairs are
    // the same whichever way the buffer is read.
    in_windows(
        n,
        window,
        |at, end| {
            // One byte more: whether the window's last byte leads a pair.
            Bits::utf8(&buf[at..(end + 1).min(n)])
        },
        |at, done, printable, pair_lead| {
            // A run of MIN_RUN characters is at least MIN_RUN bytes long.
            for r in printable.long_runs().runs() {
                if r.start >= done {
                    break;
                }
                let local = r.start..r.end.min(done);
                let pairs = pair_lead.count(local.clone());
                let r = at + local.start..at + local.end;
                if r.len() - pairs >= MIN_RUN
                    && let Ok(text) = std::str::from_utf8(&buf[r.clone()])
                {
                    f(&TextRun {
                        start: r.start,
                        encoding: Encoding::Utf8,
                        text,
                        units: &[],
                    });
                }
            }
        },
    );
    // UTF-16LE at both alignments: unit j of alignment `align` is the two bytes
    // at `align + 2j`. Each run is decoded into the same two buffers.
    let (mut text, mut unit_of) = (String::new(), Vec::new());
    for align in 0..2 {
        let units = n.saturating_sub(align) / 2;
        in_windows(
            units,
            window,
            |at, end| {
                let bytes = &buf[align + 2 * at..align + 2 * end];
                (Bits::printable_units(bytes), ())
            },
            |at, done, printable, ()| {
                for r in printable.long_runs().runs() {
                    if r.start >= done {
                        break;
                    }
                    let (first, count) = (at + r.start, r.end.min(done) - r.start);
                    let start = align + 2 * first;
                    decode_utf16(&buf[start..start + 2 * count], &mut text, &mut unit_of);
                    f(&TextRun {
                        start,
                        encoding: Encoding::Utf16Le,
                        text: &text,
                        units: &unit_of,
                    });
                }
            },
        );
    }
}

/// Decodes the UTF-16LE units `bytes` (printable, so none is a surrogate) into
/// `text`, and into `units` the unit index of each byte of `text` plus one past
/// the end, or nothing when every unit is ASCII (see [`TextRun::buffer_range`]).
fn decode_utf16(bytes: &[u8], text: &mut String, units: &mut Vec<u32>) {
    text.clear();
    units.clear();
    let pairs = bytes.chunks_exact(2);
    if pairs
        .clone()
        .all(|p| u16::from_le_bytes([p[0], p[1]]) < 0x80)
    {
        // Each unit's low byte is its character.
        let mut ascii = std::mem::take(text).into_bytes();
        ascii.extend(pairs.map(|p| p[0]));
        *text = String::from_utf8(ascii).expect("ASCII is UTF-8");
        return;
    }
    let count = bytes.len() / 2;
    for (idx, pair) in pairs.enumerate() {
        let u = u16::from_le_bytes([pair[0], pair[1]]);
        let c = char::from_u32(u32::from(u)).unwrap_or('?');
        for _ in 0..c.len_utf8() {
            units.push(idx as u32);
        }
        text.push(c);
    }
    units.push(count as u32);
}

/// The plain scan the bit sets must agree with: left to right, a byte (or a
/// UTF-16 unit) at a time.
#[cfg(any(test, fuzzing))]
fn plain_runs(buf: &[u8]) -> Vec<(Encoding, usize, String)> {
    let mut out = Vec::new();
    let n = buf.len();
    let mut i = 0;
    while i < n {
        let start = i;
        let mut chars = 0;
        while i < n {
            let b = buf[i];
            if (0x20..=0x7e).contains(&b) || b == 0x09 {
                i += 1;
                chars += 1;
            } else if (0xc2..=0xc5).contains(&b) && i + 1 < n && (0x80..=0xbf).contains(&buf[i + 1])
            {
                i += 2;
                chars += 1;
            } else {
                break;
            }
        }
        if chars >= MIN_RUN
            && let Ok(text) = std::str::from_utf8(&buf[start..i])
        {
            out.push((Encoding::Utf8, start, text.to_owned()));
        }
        if i == start {
            i += 1;
        }
    }
    for align in 0..2 {
        let mut i = align;
        while i + 1 < n {
            let start = i;
            while i + 1 < n && printable_unit(u16::from_le_bytes([buf[i], buf[i + 1]])) {
                i += 2;
            }
            if (i - start) / 2 >= MIN_RUN {
                let units: Vec<u16> = buf[start..i]
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]))
                    .collect();
                out.push((Encoding::Utf16Le, start, String::from_utf16_lossy(&units)));
            }
            if i == start {
                i += 2;
            }
        }
    }
    out
}

/// The runs [`for_each_run`] finds in `buf`, checked to be the same found a
/// window at a time ([`for_each_run_in_windows`], windows shorter and longer
/// than runs).
#[cfg(any(test, fuzzing))]
fn runs(buf: &[u8]) -> Vec<(Encoding, usize, String)> {
    let mut out = Vec::new();
    for_each_run(buf, |r| out.push((r.encoding, r.start, r.text.to_string())));
    // The same in small windows: runs across their edges, longer than them.
    let windows: &[usize] = if buf.len() <= 100_000 {
        &[1, 3, 64, 100]
    } else {
        &[4096]
    };
    for &window in windows {
        let mut windowed = Vec::new();
        for_each_run_in_windows(buf, window, |r| {
            windowed.push((r.encoding, r.start, r.text.to_string()))
        });
        assert_eq!(windowed, out, "window {window}");
    }
    out
}

/// The fast scan's promise, checked: the runs of `buf` are those of the plain
/// scan, whole or a window at a time; panics where they are not. For the tests
/// and the fuzz target `scrub_text`.
#[cfg(any(test, fuzzing))]
pub(crate) fn assert_runs_of_a_plain_scan(buf: &[u8]) {
    assert_eq!(runs(buf), plain_runs(buf), "{buf:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 64 bytes of `bytes`, zero after its end.
    fn word64(bytes: &[u8]) -> [u8; 64] {
        *word_of::<64>(bytes, 0)
    }

    /// The first 128 bytes of `bytes`, zero after its end.
    fn word128(bytes: &[u8]) -> [u8; 128] {
        *word_of::<128>(bytes, 0)
    }

    #[test]
    fn the_byte_classes_are_the_table() {
        // Every byte in every lane of a 32-byte AVX2 compare (and so of a
        // 16-byte SSE2 and an 8-byte SWAR one), among other bytes and among its
        // own kind.
        for b in 0..=255u8 {
            for lane in 0..32 {
                let mut bytes = [0x41u8; 32];
                bytes[lane] = b;
                let mut buf = bytes.to_vec();
                buf.extend_from_slice(&[b; 32]);
                let [a, l, c] = Bits::classes(&buf);
                let class = CLASS[b as usize];
                assert_eq!(a.get(lane), class == ASCII, "{b:#x} in lane {lane}");
                assert_eq!(l.get(lane), class == LEAD, "{b:#x} in lane {lane}");
                assert_eq!(c.get(lane), class == CONT, "{b:#x} in lane {lane}");
                // The neighbours are read for what they are.
                assert!(a.get((lane + 1) % 32) || lane == 31);
                for k in 32..64 {
                    assert_eq!(a.get(k), class == ASCII, "{b:#x} at {k}");
                }
                let word = word64(&buf);
                assert_eq!(swar::classes64(&word), classes64(&word), "{b:#x}");
                #[cfg(target_arch = "x86_64")]
                if let Some(classes) = avx2::classes64(&word) {
                    assert_eq!(classes, classes64(&word), "{b:#x}");
                }
            }
        }
    }

    #[test]
    fn the_branchless_unit_test_is_printable_unit() {
        for u in 0..=u16::MAX {
            for lane in 0..8 {
                let mut units = [0x41u16; 8];
                units[lane] = u;
                let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
                let bits = Bits::printable_units(&bytes);
                assert_eq!(bits.get(lane), printable_unit(u), "{u:#x} in lane {lane}");
                let word = word128(&bytes);
                let sse2 = units64(&word);
                assert_eq!(swar::units64(&word), sse2, "{u:#x} in lane {lane}");
                #[cfg(target_arch = "x86_64")]
                if let Some(units) = avx2::units64(&word) {
                    assert_eq!(units, sse2, "{u:#x} in lane {lane}");
                }
            }
        }
    }

    /// Bytes at and beside the class edges: tab, printable ASCII, the UTF-8
    /// continuation and lead ranges; as UTF-16LE units with high bytes 0x00, 0x01
    /// and others, also 0x9f/0xa0, 0x17f/0x180, 0x7e/0x7f/0x80.
    const EDGES: [u8; 22] = [
        0x00, 0x01, 0x02, 0x08, 0x09, 0x0a, 0x1f, 0x20, 0x41, 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xbf,
        0xc0, 0xc1, 0xc2, 0xc5, 0xc6, 0xe9, 0xff,
    ];

    #[test]
    fn the_same_classes_and_runs_at_every_length_and_offset() {
        let mut next = crate::scrub::test_support::xorshift(0x2545_f491_4f6c_dd1d);
        for len in 0..300 {
            for round in 0..4 {
                // Any edge byte; mostly text with edges between; UTF-16 units of
                // edge bytes, their high byte mostly 0 or 1; 2-byte letters.
                let mut draw = |i: usize| -> u8 {
                    let edge = EDGES[next() as usize % EDGES.len()];
                    match round {
                        0 => edge,
                        1 if !next().is_multiple_of(4) => b'a' + (next() % 26) as u8,
                        2 if i % 2 == 1 => [0, 0, 1, 1, edge][next() as usize % 5],
                        3 if next().is_multiple_of(3) => 0xc2 + (next() % 4) as u8,
                        3 if next().is_multiple_of(2) => 0x80 + (next() % 64) as u8,
                        _ => edge,
                    }
                };
                let buf: Vec<u8> = (0..len + 8).map(&mut draw).collect();
                for offset in 0..8 {
                    let seg = &buf[offset..offset + len];
                    let [a, l, c] = Bits::classes(seg);
                    for (i, &b) in seg.iter().enumerate() {
                        let class = CLASS[b as usize];
                        assert_eq!(
                            [a.get(i), l.get(i), c.get(i)],
                            [class == ASCII, class == LEAD, class == CONT],
                            "len {len}, offset {offset}, byte {i}"
                        );
                    }
                    assert!(!a.get(len) && !l.get(len) && !c.get(len));
                    let units = Bits::printable_units(seg);
                    for (i, pair) in seg.chunks_exact(2).enumerate() {
                        let u = u16::from_le_bytes([pair[0], pair[1]]);
                        assert_eq!(units.get(i), printable_unit(u), "len {len}, unit {i}");
                    }
                    assert!(!units.get(len / 2));
                    // The bit sets of a window the same on every path.
                    let utf8 = Bits::utf8(seg);
                    let swar = Bits::utf8_with(seg, swar::classes64);
                    assert_eq!((&utf8.0.0, &utf8.1.0), (&swar.0.0, &swar.1.0));
                    #[cfg(target_arch = "x86_64")]
                    {
                        avx2::OFF.set(true);
                        let sse2 = Bits::utf8(seg);
                        assert_eq!((&sse2.0.0, &sse2.1.0), (&swar.0.0, &swar.1.0));
                        assert_eq!(Bits::printable_units(seg).0, units.0, "len {len}");
                        avx2::OFF.set(false);
                    }
                    for w in 0..len.div_ceil(64) {
                        let word = *word_of::<64>(seg, w);
                        assert_eq!(swar::classes64(&word), classes64(&word));
                        #[cfg(target_arch = "x86_64")]
                        if let Some(classes) = avx2::classes64(&word) {
                            assert_eq!(classes, classes64(&word));
                        }
                        let word = *word_of::<128>(seg, w);
                        assert_eq!(swar::units64(&word), units64(&word));
                        #[cfg(target_arch = "x86_64")]
                        if let Some(units) = avx2::units64(&word) {
                            assert_eq!(units, units64(&word));
                        }
                    }
                    let plain = plain_runs(seg);
                    assert_eq!(
                        runs(seg),
                        plain,
                        "len {len}, round {round}, offset {offset}"
                    );
                    #[cfg(target_arch = "x86_64")]
                    {
                        // The same without AVX2, where the CPU has it.
                        avx2::OFF.set(true);
                        let sse2 = runs(seg);
                        avx2::OFF.set(false);
                        assert_eq!(
                            sse2, plain,
                            "SSE2: len {len}, round {round}, offset {offset}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn runs_in_both_encodings() {
        let mut buf = b"\0\0HOME=/home/bob\0\x02".to_vec();
        for u in "USER=bob".encode_utf16() {
            buf.extend_from_slice(&u.to_le_bytes());
        }
        let seen = runs(&buf);
        assert!(seen.contains(&(Encoding::Utf8, 2, "HOME=/home/bob".into())));
        assert!(seen.contains(&(Encoding::Utf16Le, 18, "USER=bob".into())));
        assert_eq!(seen, plain_runs(&buf));
    }

    #[test]
    fn utf16_text_ranges_map_back_to_the_buffer() {
        let mut buf = vec![0xffu8];
        for text in ["AppData", "Zoë Ł x"] {
            for u in text.encode_utf16() {
                buf.extend_from_slice(&u.to_le_bytes());
            }
            buf.extend_from_slice(&[0xff, 0xff]);
        }
        let mut seen = Vec::new();
        for_each_run(&buf, |run| {
            if run.encoding == Encoding::Utf16Le {
                let whole = run.buffer_range(&(0..run.text.len()));
                let last = run.text.char_indices().last().expect("text").0;
                let tail = run.buffer_range(&(last..run.text.len()));
                seen.push((run.text.to_owned(), whole, tail));
            }
        });
        assert_eq!(
            seen,
            [
                ("AppData".to_owned(), 1..15, 13..15),
                ("Zoë Ł x".to_owned(), 17..31, 29..31),
            ]
        );
    }

    #[test]
    fn runs_at_word_edges_and_the_ends_of_the_buffer() {
        for len in [0, 1, 3, 4, 5, 63, 64, 65, 127, 128, 129, 200] {
            for at in [0usize, 1, 59, 60, 61, 62, 63, 64, 65, 120, 127] {
                let mut buf = vec![0u8; len];
                for (k, b) in b"abcdefgh".iter().enumerate() {
                    if let Some(slot) = buf.get_mut(at + k) {
                        *slot = *b;
                    }
                }
                assert_eq!(runs(&buf), plain_runs(&buf), "len {len}, text at {at}");
            }
            let all = vec![b'x'; len];
            assert_eq!(runs(&all), plain_runs(&all), "len {len}, all text");
        }
    }

    #[test]
    fn two_byte_letters_count_once_and_pair_only_with_what_follows() {
        let cases: [&[u8]; 6] = [
            "Zoë Sørensen".as_bytes(),
            "ëëë".as_bytes(),
            "ëëëë".as_bytes(),
            b"\xc2\xc2\x80abc",
            b"ab\xc2\x80\x80cd",
            b"\xc5\xbf\xc5\xbf\xc5\xbf\xc5",
        ];
        for buf in cases {
            assert_runs_of_a_plain_scan(buf);
        }
        assert_eq!(runs("ëëë".as_bytes()), []);
    }

    #[test]
    fn the_same_runs_as_a_plain_scan_over_mixed_bytes() {
        // A deterministic mix of binary noise, ASCII, UTF-8 letters and UTF-16
        // strings at both alignments, as captured memory holds them.
        let mut next = crate::scrub::test_support::xorshift(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            let mut buf = Vec::new();
            while buf.len() < 2000 + round * 7 {
                match next() % 6 {
                    0 => buf.extend((0..next() % 40).map(|_| next() as u8)),
                    1 => buf.extend_from_slice(b"USER=someone /home/kevin/x "),
                    2 => buf.extend_from_slice("Grüße ŁódŹ".as_bytes()),
                    3 => {
                        if next().is_multiple_of(2) {
                            buf.push(0);
                        }
                        for u in "C:\\Users\\Zoë\\AppData".encode_utf16() {
                            buf.extend_from_slice(&u.to_le_bytes());
                        }
                    }
                    4 => buf.extend((0..next() % 9).map(|_| 0x20 + (next() % 0x60) as u8)),
                    _ => buf.extend((0..next() % 12).map(|_| 0xc0 + (next() % 8) as u8)),
                }
            }
            assert_eq!(runs(&buf), plain_runs(&buf), "round {round}");
        }
    }

    #[test]
    fn every_testdata_dump_has_the_runs_of_a_plain_scan() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
        let mut checked = 0;
        for case in std::fs::read_dir(&dir).expect("testdata").flatten() {
            for file in std::fs::read_dir(case.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if file.path().extension().is_some_and(|e| e == "dmp") {
                    let buf = std::fs::read(file.path()).unwrap();
                    assert!(runs(&buf) == plain_runs(&buf), "{}", file.path().display());
                    checked += 1;
                }
            }
        }
        assert!(checked >= 13, "{checked} dumps");
    }
}
