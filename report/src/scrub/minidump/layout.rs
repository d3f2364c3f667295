//! Where everything is in a dump: the stream directory, the captured memory
//! regions and what they hold, read once with bounds-checked reads.

use std::ops::Range;

use minidump::system_info::Cpu;
use minidump::{
    Minidump, MinidumpException, MinidumpMemory64List, MinidumpMemoryList, MinidumpMiscInfo,
    MinidumpModuleList, MinidumpSystemInfo, MinidumpThreadList,
};
use minidump_common::format::MINIDUMP_STREAM_TYPE as St;

use crate::scrub::error::ScrubError;

/// Byte order of a dump, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    Le,
    Be,
}

/// Bounds-checked reads of the raw structures the `minidump` crate does not
/// give offsets for.
pub(super) struct Raw<'a> {
    buf: &'a [u8],
    order: Order,
}

impl Raw<'_> {
    pub(super) fn u32(&self, off: usize) -> Option<u32> {
        let b: [u8; 4] = self.buf.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(match self.order {
            Order::Le => u32::from_le_bytes(b),
            Order::Be => u32::from_be_bytes(b),
        })
    }

    pub(super) fn u16(&self, off: usize) -> Option<u16> {
        let b: [u8; 2] = self.buf.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(match self.order {
            Order::Le => u16::from_le_bytes(b),
            Order::Be => u16::from_be_bytes(b),
        })
    }

    /// A `MINIDUMP_LOCATION_DESCRIPTOR` at `off`: the byte range it points to.
    pub(super) fn location(&self, off: usize) -> Option<Range<usize>> {
        let size = self.u32(off)? as usize;
        let rva = self.u32(off + 4)? as usize;
        self.range(rva, size)
    }

    pub(super) fn range(&self, start: usize, len: usize) -> Option<Range<usize>> {
        let end = start.checked_add(len)?;
        (end <= self.buf.len()).then_some(start..end)
    }

    /// A `MINIDUMP_STRING` (UTF-16, byte length first) at `rva`: the range of its
    /// characters.
    pub(super) fn utf16_string(&self, rva: usize) -> Option<Range<usize>> {
        let len = self.u32(rva)? as usize;
        self.range(rva.checked_add(4)?, len.min(self.buf.len()))
    }

    /// A length-prefixed byte string (`MINIDUMP_UTF8_STRING`, `MINIDUMP_BYTE_ARRAY`)
    /// at `rva`: (offset of the length field, range of the bytes).
    pub(super) fn counted_bytes(&self, rva: usize) -> Option<(usize, Range<usize>)> {
        let len = self.u32(rva)? as usize;
        Some((
            rva,
            self.range(rva.checked_add(4)?, len.min(self.buf.len()))?,
        ))
    }
}

/// One entry of the stream directory.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) ty: u32,
    /// The file offset of its directory entry (type, size, rva).
    pub(crate) entry: usize,
    /// The stream's data, clipped to the file.
    pub(crate) data: Range<usize>,
}

/// What a captured memory region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegionKind {
    /// A thread's stack: kept (unwinding needs it), text in it scrubbed.
    Stack,
    /// Inside a loaded module's image, or around an instruction pointer: code and
    /// static data, kept, text in it scrubbed.
    Module,
    /// Anything else: heap and anonymous mappings, zeroed.
    Heap,
}

/// A captured memory region.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    pub(crate) file: Range<usize>,
    pub(crate) kind: RegionKind,
    /// The address of its first byte in the crashed process.
    pub(crate) addr: u64,
}

/// Where everything is in a dump.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(super) order: Order,
    pub(crate) streams: Vec<Stream>,
    pub(crate) regions: Vec<Region>,
    /// Whether the memory list(s) could be read; when not, bytes outside known
    /// regions are treated as possible memory.
    pub(crate) memory_list_read: bool,
    /// What a saved return address or frame pointer points into: the loaded
    /// modules and the threads' stacks.
    unwind_targets: RangeSet<u64>,
    /// The stack regions, by file offset: (file range, address of its start).
    stacks: Vec<(Range<usize>, u64)>,
    /// Bytes in a pointer of the crashed process: 4 or 8 (8 when unknown).
    pointer_width: usize,
    /// The header and the stream directory: what a reader of the dump needs
    /// first (kept readable when the rest of a crowded dump's text is masked
    /// whole).
    pub(super) head: RangeSet<usize>,
}

