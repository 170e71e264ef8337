//! Login tokens: JWTs signed with HS256 (a shared secret) or RS256/ES256 (keys from a PEM or JWKS
//! file). Each key admits exactly its own algorithm, so `alg: none` and algorithm confusion (an
//! HS256 token "signed" with a public key) are refused.

use std::{io::Write, path::Path, sync::Arc};

use jsonwebtoken::{
    errors::ErrorKind,
    jwk::{AlgorithmParameters, Jwk, JwkSet, KeyOperations, PublicKeyUse},
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

use super::remote_keys::RemoteKeys;
use crate::configuration::{ClaimNames, JwtKeys, JwtSettings};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// The claims roleledger reads; others are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginClaims {
    pub sub: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `["manager@P1", "support"]`: honoured only for token-grantable roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// A verified token's claims, and when it was issued (`iat`, when it says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub claims: LoginClaims,
    pub issued_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the token has expired")]
    Expired,
    /// Why the token is refused, in words for the person holding it (never a library's internals).
    #[error("{0}")]
    Invalid(String),
    #[error("cannot load the token keys: {0}")]
    Keys(String),
    #[error("unknown key id (kid)")]
    UnknownKey,
}

impl JwtError {
    fn invalid(detail: impl Into<String>) -> Self {
        JwtError::Invalid(detail.into())
    }
}

pub(super) struct Key {
    pub(super) kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

pub struct JwtVerifier {
    keys: Vec<Key>,
    /// Keys fetched over http(s) (`--jwks URL`, or the OpenID Connect issuer's `jwks_uri`).
    remote: Option<Arc<RemoteKeys>>,
    claims: ClaimNames,
    /// Present when tokens can be signed here (a shared secret): `roleledger token`, tests.
    signing: Option<EncodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl JwtVerifier {
    /// Loads the keys the settings name; the development secret is created when missing.
    pub fn from_settings(settings: &JwtSettings) -> Result<Self, JwtError> {
        let (keys, signing) = match &settings.keys {
            JwtKeys::Secret(secret) => shared_secret(secret.expose().as_bytes()),
            JwtKeys::Development(file) => {
                let secret = development_secret(file)?;
                shared_secret(secret.as_bytes())
            }
            JwtKeys::PublicKeyFile(file) => (vec![pem_key(file)?], None),
            JwtKeys::JwksFile(file) => (jwks_keys(file)?, None),
            JwtKeys::JwksUrl(_) | JwtKeys::Issuer => (Vec::new(), None),
        };
        Ok(JwtVerifier {
            keys,
            remote: None,
            claims: ClaimNames::default(),
            signing,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    /// Reads the user from `claims.user` and roles from `claims.roles` (besides `roles`).
    pub fn with_claims(mut self, claims: ClaimNames) -> Self {
        self.claims = claims;
        self
    }

    /// Also accepts the keys `remote` holds.
    pub fn with_remote(mut self, remote: Arc<RemoteKeys>) -> Self {
        self.remote = Some(remote);
        self
    }

    pub fn remote(&self) -> Option<&Arc<RemoteKeys>> {
        self.remote.as_ref()
    }

    /// Like [`verify`](Self::verify); a token whose key id is not known yet fetches the remote
    /// keys again first (at most once a minute), so a key rotation needs no restart.
    pub async fn verify_fetching(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        match self.verify(token) {
            Err(JwtError::UnknownKey) => match &self.remote {
                Some(remote) if remote.refresh_for_unknown_key().await => self.verify(token),
                _ => Err(JwtError::UnknownKey),
            },
            other => other,
        }
    }

    /// The claims roleledger reads from an already verified claims set (an ID token's).
    pub fn claims_of(&self, claims: serde_json::Value) -> Result<VerifiedToken, JwtError> {
        verified_claims(claims, &self.claims)
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| header_problem(error.kind()))?;
        let remote = self.remote.as_ref().map(|remote| remote.current());
        let all = self.keys.iter().chain(remote.iter().flat_map(|set| set.keys.iter()));
        let mut candidates = all.filter(|key| key.algorithm == header.alg).peekable();
        if candidates.peek().is_none() {
            // Remote keys not fetched yet (or an algorithm they will publish): fetch them.
            if self.remote.is_some() && header.kid.is_some() {
                return Err(JwtError::UnknownKey);
            }
            return Err(JwtError::Invalid(format!("no key here accepts the algorithm {:?}", header.alg)));
        }
        let mut candidates =
            candidates.filter(|key| header.kid.is_none() || key.kid.is_none() || key.kid == header.kid).peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::UnknownKey);
        }
        let mut last = JwtError::invalid("the signature does not verify");
        for key in candidates {
            match jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &self.validation(key.algorithm)) {
                Ok(data) => return verified_claims(data.claims, &self.claims),
                Err(error) => last = claims_problem(error.kind()),
            }
        }
        Err(last)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        // The library checks `iss` and `aud` only when present: configured, they are required.
        let mut required = vec!["exp"];
        if self.claims.user == "sub" {
            required.push("sub");
        }
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// Signs a login token for `claims` (only with a shared secret).
    pub fn sign(&self, claims: &LoginClaims) -> Result<String, JwtError> {
        let key = self.signing.as_ref().ok_or_else(|| {
            JwtError::Keys(
                "tokens can only be signed here with a shared secret (--jwt-secret or the development secret)".into(),
            )
        })?;
        #[derive(Serialize)]
        struct Signed<'a> {
            #[serde(flatten)]
            claims: &'a LoginClaims,
            iat: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            iss: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            aud: Option<&'a str>,
        }
        let signed = Signed {
            claims,
            iat: chrono::Utc::now().timestamp(),
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &signed, key)
            .map_err(|e| JwtError::Keys(format!("cannot sign the token: {e}")))
    }
}

/// Why the token's header is refused: it is read before any key is tried.
fn header_problem(kind: &ErrorKind) -> JwtError {
    JwtError::invalid(match kind {
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => "the token is not a JWT: its header is not base64url-encoded",
        ErrorKind::Json(_) => {
            "the token's header is not one this server accepts (JSON naming a signing algorithm; alg none is refused)"
        }
        _ => "the token is not a JWT (three base64url parts separated by dots)",
    })
}

/// Why a key refused the token, past its header.
fn claims_problem(kind: &ErrorKind) -> JwtError {
    let detail = match kind {
        ErrorKind::ExpiredSignature => return JwtError::Expired,
        ErrorKind::InvalidSignature => "the signature does not verify",
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match the key",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "the token has no expiry time (exp) but one is required",
            "sub" => "the token has no subject (sub) naming the user",
            "iss" => "the token has no issuer (iss) but one is required",
            "aud" => "the token has no audience (aud) but one is required",
            _ => "the token lacks a required claim",
        },
        ErrorKind::InvalidIssuer => "the token was issued by another issuer",
        ErrorKind::InvalidAudience => "the token was issued for another audience",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::Base64(_) => "the token is not a JWT: a part is not base64url-encoded",
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => "the token's claims are not a JSON object",
        ErrorKind::InvalidToken => "the token is not a JWT (three base64url parts separated by dots)",
        _ => "the token's signature cannot be checked with the configured key",
    };
    JwtError::invalid(detail)
}

