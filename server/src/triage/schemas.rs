//! The shapes of the API's JSON answers, as types: the API's description
//! ([`super::openapi`]) derives their schemas from these, and the handlers'
//! `#[utoipa::path]` annotations name them. (The handlers build the same fields
//! as JSON; the end-to-end test checks live answers against these schemas.)

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::index::{AuditEntry, IssueRow, ReportRow, ReportState, Role, TokenRow};

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` (with a 503).
    pub status: String,
}

/// `GET /api/v1/issues`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueList {
    /// The page of issues.
    pub issues: Vec<IssueRow>,
    /// The page size used.
    pub limit: i64,
    /// The rows skipped.
    pub offset: i64,
}

/// How many reports share a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValueCount {
    /// A version, OS or product.
    pub value: String,
    /// Its reports.
    pub count: i64,
}

/// An issue's reports counted per version, OS and product, most first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueCounts {
    /// Per product version.
    pub by_version: Vec<ValueCount>,
    /// Per OS family.
    pub by_os: Vec<ValueCount>,
    /// Per product.
    pub by_product: Vec<ValueCount>,
}

/// `GET /api/v1/issues/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueDetail {
    /// The issue.
    pub issue: IssueRow,
    /// Its reports counted.
    pub counts: IssueCounts,
    /// Its newest report's id, if one is stored.
    pub sample_report_id: Option<String>,
    /// The crashing thread of its latest processed report as text (frames only),
    /// kept after its reports are deleted.
    #[schema(required)]
    pub sample_stack: Option<String>,
    /// Its newest reports (at most 50).
    pub reports: Vec<ReportRow>,
}

/// The metadata every role that may see a report gets: a [`ReportMetadata`]
/// (without `issue_title`), as JSON the handlers add to.
pub(crate) fn report_metadata(row: &ReportRow) -> Value {
    json!({
        "id": row.id,
        "issue_id": row.issue_id,
        "state": row.state,
        "failure": row.failure,
        "received_at": row.received_at,
        "processed_at": row.processed_at,
        "product": row.facts.product,
        "version": row.facts.version,
        "os": row.facts.os,
        "os_version": row.facts.os_version,
        "cpu_arch": row.facts.cpu_arch,
    })
}

/// `GET /api/v1/reports/{id}` as support sees it: metadata, never contents.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportMetadata {
    /// The CrashID, `bp-<uuid>`.
    pub id: String,
    /// The issue it is grouped into, once processed.
    pub issue_id: Option<i64>,
    /// Life-cycle state.
    pub state: ReportState,
    /// Why processing failed.
    pub failure: Option<String>,
    /// Unix ms.
    pub received_at: i64,
    /// Unix ms.
    pub processed_at: Option<i64>,
    /// Product name.
    pub product: Option<String>,
    /// Product version.
    pub version: Option<String>,
    /// OS family.
    pub os: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// CPU architecture.
    pub cpu_arch: Option<String>,
    /// The title of its issue, when it has one.
    #[schema(required = false)]
    pub issue_title: Option<String>,
}

/// `GET /api/v1/reports/{id}` as developers see it: the metadata, the crash, and
/// — once processed — the processed report's own fields (`threads`, `modules`,
/// `annotations`, `signature`, `missing_symbols`, `scrub`, …), which this
/// description leaves open.
// Not shared with ReportMetadata: flattened, both become allOf, which cannot stay open.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportContents {
    /// The CrashID, `bp-<uuid>`.
    pub id: String,
    /// The issue it is grouped into, once processed.
    pub issue_id: Option<i64>,
    /// Life-cycle state.
    pub state: ReportState,
    /// Why processing failed.
    pub failure: Option<String>,
    /// Unix ms.
    pub received_at: i64,
    /// Unix ms.
    pub processed_at: Option<i64>,
    /// Product name.
    pub product: Option<String>,
    /// Product version.
    pub version: Option<String>,
    /// OS family.
    pub os: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// CPU architecture.
    pub cpu_arch: Option<String>,
    /// Crash reason.
    #[schema(required)]
    pub crash_reason: Option<String>,
    /// Crash address, `0x`-prefixed hex.
    #[schema(required)]
    pub crash_address: Option<String>,
    /// `true` when the processed report was lost (a power cut after it was
    /// stored without waiting for the disk) and is being made again from the
    /// raw upload: its fields are back once that job is done.
    #[schema(required = false)]
    pub reprocessing: Option<bool>,
}

/// `GET /api/v1/reports/{id}`: what the caller's role may see.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ReportView {
    /// For developers and admins.
    Contents(ReportContents),
    /// For support.
    Metadata(ReportMetadata),
}

