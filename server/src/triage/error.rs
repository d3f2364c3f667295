//! Every error of the triage routes and how it is answered: [`ApiError`] as JSON,
//! [`PageError`] as an HTML page, [`Refusal`] (the route table's check turning a
//! caller away) as the route's [`Surface`] answers, [`SymbolsError`] for symbol
//! uploads, and the conversions from the errors of the layers below.
//!
//! Every API error (every error under `/api/` but the uploads', which answer as
//! Breakpad clients expect) is JSON of one shape, [`ErrorBody`]; what axum answers
//! itself is put in that shape by [`api_errors_as_json`].
//!
//! A 5xx says nothing internal; the real error is logged.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use mayday_symbols::UploadError;

use super::frame::frame;
use crate::deletion::DeleteError;
use crate::index::IndexError;
use crate::lifecycle::LifecycleError;
use crate::storage::StorageError;
use crate::vault::VaultError;

/// How a route answers a caller it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// JSON API: bearer token only; 401 without one, 403 for a wrong role.
    Api,
    /// HTML page: bearer token or session cookie; 303 to `/login` without one, 403
    /// for a wrong role.
    Page,
}

/// Errors of the API, each with its status.
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
    Index(#[from] IndexError),
    /// The report vault or the blob store failed.
    #[error("storage: {0}")]
    Storage(#[from] VaultError),
    /// A stored blob does not parse.
    #[error("stored data: {0}")]
    Data(#[from] serde_json::Error),
}

/// The body of every API error: `{"error": "<message>", "reason": "<code>"}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// What went wrong, for programs: a stable snake_case code (`unauthorized`,
    /// `forbidden`, `not_found`, `bad_request`, `method_not_allowed`, `too_large`,
    /// `unprocessable`, `too_many_requests`, `unavailable`, `internal`, or a
    /// symbol upload's reason such as `bad_body`).
    pub reason: String,
}

impl ApiError {
    /// The stable code of the error's JSON `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Index(_) | ApiError::Storage(_) => "unavailable",
            ApiError::Data(_) => "internal",
        }
    }

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

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::Storage(e.into())
    }
}

