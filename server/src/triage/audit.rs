//! The audit log, for admins: who read, downloaded, resolved or deleted what,
//! newest first — as JSON (`GET /api/v1/audit`) and as a page (`GET /audit`).
//! The entries are written where the actions happen; the index keeps them.

use axum::Json;
use axum::extract::{Query, State};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::pages::{self, PageResult, fmt_time, layout};
use crate::triage::TriageState;

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<i64>,
    /// Entries to skip.
    pub offset: Option<i64>,
}

/// `GET /api/v1/audit`: the audit log, newest first (admins).
pub async fn api(
    State(state): State<TriageState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let offset = query.offset.unwrap_or(0).max(0);
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
    Query(query): Query<AuditPageQuery>,
) -> PageResult {
    const PAGE: i64 = 100;
    let page = query.page.unwrap_or(1).max(1);
    let mut entries = state
        .index()
        .audit_entries(PAGE + 1, (page - 1) * PAGE)
        .await?;
    let more = entries.len() as i64 > PAGE;
    entries.truncate(PAGE as usize);
    let body = html! {
        h1 { "Audit log" }
        table id="audit" {
            thead { tr { th { "When" } th { "Who" } th { "What" } th { "On" } th { "Detail" } } }
            tbody {
                @for e in &entries {
                    tr {
                        td { (fmt_time(e.at)) }
                        td.mono { (e.actor) }
                        td.mono { (e.action) }
                        td.mono { (e.target) }
                        td.mono { (e.detail.as_deref().unwrap_or("")) }
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
