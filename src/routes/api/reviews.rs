//! Access reviews (recertification): started by admins or by people who may revoke every grant
//! they cover; each item answered by its reviewers; closed early by its starter or an admin, or at
//! its due time by the scheduler. Reviewers see their items; starters, auditors and admins all.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{Command, Event, OnNoAnswer, ReviewDecision, ReviewDue, ReviewStatus, ScopeId};
use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
    review_views::{
        csv_row, decide_item, parse_review_id, visible_item, visible_items, visible_review, visible_reviews,
        ItemFilter, ReviewItemView, ReviewView, REPORT_COLUMNS,
    },
    shared::created,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    scope: String,
    /// Only grants of these roles (every role when left out).
    roles: Option<Vec<String>>,
    /// A duration from now (`P14D`, `14d`) or an RFC 3339 time, in the future.
    due: String,
    on_no_answer: OnNoAnswer,
    title: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemAnswer {
    decision: ReviewDecision,
    #[serde(default)]
    reason: String,
}

type ReviewPage = Page<ReviewView>;
type ReviewItemPage = Page<ReviewItemView>;

#[utoipa::path(post, path = "/api/v1/reviews", tag = "reviews", operation_id = "startReview", request_body = NewReview,
    responses((status = 201, description = "open", body = ReviewView), (status = 403, description = "not_a_decider: may not revoke every grant it covers"), (status = 422, description = "unknown_scope, unknown_role, invalid_duration, invalid")))]
pub async fn start(caller: Caller, body: web::Json<NewReview>) -> Result<HttpResponse, ApiError> {
    let NewReview { scope, roles, due, on_no_answer, title } = body.into_inner();
    let due: ReviewDue = due.parse().map_err(|detail| ApiError::BadRequest { code: "malformed_body", detail })?;
    let command = Command::StartReview { scope: ScopeId::known(scope), roles, due, on_no_answer, title };
    let events = caller.execute(command).await?;
    let id = created(&events, "review", |event| match event {
        Event::ReviewStarted { review, .. } => Some(review),
        _ => None,
    })?;
    Ok(HttpResponse::Created().json(visible_review(&caller, id)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    status: Option<ReviewStatus>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/reviews", tag = "reviews", operation_id = "listReviews",
    params(("status" = Option<ReviewStatus>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the reviews the caller sees, newest first", body = ReviewPage)))]
pub async fn list(caller: Caller, query: web::Query<ReviewQuery>) -> Result<HttpResponse, ApiError> {
    // Newest first: the key counts down from the latest time.
    let key = |review: &ReviewView| format!("{:020}|{}", i64::MAX - review.started_at.timestamp_micros(), review.id);
    let items = visible_reviews(&caller, query.status)?.into_iter().map(|review| (key(&review), review)).collect();
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

#[utoipa::path(get, path = "/api/v1/reviews/{id}", tag = "reviews", operation_id = "getReview", params(("id" = String, Path,)),
    responses((status = 200, description = "the review; counts of the items the caller sees", body = ReviewView), (status = 403, description = "not a reviewer, its starter, an auditor or an admin"), (status = 404, description = "unknown")))]
pub async fn show(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(visible_review(&caller, parse_review_id(&id)?)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemQuery {
    #[serde(default)]
    mine: bool,
    #[serde(default)]
    undecided: bool,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/reviews/{id}/items", tag = "reviews", operation_id = "listReviewItems",
    params(("id" = String, Path,), ("mine" = Option<bool>, Query, description = "only the items the caller reviews"), ("undecided" = Option<bool>, Query, description = "only items not decided yet"), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the items the caller sees, in id order", body = ReviewItemPage), (status = 403, description = "not visible to the caller"), (status = 404, description = "unknown")))]
pub async fn items(
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<ItemQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    let (after, take) = (paging.after_id()?, paging.limit()? + 1);
    let filter = ItemFilter { mine: query.mine, undecided: query.undecided };
    let items = visible_items(&caller, parse_review_id(&id)?, filter, after, Some(take))?;
    let items = items.into_iter().map(|item| (item.id.clone(), item)).collect();
    Ok(HttpResponse::Ok().json(paging.page_read_in_order(items)?))
}

#[utoipa::path(get, path = "/api/v1/reviews/{id}/report", tag = "reviews", operation_id = "getReviewReport", params(("id" = String, Path,)),
    responses((status = 200, description = "every item the caller sees: CSV with a header line, or with `Accept: application/x-ndjson` one `ReviewItem` a line",
        content((inline(String) = "text/csv"), (inline(String) = "application/x-ndjson"))), (status = 403, description = "not visible to the caller"), (status = 404, description = "unknown")))]
pub async fn report(caller: Caller, request: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_review_id(&id)?;
    let items = visible_items(&caller, id, ItemFilter::default(), None, None)?;
    if super::log::accepts(request.headers(), super::log::NDJSON) {
        let mut body = String::new();
        for item in &items {
            body.push_str(
                &serde_json::to_string(item)
                    .map_err(|e| ApiError::BadRequest { code: "internal", detail: e.to_string() })?,
            );
            body.push('\n');
        }
        return Ok(HttpResponse::Ok().content_type(super::log::NDJSON).body(body));
    }
    let mut body = REPORT_COLUMNS.join(",");
    body.push_str("\r\n");
    for item in &items {
        body.push_str(&csv_row(item));
        body.push_str("\r\n");
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"review-{id}.csv\"")))
        .body(body))
}

#[utoipa::path(post, path = "/api/v1/reviews/{id}/items/{item}/decide", tag = "reviews", operation_id = "decideReviewItem",
    params(("id" = String, Path,), ("item" = String, Path,)), request_body = ItemAnswer,
    responses((status = 200, description = "the item after the decision (`revoke` ends its grant at once)", body = ReviewItemView),
        (status = 403, description = "not_a_reviewer, self_approval, not_a_decider"), (status = 404, description = "unknown review or item"), (status = 409, description = "already_decided, review_closed, not_active")))]
pub async fn decide(
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<ItemAnswer>,
) -> Result<HttpResponse, ApiError> {
    let (review, item) = path.into_inner();
    let review = parse_review_id(&review)?;
    let item = item.parse().map_err(|_| ApiError::NotFound(format!("item {item}")))?;
    let ItemAnswer { decision, reason } = body.into_inner();
    decide_item(&caller, review, item, decision, reason).await?;
    Ok(HttpResponse::Ok().json(visible_item(&caller, review, item)?))
}

#[utoipa::path(post, path = "/api/v1/reviews/{id}/close", tag = "reviews", operation_id = "closeReview", params(("id" = String, Path,)),
    responses((status = 200, description = "closed; undecided items followed `on_no_answer`", body = ReviewView), (status = 403, description = "not its starter or an admin"), (status = 404, description = "unknown"), (status = 409, description = "review_closed")))]
pub async fn close(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_review_id(&id)?;
    caller.execute(Command::CloseReview { review: id }).await?;
    Ok(HttpResponse::Ok().json(visible_review(&caller, id)?))
}
