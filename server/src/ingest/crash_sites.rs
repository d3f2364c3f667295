//! `POST /api/v1/crash-sites`: a client asks, with a crash-site summary (product,
//! version, OS family, the crash-site key — no dump, no annotation, no
//! identifier), whether its dump is wanted. The answer (`mayday_report::
//! crash_site::CrashSiteAnswer`, JSON) is `send`, or `counted` / `fixed` after the
//! occurrence was added to its issue's counts: nothing else of it is stored.
//!
//! The decision is the grouping policy's ([`grouping::judge_summary`]); which issue
//! a key belongs to the index learned from the reports it processed. The
//! per-sender rate limit applies as to uploads (a summary counts as one request,
//! whatever its size), and so do the throttle rules, but for sampling: only the
//! dump a summary may bring is sampled, once.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mayday_report::crash_site::{CrashSiteAnswer, CrashSiteSummary};

use super::{IngestError, IngestState};
use crate::grouping::{self, Resolution, SummaryPlace, SummaryVerdict, Wanted};
use crate::index::{IssueStatus, now_ms};

/// The most bytes of a summary: four short fields.
const MAX_SUMMARY_BYTES: usize = 4 * 1024;

/// Answers one summary.
pub(super) async fn answer(
    State(state): State<IngestState>,
    body: Body,
) -> Result<Response, IngestError> {
    if !state.crash_sites.enabled {
        // As a server without the route: clients send their dumps.
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let summary = read_summary(body).await.inspect_err(|e| {
        state.metrics.rejected(e.name());
    })?;
    if let Some(refusal) = state
        .throttle
        .check_summary(&summary.product, summary.version.as_deref())
    {
        return Ok(refusal.into_response());
    }
    let wanted = Wanted {
        samples: state.crash_sites.samples_for(&summary.product),
        recheck_every: state.crash_sites.recheck_every,
    };
    let now = now_ms();
    let answer = match state
        .index
        .crash_site(&summary.crash_site, i64::from(wanted.samples))
        .await?
    {
        None => CrashSiteAnswer::Send,
        Some(issue) => {
            let place = SummaryPlace {
                resolved: (issue.status == IssueStatus::Resolved).then_some(Resolution {
                    at: issue.resolved_at,
                    in_version: issue.resolved_in_version.as_deref(),
                    product: issue.resolved_product.as_deref(),
                }),
                regressed: issue.status == IssueStatus::Regressed,
                stored_reports: issue.stored_reports,
                counted: issue.counted,
                ambiguous: issue.ambiguous,
            };
            let product = Some(summary.product.as_str());
            let version = summary.version.as_deref();
            match grouping::judge_summary(product, version, now, &place, wanted) {
                SummaryVerdict::Send => CrashSiteAnswer::Send,
                verdict => {
                    state
                        .index
                        .count_occurrence(issue.issue_id, product, version, now)
                        .await?;
                    match (verdict, issue.resolved_in_version) {
                        (SummaryVerdict::Fixed, Some(fixed_in)) => {
                            CrashSiteAnswer::Fixed { fixed_in }
                        }
                        _ => CrashSiteAnswer::Counted {
                            status: issue.status.as_str().to_owned(),
                        },
                    }
                }
            }
        }
    };
    state.metrics.summary(match &answer {
        CrashSiteAnswer::Send => "send",
        CrashSiteAnswer::Counted { .. } => "counted",
        CrashSiteAnswer::Fixed { .. } => "fixed",
    });
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// Reads and checks the summary: JSON of exactly its fields, each of its shape.
async fn read_summary(body: Body) -> Result<CrashSiteSummary, IngestError> {
    let bytes = axum::body::to_bytes(body, MAX_SUMMARY_BYTES)
        .await
        .map_err(|_| IngestError::TooLarge("summary"))?;
    let summary: CrashSiteSummary =
        serde_json::from_slice(&bytes).map_err(|_| IngestError::Malformed("summary"))?;
    summary
        .validate()
        .map_err(|_| IngestError::Malformed("summary"))?;
    Ok(summary)
}
