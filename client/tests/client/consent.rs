//! Consent through a pseudo-terminal: `crashy send` shows the report and the user
//! types an answer.

use std::path::Path;
use std::process::{Output, Stdio};

use mayday_client::{ConsentPolicy, StoredConsent};

use crate::support::{
    PtyChild, TestServer, client_builder, client_for, crash, crashed, crashy_command, files_in,
};

const QUESTION: &str = "Send this report?";

fn send_on_terminal(data_dir: &Path, server: &TestServer, consent: &str) -> PtyChild {
    let mut cmd = crashy_command(data_dir, consent);
    cmd.env("MAYDAY_ENDPOINT", server.url()).arg("send");
    PtyChild::spawn(cmd)
}

/// `crashy send` with no terminal (stdin closed), to its end.
fn send_without_terminal(data_dir: &Path, server: &TestServer, consent: &str) -> Output {
    let mut cmd = crashy_command(data_dir, consent);
    cmd.env("MAYDAY_ENDPOINT", server.url()).arg("send");
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn stored_consent(data_dir: &Path) -> Option<StoredConsent> {
    let bytes = std::fs::read(data_dir.join("consent.json")).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

#[test]
fn send_this_one_shows_the_report_and_sends_it_with_the_comment() {
    let (dir, server) = crashed("segv", "ask");
    let mut term = send_on_terminal(dir.path(), &server, "ask");
    term.expect(QUESTION, 1);
    let shown = term.transcript();
    // The user sees what would leave the machine.
    for expected in [
        "crashy 0.1.0 crashed",
        "SIGSEGV",
        "in module:       crashy",
        "environment variables: not included",
        "command line:          not included",
        "channel = example",
        "ProductName = crashy",
        &server.url(),
        // What may be all that leaves: the crash-site summary.
        "First only a summary is sent: crashy 0.1.0, Linux, crash site v1:",
    ] {
        assert!(shown.contains(expected), "{expected:?} not shown:\n{shown}");
    }
    term.send_line("s");
    term.expect("Comment", 1);
    term.send_line("it crashed when I clicked save");
    let (status, shown) = term.wait();
    assert!(status.success(), "{shown}");
    assert!(shown.contains("sent bp-"), "{shown}");
    let uploads = server.uploads();
    assert_eq!(uploads.len(), 1);
    // The summary went first; this server has no crash-site route, so the dump
    // followed.
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/api/v1/crash-sites", "/submit"]);
    assert_eq!(
        uploads[0].text_part("Comments").as_deref(),
        Some("it crashed when I clicked save")
    );
    assert_eq!(files_in(&dir.path().join("pending")), Vec::<String>::new());
    assert_eq!(files_in(&dir.path().join("sent")).len(), 1);
    // "Send this one" remembers nothing.
    assert_eq!(stored_consent(dir.path()), None);
}

#[test]
fn dont_send_deletes_the_dump_and_sends_nothing() {
    let (dir, server) = crashed("abort", "ask");
    assert_eq!(files_in(&dir.path().join("pending")).len(), 2);
    let mut term = send_on_terminal(dir.path(), &server, "ask");
    term.expect(QUESTION, 1);
    term.send_line("d");
    let (status, shown) = term.wait();
    assert!(status.success(), "{shown}");
    assert!(server.requests().is_empty());
    assert_eq!(files_in(&dir.path().join("pending")), Vec::<String>::new());
    assert_eq!(stored_consent(dir.path()), None);
}

#[test]
fn always_sends_and_later_reports_go_without_asking() {
    let (dir, server) = crashed("abort", "ask");
    let mut term = send_on_terminal(dir.path(), &server, "ask");
    term.expect(QUESTION, 1);
    term.send_line("a");
    term.expect("Comment", 1);
    term.send_line("");
    let (status, shown) = term.wait();
    assert!(status.success(), "{shown}");
    assert_eq!(server.uploads().len(), 1);
    assert_eq!(server.uploads()[0].text_part("Comments"), None);
    let stored = stored_consent(dir.path()).expect("consent.json");
    assert_eq!(stored.policy, ConsentPolicy::Always);
    assert_eq!(stored.consent_text_version, 1);

    // The next crash is sent by a process without a terminal, without asking.
    crash(dir.path(), "segv", "ask");
    let out = send_without_terminal(dir.path(), &server, "ask");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(QUESTION), "{stdout}");
    assert!(stdout.contains("sent bp-"), "{stdout}");
    assert_eq!(server.uploads().len(), 2);
}

#[test]
fn never_deletes_everything_and_keeps_nothing_later() {
    let (dir, server) = crashed("abort", "ask");
    crash(dir.path(), "segv", "ask");
    let mut term = send_on_terminal(dir.path(), &server, "ask");
    term.expect(QUESTION, 1);
    term.send_line("never");
    term.expect("[y/N]", 1);
    term.send_line("y");
    let (status, shown) = term.wait();
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("Every pending report will be deleted"),
        "{shown}"
    );
    assert_eq!(shown.matches(QUESTION).count(), 1, "asked once:\n{shown}");
    assert!(server.requests().is_empty());
    assert_eq!(files_in(&dir.path().join("pending")), Vec::<String>::new());
    assert_eq!(
        stored_consent(dir.path()).map(|c| c.policy),
        Some(ConsentPolicy::Never)
    );
    // A later crash leaves nothing on disk.
    crash(dir.path(), "segv", "ask");
    assert_eq!(files_in(&dir.path().join("pending")), Vec::<String>::new());
}

