use std::collections::HashMap;

use serde::Serialize;

use super::{EventStore, LogHead, RecordedEvent, StoreError};

/// The first thing found wrong in the log, with the position where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// The position at which the projections were compared with a fresh rebuild (None when the
    /// store keeps none, or the chain broke before it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projections_checked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_problem: Option<VerifyProblem>,
}

/// A stream as the walk has seen it so far.
#[derive(Default)]
struct StreamSeen {
    version: i64,
    last_position: i64,
}

/// The chain walked from its start: each event must take the next position, continue its stream's
/// versions and carry the hash that the chain gives it. `verify` and `import` walk it alike.
pub struct ChainWalk {
    head: LogHead,
    streams: HashMap<String, StreamSeen>,
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainWalk {
    pub fn new() -> Self {
        ChainWalk { head: LogHead::empty(), streams: HashMap::new() }
    }

    /// The position and hash of the last event accepted.
    pub fn head(&self) -> &LogHead {
        &self.head
    }

    /// The position of the last event of `stream` accepted so far.
    pub fn last_position_of(&self, stream: &str) -> Option<i64> {
        self.streams.get(stream).map(|seen| seen.last_position)
    }

    /// Takes `event` as the next one of the chain, or says where and why it cannot follow.
    pub fn accept(&mut self, event: &RecordedEvent) -> Result<(), VerifyProblem> {
        let expected_position = self.head.position + 1;
        if event.position != expected_position {
            return Err(VerifyProblem {
                position: expected_position,
                problem: format!("position {expected_position} is missing (next found: {})", event.position),
            });
        }
        let seen = self.streams.entry(event.stream.clone()).or_default();
        if event.version != seen.version + 1 {
            return Err(VerifyProblem {
                position: event.position,
                problem: format!("stream {:?} jumps from version {} to {}", event.stream, seen.version, event.version),
            });
        }
        let hash = event.chained_hash(&self.head.hash);
        if hash != event.hash {
            return Err(VerifyProblem {
                position: event.position,
                problem: format!("hash mismatch: stored {}, computed {hash}", event.hash),
            });
        }
        *seen = StreamSeen { version: event.version, last_position: event.position };
        self.head = LogHead { position: event.position, hash };
        Ok(())
    }
}

/// What a walk of the chain checks beside it (the projections' half of verify): shown each event
/// once the chain has accepted it, and asked before the first and after each event whether all
/// is well so far.
pub trait ChainCheck {
    /// A problem found at this point of the walk (`chain` holds what was accepted so far).
    fn check(&mut self, chain: &ChainWalk) -> Option<VerifyProblem>;
    /// The next event of the chain, accepted.
    fn accepted(&mut self, event: &RecordedEvent);
    /// The position at which the check compared what it compares (None when it did not get to).
    fn checked_at(&self) -> Option<i64>;
}

/// No check beside the chain's own.
pub(super) struct NoCheck;

impl ChainCheck for NoCheck {
    fn check(&mut self, _: &ChainWalk) -> Option<VerifyProblem> {
        None
    }

    fn accepted(&mut self, _: &RecordedEvent) {}

    fn checked_at(&self) -> Option<i64> {
        None
    }
}

/// Recomputes the chain from the genesis hash up to the head stored when the walk began, showing
/// `check` every event. A check that looks at what this process holds takes its copy before
/// the walk begins: the head is read after that, so it is at or beyond the copy.
pub(super) async fn verify(store: &EventStore, check: &mut impl ChainCheck) -> Result<VerifyReport, StoreError> {
    let stored_head = store.head().await?;
    let mut chain = ChainWalk::new();
    let mut cursor = store.read_all(0);
    let problem = loop {
        if let Some(problem) = check.check(&chain) {
            break Some(problem);
        }
        let event = match cursor.next().await {
            Ok(Some(event)) if event.position <= stored_head.position => event,
            Ok(_) => break None,
            Err(StoreError::CorruptEvent { position, reason }) => {
                break Some(VerifyProblem { position, problem: reason })
            }
            Err(error) => return Err(error),
        };
        if let Err(problem) = chain.accept(&event) {
            break Some(problem);
        }
        check.accepted(&event);
    };
    let computed = chain.head().clone();
    let problem = problem.or_else(|| {
        (computed != stored_head).then(|| VerifyProblem {
            position: computed.position + 1,
            problem: format!(
                "the stored head (position {}, hash {}) does not match the chain (position {}, hash {})",
                stored_head.position, stored_head.hash, computed.position, computed.hash
            ),
        })
    });
    Ok(VerifyReport {
        ok: problem.is_none(),
        events: computed.position,
        head: computed,
        projections_checked_at: check.checked_at(),
        first_problem: problem,
    })
}
