//! The JSON API: `/api/v1/issues`, `/api/v1/reports`, and health.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::auth::{Caller, api_tokens};
use super::error::ApiError;
use super::query::{self, ApiQuery};
use super::schemas::report_metadata;
use super::search::ReportSelection;
use crate::crypto::SearchKey;
use crate::index::{IssueFilter, IssueSort, IssueStatus, ReportRow, ReportState, Role};
use crate::pipeline::stored::{self, Stored};
use crate::report_id::ReportId;
use crate::triage::TriageState;

/// `GET /healthz`: 200 when the index answers, 503 otherwise.
#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "The index answers.", body = super::schemas::Health),
    (status = 503, description = "It does not.", body = super::schemas::Health),
))]
pub async fn healthz(State(state): State<TriageState>) -> Response {
    match state.index().check().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: counters in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text format.", content_type = "text/plain", body = String),
))]
pub async fn metrics(State(state): State<TriageState>) -> Response {
    let depth = state.index().queue_depth().await.ok();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(
            depth,
            Some(&state.symbols().cache_stats()),
            state.index().writer_use(),
        ),
    )
        .into_response()
}

/// Which issues a listing shows, in which order: the query keys the API's issue
/// list and the issues page share.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IssueSelection {
    /// `open`, `resolved`, `regressed`.
    pub status: Option<String>,
    /// `count` (default), `last_seen`, `first_seen`.
    pub sort: Option<String>,
    /// Text in the signature.
    pub q: Option<String>,
    /// Only issues with a stored report that matches these (described by
    /// [`ReportSelection`]'s own parameters).
    #[serde(flatten)]
    #[param(ignore)]
    pub reports: ReportSelection,
}

/// Query of `GET /api/v1/issues`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IssueQuery {
    /// Which issues, in which order.
    #[serde(flatten)]
    #[param(ignore)]
    pub selection: IssueSelection,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<i64>,
    /// Rows to skip, at most [`query::MAX_OFFSET`].
    pub offset: Option<i64>,
}

impl IssueQuery {
    /// The index filter this query asks for (annotations tagged under `search`).
    pub fn filter(&self, search: &SearchKey) -> Result<IssueFilter, ApiError> {
        let selection = &self.selection;
        let status = match &selection.status {
            Some(s) => Some(
                IssueStatus::parse(s)
                    .ok_or_else(|| ApiError::BadRequest(format!("unknown status {s:?}")))?,
            ),
            None => None,
        };
        let sort = match selection.sort.as_deref() {
            None | Some("count") => IssueSort::Count,
            Some("last_seen") => IssueSort::LastSeen,
            Some("first_seen") => IssueSort::FirstSeen,
            Some(other) => return Err(ApiError::BadRequest(format!("unknown sort {other:?}"))),
        };
        Ok(IssueFilter {
            status,
            reports: selection.reports.conditions(search)?,
            search: selection.q.clone().filter(|q| !q.is_empty()),
            sort,
            limit: self.limit.unwrap_or(50).clamp(1, 500),
            offset: query::offset(self.offset)?,
        })
    }
}

/// `GET /api/v1/issues`: issues, filtered, sorted and paged as [`IssueQuery`] says.
#[utoipa::path(get, path = "/api/v1/issues", params(IssueSelection, ReportSelection, IssueQuery), responses(
    (status = 200, description = "A page of issues.", body = super::schemas::IssueList),
    (status = 400, description = "A query that does not parse.", body = super::error::ErrorBody),
))]
pub async fn list_issues(
    State(state): State<TriageState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<IssueQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = query.filter(&state.vault().keyring().current().search_key())?;
    let issues = state.index().list_issues(&filter).await?;
    state
        .index()
        .audit(&caller.token_id, "issues.list", "issues", None)
        .await?;
    Ok(Json(json!({
        "issues": issues,
        "limit": filter.limit,
        "offset": filter.offset,
    })))
}

