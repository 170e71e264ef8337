//! The ways a batch is written: without the lock while this writer is alone, at once under the
//! lock, or one job at a time under savepoints when the database refuses the batch.

use std::{collections::HashMap, sync::Arc, time::Instant};

use chrono::Utc;

use super::{
    plan::{plan_job, Plan, PlannedBatch, Planner},
    unwind_guard, AppendJob, BatchError, Committed, Job, JobError, Models, Tip, Written, CONTENDED,
};
use crate::store::{
    backend::{Database, HeadLock, IdempotencyRecord, Rows, WriteBackend},
    commands::catch_up,
    error::is_stream_version_violation,
    event::{truncate_to_micros, RecordedEvent},
    outbox::Handover,
    planner::CommandPlanner,
    AppendRequest, LogHead, StoreError, KEY_LIFETIME,
};

/// One batch. While this writer is the only one, written in one statement against the head it
/// left (and, without a model, against the stream versions it knows: see `Tip::versions_for`);
/// otherwise (or when that finds the head moved) all jobs in one transaction under the lock,
/// written with one statement; if the database refuses that statement, the batch is redone one
/// job at a time, each under its own savepoint, so that one bad job does not abort the others.
pub(super) async fn write_batch<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    db: &Database,
    mut models: Option<&mut Models<P>>,
    jobs: &[Job<P>],
    tip: &mut Tip,
) -> Result<Committed<P::Refusal>, BatchError> {
    let unlocked = tip.unlocked_base::<B, P>(jobs).and_then(|base| {
        let versions = if models.is_some() { Some(HashMap::new()) } else { tip.versions_for(jobs) };
        Some(base).zip(versions)
    });
    if let Some((base, versions)) = unlocked {
        match write_unlocked(backend, models.as_deref_mut(), jobs, base, versions).await? {
            Unlocked::Committed(committed) => return Ok(committed),
            Unlocked::NothingToWrite => {}
            // Nothing was written: the batch is planned again under the lock.
            not_written => {
                if matches!(not_written, Unlocked::HeadMoved) {
                    tip.contended_until = Instant::now() + CONTENDED;
                }
                if let Some(models) = models.as_deref_mut() {
                    models.reset();
                }
            }
        }
    }
    match write_at_once(backend, db, models.as_deref_mut(), jobs).await? {
        Some(written) => Ok(written),
        None => {
            if let Some(models) = models.as_deref_mut() {
                models.reset();
            }
            write_one_by_one(backend, db, models, jobs).await
        }
    }
}

/// The fast path: each job planned in memory against the state that includes the earlier ones,
/// then all their events written together. `None` when the database refused the write (and
/// nothing was written).
pub(super) async fn write_at_once<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    db: &Database,
    mut models: Option<&mut Models<P>>,
    jobs: &[Job<P>],
) -> Result<Option<Committed<P::Refusal>>, BatchError> {
    let (tx, mut planner) = begin(backend, db, models.as_deref_mut(), jobs).await?;
    let base = planner.head.clone();
    let head_before = base.position;
    // A panic abandons the transaction: dropping it rolls back.
    let mut batch = PlannedBatch::plan(&mut planner, models.as_deref_mut(), jobs)?;
    let mut handover = None;
    if planner.head.position > head_before {
        let rows = batch.rows(&mut planner, models);
        match backend.write_and_commit(tx, rows.as_rows(&planner.head)).await {
            Ok(()) => handover = rows.handover,
            Err(error) if refused_by_database(&error) => {
                tracing::warn!(%error, "a batch was refused; redoing its jobs one by one");
                return Ok(None);
            }
            Err(error) => return Err(outcome_unknown(error, rows.handover)),
        }
    } else {
        backend.commit(tx).await?;
    }
    Ok(Some(Committed {
        results: batch.results,
        head: planner.head,
        last_mail_id: planner.last_mail_id,
        handover,
        base,
        versions: planner.versions,
    }))
}

/// A commit failed, which may have committed all the same: the mail it leased to this process's
/// worker is under a lost lease.
fn outcome_unknown(error: sqlx::Error, handover: Option<Handover>) -> BatchError {
    if let Some(handover) = handover {
        handover.outcome_unknown();
    }
    BatchError::Commit(error)
}

