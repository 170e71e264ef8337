//! Signed webhooks (Standard Webhooks): each event, as a line of the NDJSON export, posted to the
//! subscriptions it matches, from the webhooks' outbox that the writer fills in the event's
//! transaction (`store::webhooks`); targets checked against private addresses (`target.rs`).

mod delivery;
mod signing;
mod target;

pub use delivery::{spawn_webhook_delivery, WebhookStats};
pub use signing::new_webhook_secret;
pub use target::check_target;

use crate::mail::RetryPolicy;

/// How this process delivers webhooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookSettings {
    /// `--webhook-allow-private`: targets may resolve to loopback, private and link-local addresses.
    pub allow_private: bool,
    /// The mail's backoff and attempts (not a flag: tests shorten it).
    pub retry: RetryPolicy,
}
