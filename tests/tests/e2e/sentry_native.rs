//! The real sentry-native: its own example program (`sentry_example`, from
//! sentry-native 0.4.9 as crates.io's `sentry-contrib-native-sys` ships it, built
//! by `scripts/install-test-deps`) crashes with a DSN pointing at Mayday.
//!
//! - Crashpad backend: its `crashpad_handler` dumps the crash out of process and
//!   uploads it to `/api/<project>/minidump/` (HTTP/1.0, chunked, gzipped), with the
//!   event (release, tags, user, contexts, extra) as the MessagePack file
//!   `__sentry-event` and the breadcrumbs as two more files beside the dump.
//! - Breakpad backend: the program dumps itself and leaves an envelope (the event
//!   as JSON, breadcrumbs inside, and the dump as an `event.minidump` attachment)
//!   in its database, which it sends to `/api/<project>/envelope/` when it next
//!   starts.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use mayday_report::scrub::TextAttachmentRule;
use mayday_server::config::SentryProject;
use mayday_server::index::Role;
use mayday_tests::api::{metric, metrics};
use mayday_tests::command::{assert_segv, text, upload_with_system_libc};
use mayday_tests::fixtures::sentry_native_example;
use mayday_tests::report::{crash_reason, functions};
use mayday_tests::scan::{contains, walk};
use mayday_tests::server::TestServer;

/// The Sentry project of the DSN, and its one accepted public key.
const PROJECT: &str = "42";
const KEY: &str = "5d1c3e3f9b8a4c7d8e6f0a1b2c3d4e5f";
/// A key project 42 does not list.
const WRONG_KEY: &str = "00000000000000000000000000000000";
/// The product the deployment files project 42's reports under: the example's
/// release, `test-example-release`, names none.
const PRODUCT: &str = "sentry-example";
/// How long one run of the program (with a handler dumping it) may take.
const RUN_PATIENCE: Duration = Duration::from_secs(60);
/// What the example sets besides its release and tag (user, transaction, runtime
/// context, extra, breadcrumbs), each of which it sends and Mayday must not keep.
const NOT_KEPT: [&str; 7] = [
    "some_name",
    "test-transaction",
    "testing-runtime",
    "extra stuff",
    "default level is info",
    "debug crumb",
    "example!",
];

/// A server whose one Sentry project, 42, accepts [`KEY`] and files under
/// [`PRODUCT`]; a developer's token.
async fn server() -> (TestServer, String) {
    server_keeping(&[]).await
}

/// [`server`], keeping the text attachments `rules` list.
async fn server_keeping(rules: &[TextAttachmentRule]) -> (TestServer, String) {
    let server = TestServer::with_config(|config| {
        config.sentry.projects = vec![SentryProject {
            id: PROJECT.to_owned(),
            keys: vec![KEY.to_owned()],
            product: Some(PRODUCT.to_owned()),
        }];
        config.scrub.text_attachments = rules.to_vec();
    })
    .await;
    let developer = server.token(Role::Developer).await;
    (server, developer)
}

/// Project 42's DSN at `server`, with `key`.
fn dsn(server: &TestServer, key: &str) -> String {
    let port = server.url.rsplit(':').next().unwrap();
    format!("http://{key}@127.0.0.1:{port}/{PROJECT}")
}

/// Runs the `backend` build of `sentry_example` with `args` in `dir` (its
/// database, `.sentry-native`, goes there) and the DSN `dsn`, to its end.
async fn run(backend: &str, dir: &Path, dsn: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(sentry_native_example(backend));
    command
        .args(args)
        .current_dir(dir)
        .env("SENTRY_DSN", dsn)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(RUN_PATIENCE, command.output())
        .await
        .expect("the example (and its handler) end in time")
        .unwrap()
}

/// `sentry_example crash`: asserts that it died of `SIGSEGV`.
async fn crash(backend: &str, dir: &Path, dsn: &str) {
    crash_with(backend, dir, dsn, &["crash"]).await;
}

/// [`crash`] with `args` (which must include `crash`).
async fn crash_with(backend: &str, dir: &Path, dsn: &str, args: &[&str]) {
    assert_segv(&run(backend, dir, dsn, args).await);
}

/// `sentry_example` with no arguments: it starts, sends what its database holds
/// from the last run, and ends.
async fn start_again(backend: &str, dir: &Path, dsn: &str) {
    let ran = run(backend, dir, dsn, &[]).await;
    assert!(ran.status.success(), "{:?} {}", ran.status, text(&ran));
}

