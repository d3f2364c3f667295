//! Abuse limits against a real server on 127.0.0.1: a sender over its rate gets
//! `429` with `Retry-After` while another is served, and nothing of who sent what
//! is kept; throttle rules reject, sample and stop senders, and the Mayday client
//! (the `crashy` example) drops, keeps, waits and resumes as the server says.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mayday_server::Config;
use mayday_server::config::parse_trusted_proxies;
use mayday_tests::command::{run, stdout};
use mayday_tests::scan::{traces, walk};
use mayday_tests::server::{ServerProcess, TestServer};
use mayday_tests::testdata;
use mayday_tests::upload::Multipart;
use reqwest::StatusCode;

fn dump() -> Vec<u8> {
    testdata::read("breakpad-win-x86-minidump2/minidump2.dmp")
}

/// Where any of `needles` occurs under `dir`, as `(file, needle)`.
fn leaks(dir: &Path, needles: &[&str]) -> Vec<(String, String)> {
    let needles: Vec<Vec<u8>> = needles.iter().map(|n| n.as_bytes().to_vec()).collect();
    traces(dir, &needles)
}

/// One upload through `http`, with extra headers; its status, `Retry-After` and
/// body.
async fn upload(
    http: &reqwest::Client,
    base: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<u64>, String) {
    let (content_type, body) = Multipart::new()
        .text("prod", "Alpha")
        .text("ver", "1.0")
        .dump(&dump())
        .finish();
    let mut request = http
        .post(format!("{base}/submit"))
        .header("Content-Type", content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.text().await.unwrap())
}

/// `n` uploads in a row; the statuses, each `429` checked for a `Retry-After`.
async fn burst(
    http: &reqwest::Client,
    base: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let (status, retry_after, body) = upload(http, base, headers).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let seconds = retry_after.expect("429 carries Retry-After");
            assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
            assert!(!body.contains("CrashID"), "{body}");
        }
        statuses.push(status);
    }
    statuses
}

