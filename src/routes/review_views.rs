//! Access reviews as the JSON API and the web pages show them, and the reads and decisions both
//! use: a review as the caller may see it (403/404 like requests), its items page by page, the report.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{caller::Caller, problem::ApiError, views::actor_name};
use crate::domain::{
    kept_and_revoked, Command, OnNoAnswer, Review, ReviewDecision, ReviewItem, ReviewStatus, State, Subject, Unanswered,
};

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Review)]
pub struct ReviewView {
    pub id: String,
    pub scope: String,
    /// The roles reviewed; null: every role.
    pub roles: Option<Vec<String>>,
    pub title: String,
    pub due_at: DateTime<Utc>,
    pub on_no_answer: OnNoAnswer,
    pub status: ReviewStatus,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Items the caller sees (all of them for its starter, admins and auditors; a reviewer's own).
    pub items: usize,
    /// Of those, how many are decided, kept and revoked.
    pub decided: usize,
    pub kept: usize,
    pub revoked: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReviewItem)]
pub struct ReviewItemView {
    /// The item's id: its grant's id.
    pub id: String,
    pub grant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub role: String,
    pub scope: String,
    pub reviewers: Vec<String>,
    pub decision: Option<ReviewDecision>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    /// For an item nobody decided, once the review closed: kept, revoked, or its grant had ended.
    pub unanswered: Option<Unanswered>,
}

impl ReviewView {
    pub fn new(review: &Review, seen: &[&ReviewItem]) -> Self {
        let (kept, revoked) = kept_and_revoked(seen.iter().copied());
        ReviewView {
            id: review.id.to_string(),
            scope: review.scope.to_string(),
            roles: review.roles.clone(),
            title: review.title.clone(),
            due_at: review.due_at,
            on_no_answer: review.on_no_answer,
            status: review.status(),
            started_by: actor_name(&review.started_by),
            started_at: review.started_at,
            closed_at: review.closed_at,
            items: seen.len(),
            decided: kept + revoked,
            kept,
            revoked,
        }
    }
}

impl ReviewItemView {
    pub fn new(state: &State, item: &ReviewItem) -> Self {
        let grant = state.grant(&item.grant);
        let (user, team) = match grant.map(|g| &g.subject) {
            Some(Subject::User(user)) => (Some(user.to_string()), None),
            Some(Subject::Team(team)) => (None, Some(team.to_string())),
            None => (None, None),
        };
        let decision = item.decision.as_deref();
        ReviewItemView {
            id: item.grant.to_string(),
            grant: item.grant.to_string(),
            user,
            team,
            role: grant.map(|g| g.role.clone()).unwrap_or_default(),
            scope: grant.map(|g| g.scope.to_string()).unwrap_or_default(),
            reviewers: item.reviewers().map(ToString::to_string).collect(),
            decision: decision.map(|d| d.decision),
            decided_by: decision.map(|d| actor_name(&d.by)),
            decided_at: decision.map(|d| d.at),
            reason: decision.map(|d| d.reason.clone()),
            unanswered: item.unanswered,
        }
    }
}

pub(crate) fn parse_review_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("review {text}")))
}

fn forbidden() -> ApiError {
    ApiError::forbidden("only its reviewers, its starter, auditors and admins see this review")
}

/// The review as the caller may see it: 404 when unknown, 403 when not theirs to see.
pub(crate) fn visible_review(caller: &Caller, id: Uuid) -> Result<ReviewView, ApiError> {
    let now = Utc::now();
    caller.read(|state, _| {
        let review = state.review(&id).ok_or_else(|| ApiError::NotFound(format!("review {id}")))?;
        let sight = state.review_sight(review, caller.user(), now).ok_or_else(forbidden)?;
        let seen: Vec<&ReviewItem> = state.review_items_seen(review, caller.user(), sight, now).collect();
        Ok(ReviewView::new(review, &seen))
    })?
}

