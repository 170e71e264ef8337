//! SQLite: the embedded default. WAL with synchronous=NORMAL survives a killed process; the
//! write lock of `BEGIN IMMEDIATE` is the lock on the log head, also across processes.

use std::{collections::HashMap, str::FromStr, time::Duration};

use sqlx::{
    pool::PoolConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Sqlite, SqlitePool,
};

use super::{
    backend::{BatchTx, ConnectionKeeper, EventRow, HeadLock, IdempotencyRecord, Rows, WriteBackend},
    event::format_time,
    outbox::OutboxRow,
    LogHead, StoreError,
};

const SELECT_EVENTS: &str = "SELECT position, stream_id, stream_version, event_type, schema_version, data, metadata, \
     recorded_at, event_id, hash FROM events";

/// Opens the file, creating it when missing only if `create`.
pub(crate) async fn connect(target: &str, create: bool) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite:{target}"))?;
    // Said plainly rather than as SQLite's "unable to open database file" (which the option
    // below still guarantees should the file vanish in between).
    if !create && !options.get_filename().exists() {
        return Err(StoreError::MissingFile(options.get_filename().display().to_string()));
    }
    let options = options
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        // A local file does not drop connections; a ping before each use would cost a thread hop.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(pool)
}

pub(crate) async fn read_stream(
    pool: &SqlitePool,
    stream: &str,
    from_version: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT_EVENTS} WHERE stream_id = ?1 AND stream_version >= ?2 ORDER BY stream_version"))
        .bind(stream)
        .bind(from_version)
        .fetch_all(pool)
        .await
}

pub(crate) async fn read_page(
    pool: &SqlitePool,
    after_position: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT_EVENTS} WHERE position > ?1 ORDER BY position LIMIT ?2"))
        .bind(after_position)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// The statements of a write (see `SqliteWriter::parameter`).
macro_rules! write_sql {
    () => {
        "INSERT INTO events (position, stream_id, stream_version, event_type, schema_version, data, metadata, \
         recorded_at, event_id, hash) \
         SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, r ->> 6, r ->> 7, r ->> 8, r ->> 9 \
         FROM (SELECT value AS r FROM json_each(?1, '$[0]')); \
         INSERT INTO idempotency_keys (key, fingerprint, outcome) \
         SELECT r ->> 0, r ->> 1, r ->> 2 FROM (SELECT value AS r FROM json_each(?1, '$[1]')); \
         INSERT INTO outbox (id, event_id, position, recipient, kind, context, message_id, attempts, next_attempt_at, \
                             created_at) \
         SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, r ->> 6, r ->> 7, r ->> 8, r ->> 9 \
         FROM (SELECT value AS r FROM json_each(?1, '$[2]')); \
         UPDATE log_head SET position = ?1 ->> 3, hash = ?1 ->> 4 WHERE id = 1"
    };
}

pub(crate) struct SqliteWriter(ConnectionKeeper<Sqlite>);

impl SqliteWriter {
    pub fn new(pool: SqlitePool) -> Self {
        Self(ConnectionKeeper::new(pool))
    }

    /// What a write's statements read: one JSON parameter, `[events, keys, outbox, position, hash]`.
    /// sqlx hands every SQLite statement to a worker thread, so the rows travel as JSON and the
    /// statements go as one query (one hand-off per write, not one per row); and they all read the
    /// same parameter, because sqlx misbinds the numbered parameters of a later statement when an
    /// earlier one skips numbers.
    fn parameter(rows: Rows<'_>) -> String {
        let events: Vec<_> = rows
            .events
            .iter()
            .map(|e| {
                (
                    e.position,
                    &e.stream,
                    e.version,
                    &e.event_type,
                    e.schema_version,
                    e.data.to_string(),
                    serde_json::to_string(&e.metadata).expect("metadata serializes"),
                    format_time(&e.recorded_at),
                    e.event_id.to_string(),
                    &e.hash,
                )
            })
            .collect();
        let keys: Vec<_> = rows
            .keys
            .iter()
            .map(|(key, record)| {
                (key, &record.fingerprint, serde_json::to_string(&record.outcome).expect("outcome serializes"))
            })
            .collect();
        let outbox = OutboxRow::sqlite_rows(rows.outbox);
        serde_json::to_string(&(events, keys, outbox, rows.head.position, &rows.head.hash)).expect("rows serialize")
    }

