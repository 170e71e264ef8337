use std::{collections::HashMap, time::Duration};

use roleledger::store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, Migrations, NewEvent, StoreError, GENESIS_HASH,
};
use serde_json::json;
use sqlx::Connection;

use crate::support::{tamperings, Backend, TestDatabase};

fn event(n: usize) -> NewEvent {
    NewEvent::new("Happened", json!({"n": n, "text": "a ünïcode string", "ratio": 0.1}))
}

fn append_one(stream: &str, expected: ExpectedVersion, n: usize) -> AppendRequest {
    AppendRequest::new(stream, expected, vec![event(n)])
}

pub async fn appended_events_read_back_with_versions_positions_and_chain(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let metadata = Metadata {
        actor: Some("alice".into()),
        correlation_id: Some("c-1".into()),
        causation_id: None,
        client_address: Some("192.0.2.7".into()),
    };
    let events = (1..=3).map(|n| event(n).with_metadata(metadata.clone())).collect();
    let outcome = store.append(AppendRequest::new("site-A", ExpectedVersion::NoStream, events)).await.unwrap();
    assert_eq!((outcome.first_position, outcome.last_position, outcome.version), (1, 3, 3));
    store.append(append_one("site-B", ExpectedVersion::NoStream, 4)).await.unwrap();

    let stream = store.read_stream("site-A", 1).await.unwrap();
    assert_eq!(stream.iter().map(|e| (e.position, e.version)).collect::<Vec<_>>(), [(1, 1), (2, 2), (3, 3)]);
    assert_eq!(stream[0].data, json!({"n": 1, "text": "a ünïcode string", "ratio": 0.1}));
    assert_eq!(stream[0].metadata, metadata);
    assert_eq!(store.read_stream("site-A", 3).await.unwrap().len(), 1);

    let mut previous = GENESIS_HASH.to_string();
    for event in store.read_page(0, 100).await.unwrap() {
        assert_eq!(event.chained_hash(&previous), event.hash, "hash of position {}", event.position);
        previous = event.hash;
    }
    let head = store.head().await.unwrap();
    assert_eq!((head.position, head.hash), (4, previous));
    assert!(store.verify().await.unwrap().ok);
}

pub async fn expected_version_mismatch_is_a_conflict_and_writes_nothing(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    store.append(append_one("s", ExpectedVersion::NoStream, 1)).await.unwrap();
    let head = store.head().await.unwrap();

    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(0), ExpectedVersion::Exact(2)] {
        match store.append(append_one("s", expected, 2)).await {
            Err(StoreError::Conflict { stream, actual, .. }) => assert_eq!((stream.as_str(), actual), ("s", 1)),
            other => panic!("expected a conflict for {expected:?}, got {other:?}"),
        }
    }
    assert_eq!(store.head().await.unwrap(), head, "a conflict writes nothing");
    assert_eq!(store.read_stream("s", 1).await.unwrap().len(), 1);

    assert_eq!(store.append(append_one("s", ExpectedVersion::Exact(1), 3)).await.unwrap().version, 2);
    assert_eq!(store.append(append_one("s", ExpectedVersion::Any, 4)).await.unwrap().version, 3);
    assert_eq!(store.append(append_one("new", ExpectedVersion::Any, 5)).await.unwrap().version, 1);
}

pub async fn fifty_concurrent_appenders_to_one_stream(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    // Everyone believes the stream is new: exactly one may create it.
    let racing = (0..50).map(|n| {
        let store = store.clone();
        tokio::spawn(async move { store.append(append_one("contested", ExpectedVersion::NoStream, n)).await })
    });
    let results = futures_util::future::join_all(racing).await;
    let won = results.iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r.as_ref().unwrap(), Err(StoreError::Conflict { .. }))).count();
    assert_eq!((won, conflicts), (1, 49));

    // Everyone appends at any version: all succeed, versions stay contiguous.
    let appending = (0..50).map(|n| {
        let store = store.clone();
        tokio::spawn(async move { store.append(append_one("contested", ExpectedVersion::Any, n)).await })
    });
    for result in futures_util::future::join_all(appending).await {
        result.unwrap().unwrap();
    }
    let versions: Vec<i64> = store.read_stream("contested", 1).await.unwrap().iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=51).collect::<Vec<_>>());

    // Each appender retries on conflict with the version it read: all 50 succeed, one at a time.
    let retrying = (0..50).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                let current = store.read_stream("retried", 1).await.unwrap().len() as i64;
                match store.append(append_one("retried", ExpectedVersion::Exact(current), n)).await {
                    Ok(outcome) => return outcome.version,
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(other) => panic!("{other}"),
                }
            }
        })
    });
    let mut versions: Vec<i64> =
        futures_util::future::join_all(retrying).await.into_iter().map(|r| r.unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=50).collect::<Vec<_>>());
    assert!(store.verify().await.unwrap().ok);
}