/// The reviews the caller sees, newest first (`status` only, when given).
pub(crate) fn visible_reviews(caller: &Caller, status: Option<ReviewStatus>) -> Result<Vec<ReviewView>, ApiError> {
    let now = Utc::now();
    caller.read(|state, _| {
        let mut reviews: Vec<ReviewView> = state
            .reviews()
            .filter(|review| status.is_none_or(|status| review.status() == status))
            .filter_map(|review| {
                let sight = state.review_sight(review, caller.user(), now)?;
                let seen: Vec<&ReviewItem> = state.review_items_seen(review, caller.user(), sight, now).collect();
                Some(ReviewView::new(review, &seen))
            })
            .collect();
        reviews.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| a.id.cmp(&b.id)));
        reviews
    })
}

/// Which items of a review to list.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ItemFilter {
    /// Only those the caller may answer for.
    pub mine: bool,
    pub undecided: bool,
}

/// The items the caller sees, in id order after `after`, at most `take` (`None`: all).
pub(crate) fn visible_items(
    caller: &Caller,
    id: Uuid,
    filter: ItemFilter,
    after: Option<Uuid>,
    take: Option<usize>,
) -> Result<Vec<ReviewItemView>, ApiError> {
    let now = Utc::now();
    caller.read(|state, _| {
        let review = state.review(&id).ok_or_else(|| ApiError::NotFound(format!("review {id}")))?;
        let sight = state.review_sight(review, caller.user(), now).ok_or_else(forbidden)?;
        let sight = if filter.mine { crate::domain::ReviewSight::OwnItems } else { sight };
        let seen = state
            .review_items_seen(review, caller.user(), sight, now)
            .filter(|item| after.is_none_or(|after| item.grant > after))
            .filter(|item| !filter.undecided || item.decision.is_none());
        Ok(seen.take(take.unwrap_or(usize::MAX)).map(|item| ReviewItemView::new(state, item)).collect())
    })?
}

/// One item as the caller may see it (404 when not one of theirs to see).
pub(crate) fn visible_item(caller: &Caller, id: Uuid, item: Uuid) -> Result<ReviewItemView, ApiError> {
    let now = Utc::now();
    caller.read(|state, _| {
        let review = state.review(&id).ok_or_else(|| ApiError::NotFound(format!("review {id}")))?;
        let sight = state.review_sight(review, caller.user(), now).ok_or_else(forbidden)?;
        let seen = review.items.get(&item).filter(|entry| state.sees_review_item(entry, &caller.actor(), sight, now));
        seen.map(|entry| ReviewItemView::new(state, entry)).ok_or_else(|| ApiError::NotFound(format!("item {item}")))
    })?
}

/// Decides one item as the caller.
pub(crate) async fn decide_item(
    caller: &Caller,
    review: Uuid,
    item: Uuid,
    decision: ReviewDecision,
    reason: String,
) -> Result<(), ApiError> {
    caller.execute(Command::DecideReviewItem { review, item, decision, reason }).await?;
    Ok(())
}

/// The report's columns, in order.
pub(crate) const REPORT_COLUMNS: [&str; 12] = [
    "item",
    "grant",
    "user",
    "team",
    "role",
    "scope",
    "reviewers",
    "decision",
    "decided_by",
    "decided_at",
    "reason",
    "unanswered",
];

/// One item as a CSV row (RFC 4180 quoting), in `REPORT_COLUMNS` order.
pub(crate) fn csv_row(item: &ReviewItemView) -> String {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let enum_text = |value: serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let fields = [
        item.id.clone(),
        item.grant.clone(),
        text(&item.user),
        text(&item.team),
        item.role.clone(),
        item.scope.clone(),
        item.reviewers.join(" "),
        enum_text(serde_json::json!(item.decision)),
        text(&item.decided_by),
        item.decided_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
        text(&item.reason),
        enum_text(serde_json::json!(item.unanswered)),
    ];
    let quoted: Vec<String> = fields
        .iter()
        .map(|field| {
            // A spreadsheet would run a cell starting with = + - @ as a formula.
            let field = &if field.starts_with(['=', '+', '-', '@']) { format!("'{field}") } else { field.clone() };
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.clone()
            }
        })
        .collect();
    quoted.join(",")
}
