//! Commands run through the writer with the application's planner, and the model it publishes.

use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};

use super::{backend::Database, writer, CommandKey, CommandPlanner, Metadata, RecordedEvent, StoreError};

/// Why a command was not carried out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecuteError<R> {
    /// The planner refused it; nothing was written.
    #[error("the command was refused")]
    Rejected(R),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads and folds everything the log holds beyond `model`, keeping the folded events in
/// `folded` when given.
pub(super) async fn catch_up<P: CommandPlanner>(
    model: &mut P,
    db: &Database,
    mut folded: Option<&mut Vec<RecordedEvent>>,
) -> Result<(), StoreError> {
    loop {
        let page = db.read_page(model.position(), CATCH_UP_PAGE).await?;
        if page.is_empty() {
            return Ok(());
        }
        for event in &page {
            model.fold(event);
        }
        if let Some(folded) = folded.as_deref_mut() {
            folded.extend(page);
        }
    }
}

const CATCH_UP_PAGE: i64 = 5_000;

/// The commands of a store opened with a planner: run through its writer, and the model as of
/// the last commit this process knows of. Cheap to clone.
pub struct Commands<P: CommandPlanner> {
    pub(super) jobs: mpsc::Sender<writer::CommandJob<P>>,
    pub(super) model: Arc<RwLock<P>>,
    /// Where a repeated command's events are read back from.
    pub(super) db: Database,
}

impl<P: CommandPlanner> Clone for Commands<P> {
    fn clone(&self) -> Self {
        Commands { jobs: self.jobs.clone(), model: self.model.clone(), db: self.db.clone() }
    }
}

/// What a command carrying an idempotency key did.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// The events it wrote: now, or when its key was first used.
    pub events: Vec<RecordedEvent>,
    /// True when its key had been used before with the same fingerprint: nothing was decided
    /// now, and `events` are the first one's.
    pub repeated: bool,
}

impl<P: CommandPlanner> Commands<P> {
    /// Decides `command` under the log-head lock against the model that includes every committed
    /// event and the commands decided before it in the same batch; writes its events.
    pub async fn execute(
        &self,
        command: P::Command,
        metadata: Metadata,
    ) -> Result<Vec<RecordedEvent>, ExecuteError<P::Refusal>> {
        Ok(self.execute_once(command, metadata, None).await?.events)
    }

    /// Like `execute`, with an idempotency key recorded in the events' transaction: a command
    /// whose key was recorded within `KEY_LIFETIME` with the same fingerprint is not decided
    /// again, and answers the events the first one wrote (which this process's published model
    /// holds by then); with another fingerprint it is refused (`IdempotencyKeyReused`).
    pub async fn execute_once(
        &self,
        command: P::Command,
        metadata: Metadata,
        key: Option<CommandKey>,
    ) -> Result<Executed, ExecuteError<P::Refusal>> {
        let (reply, outcome) = oneshot::channel();
        let job = writer::CommandJob { command, metadata, key, reply };
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        match outcome.await.map_err(|_| StoreError::Closed)?? {
            writer::Done::Wrote(events) => Ok(Executed { events, repeated: false }),
            writer::Done::Repeated(outcome) => {
                let count = outcome.last_position - outcome.first_position + 1;
                let events = self.db.read_page(outcome.first_position - 1, count).await?;
                Ok(Executed { events, repeated: true })
            }
        }
    }

    /// The published model, which holds committed events only: this process's writer brings it
    /// forward after each of its commits, a follower (see [`LogFeed`]) after other processes'.
    pub fn model(&self) -> &Arc<RwLock<P>> {
        &self.model
    }
}
