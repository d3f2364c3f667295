//! What a worker does with a dump between loading it and storing the result,
//! on every shared test data dump (scrubbed as ingest stores it, with the
//! default rules) with its symbols, caches warm: processing
//! (`process_dump`: minidump-processor's walk and the report built from it),
//! then the report's end (`scrub_report`, `stored::encode`: serialized and
//! compressed, and the report dropped). One thread; prints ms per report of each,
//! in all and for each dump (with its share of the round), so that the dumps
//! that cost most are seen first.
//!
//! ```sh
//! cargo bench -p mayday-server --bench report
//! ```
//!
//! `MAYDAY_BENCH_ROUNDS` (default 5) sets the measured rounds over all dumps,
//! after one to warm the caches; `MAYDAY_BENCH_DUMPS` which dumps (parts of
//! their paths, comma-separated; default all), as in the `throughput` bench.
//! A component figure, for comparing changes to these steps (also under
//! `valgrind --tool=cachegrind`: run with 1 and 3 rounds, the difference over 2
//! is one round's instructions); the system's figures are the `throughput`
//! bench's of `mayday-tests`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mayday_report::scrub::{AnnotationRules, ScrubConfig, scrub_minidump};
use mayday_server::pipeline::process::{process_dump, scrub_report};
use mayday_server::pipeline::signature::SignatureRules;
use mayday_server::pipeline::stored;
use mayday_symbols::{CacheConfig, SymbolStore, Symbols};
use object_store::local::LocalFileSystem;

// The shared test data's dumps, by the walk the end-to-end tests use (a file of
// the mayday-tests crate, which depends on this one), included as a module.
#[allow(dead_code)]
#[path = "../../tests/src/testdata.rs"]
mod testdata;

/// One dump and the symbols of its case.
struct Input {
    name: String,
    bytes: Vec<u8>,
    symbols: Symbols,
}

/// The dump at `path` as a worker loads it: scrubbed with the default rules
/// (what ingest stores; the memory maps, for one, are gone).
fn stored_dump(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("test dump");
    scrub_minidump(&mut bytes, &ScrubConfig::default()).expect("test dump scrubs");
    bytes
}

fn main() {
    let rounds: u32 = std::env::var("MAYDAY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let inputs: Vec<Input> = testdata::cases()
        .into_iter()
        .filter(|case| testdata::chosen_for_bench(&case.dump))
        .map(|case| {
            let store = LocalFileSystem::new_with_prefix(&case.dir).expect("case directory");
            Input {
                name: case
                    .dump
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                bytes: stored_dump(&case.dump),
                symbols: Symbols::new(SymbolStore::new(Arc::new(store)), CacheConfig::default()),
            }
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rules = AnnotationRules::default();
    let signatures = SignatureRules::default();
    // Per dump: (processing, the report's end).
    let mut spent = vec![(Duration::ZERO, Duration::ZERO); inputs.len()];
    let mut stored_bytes = 0usize;
    for round in 0..=rounds {
        for (input, spent) in inputs.iter().zip(&mut spent) {
            let start = Instant::now();
            let report = runtime.block_on(process_dump(
                "bp-6f1c8a2e-3b4d-4e5f-9a0b-1c2d3e4f5a6b",
                &input.bytes,
                BTreeMap::new(),
                &rules,
                &signatures,
                &input.symbols.session(),
            ));
            let mut report = report.unwrap_or_else(|e| panic!("{}: {e}", input.name));
            let processed = Instant::now();
            scrub_report(&mut report, &rules);
            let plain = stored::encode(&report, 0).expect("report serializes");
            drop(report);
            let ended = Instant::now();
            // The first round warms the symbol caches.
            if round > 0 {
                spent.0 += processed - start;
                spent.1 += ended - processed;
                stored_bytes += plain.len();
            }
            std::hint::black_box(plain);
        }
    }
    let ms = |d: Duration, reports: f64| d.as_secs_f64() * 1000.0 / reports;
    let (process, end) = spent
        .iter()
        .fold((Duration::ZERO, Duration::ZERO), |(p, e), s| {
            (p + s.0, e + s.1)
        });
    for (input, (p, e)) in inputs.iter().zip(&spent) {
        println!(
            "{:<40} {:>6} KB: process {:7.3} ms, end {:6.3} ms per report; {:4.1}% of a round",
            input.name,
            input.bytes.len() / 1024,
            ms(*p, f64::from(rounds)),
            ms(*e, f64::from(rounds)),
            100.0 * (*p + *e).as_secs_f64() / (process + end).as_secs_f64()
        );
    }
    let reports = f64::from(rounds) * inputs.len() as f64;
    println!(
        "{} dumps x {rounds} rounds, warm: process {:.3} ms, end (scrub, serialize, compress, drop) {:.3} ms per report; stored {:.0} KB per report",
        inputs.len(),
        ms(process, reports),
        ms(end, reports),
        stored_bytes as f64 / reports / 1024.0
    );
}
