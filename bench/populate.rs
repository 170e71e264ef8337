//! A log of domain events for the benchmarks, written fast: the world (users, one project, its
//! NGIs and sites), then requests asked, approved and granted, one in three revoked later, appended
//! concurrently so that the writer commits them in large batches.

use std::time::Instant;

use chrono::Utc;
use futures_util::future::join_all;
use roleledger::{
    domain::{Actor, Event, GrantOrigin, ScopeId, Subject, UserId},
    store::{AppendRequest, EventStore, ExpectedVersion, NewEvent},
};
use uuid::Uuid;

pub const USERS: u64 = 20_000;
const SITES: u64 = 800;
const NGIS: u64 = 20;

fn append(event: Event) -> AppendRequest {
    let new = NewEvent::new(event.event_type(), event.data());
    AppendRequest::new(event.stream_id(), ExpectedVersion::Any, vec![new])
}

fn appends(events: Vec<Event>) -> AppendRequest {
    let stream = events[0].stream_id();
    let new = events.iter().map(|event| NewEvent::new(event.event_type(), event.data())).collect();
    AppendRequest::new(stream, ExpectedVersion::Any, new)
}

/// The world (users, one project, its NGIs and sites), then requests until the log holds about
/// `events`: each asked, approved and granted, one in three revoked later.
pub async fn populate(store: &EventStore, events: usize) {
    let started = Instant::now();
    let at = Utc::now();
    let by = Actor::User(UserId::known("root"));
    let scope = |id: String, kind: &str, parents: Vec<String>| Event::ScopeCreated {
        scope: ScopeId::known(id.clone()),
        kind: kind.into(),
        parents: parents.into_iter().map(ScopeId::known).collect(),
        title: id,
        mailbox: None,
        by: by.clone(),
        at,
    };
    let mut world = vec![scope("EGI".into(), "project", vec![])];
    world.extend((0..NGIS).map(|n| scope(format!("NGI_{n}"), "ngi", vec!["EGI".into()])));
    world.extend((0..SITES).map(|s| scope(format!("SITE_{s}"), "site", vec![format!("NGI_{}", s % NGIS)])));
    world.extend((0..USERS).map(|u| Event::UserRegistered {
        user: UserId::known(format!("user-{u}")),
        email: None,
        name: None,
        at,
    }));
    write(store, world.into_iter().map(append).collect()).await;
    let roles = ["site-administrator", "site-security-officer", "site-operations-deputy-manager"];
    let mut n = 0u64;
    while (store.head().await.unwrap().position as usize) < events {
        let mut batch = Vec::new();
        for _ in 0..2_000 {
            n += 1;
            let (request, grant) = (Uuid::from_u64_pair(1, n), Uuid::from_u64_pair(2, n));
            let (user, role, scope) =
                (format!("user-{}", n % USERS), roles[(n % 3) as usize].to_string(), format!("SITE_{}", n % SITES));
            batch.push(appends(vec![
                Event::RoleRequested {
                    request,
                    user: UserId::known(user.clone()),
                    role: role.clone(),
                    scope: ScopeId::known(scope.clone()),
                    reason: "I run the storage elements of this site.".into(),
                    duration: None,
                    at,
                    expires_at: at + chrono::Duration::days(30),
                    extends: None,
                    starts_at: None,
                    requested_by: None,
                    answers: Default::default(),
                    ticket: None,
                },
                Event::RequestApproved {
                    request,
                    by: by.clone(),
                    token_creator: None,
                    on_behalf_of: None,
                    comment: "welcome".into(),
                    stage: 0,
                    stage_name: "approval".into(),
                    approvals_in_stage: 1,
                    quorum: 1,
                    completes_stage: true,
                    completes_request: true,
                    at,
                    duration: None,
                },
            ]));
            let mut granted = vec![Event::RoleGranted {
                grant,
                subject: Subject::User(UserId::known(user)),
                role,
                scope: ScopeId::known(scope),
                origin: GrantOrigin::Request { request },
                by: by.clone(),
                starts_at: at,
                ends_at: None,
                on_behalf_of: None,
            }];
            if n.is_multiple_of(3) {
                granted.push(Event::GrantRevoked {
                    grant,
                    by: by.clone(),
                    reason: "left".into(),
                    at,
                    on_behalf_of: None,
                });
            }
            batch.push(appends(granted));
        }
        write(store, batch).await;
    }
    let written = store.head().await.unwrap().position;
    println!("populated {written} events in {:.0} s\n", started.elapsed().as_secs_f64());
}

/// Appends concurrently, so that the writer commits them in large batches.
async fn write(store: &EventStore, requests: Vec<AppendRequest>) {
    for chunk in requests.chunks(512) {
        for outcome in join_all(chunk.iter().cloned().map(|request| store.append(request))).await {
            outcome.unwrap();
        }
    }
}
