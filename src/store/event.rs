//! Events as they are proposed and as they are recorded, and the hash chain that links them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::canonical;

/// The hash that the first event of the log chains from: 32 zero bytes, hex encoded.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who caused an event and in answer to what; stored beside every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EventMetadata)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
}

/// An event that a caller asks to append; the store gives it its position, version, time, id and hash.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Metadata,
}

impl NewEvent {
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Self { event_type: event_type.into(), schema_version: 1, data, metadata: Metadata::default() }
    }

    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream: String,
    pub version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: i32,
    /// The event's own fields, by its type.
    #[schema(value_type = Object)]
    pub data: Value,
    pub metadata: Metadata,
    #[serde(with = "micros")]
    pub recorded_at: DateTime<Utc>,
    pub event_id: Uuid,
    pub hash: String,
}

impl RecordedEvent {
    /// RFC 8785 canonical JSON of everything the hash covers (all fields but the hash itself): the
    /// object `{data, event_id, metadata, position, recorded_at, schema_version, stream, type, version}`.
    pub fn canonical_encoding(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        // Member names in canonical (UTF-16) order.
        out.extend_from_slice(b"{\"data\":");
        canonical::write_value(&self.data, &mut out);
        out.extend_from_slice(b",\"event_id\":");
        canonical::write_string(&self.event_id.hyphenated().to_string(), &mut out);
        out.extend_from_slice(b",\"metadata\":");
        canonical::write_value(&serde_json::to_value(&self.metadata).expect("metadata serializes"), &mut out);
        out.extend_from_slice(b",\"position\":");
        canonical::write_integer(self.position, &mut out);
        out.extend_from_slice(b",\"recorded_at\":");
        canonical::write_string(&format_time(&self.recorded_at), &mut out);
        out.extend_from_slice(b",\"schema_version\":");
        canonical::write_integer(self.schema_version.into(), &mut out);
        out.extend_from_slice(b",\"stream\":");
        canonical::write_string(&self.stream, &mut out);
        out.extend_from_slice(b",\"type\":");
        canonical::write_string(&self.event_type, &mut out);
        out.extend_from_slice(b",\"version\":");
        canonical::write_integer(self.version, &mut out);
        out.push(b'}');
        out
    }

    /// SHA-256 over the previous event's hash (32 raw bytes) followed by this event's canonical encoding.
    pub fn chained_hash(&self, previous_hash: &str) -> String {
        let mut hasher = Sha256::new();
        // A malformed stored hash must not verify, so it is hashed as its text rather than rejected here.
        match hex::decode(previous_hash) {
            Ok(raw) => hasher.update(raw),
            Err(_) => hasher.update(previous_hash.as_bytes()),
        }
        hasher.update(self.canonical_encoding());
        hex::encode(hasher.finalize())
    }
}

/// Times are kept and hashed with microsecond precision, the finest both backends store.
pub fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.timestamp_micros()).expect("a current time is in range")
}

/// `2026-11-22T08:10:40.123456Z`: the one textual form of a time in hashes, SQLite and exports.
pub fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) mod micros {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_time(time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text).map(|time| time.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> RecordedEvent {
        RecordedEvent {
            position: 1,
            stream: "s".into(),
            version: 1,
            event_type: "Happened".into(),
            schema_version: 1,
            data: json!({"b": 1, "a": [true, null, 1.5]}),
            metadata: Metadata { actor: Some("alice".into()), ..Metadata::default() },
            recorded_at: DateTime::parse_from_rfc3339("2026-11-22T08:10:40.123456Z").unwrap().with_timezone(&Utc),
            event_id: Uuid::nil(),
            hash: String::new(),
        }
    }

    #[test]
    fn canonical_encoding_sorts_keys_and_formats_time_with_micros() {
        let text = String::from_utf8(sample().canonical_encoding()).unwrap();
        assert_eq!(
            text,
            r#"{"data":{"a":[true,null,1.5],"b":1},"event_id":"00000000-0000-0000-0000-000000000000","metadata":{"actor":"alice"},"position":1,"recorded_at":"2026-11-22T08:10:40.123456Z","schema_version":1,"stream":"s","type":"Happened","version":1}"#
        );
    }

    #[test]
    fn hash_depends_on_previous_hash_and_every_field() {
        let event = sample();
        let base = event.chained_hash(GENESIS_HASH);
        assert_eq!(base.len(), 64);
        assert_ne!(base, event.chained_hash(&"1".repeat(64)));
        let mut changed = event.clone();
        changed.data = json!({"b": 2, "a": [true, null, 1.5]});
        assert_ne!(base, changed.chained_hash(GENESIS_HASH));
        let mut reordered = event.clone();
        reordered.data = json!({"a": [true, null, 1.5], "b": 1});
        assert_eq!(base, reordered.chained_hash(GENESIS_HASH), "key order must not matter");
    }
}
