//! Text scrubbing over the whole file: user and host names learned from the dump,
//! and every printable run searched for the value rules, with environment-style
//! strings too in captured memory.

use std::ops::Range;

use super::layout::{Layout, RangeSet, RegionKind, merge_ranges};
use crate::scrub::annotations::AnnotationRules;
use crate::scrub::config::ScrubConfig;
use crate::scrub::runs::for_each_run;
use crate::scrub::summary::ScrubSummary;
use crate::scrub::text::{
    Encoding, Fill, Finding, Kind, KnownValues, env_assignment_start, find_values, merge_findings,
    overwrite, user_names_in_paths,
};

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
pub(super) fn learn_names(buf: &[u8], rules: &AnnotationRules) -> Vec<String> {
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

/// Which text rules apply to a part of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Captured memory: environment strings too, found values zeroed.
    Memory,
    /// Streams and strings: found values masked with `*`.
    Structure,
}

pub(super) fn scrub_text_everywhere(
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
            // Words the unwinder reads stay as they were (`Layout::unwinder_words`).
            let kept: Vec<(Range<usize>, Vec<u8>)> = layout
                .unwinder_words(buf, &r)
                .into_iter()
                .map(|w| (w.clone(), buf[w].to_vec()))
                .collect();
            if kept.is_empty() {
                if overwrite(buf, r, fill, encoding) {
                    summary.add(kind.name(), 1);
                }
                continue;
            }
            let before = buf.get(r.clone()).map(<[u8]>::to_vec);
            overwrite(buf, r.clone(), fill, encoding);
            for (w, bytes) in kept {
                buf[w].copy_from_slice(&bytes);
            }
            if buf.get(r).map(<[u8]>::to_vec) != before {
                summary.add(kind.name(), 1);
            }
        }
    }
}
