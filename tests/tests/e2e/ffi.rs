//! The C ABI (`mayday-client-ffi`) as C and C++ applications use it: gcc and g++
//! build `client/ffi/examples` against `mayday.h` and the static `libmayday.a`
//! (through the pkg-config file), the programs crash for real, and their reports
//! reach the real server, symbolicated from the C program's own symbols.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mayday_server::index::Role;
use mayday_tests::command::{run, stdout, text, upload_with_system_libc};
use mayday_tests::fixtures::{target_dir, workspace_root};
use mayday_tests::report::{crash_reason, frames, functions};
use mayday_tests::server::TestServer;

/// The C and C++ examples, built in a directory of their own.
struct Examples {
    /// `crashy.c`.
    crashy: PathBuf,
    /// `crashy_throw.cpp`.
    throw: PathBuf,
}

/// Builds the examples in `dir` as an integrator would: a prefix with
/// `include/mayday.h` and `lib/libmayday.a`, the pkg-config file made from its
/// template for that prefix, and `gcc`/`g++` with `pkg-config --static` flags.
fn build_examples(dir: &Path) -> Examples {
    let ffi = workspace_root().join("client/ffi");
    let prefix = dir.join("prefix");
    std::fs::create_dir_all(prefix.join("include")).unwrap();
    std::fs::create_dir_all(prefix.join("lib")).unwrap();
    std::fs::copy(
        ffi.join("include/mayday.h"),
        prefix.join("include/mayday.h"),
    )
    .unwrap();
    let library = target_dir().join("libmayday.a");
    assert!(
        library.exists(),
        "{} is not built: run `cargo build --workspace --all-targets` first (scripts/test does)",
        library.display()
    );
    std::os::unix::fs::symlink(&library, prefix.join("lib/libmayday.a")).unwrap();
    let pc_dir = dir.join("pkgconfig");
    std::fs::create_dir_all(&pc_dir).unwrap();
    let template = std::fs::read_to_string(ffi.join("integration/mayday.pc.in")).unwrap();
    std::fs::write(
        pc_dir.join("mayday.pc"),
        template.replace("@PREFIX@", prefix.to_str().unwrap()),
    )
    .unwrap();
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "--static", "mayday"])
        .env("PKG_CONFIG_PATH", &pc_dir)
        .output()
        .expect("pkg-config (scripts/install-test-deps installs it)");
    assert!(flags.status.success(), "{}", text(&flags));
    let flags = String::from_utf8(flags.stdout).unwrap();
    let compile = |compiler: &str, source: &str, out: &str| {
        let out = dir.join(out);
        let built = Command::new(compiler)
            .args(["-g", "-O0", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&out)
            .arg(ffi.join("examples").join(source))
            .args(flags.split_whitespace())
            .output()
            .unwrap_or_else(|e| panic!("{compiler} (scripts/install-test-deps installs it): {e}"));
        assert!(
            built.status.success(),
            "{compiler} {source}: {}",
            text(&built)
        );
        out
    };
    Examples {
        crashy: compile("gcc", "crashy.c", "crashy-c"),
        throw: compile("g++", "crashy_throw.cpp", "crashy-throw"),
    }
}

async fn build_examples_in(dir: &Path) -> Examples {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || build_examples(&dir))
        .await
        .unwrap()
}

/// `program` with `data_dir`, sending to `server` with consent `consent`.
fn command(program: &Path, data_dir: &Path, server: &str, consent: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env("MAYDAY_DATA_DIR", data_dir)
        .env("MAYDAY_ENDPOINT", server)
        .env("MAYDAY_CONSENT", consent)
        .stdin(Stdio::null());
    command
}

/// Crashes `crashy-c <kind>` with `data_dir` and consent `consent`, then runs
/// `crashy-c send`; returns the CrashIDs it sent and what it printed.
async fn crash_and_send(
    examples: &Examples,
    data_dir: &Path,
    server: &str,
    consent: &str,
    kind: &str,
) -> (Vec<String>, String) {
    let mut crash = command(&examples.crashy, data_dir, server, consent);
    crash.arg(kind);
    let crashed = run(crash).await;
    assert!(!crashed.status.success(), "{kind}: {}", text(&crashed));
    let mut send = command(&examples.crashy, data_dir, server, consent);
    send.arg("send");
    let sent = run(send).await;
    assert!(sent.status.success(), "{kind}: {}", text(&sent));
    (sent_ids(&stdout(&sent)), text(&sent))
}

