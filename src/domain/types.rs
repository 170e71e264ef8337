//! Identifiers, who acts, and the decision context (time and ids come from the caller).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub use super::ids::{ScopeId, TeamId, UserId};
pub type RequestId = Uuid;
pub type GrantId = Uuid;
pub type TokenId = Uuid;

/// Who issues a command. `CommandLine` (`roleledger bootstrap-admin` and system jobs) is the only
/// actor exempt from the own-benefit rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    User(UserId),
    CommandLine,
}

impl Actor {
    pub fn user(&self) -> Option<&str> {
        match self {
            Actor::User(id) => Some(id.as_str()),
            Actor::CommandLine => None,
        }
    }

    pub fn is_user(&self, id: &str) -> bool {
        self.user() == Some(id)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user \"{id}\""),
            Actor::CommandLine => write!(f, "the command line"),
        }
    }
}

/// Who holds a grant: a user, or a team (whose members hold it while members).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    User(UserId),
    Team(TeamId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(id) => write!(f, "user \"{id}\""),
            Subject::Team(id) => write!(f, "team \"{id}\""),
        }
    }
}

/// Where new ids come from: explicit, so that `decide` stays a pure function.
#[derive(Debug)]
pub enum IdSource {
    /// `Uuid::from_u64_pair(seed, 0)`, then `(seed, 1)`, …: reproducible in tests and replays.
    Sequence { seed: u64, next: AtomicU64 },
    /// Random v4 ids, for the server.
    Random,
}

impl IdSource {
    pub fn sequence(seed: u64) -> IdSource {
        IdSource::Sequence { seed, next: AtomicU64::new(0) }
    }

    pub fn next_id(&self) -> Uuid {
        match self {
            IdSource::Sequence { seed, next } => Uuid::from_u64_pair(*seed, next.fetch_add(1, Ordering::Relaxed)),
            IdSource::Random => Uuid::new_v4(),
        }
    }
}

/// Everything a decision may depend on besides state, workflow and command.
#[derive(Debug)]
pub struct Context {
    pub actor: Actor,
    /// When the actor acts with an API token that someone else made for them: its creator, who
    /// counts as acting too for every own-benefit rule (SPEC "API tokens made for someone else").
    pub token_creator: Option<UserId>,
    pub now: DateTime<Utc>,
    pub ids: IdSource,
}

impl Context {
    pub fn new(actor: Actor, now: DateTime<Utc>, ids: IdSource) -> Context {
        Context { actor, token_creator: None, now, ids }
    }

    /// The same context, acting with an API token made by `creator` (ignored when the actor made it).
    pub fn with_token_creator(mut self, creator: Option<UserId>) -> Context {
        self.token_creator = creator.filter(|creator| !self.actor.is_user(creator));
        self
    }

    /// The people acting: the actor (unless the command line) and the creator of their token.
    pub fn acting_users(&self) -> impl Iterator<Item = &str> {
        self.actor.user().into_iter().chain(self.token_creator.as_deref())
    }

    /// Whether `user` is one of the people acting.
    pub fn is_acting(&self, user: &str) -> bool {
        self.acting_users().any(|acting| acting == user)
    }

    pub fn new_id(&self) -> Uuid {
        self.ids.next_id()
    }
}
