//! A Mayday server for tests: in process on `127.0.0.1:0` with its own data dir,
//! stopped when dropped; or the real `mayday-server` binary as a child process,
//! for tests that kill it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mayday_server::index::Role;
use mayday_server::{App, AppState, Config};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{oneshot, watch};

use crate::api::{self, Sent};
use crate::scan::{contains, walk};
use crate::testdata::Case;

/// A server running in this process.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The server's state (index, storage) for direct checks.
    pub state: AppState,
    /// The data directory (SQLite index, file store).
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Processing workers a test started ([`TestServer::start_workers`]).
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Stops them: each finishes the job it holds first.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.expect("a worker ends without panicking");
        }
    }
}

/// The configuration tests start from: a fresh data dir, a free port, quick polling.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.pipeline.poll_interval = Duration::from_millis(100);
    // Tests upload from one address, many at once; the rate limit tests turn it on.
    config.rate_limit.enabled = false;
    config
}

impl TestServer {
    /// Starts a server with the test defaults.
    pub async fn start() -> TestServer {
        TestServer::with_config(|_| {}).await
    }

    /// Starts a server with the test defaults and makes an API token with `role`:
    /// the server and the token's secret.
    pub async fn with_token(role: Role) -> (TestServer, String) {
        let server = TestServer::start().await;
        let token = server.token(role).await;
        (server, token)
    }

    /// Starts a server after `change` has adjusted the test defaults.
    pub async fn with_config(change: impl FnOnce(&mut Config)) -> TestServer {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(temp.path());
        change(&mut config);
        let data_dir = config.data_dir.clone();
        let app = App::build(config).await.expect("server starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = app.state.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            url,
            state,
            data_dir,
            _temp: Some(temp),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits for its workers.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// A server with the symbols of every one of the test data `cases` in its
    /// store.
    pub async fn with_symbols_of<'a>(cases: impl IntoIterator<Item = &'a Case>) -> TestServer {
        let server = TestServer::start().await;
        for case in cases {
            let symbols = case.symbols().expect("a test data case with symbols");
            server.add_symbols(&symbols).await;
        }
        server
    }

    /// A new API token with `role`, named `test`: its secret.
    pub async fn token(&self, role: Role) -> String {
        self.named_token(role, "test").await.1
    }

    /// A new API token for each of `roles`, named `test`: their secrets, in order.
    pub async fn tokens<const N: usize>(&self, roles: [Role; N]) -> [String; N] {
        let mut secrets = [const { String::new() }; N];
        for (secret, role) in secrets.iter_mut().zip(roles) {
            *secret = self.token(role).await;
        }
        secrets
    }

    /// A new API token with `role` and `name`: its id (what the audit log names)
    /// and its secret.
    pub async fn named_token(&self, role: Role, name: &str) -> (String, String) {
        mayday_server::triage::auth::create_token(self.state.index(), role, name)
            .await
            .expect("token")
    }

    /// Copies a Breakpad symbol tree (`<debug_file>/<id>/<file>.sym`) into the store
    /// under `symbols/`, as an operator copying it into `<data_dir>/store/symbols`.
    pub async fn add_symbols(&self, tree: &Path) {
        add_symbols(self.state.storage(), tree).await;
    }

    /// Signs in with `token` through the sign-in form (`POST /login`, answered
    /// `303`): the session cookie as a `Cookie` header sends it (`name=value`), and
    /// the whole `Set-Cookie` header.
    pub async fn sign_in(&self, token: &str) -> (String, String) {
        let signed_in = self
            .request(Method::POST, "/login")
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let set_cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        (cookie, set_cookie.to_owned())
    }

    /// A request for `path` (with its query) on this server.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        api::request(&self.url, method, path)
    }

