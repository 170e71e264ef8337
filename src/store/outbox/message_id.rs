//! The Message-ID of a mail.

use sha2::{Digest, Sha256};

/// Stable across retries and processes: the same event and recipient give the same Message-ID.
pub fn message_id(event_id: &uuid::Uuid, recipient: &str) -> String {
    let digest = Sha256::digest(format!("{event_id}\n{recipient}").as_bytes());
    format!("<{}@roleledger>", &hex::encode(digest)[..40])
}
