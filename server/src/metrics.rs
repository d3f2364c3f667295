//! Counters for `/metrics`, in the Prometheus text exposition format.
//!
//! Every stage counts into the one [`Metrics`] in the app state
//! (`state.metrics()`): ingest calls [`Metrics::ingested`] / [`Metrics::rejected`],
//! the pipeline [`Metrics::processed`] and [`Metrics::symbol_cache`], deletion
//! [`Metrics::deleted`]. The queue depth is read from the index at scrape time.

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
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    processed: AtomicU64,
    processing_micros: AtomicU64,
    /// Counts per bucket of [`PROCESSING_BUCKETS`] (not cumulative; summed when
    /// rendered).
    processing_buckets: [AtomicU64; PROCESSING_BUCKETS.len()],
    deleted: Mutex<BTreeMap<&'static str, u64>>,
    symbol_cache_hits: AtomicU64,
    symbol_cache_misses: AtomicU64,
}

impl Metrics {
    /// One report accepted.
    pub fn ingested(&self) {
        self.ingested.fetch_add(1, Ordering::Relaxed);
    }

    /// One upload rejected, by reason (`IngestError::name`).
    pub fn rejected(&self, reason: &'static str) {
        let mut map = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(reason).or_default() += 1;
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
        let mut map = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(reason).or_default() += n;
    }

    /// One symbol file lookup answered from a cache (`hit`) or not.
    pub fn symbol_cache(&self, hit: bool) {
        if hit {
            self.symbol_cache_hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.symbol_cache_misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition of every counter, plus `queue_depth` when
    /// the index answered.
    pub fn render(&self, queue_depth: Option<i64>) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let ingested = family(
            &mut out,
            "mayday_reports_ingested_total",
            "counter",
            "Reports accepted by the upload endpoint.",
        );
        let _ = writeln!(out, "{ingested} {}", load(&self.ingested));

        let rejected = family(
            &mut out,
            "mayday_uploads_rejected_total",
            "counter",
            "Uploads refused, by reason.",
        );
        for (reason, n) in self
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "{rejected}{{reason=\"{reason}\"}} {n}");
        }

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

        let deleted = family(
            &mut out,
            "mayday_reports_deleted_total",
            "counter",
            "Reports deleted, by reason.",
        );
        for (reason, n) in self
            .deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "{deleted}{{reason=\"{reason}\"}} {n}");
        }

        let cache = family(
            &mut out,
            "mayday_symbol_cache_lookups_total",
            "counter",
            "Symbol file lookups, by whether a cache answered.",
        );
        let _ = writeln!(
            out,
            "{cache}{{result=\"hit\"}} {}",
            load(&self.symbol_cache_hits)
        );
        let _ = writeln!(
            out,
            "{cache}{{result=\"miss\"}} {}",
            load(&self.symbol_cache_misses)
        );

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
        m.symbol_cache(true);
        m.symbol_cache(false);
        m.symbol_cache(true);
        let text = m.render(Some(4));
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
            "mayday_symbol_cache_lookups_total{result=\"hit\"} 2",
            "mayday_symbol_cache_lookups_total{result=\"miss\"} 1",
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
