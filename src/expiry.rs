//! The expiry scheduler: pending requests past their time-to-live and grants past their end become
//! `RequestExpired` / `GrantExpired`, exactly once. Every server process runs one. The commands are
//! decided under the log-head lock against the state caught up with the log, so when two processes
//! find the same due item, the later one is refused (`not_pending`, `not_active`) and writes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::Serialize;

use crate::{
    domain::{Actor, Command, Context, GrantStatus, IdSource},
    store::{EventStore, ExecuteError, Metadata, StoreError},
};

/// How many items one pass expired (items that another process expired first are not counted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub requests: usize,
    pub grants: usize,
}

/// Refusals that mean "someone was first" or "not yet": nothing to do.
const ALREADY_HANDLED: &[&str] = &["not_pending", "not_active", "not_due", "expired"];

/// Expires everything due at `now`.
pub async fn expire_due(store: &EventStore, now: DateTime<Utc>) -> Result<Expired, StoreError> {
    let (requests, grants) = store.read_model(|model| {
        let state = model.state();
        let requests: Vec<_> =
            state.requests().filter(|r| r.is_pending() && r.expires_at <= now).map(|r| r.id).collect();
        let grants: Vec<_> = state
            .grants()
            .filter(|g| g.status == GrantStatus::Active && g.ends_at.is_some_and(|end| end <= now))
            .map(|g| g.id)
            .collect();
        (requests, grants)
    })?;
    let commands = requests
        .into_iter()
        .map(|request| Command::ExpireRequest { request })
        .chain(grants.into_iter().map(|grant| Command::ExpireGrant { grant }));
    // Sent together, so that the writer commits them in one batch.
    let metadata = Metadata { actor: Some("expiry".into()), ..Metadata::default() };
    let outcomes = join_all(commands.map(|command| {
        let is_request = matches!(command, Command::ExpireRequest { .. });
        let context = Context::new(Actor::CommandLine, now, IdSource::Random);
        let outcome = store.execute(context, command, metadata.clone());
        async move { (is_request, outcome.await) }
    }))
    .await;
    let mut expired = Expired::default();
    for (is_request, outcome) in outcomes {
        match outcome {
            Ok(_) if is_request => expired.requests += 1,
            Ok(_) => expired.grants += 1,
            Err(ExecuteError::Rejected(refusal)) if ALREADY_HANDLED.contains(&refusal.code()) => {}
            Err(ExecuteError::Rejected(refusal)) => tracing::warn!(%refusal, "an expiry was refused"),
            Err(ExecuteError::Store(error)) => return Err(error),
        }
    }
    Ok(expired)
}

/// Runs `expire_due` every `interval` until the store's last handle is dropped with the task.
pub fn spawn(store: EventStore, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match expire_due(&store, Utc::now()).await {
                Ok(Expired { requests: 0, grants: 0 }) => {}
                Ok(expired) => tracing::info!(requests = expired.requests, grants = expired.grants, "expired"),
                Err(error) => tracing::warn!(%error, "expiry pass failed; retrying at the next tick"),
            }
        }
    })
}
