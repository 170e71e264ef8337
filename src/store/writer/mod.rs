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
//!
//! A writer without a model (raw appends only) knows the versions of the streams it read under
//! the lock or wrote itself (`Tip::versions`), as of the head it left: while the head is still
//! there they are still the streams' versions, so it may write unlocked the appends to those
//! streams, and those that expect a new stream (`NoStream`), planned at version 0; if such a
//! stream exists after all, the unique (stream, version) index refuses the statement, nothing is
//! written, and the batch goes under the lock, which answers the conflict.

mod batch;
mod plan;

use std::sync::atomic::{AtomicU64, Ordering};
use std::{
    collections::HashMap,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot, watch};

use super::{
    backend::{Database, WriteBackend},
    event::RecordedEvent,
    outbox::{Handover, MailHandoff, OutboxRow},
    planner::CommandPlanner,
    webhooks::DeliveryRow,
    AppendOutcome, AppendRequest, CommandKey, ExecuteError, LogHead, Metadata, StoreError,
};
use batch::write_batch;
use plan::{Plan, Planner};

/// How many jobs may wait for the writer before callers wait to enqueue.
pub(crate) const QUEUE_DEPTH: usize = 8192;
/// The most jobs committed in one transaction.
const MAX_BATCH: usize = 512;
/// How long a batch may take, from taking a connection to its commit's answer, before it is
/// abandoned as of unknown outcome: more than the pool's acquire timeout (5 s), so that a database
/// that refuses connections is told as unreachable, and far more than a batch of `MAX_BATCH` takes.
const BATCH_DEADLINE: Duration = Duration::from_secs(8);

/// Events that the caller made: checked against the stream's expected version only.
pub(crate) struct AppendJob {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// A command, decided here under the lock against the planner's model.
pub(crate) struct CommandJob<P: CommandPlanner> {
    pub command: P::Command,
    pub metadata: Metadata,
    /// Recorded with the command's events, in their transaction; a command whose key was recorded
    /// before is not decided again.
    pub key: Option<CommandKey>,
    pub reply: oneshot::Sender<Result<Done, ExecuteError<P::Refusal>>>,
}

/// What the writer did with a command.
pub(crate) enum Done {
    /// Decided now: the events it wrote.
    Wrote(Vec<RecordedEvent>),
    /// Its key was recorded before with the same fingerprint: nothing was decided; where the
    /// first one's events are.
    Repeated(AppendOutcome),
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
    /// The webhook deliveries they cause, likewise.
    deliveries: Vec<DeliveryRow>,
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
            deliveries: Vec::new(),
            handoff: MailHandoff::default(),
        }
    }

    /// The batch's mail, numbered from the planner's last mail id (and leased to this process's
    /// worker when it has room), and its webhook deliveries.
    fn take_outbox(&mut self, planner: &mut Planner) -> Outbox {
        let mut mail = std::mem::take(&mut self.outbox);
        let handover = self.handoff.prepare(&mut mail, &mut planner.last_mail_id, planner.now);
        Outbox { mail, deliveries: std::mem::take(&mut self.deliveries), handover }
    }

    /// Folds this process's own new events; each one's mail is computed against the state just
    /// after it, its webhook deliveries against the state just before it.
    fn fold(&mut self, events: &[RecordedEvent]) {
        for event in events {
            let deliveries = self.writer.deliveries_for(event);
            self.deliveries.extend(deliveries.into_iter().map(|delivery| DeliveryRow::new(event, delivery)));
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
        self.deliveries.clear();
    }
}

