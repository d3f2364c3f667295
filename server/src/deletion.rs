//! Deleting reports: every blob, then every row, then the blobs again.
//!
//! The second pass over the blobs closes the race with a worker that was writing
//! the processed report while we deleted: either its write happened before our
//! second pass (and we delete it), or it commits to the index after the rows are
//! gone, sees the report missing, and deletes what it wrote.

use object_store::path::Path;

use crate::AppState;
use crate::index::{IndexError, ReportRow};
use crate::report_id::ReportId;
use crate::storage::{Storage, StorageError};

/// Why a deletion did not finish; it is safe to retry.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The blob store failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] IndexError),
}

fn blob_keys(row: &ReportRow) -> Vec<Path> {
    let mut keys = vec![
        Path::from(row.raw_key.as_str()),
        Path::from(row.meta_key.as_str()),
    ];
    if let Ok(id) = row.id.parse::<ReportId>() {
        keys.push(Storage::processed_key(&id));
    }
    keys
}

/// Deletes one report everywhere. Idempotent.
pub async fn delete_report(state: &AppState, row: &ReportRow) -> Result<(), DeleteError> {
    let keys = blob_keys(row);
    for key in &keys {
        state.storage().delete(key).await?;
    }
    state.index().delete_report(&row.id).await?;
    for key in &keys {
        state.storage().delete(key).await?;
    }
    Ok(())
}
