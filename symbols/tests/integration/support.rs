//! Fixtures: the shared test data, symbol trees copied into stores.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mayday_symbols::{CacheConfig, SymbolStore, Symbols};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

/// The shared real-world test data.
pub fn testdata() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata"
    ))
}

/// One minidump of the test data with its reference output.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case directory (holds `symbols/` when the case has symbols).
    pub dir: PathBuf,
    /// The minidump.
    pub dump: PathBuf,
    /// minidump-stackwalk 0.27.0's `--json` output for it.
    pub reference: PathBuf,
}

/// Every dump of the test data that has a reference output.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut dumps: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "dmp"))
            .collect();
        dumps.sort();
        for dump in dumps {
            let stem = dump.file_stem().unwrap().to_string_lossy().into_owned();
            let reference = dir
                .join("reference")
                .join(format!("{stem}.minidump-stackwalk-0.27.0.json"));
            if reference.exists() {
                cases.push(Case {
                    dir: dir.clone(),
                    dump,
                    reference,
                });
            }
        }
    }
    assert!(cases.len() >= 13, "test data incomplete: {cases:?}");
    cases
}

/// The case directory named `name`.
pub fn case_dir(name: &str) -> PathBuf {
    testdata().join(name)
}

/// Copies `<case>/symbols/**` to `<root>/symbols/**`.
pub fn copy_tree(case: &Path, root: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let symbols = case.join("symbols");
    if symbols.exists() {
        copy(&symbols, &root.join("symbols"));
    } else {
        std::fs::create_dir_all(root.join("symbols")).unwrap();
    }
}

/// A LocalFileSystem store holding the case's symbol tree under `symbols/`.
pub fn local_store(case: &Path, root: &Path) -> Arc<dyn ObjectStore> {
    copy_tree(case, root);
    Arc::new(LocalFileSystem::new_with_prefix(root).unwrap())
}

/// `Symbols` over the case's symbol tree (LocalFileSystem) with `config`.
pub fn symbols_for(case: &Path, root: &Path, config: CacheConfig) -> Symbols {
    Symbols::new(SymbolStore::new(local_store(case, root)), config)
}

/// `Symbols` with the default caches over the symbol tree of testdata case
/// `name` (copied below `root`), and the case's dump `dump`.
pub fn case_symbols_and_dump(
    name: &str,
    dump: &str,
    root: &Path,
) -> (Symbols, minidump::Minidump<'static, Vec<u8>>) {
    let case = case_dir(name);
    let symbols = symbols_for(&case, root, CacheConfig::default());
    (symbols, read_dump(&case.join(dump)))
}

/// Reads a minidump.
pub fn read_dump(path: &Path) -> minidump::Minidump<'static, Vec<u8>> {
    minidump::Minidump::read(std::fs::read(path).unwrap()).unwrap()
}

/// Every `(debug_file, debug_id, path)` of a case's symbol tree.
pub fn tree_files(case: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let root = case.join("symbols");
    for file_dir in std::fs::read_dir(&root).unwrap() {
        let file_dir = file_dir.unwrap().path();
        for id_dir in std::fs::read_dir(&file_dir).unwrap() {
            let id_dir = id_dir.unwrap().path();
            for sym in std::fs::read_dir(&id_dir).unwrap() {
                out.push((
                    file_dir.file_name().unwrap().to_string_lossy().into_owned(),
                    id_dir.file_name().unwrap().to_string_lossy().into_owned(),
                    sym.unwrap().path(),
                ));
            }
        }
    }
    out.sort();
    out
}
