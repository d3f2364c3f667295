//! Scrubbing a dump too large to hold in memory whole: the same rules as
//! [`scrub_and_cut_stack_memory`](super::scrub_and_cut_stack_memory), with the
//! dump's bytes taken in a piece at a time.
//!
//! The caller gives a buffer as long as the dump whose untouched bytes cost no
//! memory (an anonymous mapping) and [`DumpPages`], which fills a range of it
//! from wherever the dump waits and gives pages back. Then:
//!
//! 1. the structure: the header, the directory and the streams, then the dump's
//!    layout read from them; then every byte outside the captured memory
//!    regions, a window at a time, keeping only the non-zero blocks (at most
//!    [`WindowLimits::max_structure`] bytes), and the layout read again (thread
//!    contexts, strings: what the directory points to);
//! 2. names learned (`learn_names`) over every window of the file, each given
//!    back after;
//! 3. the structure scrubbed where it lies, as a whole dump is;
//! 4. the file in order, part by part of the text segments: a window's memory
//!    filled, heap zeroed, text scrubbed, the window handed on
//!    ([`WindowedScrub`]'s output, the stack memory cut out unless it is more
//!    than [`WindowLimits::max_stacks`]), its pages given back.
//!
//! Text findings lie inside printable runs, and a run never crosses a segment,
//! so a window ends only where no run crosses (`runs::splits_no_run`): the
//! runs, and so the findings, are those of the whole dump. The result is byte
//! for byte that of the whole-dump scrub (the tests compare them on every test
//! dump with windows of 4 KiB). Two limits differ, both only on dumps no writer
//! makes: a run longer than [`WindowLimits::max_run`] is zeroed whole (counted as
//! `long_text_run_bytes`), and a dump whose structure points into its own
//! memory regions is scrubbed by the layout read without those regions' bytes.

use std::io;
use std::ops::Range;

use super::layout::{Layout, RangeSet, RegionKind, SavedHeader, merge_ranges};
use super::memory::{Context, Crowding, Learned, TextRules, scrub_text_in, text_segments};
use super::stack::{CutStacks, StackHoles, stack_ranges};
use super::{known_values, scrub_structure};
use crate::scrub::config::ScrubConfig;
use crate::scrub::error::ScrubError;
use crate::scrub::runs::splits_no_run;
use crate::scrub::summary::ScrubSummary;
use crate::scrub::text::KnownValues;

/// Bytes beyond a window that are read with it: the UTF-8 and UTF-16
/// look-ahead of a cut, and a pointer-sized word the unwinder reads that
/// straddles the window's end.
const MARGIN: usize = 8;
/// Blocks of the structure counted by their content: a block of zeros costs
/// nothing and is given back.
const BLOCK: usize = 4096;
/// Pages given back lag behind what is done by this much, so pages a window
/// boundary splits are given back with the next one.
const SLACK: usize = 64 * 1024;

/// Where a windowed scrub gets the dump's bytes, and gives memory back.
pub trait DumpPages {
    /// Fills `buf` with the dump's bytes at `offset..offset + buf.len()`.
    ///
    /// # Errors
    /// When they cannot be read: the scrub stops with [`ScrubError::Io`].
    fn fill(&mut self, offset: usize, buf: &mut [u8]) -> io::Result<()>;

    /// Nothing in `buf` is read again before it is filled again: whole pages in
    /// it may be given back (they read as zeros after).
    fn release(&mut self, buf: &mut [u8]);
}

/// Sizes of a windowed scrub.
#[derive(Debug, Clone, Copy)]
pub struct WindowLimits {
    /// Bytes taken in at a time (about: a window ends where no text run
    /// crosses).
    pub window: usize,
    /// The longest text run kept whole; a longer one is zeroed.
    pub max_run: usize,
    /// The most bytes of the dump's structure (what is outside its memory
    /// regions, blocks of zeros not counted) held at once.
    pub max_structure: usize,
    /// The most bytes of stack memory cut out and held; beyond it the stacks
    /// stay in the dump.
    pub max_stacks: usize,
}

