//! Restart benchmark: prints figures, judges nothing. Run with `cargo bench --bench restart` (see
//! bench/README.md). For each log size, on PostgreSQL (domain events: requests, approvals, grants,
//! revocations): the time a start takes to build the read model by folding the whole log, the time
//! to make and store a snapshot of it, and the time a start takes from that snapshot; and the
//! resident memory of the process after each start. Each start runs in a fresh process (this
//! program run again), as a real restart does, so that no memory or cache of an earlier one helps.

use std::{process::Command, sync::Arc, time::Instant};

#[path = "populate.rs"]
mod populate;

use chrono::Utc;
use clap::Parser;
use roleledger::{
    app::App,
    projections::{snapshot::Sealer, DomainModel},
    store::{DatabaseUrl, EventStore, Migrations},
    workflow::Workflow,
};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};

#[derive(Parser)]
struct Options {
    /// Log sizes (events, about: whole requests are written), each in a database of its own.
    #[arg(long, value_delimiter = ',', default_values = ["1000000"])]
    events: Vec<usize>,
    #[arg(long, env = "ROLELEDGER_TEST_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// Internal: run one start (`fold`, `seal` or `snapshot`) on the database `--url` and print it.
    #[arg(long, hide = true)]
    child: Option<String>,
    #[arg(long, hide = true)]
    url: Option<String>,
    /// Keep each log's database at the end (its URL is printed), to start a server on it.
    #[arg(long)]
    keep: bool,
    // `cargo bench` passes `--bench`; accept and ignore it.
    #[arg(long, hide = true)]
    bench: bool,
}

const WORKFLOW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/egi.toml");
const KEY: &[u8] = b"the-restart-benchmark-snapshot-key";

/// This process's resident memory in MB (Linux).
fn resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

/// One start in this process: `fold` (no snapshot key: the whole log), `snapshot` (from the newest
/// valid snapshot, then the tail), or `seal` (fold, then make and store a snapshot).
async fn child(mode: &str, url: &DatabaseUrl) -> Value {
    let workflow = Arc::new(Workflow::from_file(WORKFLOW).unwrap());
    let key = (mode == "snapshot").then(|| KEY.to_vec());
    let started = Instant::now();
    let app = App::open_with_snapshots(url, None, Migrations::RequireCurrent, workflow.clone(), key).await.unwrap();
    let start_seconds = started.elapsed().as_secs_f64();
    let stats = app.snapshot_stats();
    let mut answer = json!({
        "start_seconds": start_seconds,
        "resident_mb": resident_mb(),
        "events": app.projections().position(),
        "loaded_at": stats.loaded_at.load(std::sync::atomic::Ordering::Relaxed),
        "folded": stats.folded_at_start.load(std::sync::atomic::Ordering::Relaxed),
    });
    if mode == "seal" {
        let store = app.store();
        let model = app.read_model(DomainModel::clone);
        let hash = store.snapshots().hash_at(model.position()).await.unwrap().unwrap();
        let started = Instant::now();
        let snapshot =
            tokio::task::spawn_blocking(move || Sealer::new(KEY.to_vec(), workflow).seal(&model, hash)).await.unwrap();
        let sealed = started.elapsed().as_secs_f64();
        store.snapshots().save(&snapshot).await.unwrap();
        answer["seal_seconds"] = json!(sealed);
        answer["store_seconds"] = json!(started.elapsed().as_secs_f64() - sealed);
        answer["snapshot_mb"] = json!(snapshot.body.len() as f64 / 1e6);
    }
    answer
}

/// Runs one start in a fresh process of this program.
fn start_in_a_new_process(mode: &str, url: &DatabaseUrl) -> Value {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--child", mode, "--url", &url.to_string()])
        .output()
        .expect("the benchmark runs itself");
    assert!(output.status.success(), "{mode}: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("one line of figures")
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    if let (Some(mode), Some(url)) = (&options.child, &options.url) {
        roleledger::telemetry::init("error");
        println!("{}", child(mode, &url.parse().unwrap()).await);
        return;
    }
    println!(
        "# Restart benchmark (postgres)\n\n{} cores, {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let mut rows = Vec::new();
    for events in &options.events {
        let mut admin = sqlx::PgConnection::connect(&options.postgres).await.expect("PostgreSQL for the benchmark");
        let name = format!("rl_bench_restart_{}_{events}", std::process::id());
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
        let (server, _) = options.postgres.rsplit_once('/').unwrap();
        let url = DatabaseUrl::Postgres(format!("{server}/{name}"));
        let store = EventStore::open(&url, Migrations::Apply).await.unwrap();
        populate::populate(&store, *events).await;
        drop(store);
        let fold = start_in_a_new_process("fold", &url);
        let seal = start_in_a_new_process("seal", &url);
        let snapshot = start_in_a_new_process("snapshot", &url);
        assert_eq!(snapshot["folded"], 0, "the start from the snapshot folded no tail: {snapshot}");
        assert_eq!(snapshot["events"], fold["events"]);
        rows.push((fold, seal, snapshot));
        if options.keep {
            eprintln!("kept: {url}");
        } else {
            admin.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.unwrap();
        }
    }
    println!(
        "| events | start, whole log folded (s) | resident MB | MB per million events | snapshot made (s) | \
         stored (s) | size MB | start from the snapshot (s) | resident MB | speed-up |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (fold, seal, snapshot) in rows {
        let f = |value: &Value, key: &str| value[key].as_f64().unwrap_or(f64::NAN);
        let millions = f(&fold, "events") / 1e6;
        println!(
            "| {} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1}× |",
            fold["events"],
            f(&fold, "start_seconds"),
            f(&fold, "resident_mb"),
            f(&fold, "resident_mb") / millions,
            f(&seal, "seal_seconds"),
            f(&seal, "store_seconds"),
            f(&seal, "snapshot_mb"),
            f(&snapshot, "start_seconds"),
            f(&snapshot, "resident_mb"),
            f(&fold, "start_seconds") / f(&snapshot, "start_seconds"),
        );
    }
}
