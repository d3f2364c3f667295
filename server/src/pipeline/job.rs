//! One claimed job, start to end, in three steps: [`load`] the report's dump and
//! metadata, [`process`] the dump into a [`ProcessedReport`] (first processing and
//! processing again alike), and [`finalize`]: store the processed report and
//! record it in the index, or record why the report failed.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mayday_report::scrub::{ScrubSummary, TextAttachment};
use mayday_symbols::Symbols;
use object_store::path::Path;
use tokio::sync::watch;

use super::Pipeline;
use super::memory::Held;
use super::process::{OpenedDump, ProcessError, process_opened, scrub_report};
use super::report::{ProcessedReport, Thread};
use super::signature::Signature;
use super::stored;
use super::symbols_retry;
use crate::crypto::{self, SearchKey};
use crate::index::{
    ClaimNext, Index, IndexError, Job, JobReport, ProcessedOutcome, ReportRow, ReportState, now_ms,
};
use crate::metrics::Stage;
use crate::report_id::ReportId;
use crate::vault::{self, RawMeta, RawStack, RawUpload, ReportKeys, Vault, VaultError};

/// Why a job could not be finished this time: transient, so it is retried.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The report vault (blob store or data keys) failed.
    #[error("storage: {0}")]
    Storage(#[from] VaultError),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// Stored metadata does not parse.
    #[error("metadata: {0}")]
    Meta(#[from] serde_json::Error),
    /// A symbol file could not be read from the store.
    #[error("symbol store unavailable")]
    SymbolStore,
}

impl JobError {
    /// Whether another worker claimed the job again meanwhile (this claim's
    /// lease ran out): the job is that worker's now, not to be retried here.
    pub fn is_claim_lost(&self) -> bool {
        matches!(self, JobError::Index(IndexError::ClaimLost(_)))
    }
}

/// Why a report ends `failed`, for good.
#[derive(Debug)]
pub enum Failure {
    /// The dump cannot be processed.
    Unprocessable(ProcessError),
    /// Processing took longer than the configured timeout.
    TimedOut,
    /// Processing panicked.
    Panicked,
    /// Transient errors went on through every attempt; the last one.
    GaveUp(JobError),
    /// The job was claimed `attempts` times and never finished: its worker died
    /// or hung each time (a dump that crashes the process).
    Abandoned {
        /// How many times it was claimed before.
        attempts: i64,
    },
}

impl Failure {
    /// The report's `failure` as the index stores it and the API shows it: the one
    /// place these texts are written.
    pub fn text(&self) -> String {
        match self {
            Failure::Unprocessable(e) => e.to_string(),
            Failure::TimedOut => "timeout".to_owned(),
            Failure::Panicked => "processing panicked".to_owned(),
            Failure::GaveUp(e) => format!("gave up: {e}"),
            Failure::Abandoned { attempts } => {
                format!("gave up: not finished in {attempts} attempts")
            }
        }
    }

    /// A stable name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Failure::Unprocessable(e) => e.name(),
            Failure::TimedOut => "timeout",
            Failure::Panicked => "panic",
            Failure::GaveUp(_) => "gave_up",
            Failure::Abandoned { .. } => "abandoned",
        }
    }
}

/// The next job a worker claims in the transaction that finishes its current
/// one ([`ClaimNext`]): asked for by the finish (processed, failed, retried),
/// at most once per job, and not once the worker is told to stop — a job
/// claimed then would wait out its lease. Where a job ends some other way (its
/// report gone, an error) nothing is claimed and the worker claims on its own.
#[derive(Debug)]
pub struct Handoff<'a> {
    /// The worker and its lease; `None`: claim nothing.
    claim: Option<ClaimNext<'a>>,
    /// True once the worker should stop.
    stop: Option<&'a watch::Receiver<bool>>,
    /// The job claimed.
    next: Option<Job>,
}

impl<'a> Handoff<'a> {
    /// Claims as `worker` with `lease`, unless `stop` is true by then.
    pub fn new(worker: &'a str, lease: Duration, stop: &'a watch::Receiver<bool>) -> Handoff<'a> {
        Handoff {
            claim: Some(ClaimNext { worker, lease }),
            stop: Some(stop),
            next: None,
        }
    }

    /// Claims nothing.
    pub fn none() -> Handoff<'static> {
        Handoff {
            claim: None,
            stop: None,
            next: None,
        }
    }

    /// The claim for a finish to make: none when one was made, or the worker
    /// is stopping.
    pub fn request(&self) -> Option<ClaimNext<'a>> {
        let stopping = self.stop.is_some_and(|stop| *stop.borrow());
        if self.next.is_some() || stopping {
            return None;
        }
        self.claim
    }

    /// Keeps the job a finish claimed.
    pub(super) fn claimed(&mut self, job: Option<Job>) {
        if job.is_some() {
            self.next = job;
        }
    }

    /// The job claimed, if any: the worker's to run next.
    pub fn into_next(self) -> Option<Job> {
        self.next
    }
}

