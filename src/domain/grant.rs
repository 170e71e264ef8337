//! Grants as the state holds them: who holds which role where, from when until when, and why.

use super::types::{Actor, GrantId, RequestId, ScopeId, Subject};
use crate::workflow::RoleId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
pub fn within(start: DateTime<Utc>, end: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    start <= at && end.is_none_or(|end| at < end)
}

impl Grant {
    /// Whether the grant gives its role at `now`: not revoked or expired, and not past its end even
    /// if its expiry event has not been written yet.
    pub fn gives_at(&self, now: DateTime<Utc>) -> bool {
        self.status == GrantStatus::Active && self.within_its_time(now)
    }

    /// Whether the grant is in force but has not started yet (a later start).
    pub fn is_scheduled(&self, now: DateTime<Utc>) -> bool {
        self.status == GrantStatus::Active && now < self.starts_at
    }

    /// Whether the grant gives its role now or will once it starts: in force and not past its end.
    pub fn gives_now_or_later(&self, now: DateTime<Utc>) -> bool {
        self.status == GrantStatus::Active && self.ends_at.is_none_or(|end| now < end)
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
