//! What a worker does with a dump between loading it and storing the result,
//! on every shared test data dump with its symbols, caches warm: processing
//! (`process_dump`: minidump-processor's walk and the report built from it),
//! then the report's end (`scrub_report`, `stored::encode`: serialized and
//! compressed, and the report dropped). One thread; prints ms per report of each.
//!
//! ```sh
//! cargo bench -p mayday-server --bench report
//! ```
//!
//! `MAYDAY_BENCH_ROUNDS` (default 5) sets the measured rounds over all dumps,
//! after one to warm the caches. A component figure, for comparing changes to
//! these steps (also under `valgrind --tool=cachegrind`: run with 1 and 3
//! rounds, the difference over 2 is one round's instructions); the system's
//! figures are the `throughput` bench's of `mayday-tests`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mayday_report::scrub::AnnotationRules;
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

fn main() {
    let rounds: u32 = std::env::var("MAYDAY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let inputs: Vec<Input> = testdata::cases()
        .into_iter()
        .map(|case| {
            let store = LocalFileSystem::new_with_prefix(&case.dir).expect("case directory");
            Input {
                name: case
                    .dump
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                bytes: std::fs::read(&case.dump).expect("test dump"),
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
    let mut process = Duration::ZERO;
    let mut end = Duration::ZERO;
    let mut stored_bytes = 0usize;
    for round in 0..=rounds {
        for input in &inputs {
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
                process += processed - start;
                end += ended - processed;
                stored_bytes += plain.len();
            }
            std::hint::black_box(plain);
        }
    }
    let reports = f64::from(rounds) * inputs.len() as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / reports;
    println!(
        "{} dumps x {rounds} rounds, warm: process {:.3} ms, end (scrub, serialize, compress, drop) {:.3} ms per report; stored {:.0} KB per report",
        inputs.len(),
        ms(process),
        ms(end),
        stored_bytes as f64 / reports / 1024.0
    );
}
