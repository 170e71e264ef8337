//! The log for auditors and admins: `GET /events` (filtered, paged) and `GET /audit/verify`.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{caller::Caller, paging::MAX_LIMIT, problem::ApiError, views::EventView};

fn require_reader(caller: &Caller) -> Result<(), ApiError> {
    if caller.standing()?.reads_everything() {
        Ok(())
    } else {
        Err(ApiError::forbidden("the log is for auditors and administrators"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Events after this position (or pass the `next` of the previous page as `cursor`).
    after: Option<i64>,
    cursor: Option<String>,
    limit: Option<usize>,
    stream: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    actor: Option<String>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

/// How many events one page may scan for matches, so that a narrow filter cannot hold a request
/// for long; the answer's `next` continues where it stopped.
const SCAN_PER_PAGE: i64 = 50_000;
const READ_CHUNK: i64 = 1_000;

#[utoipa::path(get, path = "/api/v1/events", tag = "audit",
    params(("after" = Option<i64>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,), ("stream" = Option<String>, Query,), ("type" = Option<String>, Query,),
        ("actor" = Option<String>, Query,), ("from" = Option<String>, Query, description = "RFC 3339"), ("until" = Option<String>, Query, description = "RFC 3339")),
    responses((status = 200, description = "events in position order, paged"), (status = 403, description = "not an auditor or admin")))]
pub async fn events(caller: Caller, query: web::Query<EventQuery>) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_query(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let mut after = match (&query.cursor, query.after) {
        (Some(cursor), _) => cursor.parse::<i64>().map_err(|_| ApiError::bad_query("cursor is not one this server gave"))?,
        (None, Some(after)) if after >= 0 => after,
        (None, Some(_)) => return Err(ApiError::bad_query("after must not be negative")),
        (None, None) => 0,
    };
    let store = &caller.app().store;
    let head = store.head().await?.position;
    let scan_end = after.saturating_add(SCAN_PER_PAGE).min(head);
    let mut items = Vec::new();
    while after < scan_end && items.len() < limit {
        let page = store.read_page(after, READ_CHUNK.min(scan_end - after)).await?;
        let Some(last) = page.last() else { break };
        let last_position = last.position;
        for event in page {
            if items.len() == limit {
                break;
            }
            after = event.position;
            let matches = query.stream.as_ref().is_none_or(|s| &event.stream == s)
                && query.event_type.as_ref().is_none_or(|t| &event.event_type == t)
                && query.actor.as_ref().is_none_or(|a| event.metadata.actor.as_ref() == Some(a))
                && query.from.is_none_or(|from| event.recorded_at >= from)
                && query.until.is_none_or(|until| event.recorded_at < until);
            if matches {
                items.push(EventView::new(&event));
            }
        }
        if items.len() < limit {
            after = last_position;
        }
    }
    let next = (after < head).then(|| after.to_string());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next": next })))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "{ok, events, head, problem}"), (status = 403, description = "not an auditor or admin")))]
pub async fn verify(caller: Caller) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let report = caller.app().store.verify().await?;
    let problem = report.first_problem.as_ref().map(|p| serde_json::json!({"position": p.position, "problem": p.problem}));
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "ok": problem.is_none(),
        "events": report.events,
        "head": report.head,
        "problem": problem,
    })))
}
