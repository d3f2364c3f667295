//! Running the workspace's programs (`crashy`, `mayday-symbols`, the reference
//! `minidump-stackwalk`) from async tests.

use std::process::{Command, Output};

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

/// What `output` printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}