/// What a batch's events cause, written in their transaction: mail (and its way to this
/// process's worker, once written) and webhook deliveries.
#[derive(Default)]
pub(crate) struct Outbox {
    pub mail: Vec<OutboxRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub handover: Option<Handover>,
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
        #[cfg(feature = "testing")]
        let outcome = lose_commit_answer_if_asked(outcome, &batch);
        match outcome {
            Ok(Committed { results, head, last_mail_id, handover, base, versions }) => {
                if let Some(models) = models.as_mut() {
                    models.publish();
                }
                if let Some(handover) = handover {
                    handover.deliver();
                }
                super::announce_commit(&committed, head.position);
                backend.announce(head.position);
                // A model knows every stream's version: the writer keeps them only without one.
                let versions = if models.is_some() { HashMap::new() } else { versions };
                tip.learn(&base, versions, (head, last_mail_id));
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
                tip.forget();
                tracing::error!(%error, jobs = batch.len(), "a batch failed: not written, or its commit went unanswered");
                if let Some(unreachable) = unreachable(&error) {
                    // The jobs already waiting would each wait out the pool's timeout again for
                    // the same unreachable database: they get its answer (503) now.
                    while let Some(job) = jobs.try_recv() {
                        answer(job, Err(JobError::Store(unreachable.clone())));
                    }
                }
                for job in batch {
                    answer(job, Err(JobError::Store(error.clone())));
                }
            }
        }
    }
}

/// What the jobs waiting behind a failed batch are told, when its database is unreachable.
fn unreachable(error: &StoreError) -> Option<StoreError> {
    match error {
        StoreError::CommitOutcomeUnknown(inner) => Some(StoreError::Unavailable(inner.clone())),
        error if error.is_unavailable() => Some(error.clone()),
        _ => None,
    }
}

/// The `testing` hook `CommandPlanner::loses_commit_answer`: a committed batch in which such a
/// command wrote events becomes the error that a connection lost during its commit gives (its
/// repeat, which writes nothing, is answered).
#[cfg(feature = "testing")]
fn lose_commit_answer_if_asked<P: CommandPlanner, R>(
    outcome: Result<Committed<R>, StoreError>,
    batch: &[Job<P>],
) -> Result<Committed<R>, StoreError> {
    let asked = |committed: &Committed<R>| {
        batch.iter().zip(&committed.results).any(|(job, result)| {
            matches!(job, Job::Execute(job) if P::loses_commit_answer(&job.command))
                && result.as_ref().is_ok_and(|written| !written.events.is_empty())
        })
    };
    match outcome {
        Ok(committed) if asked(&committed) => {
            if let Some(handover) = committed.handover {
                handover.outcome_unknown();
            }
            let lost =
                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "test hook: the commit's answer was lost");
            Err(StoreError::of_commit(sqlx::Error::Io(lost)))
        }
        other => other,
    }
}

/// Why a batch was not written (or may not have been).
enum BatchError {
    Database(sqlx::Error),
    /// Its commit failed: see `StoreError::of_commit`.
    Commit(sqlx::Error),
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
) -> Option<Result<Committed<P::Refusal>, StoreError>> {
    while !batch.is_empty() {
        let written = tokio::time::timeout(BATCH_DEADLINE, write_batch(backend, db, models.as_deref_mut(), batch, tip));
        // Abandoned at the deadline, the batch may have been committed or not: its callers are
        // told so (and retry with their keys), and the models start again from the log.
        let written = written.await.unwrap_or_else(|_| Err(BatchError::Commit(StoreError::no_answer(BATCH_DEADLINE))));
        match written {
            Ok(committed) => return Some(Ok(committed)),
            Err(BatchError::Database(error)) => return Some(Err(error.into())),
            Err(BatchError::Commit(error)) => return Some(Err(StoreError::of_commit(error))),
            Err(BatchError::FoldPanicked { job, message }) => {
                // The writer's model may hold part of that job (nothing of the batch was written):
                // it starts again from the read model.
                if let Some(models) = models.as_deref_mut() {
                    models.reset();
                }
                tip.forget();
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

/// What a written job produced: its plans' outcomes and events, and, for a repeat of a key, the
/// outcome recorded with it.
struct Written {
    outcomes: Vec<AppendOutcome>,
    events: Vec<RecordedEvent>,
    repeated: Option<AppendOutcome>,
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
                Ok(Written { repeated: Some(outcome), .. }) => Ok(Done::Repeated(outcome)),
                Ok(written) => Ok(Done::Wrote(written.events)),
                Err(JobError::Store(error)) => Err(ExecuteError::Store(error)),
                Err(JobError::Rejected(error)) => Err(ExecuteError::Rejected(error)),
            });
        }
    }
}

type Results<R> = Vec<Result<Written, JobError<R>>>;

