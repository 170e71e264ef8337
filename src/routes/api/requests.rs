//! Role requests: asked by users, decided by deciders, cancelled by their requester. A person sees
//! a request if it is theirs or they may decide it; auditors and admins see every one.

use crate::routes::shared::{created_request, details, parse_id, stages, visible_request, RequestDetails};
use std::collections::HashSet;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
    views::RequestView,
};
use crate::{
    domain::{Asked, Command, RequestStatus, ScopeId, UserId},
    store::RecordedEvent,
    workflow::Duration,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    role: String,
    scope: String,
    reason: String,
    /// ISO 8601 (`P30D`) or short (`30d`); at most the role's maximum.
    #[schema(value_type = Option<String>)]
    duration: Option<Duration>,
    /// RFC 3339: the grant starts then (in the future, within a year); its duration counts from then.
    starts_at: Option<DateTime<Utc>>,
    /// The person it is for, when asking on their behalf (admins, and deciders of the role there).
    user: Option<String>,
    /// Answers to the role's questions, by question id.
    #[serde(default)]
    answers: BTreeMap<String, String>,
    ticket: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    #[serde(default)]
    comment: String,
    /// A shorter duration than asked (never longer than asked or than the role allows).
    #[schema(value_type = Option<String>)]
    duration: Option<Duration>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    #[serde(default)]
    reason: String,
}

type RequestPage = Page<RequestView>;

#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", operation_id = "createRequest", request_body = NewRequest,
    responses((status = 201, description = "pending", body = RequestView), (status = 403, description = "not_a_decider (asking for someone else without authority)"), (status = 409, description = "duplicate_request"), (status = 422, description = "unknown_role, unknown_scope, unknown_user, wrong_scope_kind, not_requestable, incompatible_role, invalid_duration, duration_too_long, invalid_starts_at, missing_answer, unknown_question")))]
pub async fn create(caller: Caller, body: web::Json<NewRequest>) -> Result<HttpResponse, ApiError> {
    let NewRequest { role, scope, reason, duration, starts_at, user, answers, ticket } = body.into_inner();
    let user = user.map(UserId::known);
    let scope = ScopeId::known(scope);
    let command =
        Command::RequestRole { role, scope, reason, duration, asked: Asked { starts_at, user, answers, ticket } };
    let events = caller.execute(command).await?;
    let id = created_request(&events)?;
    Ok(HttpResponse::Created().json(visible_request(&caller, id)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    status: Option<RequestStatus>,
    scope: Option<String>,
    user: Option<String>,
    role: Option<String>,
    /// Only pending requests the caller may approve now, oldest first.
    #[serde(default)]
    decidable: bool,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", operation_id = "listRequests",
    params(("status" = Option<RequestStatus>, Query,), ("scope" = Option<String>, Query,), ("user" = Option<String>, Query,), ("role" = Option<String>, Query,),
        ("decidable" = Option<bool>, Query, description = "only those the caller may approve now"), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the requests the caller may see, oldest first", body = RequestPage)))]
pub async fn list(caller: Caller, query: web::Query<RequestQuery>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let items = caller.read(|state, workflow| {
        let decidable: Option<HashSet<Uuid>> =
            query.decidable.then(|| state.pending_for(workflow, caller.user(), now).into_iter().collect());
        let viewer = caller.viewer(state, now);
        state
            .requests()
            .filter(|r| decidable.as_ref().is_none_or(|ids| ids.contains(&r.id)))
            .filter(|r| query.status.is_none_or(|status| r.status == status))
            .filter(|r| query.scope.as_ref().is_none_or(|scope| &r.scope == scope))
            .filter(|r| query.user.as_ref().is_none_or(|user| &r.user == user))
            .filter(|r| query.role.as_ref().is_none_or(|role| &r.role == role))
            .filter(|r| viewer.sees_request(state, workflow, r))
            .map(|r| {
                let key = format!("{}|{}", r.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), r.id);
                (key, RequestView::new(r, stages(workflow, state, r)))
            })
            .collect::<Vec<_>>()
    })?;
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

/// An event of the request's history: the event as the log holds it (its metadata names the
/// actor and the client's address), with the actor repeated on top for readers.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HistoryEntry)]
struct HistoryEntry<'e> {
    #[serde(flatten)]
    #[schema(value_type = RecordedEvent)]
    event: &'e RecordedEvent,
    actor: Option<&'e str>,
}

/// Someone who may decide a request now.
#[derive(Debug, Serialize, ToSchema)]
struct Decider<'d> {
    user: &'d str,
    /// Only because they are an administrator (such people are not notified of new requests).
    admin_only: bool,
    /// Only because the request's stage was escalated to them (left out when not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    escalation: bool,
    /// A delegate: the delegator whose authority they would use.
    #[serde(skip_serializing_if = "Option::is_none")]
    delegate_of: Option<&'d str>,
}

/// `GET /requests/{id}`: the request with its history and its deciders.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RequestDetails)]
struct RequestDetailsAnswer<'a> {
    #[serde(flatten)]
    request: RequestView,
    /// Its events and its grant's, in log order.
    history: Vec<HistoryEntry<'a>>,
    deciders: Vec<Decider<'a>>,
}

#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests", operation_id = "getRequest", params(("id" = String, Path,)),
    responses((status = 200, description = "the request, its history (and its grant's) and who may decide it", body = RequestDetailsAnswer), (status = 403, description = "not the requester, a decider, an auditor or an admin"), (status = 404, description = "unknown")))]
