//! Faults and load: the real `roleledger serve` binary as a child process, driven over HTTP by many
//! clients while it is killed with SIGKILL, its PostgreSQL or its mail server goes away, two of it
//! share one database, or it runs for a long time. After each fault: every call that was answered
//! 2xx is in the log, `verify` passes (chain and projections), and every mail of those calls is
//! queued or delivered.
//!
//! Short by default (CI); `ROLELEDGER_FAULTS_LONG=1` gives the figures (20 kills, PostgreSQL
//! down 30 s, SMTP down 60 s, a 10-minute soak); each figure has its own variable (see `Scale`).
//! `ROLELEDGER_BIN` names the binary to run (`scripts/faults` passes the release build).
//! The scenarios run one at a time: they measure time and memory on a shared machine.

#[path = "../support/mod.rs"]
mod support;

mod checks;
mod cluster;
mod harness;
mod load;
mod private_postgres;

mod crash;
mod database_outage;
mod failover;
mod mail_outage;
mod soak;
mod two_servers;