/// A committed batch: each job's result, the head and last mail id after it, and the mail for
/// this process's worker; the head it was written on, and the versions of the streams it read or
/// wrote, as of its new head.
struct Committed<R> {
    results: Results<R>,
    head: LogHead,
    last_mail_id: i64,
    handover: Option<Handover>,
    base: LogHead,
    versions: HashMap<String, i64>,
}

/// What the writer knows of the log after its own last batch, so that while it is the only
/// process writing, the next batch can be written without taking the lock first.
struct Tip {
    /// The head and last mail id this writer's last batch left (none after a failure).
    left: Option<(LogHead, i64)>,
    /// Until then batches take the lock first: another process wrote lately.
    contended_until: Instant,
    /// Versions of streams as of the head `left` names: those the writer's batches read under the
    /// lock or wrote since the head last moved under another writer. Only a writer without a
    /// model keeps them (a model knows every stream's version).
    versions: HashMap<String, i64>,
}

/// The most stream versions a writer keeps; beyond, it forgets them all and learns them again.
const KNOWN_STREAMS: usize = 65_536;

/// How long the writer takes the lock first after it found that another process had written.
const CONTENDED: Duration = Duration::from_secs(1);

impl Default for Tip {
    fn default() -> Self {
        Tip { left: None, contended_until: Instant::now(), versions: HashMap::new() }
    }
}

impl Tip {
    /// The head to write the batch against without the lock, if that is worth trying: the writer
    /// alone of late, a backend that can, and jobs that need nothing from the database but the
    /// head (an idempotency key must be looked up).
    fn unlocked_base<B: WriteBackend, P: CommandPlanner>(&self, jobs: &[Job<P>]) -> Option<(LogHead, i64)> {
        let plain = jobs.iter().all(|job| job.key().is_none());
        (B::WRITES_UNLOCKED && plain && Instant::now() >= self.contended_until).then(|| self.left.clone()).flatten()
    }

    /// For a writer without a model: the version of each stream the batch appends to, as of the
    /// head `left` names, if the writer knows them all; a stream it does not know may be new only
    /// (`NoStream`), and is planned at version 0 (the unique index checks that guess).
    fn versions_for<P: CommandPlanner>(&self, jobs: &[Job<P>]) -> Option<HashMap<String, i64>> {
        let mut versions = HashMap::with_capacity(jobs.len());
        for job in jobs {
            let Job::Append(AppendJob { request, .. }) = job else { return None };
            let version = match self.versions.get(&request.stream) {
                Some(&version) => version,
                None if request.expected == super::ExpectedVersion::NoStream => 0,
                None => return None,
            };
            versions.entry(request.stream.clone()).or_insert(version);
        }
        Some(versions)
    }

    /// After a commit: the new head, and the stream versions the batch read or wrote, which join
    /// those known if it was written on the head this writer left (nobody wrote between).
    fn learn(&mut self, base: &LogHead, versions: HashMap<String, i64>, left: (LogHead, i64)) {
        let continued = self.left.as_ref().is_some_and(|(head, _)| head == base);
        if !continued || self.versions.len() + versions.len() > KNOWN_STREAMS {
            self.versions.clear();
        }
        self.versions.extend(versions);
        self.left = Some(left);
    }

    /// After a failure: nothing is known of the log any more.
    fn forget(&mut self) {
        self.left = None;
        self.versions.clear();
    }
}

impl Written {
    fn of(plans: &[Plan]) -> Self {
        Written {
            outcomes: plans.iter().map(|plan| plan.outcome.clone()).collect(),
            events: plans.iter().flat_map(|plan| plan.events.iter().cloned()).collect(),
            repeated: plans.iter().find(|plan| plan.repeated).map(|plan| plan.outcome.clone()),
        }
    }
}

impl<P: CommandPlanner> Job<P> {
    /// The idempotency key the job carries, if any.
    fn key(&self) -> Option<&String> {
        match self {
            Job::Append(AppendJob { request, .. }) => request.idempotency_key.as_ref(),
            Job::Execute(CommandJob { key, .. }) => key.as_ref().map(|key| &key.key),
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