/// What processing a dump gave.
pub enum Outcome {
    /// The processed report, and the per-report symbol session it ran with.
    Processed(Box<ProcessedReport>, Symbols),
    /// Not processed again: the report an earlier run stored when it dropped the
    /// dump's stack memory (`stored_final`).
    Final(Box<ProcessedReport>),
    /// The dump cannot be processed, or not in time.
    Failed(Failure),
}

/// A report ready to be processed: its row, keys, dump and metadata.
pub struct Loaded {
    row: ReportRow,
    keys: ReportKeys,
    raw_key: Path,
    meta_key: Path,
    dump: Bytes,
    /// Where the dump's stack memory is kept.
    stack: RawStack,
    /// The upload's metadata as stored (kept with the dump when it is rewritten).
    meta: Option<Bytes>,
    annotations: BTreeMap<String, String>,
    scrubbed: ScrubSummary,
    /// The text attachments kept with the upload, scrubbed.
    text_attachments: Vec<TextAttachment>,
    /// The deployment's symbol upload count when the job started.
    uploads: u64,
    /// The job's share of the workers' memory budget, held until it ends.
    memory: Held,
}

/// Runs one claimed job to its end: processed, failed, or gone; the finish
/// claims the next job as `handoff` asks.
pub async fn run(
    pipeline: &Pipeline,
    job: &Job,
    handoff: &mut Handoff<'_>,
) -> Result<(), JobError> {
    let mut timer = pipeline.metrics.timer();
    let Some(mut loaded) = load(pipeline, job).await? else {
        return Ok(());
    };
    timer.done(Stage::Load);
    let outcome = match stored_final(pipeline, job, &loaded).await? {
        Some(report) => Outcome::Final(report),
        None => process(pipeline, &mut loaded).await,
    };
    timer.done(Stage::Process);
    let finished = finalize(pipeline, job, loaded, outcome, handoff).await;
    timer.done(Stage::Finalize);
    finished
}

/// The scrub count of the stack memory bytes dropped from a report's stored dump.
const STACK_MEMORY_DROPPED: &str = "stack_memory_bytes_dropped";

/// A report whose stack memory was dropped is final: its dump can no longer be
/// walked. A job run again for it (a report queued again, a retry, a lease that
/// ran out) finds the report stored when the stack memory was dropped, and
/// records that rather than a walk of the stripped dump.
///
/// With the stack memory sealed apart, it is dropped by destroying its key in
/// the transaction that records the report, after the report is stored: a
/// destroyed stack key means a final report is stored. A dump stored before
/// keeps its stack memory inline and loses it by a rewrite, which [`finalize`]
/// does after it stored the report: there the stored report says whether it
/// was final (looked for only when the job or the report was tried before).
async fn stored_final(
    pipeline: &Pipeline,
    job: &Job,
    loaded: &Loaded,
) -> Result<Option<Box<ProcessedReport>>, JobError> {
    let inline = match loaded.stack {
        RawStack::Restored { .. } => return Ok(None),
        RawStack::Destroyed => false,
        RawStack::InDump => true,
    };
    if inline && job.tries() <= 1 && loaded.row.state == ReportState::Queued {
        return Ok(None);
    }
    let key = vault::processed_key(&loaded.row.id);
    let Some(bytes) = pipeline.vault.get(&key, &loaded.keys.data).await? else {
        return Ok(None);
    };
    let report: ProcessedReport = stored::decode(&bytes)?;
    let dropped = !inline || report.scrub.count(STACK_MEMORY_DROPPED) > 0;
    Ok(dropped.then(|| Box::new(report)))
}