/// What a windowed scrub did.
#[derive(Debug)]
pub struct WindowedScrub {
    /// What was scrubbed.
    pub summary: ScrubSummary,
    /// The stack memory cut out of the dump handed on; `None` when it stayed in
    /// it (more than [`WindowLimits::max_stacks`]).
    pub stacks: Option<CutStacks>,
}

/// Scrubs the dump of `buf.len()` bytes that `pages` fills into `buf`, a window
/// at a time, with `config`, and hands the scrubbed dump to `out` in order, its
/// stack memory cut out: the same bytes, summary and stacks
/// [`scrub_and_cut_stack_memory`](super::scrub_and_cut_stack_memory) gives for
/// the whole dump (see the module docs for the two limits). `buf` should start
/// zero; it ends holding no more than a few pages of the dump.
///
/// # Errors
/// [`ScrubError::Unreadable`] when the dump has no readable header and
/// directory (nothing handed on then); [`ScrubError::Io`] when `pages` or `out`
/// fail; [`ScrubError::NotWindowed`] when its structure is more than
/// [`WindowLimits::max_structure`] or its layout changes once read whole (before
/// anything is handed on: the caller may scrub it whole instead).
pub fn scrub_minidump_windowed(
    buf: &mut [u8],
    pages: &mut impl DumpPages,
    out: &mut impl FnMut(&[u8]) -> io::Result<()>,
    config: &ScrubConfig,
    limits: &WindowLimits,
) -> Result<WindowedScrub, ScrubError> {
    let limits = WindowLimits {
        window: limits.window.max(2) & !1,
        max_run: limits.max_run.max(limits.window).max(2) & !1,
        ..*limits
    };
    let (layout, regions) = read_structure(buf, pages, &limits)?;
    let mut windows = Windows {
        pages,
        regions: &regions,
        heap: if config.heap_memory {
            layout.ranges_of(RegionKind::Heap)
        } else {
            Vec::new()
        },
        heap_nonzero: Vec::new(),
        zero_heap: false,
        limits,
    };
    windows.heap_nonzero = vec![false; windows.heap.len()];
    let mut summary = ScrubSummary::default();

    // Names to mask everywhere, learned before anything is rewritten.
    let crowding = Crowding::new(buf.len());
    let known = if config.user_names {
        known_values(windows.learn_names(buf, config, &crowding)?, config)
    } else {
        KnownValues::default()
    };
    let header = SavedHeader::of(buf);
    let protected = scrub_structure(buf, &layout, config, &mut summary);
    header.put_back(buf, 0..buf.len());
    windows.zero_heap = true;
    let rules = TextRules {
        layout: &layout,
        config,
        known: &known,
        protected: RangeSet::new(protected),
        crowding: &crowding,
    };

    let holes = stack_ranges(buf, &layout);
    let cut = holes.iter().map(Range::len).sum::<usize>() <= limits.max_stacks;
    let mut cutter = Cutter {
        holes: if cut { holes } else { Vec::new() },
        next: 0,
        stacks: Vec::new(),
        out,
    };
    let mut released = 0;
    for (seg, ctx) in text_segments(&layout, config, buf.len()) {
        let mut at = seg.start;
        let mut in_long_run = false;
        while at < seg.end {
            let end = if ctx == Context::Zeroed || !rules.any() {
                let end = (at + limits.window).min(seg.end);
                windows.prepare(buf, at..end)?;
                end
            } else {
                let (end, is_cut) = windows.next_cut(buf, &seg, at, in_long_run)?;
                let zero = in_long_run || !is_cut;
                in_long_run = !is_cut;
                if zero {
                    buf[at..end].fill(0);
                    summary.add("long_text_run_bytes", (end - at) as u64);
                } else {
                    scrub_text_in(buf, at..end, ctx, &rules, &mut summary);
                }
                end
            };
            header.put_back(buf, at..end);
            cutter.emit(at, &buf[at..end])?;
            let done = end.saturating_sub(MARGIN);
            let from = released.min(done).saturating_sub(SLACK);
            windows.pages.release(&mut buf[from..done]);
            released = released.max(done);
            at = end;
        }
    }
    windows
        .pages
        .release(&mut buf[released.saturating_sub(SLACK)..]);
    for (r, nonzero) in windows.heap.iter().zip(&windows.heap_nonzero) {
        if *nonzero {
            summary.add("heap_memory_regions", 1);
            summary.add("heap_memory_bytes", r.len() as u64);
        }
    }
    let stacks = cut.then(|| CutStacks {
        holes: StackHoles::from_ranges(cutter.holes),
        bytes: cutter.stacks,
    });
    Ok(WindowedScrub { summary, stacks })
}

