//! Two real `mayday-server` processes sharing one PostgreSQL database and one S3
//! bucket, as a deployment scales out: they start (and migrate) at once, take
//! uploads side by side, and split the processing between their workers without
//! ever processing a report twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mayday_server::index::{Index, Role};
use mayday_server::storage::Storage;
use mayday_tests::api::{self, metric};
use mayday_tests::server::{ServerProcess, add_symbols};
use mayday_tests::services::{Postgres, S3Server};
use mayday_tests::testdata;
use reqwest::StatusCode;

/// Small test data dumps with symbols: processing them is quick even in a debug
/// build, and their stacks are symbolicated from the bucket.
const CASES: [&str; 4] = [
    "breakpad-win-x86-minidump2/minidump2.dmp",
    "symbolic-linux-x64-crash/linux-mini.dmp",
    "breakpad-linux-x64-inline/linux_inline.dmp",
    "symbolic-win-x86-crash/windows-mini.dmp",
];
/// Uploads in the burst, half to each server.
const UPLOADS: usize = 60;

/// Starts both servers at once on the shared services: both migrate the same
/// empty database at the same time.
async fn start_both(
    env: &[(String, String)],
) -> (ServerProcess, ServerProcess, Vec<tempfile::TempDir>) {
    let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let start = |dir: std::path::PathBuf| {
        let env = env.to_vec();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            ServerProcess::start(&dir, &env)
        })
    };
    let first = start(dirs[0].path().to_owned());
    let second = start(dirs[1].path().to_owned());
    (first.await.unwrap(), second.await.unwrap(), dirs)
}

/// A burst of concurrent uploads split over two server processes on PostgreSQL +
/// S3, while both process: the jobs spread over both, every report is processed
/// exactly once (one run per job, one "processed" per report in the two logs
/// together, no job error), and every report reads the same through either server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgres_and_s3_split_the_jobs_and_process_each_once() {
    let s3 = S3Server::start().await;
    let postgres = Postgres::shared();
    let database = postgres.database("two_servers");
    let bucket = Storage::open(&s3.store_url(), &s3.store_options()).unwrap();
    let mut dumps = Vec::new();
    for case in CASES {
        let case = testdata::case(case);
        add_symbols(&bucket, &case.symbols().expect("a case with symbols")).await;
        dumps.push(case.bytes());
    }

    let mut env = s3.env();
    for (name, value) in [
        ("MAYDAY_DATABASE_URL", database.clone()),
        // Servers sharing an index share the master key that wraps its data keys.
        (
            "MAYDAY_MASTER_KEY",
            mayday_server::crypto::MasterKey::generate().to_hex(),
        ),
        ("MAYDAY_WORKERS", "2".to_owned()),
        // One sender (this test) sends the whole burst.
        ("MAYDAY_RATE_LIMIT_ENABLED", "false".to_owned()),
    ] {
        env.push((name.to_owned(), value));
    }
    let (first, second, _dirs) = start_both(&env).await;
    let urls = [first.url.clone(), second.url.clone()];
    let index = Index::connect(&database).await.unwrap();
    let (_, token) = mayday_server::triage::auth::create_token(&index, Role::Developer, "test")
        .await
        .unwrap();

    // The burst: all at once, alternately to each server.
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..UPLOADS {
        let (url, dump) = (urls[i % 2].clone(), dumps[i % dumps.len()].clone());
        uploads.spawn(async move {
            (
                i % 2,
                api::submit(&url, &dump, &[("prod", "Cluster")]).await.id,
            )
        });
    }
    let sent = uploads.join_all().await;

    // Every report is processed, and reads the same through either server.
    for (to, id) in &sent {
        let report = api::wait_processed(&urls[1 - to], &token, id).await;
        assert_eq!(report["state"], "processed", "{report}");
        assert_ne!(report["signature"], "", "{report}");
        let (status, through_sender) =
            api::get_json(&urls[*to], &format!("/api/v1/reports/{id}"), &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            through_sender, report,
            "{id} reads differently through each server"
        );
        let (status, minidump) = api::get_bytes(
            &urls[1 - to],
            &format!("/api/v1/reports/{id}/minidump"),
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&minidump[..4], b"MDMP");
    }

    // The queue is empty, so no job can run any more; each server counts a job
    // run when it is over, so wait for the last counts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let metrics = [api::metrics(&urls[0]).await, api::metrics(&urls[1]).await];
        let runs: f64 = metrics
            .iter()
            .map(|m| metric(m, "mayday_jobs_run_total").unwrap())
            .sum();
        let depth = metric(&metrics[0], "mayday_queue_depth").unwrap();
        if depth == 0.0 && runs >= UPLOADS as f64 {
            break metrics;
        }
        assert!(Instant::now() < deadline, "jobs run {runs}, queue {depth}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let value = |text: &str, name: &str| metric(text, name).unwrap();
    for text in &metrics {
        assert_eq!(
            value(text, "mayday_reports_ingested_total"),
            (UPLOADS / 2) as f64
        );
        assert_eq!(value(text, "mayday_job_errors_total"), 0.0, "{text}");
        assert!(
            value(text, "mayday_jobs_run_total") >= 1.0,
            "a server processed nothing:\n{text}"
        );
    }
    let runs: Vec<f64> = metrics
        .iter()
        .map(|text| value(text, "mayday_jobs_run_total"))
        .collect();
    assert_eq!(
        runs.iter().sum::<f64>(),
        UPLOADS as f64,
        "one job run per report: {runs:?}"
    );

    // What the database holds, through psql.
    let sql = |query: &str| postgres.psql(&database, query);
    assert_eq!(sql("SELECT count(*) FROM jobs"), "0");
    assert_eq!(
        sql("SELECT count(*) FROM reports WHERE state = 'processed'"),
        UPLOADS.to_string()
    );
    assert_eq!(
        sql("SELECT sum(report_count) FROM issues"),
        UPLOADS.to_string()
    );

    // Each report was processed once, by one of the two, as their logs say.
    let logs = [first.log.clone(), second.log.clone()];
    first.kill();
    second.kill();
    let mut processed = BTreeMap::<String, Vec<usize>>::new();
    for (server, log) in logs.iter().enumerate() {
        for line in log.lock().unwrap().iter() {
            let json: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if json["fields"]["message"] == "report processed" {
                let id = json["fields"]["report"].as_str().unwrap().to_owned();
                processed.entry(id).or_default().push(server);
            }
        }
    }
    for (_, id) in &sent {
        assert_eq!(
            processed.get(id).map(Vec::len),
            Some(1),
            "{id}: {processed:?}"
        );
    }
    assert_eq!(processed.len(), UPLOADS);
    index.close().await;
}
