//! Upload against a real HTTP server: what is sent, retries, refusals, throttling,
//! receipts, and deletion requests.

use std::time::Instant;

use mayday_client::Forgotten;

use crate::support::{
    Reply, TestServer, client_builder, client_for, crash, crash_with, crashed, crashy_command,
    files_in, find, unused_addr,
};

#[test]
fn upload_is_gzipped_multipart_with_dump_and_annotations() {
    let (dir, server) = crashed("segv", "always");
    let client = client_for(dir.path(), &server);
    let summary = client.send_pending().unwrap();
    assert_eq!(summary.sent.len(), 1, "{summary:?}");
    let uploads = server.uploads();
    assert_eq!(uploads.len(), 1);
    let up = &uploads[0];
    assert_eq!(up.path, "/submit");
    assert_eq!(up.headers["content-encoding"], "gzip");
    assert!(
        up.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    let parts = up.parts();
    let dump = &parts
        .iter()
        .find(|(n, _)| n == "upload_file_minidump")
        .expect("dump part")
        .1;
    assert_eq!(&dump[..4], b"MDMP");
    minidump::Minidump::read(&dump[..]).expect("the sent dump parses");
    assert_eq!(up.text_part("ProductName").as_deref(), Some("crashy"));
    assert_eq!(up.text_part("Version").as_deref(), Some("0.1.0"));
    assert_eq!(up.text_part("channel").as_deref(), Some("example"));
    // Exactly these parts: nothing else (no ids, no user or host names).
    let mut names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["ProductName", "Version", "channel", "upload_file_minidump"]
    );
    // Sent, so the pending copy is gone and a receipt holds the deletion token.
    assert!(client.pending().unwrap().is_empty());
    let receipts = client.sent_reports().unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].crash_id, summary.sent[0].crash_id);
    assert!(!receipts[0].deletion_token.is_empty());
    assert_eq!(
        files_in(&dir.path().join("sent")),
        vec![format!("{}.json", receipts[0].crash_id)]
    );
}

#[test]
fn server_down_keeps_the_report_until_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let unused = unused_addr();
    crash(dir.path(), "abort", "always");
    let client = client_builder(dir.path(), Some(&format!("http://{}", unused.addr)))
        .build()
        .unwrap();
    let summary = client.send_pending().unwrap();
    assert!(summary.sent.is_empty());
    assert_eq!(summary.still_pending, 1);
    assert_eq!(
        summary.last_error.as_ref().map(|e| e.name()),
        Some("network")
    );
    assert_eq!(client.pending().unwrap().len(), 1);

    let server = TestServer::start_on(unused);
    let summary = client.send_pending().unwrap();
    assert_eq!(summary.sent.len(), 1, "{summary:?}");
    assert!(client.pending().unwrap().is_empty());
    assert_eq!(server.uploads().len(), 1);
}

#[test]
fn server_errors_are_retried() {
    let (dir, server) = crashed("abort", "always");
    server.script([
        Reply::Status(500, "boom", None),
        Reply::Status(503, "busy", None),
    ]);
    let client = client_for(dir.path(), &server);
    let summary = client.send_pending().unwrap();
    assert_eq!(summary.sent.len(), 1, "{summary:?}");
    assert_eq!(server.uploads().len(), 3);
    // Every attempt carried the same report.
    let bodies: Vec<Vec<u8>> = server.uploads().iter().map(|r| r.decoded_body()).collect();
    assert!(bodies.windows(2).all(|w| w[0].len() == w[1].len()));
}

#[test]
fn persistent_server_errors_leave_the_report_pending() {
    let (dir, server) = crashed("abort", "always");
    server.script(std::iter::repeat_n(
        Reply::Status(502, "bad gateway", None),
        4,
    ));
    let client = client_for(dir.path(), &server);
    let summary = client.send_pending().unwrap();
    assert!(summary.sent.is_empty());
    assert_eq!(server.uploads().len(), 4, "attempts per call");
    assert_eq!(client.pending().unwrap().len(), 1);
    // Next time it goes through.
    assert_eq!(client.send_pending().unwrap().sent.len(), 1);
}