impl From<DeleteError> for ApiError {
    fn from(e: DeleteError) -> Self {
        match e {
            DeleteError::Storage(e) => ApiError::Storage(e),
            DeleteError::Index(e) => ApiError::Index(e),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::NoSuchIssue => ApiError::NotFound,
            LifecycleError::BadVersion(v) => ApiError::BadRequest(format!("invalid version {v:?}")),
            LifecycleError::Index(e) => ApiError::Index(e),
            LifecycleError::Delete(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        let mut response = error_json(status, self.reason(), message);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// An error shown as an HTML page.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

/// What an error page says, kept on its response so that a layer that knows the
/// caller can draw it again with the caller's navigation
/// ([`super::pages::with_caller_navigation`]).
#[derive(Debug, Clone)]
pub struct ErrorPage {
    /// The status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

impl ErrorPage {
    /// The page's body: status, message, and a way on.
    pub fn body(&self, signed_in: bool) -> maud::Markup {
        html! {
            h1 { (self.status.as_u16()) " " (self.status.canonical_reason().unwrap_or("")) }
            p.error { (self.message) }
            p {
                a href="/" { "Home" }
                @if !signed_in { " · " a href="/login" { "Sign in" } }
            }
        }
    }

    /// The page's title.
    pub fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = self.0.status_and_message();
        let page = ErrorPage { status, message };
        let body = frame(page.title(), html! {}, page.body(false));
        let mut response = (status, body).into_response();
        response.extensions_mut().insert(page);
        response
    }
}

/// A request the route table's check turned away, answered as its [`Surface`]
/// answers: the API with [`ApiError`]'s JSON, a page with [`PageError`]'s page,
/// or — a signed-out browser — with a redirect to the sign-in page that comes
/// back to what it asked for.
#[derive(Debug)]
pub struct Refusal {
    /// How the refused route answers.
    pub surface: Surface,
    /// Why it was refused.
    pub error: ApiError,
    /// The path and query that was asked for.
    pub wanted: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match (self.surface, self.error) {
            (Surface::Page, ApiError::Unauthorized) => {
                let next: String =
                    url::form_urlencoded::byte_serialize(self.wanted.as_bytes()).collect();
                Redirect::to(&format!("/login?next={next}")).into_response()
            }
            (Surface::Page, error) => PageError(error).into_response(),
            (Surface::Api, error) => error.into_response(),
        }
    }
}

/// Why a symbol upload failed.
#[derive(Debug, thiserror::Error)]
pub enum SymbolsError {
    /// The upload is malformed or too large (see [`UploadError::is_too_large`]).
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// The body is larger than `symbol_uploads.max_wire_bytes`.
    #[error("body is larger than the limit of {0} bytes")]
    BodyTooLarge(u64),
    /// The body could not be read, or has an encoding other than gzip.
    #[error("{0}")]
    Body(String),
    /// The symbol store failed.
    #[error("symbol store: {0}")]
    Store(#[from] mayday_symbols::StoreError),
    /// The index (or the blob store) failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Checking the upload failed in a way that is not the uploader's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<IndexError> for SymbolsError {
    fn from(e: IndexError) -> Self {
        SymbolsError::Api(e.into())
    }
}

impl SymbolsError {
    /// A stable short name for logs and the JSON `reason`.
    pub fn name(&self) -> &'static str {
        match self {
            SymbolsError::Upload(e) => e.name(),
            SymbolsError::BodyTooLarge(_) => "too_large",
            SymbolsError::Body(_) => "bad_body",
            SymbolsError::Store(_) => "store",
            SymbolsError::Api(_) | SymbolsError::Internal(_) => "internal",
        }
    }
}

/// `status` with the [`ErrorBody`] of `reason` and `message`.
fn error_json(status: StatusCode, reason: &str, message: String) -> Response {
    let body = ErrorBody {
        error: message,
        reason: reason.to_owned(),
    };
    (status, Json(body)).into_response()
}

/// The `reason` of an error that has only its status: what axum answers itself.
fn reason_of_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// The most of an error's text kept as its JSON message.
const MAX_ERROR_TEXT: usize = 4096;

/// Middleware: an error answer under `/api/` that is not JSON — axum's own
/// answers to a path, query or JSON body that does not parse, a method the route
/// lacks, a body over its limit — becomes an [`ErrorBody`] with the same status
/// and headers, its text (at most 4 KiB; for a 5xx only the
/// status's name) the message.
pub async fn api_errors_as_json(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) if !status.is_server_error() => String::from_utf8_lossy(&bytes).trim().to_owned(),
        _ => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let body = ErrorBody {
        error: message,
        reason: reason_of_status(status).to_owned(),
    };
    let Ok(bytes) = serde_json::to_vec(&body) else {
        return status.into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(bytes))
}

impl IntoResponse for SymbolsError {
    fn into_response(self) -> Response {
        let status = match self {
            SymbolsError::Api(e) => return e.into_response(),
            SymbolsError::Internal(e) => {
                tracing::error!(error = %e, "symbol upload failed");
                return error_json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                );
            }
            SymbolsError::Store(e) => {
                tracing::error!(error = %e, "symbol store failed");
                return error_json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store",
                    "try again later".to_owned(),
                );
            }
            SymbolsError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            SymbolsError::Upload(ref e) if e.is_too_large() => StatusCode::PAYLOAD_TOO_LARGE,
            SymbolsError::Upload(_) | SymbolsError::Body(_) => StatusCode::BAD_REQUEST,
        };
        tracing::debug!(reason = self.name(), error = %self, "symbol upload refused");
        error_json(status, self.name(), self.to_string())
    }
}
