//! The audit log, for admins: who read, downloaded, resolved or deleted what,
//! newest first — as JSON (`GET /api/v1/audit`) and as a page (`GET /audit`).
//! The entries are written where the actions happen; the index keeps them.

use axum::Json;
use axum::extract::State;
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::pages::{self, PageResult, fmt_time, layout};
use super::query::{self, ApiQuery, PageQuery};
use crate::triage::TriageState;

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<i64>,
    /// Entries to skip, at most [`query::MAX_OFFSET`].
    pub offset: Option<i64>,
}

/// `GET /api/v1/audit`: the audit log, newest first (admins).
#[utoipa::path(get, path = "/api/v1/audit", operation_id = "audit", params(AuditQuery), responses(
    (status = 200, description = "A page of the audit log.", body = super::schemas::AuditLog),
    (status = 400, description = "A query that does not parse.", body = super::error::ErrorBody),
))]
pub async fn api(
    State(state): State<TriageState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let offset = query::offset(query.offset)?;
    let entries = state.index().audit_entries(limit, offset).await?;
    Ok(Json(
        json!({ "entries": entries, "limit": limit, "offset": offset }),
    ))
}

/// Query of the audit page.
#[derive(Debug, Default, Deserialize)]
pub struct AuditPageQuery {
    /// 1-based page.
    pub page: Option<i64>,
}

/// `GET /audit`: who read, downloaded, resolved or deleted what, newest first.
pub async fn page(
    State(state): State<TriageState>,
    caller: Caller,
    PageQuery(query): PageQuery<AuditPageQuery>,
) -> PageResult {
    const PAGE: i64 = 100;
    let (page, skipped) = query::page(query.page, PAGE)?;
    let mut entries = state.index().audit_entries(PAGE + 1, skipped).await?;
    let more = entries.len() as i64 > PAGE;
    entries.truncate(PAGE as usize);
    // Tokens by id, to name who did what (the log keeps ids, never names).
    let names: std::collections::HashMap<String, (String, &'static str)> = state
        .index()
        .list_tokens()
        .await?
        .into_iter()
        .map(|t| (t.id, (t.name, t.role.as_str())))
        .collect();
    let body = html! {
        h1 { "Audit log" }
        // Fixed column widths and long values wrapped: it fits a 1280 px window.
        table.fixed id="audit" {
            thead { tr { th { "When" } th { "Who" } th { "What" } th { "On" } th { "Detail" } } }
            tbody {
                @for e in &entries {
                    tr {
                        td { (fmt_time(e.at)) }
                        td.wrap title=(e.actor) {
                            @match names.get(&e.actor) {
                                Some((name, role)) if !name.is_empty() => { (name) " " span.muted { "(" (role) ")" } }
                                Some((_, role)) => { span.mono { (e.actor) } " " span.muted { "(" (role) ")" } }
                                None => span.mono { (e.actor) },
                            }
                        }
                        td.mono.wrap { (e.action) }
                        td.mono.wrap { (e.target) }
                        td.mono.wrap { (e.detail.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        div.pager {
            @if page > 1 { a href=(format!("/audit?page={}", page - 1)) { "← Newer" } }
            @if more { a href=(format!("/audit?page={}", page + 1)) { "Older →" } }
        }
    };
    pages::ok(layout("Audit log", Some(&caller), body))
}
