//! roleledger: an event-sourced role-request workflow server.
//!
//! Layers, inner to outer: `workflow` (the policy file) and `domain` (pure decisions: commands
//! decided against state into events, state evolved from events; no I/O, no clock), then `store`
//! (the event log), then the adapters: HTTP (`routes`, `startup`) and the command line (`cli`).
//! Inner layers never import outer ones.

pub mod app;
pub mod auth;
pub mod cli;
pub mod configuration;
pub mod domain;
pub mod expiry;
pub mod mail;
pub mod notify;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod workflow;

/// mimalloc for every binary that links the crate (the server, the tests, the benchmarks): folding
/// the log and answering HTTP allocate many small short-lived values, which glibc's allocator
/// serves and frees slowly across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
