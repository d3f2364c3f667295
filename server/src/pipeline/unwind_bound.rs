//! How many frames a dump's threads can unwind into, counted before
//! minidump-processor walks them.
//!
//! The processor walks each thread to the end of its stack with no bound on
//! frames, and holds every frame with its register context (about 1.7 KB each
//! in a processed report). A dump can make that as large as it likes: 50
//! threads pointing at one 64 KiB stack full of return addresses (a 69 KB file)
//! unwind into 410,000 frames; minidump-stackwalk took 24 s and 2.8 GB on it.
//! Breakpad stops a thread at 1024 frames; rust-minidump has no such option.
//!
//! Each frame past a thread's first is found from a word of the stack memory the
//! walk reads, at or above the frame before it, never the same word twice: a
//! scanned frame from a return address (a word inside a module), a frame-pointer
//! frame from the saved frame pointer (a word pointing further up the same
//! memory), a CFI frame from its return address read where the symbols say —
//! inside a module, or else the frame after it is found by scan or frame
//! pointer. So a thread unwinds into at most 1 + 2 × the words of its memory
//! that are module addresses or point up into it, at the alignments its walk can
//! take: that of the stack and frame pointers and of any register pointing into
//! the memory, and of each word pointing up into it (a frame pointer moves the
//! walk to it). [`count`] adds
//! these up over the threads; a dump past [`MAX_FRAMES`] is not processed.
//! The shared test data dumps count 140 to 28,838 (Firefox on Android: 164
//! threads).

use std::collections::HashMap;

use minidump::format::MINIDUMP_STREAM_TYPE;
use minidump::system_info::PointerWidth;
use minidump::{
    Minidump, MinidumpContext, MinidumpException, MinidumpMiscInfo, MinidumpSystemInfo,
    MinidumpThreadList, UnifiedMemory,
};

/// The most stack words that may start frames, with a frame for each thread,
/// in a dump that is processed: at most twice as many frames, about 600 MB
/// (2.3 KB a frame, as `memory.rs` measured).
pub const MAX_FRAMES: u64 = 1 << 17;

/// Whether `register` is a stack or frame pointer, by the names minidump gives
/// them on each CPU: the bases a scan and CFI rules read the stack from.
fn is_frame_base(register: &str) -> bool {
    // A match of short literals compiles to a few integer compares (a slice's
    // `contains` called memcmp for every register of every thread).
    matches!(
        register,
        "rsp" | "rbp" | "esp" | "ebp" | "sp" | "fp" | "x29" | "r7"
    )
}

/// The words of `dump`'s stack memory that can start frames, and one frame a
/// thread; counting stops once past `limit`.
pub fn count<'a, T>(dump: &Minidump<'a, T>, limit: u64) -> u64
where
    T: std::ops::Deref<Target = [u8]> + 'a,
{
    let Ok(threads) = dump.get_stream::<MinidumpThreadList<'_>>() else {
        return 0;
    };
    let Ok(system) = dump.get_stream::<MinidumpSystemInfo>() else {
        // The processor walks nothing without it.
        return threads.threads.len() as u64;
    };
    let misc = dump.get_stream::<MinidumpMiscInfo>().ok();
    let memory = dump.get_memory().unwrap_or_default();
    let exception = dump.get_stream::<MinidumpException<'_>>().ok();
    let exception_context = exception
        .as_ref()
        .and_then(|e| Some((e.thread_id, e.context(&system, misc.as_ref())?)));
    let modules = Modules::of_ranges(module_ranges(dump));
    let width = match system.cpu.pointer_width() {
        PointerWidth::Bits64 => 8,
        // The narrower width counts more words.
        _ => 4,
    };
    let mut counted: HashMap<(u64, u64, u8), u64> = HashMap::new();
    let mut total = 0u64;
    for thread in &threads.threads {
        total += 1;
        if total > limit {
            return total;
        }
        let mut contexts: Vec<MinidumpContext> = Vec::new();
        if let Some(context) = thread.context(&system, misc.as_ref()) {
            contexts.push(context.into_owned());
        }
        if let Some((id, context)) = &exception_context
            && *id == thread.raw.thread_id
        {
            contexts.push(context.as_ref().clone());
        }
        // The memory the processor walks: the thread's stack, or the region
        // holding a context's stack pointer when the stack does not.
        let stack = thread.stack_memory(&memory);
        let mut walked: Vec<UnifiedMemory<'_, '_>> = stack.into_iter().collect();
        for context in &contexts {
            let sp = context.get_stack_pointer();
            if !walked.iter().any(|m| contains(m, sp))
                && let Some(region) = memory.memory_at_address(sp)
            {
                walked.push(region);
            }
        }
        for region in &walked {
            let (base, bytes) = (region.base_address(), region.bytes());
            // Where the walk may start reading: at a register pointing into the
            // memory, or at an offset (a scan's reach, a CFI rule's) from the
            // stack or frame pointer wherever it points.
            let registers = contexts.iter().flat_map(|c| c.valid_registers());
            let starts = registers
                .filter(|&(name, value)| {
                    is_frame_base(name) || (value >= base && value - base < bytes.len() as u64)
                })
                .fold(0u8, |mask, (_, value)| mask | 1 << (value % width));
            total += *counted
                .entry((base, bytes.len() as u64, starts))
                .or_insert_with(|| frame_words(base, bytes, width, starts, &modules));
            if total > limit {
                return total;
            }
        }
    }
    total
}

