//! The log for auditors and admins: `GET /events` (filtered; paged JSON, or the whole selection as
//! NDJSON), `GET /events/live` (server-sent events), `GET /audit/verify` and `POST /audit/simulate`.

use crate::routes::shared::{events_page, require_reader, Order};
use std::time::Duration;

use actix_web::{
    http::header::{self, HeaderMap},
    web::{self, Bytes},
    HttpRequest, HttpResponse,
};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use tokio::{
    sync::watch,
    time::{sleep_until, Instant},
};
use utoipa::ToSchema;

use crate::{
    app::simulate::{self, Simulated},
    startup::BODY_LIMIT,
    workflow::Workflow,
};

use crate::routes::{
    caller::{Caller, SESSION_COOKIE},
    paging::{checked_limit, Page},
    problem::ApiError,
};
use crate::store::{
    EventSelection, ExportFormat, LogCursor, LogHead, Moment, RecordedEvent, SelectedEvents, StoreError, VerifyProblem,
};

type EventList = Page<RecordedEvent>;

pub(super) const NDJSON: &str = "application/x-ndjson";

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
    from: Option<Moment>,
    until: Option<Moment>,
}

impl EventQuery {
    fn selection(&self) -> Result<EventSelection, ApiError> {
        let after = match (&self.cursor, self.after) {
            (Some(cursor), _) => {
                cursor.parse::<i64>().map_err(|_| ApiError::bad_query("cursor is not one this server gave"))?
            }
            (None, Some(after)) if after >= 0 => after,
            (None, Some(_)) => return Err(ApiError::bad_query("after must not be negative")),
            (None, None) => 0,
        };
        Ok(EventSelection {
            after,
            from: self.from,
            until: self.until,
            stream: self.stream.clone(),
            event_type: self.event_type.clone(),
            actor: self.actor.clone(),
        })
    }
}

/// How much NDJSON is gathered before it is sent as one chunk.
const NDJSON_CHUNK: usize = 64 * 1024;

#[utoipa::path(get, path = "/api/v1/events", tag = "audit", operation_id = "listEvents",
    params(("after" = Option<i64>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,), ("stream" = Option<String>, Query,), ("type" = Option<String>, Query,),
        ("actor" = Option<String>, Query,), ("from" = Option<String>, Query, description = "RFC 3339 time or log position, inclusive"), ("until" = Option<String>, Query, description = "RFC 3339 time or log position, inclusive")),
    responses((status = 200, description = "events in position order: a page of JSON, or with `Accept: application/x-ndjson` the whole selection, one `Event` a line",
        content((EventList = "application/json"), (inline(String) = "application/x-ndjson"))), (status = 403, description = "not an auditor or admin")))]
pub async fn events(
    caller: Caller,
    request: HttpRequest,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let selection = query.selection()?;
    let store = &caller.app().store;
    if accepts(request.headers(), NDJSON) {
        let body = stream::try_unfold(store.select(selection), ndjson_chunk);
        return Ok(HttpResponse::Ok().content_type(NDJSON).streaming(body));
    }
    let limit = checked_limit(query.limit)?;
    let page = events_page(store, &selection, limit, Order::OldestFirst, None).await?;
    let next = page.next.map(|position| position.to_string());
    Ok(HttpResponse::Ok().json(Page { items: page.items, next }))
}

/// Whether the request's `Accept` header names `media_type`.
pub(super) fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers.get_all(header::ACCEPT).filter_map(|value| value.to_str().ok()).any(|value| value.contains(media_type))
}

