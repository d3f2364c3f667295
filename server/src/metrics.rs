//! Counters for `/metrics`, in the Prometheus text exposition format.
//!
//! Every stage counts into the one [`Metrics`] in the app state
//! (`state.metrics()`): ingest calls [`Metrics::ingested`] / [`Metrics::rejected`],
//! the pipeline [`Metrics::processed`], deletion [`Metrics::deleted`]. The queue
//! depth (from the index) and the symbol caches' figures (from
//! `mayday_symbols::Symbols::cache_stats`) are read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the processing-time histogram buckets.
const PROCESSING_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

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

    /// The Prometheus text exposition of every counter, plus `queue_depth` when
    /// the index answered and the symbol caches' figures.
    pub fn render(
        &self,
        queue_depth: Option<i64>,
        symbols: Option<&mayday_symbols::CacheStats>,
    ) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let ingested = family(
            &mut out,
            "mayday_reports_ingested_total",
            "counter",
            "Reports accepted by the upload endpoint.",
        );
        let _ = writeln!(out, "{ingested} {}", load(&self.ingested));

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

        let jobs = family(
            &mut out,
            "mayday_jobs_run_total",
            "counter",
            "Processing jobs run by this process.",
        );
        let _ = writeln!(out, "{jobs} {}", load(&self.processed));

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
                let name = family(&mut out, name, kind, help);
                let _ = writeln!(out, "{name} {value}");
            }
        }

        if let Some(depth) = queue_depth {
            let queue = family(
                &mut out,
                "mayday_queue_depth",
                "gauge",
                "Processing jobs waiting or running.",
            );
            let _ = writeln!(out, "{queue} {depth}");
        }
        out
    }
}

/// Writes the HELP and TYPE lines of a metric family and returns its name.
fn family<'a>(out: &mut String, name: &'a str, kind: &str, help: &str) -> &'a str {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    name
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
        let stats = mayday_symbols::CacheStats {
            memory_hits: 5,
            disk_hits: 2,
            store_fetches: 3,
            ..Default::default()
        };
        let text = m.render(Some(4), Some(&stats));
        for line in [
            "mayday_reports_ingested_total 1",
            "mayday_uploads_rejected_total{reason=\"too_large\"} 2",
            "mayday_jobs_run_total 2",
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
