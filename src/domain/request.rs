//! Requests as the state holds them.

use super::types::{Actor, GrantId, RequestId, ScopeId, UserId};
use crate::workflow::{Duration, RoleId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The delegator whose authority a delegate used; they count as approving (SPEC "Escalation
    /// and delegation": a stage's approvers are counted by the person whose authority is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<UserId>,
    /// Index of the stage it counted for.
    pub stage: u32,
    pub comment: String,
    pub at: DateTime<Utc>,
    /// The (shorter) duration this approver granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
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
    /// When it entered its current stage (`None`: when it was asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_entered_at: Option<DateTime<Utc>>,
    /// The stages that have been escalated (`RequestEscalated`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalated_stages: Vec<u32>,
    /// The grant it extends, for an extension request.
    #[serde(default)]
    pub extends: Option<GrantId>,
    /// When the grant should start, when later than the approval.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Who asked, when not `user` (a request on someone's behalf).
    #[serde(default)]
    pub requested_by: Option<UserId>,
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    #[serde(default)]
    pub ticket: Option<String>,
}

impl Request {
    pub fn is_pending(&self) -> bool {
        self.status == RequestStatus::Pending
    }

    /// When it entered the stage it waits in.
    pub fn in_stage_since(&self) -> DateTime<Utc> {
        self.stage_entered_at.unwrap_or(self.created_at)
    }

    /// Whether the stage it waits in has been escalated.
    pub fn is_escalated(&self) -> bool {
        self.escalated_stages.contains(&self.stage)
    }

    /// Whether `user` asked for it or it is for them: both see it and may cancel it, neither decides it.
    pub fn concerns(&self, user: &str) -> bool {
        self.user == user || self.requested_by.as_deref() == Some(user)
    }

    /// The shortest duration an approver granted, if any did.
    pub fn granted_duration(&self) -> Option<Duration> {
        self.approvals.iter().filter_map(|a| a.duration).min()
    }
}
