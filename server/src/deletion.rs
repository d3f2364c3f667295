//! Deleting reports: on a user's request, by an admin, by retention, and for the
//! issue actions of [`crate::lifecycle`] (resolve, delete an issue).
//!
//! One report is deleted in this order: its data key (from then on every copy of
//! its blobs, anywhere, is unreadable), its blobs, its rows, its blobs again. The
//! second pass over the blobs closes the race with a worker that was writing the
//! processed report meanwhile: either its write happened before our second pass
//! (and we delete it), or it commits to the index after the rows are gone, sees
//! the report missing, and deletes what it wrote.
//!
//! The audit log keeps a deleted report's id only as a one-way pseudonym
//! ([`audit_pseudonym`]): someone who has the id can still find its history, but
//! nothing in the index names the report any more.

use object_store::path::Path;
use sha2::Digest;

use crate::index::{IndexError, ReportRow};
use crate::metrics::Metrics;
use crate::report_id::ReportId;
use crate::vault::{self, Vault, VaultError};

/// Why a deletion did not finish; it is safe to retry.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The report vault (blob store or data keys) failed.
    #[error("storage: {0}")]
    Storage(#[from] VaultError),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] IndexError),
}

impl DeleteError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            DeleteError::Storage(_) => "storage",
            DeleteError::Index(_) => "index",
        }
    }
}

/// The actor recorded when a report's own deletion token deleted it.
pub const DELETION_TOKEN_ACTOR: &str = "deletion-token";
/// The actor recorded for the retention sweeper.
pub const RETENTION_ACTOR: &str = "retention";

/// How many reports one pass of a purge loads at a time.
const BATCH: i64 = 200;

fn blob_keys(row: &ReportRow) -> Vec<Path> {
    vec![
        Path::from(row.raw_key.as_str()),
        Path::from(row.meta_key.as_str()),
        vault::processed_key(&row.id),
    ]
}

/// What the audit log keeps of a deleted report's id: `report-sha256:<hex>`.
pub fn audit_pseudonym(report_id: &str) -> String {
    let digest = sha2::Sha256::digest(report_id.as_bytes());
    format!("report-sha256:{}", hex::encode(&digest[..16]))
}

/// Deletes one report everywhere: data key, blobs, rows, blobs again; its id in
/// the audit log becomes [`audit_pseudonym`]. Idempotent. Does not write an audit
/// entry of its own (see [`delete_report_by_id`]).
pub async fn delete_report(vault: &Vault, row: &ReportRow) -> Result<(), DeleteError> {
    let index = vault.index();
    // The key first: from here on, every copy of the blobs is unreadable.
    vault.destroy_key(&row.id).await?;
    let keys = blob_keys(row);
    for key in &keys {
        vault.delete(key).await?;
    }
    index.delete_report(&row.id).await?;
    for key in &keys {
        vault.delete(key).await?;
    }
    let id = row.id.to_string();
    index
        .rename_audit_target(&id, &audit_pseudonym(&id))
        .await?;
    Ok(())
}

/// Deletes report `id` if it exists and audits it as done by `actor` (an API
/// token id, [`DELETION_TOKEN_ACTOR`], [`RETENTION_ACTOR`], `cli`), with `why`.
/// Returns whether there was such a report.
pub async fn delete_report_by_id(
    vault: &Vault,
    metrics: &Metrics,
    id: &ReportId,
    actor: &str,
    why: &str,
) -> Result<bool, DeleteError> {
    let Some(row) = vault.index().report(id).await? else {
        // Its key may outlive a half-finished upload: destroy it anyway.
        vault.destroy_key(id).await?;
        return Ok(false);
    };
    delete_report(vault, &row).await?;
    metrics.deleted(metric_reason(actor, why), 1);
    vault
        .index()
        .audit(
            actor,
            "report.delete",
            &audit_pseudonym(&id.to_string()),
            Some(why),
        )
        .await?;
    Ok(true)
}

/// The `reason` label of `mayday_reports_deleted_total` for a deletion.
fn metric_reason(actor: &str, why: &str) -> &'static str {
    match (actor, why) {
        (DELETION_TOKEN_ACTOR, _) => "user_request",
        (RETENTION_ACTOR, _) => "retention",
        (_, "issue.resolve") => "resolved",
        (_, w) if w.starts_with("issue.delete") => "issue_deleted",
        _ => "other",
    }
}

/// Deletes the reports of an issue until none is left, each audited as done by
/// `actor` with `why` (see [`delete_report_by_id`]). Returns how many were deleted.
pub async fn delete_reports_of_issue(
    vault: &Vault,
    metrics: &Metrics,
    issue_id: i64,
    actor: &str,
    why: &str,
) -> Result<u64, DeleteError> {
    let mut deleted = 0;
    loop {
        let ids = vault.index().report_ids_of_issue(issue_id, BATCH).await?;
        if ids.is_empty() {
            break;
        }
        for id in ids {
            if delete_report_by_id(vault, metrics, &id, actor, why).await? {
                deleted += 1;
            }
        }
    }
    vault.index().checkpoint().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_and_do_not_contain_the_id() {
        let id = "bp-0b7e4b8e-2f4b-4a4e-9a57-5d2a3c1e9f00";
        assert_eq!(audit_pseudonym(id), audit_pseudonym(id));
        assert!(!audit_pseudonym(id).contains("0b7e4b8e"));
        assert_ne!(audit_pseudonym(id), audit_pseudonym("bp-other"));
    }
}
