//! A dump's captured stack memory, cut out of it and put back: what lets a
//! server keep the stacks under their own key and drop them by destroying it.
//!
//! [`cut_stack_memory`] takes out the same bytes [`drop_stack_memory`] zeroes
//! (the merged file ranges of every thread's stack, [`Layout::ranges_of`]): the
//! rest of the dump moves up over them, so it is stored no larger than it was,
//! and the stacks are returned apart with where they were ([`StackHoles`]).
//! [`restore_stack_memory`] makes the whole dump again, with the stacks or, when
//! they are gone, with zeros there — exactly what [`drop_stack_memory`] leaves.
//!
//! [`drop_stack_memory`]: super::drop_stack_memory

use std::ops::Range;

use super::layout::{Layout, RegionKind};
use crate::scrub::error::ScrubError;

/// Magic at the start of [`StackHoles::to_bytes`] (format version 1).
const MAGIC: &[u8; 4] = b"MSH1";
/// Bytes of the header: the magic and the hole count.
const HEADER: usize = MAGIC.len() + 4;
/// Bytes of one hole: offset and length.
const HOLE: usize = 16;

/// Where stack memory was cut out of a dump: file ranges of the whole dump, in
/// order and apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackHoles(Vec<Range<usize>>);

impl StackHoles {
    /// Holes at `ranges` (sorted, apart).
    pub(super) fn from_ranges(ranges: Vec<Range<usize>>) -> StackHoles {
        StackHoles(ranges)
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.0
    }

    /// How many bytes of stack memory they held: what
    /// [`drop_stack_memory`](super::drop_stack_memory) zeroes.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|r| r.len() as u64).sum()
    }

    /// Whether the dump had no stack memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The holes as bytes to store: `MSH1`, their count (`u32`), each as its
    /// offset and length (`u64`, `u64`), all little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + HOLE * self.0.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.0.len() as u32).to_le_bytes());
        for r in &self.0 {
            out.extend_from_slice(&(r.start as u64).to_le_bytes());
            out.extend_from_slice(&(r.len() as u64).to_le_bytes());
        }
        out
    }

    /// Reads what [`StackHoles::to_bytes`] wrote.
    ///
    /// # Errors
    /// [`ScrubError::BadStackMemory`] when `bytes` are not that, or the holes are
    /// out of order or overlap.
    pub fn from_bytes(bytes: &[u8]) -> Result<StackHoles, ScrubError> {
        read_holes(bytes).ok_or(ScrubError::BadStackMemory)
    }
}

fn read_holes(bytes: &[u8]) -> Option<StackHoles> {
    let u64_at = |at: usize| -> Option<usize> {
        let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        usize::try_from(u64::from_le_bytes(b)).ok()
    };
    if bytes.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let count: [u8; 4] = bytes.get(MAGIC.len()..HEADER)?.try_into().ok()?;
    let count = u32::from_le_bytes(count) as usize;
    if count.checked_mul(HOLE)?.checked_add(HEADER)? != bytes.len() {
        return None;
    }
    let mut holes = Vec::with_capacity(count);
    let mut end_of_last = 0;
    for i in 0..count {
        let at = HEADER + i * HOLE;
        let start = u64_at(at)?;
        let end = start.checked_add(u64_at(at + 8)?)?;
        if start < end_of_last {
            return None;
        }
        end_of_last = end;
        holes.push(start..end);
    }
    Some(StackHoles(holes))
}

/// A dump's stack memory, cut out by [`cut_stack_memory`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CutStacks {
    /// Where it was in the dump.
    pub holes: StackHoles,
    /// Its bytes, hole after hole.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for CutStacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bytes: they are the dump's stacks.
        f.debug_struct("CutStacks")
            .field("holes", &self.holes)
            .finish_non_exhaustive()
    }
}

/// The file ranges of `dump` that hold stack memory, merged and in order.
pub(super) fn stack_ranges(dump: &[u8], layout: &Layout) -> Vec<Range<usize>> {
    let mut ranges = layout.ranges_of(RegionKind::Stack);
    ranges.retain(|r| r.end <= dump.len());
    ranges
}

