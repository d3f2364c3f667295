//! In-place, length-preserving minidump scrubbing.
//!
//! The dump is read once with the `minidump` crate to learn where things are
//! (a [`Layout`] of byte ranges: streams, thread stacks, memory regions and what
//! they hold), then rewritten by range:
//!
//! 1. streams that are system details are zeroed or blanked line by line;
//! 2. strings the process details live in (time zone, handle names, Crashpad ids
//!    and annotations, thread names with paths) are overwritten where they lie;
//! 3. heap memory is zeroed;
//! 4. every printable run (ASCII/UTF-8 and UTF-16LE) anywhere in the file is
//!    searched for user names in paths, e-mail and IP addresses and the user and
//!    host names learned from the dump; in captured memory also for
//!    environment-style `KEY=value` strings.
//!
//! Integers, pointers and stack frames are never rewritten, so the dump unwinds
//! the same. Every read is bounds-checked: a hostile dump is scrubbed as far as
//! its structure can be followed and never panics.

use std::ops::Range;

use minidump::{
    Minidump, MinidumpException, MinidumpMemory64List, MinidumpMemoryList, MinidumpMiscInfo,
    MinidumpModuleList, MinidumpSystemInfo, MinidumpThreadList,
};
use minidump_common::format::MINIDUMP_STREAM_TYPE as St;

use super::annotations::{AnnotationRules, Decision};
use super::text::{
    Encoding, Fill, Finding, Kind, KnownValues, env_assignment_start, find_values, for_each_run,
    merge_findings, overwrite, user_names_in_paths,
};
use super::{ScrubConfig, ScrubError, ScrubSummary};

/// Byte order of a dump, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Le,
    Be,
}

/// Bounds-checked reads of the raw structures the `minidump` crate does not
/// give offsets for.
struct Raw<'a> {
    buf: &'a [u8],
    order: Order,
}

impl Raw<'_> {
    fn u32(&self, off: usize) -> Option<u32> {
        let b: [u8; 4] = self.buf.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(match self.order {
            Order::Le => u32::from_le_bytes(b),
            Order::Be => u32::from_be_bytes(b),
        })
    }

    fn u16(&self, off: usize) -> Option<u16> {
        let b: [u8; 2] = self.buf.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(match self.order {
            Order::Le => u16::from_le_bytes(b),
            Order::Be => u16::from_be_bytes(b),
        })
    }

    /// A `MINIDUMP_LOCATION_DESCRIPTOR` at `off`: the byte range it points to.
    fn location(&self, off: usize) -> Option<Range<usize>> {
        let size = self.u32(off)? as usize;
        let rva = self.u32(off + 4)? as usize;
        self.range(rva, size)
    }

    fn range(&self, start: usize, len: usize) -> Option<Range<usize>> {
        let end = start.checked_add(len)?;
        (end <= self.buf.len()).then_some(start..end)
    }

    /// A `MINIDUMP_STRING` (UTF-16, byte length first) at `rva`: the range of its
    /// characters.
    fn utf16_string(&self, rva: usize) -> Option<Range<usize>> {
        let len = self.u32(rva)? as usize;
        self.range(rva.checked_add(4)?, len.min(self.buf.len()))
    }

    /// A length-prefixed byte string (`MINIDUMP_UTF8_STRING`, `MINIDUMP_BYTE_ARRAY`)
    /// at `rva`: (offset of the length field, range of the bytes).
    fn counted_bytes(&self, rva: usize) -> Option<(usize, Range<usize>)> {
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
}

/// Where everything is in a dump.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    order: Order,
    pub(crate) streams: Vec<Stream>,
    pub(crate) regions: Vec<Region>,
    /// Whether the memory list(s) could be read; when not, bytes outside known
    /// regions are treated as possible memory.
    pub(crate) memory_list_read: bool,
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
struct RangeSet<T>(Vec<Range<T>>);