pub async fn follower_sees_every_event_once_in_order_while_eight_writers_append(backend: Backend) {
    const WRITERS: usize = 8;
    const EACH: usize = 1_000;
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let mut follower = store.follow(0);
    let reading = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(WRITERS * EACH);
        while seen.len() < WRITERS * EACH {
            let event = follower.next().await.unwrap().expect("a follower never ends");
            seen.push((event.position, event.stream, event.version));
        }
        seen
    });
    let writers = (0..WRITERS).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            let stream = format!("writer-{writer}");
            for n in 0..EACH {
                store.append(append_one(&stream, ExpectedVersion::Exact(n as i64), n)).await.unwrap();
            }
        })
    });
    for writer in futures_util::future::join_all(writers).await {
        writer.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(120), reading).await.expect("follower kept up").unwrap();
    let positions: Vec<i64> = seen.iter().map(|(position, _, _)| *position).collect();
    assert_eq!(positions, (1..=(WRITERS * EACH) as i64).collect::<Vec<_>>(), "every position once, in order");
    let mut last_version: HashMap<String, i64> = HashMap::new();
    for (_, stream, version) in seen {
        let last = last_version.entry(stream).or_insert(0);
        assert_eq!(version, *last + 1);
        *last = version;
    }
    assert!(last_version.values().all(|&v| v == EACH as i64));
}

pub async fn idempotent_repeat_returns_the_first_result_and_writes_nothing(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let request = append_one("s", ExpectedVersion::NoStream, 1).idempotent("request-42");
    let first = store.append(request.clone()).await.unwrap();
    let head = store.head().await.unwrap();
    // The repeat would conflict on its expected version, yet answers as the first time did.
    assert_eq!(store.append(request.clone()).await.unwrap(), first);
    assert_eq!(store.head().await.unwrap(), head);

    let different = append_one("s", ExpectedVersion::Any, 2).idempotent("request-42");
    assert!(matches!(store.append(different).await, Err(StoreError::IdempotencyKeyReused(_))));

    // Two identical appends arriving together: one write, the same answer for both.
    let twin = append_one("t", ExpectedVersion::NoStream, 3).idempotent("request-43");
    let (a, b) = tokio::join!(store.append(twin.clone()), store.append(twin));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(store.read_stream("t", 1).await.unwrap().len(), 1);
    assert_eq!(store.head().await.unwrap().position, head.position + 1);
}

pub async fn altered_moved_deleted_or_reordered_row_is_found_by_verify(backend: Backend) {
    for tampering in tamperings(backend) {
        let expected_problem = match tampering.what {
            "altered" => "hash mismatch",
            "moved" => "jumps from version",
            "deleted" => "position 3 is missing",
            _ => "stream \"s\" jumps from version 2 to 4",
        };
        let db = TestDatabase::new(backend).await;
        let store = db.store().await;
        for n in 1..=6 {
            store.append(append_one("s", ExpectedVersion::Any, n)).await.unwrap();
        }
        assert!(store.verify().await.unwrap().ok);
        // The log refuses changes until its guard is removed, as only someone with database access could.
        let refused = match &db.url {
            roleledger::store::DatabaseUrl::Sqlite(path) => {
                let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite:{path}")).await.unwrap();
                sqlx::Executor::execute(&mut connection, tampering.change).await.is_err()
            }
            roleledger::store::DatabaseUrl::Postgres(url) => {
                let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::Executor::execute(&mut connection, tampering.change).await.is_err()
            }
        };
        assert!(refused, "the append-only guard refuses: {}", tampering.change);
        tampering.apply(&db).await;

        let report = store.verify().await.unwrap();
        assert!(!report.ok, "{}", tampering.what);
        let problem = report.first_problem.unwrap();
        assert_eq!(problem.position, 3, "{}: {}", tampering.what, problem.problem);
        assert!(problem.problem.contains(expected_problem), "{}: {}", tampering.what, problem.problem);
        assert_eq!(report.events, 2, "the chain holds up to the tampered row");

        let verify = std::process::Command::new(env!("CARGO_BIN_EXE_roleledger"))
            .args(["verify", "--database", &db.url.to_string()])
            .output()
            .unwrap();
        assert_eq!(verify.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&verify.stdout).contains("FAILED at position 3"));
    }
}

