//! The index: issues, reports, jobs, the webhook outbox, API tokens and the audit
//! log, in SQL.
//!
//! One code path serves SQLite (the embedded default, in the data dir) and
//! PostgreSQL (several server processes): queries are written in the SQL both
//! accept, with `$n` placeholders, through sqlx's `Any` driver. Where the two differ
//! (claiming a job) the [`Backend`] decides. Times are Unix milliseconds.
//!
//! Writes never fail because SQLite is busy: they go through one writer
//! connection, so this process's writers queue for it instead of contending for
//! SQLite's lock, and every write transaction takes the lock when it begins
//! (`BEGIN IMMEDIATE`), so it cannot deadlock against another process's writer
//! after reading; a lock held by another process is waited for (`busy_timeout`).
//! Reads use a pool of read-only connections, which WAL lets run beside the writer;
//! the reads every job makes run in the calling thread instead (`direct.rs`).
//!
//! Each statement binds its own values in order (`.bind(..)` chains): alike in
//! shape from one query to the next, never the same statement twice. Rows map to
//! types in one place each (`*_from_row`, `FromRow`).
//!
//! Received reports are recorded by group commit ([`Intake`]): one durable
//! commit for the uploads that arrived together. Within a write transaction,
//! statements that need no answer from each other go as one batch (`batch.rs`):
//! on SQLite one round trip to the connection's thread for all of them.

mod audit;
mod batch;
mod crash_sites;
mod daily;
mod direct;
mod intake;
mod issues;
mod jobs;
mod keys;
mod outbox;
mod placing;
mod purge;
mod reports;
mod search;
mod tokens;
mod write;
mod writer_thread;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, Executor, Row};

pub use audit::AuditEntry;
pub use crash_sites::SiteIssue;
pub use daily::{DailyCount, IssueDay, ProductDay, date_of, day_of};
pub use intake::Intake;
pub use issues::{IssueBreakdown, IssueFilter, IssueRow, IssueSort, IssueStatus};
pub use jobs::{ClaimNext, Job, JobReport, ProcessedOutcome};
pub use keys::KeyKind;
pub use outbox::{Alerts, Delivery, DeliveryEnd, OutboxCounts};
pub use placing::{GroupedReport, IssueResolution, Regrouped, Regrouping};
pub use reports::{CrashFacts, NewReport, ReportRow, ReportState};
pub use search::{ReportConditions, ReportFilter};
pub use tokens::{Role, TokenRow};
pub use write::Commit;

use crate::metrics::{WriterUse, WriterUser, WriterUses};
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
    /// The SQLite database failed, under the writer's own connection
    /// (`index/direct.rs`).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row holds a value this version does not know.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The job was claimed again by another worker (this claim's lease ran out):
    /// that worker records it, this one must not.
    #[error("job {0} was claimed again by another worker")]
    ClaimLost(i64),
    /// The [`Intake`]'s task, or the writer's thread, is gone (the process is
    /// stopping).
    #[error("the index's writing task stopped")]
    Stopped,
}

impl IndexError {
    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            IndexError::UnsupportedUrl(_) => "unsupported_url",
            IndexError::Db(_) | IndexError::Sqlite(_) => "db",
            IndexError::Migrate(_) => "migrate",
            IndexError::Corrupt(_) => "corrupt",
            IndexError::ClaimLost(_) => "claim_lost",
            IndexError::Stopped => "stopped",
        }
    }

    /// Whether the database was busy (locked by another writer, or a conflicting
    /// transaction): worth waiting for and trying again, not a failure.
    pub fn is_busy(&self) -> bool {
        if let IndexError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) = self {
            return matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            );
        }
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

impl Backend {
    /// The rows of the JSON array bound to `param`, each as `value` (its
    /// fields `value ->> 0`, `value ->> 1`, …; a number cast where a column
    /// wants one): one statement for any number of rows.
    fn json_rows(self, param: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_each({param})"),
            Backend::Postgres => format!("jsonb_array_elements({param}::jsonb) AS value"),
        }
    }
}

