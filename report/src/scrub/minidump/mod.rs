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
//! A dump too large to hold whole is scrubbed the same way a window at a time
//! (`windowed.rs`, [`scrub_minidump_windowed`]).
//!
//! Integers, pointers and stack frames are never rewritten, so the dump unwinds
//! the same. Every read is bounds-checked: a hostile dump is scrubbed as far as
//! its structure can be followed and never panics.

mod layout;
mod memory;
mod stack;
mod streams;
mod windowed;

pub(crate) use layout::{Layout, RegionKind};

use layout::{RangeSet, SavedHeader, zero};
use memory::{Crowding, TextRules, learn_names, scrub_text_everywhere};
pub use stack::{CutStacks, StackHoles, cut_stack_memory, restore_stack_memory};
use streams::{scrub_crashpad_annotations, scrub_process_details, scrub_system_streams};
pub use windowed::{DumpPages, WindowLimits, WindowedScrub, scrub_minidump_windowed};

use super::config::ScrubConfig;
use super::error::ScrubError;
use super::summary::ScrubSummary;
use super::text::KnownValues;

/// Scrubs `dump` in place with `config`, keeping its length, so it still parses
/// with the `minidump` crate and unwinds the same. Returns what was removed.
///
/// What goes: the Linux environment, command line, process status, auxv and
/// memory maps streams (the maps listed as unused); serial-like `/proc/cpuinfo`
/// fields; lsb-release fields other than the distribution's name and version;
/// Windows token and comment streams, macOS boot arguments; the misc-info time
/// zone; handle object names; Crashpad report and client ids;
/// thread names that hold paths; user names in paths anywhere (`/home/<u>/`,
/// `/Users/<u>/`, `C:\Users\<u>\` … become `*` of the same length); user and host
/// names learned from the dump itself (`USER=`, `HOSTNAME=`, `COMPUTERNAME=`, home
/// directories) and [`ScrubConfig::known_values`], wherever they occur as words;
/// `KEY=value` strings, e-mail and IP addresses, tokens and keys in captured
/// memory (ASCII and UTF-16); Crashpad annotations per
/// [`ScrubConfig::annotations`] (one whose key the rules drop is removed from its
/// list, its key and value zeroed); heap memory. Stack memory stays (see
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
    Ok(scrub_laid_out(dump, &layout, config))
}

/// [`scrub_minidump`] on the dump `buf[start..]`, then [`cut_stack_memory`] on
/// the scrubbed dump, its layout read once for both (scrubbing keeps every
/// structure where it is). Returns what was scrubbed and the stack memory cut
/// out.
///
/// # Errors
/// [`ScrubError::Unreadable`] as [`scrub_minidump`]; nothing is changed then.
///
/// # Panics
/// When `start` is beyond the end of `buf`.
pub fn scrub_and_cut_stack_memory(
    buf: &mut Vec<u8>,
    start: usize,
    config: &ScrubConfig,
) -> Result<(ScrubSummary, CutStacks), ScrubError> {
    let layout = Layout::read(&buf[start..])?;
    let summary = scrub_laid_out(&mut buf[start..], &layout, config);
    let holes = stack::stack_ranges(&buf[start..], &layout);
    Ok((summary, stack::cut_holes(buf, start, holes)))
}

/// [`scrub_minidump`] with the dump's layout read.
fn scrub_laid_out(dump: &mut [u8], layout: &Layout, config: &ScrubConfig) -> ScrubSummary {
    let mut summary = ScrubSummary::default();

    // Names to mask everywhere, learned before anything is rewritten.
    let crowding = Crowding::new(dump.len());
    let known = if config.user_names {
        known_values(learn_names(dump, &config.annotations, &crowding), config)
    } else {
        KnownValues::default()
    };
    let header = SavedHeader::of(dump);
    let protected = scrub_structure(dump, layout, config, &mut summary);
    header.put_back(dump, 0..dump.len());
    if config.heap_memory {
        for r in layout.ranges_of(RegionKind::Heap) {
            let len = r.len() as u64;
            if zero(dump, r) {
                summary.add("heap_memory_regions", 1);
                summary.add("heap_memory_bytes", len);
            }
        }
    }
    let rules = TextRules {
        layout,
        config,
        known: &known,
        protected: RangeSet::new(protected),
        crowding: &crowding,
    };
    scrub_text_everywhere(dump, &rules, &mut summary);
    header.put_back(dump, 0..dump.len());
    summary
}

/// The values to mask everywhere: those learned from the dump and the
/// configured ones.
fn known_values(mut learned: Vec<String>, config: &ScrubConfig) -> KnownValues {
    learned.extend(config.known_values.iter().cloned());
    KnownValues::new(learned.iter().map(String::as_str))
}

/// The scrubs of the dump's structure (streams and the strings they point to),
/// in order; returns the ranges of the annotation values the annotation rules
/// allow, which the text rules leave alone.
fn scrub_structure(
    dump: &mut [u8],
    layout: &Layout,
    config: &ScrubConfig,
    summary: &mut ScrubSummary,
) -> Vec<std::ops::Range<usize>> {
    if config.system_streams {
        scrub_system_streams(dump, layout, summary);
    }
    if config.process_details {
        scrub_process_details(dump, layout, summary);
    }
    // Values of allowed annotations (versions look like IP addresses) are left
    // to the annotation rules.
    scrub_crashpad_annotations(dump, layout, config, summary)
}

/// Zeroes the captured stack memory of every thread (once a report is fully
/// symbolicated, nothing needs it). Returns the number of bytes of stack memory
/// now zero. The dump keeps its length and still parses; it no longer unwinds
/// past the context frames. ([`cut_stack_memory`] takes the same bytes out and
/// keeps them apart.)
///
/// # Errors
/// [`ScrubError::Unreadable`] when `dump` has no readable minidump header.
pub fn drop_stack_memory(dump: &mut [u8]) -> Result<u64, ScrubError> {
    let layout = Layout::read(dump)?;
    let mut total = 0u64;
    for r in stack::stack_ranges(dump, &layout) {
        total += r.len() as u64;
        zero(dump, r);
    }
    Ok(total)
}
