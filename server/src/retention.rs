//! Retention: reports older than `retention_days` are deleted by a background
//! sweeper; their issues keep their tombstone (signature, counts, first/last seen).
//!
//! [`sweep`] takes the time as an argument, so tests (and operators) control the
//! clock; [`run_sweeper`] calls it with the real time once at start and then every
//! [`SWEEP_INTERVAL`], until shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::deletion::{DeleteError, RETENTION_ACTOR, delete_report_by_id};
use crate::index::now_ms;
use crate::metrics::Metrics;
use crate::vault::Vault;

/// How often the sweeper runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60 * 60);
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// A data key without a report row older than this is left over from a failed
/// upload and destroyed.
pub const ORPHAN_KEY_AGE_MS: i64 = DAY_MS;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Reports deleted for their age.
    pub reports: u64,
    /// Data keys of failed uploads destroyed.
    pub orphan_keys: u64,
}

/// Deletes every report received more than `retention_days` before `now`
/// (Unix ms). With `retention_days = 0`, keeps reports forever.
pub async fn sweep(
    vault: &Vault,
    metrics: &Metrics,
    retention_days: u32,
    now: i64,
) -> Result<Sweep, DeleteError> {
    let mut done = Sweep::default();
    let index = vault.index();
    done.orphan_keys = index
        .delete_orphan_report_keys(now - ORPHAN_KEY_AGE_MS)
        .await?;
    let days = retention_days;
    if days > 0 {
        let cutoff = now - i64::from(days) * DAY_MS;
        let why = format!("older than {days} days");
        loop {
            let ids = index.report_ids_received_before(cutoff, 200).await?;
            if ids.is_empty() {
                break;
            }
            for id in ids {
                if delete_report_by_id(vault, metrics, &id, RETENTION_ACTOR, &why).await? {
                    done.reports += 1;
                }
            }
        }
    }
    if done.reports > 0 || done.orphan_keys > 0 {
        index.checkpoint().await?;
        index
            .audit(
                RETENTION_ACTOR,
                "retention.purge",
                "reports",
                Some(&format!(
                    "reports_deleted={} orphan_keys_destroyed={} retention_days={days}",
                    done.reports, done.orphan_keys
                )),
            )
            .await?;
        tracing::info!(
            reports = done.reports,
            orphan_keys = done.orphan_keys,
            "retention sweep"
        );
    }
    Ok(done)
}

/// Deletes report blobs that nothing can read any more: their report's data key
/// is gone and they were last written before `now` minus a day. They are left
/// behind when a worker died after storing a blob of a report deleted meanwhile,
/// and by uploads that never got recorded (an upload stores its blobs before its
/// key and row; until then, only their age tells them from one still under way,
/// here or in another server process). A blob whose key exists is never touched.
/// Returns how many were deleted.
pub async fn sweep_orphan_blobs(vault: &Vault, now: i64) -> Result<u64, DeleteError> {
    sweep_unclaimed_blobs(vault, i64::MIN..now - ORPHAN_KEY_AGE_MS).await
}

/// Deletes the report blobs last written in `written` (ms) that no data key and
/// no report row claim. A range reaching into the present is only safe when no
/// upload can be under way, as at the start of the only process on a data dir
/// (see `App::build`).
pub async fn sweep_unclaimed_blobs(
    vault: &Vault,
    written: std::ops::Range<i64>,
) -> Result<u64, DeleteError> {
    let index = vault.index();
    let mut deleted = 0;
    for (key, id, modified) in vault.report_blobs().await? {
        if !written.contains(&modified) {
            continue;
        }
        if index.report_key(&id).await?.is_none() && index.report(&id).await?.is_none() {
            vault.delete(&key).await?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        index
            .audit(
                RETENTION_ACTOR,
                "retention.orphan_blobs",
                "store",
                Some(&format!("blobs_deleted={deleted}")),
            )
            .await?;
    }
    Ok(deleted)
}

/// Sweeps now and then every [`SWEEP_INTERVAL`] until `shutdown` turns true (and
/// brings the index's planner statistics up to date, [`Index::optimize`](crate::index::Index::optimize)); the
/// store is walked for orphan blobs once a day ([`sweep_orphan_blobs`]).
pub async fn run_sweeper(
    vault: Vault,
    metrics: Arc<Metrics>,
    retention_days: u32,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_orphan_walk: Option<i64> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = now_ms();
        if let Err(e) = sweep(&vault, &metrics, retention_days, now).await {
            tracing::error!(error = %e, "retention sweep failed; will retry");
        }
        if let Err(e) = vault.index().optimize().await {
            tracing::warn!(error = %e, "updating the index's planner statistics failed");
        }
        if last_orphan_walk.is_none_or(|at| now - at >= DAY_MS) {
            match sweep_orphan_blobs(&vault, now).await {
                Ok(_) => last_orphan_walk = Some(now),
                Err(e) => tracing::error!(error = %e, "orphan blob sweep failed; will retry"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::debug!("retention sweeper stopped");
}
