//! Who is asking: API tokens (`Authorization: Bearer <token>`) and their roles.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::ApiError;
use crate::AppState;
use crate::index::Role;
use crate::tokens::hash_secret;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's public id (what the audit log records; never the secret).
    pub token_id: String,
    /// The token's role.
    pub role: Role,
}

impl Caller {
    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Roles that may read crash contents (frames, modules, annotations, dumps).
pub const READ_CONTENTS: &[Role] = &[Role::Admin, Role::Developer];
/// Roles that may see a report's status and metadata.
pub const READ_METADATA: &[Role] = &[Role::Admin, Role::Developer, Role::Support];

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let row = state
            .index()
            .token_by_hash(&hash_secret(token))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            token_id: row.id,
            role: row.role,
        })
    }
}

/// Creates a token and returns its secret (shown once, stored hashed).
pub async fn create_token(
    index: &crate::index::Index,
    role: Role,
    name: &str,
) -> Result<(String, String), crate::index::IndexError> {
    let (raw, _) = crate::tokens::new_secret();
    let secret = format!("mdy_{raw}");
    let hash = hash_secret(&secret);
    // The public id is derived from the hash, never from the secret itself.
    let id = format!("tok_{}", &hash[..12]);
    index
        .insert_token(&id, &hash, role, name, crate::index::now_ms())
        .await?;
    Ok((id, secret))
}

/// The status for "no such thing, or not yours to see".
pub const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
