//! The mail as delivery workers and admins read it back.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// How long a claimed mail is reserved for its worker; longer than an SMTP attempt may take.
pub const MAIL_LEASE: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailState {
    /// Waiting to be sent (or being sent, or waiting for a retry).
    Pending,
    Sent,
    /// Given up after the last attempt; an admin may retry it.
    Dead,
}

impl fmt::Display for MailState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailState::Pending => "pending",
            MailState::Sent => "sent",
            MailState::Dead => "dead",
        })
    }
}

impl FromStr for MailState {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(MailState::Pending),
            "sent" => Ok(MailState::Sent),
            "dead" => Ok(MailState::Dead),
            other => Err(format!("unknown mail state \"{other}\" (pending, sent or dead)")),
        }
    }
}

/// A row of the outbox as workers and admins see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Mail)]
pub struct OutboxMail {
    pub id: i64,
    pub event_id: String,
    pub position: i64,
    pub recipient: String,
    pub kind: String,
    /// What the mail's template is filled with.
    #[schema(value_type = Object)]
    pub context: Value,
    pub message_id: String,
    pub state: MailState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}
