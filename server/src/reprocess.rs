//! Reprocessing when symbols arrive.
//!
//! `POST /api/v1/symbols` stores the files, invalidates this process's symbol caches
//! for them and queues a job for every report the index lists as lacking them
//! ([`Index::reports_missing_symbols`](crate::index::Index::reports_missing_symbols)).
//! Uploads are also counted in the index; a worker in any server process compares
//! the count with the last it saw before each job and, when it moved, forgets the
//! symbol files its negative cache remembers as missing
//! ([`Symbols::sync_uploads`]). A report being processed while an upload arrives
//! is queued again if it lacked symbols. And when a report that was processed
//! before is processed again and still misses symbol files (they may have been
//! copied into the store without the API), [`process`] asks the store whether
//! they exist now, and if any does, invalidates them and processes it once more. The index then moves the
//! report to the issue of its new signature and deletes the issue it left if that
//! is empty ([`Index::finish_processed`](crate::index::Index::finish_processed)).

use std::collections::BTreeMap;
use std::time::Duration;

use mayday_symbols::{SymbolId, Symbols};

use crate::pipeline::process::{ProcessError, process_dump};
use crate::pipeline::report::ProcessedReport;

/// What one processing run gives: the report (or why not, or a timeout) and the
/// per-report symbol session it ran with.
pub type Outcome = (
    Result<Result<ProcessedReport, ProcessError>, tokio::time::error::Elapsed>,
    Symbols,
);

/// Processes `dump` in a fresh session of `symbols` within `timeout`. When
/// `reprocessing` (the report was processed before) and symbol files it lacks are in
/// the store after all, they are invalidated and the dump is processed again.
pub async fn process(
    symbols: &Symbols,
    timeout: Duration,
    report_id: &str,
    dump: &[u8],
    annotations: BTreeMap<String, String>,
    reprocessing: bool,
) -> Outcome {
    let first = run(symbols, timeout, report_id, dump, annotations.clone()).await;
    if !reprocessing || !matches!(first.0, Ok(Ok(_))) {
        return first;
    }
    if refresh_stale(symbols, &first.1.missing()).await {
        return run(symbols, timeout, report_id, dump, annotations).await;
    }
    first
}

async fn run(
    symbols: &Symbols,
    timeout: Duration,
    report_id: &str,
    dump: &[u8],
    annotations: BTreeMap<String, String>,
) -> Outcome {
    // A session per report: the shared caches, this report's own statistics.
    let session = symbols.session();
    let result = tokio::time::timeout(
        timeout,
        process_dump(report_id, dump, annotations, &session),
    )
    .await;
    (result, session)
}

/// Invalidates every id of `missing` that the store has now; whether any was.
async fn refresh_stale(symbols: &Symbols, missing: &[SymbolId]) -> bool {
    let mut any = false;
    for id in missing {
        match symbols.store().contains(id).await {
            Ok(true) => {
                symbols.invalidate(id);
                any = true;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(symbol = %id.rel_path(), error = %e, "symbol store check failed")
            }
        }
    }
    any
}
