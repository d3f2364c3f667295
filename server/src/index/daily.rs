//! Daily counts: how many crashes each issue had per day, product and version —
//! reports received with a dump, and occurrences counted from a crash-site
//! summary without one. They outlive the reports (resolve and retention delete
//! reports, not counts), so an issue's history stays.

use sqlx::FromRow;

use super::batch::{Statement, statement};
use super::{Index, IndexError};

/// Milliseconds in a day: the count's day is the UTC day of its time.
const DAY_MS: i64 = 86_400_000;

/// The UTC day (days since 1970-01-01) of a Unix-ms time.
pub fn day_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(DAY_MS)
}

/// One day's counts of an issue, for one product and version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, FromRow)]
pub struct DailyCount {
    /// The UTC day, days since 1970-01-01 ([`day_of`]).
    pub day: i64,
    /// The product ('' when unknown).
    pub product: String,
    /// The version ('' when unknown).
    pub version: String,
    /// Reports received with a dump.
    pub reports: i64,
    /// Occurrences counted from a summary, without a dump.
    pub counted: i64,
}

/// The most issues [`Index::issues_daily`] reads in one query (more take more).
const ISSUES_PER_QUERY: usize = 100;

/// The date (`YYYY-MM-DD`, UTC) of a day ([`day_of`]); the number when it is
/// outside the calendar's range.
pub fn date_of(day: i64) -> String {
    /// The Julian day of 1970-01-01.
    const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
    i32::try_from(day + UNIX_EPOCH_JULIAN_DAY)
        .ok()
        .and_then(|julian| time::Date::from_julian_day(julian).ok())
        .map_or_else(|| day.to_string(), |date| date.to_string())
}

/// One day's counts of an issue, summed over its products and versions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, FromRow)]
pub struct IssueDay {
    /// The issue.
    pub issue_id: i64,
    /// The UTC day ([`day_of`]).
    pub day: i64,
    /// Reports received with a dump.
    pub reports: i64,
    /// Occurrences counted from a summary, without a dump.
    pub counted: i64,
}

/// One day's counts of a product, summed over its issues and versions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, FromRow)]
pub struct ProductDay {
    /// The UTC day ([`day_of`]).
    pub day: i64,
    /// The product ('' when unknown).
    pub product: String,
    /// Reports received with a dump.
    pub reports: i64,
    /// Occurrences counted from a summary, without a dump.
    pub counted: i64,
}

impl Index {
    /// The daily counts of each of `issue_ids` from day `since_day` on, summed
    /// over products and versions, in one query for a list page's issues: by
    /// issue, oldest day first.
    pub async fn issues_daily(
        &self,
        issue_ids: &[i64],
        since_day: i64,
    ) -> Result<Vec<IssueDay>, IndexError> {
        let mut days = Vec::new();
        for ids in issue_ids.chunks(ISSUES_PER_QUERY) {
            let placeholders: Vec<String> = (2..ids.len() + 2).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT issue_id, day, CAST(SUM(reports) AS BIGINT) AS reports, \
                 CAST(SUM(counted) AS BIGINT) AS counted FROM issue_daily \
                 WHERE day >= $1 AND issue_id IN ({}) \
                 GROUP BY issue_id, day ORDER BY issue_id, day",
                placeholders.join(", ")
            );
            // Only numbered placeholders are formatted in; the values are bound.
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(since_day);
            for id in ids {
                query = query.bind(*id);
            }
            days.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(days)
    }

    /// Daily counts per product (of `product` only, when given) from day
    /// `since_day` on, summed over issues and versions: oldest day first.
    pub async fn product_daily(
        &self,
        product: Option<&str>,
        since_day: i64,
    ) -> Result<Vec<ProductDay>, IndexError> {
        const SUMS: &str = "SELECT day, product, CAST(SUM(reports) AS BIGINT) AS reports, \
             CAST(SUM(counted) AS BIGINT) AS counted FROM issue_daily WHERE day >= $1";
        const GROUPS: &str = "GROUP BY day, product ORDER BY day, product";
        let rows = match product {
            Some(product) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SUMS} AND product = $2 {GROUPS}"
                )))
                .bind(since_day)
                .bind(product)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{SUMS} {GROUPS}")))
                    .bind(since_day)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// An issue's daily counts from day `since_day` on, oldest first.
    pub async fn issue_daily(
        &self,
        issue_id: i64,
        since_day: i64,
    ) -> Result<Vec<DailyCount>, IndexError> {
        Ok(sqlx::query_as(
            "SELECT day, product, version, reports, counted FROM issue_daily \
             WHERE issue_id = $1 AND day >= $2 ORDER BY day, product, version",
        )
        .bind(issue_id)
        .bind(since_day)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Which count of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tally {
    /// A report received with its dump.
    Report,
    /// An occurrence counted from a summary, without a dump.
    Counted,
}

/// Where a crash is counted: its issue, its time and what it was of.
#[derive(Debug, Clone, Copy)]
pub(super) struct Occurrence<'a> {
    pub issue_id: i64,
    pub at_ms: i64,
    pub product: Option<&'a str>,
    pub version: Option<&'a str>,
}

/// The statement that adds one to the occurrence's day.
pub(super) fn add(occurrence: Occurrence<'_>, tally: Tally) -> Statement {
    let (reports, counted) = match tally {
        Tally::Report => (1_i64, 0_i64),
        Tally::Counted => (0, 1),
    };
    statement(
        "INSERT INTO issue_daily (issue_id, day, product, version, reports, counted) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (issue_id, day, product, version) DO UPDATE SET \
         reports = issue_daily.reports + excluded.reports, \
         counted = issue_daily.counted + excluded.counted",
    )
    .bind(occurrence.issue_id)
    .bind(day_of(occurrence.at_ms))
    .bind(occurrence.product.unwrap_or(""))
    .bind(occurrence.version.unwrap_or(""))
    .bind(reports)
    .bind(counted)
}

/// The statement that takes a report off the occurrence's day (the report
/// moved to another issue).
pub(super) fn remove_report(occurrence: Occurrence<'_>) -> Statement {
    statement(
        "UPDATE issue_daily SET reports = reports - 1 WHERE issue_id = $1 AND day = $2 \
         AND product = $3 AND version = $4 AND reports > 0",
    )
    .bind(occurrence.issue_id)
    .bind(day_of(occurrence.at_ms))
    .bind(occurrence.product.unwrap_or(""))
    .bind(occurrence.version.unwrap_or(""))
}
