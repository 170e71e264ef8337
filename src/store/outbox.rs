//! The outbox: the mail that events cause, written in the same transaction as the events (so an
//! acknowledged event never loses its mail), then claimed, sent and marked by delivery workers.
//!
//! A worker claims due rows by pushing their `next_attempt_at` past a lease, in one statement
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time), sends them outside any
//! transaction, and marks them sent. Two workers never hold the same row; a worker that dies
//! between sending and marking leaves the row to be claimed again when its lease ends, so that mail
//! may repeat, with the same Message-ID.
//!
//! Fresh mail skips the claim: the writer writes it already leased to its own process's worker
//! and hands it over once its transaction has committed (see [`MailHandoff`]).

use std::{
    collections::BTreeMap,
    fmt,
    str::FromStr,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{backend::Database, event::format_time, planner::NewMail, EventStore, RecordedEvent, StoreError};

/// How long a claimed mail is reserved for its worker; longer than an SMTP attempt may take.
pub const MAIL_LEASE: std::time::Duration = std::time::Duration::from_secs(300);
/// How many fresh mails may wait for this process's worker; beyond that, mail is left for any
/// worker to claim. Small enough that a worker gets to every one long before its lease ends.
const HANDOFF_DEPTH: usize = 2_000;

/// A row about to be written with the event that causes it. The writer numbers it (ids are given
/// out under the log-head lock, like positions) and decides whether it is leased at once.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    id: i64,
    event_id: uuid::Uuid,
    position: i64,
    recipient: String,
    kind: &'static str,
    context: Value,
    message_id: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl OutboxRow {
    pub fn new(event: &RecordedEvent, mail: NewMail) -> Self {
        OutboxRow {
            id: 0,
            message_id: message_id(&event.event_id, &mail.recipient),
            event_id: event.event_id,
            position: event.position,
            recipient: mail.recipient,
            kind: mail.kind,
            context: mail.context,
            attempts: 0,
            next_attempt_at: event.recorded_at,
            created_at: event.recorded_at,
        }
    }

    /// The row as its worker sends it, once written.
    fn mail(&self) -> OutboxMail {
        OutboxMail {
            id: self.id,
            event_id: self.event_id.to_string(),
            position: self.position,
            recipient: self.recipient.clone(),
            kind: self.kind.to_string(),
            context: self.context.clone(),
            message_id: self.message_id.clone(),
            state: MailState::Pending,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: None,
            created_at: self.created_at,
            sent_at: None,
        }
    }
}

/// The way from the writer to this process's delivery worker for fresh mail. When the worker has
/// room for a batch's mail, the writer writes it leased to the worker (its first attempt, as a
/// claim would) and hands it over after the commit: no claiming UPDATE per mail, no wait for the
/// next poll. Without a worker, or with a full queue, mail is written due at once, for any
/// worker to claim. Only the writer sends, so the room it saw before writing is still there after.
#[derive(Clone, Default)]
pub(crate) struct MailHandoff(Arc<Mutex<Option<mpsc::Sender<OutboxMail>>>>);

/// A batch's leased mail, to hand over once the batch has committed.
pub(crate) struct Handover {
    worker: mpsc::Sender<OutboxMail>,
    mails: Vec<OutboxMail>,
}

impl MailHandoff {
    /// The worker's end; a later call replaces the earlier one.
    pub fn receiver(&self) -> mpsc::Receiver<OutboxMail> {
        let (sender, receiver) = mpsc::channel(HANDOFF_DEPTH);
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sender);
        receiver
    }

    /// Numbers a batch's mail after `last_id` (which moves on), and leases it to the worker when
    /// the worker has room for all of it.
    pub fn prepare(&self, rows: &mut [OutboxRow], last_id: &mut i64, now: DateTime<Utc>) -> Option<Handover> {
        for row in rows.iter_mut() {
            *last_id += 1;
            row.id = *last_id;
        }
        let worker = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()?;
        if rows.is_empty() || worker.capacity() < rows.len() {
            return None;
        }
        let lease_ends = now + chrono::Duration::from_std(MAIL_LEASE).expect("the lease fits");
        for row in rows.iter_mut() {
            row.attempts = 1;
            row.next_attempt_at = lease_ends;
        }
        Some(Handover { worker, mails: rows.iter().map(OutboxRow::mail).collect() })
    }
}

