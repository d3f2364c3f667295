//! A dump too large to scrub whole (over `stream_dump_bytes`): scrubbed a
//! window at a time in an anonymous mapping as long as the dump
//! (`mayday_report::scrub::scrub_minidump_windowed`), each window read back
//! from the spool, and sealed and stored as it is scrubbed
//! ([`RawWriter`], the raw object's chunked form). Nothing unscrubbed leaves
//! process memory: the mapping is anonymous and private (swap, never a file),
//! and only the scrubber's output reaches the writer.
//!
//! What it holds at most ([`STREAMED_MEMORY`], what the upload's scrub permit
//! counts): the window and a text run it grows to, the dump's structure, the
//! stack memory cut out, the writer's buffers.

use std::io;
use std::sync::Arc;

use mayday_report::scrub::{
    CutStacks, DumpPages, ScrubConfig, ScrubError, ScrubSummary, WindowLimits,
    scrub_minidump_windowed,
};
use memmap2::MmapMut;
use object_store::path::Path;

use super::error::IngestError;
use super::spool::SpoolReader;
use crate::crypto::DataKey;
use crate::vault::{RawMeta, Vault};

const MIB: usize = 1024 * 1024;

/// The sizes the windowed scrub of an upload keeps to.
const LIMITS: WindowLimits = WindowLimits {
    window: 4 * MIB,
    max_run: 8 * MIB,
    max_structure: 16 * MIB,
    max_stacks: 16 * MIB,
};

/// The most memory a dump scrubbed in windows takes: [`LIMITS`] and the
/// writer's buffers (a chunk being sealed, the file's or the multipart upload's
/// buffer).
pub(super) const STREAMED_MEMORY: u64 =
    (LIMITS.max_run + LIMITS.max_structure + LIMITS.max_stacks + 8 * MIB) as u64;

/// How a streamed store ended without storing.
pub(super) enum NotStreamed {
    /// The dump cannot be scrubbed in windows (nothing was stored): it is to be
    /// scrubbed whole, with what was handed in, handed back.
    Whole(Box<Streamed>),
    /// It failed.
    Failed(IngestError),
}

impl From<IngestError> for NotStreamed {
    fn from(e: IngestError) -> Self {
        NotStreamed::Failed(e)
    }
}

impl From<io::Error> for NotStreamed {
    fn from(e: io::Error) -> Self {
        NotStreamed::Failed(e.into())
    }
}

/// A dump to store as it is scrubbed, and what goes with it.
pub(super) struct Streamed {
    /// The dump.
    pub(super) reader: SpoolReader,
    /// The upload's metadata, its summary so far (the annotations').
    pub(super) meta: RawMeta,
    /// The report's data key and stack key.
    pub(super) data_key: DataKey,
    pub(super) stack_key: DataKey,
}

/// Scrubs the dump a window at a time and stores it with its metadata as the
/// report's raw object at `key`, durably. Returns the upload's whole summary.
pub(super) async fn store_streamed(
    vault: &Vault,
    key: &Path,
    config: Arc<ScrubConfig>,
    upload: Streamed,
) -> Result<ScrubSummary, NotStreamed> {
    let mut writer = vault
        .start_raw(key, &upload.data_key)
        .await
        .map_err(IngestError::from)?;
    tokio::task::spawn_blocking(move || {
        let Streamed {
            reader,
            mut meta,
            data_key,
            stack_key,
        } = upload;
        let len = usize::try_from(reader.len()).map_err(io::Error::other)?;
        let mut map = MmapMut::map_anon(len.max(1)).map_err(IngestError::from)?;
        let mut pages = SpoolPages {
            reader,
            base: map.as_ptr() as usize,
        };
        let mut failed = None;
        let scrubbed = scrub_minidump_windowed(
            &mut map[..len],
            &mut pages,
            &mut |bytes: &[u8]| {
                writer.write(bytes).map_err(|e| {
                    let message = e.to_string();
                    failed = Some(e);
                    io::Error::other(message)
                })
            },
            &config,
            &LIMITS,
        );
        drop(map);
        let reader = pages.reader;
        let (summary, stacks) = match scrubbed {
            Ok(scrubbed) => (scrubbed.summary, scrubbed.stacks),
            Err(ScrubError::NotWindowed(why)) => {
                tracing::debug!(why, "dump scrubbed whole");
                return Err(NotStreamed::Whole(Box::new(Streamed {
                    reader,
                    meta,
                    data_key,
                    stack_key,
                })));
            }
            Err(ScrubError::Io(e)) => {
                return Err(match failed {
                    Some(e) => IngestError::from(e),
                    None => IngestError::from(e),
                }
                .into());
            }
            Err(e) => {
                // No readable header and directory: it could not be processed
                // either; kept only as its magic and zeros (as a whole dump is).
                tracing::debug!(error = %e, "unreadable minidump zeroed");
                zeros_after_magic(&mut writer, reader)?;
                let mut summary = ScrubSummary::default();
                summary.add("unreadable_dump_bytes", len.saturating_sub(4) as u64);
                (summary, Some(CutStacks::default()))
            }
        };
        meta.scrub.merge(&summary);
        let meta_json = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        writer
            .finish(&data_key, &stack_key, &meta_json, stacks.as_ref())
            .map_err(IngestError::from)?;
        Ok(meta.scrub)
    })
    .await
    .map_err(|e| IngestError::from(io::Error::other(e)))?
}

