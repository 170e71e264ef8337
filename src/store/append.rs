//! What an append names and what it answers: the stream, the version expected, where it landed.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{NewEvent, GENESIS_HASH};

/// What the caller believes the stream's version to be; a mismatch is a conflict, never an overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (versions start at 1).
    Exact(i64),
}

impl ExpectedVersion {
    pub(super) fn admits(self, current: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::Exact(version) => current == version,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream yet"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// A batch of events for one stream, appended all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// Repeating an append with the same key returns the first result and writes nothing.
    pub idempotency_key: Option<String>,
}

impl AppendRequest {
    pub fn new(stream: impl Into<String>, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self { stream: stream.into(), expected, events, idempotency_key: None }
    }

    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// Where an append landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    pub stream: String,
    pub first_position: i64,
    pub last_position: i64,
    /// The stream's version after the append.
    pub version: i64,
}

/// The last event of the log: its position and hash (0 and the genesis hash when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogHead {
    pub position: i64,
    pub hash: String,
}

impl LogHead {
    pub fn empty() -> Self {
        LogHead { position: 0, hash: GENESIS_HASH.to_string() }
    }
}
