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
//!
//! The same lock makes the per-stream version check and the hash chain race-free: each batch reads
//! the versions and the previous hash after every earlier batch has committed.
//!
//! A PostgreSQL writer that wrote last may skip step 1 (`write_unlocked`): it plans the batch
//! against the head it left, and one statement takes the row lock by updating the head only if the
//! head is still that one, and inserts the rows only if it did. The lock is then held from that
//! update to the statement's commit, the positions follow the head that was locked, and the model
//! the batch was planned against was current (nobody wrote since): the same argument holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::{
    collections::HashMap,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::{
    backend::{Database, HeadLock, IdempotencyRecord, Rows, WriteBackend},
    error::is_stream_version_violation,
    event::{truncate_to_micros, RecordedEvent},
    outbox::{Handover, MailHandoff, OutboxRow},
    planner::CommandPlanner,
    AppendOutcome, AppendRequest, ExecuteError, ExpectedVersion, LogHead, Metadata, StoreError,
};

/// How many jobs may wait for the writer before callers wait to enqueue.
pub(crate) const QUEUE_DEPTH: usize = 8192;
/// The most jobs committed in one transaction.
const MAX_BATCH: usize = 512;

/// Events that the caller made: checked against the stream's expected version only.
pub(crate) struct AppendJob {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// A command, decided here under the lock against the planner's model.
pub(crate) struct CommandJob<P: CommandPlanner> {
    pub command: P::Command,
    pub metadata: Metadata,
    pub reply: oneshot::Sender<Result<Vec<RecordedEvent>, ExecuteError<P::Refusal>>>,
}

/// Moved once through the queue and decided in place: boxing the large variant would cost an
/// allocation per command on the hot path.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Job<P: CommandPlanner> {
    Append(AppendJob),
    Execute(CommandJob<P>),
}

/// What the writer takes jobs from: the store's raw appends and the planner's commands.
pub(crate) struct Inbox<P: CommandPlanner> {
    pub appends: mpsc::Receiver<AppendJob>,
    pub commands: mpsc::Receiver<CommandJob<P>>,
}

impl<P: CommandPlanner> Inbox<P> {
    /// The next job, waiting for one; `None` once both queues are closed.
    async fn recv(&mut self) -> Option<Job<P>> {
        tokio::select! {
            Some(job) = self.commands.recv() => Some(Job::Execute(job)),
            Some(job) = self.appends.recv() => Some(Job::Append(job)),
            else => None,
        }
    }

    /// A job that is waiting already, if any.
    fn try_recv(&mut self) -> Option<Job<P>> {
        self.commands.try_recv().map(Job::Execute).or_else(|_| self.appends.try_recv().map(Job::Append)).ok()
    }
}

/// The writer's copy of the planner's model, ahead of the committed log while a batch is decided,
/// and the read model, which holds committed events only and which the writer brings forward
/// after each commit.
pub(crate) struct Models<P> {
    pub writer: P,
    pub read: Arc<RwLock<P>>,
    /// Events folded into the writer's copy but not yet into the read model.
    unpublished: Vec<RecordedEvent>,
    /// The mail those events cause, to be written in their transaction.
    outbox: Vec<OutboxRow>,
    /// This process's delivery worker, which takes the mail that the writer leases to it.
    pub handoff: MailHandoff,
}

impl<P: CommandPlanner> Models<P> {
    pub fn new(model: P) -> Self {
        Self {
            read: Arc::new(RwLock::new(model.clone())),
            writer: model,
            unpublished: Vec::new(),
            outbox: Vec::new(),
            handoff: MailHandoff::default(),
        }
    }

    /// The batch's mail, numbered from the planner's last mail id (and leased to this process's
    /// worker when it has room).
    fn take_outbox(&mut self, planner: &mut Planner) -> (Vec<OutboxRow>, Option<Handover>) {
        let mut outbox = std::mem::take(&mut self.outbox);
        let handover = self.handoff.prepare(&mut outbox, &mut planner.last_mail_id, planner.now);
        (outbox, handover)
    }

    /// Folds this process's own new events; each one's mail is computed against the state just after it.
    fn fold(&mut self, events: &[RecordedEvent]) {
        for event in events {
            let mail = self.writer.fold_with_mail(event);
            self.outbox.extend(mail.into_iter().map(|mail| OutboxRow::new(event, mail)));
        }
        self.unpublished.extend_from_slice(events);
    }

    /// After a commit: what the writer folded becomes visible to readers.
    fn publish(&mut self) {
        let mut read = self.read.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        read.advance(&self.unpublished);
        self.unpublished.clear();
    }

