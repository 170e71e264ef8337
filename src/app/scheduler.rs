//! The scheduler: pending requests past their time-to-live and grants past their end become
//! `RequestExpired` / `GrantExpired`, exactly once; requests pending past the reminder interval
//! get `DecidersReminded` (once per interval) and grants ending within 14 days `GrantEndingSoon`
//! (once); stages waiting past their `escalate_after` get `RequestEscalated` (once per stage),
//! delegations past their `until` `DelegationEnded`; open access reviews are closed at their due
//! time (`CloseDueReview`), their reviewers reminded half-way (`RemindReviewers`, once), and the
//! workflow's scheduled reviews started (`StartScheduledReview`); people who want a daily digest
//! get it from their hour on (`SendDigest`, once per UTC day). Every server process runs one. The commands are
//! decided under the log-head lock against the state caught up with the log, so when two processes
//! find the same due item, the later one is refused (`not_pending`, `not_active`) and writes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::Serialize;

use super::{App, AppError, Origin};
use crate::{
    domain::{time, Command, DomainError, GrantStatus, GRANT_ENDING_NOTICE},
    store::StoreError,
};

/// How many items one pass expired (items that another process expired first are not counted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub requests: usize,
    pub grants: usize,
    /// Reminders and ending notices written.
    pub reminders: usize,
    /// Stages escalated (`RequestEscalated`) and delegations ended at their `until`.
    pub escalations: usize,
    pub delegations: usize,
    /// Access reviews closed at their due time.
    pub reviews: usize,
    /// Scheduled access reviews started (the workflow's `[[reviews]]`).
    pub reviews_started: usize,
    /// Daily digests sent (a pass that found nothing to list for someone sends none).
    pub digests: usize,
}

/// Which count a command's success adds to.
enum Counter {
    Requests,
    Grants,
    Reminders,
    Escalations,
    Delegations,
    Reviews,
    ReviewsStarted,
    Digests,
}

/// Refusals that mean "someone was first" or "not yet": nothing to do.
fn already_handled(refusal: &DomainError) -> bool {
    matches!(
        refusal,
        DomainError::NotPending(_)
            | DomainError::NotActive
            | DomainError::NotDue(_)
            | DomainError::Expired(_)
            | DomainError::AlreadyExists(_)
            | DomainError::ReviewClosed
    )
}

/// Expires everything due at `now`.
pub async fn expire_due(app: &App, now: DateTime<Utc>) -> Result<Expired, StoreError> {
    let commands: Vec<Command> = app.read_model(|model| {
        let state = model.state();
        let reminder_interval = model.workflow().settings.reminder_interval;
        let mut commands = Vec::new();
        for request in state.requests().filter(|r| r.is_pending()) {
            if request.expires_at <= now {
                commands.push(Command::ExpireRequest { request: request.id });
                continue;
            }
            if time::end_after(request.reminded_at.unwrap_or(request.created_at), reminder_interval)
                .is_some_and(|due| due <= now)
            {
                commands.push(Command::RemindDeciders { request: request.id });
            }
            if state.escalation_due(model.workflow(), request).is_some_and(|due| due <= now) {
                commands.push(Command::EscalateRequest { request: request.id });
            }
        }
        for delegation in state.delegations().filter(|d| d.ended_at.is_none() && d.until <= now) {
            commands.push(Command::EndDelegation { delegation: delegation.id });
        }
        for grant in state.grants().filter(|g| g.status == GrantStatus::Active) {
            match grant.ends_at {
                Some(end) if end <= now => commands.push(Command::ExpireGrant { grant: grant.id }),
                Some(end) if grant.ending_notice_at.is_none() && time::before(end, GRANT_ENDING_NOTICE) <= now => {
                    commands.push(Command::WarnGrantEnding { grant: grant.id })
                }
                _ => {}
            }
        }
        // The workflow's scheduled reviews: each scope of the kind `every` after the last one (or
        // its creation), when it has grants to review.
        for schedule in &model.workflow().reviews {
            for scope in state.scopes().filter(|s| s.kind == schedule.kind) {
                let due = state.next_scheduled_review(&scope.id, schedule.every).is_some_and(|next| next <= now);
                if due && state.grants_under_review(&scope.id, None, now).next().is_some() {
                    commands.push(Command::StartScheduledReview { scope: scope.id.clone() });
                }
            }
        }
        for review in state.reviews().filter(|r| r.is_open()) {
            if review.due_at <= now {
                commands.push(Command::CloseDueReview { review: review.id });
            } else if review.reminded_at.is_none()
                && review.reminder_due() <= now
                && review.decided < review.items.len()
            {
                commands.push(Command::RemindReviewers { review: review.id });
            }
        }
        // Digests: each reader from their hour on, once per UTC day, when there is something to list.
        for user in state.digest_readers() {
            if state.digest_due(user, now).is_ok() && state.digest_has_news(model.workflow(), user, now) {
                commands.push(Command::SendDigest { user: user.clone() });
            }
        }
        commands
    });
    // Sent together, so that the writer commits them in one batch.
    let outcomes = join_all(commands.into_iter().map(|command| {
        let counter = match command {
            Command::ExpireRequest { .. } => Counter::Requests,
            Command::ExpireGrant { .. } => Counter::Grants,
            Command::EscalateRequest { .. } => Counter::Escalations,
            Command::EndDelegation { .. } => Counter::Delegations,
            Command::CloseDueReview { .. } => Counter::Reviews,
            Command::StartScheduledReview { .. } => Counter::ReviewsStarted,
            Command::SendDigest { .. } => Counter::Digests,
            _ => Counter::Reminders,
        };
        let outcome = app.execute_at(Origin::Scheduler, command, now);
        async move { (counter, outcome.await) }
    }))
    .await;
    let mut expired = Expired::default();
    for (counter, outcome) in outcomes {
        match outcome {
            // A digest that found nothing to list by the time it was decided.
            Ok(events) if events.is_empty() => {}
            Ok(_) => match counter {
                Counter::Requests => expired.requests += 1,
                Counter::Grants => expired.grants += 1,
                Counter::Reminders => expired.reminders += 1,
                Counter::Escalations => expired.escalations += 1,
                Counter::Delegations => expired.delegations += 1,
                Counter::Reviews => expired.reviews += 1,
                Counter::ReviewsStarted => expired.reviews_started += 1,
                Counter::Digests => expired.digests += 1,
            },
            Err(AppError::Rejected(refusal)) if already_handled(&refusal) => {}
            Err(refusal @ (AppError::Rejected(_) | AppError::ReadOnly)) => {
                tracing::warn!(%refusal, "an expiry was refused")
            }
            Err(AppError::Store(error)) => return Err(error),
        }
    }
    Ok(expired)
}

/// Runs `expire_due` every `interval`, for as long as the process runs.
pub fn spawn(app: App, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match expire_due(&app, Utc::now()).await {
                Ok(done) if done == Expired::default() => {}
                Ok(done) => tracing::info!(
                    requests = done.requests,
                    grants = done.grants,
                    reminders = done.reminders,
                    escalations = done.escalations,
                    delegations = done.delegations,
                    reviews = done.reviews,
                    reviews_started = done.reviews_started,
                    digests = done.digests,
                    "scheduled work done"
                ),
                Err(error) => tracing::warn!(%error, "expiry pass failed; retrying at the next tick"),
            }
        }
    })
}
