//! The application: the one way a command runs. The API, the web pages, sign-in, the command line
//! and the scheduler say who acts (an [`Origin`]) and what they ask (a [`Command`]);
//! [`App::execute`] turns the origin into the domain's context and the log's metadata, in one
//! vocabulary, keeps auditors from changing anything, and hands the command to the store's
//! writer, which decides it under the log-head lock through this layer's planner.

pub mod mail_links;
mod planner;
pub mod scheduler;
pub mod simulate;

use std::{
    net::IpAddr,
    sync::{atomic::Ordering, Arc},
};

use chrono::{DateTime, Utc};

pub use planner::Decision;

use crate::{
    domain::{decide, Actor, Command, Context, DomainError, IdSource, State, TokenId, UserId},
    projections::{
        snapshot::{Sealer, SnapshotStats},
        DomainModel, Projections,
    },
    store::{
        CommandKey, Commands, DatabaseUrl, EventStore, ExecuteError, Executed, Metadata, Migrations, RecordedEvent,
        ReplicaStatus, StoreError, VerifyReport,
    },
    workflow::Workflow,
};

/// An authenticated person, as `auth` found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub via: Via,
}

/// How they proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    LoginToken,
    ApiToken(TokenId),
}

/// Who a command comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A signed-in person (the API or the web pages), with the call's id and address.
    Person { principal: Principal, request_id: Option<String>, client_address: Option<IpAddr> },
    /// A person's own sign-in, recording their profile and the roles their login token carries.
    SignIn { user: UserId },
    /// `roleledger` on the command line: the only actor exempt from the own-benefit rule.
    CommandLine,
    /// The scheduler: expiries, reminders, ending notices.
    Scheduler,
}

impl Origin {
    /// The name the log's metadata gives the actor.
    fn metadata_actor(&self) -> String {
        match self {
            Origin::Person { principal, .. } => principal.user.to_string(),
            Origin::SignIn { user } => user.to_string(),
            Origin::CommandLine => "command-line".into(),
            Origin::Scheduler => "expiry".into(),
        }
    }

    fn actor(&self) -> Actor {
        match self {
            Origin::Person { principal, .. } => Actor::User(principal.user.clone()),
            Origin::SignIn { user } => Actor::User(user.clone()),
            Origin::CommandLine | Origin::Scheduler => Actor::CommandLine,
        }
    }

    fn metadata(&self) -> Metadata {
        let (correlation_id, client_address) = match self {
            Origin::Person { request_id, client_address, .. } => {
                (request_id.clone().filter(|id| !id.is_empty()), client_address.map(|address| address.to_string()))
            }
            _ => (None, None),
        };
        Metadata { actor: Some(self.metadata_actor()), correlation_id, causation_id: None, client_address }
    }