    /// After a failed batch: the writer's copy went ahead of the log; start again from the read model.
    fn reset(&mut self) {
        self.writer = self.read.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        self.unpublished.clear();
        self.outbox.clear();
    }
}

/// Takes everything that is waiting (up to `MAX_BATCH`), commits it as one transaction, answers each caller.
pub(crate) async fn run<B: WriteBackend, P: CommandPlanner>(
    backend: B,
    db: Database,
    mut models: Option<Models<P>>,
    mut jobs: Inbox<P>,
    committed: Arc<watch::Sender<i64>>,
    appended: Arc<AtomicU64>,
) {
    let mut tip = Tip::default();
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Some(job) => batch.push(job),
                None => break,
            }
        }
        #[cfg(feature = "testing")]
        for job in &batch {
            if let Job::Execute(job) = job {
                P::on_take(&job.command);
            }
        }
        let Some(outcome) = write_batch_less_panicked(&backend, &db, models.as_mut(), &mut batch, &mut tip).await
        else {
            continue; // every job of the batch panicked, and was answered
        };
        match outcome {
            Ok(Committed { results, head, last_mail_id, handover }) => {
                if let Some(models) = models.as_mut() {
                    models.publish();
                }
                if let Some(handover) = handover {
                    handover.deliver();
                }
                super::announce_commit(&committed, head.position);
                tip.left = Some((head, last_mail_id));
                let written: usize = results.iter().flatten().map(|w| w.events.len()).sum();
                appended.fetch_add(written as u64, Ordering::Relaxed);
                for (job, result) in batch.into_iter().zip(results) {
                    answer(job, result);
                }
            }
            Err(error) => {
                if let Some(models) = models.as_mut() {
                    models.reset();
                }
                tip.left = None;
                let error = StoreError::from(error);
                tracing::error!(%error, jobs = batch.len(), "a batch failed; nothing of it was written");
                if error.is_unavailable() {
                    // The jobs already waiting would each wait out the pool's timeout again for
                    // the same unreachable database: they get its answer (503) now.
                    while let Some(job) = jobs.try_recv() {
                        batch.push(job);
                    }
                }
                for job in batch {
                    answer(job, Err(JobError::Store(error.clone())));
                }
            }
        }
    }
}

/// Why a batch was not written.
enum BatchError {
    Database(sqlx::Error),
    /// Job `job` panicked while its events were folded into the writer's model, which may now hold
    /// part of them; the transaction is abandoned.
    FoldPanicked {
        job: usize,
        message: String,
    },
}

impl From<sqlx::Error> for BatchError {
    fn from(error: sqlx::Error) -> Self {
        BatchError::Database(error)
    }
}

/// Runs one job's planning step; a panic in it (logged here) becomes an error with its message.
/// `AssertUnwindSafe` holds because nothing half-changed is used afterwards: deciding reads the
/// writer's state only, and after a panic while folding the caller resets the model
/// (`BatchError::FoldPanicked`).
fn unwind_guard<T>(step: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(step)).map_err(|panic| {
        let message = super::panic_message(&*panic);
        tracing::error!(panic = %message, "a command panicked while it was decided; it alone fails");
        message
    })
}

/// Writes the batch; a job that panicked while it was folded is answered (500) and taken out of
/// the batch, which is planned again without it. `None` when no job is left.
async fn write_batch_less_panicked<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    db: &Database,
    mut models: Option<&mut Models<P>>,
    batch: &mut Vec<Job<P>>,
    tip: &mut Tip,
) -> Option<Result<Committed<P::Refusal>, sqlx::Error>> {
    while !batch.is_empty() {
        match write_batch(backend, db, models.as_deref_mut(), batch, tip).await {
            Ok(committed) => return Some(Ok(committed)),
            Err(BatchError::Database(error)) => return Some(Err(error)),
            Err(BatchError::FoldPanicked { job, message }) => {
                // The writer's model may hold part of that job (nothing of the batch was written):
                // it starts again from the read model.
                if let Some(models) = models.as_deref_mut() {
                    models.reset();
                }
                tip.left = None;
                answer(batch.remove(job), Err(JobError::Store(StoreError::Panicked(message))));
            }
        }
    }
    None
}

/// Why one job of a batch was not written (the others may have been).
enum JobError<R> {
    Store(StoreError),
    Rejected(R),
}

/// What a written job produced: its plans' outcomes and events.
struct Written {
    outcomes: Vec<AppendOutcome>,
    events: Vec<RecordedEvent>,
}

