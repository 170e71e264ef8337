//! The application: the one way a command runs. The API, the web pages, sign-in, the command line
//! and the scheduler say who acts (an [`Origin`]) and what they ask (a [`Command`]);
//! [`App::execute`] turns the origin into the domain's context and the log's metadata, in one
//! vocabulary, keeps auditors from changing anything, and hands the command to the store's
//! writer, which decides it under the log-head lock through this layer's planner.

pub mod mail_links;
mod planner;
pub mod scheduler;
pub mod simulate;

use std::{net::IpAddr, sync::Arc};

use chrono::{DateTime, Utc};

pub use planner::Decision;

use crate::{
    domain::{decide, Actor, Command, Context, DomainError, IdSource, State, TokenId, UserId},
    projections::{DomainModel, Projections},
    store::{
        Commands, DatabaseUrl, EventStore, ExecuteError, Metadata, Migrations, RecordedEvent, StoreError, VerifyReport,
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
}

impl App {
    /// Opens the log (see `EventStore::open`), folds it into the projections under `workflow`,
    /// and keeps them up with other processes' commits.
    pub async fn open(url: &DatabaseUrl, migrations: Migrations, workflow: Arc<Workflow>) -> Result<App, StoreError> {
        let (store, commands) = EventStore::open_with_planner(url, migrations, DomainModel::new(workflow)).await?;
        let projections = Projections::new(commands.model().clone());
        projections.follow(&store);
        Ok(App { store, commands, projections })
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn projections(&self) -> &Projections {
        &self.projections
    }

    /// Walks the whole chain and compares the projections with a fresh fold of the log.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.projections.verify(&self.store).await
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
        self.run(context, command, origin.metadata()).await
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
        self.run(context, command, metadata).await
    }

    async fn run(
        &self,
        context: Context,
        command: Command,
        metadata: Metadata,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        // PostgreSQL cannot keep U+0000 in JSON, and no name, reason or comment needs it: both
        // backends refuse it alike, here rather than in the writer, which is the bottleneck.
        if holds_nul(&serde_json::to_value(&command).unwrap_or_default()) {
            return Err(AppError::Rejected(DomainError::Invalid(
                "text may not contain the NUL character (U+0000)".into(),
            )));
        }
        Ok(self.commands.execute(Decision { context, command }, metadata).await?)
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
