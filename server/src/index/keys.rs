//! Report data keys and stack keys, wrapped by the master key (see
//! `crate::crypto`; the vault owns what they seal). Deleting a report's data key
//! row makes every copy of its blobs unreadable; deleting its stack key row,
//! every copy of its dump's stack memory.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::batch::{Batch, Statement, statement};
use super::write::Commit;
use super::{Backend, Index, IndexError, report_id_at};
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
        insert_key(KeyKind::Data, report_id, key, now)
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

    /// A report's wrapped data key and, when it has one still, its wrapped stack
    /// key, in one read; `None` once the data key is destroyed.
    pub async fn report_keys(
        &self,
        report_id: &ReportId,
    ) -> Result<Option<(WrappedKey, Option<WrappedKey>)>, IndexError> {
        let row = sqlx::query(
            "SELECT k.master_key_id, k.wrapped_key, s.master_key_id AS stack_master_key_id, \
             s.wrapped_key AS stack_wrapped_key FROM report_keys k \
             LEFT JOIN report_stack_keys s ON s.report_id = k.report_id \
             WHERE k.report_id = $1",
        )
        .bind(report_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let data = WrappedKey {
            master_key_id: row.try_get("master_key_id")?,
            wrapped: row.try_get("wrapped_key")?,
        };
        let stack_master: Option<String> = row.try_get("stack_master_key_id")?;
        let stack_wrapped: Option<String> = row.try_get("stack_wrapped_key")?;
        let stack = stack_master
            .zip(stack_wrapped)
            .map(|(master_key_id, wrapped)| WrappedKey {
                master_key_id,
                wrapped,
            });
        Ok(Some((data, stack)))
    }

    /// Destroys a report's data key and its stack key, in one transaction.
    /// Returns whether there was a data key.
    pub async fn delete_report_key(&self, report_id: &ReportId) -> Result<bool, IndexError> {
        let id = report_id.to_string();
        let mut batch = Batch::new(self.backend);
        batch.push(statement("DELETE FROM report_stack_keys WHERE report_id = $1").bind(&id));
        batch.push(
            statement("DELETE FROM report_keys WHERE report_id = $1 RETURNING report_id").bind(&id),
        );
        let deleted = self.write(Commit::Durable, batch).await?;
        Ok(!deleted.is_empty())
    }

    /// Up to `limit` keys of `kind` of reports whose id sorts after `after` (from
    /// the first when `None`), in id order (key rotation walks them all).
    pub async fn report_keys_after(
        &self,
        kind: KeyKind,
        after: Option<&ReportId>,
        limit: i64,
    ) -> Result<Vec<(ReportId, WrappedKey)>, IndexError> {
        let after = after.map(ReportId::to_string).unwrap_or_default();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT report_id, master_key_id, wrapped_key FROM {} \
             WHERE report_id > $1 ORDER BY report_id LIMIT $2",
            kind.table()
        )))
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

    /// Replaces a report's wrapped key of `kind` if it is still `old` (one
    /// destroyed meanwhile stays destroyed). Returns whether it did.
    pub async fn replace_report_key(
        &self,
        kind: KeyKind,
        report_id: &ReportId,
        old: &WrappedKey,
        new: &WrappedKey,
    ) -> Result<bool, IndexError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET master_key_id = $3, wrapped_key = $4 \
             WHERE report_id = $1 AND wrapped_key = $2",
            kind.table()
        )))
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

    /// The ids of the reports that have a stack key (tests check what the
    /// server still holds).
    pub async fn stack_key_ids(&self) -> Result<Vec<ReportId>, IndexError> {
        let query = sqlx::query("SELECT report_id FROM report_stack_keys ORDER BY report_id");
        self.report_ids(query, "report_id").await
    }

    /// Destroys data keys that have no report row and are older than `before`
    /// (left by an earlier version, which stored a report's key before its blobs
    /// and its row), and stack keys likewise. Returns how many data keys.
    pub async fn delete_orphan_report_keys(&self, before: i64) -> Result<u64, IndexError> {
        let mut data_keys = 0;
        for kind in [KeyKind::Stack, KeyKind::Data] {
            let table = kind.table();
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM reports WHERE reports.id = {table}.report_id)"
            )))
            .bind(before)
            .execute(&self.writer)
            .await?;
            if kind == KeyKind::Data {
                data_keys = done.rows_affected();
            }
        }
        Ok(data_keys)
    }
}

/// Which of a report's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The data key: seals every blob of the report.
    Data,
    /// The stack key: seals the stack memory of its dump.
    Stack,
}

impl KeyKind {
    fn table(self) -> &'static str {
        match self {
            KeyKind::Data => "report_keys",
            KeyKind::Stack => "report_stack_keys",
        }
    }
}

/// A row of [`insert_keys`]: report `report_id`'s wrapped `key`, made at `now`.
pub(super) fn key_row(report_id: &str, key: &WrappedKey, now: i64) -> serde_json::Value {
    serde_json::json!([report_id, key.master_key_id, key.wrapped, now])
}

/// The statement that stores the wrapped keys of `kind` of several reports
/// ([`key_row`]s), in one statement.
pub(super) fn insert_keys(
    backend: Backend,
    kind: KeyKind,
    rows: Vec<serde_json::Value>,
) -> Statement {
    statement(format!(
        "INSERT INTO {} (report_id, master_key_id, wrapped_key, created_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, CAST(value ->> 3 AS BIGINT) FROM {}",
        kind.table(),
        backend.json_rows("$1"),
    ))
    .bind(serde_json::Value::Array(rows).to_string())
}

/// The statement that stores report `report_id`'s wrapped key of `kind`, made at
/// `now`.
pub(super) fn insert_key<'q>(
    kind: KeyKind,
    report_id: &ReportId,
    key: &'q WrappedKey,
    now: i64,
) -> Query<'q, Any, AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} (report_id, master_key_id, wrapped_key, created_at) \
         VALUES ($1, $2, $3, $4)",
        kind.table()
    )))
    .bind(report_id.to_string())
    .bind(&key.master_key_id)
    .bind(&key.wrapped)
    .bind(now)
}
