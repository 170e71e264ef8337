//! Undelivered mail, for admins: `GET /outbox?state=` and `POST /outbox/{id}/retry`.

use crate::routes::shared::{require_admin, retry_dead_mail};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::{
    caller::Caller,
    paging::{after_row, checked_limit, Page},
    problem::ApiError,
};
use crate::store::{MailState, OutboxMail};

type MailPage = Page<OutboxMail>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// pending, sent or dead.
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/outbox", tag = "mail", operation_id = "listOutbox",
    params(("state" = Option<MailState>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "mail in the outbox, oldest first", body = MailPage), (status = 403, description = "not an admin")))]
pub async fn list(caller: Caller, query: web::Query<OutboxQuery>) -> Result<HttpResponse, ApiError> {
    require_admin(&caller)?;
    let state = query.state.as_deref().map(str::parse::<MailState>).transpose().map_err(ApiError::bad_query)?;
    let limit = checked_limit(query.limit)?;
    let items = caller.app().store.outbox(state, after_row(query.cursor.as_deref())?, limit as i64 + 1).await?;
    Ok(HttpResponse::Ok().json(Page::of_rows(items, limit, |mail| mail.id)))
}

/// Dead mail queued again.
#[derive(Debug, Serialize, ToSchema)]
struct RetriedMail {
    id: i64,
    state: MailState,
}

#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "mail", operation_id = "retryMail", params(("id" = i64, Path,)),
    responses((status = 200, description = "queued again, due now", body = RetriedMail), (status = 403, description = "not an admin"), (status = 404, description = "unknown"), (status = 409, description = "not dead")))]
pub async fn retry(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = retry_dead_mail(&caller, &id).await?;
    Ok(HttpResponse::Ok().json(RetriedMail { id, state: MailState::Pending }))
}
