//! The client against the real server: the `crashy` example crashes in a child
//! process, `crashy send` uploads what is pending, the server processes it with the
//! example's own symbols, and `crashy forget` / `crashy forget-all` take it back.

use std::path::Path;

use mayday_server::index::Role;
use mayday_tests::command::{run, stdout};
use mayday_tests::crashy::{crash_and_send, crashy, symbol_tree};
use mayday_tests::fixtures::example;
use mayday_tests::report::{frames, functions};
use mayday_tests::server::TestServer;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_kind_is_processed_with_the_crashing_function() {
    let server = TestServer::start().await;
    let temp = tempfile::tempdir().unwrap();
    let tree = tokio::task::spawn_blocking({
        let dir = temp.path().to_owned();
        move || symbol_tree(&dir, &example("crashy"))
    })
    .await
    .unwrap();
    server.add_symbols(&tree).await;
    let token = server.token(Role::Developer).await;
    for kind in ["segv", "abort", "panic", "bus", "fpe", "ill"] {
        let id = crash_and_send(&temp.path().join(kind), &server.url, kind).await;
        let report = server.wait_processed(&token, &id).await;
        assert_eq!(report["state"], "processed", "{kind}: {report}");
        assert_eq!(report["product"], "crashy");
        let want = format!("crashy::crash_{kind}");
        let functions = functions(&report);
        assert!(
            functions.iter().any(|f| f.contains(&want)),
            "{kind}: {want} not on the crashing thread: {functions:?}"
        );
        // crashy is built with full debug info: the crashing function has its line.
        let frames = frames(&report);
        let located = frames
            .iter()
            .find(|f| f["function"].as_str().unwrap_or_default().contains(&want))
            .map(|f| (f["file"].as_str().unwrap_or_default(), f["line"].as_u64()));
        assert!(
            located
                .is_some_and(|(file, line)| file.ends_with("examples/crashy.rs")
                    && line.is_some_and(|l| l > 0)),
            "{kind}: {want} has no file:line: {located:?}"
        );
        if matches!(kind, "segv" | "bus" | "fpe" | "ill") {
            // A hardware fault: the crashing function is the top frame, or right
            // under the `core::ptr` helper that faulted in a debug build.
            assert!(
                functions.iter().take(2).any(|f| f.contains(&want)),
                "{kind}: {functions:?}"
            );
        }
    }
    server.stop().await;
}

async fn api_status(server: &TestServer, token: &str, crash_id: &str) -> StatusCode {
    server
        .get_json(&format!("/api/v1/reports/{crash_id}"), token)
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_and_forget_all_delete_the_reports_on_the_server() {
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let first = crash_and_send(&data, &server.url, "segv").await;
    let second = crash_and_send(&data, &server.url, "abort").await;
    let third = crash_and_send(&data, &server.url, "panic").await;
    for id in [&first, &second, &third] {
        server.wait_processed(&token, id).await;
        assert_eq!(api_status(&server, &token, id).await, StatusCode::OK);
        assert!(!server.report_keys(id).await.is_empty(), "{id} is stored");
    }

    let mut cmd = crashy(&data, &server.url);
    cmd.args(["forget", &first]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        api_status(&server, &token, &first).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.report_keys(&first).await, Vec::<String>::new());
    // The others are untouched.
    assert_eq!(api_status(&server, &token, &second).await, StatusCode::OK);

    let mut cmd = crashy(&data, &server.url);
    cmd.arg("forget-all");
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("forgot 2 reports"),
        "{}",
        stdout(&out)
    );
    for id in [&second, &third] {
        assert_eq!(api_status(&server, &token, id).await, StatusCode::NOT_FOUND);
        assert_eq!(server.report_keys(id).await, Vec::<String>::new());
    }
    // No receipts are left on the user's machine.
    let mut cmd = crashy(&data, &server.url);
    cmd.arg("list");
    let listed = stdout(&run(cmd).await);
    assert!(!listed.contains("sent "), "{listed}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_deletion_token_deletes_nothing() {
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let id = crash_and_send(&data, &server.url, "segv").await;
    server.wait_processed(&token, &id).await;
    let (wrong, _) = server
        .delete(&format!("/api/v1/reports/{id}"), "Deletion not-the-token")
        .await;
    assert_eq!(wrong, StatusCode::NOT_FOUND);
    assert_eq!(api_status(&server, &token, &id).await, StatusCode::OK);
    assert!(!server.report_keys(&id).await.is_empty());
    server.stop().await;
}

/// The forget link a real receipt holds (`crashy send` prints it, `crashy list`
/// shows it) opens the `/forget` page filled in, in headless Chromium, takes
/// the token out of the address bar, and deletes the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forget_link_of_a_receipt_deletes_the_report_in_headless_chromium() {
    let server = TestServer::start().await;
    let token = server.token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let id = crash_and_send(&data, &server.url, "segv").await;
    let mut command = crashy(&data, &server.url);
    command.arg("list");
    let listed = stdout(&run(command).await);
    let link = listed
        .lines()
        .find_map(|l| l.trim().strip_prefix("to have it deleted, open "))
        .unwrap_or_else(|| panic!("no forget link: {listed}"))
        .to_owned();
    let path = link
        .strip_prefix(&server.url)
        .expect("a link to this server");
    assert!(path.starts_with(&format!("/forget#{id}.")), "{path}");

    let browser = mayday_tests::browser::Browser::start(&server.url).await;
    browser.goto(path).await;
    let url = browser.client().current_url().await.unwrap();
    assert_eq!(
        url.fragment(),
        None,
        "the token left the address bar: {url}"
    );
    browser.click("#delete").await;
    let result = browser.find("#result").await;
    assert_eq!(
        result.attr("data-result").await.unwrap().as_deref(),
        Some("deleted")
    );
    assert_eq!(
        api_status(&server, &token, &id).await,
        StatusCode::NOT_FOUND
    );
    assert!(server.report_keys(&id).await.is_empty());
    browser.close().await;
    server.stop().await;
}