pub async fn migrations_apply_to_empty_and_existing_databases(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    // A read-only tool creates no SQLite file; it refuses a missing one, and an empty one.
    if let Some(path) = db.url.sqlite_path() {
        let refused = EventStore::open(&db.url, Migrations::RequireCurrent).await;
        assert!(matches!(&refused, Err(StoreError::MissingFile(file)) if file == path), "{:?}", refused.map(|_| ()));
        assert!(!std::path::Path::new(path).exists(), "no file was created");
        std::fs::write(path, b"").unwrap();
    }
    // A read-only tool refuses an unmigrated database instead of changing it.
    assert!(matches!(
        EventStore::open(&db.url, Migrations::RequireCurrent).await,
        Err(StoreError::SchemaTooOld { found: 0, .. })
    ));
    let store = db.store().await;
    assert_eq!(store.head().await.unwrap().position, 0);
    store.append(append_one("s", ExpectedVersion::NoStream, 1)).await.unwrap();
    drop(store);

    let reopened = db.store().await;
    assert_eq!(reopened.read_stream("s", 1).await.unwrap().len(), 1);
    let read_only = EventStore::open(&db.url, Migrations::RequireCurrent).await.unwrap();
    assert_eq!(read_only.head().await.unwrap().position, 1);

    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_roleledger"))
        .args(["migrate", "--database", &db.url.to_string()])
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    assert!(reopened.verify().await.unwrap().ok);
}

pub async fn schema_newer_than_the_binary_is_refused(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    drop(db.store().await);
    db.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, X'00', 0)"
            .replace("X'00'", if backend == Backend::Postgres { "'\\x00'::bytea" } else { "X'00'" })
            .as_str(),
    )
    .await;
    for migrations in [Migrations::Apply, Migrations::RequireCurrent] {
        match EventStore::open(&db.url, migrations).await {
            Err(error @ StoreError::SchemaTooNew { found: 9999, .. }) => {
                assert!(error.to_string().contains("newer than this roleledger"))
            }
            other => panic!("expected SchemaTooNew, got {:?}", other.map(|_| ())),
        }
    }
}

pub async fn read_all_pages_through_the_whole_log(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    // More than two pages, appended as a few large batches.
    for chunk in 0..12 {
        let events = (0..1_000).map(|n| event(chunk * 1_000 + n)).collect();
        store.append(AppendRequest::new(format!("chunk-{chunk}"), ExpectedVersion::NoStream, events)).await.unwrap();
    }
    let mut cursor = store.read_all(0);
    let mut expected = 1;
    while let Some(event) = cursor.next().await.unwrap() {
        assert_eq!(event.position, expected);
        assert_eq!(event.data["n"], json!(expected - 1));
        expected += 1;
    }
    assert_eq!(expected - 1, 12_000);
    let mut from_middle = store.read_all(11_998);
    assert_eq!(from_middle.next().await.unwrap().unwrap().position, 11_999);
    assert_eq!(from_middle.next().await.unwrap().unwrap().position, 12_000);
    assert!(from_middle.next().await.unwrap().is_none());
    let report = store.verify().await.unwrap();
    assert_eq!((report.ok, report.events), (true, 12_000));
}

