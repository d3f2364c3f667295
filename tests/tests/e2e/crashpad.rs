//! A real, unmodified Crashpad handler (Debian's chromium `chrome_crashpad_handler`,
//! installed by `scripts/install-test-deps`) dumps a real crash of a C program and
//! uploads it to Mayday: the program starts the handler at crash time as Crashpad's
//! Linux client does (`tests/crashpad/crash_with_crashpad.c`), the handler ptraces
//! it, writes the minidump into its database and uploads it gzipped, with the
//! product, version and client id in the URL and the annotations in the form.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mayday_server::index::Role;
use mayday_tests::api::texts;
use mayday_tests::command::{assert_segv, text, upload_with_system_libc};
use mayday_tests::fixtures::workspace_root;
use mayday_tests::report::{crash_reason, frames, functions};
use mayday_tests::scan::{contains, walk};
use mayday_tests::server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where Debian's chromium package puts Crashpad's handler.
const HANDLER: &str = "/usr/lib/chromium/chrome_crashpad_handler";
/// How long the crashing program (with the handler it waits for) may take.
const CRASH_PATIENCE: Duration = Duration::from_secs(60);

/// The handler; the test fails (never skips) without it.
fn handler() -> PathBuf {
    let path = PathBuf::from(HANDLER);
    assert!(
        path.exists(),
        "{HANDLER} is missing: run scripts/install-test-deps (Debian's chromium package ships it)"
    );
    path
}

/// `tests/crashpad/crash_with_crashpad.c` built in `dir` with the system `cc`,
/// with debug information (on a blocking thread).
async fn build_program(dir: &Path) -> PathBuf {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || compile_program(&dir))
        .await
        .unwrap()
}

fn compile_program(dir: &Path) -> PathBuf {
    let out = dir.join("crash_with_crashpad");
    let built = Command::new("cc")
        .args(["-g", "-O0", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(workspace_root().join("tests/crashpad/crash_with_crashpad.c"))
        .output()
        .unwrap_or_else(|e| panic!("cc (scripts/install-test-deps installs gcc): {e}"));
    assert!(built.status.success(), "cc: {}", text(&built));
    out
}

/// A TCP relay on `127.0.0.1` in front of `upstream` (`host:port`): forwards every
/// connection as it is and keeps each one's request head (request line and
/// headers), so the test sees how the handler sent its upload.
struct Relay {
    /// `http://127.0.0.1:<port>`.
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&heads);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let kept = Arc::clone(&kept);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = relay(client, &upstream, &kept).await;
                });
            }
        });
        Relay { url, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: &str,
    heads: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 8192];
    while !contains(&seen, b"\r\n\r\n") && seen.len() < 64 * 1024 {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        seen.extend_from_slice(&chunk[..n]);
    }
    let end = seen
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(seen.len());
    heads
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&seen[..end]).into_owned());
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&seen).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// The value of header `name` (case-insensitive) in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Runs `program` (built by [`build_program`]) so that it crashes and the real
/// handler dumps it into `database` and uploads it to `url`; `args` are the
/// handler's annotations (`KEY=VALUE`) and other flags (`--…`). Returns once the
/// program died of SIGSEGV (the handler has uploaded by then).
async fn crash(program: &Path, database: &Path, url: &str, args: &[String]) {
    let mut crash = tokio::process::Command::new(program);
    crash
        .arg(handler())
        .arg(database)
        .arg(url)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let crashed = tokio::time::timeout(CRASH_PATIENCE, crash.output())
        .await
        .expect("the program and its handler end in time")
        .unwrap();
    assert_segv(&crashed);
}

