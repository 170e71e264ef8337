//! What must hold after a fault, each failure naming what was lost or duplicated: acknowledged
//! calls in the log, nothing decided or granted twice, `verify` (command line and a running
//! server's projections against a rebuild), and the mail of acknowledged events queued or delivered.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use chrono::{DateTime, FixedOffset};
use reqwest::Method;
use serde_json::Value;
use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::{
    harness::{wait_until, Database},
    load::{Ack, Api, World, ASK_REASON},
    support::{smtp::SmtpServer, Backend},
};

/// The log as `roleledger export` prints it, with each stream's first event of each type at hand.
pub struct Log {
    events: Vec<Value>,
    first_of: HashMap<(String, String), usize>,
}

impl Log {
    pub async fn export(db: &Database) -> Log {
        let output = db.cli(&["export"]).await;
        assert!(output.status.success(), "roleledger export failed: {}", String::from_utf8_lossy(&output.stderr));
        let events: Vec<Value> = String::from_utf8(output.stdout)
            .expect("the export is UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("an exported event is JSON"))
            .collect();
        let mut first_of = HashMap::new();
        for (index, event) in events.iter().enumerate().rev() {
            let key = (
                event["stream"].as_str().unwrap_or_default().to_string(),
                event["type"].as_str().unwrap_or_default().to_string(),
            );
            first_of.insert(key, index);
        }
        Log { events, first_of }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    fn find(&self, stream: &str, event_type: &str) -> Option<&Value> {
        self.first_of.get(&(stream.to_string(), event_type.to_string())).map(|&index| &self.events[index])
    }

    fn of_type<'a>(&'a self, event_type: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["type"] == event_type)
    }

    /// Grants with an end date that neither a revocation nor an expiry has ended yet.
    pub fn unended_grants_with_an_end(&self) -> usize {
        let ended: BTreeSet<&str> = self
            .events
            .iter()
            .filter(|e| e["type"] == "GrantRevoked" || e["type"] == "GrantExpired")
            .filter_map(|e| e["stream"].as_str())
            .collect();
        self.of_type("RoleGranted")
            .filter(|e| !e["data"]["ends_at"].is_null() && !ended.contains(e["stream"].as_str().unwrap_or_default()))
            .count()
    }

    /// How many events of `event_type` the log holds.
    pub fn count(&self, event_type: &str) -> usize {
        self.of_type(event_type).count()
    }
}

