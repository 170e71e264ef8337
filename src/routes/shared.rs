//! What the JSON API and the web pages share: reads judged by who asks (a request with its
//! history and deciders, grants as of a moment, pages of the log) and the API-token commands whose
//! answer carries a secret.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    caller::Caller,
    problem::ApiError,
    views::{GrantView, RequestView, ScopeView, TokenView, WebhookView},
};
use crate::{
    app::AppError,
    auth::{hash_secret, new_secret},
    domain::{Command, Event, Grant, Request, RequestDecider, ScopeId, State, Subject, UserId, WebhookId},
    projections::DomainModel,
    store::{DeliveryState, EventSelection, EventStore, MailState, Moment, RecordedEvent},
    webhooks::{check_target, new_webhook_secret},
    workflow::{Duration, Workflow},
};

pub(crate) fn stages(workflow: &Workflow, state: &State, request: &Request) -> usize {
    let kind = state.scope(&request.scope).map(|s| s.kind.as_str()).unwrap_or_default();
    workflow.rule_for(&request.role, kind).map_or(1, |rule| rule.stages.len().max(1))
}

/// The request as the caller may see it: 404 when unknown, 403 when not theirs to see.
pub(crate) fn visible_request(caller: &Caller, id: Uuid) -> Result<RequestView, ApiError> {
    caller.read(|state, workflow| {
        let request = state.request(&id).ok_or_else(|| ApiError::NotFound(format!("request {id}")))?;
        if !caller.viewer(state, Utc::now()).sees_request(state, workflow, request) {
            return Err(ApiError::forbidden("only the requester, its deciders, auditors and admins see this request"));
        }
        Ok(RequestView::new(request, stages(workflow, state, request)))
    })?
}

pub(crate) fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("request {text}")))
}

pub(crate) fn created_request(events: &[RecordedEvent]) -> Result<Uuid, ApiError> {
    created(events, "request", |event| match event {
        Event::RoleRequested { request, .. } => Some(request),
        _ => None,
    })
}

/// A request with everything its page shows: its events and its grant's (in log order) and who
/// may decide it. 403/404 as for the request itself.
pub(crate) struct RequestDetails {
    pub view: RequestView,
    pub history: Vec<RecordedEvent>,
    pub deciders: Vec<RequestDecider>,
}

pub(crate) async fn details(caller: &Caller, id: Uuid) -> Result<RequestDetails, ApiError> {
    let view = visible_request(caller, id)?;
    let deciders = caller.read(|state, workflow| state.deciders_for(workflow, &id, Utc::now()))?;
    let store = &caller.app().store;
    let mut history = store.read_stream(&format!("request-{id}"), 1).await?;
    if let Some(grant) = &view.grant {
        history.extend(store.read_stream(&format!("grant-{grant}"), 1).await?);
    }
    history.sort_by_key(|e| e.position);
    Ok(RequestDetails { view, history, deciders })
}

/// The grants (of `holder` only, when given) as they stood at `moment`: the first `take` of those
/// `wanted` that the caller may see, in id order after `after`; visibility is judged by who the
/// caller is now.
pub(crate) async fn visible_grants_as_of(
    caller: &Caller,
    moment: Moment,
    holder: Option<&Subject>,
    after: Option<Uuid>,
    take: usize,
    wanted: impl Fn(&Grant) -> bool,
) -> Result<Vec<GrantView>, ApiError> {
    let viewer = caller.read(|state, _| caller.viewer(state, Utc::now()))?;
    let wanted =
        |model: &DomainModel, grant: &Grant| wanted(grant) && viewer.sees_grant(model.state(), model.workflow(), grant);
    let app = &caller.app().app;
    let past = app.projections().grants_as_of(app.store(), moment, holder, after, take, wanted).await?;
    Ok(past.grants.iter().map(|grant| GrantView::new(grant, past.judged_at)).collect())
}

pub(crate) fn require_reader(caller: &Caller) -> Result<(), ApiError> {
    if caller.standing()?.reads_everything() {
        Ok(())
    } else {
        Err(ApiError::forbidden("the log is for auditors and administrators"))
    }
}

/// How many events one page may scan for matches, so that a narrow filter cannot hold a request
/// for long; the answer's `next` continues where it stopped.
const SCAN_PER_PAGE: i64 = 50_000;
const READ_CHUNK: i64 = 1_000;

/// Which end of the log a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

/// One page of a selection and where the next one starts: after `next` (oldest first) or
/// before it (newest first).
pub(crate) struct EventPage {
    pub items: Vec<RecordedEvent>,
    pub next: Option<i64>,
}

