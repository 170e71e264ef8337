//! A selection of the log (by position and time, stream, type and actor), read in position order
//! without holding it in memory; and the two export encodings of an event, NDJSON and CSV.

use std::fmt::Write as _;

use super::{event::format_time, EventStore, LogCursor, Moment, RecordedEvent, StoreError};

/// Which events a reader wants; every bound is inclusive and every filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSelection {
    /// Only events after this position.
    pub after: i64,
    pub from: Option<Moment>,
    pub until: Option<Moment>,
    pub stream: Option<String>,
    pub event_type: Option<String>,
    pub actor: Option<String>,
}

impl EventSelection {
    /// The position after which the selection may start.
    pub fn starts_after(&self) -> i64 {
        match self.from {
            Some(Moment::Position(from)) => self.after.max(from - 1),
            _ => self.after,
        }
    }

    /// True once `event` and every later event lie beyond the selection (times need not grow
    /// with positions, so only a position bound ends it early).
    pub fn is_past(&self, event: &RecordedEvent) -> bool {
        matches!(self.until, Some(Moment::Position(until)) if event.position > until)
    }

    pub fn matches(&self, event: &RecordedEvent) -> bool {
        event.position > self.starts_after()
            && !matches!(self.from, Some(Moment::Time(from)) if event.recorded_at < from)
            && self.until.is_none_or(|until| until.reached_by(event.position, event.recorded_at))
            && self.stream.as_ref().is_none_or(|stream| &event.stream == stream)
            && self.event_type.as_ref().is_none_or(|event_type| &event.event_type == event_type)
            && self.actor.as_ref().is_none_or(|actor| event.metadata.actor.as_ref() == Some(actor))
    }
}

/// The selected events, read page by page (memory stays flat however large the selection).
pub struct SelectedEvents {
    cursor: LogCursor,
    selection: EventSelection,
}

impl SelectedEvents {
    pub(super) fn new(store: &EventStore, selection: EventSelection) -> Self {
        SelectedEvents { cursor: store.read_all(selection.starts_after()), selection }
    }

    /// The next selected event; `None` at the end of the selection or of the log.
    pub async fn next(&mut self) -> Result<Option<RecordedEvent>, StoreError> {
        while let Some(event) = self.cursor.next().await? {
            if self.selection.is_past(&event) {
                return Ok(None);
            }
            if self.selection.matches(&event) {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }
}

/// How an export writes events: NDJSON (one event a line, exactly as recorded, which `import`
/// reads back) or CSV (one row an event, for spreadsheets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportFormat {
    /// The first line of the export, if the format has one.
    pub fn header(self) -> Option<&'static str> {
        match self {
            ExportFormat::Ndjson => None,
            ExportFormat::Csv => Some("position,stream,version,type,recorded_at,actor,hash,data\n"),
        }
    }

    /// Appends one event, with its line end, to `out`.
    pub fn write(self, event: &RecordedEvent, out: &mut Vec<u8>) {
        match self {
            ExportFormat::Ndjson => {
                serde_json::to_writer(&mut *out, event).expect("an event serializes");
                out.push(b'\n');
            }
            ExportFormat::Csv => {
                let mut row = format!("{},", event.position);
                csv_field(&mut row, &event.stream);
                let _ = write!(row, ",{},", event.version);
                csv_field(&mut row, &event.event_type);
                let _ = write!(row, ",{},", format_time(&event.recorded_at));
                csv_field(&mut row, event.metadata.actor.as_deref().unwrap_or_default());
                let _ = write!(row, ",{},", event.hash);
                csv_field(&mut row, &event.data.to_string());
                row.push('\n');
                out.extend_from_slice(row.as_bytes());
            }
        }
    }
}

/// A CSV field as RFC 4180 has it: quoted, with quotes doubled, when it holds a comma, a quote or a line break.
fn csv_field(row: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        row.push('"');
        row.push_str(&text.replace('"', "\"\""));
        row.push('"');
    } else {
        row.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::store::Metadata;

    fn event(position: i64, recorded_at: &str) -> RecordedEvent {
        RecordedEvent {
            position,
            stream: "s".into(),
            version: position,
            event_type: "Happened".into(),
            schema_version: 1,
            data: json!({"text": "a, \"b\""}),
            metadata: Metadata { actor: Some("alice".into()), ..Metadata::default() },
            recorded_at: DateTime::parse_from_rfc3339(recorded_at).unwrap().with_timezone(&Utc),
            event_id: Uuid::nil(),
            hash: "h".into(),
        }
    }

    #[test]
    fn bounds_are_inclusive_and_filters_all_apply() {
        let selection = EventSelection {
            from: Some(Moment::Position(2)),
            until: Some("2026-01-01T00:00:02Z".parse().unwrap()),
            actor: Some("alice".into()),
            ..EventSelection::default()
        };
        assert_eq!(selection.starts_after(), 1);
        assert!(!selection.matches(&event(1, "2026-01-01T00:00:00Z")));
        assert!(selection.matches(&event(2, "2026-01-01T00:00:02Z")));
        assert!(!selection.matches(&event(3, "2026-01-01T00:00:02.000001Z")));
        assert!(!selection.is_past(&event(9, "2026-01-01T00:00:09Z")), "times do not end a selection early");
        let by_position = EventSelection { until: Some(Moment::Position(3)), ..EventSelection::default() };
        assert!(by_position.is_past(&event(4, "2026-01-01T00:00:00Z")));
        let other_actor = EventSelection { actor: Some("bob".into()), ..EventSelection::default() };
        assert!(!other_actor.matches(&event(1, "2026-01-01T00:00:00Z")));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut out = Vec::new();
        ExportFormat::Csv.write(&event(7, "2026-01-01T00:00:00Z"), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "7,s,7,Happened,2026-01-01T00:00:00.000000Z,alice,h,\"{\"\"text\"\":\"\"a, \\\"\"b\\\"\"\"\"}\"\n"
        );
        let mut out = Vec::new();
        ExportFormat::Ndjson.write(&event(7, "2026-01-01T00:00:00Z"), &mut out);
        let back: RecordedEvent = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, event(7, "2026-01-01T00:00:00Z"));
    }
}
