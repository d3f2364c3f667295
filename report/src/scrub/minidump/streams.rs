//! Stream scrubbing: system-detail streams zeroed (the memory maps taken out of
//! the directory too) or blanked line by line,
//! process details (time zone, Crashpad ids, thread and handle names) overwritten
//! where they lie, and the Crashpad annotations put through the annotation rules
//! (a dropped one removed from its list).

use std::ops::Range;

use minidump_common::format::MINIDUMP_STREAM_TYPE as St;

use super::layout::{Layout, Order, Raw, zero};
use crate::scrub::annotations::Decision;
use crate::scrub::config::ScrubConfig;
use crate::scrub::summary::ScrubSummary;

pub(super) fn scrub_system_streams(buf: &mut [u8], layout: &Layout, summary: &mut ScrubSummary) {
    // Each stream zeroed whole; `Unlisted` ones also leave the directory: the
    // entry's type made 0 (`UnusedStream`, in either byte order), so no reader
    // looks for them. The Linux memory maps name every file the process mapped
    // (install paths, profile directories, `/run/user/<uid>`); minidump-processor
    // reads them only for its exception analysis (bit flips, guard pages), which
    // no report keeps, and would log a zeroed maps stream as unreadable on every
    // walk.
    use Listing::{Listed, Unlisted};
    let whole = [
        (St::LinuxEnviron, "linux_environ_stream", Listed),
        (St::LinuxCmdLine, "linux_cmdline_stream", Listed),
        (St::LinuxProcStatus, "linux_proc_status_stream", Listed),
        (St::LinuxAuxv, "linux_auxv_stream", Listed),
        (St::LinuxMaps, "linux_maps_stream", Unlisted),
        (St::TokenStream, "windows_token_stream", Listed),
        (St::MozMacosBootargsStream, "macos_bootargs_stream", Listed),
        // Free text an application attached: treated as personal.
        (St::CommentStreamA, "comment_stream", Listed),
        (St::CommentStreamW, "comment_stream", Listed),
    ];
    for (ty, kind, listing) in whole {
        for s in layout.streams_of(ty) {
            let zeroed = zero(buf, s.data.clone());
            let unlisted = listing == Unlisted && zero(buf, s.entry..s.entry.saturating_add(4));
            if zeroed || unlisted {
                summary.add(kind, 1);
            }
        }
    }
    let text = [
        TextStream {
            ty: St::LinuxLsbRelease,
            sep: b'=',
            blank: lsb_release_blanked,
            whole_line: true,
            kind: "lsb_release_field",
        },
        TextStream {
            ty: St::LinuxCpuInfo,
            sep: b':',
            blank: cpuinfo_blanked,
            whole_line: false,
            kind: "cpuinfo_serial",
        },
    ];
    for t in text {
        for s in layout.streams_of(t.ty) {
            let n = blank_lines(buf, s.data.clone(), t.sep, t.blank, t.whole_line);
            summary.add(t.kind, n);
        }
    }
}

/// Whether a stream zeroed whole stays in the dump's directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// Listed as it was, its bytes zero.
    Listed,
    /// Listed as unused (type 0).
    Unlisted,
}

/// A `key<sep>value` text stream and what of it is blanked.
struct TextStream {
    /// The stream's type.
    ty: St,
    /// Between key and value.
    sep: u8,
    /// Whether the line of a (trimmed) key is blanked.
    blank: fn(&str) -> bool,
    /// The whole line blanked, else its value only.
    whole_line: bool,
    /// The kind a blanked line is counted as.
    kind: &'static str,
}

/// Whether a line of `/etc/lsb-release` goes: any but the distribution's name
/// and version.
fn lsb_release_blanked(key: &str) -> bool {
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
}

