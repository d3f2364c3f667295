//! API tokens, stored hashed.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Index, IndexError};

/// What a token may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything: tokens, audit, reports, deletion.
    Admin,
    /// Reads reports and dumps, resolves, deletes.
    Developer,
    /// Sees a report's status and metadata, never its contents.
    Support,
    /// Uploads symbols only.
    Uploader,
}

impl Role {
    /// The name stored and accepted on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Support => "support",
            Role::Uploader => "uploader",
        }
    }

    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Developer, Role::Support, Role::Uploader];
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (admin, developer, support, uploader)"))
    }
}

/// A token row (never the secret).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    /// Public id of the token, used in the audit log.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// A name for people.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, when revoked.
    pub revoked_at: Option<i64>,
}

fn token_from_row(row: &AnyRow) -> Result<TokenRow, IndexError> {
    let role: String = row.try_get("role")?;
    Ok(TokenRow {
        id: row.try_get("id")?,
        role: role.parse().map_err(IndexError::Corrupt)?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Index {
    /// Stores a token by the hash of its secret.
    pub async fn insert_token(
        &self,
        id: &str,
        token_hash: &str,
        role: Role,
        name: &str,
        now: i64,
    ) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, token_hash, role, name, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(token_hash)
        .bind(role.as_str())
        .bind(name)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The live (not revoked) token with this secret hash.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>, IndexError> {
        let row = sqlx::query(
            "SELECT id, role, name, created_at, revoked_at FROM api_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The token with this public id, revoked or not.
    pub async fn token_by_id(&self, id: &str) -> Result<Option<TokenRow>, IndexError> {
        let row = sqlx::query(
            "SELECT id, role, name, created_at, revoked_at FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Every token.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, IndexError> {
        let rows = sqlx::query(
            "SELECT id, role, name, created_at, revoked_at FROM api_tokens ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token; returns whether it existed.
    pub async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, IndexError> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n > 0)
    }
}
