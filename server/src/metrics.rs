//! Counters for `/metrics`, in the Prometheus text exposition format.
//!
//! Every stage counts into the one [`Metrics`] in the app state
//! (`state.metrics()`): ingest calls [`Metrics::ingested`] / [`Metrics::rejected`],
//! the pipeline [`Metrics::processed`] / [`Metrics::job_error`], deletion
//! [`Metrics::deleted`], the webhook deliverer [`Metrics::webhook`] /
//! [`Metrics::outbox`]; ingest and the pipeline time their [`Stage`]s with a
//! [`StageTimer`]. The queue depth and the SQLite writer's use by each
//! [`WriterUser`] ([`WriterUses`]) from the index, and the symbol caches'
//! figures (from `mayday_symbols::Symbols::cache_stats`), are read at scrape
//! time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the processing-time histogram buckets.
const PROCESSING_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How much the SQLite index's one writer connection was used (read from the
/// index at scrape time): every write queues for it, so a writer held nearly
/// all the time is what limits writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterUse {
    /// Times it was taken from its pool (a transaction, or a statement alone).
    pub uses: u64,
    /// The time it was held, summed.
    pub held: Duration,
}

/// Who took the SQLite index's writer: the label (`by`) of its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterUser {
    /// Recording uploads (the index's intake).
    Intake,
    /// The processing workers: claims and finishes.
    Jobs,
    /// Everything else: triage, deletions, sweeps, webhooks.
    Other,
}

impl WriterUser {
    /// Every user, in the order of [`WriterUses`].
    pub const ALL: [WriterUser; 3] = [WriterUser::Intake, WriterUser::Jobs, WriterUser::Other];

    /// The label's value.
    pub fn name(self) -> &'static str {
        match self {
            WriterUser::Intake => "intake",
            WriterUser::Jobs => "jobs",
            WriterUser::Other => "other",
        }
    }

    /// The place of this user in [`WriterUses`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The SQLite writer's use by each of its users ([`WriterUser::ALL`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterUses(pub [WriterUse; 3]);

impl WriterUses {
    /// The use by `user`.
    pub fn by(&self, user: WriterUser) -> WriterUse {
        self.0[user.index()]
    }

    /// The use by all its users together.
    pub fn total(&self) -> WriterUse {
        self.0
            .iter()
            .fold(WriterUse::default(), |sum, u| WriterUse {
                uses: sum.uses + u.uses,
                held: sum.held + u.held,
            })
    }
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    ingested: AtomicU64,
    rejected: Counts,
    processed: AtomicU64,
    processing_micros: AtomicU64,
    /// Counts per bucket of [`PROCESSING_BUCKETS`] (not cumulative; summed when
    /// rendered).
    processing_buckets: [AtomicU64; PROCESSING_BUCKETS.len()],
    deleted: Counts,
    throttled: Counts,
    summaries: Counts,
    webhooks: Counts,
    processed_puts: Counts,
    /// Webhook events waiting in the outbox and failed there, as the deliverer
    /// last counted them.
    outbox_waiting: AtomicU64,
    outbox_failed: AtomicU64,
    job_errors: AtomicU64,
    /// Per [`Stage`]: how many times it was timed, and the microseconds it took.
    stages: [(AtomicU64, AtomicU64); Stage::ALL.len()],
}

/// A step of ingest or processing, timed for `/metrics`
/// (`mayday_stage_seconds{stage="…"}`) so the slowest one is visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Ingest: reading the request body (the dump is spooled to a file).
    Receive,
    /// Ingest: waiting for scrubbing memory, reading the spooled dump back, and
    /// scrubbing it and the annotations.
    Scrub,
    /// Ingest: encrypting the dump and its metadata under the report's data key.
    Seal,
    /// Ingest: writing the sealed blobs durably to the object store.
    Store,
    /// Ingest: index writes (the wrapped data key; the report row and its job).
    Index,
    /// Processing: reading the report's row, key, dump and metadata.
    Load,
    /// Processing: stackwalking and symbolication.
    Process,
    /// Processing: storing the processed report (and the rewritten dump) and
    /// recording it in the index.
    Finalize,
}

