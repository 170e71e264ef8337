//! The server killed with SIGKILL at random moments under a mixed load, and started again each
//! time: after each restart every call answered 2xx is in the log, `verify` passes, the projections
//! equal a rebuild, and the mail of every acknowledged event is queued or sent. At the end every mail
//! marked sent has arrived (a kill between sending and recording may send one twice: at least
//! once); mail that a killed worker had claimed waits for its 5-minute lease, so only the long run
//! (`ROLELEDGER_FAULTS_CRASH_MAIL_WAIT_SECONDS`) waits for all of it to arrive.

use std::time::{Duration, Instant};

use crate::{
    checks::{after_fault, assert_all_mail_delivered, assert_sent_mail_arrived},
    harness::{one_at_a_time, scale, Database},
    load::{start_world, Load, LoadSettings, Random, World},
    support::{smtp::SmtpServer, Backend},
};

const WORLD: World = World { sites: 20, users: 60 };

async fn killed_at_random_moments_under_load(backend: Backend) {
    let _alone = one_at_a_time().await;
    let kills = scale("KILLS", 3, 20);
    let seed = Random::seed();
    let mut random = Random::new(seed);
    let db = Database::new(backend);
    let smtp = SmtpServer::start().await;
    let (mut servers, api) = start_world(&db, &smtp, 1, WORLD).await;
    let server = &mut servers[0];
    let load =
        Load::start(&api, WORLD, LoadSettings { clients: 16, pause: Duration::ZERO, grant_duration: None }, seed);
    let started = Instant::now();
    let mut acknowledged_before = 0;
    for kill in 1..=kills {
        tokio::time::sleep(random.between(Duration::from_millis(300), Duration::from_millis(3000))).await;
        server.kill();
        tokio::time::sleep(random.between(Duration::ZERO, Duration::from_millis(500))).await;
        server.restart().await;
        let acks = load.acks();
        assert!(
            acks.len() > acknowledged_before,
            "no call was acknowledged before kill {kill}: the load did not reach the server"
        );
        acknowledged_before = acks.len();
        let log = after_fault(&acks, &db, &api).await;
        eprintln!("crash {backend:?}: kill {kill}/{kills} at {:.1} s: {} calls acknowledged, {} events, all in the log; verified; their mail queued", started.elapsed().as_secs_f64(), acks.len(), log.len());
    }
    let ledger = load.stop().await;
    ledger.assert_clean();
    let log = after_fault(&ledger.acks, &db, &api).await;
    let mail_wait = scale("CRASH_MAIL_WAIT_SECONDS", 0, 420);
    let mail = if mail_wait > 0 {
        assert_all_mail_delivered(&db, &smtp, Duration::from_secs(mail_wait), true).await
    } else {
        assert_sent_mail_arrived(&db, &smtp, true).await
    };
    eprintln!(
        "crash {backend:?} (seed {seed}): {kills} kills in {:.1} s; {}; {} events; {} mails, {} still queued, {} arrived more than once",
        started.elapsed().as_secs_f64(),
        ledger.summary(),
        log.len(),
        mail.mails,
        mail.pending,
        mail.repeated
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_at_random_moments_under_load() {
        super::killed_at_random_moments_under_load(crate::support::Backend::Sqlite).await
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_at_random_moments_under_load() {
        super::killed_at_random_moments_under_load(crate::support::Backend::Postgres).await
    }
}
