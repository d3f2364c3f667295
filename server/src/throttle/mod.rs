//! Who may upload how much: the per-sender rate limit on the upload routes
//! ([`limit_senders`]) and the throttle rules applied once an upload's
//! annotations are known ([`Throttle::check_upload`]). Both answer as Antenna and
//! the Mayday client expect, before anything of the upload is stored:
//!
//! - a sender over its rate: `429` with `Retry-After`;
//! - a `reject` rule, or outside a `sample` rule's share: `200`
//!   `Discarded=rule_<name>` (the sender drops the report);
//! - a `stop_sending` rule: `429` with `Retry-After` and
//!   `StopSendingReportsFor=<hours>` (the sender keeps the report and sends
//!   nothing for that long).
//!
//! Each outcome is counted in `/metrics` as `mayday_throttled_total{outcome=…}`.

mod peer;
mod rules;
mod senders;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use peer::sender_address;
use rules::{Decision, Rules, UploadFacts};
use senders::Senders;

use crate::config::{RateLimitConfig, ThrottleAction, ThrottleRule};
use crate::metrics::Metrics;

/// What became of an upload the throttle decided on, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An `accept` rule matched.
    Accepted,
    /// Inside a `sample` rule's share: stored.
    SampledIn,
    /// A `reject` rule matched: dropped.
    Rejected,
    /// Outside a `sample` rule's share: dropped.
    SampledOut,
    /// A `stop_sending` rule matched: dropped, the sender told to wait.
    StopSending,
    /// The sender was over its rate: `429`.
    RateLimited,
}

