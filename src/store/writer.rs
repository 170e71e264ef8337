//! Group commit: one writer task per process turns the appends waiting for it into one transaction.
//!
//! Why positions are contiguous and followers never skip an event, even with many processes
//! writing to one PostgreSQL:
//! 1. A batch first takes the lock on the log head (`SELECT … FOR UPDATE` on the `log_head` row;
//!    `BEGIN IMMEDIATE` on SQLite) and holds it until its transaction commits or rolls back.
//! 2. Positions are `head + 1, head + 2, …`, handed out only while holding that lock, and the head
//!    moves in the same transaction. The next holder can read the head only after the previous
//!    holder committed, so positions are given out in commit order, with no gaps (a rolled back
//!    batch never moved the head).
//! 3. So when a reader sees position p committed, every position below p committed before p did,
//!    and is in any snapshot that holds p: reading `position > last` in order never skips one.
//! The same lock makes the per-stream version check and the hash chain race-free: each batch reads
//! the versions and the previous hash after every earlier batch has committed.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::{
    backend::{IdempotencyRecord, WriteBackend},
    error::is_stream_version_violation,
    event::{truncate_to_micros, RecordedEvent},
    AppendOutcome, AppendRequest, LogHead, StoreError,
};

/// How many appends may wait for the writer before callers wait to enqueue.
pub(crate) const QUEUE_DEPTH: usize = 8192;
/// The most appends committed in one transaction.
const MAX_BATCH: usize = 512;

pub(crate) struct Job {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// Takes everything that is waiting (up to `MAX_BATCH`), commits it as one transaction, answers each caller.
pub(crate) async fn run<B: WriteBackend>(backend: B, mut jobs: mpsc::Receiver<Job>, committed: Arc<watch::Sender<i64>>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|job| (job.request, job.reply)).unzip();
        match write_batch(&backend, &requests).await {
            Ok((outcomes, head)) => {
                super::announce_commit(&committed, head.position);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // A caller that went away still had its append committed; nobody to tell.
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                let error = StoreError::from(error);
                tracing::error!(%error, appends = replies.len(), "batch of appends failed; nothing of it was written");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

type Outcomes = Vec<Result<AppendOutcome, StoreError>>;

/// One batch: all appends in one transaction, written with one statement; if the database refuses
/// that statement, the batch is redone one append at a time, each under its own savepoint, so
/// that one bad append does not abort the others.
async fn write_batch<B: WriteBackend>(backend: &B, requests: &[AppendRequest]) -> Result<(Outcomes, LogHead), sqlx::Error> {
    match write_at_once(backend, requests).await? {
        Some(written) => Ok(written),
        None => write_one_by_one(backend, requests).await,
    }
}

/// The fast path: every append planned in memory against the state that includes the earlier ones,
/// then all their events inserted together. `None` when the database refused the insert (and
/// nothing was written).
async fn write_at_once<B: WriteBackend>(
    backend: &B,
    requests: &[AppendRequest],
) -> Result<Option<(Outcomes, LogHead)>, sqlx::Error> {
    let (mut tx, mut planner) = begin(backend, requests).await?;
    let head_before = planner.head.position;
    // Hook for the domain: this is where each command will be decided against `planner`'s state,
    // which already includes the effects of the earlier commands of the batch.
    let mut plans: Vec<Result<Plan, StoreError>> = requests
        .iter()
        .map(|request| {
            let plan = planner.plan(request)?;
            planner.accept(&plan);
            Ok(plan)
        })
        .collect();
    if planner.head.position > head_before {
        match write(backend, &mut tx, plans.iter_mut().filter_map(|plan| plan.as_mut().ok()), &planner.head).await {
            Ok(()) => {}
            Err(error) if refused_by_database(&error) => {
                tracing::warn!(%error, "a batch insert was refused; redoing its appends one by one");
                backend.rollback(tx).await?;
                return Ok(None);
            }
            Err(error) => return Err(error),
        }
    }
    backend.commit(tx).await?;
    Ok(Some((plans.into_iter().map(|plan| plan.map(|plan| plan.outcome)).collect(), planner.head)))
}

async fn write_one_by_one<B: WriteBackend>(backend: &B, requests: &[AppendRequest]) -> Result<(Outcomes, LogHead), sqlx::Error> {
    let (mut tx, mut planner) = begin(backend, requests).await?;
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        outcomes.push(write_one(backend, &mut tx, &mut planner, request).await?);
    }
    backend.commit(tx).await?;
    Ok((outcomes, planner.head))
}

/// Takes the lock on the log head and reads what the batch's appends are checked against.
async fn begin<B: WriteBackend>(backend: &B, requests: &[AppendRequest]) -> Result<(B::Tx, Planner), sqlx::Error> {
    let (mut tx, head) = backend.lock_head().await?;
    let streams = distinct(requests.iter().map(|r| &r.stream));
    let keys = distinct(requests.iter().filter_map(|r| r.idempotency_key.as_ref()));
    let versions = backend.stream_versions(&mut tx, &streams).await?;
    let known_keys =
        if keys.is_empty() { HashMap::new() } else { backend.idempotency_records(&mut tx, &keys).await? };
    Ok((tx, Planner { head, versions, known_keys, now: truncate_to_micros(Utc::now()) }))
}

/// The slow path: one append under its own savepoint.
async fn write_one<B: WriteBackend>(
    backend: &B,
    tx: &mut B::Tx,
    planner: &mut Planner,
    request: &AppendRequest,
) -> Result<Result<AppendOutcome, StoreError>, sqlx::Error> {
    let mut plan = match planner.plan(request) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // An idempotent repeat writes nothing.
    let Some(head) = plan.head() else { return Ok(Ok(plan.outcome)) };
    let accepted = plan.clone();
    backend.execute(tx, "SAVEPOINT append").await?;
    match write(backend, tx, std::iter::once(&mut plan), &head).await {
        Ok(()) => {
            backend.execute(tx, "RELEASE SAVEPOINT append").await?;
            planner.accept(&accepted);
            Ok(Ok(accepted.outcome))
        }
        Err(error) if refused_by_database(&error) => {
            backend.execute(tx, "ROLLBACK TO SAVEPOINT append").await?;
            if is_stream_version_violation(&error) {
                let actual = backend.stream_versions(tx, std::slice::from_ref(&request.stream)).await?;
                let actual = actual.get(&request.stream).copied().unwrap_or(0);
                return Ok(Err(StoreError::Conflict { stream: request.stream.clone(), expected: request.expected, actual }));
            }
            Ok(Err(StoreError::from(error)))
        }
        Err(error) => Err(error),
    }
}

/// Writes the events and idempotency keys of the given plans (taking them out of the plans) and
/// moves the head.
async fn write<'p, B: WriteBackend>(
    backend: &B,
    tx: &mut B::Tx,
    plans: impl Iterator<Item = &'p mut Plan>,
    head: &LogHead,
) -> Result<(), sqlx::Error> {
    let mut events = Vec::new();
    let mut keys = Vec::new();
    for plan in plans {
        events.append(&mut plan.events);
        keys.extend(plan.key.take());
    }
    backend.write(tx, &events, &keys, head).await
}

/// The database rejected a statement (a constraint, a value it cannot store), as opposed to the
/// connection failing: only the former can be pinned on one append.
fn refused_by_database(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_))
}