    /// The decision context at `now`: who acts and, with an API token someone else made, its creator.
    fn context(&self, state: &State, now: DateTime<Utc>) -> Context {
        let token_creator = match self {
            Origin::Person { principal: Principal { via: Via::ApiToken(token), .. }, .. } => {
                state.api_token(token).and_then(|t| t.created_by.user()).map(UserId::known)
            }
            _ => None,
        };
        Context::new(self.actor(), now, IdSource::Random).with_token_creator(token_creator)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The rules said no; nothing was written.
    #[error("{0}")]
    Rejected(DomainError),
    /// An auditor who is not also an administrator asked for a change.
    #[error("auditors change nothing")]
    ReadOnly,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ExecuteError<DomainError>> for AppError {
    fn from(error: ExecuteError<DomainError>) -> Self {
        match error {
            ExecuteError::Rejected(refusal) => AppError::Rejected(refusal),
            ExecuteError::Store(error) => AppError::Store(error),
        }
    }
}

/// The log, the commands run through its writer, and this process's projections. Cheap to clone.
#[derive(Clone)]
pub struct App {
    store: EventStore,
    commands: Commands<DomainModel>,
    projections: Projections,
    standby: Option<Arc<ReplicaStatus>>,
    /// Snapshots are read, checked (and with `keep_snapshots` made) with this, when a key is given.
    sealer: Option<Arc<Sealer>>,
    snapshot_stats: Arc<SnapshotStats>,
}

impl App {
    /// Opens the log (see `EventStore::open`), folds it into the projections under `workflow`,
    /// and keeps them up with other processes' commits.
    pub async fn open(url: &DatabaseUrl, migrations: Migrations, workflow: Arc<Workflow>) -> Result<App, StoreError> {
        Self::open_with_snapshots(url, None, migrations, workflow, None).await
    }

    /// Like `open`, starting from the newest valid snapshot sealed with `snapshot_key` (when given
    /// and one is valid): only the log beyond it is folded. Other processes' commits are followed
    /// on the hot standby `standby` when given (see `EventStore::feed_from_standby`); writes, and
    /// the start's fold, go to `url`.
    pub async fn open_with_snapshots(
        url: &DatabaseUrl,
        standby: Option<&DatabaseUrl>,
        migrations: Migrations,
        workflow: Arc<Workflow>,
        snapshot_key: Option<Vec<u8>>,
    ) -> Result<App, StoreError> {
        let sealer = snapshot_key.map(|key| Arc::new(Sealer::new(key, workflow.clone())));
        let snapshot_stats = Arc::new(SnapshotStats::default());
        let (restoring, stats) = (sealer.clone(), snapshot_stats.clone());
        let (store, commands) = EventStore::open_with_planner_from(url, migrations, |snapshots| async move {
            let restored = match restoring {
                Some(sealer) => sealer.newest_valid(&snapshots).await?,
                None => None,
            };
            let loaded_at = restored.as_ref().map_or(0, DomainModel::position);
            stats.loaded_at.store(loaded_at, Ordering::Relaxed);
            stats.newest.store(loaded_at, Ordering::Relaxed);
            Ok(restored.unwrap_or_else(|| DomainModel::new(workflow)))
        })
        .await?;
        let projections = Projections::new(commands.model().clone());
        // Nothing but this process's writer moves the model before the follower starts.
        let loaded_at = snapshot_stats.loaded_at.load(Ordering::Relaxed);
        let folded = projections.position() - loaded_at;
        snapshot_stats.folded_at_start.store(folded, Ordering::Relaxed);
        // Debug: the command line opens the log too, and prints nothing but its answer.
        tracing::debug!(snapshot_position = loaded_at, folded, "the read model is built");
        let (feed, standby) = match standby {
            Some(standby) => {
                let (feed, status) = store.feed_from_standby(standby).await?;
                (feed, Some(status))
            }
            None => (store.feed(), None),
        };
        projections.follow(&store, feed);
        Ok(App { store, commands, projections, standby, sealer, snapshot_stats })
    }

    /// Stores a snapshot of the read model every `every` events from now on (with a snapshot key
    /// only: see `open_with_snapshots`).
    pub fn keep_snapshots(&self, every: u64) {
        if let Some(sealer) = &self.sealer {
            self.projections.keep_snapshots(&self.store, sealer.clone(), every, self.snapshot_stats.clone());
        }
    }

    /// Where the start began and what this process knows of snapshots (for `/metrics`).
    pub fn snapshot_stats(&self) -> &SnapshotStats {
        &self.snapshot_stats
    }

    /// How far the standby that this process follows is behind (with `--read-database`).
    pub fn standby(&self) -> Option<&ReplicaStatus> {
        self.standby.as_deref()
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn projections(&self) -> &Projections {
        &self.projections
    }

    /// Walks the whole chain and compares the projections, and the newest valid snapshot, with a
    /// fresh fold of the log.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let snapshot = match &self.sealer {
            Some(sealer) => sealer.newest_valid(&self.store.snapshots()).await?,
            None => None,
        };
        self.projections.verify(&self.store, snapshot).await
    }

    /// Reads the model as of the last commit this process knows of (its own commits are there as
    /// soon as `execute` returns).
    pub fn read_model<R>(&self, read: impl FnOnce(&DomainModel) -> R) -> R {
        self.projections.read(read)
    }

    /// Decides and records `command` as `origin` says, now.
    pub async fn execute(&self, origin: Origin, command: Command) -> Result<Vec<RecordedEvent>, AppError> {
        self.execute_at(origin, command, Utc::now()).await
    }

    /// Like `execute`, judged at `now` (the scheduler's pass names the moment it works for).
    pub async fn execute_at(
        &self,
        origin: Origin,
        command: Command,
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        Ok(self.execute_keyed(origin, command, now, None).await?.events)
    }

    /// Like `execute`, at most once per idempotency key: a repeat of the key with the same
    /// fingerprint (within `store::KEY_LIFETIME`) is not decided again and answers the events the
    /// first one wrote (`repeated`); with another fingerprint it is refused.
    pub async fn execute_once(&self, origin: Origin, command: Command, key: CommandKey) -> Result<Executed, AppError> {
        self.execute_keyed(origin, command, Utc::now(), Some(key)).await
    }

    async fn execute_keyed(
        &self,
        origin: Origin,
        command: Command,
        now: DateTime<Utc>,
        key: Option<CommandKey>,
    ) -> Result<Executed, AppError> {
        let (context, read_only) = self.read_model(|model| {
            let read_only = match &origin {
                Origin::Person { principal, .. } => model.state().changes_nothing(&principal.user, now),
                _ => false,
            };
            (origin.context(model.state(), now), read_only)
        });
        if read_only {
            return Err(AppError::ReadOnly);
        }
        self.run(context, command, origin.metadata(), key).await
    }

    /// Decides and records `command` in a context the caller chose (the tests' scenarios name
    /// their own clock and ids).
    #[cfg(feature = "testing")]
    pub async fn execute_in(
        &self,
        context: Context,
        command: Command,
        metadata: Metadata,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        Ok(self.run(context, command, metadata, None).await?.events)
    }

    async fn run(
        &self,
        context: Context,
        command: Command,
        metadata: Metadata,
        key: Option<CommandKey>,
    ) -> Result<Executed, AppError> {
        // PostgreSQL cannot keep U+0000 in JSON, and no name, reason or comment needs it: both
        // backends refuse it alike, here rather than in the writer, which is the bottleneck.
        if holds_nul(&serde_json::to_value(&command).unwrap_or_default()) {
            return Err(AppError::Rejected(DomainError::Invalid(
                "text may not contain the NUL character (U+0000)".into(),
            )));
        }
        Ok(self.commands.execute_once(Decision { context, command }, metadata, key).await?)
    }

    /// Whether `command` would change anything now, judged against this process's read model
    /// without writing (a refusal counts as a change: executing it reports the refusal).
    pub fn would_change(&self, origin: &Origin, command: &Command) -> bool {
        self.read_model(|model| {
            let context = origin.context(model.state(), Utc::now());
            !matches!(decide(model.state(), model.workflow(), &context, command.clone()), Ok(events) if events.is_empty())
        })
    }
}

/// Whether any text in `value` holds U+0000.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}
