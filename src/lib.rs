//! roleledger: an event-sourced role-request workflow server.
//!
//! Layers, inner to outer: `workflow` (the policy file) and `domain` (pure decisions: commands
//! decided against state into events, state evolved from events, who sees what and who is told;
//! no I/O, no clock); `store` (the event log, which knows none of them) and `projections` (the
//! log folded into the domain's state); `app` (the one way a command runs, and the planner the
//! store's writer calls); then the adapters: HTTP (`routes`, `startup`), mail, sign-in (`auth`)
//! and the command line (`cli`). Inner layers never import outer ones (`tests/architecture.rs`).

pub mod app;
pub mod auth;
pub mod cli;
pub mod configuration;
pub mod domain;
pub mod mail;
pub mod projections;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;
pub mod workflow;

/// mimalloc for every binary that links the crate (the server, the tests, the benchmarks): folding
/// the log and answering HTTP allocate many small short-lived values, which glibc's allocator
/// serves and frees slowly across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
