//! Stream scrubbing: system-detail streams zeroed or blanked line by line,
//! process details (time zone, Crashpad ids, thread and handle names) overwritten
//! where they lie, and the Crashpad annotations put through the annotation rules.

use std::ops::Range;

use minidump_common::format::MINIDUMP_STREAM_TYPE as St;

use super::layout::{Layout, Order, zero};
use crate::scrub::annotations::Decision;
use crate::scrub::config::ScrubConfig;
use crate::scrub::summary::ScrubSummary;

pub(super) fn scrub_system_streams(buf: &mut [u8], layout: &Layout, summary: &mut ScrubSummary) {
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
    // The two `key<sep>value` text streams differ in separator, in the keys they
    // blank and in whether the whole line goes: alike in shape only.
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

/// A Crashpad annotation found in the dump: its key (none for list annotations),
/// the offset of its value's length field and the value's bytes.
type AnnotationEntry = (Option<String>, (usize, Range<usize>));

/// Applies the annotation rules to the Crashpad annotations inside the dump, in
/// place: a dropped value becomes empty (length 0, bytes zeroed), a replaced one
/// is written over the old (truncated to its length).
pub(super) fn scrub_crashpad_annotations(
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
