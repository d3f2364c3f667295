//! End-to-end throughput of the real server: the release `mayday-server` binary on
//! its defaults (SQLite index and local store in a temp data dir), driven over HTTP
//! on 127.0.0.1, against `minidump-stackwalk` run one process per report, 2 at a
//! time, on the same dumps and symbols in the same run.
//!
//! ```sh
//! cargo build --release -p mayday-server
//! cargo bench -p mayday-tests --bench throughput
//! ```
//!
//! Phases, each on a fresh data dir and server process:
//! - ingest only (`MAYDAY_WORKERS=0`): a 332 KB Crashpad dump at 64, 8 and 1
//!   concurrent clients: reports/s, p50/p99; then every acknowledged report is
//!   looked up through the API;
//! - queue drain: every test data dump ingested many times with no worker running,
//!   then a server with the default workers drains the queue; the rate is taken
//!   after a first copy of every dump was processed (warm caches), and the
//!   server's CPU time per report over the same span (from `/proc`: a figure
//!   other load on the machine changes far less than the rate), and the rate
//!   that CPU would allow with every core busy;
//! - mixed: every test data dump many times, uploaded while the default workers
//!   process; failed jobs are counted, and the server's CPU time per report;
//! - memory: peak server RSS while a 200 MB dump streams in, against idle (the
//!   upload limits are raised for this phase through a config file).
//!
//! All traffic comes from one address, so the per-sender rate limit is off
//! (`MAYDAY_RATE_LIMIT_ENABLED=false`).
//!
//! The phases' data dirs stay until the run ends (see `Deployment::finish`):
//! start runs to compare a couple of minutes apart, as removing one run's files
//! slows the next run's file creation on some file systems.
//!
//! `MAYDAY_BENCH_UPLOADS` (default 2000) sets the uploads of the 64-client ingest
//! run, `MAYDAY_BENCH_ROUNDS` (default 20) the copies of every dump in the drain and
//! mixed phases, `MAYDAY_BENCH_PHASES` (default `ingest,drain,mixed,memory`) which
//! phases run, `MAYDAY_BENCH_DUMPS` (default: all) which test data dumps the drain
//! and mixed phases send: a comma-separated list of parts of their paths (e.g.
//! `minidump2`, the one dump whose crashing thread the test data symbolicates
//! fully). Every phase is bounded in time.
//!
//! `MAYDAY_BENCH_BACKEND=postgres-s3` runs every phase on the scale-out setup
//! instead: two server processes sharing one PostgreSQL database (a throwaway
//! cluster) and one S3 bucket (s3s-fs in this process), each with its own data dir
//! and the default workers; the load is split evenly over both, and the figures
//! are those of both together (the memory phase uses the first server).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mayday_server::crypto::MasterKey;
use mayday_server::metrics::Stage;
use mayday_server::storage::Storage;
use mayday_tests::scan::walk;
use mayday_tests::server::{Memory, ServerProcess, add_symbols, cli_token_with};
use mayday_tests::services::{Postgres, S3Server};
use mayday_tests::upload::Multipart;
use mayday_tests::{api, fixtures, testdata};

/// The ingest phase's dump: a 332 KB Crashpad dump.
const INGEST_DUMP: &str = "crashpad-iossim-x64-annotations/minidump_crashpad_annotation.dmp";
/// Size of the dump of the memory phase.
const BIG_UPLOAD_BYTES: usize = 200 * 1024 * 1024;

/// One test data dump.
struct Dump {
    /// Its case directory (with `symbols/` when the case has symbols).
    case: PathBuf,
    path: PathBuf,
    /// The upload: content type and multipart body.
    body: (String, Bytes),
}

