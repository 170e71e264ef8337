use std::collections::HashMap;

use serde::Serialize;

use super::{EventStore, LogHead, StoreError};

/// The first thing found wrong in the log, with the position where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyProblem {
    pub position: i64,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// How many events were checked.
    pub events: i64,
    /// The head as recomputed from the chain.
    pub head: LogHead,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_problem: Option<VerifyProblem>,
}

/// Recomputes the chain from the genesis hash up to the head stored when the walk began.
pub(super) async fn verify(store: &EventStore) -> Result<VerifyReport, StoreError> {
    let stored_head = store.head().await?;
    let mut computed = LogHead::empty();
    let mut versions: HashMap<String, i64> = HashMap::new();
    let mut cursor = store.read_all(0);
    let problem = loop {
        let event = match cursor.next().await {
            Ok(Some(event)) if event.position <= stored_head.position => event,
            Ok(_) => break None,
            Err(StoreError::CorruptEvent { position, reason }) => break Some(VerifyProblem { position, problem: reason }),
            Err(error) => return Err(error),
        };
        let expected_position = computed.position + 1;
        if event.position != expected_position {
            break Some(VerifyProblem {
                position: expected_position,
                problem: format!("position {expected_position} is missing (next found: {})", event.position),
            });
        }
        let stream_version = versions.entry(event.stream.clone()).or_insert(0);
        if event.version != *stream_version + 1 {
            break Some(VerifyProblem {
                position: event.position,
                problem: format!(
                    "stream {:?} jumps from version {} to {}",
                    event.stream, stream_version, event.version
                ),
            });
        }
        *stream_version = event.version;
        let hash = event.chained_hash(&computed.hash);
        if hash != event.hash {
            break Some(VerifyProblem {
                position: event.position,
                problem: format!("hash mismatch: stored {}, computed {hash}", event.hash),
            });
        }
        computed = LogHead { position: event.position, hash };
    };
    let problem = problem.or_else(|| {
        (computed != stored_head).then(|| VerifyProblem {
            position: computed.position + 1,
            problem: format!(
                "the stored head (position {}, hash {}) does not match the chain (position {}, hash {})",
                stored_head.position, stored_head.hash, computed.position, computed.hash
            ),
        })
    });
    Ok(VerifyReport { ok: problem.is_none(), events: computed.position, head: computed, first_problem: problem })
}
