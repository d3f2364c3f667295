//! Deletion: resolve deletes every trace of an issue's reports (file store with
//! SQLite, and S3 checked by an independent client), regression and resolved-in
//! versions, crypto-shredding, users deleting their reports through the API and
//! through `/forget` in headless Chromium, retention with a controlled clock, key
//! rotation through the CLI, and resolving while reports are in the pipeline.

use std::path::Path;
use std::time::{Duration, Instant};

use mayday_server::index::Role;
use mayday_server::report_id::ReportId;
use mayday_server::vault;
use mayday_tests::fixtures::{bin, testdata};
use mayday_tests::server::{TestServer, walk};
use mayday_tests::services::{ChromeDriver, Postgres, S3Server};
use mayday_tests::upload::Multipart;
use reqwest::StatusCode;
use serde_json::{Value, json};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The report id a test holds as text.
fn rid(id: &str) -> ReportId {
    id.parse().unwrap()
}

/// The crash most tests group into one issue.
fn dump_a() -> Vec<u8> {
    std::fs::read(testdata().join("breakpad-win-x86-minidump2/minidump2.dmp")).unwrap()
}

/// A different crash: another issue.
fn dump_b() -> Vec<u8> {
    std::fs::read(testdata().join("symbolic-linux-x64-crash/linux-mini.dmp")).unwrap()
}

/// A submitted report: its CrashID and deletion token.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    token: String,
}

impl Sent {
    fn uuid(&self) -> &str {
        self.id.trim_start_matches("bp-")
    }
}

async fn submit(server: &TestServer, dump: &[u8], fields: &[(&str, &str)]) -> Sent {
    submit_to(&server.url, dump, fields).await
}

