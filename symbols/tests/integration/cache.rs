//! The caches: memory bounded by bytes, disk bounded by bytes, negative with a TTL.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mayday_symbols::{CacheConfig, Lookup, SymbolId, SymbolStore, Symbols};
use object_store::memory::InMemory;

use crate::support;

/// Symbols over an in-memory store holding the minidump2 case (two files).
async fn minidump2_symbols(config: CacheConfig) -> (Symbols, SymbolStore, Vec<SymbolId>) {
    let store = SymbolStore::new(Arc::new(InMemory::new()));
    let case = support::case_dir("breakpad-win-x86-minidump2");
    let mut ids = Vec::new();
    for (debug_file, debug_id, path) in support::tree_files(&case) {
        let id = SymbolId::new(&debug_file, &debug_id).unwrap();
        store
            .put(&id, Bytes::from(std::fs::read(path).unwrap()))
            .await
            .unwrap();
        ids.push(id);
    }
    (Symbols::new(store.clone(), config), store, ids)
}

#[tokio::test]
async fn memory_cache_evicts_when_over_budget() {
    // Find how big each parsed file is with an unbounded cache.
    let (symbols, _, ids) = minidump2_symbols(CacheConfig::default()).await;
    let mut sizes = Vec::new();
    for id in &ids {
        let before = symbols.cache_stats().memory_bytes;
        assert_eq!(symbols.lookup(id).await, Lookup::Loaded, "{id:?}");
        sizes.push(symbols.cache_stats().memory_bytes - before);
    }
    assert!(sizes.iter().all(|&s| s > 10_000), "{sizes:?}");

    // A budget that fits the larger file but not both.
    let budget = *sizes.iter().max().unwrap() + 1000;
    let (symbols, _, ids) = minidump2_symbols(CacheConfig {
        memory_bytes: budget,
        ..CacheConfig::default()
    })
    .await;
    for id in &ids {
        symbols.lookup(id).await;
        let stats = symbols.cache_stats();
        assert!(stats.memory_bytes <= budget, "{stats:?}");
    }
    let stats = symbols.cache_stats();
    assert_eq!(stats.memory_entries, 1, "{stats:?}");
    assert_eq!(stats.evictions, 1, "{stats:?}");
    assert_eq!(stats.parses, 2);
    // The evicted one is parsed again; the other is a hit.
    symbols.lookup(&ids[1]).await;
    assert_eq!(symbols.cache_stats().parses, 2);
    symbols.lookup(&ids[0]).await;
    assert_eq!(symbols.cache_stats().parses, 3);

    // Processing still works under a budget smaller than any file: nothing kept.
    let (symbols, _, _) = minidump2_symbols(CacheConfig {
        memory_bytes: 1000,
        ..CacheConfig::default()
    })
    .await;
    let dump =
        support::read_dump(&support::case_dir("breakpad-win-x86-minidump2").join("minidump2.dmp"));
    let (state, missing) = symbols.process(&dump).await.unwrap();
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(
        state.threads[0].frames[1].function_name.as_deref(),
        Some("main")
    );
    assert_eq!(symbols.cache_stats().memory_entries, 0);
}

