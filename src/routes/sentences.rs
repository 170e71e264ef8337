//! Events as sentences for people ("bob approved alice's request for site-administrator on
//! KIT"): the audit page and the request page show these, with the recorded JSON folded beside.
//! Requests and grants are named from the state as it stands now (their role, scope and holder
//! never change).

use crate::{
    domain::{Actor, Event, GrantId, GrantOrigin, MailFrequency, RequestId, State, Subject},
    store::RecordedEvent,
};

fn actor(by: &Actor) -> String {
    match by {
        Actor::User(user) => user.to_string(),
        Actor::CommandLine => "the command line".into(),
    }
}

fn holder(subject: &Subject) -> String {
    match subject {
        Subject::User(user) => user.to_string(),
        Subject::Team(team) => format!("team {team}"),
    }
}

/// "alice's request for site-administrator on KIT", or "request {id}" when the state has none.
fn request(state: &State, id: &RequestId) -> String {
    match state.request(id) {
        Some(request) => format!("{}'s request for {} on {}", request.user, request.role, request.scope),
        None => format!("request {id}"),
    }
}

/// "alice's site-administrator on KIT", or "grant {id}".
fn grant(state: &State, id: &GrantId) -> String {
    match state.grant(id) {
        Some(grant) => format!("{}'s {} on {}", holder(&grant.subject), grant.role, grant.scope),
        None => format!("grant {id}"),
    }
}

/// " for bob" when someone decided on another's behalf (as their delegate).
fn behalf(on_behalf_of: &Option<crate::domain::UserId>) -> String {
    on_behalf_of.as_ref().map(|user| format!(" for {user}")).unwrap_or_default()
}

/// The event in one sentence; a recorded event that is no domain event says its type.
pub(crate) fn sentence(state: &State, recorded: &RecordedEvent) -> String {
    match Event::from_parts(&recorded.event_type, &recorded.data) {
        Ok(event) => of(state, &event),
        Err(_) => format!("{} (not a domain event)", recorded.event_type),
    }
}