fn main() {
    let server = fixtures::target_dir().join("mayday-server");
    if !server.exists() {
        eprintln!(
            "{} is not built: run `cargo build --release -p mayday-server` first",
            server.display()
        );
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let uploads = env_usize("MAYDAY_BENCH_UPLOADS", 2000);
    let rounds = env_usize("MAYDAY_BENCH_ROUNDS", 20);
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(fixtures::workspace_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let backend = Backend::from_env();
    println!(
        "{} (workspace at {commit}), {} cores; {}",
        fixtures::target_dir().join("mayday-server").display(),
        cores(),
        backend.describe(),
    );
    let dumps = dumps();
    let temp = tempfile::tempdir().unwrap();

    let phases = std::env::var("MAYDAY_BENCH_PHASES")
        .unwrap_or_else(|_| "ingest,drain,mixed,memory".to_owned());
    let phase = |name: &str| phases.split(',').any(|p| p.trim() == name);
    let deployment = |name: &'static str| Deployment::new(backend, temp.path(), name);
    if phase("ingest") {
        ingest(deployment("ingest").await, uploads).await;
    }
    let stackwalk = stackwalk_binary();
    let mut drain_stackwalk = None;
    if phase("drain") {
        let at = deployment("drain").await;
        drain_stackwalk = drain(at, &dumps, rounds, stackwalk.as_deref()).await;
    }
    if phase("mixed") {
        let earlier = drain_stackwalk;
        let at = deployment("mixed").await;
        mixed(at, &dumps, rounds, stackwalk.as_deref(), earlier).await;
    }
    if phase("memory") {
        memory(deployment("memory").await).await;
    }
}

/// What the servers keep their data in (`MAYDAY_BENCH_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// `sqlite` (the default): one server on its defaults, the SQLite index and
    /// the local store in its data dir.
    Sqlite,
    /// `postgres-s3`: two servers sharing one PostgreSQL database and one S3
    /// bucket, each with its own data dir.
    PostgresS3,
}

impl Backend {
    fn from_env() -> Backend {
        match std::env::var("MAYDAY_BENCH_BACKEND").as_deref() {
            Err(_) | Ok("sqlite") => Backend::Sqlite,
            Ok("postgres-s3") => Backend::PostgresS3,
            Ok(other) => {
                eprintln!("MAYDAY_BENCH_BACKEND={other}: expected sqlite or postgres-s3");
                std::process::exit(2);
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Backend::Sqlite => "one server on SQLite and the local store",
            Backend::PostgresS3 => "two servers sharing PostgreSQL and S3 (s3s-fs in this process)",
        }
    }
}

/// Where one phase runs: its data dir and, on PostgreSQL + S3, the fresh
/// database, bucket and master key its servers share.
struct Deployment {
    data: PathBuf,
    /// How many server processes the phase runs.
    servers: usize,
    /// The bucket's server (PostgreSQL + S3), serving for the whole phase.
    s3: Option<S3Server>,
    /// What the servers share, as environment.
    env: Vec<(String, String)>,
}

impl Deployment {
    async fn new(backend: Backend, root: &Path, phase: &str) -> Deployment {
        let data = root.join(phase);
        std::fs::create_dir_all(&data).unwrap();
        match backend {
            Backend::Sqlite => Deployment {
                data,
                servers: 1,
                s3: None,
                env: Vec::new(),
            },
            Backend::PostgresS3 => {
                let s3 = S3Server::start().await;
                let mut env = s3.env();
                let database = Postgres::shared().database(&format!("bench_{phase}"));
                env.push(("MAYDAY_DATABASE_URL".to_owned(), database));
                // Servers sharing an index share the master key.
                env.push((
                    "MAYDAY_MASTER_KEY".to_owned(),
                    MasterKey::generate().to_hex(),
                ));
                Deployment {
                    data,
                    servers: 2,
                    s3: Some(s3),
                    env,
                }
            }
        }
    }

    /// The data dir of server `i`.
    fn data_dir(&self, i: usize) -> PathBuf {
        if self.servers == 1 {
            self.data.clone()
        } else {
            self.data.join(format!("server-{i}"))
        }
    }

    /// What the servers share, and `extra`, as environment.
    fn env<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend_from_slice(extra);
        env
    }

    /// Starts the release servers with `env`. All the benchmark's traffic comes
    /// from one address, which the per-sender rate limit would answer with `429`
    /// after its burst: it is off here.
    fn start(&self, env: &[(&str, &str)]) -> Servers {
        let mut env = self.env(env);
        env.push(("MAYDAY_RATE_LIMIT_ENABLED", "false"));
        // The S3 server answers from this runtime while a server starts.
        let start =
            |i| tokio::task::block_in_place(|| ServerProcess::start(&self.data_dir(i), &env));
        Servers((0..self.servers).map(start).collect())
    }

    /// A developer's API token, made with the server's CLI.
    fn token(&self) -> String {
        cli_token_with(&self.data_dir(0), &self.env(&[]), "developer")
    }

    /// Every case's Breakpad symbol tree where the servers read symbols: copied
    /// into the store in the data dir (as an operator does, README "Try it"), or
    /// put into the bucket.
    async fn add_symbols(&self, dumps: &[Dump]) {
        let Some(s3) = &self.s3 else {
            copy_symbols(dumps, &self.data);
            return;
        };
        let bucket = Storage::open(&s3.store_url(), &s3.store_options()).unwrap();
        let trees: std::collections::BTreeSet<PathBuf> =
            dumps.iter().map(|d| d.case.join("symbols")).collect();
        for tree in trees.iter().filter(|t| t.exists()) {
            add_symbols(&bucket, tree).await;
        }
    }

    /// Ends the phase: the bucket goes with the S3 server; the data dir stays
    /// until the run's temp dir is removed at the end (about 1.5 GB at the
    /// default sizes). Removing its thousands of files here would slow every
    /// later phase's uploads: on ext4 without a journal (as on the machine these
    /// figures come from) creating a file scans past every inode deleted in the
    /// last minute or so (`find_inode_bit`, `recently_deleted`), and each upload
    /// creates one. For the same reason a run started within a couple of minutes
    /// of another one's end measures slower file creation than a server that
    /// deletes little.
    fn finish(self) {}
}

/// The server processes of a phase.
struct Servers(Vec<ServerProcess>);

impl Servers {
    /// Their URLs; the load goes round them.
    fn urls(&self) -> Vec<String> {
        self.0.iter().map(|s| s.url.clone()).collect()
    }

    /// The CPU time they have used so far, together.
    fn cpu_time(&self) -> Duration {
        self.0.iter().map(ServerProcess::cpu_time).sum()
    }

    /// Stops them all as an operator does (SIGTERM, killed after 30 s), so that an
    /// instrumented build writes its profile (`scripts/pgo-build` trains with this
    /// benchmark).
    fn stop(self) {
        // The S3 server answers from this runtime while a server shuts down.
        tokio::task::block_in_place(|| {
            for server in self.0 {
                let _ = server.stop(Duration::from_secs(30));
            }
        });
    }
}

/// Ingest only, at 64, 8 and 1 clients.
async fn ingest(at: Deployment, uploads: usize) {
    println!("\n== ingest only (MAYDAY_WORKERS=0), {INGEST_DUMP}");
    let servers = at.start(&[("MAYDAY_WORKERS", "0")]);
    let urls = servers.urls();
    let token = at.token();
    let bytes = std::fs::read(fixtures::testdata().join(INGEST_DUMP)).unwrap();
    println!("dump: {} bytes", bytes.len());
    let bodies = Arc::new(vec![upload_body(&bytes)]);

    let mut acked = Vec::new();
    // Warm-up: connections, page cache, SQLite file.
    let warm = load(&urls, &bodies, 8, 64, Duration::from_secs(30)).await;
    acked.extend(warm.ids);
    for (clients, count) in [(64, uploads), (8, uploads / 2), (1, uploads / 10)] {
        let run = load(&urls, &bodies, clients, count, Duration::from_secs(60)).await;
        println!(
            "RESULT ingest {clients:>2} clients: {:.0} reports/s, p50 {:.1} ms, p99 {:.1} ms \
             ({} acknowledged in {:.1} s, {} errors{})",
            run.ids.len() as f64 / run.elapsed.as_secs_f64(),
            ms(percentile(&run.latencies, 0.50)),
            ms(percentile(&run.latencies, 0.99)),
            run.ids.len(),
            run.elapsed.as_secs_f64(),
            run.errors.values().sum::<usize>(),
            errors_text(&run.errors),
        );
        acked.extend(run.ids);
    }
    let states = report_states(&urls[0], &token, &acked).await;
    println!(
        "RESULT ingest: {} of {} acknowledged reports in the index ({})",
        acked.len() - states.get("missing").copied().unwrap_or(0),
        acked.len(),
        map_text(&states),
    );
    let metrics = Metrics::scrape(&urls).await;
    print_stages(
        &metrics,
        &[
            Stage::Receive,
            Stage::Scrub,
            Stage::Seal,
            Stage::Store,
            Stage::Index,
        ],
        metrics.value("mayday_reports_ingested_total"),
    );
    servers.stop();
    at.finish();
}

/// Queue drain with warm caches, against minidump-stackwalk; returns the latter's
/// reports/s.
async fn drain(
    at: Deployment,
    dumps: &[Dump],
    rounds: usize,
    stackwalk: Option<&Path>,
) -> Option<f64> {
    println!(
        "\n== queue drain: {} dumps x {rounds} ingested first, then processed by the default workers",
        dumps.len()
    );
    at.add_symbols(dumps).await;
    let servers = at.start(&[("MAYDAY_WORKERS", "0")]);
    let urls = servers.urls();
    let token = at.token();
    // First one copy of each (processed first: the queue is taken oldest first)
    // to warm the caches, then the measured copies.
    let warm_bodies = Arc::new(dumps.iter().map(|d| d.body.clone()).collect::<Vec<_>>());
    let warm = load(&urls, &warm_bodies, 1, dumps.len(), Duration::from_secs(60)).await;
    let measured = load(
        &urls,
        &warm_bodies,
        8,
        dumps.len() * rounds,
        Duration::from_secs(120),
    )
    .await;
    assert!(
        warm.errors.is_empty() && measured.errors.is_empty(),
        "uploads failed: {} {}",
        errors_text(&warm.errors),
        errors_text(&measured.errors)
    );
    servers.stop();

    let servers = at.start(&[]);
    let urls = servers.urls();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    // Warm: as many jobs done as there are first copies (the oldest, so those).
    let before = loop {
        let metrics = Metrics::scrape(&urls).await;
        if metrics.jobs_done() >= warm.ids.len() as f64 || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let t0 = Instant::now();
    let cpu0 = servers.cpu_time();
    let after = wait_drained(&urls, deadline).await;
    let elapsed = t0.elapsed();
    // Before the reports are read back below (which takes a while of its own).
    let all_out = started.elapsed();
    let cpu = servers.cpu_time() - cpu0;
    let done = after.jobs_done() - before.jobs_done();
    let rate = done / elapsed.as_secs_f64();
    let all = warm
        .ids
        .iter()
        .chain(&measured.ids)
        .cloned()
        .collect::<Vec<_>>();
    let (read, cpu_read) = (Instant::now(), servers.cpu_time());
    let states = report_states(&urls[0], &token, &all).await;
    let (read, cpu_read) = (read.elapsed(), servers.cpu_time() - cpu_read);
    println!(
        "{} reports queued; {done:.0} done after the first {} in {:.2} s; all out of the queue \
         {:.2} s after start ({:.1} reports/s cold); reports: {}; job errors: {}",
        all.len(),
        warm.ids.len(),
        elapsed.as_secs_f64(),
        all_out.as_secs_f64(),
        all.len() as f64 / all_out.as_secs_f64(),
        map_text(&states),
        after.value("mayday_job_errors_total"),
    );
    print_stages(
        &after,
        &[Stage::Load, Stage::Process, Stage::Finalize],
        after.value("mayday_jobs_run_total"),
    );
    println!(
        "read back through GET /api/v1/reports/{{id}}, 16 at a time: {} in {:.2} s, server CPU {:.2} ms a report",
        all.len(),
        read.as_secs_f64(),
        ms(cpu_read) / all.len() as f64
    );
    print_writer(&before, &after, elapsed, done);
    println!(
        "RESULT drain (warm): server CPU {:.2} ms per report ({:.2} cores busy)",
        ms(cpu) / done,
        cpu.as_secs_f64() / elapsed.as_secs_f64()
    );
    print_split(&after);
    servers.stop();
    at.finish();
    let stackwalk = stackwalk.map(|bin| stackwalk_rate(bin, dumps, rounds));
    // What the server's CPU a report allows were every core busy through the
    // drain: the ratio that idle cores cost, and the one left without them.
    let cores = cores();
    let ceiling = cores as f64 * 1000.0 * done / ms(cpu);
    match stackwalk {
        Some(sw) => {
            println!(
                "RESULT drain (warm): {rate:.1} reports/s vs minidump-stackwalk {sw:.1} reports/s: {:.2}x (target >= 10x)",
                rate / sw
            );
            println!(
                "drain with all {cores} cores busy at this CPU a report: {ceiling:.1} reports/s, {:.2}x",
                ceiling / sw
            );
        }
        None => println!("RESULT drain (warm): {rate:.1} reports/s (minidump-stackwalk not found)"),
    }
    stackwalk
}

/// Ingest and processing at once.
async fn mixed(
    at: Deployment,
    dumps: &[Dump],
    rounds: usize,
    stackwalk: Option<&Path>,
    earlier_stackwalk: Option<f64>,
) {
    println!(
        "\n== mixed: {} dumps x {rounds} uploaded by 16 clients while the default workers process",
        dumps.len()
    );
    at.add_symbols(dumps).await;
    let servers = at.start(&[]);
    let urls = servers.urls();
    let token = at.token();
    let bodies = Arc::new(dumps.iter().map(|d| d.body.clone()).collect::<Vec<_>>());
    let before = Metrics::scrape(&urls).await;
    let started = Instant::now();
    let cpu0 = servers.cpu_time();
    let run = load(
        &urls,
        &bodies,
        16,
        dumps.len() * rounds,
        Duration::from_secs(120),
    )
    .await;
    let ingested = started.elapsed();
    let after = wait_drained(&urls, started + Duration::from_secs(300)).await;
    let elapsed = started.elapsed();
    let cpu = servers.cpu_time() - cpu0;
    let rate = run.ids.len() as f64 / elapsed.as_secs_f64();
    let states = report_states(&urls[0], &token, &run.ids).await;
    println!(
        "{} uploads acknowledged in {:.2} s ({} errors{}), all processed after {:.2} s; reports: {}",
        run.ids.len(),
        ingested.as_secs_f64(),
        run.errors.values().sum::<usize>(),
        errors_text(&run.errors),
        elapsed.as_secs_f64(),
        map_text(&states),
    );
    print_stages(
        &after,
        &Stage::ALL,
        after.value("mayday_reports_ingested_total"),
    );
    print_writer(&before, &after, elapsed, run.ids.len() as f64);
    println!(
        "RESULT mixed: server CPU {:.2} ms per report, ingest and processing ({:.2} cores busy)",
        ms(cpu) / run.ids.len() as f64,
        cpu.as_secs_f64() / elapsed.as_secs_f64()
    );
    let failed = after.value("mayday_job_errors_total") as usize
        + states.get("failed").copied().unwrap_or(0);
    println!(
        "RESULT mixed: failed jobs {failed} (job errors {}, failed reports {}), queued {}",
        after.value("mayday_job_errors_total"),
        states.get("failed").copied().unwrap_or(0),
        states.get("queued").copied().unwrap_or(0),
    );
    print_split(&after);
    servers.stop();
    at.finish();
    match stackwalk.map(|bin| stackwalk_rate(bin, dumps, rounds)) {
        Some(sw) => {
            let sw = earlier_stackwalk.map_or(sw, |earlier| (sw + earlier) / 2.0);
            println!(
                "RESULT mixed: {rate:.1} reports/s vs minidump-stackwalk {sw:.1} reports/s \
                 (mean of both runs): {:.2}x (target >= 3x)",
                rate / sw
            );
        }
        None => println!("RESULT mixed: {rate:.1} reports/s (minidump-stackwalk not found)"),
    }
}

/// Peak RSS while a 200 MB upload streams in.
async fn memory(at: Deployment) {
    println!("\n== memory: one {} MB upload", BIG_UPLOAD_BYTES >> 20);
    // The default limits refuse a 200 MB upload (25 MiB on the wire): raised here.
    let config = at.data.join("bench.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_wire_bytes = 536870912\nmax_decompressed_bytes = 536870912\n",
    )
    .unwrap();
    let servers = at.start(&[
        ("MAYDAY_WORKERS", "0"),
        ("MAYDAY_CONFIG", config.to_str().unwrap()),
    ]);
    let server = &servers.0[0];
    // The upload body in a file, streamed from there: a real dump padded with
    // zeros to 200 MB.
    let body_path = at.data.join("big-upload.body");
    let content_type = {
        let dump = std::fs::read(fixtures::testdata().join(INGEST_DUMP)).unwrap();
        let (content_type, small) = Multipart::new()
            .text("prod", "Bench")
            .text("ver", "1.0")
            .dump(&dump)
            .finish();
        // Split the body around the dump's bytes and put the padding in between.
        let at = small
            .windows(dump.len())
            .position(|w| w == dump.as_slice())
            .unwrap()
            + dump.len();
        let mut file = std::io::BufWriter::new(std::fs::File::create(&body_path).unwrap());
        file.write_all(&small[..at]).unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut left = BIG_UPLOAD_BYTES - dump.len();
        while left > 0 {
            let n = left.min(zeros.len());
            file.write_all(&zeros[..n]).unwrap();
            left -= n;
        }
        file.write_all(&small[at..]).unwrap();
        file.flush().unwrap();
        content_type
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = server.pid();
    let idle = server.memory();

    let peak = Arc::new(Mutex::new(idle.rss));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                let rss = Memory::of(pid).rss;
                let mut peak = peak.lock().unwrap();
                *peak = (*peak).max(rss);
                drop(peak);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let file = tokio::fs::File::open(&body_path).await.unwrap();
    let length = file.metadata().await.unwrap().len();
    let started = Instant::now();
    let response = client()
        .post(format!("{}/submit", server.url))
        .header("content-type", content_type)
        .header("content-length", length)
        .body(reqwest::Body::from(file))
        .send()
        .await;
    let took = started.elapsed();
    let status = match response {
        Ok(r) => r.status().to_string(),
        Err(e) => format!("error: {e}"),
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = *peak.lock().unwrap();
    let after = server.memory();
    println!(
        "upload of {} MB: {status} in {:.1} s; server RSS idle {} MB (high-water mark {} MB), \
         sampled peak {} MB, high-water mark after {} MB",
        length >> 20,
        took.as_secs_f64(),
        idle.rss >> 20,
        idle.peak >> 20,
        peak >> 20,
        after.peak >> 20,
    );
    println!(
        "RESULT memory: peak RSS {} MB above idle during a {} MB upload (target <= 64 MB)",
        (peak.max(after.peak).saturating_sub(idle.rss)) >> 20,
        BIG_UPLOAD_BYTES >> 20
    );
    servers.stop();
    at.finish();
}

/// What a load run did.
struct Run {
    /// CrashIDs acknowledged with `200`.
    ids: Vec<String>,
    /// Latency of every acknowledged upload.
    latencies: Vec<Duration>,
    /// Failures by kind (`status 503`, `error …`).
    errors: BTreeMap<String, usize>,
    elapsed: Duration,
}

/// `clients` concurrent clients send `count` uploads in all (cycling through
/// `bodies`, and through the servers at `urls`), stopping early after `limit`.
async fn load(
    urls: &[String],
    bodies: &Arc<Vec<(String, Bytes)>>,
    clients: usize,
    count: usize,
    limit: Duration,
) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let client = client();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (next, bodies, client) = (next.clone(), bodies.clone(), client.clone());
            let urls: Vec<String> = urls.iter().map(|url| format!("{url}/submit")).collect();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut latencies = Vec::new();
                let mut errors = BTreeMap::<String, usize>::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || started.elapsed() > limit {
                        break;
                    }
                    let (content_type, body) = &bodies[i % bodies.len()];
                    let sent = Instant::now();
                    let response = client
                        .post(&urls[i % urls.len()])
                        .header("content-type", content_type)
                        .body(body.clone())
                        .send()
                        .await;
                    let outcome = match response {
                        Ok(r) if r.status().is_success() => {
                            r.text().await.map_err(|e| e.to_string())
                        }
                        Ok(r) => Err(format!("status {}", r.status().as_u16())),
                        Err(e) => Err(format!("error {e}")),
                    };
                    match outcome.map(|text| crash_id(&text)) {
                        Ok(Some(id)) => {
                            latencies.push(sent.elapsed());
                            ids.push(id);
                        }
                        Ok(None) => *errors.entry("no CrashID".into()).or_default() += 1,
                        Err(e) => *errors.entry(e).or_default() += 1,
                    }
                }
                (ids, latencies, errors)
            })
        })
        .collect();
    let mut run = Run {
        ids: Vec::new(),
        latencies: Vec::new(),
        errors: BTreeMap::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (ids, latencies, errors) = task.await.unwrap();
        run.ids.extend(ids);
        run.latencies.extend(latencies);
        for (e, n) in errors {
            *run.errors.entry(e).or_default() += n;
        }
    }
    run.elapsed = started.elapsed();
    run.latencies.sort();
    run
}

