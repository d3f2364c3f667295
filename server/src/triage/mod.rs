//! What developers, support staff and admins use: the JSON API, the HTML pages, and
//! the roles that decide who may use which.
//!
//! Every route is declared once, in [`routes::routes`]: method, path, handler and
//! who may use it. The router is built from that table, and the role check runs in
//! front of each handler from the same entry, so a route cannot be added without
//! saying who may use it, and the role-matrix test iterates the same table.
//!
//! Handlers name their extractors one by one (`State`, `Caller`, `Path`, `Form`
//! or a query), so their signatures are alike in shape; what they share beyond
//! that lives in one function each (e.g. `api::minidump_download`,
//! `api::create_token_audited`, `api::load_row`).

pub mod api;
pub mod audit;
pub mod auth;
pub mod deletion;
pub mod error;
pub mod frame;
pub mod lifecycle;
pub mod openapi;
pub mod pages;
pub mod query;
pub mod routes;
pub mod schemas;
pub mod search;
pub mod symbols;
pub mod trends;

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::Surface;
pub use routes::{Access, Route, routes};

use std::sync::Arc;

use mayday_symbols::Symbols;

use crate::config::SymbolUploadLimits;
use crate::index::Index;
use crate::metrics::Metrics;
use crate::pipeline::Wake;
use crate::storage::Storage;
use crate::vault::Vault;

/// What the triage routes need; cheap to clone.
#[derive(Clone)]
pub struct TriageState {
    vault: Vault,
    symbols: Symbols,
    metrics: Arc<Metrics>,
    symbol_uploads: SymbolUploadLimits,
    wake: Wake,
    secure_cookies: bool,
}

impl TriageState {
    /// The state of the triage routes: reports in `vault` (and its index),
    /// symbols served and taken through `symbols` within `symbol_uploads`,
    /// counters in `metrics`, workers woken through `wake` when symbols arrive,
    /// session cookies marked `Secure` when `secure_cookies`. (It names the
    /// fields once more because they stay private: no caller reaches past it.)
    pub fn new(
        vault: Vault,
        symbols: Symbols,
        metrics: Arc<Metrics>,
        symbol_uploads: SymbolUploadLimits,
        wake: Wake,
        secure_cookies: bool,
    ) -> TriageState {
        TriageState {
            vault,
            symbols,
            metrics,
            symbol_uploads,
            wake,
            secure_cookies,
        }
    }

    /// The report vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The index.
    pub fn index(&self) -> &Index {
        self.vault.index()
    }

    /// The blob store (symbol files, health checks).
    pub fn storage(&self) -> &Storage {
        self.vault.storage()
    }

    /// The symbol provider shared with the workers.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Limits on symbol uploads.
    pub fn symbol_uploads(&self) -> &SymbolUploadLimits {
        &self.symbol_uploads
    }

    /// Whether session cookies are marked `Secure` (served over HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    /// Tells idle workers in this process that there is work.
    pub fn wake_workers(&self) {
        self.wake.wake();
    }
}

/// The triage routes (API and pages), built from [`routes()`] with the role check
/// in front of every route that is not public. Every error under `/api/` answers
/// JSON of one shape ([`error::api_errors_as_json`]).
///
/// Every response carries the security headers: the
/// [`frame::content_security_policy`] (unless the page set its own, narrower
/// one: [`frame::content_security_policy_with_script`]), `X-Content-Type-Options: nosniff`,
/// `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`.
pub fn router<S: Clone + Send + Sync + 'static>(state: TriageState) -> Router<S> {
    let header = |name, value| SetResponseHeaderLayer::overriding(name, value);
    let table = routes();
    let description =
        serde_json::to_vec(&openapi::document(&table)).expect("the API description serializes");
    routes::build(&state, table)
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::with_caller_navigation,
        ))
        .layer(axum::Extension(api::ApiDescription(description.into())))
        .layer(axum::middleware::from_fn(error::api_errors_as_json))
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            frame::content_security_policy(),
        ))
        .layer(header(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(header(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(header(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}