/// Up to `limit` events of `selection`, scanning at most `SCAN_PER_PAGE` positions: oldest first
/// from the selection's start, or newest first from just below `before` (the head when `None`).
/// Positions are contiguous, so a window of them is one page read.
pub(crate) async fn events_page(
    store: &EventStore,
    selection: &EventSelection,
    limit: usize,
    order: Order,
    before: Option<i64>,
) -> Result<EventPage, ApiError> {
    let head = store.head().await?.position;
    let floor = selection.starts_after();
    let mut items = Vec::new();
    match order {
        Order::OldestFirst => {
            let mut after = floor;
            let scan_end = after.saturating_add(SCAN_PER_PAGE).min(head);
            let mut finished = false;
            'scan: while after < scan_end && items.len() < limit {
                let page = store.read_page(after, READ_CHUNK.min(scan_end - after)).await?;
                if page.is_empty() {
                    break;
                }
                for event in page {
                    finished = selection.is_past(&event);
                    if finished || items.len() == limit {
                        break 'scan;
                    }
                    after = event.position;
                    if selection.matches(&event) {
                        items.push(event);
                    }
                }
            }
            Ok(EventPage { items, next: (!finished && after < head).then_some(after) })
        }
        Order::NewestFirst => {
            let mut top = before.map_or(head, |before| before - 1).min(head);
            if let Some(Moment::Position(until)) = selection.until {
                top = top.min(until);
            }
            let scan_floor = floor.max(top.saturating_sub(SCAN_PER_PAGE));
            'scan: while top > scan_floor {
                let low = scan_floor.max(top - READ_CHUNK);
                for event in store.read_page(low, top - low).await?.into_iter().rev() {
                    if items.len() == limit {
                        break 'scan;
                    }
                    top = event.position - 1;
                    if selection.matches(&event) {
                        items.push(event);
                    }
                }
            }
            Ok(EventPage { items, next: (top > floor).then_some(top + 1) })
        }
    }
}

/// Creates an API token for `user` (the caller by default): the token and its secret, which
/// exists nowhere else (the log keeps its hash).
pub(crate) async fn create_token(
    caller: &Caller,
    user: Option<String>,
    name: String,
    expires_in: Option<Duration>,
) -> Result<(TokenView, String), ApiError> {
    let secret = new_secret();
    let command = Command::CreateApiToken {
        user: user.map_or_else(|| UserId::known(caller.user()), UserId::known),
        name,
        secret_hash: hash_secret(&secret),
        expires_in,
    };
    let events = caller.execute(command).await?;
    let id = created(&events, "token", |event| match event {
        Event::ApiTokenCreated { token, .. } => Some(token),
        _ => None,
    })?;
    let view = caller.read(|state, _| state.api_token(&id).map(TokenView::new))?;
    Ok((view.ok_or_else(|| ApiError::NotFound(format!("API token {id}")))?, secret))
}

pub(crate) async fn revoke_token(caller: &Caller, id: &str) -> Result<(), ApiError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound(format!("API token {id}")))?;
    caller.execute(Command::RevokeApiToken { token: id }).await?;
    Ok(())
}

/// The id a command made, found among the events it wrote (`pick` recognises the event); `what`
/// names it in the error if the command wrote no such event.
pub(crate) fn created<T>(
    events: &[crate::store::RecordedEvent],
    what: &str,
    pick: impl Fn(crate::domain::Event) -> Option<T>,
) -> Result<T, ApiError> {
    events
        .iter()
        .find_map(|e| crate::domain::Event::from_parts(&e.event_type, &e.data).ok().and_then(&pick))
        .ok_or_else(|| ApiError::NotFound(format!("the new {what}")))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HeldGrant)]
pub(crate) struct HeldGrant {
    #[serde(flatten)]
    pub grant: GrantView,
    /// The team through which the caller holds it, when it is a team grant.
    pub via_team: Option<String>,
}

/// The teams `user` belongs to.
pub(crate) fn teams_of(state: &State, user: &str) -> Vec<String> {
    state.teams().filter(|t| t.members.contains(user)).map(|t| t.id.to_string()).collect()
}

/// The grants that give `user` something now: their own and their teams'.
pub(crate) fn held_grants(state: &State, user: &str, now: DateTime<Utc>) -> Vec<HeldGrant> {
    let teams = teams_of(state, user);
    state
        .grants()
        .filter(|g| g.gives_at(now))
        .filter_map(|g| match &g.subject {
            Subject::User(holder) if holder == user => {
                Some(HeldGrant { grant: GrantView::new(g, now), via_team: None })
            }
            Subject::Team(team) if teams.iter().any(|t| t == team) => {
                Some(HeldGrant { grant: GrantView::new(g, now), via_team: Some(team.to_string()) })
            }
            _ => None,
        })
        .collect()
}

pub(crate) fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.standing()?.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("this is for administrators"))
    }
}