fn crash_id(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("CrashID="))
        .map(str::to_owned)
}

/// The state of every report through `GET /api/v1/reports/{id}`, counted:
/// `queued`, `processed`, `failed`, or `missing` (not found).
async fn report_states(url: &str, token: &str, ids: &[String]) -> BTreeMap<String, usize> {
    let client = client();
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids.to_vec());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (client, next, ids) = (client.clone(), next.clone(), ids.clone());
            let (url, token) = (url.to_owned(), token.to_owned());
            tokio::spawn(async move {
                let mut counts = BTreeMap::<String, usize>::new();
                while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let response = client
                        .get(format!("{url}/api/v1/reports/{id}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("report lookup");
                    let state = if response.status() == reqwest::StatusCode::NOT_FOUND {
                        "missing".to_owned()
                    } else {
                        let json: serde_json::Value = response.json().await.unwrap();
                        json["state"].as_str().unwrap_or("?").to_owned()
                    };
                    *counts.entry(state).or_default() += 1;
                }
                counts
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for task in tasks {
        for (state, n) in task.await.unwrap() {
            *counts.entry(state).or_default() += n;
        }
    }
    counts
}

/// Polls `/metrics` until the queue is empty (or `deadline`); returns the last
/// scrape.
async fn wait_drained(urls: &[String], deadline: Instant) -> Metrics {
    loop {
        let metrics = Metrics::scrape(urls).await;
        if metrics.value("mayday_queue_depth") == 0.0 || Instant::now() > deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One scrape of `/metrics` of every server.
struct Metrics(Vec<String>);

impl Metrics {
    async fn scrape(urls: &[String]) -> Metrics {
        let mut texts = Vec::new();
        for url in urls {
            texts.push(api::metrics(url).await);
        }
        Metrics(texts)
    }

    /// The value of the sample `name` (with its labels, if any) of each server;
    /// 0 when absent.
    fn per_server(&self, name: &str) -> Vec<f64> {
        self.0
            .iter()
            .map(|text| api::metric(text, name).unwrap_or(0.0))
            .collect()
    }

    /// The value of the sample `name` summed over the servers (the queue depth
    /// is 0 when it is 0 on every one).
    fn value(&self, name: &str) -> f64 {
        self.per_server(name).iter().sum()
    }

    /// Job runs that did not end in an error.
    fn jobs_done(&self) -> f64 {
        self.value("mayday_jobs_run_total") - self.value("mayday_job_errors_total")
    }
}

/// How the jobs were split between the servers, when there are several.
fn print_split(metrics: &Metrics) {
    if metrics.0.len() < 2 {
        return;
    }
    let runs = metrics.per_server("mayday_jobs_run_total");
    let errors = metrics.per_server("mayday_job_errors_total");
    println!("job runs per server: {runs:?}, job errors per server: {errors:?}");
}

/// Mean time per report of every stage, from `mayday_stage_seconds`.
fn print_stages(metrics: &Metrics, stages: &[Stage], reports: f64) {
    let mut line = String::from("stages, mean ms per report:");
    let mut total = 0.0;
    for stage in stages {
        let sum = metrics.value(&format!(
            "mayday_stage_seconds_sum{{stage=\"{}\"}}",
            stage.name()
        ));
        let per_report = sum * 1000.0 / reports.max(1.0);
        total += per_report;
        line.push_str(&format!(" {} {per_report:.2}", stage.name()));
    }
    println!("{line} (sum {total:.2})");
}

/// How much of `elapsed` the SQLite index's one writer was held, from
/// `mayday_index_writer_*` (absent on PostgreSQL): near 100%, writes queue for
/// it and it is what limits the phase.
fn print_writer(before: &Metrics, after: &Metrics, elapsed: Duration, reports: f64) {
    let delta = |name: &str, by: &str| {
        let name = format!("{name}{{by=\"{by}\"}}");
        after.value(&name) - before.value(&name)
    };
    let users = ["intake", "jobs", "other"];
    let uses = users.map(|by| delta("mayday_index_writer_uses_total", by));
    let held = users.map(|by| delta("mayday_index_writer_held_seconds_total", by));
    let (all_uses, all_held) = (uses.iter().sum::<f64>(), held.iter().sum::<f64>());
    if all_uses <= 0.0 {
        return;
    }
    let mut by = String::new();
    for ((user, uses), held) in users.iter().zip(uses).zip(held) {
        if uses > 0.0 {
            by.push_str(&format!(
                "; {user} {:.2} ms a use, {:.2} uses a report",
                held * 1000.0 / uses,
                uses / reports.max(1.0)
            ));
        }
    }
    println!(
        "index writer: held {:.0}% of the time, {:.2} ms a use, {:.1} uses a report{by}",
        all_held * 100.0 / elapsed.as_secs_f64(),
        all_held * 1000.0 / all_uses,
        all_uses / reports.max(1.0)
    );
}

/// Runs minidump-stackwalk once per report, 2 at a time, over every dump
/// `rounds` times; returns reports/s.
fn stackwalk_rate(bin: &Path, dumps: &[Dump], rounds: usize) -> f64 {
    let jobs: Vec<&Dump> = (0..rounds).flat_map(|_| dumps.iter()).collect();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(dump) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut command = Command::new(bin);
                    command.arg("--json");
                    let symbols = dump.case.join("symbols");
                    if symbols.exists() {
                        command.arg("--symbols-path").arg(&symbols);
                    }
                    let status = command
                        .arg(&dump.path)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .expect("minidump-stackwalk runs");
                    assert!(
                        status.success(),
                        "minidump-stackwalk on {}",
                        dump.path.display()
                    );
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let rate = jobs.len() as f64 / elapsed.as_secs_f64();
    println!(
        "minidump-stackwalk --json, one process per report, 2 at a time: {} reports in {:.2} s, \
         {rate:.1} reports/s",
        jobs.len(),
        elapsed.as_secs_f64()
    );
    rate
}

/// `minidump-stackwalk` on the PATH or in `~/.cargo/bin`.
fn stackwalk_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    on_path
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("minidump-stackwalk"))
        .find(|p| p.exists())
}

/// Every dump of the shared test data, sorted; only those `MAYDAY_BENCH_DUMPS`
/// names when it is set.
fn dumps() -> Vec<Dump> {
    let mut out = Vec::new();
    for path in walk(&fixtures::testdata()) {
        if path.extension().is_some_and(|e| e == "dmp") && testdata::chosen_for_bench(&path) {
            let bytes = std::fs::read(&path).unwrap();
            out.push(Dump {
                case: path.parent().unwrap().to_owned(),
                path,
                body: upload_body(&bytes),
            });
        }
    }
    out
}

/// Copies every case's Breakpad symbol tree into `<data>/store/symbols`, as an
/// operator does (README, "Try it").
fn copy_symbols(dumps: &[Dump], data: &Path) {
    let target = data.join("store/symbols");
    for dump in dumps {
        let tree = dump.case.join("symbols");
        if !tree.exists() {
            continue;
        }
        for file in walk(&tree) {
            let to = target.join(file.strip_prefix(&tree).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&file, &to).unwrap();
        }
    }
}

fn upload_body(dump: &[u8]) -> (String, Bytes) {
    let (content_type, body) = Multipart::new()
        .text("prod", "Bench")
        .text("ver", "1.0")
        .dump(dump)
        .finish();
    (content_type, Bytes::from(body))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The cores this machine gives the run (the server's and the reference's).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn errors_text(errors: &BTreeMap<String, usize>) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", map_text(errors))
    }
}

fn map_text(map: &BTreeMap<String, usize>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
