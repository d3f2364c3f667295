//! Test support: the crashing example as a child process, a small real HTTP server
//! that records what it receives, and a pseudo-terminal.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mayday_client::{Client, ClientBuilder, ConsentPolicy, RetryPolicy};
use mayday_report::crash_site::CRASH_SITES_PATH;

/// The example binary, built by `cargo test` next to this test binary.
pub fn crashy() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap();
    let path = debug.join("examples").join("crashy");
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test -p mayday-client`, which builds examples",
        path.display()
    );
    path
}

/// `crashy` with a clean environment pointing at `data_dir`.
pub fn crashy_command(data_dir: &Path, consent: &str) -> Command {
    let mut cmd = Command::new(crashy());
    cmd.env_remove("MAYDAY_ENDPOINT")
        .env_remove(mayday_client::MONITOR_ENV)
        .env("MAYDAY_DATA_DIR", data_dir)
        .env("MAYDAY_CONSENT", consent)
        .env("RUST_BACKTRACE", "0");
    cmd
}

/// Runs `crashy <kind>` to its crash; returns its exit status and stderr.
pub fn crash(data_dir: &Path, kind: &str, consent: &str) -> (ExitStatus, String) {
    crash_with(crashy_command(data_dir, consent), kind)
}

/// Runs a prepared `crashy` command with `kind`.
pub fn crash_with(mut cmd: Command, kind: &str) -> (ExitStatus, String) {
    let out = cmd
        .arg(kind)
        .stdin(Stdio::null())
        .output()
        .expect("run crashy");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.signal().is_some() || out.status.code() == Some(101),
        "crashy {kind} did not crash: {:?}\n{stderr}",
        out.status
    );
    (out.status, stderr)
}

/// A client on `data_dir` like crashy's, with fast retries.
pub fn client_builder(data_dir: &Path, endpoint: Option<&str>) -> ClientBuilder {
    let mut b = Client::builder()
        .product("crashy")
        .version("0.1.0")
        .data_dir(data_dir)
        .consent(ConsentPolicy::Always)
        .retry(RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(3),
        })
        .timeouts(Duration::from_secs(10), Duration::from_secs(2));
    if let Some(e) = endpoint {
        b = b.endpoint(e);
    }
    b
}

/// A fresh data dir with one `crashy <kind>` crash under `consent` in it, and a
/// test server to send to: where most sending tests start.
pub fn crashed(kind: &str, consent: &str) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    crash(dir.path(), kind, consent);
    (dir, server)
}

/// A client on `data_dir` (as [`client_builder`]) sending to `server`.
pub fn client_for(data_dir: &Path, server: &TestServer) -> Client {
    client_builder(data_dir, Some(&server.url()))
        .build()
        .unwrap()
}

/// Files in a directory (none if it does not exist), sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// One request the test server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body, gunzipped when it says `Content-Encoding: gzip`.
    pub fn decoded_body(&self) -> Vec<u8> {
        let gz = self
            .headers
            .get("content-encoding")
            .is_some_and(|v| v == "gzip");
        if !gz {
            return self.body.clone();
        }
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&self.body[..])
            .read_to_end(&mut out)
            .expect("gzip body");
        out
    }

    /// The multipart parts: (name, bytes).
    pub fn parts(&self) -> Vec<(String, Vec<u8>)> {
        let ct = self.headers["content-type"].to_str().unwrap().to_owned();
        let boundary = ct.split("boundary=").nth(1).expect("boundary").to_owned();
        let body = self.decoded_body();
        let delim = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut rest = &body[..];
        while let Some(start) = find(rest, delim.as_bytes()) {
            rest = &rest[start + delim.len()..];
            if rest.starts_with(b"--") {
                break;
            }
            let Some(head_end) = find(rest, b"\r\n\r\n") else {
                break;
            };
            let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
            let data_start = head_end + 4;
            let Some(next) = find(&rest[data_start..], delim.as_bytes()) else {
                break;
            };
            let data = rest[data_start..data_start + next - 2].to_vec(); // strip \r\n
            let name = head
                .split("name=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_default()
                .to_owned();
            parts.push((name, data));
            rest = &rest[data_start + next..];
        }
        parts
    }

    /// A text part's value.
    pub fn text_part(&self, name: &str) -> Option<String> {
        self.parts()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| String::from_utf8_lossy(&d).into_owned())
    }
}

/// Where `needle` starts in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A scripted reply of the test server to an upload.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200` with a fresh CrashID and deletion token.
    Accept,
    /// `200` with a receipt and `StopSendingReportsFor=<hours>`.
    AcceptAndStop(u32),
    /// Any status with a body and an optional `Retry-After`.
    Status(u16, &'static str, Option<&'static str>),
    /// Any status with any bytes as its body (not a receipt the server keeps).
    Bytes(u16, Vec<u8>),
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
    /// crash id -> deletion token of accepted reports still stored.
    stored: Vec<(String, String)>,
}