impl Outcome {
    /// The `outcome` label.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::SampledIn => "sampled_in",
            Outcome::Rejected => "rejected",
            Outcome::SampledOut => "sampled_out",
            Outcome::StopSending => "stop_sending",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

/// Why an upload is not taken, and the answer that tells its sender.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Dropped by the named rule: `200 Discarded=rule_<name>`.
    Discarded {
        /// The rule's name.
        rule: String,
    },
    /// Dropped, and the sender should send nothing for `hours`.
    StopSending {
        /// For how long.
        hours: f64,
    },
    /// The sender is over its rate; it may try again after this long.
    RateLimited {
        /// Until a token is there again.
        retry_after: Duration,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body, retry_after) = match self {
            Refusal::Discarded { rule } => {
                (StatusCode::OK, format!("Discarded=rule_{rule}\n"), None)
            }
            Refusal::StopSending { hours } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("StopSendingReportsFor={hours}\n"),
                Some(Duration::from_secs_f64(hours * 3600.0)),
            ),
            Refusal::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Error=rate_limited\n".to_owned(),
                Some(retry_after),
            ),
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
        if let Some(wait) = retry_after {
            // Whole seconds, rounded up, at least one.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// The rate limiter and the throttle rules of one server process; cheap to
/// clone.
#[derive(Clone)]
pub struct Throttle {
    senders: Option<Arc<Senders>>,
    trusted_proxies: Arc<[IpNet]>,
    rules: Arc<Rules>,
    metrics: Arc<Metrics>,
}

impl Throttle {
    /// The limiter `rate_limit` describes (none when disabled) and `rules`,
    /// counting into `metrics`.
    pub fn new(
        rate_limit: &RateLimitConfig,
        rules: &[ThrottleRule],
        metrics: Arc<Metrics>,
    ) -> Throttle {
        Throttle {
            senders: rate_limit
                .enabled
                .then(|| Arc::new(Senders::new(rate_limit))),
            trusted_proxies: rate_limit.trusted_proxies.clone().into(),
            rules: Arc::new(Rules::new(rules)),
            metrics,
        }
    }

    /// Applies the throttle rules to an upload whose annotations are known:
    /// `None` to store it, else the answer to give instead.
    pub fn check_upload(
        &self,
        product: Option<&str>,
        version: Option<&str>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<Refusal> {
        let facts = UploadFacts {
            product,
            version,
            annotations,
        };
        let (rule, decision) = self.rules.decide(&facts)?;
        let discarded = || {
            Some(Refusal::Discarded {
                rule: rule.name.clone(),
            })
        };
        let (outcome, refusal) = match decision {
            Decision::Accept => (Outcome::Accepted, None),
            Decision::SampledIn => (Outcome::SampledIn, None),
            Decision::Reject => (Outcome::Rejected, discarded()),
            Decision::SampledOut => (Outcome::SampledOut, discarded()),
            Decision::StopSending { hours } => {
                (Outcome::StopSending, Some(Refusal::StopSending { hours }))
            }
        };
        self.metrics.throttled(outcome.name());
        tracing::debug!(rule = %rule.name, outcome = outcome.name(), "throttle rule matched");
        refusal
    }
}

impl Throttle {
    /// Applies the throttle rules to a crash-site summary (its product and
    /// version; it has no annotations): a `reject` or `stop_sending` rule refuses
    /// it as it would its upload; a `sample` rule lets it through, since only the
    /// dump it may bring is sampled (once, when it arrives).
    pub fn check_summary(&self, product: &str, version: Option<&str>) -> Option<Refusal> {
        let annotations = BTreeMap::new();
        let facts = UploadFacts {
            product: Some(product),
            version,
            annotations: &annotations,
        };
        let rule = self.rules.first_match(&facts)?;
        let (outcome, refusal) = match rule.action {
            ThrottleAction::Reject => (
                Outcome::Rejected,
                Refusal::Discarded {
                    rule: rule.name.clone(),
                },
            ),
            ThrottleAction::StopSending { hours } => {
                (Outcome::StopSending, Refusal::StopSending { hours })
            }
            ThrottleAction::Accept | ThrottleAction::Sample { .. } => return None,
        };
        self.metrics.throttled(outcome.name());
        Some(refusal)
    }
}

/// Middleware for the upload routes: answers `429` with `Retry-After` to a
/// sender over its rate before the body is read. The sender is the connection's
/// peer (`ConnectInfo<SocketAddr>`; without it, one shared sender), or behind a
/// trusted proxy the right-most forwarded hop that is not one.
pub async fn limit_senders(
    State(throttle): State<Throttle>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(senders) = &throttle.senders {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let sender = sender_address(peer, request.headers(), &throttle.trusted_proxies);
        if let Err(retry_after) = senders.check(sender) {
            throttle.metrics.throttled(Outcome::RateLimited.name());
            return Refusal::RateLimited { retry_after }.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn refusals_answer_as_antenna_and_the_client_expect() {
        let response = Refusal::Discarded { rule: "old".into() }.into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(body(response).await, "Discarded=rule_old\n");

        let response = Refusal::StopSending { hours: 0.5 }.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1800");
        assert_eq!(body(response).await, "StopSendingReportsFor=0.5\n");

        let response = Refusal::RateLimited {
            retry_after: Duration::from_millis(1500),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = Refusal::RateLimited {
            retry_after: Duration::ZERO,
        }
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn rule_outcomes_are_counted() {
        let metrics = Arc::new(Metrics::default());
        let rules = crate::Config::from_toml(
            r#"
            [[throttle]]
            name = "old"
            version_older_than = "1.0"
            action = "reject"
            [[throttle]]
            name = "half"
            action = "sample"
            percent = 50
            "#,
        )
        .unwrap()
        .throttle;
        let throttle = Throttle::new(&RateLimitConfig::default(), &rules, Arc::clone(&metrics));
        let none = BTreeMap::new();
        assert_eq!(
            throttle.check_upload(Some("p"), Some("0.9"), &none),
            Some(Refusal::Discarded { rule: "old".into() })
        );
        assert_eq!(
            throttle.check_upload(Some("p"), Some("1.0"), &none),
            Some(Refusal::Discarded {
                rule: "half".into()
            })
        );
        assert_eq!(throttle.check_upload(Some("p"), Some("1.0"), &none), None);
        let text = metrics.render(None, None, None);
        for line in [
            "mayday_throttled_total{outcome=\"rejected\"} 1",
            "mayday_throttled_total{outcome=\"sampled_out\"} 1",
            "mayday_throttled_total{outcome=\"sampled_in\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
