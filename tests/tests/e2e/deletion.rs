//! Deletion: resolve deletes every trace of an issue's reports (file store with
//! SQLite, and S3 checked by an independent client), regression and resolved-in
//! versions, crypto-shredding, users deleting their reports through the API and
//! through `/forget` in headless Chromium, retention with a controlled clock, key
//! rotation through the CLI, and resolving while reports are in the pipeline.

use std::time::{Duration, Instant};

use mayday_server::crypto::DataKey;
use mayday_server::index::Role;
use mayday_server::report_id::ReportId;
use mayday_server::vault;
use mayday_tests::api::{self, Sent};
use mayday_tests::browser::Browser;
use mayday_tests::fixtures::bin;
use mayday_tests::scan::{traces, walk};
use mayday_tests::server::TestServer;
use mayday_tests::services::{Postgres, S3Server};
use mayday_tests::testdata;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Blobs of a processed report: its raw dump with its metadata, the processed report.
const BLOBS_PER_REPORT: usize = 2;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Runs the retention sweep of `server` as if it were `now`.
async fn sweep(
    server: &TestServer,
    now: i64,
) -> Result<mayday_server::retention::Sweep, mayday_server::deletion::DeleteError> {
    let state = &server.state;
    mayday_server::retention::sweep(
        state.vault(),
        state.metrics(),
        state.config().retention_days,
        now,
    )
    .await
}

/// The report id a test holds as text.
fn rid(id: &str) -> ReportId {
    id.parse().unwrap()
}

/// The crash most tests group into one issue.
fn dump_a() -> Vec<u8> {
    testdata::read("breakpad-win-x86-minidump2/minidump2.dmp")
}

/// A different crash: another issue.
fn dump_b() -> Vec<u8> {
    testdata::read("symbolic-linux-x64-crash/linux-mini.dmp")
}

/// A 32-byte run of `bytes` with many different values: found nowhere by chance.
fn distinctive_run(bytes: &[u8]) -> Vec<u8> {
    (64..bytes.len() - 32)
        .step_by(4)
        .map(|i| &bytes[i..i + 32])
        .find(|w| {
            let mut seen = [false; 256];
            w.iter().for_each(|b| seen[*b as usize] = true);
            seen.iter().filter(|s| **s).count() >= 16
        })
        .expect("a distinctive run in the dump")
        .to_vec()
}

/// Whether the index holds a data key for report `id`.
async fn has_data_key(server: &TestServer, id: &str) -> bool {
    let index = server.state.index();
    index.report_key(&rid(id)).await.unwrap().is_some()
}

