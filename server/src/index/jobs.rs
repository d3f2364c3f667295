//! Processing jobs: claimed by workers, re-claimable when a worker dies.

use std::time::Duration;

use sqlx::Row as _;

use super::batch::{Batch, Fields, Row, rows_of, statement};
use super::outbox;
use super::placing::{Placed, Placing, place};
use super::reports::{REPORT_COLUMNS, report_from_row};
use super::write::{Commit, Unsynced, WriteTx};
use super::writer_thread;
use super::{Backend, CrashFacts, Index, IndexError, Queue, ReportRow, report_id_at};
use crate::crypto::WrappedKey;
use crate::report_id::ReportId;
use crate::version::sort_key;

/// A claimed job. The claim is the job's id with its attempt count: a claim
/// again (after the lease ran out) counts one more attempt, so an earlier
/// claim's holder can no longer finish the job ([`IndexError::ClaimLost`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Job id.
    pub id: i64,
    /// The report to process.
    pub report_id: ReportId,
    /// How many times it has been claimed, this time included: with the id,
    /// what tells this claim from every earlier one.
    pub attempts: i64,
    /// How many of those claims were given back unrun ([`Index::release_job`]).
    pub released: i64,
}

impl Job {
    /// How many claims ran it, this one included: what `max_attempts` bounds.
    pub fn tries(&self) -> i64 {
        self.attempts - self.released
    }
}

/// The columns a claim of a job returns ([`job_from_row`]).
const JOB_COLUMNS: &str = "id, report_id, attempts, released";

/// What a job reads of its report before it processes it, in one read
/// ([`Index::job_report`]).
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The report's row.
    pub row: ReportRow,
    /// Its wrapped data key; `None` once destroyed (the report is deleted).
    pub data_key: Option<WrappedKey>,
    /// Its wrapped stack key, while it has one.
    pub stack_key: Option<WrappedKey>,
    /// The deployment's symbol upload count ([`Index::symbol_uploads`]).
    pub symbol_uploads: u64,
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
    /// Product, version, platform and crash of the report.
    pub facts: CrashFacts,
    /// Modules whose symbols were missing: (debug file, debug id).
    pub missing_symbols: Vec<(String, String)>,
    /// The keyed tags of the report's annotations (`crate::crypto::SearchKey`),
    /// what `annotation key = value` searches find it by.
    pub annotation_tags: Vec<String>,
    /// The crashing thread as text, kept on the issue after its reports are gone.
    pub sample_stack: Option<String>,
    /// Whether to destroy the report's stack key (its stack memory is no longer
    /// needed), with the rest of what is recorded.
    pub drop_stack_key: bool,
}

impl ProcessedOutcome {
    /// How the finish is committed: durably when it destroys the stack key — a
    /// key deletion kept while the processed report it was made for is lost
    /// would leave a report no one can walk again — otherwise lazily: all it
    /// records can be made again from the durable raw upload.
    pub fn commit(&self) -> Commit {
        if self.drop_stack_key {
            Commit::Durable
        } else {
            Commit::Lazy
        }
    }
}

/// A [`JobReport`] as [`Index::job_report`] reads it.
fn job_report_from_row(row: &impl Fields) -> Result<JobReport, IndexError> {
    let wrapped = |master: &str, key: &str| -> Result<Option<WrappedKey>, IndexError> {
        let master: Option<String> = row.field(master)?;
        let key: Option<String> = row.field(key)?;
        Ok(master.zip(key).map(|(master_key_id, wrapped)| WrappedKey {
            master_key_id,
            wrapped,
        }))
    };
    let uploads: Option<i64> = row.field("symbol_uploads")?;
    Ok(JobReport {
        row: report_from_row(row)?,
        data_key: wrapped("master_key_id", "wrapped_key")?,
        stack_key: wrapped("stack_master_key_id", "stack_wrapped_key")?,
        symbol_uploads: uploads.unwrap_or(0).max(0) as u64,
    })
}

/// The job queue.
pub(super) const JOBS: Queue = Queue {
    table: "jobs",
    claimed: "running",
};

/// A claim of the next due job, made in the write transaction that finishes
/// (or retries) the current one: one transaction on the writer per job instead
/// of a finish and then a claim. The claim is [`Index::claim_job`]'s — the
/// oldest runnable job, its attempt counted, leased from the finish's time —
/// and is made only when the finish is: a finish that fails (its claim lost,
/// the database failing) claims nothing.
#[derive(Debug, Clone, Copy)]
pub struct ClaimNext<'a> {
    /// The claiming worker's name (`claimed_by`).
    pub worker: &'a str,
    /// The job lease.
    pub lease: Duration,
}

/// A [`ClaimNext`] owning its worker's name, to go with a finish to the
/// writer's thread.
struct OwnedClaim {
    worker: String,
    lease: Duration,
}

impl OwnedClaim {
    fn of(claim: Option<ClaimNext<'_>>) -> Option<OwnedClaim> {
        claim.map(|c| OwnedClaim {
            worker: c.worker.to_owned(),
            lease: c.lease,
        })
    }

