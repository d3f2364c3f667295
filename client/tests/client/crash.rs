//! Each crash kind: the example crashes in a child process, the monitor writes a
//! dump into the pending queue, and the dump says what happened.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use minidump::{Minidump, MinidumpException, MinidumpModuleList, MinidumpSystemInfo, Module};

use crate::support::{client_builder, crash, files_in};

struct Dumped {
    signal: u32,
    crashing_module: Option<String>,
    annotations: std::collections::BTreeMap<String, String>,
}

/// The one pending report in `data_dir`, read back with the minidump crate.
fn only_pending(data_dir: &Path) -> Dumped {
    let client = client_builder(data_dir, None).build().unwrap();
    let pending = client.pending().unwrap();
    assert_eq!(
        pending.len(),
        1,
        "{:?}",
        files_in(&data_dir.join("pending"))
    );
    let report = &pending[0];
    let bytes = std::fs::read(&report.dump_path).unwrap();
    let dump = Minidump::read(&bytes[..]).expect("the dump parses");
    let exception: MinidumpException<'_> = dump.get_stream().expect("exception stream");
    let system: MinidumpSystemInfo = dump.get_stream().expect("system info");
    let modules: MinidumpModuleList = dump.get_stream().expect("module list");
    let ip = exception
        .context(&system, None)
        .expect("crashing thread's context")
        .get_instruction_pointer();
    let crashing_module = modules.module_at_address(ip).map(|m| {
        let name = m.code_file();
        name.rsplit('/').next().unwrap_or_default().to_owned()
    });
    Dumped {
        signal: exception.raw.exception_record.exception_code,
        crashing_module,
        annotations: report.meta.annotations.clone(),
    }
}

/// `crashy <kind>` crashed once in a fresh data dir: its exit status, its stderr
/// and the one report it left pending.
fn crash_once(kind: &str) -> (std::process::ExitStatus, String, Dumped) {
    let dir = tempfile::tempdir().unwrap();
    let (status, stderr) = crash(dir.path(), kind, "ask");
    let dumped = only_pending(dir.path());
    (status, stderr, dumped)
}

/// A hardware fault in the example's own crashing function: the signal is the
/// dump's exception code and the instruction pointer lies in the example.
fn fault(kind: &str, signal: i32) {
    let (status, stderr, dumped) = crash_once(kind);
    assert_eq!(status.signal(), Some(signal), "{stderr}");
    assert_eq!(dumped.signal, signal as u32);
    assert_eq!(dumped.crashing_module.as_deref(), Some("crashy"));
    assert_eq!(dumped.annotations["channel"], "example");
    assert!(
        !dumped
            .annotations
            .contains_key(mayday_client::PANIC_ANNOTATION)
    );
}

#[test]
fn segv_is_captured() {
    fault("segv", 11);
}

#[test]
fn bus_error_is_captured() {
    fault("bus", 7);
}

#[test]
fn fpe_is_captured() {
    fault("fpe", 8);
}

#[test]
fn illegal_instruction_is_captured() {
    fault("ill", 4);
}

#[test]
fn abort_is_captured() {
    let (status, stderr, dumped) = crash_once("abort");
    assert_eq!(status.signal(), Some(6), "{stderr}");
    assert_eq!(dumped.signal, 6);
}

#[test]
fn rust_panic_is_captured_with_its_message() {
    let (status, stderr, dumped) = crash_once("panic");
    // The panic unwinds and the previous hook still prints: the app's behaviour
    // is unchanged.
    assert_eq!(status.code(), Some(101), "{stderr}");
    assert!(stderr.contains("crashy panicked on purpose"), "{stderr}");
    assert_eq!(dumped.signal, 6, "a panic is recorded as SIGABRT");
    let message = &dumped.annotations[mayday_client::PANIC_ANNOTATION];
    assert!(message.contains("crashy panicked on purpose"), "{message}");
    assert!(message.contains("crashy.rs"), "{message}");
}

#[test]
fn panic_under_abort_is_dumped_once() {
    // The panic hook dumps; the SIGABRT that follows is not dumped again.
    let (status, stderr, dumped) = crash_once("panic-abort");
    assert_eq!(status.signal(), Some(6), "{stderr}");
    assert!(stderr.contains("crashy panicked on purpose"), "{stderr}");
    assert_eq!(dumped.signal, 6);
    assert!(
        dumped
            .annotations
            .contains_key(mayday_client::PANIC_ANNOTATION)
    );
}

#[test]
fn consent_never_keeps_nothing_at_capture() {
    let dir = tempfile::tempdir().unwrap();
    crash(dir.path(), "segv", "never");
    assert_eq!(files_in(&dir.path().join("pending")), Vec::<String>::new());
}

#[test]
fn queue_is_bounded_across_real_crashes() {
    // The queue bound applies to dumps the monitor commits: with 11 crashes and
    // the default bound of 10, the oldest is gone.
    let dir = tempfile::tempdir().unwrap();
    let client = client_builder(dir.path(), None).build().unwrap();
    let mut first = None;
    for i in 0..11 {
        crash(dir.path(), "abort", "ask");
        if i == 0 {
            first = Some(client.pending().unwrap()[0].meta.id.clone());
        }
    }
    let pending = client.pending().unwrap();
    assert_eq!(pending.len(), 10);
    let first = first.unwrap();
    assert!(pending.iter().all(|r| r.meta.id != first));
    // Only whole reports are on disk: a .dmp and a .json each.
    assert_eq!(files_in(&dir.path().join("pending")).len(), 20);
}

#[test]
fn incomplete_builder_is_a_typed_error() {
    let err = mayday_client::Client::builder()
        .product("x")
        .install()
        .unwrap_err();
    assert_eq!(err.name(), "config");
    let err = mayday_client::Client::builder()
        .product("x")
        .version("1")
        .data_dir("/tmp/x")
        .endpoint("ftp://example.org")
        .build()
        .unwrap_err();
    assert_eq!(err.name(), "config");
}