/// The CrashIDs `crashy-c send` reports sent.
fn sent_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("sent bp-"))
        .map(|rest| format!("bp-{}", rest.split_whitespace().next().unwrap()))
        .collect()
}

/// Every crash kind of the C example crashes for real and, with consent always,
/// reaches the server; after the C binary's symbols are uploaded the crashing
/// frame is the C function with its file and line, and the annotations set and
/// removed at run time are as the program left them. The C++ example's uncaught
/// exception ends in abort() and is reported too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_and_cpp_crashes_reach_the_server_with_the_c_function_and_its_line() {
    let server = TestServer::start().await;
    let token = server.token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    let examples = build_examples_in(temp.path()).await;
    // The C binary's symbols, and the system C library's (abort() unwinds by its
    // call frame information), uploaded as a developer would.
    let uploader = server.token(Role::Uploader).await;
    upload_with_system_libc(&examples.crashy, &server.url, &uploader).await;

    for (kind, signal) in [
        ("segv", "SIGSEGV"),
        ("abort", "SIGABRT"),
        ("fpe", "SIGFPE"),
        ("ill", "SIGILL"),
        ("bus", "SIGBUS"),
    ] {
        let data = temp.path().join(kind);
        let (ids, said) = crash_and_send(&examples, &data, &server.url, "always", kind).await;
        assert_eq!(ids.len(), 1, "{kind}: {said}");

        let report = server.wait_processed(&token, &ids[0]).await;
        assert_eq!(report["state"], "processed", "{kind}: {report}");
        assert_eq!(report["product"], "crashy-c");
        assert!(
            crash_reason(&report).starts_with(signal),
            "{kind}: {}",
            report["crash_reason"]
        );
        let want = format!("crash_{kind}");
        let functions = functions(&report);
        assert!(
            functions.iter().any(|f| f == &want),
            "{kind}: {want} not on the crashing thread: {functions:?}"
        );
        let located = frames(&report)
            .iter()
            .find(|f| f["function"] == want.as_str())
            .map(|f| {
                (
                    f["file"].as_str().unwrap_or_default().to_owned(),
                    f["line"].as_u64(),
                )
            });
        assert!(
            located
                .as_ref()
                .is_some_and(|(file, line)| file.ends_with("examples/crashy.c")
                    && line.is_some_and(|l| l > 0)),
            "{kind}: {want} has no file:line: {located:?}"
        );
        let annotations = &report["annotations"];
        assert_eq!(annotations["phase"], "crashing", "{kind}: {annotations}");
        assert_eq!(annotations["channel"], "example", "{kind}: {annotations}");
        assert!(annotations.get("removed_later").is_none(), "{annotations}");
    }

    let data = temp.path().join("throw");
    let crashed = run(command(&examples.throw, &data, &server.url, "always")).await;
    assert!(!crashed.status.success(), "{}", text(&crashed));
    assert!(
        text(&crashed).contains("level not found"),
        "{}",
        text(&crashed)
    );
    let mut send = command(&examples.crashy, &data, &server.url, "always");
    send.arg("send");
    let sent = run(send).await;
    let ids = sent_ids(&stdout(&sent));
    assert_eq!(ids.len(), 1, "{}", text(&sent));
    let report = server.wait_processed(&token, &ids[0]).await;
    assert_eq!(report["state"], "processed", "{report}");
    assert_eq!(report["product"], "crashy-throw");
    assert!(
        crash_reason(&report).starts_with("SIGABRT"),
        "{}",
        report["crash_reason"]
    );

    // The C program has it deleted again.
    let mut forget = command(&examples.crashy, &data, &server.url, "always");
    forget.args(["forget", &ids[0]]);
    let forgotten = run(forget).await;
    assert!(forgotten.status.success(), "{}", text(&forgotten));
    let (status, _) = server
        .get_json(&format!("/api/v1/reports/{}", ids[0]), &token)
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let mut list = command(&examples.crashy, &data, &server.url, "always");
    list.arg("list");
    assert_eq!(sent_ids(&stdout(&run(list).await)), Vec::<String>::new());
    server.stop().await;
}

