//! Who is told of what: the mail each event causes, computed from the state right after the event.
//! Pure (no I/O): the application's planner calls it for every event the writer folds, and the
//! result goes into the outbox in the event's transaction; the mail module renders and sends it later.
//!
//! - A new request, and a reminder: every person who may decide it by a rule (never the requester,
//!   not people who may decide only because they are admins), the mailboxes of the deciding roles
//!   (a template takes the scope the role is held on) and of the scope; when no person may decide
//!   it, the workflow's administrators' mailbox too.
//! - An escalation: the stage's escalation deciders (and their delegates) and their roles' mailboxes.
//!   Delegates are among the deciders of a request, so they get the mail their delegators would.
//! - Approval, rejection, cancellation, expiry: the requester and the scope's mailbox.
//! - Revocation, grant expiry, a grant ending soon: the holder (a team's members) and the scope's mailbox.
//! - A review started, and its half-way reminder: each reviewer once, listing their (undecided) items.
//! - A digest: to its reader, listing what they may decide, their review items and their grants
//!   ending soon. People who want a digest (`daily`) get no mail about new requests, reminders to
//!   decide or review, or grants ending soon; mailboxes still get each mail.
//! - A person asked to decide gets a mail of their own naming them (`decider`), from which the
//!   mail module makes their Approve and Reject links; mailboxes never get links.
//!
//! One mail per address per event, however many ways the address is reached.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::{Event, Grant, GrantOrigin, OnNoAnswer, Request, RequestId, ReviewId, State, Subject, UserId};
use crate::workflow::{Place, Workflow, GLOBAL};

/// One mail to send: its kind (which template), recipient and the values the template uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: &'static str,
    pub recipient: String,
    pub context: Value,
}

/// The mail an event causes. `state` already includes the event.
pub fn notices(state: &State, workflow: &Workflow, event: &Event) -> Vec<Notice> {
    let (kind, recipients, context) = match event {
        Event::RoleRequested { request, at, .. } => {
            return decider_notices(state, workflow, request, "request_created", *at)
        }
        Event::DecidersReminded { request, at } => {
            return decider_notices(state, workflow, request, "deciders_reminded", *at)
        }
        Event::RequestEscalated { request, at, .. } => {
            let Some(request) = state.request(request) else { return Vec::new() };
            ("request_escalated", escalation_addresses(state, workflow, request, *at), request_context(state, request))
        }
        Event::RequestApproved { request, completes_request: true, by, comment, .. } => {
            decided(state, request, "request_approved", json!({"decider": by.user(), "comment": comment}))
        }
        Event::RequestRejected { request, by, reason, .. } => {
            decided(state, request, "request_rejected", json!({"decider": by.user(), "comment": reason}))
        }
        Event::RequestCancelled { request, .. } => decided(state, request, "request_cancelled", json!({})),
        Event::RequestExpired { request, .. } => decided(state, request, "request_expired", json!({})),
        Event::GrantRevoked { grant, by, reason, .. } => {
            ended(state, grant, "grant_revoked", json!({"decider": by.user(), "comment": reason}), false)
        }
        Event::GrantExpired { grant, .. } => ended(state, grant, "grant_expired", json!({}), false),
        Event::GrantEndingSoon { grant, .. } => ended(state, grant, "grant_ending", json!({}), true),
        Event::ReviewStarted { review, .. } => return review_notices(state, review, "review_started", false),
        Event::ReviewersReminded { review, .. } => return review_notices(state, review, "review_reminder", true),
        Event::DigestSent { user, day, at } => return digest_notice(state, workflow, user, *day, *at),
        _ => return Vec::new(),
    };
    recipients.into_iter().map(|recipient| Notice { kind, recipient, context: context.clone() }).collect()
}

