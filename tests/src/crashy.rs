//! The client's `crashy` example as a user runs it: it crashes in the way asked,
//! the client writes the report, and `crashy send` uploads what is pending.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::command::{run, stdout, text};
use crate::fixtures::{bin, example, system_libc_symbols};

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

/// The symbols of `binary` as `mayday-symbols dump` writes them, with the system C
/// library's beside them (abort() and raise() then unwind by their call frame
/// information), in a Breakpad tree `<dir>/tree/<name>/<DEBUG_ID>/<name>.sym`.
/// Returns the tree.
pub fn symbol_tree(dir: &Path, binary: &Path) -> PathBuf {
    let name = binary.file_name().unwrap().to_str().unwrap().to_owned();
    let sym = dir.join(format!("{name}.sym"));
    let status = Command::new(bin("mayday-symbols"))
        .arg("dump")
        .arg(binary)
        .arg("-o")
        .arg(&sym)
        .status()
        .unwrap();
    assert!(status.success());
    let tree = dir.join("tree");
    // `<tree>/<name>/<DEBUG_ID>/<name>.sym`, the debug id from the MODULE line
    // (`MODULE Linux x86_64 <DEBUG_ID> <name>`).
    let file = |sym: &Path, name: &str| {
        let text = std::fs::read_to_string(sym).unwrap();
        let module = text.lines().next().unwrap();
        let fields: Vec<&str> = module.split_whitespace().collect();
        assert_eq!(fields[0], "MODULE", "{module}");
        let target = tree.join(name).join(fields[3]);
        std::fs::create_dir_all(&target).unwrap();
        std::fs::rename(sym, target.join(format!("{name}.sym"))).unwrap();
    };
    file(&sym, &name);
    file(&system_libc_symbols(dir), "libc.so.6");
    tree
}

/// A secret planted in a crashing process's environment.
pub const PLANTED_SECRET: &str = "mdy-planted-secret-7f3a9c2e41";
/// A made-up user name, planted as `USER`, `LOGNAME` and in `HOME`.
pub const PLANTED_USER: &str = "zorblaxquux";
/// A made-up host name, planted as `HOSTNAME`.
pub const PLANTED_HOST: &str = "quuxhost-9381";

/// Makes `command` a process of a made-up person on a made-up machine: a secret
/// in its environment, [`PLANTED_USER`]'s home `<dir>/home/<user>` (created) as
/// `HOME` and working directory, [`PLANTED_HOST`] as host name, and client-side
/// scrubbing off, so its dump carries all of them as a Crashpad client's would.
pub fn plant(command: &mut Command, dir: &Path) {
    let home = dir.join("home").join(PLANTED_USER);
    std::fs::create_dir_all(&home).unwrap();
    command
        .env("MAYDAY_CLIENT_SCRUB", "off")
        .env("MAYDAY_PLANTED_SECRET", PLANTED_SECRET)
        .env("HOME", &home)
        .env("USER", PLANTED_USER)
        .env("LOGNAME", PLANTED_USER)
        .env("HOSTNAME", PLANTED_HOST)
        .current_dir(&home);
}
