//! Webhooks: a real server tells a local receiver (a real HTTP server on
//! 127.0.0.1) of new issues, regressions and spikes — each event delivered once
//! despite a failure, signed, and holding nothing of the crash but its issue.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use mayday_server::config::{WebhookConfig, WebhookEvent};
use mayday_server::index::Role;
use mayday_tests::api::{metric, metrics};
use mayday_tests::server::TestServer;
use mayday_tests::testdata;
use serde_json::{Value, json};

const SECRET: &str = "webhook-secret-for-the-test";
/// An annotation value sent with every crash: it must reach no webhook.
const PLANTED: &str = "planted-annotation-value-123";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    /// The webhook's path (`/<hook>`).
    hook: String,
    /// What the receiver answered.
    status: u16,
    event: String,
    delivery: String,
    signature: String,
    body: String,
}

type Seen = Arc<Mutex<Vec<Received>>>;

/// A webhook receiver: answers `500` to the first request to each path and to
/// every request to `/down`, `200` to the others, and records them all.
struct Receiver {
    url: String,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let seen = Seen::default();
        let app = axum::Router::new()
            .route("/{hook}", axum::routing::post(receive))
            .with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, seen, task }
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (a minute at most) until what was received satisfies `done`.
    async fn until(&self, what: &str, done: impl Fn(&[Received]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(&self.seen()) {
            assert!(
                Instant::now() < deadline,
                "{what}; received {:#?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(seen): State<Seen>,
    Path(hook): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut seen = seen.lock().unwrap();
    let first = !seen.iter().any(|r| r.hook == hook);
    let status = if first || hook == "down" {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    seen.push(Received {
        hook,
        status: status.as_u16(),
        event: header("x-mayday-event"),
        delivery: header("x-mayday-delivery"),
        signature: header("x-mayday-signature"),
        body,
    });
    status
}

/// A webhook at `url` for `events` of `product`'s issues.
fn hook(url: String, product: Option<&str>, events: &[WebhookEvent]) -> WebhookConfig {
    WebhookConfig {
        url,
        secret: SECRET.to_owned(),
        product: product.map(str::to_owned),
        events: events.to_vec(),
        spike_per_hour: None,
        max_attempts: 5,
    }
}

/// Checks a received request as a receiver would: the signature over the exact
/// body, the body's shape (the issue and nothing else), the headers agreeing
/// with it, and no annotation value anywhere.
fn check(received: &Received) -> Value {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(received.body.as_bytes());
    let expected = hex::decode(received.signature.strip_prefix("sha256=").unwrap()).unwrap();
    mac.verify_slice(&expected).expect("the signature verifies");
    assert!(!received.body.contains(PLANTED), "{}", received.body);
    let body: Value = serde_json::from_str(&received.body).unwrap();
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    let mut top = BTreeSet::from(["id", "event", "at", "product", "issue"].map(String::from));
    if received.event == "spike" {
        top.insert("spike".to_owned());
    }
    assert_eq!(keys(&body), top, "{body}");
    let issue_keys = [
        "id",
        "title",
        "status",
        "count",
        "counted_without_dump",
        "first_seen",
        "last_seen",
        "url",
    ];
    assert_eq!(
        keys(&body["issue"]),
        BTreeSet::from(issue_keys.map(String::from))
    );
    assert_eq!(body["event"], received.event.as_str());
    assert_eq!(body["id"], received.delivery.as_str());
    let issue = body["issue"]["id"].as_i64().unwrap();
    assert_eq!(
        body["issue"]["url"],
        format!("https://crashes.example/issues/{issue}")
    );
    body
}

/// Waits until the outbox holds nothing to deliver and the gauges say so.
async fn settled_outbox(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = server.state.index().outbox_counts().await.unwrap();
        let metrics = metrics(&server.url).await;
        let gauge = metric(&metrics, "mayday_webhook_outbox_waiting");
        if counts.pending == 0 && gauge == Some(0.0) {
            return;
        }
        assert!(Instant::now() < deadline, "outbox still busy: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn dump() -> Vec<u8> {
    testdata::read("breakpad-win-x86-minidump2/minidump2.dmp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_issues_and_regressions_reach_a_webhook_once_signed_despite_a_failure() {
    use WebhookEvent::{NewIssue, Regression};
    let receiver = Receiver::start().await;
    let base = receiver.url.clone();
    let server = TestServer::with_config(|config| {
        config.public_url = Some("https://crashes.example/".to_owned());
        config.webhooks = vec![
            hook(
                format!("{base}/alpha"),
                Some("Alpha"),
                &[NewIssue, Regression],
            ),
            // Another product's: told nothing of Alpha.
            hook(
                format!("{base}/beta"),
                Some("Beta"),
                &[NewIssue, Regression],
            ),
            // Always answers 500: given up after its two attempts.
            WebhookConfig {
                max_attempts: 2,
                ..hook(format!("{base}/down"), None, &[NewIssue])
            },
        ];
    })
    .await;
    let developer = server.token(Role::Developer).await;
    let fields = |version| {
        [
            ("ProductName", "Alpha"),
            ("Version", version),
            ("note", PLANTED),
        ]
    };
    let delivered = |seen: &[Received], event: &str| {
        seen.iter()
            .filter(|r| r.hook == "alpha" && r.event == event && r.status == 200)
            .count()
    };

    let first = server.submit(&dump(), &fields("2.0.0")).await;
    let issue = server.settle(&developer, &first.id).await.unwrap()["issue_id"]
        .as_i64()
        .unwrap();
    receiver
        .until("the new issue delivered", |seen| {
            delivered(seen, "new_issue") == 1
        })
        .await;

    let (status, body) = server
        .resolve(issue, &developer, Some(json!({ "in_version": "2.3.0" })))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let newer = server.submit(&dump(), &fields("2.10.1")).await;
    let report = server.settle(&developer, &newer.id).await.expect("kept");
    assert_eq!(report["issue_id"], issue);
    receiver
        .until(
            "the regression delivered, the failing hook given up",
            |seen| {
                delivered(seen, "regression") == 1
                    && seen.iter().filter(|r| r.hook == "down").count() == 2
            },
        )
        .await;
    settled_outbox(&server).await;

    let seen = receiver.seen();
    for received in &seen {
        let body = check(received);
        assert_eq!(body["product"], "Alpha");
        assert_eq!(body["issue"]["id"], issue);
    }
    let alpha: Vec<_> = seen.iter().filter(|r| r.hook == "alpha").collect();
    // The new issue failed once (500) and was sent again, the same delivery with
    // the same body; then the regression, once.
    let answers: Vec<_> = alpha.iter().map(|r| (r.event.as_str(), r.status)).collect();
    assert_eq!(
        answers,
        [("new_issue", 500), ("new_issue", 200), ("regression", 200)]
    );
    assert_eq!(alpha[0].delivery, alpha[1].delivery);
    assert_eq!(alpha[0].body, alpha[1].body);
    assert_ne!(alpha[1].delivery, alpha[2].delivery);
    let regression: Value = serde_json::from_str(&alpha[2].body).unwrap();
    assert_eq!(regression["issue"]["status"], "regressed");
    assert_eq!(regression["issue"]["count"], 2);
    let new_issue: Value = serde_json::from_str(&alpha[1].body).unwrap();
    assert_eq!(new_issue["issue"]["status"], "open");
    assert!(!seen.iter().any(|r| r.hook == "beta"));
    let down: Vec<_> = seen.iter().filter(|r| r.hook == "down").collect();
    assert_eq!(down.len(), 2);
    assert_eq!(down[0].delivery, down[1].delivery);

    let metrics = metrics(&server.url).await;
    let deliveries = |outcome: &str| {
        metric(
            &metrics,
            &format!("mayday_webhook_deliveries_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(deliveries("delivered"), Some(2.0));
    assert_eq!(deliveries("retried"), Some(2.0));
    assert_eq!(deliveries("failed"), Some(1.0));
    assert_eq!(metric(&metrics, "mayday_webhook_outbox_failed"), Some(1.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_is_told_once_per_issue_and_hour() {
    let receiver = Receiver::start().await;
    let url = format!("{}/spike", receiver.url);
    let server = TestServer::with_config(|config| {
        config.public_url = Some("https://crashes.example".to_owned());
        config.webhooks = vec![WebhookConfig {
            spike_per_hour: Some(2),
            ..hook(url, None, &[WebhookEvent::Spike])
        }];
    })
    .await;
    let developer = server.token(Role::Developer).await;
    // Over 2 in the hour at the third report; the fourth is the same spike.
    for _ in 0..4 {
        let sent = server
            .submit(&dump(), &[("ProductName", "Alpha"), ("note", PLANTED)])
            .await;
        server.settle(&developer, &sent.id).await.unwrap();
    }
    server.drain().await;
    receiver
        .until("the spike delivered", |seen| {
            seen.iter().any(|r| r.status == 200)
        })
        .await;
    settled_outbox(&server).await;
    let seen = receiver.seen();
    // Delivered after one failure (the receiver's first answer is 500).
    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[0].delivery, seen[1].delivery);
    let body = check(&seen[1]);
    assert_eq!(seen[1].event, "spike");
    assert_eq!(
        body["spike"],
        json!({ "reports_last_hour": 3, "spike_per_hour": 2 })
    );
    server.stop().await;
}
