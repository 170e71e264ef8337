//! Login tokens: JWTs signed with HS256 (a shared secret) or RS256/ES256 (keys from a PEM or JWKS
//! file). Each key admits exactly its own algorithm, so `alg: none` and algorithm confusion (an
//! HS256 token "signed" with a public key) are refused.

use std::{io::Write, path::Path};

use jsonwebtoken::{
    jwk::{AlgorithmParameters, JwkSet},
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

use crate::configuration::{JwtKeys, JwtSettings};

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

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the token has expired")]
    Expired,
    #[error("{0}")]
    Invalid(String),
    #[error("cannot load the token keys: {0}")]
    Keys(String),
}

struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

pub struct JwtVerifier {
    keys: Vec<Key>,
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
        };
        Ok(JwtVerifier { keys, signing, issuer: settings.issuer.clone(), audience: settings.audience.clone() })
    }

    pub fn verify(&self, token: &str) -> Result<LoginClaims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| JwtError::Invalid(e.to_string()))?;
        let candidates = self.keys.iter().filter(|key| {
            key.algorithm == header.alg && (header.kid.is_none() || key.kid.is_none() || key.kid == header.kid)
        });
        let mut last = JwtError::Invalid(format!("no key accepts algorithm {:?}", header.alg));
        for key in candidates {
            match jsonwebtoken::decode::<LoginClaims>(token, &key.decoding, &self.validation(key.algorithm)) {
                Ok(data) => return Ok(data.claims),
                Err(error) => {
                    last = match error.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
                        _ => JwtError::Invalid(error.to_string()),
                    }
                }
            }
        }
        Err(last)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
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
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &signed, key).map_err(|e| JwtError::Invalid(e.to_string()))
    }
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
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => continue,
        };
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| JwtError::Keys(format!("{}: {e}", file.display())))?;
        keys.push(Key { kid: jwk.common.key_id.clone(), algorithm, decoding });
    }
    if keys.is_empty() {
        return Err(JwtError::Keys(format!("{}: no RSA or EC key in the JWKS", file.display())));
    }
    Ok(keys)
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
        assert_eq!(v.verify(&v.sign(&claims(60)).unwrap()).unwrap().sub, "alice");
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

    #[test]
    fn alg_none_and_tampering_are_refused() {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
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
