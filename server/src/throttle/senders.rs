//! Token buckets per sender, keyed by a hash of the sender's address that no one
//! can reverse: HMAC-SHA256 under a random key that lives only in this process's
//! memory and is replaced daily, together with every bucket. No address, hash or
//! key is ever written, logged or sent.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::config::RateLimitConfig;

/// How long one hash key (and the buckets counted under it) is used.
pub const KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How often buckets that are full again (idle senders) are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What a bucket is keyed by: 128 bits of the keyed hash.
type SenderId = u128;
type Buckets = RateLimiter<SenderId, DefaultKeyedStateStore<SenderId>, DefaultClock>;

/// The per-sender rate limiter.
pub struct Senders {
    quota: Quota,
    max_senders: usize,
    state: Mutex<State>,
}

struct State {
    epoch: Arc<Epoch>,
    pruned: Instant,
}

/// One key's lifetime: the key and the buckets counted under it. Dropped whole
/// when the key is replaced.
struct Epoch {
    key: [u8; 32],
    started: Instant,
    buckets: Buckets,
}

impl Epoch {
    fn new(quota: Quota, now: Instant) -> Arc<Epoch> {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Arc::new(Epoch {
            key,
            started: now,
            buckets: RateLimiter::keyed(quota),
        })
    }

    /// The sender's bucket key. IPv6 senders are counted per /64 (one host's
    /// privacy addresses share it); a request without a known address counts as
    /// one shared sender.
    fn sender_id(&self, sender: Option<IpAddr>) -> SenderId {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        match sender.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => {
                mac.update(&[4]);
                mac.update(&v4.octets());
            }
            Some(IpAddr::V6(v6)) => {
                mac.update(&[6]);
                mac.update(&v6.octets()[..8]);
            }
            None => mac.update(&[0]),
        }
        let digest = mac.finalize().into_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        SenderId::from_le_bytes(id)
    }
}

impl Senders {
    /// A limiter with `config`'s quota and bound.
    pub fn new(config: &RateLimitConfig) -> Senders {
        let per_token = Duration::from_secs(60) / config.per_minute.get();
        let quota = Quota::with_period(per_token)
            .unwrap_or_else(|| Quota::per_minute(config.per_minute))
            .allow_burst(config.burst);
        let now = Instant::now();
        Senders {
            quota,
            max_senders: config.max_senders,
            state: Mutex::new(State {
                epoch: Epoch::new(quota, now),
                pruned: now,
            }),
        }
    }

    /// Takes one token from `sender`'s bucket, or says how long until one is
    /// there.
    pub fn check(&self, sender: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(sender, Instant::now())
    }

    /// [`Senders::check`] as if it were `now` for the key's lifetime and pruning
    /// (the buckets keep their own clock).
    fn check_at(&self, sender: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let (epoch, prune) = self.epoch_at(now);
        let result = epoch.buckets.check_key(&epoch.sender_id(sender));
        if prune || epoch.buckets.len() > self.max_senders {
            self.prune(&epoch, now);
        }
        result.map_err(|not_until| not_until.wait_time_from(epoch.buckets.clock().now()))
    }

    /// The epoch in force at `now` (a new one when the key is a day old), and
    /// whether it is time to prune.
    fn epoch_at(&self, now: Instant) -> (Arc<Epoch>, bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(state.epoch.started) >= KEY_LIFETIME {
            state.epoch = Epoch::new(self.quota, now);
            state.pruned = now;
        }
        let prune = now.saturating_duration_since(state.pruned) >= PRUNE_EVERY;
        if prune {
            state.pruned = now;
        }
        (Arc::clone(&state.epoch), prune)
    }

    /// Drops the buckets of idle senders; if more than `max_senders` are still
    /// busy, drops them all under a new key, so memory stays bounded.
    fn prune(&self, epoch: &Arc<Epoch>, now: Instant) {
        epoch.buckets.retain_recent();
        epoch.buckets.shrink_to_fit();
        if epoch.buckets.len() > self.max_senders {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if Arc::ptr_eq(&state.epoch, epoch) {
                tracing::warn!(
                    max_senders = self.max_senders,
                    "more senders than the rate limit keeps: every bucket dropped"
                );
                state.epoch = Epoch::new(self.quota, now);
                state.pruned = now;
            }
        }
    }

