//! The client's `crashy` example as a user runs it: it crashes in the way asked,
//! the client writes the report, and `crashy send` uploads what is pending.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::command::{run, stdout, text};
use crate::fixtures::example;

/// `crashy` with its data dir `data_dir`, sending to `server` with consent `Always`.
pub fn crashy(data_dir: &Path, server: &str) -> Command {
    let mut command = Command::new(example("crashy"));
    command
        .env("MAYDAY_DATA_DIR", data_dir)
        .env("MAYDAY_ENDPOINT", server)
        .env("MAYDAY_CONSENT", "always")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    command
}

/// Crashes `crashy <kind>` with `data_dir`, runs `crashy send`, and returns the
/// CrashID of the one report it sent.
pub async fn crash_and_send(data_dir: &Path, server: &str, kind: &str) -> String {
    let mut command = crashy(data_dir, server);
    command.arg(kind);
    let crashed = run(command).await;
    assert!(
        !crashed.status.success(),
        "crashy {kind} did not crash: {}",
        text(&crashed)
    );
    let mut command = crashy(data_dir, server);
    command.arg("send");
    let sent = run(command).await;
    assert!(sent.status.success(), "{}", text(&sent));
    let out = stdout(&sent);
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("sent "))
        .collect();
    assert_eq!(ids.len(), 1, "one report sent: {}", text(&sent));
    ids[0].to_owned()
}