/// The index, cheap to clone.
#[derive(Clone, Debug)]
pub struct Index {
    /// Reads. On SQLite its connections are read-only.
    pool: AnyPool,
    /// Writes. On SQLite one connection; on PostgreSQL the same pool as `pool`.
    writer: AnyPool,
    backend: Backend,
    /// The webhooks finishing a processed report writes events for.
    alerts: Arc<Alerts>,
    /// On SQLite: how long the one writer connection is held.
    writer_clock: Option<Arc<WriterClock>>,
    /// On SQLite (in a file): where write transactions' statements run.
    direct: Option<Arc<direct::Direct>>,
    /// On SQLite (in a file): reads run in the calling thread (`direct.rs`).
    reads: Option<Arc<direct::Reads>>,
}

tokio::task_local! {
    /// Who the writes of a task are for ([`writing_as`]).
    static WRITER_USER: WriterUser;
}

/// Runs `work` with the SQLite writer's uses it makes counted as `user`'s
/// (else as [`WriterUser::Other`]): the intake's and each processing worker's
/// task run so.
pub fn writing_as<F: Future>(user: WriterUser, work: F) -> impl Future<Output = F::Output> {
    WRITER_USER.scope(user, work)
}

/// Times the SQLite writer is held, from its pool's hooks: taken when a write
/// gets it (a new connection, or the idle one), given back when it returns.
/// A connection closed rather than given back ends no use. Each use is counted
/// for the [`WriterUser`] of the task that took it.
#[derive(Debug)]
struct WriterClock {
    /// What the other times count from.
    start: std::time::Instant,
    /// When the writer was taken, in nanoseconds since `start`, plus one;
    /// 0 while it is not held.
    taken_at: AtomicU64,
    /// Who took it ([`WriterUser::index`]).
    taken_by: AtomicUsize,
    /// By user ([`WriterUser::index`]).
    uses: [AtomicU64; 3],
    held_nanos: [AtomicU64; 3],
}

impl WriterClock {
    fn new() -> WriterClock {
        WriterClock {
            start: std::time::Instant::now(),
            taken_at: Default::default(),
            taken_by: Default::default(),
            uses: Default::default(),
            held_nanos: Default::default(),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// In the task that takes it (the pool's acquire runs there).
    fn taken(&self) {
        let by = WRITER_USER
            .try_with(|user| *user)
            .unwrap_or(WriterUser::Other);
        self.taken_by.store(by.index(), Relaxed);
        self.taken_at.store(self.nanos() + 1, Relaxed);
    }

    fn given_back(&self) {
        let taken_at = self.taken_at.swap(0, Relaxed);
        if taken_at != 0 {
            let held = self.nanos().saturating_sub(taken_at - 1);
            let by = self.taken_by.load(Relaxed);
            self.held_nanos[by].fetch_add(held, Relaxed);
            self.uses[by].fetch_add(1, Relaxed);
        }
    }

    fn reading(&self) -> WriterUses {
        WriterUses(WriterUser::ALL.map(|user| WriterUse {
            uses: self.uses[user.index()].load(Relaxed),
            held: Duration::from_nanos(self.held_nanos[user.index()].load(Relaxed)),
        }))
    }
}

/// How long an SQLite connection waits for a lock another process holds before
/// the statement fails, in milliseconds.
const SQLITE_BUSY_TIMEOUT: u64 = 30_000;
/// How the writer's connections are set (the sqlx one, and the one its
/// transactions run on, `index/direct.rs`).
const SQLITE_WRITER_PRAGMAS: &[&str] = &[
    // WAL for readers beside the writer; FULL so a committed transaction
    // survives a power cut.
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    // Deleted rows are overwritten with zeros, not left in free pages:
    // deletion must really delete.
    "PRAGMA secure_delete = ON",
    // A transaction's statement journal (the pages a statement changed, to
    // undo it alone) stays in memory: past 64 KiB SQLite would spill it to a
    // new temporary file, created and unlinked in a finish, with copies of
    // index pages in blocks that unlinking does not erase.
    "PRAGMA temp_store = MEMORY",
];
/// Read connections to SQLite.
const SQLITE_READERS: u32 = 8;

/// [`SQLITE_BUSY_TIMEOUT`] as sqlx sets it.
fn busy_timeout() -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT}"))
}

