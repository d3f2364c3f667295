//! The Mayday crash report server.
//!
//! Data flows one way: [`ingest`] -> the job queue in the [`index`] -> the
//! [`pipeline`] (symbolicate, sign, store) -> the [`vault`] + [`index`] ->
//! [`triage`] (the API developers read) -> [`deletion`]. [`App::build`] wires it
//! all from one [`Config`] and returns the router plus the workers; `main.rs` only
//! parses the command line.
//!
//! # Layers
//!
//! A module imports only modules of its own layer or below, and is handed the
//! narrow handles it needs (a [`vault::Vault`], an [`index::Index`], the
//! [`metrics::Metrics`]), never the whole [`AppState`]:
//!
//! 1. `app` ([`App`], [`AppState`]): opens the parts, builds the router, starts
//!    the workers. Only `main.rs` and the CLI use it.
//! 2. The HTTP edge: [`triage`] (API, pages, roles) and [`ingest`] (uploads),
//!    with [`throttle`] (the per-sender rate limit and throttle rules uploads
//!    pass), [`lifecycle`] (resolve, reopen, delete an issue), [`deletion`]
//!    (delete reports) and [`retention`], the actions they and the sweeper run.
//! 3. [`pipeline`]: turns a queued report into a processed one, and processes
//!    it again when symbols arrive; [`webhooks`]: delivers the events of the
//!    index's outbox to the configured webhooks, signed.
//! 4. [`vault`] (report blobs sealed under their data keys, the blob key layout,
//!    key rotation), [`index`] (SQL) and [`storage`] (object store, durability).
//! 5. [`crypto`] (keys, seal and open) and [`config`].
//!
//! Leaf modules that import no other layer may be imported by any:
//! [`report_id`], [`metrics`], [`tokens`], [`version`], [`grouping`] (which
//! issue a processed report joins, reopens or is dropped from).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = mayday_server::Config::load(None)?;
//! let app = mayday_server::App::build(config).await?;
//! let listener = tokio::net::TcpListener::bind(app.state.config().listen).await?;
//! app.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod app;
pub mod config;
pub mod crypto;
pub mod deletion;
pub mod grouping;
pub mod index;
pub mod ingest;
pub mod lifecycle;
pub mod metrics;
pub mod pipeline;
pub mod report_id;
pub mod retention;
pub mod storage;
pub mod throttle;
pub mod tokens;
pub mod triage;
pub mod vault;
pub mod version;
pub mod webhooks;

pub use app::{App, AppState, StartError, http10};
pub use config::Config;
