//! The append-only event log: one table of events chained by SHA-256, on SQLite or PostgreSQL.
//!
//! Every append goes through one writer task per process (see `writer`), which takes the lock on the
//! log head, so positions are contiguous and assigned in commit order on both backends.

mod backend;
mod canonical;
mod cursor;
mod error;
pub mod event;
mod history;
mod import;
mod model;
mod outbox;
mod selection;
mod url;
mod verify;
mod writer;

use std::{
    any::Any,
    fmt,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

pub use cursor::LogCursor;
pub use error::StoreError;
pub use event::{Metadata, NewEvent, RecordedEvent, GENESIS_HASH};
pub use history::Moment;
pub use import::ImportError;
pub use model::DomainModel;
pub use outbox::{message_id, MailState, OutboxMail, MAIL_LEASE};
pub use selection::{EventSelection, ExportFormat, SelectedEvents};
pub use url::DatabaseUrl;
pub use verify::{VerifyProblem, VerifyReport};

use backend::{Database, LogBackend};

use crate::{
    domain::{Command, Context, DomainError, Grant, GrantId, Subject},
    workflow::Workflow,
};

/// Why a domain command was not carried out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecuteError {
    /// The rules said no; nothing was written.
    #[error("{0}")]
    Rejected(DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the caller believes the stream's version to be; a mismatch is a conflict, never an overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (versions start at 1).
    Exact(i64),
}

impl ExpectedVersion {
    fn admits(self, current: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::Exact(version) => current == version,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream yet"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// A batch of events for one stream, appended all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// Repeating an append with the same key returns the first result and writes nothing.
    pub idempotency_key: Option<String>,
}

impl AppendRequest {
    pub fn new(stream: impl Into<String>, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self { stream: stream.into(), expected, events, idempotency_key: None }
    }

    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// Where an append landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    pub stream: String,
    pub first_position: i64,
    pub last_position: i64,
    /// The stream's version after the append.
    pub version: i64,
}

/// The grants as they stood at a moment, and the time at which their end dates were judged.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantsAsOf {
    pub judged_at: chrono::DateTime<chrono::Utc>,
    pub grants: Vec<Grant>,
}

/// The last event of the log: its position and hash (0 and the genesis hash when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogHead {
    pub position: i64,
    pub hash: String,
}

impl LogHead {
    pub fn empty() -> Self {
        LogHead { position: 0, hash: GENESIS_HASH.to_string() }
    }
}

/// Whether opening a store may change its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply pending migrations (the server at start, `roleledger migrate`).
    Apply,
    /// Refuse a schema that is not exactly the one this binary knows (read-only tools).
    RequireCurrent,
}

/// The event log. Cheap to clone; all clones share one writer task and one connection pool.
#[derive(Clone)]
pub struct EventStore {
    db: Database,
    jobs: mpsc::Sender<writer::Job>,
    committed: watch::Receiver<i64>,
    /// The domain state as of the last committed event this process knows of (with a workflow only).
    read_model: Option<Arc<RwLock<DomainModel>>>,
    /// Events this process's writer has committed since it started.
    appended: Arc<AtomicU64>,
    /// The writer's way to this process's delivery worker (with a workflow only: mail needs one).
    handoff: Option<outbox::MailHandoff>,
    /// Which background tasks stopped (see `TaskWatch`).
    tasks: TaskWatch,
    /// Held by the handles only: when the last one is dropped, the background tasks stop.
    _alive: Arc<watch::Sender<()>>,
}

/// The names of the store's background tasks that stopped. The writer and the read-model follower
/// end by themselves only when the last handle is dropped; any other end is a panic, after which
/// writes (or other processes' writes) no longer reach this process: readiness fails naming the
/// task, and the server stops so that its supervisor starts it afresh (`Application`).
#[derive(Clone)]
struct TaskWatch(Arc<watch::Sender<Vec<&'static str>>>);

impl TaskWatch {
    fn new() -> Self {
        TaskWatch(Arc::new(watch::channel(Vec::new()).0))
    }

    /// Spawns `task`, recording its name here if it panics.
    fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let stopped = self.0.clone();
        tokio::spawn(async move {
            if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                tracing::error!(task = name, panic = %panic_message(&*panic), "a background task stopped");
                stopped.send_modify(|names| names.push(name));
            }
        });
    }
}

/// The text a panic was raised with.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_string(),
        (None, Some(text)) => text.clone(),
        (None, None) => "a panic without a message".to_string(),
    }
}

/// How often the read model looks for commits that no signal announced (another process on SQLite).
const READ_MODEL_POLL: Duration = Duration::from_secs(1);

impl EventStore {
    /// Connects, checks the schema version, applies or requires migrations, and starts the writer.
    /// Without a workflow the store takes raw appends only.
    pub async fn open(url: &DatabaseUrl, migrations: Migrations) -> Result<Self, StoreError> {
        Self::start(url, migrations, None).await
    }