/// The bytes of every file in the example's database below `dir` (what it hands
/// its handler, or sends when it next starts).
fn database_bytes(dir: &Path) -> Vec<u8> {
    walk(&dir.join(".sentry-native"))
        .iter()
        .flat_map(|file| std::fs::read(file).unwrap_or_default())
        .collect()
}

/// Asserts that every one of [`NOT_KEPT`] is in `sent`, what the example sent,
/// so the checks that they are not stored can fail.
fn assert_sent_all(sent: &[u8]) {
    for needle in NOT_KEPT {
        assert!(
            contains(sent, needle.as_bytes()),
            "{needle} in what the example sent"
        );
    }
}

/// Asserts what became of the example's crash, report `id`: processed and
/// symbolicated, filed under [`PRODUCT`] with its release as the version, its
/// tag an annotation, and nothing else of its event (nor the DSN's key) in the
/// processed report or the stored blobs.
async fn assert_reported(server: &TestServer, developer: &str, id: &str) {
    let report = server.wait_processed(developer, id).await;
    assert_eq!(report["state"], "processed", "{report}");
    assert_eq!(report["product"], PRODUCT, "{report}");
    assert_eq!(report["version"], "test-example-release", "{report}");
    assert!(
        crash_reason(&report).starts_with("SIGSEGV"),
        "{}",
        report["crash_reason"]
    );
    let names = functions(&report);
    let at = names
        .iter()
        .position(|f| f == "trigger_crash")
        .unwrap_or_else(|| panic!("trigger_crash on the crashing thread: {names:?}"));
    assert_eq!(
        names.get(at + 1).map(String::as_str),
        Some("main"),
        "{names:?}"
    );

    // The event's tag is an annotation; nothing else of the event is.
    let annotations = report["annotations"].as_object().unwrap();
    assert_eq!(annotations["expected-tag"], "some value", "{annotations:?}");
    assert!(
        !annotations.contains_key("not-expected-tag") && !annotations.contains_key("guid"),
        "{annotations:?}"
    );
    let text = report.to_string();
    for needle in NOT_KEPT.iter().chain([&KEY]) {
        assert!(
            !text.contains(needle),
            "{needle} in the API's report: {text}"
        );
    }
    let in_blobs: Vec<&str> = NOT_KEPT.iter().copied().chain([KEY]).collect();
    server.assert_blobs_free_of(id, &in_blobs).await;
}

/// The number of uploads refused for a key no project lists.
async fn refused_for_unknown_keys(server: &TestServer) -> Option<f64> {
    metric(
        &metrics(&server.url).await,
        "mayday_uploads_rejected_total{reason=\"dsn_key_unknown\"}",
    )
}