/// With consent never, a crash leaves no report on disk and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_consent_never_nothing_is_sent_and_nothing_stays() {
    let server = TestServer::start().await;
    let temp = tempfile::tempdir().unwrap();
    let examples = build_examples_in(temp.path()).await;
    let data = temp.path().join("data");
    let (ids, said) = crash_and_send(&examples, &data, &server.url, "never", "segv").await;
    assert_eq!(ids, Vec::<String>::new(), "{said}");
    let left: Vec<PathBuf> = mayday_tests::scan::walk(&data)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "dmp"))
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new());
    let index = server.state.index();
    assert_eq!(index.report_key_ids().await.unwrap().len(), 0);
    server.stop().await;
}

/// The consent callback a C program passes sees the same summary the Rust
/// client's prompt is given for the same pending report; its answer is obeyed
/// ("don't send" deletes the report, "send" sends it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_consent_callback_sees_the_summary_the_rust_prompt_sees() {
    let server = TestServer::start().await;
    let temp = tempfile::tempdir().unwrap();
    let examples = build_examples_in(temp.path()).await;
    let data = temp.path().join("data");
    for kind in ["segv", "abort"] {
        let mut crash = command(&examples.crashy, &data, &server.url, "ask");
        crash.arg(kind);
        run(crash).await;
    }

    // What the Rust client would show for each pending report.
    let rust = mayday_client::Client::builder()
        .product("crashy-c")
        .version("1.0.0")
        .data_dir(&data)
        .endpoint(&server.url)
        .build()
        .unwrap();
    let mut expected: Vec<BTreeMap<String, String>> = Vec::new();
    for report in rust.pending().unwrap() {
        let s = rust.summary(&report).unwrap();
        let none = || "(none)".to_owned();
        let mut fields = BTreeMap::from([
            ("id".to_owned(), s.id.clone()),
            ("product".to_owned(), s.product.clone()),
            ("version".to_owned(), s.version.clone()),
            ("crashed_at".to_owned(), s.crashed_at.clone()),
            (
                "crash_reason".to_owned(),
                s.crash_reason.clone().unwrap_or_else(none),
            ),
            (
                "crashing_module".to_owned(),
                s.crashing_module.clone().unwrap_or_else(none),
            ),
            ("os".to_owned(), s.os.clone().unwrap_or_else(none)),
            (
                "endpoint".to_owned(),
                s.endpoint.clone().unwrap_or_else(none),
            ),
            ("threads".to_owned(), s.threads.to_string()),
            ("modules".to_owned(), s.modules.to_string()),
            ("stack_bytes".to_owned(), s.stack_bytes.to_string()),
            (
                "has_environment".to_owned(),
                u8::from(s.has_environment).to_string(),
            ),
            (
                "has_command_line".to_owned(),
                u8::from(s.has_command_line).to_string(),
            ),
            ("has_heap".to_owned(), u8::from(s.has_heap).to_string()),
            (
                "client_scrubbed".to_owned(),
                u8::from(s.client_scrubbed).to_string(),
            ),
            ("size_bytes".to_owned(), s.size_bytes.to_string()),
        ]);
        for (k, v) in &s.annotations {
            fields.insert(format!("annotation {k}"), v.clone());
        }
        expected.push(fields);
    }
    assert_eq!(expected.len(), 2);

    // The C callback, answering "don't send": each summary it printed, in order.
    let mut send = command(&examples.crashy, &data, &server.url, "ask");
    send.arg("send").env("CRASHY_ANSWER", "dont-send");
    let out = stdout(&run(send).await);
    let mut seen: Vec<BTreeMap<String, String>> = Vec::new();
    for line in out.lines() {
        let Some(field) = line.strip_prefix("summary ") else {
            continue;
        };
        let (key, value) = field.split_once('=').unwrap();
        if key == "id" {
            seen.push(BTreeMap::new());
        }
        seen.last_mut()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
    }
    let by_id = |list: &[BTreeMap<String, String>]| -> BTreeMap<String, BTreeMap<String, String>> {
        list.iter().map(|m| (m["id"].clone(), m.clone())).collect()
    };
    assert_eq!(by_id(&seen), by_id(&expected), "{out}");
    assert!(out.contains("declined 2"), "{out}");
    assert!(rust.pending().unwrap().is_empty());

    // "send" sends.
    let mut crash = command(&examples.crashy, &data, &server.url, "ask");
    crash.arg("fpe");
    run(crash).await;
    let mut send = command(&examples.crashy, &data, &server.url, "ask");
    send.arg("send").env("CRASHY_ANSWER", "send");
    let out = stdout(&run(send).await);
    assert_eq!(sent_ids(&out).len(), 1, "{out}");
    server.stop().await;
}
