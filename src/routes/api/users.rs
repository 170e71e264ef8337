//! Users known before they sign in: `POST /users` (administrators register a person, who may then
//! be assigned roles and added to teams) and `GET /users?q=` (administrators and auditors).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Command, User, UserId};
use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The id their sign-in will carry (the token's or identity provider's user claim).
    id: String,
    email: Option<String>,
    name: Option<String>,
}

/// A registered user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    id: String,
    email: Option<String>,
    name: Option<String>,
}

type UserPage = Page<UserView>;

impl UserView {
    fn of(user: &User) -> Self {
        UserView { id: user.id.to_string(), email: user.email.clone(), name: user.name.clone() }
    }
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "createUser", request_body = NewUser,
    responses((status = 201, description = "registered", body = UserView), (status = 403, description = "not an administrator"), (status = 409, description = "already known"), (status = 422, description = "a reserved or invalid id, or a bad email")))]
pub async fn create(caller: Caller, body: web::Json<NewUser>) -> Result<HttpResponse, ApiError> {
    let NewUser { id, email, name } = body.into_inner();
    caller.execute(Command::PreRegisterUser { user: UserId::known(id.clone()), email, name }).await?;
    let user = caller.read(|state, _| state.user(&id).map(UserView::of))?;
    Ok(HttpResponse::Created().json(user.ok_or_else(|| ApiError::NotFound(format!("user \"{id}\"")))?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Searches ids, emails and names, ignoring case.
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "listUsers",
    params(("q" = Option<String>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the users, paged by id", body = UserPage), (status = 403, description = "not an administrator or auditor")))]
pub async fn list(caller: Caller, query: web::Query<UserQuery>) -> Result<HttpResponse, ApiError> {
    if !caller.standing()?.reads_everything() {
        return Err(ApiError::forbidden("users are listed for administrators and auditors"));
    }
    let needle = query.q.as_deref().map(str::to_lowercase);
    let matches = |text: Option<&str>| match (&needle, text) {
        (None, _) => true,
        (Some(needle), Some(text)) => text.to_lowercase().contains(needle.as_str()),
        (Some(_), None) => false,
    };
    let items = caller.read(|state, _| {
        state
            .users()
            .filter(|u| matches(Some(&u.id)) || matches(u.email.as_deref()) || matches(u.name.as_deref()))
            .map(|u| (u.id.to_string(), UserView::of(u)))
            .collect::<Vec<_>>()
    })?;
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}
