//! PostgreSQL: production, several server processes on one database. The row lock on `log_head`
//! serializes appends across processes; a NOTIFY after commits (`announce_commits`) wakes the other
//! processes' followers.
//!
//! Every statement the store sends to PostgreSQL is here.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{
    migrate::Migrator,
    pool::PoolConnection,
    postgres::{PgListener, PgPoolOptions},
    Connection, Executor, PgConnection, PgPool, Postgres, Row,
};
use tokio::sync::watch;

use super::{
    line_heads, primary::Hosts, BatchTx, ConnectionKeeper, DeliveryDbRow, EventRow, HeadLock, IdempotencyRecord,
    LogBackend, MailRow, Rows, WriteBackend,
};
use crate::store::{
    error::StoreError, event::RecordedEvent, outbox::row::OutboxRow, snapshots::StoredSnapshot, AppendOutcome, LogHead,
};

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

const COMMIT_CHANNEL: &str = "roleledger_events";

/// The columns of an event, as `EventRow` reads them.
macro_rules! event_columns {
    () => {
        "position, stream_id, stream_version, event_type, schema_version, data::text AS data, \
         metadata::text AS metadata, recorded_at, event_id::text AS event_id, hash"
    };
}

/// The columns of a mail, as `MailRow` reads them.
macro_rules! mail_columns {
    () => {
        "id, event_id::text AS event_id, position, recipient, kind, context::text AS context, message_id, state, \
         attempts, next_attempt_at, last_error, created_at, sent_at"
    };
}

/// The columns of a webhook delivery, as `DeliveryDbRow` reads them.
macro_rules! delivery_columns {
    () => {
        "id, webhook_id, event_id::text AS event_id, position, url, message_id, state, attempts, next_attempt_at, \
         last_error, last_status, created_at, delivered_at"
    };
}

/// How long the first connection of a start may take.
const START_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection pool of a PostgreSQL database, and the hosts it may move between.
#[derive(Clone)]
pub(crate) struct PostgresBackend {
    pool: PgPool,
    /// Several hosts (see `primary`): the pool follows the one that accepts writes.
    hosts: Option<Arc<Hosts>>,
}

impl PostgresBackend {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut candidates = Hosts::parse(url)?;
        let (options, hosts) = if candidates.len() > 1 {
            let hosts = Hosts::find(candidates).await?;
            (hosts.current_options(), Some(hosts))
        } else {
            // One direct connection first: its error names the cause ("connection refused", "database
            // does not exist"), where the pool would only report a timeout.
            // Bounded: a host whose network is cut would hold the start for minutes.
            let options = candidates.remove(0);
            let first = tokio::time::timeout(START_CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await;
            first.map_err(|_| StoreError::no_answer(START_CONNECT_TIMEOUT))??.close().await?;
            (options, None)
        };
        let mut pool = PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5));
        if let Some(hosts) = hosts.clone() {
            // Connections made before the pool moved to another host are not handed out again.
            pool = pool.before_acquire(move |_, meta| {
                let current = hosts.is_current(meta.age);
                Box::pin(async move { Ok(current) })
            });
        }
        let pool = pool.connect_with(options).await?;
        Ok(PostgresBackend { pool, hosts })
    }
}

