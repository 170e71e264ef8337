//! Delegations as the state holds them (SPEC "Escalation and delegation"): for a while, `to` may
//! decide what `from` may decide by decision rules, within `scope`'s subtree when one is named.

use super::types::{Actor, ScopeId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub type DelegationId = Uuid;

/// The longest a delegation may last (SPEC: at most 90 days).
pub const LONGEST_DELEGATION: chrono::Duration = chrono::Duration::days(90);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub id: DelegationId,
    /// The delegator, whose authority the delegate uses.
    pub from: UserId,
    /// The delegate.
    pub to: UserId,
    /// Only matters on this scope and below it; `None`: wherever the delegator decides.
    pub scope: Option<ScopeId>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// When a `DelegationEnded` was recorded (early, or by the scheduler at `until`).
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<Actor>,
}

impl Delegation {
    /// Whether it gives anything at `now`: not ended, and before `until` (whether or not the
    /// scheduler has written its end yet).
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && self.created_at <= now && now < self.until
    }
}