/// The next chunk of the NDJSON answer: the following selected events, up to about 64 KiB.
async fn ndjson_chunk(mut selected: SelectedEvents) -> Result<Option<(Bytes, SelectedEvents)>, StoreError> {
    let mut chunk = Vec::new();
    while chunk.len() < NDJSON_CHUNK {
        match selected.next().await? {
            Some(event) => ExportFormat::Ndjson.write(&event, &mut chunk),
            None => break,
        }
    }
    Ok((!chunk.is_empty()).then(|| (Bytes::from(chunk), selected)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    after: Option<i64>,
}

/// A comment line every so often, so that idle connections are not closed by proxies and a
/// client that went away is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(get, path = "/api/v1/events/live", tag = "audit", operation_id = "followEvents",
    params(("after" = Option<i64>, Query, description = "tail from after this position [default: the current head]"),
        ("Last-Event-ID" = Option<i64>, Header, description = "the last position received, to resume (wins over after)")),
    responses((status = 200, description = "each event once, in position order: its position as the SSE id, its type as the SSE event, the `Event` as data",
        content_type = "text/event-stream", body = String), (status = 403, description = "not an auditor or admin")))]
pub async fn live(request: HttpRequest, query: web::Query<LiveQuery>) -> Result<HttpResponse, ApiError> {
    // The web pages' live view (an EventSource, which sends no header) is signed in by its session
    // cookie; SameSite=Strict keeps other sites' pages from opening it with that cookie.
    let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(String::from);
    let session = || request.cookie(SESSION_COOKIE).map(|cookie| format!("Bearer {}", cookie.value()));
    let authorization = header.or_else(session);
    let caller = Caller::authenticate(&request, authorization.clone()).await?;
    require_reader(&caller)?;
    let resume = match request.headers().get("last-event-id") {
        Some(value) => {
            Some(value.to_str().ok().and_then(|text| text.trim().parse::<i64>().ok()).filter(|p| *p >= 0).ok_or_else(
                || ApiError::BadRequest { code: "bad_header", detail: "Last-Event-ID must be a log position".into() },
            )?)
        }
        None => None,
    };
    let after = match resume.or(query.after) {
        Some(after) if after >= 0 => after,
        Some(_) => return Err(ApiError::bad_query("after must not be negative")),
        None => caller.app().store.head().await?.position,
    };
    let tail = LiveTail {
        cursor: caller.app().store.follow(after),
        closing: caller.app().closing.clone(),
        request,
        authorization,
        next_check: Instant::now() + RECHECK,
        keep_alive_at: Instant::now() + KEEP_ALIVE,
    };
    let body = stream::unfold(Some(tail), sse_frame);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(body))
}

/// How often an open tail checks that its caller may still read the log (a revoked token or
/// auditor grant ends it within this).
const RECHECK: Duration = Duration::from_secs(1);

/// An open live tail: where it is in the log, and what it needs to judge its caller again.
struct LiveTail {
    cursor: LogCursor,
    closing: watch::Receiver<bool>,
    request: HttpRequest,
    authorization: Option<String>,
    next_check: Instant,
    keep_alive_at: Instant,
}

/// What woke a tail up. Made once per event sent, and matched at once: not worth a box.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Event(Result<Option<RecordedEvent>, StoreError>),
    Check,
    KeepAlive,
    Closing,
}

impl LiveTail {
    /// The same `Authorization` value, authenticated and judged as for a new request.
    async fn caller_may_still_read(&self) -> Result<(), ApiError> {
        let caller = Caller::authenticate(&self.request, self.authorization.clone()).await?;
        require_reader(&caller)
    }
}

/// The last frame of a tail that the server ends: a comment line saying why.
fn last_words(why: &str) -> Bytes {
    Bytes::from(format!(": {}\n\n", why.replace(['\r', '\n'], " ")))
}

