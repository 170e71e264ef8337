//! The webhook delivery worker: claims the head of each subscription's line, posts it, marks it;
//! a failure (anything but 2xx, redirects included) is retried with the mail's backoff, dead after
//! the last attempt, and dead at once when the target resolves to an address it may not reach.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use chrono::Utc;
use futures_util::{stream::FuturesUnordered, StreamExt};

use super::{
    signing::signature,
    target::{check_target, Target},
    WebhookSettings,
};
use crate::{
    app::App,
    domain::WebhookId,
    store::{ExportFormat, WebhookDelivery},
};

/// How many deliveries are tried at once (at most one per subscription: only the head of each
/// line is claimed). A receiver that hangs holds one of them for the attempt's timeout, while the
/// others go on.
const IN_FLIGHT: usize = 20;
/// How long one attempt may take, connection included: a receiver that hangs costs this much.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an answer's body is read (and dropped) before the connection is given up.
const ANSWER_READ: usize = 64 * 1024;

/// What this process's worker did, for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dead: AtomicU64,
}

/// Why an attempt did not deliver: its error text, the receiver's status when it answered, and
/// whether trying again is pointless.
struct Failure {
    error: String,
    status: Option<i32>,
    hopeless: bool,
}

impl Failure {
    fn retry(error: impl Into<String>, status: Option<i32>) -> Self {
        Failure { error: error.into(), status, hopeless: false }
    }

    fn dead(error: impl Into<String>) -> Self {
        Failure { error: error.into(), status: None, hopeless: true }
    }
}

/// This process's webhook worker, watched like the store's tasks (readiness names it if it stops):
/// after each commit it hears of, each attempt that ends, and at least once a `poll`, it claims
/// due deliveries while fewer than `IN_FLIGHT` are being tried.
pub fn spawn_webhook_delivery(app: App, settings: WebhookSettings, stats: Arc<WebhookStats>) {
    let store = app.store().clone();
    let worker = Worker { app, settings, stats, clients: Clients::default() };
    store.spawn_watched("webhook delivery", async move {
        let mut feed = worker.app.store().feed();
        let mut in_flight = FuturesUnordered::new();
        loop {
            if in_flight.len() < IN_FLIGHT {
                match worker.app.store().claim_deliveries((IN_FLIGHT - in_flight.len()) as i64).await {
                    Ok(claimed) if !claimed.is_empty() => {
                        in_flight.extend(claimed.into_iter().map(|delivery| worker.deliver(delivery)));
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::debug!(%error, "cannot claim webhook deliveries; retrying"),
                }
            }
            tokio::select! {
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                head = feed.next_head() => if head.is_none() { return },
                () = tokio::time::sleep(worker.settings.retry.poll) => {}
            }
        }
    });
}

struct Worker {
    app: App,
    settings: WebhookSettings,
    stats: Arc<WebhookStats>,
    clients: Clients,
}

/// HTTP clients kept per checked target (its host's name and the address it resolved to), so
/// that deliveries to a receiver reuse their connection; a name that resolves elsewhere later
/// gets a client of its own, pinned to the new address.
#[derive(Default)]
struct Clients(Mutex<HashMap<(Option<String>, SocketAddr), reqwest::Client>>);

/// Clients kept at most; beyond, they are all dropped and made again as needed.
const KEPT_CLIENTS: usize = 256;

impl Clients {
    fn for_target(&self, target: &Target) -> Result<reqwest::Client, reqwest::Error> {
        let key = (target.domain.clone(), target.address);
        let mut kept = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = kept.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("roleledger/", env!("CARGO_PKG_VERSION")));
        // The connection goes to the address that was checked, not to a second lookup's.
        if let Some(domain) = &target.domain {
            builder = builder.resolve(domain, target.address);
        }
        let client = builder.build()?;
        if kept.len() >= KEPT_CLIENTS {
            kept.clear();
        }
        kept.insert(key, client.clone());
        Ok(client)
    }
}

impl Worker {
    /// One attempt, and its outcome recorded.
    async fn deliver(&self, delivery: WebhookDelivery) {
        let outcome = self.attempt(&delivery).await;
        self.record(&delivery, outcome).await;
    }

    async fn record(&self, delivery: &WebhookDelivery, outcome: Result<i32, Failure>) {
        let store = self.app.store();
        let recorded = match outcome {
            Ok(status) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                store.delivery_done(delivery.id, status).await
            }
            Err(Failure { error, status, hopeless }) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let retry_at = if hopeless { None } else { self.settings.retry.backoff(delivery.attempts) };
                let retry_at = retry_at.map(|wait| Utc::now() + wait);
                if retry_at.is_none() {
                    self.stats.dead.fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(id = delivery.id, webhook = %delivery.webhook, attempts = delivery.attempts,
                    dead = retry_at.is_none(), %error, "webhook not delivered");
                store.delivery_failed(delivery.id, &error, status, retry_at).await
            }
        };
        // Unrecorded, the row's lease ends and it is sent again (the same webhook-id).
        if let Err(error) = recorded {
            tracing::warn!(id = delivery.id, %error, "cannot record a webhook attempt");
        }
    }

    /// One POST of the event; the receiver's status when it was 2xx.
    async fn attempt(&self, delivery: &WebhookDelivery) -> Result<i32, Failure> {
        let store = self.app.store();
        let webhook: WebhookId = delivery.webhook.parse().map_err(|_| Failure::dead("not a subscription id"))?;
        let deleted = self
            .app
            .read_model(|model| model.position() >= delivery.position && model.state().webhook(&webhook).is_none());
        let secret = store.webhook_secret(&delivery.webhook).await.map_err(|e| Failure::retry(e.to_string(), None))?;
        if deleted {
            return Err(Failure::dead("the subscription was deleted"));
        }
        let secret = secret.ok_or_else(|| {
            Failure::dead("no secret is kept for this subscription (deleted, or its log imported without its secrets)")
        })?;
        let event = store
            .read_page(delivery.position - 1, 1)
            .await
            .map_err(|e| Failure::retry(e.to_string(), None))?
            .into_iter()
            .next()
            .ok_or_else(|| Failure::dead(format!("no event at position {}", delivery.position)))?;
        #[cfg(feature = "testing")]
        crate::testing::panic_if_recorded(&event, crate::testing::STOP_WEBHOOK_WORKER);
        // The event exactly as a line of the NDJSON export, without its line end.
        let mut body = Vec::new();
        ExportFormat::Ndjson.write(&event, &mut body);
        body.pop();
        let target = check_target(&delivery.url, self.settings.allow_private)
            .await
            .map_err(|refused| Failure::dead(refused.to_string()))?;
        let timestamp = Utc::now().timestamp();
        let signed = signature(&secret, &delivery.message_id, timestamp, &body)
            .ok_or_else(|| Failure::dead("the subscription's secret is not a whsec_ secret"))?;
        let client = self.clients.for_target(&target).map_err(|e| Failure::retry(e.to_string(), None))?;
        let mut answer = client
            .post(target.url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::retry(format!("POST failed: {e}"), None))?;
        let status = answer.status();
        // The answer's body is read only so far (within the attempt's timeout), and never looked
        // at: a short one leaves the connection to be used again.
        let mut read = 0;
        while let Ok(Some(chunk)) = answer.chunk().await {
            read += chunk.len();
            if read > ANSWER_READ {
                break;
            }
        }
        if status.is_success() {
            Ok(i32::from(status.as_u16()))
        } else {
            Err(Failure::retry(format!("the receiver answered {status}"), Some(i32::from(status.as_u16()))))
        }
    }
}
