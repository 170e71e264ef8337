//! A long mixed load on one server: its memory and open files, at the start (after a warm-up) and
//! at the end, stay flat. Memory is judged against a fresh process that folded the same log: what
//! the soaked process holds beyond that is what the load left behind.

use std::time::{Duration, Instant};

use crate::{
    checks::after_fault,
    harness::{one_at_a_time, scale, Database, ServerProcess},
    load::{start_world, Load, LoadSettings, Random, World},
    support::{smtp::SmtpServer, Backend},
};

const WORLD: World = World { sites: 20, users: 100 };
/// Open files may differ by the connection pool's size (16) and a few sockets in passing; a leak
/// per call would be thousands.
const OPEN_FILES_SLACK: usize = 24;
/// Memory the soaked process may hold beyond a fresh one with the same log (allocator pools,
/// caches of tokens and metrics).
const MEMORY_SLACK_KIB: u64 = 48 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_for_long() {
    let _alone = one_at_a_time().await;
    let seconds = scale("SOAK_SECONDS", 60, 600);
    let seed = Random::seed();
    let db = Database::new(Backend::Postgres);
    let smtp = SmtpServer::start().await;
    let (servers, api) = start_world(&db, &smtp, 1, WORLD).await;
    let server = &servers[0];
    let load = Load::start(
        &api,
        WORLD,
        LoadSettings { clients: 8, pause: Duration::from_millis(2), grant_duration: None },
        seed,
    );
    let started = Instant::now();
    let warm_up = Duration::from_secs((seconds / 10).max(5));
    tokio::time::sleep(warm_up).await;
    let start = server.resources();
    eprintln!("soak: start (after {warm_up:?} of load): {start}");
    let mut samples = vec![start];
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(seconds / 10).max(Duration::from_secs(5))).await;
        let now = server.resources();
        eprintln!("soak: {:>4.0} s: {now}", started.elapsed().as_secs_f64());
        samples.push(now);
    }
    let end = server.resources();
    let ledger = load.stop().await;
    ledger.assert_clean();
    let log = after_fault(&ledger.acks, &db, &api).await;
    let fresh = ServerProcess::start("fresh", &db, &smtp).await;
    let reference = fresh.resources();
    eprintln!(
        "soak (seed {seed}): {seconds} s; start {start}; end {end}; a fresh process over the same {} events: {reference}; {}",
        log.len(),
        ledger.summary()
    );
    assert!(
        end.open_files <= start.open_files + OPEN_FILES_SLACK,
        "open files grew from {} to {} during the soak: {samples:?}",
        start.open_files,
        end.open_files
    );
    assert!(
        end.rss_kib <= reference.rss_kib.max(start.rss_kib) + MEMORY_SLACK_KIB,
        "memory grew from {start} to {end} while a fresh process holds the same log in {reference}: {samples:?}"
    );
}
