//! Issue rows: reports grouped by signature.

use sqlx::Row;

use super::batch::Fields;
use super::search::{Bind, TagLookup, bind_all};
use super::{Index, IndexError, ReportConditions};

/// An issue's triage status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    /// New, or reopened by hand.
    Open,
    /// Marked resolved; its reports were deleted.
    Resolved,
    /// Was resolved, and crashed again.
    Regressed,
}

impl IssueStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Open => "open",
            IssueStatus::Resolved => "resolved",
            IssueStatus::Regressed => "regressed",
        }
    }

    /// Parses a stored or requested status name.
    pub fn parse(s: &str) -> Option<IssueStatus> {
        match s {
            "open" => Some(IssueStatus::Open),
            "resolved" => Some(IssueStatus::Resolved),
            "regressed" => Some(IssueStatus::Regressed),
            _ => None,
        }
    }
}

/// An issue.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IssueRow {
    /// Issue id.
    pub id: i64,
    /// Signature text.
    pub signature: String,
    /// Hex SHA-256 of the signature: the grouping key.
    pub signature_hash: String,
    /// Title shown in lists.
    pub title: String,
    /// Triage status.
    pub status: IssueStatus,
    /// Version it was resolved in, if given.
    pub resolved_in_version: Option<String>,
    /// Unix ms of the resolution.
    pub resolved_at: Option<i64>,
    /// Unix ms of the oldest report.
    pub first_seen: i64,
    /// Unix ms of the newest report.
    pub last_seen: i64,
    /// How many reports it has had (deleted ones included).
    pub count: i64,
    /// How many more crashes of it were counted from summaries, without a dump.
    pub counted_without_dump: i64,
}

/// How to order an issue list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueSort {
    /// Most reports first.
    #[default]
    Count,
    /// Most recently seen first.
    LastSeen,
    /// Most recently first seen first.
    FirstSeen,
}

/// Filters for an issue list.
#[derive(Debug, Clone, Default)]
pub struct IssueFilter {
    /// Only issues with this status.
    pub status: Option<IssueStatus>,
    /// Only issues with a stored report that matches these.
    pub reports: ReportConditions,
    /// Only issues whose signature contains this text.
    pub search: Option<String>,
    /// Order.
    pub sort: IssueSort,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// Counts of an issue's stored reports per version and per OS.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IssueBreakdown {
    /// `(version, count)`, most first.
    pub by_version: Vec<(String, i64)>,
    /// `(os, count)`, most first.
    pub by_os: Vec<(String, i64)>,
    /// `(product, count)`, most first.
    pub by_product: Vec<(String, i64)>,
}

pub(super) const ISSUE_COLUMNS: &str = "id, signature, signature_hash, title, status, resolved_in_version, \
     resolved_at, first_seen, last_seen, report_count, counted_count";

/// The issue status in column `status` of `row`.
pub(super) fn issue_status_of(row: &impl Fields) -> Result<IssueStatus, IndexError> {
    let status: String = row.field("status")?;
    IssueStatus::parse(&status)
        .ok_or_else(|| IndexError::Corrupt(format!("issue status {status:?}")))
}

pub(super) fn issue_from_row(row: &impl Fields) -> Result<IssueRow, IndexError> {
    Ok(IssueRow {
        id: row.field("id")?,
        signature: row.field("signature")?,
        signature_hash: row.field("signature_hash")?,
        title: row.field("title")?,
        status: issue_status_of(row)?,
        resolved_in_version: row.field("resolved_in_version")?,
        resolved_at: row.field("resolved_at")?,
        first_seen: row.field("first_seen")?,
        last_seen: row.field("last_seen")?,
        count: row.field("report_count")?,
        counted_without_dump: row.field("counted_count")?,
    })
}

impl Index {
    /// Issues matching `filter`.
    pub async fn list_issues(&self, filter: &IssueFilter) -> Result<Vec<IssueRow>, IndexError> {
        let mut conditions = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        if let Some(status) = filter.status {
            binds.push(Bind::Text(status.as_str().to_owned()));
            conditions.push(format!("status = ${}", binds.len()));
        }
        if !filter.reports.is_empty() {
            let tags = self.tag_lookup(&filter.reports).await?;
            let reports = filter.reports.sql(&mut binds, tags).join(" AND ");
            let common_tag = filter.reports.annotation_tag.is_some() && tags == TagLookup::Probe;
            conditions.push(if common_tag {
                // Each issue's newest reports soon have a common tag.
                format!(
                    "EXISTS (SELECT 1 FROM reports r WHERE r.issue_id = issues.id AND {reports})"
                )
            } else {
                // The matching reports' issues, found once (from a filter's index,
                // or from a rare tag's reports).
                format!(
                    "id IN (SELECT r.issue_id FROM reports r \
                     WHERE r.issue_id IS NOT NULL AND {reports})"
                )
            });
        }
        if let Some(search) = &filter.search {
            let escaped = search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            binds.push(Bind::Text(format!("%{}%", escaped.to_lowercase())));
            conditions.push(format!(
                "LOWER(signature) LIKE ${} ESCAPE '\\'",
                binds.len()
            ));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let order = match filter.sort {
            IssueSort::Count => "report_count DESC, last_seen DESC, id",
            IssueSort::LastSeen => "last_seen DESC, id",
            IssueSort::FirstSeen => "first_seen DESC, id",
        };
        binds.push(Bind::Int(filter.limit));
        binds.push(Bind::Int(filter.offset));
        let sql = format!(
            "SELECT {ISSUE_COLUMNS} FROM issues {where_clause} ORDER BY {order} \
             LIMIT ${} OFFSET ${}",
            binds.len() - 1,
            binds.len()
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(issue_from_row).collect()
    }

    /// One issue, or `None`.
    pub async fn issue(&self, id: i64) -> Result<Option<IssueRow>, IndexError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(issue_from_row).transpose()
    }

    /// The issue's sample stack (`ProcessedOutcome::sample_stack` of its latest
    /// report), kept after its reports are deleted.
    pub async fn issue_sample_stack(&self, id: i64) -> Result<Option<String>, IndexError> {
        let stack: Option<Option<String>> =
            sqlx::query_scalar("SELECT sample_stack FROM issues WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(stack.flatten())
    }

    /// Sets the issue's sample stack (after regrouping moved a report to it).
    pub async fn set_sample_stack(&self, id: i64, stack: &str) -> Result<(), IndexError> {
        sqlx::query("UPDATE issues SET sample_stack = $1 WHERE id = $2")
            .bind(stack)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Counts of an issue's stored reports per version, OS and product.
    pub async fn issue_breakdown(&self, id: i64) -> Result<IssueBreakdown, IndexError> {
        let mut breakdown = IssueBreakdown::default();
        for (column, out) in [
            ("version", &mut breakdown.by_version),
            ("os", &mut breakdown.by_os),
            ("product", &mut breakdown.by_product),
        ] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COALESCE({column}, '') AS k, COUNT(*) AS n FROM reports \
                 WHERE issue_id = $1 GROUP BY COALESCE({column}, '') ORDER BY n DESC, k"
            )))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                out.push((row.try_get("k")?, row.try_get("n")?));
            }
        }
        Ok(breakdown)
    }
}
