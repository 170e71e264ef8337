//! The seam between the store's logic and the two SQL dialects.

use std::{collections::HashMap, future::Future, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{migrate::Migrator, pool::PoolConnection, PgPool, SqlitePool};
use tokio::sync::watch;

use super::{
    event::RecordedEvent, import::ImportError, outbox::OutboxRow, writer, AppendOutcome, DatabaseUrl, LogHead,
    Migrations, StoreError,
};

/// What an idempotency key remembers: a fingerprint of the append and the outcome it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub fingerprint: String,
    pub outcome: AppendOutcome,
}

/// What one write puts into the log: events (already positioned and hashed), idempotency keys,
/// the head they end at, and the mail they cause.
pub(crate) struct Rows<'a> {
    pub events: &'a [RecordedEvent],
    pub keys: &'a [(String, IdempotencyRecord)],
    pub head: &'a LogHead,
    pub outbox: &'a [OutboxRow],
}

/// What a batch learns when it takes the lock on the log head.
pub(crate) struct HeadLock {
    pub head: LogHead,
    /// The outbox's last id: mail is numbered under the lock, like positions.
    pub last_mail_id: i64,
    /// The current version of each stream asked for (missing streams are left out).
    pub versions: HashMap<String, i64>,
}

/// The statements the writer needs inside one batch transaction. Implemented once per backend,
/// each in as few round trips as its database allows: a batch costs a fixed number of them
/// however many appends it carries, which is what makes group commit pay.
pub(crate) trait WriteBackend: Send + Sync + 'static {
    type Tx: Send;

    /// Begins the batch transaction and takes the lock on the log head.
    fn lock_head(&self, streams: &[String]) -> impl Future<Output = Result<(Self::Tx, HeadLock), sqlx::Error>> + Send;
    /// Current version of each named stream (missing streams are left out).
    fn stream_versions(
        &self,
        tx: &mut Self::Tx,
        streams: &[String],
    ) -> impl Future<Output = Result<HashMap<String, i64>, sqlx::Error>> + Send;
    fn idempotency_records(
        &self,
        tx: &mut Self::Tx,
        keys: &[String],
    ) -> impl Future<Output = Result<HashMap<String, IdempotencyRecord>, sqlx::Error>> + Send;
    /// Runs a statement without parameters (savepoints).
    fn execute(&self, tx: &mut Self::Tx, sql: &'static str) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Writes the rows and moves the head, in one round trip. On PostgreSQL this also notifies the
    /// other processes, at commit.
    fn write(&self, tx: &mut Self::Tx, rows: Rows<'_>) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Whether `write_if_head_is` is there.
    const WRITES_UNLOCKED: bool = false;
    /// Writes the rows in one statement of its own transaction (no lock taken first), and only if
    /// the head is still `expected`: false when another process had moved it, and nothing was
    /// written. Only called where `WRITES_UNLOCKED`; elsewhere it writes nothing.
    fn write_if_head_is(
        &self,
        expected: &LogHead,
        rows: Rows<'_>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send {
        let _ = (expected, rows);
        async { Ok(false) }
    }
    /// Writes the rows and commits; after an error, the transaction was rolled back.
    fn write_and_commit(
        &self,
        mut tx: Self::Tx,
        rows: Rows<'_>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async move {
            match self.write(&mut tx, rows).await {
                Ok(()) => self.commit(tx).await,
                Err(error) => {
                    self.rollback(tx).await?;
                    Err(error)
                }
            }
        }
    }
    fn commit(&self, tx: Self::Tx) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Rolls back at once (a dropped transaction would end only when its connection closes, and on
    /// SQLite would hold the write lock until then).
    fn rollback(&self, tx: Self::Tx) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// The writer's transaction: begun and ended by the writer's own statements, so that `BEGIN`
/// travels with the statement that takes the lock, on a connection that the writer keeps between
/// batches (a pool would ping it before each one). A batch dropped before it ended closes its
/// connection, which rolls it back.
pub(crate) struct BatchTx<DB: sqlx::Database> {
    /// Taken out when the transaction ended.
    conn: Option<PoolConnection<DB>>,
}

impl<DB: sqlx::Database> BatchTx<DB> {
    /// A connection on which a transaction is being begun.
    pub fn begin(conn: PoolConnection<DB>) -> Self {
        Self { conn: Some(conn) }
    }

    pub fn conn(&mut self) -> &mut DB::Connection {
        self.conn.as_mut().expect("a transaction keeps its connection until it ends")
    }

    /// Ends the transaction with `statement` (COMMIT or ROLLBACK).
    pub async fn end(mut self, statement: &'static str, keeper: &ConnectionKeeper<DB>) -> Result<(), sqlx::Error>
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        sqlx::Executor::execute(self.conn(), statement).await?;
        self.ended(keeper);
        Ok(())
    }

    /// The transaction ended (committed or rolled back): the connection may serve the next batch.
    pub fn ended(mut self, keeper: &ConnectionKeeper<DB>) {
        if let Some(conn) = self.conn.take() {
            *keeper.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(conn);
        }
    }
}

impl<DB: sqlx::Database> Drop for BatchTx<DB> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// The one connection a writer keeps between batches.
pub(crate) struct ConnectionKeeper<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    kept: std::sync::Mutex<Option<PoolConnection<DB>>>,
}

impl<DB: sqlx::Database> ConnectionKeeper<DB> {
    pub fn new(pool: sqlx::Pool<DB>) -> Self {
        Self { pool, kept: std::sync::Mutex::new(None) }
    }

    /// The kept connection (with `true`: it may have died since), or else one from the pool.
    pub async fn take(&self) -> Result<(PoolConnection<DB>, bool), sqlx::Error> {
        let kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match kept {
            Some(conn) => Ok((conn, true)),
            None => Ok((self.fresh().await?, false)),
        }
    }

    /// A connection from the pool, which checks it first.
    pub async fn fresh(&self) -> Result<PoolConnection<DB>, sqlx::Error> {
        self.pool.acquire().await
    }
}

/// A row of the `events` table as both backends select it (JSON and ids as text).
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    position: i64,
    stream_id: String,
    stream_version: i64,
    event_type: String,
    schema_version: i32,
    data: String,
    metadata: String,
    recorded_at: DateTime<Utc>,
    event_id: String,
    hash: String,
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        let corrupt = |reason: String| StoreError::CorruptEvent { position: row.position, reason };
        Ok(RecordedEvent {
            position: row.position,
            data: serde_json::from_str(&row.data).map_err(|e| corrupt(format!("data: {e}")))?,
            metadata: serde_json::from_str(&row.metadata).map_err(|e| corrupt(format!("metadata: {e}")))?,
            event_id: row.event_id.parse().map_err(|e| corrupt(format!("event id: {e}")))?,
            stream: row.stream_id,
            version: row.stream_version,
            event_type: row.event_type,
            schema_version: row.schema_version,
            recorded_at: row.recorded_at,
            hash: row.hash,
        })
    }
}