impl Stage {
    /// Every stage, in the order a report goes through them.
    pub const ALL: [Stage; 8] = [
        Stage::Receive,
        Stage::Scrub,
        Stage::Seal,
        Stage::Store,
        Stage::Index,
        Stage::Load,
        Stage::Process,
        Stage::Finalize,
    ];

    /// The `stage` label.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Receive => "receive",
            Stage::Scrub => "scrub",
            Stage::Seal => "seal",
            Stage::Store => "store",
            Stage::Index => "index",
            Stage::Load => "load",
            Stage::Process => "process",
            Stage::Finalize => "finalize",
        }
    }
}

/// Times consecutive stages: each [`StageTimer::done`] records the time since the
/// timer was made or since the previous `done`.
#[derive(Debug)]
pub struct StageTimer<'a> {
    metrics: &'a Metrics,
    last: Instant,
}

impl StageTimer<'_> {
    /// Records the time since the last mark as `stage`, and marks now.
    pub fn done(&mut self, stage: Stage) {
        let now = Instant::now();
        self.metrics.stage(stage, now - self.last);
        self.last = now;
    }
}

/// Counts by one label's value.
#[derive(Debug, Default)]
struct Counts(Mutex<BTreeMap<&'static str, u64>>);

impl Counts {
    fn add(&self, value: &'static str, n: u64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(value).or_default() += n;
    }

    /// Writes the counter family `name` with one sample per `label` value.
    fn render(&self, out: &mut String, name: &str, help: &str, label: &str) {
        let name = family(out, name, "counter", help);
        for (value, n) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }
}

impl Metrics {
    /// One report accepted.
    pub fn ingested(&self) {
        self.ingested.fetch_add(1, Ordering::Relaxed);
    }

    /// One upload rejected, by reason (`IngestError::name`).
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.add(reason, 1);
    }

    /// One job run, and how long it took.
    pub fn processed(&self, took: Duration) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        self.processing_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        if let Some(i) = PROCESSING_BUCKETS.iter().position(|le| seconds <= *le) {
            self.processing_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One processing job attempt ended in an error (it is retried, or the report
    /// fails for good after the last attempt).
    pub fn job_error(&self) {
        self.job_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// `stage` took `took` once.
    pub fn stage(&self, stage: Stage, took: Duration) {
        let (count, micros) = &self.stages[stage as usize];
        count.fetch_add(1, Ordering::Relaxed);
        micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// A timer of consecutive stages, starting now.
    pub fn timer(&self) -> StageTimer<'_> {
        StageTimer {
            metrics: self,
            last: Instant::now(),
        }
    }

    /// `n` reports deleted, and why: `resolved`, `user_request`, `retention`,
    /// `issue_deleted`, ….
    pub fn deleted(&self, reason: &'static str, n: u64) {
        self.deleted.add(reason, n);
    }

    /// One upload a throttle rule or the per-sender rate limit decided on, by
    /// outcome (`throttle::Outcome::name`).
    pub fn throttled(&self, outcome: &'static str) {
        self.throttled.add(outcome, 1);
    }

    /// One crash-site summary answered, by answer (`send`, `counted`, `fixed`).
    pub fn summary(&self, answer: &'static str) {
        self.summaries.add(answer, 1);
    }

    /// One webhook delivery attempt, by outcome (`delivered`, `retried`,
    /// `failed`).
    pub fn webhook(&self, outcome: &'static str) {
        self.webhooks.add(outcome, 1);
    }

    /// One processed report stored, by how (`lazy`: not waited for on the
    /// disk, it can be made again; `durable`).
    pub fn processed_put(&self, put: &'static str) {
        self.processed_puts.add(put, 1);
    }

    /// The webhook events waiting in the outbox and failed there.
    pub fn outbox(&self, waiting: u64, failed: u64) {
        self.outbox_waiting.store(waiting, Ordering::Relaxed);
        self.outbox_failed.store(failed, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter, plus `queue_depth` when
    /// the index answered and the symbol caches' figures.
    pub fn render(
        &self,
        queue_depth: Option<i64>,
        symbols: Option<&mayday_symbols::CacheStats>,
        writer: Option<WriterUses>,
    ) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, help, value) in [
            (
                "mayday_reports_ingested_total",
                "Reports accepted by the upload endpoint.",
                &self.ingested,
            ),
            (
                "mayday_jobs_run_total",
                "Processing jobs run by this process.",
                &self.processed,
            ),
            (
                "mayday_job_errors_total",
                "Processing job attempts that ended in an error (retried, or failed after the last attempt).",
                &self.job_errors,
            ),
        ] {
            single(&mut out, name, "counter", help, load(value));
        }
        self.rejected.render(
            &mut out,
            "mayday_uploads_rejected_total",
            "Uploads refused, by reason.",
            "reason",
        );
        self.throttled.render(
            &mut out,
            "mayday_throttled_total",
            "Uploads a throttle rule or the per-sender rate limit decided on, by outcome.",
            "outcome",
        );
        self.summaries.render(
            &mut out,
            "mayday_crash_site_summaries_total",
            "Crash-site summaries answered, by answer: `send` asked for the dump, \
             `counted` and `fixed` counted the crash without one.",
            "answer",
        );
        self.webhooks.render(
            &mut out,
            "mayday_webhook_deliveries_total",
            "Webhook delivery attempts by this process, by outcome: `delivered` (2xx), \
             `retried` (to be tried again), `failed` (attempts used up).",
            "outcome",
        );
        self.processed_puts.render(
            &mut out,
            "mayday_processed_puts_total",
            "Processed reports stored by this process, by put: `lazy` (not waited for \
             on the disk: the report keeps its stack key and is made again if lost) or \
             `durable`.",
            "put",
        );
        for (name, help, value) in [
            (
                "mayday_webhook_outbox_waiting",
                "Webhook events waiting in the outbox to be delivered.",
                &self.outbox_waiting,
            ),
            (
                "mayday_webhook_outbox_failed",
                "Webhook events whose delivery failed for good, kept in the outbox.",
                &self.outbox_failed,
            ),
        ] {
            single(&mut out, name, "gauge", help, load(value));
        }

        let stages = family(
            &mut out,
            "mayday_stage_seconds",
            "summary",
            "Time spent in each stage of ingest and processing.",
        );
        for (stage, (count, micros)) in Stage::ALL.iter().zip(&self.stages) {
            let name = stage.name();
            let _ = writeln!(
                out,
                "{stages}_sum{{stage=\"{name}\"}} {:.6}",
                load(micros) as f64 / 1e6
            );
            let _ = writeln!(out, "{stages}_count{{stage=\"{name}\"}} {}", load(count));
        }

        let seconds = family(
            &mut out,
            "mayday_processing_seconds",
            "histogram",
            "Time to process one report.",
        );
        let mut cumulative = 0;
        for (le, bucket) in PROCESSING_BUCKETS.iter().zip(&self.processing_buckets) {
            cumulative += load(bucket);
            let _ = writeln!(out, "{seconds}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{seconds}_bucket{{le=\"+Inf\"}} {}",
            load(&self.processed)
        );
        let _ = writeln!(
            out,
            "{seconds}_sum {:.6}",
            load(&self.processing_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "{seconds}_count {}", load(&self.processed));

        self.deleted.render(
            &mut out,
            "mayday_reports_deleted_total",
            "Reports deleted, by reason.",
            "reason",
        );

        if let Some(stats) = symbols {
            let hits = family(
                &mut out,
                "mayday_symbol_cache_hits_total",
                "counter",
                "Symbol lookups answered by a cache, by cache.",
            );
            for (cache, n) in [
                ("memory", stats.memory_hits),
                ("disk", stats.disk_hits),
                ("negative", stats.negative_hits),
            ] {
                let _ = writeln!(out, "{hits}{{cache=\"{cache}\"}} {n}");
            }
            for (name, kind, help, value) in [
                (
                    "mayday_symbol_store_fetches_total",
                    "counter",
                    "Symbol files fetched from the object store (cache misses).",
                    stats.store_fetches,
                ),
                (
                    "mayday_symbol_cache_evictions_total",
                    "counter",
                    "Indexed symbol files evicted from memory.",
                    stats.evictions,
                ),
                (
                    "mayday_symbol_cache_memory_bytes",
                    "gauge",
                    "Estimated heap size of the indexed symbol files held.",
                    stats.memory_bytes,
                ),
                (
                    "mayday_symbol_cache_disk_bytes",
                    "gauge",
                    "Bytes of symbol files in the disk cache.",
                    stats.disk_bytes,
                ),
            ] {
                single(&mut out, name, kind, help, value);
            }
        }

        if let Some(writer) = writer {
            let figures: [WriterFigure; 2] = [
                (
                    "mayday_index_writer_uses_total",
                    "Times the SQLite index's one writer connection was taken for a write, by whom.",
                    |by| by.uses as f64,
                ),
                (
                    "mayday_index_writer_held_seconds_total",
                    "Time the SQLite index's writer was held, summed, by whom: when the sum grows as fast as time passes, writes queue for it.",
                    |by| by.held.as_secs_f64(),
                ),
            ];
            for (name, help, value) in figures {
                let name = family(&mut out, name, "counter", help);
                for user in WriterUser::ALL {
                    let figure = value(writer.by(user));
                    let _ = writeln!(out, "{name}{{by=\"{}\"}} {figure}", user.name());
                }
            }
        }
        if let Some(depth) = queue_depth {
            single(
                &mut out,
                "mayday_queue_depth",
                "gauge",
                "Processing jobs waiting or running.",
                depth,
            );
        }
        out
    }
}

/// A family of the writer's figures by user: its name, its help, the figure.
type WriterFigure = (&'static str, &'static str, fn(WriterUse) -> f64);

/// Writes the HELP and TYPE lines of a metric family and returns its name.
fn family<'a>(out: &mut String, name: &'a str, kind: &str, help: &str) -> &'a str {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    name
}

/// Writes a metric family of one unlabelled `value`.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let name = family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_in_prometheus_text_format() {
        let m = Metrics::default();
        m.ingested();
        m.rejected("too_large");
        m.rejected("too_large");
        m.processed(Duration::from_millis(30));
        m.processed(Duration::from_secs(60));
        m.deleted("resolved", 3);
        m.throttled("rate_limited");
        m.job_error();
        m.webhook("retried");
        m.outbox(2, 1);
        m.stage(Stage::Scrub, Duration::from_millis(2));
        let mut timer = m.timer();
        timer.done(Stage::Scrub);
        let stats = mayday_symbols::CacheStats {
            memory_hits: 5,
            disk_hits: 2,
            store_fetches: 3,
            ..Default::default()
        };
        let jobs = WriterUse {
            uses: 7,
            held: Duration::from_millis(1500),
        };
        let mut writer = WriterUses::default();
        writer.0[WriterUser::Jobs.index()] = jobs;
        let text = m.render(Some(4), Some(&stats), Some(writer));
        for line in [
            "mayday_reports_ingested_total 1",
            "mayday_uploads_rejected_total{reason=\"too_large\"} 2",
            "mayday_jobs_run_total 2",
            "mayday_job_errors_total 1",
            "mayday_stage_seconds_count{stage=\"scrub\"} 2",
            "mayday_stage_seconds_count{stage=\"finalize\"} 0",
            "mayday_processing_seconds_bucket{le=\"0.01\"} 0",
            "mayday_processing_seconds_bucket{le=\"0.05\"} 1",
            "mayday_processing_seconds_bucket{le=\"30\"} 1",
            "mayday_processing_seconds_bucket{le=\"+Inf\"} 2",
            "mayday_processing_seconds_sum 60.030000",
            "mayday_processing_seconds_count 2",
            "mayday_reports_deleted_total{reason=\"resolved\"} 3",
            "mayday_throttled_total{outcome=\"rate_limited\"} 1",
            "mayday_symbol_cache_hits_total{cache=\"memory\"} 5",
            "mayday_symbol_cache_hits_total{cache=\"disk\"} 2",
            "mayday_symbol_store_fetches_total 3",
            "mayday_queue_depth 4",
            "mayday_index_writer_uses_total{by=\"jobs\"} 7",
            "mayday_index_writer_uses_total{by=\"intake\"} 0",
            "mayday_index_writer_held_seconds_total{by=\"jobs\"} 1.5",
            "mayday_index_writer_held_seconds_total{by=\"other\"} 0",
            "mayday_webhook_deliveries_total{outcome=\"retried\"} 1",
            "mayday_webhook_outbox_waiting 2",
            "mayday_webhook_outbox_failed 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        // Every sample belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{name} has a TYPE line"
            );
        }
    }
}