/// `GET /api/v1/issues/{id}`: an issue, its counts per version/OS/product and its newest reports.
#[utoipa::path(get, path = "/api/v1/issues/{id}", params(("id" = i64, Path, description = "Issue id")), responses(
    (status = 200, description = "The issue.", body = super::schemas::IssueDetail),
    (status = 404, description = "No such issue.", body = super::error::ErrorBody),
))]
pub async fn get_issue(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let issue = state.index().issue(id).await?.ok_or(ApiError::NotFound)?;
    state
        .index()
        .audit(&caller.token_id, "issue.read", &id.to_string(), None)
        .await?;
    let breakdown = state.index().issue_breakdown(id).await?;
    let reports = state.index().reports_of_issue(id, 50, 0).await?;
    let sample_stack = state.index().issue_sample_stack(id).await?;
    let pairs = |v: &[(String, i64)]| -> Vec<Value> {
        v.iter()
            .map(|(k, n)| json!({ "value": k, "count": n }))
            .collect()
    };
    Ok(Json(json!({
        "issue": issue,
        "counts": {
            "by_version": pairs(&breakdown.by_version),
            "by_os": pairs(&breakdown.by_os),
            "by_product": pairs(&breakdown.by_product),
        },
        "sample_report_id": reports.first().map(|r| r.id),
        "sample_stack": sample_stack,
        "reports": reports,
    })))
}

/// The report `id` names (a CrashID), or not found.
pub(crate) async fn load_row(
    state: &TriageState,
    id: &str,
) -> Result<(ReportId, ReportRow), ApiError> {
    let id: ReportId = id.parse().map_err(|_| ApiError::NotFound)?;
    let row = state.index().report(&id).await?.ok_or(ApiError::NotFound)?;
    Ok((id, row))
}

/// `GET /api/v1/reports/{id}`: metadata for support; the processed report (audited) for developers.
#[utoipa::path(get, path = "/api/v1/reports/{id}", params(("id" = String, Path, description = "CrashID, `bp-<uuid>`")), responses(
    (status = 200, description = "The report, as the caller's role may see it.", body = super::schemas::ReportView),
    (status = 404, description = "No such report.", body = super::error::ErrorBody),
))]
pub async fn get_report(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, row) = load_row(&state, &id).await?;
    let mut out = report_metadata(&row);
    if caller.role == Role::Support {
        if let Some(issue_id) = row.issue_id
            && let Some(issue) = state.index().issue(issue_id).await?
        {
            out["issue_title"] = json!(issue.title);
        }
        return Ok(Json(out).into_response());
    }
    out["crash_reason"] = json!(row.facts.crash_reason);
    out["crash_address"] = json!(row.facts.crash_address);
    out["crash_site"] = json!(row.facts.crash_site);
    // The processed report's fields go out as they are stored (their text
    // checked, not taken apart and put together again: for a big report that
    // cost as much as processing it), after the row's own.
    let mut spliced: Option<BTreeMap<String, Box<RawValue>>> = None;
    if row.state == ReportState::Processed {
        match stored::read_processed(state.vault(), state.index(), &row.id).await? {
            Stored::Report(bytes) => {
                let mut fields: BTreeMap<String, Box<RawValue>> = stored::decode(&bytes)?;
                if let Value::Object(own) = out.take() {
                    for (key, value) in own {
                        fields.insert(key, serde_json::value::to_raw_value(&value)?);
                    }
                }
                spliced = Some(fields);
            }
            // Lost to a power cut and being made again from the raw upload.
            Stored::Reprocessing { queued } => {
                if queued {
                    state.wake_workers();
                }
                out["reprocessing"] = json!(true);
            }
            Stored::Missing => {}
        }
    }
    state
        .index()
        .audit(&caller.token_id, "report.read", &row.id.to_string(), None)
        .await?;
    Ok(match spliced {
        Some(fields) => Json(fields).into_response(),
        None => Json(out).into_response(),
    })
}

/// `GET /api/v1/reports/{id}/minidump`: the stored (scrubbed) dump, audited.
#[utoipa::path(get, path = "/api/v1/reports/{id}/minidump", responses(
    (status = 200, description = "The dump.", content_type = "application/x-dmp", body = Vec<u8>),
    (status = 404, description = "No such report, or its dump is gone.", body = super::error::ErrorBody),
))]
pub async fn get_minidump(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    minidump_download(&state, &caller, &id).await
}

