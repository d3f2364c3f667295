//! Real services for tests: an S3-compatible server and PostgreSQL.
//!
//! Both are the real thing, started by the tests themselves, so no test is ever
//! skipped because a service is missing:
//!
//! - [`S3Server`]: s3s + s3s-fs in this process on `127.0.0.1:<free port>`, over a
//!   temporary directory, speaking the S3 wire protocol with SigV4 signatures checked
//!   against a static key pair. One bucket is created. Stopped when dropped.
//! - [`Postgres`]: a throwaway cluster made with Debian's `initdb` in a temporary
//!   directory, listening on `127.0.0.1:<free port>` with trust authentication.
//!   [`Postgres::database`] makes a fresh database per call, so tests share one
//!   cluster ([`Postgres::shared`]) without sharing data. `scripts/install-test-deps`
//!   installs the binaries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A real S3-compatible server (s3s-fs) in this process, on `127.0.0.1:<free port>`,
/// storing into a temporary directory. Requests must be signed (SigV4) with
/// [`S3Server::access_key`] / [`S3Server::secret_key`]; the bucket [`S3Server::bucket`]
/// exists. Stopped, and its directory removed, when dropped.
///
/// Start it inside the Tokio runtime that uses it (e.g. in a `#[tokio::test]`): it
/// serves from tasks of that runtime.
#[derive(Debug)]
pub struct S3Server {
    addr: SocketAddr,
    bucket: String,
    root: tempfile::TempDir,
    accept: JoinHandle<()>,
}

impl S3Server {
    /// Access key id the server accepts.
    pub const ACCESS_KEY: &'static str = "mayday-test-access-key";
    /// Secret key the server checks signatures with.
    pub const SECRET_KEY: &'static str = "mayday-test-secret-key-0123456789";
    /// Region clients sign for.
    pub const REGION: &'static str = "us-east-1";
    /// Name of the bucket created at start.
    pub const BUCKET: &'static str = "mayday-test";

    /// Starts a server with an empty bucket [`S3Server::BUCKET`].
    ///
    /// Panics if it cannot start (no free port, no temp dir): a test cannot go on.
    pub async fn start() -> S3Server {
        let root = tempfile::Builder::new()
            .prefix("mayday-s3-")
            .tempdir()
            .expect("temp dir for the S3 server");
        // s3s-fs keeps a bucket as a directory under its root.
        std::fs::create_dir(root.path().join(Self::BUCKET)).expect("create the bucket directory");
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0 for the S3 server");
        let addr = listener
            .local_addr()
            .expect("local address of the S3 server");
        let accept = Self::serve(listener, root.path());
        S3Server {
            addr,
            bucket: Self::BUCKET.to_owned(),
            root,
            accept,
        }
    }

