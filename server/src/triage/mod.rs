//! What developers, support staff and admins use: the JSON API, the HTML pages, and
//! the roles that decide who may use which.
//!
//! Every route is declared once, in [`routes::routes`]: method, path, handler and
//! who may use it. The router is built from that table, and the role check runs in
//! front of each handler from the same entry, so a route cannot be added without
//! saying who may use it, and the role-matrix test iterates the same table.

pub mod api;
pub mod auth;
pub mod deletion;
pub mod pages;
pub mod routes;
pub mod symbols;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use routes::{Access, Route, Surface, routes};

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
}

impl TriageState {
    /// The state of the triage routes: reports in `vault` (and its index),
    /// symbols served and taken through `symbols` within `symbol_uploads`,
    /// counters in `metrics`, workers woken through `wake` when symbols arrive.
    pub fn new(
        vault: Vault,
        symbols: Symbols,
        metrics: Arc<Metrics>,
        symbol_uploads: SymbolUploadLimits,
        wake: Wake,
    ) -> TriageState {
        TriageState {
            vault,
            symbols,
            metrics,
            symbol_uploads,
            wake,
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

    /// Tells idle workers in this process that there is work.
    pub fn wake_workers(&self) {
        self.wake.wake();
    }
}

/// Errors of the API, each with its status. A 5xx says nothing internal; the real
/// error is logged.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token.
    #[error("unauthorized")]
    Unauthorized,
    /// The token's role may not do this.
    #[error("forbidden")]
    Forbidden,
    /// No such thing.
    #[error("not found")]
    NotFound,
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] crate::index::IndexError),
    /// The report vault or the blob store failed.
    #[error("storage: {0}")]
    Storage(#[from] crate::vault::VaultError),
    /// A stored blob does not parse.
    #[error("stored data: {0}")]
    Data(#[from] serde_json::Error),
}

impl ApiError {
    /// The status and the message a client may see.
    pub fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "a valid API token is required".to_owned(),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                "this token's role may not do that".to_owned(),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not found".to_owned()),
            ApiError::BadRequest(why) => (StatusCode::BAD_REQUEST, why.clone()),
            ApiError::Index(_) | ApiError::Storage(_) => {
                tracing::error!(error = %self, "request failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "try again later".to_owned(),
                )
            }
            ApiError::Data(_) => {
                tracing::error!(error = %self, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        ApiError::Storage(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The triage routes (API and pages), built from [`routes()`] with the role check
/// in front of every route that is not public.
pub fn router<S: Clone + Send + Sync + 'static>(state: TriageState) -> Router<S> {
    routes::build(&state, routes()).with_state(state)
}