/// A real HTTP server on 127.0.0.1 that records every request, answers uploads per
/// its script (then accepts), and deletion requests like Mayday's server; it has
/// no crash-site route (`404`), as servers before it.
pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestServer {
    /// Starts on a free port.
    pub fn start() -> TestServer {
        Self::serve(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
    }

    /// Starts listening on the port `unused` kept.
    pub fn start_on(unused: UnusedAddr) -> TestServer {
        nix::sys::socket::listen(&unused.socket, nix::sys::socket::Backlog::MAXCONN)
            .expect("listen");
        Self::serve(std::net::TcpListener::from(unused.socket))
    }

    fn serve(listener: std::net::TcpListener) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let app_state = Arc::clone(&state);
        listener.set_nonblocking(true).unwrap();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).unwrap()
        };
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = Arc::clone(&app_state);
                async move { handle(&state, method, uri, headers, body) }
            },
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            addr,
            state,
            runtime: Some(runtime),
        }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues replies for the next uploads.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every upload so far (crash-site summaries left out).
    pub fn uploads(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path != CRASH_SITES_PATH)
            .collect()
    }

    /// Crash ids the server still stores.
    pub fn stored(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .stored
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    state.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers.clone(),
        body: body.to_vec(),
    });
    if uri.path() == CRASH_SITES_PATH {
        // As a server without crash-site summaries: the client sends the dump.
        return StatusCode::NOT_FOUND.into_response();
    }
    if method == Method::DELETE {
        let id = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let before = state.stored.len();
        state
            .stored
            .retain(|(i, t)| !(i == &id && auth == format!("Deletion {t}")));
        return if state.stored.len() < before {
            StatusCode::NO_CONTENT.into_response()
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    }
    let reply = state.script.pop_front().unwrap_or(Reply::Accept);
    let accept = |state: &mut State, extra: String| {
        let id = format!("bp-{}", uuid::Uuid::new_v4());
        let token = uuid::Uuid::new_v4().simple().to_string();
        state.stored.push((id.clone(), token.clone()));
        (
            StatusCode::OK,
            format!("CrashID={id}\nDeletionToken={token}\n{extra}"),
        )
            .into_response()
    };
    match reply {
        Reply::Accept => accept(&mut state, String::new()),
        Reply::AcceptAndStop(h) => accept(&mut state, format!("StopSendingReportsFor={h}\n")),
        Reply::Status(code, text, retry_after) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), text).into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Reply::Bytes(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
    }
}

/// A port on 127.0.0.1 that nothing listens on: connections to it are refused.
/// Its socket is bound but not listening, so no other socket (another test's
/// server, an outgoing connection) can take the port before
/// [`TestServer::start_on`] listens on it.
pub struct UnusedAddr {
    pub addr: SocketAddr,
    socket: std::os::fd::OwnedFd,
}

/// A port on 127.0.0.1 kept unused for this test.
pub fn unused_addr() -> UnusedAddr {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket,
    };
    use std::os::fd::AsRawFd;
    let socket = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    let loopback = SockaddrIn::from(std::net::SocketAddrV4::new([127, 0, 0, 1].into(), 0));
    bind(socket.as_raw_fd(), &loopback).expect("bind");
    let bound: SockaddrIn = getsockname(socket.as_raw_fd()).expect("getsockname");
    UnusedAddr {
        addr: SocketAddr::V4(bound.into()),
        socket,
    }
}

/// A child process on a pseudo-terminal: its stdin, stdout and stderr are the
/// terminal; the test reads what it shows and types answers.
pub struct PtyChild {
    child: std::process::Child,
    master: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl PtyChild {
    /// Spawns `cmd` on a new pseudo-terminal.
    pub fn spawn(mut cmd: Command) -> PtyChild {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = pty.slave;
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().expect("spawn on pty");
        // `cmd` still holds the slave ends; drop them so the master sees the end.
        drop(cmd);
        let master = std::fs::File::from(pty.master);
        let mut reading = master.try_clone().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child side is closed: the end.
            while let Ok(n) = reading.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtyChild {
            child,
            master,
            output,
            reader: Some(reader),
        }
    }

    /// Everything shown so far.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal shows `text` for the `nth` time (1-based).
    pub fn expect(&self, text: &str, nth: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.transcript().matches(text).count() < nth {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?}; the terminal shows:\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types a line.
    pub fn send_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        self.master.flush().unwrap();
    }

    /// Waits for the child to exit; returns its status and the transcript.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("child did not exit; terminal:\n{}", self.transcript());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.master);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let text = String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned();
        (status, text)
    }
}
