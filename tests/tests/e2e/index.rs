//! The index, on SQLite and on a real PostgreSQL: the same scenarios, both
//! backends; and the scale-out mode, several servers sharing S3 and PostgreSQL.

use std::time::Duration;

use mayday_server::config::{WebhookConfig, WebhookEvent};
use mayday_server::crypto::WrappedKey;
use mayday_server::index::{
    Alerts, Backend, ClaimNext, CrashFacts, DeliveryEnd, Index, IndexError, Intake, IssueFilter,
    IssueSort, IssueStatus, Job, NewReport, OutboxCounts, ProcessedOutcome, Regrouped, Regrouping,
    ReportConditions, ReportFilter, ReportState, Role,
};
use mayday_server::report_id::ReportId;
use mayday_tests::api::submit;
use mayday_tests::fixtures::testdata;
use mayday_tests::server::TestServer;
use mayday_tests::services::{Postgres, S3Server};

/// The report id a short name like `bp-a` stands for in these scenarios.
fn id(short: &str) -> ReportId {
    format!(
        "bp-00000000-0000-4000-8000-{:0>12}",
        short.trim_start_matches("bp-")
    )
    .parse()
    .unwrap()
}

fn new_report(short: &str, at: i64) -> NewReport {
    let id = id(short);
    NewReport {
        id,
        received_at: at,
        product: Some("App".to_owned()),
        version: Some("1.0".to_owned()),
        deletion_token_hash: "ab".repeat(32),
        raw_key: format!("raw/2026-11-22/{id}.dmp"),
        meta_key: format!("raw/2026-11-22/{id}.json"),
        data_key: WrappedKey {
            master_key_id: "test".to_owned(),
            wrapped: "00".repeat(60),
        },
        stack_key: Some(WrappedKey {
            master_key_id: "test".to_owned(),
            wrapped: "11".repeat(60),
        }),
    }
}

fn outcome(signature: &str, missing: &[(&str, &str)]) -> ProcessedOutcome {
    at_site(signature, &format!("site-{signature}"), missing)
}

/// The outcome of a report of crash site `site` whose signature is `signature`.
fn at_site(signature: &str, site: &str, missing: &[(&str, &str)]) -> ProcessedOutcome {
    ProcessedOutcome {
        signature_hash: format!("hash-of-{signature}"),
        signature: signature.to_owned(),
        title: format!("SIGSEGV in {signature}"),
        facts: CrashFacts {
            product: None,
            version: None,
            os: Some("Linux".to_owned()),
            os_version: Some("6.1".to_owned()),
            cpu_arch: Some("amd64".to_owned()),
            crash_reason: Some("SIGSEGV".to_owned()),
            crash_address: Some("0x0".to_owned()),
            crash_site: Some(site.to_owned()),
            crash_module: Some("app".to_owned()),
        },
        missing_symbols: missing
            .iter()
            .map(|(f, i)| (f.to_string(), i.to_string()))
            .collect(),
        annotation_tags: vec![format!("tag-of-{signature}")],
        sample_stack: Some(format!(" 0  app!{signature}\n")),
        drop_stack_key: false,
    }
}

/// Claims the next job for `worker` at `now`, with a lease of a minute.
async fn claim(index: &Index, worker: &str, now: i64) -> Option<Job> {
    let lease = Duration::from_secs(60);
    index.claim_job(worker, now, lease).await.unwrap()
}

/// Finishes claimed job `job` as processed into `outcome`: its issue, or `None`
/// when the report is gone.
async fn finish(index: &Index, job: &Job, outcome: &ProcessedOutcome, now: i64) -> Option<i64> {
    index.finish_processed(job, outcome, now).await.unwrap()
}