    fn claim(&self) -> ClaimNext<'_> {
        ClaimNext {
            worker: &self.worker,
            lease: self.lease,
        }
    }
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
        let claim = self.claim_statement(JOBS, ", claimed_by = $3", JOB_COLUMNS);
        let rows = match self.backend {
            Backend::Postgres => {
                let query = sqlx::query(sqlx::AssertSqlSafe(claim));
                let query = query.bind(now).bind(expired).bind(worker);
                query.fetch_all(&self.writer).await?
            }
            Backend::Sqlite => {
                // A claim is committed without an fsync of its own: it outlives
                // the process (the attempt it counts stops a dump that kills
                // workers), and the next durable commit syncs it with its own. A
                // claim lost with the machine only means the job is claimed
                // again. One commit's sync saved per job, on the one writer; the
                // writer set to NORMAL and back to FULL in the claim's own round
                // trip to the database.
                let sql =
                    format!("PRAGMA synchronous = NORMAL; {claim}; PRAGMA synchronous = FULL");
                let query = sqlx::query(sqlx::AssertSqlSafe(sql));
                let query = query.bind(now).bind(expired).bind(worker);
                let mut conn = Unsynced::acquire_syncing(&self.writer).await?;
                let rows = query.fetch_all(conn.connection()).await?;
                conn.restored();
                rows
            }
        };
        rows_of(&rows)?.first().map(job_from_row).transpose()
    }

    /// Runs what `batch` holds (statements that return no rows) in `tx`, with
    /// a claim of the next job as `next` asks (when it does) after them, and
    /// commits.
    async fn commit_claiming(
        &self,
        tx: WriteTx,
        mut batch: Batch,
        next: Option<ClaimNext<'_>>,
        now: i64,
    ) -> Result<Option<Job>, IndexError> {
        if let Some(next) = next {
            let expired = now - next.lease.as_millis() as i64;
            let claim = self.claim_statement(JOBS, ", claimed_by = $3", JOB_COLUMNS);
            batch.push(statement(claim).bind(now).bind(expired).bind(next.worker));
        }
        // All rows fetched (the claim's, at most one): every statement runs to
        // its end before the commit (on SQLite in the same round trip).
        let rows = tx.commit_after(batch).await?;
        rows.first().map(job_from_row).transpose()
    }

    /// Deletes job `job_id`, its work done, after what `batch` holds, claims
    /// the next job as `next` asks, and commits the transaction that did it.
    async fn finish_job(
        &self,
        tx: WriteTx,
        mut batch: Batch,
        job_id: i64,
        next: Option<ClaimNext<'_>>,
        now: i64,
    ) -> Result<Option<Job>, IndexError> {
        batch.push(statement("DELETE FROM jobs WHERE id = $1").bind(job_id));
        self.commit_claiming(tx, batch, next, now).await
    }

    /// Gives a claimed job back unrun (its worker is stopping): pending again,
    /// due as before, so that another worker claims it at once rather than after
    /// its lease ([`IndexError::ClaimLost`] when it was claimed again). Its
    /// attempt stays counted: the next claim counts one more, so that this
    /// claim's holder, like any earlier one's, can never finish it. It is
    /// counted as released too, so it does not count against `max_attempts`
    /// ([`Job::tries`]): a job is not failed because its workers were stopped.
    pub async fn release_job(&self, job: &Job) -> Result<(), IndexError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', claimed_at = NULL, claimed_by = NULL, \
             released = released + 1 \
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(job.attempts)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(IndexError::ClaimLost(job.id));
        }
        Ok(())
    }

    /// When the next job falls due (Unix ms): the earliest pending job's time, or
    /// the earliest lease of a running one to run out. `None` when the queue is
    /// empty.
    pub async fn next_job_due(&self, lease: Duration) -> Result<Option<i64>, IndexError> {
        self.next_due(JOBS, lease).await
    }

    /// Puts a claimed job back to be tried again at `not_before` after a
    /// transient error ([`IndexError::ClaimLost`] when it was claimed again).
    pub async fn retry_job(
        &self,
        job: &Job,
        not_before: i64,
        error: &str,
    ) -> Result<(), IndexError> {
        self.retry_job_and_claim(job, not_before, error, not_before, None)
            .await?;
        Ok(())
    }

    /// [`Index::retry_job`], and the next job claimed at `now` in the same
    /// transaction when `next` asks ([`ClaimNext`]); never the job retried,
    /// which is not due before `not_before`.
    pub async fn retry_job_and_claim(
        &self,
        job: &Job,
        not_before: i64,
        error: &str,
        now: i64,
        next: Option<ClaimNext<'_>>,
    ) -> Result<Option<Job>, IndexError> {
        let retry = sqlx::query(
            "UPDATE jobs SET state = 'pending', not_before = $3, last_error = $4, \
             claimed_at = NULL, claimed_by = NULL \
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(job.attempts)
        .bind(not_before)
        .bind(error);
        let Some(next) = next else {
            // One statement, committed on its own.
            if retry.execute(&self.writer).await?.rows_affected() == 0 {
                return Err(IndexError::ClaimLost(job.id));
            }
            return Ok(None);
        };
        let mut tx = self.begin(Commit::Durable).await?;
        let mut retried = Batch::new(self.backend);
        retried.push(
            statement(
                "UPDATE jobs SET state = 'pending', not_before = $3, last_error = $4, \
                 claimed_at = NULL, claimed_by = NULL \
                 WHERE id = $1 AND attempts = $2 AND state = 'running' RETURNING id",
            )
            .bind(job.id)
            .bind(job.attempts)
            .bind(not_before)
            .bind(error),
        );
        if tx.run(&mut retried).await?.is_empty() {
            return Err(IndexError::ClaimLost(job.id));
        }
        self.commit_claiming(tx, Batch::new(self.backend), Some(next), now)
            .await
    }

    /// Checks, in a write transaction, that `job` is still this claim, and on
    /// PostgreSQL locks its row until the transaction ends, so that no other
    /// worker claims it again meanwhile (SQLite's write lock already keeps them
    /// out).
    async fn hold_claim(&self, tx: &mut WriteTx, job: &Job) -> Result<(), IndexError> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE",
            Backend::Sqlite => "",
        };
        let mut held = Batch::new(self.backend);
        held.push(
            statement(format!(
                "SELECT id FROM jobs WHERE id = $1 AND attempts = $2 AND state = 'running' {lock}"
            ))
            .bind(job.id)
            .bind(job.attempts),
        );
        if tx.run(&mut held).await?.is_empty() {
            return Err(IndexError::ClaimLost(job.id));
        }
        Ok(())
    }

    /// Queues reprocessing of a report whose processed report a read begun at
    /// `read_at` found lost, unless a job for it is already waiting or running,
    /// or one finished since `read_at` (its report may have been stored after
    /// that read looked: another job would make it a second time); whether one
    /// was queued.
    pub async fn enqueue_job_once(
        &self,
        report_id: &ReportId,
        read_at: i64,
        now: i64,
    ) -> Result<bool, IndexError> {
        let done = sqlx::query(
            "INSERT INTO jobs (report_id, kind, state, not_before, created_at) \
             SELECT $1, 'process', 'pending', $2, $2 WHERE NOT EXISTS \
             (SELECT 1 FROM jobs WHERE report_id = $1 AND state <> 'done') \
             AND NOT EXISTS (SELECT 1 FROM reports WHERE id = $1 AND processed_at >= $3)",
        )
        .bind(report_id.to_string())
        .bind(now)
        .bind(read_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Queues (re)processing of a report.
    pub async fn enqueue_job(&self, report_id: &ReportId, now: i64) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO jobs (report_id, kind, state, not_before, created_at) \
             VALUES ($1, 'process', 'pending', $2, $2)",
        )
        .bind(report_id.to_string())
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Report `id`'s row, its wrapped keys and the symbol upload count, in one
    /// read (one snapshot, one round trip to the database): what a job needs
    /// before it loads the report's dump. `None` when the report is gone. On
    /// SQLite read in the calling thread (`direct.rs`'s `Reads`).
    pub async fn job_report(&self, id: &ReportId) -> Result<Option<JobReport>, IndexError> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS}, k.master_key_id, k.wrapped_key, \
             s.master_key_id AS stack_master_key_id, s.wrapped_key AS stack_wrapped_key, \
             (SELECT uploads FROM symbol_uploads WHERE id = 1) AS symbol_uploads \
             FROM reports \
             LEFT JOIN report_keys k ON k.report_id = reports.id \
             LEFT JOIN report_stack_keys s ON s.report_id = reports.id \
             WHERE reports.id = $1"
        );
        if let Some(reads) = &self.reads {
            let rows = reads.read(&statement(sql).bind(id.to_string()))?;
            return rows.first().map(job_report_from_row).transpose();
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_report_from_row).transpose()
    }

    /// Counts one symbol upload (see [`symbol_uploads`](Index::symbol_uploads)).
    pub async fn count_symbol_upload(&self) -> Result<(), IndexError> {
        sqlx::query("UPDATE symbol_uploads SET uploads = uploads + 1 WHERE id = 1")
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// How many symbol uploads the deployment has taken: the count every server
    /// process sharing this index compares with the last it saw, to forget symbol
    /// files it remembers as missing when another process took an upload.
    /// On SQLite read in the calling thread: a job that lacked symbols asks
    /// after its finish.
    pub async fn symbol_uploads(&self) -> Result<u64, IndexError> {
        const SQL: &str = "SELECT uploads FROM symbol_uploads WHERE id = 1";
        let uploads: i64 = match &self.reads {
            Some(reads) => reads
                .read(&statement(SQL))?
                .first()
                .ok_or(IndexError::Db(sqlx::Error::RowNotFound))?
                .field("uploads")?,
            None => sqlx::query(SQL)
                .fetch_one(&self.pool)
                .await?
                .try_get("uploads")?,
        };
        Ok(uploads.max(0) as u64)
    }

    /// Number of jobs waiting or running.
    pub async fn queue_depth(&self) -> Result<i64, IndexError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE state <> 'done'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Marks a report failed for good and finishes its claimed job
    /// ([`IndexError::ClaimLost`] when it was claimed again).
    pub async fn finish_failed(&self, job: &Job, reason: &str, now: i64) -> Result<(), IndexError> {
        self.finish_failed_and_claim(job, reason, now, None).await?;
        Ok(())
    }

    /// [`Index::finish_failed`], and the next job claimed in the same
    /// transaction when `next` asks ([`ClaimNext`]). Runs on the writer's
    /// thread (`writer_thread`).
    pub async fn finish_failed_and_claim(
        &self,
        job: &Job,
        reason: &str,
        now: i64,
        next: Option<ClaimNext<'_>>,
    ) -> Result<Option<Job>, IndexError> {
        let (index, job, reason) = (self.clone(), job.clone(), reason.to_owned());
        let next = OwnedClaim::of(next);
        writer_thread::run(async move {
            let next = next.as_ref().map(OwnedClaim::claim);
            index.record_failed(&job, &reason, now, next).await
        })
        .await
    }

    /// [`Index::finish_failed_and_claim`] where it is awaited.
    async fn record_failed(
        &self,
        job: &Job,
        reason: &str,
        now: i64,
        next: Option<ClaimNext<'_>>,
    ) -> Result<Option<Job>, IndexError> {
        let report_id = job.report_id.to_string();
        let mut tx = self.begin(Commit::Durable).await?;
        self.hold_claim(&mut tx, job).await?;
        let mut batch = Batch::new(self.backend);
        batch.push(
            statement(
                "UPDATE reports SET state = 'failed', failure = $2, processed_at = $3 \
                 WHERE id = $1",
            )
            .bind(report_id)
            .bind(reason)
            .bind(now),
        );
        self.finish_job(tx, batch, job.id, next, now).await
    }

    /// Records a processed report: groups it into the issue of its signature
    /// (`placing::place`: creating it; moving the report from another issue when
    /// reprocessing changed its signature, and removing that issue if it is left
    /// empty), stores its fields and missing symbols, writes the webhook events it
    /// makes (new issue, regression, spike), destroys its stack key when
    /// [`ProcessedOutcome::drop_stack_key`] says so, and finishes the job — one
    /// transaction.
    ///
    /// When the issue is resolved, the report is counted and then either reopens
    /// it as `regressed`, or is dropped — rows and data key deleted here — when it
    /// was received before the resolution (it was in the pipeline when the issue
    /// was resolved) or its version is older than the resolved-in version of the
    /// resolved product.
    ///
    /// Returns the issue id, or `None` when the report is not kept: deleted
    /// meanwhile, or dropped (the caller then removes what it stored, so nothing
    /// is resurrected). A job claimed again by another worker meanwhile is that
    /// worker's to record: [`IndexError::ClaimLost`], and nothing is written.
    ///
    /// The commit is durable or lazy as [`ProcessedOutcome::commit`] says.
    pub async fn finish_processed(
        &self,
        job: &Job,
        outcome: &ProcessedOutcome,
        now: i64,
    ) -> Result<Option<i64>, IndexError> {
        let (issue, _) = self
            .finish_processed_and_claim(job, outcome, now, None)
            .await?;
        Ok(issue)
    }

    /// [`Index::finish_processed`], and the next job claimed in the same
    /// transaction when `next` asks ([`ClaimNext`]): the issue id (or `None`)
    /// and the job claimed. The claim is committed as the finish is (lazily
    /// or durably); one lost with a lazy commit is only made again. Runs on
    /// the writer's thread (`writer_thread`).
    pub async fn finish_processed_and_claim(
        &self,
        job: &Job,
        outcome: &ProcessedOutcome,
        now: i64,
        next: Option<ClaimNext<'_>>,
    ) -> Result<(Option<i64>, Option<Job>), IndexError> {
        let (index, job, outcome) = (self.clone(), job.clone(), outcome.clone());
        let next = OwnedClaim::of(next);
        writer_thread::run(async move {
            let next = next.as_ref().map(OwnedClaim::claim);
            index.finish_processed_here(&job, &outcome, now, next).await
        })
        .await
    }

    /// [`Index::finish_processed_and_claim`] where it is awaited.
    async fn finish_processed_here(
        &self,
        job: &Job,
        outcome: &ProcessedOutcome,
        now: i64,
        next: Option<ClaimNext<'_>>,
    ) -> Result<(Option<i64>, Option<Job>), IndexError> {
        // The report, and whether the job is still this claim (`held`): read
        // on SQLite in the round trip that begins the transaction.
        let mut read = Batch::new(self.backend);
        read.push(
            statement(
                "SELECT issue_id, received_at, product, version, state, \
                 (SELECT COUNT(*) FROM jobs WHERE id = $2 AND attempts = $3 AND state = 'running') \
                 AS held FROM reports WHERE id = $1",
            )
            .bind(job.report_id.to_string())
            .bind(job.id)
            .bind(job.attempts),
        );
        let (tx, rows) = self.begin_running(outcome.commit(), read).await?;
        let current = rows.into_iter().next();
        self.record_processed(tx, current, job, outcome, now, next)
            .await
    }

    /// [`Index::finish_processed_and_claim`] in `tx`, which it commits; `current`
    /// is the report's row as read when `tx` began (`None`: gone).
    async fn record_processed(
        &self,
        mut tx: WriteTx,
        current: Option<Row>,
        job: &Job,
        outcome: &ProcessedOutcome,
        now: i64,
        next: Option<ClaimNext<'_>>,
    ) -> Result<(Option<i64>, Option<Job>), IndexError> {
        let job_id = job.id;
        let report_id = job.report_id.to_string();
        let mut batch = Batch::new(self.backend);
        let Some(current) = current else {
            let claimed = self.finish_job(tx, batch, job_id, next, now).await?;
            return Ok((None, claimed));
        };
        match self.backend {
            // The write lock, held since BEGIN IMMEDIATE, keeps other claims out.
            Backend::Sqlite if current.try_get::<i64>("held")? == 0 => {
                return Err(IndexError::ClaimLost(job_id));
            }
            Backend::Sqlite => {}
            // The job's row locked until the commit.
            Backend::Postgres => self.hold_claim(&mut tx, job).await?,
        }
        let previous_issue: Option<i64> = current.try_get("issue_id")?;
        // Never recorded as processed: no annotation or missing-symbol rows yet
        // (only a finish writes them, in the transaction that marks the report
        // processed), so none to delete.
        let first_record = current.try_get::<String>("state")? == "queued";
        let received_at: i64 = current.try_get("received_at")?;
        let facts = &outcome.facts;
        let stored_product: Option<String> = current.try_get("product")?;
        let stored_version: Option<String> = current.try_get("version")?;
        let product = facts.product.clone().or_else(|| stored_product.clone());
        let version = facts.version.clone().or_else(|| stored_version.clone());

        let placing = Placing {
            report_id: &report_id,
            signature_hash: &outcome.signature_hash,
            signature: &outcome.signature,
            title: &outcome.title,
            previous_issue,
            received_at,
            product: product.as_deref(),
            version: version.as_deref(),
            stored_product: stored_product.as_deref(),
            stored_version: stored_version.as_deref(),
            crash_site: facts.crash_site.as_deref(),
        };
        let Placed::Kept(change) = place(&mut tx, &mut batch, &placing, now).await? else {
            // Dropped: `place` deleted its job with its rows.
            let claimed = self.commit_claiming(tx, batch, next, now).await?;
            return Ok((None, claimed));
        };
        let issue_id = change.issue_id;
        // What follows goes with what `place` left in the batch: one round trip
        // on SQLite, with the job's deletion and the next claim.
        // The issue's tombstone stack: its latest report's.
        if let Some(stack) = &outcome.sample_stack {
            batch.push(
                statement("UPDATE issues SET sample_stack = $1 WHERE id = $2")
                    .bind(stack)
                    .bind(issue_id),
            );
        }

        batch.push(
            statement(
                "UPDATE reports SET issue_id = $2, state = 'processed', failure = NULL, \
             processed_at = $3, product = COALESCE($4, product), \
             version = COALESCE($5, version), os = $6, os_version = $7, cpu_arch = $8, \
             crash_reason = $9, crash_address = $10, crash_site = $11, crash_module = $12, \
             version_key = $13 WHERE id = $1",
            )
            .bind(&report_id)
            .bind(issue_id)
            .bind(now)
            .bind(&facts.product)
            .bind(&facts.version)
            .bind(&facts.os)
            .bind(&facts.os_version)
            .bind(&facts.cpu_arch)
            .bind(&facts.crash_reason)
            .bind(&facts.crash_address)
            .bind(&facts.crash_site)
            .bind(&facts.crash_module)
            .bind(version.as_deref().and_then(sort_key)),
        );

        if !first_record {
            for sql in [
                "DELETE FROM report_annotations WHERE report_id = $1",
                "DELETE FROM report_missing_symbols WHERE report_id = $1",
            ] {
                batch.push(statement(sql).bind(&report_id));
            }
        }
        // Each list in one statement, from a JSON array: one round trip to the
        // database, not one per row.
        if !outcome.annotation_tags.is_empty() {
            let sql = match self.backend {
                Backend::Sqlite => {
                    "INSERT INTO report_annotations (tag, report_id) \
                     SELECT value, $2 FROM json_each($1) WHERE true ON CONFLICT DO NOTHING"
                }
                Backend::Postgres => {
                    "INSERT INTO report_annotations (tag, report_id) \
                     SELECT value, $2 FROM jsonb_array_elements_text($1::jsonb) AS t(value) \
                     ON CONFLICT DO NOTHING"
                }
            };
            batch.push(
                statement(sql)
                    .bind(json_array(&outcome.annotation_tags))
                    .bind(&report_id),
            );
        }
        if !outcome.missing_symbols.is_empty() {
            let sql = format!(
                "INSERT INTO report_missing_symbols (report_id, debug_file, debug_id) \
                 SELECT $1, value ->> 0, value ->> 1 FROM {} WHERE true \
                 ON CONFLICT DO NOTHING",
                self.backend.json_rows("$2")
            );
            batch.push(
                statement(sql)
                    .bind(&report_id)
                    .bind(json_array(&outcome.missing_symbols)),
            );
        }
        if outcome.drop_stack_key {
            batch.push(
                statement("DELETE FROM report_stack_keys WHERE report_id = $1").bind(&report_id),
            );
        }
        // Webhook events of what this report did to its issue, in this transaction.
        let alerted = outbox::record(&mut tx, &mut batch, &self.alerts, change, now).await?;
        let claimed = self.finish_job(tx, batch, job_id, next, now).await?;
        if alerted {
            self.alerts.wrote();
        }
        Ok((Some(issue_id), claimed))
    }

    /// Reports that were processed without the symbols of this module.
    pub async fn reports_missing_symbols(
        &self,
        debug_file: &str,
        debug_id: &str,
    ) -> Result<Vec<ReportId>, IndexError> {
        let query = sqlx::query(
            "SELECT report_id FROM report_missing_symbols WHERE debug_file = $1 AND debug_id = $2",
        );
        self.report_ids(query.bind(debug_file).bind(debug_id), "report_id")
            .await
    }
}

