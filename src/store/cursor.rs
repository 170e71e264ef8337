use std::{collections::VecDeque, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

use super::{EventStore, RecordedEvent, StoreError};

/// Events per page: large enough to amortise a round trip, small enough to keep memory flat.
const PAGE_SIZE: i64 = 5_000;
/// How often a follower looks for events committed by another process when no signal arrives
/// (SQLite has no cross-process notification; on PostgreSQL this covers a lost LISTEN connection).
const POLL_INTERVAL: Duration = Duration::from_millis(250);

impl Drop for LogCursor {
    fn drop(&mut self) {
        if let Some(reading) = self.next_page.take() {
            reading.abort();
        }
    }
}

/// Reads the log in position order, a page at a time. Either stops at the end of the log
/// (`EventStore::read_all`) or waits there for new events (`EventStore::follow`).
pub struct LogCursor {
    store: EventStore,
    after: i64,
    page: VecDeque<RecordedEvent>,
    follow: bool,
    signal: watch::Receiver<i64>,
    /// The next page, already being read while this one is handed out.
    next_page: Option<JoinHandle<Result<Vec<RecordedEvent>, StoreError>>>,
}

impl LogCursor {
    pub(super) fn new(store: EventStore, after: i64, follow: bool) -> Self {
        let signal = store.commit_signal();
        Self { store, after, page: VecDeque::new(), follow, signal, next_page: None }
    }

    /// The position of the last event handed out.
    pub fn position(&self) -> i64 {
        self.after
    }

    /// The next event; `None` at the end of the log unless following.
    pub async fn next(&mut self) -> Result<Option<RecordedEvent>, StoreError> {
        loop {
            if let Some(event) = self.page.pop_front() {
                self.after = event.position;
                return Ok(Some(event));
            }
            // Mark the signal seen before reading, so a commit during the read still wakes us.
            self.signal.borrow_and_update();
            let page = match self.next_page.take() {
                Some(reading) => reading.await.map_err(|_| StoreError::Closed)??,
                None => self.store.read_page(self.after, PAGE_SIZE).await?,
            };
            if let Some(last) = page.last() {
                if page.len() as i64 == PAGE_SIZE {
                    // A full page: there is probably more, so read it while this one is consumed.
                    let (store, after) = (self.store.clone(), last.position);
                    self.next_page = Some(tokio::spawn(async move { store.read_page(after, PAGE_SIZE).await }));
                }
                self.page.extend(page);
                continue;
            }
            if !self.follow {
                return Ok(None);
            }
            // Either a commit signal or the poll interval, whichever comes first.
            if let Ok(Err(_)) = tokio::time::timeout(POLL_INTERVAL, self.signal.changed()).await {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}