fn answer<P: CommandPlanner>(job: Job<P>, result: Result<Written, JobError<P::Refusal>>) {
    // A caller that went away still had its job committed; nobody to tell.
    match job {
        Job::Append(AppendJob { reply, .. }) => {
            let _ = reply.send(match result {
                Ok(written) => Ok(written.outcomes.into_iter().next().expect("an append has one outcome")),
                Err(JobError::Store(error)) => Err(error),
                Err(JobError::Rejected(_)) => unreachable!("raw appends are not decided"),
            });
        }
        Job::Execute(CommandJob { reply, .. }) => {
            let _ = reply.send(match result {
                Ok(written) => Ok(written.events),
                Err(JobError::Store(error)) => Err(ExecuteError::Store(error)),
                Err(JobError::Rejected(error)) => Err(ExecuteError::Rejected(error)),
            });
        }
    }
}

type Results<R> = Vec<Result<Written, JobError<R>>>;

/// A committed batch: each job's result, the head and last mail id after it, and the mail for
/// this process's worker.
struct Committed<R> {
    results: Results<R>,
    head: LogHead,
    last_mail_id: i64,
    handover: Option<Handover>,
}

/// What the writer knows of the log after its own last batch, so that while it is the only
/// process writing, the next batch can be written without taking the lock first.
struct Tip {
    /// The head and last mail id this writer's last batch left (none after a failure).
    left: Option<(LogHead, i64)>,
    /// Until then batches take the lock first: another process wrote lately.
    contended_until: Instant,
}

/// How long the writer takes the lock first after it found that another process had written.
const CONTENDED: Duration = Duration::from_secs(1);

impl Default for Tip {
    fn default() -> Self {
        Tip { left: None, contended_until: Instant::now() }
    }
}

impl Tip {
    /// The head to write the batch against without the lock, if that is worth trying: the writer
    /// alone of late, a backend that can, and jobs that need nothing from the database but the
    /// head (an idempotency key must be looked up).
    fn unlocked_base<B: WriteBackend, P: CommandPlanner>(&self, jobs: &[Job<P>]) -> Option<(LogHead, i64)> {
        let plain = jobs.iter().all(|job| match job {
            Job::Append(AppendJob { request, .. }) => request.idempotency_key.is_none(),
            Job::Execute(_) => true,
        });
        (B::WRITES_UNLOCKED && plain && Instant::now() >= self.contended_until).then(|| self.left.clone()).flatten()
    }
}

/// One batch. While this writer is the only one, written in one statement against the head it
/// left; otherwise (or when that finds the head moved) all jobs in one transaction under the lock,
/// written with one statement; if the database refuses that statement, the batch is redone one
/// job at a time, each under its own savepoint, so that one bad job does not abort the others.
async fn write_batch<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    db: &Database,
    mut models: Option<&mut Models<P>>,
    jobs: &[Job<P>],
    tip: &mut Tip,
) -> Result<Committed<P::Refusal>, BatchError> {
    if let (Some(base), Some(models)) = (tip.unlocked_base::<B, P>(jobs), models.as_deref_mut()) {
        match write_unlocked(backend, models, jobs, base).await? {
            Unlocked::Committed(committed) => return Ok(committed),
            Unlocked::HeadMoved => {
                tip.contended_until = Instant::now() + CONTENDED;
                models.reset();
            }
            Unlocked::Refused => models.reset(),
            Unlocked::NothingToWrite => {}
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
async fn write_at_once<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    db: &Database,
    mut models: Option<&mut Models<P>>,
    jobs: &[Job<P>],
) -> Result<Option<Committed<P::Refusal>>, BatchError> {
    let (tx, mut planner) = begin(backend, db, models.as_deref_mut(), jobs).await?;
    let head_before = planner.head.position;
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
            Err(error) => return Err(error.into()),
        }
    } else {
        backend.commit(tx).await?;
    }
    Ok(Some(Committed { results: batch.results, head: planner.head, last_mail_id: planner.last_mail_id, handover }))
}

