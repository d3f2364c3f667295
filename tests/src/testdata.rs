//! The shared test data (`../shared/testdata`): real minidumps, each in a case
//! directory with its symbols (`symbols/`, when the case has them) and the reference
//! output minidump-stackwalk 0.27.0 gave for it (`reference/`).
//!
//! This file needs nothing but the standard library, so that code which cannot
//! depend on this crate (the symbols crate's benchmarks) includes it with
//! `#[path]` and walks the same list of cases.

use std::path::{Path, PathBuf};

/// The shared test data directory.
pub fn dir() -> PathBuf {
    // Every crate of the workspace is one level below its root.
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata"
    ))
}

/// The bytes of the test data file at `path` (relative to [`dir`]), e.g.
/// `breakpad-win-x86-minidump2/minidump2.dmp`.
pub fn read(path: &str) -> Vec<u8> {
    let path = dir().join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

impl Case {
    /// The case directory's name, e.g. `breakpad-win-x86-minidump2`.
    pub fn name(&self) -> &str {
        self.dir
            .file_name()
            .and_then(|name| name.to_str())
            .expect("a case directory name")
    }

    /// The dump's path relative to [`dir`], e.g.
    /// `breakpad-win-x86-minidump2/minidump2.dmp`.
    pub fn path(&self) -> String {
        let file = self.dump.file_name().expect("a dump file name");
        format!("{}/{}", self.name(), file.to_string_lossy())
    }

    /// The dump's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.dump).unwrap_or_else(|e| panic!("{}: {e}", self.dump.display()))
    }

    /// The case's Breakpad symbol tree, when it has one.
    pub fn symbols(&self) -> Option<PathBuf> {
        let symbols = self.dir.join("symbols");
        symbols.is_dir().then_some(symbols)
    }
}

/// Every dump of the test data, by case directory and file name; each has its
/// reference output.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for dir in sorted(&dir(), |p| p.is_dir()) {
        for dump in sorted(&dir, |p| p.extension().is_some_and(|e| e == "dmp")) {
            let stem = dump.file_stem().unwrap().to_string_lossy().into_owned();
            let reference = dir
                .join("reference")
                .join(format!("{stem}.minidump-stackwalk-0.27.0.json"));
            assert!(reference.is_file(), "{} has no reference", dump.display());
            cases.push(Case {
                dir: dir.clone(),
                dump,
                reference,
            });
        }
    }
    assert!(
        cases.len() >= 13,
        "all 13 shared dumps are found: {cases:?}"
    );
    cases
}

/// Whether a benchmark runs the dump at `path`: every dump, or where
/// `MAYDAY_BENCH_DUMPS` is set, those whose paths contain one of the parts it
/// lists, comma-separated (e.g. `android,minidump2`).
pub fn chosen_for_bench(path: &Path) -> bool {
    std::env::var("MAYDAY_BENCH_DUMPS").map_or(true, |names| {
        let path = path.to_string_lossy();
        names.split(',').any(|name| path.contains(name.trim()))
    })
}

/// The case of the dump at `path` (relative to [`dir`]), e.g.
/// `breakpad-win-x86-minidump2/minidump2.dmp`.
pub fn case(path: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.path() == path)
        .unwrap_or_else(|| panic!("no test data dump {path}"))
}

/// The entries of `dir` that `keep` accepts, sorted.
fn sorted(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| keep(path))
        .collect();
    paths.sort();
    paths
}