/// One scenario, run on each backend: queue, claim, lease expiry, grouping,
/// moving a reprocessed report to another issue, filters, tokens, audit.
async fn index_scenario(index: Index) {
    let t0 = 1_700_000_000_000i64;
    for (i, id) in ["bp-a", "bp-b", "bp-c"].iter().enumerate() {
        index
            .insert_report_with_job(&new_report(id, t0 + i as i64))
            .await
            .unwrap();
    }
    assert_eq!(index.queue_depth().await.unwrap(), 3);
    // A duplicate id is refused and leaves nothing half-written.
    assert!(
        index
            .insert_report_with_job(&new_report("bp-a", t0))
            .await
            .is_err()
    );
    assert_eq!(index.queue_depth().await.unwrap(), 3);

    // Oldest first; each job to one worker.
    let a = claim(&index, "w1", t0 + 10).await.unwrap();
    assert_eq!((a.report_id, a.attempts), (id("bp-a"), 1));
    let b = claim(&index, "w2", t0 + 10).await.unwrap();
    assert_eq!(b.report_id, id("bp-b"));
    let c = claim(&index, "w1", t0 + 10).await.unwrap();
    assert_eq!(c.report_id, id("bp-c"));
    assert!(claim(&index, "w3", t0 + 20).await.is_none());
    // A and C finish; w2 dies holding B.
    let issue_ab = finish(
        &index,
        &a,
        &outcome("foo", &[("libx.so", "AB12")]),
        t0 + 100,
    )
    .await
    .unwrap();
    let issue_c = finish(&index, &c, &outcome("bar", &[]), t0 + 100)
        .await
        .unwrap();
    assert_ne!(issue_ab, issue_c);
    assert!(claim(&index, "w3", t0 + 30_000).await.is_none());
    // After the lease, another worker gets B again.
    let again = claim(&index, "w3", t0 + 10 + 61_000).await.unwrap();
    assert_eq!((again.report_id, again.attempts), (id("bp-b"), 2));
    // w2 was not dead after all, only slow: its claim is over, it records nothing.
    let stale = index
        .finish_processed(&b, &outcome("stale", &[]), t0 + 100)
        .await
        .expect_err("a claim whose lease ran out finishes nothing");
    assert!(
        matches!(stale, mayday_server::index::IndexError::ClaimLost(_)),
        "{stale}"
    );
    assert!(matches!(
        index.finish_failed(&b, "stale", t0 + 100).await,
        Err(mayday_server::index::IndexError::ClaimLost(_))
    ));
    assert!(matches!(
        index.retry_job(&b, t0 + 100, "stale").await,
        Err(mayday_server::index::IndexError::ClaimLost(_))
    ));
    // A and B crash the same way, C differently.
    let issue_b = finish(&index, &again, &outcome("foo", &[]), t0 + 100)
        .await
        .unwrap();
    assert_eq!(issue_ab, issue_b);
    assert_eq!(index.queue_depth().await.unwrap(), 0);
    let issue = index.issue(issue_ab).await.unwrap().unwrap();
    assert_eq!(issue.count, 2);
    assert_eq!(issue.first_seen, t0);
    assert_eq!(issue.last_seen, t0 + 1);
    assert_eq!(issue.status, IssueStatus::Open);
    assert_eq!(
        index.issue_sample_stack(issue_ab).await.unwrap().as_deref(),
        Some(" 0  app!foo\n")
    );
    assert_eq!(
        index
            .reports_missing_symbols("libx.so", "AB12")
            .await
            .unwrap(),
        vec![id("bp-a")]
    );

    // Processing the same job twice (a worker died after its commit) does not
    // count the report twice.
    index.enqueue_job(&id("bp-a"), t0 + 200).await.unwrap();
    let redo = claim(&index, "w1", t0 + 200).await.unwrap();
    index
        .finish_processed(&redo, &outcome("foo", &[]), t0 + 201)
        .await
        .unwrap();
    assert_eq!(index.issue(issue_ab).await.unwrap().unwrap().count, 2);
    assert!(
        index
            .reports_missing_symbols("libx.so", "AB12")
            .await
            .unwrap()
            .is_empty()
    );

    // Each processed report taught the index its crash site's issue.
    let site = |key: &'static str| {
        let index = index.clone();
        async move { index.crash_site(key, 10).await.unwrap() }
    };
    let known = site("site-foo").await.expect("learned from A and B");
    assert_eq!((known.issue_id, known.stored_reports), (issue_ab, 2));
    assert_eq!(site("site-bar").await.unwrap().issue_id, issue_c);
    assert!(site("site-unknown").await.is_none());
    assert_eq!(
        index
            .crash_site("site-foo", 1)
            .await
            .unwrap()
            .unwrap()
            .stored_reports,
        1,
        "stored reports are counted up to what is asked"
    );

    // Reprocessing C with symbols gives it A's signature: it moves, its crash
    // site with it, and its old, now empty issue goes away.
    index.enqueue_job(&id("bp-c"), t0 + 300).await.unwrap();
    let redo = claim(&index, "w1", t0 + 300).await.unwrap();
    let moved = finish(&index, &redo, &at_site("foo", "site-bar", &[]), t0 + 301)
        .await
        .unwrap();
    assert_eq!(moved, issue_ab);
    assert!(index.issue(issue_c).await.unwrap().is_none());
    assert_eq!(index.issue(issue_ab).await.unwrap().unwrap().count, 3);
    assert_eq!(site("site-bar").await.unwrap().issue_id, issue_ab);

    // A crash counted from a summary: in the issue's total and its day, apart
    // from the reports; the day's report count followed C's move.
    index
        .count_occurrence(issue_ab, Some("App"), Some("1.0"), t0 + 302)
        .await
        .unwrap();
    let issue = index.issue(issue_ab).await.unwrap().unwrap();
    assert_eq!((issue.count, issue.counted_without_dump), (3, 1));
    assert_eq!(issue.last_seen, t0 + 302);
    let day = mayday_server::index::day_of(t0);
    let days = index.issue_daily(issue_ab, day).await.unwrap();
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!(
        (
            days[0].day,
            days[0].product.as_str(),
            days[0].version.as_str()
        ),
        (day, "App", "1.0")
    );
    assert_eq!((days[0].reports, days[0].counted), (3, 1));
    // The same day summed per issue for a list (one query for many issues), and
    // per product.
    let listed = index
        .issues_daily(&[issue_ab, issue_ab + 1000], day)
        .await
        .unwrap();
    let sums: Vec<_> = listed
        .iter()
        .map(|d| (d.issue_id, d.day, d.reports, d.counted))
        .collect();
    assert_eq!(sums, [(issue_ab, day, 3, 1)]);
    assert!(
        index
            .issues_daily(&[issue_ab], day + 1)
            .await
            .unwrap()
            .is_empty()
    );
    for product in [Some("App"), None] {
        let products = index.product_daily(product, day).await.unwrap();
        let sums: Vec<_> = products
            .iter()
            .map(|d| (d.day, d.product.as_str(), d.reports, d.counted))
            .collect();
        assert_eq!(sums, [(day, "App", 3, 1)], "{product:?}");
    }
    assert!(
        index
            .product_daily(Some("Other"), day)
            .await
            .unwrap()
            .is_empty()
    );

    // A report deleted while its job ran is not resurrected.
    index
        .insert_report_with_job(&new_report("bp-d", t0 + 400))
        .await
        .unwrap();
    let d = claim(&index, "w1", t0 + 400).await.unwrap();
    assert!(index.delete_report(&id("bp-d")).await.unwrap());
    assert!(
        index
            .finish_processed(&d, &outcome("baz", &[]), t0 + 401)
            .await
            .unwrap()
            .is_none()
    );
    assert!(index.report(&id("bp-d")).await.unwrap().is_none());

    // Filters and sorting.
    assert_eq!(issues_matching(&index, IssueFilter::default()).await, 1);
    let by_product = IssueFilter {
        reports: ReportConditions {
            product: Some("App".into()),
            version: Some("1.0".into()),
            os: Some("Linux".into()),
            ..Default::default()
        },
        status: Some(IssueStatus::Open),
        sort: IssueSort::LastSeen,
        ..Default::default()
    };
    assert_eq!(issues_matching(&index, by_product).await, 1);

    // Report search: each condition narrows on its indexed column.
    let reports_matching = |conditions: ReportConditions| {
        let index = index.clone();
        async move {
            let filter = ReportFilter {
                conditions,
                limit: 10,
                offset: 0,
            };
            index.search_reports(&filter).await.unwrap().len()
        }
    };
    let version_key = |v: &str| mayday_server::version::sort_key(v);
    for (conditions, want) in [
        (ReportConditions::default(), 3),
        (
            ReportConditions {
                product: Some("App".into()),
                min_version_key: version_key("0.9"),
                ..Default::default()
            },
            3,
        ),
        (
            ReportConditions {
                min_version_key: version_key("1.0.1"),
                ..Default::default()
            },
            0,
        ),
        (
            ReportConditions {
                since: Some(t0 + 1),
                until: Some(t0 + 2),
                ..Default::default()
            },
            1,
        ),
        (
            ReportConditions {
                module: Some("app".into()),
                os_version: Some("6.1".into()),
                crash_reason: Some("SIGSEGV".into()),
                annotation_tag: Some("tag-of-foo".into()),
                ..Default::default()
            },
            3,
        ),
        (
            ReportConditions {
                annotation_tag: Some("tag-of-bar".into()),
                ..Default::default()
            },
            0,
        ),
    ] {
        assert_eq!(
            reports_matching(conditions.clone()).await,
            want,
            "{conditions:?}"
        );
    }
    let search = |text: &str| IssueFilter {
        search: Some(text.into()),
        ..Default::default()
    };
    assert_eq!(issues_matching(&index, search("FO")).await, 1);
    assert_eq!(
        issues_matching(&index, search("%")).await,
        0,
        "LIKE wildcards in a search are literal"
    );
    let breakdown = index.issue_breakdown(issue_ab).await.unwrap();
    assert_eq!(breakdown.by_version, vec![("1.0".to_owned(), 3)]);
    assert_eq!(breakdown.by_os, vec![("Linux".to_owned(), 3)]);

    // Deleting a report (a user's request, resolve, retention) keeps the issue's
    // history: its day's counts and its crash sites.
    assert!(index.delete_report(&id("bp-a")).await.unwrap());
    let days = index.issue_daily(issue_ab, day).await.unwrap();
    assert_eq!((days[0].reports, days[0].counted), (3, 1));
    let known = site("site-foo").await.unwrap();
    assert_eq!((known.issue_id, known.stored_reports), (issue_ab, 2));
    assert!(!known.ambiguous && !site("site-bar").await.unwrap().ambiguous);

    // A report of the same crash site grouped into another issue (one crashing
    // instruction reached from other code) makes the key ambiguous.
    index
        .insert_report_with_job(&new_report("bp-e", t0 + 600))
        .await
        .unwrap();
    let e = claim(&index, "w1", t0 + 600).await.unwrap();
    let issue_e = finish(&index, &e, &at_site("baz", "site-foo", &[]), t0 + 601)
        .await
        .unwrap();
    assert_ne!(issue_e, issue_ab);
    assert!(site("site-foo").await.unwrap().ambiguous);
    assert!(!site("site-bar").await.unwrap().ambiguous);

    // Tokens: stored hashed, looked up by hash, revocable.
    index
        .insert_token("tok_1", "hash-1", Role::Support, "desk", t0)
        .await
        .unwrap();
    assert_eq!(
        index.token_by_hash("hash-1").await.unwrap().unwrap().role,
        Role::Support
    );
    assert!(index.revoke_token("tok_1", t0 + 1).await.unwrap());
    assert!(index.token_by_hash("hash-1").await.unwrap().is_none());

    index
        .audit("tok_1", "report.read", "bp-a", None)
        .await
        .unwrap();
    let audit = index.audit_entries(10, 0).await.unwrap();
    assert_eq!(audit[0].action, "report.read");
}