fn distinct<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen: Vec<String> = items.cloned().collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}

/// What an append will write: its events (already positioned and hashed), its outcome, and its key.
#[derive(Clone)]
struct Plan {
    events: Vec<RecordedEvent>,
    key: Option<(String, IdempotencyRecord)>,
    outcome: AppendOutcome,
}

impl Plan {
    /// The head after this plan's events; `None` when it writes none.
    fn head(&self) -> Option<LogHead> {
        self.events.last().map(|last| LogHead { position: last.position, hash: last.hash.clone() })
    }
}

/// The state that appends are checked against: the head, stream versions and idempotency keys,
/// including the appends planned earlier in the same batch.
#[derive(Clone)]
struct Planner {
    head: LogHead,
    versions: HashMap<String, i64>,
    known_keys: HashMap<String, IdempotencyRecord>,
    now: DateTime<Utc>,
}

impl Planner {
    fn plan(&self, request: &AppendRequest) -> Result<Plan, StoreError> {
        let fingerprint = request.idempotency_key.as_ref().map(|_| fingerprint(request));
        if let Some(key) = &request.idempotency_key {
            if let Some(record) = self.known_keys.get(key) {
                return if Some(&record.fingerprint) == fingerprint.as_ref() {
                    Ok(Plan { events: Vec::new(), key: None, outcome: record.outcome.clone() })
                } else {
                    Err(StoreError::IdempotencyKeyReused(key.clone()))
                };
            }
        }
        let current = self.versions.get(&request.stream).copied().unwrap_or(0);
        if !request.expected.admits(current) {
            return Err(StoreError::Conflict { stream: request.stream.clone(), expected: request.expected, actual: current });
        }
        let mut previous_hash = self.head.hash.clone();
        let events: Vec<RecordedEvent> = (1..)
            .zip(&request.events)
            .map(|(offset, new)| {
                let mut event = RecordedEvent {
                    position: self.head.position + offset,
                    stream: request.stream.clone(),
                    version: current + offset,
                    event_type: new.event_type.clone(),
                    schema_version: new.schema_version,
                    data: new.data.clone(),
                    metadata: new.metadata.clone(),
                    recorded_at: self.now,
                    event_id: Uuid::now_v7(),
                    hash: String::new(),
                };
                event.hash = event.chained_hash(&previous_hash);
                previous_hash.clone_from(&event.hash);
                event
            })
            .collect();
        let count = events.len() as i64;
        let outcome = AppendOutcome {
            stream: request.stream.clone(),
            first_position: self.head.position + 1,
            last_position: self.head.position + count,
            version: current + count,
        };
        let key = request.idempotency_key.clone().zip(fingerprint).map(|(key, fingerprint)| {
            (key, IdempotencyRecord { fingerprint, outcome: outcome.clone() })
        });
        Ok(Plan { events, key, outcome })
    }

    fn accept(&mut self, plan: &Plan) {
        let Some(head) = plan.head() else { return };
        self.head = head;
        self.versions.insert(plan.outcome.stream.clone(), plan.outcome.version);
        if let Some((key, record)) = &plan.key {
            self.known_keys.insert(key.clone(), record.clone());
        }
    }
}

/// What an idempotency key promises to repeat: the stream and the events' types and data
/// (metadata may differ between retries, a different payload may not).
fn fingerprint(request: &AppendRequest) -> String {
    let body = serde_json::json!({
        "stream": request.stream,
        "events": request.events.iter().map(|e| serde_json::json!({
            "type": e.event_type, "schema_version": e.schema_version, "data": e.data,
        })).collect::<Vec<_>>(),
    });
    hex::encode(Sha256::digest(super::canonical::to_vec(&body)))
}