/// Whether sqlx pings an SQLite connection each time it is taken from its
/// pool. Not: sqlx pings every connection given back to its pool already, and
/// closes one whose thread died then; a ping on taking it again finds nothing
/// new (its database is a file in this process, not a server that may have
/// gone), and costs a round trip to the connection's thread — two thread
/// wake-ups before every read and, for the writer, inside every hold (README,
/// "No ping before each use of an SQLite connection").
const SQLITE_PING_ON_ACQUIRE: bool = false;

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
        let index = match backend {
            Backend::Sqlite => {
                // The writer first: it puts the file in WAL mode and migrates it
                // before any reader opens it.
                let clock = Arc::new(WriterClock::new());
                let (on_connect, on_acquire, on_release) =
                    (clock.clone(), clock.clone(), clock.clone());
                let writer = AnyPoolOptions::new()
                    .max_connections(1)
                    // Writers queue here while the one connection is busy.
                    .acquire_timeout(Duration::from_secs(60))
                    .test_before_acquire(SQLITE_PING_ON_ACQUIRE)
                    .before_acquire(move |_conn, _meta| {
                        on_acquire.taken();
                        Box::pin(async { Ok(true) })
                    })
                    .after_release(move |_conn, _meta| {
                        on_release.given_back();
                        Box::pin(async { Ok(true) })
                    })
                    .after_connect(move |conn, _meta| {
                        let clock = on_connect.clone();
                        Box::pin(async move {
                            for pragma in SQLITE_WRITER_PRAGMAS {
                                conn.execute(*pragma).await?;
                            }
                            conn.execute(busy_timeout()).await?;
                            // Opened for a write, which holds it from here.
                            clock.taken();
                            Ok(())
                        })
                    })
                    .connect_with(options.clone())
                    .await?;
                SQLITE_MIGRATIONS.run(&writer).await?;
                // Statistics for the query planner where they are missing or stale
                // (bounded work, as SQLite advises at start: see `optimize`).
                sqlx::query("PRAGMA optimize = 0x10012")
                    .execute(&writer)
                    .await?;
                // An in-memory database exists only in its one connection.
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                let (direct, reads) = if in_memory {
                    (None, None)
                } else {
                    let file = SqliteConnectOptions::from_str(url)?;
                    let path = file.get_filename();
                    (
                        Some(Arc::new(direct::Direct::open(path)?)),
                        Some(Arc::new(direct::Reads::new(path))),
                    )
                };
                let pool = if in_memory {
                    writer.clone()
                } else {
                    AnyPoolOptions::new()
                        .max_connections(SQLITE_READERS)
                        .test_before_acquire(SQLITE_PING_ON_ACQUIRE)
                        .after_connect(|conn, _meta| {
                            Box::pin(async move {
                                conn.execute(busy_timeout()).await?;
                                // A write sent here by mistake fails rather than
                                // contend with the writer.
                                conn.execute("PRAGMA query_only = ON").await?;
                                Ok(())
                            })
                        })
                        .connect_with(options)
                        .await?
                };
                Index {
                    pool,
                    writer,
                    backend,
                    alerts: Arc::default(),
                    writer_clock: Some(clock),
                    direct,
                    reads,
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Index {
                    writer: pool.clone(),
                    pool,
                    backend,
                    alerts: Arc::default(),
                    writer_clock: None,
                    direct: None,
                    reads: None,
                }
            }
        };
        Ok(index)
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

    /// Brings the query planner's statistics up to date where the tables have
    /// changed much since they were gathered (SQLite's `PRAGMA optimize`, which
    /// it advises every few hours; PostgreSQL's autovacuum does this itself). The
    /// searches' plans depend on them: which filter's index to read first.
    pub async fn optimize(&self) -> Result<(), IndexError> {
        if self.backend == Backend::Sqlite {
            // Every table checked (0x10000), not only the ones this connection
            // used lately; ANALYZE run where it helps (0x2), within a temporary
            // analysis limit (0x10) so it stays quick on a large index.
            sqlx::query("PRAGMA optimize = 0x10012")
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }

    /// Closes the pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// How much the SQLite writer was used since the index was opened, by
    /// whom; `None` on PostgreSQL (a pool of writers).
    pub fn writer_use(&self) -> Option<WriterUses> {
        self.writer_clock.as_ref().map(|clock| clock.reading())
    }
}

/// A work queue in the index: its rows wait `pending` until their `not_before`,
/// then one taker at a time claims one (`claimed_at`, `attempts`) for a lease; a
/// claim whose lease ran out is taken again. The job queue and the webhook
/// outbox are such queues.
#[derive(Debug, Clone, Copy)]
struct Queue {
    /// The table.
    table: &'static str,
    /// The state of a claimed row.
    claimed: &'static str,
}

impl Index {
    /// The report ids in column `column` of the rows `query` selects.
    async fn report_ids(
        &self,
        query: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
        column: &str,
    ) -> Result<Vec<ReportId>, IndexError> {
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|r| report_id_at(r, column)).collect()
    }

    /// The statement that claims the oldest due row of `queue`: a pending one
    /// whose time (`$1`, now) has come, or a claimed one whose claim is older
    /// than `$2` (now less the lease, its taker died). It marks the claim, counts
    /// the attempt, sets `set` too (`, column = $3`…) and returns `returning`.
    ///
    /// Each of the two kinds is looked up on its own through the queue's
    /// `(state, not_before)` index, oldest first, and the older of the two (at
    /// most two rows) taken: a lookup that costs the same however long the
    /// queue, where one `WHERE … OR …` scans and sorts every row of the table
    /// (1.4 ms per claim with 20 000 queued jobs, on the one writer).
    fn claim_statement(&self, queue: Queue, set: &str, returning: &str) -> String {
        let Queue { table, claimed } = queue;
        let lock = match self.backend {
            // Each lookup locks the row it finds, skipping rows another
            // claimer holds: concurrent claims take different rows. (The one
            // of the two not taken stays locked until the claim's transaction
            // ends; another claimer passes over it meanwhile.)
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite runs one writer at a time: the UPDATE is atomic.
            Backend::Sqlite => "",
        };
        format!(
            "UPDATE {table} SET state = '{claimed}', claimed_at = $1, \
             attempts = attempts + 1{set} \
             WHERE id = (SELECT id FROM {table} WHERE id IN ( \
                 (SELECT id FROM {table} WHERE state = 'pending' AND not_before <= $1 \
                  ORDER BY not_before, id LIMIT 1 {lock}), \
                 (SELECT id FROM {table} WHERE state = '{claimed}' AND claimed_at < $2 \
                  ORDER BY not_before, id LIMIT 1 {lock})) \
             ORDER BY not_before, id LIMIT 1) \
             RETURNING {returning}"
        )
    }

    /// When the next row of `queue` falls due (Unix ms): the earliest pending
    /// row's `not_before`, or the earliest lease of a claimed one to run out.
    /// `None` when none waits.
    async fn next_due(&self, queue: Queue, lease: Duration) -> Result<Option<i64>, IndexError> {
        let Queue { table, claimed } = queue;
        // Each minimum read from the queue's `(state, not_before)` index (the
        // claimed rows are few), not from every queued row.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT MIN(due) AS due FROM ( \
             SELECT MIN(not_before) AS due FROM {table} WHERE state = 'pending' \
             UNION ALL \
             SELECT MIN(claimed_at) + $1 AS due FROM {table} WHERE state = '{claimed}') AS next"
        )))
        .bind(lease.as_millis() as i64)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("due")?)
    }
}

