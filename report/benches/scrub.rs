//! How fast `scrub_minidump` scrubs the shared test data dumps: the scrub stage
//! of every upload the server takes in (`cargo bench -p mayday-report --bench scrub`).
//!
//! Each dump is scrubbed from a fresh copy of its bytes, over and over for about
//! a second (`MAYDAY_BENCH_RUNS=n`: n times); the figures are the mean time per
//! dump and the bytes scrubbed per second, one dump at a time on one thread, then
//! all of them together. `cargo bench … -- <text>` scrubs only the dumps whose
//! name holds the text.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mayday_report::scrub::{ScrubConfig, scrub_minidump};

/// The test data directory (`../shared/testdata` beside the repository).
fn testdata() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata"
    ))
}

/// Every `.dmp` one directory below `dir`.
fn dumps(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(cases) = std::fs::read_dir(dir) else {
        return out;
    };
    for case in cases.flatten() {
        let Ok(files) = std::fs::read_dir(case.path()) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "dmp") {
                let name = format!(
                    "{}/{}",
                    case.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                );
                out.push((name, std::fs::read(&path).expect("dump readable")));
            }
        }
    }
    out.sort();
    out
}

fn main() {
    // `cargo bench … -- <text>`: only the dumps whose name holds it.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut dumps = dumps(&testdata());
    dumps.retain(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f)));
    if dumps.is_empty() {
        eprintln!("no dumps (to match) under {}", testdata().display());
        std::process::exit(2);
    }
    // `MAYDAY_BENCH_RUNS=n`: exactly n scrubs of each dump (for instruction
    // counts under valgrind, which do not move with the machine's load).
    let fixed_runs: Option<u32> = std::env::var("MAYDAY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok());
    let config = ScrubConfig::default();
    let mut total_bytes = 0usize;
    let mut total_time = Duration::ZERO;
    for (name, dump) in &dumps {
        let mut runs = 0u32;
        let started = Instant::now();
        while match fixed_runs {
            Some(n) => runs < n,
            None => started.elapsed() < Duration::from_millis(700) || runs < 3,
        } {
            let mut copy = dump.clone();
            let summary = scrub_minidump(&mut copy, &config);
            std::hint::black_box(summary.ok());
            runs += 1;
        }
        let per = started.elapsed() / runs;
        total_bytes += dump.len();
        total_time += per;
        println!(
            "{name:<70} {:>9} bytes {:>8.2} ms {:>7.1} MB/s",
            dump.len(),
            per.as_secs_f64() * 1e3,
            dump.len() as f64 / per.as_secs_f64() / 1e6
        );
    }
    println!(
        "RESULT scrub: {} dumps, {:.1} MB, {:.2} ms per dump on average, {:.1} MB/s",
        dumps.len(),
        total_bytes as f64 / 1e6,
        total_time.as_secs_f64() * 1e3 / dumps.len() as f64,
        total_bytes as f64 / total_time.as_secs_f64() / 1e6
    );
}