/// Reads the report's row, keys, dump (with its stack memory while it is kept)
/// and metadata. `None` when the report is gone (deleted while queued); its job
/// is then removed.
pub async fn load(pipeline: &Pipeline, job: &Job) -> Result<Option<Loaded>, JobError> {
    let index = &pipeline.index;
    let vault = &pipeline.vault;
    let Some(JobReport {
        row,
        data_key,
        stack_key,
        symbol_uploads: uploads,
    }) = index.job_report(&job.report_id).await?
    else {
        // Deleted while queued — or while an earlier attempt of this job ran and
        // its worker died after storing the processed report: remove that too.
        vault.delete(&vault::processed_key(&job.report_id)).await?;
        index.delete_job(job.id).await?;
        return Ok(None);
    };
    let raw_key = Path::from(row.raw_key.as_str());
    // A report whose data key is gone is deleted, whatever copies remain.
    let Some(data_key) = data_key else {
        index.delete_job(job.id).await?;
        return Ok(None);
    };
    let keys = vault.unwrap_keys(&row.id, &data_key, stack_key.as_ref())?;
    let meta_key = Path::from(row.meta_key.as_str());
    // The job's share of the memory budget, held before the dump is read.
    let admit = |size| pipeline.memory.hold(size);
    let Some((RawUpload { dump, meta, stack }, memory)) = vault
        .get_raw_admitted(&raw_key, &meta_key, &keys, admit)
        .await?
    else {
        index.delete_job(job.id).await?;
        return Ok(None);
    };
    let parsed: Option<RawMeta> = match &meta {
        Some(bytes) => Some(serde_json::from_slice(bytes)?),
        None => None,
    };
    let (annotations, scrubbed, text_attachments) = parsed
        .map(|m| (m.annotations, m.scrub, m.text_attachments))
        .unwrap_or_default();
    // Symbols uploaded through any server process since this one last looked: what
    // its caches remember as missing may be there now.
    pipeline.symbols.sync_uploads(uploads);
    Ok(Some(Loaded {
        row,
        keys,
        raw_key,
        meta_key,
        dump,
        stack,
        meta,
        annotations,
        scrubbed,
        text_attachments,
        uploads,
        memory,
    }))
}

/// Processes the dump in a fresh symbol session, within the timeout. A report
/// processed before that still lacks symbols the store has now is processed once
/// more with them ([`symbols_retry`]).
///
/// Once the dump is open, the job's memory share grows by what its walk can
/// make ([`MemoryBudget::grow`](super::MemoryBudget::grow)), waited for outside
/// the timeout. A dump that can unwind into more than [`WALKED_BESIDE`] frames
/// is walked beside the runtime's threads ([`walk_beside_the_runtime`]).
pub async fn process(pipeline: &Pipeline, loaded: &mut Loaded) -> Outcome {
    let opened = match OpenedDump::open(&loaded.dump) {
        Ok(opened) => opened,
        Err(e) => return Outcome::Failed(Failure::Unprocessable(e)),
    };
    pipeline
        .memory
        .grow(&mut loaded.memory, opened.frames())
        .await;
    let loaded = &*loaded;
    if opened.frames() > WALKED_BESIDE
        && let Some(outcome) = walk_beside_the_runtime(pipeline, loaded, &opened)
    {
        return outcome;
    }
    walk(pipeline, loaded, &opened).await
}

/// The frames (of [`OpenedDump::frames`], the bound) above which a dump is
/// walked beside the runtime's threads. The shared test data dumps are all
/// below it (Firefox on Android the highest, 57,676: 14 to 18 ms of
/// processing in a release build), and stay on the runtime's thread: a walk
/// handed over costs more (from 1,000 frames, eight of the thirteen went
/// beside, and the drain's server CPU a report rose by a fifth). Dumps made
/// to unwind into more (up to [`MAX_FRAMES`](super::unwind_bound::MAX_FRAMES)
/// words, hundreds of milliseconds each) do not hold a runtime thread.
pub const WALKED_BESIDE: u64 = 1 << 16;

/// [`walk`]s the dump on this thread taken out of the runtime's workers
/// ([`tokio::task::block_in_place`]), as a walk does not yield while it
/// computes: the runtime goes on serving requests and other jobs on another
/// thread meanwhile (run as a task, two long walks on two cores stopped every
/// request). `None` on a current-thread runtime (tests), which cannot hand
/// its thread over: the walk is then awaited as any.
///
/// Not async, so that the future of the common walk, awaited in [`process`],
/// does not carry this one's beside it.
fn walk_beside_the_runtime(
    pipeline: &Pipeline,
    loaded: &Loaded,
    opened: &OpenedDump<'_>,
) -> Option<Outcome> {
    let runtime = tokio::runtime::Handle::current();
    if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return None;
    }
    Some(tokio::task::block_in_place(|| {
        runtime.block_on(walk(pipeline, loaded, opened))
    }))
}