fn contains(memory: &UnifiedMemory<'_, '_>, address: u64) -> bool {
    address
        .checked_sub(memory.base_address())
        .is_some_and(|offset| offset < memory.size())
}

/// The words of the memory at `base` that can start frames (module addresses,
/// and words pointing up into it), read at the alignments in the mask `starts`
/// and at those such words lead to.
fn frame_words(base: u64, bytes: &[u8], width: u64, starts: u8, modules: &Modules) -> u64 {
    // Memory running past the address space is not walked (the processor
    // refuses its range).
    let Some(end) = base.checked_add(bytes.len() as u64) else {
        return 0;
    };
    let mut todo = starts;
    let mut done = 0u8;
    let mut words = 0;
    while todo != 0 {
        let alignment = u64::from(todo.trailing_zeros());
        todo &= !(1 << alignment);
        done |= 1 << alignment;
        let skip = ((alignment + width - base % width) % width) as usize;
        let Some(rest) = bytes.get(skip..) else {
            continue;
        };
        let start = base + skip as u64;
        let (found, leads_to) = if width == 8 {
            words_at::<8>(start, rest, end, modules)
        } else {
            words_at::<4>(start, rest, end, modules)
        };
        words += found;
        todo |= leads_to & !done;
    }
    words
}

/// Counts the `W`-byte words of `bytes` (read from `start`) that are module
/// addresses or point up to below `end`; and the alignments (a mask) of the
/// latter. With AVX2 where the CPU has it (the same code, compiled for it: the
/// block test below runs four words a step).
fn words_at<const W: usize>(start: u64, bytes: &[u8], end: u64, modules: &Modules) -> (u64, u8) {
    #[cfg(target_arch = "x86_64")]
    if let Some(found) = avx2::words_at::<W>(start, bytes, end, modules) {
        return found;
    }
    words_in_blocks::<W>(start, bytes, end, modules)
}

/// How many words [`words_in_blocks`] tests at once.
const BLOCK: usize = 64;

/// [`words_at`]: a block of words at a time, each tested first against two
/// ranges without a branch — this memory, and the span of the modules — as
/// words in neither (most of a stack) cannot count; then the few in one of them
/// one by one.
#[inline(always)]
fn words_in_blocks<const W: usize>(
    start: u64,
    bytes: &[u8],
    end: u64,
    modules: &Modules,
) -> (u64, u8) {
    let read = |word: &[u8]| -> u64 {
        if W == 8 {
            u64::from_le_bytes(word.try_into().expect("8 bytes"))
        } else {
            u64::from(u32::from_le_bytes(word.try_into().expect("4 bytes")))
        }
    };
    let length = end - start;
    let (span, span_width) = (modules.span.0, modules.span.1.wrapping_sub(modules.span.0));
    let mut found = 0;
    let mut leads_to = 0u8;
    let mut block_start = start;
    for block in bytes.chunks(BLOCK * W) {
        let mut candidates = 0u64;
        for (i, word) in block.chunks_exact(W).enumerate() {
            let value = read(word);
            let inside = value.wrapping_sub(start) < length;
            let in_span = value.wrapping_sub(span) <= span_width;
            candidates |= u64::from(inside | in_span) << i;
        }
        while candidates != 0 {
            let i = candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            let value = read(&block[i * W..(i + 1) * W]);
            let at = block_start + (i * W) as u64;
            // at < value < end
            if value.wrapping_sub(at + 1) < end.saturating_sub(at + 1) {
                found += 1;
                leads_to |= 1 << (value % W as u64);
            } else if modules.may_hold(value) && modules.hold(value) {
                found += 1;
            }
        }
        block_start += block.len() as u64;
    }
    (found, leads_to)
}

