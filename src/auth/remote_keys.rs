//! Token keys published over http(s): `--jwks URL`, or the OpenID Connect issuer's `jwks_uri`.
//!
//! The set is cached in memory and replaced whole by each fetch, so a key the provider dropped is
//! dropped here too. It is fetched at start (in the background: the server starts while the
//! provider is away), again every `refresh` interval, and again when a token names a key id not
//! in the set, at most once a minute (a stream of tokens with made-up key ids costs the provider
//! one request a minute). A fetch that fails keeps the keys fetched before.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use jsonwebtoken::jwk::{Jwk, JwkSet};

use super::jwt::{keys_of, verifies_signatures, Key};

/// The least time between two fetches caused by unknown key ids.
pub const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(60);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One fetched key set: the keys for `jsonwebtoken`, and the same keys as a JWKS document (for
/// the ID-token checks of `openidconnect`). Keys not meant for verifying signatures are in neither.
#[derive(Default)]
pub struct KeySet {
    pub(super) keys: Vec<Key>,
    pub document: serde_json::Value,
}

pub struct RemoteKeys {
    http: reqwest::Client,
    url: RwLock<Option<String>>,
    set: RwLock<Arc<KeySet>>,
    /// When a fetch for an unknown key id last ran.
    last_unknown_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// When the keys were last fetched successfully, and the last failure since.
    status: RwLock<FetchStatus>,
    /// Counts the changes of the set (a key added or dropped): tokens verified before a change
    /// are verified again, so a dropped key's tokens stop working at once.
    generation: AtomicU64,
}

#[derive(Default, Clone)]
pub struct FetchStatus {
    pub fetched: Option<Instant>,
    pub error: Option<String>,
}

impl RemoteKeys {
    /// Keys at `url` (`None`: not known yet, e.g. until the issuer's discovery document is read).
    pub fn new(http: reqwest::Client, url: Option<String>) -> Arc<Self> {
        Arc::new(RemoteKeys {
            http,
            url: RwLock::new(url),
            set: RwLock::new(Arc::new(KeySet::default())),
            last_unknown_fetch: tokio::sync::Mutex::new(None),
            status: RwLock::new(FetchStatus::default()),
            generation: AtomicU64::new(0),
        })
    }

    pub fn set_url(&self, url: String) {
        *self.url.write().unwrap_or_else(|p| p.into_inner()) = Some(url);
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn status(&self) -> FetchStatus {
        self.status.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fetches the set and replaces the cached one; a failure keeps the cached keys.
    pub async fn fetch(&self) -> Result<(), String> {
        let url = self.url.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(url) = url else { return Err("the key set's address is not known yet".into()) };
        let result = self.fetch_from(&url).await;
        let mut status = self.status.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(set) => {
                let mut current = self.set.write().unwrap_or_else(|p| p.into_inner());
                if current.document != set.document {
                    self.generation.fetch_add(1, Ordering::SeqCst);
                }
                *current = Arc::new(set);
                drop(current);
                *status = FetchStatus { fetched: Some(Instant::now()), error: None };
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%url, %error, "token keys not fetched; the keys fetched before stay in use");
                status.error = Some(error.clone());
                Err(error)
            }
        }
    }

    async fn fetch_from(&self, url: &str) -> Result<KeySet, String> {
        let response = self.http.get(url).timeout(FETCH_TIMEOUT).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let document: serde_json::Value = response.json().await.map_err(|e| format!("{url}: not JSON: {e}"))?;
        key_set(document).map_err(|e| format!("{url}: {e}"))
    }

    /// A token named a key id not in the set: fetches again unless that was done less than a
    /// minute ago. True when the set was fetched.
    pub async fn refresh_for_unknown_key(&self) -> bool {
        let mut last = self.last_unknown_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_REFETCH) {
            return false;
        }
        *last = Some(Instant::now());
        self.fetch().await.is_ok()
    }

    /// Fetches at once, then every `every` (and, while no fetch has succeeded, every few seconds).
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration) {
        let keys = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(this) = keys.upgrade() else { return };
                let pause = match this.fetch().await {
                    Ok(()) => every,
                    Err(_) if this.status().fetched.is_none() => every.min(Duration::from_secs(5)),
                    Err(_) => every,
                };
                drop(this);
                tokio::time::sleep(pause).await;
            }
        });
    }
}

/// The keys of a JWKS document that verify signatures (`use` absent or `sig`, `key_ops` absent or
/// holding `verify`), RSA and EC only.
fn key_set(mut document: serde_json::Value) -> Result<KeySet, String> {
    let entries = document
        .get_mut("keys")
        .and_then(|keys| keys.as_array_mut())
        .ok_or_else(|| "not a JWKS document (no \"keys\" list)".to_string())?;
    // A key of a kind this server does not read is skipped, not a reason to refuse the others.
    entries.retain(|entry| {
        serde_json::from_value::<Jwk>(entry.clone()).is_ok_and(|jwk| verifies_signatures(&jwk))
            && matches!(entry.get("kty").and_then(|k| k.as_str()), Some("RSA" | "EC"))
    });
    let set: JwkSet = serde_json::from_value(document.clone()).map_err(|e| format!("not a JWKS document: {e}"))?;
    let keys = keys_of(&set)?;
    Ok(KeySet { keys, document })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signature_keys_are_kept_in_both_forms() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let document = serde_json::json!({"keys": [
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "sig", "use": "sig"},
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "enc", "use": "enc"},
            {"kty": "RSA", "n": n, "e": "AQAB", "kid": "wrap", "key_ops": ["wrapKey"]},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
        ]});
        let set = key_set(document).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("sig"));
        assert_eq!(set.document["keys"].as_array().unwrap().len(), 1);
    }
}