type Addressed = (&'static str, BTreeSet<String>, Value);

fn decided(state: &State, request: &RequestId, kind: &'static str, extra: Value) -> Addressed {
    let Some(request) = state.request(request) else { return (kind, BTreeSet::new(), Value::Null) };
    let mut to = BTreeSet::new();
    add(&mut to, user_email(state, &request.user));
    // A request made on someone's behalf: who asked hears the outcome too.
    add(&mut to, request.requested_by.as_deref().and_then(|by| user_email(state, by)));
    add(&mut to, scope_mailbox(state, &request.scope));
    (kind, to, merge(request_context(state, request), extra))
}

/// `in_digest`: the mail is one a digest lists, so people who want a digest do not get it.
fn ended(state: &State, grant: &uuid::Uuid, kind: &'static str, extra: Value, in_digest: bool) -> Addressed {
    let Some(grant) = state.grant(grant) else { return (kind, BTreeSet::new(), Value::Null) };
    let mut to = BTreeSet::new();
    let holders: Vec<&UserId> = match &grant.subject {
        Subject::User(user) => vec![user],
        Subject::Team(team) => state.team(team).into_iter().flat_map(|t| t.members.iter()).collect(),
    };
    for holder in holders.into_iter().filter(|holder| !(in_digest && state.prefers_digest(holder))) {
        add(&mut to, user_email(state, holder));
    }
    add(&mut to, scope_mailbox(state, &grant.scope));
    (kind, to, merge(grant_context(state, grant), extra))
}

/// Asking for a decision: each person gets a mail naming them as its `decider`, the mailboxes one without.
fn decider_notices(
    state: &State,
    workflow: &Workflow,
    request: &RequestId,
    kind: &'static str,
    now: DateTime<Utc>,
) -> Vec<Notice> {
    let Some(request) = state.request(request) else { return Vec::new() };
    let context = request_context(state, request);
    decider_addresses(state, workflow, request, now)
        .into_iter()
        .map(|(recipient, person)| {
            let context = match person {
                Some(user) => merge(context.clone(), json!({"decider": user})),
                None => context.clone(),
            };
            Notice { kind, recipient, context }
        })
        .collect()
}

/// The people (with the address's person) and role mailboxes (`None`) to ask for a decision,
/// never the requester's own address. People who want a digest are left out; an address that is
/// also a mailbox counts as a mailbox.
fn decider_addresses(
    state: &State,
    workflow: &Workflow,
    request: &Request,
    now: DateTime<Utc>,
) -> BTreeMap<String, Option<UserId>> {
    let mut people = BTreeMap::new();
    let deciders: Vec<_> =
        state.deciders_for(workflow, &request.id, now).into_iter().filter(|d| !d.admin_only).collect();
    for decider in deciders.iter().filter(|d| !state.prefers_digest(&d.user)) {
        if let Some(address) = normalized(user_email(state, &decider.user)) {
            people.entry(address).or_insert_with(|| Some(decider.user.clone()));
        }
    }
    let mut to = BTreeSet::new();
    let kind = state.scope(&request.scope).map(|s| s.kind.as_str()).unwrap_or_default();
    if let Some(rule) = workflow.rule_for(&request.role, kind) {
        for decider in &rule.deciders {
            let Some(role) = state.role(&decider.role) else { continue };
            for anchor in places(state, &request.scope, decider.place) {
                add(&mut to, role.mailbox_for(&anchor));
            }
        }
    }
    add(&mut to, scope_mailbox(state, &request.scope));
    if deciders.is_empty() {
        add(&mut to, workflow.settings.admin_mailbox.clone());
    }
    people.extend(to.into_iter().map(|mailbox| (mailbox, None)));
    for concerned in std::iter::once(&request.user).chain(&request.requested_by) {
        if let Some(own) = normalized(user_email(state, concerned)) {
            people.remove(&own);
        }
    }
    people
}

/// Those whom an escalation adds: the escalation deciders of the stage (and their delegates),
/// never admins only, and the mailboxes of the escalation roles; never the requester.
fn escalation_addresses(state: &State, workflow: &Workflow, request: &Request, now: DateTime<Utc>) -> BTreeSet<String> {
    let mut to = BTreeSet::new();
    for decider in state.deciders_for(workflow, &request.id, now).iter().filter(|d| d.escalation && !d.admin_only) {
        add(&mut to, user_email(state, &decider.user));
    }
    if let Some(stage) = state.stages_of(workflow, request).get(request.stage as usize) {
        for decider in &stage.escalation {
            let Some(role) = state.role(&decider.role) else { continue };
            for anchor in places(state, &request.scope, decider.place) {
                add(&mut to, role.mailbox_for(&anchor));
            }
        }
    }
    if let Some(own) = user_email(state, &request.user) {
        to.remove(&own);
    }
    to
}

/// The scopes where a deciding role at `place` is held, relative to `scope`.
fn places(state: &State, scope: &str, place: Place) -> Vec<String> {
    match place {
        Place::Same => vec![scope.to_string()],
        Place::Parent => {
            state.scope(scope).map(|s| s.parents.iter().map(ToString::to_string).collect()).unwrap_or_default()
        }
        Place::Ancestor => state.ancestors_of(scope).iter().map(ToString::to_string).collect(),
        Place::Global => vec![GLOBAL.to_string()],
    }
}

fn add(to: &mut BTreeSet<String>, address: Option<String>) {
    if let Some(address) = normalized(address) {
        to.insert(address);
    }
}

/// An address as mail is sent to it: trimmed, lowercase, and only if it is one.
fn normalized(address: Option<String>) -> Option<String> {
    address.map(|a| a.trim().to_lowercase()).filter(|a| a.contains('@'))
}

fn user_email(state: &State, user: &str) -> Option<String> {
    state.user(user).and_then(|u| u.email.clone())
}

fn scope_mailbox(state: &State, scope: &str) -> Option<String> {
    state.scope(scope).and_then(|s| s.mailbox.clone())
}

fn display_name(state: &State, user: &str) -> String {
    state.user(user).and_then(|u| u.name.clone()).unwrap_or_else(|| user.to_string())
}

fn request_context(state: &State, request: &Request) -> Value {
    json!({
        "request_id": request.id.to_string(),
        "requester": request.user,
        "requester_name": display_name(state, &request.user),
        "role": request.role,
        "role_title": state.role(&request.role).map_or(request.role.as_str(), |r| r.title.as_str()),
        "scope": request.scope,
        "scope_title": state.scope(&request.scope).map_or(request.scope.as_str(), |s| s.title.as_str()),
        "reason": request.reason,
        "expires_at": request.expires_at.to_rfc3339(),
    })
}

fn grant_context(state: &State, grant: &Grant) -> Value {
    let holder = match &grant.subject {
        Subject::User(user) => display_name(state, user),
        Subject::Team(team) => format!("team {team}"),
    };
    json!({
        "grant_id": grant.id.to_string(),
        "request_id": match &grant.origin {
            GrantOrigin::Request { request } => request.to_string(),
            _ => String::new(),
        },
        "holder": holder,
        "role": grant.role,
        "role_title": state.role(&grant.role).map_or(grant.role.as_str(), |r| r.title.as_str()),
        "scope": grant.scope,
        "scope_title": state.scope(&grant.scope).map_or(grant.scope.as_str(), |s| s.title.as_str()),
        "ends_at": grant.ends_at.map(|end| end.to_rfc3339()).unwrap_or_default(),
    })
}

fn merge(base: Value, extra: Value) -> Value {
    let mut merged: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        merged.insert(key, if value.is_null() { Value::String(String::new()) } else { value });
    }
    Value::Object(merged)
}