/// How a batch written without the lock went.
enum Unlocked<R> {
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
/// batch left, then written in one statement that commits on its own, and writes only if the
/// head is still there (one round trip instead of three).
async fn write_unlocked<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    models: &mut Models<P>,
    jobs: &[Job<P>],
    (head, last_mail_id): (LogHead, i64),
) -> Result<Unlocked<P::Refusal>, BatchError> {
    let now = truncate_to_micros(Utc::now());
    let mut planner =
        Planner { head: head.clone(), versions: HashMap::new(), known_keys: HashMap::new(), last_mail_id, now };
    let mut batch = PlannedBatch::plan(&mut planner, Some(&mut *models), jobs)?;
    if planner.head.position == head.position {
        return Ok(Unlocked::NothingToWrite);
    }
    let rows = batch.rows(&mut planner, Some(models));
    match backend.write_if_head_is(&head, rows.as_rows(&planner.head)).await {
        Ok(true) => Ok(Unlocked::Committed(Committed {
            results: batch.results,
            head: planner.head,
            last_mail_id: planner.last_mail_id,
            handover: rows.handover,
        })),
        Ok(false) => Ok(Unlocked::HeadMoved),
        Err(error) if refused_by_database(&error) => Ok(Unlocked::Refused),
        Err(error) => Err(error.into()),
    }
}

/// A batch planned in memory, each job against the state that includes the earlier ones.
struct PlannedBatch<R> {
    units: Vec<Result<Vec<Plan>, JobError<R>>>,
    results: Results<R>,
}

/// What a planned batch writes: its events, idempotency keys and mail (and the mail's way to this
/// process's worker, once written).
struct BatchRows {
    events: Vec<RecordedEvent>,
    keys: Vec<(String, IdempotencyRecord)>,
    outbox: Vec<OutboxRow>,
    handover: Option<Handover>,
}

impl<R: Clone> PlannedBatch<R> {
    fn plan<P: CommandPlanner<Refusal = R>>(
        planner: &mut Planner,
        mut models: Option<&mut Models<P>>,
        jobs: &[Job<P>],
    ) -> Result<Self, BatchError> {
        let mut units: Vec<Result<Vec<Plan>, JobError<R>>> = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.iter().enumerate() {
            // Deciding reads the model only: a panic there fails the job and the batch goes on.
            let unit = unwind_guard(|| plan_job(planner, models.as_deref(), job))
                .unwrap_or_else(|message| Err(JobError::Store(StoreError::Panicked(message))));
            if let Ok(plans) = &unit {
                unwind_guard(|| accept(planner, models.as_deref_mut(), plans))
                    .map_err(|message| BatchError::FoldPanicked { job: index, message })?;
            }
            units.push(unit);
        }
        let results = units
            .iter()
            .map(|unit| match unit {
                Ok(plans) => Ok(Written::of(plans)),
                Err(error) => Err(error.clone_for_answer()),
            })
            .collect();
        Ok(PlannedBatch { units, results })
    }

    /// Takes the rows out of the plans, and the mail they cause out of the writer's model.
    fn rows<P: CommandPlanner>(&mut self, planner: &mut Planner, models: Option<&mut Models<P>>) -> BatchRows {
        let (events, keys) = rows(self.units.iter_mut().filter_map(|unit| unit.as_mut().ok()).flatten());
        let (outbox, handover) = models.map(|models| models.take_outbox(planner)).unwrap_or_default();
        BatchRows { events, keys, outbox, handover }
    }
}

impl BatchRows {
    fn as_rows<'r>(&'r self, head: &'r LogHead) -> Rows<'r> {
        Rows { events: &self.events, keys: &self.keys, head, outbox: &self.outbox }
    }
}

async fn write_one_by_one<B: WriteBackend, P: CommandPlanner>(
    backend: &B,
    db: &Database,
    mut models: Option<&mut Models<P>>,
    jobs: &[Job<P>],
) -> Result<Committed<P::Refusal>, BatchError> {
    let (mut tx, mut planner) = begin(backend, db, models.as_deref_mut(), jobs).await?;
    let mut results = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        results.push(write_one(backend, &mut tx, &mut planner, models.as_deref_mut(), (index, job)).await?);
    }
    // The mail of the jobs that were written, in their transaction.
    let mut handover = None;
    if let Some(models) = models {
        let (outbox, leased) = models.take_outbox(&mut planner);
        if !outbox.is_empty() {
            backend.write(&mut tx, Rows { events: &[], keys: &[], head: &planner.head, outbox: &outbox }).await?;
        }
        handover = leased;
    }
    backend.commit(tx).await?;
    Ok(Committed { results, head: planner.head, last_mail_id: planner.last_mail_id, handover })
}

