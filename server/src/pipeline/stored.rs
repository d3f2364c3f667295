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

use bytes::Bytes;

use crate::index::{Index, now_ms};
use crate::report_id::ReportId;
use crate::vault::{self, Vault, VaultError};

/// A report's stored processed report, as [`read_processed`] found it.
#[derive(Debug)]
pub enum Stored {
    /// The processed report (its JSON), opened.
    Report(Bytes),
    /// It was lost (missing or unopenable) and is being made again: a job is
    /// queued (by this read or an earlier one) or running.
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
/// running already ([`Index::enqueue_job_once`]).
pub async fn read_processed(
    vault: &Vault,
    index: &Index,
    id: &ReportId,
) -> Result<Stored, VaultError> {
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
    let queued = index.enqueue_job_once(id, now_ms()).await?;
    Ok(Stored::Reprocessing { queued })
}
