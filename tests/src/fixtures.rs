//! Paths of fixtures and built binaries.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `../shared/testdata`, the real minidumps with their symbols and reference outputs
/// (see [`crate::testdata`]).
pub fn testdata() -> PathBuf {
    crate::testdata::dir()
}

/// The JSON file at `path`.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

/// The C library this process (and so every program it starts) has mapped, read
/// from `/proc/self/maps`.
pub fn system_libc() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .is_some_and(|name| name == "libc.so.6")
        })
        .map(PathBuf::from)
        .expect("libc.so.6 is mapped")
}

/// Breakpad symbols for [`system_libc`], written by `mayday-symbols dump` to
/// `dir/libc.so.6.sym`: what a server holding system symbols has for the C library
/// (public symbols and the call frame information of its `.eh_frame`), so that
/// stacks unwind through `abort()` and `raise()` exactly instead of by scanning.
pub fn system_libc_symbols(dir: &Path) -> PathBuf {
    let sym = dir.join("libc.so.6.sym");
    let status = std::process::Command::new(bin("mayday-symbols"))
        .arg("dump")
        .arg(system_libc())
        .arg("-o")
        .arg(&sym)
        .status()
        .expect("mayday-symbols runs");
    assert!(status.success(), "mayday-symbols dump libc.so.6 failed");
    sym
}

/// `$XDG_CACHE_HOME/mayday/<name>` (`~/.cache/mayday/<name>` by default), where
/// `scripts/install-test-deps` puts what it builds or installs for the tests,
/// unless the environment variable `variable` names another place.
fn test_cache(variable: &str, name: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(
        || {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
                .join("mayday")
                .join(name)
        },
        PathBuf::from,
    )
}

/// The Python of the virtualenv `scripts/install-test-deps` fills (sentry-sdk,
/// openapi-spec-validator, jsonschema).
pub fn test_venv_python() -> std::path::PathBuf {
    let venv = test_cache("MAYDAY_TEST_VENV", "test-venv");
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps",
        python.display()
    );
    python
}

/// sentry-native 0.4.9's own example program, `sentry_example`, built by
/// `scripts/install-test-deps` with `backend` (`"crashpad"`, with its
/// `crashpad_handler` beside it, or `"breakpad"`) into
/// `$MAYDAY_SENTRY_NATIVE/<backend>/bin` (by default
/// `~/.cache/mayday/sentry-native-0.4.9`). The test fails (never skips) without it.
pub fn sentry_native_example(backend: &str) -> PathBuf {
    let bin = test_cache("MAYDAY_SENTRY_NATIVE", "sentry-native-0.4.9")
        .join(backend)
        .join("bin");
    let programs: &[&str] = match backend {
        "crashpad" => &["sentry_example", "crashpad_handler"],
        "breakpad" => &["sentry_example"],
        other => panic!("no sentry-native backend {other} is built for the tests"),
    };
    for program in programs {
        let path = bin.join(program);
        assert!(
            path.exists(),
            "{} is missing: run scripts/install-test-deps",
            path.display()
        );
    }
    bin.join("sentry_example")
}