/// Every acknowledged call's event is in the log (an approval's grant too).
pub fn assert_acknowledged_in_log(acks: &[Ack], log: &Log) {
    let mut lost = Vec::new();
    for ack in acks {
        let (stream, event_type) = ack.event();
        if log.find(&stream, event_type).is_none() {
            lost.push(format!("{event_type} in {stream} ({ack:?})"));
        }
        if let Ack::Approved { grant, .. } = ack {
            if log.find(&format!("grant-{grant}"), "RoleGranted").is_none() {
                lost.push(format!("RoleGranted in grant-{grant} ({ack:?})"));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "LOST: {} of {} acknowledged calls are not in the log ({} events): {lost:#?}",
        lost.len(),
        acks.len(),
        log.len()
    );
}

/// No ask acting twice (retried with its key), no request decided twice, no grant ended twice, no
/// request granted twice, and never two grants of one role on one scope to one holder in force at
/// once (a grant past its end is not in force, whether or not its expiry is written yet).
pub fn assert_nothing_twice(log: &Log) {
    let mut twice = Vec::new();
    let count_per = |what: &str, key: String, counts: &mut BTreeMap<String, usize>, twice: &mut Vec<String>| {
        let seen = counts.entry(key.clone()).or_default();
        *seen += 1;
        if *seen == 2 {
            twice.push(format!("{what} twice: {key}"));
        }
    };
    let (mut decisions, mut endings, mut grants_of_request) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut asks = BTreeMap::new();
    // Per holder, role and scope: the grant (stream) in force and its end.
    let mut in_force: BTreeMap<String, (String, Option<DateTime<FixedOffset>>)> = BTreeMap::new();
    let time = |value: &Value| value.as_str().and_then(|text| DateTime::parse_from_rfc3339(text).ok());
    for event in &log.events {
        let stream = event["stream"].as_str().unwrap_or_default().to_string();
        match event["type"].as_str().unwrap_or_default() {
            "RequestApproved" | "RequestRejected" | "RequestCancelled" | "RequestExpired" => {
                count_per("decided", stream, &mut decisions, &mut twice)
            }
            "GrantRevoked" | "GrantExpired" => {
                count_per("ended", stream.clone(), &mut endings, &mut twice);
                in_force.retain(|_, (grant, _)| *grant != stream);
            }
            "RoleRequested" => {
                // The load's asks carry their idempotency key in the reason: one request per key.
                if let Some(key) = event["data"]["reason"].as_str().filter(|reason| reason.starts_with(ASK_REASON)) {
                    count_per("asked", key.to_string(), &mut asks, &mut twice);
                }
            }
            "RoleGranted" => {
                let data = &event["data"];
                if let Some(request) = data["origin"]["request"]["request"].as_str() {
                    count_per("granted", format!("request-{request}"), &mut grants_of_request, &mut twice);
                }
                let held = format!("{} {} on {}", data["subject"], data["role"], data["scope"]);
                let starts = time(&data["starts_at"]).expect("a grant's start");
                if let Some((earlier, ends)) = in_force.get(&held) {
                    if ends.is_none_or(|end| end > starts) {
                        twice.push(format!("two grants of {held} in force at once: {earlier} and {stream}"));
                    }
                }
                in_force.insert(held, (stream, time(&data["ends_at"])));
            }
            _ => {}
        }
    }
    assert!(twice.is_empty(), "DUPLICATED: {twice:#?}");
}

/// `roleledger verify` passes (chain, versions, and projections folded from the log), and the
/// running server's own projections equal a rebuild (`GET /audit/verify`).
pub async fn assert_verified(db: &Database, api: &Api) {
    let output = db.cli(&["verify"]).await;
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "roleledger verify failed: {said}");
    assert!(said.contains("projections match a rebuild"), "roleledger verify did not check the projections: {said}");
    for server in 0..api.servers.len() {
        let answer =
            api.call_on(server, Method::GET, "/api/v1/audit/verify", World::ADMIN, None).await.expect("verify answers");
        let report = &answer.body;
        assert!(
            answer.status == 200 && report["ok"] == true && report["projections_checked_at"].is_i64(),
            "server {}'s projections differ from a rebuild of the log: {report}",
            api.servers[server]
        );
    }
}

/// A row of the outbox.
#[derive(sqlx::FromRow)]
struct Mail {
    event_id: String,
    recipient: String,
    message_id: String,
    state: String,
}

async fn outbox(db: &Database) -> Vec<Mail> {
    let url = &db.url;
    match db.backend {
        Backend::Sqlite => {
            let mut connection = SqliteConnection::connect(url).await.expect("the SQLite file opens");
            sqlx::query_as("SELECT event_id, recipient, message_id, state FROM outbox").fetch_all(&mut connection).await
        }
        Backend::Postgres => {
            let mut connection = PgConnection::connect(url).await.expect("the database answers");
            sqlx::query_as("SELECT event_id::text AS event_id, recipient, message_id, state FROM outbox")
                .fetch_all(&mut connection)
                .await
        }
    }
    .expect("the outbox reads")
}

/// Every mail of every acknowledged event is in the outbox, waiting or sent.
pub async fn assert_mail_queued(acks: &[Ack], log: &Log, db: &Database) {
    let queued: BTreeMap<(String, String), String> =
        outbox(db).await.into_iter().map(|mail| ((mail.event_id, mail.recipient), mail.state)).collect();
    let mut lost = Vec::new();
    for ack in acks {
        let (stream, event_type) = ack.event();
        let Some(event) = log.find(&stream, event_type) else { continue }; // named by assert_acknowledged_in_log
        let event_id = event["event_id"].as_str().unwrap_or_default().to_string();
        for recipient in ack.recipients() {
            match queued.get(&(event_id.clone(), recipient.clone())).map(String::as_str) {
                Some("pending" | "sent") => {}
                state => lost.push(format!("{recipient} for {event_type} in {stream}: {state:?}")),
            }
        }
    }
    assert!(
        lost.is_empty(),
        "MAIL LOST: {} mails of acknowledged events are neither queued nor sent: {lost:#?}",
        lost.len()
    );
}

/// The outbox beside what arrived at the SMTP server.
#[derive(Debug)]
pub struct MailReport {
    pub mails: usize,
    /// Still waiting (for a retry, or for the lease of a worker that was killed to end).
    pub pending: usize,
    /// Messages that arrived more than once (same Message-ID).
    pub repeated: usize,
}

/// Every mail the outbox calls sent arrived at the SMTP server, none is dead, and none arrived
/// twice unless `repeats_allowed` (a server killed between sending and recording sends again: at
/// least once).
pub async fn assert_sent_mail_arrived(db: &Database, smtp: &SmtpServer, repeats_allowed: bool) -> MailReport {
    let mails = outbox(db).await;
    let dead: Vec<_> = mails.iter().filter(|mail| mail.state == "dead").map(|mail| &mail.recipient).collect();
    assert!(dead.is_empty(), "MAIL LOST: {} mails are dead: {dead:?}", dead.len());
    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for mail in smtp.received() {
        *arrivals.entry(mail.header("Message-ID").unwrap_or_default()).or_default() += 1;
    }
    let missing: Vec<String> = mails
        .iter()
        .filter(|mail| mail.state == "sent" && !arrivals.contains_key(&mail.message_id))
        .map(|mail| format!("{} to {} (event {})", mail.message_id, mail.recipient, mail.event_id))
        .collect();
    assert!(missing.is_empty(), "MAIL LOST: {} mails marked sent never arrived: {missing:#?}", missing.len());
    let repeated: Vec<_> = arrivals.iter().filter(|(_, times)| **times > 1).collect();
    assert!(
        repeats_allowed || repeated.is_empty(),
        "MAIL DUPLICATED: {} messages arrived more than once: {repeated:?}",
        repeated.len()
    );
    let pending = mails.iter().filter(|mail| mail.state == "pending").count();
    MailReport { mails: mails.len(), pending, repeated: repeated.len() }
}

/// Waits until the outbox holds no waiting mail, then `assert_sent_mail_arrived`.
pub async fn assert_all_mail_delivered(
    db: &Database,
    smtp: &SmtpServer,
    limit: Duration,
    repeats_allowed: bool,
) -> MailReport {
    wait_until(limit, "the outbox drains (mail still pending)", || async {
        outbox(db).await.iter().all(|mail| mail.state != "pending")
    })
    .await;
    assert_sent_mail_arrived(db, smtp, repeats_allowed).await
}

/// Everything that must hold after a fault, while the load may go on: acknowledged calls in the
/// log, nothing twice, verify, and their mail queued or sent. Returns the log as exported.
pub async fn after_fault(acks: &[Ack], db: &Database, api: &Api) -> Log {
    let log = Log::export(db).await;
    assert_acknowledged_in_log(acks, &log);
    assert_nothing_twice(&log);
    assert_verified(db, api).await;
    assert_mail_queued(acks, &log, db).await;
    log
}