impl PostgresBackend {
    /// A transaction whose commit does not wait for its WAL to reach the disk (`synchronous_commit`
    /// off for it alone): for the webhook worker's claims and marks, which a crash may lose at no
    /// cost but a repeat (the row is claimed and sent again, with the same webhook-id). Each of
    /// them would otherwise wait out a flush, and a subscription's deliveries go one at a time.
    async fn without_waiting_for_the_disk(&self) -> Result<sqlx::Transaction<'_, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        Ok(tx)
    }
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let attempt = async {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(COMMIT_CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    attempt
        .await
        .inspect_err(|error| tracing::warn!(%error, "cannot listen for commits; followers poll meanwhile"))
        .ok()
}

/// Returns when the pool moves to another host; never with one host.
async fn next_move(moves: &mut Option<watch::Receiver<u64>>) {
    let moved = match moves {
        Some(moves) => moves.changed().await.is_ok(),
        None => false,
    };
    if !moved {
        std::future::pending::<()>().await;
    }
}

async fn relay_commits(
    pool: PgPool,
    origin: String,
    mut listener: Option<PgListener>,
    mut moves: Option<watch::Receiver<u64>>,
    committed: Arc<watch::Sender<i64>>,
    mut alive: watch::Receiver<()>,
) {
    loop {
        let Some(active) = listener.as_mut() else {
            tokio::select! {
                _ = alive.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            listener = listen(&pool).await;
            continue;
        };
        tokio::select! {
            _ = alive.changed() => return, // the last handle is gone
            // A host cut off from the network never ends the old listener's connection.
            () = next_move(&mut moves) => {
                tracing::warn!("the pool moved to another host; listening for commits there");
                listener = listen(&pool).await;
            }
            notification = active.recv() => match notification {
                Ok(notification) => {
                    // "POSITION ORIGIN"
                    let mut payload = notification.payload().split(' ');
                    let position = payload.next().and_then(|position| position.parse::<i64>().ok());
                    if let (Some(position), false) = (position, payload.next() == Some(origin.as_str())) {
                        crate::store::announce_commit(&committed, position);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "lost the commit listener; reconnecting");
                    listener = None;
                }
            },
        }
    }
}

/// The head's move and the events, the part that every write has: the head moves to `$head`
/// (its position and hash parameters) where `$moved_if`, and the events go in from `$1`…`$10`, the
/// columns of `events`, where `$rows_if`. The rows travel as arrays (one round trip however many
/// there are), and every data-modifying CTE runs.
macro_rules! move_head_and_write_events {
    ($head:literal, $moved_if:literal, $rows_if:expr) => {
        concat!(
            "WITH moved AS ( \
               UPDATE log_head SET ", $head, " WHERE id = 1", $moved_if, " RETURNING position \
             ), written AS ( \
               INSERT INTO events (position, stream_id, stream_version, event_type, schema_version, data, \
                                   metadata, recorded_at, event_id, hash) \
               SELECT p, s, v, t, sv, d::jsonb, m::jsonb, r, e, h \
               FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], \
                           $7::text[], $8::timestamptz[], $9::uuid[], $10::text[]) AS u(p, s, v, t, sv, d, m, r, e, h)",
            $rows_if, " )"
        )
    };
}

/// The statement of a write with everything a batch may carry: the events, then idempotency keys
/// (`$11`…`$13`), the head (`$14`, `$15`), mail (`$16`…`$25`) and webhook deliveries (`$26`…`$31`).
/// It returns the new head's position when the head moved.
macro_rules! write_statement {
    ($moved_if:literal, $rows_if:expr) => {
        concat!(
            move_head_and_write_events!("position = $14, hash = $15", $moved_if, $rows_if),
            ", remembered AS ( \
               INSERT INTO idempotency_keys (key, fingerprint, outcome) \
               SELECT k, f, o::jsonb FROM UNNEST($11::text[], $12::text[], $13::text[]) AS u(k, f, o)",
            $rows_if,
            " \
             ), mailed AS ( \
               INSERT INTO outbox (id, event_id, position, recipient, kind, context, message_id, attempts, \
                                   next_attempt_at, created_at) \
               SELECT i, e, p, r, k, c::jsonb, m, a, n, t \
               FROM UNNEST($16::uuid[], $17::bigint[], $18::text[], $19::text[], $20::text[], $21::text[], \
                           $22::timestamptz[], $23::bigint[], $24::int[], $25::timestamptz[]) \
                    AS u(e, p, r, k, c, m, t, i, a, n)",
            $rows_if,
            " \
             ), hooked AS ( \
               INSERT INTO webhook_deliveries (webhook_id, event_id, position, url, message_id, next_attempt_at, \
                                               created_at) \
               SELECT w, e, p, l, m, t, t \
               FROM UNNEST($26::text[], $27::uuid[], $28::bigint[], $29::text[], $30::text[], $31::timestamptz[]) \
                    AS u(w, e, p, l, m, t)",
            $rows_if,
            " \
             ) \
             SELECT position FROM moved"
        )
    };
}

/// Without the lock, the rows go in only if the head moved (READ COMMITTED re-checks the head's
/// condition against a concurrent commit).
macro_rules! if_moved {
    () => {
        " WHERE EXISTS (SELECT 1 FROM moved)"
    };
}

/// Under the lock on the head.
const WRITE: &str = write_statement!("", "");
/// Without the lock: the head moves only from where the writer left it ($32, $33).
const WRITE_IF_HEAD_IS: &str = write_statement!(" AND position = $32 AND hash = $33", if_moved!());
/// Without the lock, a write of events only (no idempotency keys, mail or deliveries: a lone raw
/// append, a command that mails nobody): the head (`$11`, `$12`) moves from where the writer left
/// it (`$13`, `$14`), without the three inserts that would insert nothing.
const WRITE_EVENTS_IF_HEAD_IS: &str = concat!(
    move_head_and_write_events!("position = $11, hash = $12", " AND position = $13 AND hash = $14", if_moved!()),
    " SELECT position FROM moved"
);

/// Binds the events of a write to `$1`…`$10`, the columns of `events`.
fn bind_events<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    events: &[RecordedEvent],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let column = |f: fn(&RecordedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
    query
        .bind(events.iter().map(|e| e.position).collect::<Vec<_>>())
        .bind(column(|e| e.stream.clone()))
        .bind(events.iter().map(|e| e.version).collect::<Vec<_>>())
        .bind(column(|e| e.event_type.clone()))
        .bind(events.iter().map(|e| e.schema_version).collect::<Vec<_>>())
        .bind(column(|e| e.data.to_string()))
        .bind(column(|e| serde_json::to_string(&e.metadata).expect("metadata serializes")))
        .bind(events.iter().map(|e| e.recorded_at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(column(|e| e.hash.clone()))
}

/// Binds the rows of a write to `$1`…`$31` of `write_statement!`.
fn bind_rows<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    rows: &Rows<'_>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let outbox = OutboxColumns::of(rows.outbox);
    bind_events(query, rows.events)
        .bind(rows.keys.iter().map(|(key, _)| key.clone()).collect::<Vec<_>>())
        .bind(rows.keys.iter().map(|(_, record)| record.fingerprint.clone()).collect::<Vec<_>>())
        .bind(
            rows.keys
                .iter()
                .map(|(_, record)| serde_json::to_string(&record.outcome).expect("outcome serializes"))
                .collect::<Vec<_>>(),
        )
        .bind(rows.head.position)
        .bind(rows.head.hash.clone())
        .bind(outbox.event_ids)
        .bind(outbox.positions)
        .bind(outbox.recipients)
        .bind(outbox.kinds)
        .bind(outbox.contexts)
        .bind(outbox.message_ids)
        .bind(outbox.created)
        .bind(outbox.ids)
        .bind(outbox.attempts)
        .bind(outbox.due)
        .bind(rows.deliveries.iter().map(|d| d.webhook.clone()).collect::<Vec<_>>())
        .bind(rows.deliveries.iter().map(|d| d.event_id).collect::<Vec<_>>())
        .bind(rows.deliveries.iter().map(|d| d.position).collect::<Vec<_>>())
        .bind(rows.deliveries.iter().map(|d| d.url.clone()).collect::<Vec<_>>())
        .bind(rows.deliveries.iter().map(|d| d.message_id.clone()).collect::<Vec<_>>())
        .bind(rows.deliveries.iter().map(|d| d.created_at).collect::<Vec<_>>())
}

/// The rows of the outbox as a write passes them: one array per column.
struct OutboxColumns {
    ids: Vec<i64>,
    attempts: Vec<i32>,
    due: Vec<DateTime<Utc>>,
    event_ids: Vec<uuid::Uuid>,
    positions: Vec<i64>,
    recipients: Vec<String>,
    kinds: Vec<String>,
    contexts: Vec<String>,
    message_ids: Vec<String>,
    created: Vec<DateTime<Utc>>,
}

impl OutboxColumns {
    fn of(rows: &[OutboxRow]) -> Self {
        let column = |f: fn(&OutboxRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
        OutboxColumns {
            ids: rows.iter().map(|r| r.id).collect(),
            attempts: rows.iter().map(|r| r.attempts).collect(),
            due: rows.iter().map(|r| r.next_attempt_at).collect(),
            event_ids: rows.iter().map(|r| r.event_id).collect(),
            positions: rows.iter().map(|r| r.position).collect(),
            recipients: column(|r| r.recipient.clone()),
            kinds: column(|r| r.kind.to_string()),
            contexts: column(|r| r.context.to_string()),
            message_ids: column(|r| r.message_id.clone()),
            created: rows.iter().map(|r| r.created_at).collect(),
        }
    }
}

pub(crate) struct PostgresWriter {
    keeper: ConnectionKeeper<Postgres>,
    /// The last committed position, for `announce_commits` (which ends with the writer).
    announced: watch::Sender<i64>,
}

impl PostgresWriter {
    fn new(pool: PgPool, origin: &str) -> Self {
        let (announced, commits) = watch::channel(0);
        tokio::spawn(announce_commits(pool.clone(), origin.to_string(), commits));
        Self { keeper: ConnectionKeeper::new(pool), announced }
    }

    /// `BEGIN`, the lock on the head and the last mail id (only writers holding the lock add mail)
    /// in one round trip: three statements in one simple query.
    async fn begin(conn: PoolConnection<Postgres>) -> Result<(BatchTx<Postgres>, LogHead, i64), sqlx::Error> {
        let mut tx = BatchTx::begin(conn);
        // FOR UPDATE waits for the previous holder's commit and then reads its head (READ COMMITTED
        // re-reads the locked row), and every later statement in this transaction sees that commit.
        // The mail id is a later statement for that reason: within the locking one, it would be
        // read from the snapshot taken before the wait, without the previous holder's mail.
        let rows = tx
            .conn()
            .fetch_all(
                "BEGIN; SELECT position, hash FROM log_head WHERE id = 1 FOR UPDATE; SELECT COALESCE(MAX(id), 0) FROM outbox",
            )
            .await?;
        let (Some(head), Some(mail)) = (rows.first(), rows.get(1)) else { return Err(sqlx::Error::RowNotFound) };
        let head_row = LogHead { position: head.try_get(0)?, hash: head.try_get(1)? };
        Ok((tx, head_row, mail.try_get(0)?))
    }
}

impl WriteBackend for PostgresWriter {
    type Tx = BatchTx<Postgres>;

    async fn lock_head(&self, streams: &[String]) -> Result<(Self::Tx, HeadLock), sqlx::Error> {
        let (conn, kept) = self.keeper.take().await?;
        let (mut tx, head, last_mail_id) = match Self::begin(conn).await {
            // The kept connection failed before anything was written (the server restarted or
            // ended it, which it reports as a FATAL error): once more on a fresh one.
            Err(_) if kept => Self::begin(self.keeper.fresh().await?).await?,
            begun => begun?,
        };
        let versions = if streams.is_empty() { HashMap::new() } else { self.stream_versions(&mut tx, streams).await? };
        Ok((tx, HeadLock { head, last_mail_id, versions }))
    }

    async fn stream_versions(
        &self,
        tx: &mut Self::Tx,
        streams: &[String],
    ) -> Result<HashMap<String, i64>, sqlx::Error> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT wanted, (SELECT MAX(stream_version) FROM events WHERE stream_id = wanted) \
             FROM UNNEST($1::text[]) AS wanted",
        )
        .bind(streams)
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
        // The CTE's delete and the select see the same snapshot: the select leaves the old rows out.
        let rows: Vec<(String, String, sqlx::types::Json<AppendOutcome>)> = sqlx::query_as(
            "WITH expired AS (DELETE FROM idempotency_keys WHERE key = ANY($1) AND created_at < $2) \
             SELECT key, fingerprint, outcome FROM idempotency_keys WHERE key = ANY($1) AND created_at >= $2",
        )
        .bind(keys)
        .bind(since)
        .fetch_all(tx.conn())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, fingerprint, outcome)| (key, IdempotencyRecord { fingerprint, outcome: outcome.0 }))
            .collect())
    }

    async fn execute(&self, tx: &mut Self::Tx, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::query(sql).execute(tx.conn()).await.map(drop)
    }

    async fn write(&self, tx: &mut Self::Tx, rows: Rows<'_>) -> Result<(), sqlx::Error> {
        bind_rows(sqlx::query(WRITE), &rows).execute(tx.conn()).await.map(drop)
    }

    const WRITES_UNLOCKED: bool = true;

    async fn write_if_head_is(&self, expected: &LogHead, rows: Rows<'_>) -> Result<bool, sqlx::Error> {
        // Outside a transaction the statement is one: it commits on its own, all of it or nothing.
        let (conn, _) = self.keeper.take().await?;
        let mut session = BatchTx::begin(conn);
        let events_only = rows.keys.is_empty() && rows.outbox.is_empty() && rows.deliveries.is_empty();
        let query = if events_only {
            bind_events(sqlx::query(WRITE_EVENTS_IF_HEAD_IS), rows.events)
                .bind(rows.head.position)
                .bind(rows.head.hash.clone())
        } else {
            bind_rows(sqlx::query(WRITE_IF_HEAD_IS), &rows)
        };
        let moved = query.bind(expected.position).bind(&expected.hash).fetch_optional(session.conn()).await?;
        session.ended(&self.keeper);
        Ok(moved.is_some())
    }

    async fn commit(&self, tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.end("COMMIT", &self.keeper).await
    }

    async fn rollback(&self, tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.end("ROLLBACK", &self.keeper).await
    }

    fn announce(&self, position: i64) {
        self.announced.send_replace(position);
    }
}

