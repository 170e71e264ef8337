//! Who is asking: bearer login tokens (JWT) and API tokens, turned into a [`Principal`].
//!
//! Login tokens are verified once and then answered from a cache until they expire (a verified
//! signature stays verified); the first time a token is seen, the user's profile and the roles the
//! token carries are brought up to date as events. API tokens are looked up by the SHA-256 of
//! their secret in the read model, on every request, so a revocation takes effect as soon as this
//! process has followed the log (at once here, within a second elsewhere).

mod api_token;
mod jwt;

use std::{collections::HashMap, sync::RwLock};

use chrono::Utc;

pub use api_token::{hash_secret, new_secret, random_hex, API_TOKEN_PREFIX};
pub use jwt::{JwtError, JwtVerifier, LoginClaims, VerifiedToken};

use crate::{
    app::{App, AppError, Origin, Principal, Via},
    domain::{Command, UserId},
    store::StoreError,
    workflow::mail_address_problem,
};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token (send Authorization: Bearer TOKEN)")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the API token is unknown, revoked or expired")]
    UnknownApiToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many verified login tokens are remembered; the cache starts afresh when full.
const CACHE_CAPACITY: usize = 100_000;

pub struct Authenticator {
    verifier: JwtVerifier,
    verified: RwLock<HashMap<String, Verified>>,
}

#[derive(Clone)]
struct Verified {
    user: UserId,
    expires: i64,
}

impl Authenticator {
    pub fn new(verifier: JwtVerifier) -> Self {
        Authenticator { verifier, verified: RwLock::new(HashMap::new()) }
    }

    /// A login token for `claims`, signed with the shared secret (the web pages' development sign-in).
    pub fn sign(&self, claims: &LoginClaims) -> Result<String, JwtError> {
        self.verifier.sign(claims)
    }

    /// The principal behind an `Authorization` header value.
    pub async fn authenticate(&self, app: &App, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = header
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        if token.starts_with(API_TOKEN_PREFIX) {
            return api_token_principal(app, token);
        }
        let now = Utc::now().timestamp();
        let cached = self.verified.read().unwrap_or_else(|p| p.into_inner()).get(token).cloned();
        if let Some(verified) = cached {
            if now <= verified.expires + jwt::LEEWAY_SECONDS as i64 {
                return Ok(Principal { user: verified.user, via: Via::LoginToken });
            }
            self.verified.write().unwrap_or_else(|p| p.into_inner()).remove(token);
            return Err(AuthError::Expired);
        }
        let verified = self.verifier.verify(token).map_err(|error| match error {
            JwtError::Expired => AuthError::Expired,
            other => AuthError::Invalid(other.to_string()),
        })?;
        // Reserved and malformed ids are refused before anything is recorded.
        let user = UserId::parse(&verified.claims.sub).map_err(|bad| AuthError::Invalid(bad.to_string()))?;
        let claims = &verified.claims;
        match sign_in(app, &verified, &user).await {
            Ok(()) => {}
            // Reads are answered from memory while the database is away; the sign-in is tried
            // again on the next call, since the token is not cached.
            Err(AuthError::Store(error)) if error.is_unavailable() => {
                tracing::warn!(%error, "sign-in not recorded: the database is unreachable");
                return Ok(Principal { user, via: Via::LoginToken });
            }
            Err(error) => return Err(error),
        }
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= CACHE_CAPACITY {
            verified.clear();
        }
        verified.insert(token.to_string(), Verified { user: user.clone(), expires: claims.exp });
        Ok(Principal { user, via: Via::LoginToken })
    }
}

fn api_token_principal(app: &App, token: &str) -> Result<Principal, AuthError> {
    let hash = hash_secret(token);
    let now = Utc::now();
    app.read_model(|model| {
        model
            .state()
            .api_token_by_hash(&hash)
            .filter(|t| model.state().api_token_in_force(t, now))
            .map(|t| Principal { user: t.user.clone(), via: Via::ApiToken(t.id) })
    })
    .ok_or(AuthError::UnknownApiToken)
}

/// Registers the user, keeps their profile current and syncs the roles the token carries: each
/// command is first decided against the read model, and only sent when it would change something.
async fn sign_in(app: &App, token: &VerifiedToken, user: &UserId) -> Result<(), AuthError> {
    let claims = &token.claims;
    // An email claim that is no usable address (CR/LF in it would cut a mail header) does not
    // refuse the sign-in: it is not recorded, and the address known before stays.
    let email = claims.email.clone().filter(|email| match mail_address_problem(email) {
        Some(why) => {
            tracing::debug!(%user, %why, "the token's email claim is not recorded");
            false
        }
        None => true,
    });
    let issued_at = token.issued_at.and_then(|iat| chrono::DateTime::from_timestamp(iat, 0));
    let commands = [
        Command::RegisterUser { user: user.clone(), email, name: claims.name.clone() },
        Command::SyncTokenRoles { user: user.clone(), claims: claims.roles.clone().unwrap_or_default(), issued_at },
    ];
    let origin = Origin::SignIn { user: user.clone() };
    for command in commands {
        if app.would_change(&origin, &command) {
            match app.execute(origin.clone(), command).await {
                Ok(_) => {}
                // A login is not refused because its profile or claims cannot be recorded (a bad
                // user id is refused when the user acts).
                Err(AppError::Rejected(refusal)) => tracing::debug!(%refusal, "sign-in change refused"),
                Err(AppError::ReadOnly) => {}
                Err(AppError::Store(error)) => return Err(error.into()),
            }
        }
    }
    Ok(())
}