#[test]
fn bad_request_and_too_large_are_dropped_without_retry() {
    for (status, text) in [(400, "Discarded=malformed_no_minidump"), (413, "too large")] {
        let (dir, server) = crashed("abort", "always");
        server.script([Reply::Status(status, text, None)]);
        let client = client_for(dir.path(), &server);
        let summary = client.send_pending().unwrap();
        assert_eq!(summary.discarded, 1, "{status}");
        assert_eq!(server.uploads().len(), 1, "{status}: not retried");
        assert!(client.pending().unwrap().is_empty(), "{status}: dropped");
        assert!(client.sent_reports().unwrap().is_empty());
    }
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let (dir, server) = crashed("abort", "always");
    server.script([Reply::Status(429, "slow down", Some("1"))]);
    let client = client_for(dir.path(), &server);
    let started = Instant::now();
    let summary = client.send_pending().unwrap();
    assert_eq!(summary.sent.len(), 1, "{summary:?}");
    assert!(
        started.elapsed().as_millis() >= 900,
        "waited for Retry-After"
    );
    assert_eq!(server.uploads().len(), 2);
}

#[test]
fn long_retry_after_and_stop_sending_throttle_the_client() {
    let (dir, server) = crashed("abort", "always");
    // Retry-After beyond the longest wait within a call: stop, keep the report.
    server.script([Reply::Status(429, "slow down", Some("3600"))]);
    let client = client_for(dir.path(), &server);
    let summary = client.send_pending().unwrap();
    assert!(summary.throttled_until.is_some());
    assert_eq!(client.pending().unwrap().len(), 1);
    // While throttled, nothing is sent at all.
    let summary = client.send_pending().unwrap();
    assert!(summary.sent.is_empty());
    assert_eq!(server.uploads().len(), 1);

    // StopSendingReportsFor= on an accepted upload: that one is sent, the next not.
    let (dir, server) = crashed("abort", "always");
    server.script([Reply::AcceptAndStop(1)]);
    crash(dir.path(), "abort", "always");
    let client = client_for(dir.path(), &server);
    let summary = client.send_pending().unwrap();
    assert_eq!(summary.sent.len(), 1);
    assert!(summary.throttled_until.is_some());
    assert_eq!(client.pending().unwrap().len(), 1);
    assert_eq!(server.uploads().len(), 1);
}

#[test]
fn forget_and_forget_all_ask_the_server_to_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    for _ in 0..3 {
        crash(dir.path(), "abort", "always");
    }
    let client = client_for(dir.path(), &server);
    let sent = client.send_pending().unwrap().sent;
    assert_eq!(sent.len(), 3);
    assert_eq!(server.stored().len(), 3);

    let first = &sent[0];
    assert_eq!(client.forget(&first.crash_id).unwrap(), Forgotten::Deleted);
    let deletes: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].path,
        format!("/api/v1/reports/{}", first.crash_id)
    );
    assert_eq!(
        deletes[0].headers["authorization"],
        format!("Deletion {}", first.deletion_token).as_str()
    );
    assert!(!server.stored().contains(&first.crash_id));
    assert_eq!(client.sent_reports().unwrap().len(), 2);
    assert_eq!(
        client.forget(&first.crash_id).unwrap_err().name(),
        "unknown_report"
    );

    assert_eq!(client.forget_all().unwrap(), 2);
    assert!(server.stored().is_empty());
    assert!(client.sent_reports().unwrap().is_empty());
}

#[test]
fn forget_of_a_report_the_server_does_not_know_removes_the_receipt() {
    let (dir, server) = crashed("abort", "always");
    let client = client_for(dir.path(), &server);
    let sent = client.send_pending().unwrap().sent;
    // The server forgot it on its own (e.g. its issue was resolved and purged)...
    let r = &sent[0];
    let url = format!("{}/api/v1/reports/{}", server.url(), r.crash_id);
    let status = reqwest::blocking::Client::new()
        .delete(&url)
        .header("authorization", format!("Deletion {}", r.deletion_token))
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 204);
    // ...so the client's request is answered 404 and the receipt goes.
    assert_eq!(client.forget(&r.crash_id).unwrap(), Forgotten::NotFound);
    assert!(client.sent_reports().unwrap().is_empty());
}

