//! Reading a stored processed report, and making it again when it was lost.
//!
//! A processed report is derived data: while its report keeps its stack key,
//! the durable raw upload can be walked again into the same report. So
//! [`job::finalize`](super::job::finalize) stores it without waiting for the
//! disk (and commits its job's finish so) unless that finish destroys the stack
//! key. A power cut can then leave a report recorded as processed whose
//! `reports/<id>.json` is missing, empty or truncated (it no longer opens).
//! [`read_processed`] is the one place that decides what such a report is: while
//! its stack key exists it is queued for processing again and answered
//! [`Stored::Reprocessing`]; once the stack key is gone (the report was stored
//! durably before it was destroyed), a blob that does not open is an error, as
//! it always was.
//!
//! It is stored as one zstd frame of its JSON ([`encode`]; level 1: a
//! report's JSON repeats module names, paths and field names frame after
//! frame and comes out 10–30 times smaller, at several hundred MB/s), which is
//! what is sealed, written and read back. [`decode`] reads that and the plain
//! JSON stored before.

use std::cell::RefCell;
use std::io::{BufWriter, Read};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use zstd::zstd_safe::{CCtx, CParameter, ResetDirective};

use crate::index::{Index, now_ms};
use crate::report_id::ReportId;
use crate::vault::{self, Vault, VaultError};

/// A report's stored processed report, as [`read_processed`] found it.
#[derive(Debug)]
pub enum Stored {
    /// The processed report, opened: its stored form, which [`decode`] reads.
    Report(Bytes),
    /// It was lost (missing or unopenable) and is being made again: a job is
    /// queued (by this read or an earlier one) or running, or one finished
    /// while this read looked (a read after it finds the report).
    Reprocessing {
        /// Whether this read queued the job (the caller wakes the workers).
        queued: bool,
    },
    /// There is none: the report is deleted (its data key is gone), or its
    /// blob is missing and cannot be made again.
    Missing,
}

/// Report `id`'s processed report, for a report the index records as
/// processed. A blob that is missing or does not open while the report keeps
/// its stack key is made again: a job is queued for it unless one is queued or
/// running already, or finished since this read began
/// ([`Index::enqueue_job_once`]).
pub async fn read_processed(
    vault: &Vault,
    index: &Index,
    id: &ReportId,
) -> Result<Stored, VaultError> {
    // Before the blob is looked at: a job that finishes after this stored its
    // report after this read began (`Index::enqueue_job_once`).
    let read_at = now_ms();
    let Some(keys) = vault.keys(id).await? else {
        return Ok(Stored::Missing);
    };
    let lost = match vault.get(&vault::processed_key(id), &keys.data).await {
        Ok(Some(bytes)) => return Ok(Stored::Report(bytes)),
        Ok(None) => None,
        Err(VaultError::Crypto(e)) => Some(VaultError::Crypto(e)),
        Err(e) => return Err(e),
    };
    if keys.stack.is_none() {
        return match lost {
            Some(e) => Err(e),
            None => Ok(Stored::Missing),
        };
    }
    tracing::warn!(report = %id, unopenable = lost.is_some(), "processed report lost: processing it again");
    let queued = index.enqueue_job_once(id, read_at, now_ms()).await?;
    Ok(Stored::Reprocessing { queued })
}

/// What a zstd frame starts with (its magic number, little-endian); JSON never does.
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// zstd's level for a stored report: its fastest standard level.
const LEVEL: i32 = 1;

/// The most a stored report may decompress to: a bound on the memory a read
/// takes, far above any real report (the largest of the test data's is 1.2 MB).
const MAX_JSON_BYTES: u64 = 512 * 1024 * 1024;

thread_local! {
    /// This thread's zstd compression context, set to [`LEVEL`]: made once,
    /// not for each report (a context allocates and clears about a megabyte).
    static COMPRESSOR: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
}

/// `report` in its stored form (one zstd frame of its JSON) behind `headroom`
/// zero bytes (room for a seal's header: [`Vault::seal_in_place`]). The JSON
/// is compressed as it is written: it is never held whole.
pub fn encode<T: Serialize>(report: &T, headroom: usize) -> Result<Vec<u8>, serde_json::Error> {
    let io =
        |code| serde_json::Error::io(std::io::Error::other(zstd::zstd_safe::get_error_name(code)));
    COMPRESSOR.with_borrow_mut(|context| {
        let context = match context {
            Some(context) => context,
            None => {
                let mut made = CCtx::create();
                made.set_parameter(CParameter::CompressionLevel(LEVEL))
                    .map_err(io)?;
                context.insert(made)
            }
        };
        // A frame an earlier call left unfinished (its report failed to
        // serialize) is dropped; the level stays.
        context.reset(ResetDirective::SessionOnly).map_err(io)?;
        let encoder = zstd::stream::Encoder::with_context(vec![0; headroom], context);
        // serde_json writes a token at a time; zstd is fed in blocks.
        let mut writer = BufWriter::with_capacity(64 * 1024, encoder);
        serde_json::to_writer(&mut writer, report)?;
        writer
            .into_inner()
            .map_err(|e| serde_json::Error::io(e.into_error()))?
            .finish()
            .map_err(serde_json::Error::io)
    })
}

