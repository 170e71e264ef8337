//! The model of the log: the fold of every event up to a position (the domain state, each
//! stream's version, each grant's validity history).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use chrono::{DateTime, Utc};

use super::history::{GrantHistory, HeldSpan};
use crate::{
    domain::{Event, Grant, GrantId, GrantStatus, State, Subject},
    store::{EventStore, Moment, RecordedEvent, StoreError},
    workflow::Workflow,
};

#[derive(Clone)]
pub struct DomainModel {
    workflow: Arc<Workflow>,
    state: State,
    /// The position of the last event folded in.
    position: i64,
    versions: HashMap<String, i64>,
    history: GrantHistory,
}

/// How a model differs from another of the same position: what differs, and the stream whose
/// events made it (when one item can be named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub stream: Option<String>,
    pub what: String,
}

impl DomainModel {
    /// The model before any event.
    pub fn new(workflow: Arc<Workflow>) -> Self {
        let state = State::new(&workflow);
        Self { workflow, state, position: 0, versions: HashMap::new(), history: GrantHistory::default() }
    }

    /// A model restored from its parts (a snapshot's).
    pub(super) fn restored(
        workflow: Arc<Workflow>,
        state: State,
        position: i64,
        versions: HashMap<String, i64>,
        history: GrantHistory,
    ) -> Self {
        Self { workflow, state, position, versions, history }
    }

    pub(super) fn versions(&self) -> &HashMap<String, i64> {
        &self.versions
    }

    pub(super) fn history(&self) -> &GrantHistory {
        &self.history
    }

    /// A model of the same workflow before any event.
    pub fn empty_like(&self) -> Self {
        Self::new(self.workflow.clone())
    }