/// How many issues `filter` lists (a page of 10).
async fn issues_matching(index: &Index, filter: IssueFilter) -> usize {
    let filter = IssueFilter {
        limit: 10,
        ..filter
    };
    index.list_issues(&filter).await.unwrap().len()
}

/// The URL of a new SQLite index in `dir`.
fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("index.sqlite").display())
}

/// The tests `$sqlite` and `$postgres`: `$scenario` run on a new SQLite index,
/// and on a new database `$database` of the shared PostgreSQL.
macro_rules! on_each_backend {
    ($scenario:ident, $sqlite:ident, $postgres:ident, $database:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $scenario(Index::connect(&sqlite_url(dir.path())).await.unwrap()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let url = Postgres::shared().database($database);
            $scenario(Index::connect(&url).await.unwrap()).await;
        }
    };
}

/// Reports recorded together (the intake's group commit: each table's rows in
/// one statement from a JSON array) come back as they went in — every field,
/// NULLs, quotes and non-ASCII text, with or without a stack key — queued in
/// the order received; a batch with a duplicate id records none of its
/// reports.
async fn reports_recorded_together_scenario(index: Index) {
    let t0 = 1_700_000_000_000i64;
    let mut reports: Vec<NewReport> = (0..4)
        .map(|i| new_report(&format!("bp-{}", 4000 + i), t0 + 10 - i))
        .collect();
    reports[1].product = None;
    reports[1].version = None;
    reports[1].stack_key = None;
    reports[2].product = Some("Ap'p \"ü\" ; DROP TABLE reports; --".to_owned());
    reports[2].version = Some("1.10.0-beta".to_owned());
    reports[3].data_key.wrapped = "22".repeat(60);
    index.insert_reports(&reports).await.unwrap();
    assert_eq!(index.queue_depth().await.unwrap(), 4);
    for report in &reports {
        let got = index.job_report(&report.id).await.unwrap().unwrap();
        let row = got.row;
        assert_eq!(row.received_at, report.received_at);
        assert_eq!(row.facts.product, report.product);
        assert_eq!(row.facts.version, report.version);
        assert_eq!(row.state, ReportState::Queued);
        assert_eq!(row.raw_key, report.raw_key);
        assert_eq!(row.meta_key, report.meta_key);
        assert_eq!(row.deletion_token_hash, report.deletion_token_hash);
        assert_eq!(got.data_key.as_ref(), Some(&report.data_key));
        assert_eq!(got.stack_key, report.stack_key);
    }
    // Oldest received first, whatever the order in the batch.
    for report in reports.iter().rev() {
        let job = claim(&index, "w", t0 + 100).await.unwrap();
        assert_eq!(job.report_id, report.id);
    }

    // One id already recorded: none of the batch's reports is.
    let late = [
        new_report("bp-4100", t0 + 20),
        new_report("bp-4000", t0 + 21),
    ];
    assert!(index.insert_reports(&late).await.is_err());
    assert!(index.report(&late[0].id).await.unwrap().is_none());
    assert!(index.job_report(&late[0].id).await.unwrap().is_none());
    assert_eq!(index.queue_depth().await.unwrap(), 4);
}

on_each_backend!(
    reports_recorded_together_scenario,
    reports_recorded_together_come_back_as_they_went_in_on_sqlite,
    reports_recorded_together_come_back_as_they_went_in_on_postgresql,
    "reports_recorded_together"
);

