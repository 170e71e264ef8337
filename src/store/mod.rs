//! The append-only event log: one table of events chained by SHA-256, on SQLite or PostgreSQL.
//!
//! Every append goes through one writer task per process (see `writer`), which takes the lock on the
//! log head, so positions are contiguous and assigned in commit order on both backends.

mod append;
mod backend;
mod canonical;
mod commands;
mod cursor;
mod error;
pub mod event;
mod feed;
mod idempotency;
mod import;
mod moment;
mod outbox;
mod planner;
mod selection;
mod snapshots;
mod tasks;
mod url;
mod verify;
mod webhooks;
mod writer;

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, watch};

pub use append::{AppendOutcome, AppendRequest, ExpectedVersion, LogHead};
pub use commands::{Commands, ExecuteError, Executed};
pub use cursor::LogCursor;
pub use error::StoreError;
pub use event::{Metadata, NewEvent, RecordedEvent, GENESIS_HASH};
pub use feed::{LogFeed, ReplicaStatus};
pub use idempotency::{CommandKey, KeptAnswer, KEY_LIFETIME};
pub use import::ImportError;
pub use moment::Moment;
pub use outbox::{message_id, MailState, OutboxMail, MAIL_LEASE};
pub use planner::{CommandPlanner, NewDelivery, NewMail, NoCommands, PlannedEvent};
pub use selection::{EventSelection, ExportFormat, SelectedEvents};
pub use snapshots::{Snapshots, StoredSnapshot, SNAPSHOTS_KEPT};
pub use url::DatabaseUrl;
pub use verify::{ChainCheck, ChainWalk, VerifyProblem, VerifyReport};
pub use webhooks::{DeliveryState, WebhookDelivery, WEBHOOK_LEASE};

use backend::{Database, LogBackend};
use commands::catch_up;
pub(crate) use tasks::panic_message;
use tasks::TaskWatch;

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
    appends: mpsc::Sender<writer::AppendJob>,
    committed: watch::Receiver<i64>,
    /// Events this process's writer has committed since it started.
    appended: Arc<AtomicU64>,
    /// The writer's way to this process's delivery worker (with a planner only: mail needs one).
    handoff: Option<outbox::MailHandoff>,
    /// Leases lost with claims or commits whose outcome is unknown (shared with the handoff).
    lost_leases: outbox::LostLeases,
    /// Which background tasks stopped (see `TaskWatch`).
    tasks: TaskWatch,
    /// Held by the handles only: when the last one is dropped, the background tasks stop.
    alive: Arc<watch::Sender<()>>,
}

impl EventStore {
    /// Connects, checks the schema version, applies or requires migrations, and starts the writer,
    /// which takes raw appends only.
    pub async fn open(url: &DatabaseUrl, migrations: Migrations) -> Result<Self, StoreError> {
        Ok(Self::start::<NoCommands>(Self::connect(url, migrations).await?, None).await?.0)
    }

    /// Like `open`, with a planner for commands: `empty` (a model before any event) is brought up
    /// to the whole log first. The answer's [`Commands`] runs commands through the writer and
    /// reads the published model.
    pub async fn open_with_planner<P: CommandPlanner>(
        url: &DatabaseUrl,
        migrations: Migrations,
        empty: P,
    ) -> Result<(Self, Commands<P>), StoreError> {
        Self::open_with_planner_from(url, migrations, |_| async { Ok(empty) }).await
    }

    /// Like `open_with_planner`, starting from the model that `starting` chooses with the stored
    /// snapshots at hand (a model restored from one, or an empty one); only the log beyond its
    /// position is folded.
    pub async fn open_with_planner_from<P: CommandPlanner, F: Future<Output = Result<P, StoreError>>>(
        url: &DatabaseUrl,
        migrations: Migrations,
        starting: impl FnOnce(Snapshots) -> F,
    ) -> Result<(Self, Commands<P>), StoreError> {
        let db = Self::connect(url, migrations).await?;
        let model = starting(Snapshots { db: db.clone() }).await?;
        let (store, commands) = Self::start(db, Some(model)).await?;
        Ok((store, commands.expect("a planner was given")))
    }

    async fn connect(url: &DatabaseUrl, migrations: Migrations) -> Result<Database, StoreError> {
        let db = Database::connect(url, migrations).await?;
        db.prepare_schema(migrations).await?;
        Ok(db)
    }