async fn submit_to(url: &str, dump: &[u8], fields: &[(&str, &str)]) -> Sent {
    let mut form = Multipart::new();
    for (k, v) in fields {
        form = form.text(k, v);
    }
    let (content_type, body) = form.dump(dump).finish();
    let response = reqwest::Client::new()
        .post(format!("{url}/submit"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let receipt =
        mayday_report::upload::SubmitReceipt::parse_text(&response.text().await.unwrap()).unwrap();
    Sent {
        id: receipt.crash_id,
        token: receipt.deletion_token,
    }
}

async fn get(server: &TestServer, token: &str, path: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(
    server: &TestServer,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until report `id` is processed (its JSON) or gone (`None`: dropped).
async fn settle(server: &TestServer, token: &str, id: &str) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, json) = get(server, token, &format!("/api/v1/reports/{id}")).await;
        if status == StatusCode::NOT_FOUND {
            return None;
        }
        if status == StatusCode::OK && json["state"] != "queued" {
            return Some(json);
        }
        assert!(
            Instant::now() < deadline,
            "report {id} did not settle: {json}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until no job is waiting or running.
async fn drain(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while server.state.index().queue_depth().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
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

/// Every needle found in any file (name or contents) below `dir`: `(file, needle)`.
fn traces(dir: &Path, needles: &[Vec<u8>]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in walk(dir) {
        let name = file.to_string_lossy().into_owned();
        let bytes = std::fs::read(&file).unwrap_or_default();
        for needle in needles {
            if contains(name.as_bytes(), needle) || contains(&bytes, needle) {
                found.push((name.clone(), String::from_utf8_lossy(needle).into_owned()));
            }
        }
    }
    found
}

/// Object store keys of report `sent`.
async fn keys_of(server: &TestServer, sent: &Sent) -> Vec<String> {
    server
        .state
        .storage()
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.to_string())
        .filter(|k| k.contains(sent.uuid()))
        .collect()
}

/// What must vanish with report `sent`: its id, its blob keys, its wrapped data key.
async fn needles_of(server: &TestServer, sent: &Sent) -> Vec<Vec<u8>> {
    let mut needles = vec![sent.uuid().as_bytes().to_vec()];
    let keys = keys_of(server, sent).await;
    assert!(keys.len() >= 3, "raw dump, raw meta, processed: {keys:?}");
    needles.extend(keys.into_iter().map(String::into_bytes));
    let wrapped = server
        .state
        .index()
        .report_key(&rid(&sent.id))
        .await
        .unwrap();
    needles.push(wrapped.expect("a data key").wrapped.into_bytes());
    needles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_leaves_no_trace_of_the_issues_reports_under_the_data_dir() {
    let server = TestServer::start().await;
    let developer = server.token(Role::Developer).await;
    let (admin_id, admin) =
        mayday_server::triage::auth::create_token(server.state.index(), Role::Admin, "auditor")
            .await
            .unwrap();
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(submit(&server, &dump_a(), &[("prod", "Alpha"), ("ver", "1.0")]).await);
    }
    let other = submit(&server, &dump_b(), &[("prod", "Alpha")]).await;
    let mut issue = None;
    for s in &sent {
        let report = settle(&server, &developer, &s.id).await.unwrap();
        assert_eq!(report["state"], "processed");
        assert!(issue.is_none() || issue == Some(report["issue_id"].clone()));
        issue = Some(report["issue_id"].clone());
    }
    let issue = issue.unwrap().as_i64().unwrap();
    let other_report = settle(&server, &developer, &other.id).await.unwrap();
    assert_ne!(other_report["issue_id"], json!(issue));

    // The stored dump as the API serves it (a read that is audited).
    let dump = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/reports/{}/minidump",
            server.url, sent[0].id
        ))
        .bearer_auth(&developer)
        .send()
        .await
        .unwrap();
    assert_eq!(dump.status(), StatusCode::OK);
    let dump = dump.bytes().await.unwrap();
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

    let (status, body) = post(
        &server,
        &developer,
        &format!("/api/v1/issues/{issue}/resolve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reports_deleted"], 3);
    assert_eq!(body["issue"]["status"], "resolved");

    // Nothing of them anywhere under the data dir: store, index, WAL.
    let files = walk(&server.data_dir);
    assert!(files.iter().any(|f| f.ends_with("index.sqlite")));
    assert_eq!(traces(&server.data_dir, &needles), vec![], "in {files:?}");
    for s in &sent {
        let (status, _) = get(&server, &developer, &format!("/api/v1/reports/{}", s.id)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get(
            &server,
            &developer,
            &format!("/api/v1/reports/{}/minidump", s.id),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(keys_of(&server, s).await.is_empty());
        assert!(
            server
                .state
                .index()
                .report_key(&rid(&s.id))
                .await
                .unwrap()
                .is_none()
        );
    }
    // The other issue's report is untouched.
    let (status, _) = get(
        &server,
        &developer,
        &format!("/api/v1/reports/{}", other.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys_of(&server, &other).await.len(), 3);

    // The issue keeps its tombstone.
    let (status, body) = get(&server, &developer, &format!("/api/v1/issues/{issue}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["issue"]["status"], "resolved");
    assert_eq!(body["issue"]["count"], 3);
    assert!(body["issue"]["resolved_at"].is_i64());
    assert!(!body["issue"]["signature"].as_str().unwrap().is_empty());
    assert_eq!(body["reports"], json!([]));

    // Audited: who resolved (the token's id, never its secret), and the earlier
    // read kept under a pseudonym.
    let (status, audit) = get(&server, &admin, "/api/v1/audit").await;
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
    let (status, _) = get(&server, &developer, "/api/v1/audit").await;
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
    let a1 = submit(&server, &dump_a(), &[("prod", "Alpha")]).await;
    let a2 = submit(&server, &dump_a(), &[("prod", "Alpha")]).await;
    let b = submit(&server, &dump_b(), &[]).await;
    let issue = settle(&server, &developer, &a1.id).await.unwrap()["issue_id"].clone();
    settle(&server, &developer, &a2.id).await.unwrap();
    settle(&server, &developer, &b.id).await.unwrap();

    let bucket = s3.independent_client();
    let listed = || async {
        bucket
            .list(String::new(), None)
            .await
            .unwrap()
            .iter()
            .flat_map(|page| page.contents.iter().map(|o| o.key.clone()))
            .collect::<Vec<String>>()
    };
    let before = listed().await;
    for s in [&a1, &a2, &b] {
        assert_eq!(
            before.iter().filter(|k| k.contains(s.uuid())).count(),
            3,
            "{before:?}"
        );
    }
    let (status, body) = post(
        &server,
        &developer,
        &format!("/api/v1/issues/{issue}/resolve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reports_deleted"], 2);

    let after = listed().await;
    for s in [&a1, &a2] {
        assert!(!after.iter().any(|k| k.contains(s.uuid())), "{after:?}");
        let (status, _) = get(&server, &developer, &format!("/api/v1/reports/{}", s.id)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(after.iter().filter(|k| k.contains(b.uuid())).count(), 3);
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
    let server = TestServer::start().await;
    let developer = server.token(Role::Developer).await;
    let fields = |v: &'static str| [("prod", "Alpha"), ("ver", v)];
    let first = submit(&server, &dump_a(), &fields("2.0.0")).await;
    let issue = settle(&server, &developer, &first.id).await.unwrap()["issue_id"]
        .as_i64()
        .unwrap();
    let resolve = |version: Option<&'static str>| {
        let body = version.map(|v| json!({ "in_version": v }));
        let server = &server;
        let developer = &developer;
        async move {
            let (status, body) = post(
                server,
                developer,
                &format!("/api/v1/issues/{issue}/resolve"),
                body,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let status_of = || async {
        get(&server, &developer, &format!("/api/v1/issues/{issue}"))
            .await
            .1["issue"]
            .clone()
    };
    let body = resolve(Some("2.3.0")).await;
    assert_eq!(body["issue"]["resolved_in_version"], "2.3.0");

    // Older than the fix: counted, dropped (nothing of it stored), still resolved.
    let older = submit(&server, &dump_a(), &fields("2.2.9")).await;
    assert!(
        settle(&server, &developer, &older.id).await.is_none(),
        "dropped"
    );
    drain(&server).await;
    assert!(keys_of(&server, &older).await.is_empty());
    assert!(
        server
            .state
            .index()
            .report_key(&rid(&older.id))
            .await
            .unwrap()
            .is_none()
    );
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
    let newer = submit(&server, &dump_a(), &fields("2.10.1")).await;
    let report = settle(&server, &developer, &newer.id).await.expect("kept");
    assert_eq!(report["issue_id"], issue);
    let now = status_of().await;
    assert_eq!(now["status"], "regressed");
    assert_eq!(now["count"], 3);

    // Resolved again in 2.3.0: a crash that names no version is a regression.
    let body = resolve(Some("2.3.0")).await;
    assert_eq!(body["reports_deleted"], 1, "the 2.10.1 report: {body}");
    assert_eq!(body["dropped_count"], 1, "{body}");
    assert_eq!(status_of().await["status"], "resolved");
    let unversioned = submit(&server, &dump_a(), &[("prod", "Alpha")]).await;
    assert!(settle(&server, &developer, &unversioned.id).await.is_some());
    assert_eq!(status_of().await["status"], "regressed");

    // Resolved without a version: any later crash regresses it.
    resolve(None).await;
    let any = submit(&server, &dump_a(), &fields("1.0.0")).await;
    assert!(settle(&server, &developer, &any.id).await.is_some());
    assert_eq!(status_of().await["status"], "regressed");

    // The resolved-in version is the resolved product's: another product's old
    // version is a regression.
    resolve(Some("2.3.0")).await;
    let beta = submit(&server, &dump_a(), &[("prod", "Beta"), ("ver", "1.0.0")]).await;
    assert!(settle(&server, &developer, &beta.id).await.is_some());
    assert_eq!(status_of().await["status"], "regressed");

    // Reopen by hand; unknown issues are 404; a bad body is 400.
    let (status, body) = post(
        &server,
        &developer,
        &format!("/api/v1/issues/{issue}/reopen"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["issue"]["status"], "open");
    let (status, _) = post(&server, &developer, "/api/v1/issues/999999/resolve", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &server,
        &developer,
        &format!("/api/v1/issues/{issue}/resolve"),
        Some(json!({ "in_version": 3 })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let support = server.token(Role::Support).await;
    let (status, _) = post(
        &server,
        &support,
        &format!("/api/v1/issues/{issue}/resolve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(status_of().await["status"], "open");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_blob_cannot_be_decrypted_after_its_report_is_deleted() {
    let server = TestServer::start().await;
    let developer = server.token(Role::Developer).await;
    let victim = submit(&server, &dump_a(), &[("prod", "Alpha")]).await;
    let bystander = submit(&server, &dump_b(), &[]).await;
    settle(&server, &developer, &victim.id).await.unwrap();
    settle(&server, &developer, &bystander.id).await.unwrap();

    // A "backup": every blob of the victim, copied out of the store.
    let storage = server.state.storage();
    let mut copies = Vec::new();
    for key in keys_of(&server, &victim).await {
        let key = object_store::path::Path::from(key);
        copies.push((key.clone(), storage.get(&key).await.unwrap().unwrap()));
    }
    assert_eq!(copies.len(), 3);
    let data_key = server
        .state
        .vault()
        .data_key(&rid(&victim.id))
        .await
        .unwrap()
        .unwrap();
    for (key, sealed) in &copies {
        assert!(!sealed.starts_with(b"MDMP") && !sealed.starts_with(b"{"));
        let plain = data_key
            .open(key.as_ref(), sealed)
            .expect("readable before");
        assert!(plain.starts_with(b"MDMP") || plain.starts_with(b"{"));
    }

    let response = reqwest::Client::new()
        .delete(format!("{}/api/v1/reports/{}", server.url, victim.id))
        .bearer_auth(&developer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Its key is gone; no key the server still holds opens the copies.
    assert!(
        server
            .state
            .vault()
            .data_key(&rid(&victim.id))
            .await
            .unwrap()
            .is_none()
    );
    let remaining = server.state.index().report_key_ids().await.unwrap();
    assert_eq!(
        remaining.len(),
        1,
        "only the bystander's key: {remaining:?}"
    );
    for (report, _) in &remaining {
        let other = server
            .state
            .vault()
            .data_key(&rid(report))
            .await
            .unwrap()
            .unwrap();
        for (key, sealed) in &copies {
            assert!(other.open(key.as_ref(), sealed).is_err());
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
    let server = TestServer::start().await;
    let developer = server.token(Role::Developer).await;
    let (admin_id, admin) =
        mayday_server::triage::auth::create_token(server.state.index(), Role::Admin, "a")
            .await
            .unwrap();
    let mine = submit(&server, &dump_a(), &[]).await;
    let theirs = submit(&server, &dump_a(), &[]).await;
    settle(&server, &developer, &mine.id).await.unwrap();
    settle(&server, &developer, &theirs.id).await.unwrap();
    let base = server.url.clone();
    let delete = |id: String, auth: String| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .delete(format!("{base}/api/v1/reports/{id}"))
                .header("Authorization", auth)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Wrong tokens delete nothing.
    assert_eq!(
        delete(mine.id.clone(), format!("Deletion {}", "0".repeat(64))).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(mine.id.clone(), format!("Deletion {}", theirs.token)).await,
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
    assert_eq!(keys_of(&server, &mine).await.len(), 3);
    let (status, _) = get(&server, &developer, &format!("/api/v1/reports/{}", mine.id)).await;
    assert_eq!(status, StatusCode::OK);

    // The right one deletes it, and again answers the same.
    for _ in 0..2 {
        assert_eq!(
            delete(mine.id.clone(), format!("Deletion {}", mine.token)).await,
            StatusCode::NO_CONTENT
        );
    }
    let (status, _) = get(&server, &developer, &format!("/api/v1/reports/{}", mine.id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(keys_of(&server, &mine).await.is_empty());
    assert_eq!(keys_of(&server, &theirs).await.len(), 3);

    // A developer deletes theirs.
    assert_eq!(
        delete(theirs.id.clone(), format!("Bearer {developer}")).await,
        StatusCode::NO_CONTENT
    );
    assert!(keys_of(&server, &theirs).await.is_empty());

    let (_, audit) = get(&server, &admin, "/api/v1/audit?limit=1000").await;
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
    for secret in [&mine.token, &theirs.token, &developer, &admin] {
        assert!(!text.contains(secret.as_str()));
    }
    assert!(!text.contains(mine.uuid()) && !text.contains(theirs.uuid()));
    assert!(!admin_id.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_delete_their_reports_on_the_forget_page_in_headless_chromium() {
    use fantoccini::Locator;

    let server = TestServer::start().await;
    let developer = server.token(Role::Developer).await;
    let mine = submit(&server, &dump_a(), &[]).await;
    let other = submit(&server, &dump_b(), &[]).await;
    settle(&server, &developer, &mine.id).await.unwrap();
    settle(&server, &developer, &other.id).await.unwrap();

    let driver = tokio::task::spawn_blocking(ChromeDriver::start)
        .await
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut caps = driver.capabilities();
    caps["goog:chromeOptions"]["args"]
        .as_array_mut()
        .unwrap()
        .push(Value::String(format!(
            "--user-data-dir={}",
            profile.path().display()
        )));
    let browser =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .expect("a headless Chromium session");

    async fn fill_and_send(
        browser: &fantoccini::Client,
        base: &str,
        crash_id: &str,
        token: &str,
    ) -> String {
        browser.goto(&format!("{base}/forget")).await.unwrap();
        browser
            .find(Locator::Id("crash_id"))
            .await
            .unwrap()
            .send_keys(crash_id)
            .await
            .unwrap();
        browser
            .find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys(token)
            .await
            .unwrap();
        browser
            .find(Locator::Id("delete"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let result = browser
            .wait()
            .for_element(Locator::Id("result"))
            .await
            .unwrap();
        result
            .attr("data-result")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    // A wrong token (another report's) deletes nothing.
    let outcome = fill_and_send(&browser, &server.url, &mine.id, &other.token).await;
    assert_eq!(outcome, "mismatch");
    assert!(
        !browser.source().await.unwrap().contains(&other.token),
        "token not echoed"
    );
    assert_eq!(keys_of(&server, &mine).await.len(), 3);
    // Markup in the CrashID field comes back as text.
    let outcome = fill_and_send(
        &browser,
        &server.url,
        "<b id=\"injected\">x</b>",
        &mine.token,
    )
    .await;
    assert_eq!(outcome, "invalid");
    assert!(browser.find(Locator::Id("injected")).await.is_err());

    // The right token deletes it; sending it again is fine.
    let outcome = fill_and_send(&browser, &server.url, &mine.id, &mine.token).await;
    assert_eq!(outcome, "deleted");
    assert!(keys_of(&server, &mine).await.is_empty());
    let (status, _) = get(&server, &developer, &format!("/api/v1/reports/{}", mine.id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let outcome = fill_and_send(&browser, &server.url, &mine.id, &mine.token).await;
    assert_eq!(outcome, "absent");
    // The other report is untouched.
    assert_eq!(keys_of(&server, &other).await.len(), 3);
    browser.close().await.unwrap();
    drop(driver);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_reports_and_keeps_the_issue() {
    let server = TestServer::with_config(|c| c.retention_days = 1).await;
    let developer = server.token(Role::Developer).await;
    let old = submit(&server, &dump_a(), &[]).await;
    let old_report = settle(&server, &developer, &old.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let young = submit(&server, &dump_a(), &[]).await;
    let young_report = settle(&server, &developer, &young.id).await.unwrap();
    let issue = old_report["issue_id"].as_i64().unwrap();
    let old_at = old_report["received_at"].as_i64().unwrap();
    let young_at = young_report["received_at"].as_i64().unwrap();
    assert!(young_at > old_at + 1);

    let state = &server.state;
    let sweep = |now| {
        mayday_server::retention::sweep(
            state.vault(),
            state.metrics(),
            state.config().retention_days,
            now,
        )
    };
    // Now: nothing is a day old.
    let swept = sweep(mayday_server::index::now_ms()).await.unwrap();
    assert_eq!(swept.reports, 0);
    // A day after the old one arrived: only it goes.
    let swept = sweep(old_at + DAY_MS + 1).await.unwrap();
    assert_eq!(swept.reports, 1);
    let (status, _) = get(&server, &developer, &format!("/api/v1/reports/{}", old.id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(keys_of(&server, &old).await.is_empty());
    let (status, _) = get(
        &server,
        &developer,
        &format!("/api/v1/reports/{}", young.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Later, the young one too; the issue stays as a tombstone.
    let swept = sweep(young_at + DAY_MS + 1).await.unwrap();
    assert_eq!(swept.reports, 1);
    assert!(keys_of(&server, &young).await.is_empty());
    let (status, body) = get(&server, &developer, &format!("/api/v1/issues/{issue}")).await;
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
    let sent = submit(&server, &dump_a(), &[]).await;
    let before = settle(&server, &developer, &sent.id).await.unwrap();
    server.stop().await;
    let key_file = data_dir.join("master.key");
    let old = std::fs::read_to_string(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let output = std::process::Command::new(bin("mayday-server"))
        .args(["keys", "rotate"])
        .env("MAYDAY_DATA_DIR", &data_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "rewrapped 1 data keys"
    );
    let new = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(old, new);
    assert!(!data_dir.join("master.key.next").exists());

    let config_dir = data_dir.clone();
    let server = TestServer::with_config(move |c| c.data_dir = config_dir).await;
    let after = settle(&server, &developer, &sent.id).await.unwrap();
    assert_eq!(after["crashing_thread"], before["crashing_thread"]);
    let wrapped = server
        .state
        .index()
        .report_key(&rid(&sent.id))
        .await
        .unwrap()
        .unwrap();
    let old_ring = mayday_server::crypto::Keyring::new(
        mayday_server::crypto::MasterKey::from_hex(&old).unwrap(),
    );
    assert!(
        old_ring.unwrap(&wrapped, &sent.id).is_err(),
        "the old key opens nothing"
    );
    assert!(server.state.keyring().unwrap(&wrapped, &sent.id).is_ok());
    server.stop().await;
}

/// Resolves an issue while 50 reports of it are in the pipeline, waits for the
/// pipeline to drain, and checks through the server that none of them remains:
/// no row, no key, no blob; the issue stays resolved and counts them all.
async fn resolve_during_processing(server: &TestServer) -> Vec<Sent> {
    let developer = server.token(Role::Developer).await;
    let first = submit(server, &dump_a(), &[("prod", "Alpha")]).await;
    let issue = settle(server, &developer, &first.id).await.unwrap()["issue_id"]
        .as_i64()
        .unwrap();
    // 50 at once, so the queue is deep when the resolution comes.
    let mut sent = vec![first];
    let uploads: Vec<_> = (0..50)
        .map(|_| {
            let url = server.url.clone();
            tokio::spawn(async move { submit_to(&url, &dump_a(), &[("prod", "Alpha")]).await })
        })
        .collect();
    for upload in uploads {
        sent.push(upload.await.unwrap());
    }
    // Resolve while the workers are busy with them.
    let depth = server.state.index().queue_depth().await.unwrap();
    assert!(depth > 0, "reports still in the pipeline");
    let (status, body) = post(
        server,
        &developer,
        &format!("/api/v1/issues/{issue}/resolve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    drain(server).await;

    for s in &sent {
        let (status, _) = get(server, &developer, &format!("/api/v1/reports/{}", s.id)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{}", s.id);
        let (index, id) = (server.state.index(), rid(&s.id));
        assert!(index.report(&id).await.unwrap().is_none());
        assert!(index.report_key(&id).await.unwrap().is_none());
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
    let left: Vec<String> = server
        .state
        .storage()
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.to_string())
        .filter(|k| !k.starts_with("health/"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    let (_, body) = get(server, &developer, &format!("/api/v1/issues/{issue}")).await;
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
    assert!(dropped > 0, "some finished after the resolution");
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_while_reports_are_in_the_pipeline_leaves_none_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let server = TestServer::with_config(|c| c.data_dir = data_dir.clone()).await;
    let sent = resolve_during_processing(&server).await;
    server.stop().await;
    // Every file the server left: no id of them.
    let needles: Vec<Vec<u8>> = sent.iter().map(|s| s.uuid().as_bytes().to_vec()).collect();
    assert_eq!(traces(&data_dir, &needles), vec![]);
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
        c.pipeline.workers = 4;
    })
    .await;
    let sent = resolve_during_processing(&server).await;
    let bucket = s3.independent_client();
    let listed: Vec<String> = bucket
        .list(String::new(), None)
        .await
        .unwrap()
        .iter()
        .flat_map(|page| page.contents.iter().map(|o| o.key.clone()))
        .collect();
    for s in &sent {
        assert!(!listed.iter().any(|k| k.contains(s.uuid())), "{listed:?}");
    }
    server.stop().await;
}

#[test]
fn storage_keys_used_here_are_the_servers() {
    let id: ReportId = "bp-0b7e4b8e-2f4b-4a4e-9a57-5d2a3c1e9f00".parse().unwrap();
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
    let a1 = submit(&server, &dump_a(), &[]).await;
    let a2 = submit(&server, &dump_a(), &[]).await;
    let a3 = submit(&server, &dump_a(), &[]).await;
    let b = submit(&server, &dump_b(), &[]).await;
    let issue_a = settle(&server, &admin, &a1.id).await.unwrap()["issue_id"]
        .as_i64()
        .unwrap();
    settle(&server, &admin, &a2.id).await.unwrap();
    settle(&server, &admin, &a3.id).await.unwrap();
    let issue_b = settle(&server, &admin, &b.id).await.unwrap()["issue_id"]
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
    assert!(keys_of(&server, &a1).await.is_empty());
    let out = cli(&["reports", "delete", &a1.id]);
    assert_eq!(out.trim(), format!("{}\tnot stored", a1.id));
    let out = cli(&["reports", "delete", "--issue", &issue_b.to_string()]);
    assert_eq!(out.trim(), format!("issue {issue_b}\t1 reports deleted"));
    assert!(keys_of(&server, &b).await.is_empty());
    let (status, body) = get(&server, &admin, &format!("/api/v1/issues/{issue_b}")).await;
    assert_eq!(status, StatusCode::OK, "the issue stays");
    assert_eq!(body["reports"], json!([]));

    // The API: an issue's reports (the issue stays), then the issue itself.
    let client = reqwest::Client::new();
    let response = client
        .delete(format!("{}/api/v1/issues/{issue_a}/reports", server.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reports_deleted"], 2);
    for s in [&a2, &a3] {
        assert!(keys_of(&server, s).await.is_empty());
    }
    let (status, _) = get(&server, &admin, &format!("/api/v1/issues/{issue_a}")).await;
    assert_eq!(status, StatusCode::OK);
    let response = client
        .delete(format!("{}/api/v1/issues/{issue_a}", server.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = get(&server, &admin, &format!("/api/v1/issues/{issue_a}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = client
        .delete(format!("{}/api/v1/issues/{issue_a}", server.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

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
    let sent = submit(&server, &dump_a(), &[]).await;
    let before = settle(&server, &developer, &sent.id).await.unwrap();
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
    assert!(stdout.starts_with("rewrapped 1 data keys\n"), "{stdout}");
    assert!(stdout.contains(&second));
    let server = start(Some(second.clone())).await;
    let after = settle(&server, &developer, &sent.id).await.unwrap();
    assert_eq!(after["crashing_thread"], before["crashing_thread"]);
    server.stop().await;
    // The first key opens nothing any more: a server with it reads nothing.
    let server = start(Some(first.clone())).await;
    let (status, _) = get(&server, &developer, &format!("/api/v1/reports/{}", sent.id)).await;
    assert!(status.is_server_error(), "{status}");
    server.stop().await;

    // To a key file, interrupted: `master.key.next` exists and only some data
    // keys were rewrapped (here none). A server started meanwhile holds both
    // keys; running the rotation again finishes it with the same new key.
    std::fs::write(data_dir.join("master.key"), format!("{second}\n")).unwrap();
    let third = MasterKey::generate().to_hex();
    std::fs::write(data_dir.join("master.key.next"), format!("{third}\n")).unwrap();
    let server = start(None).await;
    let during = settle(&server, &developer, &sent.id).await.unwrap();
    assert_eq!(during["crashing_thread"], before["crashing_thread"]);
    server.stop().await;
    let output = std::process::Command::new(bin("mayday-server"))
        .args(["keys", "rotate"])
        .env("MAYDAY_DATA_DIR", &data_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        std::fs::read_to_string(data_dir.join("master.key"))
            .unwrap()
            .trim(),
        third
    );
    assert!(!data_dir.join("master.key.next").exists());
    let server = start(None).await;
    let wrapped = server
        .state
        .index()
        .report_key(&rid(&sent.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        wrapped.master_key_id,
        MasterKey::from_hex(&third).unwrap().id()
    );
    let last = settle(&server, &developer, &sent.id).await.unwrap();
    assert_eq!(last["crashing_thread"], before["crashing_thread"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_nothing_can_read_any_more_are_swept() {
    let server = TestServer::start().await;
    let developer = server.token(Role::Developer).await;
    let kept = submit(&server, &dump_a(), &[]).await;
    settle(&server, &developer, &kept.id).await.unwrap();
    let storage = server.state.storage();
    // Left by a worker that died after its report was deleted: no key, no row.
    let dead_processed = vault::processed_key(&ReportId::new());
    let dead_raw =
        object_store::path::Path::from(format!("raw/2026-01-01/{}.dmp", ReportId::new()));
    // An upload in progress: its key is stored, its row not yet.
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
    let left: Vec<String> = storage
        .list(None)
        .await
        .unwrap()
        .iter()
        .map(|k| k.to_string())
        .filter(|k| !k.starts_with("health/"))
        .collect();
    assert!(!left.contains(&dead_processed.to_string()));
    assert!(!left.contains(&dead_raw.to_string()));
    assert!(left.contains(&uploading_raw.to_string()));
    assert!(left.contains(&symbol.to_string()));
    assert_eq!(keys_of(&server, &kept).await.len(), 3);
    let (status, _) = get(&server, &developer, &format!("/api/v1/reports/{}", kept.id)).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}
