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
    let server = TestServer::start().await;
    let token = server.token(Role::Developer).await;
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
    let server = TestServer::start().await;
    let token = server.token(Role::Developer).await;
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

/// `crashy send` on a real pseudo-terminal with consent `ask`: the user's keys go
/// in through the terminal and the dialogue comes back from it.
struct Terminal {
    child: std::process::Child,
    master: std::fs::File,
    shown: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Terminal {
    /// Starts `crashy send` with `data_dir` on a new pseudo-terminal.
    fn send(data_dir: &Path, server: &str) -> Terminal {
        let pty = nix::pty::openpty(None, None).unwrap();
        let mut command = crashy(data_dir, server);
        command
            .arg("send")
            .env("MAYDAY_CONSENT", "ask")
            .stdin(std::fs::File::from(pty.slave.try_clone().unwrap()))
            .stdout(std::fs::File::from(pty.slave.try_clone().unwrap()))
            .stderr(std::fs::File::from(pty.slave));
        let child = command.spawn().unwrap();
        drop(command);
        let master = std::fs::File::from(pty.master);
        let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = std::sync::Arc::clone(&shown);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and closed the terminal.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            child,
            master,
            shown,
        }
    }

    /// Waits (at most a minute) until the terminal has shown `text` `times` times.
    fn wait_for(&self, text: &str, times: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.shown.lock().unwrap().matches(text).count() < times {
            assert!(
                std::time::Instant::now() < deadline,
                "waited for {text:?}: {}",
                self.shown.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Types `line` and Enter.
    fn type_line(&mut self, line: &str) {
        use std::io::Write;
        self.master
            .write_all(format!("{line}\r").as_bytes())
            .unwrap();
    }

    /// Waits for `crashy send` to end and returns what the terminal showed.
    fn finish(mut self) -> String {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{}", self.shown.lock().unwrap());
        // The summary line `crashy send` ends with.
        self.wait_for("deleted by policy", 1);
        self.shown.lock().unwrap().clone()
    }
}

fn stored_policy(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("consent.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    Some(json["policy"].as_str().unwrap().to_owned())
}

/// On a real terminal: an unknown answer asks again, `n` declines this one report
/// (it is deleted, consent stays undecided, nothing is sent); `never` needs the
/// whole word and a confirmation saying that pending reports will be deleted, and
/// only then is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_n_declines_one_report_and_never_needs_the_word_and_a_yes() {
    let server = TestServer::start().await;
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().to_owned();
    let crash = |kind: &'static str| {
        let mut command = crashy(&data_dir, &server.url);
        command.arg(kind).env("MAYDAY_CONSENT", "ask");
        run(command)
    };
    crash("segv").await;
    crash("abort").await;
    let url = server.url.clone();
    let dir = data_dir.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let mut terminal = Terminal::send(&dir, &url);
        terminal.wait_for("[s/a/d/never]:", 1);
        terminal.type_line("maybe");
        terminal.wait_for("Please answer", 1);
        terminal.wait_for("[s/a/d/never]:", 2);
        terminal.type_line("n");
        // The second report is asked about next: `never` without a yes changes nothing.
        terminal.wait_for("[s/a/d/never]:", 3);
        terminal.type_line("never");
        terminal.wait_for("[y/N]:", 1);
        terminal.type_line("n");
        terminal.wait_for("[s/a/d/never]:", 4);
        terminal.type_line("d");
        terminal.finish()
    })
    .await
    .unwrap();
    assert!(
        shown.contains("Every pending report will be deleted"),
        "{shown}"
    );
    assert!(shown.contains("declined 2"), "{shown}");
    assert!(!shown.lines().any(|l| l.starts_with("sent ")), "{shown}");
    assert_eq!(stored_policy(&data_dir), None, "{shown}");

    crash("segv").await;
    let url = server.url.clone();
    let dir = data_dir.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let mut terminal = Terminal::send(&dir, &url);
        terminal.wait_for("[s/a/d/never]:", 1);
        terminal.type_line("never");
        terminal.wait_for("[y/N]:", 1);
        terminal.type_line("yes");
        terminal.finish()
    })
    .await
    .unwrap();
    assert!(shown.contains("pending reports were deleted"), "{shown}");
    assert_eq!(
        stored_policy(&data_dir).as_deref(),
        Some("never"),
        "{shown}"
    );
    let mut command = crashy(&data_dir, &server.url);
    command.arg("list");
    let listed = stdout(&run(command).await);
    assert!(!listed.contains("pending"), "{listed}");
    // Nothing reached the server.
    let index = server.state.index();
    assert_eq!(index.report_key_ids().await.unwrap().len(), 0);
    assert_eq!(index.queue_depth().await.unwrap(), 0);
}

/// Without a terminal, `crashy send` with consent `ask` leaves the report pending
/// and says why it waits and how to send it; with the server down it says that
/// sending failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_pending_reports_say_why_they_wait() {
    let server = TestServer::start().await;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let mut command = crashy(&data, &server.url);
    command.arg("segv").env("MAYDAY_CONSENT", "ask");
    run(command).await;
    let mut command = crashy(&data, &server.url);
    command.arg("send").env("MAYDAY_CONSENT", "ask");
    let out = stdout(&run(command).await);
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
    let mut command = crashy(&data, &server.url);
    command.arg("segv").env("MAYDAY_CLIENT_SCRUB", "off");
    run(command).await;
    let mut command = crashy(&data, &server.url);
    command.arg("send").env("MAYDAY_CLIENT_SCRUB", "off");
    let out = stdout(&run(command).await);
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
