//! Webhook delivery: the deliverer POSTs the events of the index's outbox
//! (written where issues are created and regressed, see [`Index::alerts`]) to
//! the webhooks configured (`[[webhooks]]`), signed, and retries with backoff.
//!
//! Each POST carries the event's exact JSON body and the headers
//! `X-Mayday-Event` (`new_issue`, `regression`, `spike`), `X-Mayday-Delivery`
//! (the event's unique id: the same on every retry, so a receiver can drop a
//! duplicate) and `X-Mayday-Signature: sha256=<hex HMAC-SHA256 of the body under
//! the webhook's secret>` ([`sign`]). A 2xx answer delivers it; a network error,
//! a timeout or any other status is tried again after an exponential backoff
//! with jitter ([`backoff`]), until the webhook's `max_attempts` are used up:
//! then the row is marked failed and kept a week (`/metrics` counts it).
//!
//! One deliverer runs in each server process; with PostgreSQL several processes
//! share the outbox, and a row is claimed as a job is (a lease covers a
//! deliverer that died mid-POST, so a receiver may see an event twice, never
//! none).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use tokio::sync::watch;

use crate::config::WebhookConfig;
use crate::index::{Delivery, DeliveryEnd, Index, IndexError, now_ms};
use crate::metrics::Metrics;

/// How long one POST may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery stays claimed: far more than one POST takes.
const LEASE: Duration = Duration::from_secs(60);
/// How often the outbox is looked at when nothing woke the deliverer (events
/// another process wrote, leases run out).
const POLL: Duration = Duration::from_secs(5);
/// The first retry's delay; each next one doubles it, up to [`MAX_DELAY`].
const BASE_DELAY: Duration = Duration::from_secs(1);
/// The longest delay between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// How long delivered rows are kept (the spike dedupe keys live that long).
const KEEP_DELIVERED_MS: i64 = 24 * 3_600_000;
/// How long failed rows are kept to be looked at.
const KEEP_FAILED_MS: i64 = 7 * 24 * 3_600_000;

/// The `X-Mayday-Signature` value of `body` under `secret`:
/// `sha256=<lowercase hex HMAC-SHA256>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before retry number `retry` (0 for the first): a second, doubled
/// for each retry, capped at an hour; a random point in its upper half.
pub fn backoff(retry: u32) -> Duration {
    let capped = BASE_DELAY
        .saturating_mul(2u32.saturating_pow(retry.min(20)))
        .min(MAX_DELAY);
    let half = capped / 2;
    half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// Why a POST did not deliver.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The webhook answered, not 2xx.
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    /// No answer: connection, timeout, TLS.
    #[error("request failed: {0}")]
    Request(#[source] reqwest::Error),
}

/// Delivers the outbox's events to `hooks` until `shutdown` turns true.
pub async fn run_deliverer(
    index: Index,
    hooks: Vec<WebhookConfig>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let deliverer = match Deliverer::new(index, hooks, metrics) {
        Ok(deliverer) => deliverer,
        Err(e) => {
            tracing::error!(error = %e, "webhook deliverer cannot start");
            return;
        }
    };
    while !*shutdown.borrow() {
        let wait = match deliverer.pass().await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "webhook outbox");
                POLL
            }
        };
        tokio::select! {
            () = deliverer.index.alerts().written() => {}
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The deliverer's parts.
struct Deliverer {
    index: Index,
    /// The webhooks by [`WebhookConfig::id`].
    hooks: HashMap<String, WebhookConfig>,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl Deliverer {
    fn new(
        index: Index,
        hooks: Vec<WebhookConfig>,
        metrics: Arc<Metrics>,
    ) -> Result<Deliverer, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // A webhook answers for itself: a redirect is not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Deliverer {
            index,
            hooks: hooks.into_iter().map(|h| (h.id(), h)).collect(),
            client,
            metrics,
        })
    }

    /// Sends every delivery due, prunes old rows, updates the gauges; returns
    /// how long to wait for the next one.
    async fn pass(&self) -> Result<Duration, IndexError> {
        while let Some(delivery) = self.index.claim_delivery(now_ms(), LEASE).await? {
            match self.deliver(&delivery).await {
                Ok(()) | Err(IndexError::ClaimLost(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let now = now_ms();
        self.index
            .prune_outbox(now - KEEP_DELIVERED_MS, now - KEEP_FAILED_MS)
            .await?;
        let counts = self.index.outbox_counts().await?;
        self.metrics.outbox(
            u64::try_from(counts.pending).unwrap_or(0),
            u64::try_from(counts.failed).unwrap_or(0),
        );
        let wait = match self.index.next_delivery_due(LEASE).await? {
            Some(due) => Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0)),
            None => POLL,
        };
        Ok(wait.min(POLL))
    }

    /// POSTs one claimed delivery and records how it went.
    async fn deliver(&self, delivery: &Delivery) -> Result<(), IndexError> {
        let Some(hook) = self.hooks.get(&delivery.hook) else {
            let error = "the webhook is no longer configured";
            tracing::warn!(event = delivery.event.as_str(), id = %delivery.event_id, error);
            self.metrics.webhook("failed");
            let end = DeliveryEnd::Failed { error };
            return self.index.end_delivery(delivery, end, now_ms()).await;
        };
        let host = url::Url::parse(&hook.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let Err(e) = self.send(hook, delivery).await else {
            tracing::info!(event = delivery.event.as_str(), id = %delivery.event_id, host, "webhook delivered");
            self.metrics.webhook("delivered");
            return self
                .index
                .end_delivery(delivery, DeliveryEnd::Delivered, now_ms())
                .await;
        };
        let error = e.to_string();
        let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
        let end = if attempts >= hook.max_attempts {
            self.metrics.webhook("failed");
            tracing::warn!(event = delivery.event.as_str(), id = %delivery.event_id, host, attempts, error, "webhook delivery failed for good");
            DeliveryEnd::Failed { error: &error }
        } else {
            self.metrics.webhook("retried");
            let delay = backoff(attempts.saturating_sub(1));
            tracing::info!(event = delivery.event.as_str(), id = %delivery.event_id, host, attempts, error, "webhook delivery to be retried");
            DeliveryEnd::Retry {
                at: now_ms() + delay.as_millis() as i64,
                error: &error,
            }
        };
        self.index.end_delivery(delivery, end, now_ms()).await
    }

    /// One POST of `delivery` to `hook`.
    async fn send(&self, hook: &WebhookConfig, delivery: &Delivery) -> Result<(), SendError> {
        let response = self
            .client
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Mayday-Event", delivery.event.as_str())
            .header("X-Mayday-Delivery", &delivery.event_id)
            .header(
                "X-Mayday-Signature",
                sign(hook.secret.as_bytes(), delivery.body.as_bytes()),
            )
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|e| SendError::Request(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Status(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            sign(b"Jefe", b"what do ya want for nothing!"),
            sign(b"Jefe", b"what do ya want for nothing?")
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(0);
            assert!(first >= BASE_DELAY / 2 && first <= BASE_DELAY, "{first:?}");
            let fourth = backoff(3);
            assert!(
                fourth >= BASE_DELAY * 4 && fourth <= BASE_DELAY * 8,
                "{fourth:?}"
            );
            let late = backoff(40);
            assert!(late >= MAX_DELAY / 2 && late <= MAX_DELAY, "{late:?}");
        }
    }
}
