//! An issue's lifecycle over the API: resolve, reopen, delete its reports, delete
//! it. The pages' forms ([`super::pages::issues`]) and the CLI call the same
//! functions ([`crate::lifecycle`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use crate::lifecycle::{self, Emptying};
use crate::triage::TriageState;

/// Body of `POST /api/v1/issues/{id}/resolve` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Resolved in this version: later crashes from older versions are counted
    /// and dropped, and do not reopen the issue.
    pub in_version: Option<String>,
}

/// `POST /api/v1/issues/{id}/resolve`: marks the issue resolved and deletes every
/// report of it. Answers the issue, how many reports were deleted, and how many
/// of its reports have been counted and dropped since earlier resolutions.
#[utoipa::path(post, path = "/api/v1/issues/{id}/resolve", params(("id" = i64, Path, description = "Issue id")),
    request_body(content = Option<ResolveBody>, description = "Optional."), responses(
    (status = 200, description = "Resolved.", body = super::schemas::Resolved),
    (status = 400, description = "A body or version that does not parse.", body = super::error::ErrorBody),
    (status = 404, description = "No such issue.", body = super::error::ErrorBody),
))]
pub async fn resolve(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: ResolveBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResolveBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?
    };
    let deleted = lifecycle::resolve_issue(
        state.vault(),
        state.metrics(),
        id,
        body.in_version.as_deref(),
        &caller.token_id,
    )
    .await?;
    let issue = state.index().issue(id).await?.ok_or(ApiError::NotFound)?;
    let dropped = state.index().issue_dropped_count(id).await?;
    Ok(Json(
        json!({ "issue": issue, "reports_deleted": deleted, "dropped_count": dropped }),
    ))
}

/// `POST /api/v1/issues/{id}/reopen`: reopens the issue.
#[utoipa::path(post, path = "/api/v1/issues/{id}/reopen", params(("id" = i64, Path, description = "Issue id")), responses(
    (status = 200, description = "Reopened.", body = super::schemas::Reopened),
    (status = 404, description = "No such issue.", body = super::error::ErrorBody),
))]
pub async fn reopen(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    lifecycle::reopen_issue(state.index(), id, &caller.token_id).await?;
    let issue = state.index().issue(id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(json!({ "issue": issue })))
}

/// `DELETE /api/v1/issues/{id}/reports`: deletes every report of the issue; the
/// issue stays.
#[utoipa::path(delete, path = "/api/v1/issues/{id}/reports", params(("id" = i64, Path, description = "Issue id")), responses(
    (status = 200, description = "Its reports are deleted.", body = super::schemas::Emptied),
    (status = 404, description = "No such issue.", body = super::error::ErrorBody),
))]
pub async fn delete_issue_reports(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    empty(&state, &caller, id, Emptying::KeepIssue).await
}

/// `DELETE /api/v1/issues/{id}`: deletes every report of the issue and the issue.
#[utoipa::path(delete, path = "/api/v1/issues/{id}", params(("id" = i64, Path, description = "Issue id")), responses(
    (status = 200, description = "The issue and its reports are deleted.", body = super::schemas::Emptied),
    (status = 404, description = "No such issue.", body = super::error::ErrorBody),
))]
pub async fn delete_issue(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    empty(&state, &caller, id, Emptying::DeleteIssue).await
}

/// Deletes the reports of issue `id` and, as `emptying` says, the issue: how many
/// reports went.
async fn empty(
    state: &TriageState,
    caller: &Caller,
    id: i64,
    emptying: Emptying,
) -> Result<Json<Value>, ApiError> {
    let deleted = lifecycle::empty_issue(
        state.vault(),
        state.metrics(),
        id,
        &caller.token_id,
        emptying,
    )
    .await?;
    Ok(Json(json!({ "reports_deleted": deleted })))
}
