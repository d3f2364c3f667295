//! The client against the real server: the `crashy` example crashes in a child
//! process, `crashy send` uploads what is pending, the server processes it with the
//! example's own symbols, and `crashy forget` / `crashy forget-all` take it back.

use std::path::{Path, PathBuf};
use std::process::Command;

use mayday_server::index::Role;
use mayday_tests::command::{run, stdout};
use mayday_tests::crashy::{crash_and_send, crashy};
use mayday_tests::fixtures::{bin, example, system_libc_symbols};
use mayday_tests::report::{frames, functions};
use mayday_tests::server::TestServer;
use reqwest::StatusCode;

/// crashy's symbols as `mayday-symbols dump` writes them, in a Breakpad tree
/// `crashy/<DEBUG_ID>/crashy.sym`.
fn crashy_symbols(dir: &Path) -> PathBuf {
    let sym = dir.join("crashy.sym");
    let status = Command::new(bin("mayday-symbols"))
        .arg("dump")
        .arg(example("crashy"))
        .arg("-o")
        .arg(&sym)
        .status()
        .unwrap();
    assert!(status.success());
    let tree = dir.join("tree");
    // `<tree>/<name>/<DEBUG_ID>/<name>.sym`, the debug id from the MODULE line
    // (`MODULE Linux x86_64 <DEBUG_ID> <name>`).
    let file = |sym: &Path, name: &str| {
        let text = std::fs::read_to_string(sym).unwrap();
        let module = text.lines().next().unwrap();
        let fields: Vec<&str> = module.split_whitespace().collect();
        assert_eq!(fields[0], "MODULE", "{module}");
        let target = tree.join(name).join(fields[3]);
        std::fs::create_dir_all(&target).unwrap();
        std::fs::rename(sym, target.join(format!("{name}.sym"))).unwrap();
    };
    file(&sym, "crashy");
    // The system's C library too, as a server with system symbols has it: abort()
    // and raise() then unwind by their call frame information.
    file(&system_libc_symbols(dir), "libc.so.6");
    tree
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_kind_is_processed_with_the_crashing_function() {
    let server = TestServer::start().await;
    let temp = tempfile::tempdir().unwrap();
    let tree = tokio::task::spawn_blocking({
        let dir = temp.path().to_owned();
        move || crashy_symbols(&dir)
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
