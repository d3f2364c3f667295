//! The worker loop: claim jobs while any is due, run each to its end, then wait
//! for a wake-up, the next due job or the poll interval, whichever comes first.
//!
//! A job's finish claims the next job in its own write transaction
//! ([`Handoff`]): while the queue is full, one transaction per job. The worker
//! runs that job next, without a claim of its own. A job claimed so just as the
//! worker is told to stop is given back ([`Index::release_job`]): pending
//! again, for any worker to claim at once, rather than left to its lease.
//!
//! A job's attempts are counted at each claim (but a claim given back unrun).
//! One claimed more than `max_attempts` times never finished (its worker died
//! or hung on it each time: a dump that crashes the process), so it fails
//! instead of being processed again. A job that panics fails; the worker goes
//! on with the next one. A job that fails for a transient reason is retried
//! soon, and later each time the failure persists.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::watch;

use super::Pipeline;
use super::job::{self, Failure, Handoff, JobError, patiently, prompt_retry_delay};
use crate::index::{Index, IndexError, Job, now_ms};

/// Runs one worker until `shutdown` says stop.
pub async fn run_worker(pipeline: Pipeline, name: String, mut shutdown: watch::Receiver<bool>) {
    tracing::debug!(worker = %name, "worker started");
    let config = &pipeline.config;
    // The job the last one's finish claimed.
    let mut next: Option<Job> = None;
    loop {
        let stopping = *shutdown.borrow();
        if stopping {
            if let Some(job) = next.take() {
                release(&pipeline.index, &job).await;
            }
            break;
        }
        if let Some(job) = next.take() {
            let handoff = Handoff::new(&name, config.job_lease, &shutdown);
            next = work(&pipeline, &job, handoff).await;
            continue;
        }
        // Listen before looking, so a job queued meanwhile is not slept through.
        let woken = pipeline.wake.listen();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let idle = match pipeline
            .index
            .claim_job(&name, now_ms(), config.job_lease)
            .await
        {
            Ok(Some(job)) => {
                let handoff = Handoff::new(&name, config.job_lease, &shutdown);
                next = work(&pipeline, &job, handoff).await;
                continue;
            }
            Ok(None) => match pipeline.index.next_job_due(config.job_lease).await {
                Ok(Some(due)) => {
                    let until = Duration::from_millis(due.saturating_sub(now_ms()).max(0) as u64);
                    until.min(config.poll_interval)
                }
                Ok(None) => config.poll_interval,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the queue failed");
                    config.poll_interval
                }
            },
            // A busy index is waited for: look again soon.
            Err(e) if e.is_busy() => prompt_retry_delay(),
            Err(e) => {
                tracing::error!(error = %e, "claiming a job failed");
                config.poll_interval
            }
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(idle) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::debug!(worker = %name, "worker stopped");
}

/// Gives back a job claimed for a worker that is stopping.
async fn release(index: &Index, job: &Job) {
    match index.release_job(job).await {
        Ok(()) => tracing::debug!(report = %job.report_id, "claimed job given back"),
        // Claimed again meanwhile: its lease ran out, someone else runs it.
        Err(IndexError::ClaimLost(_)) => {}
        Err(e) => {
            tracing::warn!(report = %job.report_id, error = %e, "claimed job not given back: it runs again after its lease");
        }
    }
}

/// Runs one claimed job, and deals with how it ended; returns the next job its
/// finish claimed as `handoff` asked, the worker's to run next.
async fn work(pipeline: &Pipeline, job: &Job, mut handoff: Handoff<'_>) -> Option<Job> {
    let started = std::time::Instant::now();
    let max_attempts = i64::from(pipeline.config.max_attempts);
    let result = if job.tries() > max_attempts {
        let abandoned = Failure::Abandoned {
            attempts: job.tries() - 1,
        };
        job::fail(&pipeline.index, job, &abandoned, &mut handoff).await
    } else {
        match AssertUnwindSafe(job::run(pipeline, job, &mut handoff))
            .catch_unwind()
            .await
        {
            Ok(Err(e)) if e.is_claim_lost() => Err(e),
            Ok(Err(e)) if job.tries() >= max_attempts => {
                pipeline.metrics.job_error();
                tracing::warn!(report = %job.report_id, error = %e, "job failed, giving up");
                job::fail(&pipeline.index, job, &Failure::GaveUp(e), &mut handoff).await
            }
            Ok(Err(e)) => {
                pipeline.metrics.job_error();
                tracing::warn!(report = %job.report_id, error = %e, "job failed, will retry");
                retry(pipeline, job, &e, &mut handoff).await
            }
            Ok(Ok(())) => Ok(()),
            Err(_) => {
                pipeline.metrics.job_error();
                job::fail(&pipeline.index, job, &Failure::Panicked, &mut handoff).await
            }
        }
    };
    match result {
        Ok(()) => {}
        // Its lease ran out while it ran here: the worker that claimed it again
        // records it, once.
        Err(e) if e.is_claim_lost() => {
            tracing::warn!(report = %job.report_id, "job claimed again by another worker, left to it");
        }
        // The lease runs out and another claim tries again.
        Err(e) => {
            tracing::error!(report = %job.report_id, error = %e, "could not finish or reschedule job");
        }
    }
    pipeline.metrics.processed(started.elapsed());
    handoff.into_next()
}

/// Puts the job back to be tried again later, claiming the next as `handoff` asks.
async fn retry(
    pipeline: &Pipeline,
    job: &Job,
    error: &JobError,
    handoff: &mut Handoff<'_>,
) -> Result<(), JobError> {
    let now = now_ms();
    let not_before = now + retry_delay(job.tries()).as_millis() as i64;
    let error = error.to_string();
    let index = &pipeline.index;
    let next = patiently(|| {
        index.retry_job_and_claim(job, not_before, &error, now_ms(), handoff.request())
    })
    .await?;
    handoff.claimed(next);
    Ok(())
}

/// When to try again a job that failed `attempts` times in a row: soon after the
/// first failure, then doubling from 2 s (at most 10 min) while it persists.
fn retry_delay(attempts: i64) -> Duration {
    if attempts <= 1 {
        return prompt_retry_delay();
    }
    let exp = (attempts - 1).clamp(1, 10) as u32;
    let backoff = Duration::from_secs(2u64.pow(exp).min(600));
    backoff + prompt_retry_delay()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;
    use crate::config::Config;
    use crate::crypto::{Keyring, MasterKey};
    use crate::index::{Index, NewReport, ReportState};
    use crate::pipeline::Wake;
    use crate::pipeline::memory::MemoryBudget;
    use crate::pipeline::report::ProcessedReport;
    use crate::report_id::ReportId;
    use crate::storage::Storage;
    use crate::vault::{self, Vault};

    #[test]
    fn a_first_failure_is_retried_promptly_and_persisting_ones_back_off() {
        for _ in 0..100 {
            let first = retry_delay(1);
            assert!((Duration::from_millis(50)..=Duration::from_millis(500)).contains(&first));
        }
        assert!(retry_delay(2) >= Duration::from_secs(2));
        assert!(retry_delay(3) >= Duration::from_secs(4));
        assert!(retry_delay(3) > retry_delay(2));
        assert!(retry_delay(100) <= Duration::from_secs(601));
    }

    /// A pipeline on a fresh SQLite index and an in-memory store.
    async fn pipeline(dir: &std::path::Path, max_attempts: u32) -> Pipeline {
        let url = format!("sqlite://{}?mode=rwc", dir.join("index.sqlite").display());
        let index = Index::connect(&url).await.unwrap();
        let store = Arc::new(InMemory::new());
        let vault = Vault::new(
            Storage::from_store(store.clone()),
            index.clone(),
            Keyring::new(MasterKey::generate()),
        );
        let config = Config::default();
        Pipeline {
            index,
            vault,
            symbols: mayday_symbols::Symbols::new(
                mayday_symbols::SymbolStore::new(store),
                config.symbols.clone(),
            ),
            metrics: Default::default(),
            config: crate::config::PipelineConfig {
                max_attempts,
                poll_interval: Duration::from_millis(50),
                ..config.pipeline.clone()
            },
            scrub: config.scrub.clone(),
            signatures: Default::default(),
            wake: Wake::default(),
            memory: MemoryBudget::new(config.pipeline.memory_bytes),
        }
    }

    /// Stores a small valid dump as a received report, with its job.
    async fn queue(pipeline: &Pipeline, received_at: i64) -> ReportId {
        let dump = crate::pipeline::process::tests::small_dump(None);
        queue_dump(pipeline, received_at, &dump).await
    }

    /// Stores `dump` as a received report, with its job.
    async fn queue_dump(pipeline: &Pipeline, received_at: i64, dump: &[u8]) -> ReportId {
        let id = ReportId::new();
        let received = time::OffsetDateTime::now_utc().date();
        let (raw_key, meta_key) = (
            vault::raw_dump_key(received, &id),
            vault::raw_meta_key(received, &id),
        );
        let (data_key, wrapped_key) = pipeline.vault.new_key(&id);
        pipeline.vault.put(&raw_key, &data_key, dump).await.unwrap();
        pipeline
            .index
            .insert_report_with_job(&NewReport {
                id,
                received_at,
                product: None,
                version: None,
                deletion_token_hash: "ab".repeat(32),
                raw_key: raw_key.to_string(),
                meta_key: meta_key.to_string(),
                data_key: wrapped_key,
                stack_key: None,
            })
            .await
            .unwrap();
        id
    }

    /// A pipeline with one report queued ten leases ago, so that claims made at
    /// chosen times since then run out as a test needs: the pipeline, the
    /// report and when it was queued.
    async fn queued_long_ago(
        dir: &std::path::Path,
        max_attempts: u32,
    ) -> (Pipeline, ReportId, i64) {
        let pipeline = pipeline(dir, max_attempts).await;
        let long_ago = now_ms() - 10 * pipeline.config.job_lease.as_millis() as i64;
        let id = queue(&pipeline, long_ago).await;
        (pipeline, id, long_ago)
    }

    /// The workers' memory budget by default.
    const DEFAULT_MEMORY: u64 = 512 * 1024 * 1024;

    /// Waits (bounded) until no report of `ids` is queued.
    async fn settled(pipeline: &Pipeline, ids: &[ReportId]) {
        for _ in 0..600 {
            let mut queued = false;
            for id in ids {
                let row = pipeline.index.report(id).await.unwrap().unwrap();
                queued |= row.state == ReportState::Queued;
            }
            if !queued {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("reports still queued");
    }

    /// Two reports queued on a pipeline in `dir` (the first older, of
    /// `first_dump`, and put in `hook`, a test hook of `job`; the next of a
    /// small dump), and one worker run until both are settled: the pipeline,
    /// the two reports, the worker's stop signal and its task.
    async fn one_worker_on_two(
        dir: &std::path::Path,
        hook: &std::sync::Mutex<Option<ReportId>>,
        first_dump: &[u8],
    ) -> (
        Pipeline,
        [ReportId; 2],
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let pipeline = pipeline(dir, 5).await;
        let t0 = now_ms();
        let first = queue_dump(&pipeline, t0 - 2, first_dump).await;
        let next = queue(&pipeline, t0 - 1).await;
        *hook.lock().unwrap() = Some(first);
        let (stop, shutdown) = watch::channel(false);
        let worker = tokio::spawn(run_worker(pipeline.clone(), "w".into(), shutdown));
        settled(&pipeline, &[first, next]).await;
        (pipeline, [first, next], stop, worker)
    }

    /// A job holds its object's share until its dump is open, then as well
    /// what the frames its walk can make take: a small dump a little, one of
    /// threads sharing a stack of return addresses (a 67 KB object) the whole
    /// budget, so that it is walked alone.
    #[tokio::test]
    async fn a_jobs_share_grows_with_the_frames_its_dump_can_unwind_into() {
        let dir = tempfile::tempdir().unwrap();
        let mut pipeline = pipeline(dir.path(), 5).await;
        pipeline.memory = MemoryBudget::new(96 * 1024 * 1024);
        let many = crate::pipeline::shared_stack_dump::shared_stack_dump(8);
        for (dump, held) in [
            (crate::pipeline::process::tests::small_dump(None), [1, 2]),
            (many, [1, 96]),
        ] {
            queue_dump(&pipeline, now_ms(), &dump).await;
            let job = pipeline
                .index
                .claim_job("w", now_ms(), pipeline.config.job_lease)
                .await
                .unwrap()
                .expect("a job");
            let mut loaded = job::load(&pipeline, &job).await.unwrap().unwrap();
            assert_eq!(pipeline.memory.available(), 96 - held[0]);
            let outcome = job::process(&pipeline, &mut loaded).await;
            assert!(matches!(outcome, job::Outcome::Processed(..)));
            assert_eq!(pipeline.memory.available(), 96 - held[1]);
            drop(loaded);
            assert_eq!(pipeline.memory.available(), 96);
            pipeline.index.delete_job(job.id).await.unwrap();
        }
    }

    /// A long walk runs beside the runtime's threads: with one runtime thread,
    /// a task spawned while a walk holds its thread (stalled by a test hook
    /// without yielding, as a walk computes) still runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_long_walk_leaves_the_runtime_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = pipeline(dir.path(), 5).await;
        let long = long_dump();
        let id = queue_dump(&pipeline, now_ms(), &long).await;
        let (stalled, is_stalled) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel();
        *job::tests::STALL_ON.lock().unwrap() = Some((id, stalled, released));
        let walking = {
            let pipeline = pipeline.clone();
            tokio::spawn(async move {
                let lease = pipeline.config.job_lease;
                let job = pipeline.index.claim_job("w", now_ms(), lease).await;
                let job = job.unwrap().expect("a job");
                let mut loaded = job::load(&pipeline, &job).await.unwrap().unwrap();
                job::process(&pipeline, &mut loaded).await
            })
        };
        // This test's body runs on a thread of its own, not the runtime's
        // worker: it may wait here.
        let began = is_stalled.recv_timeout(Duration::from_secs(120));
        began.expect("the walk began");
        let (ran, has_run) = std::sync::mpsc::channel();
        tokio::spawn(async move { ran.send(()).unwrap() });
        let probe = has_run.recv_timeout(Duration::from_secs(30));
        release.send(()).unwrap();
        assert!(
            probe.is_ok(),
            "a task spawned during the walk waited for it"
        );
        let outcome = walking.await.unwrap();
        assert!(matches!(outcome, job::Outcome::Processed(..)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_panics_fails_and_the_worker_goes_on() {
        a_job_that_panics(&crate::pipeline::process::tests::small_dump(None)).await;
    }

    /// The same where the walk that panics was handed over beside the runtime
    /// (`walk_beside_the_runtime`), on a runtime of one thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_long_walk_that_panics_fails_and_the_worker_goes_on() {
        a_job_that_panics(&long_dump()).await;
    }

    /// Threads sharing a stack of return addresses: a dump past `WALKED_BESIDE`.
    fn long_dump() -> Vec<u8> {
        let long = crate::pipeline::shared_stack_dump::shared_stack_dump(5);
        let frames = crate::pipeline::process::OpenedDump::open(&long)
            .unwrap()
            .frames();
        assert!(frames > job::WALKED_BESIDE, "{frames}");
        long
    }

    /// A job of `dump` panics: it fails, and the worker processes the next.
    async fn a_job_that_panics(dump: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, [panics, next], stop, worker) =
            one_worker_on_two(dir.path(), &job::tests::PANIC_ON, dump).await;

        let failed = pipeline.index.report(&panics).await.unwrap().unwrap();
        assert_eq!(failed.state, ReportState::Failed);
        assert_eq!(failed.failure.as_deref(), Some("processing panicked"));
        let processed = pipeline.index.report(&next).await.unwrap().unwrap();
        assert_eq!(processed.state, ReportState::Processed, "{processed:?}");
        assert_eq!(pipeline.index.queue_depth().await.unwrap(), 0);
        assert!(!worker.is_finished(), "the worker survived the panic");
        stop.send(true).unwrap();
        worker.await.unwrap();
    }

    // A failure after a job's finish (here: queueing the report again for
    // symbols uploaded meanwhile) is logged: the finished job is neither
    // retried nor counted as a job error, and the worker goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_after_the_finish_does_not_retry_the_finished_job() {
        let dir = tempfile::tempdir().unwrap();
        let small = crate::pipeline::process::tests::small_dump(None);
        let (pipeline, [first, next], stop, worker) =
            one_worker_on_two(dir.path(), &job::tests::FAIL_AFTER_FINISH, &small).await;
        stop.send(true).unwrap();
        worker.await.unwrap();

        for id in [first, next] {
            let row = pipeline.index.report(&id).await.unwrap().unwrap();
            assert_eq!(row.state, ReportState::Processed, "{row:?}");
        }
        assert_eq!(issue_count(&pipeline, &first).await, 2);
        assert_eq!(pipeline.index.queue_depth().await.unwrap(), 0);
        let metrics = pipeline.metrics.render(None, None, None);
        for line in ["mayday_jobs_run_total 2", "mayday_job_errors_total 0"] {
            assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
        }
    }

    #[tokio::test]
    async fn a_worker_whose_job_was_claimed_again_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, id, long_ago) = queued_long_ago(dir.path(), 5).await;
        let lease = pipeline.config.job_lease;
        // A worker claimed the job and stalled past its lease; another one (in
        // this process or another) claimed it again.
        let stale = pipeline.index.claim_job("slow", long_ago, lease).await;
        let stale = stale.unwrap().unwrap();
        let again = long_ago + lease.as_millis() as i64 + 1;
        let current = pipeline.index.claim_job("other", again, lease).await;
        let current = current.unwrap().unwrap();
        assert_eq!((current.id, current.attempts), (stale.id, 2));

        // The stalled worker goes on: it records nothing, retries nothing, and
        // counts no error.
        work(&pipeline, &stale, Handoff::none()).await;
        let row = pipeline.index.report(&id).await.unwrap().unwrap();
        assert_eq!(row.state, ReportState::Queued);
        assert_eq!(pipeline.index.queue_depth().await.unwrap(), 1);
        let metrics = pipeline.metrics.render(None, None, None);
        assert!(
            metrics.lines().any(|l| l == "mayday_job_errors_total 0"),
            "{metrics}"
        );
        // The job is the other worker's, which records it.
        work(&pipeline, &current, Handoff::none()).await;
        let row = pipeline.index.report(&id).await.unwrap().unwrap();
        assert_eq!(row.state, ReportState::Processed, "{row:?}");
        assert_eq!(pipeline.index.queue_depth().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_job_claimed_more_than_max_attempts_times_fails_unprocessed() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, id, long_ago) = queued_long_ago(dir.path(), 2).await;
        let lease = pipeline.config.job_lease;
        // Two workers died holding it (the dump crashed the process).
        for at in [long_ago, long_ago + lease.as_millis() as i64 + 1] {
            let job = pipeline.index.claim_job("gone", at, lease).await.unwrap();
            assert_eq!(job.map(|j| j.report_id), Some(id));
        }
        work_until_settled(&pipeline, id).await;

        let row = pipeline.index.report(&id).await.unwrap().unwrap();
        assert_eq!(row.state, ReportState::Failed);
        assert_eq!(
            row.failure.as_deref(),
            Some("gave up: not finished in 2 attempts")
        );
        assert_eq!(pipeline.index.queue_depth().await.unwrap(), 0);
        // Never processed: no processed report was stored.
        let processed = pipeline
            .vault
            .storage()
            .get(&vault::processed_key(&id))
            .await;
        assert!(processed.unwrap().is_none());
    }

    /// Claims given back unrun (workers stopping) do not count against
    /// `max_attempts`: a job released more often than that is still processed.
    #[tokio::test]
    async fn a_job_given_back_unrun_again_and_again_is_still_processed() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, id, long_ago) = queued_long_ago(dir.path(), 2).await;
        let lease = pipeline.config.job_lease;
        for at in 0..3 {
            let job = pipeline.index.claim_job("stopping", long_ago + at, lease);
            let job = job.await.unwrap().unwrap();
            assert_eq!((job.report_id, job.attempts, job.tries()), (id, at + 1, 1));
            pipeline.index.release_job(&job).await.unwrap();
        }
        work_until_settled(&pipeline, id).await;

        let row = pipeline.index.report(&id).await.unwrap().unwrap();
        assert_eq!(row.state, ReportState::Processed, "{row:?}");
        assert_eq!(pipeline.index.queue_depth().await.unwrap(), 0);
    }

    /// One worker run until report `id` is settled, then stopped.
    async fn work_until_settled(pipeline: &Pipeline, id: ReportId) {
        let (stop, shutdown) = watch::channel(false);
        let worker = tokio::spawn(run_worker(pipeline.clone(), "w".into(), shutdown));
        settled(pipeline, &[id]).await;
        stop.send(true).unwrap();
        worker.await.unwrap();
    }

    /// The report's issue's count.
    async fn issue_count(pipeline: &Pipeline, id: &ReportId) -> i64 {
        let row = pipeline.index.report(id).await.unwrap().unwrap();
        let issue = row.issue_id.expect("processed into an issue");
        pipeline.index.issue(issue).await.unwrap().unwrap().count
    }

    /// A pipeline in `dir` with `jobs` reports queued and three workers
    /// running on it, sharing a memory budget of `memory_bytes`: the pipeline,
    /// the reports, the workers' stop signal and their tasks.
    async fn three_workers_on(
        dir: &std::path::Path,
        jobs: i64,
        memory_bytes: u64,
    ) -> (
        Pipeline,
        Vec<ReportId>,
        watch::Sender<bool>,
        Vec<tokio::task::JoinHandle<()>>,
    ) {
        let mut pipeline = pipeline(dir, 5).await;
        pipeline.memory = MemoryBudget::new(memory_bytes);
        let t0 = now_ms();
        let mut ids = Vec::new();
        for i in 0..jobs {
            ids.push(queue(&pipeline, t0 - 100 + i).await);
        }
        let (stop, shutdown) = watch::channel(false);
        let workers = (0..3)
            .map(|i| {
                tokio::spawn(run_worker(
                    pipeline.clone(),
                    format!("w{i}"),
                    shutdown.clone(),
                ))
            })
            .collect();
        (pipeline, ids, stop, workers)
    }

    /// Lets `workers` run until no report of `ids` is queued, stops them, and
    /// checks that every report ended processed.
    async fn run_until_all_processed(
        pipeline: &Pipeline,
        ids: &[ReportId],
        stop: watch::Sender<bool>,
        workers: Vec<tokio::task::JoinHandle<()>>,
    ) {
        settled(pipeline, ids).await;
        stop.send(true).unwrap();
        for worker in workers {
            worker.await.unwrap();
        }
        for id in ids {
            let row = pipeline.index.report(id).await.unwrap().unwrap();
            assert_eq!(row.state, ReportState::Processed, "{row:?}");
            // Its processed report stored as a zstd frame of its JSON.
            let stored = pipeline
                .vault
                .read(id, &vault::processed_key(id))
                .await
                .unwrap()
                .expect("processed report stored");
            assert!(stored.starts_with(&crate::pipeline::stored::ZSTD_MAGIC));
            let report: ProcessedReport = crate::pipeline::stored::decode(&stored).unwrap();
            assert_eq!(report.id, id.to_string());
        }
    }

    // Each finish claims the next job for its worker: with several workers at
    // it, every job still runs once, and every report is counted once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_that_claim_with_their_finishes_run_each_job_once() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, ids, stop, workers) = three_workers_on(dir.path(), 12, DEFAULT_MEMORY).await;
        run_until_all_processed(&pipeline, &ids, stop, workers).await;
        // The same dump each time: one issue, each report counted once.
        assert_eq!(issue_count(&pipeline, &ids[0]).await, 12);
        assert_eq!(pipeline.index.queue_depth().await.unwrap(), 0);
        let metrics = pipeline.metrics.render(None, None, None);
        for line in ["mayday_jobs_run_total 12", "mayday_job_errors_total 0"] {
            assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
        }
    }

    // Three workers on a budget that one job's share fills (each job waits for
    // the one before it to end): every job still runs once, and the whole
    // budget is free once they stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_on_a_budget_for_one_job_run_every_job_and_give_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, ids, stop, workers) = three_workers_on(dir.path(), 6, 1024 * 1024).await;
        run_until_all_processed(&pipeline, &ids, stop, workers).await;
        assert_eq!(issue_count(&pipeline, &ids[0]).await, 6);
        assert_eq!(pipeline.memory.available(), 1);
    }

    #[tokio::test]
    async fn a_finish_claims_the_next_job_unless_the_worker_is_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = pipeline(dir.path(), 5).await;
        let lease = pipeline.config.job_lease;
        let t0 = now_ms();
        let (a, b) = (
            queue(&pipeline, t0 - 2).await,
            queue(&pipeline, t0 - 1).await,
        );
        let first = pipeline.index.claim_job("w", now_ms(), lease).await;
        let first = first.unwrap().unwrap();
        assert_eq!(first.report_id, a);

        // Stopping: the finish claims nothing, b stays pending.
        let (stop, stopping) = watch::channel(true);
        let next = work(&pipeline, &first, Handoff::new("w", lease, &stopping)).await;
        assert_eq!(next, None);
        let row = pipeline.index.report(&a).await.unwrap().unwrap();
        assert_eq!(row.state, ReportState::Processed);

        // Going on: a job's finish claims b, which the worker runs next.
        stop.send(false).unwrap();
        pipeline.index.enqueue_job(&a, t0 - 3).await.unwrap();
        let again = pipeline.index.claim_job("w", now_ms(), lease).await;
        let again = again.unwrap().unwrap();
        assert_eq!((again.report_id, again.attempts), (a, 1));
        let next = work(&pipeline, &again, Handoff::new("w", lease, &stopping)).await;
        let next = next.expect("b claimed by the finish");
        assert_eq!((next.report_id, next.attempts), (b, 1));
        // Given back when the worker stops before running it: claimable at once,
        // not after its lease.
        super::release(&pipeline.index, &next).await;
        let claimed = pipeline.index.claim_job("x", now_ms(), lease).await;
        let claimed = claimed.unwrap().unwrap();
        assert_eq!((claimed.report_id, claimed.attempts), (b, 2));
        assert_eq!(
            issue_count(&pipeline, &a).await,
            1,
            "processed again, counted once"
        );
    }

    // Stopped while the queue is full: no job is left claimed (waiting out
    // its lease); every one left is claimable at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_stopped_mid_queue_leave_no_job_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, _, stop, workers) = three_workers_on(dir.path(), 30, DEFAULT_MEMORY).await;
        // Until a few are done.
        for _ in 0..600 {
            let left = pipeline.index.queue_depth().await.unwrap();
            if left <= 27 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
        for worker in workers {
            worker.await.unwrap();
        }
        let left = pipeline.index.queue_depth().await.unwrap();
        assert!(left < 30, "some processed");
        let lease = pipeline.config.job_lease;
        let mut claimable = 0;
        while let Some(job) = pipeline
            .index
            .claim_job("x", now_ms(), lease)
            .await
            .unwrap()
        {
            // Never run: every claim before this one was given back (a finish
            // sent before the stop may claim a job another worker gave back,
            // and give it back in turn).
            assert_eq!(job.tries(), 1, "{job:?}");
            claimable += 1;
        }
        assert_eq!(claimable, left);
    }
}
