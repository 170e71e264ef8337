//! The web session: an HttpOnly, SameSite=Strict cookie holding the login token (a JWT or an API
//! token, checked by the same authenticator as the API's bearer header on every page), and the
//! CSRF token of each form, an HMAC of the session cookie under a key of this process.

use std::{future::Future, pin::Pin};

use actix_web::{
    cookie::{Cookie, SameSite},
    dev::Payload,
    FromRequest, HttpMessage, HttpRequest,
};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Deserialize};
use sha2::Sha256;

use super::PageError;
pub use crate::routes::caller::SESSION_COOKIE;
use crate::routes::{caller::Caller, problem::ApiError};

/// A random value given to a browser on the sign-in page, so that its form has a CSRF token
/// before there is a session.
pub const SIGNIN_COOKIE: &str = "rl_signin";

pub struct UiSettings {
    /// "Pick a user" on the sign-in page: only when no JWT key is configured (development).
    pub development_signin: bool,
    /// `Secure` cookies when the public address is https.
    secure_cookies: bool,
    /// New at every start: forms rendered by an earlier process are refused after a restart.
    csrf_key: [u8; 32],
}

impl UiSettings {
    pub fn new(development_signin: bool, secure_cookies: bool) -> Self {
        let mut csrf_key = [0; 32];
        getrandom::getrandom(&mut csrf_key).expect("the system's random source");
        UiSettings { development_signin, secure_cookies, csrf_key }
    }

    fn mac(&self, cookie: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("HMAC takes any key length");
        mac.update(cookie.as_bytes());
        mac
    }

    /// The CSRF token of forms shown to the holder of `cookie`.
    pub fn csrf_token(&self, cookie: &str) -> String {
        hex::encode(self.mac(cookie).finalize().into_bytes())
    }

    /// Checks the `csrf` field of a posted form against `cookie` (in constant time), then reads the form.
    pub fn checked_form<T: DeserializeOwned>(&self, cookie: Option<&str>, body: &[u8]) -> Result<T, PageError> {
        #[derive(Deserialize)]
        struct Token {
            csrf: Option<String>,
        }
        let token = serde_urlencoded::from_bytes::<Token>(body).ok().and_then(|t| t.csrf);
        let valid = match (cookie, token.and_then(|t| hex::decode(t).ok())) {
            (Some(cookie), Some(token)) => self.mac(cookie).verify_slice(&token).is_ok(),
            _ => false,
        };
        if !valid {
            return Err(PageError::Csrf);
        }
        serde_urlencoded::from_bytes(body).map_err(|error| PageError::BadForm(error.to_string()))
    }

    /// A cookie readable by this site's pages only, never by scripts or other sites.
    pub fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build(name, value)
            .http_only(true)
            .same_site(SameSite::Strict)
            .path("/")
            .secure(self.secure_cookies)
            .finish()
    }
}

/// A signed-in browser: the caller behind its session cookie. Signed out (no cookie, or a token
/// no longer valid) redirects to the sign-in page.
pub struct Session {
    pub caller: Caller,
    cookie: String,
    head: Header,
}

/// The page header of a signed-in user. The session leaves a copy in the request, so that an
/// error page shows it too.
#[derive(Clone)]
pub struct Header {
    pub user: String,
    /// Pending requests the user may decide now.
    pub deciding: usize,
    pub csrf: String,
    /// Auditors and admins: the audit page.
    pub reads_everything: bool,
    /// Admins: the admin page.
    pub admin: bool,
}

impl Header {
    fn of(caller: &Caller, cookie: &str) -> Result<Header, ApiError> {
        let (deciding, standing) = caller.read(|state, workflow| {
            let now = Utc::now();
            (state.pending_for(workflow, caller.user(), now).len(), caller.standing_in(state, now))
        })?;
        Ok(Header {
            user: caller.user().to_string(),
            deciding,
            csrf: caller.app().ui.csrf_token(cookie),
            reads_everything: standing.reads_everything(),
            admin: standing.admin,
        })
    }
}

impl FromRequest for Session {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let cookie = request.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
        let caller = cookie.clone().map(|token| Caller::authenticate(request, Some(format!("Bearer {token}"))));
        let request = request.clone();
        Box::pin(async move {
            let (Some(cookie), Some(caller)) = (cookie, caller) else {
                return Err(PageError::SignedOut);
            };
            let caller = match caller.await {
                Ok(caller) => caller,
                Err(ApiError::Unauthenticated(error)) if !matches!(error, crate::auth::AuthError::Store(_)) => {
                    return Err(PageError::SignedOut)
                }
                Err(error) => return Err(error.into()),
            };
            let head = Header::of(&caller, &cookie)?;
            request.extensions_mut().insert(head.clone());
            Ok(Session { caller, cookie, head })
        })
    }
}

impl Session {
    pub fn ui(&self) -> &UiSettings {
        &self.caller.app().ui
    }

    pub fn csrf_token(&self) -> String {
        self.head.csrf.clone()
    }

    /// The header of the pages this session sees.
    pub fn head(&self) -> Option<Header> {
        Some(self.head.clone())
    }

    /// Judges the header again, after this session's own writes.
    pub fn refresh_head(&mut self) -> Result<(), ApiError> {
        self.head = Header::of(&self.caller, &self.cookie)?;
        Ok(())
    }

    /// A form posted by this session, its CSRF token checked.
    pub fn form<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, PageError> {
        self.ui().checked_form(Some(&self.cookie), body)
    }
}

pub use crate::routes::caller::app;