/// `GET /api/v1/token`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentToken {
    /// The token's public id.
    pub id: String,
    /// Its role.
    pub role: Role,
}

/// `GET /api/v1/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// Every API token (no secret).
    pub tokens: Vec<TokenRow>,
}

/// `POST /api/v1/tokens`: the new token, its secret in this answer only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token's public id.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// Its name.
    pub name: String,
    /// The secret to send as `Authorization: Bearer …`.
    pub token: String,
}

/// A module whose symbols reports lacked.
#[derive(Debug, Serialize, ToSchema)]
pub struct MissingModule {
    /// Its debug file name.
    pub debug_file: String,
    /// Its debug id.
    pub debug_id: String,
    /// How many reports lacked it.
    pub reports: i64,
}

/// `GET /api/v1/symbols/missing`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MissingSymbols {
    /// The modules, the ones most reports need first.
    pub missing: Vec<MissingModule>,
}

/// A symbol file stored by an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredSymbol {
    /// The module's debug file name.
    pub debug_file: String,
    /// Its debug id.
    pub debug_id: String,
    /// The `.sym` file name.
    pub file: String,
    /// Where it is stored (`<debug_file>/<debug_id>/<file>`).
    pub key: String,
    /// Its size.
    pub bytes: u64,
}

/// `POST /api/v1/symbols`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SymbolUpload {
    /// The files stored.
    pub stored: Vec<StoredSymbol>,
    /// How many reports are queued to be processed again.
    pub reprocessing: u64,
}

/// `POST /api/v1/issues/{id}/resolve`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resolved {
    /// The issue, resolved.
    pub issue: IssueRow,
    /// Reports deleted now.
    pub reports_deleted: u64,
    /// Reports counted and dropped since earlier resolutions.
    pub dropped_count: i64,
}

/// `POST /api/v1/issues/{id}/reopen`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reopened {
    /// The issue, open.
    pub issue: IssueRow,
}

/// `DELETE /api/v1/issues/{id}` and `DELETE /api/v1/issues/{id}/reports`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Emptied {
    /// Reports deleted.
    pub reports_deleted: u64,
}

/// `GET /api/v1/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLog {
    /// The page of entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// The page size used.
    pub limit: i64,
    /// The entries skipped.
    pub offset: i64,
}

/// `GET /api/v1/reports`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportSearch {
    /// The page of matching reports, newest first: metadata only.
    pub reports: Vec<ReportMetadata>,
    /// The page size used.
    pub limit: i64,
    /// The rows skipped.
    pub offset: i64,
}

/// One day's counts of an issue, for one product and version.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueDayCount {
    /// The UTC day, days since 1970-01-01.
    pub day: i64,
    /// The same day, `YYYY-MM-DD`.
    pub date: String,
    /// The product (`""` when unknown).
    pub product: String,
    /// The version (`""` when unknown).
    pub version: String,
    /// Reports received with a dump.
    pub reports: i64,
    /// Occurrences counted from a crash summary, without a dump.
    pub counted: i64,
}

/// One day's counts of a product, summed over its issues and versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductDayCount {
    /// The UTC day, days since 1970-01-01.
    pub day: i64,
    /// The same day, `YYYY-MM-DD`.
    pub date: String,
    /// The product (`""` when unknown).
    pub product: String,
    /// Reports received with a dump.
    pub reports: i64,
    /// Occurrences counted from a crash summary, without a dump.
    pub counted: i64,
}

/// `GET /api/v1/issues/{id}/daily`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueDaily {
    /// Days in the window.
    pub days: i64,
    /// The window's first day, days since 1970-01-01.
    pub first_day: i64,
    /// Its last day (today).
    pub last_day: i64,
    /// The first day, `YYYY-MM-DD`.
    pub from: String,
    /// The last day, `YYYY-MM-DD`.
    pub to: String,
    /// The issue.
    pub issue_id: i64,
    /// The days with a count, oldest first.
    pub counts: Vec<IssueDayCount>,
}

/// `GET /api/v1/daily`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductDaily {
    /// Days in the window.
    pub days: i64,
    /// The window's first day, days since 1970-01-01.
    pub first_day: i64,
    /// Its last day (today).
    pub last_day: i64,
    /// The first day, `YYYY-MM-DD`.
    pub from: String,
    /// The last day, `YYYY-MM-DD`.
    pub to: String,
    /// The product asked for, or null for all.
    #[schema(required)]
    pub product: Option<String>,
    /// The days with a count, oldest first.
    pub counts: Vec<ProductDayCount>,
}
