//! Who is asking: bearer login tokens (JWT) and API tokens, turned into a [`Principal`].
//!
//! Login tokens are verified once and then answered from a cache until they expire (a verified
//! signature stays verified); the first time a token is seen, the user's profile and the roles the
//! token carries are brought up to date as events. API tokens are looked up by the SHA-256 of
//! their secret in the read model, on every request, so a revocation takes effect as soon as this
//! process has followed the log (at once here, within a second elsewhere).

mod api_token;
mod jwt;
mod oidc;
mod remote_keys;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use chrono::Utc;

pub use api_token::{hash_secret, new_secret, random_hex, API_TOKEN_PREFIX};
pub use jwt::{JwtError, JwtVerifier, LoginClaims, VerifiedToken};
pub use oidc::{http_client, LoginState, OidcError, OidcProvider, SignedIn};
pub use remote_keys::{RemoteKeys, UNKNOWN_KEY_REFETCH};

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

/// How a web session made by an OpenID Connect sign-in begins: the cookie holds a token signed
/// by this server (never accepted from anyone else: its key is this server's).
pub const SESSION_TOKEN_PREFIX: &str = "rlsession.";
/// How long a web session made by an OpenID Connect sign-in lasts.
pub const OIDC_SESSION_HOURS: i64 = 8;
const SESSION_ISSUER: &str = "roleledger web session";

pub struct Authenticator {
    verifier: JwtVerifier,
    verified: RwLock<HashMap<String, Verified>>,
    provider: Option<Arc<OidcProvider>>,
    /// Signs the session tokens of OpenID Connect sign-ins.
    session_key: [u8; 32],
}

#[derive(Clone)]
struct Verified {
    user: UserId,
    expires: i64,
    /// The remote keys' generation the token was verified under.
    keys: u64,
}

impl Authenticator {
    pub fn new(verifier: JwtVerifier) -> Self {
        let mut session_key = [0; 32];
        getrandom::getrandom(&mut session_key).expect("the system's random source");
        Authenticator { verifier, verified: RwLock::new(HashMap::new()), provider: None, session_key }
    }

    /// Signs web sessions with `key` (every process of one deployment derives the same one).
    pub fn with_session_key(mut self, key: [u8; 32]) -> Self {
        self.session_key = key;
        self
    }

    pub fn with_provider(mut self, provider: Arc<OidcProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The OpenID Connect provider people sign in with, when one is configured.
    pub fn provider(&self) -> Option<&Arc<OidcProvider>> {
        self.provider.as_ref()
    }

    /// Signs in the user behind an OpenID Connect provider's verified claims, exactly as a bearer
    /// token does (user claim checked, registered, profile and roles synced), and returns the
    /// web session's token. Nothing is recorded for claims that are refused.
    pub async fn sign_in_with_claims(&self, app: &App, claims: serde_json::Value) -> Result<String, AuthError> {
        let verified = self.verifier.claims_of(claims).map_err(|error| AuthError::Invalid(error.to_string()))?;
        let user = UserId::parse(&verified.claims.sub).map_err(|bad| AuthError::Invalid(bad.to_string()))?;
        sign_in(app, &verified, &user).await?;
        let mut claims = verified.claims.clone();
        claims.exp = (Utc::now() + chrono::Duration::hours(OIDC_SESSION_HOURS)).timestamp();
        self.session_token(&claims, verified.issued_at)
    }

    /// `value` as a cookie value this server can later trust: base64url JSON and its HMAC.
    pub fn seal<T: serde::Serialize>(&self, value: &T) -> String {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        use hmac::Mac;
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serializable"));
        let mac = hex::encode(self.login_mac(body.as_bytes()).finalize().into_bytes());
        format!("{body}.{mac}")
    }

    /// The value `seal` made, when its HMAC verifies.
    pub fn open<T: serde::de::DeserializeOwned>(&self, sealed: &str) -> Option<T> {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        use hmac::Mac;
        let (body, mac) = sealed.split_once('.')?;
        self.login_mac(body.as_bytes()).verify_slice(&hex::decode(mac).ok()?).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }

    fn login_mac(&self, body: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.session_key).expect("any key length");
        mac.update(b"login state\0");
        mac.update(body);
        mac
    }

    fn session_token(&self, claims: &LoginClaims, issued_at: Option<i64>) -> Result<String, AuthError> {
        #[derive(serde::Serialize)]
        struct Session<'a> {
            #[serde(flatten)]
            claims: &'a LoginClaims,
            #[serde(skip_serializing_if = "Option::is_none")]
            iat: Option<i64>,
            iss: &'static str,
        }
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &Session { claims, iat: issued_at, iss: SESSION_ISSUER },
            &jsonwebtoken::EncodingKey::from_secret(&self.session_key),
        )
        .map_err(|e| AuthError::Invalid(format!("cannot sign the session: {e}")))?;
        Ok(format!("{SESSION_TOKEN_PREFIX}{token}"))
    }

    fn verify_session(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = jwt::LEEWAY_SECONDS;
        validation.set_issuer(&[SESSION_ISSUER]);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        let key = jsonwebtoken::DecodingKey::from_secret(&self.session_key);
        match jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation) {
            Ok(data) => jwt::verified_claims(data.claims, &crate::configuration::ClaimNames::default()),
            Err(error) if matches!(error.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(JwtError::Expired)
            }
            Err(_) => Err(JwtError::Invalid("the web session is not one this server signed".into())),
        }
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
        let generation = self.verifier.remote().map_or(0, |remote| remote.generation());
        if let Some(verified) = cached.filter(|verified| verified.keys == generation) {
            if now <= verified.expires + jwt::LEEWAY_SECONDS as i64 {
                return Ok(Principal { user: verified.user, via: Via::LoginToken });
            }
            self.verified.write().unwrap_or_else(|p| p.into_inner()).remove(token);
            return Err(AuthError::Expired);
        }
        let verified = match token.strip_prefix(SESSION_TOKEN_PREFIX) {
            Some(session) => self.verify_session(session),
            None => self.verifier.verify_fetching(token).await,
        };
        let verified = verified.map_err(|error| match error {
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
        verified.insert(token.to_string(), Verified { user: user.clone(), expires: claims.exp, keys: generation });
        Ok(Principal { user, via: Via::LoginToken })
    }
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
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