/// Cuts the captured stack memory of every thread out of the dump
/// `buf[start..]` (what is before `start` stays): the rest of the dump moves
/// up over it and `buf` is shortened by its length. Returns it with where it
/// was.
///
/// # Errors
/// [`ScrubError::Unreadable`] when the dump has no readable minidump header;
/// nothing is changed then.
///
/// # Panics
/// When `start` is beyond the end of `buf`.
pub fn cut_stack_memory(buf: &mut Vec<u8>, start: usize) -> Result<CutStacks, ScrubError> {
    let dump = &buf[start..];
    let layout = Layout::read(dump)?;
    let holes = stack_ranges(dump, &layout);
    Ok(cut_holes(buf, start, holes))
}

/// Cuts `holes` (sorted, apart, within the dump `buf[start..]`, offsets from
/// `start`) out of `buf`; see [`cut_stack_memory`].
pub(super) fn cut_holes(buf: &mut Vec<u8>, start: usize, holes: Vec<Range<usize>>) -> CutStacks {
    let total: usize = holes.iter().map(|r| r.len()).sum();
    let mut bytes = Vec::with_capacity(total);
    // Each kept segment moves up by the stack bytes before it.
    let mut to = start;
    let mut from = start;
    for hole in &holes {
        let (hole_start, hole_end) = (start + hole.start, start + hole.end);
        bytes.extend_from_slice(&buf[hole_start..hole_end]);
        buf.copy_within(from..hole_start, to);
        to += hole_start - from;
        from = hole_end;
    }
    let end = buf.len();
    buf.copy_within(from..end, to);
    buf.truncate(to + (end - from));
    CutStacks {
        holes: StackHoles(holes),
        bytes,
    }
}

