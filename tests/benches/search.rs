//! Search over a million reports on SQLite: p50 and p99 per filter, through the
//! index's own search code (`Index::search_reports`, `Index::list_issues`) on an
//! index file built by its own migrations.
//!
//! ```sh
//! cargo bench -p mayday-tests --bench search
//! ```
//!
//! The rows are written straight into the migrated schema (one statement per
//! row, 50 000 rows a transaction): processing a million dumps is not what is
//! measured here. Each report gets a product (5), a version (40 per product), an
//! OS and OS version, a crash reason (10), a crashing module (200), a receive
//! time over 90 days, an issue (2 000) and three annotation tags (a channel of
//! three, a build of a thousand, a unique one). `MAYDAY_SEARCH_ROWS` (default
//! 1 000 000) sets the count, `MAYDAY_SEARCH_RUNS` (default 50) the runs per filter.

use std::time::{Duration, Instant};

use mayday_server::crypto::MasterKey;
use mayday_server::index::{Index, IssueFilter, ReportConditions, ReportFilter};
use mayday_server::version::sort_key;
use sqlx::Connection;

const PRODUCTS: usize = 5;
const VERSIONS: usize = 40;
const REASONS: [&str; 10] = [
    "SIGSEGV / SEGV_MAPERR",
    "SIGSEGV / SEGV_ACCERR",
    "SIGABRT",
    "SIGBUS / BUS_ADRERR",
    "SIGFPE / FPE_INTDIV",
    "SIGILL / ILL_ILLOPN",
    "EXCEPTION_ACCESS_VIOLATION_READ",
    "EXCEPTION_ACCESS_VIOLATION_WRITE",
    "EXCEPTION_STACK_OVERFLOW",
    "EXC_BAD_ACCESS / KERN_INVALID_ADDRESS",
];
const OSES: [&str; 3] = ["Linux", "Windows NT", "Mac OS X"];
const MODULES: usize = 200;
const ISSUES: usize = 2_000;
const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_780_000_000_000;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift), so every run has the same rows.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn version(product: usize, v: usize) -> String {
    format!("{}.{}.{}", 1 + product, v / 10, v % 10)
}