/// Workers whose every finish (processed, failed, retried) claims their next
/// job in its own transaction, four at once: every job is claimed once, on its
/// first attempt, and finished once; every report counted once.
async fn finishes_that_claim_scenario(index: Index) {
    let t0 = 1_700_000_000_000i64;
    let reports = 40i64;
    for i in 0..reports {
        let report = new_report(&format!("bp-{}", 3000 + i), t0 + i);
        index.insert_report_with_job(&report).await.unwrap();
    }
    let lease = Duration::from_secs(60);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let index = index.clone();
            tokio::spawn(async move {
                let worker = format!("w{w}");
                let next = Some(ClaimNext {
                    worker: &worker,
                    lease,
                });
                let mut ran = Vec::new();
                let mut job = index.claim_job(&worker, t0 + 100, lease).await?;
                while let Some(current) = job {
                    let now = t0 + 200 + ran.len() as i64;
                    let text = current.report_id.to_string();
                    let n: u32 = text.rsplit('-').next().unwrap().parse().unwrap();
                    job = if current.attempts == 1 && n.is_multiple_of(10) {
                        // Retried, due at once: claimed again, on a second attempt.
                        index
                            .retry_job_and_claim(&current, now, "transient", now, next)
                            .await?
                    } else if n.is_multiple_of(7) {
                        index
                            .finish_failed_and_claim(&current, "bad dump", now, next)
                            .await?
                    } else {
                        let outcome = outcome(&format!("sig{}", n % 4), &[]);
                        let finished =
                            index.finish_processed_and_claim(&current, &outcome, now, next);
                        let (issue, claimed) = finished.await?;
                        assert!(issue.is_some());
                        claimed
                    };
                    ran.push(current);
                }
                Ok::<_, IndexError>(ran)
            })
        })
        .collect();
    let mut ran = Vec::new();
    for worker in workers {
        ran.extend(worker.await.unwrap().expect("no index call fails"));
    }
    let mut claims: Vec<(String, i64)> = ran
        .iter()
        .map(|job| (job.report_id.to_string(), job.attempts))
        .collect();
    claims.sort();
    let mut unique = claims.clone();
    unique.dedup();
    assert_eq!(unique, claims, "no claim made twice");
    // Each report once, and again for the four retried (3000, 3010, 3020, 3030).
    assert_eq!(claims.len(), reports as usize + 4);
    assert_eq!(
        claims.iter().filter(|(_, attempts)| *attempts == 2).count(),
        4
    );
    assert_eq!(index.queue_depth().await.unwrap(), 0);
    let mut failed = 0;
    for i in 0..reports {
        let report = index
            .report(&id(&format!("bp-{}", 3000 + i)))
            .await
            .unwrap()
            .unwrap();
        failed += (report.state == mayday_server::index::ReportState::Failed) as i64;
    }
    // 3003, 3010 (on its second attempt), 3017, 3024, 3031, 3038.
    let expected_failed = (0..reports).filter(|i| (3000 + i) % 7 == 0).count() as i64;
    assert_eq!(failed, expected_failed);
    assert_eq!(reports_in_issues(&index).await, reports - expected_failed);

    // A job claimed by a finish for a worker that is stopping is given back:
    // claimable at once, and the given-back claim can no longer finish it. It
    // is counted as given back, not as a try (`max_attempts` bounds tries).
    let late = new_report("bp-3999", t0 + 500);
    index.insert_report_with_job(&late).await.unwrap();
    let given_back = claim(&index, "stopping", t0 + 600).await.unwrap();
    index.release_job(&given_back).await.unwrap();
    let lost = index.release_job(&given_back).await;
    assert!(matches!(lost, Err(IndexError::ClaimLost(_))), "{lost:?}");
    let again = claim(&index, "w0", t0 + 601).await.unwrap();
    assert_eq!(
        (again.id, again.attempts, again.released, again.tries()),
        (given_back.id, 2, 1, 1)
    );
    let stale = index
        .finish_processed(&given_back, &outcome("sig0", &[]), t0 + 602)
        .await;
    assert!(matches!(stale, Err(IndexError::ClaimLost(_))), "{stale:?}");
    assert!(
        finish(&index, &again, &outcome("sig0", &[]), t0 + 603)
            .await
            .is_some()
    );
    assert_eq!(index.queue_depth().await.unwrap(), 0);
}

on_each_backend!(
    finishes_that_claim_scenario,
    finishes_that_claim_the_next_job_run_each_once_on_sqlite,
    finishes_that_claim_the_next_job_run_each_once_on_postgresql,
    "finishes_that_claim"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_works_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let index = Index::connect(&url).await.unwrap();
    assert_eq!(index.backend(), Backend::Sqlite);
    index_scenario(index.clone()).await;
    // Migrations are idempotent: connecting again keeps the data.
    index.close().await;
    let again = Index::connect(&url).await.unwrap();
    assert_eq!(again.issue_breakdown(1).await.unwrap().by_os.len(), 1);
}

/// The webhook outbox: finishing processed reports writes the events the
/// webhooks want (a new issue; a spike, once per issue and hour; nothing for
/// another product's webhook); a delivery is claimed once, retried when due,
/// claimed again when its lease ran out, and a stale claim cannot end it.
async fn outbox_scenario(index: Index) {
    use WebhookEvent::{NewIssue, Regression, Spike};
    let hook = |url: &str, product: Option<&str>, events: &[WebhookEvent]| WebhookConfig {
        url: url.to_owned(),
        secret: "k".to_owned(),
        product: product.map(str::to_owned),
        events: events.to_vec(),
        spike_per_hour: Some(1),
        max_attempts: 3,
    };
    let hooks = [
        hook("http://127.0.0.1:9/a", None, &[NewIssue, Regression, Spike]),
        hook("http://127.0.0.1:9/b", Some("Other"), &[NewIssue, Spike]),
    ];
    let index = index.with_alerts(Alerts::new(&hooks, "https://crashes.example/"));
    let lease = Duration::from_secs(60);
    // An hour starts at t0 - 800 s: everything below is in one hour.
    let t0 = 1_700_000_000_000i64;
    for (i, id) in ["bp-f1", "bp-f2", "bp-f3"].iter().enumerate() {
        index
            .insert_report_with_job(&new_report(id, t0 + i as i64))
            .await
            .unwrap();
    }
    let job = claim(&index, "w", t0 + 10).await.unwrap();
    let issue = finish(&index, &job, &outcome("outboxed", &[]), t0 + 10)
        .await
        .unwrap();
    let job = claim(&index, "w", t0 + 20).await.unwrap();
    finish(&index, &job, &outcome("outboxed", &[]), t0 + 20).await;

    let claim_at = |now: i64| {
        let index = index.clone();
        async move { index.claim_delivery(now, lease).await.unwrap() }
    };
    let created = claim_at(t0 + 100).await.unwrap();
    assert_eq!(created.event, NewIssue);
    assert_eq!(created.hook, hooks[0].id());
    assert_eq!(created.attempts, 1);
    let body: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(body["id"], created.event_id.as_str());
    assert_eq!(body["event"], "new_issue");
    assert_eq!(body["product"], "App");
    assert_eq!(body["issue"]["id"], issue);
    assert_eq!(
        body["issue"]["url"],
        format!("https://crashes.example/issues/{issue}")
    );
    let spike = claim_at(t0 + 100).await.unwrap();
    assert_eq!(spike.event, Spike);
    let body: serde_json::Value = serde_json::from_str(&spike.body).unwrap();
    assert_eq!(body["spike"]["reports_last_hour"], 2);
    // Both are claimed: nothing else is due.
    assert_eq!(claim_at(t0 + 100).await, None);

    // A failure: tried again when due, the same event and body.
    let retry = DeliveryEnd::Retry {
        at: t0 + 1000,
        error: "answered 500",
    };
    index.end_delivery(&created, retry, t0 + 100).await.unwrap();
    assert_eq!(claim_at(t0 + 999).await, None);
    let again = claim_at(t0 + 1000).await.unwrap();
    assert_eq!((again.id, again.attempts), (created.id, 2));
    assert_eq!(again.body, created.body);
    // The earlier claim is stale: it cannot end the delivery.
    let stale = index
        .end_delivery(&created, DeliveryEnd::Delivered, t0 + 1001)
        .await;
    assert!(matches!(stale, Err(IndexError::ClaimLost(_))), "{stale:?}");
    index
        .end_delivery(&again, DeliveryEnd::Delivered, t0 + 1001)
        .await
        .unwrap();

    // The spike's deliverer died: claimed again once its lease ran out.
    assert_eq!(claim_at(t0 + 100 + 59_000).await, None);
    let reclaimed = claim_at(t0 + 100 + 61_000).await.unwrap();
    assert_eq!((reclaimed.id, reclaimed.attempts), (spike.id, 2));
    let failed = DeliveryEnd::Failed {
        error: "answered 500",
    };
    index
        .end_delivery(&reclaimed, failed, t0 + 62_000)
        .await
        .unwrap();
    assert_eq!(
        index.outbox_counts().await.unwrap(),
        OutboxCounts {
            pending: 0,
            failed: 1
        }
    );

    // A third report in the same hour: the same spike, not written again.
    let job = claim(&index, "w", t0 + 63_000).await.unwrap();
    finish(&index, &job, &outcome("outboxed", &[]), t0 + 63_000).await;
    assert_eq!(index.next_delivery_due(lease).await.unwrap(), None);
    // Delivered and failed rows are removed when old enough.
    assert_eq!(index.prune_outbox(t0 + 2000, t0).await.unwrap(), 1);
    assert_eq!(index.prune_outbox(t0, t0 + 63_000).await.unwrap(), 1);
    assert_eq!(
        index.outbox_counts().await.unwrap(),
        OutboxCounts::default()
    );
}

