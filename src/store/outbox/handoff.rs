//! Fresh mail, handed from the writer to this process's delivery worker.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{
    leases::LostLeases,
    mail::{OutboxMail, MAIL_LEASE},
    row::OutboxRow,
};

/// How many fresh mails may wait for this process's worker; beyond that, mail is left for any
/// worker to claim. Small enough that a worker gets to every one long before its lease ends.
const HANDOFF_DEPTH: usize = 2_000;

/// The way from the writer to this process's delivery worker for fresh mail. When the worker has
/// room for a batch's mail, the writer writes it leased to the worker (its first attempt, as a
/// claim would) and hands it over after the commit: no claiming UPDATE per mail, no wait for the
/// next poll. Without a worker, or with a full queue, mail is written due at once, for any
/// worker to claim. Only the writer sends, so the room it saw before writing is still there after.
#[derive(Clone, Default)]
pub(crate) struct MailHandoff {
    worker: Arc<Mutex<Option<mpsc::Sender<OutboxMail>>>>,
    pub lost: LostLeases,
}

/// A batch's leased mail, to hand over once the batch has committed.
pub(crate) struct Handover {
    worker: mpsc::Sender<OutboxMail>,
    mails: Vec<OutboxMail>,
    lease_ends: DateTime<Utc>,
    lost: LostLeases,
}

impl MailHandoff {
    /// The worker's end; a later call replaces the earlier one.
    pub fn receiver(&self) -> mpsc::Receiver<OutboxMail> {
        let (sender, receiver) = mpsc::channel(HANDOFF_DEPTH);
        *self.worker.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sender);
        receiver
    }

    /// Numbers a batch's mail after `last_id` (which moves on), and leases it to the worker when
    /// the worker has room for all of it.
    pub fn prepare(&self, rows: &mut [OutboxRow], last_id: &mut i64, now: DateTime<Utc>) -> Option<Handover> {
        for row in rows.iter_mut() {
            *last_id += 1;
            row.id = *last_id;
        }
        let worker = self.worker.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()?;
        if rows.is_empty() || worker.capacity() < rows.len() {
            return None;
        }
        let lease_ends = now + chrono::Duration::from_std(MAIL_LEASE).expect("the lease fits");
        for row in rows.iter_mut() {
            row.attempts = 1;
            row.next_attempt_at = lease_ends;
        }
        let mails = rows.iter().map(OutboxRow::mail).collect();
        Some(Handover { worker, mails, lease_ends, lost: self.lost.clone() })
    }
}

impl Handover {
    /// After the commit. A worker that went away leaves the mail to be claimed when its lease ends.
    pub fn deliver(mut self) {
        for mail in std::mem::take(&mut self.mails) {
            let _ = self.worker.try_send(mail);
        }
    }

    /// The commit failed, and may have happened: the worker never gets this mail, so its lease is
    /// lost (and released by the next claim, if the rows are there).
    pub fn outcome_unknown(self) {
        drop(self);
    }
}

/// Not delivered: the commit failed, or its batch was abandoned before its outcome was known (the
/// database did not answer in time). Either way the lease is lost, as in `outcome_unknown`.
impl Drop for Handover {
    fn drop(&mut self) {
        if !self.mails.is_empty() {
            self.lost.lose(self.lease_ends);
        }
    }
}
