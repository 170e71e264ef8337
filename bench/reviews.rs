//! Access-review benchmark: prints figures, judges nothing. Run with `cargo bench --bench reviews`
//! (see bench/README.md). In memory, under the EGI workflow: a project over NGIs over sites holding
//! `--grants` grants; starting a review of the whole project (decide `StartReview`, then fold
//! `ReviewStarted`, which derives one item per grant with its reviewers), beside the baseline of
//! folding the same number of `RoleGranted` events into a fresh state, with time and peak memory.

use std::{collections::HashSet, time::Instant};

use clap::Parser;
use roleledger::{
    domain::{
        decide, Actor, Command, Context, Event, GrantOrigin, IdSource, OnNoAnswer, ReviewDue, ScopeId, State, Subject,
        UserId,
    },
    workflow::{Duration, Workflow},
};

#[derive(Parser)]
struct Options {
    /// Grants under review.
    #[arg(long, default_value_t = 100_000)]
    grants: u64,
    /// Grants per site (sites = grants / this).
    #[arg(long, default_value_t = 100)]
    per_site: u64,
    // `cargo bench` passes `--bench`; accept and ignore it.
    #[arg(long, hide = true)]
    bench: bool,
}

const SITES_PER_NGI: u64 = 10;
const SITE_ROLES: [&str; 4] =
    ["site-operations-manager", "site-security-officer", "site-operations-deputy-manager", "site-administrator"];

fn kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or(0)
}

/// Runs `work`, answering its result, its time in ms and the peak resident memory it added (MiB).
fn measured<R>(work: impl FnOnce() -> R) -> (R, f64, f64) {
    let _ = std::fs::write("/proc/self/clear_refs", "5"); // resets VmHWM
    let before = kib("VmRSS:");
    let started = Instant::now();
    let result = work();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak = kib("VmHWM:").saturating_sub(before) as f64 / 1024.0;
    (result, ms, peak)
}

fn main() {
    let options = Options::parse();
    let workflow = Workflow::load("egi").expect("the built-in EGI workflow");
    let now = chrono::Utc::now();
    let by = Actor::CommandLine;
    let sites = options.grants.div_ceil(options.per_site);
    let ngis = sites.div_ceil(SITES_PER_NGI);
    let scope = |id: String, kind: &str, parent: String| Event::ScopeCreated {
        scope: ScopeId::known(id.clone()),
        kind: kind.into(),
        parents: vec![ScopeId::known(parent)],
        title: id,
        mailbox: None,
        by: by.clone(),
        at: now,
    };
    let grant = |n: u64, user: String, role: &str, on: String| Event::RoleGranted {
        grant: uuid::Uuid::from_u64_pair(1, n),
        subject: Subject::User(UserId::known(user)),
        role: role.into(),
        scope: ScopeId::known(on),
        origin: GrantOrigin::Default,
        by: by.clone(),
        starts_at: now,
        ends_at: None,
        on_behalf_of: None,
    };
    let mut tree = vec![scope("EGI".into(), "project", "global".into())];
    let mut managers = Vec::new();
    for ngi in 0..ngis {
        tree.push(scope(format!("NGI_{ngi}"), "ngi", "EGI".into()));
        managers.push(grant(u64::MAX - ngi, format!("ngim{ngi}"), "ngi-operations-manager", format!("NGI_{ngi}")));
    }
    for site in 0..sites {
        tree.push(scope(format!("SITE_{site}"), "site", format!("NGI_{}", site / SITES_PER_NGI)));
    }
    // Each site: a manager, a security officer and a deputy (who review the site's grants), the
    // rest site administrators; each grant to its own user.
    let grants: Vec<Event> = (0..options.grants)
        .map(|n| {
            let (site, index) = (n / options.per_site, n % options.per_site);
            let role = SITE_ROLES[(index as usize).min(SITE_ROLES.len() - 1)];
            grant(n, format!("u{n}"), role, format!("SITE_{site}"))
        })
        .collect();
    let mut base = State::new(&workflow);
    for event in tree.iter().chain(&managers) {
        base.apply(&workflow, event);
    }

    println!(
        "{} grants on {sites} sites under {ngis} NGIs under one project; a review of the whole project.",
        options.grants
    );
    println!();
    // Baseline: the grants themselves folded into the state.
    let (state, fold_ms, fold_peak) = measured(|| {
        let mut state = base.clone();
        for event in &grants {
            state.apply(&workflow, event);
        }
        state
    });
    drop(base);
    let command = Command::StartReview {
        scope: ScopeId::known("EGI"),
        roles: None,
        due: ReviewDue::After(Duration::from_seconds(14 * 86_400).expect("a positive duration")),
        on_no_answer: OnNoAnswer::Revoke,
        title: None,
    };
    let context = Context::new(by.clone(), now, IdSource::sequence(7));
    let (events, decide_ms, decide_peak) =
        measured(|| decide(&state, &workflow, &context, command).expect("the review starts"));
    let encoded = serde_json::to_vec(&events[0]).expect("an event encodes").len();
    let mut state = state;
    let ((), start_ms, start_peak) = measured(|| {
        for event in &events {
            state.apply(&workflow, event);
        }
    });
    let review = state.reviews().next().expect("the review");
    let lists: HashSet<*const UserId> = review.items.values().map(|item| item.pool().as_ptr()).collect();
    let reviewers: usize = review.items.values().map(|item| item.reviewers().count()).sum();

    println!("| step | ms | peak memory added, MiB | per grant, µs |");
    println!("|---|---:|---:|---:|");
    let per_grant = |ms: f64| ms * 1000.0 / options.grants as f64;
    println!(
        "| fold of {} `RoleGranted` (baseline) | {fold_ms:.1} | {fold_peak:.1} | {:.2} |",
        options.grants,
        per_grant(fold_ms)
    );
    println!("| decide `StartReview` | {decide_ms:.1} | {decide_peak:.1} | {:.2} |", per_grant(decide_ms));
    println!(
        "| fold `ReviewStarted` (items and reviewers derived) | {start_ms:.1} | {start_peak:.1} | {:.2} |",
        per_grant(start_ms)
    );
    println!();
    println!(
        "The review: {} items, {reviewers} reviewers listed, from {} shared reviewer pools; `ReviewStarted` is {encoded} bytes of JSON. \
         Review start / baseline fold: time {:.2}, memory {:.2}.",
        review.items.len(),
        lists.len(),
        (decide_ms + start_ms) / fold_ms,
        (decide_peak + start_peak) / fold_peak.max(0.1),
    );
}