/// The walk of an opened dump, and once more where symbols arrived for a
/// report processed before ([`symbols_retry`]).
async fn walk(pipeline: &Pipeline, loaded: &Loaded, opened: &OpenedDump<'_>) -> Outcome {
    let first = process_once(pipeline, loaded, opened).await;
    let processed_before = loaded.row.state != ReportState::Queued;
    if let Outcome::Processed(_, session) = &first
        && processed_before
        && symbols_retry::forget_arrived(&pipeline.symbols, &session.missing()).await
    {
        return process_once(pipeline, loaded, opened).await;
    }
    first
}

async fn process_once(pipeline: &Pipeline, loaded: &Loaded, opened: &OpenedDump<'_>) -> Outcome {
    #[cfg(test)]
    if tests::PANIC_ON.lock().unwrap().as_ref() == Some(&loaded.row.id) {
        panic!("a dump that panics the processor");
    }
    #[cfg(test)]
    tests::stall_if_asked(&loaded.row.id);
    // A session per report: the shared caches, this report's own statistics.
    let session = pipeline.symbols.session();
    let id = loaded.row.id.to_string();
    let processing = process_opened(
        &id,
        opened,
        loaded.annotations.clone(),
        &pipeline.scrub.annotations,
        &pipeline.signatures,
        &session,
    );
    match tokio::time::timeout(pipeline.config.process_timeout, processing).await {
        Ok(Ok(report)) => Outcome::Processed(Box::new(report), session),
        Ok(Err(e)) => Outcome::Failed(Failure::Unprocessable(e)),
        Err(_) => Outcome::Failed(Failure::TimedOut),
    }
}

/// Stores the processed report and records it (grouped into its issue), or
/// records the failure; either finishes the job, and claims the next as
/// `handoff` asks.
pub async fn finalize(
    pipeline: &Pipeline,
    job: &Job,
    loaded: Loaded,
    outcome: Outcome,
    handoff: &mut Handoff<'_>,
) -> Result<(), JobError> {
    let (mut report, resumed) = match outcome {
        Outcome::Failed(failure) => return fail(&pipeline.index, job, &failure, handoff).await,
        // A symbol file that could not be read is not a missing one: try again
        // later rather than filing the report without those symbols.
        Outcome::Processed(_, session) if session.had_store_errors() => {
            return Err(JobError::SymbolStore);
        }
        Outcome::Processed(report, session) => {
            drop(session);
            (report, false)
        }
        Outcome::Final(report) => (report, true),
    };
    let index = &pipeline.index;
    let vault = &pipeline.vault;
    // Not shared with the `Loaded { … }` of `load`: that one builds it, this takes it apart.
    let Loaded {
        row,
        keys,
        raw_key,
        meta_key,
        dump,
        stack,
        meta,
        scrubbed,
        text_attachments,
        uploads,
        ..
    } = loaded;
    if !resumed {
        report.scrub = scrubbed;
        report.text_attachments = text_attachments;
        scrub_report(&mut report, &pipeline.scrub.annotations);
    }
    // Stack memory is only kept while the report may need reprocessing: until
    // every frame of the crashing thread (what the signature is made of) is
    // symbolicated. Once it is dropped, the report can no longer be reprocessed,
    // so it stops waiting for symbols.
    let drop_now =
        !resumed && crashing_thread_symbolicated(&report) && !pipeline.scrub.keep_stack_memory;
    let mut drop_stack_key = false;
    let mut stripped = None;
    match &stack {
        // Sealed apart: its key is destroyed with the rest of what is recorded.
        RawStack::Restored { bytes } if drop_now => {
            report.scrub.add(STACK_MEMORY_DROPPED, *bytes);
            report.missing_symbols.clear();
            drop_stack_key = true;
        }
        // Inline (stored before stack keys): the dump is rewritten without it.
        // (Resumed: stripped again, in case the earlier run failed before it
        // stored the stripped dump.)
        RawStack::InDump if drop_now || resumed => {
            let mut dump = dump.to_vec();
            if let Ok(bytes) = mayday_report::scrub::drop_stack_memory(&mut dump) {
                if !resumed {
                    report.scrub.add(STACK_MEMORY_DROPPED, bytes);
                    report.missing_symbols.clear();
                }
                stripped = Some(dump);
            }
        }
        _ => {}
    }
    // The report first, then the stripped dump or the stack key's end: see
    // `stored_final`.
    let key = vault::processed_key(&row.id);
    // Stored (compressed as it is serialized) behind room for the seal's
    // header and sealed where it lies: never copied.
    let plain = stored::encode(&report, crypto::SEAL_HEADROOM)?;
    let sealed = Vault::seal_in_place(&key, &keys.data, plain);
    let put = processed_put(&stack, drop_stack_key, row.state);
    match put {
        Put::Lazy => vault.put_sealed_lazy(sealed).await?,
        Put::Durable => vault.put_sealed(sealed).await?,
    }
    pipeline.metrics.processed_put(put.name());
    if let Some(dump) = stripped {
        vault
            .put_raw_dump(&raw_key, &meta_key, &keys.data, &dump, meta.as_deref())
            .await?;
    }
    let mut outcome = index_outcome(&report, &vault.keyring().current().search_key());
    outcome.drop_stack_key = drop_stack_key;
    let (recorded, next) =
        patiently(|| index.finish_processed_and_claim(job, &outcome, now_ms(), handoff.request()))
            .await?;
    handoff.claimed(next);
    // The job is finished and gone: what follows cannot fail it, nor retry it.
    match recorded {
        Some(issue) => {
            tracing::info!(report = %row.id, issue, "report processed");
            if let Err(e) = requeue_if_symbols_arrived(pipeline, &row.id, &outcome, uploads).await {
                tracing::warn!(report = %row.id, error = %e, "report processed; queueing it again for symbols uploaded meanwhile failed");
            }
        }
        None => {
            if let Err(e) = remove_leftovers(pipeline, [&key, &raw_key, &meta_key]).await {
                tracing::warn!(report = %row.id, error = %e, "report gone while processed; removing its blobs failed (the orphan sweep removes what is left)");
            }
        }
    }
    Ok(())
}

