//! `GET /me` and `GET /users/{id}/approver-scopes`: who the caller is and where people may decide.

use crate::routes::shared::{held_grants, teams_of, HeldGrant};
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::{
    caller::Caller,
    paging::{Page, PageQuery},
    problem::ApiError,
};
use crate::{
    domain::{ApproverScope, Command, MailFrequency, MailPreferences, ScopeId, State, UserId},
    workflow::Workflow,
};

type ApproverScopePage = Page<ApproverScopeView>;

/// Where someone may decide: requests under `rule` on the scopes that `role` held on `anchor` reaches.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApproverScope)]
struct ApproverScopeView {
    rule: String,
    /// The scope the deciding role is held on.
    anchor: String,
    /// Where that is relative to the scopes decided: same, parent, ancestor or global.
    place: crate::workflow::Place,
    role: String,
    /// The scopes covered (with `expand=true` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
}

/// `GET /me`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Me)]
struct MeView<'a> {
    id: &'a str,
    email: Option<&'a str>,
    name: Option<&'a str>,
    admin: bool,
    auditor: bool,
    teams: Vec<String>,
    /// Their own grants and their teams', those with `via_team`.
    grants: Vec<HeldGrant>,
    approver_scopes: Vec<ApproverScopeView>,
}

fn approver_scope_views(state: &State, workflow: &Workflow, user: &str, expand: bool) -> Vec<ApproverScopeView> {
    state
        .approver_scopes(workflow, user, Utc::now())
        .into_iter()
        .map(|approver: ApproverScope| ApproverScopeView {
            scopes: expand
                .then(|| state.expand_approver_scope(workflow, &approver).iter().map(ScopeId::to_string).collect()),
            rule: approver.rule,
            anchor: approver.anchor.into(),
            place: approver.place,
            role: approver.role,
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/me", tag = "users", operation_id = "getMe",
    responses((status = 200, description = "identity, grants (team grants marked), where the caller may decide", body = MeView), (status = 401, description = "no valid token")))]
pub async fn me(caller: Caller) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let body = caller.read(|state, workflow| {
        let user = caller.user();
        let profile = state.user(user);
        let standing = caller.standing_in(state, now);
        let grants = held_grants(state, user, now);
        let body = MeView {
            id: user,
            email: profile.and_then(|p| p.email.as_deref()),
            name: profile.and_then(|p| p.name.as_deref()),
            admin: standing.admin,
            auditor: standing.auditor,
            teams: teams_of(state, user),
            grants,
            approver_scopes: approver_scope_views(state, workflow, user, false),
        };
        serde_json::to_value(body).expect("an identity serializes")
    })?;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverScopesQuery {
    /// List the scopes each entry covers.
    #[serde(default)]
    expand: bool,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/users/{id}/approver-scopes", tag = "users", operation_id = "listApproverScopes",
    params(("id" = String, Path, description = "user id"), ("expand" = Option<bool>, Query, description = "list the scopes covered"), ("cursor" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "where the user may decide, for which roles", body = ApproverScopePage), (status = 403, description = "not the user, an auditor or an admin")))]
pub async fn approver_scopes(
    caller: Caller,
    user: web::Path<String>,
    query: web::Query<ApproverScopesQuery>,
) -> Result<HttpResponse, ApiError> {
    let items = caller.read(|state, workflow| {
        let standing = caller.standing_in(state, Utc::now());
        if *user != caller.user() && !standing.reads_everything() {
            return Err(ApiError::forbidden("only the user, auditors and administrators see where a user may decide"));
        }
        let views = approver_scope_views(state, workflow, &user, query.expand);
        // Each entry is unique as a whole; its fields as a JSON array make a sort key that no id can forge.
        Ok(views
            .into_iter()
            .map(|v| (serde_json::json!([v.rule, v.anchor, v.place, v.role]).to_string(), v))
            .collect::<Vec<_>>())
    })??;
    let paging = PageQuery { cursor: query.cursor.clone(), limit: query.limit };
    Ok(HttpResponse::Ok().json(paging.page(items)?))
}

/// `GET` and `PUT /me/preferences`: how the caller gets their mail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MailPreferences)]
pub struct PreferencesBody {
    /// `each`: every mail as it happens; `daily`: one digest a day in place of the mail about new
    /// requests, reminders and grants ending soon (mailboxes still get each mail).
    #[schema(example = "daily")]
    mail: String,
    /// The hour (UTC, 0 to 23) from which the day's digest goes out.
    #[schema(minimum = 0, maximum = 23, example = 7)]
    digest_hour: i64,
}

impl PreferencesBody {
    fn of(preferences: MailPreferences) -> Self {
        let mail = match preferences.mail {
            MailFrequency::Each => "each",
            MailFrequency::Daily => "daily",
        };
        PreferencesBody { mail: mail.to_string(), digest_hour: preferences.digest_hour.into() }
    }
}

#[utoipa::path(get, path = "/api/v1/me/preferences", tag = "users", operation_id = "getMailPreferences",
    responses((status = 200, description = "the caller's mail preferences (`each` at hour 0 unless set)", body = PreferencesBody)))]
pub async fn preferences(caller: Caller) -> Result<HttpResponse, ApiError> {
    let preferences = caller.read(|state, _| state.mail_preferences(caller.user()))?;
    Ok(HttpResponse::Ok().json(PreferencesBody::of(preferences)))
}

#[utoipa::path(put, path = "/api/v1/me/preferences", tag = "users", operation_id = "setMailPreferences", request_body = PreferencesBody,
    responses((status = 200, description = "the preferences now in force", body = PreferencesBody),
        (status = 422, description = "invalid_preferences: mail is not each or daily, or digest_hour is not 0 to 23")))]
pub async fn set_preferences(caller: Caller, body: web::Json<PreferencesBody>) -> Result<HttpResponse, ApiError> {
    let preferences = MailPreferences::parse(&body.mail, body.digest_hour)?;
    caller.execute(Command::SetMailPreferences { user: UserId::known(caller.user()), preferences }).await?;
    Ok(HttpResponse::Ok().json(PreferencesBody::of(preferences)))
}