/// The claims roleledger reads, each checked for its type, from a token whose signature and
/// registered claims have been verified.
pub(super) fn verified_claims(mut claims: serde_json::Value, names: &ClaimNames) -> Result<VerifiedToken, JwtError> {
    let issued_at = match claims.get("iat") {
        None | Some(serde_json::Value::Null) => None,
        // NumericDate may have a fraction; whole seconds are enough here.
        Some(iat) => Some(
            iat.as_i64()
                .or_else(|| iat.as_f64().filter(|t| t.is_finite()).map(|t| t as i64))
                .ok_or_else(|| JwtError::invalid("the token's issue time (iat) is not a number"))?,
        ),
    };
    if issued_at.is_some_and(|iat| iat > chrono::Utc::now().timestamp() + LEEWAY_SECONDS as i64) {
        return Err(JwtError::invalid("the token's issue time (iat) is in the future"));
    }
    // Claims roleledger does not read are left out, so their shape cannot refuse the token.
    if let Some(object) = claims.as_object_mut() {
        if names.user != "sub" {
            match object.remove(&names.user) {
                Some(user @ serde_json::Value::String(_)) => object.insert("sub".into(), user),
                _ => {
                    return Err(JwtError::Invalid(format!(
                        "the token has no {} claim (a string) naming the user",
                        names.user
                    )))
                }
            };
        }
        if let Some(roles_claim) = &names.roles {
            // Read like `roles`; a single value is a list of one.
            let extra = match object.remove(roles_claim) {
                Some(serde_json::Value::String(one)) => vec![serde_json::Value::String(one)],
                Some(serde_json::Value::Array(values)) => values,
                _ => Vec::new(),
            };
            if !extra.is_empty() {
                let roles = object.entry("roles").or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let serde_json::Value::Array(roles) = roles {
                    roles.extend(extra);
                }
            }
        }
        object.retain(|name, _| matches!(name.as_str(), "sub" | "exp" | "email" | "name" | "roles"));
    }
    let claims: LoginClaims = serde_json::from_value(claims).map_err(|_| {
        JwtError::invalid(
            "the token's claims have the wrong types (sub, email and name are strings, exp a number, \
             roles a list of strings)",
        )
    })?;
    Ok(VerifiedToken { claims, issued_at })
}