/// How many items a review mail lists; the rest are counted.
const LISTED_ITEMS: usize = 50;

/// One mail per reviewer address, listing the items they review (only undecided ones for a reminder).
fn review_notices(state: &State, review: &ReviewId, kind: &'static str, undecided_only: bool) -> Vec<Notice> {
    let Some(review) = state.review(review) else { return Vec::new() };
    let mut items_by_address: std::collections::BTreeMap<String, Vec<uuid::Uuid>> = Default::default();
    for item in review.items.values().filter(|item| !undecided_only || item.decision.is_none()) {
        let mut to = BTreeSet::new();
        // The reminder is what a digest lists: people who want one get that instead.
        for reviewer in item.reviewers().filter(|reviewer| !(undecided_only && state.prefers_digest(reviewer))) {
            add(&mut to, user_email(state, reviewer));
        }
        for address in to {
            items_by_address.entry(address).or_default().push(item.grant);
        }
    }
    let on_no_answer_text = match review.on_no_answer {
        OnNoAnswer::Keep => "kept",
        OnNoAnswer::Revoke => "revoked",
    };
    let base = json!({
        "review_id": review.id.to_string(),
        "title": review.title,
        "scope": review.scope,
        "scope_title": state.scope(&review.scope).map_or(review.scope.as_str(), |s| s.title.as_str()),
        "starter": review.started_by.user().map_or("the server".to_string(), |user| display_name(state, user)),
        "due_at": review.due_at.to_rfc3339(),
        "on_no_answer_text": on_no_answer_text,
    });
    items_by_address
        .into_iter()
        .map(|(recipient, grants)| {
            let mut lines: Vec<String> = grants
                .iter()
                .take(LISTED_ITEMS)
                .filter_map(|grant| state.grant(grant))
                .map(|grant| {
                    let context = grant_context(state, grant);
                    format!(
                        "- {} on {} for {} (item {})",
                        context["role_title"].as_str().unwrap_or_default(),
                        grant.scope,
                        context["holder"].as_str().unwrap_or_default(),
                        grant.id
                    )
                })
                .collect();
            if grants.len() > LISTED_ITEMS {
                lines.push(format!("… and {} more", grants.len() - LISTED_ITEMS));
            }
            let extra = json!({"count": grants.len(), "items": lines.join("\n")});
            Notice { kind, recipient, context: merge(base.clone(), extra) }
        })
        .collect()
}