/// After a report's finish: symbols uploaded while it was processed (the
/// upload looked for reports lacking them before this one was recorded as
/// lacking anything) queue it again.
async fn requeue_if_symbols_arrived(
    pipeline: &Pipeline,
    id: &ReportId,
    outcome: &ProcessedOutcome,
    uploads: u64,
) -> Result<(), JobError> {
    #[cfg(test)]
    if tests::FAIL_AFTER_FINISH.lock().unwrap().as_ref() == Some(id) {
        return Err(JobError::SymbolStore);
    }
    let index = &pipeline.index;
    if !outcome.missing_symbols.is_empty() && patiently(|| index.symbol_uploads()).await? != uploads
    {
        patiently(|| index.enqueue_job(id, now_ms())).await?;
        pipeline.wake.wake();
    }
    Ok(())
}

/// After the finish of a report deleted (or dropped) while it was processed:
/// its blobs (`keys`, including a raw dump rewritten here) are removed, and the
/// index's WAL checkpointed, so that nothing of it is left behind.
async fn remove_leftovers(pipeline: &Pipeline, keys: [&Path; 3]) -> Result<(), JobError> {
    for key in keys {
        pipeline.vault.delete(key).await?;
    }
    pipeline.index.checkpoint().await?;
    Ok(())
}

/// How a processed report is put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Fsynced before the job finishes: the report cannot be made again.
    Durable,
    /// Not waited for on the disk ([`Vault::put_sealed_lazy`]):
    /// a power cut may cost it, and [`stored`] then makes it again.
    Lazy,
}

impl Put {
    /// Its name in `/metrics` (`mayday_processed_puts_total{put="…"}`).
    pub fn name(self) -> &'static str {
        match self {
            Put::Durable => "durable",
            Put::Lazy => "lazy",
        }
    }
}

/// How a processed report is put, from where its dump's stack memory is kept
/// (`stack`), whether this finish destroys the stack key, and the report's
/// state before this job. Lazily only when its stack key outlives this finish
/// (the raw upload can be walked into it again: [`super::stored`]) and it is
/// processed for the first time — processing again keeps the durable put, so
/// a power cut never brings back an older report beside the index's newer
/// record. Stacks inline in the dump (reports stored before stack keys) or
/// already destroyed: durably, as before.
pub fn processed_put(stack: &RawStack, drop_stack_key: bool, state: ReportState) -> Put {
    match stack {
        RawStack::Restored { .. } if !drop_stack_key && state == ReportState::Queued => Put::Lazy,
        _ => Put::Durable,
    }
}

