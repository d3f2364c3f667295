//! A processed report is derived data: stored without waiting for the disk
//! while its report keeps its stack key, and made again from the durable raw
//! upload when a power cut lost it (missing, or truncated so that it no longer
//! opens). Once the stack key is destroyed (a fully symbolicated report) it is
//! stored durably, as it cannot be made again.

use std::path::PathBuf;

use mayday_server::index::Role;
use mayday_tests::api;
use mayday_tests::server::TestServer;
use mayday_tests::testdata;
use serde_json::Value;

const CASE: &str = "breakpad-win-x86-minidump2";

fn dump() -> Vec<u8> {
    testdata::read(&format!("{CASE}/minidump2.dmp"))
}

/// The file of report `id`'s processed report in the server's local store.
fn processed_file(server: &TestServer, id: &str) -> PathBuf {
    let root = server
        .state
        .storage()
        .local_root()
        .expect("the test server's store is local");
    root.join("reports").join(format!("{id}.json"))
}

/// `mayday_processed_puts_total{put="…"}` of the server.
async fn puts(server: &TestServer, put: &str) -> f64 {
    let metrics = api::metrics(&server.url).await;
    api::metric(
        &metrics,
        &format!("mayday_processed_puts_total{{put=\"{put}\"}}"),
    )
    .unwrap_or(0.0)
}

/// The report's issue and that issue's report count.
async fn issue_count(server: &TestServer, token: &str, report: &Value) -> (i64, i64) {
    let issue = report["issue_id"].as_i64().expect("grouped");
    let (status, body) = server
        .get_json(&format!("/api/v1/issues/{issue}"), token)
        .await;
    assert!(status.is_success(), "{status} {body}");
    (issue, body["issue"]["count"].as_i64().expect("a count"))
}

/// What a reprocessed report must give again: the processed fields that do not
/// change between runs.
fn essence(report: &Value) -> Value {
    serde_json::json!({
        "state": report["state"],
        "issue_id": report["issue_id"],
        "signature": report["signature"],
        "crash_reason": report["crash_reason"],
        "crashing_thread": report["crashing_thread"],
        "modules": report["modules"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processed_report_lost_to_a_power_cut_is_made_again() {
    // No symbols: the crashing thread is not symbolicated, the stack key stays.
    let (server, token) = TestServer::with_token(Role::Developer).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (id, report) = server.submit_processed(&token, &dump(), &[]).await;
        assert_eq!(report["state"], "processed", "{report}");
        assert!(report["signature"].is_string(), "{report}");
        ids.push((id, report));
    }
    assert_eq!(puts(&server, "lazy").await, 2.0);
    assert_eq!(puts(&server, "durable").await, 0.0);
    let (issue, count) = issue_count(&server, &token, &ids[0].1).await;
    assert_eq!(count, 2);

    // The power cut: one report's blob is gone, the other's is cut short.
    let (gone, truncated) = (&ids[0], &ids[1]);
    std::fs::remove_file(processed_file(&server, &gone.0)).unwrap();
    // Cut in the middle of the sealed text: its header reads, the AEAD open fails.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(processed_file(&server, &truncated.0))
        .unwrap();
    let len = file.metadata().unwrap().len();
    assert!(len > 100, "{len}");
    file.set_len(len / 2).unwrap();
    drop(file);

    for (id, before) in [gone, truncated] {
        // Read through the API: not an error; made again to the same result.
        let (status, first) = server
            .get_json(&format!("/api/v1/reports/{id}"), &token)
            .await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["state"], "processed", "{first}");
        // This read found it lost and queued it.
        assert_eq!(first["reprocessing"], true, "{first}");
        let again = server
            .wait_report(&token, id, |r| {
                r.get("reprocessing").is_none() && r["signature"].is_string()
            })
            .await;
        assert_eq!(essence(&again), essence(before));
    }
    server.drain().await;
    // The same issue, its count not doubled; processed again, durably.
    assert_eq!(issue_count(&server, &token, &ids[0].1).await, (issue, 2));
    assert_eq!(puts(&server, "durable").await, 2.0);
    // The report page reads it too.
    let page = server.get_as(&format!("/reports/{}", gone.0), &token).await;
    assert!(page.status().is_success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fully_symbolicated_report_is_stored_durably() {
    let case = testdata::cases()
        .into_iter()
        .find(|c| c.name() == CASE)
        .expect("the test data case");
    let server = TestServer::with_symbols_of([&case]).await;
    let token = server.token(Role::Developer).await;
    let (id, report) = server.submit_processed(&token, &dump(), &[]).await;
    assert_eq!(report["state"], "processed", "{report}");
    // Its stack memory was dropped with its stack key: it cannot be walked again,
    // so its processed report was stored durably.
    assert!(
        report["scrub"]["removed"]["stack_memory_bytes_dropped"].as_u64() > Some(0),
        "{report}"
    );
    assert_eq!(puts(&server, "durable").await, 1.0);
    assert_eq!(puts(&server, "lazy").await, 0.0);
    // And a blob that no longer opens is not taken for a lost derived one.
    std::fs::OpenOptions::new()
        .write(true)
        .open(processed_file(&server, &id))
        .unwrap()
        .set_len(7)
        .unwrap();
    let (status, body) = server
        .get_json(&format!("/api/v1/reports/{id}"), &token)
        .await;
    assert!(status.is_server_error(), "{status} {body}");
    assert_eq!(server.state.index().queue_depth().await.unwrap(), 0);
    server.stop().await;
}