/// Writes an unreadable dump as its first four bytes and zeros.
fn zeros_after_magic(
    writer: &mut crate::vault::RawWriter,
    mut reader: SpoolReader,
) -> Result<(), IngestError> {
    let len = reader.len();
    let mut head = [0u8; 4];
    let n = len.min(4) as usize;
    reader.read_at(0, &mut head[..n])?;
    writer.write(&head[..n])?;
    let zeros = vec![0u8; MIB];
    let mut left = len - n as u64;
    while left > 0 {
        let take = left.min(MIB as u64) as usize;
        writer.write(&zeros[..take])?;
        left -= take as u64;
    }
    Ok(())
}

/// The spool behind the scrubber's mapping.
struct SpoolPages {
    reader: SpoolReader,
    /// Where the mapping starts.
    base: usize,
}

impl DumpPages for SpoolPages {
    fn fill(&mut self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        self.reader.read_at(offset as u64, buf)
    }

    fn release(&mut self, buf: &mut [u8]) {
        give_back(self.base, buf);
    }
}

/// Gives the whole pages of `buf`, a part of the anonymous private mapping
/// starting at `base`, back to the system: they read as zeros after.
#[allow(unsafe_code)]
fn give_back(base: usize, buf: &mut [u8]) {
    let page = page_size();
    let start = buf.as_ptr() as usize;
    let (from, to) = (
        start.next_multiple_of(page),
        (start + buf.len()) / page * page,
    );
    if from >= to || from < base {
        return;
    }
    let Some(ptr) = std::ptr::NonNull::new(from as *mut std::ffi::c_void) else {
        return;
    };
    // SAFETY: `from..to` lies inside `buf`, which this function borrows
    // mutably (nothing else reads or writes it meanwhile), and `buf` is a part
    // of an anonymous private mapping (`SpoolPages` is made only for one), where
    // MADV_DONTNEED replaces the pages with zero pages: to the program, the same
    // as writing zeros there.
    let advised = unsafe {
        nix::sys::mman::madvise(ptr, to - from, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
    };
    if let Err(e) = advised {
        tracing::debug!(error = %e, "madvise failed: pages kept");
    }
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| n.is_power_of_two())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_given_back_read_as_zeros_and_the_rest_is_kept() {
        let page = page_size();
        let mut map = MmapMut::map_anon(8 * page).unwrap();
        let base = map.as_ptr() as usize;
        map.fill(7);
        // From the middle of page 1 to the middle of page 5: pages 2 to 4.
        let range = page + page / 2..5 * page + page / 2;
        give_back(base, &mut map[range]);
        for (i, b) in map.iter().enumerate() {
            let expected = if (2 * page..5 * page).contains(&i) {
                0
            } else {
                7
            };
            assert_eq!(*b, expected, "byte {i}");
        }
        // Less than a page: nothing.
        give_back(base, &mut map[10..page - 10]);
        assert!(map[..page].iter().all(|&b| b == 7));
    }
}
