//! The processing pipeline: claim a job -> symbolicate -> sign -> store -> index.
//!
//! Workers claim jobs from the index, so any number of them, in any number of
//! processes, share the queue; a job whose worker died is claimed again once its
//! lease runs out.

pub mod process;
pub mod report;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use mayday_report::scrub::ScrubConfig;
use mayday_symbols::Symbols;
use tokio::sync::{Notify, watch};

use crate::config::PipelineConfig;
use crate::index::{Index, Job, ProcessedOutcome, now_ms};
use crate::metrics::Metrics;
use crate::vault::{self, RawMeta, Vault, VaultError};
use process::ProcessError;
use report::ProcessedReport;

/// Why a job could not be finished this time: transient, so it is retried.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The report vault (blob store or data keys) failed.
    #[error("storage: {0}")]
    Storage(#[from] VaultError),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] crate::index::IndexError),
    /// Stored metadata does not parse.
    #[error("metadata: {0}")]
    Meta(#[from] serde_json::Error),
    /// A symbol file could not be read from the store.
    #[error("symbol store unavailable")]
    SymbolStore,
}

/// Wakes the idle workers of this process when there is work; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// Tells idle workers that there is work.
    pub fn wake(&self) {
        self.0.notify_waiters();
    }

    /// Resolves when [`Wake::wake`] is called.
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

/// What the workers need, and no more; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    /// The index: the job queue and the report rows.
    pub index: Index,
    /// The report vault: the dumps to read, the processed reports to write.
    pub vault: Vault,
    /// The symbol provider shared by all workers. Each report is processed with
    /// its own [`session`](Symbols::session), so the report's symbol statistics
    /// and missing symbols are its own.
    pub symbols: Symbols,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Workers, leases, timeouts.
    pub config: PipelineConfig,
    /// What is scrubbed from processed reports, and whether stack memory is kept.
    pub scrub: ScrubConfig,
    /// Wakes idle workers (here: to take a report queued again).
    pub wake: Wake,
}

