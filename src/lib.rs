//! roleledger: an event-sourced role-request workflow server.
//!
//! Layers, inner to outer: `store` (the event log), then the HTTP adapter (`routes`, `startup`)
//! and the command line (`cli`). Inner layers never import outer ones.

pub mod cli;
pub mod configuration;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;
