//! Sign-in through the OpenID Connect provider: `/ui/oidc/login` sends the browser to the
//! provider with a fresh `state`, `nonce` and PKCE verifier, kept in a short-lived `SameSite=Lax`
//! cookie (the provider's return is a cross-site navigation) that is MACed by this server;
//! `/ui/oidc/callback` checks it all, signs the user in as a bearer token would, and answers 200
//! with a same-site continuation to `/ui`, so that the `SameSite=Strict` session cookie is sent
//! from then on.

use std::time::Duration;

use actix_web::{
    cookie::{time, Cookie, SameSite},
    http::StatusCode,
    web, HttpRequest, HttpResponse,
};
use askama::Template;
use serde::Deserialize;

use super::{
    html_with,
    session::{self, SESSION_COOKIE},
    ErrorPage, PageError,
};
use crate::{
    auth::{AuthError, LoginState, OidcError},
    routes::{problem::ApiError, AppState},
};

/// The login state between the authorization request and the callback.
pub const LOGIN_COOKIE: &str = "rl_oidc";
/// The provider's ID token, the `id_token_hint` of a sign-out at the provider.
pub const ID_TOKEN_COOKIE: &str = "rl_oidc_hint";
/// How long a sign-in at the provider may take.
const LOGIN_LIFETIME: Duration = Duration::from_secs(600);
/// Browsers keep cookies up to about 4 KiB: a longer ID token is not kept (the sign-out then names
/// the client instead).
const LONGEST_HINT: usize = 3500;

#[derive(Template)]
#[template(path = "web/continue.html")]
struct Continue<'a> {
    head: Option<session::Header>,
    title: &'a str,
    link: &'a str,
    location: &'a str,
}

/// A page that moves on to `location` at once (a meta refresh, and a link).
pub fn continuation(title: &str, link: &str, location: &str) -> Result<HttpResponse, PageError> {
    html_with(StatusCode::OK, Continue { head: None, title, link, location })
}

fn refusal_page(status: StatusCode, detail: String) -> Result<HttpResponse, PageError> {
    let title = status.canonical_reason().unwrap_or("Error").to_string();
    html_with(status, ErrorPage { head: None, status: status.as_u16(), title, detail })
}

fn login_cookie(app: &AppState, value: String, max_age: time::Duration) -> Cookie<'static> {
    let mut cookie = app.ui.cookie(LOGIN_COOKIE, value);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/ui/oidc");
    cookie.set_max_age(max_age);
    cookie
}

/// `GET /ui/oidc/login[?next=/ui/…]`: to the provider's authorization endpoint; the callback goes
/// on to `next`, a path of these pages.
pub async fn login(request: HttpRequest, query: web::Query<super::ReturnQuery>) -> Result<HttpResponse, PageError> {
    let app = session::app(&request);
    let Some(provider) = app.auth.provider() else {
        return Err(ApiError::NotFound("the page /ui/oidc/login (no identity provider is configured)".into()).into());
    };
    match provider.begin(LOGIN_LIFETIME) {
        Ok((location, mut state)) => {
            state.return_to = Some(super::return_path(query.next.as_deref()).to_string());
            let sealed = app.auth.seal(&state);
            let mut response = super::see_other(&location);
            response.add_cookie(&login_cookie(
                &app,
                sealed,
                time::Duration::seconds(LOGIN_LIFETIME.as_secs() as i64),
            ))?;
            Ok(response)
        }
        Err(error) => refusal_page(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /ui/oidc/callback`: the provider's return.
pub async fn callback(request: HttpRequest, query: web::Query<Callback>) -> Result<HttpResponse, PageError> {
    let app = session::app(&request);
    let sealed = request.cookie(LOGIN_COOKIE).map(|c| c.value().to_string());
    let mut response = finish(&app, sealed, query.into_inner()).await?;
    // The login state serves one return only.
    response.add_cookie(&login_cookie(&app, String::new(), time::Duration::ZERO))?;
    Ok(response)
}

async fn finish(app: &AppState, sealed: Option<String>, query: Callback) -> Result<HttpResponse, PageError> {
    let Some(provider) = app.auth.provider() else {
        return Err(ApiError::NotFound("the page /ui/oidc/callback (no identity provider is configured)".into()).into());
    };
    let bad = |detail: &str| refusal_page(StatusCode::BAD_REQUEST, format!("{detail}; start the sign-in again"));
    if let Some(error) = query.error {
        let why = query.error_description.filter(|d| !d.is_empty()).unwrap_or(error);
        return refusal_page(StatusCode::UNAUTHORIZED, format!("the identity provider did not sign you in: {why}"));
    }
    let Some(login) = sealed.as_deref().and_then(|sealed| app.auth.open::<LoginState>(sealed)) else {
        return bad("this browser did not start a sign-in here, or started it too long ago");
    };
    if login.expires < chrono::Utc::now().timestamp() {
        return bad("the sign-in took too long");
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return bad("the identity provider's answer has no code or no state");
    };
    if !crate::auth::constant_time_eq(state.as_bytes(), login.state.as_bytes()) {
        return bad("the identity provider's answer is not for the sign-in this browser started (wrong state)");
    }
    let signed_in = match provider.finish(&code, &login).await {
        Ok(signed_in) => signed_in,
        Err(error @ OidcError::Unreachable(_)) => return refusal_page(StatusCode::BAD_GATEWAY, error.to_string()),
        Err(OidcError::Refused(why)) => return refusal_page(StatusCode::UNAUTHORIZED, why),
    };
    let session = match app.auth.sign_in_with_claims(&app.app, signed_in.claims).await {
        Ok(session) => session,
        Err(AuthError::Store(error)) => return Err(ApiError::from(AuthError::Store(error)).into()),
        Err(refused) => return refusal_page(StatusCode::UNAUTHORIZED, format!("sign-in refused: {refused}")),
    };
    let mut response =
        continuation("Signed in", "Continue to roleledger", super::return_path(login.return_to.as_deref()))?;
    response.add_cookie(&app.ui.cookie(SESSION_COOKIE, session))?;
    if signed_in.id_token.len() <= LONGEST_HINT {
        response.add_cookie(&app.ui.cookie(ID_TOKEN_COOKIE, signed_in.id_token))?;
    }
    Ok(response)
}