/// `mayday-server keys rotate` on the master key file of `data_dir`, which must
/// succeed: its output.
fn rotate_keys(data_dir: &std::path::Path) -> std::process::Output {
    let output = std::process::Command::new(bin("mayday-server"))
        .args(["keys", "rotate"])
        .env("MAYDAY_DATA_DIR", data_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output
}

/// The data key of report `id`, which must have one.
async fn data_key_of(server: &TestServer, id: &str) -> DataKey {
    let vault = server.state.vault();
    vault.data_key(&rid(id)).await.unwrap().expect("a data key")
}

/// Whether `data_key` opens the blob `sealed` stored at `key` (a raw object's
/// dump with its metadata, a processed report), as the server reads it.
fn opens(data_key: DataKey, key: &object_store::path::Path, sealed: &[u8]) -> bool {
    if key.as_ref().ends_with(".dmp") {
        let keys = vault::ReportKeys {
            data: data_key,
            stack: None,
        };
        return vault::open_raw(key, bytes::Bytes::copy_from_slice(sealed), &keys, true)
            .is_ok_and(|raw| raw.dump.starts_with(b"MDMP") && raw.meta.is_some());
    }
    // A processed report: its stored form (a zstd frame of its JSON) opened and read.
    data_key.open(key.as_ref(), sealed).is_ok_and(|plain| {
        mayday_server::pipeline::stored::decode::<serde_json::Value>(&plain)
            .is_ok_and(|report| report.is_object())
    })
}

/// What must vanish with report `sent`: its id, its blob keys, its wrapped data key.
async fn needles_of(server: &TestServer, sent: &Sent) -> Vec<Vec<u8>> {
    let mut needles = vec![sent.uuid().as_bytes().to_vec()];
    let keys = server.report_keys(&sent.id).await;
    assert!(
        keys.len() >= BLOBS_PER_REPORT,
        "raw dump with its metadata, processed: {keys:?}"
    );
    needles.extend(keys.into_iter().map(String::into_bytes));
    let index = server.state.index();
    let wrapped = index.report_key(&rid(&sent.id)).await.unwrap();
    needles.push(wrapped.expect("a data key").wrapped.into_bytes());
    needles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_leaves_no_trace_of_the_issues_reports_under_the_data_dir() {
    let (server, developer) = TestServer::with_token(Role::Developer).await;
    let (admin_id, admin) = server.named_token(Role::Admin, "auditor").await;
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(
            server
                .submit(&dump_a(), &[("prod", "Alpha"), ("ver", "1.0")])
                .await,
        );
    }
    let other = server.submit(&dump_b(), &[("prod", "Alpha")]).await;
    let mut issue = None;
    for s in &sent {
        let report = server.settle(&developer, &s.id).await.unwrap();
        assert_eq!(report["state"], "processed");
        assert!(issue.is_none() || issue == Some(report["issue_id"].clone()));
        issue = Some(report["issue_id"].clone());
    }
    let issue = issue.unwrap().as_i64().unwrap();
    let other_report = server.settle(&developer, &other.id).await.unwrap();
    assert_ne!(other_report["issue_id"], json!(issue));

    // The stored dump as the API serves it (a read that is audited).
    let (status, dump) = server
        .get_bytes(
            &format!("/api/v1/reports/{}/minidump", sent[0].id),
            &developer,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&dump[..4], b"MDMP");
    let run = distinctive_run(&dump);

    let mut needles = vec![run.clone()];
    for s in &sent {
        needles.extend(needles_of(&server, s).await);
    }
    // At rest the blobs are ciphertext already: the dump's bytes are in no file.
    assert_eq!(
        traces(&server.data_dir.join("store"), std::slice::from_ref(&run)),
        vec![]
    );
    // Before: the ids are there (the check below can find them).
    assert!(!traces(&server.data_dir, &needles).is_empty());

    let (status, body) = server.resolve(issue, &developer, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reports_deleted"], 3);
    assert_eq!(body["issue"]["status"], "resolved");

    // Nothing of them anywhere under the data dir: store, index, WAL.
    let files = walk(&server.data_dir);
    assert!(files.iter().any(|f| f.ends_with("index.sqlite")));
    assert_eq!(traces(&server.data_dir, &needles), vec![], "in {files:?}");
    for s in &sent {
        let (status, _) = server
            .get_json(&format!("/api/v1/reports/{}", s.id), &developer)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = server
            .get_json(&format!("/api/v1/reports/{}/minidump", s.id), &developer)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(server.report_keys(&s.id).await.is_empty());
        assert!(!has_data_key(&server, &s.id).await);
    }
    // The other issue's report is untouched.
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", other.id), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.report_keys(&other.id).await.len(), BLOBS_PER_REPORT);

    // The issue keeps its tombstone.
    let (status, body) = server
        .get_json(&format!("/api/v1/issues/{issue}"), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["issue"]["status"], "resolved");
    assert_eq!(body["issue"]["count"], 3);
    assert!(body["issue"]["resolved_at"].is_i64());
    assert!(!body["issue"]["signature"].as_str().unwrap().is_empty());
    assert_eq!(body["reports"], json!([]));

    // Audited: who resolved (the token's id, never its secret), and the earlier
    // read kept under a pseudonym.
    let (status, audit) = server.get_json("/api/v1/audit", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let entries = audit["entries"].as_array().unwrap();
    let resolve = entries
        .iter()
        .find(|e| e["action"] == "issue.resolve")
        .expect("resolve audited");
    assert_eq!(resolve["target"], issue.to_string());
    let developer_id = resolve["actor"].as_str().unwrap();
    assert!(developer_id.starts_with("tok_"), "{resolve}");
    assert!(entries.iter().any(|e| e["action"] == "report.download"
        && e["target"] == mayday_server::deletion::audit_pseudonym(&sent[0].id)));
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "report.delete")
            .count(),
        3
    );
    let text = audit.to_string();
    assert!(!text.contains(&developer) && !text.contains(&admin));
    let (status, _) = server.get_json("/api/v1/audit", &developer).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins only");
    assert!(!admin_id.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_on_s3_leaves_no_key_in_the_bucket() {
    let s3 = S3Server::start().await;
    let (url, options) = (s3.store_url(), s3.store_options());
    let server = TestServer::with_config(move |c| {
        c.store_url = Some(url);
        c.store_options = options;
    })
    .await;
    let developer = server.token(Role::Developer).await;
    let a1 = server.submit(&dump_a(), &[("prod", "Alpha")]).await;
    let a2 = server.submit(&dump_a(), &[("prod", "Alpha")]).await;
    let b = server.submit(&dump_b(), &[]).await;
    let issue = server.settle(&developer, &a1.id).await.unwrap()["issue_id"].clone();
    server.settle(&developer, &a2.id).await.unwrap();
    server.settle(&developer, &b.id).await.unwrap();

    let listed = || s3.keys("");
    let before = listed().await;
    for s in [&a1, &a2, &b] {
        assert_eq!(
            before.iter().filter(|k| k.contains(s.uuid())).count(),
            BLOBS_PER_REPORT,
            "{before:?}"
        );
    }
    let (status, body) = server.resolve(issue, &developer, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reports_deleted"], 2);

    let after = listed().await;
    for s in [&a1, &a2] {
        assert!(!after.iter().any(|k| k.contains(s.uuid())), "{after:?}");
        let (status, _) = server
            .get_json(&format!("/api/v1/reports/{}", s.id), &developer)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        after.iter().filter(|k| k.contains(b.uuid())).count(),
        BLOBS_PER_REPORT
    );
    // Nor in the files behind the bucket.
    let needles: Vec<Vec<u8>> = [&a1, &a2]
        .iter()
        .map(|s| s.uuid().as_bytes().to_vec())
        .collect();
    assert_eq!(traces(s3.root(), &needles), vec![]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regressions_and_resolved_in_versions() {
    let (server, developer) = TestServer::with_token(Role::Developer).await;
    let fields = |v: &'static str| [("prod", "Alpha"), ("ver", v)];
    let first = server.submit(&dump_a(), &fields("2.0.0")).await;
    let issue = server.settle(&developer, &first.id).await.unwrap()["issue_id"]
        .as_i64()
        .unwrap();
    let resolve = |version: Option<&'static str>| {
        let body = version.map(|v| json!({ "in_version": v }));
        let server = &server;
        let developer = &developer;
        async move {
            let (status, body) = server.resolve(issue, developer, body).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let status_of = || async {
        server
            .get_json(&format!("/api/v1/issues/{issue}"), &developer)
            .await
            .1["issue"]
            .clone()
    };
    let body = resolve(Some("2.3.0")).await;
    assert_eq!(body["issue"]["resolved_in_version"], "2.3.0");

    // Older than the fix: counted, dropped (nothing of it stored), still resolved.
    let older = server.submit(&dump_a(), &fields("2.2.9")).await;
    assert!(
        server.settle(&developer, &older.id).await.is_none(),
        "dropped"
    );
    server.drain().await;
    assert!(server.report_keys(&older.id).await.is_empty());
    assert!(!has_data_key(&server, &older.id).await);
    let now = status_of().await;
    assert_eq!(now["status"], "resolved");
    assert_eq!(now["count"], 2, "counted");
    assert_eq!(
        server
            .state
            .index()
            .issue_dropped_count(issue)
            .await
            .unwrap(),
        Some(1)
    );

    // Newer: a regression, and the report is kept.
    let newer = server.submit(&dump_a(), &fields("2.10.1")).await;
    let report = server.settle(&developer, &newer.id).await.expect("kept");
    assert_eq!(report["issue_id"], issue);
    let now = status_of().await;
    assert_eq!(now["status"], "regressed");
    assert_eq!(now["count"], 3);

    // Resolved again in 2.3.0: a crash that names no version is a regression.
    let body = resolve(Some("2.3.0")).await;
    assert_eq!(body["reports_deleted"], 1, "the 2.10.1 report: {body}");
    assert_eq!(body["dropped_count"], 1, "{body}");
    assert_eq!(status_of().await["status"], "resolved");
    let unversioned = server.submit(&dump_a(), &[("prod", "Alpha")]).await;
    assert!(server.settle(&developer, &unversioned.id).await.is_some());
    assert_eq!(status_of().await["status"], "regressed");

    // Resolved without a version: any later crash regresses it.
    resolve(None).await;
    let any = server.submit(&dump_a(), &fields("1.0.0")).await;
    assert!(server.settle(&developer, &any.id).await.is_some());
    assert_eq!(status_of().await["status"], "regressed");

    // The resolved-in version is the resolved product's: another product's old
    // version is a regression.
    resolve(Some("2.3.0")).await;
    let beta = server
        .submit(&dump_a(), &[("prod", "Beta"), ("ver", "1.0.0")])
        .await;
    assert!(server.settle(&developer, &beta.id).await.is_some());
    assert_eq!(status_of().await["status"], "regressed");

    // Reopen by hand; unknown issues are 404; a bad body is 400.
    let (status, body) = server
        .post_json(&format!("/api/v1/issues/{issue}/reopen"), &developer, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["issue"]["status"], "open");
    let (status, _) = server
        .post_json("/api/v1/issues/999999/resolve", &developer, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .resolve(issue, &developer, Some(json!({ "in_version": 3 })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A version no crash's version can be compared with would make every later
    // crash regress it: refused, and the issue stays as it was.
    let (status, body) = server
        .resolve(
            issue,
            &developer,
            Some(json!({ "in_version": "not a version!!" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("version"),
        "{body}"
    );
    // A malformed query is a JSON error like any other API error.
    let (status, body) = server
        .get_json("/api/v1/issues?limit=abc", &developer)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string(), "{body}");
    let support = server.token(Role::Support).await;
    let (status, _) = server.resolve(issue, &support, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(status_of().await["status"], "open");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_blob_cannot_be_decrypted_after_its_report_is_deleted() {
    let (server, developer) = TestServer::with_token(Role::Developer).await;
    let victim = server.submit(&dump_a(), &[("prod", "Alpha")]).await;
    let bystander = server.submit(&dump_b(), &[]).await;
    server.settle(&developer, &victim.id).await.unwrap();
    server.settle(&developer, &bystander.id).await.unwrap();

    // A "backup": every blob of the victim, copied out of the store.
    let storage = server.state.storage();
    let mut copies = Vec::new();
    for key in server.report_keys(&victim.id).await {
        let key = object_store::path::Path::from(key);
        copies.push((key.clone(), storage.get(&key).await.unwrap().unwrap()));
    }
    assert_eq!(copies.len(), BLOBS_PER_REPORT);
    let stack_keys = server.state.index().stack_key_ids().await.unwrap();
    assert!(stack_keys.contains(&rid(&victim.id)), "{stack_keys:?}");
    for (key, sealed) in &copies {
        assert!(!sealed.starts_with(b"MDMP") && !sealed.starts_with(b"{"));
        assert!(opens(data_key_of(&server, &victim.id).await, key, sealed));
    }

    let (status, _) = server
        .delete(
            &format!("/api/v1/reports/{}", victim.id),
            &format!("Bearer {developer}"),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Its keys are gone (the stack key too: without symbols it was kept); no
    // key the server still holds opens the copies.
    assert!(!has_data_key(&server, &victim.id).await);
    let stack_keys = server.state.index().stack_key_ids().await.unwrap();
    assert!(!stack_keys.contains(&rid(&victim.id)), "{stack_keys:?}");
    let remaining = server.state.index().report_key_ids().await.unwrap();
    assert_eq!(
        remaining.len(),
        1,
        "only the bystander's key: {remaining:?}"
    );
    for (report, _) in &remaining {
        for (key, sealed) in &copies {
            assert!(!opens(data_key_of(&server, report).await, key, sealed));
        }
    }
    // Nor does the master key used as a data key, nor anything read back through
    // the server's own blob reader.
    for (key, _) in &copies {
        assert!(
            server
                .state
                .vault()
                .read(&rid(&victim.id), key)
                .await
                .unwrap()
                .is_none()
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_delete_their_reports_with_the_deletion_token_through_the_api() {
    let (server, developer) = TestServer::with_token(Role::Developer).await;
    let (admin_id, admin) = server.named_token(Role::Admin, "a").await;
    let mine = server.submit(&dump_a(), &[]).await;
    let theirs = server.submit(&dump_a(), &[]).await;
    server.settle(&developer, &mine.id).await.unwrap();
    server.settle(&developer, &theirs.id).await.unwrap();
    let delete = |id: String, auth: String| {
        let server = &server;
        async move {
            let path = format!("/api/v1/reports/{id}");
            server.delete(&path, &auth).await.0
        }
    };
    // Wrong tokens delete nothing.
    assert_eq!(
        delete(mine.id.clone(), format!("Deletion {}", "0".repeat(64))).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(
            mine.id.clone(),
            format!("Deletion {}", theirs.deletion_token)
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(mine.id.clone(), "Deletion ".to_owned()).await,
        StatusCode::UNAUTHORIZED
    );
    let support = server.token(Role::Support).await;
    assert_eq!(
        delete(mine.id.clone(), format!("Bearer {support}")).await,
        StatusCode::FORBIDDEN
    );
    // A browser session's secret is a cookie for the pages, never a bearer token
    // (nor a cookie) for the API: not while its token lives, not after it is revoked.
    let (browser_id, browser) = server.named_token(Role::Developer, "b").await;
    let (cookie, _) = server.sign_in(&browser).await;
    let session = cookie.split_once('=').unwrap().1.to_owned();
    for revoked in [false, true] {
        if revoked {
            let now = mayday_server::index::now_ms();
            assert!(
                server
                    .state
                    .index()
                    .revoke_token(&browser_id, now)
                    .await
                    .unwrap()
            );
        }
        assert_eq!(
            delete(mine.id.clone(), format!("Bearer {session}")).await,
            StatusCode::UNAUTHORIZED,
            "revoked: {revoked}"
        );
        let with_cookie = server
            .request(
                reqwest::Method::DELETE,
                &format!("/api/v1/reports/{}", mine.id),
            )
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(with_cookie.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(server.report_keys(&mine.id).await.len(), BLOBS_PER_REPORT);
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", mine.id), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);

    // The right one deletes it, and again answers the same.
    for _ in 0..2 {
        assert_eq!(
            delete(mine.id.clone(), format!("Deletion {}", mine.deletion_token)).await,
            StatusCode::NO_CONTENT
        );
    }
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", mine.id), &developer)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(server.report_keys(&mine.id).await.is_empty());
    assert_eq!(server.report_keys(&theirs.id).await.len(), BLOBS_PER_REPORT);

    // A developer deletes theirs.
    assert_eq!(
        delete(theirs.id.clone(), format!("Bearer {developer}")).await,
        StatusCode::NO_CONTENT
    );
    assert!(server.report_keys(&theirs.id).await.is_empty());

    let (_, audit) = server.get_json("/api/v1/audit?limit=1000", &admin).await;
    let deletes: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "report.delete")
        .collect();
    assert_eq!(deletes.len(), 2, "{audit}");
    assert!(deletes.iter().any(|e| e["actor"] == "deletion-token"));
    assert!(
        deletes
            .iter()
            .any(|e| e["actor"].as_str().unwrap().starts_with("tok_"))
    );
    let text = audit.to_string();
    for secret in [
        &mine.deletion_token,
        &theirs.deletion_token,
        &developer,
        &admin,
    ] {
        assert!(!text.contains(secret.as_str()));
    }
    assert!(!text.contains(mine.uuid()) && !text.contains(theirs.uuid()));
    assert!(!admin_id.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_delete_their_reports_on_the_forget_page_in_headless_chromium() {
    let (server, developer) = TestServer::with_token(Role::Developer).await;
    let mine = server.submit(&dump_a(), &[]).await;
    let other = server.submit(&dump_b(), &[]).await;
    server.settle(&developer, &mine.id).await.unwrap();
    server.settle(&developer, &other.id).await.unwrap();

    let browser = Browser::start(&server.url).await;
    /// Fills in and sends the forget form; returns the outcome the page shows.
    async fn fill_and_send(browser: &Browser, crash_id: &str, token: &str) -> String {
        browser.goto("/forget").await;
        browser.fill("#crash_id", crash_id).await;
        browser.fill("#token", token).await;
        browser.click("#delete").await;
        let result = browser.find("#result").await;
        result
            .attr("data-result")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    // A wrong token (another report's) deletes nothing, and is answered as a
    // CrashID that is not stored is: the page does not tell whether it exists.
    let outcome = fill_and_send(&browser, &mine.id, &other.deletion_token).await;
    assert_eq!(outcome, "not-found");
    let wrong_token = browser.text("#result").await;
    let unknown = "bp-00000000-0000-4000-8000-000000000000";
    let outcome = fill_and_send(&browser, unknown, &other.deletion_token).await;
    assert_eq!(outcome, "not-found");
    assert_eq!(browser.text("#result").await, wrong_token);
    assert!(
        !browser.source().await.contains(&other.deletion_token),
        "token not echoed"
    );
    assert_eq!(server.report_keys(&mine.id).await.len(), BLOBS_PER_REPORT);
    // Markup in the CrashID field comes back as text.
    let outcome = fill_and_send(&browser, "<b id=\"injected\">x</b>", &mine.deletion_token).await;
    assert_eq!(outcome, "invalid");
    assert!(!browser.exists("#injected").await);

    // The right token deletes it; sending it again is fine.
    let outcome = fill_and_send(&browser, &mine.id, &mine.deletion_token).await;
    assert_eq!(outcome, "deleted");
    assert!(server.report_keys(&mine.id).await.is_empty());
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", mine.id), &developer)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let outcome = fill_and_send(&browser, &mine.id, &mine.deletion_token).await;
    assert_eq!(outcome, "not-found");
    // The other report is untouched.
    assert_eq!(server.report_keys(&other.id).await.len(), BLOBS_PER_REPORT);
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_reports_and_keeps_the_issue() {
    let server = TestServer::with_config(|c| c.retention_days = 1).await;
    let developer = server.token(Role::Developer).await;
    let old = server.submit(&dump_a(), &[]).await;
    let old_report = server.settle(&developer, &old.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let young = server.submit(&dump_a(), &[]).await;
    let young_report = server.settle(&developer, &young.id).await.unwrap();
    let issue = old_report["issue_id"].as_i64().unwrap();
    let old_at = old_report["received_at"].as_i64().unwrap();
    let young_at = young_report["received_at"].as_i64().unwrap();
    assert!(young_at > old_at + 1);

    // Now: nothing is a day old.
    let swept = sweep(&server, mayday_server::index::now_ms())
        .await
        .unwrap();
    assert_eq!(swept.reports, 0);
    // A day after the old one arrived: only it goes.
    let swept = sweep(&server, old_at + DAY_MS + 1).await.unwrap();
    assert_eq!(swept.reports, 1);
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", old.id), &developer)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(server.report_keys(&old.id).await.is_empty());
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", young.id), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Later, the young one too; the issue stays as a tombstone.
    let swept = sweep(&server, young_at + DAY_MS + 1).await.unwrap();
    assert_eq!(swept.reports, 1);
    assert!(server.report_keys(&young.id).await.is_empty());
    let (status, body) = server
        .get_json(&format!("/api/v1/issues/{issue}"), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["issue"]["count"], 2);
    assert_eq!(body["reports"], json!([]));
    let audit = server.state.index().audit_entries(100, 0).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "retention.purge")
            .count(),
        2
    );
    assert!(
        audit
            .iter()
            .filter(|e| e.action == "report.delete")
            .all(|e| e.actor == "retention")
    );
    // The sweeper stops with the server.
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_rewraps_every_data_key_under_a_new_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let config_dir = data_dir.clone();
    let server = TestServer::with_config(move |c| c.data_dir = config_dir).await;
    let developer = server.token(Role::Developer).await;
    let sent = server.submit(&dump_a(), &[]).await;
    let before = server.settle(&developer, &sent.id).await.unwrap();
    server.stop().await;
    let key_file = data_dir.join("master.key");
    let old = std::fs::read_to_string(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let output = rotate_keys(&data_dir);
    // Without symbols the report keeps its stack memory, so its stack key too.
    assert!(!before["missing_symbols"].as_array().unwrap().is_empty());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "rewrapped 1 data keys, 1 stack keys"
    );
    let new = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(old, new);
    assert!(!data_dir.join("master.key.next").exists());

    let config_dir = data_dir.clone();
    let server = TestServer::with_config(move |c| c.data_dir = config_dir).await;
    let after = server.settle(&developer, &sent.id).await.unwrap();
    assert_eq!(after["crashing_thread"], before["crashing_thread"]);
    let index = server.state.index();
    let wrapped = index.report_key(&rid(&sent.id)).await.unwrap().unwrap();
    let old_ring = mayday_server::crypto::Keyring::new(
        mayday_server::crypto::MasterKey::from_hex(&old).unwrap(),
    );
    assert!(
        old_ring.unwrap(&wrapped, &sent.id).is_err(),
        "the old key opens nothing"
    );
    assert!(server.state.keyring().unwrap(&wrapped, &sent.id).is_ok());
    // The rewrapped stack key opens the stack memory: the dump has it back.
    let keys = server.state.vault().keys(&rid(&sent.id)).await.unwrap();
    assert!(keys.unwrap().stack.is_some());
    let (status, dump) = server
        .get_bytes(&format!("/api/v1/reports/{}/minidump", sent.id), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    let inventory = mayday_report::scrub::inventory(&dump).unwrap();
    assert!(inventory.stack_memory_bytes > 0, "{inventory:?}");
    server.stop().await;
}

/// On `server`, which has no workers of its own: a report processed by workers
/// started for it alone, and its issue.
async fn first_of_an_issue(server: &TestServer, developer: &str) -> (Sent, i64) {
    let first = server.submit(&dump_a(), &[("prod", "Alpha")]).await;
    let pool = server.start_workers(1);
    let issue = server.settle(developer, &first.id).await.unwrap()["issue_id"]
        .as_i64()
        .unwrap();
    pool.stop().await;
    (first, issue)
}

/// Resolves an issue while 50 reports of it are in the pipeline, waits for the
/// pipeline to drain, and checks through the server that none of them remains:
/// no row, no key, no blob; the issue stays resolved and counts them all.
///
/// `server` has no workers of its own. The 50 are queued first, then `workers`
/// start and the resolution comes as soon as they have finished one: some
/// reports are done before it (it deletes them), others are in workers' hands
/// while it runs. How many finish after it (dropped) is the machine's timing;
/// that each is either deleted or dropped is not. (Reports that finish after
/// the resolution are dropped every time in
/// `reports_queued_before_a_resolution_are_dropped_when_processed`.)
async fn resolve_during_processing(server: &TestServer, workers: usize) -> Vec<Sent> {
    let developer = server.token(Role::Developer).await;
    let (first, issue) = first_of_an_issue(server, &developer).await;
    let mut sent = vec![first];
    let uploads: Vec<_> = (0..50)
        .map(|_| {
            let url = server.url.clone();
            tokio::spawn(async move { api::submit(&url, &dump_a(), &[("prod", "Alpha")]).await })
        })
        .collect();
    for upload in uploads {
        sent.push(upload.await.unwrap());
    }
    let index = server.state.index();
    assert_eq!(index.queue_depth().await.unwrap(), 50, "all queued");
    // Resolve while the workers are busy with them.
    let pool = server.start_workers(workers);
    let deadline = Instant::now() + Duration::from_secs(120);
    while index.queue_depth().await.unwrap() == 50 {
        assert!(Instant::now() < deadline, "no report was processed");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (status, body) = server.resolve(issue, &developer, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deleted = body["reports_deleted"].as_i64().unwrap();
    assert!(
        deleted >= 2,
        "the first and one more done before it: {body}"
    );
    server.drain().await;
    pool.stop().await;

    for s in &sent {
        let (status, _) = server
            .get_json(&format!("/api/v1/reports/{}", s.id), &developer)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{}", s.id);
        let row = server.state.index().report(&rid(&s.id)).await.unwrap();
        assert!(row.is_none());
        assert!(!has_data_key(server, &s.id).await);
    }
    assert!(
        server
            .state
            .index()
            .report_key_ids()
            .await
            .unwrap()
            .is_empty()
    );
    let stack_keys = server.state.index().stack_key_ids().await.unwrap();
    assert_eq!(stack_keys, Vec::new());
    let left = server.store_keys(None).await;
    assert_eq!(left, Vec::<String>::new());
    let (_, body) = server
        .get_json(&format!("/api/v1/issues/{issue}"), &developer)
        .await;
    assert_eq!(
        body["issue"]["status"], "resolved",
        "not regressed by its own backlog"
    );
    assert_eq!(body["issue"]["count"], 51);
    let dropped = server
        .state
        .index()
        .issue_dropped_count(issue)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        deleted + dropped,
        51,
        "each report deleted by the resolution or dropped after it"
    );
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_while_reports_are_in_the_pipeline_leaves_none_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let server = TestServer::with_config(|c| {
        c.data_dir = data_dir.clone();
        c.pipeline.workers = 0;
    })
    .await;
    let sent = resolve_during_processing(&server, mayday_server::config::default_workers()).await;
    server.stop().await;
    // Every file the server left: no id of them.
    let needles: Vec<Vec<u8>> = sent.iter().map(|s| s.uuid().as_bytes().to_vec()).collect();
    assert_eq!(traces(&data_dir, &needles), vec![]);
}

/// Reports queued before their issue's resolution and processed after it are
/// counted and dropped: nothing of them is stored, the issue stays resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_queued_before_a_resolution_are_dropped_when_processed() {
    let server = TestServer::with_config(|c| c.pipeline.workers = 0).await;
    let developer = server.token(Role::Developer).await;
    let (_, issue) = first_of_an_issue(&server, &developer).await;
    let mut queued = Vec::new();
    for _ in 0..5 {
        queued.push(server.submit(&dump_a(), &[("prod", "Alpha")]).await);
    }
    let index = server.state.index();
    assert_eq!(index.queue_depth().await.unwrap(), 5);
    let (status, body) = server.resolve(issue, &developer, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["reports_deleted"], 1,
        "only the first was stored: {body}"
    );

    let pool = server.start_workers(2);
    server.drain().await;
    pool.stop().await;
    assert_eq!(index.issue_dropped_count(issue).await.unwrap(), Some(5));
    for s in &queued {
        assert!(
            index.report(&rid(&s.id)).await.unwrap().is_none(),
            "{}",
            s.id
        );
        assert!(!has_data_key(&server, &s.id).await);
        assert_eq!(server.report_keys(&s.id).await, Vec::<String>::new());
    }
    let (_, body) = server
        .get_json(&format!("/api/v1/issues/{issue}"), &developer)
        .await;
    assert_eq!(body["issue"]["status"], "resolved", "{body}");
    assert_eq!(body["issue"]["count"], 6, "{body}");
    server.stop().await;
}

/// The same race with several processes' setup: S3 and PostgreSQL, where a
/// worker's commit waits for the resolution's row lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_while_reports_are_in_the_pipeline_on_s3_and_postgresql() {
    let s3 = S3Server::start().await;
    let database = Postgres::shared().database("deletion_race");
    let (url, options) = (s3.store_url(), s3.store_options());
    let server = TestServer::with_config(move |c| {
        c.store_url = Some(url);
        c.store_options = options;
        c.database_url = Some(database);
        c.pipeline.workers = 0;
    })
    .await;
    let sent = resolve_during_processing(&server, 4).await;
    let listed = s3.keys("").await;
    for s in &sent {
        assert!(!listed.iter().any(|k| k.contains(s.uuid())), "{listed:?}");
    }
    server.stop().await;
}

#[test]
fn storage_keys_used_here_are_the_servers() {
    let id: mayday_server::report_id::ReportId =
        "bp-0b7e4b8e-2f4b-4a4e-9a57-5d2a3c1e9f00".parse().unwrap();
    assert_eq!(
        vault::processed_key(&id).to_string(),
        "reports/bp-0b7e4b8e-2f4b-4a4e-9a57-5d2a3c1e9f00.json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_delete_reports_and_issues_through_the_api_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let server = TestServer::with_config(|c| c.data_dir = data_dir.clone()).await;
    let admin = server.token(Role::Admin).await;
    let a1 = server.submit(&dump_a(), &[]).await;
    let a2 = server.submit(&dump_a(), &[]).await;
    let a3 = server.submit(&dump_a(), &[]).await;
    let b = server.submit(&dump_b(), &[]).await;
    let issue_a = server.settle(&admin, &a1.id).await.unwrap()["issue_id"]
        .as_i64()
        .unwrap();
    server.settle(&admin, &a2.id).await.unwrap();
    server.settle(&admin, &a3.id).await.unwrap();
    let issue_b = server.settle(&admin, &b.id).await.unwrap()["issue_id"]
        .as_i64()
        .unwrap();

    // The CLI, on the same data dir as the running server: one report, then a
    // whole issue's reports.
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(bin("mayday-server"))
            .args(args)
            .env("MAYDAY_DATA_DIR", &data_dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let out = cli(&["reports", "delete", &a1.id]);
    assert_eq!(out.trim(), format!("{}\tdeleted", a1.id));
    assert!(server.report_keys(&a1.id).await.is_empty());
    let out = cli(&["reports", "delete", &a1.id]);
    assert_eq!(out.trim(), format!("{}\tnot stored", a1.id));
    let out = cli(&["reports", "delete", "--issue", &issue_b.to_string()]);
    assert_eq!(out.trim(), format!("issue {issue_b}\t1 reports deleted"));
    assert!(server.report_keys(&b.id).await.is_empty());
    let (status, body) = server
        .get_json(&format!("/api/v1/issues/{issue_b}"), &admin)
        .await;
    assert_eq!(status, StatusCode::OK, "the issue stays");
    assert_eq!(body["reports"], json!([]));

    // The API: an issue's reports (the issue stays), then the issue itself.
    let bearer = format!("Bearer {admin}");
    let (status, body) = server
        .delete(&format!("/api/v1/issues/{issue_a}/reports"), &bearer)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["reports_deleted"], 2);
    for s in [&a2, &a3] {
        assert!(server.report_keys(&s.id).await.is_empty());
    }
    let (status, _) = server
        .get_json(&format!("/api/v1/issues/{issue_a}"), &admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    let issue_path = format!("/api/v1/issues/{issue_a}");
    let delete_issue = || server.delete(&issue_path, &bearer);
    assert_eq!(delete_issue().await.0, StatusCode::OK);
    let (status, _) = server
        .get_json(&format!("/api/v1/issues/{issue_a}"), &admin)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(delete_issue().await.0, StatusCode::NOT_FOUND);

    let audit = server.state.index().audit_entries(100, 0).await.unwrap();
    let by = |actor: &str, action: &str| {
        audit
            .iter()
            .filter(|e| e.actor == actor && e.action == action)
            .count()
    };
    assert_eq!(by("cli", "report.delete"), 2);
    assert_eq!(by("cli", "issue.delete_reports"), 1);
    assert!(
        audit
            .iter()
            .any(|e| e.action == "issue.delete" && e.target == issue_a.to_string())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_with_a_configured_key_and_resumes_an_interrupted_rotation() {
    use mayday_server::crypto::MasterKey;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let first = MasterKey::generate().to_hex();
    let start = |key: Option<String>| {
        let data_dir = data_dir.clone();
        TestServer::with_config(move |c| {
            c.data_dir = data_dir;
            c.master_key = key;
        })
    };
    let server = start(Some(first.clone())).await;
    let developer = server.token(Role::Developer).await;
    let sent = server.submit(&dump_a(), &[]).await;
    let before = server.settle(&developer, &sent.id).await.unwrap();
    server.stop().await;
    assert!(
        !data_dir.join("master.key").exists(),
        "a configured key is not written"
    );

    // With a configured key, the new one must be given (a generated one could be
    // lost half-way); `keys generate` makes one.
    let refused = std::process::Command::new(bin("mayday-server"))
        .args(["keys", "rotate"])
        .env("MAYDAY_DATA_DIR", &data_dir)
        .env("MAYDAY_MASTER_KEY", &first)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--new-key"));
    let generated = std::process::Command::new(bin("mayday-server"))
        .args(["keys", "generate"])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let second = String::from_utf8(generated.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(MasterKey::from_hex(&second).unwrap().to_hex(), second);
    assert_ne!(second, first);
    let output = std::process::Command::new(bin("mayday-server"))
        .args(["keys", "rotate"])
        .env("MAYDAY_DATA_DIR", &data_dir)
        .env("MAYDAY_MASTER_KEY", &first)
        .env("MAYDAY_NEW_MASTER_KEY", &second)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("rewrapped 1 data keys, 1 stack keys\n"),
        "{stdout}"
    );
    assert!(stdout.contains(&second));
    let server = start(Some(second.clone())).await;
    let after = server.settle(&developer, &sent.id).await.unwrap();
    assert_eq!(after["crashing_thread"], before["crashing_thread"]);
    server.stop().await;
    // The first key opens nothing any more: a server with it reads nothing.
    let server = start(Some(first.clone())).await;
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", sent.id), &developer)
        .await;
    assert!(status.is_server_error(), "{status}");
    server.stop().await;

    // To a key file, interrupted: `master.key.next` exists and only some data
    // keys were rewrapped (here none). A server started meanwhile holds both
    // keys; running the rotation again finishes it with the same new key.
    std::fs::write(data_dir.join("master.key"), format!("{second}\n")).unwrap();
    let third = MasterKey::generate().to_hex();
    std::fs::write(data_dir.join("master.key.next"), format!("{third}\n")).unwrap();
    let server = start(None).await;
    let during = server.settle(&developer, &sent.id).await.unwrap();
    assert_eq!(during["crashing_thread"], before["crashing_thread"]);
    server.stop().await;
    rotate_keys(&data_dir);
    assert_eq!(
        std::fs::read_to_string(data_dir.join("master.key"))
            .unwrap()
            .trim(),
        third
    );
    assert!(!data_dir.join("master.key.next").exists());
    let server = start(None).await;
    let index = server.state.index();
    let wrapped = index.report_key(&rid(&sent.id)).await.unwrap().unwrap();
    assert_eq!(
        wrapped.master_key_id,
        MasterKey::from_hex(&third).unwrap().id()
    );
    let last = server.settle(&developer, &sent.id).await.unwrap();
    assert_eq!(last["crashing_thread"], before["crashing_thread"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_nothing_can_read_any_more_are_swept() {
    use mayday_server::report_id::ReportId;

    let (server, developer) = TestServer::with_token(Role::Developer).await;
    let kept = server.submit(&dump_a(), &[]).await;
    server.settle(&developer, &kept.id).await.unwrap();
    let storage = server.state.storage();
    // Left by a worker that died after its report was deleted: no key, no row.
    let dead_processed = vault::processed_key(&ReportId::new());
    let dead_raw =
        object_store::path::Path::from(format!("raw/2026-01-01/{}.dmp", ReportId::new()));
    // A key without its row yet (as an earlier version stored an upload's key
    // before its blobs): its blob is never swept.
    let uploading = ReportId::new();
    server.state.vault().create_key(&uploading).await.unwrap();
    let uploading_raw = object_store::path::Path::from(format!("raw/2026-01-01/{uploading}.dmp"));
    let symbol = object_store::path::Path::from("symbols/app.pdb/0123/app.sym");
    for key in [&dead_processed, &dead_raw, &uploading_raw, &symbol] {
        storage
            .put(key, bytes::Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    let now = mayday_server::index::now_ms();
    assert_eq!(
        mayday_server::retention::sweep_orphan_blobs(server.state.vault(), now)
            .await
            .unwrap(),
        0,
        "young blobs are left alone"
    );
    assert_eq!(
        mayday_server::retention::sweep_orphan_blobs(server.state.vault(), now + 2 * DAY_MS)
            .await
            .unwrap(),
        2
    );
    let left = server.store_keys(None).await;
    assert!(!left.contains(&dead_processed.to_string()));
    assert!(!left.contains(&dead_raw.to_string()));
    assert!(left.contains(&uploading_raw.to_string()));
    assert!(left.contains(&symbol.to_string()));
    assert_eq!(server.report_keys(&kept.id).await.len(), BLOBS_PER_REPORT);
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", kept.id), &developer)
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}
