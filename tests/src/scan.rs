//! Searching every byte a server left on disk for what must not be there.

use std::path::{Path, PathBuf};

/// Whether `needle` (not empty) occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every needle found in the name or the contents of a file below `dir` (the object
/// store and the index, SQLite's WAL and shared memory included), as
/// `(file, needle)`.
pub fn traces(dir: &Path, needles: &[Vec<u8>]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in walk(dir) {
        let name = file.to_string_lossy().into_owned();
        // A file may go away while we look (SQLite's shared memory, say).
        let bytes = std::fs::read(&file).unwrap_or_default();
        for needle in needles {
            if contains(name.as_bytes(), needle) || contains(&bytes, needle) {
                found.push((name.clone(), String::from_utf8_lossy(needle).into_owned()));
            }
        }
    }
    found
}

/// Every file below `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
