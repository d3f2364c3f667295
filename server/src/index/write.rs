//! A write transaction whose commit goes with its last batch.
//!
//! A job's finish holds the index's one SQLite writer from its `BEGIN` to its
//! `COMMIT`, and every handoff to another thread in between is time no other
//! write can use it (`mayday_index_writer_held_seconds_total`). On SQLite
//! this transaction sends its first statements with `BEGIN`
//! ([`Index::begin_running`]) and `COMMIT` — and, for a lazy commit, the
//! writer's sync level set back — after the last batch's statements, in the
//! same batch; its batches run on the writer's own connection
//! (`index/direct.rs`: in the writer's thread, no handoff at all), the sqlx
//! writer connection held as its lease ([`SqliteTx`]). On PostgreSQL it is
//! sqlx's transaction, committed after the last batch.
//!
//! Every write transaction of the index is one of these: [`Index::write`] for
//! one that needs no answer before its end (on SQLite `BEGIN`, its statements
//! and `COMMIT` in one round trip), [`Index::begin_running`] for one that reads
//! first.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

use super::batch::{Batch, Row, Statement, run_sqlx, statement};
use super::direct::Direct;
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
    /// Begun with raw SQL on the SQLite writer.
    Sqlite(SqliteTx),
    /// sqlx's transaction, rolled back when dropped.
    Postgres(Transaction<'static, Any>),
}

/// A write transaction on SQLite: the writer's lease (the sqlx connection),
/// and where its statements run — [`Direct`], or where the index has none (an
/// in-memory database, which exists only in its one connection) the sqlx
/// connection itself. Dropped before its commit, it is rolled back: by
/// [`Direct::abort`] before the lease is given back, or by closing the sqlx
/// connection ([`Unsynced`]).
pub(super) struct SqliteTx {
    lease: Option<Unsynced>,
    direct: Option<Arc<Direct>>,
    commit: Commit,
    /// Until its commit went through.
    open: bool,
}

impl SqliteTx {
    async fn run(&mut self, statements: Vec<Statement>) -> Result<Vec<Row>, IndexError> {
        match (&self.direct, &mut self.lease) {
            (Some(direct), _) => direct.run(statements).await,
            (None, Some(lease)) => run_sqlx(Backend::Sqlite, lease.connection(), statements).await,
            (None, None) => Err(IndexError::Stopped),
        }
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        match (&self.direct, self.open) {
            (_, false) => lease.restored(),
            // Rolled back before another write can take the lease; the sqlx
            // connection ran nothing of it.
            (Some(direct), true) => {
                direct.abort();
                lease.restored();
            }
            // Closed rather than pooled: see `Unsynced`.
            (None, true) => drop(lease),
        }
    }
}

impl WriteTx {
    /// Runs what `batch` holds, in order, in this transaction, and empties
    /// it: the rows the statements returned, in order (on SQLite one round
    /// trip at most). A statement that fails stops the rest, and the
    /// transaction is not to be committed.
    pub(super) async fn run(&mut self, batch: &mut Batch) -> Result<Vec<Row>, IndexError> {
        let statements = batch.take();
        match self {
            WriteTx::Sqlite(tx) => tx.run(statements).await,
            WriteTx::Postgres(tx) => run_sqlx(Backend::Postgres, tx, statements).await,
        }
    }

