//! The row of the outbox written with the event that causes it.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    mail::{MailState, OutboxMail},
    message_id::message_id,
};
use crate::store::{event::RecordedEvent, planner::NewMail};

/// A row about to be written with the event that causes it. The writer numbers it (ids are given
/// out under the log-head lock, like positions) and decides whether it is leased at once.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub event_id: uuid::Uuid,
    pub position: i64,
    pub recipient: String,
    pub kind: &'static str,
    pub context: Value,
    pub message_id: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl OutboxRow {
    pub fn new(event: &RecordedEvent, mail: NewMail) -> Self {
        OutboxRow {
            id: 0,
            message_id: message_id(&event.event_id, &mail.recipient),
            event_id: event.event_id,
            position: event.position,
            recipient: mail.recipient,
            kind: mail.kind,
            context: mail.context,
            attempts: 0,
            next_attempt_at: event.recorded_at,
            created_at: event.recorded_at,
        }
    }

    /// The row as its worker sends it, once written.
    pub fn mail(&self) -> OutboxMail {
        OutboxMail {
            id: self.id,
            event_id: self.event_id.to_string(),
            position: self.position,
            recipient: self.recipient.clone(),
            kind: self.kind.to_string(),
            context: self.context.clone(),
            message_id: self.message_id.clone(),
            state: MailState::Pending,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: None,
            created_at: self.created_at,
            sent_at: None,
        }
    }
}
