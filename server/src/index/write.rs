//! A write transaction whose commit goes with its last batch.
//!
//! A job's finish holds the index's one SQLite writer from its `BEGIN` to its
//! `COMMIT`, and every round trip to the connection's thread in between is
//! time no other write can use it (`mayday_index_writer_held_seconds_total`).
//! sqlx's own transaction begins and commits in round trips of their own; this
//! one, on SQLite, sends its first statements with `BEGIN`
//! ([`Index::begin_running`]) and `COMMIT` — and, for a lazy commit, the
//! writer's sync level set back — after the last batch's statements, in the
//! same round trip. On PostgreSQL it is sqlx's transaction, committed after the
//! last batch.
//!
//! Every write transaction of the index is one of these: [`Index::write`] for
//! one that needs no answer before its end (on SQLite `BEGIN`, its statements
//! and `COMMIT` in one round trip), [`Index::begin_running`] for one that reads
//! first.

use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

use super::batch::{Batch, statement};
use super::{Backend, Index, IndexError};

/// How a write transaction is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Durable when the commit returns (SQLite `synchronous = FULL`;
    /// PostgreSQL's default `synchronous_commit`).
    Durable,
    /// Not waited for on the disk (SQLite `synchronous = NORMAL`, PostgreSQL
    /// `synchronous_commit = off`): a power cut may lose it (never half of it).
    /// For a job's finish: the job is then still claimed and runs again once
    /// its lease runs out. The next durable commit makes it durable along with
    /// its own.
    Lazy,
}

/// A write transaction on the index's writer; see the module.
pub(super) enum WriteTx {
    /// Begun with raw SQL on the SQLite writer, which is closed rather than
    /// pooled unless the commit went through (an open transaction, or a
    /// writer left `NORMAL`, never reaches another write).
    Sqlite(Unsynced, Commit),
    /// sqlx's transaction, rolled back when dropped.
    Postgres(Transaction<'static, Any>),
}

impl WriteTx {
    /// The connection, for the statements that need an answer before the
    /// last batch.
    pub(super) fn connection(&mut self) -> &mut AnyConnection {
        match self {
            WriteTx::Sqlite(conn, _) => conn.connection(),
            WriteTx::Postgres(tx) => tx,
        }
    }

    /// Runs `batch` and commits: the rows the batch returned.
    pub(super) async fn commit_after(self, mut batch: Batch) -> Result<Vec<AnyRow>, IndexError> {
        match self {
            WriteTx::Sqlite(mut conn, commit) => {
                batch.push(statement("COMMIT"));
                if commit == Commit::Lazy {
                    batch.push(statement("PRAGMA synchronous = FULL"));
                }
                let rows = batch.run(conn.connection()).await?;
                conn.restored();
                Ok(rows)
            }
            WriteTx::Postgres(mut tx) => {
                let rows = batch.run(&mut tx).await?;
                tx.commit().await?;
                Ok(rows)
            }
        }
    }
}

impl Index {
    /// Begins a write transaction on the writer, to be committed as `commit`
    /// says by [`WriteTx::commit_after`] (SQLite: `BEGIN IMMEDIATE`, see the
    /// module doc of `index`).
    pub(super) async fn begin(&self, commit: Commit) -> Result<WriteTx, IndexError> {
        let (tx, _) = self.begin_running(commit, Batch::new(self.backend)).await?;
        Ok(tx)
    }

    /// [`Index::begin`], and `first` run in the transaction: on SQLite in the
    /// round trip that begins it. The rows `first` returned.
    pub(super) async fn begin_running(
        &self,
        commit: Commit,
        mut first: Batch,
    ) -> Result<(WriteTx, Vec<AnyRow>), IndexError> {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = Unsynced::acquire_syncing(&self.writer).await?;
                let mut begin = self.sqlite_begin(commit);
                begin.append(&mut first);
                let rows = begin.run(conn.connection()).await?;
                Ok((WriteTx::Sqlite(conn, commit), rows))
            }
            Backend::Postgres => {
                let mut tx = self.writer.begin().await?;
                if commit == Commit::Lazy {
                    tx.execute("SET LOCAL synchronous_commit = off").await?;
                }
                let rows = first.run(&mut tx).await?;
                Ok((WriteTx::Postgres(tx), rows))
            }
        }
    }
}