    /// `BEGIN IMMEDIATE`, the head, the last mail id and the streams' versions in one hand-off to
    /// SQLite's thread: rows of (what, name, value).
    async fn begin(
        conn: PoolConnection<Sqlite>,
        streams: &[String],
    ) -> Result<(BatchTx<Sqlite>, HeadLock), sqlx::Error> {
        const HEAD: i64 = 0;
        const MAIL_ID: i64 = 1;
        let mut tx = BatchTx::begin(conn);
        let rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
            "BEGIN IMMEDIATE; \
             SELECT 0, hash, position FROM log_head WHERE id = 1 \
             UNION ALL \
             SELECT 1, '', (SELECT COALESCE(MAX(id), 0) FROM outbox) \
             UNION ALL \
             SELECT 2, wanted.value, (SELECT MAX(stream_version) FROM events WHERE stream_id = wanted.value) \
             FROM json_each(?1) AS wanted",
        )
        .bind(serde_json::to_string(streams).expect("strings serialize"))
        .fetch_all(tx.conn())
        .await?;
        let (mut head, mut last_mail_id) = (None, 0);
        let mut versions = HashMap::new();
        for (what, name, value) in rows {
            match (what, value) {
                (HEAD, Some(position)) => head = Some(LogHead { position, hash: name }),
                (MAIL_ID, Some(id)) => last_mail_id = id,
                (_, Some(version)) => {
                    versions.insert(name, version);
                }
                _ => {}
            }
        }
        let head = head.ok_or(sqlx::Error::RowNotFound)?;
        Ok((tx, HeadLock { head, last_mail_id, versions }))
    }
}

impl WriteBackend for SqliteWriter {
    type Tx = BatchTx<Sqlite>;

    async fn lock_head(&self, streams: &[String]) -> Result<(Self::Tx, HeadLock), sqlx::Error> {
        let (conn, kept) = self.0.take().await?;
        match Self::begin(conn, streams).await {
            // The kept connection failed before anything was written: once more on a fresh one.
            Err(_) if kept => Self::begin(self.0.fresh().await?, streams).await,
            begun => begun,
        }
    }

    async fn stream_versions(
        &self,
        tx: &mut Self::Tx,
        streams: &[String],
    ) -> Result<HashMap<String, i64>, sqlx::Error> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT wanted.value, (SELECT MAX(stream_version) FROM events WHERE stream_id = wanted.value) \
             FROM json_each(?1) AS wanted",
        )
        .bind(serde_json::to_string(streams).expect("strings serialize"))
        .fetch_all(tx.conn())
        .await?;
        Ok(rows.into_iter().filter_map(|(stream, version)| Some((stream, version?))).collect())
    }

    async fn idempotency_records(
        &self,
        tx: &mut Self::Tx,
        keys: &[String],
    ) -> Result<HashMap<String, IdempotencyRecord>, sqlx::Error> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT key, fingerprint, outcome FROM idempotency_keys WHERE key IN (SELECT value FROM json_each(?1))",
        )
        .bind(serde_json::to_string(keys).expect("strings serialize"))
        .fetch_all(tx.conn())
        .await?;
        rows.into_iter()
            .map(|(key, fingerprint, outcome)| {
                let outcome = serde_json::from_str(&outcome).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                Ok((key, IdempotencyRecord { fingerprint, outcome }))
            })
            .collect()
    }

    async fn execute(&self, tx: &mut Self::Tx, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::query(sql).execute(tx.conn()).await.map(drop)
    }

    async fn write(&self, tx: &mut Self::Tx, rows: Rows<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(write_sql!()).bind(Self::parameter(rows)).execute(tx.conn()).await.map(drop)
    }

    async fn write_and_commit(&self, mut tx: Self::Tx, rows: Rows<'_>) -> Result<(), sqlx::Error> {
        // The COMMIT travels with the writes: one hand-off to SQLite's thread for the whole batch.
        let written =
            sqlx::query(concat!(write_sql!(), "; COMMIT")).bind(Self::parameter(rows)).execute(tx.conn()).await;
        match written {
            Ok(_) => {
                tx.ended(&self.0);
                Ok(())
            }
            Err(error) => {
                self.rollback(tx).await?;
                Err(error)
            }
        }
    }

    async fn commit(&self, tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.end("COMMIT", &self.0).await
    }

    async fn rollback(&self, tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.end("ROLLBACK", &self.0).await
    }
}
