//! Commands run through the writer with the application's planner, and the model it publishes.

use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};

use super::{backend::Database, writer, CommandPlanner, Metadata, RecordedEvent, StoreError};

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
}

impl<P: CommandPlanner> Clone for Commands<P> {
    fn clone(&self) -> Self {
        Commands { jobs: self.jobs.clone(), model: self.model.clone() }
    }
}

impl<P: CommandPlanner> Commands<P> {
    /// Decides `command` under the log-head lock against the model that includes every committed
    /// event and the commands decided before it in the same batch; writes its events.
    pub async fn execute(
        &self,
        command: P::Command,
        metadata: Metadata,
    ) -> Result<Vec<RecordedEvent>, ExecuteError<P::Refusal>> {
        let (reply, outcome) = oneshot::channel();
        let job = writer::CommandJob { command, metadata, reply };
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }

    /// The published model, which holds committed events only: this process's writer brings it
    /// forward after each of its commits, a follower (see [`LogFeed`]) after other processes'.
    pub fn model(&self) -> &Arc<RwLock<P>> {
        &self.model
    }
}
