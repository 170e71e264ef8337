//! Webhook subscriptions, for admins: `POST /webhooks` (the secret shown once), `GET /webhooks`,
//! `DELETE /webhooks/{id}`, and their deliveries: `GET /webhooks/{id}/deliveries?state=`,
//! `POST /webhooks/{id}/deliveries/{delivery}/retry`.

use crate::routes::shared::{
    create_webhook, delete_webhook, require_admin, retry_dead_delivery, visible_webhook, NewWebhook,
};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ScopeId;
use crate::routes::{
    caller::Caller,
    paging::{after_row, checked_limit, Page, PageQuery},
    problem::ApiError,
    views::WebhookView,
};
use crate::store::{DeliveryState, WebhookDelivery};

type WebhookPage = Page<WebhookView>;
type DeliveryPage = Page<WebhookDelivery>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewWebhook)]
pub struct NewWebhookBody {
    /// Where events are posted: an http(s) URL whose host resolves to public addresses.
    url: String,
    /// Event types to receive (`RoleGranted`, …); every type when left out or empty.
    #[serde(default)]
    events: Vec<String>,
    /// Only events about this scope or a scope below it.
    #[schema(value_type = Option<String>)]
    scope: Option<ScopeId>,
    description: Option<String>,
}

/// A new subscription and, this once, its secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatedWebhook)]
struct CreatedWebhook {
    #[serde(flatten)]
    view: WebhookView,
    /// `whsec_…`: the key of the deliveries' signatures (Standard Webhooks); shown nowhere else.
    secret: String,
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "createWebhook", request_body = NewWebhookBody,
    responses((status = 201, description = "the subscription, with its secret shown this once", body = CreatedWebhook),
        (status = 403, description = "not an admin"),
        (status = 422, description = "a URL that is not http(s) (`invalid_url`), a target that resolves to a private address (`webhook_target_refused`), an unknown event type (`unknown_event_type`) or scope (`unknown_scope`)")))]
pub async fn create(caller: Caller, body: web::Json<NewWebhookBody>) -> Result<HttpResponse, ApiError> {
    let NewWebhookBody { url, events, scope, description } = body.into_inner();
    let (view, secret) = create_webhook(&caller, NewWebhook { url, events, scope, description }).await?;
    Ok(HttpResponse::Created().json(CreatedWebhook { view, secret }))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "listWebhooks",
    params(("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the subscriptions, without their secrets", body = WebhookPage), (status = 403, description = "not an admin")))]
pub async fn list(caller: Caller, query: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    require_admin(&caller)?;
    let items = caller.read(|state, _| {
        state.webhooks().map(|hook| (hook.id.to_string(), WebhookView::new(hook))).collect::<Vec<_>>()
    })?;
    Ok(HttpResponse::Ok().json(query.page(items)?))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "deleteWebhook", params(("id" = String, Path,)),
    responses((status = 204, description = "deleted: its deliveries stop"), (status = 403, description = "not an admin"), (status = 404, description = "unknown")))]
pub async fn delete(caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    delete_webhook(&caller, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// pending, delivered or dead.
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "listWebhookDeliveries",
    params(("id" = String, Path,), ("state" = Option<DeliveryState>, Query,), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "the subscription's deliveries, oldest first", body = DeliveryPage), (status = 403, description = "not an admin"), (status = 404, description = "unknown")))]
pub async fn deliveries(
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let view = visible_webhook(&caller, &id)?;
    let state = query.state.as_deref().map(str::parse::<DeliveryState>).transpose().map_err(ApiError::bad_query)?;
    let limit = checked_limit(query.limit)?;
    let after = after_row(query.cursor.as_deref())?;
    let items = caller.app().store.deliveries(&view.id, state, after, limit as i64 + 1).await?;
    Ok(HttpResponse::Ok().json(Page::of_rows(items, limit, |delivery| delivery.id)))
}

/// A dead delivery put back in line.
#[derive(Debug, Serialize, ToSchema)]
struct RetriedDelivery {
    id: i64,
    state: DeliveryState,
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks", operation_id = "retryWebhookDelivery",
    params(("id" = String, Path,), ("delivery" = i64, Path,)),
    responses((status = 200, description = "pending again, due now (after the subscription's earlier pending deliveries)", body = RetriedDelivery),
        (status = 403, description = "not an admin"), (status = 404, description = "unknown"), (status = 409, description = "not dead (`not_dead`)")))]
pub async fn retry(caller: Caller, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (webhook, delivery) = path.into_inner();
    let id = retry_dead_delivery(&caller, &webhook, &delivery).await?;
    Ok(HttpResponse::Ok().json(RetriedDelivery { id, state: DeliveryState::Pending }))
}
