//! Regrouping stored reports under the signature rules in effect
//! (`mayday-server signatures reprocess`): a rule change otherwise applies only
//! to reports processed after it.
//!
//! A signature is made of the crashing thread's frames only, and the processed
//! report stored in the vault (`reports/<id>.json`) holds that thread as
//! processing walked it (functions, files and lines, modules and offsets,
//! inlined calls): its signature is computed again from there, with no dump to
//! walk and no symbols to load — so reports whose dump lost its stack memory are
//! regrouped too. (The stored frames are the scrubbed ones: a value rule that
//! rewrote a module's or a source file's name would show in the signature.)
//!
//! [`plan`] reads every processed report and finds those whose signature is no
//! longer their issue's, grouped by move (old issue, new signature); [`apply`]
//! moves them one transaction each through the same placing as processing
//! ([`Index::regroup_report`](crate::index::Index::regroup_report): new issue, counts, regression, drop), rewrites
//! their stored signature, and audits each move.

use futures::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use super::job::{patiently, title};
use super::report::{ProcessedReport, Thread};
use super::signature::Signature;
use super::signature::SignatureRules;
use super::stored::{self, Stored};
use crate::grouping::{self, IssuePlace, ReportPlace, Verdict};
use crate::index::{
    GroupedReport, IndexError, IssueResolution, IssueStatus, Regrouped, Regrouping, ReportState,
    now_ms,
};
use crate::report_id::ReportId;
use crate::vault::{self, Vault, VaultError};

/// Why regrouping stopped.
#[derive(Debug, thiserror::Error)]
pub enum RegroupError {
    /// The vault (blob store or data keys) failed.
    #[error("storage: {0}")]
    Storage(#[from] VaultError),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// A processed report could not be written back.
    #[error("processed report: {0}")]
    Json(#[from] serde_json::Error),
}

impl RegroupError {
    /// A stable name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            RegroupError::Storage(e) => e.name(),
            RegroupError::Index(e) => e.name(),
            RegroupError::Json(_) => "json",
        }
    }
}

/// Reports of one issue whose signature is another one now.
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    /// The issue they are in.
    pub from_issue: i64,
    /// Its signature.
    pub from_signature: String,
    /// Their signature under the rules in effect.
    pub to_signature: String,
    /// The issue of that signature: the existing one (planned), or the one they
    /// went to (applied); `None` when it is yet to be created.
    pub to_issue: Option<i64>,
    /// Whether the issue is (planned) or was (applied) created for them.
    pub new_issue: bool,
    /// The status of the existing issue, when there is one (planned).
    pub to_status: Option<IssueStatus>,
    /// How many reports move.
    pub reports: u64,
    /// How many of them are (planned) or were (applied) dropped instead: the
    /// issue is resolved, and they are no news to it (received before the
    /// resolution, or of an older version than the fix).
    pub dropped: u64,
    /// How many were left as they were when applied: deleted, processed again or
    /// moved otherwise meanwhile.
    pub skipped: u64,
    /// The reports, in id order.
    #[serde(skip)]
    pub report_ids: Vec<ReportId>,
    /// The title of the issue if it is created.
    #[serde(skip)]
    pub title: String,
}

/// What regrouping found (and did).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Regroup {
    /// Whether the moves were applied (`false`: a dry run, nothing changed).
    pub applied: bool,
    /// Processed reports looked at.
    pub examined: u64,
    /// Processed reports whose stored report could not be read (deleted
    /// meanwhile): left as they are.
    pub unreadable: u64,
    /// Reports that stay in their issue but whose stored report still names
    /// another signature (a regroup cut short before it rewrote them): rewritten
    /// when applied.
    pub stale: u64,
    /// The moves, by old issue and new signature.
    pub moves: Vec<Move>,
    /// Reports of stale stored signatures, with the signature they keep.
    #[serde(skip)]
    stale_ids: Vec<(ReportId, String)>,
}

impl Regroup {
    /// Reports that move (dropped ones included).
    pub fn reports(&self) -> u64 {
        self.moves.iter().map(|m| m.reports).sum()
    }
}

