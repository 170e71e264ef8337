//! `check` throughput on 100,000 grants over 10,000 scopes four levels deep, and what a daily
//! digest's list costs there with 10,000 pending requests. Run with
//! `cargo test --release -- --ignored --nocapture check_throughput` (or `digest_items_cost`).

use crate::domain::*;
use std::time::Instant;

/// A small deterministic generator (no dependency needed for a benchmark).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// 10,000 scopes four levels deep (10 departments, labs 10 below each scope of the level above)
/// and 100,000 grants of 10,000 users; the scopes by level, and the generator where it stands.
fn lab_state() -> (crate::workflow::Workflow, State, Vec<Vec<String>>, Lcg) {
    let workflow = super::lab_workflow();
    let now = scenarios::base_time();
    let mut state = State::new(&workflow);
    let by = Actor::CommandLine;
    // Levels: 10 departments, then labs 10 below each scope of the level above, up to 10,000 scopes.
    let mut levels: Vec<Vec<String>> = vec![(0..10).map(|i| format!("d{i}")).collect()];
    for id in &levels[0] {
        let event = Event::ScopeCreated {
            scope: ScopeId::known(id.clone()),
            kind: "dept".into(),
            parents: vec![ScopeId::known("global")],
            title: id.clone(),
            mailbox: None,
            by: by.clone(),
            at: now,
        };
        state.apply(&workflow, &event);
    }
    let mut total = 10;
    while total < 10_000 {
        let mut next = Vec::new();
        for parent in levels.last().unwrap().clone() {
            for i in 0..10 {
                if total == 10_000 {
                    break;
                }
                let id = format!("{parent}-{i}");
                let event = Event::ScopeCreated {
                    scope: ScopeId::known(id.clone()),
                    kind: "lab".into(),
                    parents: vec![ScopeId::known(parent.clone())],
                    title: id.clone(),
                    mailbox: None,
                    by: by.clone(),
                    at: now,
                };
                state.apply(&workflow, &event);
                next.push(id);
                total += 1;
            }
        }
        levels.push(next);
    }
    assert_eq!(levels.len(), 4, "four levels deep");
    let all_scopes: Vec<&String> = levels.iter().flatten().collect();
    let lab_roles = ["operator", "senior", "inspector", "safety-officer", "lab-owner"];
    let mut random = Lcg(7);
    for n in 0..100_000u64 {
        let user = format!("u{}", n % 10_000);
        let (role, scope) = match random.below(10) {
            0 => ("dept-head", levels[0][random.below(10)].clone()),
            _ => (lab_roles[random.below(lab_roles.len())], levels[1 + random.below(3)][0].clone()),
        };
        let scope =
            if role == "dept-head" { scope } else { all_scopes[10 + random.below(all_scopes.len() - 10)].clone() };
        let event = Event::RoleGranted {
            grant: uuid::Uuid::from_u64_pair(1, n),
            subject: Subject::User(UserId::known(user)),
            role: role.into(),
            scope: ScopeId::known(scope),
            origin: GrantOrigin::Default,
            by: by.clone(),
            starts_at: now,
            ends_at: None,
            on_behalf_of: None,
        };
        state.apply(&workflow, &event);
    }
    (workflow, state, levels, random)
}

#[test]
#[ignore = "benchmark"]
fn check_throughput() {
    let (_, state, levels, mut random) = lab_state();
    let now = scenarios::base_time();
    let all_scopes: Vec<&String> = levels.iter().flatten().collect();
    let permissions = ["lab.use", "lab.read", "lab.tune:laser", "scope.create", "lab.admin"];
    let queries: Vec<(String, &str, &String)> = (0..100_000)
        .map(|_| {
            (
                format!("u{}", random.below(10_000)),
                permissions[random.below(permissions.len())],
                all_scopes[random.below(all_scopes.len())],
            )
        })
        .collect();
    let rounds = 10;
    let started = Instant::now();
    let mut allowed = 0usize;
    for _ in 0..rounds {
        for (user, permission, scope) in &queries {
            allowed += state.check(user, permission, scope, now).allowed as usize;
        }
    }
    let elapsed = started.elapsed();
    let checks = rounds * queries.len();
    let per_second = checks as f64 / elapsed.as_secs_f64();
    let mut latencies: Vec<u128> = queries
        .iter()
        .map(|(user, permission, scope)| {
            let start = Instant::now();
            std::hint::black_box(state.check(user, permission, scope, now));
            start.elapsed().as_nanos()
        })
        .collect();
    latencies.sort_unstable();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!("check: {checks} checks in {elapsed:?}: {per_second:.0} checks/s, p99 {p99} ns, {allowed} allowed");
    assert!(allowed > 0);
}

#[test]
#[ignore = "benchmark"]
fn digest_items_cost() {
    let (workflow, mut state, levels, _) = lab_state();
    let now = scenarios::base_time();
    // 10,000 pending requests for inspector on the labs right under the departments.
    for n in 0..10_000u64 {
        let event = Event::RoleRequested {
            request: uuid::Uuid::from_u64_pair(2, n),
            user: UserId::known(format!("r{n}")),
            role: "inspector".into(),
            scope: ScopeId::known(levels[1][n as usize % levels[1].len()].clone()),
            reason: "bench".into(),
            duration: None,
            at: now,
            expires_at: now + chrono::Duration::days(7),
            extends: None,
            starts_at: None,
            requested_by: None,
            answers: Default::default(),
            ticket: None,
        };
        state.apply(&workflow, &event);
    }
    // Readers: 100 department heads, who decide the requests under their department.
    let mut readers: Vec<String> = state
        .grants()
        .filter(|g| g.role == "dept-head")
        .filter_map(|g| match &g.subject {
            Subject::User(user) => Some(user.to_string()),
            Subject::Team(_) => None,
        })
        .collect();
    readers.sort();
    readers.dedup();
    readers.truncate(100);
    let started = Instant::now();
    let listed: usize = readers.iter().map(|user| state.digest_items(&workflow, user, now).requests.len()).sum();
    let elapsed = started.elapsed();
    println!(
        "digest_items: {} readers in {elapsed:?} ({:?} each), {listed} requests listed",
        readers.len(),
        elapsed / readers.len() as u32
    );
    assert!(listed > 0);
}
