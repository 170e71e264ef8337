//! Failover under load on the cluster of `scripts/cluster`: PostgreSQL under Patroni (leader TTL
//! 10 s), a synchronous standby and an asynchronous replica; two servers in namespaces of their
//! own on the multi-host URL (`target_session_attrs=read-write`), the second following the replica
//! for its reads (`--read-database`). The primary's postmaster gets SIGKILL (and, in the long form,
//! the next primary's network is cut, then mended). Each time: Patroni names a new primary within
//! its promised time; both servers write again without a restart, answering 503 with Retry-After
//! meanwhile; the old primary rejoins as a standby on the new timeline. At the end: every
//! acknowledged write is in the log (synchronous replication), the chain verifies, nothing was
//! decided twice, no ask retried with its idempotency key acted twice, and every host holds the
//! same log; the server on the replica answers as the one on the primary does.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{
    checks::after_fault,
    cluster::{Cluster, PROMISED_FAILOVER, SERVER_PORT},
    harness::{one_at_a_time, scale, wait_until, Database, ServerProcess},
    load::{Api, Load, LoadSettings, Random, World, PACE_FOR_MAIL},
    support::smtp::SmtpServer,
};

const WORLD: World = World { sites: 10, users: 40 };
/// A write waits up to 5 s for a connection (the pool's timeout), and a batch to a host that went
/// silent is abandoned after 8 s: then it is answered 503.
const SLOWEST_ANSWER: Duration = Duration::from_secs(10);
/// Acknowledged writes that show the load is writing again.
const WRITING: usize = 20;

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// SIGKILL to the primary's postmaster: Patroni sees PostgreSQL gone and hands over at once.
    Kill,
    /// The primary's network cut: its leader key expires, then a standby takes over.
    Cut,
}

/// What one failover took.
struct Failover {
    fault: Fault,
    from: &'static str,
    to: &'static str,
    promoted: Duration,
    writing_again: Duration,
    rejoined: Duration,
    began: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_under_patroni_under_load() {
    let _alone = one_at_a_time().await;
    let seed = Random::seed();
    let faults = match scale("CLUSTER_FAULTS", 1, 2) {
        1 => vec![Fault::Kill],
        _ => vec![Fault::Kill, Fault::Cut],
    };
    // Declared first, so dropped last: the database is dropped on the cluster.
    let cluster = Cluster::up();
    let first = cluster.leader().await.expect("a primary after scripts/cluster databases");
    let mut db = Database::on_postgres(&Cluster::admin_url(first));
    let name = db.url.rsplit_once('/').expect("a database name").1.to_string();
    db.reached_through(Cluster::multi_host_url(&name), &Cluster::admin_url(first));
    let smtp = SmtpServer::start_at(&Cluster::address("bridge"), 0).await;
    db.bootstrap_admin(World::ADMIN).await;
    let start = |host: &'static str, extra: Vec<(String, String)>| {
        ServerProcess::start_on(host, Cluster::server_host(host), SERVER_PORT, &db, &smtp, extra)
    };
    let writer = start("app1", Vec::new()).await;
    let replica_url = Cluster::url_on(Cluster::REPLICA, &name);
    let reader = start("app2", vec![("ROLELEDGER_READ_DATABASE".into(), replica_url)]).await;
    let api = Api::new(vec![writer.url.clone(), reader.url.clone()]);
    WORLD.build(&api).await;
    assert_follows_the_replica(&reader.url).await;