pub async fn show(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let RequestDetails { view, history, deciders } = details(&caller, parse_id(&id)?).await?;
    let history = history.iter().map(|event| HistoryEntry { event, actor: event.metadata.actor.as_deref() }).collect();
    let deciders = deciders
        .iter()
        .map(|d| Decider {
            user: &d.user,
            admin_only: d.admin_only,
            escalation: d.escalation,
            delegate_of: d.delegate_of.as_deref(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(RequestDetailsAnswer { request: view, history, deciders }))
}

async fn decide(caller: Caller, id: &str, command: impl FnOnce(Uuid) -> Command) -> Result<HttpResponse, ApiError> {
    let id = parse_id(id)?;
    caller.execute(command(id)).await?;
    Ok(HttpResponse::Ok().json(visible_request(&caller, id)?))
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "requests", operation_id = "approveRequest", params(("id" = String, Path,)), request_body = Option<Approval>,
    responses((status = 200, description = "the request after the approval (still pending while a stage waits for more approvers)", body = RequestView), (status = 403, description = "not_a_decider, self_approval (also for a delegate's own request)"), (status = 404, description = "unknown"), (status = 409, description = "not_pending, expired, already_approved (also when the delegator or their delegate approved)"), (status = 422, description = "duration_too_long, invalid_duration, reason_required")))]
pub async fn approve(caller: Caller, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let Approval { comment, duration } = super::optional_body::<Approval>(&body)?;
    decide(caller, &id, |request| Command::Approve { request, comment, duration }).await
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/reject", tag = "requests", operation_id = "rejectRequest", params(("id" = String, Path,)), request_body = Option<Rejection>,
    responses((status = 200, description = "rejected", body = RequestView), (status = 403, description = "not_a_decider, self_approval"), (status = 404, description = "unknown"), (status = 409, description = "not_pending")))]
pub async fn reject(caller: Caller, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let reason = super::optional_body::<Rejection>(&body)?.reason;
    decide(caller, &id, |request| Command::Reject { request, reason }).await
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/cancel", tag = "requests", operation_id = "cancelRequest", params(("id" = String, Path,)),
    responses((status = 200, description = "cancelled", body = RequestView), (status = 403, description = "not the requester"), (status = 404, description = "unknown"), (status = 409, description = "not_pending")))]
pub async fn cancel(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    decide(caller, &id, |request| Command::Cancel { request }).await
}
