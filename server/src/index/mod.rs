//! The index: issues, reports, jobs, API tokens and the audit log, in SQL.
//!
//! One code path serves SQLite (the embedded default, in the data dir) and
//! PostgreSQL (several server processes): queries are written in the SQL both
//! accept, with `$n` placeholders, through sqlx's `Any` driver. Where the two differ
//! (claiming a job) the [`Backend`] decides. Times are Unix milliseconds.

mod audit;
mod issues;
mod jobs;
mod keys;
mod purge;
mod reports;
mod tokens;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

pub use audit::AuditEntry;
pub use issues::{IssueBreakdown, IssueFilter, IssueRow, IssueSort, IssueStatus};
pub use jobs::{Job, ProcessedOutcome};
pub use reports::{CrashFacts, NewReport, ReportRow, ReportState};
pub use tokens::{Role, TokenRow};

use crate::report_id::ReportId;

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The database URL names no backend we support.
    #[error("unsupported database url {0:?} (sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row holds a value this version does not know.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl IndexError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            IndexError::UnsupportedUrl(_) => "unsupported_url",
            IndexError::Db(_) => "db",
            IndexError::Migrate(_) => "migrate",
            IndexError::Corrupt(_) => "corrupt",
        }
    }

    /// Whether the database was busy (locked by another writer, or a conflicting
    /// transaction): worth waiting for and trying again, not a failure.
    pub fn is_busy(&self) -> bool {
        let IndexError::Db(sqlx::Error::Database(e)) = self else {
            return false;
        };
        // SQLite: SQLITE_BUSY and SQLITE_LOCKED with their extended codes;
        // PostgreSQL: serialization failure, deadlock, lock not available.
        // (SQLite's codes are numbers below 10000, PostgreSQL's five characters.)
        let busy_code = e.code().is_some_and(|code| match code.parse::<u32>() {
            Ok(n) if n < 10_000 => matches!(n & 0xff, 5 | 6),
            _ => matches!(code.as_ref(), "40001" | "40P01" | "55P03"),
        });
        busy_code || e.message().contains("database is locked")
    }
}

/// Which database the index is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The index, cheap to clone.
#[derive(Clone, Debug)]
pub struct Index {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Index {
    /// Connects to `url` (creating an SQLite file if needed) and brings the schema
    /// up to date.
    pub async fn connect(url: &str) -> Result<Index, IndexError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(IndexError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // WAL for concurrent readers; FULL so a committed
                            // transaction survives a power cut; wait on locks
                            // rather than failing.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // Deleted rows are overwritten with zeros, not left in
                            // free pages: deletion must really delete.
                            conn.execute("PRAGMA secure_delete = ON").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Index { pool, backend })
    }

    /// The database in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (health checks).
    pub async fn check(&self) -> Result<(), IndexError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), waiting for it as long as `busy_timeout` allows: a
    /// deferred transaction that reads first is refused without waiting ("database
    /// is locked") when it comes to write after another connection wrote.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, IndexError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// The report id in column `column` of `row`.
fn report_id_at(row: &AnyRow, column: &str) -> Result<ReportId, IndexError> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|_| IndexError::Corrupt(format!("report id {text:?}")))
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