/// The next frame of the live tail: an event, or a keep-alive comment when none came for a
/// while. A failed read ends the stream; the client resumes with `Last-Event-ID`. So does a caller
/// who may no longer read the log, and the server stopping, each after a last comment line.
async fn sse_frame(tail: Option<LiveTail>) -> Option<(Result<Bytes, StoreError>, Option<LiveTail>)> {
    let mut tail = tail?;
    loop {
        // Dropping an unfinished `next` loses nothing: the cursor moves only when it hands an event out.
        let wake = tokio::select! {
            next = tail.cursor.next() => Wake::Event(next),
            _ = tail.closing.wait_for(|closing| *closing) => Wake::Closing,
            () = sleep_until(tail.next_check) => Wake::Check,
            () = sleep_until(tail.keep_alive_at) => Wake::KeepAlive,
        };
        match wake {
            Wake::Event(Ok(Some(event))) => {
                let data = serde_json::to_string(&event).expect("an event serializes");
                let frame = format!("id: {}\nevent: {}\ndata: {data}\n\n", event.position, event.event_type);
                tail.keep_alive_at = Instant::now() + KEEP_ALIVE;
                return Some((Ok(Bytes::from(frame)), Some(tail)));
            }
            Wake::Event(Ok(None)) => return None,
            Wake::Event(Err(error)) => {
                tracing::warn!(%error, "the live tail stops");
                return Some((Err(error), None));
            }
            Wake::Check => match tail.caller_may_still_read().await {
                Ok(()) => tail.next_check = Instant::now() + RECHECK,
                Err(refusal) => {
                    return Some((Ok(last_words(&format!("access ended: {}", refusal.public_detail()))), None))
                }
            },
            Wake::KeepAlive => {
                tail.keep_alive_at = Instant::now() + KEEP_ALIVE;
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), Some(tail)));
            }
            Wake::Closing => return Some((Ok(last_words("the server is stopping; resume with Last-Event-ID")), None)),
        }
    }
}

/// What `GET /audit/verify` found.
#[derive(Debug, Serialize, ToSchema)]
struct Verification {
    ok: bool,
    /// How many events were checked.
    events: i64,
    /// The head as recomputed from the chain.
    head: LogHead,
    /// The position at which the projections were compared with a fresh rebuild.
    projections_checked_at: Option<i64>,
    /// The first thing found wrong, if any.
    problem: Option<VerifyProblem>,
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", operation_id = "verifyLog",
    responses((status = 200, description = "the chain, stream versions and the projections compared with a rebuild", body = Verification), (status = 403, description = "not an auditor or admin")))]
pub async fn verify(caller: Caller) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let report = caller.app().app.verify().await?;
    Ok(HttpResponse::Ok().json(Verification {
        ok: report.first_problem.is_none(),
        events: report.events,
        head: report.head,
        projections_checked_at: report.projections_checked_at,
        problem: report.first_problem,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateQuery {
    until: Option<Moment>,
}

/// The media type of a workflow file sent as a body.
const TOML: &str = "application/toml";

#[utoipa::path(post, path = "/api/v1/audit/simulate", tag = "audit", operation_id = "simulateWorkflow",
    params(("until" = Option<String>, Query, description = "judge the log up to this RFC 3339 time or log position (inclusive)")),
    request_body(content = String, content_type = "application/toml", description = "the candidate workflow file"),
    responses((status = 200, description = "the differences the candidate makes to the recorded history, in log order; nothing is written", body = Simulated),
        (status = 403, description = "not an auditor or admin"), (status = 415, description = "unsupported_media_type: the body is not application/toml"),
        (status = 422, description = "invalid_workflow: the candidate's problem, with its line")))]
pub async fn simulate(
    caller: Caller,
    request: HttpRequest,
    query: web::Query<SimulateQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    // Read here, not by an extractor: over the limit is the API's 413 problem, after the caller's check.
    let body = match payload.to_bytes_limited(BODY_LIMIT).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => return Err(ApiError::BadRequest { code: "malformed_body", detail: error.to_string() }),
        Err(_) => return Err(ApiError::PayloadTooLarge),
    };
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(TOML) {
        return Err(ApiError::UnsupportedMediaType(format!("send the candidate workflow as {TOML}")));
    }
    let invalid = |detail: String| ApiError::Unprocessable { code: "invalid_workflow", detail };
    let text = std::str::from_utf8(&body).map_err(|error| invalid(format!("candidate.toml: not UTF-8 ({error})")))?;
    let candidate = Workflow::from_str(text, "candidate.toml").map_err(|error| invalid(error.to_string()))?;
    let app = &caller.app().app;
    let current = app.read_model(|model| model.workflow().clone());
    let simulated = simulate::simulate(app.store(), &current, &candidate, query.until).await?;
    Ok(HttpResponse::Ok().json(simulated))
}