/// Whether a value of `/proc/cpuinfo` goes: a serial number or a UUID.
fn cpuinfo_blanked(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("serial") || k.contains("uuid")
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

pub(super) fn scrub_process_details(buf: &mut [u8], layout: &Layout, summary: &mut ScrubSummary) {
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

/// The kinds of annotation lists in a CrashpadInfo stream: a count, then
/// entries of a fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    /// `MINIDUMP_SIMPLE_STRING_DICTIONARY`: key and value string RVAs.
    Dictionary,
    /// `MINIDUMP_ANNOTATION_LIST`: name RVA, type, reserved, value RVA.
    Objects,
    /// A module's list annotations: value string RVAs, no keys.
    Strings,
}

impl ListKind {
    fn entry_size(self) -> usize {
        match self {
            ListKind::Dictionary => 8,
            ListKind::Objects => 12,
            ListKind::Strings => 4,
        }
    }
}

/// One annotation list: its kind and where it lies.
struct AnnotationList {
    kind: ListKind,
    data: Range<usize>,
}

impl AnnotationList {
    /// How many entries the list holds that lie inside it (what the `minidump`
    /// crate reads), and the count it claims.
    fn counts(&self, raw: &Raw<'_>) -> (usize, u32) {
        let claimed = raw.u32(self.data.start).unwrap_or(0);
        let fits = self.data.len().saturating_sub(4) / self.kind.entry_size();
        ((claimed as usize).min(fits), claimed)
    }

    fn slot(&self, i: usize) -> Range<usize> {
        let start = self.data.start + 4 + i * self.kind.entry_size();
        start..start + self.kind.entry_size()
    }
}

/// A Crashpad annotation found in the dump.
struct Entry {
    /// Its index in its list.
    slot: usize,
    /// The key (none for list annotations) and its string: (offset of the
    /// length field, the bytes).
    key: Option<(String, (usize, Range<usize>))>,
    /// The value's string: (offset of the length field, the bytes).
    value: Option<(usize, Range<usize>)>,
    /// Whether the value is text (not a user-defined annotation object).
    text: bool,
}

/// The annotation lists of the CrashpadInfo stream at `stream`: the process-wide
/// simple annotations, and each module's list, simple and object annotations.
fn annotation_lists(raw: &Raw<'_>, stream: &Range<usize>) -> Vec<AnnotationList> {
    let mut lists = Vec::new();
    if stream.len() < 52 {
        return lists;
    }
    let mut push = |kind, data: Option<Range<usize>>| {
        if let Some(data) = data {
            lists.push(AnnotationList { kind, data });
        }
    };
    push(ListKind::Dictionary, raw.location(stream.start + 36));
    let Some(modules) = raw.location(stream.start + 44) else {
        return lists;
    };
    let count = raw.u32(modules.start).unwrap_or(0) as usize;
    for i in 0..count.min(modules.len() / 12) {
        // MINIDUMP_MODULE_CRASHPAD_INFO_LINK: module index, then the location.
        let Some(info) = raw.location(modules.start + 4 + i * 12 + 4) else {
            continue;
        };
        if info.len() < 28 {
            continue;
        }
        push(ListKind::Strings, raw.location(info.start + 4));
        push(ListKind::Dictionary, raw.location(info.start + 12));
        push(ListKind::Objects, raw.location(info.start + 20));
    }
    lists
}

/// The entries of `list` whose strings can be followed.
fn entries(raw: &Raw<'_>, buf: &[u8], list: &AnnotationList) -> Vec<Entry> {
    let string = |rva: u32| {
        (rva != 0)
            .then(|| raw.counted_bytes(rva as usize))
            .flatten()
    };
    let text = |r: &Range<usize>| String::from_utf8_lossy(&buf[r.clone()]).into_owned();
    let (n, _) = list.counts(raw);
    let mut out = Vec::with_capacity(n);
    for slot in 0..n {
        let off = list.slot(slot).start;
        let entry = match list.kind {
            ListKind::Strings => raw.u32(off).and_then(string).map(|value| Entry {
                slot,
                key: None,
                value: Some(value),
                text: true,
            }),
            ListKind::Dictionary => {
                let (Some(k), Some(v)) = (raw.u32(off), raw.u32(off + 4)) else {
                    break;
                };
                string(k).map(|key| Entry {
                    slot,
                    key: Some((text(&key.1), key)),
                    value: string(v),
                    text: true,
                })
            }
            ListKind::Objects => {
                let (Some(name), Some(ty), Some(v)) =
                    (raw.u32(off), raw.u16(off + 4), raw.u32(off + 8))
                else {
                    break;
                };
                string(name).map(|key| Entry {
                    slot,
                    key: Some((text(&key.1), key)),
                    value: string(v),
                    // Only string annotations (type 1) are text.
                    text: ty == 1,
                })
            }
        };
        out.extend(entry);
    }
    out
}

fn write_u32(buf: &mut [u8], off: usize, value: u32, order: Order) {
    let bytes = match order {
        Order::Le => value.to_le_bytes(),
        Order::Be => value.to_be_bytes(),
    };
    if let Some(field) = off.checked_add(4).and_then(|end| buf.get_mut(off..end)) {
        field.copy_from_slice(&bytes);
    }
}

/// Empties a counted string: its length and its bytes zeroed.
fn erase(buf: &mut [u8], (len_off, bytes): &(usize, Range<usize>)) {
    zero(buf, *len_off..len_off.saturating_add(4));
    zero(buf, bytes.clone());
}

/// Removes the entries at `slots` (ascending) from `list`: the others move up in
/// order, the freed slots are zeroed and the count goes down, so the list reads
/// as if they had never been there.
fn remove_slots(buf: &mut [u8], layout: &Layout, list: &AnnotationList, slots: &[usize]) {
    let (n, claimed) = list.counts(&layout.raw(buf));
    let mut next = 0;
    for slot in 0..n {
        if slots.binary_search(&slot).is_ok() {
            continue;
        }
        if slot != next {
            buf.copy_within(list.slot(slot), list.slot(next).start);
        }
        next += 1;
    }
    for slot in next..n {
        zero(buf, list.slot(slot));
    }
    let removed = u32::try_from(n - next).unwrap_or(u32::MAX);
    write_u32(
        buf,
        list.data.start,
        claimed.saturating_sub(removed),
        layout.order,
    );
}

/// Applies the annotation rules to the Crashpad annotations inside the dump, in
/// place: a dropped annotation is removed from its list (its key and value
/// strings zeroed), a replaced value is written over the old (truncated to its
/// length). Returns the ranges of values the text scrubbing must leave alone
/// (allowed keys).
pub(super) fn scrub_crashpad_annotations(
    buf: &mut [u8],
    layout: &Layout,
    config: &ScrubConfig,
    summary: &mut ScrubSummary,
) -> Vec<Range<usize>> {
    let mut protected = Vec::new();
    let rules = &config.annotations;
    for s in layout.streams_of(St::CrashpadInfoStream) {
        let found: Vec<(AnnotationList, Vec<Entry>)> = {
            let raw = layout.raw(buf);
            annotation_lists(&raw, &s.data)
                .into_iter()
                .map(|list| {
                    let entries = entries(&raw, buf, &list);
                    (list, entries)
                })
                .collect()
        };
        let value_text = |buf: &[u8], v: &Range<usize>| {
            String::from_utf8_lossy(&buf[v.clone()])
                .trim_end_matches('\0')
                .to_owned()
        };
        let url_allowed = {
            let pairs: Vec<(&str, String)> = found
                .iter()
                .flat_map(|(_, entries)| entries)
                .filter(|e| e.text)
                .filter_map(|e| {
                    Some((
                        e.key.as_ref()?.0.as_str(),
                        value_text(buf, &e.value.as_ref()?.1),
                    ))
                })
                .collect();
            rules.url_allowed(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        };
        for (list, entries) in found {
            let mut removed = Vec::new();
            for entry in entries {
                let key = entry.key.as_ref().map_or("", |(k, _)| k.as_str());
                let decision = match (&entry.value, entry.text) {
                    (Some((_, value)), true) => {
                        if rules.is_allowed(key) {
                            protected.push(value.clone());
                        }
                        rules.decide(key, &value_text(buf, value), url_allowed)
                    }
                    _ => rules
                        .dropped(key, url_allowed)
                        .map_or(Decision::Keep, Decision::Drop),
                };
                match decision {
                    Decision::Keep => {}
                    Decision::Drop(kind) => {
                        if let Some((_, string)) = &entry.key {
                            erase(buf, string);
                        }
                        if let Some(string) = &entry.value {
                            erase(buf, string);
                        }
                        removed.push(entry.slot);
                        summary.add(kind, 1);
                    }
                    Decision::Replace(new, kinds) => {
                        if let Some(value) = &entry.value {
                            overwrite_value(buf, layout.order, value, &new);
                        }
                        for kind in kinds {
                            summary.add(kind, 1);
                        }
                    }
                }
            }
            if !removed.is_empty() {
                remove_slots(buf, layout, &list, &removed);
            }
        }
    }
    protected
}

/// Writes `new` over a counted string's bytes (truncated to their length, at a
/// character boundary), zeroes the rest and sets the length.
fn overwrite_value(
    buf: &mut [u8],
    order: Order,
    (len_off, value): &(usize, Range<usize>),
    new: &str,
) {
    let mut n = new.len().min(value.len());
    while !new.is_char_boundary(n) {
        n -= 1;
    }
    let Some(bytes) = buf.get_mut(value.clone()) else {
        return;
    };
    bytes[..n].copy_from_slice(&new.as_bytes()[..n]);
    bytes[n..].fill(0);
    write_u32(buf, *len_off, n as u32, order);
}
