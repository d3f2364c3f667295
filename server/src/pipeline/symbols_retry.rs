//! Symbols that arrive after a report was processed without them.
//!
//! `POST /api/v1/symbols` stores the files, invalidates this process's symbol caches
//! for them and queues a job for every report the index lists as lacking them
//! ([`Index::reports_missing_symbols`](crate::index::Index::reports_missing_symbols)).
//! Uploads are also counted in the index; a worker in any server process compares
//! the count with the last it saw before each job and, when it moved, forgets the
//! symbol files its negative cache remembers as missing
//! ([`Symbols::sync_uploads`](mayday_symbols::Symbols::sync_uploads)). A report
//! being processed while an upload arrives is queued again if it lacked symbols.
//! And when a report that was processed before is processed again and still
//! misses symbol files (they may have been copied into the store without the
//! API), [`forget_arrived`] asks the store whether they exist now; if any does,
//! the job processes the dump once more. The index then moves the report to the
//! issue of its new signature and deletes the issue it left if that is empty
//! ([`Index::finish_processed`](crate::index::Index::finish_processed)).

use mayday_symbols::{SymbolId, Symbols};

/// Invalidates every id of `missing` that the store has now; whether any was
/// (then processing again may find more symbols).
pub async fn forget_arrived(symbols: &Symbols, missing: &[SymbolId]) -> bool {
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
