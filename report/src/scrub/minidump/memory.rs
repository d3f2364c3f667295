//! Text scrubbing over the whole file: user and host names learned from the dump,
//! and every printable run searched for the value rules, with environment-style
//! strings too in captured memory.

use std::cell::Cell;
use std::ops::Range;

use super::layout::{Layout, RangeSet, RegionKind, merge_ranges};
use crate::scrub::annotations::AnnotationRules;
use crate::scrub::config::ScrubConfig;
use crate::scrub::runs::for_each_run;
use crate::scrub::summary::ScrubSummary;
use crate::scrub::text::{
    Encoding, Fill, Finding, Kind, KnownValues, env_assignment_start, find_values_up_to,
    merge_findings, overwrite, settle_findings, user_names_in_paths,
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
pub(super) fn learn_names(buf: &[u8], rules: &AnnotationRules, crowding: &Crowding) -> Vec<String> {
    let mut learned = Learned::default();
    learned.learn(buf, rules, crowding);
    learned.finish()
}

/// How many findings (names learned, then text to scrub) one dump's text may
/// hold before the rest of it is masked whole, unsearched (`crowded_text_run`).
///
/// Each finding costs work (a regex's captures, a value compared, an edit), so a
/// dump made of nothing else (`/home/a` over and over) scrubs at about 12 MB/s
/// against several hundred for ordinary dumps: 17 s of a core for a 200 MiB
/// upload. Ordinary dumps hold a few hundred findings; past the bound the
/// report keeps less, never searches less.
#[derive(Debug)]
pub(super) struct Crowding {
    left: Cell<u64>,
    over: Cell<bool>,
}

/// Findings any dump may hold.
const FINDINGS_BASE: u64 = 1 << 16;
/// And one more for each this many bytes of it.
const BYTES_PER_FINDING: u64 = 256;

impl Crowding {
    /// The bound for a dump of `len` bytes.
    pub(super) fn new(len: usize) -> Crowding {
        Crowding::with_bound(FINDINGS_BASE + len as u64 / BYTES_PER_FINDING)
    }

    fn with_bound(findings: u64) -> Crowding {
        Crowding {
            left: Cell::new(findings),
            over: Cell::new(false),
        }
    }

    /// Counts `n` more findings.
    fn count(&self, n: usize) {
        let left = self.left.get();
        let n = n as u64;
        self.left.set(left.saturating_sub(n));
        if n > left {
            self.over.set(true);
        }
    }

    /// Whether the dump held more findings than it may: the rest of its text
    /// is masked whole.
    fn over(&self) -> bool {
        self.over.get()
    }

    /// Marks the dump as holding more findings than it may (a search stopped
    /// at the bound).
    fn set_over(&self) {
        self.over.set(true);
    }

    /// How many more findings the dump may hold.
    fn left(&self) -> usize {
        usize::try_from(self.left.get()).unwrap_or(usize::MAX)
    }
}

/// Names and secret values learned so far, from one buffer or from the parts of
/// one taken in turn (in any order: [`Learned::finish`] sorts them).
#[derive(Debug, Default)]
pub(super) struct Learned {
    names: Vec<String>,
    secrets: Vec<String>,
}

impl Learned {
    /// Learns from the runs of `buf`, while `crowding` is not over.
    pub(super) fn learn(&mut self, buf: &[u8], rules: &AnnotationRules, crowding: &Crowding) {
        let Learned { names, secrets } = self;
        for_each_run(buf, |run| {
            if crowding.over() {
                return;
            }
            let before = names.len() + secrets.len();
            let text = run.text;
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
                let ssh = key
                    .as_bytes()
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"SSH_"));
                let secret = ssh || rules.is_secret_key(key);
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
            let limit = crowding.left().saturating_add(1);
            let paths = user_names_in_paths(text, limit);
            if paths.len() >= limit {
                crowding.set_over();
            }
            for r in paths {
                // User names are short; a long "name" is something else.
                if r.len() <= 64 {
                    names.push(text[r].to_owned());
                }
            }
            crowding.count(names.len() + secrets.len() - before);
        });
        // Bounded while parts keep coming: the kept ones are the first in order.
        for list in [&mut *names, &mut *secrets] {
            if list.len() > 4 * MAX_LEARNED_SECRETS {
                list.sort();
                list.dedup();
                list.truncate(MAX_LEARNED_SECRETS);
            }
        }
    }

    /// The names, then the secret values, to mask everywhere.
    pub(super) fn finish(self) -> Vec<String> {
        let Learned {
            mut names,
            mut secrets,
        } = self;
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
}

/// At most this many learned names, and as many secret values, are masked
/// everywhere.
const MAX_LEARNED_SECRETS: usize = 256;

/// Which text rules apply to a part of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Context {
    /// Captured memory: environment strings too, found values zeroed.
    Memory,
    /// Streams and strings: found values masked with `*`.
    Structure,
    /// Heap memory already zeroed: not searched.
    Zeroed,
}

