//! The mail read back: claimed by delivery workers and marked sent or failed; listed and retried
//! by admins.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::mail::{MailState, OutboxMail};
use crate::store::{backend::MailRow, error::StoreError, event::truncate_to_micros, EventStore};

impl TryFrom<MailRow> for OutboxMail {
    type Error = StoreError;
    fn try_from(row: MailRow) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::CorruptEvent { position: row.position, reason };
        Ok(OutboxMail {
            context: serde_json::from_str(&row.context).map_err(|e| corrupt(format!("outbox context: {e}")))?,
            state: row.state.parse().map_err(corrupt)?,
            id: row.id,
            event_id: row.event_id,
            position: row.position,
            recipient: row.recipient,
            kind: row.kind,
            message_id: row.message_id,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            created_at: row.created_at,
            sent_at: row.sent_at,
        })
    }
}

fn decode(rows: Vec<MailRow>) -> Result<Vec<OutboxMail>, StoreError> {
    rows.into_iter().map(OutboxMail::try_from).collect()
}

impl EventStore {
    /// Claims up to `limit` due mails for `lease`: nobody else claims them until the lease ends.
    /// Mail under a lease that this process lost (see `LostLeases`) is due again first.
    pub async fn claim_mail(&self, limit: i64, lease: std::time::Duration) -> Result<Vec<OutboxMail>, StoreError> {
        let now = Utc::now();
        let lost = self.lost_leases.ends();
        if !lost.is_empty() {
            self.db.release_leases(&lost, now).await?;
            self.lost_leases.found(&lost);
        }
        // In microseconds, as the database keeps it, so that the end names this claim's rows.
        let until = truncate_to_micros(now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5)));
        let claimed = self.db.claim_mail(now, until, limit).await.inspect_err(|_| self.lost_leases.lose(until));
        let mut mails = decode(claimed?)?;
        mails.sort_by_key(|mail| mail.id);
        Ok(mails)
    }

    /// Marks mails sent, in one statement.
    pub async fn mails_sent(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.db.mails_sent(ids, Utc::now()).await
    }

    /// A failed attempt: tried again at `retry_at`, or dead when there is none.
    pub async fn mail_failed(&self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let state = if retry_at.is_some() { MailState::Pending } else { MailState::Dead };
        let due = retry_at.unwrap_or_else(Utc::now);
        self.db.mail_failed(id, &state.to_string(), due, error).await
    }

    /// Outbox rows after `after_id`, optionally in one state, in id order.
    pub async fn outbox(
        &self,
        state: Option<MailState>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let state = state.map(|s| s.to_string());
        decode(self.db.outbox(state.as_deref(), after_id, limit).await?)
    }

    /// Puts a dead mail back in the queue, due now. Answers the state it was in (None: no such
    /// mail); only a dead mail is changed.
    pub async fn retry_mail(&self, id: i64) -> Result<Option<MailState>, StoreError> {
        let now = Utc::now();
        let before = self
            .db
            .mail_state(id)
            .await?
            .map(|state| state.parse::<MailState>().map_err(|reason| StoreError::CorruptEvent { position: 0, reason }))
            .transpose()?;
        if before == Some(MailState::Dead) {
            self.db.revive_mail(id, now).await?;
        }
        Ok(before)
    }

    /// How many mails are in each state.
    pub async fn outbox_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        Ok(self.db.outbox_counts().await?.into_iter().collect())
    }
}