/// Fills the dump's structure into `buf` and reads its layout: returns it and
/// the merged file ranges of its memory regions (not filled).
fn read_structure(
    buf: &mut [u8],
    pages: &mut impl DumpPages,
    limits: &WindowLimits,
) -> Result<(Layout, Vec<Range<usize>>), ScrubError> {
    let len = buf.len();
    let too_large = || ScrubError::NotWindowed("its structure is too large");
    pages.fill(0, &mut buf[..32.min(len)])?;
    let big_endian = buf.get(..4) != Some(b"MDMP".as_slice());
    let u32_at = |buf: &[u8], at: usize| -> usize {
        let Some(b) = at
            .checked_add(4)
            .and_then(|end| buf.get(at..end))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        else {
            return 0;
        };
        if big_endian {
            u32::from_be_bytes(b) as usize
        } else {
            u32::from_le_bytes(b) as usize
        }
    };
    // The directory, then the streams it lists (as `Layout::read` reads them).
    let (count, dir) = (u32_at(buf, 8), u32_at(buf, 12));
    let dir_range = dir.min(len)..dir.saturating_add(count.saturating_mul(12)).min(len);
    if dir_range.len() > limits.max_structure {
        return Err(too_large());
    }
    pages.fill(dir_range.start, &mut buf[dir_range.clone()])?;
    let mut streams = Vec::new();
    for i in 0..count.min(len / 12) {
        let at = dir + i * 12;
        if at + 12 > len {
            break;
        }
        let (size, rva) = (u32_at(buf, at + 4), u32_at(buf, at + 8));
        let start = rva.min(len);
        streams.push(start..start.saturating_add(size).min(len));
    }
    merge_ranges(&mut streams);
    if streams.iter().map(Range::len).sum::<usize>() > limits.max_structure {
        return Err(too_large());
    }
    for r in streams {
        pages.fill(r.start, &mut buf[r])?;
    }
    let regions = region_ranges(&Layout::read(buf)?);

    // Everything else, a window at a time; blocks of zeros given back.
    let mut held = 0usize;
    let mut pos = 0;
    for gap in complement(&regions, len) {
        pos = pos.max(gap.start);
        while pos < gap.end {
            let end = (pos + limits.window).min(gap.end);
            pages.fill(pos, &mut buf[pos..end])?;
            let mut block = pos;
            while block < end {
                let block_end = ((block / BLOCK + 1) * BLOCK).min(end);
                let bytes = &mut buf[block..block_end];
                if bytes.iter().all(|&b| b == 0) {
                    pages.release(bytes);
                } else {
                    held += bytes.len();
                }
                block = block_end;
            }
            if held > limits.max_structure {
                return Err(too_large());
            }
            pos = end;
        }
    }
    let layout = Layout::read(buf)?;
    if region_ranges(&layout) != regions {
        return Err(ScrubError::NotWindowed(
            "its layout changed once read whole",
        ));
    }
    Ok((layout, regions))
}

/// The merged file ranges of a layout's memory regions.
fn region_ranges(layout: &Layout) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = layout.regions.iter().map(|r| r.file.clone()).collect();
    merge_ranges(&mut ranges);
    ranges
}