on_each_backend!(
    outbox_scenario,
    the_webhook_outbox_works_on_sqlite,
    the_webhook_outbox_works_on_postgresql,
    "outbox_scenario"
);

/// Regrouping stored reports under new signatures (`signatures reprocess`), on
/// each backend: a move to a new issue, to an existing one (the emptied issue is
/// removed), into a resolved issue (dropped when received before the
/// resolution, regressing it when after), and what is skipped; counts and crash
/// sites follow.
async fn regroup_scenario(index: Index) {
    let t0 = 1_700_000_000_000i64;
    let regrouping = |signature: &str| Regrouping {
        signature_hash: format!("hash-of-{signature}"),
        signature: signature.to_owned(),
        title: format!("SIGSEGV in {signature}"),
    };
    let count = |issue: i64| {
        let index = index.clone();
        async move { index.issue(issue).await.unwrap().map(|i| i.count) }
    };
    // e1, e2 in issue_foo; e3 in issue_bar; e4 in issue_baz, which is then resolved.
    let mut issues = Vec::new();
    for (i, (short, signature)) in [
        ("bp-e1", "foo"),
        ("bp-e2", "foo"),
        ("bp-e3", "bar"),
        ("bp-e4", "baz"),
    ]
    .into_iter()
    .enumerate()
    {
        let at = t0 + i as i64;
        index
            .insert_report_with_job(&new_report(short, at))
            .await
            .unwrap();
        let job = claim(&index, "w", at + 10).await.unwrap();
        issues.push(
            finish(&index, &job, &outcome(signature, &[]), at + 10)
                .await
                .unwrap(),
        );
    }
    let [issue_foo, issue_foo_again, issue_bar, issue_baz] = issues[..] else {
        unreachable!()
    };
    assert_eq!(issue_foo, issue_foo_again);
    assert!(
        index
            .resolve_issue(issue_baz, None, None, t0 + 1_000)
            .await
            .unwrap()
    );

    // Every processed report with its issue, a page at a time.
    let first = index.grouped_reports_after(None, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!((first[0].id, first[0].issue_id), (id("bp-e1"), issue_foo));
    assert_eq!(first[0].signature, "foo");
    assert_eq!(first[0].signature_hash, "hash-of-foo");
    let rest = index
        .grouped_reports_after(Some(&first[2].id), 3)
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), [id("bp-e4")]);
    let issue = index
        .issue_of_signature("hash-of-bar")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issue.id, issue_bar);
    assert!(
        index
            .issue_of_signature("hash-of-qux")
            .await
            .unwrap()
            .is_none()
    );
    assert!(index.issue_resolution(issue_bar).await.unwrap().is_none());
    let resolution = index.issue_resolution(issue_baz).await.unwrap().unwrap();
    assert_eq!(resolution.at, Some(t0 + 1_000));

    // To a new issue: counted there and out of issue_foo; its crash site follows.
    let now = t0 + 2_000;
    let moved = index
        .regroup_report(&id("bp-e1"), issue_foo, &regrouping("qux"), now)
        .await
        .unwrap();
    let Regrouped::Moved {
        issue_id: issue_qux,
        created: true,
    } = moved
    else {
        panic!("{moved:?}")
    };
    assert_eq!(
        (count(issue_foo).await, count(issue_qux).await),
        (Some(1), Some(1))
    );
    let qux_issue = index.issue(issue_qux).await.unwrap().unwrap();
    assert_eq!(qux_issue.signature, "qux");
    assert_eq!(qux_issue.title, "SIGSEGV in qux");
    assert_eq!((qux_issue.first_seen, qux_issue.last_seen), (t0, t0));
    let row = index.report(&id("bp-e1")).await.unwrap().unwrap();
    assert_eq!(row.issue_id, Some(issue_qux));
    assert_eq!(row.facts.os.as_deref(), Some("Linux"), "other facts stay");
    let site = index.crash_site("site-foo", 10).await.unwrap().unwrap();
    assert!(
        !site.ambiguous,
        "a report that moves takes its crash site along"
    );

    // Planned from another issue, or already there: left as it is.
    let skipped = index
        .regroup_report(&id("bp-e2"), issue_bar, &regrouping("bar"), now)
        .await;
    assert_eq!(skipped.unwrap(), Regrouped::Skipped);
    let skipped = index
        .regroup_report(&id("bp-e2"), issue_foo, &regrouping("foo"), now)
        .await;
    assert_eq!(skipped.unwrap(), Regrouped::Skipped);
    let skipped = index
        .regroup_report(&id("bp-dead"), issue_foo, &regrouping("bar"), now)
        .await;
    assert_eq!(skipped.unwrap(), Regrouped::Skipped);
    assert_eq!(count(issue_foo).await, Some(1));

    // To an existing issue: issue_foo, emptied, is removed.
    let moved = index
        .regroup_report(&id("bp-e2"), issue_foo, &regrouping("bar"), now)
        .await
        .unwrap();
    assert_eq!(
        moved,
        Regrouped::Moved {
            issue_id: issue_bar,
            created: false
        }
    );
    assert_eq!(count(issue_bar).await, Some(2));
    assert_eq!(count(issue_foo).await, None, "the emptied issue is gone");

    // Into the resolved issue_baz: e3, received before the resolution, is dropped
    // (counted there, out of issue_bar, its rows and data key gone).
    let dropped = index
        .regroup_report(&id("bp-e3"), issue_bar, &regrouping("baz"), now)
        .await
        .unwrap();
    assert_eq!(dropped, Regrouped::Dropped);
    assert!(index.report(&id("bp-e3")).await.unwrap().is_none());
    assert!(index.report_key(&id("bp-e3")).await.unwrap().is_none());
    assert_eq!(
        (count(issue_bar).await, count(issue_baz).await),
        (Some(1), Some(2))
    );
    assert_eq!(index.issue_dropped_count(issue_baz).await.unwrap(), Some(1));
    let baz_issue = index.issue(issue_baz).await.unwrap().unwrap();
    assert_eq!(baz_issue.status, IssueStatus::Resolved);

    // One received after the resolution regresses it.
    index
        .insert_report_with_job(&new_report("bp-e5", t0 + 3_000))
        .await
        .unwrap();
    let job = claim(&index, "w", t0 + 3_010).await.unwrap();
    assert_eq!(
        finish(&index, &job, &outcome("bar", &[]), t0 + 3_010).await,
        Some(issue_bar)
    );
    let moved = index
        .regroup_report(&id("bp-e5"), issue_bar, &regrouping("baz"), now)
        .await
        .unwrap();
    assert_eq!(
        moved,
        Regrouped::Moved {
            issue_id: issue_baz,
            created: false
        }
    );
    let baz_issue = index.issue(issue_baz).await.unwrap().unwrap();
    assert_eq!(baz_issue.status, IssueStatus::Regressed);
    assert_eq!(baz_issue.count, 3);
    // issue_bar keeps e2; the counts of every issue add up to the reports counted.
    assert_eq!(count(issue_bar).await, Some(1));
    assert_eq!(index.count_reports_of_issue(issue_bar).await.unwrap(), 1);
    assert_eq!(index.count_reports_of_issue(issue_baz).await.unwrap(), 2);
}

