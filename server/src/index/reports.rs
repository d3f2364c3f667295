//! Report rows.

use super::batch::{Batch, Fields, statement};
use super::write::Commit;
use super::{Index, IndexError, KeyKind, keys, report_id_at};
use crate::crypto::WrappedKey;
use crate::report_id::ReportId;
use crate::version::sort_key;

/// Where a report is in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    /// Received and stored; waiting to be processed.
    Queued,
    /// Processed; the processed report is stored.
    Processed,
    /// Processing failed for good (malformed dump, timeout); see `failure`.
    Failed,
}

impl ReportState {
    /// The name stored in the index and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportState::Queued => "queued",
            ReportState::Processed => "processed",
            ReportState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, IndexError> {
        match s {
            "queued" => Ok(ReportState::Queued),
            "processed" => Ok(ReportState::Processed),
            "failed" => Ok(ReportState::Failed),
            other => Err(IndexError::Corrupt(format!("report state {other:?}"))),
        }
    }
}

/// What a report says about the crash and where it happened: found by processing,
/// stored in the report's row and in the processed report (flat in its JSON).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct CrashFacts {
    /// Product name from the annotations, if any.
    pub product: Option<String>,
    /// Product version from the annotations, if any.
    pub version: Option<String>,
    /// OS family (`Linux`, `Windows NT`, `Mac OS X`, …).
    pub os: Option<String>,
    /// OS version string as the dump records it.
    pub os_version: Option<String>,
    /// CPU architecture (`amd64`, `x86`, `arm64`, …).
    pub cpu_arch: Option<String>,
    /// Crash reason (`SIGSEGV /SEGV_MAPERR`, `EXCEPTION_ACCESS_VIOLATION_WRITE`, …).
    pub crash_reason: Option<String>,
    /// Crash address, `0x`-prefixed hex.
    pub crash_address: Option<String>,
    /// The crash-site key of the dump ([`mayday_report::crash_site`]): what a
    /// client's summary names to ask whether the dump is wanted.
    pub crash_site: Option<String>,
    /// The module of the crashing thread's top frame (its file name).
    pub crash_module: Option<String>,
}

/// A report as the ingest endpoint records it.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// The report's id.
    pub id: ReportId,
    /// Unix ms.
    pub received_at: i64,
    /// Product name from the annotations.
    pub product: Option<String>,
    /// Product version from the annotations.
    pub version: Option<String>,
    /// Hex SHA-256 of the deletion token.
    pub deletion_token_hash: String,
    /// Store key of the dump.
    pub raw_key: String,
    /// Store key of the upload's metadata.
    pub meta_key: String,
    /// The report's data key, wrapped by the master key: stored with the row, so
    /// there is a key for every report and none for a report never recorded.
    pub data_key: WrappedKey,
    /// The report's stack key (the stack memory of its dump is sealed under it),
    /// wrapped by the master key, stored with the row likewise; `None` for a raw
    /// object that keeps its stack memory in the dump.
    pub stack_key: Option<WrappedKey>,
}

/// A report row.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    /// The report's id (`bp-<uuid>` in JSON).
    #[schema(value_type = String)]
    pub id: ReportId,
    /// The issue it is grouped into, once processed.
    pub issue_id: Option<i64>,
    /// Unix ms.
    pub received_at: i64,
    /// Unix ms.
    pub processed_at: Option<i64>,
    /// What processing found (product and version from the upload until then);
    /// flat in the JSON.
    #[serde(flatten)]
    pub facts: CrashFacts,
    /// Life-cycle state.
    pub state: ReportState,
    /// Why processing failed.
    pub failure: Option<String>,
    /// Hex SHA-256 of the deletion token.
    #[serde(skip)]
    pub deletion_token_hash: String,
    /// Store key of the dump.
    #[serde(skip)]
    pub raw_key: String,
    /// Store key of the upload's metadata.
    #[serde(skip)]
    pub meta_key: String,
}

pub(super) const REPORT_COLUMNS: &str = "id, issue_id, received_at, processed_at, product, version, os, \
     os_version, cpu_arch, crash_reason, crash_address, crash_site, crash_module, state, failure, \
     deletion_token_hash, raw_key, meta_key";

/// A report's row as read with [`REPORT_COLUMNS`] (by sqlx or in the calling
/// thread).
// Alike `issue_from_row` (issues.rs) in shape only: each reads its own table's
// columns into its own struct.
pub(super) fn report_from_row(row: &impl Fields) -> Result<ReportRow, IndexError> {
    Ok(ReportRow {
        id: report_id_at(row, "id")?,
        issue_id: row.field("issue_id")?,
        received_at: row.field("received_at")?,
        processed_at: row.field("processed_at")?,
        facts: CrashFacts {
            product: row.field("product")?,
            version: row.field("version")?,
            os: row.field("os")?,
            os_version: row.field("os_version")?,
            cpu_arch: row.field("cpu_arch")?,
            crash_reason: row.field("crash_reason")?,
            crash_address: row.field("crash_address")?,
            crash_site: row.field("crash_site")?,
            crash_module: row.field("crash_module")?,
        },
        state: ReportState::parse(&row.field::<String>("state")?)?,
        failure: row.field("failure")?,
        deletion_token_hash: row.field("deletion_token_hash")?,
        raw_key: row.field("raw_key")?,
        meta_key: row.field("meta_key")?,
    })
}