/// The stored (scrubbed) dump of report `id` as a file download, the read
/// audited: the API's and the report page's download.
pub(crate) async fn minidump_download(
    state: &TriageState,
    caller: &Caller,
    id: &str,
) -> Result<Response, ApiError> {
    let (id, row) = load_row(state, id).await?;
    let bytes = state
        .vault()
        .read_dump(
            &row.id,
            &row.raw_key.as_str().into(),
            &row.meta_key.as_str().into(),
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    state
        .index()
        .audit(
            &caller.token_id,
            "report.download",
            &row.id.to_string(),
            None,
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-dmp".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.dmp\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/v1/token`: the calling token's id and role, so a CLI can check its
/// token once before it starts (`mayday-symbols upload` does).
#[utoipa::path(get, path = "/api/v1/token", responses(
    (status = 200, description = "The calling token.", body = super::schemas::CurrentToken),
))]
pub async fn current_token(caller: Caller) -> Json<Value> {
    Json(json!({ "id": caller.token_id, "role": caller.role.as_str() }))
}

/// `GET /api/v1/tokens`: every API token (never a secret; sessions left out).
#[utoipa::path(get, path = "/api/v1/tokens", responses(
    (status = 200, description = "The tokens.", body = super::schemas::TokenList),
))]
pub async fn list_tokens(State(state): State<TriageState>) -> Result<Json<Value>, ApiError> {
    let tokens = api_tokens(state.index()).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// The role of the new token.
    pub role: Role,
    /// A name for people.
    #[serde(default)]
    pub name: String,
}

/// `POST /api/v1/tokens`: creates a token; the secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", request_body = NewToken, responses(
    (status = 201, description = "The new token.", body = super::schemas::CreatedToken),
    (status = 400, description = "A body that is not JSON.", body = super::error::ErrorBody),
    (status = 422, description = "A body without a known role.", body = super::error::ErrorBody),
))]
pub async fn create_token(
    State(state): State<TriageState>,
    caller: Caller,
    Json(new): Json<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (id, secret) = create_token_audited(&state, &caller, new.role, &new.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "role": new.role, "name": new.name, "token": secret })),
    ))
}

/// Creates a token with `role` and `name` and audits it: `(id, secret)`.
pub(crate) async fn create_token_audited(
    state: &TriageState,
    caller: &Caller,
    role: Role,
    name: &str,
) -> Result<(String, String), ApiError> {
    let (id, secret) = super::auth::create_token(state.index(), role, name).await?;
    state
        .index()
        .audit(&caller.token_id, "token.create", &id, Some(role.as_str()))
        .await?;
    Ok((id, secret))
}

/// `DELETE /api/v1/tokens/{id}`: revokes a token. 204, or 404 when there is no
/// live token with that id.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", responses(
    (status = 204, description = "Revoked."),
    (status = 404, description = "No live token with that id.", body = super::error::ErrorBody),
))]
pub async fn revoke_token(
    State(state): State<TriageState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .index()
        .revoke_token(&id, crate::index::now_ms())
        .await?
    {
        return Err(ApiError::NotFound);
    }
    state
        .index()
        .audit(&caller.token_id, "token.revoke", &id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/symbols/missing`: modules whose symbols reports lacked, the ones
/// most reports need first.
#[utoipa::path(get, path = "/api/v1/symbols/missing", responses(
    (status = 200, description = "The modules.", body = super::schemas::MissingSymbols),
))]
pub async fn missing_symbols(State(state): State<TriageState>) -> Result<Json<Value>, ApiError> {
    let missing = state.index().missing_symbols_ranked(500).await?;
    let rows: Vec<Value> = missing
        .iter()
        .map(|(file, id, n)| json!({ "debug_file": file, "debug_id": id, "reports": n }))
        .collect();
    Ok(Json(json!({ "missing": rows })))
}

/// The API's description as served: built once from the route table
/// (`triage::openapi::document`) and handed to [`openapi_json`].
#[derive(Debug, Clone)]
pub struct ApiDescription(pub bytes::Bytes);

/// `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 description (public: it
/// holds no data).
#[utoipa::path(get, path = "/api/v1/openapi.json", responses(
    (status = 200, description = "The description.", content_type = "application/json", body = Object),
))]
pub async fn openapi_json(Extension(description): Extension<ApiDescription>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], description.0).into_response()
}