    /// `GET path`, sent, without a token.
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// `GET path`, sent, with a bearer `token`.
    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        let request = self.request(Method::GET, path).bearer_auth(token);
        request.send().await.unwrap()
    }

    /// `POST /submit` with `body` as it is ([`api::submit_body`]).
    pub async fn submit_body(&self, content_type: &str, body: Vec<u8>, gzipped: bool) -> Response {
        api::submit_body(&self.url, content_type, body, gzipped).await
    }

    /// Submits `dump` with the annotations `fields` as a Breakpad client does; the
    /// server must accept it.
    pub async fn submit(&self, dump: &[u8], fields: &[(&str, &str)]) -> Sent {
        api::submit(&self.url, dump, fields).await
    }

    /// Submits `dump` with `fields` and waits until it is processed (or failed):
    /// its CrashID and the report's JSON as `token` reads it.
    pub async fn submit_processed(
        &self,
        token: &str,
        dump: &[u8],
        fields: &[(&str, &str)],
    ) -> (String, Value) {
        let id = self.submit(dump, fields).await.id;
        let report = self.wait_processed(token, &id).await;
        (id, report)
    }

    /// `GET path` with a bearer `token`: status and JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> (StatusCode, Value) {
        api::get_json(&self.url, path, token).await
    }

    /// `GET path` with a bearer `token`: status and body as they are.
    pub async fn get_bytes(&self, path: &str, token: &str) -> (StatusCode, Vec<u8>) {
        api::get_bytes(&self.url, path, token).await
    }

    /// `POST path` with a bearer `token` and, if given, a JSON `body`.
    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        api::post_json(&self.url, path, token, body).await
    }

    /// `POST /api/v1/issues/{issue}/resolve` with a bearer `token` and, if
    /// given, a JSON `body` (`{"in_version": …}`).
    pub async fn resolve(
        &self,
        issue: impl std::fmt::Display,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.post_json(&format!("/api/v1/issues/{issue}/resolve"), token, body)
            .await
    }

    /// `DELETE path` with the `Authorization` header `authorization`.
    pub async fn delete(&self, path: &str, authorization: &str) -> (StatusCode, Value) {
        api::delete(&self.url, path, authorization).await
    }

    /// Polls the API until report `id` is no longer queued; returns its JSON.
    pub async fn wait_processed(&self, token: &str, id: &str) -> Value {
        api::wait_processed(&self.url, token, id).await
    }

    /// Polls the API until `done` holds for report `id`; returns its JSON.
    pub async fn wait_report(&self, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        api::wait_report(&self.url, token, id, done).await
    }

    /// Polls the API until report `id` is processed (its JSON) or gone (`None`).
    pub async fn settle(&self, token: &str, id: &str) -> Option<Value> {
        api::settle(&self.url, token, id).await
    }

    /// Polls the report list until `product` has a report, for a minute (a crash
    /// handler uploads on its own time): its id. Fails if more than one came.
    pub async fn wait_for_upload(&self, token: &str, product: &str) -> String {
        let patience = Duration::from_secs(60);
        let deadline = Instant::now() + patience;
        loop {
            let (status, body) = self
                .get_json(&format!("/api/v1/reports?product={product}"), token)
                .await;
            assert!(status.is_success(), "{status} {body}");
            let ids = api::texts(&body["reports"], "id");
            if let [id] = ids.as_slice() {
                return id.clone();
            }
            assert!(ids.is_empty(), "one upload, not {ids:?}");
            assert!(
                Instant::now() < deadline,
                "no report of {product} within {patience:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Queues report `id` for processing again, wakes the workers and waits
    /// until the queue is drained.
    pub async fn process_again(&self, id: &str) {
        let id = id.parse().expect("a CrashID");
        let index = self.state.index();
        index
            .enqueue_job(&id, mayday_server::index::now_ms())
            .await
            .unwrap();
        self.state.wake_workers();
        self.drain().await;
    }

    /// The ids of the reports the index holds (at most 10, oldest first).
    pub async fn stored_reports(&self) -> Vec<mayday_server::report_id::ReportId> {
        self.state
            .index()
            .report_ids_received_before(i64::MAX, 10)
            .await
            .unwrap()
    }

    /// Starts `count` processing workers of the test's own beside the server's
    /// (a server configured with `pipeline.workers = 0` has none): a test can fill
    /// the queue first and start them when it wants the work done.
    pub fn start_workers(&self, count: usize) -> Workers {
        let (stop, stopped) = watch::channel(false);
        Workers {
            tasks: self.state.spawn_workers(count, stopped),
            stop,
        }
    }

    /// Waits until no job is waiting or running.
    pub async fn drain(&self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.state.index().queue_depth().await.unwrap() > 0 {
            assert!(Instant::now() < deadline, "the queue did not drain");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every key in the object store (below `prefix`, when given), sorted; the
    /// health probe's key left out.
    pub async fn store_keys(&self, prefix: Option<&str>) -> Vec<String> {
        let prefix = prefix.map(object_store::path::Path::from);
        let mut keys: Vec<String> = self
            .state
            .storage()
            .list(prefix.as_ref())
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.to_string())
            .filter(|k| !k.starts_with("health/"))
            .collect();
        keys.sort();
        keys
    }

    /// The object store keys of report `crash_id` (those that name its UUID).
    pub async fn report_keys(&self, crash_id: &str) -> Vec<String> {
        let uuid = crash_id.trim_start_matches("bp-");
        let mut keys = self.store_keys(None).await;
        keys.retain(|k| k.contains(uuid));
        keys
    }

    /// Report `crash_id`'s raw object (its dump and metadata) as stored,
    /// sealed: its key and bytes.
    pub async fn stored_raw(&self, crash_id: &str) -> (object_store::path::Path, bytes::Bytes) {
        let key = self
            .report_keys(crash_id)
            .await
            .into_iter()
            .find(|k| k.ends_with(".dmp"))
            .unwrap_or_else(|| panic!("{crash_id} has no raw object"));
        let path = object_store::path::Path::from(key.as_str());
        let object = self.state.storage().get(&path).await.unwrap().unwrap();
        (path, object)
    }

    /// Every blob report `crash_id` has in the store, opened through the vault
    /// (a raw object: its dump, with its stack memory while the stack key
    /// exists, then its metadata): `(key, plaintext)` pairs, to search for what
    /// must not be stored.
    pub async fn opened_report_blobs(&self, crash_id: &str) -> Vec<(String, Vec<u8>)> {
        let id: mayday_server::report_id::ReportId = crash_id.parse().unwrap();
        let vault = self.state.vault();
        let mut opened = Vec::new();
        for key in self.report_keys(crash_id).await {
            let path = object_store::path::Path::from(key.as_str());
            let plain = if key.ends_with(".dmp") {
                let keys = vault.keys(&id).await.unwrap().expect("the report's keys");
                let (_, object) = self.stored_raw(crash_id).await;
                let raw = mayday_server::vault::open_raw(&path, object, &keys, true)
                    .unwrap_or_else(|e| panic!("{key} does not open: {e}"));
                [raw.dump.to_vec(), raw.meta.unwrap_or_default().to_vec()].concat()
            } else {
                vault
                    .read(&id, &path)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{key} does not open"))
                    .to_vec()
            };
            opened.push((key, plain));
        }
        opened
    }

    /// Asserts that report `crash_id` has two blobs in the store, the dump with
    /// its metadata and the processed report, and that none of `needles` is in
    /// either, opened.
    pub async fn assert_blobs_free_of(&self, crash_id: &str, needles: &[&str]) {
        let blobs = self.opened_report_blobs(crash_id).await;
        assert_eq!(
            blobs.len(),
            2,
            "{:?}",
            blobs.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
        for (key, plain) in blobs {
            for needle in needles {
                assert!(!contains(&plain, needle.as_bytes()), "{needle} in {key}");
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Copies a Breakpad symbol tree (`<debug_file>/<id>/<file>.sym`) into `storage`
/// under `symbols/`, as an operator copying it into the store (or the bucket)
/// every server reads symbols from.
pub async fn add_symbols(storage: &mayday_server::storage::Storage, tree: &Path) {
    for file in walk(tree) {
        let rel = file.strip_prefix(tree).unwrap();
        let key: object_store::path::Path = std::iter::once("symbols".to_owned())
            .chain(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned()),
            )
            .collect::<Vec<_>>()
            .join("/")
            .into();
        let bytes = std::fs::read(&file).unwrap();
        storage.put(&key, bytes.into()).await.unwrap();
    }
}

/// The real `mayday-server` binary, run as a child process.
pub struct ServerProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    /// Everything the server wrote so far (stderr, where it logs, and stdout) is
    /// also copied here, line by line.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `mayday-server serve` with `data_dir` and extra environment.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let mut command = Command::new(crate::fixtures::bin("mayday-server"));
        command
            .arg("serve")
            .env("MAYDAY_DATA_DIR", data_dir)
            .env("MAYDAY_LISTEN", "127.0.0.1:0")
            .env("MAYDAY_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("mayday-server starts");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log_copy = log.clone();
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                log_copy.lock().unwrap().push(line);
            }
        });
        let log_copy = log.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"listening\"")
                    && let Some(tx) = tx.take()
                {
                    let json: Value = serde_json::from_str(&line).unwrap_or_default();
                    let _ = tx.send(json["fields"]["address"].as_str().map(str::to_owned));
                }
                log_copy.lock().unwrap().push(line);
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .ok()
            .flatten()
            .expect("mayday-server logs its address");
        ServerProcess {
            url: format!("http://{address}"),
            child,
            log,
            readers: vec![stdout_reader, stderr_reader],
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's memory now, from `/proc/<pid>/status`.
    pub fn memory(&self) -> Memory {
        Memory::of(self.pid())
    }

    /// The CPU time the server's threads have used so far (user and system),
    /// from `/proc/<pid>/stat`: what a benchmark divides by the work done, a
    /// figure other load on the machine changes far less than a rate.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("/proc/<pid>/stat of the server");
        // Fields after the command name (which may hold spaces), from the
        // state (field 3): utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
        let ticks = ticks(14).unwrap_or(0) + ticks(15).unwrap_or(0);
        // In USER_HZ, 100 per second on Linux's ABI.
        Duration::from_millis(ticks * 10)
    }

    /// Kills the server with SIGKILL: no shutdown, no flush. Returns once
    /// everything it wrote is in [`ServerProcess::log`].
    pub fn kill(mut self) {
        let _ = self.child.kill();
        self.reap();
    }

    /// Stops the server as an operator does, with SIGTERM, and waits for it to
    /// exit: up to `grace`, then it is killed. An instrumented build writes its
    /// profile on the way out (`scripts/pgo-build`). Returns how it exited when it
    /// did so by itself within `grace` (`None`: it had to be killed), once
    /// everything it wrote is in [`ServerProcess::log`].
    pub fn stop(mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("a pid fits in i32"));
        let mut exited = None;
        if kill(pid, Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    exited = Some(status);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if exited.is_none() {
            let _ = self.child.kill();
        }
        self.reap();
        exited
    }

    fn reap(&mut self) {
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss: u64,
    /// The highest it has been (`VmHWM`).
    pub peak: u64,
}

impl Memory {
    /// Reads `/proc/<pid>/status`.
    pub fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("/proc/<pid>/status of the server");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
                .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
        };
        Memory {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
        }
    }
}

/// Runs `mayday-server token create --role <role>` on `data_dir` and returns the
/// printed token.
pub fn cli_token(data_dir: &Path, role: &str) -> String {
    cli_token_with(data_dir, &[], role)
}

/// [`cli_token`] with extra environment (`MAYDAY_DATABASE_URL` for a server
/// whose index is not in its data dir).
pub fn cli_token_with(data_dir: &Path, env: &[(&str, &str)], role: &str) -> String {
    let output = Command::new(crate::fixtures::bin("mayday-server"))
        .args(["token", "create", "--role", role])
        .env("MAYDAY_DATA_DIR", data_dir)
        .envs(env.iter().copied())
        .output()
        .expect("mayday-server token create runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {text:?}");
    lines[0].to_owned()
}