fn of(state: &State, event: &Event) -> String {
    match event {
        Event::UserRegistered { user, .. } => format!("{user} signed in for the first time"),
        Event::UserProfileChanged { user, .. } => format!("{user}'s name or address changed"),
        Event::TokenRolesSynced { user, .. } => format!("{user}'s roles from their login token were applied"),
        Event::ScopeCreated { scope, kind, parents, by, .. } => {
            let parents: Vec<&str> = parents.iter().map(|parent| parent.as_str()).collect();
            let under = if parents.is_empty() { String::new() } else { format!(" under {}", parents.join(", ")) };
            format!("{} created the {kind} {scope}{under}", actor(by))
        }
        Event::ScopeDeleted { scope, by, .. } => format!("{} deleted the scope {scope}", actor(by)),
        Event::RoleDefined { role, by, .. } => format!("{} defined the role {}", actor(by), role.id),
        Event::RoleEdited { role, by, .. } => format!("{} edited the role {}", actor(by), role.id),
        Event::RoleDeleted { role, by, .. } => format!("{} deleted the role {role}", actor(by)),
        Event::TeamCreated { team, by, .. } => format!("{} created the team {team}", actor(by)),
        Event::TeamMemberAdded { team, user, by, .. } => format!("{} added {user} to the team {team}", actor(by)),
        Event::TeamMemberRemoved { team, user, by, .. } => {
            format!("{} removed {user} from the team {team}", actor(by))
        }
        Event::RoleRequested { user, role, scope, requested_by, extends, .. } => {
            let asker = requested_by.as_ref().map(|by| format!("{by} asked, for {user},")).unwrap_or(user.to_string());
            match extends {
                Some(grant) => format!("{asker} asked to extend {}", self::grant(state, grant)),
                None => format!("{asker} requested {role} on {scope}"),
            }
        }
        Event::RequestApproved { request, by, on_behalf_of, completes_request, stage_name, .. } => {
            let stage = if *completes_request { String::new() } else { format!(" (stage {stage_name})") };
            format!("{}{} approved {}{stage}", actor(by), behalf(on_behalf_of), self::request(state, request))
        }
        Event::RequestRejected { request, by, on_behalf_of, .. } => {
            format!("{}{} rejected {}", actor(by), behalf(on_behalf_of), self::request(state, request))
        }
        Event::RequestCancelled { request, by, .. } => {
            format!("{} cancelled {}", actor(by), self::request(state, request))
        }
        Event::RequestExpired { request, .. } => format!("{} expired undecided", self::request(state, request)),
        Event::RoleGranted { subject, role, scope, origin, by, .. } => {
            let how = match origin {
                GrantOrigin::Request { .. } => "on request",
                GrantOrigin::Assignment { .. } => "directly",
                GrantOrigin::Creator => "as the scope's creator",
                GrantOrigin::Default => "by default",
                GrantOrigin::Token => "from a login token",
            };
            format!("{} received {role} on {scope} {how} (by {})", holder(subject), actor(by))
        }
        Event::GrantRevoked { grant, by, on_behalf_of, reason, .. } => {
            format!("{}{} revoked {}: {reason}", actor(by), behalf(on_behalf_of), self::grant(state, grant))
        }
        Event::GrantExpired { grant, .. } => format!("{} ended", self::grant(state, grant)),
        Event::DecidersReminded { request, .. } => {
            format!("the deciders of {} were reminded", self::request(state, request))
        }
        Event::GrantEndingSoon { grant, ends_at, .. } => {
            format!("{} was told that it ends on {}", self::grant(state, grant), ends_at.format("%Y-%m-%d"))
        }
        Event::ApiTokenCreated { user, name, by, .. } => {
            format!("{} made the API token \"{name}\" for {user}", actor(by))
        }
        Event::ApiTokenRevoked { token, by, .. } => format!("{} revoked the API token {token}", actor(by)),
        Event::RequestEscalated { request, stage, .. } => {
            format!("{} was escalated at stage {}", self::request(state, request), stage.saturating_add(1))
        }
        Event::DelegationGranted { from, to, scope, until, .. } => {
            let place = scope.as_ref().map(|scope| format!(" on {scope}")).unwrap_or_default();
            format!("{from} delegated their decisions{place} to {to} until {}", until.format("%Y-%m-%d"))
        }
        Event::DelegationEnded { delegation, by, early, .. } => {
            let when = if *early { "early" } else { "at its end" };
            format!("the delegation {delegation} ended {when} (by {})", actor(by))
        }
        Event::GrantExtended { grant, ends_at, by, .. } => {
            format!("{} extended {} to {}", actor(by), self::grant(state, grant), ends_at.format("%Y-%m-%d"))
        }
        Event::ReviewStarted { title, scope, due_at, by, .. } => {
            format!("{} started the review \"{title}\" of {scope}, due {}", actor(by), due_at.format("%Y-%m-%d"))
        }
        Event::ReviewItemDecided { item, decision, by, on_behalf_of, .. } => {
            let verb = match decision {
                crate::domain::ReviewDecision::Keep => "kept",
                crate::domain::ReviewDecision::Revoke => "chose to revoke",
            };
            format!("{}{} {verb} {} in a review", actor(by), behalf(on_behalf_of), self::grant(state, item))
        }
        Event::ReviewClosed { review, by, .. } => format!("{} closed the review {review}", actor(by)),
        Event::ReviewersReminded { review, .. } => format!("the reviewers of {review} were reminded"),
        Event::MailPreferencesSet { user, mail, digest_hour, .. } => match mail {
            MailFrequency::Each => format!("{user} chose to get each mail"),
            MailFrequency::Daily => format!("{user} chose one digest a day, from {digest_hour}:00 UTC"),
        },
        Event::DigestSent { user, day, .. } => format!("{user}'s digest of {day} was sent"),
        Event::WebhookCreated { url, by, .. } => format!("{} subscribed the webhook {url}", actor(by)),
        Event::WebhookDeleted { webhook, by, .. } => format!("{} deleted the webhook {webhook}", actor(by)),
    }
}