    /// Serves the S3 API over `root` on `listener`, from a task whose abort
    /// ends every connection.
    fn serve(listener: TcpListener, root: &Path) -> JoinHandle<()> {
        let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs over the temp dir");
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(Self::ACCESS_KEY, Self::SECRET_KEY));
            builder.build()
        };
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            // Connections live in this set: aborting the accept task drops the set,
            // which aborts every connection, so a dropped server really stops.
            let mut connections = JoinSet::new();
            loop {
                let socket = match listener.accept().await {
                    Ok((socket, _)) => socket,
                    Err(_) => {
                        // Out of file descriptors and the like: wait, then go on.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = conn.await;
                });
                // Reap finished connections so the set does not grow without bound.
                while connections.try_join_next().is_some() {}
            }
        })
    }

    /// Stops serving (the store is down): connections are cut and new ones
    /// refused. The objects stay; [`S3Server::resume`] serves them again.
    pub async fn stop(&mut self) {
        self.accept.abort();
        let _ = (&mut self.accept).await;
    }

    /// Serves again on the same address after [`S3Server::stop`].
    pub async fn resume(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the S3 server's address again");
        self.accept = Self::serve(listener, self.root.path());
    }

    /// The server's URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bucket that exists on the server.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Access key id to sign requests with.
    pub fn access_key(&self) -> &str {
        Self::ACCESS_KEY
    }

    /// Secret key to sign requests with.
    pub fn secret_key(&self) -> &str {
        Self::SECRET_KEY
    }

    /// Region to sign requests for.
    pub fn region(&self) -> &str {
        Self::REGION
    }

    /// The directory the server stores into (objects are at `<root>/<bucket>/<key>`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The store URL of the bucket for `mayday_server::storage::Storage::open`:
    /// `s3://<bucket>`.
    pub fn store_url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    /// The settings that point object_store at this server: each as a
    /// `Storage::open` option (a key `object_store::aws::AmazonS3ConfigKey`
    /// parses), as the environment variable object_store reads, and its value.
    fn settings(&self) -> [(&'static str, &'static str, String); 5] {
        [
            ("endpoint", "AWS_ENDPOINT", self.endpoint()),
            ("region", "AWS_REGION", Self::REGION.to_owned()),
            (
                "access_key_id",
                "AWS_ACCESS_KEY_ID",
                Self::ACCESS_KEY.to_owned(),
            ),
            (
                "secret_access_key",
                "AWS_SECRET_ACCESS_KEY",
                Self::SECRET_KEY.to_owned(),
            ),
            ("allow_http", "AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// Options for `Storage::open` that point object_store at this server.
    pub fn store_options(&self) -> BTreeMap<String, String> {
        self.settings()
            .into_iter()
            .map(|(option, _, value)| (option.to_owned(), value))
            .collect()
    }

    /// The same settings as environment variables (`MAYDAY_STORE_URL` and the
    /// standard `AWS_*` names object_store reads), for a server started as a process.
    pub fn env(&self) -> Vec<(String, String)> {
        let store_url = ("MAYDAY_STORE_URL".to_owned(), self.store_url());
        std::iter::once(store_url)
            .chain(
                self.settings()
                    .into_iter()
                    .map(|(_, name, value)| (name.to_owned(), value)),
            )
            .collect()
    }

    /// A client of this server's bucket that is independent of object_store
    /// (rust-s3), to check what is really stored.
    pub fn independent_client(&self) -> Box<s3::Bucket> {
        let region = s3::Region::Custom {
            region: Self::REGION.to_owned(),
            endpoint: self.endpoint(),
        };
        let credentials = s3::creds::Credentials::new(
            Some(Self::ACCESS_KEY),
            Some(Self::SECRET_KEY),
            None,
            None,
            None,
        )
        .expect("static credentials");
        s3::Bucket::new(&self.bucket, region, credentials)
            .expect("rust-s3 bucket")
            .with_path_style()
    }

    /// Every key in the bucket below `prefix` (`""` for all), sorted, as the
    /// [`S3Server::independent_client`] lists them.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .independent_client()
            .list(prefix.to_owned(), None)
            .await
            .expect("rust-s3 list")
            .into_iter()
            .flat_map(|page| page.contents)
            .map(|object| object.key)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A throwaway PostgreSQL cluster on `127.0.0.1:<free port>` with trust
/// authentication, in a temporary directory. Stopped and removed when dropped — or,
/// for [`Postgres::shared`], when the test process exits (a watchdog process sees
/// the end of its stdin and cleans up, even after a crash or SIGKILL).
///
/// Uses Debian's binaries in `/usr/lib/postgresql/<version>/bin`; when running as
/// root, the cluster runs as the `postgres` OS user (PostgreSQL refuses root).
#[derive(Debug)]
pub struct Postgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres_user: bool,
    /// Held for its Drop: stops the cluster and removes `dir`.
    _watchdog: Watchdog,
}

/// The process that stops a cluster and removes its directory once the pipe to its
/// stdin closes. Dropping this closes the pipe and waits for the cleanup.
#[derive(Debug)]
struct Watchdog {
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

static SHARED_POSTGRES: OnceLock<Postgres> = OnceLock::new();
static DATABASE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Postgres {
    /// The cluster shared by every test of this process, started on first use.
    pub fn shared() -> &'static Postgres {
        SHARED_POSTGRES.get_or_init(Postgres::start)
    }

    /// Starts a new cluster of its own (most tests want [`Postgres::shared`]).
    ///
    /// Panics when PostgreSQL is not installed (run `scripts/install-test-deps`) or
    /// does not start; the panic message includes the server log.
    pub fn start() -> Postgres {
        let bin = postgres_bin_dir();
        let as_postgres_user = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("mayday-pg-")
            .tempdir()
            .expect("temp dir for PostgreSQL")
            .keep();
        if as_postgres_user {
            run_checked(Command::new("chown").arg("postgres:postgres").arg(&dir));
        }

        // The watchdog: stops the cluster and removes its directory once this process
        // closes the pipe — by Drop, or by exiting in any way. It ignores the
        // terminal's signals so that a Ctrl-C of the tests still cleans up.
        let stop = pg_command(as_postgres_user, &bin.join("pg_ctl"));
        let stop_line = format!(
            "{} stop -D {} -m immediate -w",
            shell_words(&stop),
            dir.join("data").display()
        );
        let script = format!(
            "trap '' INT TERM HUP; cat >/dev/null; {stop_line} >/dev/null 2>&1; rm -rf '{}'",
            dir.display()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the PostgreSQL watchdog (sh)");
        // From here on, any panic drops the watchdog, which cleans up.
        let watchdog = Watchdog {
            stdin: child.stdin.take(),
            child,
        };

        let mut initdb = pg_command(as_postgres_user, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(&dir);
        run_checked(&mut initdb);

        let log = dir.join("postgres.log");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} \
                 -c max_connections=300 -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off",
                dir.display()
            );
            let mut start = pg_command(as_postgres_user, &bin.join("pg_ctl"));
            start
                .arg("start")
                .arg("-D")
                .arg(dir.join("data"))
                .arg("-l")
                .arg(&log)
                .arg("-o")
                .arg(options)
                .args(["-w", "-t", "60"])
                .current_dir(&dir)
                .stdin(Stdio::null());
            let output = start.output().expect("run pg_ctl start");
            if output.status.success() {
                return Postgres {
                    port,
                    dir,
                    bin,
                    as_postgres_user,
                    _watchdog: watchdog,
                };
            }
            // Most likely someone took the port between our check and the start.
            last_error = format!(
                "{}{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("PostgreSQL did not start:\n{last_error}");
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data in `data/`, log in `postgres.log`, socket here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of the maintenance database `postgres` (superuser `postgres`).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates a fresh, empty database and returns its URL,
    /// `postgres://postgres@127.0.0.1:<port>/<name>_<n>`. The name is `name` made safe
    /// (lower-case letters, digits, `_`) plus a number unique in this process, so two
    /// calls — even with the same name, from tests running in parallel — never share a
    /// database.
    pub fn database(&self, name: &str) -> String {
        let mut safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        if safe.is_empty() || safe.starts_with(|c: char| c.is_ascii_digit()) {
            safe.insert_str(0, "db_");
        }
        let n = DATABASE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let db = format!("{safe}_{}_{n}", std::process::id());
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(&db)
            .current_dir(&self.dir);
        run_checked(&mut createdb);
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL through `psql` on database `url`'s database and returns its
    /// unaligned, tuples-only output (for checks independent of the code under test).
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .arg(url)
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .current_dir(&self.dir)
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned()
    }

    /// Whether the cluster runs as the `postgres` OS user (this process is root).
    pub fn runs_as_postgres_user(&self) -> bool {
        self.as_postgres_user
    }
}

/// A ChromeDriver (Debian's `chromium-driver`) on `127.0.0.1:<free port>`, for
/// end-to-end tests in real headless Chromium through any WebDriver client
/// (fantoccini, thirtyfour, or plain HTTP). Killed when dropped; quit your sessions
/// first, so their browsers end with them.
///
/// ```no_run
/// # fn f() {
/// let driver = mayday_tests::services::ChromeDriver::start();
/// // POST {driver.url()}/session with
/// // {"capabilities": {"alwaysMatch": driver.capabilities()}}
/// # }
/// ```
#[derive(Debug)]
pub struct ChromeDriver {
    port: u16,
    child: Child,
}

impl ChromeDriver {
    /// Debian's ChromeDriver.
    pub const DRIVER: &'static str = "/usr/bin/chromedriver";
    /// Debian's Chromium.
    pub const BROWSER: &'static str = "/usr/bin/chromium";

    /// Starts ChromeDriver and waits until it reports ready.
    ///
    /// Panics when Chromium or ChromeDriver is not installed (run
    /// `scripts/install-test-deps`) or the driver does not become ready.
    pub fn start() -> ChromeDriver {
        for path in [Self::DRIVER, Self::BROWSER] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: run scripts/install-test-deps \
                 (Debian's chromium and chromium-driver)"
            );
        }
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(Self::DRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            let mut driver = ChromeDriver { port, child };
            match driver.wait_ready(Duration::from_secs(20)) {
                Ok(()) => return driver,
                // Dropping `driver` kills it; most likely the port was taken.
                Err(error) => last_error = error,
            }
        }
        panic!("chromedriver did not become ready: {last_error}");
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        let status_url = format!("{}/status", self.url());
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited: {status}"));
            }
            let ready = client
                .get(&status_url)
                .send()
                .and_then(|r| r.json::<serde_json::Value>())
                .map(|v| v["value"]["ready"] == serde_json::Value::Bool(true));
            match ready {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(e.to_string());
                    }
                }
            }
            if std::time::Instant::now() >= deadline {
                return Err("not ready in time".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The WebDriver URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// W3C capabilities for a new session: Debian's Chromium, headless, no sandbox
    /// (tests run as root in CI), no GPU, and none of Chromium's background traffic
    /// (this machine's network is closed, and tests talk to 127.0.0.1 only).
    /// Chromedriver gives each session a fresh temporary profile.
    pub fn capabilities(&self) -> serde_json::Map<String, serde_json::Value> {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--metrics-recording-only",
            "--window-size=1280,900",
        ];
        let value = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": Self::BROWSER,
                "args": args,
            },
        });
        match value {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's PostgreSQL binaries, newest version first.
fn postgres_bin_dir() -> PathBuf {
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    match candidates.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             run scripts/install-test-deps"
        ),
    }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `program`, run as the `postgres` user when `as_postgres_user`.
fn pg_command(as_postgres_user: bool, program: &Path) -> Command {
    if as_postgres_user {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The program and arguments of `command` as one shell line (our paths have no
/// spaces or quotes; they are quoted anyway).
fn shell_words(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| format!("'{}'", word.to_string_lossy().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_checked(command: &mut Command) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", command.get_program()));
    assert!(
        output.status.success(),
        "{} failed ({}): {}{}",
        shell_words(command),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_databases_are_separate_and_cleaned_up() {
        let shared = Postgres::shared();
        assert!(
            std::ptr::eq(shared, Postgres::shared()),
            "one shared cluster"
        );
        let a = shared.database("Some Test!");
        let b = shared.database("Some Test!");
        assert_ne!(a, b, "every call makes a fresh database");
        assert!(a.starts_with(&format!(
            "postgres://postgres@127.0.0.1:{}/some_test__",
            shared.port()
        )));
        shared.psql(&a, "CREATE TABLE t (x int); INSERT INTO t VALUES (7)");
        assert_eq!(shared.psql(&a, "SELECT x FROM t"), "7");
        assert_eq!(
            shared.psql(&b, "SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
            "0"
        );

        // A cluster of its own is stopped and removed when dropped.
        let own = Postgres::start();
        let dir = own.dir().to_owned();
        let port = own.port();
        let url = own.database("own");
        assert_eq!(own.psql(&url, "SELECT 40 + 2"), "42");
        drop(own);
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the cluster still listens on {port}"
        );
    }

    #[test]
    fn chromedriver_drives_headless_chromium_to_a_local_page() {
        // A page on 127.0.0.1, served once.
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let page_url = format!("http://{}/hello", listener.local_addr().expect("addr"));
        let server = std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            let (mut socket, _) = listener.accept().expect("accept");
            let mut request = [0u8; 4096];
            let n = socket.read(&mut request).expect("read request");
            let body = "<!doctype html><title>Mayday test page</title><p id=x>hello</p>";
            write!(
                socket,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            )
            .expect("write response");
            String::from_utf8_lossy(&request[..n]).into_owned()
        });

        let driver = ChromeDriver::start();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let session: serde_json::Value = http
            .post(format!("{}/session", driver.url()))
            .json(&serde_json::json!({"capabilities": {"alwaysMatch": driver.capabilities()}}))
            .send()
            .expect("new session")
            .json()
            .expect("session json");
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        let session_url = format!("{}/session/{id}", driver.url());
        let navigated = http
            .post(format!("{session_url}/url"))
            .json(&serde_json::json!({ "url": page_url }))
            .send()
            .expect("navigate");
        assert!(navigated.status().is_success(), "{:?}", navigated.text());
        let title: serde_json::Value = http
            .get(format!("{session_url}/title"))
            .send()
            .expect("title")
            .json()
            .expect("title json");
        http.delete(&session_url).send().expect("end session");
        assert_eq!(title["value"], "Mayday test page");
        let request = server.join().expect("page server");
        assert!(request.starts_with("GET /hello "), "{request}");
    }

    #[tokio::test]
    async fn s3_server_serves_the_bucket_and_stops_when_dropped() {
        let s3 = S3Server::start().await;
        let bucket = s3.independent_client();
        let response = bucket.put_object("a/b.txt", b"hi").await.expect("put");
        assert_eq!(response.status_code(), 200);
        assert_eq!(
            std::fs::read(s3.root().join(s3.bucket()).join("a/b.txt")).expect("on disk"),
            b"hi"
        );
        let response = bucket.get_object("a/b.txt").await.expect("get");
        assert_eq!(response.as_slice(), b"hi");
        assert_eq!(s3.store_url(), "s3://mayday-test");
        assert_eq!(s3.store_options()["endpoint"], s3.endpoint());

        let addr = s3.addr();
        drop(s3);
        tokio::task::yield_now().await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the S3 server still accepts connections after drop"
        );
    }
}