/// Processed reports read at once from the index.
const PAGE: i64 = 500;
/// Processed reports read from the vault at once.
const READ_AHEAD: usize = 16;

/// Reads every processed report and computes its signature with `rules`:
/// the moves that regrouping would make. Changes nothing.
pub async fn plan(vault: &Vault, rules: &SignatureRules) -> Result<Regroup, RegroupError> {
    let index = vault.index();
    let mut plan = Regroup::default();
    let mut after: Option<ReportId> = None;
    loop {
        let page = index.grouped_reports_after(after.as_ref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let read: Vec<_> = futures::stream::iter(page)
            .map(|grouped| async move {
                let report = read_processed(vault, &grouped.id).await?;
                Ok::<_, RegroupError>((grouped, report))
            })
            .buffered(READ_AHEAD)
            .try_collect()
            .await?;
        for (grouped, report) in read {
            plan.examined += 1;
            let Some(mut report) = report else {
                plan.unreadable += 1;
                continue;
            };
            let signature = rules.report_signature(report.crashing_thread.as_ref());
            if signature.hash() == grouped.signature_hash {
                if report.signature != signature.text {
                    plan.stale += 1;
                    plan.stale_ids.push((grouped.id, signature.text));
                }
                continue;
            }
            report.signature = signature.text;
            plan.add(grouped, &report);
        }
    }
    for planned in &mut plan.moves {
        let hash = Signature::from_text(&planned.to_signature).hash();
        match index.issue_of_signature(&hash).await? {
            Some(issue) => {
                planned.to_issue = Some(issue.id);
                planned.to_status = Some(issue.status);
                if let Some(resolution) = index.issue_resolution(issue.id).await? {
                    planned.dropped = would_drop(vault, planned, issue.id, &resolution).await?;
                }
            }
            None => planned.new_issue = true,
        }
    }
    Ok(plan)
}

impl Regroup {
    /// Adds `grouped`, whose stored report (signed anew) is `report`, to its move.
    fn add(&mut self, grouped: GroupedReport, report: &ProcessedReport) {
        let found = self
            .moves
            .iter_mut()
            .find(|m| m.from_issue == grouped.issue_id && m.to_signature == report.signature);
        let planned = match found {
            Some(planned) => planned,
            None => {
                self.moves.push(Move {
                    from_issue: grouped.issue_id,
                    from_signature: grouped.signature,
                    to_signature: report.signature.clone(),
                    to_issue: None,
                    new_issue: false,
                    to_status: None,
                    reports: 0,
                    dropped: 0,
                    skipped: 0,
                    report_ids: Vec::new(),
                    title: title(report),
                });
                self.moves.last_mut().expect("just pushed")
            }
        };
        planned.reports += 1;
        planned.report_ids.push(grouped.id);
    }
}

/// How many reports of `planned` the issue resolved as `resolution` would drop
/// rather than regress on (the grouping policy, as placing applies it).
async fn would_drop(
    vault: &Vault,
    planned: &Move,
    issue_id: i64,
    resolution: &IssueResolution,
) -> Result<u64, RegroupError> {
    let mut dropped = 0;
    for id in &planned.report_ids {
        let Some(row) = vault.index().report(id).await? else {
            continue;
        };
        let place = ReportPlace {
            previous_issue: row.issue_id,
            received_at: row.received_at,
            product: row.facts.product.as_deref(),
            version: row.facts.version.as_deref(),
        };
        let issue = IssuePlace {
            id: issue_id,
            resolved: Some(resolution.as_resolution()),
        };
        if matches!(grouping::group(&place, &issue).verdict, Verdict::Drop(_)) {
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// Applies `plan`: moves each report as processing would place it, rewrites its
/// stored signature, removes the blobs of dropped ones, and audits each move as
/// `actor`. What changed meanwhile is skipped and counted.
pub async fn apply(vault: &Vault, mut plan: Regroup, actor: &str) -> Result<Regroup, RegroupError> {
    let index = vault.index();
    for planned in &mut plan.moves {
        let to = Regrouping {
            signature_hash: Signature::from_text(&planned.to_signature).hash(),
            signature: planned.to_signature.clone(),
            title: planned.title.clone(),
        };
        planned.new_issue = false;
        planned.dropped = 0;
        for id in &planned.report_ids {
            let Some(row) = index.report(id).await? else {
                planned.skipped += 1;
                continue;
            };
            if row.state != ReportState::Processed {
                planned.skipped += 1;
                continue;
            }
            let done =
                patiently(|| index.regroup_report(id, planned.from_issue, &to, now_ms())).await?;
            match done {
                Regrouped::Moved { issue_id, created } => {
                    planned.to_issue = Some(issue_id);
                    planned.new_issue |= created;
                    // The issue's sample stack: the report's, as processing sets it.
                    if let Some(stack) = rewrite_signature(vault, id, &planned.to_signature).await?
                    {
                        index.set_sample_stack(issue_id, &stack).await?;
                    }
                }
                Regrouped::Dropped => {
                    planned.dropped += 1;
                    for key in [
                        vault::processed_key(id),
                        row.raw_key.as_str().into(),
                        row.meta_key.as_str().into(),
                    ] {
                        vault.delete(&key).await?;
                    }
                }
                Regrouped::Skipped => planned.skipped += 1,
            }
        }
        let detail = format!(
            "to_issue={} new_issue={} moved={} dropped={} skipped={}",
            planned
                .to_issue
                .map_or("none".to_owned(), |i| i.to_string()),
            planned.new_issue,
            planned.reports - planned.dropped - planned.skipped,
            planned.dropped,
            planned.skipped,
        );
        index
            .audit(
                actor,
                "signatures.reprocess",
                &planned.from_issue.to_string(),
                Some(&detail),
            )
            .await?;
        tracing::info!(
            from_issue = planned.from_issue,
            to_issue = planned.to_issue,
            reports = planned.reports,
            dropped = planned.dropped,
            skipped = planned.skipped,
            "reports regrouped"
        );
    }
    for (id, signature) in std::mem::take(&mut plan.stale_ids) {
        rewrite_signature(vault, &id, &signature).await?;
    }
    if plan.moves.iter().any(|m| m.dropped > 0) {
        index.checkpoint().await?;
    }
    plan.applied = true;
    Ok(plan)
}

/// The processed report of `id`, opened; `None` when it or its data key is
/// gone, or when it was lost and is being made again
/// ([`stored::read_processed`]: processing places it under the rules of the
/// processing server; this queues that even on a plan alone — a repair, not a
/// regroup).
async fn read_processed(
    vault: &Vault,
    id: &ReportId,
) -> Result<Option<ProcessedReport>, RegroupError> {
    let bytes = match stored::read_processed(vault, vault.index(), id).await? {
        Stored::Report(bytes) => bytes,
        Stored::Reprocessing { .. } | Stored::Missing => return Ok(None),
    };
    match stored::decode(&bytes) {
        Ok(report) => Ok(Some(report)),
        Err(e) => {
            tracing::warn!(report = %id, error = %e, "stored processed report does not parse");
            Ok(None)
        }
    }
}

/// Writes `signature` into report `id`'s stored processed report; answers its
/// crashing thread as text (`Thread::stack_text`), when it has one.
async fn rewrite_signature(
    vault: &Vault,
    id: &ReportId,
    signature: &str,
) -> Result<Option<String>, RegroupError> {
    let Some(data_key) = vault.data_key(id).await? else {
        return Ok(None);
    };
    let key = vault::processed_key(id);
    let Stored::Report(bytes) = stored::read_processed(vault, vault.index(), id).await? else {
        return Ok(None);
    };
    let mut report: ProcessedReport = stored::decode(&bytes)?;
    if report.signature != signature {
        report.signature = signature.to_owned();
        vault
            .put(&key, &data_key, &stored::encode(&report, 0)?)
            .await?;
    }
    Ok(report.crashing_thread.as_ref().map(Thread::stack_text))
}
