//! The processing memory budget: how much the workers of this process may hold
//! of dumps at once.
//!
//! A worker holds its dump whole while it processes it: the sealed object as
//! read, the dump opened from it, and what the processor builds over it. So
//! that there can be more workers than cores (a worker waits on the index and
//! the store about half its time) without a burst of large dumps taking the
//! machine's memory, a job holds a share of the budget sized from its object
//! (its size as the store tells it, before it is read) until the job ends; a job whose share is not free waits.
//! A dump larger than the whole budget still goes through, alone.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a job holds per byte of its stored object: the object, the dump opened
/// from it, and the processor's own allocations over it.
const HELD_PER_BYTE: u64 = 3;
/// The budget's unit.
const MIB: u64 = 1024 * 1024;

/// The processing memory budget of this process; cheap to clone (the clones
/// share it).
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    /// All of it, in MiB.
    total: u32,
}

/// A job's share of the [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Held {
    _permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    /// A budget of `bytes` (at least 1 MiB).
    pub fn new(bytes: u64) -> MemoryBudget {
        let total = u32::try_from(bytes / MIB)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        MemoryBudget {
            units: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// The share of a job whose stored object is `object_bytes` long, in MiB:
    /// at least one, at most the whole budget.
    fn share(&self, object_bytes: u64) -> u32 {
        let bytes = object_bytes.saturating_mul(HELD_PER_BYTE);
        let units = u32::try_from(bytes.div_ceil(MIB)).unwrap_or(u32::MAX);
        units.clamp(1, self.total)
    }

    /// Waits until the share of a job whose stored object is `object_bytes`
    /// long is free, and holds it.
    pub async fn hold(&self, object_bytes: u64) -> Held {
        let permit = Arc::clone(&self.units)
            .acquire_many_owned(self.share(object_bytes))
            .await
            // The semaphore is never closed.
            .expect("memory budget semaphore closed");
        Held { _permit: permit }
    }

    /// MiB free now.
    pub fn available(&self) -> usize {
        self.units.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_share_is_three_times_the_object_within_the_budget() {
        let budget = MemoryBudget::new(64 * MIB);
        assert_eq!(budget.share(0), 1);
        assert_eq!(budget.share(300_000), 1);
        assert_eq!(budget.share(MIB), 3);
        assert_eq!(budget.share(10 * MIB + 1), 31);
        // Larger than the whole budget: all of it, so it runs alone.
        assert_eq!(budget.share(200 * MIB), 64);
        assert_eq!(budget.share(u64::MAX), 64);
        assert_eq!(MemoryBudget::new(0).share(MIB), 1);
    }

    #[tokio::test]
    async fn a_job_waits_until_its_share_is_free() {
        let budget = MemoryBudget::new(8 * MIB);
        let first = budget.hold(2 * MIB).await; // 6 MiB
        assert_eq!(budget.available(), 2);
        let second = budget.hold(MIB);
        tokio::pin!(second);
        // 3 MiB wanted, 2 free: it waits ...
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut second)
                .await
                .is_err()
        );
        // ... until the first job ends.
        drop(first);
        let second = second.await;
        assert_eq!(budget.available(), 5);
        drop(second);
        // A dump larger than the budget holds all of it.
        let huge = budget.hold(100 * MIB).await;
        assert_eq!(budget.available(), 0);
        drop(huge);
        assert_eq!(budget.available(), 8);
    }
}
