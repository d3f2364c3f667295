//! Running the workspace's programs (`crashy`, `mayday-symbols`, the reference
//! `minidump-stackwalk`) from async tests.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::fixtures::{bin, system_libc};

/// Runs `command` to its end off the async runtime (the servers under test run on
/// it) and returns what it printed.
pub async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || {
        let program = command.get_program().to_string_lossy().into_owned();
        command
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"))
    })
    .await
    .unwrap()
}

/// What `output` printed on stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts that the process of `output` died of `SIGSEGV`.
pub fn assert_segv(output: &Output) {
    use std::os::unix::process::ExitStatusExt;
    /// `SIGSEGV` on Linux.
    const SIGSEGV: i32 = 11;
    assert_eq!(
        output.status.signal(),
        Some(SIGSEGV),
        "dies of SIGSEGV: {:?} {}",
        output.status,
        text(output)
    );
}

/// What `output` printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `mayday-symbols upload <paths> --server <url> --token <token>`.
pub async fn symbols_upload(paths: &[&Path], server: &str, token: &str) -> Output {
    let mut cmd = Command::new(bin("mayday-symbols"));
    cmd.arg("upload")
        .args(paths)
        .args(["--server", server, "--token", token])
        .stdin(Stdio::null());
    run(cmd).await
}

/// Uploads the symbols of `binary` and of the system C library (abort() and
/// raise() then unwind by its call frame information) with `mayday-symbols
/// upload`, as a developer would; asserts that both were uploaded.
pub async fn upload_with_system_libc(binary: &Path, server: &str, token: &str) {
    let uploaded = symbols_upload(&[binary, &system_libc()], server, token).await;
    assert!(uploaded.status.success(), "{}", text(&uploaded));
    assert!(
        stdout(&uploaded).contains("2 uploaded"),
        "{}",
        text(&uploaded)
    );
}
