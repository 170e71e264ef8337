//! `/ui/admin/webhooks`, for administrators: the subscriptions with their recent deliveries, a
//! form to subscribe (the secret shown once), delete, and Retry on dead deliveries. Each form runs
//! the API's helper as the signed-in admin.

use actix_web::{http::StatusCode, web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use strum::VariantNames;

use super::{
    admin::admin_form,
    after_form, html_with,
    pages::Empty,
    session::{Header, Session},
    PageError,
};
use crate::{
    domain::{Event, ScopeId},
    routes::{
        problem::ApiError,
        shared::{self, require_admin, NewWebhook},
        views::WebhookView,
    },
    store::WebhookDelivery,
};

/// Deliveries shown per subscription, newest first.
const RECENT_DELIVERIES: i64 = 20;

struct Subscription {
    hook: WebhookView,
    recent: Vec<WebhookDelivery>,
}

/// What the last form did, said above the list.
enum FormOutcome {
    Refused(String),
    /// A new subscription: its secret, shown this once.
    Created {
        hook: WebhookView,
        secret: String,
    },
}

#[derive(Template)]
#[template(path = "web/webhooks.html")]
struct WebhooksPage {
    head: Option<Header>,
    csrf: String,
    notice: Option<FormOutcome>,
    subscriptions: Vec<Subscription>,
    event_types: &'static [&'static str],
}

async fn webhooks_answer(
    session: &Session,
    status: StatusCode,
    notice: Option<FormOutcome>,
) -> Result<HttpResponse, PageError> {
    let caller = &session.caller;
    require_admin(caller)?;
    let hooks = caller.read(|state, _| state.webhooks().map(WebhookView::new).collect::<Vec<_>>())?;
    let mut subscriptions = Vec::with_capacity(hooks.len());
    for hook in hooks {
        let recent = caller.app().store.recent_deliveries(&hook.id, RECENT_DELIVERIES).await.map_err(ApiError::from)?;
        subscriptions.push(Subscription { hook, recent });
    }
    let page = WebhooksPage {
        head: session.head(),
        csrf: session.csrf_token(),
        notice,
        subscriptions,
        event_types: Event::VARIANTS,
    };
    html_with(status, page)
}

pub async fn webhooks_page(session: Session) -> Result<HttpResponse, PageError> {
    webhooks_answer(&session, StatusCode::OK, None).await
}

/// After a form: back to the page, or the page again with the refusal said above the list.
async fn after(session: &Session, done: Result<(), ApiError>) -> Result<HttpResponse, PageError> {
    let again = |status, refused| webhooks_answer(session, status, Some(FormOutcome::Refused(refused)));
    after_form(done, "/ui/admin/webhooks", again).await
}

#[derive(Deserialize)]
struct WebhookForm {
    url: String,
    /// Event types separated by commas or spaces; empty: every type.
    #[serde(default)]
    events: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    description: String,
}

/// Subscribes and answers the page with the secret, shown this once (the page is `no-store`).
pub async fn create(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form: WebhookForm = admin_form(&session, &body)?;
    let given = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
    let new = NewWebhook {
        url: form.url.trim().to_string(),
        events: form.events.split([',', ' ']).filter(|e| !e.is_empty()).map(String::from).collect(),
        scope: given(&form.scope).map(ScopeId::known),
        description: given(&form.description),
    };
    match shared::create_webhook(&session.caller, new).await {
        Ok((hook, secret)) => {
            webhooks_answer(&session, StatusCode::CREATED, Some(FormOutcome::Created { hook, secret })).await
        }
        Err(error) => after(&session, Err(error)).await,
    }
}

pub async fn delete(session: Session, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    admin_form::<Empty>(&session, &body)?;
    after(&session, shared::delete_webhook(&session.caller, &id).await).await
}

pub async fn retry(
    session: Session,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    admin_form::<Empty>(&session, &body)?;
    let (webhook, delivery) = path.into_inner();
    after(&session, shared::retry_dead_delivery(&session.caller, &webhook, &delivery).await.map(drop)).await
}
