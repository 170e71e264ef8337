//! Event store benchmark: prints figures, judges nothing. Run with `cargo bench --bench store`
//! (see bench/README.md for the options). Every figure stands beside a baseline measured in the
//! same run on the same database, because absolute times on a shared 2-core machine are noisy.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

#[path = "baseline.rs"]
mod baseline;

use clap::Parser;
use roleledger::store::{AppendRequest, DatabaseUrl, EventStore, ExpectedVersion, Metadata, Migrations, NewEvent};
use serde_json::json;
use sqlx::{Connection, Executor};

#[derive(Parser)]
struct Options {
    /// Which backends to measure.
    #[arg(long, value_delimiter = ',', default_values = ["sqlite", "postgres"])]
    backends: Vec<String>,
    /// Seconds per append measurement (each concurrency level, store and baseline).
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Events in the log for the replay measurement.
    #[arg(long, default_value_t = 1_000_000)]
    replay_events: usize,
    /// Concurrency levels for appends.
    #[arg(long, value_delimiter = ',', default_values = ["1", "8", "32"])]
    concurrency: Vec<usize>,
    /// Rounds of each append measurement (store, baselines, alternating); the best is printed.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// On PostgreSQL, also Message DB's `write_message` driven by pgbench at each concurrency
    /// (bench/message-db/run: needs npm, psql and pgbench), a peer event store's baseline.
    #[arg(long)]
    message_db: bool,
    /// PostgreSQL server to create the benchmark database on.
    #[arg(long, env = "ROLELEDGER_TEST_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    // `cargo bench` passes `--bench`; accept and ignore it.
    #[arg(long, hide = true)]
    bench: bool,
}

fn sample_event(n: u64) -> NewEvent {
    NewEvent::new(
        "RoleRequested",
        json!({
            "request": format!("0193a4b2-{n:012}"),
            "user": format!("user-{}", n % 5_000),
            "role": "site-administrator",
            "scope": format!("site-{}", n % 800),
            "reason": "I run the storage elements of this site and need to edit its downtimes.",
        }),
    )
    .with_metadata(Metadata {
        actor: Some(format!("user-{}", n % 5_000)),
        correlation_id: Some(format!("req-{n}")),
        causation_id: None,
        client_address: Some("192.0.2.10".into()),
    })
}

