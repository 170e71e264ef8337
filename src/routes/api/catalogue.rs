//! The role catalogue and teams. Reading is for every user; changes follow the domain's rules
//! (catalogue changes for admins only, as the workflow allows; team membership by authority).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
    views::TeamView,
};
use crate::{
    domain::{Command, Event, TeamId, UserId},
    workflow::Role,
};

type RolePage = Page<Role>;
type TeamPage = Page<TeamView>;

fn role(caller: &Caller, id: &str) -> Result<Role, ApiError> {
    caller.read(|state, _| state.role(id).cloned())?.ok_or_else(|| ApiError::NotFound(format!("role \"{id}\"")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleQuery {
    /// Searches ids, titles and descriptions.
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", operation_id = "listRoles",
    params(("q" = Option<String>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the role catalogue, paged", body = RolePage)))]
pub async fn list_roles(caller: Caller, query: web::Query<RoleQuery>) -> Result<HttpResponse, ApiError> {
    let needle = query.q.as_deref().map(str::to_lowercase);
    let items = caller.read(|state, _| {
        state
            .roles()
            .values()
            .filter(|r| {
                needle.as_ref().is_none_or(|n| {
                    [&r.id, &r.title, &r.description].iter().any(|text| text.to_lowercase().contains(n))
                })
            })
            .map(|r| (r.id.clone(), r.clone()))
            .collect::<Vec<_>>()
    })?;
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", operation_id = "getRole", params(("id" = String, Path,)),
    responses((status = 200, description = "the role", body = Role), (status = 404, description = "unknown")))]
pub async fn show_role(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(role(&caller, &id)?))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", operation_id = "createRole", request_body(content = Role, description = "a role as in a workflow file, with its id"),
    responses((status = 201, description = "defined", body = Role), (status = 403, description = "not an admin"), (status = 409, description = "exists"), (status = 422, description = "invalid")))]
pub async fn create_role(caller: Caller, body: web::Json<Role>) -> Result<HttpResponse, ApiError> {
    let id = body.id.clone();
    caller.execute(Command::DefineRole { role: body.into_inner() }).await?;
    Ok(HttpResponse::Created().json(role(&caller, &id)?))
}

#[utoipa::path(put, path = "/api/v1/roles/{id}", tag = "roles", operation_id = "editRole", params(("id" = String, Path,)), request_body(content = Role, description = "the whole role, its id as in the path"),
    responses((status = 200, description = "edited", body = Role), (status = 403, description = "not an admin, or the workflow keeps roles immutable"), (status = 404, description = "unknown")))]
pub async fn edit_role(caller: Caller, id: web::Path<String>, body: web::Json<Role>) -> Result<HttpResponse, ApiError> {
    role(&caller, &id)?;
    let mut edited = body.into_inner();
    if edited.id != *id {
        return Err(ApiError::BadRequest {
            code: "id_mismatch",
            detail: "the body's id differs from the path's".into(),
        });
    }
    edited.id = id.clone();
    caller.execute(Command::EditRole { role: edited }).await?;
    Ok(HttpResponse::Ok().json(role(&caller, &id)?))
}

#[utoipa::path(post, path = "/api/v1/roles/{id}/duplicate", tag = "roles", operation_id = "duplicateRole", params(("id" = String, Path,)),
    responses((status = 201, description = "the copy, with id {id}-2, -3, …", body = Role), (status = 403, description = "not an admin"), (status = 404, description = "unknown")))]
pub async fn duplicate_role(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    role(&caller, &id)?;
    let events = caller.execute(Command::DuplicateRole { role: id.into_inner() }).await?;
    let copy = crate::routes::shared::created(&events, "copy", |event| match event {
        Event::RoleDefined { role, .. } => Some(role.id),
        _ => None,
    })?;
    Ok(HttpResponse::Created().json(role(&caller, &copy)?))
}

#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles", operation_id = "deleteRole", params(("id" = String, Path,)),
    responses((status = 204, description = "deleted"), (status = 403, description = "not an admin, or a built-in role"), (status = 404, description = "unknown"), (status = 409, description = "in use")))]
pub async fn delete_role(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    role(&caller, &id)?;
    caller.execute(Command::DeleteRole { role: id.into_inner() }).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn team(caller: &Caller, id: &str) -> Result<TeamView, ApiError> {
    caller
        .read(|state, _| state.team(id).map(TeamView::new))?
        .ok_or_else(|| ApiError::NotFound(format!("team \"{id}\"")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    id: String,
    title: String,
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", operation_id = "createTeam", request_body = NewTeam,
    responses((status = 201, description = "created", body = TeamView), (status = 403, description = "not allowed"), (status = 409, description = "exists")))]
pub async fn create_team(caller: Caller, body: web::Json<NewTeam>) -> Result<HttpResponse, ApiError> {
    let NewTeam { id, title } = body.into_inner();
    let id = TeamId::parse(&id)?;
    caller.execute(Command::CreateTeam { id: id.clone(), title }).await?;
    Ok(HttpResponse::Created().json(team(&caller, &id)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", operation_id = "listTeams",
    params(("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the teams, paged", body = TeamPage)))]
pub async fn list_teams(caller: Caller, query: web::Query<TeamQuery>) -> Result<HttpResponse, ApiError> {
    let items =
        caller.read(|state, _| state.teams().map(|t| (t.id.to_string(), TeamView::new(t))).collect::<Vec<_>>())?;
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", operation_id = "getTeam", params(("id" = String, Path,)),
    responses((status = 200, description = "the team and its members", body = TeamView), (status = 404, description = "unknown")))]
pub async fn show_team(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(team(&caller, &id)?))
}

#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user}", tag = "teams", operation_id = "addTeamMember", params(("id" = String, Path,), ("user" = String, Path,)),
    responses((status = 200, description = "the team with the new member", body = TeamView), (status = 403, description = "no authority over the team's roles, or to one's own benefit"), (status = 404, description = "unknown team"), (status = 409, description = "already_exists: already a member")))]
pub async fn add_member(caller: Caller, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    team(&caller, &id)?;
    caller.execute(Command::AddTeamMember { team: TeamId::known(id.as_str()), user: UserId::known(user) }).await?;
    Ok(HttpResponse::Ok().json(team(&caller, &id)?))
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user}", tag = "teams", operation_id = "removeTeamMember", params(("id" = String, Path,), ("user" = String, Path,)),
    responses((status = 204, description = "removed"), (status = 403, description = "not allowed"), (status = 404, description = "unknown team")))]
pub async fn remove_member(caller: Caller, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    team(&caller, &id)?;
    caller.execute(Command::RemoveTeamMember { team: TeamId::known(id), user: UserId::known(user) }).await?;
    Ok(HttpResponse::NoContent().finish())
}
