//! Talking to a Mayday server over HTTP as its users do: submitting dumps as crash
//! handlers send them, reading and changing things through the JSON API, and
//! waiting for reports to be processed. Every function takes the server's base URL
//! (`http://127.0.0.1:<port>`), so they serve a [`crate::server::TestServer`] and a
//! [`crate::server::ServerProcess`] alike; `TestServer` has them as methods.

use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::upload::{Multipart, gzip};

/// How long a report may take to get where a test waits for it.
const PATIENCE: Duration = Duration::from_secs(90);

/// A report the server accepted: what its receipt says.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The CrashID, `bp-<uuid>`.
    pub id: String,
    /// The secret that lets the sender delete the report.
    pub deletion_token: String,
}

impl Sent {
    /// The CrashID without its `bp-` prefix: how blob keys and files name it.
    pub fn uuid(&self) -> &str {
        self.id.trim_start_matches("bp-")
    }
}

/// A request for `path` (with its query) on the server at `base`. Redirects are
/// not followed: a test sees what the server answered.
pub fn request(base: &str, method: Method, path: &str) -> RequestBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .request(method, format!("{base}{path}"))
}

/// `POST /submit` with `body` as it is, gzip-compressed on the wire when `gzipped`.
pub async fn submit_body(base: &str, content_type: &str, body: Vec<u8>, gzipped: bool) -> Response {
    let request = request(base, Method::POST, "/submit").header("Content-Type", content_type);
    let request = if gzipped {
        request.header("Content-Encoding", "gzip").body(gzip(&body))
    } else {
        request.body(body)
    };
    request.send().await.unwrap()
}

/// Submits `dump` with the annotations `fields` as a Breakpad client does; the
/// server must accept it.
pub async fn submit(base: &str, dump: &[u8], fields: &[(&str, &str)]) -> Sent {
    let form = fields
        .iter()
        .fold(Multipart::new(), |form, (k, v)| form.text(k, v));
    let (content_type, body) = form.dump(dump).finish();
    receipt(submit_body(base, &content_type, body, false).await).await
}

/// The receipt of an accepted upload (the Breakpad text reply): a CrashID and a
/// 64-character deletion token.
pub async fn receipt(response: Response) -> Sent {
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let receipt = mayday_report::upload::SubmitReceipt::parse_text(&text).unwrap();
    assert!(receipt.crash_id.starts_with("bp-"), "{text}");
    assert_eq!(receipt.deletion_token.len(), 64, "{text}");
    Sent {
        id: receipt.crash_id,
        deletion_token: receipt.deletion_token,
    }
}

/// The JSON receipt of an accepted upload that asked for JSON
/// (`Accept: application/json`): the body as it is, and its CrashID.
pub async fn json_receipt(response: Response) -> (Value, String) {
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = response.json().await.unwrap();
    let id = json["crash_id"].as_str().unwrap().to_owned();
    (json, id)
}

/// The text `field` of every item of the JSON array `list` (each must have it).
pub fn texts(list: &Value, field: &str) -> Vec<String> {
    items(list)
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect()
}

/// The integer `field` of every item of the JSON array `list` (each must have it).
pub fn integers(list: &Value, field: &str) -> Vec<i64> {
    items(list)
        .map(|item| item[field].as_i64().unwrap())
        .collect()
}

/// The items of the JSON array `list` (it must be one).
fn items(list: &Value) -> impl Iterator<Item = &Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
}

/// Header `name` of `response` as text: empty when it has none (or not text).
pub fn header_or_empty(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The status and JSON body of `response` (`null` when the body is not JSON).
pub async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET path` with a bearer `token`.
pub async fn get_json(base: &str, path: &str, token: &str) -> (StatusCode, Value) {
    json_of(send(request(base, Method::GET, path).bearer_auth(token)).await).await
}

/// `GET path` with a bearer `token`: status and body as they are (a minidump, a
/// page).
pub async fn get_bytes(base: &str, path: &str, token: &str) -> (StatusCode, Vec<u8>) {
    let response = send(request(base, Method::GET, path).bearer_auth(token)).await;
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

/// `POST path` with a bearer `token` and, if given, a JSON `body`.
pub async fn post_json(
    base: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = request(base, Method::POST, path).bearer_auth(token);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    json_of(send(request).await).await
}

/// `DELETE path` with the `Authorization` header `authorization` (`Bearer <token>`
/// or `Deletion <deletion token>`).
pub async fn delete(base: &str, path: &str, authorization: &str) -> (StatusCode, Value) {
    let request = request(base, Method::DELETE, path).header("Authorization", authorization);
    json_of(send(request).await).await
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.unwrap()
}

/// Polls `GET /api/v1/reports/{id}` until the report is no longer queued; returns
/// its JSON.
pub async fn wait_processed(base: &str, token: &str, id: &str) -> Value {
    poll_report(base, token, id, |status, report| {
        (status.is_success() && report["state"] != "queued").then(|| report.clone())
    })
    .await
}

/// Polls `GET /api/v1/reports/{id}` until `done` holds for the report; returns it.
pub async fn wait_report(
    base: &str,
    token: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    poll_report(base, token, id, |status, report| {
        (status == StatusCode::OK && done(report)).then(|| report.clone())
    })
    .await
}

/// Polls `GET /api/v1/reports/{id}` until the report is processed (its JSON) or
/// gone (`None`: deleted or dropped).
pub async fn settle(base: &str, token: &str, id: &str) -> Option<Value> {
    poll_report(base, token, id, |status, report| match status {
        StatusCode::NOT_FOUND => Some(None),
        StatusCode::OK if report["state"] != "queued" => Some(Some(report.clone())),
        _ => None,
    })
    .await
}

/// Polls `GET /api/v1/reports/{id}` until `done` gives an answer (at most
/// [`PATIENCE`]). A request that fails (a server still starting) is tried again.
async fn poll_report<T>(
    base: &str,
    token: &str,
    id: &str,
    mut done: impl FnMut(StatusCode, &Value) -> Option<T>,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let response = request(base, Method::GET, &format!("/api/v1/reports/{id}"))
            .bearer_auth(token)
            .send()
            .await;
        let (status, report) = match response {
            Ok(response) => json_of(response).await,
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
        };
        if let Some(answer) = done(status, &report) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "report {id} did not get there within {PATIENCE:?}: {status} {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /metrics`: the Prometheus text.
pub async fn metrics(base: &str) -> String {
    let response = send(request(base, Method::GET, "/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The value of the sample `name` (with its labels, if any) in the Prometheus
/// text `metrics`; `None` when there is no such sample.
pub fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
