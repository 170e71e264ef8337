//! The row of the webhooks' outbox written with the event that causes it.

use chrono::{DateTime, Utc};

use crate::store::{event::RecordedEvent, planner::NewDelivery};

/// A delivery about to be written with the event that causes it (due at once).
#[derive(Debug, Clone)]
pub(crate) struct DeliveryRow {
    pub webhook: String,
    pub event_id: uuid::Uuid,
    pub position: i64,
    pub url: String,
    /// The `webhook-id` header: the same for every attempt, so receivers can drop repeats.
    pub message_id: String,
    pub created_at: DateTime<Utc>,
}

impl DeliveryRow {
    pub fn new(event: &RecordedEvent, delivery: NewDelivery) -> Self {
        DeliveryRow {
            message_id: format!("msg_{}_{}", event.event_id.simple(), delivery.webhook),
            webhook: delivery.webhook,
            event_id: event.event_id,
            position: event.position,
            url: delivery.url,
            created_at: event.recorded_at,
        }
    }
}
