//! The HTTP adapter: the JSON API (`api/`, one file per feature), the web pages (`ui/`), and what
//! both use: the caller (`caller.rs`), the one status table (`problem.rs`), paging, the views of
//! requests and grants, and the reads and token commands they share (`shared.rs`); `api/` and
//! `ui/` never import each other.

pub mod api;
mod caller;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
mod paging;
pub mod problem;
mod review_views;
mod sentences;
mod shared;
pub mod ui;
mod views;

pub use caller::CorrelationId;

use crate::{app::App, auth::Authenticator, store::EventStore};

/// What every handler shares.
pub struct AppState {
    /// Where every command runs.
    pub app: App,
    /// The log and the read model, for reads.
    pub store: EventStore,
    pub auth: Authenticator,
    pub metrics: metrics::Metrics,
    pub delivery: std::sync::Arc<crate::mail::DeliveryStats>,
    pub ui: ui::UiSettings,
    /// Becomes true when the server is stopping: live tails end.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Opens the tokens of the mail's Approve and Reject links.
    pub mail_links: crate::app::mail_links::MailLinks,
    /// Whether webhook targets may be private, and what this process's webhook worker did.
    pub webhooks: crate::webhooks::WebhookSettings,
    pub webhook_stats: std::sync::Arc<crate::webhooks::WebhookStats>,
}
