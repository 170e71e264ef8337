//! Idempotency keys beyond raw appends: a command may carry one (the writer records it with the
//! command's events, in their transaction), and a caller may keep the answer it gave under one, to
//! give it again to a repeat. Keys are opaque here: who made them and what they name is the
//! caller's business. Both kinds are remembered for `KEY_LIFETIME`.

use chrono::{TimeDelta, Utc};

use super::{EventStore, StoreError};

/// How long a key is remembered: older keys and answers are ignored, and deleted when answers are
/// kept (or, for a key that is used again, when the writer looks it up).
pub const KEY_LIFETIME: TimeDelta = TimeDelta::hours(24);

/// A command's idempotency key and a fingerprint of what it asks: a repeat with the same
/// fingerprint is not decided again, one with another is refused (`IdempotencyKeyReused`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandKey {
    pub key: String,
    pub fingerprint: String,
}

/// An answer kept under a key: the fingerprint of the call it answered, and the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptAnswer {
    pub fingerprint: String,
    pub answer: serde_json::Value,
}

impl EventStore {
    /// The answer kept under `key` within the last `KEY_LIFETIME`, if any.
    pub async fn kept_answer(&self, key: &str) -> Result<Option<KeptAnswer>, StoreError> {
        let kept = self.db.kept_answer(key, Utc::now() - KEY_LIFETIME).await?;
        kept.map(|(fingerprint, answer)| {
            let answer = serde_json::from_str(&answer).map_err(|error| StoreError::CorruptAnswer(error.to_string()))?;
            Ok(KeptAnswer { fingerprint, answer })
        })
        .transpose()
    }

    /// Keeps `answer` under `key` (the first one kept stays), first deleting every key and answer
    /// older than `KEY_LIFETIME`.
    pub async fn keep_answer(
        &self,
        key: &str,
        fingerprint: &str,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        self.db.keep_answer(key, fingerprint, &answer.to_string(), now, now - KEY_LIFETIME).await
    }
}