/// Offset range of `sub` inside `base`, when `sub` borrows from it.
fn offset_in(base: &[u8], sub: &[u8]) -> Option<Range<usize>> {
    let b = base.as_ptr() as usize;
    let s = sub.as_ptr() as usize;
    let start = s.checked_sub(b)?;
    let end = start.checked_add(sub.len())?;
    (end <= base.len()).then_some(start..end)
}

/// Sorted, merged, non-empty ranges with a logarithmic overlap test.
#[derive(Debug, Clone)]
pub(super) struct RangeSet<T>(Vec<Range<T>>);

impl<T: Ord + Copy> RangeSet<T> {
    pub(super) fn new(mut ranges: Vec<Range<T>>) -> Self {
        ranges.retain(|r| r.start < r.end);
        ranges.sort_by_key(|r| r.start);
        let mut out: Vec<Range<T>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match out.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => out.push(r),
            }
        }
        RangeSet(out)
    }

    /// Whether any range shares a point with `r`.
    pub(super) fn overlaps(&self, r: &Range<T>) -> bool {
        let i = self.0.partition_point(|x| x.end <= r.start);
        self.0
            .get(i)
            .is_some_and(|x| x.start < r.end && r.start < r.end)
    }
}

fn addr_range(base: u64, size: u64) -> Range<u64> {
    base..base.saturating_add(size)
}