impl Index {
    /// Records a received report (its data key, its row and its processing job),
    /// in one transaction.
    pub async fn insert_report_with_job(&self, report: &NewReport) -> Result<(), IndexError> {
        self.insert_reports(std::slice::from_ref(report)).await
    }

    /// Records received reports, each with its data key (and stack key), its row
    /// and its processing job, in one transaction: all of them or none. (Uploads share
    /// commits this way through the [`Intake`](super::Intake).)
    pub async fn insert_reports(&self, reports: &[NewReport]) -> Result<(), IndexError> {
        // Each table's rows in one statement, from a JSON array (the same SQL
        // whatever the number of reports), and the statements in one batch.
        let mut data_keys = Vec::with_capacity(reports.len());
        let mut stack_keys = Vec::new();
        let mut rows = Vec::with_capacity(reports.len());
        let mut jobs = Vec::with_capacity(reports.len());
        for report in reports {
            let id = report.id.to_string();
            data_keys.push(keys::key_row(&id, &report.data_key, report.received_at));
            if let Some(stack_key) = &report.stack_key {
                stack_keys.push(keys::key_row(&id, stack_key, report.received_at));
            }
            rows.push(serde_json::json!([
                id,
                report.received_at,
                report.product,
                report.version,
                report.version.as_deref().and_then(sort_key),
                report.deletion_token_hash,
                report.raw_key,
                report.meta_key,
            ]));
            jobs.push(serde_json::json!([id, report.received_at]));
        }
        let each = self.backend.json_rows("$1");
        let mut batch = Batch::new(self.backend);
        batch.push(keys::insert_keys(self.backend, KeyKind::Data, data_keys));
        if !stack_keys.is_empty() {
            batch.push(keys::insert_keys(self.backend, KeyKind::Stack, stack_keys));
        }
        batch.push(
            statement(format!(
                "INSERT INTO reports (id, received_at, product, version, version_key, state, \
                 deletion_token_hash, raw_key, meta_key) \
                 SELECT value ->> 0, CAST(value ->> 1 AS BIGINT), value ->> 2, value ->> 3, \
                 value ->> 4, 'queued', value ->> 5, value ->> 6, value ->> 7 FROM {each}"
            ))
            .bind(serde_json::Value::Array(rows).to_string()),
        );
        batch.push(
            statement(format!(
                "INSERT INTO jobs (report_id, kind, state, not_before, created_at) \
                 SELECT value ->> 0, 'process', 'pending', CAST(value ->> 1 AS BIGINT), \
                 CAST(value ->> 1 AS BIGINT) FROM {each}"
            ))
            .bind(serde_json::Value::Array(jobs).to_string()),
        );
        self.write(Commit::Durable, batch).await?;
        Ok(())
    }

    /// One report, or `None`.
    pub async fn report(&self, id: &ReportId) -> Result<Option<ReportRow>, IndexError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPORT_COLUMNS} FROM reports WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(report_from_row).transpose()
    }

    /// How many reports of an issue are stored.
    pub async fn count_reports_of_issue(&self, issue_id: i64) -> Result<i64, IndexError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reports WHERE issue_id = $1")
            .bind(issue_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Reports of an issue, newest first.
    pub async fn reports_of_issue(
        &self,
        issue_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ReportRow>, IndexError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REPORT_COLUMNS} FROM reports WHERE issue_id = $1 \
             ORDER BY received_at DESC, id LIMIT $2 OFFSET $3"
        )))
        .bind(issue_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(report_from_row).collect()
    }

    /// Removes a report's rows (report, its jobs, its missing-symbol records and
    /// annotation tags).
    /// Returns whether there was one. Blobs are the caller's to delete first.
    pub async fn delete_report(&self, id: &ReportId) -> Result<bool, IndexError> {
        let id = id.to_string();
        let mut batch = Batch::new(self.backend);
        for sql in [
            "DELETE FROM jobs WHERE report_id = $1",
            "DELETE FROM report_missing_symbols WHERE report_id = $1",
            "DELETE FROM report_annotations WHERE report_id = $1",
            "DELETE FROM reports WHERE id = $1 RETURNING id",
        ] {
            batch.push(statement(sql).bind(&id));
        }
        let deleted = self.write(Commit::Durable, batch).await?;
        Ok(!deleted.is_empty())
    }

    /// Modules whose symbols were missing, with how many stored reports lacked
    /// them, most first: `(debug_file, debug_id, reports)`. (Triage's symbols page.)
    pub async fn missing_symbols_ranked(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, String, i64)>, IndexError> {
        Ok(sqlx::query_as(
            "SELECT debug_file, debug_id, COUNT(*) AS n FROM report_missing_symbols \
             GROUP BY debug_file, debug_id ORDER BY n DESC, debug_file, debug_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