/// A made-up user: the crash runs with `HOME=/…/home/<user>`, `USER=<user>` and a
/// secret in its environment.
fn crash_as_made_up_user(data_dir: &std::path::Path, scrub: &str) -> (String, String) {
    let user = format!("zebulonquux{}", std::process::id());
    let secret = format!("s3cr3t-{}", uuid::Uuid::new_v4().simple());
    let home = data_dir.join("home").join(&user);
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = crashy_command(&data_dir.join("data"), "always");
    cmd.env("HOME", &home)
        .env("USER", &user)
        .env("LOGNAME", &user)
        .env("MAYDAY_TEST_API_KEY", &secret)
        .env("MAYDAY_CLIENT_SCRUB", scrub)
        .current_dir(&home);
    crash_with(cmd, "segv");
    (user, secret)
}

#[test]
fn with_client_scrubbing_no_user_name_or_secret_leaves_the_machine() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    let (user, secret) = crash_as_made_up_user(dir.path(), "on");
    let client = client_for(&dir.path().join("data"), &server);
    assert_eq!(client.send_pending().unwrap().sent.len(), 1);
    let uploads = server.uploads();
    assert_eq!(uploads.len(), 1);
    let body = uploads[0].decoded_body();
    assert!(find(&body, b"MDMP").is_some());
    assert_eq!(find(&body, user.as_bytes()), None, "user name was sent");
    assert_eq!(find(&body, secret.as_bytes()), None, "secret was sent");
    assert_eq!(find(&uploads[0].body, user.as_bytes()), None);
}

#[test]
fn without_client_scrubbing_the_same_crash_carries_them() {
    // The check above can fail: unscrubbed, the dump holds both strings.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    let (user, secret) = crash_as_made_up_user(dir.path(), "off");
    let client = client_builder(&dir.path().join("data"), Some(&server.url()))
        .client_scrub(false)
        .build()
        .unwrap();
    assert_eq!(client.send_pending().unwrap().sent.len(), 1);
    let body = server.uploads()[0].decoded_body();
    assert!(find(&body, user.as_bytes()).is_some());
    assert!(find(&body, secret.as_bytes()).is_some());
}

#[test]
fn a_report_acknowledged_before_the_app_died_is_not_sent_twice() {
    let (dir, server) = crashed("abort", "always");
    let pending = dir.path().join("pending");
    let saved = tempfile::tempdir().unwrap();
    for name in files_in(&pending) {
        std::fs::copy(pending.join(&name), saved.path().join(&name)).unwrap();
    }
    let client = client_for(dir.path(), &server);
    assert_eq!(client.send_pending().unwrap().sent.len(), 1);
    // As if the process had died after storing the receipt, before removing the
    // pending report: the report is back in the queue.
    for name in files_in(saved.path()) {
        std::fs::copy(saved.path().join(&name), pending.join(&name)).unwrap();
    }
    assert_eq!(client.pending().unwrap().len(), 1);
    let summary = client.send_pending().unwrap();
    assert!(summary.sent.is_empty());
    assert_eq!(server.uploads().len(), 1, "not uploaded again");
    assert!(client.pending().unwrap().is_empty());
    assert_eq!(client.sent_reports().unwrap().len(), 1);
}

#[test]
fn sending_and_forgetting_from_inside_an_async_runtime_works() {
    // reqwest's blocking client panics when built or dropped inside a runtime;
    // the client keeps it on a thread of its own.
    let (dir, server) = crashed("abort", "always");
    let client = client_for(dir.path(), &server);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sent = rt.block_on(async { client.send_pending() }).unwrap().sent;
    assert_eq!(sent.len(), 1);
    let forgotten = rt.block_on(async { client.forget(&sent[0].crash_id) });
    assert_eq!(forgotten.unwrap(), Forgotten::Deleted);
    assert!(server.stored().is_empty());
}

#[test]
fn only_one_process_sends_at_a_time() {
    let (dir, server) = crashed("abort", "always");
    let client = client_for(dir.path(), &server);
    // Another instance is sending: it holds the lock.
    let other = std::fs::File::create(dir.path().join("send.lock")).unwrap();
    other.lock().unwrap();
    let summary = client.send_pending().unwrap();
    assert!(summary.sent.is_empty());
    assert_eq!(summary.still_pending, 1);
    assert!(server.uploads().is_empty());
    // It is done: it unlocks, as the client does when it has sent.
    other.unlock().unwrap();
    drop(other);
    assert_eq!(client.send_pending().unwrap().sent.len(), 1);
}
