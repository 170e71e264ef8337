//! Sign-in through the organisation's OpenID Connect provider: discovery (in the background, so
//! the server starts while the provider is away), the authorization request (code flow, PKCE
//! S256, `state`, `nonce`), the code exchange and the ID token's checks (signature by the
//! issuer's keys, `iss`, `aud` = the client id, `exp`, `nonce`), all through `openidconnect`
//! over an HTTP client that follows no redirect. The issuer's keys are the same cached set the
//! API's bearer tokens are checked with ([`RemoteKeys`]).

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use openidconnect::{
    core::{
        CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
        CoreGrantType, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
        CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
    },
    AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::remote_keys::RemoteKeys;
use crate::configuration::OidcSettings;

/// How long one request to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery is tried again this often until it succeeds.
const DISCOVERY_RETRY: Duration = Duration::from_secs(2);

/// `end_session_endpoint` (OpenID Connect RP-Initiated Logout), beside the standard metadata.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LogoutMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider {0} cannot be reached now; try again in a moment")]
    Unreachable(String),
    /// The sign-in is refused: words for the person signing in.
    #[error("{0}")]
    Refused(String),
}

/// What the browser keeps between the authorization request and the callback (in a MACed cookie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Unix time after which the callback is refused.
    pub expires: i64,
    /// The page of this server to go back to after the sign-in (checked by the web pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
}

/// A verified sign-in: the ID token's claims (with the userinfo's where the ID token lacks them),
/// and the ID token itself (the hint of a later sign-out).
pub struct SignedIn {
    pub claims: serde_json::Value,
    pub id_token: String,
}

pub struct OidcProvider {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: Arc<RemoteKeys>,
    metadata: RwLock<Option<Arc<Metadata>>>,
    discovery_error: RwLock<Option<String>>,
}

/// The HTTP client for the provider: no redirect followed (an OpenID Provider's endpoints answer
/// directly; following one would be an open door to SSRF).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .expect("the HTTP client builds")
}

impl OidcProvider {
    pub fn new(settings: OidcSettings, http: reqwest::Client, keys: Arc<RemoteKeys>) -> Arc<Self> {
        Arc::new(OidcProvider { settings, http, keys, metadata: RwLock::new(None), discovery_error: RwLock::new(None) })
    }

    pub fn keys(&self) -> &Arc<RemoteKeys> {
        &self.keys
    }