/// What is not in `ranges` (sorted, apart) of `0..len`.
fn complement(ranges: &[Range<usize>], len: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 0;
    for r in ranges {
        if r.start > pos {
            out.push(pos..r.start.min(len));
        }
        pos = pos.max(r.end);
    }
    if pos < len {
        out.push(pos..len);
    }
    out.retain(|r| !r.is_empty());
    out
}

/// The parts of `ranges` (sorted, apart) inside `within`.
fn parts_in(ranges: &[Range<usize>], within: Range<usize>) -> impl Iterator<Item = Range<usize>> {
    let first = ranges.partition_point(|r| r.end <= within.start);
    ranges[first..]
        .iter()
        .take_while(move |r| r.start < within.end)
        .map(move |r| r.start.max(within.start)..r.end.min(within.end))
        .filter(|r| !r.is_empty())
}

/// The windows of a dump's memory: filled, heap zeroed, cut where no run
/// crosses.
struct Windows<'a, P> {
    pages: &'a mut P,
    /// The memory regions' file ranges, merged: what is filled per window.
    regions: &'a [Range<usize>],
    /// The heap regions to zero, merged, and whether each held anything.
    heap: Vec<Range<usize>>,
    heap_nonzero: Vec<bool>,
    /// Whether heap is zeroed yet (not while names are learned).
    zero_heap: bool,
    limits: WindowLimits,
}

impl<P: DumpPages> Windows<'_, P> {
    /// Fills the memory in `range`, and zeroes its heap (noting what held
    /// anything).
    fn prepare(&mut self, buf: &mut [u8], range: Range<usize>) -> io::Result<()> {
        for r in parts_in(self.regions, range.clone()) {
            self.pages.fill(r.start, &mut buf[r])?;
        }
        if !self.zero_heap {
            return Ok(());
        }
        let first = self.heap.partition_point(|h| h.end <= range.start);
        for (i, h) in self.heap.iter().enumerate().skip(first) {
            if h.start >= range.end {
                break;
            }
            let bytes = &mut buf[h.start.max(range.start)..h.end.min(range.end)];
            if bytes.iter().any(|&b| b != 0) {
                self.heap_nonzero[i] = true;
                bytes.fill(0);
            }
        }
        Ok(())
    }

    /// Where the window of `seg` from `at` ends, prepared to there (and a
    /// margin beyond): the last point no run crosses within a window, or
    /// within up to [`WindowLimits::max_run`] when one run fills a window.
    /// With `first`, the first such point (the end of a run being zeroed).
    /// Returns it and whether it is such a point (else one run fills all
    /// [`WindowLimits::max_run`] bytes: the caller zeroes them).
    fn next_cut(
        &mut self,
        buf: &mut [u8],
        seg: &Range<usize>,
        at: usize,
        first: bool,
    ) -> io::Result<(usize, bool)> {
        let mut want = self.limits.window;
        loop {
            let end = (at + want).min(seg.end);
            let reach = (end + MARGIN).min(seg.end);
            self.prepare(buf, at..reach)?;
            if end == seg.end {
                return Ok((end, true));
            }
            let view = &buf[seg.start..reach];
            let (lo, hi) = (at - seg.start, end - seg.start);
            let found = if first {
                (lo + 2..=hi).step_by(2).find(|&p| splits_no_run(view, p))
            } else {
                (lo + 2..=hi)
                    .rev()
                    .step_by(2)
                    .find(|&p| splits_no_run(view, p))
            };
            if let Some(p) = found {
                return Ok((seg.start + p, true));
            }
            if first || want >= self.limits.max_run {
                return Ok((end, false));
            }
            want = (want * 2).min(self.limits.max_run);
        }
    }

    /// The names and secret values the whole file reveals (`learn_names`),
    /// learned a window at a time.
    fn learn_names(
        &mut self,
        buf: &mut [u8],
        config: &ScrubConfig,
        crowding: &Crowding,
    ) -> io::Result<Vec<String>> {
        let mut learned = Learned::default();
        let whole = 0..buf.len();
        let (mut at, mut in_long_run) = (0, false);
        while at < whole.end {
            let (end, is_cut) = self.next_cut(buf, &whole, at, in_long_run)?;
            let skip = in_long_run || !is_cut;
            in_long_run = !is_cut;
            if !skip {
                learned.learn(&buf[at..end], &config.annotations, crowding);
            }
            let reach = (end + MARGIN).min(whole.end);
            for r in parts_in(self.regions, at..reach) {
                self.pages.release(&mut buf[r]);
            }
            at = end;
        }
        Ok(learned.finish())
    }
}

