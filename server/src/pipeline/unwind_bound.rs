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

use minidump::system_info::PointerWidth;
use minidump::{
    Minidump, MinidumpContext, MinidumpException, MinidumpMiscInfo, MinidumpModuleList,
    MinidumpSystemInfo, MinidumpThreadList, Module as _, UnifiedMemory,
};

/// The most stack words that may start frames, with a frame for each thread,
/// in a dump that is processed: at most twice as many frames, about 600 MB
/// (2.3 KB a frame, as `memory.rs` measured).
pub const MAX_FRAMES: u64 = 1 << 17;

/// The stack and frame pointer registers, by the names minidump gives them on
/// each CPU: the bases a scan and CFI rules read the stack from.
const FRAME_BASES: &[&str] = &["rsp", "rbp", "esp", "ebp", "sp", "fp", "x29", "r7"];

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
    let modules = Modules::of(&dump.get_stream::<MinidumpModuleList>().unwrap_or_default());
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
                    FRAME_BASES.contains(&name)
                        || (value >= base && value - base < bytes.len() as u64)
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
/// latter.
fn words_at<const W: usize>(start: u64, bytes: &[u8], end: u64, modules: &Modules) -> (u64, u8) {
    let mut found = 0;
    let mut leads_to = 0u8;
    let mut at = start;
    // Branch-free where it can be: a stack's words point up, down and
    // elsewhere about evenly.
    for word in bytes.chunks_exact(W) {
        let value = if W == 8 {
            u64::from_le_bytes(word.try_into().expect("8 bytes"))
        } else {
            u64::from(u32::from_le_bytes(word.try_into().expect("4 bytes")))
        };
        // at < value < end
        let up = value.wrapping_sub(at + 1) < end.saturating_sub(at + 1);
        found += u64::from(up);
        leads_to |= u8::from(up) << (value % W as u64);
        // Both tested without a branch: only the rare word in the modules'
        // span branches to the lookup.
        if !up & modules.may_hold(value) && modules.hold(value) {
            found += 1;
        }
        at += W as u64;
    }
    (found, leads_to)
}

/// The address ranges the modules cover, merged and sorted, to test words
/// against quickly.
struct Modules {
    /// Disjoint (start, end) ranges, `end` exclusive, sorted.
    ranges: Vec<(u64, u64)>,
    /// The first start and the last end; (1, 0) for none, which holds nothing.
    span: (u64, u64),
}

impl Modules {
    fn of(list: &MinidumpModuleList) -> Modules {
        let mut all: Vec<(u64, u64)> = list
            .iter()
            .map(|m| (m.base_address(), m.base_address().saturating_add(m.size())))
            .collect();
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
        Modules { ranges, span }
    }

    /// Whether `value` lies within the span of the modules (or one past it): a
    /// quick test before [`Modules::hold`].
    fn may_hold(&self, value: u64) -> bool {
        value.wrapping_sub(self.span.0) <= self.span.1.wrapping_sub(self.span.0)
    }

    /// Whether `value` (a return address) or the byte before it (the call,
    /// which the walker looks up) lies inside a module.
    fn hold(&self, value: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= value);
        // The last range starting at or below `value` holds it or the byte
        // before it, or none does (the ranges are disjoint).
        i.checked_sub(1)
            .is_some_and(|i| value.wrapping_sub(1) < self.ranges[i].1 || value < self.ranges[i].1)
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

    #[test]
    fn memory_at_the_top_of_the_address_space_counts_without_overflow() {
        let modules = Modules::of(&MinidumpModuleList::default());
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
        let modules = Modules {
            ranges: vec![(0x1000, 0x3000), (0x5000, 0x6000)],
            span: (0x1000, 0x6000),
        };
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
