//! The event store's conformance suite: every test runs against real SQLite and real PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod conformance;
mod domain;

/// Declares each test of a module once per backend.
macro_rules! on_both_backends {
    ($module:ident as $name:ident: $($test:ident),* $(,)?) => {
        mod $name {
            mod sqlite {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() { crate::$module::$test(crate::support::Backend::Sqlite).await }) *
            }
            mod postgres {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() { crate::$module::$test(crate::support::Backend::Postgres).await }) *
            }
        }
    };
}

on_both_backends!(conformance as event_log:
    appended_events_read_back_with_versions_positions_and_chain,
    expected_version_mismatch_is_a_conflict_and_writes_nothing,
    fifty_concurrent_appenders_to_one_stream,
    follower_sees_every_event_once_in_order_while_eight_writers_append,
    idempotent_repeat_returns_the_first_result_and_writes_nothing,
    altered_moved_deleted_or_reordered_row_is_found_by_verify,
    migrations_apply_to_empty_and_existing_databases,
    schema_newer_than_the_binary_is_refused,
    read_all_pages_through_the_whole_log,
    two_stores_on_one_database_keep_one_chain,
    lone_appends_of_two_processes_taking_turns_keep_positions_and_chain,
    empty_append_is_refused,
    commits_are_announced_to_the_process,
    a_shared_key_is_made_once_for_every_store_of_a_database,
);

on_both_backends!(domain as decisions:
    egi_scenarios_run_through_the_store,
    identical_concurrent_requests_one_accepted_one_duplicate,
    concurrent_approvals_exactly_one_wins,
    expiry_happens_once_across_two_processes,
    two_deciding_processes_keep_one_chain,
);

/// Declares tests that only PostgreSQL can run (refused JSONB, ended sessions, NOTIFY).
macro_rules! on_postgres {
    ($($module:ident: $($test:ident),* ;)*) => {
        mod postgres_only {
            $($(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() { crate::$module::$test(crate::support::Backend::Postgres).await })*)*
        }
    };
}

on_postgres!(
    conformance: one_refused_append_does_not_abort_its_batch, an_ended_writer_connection_is_replaced,
        commits_of_another_process_are_announced;
    domain: one_refused_append_does_not_abort_a_batch_of_commands, an_ended_writer_connection_is_replaced_for_commands;
);