/// Runs one worker until `shutdown` says stop.
pub async fn run_worker(pipeline: Pipeline, name: String, mut shutdown: watch::Receiver<bool>) {
    let config = pipeline.config.clone();
    tracing::debug!(worker = %name, "worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let claimed = pipeline
            .index
            .claim_job(&name, now_ms(), config.job_lease)
            .await;
        match claimed {
            Ok(Some(job)) => {
                let started = std::time::Instant::now();
                if let Err(e) = run_job(&pipeline, &job).await {
                    tracing::warn!(report = %job.report_id, error = %e, "job failed, will retry");
                    let delay = backoff(job.attempts);
                    let retry = if job.attempts >= i64::from(config.max_attempts) {
                        pipeline
                            .index
                            .finish_failed(
                                job.id,
                                &job.report_id,
                                &format!("gave up: {e}"),
                                now_ms(),
                            )
                            .await
                    } else {
                        pipeline
                            .index
                            .retry_job(job.id, now_ms() + delay.as_millis() as i64, &e.to_string())
                            .await
                    };
                    if let Err(e) = retry {
                        tracing::error!(error = %e, "could not reschedule job");
                    }
                }
                pipeline.metrics.processed(started.elapsed());
            }
            Ok(None) => {
                tokio::select! {
                    _ = pipeline.wake.notified() => {}
                    _ = tokio::time::sleep(config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "claiming a job failed");
                tokio::select! {
                    _ = tokio::time::sleep(config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
    tracing::debug!(worker = %name, "worker stopped");
}

fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 10) as u32;
    Duration::from_secs(2u64.saturating_pow(exp).min(600))
}

/// Processes one claimed job to its end: processed, failed, or gone.
async fn run_job(pipeline: &Pipeline, job: &Job) -> Result<(), JobError> {
    let index = &pipeline.index;
    let vault = &pipeline.vault;
    let Some(row) = index.report(&job.report_id).await? else {
        // Deleted while queued — or while an earlier attempt of this job ran and
        // its worker died after storing the processed report: remove that too.
        vault.delete(&vault::processed_key(&job.report_id)).await?;
        index.delete_job(job.id).await?;
        return Ok(());
    };
    let raw_key = object_store::path::Path::from(row.raw_key.as_str());
    // A report whose data key is gone is deleted, whatever copies remain.
    let Some(data_key) = vault.data_key(&row.id).await? else {
        index.delete_job(job.id).await?;
        return Ok(());
    };
    let Some(dump) = vault.get(&raw_key, &data_key).await? else {
        index.delete_job(job.id).await?;
        return Ok(());
    };
    let meta_key = object_store::path::Path::from(row.meta_key.as_str());
    let meta: Option<RawMeta> = match vault.get(&meta_key, &data_key).await? {
        Some(bytes) => Some(serde_json::from_slice(&bytes)?),
        None => None,
    };
    let (annotations, scrubbed) = meta.map(|m| (m.annotations, m.scrub)).unwrap_or_default();

    // Symbols uploaded through any server process since this one last looked: what
    // its caches remember as missing may be there now.
    let uploads = index.symbol_uploads().await?;
    pipeline.symbols.sync_uploads(uploads);
    // Processed before: this is a reprocessing, symbols may have arrived.
    let reprocessing = row.state != crate::index::ReportState::Queued;
    let (processed, symbols) = crate::reprocess::process(
        &pipeline.symbols,
        pipeline.config.process_timeout,
        &row.id.to_string(),
        &dump,
        annotations,
        reprocessing,
    )
    .await;
    let mut report = match processed {
        // A symbol file that could not be read is not a missing one: try again
        // later rather than filing the report without those symbols.
        Ok(Ok(_)) if symbols.had_store_errors() => return Err(JobError::SymbolStore),
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return fail(index, job, &e).await,
        Err(_) => {
            index
                .finish_failed(job.id, &job.report_id, "timeout", now_ms())
                .await?;
            return Ok(());
        }
    };
    let id = row.id;
    report.scrub = scrubbed;
    process::scrub_report(&mut report, &pipeline.scrub.annotations);
    // Stack memory is only kept while the report may need reprocessing: until
    // every frame of the crashing thread (what the signature is made of) is
    // symbolicated. Once it is dropped, the report can no longer be reprocessed,
    // so it stops waiting for symbols.
    if crashing_thread_symbolicated(&report) && !pipeline.scrub.keep_stack_memory {
        let mut dump = dump.to_vec();
        if let Ok(bytes) = mayday_report::scrub::drop_stack_memory(&mut dump) {
            report.scrub.add("stack_memory_bytes_dropped", bytes);
            report.missing_symbols.clear();
            vault.put(&raw_key, &data_key, &dump).await?;
        }
    }
    let key = vault::processed_key(&id);
    let json = serde_json::to_vec(&report)?;
    vault.put(&key, &data_key, &json).await?;
    let outcome = outcome(&report);
    match index
        .finish_processed(job.id, &job.report_id, &outcome, now_ms())
        .await?
    {
        Some(issue) => {
            tracing::info!(report = %row.id, issue, "report processed");
            // Symbols uploaded while this report was processed: the upload looked
            // for reports lacking them before this one was recorded as lacking
            // anything, so queue it again.
            if !outcome.missing_symbols.is_empty() && index.symbol_uploads().await? != uploads {
                index.enqueue_job(&row.id, now_ms()).await?;
                pipeline.wake.wake();
            }
        }
        None => {
            // Deleted while we worked: leave nothing behind, including the raw
            // dump we may have rewritten above.
            for key in [&key, &raw_key, &meta_key] {
                vault.delete(key).await?;
            }
            index.checkpoint().await?;
        }
    }
    Ok(())
}

async fn fail(index: &Index, job: &Job, error: &ProcessError) -> Result<(), JobError> {
    tracing::info!(report = %job.report_id, error = %error, "report failed");
    index
        .finish_failed(job.id, &job.report_id, &error.to_string(), now_ms())
        .await?;
    Ok(())
}

fn outcome(report: &ProcessedReport) -> ProcessedOutcome {
    ProcessedOutcome {
        signature_hash: signature::Signature::from_text(&report.signature).hash(),
        title: title(report),
        signature: report.signature.clone(),
        product: report.product.clone(),
        version: report.version.clone(),
        os: report.os.clone(),
        os_version: report.os_version.clone(),
        cpu_arch: report.cpu_arch.clone(),
        crash_reason: report.crash_reason.clone(),
        crash_address: report.crash_address.clone(),
        missing_symbols: report
            .missing_symbols
            .iter()
            .map(|m| (m.debug_file.clone(), m.debug_id.clone()))
            .collect(),
    }
}

/// Whether no frame of the crashing thread lies in a module whose symbols were
/// looked for and missing.
fn crashing_thread_symbolicated(report: &ProcessedReport) -> bool {
    let missing: std::collections::BTreeSet<&str> = report
        .modules
        .iter()
        .filter(|m| m.missing_symbols)
        .map(|m| m.filename.as_str())
        .collect();
    report.crashing_thread.as_ref().is_some_and(|thread| {
        thread
            .frames
            .iter()
            .all(|f| f.module.as_deref().is_none_or(|m| !missing.contains(m)))
    })
}

/// An issue title: the signature, with the crash reason in front when known.
fn title(report: &ProcessedReport) -> String {
    match &report.crash_reason {
        Some(reason) => format!("{reason} in {}", report.signature),
        None => report.signature.clone(),
    }
}
