//! The SQLite writer's transactions, run in the thread that sends them; and
//! the reads every job makes, run in the thread that asks ([`Reads`]).
//!
//! sqlx runs each SQLite connection in a thread of its own and sends back each
//! statement's end and each row as a message of its own, every one of which
//! wakes the task waiting for the batch: about 20 thread wake-ups a job's
//! finish, each a context switch on both sides, while the one writer is held
//! (README, "The writer's statements in the writer's thread"). Here a write
//! transaction's statements run on a connection of the index's own
//! ([`Direct`], rusqlite on the same file) in the calling thread when that is
//! the writer's own thread (`writer_thread`, where the finishes and the
//! intake's commits run), else on Tokio's blocking pool: no wake-up, or one
//! each way, a batch.
//!
//! The sqlx writer connection stays the writer's lease: a write transaction
//! ([`super::write::WriteTx`]) holds it from its `BEGIN` to its `COMMIT` (its
//! pool of one queues the writers, its hooks time them), and single statements
//! outside a transaction still run on it. While a transaction holds the lease
//! only this connection writes; outside one it is idle, out of any transaction.
//! A transaction dropped before its commit is rolled back here
//! ([`Direct::abort`]) before the lease goes to the next writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::batch::{Row, Statement, Value};
use super::{IndexError, SQLITE_BUSY_TIMEOUT, SQLITE_WRITER_PRAGMAS, writer_thread};

/// Prepared statements kept per connection: the write paths use a few dozen.
const STATEMENT_CACHE: usize = 128;

/// The SQLite writer's connection for write transactions; see the module.
#[derive(Debug)]
pub(super) struct Direct {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Direct {
    /// Opens the index file at `path` (made and migrated by then) with the
    /// writer's settings.
    pub(super) fn open(path: &Path) -> Result<Direct, IndexError> {
        Ok(Direct {
            path: path.to_owned(),
            conn: Mutex::new(connect(path)?),
        })
    }

    /// Runs `statements` in order in the transaction the caller holds: the
    /// rows they return, in order. A statement that fails stops the rest (the
    /// transaction is then not to be committed: dropping it aborts it).
    pub(super) async fn run(
        self: &Arc<Self>,
        statements: Vec<Statement>,
    ) -> Result<Vec<Row>, IndexError> {
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        if writer_thread::is_current() {
            return self.run_here(&statements);
        }
        let direct = self.clone();
        tokio::task::spawn_blocking(move || direct.run_here(&statements))
            .await
            .map_err(|e| match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => IndexError::Stopped,
            })?
    }

    /// [`Direct::run`] in this thread.
    fn run_here(&self, statements: &[Statement]) -> Result<Vec<Row>, IndexError> {
        let conn = self.lock();
        let mut rows = Vec::new();
        for statement in statements {
            run_one(&conn, statement, &mut rows)?;
        }
        Ok(rows)
    }

    /// Ends a transaction that was not committed: rolled back, the connection
    /// syncing every commit again. Where that fails the connection is opened
    /// anew (closing one rolls back what it had open).
    pub(super) fn abort(&self) {
        let mut conn = self.lock();
        let rolled_back = (|| {
            if !conn.is_autocommit() {
                conn.execute_batch("ROLLBACK")?;
            }
            conn.execute_batch("PRAGMA synchronous = FULL")
        })();
        if let Err(error) = rolled_back {
            tracing::warn!(%error, "rolling back the SQLite writer failed; opening it again");
            match connect(&self.path) {
                Ok(fresh) => *conn = fresh,
                Err(error) => tracing::error!(%error, "opening the SQLite writer again failed"),
            }
        }
    }

    /// The value of `PRAGMA {name}` on the connection.
    #[cfg(test)]
    pub(super) fn pragma(&self, name: &str) -> i64 {
        self.lock()
            .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .unwrap()
    }

