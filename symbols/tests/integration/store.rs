//! The symbol store on real object stores.

use std::sync::Arc;

use bytes::Bytes;
use mayday_symbols::{StoreSymbolSupplier, SymbolId, SymbolStore};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use crate::support;

async fn round_trip(store: Arc<dyn ObjectStore>) {
    let store = SymbolStore::new(store);
    let id = SymbolId::new("test_app.pdb", "5A9832E5287241C1838ED98914E9B7FF1").unwrap();
    assert!(!store.contains(&id).await.unwrap());
    assert_eq!(store.get(&id).await.unwrap(), None);
    let sym =
        Bytes::from_static(b"MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 test_app.pdb\n");
    store.put(&id, sym.clone()).await.unwrap();
    assert!(store.contains(&id).await.unwrap());
    assert_eq!(store.get(&id).await.unwrap(), Some(sym));
    let other = SymbolId::new("test_app.pdb", "5A9832E5287241C1838ED98914E9B7FF2").unwrap();
    assert!(!store.contains(&other).await.unwrap());
}

#[tokio::test]
async fn round_trip_in_memory() {
    round_trip(Arc::new(InMemory::new())).await;
}

#[tokio::test]
async fn round_trip_on_local_files_uses_the_breakpad_layout() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(Arc::new(
        LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
    ))
    .await;
    let on_disk = dir
        .path()
        .join("symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym");
    assert!(on_disk.is_file(), "{on_disk:?} missing");
}

/// The text of the file `get_file` hands over, from its start.
fn text_of(file: std::fs::File) -> Vec<u8> {
    use std::io::{Read, Seek};
    let mut file = file;
    file.rewind().unwrap();
    let mut text = Vec::new();
    file.read_to_end(&mut text).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbol_file_is_handed_over_as_a_file_that_keeps_its_text_when_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [Arc<dyn ObjectStore>; 2] = [
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
        Arc::new(InMemory::new()),
    ];
    let id = SymbolId::new("test_app.pdb", "5A9832E5287241C1838ED98914E9B7FF1").unwrap();
    let old = Bytes::from_static(
        b"MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 test_app.pdb\nPUBLIC 1000 0 old\n",
    );
    let new = Bytes::from_static(
        b"MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 test_app.pdb\nPUBLIC 1000 0 new\n",
    );
    for store in stores {
        let store = SymbolStore::new(store);
        assert!(store.get_file(&id).await.unwrap().is_none());
        store.put(&id, old.clone()).await.unwrap();
        let file = store.get_file(&id).await.unwrap().unwrap();
        // An upload for the same module while the file is held.
        store.put(&id, new.clone()).await.unwrap();
        assert_eq!(text_of(file), old);
        let file = store.get_file(&id).await.unwrap().unwrap();
        assert_eq!(text_of(file), new);
    }
}

#[tokio::test]
async fn a_testdata_tree_copied_into_a_store_is_found_by_module_names() {
    // The libc .sym's MODULE line says libc-2.32.so; the minidump records libc.so.6,
    // and that is the name the tree (and the store) files it under.
    let dir = tempfile::tempdir().unwrap();
    let case = support::case_dir("mozilla-firefox-linux-x64");
    let store = SymbolStore::new(support::local_store(&case, dir.path()));
    for (debug_file, debug_id, _) in support::tree_files(&case) {
        let id = SymbolId::new(&debug_file, &debug_id).unwrap();
        assert!(store.contains(&id).await.unwrap(), "{id:?}");
    }

    let symbolizer = breakpad_symbols::Symbolizer::new(StoreSymbolSupplier::new(store));
    let dump = support::read_dump(&case.join("firefox-linux-x86_64.dmp"));
    let state = minidump_processor::process_minidump(&dump, &symbolizer)
        .await
        .unwrap();
    let frames = &state.threads[0].frames;
    let names: Vec<_> = frames
        .iter()
        .map(|f| f.function_name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names[17], "main", "{names:?}");
    assert_eq!(names[18], "__libc_start_main", "{names:?}");
    assert_eq!(names[19], "_start", "{names:?}");
}
