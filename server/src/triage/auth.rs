//! Who is asking: API tokens (`Authorization: Bearer <token>`), browser sessions,
//! and their roles.
//!
//! A browser signs in by posting an API token to `/login`. The server then makes a
//! session: a fresh random secret, stored only as its SHA-256 in the token table
//! (id `ses_…`, the role of the token it came from, valid for [`SESSION_TTL_MS`] and
//! only while that token is not revoked), and sets it as an `HttpOnly`,
//! `SameSite=Strict` cookie, `Secure` when the server is served over HTTPS
//! (`[http] secure_cookies`). The secret is never a bearer token. Every state-changing form carries a CSRF token
//! derived from the session secret, which a cross-site page cannot read.
//! Keeping sessions in the index means every server process sees them.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use super::error::{ApiError, Surface};
use crate::index::{Index, IndexError, Role, TokenRow, now_ms};
use crate::tokens::{hash_secret, hashes_equal};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's public id (what the audit log records; never the secret). For a
    /// browser session, the id of the token it signed in with.
    pub token_id: String,
    /// The token's role.
    pub role: Role,
    /// The CSRF token forms must carry, when the caller came with a session cookie.
    pub csrf: Option<String>,
}

impl Caller {
    /// Checks a form's CSRF token: required when the caller came with a session
    /// cookie (a bearer token is not sent by browsers on their own).
    pub fn check_csrf(&self, form_token: &str) -> Result<(), ApiError> {
        match &self.csrf {
            None => Ok(()),
            Some(expected) if hashes_equal(expected, form_token) => Ok(()),
            Some(_) => Err(ApiError::Forbidden),
        }
    }
}

/// Roles that may read crash contents (frames, modules, annotations, dumps),
/// resolve and delete.
pub const READ_CONTENTS: &[Role] = &[Role::Admin, Role::Developer];
/// Roles that may see a report's status and metadata.
pub const READ_METADATA: &[Role] = &[Role::Admin, Role::Developer, Role::Support];
/// Roles that may manage tokens and read the audit log.
pub const ADMIN: &[Role] = &[Role::Admin];
/// Roles that may upload symbols and see which are missing.
pub const SYMBOLS: &[Role] = &[Role::Admin, Role::Developer, Role::Uploader];
/// Every role.
pub const ALL_ROLES: &[Role] = &Role::ALL;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mayday_session";
/// How long a browser session lasts: 12 hours.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;
const SESSION_PREFIX: &str = "ses_";

/// The credentials of a request's `Authorization` header under `scheme`, if it
/// uses that scheme (empty when it names the scheme without any).
fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (name, credentials) = value.split_once(' ').unwrap_or((value, ""));
    name.eq_ignore_ascii_case(scheme)
        .then(|| credentials.trim())
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    authorization(headers, "bearer").filter(|t| !t.is_empty())
}

/// The deletion token of a request (`Authorization: Deletion <token>`, sent by the
/// person whose report it is), if it uses that scheme; empty when it has no token.
pub fn deletion_token(headers: &HeaderMap) -> Option<&str> {
    authorization(headers, mayday_report::upload::DELETION_AUTH_SCHEME)
}

/// The session cookie of a request, if it has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: a hash of its secret, so a page that cannot read
/// the cookie cannot make it.
fn csrf_of(session_secret: &str) -> String {
    hash_secret(&format!("csrf:{session_secret}"))
}

/// The caller of an API token (never a session secret).
pub async fn caller_from_token(index: &Index, token: &str) -> Result<Option<Caller>, IndexError> {
    Ok(index
        .token_by_hash(&hash_secret(token))
        .await?
        .filter(|row| !row.id.starts_with(SESSION_PREFIX))
        .map(|row| Caller {
            token_id: row.id,
            role: row.role,
            csrf: None,
        }))
}

