//! A delivery as workers and admins read it back.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How long a claimed delivery is reserved for its worker: longer than an attempt may take (10 s),
/// short enough that one a killed server held goes out soon after it is started again.
pub const WEBHOOK_LEASE: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting to be sent (or being sent, or waiting for a retry).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: after the last attempt, or at once for a target that may not be reached.
    Dead,
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        })
    }
}

impl FromStr for DeliveryState {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "dead" => Ok(DeliveryState::Dead),
            other => Err(format!("unknown delivery state \"{other}\" (pending, delivered or dead)")),
        }
    }
}

/// A row of the webhooks' outbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook: String,
    pub event_id: String,
    /// The event's position in the log.
    pub position: i64,
    pub url: String,
    /// The `webhook-id` header, the same on every attempt.
    pub message_id: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The receiver's last HTTP status, when it answered.
    pub last_status: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}