    /// Reads the discovery document in the background, again every few seconds until it is read;
    /// then keeps the issuer's keys fresh every `key_refresh`.
    pub fn spawn_discovery(self: &Arc<Self>, key_refresh: Duration) {
        let provider = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(this) = provider.upgrade() else { return };
                match this.discover().await {
                    Ok(()) => {
                        this.keys.spawn_refresh(key_refresh);
                        tracing::info!(issuer = %this.settings.issuer, "identity provider discovered");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(issuer = %this.settings.issuer, %error, "identity provider not discovered yet");
                        *this.discovery_error.write().unwrap_or_else(|p| p.into_inner()) = Some(error);
                    }
                }
                drop(this);
                tokio::time::sleep(DISCOVERY_RETRY).await;
            }
        });
    }

    async fn discover(&self) -> Result<(), String> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| e.to_string())?;
        // Checks that the document names this very issuer.
        let metadata = Metadata::discover_async(issuer, &self.http).await.map_err(|e| describe(&e))?;
        self.keys.set_url(metadata.jwks_uri().url().to_string());
        *self.metadata.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(metadata));
        *self.discovery_error.write().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    fn metadata(&self) -> Option<Arc<Metadata>> {
        self.metadata.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The provider's name as the sign-in button says it: the issuer's host.
    pub fn display_name(&self) -> String {
        url::Url::parse(&self.settings.issuer)
            .ok()
            .and_then(|url| {
                url.host_str().map(|host| match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                })
            })
            .unwrap_or_else(|| self.settings.issuer.clone())
    }

    /// Why sign-in cannot start now, if it cannot: discovery not done, or the keys never fetched
    /// and the last try failed, or the last key fetch failed.
    pub fn unavailable(&self) -> Option<String> {
        if self.metadata().is_none() {
            return Some(self.discovery_error.read().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default());
        }
        self.keys.status().error
    }

    fn client(&self, metadata: &Metadata) -> Result<Client, OidcError> {
        let keys: CoreJsonWebKeySet = serde_json::from_value(self.keys.current().document.clone())
            .unwrap_or_else(|_| CoreJsonWebKeySet::new(Vec::new()));
        let redirect = RedirectUrl::new(self.settings.redirect_uri.clone())
            .map_err(|e| OidcError::Refused(format!("the redirect URI is not a URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone().set_jwks(keys),
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.as_ref().map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL for a new sign-in, and what the callback will need.
    pub fn begin(&self, lifetime: Duration) -> Result<(String, LoginState), OidcError> {
        let metadata = self.metadata().ok_or_else(|| OidcError::Unreachable(self.display_name()))?;
        let client = self.client(&metadata)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request =
            client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
        for scope in self.settings.scopes.iter().filter(|scope| *scope != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let expires = chrono::Utc::now().timestamp() + lifetime.as_secs() as i64;
        let login = LoginState {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            expires,
            return_to: None,
        };
        Ok((url.to_string(), login))
    }

    /// Exchanges the code and verifies the ID token; the claims are those of a bearer token.
    pub async fn finish(&self, code: &str, login: &LoginState) -> Result<SignedIn, OidcError> {
        let metadata = self.metadata().ok_or_else(|| OidcError::Unreachable(self.display_name()))?;
        let client = self.client(&metadata)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|_| OidcError::Refused("the identity provider publishes no token endpoint".into()))?;
        let response = request
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|error| match &error {
                openidconnect::RequestTokenError::Request(_) => OidcError::Unreachable(self.display_name()),
                openidconnect::RequestTokenError::ServerResponse(response) => OidcError::Refused(format!(
                    "the identity provider refused the sign-in code ({}); start the sign-in again",
                    serde_json::to_value(response)
                        .ok()
                        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                        .unwrap_or_else(|| "an error".into())
                )),
                _ => OidcError::Refused(
                    "the identity provider refused the sign-in code (its answer is no token response); start \
                     the sign-in again"
                        .into(),
                ),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::Refused("the identity provider returned no ID token".into()))?;
        let nonce = Nonce::new(login.nonce.clone());
        let checked = id_token.claims(&client.id_token_verifier(), &nonce).map(|_| ());
        match checked {
            Ok(()) => {}
            // A key rotated since the keys were fetched: fetch them (at most once a minute) and check again.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_))
                if self.keys.refresh_for_unknown_key().await =>
            {
                let client = self.client(&metadata)?;
                id_token.claims(&client.id_token_verifier(), &nonce).map_err(id_token_refusal)?;
            }
            Err(error) => return Err(id_token_refusal(error)),
        }
        let raw = id_token.to_string();
        let mut claims = payload(&raw)?;
        // Profile claims the ID token lacks come from the userinfo endpoint, for the same subject.
        if let (Some(userinfo), Some(object)) = (metadata.userinfo_endpoint(), claims.as_object_mut()) {
            if let Ok(info) = self.userinfo(userinfo.url().as_str(), response.access_token().secret()).await {
                if info.get("sub") == object.get("sub") {
                    for (name, value) in info.as_object().into_iter().flatten() {
                        object.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        Ok(SignedIn { claims, id_token: raw })
    }

    async fn userinfo(&self, url: &str, access_token: &str) -> Result<serde_json::Value, String> {
        let response = self.http.get(url).bearer_auth(access_token).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(response.status().to_string());
        }
        response.json().await.map_err(|e| e.to_string())
    }

    /// Where the browser goes after signing out here, when the provider ends sessions too.
    pub fn end_session_url(&self, id_token_hint: Option<&str>) -> Option<String> {
        let metadata = self.metadata()?;
        let endpoint = metadata.additional_metadata().end_session_endpoint.as_deref()?;
        let mut url = url::Url::parse(endpoint).ok()?;
        {
            let mut query = url.query_pairs_mut();
            match id_token_hint {
                Some(hint) => query.append_pair("id_token_hint", hint),
                None => query.append_pair("client_id", &self.settings.client_id),
            };
            query.append_pair("post_logout_redirect_uri", &self.settings.post_logout_redirect_uri);
        }
        Some(url.to_string())
    }
}

/// The client as `begin` and `finish` use it (its type spells out which endpoints are set).
type Client = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn id_token_refusal(error: openidconnect::ClaimsVerificationError) -> OidcError {
    use openidconnect::ClaimsVerificationError as E;
    OidcError::Refused(
        match error {
            E::Expired(_) => "the identity provider's ID token has expired",
            E::InvalidAudience(_) => "the ID token was issued for another client",
            E::InvalidIssuer(_) => "the ID token was issued by another issuer",
            E::InvalidNonce(_) => "the ID token does not answer this sign-in (wrong nonce)",
            E::SignatureVerification(_) => "the ID token's signature does not verify with the issuer's keys",
            _ => "the ID token is not valid",
        }
        .to_string(),
    )
}

/// The claims of a JWT whose signature has been verified.
fn payload(jwt: &str) -> Result<serde_json::Value, OidcError> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    jwt.split('.')
        .nth(1)
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| OidcError::Refused("the ID token's claims are not a JSON object".into()))
}

fn describe<E: std::error::Error>(error: &E) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