impl Layout {
    /// Reads the layout of `buf`. Fails only when the header can't be read.
    pub(crate) fn read(buf: &[u8]) -> Result<Layout, ScrubError> {
        let dump = Minidump::read(buf)?;
        let order = if buf.get(..4) == Some(b"MDMP") {
            Order::Le
        } else {
            Order::Be
        };
        let raw = Raw { buf, order };

        // The directory, read directly so duplicate stream types are all seen.
        let mut streams = Vec::new();
        let count = raw.u32(8).unwrap_or(0) as usize;
        let dir = raw.u32(12).unwrap_or(0) as usize;
        for i in 0..count.min(buf.len() / 12) {
            let Some(off) = i.checked_mul(12).and_then(|o| o.checked_add(dir)) else {
                break;
            };
            let (Some(ty), Some(size), Some(rva)) =
                (raw.u32(off), raw.u32(off + 4), raw.u32(off + 8))
            else {
                break;
            };
            let start = (rva as usize).min(buf.len());
            let end = start.saturating_add(size as usize).min(buf.len());
            streams.push(Stream {
                ty,
                entry: off,
                data: start..end,
            });
        }

        // Header, directory and stream data: never memory. A memory or stack
        // descriptor pointing into them (rva 0 for a stack that wasn't captured,
        // or a hostile dump) is ignored.
        let head = vec![
            0..32.min(buf.len()),
            dir.min(buf.len())..dir.saturating_add(count.saturating_mul(12)).min(buf.len()),
        ];
        let mut structural: Vec<Range<usize>> = streams.iter().map(|s| s.data.clone()).collect();
        structural.extend(head.iter().cloned());
        let head = RangeSet::new(head);
        let structural = RangeSet::new(structural);
        let is_structural = |r: &Range<usize>| structural.overlaps(r);

        let system_info = dump.get_stream::<MinidumpSystemInfo>().ok();
        let misc = dump.get_stream::<MinidumpMiscInfo>().ok();
        let mut stack_files = Vec::new();
        let mut stack_addrs = Vec::new();
        let mut code_addrs = Vec::new();
        if let Ok(threads) = dump.get_stream::<MinidumpThreadList<'_>>() {
            for t in &threads.threads {
                let loc = &t.raw.stack.memory;
                if let Some(r) = raw.range(loc.rva as usize, loc.data_size as usize)
                    && loc.rva != 0
                    && !is_structural(&r)
                {
                    stack_files.push((r, t.raw.stack.start_of_memory_range));
                }
                stack_addrs.push(addr_range(
                    t.raw.stack.start_of_memory_range,
                    u64::from(loc.data_size),
                ));
                if let Some(si) = &system_info
                    && let Some(ctx) = t.context(si, misc.as_ref())
                {
                    code_addrs.push(ctx.get_instruction_pointer());
                }
            }
        }
        if let (Ok(exc), Some(si)) = (dump.get_stream::<MinidumpException<'_>>(), &system_info)
            && let Some(ctx) = exc.context(si, misc.as_ref())
        {
            code_addrs.push(ctx.get_instruction_pointer());
        }
        let modules: Vec<Range<u64>> = dump
            .get_stream::<MinidumpModuleList>()
            .map(|l| {
                l.iter()
                    .map(|m| addr_range(m.raw.base_of_image, u64::from(m.raw.size_of_image)))
                    .collect()
            })
            .unwrap_or_default();

        // Sorted sets: a hostile dump may list millions of threads and regions.
        let stack_file_set = RangeSet::new(stack_files.iter().map(|(r, _)| r.clone()).collect());
        let unwind_targets = RangeSet::new(stack_addrs.iter().chain(&modules).cloned().collect());
        let stack_addrs = RangeSet::new(stack_addrs);
        let modules = RangeSet::new(modules);
        code_addrs.sort_unstable();
        let near_code = |addr: &Range<u64>| {
            let i = code_addrs.partition_point(|ip| *ip < addr.start);
            code_addrs.get(i).is_some_and(|ip| *ip < addr.end)
        };
        let mut regions = Vec::new();
        let mut memory_list_read = true;
        let mut classify = |file: Range<usize>, addr: Range<u64>| {
            if file.is_empty() || is_structural(&file) {
                return;
            }
            let kind = if stack_file_set.overlaps(&file) || stack_addrs.overlaps(&addr) {
                RegionKind::Stack
            } else if modules.overlaps(&addr) || near_code(&addr) {
                RegionKind::Module
            } else {
                RegionKind::Heap
            };
            regions.push(Region {
                file,
                kind,
                addr: addr.start,
            });
        };
        let has = |ty: St| streams.iter().any(|s| s.ty == ty as u32);
        // Both memory lists, as (address, size, bytes in the dump).
        let mut listed_memory = Vec::new();
        if has(St::MemoryListStream) {
            match dump.get_stream::<MinidumpMemoryList<'_>>() {
                Ok(list) => {
                    listed_memory.extend(list.iter().map(|m| (m.base_address, m.size, m.bytes)))
                }
                Err(_) => memory_list_read = false,
            }
        }
        if has(St::Memory64ListStream) {
            match dump.get_stream::<MinidumpMemory64List<'_>>() {
                Ok(list) => {
                    listed_memory.extend(list.iter().map(|m| (m.base_address, m.size, m.bytes)))
                }
                Err(_) => memory_list_read = false,
            }
        }
        for (base, size, bytes) in listed_memory {
            if let Some(file) = offset_in(buf, bytes) {
                classify(file, addr_range(base, size));
            }
        }
        // Stacks the memory list doesn't list (or that a broken list hid).
        let listed: std::collections::HashSet<(usize, usize)> =
            regions.iter().map(|r| (r.file.start, r.file.end)).collect();
        for (file, addr) in stack_files {
            if !listed.contains(&(file.start, file.end)) {
                regions.push(Region {
                    file,
                    kind: RegionKind::Stack,
                    addr,
                });
            }
        }
        let mut stacks: Vec<(Range<usize>, u64)> = regions
            .iter()
            .filter(|r| r.kind == RegionKind::Stack)
            .map(|r| (r.file.clone(), r.addr))
            .collect();
        stacks.sort_by_key(|(file, _)| (file.start, file.end));
        let pointer_width = match system_info.as_ref().map(|si| si.cpu) {
            Some(Cpu::X86 | Cpu::Arm | Cpu::Ppc | Cpu::Sparc | Cpu::Mips) => 4,
            _ => 8,
        };
        Ok(Layout {
            order,
            streams,
            regions,
            memory_list_read,
            unwind_targets,
            stacks,
            pointer_width,
            head,
        })
    }

    /// The file ranges of the words inside `range` that the unwinder reads: in a
    /// stack region, aligned, pointer-sized words whose value points into a
    /// loaded module or a stack (saved return addresses, frame pointers), unless
    /// the word is all printable ASCII — then it is text, whatever it points to.
    /// The text rules leave these words as they are: bytes of an address can
    /// spell text (`0x563d783f0570` holds `x=V`, an environment assignment).
    pub(super) fn unwinder_words(&self, buf: &[u8], range: &Range<usize>) -> Vec<Range<usize>> {
        let width = self.pointer_width;
        let mut words = Vec::new();
        // Stacks starting before `range` ends, from the last one starting at or
        // before its start (regions do not overlap in a sane dump).
        let first = self
            .stacks
            .partition_point(|(file, _)| file.start <= range.start)
            .saturating_sub(1);
        for (file, addr) in self.stacks[first..]
            .iter()
            .take_while(|(file, _)| file.start < range.end)
        {
            let from = range.start.max(file.start);
            let to = range.end.min(file.end);
            if from >= to {
                continue;
            }
            // The first aligned word overlapping `from`.
            let address = addr.wrapping_add((from - file.start) as u64);
            let mut start = from.saturating_sub((address % width as u64) as usize);
            if start < file.start {
                start += width;
            }
            while start < to {
                let word = start..start + width;
                if word.end > file.end {
                    break;
                }
                let bytes = &buf[word.clone()];
                let value = match (self.order, width) {
                    (Order::Le, 4) => {
                        u64::from(u32::from_le_bytes(bytes.try_into().unwrap_or_default()))
                    }
                    (Order::Be, 4) => {
                        u64::from(u32::from_be_bytes(bytes.try_into().unwrap_or_default()))
                    }
                    (Order::Le, _) => u64::from_le_bytes(bytes.try_into().unwrap_or_default()),
                    (Order::Be, _) => u64::from_be_bytes(bytes.try_into().unwrap_or_default()),
                };
                let text = bytes.iter().all(|b| (0x20..0x7f).contains(b));
                if !text
                    && self
                        .unwind_targets
                        .overlaps(&(value..value.saturating_add(1)))
                {
                    words.push(word);
                }
                start += width;
            }
        }
        words
    }

    pub(super) fn raw<'a>(&self, buf: &'a [u8]) -> Raw<'a> {
        Raw {
            buf,
            order: self.order,
        }
    }

    pub(super) fn streams_of(&self, ty: St) -> impl Iterator<Item = &Stream> {
        self.streams.iter().filter(move |s| s.ty == ty as u32)
    }

    /// Merged file ranges of the regions of `kind`.
    pub(crate) fn ranges_of(&self, kind: RegionKind) -> Vec<Range<usize>> {
        let mut rs: Vec<Range<usize>> = self
            .regions
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.file.clone())
            .collect();
        merge_ranges(&mut rs);
        rs
    }
}