/// Hands the scrubbed dump on with its stack memory cut out.
struct Cutter<'a, F> {
    /// Where the stack memory is, in order.
    holes: Vec<Range<usize>>,
    /// The first hole not passed yet.
    next: usize,
    stacks: Vec<u8>,
    out: &'a mut F,
}

impl<F: FnMut(&[u8]) -> io::Result<()>> Cutter<'_, F> {
    /// Hands on `bytes`, the dump's bytes from `at`.
    fn emit(&mut self, at: usize, bytes: &[u8]) -> io::Result<()> {
        let end = at + bytes.len();
        let mut pos = at;
        while pos < end {
            while self.holes.get(self.next).is_some_and(|h| h.end <= pos) {
                self.next += 1;
            }
            let to = match self.holes.get(self.next) {
                Some(h) if h.start <= pos => {
                    let to = h.end.min(end);
                    self.stacks.extend_from_slice(&bytes[pos - at..to - at]);
                    pos = to;
                    continue;
                }
                Some(h) => h.start.min(end),
                None => end,
            };
            (self.out)(&bytes[pos - at..to - at])?;
            pos = to;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrub::minidump::stack::tests::testdata_dumps;
    use crate::scrub::scrub_and_cut_stack_memory;
    use minidump::Minidump;

    /// A dump in memory; what is released reads as zeros after (every byte of
    /// it, not only whole pages: the strictest reading of the contract).
    struct Source<'a> {
        dump: &'a [u8],
        filled: usize,
    }

    impl DumpPages for Source<'_> {
        fn fill(&mut self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
            buf.copy_from_slice(&self.dump[offset..offset + buf.len()]);
            self.filled += buf.len();
            Ok(())
        }

        fn release(&mut self, buf: &mut [u8]) {
            buf.fill(0);
        }
    }

    const TINY: WindowLimits = WindowLimits {
        window: 4096,
        max_run: 1 << 30,
        max_structure: 1 << 30,
        max_stacks: 1 << 30,
    };

    /// The windowed scrub of `dump`: what it handed on, and what it returned.
    fn windowed(
        dump: &[u8],
        config: &ScrubConfig,
        limits: &WindowLimits,
    ) -> Result<(Vec<u8>, WindowedScrub), ScrubError> {
        let mut buf = vec![0u8; dump.len()];
        let mut source = Source { dump, filled: 0 };
        let mut out = Vec::new();
        let scrubbed = scrub_minidump_windowed(
            &mut buf,
            &mut source,
            &mut |bytes: &[u8]| {
                out.extend_from_slice(bytes);
                Ok(())
            },
            config,
            limits,
        )?;
        Ok((out, scrubbed))
    }

    /// The whole-dump scrub of `dump`: the cut dump, the summary, the stacks.
    fn whole(dump: &[u8], config: &ScrubConfig) -> (Vec<u8>, ScrubSummary, CutStacks) {
        let mut buf = dump.to_vec();
        let (summary, stacks) = scrub_and_cut_stack_memory(&mut buf, 0, config).unwrap();
        (buf, summary, stacks)
    }

    fn assert_same(name: &str, dump: &[u8], config: &ScrubConfig, limits: &WindowLimits) {
        let (cut, summary, stacks) = whole(dump, config);
        let (out, scrubbed) = windowed(dump, config, limits).unwrap();
        assert!(out == cut, "{name}: the dump differs");
        assert_eq!(scrubbed.summary, summary, "{name}");
        let got = scrubbed.stacks.expect("stacks cut");
        assert_eq!(got.holes, stacks.holes, "{name}");
        assert!(got.bytes == stacks.bytes, "{name}: the stacks differ");
    }

    #[test]
    fn tiny_windows_scrub_every_test_dump_as_the_whole_dump_is() {
        let configs = [
            ScrubConfig::default(),
            ScrubConfig {
                heap_memory: false,
                ..ScrubConfig::default()
            },
        ];
        for path in testdata_dumps() {
            let dump = std::fs::read(&path).unwrap();
            for (i, config) in configs.iter().enumerate() {
                let name = format!("{} (config {i})", path.display());
                assert_same(&name, &dump, config, &TINY);
                // A window that is not a power of two, and one wider than most.
                for window in [4098, 1 << 20] {
                    let limits = WindowLimits { window, ..TINY };
                    assert_same(&name, &dump, config, &limits);
                }
            }
        }
    }

    /// `dump` with `text` written at `at` (its bytes, UTF-16LE when `wide`).
    fn plant(dump: &mut [u8], at: usize, text: &str, wide: bool) {
        let bytes: Vec<u8> = if wide {
            text.encode_utf16().flat_map(u16::to_le_bytes).collect()
        } else {
            text.as_bytes().to_vec()
        };
        dump[at..at + bytes.len()].copy_from_slice(&bytes);
    }

    const PLANTED: &[(&str, bool)] = &[
        ("\0someone.private@example.org\0", false),
        ("\0API_TOKEN=hunter2hunter2hunter2\0", false),
        ("\0/home/kevinsmith/.config/app/settings.ini\0", false),
        ("\0C:\\Users\\kevinsmith\\AppData\\secret.txt\0", true),
        ("\0someone.private@example.org\0", true),
        ("\0USER=kevinsmith HOSTNAME=kevins-laptop-7\0", false),
    ];

    #[test]
    fn text_across_window_boundaries_is_scrubbed_as_in_the_whole_dump() {
        let config = ScrubConfig::default();
        for path in testdata_dumps() {
            let mut dump = std::fs::read(&path).unwrap();
            let layout = Layout::read(&dump).unwrap();
            // Straddling 4 KiB boundaries in each kind of region, and in the
            // structure between them.
            let mut spots: Vec<usize> = Vec::new();
            for kind in [RegionKind::Stack, RegionKind::Module, RegionKind::Heap] {
                for r in layout.ranges_of(kind) {
                    let boundary = (r.start / 4096 + 1) * 4096;
                    spots.extend(
                        (boundary..r.end.saturating_sub(64))
                            .step_by(4096)
                            .take(PLANTED.len()),
                    );
                }
            }
            let mut planted = 0;
            for (spot, (text, wide)) in spots.iter().zip(PLANTED.iter().cycle()) {
                let at = spot - text.len() / 2;
                if at + 2 * text.len() < dump.len() {
                    plant(&mut dump, at, text, *wide);
                    planted += 1;
                }
            }
            let name = path.display().to_string();
            assert_same(&name, &dump, &config, &TINY);
            let (out, _) = windowed(&dump, &config, &TINY).unwrap();
            if planted > 0 {
                for needle in [&b"someone.private"[..], b"hunter2hunter2"] {
                    assert!(!out.windows(needle.len()).any(|w| w == needle), "{name}");
                }
            }
        }
    }

    /// A dump whose heap (searched, with `heap_memory` off) is nothing but home
    /// paths: more findings than it may hold, so the text after that point is
    /// masked whole (`crowded_text_run`), the same whole and in windows, and a
    /// secret planted there is gone with it.
    #[test]
    fn a_dump_crowded_with_findings_is_masked_whole_the_same_in_windows() {
        let path = testdata_dumps()
            .into_iter()
            .find(|p| p.ends_with("firefox-windows-x86_64.dmp"))
            .expect("the Windows Firefox dump");
        let mut dump = std::fs::read(&path).unwrap();
        let layout = Layout::read(&dump).unwrap();
        let heap = layout.ranges_of(RegionKind::Heap);
        let mut filled = 0;
        for r in &heap {
            for (i, at) in r.clone().step_by(8).enumerate() {
                if at + 8 <= r.end {
                    let piece: &[u8] = if i % 1000 == 999 {
                        b"\0a@b.cc\0"
                    } else {
                        b"/home/a\0"
                    };
                    dump[at..at + 8].copy_from_slice(&piece[..8]);
                    filled += 8;
                }
            }
        }
        assert!(filled > 2 << 20, "{filled}");
        let last = heap.last().unwrap();
        plant(
            &mut dump,
            last.end - 64,
            "\0someone.private@example.org\0",
            false,
        );
        let config = ScrubConfig {
            heap_memory: false,
            ..ScrubConfig::default()
        };
        for window in [4098, 1 << 20] {
            let limits = WindowLimits { window, ..TINY };
            assert_same("crowded", &dump, &config, &limits);
        }
        let (out, scrubbed) = windowed(&dump, &config, &TINY).unwrap();
        let summary = &scrubbed.summary;
        assert!(summary.count("crowded_text_run") > 100_000, "{summary:?}");
        // Findings counted up to the dump's bound, then none searched for.
        let bound = (1 << 16) + dump.len() as u64 / 256;
        assert!(summary.count("user_name_in_path") <= bound, "{summary:?}");
        let needle = b"someone.private";
        assert!(!out.windows(needle.len()).any(|w| w == needle));
        Minidump::read(&out[..]).expect("the header and directory stay readable");
    }

    #[test]
    fn stacks_over_the_limit_stay_in_the_dump() {
        let path = &testdata_dumps()[0];
        let dump = std::fs::read(path).unwrap();
        let config = ScrubConfig::default();
        let limits = WindowLimits {
            max_stacks: 0,
            ..TINY
        };
        let (out, scrubbed) = windowed(&dump, &config, &limits).unwrap();
        assert!(scrubbed.stacks.is_none());
        let mut whole = dump.clone();
        let summary = crate::scrub::scrub_minidump(&mut whole, &config).unwrap();
        assert!(out == whole);
        assert_eq!(scrubbed.summary, summary);
    }

    #[test]
    fn a_run_longer_than_the_limit_is_zeroed_whole() {
        let path = &testdata_dumps()[0];
        let mut dump = std::fs::read(path).unwrap();
        let layout = Layout::read(&dump).unwrap();
        let r = layout.ranges_of(RegionKind::Stack)[0].clone();
        assert!(r.len() >= 3 * 4096, "{r:?}");
        let run = r.start + 100..r.start + 100 + 2 * 4096 + 10;
        dump[run.clone()].fill(b'a');
        let limits = WindowLimits {
            max_run: 4096,
            ..TINY
        };
        let config = ScrubConfig::default();
        let (out, scrubbed) = windowed(&dump, &config, &limits).unwrap();
        let zeroed = scrubbed.summary.count("long_text_run_bytes");
        assert!(zeroed >= run.len() as u64 - 1, "{:?}", scrubbed.summary);
        assert!(!out.windows(16).any(|w| w == [b'a'; 16]));
    }

    #[test]
    fn too_much_structure_or_no_minidump_is_refused_before_anything_is_handed_on() {
        let path = &testdata_dumps()[0];
        let dump = std::fs::read(path).unwrap();
        let limits = WindowLimits {
            max_structure: 64,
            ..TINY
        };
        let config = ScrubConfig::default();
        assert!(matches!(
            windowed(&dump, &config, &limits),
            Err(ScrubError::NotWindowed(_))
        ));
        let junk = b"MDMP\x93\xa7\0\0not a dump at all, only words".to_vec();
        assert!(matches!(
            windowed(&junk, &config, &TINY),
            Err(ScrubError::Unreadable(_))
        ));
    }
}
