//! The server and the command line, driven from outside: real HTTP to a server on port 0, and the
//! real binary for the command line.

#[path = "../support/mod.rs"]
mod support;

/// Runs each named `async fn(Backend)` of the enclosing file once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $scenario() { super::$scenario(crate::support::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $scenario() { super::$scenario(crate::support::Backend::Postgres).await } )*
        }
    };
}

mod audit;
mod authorization;
mod browser;
mod clarive;
mod cli;
mod clustercockpit;
mod concurrency;
mod delegation;
mod digest;
mod egi_story;
mod every_path;
mod fuzz;
mod governance;
mod health;
mod helpers;
mod hygiene;
mod idempotency;
mod identity;
mod install;
mod mail;
mod mail_links;
mod oidc;
mod openapi;
mod pictures;
mod process;
mod rancher;
mod reviews;
mod simulate;
mod snapshots;
mod tokens;
mod ucp;
mod users;
mod web;
mod webhooks;
