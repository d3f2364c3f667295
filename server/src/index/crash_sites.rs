//! Crash sites: which issue each crash-site key belongs to (learned from the
//! reports processed), and the occurrences counted from summaries without a dump.

use sqlx::Row;

use super::batch::{Batch, Statement, statement};
use super::daily::{self, Occurrence, Tally};
use super::issues::issue_status_of;
use super::write::Commit;
use super::{Index, IndexError, IssueStatus};

/// A known crash site's issue, as a summary finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteIssue {
    /// The issue's id.
    pub issue_id: i64,
    /// Its status.
    pub status: IssueStatus,
    /// When it was resolved, Unix ms.
    pub resolved_at: Option<i64>,
    /// The version it was resolved in.
    pub resolved_in_version: Option<String>,
    /// The product that version is of (`None`: any).
    pub resolved_product: Option<String>,
    /// How many of its reports are stored, counted up to the `enough` asked for.
    pub stored_reports: i64,
    /// How many of its crashes were counted from summaries so far.
    pub counted: i64,
    /// Whether reports of this crash site were grouped into more than one issue.
    pub ambiguous: bool,
}

impl Index {
    /// The issue the crash site `key` belongs to, if a processed report taught it;
    /// its stored reports are counted up to `enough`.
    pub async fn crash_site(
        &self,
        key: &str,
        enough: i64,
    ) -> Result<Option<SiteIssue>, IndexError> {
        let row = sqlx::query(
            "SELECT i.id, i.status, i.resolved_at, i.resolved_in_version, i.resolved_product, \
             i.counted_count, c.ambiguous, \
             (SELECT COUNT(*) FROM (SELECT 1 FROM reports r WHERE r.issue_id = i.id LIMIT $2) s) \
             AS stored FROM crash_sites c JOIN issues i ON i.id = c.issue_id \
             WHERE c.site_key = $1",
        )
        .bind(key)
        .bind(enough)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(SiteIssue {
            issue_id: row.try_get("id")?,
            status: issue_status_of(&row)?,
            resolved_at: row.try_get("resolved_at")?,
            resolved_in_version: row.try_get("resolved_in_version")?,
            resolved_product: row.try_get("resolved_product")?,
            stored_reports: row.try_get("stored")?,
            counted: row.try_get("counted_count")?,
            ambiguous: row.try_get::<i64, _>("ambiguous")? != 0,
        }))
    }

    /// Counts an occurrence of the issue's crash that came as a summary only: in
    /// the issue's total, its last-seen time and its day's count.
    pub async fn count_occurrence(
        &self,
        issue_id: i64,
        product: Option<&str>,
        version: Option<&str>,
        now: i64,
    ) -> Result<(), IndexError> {
        let mut counted = Batch::new(self.backend);
        counted.push(
            statement(
                "UPDATE issues SET counted_count = counted_count + 1, \
                 last_seen = CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END WHERE id = $1 \
                 RETURNING id",
            )
            .bind(issue_id)
            .bind(now),
        );
        let (tx, updated) = self.begin_running(Commit::Durable, counted).await?;
        let mut batch = Batch::new(self.backend);
        // None updated: the issue was deleted meanwhile, nothing to count.
        if !updated.is_empty() {
            let occurrence = Occurrence {
                issue_id,
                at_ms: now,
                product,
                version,
            };
            batch.push(daily::add(occurrence, Tally::Counted));
        }
        tx.commit_after(batch).await?;
        Ok(())
    }
}

/// The statement that records that crash site `key` belongs to `issue_id`: a
/// processed report of it
/// was grouped there, coming from `previous_issue` (reprocessing moved it) or
/// from none. A report that moves takes its key along; a report of another
/// issue than the key's makes the key ambiguous (one crashing instruction,
/// reached from different code), for good.
pub(super) fn learn(key: &str, issue_id: i64, previous_issue: Option<i64>, now: i64) -> Statement {
    // Every SET expression reads the row as it was (issue ids start at 1).
    statement(
        "INSERT INTO crash_sites (site_key, issue_id, ambiguous, recorded_at) \
         VALUES ($1, $2, 0, $4) \
         ON CONFLICT (site_key) DO UPDATE SET \
         ambiguous = CASE WHEN crash_sites.issue_id <> excluded.issue_id \
         AND crash_sites.issue_id <> $3 THEN 1 ELSE crash_sites.ambiguous END, \
         issue_id = excluded.issue_id, recorded_at = excluded.recorded_at",
    )
    .bind(key)
    .bind(issue_id)
    .bind(previous_issue.unwrap_or(0))
    .bind(now)
}
