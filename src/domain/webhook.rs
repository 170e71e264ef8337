//! Webhook subscriptions as the state knows them (never their secret, which is kept outside the
//! log), and which of them an event goes to.

use super::event::Event;
use super::state::State;
use super::types::{Actor, ScopeId};
use crate::workflow::GLOBAL;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

pub type WebhookId = Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    /// Only events about this scope or a scope below it, when given.
    pub scope: Option<ScopeId>,
    pub description: Option<String>,
    pub created_by: Actor,
    pub created_at: DateTime<Utc>,
}

impl State {
    /// The subscriptions that `event` goes to, judged against the state just before it is folded
    /// (a subscription never receives its own creation or deletion).
    pub fn webhooks_for(&self, event: &Event) -> Vec<&Webhook> {
        if self.webhooks().next().is_none() {
            return Vec::new();
        }
        let event_type = event.event_type();
        let own = match event {
            Event::WebhookCreated { webhook, .. } | Event::WebhookDeleted { webhook, .. } => Some(*webhook),
            _ => None,
        };
        let lineage = self.scope_lineage(event);
        self.webhooks()
            .filter(|hook| Some(hook.id) != own)
            .filter(|hook| hook.events.is_empty() || hook.events.iter().any(|wanted| wanted == event_type))
            .filter(|hook| match &hook.scope {
                None => true,
                Some(scope) => lineage.as_ref().is_some_and(|lineage| lineage.contains(scope)),
            })
            .collect()
    }

    /// The scope an event is about and every scope above it; `None` for events about no scope.
    fn scope_lineage(&self, event: &Event) -> Option<BTreeSet<ScopeId>> {
        let with_ancestors = |scope: &ScopeId| {
            let mut lineage: BTreeSet<ScopeId> = self.ancestors_of(scope).into_iter().collect();
            lineage.insert(scope.clone());
            lineage
        };
        let of_request = |id| self.request(id).map(|request| with_ancestors(&request.scope));
        let of_grant = |id| self.grant(id).map(|grant| with_ancestors(&grant.scope));
        let of_review = |id| self.review(id).map(|review| with_ancestors(&review.scope));
        match event {
            // Not folded yet: its place is under its parents.
            Event::ScopeCreated { scope, parents, .. } => {
                let mut lineage: BTreeSet<ScopeId> = parents.iter().flat_map(with_ancestors).collect();
                lineage.insert(scope.clone());
                lineage.insert(ScopeId::known(GLOBAL));
                Some(lineage)
            }
            Event::ScopeDeleted { scope, .. }
            | Event::RoleRequested { scope, .. }
            | Event::RoleGranted { scope, .. } => Some(with_ancestors(scope)),
            Event::ReviewStarted { scope, .. } => Some(with_ancestors(scope)),
            Event::DelegationGranted { scope, .. } => scope.as_ref().map(with_ancestors),
            Event::DelegationEnded { delegation, .. } => {
                self.delegation(delegation).and_then(|d| d.scope.as_ref()).map(with_ancestors)
            }
            Event::RequestApproved { request, .. }
            | Event::RequestRejected { request, .. }
            | Event::RequestCancelled { request, .. }
            | Event::RequestExpired { request, .. }
            | Event::DecidersReminded { request, .. }
            | Event::RequestEscalated { request, .. } => of_request(request),
            Event::GrantRevoked { grant, .. }
            | Event::GrantExpired { grant, .. }
            | Event::GrantEndingSoon { grant, .. }
            | Event::GrantExtended { grant, .. } => of_grant(grant),
            Event::ReviewItemDecided { review, .. }
            | Event::ReviewClosed { review, .. }
            | Event::ReviewersReminded { review, .. } => of_review(review),
            _ => None,
        }
    }
}