fn shared_secret(secret: &[u8]) -> (Vec<Key>, Option<EncodingKey>) {
    let key = Key { kid: None, algorithm: Algorithm::HS256, decoding: DecodingKey::from_secret(secret) };
    (vec![key], Some(EncodingKey::from_secret(secret)))
}

fn read(file: &Path) -> Result<Vec<u8>, JwtError> {
    std::fs::read(file).map_err(|e| JwtError::Keys(format!("{}: {e}", file.display())))
}

/// An RSA key admits RS256 only, an EC key ES256 only.
fn pem_key(file: &Path) -> Result<Key, JwtError> {
    let pem = read(file)?;
    let (algorithm, decoding) = match DecodingKey::from_rsa_pem(&pem) {
        Ok(key) => (Algorithm::RS256, key),
        Err(_) => {
            let key = DecodingKey::from_ec_pem(&pem).map_err(|e| {
                JwtError::Keys(format!("{}: neither an RSA nor an EC public key in PEM: {e}", file.display()))
            })?;
            (Algorithm::ES256, key)
        }
    };
    Ok(Key { kid: None, algorithm, decoding })
}

/// RSA and P-256 keys of a JWKS; symmetric keys there are refused (a public document holds no secrets).
fn jwks_keys(file: &Path) -> Result<Vec<Key>, JwtError> {
    let set: JwkSet = serde_json::from_slice(&read(file)?)
        .map_err(|e| JwtError::Keys(format!("{}: not a JWKS document: {e}", file.display())))?;
    let keys = keys_of(&set).map_err(|e| JwtError::Keys(format!("{}: {e}", file.display())))?;
    if keys.is_empty() {
        return Err(JwtError::Keys(format!(
            "{}: no RSA or EC key for verifying signatures in the JWKS (keys with \"use\" other than \"sig\", \
             or whose \"key_ops\" lack \"verify\", are never used)",
            file.display()
        )));
    }
    Ok(keys)
}

/// The keys of `set` that verify signatures, each admitting its own algorithm.
pub(super) fn keys_of(set: &JwkSet) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    for jwk in set.keys.iter().filter(|jwk| verifies_signatures(jwk)) {
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => continue,
        };
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        keys.push(Key { kid: jwk.common.key_id.clone(), algorithm, decoding });
    }
    Ok(keys)
}

/// A key published for encryption (`use: "enc"`), or whose `key_ops` do not include `verify`,
/// never verifies a signature (RFC 7517 §4.2, §4.3).
pub(super) fn verifies_signatures(jwk: &Jwk) -> bool {
    let for_signatures = match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => true,
        Some(_) => false,
    };
    let may_verify = match &jwk.common.key_operations {
        None => true,
        Some(operations) => operations.contains(&KeyOperations::Verify),
    };
    for_signatures && may_verify
}

