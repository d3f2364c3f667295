//! Search over reports and issues: every filter narrows on real processed
//! reports, through the API (`GET /api/v1/reports`, `GET /api/v1/issues`) and the
//! issues page in headless Chromium; bad filters are a 400 that says why; the
//! index keeps no annotation text.

use mayday_server::index::Role;
use mayday_tests::api::{integers, texts};
use mayday_tests::browser::Browser;
use mayday_tests::fixtures::bin;
use mayday_tests::scan::traces;
use mayday_tests::server::TestServer;
use mayday_tests::testdata;
use reqwest::StatusCode;
use serde_json::Value;

/// The dumps: three platforms, each its own crash reason and module.
const CASES: &[(&str, &str, &str)] = &[
    ("breakpad-win-x86-minidump2/minidump2.dmp", "1.2.0", "beta"),
    (
        "symbolic-linux-x64-crash/linux-mini.dmp",
        "1.10.0",
        "release",
    ),
    (
        "rust-minidump-macos-x64-inlines/pipeline-inlines-macos-segv.dmp",
        "2.0.0",
        "release",
    ),
];

/// An annotation value to search by, and to look for in the index.
const CHANNEL_NOTE: &str = "search-test-channel-4c1d";

/// The ids the report search finds for `query`.
async fn found(server: &TestServer, token: &str, query: &str) -> Vec<String> {
    let (status, body) = server
        .get_json(&format!("/api/v1/reports?{query}"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let mut ids = texts(&body["reports"], "id");
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_narrows_the_reports_and_issues() {
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let mut reports: Vec<(String, Value)> = Vec::new();
    for (path, version, channel) in CASES {
        let note = format!("{CHANNEL_NOTE}-{channel}");
        let fields = [
            ("prod", "SearchApp"),
            ("ver", *version),
            ("channel", note.as_str()),
        ];
        let dump = testdata::case(path).bytes();
        reports.push(server.submit_processed(&token, &dump, &fields).await);
    }
    let (win, linux, mac) = (&reports[0], &reports[1], &reports[2]);
    let all = sorted(&[&win.0, &linux.0, &mac.0]);
    let fact = |r: &(String, Value), name: &str| r.1[name].as_str().unwrap().to_owned();
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };

    let release = format!("channel={CHANNEL_NOTE}-release");
    let today = time::OffsetDateTime::now_utc().date();
    let day = |d: time::Date| d.to_string();
    // Each query, and the reports it finds.
    let queries = [
        ("product=SearchApp".to_owned(), all.clone()),
        ("product=Other".to_owned(), sorted(&[])),
        ("version=1.10.0".to_owned(), sorted(&[&linux.0])),
        // Versions compare as versions: 1.10.0 is after 1.2.0.
        ("min_version=1.3".to_owned(), sorted(&[&linux.0, &mac.0])),
        (format!("os={}", enc(&fact(win, "os"))), sorted(&[&win.0])),
        (
            format!(
                "os={}&os_version={}",
                enc(&fact(linux, "os")),
                enc(&fact(linux, "os_version"))
            ),
            sorted(&[&linux.0]),
        ),
        (
            format!("crash_reason={}", enc(&fact(mac, "crash_reason"))),
            sorted(&[&mac.0]),
        ),
        (
            format!("module={}", enc(&fact(win, "crash_module"))),
            sorted(&[&win.0]),
        ),
        (
            format!("annotation={}", enc(&release)),
            sorted(&[&linux.0, &mac.0]),
        ),
        (format!("since={}", day(today)), all),
        (
            format!("until={}", day(today.previous_day().unwrap())),
            sorted(&[]),
        ),
        // Filters combine.
        (
            format!(
                "min_version=1.3&annotation={}&until={}",
                enc(&release),
                day(today)
            ),
            sorted(&[&linux.0, &mac.0]),
        ),
    ];
    for (query, want) in queries {
        assert_eq!(found(&server, &token, &query).await, want, "{query}");
    }

    // The issue list takes the same filters: an issue matches through its reports.
    let (status, body) = server
        .get_json(
            &format!("/api/v1/issues?status=open&annotation={}", enc(&release)),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut issues = integers(&body["issues"], "id");
    issues.sort();
    let mut want = vec![
        linux.1["issue_id"].as_i64().unwrap(),
        mac.1["issue_id"].as_i64().unwrap(),
    ];
    want.sort();
    assert_eq!(issues, want);

    // The CLI takes the same filters.
    let cli = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin("mayday-server"))
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let remote = |more: &[&str]| -> Vec<String> {
        ["issues", "--server", &server.url, "--token", &token]
            .iter()
            .chain(more)
            .map(|s| s.to_string())
            .collect()
    };
    let out = cli(remote(&["search", "--annotation", &release, "--json"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["reports"].as_array().unwrap().len(), 2, "{answer}");
    let out = cli(remote(&["list", "--min-version", "1.3"])).await;
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{listed}");
    assert_eq!(
        listed.lines().count(),
        3,
        "a header and two issues:\n{listed}"
    );

    // Bad filters say why; support may not search.
    for bad in [
        "min_version=not%20a%20version!!",
        "since=yesterday",
        "annotation=novalue",
        "limit=abc",
    ] {
        let (status, body) = server
            .get_json(&format!("/api/v1/reports?{bad}"), &token)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let support = server.token(Role::Support).await;
    let (status, _) = server.get_json("/api/v1/reports", &support).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The index holds the annotations' tags, not their text (and every blob
    // is sealed): no byte under the data dir carries it.
    let hits = traces(&server.data_dir, &[CHANNEL_NOTE.as_bytes().to_vec()]);
    assert!(hits.is_empty(), "annotation text stored: {hits:?}");

    // The issues page's filters narrow the list in a real browser.
    let browser = Browser::start(&server.url).await;
    browser.goto("/login").await;
    browser.sign_in(&token).await;
    browser.goto("/issues").await;
    assert_eq!(browser.find_all("#issues a.issue").await.len(), 3);
    browser.fill("#filter-min_version", "1.3").await;
    browser.fill("#filter-annotation", &release).await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for_query("min_version=1.3").await;
    browser.find("#issues").await;
    assert_eq!(browser.find_all("#issues a.issue").await.len(), 2);
    browser.screenshot("issues-search.png").await;
    browser.fill("#filter-module", "no-such-module.so").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for_query("no-such-module.so").await;
    browser.find("#no-issues").await;
    browser.close().await;
    server.stop().await;
}