/// How a batch written without the lock went.
pub(super) enum Unlocked<R> {
    Committed(Committed<R>),
    /// Another process wrote since this writer's last batch: nothing was written.
    HeadMoved,
    /// The database refused the rows: nothing was written.
    Refused,
    /// Every job was refused or repeats an earlier one. Refusals are given under the lock, where
    /// the model is known to be current.
    NothingToWrite,
}

/// The fast path while this writer is the only one: the batch planned against the head its last
/// batch left (and the writer's model, or else the stream `versions` it knows as of that head),
/// then written in one statement that commits on its own, and writes only if the head is still
/// there (one round trip instead of three).
pub(super) async fn write_unlocked<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    mut models: Option<&mut Models<P>>,
    jobs: &[Job<P>],
    (head, last_mail_id): (LogHead, i64),
    versions: HashMap<String, i64>,
) -> Result<Unlocked<P::Refusal>, BatchError> {
    let now = truncate_to_micros(Utc::now());
    let mut planner = Planner { head: head.clone(), versions, known_keys: HashMap::new(), last_mail_id, now };
    let mut batch = PlannedBatch::plan(&mut planner, models.as_deref_mut(), jobs)?;
    if planner.head.position == head.position {
        return Ok(Unlocked::NothingToWrite);
    }
    let rows = batch.rows(&mut planner, models);
    match backend.write_if_head_is(&head, rows.as_rows(&planner.head)).await {
        Ok(true) => Ok(Unlocked::Committed(Committed {
            results: batch.results,
            head: planner.head,
            last_mail_id: planner.last_mail_id,
            handover: rows.handover,
            base: head,
            versions: planner.versions,
        })),
        Ok(false) => Ok(Unlocked::HeadMoved),
        Err(error) if refused_by_database(&error) => Ok(Unlocked::Refused),
        Err(error) => Err(outcome_unknown(error, rows.handover)),
    }
}

pub(super) async fn write_one_by_one<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    db: &Database,
    mut models: Option<&mut Models<P>>,
    jobs: &[Job<P>],
) -> Result<Committed<P::Refusal>, BatchError> {
    let (mut tx, mut planner) = begin(backend, db, models.as_deref_mut(), jobs).await?;
    let base = planner.head.clone();
    let mut results = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        results.push(write_one(backend, &mut tx, &mut planner, models.as_deref_mut(), (index, job)).await?);
    }
    // The mail of the jobs that were written, in their transaction.
    let mut handover = None;
    if let Some(models) = models {
        let outbox = models.take_outbox(&mut planner);
        if !(outbox.mail.is_empty() && outbox.deliveries.is_empty()) {
            let rows = Rows {
                events: &[],
                keys: &[],
                head: &planner.head,
                outbox: &outbox.mail,
                deliveries: &outbox.deliveries,
            };
            backend.write(&mut tx, rows).await?;
        }
        handover = outbox.handover;
    }
    if let Err(error) = backend.commit(tx).await {
        return Err(outcome_unknown(error, handover));
    }
    Ok(Committed {
        results,
        head: planner.head,
        last_mail_id: planner.last_mail_id,
        handover,
        base,
        versions: planner.versions,
    })
}

