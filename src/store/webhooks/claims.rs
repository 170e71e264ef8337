//! The deliveries read back: claimed by delivery workers and marked delivered or failed; listed
//! and retried by admins. And the subscriptions' secrets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::delivery::{DeliveryState, WebhookDelivery, WEBHOOK_LEASE};
use crate::store::{backend::DeliveryDbRow, error::StoreError, event::truncate_to_micros, EventStore};

impl TryFrom<DeliveryDbRow> for WebhookDelivery {
    type Error = StoreError;
    fn try_from(row: DeliveryDbRow) -> Result<Self, StoreError> {
        Ok(WebhookDelivery {
            state: row.state.parse().map_err(|reason| StoreError::CorruptEvent { position: row.position, reason })?,
            id: row.id,
            webhook: row.webhook_id,
            event_id: row.event_id,
            position: row.position,
            url: row.url,
            message_id: row.message_id,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            last_status: row.last_status,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        })
    }
}

fn decode(rows: Vec<DeliveryDbRow>) -> Result<Vec<WebhookDelivery>, StoreError> {
    rows.into_iter().map(WebhookDelivery::try_from).collect()
}

impl EventStore {
    /// Claims up to `limit` due deliveries, at most one per subscription (its earliest pending
    /// one, by log position), for `WEBHOOK_LEASE`, counting the attempt.
    pub async fn claim_deliveries(&self, limit: i64) -> Result<Vec<WebhookDelivery>, StoreError> {
        let now = Utc::now();
        let until = truncate_to_micros(now + chrono::Duration::from_std(WEBHOOK_LEASE).expect("the lease fits"));
        let mut claimed = decode(self.db.claim_deliveries(now, until, limit).await?)?;
        claimed.sort_by_key(|delivery| delivery.position);
        Ok(claimed)
    }

    /// The receiver answered 2xx with `status`.
    pub async fn delivery_done(&self, id: i64, status: i32) -> Result<(), StoreError> {
        self.db.delivery_done(id, status, Utc::now()).await
    }

    /// A failed attempt: tried again at `retry_at`, or dead when there is none.
    pub async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        status: Option<i32>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let state = if retry_at.is_some() { DeliveryState::Pending } else { DeliveryState::Dead };
        let due = retry_at.unwrap_or_else(Utc::now);
        self.db.delivery_failed(id, &state.to_string(), due, error, status).await
    }

    /// A subscription's deliveries after `after_id` (in one state, when given), in id order.
    pub async fn deliveries(
        &self,
        webhook: &str,
        state: Option<DeliveryState>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let state = state.map(|s| s.to_string());
        decode(self.db.deliveries(webhook, state.as_deref(), after_id, limit).await?)
    }

    /// A subscription's newest `limit` deliveries, newest first.
    pub async fn recent_deliveries(&self, webhook: &str, limit: i64) -> Result<Vec<WebhookDelivery>, StoreError> {
        decode(self.db.recent_deliveries(webhook, limit).await?)
    }

    /// Puts a dead delivery of `webhook` back in line, due now, its attempts forgotten. Answers the
    /// state it was in (None: no such delivery of that subscription); only a dead one is changed.
    pub async fn retry_delivery(&self, webhook: &str, id: i64) -> Result<Option<DeliveryState>, StoreError> {
        let before = self
            .db
            .delivery_state(webhook, id)
            .await?
            .map(|state| state.parse().map_err(|reason| StoreError::CorruptEvent { position: 0, reason }))
            .transpose()?;
        if before == Some(DeliveryState::Dead) {
            self.db.revive_delivery(id, Utc::now()).await?;
        }
        Ok(before)
    }

    /// How many deliveries are in each state.
    pub async fn delivery_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        Ok(self.db.delivery_counts().await?.into_iter().collect())
    }

    /// Keeps a subscription's signing secret (outside the log).
    pub async fn keep_webhook_secret(&self, webhook: &str, secret: &str) -> Result<(), StoreError> {
        self.db.put_webhook_secret(webhook, secret, Utc::now()).await
    }

    pub async fn webhook_secret(&self, webhook: &str) -> Result<Option<String>, StoreError> {
        self.db.webhook_secret(webhook).await
    }

    /// Forgets a secret (its subscription was refused or deleted).
    pub async fn forget_webhook_secret(&self, webhook: &str) -> Result<(), StoreError> {
        self.db.delete_webhook_secret(webhook).await
    }
}