impl Handover {
    /// After the commit. A worker that went away leaves the mail to be claimed when its lease ends.
    pub fn deliver(self) {
        for mail in self.mails {
            let _ = self.worker.try_send(mail);
        }
    }
}

/// Stable across retries and processes: the same event and recipient give the same Message-ID.
pub fn message_id(event_id: &uuid::Uuid, recipient: &str) -> String {
    let digest = Sha256::digest(format!("{event_id}\n{recipient}").as_bytes());
    format!("<{}@roleledger>", &hex::encode(digest)[..40])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailState {
    /// Waiting to be sent (or being sent, or waiting for a retry).
    Pending,
    Sent,
    /// Given up after the last attempt; an admin may retry it.
    Dead,
}

impl fmt::Display for MailState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailState::Pending => "pending",
            MailState::Sent => "sent",
            MailState::Dead => "dead",
        })
    }
}

impl FromStr for MailState {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(MailState::Pending),
            "sent" => Ok(MailState::Sent),
            "dead" => Ok(MailState::Dead),
            other => Err(format!("unknown mail state \"{other}\" (pending, sent or dead)")),
        }
    }
}

/// A row of the outbox as workers and admins see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Mail)]
pub struct OutboxMail {
    pub id: i64,
    pub event_id: String,
    pub position: i64,
    pub recipient: String,
    pub kind: String,
    /// What the mail's template is filled with.
    #[schema(value_type = Object)]
    pub context: Value,
    pub message_id: String,
    pub state: MailState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct MailRow {
    id: i64,
    event_id: String,
    position: i64,
    recipient: String,
    kind: String,
    context: String,
    message_id: String,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<MailRow> for OutboxMail {
    type Error = StoreError;
    fn try_from(row: MailRow) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::CorruptEvent { position: row.position, reason };
        Ok(OutboxMail {
            context: serde_json::from_str(&row.context).map_err(|e| corrupt(format!("outbox context: {e}")))?,
            state: row.state.parse().map_err(corrupt)?,
            id: row.id,
            event_id: row.event_id,
            position: row.position,
            recipient: row.recipient,
            kind: row.kind,
            message_id: row.message_id,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            created_at: row.created_at,
            sent_at: row.sent_at,
        })
    }
}

fn decode(rows: Vec<MailRow>) -> Result<Vec<OutboxMail>, StoreError> {
    rows.into_iter().map(OutboxMail::try_from).collect()
}

const SQLITE_COLUMNS: &str = "id, event_id, position, recipient, kind, context, message_id, state, attempts, \
     next_attempt_at, last_error, created_at, sent_at";
const POSTGRES_COLUMNS: &str = "id, event_id::text AS event_id, position, recipient, kind, context::text AS context, \
     message_id, state, attempts, next_attempt_at, last_error, created_at, sent_at";

impl OutboxRow {
    /// The rows as the SQLite writer passes them (as JSON arrays).
    pub(crate) fn sqlite_rows(rows: &[OutboxRow]) -> Vec<impl Serialize + '_> {
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