/// Waits until `count` uploads have been refused for a key no project lists
/// (the crash handler sends on its own time).
async fn wait_refused(server: &TestServer, count: f64) {
    let deadline = Instant::now() + RUN_PATIENCE;
    while refused_for_unknown_keys(server).await != Some(count) {
        assert!(Instant::now() < deadline, "the refused upload did not come");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The number of reports the server has stored.
async fn stored(server: &TestServer) -> usize {
    server.stored_reports().await.len()
}

/// sentry-native's example program crashes; its Crashpad handler uploads the dump
/// to the DSN's project on a real server, which processes it (symbolicated from
/// the program's own symbols), files it under the project's product with the
/// example's release as the version and its tag as an annotation; the user,
/// transaction, context, extra and breadcrumbs it sent are neither in the
/// processed report nor in the stored dump and metadata, nor is the DSN's key. A
/// DSN with a key the project does not list is refused and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_natives_example_crashes_and_its_crashpad_handler_reports_by_dsn() {
    let (server, developer) = server().await;
    let uploader = server.token(Role::Uploader).await;
    // The example's symbols (it is built with debug information) and the C
    // library's, as its developer would upload them.
    let example = sentry_native_example("crashpad");
    upload_with_system_libc(&example, &server.url, &uploader).await;

    let sent = tempfile::tempdir().unwrap();
    crash("crashpad", sent.path(), &dsn(&server, KEY)).await;
    let id = server.wait_for_upload(&developer, PRODUCT).await;
    // Its run directory keeps the event and breadcrumb files it handed the handler.
    assert_sent_all(&database_bytes(sent.path()));
    assert_reported(&server, &developer, &id).await;

    // A key project 42 does not list: the handler's upload is refused before its
    // body is read, and nothing is stored.
    assert_eq!(refused_for_unknown_keys(&server).await, None);
    let other = tempfile::tempdir().unwrap();
    crash("crashpad", other.path(), &dsn(&server, WRONG_KEY)).await;
    wait_refused(&server, 1.0).await;
    assert_eq!(stored(&server).await, 1, "only the listed key's report");
    server.stop().await;
}

/// With the Breakpad backend the example dumps itself when it crashes and sends
/// the envelope (event and `event.minidump` attachment) when it next starts: the
/// report is processed and kept exactly as the Crashpad handler's is, and the
/// envelope's header, which carries the whole DSN, is not stored. With a key the
/// project does not list, the envelope is refused and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_natives_example_with_breakpad_sends_its_crash_as_an_envelope_on_next_start() {
    let (server, developer) = server().await;
    let uploader = server.token(Role::Uploader).await;
    let example = sentry_native_example("breakpad");
    upload_with_system_libc(&example, &server.url, &uploader).await;

    // A key project 42 does not list: refused, nothing stored.
    let other = tempfile::tempdir().unwrap();
    crash("breakpad", other.path(), &dsn(&server, WRONG_KEY)).await;
    start_again("breakpad", other.path(), &dsn(&server, WRONG_KEY)).await;
    wait_refused(&server, 1.0).await;
    assert_eq!(stored(&server).await, 0);

    let dir = tempfile::tempdir().unwrap();
    crash("breakpad", dir.path(), &dsn(&server, KEY)).await;
    // Nothing is sent from a crashed process: the envelope waits in its database.
    let envelope = database_bytes(dir.path());
    assert_sent_all(&envelope);
    assert!(contains(&envelope, b"event.minidump"));
    assert_eq!(stored(&server).await, 0);
    start_again("breakpad", dir.path(), &dsn(&server, KEY)).await;
    let id = server.wait_for_upload(&developer, PRODUCT).await;
    assert_reported(&server, &developer, &id).await;
    assert_eq!(stored(&server).await, 1);
    server.stop().await;
}

/// The example's `attachment` argument attaches `./CMakeCache.txt` to its crash:
/// the Crashpad handler uploads it as a file part, the Breakpad build as an
/// envelope attachment item. A deployment whose `[[scrub.text_attachments]]`
/// lists it keeps it scrubbed (the planted e-mail address masked) with the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_a_rule_lists_is_kept_scrubbed_from_both_backends() {
    const EMAIL: &str = "native.person@example.org";
    let (server, developer) = server_keeping(&[TextAttachmentRule {
        field: "CMakeCache.txt".to_owned(),
        max_bytes: 4096,
    }])
    .await;
    for backend in ["crashpad", "breakpad"] {
        let dir = tempfile::tempdir().unwrap();
        let log = format!("# {backend} cache\nCMAKE_BUILD_TYPE:STRING=Debug\nmaintainer {EMAIL}\n");
        std::fs::write(dir.path().join("CMakeCache.txt"), &log).unwrap();
        crash_with(
            backend,
            dir.path(),
            &dsn(&server, KEY),
            &["attachment", "crash"],
        )
        .await;
        if backend == "breakpad" {
            start_again(backend, dir.path(), &dsn(&server, KEY)).await;
        }
        let deadline = Instant::now() + RUN_PATIENCE;
        let report = loop {
            let (_, list) = server
                .get_json(&format!("/api/v1/reports?product={PRODUCT}"), &developer)
                .await;
            let mut found = None;
            for id in mayday_tests::api::texts(&list["reports"], "id") {
                let report = server.wait_processed(&developer, &id).await;
                if report.to_string().contains(&format!("# {backend} cache")) {
                    found = Some(report);
                }
            }
            if let Some(report) = found {
                break report;
            }
            assert!(
                Instant::now() < deadline,
                "{backend}: no report with its attachment"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let kept = report["text_attachments"].as_array().expect("kept");
        assert_eq!(kept.len(), 1, "{backend}: {kept:?}");
        assert_eq!(kept[0]["field"], "CMakeCache.txt");
        let text = kept[0]["text"].as_str().unwrap();
        assert!(text.contains("CMAKE_BUILD_TYPE:STRING=Debug"), "{text}");
        assert!(!text.contains(EMAIL), "{backend}: {text}");
        server
            .assert_blobs_free_of(report["id"].as_str().unwrap(), &[EMAIL])
            .await;
    }
    server.stop().await;
}