async fn fill(url: &str, rows: usize, search: &mayday_server::crypto::SearchKey) {
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    for issue in 1..=ISSUES {
        sqlx::query(
            "INSERT INTO issues (id, signature_hash, signature, title, status, first_seen, \
             last_seen, report_count) VALUES ($1, $2, $3, $3, 'open', $4, $4, 0)",
        )
        .bind(issue as i64)
        .bind(format!("{issue:064x}"))
        .bind(format!("crash_in_function_{issue}"))
        .bind(T0)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut tx = conn.begin().await.unwrap();
    for n in 0..rows {
        let product = rng.below(PRODUCTS);
        let version = version(product, rng.below(VERSIONS));
        let os = rng.below(OSES.len());
        let id = format!("bp-00000000-0000-4000-8000-{n:012}");
        sqlx::query(
            "INSERT INTO reports (id, issue_id, received_at, processed_at, product, version, \
             version_key, os, os_version, cpu_arch, crash_reason, crash_address, crash_module, \
             state, deletion_token_hash, raw_key, meta_key) VALUES ($1, $2, $3, $3, $4, $5, \
             $6, $7, $8, 'amd64', $9, '0x0', $10, 'processed', $11, $12, $12)",
        )
        .bind(&id)
        .bind(1 + rng.below(ISSUES) as i64)
        .bind(T0 + rng.below(90 * DAY_MS as usize) as i64)
        .bind(format!("Product{product}"))
        .bind(&version)
        .bind(sort_key(&version))
        .bind(OSES[os])
        .bind(format!("{}.{}", 10 + os, rng.below(20)))
        .bind(REASONS[rng.below(REASONS.len())])
        .bind(format!("module{}.so", rng.below(MODULES)))
        .bind("ab".repeat(32))
        .bind(format!("raw/{id}.dmp"))
        .execute(&mut *tx)
        .await
        .unwrap();
        let channel = ["beta", "release", "nightly"][rng.below(3)];
        let build = rng.below(1000).to_string();
        let unique = n.to_string();
        for (key, value) in [("channel", channel), ("build", &build), ("seat", &unique)] {
            sqlx::query("INSERT INTO report_annotations (tag, report_id) VALUES ($1, $2)")
                .bind(search.tag(key, value))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        if (n + 1) % 50_000 == 0 {
            tx.commit().await.unwrap();
            tx = conn.begin().await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    eprintln!(
        "{rows} reports written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows = env_number("MAYDAY_SEARCH_ROWS", 1_000_000);
    let runs = env_number("MAYDAY_SEARCH_RUNS", 50);
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("index.sqlite").display()
    );
    let index = Index::connect(&url).await.unwrap();
    let search = MasterKey::generate().search_key();
    fill(&url, rows, &search).await;
    // The planner's statistics, as the server gathers them (at start and hourly).
    index.optimize().await.unwrap();

    let day = |d: i64| Some(T0 + d * DAY_MS);
    let filters: Vec<(&str, ReportConditions)> = vec![
        ("none (newest 50)", ReportConditions::default()),
        (
            "product",
            ReportConditions {
                product: Some("Product3".into()),
                ..Default::default()
            },
        ),
        (
            "version (exact)",
            ReportConditions {
                version: Some(version(2, 17)),
                ..Default::default()
            },
        ),
        (
            "product + version >=",
            ReportConditions {
                product: Some("Product1".into()),
                min_version_key: sort_key("2.3.5"),
                ..Default::default()
            },
        ),
        (
            "os + os version",
            ReportConditions {
                os: Some("Windows NT".into()),
                os_version: Some("11.7".into()),
                ..Default::default()
            },
        ),
        (
            "crash reason",
            ReportConditions {
                crash_reason: Some("SIGBUS / BUS_ADRERR".into()),
                ..Default::default()
            },
        ),
        (
            "module",
            ReportConditions {
                module: Some("module123.so".into()),
                ..Default::default()
            },
        ),
        (
            "annotation (1 in 3)",
            ReportConditions {
                annotation_tag: Some(search.tag("channel", "beta")),
                ..Default::default()
            },
        ),
        (
            "annotation (1 in 1000)",
            ReportConditions {
                annotation_tag: Some(search.tag("build", "421")),
                ..Default::default()
            },
        ),
        (
            "annotation (one report)",
            ReportConditions {
                annotation_tag: Some(search.tag("seat", &(rows / 2).to_string())),
                ..Default::default()
            },
        ),
        (
            "one day",
            ReportConditions {
                since: day(40),
                until: day(41),
                ..Default::default()
            },
        ),
        (
            "day + product + module",
            ReportConditions {
                since: day(10),
                until: day(20),
                product: Some("Product0".into()),
                module: Some("module7.so".into()),
                ..Default::default()
            },
        ),
    ];

    println!("search over {rows} reports on SQLite, {runs} runs per filter");
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "filter", "reports", "p50 ms", "p99 ms", "issues p50", "issues p99"
    );
    for (name, conditions) in filters {
        let mut times = Vec::with_capacity(runs);
        let mut found = 0;
        for _ in 0..runs {
            let filter = ReportFilter {
                conditions: conditions.clone(),
                limit: 50,
                offset: 0,
            };
            let started = Instant::now();
            found = index.search_reports(&filter).await.unwrap().len();
            times.push(started.elapsed());
        }
        times.sort();
        let mut issue_times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let filter = IssueFilter {
                reports: conditions.clone(),
                limit: 50,
                ..Default::default()
            };
            let started = Instant::now();
            index.list_issues(&filter).await.unwrap();
            issue_times.push(started.elapsed());
        }
        issue_times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<26} {:>9} {:>9.2} {:>9.2} {:>11.2} {:>11.2}",
            name,
            found,
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(percentile(&issue_times, 0.5)),
            ms(percentile(&issue_times, 0.99)),
        );
    }
}