/// How often, at most, a writer tells the other processes of its commits. A NOTIFY in every
/// commit's own transaction cost a lone appender 12-20% of its rate (the notification queue's
/// lock at commit, and the listeners woken once per commit); announced apart, a burst of commits
/// costs one notification per interval, and the other processes hear of them at most this late.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(20);

/// Sends `POSITION ORIGIN` on the commit channel for the newest of the writer's commits, at once
/// after a quiet interval and then at most every `ANNOUNCE_EVERY`, until the writer is dropped. The
/// position is committed before it is announced, so listeners never hear of one they cannot
/// read; `origin` lets the writer's own process ignore it. The notification's own commit does not
/// wait for the disk: a lost one costs the listeners only their poll. A failed one (the database
/// away, a standby after a failover) is left to the next commit and to the listeners' poll.
async fn announce_commits(pool: PgPool, origin: String, mut commits: watch::Receiver<i64>) {
    while commits.changed().await.is_ok() {
        let position = *commits.borrow_and_update();
        let notify = sqlx::query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)")
            .bind(COMMIT_CHANNEL)
            .bind(format!("{position} {origin}"))
            .execute(&pool);
        match tokio::time::timeout(super::CALL_DEADLINE, notify).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::debug!(%error, position, "a commit was not announced"),
            Err(_) => tracing::debug!(position, "a commit's announcement timed out"),
        }
        tokio::time::sleep(ANNOUNCE_EVERY).await;
    }
}