/// `n` (and an unknown answer) never choose "never": `n` declines one report,
/// an unknown answer asks again, and "never" without a yes changes nothing.
#[test]
fn n_declines_one_report_and_never_needs_the_whole_word_and_a_yes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    crash(dir.path(), "segv", "ask");
    crash(dir.path(), "abort", "ask");
    let mut term = send_on_terminal(dir.path(), &server, "ask");
    term.expect(QUESTION, 1);
    term.send_line("maybe");
    term.expect("Please answer", 1);
    term.expect(QUESTION, 2);
    term.send_line("n");
    term.expect(QUESTION, 3);
    term.send_line("never");
    term.expect("[y/N]", 1);
    term.send_line("n");
    term.expect(QUESTION, 4);
    term.send_line("d");
    let (status, shown) = term.wait();
    assert!(status.success(), "{shown}");
    assert!(shown.contains("declined 2"), "{shown}");
    assert!(server.requests().is_empty());
    assert_eq!(stored_consent(dir.path()), None);
    assert_eq!(files_in(&dir.path().join("pending")), Vec::<String>::new());
}

#[test]
fn without_a_terminal_ask_keeps_the_report_pending() {
    let (dir, server) = crashed("abort", "ask");
    let out = send_without_terminal(dir.path(), &server, "ask");
    assert!(out.status.success());
    assert!(server.requests().is_empty());
    assert_eq!(files_in(&dir.path().join("pending")).len(), 2);
}

#[test]
fn policy_always_sends_without_asking_and_never_sends_nothing() {
    let (dir, server) = crashed("abort", "always");
    let term = send_on_terminal(dir.path(), &server, "always");
    let (status, shown) = {
        term.expect("sent bp-", 1);
        term.wait()
    };
    assert!(status.success(), "{shown}");
    assert!(!shown.contains(QUESTION), "{shown}");
    assert_eq!(server.uploads().len(), 1);

    // A report captured under Ask, then sent under the application's Never.
    crash(dir.path(), "abort", "ask");
    let term = send_on_terminal(dir.path(), &server, "never");
    let (status, shown) = term.wait();
    assert!(status.success(), "{shown}");
    assert_eq!(server.uploads().len(), 1);
    assert_eq!(files_in(&dir.path().join("pending")), Vec::<String>::new());
}

#[test]
fn consent_revoked_between_crash_and_upload_sends_nothing() {
    let (dir, server) = crashed("segv", "always");
    assert_eq!(files_in(&dir.path().join("pending")).len(), 2);
    // The user revokes consent in the application's settings.
    let client = client_for(dir.path(), &server);
    client.set_consent(ConsentPolicy::Never).unwrap();
    assert_eq!(files_in(&dir.path().join("pending")), Vec::<String>::new());
    // The application, configured with Always, then tries to send.
    let term = send_on_terminal(dir.path(), &server, "always");
    let (status, shown) = term.wait();
    assert!(status.success(), "{shown}");
    assert!(server.requests().is_empty(), "the server saw nothing");
}

#[test]
fn consent_is_checked_again_right_before_upload() {
    // The prompt is open when consent is revoked elsewhere: the answer "send"
    // does not override the revocation.
    let (dir, server) = crashed("abort", "ask");
    let data_dir = dir.path().to_owned();
    let client = client_builder(&data_dir, Some(&server.url()))
        .consent(ConsentPolicy::Ask)
        .prompt(mayday_client::FnPrompt(
            move |_summary: &mayday_client::ReportSummary| {
                // Another process (the settings page) revokes consent meanwhile.
                client_builder(&data_dir, None)
                    .build()
                    .unwrap()
                    .set_consent(ConsentPolicy::Never)
                    .unwrap();
                Some(mayday_client::ConsentAnswer::new(
                    mayday_client::Decision::Send,
                ))
            },
        ))
        .build()
        .unwrap();
    let summary = client.send_pending().unwrap();
    assert!(summary.sent.is_empty());
    assert!(server.requests().is_empty());
    assert!(client.pending().unwrap().is_empty());
}

#[test]
fn closure_prompt_sees_the_summary() {
    let (dir, server) = crashed("panic", "ask");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen_in_prompt = std::sync::Arc::clone(&seen);
    let client = client_builder(dir.path(), Some(&server.url()))
        .consent(ConsentPolicy::Ask)
        .prompt(mayday_client::FnPrompt(
            move |summary: &mayday_client::ReportSummary| {
                *seen_in_prompt.lock().unwrap() = Some(summary.clone());
                Some(mayday_client::ConsentAnswer::new(
                    mayday_client::Decision::DontSend,
                ))
            },
        ))
        .build()
        .unwrap();
    let result = client.send_pending().unwrap();
    assert_eq!(result.declined, 1);
    let summary = seen.lock().unwrap().clone().expect("the prompt was called");
    assert_eq!(summary.product, "crashy");
    assert_eq!(summary.crash_reason.as_deref(), Some("Rust panic"));
    assert!(summary.threads >= 1);
    assert!(summary.modules > 1);
    assert!(summary.stack_bytes > 0);
    assert!(!summary.has_environment);
    assert!(!summary.has_command_line);
    assert!(summary.size_bytes > 1000);
    assert!(summary.annotations[mayday_client::PANIC_ANNOTATION].contains("panicked on purpose"));
    assert!(server.requests().is_empty());
}
