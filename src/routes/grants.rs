//! Grants: direct assignment by deciders and admins, revocation by the holder, a decider or an
//! admin, and the lists (now, or as they stood at a time or log position).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{caller::Caller, paging::PageQuery, problem::ApiError, views::GrantView};
use crate::{
    domain::{Command, Event, Grant, State, Subject},
    workflow::{Action, Duration, Workflow},
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
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    #[serde(default)]
    reason: String,
}

pub(super) fn may_see(caller: &Caller, state: &State, workflow: &Workflow, grant: &Grant, now: DateTime<Utc>) -> bool {
    let own = match &grant.subject {
        Subject::User(user) => user == caller.user(),
        Subject::Team(team) => state.team(team).is_some_and(|t| t.members.contains(caller.user())),
    };
    own || caller.standing_in(state, now).reads_everything()
        || state.authority(workflow, &caller.actor(), &grant.role, &grant.scope, Action::Revoke, now).is_some()
}

fn visible_grant(caller: &Caller, id: Uuid) -> Result<GrantView, ApiError> {
    let now = Utc::now();
    caller.read(|state, workflow| {
        let grant = state.grant(&id).ok_or_else(|| ApiError::NotFound(format!("grant {id}")))?;
        if !may_see(caller, state, workflow, grant, now) {
            return Err(ApiError::forbidden("only the holder, its deciders, auditors and admins see this grant"));
        }
        Ok(GrantView::new(grant, now))
    })?
}

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("grant {text}")))
}

#[utoipa::path(post, path = "/api/v1/grants", tag = "grants", request_body = NewGrant,
    responses((status = 201, description = "granted"), (status = 403, description = "not_a_decider, self_approval"), (status = 409, description = "duplicate_request"), (status = 422, description = "breaks a rule")))]
pub async fn assign(caller: Caller, body: web::Json<NewGrant>) -> Result<HttpResponse, ApiError> {
    let NewGrant { user, team, role, scope, reason, duration } = body.into_inner();
    let subject = match (user, team) {
        (Some(user), None) => Subject::User(user),
        (None, Some(team)) => Subject::Team(team),
        _ => {
            return Err(ApiError::BadRequest { code: "malformed_body", detail: "name exactly one of user and team".into() })
        }
    };
    let events = caller.execute(Command::AssignRole { subject, role, scope, reason, duration }).await?;
    let id = events
        .iter()
        .find_map(|e| match Event::from_parts(&e.event_type, e.data.clone()) {
            Ok(Event::RoleGranted { grant, .. }) => Some(grant),
            _ => None,
        })
        .ok_or_else(|| ApiError::NotFound("the new grant".into()))?;
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
    as_of: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// A moment in the log's history.
enum AsOf {
    Time(DateTime<Utc>),
    Position(i64),
}

fn parse_as_of(text: &str) -> Result<AsOf, ApiError> {
    if let Ok(position) = text.parse::<i64>() {
        return if position >= 0 { Ok(AsOf::Position(position)) } else { Err(ApiError::bad_query("as_of must not be negative")) };
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| AsOf::Time(t.with_timezone(&Utc)))
        .map_err(|_| ApiError::bad_query("as_of must be an RFC 3339 time or a log position"))
}

#[utoipa::path(get, path = "/api/v1/grants", tag = "grants",
    params(("user" = Option<String>, Query,), ("team" = Option<String>, Query,), ("scope" = Option<String>, Query,), ("role" = Option<String>, Query,),
        ("as_of" = Option<String>, Query, description = "RFC 3339 time or log position"), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the grants the caller may see")))]
pub async fn list(caller: Caller, query: web::Query<GrantQuery>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let as_of = query.as_of.as_deref().map(parse_as_of).transpose()?;
    // A position is answered from the state replayed up to it; a time from each grant's interval.
    let replayed = match as_of {
        Some(AsOf::Position(position)) => Some(state_at(&caller, position).await?),
        _ => None,
    };
    let filter = |state: &State, workflow: &Workflow| {
        let moment = match as_of {
            Some(AsOf::Time(time)) => time,
            _ => now,
        };
        state
            .grants()
            .filter(|g| if matches!(as_of, Some(AsOf::Time(_))) { g.gave_at(moment) } else { g.gives_at(moment) })
            .filter(|g| query.user.as_ref().is_none_or(|u| g.subject == Subject::User(u.clone())))
            .filter(|g| query.team.as_ref().is_none_or(|t| g.subject == Subject::Team(t.clone())))
            .filter(|g| query.scope.as_ref().is_none_or(|s| &g.scope == s))
            .filter(|g| query.role.as_ref().is_none_or(|r| &g.role == r))
            .filter(|g| may_see(&caller, state, workflow, g, now))
            .map(|g| (g.id.to_string(), GrantView::new(g, moment)))
            .collect::<Vec<_>>()
    };
    let items = match &replayed {
        // Visibility is judged by who the caller is now.
        Some(past) => caller.read(|_, workflow| filter(past, workflow))?,
        None => caller.read(filter)?,
    };
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

/// The state folded from the log up to and including `position`.
async fn state_at(caller: &Caller, position: i64) -> Result<State, ApiError> {
    let workflow = caller.read(|_, workflow| workflow.clone())?;
    let mut state = State::new(&workflow);
    let mut after = 0;
    while after < position {
        let page = caller.app().store.read_page(after, (position - after).min(5_000)).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in &page {
            if let Ok(event) = Event::from_parts(&event.event_type, event.data.clone()) {
                state.apply(&workflow, &event);
            }
        }
    }
    Ok(state)
}

#[utoipa::path(get, path = "/api/v1/grants/{id}", tag = "grants", params(("id" = String, Path,)),
    responses((status = 200, description = "the grant"), (status = 403, description = "not visible to the caller"), (status = 404, description = "unknown")))]
pub async fn show(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(visible_grant(&caller, parse_id(&id)?)?))
}

#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", tag = "grants", params(("id" = String, Path,)), request_body = Revocation,
    responses((status = 200, description = "revoked"), (status = 403, description = "not the holder, a decider or an admin"), (status = 404, description = "unknown"), (status = 409, description = "already ended")))]
pub async fn revoke(caller: Caller, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let reason = super::optional_body::<Revocation>(&body)?.reason;
    caller.execute(Command::Revoke { grant: id, reason }).await?;
    Ok(HttpResponse::Ok().json(visible_grant(&caller, id)?))
}