/// Runs `workers` loops of `operation` for `seconds`, returning operations per second.
async fn rate<F, Fut>(workers: usize, seconds: u64, operation: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let operation = Arc::new(operation);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (done, operation) = (done.clone(), operation.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    operation(worker, n).await;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Message DB's `write_message` per second at `clients` (bench/message-db/run, which installs it
/// into a scratch database of the server and drives it with pgbench), one round.
fn message_db_rate(options: &Options, clients: usize) -> f64 {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/message-db/run");
    let output = std::process::Command::new(script)
        .args(["--seconds", &options.seconds.to_string(), "--rounds", "1"])
        .args(["--clients", &clients.to_string()])
        .env("ROLELEDGER_TEST_POSTGRES", &options.postgres)
        .stderr(std::process::Stdio::null())
        .output()
        .expect("bench/message-db/run");
    assert!(output.status.success(), "bench/message-db/run failed (run it alone to see why)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|line| line.starts_with(&format!("{clients}\t"))).expect("a figure");
    line.split('\t').nth(1).and_then(|rate| rate.parse().ok()).expect("events/s")
}

/// A plain INSERT per transaction through sqlx: the baseline an append is compared with.
enum PlainInserts {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl PlainInserts {
    async fn open(url: &DatabaseUrl, connections: u32) -> Self {
        match url {
            DatabaseUrl::Sqlite(path) => {
                let options = format!("sqlite:{path}")
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30));
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(connections)
                    .connect_with(options)
                    .await
                    .unwrap();
                pool.execute("CREATE TABLE IF NOT EXISTS bench_plain (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, data TEXT NOT NULL)").await.unwrap();
                PlainInserts::Sqlite(pool)
            }
            DatabaseUrl::Postgres(url) => {
                let pool =
                    sqlx::postgres::PgPoolOptions::new().max_connections(connections).connect(url).await.unwrap();
                pool.execute("CREATE TABLE IF NOT EXISTS bench_plain (id BIGSERIAL PRIMARY KEY, stream TEXT NOT NULL, data JSONB NOT NULL)").await.unwrap();
                PlainInserts::Postgres(pool)
            }
        }
    }

    async fn insert(&self, stream: String, data: String) {
        match self {
            PlainInserts::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("INSERT INTO bench_plain (stream, data) VALUES (?1, ?2)")
                    .bind(stream)
                    .bind(data)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
            PlainInserts::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("INSERT INTO bench_plain (stream, data) VALUES ($1, $2::jsonb)")
                    .bind(stream)
                    .bind(data)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }
    }

    async fn close(self) {
        match self {
            PlainInserts::Sqlite(pool) => pool.close().await,
            PlainInserts::Postgres(pool) => pool.close().await,
        }
    }
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak resident size, so that VmHWM afterwards is the peak of what follows.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn bench_appends(url: &DatabaseUrl, options: &Options) {
    let store = EventStore::open(url, Migrations::Apply).await.unwrap();
    let message_db = options.message_db && matches!(url, DatabaseUrl::Postgres(_));
    println!(
        "each figure the best of {} rounds of {} s; one event per append, `ExpectedVersion::Any`, each appender its own stream\n",
        options.rounds.max(1),
        options.seconds
    );
    if message_db {
        println!("| concurrent appenders | store appends/s | plain INSERT/s | ratio | Message DB `write_message`/s | ratio |");
        println!("|---:|---:|---:|---:|---:|---:|");
    } else {
        println!("| concurrent appenders | store appends/s | plain INSERT/s | ratio |");
        println!("|---:|---:|---:|---:|");
    }
    for &workers in &options.concurrency {
        let plain = Arc::new(PlainInserts::open(url, workers as u32).await);
        // The rounds alternate between the store and its baselines, so that each meets the same
        // spells of a shared machine's load; the best round of each is printed.
        let (mut store_rate, mut plain_rate, mut peer_rate) = (0.0f64, 0.0f64, 0.0f64);
        for _ in 0..options.rounds.max(1) {
            let appender = store.clone();
            let measured = rate(workers, options.seconds, move |worker, n| {
                let store = appender.clone();
                async move {
                    let request = AppendRequest::new(
                        format!("bench-{workers}-{worker}"),
                        ExpectedVersion::Any,
                        vec![sample_event(n)],
                    );
                    store.append(request).await.unwrap();
                }
            })
            .await;
            store_rate = store_rate.max(measured);
            let inserter = plain.clone();
            let measured = rate(workers, options.seconds, move |worker, n| {
                let plain = inserter.clone();
                async move { plain.insert(format!("bench-{workers}-{worker}"), sample_event(n).data.to_string()).await }
            })
            .await;
            plain_rate = plain_rate.max(measured);
            if message_db {
                peer_rate = peer_rate.max(message_db_rate(options, workers));
            }
        }
        if let Ok(plain) = Arc::try_unwrap(plain) {
            plain.close().await;
        }
        let row = format!("| {workers} | {store_rate:.0} | {plain_rate:.0} | {:.2} |", store_rate / plain_rate);
        if message_db {
            println!("{row} {peer_rate:.0} | {:.2} |", store_rate / peer_rate);
        } else {
            println!("{row}");
        }
    }
    if message_db {
        println!(
            "\nMessage DB (npm `@eventide/message-db`, bench/message-db/run): `write_message` of `{{}}` through pgbench \
             (prepared), one message per transaction, client k writing stream `bench-k` of one category"
        );
    }
    let report = store.verify().await.unwrap();
    println!("\nchain after the append runs: ok={} events={}", report.ok, report.events);
}

async fn populate(store: &EventStore, events: usize) {
    let have = store.head().await.unwrap().position as usize;
    let started = Instant::now();
    let mut n = have as u64;
    while (n as usize) < events {
        let batch = (events - n as usize).min(1_000);
        let request = AppendRequest::new(
            format!("replay-{}", n / 1_000),
            ExpectedVersion::Any,
            (0..batch as u64).map(|i| sample_event(n + i)).collect(),
        );
        store.append(request).await.unwrap();
        n += batch as u64;
    }
    let written = n as usize - have;
    println!(
        "populated {written} events in {:.1} s ({:.0} events/s in appends of 1,000)",
        started.elapsed().as_secs_f64(),
        written as f64 / started.elapsed().as_secs_f64()
    );
}

async fn bench_replay(url: &DatabaseUrl, options: &Options) {
    let store = EventStore::open(url, Migrations::Apply).await.unwrap();
    populate(&store, options.replay_events).await;
    let total = store.head().await.unwrap().position;

    let (baseline_rate, baseline_name) = baseline::raw_rows_per_second(url).await;

    reset_peak_rss();
    let rss_before = rss_kib("VmRSS:");
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut cursor = store.read_all(0);
    let mut read = 0i64;
    while let Some(event) = cursor.next().await.unwrap() {
        read += 1;
        if read % (total / 4).max(1) == 0 {
            samples.push(format!("{}%: {} MiB", read * 100 / total, rss_kib("VmRSS:") / 1024));
        }
        std::hint::black_box(event);
    }
    let replay_rate = read as f64 / started.elapsed().as_secs_f64();
    let peak = rss_kib("VmHWM:");
    println!("| replay from position 0 | events | events/s | baseline ({baseline_name}) rows/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| decoded `RecordedEvent`s | {read} | {replay_rate:.0} | {baseline_rate:.0} | {:.2} |",
        replay_rate / baseline_rate
    );
    println!(
        "\nresident memory: {} MiB before the replay, peak {} MiB during it; at {}",
        rss_before / 1024,
        peak / 1024,
        samples.join(", ")
    );
}

async fn fresh_database(backend: &str, options: &Options) -> (DatabaseUrl, Option<tempfile::TempDir>) {
    match backend {
        "sqlite" => {
            let folder = tempfile::tempdir().unwrap();
            (DatabaseUrl::Sqlite(folder.path().join("bench.db").display().to_string()), Some(folder))
        }
        "postgres" => {
            let name = drop_database(options).await;
            let mut admin = sqlx::PgConnection::connect(&options.postgres).await.expect("PostgreSQL for the benchmark");
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
            let (server, _) = options.postgres.rsplit_once('/').unwrap();
            (DatabaseUrl::Postgres(format!("{server}/{name}")), None)
        }
        other => panic!("unknown backend {other}: use sqlite or postgres"),
    }
}

/// Drops this run's PostgreSQL database (`rl_bench_<pid>`) if it is there, and names it.
async fn drop_database(options: &Options) -> String {
    let mut admin = sqlx::PgConnection::connect(&options.postgres).await.expect("PostgreSQL for the benchmark");
    let name = format!("rl_bench_{}", std::process::id());
    admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.unwrap();
    name
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    println!(
        "# Event store benchmark\n\n{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    for backend in &options.backends {
        println!("\n## {backend}\n");
        let (url, _folder) = fresh_database(backend, &options).await;
        bench_appends(&url, &options).await;
        let (url, _folder) = fresh_database(backend, &options).await;
        println!();
        bench_replay(&url, &options).await;
        if backend == "postgres" {
            drop_database(&options).await;
        }
    }
}
