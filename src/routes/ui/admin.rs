//! `/ui/admin`, for administrators: scopes, custom roles, teams, API tokens and dead mail. Every
//! form runs the API's command (or the API's helper) as the signed-in admin, so the domain's
//! rules apply unchanged; a refusal is said on the page, above the forms.

use actix_web::{http::StatusCode, web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{
    after_form, html_with, optional_duration,
    pages::Empty,
    session::{Header, Session},
    PageError,
};
use crate::{
    domain::{Command, ScopeId, TeamId, UserId},
    routes::{
        problem::ApiError,
        shared::{self, require_admin, retry_dead_mail},
        views::{ScopeView, TeamView, TokenView},
    },
    store::{MailState, OutboxMail},
    workflow::Role,
};

/// Dead mails listed at most.
const DEAD_MAIL_SHOWN: i64 = 200;

struct RoleRow {
    id: String,
    title: String,
    kinds: String,
    /// Defined at run time rather than by the workflow file.
    custom: bool,
}

/// What the last form did, said above the forms.
enum FormOutcome {
    Refused(String),
    /// A new API token: its secret, shown this once.
    NewToken {
        token: TokenView,
        secret: String,
    },
}

#[derive(Template)]
#[template(path = "web/admin.html")]
struct AdminPage {
    head: Option<Header>,
    csrf: String,
    notice: Option<FormOutcome>,
    kinds: Vec<String>,
    scopes: Vec<ScopeView>,
    roles: Vec<RoleRow>,
    teams: Vec<TeamView>,
    tokens: Vec<TokenView>,
    dead_mail: Vec<OutboxMail>,
}

async fn admin_answer(
    session: &Session,
    status: StatusCode,
    notice: Option<FormOutcome>,
) -> Result<HttpResponse, PageError> {
    let caller = &session.caller;
    require_admin(caller)?;
    let (kinds, scopes, roles, teams, tokens) = caller.read(|state, workflow| {
        let kinds = workflow.kinds.keys().filter(|kind| *kind != crate::workflow::GLOBAL).cloned().collect();
        let scopes = state.scopes().map(|s| ScopeView::new(s, state)).collect();
        let roles = state
            .roles()
            .values()
            .map(|r| RoleRow {
                id: r.id.clone(),
                title: r.title.clone(),
                kinds: r.kinds.join(", "),
                custom: !workflow.roles.contains_key(&r.id),
            })
            .collect();
        let teams = state.teams().map(TeamView::new).collect();
        let mut tokens: Vec<_> = state.api_tokens().map(TokenView::new).collect();
        tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        (kinds, scopes, roles, teams, tokens)
    })?;
    let dead_mail =
        caller.app().store.outbox(Some(MailState::Dead), 0, DEAD_MAIL_SHOWN).await.map_err(ApiError::from)?;
    let page = AdminPage {
        head: session.head(),
        csrf: session.csrf_token(),
        notice,
        kinds,
        scopes,
        roles,
        teams,
        tokens,
        dead_mail,
    };
    html_with(status, page)
}

pub async fn admin_page(session: Session) -> Result<HttpResponse, PageError> {
    admin_answer(&session, StatusCode::OK, None).await
}

/// After a form: back to the page, or the page again with the refusal said above the forms.
async fn after(session: &Session, done: Result<(), ApiError>) -> Result<HttpResponse, PageError> {
    after_form(done, "/ui/admin", |status, refused| admin_answer(session, status, Some(FormOutcome::Refused(refused))))
        .await
}

/// A form posted to an admin page: its CSRF token checked, then the admin checked before anything runs.
pub(super) fn admin_form<T: serde::de::DeserializeOwned>(session: &Session, body: &[u8]) -> Result<T, PageError> {
    let form = session.form(body)?;
    require_admin(&session.caller)?;
    Ok(form)
}

/// Ids typed in one field, separated by commas or spaces.
fn ids(text: &str) -> Vec<String> {
    text.split([',', ' ']).map(str::trim).filter(|id| !id.is_empty()).map(String::from).collect()
}

#[derive(Deserialize)]
struct ScopeForm {
    id: String,
    kind: String,
    #[serde(default)]
    parents: String,
    title: String,
    #[serde(default)]
    mailbox: String,
}

pub async fn create_scope(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form: ScopeForm = admin_form(&session, &body)?;
    let mailbox = Some(form.mailbox.trim().to_string()).filter(|m| !m.is_empty());
    let done = async {
        let id = ScopeId::parse(&form.id)?;
        let parents = ids(&form.parents).into_iter().map(ScopeId::known).collect();
        let command = Command::CreateScope { id, kind: form.kind, parents, title: form.title, mailbox };
        session.caller.execute(command).await.map(drop)
    };
    after(&session, done.await).await
}

#[derive(Deserialize)]
struct RoleForm {
    id: String,
    title: String,
    kinds: String,
    #[serde(default)]
    permissions: String,
    #[serde(default)]
    includes: String,
    /// A checkbox: present when ticked.
    requestable: Option<String>,
    /// A checkbox: the role applies to its scope alone, not below.
    scope_only: Option<String>,
    #[serde(default)]
    max_duration: String,
}

impl RoleForm {
    /// The role as the API's `POST /roles` body would give it (the same defaults for the rest).
    fn role(&self) -> Result<Role, ApiError> {
        let role = serde_json::json!({
            "id": self.id.trim(),
            "title": self.title.trim(),
            "kinds": ids(&self.kinds),
            "permissions": ids(&self.permissions),
            "includes": ids(&self.includes),
            "requestable": self.requestable.is_some(),
            "applies": if self.scope_only.is_some() { "scope" } else { "subtree" },
            "max_duration": Some(self.max_duration.trim()).filter(|d| !d.is_empty()),
        });
        serde_json::from_value(role)
            .map_err(|error| ApiError::BadRequest { code: "malformed_body", detail: error.to_string() })
    }
}

pub async fn define_role(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form: RoleForm = admin_form(&session, &body)?;
    let done = async { session.caller.execute(Command::DefineRole { role: form.role()? }).await.map(drop) };
    after(&session, done.await).await
}

#[derive(Deserialize)]
struct TeamForm {
    id: String,
    title: String,
}

pub async fn create_team(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let TeamForm { id, title } = admin_form(&session, &body)?;
    let done = async { session.caller.execute(Command::CreateTeam { id: TeamId::parse(&id)?, title }).await.map(drop) };
    after(&session, done.await).await
}

#[derive(Deserialize)]
struct UserForm {
    id: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
}

/// Registers a person before their first sign-in, as `POST /api/v1/users` does; empty optional
/// fields are left out.
pub async fn register_user(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let UserForm { id, email, name } = admin_form(&session, &body)?;
    let given = |text: String| Some(text.trim().to_string()).filter(|t| !t.is_empty());
    let command = Command::PreRegisterUser { user: UserId::known(id.trim()), email: given(email), name: given(name) };
    after(&session, session.caller.execute(command).await.map(drop)).await
}

#[derive(Deserialize)]
struct MemberForm {
    team: String,
    user: String,
}

pub async fn add_team_member(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let MemberForm { team, user } = admin_form(&session, &body)?;
    let command = Command::AddTeamMember { team: TeamId::known(team), user: UserId::known(user.trim()) };
    after(&session, session.caller.execute(command).await.map(drop)).await
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    user: String,
    name: String,
    #[serde(default)]
    expires_in: String,
}

/// Creates an API token and answers the page with its secret, shown this once (never in a URL,
/// never stored: the page is `Cache-Control: no-store` like every page).
pub async fn create_token(session: Session, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let form: TokenForm = admin_form(&session, &body)?;
    let user = Some(form.user.trim().to_string()).filter(|u| !u.is_empty());
    let created = async {
        let expires_in = optional_duration("expires_in", &form.expires_in)?;
        shared::create_token(&session.caller, user, form.name, expires_in).await
    };
    match created.await {
        Ok((token, secret)) => {
            admin_answer(&session, StatusCode::CREATED, Some(FormOutcome::NewToken { token, secret })).await
        }
        Err(error) => after(&session, Err(error)).await,
    }
}

pub async fn revoke_token(
    session: Session,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    admin_form::<Empty>(&session, &body)?;
    after(&session, shared::revoke_token(&session.caller, &id).await).await
}

pub async fn retry_mail(session: Session, id: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    admin_form::<Empty>(&session, &body)?;
    after(&session, retry_dead_mail(&session.caller, &id).await.map(drop)).await
}
