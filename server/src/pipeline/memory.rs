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
//!
//! What the processor builds grows with the frames it walks, not with the
//! dump's size: a 68 KB dump can unwind into 123,000 frames and 270 MB. Once a
//! dump is read, its frames are bounded (`unwind_bound`) and the job's share
//! [grows](MemoryBudget::grow) by what that many frames hold.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a job holds per byte of its stored object: the object, the dump opened
/// from it, and the processor's own allocations over it.
const HELD_PER_BYTE: u64 = 3;
/// What a job holds per frame its dump can unwind into: minidump-processor
/// keeps each frame with its register context, and the report is built from
/// them. Measured on the release server: 2.2–2.3 KB a frame for dumps walked
/// into 33,000 and 123,000 frames.
const HELD_PER_FRAME: u64 = 2304;
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
    /// `None` only while a job that gave its share back waits for a larger one.
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    /// MiB held.
    fn units(&self) -> u32 {
        self.permit
            .as_ref()
            .map_or(0, |p| u32::try_from(p.num_permits()).unwrap_or(u32::MAX))
    }
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
        units(object_bytes.saturating_mul(HELD_PER_BYTE)).clamp(1, self.total)
    }

    /// Waits until the share of a job whose stored object is `object_bytes`
    /// long is free, and holds it.
    pub async fn hold(&self, object_bytes: u64) -> Held {
        let permit = Arc::clone(&self.units)
            .acquire_many_owned(self.share(object_bytes))
            .await
            // The semaphore is never closed.
            .expect("memory budget semaphore closed");
        Held {
            permit: Some(permit),
        }
    }

    /// Adds to `held` the share of a walk into at most `frames` frames, up to
    /// the whole budget in all. Taken at once when it is free; else `held` is
    /// given back and the whole waited for, so that two jobs growing at once
    /// never wait for what the other holds. (While it waits, the job's dump,
    /// already read, is outside the budget: one dump a worker at the most.)
    pub async fn grow(&self, held: &mut Held, frames: u64) {
        let holding = held.units();
        let extra = units(frames.saturating_mul(HELD_PER_FRAME)).min(self.total - holding);
        if extra == 0 {
            return;
        }
        if let Ok(more) = Arc::clone(&self.units).try_acquire_many_owned(extra) {
            match &mut held.permit {
                Some(permit) => permit.merge(more),
                None => held.permit = Some(more),
            }
            return;
        }
        held.permit = None;
        let whole = Arc::clone(&self.units)
            .acquire_many_owned(holding + extra)
            .await
            .expect("memory budget semaphore closed");
        held.permit = Some(whole);
    }

    /// MiB free now.
    pub fn available(&self) -> usize {
        self.units.available_permits()
    }
}

/// `bytes` in whole MiB, rounded up.
fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(MIB)).unwrap_or(u32::MAX)
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

    #[tokio::test]
    async fn a_share_grows_by_its_frames_within_the_budget() {
        let budget = MemoryBudget::new(64 * MIB);
        let mut held = budget.hold(MIB).await; // 3 MiB
        // 1,000 frames: 2.2 MiB, rounded up.
        budget.grow(&mut held, 1000).await;
        assert_eq!(budget.available(), 64 - 3 - 3);
        budget.grow(&mut held, 0).await;
        assert_eq!(budget.available(), 58);
        // More frames than the budget holds: all of it.
        budget.grow(&mut held, 1 << 20).await;
        assert_eq!(budget.available(), 0);
        drop(held);
        assert_eq!(budget.available(), 64);
    }

    /// Two jobs each holding a share and each growing to nearly the whole
    /// budget: waiting for the growth while holding the first share, each would
    /// wait for the other's for ever.
    #[tokio::test]
    async fn jobs_growing_at_once_do_not_wait_for_each_other() {
        let budget = MemoryBudget::new(8 * MIB);
        let first = budget.hold(MIB).await; // 3 MiB
        let second = budget.hold(MIB).await; // 3 MiB
        let frames = 5 * MIB / HELD_PER_FRAME; // just under 5 MiB
        let grow = |budget: MemoryBudget, mut held: Held| async move {
            budget.grow(&mut held, frames).await;
            let grown = held.units();
            // The job processes, then ends.
            tokio::task::yield_now().await;
            drop(held);
            grown
        };
        let both = futures::future::join(grow(budget.clone(), first), grow(budget.clone(), second));
        let grown = tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .expect("both jobs grew");
        assert_eq!(grown, (8, 8));
        assert_eq!(budget.available(), 8);
    }
}
