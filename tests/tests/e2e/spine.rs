//! The server's main path: real dumps over real HTTP, processed, grouped, read back.

use std::path::Path;

use mayday_report::upload::MINIDUMP_FIELD;
use mayday_server::config::SentryProject;
use mayday_server::index::Role;
use mayday_tests::api::{self, receipt};
use mayday_tests::fixtures::read_json;
use mayday_tests::report::hex;
use mayday_tests::server::{ServerProcess, TestServer, cli_token};
use mayday_tests::testdata::{self, Case, cases};
use mayday_tests::upload::{Multipart, gzip};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Checks a processed report against minidump-stackwalk's output for the same dump
/// and symbols: crash reason and address, and the crashing thread frame for frame.
fn assert_matches_reference(case: &Case, report: &Value) {
    let name = case.dump.display();
    let reference = &read_json(&case.reference);
    assert_eq!(report["state"], "processed", "{name}: {report}");
    assert_eq!(
        report["crash_reason"], reference["crash_info"]["type"],
        "{name}: crash reason"
    );
    assert_eq!(
        hex(&report["crash_address"]),
        hex(&reference["crash_info"]["address"]),
        "{name}: crash address"
    );
    let ours = report["crashing_thread"]["frames"].as_array().unwrap();
    let theirs = reference["crashing_thread"]["frames"].as_array().unwrap();
    assert!(!theirs.is_empty());
    assert_eq!(ours.len(), theirs.len(), "{name}: frame count: {report}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a["module"], b["module"], "{name} frame {i}: module");
        assert_eq!(a["function"], b["function"], "{name} frame {i}: function");
        assert_eq!(
            hex(&a["module_offset"]),
            hex(&b["module_offset"]),
            "{name} frame {i}: module offset"
        );
        // Source paths come back scrubbed: user names in them are masked.
        let scrubbed_file = b["file"]
            .as_str()
            .map(|f| mayday_report::scrub::scrub_text(f, &Default::default()).into_owned());
        assert_eq!(
            a["file"].as_str(),
            scrubbed_file.as_deref(),
            "{name} frame {i}: file"
        );
        assert_eq!(a["line"], b["line"], "{name} frame {i}: line");
        assert_eq!(a["trust"], b["trust"], "{name} frame {i}: trust");
        let inlines = |f: &Value| -> Vec<Value> {
            f["inlines"]
                .as_array()
                .map(|v| v.iter().map(|i| i["function"].clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(inlines(a), inlines(b), "{name} frame {i}: inlines");
    }
}

/// `breakpad-linux-x64-inline`'s .sym has no final newline: minidump-stackwalk
/// rejects the whole file and leaves frame 0 bare. Mayday accepts it, so frame 0
/// carries what Breakpad's own resolver test expects (expected-facts.json).
fn assert_better_than_reference_on_inline_case(report: &Value) {
    let facts =
        read_json(&testdata::dir().join("breakpad-linux-x64-inline/expected/expected-facts.json"));
    let expected = &facts["crashing_thread_frame0"];
    let frame = &report["crashing_thread"]["frames"][0];
    assert_eq!(report["crash_reason"], facts["crash"]["reason"]);
    assert_eq!(
        hex(&report["crash_address"]),
        hex(&facts["crash"]["address"])
    );
    assert_eq!(frame["module"], expected["module"]);
    assert_eq!(
        hex(&frame["module_offset"]),
        hex(&expected["module_offset"])
    );
    assert_eq!(frame["function"], expected["function"], "{frame}");
    assert_eq!(frame["file"], expected["file"]);
    assert_eq!(frame["line"], expected["line"]);
    let inlines: Vec<(Value, Value, Value)> = frame["inlines"]
        .as_array()
        .expect("inlines")
        .iter()
        .map(|i| (i["function"].clone(), i["file"].clone(), i["line"].clone()))
        .collect();
    let expected_inlines: Vec<(Value, Value, Value)> = expected["inlines_innermost_first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["function"].clone(), i["file"].clone(), i["line"].clone()))
        .collect();
    assert_eq!(inlines, expected_inlines);
    // And the reference really did worse.
    let reference =
        read_json(&testdata::dir().join(
            "breakpad-linux-x64-inline/reference/linux_inline.minidump-stackwalk-0.27.0.json",
        ));
    assert!(reference["crashing_thread"]["frames"][0]["function"].is_null());
}

fn is_inline_case(case: &Case) -> bool {
    case.name() == "breakpad-linux-x64-inline"
}

async fn server_with_all_symbols() -> (TestServer, String) {
    let server = TestServer::start().await;
    for symbols in cases().iter().filter_map(Case::symbols) {
        server.add_symbols(&symbols).await;
    }
    let token = server.token(Role::Developer).await;
    (server, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_testdata_dump_matches_the_reference_tool() {
    let (server, token) = server_with_all_symbols().await;
    let mut sent = Vec::new();
    for case in cases() {
        let id = server
            .submit(&case.bytes(), &[("prod", "Test"), ("ver", "1.0")])
            .await
            .id;
        sent.push((case, id));
    }
    for (case, id) in &sent {
        let report = server.wait_processed(&token, id).await;
        assert_eq!(report["id"], id.as_str());
        assert!(report["issue_id"].as_i64().is_some(), "{report}");
        if is_inline_case(case) {
            assert_better_than_reference_on_inline_case(&report);
        } else {
            assert_matches_reference(case, &report);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_extra_json_mixed_and_raw_bodies_give_the_same_report() {
    let (server, token) = server_with_all_symbols().await;
    let case = testdata::case("mozilla-firefox-linux-x64/firefox-linux-x86_64.dmp");
    let dump = case.bytes();
    let extra = std::fs::read_to_string(case.dump.with_extension("extra")).unwrap();

    // Firefox's crash reporter: `extra` a JSON file part, as it sends it.
    let (content_type, body) = Multipart::new()
        .file_as("extra", "extra.json", "application/json", extra.as_bytes())
        .file(MINIDUMP_FIELD, "firefox-linux-x86_64.dmp", &dump)
        .finish();
    let firefox = receipt(server.submit_body(&content_type, body, false).await)
        .await
        .id;
    // gzip-compressed form-data with `extra` a text part.
    let (content_type, body) = Multipart::new().text("extra", &extra).dump(&dump).finish();
    let text_extra = receipt(server.submit_body(&content_type, body, true).await)
        .await
        .id;
    // Old Breakpad senders: multipart/mixed.
    let (content_type, body) = Multipart::mixed()
        .text("prod", "Firefox")
        .dump(&dump)
        .finish();
    let mixed = receipt(server.submit_body(&content_type, body, false).await)
        .await
        .id;
    // Crashpad: product, version and its client id in the query string.
    let (content_type, body) = Multipart::new().dump(&dump).finish();
    let response = server
        .request(
            Method::POST,
            "/submit?product=Crashpad%20App&version=2.0&guid=0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5",
        )
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let crashpad = receipt(response).await.id;
    // A raw minidump body, gzipped, asking for JSON.
    let response = server
        .request(Method::POST, "/api/v1/submit")
        .header("Content-Type", "application/octet-stream")
        .header("Content-Encoding", "gzip")
        .header("Accept", "application/json")
        .body(gzip(&dump))
        .send()
        .await
        .unwrap();
    let (json, raw) = api::json_receipt(response).await;
    assert_eq!(json["deletion_token"].as_str().unwrap().len(), 64);

    let firefox = server.wait_processed(&token, &firefox).await;
    assert_matches_reference(&case, &firefox);
    assert_eq!(firefox["product"], "Firefox");
    assert_eq!(firefox["version"], "86.0a1");
    // Its annotations are read, identity fields dropped.
    let extra: Value = serde_json::from_str(&extra).unwrap();
    for key in ["BuildID", "ReleaseChannel", "StartupCrash"] {
        assert_eq!(firefox["annotations"][key], extra[key], "{key}");
    }
    assert!(firefox["annotations"].get("TelemetryClientId").is_none());
    let text_extra = server.wait_processed(&token, &text_extra).await;
    assert_matches_reference(&case, &text_extra);
    assert_eq!(text_extra["annotations"], firefox["annotations"]);
    let mixed = server.wait_processed(&token, &mixed).await;
    assert_matches_reference(&case, &mixed);
    assert_eq!(mixed["product"], "Firefox");
    let crashpad = server.wait_processed(&token, &crashpad).await;
    assert_matches_reference(&case, &crashpad);
    assert_eq!(crashpad["product"], "Crashpad App");
    assert_eq!(crashpad["version"], "2.0");
    assert!(crashpad["annotations"].get("guid").is_none(), "{crashpad}");
    let raw = server.wait_processed(&token, &raw).await;
    assert_matches_reference(&case, &raw);
    // Same crash, same issue.
    for other in [&text_extra, &mixed, &crashpad, &raw] {
        assert_eq!(other["issue_id"], firefox["issue_id"]);
    }
    server.stop().await;
}

/// Electron's `crashReporter` (Crashpad): the app's name and version in
/// `_productName` and `_version`, Electron's own in `prod` and `ver`, the client id
/// as `guid`, the body gzipped, the dump a file part named by its report id. The
/// report is filed under the app, not under Electron.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn electron_uploads_are_filed_under_the_app() {
    let server = TestServer::start().await;
    let token = server.token(Role::Developer).await;
    let dump = testdata::read("electron-nosyms/electron-linux.dmp");
    let (content_type, body) = Multipart::new()
        .text("_companyName", "Acme")
        .text("_productName", "Acme Notes")
        .text("_version", "3.4.1")
        .text("prod", "Electron")
        .text("ver", "28.1.0")
        .text("process_type", "browser")
        .text("platform", "linux")
        .text("guid", "9f0c2d0e5b7a4c1d8e3f6a2b1c0d9e8f")
        .file(
            MINIDUMP_FIELD,
            "2d1b6f3e-7c4a-4e59-9a0b-5f8e1c3d7a26.dmp",
            &dump,
        )
        .finish();
    let id = receipt(server.submit_body(&content_type, body, true).await)
        .await
        .id;
    let report = server.wait_processed(&token, &id).await;
    assert_eq!(report["state"], "processed", "{report}");
    assert_eq!(report["product"], "Acme Notes");
    assert_eq!(report["version"], "3.4.1");
    let annotations = &report["annotations"];
    assert_eq!(annotations["_companyName"], "Acme");
    assert_eq!(annotations["prod"], "Electron");
    assert_eq!(annotations["ver"], "28.1.0");
    assert_eq!(annotations["process_type"], "browser");
    assert!(annotations.get("guid").is_none());
    // Filed under the app's product.
    let issues = |product: &'static str| {
        let server = &server;
        let token = &token;
        async move {
            let (_, list) = server
                .get_json(&format!("/api/v1/issues?product={product}"), token)
                .await;
            list["issues"].as_array().unwrap().len()
        }
    };
    assert_eq!(issues("Acme%20Notes").await, 1);
    assert_eq!(issues("Electron").await, 0);
    server.stop().await;
}

/// Quotes a file name for `curl --form name=@"…"` as gecko's crash reporter does
/// (curl's manual, `-F`): in double quotes, `"` and `\` escaped.
fn curl_quoted(path: &Path) -> String {
    let mut quoted = String::from("\"");
    for c in path.display().to_string().chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Firefox's crash reporter client sends a report the way gecko's
/// `toolkit/crashreporter/client/app/src/net/report.rs` does it first: it runs the
/// system `curl` (the real program, Debian's, installed by
/// `scripts/install-test-deps`) with its user agent, `extra` as a file part read
/// from stdin (`filename=extra.json;type=application/json`), the dump as
/// `upload_file_minidump` and the memory report as `memory_report`, and reads
/// `CrashID=` from what curl prints. The report is filed under Firefox's product and
/// version from `extra`, its annotations read, identity fields dropped, and the
/// memory report (an attachment no rule keeps) stored nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_crash_reporter_uploads_through_curl_as_gecko_runs_it() {
    const MEMORY_MARKER: &str = "memory-report-7d1f0c52e9a4";
    let (server, token) = server_with_all_symbols().await;
    let case = testdata::case("mozilla-firefox-linux-x64/firefox-linux-x86_64.dmp");
    let extra: Value =
        serde_json::from_str(&std::fs::read_to_string(case.dump.with_extension("extra")).unwrap())
            .unwrap();
    // The pending directory as the crash reporter names its files.
    let pending = tempfile::tempdir().unwrap();
    let dump = pending
        .path()
        .join("2b7c4e6a-1f3d-4c58-9a0e-6d2f8b1c3e57.dmp");
    std::fs::copy(&case.dump, &dump).unwrap();
    let memory = pending
        .path()
        .join("2b7c4e6a-1f3d-4c58-9a0e-6d2f8b1c3e57.memory.json.gz");
    let report = serde_json::json!({ "version": 1, "reports": [{ "path": MEMORY_MARKER }] });
    // Stored uncompressed inside the gzip framing, so its text is findable in any
    // blob that kept the attachment's bytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    std::io::Write::write_all(&mut gz, report.to_string().as_bytes()).unwrap();
    std::fs::write(&memory, gz.finish().unwrap()).unwrap();

    let mut curl = tokio::process::Command::new("curl");
    curl.args(["--user-agent", "crashreporter/1.0.0", "--form"])
        .arg("extra=@-;filename=extra.json;type=application/json")
        .arg("--form")
        .arg(format!("upload_file_minidump=@{}", curl_quoted(&dump)))
        .arg("--form")
        .arg(format!("memory_report=@{}", curl_quoted(&memory)))
        .arg(format!("{}/submit", server.url))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = curl
        .spawn()
        .expect("curl (scripts/install-test-deps installs it)");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        let json = serde_json::to_string(&extra).unwrap();
        stdin.write_all(json.as_bytes()).await.unwrap();
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("curl ends in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "curl: {:?} {stdout} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // What gecko's `Response::parse` reads: `key=value` lines.
    let id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("CrashID="))
        .unwrap_or_else(|| panic!("a CrashID line: {stdout}"))
        .to_owned();
    assert!(
        !stdout.lines().any(|line| line.starts_with("Discarded")),
        "{stdout}"
    );

    let report = server.wait_processed(&token, &id).await;
    assert_matches_reference(&case, &report);
    assert_eq!(report["product"], extra["ProductName"], "{report}");
    assert_eq!(report["version"], extra["Version"], "{report}");
    for key in ["BuildID", "ReleaseChannel", "StartupCrash"] {
        assert_eq!(report["annotations"][key], extra[key], "{key}");
    }
    assert!(extra.get("TelemetryClientId").is_some());
    assert!(report["annotations"].get("TelemetryClientId").is_none());
    let client_id = extra["TelemetryClientId"].as_str().unwrap();
    assert!(!report.to_string().contains(MEMORY_MARKER));
    server
        .assert_blobs_free_of(&id, &[MEMORY_MARKER, client_id])
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashpad_annotations_are_read_from_the_dump() {
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let dump = testdata::read("crashpad-iossim-x64-annotations/minidump_crashpad_annotation.dmp");
    let (_, report) = server.submit_processed(&token, &dump, &[]).await;
    let annotations = &report["annotations"];
    assert_eq!(annotations["prod"], "xcuitest");
    assert_eq!(annotations["plat"], "iOS");
    assert_eq!(annotations["exceptionName"], "NSRangeException");
    assert_eq!(report["product"], "xcuitest");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_crash_groups_and_different_crashes_do_not() {
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let a = testdata::read("breakpad-win-x86-minidump2/minidump2.dmp");
    let b = testdata::read("symbolic-linux-x64-crash/linux-mini.dmp");
    let c = testdata::read("electron-nosyms/electron-linux.dmp");
    let d = testdata::read("electron-nosyms/electron-windows.dmp");
    let a1 = server.submit(&a, &[("prod", "A"), ("ver", "1")]).await.id;
    let a2 = server.submit(&a, &[("prod", "A"), ("ver", "2")]).await.id;
    let b1 = server.submit(&b, &[]).await.id;
    let c1 = server.submit(&c, &[]).await.id;
    let d1 = server.submit(&d, &[]).await.id;
    let a1 = server.wait_processed(&token, &a1).await;
    let a2 = server.wait_processed(&token, &a2).await;
    let b1 = server.wait_processed(&token, &b1).await;
    let c1 = server.wait_processed(&token, &c1).await;
    let d1 = server.wait_processed(&token, &d1).await;
    assert_eq!(a1["issue_id"], a2["issue_id"]);
    let issues: std::collections::BTreeSet<i64> = [&a1, &b1, &c1, &d1]
        .iter()
        .map(|r| r["issue_id"].as_i64().unwrap())
        .collect();
    assert_eq!(issues.len(), 4, "four different crashes, four issues");

    let get = |path: &'static str| server.get_json(path, &token);
    let (_, issue) = server
        .get_json(&format!("/api/v1/issues/{}", a1["issue_id"]), &token)
        .await;
    assert_eq!(issue["issue"]["count"], 2);
    assert_eq!(issue["issue"]["status"], "open");
    let versions: Vec<(String, i64)> = issue["counts"]["by_version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_owned(),
                v["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, vec![("1".to_owned(), 1), ("2".to_owned(), 1)]);
    assert_eq!(issue["counts"]["by_os"][0]["value"], "Windows NT");
    assert_eq!(issue["counts"]["by_os"][0]["count"], 2);

    // The list: sorted by count, filtered by product and status.
    let (_, list) = get("/api/v1/issues?sort=count").await;
    let list = list["issues"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["id"], a1["issue_id"]);
    assert_eq!(list[0]["count"], 2);
    let (_, filtered) = get("/api/v1/issues?product=A&status=open&sort=last_seen").await;
    assert_eq!(filtered["issues"].as_array().unwrap().len(), 1);
    let (_, none) = get("/api/v1/issues?status=resolved").await;
    assert!(none["issues"].as_array().unwrap().is_empty());
    let (bad, _) = get("/api/v1/issues?sort=nonsense").await;
    assert_eq!(bad, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let server = TestServer::with_config(|c| {
        c.limits.max_wire_bytes = 256 * 1024;
        c.limits.max_decompressed_bytes = 1024 * 1024;
    })
    .await;
    let dump = testdata::read("breakpad-win-x86-minidump2/minidump2.dmp");
    let post = |content_type: &str, body: Vec<u8>, gzipped: bool| {
        let content_type = content_type.to_owned();
        let server = &server;
        async move { server.submit_body(&content_type, body, gzipped).await }
    };
    let expect = |response: reqwest::Response, status: StatusCode, body: &'static str| async move {
        assert_eq!(response.status(), status);
        let text = response.text().await.unwrap();
        assert!(text.contains(body), "{text:?} should contain {body:?}");
    };

    // Empty body.
    expect(
        post("application/octet-stream", Vec::new(), false).await,
        StatusCode::BAD_REQUEST,
        "Discarded=malformed_empty_minidump",
    )
    .await;
    // No dump part.
    let (ct, body) = Multipart::new().text("prod", "X").finish();
    expect(
        post(&ct, body, false).await,
        StatusCode::BAD_REQUEST,
        "Discarded=malformed_no_minidump",
    )
    .await;
    // A dump part that is not a minidump.
    let (ct, body) = Multipart::new()
        .dump(b"this is not a minidump at all")
        .finish();
    expect(
        post(&ct, body, false).await,
        StatusCode::BAD_REQUEST,
        "Discarded=malformed_not_a_minidump",
    )
    .await;
    // Truncated gzip.
    let (ct, body) = Multipart::new().dump(&dump).finish();
    let mut truncated = gzip(&body);
    truncated.truncate(truncated.len() / 2);
    let response = server
        .request(Method::POST, "/submit")
        .header("Content-Type", ct.clone())
        .header("Content-Encoding", "gzip")
        .body(truncated)
        .send()
        .await
        .unwrap();
    expect(response, StatusCode::BAD_REQUEST, "Discarded=malformed_").await;
    // A gzip bomb: small on the wire, over the decompressed limit.
    let mut bomb_dump = dump.clone();
    bomb_dump.resize(4 * 1024 * 1024, 0);
    let (ct, body) = Multipart::new().dump(&bomb_dump).finish();
    assert!(gzip(&body).len() < 256 * 1024);
    let response = post(&ct, body, true).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Over the wire limit.
    let mut big = dump.clone();
    big.resize(300 * 1024, 7);
    let (ct, body) = Multipart::new().dump(&big).finish();
    let response = post(&ct, body, false).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Garbage multipart.
    let response = post(
        "multipart/form-data; boundary=xyz",
        b"--abc\r\ngarbage\r\n\x00\x01\x02".to_vec(),
        false,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Multipart without a boundary, and an unknown content type.
    expect(
        post("multipart/form-data", b"x".to_vec(), false).await,
        StatusCode::BAD_REQUEST,
        "malformed_multipart_boundary",
    )
    .await;
    expect(
        post("text/html", b"<html>".to_vec(), false).await,
        StatusCode::BAD_REQUEST,
        "malformed_content_type",
    )
    .await;
    // Annotations over their limit.
    let long = "x".repeat(70 * 1024);
    let (ct, body) = Multipart::new().text("comment", &long).dump(&dump).finish();
    assert_eq!(
        post(&ct, body, false).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // An `extra` part that is not JSON.
    let (ct, body) = Multipart::new()
        .text("extra", "{not json")
        .dump(&dump)
        .finish();
    expect(
        post(&ct, body, false).await,
        StatusCode::BAD_REQUEST,
        "malformed_extra_json",
    )
    .await;

    let keys = server.store_keys(None).await;
    assert!(keys.is_empty(), "nothing stored: {keys:?}");
    assert_eq!(server.state.index().queue_depth().await.unwrap(), 0);
    let listed = server
        .state
        .index()
        .list_issues(&mayday_server::index::IssueFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(listed.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_minidump_is_accepted_and_fails_with_a_reason() {
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let dump = testdata::read("breakpad-win-x86-minidump2/minidump2.dmp");
    for len in [4, 32, 200] {
        let (_, report) = server.submit_processed(&token, &dump[..len], &[]).await;
        assert_eq!(report["state"], "failed", "{len}: {report}");
        assert!(
            report["failure"].as_str().is_some_and(|f| !f.is_empty()),
            "{report}"
        );
    }
    // Cut in half, the stream directory survives: rust-minidump reads what is
    // there, and the report is processed from it rather than thrown away.
    let (_, half) = server
        .submit_processed(&token, &dump[..dump.len() / 2], &[])
        .await;
    assert_eq!(half["state"], "processed", "{half}");
    assert_eq!(half["crash_reason"], "EXCEPTION_ACCESS_VIOLATION_WRITE");
    // The server is still fine.
    let (_, whole) = server.submit_processed(&token, &dump, &[]).await;
    assert_eq!(whole["state"], "processed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_wants_a_valid_token() {
    let server = TestServer::start().await;
    let get = |path: &str| server.request(Method::GET, path);
    assert_eq!(
        get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
    for path in [
        "/api/v1/issues",
        "/api/v1/issues/1",
        "/api/v1/reports/bp-00000000-0000-0000-0000-000000000000",
        "/api/v1/reports/bp-00000000-0000-0000-0000-000000000000/minidump",
    ] {
        let none = get(path).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{path}");
        let (wrong, _) = server.get_bytes(path, "mdy_not-a-token").await;
        assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{path}");
    }
    let uploader = server.token(Role::Uploader).await;
    let (forbidden, _) = server.get_json("/api/v1/issues", &uploader).await;
    assert_eq!(forbidden, StatusCode::FORBIDDEN);
    let developer = server.token(Role::Developer).await;
    let (missing, _) = server
        .get_json(
            "/api/v1/reports/bp-00000000-0000-0000-0000-000000000000",
            &developer,
        )
        .await;
    assert_eq!(missing, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minidump_can_be_downloaded_and_the_read_is_audited() {
    // Not shared with crashpad_annotations_are_read_from_the_dump: 3 lines of set-up, its own dump.
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let dump = testdata::read("symbolic-win-x86-crash/windows-mini.dmp");
    let (id, _) = server.submit_processed(&token, &dump, &[]).await;
    let (status, bytes) = server
        .get_bytes(&format!("/api/v1/reports/{id}/minidump"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&bytes[..4], b"MDMP");
    assert_eq!(bytes.len(), dump.len());
    let audit = server.state.index().audit_entries(10, 0).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "report.download" && e.target == id)
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "report.read" && e.target == id)
    );
    server.stop().await;
}

fn symbols_dir_into_store(data_dir: &Path, case: &str) {
    let from = testdata::dir().join(case).join("symbols");
    let to = data_dir.join("store/symbols");
    for file in mayday_tests::scan::walk(&from) {
        let target = to.join(file.strip_prefix(&from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// The acknowledged report survives a SIGKILL right after the 200, and a restart
/// processes it. Symbols are copied into `<data_dir>/store/symbols` by hand, as an
/// operator would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_acknowledged_before_a_sigkill_is_processed_after_restart() {
    let data = tempfile::tempdir().unwrap();
    symbols_dir_into_store(data.path(), "breakpad-win-x86-minidump2");
    let token = cli_token(data.path(), "developer");
    // No workers: the job is certainly still queued when the server dies.
    let first = ServerProcess::start(data.path(), &[("MAYDAY_WORKERS", "0")]);
    let dump = testdata::read("breakpad-win-x86-minidump2/minidump2.dmp");
    let id = api::submit(&first.url, &dump, &[("prod", "Durable")])
        .await
        .id;
    first.kill();

    let second = ServerProcess::start(data.path(), &[]);
    let report = api::wait_processed(&second.url, &token, &id).await;
    assert_eq!(report["state"], "processed");
    assert_eq!(report["product"], "Durable");
    assert_eq!(
        report["crashing_thread"]["frames"][0]["function"],
        "`anonymous namespace'::CrashFunction"
    );
    // Logs carry no client address.
    let log = second.log.lock().unwrap().join("\n");
    assert!(!log.contains("127.0.0.1:") || log.contains("listening"));
    drop(second);
}

/// SIGTERM, an operator's stop (and how the throughput benchmark ends its phases),
/// stops a server with a worker running on its own and with success; what it
/// acknowledged is processed after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_with_sigterm_exits_by_itself_and_keeps_what_it_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    symbols_dir_into_store(data.path(), "breakpad-win-x86-minidump2");
    let token = cli_token(data.path(), "developer");
    let first = ServerProcess::start(data.path(), &[]);
    let dump = testdata::read("breakpad-win-x86-minidump2/minidump2.dmp");
    let id = api::submit(&first.url, &dump, &[("prod", "Stopped")])
        .await
        .id;
    let exited = tokio::task::block_in_place(|| first.stop(std::time::Duration::from_secs(30)));
    assert!(
        exited.is_some_and(|status| status.success()),
        "the server did not exit by itself with success after SIGTERM: {exited:?}"
    );

    let second = ServerProcess::start(data.path(), &[]);
    let report = api::wait_processed(&second.url, &token, &id).await;
    assert_eq!(report["state"], "processed");
    assert_eq!(report["product"], "Stopped");
    second.kill();
}

/// A server with the symbols of `breakpad-win-x86-minidump2`, and a developer token.
async fn server_with_minidump2_symbols() -> (TestServer, String) {
    let server = TestServer::start().await;
    server
        .add_symbols(&testdata::dir().join("breakpad-win-x86-minidump2/symbols"))
        .await;
    let token = server.token(Role::Developer).await;
    (server, token)
}

/// Stack memory is kept while a report may be reprocessed for missing symbols, and
/// dropped from the stored dump once its crashing thread is symbolicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_memory_is_dropped_once_the_crashing_thread_is_symbolicated() {
    let (server, token) = server_with_minidump2_symbols().await;
    let with_symbols = testdata::read("breakpad-win-x86-minidump2/minidump2.dmp");
    let without = testdata::read("symbolic-win-x86-crash/windows-mini.dmp");
    let a = server.submit(&with_symbols, &[]).await.id;
    let b = server.submit(&without, &[]).await.id;
    let download = |id: String| {
        let (server, token) = (&server, &token);
        async move {
            let path = format!("/api/v1/reports/{id}/minidump");
            let (_, bytes) = server.get_bytes(&path, token).await;
            mayday_report::scrub::inventory(&bytes).unwrap()
        }
    };
    let a_report = server.wait_processed(&token, &a).await;
    assert!(
        a_report["scrub"]["removed"]["stack_memory_bytes_dropped"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(download(a.clone()).await.stack_memory_bytes, 0);
    let b_report = server.wait_processed(&token, &b).await;
    assert!(b_report["scrub"]["removed"]["stack_memory_bytes_dropped"].is_null());
    assert!(!b_report["missing_symbols"].as_array().unwrap().is_empty());
    assert!(download(b.clone()).await.stack_memory_bytes > 0);
    server.stop().await;
}

/// A report whose stack memory was dropped is final: its stored dump can no longer
/// be walked. A job that runs for it again (a retry after a failure that came after
/// the dump was stripped, or a lease that ran out on a slow worker) records the
/// report as it was walked, not a walk of the stripped dump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_run_again_after_the_stack_memory_was_dropped_keeps_the_walked_stack() {
    let (server, token) = server_with_minidump2_symbols().await;
    let case = testdata::case("breakpad-win-x86-minidump2/minidump2.dmp");
    let (id, first) = server.submit_processed(&token, &case.bytes(), &[]).await;
    assert_matches_reference(&case, &first);
    assert!(
        first["scrub"]["removed"]["stack_memory_bytes_dropped"]
            .as_u64()
            .unwrap()
            > 0
    );

    server.process_again(&id).await;
    let (_, again) = server
        .get_json(&format!("/api/v1/reports/{id}"), &token)
        .await;
    assert_matches_reference(&case, &again);
    assert_eq!(again["crashing_thread"], first["crashing_thread"]);
    assert_eq!(again["scrub"], first["scrub"]);
    server.stop().await;
}

/// A 32-byte run of `stack` with many different values and found nowhere in
/// `elsewhere`: a marker of the stack memory.
fn stack_marker(stack: &[u8], elsewhere: &[u8]) -> Vec<u8> {
    (0..stack.len().saturating_sub(32))
        .step_by(8)
        .map(|i| &stack[i..i + 32])
        .find(|w| {
            let mut seen = [false; 256];
            w.iter().for_each(|b| seen[*b as usize] = true);
            seen.iter().filter(|s| **s).count() >= 20 && !mayday_tests::scan::contains(elsewhere, w)
        })
        .expect("a distinctive run in the stack memory")
        .to_vec()
}

/// The stack memory of a received dump is sealed under a stack key of its own,
/// in its one raw object. Once the report is fully symbolicated the key is
/// destroyed with the finishing commit and the object is not rewritten: the
/// data key still opens the dump, with its stacks zero exactly as
/// `drop_stack_memory` leaves them, and nothing the server holds yields the
/// stack bytes again; the report is processed again as it was walked. A raw
/// object stored before stack keys (stack memory inline) loses it the old way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_stack_memory_destroys_its_key_and_leaves_the_raw_object_as_stored() {
    use mayday_report::scrub::{ScrubConfig, cut_stack_memory, drop_stack_memory, scrub_minidump};
    use mayday_server::vault::{self, RawStack};

    let (server, token) = server_with_minidump2_symbols().await;
    let case = testdata::case("breakpad-win-x86-minidump2/minidump2.dmp");
    // What the server stores: the dump scrubbed, its stacks apart.
    let mut scrubbed = case.bytes();
    scrub_minidump(&mut scrubbed, &ScrubConfig::default()).unwrap();
    let mut cut = scrubbed.clone();
    let stacks = cut_stack_memory(&mut cut, 0).unwrap();
    let mut dropped = scrubbed.clone();
    drop_stack_memory(&mut dropped).unwrap();
    let marker = stack_marker(&stacks.bytes, &dropped);

    // Stored: one raw object whose stack part only the stack key opens.
    let id = server.submit(&case.bytes(), &[]).await.id;
    let rid: mayday_server::report_id::ReportId = id.parse().unwrap();
    let vault = server.state.vault();
    let storage = server.state.storage();
    let raw_key = server
        .report_keys(&id)
        .await
        .into_iter()
        .find(|k| k.ends_with(".dmp"))
        .map(|k| object_store::path::Path::from(k.as_str()))
        .expect("a raw object");
    let first = server.wait_processed(&token, &id).await;
    assert_matches_reference(&case, &first);
    let dropped_bytes = first["scrub"]["removed"]["stack_memory_bytes_dropped"]
        .as_u64()
        .unwrap();
    assert_eq!(dropped_bytes, stacks.holes.len());
    assert!(first["missing_symbols"].as_array().unwrap().is_empty());

    // The stack key is gone, the data key kept.
    let keys = vault.keys(&rid).await.unwrap().expect("the report's keys");
    assert!(keys.stack.is_none());
    assert!(
        !server
            .state
            .index()
            .stack_key_ids()
            .await
            .unwrap()
            .contains(&rid)
    );
    // The object opens to the dump without its stacks, as drop_stack_memory
    // leaves it, and no key the server holds opens its stack part.
    let object = storage.get(&raw_key).await.unwrap().unwrap();
    assert!(object.starts_with(b"MDR2"));
    let raw = vault::open_raw(&raw_key, object.clone(), &keys, true).unwrap();
    assert_eq!(raw.stack, RawStack::Destroyed);
    assert!(
        raw.dump[..] == dropped[..],
        "the stored dump is the stripped one"
    );
    assert!(!mayday_tests::scan::contains(&object, &marker));
    let data_as_stack = vault::ReportKeys {
        data: vault.data_key(&rid).await.unwrap().unwrap(),
        stack: vault.data_key(&rid).await.unwrap(),
    };
    assert!(vault::open_raw(&raw_key, object.clone(), &data_as_stack, true).is_err());
    for (key, plain) in server.opened_report_blobs(&id).await {
        assert!(!mayday_tests::scan::contains(&plain, &marker), "{key}");
    }
    let (status, download) = server
        .get_bytes(&format!("/api/v1/reports/{id}/minidump"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(download == dropped);

    // Processed again: the report as it was walked, the object untouched.
    server.process_again(&id).await;
    let (_, again) = server
        .get_json(&format!("/api/v1/reports/{id}"), &token)
        .await;
    assert_eq!(again["crashing_thread"], first["crashing_thread"]);
    assert_eq!(again["scrub"], first["scrub"]);
    assert_eq!(storage.get(&raw_key).await.unwrap().unwrap(), object);

    // A raw object stored before stack keys, the stacks in the dump: processed,
    // and its dump rewritten without them.
    let old = mayday_server::report_id::ReportId::new();
    let day = time::OffsetDateTime::now_utc().date();
    let old_key = vault::raw_dump_key(day, &old);
    let (data_key, wrapped) = vault.new_key(&old);
    let meta = serde_json::to_vec(&vault::RawMeta {
        id: old.to_string(),
        received_at: mayday_server::index::now_ms(),
        annotations: Default::default(),
        dropped_attachments: Vec::new(),
        text_attachments: Vec::new(),
        scrub: Default::default(),
    })
    .unwrap();
    vault
        .put_raw_dump(&old_key, &old_key, &data_key, &scrubbed, Some(&meta))
        .await
        .unwrap();
    server
        .state
        .index()
        .insert_report_with_job(&mayday_server::index::NewReport {
            id: old,
            received_at: mayday_server::index::now_ms(),
            product: None,
            version: None,
            deletion_token_hash: "ab".repeat(32),
            raw_key: old_key.to_string(),
            meta_key: old_key.to_string(),
            data_key: wrapped,
            stack_key: None,
        })
        .await
        .unwrap();
    server.state.wake_workers();
    let earlier = server.wait_processed(&token, &old.to_string()).await;
    assert_eq!(earlier["crashing_thread"], first["crashing_thread"]);
    assert_eq!(
        earlier["scrub"]["removed"]["stack_memory_bytes_dropped"],
        dropped_bytes
    );
    let keys = vault.keys(&old).await.unwrap().unwrap();
    let object = storage.get(&old_key).await.unwrap().unwrap();
    assert!(
        object.starts_with(b"MDY2"),
        "still the earlier form (one sealed blob)"
    );
    let raw = vault::open_raw(&old_key, object.clone(), &keys, true).unwrap();
    assert_eq!(raw.stack, RawStack::InDump);
    assert!(raw.dump[..] == dropped[..]);
    assert_eq!(raw.meta.as_deref(), Some(&meta[..]));
    server.stop().await;
}

/// The official Sentry SDK (sentry-sdk from PyPI) pointed at Mayday with a DSN
/// sends a minidump as an envelope attachment: it becomes a processed report
/// filed under the release's name and version, and nothing else of the event
/// (the machine's name, the SDK's contexts) is stored. Sentry-native's minidump
/// form is read too; an envelope without a dump is answered and dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentry_sdk_reports_a_minidump_through_its_dsn() {
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let case = testdata::case("breakpad-win-x86-minidump2/minidump2.dmp");
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("crash.dmp");
    std::fs::write(&dump, case.bytes()).unwrap();
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let dsn = format!("http://0123456789abcdef@127.0.0.1:{port}/42");
    let script = mayday_tests::fixtures::workspace_root().join("tests/sentry/send_minidump.py");
    let mut command = std::process::Command::new(mayday_tests::fixtures::test_venv_python());
    command
        .arg(script)
        .arg(&dsn)
        .arg(&dump)
        .arg("sentryapp@3.4.5");
    let sent = mayday_tests::command::run(command).await;
    assert!(
        sent.status.success(),
        "{}",
        mayday_tests::command::text(&sent)
    );

    let ids = server
        .state
        .index()
        .report_ids_received_before(i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1, "one report from the SDK");
    let report = server.wait_processed(&token, &ids[0].to_string()).await;
    assert_eq!(report["state"], "processed", "{report}");
    assert_eq!(report["product"], "sentryapp");
    assert_eq!(report["version"], "3.4.5");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let text = report.to_string();
    assert!(
        !text.contains(host.trim()),
        "the machine's name is not kept: {text}"
    );
    assert!(!text.contains("sentry_key") && !text.contains("0123456789abcdef"));

    // sentry-native's form: the dump and the event as the `sentry` JSON field.
    let event = r#"{"event_id":"00112233445566778899aabbccddeeff","release":"nativeapp@1.0.1","user":{"email":"alice@example.org"}}"#;
    let form = Multipart::new()
        .dump(&case.bytes())
        .text("sentry", event)
        .finish();
    let path = "/api/42/minidump/?sentry_key=0123456789abcdef";
    let response = post_form(&server, path, form, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["id"], "00112233445566778899aabbccddeeff");
    let report = server
        .wait_processed(&token, answer["crash_id"].as_str().unwrap())
        .await;
    assert_eq!(report["product"], "nativeapp");
    assert_eq!(report["version"], "1.0.1");
    assert!(
        !report.to_string().contains("alice@example.org"),
        "{report}"
    );

    // An envelope without a minidump (a plain event): answered, nothing kept.
    let response = server
        .request(reqwest::Method::POST, "/api/42/envelope/")
        .body("{\"event_id\":\"ffeeddccbbaa99887766554433221100\"}\n{\"type\":\"event\"}\n{\"message\":\"hi\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let ids = server
        .state
        .index()
        .report_ids_received_before(i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    server.stop().await;
}

/// Posts a multipart form (`(content type, body)`) to `path`, with an
/// `X-Sentry-Auth` header when `auth` is given.
async fn post_form(
    server: &TestServer,
    path: &str,
    (content_type, body): (String, Vec<u8>),
    auth: Option<&str>,
) -> reqwest::Response {
    let mut request = server
        .request(Method::POST, path)
        .header("Content-Type", content_type);
    if let Some(auth) = auth {
        request = request.header("X-Sentry-Auth", auth);
    }
    request.body(body).send().await.unwrap()
}

/// Runs the official Sentry SDK's `send_minidump.py` with `dsn`, the dump at
/// `dump`, `release` and the event's `tags`.
async fn sentry_sdk_sends(dsn: &str, dump: &Path, release: &str, tags: &str) {
    let script = mayday_tests::fixtures::workspace_root().join("tests/sentry/send_minidump.py");
    let mut command = std::process::Command::new(mayday_tests::fixtures::test_venv_python());
    command
        .arg(script)
        .arg(dsn)
        .arg(dump)
        .arg(release)
        .arg(tags);
    let sent = mayday_tests::command::run(command).await;
    assert!(
        sent.status.success(),
        "{}",
        mayday_tests::command::text(&sent)
    );
}

/// With `[[sentry.projects]]` configured, the deployment decides which DSNs may
/// send: the real SDK with a listed key reports (filed under the project's
/// product when its release names none, its tags as annotations scrubbed by the
/// annotation rules); an unknown key, a missing one and another project's are
/// refused before the body is read, and nothing of them is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_projects_decide_which_dsn_keys_are_accepted() {
    let server = TestServer::with_config(|config| {
        config.sentry.projects = vec![
            SentryProject {
                id: "42".to_owned(),
                keys: vec!["0123456789abcdef".to_owned()],
                product: Some("configuredapp".to_owned()),
            },
            SentryProject {
                id: "43".to_owned(),
                keys: vec!["fedcba9876543210".to_owned()],
                product: None,
            },
        ];
    })
    .await;
    let token = server.token(Role::Developer).await;
    let case = testdata::case("breakpad-win-x86-minidump2/minidump2.dmp");
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("crash.dmp");
    std::fs::write(&dump, case.bytes()).unwrap();
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let stored = || server.stored_reports();

    let tags = r#"{"environment":"beta","api_token":"tok-9f8e7d6c5b4a","shard":7}"#;
    sentry_sdk_sends(
        &format!("http://0123456789abcdef@127.0.0.1:{port}/42"),
        &dump,
        "2.0.0",
        tags,
    )
    .await;
    let ids = stored().await;
    assert_eq!(ids.len(), 1, "the listed key's report");
    let report = server.wait_processed(&token, &ids[0].to_string()).await;
    assert_eq!(report["product"], "configuredapp", "{report}");
    assert_eq!(report["version"], "2.0.0");
    let annotations = &report["annotations"];
    assert_eq!(annotations["environment"], "beta", "{report}");
    assert_eq!(annotations["shard"], "7", "{report}");
    assert!(annotations.get("api_token").is_none(), "{report}");
    assert!(!report.to_string().contains("tok-9f8e7d6c5b4a"), "{report}");

    // The real SDK with a key no project lists: refused, nothing stored.
    sentry_sdk_sends(
        &format!("http://00000000000000000000@127.0.0.1:{port}/42"),
        &dump,
        "app@2.0.0",
        "{}",
    )
    .await;
    assert_eq!(stored().await.len(), 1);

    // sentry-native's form: no key, an unknown one, another project's.
    for (path, status, answer) in [
        (
            "/api/42/minidump/",
            StatusCode::UNAUTHORIZED,
            "Discarded=dsn_key_missing",
        ),
        (
            "/api/42/minidump/?sentry_key=nope",
            StatusCode::UNAUTHORIZED,
            "Discarded=dsn_key_unknown",
        ),
        (
            "/api/42/minidump/?sentry_key=fedcba9876543210",
            StatusCode::FORBIDDEN,
            "Discarded=dsn_key_other_project",
        ),
        (
            "/api/43/envelope/?sentry_key=0123456789abcdef",
            StatusCode::FORBIDDEN,
            "Discarded=dsn_key_other_project",
        ),
    ] {
        let form = Multipart::new().dump(&case.bytes()).finish();
        let response = post_form(&server, path, form, None).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(response.text().await.unwrap().trim(), answer, "{path}");
    }
    // Project 43's own key, in the header sentry-native's transport sends.
    let form = Multipart::new()
        .dump(&case.bytes())
        .text("sentry[release]", "nativeapp@1.0.2")
        .text("sentry[tags][channel]", "nightly")
        .finish();
    let auth =
        "Sentry sentry_key=fedcba9876543210, sentry_version=7, sentry_client=sentry.native/0.7.0";
    let response = post_form(&server, "/api/43/minidump/", form, Some(auth)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let report = server
        .wait_processed(&token, answer["crash_id"].as_str().unwrap())
        .await;
    assert_eq!(report["product"], "nativeapp");
    assert_eq!(report["annotations"]["channel"], "nightly", "{report}");
    assert_eq!(stored().await.len(), 2);
    server.stop().await;
}
