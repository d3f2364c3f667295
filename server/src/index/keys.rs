//! Report data keys, wrapped by the master key (see `crate::crypto`). Deleting a
//! report's key row makes every copy of its blobs unreadable.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::{Index, IndexError, report_id_at};
use crate::crypto::WrappedKey;
use crate::report_id::ReportId;

impl Index {
    /// Stores a report's wrapped data key on its own. (A received report's key is
    /// stored with its row: [`Index::insert_reports`].)
    pub async fn insert_report_key(
        &self,
        report_id: &ReportId,
        key: &WrappedKey,
        now: i64,
    ) -> Result<(), IndexError> {
        insert_key(report_id, key, now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// A report's wrapped data key; `None` once it is destroyed.
    pub async fn report_key(&self, report_id: &ReportId) -> Result<Option<WrappedKey>, IndexError> {
        let row =
            sqlx::query("SELECT master_key_id, wrapped_key FROM report_keys WHERE report_id = $1")
                .bind(report_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(WrappedKey {
                master_key_id: row.try_get("master_key_id")?,
                wrapped: row.try_get("wrapped_key")?,
            })
        })
        .transpose()
    }

    /// Destroys a report's data key. Returns whether there was one.
    pub async fn delete_report_key(&self, report_id: &ReportId) -> Result<bool, IndexError> {
        let done = sqlx::query("DELETE FROM report_keys WHERE report_id = $1")
            .bind(report_id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Up to `limit` keys of reports whose id sorts after `after` (from the first
    /// when `None`), in id order (key rotation walks them all).
    pub async fn report_keys_after(
        &self,
        after: Option<&ReportId>,
        limit: i64,
    ) -> Result<Vec<(ReportId, WrappedKey)>, IndexError> {
        let after = after.map(ReportId::to_string).unwrap_or_default();
        let rows = sqlx::query(
            "SELECT report_id, master_key_id, wrapped_key FROM report_keys \
             WHERE report_id > $1 ORDER BY report_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    report_id_at(row, "report_id")?,
                    WrappedKey {
                        master_key_id: row.try_get("master_key_id")?,
                        wrapped: row.try_get("wrapped_key")?,
                    },
                ))
            })
            .collect()
    }

    /// Replaces a report's wrapped key if it is still `old`. Returns whether it did.
    pub async fn replace_report_key(
        &self,
        report_id: &ReportId,
        old: &WrappedKey,
        new: &WrappedKey,
    ) -> Result<bool, IndexError> {
        let done = sqlx::query(
            "UPDATE report_keys SET master_key_id = $3, wrapped_key = $4 \
             WHERE report_id = $1 AND wrapped_key = $2",
        )
        .bind(report_id.to_string())
        .bind(&old.wrapped)
        .bind(&new.master_key_id)
        .bind(&new.wrapped)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every wrapped key there is, as `(report_id, master_key_id)` (tests check
    /// what the server still holds).
    pub async fn report_key_ids(&self) -> Result<Vec<(String, String)>, IndexError> {
        Ok(
            sqlx::query_as("SELECT report_id, master_key_id FROM report_keys ORDER BY report_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Destroys keys that have no report row and are older than `before` (left by
    /// an earlier version, which stored a report's key before its blobs and its
    /// row). Returns how many.
    pub async fn delete_orphan_report_keys(&self, before: i64) -> Result<u64, IndexError> {
        let done = sqlx::query(
            "DELETE FROM report_keys WHERE created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM reports WHERE reports.id = report_keys.report_id)",
        )
        .bind(before)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}

/// The statement that stores report `report_id`'s wrapped data key, made at `now`.
pub(super) fn insert_key<'q>(
    report_id: &ReportId,
    key: &'q WrappedKey,
    now: i64,
) -> Query<'q, Any, AnyArguments> {
    sqlx::query(
        "INSERT INTO report_keys (report_id, master_key_id, wrapped_key, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(report_id.to_string())
    .bind(&key.master_key_id)
    .bind(&key.wrapped)
    .bind(now)
}