/// A stored processed report, read from what [`encode`] wrote (or the plain
/// JSON of reports stored before it): a frame that does not decompress, or
/// decompresses to more than 512 MiB, is an I/O error of the JSON.
pub fn decode<T: DeserializeOwned>(stored: &[u8]) -> Result<T, serde_json::Error> {
    decode_within(stored, MAX_JSON_BYTES)
}

/// [`decode`], with JSON of at most `max` bytes.
fn decode_within<T: DeserializeOwned>(stored: &[u8], max: u64) -> Result<T, serde_json::Error> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return serde_json::from_slice(stored);
    }
    let mut json = Vec::new();
    zstd::stream::Decoder::new(stored)
        .map_err(serde_json::Error::io)?
        .take(max + 1)
        .read_to_end(&mut json)
        .map_err(serde_json::Error::io)?;
    if json.len() as u64 > max {
        return Err(serde_json::Error::io(std::io::Error::other(format!(
            "a stored report decompresses to more than {max} bytes"
        ))));
    }
    serde_json::from_slice(&json)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::{Value, json};

    use super::*;

    fn report() -> Value {
        let frame = json!({"module": "libxul.so", "file": "/builds/worker/checkouts/gecko/dom/base/nsINode.cpp", "trust": "cfi"});
        json!({"id": "bp-1", "threads": [{"frames": vec![frame; 200]}]})
    }

    /// What is stored is a zstd frame behind the headroom, much smaller than
    /// the JSON, and reads back as the report.
    #[test]
    fn a_report_is_stored_compressed_behind_its_headroom_and_reads_back() {
        let report = report();
        let json = serde_json::to_vec(&report).unwrap();
        let stored = encode(&report, 24).unwrap();
        assert_eq!(stored[..24], [0; 24]);
        assert!(stored[24..].starts_with(&ZSTD_MAGIC));
        assert!(
            stored.len() - 24 < json.len() / 10,
            "{} of {}",
            stored.len(),
            json.len()
        );
        assert_eq!(decode::<Value>(&stored[24..]).unwrap(), report);
    }

    /// A report that fails to serialize part way leaves nothing behind: the
    /// next one on the same thread (the same context) is a whole frame of its own.
    #[test]
    fn a_failed_encode_leaves_the_next_one_whole() {
        // JSON object keys must be strings: fails after `[{"id":…},{`.
        let bad = (report(), std::collections::BTreeMap::from([(vec![1u8], 1)]));
        assert!(encode(&bad, 8).is_err());
        let report = report();
        for _ in 0..2 {
            let stored = encode(&report, 8).unwrap();
            assert_eq!(decode::<Value>(&stored[8..]).unwrap(), report);
        }
    }

    /// A report stored before compression (plain JSON) still reads.
    #[test]
    fn a_report_stored_as_plain_json_still_reads() {
        let report = report();
        let json = serde_json::to_vec(&report).unwrap();
        assert_eq!(decode::<Value>(&json).unwrap(), report);
    }

    /// A damaged frame, or one that decompresses to more than the bound, is an
    /// error, not a panic or an allocation without end.
    #[test]
    fn a_bad_or_oversized_frame_is_an_error() {
        let stored = encode(&report(), 0).unwrap();
        let cut = &stored[..stored.len() / 2];
        assert!(decode::<Value>(cut).unwrap_err().is_io());
        let mut garbled = stored.clone();
        garbled[8..20].fill(0xff);
        assert!(decode::<Value>(&garbled).is_err());
        // 8 MB of one byte (a JSON string) in a frame of a few kilobytes,
        // read with a bound of 1 MB.
        let mut big = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        big.write_all(b"\"").unwrap();
        big.write_all(&vec![b'a'; 8 << 20]).unwrap();
        big.write_all(b"\"").unwrap();
        let big = big.finish().unwrap();
        assert!(big.len() < 64 << 10);
        assert!(decode::<Value>(&big).is_ok());
        let err = decode_within::<Value>(&big, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
    }
}
