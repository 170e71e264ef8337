//! The outbox: the mail that events cause, written in the same transaction as the events (so an
//! acknowledged event never loses its mail), then claimed, sent and marked by delivery workers.
//!
//! A worker claims due rows by pushing their `next_attempt_at` past a lease, in one statement
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time), sends them outside any
//! transaction, and marks them sent. Two workers never hold the same row; a worker that dies
//! between sending and marking leaves the row to be claimed again when its lease ends, so that mail
//! may repeat, with the same Message-ID.
//!
//! Fresh mail skips the claim: the writer writes it already leased to its own process's worker
//! and hands it over once its transaction has committed (see [`MailHandoff`]).
//!
//! - `row.rs`: the row written with the events that cause it;
//! - `mail.rs`: the mail as workers and admins read it back;
//! - `claims.rs`: claiming, marking, listing and retrying mail;
//! - `handoff.rs`: fresh mail handed to this process's worker;
//! - `leases.rs`: leases lost with a claim or commit whose outcome is unknown;
//! - `message_id.rs`: the Message-ID, stable across retries.

mod claims;
mod handoff;
mod leases;
mod mail;
mod message_id;
pub(super) mod row;

pub(crate) use handoff::{Handover, MailHandoff};
pub(crate) use leases::LostLeases;
pub use mail::{MailState, OutboxMail, MAIL_LEASE};
pub use message_id::message_id;
pub(crate) use row::OutboxRow;
