//! A crash summary first, the dump only on request: the client and the server
//! compute one crash-site key; after an issue has the dumps it wants, `crashy`
//! sends only summaries, which the server counts without storing anything else; a
//! crash fixed in a newer version is answered `fixed`; the summary carries nothing
//! personal; a server without the route gets the dump as before.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mayday_client::{Client, CrashSiteAnswer};
use mayday_report::crash_site::CrashSite;
use mayday_server::index::Role;
use mayday_tests::api::{metric, metrics};
use mayday_tests::command::{run, stdout, text};
use mayday_tests::crashy::{PLANTED_HOST, PLANTED_SECRET, PLANTED_USER, crashy, plant};
use mayday_tests::scan::walk;
use mayday_tests::server::TestServer;
use mayday_tests::testdata::cases;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every crash kind of `crashy`.
const KINDS: [&str; 6] = ["segv", "abort", "panic", "bus", "fpe", "ill"];

/// Crashes `crashy <kind>` (version `version`, when given) with `data`, sending
/// to `server`; returns the pending report's crash-site key as the client
/// computes it (from the dump it captured, scrubbed as it would send it).
async fn crash(data: &Path, server: &str, kind: &str, version: Option<&str>) -> String {
    let mut command = crashy(data, server);
    command.arg(kind);
    if let Some(version) = version {
        command.env("CRASHY_VERSION", version);
    }
    let crashed = run(command).await;
    assert!(!crashed.status.success(), "{kind}: {}", text(&crashed));
    let data = data.to_owned();
    tokio::task::spawn_blocking(move || {
        let client = Client::builder()
            .product("crashy")
            .version("ignored")
            .data_dir(&data)
            .endpoint("http://127.0.0.1:9")
            .build()
            .unwrap();
        let pending = client.pending().unwrap();
        let report = pending.last().expect("a pending report");
        let summary = client.summary(report).unwrap();
        summary
            .summary_first
            .expect("a crash-site summary")
            .crash_site
    })
    .await
    .unwrap()
}

/// `crashy send` with `data` (and `version`): its output.
async fn send(data: &Path, server: &str, version: Option<&str>) -> String {
    let mut command = crashy(data, server);
    command.arg("send");
    if let Some(version) = version {
        command.env("CRASHY_VERSION", version);
    }
    let sent = run(command).await;
    assert!(sent.status.success(), "{}", text(&sent));
    stdout(&sent)
}

/// The CrashIDs `crashy send` printed.
fn sent_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("sent "))
        .map(str::to_owned)
        .collect()
}

