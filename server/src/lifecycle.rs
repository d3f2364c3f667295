//! An issue's life after its first report: resolved (in a version), reopened by
//! hand, its reports deleted, or deleted with them. Deleting the reports is
//! [`crate::deletion`]'s; this module decides what happens to the issue.
//!
//! Resolving an issue marks it resolved first and then deletes its reports; a
//! report still in the pipeline then finds the issue resolved and is dropped
//! (`Index::finish_processed`), so none comes back. Only reports received after
//! the resolution reopen the issue as `regressed` — unless their version is older
//! than the resolved-in version, then they are counted and dropped too.

use crate::deletion::{DeleteError, delete_reports_of_issue};
use crate::index::{Index, IndexError};
use crate::metrics::Metrics;
use crate::vault::Vault;

/// Why an issue action did not finish; it is safe to retry.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No such issue.
    #[error("no such issue")]
    NoSuchIssue,
    /// A resolved-in version that is too long, has control characters, or is not
    /// a version (semver or dotted numbers) that crashes can be compared with.
    #[error("invalid version {0:?}")]
    BadVersion(String),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// Deleting the issue's reports failed.
    #[error(transparent)]
    Delete(#[from] DeleteError),
}

/// What becomes of an issue whose reports are deleted by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emptying {
    /// It stays, with its status.
    KeepIssue,
    /// It is deleted too.
    DeleteIssue,
}

/// Deletes every report of an existing issue, then the issue when `emptying`
/// says so, and audits it. Returns how many reports were deleted.
pub async fn empty_issue(
    vault: &Vault,
    metrics: &Metrics,
    issue_id: i64,
    actor: &str,
    emptying: Emptying,
) -> Result<u64, LifecycleError> {
    let action = match emptying {
        Emptying::KeepIssue => "issue.delete_reports",
        Emptying::DeleteIssue => "issue.delete",
    };
    let index = vault.index();
    if index.issue(issue_id).await?.is_none() {
        return Err(LifecycleError::NoSuchIssue);
    }
    let deleted = delete_reports_of_issue(vault, metrics, issue_id, actor, action).await?;
    if emptying == Emptying::DeleteIssue {
        index.delete_issue_row(issue_id).await?;
    }
    let detail = format!("reports_deleted={deleted}");
    index
        .audit(actor, action, &issue_id.to_string(), Some(&detail))
        .await?;
    Ok(deleted)
}

/// Marks an issue resolved (in `in_version`, when given: later crashes from older
/// versions of the issue's main product are counted and dropped) and deletes every
/// report of it. The issue keeps signature, title, counts, first/last seen and the
/// resolution. Returns how many reports were deleted.
pub async fn resolve_issue(
    vault: &Vault,
    metrics: &Metrics,
    issue_id: i64,
    in_version: Option<&str>,
    actor: &str,
) -> Result<u64, LifecycleError> {
    let in_version = match in_version.map(str::trim) {
        None | Some("") => None,
        Some(v)
            if v.len() > 128
                || v.chars().any(char::is_control)
                || !crate::version::is_comparable(v) =>
        {
            return Err(LifecycleError::BadVersion(v.to_owned()));
        }
        Some(v) => Some(v),
    };
    let index = vault.index();
    // The version applies to the product the issue's reports come from.
    let product = match in_version {
        Some(_) => index
            .issue_breakdown(issue_id)
            .await?
            .by_product
            .into_iter()
            .map(|(p, _)| p)
            .find(|p| !p.is_empty()),
        None => None,
    };
    if !index
        .resolve_issue(
            issue_id,
            in_version,
            product.as_deref(),
            crate::index::now_ms(),
        )
        .await?
    {
        return Err(LifecycleError::NoSuchIssue);
    }
    let deleted = delete_reports_of_issue(vault, metrics, issue_id, actor, "issue.resolve").await?;
    let mut detail = format!("reports_deleted={deleted}");
    if let Some(v) = in_version {
        detail.push_str(&format!(" in_version={v}"));
    }
    index
        .audit(actor, "issue.resolve", &issue_id.to_string(), Some(&detail))
        .await?;
    tracing::info!(issue = issue_id, deleted, "issue resolved");
    Ok(deleted)
}

/// Reopens an issue (by hand: status `open`, resolution cleared).
pub async fn reopen_issue(index: &Index, issue_id: i64, actor: &str) -> Result<(), LifecycleError> {
    if !index.reopen_issue(issue_id).await? {
        return Err(LifecycleError::NoSuchIssue);
    }
    index
        .audit(actor, "issue.reopen", &issue_id.to_string(), None)
        .await?;
    Ok(())
}
