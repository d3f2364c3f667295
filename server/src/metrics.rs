//! Counters for `/metrics`, in the Prometheus text format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    ingested: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    processed: AtomicU64,
    processing_micros: AtomicU64,
}

impl Metrics {
    /// One report accepted.
    pub fn ingested(&self) {
        self.ingested.fetch_add(1, Ordering::Relaxed);
    }

    /// One upload rejected, by reason.
    pub fn rejected(&self, reason: &'static str) {
        let mut map = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(reason).or_default() += 1;
    }

    /// One job run, and how long it took.
    pub fn processed(&self, took: Duration) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        self.processing_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter, plus `queue_depth`.
    pub fn render(&self, queue_depth: Option<i64>) -> String {
        let mut out = String::new();
        out.push_str("# TYPE mayday_reports_ingested_total counter\n");
        out.push_str(&format!(
            "mayday_reports_ingested_total {}\n",
            self.ingested.load(Ordering::Relaxed)
        ));
        out.push_str("# TYPE mayday_uploads_rejected_total counter\n");
        for (reason, n) in self
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "mayday_uploads_rejected_total{{reason=\"{reason}\"}} {n}\n"
            ));
        }
        out.push_str("# TYPE mayday_jobs_run_total counter\n");
        out.push_str(&format!(
            "mayday_jobs_run_total {}\n",
            self.processed.load(Ordering::Relaxed)
        ));
        out.push_str("# TYPE mayday_processing_seconds_total counter\n");
        out.push_str(&format!(
            "mayday_processing_seconds_total {:.6}\n",
            self.processing_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
        if let Some(depth) = queue_depth {
            out.push_str("# TYPE mayday_queue_depth gauge\n");
            out.push_str(&format!("mayday_queue_depth {depth}\n"));
        }
        out
    }
}
