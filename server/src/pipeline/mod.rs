//! The processing pipeline: claim a job -> symbolicate -> sign -> store -> index.
//!
//! Workers ([`worker`]) claim jobs from the index, so any number of them, in any
//! number of processes, share the queue; a job whose worker died is claimed again
//! once its lease runs out. Each job ([`job`]) is loaded, processed and finalized;
//! processing a report again when symbols arrive ([`symbols_retry`]) takes the
//! same steps. Stored reports are regrouped under changed signature rules by
//! [`regroup`]. A processed report is read through [`stored`], which queues it
//! for processing again when a power cut lost it.

pub mod job;
pub mod memory;
pub mod process;
pub mod regroup;
pub mod report;
pub mod signature;
// Also built into the e2e tests (`#[path]`): one file, two users.
#[cfg(test)]
pub(crate) mod shared_stack_dump;
pub mod stored;
pub mod symbols_retry;
pub mod unwind_bound;
pub mod worker;

use memory::MemoryBudget;
use std::sync::Arc;

use mayday_report::scrub::ScrubConfig;
use mayday_symbols::Symbols;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use self::signature::SignatureRules;
use crate::config::PipelineConfig;
use crate::index::Index;
use crate::metrics::Metrics;
use crate::vault::Vault;

pub use job::{Failure, JobError, Outcome};
pub use worker::run_worker;

/// Wakes the idle workers of this process when there is work; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// Tells idle workers that there is work.
    pub fn wake(&self) {
        self.0.notify_waiters();
    }

    /// Resolves when [`Wake::wake`] is called after it was
    /// [enabled](Notified::enable) (or first polled).
    pub fn listen(&self) -> Notified<'_> {
        self.0.notified()
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
    /// The signature rules: the built-in lists plus the deployment's own
    /// (compiled once at start).
    pub signatures: Arc<SignatureRules>,
    /// Wakes idle workers (here: to take a report queued again).
    pub wake: Wake,
    /// What the workers of this process may hold of dumps at once, shared by
    /// them all.
    pub memory: MemoryBudget,
}