pub(crate) fn decode_rows(rows: Vec<EventRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.into_iter().map(RecordedEvent::try_from).collect()
}

/// The connection pool of whichever backend the URL named.
#[derive(Clone)]
pub(crate) enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

impl Database {
    /// Connects; a missing SQLite file is created only when the schema may be changed (commands
    /// that only read must not leave an empty database behind).
    pub async fn connect(url: &DatabaseUrl, migrations: Migrations) -> Result<Self, StoreError> {
        match url {
            DatabaseUrl::Sqlite(target) => {
                let create = migrations == Migrations::Apply;
                super::sqlite::connect(target, create).await.map(Database::Sqlite)
            }
            DatabaseUrl::Postgres(target) => super::postgres::connect(target).await.map(Database::Postgres),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Database::Sqlite(_) => &SQLITE_MIGRATIONS,
            Database::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// The highest migration applied to this database (0 for an empty one).
    async fn applied_migration(&self) -> Result<i64, StoreError> {
        let applied = match self {
            Database::Sqlite(pool) => {
                let exists: Option<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_optional(pool)
                .await?;
                match exists {
                    None => None,
                    Some(_) => {
                        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                            .fetch_one(pool)
                            .await?
                    }
                }
            }
            Database::Postgres(pool) => {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text").fetch_one(pool).await?;
                match exists {
                    None => None,
                    Some(_) => {
                        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                            .fetch_one(pool)
                            .await?
                    }
                }
            }
        };
        Ok(applied.unwrap_or(0))
    }

    /// Refuses a schema newer than this binary; applies (or requires) the known migrations.
    pub async fn prepare_schema(&self, migrations: Migrations) -> Result<(), StoreError> {
        let migrator = self.migrator();
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let found = self.applied_migration().await?;
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        match (migrations, found < known) {
            (Migrations::RequireCurrent, true) => Err(StoreError::SchemaTooOld { found, known }),
            (Migrations::Apply, true) => match self {
                Database::Sqlite(pool) => Ok(migrator.run(pool).await?),
                Database::Postgres(pool) => Ok(migrator.run(pool).await?),
            },
            (Migrations::Apply, false) => self.check_writable().await,
            (Migrations::RequireCurrent, false) => Ok(()),
        }
    }

    /// A store opened for writing must be able to take the write lock, or it would fail only at
    /// the first append (a read-only SQLite file, a PostgreSQL standby).
    async fn check_writable(&self) -> Result<(), StoreError> {
        // A write that changes nothing, rolled back.
        const PROBE: &str = "UPDATE log_head SET position = position WHERE id = 1";
        match self {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(PROBE).execute(&mut *tx).await?;
                tx.rollback().await?
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(PROBE).execute(&mut *tx).await?;
                tx.rollback().await?
            }
        }
        Ok(())
    }

    /// This process's writer task, to be spawned (see `writer::run`).
    pub fn writer<P: super::CommandPlanner>(
        &self,
        origin: &str,
        models: Option<writer::Models<P>>,
        jobs: writer::Inbox<P>,
        committed: Arc<watch::Sender<i64>>,
        appended: Arc<std::sync::atomic::AtomicU64>,
    ) -> futures_util::future::BoxFuture<'static, ()> {
        use futures_util::FutureExt;
        match self {
            Database::Sqlite(pool) => {
                let backend = super::sqlite::SqliteWriter::new(pool.clone());
                writer::run(backend, self.clone(), models, jobs, committed, appended).boxed()
            }
            Database::Postgres(pool) => {
                let backend = super::postgres::PostgresWriter::new(pool.clone(), origin);
                writer::run(backend, self.clone(), models, jobs, committed, appended).boxed()
            }
        }
    }

