//! The planner that the store's writer calls: commands decided by the domain against the model,
//! events folded into it, and the mail (`domain::notify`) and webhook deliveries each event
//! causes, all under the log-head lock.

use crate::{
    domain::{decide, notices, Command, Context, DomainError, Event},
    projections::DomainModel,
    store::{CommandPlanner, NewDelivery, NewEvent, NewMail, PlannedEvent, RecordedEvent},
};

/// A command and the context it is judged in.
pub struct Decision {
    pub context: Context,
    pub command: Command,
}

impl CommandPlanner for DomainModel {
    type Command = Decision;
    type Refusal = DomainError;

    fn position(&self) -> i64 {
        DomainModel::position(self)
    }

    fn version_of(&self, stream: &str) -> Option<i64> {
        DomainModel::version_of(self, stream)
    }

    fn decide(&self, Decision { context, command }: &Decision) -> Result<Vec<PlannedEvent>, DomainError> {
        #[cfg(feature = "testing")]
        crate::testing::panic_if_asked(command, crate::testing::PANIC_IN_DECIDE);
        let events = decide(self.state(), self.workflow(), context, command.clone())?;
        // Each event goes to its entity's stream.
        Ok(events
            .into_iter()
            .map(|event| PlannedEvent {
                stream: event.stream_id(),
                event: NewEvent::new(event.event_type(), event.data()),
            })
            .collect())
    }

    fn fold(&mut self, event: &RecordedEvent) {
        self.apply(event);
    }

    fn fold_with_mail(&mut self, event: &RecordedEvent) -> Vec<NewMail> {
        let Some(domain_event) = self.apply(event) else { return Vec::new() };
        // Where a panic would leave the model changed halfway.
        #[cfg(feature = "testing")]
        crate::testing::panic_if_recorded(event, crate::testing::PANIC_IN_FOLD);
        notices(self.state(), self.workflow(), &domain_event)
            .into_iter()
            .map(|notice| NewMail { kind: notice.kind, recipient: notice.recipient, context: notice.context })
            .collect()
    }

    fn deliveries_for(&self, event: &RecordedEvent) -> Vec<NewDelivery> {
        let state = self.state();
        // Most logs have no subscription: nothing to read then.
        if state.webhooks().next().is_none() {
            return Vec::new();
        }
        let Ok(domain_event) = Event::from_parts(&event.event_type, &event.data) else { return Vec::new() };
        state
            .webhooks_for(&domain_event)
            .into_iter()
            .map(|hook| NewDelivery { webhook: hook.id.to_string(), url: hook.url.clone() })
            .collect()
    }

    #[cfg(feature = "testing")]
    fn on_take(decision: &Decision) {
        crate::testing::panic_if_asked(&decision.command, crate::testing::STOP_WRITER);
    }

    #[cfg(feature = "testing")]
    fn loses_commit_answer(decision: &Decision) -> bool {
        crate::testing::asks(&decision.command, crate::testing::LOSE_COMMIT_ANSWER)
    }
}
