//! Search over reports: the filters the report search (`GET /api/v1/reports`),
//! the issue list (API and page) and the CLI share, read from a query string.
//!
//! Filters: `since` / `until` (a UTC day `2026-11-30`, both ends included, or an
//! RFC 3339 time), `product`, `version`, `min_version` (this version or later, as
//! versions compare), `os`, `os_version`, `crash_reason`, `module` (the crashing
//! module's file name), `annotation` (`key=value`, exactly, after scrubbing;
//! looked up by its keyed tag). Empty values are ignored (a form's empty fields).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use super::api::report_metadata;
use super::auth::Caller;
use super::error::ApiError;
use super::query::{self, ApiQuery};
use crate::crypto::SearchKey;
use crate::index::{ReportConditions, ReportFilter};
use crate::triage::TriageState;
use crate::version::sort_key;

/// The report filters of a query string.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportSelection {
    /// Received on or after this day or time.
    pub since: Option<String>,
    /// Received on or before this day, or before this time.
    pub until: Option<String>,
    /// Product name.
    pub product: Option<String>,
    /// Product version, exactly.
    pub version: Option<String>,
    /// This version or a later one.
    pub min_version: Option<String>,
    /// OS family.
    pub os: Option<String>,
    /// OS version, exactly.
    pub os_version: Option<String>,
    /// Crash reason, exactly.
    pub crash_reason: Option<String>,
    /// The crashing module's file name.
    pub module: Option<String>,
    /// `key=value`: an annotation, exactly.
    pub annotation: Option<String>,
}

impl ReportSelection {
    /// The query keys and their values, empty ones left out (to rebuild a URL).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("since", &self.since),
            ("until", &self.until),
            ("product", &self.product),
            ("version", &self.version),
            ("min_version", &self.min_version),
            ("os", &self.os),
            ("os_version", &self.os_version),
            ("crash_reason", &self.crash_reason),
            ("module", &self.module),
            ("annotation", &self.annotation),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, given(v)?)))
        .collect()
    }

    /// The index conditions; a value of the wrong shape is a 400 that says which.
    pub fn conditions(&self, search: &SearchKey) -> Result<ReportConditions, ApiError> {
        let bad = |what: &str| ApiError::BadRequest(what.to_owned());
        let min_version_key =
            match given(&self.min_version) {
                Some(v) => Some(sort_key(&v).ok_or_else(|| {
                    bad("min_version must be a version (semver or dotted numbers)")
                })?),
                None => None,
            };
        let annotation_tag = match given(&self.annotation) {
            Some(pair) => {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| bad("annotation must be key=value"))?;
                Some(search.tag(key.trim(), value.trim()))
            }
            None => None,
        };
        Ok(ReportConditions {
            since: given(&self.since).map(|t| time_ms(&t, false)).transpose()?,
            until: given(&self.until).map(|t| time_ms(&t, true)).transpose()?,
            product: given(&self.product),
            version: given(&self.version),
            min_version_key,
            os: given(&self.os),
            os_version: given(&self.os_version),
            crash_reason: given(&self.crash_reason),
            module: given(&self.module),
            annotation_tag,
        })
    }
}

/// A value given: trimmed, and not empty.
fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Unix ms of a UTC day (its start, or with `end` the next day's start, so the
/// day is included) or of an RFC 3339 time.
fn time_ms(text: &str, end: bool) -> Result<i64, ApiError> {
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let at = match time::Date::parse(text, &day) {
        Ok(date) => {
            let date = if end {
                date.next_day().unwrap_or(date)
            } else {
                date
            };
            date.midnight().assume_utc()
        }
        Err(_) => time::OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            ApiError::BadRequest(format!(
                "{text:?} is not a day (2026-11-30) or an RFC 3339 time"
            ))
        })?,
    };
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Query of `GET /api/v1/reports`.
#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    /// The filters.
    #[serde(flatten)]
    pub selection: ReportSelection,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<String>,
    /// Rows to skip, at most [`query::MAX_OFFSET`].
    pub offset: Option<String>,
}

/// A number of a query string (kept as text there: flattened queries read
/// every value as text).
fn number(value: &Option<String>, name: &str) -> Result<Option<i64>, ApiError> {
    given(value)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::BadRequest(format!("{name} must be a number")))
        })
        .transpose()
}

/// `GET /api/v1/reports`: the reports matching the filters, newest first.
pub async fn search_reports(
    State(state): State<TriageState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    let search = state.vault().keyring().current().search_key();
    let filter = ReportFilter {
        conditions: query.selection.conditions(&search)?,
        limit: number(&query.limit, "limit")?.unwrap_or(50).clamp(1, 500),
        offset: query::offset(number(&query.offset, "offset")?)?,
    };
    let reports = state.index().search_reports(&filter).await?;
    state
        .index()
        .audit(&caller.token_id, "reports.search", "reports", None)
        .await?;
    let reports: Vec<Value> = reports.iter().map(report_metadata).collect();
    Ok(Json(json!({
        "reports": reports,
        "limit": filter.limit,
        "offset": filter.offset,
    })))
}