    /// Runs `batch` and commits: the rows the batch returned.
    pub(super) async fn commit_after(self, mut batch: Batch) -> Result<Vec<Row>, IndexError> {
        match self {
            WriteTx::Sqlite(mut tx) => {
                batch.push(statement("COMMIT"));
                if tx.commit == Commit::Lazy {
                    batch.push(statement("PRAGMA synchronous = FULL"));
                }
                let rows = tx.run(batch.take()).await?;
                tx.open = false;
                Ok(rows)
            }
            WriteTx::Postgres(mut tx) => {
                let rows = run_sqlx(Backend::Postgres, &mut tx, batch.take()).await?;
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
    ) -> Result<(WriteTx, Vec<Row>), IndexError> {
        match self.backend {
            Backend::Sqlite => {
                let mut tx = self.sqlite_tx(commit).await?;
                let mut begin = self.sqlite_begin(commit);
                begin.append(&mut first);
                let rows = tx.run(begin.take()).await?;
                Ok((WriteTx::Sqlite(tx), rows))
            }
            Backend::Postgres => {
                let mut tx = self.writer.begin().await?;
                if commit == Commit::Lazy {
                    tx.execute("SET LOCAL synchronous_commit = off").await?;
                }
                let rows = run_sqlx(Backend::Postgres, &mut tx, first.take()).await?;
                Ok((WriteTx::Postgres(tx), rows))
            }
        }
    }

    /// The SQLite writer's lease, for a transaction to be begun.
    async fn sqlite_tx(&self, commit: Commit) -> Result<SqliteTx, IndexError> {
        Ok(SqliteTx {
            lease: Some(Unsynced::acquire_syncing(&self.writer).await?),
            direct: self.direct.clone(),
            commit,
            // Open from the first statement sent: a `BEGIN` that failed
            // half-way is ended as one that went through.
            open: true,
        })
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
    ) -> Result<Vec<Row>, IndexError> {
        match self.backend {
            Backend::Sqlite => {
                let tx = self.sqlite_tx(commit).await?;
                let mut all = self.sqlite_begin(commit);
                all.append(&mut batch);
                WriteTx::Sqlite(tx).commit_after(all).await
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
/// returned to the pool, so no later commit runs unsynced. A [`SqliteTx`]
/// holds the writer this way whatever its sync level: a transaction begun with
/// raw SQL on this connection that did not commit is rolled back by the close,
/// never handed to the next write.
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
    use crate::index::testing::{sqlite_index, writer_synchronous};

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
            let mut first = Batch::new(index.backend);
            first.push(statement(
                "INSERT INTO jobs (report_id, kind, state, not_before, created_at) \
                 VALUES ('a', 'process', 'pending', 0, 0)",
            ));
            tx.run(&mut first).await.unwrap();
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
            assert_eq!(writer_synchronous(&index).await, [2, 2], "{commit:?}: FULL");
        }
        assert_eq!(jobs(&index).await, 2);
    }

    /// A transaction dropped before its commit (its caller gone, no error) is
    /// rolled back before the writer serves the next one, on the connection
    /// its statements ran on, which syncs every commit again.
    #[tokio::test]
    async fn a_transaction_dropped_uncommitted_is_rolled_back_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        assert!(index.direct.is_some(), "a file index runs them directly");
        for commit in [Commit::Durable, Commit::Lazy] {
            let (tx, _) = index
                .begin_running(commit, {
                    let mut first = Batch::new(index.backend);
                    first.push(job());
                    first
                })
                .await
                .unwrap();
            drop(tx);
            assert_eq!(writer_synchronous(&index).await, [2, 2], "{commit:?}");
            // The next transaction begins (none is left open) and sees none.
            let (tx, rows) = index
                .begin_running(Commit::Durable, {
                    let mut read = Batch::new(index.backend);
                    read.push(statement("SELECT COUNT(*) AS n FROM jobs"));
                    read
                })
                .await
                .unwrap();
            assert_eq!(rows[0].try_get::<i64>("n").unwrap(), 0, "{commit:?}");
            tx.commit_after(Batch::new(index.backend)).await.unwrap();
        }
        assert_eq!(jobs(&index).await, 0);
    }

    /// A transaction whose caller stops waiting while one of its batches runs
    /// (on the blocking pool: this test is not on the writer's thread) is
    /// rolled back once that batch has run, before the next write begins.
    #[tokio::test]
    async fn a_transaction_given_up_mid_batch_is_rolled_back_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let index = sqlite_index(dir.path()).await;
        let given_up = {
            let index = index.clone();
            async move {
                let mut tx = index.begin(Commit::Durable).await.unwrap();
                let mut batch = Batch::new(index.backend);
                batch.push(job());
                // A statement that runs for a while.
                batch.push(statement(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                     WHERE i < 3000000) SELECT COUNT(*) AS c FROM n",
                ));
                tx.run(&mut batch).await.unwrap();
                tx.commit_after(Batch::new(index.backend)).await.unwrap();
            }
        };
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), given_up).await;
        assert!(waited.is_err(), "the batch outlasts the caller's wait");
        let mut next = Batch::new(index.backend);
        next.push(job());
        index.write(Commit::Durable, next).await.unwrap();
        assert_eq!(jobs(&index).await, 1, "the next write's job only");
        assert_eq!(writer_synchronous(&index).await, [2, 2]);
    }
}
