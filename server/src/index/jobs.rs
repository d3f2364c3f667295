//! Processing jobs: claimed by workers, re-claimable when a worker dies.

use std::time::Duration;

use sqlx::Row;

use super::{Backend, Index, IndexError};

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Job id.
    pub id: i64,
    /// The report to process.
    pub report_id: String,
    /// How many times it has been claimed, this time included.
    pub attempts: i64,
}

/// What processing found, for the index.
#[derive(Debug, Clone)]
pub struct ProcessedOutcome {
    /// Hex SHA-256 of the signature text: the grouping key.
    pub signature_hash: String,
    /// The signature text.
    pub signature: String,
    /// Issue title for a new issue.
    pub title: String,
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
    pub crash_reason: Option<String>,
    /// Crash address.
    pub crash_address: Option<String>,
    /// Modules whose symbols were missing: (debug file, debug id).
    pub missing_symbols: Vec<(String, String)>,
}

impl Index {
    /// Claims the oldest runnable job: a pending one whose time has come, or a
    /// running one whose lease ran out (its worker died).
    pub async fn claim_job(
        &self,
        worker: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Option<Job>, IndexError> {
        let expired = now - lease.as_millis() as i64;
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite runs one writer at a time: the UPDATE below is atomic.
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', claimed_at = $1, claimed_by = $2, \
             attempts = attempts + 1 \
             WHERE id = (SELECT id FROM jobs \
                 WHERE (state = 'pending' AND not_before <= $1) \
                    OR (state = 'running' AND claimed_at < $3) \
                 ORDER BY not_before, id LIMIT 1 {lock}) \
             RETURNING id, report_id, attempts"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(worker)
            .bind(expired)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(Job {
                id: row.try_get("id")?,
                report_id: row.try_get("report_id")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .transpose()
    }

    /// Puts a job back to be tried again at `not_before` after a transient error.
    pub async fn retry_job(
        &self,
        job_id: i64,
        not_before: i64,
        error: &str,
    ) -> Result<(), IndexError> {
        sqlx::query(
            "UPDATE jobs SET state = 'pending', not_before = $2, last_error = $3, \
             claimed_at = NULL, claimed_by = NULL WHERE id = $1",
        )
        .bind(job_id)
        .bind(not_before)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queues (re)processing of a report.
    pub async fn enqueue_job(&self, report_id: &str, now: i64) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO jobs (report_id, kind, state, not_before, created_at) \
             VALUES ($1, 'process', 'pending', $2, $2)",
        )
        .bind(report_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Number of jobs waiting or running.
    pub async fn queue_depth(&self) -> Result<i64, IndexError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE state <> 'done'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Marks a report failed for good and finishes its job.
    pub async fn finish_failed(
        &self,
        job_id: i64,
        report_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), IndexError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE reports SET state = 'failed', failure = $2, processed_at = $3 WHERE id = $1",
        )
        .bind(report_id)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a processed report: groups it into the issue of its signature
    /// (creating it; moving the report from another issue when reprocessing changed
    /// its signature, and removing that issue if it is left empty), stores its
    /// fields and missing symbols, and finishes the job — one transaction.
    ///
    /// Returns the issue id, or `None` when the report was deleted meanwhile (the
    /// caller then removes what it stored, so nothing is resurrected).
    pub async fn finish_processed(
        &self,
        job_id: i64,
        report_id: &str,
        outcome: &ProcessedOutcome,
        now: i64,
    ) -> Result<Option<i64>, IndexError> {
        let mut tx = self.pool.begin().await?;
        let current = sqlx::query("SELECT issue_id, received_at FROM reports WHERE id = $1")
            .bind(report_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(None);
        };
        let previous_issue: Option<i64> = current.try_get("issue_id")?;
        let received_at: i64 = current.try_get("received_at")?;

        sqlx::query(
            "INSERT INTO issues (signature_hash, signature, title, status, first_seen, \
             last_seen, report_count) VALUES ($1, $2, $3, 'open', $4, $4, 0) \
             ON CONFLICT (signature_hash) DO NOTHING",
        )
        .bind(&outcome.signature_hash)
        .bind(&outcome.signature)
        .bind(&outcome.title)
        .bind(received_at)
        .execute(&mut *tx)
        .await?;
        let issue = sqlx::query("SELECT id, status FROM issues WHERE signature_hash = $1")
            .bind(&outcome.signature_hash)
            .fetch_one(&mut *tx)
            .await?;
        let issue_id: i64 = issue.try_get("id")?;
        let status: String = issue.try_get("status")?;

        if previous_issue != Some(issue_id) {
            let reopen = if status == "resolved" {
                ", status = 'regressed', resolved_at = NULL"
            } else {
                ""
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE issues SET report_count = report_count + 1, \
                 first_seen = CASE WHEN first_seen > $2 THEN $2 ELSE first_seen END, \
                 last_seen = CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END{reopen} \
                 WHERE id = $1"
            )))
            .bind(issue_id)
            .bind(received_at)
            .execute(&mut *tx)
            .await?;
            if let Some(previous) = previous_issue {
                sqlx::query("UPDATE issues SET report_count = report_count - 1 WHERE id = $1")
                    .bind(previous)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE reports SET issue_id = NULL WHERE id = $1")
                    .bind(report_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "DELETE FROM issues WHERE id = $1 AND report_count <= 0 AND status = 'open' \
                     AND NOT EXISTS (SELECT 1 FROM reports WHERE issue_id = $1)",
                )
                .bind(previous)
                .execute(&mut *tx)
                .await?;
            }
        }

        sqlx::query(
            "UPDATE reports SET issue_id = $2, state = 'processed', failure = NULL, \
             processed_at = $3, product = COALESCE($4, product), \
             version = COALESCE($5, version), os = $6, os_version = $7, cpu_arch = $8, \
             crash_reason = $9, crash_address = $10 WHERE id = $1",
        )
        .bind(report_id)
        .bind(issue_id)
        .bind(now)
        .bind(&outcome.product)
        .bind(&outcome.version)
        .bind(&outcome.os)
        .bind(&outcome.os_version)
        .bind(&outcome.cpu_arch)
        .bind(&outcome.crash_reason)
        .bind(&outcome.crash_address)
        .execute(&mut *tx)
        .await?;

        sqlx::query("DELETE FROM report_missing_symbols WHERE report_id = $1")
            .bind(report_id)
            .execute(&mut *tx)
            .await?;
        for (debug_file, debug_id) in &outcome.missing_symbols {
            sqlx::query(
                "INSERT INTO report_missing_symbols (report_id, debug_file, debug_id) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(report_id)
            .bind(debug_file)
            .bind(debug_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(issue_id))
    }

    /// Reports that were processed without the symbols of this module.
    pub async fn reports_missing_symbols(
        &self,
        debug_file: &str,
        debug_id: &str,
    ) -> Result<Vec<String>, IndexError> {
        let rows = sqlx::query(
            "SELECT report_id FROM report_missing_symbols WHERE debug_file = $1 AND debug_id = $2",
        )
        .bind(debug_file)
        .bind(debug_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("report_id").map_err(IndexError::from))
            .collect()
    }
}

impl Index {
    /// Removes a job (its report is gone).
    pub async fn delete_job(&self, job_id: i64) -> Result<(), IndexError> {
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