/// The C program crashes; the real handler dumps and uploads it (gzipped) to the
/// real server, where it is processed, symbolicated from the program's own
/// symbols (uploaded with `mayday-symbols`), named by the product and version the
/// app gave the handler, and scrubbed: the annotations the rules drop (`api_token`,
/// `Email`, and the client id the handler puts in the URL as `guid`) are absent
/// from the processed report, and their values from the stored dump and metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_crashpad_handler_uploads_a_real_crash_processed_symbolicated_and_scrubbed() {
    const PRODUCT: &str = "CrashpadC";
    const VERSION: &str = "2.5.1";
    const TOKEN: &str = "tok-crashpad-6d2e81f0a9b4c357";
    const EMAIL: &str = "crashpad.person@example.org";
    let server = TestServer::start().await;
    let developer = server.token(Role::Developer).await;
    let uploader = server.token(Role::Uploader).await;
    let temp = tempfile::tempdir().unwrap();
    let program = build_program(temp.path()).await;

    // The program's symbols, and the C library's, as a developer uploads them.
    upload_with_system_libc(&program, &server.url, &uploader).await;

    let relay = Relay::start(server.url.trim_start_matches("http://").to_owned()).await;
    let database = temp.path().join("crashpad-db");
    crash(
        &program,
        &database,
        &format!("{}/submit", relay.url),
        &[
            format!("prod={PRODUCT}"),
            format!("ver={VERSION}"),
            format!("api_token={TOKEN}"),
            format!("Email={EMAIL}"),
        ],
    )
    .await;

    let id = server.wait_for_upload(&developer, PRODUCT).await;
    let report = server.wait_processed(&developer, &id).await;
    assert_eq!(report["state"], "processed", "{report}");
    assert_eq!(report["product"], PRODUCT, "{report}");
    assert_eq!(report["version"], VERSION, "{report}");
    assert!(
        crash_reason(&report).starts_with("SIGSEGV"),
        "{}",
        report["crash_reason"]
    );
    let names = functions(&report);
    assert_eq!(
        names.iter().take(3).map(String::as_str).collect::<Vec<_>>(),
        [
            "crash_with_crashpad_null_write",
            "crash_with_crashpad_caller",
            "main"
        ],
        "the crashing thread's top frames: {names:?}"
    );
    let top = &frames(&report)[0];
    assert!(
        top["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("tests/crashpad/crash_with_crashpad.c"))
            && top["line"].as_u64().is_some_and(|l| l > 0),
        "the crashing function's file and line: {top}"
    );

    // How the handler sent it: gzipped, with the client id in the URL.
    let heads = relay.heads();
    assert_eq!(heads.len(), 1, "one request: {heads:?}");
    let head = &heads[0];
    let request_line = head.lines().next().unwrap();
    assert!(request_line.starts_with("POST /submit?"), "{request_line}");
    assert_eq!(header(head, "content-encoding"), Some("gzip"), "{head}");
    assert!(
        header(head, "user-agent").is_some_and(|ua| ua.starts_with("Crashpad/")),
        "{head}"
    );
    let query = request_line
        .split_whitespace()
        .nth(1)
        .and_then(|target| target.split_once('?'))
        .map(|(_, query)| query)
        .unwrap();
    // A UUID needs no percent-decoding.
    let guid = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("guid="))
        .expect("the client id in the URL")
        .to_owned();
    assert_eq!(guid.len(), 36, "{guid}");

    // The handler's own dump carries what the test planted, so the checks below
    // can fail; and it recorded Mayday's reply as the report's remote id.
    let files = walk(&database);
    let local_dump = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "dmp"))
        .expect("the handler's minidump in its database");
    let local_dump = std::fs::read(local_dump).unwrap();
    for planted in ["api_token", TOKEN, "Email", EMAIL] {
        assert!(
            contains(&local_dump, planted.as_bytes()),
            "{planted} in the handler's dump"
        );
    }
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "meta")
                && contains(&std::fs::read(f).unwrap(), id.as_bytes())),
        "the handler's database records the CrashID: {files:?}"
    );

    let annotations = report["annotations"].as_object().unwrap();
    for key in ["api_token", "Email", "guid"] {
        assert!(!annotations.contains_key(key), "{key}: {annotations:?}");
    }
    let needles = [TOKEN, EMAIL, guid.as_str(), "api_token"];
    let text = report.to_string();
    for needle in needles {
        assert!(!text.contains(needle), "{needle} in the API's report");
    }
    // Every blob the report has in the store, opened: the dump with its
    // metadata, and the processed report.
    let in_blobs = [TOKEN, EMAIL, guid.as_str(), "api_token", "Email"];
    server.assert_blobs_free_of(&id, &in_blobs).await;
    server.stop().await;
}

/// Electron's `crashReporter` on Linux, as it starts the same handler (Electron
/// ships Chromium's `chrome_crashpad_handler`): Chromium's
/// `components/crash/core/app/crashpad_linux.cc` gives it the process annotations
/// `plat` and `lsb-release`, Electron's `ElectronCrashReporterClient` adds the
/// app's `globalExtra` (`_productName`, `_version`, `_companyName`) and sets `prod`
/// and `ver` to Electron's own, and the flags are Chromium's
/// `--monitor-self-annotation=ptype=crashpad-handler` and Electron's
/// `--no-rate-limit` (`rateLimit: false` by default; gzip on, `compress: true`).
/// The upload goes to the app's `submitURL` as it is. Mayday files it under the
/// app's name and version, keeps Electron's as annotations, and drops the client id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn electron_apps_crash_reporter_files_the_report_under_the_app() {
    const APP: &str = "Acme Notes";
    const APP_VERSION: &str = "3.4.1";
    handler();
    let server = TestServer::start().await;
    let developer = server.token(Role::Developer).await;
    let temp = tempfile::tempdir().unwrap();
    let program = build_program(temp.path()).await;
    let relay = Relay::start(server.url.trim_start_matches("http://").to_owned()).await;
    crash(
        &program,
        &temp.path().join("Crashpad"),
        &format!("{}/submit", relay.url),
        &[
            "_companyName=Acme".to_owned(),
            format!("_productName={APP}"),
            format!("_version={APP_VERSION}"),
            "lsb-release=Debian GNU/Linux 12 (bookworm)".to_owned(),
            "plat=Linux".to_owned(),
            "prod=Electron".to_owned(),
            "ver=28.1.0".to_owned(),
            "--monitor-self-annotation=ptype=crashpad-handler".to_owned(),
        ],
    )
    .await;

    let id = server.wait_for_upload(&developer, "Acme%20Notes").await;
    let report = server.wait_processed(&developer, &id).await;
    assert_eq!(report["state"], "processed", "{report}");
    assert_eq!(report["product"], APP, "{report}");
    assert_eq!(report["version"], APP_VERSION, "{report}");
    let annotations = &report["annotations"];
    assert_eq!(annotations["_companyName"], "Acme", "{annotations}");
    assert_eq!(annotations["prod"], "Electron", "{annotations}");
    assert_eq!(annotations["ver"], "28.1.0", "{annotations}");
    assert_eq!(annotations["plat"], "Linux", "{annotations}");
    assert!(annotations.get("guid").is_none(), "{annotations}");
    let heads = relay.heads();
    assert_eq!(heads.len(), 1, "one request: {heads:?}");
    assert_eq!(header(&heads[0], "content-encoding"), Some("gzip"));
    // Filed under the app, not under Electron.
    let (_, electron) = server
        .get_json("/api/v1/reports?product=Electron", &developer)
        .await;
    assert!(texts(&electron["reports"], "id").is_empty(), "{electron}");
    server.stop().await;
}
