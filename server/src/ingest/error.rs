//! Ingest errors and the status each one answers with.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::DsnRefusal;
use crate::index::IndexError;
use crate::vault::VaultError;

/// Why an upload was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The upload is malformed; the client must not retry it. The reason becomes
    /// `Discarded=malformed_<reason>`.
    #[error("malformed upload: {0}")]
    Malformed(&'static str),
    /// The upload is over a size limit; the client must not retry it.
    #[error("upload too large: {0}")]
    TooLarge(&'static str),
    /// The blob store failed; the client should retry later.
    #[error("storage unavailable: {0}")]
    Storage(#[from] VaultError),
    /// The index failed; the client should retry later.
    #[error("index unavailable: {0}")]
    Index(#[from] IndexError),
    /// A local file operation failed (spooling the upload).
    #[error("spooling upload: {0}")]
    Io(#[from] std::io::Error),
    /// The body stopped arriving: no byte for the body idle timeout.
    #[error("the body stopped arriving")]
    BodyTimeout,
    /// A Sentry endpoint was sent no DSN key, or one the configured projects
    /// do not accept for the project of the URL.
    #[error("Sentry DSN key refused: {0:?}")]
    DsnKey(DsnRefusal),
    /// The store's disk is below its free-space floor; the client should retry
    /// later.
    #[error("store disk below its free-space floor ({free} bytes free)")]
    LowDiskSpace {
        /// Bytes free on the store's disk.
        free: u64,
    },
}

impl IngestError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            IngestError::Malformed(reason) => reason,
            IngestError::TooLarge(_) => "too_large",
            IngestError::Storage(_) => "storage_unavailable",
            IngestError::Index(_) => "index_unavailable",
            IngestError::Io(_) => "io",
            IngestError::BodyTimeout => "body_timeout",
            IngestError::LowDiskSpace { .. } => "low_disk_space",
            IngestError::DsnKey(refusal) => refusal.name(),
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Malformed(_) => StatusCode::BAD_REQUEST,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            // Each of these passes: the client keeps its report and retries.
            IngestError::Storage(_)
            | IngestError::Index(_)
            | IngestError::Io(_)
            | IngestError::LowDiskSpace { .. } => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            // As Sentry answers: no (valid) key is unauthorized, another
            // project's key is forbidden.
            IngestError::DsnKey(DsnRefusal::OtherProject) => StatusCode::FORBIDDEN,
            IngestError::DsnKey(_) => StatusCode::UNAUTHORIZED,
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, kind = self.name(), "upload not stored");
        } else {
            tracing::debug!(error = %self, kind = self.name(), "upload rejected");
        }
        let body = match &self {
            IngestError::Malformed(reason) => format!("Discarded=malformed_{reason}\n"),
            IngestError::TooLarge(what) => format!("Discarded=too_large_{what}\n"),
            IngestError::BodyTimeout => "Error=body_timeout\n".to_owned(),
            IngestError::DsnKey(refusal) => format!("Discarded={}\n", refusal.name()),
            // Nothing internal goes to the client.
            _ => "Error=try_again_later\n".to_owned(),
        };
        let mut response = (status, body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        response
    }
}
