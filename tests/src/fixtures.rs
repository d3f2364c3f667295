//! Paths of fixtures and built binaries.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `../shared/testdata`, the real minidumps with their symbols and reference outputs.
pub fn testdata() -> PathBuf {
    workspace_root().join("../shared/testdata")
}

/// The target directory the tests were built into (`target/debug`).
pub fn target_dir() -> PathBuf {
    // Test binaries live in target/<profile>/deps.
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_owned()
}

/// A binary of this workspace (`mayday-server`, `mayday-symbols`), built by
/// `cargo build --workspace` (the test script does that before `cargo test`).
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --all-targets` first (scripts/test does)",
        path.display()
    );
    path
}

/// An example of this workspace (`crashy`), built by `cargo build --workspace --examples`.
pub fn example(name: &str) -> PathBuf {
    let path = target_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --all-targets` first (scripts/test does)",
        path.display()
    );
    path
}