/// Queues dead mail `id` again (admins only); its id.
pub(crate) async fn retry_dead_mail(caller: &Caller, id: &str) -> Result<i64, ApiError> {
    require_admin(caller)?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound(format!("mail {id}")))?;
    match caller.app().store.retry_mail(id).await? {
        None => Err(ApiError::NotFound(format!("mail {id}"))),
        Some(MailState::Dead) => Ok(id),
        Some(state) => Err(ApiError::Conflict {
            code: "not_dead",
            detail: format!("mail {id} is {state}; only dead mail is retried"),
        }),
    }
}

pub(crate) fn show_scope(caller: &Caller, id: &str) -> Result<ScopeView, ApiError> {
    caller
        .read(|state, _| state.scope(id).map(|scope| ScopeView::new(scope, state)))?
        .ok_or_else(|| ApiError::NotFound(format!("scope \"{id}\"")))
}

/// What a new subscription asks for.
pub(crate) struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub scope: Option<ScopeId>,
    pub description: Option<String>,
}

/// Subscribes a webhook (admins only): the subscription and its secret, which is kept outside the
/// log and shown only in this answer. The target is checked first (its host resolved), then the
/// secret kept under a fresh id, then the command decided; a refused command forgets the secret.
/// A failure of the store keeps it: the subscription may have been written all the same (a lost
/// commit answer), and a secret without a subscription is never used.
pub(crate) async fn create_webhook(caller: &Caller, new: NewWebhook) -> Result<(WebhookView, String), ApiError> {
    require_admin_to_change(caller)?;
    check_target(&new.url, caller.app().webhooks.allow_private).await?;
    let id: WebhookId = Uuid::now_v7();
    let secret = new_webhook_secret();
    let store = &caller.app().store;
    store.keep_webhook_secret(&id.to_string(), &secret).await?;
    let command =
        Command::CreateWebhook { id, url: new.url, events: new.events, scope: new.scope, description: new.description };
    let events = match caller.execute(command).await {
        Err(ApiError::Store(error)) => return Err(ApiError::Store(error)),
        Err(refused) => {
            store.forget_webhook_secret(&id.to_string()).await?;
            return Err(refused);
        }
        Ok(events) => events,
    };
    // A repeat of an idempotent call made its subscription before, under another id (whose
    // secret stays); the answer shows that one, and its secret not again.
    let created = created(&events, "webhook", |event| match event {
        Event::WebhookCreated { webhook, .. } => Some(webhook),
        _ => None,
    })?;
    if created != id {
        store.forget_webhook_secret(&id.to_string()).await?;
    }
    Ok((visible_webhook(caller, &created.to_string())?, secret))
}

/// Changes that only an admin makes: an auditor who is not one is told `read_only`, as every
/// writing route tells them; anyone else `forbidden`.
fn require_admin_to_change(caller: &Caller) -> Result<(), ApiError> {
    if caller.standing()?.changes_nothing() {
        return Err(AppError::ReadOnly.into());
    }
    require_admin(caller)
}

/// A subscription, for admins: 403 for anyone else, 404 when unknown.
pub(crate) fn visible_webhook(caller: &Caller, id: &str) -> Result<WebhookView, ApiError> {
    require_admin(caller)?;
    let not_found = || ApiError::NotFound(format!("webhook {id}"));
    let id: WebhookId = id.parse().map_err(|_| not_found())?;
    caller.read(|state, _| state.webhook(&id).map(WebhookView::new))?.ok_or_else(not_found)
}

/// Ends a subscription (admins only): `WebhookDeleted`, then its secret is forgotten. Its pending
/// deliveries die either way: the worker finds the subscription gone from the state.
pub(crate) async fn delete_webhook(caller: &Caller, id: &str) -> Result<(), ApiError> {
    require_admin_to_change(caller)?;
    let view = visible_webhook(caller, id)?;
    let webhook: WebhookId = view.id.parse().map_err(|_| ApiError::NotFound(format!("webhook {id}")))?;
    caller.execute(Command::DeleteWebhook { webhook }).await?;
    if let Err(error) = caller.app().store.forget_webhook_secret(&view.id).await {
        tracing::warn!(%error, webhook = %view.id, "a deleted webhook's secret is still kept");
    }
    Ok(())
}

/// Puts a dead delivery of subscription `webhook` back in line (admins only); its id.
pub(crate) async fn retry_dead_delivery(caller: &Caller, webhook: &str, delivery: &str) -> Result<i64, ApiError> {
    require_admin_to_change(caller)?;
    let view = visible_webhook(caller, webhook)?;
    let id: i64 = delivery.parse().map_err(|_| ApiError::NotFound(format!("delivery {delivery}")))?;
    match caller.app().store.retry_delivery(&view.id, id).await? {
        None => Err(ApiError::NotFound(format!("delivery {id} of webhook {webhook}"))),
        Some(DeliveryState::Dead) => Ok(id),
        Some(state) => Err(ApiError::Conflict {
            code: "not_dead",
            detail: format!("delivery {id} is {state}; only a dead delivery is retried"),
        }),
    }
}
