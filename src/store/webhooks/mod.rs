//! The webhooks' outbox: one delivery per event and subscription, written in the event's
//! transaction (so an acknowledged event never loses its webhook), then claimed, sent and marked
//! by the delivery workers; and each subscription's signing secret, kept outside the log.
//!
//! Per subscription, deliveries go in log order: a claim takes only a subscription's pending
//! delivery of the lowest position, so a later one waits while an earlier one is tried again, and
//! goes once that one is delivered or dead. A claim leases the row (its `next_attempt_at` pushed
//! past a lease, in one statement, `FOR UPDATE SKIP LOCKED` on PostgreSQL): two workers never
//! hold the same row, and one that dies leaves it to be claimed again when the lease ends.
//!
//! - `row.rs`: the row written with the event that causes it;
//! - `delivery.rs`: the delivery as workers and admins read it back;
//! - `claims.rs`: claiming, marking, listing and retrying deliveries; the secrets.

mod claims;
mod delivery;
pub(super) mod row;

pub use delivery::{DeliveryState, WebhookDelivery, WEBHOOK_LEASE};
pub(crate) use row::DeliveryRow;
