//! The port through which the writer runs commands without knowing what they mean: the
//! application implements [`CommandPlanner`] for its model of the log (decide, fold, notify), and
//! the writer calls it under the log-head lock. The store itself knows no domain type.

use std::convert::Infallible;

use serde_json::Value;

use super::{NewEvent, RecordedEvent};

/// A model of the log that can decide commands and fold events. The writer keeps two copies: its
/// own, ahead of the log while a batch is decided, and the published one that readers see, which
/// holds committed events only.
pub trait CommandPlanner: Clone + Send + Sync + 'static {
    type Command: Send + Sync + 'static;
    /// Why a command was refused; nothing is written then.
    type Refusal: Clone + Send + Sync + 'static;

    /// The position of the last event folded in (0 before any).
    fn position(&self) -> i64;
    /// The version of a stream as folded, if the model has seen it.
    fn version_of(&self, stream: &str) -> Option<i64>;
    /// The events that `command` causes, each with its stream, decided against this model (which
    /// holds every committed event and the batch's earlier commands).
    fn decide(&self, command: &Self::Command) -> Result<Vec<PlannedEvent>, Self::Refusal>;
    /// Folds one event that directly follows the model.
    fn fold(&mut self, event: &RecordedEvent);
    /// Folds one event and says what mail it causes (the writer's copy: the mail is written in
    /// the event's transaction).
    fn fold_with_mail(&mut self, event: &RecordedEvent) -> Vec<NewMail>;
    /// The webhook deliveries `event` causes, judged against the model just before it is folded
    /// (the writer's copy: they are written in the event's transaction). None by default.
    fn deliveries_for(&self, _event: &RecordedEvent) -> Vec<NewDelivery> {
        Vec::new()
    }

    /// Folds those of `events` that extend the model, skipping the ones already in it; false when
    /// they start beyond it (a gap that only the log can fill).
    fn advance(&mut self, events: &[RecordedEvent]) -> bool {
        for event in events {
            if event.position == self.position() + 1 {
                self.fold(event);
            } else if event.position > self.position() + 1 {
                return false;
            }
        }
        true
    }

    /// Looks at each command as the writer takes it, outside any guard: a panic here stops the
    /// writer task (the tests' way of killing it).
    #[cfg(feature = "testing")]
    fn on_take(_command: &Self::Command) {}

    /// Whether the batch holding this command is to be treated, once committed, as if the
    /// database's answer to its commit was lost (the tests' way of an outage at that moment).
    #[cfg(feature = "testing")]
    fn loses_commit_answer(_command: &Self::Command) -> bool {
        false
    }
}

/// One event a command causes, and the stream it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    pub stream: String,
    pub event: NewEvent,
}

/// One mail an event causes: its kind (which template), recipient and the values the template uses.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMail {
    pub kind: &'static str,
    pub recipient: String,
    pub context: Value,
}

/// One webhook delivery an event causes: the subscription and the URL it posts to.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub webhook: String,
    pub url: String,
}

/// The planner of a store that takes raw appends only: it has no commands.
#[derive(Debug, Clone, Copy)]
pub enum NoCommands {}

impl CommandPlanner for NoCommands {
    type Command = Infallible;
    type Refusal = Infallible;

    fn position(&self) -> i64 {
        match *self {}
    }

    fn version_of(&self, _: &str) -> Option<i64> {
        match *self {}
    }

    fn decide(&self, _: &Infallible) -> Result<Vec<PlannedEvent>, Infallible> {
        match *self {}
    }

    fn fold(&mut self, _: &RecordedEvent) {
        match *self {}
    }

    fn fold_with_mail(&mut self, _: &RecordedEvent) -> Vec<NewMail> {
        match *self {}
    }
}