/// Marks the job's report failed for good and finishes the job, claiming the
/// next as `handoff` asks.
pub async fn fail(
    index: &Index,
    job: &Job,
    failure: &Failure,
    handoff: &mut Handoff<'_>,
) -> Result<(), JobError> {
    tracing::info!(report = %job.report_id, kind = failure.name(), error = %failure.text(), "report failed");
    let text = failure.text();
    let next = patiently(|| index.finish_failed_and_claim(job, &text, now_ms(), handoff.request()))
        .await?;
    handoff.claimed(next);
    Ok(())
}

/// How long an index write waits out a busy database before the job is retried.
const BUSY_PATIENCE: Duration = Duration::from_secs(30);

/// Runs an index write, waiting out a busy database (short jittered pauses, at
/// most `BUSY_PATIENCE`) rather than failing the job.
pub async fn patiently<T, F, Fut>(mut write: F) -> Result<T, IndexError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, IndexError>>,
{
    let deadline = Instant::now() + BUSY_PATIENCE;
    loop {
        match write().await {
            Err(e) if e.is_busy() && Instant::now() < deadline => {
                tokio::time::sleep(prompt_retry_delay()).await;
            }
            result => return result,
        }
    }
}

/// A short random pause (50–500 ms): for a first transient failure and a busy
/// index, so that workers that collided do not collide again.
pub fn prompt_retry_delay() -> Duration {
    Duration::from_millis(rand::Rng::random_range(&mut rand::rng(), 50..=500))
}

/// What the index records of a processed report (its annotations as tags under
/// `search`).
fn index_outcome(report: &ProcessedReport, search: &SearchKey) -> ProcessedOutcome {
    ProcessedOutcome {
        annotation_tags: report
            .annotations
            .iter()
            .map(|(key, value)| search.tag(key, value))
            .collect(),
        signature_hash: Signature::from_text(&report.signature).hash(),
        title: title(report),
        signature: report.signature.clone(),
        facts: report.facts.clone(),
        missing_symbols: report
            .missing_symbols
            .iter()
            .map(|m| (m.debug_file.clone(), m.debug_id.clone()))
            .collect(),
        sample_stack: report.crashing_thread.as_ref().map(Thread::stack_text),
        drop_stack_key: false,
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
pub(super) fn title(report: &ProcessedReport) -> String {
    match &report.facts.crash_reason {
        Some(reason) => format!("{reason} in {}", report.signature),
        None => report.signature.clone(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::{Mutex, mpsc};

    use super::{Put, processed_put};
    use crate::index::ReportState;
    use crate::report_id::ReportId;
    use crate::vault::RawStack;

    #[test]
    fn a_processed_report_is_put_lazily_only_while_its_stack_key_outlives_it() {
        let kept = RawStack::Restored { bytes: 10 };
        // First processing, the stack key kept: it can be made again.
        assert_eq!(processed_put(&kept, false, ReportState::Queued), Put::Lazy);
        // The finish destroys the stack key (fully symbolicated): durable.
        assert_eq!(
            processed_put(&kept, true, ReportState::Queued),
            Put::Durable
        );
        // Processed again: durable, so no older report comes back.
        for state in [ReportState::Processed, ReportState::Failed] {
            assert_eq!(processed_put(&kept, false, state), Put::Durable);
        }
        // No stack key (destroyed, or stacks inline in an older dump): durable.
        for stack in [RawStack::Destroyed, RawStack::InDump] {
            assert_eq!(
                processed_put(&stack, false, ReportState::Queued),
                Put::Durable
            );
        }
    }

    /// The report whose processing panics (a test hook for the worker's tests).
    pub static PANIC_ON: Mutex<Option<ReportId>> = Mutex::new(None);
    /// The report whose processing stalls its thread, as a walk does, without
    /// yielding: it says so on the sender, then waits for the receiver (a test
    /// hook likewise).
    #[allow(clippy::type_complexity)]
    pub static STALL_ON: Mutex<Option<(ReportId, mpsc::Sender<()>, mpsc::Receiver<()>)>> =
        Mutex::new(None);

    /// Stalls as [`STALL_ON`] asks, if it asks for `id`.
    pub(super) fn stall_if_asked(id: &ReportId) {
        let mut asked = STALL_ON.lock().unwrap();
        if asked.as_ref().is_some_and(|(stalled, ..)| stalled == id) {
            let (_, stalled, released) = asked.take().unwrap();
            drop(asked);
            stalled.send(()).unwrap();
            released.recv().unwrap();
        }
    }
    /// The report whose requeue after its finish fails (a test hook likewise).
    pub static FAIL_AFTER_FINISH: Mutex<Option<ReportId>> = Mutex::new(None);
}