/// Crashes `crashy segv` with `data`, then runs `crashy send`, both with the
/// environment variable `setting`; returns what `send` printed.
async fn segv_then_send(data: &Path, server: &str, setting: (&str, &str)) -> String {
    let mut command = crashy(data, server);
    command.arg("segv").env(setting.0, setting.1);
    run(command).await;
    let mut command = crashy(data, server);
    command.arg("send").env(setting.0, setting.1);
    stdout(&run(command).await)
}

/// Without a terminal, `crashy send` with consent `ask` leaves the report pending
/// and says why it waits and how to send it; with the server down it says that
/// sending failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_pending_reports_say_why_they_wait() {
    let server = TestServer::start().await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let out = segv_then_send(&data, &server.url, ("MAYDAY_CONSENT", "ask")).await;
    assert!(
        out.contains("1 pending: they wait for your consent, and there was no one to ask"),
        "{out}"
    );
    assert!(out.contains("MAYDAY_CONSENT=always"), "{out}");

    let url = server.url.clone();
    server.stop().await;
    let mut command = crashy(&data, &url);
    command.arg("send");
    let out = stdout(&run(command).await);
    assert!(out.contains("1 pending: sending failed"), "{out}");
}

/// After an upload the receipt records what the server's scrubbing removed (kinds
/// and counts, never values) and `crashy send` shows it in words. With the
/// client's own scrubbing off, the environment and command line reach the server,
/// which removes them before storing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receipt_says_what_the_server_removed() {
    let server = TestServer::start().await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let out = segv_then_send(&data, &server.url, ("MAYDAY_CLIENT_SCRUB", "off")).await;
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("sent "))
        .unwrap_or_else(|| panic!("{out}"));
    let shown = out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("before storing it, the server removed ")
        })
        .unwrap_or_else(|| panic!("{out}"));
    assert!(shown.contains("the environment"), "{out}");
    assert!(shown.contains("the command line"), "{out}");
    let receipt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("sent").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    let removed = receipt["scrubbed"]["removed"].as_object().unwrap();
    assert_eq!(removed["linux_environ_stream"], 1, "{receipt}");
    assert_eq!(removed["linux_cmdline_stream"], 1, "{receipt}");
    assert!(removed.values().all(serde_json::Value::is_u64), "{receipt}");
}

/// The crash-site key (computed without symbols, as client and server both can)
/// is the same for two real runs of the same crash, though the process is loaded
/// at other addresses each time, and differs for another crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_crash_in_two_runs_has_one_crash_site_key() {
    let temp = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    for (i, kind) in ["segv", "segv", "abort"].iter().enumerate() {
        let data = temp.path().join(format!("run{i}"));
        let mut command = crashy(&data, "http://127.0.0.1:9");
        command.arg(kind);
        run(command).await;
        let dumps: Vec<_> = std::fs::read_dir(data.join("pending"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "dmp"))
            .collect();
        assert_eq!(dumps.len(), 1, "{kind}");
        let site =
            mayday_report::crash_site::CrashSite::of_minidump(&std::fs::read(&dumps[0]).unwrap())
                .unwrap();
        // A fault is at its instruction in crashy; abort() is raised inside the
        // C library (version 1 of the key takes the crashing instruction only).
        let module = if *kind == "segv" {
            "crashy"
        } else {
            "libc.so.6"
        };
        assert_eq!(site.debug_file.as_deref(), Some(module), "{site:?}");
        keys.push(site.key());
    }
    assert_eq!(keys[0], keys[1], "two runs of one crash");
    assert_ne!(keys[0], keys[2], "another crash");
}