    /// The rows as the PostgreSQL writer passes them: one array per column.
    pub(crate) fn postgres_columns(rows: &[OutboxRow]) -> OutboxColumns {
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

pub(crate) struct OutboxColumns {
    pub ids: Vec<i64>,
    pub attempts: Vec<i32>,
    pub due: Vec<DateTime<Utc>>,
    pub event_ids: Vec<uuid::Uuid>,
    pub positions: Vec<i64>,
    pub recipients: Vec<String>,
    pub kinds: Vec<String>,
    pub contexts: Vec<String>,
    pub message_ids: Vec<String>,
    pub created: Vec<DateTime<Utc>>,
}

impl EventStore {
    /// Claims up to `limit` due mails for `lease`: nobody else claims them until the lease ends.
    pub async fn claim_mail(&self, limit: i64, lease: std::time::Duration) -> Result<Vec<OutboxMail>, StoreError> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        let rows: Vec<MailRow> = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_as(&format!(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?1 WHERE id IN \
                     (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?2 ORDER BY id LIMIT ?3) \
                     RETURNING {SQLITE_COLUMNS}"
                ))
                .bind(format_time(&until))
                .bind(format_time(&now))
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as(&format!(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1 WHERE id IN \
                     (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY id LIMIT $3 \
                      FOR UPDATE SKIP LOCKED) \
                     RETURNING {POSTGRES_COLUMNS}"
                ))
                .bind(until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        };
        let mut mails = decode(rows)?;
        mails.sort_by_key(|mail| mail.id);
        Ok(mails)
    }

    /// Marks mails sent, in one statement.
    pub async fn mails_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        match &self.db {
            Database::Sqlite(pool) => sqlx::query(
                "UPDATE outbox SET state = 'sent', sent_at = ?1, last_error = NULL \
                     WHERE id IN (SELECT value FROM json_each(?2))",
            )
            .bind(format_time(&now))
            .bind(serde_json::to_string(ids).expect("ids serialize"))
            .execute(pool)
            .await
            .map(drop)?,
            Database::Postgres(pool) => {
                sqlx::query("UPDATE outbox SET state = 'sent', sent_at = $1, last_error = NULL WHERE id = ANY($2)")
                    .bind(now)
                    .bind(ids)
                    .execute(pool)
                    .await
                    .map(drop)?
            }
        };
        Ok(())
    }

    /// A failed attempt: tried again at `retry_at`, or dead when there is none.
    pub async fn mail_failed(&self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let state = if retry_at.is_some() { MailState::Pending } else { MailState::Dead };
        let due = retry_at.unwrap_or_else(Utc::now);
        match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query("UPDATE outbox SET state = ?1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?4")
                    .bind(state.to_string())
                    .bind(format_time(&due))
                    .bind(error)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(drop)?
            }
            Database::Postgres(pool) => {
                sqlx::query("UPDATE outbox SET state = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4")
                    .bind(state.to_string())
                    .bind(due)
                    .bind(error)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(drop)?
            }
        };
        Ok(())
    }

    /// Outbox rows after `after_id`, optionally in one state, in id order.
    pub async fn outbox(
        &self,
        state: Option<MailState>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let state = state.map(|s| s.to_string());
        let rows: Vec<MailRow> = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_as(&format!(
                "SELECT {SQLITE_COLUMNS} FROM outbox WHERE id > ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id LIMIT ?3"
            ))
                .bind(after_id)
                .bind(state)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as(&format!(
                    "SELECT {POSTGRES_COLUMNS} FROM outbox WHERE id > $1 AND ($2::text IS NULL OR state = $2) \
                     ORDER BY id LIMIT $3"
                ))
                .bind(after_id)
                .bind(state)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        };
        decode(rows)
    }

    /// Puts a dead mail back in the queue, due now. Answers the state it was in (None: no such
    /// mail); only a dead mail is changed.
    pub async fn retry_mail(&self, id: i64) -> Result<Option<MailState>, StoreError> {
        let now = Utc::now();
        let before: Option<String> = match &self.db {
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT state FROM outbox WHERE id = ?1").bind(id).fetch_optional(pool).await?
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT state FROM outbox WHERE id = $1").bind(id).fetch_optional(pool).await?
            }
        };
        let before = before
            .map(|state| state.parse::<MailState>().map_err(|reason| StoreError::CorruptEvent { position: 0, reason }))
            .transpose()?;
        if before == Some(MailState::Dead) {
            match &self.db {
                Database::Sqlite(pool) => {
                    sqlx::query("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1 WHERE id = ?2 AND state = 'dead'")
                        .bind(format_time(&now))
                        .bind(id)
                        .execute(pool)
                        .await
                        .map(drop)?
                }
                Database::Postgres(pool) => {
                    sqlx::query("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1 WHERE id = $2 AND state = 'dead'")
                        .bind(now)
                        .bind(id)
                        .execute(pool)
                        .await
                        .map(drop)?
                }
            };
        }
        Ok(before)
    }

    /// How many mails are in each state.
    pub async fn outbox_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        const SQL: &str = "SELECT state, COUNT(*) FROM outbox GROUP BY state";
        let rows: Vec<(String, i64)> = match &self.db {
            Database::Sqlite(pool) => sqlx::query_as(SQL).fetch_all(pool).await?,
            Database::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await?,
        };
        Ok(rows.into_iter().collect())
    }
}