impl LogBackend for PostgresBackend {
    const NAME: &'static str = "postgres";
    type Writer = PostgresWriter;

    fn writer(&self, origin: &str) -> PostgresWriter {
        PostgresWriter::new(self.pool.clone(), origin)
    }

    fn migrator(&self) -> &'static Migrator {
        &MIGRATIONS
    }

    async fn applied_migration(&self) -> Result<Option<i64>, StoreError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text").fetch_one(&self.pool).await?;
        if exists.is_none() {
            return Ok(None);
        }
        Ok(sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await?)
    }

    async fn apply_migrations(&self) -> Result<(), StoreError> {
        Ok(MIGRATIONS.run(&self.pool).await?)
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // A write that changes nothing, rolled back.
        sqlx::query("UPDATE log_head SET position = position WHERE id = 1").execute(&mut *tx).await?;
        Ok(tx.rollback().await?)
    }

    /// Starts listening before it returns, so that no commit after `EventStore::open` goes unheard;
    /// then raises the shared signal of committed positions whenever any process on this database commits.
    /// Commits of this process's own writer (`origin`) are left out: the writer announces them itself,
    /// after folding them, and a notification that overtook it would only make the read model read
    /// them back.
    async fn start_commit_listener(
        &self,
        origin: &str,
        committed: Arc<watch::Sender<i64>>,
        alive: watch::Receiver<()>,
    ) {
        if let Some(hosts) = &self.hosts {
            tokio::spawn(hosts.clone().watch(self.pool.clone(), alive.clone()));
        }
        let listener = listen(&self.pool).await;
        let moves = self.hosts.as_ref().map(|hosts| hosts.moves());
        let relay = relay_commits(self.pool.clone(), origin.to_string(), listener, moves, committed, alive);
        tokio::spawn(relay);
    }

    async fn head(&self) -> Result<LogHead, StoreError> {
        let (position, hash) =
            sqlx::query_as("SELECT position, hash FROM log_head WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(LogHead { position, hash })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn read_stream(&self, stream: &str, from_version: i64) -> Result<Vec<EventRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version"
        );
        Ok(sqlx::query_as(sql).bind(stream).bind(from_version).fetch_all(&self.pool).await?)
    }

    async fn read_page(&self, after_position: i64, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        let sql = concat!("SELECT ", event_columns!(), " FROM events WHERE position > $1 ORDER BY position LIMIT $2");
        Ok(sqlx::query_as(sql).bind(after_position).bind(limit).fetch_all(&self.pool).await?)
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<MailRow>, StoreError> {
        // SKIP LOCKED: workers of other processes claiming at the same time take other rows.
        let sql = concat!(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1 WHERE id IN \
             (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY id LIMIT $3 \
              FOR UPDATE SKIP LOCKED) \
             RETURNING ",
            mail_columns!()
        );
        Ok(sqlx::query_as(sql).bind(until).bind(now).bind(limit).fetch_all(&self.pool).await?)
    }

    async fn mails_sent(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET state = 'sent', sent_at = $1, last_error = NULL WHERE id = ANY($2)";
        sqlx::query(sql).bind(at).bind(ids).execute(&self.pool).await?;
        Ok(())
    }

    async fn release_leases(&self, lease_ends: &[DateTime<Utc>], now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET next_attempt_at = $1 WHERE state = 'pending' AND next_attempt_at = ANY($2)";
        sqlx::query(sql).bind(now).bind(lease_ends).execute(&self.pool).await?;
        Ok(())
    }

    async fn mail_failed(&self, id: i64, state: &str, due: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET state = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4";
        sqlx::query(sql).bind(state).bind(due).bind(error).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn outbox(&self, state: Option<&str>, after_id: i64, limit: i64) -> Result<Vec<MailRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mail_columns!(),
            " FROM outbox WHERE id > $1 AND ($2::text IS NULL OR state = $2) ORDER BY id LIMIT $3"
        );
        Ok(sqlx::query_as(sql).bind(after_id).bind(state).bind(limit).fetch_all(&self.pool).await?)
    }

    async fn mail_state(&self, id: i64) -> Result<Option<String>, StoreError> {
        let sql = "SELECT state FROM outbox WHERE id = $1";
        Ok(sqlx::query_scalar(sql).bind(id).fetch_optional(&self.pool).await?)
    }

    async fn revive_mail(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql =
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1 WHERE id = $2 AND state = 'dead'";
        sqlx::query(sql).bind(now).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetch_all(&self.pool).await?)
    }

    async fn shared_key(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO server_keys (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT key FROM server_keys WHERE name = $1").bind(name).fetch_one(&self.pool).await?)
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryDbRow>, StoreError> {
        // The head of each subscription's line only (see `line_heads!`); SKIP LOCKED: a worker of
        // another process claiming at the same time passes over it, and cannot take the row
        // behind it either, which is no head while this one is pending.
        let sql = concat!(
            line_heads!(),
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1 WHERE id IN \
             (SELECT d.id FROM webhook_deliveries d WHERE d.id IN (SELECT id FROM heads) \
                AND d.state = 'pending' AND d.next_attempt_at <= $2 \
              ORDER BY d.position LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING ",
            delivery_columns!()
        );
        let mut tx = self.without_waiting_for_the_disk().await?;
        let claimed = sqlx::query_as(sql).bind(until).bind(now).bind(limit).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn delivery_done(&self, id: i64, status: i32, at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = $1, last_status = $2, \
                   last_error = NULL WHERE id = $3";
        let mut tx = self.without_waiting_for_the_disk().await?;
        sqlx::query(sql).bind(at).bind(status).bind(id).execute(&mut *tx).await?;
        Ok(tx.commit().await?)
    }

    async fn delivery_failed(
        &self,
        id: i64,
        state: &str,
        due: DateTime<Utc>,
        error: &str,
        status: Option<i32>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, last_error = $3, last_status = $4 \
                   WHERE id = $5";
        let mut tx = self.without_waiting_for_the_disk().await?;
        sqlx::query(sql).bind(state).bind(due).bind(error).bind(status).bind(id).execute(&mut *tx).await?;
        Ok(tx.commit().await?)
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
            " FROM webhook_deliveries WHERE webhook_id = $1 AND id > $2 AND ($3::text IS NULL OR state = $3) \
             ORDER BY id LIMIT $4"
        );
        Ok(sqlx::query_as(sql).bind(webhook).bind(after_id).bind(state).bind(limit).fetch_all(&self.pool).await?)
    }

    async fn recent_deliveries(&self, webhook: &str, limit: i64) -> Result<Vec<DeliveryDbRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
        );
        Ok(sqlx::query_as(sql).bind(webhook).bind(limit).fetch_all(&self.pool).await?)
    }

    async fn delivery_state(&self, webhook: &str, id: i64) -> Result<Option<String>, StoreError> {
        let sql = "SELECT state FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2";
        Ok(sqlx::query_scalar(sql).bind(id).bind(webhook).fetch_optional(&self.pool).await?)
    }

    async fn revive_delivery(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1 \
                   WHERE id = $2 AND state = 'dead'";
        sqlx::query(sql).bind(now).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn delivery_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn put_webhook_secret(&self, webhook: &str, secret: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES ($1, $2, $3)";
        sqlx::query(sql).bind(webhook).bind(secret).bind(at).execute(&self.pool).await?;
        Ok(())
    }

    async fn webhook_secret(&self, webhook: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT secret FROM webhook_secrets WHERE webhook_id = $1";
        Ok(sqlx::query_scalar(sql).bind(webhook).fetch_optional(&self.pool).await?)
    }

    async fn delete_webhook_secret(&self, webhook: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_secrets WHERE webhook_id = $1").bind(webhook).execute(&self.pool).await?;
        Ok(())
    }

    async fn kept_answer(&self, key: &str, since: DateTime<Utc>) -> Result<Option<(String, String)>, StoreError> {
        let sql = "SELECT fingerprint, answer::text FROM idempotent_answers WHERE key = $1 AND created_at >= $2";
        Ok(sqlx::query_as(sql).bind(key).bind(since).fetch_optional(&self.pool).await?)
    }

    async fn keep_answer(
        &self,
        key: &str,
        fingerprint: &str,
        answer: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM idempotent_answers WHERE created_at < $1",
            "DELETE FROM idempotency_keys WHERE created_at < $1",
        ] {
            sqlx::query(sql).bind(since).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO idempotent_answers (key, fingerprint, answer, created_at) VALUES ($1, $2, $3::jsonb, $4) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(fingerprint)
        .bind(answer)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    async fn save_snapshot(&self, snapshot: &StoredSnapshot, keep: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO snapshots (position, chain_hash, workflow_digest, format_version, body, mac) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (position) DO NOTHING",
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
             (SELECT position FROM snapshots ORDER BY position DESC LIMIT $1)",
        )
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn snapshot_positions(&self) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT position FROM snapshots ORDER BY position DESC").fetch_all(&self.pool).await?)
    }

    async fn snapshot(&self, position: i64) -> Result<Option<StoredSnapshot>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT position, chain_hash, workflow_digest, format_version, body, mac FROM snapshots \
             WHERE position = $1",
        )
        .bind(position)
        .fetch_optional(&self.pool)
        .await?)
    }
}