    let load = Load::start(&api, WORLD, LoadSettings { clients: 8, pause: PACE_FOR_MAIL, grant_duration: None }, seed);
    wait_for_writes(&load, "the load writes before any fault").await;
    let mut failovers = Vec::new();
    for fault in faults {
        let failover = fail_over(&cluster, &load, fault).await;
        // The checks read the log on the primary itself (sqlx takes one host).
        db.reached_through(Cluster::url_on(failover.to, &name), &Cluster::admin_url(failover.to));
        failovers.push(failover);
    }
    wait_for_writes(&load, "the load writes after the old primary rejoined").await;
    let ledger = load.stop().await;
    ledger.assert_clean();
    assert!(ledger.slowest <= SLOWEST_ANSWER, "a call took {:?} to be answered", ledger.slowest);
    for server in 0..2 {
        let answer = api.call_on(server, Method::GET, "/readyz", World::ADMIN, None).await.expect("/readyz answers");
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{} is ready after the failover: {}",
            api.servers[server],
            answer.body
        );
    }
    let log = after_fault(&ledger.acks, &db, &api).await;
    let same_everywhere = wait_until(Duration::from_secs(30), "every host holds the primary's log", || {
        let name = name.clone();
        async move {
            let logs = log_on_every_host(&name).await;
            logs.iter().all(|log| log.is_some() && *log == logs[0])
        }
    })
    .await;
    assert_answers_alike(&api).await;

    let (before, after) = latencies(&ledger.writes, &failovers);
    for failover in &failovers {
        eprintln!(
            "failover {:?} {}→{}: new primary after {:?}, writing again after {:?}, {:?} without an acknowledged \
             write, old primary a standby again after {:?}",
            failover.fault,
            failover.from,
            failover.to,
            failover.promoted,
            failover.writing_again,
            longest_pause(&ledger.writes, failover),
            failover.rejoined
        );
    }
    eprintln!(
        "failover (seed {seed}): {}; {} events, the same on every host after {same_everywhere:?}; write latency \
         p50/p99 before {before}, after {after}",
        ledger.summary(),
        log.len()
    );
}

/// One fault of the primary, and what follows: a new primary, writes again, the old one back.
async fn fail_over(cluster: &Cluster, load: &Load, fault: Fault) -> Failover {
    let from = cluster.leader().await.expect("a primary before the fault");
    let acknowledged = load.acknowledged();
    let began = Instant::now();
    match fault {
        Fault::Kill => cluster.kill9(from),
        Fault::Cut => cluster.cut(from),
    }
    let promoted = wait_until(PROMISED_FAILOVER, "Patroni names a new primary", || async {
        cluster.leader().await.is_some_and(|leader| leader != from)
    })
    .await;
    let to = cluster.leader().await.expect("the new primary");
    let writing_again = wait_until(Duration::from_secs(30), "both servers write again", || {
        let written = load.acknowledged();
        async move { written > acknowledged + WRITING }
    })
    .await;
    if let Fault::Cut = fault {
        cluster.mend(from);
    }
    let rejoined_after = Instant::now();
    wait_until(Duration::from_secs(90), "the old primary rejoins as a standby on the new timeline", || async {
        rejoined(&cluster.members().await, from, to)
    })
    .await;
    Failover { fault, from, to, promoted, writing_again, rejoined: rejoined_after.elapsed(), began }
}

/// `old` streams from `leader` as a standby, on the leader's timeline, and the leader has a
/// synchronous standby again (the next failover has a standby that holds every commit).
fn rejoined(members: &[Value], old: &str, leader: &str) -> bool {
    let member = |name: &str| members.iter().find(|member| member["name"] == name);
    let (Some(old), Some(leader)) = (member(old), member(leader)) else { return false };
    ["replica", "sync_standby"].contains(&old["role"].as_str().unwrap_or_default())
        && ["running", "streaming"].contains(&old["state"].as_str().unwrap_or_default())
        && old["timeline"] == leader["timeline"]
        && old["lag"].is_u64()
        && members.iter().any(|member| member["role"] == "sync_standby")
}

async fn wait_for_writes(load: &Load, what: &str) {
    let acknowledged = load.acknowledged();
    wait_until(Duration::from_secs(30), what, || {
        let written = load.acknowledged();
        async move { written > acknowledged + WRITING }
    })
    .await;
}