    async fn start<P: CommandPlanner>(
        db: Database,
        start: Option<P>,
    ) -> Result<(Self, Option<Commands<P>>), StoreError> {
        let models = match start {
            Some(mut model) => {
                catch_up(&mut model, &db, None).await?;
                Some(writer::Models::new(model))
            }
            None => None,
        };
        let handoff = models.as_ref().map(|models| models.handoff.clone());
        let lost_leases = handoff.as_ref().map(|handoff| handoff.lost.clone()).unwrap_or_default();
        let head = db.head().await?;
        let (committed_tx, committed) = watch::channel(head.position);
        let committed_tx = Arc::new(committed_tx);
        let (appends, appends_rx) = mpsc::channel(writer::QUEUE_DEPTH);
        let (command_jobs, commands_rx) = mpsc::channel(writer::QUEUE_DEPTH);
        let commands =
            models.as_ref().map(|models| Commands { jobs: command_jobs, model: models.read.clone(), db: db.clone() });
        let (alive, alive_rx) = watch::channel(());
        let appended = Arc::new(AtomicU64::new(0));
        // This process's writer, as named in its commit notifications.
        let origin = uuid::Uuid::new_v4().to_string();
        let tasks = TaskWatch::new();
        let inbox = writer::Inbox { appends: appends_rx, commands: commands_rx };
        let writer = backend::dispatch!(&db, backend => {
            writer::run(backend.writer(&origin), db.clone(), models, inbox, committed_tx.clone(), appended.clone())
                .boxed()
        });
        tasks.spawn("writer", writer);
        db.start_commit_listener(&origin, committed_tx, alive_rx).await;
        let store = Self { db, appends, committed, appended, handoff, lost_leases, tasks, alive: Arc::new(alive) };
        Ok((store, commands))
    }

    /// The fresh mail of this process's writer, for its delivery worker: from now on the writer
    /// writes the mail of each batch leased to this receiver's holder (when it has room) and hands
    /// it over after the commit. One worker per process; a later call takes over.
    pub fn fresh_mail(&self) -> Option<mpsc::Receiver<OutboxMail>> {
        self.handoff.as_ref().map(outbox::MailHandoff::receiver)
    }

    /// Spawns a task that serves this store (a follower of the log), watched like the writer: if
    /// it panics, readiness names it (see `stopped_tasks`).
    pub fn spawn_watched(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(name, task);
    }

    /// A way to wait for the log to move and read what is new, which does not keep the store
    /// open: it ends when the last handle of the store is dropped.
    pub fn feed(&self) -> LogFeed {
        LogFeed::new(self.db.clone(), self.committed.clone(), self.alive.subscribe(), None)
    }

    /// Like `feed`, reading the events from the hot standby at `url` while it lags at most a
    /// second behind what this process knows the primary holds (polled, since standbys deliver no
    /// NOTIFY), and from the primary otherwise. `status` tells how far behind it is.
    pub async fn feed_from_standby(&self, url: &DatabaseUrl) -> Result<(LogFeed, Arc<ReplicaStatus>), StoreError> {
        if !matches!(url, DatabaseUrl::Postgres(_)) {
            return Err(StoreError::UnsupportedUrl(format!("{url} (a read database must be a PostgreSQL standby)")));
        }
        let replica = feed::Replica::new(Database::connect(url, Migrations::RequireCurrent).await?);
        let status = replica.status.clone();
        Ok((LogFeed::new(self.db.clone(), self.committed.clone(), self.alive.subscribe(), Some(replica)), status))
    }

    /// Appends one stream's events. Concurrent calls are committed together (group commit), each
    /// getting its own outcome or error.
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        if request.events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        let (reply, outcome) = oneshot::channel();
        self.appends.send(writer::AppendJob { request, reply }).await.map_err(|_| StoreError::Closed)?;
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

    /// Walks the whole chain: contiguous positions, stream versions, hashes and the stored head.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        verify::verify(self, &mut verify::NoCheck).await
    }

    /// Like `verify`, with `check` shown every event as the walk accepts it (the projections' half).
    pub async fn verify_with(&self, check: &mut impl ChainCheck) -> Result<VerifyReport, StoreError> {
        verify::verify(self, check).await
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

    /// The 32-byte secret called `name` that every process on this database shares: made at the
    /// first call on a new database (a race between processes keeps one), read after that.
    pub async fn shared_key(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut candidate = [0; 32];
        getrandom::getrandom(&mut candidate).expect("the system's random source");
        self.db.shared_key(name, &candidate).await
    }

    /// The stored snapshots of the model.
    pub fn snapshots(&self) -> Snapshots {
        Snapshots { db: self.db.clone() }
    }

    /// Signals of committed positions, for the cursor's wake-ups.
    fn commit_signal(&self) -> watch::Receiver<i64> {
        self.committed.clone()
    }
}

/// Raises the process's signal of committed positions (never lowers it: announcements from the
/// writer and from other processes may arrive out of order).
fn announce_commit(committed: &watch::Sender<i64>, position: i64) {
    committed.send_if_modified(|known| {
        let newer = position > *known;
        if newer {
            *known = position;
        }
        newer
    });
}
