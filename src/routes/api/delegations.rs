//! Delegations (SPEC "Escalation and delegation"): someone who decides by a decision rule lets
//! someone else decide what they may, for at most 90 days. Each person lists the delegations they
//! gave or received; auditors and admins list anyone's. Ended early by the delegator or an admin.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Command, Delegation, Event, ScopeId, UserId};
use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
    views::actor_name,
};
use crate::workflow::Duration;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDelegation {
    /// The delegate.
    to: String,
    /// When it ends: RFC 3339, or a duration from now (`P30D`, `30d`); at most 90 days ahead.
    until: String,
    /// Only matters on this scope and below it (default: wherever the delegator decides).
    scope: Option<String>,
    #[serde(default)]
    reason: String,
}

/// A delegation as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Delegation)]
pub struct DelegationView {
    pub id: String,
    /// The delegator.
    pub from: String,
    /// The delegate.
    pub to: String,
    pub scope: Option<String>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Whether it gives anything now (not ended, before `until`).
    pub active: bool,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
}

impl DelegationView {
    fn new(delegation: &Delegation, now: DateTime<Utc>) -> Self {
        DelegationView {
            id: delegation.id.to_string(),
            from: delegation.from.to_string(),
            to: delegation.to.to_string(),
            scope: delegation.scope.as_ref().map(ToString::to_string),
            reason: delegation.reason.clone(),
            created_at: delegation.created_at,
            until: delegation.until,
            active: delegation.in_force(now),
            ended_at: delegation.ended_at,
            ended_by: delegation.ended_by.as_ref().map(actor_name),
        }
    }
}

type DelegationPage = Page<DelegationView>;

#[utoipa::path(post, path = "/api/v1/delegations", tag = "delegations", operation_id = "createDelegation", request_body = NewDelegation,
    responses((status = 201, description = "the delegation", body = DelegationView),
        (status = 403, description = "no_authority_to_delegate (admin power and delegated authority are not delegated)"),
        (status = 422, description = "self_delegation, unknown_user, unknown_scope, until_in_past, delegation_too_long, invalid_duration")))]
pub async fn create(caller: Caller, body: web::Json<NewDelegation>) -> Result<HttpResponse, ApiError> {
    let NewDelegation { to, until, scope, reason } = body.into_inner();
    let (until, duration) = match DateTime::parse_from_rfc3339(until.trim()) {
        Ok(at) => (Some(at.with_timezone(&Utc)), None),
        Err(_) => match until.trim().parse::<Duration>() {
            Ok(duration) => (None, Some(duration)),
            Err(why) => {
                return Err(ApiError::BadRequest {
                    code: "malformed_body",
                    detail: format!("until must be an RFC 3339 time or a duration: {why}"),
                })
            }
        },
    };
    let command =
        Command::Delegate { to: UserId::known(to), until, duration, scope: scope.map(ScopeId::known), reason };
    let events = caller.execute(command).await?;
    let id = crate::routes::shared::created(&events, "delegation", |event| match event {
        Event::DelegationGranted { delegation, .. } => Some(delegation),
        _ => None,
    })?;
    let now = Utc::now();
    let view = caller.read(|state, _| state.delegation(&id).map(|d| DelegationView::new(d, now)))?;
    let view = view.ok_or_else(|| ApiError::NotFound(format!("delegation {id}")))?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationQuery {
    user: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/delegations", tag = "delegations", operation_id = "listDelegations",
    params(("user" = Option<String>, Query, description = "whose delegations, given or received (default: the caller); others' for auditors and admins only"),
        ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the delegations the user gave or received, oldest first", body = DelegationPage), (status = 403, description = "another user's, and not an auditor or an admin")))]
pub async fn list(caller: Caller, query: web::Query<DelegationQuery>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let user = query.user.clone().unwrap_or_else(|| caller.user().to_string());
    let items = caller.read(|state, _| {
        if user != caller.user() && !caller.standing_in(state, now).reads_everything() {
            return Err(ApiError::forbidden("only auditors and admins list other people's delegations"));
        }
        Ok(state
            .delegations()
            .filter(|d| d.from == user || d.to == user)
            .map(|d| (format!("{}|{}", d.created_at.timestamp_micros(), d.id), DelegationView::new(d, now)))
            .collect::<Vec<_>>())
    })??;
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

#[utoipa::path(delete, path = "/api/v1/delegations/{id}", tag = "delegations", operation_id = "endDelegation", params(("id" = String, Path,)),
    responses((status = 204, description = "ended: the delegate decides nothing more through it"), (status = 403, description = "not the delegator or an admin"), (status = 404, description = "unknown"), (status = 409, description = "not_active: already ended or past its end")))]
pub async fn end(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let delegation: Uuid = id.parse().map_err(|_| ApiError::NotFound(format!("delegation {id}")))?;
    caller.execute(Command::EndDelegation { delegation }).await?;
    Ok(HttpResponse::NoContent().finish())
}
