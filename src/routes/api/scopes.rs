//! Scopes: created by holders of `scope.create` on every parent (admins always), read by every
//! user, deleted by admins.

use crate::routes::shared::show_scope;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{Command, ScopeId};
use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
    views::ScopeView,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScope {
    id: String,
    kind: String,
    #[serde(default)]
    parents: Vec<String>,
    title: String,
    mailbox: Option<String>,
}

type ScopePage = Page<ScopeView>;

#[utoipa::path(post, path = "/api/v1/scopes", tag = "scopes", operation_id = "createScope", request_body = NewScope,
    responses((status = 201, description = "created", body = ScopeView), (status = 403, description = "no scope.create on a parent"), (status = 409, description = "exists"), (status = 422, description = "breaks a rule")))]
pub async fn create(caller: Caller, body: web::Json<NewScope>) -> Result<HttpResponse, ApiError> {
    let NewScope { id, kind, parents, title, mailbox } = body.into_inner();
    let id = ScopeId::parse(&id)?;
    let parents = parents.into_iter().map(ScopeId::known).collect();
    caller.execute(Command::CreateScope { id: id.clone(), kind, parents, title, mailbox }).await?;
    Ok(HttpResponse::Created().json(show_scope(&caller, &id)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    kind: Option<String>,
    parent: Option<String>,
    /// Searches ids and titles.
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/scopes", tag = "scopes", operation_id = "listScopes",
    params(("kind" = Option<String>, Query,), ("parent" = Option<String>, Query,), ("q" = Option<String>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the scopes, paged", body = ScopePage)))]
pub async fn list(caller: Caller, query: web::Query<ScopeQuery>) -> Result<HttpResponse, ApiError> {
    let needle = query.q.as_deref().map(str::to_lowercase);
    let items = caller.read(|state, _| {
        state
            .scopes()
            .filter(|s| query.kind.as_ref().is_none_or(|kind| &s.kind == kind))
            .filter(|s| query.parent.as_ref().is_none_or(|parent| s.parents.iter().any(|p| p == parent)))
            .filter(|s| {
                needle.as_ref().is_none_or(|n| s.id.to_lowercase().contains(n) || s.title.to_lowercase().contains(n))
            })
            .map(|s| (s.id.to_string(), ScopeView::new(s, state)))
            .collect::<Vec<_>>()
    })?;
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

#[utoipa::path(get, path = "/api/v1/scopes/{id}", tag = "scopes", operation_id = "getScope", params(("id" = String, Path,)),
    responses((status = 200, description = "the scope", body = ScopeView), (status = 404, description = "unknown")))]
pub async fn show(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(show_scope(&caller, &id)?))
}

#[utoipa::path(delete, path = "/api/v1/scopes/{id}", tag = "scopes", operation_id = "deleteScope", params(("id" = String, Path,)),
    responses((status = 204, description = "deleted"), (status = 403, description = "not an admin"), (status = 404, description = "unknown"), (status = 409, description = "has children, grants or pending requests")))]
pub async fn delete(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    show_scope(&caller, &id)?;
    caller.execute(Command::DeleteScope { id: ScopeId::known(id.into_inner()) }).await?;
    Ok(HttpResponse::NoContent().finish())
}