pub(super) fn merge_ranges(rs: &mut Vec<Range<usize>>) {
    rs.retain(|r| r.start < r.end);
    rs.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(rs.len());
    for r in rs.drain(..) {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    *rs = out;
}

/// The bytes of a dump's header (its first 32) as read, to put back over
/// whatever a scrub writes there: only a hostile dump lays a stream (or a
/// string) over them, and scrubbing that must not leave the dump unreadable.
/// (The stream directory is not kept: scrubbing unlists streams on purpose,
/// and a directory entry zeroed is an unused stream, still readable.)
pub(super) struct SavedHeader(Vec<u8>);

impl SavedHeader {
    /// The header of `buf` (the dump, or a buffer of its length holding its
    /// structure).
    pub(super) fn of(buf: &[u8]) -> SavedHeader {
        SavedHeader(buf[..32.min(buf.len())].to_vec())
    }

    /// Puts the header's bytes that lie within `within` back into `buf`.
    pub(super) fn put_back(&self, buf: &mut [u8], within: Range<usize>) {
        let end = within.end.min(self.0.len());
        if within.start < end {
            buf[within.start..end].copy_from_slice(&self.0[within.start..end]);
        }
    }
}

/// Zeroes `r`; true when anything changed.
pub(super) fn zero(buf: &mut [u8], r: Range<usize>) -> bool {
    match buf.get_mut(r) {
        Some(bytes) if bytes.iter().any(|&b| b != 0) => {
            bytes.fill(0);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_set_overlaps() {
        let set = RangeSet::new(vec![10..20, 15..30, 40..50, 60..60]);
        assert_eq!(set.0, vec![10..30, 40..50]);
        assert!(set.overlaps(&(29..31)));
        assert!(!set.overlaps(&(30..40)));
        assert!(set.overlaps(&(0..100)));
        assert!(!set.overlaps(&(45..45)));
        assert!(!set.overlaps(&(50..60)));
        assert!(!RangeSet::<u64>::new(Vec::new()).overlaps(&(0..u64::MAX)));
    }
}
