//! A dump's captured stack memory, taken out of it and put back: what lets a
//! server keep the stacks under their own key and drop them by destroying it.
//!
//! [`split_stack_memory`] zeroes the same bytes [`drop_stack_memory`] does
//! (the merged file ranges of every thread's stack, [`Layout::ranges_of`]) and
//! returns them with where they go, as one buffer ([`StackMemory`]);
//! [`splice_stack_memory`] writes them back. The dump without them is exactly
//! what [`drop_stack_memory`] makes of it.
//!
//! The buffer: `MST1`, the number of ranges (`u32`), each range as its file
//! offset and length (`u64`, `u64`), then the bytes of every range in order; all
//! little-endian.
//!
//! [`drop_stack_memory`]: super::drop_stack_memory

use std::ops::Range;

use super::layout::{Layout, RegionKind};
use crate::scrub::error::ScrubError;

/// Magic at the start of a [`StackMemory`] buffer (format version 1).
const MAGIC: &[u8; 4] = b"MST1";
/// Bytes of the header: the magic and the range count.
const HEADER: usize = MAGIC.len() + 4;
/// Bytes of one range: offset and length.
const RANGE: usize = 16;

/// The stack memory of a dump, taken out by [`split_stack_memory`]: where each
/// stack lies in the dump and its bytes, in one buffer to store as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct StackMemory {
    encoded: Vec<u8>,
    bytes: u64,
}

impl std::fmt::Debug for StackMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bytes: they are the dump's stacks.
        f.debug_struct("StackMemory")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Default for StackMemory {
    /// The stack memory of a dump without any: no ranges.
    fn default() -> StackMemory {
        let mut encoded = MAGIC.to_vec();
        encoded.extend_from_slice(&0u32.to_le_bytes());
        StackMemory { encoded, bytes: 0 }
    }
}

impl StackMemory {
    /// The buffer to store ([`splice_stack_memory`] reads it).
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The buffer to store, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.encoded
    }

    /// How many bytes of stack memory it holds: what [`super::drop_stack_memory`]
    /// would have zeroed.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// Whether the dump had no stack memory.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Where the stacks lie in the dump: file ranges, in order.
    pub fn ranges(&self) -> Vec<Range<usize>> {
        read_ranges(&self.encoded, usize::MAX).unwrap_or_default()
    }
}

/// The file ranges of `dump` that hold stack memory, merged and in order.
pub(super) fn stack_ranges(dump: &[u8], layout: &Layout) -> Vec<Range<usize>> {
    let mut ranges = layout.ranges_of(RegionKind::Stack);
    ranges.retain(|r| r.end <= dump.len());
    ranges
}

/// Takes the captured stack memory of every thread out of `dump`: zeroes it
/// there, as [`drop_stack_memory`](super::drop_stack_memory) does, and returns
/// it with where it goes. The dump keeps its length and still parses.
///
/// # Errors
/// [`ScrubError::Unreadable`] when `dump` has no readable minidump header;
/// nothing is changed then.
pub fn split_stack_memory(dump: &mut [u8]) -> Result<StackMemory, ScrubError> {
    let layout = Layout::read(dump)?;
    let ranges = stack_ranges(dump, &layout);
    let total: usize = ranges.iter().map(|r| r.len()).sum();
    let mut encoded = Vec::with_capacity(HEADER + RANGE * ranges.len() + total);
    encoded.extend_from_slice(MAGIC);
    encoded.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
    for r in &ranges {
        encoded.extend_from_slice(&(r.start as u64).to_le_bytes());
        encoded.extend_from_slice(&(r.len() as u64).to_le_bytes());
    }
    for r in ranges {
        let bytes = &mut dump[r];
        encoded.extend_from_slice(bytes);
        bytes.fill(0);
    }
    Ok(StackMemory {
        encoded,
        bytes: total as u64,
    })
}

/// Puts stack memory taken out by [`split_stack_memory`] (its
/// [`StackMemory::as_bytes`]) back into `dump`. Returns how many bytes it wrote.
///
/// # Errors
/// [`ScrubError::BadStackMemory`] when `stack` is not such a buffer or does not
/// fit `dump` (a range beyond its end, ranges out of order); nothing is
/// changed then.
pub fn splice_stack_memory(dump: &mut [u8], stack: &[u8]) -> Result<u64, ScrubError> {
    let ranges = read_ranges(stack, dump.len()).ok_or(ScrubError::BadStackMemory)?;
    let mut at = HEADER + RANGE * ranges.len();
    for r in &ranges {
        let len = r.len();
        dump[r.clone()].copy_from_slice(&stack[at..at + len]);
        at += len;
    }
    Ok((at - HEADER - RANGE * ranges.len()) as u64)
}