/// The whole dump again from `cut` (a dump [`cut_stack_memory`] cut its stack
/// memory out of, at `holes`): with the stack memory `stack` put back, or
/// zeros where it was when `None`.
///
/// # Errors
/// [`ScrubError::BadStackMemory`] when `holes` do not fit `cut` (reaching
/// past the dump's end) or `stack` is not as long as they are.
pub fn restore_stack_memory(
    cut: &[u8],
    holes: &StackHoles,
    stack: Option<&[u8]>,
) -> Result<Vec<u8>, ScrubError> {
    let total = usize::try_from(holes.len()).map_err(|_| ScrubError::BadStackMemory)?;
    let whole = cut
        .len()
        .checked_add(total)
        .ok_or(ScrubError::BadStackMemory)?;
    if holes.0.last().is_some_and(|r| r.end > whole) || stack.is_some_and(|s| s.len() != total) {
        return Err(ScrubError::BadStackMemory);
    }
    let mut out = Vec::with_capacity(whole);
    let (mut from, mut taken) = (0, 0);
    for hole in &holes.0 {
        // The kept bytes before the hole, then the hole.
        let kept = hole.start - out.len();
        out.extend_from_slice(&cut[from..from + kept]);
        from += kept;
        match stack {
            Some(stack) => out.extend_from_slice(&stack[taken..taken + hole.len()]),
            None => out.resize(out.len() + hole.len(), 0),
        }
        taken += hole.len();
    }
    out.extend_from_slice(&cut[from..]);
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::scrub::{ScrubConfig, drop_stack_memory, scrub_minidump};

    /// Every dump of the shared test data.
    pub(in crate::scrub) fn testdata_dumps() -> Vec<PathBuf> {
        let root = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/testdata"
        ));
        let mut dumps = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("test data directory") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "dmp") {
                    dumps.push(path);
                }
            }
        }
        dumps.sort();
        dumps
    }

    #[test]
    fn cut_then_restored_is_every_test_dump_and_restored_without_stacks_is_dropped() {
        let dumps = testdata_dumps();
        assert_eq!(dumps.len(), 13, "{dumps:?}");
        for path in dumps {
            let raw = std::fs::read(&path).unwrap();
            let mut scrubbed = raw.clone();
            scrub_minidump(&mut scrubbed, &ScrubConfig::default()).unwrap();
            // As received, and as stored (cut after scrubbing).
            for original in [raw, scrubbed] {
                let name = path.display();
                let mut dropped = original.clone();
                let zeroed = drop_stack_memory(&mut dropped).unwrap();
                assert!(zeroed > 0, "{name}: no stack memory");

                // After a header of the caller's, which stays.
                let mut buf = b"HEAD".to_vec();
                buf.extend_from_slice(&original);
                let stacks = cut_stack_memory(&mut buf, 4).unwrap();
                assert_eq!(&buf[..4], b"HEAD");
                let cut = &buf[4..];
                assert_eq!(stacks.holes.len(), zeroed, "{name}");
                assert_eq!(stacks.bytes.len() as u64, zeroed, "{name}");
                assert_eq!(cut.len() as u64 + zeroed, original.len() as u64);

                let whole = restore_stack_memory(cut, &stacks.holes, Some(&stacks.bytes));
                assert!(whole.unwrap() == original, "{name}: restored");
                let stripped = restore_stack_memory(cut, &stacks.holes, None).unwrap();
                assert!(stripped == dropped, "{name}: without stacks");

                let holes = StackHoles::from_bytes(&stacks.holes.to_bytes()).unwrap();
                assert_eq!(holes, stacks.holes);
            }
        }
    }

    #[test]
    fn scrubbing_and_cutting_at_once_is_scrubbing_then_cutting() {
        for path in testdata_dumps() {
            let raw = std::fs::read(&path).unwrap();
            let config = ScrubConfig::default();
            let mut apart = b"HEAD".to_vec();
            apart.extend_from_slice(&raw);
            let summary = scrub_minidump(&mut apart[4..], &config).unwrap();
            let stacks = cut_stack_memory(&mut apart, 4).unwrap();
            let mut once = b"HEAD".to_vec();
            once.extend_from_slice(&raw);
            let (summary_once, stacks_once) =
                crate::scrub::scrub_and_cut_stack_memory(&mut once, 4, &config).unwrap();
            let name = path.display();
            assert!(once == apart, "{name}: the dump");
            assert_eq!(summary_once, summary, "{name}");
            assert_eq!(stacks_once.holes, stacks.holes, "{name}");
            assert!(stacks_once.bytes == stacks.bytes, "{name}: the stacks");
        }
    }

    fn small_case() -> (Vec<u8>, Vec<u8>, CutStacks) {
        let path = &testdata_dumps()[0];
        let original = std::fs::read(path).unwrap();
        let mut cut = original.clone();
        let stacks = cut_stack_memory(&mut cut, 0).unwrap();
        assert!(!stacks.holes.is_empty());
        (original, cut, stacks)
    }

    #[test]
    fn holes_or_stacks_that_do_not_fit_are_refused() {
        let (_, cut, stacks) = small_case();
        // Stack bytes of another length.
        let short = &stacks.bytes[1..];
        assert!(restore_stack_memory(&cut, &stacks.holes, Some(short)).is_err());
        // A dump shorter than the holes reach.
        let last = stacks.holes.ranges().last().unwrap().clone();
        let whole = cut.len() + stacks.bytes.len();
        if last.end == whole {
            let shorter = &cut[..cut.len() - 1];
            assert!(restore_stack_memory(shorter, &stacks.holes, None).is_err());
        }
        let beyond = StackHoles(std::iter::once(whole - 1..whole + 8).collect());
        assert!(restore_stack_memory(&cut, &beyond, None).is_err());
        // No holes: the dump as it is.
        let none = StackHoles::default();
        assert_eq!(restore_stack_memory(&cut, &none, Some(&[])).unwrap(), cut);
    }

    #[test]
    fn malformed_holes_are_refused() {
        let good = StackHoles(vec![10..20, 20..24, 30..31]).to_bytes();
        assert!(StackHoles::from_bytes(&good).is_ok());
        let mut bad: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"MSH1".to_vec(),
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), b"x"].concat(),
            [b"MSH2", &good[4..]].concat(),
        ];
        let mut more = good.clone();
        more[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        bad.push(more);
        // Out of order: the second starts inside the first.
        bad.push(StackHoles(vec![10..20, 15..30]).to_bytes());
        // A length that overflows.
        let mut huge = StackHoles(std::iter::once(10..20).collect()).to_bytes();
        huge[HEADER + 8..HEADER + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        bad.push(huge);
        for bytes in bad {
            assert!(matches!(
                StackHoles::from_bytes(&bytes),
                Err(ScrubError::BadStackMemory)
            ));
        }
    }

    #[test]
    fn an_unreadable_dump_is_not_cut() {
        let mut dump = b"MDMP\x93\xa7\0\0not a dump".to_vec();
        let before = dump.clone();
        assert!(cut_stack_memory(&mut dump, 0).is_err());
        assert_eq!(dump, before);
    }

    #[test]
    fn its_debug_form_shows_no_bytes() {
        let (_, _, stacks) = small_case();
        let shown = format!("{stacks:?}");
        assert!(shown.starts_with("CutStacks { holes: "), "{shown}");
        assert!(!shown.contains(&format!("{:?}", &stacks.bytes[..4])));
    }
}
