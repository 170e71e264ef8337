//! API tokens: created by admins (for anyone) or by API-role holders (for themselves); the
//! secret is in the creation answer only.

use crate::routes::shared::{create_token, revoke_token};
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
    views::TokenView,
};
use crate::workflow::Duration;

type TokenPage = Page<TokenView>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Whose token (default: the caller).
    user: Option<String>,
    name: String,
    /// How long it stays valid (default: until revoked).
    #[schema(value_type = Option<String>)]
    expires_in: Option<Duration>,
}

/// A new API token: the token and, this once, its secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatedToken)]
struct CreatedToken {
    #[serde(flatten)]
    view: TokenView,
    /// The secret to send as `Authorization: Bearer …`; shown nowhere else.
    token: String,
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", operation_id = "createToken", request_body = NewToken,
    responses((status = 201, description = "the token, with its secret shown this once", body = CreatedToken), (status = 403, description = "not an admin or an API-role holder acting for themselves")))]
pub async fn create(caller: Caller, body: web::Json<NewToken>) -> Result<HttpResponse, ApiError> {
    let NewToken { user, name, expires_in } = body.into_inner();
    let (view, token) = create_token(&caller, user, name, expires_in).await?;
    Ok(HttpResponse::Created().json(CreatedToken { view, token }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    user: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", operation_id = "listTokens",
    params(("user" = Option<String>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "tokens without their secrets: the caller's own, or everyone's for admins", body = TokenPage)))]
pub async fn list(caller: Caller, query: web::Query<TokenQuery>) -> Result<HttpResponse, ApiError> {
    let items = caller.read(|state, _| {
        let admin = caller.standing_in(state, Utc::now()).admin;
        state
            .api_tokens()
            .filter(|t| admin || t.user == caller.user())
            .filter(|t| query.user.as_ref().is_none_or(|u| &t.user == u))
            .map(|t| (format!("{}|{}", t.created_at.timestamp_micros(), t.id), TokenView::new(t)))
            .collect::<Vec<_>>()
    })?;
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", operation_id = "revokeToken", params(("id" = String, Path,)),
    responses((status = 204, description = "revoked, on every server process within a second"), (status = 403, description = "not the owner or an admin"), (status = 404, description = "unknown"), (status = 409, description = "already revoked")))]
pub async fn revoke(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    revoke_token(&caller, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
