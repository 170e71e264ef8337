//! The pages: each reads through the caller (the API's visibility rules) and writes through
//! `Caller::execute` (the API's commands), and renders a template of `templates/web/`.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::{
    html, html_with, optional_duration, refusal, return_path, see_other,
    session::{self, Header, Session, SESSION_COOKIE, SIGNIN_COOKIE},
    PageError, ReturnQuery,
};
use crate::{
    auth::{AuthError, LoginClaims},
    domain::{Asked, Command, DomainError, MailPreferences, RequestDecider, ScopeId, State, UserId},
    routes::sentences::sentence,
    routes::AppState,
    routes::{
        problem::ApiError,
        shared::show_scope,
        shared::{created_request, details, parse_id, stages, RequestDetails},
        shared::{held_grants, HeldGrant},
        views::{GrantView, RequestView, ScopeView},
    },
    store::RecordedEvent,
    workflow::Workflow,
};

/// How long a development sign-in lasts.
const DEVELOPMENT_SESSION_HOURS: i64 = 12;
/// The longest scope list the request page shows; the search box narrows it.
const SCOPES_SHOWN: usize = 50;

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").body(include_str!("../../../templates/web/style.css"))
}

#[derive(Template)]
#[template(path = "web/signin.html")]
struct SignInPage {
    head: Option<Header>,
    csrf: String,
    development: bool,
    error: Option<String>,
    /// "Sign in with …": the OpenID Connect provider's name.
    provider: Option<String>,
    /// Why the provider cannot be used now.
    provider_problem: Option<String>,
    /// The page to go back to once signed in (a path of these pages, or `/ui`).
    next: String,
    /// The provider's sign-in, going back to `next` too.
    oidc_login: String,
}

