//! The domain state kept beside the log, as a cache of it: the fold of every event up to a
//! position, with each stream's version. Rebuilt from the log at start, so it always equals a replay.

use std::{collections::HashMap, sync::Arc};

use crate::{
    domain::{Event, State},
    workflow::Workflow,
};

use super::{backend::Database, RecordedEvent, StoreError};

#[derive(Clone)]
pub struct DomainModel {
    workflow: Arc<Workflow>,
    state: State,
    /// The position of the last event folded in.
    position: i64,
    versions: HashMap<String, i64>,
}

impl DomainModel {
    pub(super) fn new(workflow: Arc<Workflow>) -> Self {
        let state = State::new(&workflow);
        Self { workflow, state, position: 0, versions: HashMap::new() }
    }

    /// Folds the whole log (a rebuild).
    pub(super) async fn replay(workflow: Arc<Workflow>, db: &Database) -> Result<Self, StoreError> {
        let mut model = Self::new(workflow);
        model.catch_up(db, None).await?;
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

    pub(super) fn version_of(&self, stream: &str) -> Option<i64> {
        self.versions.get(stream).copied()
    }

    /// Folds one event that directly follows the model, answering it as a domain event. Events
    /// that are not domain events (raw appends) move the position and the stream version only.
    pub(super) fn apply(&mut self, event: &RecordedEvent) -> Option<Event> {
        debug_assert_eq!(event.position, self.position + 1, "events are folded in log order");
        let domain_event = match Event::from_parts(&event.event_type, event.data.clone()) {
            Ok(domain_event) => {
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

    /// Folds those of `events` that extend the model, skipping the ones already in it; false when
    /// they start beyond the model (a gap that only the log can fill).
    pub(super) fn advance(&mut self, events: &[RecordedEvent]) -> bool {
        for event in events {
            if event.position == self.position + 1 {
                self.apply(event);
            } else if event.position > self.position + 1 {
                return false;
            }
        }
        true
    }

    /// Reads and folds everything the log holds beyond the model, keeping the folded events in
    /// `folded` when given.
    pub(super) async fn catch_up(
        &mut self,
        db: &Database,
        mut folded: Option<&mut Vec<RecordedEvent>>,
    ) -> Result<(), StoreError> {
        loop {
            let page = db.read_page(self.position, CATCH_UP_PAGE).await?;
            if page.is_empty() {
                return Ok(());
            }
            for event in &page {
                self.apply(event);
            }
            if let Some(folded) = folded.as_deref_mut() {
                folded.extend(page);
            }
        }
    }
}

const CATCH_UP_PAGE: i64 = 5_000;