/// The slow path: one job under its own savepoint; the model learns of it only once it is written.
pub(super) async fn write_one<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    tx: &mut B::Tx,
    planner: &mut Planner,
    models: Option<&mut Models<P>>,
    (index, job): (usize, &Job<P>),
) -> Result<Result<Written, JobError<P::Refusal>>, BatchError> {
    // Planning against a scratch copy of the planner: only a written job may move it.
    let mut scratch = planner.clone();
    let mut plans = match unwind_guard(|| plan_job(&scratch, models.as_deref(), job)) {
        Ok(Ok(plans)) => plans,
        Ok(Err(refusal)) => return Ok(Err(refusal)),
        Err(message) => return Ok(Err(JobError::Store(StoreError::Panicked(message)))),
    };
    for plan in &plans {
        scratch.accept(plan);
    }
    let written = Written::of(&plans);
    if scratch.head.position == planner.head.position {
        // An idempotent repeat writes nothing.
        return Ok(Ok(written));
    }
    let (events, keys) = rows(plans.iter_mut());
    backend.execute(tx, "SAVEPOINT job").await?;
    let rows = Rows { events: &events, keys: &keys, head: &scratch.head, outbox: &[], deliveries: &[] };
    match backend.write(tx, rows).await {
        Ok(()) => {
            backend.execute(tx, "RELEASE SAVEPOINT job").await?;
            if let Some(models) = models {
                unwind_guard(|| models.fold(&written.events))
                    .map_err(|message| BatchError::FoldPanicked { job: index, message })?;
            }
            *planner = scratch;
            Ok(Ok(written))
        }
        Err(error) if refused_by_database(&error) => {
            backend.execute(tx, "ROLLBACK TO SAVEPOINT job").await?;
            if let (true, Job::Append(AppendJob { request, .. })) = (is_stream_version_violation(&error), job) {
                let actual = backend.stream_versions(tx, std::slice::from_ref(&request.stream)).await?;
                let actual = actual.get(&request.stream).copied().unwrap_or(0);
                let conflict =
                    StoreError::Conflict { stream: request.stream.clone(), expected: request.expected, actual };
                return Ok(Err(JobError::Store(conflict)));
            }
            Ok(Err(JobError::Store(StoreError::from(error))))
        }
        Err(error) => Err(error.into()),
    }
}

/// Takes the lock on the log head and gathers what the batch is checked against: the model
/// brought up to the head (it knows every stream's version), or else the versions of the streams
/// the batch names; and the idempotency keys it carries.
pub(super) async fn begin<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    db: &Database,
    models: Option<&mut Models<P>>,
    jobs: &[Job<P>],
) -> Result<(B::Tx, Planner), sqlx::Error> {
    let appends: Vec<&AppendRequest> = jobs
        .iter()
        .filter_map(|job| match job {
            Job::Append(AppendJob { request, .. }) => Some(request),
            Job::Execute(_) => None,
        })
        .collect();
    let streams = distinct(appends.iter().map(|request| &request.stream));
    let keys = distinct(jobs.iter().filter_map(Job::key));
    // With a model, the model knows every stream's version.
    let streams = if models.is_some() { Vec::new() } else { streams };
    let (mut tx, HeadLock { head, last_mail_id, versions }) = backend.lock_head(&streams).await?;
    if let Some(models) = models {
        // Other processes' commits since this writer's last batch (the head tells whether there
        // are any, which saves a round trip when this process is the only writer).
        if head.position != models.writer.position() {
            catch_up(&mut models.writer, db, Some(&mut models.unpublished)).await.map_err(into_sqlx)?;
        }
    }
    let now = truncate_to_micros(Utc::now());
    let known_keys = if keys.is_empty() {
        HashMap::new()
    } else {
        backend.idempotency_records(&mut tx, &keys, now - KEY_LIFETIME).await?
    };
    Ok((tx, Planner { head, versions, known_keys, last_mail_id, now }))
}

/// The model's catch-up reads through the store's own error type; the writer speaks sqlx.
pub(super) fn into_sqlx(error: StoreError) -> sqlx::Error {
    match error {
        StoreError::Unavailable(inner) | StoreError::Database(inner) => {
            Arc::try_unwrap(inner).unwrap_or_else(|shared| sqlx::Error::Protocol(shared.to_string()))
        }
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// What the given plans write: their events and idempotency keys (taken out of the plans).
pub(super) fn rows<'p>(
    plans: impl Iterator<Item = &'p mut Plan>,
) -> (Vec<RecordedEvent>, Vec<(String, IdempotencyRecord)>) {
    let mut events = Vec::new();
    let mut keys = Vec::new();
    for plan in plans {
        events.append(&mut plan.events);
        keys.extend(plan.key.take());
    }
    (events, keys)
}

/// The database rejected a statement (a constraint, a value it cannot store), as opposed to the
/// connection failing: only the former can be pinned on one job.
pub(super) fn refused_by_database(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_))
}

pub(super) fn distinct<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen: Vec<String> = items.cloned().collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}