/// The digest of `day`: one mail to its reader listing, at `at`, what they may decide, their
/// review items and their grants ending soon (each list cut at the items a review mail lists).
fn digest_notice(state: &State, workflow: &Workflow, user: &UserId, day: NaiveDate, at: DateTime<Utc>) -> Vec<Notice> {
    let Some(recipient) = normalized(user_email(state, user)) else { return Vec::new() };
    let items = state.digest_items(workflow, user, at);
    if items.is_empty() {
        return Vec::new();
    }
    let requests = listed(items.requests.iter().filter_map(|id| state.request(id)).map(|request| {
        let context = request_context(state, request);
        format!(
            "- {} asks for {} on {} (request {}, expires {})",
            context["requester_name"].as_str().unwrap_or_default(),
            context["role_title"].as_str().unwrap_or_default(),
            context["scope_title"].as_str().unwrap_or_default(),
            request.id,
            request.expires_at.to_rfc3339()
        )
    }));
    let review_items = listed(items.review_items.iter().filter_map(|(review, item)| {
        let (review, grant) = (state.review(review)?, state.grant(item)?);
        let context = grant_context(state, grant);
        Some(format!(
            "- {} on {} for {} (review \"{}\", item {}, due {})",
            context["role_title"].as_str().unwrap_or_default(),
            grant.scope,
            context["holder"].as_str().unwrap_or_default(),
            review.title,
            grant.id,
            review.due_at.to_rfc3339()
        ))
    }));
    let grants_ending = listed(items.grants_ending.iter().filter_map(|id| state.grant(id)).map(|grant| {
        let context = grant_context(state, grant);
        format!(
            "- {} on {} ends {} (grant {})",
            context["role_title"].as_str().unwrap_or_default(),
            context["scope_title"].as_str().unwrap_or_default(),
            context["ends_at"].as_str().unwrap_or_default(),
            grant.id
        )
    }));
    let context = json!({
        "reader": display_name(state, user),
        "day": day.to_string(),
        "count": items.requests.len() + items.review_items.len() + items.grants_ending.len(),
        "request_count": items.requests.len(),
        "requests": requests,
        "review_count": items.review_items.len(),
        "review_items": review_items,
        "grant_count": items.grants_ending.len(),
        "grants_ending": grants_ending,
    });
    vec![Notice { kind: "digest", recipient, context }]
}

/// Lines of a list, the first `LISTED_ITEMS` of them and the rest counted; "none" when empty.
fn listed(lines: impl Iterator<Item = String>) -> String {
    let mut lines: Vec<String> = lines.collect();
    if lines.is_empty() {
        return "none".to_string();
    }
    if lines.len() > LISTED_ITEMS {
        let more = lines.len() - LISTED_ITEMS;
        lines.truncate(LISTED_ITEMS);
        lines.push(format!("… and {more} more"));
    }
    lines.join("\n")
}