    /// The connection; a panic while it was held left nothing that an
    /// [`Direct::abort`] (which the panicking transaction's drop makes) does
    /// not undo.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Read-only connections to the index file for reads run in the calling
/// thread ([`Reads::read`]): a read a job makes before each dump (its report's
/// row and keys) cost, through sqlx's reader pool, a message to the
/// connection's thread and one back, each waking a thread. Here the statement
/// runs where it is asked, on a connection taken from those idle (or opened),
/// in a read transaction of its own (WAL: it waits for no writer). For short
/// reads by primary key only: the calling thread, a runtime's, is held meanwhile.
#[derive(Debug)]
pub(super) struct Reads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// The most connections [`Reads`] keeps between reads: one for each thread
/// reading at once (the runtime's, a few).
const IDLE_READERS: usize = 8;

impl Reads {
    /// Reads of the index file at `path` (made and migrated by then); its
    /// connections are opened when first needed.
    pub(super) fn new(path: &Path) -> Reads {
        Reads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `statement`, a read, in this thread: the rows it returns.
    pub(super) fn read(&self, statement: &Statement) -> Result<Vec<Row>, IndexError> {
        let idle = self.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect_reader(&self.path)?,
        };
        let mut rows = Vec::new();
        // A connection whose read failed is closed, not kept.
        run_one(&conn, statement, &mut rows)?;
        let mut idle = self.lock();
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        Ok(rows)
    }

    /// The idle connections (a panic while they were held left them as they
    /// were: each is out of the list while it reads).
    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection to `path` opened with `access` (read-only or read-write),
/// waiting for a busy file as the index's other connections do.
fn open(path: &Path, access: OpenFlags) -> Result<Connection, IndexError> {
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// A read-only connection to `path`.
fn connect_reader(path: &Path) -> Result<Connection, IndexError> {
    open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// A connection to `path` set as the writer's (`SQLITE_WRITER_PRAGMAS`).
fn connect(path: &Path) -> Result<Connection, IndexError> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    for pragma in SQLITE_WRITER_PRAGMAS {
        // Some answer with a row (`journal_mode`): read and dropped.
        conn.query_row(pragma, [], |_| Ok(()))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                e => Err(e),
            })?;
    }
    Ok(conn)
}

/// Runs `statement` on `conn`, its rows appended to `rows`.
fn run_one(
    conn: &Connection,
    statement: &Statement,
    rows: &mut Vec<Row>,
) -> Result<(), IndexError> {
    let mut prepared = conn.prepare_cached(statement.sql())?;
    let values = statement.values();
    // SQLite would bind NULL to a `$n` without a value: refuse instead.
    if prepared.parameter_count() != values.len() {
        return Err(IndexError::Db(sqlx::Error::InvalidArgument(format!(
            "statement takes {} values, {} bound: {}",
            prepared.parameter_count(),
            values.len(),
            statement.sql()
        ))));
    }
    for (n, value) in values.iter().enumerate() {
        let name = format!("${}", n + 1);
        let at = prepared.parameter_index(&name)?.ok_or_else(|| {
            IndexError::Db(sqlx::Error::InvalidArgument(format!(
                "no {name} in: {}",
                statement.sql()
            )))
        })?;
        match value {
            Value::Int(v) => prepared.raw_bind_parameter(at, v)?,
            Value::Text(v) => prepared.raw_bind_parameter(at, v)?,
        }
    }
    let count = prepared.column_count();
    // Named once the statement returns a row: most return none.
    let mut columns: Option<Arc<[String]>> = None;
    let mut result = prepared.raw_query();
    while let Some(row) = result.next()? {
        let names = match &columns {
            Some(names) => names.clone(),
            None => {
                let stmt = row.as_ref();
                let names: Arc<[String]> = (0..count)
                    .map(|i| stmt.column_name(i).map(str::to_owned))
                    .collect::<Result<_, _>>()?;
                columns.insert(names).clone()
            }
        };
        let values = (0..count)
            .map(|i| value_of(row.get_ref(i)?))
            .collect::<Result<_, IndexError>>()?;
        rows.push(Row::new(names, values));
    }
    Ok(())
}

/// A column's value: the index's columns hold integers and texts.
fn value_of(value: ValueRef<'_>) -> Result<Value, IndexError> {
    match value {
        ValueRef::Null => Ok(Value::Int(None)),
        ValueRef::Integer(v) => Ok(Value::Int(Some(v))),
        ValueRef::Text(text) => std::str::from_utf8(text)
            .map(|t| Value::Text(Some(t.to_owned())))
            .map_err(|_| IndexError::Corrupt("a text column holds bytes not UTF-8".to_owned())),
        ValueRef::Real(_) | ValueRef::Blob(_) => Err(IndexError::Corrupt(
            "a statement returned a value neither an integer nor a text".to_owned(),
        )),
    }
}