impl<T: Ord + Copy> RangeSet<T> {
    fn new(mut ranges: Vec<Range<T>>) -> Self {
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
    fn overlaps(&self, r: &Range<T>) -> bool {
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
                data: start..end,
            });
        }

        // Header, directory and stream data: never memory. A memory or stack
        // descriptor pointing into them (rva 0 for a stack that wasn't captured,
        // or a hostile dump) is ignored.
        let mut structural: Vec<Range<usize>> = streams.iter().map(|s| s.data.clone()).collect();
        structural.push(0..32.min(buf.len()));
        structural
            .push(dir.min(buf.len())..dir.saturating_add(count.saturating_mul(12)).min(buf.len()));
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
                    stack_files.push(r);
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
        let stack_file_set = RangeSet::new(stack_files.clone());
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
            regions.push(Region { file, kind });
        };
        let has = |ty: St| streams.iter().any(|s| s.ty == ty as u32);
        if has(St::MemoryListStream) {
            match dump.get_stream::<MinidumpMemoryList<'_>>() {
                Ok(list) => {
                    for m in list.iter() {
                        if let Some(file) = offset_in(buf, m.bytes) {
                            classify(file, addr_range(m.base_address, m.size));
                        }
                    }
                }
                Err(_) => memory_list_read = false,
            }
        }
        if has(St::Memory64ListStream) {
            match dump.get_stream::<MinidumpMemory64List<'_>>() {
                Ok(list) => {
                    for m in list.iter() {
                        if let Some(file) = offset_in(buf, m.bytes) {
                            classify(file, addr_range(m.base_address, m.size));
                        }
                    }
                }
                Err(_) => memory_list_read = false,
            }
        }
        // Stacks the memory list doesn't list (or that a broken list hid).
        let listed: std::collections::HashSet<(usize, usize)> =
            regions.iter().map(|r| (r.file.start, r.file.end)).collect();
        for file in stack_files {
            if !listed.contains(&(file.start, file.end)) {
                regions.push(Region {
                    file,
                    kind: RegionKind::Stack,
                });
            }
        }
        Ok(Layout {
            order,
            streams,
            regions,
            memory_list_read,
        })
    }

    fn raw<'a>(&self, buf: &'a [u8]) -> Raw<'a> {
        Raw {
            buf,
            order: self.order,
        }
    }

    fn streams_of(&self, ty: St) -> impl Iterator<Item = &Stream> {
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

fn merge_ranges(rs: &mut Vec<Range<usize>>) {
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

/// Zeroes `r`; true when anything changed.
fn zero(buf: &mut [u8], r: Range<usize>) -> bool {
    match buf.get_mut(r) {
        Some(bytes) if bytes.iter().any(|&b| b != 0) => {
            bytes.fill(0);
            true
        }
        _ => false,
    }
}

/// Scrubs `dump` in place with `config`, keeping its length, so it still parses
/// with the `minidump` crate and unwinds the same. Returns what was removed.
///
/// What goes: the Linux environment, command line, process status and auxv
/// streams; serial-like `/proc/cpuinfo` fields; lsb-release fields other than the
/// distribution's name and version; Windows token and comment streams, macOS boot arguments;
/// the misc-info time zone; handle object names; Crashpad report and client ids;
/// thread names that hold paths; user names in paths anywhere (`/home/<u>/`,
/// `/Users/<u>/`, `C:\Users\<u>\` … become `*` of the same length); user and host
/// names learned from the dump itself (`USER=`, `HOSTNAME=`, `COMPUTERNAME=`, home
/// directories) and [`ScrubConfig::known_values`], wherever they occur as words;
/// `KEY=value` strings, e-mail and IP addresses, tokens and keys in captured
/// memory (ASCII and UTF-16); Crashpad annotations per
/// [`ScrubConfig::annotations`]; heap memory. Stack memory stays (see
/// [`drop_stack_memory`]).
///
/// Scrubbing a scrubbed dump changes nothing and returns an empty summary.
///
/// # Errors
/// [`ScrubError::Unreadable`] when `dump` has no readable minidump header and
/// directory; nothing is changed then. A dump whose streams are damaged is
/// scrubbed as far as they can be followed.
pub fn scrub_minidump(dump: &mut [u8], config: &ScrubConfig) -> Result<ScrubSummary, ScrubError> {
    let layout = Layout::read(dump)?;
    let mut summary = ScrubSummary::default();

    // Names to mask everywhere, learned before anything is rewritten.
    let known = if config.user_names {
        let mut values = learn_names(dump, &config.annotations);
        values.extend(config.known_values.iter().cloned());
        KnownValues::new(values.iter().map(String::as_str))
    } else {
        KnownValues::default()
    };

    if config.system_streams {
        scrub_system_streams(dump, &layout, &mut summary);
    }
    if config.process_details {
        scrub_process_details(dump, &layout, &mut summary);
    }
    // Values of allowed annotations (versions look like IP addresses) are left
    // to the annotation rules.
    let protected = scrub_crashpad_annotations(dump, &layout, config, &mut summary);
    if config.heap_memory {
        for r in layout.ranges_of(RegionKind::Heap) {
            let len = r.len() as u64;
            if zero(dump, r) {
                summary.add("heap_memory_regions", 1);
                summary.add("heap_memory_bytes", len);
            }
        }
    }
    scrub_text_everywhere(dump, &layout, config, &known, &protected, &mut summary);
    Ok(summary)
}

/// Zeroes the captured stack memory of every thread (once a report is fully
/// symbolicated, nothing needs it). Returns the number of bytes of stack memory
/// now zero. The dump keeps its length and still parses; it no longer unwinds
/// past the context frames.
///
/// # Errors
/// [`ScrubError::Unreadable`] when `dump` has no readable minidump header.
pub fn drop_stack_memory(dump: &mut [u8]) -> Result<u64, ScrubError> {
    let layout = Layout::read(dump)?;
    let mut total = 0u64;
    for r in layout.ranges_of(RegionKind::Stack) {
        total += r.len() as u64;
        zero(dump, r);
    }
    Ok(total)
}

/// Environment keys whose values name the user or the machine.
const NAME_KEYS: &[&str] = &[
    "USER",
    "USERNAME",
    "LOGNAME",
    "HOSTNAME",
    "COMPUTERNAME",
    "USERDOMAIN",
    "HOST",
];

/// User and host names the dump itself reveals (`USER=`/`HOSTNAME=`-style
/// assignments, home directories) and the values of secret-looking environment
/// variables (`*TOKEN*=`, `*SECRET*=`, `SSH_*=` …, by the annotation key rules),
/// anywhere in the file: they are masked wherever else they occur as words.
fn learn_names(buf: &[u8], rules: &AnnotationRules) -> Vec<String> {
    let mut names = Vec::new();
    let mut secrets = Vec::new();
    for_each_run(buf, |run| {
        let text = &*run.text;
        if let Some(start) = env_assignment_start(text)
            && let Some((key, value)) = text[start..].split_once('=')
        {
            let value = value.trim();
            if NAME_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
                && (3..=64).contains(&value.len())
                && !value.contains(['/', '\\', '='])
            {
                names.push(value.to_owned());
            }
            let secret = rules.is_secret_key(key) || key.to_ascii_uppercase().starts_with("SSH_");
            if secret && (6..=4096).contains(&value.len()) {
                secrets.push(value.to_owned());
                // `SSH_CLIENT=10.0.0.1 50000 22`: each distinctive part too.
                secrets.extend(
                    value
                        .split_whitespace()
                        .filter(|t| t.len() >= 6 && !t.bytes().all(|b| b.is_ascii_digit()))
                        .map(str::to_owned),
                );
            }
        }
        for r in user_names_in_paths(text) {
            // User names are short; a long "name" is something else.
            if r.len() <= 64 {
                names.push(text[r].to_owned());
            }
        }
    });
    names.sort();
    names.dedup();
    // A hostile dump could hold millions of `TOKEN=` strings; a bounded number
    // keeps the finder small (user and host names always go in).
    secrets.sort();
    secrets.dedup();
    secrets.truncate(MAX_LEARNED_SECRETS);
    names.truncate(MAX_LEARNED_SECRETS);
    names.extend(secrets);
    names
}

/// At most this many learned names, and as many secret values, are masked
/// everywhere.
const MAX_LEARNED_SECRETS: usize = 256;

fn scrub_system_streams(buf: &mut [u8], layout: &Layout, summary: &mut ScrubSummary) {
    let whole = [
        (St::LinuxEnviron, "linux_environ_stream"),
        (St::LinuxCmdLine, "linux_cmdline_stream"),
        (St::LinuxProcStatus, "linux_proc_status_stream"),
        (St::LinuxAuxv, "linux_auxv_stream"),
        (St::TokenStream, "windows_token_stream"),
        (St::MozMacosBootargsStream, "macos_bootargs_stream"),
        // Free text an application attached: treated as personal.
        (St::CommentStreamA, "comment_stream"),
        (St::CommentStreamW, "comment_stream"),
    ];
    for (ty, kind) in whole {
        for s in layout.streams_of(ty) {
            if zero(buf, s.data.clone()) {
                summary.add(kind, 1);
            }
        }
    }
    for s in layout.streams_of(St::LinuxLsbRelease) {
        let n = blank_lines(
            buf,
            s.data.clone(),
            b'=',
            |key| {
                !matches!(
                    key,
                    "DISTRIB_ID"
                        | "DISTRIB_RELEASE"
                        | "DISTRIB_DESCRIPTION"
                        | "ID"
                        | "VERSION_ID"
                        | "NAME"
                        | "VERSION"
                        | "PRETTY_NAME"
                )
            },
            true,
        );
        summary.add("lsb_release_field", n);
    }
    for s in layout.streams_of(St::LinuxCpuInfo) {
        let n = blank_lines(
            buf,
            s.data.clone(),
            b':',
            |key| {
                let k = key.to_ascii_lowercase();
                k.contains("serial") || k.contains("uuid")
            },
            false,
        );
        summary.add("cpuinfo_serial", n);
    }
}

/// Blanks (with spaces) lines of a `key<sep>value` text stream whose trimmed key
/// `blank` selects: the whole line when `whole_line`, else the value only.
/// Returns how many lines changed.
fn blank_lines(
    buf: &mut [u8],
    range: Range<usize>,
    sep: u8,
    blank: impl Fn(&str) -> bool,
    whole_line: bool,
) -> u64 {
    let Some(data) = buf.get_mut(range) else {
        return 0;
    };
    let mut changed = 0;
    for line in data.split_mut(|&b| b == b'\n') {
        let Some(pos) = line.iter().position(|&b| b == sep) else {
            continue;
        };
        let key = String::from_utf8_lossy(&line[..pos]);
        let key = key.trim().trim_matches('"');
        if key.is_empty() || !blank(key) {
            continue;
        }
        let target = if whole_line {
            &mut line[..]
        } else {
            &mut line[pos + 1..]
        };
        if target.iter().any(|&b| b != b' ' && b != b'\r') {
            for b in target.iter_mut().filter(|b| **b != b'\r') {
                *b = b' ';
            }
            changed += 1;
        }
    }
    changed
}

/// Masks a UTF-16 string's characters with `*`; true when anything changed.
fn mask_utf16(buf: &mut [u8], r: Range<usize>) -> bool {
    let Some(bytes) = buf.get_mut(r) else {
        return false;
    };
    let mut changed = false;
    for pair in bytes.chunks_exact_mut(2) {
        if pair != [b'*', 0] && pair != [0, 0] {
            pair[0] = b'*';
            pair[1] = 0;
            changed = true;
        }
    }
    changed
}

fn scrub_process_details(buf: &mut [u8], layout: &Layout, summary: &mut ScrubSummary) {
    // MINIDUMP_MISC_INFO_3+: time_zone_id and TIME_ZONE_INFORMATION at 56..232.
    for s in layout.streams_of(St::MiscInfoStream) {
        let size_of_info = layout.raw(buf).u32(s.data.start).unwrap_or(0) as usize;
        if size_of_info >= 232
            && s.data.len() >= 232
            && zero(buf, s.data.start + 56..s.data.start + 232)
        {
            summary.add("misc_info_time_zone", 1);
        }
    }
    // Crashpad report and client ids (GUIDs after the version).
    for s in layout.streams_of(St::CrashpadInfoStream) {
        if s.data.len() >= 36 {
            if zero(buf, s.data.start + 4..s.data.start + 20) {
                summary.add("crashpad_report_id", 1);
            }
            if zero(buf, s.data.start + 20..s.data.start + 36) {
                summary.add("crashpad_client_id", 1);
            }
        }
    }
    // Thread names holding paths.
    for s in layout.streams_of(St::ThreadNamesStream) {
        let names: Vec<Range<usize>> = {
            let raw = layout.raw(buf);
            let count = raw.u32(s.data.start).unwrap_or(0) as usize;
            (0..count.min(s.data.len() / 12))
                .filter_map(|i| {
                    let off = s.data.start + 4 + i * 12;
                    // thread_id u32, thread_name_rva u64
                    let lo = raw.u32(off + 4)? as u64;
                    let hi = raw.u32(off + 8)? as u64;
                    let rva = match layout.order {
                        Order::Le => lo | hi << 32,
                        Order::Be => hi | lo << 32,
                    };
                    raw.utf16_string(usize::try_from(rva).ok()?)
                })
                .collect()
        };
        for r in names {
            let has_path = buf.get(r.clone()).is_some_and(|b| {
                b.chunks_exact(2)
                    .any(|c| (c[0] == b'/' || c[0] == b'\\') && c[1] == 0)
            });
            if has_path && mask_utf16(buf, r) {
                summary.add("thread_name_path", 1);
            }
        }
    }
    // Handle object names (file paths, registry keys with user SIDs).
    for s in layout.streams_of(St::HandleDataStream) {
        let names: Vec<Range<usize>> = {
            let raw = layout.raw(buf);
            let header = raw.u32(s.data.start).unwrap_or(0) as usize;
            let desc = raw.u32(s.data.start + 4).unwrap_or(0) as usize;
            let count = raw.u32(s.data.start + 8).unwrap_or(0) as usize;
            if desc < 16 || header < 16 {
                Vec::new()
            } else {
                (0..count.min(buf.len() / desc))
                    .filter_map(|i| {
                        let off = s
                            .data
                            .start
                            .checked_add(header)?
                            .checked_add(i.checked_mul(desc)?)?;
                        // handle u64, type_name_rva u32, object_name_rva u32
                        let rva = raw.u32(off.checked_add(12)?)? as usize;
                        if rva == 0 {
                            None
                        } else {
                            raw.utf16_string(rva)
                        }
                    })
                    .collect()
            }
        };
        for r in names {
            if mask_utf16(buf, r) {
                summary.add("handle_object_name", 1);
            }
        }
    }
}

/// A Crashpad annotation found in the dump: its key (none for list annotations),
/// the offset of its value's length field and the value's bytes.
type AnnotationEntry = (Option<String>, (usize, Range<usize>));

/// Applies the annotation rules to the Crashpad annotations inside the dump, in
/// place: a dropped value becomes empty (length 0, bytes zeroed), a replaced one
/// is written over the old (truncated to its length).
fn scrub_crashpad_annotations(
    buf: &mut [u8],
    layout: &Layout,
    config: &ScrubConfig,
    summary: &mut ScrubSummary,
) -> Vec<Range<usize>> {
    let mut protected = Vec::new();
    let rules = &config.annotations;
    for s in layout.streams_of(St::CrashpadInfoStream) {
        // (key, value string) pairs: (None, _) for list annotations.
        let mut entries: Vec<AnnotationEntry> = Vec::new();
        {
            let raw = layout.raw(buf);
            let text = |r: &Range<usize>| String::from_utf8_lossy(&buf[r.clone()]).into_owned();
            let dictionary = |loc: Option<Range<usize>>, out: &mut Vec<AnnotationEntry>| {
                let Some(loc) = loc else { return };
                let count = raw.u32(loc.start).unwrap_or(0) as usize;
                for i in 0..count.min(loc.len() / 8) {
                    let off = loc.start + 4 + i * 8;
                    let (Some(k), Some(v)) = (raw.u32(off), raw.u32(off + 4)) else {
                        break;
                    };
                    let (Some((_, key)), Some(value)) =
                        (raw.counted_bytes(k as usize), raw.counted_bytes(v as usize))
                    else {
                        continue;
                    };
                    out.push((Some(text(&key)), value));
                }
            };
            if s.data.len() >= 52 {
                dictionary(raw.location(s.data.start + 36), &mut entries);
                if let Some(list) = raw.location(s.data.start + 44) {
                    let count = raw.u32(list.start).unwrap_or(0) as usize;
                    for i in 0..count.min(list.len() / 12) {
                        let Some(info) = raw.location(list.start + 4 + i * 12 + 4) else {
                            continue;
                        };
                        if info.len() < 28 {
                            continue;
                        }
                        if let Some(l) = raw.location(info.start + 4) {
                            let n = raw.u32(l.start).unwrap_or(0) as usize;
                            for j in 0..n.min(l.len() / 4) {
                                if let Some(v) = raw
                                    .u32(l.start + 4 + j * 4)
                                    .and_then(|r| raw.counted_bytes(r as usize))
                                {
                                    entries.push((None, v));
                                }
                            }
                        }
                        dictionary(raw.location(info.start + 12), &mut entries);
                        if let Some(l) = raw.location(info.start + 20) {
                            let n = raw.u32(l.start).unwrap_or(0) as usize;
                            for j in 0..n.min(l.len() / 12) {
                                let off = l.start + 4 + j * 12;
                                let (Some(name), Some(ty), Some(value)) =
                                    (raw.u32(off), raw.u16(off + 4), raw.u32(off + 8))
                                else {
                                    break;
                                };
                                // Only string annotations (type 1) are text.
                                if ty != 1 {
                                    continue;
                                }
                                let (Some((_, key)), Some(v)) = (
                                    raw.counted_bytes(name as usize),
                                    raw.counted_bytes(value as usize),
                                ) else {
                                    continue;
                                };
                                entries.push((Some(text(&key)), v));
                            }
                        }
                    }
                }
            }
        }
        let url_allowed = {
            let pairs: Vec<(String, String)> = entries
                .iter()
                .filter_map(|(k, (_, v))| {
                    Some((
                        k.clone()?,
                        String::from_utf8_lossy(&buf[v.clone()]).into_owned(),
                    ))
                })
                .collect();
            rules.url_allowed(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        };
        for (key, (len_off, value)) in entries {
            let text = String::from_utf8_lossy(&buf[value.clone()]).into_owned();
            let text = text.trim_end_matches('\0');
            let key = key.as_deref().unwrap_or("");
            if rules.is_allowed(key) {
                protected.push(value.clone());
            }
            let decision = rules.decide(key, text, url_allowed);
            let (new, kinds): (&str, Vec<&'static str>) = match &decision {
                Decision::Keep => continue,
                Decision::Drop(kind) => ("", vec![*kind]),
                Decision::Replace(new, kinds) => (new.as_str(), kinds.clone()),
            };
            let mut n = new.len().min(value.len());
            while !new.is_char_boundary(n) {
                n -= 1;
            }
            let Some(bytes) = buf.get_mut(value.clone()) else {
                continue;
            };
            bytes[..n].copy_from_slice(&new.as_bytes()[..n]);
            bytes[n..].fill(0);
            let len_bytes = match layout.order {
                Order::Le => (n as u32).to_le_bytes(),
                Order::Be => (n as u32).to_be_bytes(),
            };
            if let Some(l) = buf.get_mut(len_off..len_off + 4) {
                l.copy_from_slice(&len_bytes);
            }
            for kind in kinds {
                summary.add(kind, 1);
            }
        }
    }
    protected
}

/// Which text rules apply to a part of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Captured memory: environment strings too, found values zeroed.
    Memory,
    /// Streams and strings: found values masked with `*`.
    Structure,
}

fn scrub_text_everywhere(
    buf: &mut [u8],
    layout: &Layout,
    config: &ScrubConfig,
    known: &KnownValues,
    protected: &[Range<usize>],
    summary: &mut ScrubSummary,
) {
    if !config.user_names && !config.memory_text {
        return;
    }
    let protected = RangeSet::new(protected.to_vec());
    // Segments covering the file: memory regions, the rest.
    let mut memory: Vec<Range<usize>> = layout
        .regions
        .iter()
        .filter(|r| r.kind != RegionKind::Heap || !config.heap_memory)
        .map(|r| r.file.clone())
        .collect();
    merge_ranges(&mut memory);
    let mut skip = if config.heap_memory {
        layout.ranges_of(RegionKind::Heap)
    } else {
        Vec::new()
    };
    // Memory counts first, heap is skipped (already zero).
    let memory_set = RangeSet::new(memory.clone());
    skip.retain(|h| !memory_set.overlaps(h));
    let gap_context = if layout.memory_list_read {
        Context::Structure
    } else {
        Context::Memory
    };
    let mut segments: Vec<(Range<usize>, Context)> = memory
        .iter()
        .map(|r| (r.clone(), Context::Memory))
        .collect();
    let mut taken: Vec<Range<usize>> = memory.iter().chain(skip.iter()).cloned().collect();
    merge_ranges(&mut taken);
    let mut pos = 0;
    for t in &taken {
        if t.start > pos {
            segments.push((pos..t.start, gap_context));
        }
        pos = pos.max(t.end);
    }
    if pos < buf.len() {
        segments.push((pos..buf.len(), gap_context));
    }

    for (range, ctx) in segments {
        let mut edits: Vec<(Range<usize>, Fill, Kind, Encoding)> = Vec::new();
        let Some(seg) = buf.get(range.clone()) else {
            continue;
        };
        for_each_run(seg, |run| {
            let mut findings: Vec<Finding> = Vec::new();
            let text = &*run.text;
            if ctx == Context::Memory
                && config.memory_text
                && let Some(start) = env_assignment_start(text)
            {
                findings.push(Finding {
                    range: start..text.len(),
                    kind: Kind::Environment,
                });
            }
            let mut values = Vec::new();
            find_values(text, &mut values);
            known.find(text, &mut values);
            values.retain(|f| match f.kind {
                Kind::UserPath | Kind::KnownValue => config.user_names,
                _ => config.memory_text,
            });
            findings.extend(values);
            for f in merge_findings(findings) {
                let fill = match (ctx, f.kind) {
                    (Context::Structure, _)
                    | (Context::Memory, Kind::UserPath | Kind::KnownValue) => Fill::Mask,
                    (Context::Memory, _) => Fill::Zero,
                };
                let br = run.buffer_range(&f.range);
                let abs = range.start + br.start..range.start + br.end;
                if !matches!(f.kind, Kind::UserPath | Kind::KnownValue) && protected.overlaps(&abs)
                {
                    continue;
                }
                edits.push((abs, fill, f.kind, run.encoding));
            }
        });
        for (r, fill, kind, encoding) in edits {
            if overwrite(buf, r, fill, encoding) {
                summary.add(kind.name(), 1);
            }
        }
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
