//! Failures on purpose, for the tests of what must survive them: a role request whose reason is
//! one of these markers makes the server panic at that point. Compiled only with the `testing`
//! feature, which the crate's own dev-dependency on itself turns on (so `cargo test`, its test
//! binaries and the binary they run have it) and which no normal build enables: a release build
//! has no hooks. The marker travels in the request, so only the test server it is sent to fails,
//! however many run in one test process.

use crate::{domain::Command, store::RecordedEvent};

/// The writer panics while deciding the command (inside its per-command guard).
pub const PANIC_IN_DECIDE: &str = "roleledger-testing: panic while deciding";
/// The writer panics while folding the command's events, after changing its model (inside the guard).
pub const PANIC_IN_FOLD: &str = "roleledger-testing: panic while folding";
/// The writer task panics outside any guard, and stops.
pub const STOP_WRITER: &str = "roleledger-testing: stop the writer";
/// The read-model follower of any other process on the database stops when it reads the event.
pub const STOP_FOLLOWER: &str = "roleledger-testing: stop the follower";

/// This process's webhook worker stops when it is to deliver the request's event.
pub const STOP_WEBHOOK_WORKER: &str = "roleledger-testing: stop the webhook worker";

/// The writer commits the request's batch, then acts as if the database's answer to the commit
/// was lost: the caller is answered 503 although everything was written.
pub const LOSE_COMMIT_ANSWER: &str = "roleledger-testing: lose the commit's answer";

/// Whether `command` is a role request whose reason is `marker`.
pub(crate) fn asks(command: &Command, marker: &str) -> bool {
    matches!(command, Command::RequestRole { reason, .. } if reason == marker)
}

/// Panics when `command` is a role request whose reason is `marker`.
pub(crate) fn panic_if_asked(command: &Command, marker: &str) {
    if asks(command, marker) {
        panic!("test hook: {marker}");
    }
}

/// Panics when `event` records the reason `marker`.
pub(crate) fn panic_if_recorded(event: &RecordedEvent, marker: &str) {
    if event.data.get("reason").and_then(|reason| reason.as_str()) == Some(marker) {
        panic!("test hook: {marker}");
    }
}
