//! The audit log: who read, downloaded, resolved or deleted what.

use super::{Index, IndexError};

/// One audit entry.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Entry id.
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    /// Who: an API token's public id, `deletion-token`, or `system`.
    pub actor: String,
    /// What: `report.read`, `report.download`, `report.delete`, `issue.resolve`, …
    pub action: String,
    /// On what: a report or issue id.
    pub target: String,
    /// More, where useful (never a secret or personal data).
    pub detail: Option<String>,
}

impl Index {
    /// Appends an entry to the audit table and writes it as a JSON log line.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Option<&str>,
    ) -> Result<(), IndexError> {
        let at = super::now_ms();
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(&self.writer)
        .await?;
        tracing::info!(target: "mayday::audit", at, actor, action, target, detail, "audit");
        Ok(())
    }

    /// The newest audit entries first.
    pub async fn audit_entries(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditEntry>, IndexError> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor, action, target, detail FROM audit_log \
             ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }
}