/// Three uploads at once, then one a minute: the first three of a burst of six
/// pass, the other three get `429`.
fn three_then_wait() -> Vec<StatusCode> {
    let mut expected = vec![StatusCode::OK; 3];
    expected.extend([StatusCode::TOO_MANY_REQUESTS; 3]);
    expected
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn counted(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!("mayday_throttled_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

/// The report dumps under a data dir's file store.
fn stored_dumps(data_dir: &Path) -> usize {
    let raw = data_dir.join("store/raw");
    if !raw.exists() {
        return 0;
    }
    walk(&raw)
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "dmp"))
        .count()
}

/// Every file under `dir` that is neither in `before` nor a blob of a stored
/// report (the index's own files are in `before`).
fn new_state_files(dir: &Path, before: &[PathBuf]) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|f| !before.contains(f) && !f.starts_with(dir.join("store/raw")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_a_burst_is_limited_per_forwarded_sender() {
    let server = TestServer::with_config(|c: &mut Config| {
        c.pipeline.workers = 0;
        c.rate_limit.enabled = true;
        c.rate_limit.per_minute = NonZeroU32::new(1).unwrap();
        c.rate_limit.burst = NonZeroU32::new(3).unwrap();
        c.rate_limit.trusted_proxies = parse_trusted_proxies("127.0.0.1").unwrap();
    })
    .await;
    let before = walk(&server.data_dir);
    let http = reqwest::Client::new();
    let a = [("X-Forwarded-For", "203.0.113.7")];
    assert_eq!(burst(&http, &server.url, &a, 6).await, three_then_wait());

    // Meanwhile another sender behind the same proxy is served.
    let b = [("Forwarded", "for=\"198.51.100.9:5000\";proto=http")];
    assert_eq!(burst(&http, &server.url, &b, 1).await, [StatusCode::OK]);
    // A hop the sender wrote itself, left of what the proxy appended, changes
    // nothing.
    let fake = [("X-Forwarded-For", "198.51.100.10, 203.0.113.7")];
    assert_eq!(
        burst(&http, &server.url, &fake, 1).await,
        [StatusCode::TOO_MANY_REQUESTS]
    );
    // The proxy's own requests are a sender of their own.
    assert_eq!(burst(&http, &server.url, &[], 1).await, [StatusCode::OK]);

    assert_eq!(counted(&metrics(&server.url).await, "rate_limited"), 4);
    assert_eq!(
        stored_dumps(&server.data_dir),
        5,
        "only the 200s are stored"
    );
    assert_eq!(
        new_state_files(&server.data_dir, &before),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        leaks(
            &server.data_dir,
            &["203.0.113.7", "198.51.100.9", "198.51.100.10"]
        ),
        Vec::<(String, String)>::new()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_one_address_is_limited_and_no_address_is_kept_or_logged() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        data.path(),
        &[
            ("MAYDAY_WORKERS", "0"),
            ("MAYDAY_LOG", "debug"),
            ("MAYDAY_RATE_LIMIT_PER_MINUTE", "1"),
            ("MAYDAY_RATE_LIMIT_BURST", "3"),
        ],
    );
    let before = walk(data.path());
    let from = |address: &str| {
        reqwest::Client::builder()
            .local_address(address.parse::<IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let (second, first) = (from("127.0.0.2"), from("127.0.0.1"));
    // X-Forwarded-For from a peer nobody said to trust is not read.
    let spoof = [("X-Forwarded-For", "192.0.2.44")];
    assert_eq!(
        burst(&second, &server.url, &spoof, 6).await,
        three_then_wait()
    );
    assert_eq!(burst(&first, &server.url, &[], 1).await, [StatusCode::OK]);
    assert_eq!(counted(&metrics(&server.url).await, "rate_limited"), 3);

    let log = server.log.clone();
    server.kill();
    let log = log.lock().unwrap().join("\n");
    assert!(
        log.contains("report received"),
        "the log was captured: {log}"
    );
    for needle in ["127.0.0.2", "192.0.2.44"] {
        assert!(!log.contains(needle), "{needle} logged:\n{log}");
    }
    assert_eq!(stored_dumps(data.path()), 4, "only the 200s are stored");
    assert_eq!(new_state_files(data.path(), &before), Vec::<PathBuf>::new());
    assert_eq!(
        leaks(data.path(), &["127.0.0.2", "192.0.2.44"]),
        Vec::<(String, String)>::new()
    );
}

/// `crashy <args>` with its data dir, the server, and consent `Always`.
fn crashy(data_dir: &Path, server: &str, args: &[&str]) -> Command {
    let mut cmd = mayday_tests::crashy::crashy(data_dir, server);
    cmd.args(args);
    cmd
}

/// Crashes `crashy` `n` times: `n` reports pending.
async fn crash(data_dir: &Path, server: &str, n: usize) {
    for _ in 0..n {
        let out = run(crashy(data_dir, server, &["segv"])).await;
        assert!(!out.status.success(), "crashy did not crash");
    }
    assert_eq!(pending(data_dir, server).await, n);
}

/// `n` crashes of `crashy segv`, then `crashy send` ([`send`]).
async fn crash_and_send(data_dir: &Path, server: &str, n: usize) -> (Vec<String>, String) {
    crash(data_dir, server, n).await;
    send(data_dir, server).await
}

/// `crashy send`: the CrashIDs sent, and its summary line.
async fn send(data_dir: &Path, server: &str) -> (Vec<String>, String) {
    let out = run(crashy(data_dir, server, &["send"])).await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let sent = text
        .lines()
        .filter_map(|l| l.strip_prefix("sent "))
        .map(str::to_owned)
        .collect();
    let summary = text
        .lines()
        .find(|l| l.starts_with("declined "))
        .unwrap_or_default()
        .to_owned();
    (sent, summary)
}

async fn pending(data_dir: &Path, server: &str) -> usize {
    let out = run(crashy(data_dir, server, &["list"])).await;
    stdout(&out)
        .lines()
        .filter(|l| l.starts_with("pending "))
        .count()
}

/// A server whose only throttle rule is `rule` (TOML, without the table header).
async fn server_with_rule(rule: &str) -> TestServer {
    let rules = Config::from_toml(&format!("[[throttle]]\n{rule}"))
        .unwrap()
        .throttle;
    TestServer::with_config(|c| {
        c.pipeline.workers = 0;
        c.throttle = rules;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_report_is_dropped_by_the_client_and_never_stored() {
    let server = server_with_rule(
        "name = \"old_crashy\"\nproduct = \"crashy\"\nversion_older_than = \"1.0\"\naction = \"reject\"",
    )
    .await;
    let client = tempfile::tempdir().unwrap();
    let (sent, summary) = crash_and_send(client.path(), &server.url, 1).await;
    assert_eq!(sent, Vec::<String>::new());
    assert!(
        summary.contains("discarded by server 1, pending 0"),
        "{summary}"
    );
    assert_eq!(pending(client.path(), &server.url).await, 0);
    assert!(!client.path().join("throttle.json").exists());
    assert_eq!(stored_dumps(&server.data_dir), 0);
    assert_eq!(counted(&metrics(&server.url).await, "rejected"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_rule_keeps_its_share_and_the_client_drops_the_rest() {
    let server = server_with_rule(
        "name = \"half\"\nproduct = \"crashy\"\naction = \"sample\"\npercent = 50",
    )
    .await;
    let client = tempfile::tempdir().unwrap();
    let (sent, summary) = crash_and_send(client.path(), &server.url, 2).await;
    assert_eq!(sent.len(), 1, "{summary}");
    assert!(
        summary.contains("discarded by server 1, pending 0"),
        "{summary}"
    );
    assert_eq!(stored_dumps(&server.data_dir), 1);
    let id: mayday_server::report_id::ReportId = sent[0].parse().unwrap();
    assert!(server.state.index().report(&id).await.unwrap().is_some());
    let metrics = metrics(&server.url).await;
    assert_eq!(counted(&metrics, "sampled_in"), 1);
    assert_eq!(counted(&metrics, "sampled_out"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sending_keeps_the_report_and_the_client_waits_then_resumes() {
    // 0.003 hours: 10.8 s.
    let stopping = server_with_rule(
        "name = \"old\"\nversion_older_than = \"1.0\"\naction = \"stop_sending\"\nhours = 0.003",
    )
    .await;
    let accepting = TestServer::start().await;
    let client = tempfile::tempdir().unwrap();
    let (sent, summary) = crash_and_send(client.path(), &stopping.url, 1).await;
    assert_eq!(sent, Vec::<String>::new());
    assert!(
        summary.contains("discarded by server 0, pending 1"),
        "{summary}"
    );
    assert_eq!(stored_dumps(&stopping.data_dir), 0);
    assert_eq!(counted(&metrics(&stopping.url).await, "stop_sending"), 1);
    let throttle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(client.path().join("throttle.json")).expect("the client noted the stop"),
    )
    .unwrap();
    let not_before = time::OffsetDateTime::parse(
        throttle["not_before"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(not_before > now && not_before <= now + time::Duration::seconds(11));

    // Until then it sends nothing, to any server.
    let (sent, summary) = send(client.path(), &accepting.url).await;
    assert_eq!(sent, Vec::<String>::new(), "{summary}");
    assert!(summary.contains("pending 1"), "{summary}");
    assert!(
        metrics(&accepting.url)
            .await
            .contains("mayday_reports_ingested_total 0"),
        "nothing reached the server"
    );

    // Afterwards it resumes, and the kept report arrives.
    let wait = Duration::try_from(not_before - time::OffsetDateTime::now_utc()).unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    let (sent, summary) = send(client.path(), &accepting.url).await;
    assert_eq!(sent.len(), 1, "{summary}");
    assert!(summary.contains("pending 0"), "{summary}");
    assert_eq!(stored_dumps(&accepting.data_dir), 1);
    stopping.stop().await;
    accepting.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_waits_out_a_429_and_sends_everything() {
    // One token a second, no burst: the second report waits for Retry-After.
    let server = TestServer::with_config(|c| {
        c.pipeline.workers = 0;
        c.rate_limit.enabled = true;
        c.rate_limit.per_minute = NonZeroU32::new(60).unwrap();
        c.rate_limit.burst = NonZeroU32::new(1).unwrap();
    })
    .await;
    let client = tempfile::tempdir().unwrap();
    crash(client.path(), &server.url, 2).await;
    let started = Instant::now();
    let (sent, summary) = send(client.path(), &server.url).await;
    assert_eq!(sent.len(), 2, "{summary} after {:?}", started.elapsed());
    assert!(summary.contains("pending 0"), "{summary}");
    assert!(counted(&metrics(&server.url).await, "rate_limited") >= 1);
    assert_eq!(stored_dumps(&server.data_dir), 2);
    server.stop().await;
}
