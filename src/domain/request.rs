//! Requests and grants as the state holds them.

use super::types::{Actor, GrantId, RequestId, ScopeId, Subject, TokenId, UserId};
use crate::workflow::{Duration, RoleId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
    Expired,
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Cancelled => "cancelled",
            RequestStatus::Expired => "expired",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: Actor,
    /// The creator of the API token it was made with, when not `by` (they count as approving too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_creator: Option<UserId>,
    /// Index of the stage it counted for.
    pub stage: u32,
    pub comment: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub user: UserId,
    pub role: RoleId,
    pub scope: ScopeId,
    pub reason: String,
    pub duration: Option<Duration>,
    pub status: RequestStatus,
    /// Index of the stage waiting for approvals (equal to the number of stages once approved).
    pub stage: u32,
    pub approvals: Vec<Approval>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Who ended it (rejected, cancelled) and when; expiry has no actor.
    pub closed_by: Option<Actor>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Why it was rejected.
    pub closing_reason: Option<String>,
    pub grant: Option<GrantId>,
    /// When its deciders were last reminded of it.
    #[serde(default)]
    pub reminded_at: Option<DateTime<Utc>>,
}

impl Request {
    pub fn is_pending(&self) -> bool {
        self.status == RequestStatus::Pending
    }
}

/// Why a grant exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantOrigin {
    /// A request approved through all its stages.
    Request { request: RequestId },
    /// A direct assignment, audited like a request approved at once.
    Assignment { reason: String },
    /// The creator role of a scope its holder created.
    Creator,
    /// A default role every new user receives.
    Default,
    /// Carried by the user's login token (`roles: ["manager@P1"]`).
    Token,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Active,
    Revoked { by: Actor, reason: String, at: DateTime<Utc> },
    Expired { at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub subject: Subject,
    pub role: RoleId,
    pub scope: ScopeId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub origin: GrantOrigin,
    pub granted_by: Actor,
    pub status: GrantStatus,
    /// When its holder was told that it ends soon.
    #[serde(default)]
    pub ending_notice_at: Option<DateTime<Utc>>,
}

/// Whether `at` falls in the interval from `start` (included) to `end` (excluded, if any).
pub(super) fn within(start: DateTime<Utc>, end: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    start <= at && end.is_none_or(|end| at < end)
}

impl Grant {
    /// Whether the grant gives its role at `now`: not revoked or expired, and not past its end even
    /// if its expiry event has not been written yet.
    pub fn gives_at(&self, now: DateTime<Utc>) -> bool {
        self.status == GrantStatus::Active && self.within_its_time(now)
    }

    /// Whether `at` falls between the grant's own start and end, whatever its status.
    pub fn within_its_time(&self, at: DateTime<Utc>) -> bool {
        within(self.starts_at, self.ends_at, at)
    }

    /// Whether the grant gave its role at a past moment `at`, as known now: its single validity
    /// interval runs from its start to the earliest of its end, revocation and expiry.
    pub fn gave_at(&self, at: DateTime<Utc>) -> bool {
        let ended_at = match &self.status {
            GrantStatus::Active => None,
            GrantStatus::Revoked { at, .. } | GrantStatus::Expired { at } => Some(*at),
        };
        within(self.starts_at, self.ends_at, at) && ended_at.is_none_or(|end| at < end)
    }
}

/// An API token as the state knows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub user: UserId,
    pub name: String,
    pub created_by: Actor,
    /// Whether its creator made it as an administrator (else as an API-role holder for themselves):
    /// what let it be made must still stand for it to work (see `State::api_token_in_force`).
    pub made_by_admin: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|end| now < end)
    }
}