    /// How many senders have a bucket now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .epoch
            .buckets
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::num::NonZeroU32;

    use super::*;

    fn senders(burst: u32, max_senders: usize) -> Senders {
        senders_at(1, burst, max_senders)
    }

    fn senders_at(per_minute: u32, burst: u32, max_senders: usize) -> Senders {
        Senders::new(&RateLimitConfig {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
            max_senders,
            ..RateLimitConfig::default()
        })
    }

    fn v4(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
    }

    #[test]
    fn a_sender_gets_its_burst_then_waits_and_others_are_not_affected() {
        let s = senders(2, 100);
        assert!(s.check(v4(1)).is_ok());
        assert!(s.check(v4(1)).is_ok());
        let wait = s.check(v4(1)).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(s.check(v4(2)).is_ok());
        // Requests without a known address share one bucket.
        assert!(s.check(None).is_ok());
        assert!(s.check(None).is_ok());
        assert!(s.check(None).is_err());
    }

    #[test]
    fn ipv6_senders_are_counted_per_64_and_mapped_v4_as_v4() {
        let s = senders(1, 100);
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert!(s.check(Some(a.into())).is_ok());
        assert!(s.check(Some(b.into())).is_err(), "same /64");
        assert!(s.check(Some(c.into())).is_ok(), "another /64");
        assert!(s.check(v4(7)).is_ok());
        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped();
        assert!(s.check(Some(mapped.into())).is_err(), "same sender as v4");
    }

    #[test]
    fn the_key_and_every_bucket_are_replaced_after_a_day() {
        let s = senders(1, 100);
        let start = Instant::now();
        let (first, _) = s.epoch_at(start);
        let id = first.sender_id(v4(1));
        assert_eq!(id, first.sender_id(v4(1)), "stable within a day");
        assert_ne!(id, first.sender_id(v4(2)));
        assert!(s.check_at(v4(1), start).is_ok());
        assert!(s.check_at(v4(1), start).is_err());
        assert_eq!(s.len(), 1);

        let later = start + KEY_LIFETIME + Duration::from_secs(1);
        let (second, _) = s.epoch_at(later);
        assert!(!Arc::ptr_eq(&first, &second));
        assert_ne!(first.key, second.key);
        assert_ne!(second.sender_id(v4(1)), id, "the hash changes with the key");
        assert_eq!(s.len(), 0, "the buckets went with the old key");
        assert!(
            s.check_at(v4(1), later).is_ok(),
            "a blocked sender starts afresh"
        );
        drop(second);
        assert_eq!(
            Arc::strong_count(&first),
            1,
            "nothing else holds the old key"
        );
    }

    #[test]
    fn memory_is_bounded_by_max_senders() {
        let s = senders(5, 10);
        for last in 0..=200u8 {
            assert!(s.check(v4(last)).is_ok());
            assert!(s.len() <= 11, "{} buckets", s.len());
        }
    }

    #[test]
    fn idle_buckets_are_pruned_on_schedule() {
        // One token every millisecond: a bucket is full again almost at once.
        let s = senders_at(60_000, 1, 1000);
        let start = Instant::now();
        assert!(s.check_at(v4(1), start).is_ok());
        assert!(s.check_at(v4(2), start).is_ok());
        assert_eq!(s.len(), 2);
        std::thread::sleep(Duration::from_millis(20));
        assert!(s.check_at(v4(3), start + Duration::from_secs(1)).is_ok());
        assert_eq!(s.len(), 3, "not pruned before its time");
        std::thread::sleep(Duration::from_millis(20));
        assert!(s.check_at(v4(4), start + PRUNE_EVERY).is_ok());
        assert!(s.len() <= 1, "{} buckets left", s.len());
    }
}