impl Index {
    /// Runs `batch` in a write transaction of its own, committed as `commit`
    /// says: on SQLite its `BEGIN`, its statements and its `COMMIT` in one
    /// round trip to the database. The rows the batch returned.
    pub(super) async fn write(
        &self,
        commit: Commit,
        mut batch: Batch,
    ) -> Result<Vec<AnyRow>, IndexError> {
        match self.backend {
            Backend::Sqlite => {
                let conn = Unsynced::acquire_syncing(&self.writer).await?;
                let mut all = self.sqlite_begin(commit);
                all.append(&mut batch);
                WriteTx::Sqlite(conn, commit).commit_after(all).await
            }
            Backend::Postgres => self.begin(commit).await?.commit_after(batch).await,
        }
    }

    /// What begins a write transaction on the SQLite writer (`BEGIN
    /// IMMEDIATE`, see the module doc of `index`), for `commit`.
    fn sqlite_begin(&self, commit: Commit) -> Batch {
        let mut begin = Batch::new(self.backend);
        if commit == Commit::Lazy {
            begin.push(statement("PRAGMA synchronous = NORMAL"));
        }
        begin.push(statement("BEGIN IMMEDIATE"));
        begin
    }
}

/// The SQLite writer connection with `synchronous = NORMAL`: its commits reach
/// the WAL (they survive the process dying) but are not fsynced; the next commit
/// made with `FULL` syncs them along with its own. The caller's own last
/// statement sets it back to `FULL` ([`Unsynced::restored`] says so); one
/// dropped without that (an error, a cancelled future) is closed rather than
/// returned to the pool, so no later commit runs unsynced. A [`WriteTx`] holds the writer this way whatever its
/// sync level: a transaction begun with raw SQL that did not commit is rolled
/// back by the close, never handed to the next write.
pub(super) struct Unsynced(Option<PoolConnection<Any>>);

impl Unsynced {
    /// The writer, still `FULL`: the caller's first statement sets it to
    /// `NORMAL` (in the same round trip to the database as what follows).
    pub(super) async fn acquire_syncing(writer: &AnyPool) -> Result<Unsynced, IndexError> {
        Ok(Unsynced(Some(writer.acquire().await?)))
    }

    /// Back to the pool, set back to `FULL` by the caller's last statement.
    pub(super) fn restored(mut self) {
        drop(self.0.take());
    }

    pub(super) fn connection(&mut self) -> &mut AnyConnection {
        self.0.as_mut().expect("connection held until restored")
    }
}

impl Drop for Unsynced {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Closed, not pooled: the pool opens a fresh one (FULL) when needed.
            drop(conn.detach());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testing::{sqlite_index, synchronous};

    async fn jobs(index: &Index) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(&index.pool)
            .await
            .unwrap()
    }

    fn job() -> super::super::batch::Statement {
        statement(
            "INSERT INTO jobs (report_id, kind, state, not_before, created_at) \
             VALUES ('r', 'process', 'pending', 0, 0)",
        )
    }

    /// A transaction whose last batch fails is rolled back whole, and the
    /// writer it held serves the next write outside any transaction, syncing.
    #[tokio::test]
    async fn a_failed_last_batch_leaves_nothing_written_and_the_writer_clean() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        for commit in [Commit::Durable, Commit::Lazy] {
            let mut tx = index.begin(commit).await.unwrap();
            tx.connection().execute("INSERT INTO jobs (report_id, kind, state, not_before, created_at) VALUES ('a', 'process', 'pending', 0, 0)").await.unwrap();
            let mut batch = Batch::new(index.backend);
            batch.push(job());
            batch.push(statement("INSERT INTO no_such_table VALUES (1)"));
            assert!(tx.commit_after(batch).await.is_err());
            assert_eq!(jobs(&index).await, 0, "{commit:?}: rolled back");
        }
        // Committed, lazily then durably, each on a writer that is FULL after.
        for commit in [Commit::Lazy, Commit::Durable] {
            let tx = index.begin(commit).await.unwrap();
            let mut batch = Batch::new(index.backend);
            batch.push(job());
            tx.commit_after(batch).await.unwrap();
            assert_eq!(synchronous(&index.writer).await, 2, "{commit:?}: FULL");
        }
        assert_eq!(jobs(&index).await, 2);
    }
}
