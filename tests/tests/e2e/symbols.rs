//! Symbols through the server: the real `mayday-symbols upload` CLI and the upload
//! API store them, reports that lacked them are reprocessed into the right issue,
//! the real `minidump-stackwalk --symbols-url` reads them back from Mayday's
//! Breakpad-layout route, and bad uploads write nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mayday_server::index::Role;
use mayday_tests::api::{integers, texts};
use mayday_tests::command::{run, symbols_upload, text};
use mayday_tests::crashy;
use mayday_tests::fixtures::{bin, example, read_json, system_libc};
use mayday_tests::report::{frames, functions};
use mayday_tests::server::TestServer;
use mayday_tests::testdata;
use mayday_tests::upload::{Multipart, gzip};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Crashes `crashy <kind>` with a fresh data dir under `dir`, sends the report and
/// returns its CrashID.
async fn crash_and_send(dir: &Path, server: &str, kind: &str) -> String {
    let data = tempfile::tempdir_in(dir).unwrap().keep();
    crashy::crash_and_send(&data, server, kind).await
}

/// Whether a function of `report`'s crashing thread has `name` in its name.
fn names(report: &Value, name: &str) -> bool {
    functions(report).iter().any(|f| f.contains(name))
}

/// Every key under `symbols/` in the server's object store.
async fn symbol_keys(server: &TestServer) -> Vec<String> {
    server.store_keys(Some("symbols")).await
}

/// `POST /api/v1/symbols` with `body`, optional query, headers and token.
async fn post_symbols(
    server: &TestServer,
    token: Option<&str>,
    query: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = server
        .request(Method::POST, &format!("/api/v1/symbols{query}"))
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    mayday_tests::api::json_of(request.send().await.unwrap()).await
}

