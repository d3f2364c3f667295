//! Processing the shared test data's minidumps through `Symbols`.

use std::collections::BTreeMap;

use mayday_symbols::{CacheConfig, Lookup, SymbolId};
use serde_json::Value;

use crate::support;

/// The processed state as minidump-stackwalk's `--json` would print it.
fn json_of(state: &minidump_processor::ProcessState) -> Value {
    let mut out = Vec::new();
    state.print_json(&mut out, false).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn crashing_functions(json: &Value) -> Vec<(String, Option<String>)> {
    json["crashing_thread"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["module"].as_str().unwrap_or_default().to_owned(),
                f["function"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Every frame of every thread: what symbolication and unwinding produced.
fn all_frames(json: &Value) -> Vec<Vec<String>> {
    json["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    format!(
                        "{} {} {} {} {} {} {}",
                        f["module"],
                        f["offset"],
                        f["trust"],
                        f["function"],
                        f["function_offset"],
                        f["file"],
                        f["line"]
                    )
                })
                .collect()
        })
        .collect()
}

fn module_flags(json: &Value) -> BTreeMap<String, (bool, bool, bool)> {
    json["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["filename"].as_str().unwrap().to_owned(),
                (
                    m["loaded_symbols"].as_bool().unwrap(),
                    m["missing_symbols"].as_bool().unwrap(),
                    m["corrupt_symbols"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_testdata_dump_gives_the_reference_crashing_stack() {
    for case in support::cases() {
        let root = tempfile::tempdir().unwrap();
        let symbols = support::symbols_for(&case.dir, root.path(), CacheConfig::default());
        let dump = support::read_dump(&case.dump);
        let (state, missing) = symbols.process(&dump).await.unwrap();
        let ours = json_of(&state);
        let reference: Value =
            serde_json::from_slice(&std::fs::read(&case.reference).unwrap()).unwrap();
        let name = case.dump.display().to_string();

        let mut expected = crashing_functions(&reference);
        let mut expected_flags = module_flags(&reference);
        if case.dump.ends_with("linux_inline.dmp") {
            // The reference tool rejects this .sym (no final newline); Mayday reads it.
            assert_eq!(expected[0], ("linux_inline".into(), None));
            expected[0].1 = Some("main".into());
            expected_flags.insert("linux_inline".into(), (true, false, false));
            let ours = crashing_functions(&ours);
            assert_eq!(ours[0], expected[0], "{name}");
            continue;
        }
        assert_eq!(crashing_functions(&ours), expected, "{name}");
        // Every thread, every frame: module, address, trust, function, file, line.
        let (ours_all, reference_all) = (all_frames(&ours), all_frames(&reference));
        assert_eq!(ours_all.len(), reference_all.len(), "{name}: threads");
        for (i, (a, b)) in ours_all.iter().zip(&reference_all).enumerate() {
            assert_eq!(a, b, "{name}: thread {i}");
        }
        assert_eq!(
            ours["crash_info"], reference["crash_info"],
            "{name}: crash info"
        );
        // Which modules had symbols: this comes from the provider's stats().
        let ours_flags = module_flags(&ours);
        if !case.dir.join("symbols").exists() {
            // The reference ran without a symbol path, so it has no statistics and
            // flags nothing; Mayday looked and flags each module it needed as missing.
            assert!(ours_flags.values().all(|(loaded, _, _)| !loaded), "{name}");
            for (module, _) in crashing_functions(&ours) {
                if let Some(flags) = ours_flags.get(&module) {
                    assert_eq!(*flags, (false, true, false), "{name}: {module}");
                }
            }
            assert!(!missing.is_empty(), "{name}");
            continue;
        }
        let differing: Vec<_> = expected_flags
            .iter()
            .filter(|(module, flags)| ours_flags.get(*module) != Some(flags))
            .map(|(module, flags)| (module, flags, ours_flags.get(module)))
            .collect();
        assert!(
            differing.is_empty() && ours_flags.len() == expected_flags.len(),
            "{name}: module symbol flags (loaded, missing, corrupt) differ: {differing:?}"
        );

        // Nothing listed as missing is in the case's symbol tree.
        for id in &missing {
            assert!(
                !case.dir.join("symbols").join(id.rel_path()).exists(),
                "{name}: {id:?} reported missing but present"
            );
        }
    }
}

#[tokio::test]
async fn a_sym_without_final_newline_symbolicates_with_inlines() {
    let root = tempfile::tempdir().unwrap();
    let (symbols, dump) = support::case_symbols_and_dump(
        "breakpad-linux-x64-inline",
        "linux_inline.dmp",
        root.path(),
    );
    let (state, _) = symbols.process(&dump).await.unwrap();
    let frame = &state.threads[0].frames[0];
    assert_eq!(frame.function_name.as_deref(), Some("main"));
    assert_eq!(frame.source_file_name.as_deref(), Some("a.cpp"));
    assert_eq!(frame.source_line, Some(42));
    let inlines: Vec<_> = frame
        .inlines
        .iter()
        .map(|i| {
            (
                i.function_name.as_str(),
                i.source_file_name.as_deref(),
                i.source_line,
            )
        })
        .collect();
    // Innermost first, as in Breakpad's own resolver test.
    assert_eq!(
        inlines,
        [
            ("func()", Some("linux_inline.cpp"), Some(27)),
            ("bar()", Some("c.cpp"), Some(32)),
            ("foo()", Some("b.cpp"), Some(39)),
        ]
    );
}

#[tokio::test]
async fn missing_symbols_are_reported_per_report() {
    let root = tempfile::tempdir().unwrap();
    let (symbols, dump) = support::case_symbols_and_dump(
        "mozilla-firefox-linux-x64",
        "firefox-linux-x86_64.dmp",
        root.path(),
    );

    let (state, missing) = symbols.process(&dump).await.unwrap();
    let libxul = missing
        .iter()
        .find(|id| id.debug_file == "libxul.so")
        .expect("libxul.so has no symbols in the test data");
    assert_eq!(libxul.debug_id.len(), 33);
    let stats = &state.symbol_stats;
    assert!(!stats["libxul.so"].loaded_symbols);
    assert!(stats["libc.so.6"].loaded_symbols);
    assert!(stats["firefox-bin"].loaded_symbols);

    // A second report through the same shared provider has its own statistics.
    let other = support::case_dir("breakpad-win-x86-minidump2");
    let root2 = tempfile::tempdir().unwrap();
    support::copy_tree(&other, root2.path());
    let session = symbols.session();
    let dump2 = support::read_dump(&other.join("minidump2.dmp"));
    let state2 = minidump_processor::process_minidump(&dump2, &session)
        .await
        .unwrap();
    assert!(!state2.symbol_stats.contains_key("libxul.so"));
    assert!(state2.symbol_stats.contains_key("test_app.exe"));
    // test_app.pdb is not in this store: missing, and listed as such.
    assert!(!state2.symbol_stats["test_app.exe"].loaded_symbols);
    let lookups = session.lookups();
    assert!(
        lookups
            .iter()
            .any(|(id, outcome)| id.debug_file == "test_app.pdb" && *outcome == Lookup::Missing)
    );
    assert!(
        session
            .missing()
            .contains(&SymbolId::new("test_app.pdb", "5A9832E5287241C1838ED98914E9B7FF1").unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reports_share_one_parse_per_file() {
    let root = tempfile::tempdir().unwrap();
    let case = support::case_dir("mozilla-firefox-linux-x64");
    let symbols = support::symbols_for(&case, root.path(), CacheConfig::default());
    let dump = std::sync::Arc::new(support::read_dump(&case.join("firefox-linux-x86_64.dmp")));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (symbols, dump) = (symbols.clone(), dump.clone());
        tasks.push(tokio::spawn(async move {
            let (state, _) = symbols.process(&dump).await.unwrap();
            state.threads[0].frames[17].function_name.clone()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().as_deref(), Some("main"));
    }
    let stats = symbols.cache_stats();
    let files = support::tree_files(&case).len() as u64;
    assert!(
        stats.parses <= files,
        "{stats:?}: each file parsed once at most"
    );
    assert!(
        stats.store_fetches <= stats.parses + stats.negative_entries as u64 + 2,
        "{stats:?}"
    );
}