on_each_backend!(
    regroup_scenario,
    stored_reports_are_regrouped_on_sqlite,
    stored_reports_are_regrouped_on_postgresql,
    "regroup_scenario"
);

/// Many received reports recorded at once through the intake (group commit): each
/// gets its own answer, after the commit that holds it. One that cannot be
/// recorded (its id is taken) fails alone; every other one is there with its key
/// and its job.
async fn intake_scenario(index: Index) {
    let intake = Intake::start(index.clone());
    let t0 = 1_700_000_000_000i64;
    index
        .insert_report_with_job(&new_report("bp-9000", t0))
        .await
        .unwrap();
    let tasks: Vec<_> = (1..=100i64)
        .map(|i| {
            let intake = intake.clone();
            // Number 50 reuses the id already recorded.
            let short = format!("bp-{}", if i == 50 { 9000 } else { 9000 + i });
            tokio::spawn(async move { intake.record(new_report(&short, t0 + i)).await })
        })
        .collect();
    for (i, task) in (1..=100i64).zip(tasks) {
        let recorded = task.await.unwrap();
        if i == 50 {
            assert!(recorded.is_err(), "a taken id is refused");
        } else {
            recorded.unwrap();
            let id = id(&format!("bp-{}", 9000 + i));
            assert!(index.report(&id).await.unwrap().is_some(), "{id}");
            assert!(index.report_key(&id).await.unwrap().is_some(), "{id}");
        }
    }
    assert_eq!(index.queue_depth().await.unwrap(), 100);
    assert_eq!(index.report_key_ids().await.unwrap().len(), 100);
}

on_each_backend!(
    intake_scenario,
    the_intake_records_each_report_once_committed_on_sqlite,
    the_intake_records_each_report_once_committed_on_postgresql,
    "intake"
);

