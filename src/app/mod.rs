//! The application: the one way a command runs. The API, the web pages, sign-in, the command line
//! and the scheduler say who acts (an [`Origin`]) and what they ask (a [`Command`]);
//! [`App::execute`] turns the origin into the domain's context and the log's metadata, in one
//! vocabulary, keeps auditors from changing anything, and hands the command to the store's
//! writer, which decides it under the log-head lock.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::{
    domain::{decide, Actor, Command, Context, DomainError, IdSource, State, TokenId, UserId},
    store::{EventStore, ExecuteError, Metadata, RecordedEvent, StoreError},
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

impl From<ExecuteError> for AppError {
    fn from(error: ExecuteError) -> Self {
        match error {
            ExecuteError::Rejected(refusal) => AppError::Rejected(refusal),
            ExecuteError::Store(error) => AppError::Store(error),
        }
    }
}

#[derive(Clone)]
pub struct App {
    store: EventStore,
}

impl App {
    pub fn new(store: EventStore) -> App {
        App { store }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
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
        let (context, read_only) = self.store.read_model(|model| {
            let read_only = match &origin {
                Origin::Person { principal, .. } => model.state().changes_nothing(&principal.user, now),
                _ => false,
            };
            (origin.context(model.state(), now), read_only)
        })?;
        if read_only {
            return Err(AppError::ReadOnly);
        }
        Ok(self.store.execute(context, command, origin.metadata()).await?)
    }

    /// Whether `command` would change anything now, judged against this process's read model
    /// without writing (a refusal counts as a change: executing it reports the refusal).
    pub fn would_change(&self, origin: &Origin, command: &Command) -> Result<bool, StoreError> {
        self.store.read_model(|model| {
            let context = origin.context(model.state(), Utc::now());
            !matches!(decide(model.state(), model.workflow(), &context, command.clone()), Ok(events) if events.is_empty())
        })
    }
}
