//! Processing the shared test data's minidumps through `Symbols` (one process, warm
//! caches) against `minidump-stackwalk` run once per dump with the same symbols, as
//! Socorro runs it. Prints reports/s of both, the ratio, cold-cache times and peak
//! RSS versus the largest symbol file.
//!
//! `cargo bench -p mayday-symbols --bench processing`
//! (`MAYDAY_BENCH_SECONDS` sets the warm phase's length, default 10.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mayday_symbols::{CacheConfig, SymbolStore, Symbols};
use object_store::local::LocalFileSystem;

// The shared test data's dumps, by the one walk the end-to-end tests use: a file of
// the mayday-tests crate, which this crate cannot depend on (it depends on this one
// through the server), included as a module.
#[allow(dead_code)]
#[path = "../../tests/src/testdata.rs"]
mod testdata;

use testdata::{Case, cases};

/// Copies every case's `symbols/` tree into `<root>/symbols/` (one store for all).
fn merge_trees(cases: &[Case], root: &Path) -> u64 {
    fn copy(from: &Path, to: &Path, largest: &mut u64) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target, largest);
            } else {
                *largest = (*largest).max(entry.metadata().unwrap().len());
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let mut largest = 0;
    let mut seen = std::collections::HashSet::new();
    for case in cases {
        let symbols = case.dir.join("symbols");
        if symbols.exists() && seen.insert(case.dir.clone()) {
            copy(&symbols, &root.join("symbols"), &mut largest);
        }
    }
    largest
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn process_all(symbols: &Symbols, dumps: &[minidump::Minidump<'static, &'static [u8]>]) {
    for dump in dumps {
        let (state, _) = symbols.process(dump).await.expect("processing failed");
        std::hint::black_box(state);
    }
}

fn stackwalk_available() -> bool {
    Command::new("minidump-stackwalk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_stackwalk(case: &Case) -> Duration {
    let mut cmd = Command::new("minidump-stackwalk");
    cmd.arg("--json");
    let symbols = case.dir.join("symbols");
    if symbols.exists() {
        cmd.arg("--symbols-path").arg(&symbols);
    }
    cmd.arg(&case.dump)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let status = cmd.status().expect("minidump-stackwalk runs");
    let elapsed = start.elapsed();
    assert!(
        status.success(),
        "minidump-stackwalk failed on {}",
        case.dump.display()
    );
    elapsed
}

/// Set to a dump path: process only that dump with warm caches and print the peak RSS.
const CHILD_ENV: &str = "MAYDAY_BENCH_RSS_CHILD";
/// With [`CHILD_ENV`]: process without any symbols.
const NOSYMS_ENV: &str = "MAYDAY_BENCH_RSS_NOSYMS";

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dir_size(&e.path())
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

/// The child: one dump, its case's symbol tree, five warm rounds; prints VmHWM.
fn rss_child(dump_path: &Path) {
    let case_dir = dump_path.parent().unwrap();
    // With `MAYDAY_BENCH_RSS_NOSYMS` set: an empty store, to see what processing
    // alone costs.
    let store: Arc<dyn object_store::ObjectStore> = if std::env::var_os(NOSYMS_ENV).is_some() {
        Arc::new(object_store::memory::InMemory::new())
    } else {
        Arc::new(LocalFileSystem::new_with_prefix(case_dir).unwrap())
    };
    let store = SymbolStore::new(store);
    let at_start = status_kib("VmRSS:").unwrap_or(0);
    let bytes = std::fs::read(dump_path).unwrap();
    let dump = minidump::Minidump::read(&bytes[..]).unwrap();
    let with_dump = status_kib("VmRSS:").unwrap_or(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let symbols = Symbols::new(store, CacheConfig::default());
    for _ in 0..6 {
        rt.block_on(async {
            std::hint::black_box(symbols.process(&dump).await.unwrap());
        });
    }
    let stats = symbols.cache_stats();
    println!(
        "rss_kib start={at_start} with_dump={with_dump} end={} cache_estimate_kib={}",
        status_kib("VmRSS:").unwrap_or(0),
        stats.memory_bytes / 1024
    );
    println!(
        "peak_kib={} (now: anon {} KiB, file {} KiB)",
        status_kib("VmHWM:").unwrap_or(0),
        status_kib("RssAnon:").unwrap_or(0),
        status_kib("RssFile:").unwrap_or(0)
    );
}

/// minidump-stackwalk's max RSS on one dump, through `/usr/bin/time -f %M`.
fn stackwalk_peak_kib(case: &Case) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "minidump-stackwalk", "--json", "--symbols-path"])
        .arg(case.dir.join("symbols"))
        .arg(&case.dump)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

fn main() {
    if let Some(dump) = std::env::var_os(CHILD_ENV) {
        rss_child(Path::new(&dump));
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let warm_for = Duration::from_secs(
        std::env::var("MAYDAY_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    let cases = cases();
    let root = tempfile::tempdir().unwrap();
    let largest_sym = merge_trees(&cases, root.path());
    let store = SymbolStore::new(Arc::new(
        LocalFileSystem::new_with_prefix(root.path()).unwrap(),
    ));
    // Leaked so the parsed dumps can borrow them for the whole run.
    let dumps: Vec<minidump::Minidump<'static, &'static [u8]>> = cases
        .iter()
        .map(|c| {
            let bytes: &'static [u8] = Box::leak(c.bytes().into_boxed_slice());
            minidump::Minidump::read(bytes).unwrap()
        })
        .collect();
    let n = dumps.len();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    println!("mayday-symbols processing benchmark: {n} dumps from shared/testdata, one thread");
    println!("largest symbol file: {:.1} MiB", mib(largest_sym));
    let rss_start = status_kib("VmRSS:").unwrap_or(0);

    // Cold: fresh caches, each dump once (symbols read from the store and parsed).
    let symbols = Symbols::new(store.clone(), CacheConfig::default());
    let mut cold = Vec::new();
    for (case, dump) in cases.iter().zip(&dumps) {
        let start = Instant::now();
        rt.block_on(async {
            std::hint::black_box(symbols.process(dump).await.unwrap());
        });
        cold.push((case, start.elapsed()));
    }
    let cold_total: Duration = cold.iter().map(|(_, d)| *d).sum();

    // Warm: the same provider, all dumps round after round.
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < warm_for || rounds < 3 {
        rt.block_on(process_all(&symbols, &dumps));
        rounds += 1;
    }
    let warm_elapsed = start.elapsed();
    let warm_rate = (rounds * n as u64) as f64 / warm_elapsed.as_secs_f64();
    let peak_all = status_kib("VmHWM:").unwrap_or(0);
    let cache = symbols.cache_stats();
    drop(symbols);

    // Peak RSS of the warm loop on the dump with the largest symbol set alone, in a
    // fresh process (this one's allocator keeps what the phases above used).
    let biggest = cases
        .iter()
        .position(|c| c.dump.ends_with("firefox-windows-x86_64.dmp"))
        .unwrap_or(0);
    let child_peak = |nosyms: bool| {
        let exe = std::env::current_exe().ok()?;
        let mut cmd = Command::new(exe);
        cmd.env(CHILD_ENV, cases[biggest].dump.as_os_str());
        if nosyms {
            cmd.env(NOSYMS_ENV, "1");
        }
        let out = cmd.output().ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.strip_prefix("peak_kib=")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
    };
    let child_peak_kib = child_peak(false);
    let nosyms_peak_kib = child_peak(true);
    let biggest_syms = dir_size(&cases[biggest].dir.join("symbols"));

    println!();
    println!("cold caches (each dump once, fresh provider):");
    for (case, d) in &cold {
        println!(
            "  {:<70} {:>8.1} ms",
            shown(&case.dump),
            d.as_secs_f64() * 1000.0
        );
    }
    println!(
        "  total {:.1} ms, {:.1} reports/s",
        cold_total.as_secs_f64() * 1000.0,
        n as f64 / cold_total.as_secs_f64()
    );
    println!();
    println!(
        "warm caches: {rounds} rounds x {n} dumps in {:.2} s = {warm_rate:.1} reports/s ({:.2} ms/report)",
        warm_elapsed.as_secs_f64(),
        1000.0 / warm_rate
    );
    println!(
        "  cache: {} parsed files, {:.1} MiB estimated; {} parses, {} store fetches, {} evictions",
        cache.memory_entries,
        mib(cache.memory_bytes),
        cache.parses,
        cache.store_fetches,
        cache.evictions
    );

    println!();
    if stackwalk_available() {
        let sw_rounds = 3;
        let mut per_case = vec![Duration::ZERO; n];
        let start = Instant::now();
        for _ in 0..sw_rounds {
            for (i, case) in cases.iter().enumerate() {
                per_case[i] += run_stackwalk(case);
            }
        }
        let sw_elapsed = start.elapsed();
        let sw_rate = (sw_rounds * n) as f64 / sw_elapsed.as_secs_f64();
        println!("minidump-stackwalk --json, one process per dump ({sw_rounds} rounds):");
        for ((case, d), (_, cold_d)) in cases.iter().zip(&per_case).zip(&cold) {
            let mean = *d / sw_rounds as u32;
            println!(
                "  {:<70} {:>8.1} ms   (Symbols cold {:>7.1} ms)",
                shown(&case.dump),
                mean.as_secs_f64() * 1000.0,
                cold_d.as_secs_f64() * 1000.0
            );
        }
        println!(
            "  {sw_rate:.1} reports/s ({:.2} ms/report)",
            1000.0 / sw_rate
        );
        println!();
        println!(
            "RESULT warm Symbols {warm_rate:.1} reports/s vs minidump-stackwalk {sw_rate:.1} reports/s: {:.1}x (target >= 10x)",
            warm_rate / sw_rate
        );
        let sw_total: Duration = per_case.iter().sum::<Duration>() / sw_rounds as u32;
        println!(
            "RESULT cold Symbols {:.1} ms for all dumps vs minidump-stackwalk {:.1} ms: {:.2}x (target: no slower)",
            cold_total.as_secs_f64() * 1000.0,
            sw_total.as_secs_f64() * 1000.0,
            sw_total.as_secs_f64() / cold_total.as_secs_f64()
        );
    } else {
        println!(
            "minidump-stackwalk not found on PATH: comparison skipped \
             (install it with `cargo install minidump-stackwalk --locked`)"
        );
    }
    println!(
        "RESULT peak RSS, all {n} dumps warm in one process: {:.1} MiB = {:.1}x the largest .sym ({:.1} MiB); \
         {:.1} MiB before processing",
        peak_all as f64 / 1024.0,
        (peak_all * 1024) as f64 / largest_sym as f64,
        mib(largest_sym),
        rss_start as f64 / 1024.0
    );
    if let Some(peak) = child_peak_kib {
        println!(
            "RESULT peak RSS, warm loop on {} alone (its .sym files: {:.1} MiB) in a fresh process: \
             {:.1} MiB = {:.1}x the largest .sym (target < 3x)",
            cases[biggest].dump.file_name().unwrap().to_string_lossy(),
            mib(biggest_syms),
            peak as f64 / 1024.0,
            (peak * 1024) as f64 / largest_sym as f64
        );
    }
    if let Some(peak) = nosyms_peak_kib {
        println!(
            "  (the same warm loop with no symbols at all: {:.1} MiB = {:.1}x: the dump, the \
             program and the processor's own state, with more frames found by scanning)",
            peak as f64 / 1024.0,
            (peak * 1024) as f64 / largest_sym as f64
        );
    }
    if let Some(kib) = stackwalk_peak_kib(&cases[biggest]) {
        println!(
            "  (minidump-stackwalk --json on the same dump: max RSS {:.1} MiB, /usr/bin/time)",
            kib as f64 / 1024.0
        );
    }
}

/// A dump's path as the tables show it: relative to the testdata directory.
fn shown(dump: &Path) -> std::path::Display<'_> {
    dump.strip_prefix(testdata::dir()).unwrap_or(dump).display()
}