    /// Like `open`, and rebuilds the domain state from the whole log, so that commands can be
    /// decided (`execute`) and the state read (`read_model`).
    pub async fn open_with_workflow(
        url: &DatabaseUrl,
        migrations: Migrations,
        workflow: Arc<Workflow>,
    ) -> Result<Self, StoreError> {
        Self::start(url, migrations, Some(workflow)).await
    }

    async fn start(
        url: &DatabaseUrl,
        migrations: Migrations,
        workflow: Option<Arc<Workflow>>,
    ) -> Result<Self, StoreError> {
        let db = Database::connect(url, migrations).await?;
        db.prepare_schema(migrations).await?;
        let models = match workflow {
            Some(workflow) => Some(writer::Models::new(DomainModel::replay(workflow, &db).await?)),
            None => None,
        };
        let read_model = models.as_ref().map(|models| models.read.clone());
        let handoff = models.as_ref().map(|models| models.handoff.clone());
        let head = db.head().await?;
        let (committed_tx, committed) = watch::channel(head.position);
        let committed_tx = Arc::new(committed_tx);
        let (jobs, jobs_rx) = mpsc::channel(writer::QUEUE_DEPTH);
        let (alive, alive_rx) = watch::channel(());
        let appended = Arc::new(AtomicU64::new(0));
        // This process's writer, as named in its commit notifications.
        let origin = uuid::Uuid::new_v4().to_string();
        let tasks = TaskWatch::new();
        let writer = backend::dispatch!(&db, backend => {
            writer::run(backend.writer(&origin), db.clone(), models, jobs_rx, committed_tx.clone(), appended.clone())
                .boxed()
        });
        tasks.spawn("writer", writer);
        db.start_commit_listener(&origin, committed_tx, alive_rx.clone()).await;
        if let Some(read_model) = &read_model {
            let follower = follow_into_read_model(db.clone(), read_model.clone(), committed.clone(), alive_rx);
            tasks.spawn("follower", follower);
        }
        Ok(Self { db, jobs, committed, read_model, appended, handoff, tasks, _alive: Arc::new(alive) })
    }

    /// The fresh mail of this process's writer, for its delivery worker: from now on the writer
    /// writes the mail of each batch leased to this receiver's holder (when it has room) and hands
    /// it over after the commit. One worker per process; a later call takes over.
    pub fn fresh_mail(&self) -> Option<mpsc::Receiver<OutboxMail>> {
        self.handoff.as_ref().map(outbox::MailHandoff::receiver)
    }

    /// Decides a domain command under the log-head lock against the state that includes every
    /// committed event and the commands decided before it in the same batch; writes its events.
    pub async fn execute(
        &self,
        context: Context,
        command: Command,
        metadata: Metadata,
    ) -> Result<Vec<RecordedEvent>, ExecuteError> {
        // PostgreSQL cannot keep U+0000 in JSON, and no name, reason or comment needs it: both
        // backends refuse it alike, here rather than in the writer, which is the bottleneck.
        if holds_nul(&serde_json::to_value(&command).unwrap_or_default()) {
            return Err(ExecuteError::Rejected(DomainError::Invalid(
                "text may not contain the NUL character (U+0000)".into(),
            )));
        }
        let (reply, outcome) = oneshot::channel();
        let job = writer::Job::Execute { context, command, metadata, reply };
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    /// Reads the domain state as of the last commit this process knows of (its own commits are
    /// there as soon as `execute` returns).
    pub fn read_model<R>(&self, read: impl FnOnce(&DomainModel) -> R) -> Result<R, StoreError> {
        let model = self.read_model.as_ref().ok_or(StoreError::NoWorkflow)?;
        let model = model.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(read(&model))
    }

    /// Appends one stream's events. Concurrent calls are committed together (group commit), each
    /// getting its own outcome or error.
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        if request.events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        let (reply, outcome) = oneshot::channel();
        self.jobs.send(writer::Job::Append { request, reply }).await.map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    /// A stream's events from `from_version` on (versions start at 1).
    pub async fn read_stream(&self, stream: &str, from_version: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.db.read_stream(stream, from_version).await
    }

    /// Up to `limit` events after `after_position`, in position order.
    pub async fn read_page(&self, after_position: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.db.read_page(after_position, limit).await
    }

    /// Reads the whole log after `after_position` page by page, ending at its current end.
    pub fn read_all(&self, after_position: i64) -> LogCursor {
        LogCursor::new(self.clone(), after_position, false)
    }

    /// Reads the log after `after_position` and then waits for new events, forever.
    pub fn follow(&self, after_position: i64) -> LogCursor {
        LogCursor::new(self.clone(), after_position, true)
    }

    /// The events of a selection, in position order, read page by page.
    pub fn select(&self, selection: EventSelection) -> SelectedEvents {
        SelectedEvents::new(self, selection)
    }

    /// The grants (of `holder` only, when given) as they stood at a moment of the log: the first
    /// `take` of those `wanted`, in id order after `after`, from each grant's validity history (no
    /// replay; a page costs what it shows, not the size of the history). A position beyond the read
    /// model means its last position.
    pub async fn grants_as_of(
        &self,
        moment: Moment,
        holder: Option<&Subject>,
        after: Option<GrantId>,
        take: usize,
        wanted: impl Fn(&DomainModel, &Grant) -> bool,
    ) -> Result<GrantsAsOf, StoreError> {
        // End dates are judged at the moment's time: the time given, or the recorded time of
        // the event at the position.
        let (moment, judged_at) = match moment {
            Moment::Time(time) => (moment, time),
            Moment::Position(position) => {
                let position = position.min(self.read_model(DomainModel::position)?);
                match self.read_page(position - 1, 1).await?.first() {
                    Some(event) if position > 0 => (Moment::Position(position), event.recorded_at),
                    // Nothing had happened yet.
                    _ => return Ok(GrantsAsOf { judged_at: chrono::DateTime::UNIX_EPOCH, grants: Vec::new() }),
                }
            }
        };
        let grants = self.read_model(|model| {
            model.grants_as_of(moment, judged_at, holder, after, take, |grant| wanted(model, grant))
        })?;
        Ok(GrantsAsOf { judged_at, grants })
    }

    /// Writes an export (events exactly as recorded) into this store's log, which must be empty:
    /// all of it in one transaction, or nothing if an event does not follow the ones before it.
    pub async fn import<E>(
        &self,
        events: impl Iterator<Item = Result<RecordedEvent, E>>,
    ) -> Result<LogHead, ImportError<E>> {
        import::import(&self.db, events).await
    }

    pub async fn head(&self) -> Result<LogHead, StoreError> {
        self.db.head().await
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }

    /// Walks the whole chain: contiguous positions, stream versions, hashes and the stored head;
    /// and compares the projections (with a workflow) with a fresh fold of the log.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        verify::verify(self).await
    }