pub async fn two_stores_on_one_database_keep_one_chain(backend: Backend) {
    // Two stores with their own pools and writers stand for two server processes.
    let db = TestDatabase::new(backend).await;
    let first = db.store().await;
    let second = db.store().await;
    let mut follower = second.follow(0);
    let writers = (0..8).map(|writer| {
        let store = if writer % 2 == 0 { first.clone() } else { second.clone() };
        tokio::spawn(async move {
            for n in 0..100 {
                store.append(append_one("shared", ExpectedVersion::Any, writer * 1_000 + n)).await.unwrap();
            }
        })
    });
    for writer in futures_util::future::join_all(writers).await {
        writer.unwrap();
    }
    for expected in 1..=800 {
        let event = tokio::time::timeout(Duration::from_secs(30), follower.next()).await.unwrap().unwrap().unwrap();
        assert_eq!((event.position, event.version), (expected, expected));
    }
    let report = first.verify().await.unwrap();
    assert_eq!((report.ok, report.events), (true, 800));
}

/// Two stores on one database stand for two processes that take turns, each append alone. On
/// PostgreSQL a writer that wrote last writes its next append in one statement without the lock,
/// against the head it left and the stream versions it knows; after the other one wrote, that
/// statement finds the head moved and the append goes under the lock. Either way positions stay
/// contiguous, versions are checked, each hash chains the previous head's, and nothing is written
/// twice.
pub async fn lone_appends_of_two_processes_taking_turns_keep_positions_and_chain(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let stores = [db.store().await, db.store().await];
    let mut position = 0;
    let mut shared = 0;
    // Runs of appends by one store, then the other: within a run the store wrote last.
    for (turn, &(writer, run)) in [(0, 3), (1, 1), (0, 1), (1, 4), (0, 2), (1, 1), (0, 1)].iter().enumerate() {
        let store = &stores[writer];
        for n in 0..run {
            let outcome =
                store.append(append_one("shared", ExpectedVersion::Exact(shared), turn * 10 + n)).await.unwrap();
            shared += 1;
            position += 1;
            assert_eq!((outcome.first_position, outcome.last_position, outcome.version), (position, position, shared));
            let own = format!("own-{writer}");
            let outcome = store.append(append_one(&own, ExpectedVersion::Any, turn * 10 + n)).await.unwrap();
            position += 1;
            assert_eq!(outcome.first_position, position, "turn {turn}, append {n}");
            // A stale version is a conflict, and writes nothing.
            match store.append(append_one("shared", ExpectedVersion::Exact(shared - 1), 0)).await {
                Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, shared),
                other => panic!("expected a conflict, got {other:?}"),
            }
        }
        if turn == 3 {
            // Past the time a writer that found the head moved takes the lock first.
            tokio::time::sleep(Duration::from_millis(1_100)).await;
        }
    }
    // A stream the other store made, which this one never read, expected to be new: a conflict.
    stores[1].append(append_one("made-by-1", ExpectedVersion::NoStream, 0)).await.unwrap();
    for n in 0..2 {
        stores[0].append(append_one("own-0", ExpectedVersion::Any, n)).await.unwrap();
        // Then the store wrote last and takes no lock first (its guess that the stream is new
        // is refused by the database, and the append goes under the lock).
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    match stores[0].append(append_one("made-by-1", ExpectedVersion::NoStream, 1)).await {
        Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, 1),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // And one that is new indeed is made.
    let made = stores[0].append(append_one("made-by-0", ExpectedVersion::NoStream, 2)).await.unwrap();
    assert_eq!((made.first_position, made.version), (position + 4, 1));
    for store in &stores {
        let head = store.head().await.unwrap();
        assert_eq!(head.position, position + 4);
        let report = store.verify().await.unwrap();
        assert_eq!((report.ok, report.events), (true, position + 4));
    }
    let log = stores[0].read_page(0, 1_000).await.unwrap();
    assert_eq!(log.iter().map(|e| e.position).collect::<Vec<_>>(), (1..=position + 4).collect::<Vec<_>>());
    let versions: Vec<i64> = stores[1].read_stream("shared", 1).await.unwrap().iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=shared).collect::<Vec<_>>());
}

