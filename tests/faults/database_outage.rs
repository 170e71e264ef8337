//! PostgreSQL stopped under load (a private cluster, `pg_ctl stop -m immediate`): meanwhile the API
//! answers 503 with `Retry-After` — never a hang, never a 500 — and `/readyz` fails; when the
//! database returns, everything recovers by itself (no restart of the server), and nothing
//! acknowledged is lost.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::{
    checks::{after_fault, assert_all_mail_delivered},
    harness::{one_at_a_time, scale, wait_until, Database},
    load::{start_world, Api, Load, LoadSettings, Random, World, PACE_FOR_MAIL},
    private_postgres::PrivatePostgres,
    support::smtp::SmtpServer,
};

const WORLD: World = World { sites: 10, users: 40 };
/// How soon after the database went away `/readyz` must say so.
const NOTICED_WITHIN: Duration = Duration::from_secs(5);
/// The slowest answer allowed: a call waits up to 5 s for a connection (the pool's timeout), then
/// is answered 503; anything much longer is a hang.
const SLOWEST_ANSWER: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load() {
    let _alone = one_at_a_time().await;
    let outage = Duration::from_secs(scale("PG_OUTAGE_SECONDS", 12, 30));
    let seed = Random::seed();
    let cluster = PrivatePostgres::start();
    let db = Database::on_postgres(&cluster.admin_url());
    let smtp = SmtpServer::start().await;
    let (_servers, api) = start_world(&db, &smtp, 1, WORLD).await;
    let load = Load::start(&api, WORLD, LoadSettings { clients: 8, pause: PACE_FOR_MAIL, grant_duration: None }, seed);
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.stop();
    let stopped = Instant::now();
    let mut readiness = Vec::new();
    while stopped.elapsed() < outage {
        let answer = api
            .call(Method::GET, "/readyz", World::ADMIN, None)
            .await
            .expect("/readyz answers while the database is down");
        if stopped.elapsed() > NOTICED_WITHIN {
            assert!(
                answer.status == StatusCode::SERVICE_UNAVAILABLE && answer.retry_after.is_some(),
                "/readyz {:.1} s into the outage: {} {}",
                stopped.elapsed().as_secs_f64(),
                answer.status,
                answer.body
            );
            assert!(answer.took <= SLOWEST_ANSWER, "/readyz took {:?} to answer", answer.took);
            readiness.push(answer.took);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let during = load.ledger.lock().unwrap().answers.clone();
    let refused = during.get("503 database_unavailable").copied().unwrap_or_default();
    assert!(refused > 0, "no call was answered 503 during a {outage:?} outage: {during:?}");

    cluster.start_again();
    let acknowledged_at_return = load.acknowledged();
    let ready_after =
        wait_until(Duration::from_secs(60), "/readyz answers 200 again after the database returned", || ready(&api))
            .await;
    let writing_after =
        wait_until(Duration::from_secs(60), "writes are acknowledged again after the database returned", || {
            let acknowledged = load.acknowledged();
            async move { acknowledged > acknowledged_at_return }
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ledger = load.stop().await;
    ledger.assert_clean();
    assert!(
        ledger.slowest <= SLOWEST_ANSWER,
        "a call took {:?} to be answered (the outage lasted {outage:?})",
        ledger.slowest
    );
    let log = after_fault(&ledger.acks, &db, &api).await;
    let mail = assert_all_mail_delivered(&db, &smtp, Duration::from_secs(180), false).await;
    eprintln!(
        "database outage (seed {seed}): PostgreSQL down {outage:?}; /readyz 503 {} times (slowest {:?}); ready again {ready_after:?} and \
         writing again {writing_after:?} after it returned; {}; {} events; {} mails delivered once each",
        readiness.len(),
        readiness.iter().max().copied().unwrap_or_default(),
        ledger.summary(),
        log.len(),
        mail.mails
    );
}

async fn ready(api: &Api) -> bool {
    matches!(api.call(Method::GET, "/readyz", World::ADMIN, None).await, Ok(answer) if answer.status == StatusCode::OK)
}