fn signin_page(
    app: &AppState,
    nonce: String,
    next: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let ui = &app.ui;
    let provider = app.auth.provider();
    let page = SignInPage {
        head: None,
        csrf: ui.csrf_token(&nonce),
        development: ui.development_signin,
        error,
        provider: provider.map(|p| p.display_name()),
        provider_problem: provider.and_then(|p| p.unavailable()),
        next: next.to_string(),
        oidc_login: format!("/ui/oidc/login?{}", serde_urlencoded::to_string([("next", next)]).unwrap_or_default()),
    };
    let html = page.render()?;
    Ok(HttpResponse::build(status)
        .cookie(ui.cookie(SIGNIN_COOKIE, nonce))
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// `GET /ui/signin[?next=/ui/…]`: the form; a browser already signed in goes on to `next` at once.
pub async fn signin_form(
    request: HttpRequest,
    query: web::Query<ReturnQuery>,
    session: Result<Session, PageError>,
) -> Result<HttpResponse, PageError> {
    let next = return_path(query.next.as_deref());
    match session {
        Ok(_) if query.next.is_some() => return Ok(see_other(next)),
        Err(error @ PageError::Api(ApiError::Store(_))) => return Err(error),
        _ => {}
    }
    let nonce = request.cookie(SIGNIN_COOKIE).map(|c| c.value().to_string()).unwrap_or_else(crate::auth::random_hex);
    signin_page(&session::app(&request), nonce, next, None, StatusCode::OK)
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    next: String,
}

pub async fn signin(request: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let app = session::app(&request);
    let nonce = request.cookie(SIGNIN_COOKIE).map(|c| c.value().to_string());
    let form: SignInForm = app.ui.checked_form(nonce.as_deref(), &body)?;
    let nonce = nonce.unwrap_or_default();
    let next = return_path(Some(&form.next));
    let (token, user) = (form.token.trim(), form.user.trim());
    let token = if !token.is_empty() {
        token.to_string()
    } else if !user.is_empty() && app.ui.development_signin {
        let exp = (Utc::now() + chrono::Duration::hours(DEVELOPMENT_SESSION_HOURS)).timestamp();
        let claims = LoginClaims { sub: user.to_string(), exp, email: None, name: None, roles: None };
        match app.auth.sign(&claims) {
            Ok(token) => token,
            Err(error) => return signin_page(&app, nonce, next, Some(error.to_string()), StatusCode::UNAUTHORIZED),
        }
    } else {
        let missing = "paste a login token".to_string();
        return signin_page(&app, nonce, next, Some(missing), StatusCode::UNAUTHORIZED);
    };
    match app.auth.authenticate(&app.app, Some(&format!("Bearer {token}"))).await {
        Ok(_) => {
            let mut response = see_other(next);
            response.add_cookie(&app.ui.cookie(SESSION_COOKIE, token))?;
            response.add_removal_cookie(&app.ui.cookie(SIGNIN_COOKIE, String::new()))?;
            Ok(response)
        }
        Err(AuthError::Store(error)) => Err(ApiError::from(AuthError::Store(error)).into()),
        Err(refused) => signin_page(&app, nonce, next, Some(refused.to_string()), StatusCode::UNAUTHORIZED),
    }
}

/// Forms that carry nothing but their CSRF token.
#[derive(Deserialize)]
pub(super) struct Empty {}

pub async fn signout(request: HttpRequest, session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    session.form::<Empty>(&body)?;
    let hint = request.cookie(super::oidc::ID_TOKEN_COOKIE).map(|c| c.value().to_string());
    let end_session = session.caller.app().auth.provider().and_then(|p| p.end_session_url(hint.as_deref()));
    let mut response = match end_session {
        // A page that moves on, not a redirect: the form's `form-action 'self'` forbids one to the provider.
        Some(location) => super::oidc::continuation("Signed out", "Sign out at the identity provider too", &location)?,
        None => see_other("/ui/signin"),
    };
    response.add_removal_cookie(&session.ui().cookie(SESSION_COOKIE, String::new()))?;
    response.add_removal_cookie(&session.ui().cookie(super::oidc::ID_TOKEN_COOKIE, String::new()))?;
    Ok(response)
}

#[derive(Template)]
#[template(path = "web/home.html")]
struct HomePage {
    head: Option<Header>,
    csrf: String,
    grants: Vec<HeldGrant>,
    requests: Vec<RequestView>,
    preferences: MailPreferences,
}

pub async fn home(session: Session) -> Result<HttpResponse, PageError> {
    let caller = &session.caller;
    let (grants, requests, preferences) = caller.read(|state, workflow| {
        let mut requests: Vec<RequestView> = state
            .requests()
            .filter(|r| r.user == caller.user())
            .map(|r| RequestView::new(r, stages(workflow, state, r)))
            .collect();
        requests.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        (held_grants(state, caller.user(), Utc::now()), requests, state.mail_preferences(caller.user()))
    })?;
    html(HomePage { head: session.head(), csrf: session.csrf_token(), grants, requests, preferences })
}

struct ScopeChoice {
    id: String,
    title: String,
    kind: String,
}

struct RoleChoice {
    id: String,
    title: String,
    max_duration: Option<String>,
    /// The role's questions, answered in fields named `answer.{role}.{question}`.
    questions: Vec<crate::workflow::Question>,
}

#[derive(Template)]
#[template(path = "web/request.html")]
struct RequestPage {
    head: Option<Header>,
    csrf: String,
    q: String,
    scopes: Vec<ScopeChoice>,
    scope: Option<ScopeChoice>,
    roles: Vec<RoleChoice>,
    form: RequestForm,
    error: Option<String>,
}

#[derive(Default, Deserialize)]
pub struct RequestQuery {
    #[serde(default)]
    q: String,
    scope: Option<String>,
}

#[derive(Default, Deserialize)]
struct RequestForm {
    scope: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    ticket: String,
    /// RFC 3339, or empty: the grant starts at the approval.
    #[serde(default)]
    starts_at: String,
    /// The answers (`answer.{role}.{question}`) and whatever else the form sent (its CSRF token).
    #[serde(flatten)]
    fields: std::collections::BTreeMap<String, String>,
}

impl RequestForm {
    /// What was typed for `question` of `role`.
    fn answer(&self, role: &str, question: &str) -> &str {
        self.fields.get(&format!("answer.{role}.{question}")).map_or("", String::as_str)
    }

    /// The non-empty answers given for the chosen role's questions, by question id.
    fn answers(&self) -> std::collections::BTreeMap<String, String> {
        let prefix = format!("answer.{}.", self.role);
        self.fields
            .iter()
            .filter_map(|(name, text)| Some((name.strip_prefix(&prefix)?.to_string(), text.trim().to_string())))
            .filter(|(_, text)| !text.is_empty())
            .collect()
    }
}

/// The request form: scopes matching `q`; once a scope is chosen, the roles that may be
/// requested on its kind (the command checks every rule again).
fn request_form_page(
    session: &Session,
    q: &str,
    form: RequestForm,
    error: Option<String>,
) -> Result<RequestPage, PageError> {
    let needle = q.trim().to_lowercase();
    let (scopes, scope, roles) = session.caller.read(|state, _| {
        let choice = |s: &crate::domain::Scope| ScopeChoice {
            id: s.id.to_string(),
            title: s.title.clone(),
            kind: s.kind.clone(),
        };
        let scopes = state
            .scopes()
            .filter(|s| {
                needle.is_empty() || s.id.to_lowercase().contains(&needle) || s.title.to_lowercase().contains(&needle)
            })
            .take(SCOPES_SHOWN)
            .map(choice)
            .collect::<Vec<_>>();
        let scope = state.scope(&form.scope);
        let roles = scope.map_or_else(Vec::new, |scope| {
            state
                .roles()
                .values()
                .filter(|r| r.requestable && !r.locked && r.kinds.contains(&scope.kind))
                .map(|r| RoleChoice {
                    id: r.id.clone(),
                    title: r.title.clone(),
                    max_duration: r.max_duration.map(|d| d.to_string()),
                    questions: r.questions.clone(),
                })
                .collect()
        });
        (scopes, scope.map(choice), roles)
    })?;
    Ok(RequestPage {
        head: session.head(),
        csrf: session.csrf_token(),
        q: q.to_string(),
        scopes,
        scope,
        roles,
        form,
        error,
    })
}

pub async fn request_form(session: Session, query: web::Query<RequestQuery>) -> Result<HttpResponse, PageError> {
    let RequestQuery { q, scope } = query.into_inner();
    let form = RequestForm { scope: scope.unwrap_or_default(), ..RequestForm::default() };
    html(request_form_page(&session, &q, form, None)?)
}

/// Sends the form's request; its id, or why not.
async fn send_request(session: &Session, form: &RequestForm) -> Result<uuid::Uuid, ApiError> {
    let duration = optional_duration("duration", &form.duration)?;
    let starts_at = match form.starts_at.trim() {
        "" => None,
        text => Some(chrono::DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|error| {
            crate::domain::DomainError::InvalidStartsAt(format!("starts_at must be an RFC 3339 time: {error}"))
        })?),
    };
    let command = Command::RequestRole {
        role: form.role.clone(),
        scope: ScopeId::known(form.scope.as_str()),
        reason: form.reason.clone(),
        duration,
        asked: Asked {
            starts_at,
            user: None,
            answers: form.answers(),
            ticket: Some(form.ticket.trim().to_string()).filter(|ticket| !ticket.is_empty()),
        },
    };
    let events = session.caller.execute(command).await?;
    created_request(&events)
}

pub async fn request(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form: RequestForm = session.form(&body)?;
    match send_request(&session, &form).await {
        Ok(id) => Ok(see_other(&format!("/ui/requests/{id}"))),
        // Refusals are said next to the form, which keeps what was typed.
        Err(error) => {
            let refusal = refusal(error)?;
            let status = actix_web::ResponseError::status_code(&refusal);
            html_with(status, request_form_page(&session, "", form, Some(refusal.to_string()))?)
        }
    }
}

/// A decider as pages name them: admins who decide only as admins, delegates and escalation
/// deciders are marked.
pub(super) fn decider_name(decider: RequestDecider) -> String {
    match (&decider.delegate_of, decider.admin_only, decider.escalation) {
        (Some(delegator), _, _) => format!("{} (delegate of {delegator})", decider.user),
        (None, true, _) => format!("{} (admin)", decider.user),
        (None, false, true) => format!("{} (escalation)", decider.user),
        (None, false, false) => decider.user.into(),
    }
}

pub async fn cancel(session: Session, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    session.form::<Empty>(&body)?;
    session.caller.execute(Command::Cancel { request: parse_id(&id)? }).await?;
    Ok(see_other("/ui"))
}

#[derive(Deserialize)]
struct PreferencesForm {
    mail: String,
    digest_hour: String,
}

/// `POST /ui/preferences`: the home page's mail preferences, refused as the API refuses them.
pub async fn set_preferences(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form: PreferencesForm = session.form(&body)?;
    let hour = form.digest_hour.trim().parse::<i64>().map_err(|_| {
        DomainError::InvalidPreferences(format!(
            "the digest's hour must be a number from 0 to 23, not \"{}\"",
            form.digest_hour
        ))
    });
    let preferences = hour.and_then(|hour| MailPreferences::parse(&form.mail, hour)).map_err(ApiError::from)?;
    let user = UserId::known(session.caller.user());
    session.caller.execute(Command::SetMailPreferences { user, preferences }).await?;
    Ok(see_other("/ui"))
}

/// An event as pages show it.
pub(super) struct Step {
    pub position: i64,
    pub at: String,
    pub event_type: String,
    pub stream: String,
    pub actor: String,
    /// The event in a sentence for people; `data` is the JSON recorded.
    pub sentence: String,
    pub data: String,
}

impl Step {
    pub(super) fn new(state: &State, event: &RecordedEvent) -> Self {
        Step {
            sentence: sentence(state, event),
            position: event.position,
            at: event.recorded_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            event_type: event.event_type.clone(),
            stream: event.stream.clone(),
            actor: event.metadata.actor.clone().unwrap_or_else(|| "command-line".into()),
            data: event.data.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "web/request_page.html")]
struct RequestDetailPage {
    head: Option<Header>,
    csrf: String,
    request: RequestView,
    timeline: Vec<Step>,
    /// The stages as a progress picture.
    stages: Vec<StageStep>,
    deciders: Vec<String>,
    mine: bool,
}

/// One stage of a request as its page draws it.
struct StageStep {
    name: String,
    quorum: u32,
    /// Who approved in it.
    approvers: Vec<String>,
    /// Approvals it still needs.
    remaining: u32,
    /// `done`, `current` (waiting for approvals), `stopped` (rejected, cancelled or expired
    /// there) or `waiting` (not reached).
    progress: &'static str,
}

/// The request's stages, from its rule (one unnamed stage when the rule is gone).
fn stage_steps(state: &State, workflow: &Workflow, request: &RequestView) -> Vec<StageStep> {
    let kind = state.scope(&request.scope).map(|scope| scope.kind.as_str()).unwrap_or_default();
    let rule = workflow.rule_for(&request.role, kind);
    let named: Vec<(String, u32)> = match rule {
        Some(rule) if !rule.stages.is_empty() => rule.stages.iter().map(|s| (s.name.clone(), s.quorum)).collect(),
        _ => vec![("approval".to_string(), 1)],
    };
    let at = request.stage as usize;
    named
        .into_iter()
        .enumerate()
        .map(|(index, (name, quorum))| {
            let approvers: Vec<String> = request
                .approvals
                .iter()
                .filter(|approval| approval.stage as usize == index)
                .map(|approval| match &approval.on_behalf_of {
                    Some(delegator) => format!("{} (for {delegator})", approval.by),
                    None => approval.by.clone(),
                })
                .collect();
            let progress = match (index.cmp(&at), request.status.as_str()) {
                (std::cmp::Ordering::Less, _) | (_, "approved") => "done",
                (std::cmp::Ordering::Equal, "pending") => "current",
                (std::cmp::Ordering::Equal, _) => "stopped",
                (std::cmp::Ordering::Greater, _) => "waiting",
            };
            let remaining = quorum.saturating_sub(u32::try_from(approvers.len()).unwrap_or(u32::MAX));
            StageStep { name, quorum, approvers, remaining, progress }
        })
        .collect()
}

pub async fn request_page(session: Session, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let RequestDetails { view, history, deciders } = details(&session.caller, parse_id(&id)?).await?;
    let (timeline, stages) = session.caller.read(|state, workflow| {
        (history.iter().map(|event| Step::new(state, event)).collect(), stage_steps(state, workflow, &view))
    })?;
    let deciders = deciders.into_iter().map(decider_name).collect();
    // The person it is for, or who asked on their behalf: both may cancel it.
    let mine = view.user == session.caller.user() || view.requested_by.as_deref() == Some(session.caller.user());
    html(RequestDetailPage {
        head: session.head(),
        csrf: session.csrf_token(),
        request: view,
        timeline,
        stages,
        deciders,
        mine,
    })
}

#[derive(Template)]
#[template(path = "web/scope.html")]
struct ScopePage {
    head: Option<Header>,
    scope: ScopeView,
    /// The grants on it that the API would show this user.
    grants: Vec<GrantView>,
    /// Its pending requests that the API would show this user, oldest first.
    pending: Vec<RequestView>,
}

pub async fn scope_page(session: Session, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let caller = &session.caller;
    let scope = show_scope(caller, &id)?;
    let now = Utc::now();
    let (grants, pending) = caller.read(|state, workflow| {
        let viewer = caller.viewer(state, now);
        let grants = state
            .grants_on(&scope.id)
            .filter(|g| g.gives_at(now) && viewer.sees_grant(state, workflow, g))
            .map(|g| GrantView::new(g, now))
            .collect();
        let mut pending: Vec<_> = state
            .requests()
            .filter(|r| r.scope == scope.id && r.is_pending() && viewer.sees_request(state, workflow, r))
            .collect();
        pending.sort_by_key(|r| r.created_at);
        (grants, pending.into_iter().map(|r| RequestView::new(r, stages(workflow, state, r))).collect())
    })?;
    html(ScopePage { head: session.head(), scope, grants, pending })
}