/// Bytes under the server's object store.
fn stored_bytes(server: &TestServer) -> u64 {
    walk(&server.data_dir.join("store"))
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_and_the_server_compute_one_crash_site_key() {
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    // Every crash kind of crashy: the key the client computed before sending is
    // the key the server computed from what it stored.
    let mut kinds = BTreeSet::new();
    for kind in KINDS {
        let data = temp.path().join(kind);
        let client_key = crash(&data, &server.url, kind, None).await;
        let out = send(&data, &server.url, None).await;
        let ids = sent_ids(&out);
        assert_eq!(ids.len(), 1, "{kind}: {out}");
        let report = server.wait_processed(&token, &ids[0]).await;
        assert_eq!(report["state"], "processed", "{kind}: {report}");
        assert_eq!(report["crash_site"], client_key.as_str(), "{kind}");
        kinds.insert(client_key);
    }
    // abort and panic both end in the C library's raise(); the faults differ.
    assert!(kinds.len() >= 5, "{kinds:?}");

    // Every shared test dump, uploaded as is: the server's key is the one computed
    // from the dump before it left (as the client would); dumps of different
    // crashes (case directories: one holds two variants of one dump) differ.
    let mut keys: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    let cases = cases();
    for case in &cases {
        let dump = case.bytes();
        let local = CrashSite::of_minidump(&dump).map(|s| s.key()).ok();
        let (_, report) = server.submit_processed(&token, &dump, &[]).await;
        assert_eq!(
            report["crash_site"].as_str(),
            local.as_deref(),
            "{}",
            case.name()
        );
        let key = local.unwrap_or_else(|| panic!("{}: no crash site", case.name()));
        keys.entry(key).or_default().insert(case.dir.clone());
    }
    let crashes: BTreeSet<&PathBuf> = cases.iter().map(|c| &c.dir).collect();
    assert!(keys.len() >= crashes.len(), "a key per crash: {keys:#?}");
    assert!(keys.values().all(|dirs| dirs.len() == 1), "{keys:#?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_enough_dumps_crashes_are_only_counted_and_a_fixed_crash_says_so() {
    let server = TestServer::with_config(|config| {
        config
            .crash_sites
            .product_samples
            .insert("crashy".into(), 2);
    })
    .await;
    let token = server.token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");

    // The first two crashes of the site send their dumps.
    let mut issue = None;
    for _ in 0..2 {
        crash(&data, &server.url, "segv", None).await;
        let out = send(&data, &server.url, None).await;
        let ids = sent_ids(&out);
        assert_eq!(ids.len(), 1, "{out}");
        let report = server.wait_processed(&token, &ids[0]).await;
        issue = report["issue_id"].as_i64();
    }
    let issue = issue.expect("grouped");
    let ingested = |m: &str| metric(m, "mayday_reports_ingested_total").unwrap_or(0.0);
    let before = metrics(&server.url).await;
    let bytes = stored_bytes(&server);

    // The next ones send only their summaries: counted, dump deleted here.
    for n in 1..=2 {
        crash(&data, &server.url, "segv", None).await;
        let out = send(&data, &server.url, None).await;
        assert!(sent_ids(&out).is_empty(), "{out}");
        assert!(out.contains("counted "), "{out}");
        let (_, issue_json) = server
            .get_json(&format!("/api/v1/issues/{issue}"), &token)
            .await;
        let issue_json = issue_json.get("issue").unwrap_or(&issue_json).clone();
        assert_eq!(issue_json["count"], 2, "{issue_json}");
        assert_eq!(issue_json["counted_without_dump"], n, "{issue_json}");
    }
    let after = metrics(&server.url).await;
    assert_eq!(ingested(&after), ingested(&before), "no dump arrived");
    assert_eq!(
        metric(
            &after,
            "mayday_crash_site_summaries_total{answer=\"counted\"}"
        ),
        Some(2.0)
    );
    assert_eq!(stored_bytes(&server), bytes, "nothing more is stored");
    let pending = walk(&data.join("pending"));
    assert!(
        !pending
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "dmp")),
        "the counted dumps are deleted: {pending:?}"
    );

    // Resolved in 2.0: a crash of 1.9 is `fixed`, and no dump leaves the machine.
    let (status, _) = server
        .resolve(issue, &token, Some(json!({ "in_version": "2.0" })))
        .await;
    assert!(status.is_success(), "{status}");
    let bytes = stored_bytes(&server);
    crash(&data, &server.url, "segv", Some("1.9")).await;
    let out = send(&data, &server.url, Some("1.9")).await;
    assert!(sent_ids(&out).is_empty(), "{out}");
    assert!(out.contains("already fixed in version 2.0"), "{out}");
    let counted = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            Client::builder()
                .product("crashy")
                .version("1.9")
                .data_dir(&data)
                .build()
                .unwrap()
                .counted_crashes()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(counted.len(), 3, "{counted:?}");
    assert_eq!(
        counted.last().unwrap().answer,
        CrashSiteAnswer::Fixed {
            fixed_in: "2.0".into()
        }
    );
    assert_eq!(
        counted.last().unwrap().summary.version.as_deref(),
        Some("1.9")
    );
    assert_eq!(ingested(&metrics(&server.url).await), ingested(&before));
    assert_eq!(stored_bytes(&server), bytes, "nothing more is stored");

    // A crash of 2.1 would regress it: its dump is wanted.
    crash(&data, &server.url, "segv", Some("2.1")).await;
    let out = send(&data, &server.url, Some("2.1")).await;
    let ids = sent_ids(&out);
    assert_eq!(ids.len(), 1, "{out}");
    server.wait_processed(&token, &ids[0]).await;
    let (_, issue_json) = server
        .get_json(&format!("/api/v1/issues/{issue}"), &token)
        .await;
    let issue_json = issue_json.get("issue").unwrap_or(&issue_json).clone();
    assert_eq!(issue_json["status"], "regressed", "{issue_json}");
    assert_eq!(issue_json["counted_without_dump"], 3, "{issue_json}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crash_sites_route_refuses_what_is_not_a_summary() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/crash-sites", server.url);
    let key = format!("v1:{}", "ab".repeat(32));
    let post = |body: Value| http.post(&url).json(&body).send();
    let unknown =
        post(json!({ "product": "App", "version": "1.0", "os": "Linux", "crash_site": key }))
            .await
            .unwrap();
    assert_eq!(unknown.status(), 200);
    assert_eq!(
        unknown.json::<Value>().await.unwrap(),
        json!({ "decision": "send" })
    );
    for bad in [
        json!({ "product": "App", "crash_site": "v1:xyz" }),
        json!({ "product": "", "crash_site": key }),
        json!({ "product": "App", "crash_site": key, "user": "alice" }),
        json!({ "product": "App\u{1b}[2J", "crash_site": key }),
        json!({ "product": "x".repeat(129), "crash_site": key }),
    ] {
        let response = post(bad.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    let large = http
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 413);
    server.stop().await;
}

/// Summaries are held to the per-sender rate limit (one request each, whatever
/// their size) and the throttle rules (a `reject` rule refuses them as it would
/// their dumps; a `sample` rule lets them through, so the dump is sampled once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_are_rate_limited_and_throttled() {
    let rules = mayday_server::config::Config::from_toml(
        "[[throttle]]\nname = \"old\"\nproduct = \"App\"\nversion_older_than = \"1.0\"\n\
         action = \"reject\"\n\
         [[throttle]]\nname = \"some\"\nproduct = \"App\"\naction = \"sample\"\npercent = 10\n",
    )
    .unwrap()
    .throttle;
    let server = TestServer::with_config(|config| {
        config.rate_limit.enabled = true;
        config.rate_limit.per_minute = std::num::NonZeroU32::new(1).unwrap();
        config.rate_limit.burst = std::num::NonZeroU32::new(4).unwrap();
        config.throttle = rules;
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/crash-sites", server.url);
    let key = format!("v1:{}", "cd".repeat(32));
    let post = |version: &str| {
        http.post(&url)
            .json(&json!({ "product": "App", "version": version, "crash_site": key }))
            .send()
    };
    let rejected = post("0.9").await.unwrap();
    assert_eq!(rejected.status(), 200);
    assert_eq!(rejected.text().await.unwrap(), "Discarded=rule_old\n");
    // Sampled rules sample dumps, not summaries: every one is answered.
    for _ in 0..3 {
        let answered = post("1.5").await.unwrap();
        assert_eq!(answered.status(), 200);
        assert_eq!(
            answered.json::<Value>().await.unwrap(),
            json!({ "decision": "send" })
        );
    }
    // The burst of four is spent.
    let limited = post("1.5").await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let metrics = metrics(&server.url).await;
    assert_eq!(
        metric(
            &metrics,
            "mayday_crash_site_summaries_total{answer=\"send\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(&metrics, "mayday_throttled_total{outcome=\"rejected\"}"),
        Some(1.0)
    );
    server.stop().await;
}

/// A server that records each request (head and body) and answers every one
/// `200` with `answer`: it sees exactly what leaves the machine.
async fn recording_server(answer: &'static str) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                // Head, then as many body bytes as it announces (bounded).
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    request.extend_from_slice(&buf[..n]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length.min(1 << 20) {
                        break;
                    }
                }
                record.lock().unwrap().push(request);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

/// What a summary request carries, seen on the wire: none of the planted values
/// of the privacy tests (client scrubbing off, so the dump still holds them), no
/// module path, no annotation — only product, version, OS family and the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_request_holds_nothing_personal() {
    let (url, seen) = recording_server(r#"{"decision":"counted","status":"open"}"#).await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let with_planted = |args: &[&str]| {
        let mut command = crashy(&data, &url);
        command.args(args);
        plant(&mut command, temp.path());
        command
    };
    let crashed = run(with_planted(&["segv"])).await;
    assert!(!crashed.status.success(), "{}", text(&crashed));
    let dump = walk(&data.join("pending"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "dmp"))
        .expect("a pending dump");
    let dump = std::fs::read(dump).unwrap();
    for planted in [PLANTED_SECRET, PLANTED_USER, PLANTED_HOST] {
        assert!(
            dump.windows(planted.len()).any(|w| w == planted.as_bytes()),
            "{planted} is in the dump, so the test can fail"
        );
    }
    let sent = run(with_planted(&["send"])).await;
    assert!(sent.status.success(), "{}", text(&sent));
    assert!(stdout(&sent).contains("counted "), "{}", text(&sent));

    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "only the summary left the machine");
    let request = String::from_utf8(requests[0].clone()).unwrap();
    assert!(
        request.starts_with("POST /api/v1/crash-sites HTTP/1.1\r\n"),
        "{request}"
    );
    for needle in [
        PLANTED_SECRET,
        PLANTED_USER,
        PLANTED_HOST,
        "channel",
        "example",
        "/home",
        "crashy.rs",
    ] {
        assert!(!request.contains(needle), "{needle} in {request}");
    }
    let body = &request[request.find("\r\n\r\n").unwrap() + 4..];
    let summary: Value = serde_json::from_str(body).unwrap();
    let fields: BTreeSet<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["product", "version", "os", "crash_site"])
    );
    assert_eq!(summary["product"], "crashy");
    assert_eq!(summary["os"], "Linux");
    assert!(
        summary["crash_site"]
            .as_str()
            .is_some_and(|k| k.starts_with("v1:") && k.len() == 67),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_route_gets_the_dump_as_before() {
    let server = TestServer::with_config(|config| config.crash_sites.enabled = false).await;
    let token = server.token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let summary_status = reqwest::Client::new()
        .post(format!("{}/api/v1/crash-sites", server.url))
        .json(&json!({ "product": "crashy", "crash_site": format!("v1:{}", "ab".repeat(32)) }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(summary_status, 404);
    crash(&data, &server.url, "segv", None).await;
    let out = send(&data, &server.url, None).await;
    let ids = sent_ids(&out);
    assert_eq!(ids.len(), 1, "{out}");
    let report = server.wait_processed(&token, &ids[0]).await;
    assert_eq!(report["state"], "processed", "{report}");
    server.stop().await;
}
