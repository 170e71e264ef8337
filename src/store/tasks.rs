//! The store's background tasks, watched: a task that panics is named for readiness.

use std::{any::Any, future::Future, panic::AssertUnwindSafe, sync::Arc};

use futures_util::FutureExt;
use tokio::sync::watch;

/// The names of the store's background tasks that stopped. The writer and the read-model follower
/// end by themselves only when the last handle is dropped; any other end is a panic, after which
/// writes (or other processes' writes) no longer reach this process: readiness fails naming the
/// task, and the server stops so that its supervisor starts it afresh (`Application`).
#[derive(Clone)]
pub(super) struct TaskWatch(pub(super) Arc<watch::Sender<Vec<&'static str>>>);

impl TaskWatch {
    pub fn new() -> Self {
        TaskWatch(Arc::new(watch::channel(Vec::new()).0))
    }

    /// Spawns `task`, recording its name here if it panics.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let stopped = self.0.clone();
        tokio::spawn(async move {
            if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                tracing::error!(task = name, panic = %panic_message(&*panic), "a background task stopped");
                stopped.send_modify(|names| names.push(name));
            }
        });
    }
}

/// The text a panic was raised with.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_string(),
        (None, Some(text)) => text.clone(),
        (None, None) => "a panic without a message".to_string(),
    }
}