/// [`words_at`] compiled for AVX2, where the CPU has it (detected at run time;
/// std caches the answer).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{Modules, words_in_blocks};

    #[cfg(test)]
    thread_local! {
        /// Tests set this to take the portable path on a CPU with AVX2.
        pub(super) static OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// [`super::words_at`] with AVX2, if the CPU has it.
    pub(super) fn words_at<const W: usize>(
        start: u64,
        bytes: &[u8],
        end: u64,
        modules: &Modules,
    ) -> Option<(u64, u8)> {
        #[cfg(test)]
        if OFF.get() {
            return None;
        }
        // SAFETY: the CPU has AVX2.
        std::arch::is_x86_feature_detected!("avx2")
            .then(|| unsafe { words_avx2::<W>(start, bytes, end, modules) })
    }

    #[target_feature(enable = "avx2")]
    fn words_avx2<const W: usize>(
        start: u64,
        bytes: &[u8],
        end: u64,
        modules: &Modules,
    ) -> (u64, u8) {
        words_in_blocks::<W>(start, bytes, end, modules)
    }
}

/// The address ranges the modules cover, merged and sorted, to test words
/// against quickly.
struct Modules {
    /// Disjoint (start, end) ranges, `end` exclusive, sorted.
    ranges: Vec<(u64, u64)>,
    /// The first start and the last end; (1, 0) for none, which holds nothing.
    span: (u64, u64),
    /// For each [`BUCKET`] of the address space a range touches (its end
    /// included), the ranges that touch it (indices, from and to): a word is
    /// looked up in one, not searched for. `None` where the ranges touch more
    /// than [`MOST_BUCKETS`] (a dump claiming huge modules): they are searched.
    buckets: Option<foldhash::HashMap<u64, (u32, u32)>>,
}

/// The bits of an address below its [`Modules::buckets`] key: 1 MiB a bucket.
const BUCKET: u32 = 20;

/// The most buckets [`Modules`] makes (about 2 MiB of map at the most); the shared
/// test data dumps' modules touch at most 878.
const MOST_BUCKETS: u64 = 1 << 16;

/// The size of a `MINIDUMP_MODULE` record in a module list.
const MODULE_RECORD: usize = 108;

/// The (start, end) address ranges of `dump`'s modules, `end` exclusive, read
/// from its module list's records alone: their base and size, as
/// [`MinidumpModuleList`](minidump::MinidumpModuleList) reads them, without the names and debug records it
/// reads for each (a fifth of the count's time on a dump of many modules).
/// A list whose size does not fit its count (with 4 bytes of padding or none)
/// holds none, as the processor reads it; records of no size, or reaching past
/// the address space, are skipped as it skips them. A module whose name or
/// debug record the processor cannot read (it then reads no list at all) still
/// counts here: a bound that counts more.
fn module_ranges<'a, T>(dump: &Minidump<'a, T>) -> Vec<(u64, u64)>
where
    T: std::ops::Deref<Target = [u8]> + 'a,
{
    let Ok(bytes) = dump.get_raw_stream(MINIDUMP_STREAM_TYPE::ModuleListStream as u32) else {
        return Vec::new();
    };
    let little = dump.endian.is_little();
    // The `n`-byte unsigned integer at `at`, in the dump's byte order.
    let int_at = |at: usize, n: usize| -> Option<u64> {
        let bytes = bytes.get(at..at.checked_add(n)?)?;
        Some(bytes.iter().enumerate().fold(0, |value, (i, &byte)| {
            let shift = if little { i } else { n - 1 - i };
            value | u64::from(byte) << (8 * shift)
        }))
    };
    let Some(count) = int_at(0, 4) else {
        return Vec::new();
    };
    let Some(listed) = (count as usize)
        .checked_mul(MODULE_RECORD)
        .and_then(|records| records.checked_add(4))
    else {
        return Vec::new();
    };
    let first = match bytes.len().checked_sub(listed) {
        Some(0) => 4,
        Some(4) => 8,
        _ => return Vec::new(),
    };
    (0..count as usize)
        .filter_map(|i| {
            let at = first + i * MODULE_RECORD;
            let (base, size) = (int_at(at, 8)?, int_at(at + 8, 4)?);
            (size != 0 && size <= u64::MAX - base).then(|| (base, base + size))
        })
        .collect()
}