    /// Writes exported events back into an empty log (see `import`).
    pub async fn import<E>(
        &self,
        events: impl Iterator<Item = Result<RecordedEvent, E>>,
    ) -> Result<LogHead, ImportError<E>> {
        match self {
            Database::Sqlite(pool) => {
                super::import::import(&super::sqlite::SqliteWriter::new(pool.clone()), events).await
            }
            Database::Postgres(pool) => {
                let origin = uuid::Uuid::new_v4().to_string();
                super::import::import(&super::postgres::PostgresWriter::new(pool.clone(), &origin), events).await
            }
        }
    }

    /// Other processes' commits: LISTEN/NOTIFY on PostgreSQL. SQLite has only in-process signals
    /// (from the writer) and the cursor's polling for writes made by other processes.
    /// `origin` names this process's writer, whose commits it announces itself.
    pub async fn start_commit_listener(
        &self,
        origin: &str,
        committed: Arc<watch::Sender<i64>>,
        alive: watch::Receiver<()>,
    ) {
        if let Database::Postgres(pool) = self {
            super::postgres::start_commit_listener(pool.clone(), origin.to_string(), committed, alive).await;
        }
    }

    pub async fn head(&self) -> Result<LogHead, StoreError> {
        const SQL: &str = "SELECT position, hash FROM log_head WHERE id = 1";
        let (position, hash) = match self {
            Database::Sqlite(pool) => sqlx::query_as(SQL).fetch_one(pool).await?,
            Database::Postgres(pool) => sqlx::query_as(SQL).fetch_one(pool).await?,
        };
        Ok(LogHead { position, hash })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Database::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        };
        Ok(())
    }

    pub async fn read_stream(&self, stream: &str, from_version: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = match self {
            Database::Sqlite(pool) => super::sqlite::read_stream(pool, stream, from_version).await?,
            Database::Postgres(pool) => super::postgres::read_stream(pool, stream, from_version).await?,
        };
        decode_rows(rows)
    }

    pub async fn read_page(&self, after_position: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = match self {
            Database::Sqlite(pool) => super::sqlite::read_page(pool, after_position, limit).await?,
            Database::Postgres(pool) => super::postgres::read_page(pool, after_position, limit).await?,
        };
        decode_rows(rows)
    }
}
