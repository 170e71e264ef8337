//! The role-request domain as pure code: [`decide`] turns a [`Command`] into [`Event`]s (or a
//! [`DomainError`]) against the current [`State`]; [`evolve`] (`State::apply`) folds an event into
//! the state. No I/O, no clock, no randomness: time and new ids come from the [`Context`].
//!
//! The state answers the read side too: `check` (may U do P on S, and through which grants),
//! `deciders_for` a request, `approver_scopes` of a user (compact rule × anchor pairs, expanded
//! by `expand_approver_scope`), `pending_for` a decider. [`scenarios`] holds the GOCDB scenario
//! table, as data that can also be run through the event store.

mod api_token;
mod command;
mod decide;
mod delegation;
mod error;
mod event;
mod grant;
mod ids;
mod index;
pub mod notify;
mod preferences;
mod request;
mod review;
/// Test data: kept out of the release binary (the crate's tests turn the `testing` feature on).
#[cfg(any(test, feature = "testing"))]
pub mod scenarios;
mod simulate;
mod state;
pub mod time;
mod types;
mod user_id;
mod visibility;
mod webhook;

pub use api_token::ApiToken;
pub use command::{Asked, Command};
pub use decide::{decide, GRANT_ENDING_NOTICE};
pub use delegation::{Delegation, DelegationId, LONGEST_DELEGATION};
pub use error::DomainError;
pub use event::Event;
pub use grant::{within, Grant, GrantOrigin, GrantStatus};
pub use notify::{notices, Notice};
pub use preferences::{MailFrequency, MailPreferences};
pub use request::{Approval, Request, RequestStatus};
pub use review::{
    kept_and_revoked, ItemDecision, OnNoAnswer, Review, ReviewDecision, ReviewDue, ReviewId, ReviewItem, ReviewSight,
    ReviewStatus, Unanswered,
};
pub use simulate::{Difference, DifferenceCounts, DifferenceKind, Simulation};
pub use state::{evolve, ApproverScope, Authority, CheckResult, DigestItems, RequestDecider, Scope, State, Team, User};
pub use types::{Actor, Context, GrantId, IdSource, RequestId, ScopeId, Subject, TeamId, TokenId, UserId};
pub use user_id::{parse_user_id, BadUserId, MAX_USER_ID_CHARS};
pub use visibility::{Standing, Viewer};
pub use webhook::{Webhook, WebhookId};

#[cfg(test)]
mod tests;
