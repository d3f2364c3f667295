//! Fuzzes the indexed `.sym` reader behind `Symbols`: whatever the bytes, storing
//! them as a module's symbol file, indexing it and looking up addresses in it never
//! panics; and for a file the upload checks accept (a one-line MODULE record first,
//! every line a record) that Breakpad's parser reads whole, the index loads it and
//! every lookup answers exactly as the fully parsed file does (what the index
//! promises). Breakpad's parser also reads a MODULE record whose fields run on into
//! the next lines; the index takes the first line alone, but no upload stores such
//! a file.
//!
//! Input: the `.sym` text. The addresses looked up are around the hex numbers in it
//! (record addresses and sizes), so the fuzzer steers them by editing the text.

#![no_main]

use std::sync::{Arc, LazyLock};

use breakpad_symbols::SimpleModule;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mayday_symbols::{CacheConfig, Lookup, SymbolId, SymbolStore, Symbols, check_sym, parse_sym};
use minidump_unwind::SymbolProvider;

#[path = "../../symbols/src/recorder.rs"]
mod recorder;
use recorder::Recorder;

const DEBUG_FILE: &str = "fuzz.pdb";
const DEBUG_ID: &str = "5A9832E5287241C1838ED98914E9B7FF1";
/// Numbers of the input that addresses are probed around.
const MAX_NUMBERS: usize = 24;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
});

/// Addresses around the input's hex numbers, read as (address, size) pairs: just
/// before, at, inside, at the end of and just past each range.
fn probes(sym: &[u8]) -> Vec<u64> {
    let numbers: Vec<u64> = sym
        .split(|b| b" \t\r\n".contains(b))
        .filter(|t| (1..=16).contains(&t.len()) && t.iter().all(u8::is_ascii_hexdigit))
        .map(|t| u64::from_str_radix(std::str::from_utf8(t).unwrap(), 16).unwrap())
        .collect();
    let step = numbers.len().div_ceil(MAX_NUMBERS).max(1);
    let picked: Vec<u64> = numbers.iter().copied().step_by(step).collect();
    let mut addrs = Vec::new();
    for (i, &start) in picked.iter().enumerate() {
        let size = numbers.get(i * step + 1).copied().unwrap_or(1);
        addrs.extend([
            start.wrapping_sub(1),
            start,
            start.wrapping_add(size / 2),
            start.wrapping_add(size).wrapping_sub(1),
            start.wrapping_add(size),
        ]);
    }
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

fuzz_target!(|data: &[u8]| {
    let store = Arc::new(object_store::memory::InMemory::new());
    let symbols = Symbols::new(SymbolStore::new(store), CacheConfig::default());
    let id = SymbolId::new(DEBUG_FILE, DEBUG_ID).unwrap();
    let module = SimpleModule::new(
        DEBUG_FILE,
        debugid::DebugId::from_breakpad(DEBUG_ID).unwrap(),
    );
    // The whole file through Breakpad's parser: the answers the index must give.
    let full = check_sym(data)
        .is_ok()
        .then(|| parse_sym(data).ok())
        .flatten();
    RUNTIME.block_on(async {
        symbols
            .store()
            .put(&id, Bytes::copy_from_slice(data))
            .await
            .unwrap();
        let loaded = symbols.lookup(&id).await == Lookup::Loaded;
        assert!(
            loaded || full.is_none(),
            "the index refused a file the full parse reads"
        );
        for instruction in probes(data) {
            let mut indexed = Recorder::at(instruction);
            let filled = symbols.fill_symbol(&module, &mut indexed).await;
            assert_eq!(filled.is_ok(), loaded);
            let mut walked = Recorder::at(instruction);
            let walk = symbols.walk_frame(&module, &mut walked).await;
            let (Some(full), true) = (&full, loaded) else {
                continue;
            };
            let mut expected = Recorder::at(instruction);
            full.fill_symbol(&module, &mut expected);
            assert_eq!(indexed, expected, "fill_symbol at {instruction:x}");
            let mut expected = Recorder::at(instruction);
            let expected_walk = full.walk_frame(&module, &mut expected);
            // Registers are set in hash map order: compare them as sets.
            walked.calls.sort();
            expected.calls.sort();
            assert_eq!(
                (walk, walked),
                (expected_walk, expected),
                "walk_frame at {instruction:x}"
            );
        }
    });
});