/// The slow path: one job under its own savepoint; the model learns of it only once it is written.
async fn write_one<B: WriteBackend, P: CommandPlanner>(
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
    match backend.write(tx, Rows { events: &events, keys: &keys, head: &scratch.head, outbox: &[] }).await {
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
async fn begin<B: WriteBackend, P: CommandPlanner>(
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
    let keys = distinct(appends.iter().filter_map(|request| request.idempotency_key.as_ref()));
    // With a model, the model knows every stream's version.
    let streams = if models.is_some() { Vec::new() } else { streams };
    let (mut tx, HeadLock { head, last_mail_id, versions }) = backend.lock_head(&streams).await?;
    if let Some(models) = models {
        // Other processes' commits since this writer's last batch (the head tells whether there
        // are any, which saves a round trip when this process is the only writer).
        if head.position != models.writer.position() {
            super::commands::catch_up(&mut models.writer, db, Some(&mut models.unpublished))
                .await
                .map_err(into_sqlx)?;
        }
    }
    let known_keys = if keys.is_empty() { HashMap::new() } else { backend.idempotency_records(&mut tx, &keys).await? };
    Ok((tx, Planner { head, versions, known_keys, last_mail_id, now: truncate_to_micros(Utc::now()) }))
}

/// The model's catch-up reads through the store's own error type; the writer speaks sqlx.
fn into_sqlx(error: StoreError) -> sqlx::Error {
    match error {
        StoreError::Unavailable(inner) | StoreError::Database(inner) => {
            Arc::try_unwrap(inner).unwrap_or_else(|shared| sqlx::Error::Protocol(shared.to_string()))
        }
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// Plans one job: a raw append as it is; a command decided against the writer's model.
fn plan_job<P: CommandPlanner>(
    planner: &Planner,
    models: Option<&Models<P>>,
    job: &Job<P>,
) -> Result<Vec<Plan>, JobError<P::Refusal>> {
    let model = models.map(|models| &models.writer);
    match job {
        Job::Append(AppendJob { request, .. }) => {
            planner.plan(request, model).map(|plan| vec![plan]).map_err(JobError::Store)
        }
        Job::Execute(CommandJob { command, metadata, .. }) => {
            let model = model.ok_or(JobError::Store(StoreError::NoWorkflow))?;
            let events = model.decide(command).map_err(JobError::Rejected)?;
            // The lock and the caught-up model make the decision safe, so the streams take any version.
            let mut scratch = planner.clone();
            let mut plans = Vec::with_capacity(events.len());
            for planned in events {
                let new = planned.event.with_metadata(metadata.clone());
                let plan = scratch
                    .plan(&AppendRequest::new(planned.stream, ExpectedVersion::Any, vec![new]), Some(model))
                    .map_err(JobError::Store)?;
                scratch.accept(&plan);
                plans.push(plan);
            }
            Ok(plans)
        }
    }
}

/// The fast path's bookkeeping after a job is planned: the planner and the writer's model move on.
fn accept<P: CommandPlanner>(planner: &mut Planner, models: Option<&mut Models<P>>, plans: &[Plan]) {
    for plan in plans {
        planner.accept(plan);
    }
    if let Some(models) = models {
        for plan in plans {
            models.fold(&plan.events);
        }
    }
}

impl Written {
    fn of(plans: &[Plan]) -> Self {
        Written {
            outcomes: plans.iter().map(|plan| plan.outcome.clone()).collect(),
            events: plans.iter().flat_map(|plan| plan.events.iter().cloned()).collect(),
        }
    }
}

impl<R: Clone> JobError<R> {
    fn clone_for_answer(&self) -> Self {
        match self {
            JobError::Store(error) => JobError::Store(error.clone()),
            JobError::Rejected(error) => JobError::Rejected(error.clone()),
        }
    }
}

/// What the given plans write: their events and idempotency keys (taken out of the plans).
fn rows<'p>(plans: impl Iterator<Item = &'p mut Plan>) -> (Vec<RecordedEvent>, Vec<(String, IdempotencyRecord)>) {
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
    /// The last mail id given out, the batch's included.
    last_mail_id: i64,
    now: DateTime<Utc>,
}

impl Planner {
    fn plan<P: CommandPlanner>(&self, request: &AppendRequest, model: Option<&P>) -> Result<Plan, StoreError> {
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
        let current = self
            .versions
            .get(&request.stream)
            .copied()
            .or_else(|| model.and_then(|model| model.version_of(&request.stream)))
            .unwrap_or(0);
        if !request.expected.admits(current) {
            return Err(StoreError::Conflict {
                stream: request.stream.clone(),
                expected: request.expected,
                actual: current,
            });
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
        let key = request
            .idempotency_key
            .clone()
            .zip(fingerprint)
            .map(|(key, fingerprint)| (key, IdempotencyRecord { fingerprint, outcome: outcome.clone() }));
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