/// The report id in column `column` of `row`.
fn report_id_at(row: &impl batch::Fields, column: &str) -> Result<ReportId, IndexError> {
    let text: String = row.field(column)?;
    text.parse()
        .map_err(|_| IndexError::Corrupt(format!("report id {text:?}")))
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// What the index's unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An SQLite index in a file in `dir`.
    pub(crate) async fn sqlite_index(dir: &std::path::Path) -> Index {
        let url = format!("sqlite://{}?mode=rwc", dir.join("index.db").display());
        Index::connect(&url).await.unwrap()
    }

    /// `PRAGMA synchronous` on `writer` (2 is FULL).
    pub(crate) async fn synchronous(writer: &AnyPool) -> i64 {
        pragma(writer, "synchronous").await
    }

    /// `PRAGMA synchronous` on both of the SQLite writer's connections (2 is
    /// FULL): the sqlx one, and the one transactions run on (`direct.rs`;
    /// the sqlx one's again for an in-memory database).
    pub(crate) async fn writer_synchronous(index: &Index) -> [i64; 2] {
        let sqlx = synchronous(&index.writer).await;
        let direct = match &index.direct {
            Some(direct) => direct.pragma("synchronous"),
            None => sqlx,
        };
        [sqlx, direct]
    }

    /// SQLite's plan for `sql` with `binds` bound in order: each step's detail
    /// (`SEARCH r USING INDEX …`, `SCAN …`).
    pub(super) async fn query_plan(
        pool: &AnyPool,
        sql: &str,
        binds: &[search::Bind],
    ) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        search::bind_all(sqlx::query(sqlx::AssertSqlSafe(explain)), binds)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String, _>("detail").unwrap())
            .collect()
    }

    /// The value of `PRAGMA {name}` on `writer`.
    pub(crate) async fn pragma(writer: &AnyPool, name: &str) -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(writer)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's clock counts a use once it is given back, for as long as
    /// the write held it.
    #[tokio::test]
    async fn the_writer_clock_counts_each_use_for_as_long_as_it_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let index = testing::sqlite_index(dir.path()).await;
        let before = index.writer_use().unwrap();
        let tx = index.begin(Commit::Durable).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.commit_after(batch::Batch::new(index.backend))
            .await
            .unwrap();
        // The pool takes the connection back in a task of its own.
        let mut after = index.writer_use().unwrap();
        for _ in 0..500 {
            if after.total().uses > before.total().uses {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            after = index.writer_use().unwrap();
        }
        let (before, after) = (before.by(WriterUser::Other), after.by(WriterUser::Other));
        assert_eq!(after.uses, before.uses + 1);
        assert!(after.held - before.held >= Duration::from_millis(50));
    }

    /// A use is counted for the user whose task took the writer.
    #[tokio::test]
    async fn the_writer_clock_counts_each_use_for_its_user() {
        let dir = tempfile::tempdir().unwrap();
        let index = testing::sqlite_index(dir.path()).await;
        let before = index.writer_use().unwrap();
        for user in [WriterUser::Jobs, WriterUser::Jobs, WriterUser::Intake] {
            writing_as(user, async {
                let tx = index.begin(Commit::Durable).await.unwrap();
                tx.commit_after(batch::Batch::new(index.backend))
                    .await
                    .unwrap();
            })
            .await;
        }
        let counted = |uses: &WriterUses| WriterUser::ALL.map(|u| uses.by(u).uses);
        let mut after = index.writer_use().unwrap();
        for _ in 0..500 {
            if after.total().uses >= before.total().uses + 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            after = index.writer_use().unwrap();
        }
        let (before, after) = (counted(&before), counted(&after));
        assert_eq!(
            [
                after[0] - before[0],
                after[1] - before[1],
                after[2] - before[2]
            ],
            [1, 2, 0],
            "intake, jobs, other"
        );
    }

    /// Neither SQLite pool pings a connection when it is taken (see
    /// [`SQLITE_PING_ON_ACQUIRE`]); PostgreSQL's pool keeps sqlx's default.
    #[tokio::test]
    async fn sqlite_connections_are_not_pinged_when_taken() {
        let dir = tempfile::tempdir().unwrap();
        let index = testing::sqlite_index(dir.path()).await;
        assert!(!index.writer.options().get_test_before_acquire());
        assert!(!index.pool.options().get_test_before_acquire());
        // Both still serve: a write, then a read of it.
        index
            .write(Commit::Durable, {
                let mut batch = batch::Batch::new(index.backend);
                batch.push(batch::statement(
                    "INSERT INTO jobs (report_id, kind, state, not_before, created_at) \
                     VALUES ('r', 'process', 'pending', 0, 0)",
                ));
                batch
            })
            .await
            .unwrap();
        let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(&index.pool)
            .await
            .unwrap();
        assert_eq!(jobs, 1);
    }

    /// The writer's statement journals stay in memory: on disk they are
    /// temporary files, unlinked at once but written with index pages.
    #[tokio::test]
    async fn the_writer_keeps_statement_journals_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let index = testing::sqlite_index(dir.path()).await;
        assert_eq!(
            testing::pragma(&index.writer, "temp_store").await,
            2,
            "MEMORY"
        );
    }

    /// SQLite's plan for a claim, with the planner's statistics gathered over
    /// a long queue (as `PRAGMA optimize` gathers them): every lookup of
    /// `jobs` and `webhook_outbox` is a search of an index or the primary key,
    /// and none is a scan or a multi-index OR — both read every due row and
    /// sort them, which one `WHERE … OR …` lookup was planned as (a scan with
    /// SQLite 3.40's statistics, a multi-index OR with these).
    #[tokio::test]
    async fn a_claim_never_reads_the_whole_queue() {
        let index = Index::connect("sqlite::memory:").await.unwrap();
        let fill = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             INSERT INTO jobs (report_id, kind, state, not_before, created_at) \
             SELECT 'r' || i, 'process', 'pending', i, i FROM n; \
             INSERT INTO issues (id, signature_hash, signature, title, status, first_seen, \
             last_seen, report_count) VALUES (1, 'h', 's', 't', 'open', 0, 0, 0); \
             INSERT INTO webhook_outbox (event_id, hook, event, issue_id, body, state, \
             not_before, created_at) \
             SELECT 'e' || id, 'h', 'new_issue', 1, '{}', 'pending', id, id FROM jobs; \
             ANALYZE";
        sqlx::raw_sql(fill).execute(&index.writer).await.unwrap();
        for queue in [jobs::JOBS, outbox::OUTBOX] {
            let claim = index.claim_statement(queue, "", "id");
            let binds = [search::Bind::Int(0), search::Bind::Int(0)];
            let steps = testing::query_plan(&index.writer, &claim, &binds).await;
            assert!(
                steps.iter().filter(|s| s.starts_with("SEARCH")).count() >= 3,
                "{steps:?}"
            );
            assert!(
                !steps
                    .iter()
                    .any(|s| s.starts_with("SCAN") || s.starts_with("MULTI-INDEX OR")),
                "{}: {steps:?}",
                queue.table
            );
        }
    }

    /// Migration 0012 rebuilds the missing-symbol and annotation-tag tables
    /// `WITHOUT ROWID` on SQLite: an index made before it keeps every row.
    #[tokio::test]
    async fn the_keyed_tables_keep_the_rows_of_an_older_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("index.db").display()
        );
        sqlx::any::install_default_drivers();
        let older = AnyPool::connect(&url).await.unwrap();
        SQLITE_MIGRATIONS.run_to(11, &older).await.unwrap();
        let rows = "INSERT INTO reports (id, received_at, state, deletion_token_hash, raw_key, \
             meta_key) VALUES ('a', 1, 'processed', 'h', 'r', 'm'), ('b', 2, 'processed', 'h', \
             'r', 'm'); \
             INSERT INTO report_missing_symbols (report_id, debug_file, debug_id) VALUES \
             ('a', 'x.pdb', '1'), ('a', 'y.pdb', '2'), ('b', 'x.pdb', '1'); \
             INSERT INTO report_annotations (tag, report_id) VALUES ('t', 'a'), ('t', 'b'), \
             ('u', 'b')";
        sqlx::raw_sql(rows).execute(&older).await.unwrap();
        older.close().await;

        let index = Index::connect(&url).await.unwrap();
        for (table, expected) in [
            ("report_missing_symbols", "a x.pdb 1,a y.pdb 2,b x.pdb 1"),
            ("report_annotations", "a t,b t,b u"),
        ] {
            let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = $1")
                .bind(table)
                .fetch_one(&index.pool)
                .await
                .unwrap();
            assert!(sql.ends_with("WITHOUT ROWID"), "{sql}");
            let columns = if table == "report_annotations" {
                "report_id || ' ' || tag"
            } else {
                "report_id || ' ' || debug_file || ' ' || debug_id"
            };
            let kept: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT group_concat(row, ',') FROM \
                 (SELECT {columns} AS row FROM {table} ORDER BY row)"
            )))
            .fetch_one(&index.pool)
            .await
            .unwrap();
            assert_eq!(kept, expected, "{table}");
        }
    }

    /// Every index is worth its writes: none (unique and partial ones aside)
    /// is the leading columns of another index of its table, or all of them,
    /// which answers every lookup it would — and each row written would write
    /// both. (SQLite's schema; PostgreSQL's migrations make the same indexes.)
    #[tokio::test]
    async fn no_index_is_the_leading_part_of_another() {
        let index = Index::connect("sqlite::memory:").await.unwrap();
        let rows = sqlx::query(
            "SELECT m.tbl_name AS tbl, l.name AS name, l.\"unique\" AS is_unique, c.name AS col \
             FROM sqlite_master m, pragma_index_list(m.name) l, pragma_index_info(l.name) c \
             WHERE m.type = 'table' AND l.partial = 0 ORDER BY l.name, c.seqno",
        )
        .fetch_all(&index.writer)
        .await
        .unwrap();
        // (table, index, unique, its columns in order)
        let mut indexes: Vec<(String, String, bool, Vec<String>)> = Vec::new();
        for row in &rows {
            let name: String = row.try_get("name").unwrap();
            let col: String = row.try_get("col").unwrap();
            match indexes.last_mut() {
                Some((_, last, _, cols)) if *last == name => cols.push(col),
                _ => {
                    let table: String = row.try_get("tbl").unwrap();
                    let unique: i64 = row.try_get("is_unique").unwrap();
                    indexes.push((table, name, unique == 1, vec![col]));
                }
            }
        }
        assert!(
            indexes
                .iter()
                .any(|(_, name, ..)| name == "reports_issue_received"),
            "{indexes:?}"
        );
        for (table, name, unique, cols) in &indexes {
            for (other_table, other, _, other_cols) in &indexes {
                let redundant = table == other_table
                    && name != other
                    && !unique
                    && other_cols.len() >= cols.len()
                    && other_cols.starts_with(cols);
                assert!(!redundant, "{name} {cols:?} leads {other} {other_cols:?}");
            }
        }
    }
}
