//! The application: opens the parts, builds the state they share, wires the
//! router and starts the workers, the webhook deliverer and the retention
//! sweeper. The top layer: the one module (beside `main.rs` and the CLI) that
//! knows every other one.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::middleware::AddExtension;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, watch};

pub mod http10;

use crate::config::{Config, HttpConfig};
use crate::index::{self, Alerts, Index, Intake};
use crate::ingest::{self, IngestState};
use crate::metrics::{Metrics, WriterUser};
use crate::pipeline::memory::MemoryBudget;
use crate::pipeline::signature::{RulesError, SignatureRules};
use crate::pipeline::{self, Pipeline, Wake};
use crate::storage::{self, Storage};
use crate::throttle::Throttle;
use crate::triage::{self, TriageState};
use crate::vault::Vault;
use crate::{crypto, retention, webhooks};

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The object store could not be opened.
    #[error("opening the object store: {0}")]
    Storage(#[from] storage::StorageError),
    /// The index could not be opened or migrated.
    #[error("opening the index: {0}")]
    Index(#[from] crate::index::IndexError),
    /// The master key could not be read or created.
    #[error("master key: {0}")]
    Keys(#[from] crypto::CryptoError),
    /// The data directory could not be created.
    #[error("creating the data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The deployment's signature rules could not be read or compiled.
    #[error(transparent)]
    Signatures(#[from] RulesError),
}

/// The shared state of one server process: cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    vault: Vault,
    symbols: mayday_symbols::Symbols,
    wake: Wake,
    /// The processing workers' memory budget, shared by them all.
    memory: MemoryBudget,
    metrics: Arc<Metrics>,
    throttle: Throttle,
    intake: Intake,
    signatures: Arc<SignatureRules>,
}

impl AppState {
    /// Builds the state from already opened parts and the compiled signature
    /// rules (on a Tokio runtime: it starts the index's [`Intake`]).
    pub fn new(
        config: Config,
        storage: Storage,
        index: Index,
        keyring: crypto::Keyring,
        signatures: SignatureRules,
    ) -> AppState {
        // One provider for the whole process: every worker shares its caches.
        let symbols = mayday_symbols::Symbols::new(
            mayday_symbols::SymbolStore::new(storage.object_store()),
            config.symbols.clone(),
        );
        let metrics = Arc::new(Metrics::default());
        // Finishing a processed report writes the webhook events it makes.
        let index = index.with_alerts(Alerts::new(&config.webhooks, &config.public_base_url()));
        let throttle = Throttle::new(&config.rate_limit, &config.throttle, Arc::clone(&metrics));
        let intake = Intake::start(index.clone());
        let memory = MemoryBudget::new(config.pipeline.memory_bytes);
        AppState(Arc::new(Inner {
            config,
            vault: Vault::new(storage, index, keyring),
            intake,
            symbols,
            wake: Wake::default(),
            memory,
            metrics,
            throttle,
            signatures: Arc::new(signatures),
        }))
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The report vault: report blobs and their data keys.
    pub fn vault(&self) -> &Vault {
        &self.0.vault
    }

    /// The blob store.
    pub fn storage(&self) -> &Storage {
        self.0.vault.storage()
    }

    /// The index.
    pub fn index(&self) -> &Index {
        self.0.vault.index()
    }

    /// The master keys that wrap the reports' data keys.
    pub fn keyring(&self) -> &crypto::Keyring {
        self.0.vault.keyring()
    }

    /// The symbol provider shared by all workers. Process each report with its
    /// own [`session`](mayday_symbols::Symbols::session), so the report's symbol
    /// statistics and missing symbols are its own.
    pub fn symbols(&self) -> &mayday_symbols::Symbols {
        &self.0.symbols
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The signature rules in effect: the built-in lists plus the deployment's
    /// own, compiled when the state was built.
    pub fn signatures(&self) -> &SignatureRules {
        &self.0.signatures
    }

    /// Tells idle workers in this process that there is work.
    pub fn wake_workers(&self) {
        self.0.wake.wake();
    }

    /// Starts `count` processing workers on this state, whatever the
    /// configuration says; they stop when `shutdown` turns true. (A server built
    /// with no workers can have them started later, after its queue is filled.)
    pub fn spawn_workers(
        &self,
        count: usize,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let process = uuid::Uuid::new_v4().simple().to_string();
        (0..count)
            .map(|i| {
                tokio::spawn(index::writing_as(
                    WriterUser::Jobs,
                    pipeline::run_worker(
                        self.pipeline(),
                        format!("{}-{i}", &process[..8]),
                        shutdown.clone(),
                    ),
                ))
            })
            .collect()
    }

    /// What the processing workers need.
    pub fn pipeline(&self) -> Pipeline {
        let config = self.config();
        Pipeline {
            index: self.index().clone(),
            vault: self.vault().clone(),
            symbols: self.symbols().clone(),
            metrics: Arc::clone(&self.0.metrics),
            config: config.pipeline.clone(),
            scrub: config.scrub.clone(),
            signatures: Arc::clone(&self.0.signatures),
            wake: self.0.wake.clone(),
            memory: self.0.memory.clone(),
        }
    }

    /// What the upload endpoint needs.
    pub fn ingest(&self) -> IngestState {
        let config = self.config();
        IngestState {
            vault: self.vault().clone(),
            metrics: Arc::clone(&self.0.metrics),
            limits: config.limits.clone(),
            scrub: Arc::new(config.scrub.clone()),
            wake: self.0.wake.clone(),
            body_idle_timeout: config.http.body_idle_timeout,
            spooler: Arc::new(ingest::Spooler::new(&config.data_dir, &config.limits)),
            throttle: self.0.throttle.clone(),
            intake: self.0.intake.clone(),
            index: self.index().clone(),
            crash_sites: Arc::new(config.crash_sites.clone()),
            sentry: Arc::new(config.sentry.clone()),
        }
    }

    /// What the triage routes need.
    pub fn triage(&self) -> TriageState {
        TriageState::new(
            self.vault().clone(),
            self.symbols().clone(),
            Arc::clone(&self.0.metrics),
            self.config().symbol_uploads.clone(),
            self.0.wake.clone(),
            self.config().secure_cookies(),
        )
    }
}

/// A built application: the router and the state its workers share.
pub struct App {
    /// The shared state.
    pub state: AppState,
    /// Every route.
    pub router: Router,
    /// `<data_dir>/server.lock`, held shared while this process runs (see
    /// [`App::build`]).
    _data_dir_lock: Option<std::fs::File>,
}

impl App {
    /// Compiles the signature rules, opens storage and index as `config` says
    /// (creating the data dir and running migrations) and builds the router.
    pub async fn build(config: Config) -> Result<App, StartError> {
        // The deployment's rules first: a mistake in them changes nothing.
        let signatures = SignatureRules::load(config.signatures.rules_dir.as_deref())?;
        std::fs::create_dir_all(&config.data_dir)?;
        // Every server process on this data dir holds its lock shared while it
        // runs; one that can take it exclusively at start is the only one.
        let lock = std::fs::File::create(config.data_dir.join("server.lock"))?;
        let alone = lock.try_lock().is_ok();
        // Spooled uploads a crash left behind (encrypted under keys now gone).
        ingest::clear_spool(&config.data_dir)?;
        let storage = Storage::open(&config.store_url(), &config.store_options)?;
        let local_store = storage.local_root().is_some();
        let index = Index::connect(&config.database_url()).await?;
        let keyring = crypto::MasterKey::load(&config)?;
        let mut app = App::from_state(AppState::new(config, storage, index, keyring, signatures));
        if alone && local_store {
            // No upload can be under way in the local store: the recent blobs no
            // key and no report claim are what uploads cut short by a crash left
            // (older ones are the daily sweep's).
            let recent = crate::index::now_ms() - 2 * retention::ORPHAN_KEY_AGE_MS;
            match retention::sweep_unclaimed_blobs(app.state.vault(), recent..i64::MAX).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(blobs = n, "removed blobs of unrecorded uploads"),
                Err(e) => tracing::warn!(error = %e, "could not sweep unrecorded uploads"),
            }
            // And the half-written files of blobs whose write the crash cut short.
            match app.state.vault().storage().remove_partial_writes("raw") {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "removed half-written blobs"),
                Err(e) => tracing::warn!(error = %e, "could not remove half-written blobs"),
            }
        }
        if alone {
            lock.unlock()?;
        }
        lock.lock_shared()?;
        app._data_dir_lock = Some(lock);
        Ok(app)
    }

    /// Builds the router around an existing state.
    pub fn from_state(state: AppState) -> App {
        let router = Router::new()
            .merge(ingest::router(state.ingest()))
            .merge(triage::router(state.triage()))
            .layer(
                tower_http::trace::TraceLayer::new_for_http()
                    .make_span_with(
                        // No client address, no headers: request logs carry no IP.
                        |request: &axum::http::Request<_>| {
                            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                        },
                    )
                    // One structured line per response: status and latency.
                    .on_response(
                        tower_http::trace::DefaultOnResponse::new()
                            .level(tracing::Level::INFO)
                            .latency_unit(tower_http::LatencyUnit::Millis),
                    ),
            )
            .with_state(state.clone());
        App {
            state,
            router,
            _data_dir_lock: None,
        }
    }

    /// Serves on `listener` with workers, the webhook deliverer (when webhooks
    /// are configured) and the retention sweeper until
    /// `shutdown` resolves, then drains requests and stops them.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut workers = self
            .state
            .spawn_workers(self.state.config().pipeline.workers, stop_rx.clone());
        let hooks = &self.state.config().webhooks;
        if !hooks.is_empty() {
            workers.push(tokio::spawn(webhooks::run_deliverer(
                self.state.index().clone(),
                hooks.clone(),
                Arc::clone(&self.state.0.metrics),
                stop_rx.clone(),
            )));
        }
        workers.push(tokio::spawn(retention::run_sweeper(
            self.state.vault().clone(),
            Arc::clone(&self.state.0.metrics),
            self.state.config().retention_days,
            stop_rx,
        )));
        let result =
            serve_connections(listener, self.router, &self.state.config().http, shutdown).await;
        let _ = stop_tx.send(true);
        for worker in workers {
            let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
        }
        self.state.index().close().await;
        result
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// connections finish (60 s at most).
///
/// HTTP/1 only: crash clients upload with HTTP/1.0 or 1.1, and TLS (where
/// HTTP/2 is negotiated) ends at the proxy in front. HTTP/2 in clear text would
/// let one connection carry many uploads past the connection cap, with none of
/// the header timeouts below.
///
/// Each connection holds a permit of a semaphore sized by `max_connections`: at the
/// cap, new connections wait in the listen backlog, so file descriptors cannot run
/// out. Request headers must come within `header_read_timeout`; a connection with
/// no byte read or written for `idle_timeout` is shut down gracefully (a request
/// under way finishes first; an idle upload body is ended by ingest's own timeout).
async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    http: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = connection_cap(http.max_connections);
    let permits = Arc::new(Semaphore::new(max));
    let mut builder = ConnBuilder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The peer address reaches the upload rate limit (and nothing else).
        let service = tower::Layer::layer(&Extension(ConnectInfo(peer)), router.clone());
        tokio::spawn(serve_connection(
            stream,
            service,
            builder.clone(),
            http.idle_timeout,
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(60), permits.acquire_many(all)).await;
    Ok(())
}

/// The connection cap in effect: `configured`, or half the open-file limit (at
/// least 16, at most 1024).
fn connection_cap(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    usize::try_from(soft / 2).unwrap_or(1024).clamp(16, 1024)
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: AddExtension<Router, ConnectInfo<SocketAddr>>,
    builder: ConnBuilder<TokioExecutor>,
    idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let activity = Arc::new(AtomicU64::new(0));
    let started = tokio::time::Instant::now();
    let io = Tracked {
        inner: stream,
        started,
        last: Arc::clone(&activity),
    };
    // Crashpad's HTTP/1.0 uploads with a chunked body, which hyper refuses.
    let io = http10::FirstHead::new(io);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    let mut conn = std::pin::pin!(conn);
    let check = (idle_timeout / 4).max(Duration::from_millis(100));
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep(check), if !closing => {
                let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(last) >= idle_timeout {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// A connection's socket that notes when a byte last went through (ms since
/// `started`).
struct Tracked {
    inner: tokio::net::TcpStream,
    started: tokio::time::Instant,
    last: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
