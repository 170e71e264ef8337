//! The seam between the store's logic and the two SQL dialects: the ports (`WriteBackend` for the
//! writer's batch, `LogBackend` for everything else), and `Database`, the one place that names
//! both adapters. Each adapter holds all of its database's SQL (`sqlite.rs`, `postgres.rs`); the
//! code around them holds none but the one fragment both dialects read alike (`line_heads!`).

mod batch;
mod postgres;
mod primary;
mod sqlite;

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use tokio::sync::watch;

use batch::{BatchTx, ConnectionKeeper};

use super::{
    error::StoreError, event::RecordedEvent, outbox::row::OutboxRow, snapshots::StoredSnapshot, url::DatabaseUrl,
    webhooks::row::DeliveryRow, AppendOutcome, LogHead, Migrations,
};

/// What an idempotency key remembers: a fingerprint of the append and the outcome it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub fingerprint: String,
    pub outcome: AppendOutcome,
}

/// What one write puts into the log: events (already positioned and hashed), idempotency keys,
/// the head they end at, and the mail and webhook deliveries they cause.
pub(crate) struct Rows<'a> {
    pub events: &'a [RecordedEvent],
    pub keys: &'a [(String, IdempotencyRecord)],
    pub head: &'a LogHead,
    pub outbox: &'a [OutboxRow],
    pub deliveries: &'a [DeliveryRow],
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
    /// The records of those keys written at `since` or later; older ones are deleted (so that
    /// their keys may be written again).
    fn idempotency_records(
        &self,
        tx: &mut Self::Tx,
        keys: &[String],
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<HashMap<String, IdempotencyRecord>, sqlx::Error>> + Send;
    /// Runs a statement without parameters (savepoints).
    fn execute(&self, tx: &mut Self::Tx, sql: &'static str) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Writes the rows and moves the head, in one round trip.
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
    /// Tells the other processes on this database that the log reached `position` (committed).
    /// SQLite has no cross-process signal: their followers poll.
    fn announce(&self, position: i64) {
        let _ = position;
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

/// A row of the `outbox` table as both backends select it (JSON and ids as text, the state as its name).
#[derive(sqlx::FromRow)]
pub(crate) struct MailRow {
    pub id: i64,
    pub event_id: String,
    pub position: i64,
    pub recipient: String,
    pub kind: String,
    pub context: String,
    pub message_id: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The head of each subscription's line of pending deliveries (its lowest position), as the CTE
/// `heads(id)` that a claim starts with: the subscriptions with pending rows are found by a skip
/// scan (`lines`: each the next one after the last, one lookup in the index on `(state,
/// webhook_id, position)`), so a claim costs a lookup per subscription however long the lines
/// are. Both dialects read it alike.
macro_rules! line_heads {
    () => {
        "WITH RECURSIVE lines(webhook_id) AS ( \
             SELECT MIN(webhook_id) FROM webhook_deliveries WHERE state = 'pending' \
           UNION ALL \
             SELECT (SELECT MIN(n.webhook_id) FROM webhook_deliveries n \
                     WHERE n.state = 'pending' AND n.webhook_id > l.webhook_id) \
             FROM lines l WHERE l.webhook_id IS NOT NULL \
         ), heads(id) AS ( \
             SELECT (SELECT h.id FROM webhook_deliveries h WHERE h.state = 'pending' AND h.webhook_id = l.webhook_id \
                     ORDER BY h.position LIMIT 1) \
             FROM lines l WHERE l.webhook_id IS NOT NULL \
         ) "
    };
}
pub(crate) use line_heads;

/// A row of the `webhook_deliveries` table as both backends select it (ids as text, the state as its name).
#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryDbRow {
    pub id: i64,
    pub webhook_id: String,
    pub event_id: String,
    pub position: i64,
    pub url: String,
    pub message_id: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub last_status: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Everything but the writer's batch, implemented once per backend: the schema, the reads of the
/// log, the outbox's claims and marks, and the news of other processes' commits. Every method is
/// its database's statements and nothing else; what the store makes of them is written once, in
/// the code that calls them.
pub(crate) trait LogBackend: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    const NAME: &'static str;
    /// The writer's statements for this database.
    type Writer: WriteBackend;

    /// The writer's statements; `origin` names the writer in its commit notifications.
    fn writer(&self, origin: &str) -> Self::Writer;

    /// The migrations this binary knows for this database.
    fn migrator(&self) -> &'static Migrator;
    /// The highest migration applied (None for a database without any).
    fn applied_migration(&self) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
    fn apply_migrations(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes the write lock and lets go of it, changing nothing.
    fn check_writable(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Raises `committed` whenever another process commits; nothing where the database cannot
    /// tell (see `Database::start_commit_listener`). Also starts the watch over several hosts.
    fn start_commit_listener(
        &self,
        origin: &str,
        committed: Arc<watch::Sender<i64>>,
        alive: watch::Receiver<()>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (origin, committed, alive);
        async {}
    }

    fn head(&self) -> impl Future<Output = Result<LogHead, StoreError>> + Send;
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn read_stream(
        &self,
        stream: &str,
        from_version: i64,
    ) -> impl Future<Output = Result<Vec<EventRow>, StoreError>> + Send;
    fn read_page(
        &self,
        after_position: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<EventRow>, StoreError>> + Send;

    /// Leases up to `limit` pending mails due at `now` until `until`, counting the attempt.
    fn claim_mail(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<MailRow>, StoreError>> + Send;
    fn mails_sent(&self, ids: &[i64], at: DateTime<Utc>) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Makes the pending mail under leases ending at `lease_ends` due at `now`.
    fn release_leases(
        &self,
        lease_ends: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a failed attempt: the mail's new state, when it is due again, and why it failed.
    fn mail_failed(
        &self,
        id: i64,
        state: &str,
        due: DateTime<Utc>,
        error: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Mails after `after_id` (in `state` only, when given), in id order.
    fn outbox(
        &self,
        state: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<MailRow>, StoreError>> + Send;
    fn mail_state(&self, id: i64) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Puts a dead mail back in the queue, due at `now`, its attempts forgotten (a mail in any other
    /// state is left alone).
    fn revive_mail(&self, id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// How many mails are in each state.
    fn outbox_counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
    /// The shared key called `name`: `candidate` stored if there is none yet (the first process
    /// to ask wins, however many ask at once), then the one stored.
    fn shared_key(&self, name: &str, candidate: &[u8]) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    // ----- webhooks -----
    /// Leases until `until` the due deliveries at the head of their subscription's line (its
    /// pending delivery of the lowest position), up to `limit`, counting the attempt.
    fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DeliveryDbRow>, StoreError>> + Send;
    fn delivery_done(
        &self,
        id: i64,
        status: i32,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a failed attempt: the new state, when it is due again, why, and the answer's status.
    fn delivery_failed(
        &self,
        id: i64,
        state: &str,
        due: DateTime<Utc>,
        error: &str,
        status: Option<i32>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A subscription's deliveries after `after_id` (in `state` only, when given), in id order.
    fn deliveries(
        &self,
        webhook: &str,
        state: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DeliveryDbRow>, StoreError>> + Send;
    /// A subscription's newest `limit` deliveries, newest first.
    fn recent_deliveries(
        &self,
        webhook: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DeliveryDbRow>, StoreError>> + Send;
    fn delivery_state(&self, webhook: &str, id: i64)
        -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Puts a dead delivery back in line, due at `now`, its attempts forgotten.
    fn revive_delivery(&self, id: i64, now: DateTime<Utc>) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delivery_counts(&self) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
    fn put_webhook_secret(
        &self,
        webhook: &str,
        secret: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn webhook_secret(&self, webhook: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn delete_webhook_secret(&self, webhook: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    // ----- answers kept for idempotency keys -----
    /// The answer kept for `key` at `since` or later: its fingerprint and answer (JSON text).
    fn kept_answer(
        &self,
        key: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<(String, String)>, StoreError>> + Send;
    /// Deletes the keys and answers written before `since`, then keeps `answer` for `key` at `at`
    /// unless one is kept for it already (the first answer stays).
    fn keep_answer(
        &self,
        key: &str,
        fingerprint: &str,
        answer: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    // ----- snapshots -----
    /// Stores a snapshot unless one at its position exists, then drops all but the newest `keep`.
    fn save_snapshot(
        &self,
        snapshot: &StoredSnapshot,
        keep: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The positions of the stored snapshots, newest first.
    fn snapshot_positions(&self) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;
    fn snapshot(&self, position: i64) -> impl Future<Output = Result<Option<StoredSnapshot>, StoreError>> + Send;
}

/// Refuses a schema newer than this binary; applies (or requires) the known migrations.
async fn prepare_schema<B: LogBackend>(backend: &B, migrations: Migrations) -> Result<(), StoreError> {
    let known = backend.migrator().iter().map(|m| m.version).max().unwrap_or(0);
    let found = backend.applied_migration().await?.unwrap_or(0);
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    match (migrations, found < known) {
        (Migrations::RequireCurrent, true) => Err(StoreError::SchemaTooOld { found, known }),
        (Migrations::Apply, true) => backend.apply_migrations().await,
        // A store opened for writing must be able to take the write lock, or it would fail only at
        // the first append (a read-only SQLite file, a PostgreSQL standby).
        (Migrations::Apply, false) => backend.check_writable().await,
        (Migrations::RequireCurrent, false) => Ok(()),
    }
}

/// The backend that the URL named. The one place that names both adapters: `connect` and
/// `dispatch!`; everything else is written once, against `LogBackend` or `WriteBackend`.
#[derive(Clone)]
pub(crate) enum Database {
    Sqlite(sqlite::SqliteBackend),
    Postgres(postgres::PostgresBackend),
}

/// Runs `$body` with `$backend` bound to the adapter of `$db` (a `&Database`), whichever it is: the
/// one `match` on the backend (each arm is the same code, compiled for its adapter).
macro_rules! dispatch {
    ($db:expr, $backend:ident => $body:expr) => {
        match $db {
            $crate::store::backend::Database::Sqlite($backend) => $body,
            $crate::store::backend::Database::Postgres($backend) => $body,
        }
    };
}
pub(crate) use dispatch;

/// How long one call of the database may take before it counts as unreachable (503 and a retry):
/// a host whose network is cut answers nothing, and its sockets would wait many minutes for TCP
/// to give up. More than the pool's acquire timeout (5 s), which says the same sooner.
pub(super) const CALL_DEADLINE: Duration = Duration::from_secs(8);
/// A snapshot is one large row: written and read in the background, given longer.
const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(120);

async fn within<T>(deadline: Duration, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(deadline, call).await.unwrap_or_else(|_| Err(StoreError::no_answer(deadline).into()))
}

/// `dispatch!` of one call of the database, bounded by `CALL_DEADLINE`.
macro_rules! bounded {
    ($db:expr, $backend:ident => $call:expr) => {
        within(CALL_DEADLINE, async { dispatch!($db, $backend => $call.await) }).await
    };
}

impl Database {
    /// Connects; a missing SQLite file is created only when the schema may be changed (commands
    /// that only read must not leave an empty database behind).
    pub async fn connect(url: &DatabaseUrl, migrations: Migrations) -> Result<Self, StoreError> {
        match url {
            DatabaseUrl::Sqlite(target) => {
                let create = migrations == Migrations::Apply;
                sqlite::SqliteBackend::connect(target, create).await.map(Database::Sqlite)
            }
            DatabaseUrl::Postgres(target) => postgres::PostgresBackend::connect(target).await.map(Database::Postgres),
        }
    }

    pub fn name(&self) -> &'static str {
        fn name<B: LogBackend>(_: &B) -> &'static str {
            B::NAME
        }
        dispatch!(self, backend => name(backend))
    }

    /// Refuses a schema newer than this binary; applies (or requires) the known migrations.
    pub async fn prepare_schema(&self, migrations: Migrations) -> Result<(), StoreError> {
        dispatch!(self, backend => prepare_schema(backend, migrations).await)
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
        dispatch!(self, backend => backend.start_commit_listener(origin, committed, alive).await)
    }

    pub async fn head(&self) -> Result<LogHead, StoreError> {
        bounded!(self, backend => backend.head())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        bounded!(self, backend => backend.ping())
    }

    pub async fn read_stream(&self, stream: &str, from_version: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        decode_rows(bounded!(self, backend => backend.read_stream(stream, from_version))?)
    }

    pub async fn read_page(&self, after_position: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        decode_rows(bounded!(self, backend => backend.read_page(after_position, limit))?)
    }

    pub async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<MailRow>, StoreError> {
        bounded!(self, backend => backend.claim_mail(now, until, limit))
    }

    pub async fn mails_sent(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        bounded!(self, backend => backend.mails_sent(ids, at))
    }

    pub async fn release_leases(&self, lease_ends: &[DateTime<Utc>], now: DateTime<Utc>) -> Result<(), StoreError> {
        bounded!(self, backend => backend.release_leases(lease_ends, now))
    }

    pub async fn mail_failed(&self, id: i64, state: &str, due: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        bounded!(self, backend => backend.mail_failed(id, state, due, error))
    }

    pub async fn outbox(&self, state: Option<&str>, after_id: i64, limit: i64) -> Result<Vec<MailRow>, StoreError> {
        bounded!(self, backend => backend.outbox(state, after_id, limit))
    }

    pub async fn mail_state(&self, id: i64) -> Result<Option<String>, StoreError> {
        bounded!(self, backend => backend.mail_state(id))
    }

    pub async fn revive_mail(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        bounded!(self, backend => backend.revive_mail(id, now))
    }

    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        bounded!(self, backend => backend.outbox_counts())
    }

    pub async fn shared_key(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        bounded!(self, backend => backend.shared_key(name, candidate))
    }

    // ----- webhooks -----
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryDbRow>, StoreError> {
        bounded!(self, backend => backend.claim_deliveries(now, until, limit))
    }

    pub async fn delivery_done(&self, id: i64, status: i32, at: DateTime<Utc>) -> Result<(), StoreError> {
        bounded!(self, backend => backend.delivery_done(id, status, at))
    }

    pub async fn delivery_failed(
        &self,
        id: i64,
        state: &str,
        due: DateTime<Utc>,
        error: &str,
        status: Option<i32>,
    ) -> Result<(), StoreError> {
        bounded!(self, backend => backend.delivery_failed(id, state, due, error, status))
    }

    pub async fn deliveries(
        &self,
        webhook: &str,
        state: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryDbRow>, StoreError> {
        bounded!(self, backend => backend.deliveries(webhook, state, after_id, limit))
    }

    pub async fn recent_deliveries(&self, webhook: &str, limit: i64) -> Result<Vec<DeliveryDbRow>, StoreError> {
        bounded!(self, backend => backend.recent_deliveries(webhook, limit))
    }

    pub async fn delivery_state(&self, webhook: &str, id: i64) -> Result<Option<String>, StoreError> {
        bounded!(self, backend => backend.delivery_state(webhook, id))
    }

    pub async fn revive_delivery(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        bounded!(self, backend => backend.revive_delivery(id, now))
    }

    pub async fn delivery_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        bounded!(self, backend => backend.delivery_counts())
    }

    pub async fn put_webhook_secret(&self, webhook: &str, secret: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        bounded!(self, backend => backend.put_webhook_secret(webhook, secret, at))
    }

    pub async fn webhook_secret(&self, webhook: &str) -> Result<Option<String>, StoreError> {
        bounded!(self, backend => backend.webhook_secret(webhook))
    }

    pub async fn delete_webhook_secret(&self, webhook: &str) -> Result<(), StoreError> {
        bounded!(self, backend => backend.delete_webhook_secret(webhook))
    }

    // ----- answers kept for idempotency keys -----
    pub async fn kept_answer(&self, key: &str, since: DateTime<Utc>) -> Result<Option<(String, String)>, StoreError> {
        bounded!(self, backend => backend.kept_answer(key, since))
    }

    pub async fn keep_answer(
        &self,
        key: &str,
        fingerprint: &str,
        answer: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        bounded!(self, backend => backend.keep_answer(key, fingerprint, answer, at, since))
    }

    // ----- snapshots -----
    pub async fn save_snapshot(&self, snapshot: &StoredSnapshot, keep: i64) -> Result<(), StoreError> {
        within(SNAPSHOT_DEADLINE, async { dispatch!(self, backend => backend.save_snapshot(snapshot, keep).await) })
            .await
    }

    pub async fn snapshot_positions(&self) -> Result<Vec<i64>, StoreError> {
        bounded!(self, backend => backend.snapshot_positions())
    }

    pub async fn snapshot(&self, position: i64) -> Result<Option<StoredSnapshot>, StoreError> {
        within(SNAPSHOT_DEADLINE, async { dispatch!(self, backend => backend.snapshot(position).await) }).await
    }
}