impl Modules {
    /// The modules covering `all`, (start, end) ranges with `end` exclusive,
    /// in any order.
    fn of_ranges(mut all: Vec<(u64, u64)>) -> Modules {
        all.sort_unstable();
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(all.len());
        for (start, end) in all {
            match ranges.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => ranges.push((start, end)),
            }
        }
        let span = match (ranges.first(), ranges.last()) {
            (Some(first), Some(last)) => (first.0, last.1),
            _ => (1, 0),
        };
        let touched: u64 = ranges
            .iter()
            .map(|r| ((r.1 >> BUCKET) - (r.0 >> BUCKET)).saturating_add(1))
            .fold(0, u64::saturating_add);
        let buckets = (touched <= MOST_BUCKETS).then(|| {
            let mut buckets = foldhash::HashMap::default();
            buckets.reserve(touched as usize);
            for (i, range) in (0u32..).zip(&ranges) {
                for bucket in range.0 >> BUCKET..=range.1 >> BUCKET {
                    buckets
                        .entry(bucket)
                        .and_modify(|touching: &mut (u32, u32)| touching.1 = i + 1)
                        .or_insert((i, i + 1));
                }
            }
            buckets
        });
        Modules {
            ranges,
            span,
            buckets,
        }
    }

    /// Whether `value` lies within the span of the modules (or one past it): a
    /// quick test before [`Modules::hold`].
    fn may_hold(&self, value: u64) -> bool {
        value.wrapping_sub(self.span.0) <= self.span.1.wrapping_sub(self.span.0)
    }

    /// Whether `value` (a return address) or the byte before it (the call,
    /// which the walker looks up) lies inside a module.
    fn hold(&self, value: u64) -> bool {
        // Among `ranges`, the last starting at or below `value` holds it or
        // the byte before it, or none does (the ranges are disjoint, and ranges
        // that meet are merged).
        let last_holds = |ranges: &[(u64, u64)]| {
            let i = ranges.partition_point(|r| r.0 <= value);
            i.checked_sub(1)
                .is_some_and(|i| value.wrapping_sub(1) < ranges[i].1 || value < ranges[i].1)
        };
        match &self.buckets {
            // A range holding `value` or the byte before it touches its bucket
            // (ends are in their buckets); searched, as a dump may put many
            // small modules in one.
            Some(buckets) => buckets
                .get(&(value >> BUCKET))
                .is_some_and(|&(from, to)| last_holds(&self.ranges[from as usize..to as usize])),
            None => last_holds(&self.ranges),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::pipeline::shared_stack_dump::{shared_stack_dump, shared_stack_dump_below};

    /// Every `.dmp` of the shared test data.
    fn dumps() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
        let mut out = Vec::new();
        for case in std::fs::read_dir(dir).unwrap() {
            for file in std::fs::read_dir(case.unwrap().path())
                .into_iter()
                .flatten()
            {
                let path = file.unwrap().path();
                if path.extension().is_some_and(|e| e == "dmp") {
                    out.push(path);
                }
            }
        }
        out
    }

    #[test]
    fn the_shared_test_data_dumps_count_well_below_the_bound() {
        let mut counts = Vec::new();
        for path in dumps() {
            let dump = Minidump::read_path(&path).unwrap();
            let n = count(&dump, u64::MAX);
            assert!(n > 0 && n < MAX_FRAMES / 4, "{}: {n}", path.display());
            counts.push(n);
        }
        assert!(counts.len() >= 13, "{counts:?}");
        assert!(counts.iter().any(|&n| n > 10_000), "{counts:?}");
    }

    /// The ranges [`MinidumpModuleList`] reads, in order.
    fn listed_ranges<'a, T>(dump: &Minidump<'a, T>) -> Vec<(u64, u64)>
    where
        T: std::ops::Deref<Target = [u8]> + 'a,
    {
        use minidump::{MinidumpModuleList, Module as _};
        let list = dump.get_stream::<MinidumpModuleList>().unwrap_or_default();
        let mut ranges: Vec<(u64, u64)> = list
            .iter()
            .map(|m| (m.base_address(), m.base_address() + m.size()))
            .collect();
        ranges.sort_unstable();
        ranges
    }

    #[test]
    fn module_ranges_are_those_the_module_list_reads() {
        for path in dumps() {
            let dump = Minidump::read_path(&path).unwrap();
            let mut ranges = module_ranges(&dump);
            ranges.sort_unstable();
            assert!(!ranges.is_empty(), "{}", path.display());
            assert_eq!(ranges, listed_ranges(&dump), "{}", path.display());
        }
    }

    /// In either byte order; a module of no size, or reaching past the
    /// address space, is not a range, as the module list skips it.
    #[test]
    fn module_ranges_are_read_in_the_dump_s_byte_order() {
        use minidump_synth::{DumpString, Module, SynthMinidump};
        use test_assembler::Endian;
        for endian in [Endian::Little, Endian::Big] {
            let name = DumpString::new("lib.so", endian);
            let modules = [
                (0x7f00_0000_1000, 0x2000),
                (0x40_0000, 0x1234),
                (0x50_0000, 0),
                (u64::MAX - 0xfff, 0x2000),
            ];
            let mut synth = SynthMinidump::with_endian(endian);
            for (base, size) in modules {
                synth = synth.add_module(Module::new(endian, base, size, &name, 0, 0, None));
            }
            let bytes = synth.add(name).finish().unwrap();
            let dump = Minidump::read(bytes.as_slice()).unwrap();
            let mut ranges = module_ranges(&dump);
            ranges.sort_unstable();
            assert_eq!(
                ranges,
                [(0x40_0000, 0x40_1234), (0x7f00_0000_1000, 0x7f00_0000_3000)]
            );
            assert_eq!(ranges, listed_ranges(&dump));
        }
    }

    #[test]
    fn memory_at_the_top_of_the_address_space_counts_without_overflow() {
        let modules = Modules::of_ranges(Vec::new());
        let words: Vec<u8> = [u64::MAX - 8, 5]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        // Up to the last byte: the first word points up into it.
        let aligned = 1 << ((u64::MAX - 16) % 8);
        assert_eq!(frame_words(u64::MAX - 16, &words, 8, aligned, &modules), 1);
        // One past it: not walked.
        assert_eq!(frame_words(u64::MAX - 15, &words, 8, 0xff, &modules), 0);
    }

    #[test]
    fn merged_module_ranges_hold_what_any_module_holds() {
        // Both in one bucket.
        let modules =
            Modules::of_ranges(vec![(0x5000, 0x6000), (0x1000, 0x2000), (0x2000, 0x3000)]);
        assert_eq!(modules.ranges, [(0x1000, 0x3000), (0x5000, 0x6000)]);
        let searched = Modules {
            buckets: None,
            ..Modules::of_ranges(modules.ranges.clone())
        };
        for modules in [&modules, &searched] {
            for (value, held) in [
                (0xfff, false),
                (0x1000, true),
                (0x3000, true), // one past the end: the call before it is inside
                (0x3001, false),
                (0x4fff, false),
                (0x5800, true),
                (0x6001, false),
            ] {
                let found = modules.may_hold(value) && modules.hold(value);
                assert_eq!(found, held, "{value:#x}");
            }
        }
    }

    /// [`words_at`] as first written, a word at a time, with the modules
    /// searched one by one: what the block test must agree with.
    fn words_one_by_one<const W: usize>(
        start: u64,
        bytes: &[u8],
        end: u64,
        ranges: &[(u64, u64)],
    ) -> (u64, u8) {
        let (mut found, mut leads_to, mut at) = (0, 0u8, start);
        for word in bytes.chunks_exact(W) {
            let mut value = [0; 8];
            value[..W].copy_from_slice(word);
            let value = u64::from_le_bytes(value);
            if at < value && value < end {
                found += 1;
                leads_to |= 1 << (value % W as u64);
            } else if ranges
                .iter()
                .any(|r| r.0 <= value && (value < r.1 || value.wrapping_sub(1) < r.1))
            {
                found += 1;
            }
            at += W as u64;
        }
        (found, leads_to)
    }

    #[test]
    fn words_in_blocks_count_as_words_one_at_a_time() {
        // xorshift: the same cases on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases = 0;
        for round in 0..400 {
            // Modules near one another (some meeting, some empty), now and
            // then one so large that the ranges are searched, not bucketed.
            let near = if round % 7 == 0 {
                u64::MAX - (1 << 30)
            } else {
                0x7f00_0000_0000
            };
            let mut ranges = Vec::new();
            for _ in 0..next() % 12 {
                let start = near + next() % (64 << 20);
                let size = match next() % 8 {
                    0 => 0,
                    1 => 1 << 40,
                    _ => next() % (4 << 20),
                };
                ranges.push((start, start.saturating_add(size)));
            }
            let modules = Modules::of_ranges(ranges.clone());
            let searched = Modules {
                buckets: None,
                ..Modules::of_ranges(ranges.clone())
            };
            // A memory among the modules, or elsewhere; ending at the top of
            // the address space now and then.
            let words = (next() % 700) as usize;
            let odd = (next() % 8) as usize;
            let length = (words * 8 + odd) as u64;
            let start = match next() % 4 {
                0 => near + next() % (64 << 20),
                1 => u64::MAX - length,
                _ => 0x7ffc_0000_0000 + next() % (1 << 20),
            };
            let end = start + length;
            let mut bytes = Vec::with_capacity(length as usize);
            let edges: Vec<u64> = ranges.iter().flat_map(|r| [r.0, r.1]).collect();
            for word in 0..words as u64 {
                let value = match next() % 7 {
                    0 => start.wrapping_add(next() % (length + 16)).wrapping_sub(8),
                    // Just above itself: a frame pointer's chain.
                    3 => start.wrapping_add(word * 8 + next() % 24),
                    1 if !edges.is_empty() => edges[(next() % edges.len() as u64) as usize]
                        .wrapping_add(next() % 3)
                        .wrapping_sub(1),
                    2 => near + next() % (64 << 20),
                    _ => next(),
                };
                bytes.extend(value.to_le_bytes());
            }
            bytes.extend(std::iter::repeat_n(0xab, odd));
            for skip in [0, 1, 3, 4] {
                let Some(rest) = bytes.get(skip..) else {
                    continue;
                };
                let at = start + skip as u64;
                let expected8 = words_one_by_one::<8>(at, rest, end, &ranges);
                let expected4 = words_one_by_one::<4>(at, rest, end, &ranges);
                for modules in [&modules, &searched] {
                    for off in [false, true] {
                        #[cfg(target_arch = "x86_64")]
                        avx2::OFF.set(off);
                        let context = format!("round {round} skip {skip} off {off}");
                        assert_eq!(
                            words_at::<8>(at, rest, end, modules),
                            expected8,
                            "{context}"
                        );
                        assert_eq!(
                            words_at::<4>(at, rest, end, modules),
                            expected4,
                            "{context}"
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 5000, "{cases}");
    }

    #[test]
    fn threads_sharing_a_stack_count_its_words_each() {
        let count_of = |threads| {
            let dump = Minidump::read(shared_stack_dump(threads)).unwrap();
            count(&dump, u64::MAX)
        };
        assert_eq!(count_of(1), 1 + 8192);
        // Stack and frame pointers just under the stack: a CFI rule may put the
        // frame at an offset from them, inside it, so the words count.
        let below = Minidump::read(shared_stack_dump_below(1, 16)).unwrap();
        assert!(
            count(&below, u64::MAX) > 8192,
            "{}",
            count(&below, u64::MAX)
        );
        assert_eq!(count_of(10), 10 * (1 + 8192));
        // Counting stops past the limit.
        let dump = Minidump::read(shared_stack_dump(1000)).unwrap();
        assert!(count(&dump, MAX_FRAMES) < MAX_FRAMES + 8194);
    }
}
