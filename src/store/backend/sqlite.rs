//! SQLite: the embedded default. WAL with synchronous=NORMAL survives a killed process; the
//! write lock of `BEGIN IMMEDIATE` is the lock on the log head, also across processes.
//!
//! Every statement the store sends to SQLite is here. sqlx hands each one to SQLite's worker
//! thread, so a statement does as much as it can per hand-off (rows travel as JSON).

use std::{collections::HashMap, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{
    migrate::Migrator,
    pool::PoolConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Sqlite, SqlitePool,
};

use super::{
    line_heads, BatchTx, ConnectionKeeper, DeliveryDbRow, EventRow, HeadLock, IdempotencyRecord, LogBackend, MailRow,
    Rows, WriteBackend,
};
use crate::store::{error::StoreError, event::format_time, outbox::row::OutboxRow, snapshots::StoredSnapshot, LogHead};

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The columns of an event, as `EventRow` reads them.
macro_rules! event_columns {
    () => {
        "position, stream_id, stream_version, event_type, schema_version, data, metadata, recorded_at, event_id, hash"
    };
}

/// The columns of a mail, as `MailRow` reads them.
macro_rules! mail_columns {
    () => {
        "id, event_id, position, recipient, kind, context, message_id, state, attempts, next_attempt_at, \
         last_error, created_at, sent_at"
    };
}

/// The columns of a webhook delivery, as `DeliveryDbRow` reads them.
macro_rules! delivery_columns {
    () => {
        "id, webhook_id, event_id, position, url, message_id, state, attempts, next_attempt_at, last_error, \
         last_status, created_at, delivered_at"
    };
}

/// The connection pool of a SQLite file.
#[derive(Clone)]
pub(crate) struct SqliteBackend(SqlitePool);

impl SqliteBackend {
    /// Opens the file, creating it when missing only if `create`.
    pub async fn connect(target: &str, create: bool) -> Result<Self, StoreError> {
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
        Ok(SqliteBackend(pool))
    }
}

/// The statements of a write (see `SqliteWriter::parameter`).
macro_rules! write_sql {
    () => {
        "INSERT INTO events (position, stream_id, stream_version, event_type, schema_version, data, metadata, \
         recorded_at, event_id, hash) \
         SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, r ->> 6, r ->> 7, r ->> 8, r ->> 9 \
         FROM (SELECT value AS r FROM json_each(?1, '$[0]')); \
         INSERT INTO idempotency_keys (key, fingerprint, outcome, created_at) \
         SELECT r ->> 0, r ->> 1, r ->> 2, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') \
         FROM (SELECT value AS r FROM json_each(?1, '$[1]')); \
         INSERT INTO outbox (id, event_id, position, recipient, kind, context, message_id, attempts, next_attempt_at, \
                             created_at) \
         SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, r ->> 6, r ->> 7, r ->> 8, r ->> 9 \
         FROM (SELECT value AS r FROM json_each(?1, '$[2]')); \
         INSERT INTO webhook_deliveries (webhook_id, event_id, position, url, message_id, next_attempt_at, created_at) \
         SELECT r ->> 0, r ->> 1, r ->> 2, r ->> 3, r ->> 4, r ->> 5, r ->> 5 \
         FROM (SELECT value AS r FROM json_each(?1, '$[5]')); \
         UPDATE log_head SET position = ?1 ->> 3, hash = ?1 ->> 4 WHERE id = 1"
    };
}

/// The rows of the outbox as a write passes them (as JSON arrays, in the columns' order of `write_sql!`).
fn outbox_rows(rows: &[OutboxRow]) -> Vec<impl Serialize + '_> {
    rows.iter()
        .map(|r| {
            let (due, created) = (format_time(&r.next_attempt_at), format_time(&r.created_at));
            (
                r.id,
                r.event_id.to_string(),
                r.position,
                &r.recipient,
                r.kind,
                r.context.to_string(),
                &r.message_id,
                r.attempts,
                due,
                created,
            )
        })
        .collect()
}

pub(crate) struct SqliteWriter(ConnectionKeeper<Sqlite>);

impl SqliteWriter {
    fn new(pool: SqlitePool) -> Self {
        Self(ConnectionKeeper::new(pool))
    }

    /// What a write's statements read: one JSON parameter, `[events, keys, outbox, position, hash,
    /// deliveries]`.
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
        let outbox = outbox_rows(rows.outbox);
        let deliveries: Vec<_> = rows
            .deliveries
            .iter()
            .map(|d| {
                (&d.webhook, d.event_id.to_string(), d.position, &d.url, &d.message_id, format_time(&d.created_at))
            })
            .collect();
        serde_json::to_string(&(events, keys, outbox, rows.head.position, &rows.head.hash, deliveries))
            .expect("rows serialize")
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
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, IdempotencyRecord>, sqlx::Error> {
        let keys = serde_json::to_string(keys).expect("strings serialize");
        sqlx::query("DELETE FROM idempotency_keys WHERE key IN (SELECT value FROM json_each(?1)) AND created_at < ?2")
            .bind(&keys)
            .bind(format_time(&since))
            .execute(tx.conn())
            .await?;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT key, fingerprint, outcome FROM idempotency_keys WHERE key IN (SELECT value FROM json_each(?1))",
        )
        .bind(&keys)
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

impl LogBackend for SqliteBackend {
    const NAME: &'static str = "sqlite";
    type Writer = SqliteWriter;