/// The parts of a file of `len` bytes with the text rules of each, in file
/// order and covering it: captured memory (merged regions), zeroed heap, and
/// the rest. Text runs are searched within one part at a time.
pub(super) fn text_segments(
    layout: &Layout,
    config: &ScrubConfig,
    len: usize,
) -> Vec<(Range<usize>, Context)> {
    let mut memory: Vec<Range<usize>> = layout
        .regions
        .iter()
        .filter(|r| r.kind != RegionKind::Heap || !config.heap_memory)
        .map(|r| r.file.start.min(len)..r.file.end.min(len))
        .collect();
    merge_ranges(&mut memory);
    let mut skip = if config.heap_memory {
        layout.ranges_of(RegionKind::Heap)
    } else {
        Vec::new()
    };
    for r in &mut skip {
        *r = r.start.min(len)..r.end.min(len);
    }
    // Memory counts first, heap is skipped (already zero).
    let memory_set = RangeSet::new(memory.clone());
    skip.retain(|h| !memory_set.overlaps(h));
    merge_ranges(&mut skip);
    let gap_context = if layout.memory_list_read {
        Context::Structure
    } else {
        Context::Memory
    };
    let mut segments: Vec<(Range<usize>, Context)> = memory
        .iter()
        .map(|r| (r.clone(), Context::Memory))
        .chain(skip.iter().map(|r| (r.clone(), Context::Zeroed)))
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
    if pos < len {
        segments.push((pos..len, gap_context));
    }
    segments.retain(|(r, _)| !r.is_empty());
    segments.sort_by_key(|(r, _)| r.start);
    segments
}

/// What the text rules of a dump need besides its bytes.
pub(super) struct TextRules<'a> {
    pub(super) layout: &'a Layout,
    pub(super) config: &'a ScrubConfig,
    pub(super) known: &'a KnownValues,
    /// Values of allowed annotations, left to the annotation rules.
    pub(super) protected: RangeSet<usize>,
    /// The dump's bound on findings, counted by the learning before.
    pub(super) crowding: &'a Crowding,
}

impl TextRules<'_> {
    /// Whether any text rule is on.
    pub(super) fn any(&self) -> bool {
        self.config.user_names || self.config.memory_text
    }
}

pub(super) fn scrub_text_everywhere(
    buf: &mut [u8],
    rules: &TextRules<'_>,
    summary: &mut ScrubSummary,
) {
    if !rules.any() {
        return;
    }
    for (range, ctx) in text_segments(rules.layout, rules.config, buf.len()) {
        scrub_text_in(buf, range, ctx, rules, summary);
    }
}

/// Scrubs the text runs of `buf[range]`, a part of a segment of
/// [`text_segments`] (all of it, or a piece no text run crosses) with the rules
/// of `ctx`.
pub(super) fn scrub_text_in(
    buf: &mut [u8],
    range: Range<usize>,
    ctx: Context,
    rules: &TextRules<'_>,
    summary: &mut ScrubSummary,
) {
    let TextRules {
        layout,
        config,
        known,
        protected,
        crowding,
    } = rules;
    if ctx == Context::Zeroed {
        return;
    }
    let mut edits: Vec<(Range<usize>, Fill, Kind, Encoding)> = Vec::new();
    let Some(seg) = buf.get(range.clone()) else {
        return;
    };
    for_each_run(seg, |run| {
        let text = run.text;
        let br = run.buffer_range(&(0..text.len()));
        let whole = range.start + br.start..range.start + br.end;
        // The header and directory are searched whatever the bound: the dump
        // stays readable.
        let head = layout.head.overlaps(&whole);
        // Allowed annotation values too: kept less, never searched less.
        let mask_whole = |edits: &mut Vec<_>| {
            let fill = match ctx {
                Context::Memory => Fill::Zero,
                _ => Fill::Mask,
            };
            edits.push((whole.clone(), fill, Kind::Crowded, run.encoding));
        };
        if crowding.over() && !head {
            mask_whole(&mut edits);
            return;
        }
        // Searched up to one finding past the dump's bound, not further.
        let limit = if head {
            usize::MAX
        } else {
            crowding.left().saturating_add(1)
        };
        let mut findings: Vec<Finding> = Vec::new();
        if ctx == Context::Memory
            && config.memory_text
            && let Some(start) = env_assignment_start(text)
        {
            findings.push(Finding {
                range: start..text.len(),
                kind: Kind::Environment,
            });
        }
        let find = |text: &str, out: &mut Vec<Finding>, limit: usize| {
            let complete =
                find_values_up_to(text, out, limit) && known.find_up_to(text, out, limit);
            out.retain(|f| match f.kind {
                Kind::UserPath | Kind::KnownValue => config.user_names,
                _ => config.memory_text,
            });
            complete
        };
        // The assignment found above is masked with the values (a value glued
        // to its key stands alone once it is gone), but not counted in their
        // limit.
        let limit = limit.saturating_add(findings.len());
        let complete =
            find(text, &mut findings, limit) && settle_findings(text, &mut findings, limit, find);
        let findings = merge_findings(findings);
        crowding.count(findings.len());
        if !complete {
            crowding.set_over();
        }
        if crowding.over() && !head {
            mask_whole(&mut edits);
            return;
        }
        for f in findings {
            let fill = match (ctx, f.kind) {
                (Context::Memory, Kind::UserPath | Kind::KnownValue) => Fill::Mask,
                (Context::Memory, _) => Fill::Zero,
                _ => Fill::Mask,
            };
            let br = run.buffer_range(&f.range);
            let abs = range.start + br.start..range.start + br.end;
            if !matches!(f.kind, Kind::UserPath | Kind::KnownValue) && protected.overlaps(&abs) {
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
