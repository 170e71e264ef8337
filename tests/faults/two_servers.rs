//! Two server processes on one PostgreSQL database, the load spread over both, each decision raced
//! by an opposite one sent to the other process: no request decided twice, no grant twice, no mail
//! sent twice (two delivery workers), and each grant's expiry written once although both
//! processes run the expiry pass.

use std::time::Duration;

use crate::{
    checks::{after_fault, assert_all_mail_delivered, Log},
    harness::{one_at_a_time, scale, wait_until, Database},
    load::{start_world, Load, LoadSettings, Random, World, PACE_FOR_MAIL},
    support::{smtp::SmtpServer, Backend},
};

const WORLD: World = World { sites: 10, users: 40 };
/// How long the grants last: they end during the run, and both processes' expiry passes (every
/// 15 s) find them.
const GRANT_DURATION: &str = "PT5S";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_database() {
    let _alone = one_at_a_time().await;
    let seconds = scale("TWO_SERVERS_SECONDS", 20, 120);
    let seed = Random::seed();
    let db = Database::new(Backend::Postgres);
    let smtp = SmtpServer::start().await;
    let (_servers, api) = start_world(&db, &smtp, 2, WORLD).await;
    let settings = LoadSettings { clients: 16, pause: PACE_FOR_MAIL, grant_duration: Some(GRANT_DURATION) };
    let load = Load::start(&api, WORLD, settings, seed);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let ledger = load.stop().await;
    ledger.assert_clean();

    // Every grant has ended by now (5 s after its approval); wait for the expiry passes to write it.
    let waited = wait_until(Duration::from_secs(60), "every grant ended by revocation or expiry", || async {
        Log::export(&db).await.unended_grants_with_an_end() == 0
    })
    .await;
    let log = after_fault(&ledger.acks, &db, &api).await;
    let expired = log.count("GrantExpired");
    assert!(expired > 0, "no grant expired: the expiry passes were not exercised");
    // The load writes mail faster (about 900 a second) than two workers send it (about 300): the
    // backlog takes about three times as long as the load to clear.
    let mail = assert_all_mail_delivered(&db, &smtp, Duration::from_secs(120 + 4 * seconds), false).await;
    eprintln!(
        "two servers (seed {seed}): {seconds} s of load over both; {}; {} events, {} grants, {} revoked, {expired} expired once each \
         ({waited:?} after the load); {} mails, each arrived once",
        ledger.summary(),
        log.len(),
        log.count("RoleGranted"),
        log.count("GrantRevoked"),
        mail.mails
    );
}
