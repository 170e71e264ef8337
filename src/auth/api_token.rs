//! API tokens: opaque random secrets, shown once, known to the server only by their SHA-256.

use sha2::{Digest, Sha256};

/// Every API token starts with this, so that it is told apart from a login token at a glance.
pub const API_TOKEN_PREFIX: &str = "rl_";

/// 32 bytes from the operating system's random source, hex encoded: every secret and nonce.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source works");
    hex::encode(bytes)
}

/// A new secret: the prefix and 32 random bytes, hex encoded.
pub fn new_secret() -> String {
    format!("{API_TOKEN_PREFIX}{}", random_hex())
}

/// The SHA-256 of the whole token, hex encoded: what the log keeps.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed_to_64_hex_digits() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with(API_TOKEN_PREFIX) && a.len() == API_TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(hash_secret(&a), hash_secret(&a.clone()));
    }
}
