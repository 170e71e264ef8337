//! Access reviews (recertification) as the state holds them. `ReviewStarted` records only the
//! selection (scope, roles, due time); the items — one per grant active at the start on the scope
//! or below it — are derived when the event is folded (`state/reviews.rs`), so that a review of
//! 100,000 grants is one small event. An item's id is its grant's id: a replay gives the same ids.

use super::types::{Actor, GrantId, ScopeId, UserId};
use crate::workflow::{Duration, RoleId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

pub type ReviewId = Uuid;

pub use crate::workflow::OnNoAnswer;

/// A reviewer's answer for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Keep,
    Revoke,
}

/// When a review is due: after a duration from its start, or at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDue {
    After(Duration),
    At(DateTime<Utc>),
}

impl std::str::FromStr for ReviewDue {
    type Err = String;

    /// An RFC 3339 time, or a duration (`P14D`, `14d`).
    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(ReviewDue::At(at.with_timezone(&Utc)));
        }
        text.parse::<Duration>()
            .map(ReviewDue::After)
            .map_err(|_| format!("\"{text}\" is neither an RFC 3339 time nor a duration"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDecision {
    pub decision: ReviewDecision,
    pub by: Actor,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// What became of an item nobody decided, judged when the review closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unanswered {
    /// Kept, as the review's `on_no_answer` said.
    Kept,
    /// Revoked, as the review's `on_no_answer` said.
    Revoked,
    /// The grant had already ended.
    Ended,
}

/// One grant under review. Its reviewers are a pool shared by the items whose grants have the
/// same role on the same scope (who may revoke that), less the people excluded from it (the
/// holder, or a team's members) — so a review of 100,000 grants keeps a few pools, and a short
/// exclusion only for the items whose holder is in their pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub grant: GrantId,
    pub(super) pool: Arc<[UserId]>,
    pub(super) excluded: Option<Arc<[UserId]>>,
    pub decision: Option<Box<ItemDecision>>,
    pub unanswered: Option<Unanswered>,
}

impl ReviewItem {
    /// The people listed as its reviewers at the start.
    pub fn reviewers(&self) -> impl Iterator<Item = &UserId> + '_ {
        self.pool.iter().filter(|person| !self.excludes(person))
    }

    fn excludes(&self, user: &str) -> bool {
        self.excluded.as_ref().is_some_and(|excluded| excluded.iter().any(|person| person == user))
    }

    pub fn is_reviewer(&self, user: &str) -> bool {
        self.pool.iter().any(|reviewer| reviewer == user) && !self.excludes(user)
    }

    /// The shared pool its reviewers come from (for measuring how much is shared).
    pub fn pool(&self) -> &Arc<[UserId]> {
        &self.pool
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Open,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: ReviewId,
    pub scope: ScopeId,
    /// Only grants of these roles; `None`: every role.
    pub roles: Option<Vec<RoleId>>,
    pub title: String,
    pub due_at: DateTime<Utc>,
    pub on_no_answer: OnNoAnswer,
    pub started_by: Actor,
    pub started_at: DateTime<Utc>,
    /// Started by the scheduler, as the workflow's `[[reviews]]` say.
    pub scheduled: bool,
    /// By item id (= grant id).
    pub items: BTreeMap<GrantId, ReviewItem>,
    pub decided: usize,
    pub reminded_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Actor>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Review {
    pub fn status(&self) -> ReviewStatus {
        if self.closed_at.is_some() {
            ReviewStatus::Closed
        } else {
            ReviewStatus::Open
        }
    }

    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// Half-way from the start to the due time: when reviewers with undecided items are reminded.
    pub fn reminder_due(&self) -> DateTime<Utc> {
        self.started_at + (self.due_at - self.started_at) / 2
    }
}

/// Of these items, how many were decided `keep` and how many `revoke`.
pub fn kept_and_revoked<'a>(items: impl IntoIterator<Item = &'a ReviewItem>) -> (usize, usize) {
    let decisions = items.into_iter().filter_map(|item| item.decision.as_ref());
    decisions.fold((0, 0), |(kept, revoked), d| match d.decision {
        ReviewDecision::Keep => (kept + 1, revoked),
        ReviewDecision::Revoke => (kept, revoked + 1),
    })
}

/// How much of a review a person sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewSight {
    /// Its starter, administrators and auditors: every item.
    Whole,
    /// A reviewer: the review and their own items.
    OwnItems,
}