/// The caller of a live session secret.
pub async fn caller_from_session(
    index: &Index,
    secret: &str,
) -> Result<Option<Caller>, IndexError> {
    let Some(row) = index.token_by_hash(&hash_secret(secret)).await? else {
        return Ok(None);
    };
    if !row.id.starts_with(SESSION_PREFIX) || row.created_at + SESSION_TTL_MS < now_ms() {
        return Ok(None);
    }
    // The session dies with the token it was made from.
    let Some(parent) = row.name.strip_prefix("session of ") else {
        return Ok(None);
    };
    let parent_live = index
        .token_by_id(parent)
        .await?
        .is_some_and(|t| t.revoked_at.is_none());
    Ok(parent_live.then(|| Caller {
        token_id: parent.to_owned(),
        role: row.role,
        csrf: Some(csrf_of(secret)),
    }))
}

/// Signs in with an API token: makes a session and returns its secret (the
/// cookie value), or `None` when the token is not a live API token.
pub async fn start_session(index: &Index, token: &str) -> Result<Option<String>, IndexError> {
    let Some(caller) = caller_from_token(index, token).await? else {
        return Ok(None);
    };
    let (raw, _) = crate::tokens::new_secret();
    let secret = format!("{SESSION_PREFIX}{raw}");
    let hash = hash_secret(&secret);
    let id = format!("{SESSION_PREFIX}{}", &hash[..12]);
    index
        .insert_token(
            &id,
            &hash,
            caller.role,
            &format!("session of {}", caller.token_id),
            now_ms(),
        )
        .await?;
    Ok(Some(secret))
}

/// Ends a session (signs out).
pub async fn end_session(index: &Index, secret: &str) -> Result<(), IndexError> {
    let hash = hash_secret(secret);
    let id = format!("{SESSION_PREFIX}{}", &hash[..12]);
    index.revoke_token(&id, now_ms()).await?;
    Ok(())
}

/// Whether a token row is a browser session rather than an API token.
pub fn is_session(row: &TokenRow) -> bool {
    row.id.starts_with(SESSION_PREFIX)
}

/// Every API token, revoked ones too, browser sessions left out: what the API
/// and the tokens page list (never a secret).
pub async fn api_tokens(index: &Index) -> Result<Vec<TokenRow>, IndexError> {
    let tokens = index.list_tokens().await?;
    Ok(tokens.into_iter().filter(|t| !is_session(t)).collect())
}

/// The `Set-Cookie` value for a session; `Secure` (sent over HTTPS only) when
/// `secure`.
pub fn session_set_cookie(secret: &str, secure: bool) -> String {
    session_cookie_with(secret, SESSION_TTL_MS / 1000, secure)
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    session_cookie_with("", 0, secure)
}

fn session_cookie_with(value: &str, max_age_s: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    )
}

/// Who is calling: a bearer token, or (for pages) the session cookie.
pub async fn authenticate(
    index: &Index,
    headers: &HeaderMap,
    surface: Surface,
) -> Result<Option<Caller>, IndexError> {
    if let Some(token) = bearer(headers) {
        return caller_from_token(index, token).await;
    }
    match (surface, session_cookie(headers)) {
        (Surface::Page, Some(secret)) => caller_from_session(index, secret).await,
        _ => Ok(None),
    }
}

/// The caller the route table's check let through (see [`super::routes::build`]);
/// a handler of a route without a check has none.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned())
    }
}

/// Creates a token and returns its id and secret (shown once, stored hashed).
pub async fn create_token(
    index: &Index,
    role: Role,
    name: &str,
) -> Result<(String, String), IndexError> {
    let (raw, _) = crate::tokens::new_secret();
    let secret = format!("mdy_{raw}");
    let hash = hash_secret(&secret);
    // The public id is derived from the hash, never from the secret itself.
    let id = format!("tok_{}", &hash[..12]);
    index.insert_token(&id, &hash, role, name, now_ms()).await?;
    Ok((id, secret))
}

/// The status for "no such thing, or not yours to see".
pub const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
