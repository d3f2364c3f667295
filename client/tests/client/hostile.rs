//! Replies from a hostile or broken server: absurd waits, numbers that are not
//! numbers, an endless body, CrashIDs that are paths or terminal escapes, bytes that
//! are not UTF-8. The client never panics, reads a bounded reply, stores nothing
//! of a malformed receipt and keeps the report pending.

use std::path::Path;

use mayday_client::{Client, SendSummary};

use crate::support::{Reply, TestServer, client_for, crash, files_in};

/// The longest wait a server can impose (`Retry-After`, `StopSendingReportsFor=`).
const MAX_SERVER_WAIT: time::Duration = time::Duration::days(30);

/// A data dir holding one pending report, copied from `template` (one crash
/// serves every case).
fn data_dir_with_a_report(template: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (template.join("pending"), dir.path().join("data/pending"));
    std::fs::create_dir_all(&to).unwrap();
    for name in files_in(&from) {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
    dir
}

fn template() -> tempfile::TempDir {
    let template = tempfile::tempdir().unwrap();
    crash(template.path(), "abort", "always");
    assert_eq!(files_in(&template.path().join("pending")).len(), 2);
    template
}

/// Sends the pending report of `dir` to `server`, which answers `replies` (then
/// accepts). Returns the client, what it did and how many uploads the server saw.
/// One server serves every case of a test: fewer ports taken from the pool the
/// other tests pick unused ports from.
fn send(server: &TestServer, dir: &Path, replies: Vec<Reply>) -> (Client, SendSummary, usize) {
    let before = server.uploads().len();
    server.script(replies);
    let client = client_for(&dir.join("data"), server);
    let summary = client.send_pending().expect("no error, no panic");
    (client, summary, server.uploads().len() - before)
}

/// `until` is in the future, at most [`MAX_SERVER_WAIT`] from now.
fn assert_capped(until: Option<time::OffsetDateTime>, case: &str) {
    let until = until.unwrap_or_else(|| panic!("{case}: not throttled"));
    let now = time::OffsetDateTime::now_utc();
    assert!(until > now, "{case}: {until}");
    assert!(
        until <= now + MAX_SERVER_WAIT,
        "{case}: {until} beyond the cap"
    );
}

fn receipt_with(extra: &str) -> Vec<u8> {
    format!(
        "CrashID=bp-{}\nDeletionToken=t0k3n\n{extra}",
        uuid::Uuid::new_v4()
    )
    .into_bytes()
}

#[test]
fn absurd_stop_sending_values_are_clamped_or_ignored() {
    let template = template();
    let server = TestServer::start();
    // Accepted with an absurd stop: sent, and throttled for at most the cap.
    for value in ["1e300", "1e308"] {
        let dir = data_dir_with_a_report(template.path());
        let body = receipt_with(&format!("StopSendingReportsFor={value}\n"));
        let (client, summary, _) = send(&server, dir.path(), vec![Reply::Bytes(200, body)]);
        assert_eq!(summary.sent.len(), 1, "{value}: {summary:?}");
        assert_capped(summary.throttled_until, value);
        assert!(client.pending().unwrap().is_empty());
    }
    // Not a finite positive number: ignored, the report is sent, no throttle.
    for value in ["-1", "NaN", "inf", "-inf", "1e400", "0x10", ""] {
        let dir = data_dir_with_a_report(template.path());
        let body = receipt_with(&format!("StopSendingReportsFor={value}\n"));
        let (client, summary, _) = send(&server, dir.path(), vec![Reply::Bytes(200, body)]);
        assert_eq!(summary.sent.len(), 1, "{value}: {summary:?}");
        assert_eq!(summary.throttled_until, None, "{value}");
        assert_eq!(client.sent_reports().unwrap().len(), 1);
    }
    // Refused with an absurd stop: kept, throttled for at most the cap.
    let dir = data_dir_with_a_report(template.path());
    let refusal = b"StopSendingReportsFor=1e300\n".to_vec();
    let (client, summary, uploads) = send(&server, dir.path(), vec![Reply::Bytes(503, refusal)]);
    assert_capped(summary.throttled_until, "503 with 1e300");
    assert_eq!(client.pending().unwrap().len(), 1);
    assert_eq!(uploads, 1);
}

#[test]
fn absurd_retry_after_values_are_clamped_or_ignored() {
    let template = template();
    let server = TestServer::start();
    for value in [
        "9223372036854775807",
        "184467440737095516150",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let dir = data_dir_with_a_report(template.path());
        let (client, summary, uploads) = send(
            &server,
            dir.path(),
            vec![Reply::Status(429, "slow down", Some(value))],
        );
        assert_capped(summary.throttled_until, value);
        assert_eq!(client.pending().unwrap().len(), 1, "{value}: kept");
        assert_eq!(uploads, 1, "{value}");
    }
    // Not a delay: ignored, so the client backs off as usual and sends again.
    for value in ["-1", "1e300", "NaN", "inf", "soon"] {
        let dir = data_dir_with_a_report(template.path());
        let (client, summary, uploads) = send(
            &server,
            dir.path(),
            vec![Reply::Status(429, "slow down", Some(value))],
        );
        assert_eq!(summary.sent.len(), 1, "{value}: {summary:?}");
        assert_eq!(summary.throttled_until, None, "{value}");
        assert_eq!(uploads, 2, "{value}");
        assert!(client.pending().unwrap().is_empty());
    }
}

#[test]
fn an_endless_reply_is_not_read_to_its_end_and_the_report_is_kept() {
    let template = template();
    let server = TestServer::start();
    // A valid receipt followed by 10 MB: over the bound, so not a receipt.
    let mut body = receipt_with("");
    body.resize(body.len() + 10 * 1024 * 1024, b'x');
    let dir = data_dir_with_a_report(template.path());
    let (client, summary, _) = send(&server, dir.path(), vec![Reply::Bytes(200, body.clone())]);
    assert!(summary.sent.is_empty(), "{summary:?}");
    assert_eq!(
        summary.last_error.as_ref().map(|e| e.name()),
        Some("bad_receipt")
    );
    assert_eq!(client.pending().unwrap().len(), 1);
    assert!(client.sent_reports().unwrap().is_empty());

    // The same 10 MB as a server error: read as far as the bound, retried, sent.
    let dir = data_dir_with_a_report(template.path());
    let mut error = b"\x1b[2Jboom ".to_vec();
    error.resize(10 * 1024 * 1024, b'x');
    let (client, summary, uploads) = send(
        &server,
        dir.path(),
        vec![Reply::Bytes(500, error.clone()), Reply::Bytes(500, error)],
    );
    assert_eq!(summary.sent.len(), 1, "{summary:?}");
    assert_eq!(uploads, 3);
    assert!(client.pending().unwrap().is_empty());
}

#[test]
fn a_hostile_crash_id_or_token_is_refused_and_nothing_of_it_is_stored() {
    let template = template();
    let server = TestServer::start();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("path", b"CrashID=../../escaped\nDeletionToken=t\n".to_vec()),
        (
            "nested path",
            b"CrashID=bp-1/../../../escaped\nDeletionToken=t\n".to_vec(),
        ),
        ("dot", b"CrashID=..\nDeletionToken=t\n".to_vec()),
        (
            "escape",
            b"CrashID=bp-1\x1b[2J\x07\nDeletionToken=t\n".to_vec(),
        ),
        ("nul", b"CrashID=bp-1\0x\nDeletionToken=t\n".to_vec()),
        (
            "non-UTF-8",
            b"CrashID=bp-\xff\xfe\xc3(\nDeletionToken=t\n".to_vec(),
        ),
        (
            "too long",
            format!("CrashID=bp-{}\n", "a".repeat(200)).into_bytes(),
        ),
        ("empty", b"CrashID=\nDeletionToken=t\n".to_vec()),
        (
            "token with a header",
            b"CrashID=bp-1\nDeletionToken=t\rX-Evil: 1\n".to_vec(),
        ),
        (
            "non-UTF-8 token",
            b"CrashID=bp-1\nDeletionToken=\xff\xfe\n".to_vec(),
        ),
        ("no receipt at all", b"\xff\xfe\x00\x01garbage".to_vec()),
    ];
    for (case, body) in bodies {
        let dir = data_dir_with_a_report(template.path());
        let (client, summary, _) = send(&server, dir.path(), vec![Reply::Bytes(200, body)]);
        assert!(summary.sent.is_empty(), "{case}: {summary:?}");
        assert_eq!(
            summary.last_error.as_ref().map(|e| e.name()),
            Some("bad_receipt"),
            "{case}"
        );
        assert_eq!(client.pending().unwrap().len(), 1, "{case}: kept");
        assert!(client.sent_reports().unwrap().is_empty(), "{case}");
        assert!(files_in(&dir.path().join("data/sent")).is_empty(), "{case}");
        // Nothing was written next to or above the data dir.
        assert_eq!(files_in(dir.path()), ["data"], "{case}");
        // The kept report is whole: it can still be shown and sent.
        let kept = &client.pending().unwrap()[0];
        assert!(client.summary(kept).unwrap().size_bytes > 0, "{case}");
    }
}
