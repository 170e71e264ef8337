//! Brings the projections forward when another process commits (announced by NOTIFY on
//! PostgreSQL, found by polling the head otherwise). This process's own commits are published by
//! its writer before they are announced, so they cost no read here.

use std::sync::{Arc, RwLock};

use super::DomainModel;
use crate::store::{CommandPlanner, LogFeed};

const PAGE: i64 = 5_000;

pub(super) async fn follow(mut feed: LogFeed, model: Arc<RwLock<DomainModel>>) {
    while let Some(head) = feed.next_head().await {
        let mut after = model.read().unwrap_or_else(|poisoned| poisoned.into_inner()).position();
        while after < head {
            match feed.read_page(after, PAGE).await {
                Ok(page) if !page.is_empty() => {
                    #[cfg(feature = "testing")]
                    page.iter()
                        .for_each(|event| crate::testing::panic_if_recorded(event, crate::testing::STOP_FOLLOWER));
                    after = page.last().map_or(after, |event| event.position);
                    model.write().unwrap_or_else(|poisoned| poisoned.into_inner()).advance(&page);
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the log; the projections wait");
                    break;
                }
            }
        }
    }
}
