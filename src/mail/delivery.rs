//! The delivery worker: claims due mail from the outbox, sends it, marks it sent; a failure is
//! retried with exponential backoff and jitter, and after the last attempt the mail is dead
//! (admins see it at `GET /api/v1/outbox?state=dead` and may retry it).

use std::{
    num::NonZeroU32,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::Utc;
use futures_util::{stream, StreamExt};
use tokio::time::Instant;

use super::Mailer;
use crate::store::{EventStore, OutboxMail, MAIL_LEASE};

/// How many mails one claim takes (and one statement marks sent); also the most fresh mails taken
/// from the writer at a time.
const CLAIM_BATCH: usize = 50;
/// Mails of a claim sent at once, each over its own SMTP connection: one at a time, a worker sends
/// about 20 a second (each message waits out TCP's delayed acknowledgement at its end), fewer than
/// a busy server writes.
const PARALLEL_SENDS: usize = 10;
/// A fresh mail whose lease ends sooner than this is left to be claimed when it has ended: sending
/// it now could overlap with another worker's claim. Longer than an SMTP attempt may take (20 s).
const LEASE_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Attempts before the mail is dead.
    pub max_attempts: i32,
    /// How often an idle worker looks for due mail.
    pub poll: Duration,
    /// The most mails a second the worker sends (on average; none: no limit).
    pub rate: Option<NonZeroU32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
            max_attempts: 10,
            poll: Duration::from_millis(500),
            rate: None,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`: doubling from `first_delay`, capped, times a
    /// random factor in [0.5, 1.5) so that many failed mails do not all return at once.
    pub fn backoff(&self, attempts: i32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doubled = self.first_delay.saturating_mul(1u32 << attempts.clamp(1, 20).saturating_sub(1));
        let capped = doubled.min(self.max_delay);
        let mut random = [0u8; 4];
        getrandom::getrandom(&mut random).ok()?;
        let factor = 0.5 + f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX);
        Some(capped.mul_f64(factor))
    }
}

/// What this process's worker did, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dead: AtomicU64,
}

/// This process's delivery worker: sends the fresh mail that the writer hands over as soon as it
/// is committed, and claims due mail from the outbox (retries, and mail that no worker took at
/// once) at least once a `poll`, at once again while there is more.
pub fn spawn_delivery(store: EventStore, mailer: Arc<Mailer>, policy: RetryPolicy, stats: Arc<DeliveryStats>) {
    tokio::spawn(async move {
        let worker = Worker { store, mailer, policy, stats };
        let mut fresh = worker.store.fresh_mail();
        let mut next_claim = Instant::now();
        let mut pace = Pace { rate: policy.rate, next_round: Instant::now() };
        loop {
            if Instant::now() >= next_claim {
                match worker.store.claim_mail(pace.round() as i64, MAIL_LEASE).await {
                    Ok(mails) if !mails.is_empty() => {
                        pace.after(worker.deliver(mails).await).await;
                        continue;
                    }
                    Ok(_) => next_claim = Instant::now() + worker.policy.poll,
                    Err(error) => {
                        tracing::debug!(%error, "cannot claim mail; retrying");
                        next_claim = Instant::now() + worker.policy.poll.max(Duration::from_secs(1));
                    }
                }
            }
            let Some(receiver) = fresh.as_mut() else {
                tokio::time::sleep_until(next_claim).await;
                continue;
            };
            tokio::select! {
                handed = receiver.recv() => match handed {
                    Some(first) => {
                        let mut mails = vec![first];
                        while mails.len() < pace.round() {
                            match receiver.try_recv() {
                                Ok(mail) => mails.push(mail),
                                Err(_) => break,
                            }
                        }
                        let now = Utc::now();
                        mails.retain(|mail| now + LEASE_MARGIN < mail.next_attempt_at);
                        pace.after(worker.deliver(mails).await).await;
                    }
                    // The writer hands its mail to a newer worker of this process now.
                    None => fresh = None,
                },
                _ = tokio::time::sleep_until(next_claim) => {}
            }
        }
    });
}

/// Keeps the worker at or under its rate, on average over rounds, with rounds of at most a
/// second's worth of mail.
struct Pace {
    rate: Option<NonZeroU32>,
    next_round: Instant,
}

impl Pace {
    /// How many mails the next round may take.
    fn round(&self) -> usize {
        self.rate.map_or(CLAIM_BATCH, |rate| CLAIM_BATCH.min(rate.get() as usize))
    }

    /// Waits, after a round that tried `mails`, until the next round keeps to the rate.
    async fn after(&mut self, mails: usize) {
        let Some(rate) = self.rate else { return };
        let spent = Duration::from_secs_f64(mails as f64 / f64::from(rate.get()));
        self.next_round = self.next_round.max(Instant::now()) + spent;
        tokio::time::sleep_until(self.next_round).await;
    }
}

struct Worker {
    store: EventStore,
    mailer: Arc<Mailer>,
    policy: RetryPolicy,
    stats: Arc<DeliveryStats>,
}

impl Worker {
    /// Sends mails held under this worker's lease, some at once; records each failure with its
    /// retry (or death), then all that were sent, in one statement. Answers how many it tried.
    async fn deliver(&self, mails: Vec<OutboxMail>) -> usize {
        let tried = mails.len();
        let mut sent = Vec::with_capacity(mails.len());
        let mut attempts = stream::iter(mails)
            .map(|mail| async move {
                let outcome = self.mailer.send(&mail).await;
                (mail, outcome)
            })
            .buffer_unordered(PARALLEL_SENDS);
        while let Some((mail, outcome)) = attempts.next().await {
            match outcome {
                Ok(()) => sent.push(mail.id),
                Err(error) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    let retry_at = self.policy.backoff(mail.attempts).map(|wait| Utc::now() + wait);
                    if retry_at.is_none() {
                        self.stats.dead.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(id = mail.id, attempts = mail.attempts, dead = retry_at.is_none(), %error, "mail not sent");
                    if let Err(error) = self.store.mail_failed(mail.id, &error.to_string(), retry_at).await {
                        tracing::warn!(id = mail.id, %error, "cannot record a failed attempt");
                    }
                }
            }
        }
        self.stats.sent.fetch_add(sent.len() as u64, Ordering::Relaxed);
        record_sent(&self.store, &sent).await;
        tried
    }
}

/// Marks mails sent, retrying while the database is away (an outage would otherwise send them
/// again when their leases end); gives up when the leases end, since then another worker may have
/// claimed them and sends them again anyway (same Message-IDs).
async fn record_sent(store: &EventStore, sent: &[i64]) {
    let started = std::time::Instant::now();
    loop {
        match store.mails_sent(sent).await {
            Ok(()) => return,
            Err(error) if started.elapsed() + RECORD_RETRY < MAIL_LEASE => {
                tracing::warn!(mails = sent.len(), %error, "cannot record deliveries yet; retrying");
                tokio::time::sleep(RECORD_RETRY).await;
            }
            Err(error) => {
                tracing::warn!(mails = sent.len(), %error, "cannot record deliveries; their leases end and they are sent again");
                return;
            }
        }
    }
}

/// How often a worker tries again to record deliveries while the database is away.
const RECORD_RETRY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_ends() {
        let policy = RetryPolicy {
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
            max_attempts: 5,
            poll: Duration::ZERO,
            rate: None,
        };
        for (attempts, base) in [(1, 10.0), (2, 20.0), (3, 40.0), (4, 60.0)] {
            let wait = policy.backoff(attempts).unwrap().as_secs_f64();
            assert!((base * 0.5..base * 1.5).contains(&wait), "attempt {attempts}: {wait}");
        }
        assert_eq!(policy.backoff(5), None);
    }
}
