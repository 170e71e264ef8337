//! `/ui/reviews`: the access reviews the user sees, with their progress; a review's page lists the
//! user's undecided items with tick boxes to keep or revoke several at once (each its own command
//! through `Caller::execute`, judged like the API's), and lets its starter or an admin close it.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    html, see_other,
    session::{Header, Session},
    PageError,
};
use crate::{
    domain::{Command, ReviewDecision, ReviewStatus},
    routes::{
        problem::ApiError,
        review_views::{
            decide_item, parse_review_id, visible_items, visible_review, visible_reviews, ItemFilter, ReviewItemView,
            ReviewView,
        },
    },
};

#[derive(Template)]
#[template(path = "web/reviews.html")]
struct ReviewsPage {
    head: Option<Header>,
    reviews: Vec<ReviewView>,
}

/// What became of one ticked item.
struct Outcome {
    item: String,
    result: String,
    detail: Option<String>,
}

#[derive(Template)]
#[template(path = "web/review.html")]
struct ReviewPage {
    head: Option<Header>,
    csrf: String,
    review: ReviewView,
    /// The caller's items still to decide.
    undecided: Vec<ReviewItemView>,
    /// Its starter or an admin, while it is open.
    may_close: bool,
    summary: Option<String>,
    outcomes: Vec<Outcome>,
}

pub async fn reviews_page(session: Session) -> Result<HttpResponse, PageError> {
    let reviews = visible_reviews(&session.caller, None)?;
    html(ReviewsPage { head: session.head(), reviews })
}

fn review_page(session: &Session, id: Uuid, outcomes: Vec<Outcome>) -> Result<ReviewPage, PageError> {
    let caller = &session.caller;
    let review = visible_review(caller, id)?;
    let filter = ItemFilter { mine: true, undecided: true };
    let undecided =
        if review.status == ReviewStatus::Open { visible_items(caller, id, filter, None, None)? } else { Vec::new() };
    let admin = caller.standing()?.admin;
    let may_close = review.status == ReviewStatus::Open && (admin || review.started_by == caller.user());
    let summary = (!outcomes.is_empty()).then(|| {
        let done = outcomes.iter().filter(|o| o.detail.is_none()).count();
        format!("{done} of {} decided", outcomes.len())
    });
    Ok(ReviewPage { head: session.head(), csrf: session.csrf_token(), review, undecided, may_close, summary, outcomes })
}

pub async fn review(session: Session, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    html(review_page(&session, parse_review_id(&id)?, Vec::new())?)
}

#[derive(Deserialize)]
struct Answer {
    decision: String,
    #[serde(default)]
    reason: String,
}

/// The ticked items (`item`, repeated), all kept or all revoked with one reason; answers the page
/// with what became of each.
pub async fn decide_many(
    mut session: Session,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let answer: Answer = session.form(&body)?;
    let review = parse_review_id(&id)?;
    let decision = match answer.decision.as_str() {
        "keep" => ReviewDecision::Keep,
        "revoke" => ReviewDecision::Revoke,
        other => return Err(PageError::BadForm(format!("unknown decision \"{other}\""))),
    };
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|error| PageError::BadForm(error.to_string()))?;
    let ticked: Vec<&str> = fields.iter().filter(|(name, _)| name == "item").map(|(_, id)| id.as_str()).collect();
    if ticked.is_empty() {
        return Err(PageError::BadForm("tick at least one item".into()));
    }
    let mut outcomes = Vec::with_capacity(ticked.len());
    for item in ticked {
        let decided = match item.parse::<Uuid>() {
            Ok(grant) => decide_item(&session.caller, review, grant, decision, answer.reason.clone()).await,
            Err(_) => Err(ApiError::NotFound(format!("item {item}"))),
        };
        outcomes.push(match decided {
            Ok(()) => Outcome { item: item.to_string(), result: answer.decision.clone(), detail: None },
            Err(refusal @ (ApiError::Store(_) | ApiError::Unauthenticated(_))) => return Err(refusal.into()),
            Err(refusal) => Outcome {
                item: item.to_string(),
                result: refusal.code().replace('_', " "),
                detail: Some(refusal.public_detail()),
            },
        });
    }
    session.refresh_head()?;
    html(review_page(&session, review, outcomes)?)
}

#[derive(Deserialize)]
struct Empty {}

/// Closes the review early (its starter or an admin).
pub async fn close(session: Session, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let Empty {} = session.form(&body)?;
    let review = parse_review_id(&id)?;
    session.caller.execute(Command::CloseReview { review }).await?;
    Ok(see_other(&format!("/ui/reviews/{review}")))
}