    fn writer(&self, _origin: &str) -> SqliteWriter {
        SqliteWriter::new(self.0.clone())
    }

    fn migrator(&self) -> &'static Migrator {
        &MIGRATIONS
    }

    async fn applied_migration(&self) -> Result<Option<i64>, StoreError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                .fetch_optional(&self.0)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        Ok(sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(&self.0).await?)
    }

    async fn apply_migrations(&self) -> Result<(), StoreError> {
        Ok(MIGRATIONS.run(&self.0).await?)
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let mut tx = self.0.begin().await?;
        // A write that changes nothing, rolled back.
        sqlx::query("UPDATE log_head SET position = position WHERE id = 1").execute(&mut *tx).await?;
        Ok(tx.rollback().await?)
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let (position, hash) =
            sqlx::query_as("SELECT position, hash FROM log_head WHERE id = 1").fetch_one(&self.0).await?;
        Ok(LogHead { position, hash })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.0).await?;
        Ok(())
    }

    async fn read_stream(&self, stream: &str, from_version: i64) -> Result<Vec<EventRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream_id = ?1 AND stream_version >= ?2 ORDER BY stream_version"
        );
        Ok(sqlx::query_as(sql).bind(stream).bind(from_version).fetch_all(&self.0).await?)
    }

    async fn read_page(&self, after_position: i64, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        let sql = concat!("SELECT ", event_columns!(), " FROM events WHERE position > ?1 ORDER BY position LIMIT ?2");
        Ok(sqlx::query_as(sql).bind(after_position).bind(limit).fetch_all(&self.0).await?)
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<MailRow>, StoreError> {
        // One writer at a time: no other worker can claim the same rows in between.
        let sql = concat!(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?1 WHERE id IN \
             (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?2 ORDER BY id LIMIT ?3) \
             RETURNING ",
            mail_columns!()
        );
        Ok(sqlx::query_as(sql).bind(format_time(&until)).bind(format_time(&now)).bind(limit).fetch_all(&self.0).await?)
    }

    async fn mails_sent(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET state = 'sent', sent_at = ?1, last_error = NULL \
                   WHERE id IN (SELECT value FROM json_each(?2))";
        let ids = serde_json::to_string(ids).expect("ids serialize");
        sqlx::query(sql).bind(format_time(&at)).bind(ids).execute(&self.0).await?;
        Ok(())
    }

    async fn release_leases(&self, lease_ends: &[DateTime<Utc>], now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET next_attempt_at = ?1 \
                   WHERE state = 'pending' AND next_attempt_at IN (SELECT value FROM json_each(?2))";
        let ends: Vec<String> = lease_ends.iter().map(format_time).collect();
        let ends = serde_json::to_string(&ends).expect("times serialize");
        sqlx::query(sql).bind(format_time(&now)).bind(ends).execute(&self.0).await?;
        Ok(())
    }

    async fn mail_failed(&self, id: i64, state: &str, due: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET state = ?1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?4";
        sqlx::query(sql).bind(state).bind(format_time(&due)).bind(error).bind(id).execute(&self.0).await?;
        Ok(())
    }

    async fn outbox(&self, state: Option<&str>, after_id: i64, limit: i64) -> Result<Vec<MailRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mail_columns!(),
            " FROM outbox WHERE id > ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id LIMIT ?3"
        );
        Ok(sqlx::query_as(sql).bind(after_id).bind(state).bind(limit).fetch_all(&self.0).await?)
    }

    async fn mail_state(&self, id: i64) -> Result<Option<String>, StoreError> {
        let sql = "SELECT state FROM outbox WHERE id = ?1";
        Ok(sqlx::query_scalar(sql).bind(id).fetch_optional(&self.0).await?)
    }

    async fn revive_mail(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql =
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1 WHERE id = ?2 AND state = 'dead'";
        sqlx::query(sql).bind(format_time(&now)).bind(id).execute(&self.0).await?;
        Ok(())
    }

    async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetch_all(&self.0).await?)
    }

    async fn shared_key(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO server_keys (name, key) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.0)
            .await?;
        Ok(sqlx::query_scalar("SELECT key FROM server_keys WHERE name = ?1").bind(name).fetch_one(&self.0).await?)
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryDbRow>, StoreError> {
        // The head of each subscription's line only (see `line_heads!`). One writer at a time: no
        // other worker can claim the same rows in between.
        let sql = concat!(
            line_heads!(),
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?1 WHERE id IN \
             (SELECT d.id FROM webhook_deliveries d WHERE d.id IN (SELECT id FROM heads) \
                AND d.state = 'pending' AND d.next_attempt_at <= ?2 \
              ORDER BY d.position LIMIT ?3) \
             RETURNING ",
            delivery_columns!()
        );
        Ok(sqlx::query_as(sql).bind(format_time(&until)).bind(format_time(&now)).bind(limit).fetch_all(&self.0).await?)
    }

    async fn delivery_done(&self, id: i64, status: i32, at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ?1, last_status = ?2, \
                   last_error = NULL WHERE id = ?3";
        sqlx::query(sql).bind(format_time(&at)).bind(status).bind(id).execute(&self.0).await?;
        Ok(())
    }

    async fn delivery_failed(
        &self,
        id: i64,
        state: &str,
        due: DateTime<Utc>,
        error: &str,
        status: Option<i32>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_deliveries SET state = ?1, next_attempt_at = ?2, last_error = ?3, last_status = ?4 \
                   WHERE id = ?5";
        sqlx::query(sql).bind(state).bind(format_time(&due)).bind(error).bind(status).bind(id).execute(&self.0).await?;
        Ok(())
    }

    async fn deliveries(
        &self,
        webhook: &str,
        state: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryDbRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE webhook_id = ?1 AND id > ?2 AND (?3 IS NULL OR state = ?3) \
             ORDER BY id LIMIT ?4"
        );
        Ok(sqlx::query_as(sql).bind(webhook).bind(after_id).bind(state).bind(limit).fetch_all(&self.0).await?)
    }

    async fn recent_deliveries(&self, webhook: &str, limit: i64) -> Result<Vec<DeliveryDbRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2"
        );
        Ok(sqlx::query_as(sql).bind(webhook).bind(limit).fetch_all(&self.0).await?)
    }

    async fn delivery_state(&self, webhook: &str, id: i64) -> Result<Option<String>, StoreError> {
        let sql = "SELECT state FROM webhook_deliveries WHERE id = ?1 AND webhook_id = ?2";
        Ok(sqlx::query_scalar(sql).bind(id).bind(webhook).fetch_optional(&self.0).await?)
    }

    async fn revive_delivery(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?1 \
                   WHERE id = ?2 AND state = 'dead'";
        sqlx::query(sql).bind(format_time(&now)).bind(id).execute(&self.0).await?;
        Ok(())
    }

    async fn delivery_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state").fetch_all(&self.0).await?)
    }

    async fn put_webhook_secret(&self, webhook: &str, secret: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES (?1, ?2, ?3)";
        sqlx::query(sql).bind(webhook).bind(secret).bind(format_time(&at)).execute(&self.0).await?;
        Ok(())
    }

    async fn webhook_secret(&self, webhook: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT secret FROM webhook_secrets WHERE webhook_id = ?1";
        Ok(sqlx::query_scalar(sql).bind(webhook).fetch_optional(&self.0).await?)
    }

    async fn delete_webhook_secret(&self, webhook: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_secrets WHERE webhook_id = ?1").bind(webhook).execute(&self.0).await?;
        Ok(())
    }

    async fn kept_answer(&self, key: &str, since: DateTime<Utc>) -> Result<Option<(String, String)>, StoreError> {
        let sql = "SELECT fingerprint, answer FROM idempotent_answers WHERE key = ?1 AND created_at >= ?2";
        Ok(sqlx::query_as(sql).bind(key).bind(format_time(&since)).fetch_optional(&self.0).await?)
    }

    async fn keep_answer(
        &self,
        key: &str,
        fingerprint: &str,
        answer: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.0.begin().await?;
        for sql in [
            "DELETE FROM idempotent_answers WHERE created_at < ?1",
            "DELETE FROM idempotency_keys WHERE created_at < ?1",
        ] {
            sqlx::query(sql).bind(format_time(&since)).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO idempotent_answers (key, fingerprint, answer, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(fingerprint)
        .bind(answer)
        .bind(format_time(&at))
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    async fn save_snapshot(&self, snapshot: &StoredSnapshot, keep: i64) -> Result<(), StoreError> {
        let mut tx = self.0.begin().await?;
        sqlx::query(
            "INSERT INTO snapshots (position, chain_hash, workflow_digest, format_version, body, mac) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (position) DO NOTHING",
        )
        .bind(snapshot.position)
        .bind(&snapshot.chain_hash)
        .bind(&snapshot.workflow_digest)
        .bind(snapshot.format_version)
        .bind(&snapshot.body)
        .bind(&snapshot.mac)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM snapshots WHERE position NOT IN \
             (SELECT position FROM snapshots ORDER BY position DESC LIMIT ?1)",
        )
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn snapshot_positions(&self) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT position FROM snapshots ORDER BY position DESC").fetch_all(&self.0).await?)
    }

    async fn snapshot(&self, position: i64) -> Result<Option<StoredSnapshot>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT position, chain_hash, workflow_digest, format_version, body, mac FROM snapshots \
             WHERE position = ?1",
        )
        .bind(position)
        .fetch_optional(&self.0)
        .await?)
    }
}