/// The server on the replica folds what it reads there, and says how far behind it is. It learns
/// the replica's position first and folds up to it after (on a busy machine, a scrape in between
/// shows the projections behind): so the fold is waited for.
async fn assert_follows_the_replica(url: &str) {
    let scrape = || async { reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap() };
    let metrics = scrape().await;
    let replica_position = gauge(&metrics, "roleledger_read_database_position");
    assert!(replica_position >= 1.0, "the replica's position in /metrics: {metrics}");
    assert!(gauge(&metrics, "roleledger_read_database_lag_seconds") < 5.0, "{metrics}");
    wait_until(Duration::from_secs(10), "the server's projections reach the replica's position", || async {
        gauge(&scrape().await, "roleledger_read_model_position") >= replica_position
    })
    .await;
}

/// Once the server on the replica has caught up, it answers lists and checks as the one on the
/// primary does: it shows no state that the primary never had.
async fn assert_answers_alike(api: &Api) {
    let mut paths = vec!["/api/v1/grants".to_string(), "/api/v1/requests".to_string()];
    for site in 0..WORLD.sites {
        let user = World::user(site);
        paths.push(format!("/api/v1/check?user={user}&permission=scope.edit&scope={}", World::site(site)));
    }
    for path in paths {
        let answers = |server: usize| {
            let path = path.clone();
            async move { api.call_on(server, Method::GET, &path, World::ADMIN, None).await.map(|answer| answer.body) }
        };
        wait_until(Duration::from_secs(30), &format!("both servers answer GET {path} alike"), || async {
            let (writer, reader) = tokio::join!(answers(0), answers(1));
            matches!((writer, reader), (Ok(writer), Ok(reader)) if writer == reader && !writer.is_null())
        })
        .await;
    }
}

/// Each database host's log: its length and a digest of its hashes in order (None where the host
/// does not answer).
async fn log_on_every_host(database: &str) -> Vec<Option<String>> {
    let mut logs = Vec::new();
    for host in Cluster::DATABASE_HOSTS {
        let url = Cluster::url_on(host, database);
        let query = "SELECT count(*) || ' ' || md5(coalesce(string_agg(hash, ',' ORDER BY position), '')) FROM events";
        let psql = move || std::process::Command::new("psql").args([url.as_str(), "-XAtqc", query]).output();
        let output = tokio::task::spawn_blocking(psql).await.unwrap().expect("psql runs");
        logs.push(output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()));
    }
    logs
}

/// The longest time without an acknowledged write from just before the fault until the load
/// wrote again.
fn longest_pause(writes: &[(Instant, Duration)], failover: &Failover) -> Duration {
    let (from, until) =
        (failover.began - Duration::from_secs(1), failover.began + failover.promoted + failover.writing_again);
    let mut answered: Vec<Instant> =
        writes.iter().map(|(at, _)| *at).filter(|at| (from..=until).contains(at)).collect();
    answered.sort();
    answered.windows(2).map(|pair| pair[1] - pair[0]).max().unwrap_or_default()
}

/// Write latency p50/p99 before the first fault and after the last rejoin.
fn latencies(writes: &[(Instant, Duration)], failovers: &[Failover]) -> (String, String) {
    let first = failovers.first().expect("a failover").began;
    let last = failovers.last().expect("a failover");
    let settled = last.began + last.promoted + last.writing_again + last.rejoined;
    let percentiles = |keep: &dyn Fn(Instant) -> bool| {
        let mut took: Vec<Duration> = writes.iter().filter(|(at, _)| keep(*at)).map(|(_, took)| *took).collect();
        took.sort();
        let at = |fraction: f64| took.get(((took.len() as f64 - 1.0) * fraction).round() as usize).copied();
        format!("{:?}/{:?} ({} writes)", at(0.5).unwrap_or_default(), at(0.99).unwrap_or_default(), took.len())
    };
    (percentiles(&|at| at < first), percentiles(&|at| at > settled))
}

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{metrics}"))
}
