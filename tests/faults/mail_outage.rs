//! The SMTP server down under load: the API is unaffected (every call answered as usual, none
//! slow), and afterwards every mail arrives, each once.

use std::time::{Duration, Instant};

use crate::{
    checks::{after_fault, assert_all_mail_delivered},
    harness::{one_at_a_time, scale, Database},
    load::{start_world, Load, LoadSettings, Random, World, PACE_FOR_MAIL},
    support::{smtp::SmtpServer, Backend},
};

const WORLD: World = World { sites: 10, users: 40 };
/// The slowest answer allowed while the mail server is down: mail is never on the path of a call.
const SLOWEST_ANSWER: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_under_load() {
    let _alone = one_at_a_time().await;
    let outage = Duration::from_secs(scale("SMTP_OUTAGE_SECONDS", 10, 60));
    let seed = Random::seed();
    let db = Database::new(Backend::Sqlite);
    let smtp = SmtpServer::start().await;
    let (_servers, api) = start_world(&db, &smtp, 1, WORLD).await;
    let load = Load::start(&api, WORLD, LoadSettings { clients: 8, pause: PACE_FOR_MAIL, grant_duration: None }, seed);
    tokio::time::sleep(Duration::from_secs(2)).await;

    smtp.stop().await;
    let arrived_before = smtp.received().len();
    let acknowledged_before = load.acknowledged();
    tokio::time::sleep(outage).await;
    let acknowledged_during = load.acknowledged() - acknowledged_before;
    {
        let ledger = load.ledger.lock().unwrap();
        assert!(
            ledger.unexpected.is_empty() && ledger.hung.is_empty(),
            "the API suffered from the mail outage: {:?} {:?}",
            ledger.unexpected,
            ledger.hung
        );
        assert!(ledger.slowest < SLOWEST_ANSWER, "an answer took {:?} while the mail server was down", ledger.slowest);
    }
    assert!(acknowledged_during > 0, "no call was acknowledged during the mail outage");
    let failed = mail_failures(&api).await;
    assert!(failed > 0, "no mail failed during a {outage:?} SMTP outage: the outage was not felt");
    smtp.restart().await;
    let restarted = Instant::now();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let ledger = load.stop().await;
    ledger.assert_clean();
    let log = after_fault(&ledger.acks, &db, &api).await;
    // Retries come 15–45 s after a first failure, then doubling: a minute's outage is over by the third.
    let mail = assert_all_mail_delivered(&db, &smtp, Duration::from_secs(600), false).await;
    eprintln!(
        "mail outage (seed {seed}): SMTP down {outage:?}, {acknowledged_during} calls acknowledged meanwhile (slowest answer {:?}); \
         {failed} sending attempts failed; all {} mails arrived, each once, {:.1} s after the SMTP server returned \
         ({arrived_before} before the outage); {}; {} events",
        ledger.slowest,
        mail.mails,
        restarted.elapsed().as_secs_f64(),
        ledger.summary(),
        log.len()
    );
}

/// `roleledger_mail_failed_total` from `/metrics`.
async fn mail_failures(api: &crate::load::Api) -> u64 {
    let url = format!("{}/metrics", api.servers[0]);
    let text = reqwest::get(url).await.expect("/metrics answers").text().await.expect("/metrics reads");
    text.lines()
        .find_map(|line| line.strip_prefix("roleledger_mail_failed_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .unwrap_or_default()
}