/// Reads the development secret, or creates it (readable by its owner only).
fn development_secret(file: &Path) -> Result<String, JwtError> {
    if let Ok(text) = std::fs::read_to_string(file) {
        let secret = text.trim().to_string();
        if secret.len() >= 32 {
            return Ok(secret);
        }
        return Err(JwtError::Keys(format!("{}: the development secret is too short", file.display())));
    }
    let secret = super::random_hex();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file).map_err(|e| JwtError::Keys(format!("{}: {e}", file.display())))?;
    out.write_all(secret.as_bytes()).map_err(|e| JwtError::Keys(format!("{}: {e}", file.display())))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::Secret;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

    fn verifier(issuer: Option<&str>, audience: Option<&str>) -> JwtVerifier {
        let settings = JwtSettings {
            keys: JwtKeys::Secret(Secret::new("a-test-secret-of-some-length")),
            issuer: issuer.map(String::from),
            audience: audience.map(String::from),
        };
        JwtVerifier::from_settings(&settings).unwrap()
    }

    fn claims(exp_in: i64) -> LoginClaims {
        LoginClaims {
            sub: "alice".into(),
            exp: chrono::Utc::now().timestamp() + exp_in,
            email: None,
            name: None,
            roles: None,
        }
    }

    #[test]
    fn a_signed_token_verifies_and_an_expired_one_does_not() {
        let v = verifier(None, None);
        assert_eq!(v.verify(&v.sign(&claims(60)).unwrap()).unwrap().claims.sub, "alice");
        assert!(matches!(v.verify(&v.sign(&claims(-120)).unwrap()), Err(JwtError::Expired)));
        // Within the leeway, still accepted.
        assert!(v.verify(&v.sign(&claims(-5)).unwrap()).is_ok());
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let signer = verifier(Some("other"), Some("aud"));
        let checker = verifier(Some("roleledger"), Some("aud"));
        assert!(checker.verify(&signer.sign(&claims(60)).unwrap()).is_err());
        let signer = verifier(Some("roleledger"), Some("elsewhere"));
        assert!(checker.verify(&signer.sign(&claims(60)).unwrap()).is_err());
        let signer = verifier(Some("roleledger"), Some("aud"));
        assert!(checker.verify(&signer.sign(&claims(60)).unwrap()).is_ok());
    }

    /// A token signed with the test secret, with exactly these claims.
    fn raw_token(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_secret(b"a-test-secret-of-some-length");
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    fn refusal(v: &JwtVerifier, token: &str) -> String {
        match v.verify(token) {
            Err(JwtError::Invalid(detail)) => detail,
            other => panic!("{token}: {other:?}"),
        }
    }

    #[test]
    fn configured_issuer_and_audience_are_required() {
        let v = verifier(Some("https://idp"), Some("roleledger"));
        let exp = chrono::Utc::now().timestamp() + 60;
        let without_iss = raw_token(serde_json::json!({"sub": "alice", "exp": exp, "aud": "roleledger"}));
        assert_eq!(refusal(&v, &without_iss), "the token has no issuer (iss) but one is required");
        let without_aud = raw_token(serde_json::json!({"sub": "alice", "exp": exp, "iss": "https://idp"}));
        assert_eq!(refusal(&v, &without_aud), "the token has no audience (aud) but one is required");
        let numeric_iss = raw_token(serde_json::json!({"sub": "alice", "exp": exp, "iss": 7, "aud": "roleledger"}));
        assert_eq!(refusal(&v, &numeric_iss), "the token has no issuer (iss) but one is required");
        let other_aud = raw_token(serde_json::json!({"sub": "alice", "exp": exp, "iss": "https://idp", "aud": "x"}));
        assert_eq!(refusal(&v, &other_aud), "the token was issued for another audience");
        let good =
            raw_token(serde_json::json!({"sub": "alice", "exp": exp, "iss": "https://idp", "aud": "roleledger"}));
        assert_eq!(v.verify(&good).unwrap().claims.sub, "alice");
        // Unconfigured, neither is needed.
        assert!(verifier(None, None).verify(&without_iss).is_ok());
    }

    #[test]
    fn refusals_name_the_cause_in_plain_words() {
        let v = verifier(None, None);
        let exp = chrono::Utc::now().timestamp() + 60;
        let now = chrono::Utc::now().timestamp();
        let other_key = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "alice", "exp": exp}),
            &EncodingKey::from_secret(b"another-secret"),
        )
        .unwrap();
        let cases = [
            ("not a token".to_string(), "the token is not a JWT"),
            ("a.b.c".to_string(), "the token is not a JWT"),
            (format!("{}.e30.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#)), "alg none is refused"),
            (other_key, "the signature does not verify"),
            (raw_token(serde_json::json!({"exp": exp})), "no subject (sub)"),
            (raw_token(serde_json::json!({"sub": "alice"})), "no expiry time (exp)"),
            (raw_token(serde_json::json!({"sub": "alice", "exp": "soon"})), "no expiry time (exp)"),
            (raw_token(serde_json::json!({"sub": "alice", "exp": exp, "nbf": exp})), "not valid yet (nbf)"),
            (raw_token(serde_json::json!({"sub": "alice", "exp": exp, "roles": "admin"})), "wrong types"),
            (raw_token(serde_json::json!({"sub": "alice", "exp": exp, "email": 5})), "wrong types"),
            (raw_token(serde_json::json!({"sub": "alice", "exp": exp, "iat": "x"})), "(iat) is not a number"),
            (raw_token(serde_json::json!({"sub": "alice", "exp": exp, "iat": now + 3600})), "(iat) is in the future"),
        ];
        for (token, expected) in cases {
            let detail = refusal(&v, &token);
            assert!(detail.contains(expected), "{token}: {detail}");
            for internal in ["line", "column", "Error(", "ErrorKind", "JSON error"] {
                assert!(!detail.contains(internal), "{token}: {detail}");
            }
        }
        // Claims roleledger does not read may hold anything; iat is kept.
        let token = raw_token(serde_json::json!({"sub": "alice", "exp": exp, "iat": now, "extra": {"x": [1]}}));
        assert_eq!(v.verify(&token).unwrap().issued_at, Some(now));
    }

    #[test]
    fn jwks_keys_not_meant_for_verifying_are_skipped() {
        // RFC 7517 appendix A.1's RSA public key, published three ways.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let key = |extra: serde_json::Value| {
            let mut jwk = serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB"});
            jwk.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            jwk
        };
        let folder = tempfile::tempdir().unwrap();
        let load = |keys: Vec<serde_json::Value>| {
            let file = folder.path().join("keys.json");
            std::fs::write(&file, serde_json::json!({ "keys": keys }).to_string()).unwrap();
            let settings = JwtSettings { keys: JwtKeys::JwksFile(file), issuer: None, audience: None };
            JwtVerifier::from_settings(&settings).map(|v| v.keys.len())
        };
        let signing = key(serde_json::json!({"kid": "sig", "use": "sig", "key_ops": ["verify"]}));
        let encrypting = key(serde_json::json!({"kid": "enc", "use": "enc"}));
        let wrapping = key(serde_json::json!({"kid": "wrap", "key_ops": ["encrypt", "wrapKey"]}));
        assert_eq!(load(vec![signing, encrypting.clone(), wrapping.clone(), key(serde_json::json!({}))]).unwrap(), 2);
        match load(vec![encrypting, wrapping]) {
            Err(JwtError::Keys(message)) => assert!(message.contains("no RSA or EC key for verifying"), "{message}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn the_configured_user_and_roles_claims_are_read() {
        let names = ClaimNames { user: "voperson_id".into(), roles: Some("eduperson_entitlement".into()) };
        let v = verifier(None, None).with_claims(names);
        let exp = chrono::Utc::now().timestamp() + 60;
        let token = raw_token(serde_json::json!({
            "sub": "per-service-id", "voperson_id": "alice@egi.eu", "exp": exp,
            "roles": ["support"], "eduperson_entitlement": ["urn:x:member", "urn:y:admin"],
        }));
        let claims = v.verify(&token).unwrap().claims;
        assert_eq!(claims.sub, "alice@egi.eu");
        assert_eq!(claims.roles.unwrap(), ["support", "urn:x:member", "urn:y:admin"]);
        let one = raw_token(serde_json::json!({"voperson_id": "bob", "exp": exp, "eduperson_entitlement": "urn:z"}));
        assert_eq!(v.verify(&one).unwrap().claims.roles.unwrap(), ["urn:z"]);
        // No user claim: refused, whatever `sub` says.
        let without = raw_token(serde_json::json!({"sub": "alice", "exp": exp}));
        assert_eq!(refusal(&v, &without), "the token has no voperson_id claim (a string) naming the user");
    }

    #[test]
    fn alg_none_and_tampering_are_refused() {
        let base64_url = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let v = verifier(None, None);
        let token = v.sign(&claims(60)).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let none_header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        parts[0] = &none_header;
        assert!(v.verify(&format!("{}.{}.", parts[0], parts[1])).is_err());
        let forged_payload = base64_url(br#"{"sub":"admin","exp":9999999999}"#);
        let original: Vec<&str> = token.split('.').collect();
        assert!(v.verify(&format!("{}.{}.{}", original[0], forged_payload, original[2])).is_err());
    }
}