#[tokio::test]
async fn open_files_are_bounded_by_count() {
    let (symbols, _, ids) = minidump2_symbols(CacheConfig {
        max_open_files: 1,
        ..CacheConfig::default()
    })
    .await;
    for id in &ids {
        assert_eq!(symbols.lookup(id).await, Lookup::Loaded);
    }
    let stats = symbols.cache_stats();
    assert_eq!((stats.memory_entries, stats.evictions), (1, 1), "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn negative_cache_expires_and_invalidate_forgets() {
    let ttl = Duration::from_secs(3600);
    let (symbols, store, _) = minidump2_symbols(CacheConfig {
        negative_ttl: ttl,
        ..CacheConfig::default()
    })
    .await;
    let absent = SymbolId::new("absent.pdb", "0123456789ABCDEF0123456789ABCDEF1").unwrap();

    assert_eq!(symbols.lookup(&absent).await, Lookup::Missing);
    assert_eq!(symbols.cache_stats().store_fetches, 1);
    // Remembered: the store is not asked again within the TTL.
    tokio::time::advance(ttl - Duration::from_secs(1)).await;
    assert_eq!(symbols.lookup(&absent).await, Lookup::Missing);
    let stats = symbols.cache_stats();
    assert_eq!(
        (stats.store_fetches, stats.negative_hits),
        (1, 1),
        "{stats:?}"
    );
    // Expired: asked again.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(symbols.lookup(&absent).await, Lookup::Missing);
    assert_eq!(symbols.cache_stats().store_fetches, 2);

    // Uploaded now: without invalidate it is still "missing" for an hour ...
    let sym = b"MODULE windows x86 0123456789ABCDEF0123456789ABCDEF1 absent.pdb\nPUBLIC 1000 0 f\n";
    store.put(&absent, Bytes::from_static(sym)).await.unwrap();
    assert_eq!(symbols.lookup(&absent).await, Lookup::Missing);
    // ... and found at once after invalidate.
    symbols.invalidate(&absent);
    assert_eq!(symbols.lookup(&absent).await, Lookup::Loaded);
}

#[tokio::test]
async fn corrupt_symbols_are_flagged_and_remembered() {
    let store = SymbolStore::new(Arc::new(InMemory::new()));
    let id = SymbolId::new("bad.pdb", "0123456789ABCDEF0123456789ABCDEF1").unwrap();
    store
        .put(
            &id,
            Bytes::from_static(
                b"MODULE windows x86 0123456789ABCDEF0123456789ABCDEF1 bad.pdb\nFUNC zz\n",
            ),
        )
        .await
        .unwrap();
    let symbols = Symbols::new(store, CacheConfig::default());
    assert_eq!(symbols.lookup(&id).await, Lookup::Corrupt);
    // Not parsed again within the TTL.
    assert_eq!(symbols.lookup(&id).await, Lookup::Missing);
    assert_eq!(symbols.cache_stats().parses, 1);
}

#[tokio::test]
async fn disk_cache_serves_after_restart_and_stays_in_budget() {
    let cache_dir = tempfile::tempdir().unwrap();
    let (symbols, _, ids) = minidump2_symbols(CacheConfig {
        disk_dir: Some(cache_dir.path().to_owned()),
        ..CacheConfig::default()
    })
    .await;
    for id in &ids {
        assert_eq!(symbols.lookup(id).await, Lookup::Loaded);
        assert!(cache_dir.path().join(id.rel_path()).is_file(), "{id:?}");
    }
    drop(symbols);

    // A new process with an empty store still finds them on disk.
    let empty = SymbolStore::new(Arc::new(InMemory::new()));
    let symbols = Symbols::new(
        empty.clone(),
        CacheConfig {
            disk_dir: Some(cache_dir.path().to_owned()),
            ..CacheConfig::default()
        },
    );
    for id in &ids {
        assert_eq!(symbols.lookup(id).await, Lookup::Loaded, "{id:?}");
    }
    let stats = symbols.cache_stats();
    assert_eq!((stats.disk_hits, stats.store_fetches), (2, 0), "{stats:?}");

    // invalidate deletes the disk copy too.
    symbols.invalidate(&ids[0]);
    assert!(!cache_dir.path().join(ids[0].rel_path()).exists());
    assert_eq!(symbols.lookup(&ids[0]).await, Lookup::Missing);

    // Reopened with a budget for one file: the older one is deleted.
    let small = std::fs::metadata(cache_dir.path().join(ids[1].rel_path()))
        .unwrap()
        .len();
    let symbols = Symbols::new(
        empty,
        CacheConfig {
            disk_dir: Some(cache_dir.path().to_owned()),
            disk_bytes: small,
            ..CacheConfig::default()
        },
    );
    assert!(symbols.cache_stats().disk_bytes <= small);
}

#[tokio::test]
async fn disk_cache_is_bounded_while_filling() {
    let cache_dir = tempfile::tempdir().unwrap();
    let case = support::case_dir("breakpad-win-x86-minidump2");
    let sizes: Vec<u64> = support::tree_files(&case)
        .iter()
        .map(|(_, _, p)| std::fs::metadata(p).unwrap().len())
        .collect();
    let budget = *sizes.iter().max().unwrap();
    let (symbols, _, ids) = minidump2_symbols(CacheConfig {
        disk_dir: Some(cache_dir.path().to_owned()),
        disk_bytes: budget,
        ..CacheConfig::default()
    })
    .await;
    for id in &ids {
        symbols.lookup(id).await;
        assert!(symbols.cache_stats().disk_bytes <= budget);
    }
    let on_disk = ids
        .iter()
        .filter(|id| cache_dir.path().join(id.rel_path()).exists())
        .count();
    assert_eq!(on_disk, 1);
}

#[test]
fn cache_config_is_a_toml_section_with_defaults() {
    let config: CacheConfig =
        toml::from_str("memory_bytes = 1000\nnegative_ttl = \"5m\"\n").unwrap();
    assert_eq!(config.memory_bytes, 1000);
    assert_eq!(config.negative_ttl, Duration::from_secs(300));
    assert_eq!(config.disk_dir, None);
    assert_eq!(config.disk_bytes, CacheConfig::default().disk_bytes);
    let default: CacheConfig = toml::from_str("").unwrap();
    assert_eq!(default, CacheConfig::default());
    assert_eq!(default.negative_ttl, Duration::from_secs(3600));
}

/// Reports processed at once, with one symbol file loaded at a time: each file is
/// still fetched and indexed once, and every report gets the frames it gets alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_in_flight_are_bounded_without_changing_results() {
    let case = support::case_dir("mozilla-firefox-win-x64");
    let dump = Arc::new(support::read_dump(&case.join("firefox-windows-x86_64.dmp")));
    let frames = |state: &minidump_processor::ProcessState| -> Vec<Option<String>> {
        state
            .threads
            .iter()
            .flat_map(|t| &t.frames)
            .map(|f| f.function_name.clone())
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let alone = support::symbols_for(&case, &dir.path().join("a"), CacheConfig::default());
    let (expected, _) = alone.process(&dump).await.unwrap();
    let expected = frames(&expected);
    assert!(expected.iter().filter(|f| f.is_some()).count() > 100);

    let symbols = support::symbols_for(
        &case,
        &dir.path().join("b"),
        CacheConfig {
            max_concurrent_loads: 1,
            ..CacheConfig::default()
        },
    );
    let reports: Vec<_> = (0..4)
        .map(|_| {
            let (symbols, dump) = (symbols.clone(), Arc::clone(&dump));
            tokio::spawn(async move { symbols.process(&dump).await.unwrap().0 })
        })
        .collect();
    for report in reports {
        assert_eq!(frames(&report.await.unwrap()), expected);
    }
    let files = support::tree_files(&case).len() as u64;
    let stats = symbols.cache_stats();
    // Modules without symbols are asked for once too, then remembered as missing.
    assert_eq!(stats.parses, files, "{stats:?}");
    assert_eq!(
        stats.store_fetches,
        files + stats.negative_entries as u64,
        "{stats:?}"
    );
    let config: CacheConfig = toml::from_str("max_concurrent_loads = 3").unwrap();
    assert_eq!(config.max_concurrent_loads, 3);
}

/// An upload counted anywhere (another server process) makes this one forget what
/// it remembers as missing; the same count again changes nothing.
#[tokio::test]
async fn a_moved_upload_count_forgets_missing_files() {
    let (symbols, _, _) = minidump2_symbols(CacheConfig::default()).await;
    let absent = SymbolId::new("absent.pdb", "0123456789ABCDEF0123456789ABCDEF1").unwrap();
    assert!(symbols.sync_uploads(7), "the first count always moves");
    assert_eq!(symbols.lookup(&absent).await, Lookup::Missing);
    assert_eq!(symbols.cache_stats().negative_entries, 1);
    assert!(!symbols.sync_uploads(7));
    assert_eq!(symbols.lookup(&absent).await, Lookup::Missing);
    assert_eq!(
        symbols.cache_stats().store_fetches,
        1,
        "answered from memory"
    );
    // Sessions share the count with the provider they came from.
    assert!(symbols.session().sync_uploads(8));
    assert_eq!(symbols.cache_stats().negative_entries, 0);
    assert_eq!(symbols.lookup(&absent).await, Lookup::Missing);
    assert_eq!(
        symbols.cache_stats().store_fetches,
        2,
        "asked the store again"
    );
}
