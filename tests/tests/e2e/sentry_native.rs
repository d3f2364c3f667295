//! The real sentry-native: its own example program (`sentry_example`, from
//! sentry-native 0.4.9 as crates.io's `sentry-contrib-native-sys` ships it, built
//! with the Crashpad backend by `scripts/install-test-deps`) crashes with a DSN
//! pointing at Mayday. Its `crashpad_handler` dumps the crash and uploads it to
//! `/api/<project>/minidump/` gzipped, with the event (release, tags, user,
//! contexts, extra) as the MessagePack file `__sentry-event` and the breadcrumbs
//! as two more files beside the dump.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use mayday_server::config::SentryProject;
use mayday_server::index::Role;
use mayday_tests::api::{metric, metrics};
use mayday_tests::command::{text, upload_with_system_libc};
use mayday_tests::fixtures::sentry_native_example;
use mayday_tests::report::{crash_reason, functions};
use mayday_tests::scan::{contains, walk};
use mayday_tests::server::TestServer;

/// The Sentry project of the DSN, and its one accepted public key.
const PROJECT: &str = "42";
const KEY: &str = "5d1c3e3f9b8a4c7d8e6f0a1b2c3d4e5f";
/// The product the deployment files project 42's reports under: the example's
/// release, `test-example-release`, names none.
const PRODUCT: &str = "sentry-example";
/// How long the program (with its handler dumping it) may take to die.
const CRASH_PATIENCE: Duration = Duration::from_secs(60);
/// `SIGSEGV` on Linux.
const SIGSEGV: i32 = 11;
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

/// Runs `sentry_example crash` in `dir` (its database, `.sentry-native`, goes
/// there) with the DSN `dsn`, and waits until it has died of `SIGSEGV`.
async fn crash(dir: &Path, dsn: &str) -> Output {
    let mut command = tokio::process::Command::new(sentry_native_example());
    command
        .arg("crash")
        .current_dir(dir)
        .env("SENTRY_DSN", dsn)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let crashed = tokio::time::timeout(CRASH_PATIENCE, command.output())
        .await
        .expect("the example and its handler end in time")
        .unwrap();
    assert_eq!(
        crashed.status.signal(),
        Some(SIGSEGV),
        "dies of SIGSEGV: {:?} {}",
        crashed.status,
        text(&crashed)
    );
    crashed
}

/// The bytes of every file in the example's database below `dir` (its run
/// directory keeps the event and breadcrumb files it handed the handler).
fn database_bytes(dir: &Path) -> Vec<u8> {
    walk(&dir.join(".sentry-native"))
        .iter()
        .flat_map(|file| std::fs::read(file).unwrap_or_default())
        .collect()
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
    let server = TestServer::with_config(|config| {
        config.sentry.projects = vec![SentryProject {
            id: PROJECT.to_owned(),
            keys: vec![KEY.to_owned()],
            product: Some(PRODUCT.to_owned()),
        }];
    })
    .await;
    let developer = server.token(Role::Developer).await;
    let uploader = server.token(Role::Uploader).await;
    // The example's symbols (it is built with debug information) and the C
    // library's, as its developer would upload them.
    upload_with_system_libc(&sentry_native_example(), &server.url, &uploader).await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();

    let sent = tempfile::tempdir().unwrap();
    crash(
        sent.path(),
        &format!("http://{KEY}@127.0.0.1:{port}/{PROJECT}"),
    )
    .await;
    let id = server.wait_for_upload(&developer, PRODUCT).await;
    let report = server.wait_processed(&developer, &id).await;
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
    // What the example sent, so the checks below can fail: its event file holds
    // the user, transaction, context and extra, its breadcrumb files the rest.
    let sent_bytes = database_bytes(sent.path());
    for needle in NOT_KEPT {
        assert!(
            contains(&sent_bytes, needle.as_bytes()),
            "{needle} in what the example handed its handler"
        );
    }
    let text = report.to_string();
    for needle in NOT_KEPT.iter().chain([&KEY]) {
        assert!(
            !text.contains(needle),
            "{needle} in the API's report: {text}"
        );
    }
    let in_blobs: Vec<&str> = NOT_KEPT.iter().copied().chain([KEY]).collect();
    server.assert_blobs_free_of(&id, &in_blobs).await;

    // A key project 42 does not list: the handler's upload is refused before its
    // body is read, and nothing is stored.
    let refused = || async {
        metric(
            &metrics(&server.url).await,
            "mayday_uploads_rejected_total{reason=\"dsn_key_unknown\"}",
        )
    };
    assert_eq!(refused().await, None);
    let other = tempfile::tempdir().unwrap();
    let wrong = "00000000000000000000000000000000";
    crash(
        other.path(),
        &format!("http://{wrong}@127.0.0.1:{port}/{PROJECT}"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while refused().await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the handler's upload did not come"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(refused().await, Some(1.0));
    let ids = server
        .state
        .index()
        .report_ids_received_before(i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1, "only the listed key's report: {ids:?}");
    server.stop().await;
}