    /// Folds the whole log into a fresh model: a rebuild of every projection. `progress` hears the
    /// position reached every 1,000 events and at the end.
    pub async fn rebuild(
        workflow: Arc<Workflow>,
        store: &EventStore,
        mut progress: impl FnMut(i64),
    ) -> Result<Self, StoreError> {
        let mut model = Self::new(workflow);
        let mut cursor = store.read_all(0);
        while let Some(event) = cursor.next().await? {
            model.apply(&event);
            if model.position % 1_000 == 0 {
                progress(model.position);
            }
        }
        progress(model.position);
        Ok(model)
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    pub fn position(&self) -> i64 {
        self.position
    }

    pub fn version_of(&self, stream: &str) -> Option<i64> {
        self.versions.get(stream).copied()
    }

    /// The grants (of `holder` only, when given) as they stood at the moment: granted by then and
    /// not yet revoked or expired in the log, and within their own start and end at `judged_at` (a
    /// grant past its end gives nothing, whether or not its expiry was written). The first `take`
    /// of those `wanted`, in id order after `after`, shown as they stood then: active.
    pub fn grants_as_of(
        &self,
        moment: Moment,
        judged_at: DateTime<Utc>,
        holder: Option<&Subject>,
        after: Option<GrantId>,
        take: usize,
        wanted: impl Fn(&Grant) -> bool,
    ) -> Vec<Grant> {
        // Each grant with the end that stood at the moment (an extension may have moved it since).
        self.history
            .active_at(moment, holder, after)
            .filter_map(|id| self.state.grant(id))
            .map(|grant| (grant, self.history.end_at(&grant.id, &moment)))
            .filter(|(grant, ends_at)| crate::domain::within(grant.starts_at, *ends_at, judged_at) && wanted(grant))
            .take(take)
            .map(|(grant, ends_at)| Grant { status: GrantStatus::Active, ends_at, ..grant.clone() })
            .collect()
    }

    /// The grants `wanted` that gave their role at some time from `from` (included) until `until`
    /// (excluded), each with its spans in that period (see [`GrantHistory::held_spans`]), in id
    /// order: the first `take`. At any moment of the period, the grants whose span covers it are
    /// those `grants_as_of` that time gives.
    pub fn grants_held_during(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        take: usize,
        wanted: impl Fn(&Grant) -> bool,
    ) -> Vec<(Grant, Vec<HeldSpan>)> {
        let overlaps = |span: &HeldSpan| span.from < until && span.until.is_none_or(|end| end > from);
        self.state
            .grants()
            .filter(|grant| wanted(grant))
            .filter_map(|grant| {
                let spans: Vec<HeldSpan> =
                    self.history.held_spans(&grant.id, grant.starts_at).into_iter().filter(overlaps).collect();
                (!spans.is_empty()).then(|| (grant.clone(), spans))
            })
            .take(take)
            .collect()
    }

    /// The first difference from `other`, a model of the same position (None when they agree).
    pub fn difference(&self, other: &DomainModel) -> Option<Difference> {
        if self.versions != other.versions {
            let stream = differing("", self.versions.iter(), other.versions.iter());
            return Some(Difference { stream, what: "the stream versions".into() });
        }
        if self.history != other.history {
            let stream = differing("grant-", self.history.entries(), other.history.entries());
            return Some(Difference { stream, what: "the grants' validity history".into() });
        }
        if self.state == other.state {
            return None;
        }
        // Name the first item that differs, by the stream whose events made it.
        let (a, b) = (&self.state, &other.state);
        let stream = differing("user-", a.users().map(|u| (&u.id, u)), b.users().map(|u| (&u.id, u)))
            .or_else(|| differing("scope-", a.scopes().map(|s| (&s.id, s)), b.scopes().map(|s| (&s.id, s))))
            .or_else(|| differing("role-", a.roles().iter(), b.roles().iter()))
            .or_else(|| differing("team-", a.teams().map(|t| (&t.id, t)), b.teams().map(|t| (&t.id, t))))
            .or_else(|| differing("request-", a.requests().map(|r| (r.id, r)), b.requests().map(|r| (r.id, r))))
            .or_else(|| differing("grant-", a.grants().map(|g| (g.id, g)), b.grants().map(|g| (g.id, g))))
            .or_else(|| differing("token-", a.api_tokens().map(|t| (t.id, t)), b.api_tokens().map(|t| (t.id, t))))
            .or_else(|| {
                differing("delegation-", a.delegations().map(|d| (d.id, d)), b.delegations().map(|d| (d.id, d)))
            })
            .or_else(|| differing("review-", a.reviews().map(|r| (r.id, r)), b.reviews().map(|r| (r.id, r))));
        Some(Difference { stream, what: "the domain state".into() })
    }

    /// Folds one event that directly follows the model, answering it as a domain event. Events
    /// that are not domain events (raw appends) move the position and the stream version only.
    pub fn apply(&mut self, event: &RecordedEvent) -> Option<Event> {
        debug_assert_eq!(event.position, self.position + 1, "events are folded in log order");
        let domain_event = match Event::from_parts(&event.event_type, &event.data) {
            Ok(domain_event) => {
                self.history.record(&domain_event, event);
                self.state.apply(&self.workflow, &domain_event);
                Some(domain_event)
            }
            Err(_) => {
                tracing::debug!(position = event.position, event_type = %event.event_type, "not a domain event");
                None
            }
        };
        self.versions.insert(event.stream.clone(), event.version);
        self.position = event.position;
        domain_event
    }
}

/// The stream (`{prefix}{key}`) of the first item that differs between two collections (or is in one only).
fn differing<'a, K: Ord + std::fmt::Display, T: PartialEq + 'a>(
    prefix: &str,
    mine: impl Iterator<Item = (K, &'a T)>,
    theirs: impl Iterator<Item = (K, &'a T)>,
) -> Option<String> {
    let (mine, theirs): (BTreeMap<K, &T>, BTreeMap<K, &T>) = (mine.collect(), theirs.collect());
    let key = mine.keys().chain(theirs.keys()).find(|key| mine.get(*key) != theirs.get(*key))?;
    Some(format!("{prefix}{key}"))
}