/// What a job reads of its report before processing it comes in one read (row,
/// wrapped keys, symbol upload count); the lists a finish records, each in one
/// statement, hold every missing module and annotation tag of the outcome (a
/// duplicate once), and processing the report again records the new lists in
/// place of the old.
async fn finish_lists_scenario(index: Index) {
    let t0 = 1_700_000_000_000i64;
    index
        .insert_report_with_job(&new_report("bp-1f", t0))
        .await
        .unwrap();
    let read = index.job_report(&id("bp-1f")).await.unwrap().unwrap();
    assert_eq!(read.row.id, id("bp-1f"));
    assert_eq!(read.data_key.unwrap().wrapped, "00".repeat(60));
    assert_eq!(read.stack_key.unwrap().wrapped, "11".repeat(60));
    index.count_symbol_upload().await.unwrap();
    let read = index.job_report(&id("bp-1f")).await.unwrap().unwrap();
    assert_eq!(read.symbol_uploads, index.symbol_uploads().await.unwrap());
    assert!(read.symbol_uploads >= 1);
    assert!(index.job_report(&id("bp-dead")).await.unwrap().is_none());

    let missing = |file: &'static str, debug_id: &'static str| {
        let index = index.clone();
        async move {
            let ids = index.reports_missing_symbols(file, debug_id).await;
            ids.unwrap()
        }
    };
    let tagged = |tag: &'static str| {
        let index = index.clone();
        async move {
            let filter = ReportFilter {
                conditions: ReportConditions {
                    annotation_tag: Some(tag.to_owned()),
                    ..Default::default()
                },
                limit: 10,
                offset: 0,
            };
            let rows = index.search_reports(&filter).await.unwrap();
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let lists = |missing: &[(&str, &str)], tags: &[&str]| {
        let mut outcome = outcome("lists", missing);
        outcome.annotation_tags = tags.iter().map(|t| t.to_string()).collect();
        outcome
    };
    let first = lists(
        &[("liba.so", "A1"), ("libb.so", "B2"), ("liba.so", "A1")],
        &["t1", "t2", "t1"],
    );
    let job = claim(&index, "w", t0 + 1).await.unwrap();
    finish(&index, &job, &first, t0 + 2).await.unwrap();
    assert_eq!(missing("liba.so", "A1").await, vec![id("bp-1f")]);
    assert_eq!(missing("libb.so", "B2").await, vec![id("bp-1f")]);
    assert_eq!(tagged("t1").await, vec![id("bp-1f")]);
    assert_eq!(tagged("t2").await, vec![id("bp-1f")]);

    // Processed again: the new lists, none of the old.
    for (i, (modules, tags)) in [(&[("libc.so", "C3")][..], &["t3"][..]), (&[][..], &[][..])]
        .into_iter()
        .enumerate()
    {
        let at = t0 + 10 * (i as i64 + 1);
        index.enqueue_job(&id("bp-1f"), at).await.unwrap();
        let job = claim(&index, "w", at).await.unwrap();
        finish(&index, &job, &lists(modules, tags), at + 1)
            .await
            .unwrap();
        assert!(missing("liba.so", "A1").await.is_empty());
        assert!(missing("libb.so", "B2").await.is_empty());
        assert!(tagged("t1").await.is_empty());
        assert!(tagged("t2").await.is_empty());
        let expected = if modules.is_empty() {
            vec![]
        } else {
            vec![id("bp-1f")]
        };
        assert_eq!(missing("libc.so", "C3").await, expected);
        assert_eq!(tagged("t3").await, expected);
    }
    assert_eq!(index.queue_depth().await.unwrap(), 0);
}

on_each_backend!(
    finish_lists_scenario,
    a_finish_records_its_lists_whole_on_sqlite,
    a_finish_records_its_lists_whole_on_postgresql,
    "finish_lists"
);

/// Stack keys: stored with the report's row; destroyed by the transaction that
/// finishes its job when the outcome says so (and only then), with the data key
/// when the report is deleted, with the report when a resolved issue drops it,
/// and as orphans; rewrapped only while they exist.
async fn stack_key_scenario(index: Index) {
    use mayday_server::index::KeyKind;

    let t0 = 1_700_000_000_000i64;
    let stack_of = |index: Index, short: &'static str| async move {
        index
            .report_keys(&id(short))
            .await
            .unwrap()
            .and_then(|(_, stack)| stack)
    };
    for (i, short) in ["bp-5a", "bp-5b", "bp-5c", "bp-5d"].iter().enumerate() {
        index
            .insert_report_with_job(&new_report(short, t0 + i as i64))
            .await
            .unwrap();
    }
    let stored = new_report("bp-5a", t0).stack_key.unwrap();
    assert_eq!(stack_of(index.clone(), "bp-5a").await, Some(stored.clone()));
    assert_eq!(index.stack_key_ids().await.unwrap().len(), 4);

    // Finished keeping the stack memory: the key stays.
    let a = claim(&index, "w", t0 + 10).await.unwrap();
    finish(&index, &a, &outcome("stacky", &[("lib.so", "01")]), t0 + 20)
        .await
        .unwrap();
    assert!(stack_of(index.clone(), "bp-5a").await.is_some());
    // A stale claim that says to drop it drops nothing.
    index.enqueue_job(&id("bp-5a"), t0 + 30).await.unwrap();
    let b = claim(&index, "w", t0 + 40).await.unwrap();
    let mut dropping = outcome("stacky", &[]);
    dropping.drop_stack_key = true;
    let stale = Job {
        attempts: b.attempts + 1,
        ..b.clone()
    };
    assert!(
        index
            .finish_processed(&stale, &dropping, t0 + 50)
            .await
            .is_err()
    );
    assert!(stack_of(index.clone(), "bp-5b").await.is_some());
    // Finished dropping it: gone, the data key kept.
    finish(&index, &b, &dropping, t0 + 60).await.unwrap();
    assert!(stack_of(index.clone(), "bp-5b").await.is_none());
    assert!(index.report_key(&id("bp-5b")).await.unwrap().is_some());
    // The other (bp-5a's job is the one left from the enqueue above).
    let again = claim(&index, "w", t0 + 70).await.unwrap();
    assert_eq!(again.report_id, id("bp-5c"));

    // Rotation rewraps what exists, and a destroyed key stays destroyed.
    let rewrapped = WrappedKey {
        master_key_id: "next".to_owned(),
        wrapped: "22".repeat(60),
    };
    assert!(
        index
            .replace_report_key(KeyKind::Stack, &id("bp-5a"), &stored, &rewrapped)
            .await
            .unwrap()
    );
    assert_eq!(stack_of(index.clone(), "bp-5a").await, Some(rewrapped));
    assert!(
        !index
            .replace_report_key(KeyKind::Stack, &id("bp-5b"), &stored, &stored)
            .await
            .unwrap()
    );
    assert!(stack_of(index.clone(), "bp-5b").await.is_none());
    let listed = index
        .report_keys_after(KeyKind::Stack, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");

    // Deleting a report's keys takes both.
    assert!(index.delete_report_key(&id("bp-5a")).await.unwrap());
    assert!(index.report_keys(&id("bp-5a")).await.unwrap().is_none());
    assert!(!index.stack_key_ids().await.unwrap().contains(&id("bp-5a")));

    // A resolved issue drops a report received before its resolution, keys and all.
    let issue = finish(&index, &again, &outcome("resolved-one", &[]), t0 + 80)
        .await
        .unwrap();
    index
        .resolve_issue(issue, None, None, t0 + 90)
        .await
        .unwrap();
    index.enqueue_job(&id("bp-5d"), t0 + 100).await.unwrap();
    let d = claim(&index, "w", t0 + 100).await.unwrap();
    assert_eq!(d.report_id, id("bp-5d"));
    assert_eq!(
        finish(&index, &d, &outcome("resolved-one", &[]), t0 + 110).await,
        None
    );
    assert!(index.report_keys(&id("bp-5d")).await.unwrap().is_none());
    assert!(!index.stack_key_ids().await.unwrap().contains(&id("bp-5d")));

    // A stack key whose report row is gone is an orphan, swept when old.
    index.delete_report(&id("bp-5c")).await.unwrap();
    assert!(index.stack_key_ids().await.unwrap().contains(&id("bp-5c")));
    index.delete_orphan_report_keys(t0 + 1_000).await.unwrap();
    assert!(index.stack_key_ids().await.unwrap().is_empty());
}

on_each_backend!(
    stack_key_scenario,
    stack_keys_live_and_die_with_their_report_on_sqlite,
    stack_keys_live_and_die_with_their_report_on_postgresql,
    "stack_keys"
);

/// Workers finish jobs while reports arrive, all at once on one SQLite file: every
/// write waits for the lock (`busy_timeout`) instead of failing with "database is
/// locked". A transaction that reads before it writes must take the write lock when
/// it begins: SQLite refuses, without waiting, to upgrade a read to a write when
/// another connection wrote meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_wait_for_the_sqlite_lock() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let index = Index::connect(&url).await.unwrap();
    let t0 = 1_700_000_000_000i64;
    let reports = 40;
    for i in 0..reports {
        let report = new_report(&format!("bp-{}", 1000 + i), t0 + i);
        index.insert_report_with_job(&report).await.unwrap();
    }
    let mut jobs = Vec::new();
    while let Some(job) = index
        .claim_job("w", t0 + 100, Duration::from_secs(60))
        .await
        .unwrap()
    {
        jobs.push(job);
    }
    assert_eq!(jobs.len(), reports as usize);
    let mut writers = tokio::task::JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let finishing = index.clone();
        writers.spawn(async move {
            let outcome = outcome(&format!("sig{}", i % 4), &[("libx.so", "AB12")]);
            finishing
                .finish_processed(&job, &outcome, t0 + 200)
                .await
                .map(|issue| assert!(issue.is_some()))
        });
        let receiving = index.clone();
        writers.spawn(async move {
            let report = new_report(&format!("bp-{}", 2000 + i), t0 + 300);
            receiving.insert_report_with_job(&report).await
        });
    }
    while let Some(written) = writers.join_next().await {
        written.unwrap().unwrap();
    }
    assert_eq!(index.queue_depth().await.unwrap(), reports);
    assert_eq!(reports_in_issues(&index).await, reports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_works_on_postgresql() {
    let postgres = Postgres::shared();
    let url = postgres.database("index_scenario");
    let index = Index::connect(&url).await.unwrap();
    assert_eq!(index.backend(), Backend::Postgres);
    index_scenario(index.clone()).await;
    // Checked through psql, independently of sqlx.
    assert_eq!(
        postgres
            .psql(&url, "SELECT report_count FROM issues ORDER BY id LIMIT 1")
            .trim(),
        "3"
    );
}

/// Many writers at once on one SQLite file — two `Index` handles, as two server
/// processes, each with many tasks queueing, claiming and finishing jobs (read, then
/// write, in one transaction) into shared issues — never find the index busy:
/// every call succeeds, and every report ends processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_find_the_sqlite_index_busy() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("index.sqlite").display()
    );
    let first = Index::connect(&url).await.unwrap();
    let second = Index::connect(&url).await.unwrap();
    let t0 = 1_700_000_000_000i64;
    let tasks: Vec<_> = (0..64i64)
        .map(|i| {
            let index = if i % 2 == 0 { &first } else { &second }.clone();
            tokio::spawn(async move {
                index
                    .insert_report_with_job(&new_report(&format!("bp-{i}"), t0 + i))
                    .await?;
                // Each task queued one job before claiming: one is always there.
                let job = index
                    .claim_job(&format!("w{i}"), t0 + 1000, Duration::from_secs(60))
                    .await?
                    .expect("a runnable job");
                let outcome = outcome(&format!("frame{}", i % 4), &[]);
                index.finish_processed(&job, &outcome, t0 + 2000).await?;
                Ok::<_, mayday_server::index::IndexError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("no index call fails");
    }
    assert_eq!(first.queue_depth().await.unwrap(), 0);
    for i in 0..64 {
        let report = second
            .report(&id(&format!("bp-{i}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.state, mayday_server::index::ReportState::Processed);
    }
}

/// Uploads arriving while the default two workers process, on the default SQLite
/// index: no job attempt fails (none waits out a retry), every report is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_while_processing_fail_no_job_on_sqlite() {
    let server = TestServer::with_config(|c| c.pipeline.workers = 2).await;
    let token = server.token(Role::Developer).await;
    let cases = [
        "breakpad-win-x86-minidump2/minidump2.dmp",
        "symbolic-linux-x64-crash/linux-mini.dmp",
        "breakpad-linux-x64-inline/linux_inline.dmp",
    ];
    let mut dumps = Vec::new();
    for case in cases {
        let path = testdata().join(case);
        server
            .add_symbols(&path.parent().unwrap().join("symbols"))
            .await;
        dumps.push(std::fs::read(path).unwrap());
    }
    // 60 uploads, all at once.
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..60 {
        let (url, dump) = (server.url.clone(), dumps[i % dumps.len()].clone());
        uploads.spawn(async move { submit(&url, &dump, &[("prod", "Load")]).await.id });
    }
    let ids = uploads.join_all().await;
    for id in &ids {
        let report = server.wait_processed(&token, id).await;
        assert_eq!(report["state"], "processed", "{report}");
    }
    let metrics = server.state.metrics().render(None, None, None);
    assert!(
        metrics.lines().any(|l| l == "mayday_job_errors_total 0"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_database_urls_are_refused() {
    assert!(Index::connect("mysql://localhost/x").await.is_err());
}

/// Scale-out: an ingest-only server and a processing-only server share a real
/// S3-compatible store and a real PostgreSQL; reports sent to one are processed by
/// the other and read back through either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_share_s3_and_postgresql() {
    let s3 = S3Server::start().await;
    let database = Postgres::shared().database("scale_out");
    // Servers sharing an index share the master key that wraps its data keys.
    let master_key = mayday_server::crypto::MasterKey::generate().to_hex();
    let shared = |workers: usize| {
        let master_key = master_key.clone();
        let database = database.clone();
        let store_url = s3.store_url();
        let store_options = s3.store_options();
        move |c: &mut mayday_server::Config| {
            c.database_url = Some(database);
            c.store_url = Some(store_url);
            c.store_options = store_options;
            c.pipeline.workers = workers;
            c.master_key = Some(master_key);
        }
    };
    let ingest = TestServer::with_config(shared(0)).await;
    let processor = TestServer::with_config(shared(2)).await;
    let token = ingest.token(Role::Developer).await;
    processor
        .add_symbols(&testdata().join("breakpad-win-x86-minidump2/symbols"))
        .await;
    let dump = std::fs::read(testdata().join("breakpad-win-x86-minidump2/minidump2.dmp")).unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(ingest.submit(&dump, &[("prod", "Scale")]).await.id);
    }
    for id in &ids {
        let report = processor.wait_processed(&token, id).await;
        assert_eq!(report["state"], "processed");
        assert_eq!(
            report["crashing_thread"]["frames"][0]["function"],
            "`anonymous namespace'::CrashFunction"
        );
        let through_ingest = ingest.wait_processed(&token, id).await;
        assert_eq!(through_ingest["issue_id"], report["issue_id"]);
    }
    let issue: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/issues", processor.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(issue["issues"][0]["count"], 3);
    // The blobs are in the bucket, as seen by an independent S3 client.
    let bucket = s3.independent_client();
    let listed = bucket.list("raw/".to_owned(), None).await.unwrap();
    let keys: Vec<String> = listed
        .iter()
        .flat_map(|page| page.contents.iter().map(|o| o.key.clone()))
        .collect();
    for id in &ids {
        assert!(
            keys.iter().any(|k| k.contains(id.as_str())),
            "{id} in {keys:?}"
        );
    }
    ingest.stop().await;
    processor.stop().await;
}

/// Reports counted in the index's first ten issues (the tests here make fewer).
async fn reports_in_issues(index: &Index) -> i64 {
    let issues = index
        .list_issues(&IssueFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    issues.iter().map(|i| i.count).sum()
}
