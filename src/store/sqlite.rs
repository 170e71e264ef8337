//! SQLite: the embedded default. WAL with synchronous=NORMAL survives a killed process; the
//! write lock of `BEGIN IMMEDIATE` is the lock on the log head, also across processes.

use std::{collections::HashMap, str::FromStr, time::Duration};

use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Sqlite, SqlitePool, Transaction,
};

use super::{
    backend::{EventRow, IdempotencyRecord, WriteBackend},
    event::{format_time, RecordedEvent},
    LogHead, StoreError,
};

const SELECT_EVENTS: &str = "SELECT position, stream_id, stream_version, event_type, schema_version, data, metadata, \
     recorded_at, event_id, hash FROM events";

pub(crate) async fn connect(target: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite:{target}"))?
        .create_if_missing(true)
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

pub(crate) async fn read_stream(pool: &SqlitePool, stream: &str, from_version: i64) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT_EVENTS} WHERE stream_id = ?1 AND stream_version >= ?2 ORDER BY stream_version"))
        .bind(stream)
        .bind(from_version)
        .fetch_all(pool)
        .await
}

pub(crate) async fn read_page(pool: &SqlitePool, after_position: i64, limit: i64) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT_EVENTS} WHERE position > ?1 ORDER BY position LIMIT ?2"))
        .bind(after_position)
        .bind(limit)
        .fetch_all(pool)
        .await
}

pub(crate) struct SqliteWriter(pub SqlitePool);

impl WriteBackend for SqliteWriter {
    type Tx = Transaction<'static, Sqlite>;

    async fn lock_head(&self) -> Result<(Self::Tx, LogHead), sqlx::Error> {
        let mut tx = self.0.begin_with("BEGIN IMMEDIATE").await?;
        let (position, hash) =
            sqlx::query_as("SELECT position, hash FROM log_head WHERE id = 1").fetch_one(&mut *tx).await?;
        Ok((tx, LogHead { position, hash }))
    }

    async fn stream_versions(&self, tx: &mut Self::Tx, streams: &[String]) -> Result<HashMap<String, i64>, sqlx::Error> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT wanted.value, (SELECT MAX(stream_version) FROM events WHERE stream_id = wanted.value) \
             FROM json_each(?1) AS wanted",
        )
        .bind(serde_json::to_string(streams).expect("strings serialize"))
        .fetch_all(&mut **tx)
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
        .fetch_all(&mut **tx)
        .await?;
        rows.into_iter()
            .map(|(key, fingerprint, outcome)| {
                let outcome = serde_json::from_str(&outcome).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                Ok((key, IdempotencyRecord { fingerprint, outcome }))
            })
            .collect()
    }

    async fn execute(&self, tx: &mut Self::Tx, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::query(sql).execute(&mut **tx).await.map(drop)
    }

    async fn write(
        &self,
        tx: &mut Self::Tx,
        events: &[RecordedEvent],
        keys: &[(String, IdempotencyRecord)],
        head: &LogHead,
    ) -> Result<(), sqlx::Error> {
        // sqlx hands every SQLite statement to a worker thread, so the rows travel as JSON arrays and
        // the three statements go as one query: one hand-off per batch instead of one per row.
        let events: Vec<_> = events
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
        let keys: Vec<_> = keys
            .iter()
            .map(|(key, record)| {
                (key, &record.fingerprint, serde_json::to_string(&record.outcome).expect("outcome serializes"))
            })
            .collect();
        sqlx::query(
            "INSERT INTO events (position, stream_id, stream_version, event_type, schema_version, data, metadata, \
             recorded_at, event_id, hash) \
             SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, r ->> 6, r ->> 7, r ->> 8, r ->> 9 \
             FROM (SELECT value AS r FROM json_each(?1)); \
             INSERT INTO idempotency_keys (key, fingerprint, outcome) \
             SELECT r ->> 0, r ->> 1, r ->> 2 FROM (SELECT value AS r FROM json_each(?2)); \
             UPDATE log_head SET position = ?3, hash = ?4 WHERE id = 1",
        )
        .bind(serde_json::to_string(&events).expect("rows serialize"))
        .bind(serde_json::to_string(&keys).expect("rows serialize"))
        .bind(head.position)
        .bind(&head.hash)
        .execute(&mut **tx)
        .await
        .map(drop)
    }

    async fn write_outbox(&self, tx: &mut Self::Tx, rows: &[super::outbox::OutboxRow]) -> Result<(), sqlx::Error> {
        super::outbox::insert_sqlite(tx, rows).await
    }

    async fn commit(&self, tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.commit().await
    }

    async fn rollback(&self, tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.rollback().await
    }
}
