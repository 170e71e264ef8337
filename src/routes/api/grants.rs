//! Grants: direct assignment by deciders and admins, revocation by the holder, a decider or an
//! admin, and the lists (now, or as they stood at a time or log position).

use crate::routes::shared::visible_grants_as_of;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
    views::{GrantView, RequestView},
};
use crate::{
    domain::{Command, Event, Grant, ScopeId, Subject, TeamId, UserId},
    store::Moment,
    workflow::Duration,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    user: Option<String>,
    team: Option<String>,
    role: String,
    scope: String,
    reason: String,
    #[schema(value_type = Option<String>)]
    duration: Option<Duration>,
    /// RFC 3339: the grant starts then (in the future, within a year).
    starts_at: Option<DateTime<Utc>>,
}

/// `POST /grants/{id}/extend`: how much longer, and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// ISO 8601 (`P30D`) or short (`30d`): added to the grant's end once approved.
    #[schema(value_type = String)]
    duration: Duration,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    #[serde(default)]
    reason: String,
}

type GrantPage = Page<GrantView>;

fn visible_grant(caller: &Caller, id: Uuid) -> Result<GrantView, ApiError> {
    let now = Utc::now();
    caller.read(|state, workflow| {
        let grant = state.grant(&id).ok_or_else(|| ApiError::NotFound(format!("grant {id}")))?;
        if !caller.viewer(state, now).sees_grant(state, workflow, grant) {
            return Err(ApiError::forbidden("only the holder, its deciders, auditors and admins see this grant"));
        }
        Ok(GrantView::new(grant, now))
    })?
}

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("grant {text}")))
}

#[utoipa::path(post, path = "/api/v1/grants", tag = "grants", operation_id = "createGrant", request_body = NewGrant,
    responses((status = 201, description = "granted", body = GrantView), (status = 403, description = "not_a_decider, self_approval"), (status = 409, description = "duplicate_request"), (status = 422, description = "breaks a rule")))]
pub async fn assign(caller: Caller, body: web::Json<NewGrant>) -> Result<HttpResponse, ApiError> {
    let NewGrant { user, team, role, scope, reason, duration, starts_at } = body.into_inner();
    let subject = match (user, team) {
        (Some(user), None) => Subject::User(UserId::known(user)),
        (None, Some(team)) => Subject::Team(TeamId::known(team)),
        _ => {
            return Err(ApiError::BadRequest {
                code: "malformed_body",
                detail: "name exactly one of user and team".into(),
            })
        }
    };
    let scope = ScopeId::known(scope);
    let events = caller.execute(Command::AssignRole { subject, role, scope, reason, duration, starts_at }).await?;
    let id = crate::routes::shared::created(&events, "grant", |event| match event {
        Event::RoleGranted { grant, .. } => Some(grant),
        _ => None,
    })?;
    Ok(HttpResponse::Created().json(visible_grant(&caller, id)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    user: Option<String>,
    team: Option<String>,
    scope: Option<String>,
    role: Option<String>,
    /// RFC 3339 time or log position: the grants as they stood then.
    as_of: Option<Moment>,
    cursor: Option<String>,
    limit: Option<usize>,
}

impl GrantQuery {
    fn wants(&self, grant: &Grant) -> bool {
        self.user.as_ref().is_none_or(|u| grant.subject == Subject::User(UserId::known(u.as_str())))
            && self.team.as_ref().is_none_or(|t| grant.subject == Subject::Team(TeamId::known(t.as_str())))
            && self.scope.as_ref().is_none_or(|s| &grant.scope == s)
            && self.role.as_ref().is_none_or(|r| &grant.role == r)
    }
}

#[utoipa::path(get, path = "/api/v1/grants", tag = "grants", operation_id = "listGrants",
    params(("user" = Option<String>, Query,), ("team" = Option<String>, Query,), ("scope" = Option<String>, Query,), ("role" = Option<String>, Query,),
        ("as_of" = Option<String>, Query, description = "RFC 3339 time or log position: the grants as they stood then"), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the grants the caller may see, in id order", body = GrantPage)))]
pub async fn list(caller: Caller, query: web::Query<GrantQuery>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    // Grants are listed in id order, the order both the state and the validity history keep, so
    // a page reads only as far as it shows (one beyond it tells whether another follows).
    let (after, take) = (paging.after_id()?, paging.limit()? + 1);
    let grants: Vec<GrantView> = match query.as_of {
        Some(moment) => {
            let holder = query
                .user
                .clone()
                .map(|u| Subject::User(UserId::known(u)))
                .or_else(|| query.team.clone().map(|t| Subject::Team(TeamId::known(t))));
            visible_grants_as_of(&caller, moment, holder.as_ref(), after, take, |grant| query.wants(grant)).await?
        }
        None => caller.read(|state, workflow| {
            let viewer = caller.viewer(state, now);
            state
                .grants_after(after)
                .filter(|g| (g.gives_at(now) || g.is_scheduled(now)) && query.wants(g))
                .filter(|g| viewer.sees_grant(state, workflow, g))
                .take(take)
                .map(|g| GrantView::new(g, now))
                .collect()
        })?,
    };
    let items = grants.into_iter().map(|grant| (grant.id.clone(), grant)).collect();
    Ok(HttpResponse::Ok().json(paging.page_read_in_order(items)?))
}

#[utoipa::path(get, path = "/api/v1/grants/{id}", tag = "grants", operation_id = "getGrant", params(("id" = String, Path,)),
    responses((status = 200, description = "the grant", body = GrantView), (status = 403, description = "not visible to the caller"), (status = 404, description = "unknown")))]
pub async fn show(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(visible_grant(&caller, parse_id(&id)?)?))
}

#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", tag = "grants", operation_id = "revokeGrant", params(("id" = String, Path,)), request_body = Option<Revocation>,
    responses((status = 200, description = "revoked", body = GrantView), (status = 403, description = "not the holder, a decider or an admin"), (status = 404, description = "unknown"), (status = 409, description = "already ended")))]
pub async fn revoke(caller: Caller, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let reason = super::optional_body::<Revocation>(&body)?.reason;
    caller.execute(Command::Revoke { grant: id, reason }).await?;
    Ok(HttpResponse::Ok().json(visible_grant(&caller, id)?))
}

#[utoipa::path(post, path = "/api/v1/grants/{id}/extend", tag = "grants", operation_id = "extendGrant", params(("id" = String, Path,)), request_body = Extension,
    responses((status = 201, description = "the extension request, pending (`extends` names the grant)", body = RequestView), (status = 403, description = "not the holder (team grants are extended by a decider's direct assignment)"), (status = 404, description = "unknown"),
        (status = 409, description = "not_active, duplicate_request (an extension is pending)"), (status = 422, description = "no_end, invalid_duration, duration_too_long")))]
pub async fn extend(
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<Extension>,
) -> Result<HttpResponse, ApiError> {
    let grant = parse_id(&id)?;
    let Extension { duration, reason } = body.into_inner();
    let events = caller.execute(Command::ExtendGrant { grant, duration, reason }).await?;
    let request = crate::routes::shared::created_request(&events)?;
    Ok(HttpResponse::Created().json(crate::routes::shared::visible_request(&caller, request)?))
}
