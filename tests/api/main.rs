//! The server and the command line, driven from outside: real HTTP to a server on port 0, and the
//! real binary for the command line.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod health;
mod helpers;