    /// The background tasks that stopped (none while all is well), in the order they stopped.
    pub fn stopped_tasks(&self) -> Vec<&'static str> {
        self.tasks.0.borrow().clone()
    }

    /// Waits until a background task stops, and names it.
    pub async fn task_stopped(&self) -> &'static str {
        let mut stopped = self.tasks.0.subscribe();
        // The sender lives as long as this handle.
        let names = stopped.wait_for(|names| !names.is_empty()).await.expect("the watch outlives its store");
        names[0]
    }

    /// Which backend this store runs on ("sqlite" or "postgres").
    pub fn backend_name(&self) -> &'static str {
        self.db.name()
    }

    /// The highest position this process knows to be committed: by its own writer, or by another
    /// process on the same PostgreSQL (heard through LISTEN/NOTIFY).
    pub fn known_committed_position(&self) -> i64 {
        *self.committed.borrow()
    }

    /// Events this process has appended since it started.
    pub fn events_appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// The position the read model has folded up to (None without a workflow).
    pub fn read_model_position(&self) -> Option<i64> {
        self.read_model(|model| model.position()).ok()
    }

    /// Signals of committed positions, for the cursor's wake-ups.
    fn commit_signal(&self) -> watch::Receiver<i64> {
        self.committed.clone()
    }
}

/// Raises the process's signal of committed positions (never lowers it: announcements from the
/// writer and from other processes may arrive out of order).
/// Whether any text in `value` holds U+0000.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

fn announce_commit(committed: &watch::Sender<i64>, position: i64) {
    committed.send_if_modified(|known| {
        let newer = position > *known;
        if newer {
            *known = position;
        }
        newer
    });
}

/// Brings the read model forward when another process commits (announced by NOTIFY on
/// PostgreSQL, found by polling the head otherwise). This process's own commits are published by
/// its writer before they are announced, so they cost no read here.
async fn follow_into_read_model(
    db: Database,
    read_model: Arc<RwLock<DomainModel>>,
    mut committed: watch::Receiver<i64>,
    mut alive: watch::Receiver<()>,
) {
    loop {
        // An announced commit names its position (this process's own are in the read model
        // already); only the poll, for what no signal announced, asks the database.
        let head = tokio::select! {
            _ = alive.changed() => return, // the last handle is gone
            _ = committed.changed() => *committed.borrow_and_update(),
            _ = tokio::time::sleep(READ_MODEL_POLL) => match db.head().await {
                Ok(head) => head.position,
                Err(error) => {
                    tracing::debug!(%error, "cannot read the log head; the read model waits");
                    continue;
                }
            },
        };
        let known = read_model.read().unwrap_or_else(|poisoned| poisoned.into_inner()).position();
        let mut after = known;
        while after < head {
            match db.read_page(after, 5_000).await {
                Ok(page) if !page.is_empty() => {
                    #[cfg(feature = "testing")]
                    page.iter()
                        .for_each(|event| crate::testing::panic_if_recorded(event, crate::testing::STOP_FOLLOWER));
                    after = page.last().map_or(after, |event| event.position);
                    read_model.write().unwrap_or_else(|poisoned| poisoned.into_inner()).advance(&page);
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the log; the read model waits");
                    break;
                }
            }
        }
    }
}