/// A zip of `(path, bytes)` entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (path, bytes) in entries {
        writer.start_file(*path, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

const MINIDUMP2: &str = "breakpad-win-x86-minidump2";
const TEST_APP_ID: &str = "5A9832E5287241C1838ED98914E9B7FF1";
const KERNEL32_ID: &str = "BCE8785C57B44245A669896B6A19B9542";

fn minidump2_sym(debug_file: &str, id: &str, file: &str) -> Vec<u8> {
    testdata::read(&format!("{MINIDUMP2}/symbols/{debug_file}/{id}/{file}"))
}

/// The real `minidump-stackwalk` installed by `scripts/install-test-deps`.
fn minidump_stackwalk() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let path = PathBuf::from(home).join(".cargo/bin/minidump-stackwalk");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps (it installs minidump-stackwalk 0.27)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_uploaded_symbols_name_the_crashing_function_and_a_second_upload_skips_them() {
    let (server, uploader) = TestServer::with_token(Role::Uploader).await;
    let developer = server.token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();

    let crashy_bin = example("crashy");
    let first = symbols_upload(&[&crashy_bin], &server.url, &uploader).await;
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    assert!(out.contains("1 uploaded, 0 already present"), "{out}");
    let keys = symbol_keys(&server).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("symbols/crashy/") && keys[0].ends_with("/crashy.sym"),
        "{keys:?}"
    );

    let id = crash_and_send(temp.path(), &server.url, "segv").await;
    let report = server.wait_processed(&developer, &id).await;
    assert_eq!(report["state"], "processed", "{report}");
    let names = functions(&report);
    assert!(
        names
            .iter()
            .take(2)
            .any(|f| f.contains("crashy::crash_segv")),
        "crash_segv is the crashing frame (or right under the helper that faulted): {names:?}"
    );
    // File and line of crashy's own source, on the crashing thread, the crashing
    // function's included (crashy is built with full debug info).
    let located: Vec<(String, String, u64)> = frames(&report)
        .iter()
        .filter_map(|f| {
            let file = f["file"].as_str()?;
            let line = f["line"].as_u64()?;
            file.ends_with("examples/crashy.rs").then(|| {
                (
                    f["function"].as_str().unwrap_or_default().to_owned(),
                    file.to_owned(),
                    line,
                )
            })
        })
        .collect();
    assert!(
        located
            .iter()
            .any(|(function, _, line)| function == "crashy::crash_segv" && *line > 0),
        "crash_segv with file:line in crashy.rs: {}",
        report["crashing_thread"]
    );
    let crashy = report["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["filename"] == "crashy")
        .unwrap();
    assert_eq!(crashy["loaded_symbols"], true, "{crashy}");

    // Again: the server already has them, so nothing is sent, and that is success.
    let second = symbols_upload(&[&crashy_bin], &server.url, &uploader).await;
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert!(out.contains("0 uploaded, 1 already present"), "{out}");
    assert_eq!(symbol_keys(&server).await, keys);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_without_symbols_are_reprocessed_into_the_issue_of_symbolicated_ones() {
    let (server, uploader) = TestServer::with_token(Role::Uploader).await;
    let developer = server.token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    // The server has the system's C library symbols (the CLI finds its separate
    // debug file by build id), so abort() unwinds exactly and its frames are named,
    // with or without crashy's symbols.
    let out = symbols_upload(&[&system_libc()], &server.url, &uploader).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 uploaded"), "{}", text(&out));

    // No crashy symbols: two different crashes in the same module group apart, by
    // module and offset.
    let segv = crash_and_send(temp.path(), &server.url, "segv").await;
    let abort = crash_and_send(temp.path(), &server.url, "abort").await;
    let segv_before = server.wait_processed(&developer, &segv).await;
    let abort_before = server.wait_processed(&developer, &abort).await;
    for report in [&segv_before, &abort_before] {
        assert_eq!(report["state"], "processed", "{report}");
        assert!(
            !names(report, "crashy::"),
            "no crashy symbols yet: {:?}",
            functions(report)
        );
        let missing = report["missing_symbols"].as_array().unwrap();
        assert!(
            missing.iter().any(|m| m["debug_file"] == "crashy"),
            "crashy's symbols are recorded as missing: {missing:?}"
        );
    }
    let segv_issue_before = segv_before["issue_id"].as_i64().unwrap();
    let abort_issue_before = abort_before["issue_id"].as_i64().unwrap();
    assert_ne!(
        segv_issue_before, abort_issue_before,
        "different crashes, different issues"
    );
    assert!(
        segv_before["signature"]
            .as_str()
            .unwrap()
            .contains("crashy@0x"),
        "module+offset signature: {}",
        segv_before["signature"]
    );

    // The symbols arrive: both reports are queued again.
    let out = symbols_upload(&[&example("crashy")], &server.url, &uploader).await;
    assert!(out.status.success(), "{}", text(&out));
    let admin = server.token(Role::Admin).await;
    let (_, audit) = server.get_json("/api/v1/audit", &admin).await;
    let upload = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "symbols.upload")
        .find(|e| e["detail"].as_str().unwrap_or_default().contains("crashy"))
        .unwrap_or_else(|| panic!("the upload is audited: {audit}"));
    assert!(
        upload["detail"]
            .as_str()
            .unwrap()
            .contains("2 report(s) queued for reprocessing"),
        "{upload}"
    );
    server
        .wait_report(&developer, &segv, |r| names(r, "crashy::crash_segv"))
        .await;
    server
        .wait_report(&developer, &abort, |r| names(r, "crashy::crash_abort"))
        .await;
    // The processed report is written before the index moves it: wait for the
    // queue to drain, then read both again.
    server.drain().await;
    let segv_after = server.wait_processed(&developer, &segv).await;
    let abort_after = server.wait_processed(&developer, &abort).await;
    assert!(
        !segv_after["missing_symbols"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["debug_file"] == "crashy"),
        "{}",
        segv_after["missing_symbols"]
    );
    let segv_issue = segv_after["issue_id"].as_i64().unwrap();
    let abort_issue = abort_after["issue_id"].as_i64().unwrap();
    assert_ne!(
        segv_issue, segv_issue_before,
        "the signature changed, so did the issue: {} -> {}",
        segv_before["signature"], segv_after["signature"]
    );
    assert_ne!(segv_issue, abort_issue);
    // libc's and std's abort frames are skipped: the signature starts at crashy's.
    assert!(
        abort_after["signature"]
            .as_str()
            .unwrap()
            .starts_with("crashy::crash_abort"),
        "{}",
        abort_after["signature"]
    );

    // A crash processed with symbols from the start lands in the same issue.
    let fresh = crash_and_send(temp.path(), &server.url, "segv").await;
    let fresh = server.wait_processed(&developer, &fresh).await;
    assert_eq!(fresh["issue_id"].as_i64(), Some(segv_issue), "{fresh}");
    assert_eq!(fresh["signature"], segv_after["signature"]);

    // The issues the reports left are gone; the new ones count them.
    for gone in [segv_issue_before, abort_issue_before] {
        let (status, _) = server
            .get_json(&format!("/api/v1/issues/{gone}"), &developer)
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "issue {gone} left empty is deleted"
        );
    }
    let (status, issue) = server
        .get_json(&format!("/api/v1/issues/{segv_issue}"), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(issue["issue"]["count"], 2, "{issue}");
    let (_, list) = server.get_json("/api/v1/issues", &developer).await;
    let ids = integers(&list["issues"], "id");
    assert_eq!(ids.len(), 2, "{list}");
    assert!(
        ids.contains(&segv_issue) && ids.contains(&abort_issue),
        "{ids:?}"
    );
    server.stop().await;
}

/// `minidump-stackwalk --symbols-url <server>/symbols` on minidump2, with its own
/// empty cache: the human output.
async fn stackwalk_through(server: &TestServer, cache: &Path) -> String {
    let mut cmd = Command::new(minidump_stackwalk());
    cmd.arg("--symbols-url")
        .arg(format!("{}/symbols", server.url))
        .arg("--symbols-cache")
        .arg(cache)
        .arg("--symbols-tmp")
        .arg(cache)
        .arg(testdata::dir().join(MINIDUMP2).join("minidump2.dmp"));
    let out = run(cmd).await;
    assert!(out.status.success(), "minidump-stackwalk: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minidump_stackwalk_symbolicates_through_the_symbol_server_route() {
    let (server, uploader) = TestServer::with_token(Role::Uploader).await;
    let temp = tempfile::tempdir().unwrap();

    // Nothing uploaded yet: no names.
    let cache = tempfile::tempdir_in(temp.path()).unwrap();
    let before = stackwalk_through(&server, cache.path()).await;
    assert!(!before.contains("CrashFunction"), "{before}");

    // test_app.pdb as a Tecken zip; kernel32.pdb as a single gzipped .sym.
    let test_app = minidump2_sym("test_app.pdb", TEST_APP_ID, "test_app.sym");
    let zip = zip_of(&[(
        &format!("test_app.pdb/{TEST_APP_ID}/test_app.sym"),
        &test_app,
    )]);
    let (status, json) = post_symbols(
        &server,
        Some(&uploader),
        "",
        &[("Content-Type", "application/zip")],
        zip,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["stored"][0]["debug_file"], "test_app.pdb", "{json}");
    assert_eq!(json["stored"][0]["debug_id"], TEST_APP_ID);
    assert_eq!(json["reprocessing"], 0);
    let kernel32 = minidump2_sym("kernel32.pdb", KERNEL32_ID, "kernel32.sym");
    let (status, json) = post_symbols(
        &server,
        Some(&uploader),
        "?debug_file=kernel32.pdb",
        &[("Content-Encoding", "gzip")],
        gzip(&kernel32),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["stored"][0]["file"], "kernel32.sym", "{json}");
    assert_eq!(
        symbol_keys(&server).await,
        vec![
            format!("symbols/kernel32.pdb/{KERNEL32_ID}/kernel32.sym"),
            format!("symbols/test_app.pdb/{TEST_APP_ID}/test_app.sym"),
        ]
    );

    // The route answers like a symbol server.
    let client = reqwest::Client::new();
    let url = format!(
        "{}/symbols/test_app.pdb/{TEST_APP_ID}/test_app.sym",
        server.url
    );
    let got = client.get(&url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().as_ref(), test_app.as_slice());
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        test_app.len().to_string()
    );
    // Lower-case ids name the same file.
    let lower = format!(
        "{}/symbols/test_app.pdb/{}/test_app.sym",
        server.url,
        TEST_APP_ID.to_ascii_lowercase()
    );
    assert_eq!(
        client.get(&lower).send().await.unwrap().status(),
        StatusCode::OK
    );
    for (path, want) in [
        (
            format!("/symbols/other.pdb/{TEST_APP_ID}/other.sym"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/symbols/test_app.pdb/{TEST_APP_ID}/test_app.exe"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/symbols/test_app.pdb/not-hex/test_app.sym".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/symbols/..%2Fraw/{TEST_APP_ID}/x.sym"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let url = format!("{}{path}", server.url);
        assert_eq!(
            client.get(&url).send().await.unwrap().status(),
            want,
            "GET {path}"
        );
        assert_eq!(
            client.head(&url).send().await.unwrap().status(),
            want,
            "HEAD {path}"
        );
    }

    // The reference tool, through Mayday: the crashing function by name.
    let cache = tempfile::tempdir_in(temp.path()).unwrap();
    let after = stackwalk_through(&server, cache.path()).await;
    assert!(after.contains("CrashFunction"), "{after}");
    assert!(after.contains("kernel32.dll!BaseProcessStart"), "{after}");
    server.stop().await;
}

/// A refused upload: what it is, query, headers, body, expected status and reason.
type BadUpload<'a> = (
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    StatusCode,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_symbol_uploads_are_refused_and_write_nothing() {
    let server = TestServer::with_config(|c| {
        c.symbol_uploads.max_wire_bytes = 2 * 1024 * 1024;
        c.symbol_uploads.max_file_bytes = 4 * 1024 * 1024;
        c.symbol_uploads.max_total_bytes = 4 * 1024 * 1024;
    })
    .await;
    let uploader = server.token(Role::Uploader).await;
    let test_app = minidump2_sym("test_app.pdb", TEST_APP_ID, "test_app.sym");
    // One good upload first, so "nothing written" compares against a store
    // that is not empty.
    let (status, json) = post_symbols(&server, Some(&uploader), "", &[], test_app.clone()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let before = symbol_keys(&server).await;
    assert_eq!(before.len(), 1);

    let good = format!("test_app.pdb/{TEST_APP_ID}/test_app.sym");
    let not_hex_sym =
        b"MODULE windows x86 5A9832E5287241C1838ED98914E9B7FZZ test_app.pdb\nFUNC 1000 10 0 f\n";
    let zeros = vec![0u8; 16 * 1024 * 1024];
    let bomb_sym = {
        let mut sym = b"MODULE Linux x86_64 5A9832E5287241C1838ED98914E9B7FF1 bomb\n".to_vec();
        sym.extend(std::iter::repeat_n(b'\n', 16 * 1024 * 1024));
        sym
    };
    let elf = std::fs::read(example("crashy")).unwrap();
    let elf_head = elf[..64 * 1024].to_vec();
    let cases: Vec<BadUpload<'_>> = vec![
        (
            "traversal in ?debug_file=",
            "?debug_file=..%2F..%2Fraw".to_owned(),
            vec![],
            test_app.clone(),
            StatusCode::BAD_REQUEST,
            "bad_debug_file",
        ),
        (
            "traversal in a zip path",
            String::new(),
            vec![],
            zip_of(&[
                (good.as_str(), test_app.as_slice()),
                (
                    &format!("../test_app.pdb/{TEST_APP_ID}/test_app.sym"),
                    &test_app,
                ),
            ]),
            StatusCode::BAD_REQUEST,
            "bad_path",
        ),
        (
            "traversal inside a zip path",
            String::new(),
            vec![],
            zip_of(&[(&format!("a/../../{TEST_APP_ID}/test_app.sym"), &test_app)]),
            StatusCode::BAD_REQUEST,
            "bad_path",
        ),
        (
            "non-hex debug id on the MODULE line",
            String::new(),
            vec![],
            not_hex_sym.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_debug_id",
        ),
        (
            "non-hex debug id in a zip path",
            String::new(),
            vec![],
            zip_of(&[
                (good.as_str(), test_app.as_slice()),
                (
                    "test_app.pdb/NOT-A-HEX-DEBUG-ID-AT-ALL-XXXXXXXXX/test_app.sym",
                    &test_app,
                ),
            ]),
            StatusCode::BAD_REQUEST,
            "bad_debug_id",
        ),
        (
            "not a .sym: a binary",
            String::new(),
            vec![],
            elf_head,
            StatusCode::BAD_REQUEST,
            "not_a_sym",
        ),
        (
            "not a .sym: text",
            "?debug_file=test_app.pdb".to_owned(),
            vec![],
            b"hello, this is not a symbol file\n".to_vec(),
            StatusCode::BAD_REQUEST,
            "not_a_sym",
        ),
        (
            "not a .sym inside a zip, after a good one",
            String::new(),
            vec![],
            zip_of(&[
                (good.as_str(), test_app.as_slice()),
                (&format!("other.pdb/{TEST_APP_ID}/other.sym"), b"garbage\n"),
            ]),
            StatusCode::BAD_REQUEST,
            "not_a_sym",
        ),
        (
            "zip bomb",
            String::new(),
            vec![],
            zip_of(&[
                (good.as_str(), test_app.as_slice()),
                (&format!("bomb/{TEST_APP_ID}/bomb.sym"), &zeros),
            ]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "gzip bomb",
            String::new(),
            vec![("Content-Encoding", "gzip")],
            gzip(&bomb_sym),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "body over the wire limit",
            String::new(),
            vec![],
            vec![b'\n'; 3 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "says gzip, is not",
            String::new(),
            vec![("Content-Encoding", "gzip")],
            test_app.clone(),
            StatusCode::BAD_REQUEST,
            "bad_gzip",
        ),
        (
            "says zip, is not",
            String::new(),
            vec![("Content-Type", "application/zip")],
            test_app.clone(),
            StatusCode::BAD_REQUEST,
            "bad_zip",
        ),
    ];
    for (what, query, headers, body, want, reason) in cases {
        let (status, json) = post_symbols(&server, Some(&uploader), &query, &headers, body).await;
        assert_eq!(status, want, "{what}: {json}");
        assert_eq!(json["reason"], reason, "{what}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: a reason is given: {json}"
        );
        assert_eq!(
            symbol_keys(&server).await,
            before,
            "{what}: nothing written"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_uploaders_and_admins_may_upload_symbols() {
    let server = TestServer::start().await;
    let test_app = minidump2_sym("test_app.pdb", TEST_APP_ID, "test_app.sym");
    for role in [Role::Developer, Role::Support] {
        let token = server.token(role).await;
        let (status, json) = post_symbols(&server, Some(&token), "", &[], test_app.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {json}");
    }
    let (status, _) = post_symbols(&server, None, "", &[], test_app.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) =
        post_symbols(&server, Some("mdy_not-a-token"), "", &[], test_app.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(symbol_keys(&server).await.is_empty(), "nothing written");

    let token = server.token(Role::Uploader).await;
    let (status, json) = post_symbols(&server, Some(&token), "", &[], test_app.clone()).await;
    assert_eq!(status, StatusCode::OK, "uploader: {json}");
    // An admin, with a form as Tecken takes it (`curl --form symbols.zip=@symbols.zip`).
    let token = server.token(Role::Admin).await;
    let zip = zip_of(&[(
        &format!("test_app.pdb/{TEST_APP_ID}/test_app.sym"),
        &test_app,
    )]);
    let (content_type, form) = Multipart::new()
        .file("symbols.zip", "symbols.zip", &zip)
        .finish();
    let (status, json) = post_symbols(
        &server,
        Some(&token),
        "",
        &[("Content-Type", &content_type)],
        form,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "admin: {json}");
    assert_eq!(json["stored"][0]["debug_file"], "test_app.pdb", "{json}");
    assert_eq!(symbol_keys(&server).await.len(), 1);
    // Each upload is in the audit log, under the token that made it.
    let admin = server.token(Role::Admin).await;
    let (_, audit) = server.get_json("/api/v1/audit", &admin).await;
    let uploads = audit["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("audit entries: {audit}"))
        .iter()
        .filter(|e| e["action"] == "symbols.upload")
        .count();
    assert_eq!(uploads, 2, "{audit}");
    server.stop().await;
}

/// Two server processes on one index and one store under `dir`: `worker`
/// processes, `web` has no workers. A crashy segv is sent to `worker` and processed
/// without symbols, so its caches remember crashy's as missing. Returns both
/// servers, a developer and an uploader token, and the report's CrashID.
async fn crashed_without_symbols(dir: &Path) -> (TestServer, TestServer, String, String, String) {
    let data_dir = dir.join("data");
    let worker = TestServer::with_config(|c| c.data_dir = data_dir.clone()).await;
    let web = TestServer::with_config(|c| {
        c.data_dir = data_dir.clone();
        c.pipeline.workers = 0;
    })
    .await;
    let developer = worker.token(Role::Developer).await;
    let uploader = worker.token(Role::Uploader).await;
    let segv = crash_and_send(dir, &worker.url, "segv").await;
    let before = worker.wait_processed(&developer, &segv).await;
    assert!(!names(&before, "crashy::"), "{:?}", functions(&before));
    assert!(worker.state.symbols().cache_stats().negative_entries > 0);
    (worker, web, developer, uploader, segv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_did_not_take_the_upload_reprocesses_with_the_new_symbols() {
    // Two server processes on one index and one store: `worker` processes,
    // `web` takes the upload (and has no workers), so the reprocessing runs where
    // the caches still remember crashy's symbols as missing.
    let dir = tempfile::tempdir().unwrap();
    let (worker, web, developer, uploader, segv) = crashed_without_symbols(dir.path()).await;

    let out = symbols_upload(&[&example("crashy")], &web.url, &uploader).await;
    assert!(out.status.success(), "{}", text(&out));
    let after = worker
        .wait_report(&developer, &segv, |r| names(r, "crashy::crash_segv"))
        .await;
    assert_eq!(after["state"], "processed");
    web.stop().await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_report_gets_symbols_another_server_took_while_this_one_remembered_them_missing() {
    // `worker` remembers crashy's symbols as missing; the report that taught it so
    // is deleted, so the upload through `web` queues nothing. The next crash must
    // still be symbolicated by `worker`, well within the negative cache's hour.
    let dir = tempfile::tempdir().unwrap();
    let (worker, web, developer, uploader, first) = crashed_without_symbols(dir.path()).await;
    let (deleted, _) = worker
        .delete(
            &format!("/api/v1/reports/{first}"),
            &format!("Bearer {developer}"),
        )
        .await;
    assert!(deleted.is_success(), "{deleted}");

    let out = symbols_upload(&[&example("crashy")], &web.url, &uploader).await;
    assert!(out.status.success(), "{}", text(&out));
    let admin = worker.token(Role::Admin).await;
    let (_, audit) = worker.get_json("/api/v1/audit", &admin).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "symbols.upload"
                && e["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("0 report(s) queued")),
        "{audit}"
    );

    let second = crash_and_send(dir.path(), &worker.url, "segv").await;
    let report = worker.wait_processed(&developer, &second).await;
    assert!(
        names(&report, "crashy::crash_segv"),
        "{:?}",
        functions(&report)
    );
    web.stop().await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_file_is_the_one_the_upload_names_not_the_module_line() {
    // ld-linux-x86-64.so.2's .sym says `MODULE Linux x86_64 <id> ld-2.32.so`; dumps
    // record `ld-linux-x86-64.so.2`, so that is where it must be filed.
    let (server, uploader) = TestServer::with_token(Role::Uploader).await;
    let id = "170F19FCF4C44ADC8A26DF18EAEED41E0";
    let sym = testdata::read(&format!(
        "mozilla-firefox-linux-x64/symbols/ld-linux-x86-64.so.2/{id}/ld-linux-x86-64.so.2.sym"
    ));
    assert!(sym.starts_with(format!("MODULE Linux x86_64 {id} ld-2.32.so").as_bytes()));

    let (status, json) = post_symbols(
        &server,
        Some(&uploader),
        "?debug_file=ld-linux-x86-64.so.2",
        &[],
        sym.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    // In a zip (here gzipped on the wire, too), the path names it.
    let zip = zip_of(&[(&format!("libfoo.so.1/{id}/libfoo.so.1.sym"), sym.as_slice())]);
    let (status, json) = post_symbols(
        &server,
        Some(&uploader),
        "",
        &[
            ("Content-Type", "application/zip"),
            ("Content-Encoding", "gzip"),
        ],
        gzip(&zip),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["stored"][0]["debug_file"], "libfoo.so.1", "{json}");
    // Without a name, the MODULE line's.
    let (status, json) = post_symbols(&server, Some(&uploader), "", &[], sym).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        symbol_keys(&server).await,
        vec![
            format!("symbols/ld-2.32.so/{id}/ld-2.32.so.sym"),
            format!("symbols/ld-linux-x86-64.so.2/{id}/ld-linux-x86-64.so.2.sym"),
            format!("symbols/libfoo.so.1/{id}/libfoo.so.1.sym"),
        ]
    );
    let head = server
        .request(
            Method::HEAD,
            &format!("/symbols/ld-linux-x86-64.so.2/{id}/ld-linux-x86-64.so.2.sym"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_testdata_dump_is_reprocessed_when_its_zip_of_symbols_arrives() {
    let (server, uploader) = TestServer::with_token(Role::Uploader).await;
    let developer = server.token(Role::Developer).await;
    let case = testdata::case(&format!("{MINIDUMP2}/minidump2.dmp"));
    let dump = case.bytes();
    let reference = read_json(&case.reference);
    let fields = [("prod", "Test"), ("ver", "1.0")];

    let (early, before) = server.submit_processed(&developer, &dump, &fields).await;
    assert!(
        !functions(&before)
            .iter()
            .any(|f| f.ends_with("CrashFunction"))
    );
    let mut missing = texts(&before["missing_symbols"], "debug_file");
    missing.sort();
    assert_eq!(missing, ["kernel32.pdb", "test_app.pdb"], "{before}");

    // Tecken's layout, both modules in one zip.
    let test_app = minidump2_sym("test_app.pdb", TEST_APP_ID, "test_app.sym");
    let kernel32 = minidump2_sym("kernel32.pdb", KERNEL32_ID, "kernel32.sym");
    let zip = zip_of(&[
        (
            &format!("test_app.pdb/{TEST_APP_ID}/test_app.sym"),
            &test_app,
        ),
        (
            &format!("kernel32.pdb/{KERNEL32_ID}/kernel32.sym"),
            &kernel32,
        ),
    ]);
    let (status, json) = post_symbols(&server, Some(&uploader), "", &[], zip).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["stored"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json["reprocessing"], 1, "{json}");

    server
        .wait_report(&developer, &early, |r| {
            functions(r).iter().any(|f| f.ends_with("CrashFunction"))
        })
        .await;
    server.drain().await;
    let after = server.wait_processed(&developer, &early).await;
    // Frame for frame what the reference tool gives with the same symbols.
    let ours: Vec<(Value, Value)> = frames(&after)
        .iter()
        .map(|f| (f["module"].clone(), f["function"].clone()))
        .collect();
    let theirs: Vec<(Value, Value)> = reference["crashing_thread"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["module"].clone(), f["function"].clone()))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(after["missing_symbols"], serde_json::json!([]), "{after}");

    // The same dump sent now, with symbols from the start: the same issue, and
    // the one the early report was in is gone.
    let (_, late) = server.submit_processed(&developer, &dump, &fields).await;
    assert_eq!(late["issue_id"], after["issue_id"]);
    assert_ne!(after["issue_id"], before["issue_id"]);
    let (status, _) = server
        .get_json(
            &format!("/api/v1/issues/{}", before["issue_id"]),
            &developer,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// `mayday-symbols upload` checks the server and the token once before it
/// uploads: a bad token, a token without the uploader role or a URL without a
/// scheme is one clear error and a non-zero exit, with nothing uploaded, however
/// many files there are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_cli_checks_server_and_token_once_before_uploading() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let test_app =
        String::from_utf8(minidump2_sym("test_app.pdb", TEST_APP_ID, "test_app.sym")).unwrap();
    let (_, records) = test_app.split_once('\n').unwrap();
    for i in 0..3 {
        // Three modules: test_app's records under other names and ids.
        let id = format!("{}{i}", &TEST_APP_ID[..TEST_APP_ID.len() - 1]);
        let sym = format!("MODULE windows x86 {id} app{i}.pdb\n{records}");
        std::fs::write(dir.path().join(format!("app{i}.sym")), sym).unwrap();
    }
    let said = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let developer = server.token(Role::Developer).await;
    for (server_url, token, expected) in [
        (server.url.as_str(), "mdy_not-a-token", "refused the token"),
        (
            server.url.as_str(),
            developer.as_str(),
            "needs uploader or admin",
        ),
        (
            server.url.trim_start_matches("http://"),
            developer.as_str(),
            "not an http",
        ),
    ] {
        let out = symbols_upload(&[dir.path()], server_url, token).await;
        assert!(!out.status.success(), "{}", said(&out));
        assert_eq!(said(&out).matches(expected).count(), 1, "{}", said(&out));
        assert!(!said(&out).contains("uploaded  "), "{}", said(&out));
    }
    assert!(symbol_keys(&server).await.is_empty());

    let uploader = server.token(Role::Uploader).await;
    let out = symbols_upload(&[dir.path()], &server.url, &uploader).await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("3 uploaded"), "{}", said(&out));
    server.stop().await;
}

/// The CLI's Windows and macOS fixtures (`symbols/cli/tests/fixtures`).
fn format_fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../symbols/cli/tests/fixtures")
        .join(path)
}

/// Copies fixture files into `dir` (keeping their relative paths).
fn copy_fixtures(dir: &Path, paths: &[&str]) {
    for path in paths {
        let to = dir.join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(format_fixture(path), to).unwrap();
    }
}

/// `mayday-symbols upload <path>`, which succeeds with `summary` in its output.
async fn cli_upload_ok(path: &Path, server: &str, token: &str, summary: &str) {
    let out = symbols_upload(&[path], server, token).await;
    let log = text(&out);
    assert!(out.status.success() && log.contains(summary), "{log}");
}

/// A Windows PE with its PDB and a Mach-O with its dSYM, as a build leaves them, and
/// each architecture of a universal Mach-O dumped with `--arch`: the real CLI uploads
/// them to the real server, which files each at `<debug_file>/<DEBUG_ID>/<name>.sym`
/// (the PDB's name for the PE, each architecture under its own debug id) and serves
/// them on the Breakpad route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pe_pdb_dsym_and_universal_mach_o_symbols_are_filed_under_their_debug_ids() {
    let (server, uploader) = TestServer::with_token(Role::Uploader).await;
    let temp = tempfile::tempdir().unwrap();
    let build = temp.path().join("build");
    copy_fixtures(
        &build,
        &[
            "windows/dump_syms_regtest64.exe",
            "windows/dump_syms_regtest64.pdb",
            "macos/crash",
            "macos/crash.dSYM/Contents/Resources/DWARF/crash",
        ],
    );
    // The PE and its PDB are one module, the Mach-O and its dSYM another.
    let two = "2 uploaded, 0 already present, 0 failed";
    cli_upload_ok(&build, &server.url, &uploader, two).await;
    let pdb =
        "symbols/dump_syms_regtest64.pdb/72E103A85CB249078B76B2E7C06257B13/dump_syms_regtest64.sym";
    let crash = "symbols/crash/67E9247C814E392BA027DBDE6748FCBF0/crash.sym";
    assert_eq!(symbol_keys(&server).await, [crash, pdb]);
    // What is served is the whole dump: functions from the PDB and the dSYM, call
    // frame information from the PE and the Mach-O binary.
    for (key, module) in [
        (
            pdb,
            "MODULE windows x86_64 72E103A85CB249078B76B2E7C06257B13 dump_syms_regtest64.pdb\n\
             INFO CODE_ID 589DFD111A000 dump_syms_regtest64.exe\n",
        ),
        (
            crash,
            "MODULE mac x86_64 67E9247C814E392BA027DBDE6748FCBF0 crash\n",
        ),
    ] {
        let path = format!("/{key}");
        let (status, body) = server.get_bytes(&path, &uploader).await;
        assert_eq!(status, StatusCode::OK, "GET {path}");
        let sym = String::from_utf8(body).unwrap();
        assert!(sym.starts_with(module), "{path}: {}", &sym[..200]);
        assert!(
            sym.contains("\nFUNC ") && sym.contains("\nSTACK CFI INIT "),
            "{path}"
        );
    }
    assert!(
        String::from_utf8(server.get_bytes(&format!("/{pdb}"), &uploader).await.1)
            .unwrap()
            .contains(" main(int, char**)\n")
    );

    // A universal Mach-O: one .sym per architecture, each under its own debug id.
    let syms = temp.path().join("syms");
    std::fs::create_dir_all(&syms).unwrap();
    let fat = format_fixture("universal/Example");
    for arch in ["x86_64", "arm64"] {
        let mut cmd = Command::new(bin("mayday-symbols"));
        cmd.arg("dump")
            .arg(&fat)
            .args(["--arch", arch, "-o"])
            .arg(syms.join(format!("Example-{arch}.sym")));
        let out = run(cmd).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    cli_upload_ok(&syms, &server.url, &uploader, two).await;
    let keys = symbol_keys(&server).await;
    for (arch, id) in [
        ("x86_64", "3B4566E4491B3DCF94F5AE51F624DD870"),
        ("arm64", "2556F1515A403847BE6CE2C1B5BE4DF80"),
    ] {
        let key = format!("symbols/Example/{id}/Example.sym");
        assert!(keys.contains(&key), "{key} in {keys:?}");
        let (status, body) = server.get_bytes(&format!("/{key}"), &uploader).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with(format!("MODULE mac {arch} {id} Example\n").as_bytes()));
    }
    // The universal file itself is read per architecture; without functions in
    // either, there is nothing to upload, and the CLI says so.
    let out = symbols_upload(&[&fat], &server.url, &uploader).await;
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("no debug info (x86_64)") && log.contains("no debug info (arm64)"),
        "{log}"
    );
    assert_eq!(symbol_keys(&server).await.len(), 4);
    server.stop().await;
}
