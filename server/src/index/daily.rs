//! Daily counts: how many crashes each issue had per day, product and version —
//! reports received with a dump, and occurrences counted from a crash-site
//! summary without one. They outlive the reports (resolve and retention delete
//! reports, not counts), so an issue's history stays.

use sqlx::{Any, FromRow, Transaction};

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

impl Index {
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

/// Adds one to the occurrence's day.
pub(super) async fn add(
    tx: &mut Transaction<'static, Any>,
    occurrence: Occurrence<'_>,
    tally: Tally,
) -> Result<(), IndexError> {
    let (reports, counted) = match tally {
        Tally::Report => (1_i64, 0_i64),
        Tally::Counted => (0, 1),
    };
    sqlx::query(
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes a report off the occurrence's day (the report moved to another issue).
pub(super) async fn remove_report(
    tx: &mut Transaction<'static, Any>,
    occurrence: Occurrence<'_>,
) -> Result<(), IndexError> {
    sqlx::query(
        "UPDATE issue_daily SET reports = reports - 1 WHERE issue_id = $1 AND day = $2 \
         AND product = $3 AND version = $4 AND reports > 0",
    )
    .bind(occurrence.issue_id)
    .bind(day_of(occurrence.at_ms))
    .bind(occurrence.product.unwrap_or(""))
    .bind(occurrence.version.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