/// The ranges of a stack memory buffer, checked against itself and a dump of
/// `dump_len` bytes: in order, apart, inside the dump, and their bytes exactly
/// the rest of the buffer.
fn read_ranges(stack: &[u8], dump_len: usize) -> Option<Vec<Range<usize>>> {
    let u64_at = |at: usize| -> Option<usize> {
        let b: [u8; 8] = stack.get(at..at.checked_add(8)?)?.try_into().ok()?;
        usize::try_from(u64::from_le_bytes(b)).ok()
    };
    if stack.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let count: [u8; 4] = stack.get(MAGIC.len()..HEADER)?.try_into().ok()?;
    let count = u32::from_le_bytes(count) as usize;
    let table_end = count.checked_mul(RANGE)?.checked_add(HEADER)?;
    if table_end > stack.len() {
        return None;
    }
    let mut ranges = Vec::with_capacity(count);
    let mut end_of_last = 0;
    let mut total = 0usize;
    for i in 0..count {
        let at = HEADER + i * RANGE;
        let start = u64_at(at)?;
        let len = u64_at(at + 8)?;
        let end = start.checked_add(len)?;
        if start < end_of_last || end > dump_len {
            return None;
        }
        end_of_last = end;
        total = total.checked_add(len)?;
        ranges.push(start..end);
    }
    (table_end.checked_add(total)? == stack.len()).then_some(ranges)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::scrub::{ScrubConfig, drop_stack_memory, scrub_minidump};

    /// Every dump of the shared test data.
    fn testdata_dumps() -> Vec<PathBuf> {
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
    fn split_then_splice_gives_every_test_dump_back_and_split_alone_drops_the_stacks() {
        let dumps = testdata_dumps();
        assert_eq!(dumps.len(), 13, "{dumps:?}");
        for path in dumps {
            let raw = std::fs::read(&path).unwrap();
            let mut scrubbed = raw.clone();
            scrub_minidump(&mut scrubbed, &ScrubConfig::default()).unwrap();
            // As received, and as stored (split after scrubbing).
            for original in [raw, scrubbed] {
                let mut split = original.clone();
                let stack = split_stack_memory(&mut split).unwrap();
                let mut dropped = original.clone();
                let zeroed = drop_stack_memory(&mut dropped).unwrap();
                assert!(zeroed > 0, "{}: no stack memory", path.display());
                assert_eq!(stack.len(), zeroed, "{}", path.display());
                assert!(split == dropped, "{}: split is not dropped", path.display());
                assert!(split != original, "{}", path.display());

                let ranges = stack.ranges();
                assert_eq!(ranges.iter().map(|r| r.len() as u64).sum::<u64>(), zeroed);
                assert!(
                    ranges
                        .iter()
                        .all(|r| split[r.clone()].iter().all(|b| *b == 0))
                );
                let mut spliced = split.clone();
                let written = splice_stack_memory(&mut spliced, stack.as_bytes()).unwrap();
                assert_eq!(written, zeroed);
                assert!(spliced == original, "{}: splice", path.display());
            }
        }
    }

    fn small_case() -> (Vec<u8>, Vec<u8>, StackMemory) {
        let path = &testdata_dumps()[0];
        let original = std::fs::read(path).unwrap();
        let mut split = original.clone();
        let stack = split_stack_memory(&mut split).unwrap();
        (original, split, stack)
    }

    #[test]
    fn a_malformed_or_misfitting_stack_buffer_is_refused_and_changes_nothing() {
        let (_, split, stack) = small_case();
        let good = stack.as_bytes().to_vec();
        let ranges = read_ranges(&good, split.len()).unwrap();
        assert!(!ranges.is_empty());
        let mut bad: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"MST1".to_vec(),
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), b"x"].concat(),
            [b"MST2", &good[4..]].concat(),
        ];
        // A count beyond the buffer.
        let mut more = good.clone();
        more[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        bad.push(more);
        // The first range moved past the end of the dump.
        let mut beyond = good.clone();
        beyond[HEADER..HEADER + 8].copy_from_slice(&(split.len() as u64).to_le_bytes());
        bad.push(beyond);
        for stack in bad {
            let mut dump = split.clone();
            assert!(matches!(
                splice_stack_memory(&mut dump, &stack),
                Err(ScrubError::BadStackMemory)
            ));
            assert!(dump == split, "changed by a refused splice");
        }
        // Into a dump shorter than the stacks reach.
        let last = ranges.last().unwrap();
        let mut short = split[..last.end - 1].to_vec();
        assert!(splice_stack_memory(&mut short, &good).is_err());
    }

    #[test]
    fn ranges_out_of_order_are_refused() {
        let (_, split, _) = small_case();
        let mut stack = b"MST1".to_vec();
        stack.extend_from_slice(&2u32.to_le_bytes());
        for (start, len) in [(100u64, 4u64), (98, 4)] {
            stack.extend_from_slice(&start.to_le_bytes());
            stack.extend_from_slice(&len.to_le_bytes());
        }
        stack.extend_from_slice(&[1u8; 8]);
        let mut dump = split.clone();
        assert!(splice_stack_memory(&mut dump, &stack).is_err());
        // The same two apart are taken.
        stack[HEADER + RANGE..HEADER + RANGE + 8].copy_from_slice(&104u64.to_le_bytes());
        assert_eq!(splice_stack_memory(&mut dump, &stack).unwrap(), 8);
        assert_eq!(&dump[100..108], &[1u8; 8]);
    }

    #[test]
    fn no_stack_memory_splices_into_any_dump_changing_nothing() {
        let (_, split, _) = small_case();
        let mut dump = split.clone();
        let none = StackMemory::default();
        assert!(none.is_empty());
        assert_eq!(splice_stack_memory(&mut dump, none.as_bytes()).unwrap(), 0);
        assert!(dump == split);
        assert_eq!(splice_stack_memory(&mut [], none.as_bytes()).unwrap(), 0);
    }

    #[test]
    fn an_unreadable_dump_is_not_split() {
        let mut dump = b"MDMP\x93\xa7\0\0not a dump".to_vec();
        let before = dump.clone();
        assert!(split_stack_memory(&mut dump).is_err());
        assert_eq!(dump, before);
    }

    #[test]
    fn its_debug_form_shows_no_bytes() {
        let (_, _, stack) = small_case();
        let shown = format!("{stack:?}");
        assert!(shown.starts_with("StackMemory { bytes: "), "{shown}");
        assert!(!stack.is_empty());
    }
}
