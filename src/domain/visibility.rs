//! Who sees what (SPEC "Visibility"): apart from auditors and admins, a person sees a request or a
//! grant only if it is theirs (a team's, for its members) or they may decide or revoke it.

use super::grant::Grant;
use super::request::Request;
use super::state::State;
use super::types::{Actor, Subject};
use crate::workflow::{Action, Workflow};
use chrono::{DateTime, Utc};

/// What a user may do beyond their own things, from the roles held on `global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub admin: bool,
    pub auditor: bool,
}

impl Standing {
    /// Administrators and auditors read everything.
    pub fn reads_everything(self) -> bool {
        self.admin || self.auditor
    }

    /// Auditors who are not also administrators change nothing (SPEC "Users").
    pub fn changes_nothing(self) -> bool {
        self.auditor && !self.admin
    }
}

/// A person as a viewer of requests and grants at one moment. Built once per read, so that a list
/// judges the viewer's standing once, not once per item.
pub struct Viewer {
    actor: Actor,
    reads_everything: bool,
    now: DateTime<Utc>,
}

impl Viewer {
    pub fn new(state: &State, actor: Actor, now: DateTime<Utc>) -> Viewer {
        let reads_everything = match &actor {
            Actor::User(user) => state.reads_everything(user, now),
            Actor::CommandLine => true,
        };
        Viewer { actor, reads_everything, now }
    }

    fn is_me(&self, user: &str) -> bool {
        self.actor.is_user(user)
    }

    pub fn sees_request(&self, state: &State, workflow: &Workflow, request: &Request) -> bool {
        self.actor.user().is_some_and(|user| request.concerns(user))
            || self.reads_everything
            || state.request_authority(workflow, &self.actor, request, Action::Reject, self.now).is_some()
    }

    pub fn sees_grant(&self, state: &State, workflow: &Workflow, grant: &Grant) -> bool {
        let own = match &grant.subject {
            Subject::User(user) => self.is_me(user),
            Subject::Team(team) => state.team(team).is_some_and(|t| t.members.iter().any(|member| self.is_me(member))),
        };
        own || self.reads_everything
            || state.authority(workflow, &self.actor, &grant.role, &grant.scope, Action::Revoke, self.now).is_some()
    }
}
