//! Standard Webhooks signatures: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
//! under the secret's key (the base64 after `whsec_`).

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};

const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// A new secret: `whsec_` and the base64 of random bytes.
pub fn new_webhook_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut key).expect("the system's random source");
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header of one attempt; `None` for a secret that is not one of ours.
pub fn signature(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(signature("no-prefix", "msg", 1, body), None);
    }

    #[test]
    fn new_secrets_are_random_and_decode() {
        let (one, two) = (new_webhook_secret(), new_webhook_secret());
        assert_ne!(one, two);
        assert_eq!(STANDARD.decode(one.strip_prefix(SECRET_PREFIX).unwrap()).unwrap().len(), SECRET_BYTES);
    }
}