/// `items` as a JSON array, for a statement that inserts one row per element.
fn json_array<T: serde::Serialize>(items: &[T]) -> String {
    // Strings and pairs of strings: serializing them cannot fail.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// The job a claim statement returned.
fn job_from_row(row: &Row) -> Result<Job, IndexError> {
    Ok(Job {
        id: row.try_get("id")?,
        report_id: report_id_at(row, "report_id")?,
        attempts: row.try_get("attempts")?,
        released: row.try_get("released")?,
    })
}

impl Index {
    /// Removes a job (its report is gone).
    pub async fn delete_job(&self, job_id: i64) -> Result<(), IndexError> {
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(job_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::WrappedKey;
    use crate::index::CrashFacts;
    use crate::index::testing::{sqlite_index, writer_synchronous};
    use crate::index::{NewReport, ReportState};
    use sqlx::Executor;

    /// A report queued in `index` and its job, claimed.
    async fn claimed_report(index: &Index) -> (ReportId, Job) {
        let id = queued(index, 1).await;
        let job = index
            .claim_job("w", 10, Duration::from_secs(60))
            .await
            .unwrap()
            .expect("the job is claimed");
        (id, job)
    }

    /// On SQLite a job's report is read in the calling thread: the same as
    /// through the reader pool, a commit made just before seen, a failed read
    /// no harm to the next.
    #[tokio::test]
    async fn a_job_report_read_in_the_calling_thread_is_the_pool_s() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        assert!(index.reads.is_some());
        let pooled = Index {
            reads: None,
            ..index.clone()
        };
        let (id, _job) = claimed_report(&index).await;
        let here = index.job_report(&id).await.unwrap().expect("the report");
        let there = pooled.job_report(&id).await.unwrap().expect("the report");
        assert_eq!(format!("{here:?}"), format!("{there:?}"));
        index.count_symbol_upload().await.unwrap();
        assert_eq!(index.symbol_uploads().await.unwrap(), 1);
        assert_eq!(pooled.symbol_uploads().await.unwrap(), 1);
        assert_eq!(here.row.id, id);
        assert_eq!(here.row.state, ReportState::Queued);
        assert_eq!(here.data_key.unwrap().master_key_id, "test");
        assert!(here.stack_key.is_none());

        let reads = index.reads.as_ref().unwrap();
        assert!(
            reads
                .read(&statement("SELECT nothing FROM nowhere"))
                .is_err()
        );
        // Deleted: gone for the next read at once.
        assert!(index.delete_report(&id).await.unwrap());
        assert!(index.job_report(&id).await.unwrap().is_none());
        // A write on a read connection is refused.
        let write = statement("DELETE FROM jobs");
        assert!(reads.read(&write).is_err());
    }

    // Not shared with the e2e index tests' `new_report` (tests/tests/e2e/index.rs):
    // a unit test cannot use that crate (it depends on this one), and these tests
    // read the private writer.
    /// A report received at `at` and its job, due then, queued in `index`.
    async fn queued(index: &Index, at: i64) -> ReportId {
        let id = ReportId::new();
        index
            .insert_report_with_job(&NewReport {
                id,
                received_at: at,
                product: None,
                version: None,
                deletion_token_hash: "ab".repeat(32),
                raw_key: format!("raw/{id}.dmp"),
                meta_key: format!("raw/{id}.dmp"),
                data_key: WrappedKey {
                    master_key_id: "test".to_owned(),
                    wrapped: "00".repeat(60),
                },
                stack_key: None,
            })
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn a_claim_leaves_the_sqlite_writer_syncing_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        // FULL is 2.
        assert_eq!(writer_synchronous(&index).await, [2, 2]);
        let (id, job) = claimed_report(&index).await;
        assert_eq!(job.report_id, id);
        assert_eq!(writer_synchronous(&index).await, [2, 2]);

        // One given up before it was restored (an error, a cancelled claim) is
        // not pooled: the next commit runs on a fresh connection, syncing.
        let mut unsynced = Unsynced::acquire_syncing(&index.writer).await.unwrap();
        let normal = "PRAGMA synchronous = NORMAL";
        unsynced.connection().execute(normal).await.unwrap();
        drop(unsynced);
        assert_eq!(writer_synchronous(&index).await, [2, 2]);
    }

    fn outcome(drop_stack_key: bool) -> ProcessedOutcome {
        ProcessedOutcome {
            signature_hash: "ab".repeat(32),
            signature: "crash".to_owned(),
            title: "crash".to_owned(),
            facts: CrashFacts::default(),
            missing_symbols: Vec::new(),
            annotation_tags: Vec::new(),
            sample_stack: None,
            drop_stack_key,
        }
    }

    #[test]
    fn only_a_finish_that_destroys_the_stack_key_is_committed_durably() {
        assert_eq!(outcome(true).commit(), Commit::Durable);
        assert_eq!(outcome(false).commit(), Commit::Lazy);
    }

    // A lazy finish runs on the writer set to NORMAL: whether it commits or
    // fails, no later commit (an upload's) may run unsynced.
    #[tokio::test]
    async fn a_lazy_finish_leaves_the_sqlite_writer_syncing_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        let (id, job) = claimed_report(&index).await;
        // A finish that fails (an earlier claim's) rolls back, and its
        // connection is not pooled as NORMAL.
        let stale = Job {
            attempts: job.attempts - 1,
            ..job.clone()
        };
        let lost = index.finish_processed(&stale, &outcome(false), 20).await;
        assert!(matches!(lost, Err(IndexError::ClaimLost(_))), "{lost:?}");
        assert_eq!(writer_synchronous(&index).await, [2, 2]);
        // The lazy finish records the report and finishes the job.
        let issue = index
            .finish_processed(&job, &outcome(false), 20)
            .await
            .unwrap();
        assert!(issue.is_some());
        assert_eq!(writer_synchronous(&index).await, [2, 2]);
        let row = index.report(&id).await.unwrap().unwrap();
        assert_eq!(row.state, crate::index::ReportState::Processed);
        assert_eq!(index.queue_depth().await.unwrap(), 0);
        // Processed again (a lost report made again): the same issue, counted once.
        assert!(
            !index.enqueue_job_once(&id, 20, 30).await.unwrap(),
            "finished since that read began: its report may be stored now"
        );
        assert!(index.enqueue_job_once(&id, 21, 30).await.unwrap());
        assert!(
            !index.enqueue_job_once(&id, 21, 30).await.unwrap(),
            "one job at a time"
        );
        let again = index
            .claim_job("w", 40, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let same = index
            .finish_processed(&again, &outcome(false), 50)
            .await
            .unwrap();
        assert_eq!(same, issue);
        let issue = index.issue(issue.unwrap()).await.unwrap().unwrap();
        assert_eq!(issue.count, 1);
    }

    const LEASE: Duration = Duration::from_secs(60);

    fn next(worker: &str) -> Option<ClaimNext<'_>> {
        Some(ClaimNext {
            worker,
            lease: LEASE,
        })
    }

    /// Job `id`'s state, attempts and claimant; `None` once it is gone.
    async fn job_row(index: &Index, id: i64) -> Option<(String, i64, Option<String>)> {
        let row = sqlx::query("SELECT state, attempts, claimed_by FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&index.pool)
            .await
            .unwrap()?;
        let state = row.try_get("state").unwrap();
        Some((
            state,
            row.try_get("attempts").unwrap(),
            row.try_get("claimed_by").unwrap(),
        ))
    }

    /// When the next job falls due: none with an empty queue; the earliest
    /// pending job's time, or a claim's lease running out when that is
    /// earlier.
    #[tokio::test]
    async fn the_next_job_falls_due_at_the_earliest_time_or_lease_end() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        assert_eq!(index.next_job_due(LEASE).await.unwrap(), None);
        queued(&index, 500_000).await;
        queued(&index, 300_000).await;
        queued(&index, 400_000).await;
        assert_eq!(index.next_job_due(LEASE).await.unwrap(), Some(300_000));
        // The job of 300 000 claimed at 310 000: the one of 400 000 is next,
        // until a shorter lease ends before it.
        index.claim_job("w", 310_000, LEASE).await.unwrap().unwrap();
        assert_eq!(index.next_job_due(LEASE).await.unwrap(), Some(370_000));
        let short = Duration::from_secs(10);
        assert_eq!(index.next_job_due(short).await.unwrap(), Some(320_000));
    }

    #[tokio::test]
    async fn a_finish_claims_the_next_due_job_in_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        let (a, b) = (queued(&index, 1).await, queued(&index, 2).await);
        let c = queued(&index, 1_000).await;
        let first = index.claim_job("w1", 10, LEASE).await.unwrap().unwrap();
        assert_eq!(first.report_id, a);

        // Processed: the next due job (b) claimed for the worker named, once.
        let (issue, claimed) = index
            .finish_processed_and_claim(&first, &outcome(false), 20, next("w2"))
            .await
            .unwrap();
        assert!(issue.is_some());
        let second = claimed.expect("the next due job is claimed");
        assert_eq!((second.report_id, second.attempts), (b, 1));
        assert_eq!(job_row(&index, first.id).await, None, "finished");
        let running = Some(("running".to_owned(), 1, Some("w2".to_owned())));
        assert_eq!(job_row(&index, second.id).await, running);
        assert_eq!(
            index.report(&a).await.unwrap().unwrap().state,
            ReportState::Processed
        );

        // Failed: c is not due yet, so nothing is claimed.
        let claimed = index
            .finish_failed_and_claim(&second, "bad", 30, next("w2"))
            .await
            .unwrap();
        assert_eq!(claimed, None);
        assert_eq!(
            index.report(&b).await.unwrap().unwrap().state,
            ReportState::Failed
        );
        assert_eq!(job_row(&index, second.id).await, None);

        // Retried: the next due job is claimed, never the one retried.
        let third = index.claim_job("w1", 1_000, LEASE).await.unwrap().unwrap();
        assert_eq!(third.report_id, c);
        let claimed = index
            .retry_job_and_claim(&third, 5_000, "transient", 1_000, next("w1"))
            .await
            .unwrap();
        assert_eq!(claimed, None, "the retried job is not due yet");
        assert_eq!(job_row(&index, third.id).await.unwrap().0, "pending");
        let d = queued(&index, 5_500).await;
        let again = index.claim_job("w1", 6_000, LEASE).await.unwrap().unwrap();
        assert_eq!((again.report_id, again.attempts), (c, 2));
        let claimed = index
            .retry_job_and_claim(&again, 9_000, "transient", 6_000, next("w3"))
            .await
            .unwrap()
            .expect("d is due");
        assert_eq!((claimed.report_id, claimed.attempts), (d, 1));
        // Not asked: nothing claimed.
        let (_, claimed) = index
            .finish_processed_and_claim(&claimed, &outcome(true), 6_100, None)
            .await
            .unwrap();
        assert_eq!(claimed, None);
        assert_eq!(
            index.queue_depth().await.unwrap(),
            1,
            "c waits for its retry"
        );
        // Every finish left the writer syncing every commit.
        assert_eq!(writer_synchronous(&index).await, [2, 2]);
    }

    #[tokio::test]
    async fn a_finish_whose_claim_was_lost_claims_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        let (a, b) = (queued(&index, 1).await, queued(&index, 2).await);
        // A worker claimed a and stalled past its lease; another claimed it again.
        let stale = index.claim_job("slow", 10, LEASE).await.unwrap().unwrap();
        let after_lease = 10 + LEASE.as_millis() as i64 + 1;
        let current = index.claim_job("other", after_lease, LEASE).await;
        let current = current.unwrap().unwrap();
        assert_eq!((current.report_id, current.attempts), (a, 2));

        // No finish of the stale claim records anything or claims b.
        let now = after_lease + 1;
        let lost = index
            .finish_processed_and_claim(&stale, &outcome(false), now, next("slow"))
            .await;
        assert!(matches!(lost, Err(IndexError::ClaimLost(_))), "{lost:?}");
        let lost = index
            .finish_failed_and_claim(&stale, "x", now, next("slow"))
            .await;
        assert!(matches!(lost, Err(IndexError::ClaimLost(_))), "{lost:?}");
        let lost = index
            .retry_job_and_claim(&stale, now + 1_000, "x", now, next("slow"))
            .await;
        assert!(matches!(lost, Err(IndexError::ClaimLost(_))), "{lost:?}");
        let lost = index.release_job(&stale).await;
        assert!(matches!(lost, Err(IndexError::ClaimLost(_))), "{lost:?}");
        assert_eq!(
            index.report(&a).await.unwrap().unwrap().state,
            ReportState::Queued
        );
        assert_eq!(job_row(&index, current.id).await.unwrap().1, 2);

        // b is still there for the next claim, its first attempt.
        let other = index.claim_job("x", now, LEASE).await.unwrap().unwrap();
        assert_eq!((other.report_id, other.attempts), (b, 1));
    }

    #[tokio::test]
    async fn a_released_job_is_pending_again_and_its_claim_over() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        let (id, job) = claimed_report(&index).await;
        index.release_job(&job).await.unwrap();
        assert_eq!(
            job_row(&index, job.id).await,
            Some(("pending".to_owned(), 1, None))
        );
        // Due as before: claimed at once, well within the released claim's lease.
        let again = index.claim_job("w", 11, LEASE).await.unwrap().unwrap();
        assert_eq!((again.id, again.report_id, again.attempts), (job.id, id, 2));
        let lost = index.finish_processed(&job, &outcome(false), 12).await;
        assert!(matches!(lost, Err(IndexError::ClaimLost(_))), "{lost:?}");
        // The old claim cannot be released twice.
        let twice = index.release_job(&job).await;
        assert!(matches!(twice, Err(IndexError::ClaimLost(_))), "{twice:?}");
    }
}
