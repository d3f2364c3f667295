//! What deletion needs from the index: resolving and reopening issues, finding the
//! reports to delete, and leaving no trace of a deleted report's id behind.

use sqlx::{Executor, Row};

use super::{Backend, Index, IndexError};
use crate::report_id::ReportId;

impl Index {
    /// Marks an issue resolved at `now`, optionally in `version` of `product`.
    /// Returns whether the issue exists.
    pub async fn resolve_issue(
        &self,
        issue_id: i64,
        version: Option<&str>,
        product: Option<&str>,
        now: i64,
    ) -> Result<bool, IndexError> {
        let done = sqlx::query(
            "UPDATE issues SET status = 'resolved', resolved_in_version = $2, \
             resolved_product = $3, resolved_at = $4 WHERE id = $1",
        )
        .bind(issue_id)
        .bind(version)
        .bind(product)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Reopens an issue (status `open`, resolution cleared). Returns whether the
    /// issue exists.
    pub async fn reopen_issue(&self, issue_id: i64) -> Result<bool, IndexError> {
        let done = sqlx::query(
            "UPDATE issues SET status = 'open', resolved_in_version = NULL, \
             resolved_product = NULL, resolved_at = NULL WHERE id = $1",
        )
        .bind(issue_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many reports of an issue were counted and dropped after it was resolved.
    pub async fn issue_dropped_count(&self, issue_id: i64) -> Result<Option<i64>, IndexError> {
        let row = sqlx::query("SELECT dropped_count FROM issues WHERE id = $1")
            .bind(issue_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("dropped_count")).transpose()?)
    }

    /// Removes an issue row that no report points to. Returns whether it did.
    pub async fn delete_issue_row(&self, issue_id: i64) -> Result<bool, IndexError> {
        let done = sqlx::query(
            "DELETE FROM issues WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM reports WHERE issue_id = $1)",
        )
        .bind(issue_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ids of up to `limit` reports of an issue.
    pub async fn report_ids_of_issue(
        &self,
        issue_id: i64,
        limit: i64,
    ) -> Result<Vec<ReportId>, IndexError> {
        let query = sqlx::query("SELECT id FROM reports WHERE issue_id = $1 ORDER BY id LIMIT $2");
        self.report_ids(query.bind(issue_id).bind(limit), "id")
            .await
    }

    /// Ids of up to `limit` reports received before `cutoff` (Unix ms), oldest first.
    pub async fn report_ids_received_before(
        &self,
        cutoff: i64,
        limit: i64,
    ) -> Result<Vec<ReportId>, IndexError> {
        let query = sqlx::query(
            "SELECT id FROM reports WHERE received_at < $1 ORDER BY received_at, id LIMIT $2",
        );
        self.report_ids(query.bind(cutoff).bind(limit), "id").await
    }

    /// Replaces `target` by `replacement` in the audit log: a deleted report's id
    /// is kept there only as a one-way pseudonym.
    pub async fn rename_audit_target(
        &self,
        target: &str,
        replacement: &str,
    ) -> Result<(), IndexError> {
        sqlx::query("UPDATE audit_log SET target = $2 WHERE target = $1")
            .bind(target)
            .bind(replacement)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// After a purge on SQLite: moves the write-ahead log into the database file
    /// and truncates it, so deleted rows (zeroed there by `secure_delete`) do not
    /// linger in old log frames. A no-op on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), IndexError> {
        if self.backend == Backend::Sqlite {
            let mut conn = self.writer.acquire().await?;
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        }
        Ok(())
    }
}