pub async fn empty_append_is_refused(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let empty = AppendRequest::new("s", ExpectedVersion::Any, vec![]);
    assert!(matches!(store.append(empty).await, Err(StoreError::EmptyAppend)));
    assert_eq!(store.head().await.unwrap().position, 0);
}

/// PostgreSQL refuses a NUL character inside JSONB: that append fails alone, its neighbours commit.
pub async fn one_refused_append_does_not_abort_its_batch(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let bad = AppendRequest::new("bad", ExpectedVersion::Any, vec![NewEvent::new("Odd", json!({"text": "nul\u{0}"}))]);
    for round in 0..5 {
        let (before, refused, after) = tokio::join!(
            store.append(append_one("good", ExpectedVersion::Any, round)),
            store.append(bad.clone()),
            store.append(append_one("good", ExpectedVersion::Any, round)),
        );
        before.unwrap();
        after.unwrap();
        match refused {
            Err(StoreError::Database(_)) => {}
            other => panic!("expected the database to refuse the NUL character, got {other:?}"),
        }
    }
    assert_eq!(store.read_stream("good", 1).await.unwrap().len(), 10);
    assert!(store.read_stream("bad", 1).await.unwrap().is_empty());
    assert!(store.verify().await.unwrap().ok);
}

/// The writer keeps its connection between batches; when the server ends it (a restart, an
/// administrator), the next append begins on a fresh one instead of failing.
pub async fn an_ended_writer_connection_is_replaced(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    store.append(append_one("s", ExpectedVersion::Any, 1)).await.unwrap();
    let roleledger::store::DatabaseUrl::Postgres(url) = &db.url else { panic!("a PostgreSQL test") };
    let mut admin = sqlx::PgConnection::connect(&crate::support::postgres_admin_url()).await.unwrap();
    let database = url.rsplit('/').next().unwrap();
    let ended: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(database)
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert!(!ended.is_empty() && ended.iter().all(|&ok| ok), "the store's connections were ended: {ended:?}");
    let outcome = store.append(append_one("s", ExpectedVersion::Exact(1), 2)).await.unwrap();
    assert_eq!((outcome.version, outcome.last_position), (2, 2));
    assert!(store.verify().await.unwrap().ok);
}

pub async fn commits_are_announced_to_the_process(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    assert_eq!(store.known_committed_position(), 0);
    let outcome = store.append(append_one("s", ExpectedVersion::Any, 1)).await.unwrap();
    assert_eq!(store.known_committed_position(), outcome.last_position, "known as soon as the append returns");
}

/// Only LISTEN/NOTIFY can tell a process of another one's commit without reading the log. The
/// writer announces a burst of commits once an interval: the burst's last one is heard too.
pub async fn commits_of_another_process_are_announced(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let (writer, listener) = (db.store().await, db.store().await);
    let hears = |position: i64| {
        let listener = &listener;
        async move {
            let heard = tokio::time::timeout(Duration::from_secs(5), async {
                while listener.known_committed_position() < position {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            assert!(heard.is_ok(), "the other store never heard of position {position}");
        }
    };
    for n in 1..=3 {
        hears(writer.append(append_one("s", ExpectedVersion::Any, n)).await.unwrap().last_position).await;
    }
    let mut last = 0;
    for n in 4..=40 {
        last = writer.append(append_one("s", ExpectedVersion::Any, n)).await.unwrap().last_position;
    }
    hears(last).await;
    assert_eq!(listener.known_committed_position(), last, "no position beyond the log's");
}

pub async fn a_shared_key_is_made_once_for_every_store_of_a_database(backend: Backend) {
    // Two stores asking at once stand for two server processes starting together.
    let db = TestDatabase::new(backend).await;
    let (first, second) = (db.store().await, db.store().await);
    let (a, b) = tokio::join!(first.shared_key("mail_links"), second.shared_key("mail_links"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len(), 32);
    assert_eq!(a, b, "one key, whoever asked first");
    assert_eq!(first.shared_key("mail_links").await.unwrap(), a, "kept");
    assert_ne!(first.shared_key("another").await.unwrap(), a, "each name its own key");
    assert_eq!(first.head().await.unwrap().position, 0, "no event written");
}
