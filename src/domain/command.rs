//! What actors ask for. Each is decided against the state into events, or refused.

use super::delegation::DelegationId;
use super::preferences::MailPreferences;
use super::review::{OnNoAnswer, ReviewDecision, ReviewDue, ReviewId};
use super::types::{GrantId, RequestId, ScopeId, Subject, TeamId, TokenId, UserId};
use super::webhook::WebhookId;
use crate::workflow::{Duration, Role, RoleId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a request may carry besides role, scope, reason and duration (SPEC part two).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    /// A later start for the grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// The person it is for, when not the one asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// Answers to the role's questions, by question id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// A user seen (e.g. signing in): registers them, or records a changed email or name.
    RegisterUser {
        user: UserId,
        email: Option<String>,
        name: Option<String>,
    },
    /// An administrator registers a person who has not signed in yet (`POST /users`): refused when
    /// the id is already known; their first sign-in keeps the id and fills in the profile.
    PreRegisterUser {
        user: UserId,
        email: Option<String>,
        name: Option<String>,
    },
    /// Like `RegisterUser`, for a user who must already exist.
    UpdateProfile {
        user: UserId,
        email: Option<String>,
        name: Option<String>,
    },
    CreateScope {
        id: ScopeId,
        kind: String,
        parents: Vec<ScopeId>,
        title: String,
        mailbox: Option<String>,
    },
    DeleteScope {
        id: ScopeId,
    },
    RequestRole {
        role: RoleId,
        scope: ScopeId,
        reason: String,
        duration: Option<Duration>,
        /// What SPEC's part two adds: a later start, on someone's behalf, answers, a ticket.
        #[serde(flatten)]
        asked: Asked,
    },
    /// An approval, possibly granting less time than asked (`duration`).
    Approve {
        request: RequestId,
        comment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<Duration>,
    },
    Reject {
        request: RequestId,
        reason: String,
    },
    Cancel {
        request: RequestId,
    },
    /// A direct assignment by a decider or an admin, starting now or at `starts_at`.
    AssignRole {
        subject: Subject,
        role: RoleId,
        scope: ScopeId,
        reason: String,
        duration: Option<Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        starts_at: Option<DateTime<Utc>>,
    },
    Revoke {
        grant: GrantId,
        reason: String,
    },
    /// Issued by the expiry scheduler once the request's time-to-live has passed.
    ExpireRequest {
        request: RequestId,
    },
    /// Issued by the expiry scheduler once the grant's end has passed.
    ExpireGrant {
        grant: GrantId,
    },
    /// Issued by the scheduler: reminds the deciders of a request pending past the reminder interval.
    RemindDeciders {
        request: RequestId,
    },
    /// Issued by the scheduler: tells a grant's holder that it ends within the notice period.
    WarnGrantEnding {
        grant: GrantId,
    },
    DefineRole {
        role: Role,
    },
    DuplicateRole {
        role: RoleId,
    },
    EditRole {
        role: Role,
    },
    DeleteRole {
        role: RoleId,
    },
    CreateTeam {
        id: TeamId,
        title: String,
    },
    AddTeamMember {
        team: TeamId,
        user: UserId,
    },
    /// The roles a login token carries, as claimed (`"manager@P1"`, `"support"` meaning global):
    /// grants them the first time and revokes those a later token no longer carries. Claims of
    /// roles that are not token-grantable, or that cannot be held where claimed, are ignored.
    /// `issued_at` is the token's `iat`: a token issued before the newest one that changed the
    /// user's token roles changes nothing. A token without `iat` syncs whenever it is presented.
    SyncTokenRoles {
        user: UserId,
        claims: Vec<String>,
        #[serde(default)]
        issued_at: Option<DateTime<Utc>>,
    },
    RemoveTeamMember {
        team: TeamId,
        user: UserId,
    },
    /// An API token for `user`; the caller made the secret and passes only its SHA-256 (hex).
    CreateApiToken {
        user: UserId,
        name: String,
        secret_hash: String,
        /// How long it stays valid, from now (`None`: until revoked).
        expires_in: Option<Duration>,
    },
    RevokeApiToken {
        token: TokenId,
    },
    // ----- escalation and delegation -----
    /// Issued by the scheduler once the request has waited its stage's `escalate_after`.
    EscalateRequest {
        request: RequestId,
    },
    /// `to` may decide what the actor may decide by decision rules, until `until` (or for
    /// `duration` from now), within `scope`'s subtree when given.
    Delegate {
        to: UserId,
        #[serde(default)]
        until: Option<DateTime<Utc>>,
        #[serde(default)]
        duration: Option<Duration>,
        #[serde(default)]
        scope: Option<ScopeId>,
        reason: String,
    },
    /// Ends a delegation: early by its delegator or an admin, or by the scheduler at its `until`.
    EndDelegation {
        delegation: DelegationId,
    },
    // ----- extensions -----
    /// The holder asks for their grant to last `duration` longer: a request decided like one for
    /// the grant's role on its scope.
    ExtendGrant {
        grant: GrantId,
        duration: Duration,
        reason: String,
    },
    // ----- access reviews -----
    /// Starts a review of every grant active now on `scope` or below it (of `roles` only, if given).
    StartReview {
        scope: ScopeId,
        roles: Option<Vec<RoleId>>,
        due: ReviewDue,
        on_no_answer: OnNoAnswer,
        title: Option<String>,
    },
    /// A reviewer's answer for one item (its id is the grant's).
    DecideReviewItem {
        review: ReviewId,
        item: GrantId,
        decision: ReviewDecision,
        reason: String,
    },
    /// Closes a review early (its starter or an admin); undecided items follow `on_no_answer`.
    CloseReview {
        review: ReviewId,
    },
    /// Issued by the scheduler at the review's due time: closes it as `CloseReview` does.
    CloseDueReview {
        review: ReviewId,
    },
    /// Issued by the scheduler half-way to the due time: reminds reviewers with undecided items, once.
    RemindReviewers {
        review: ReviewId,
    },
    /// Issued by the scheduler: the review the workflow's `[[reviews]]` schedule for this scope's
    /// kind, unless one was started for it within `every`.
    StartScheduledReview {
        scope: ScopeId,
    },
    // ----- mail preferences and the daily digest -----
    /// `PUT /me/preferences`: the user themself (or an administrator).
    SetMailPreferences {
        user: UserId,
        preferences: MailPreferences,
    },
    /// Issued by the scheduler: the user's digest of today (UTC), from their hour on, once.
    SendDigest {
        user: UserId,
    },
    // ----- webhooks -----
    /// An administrator subscribes `url` to the events of `events` (every type when empty) about
    /// `scope` or below it (every event when none). The id is chosen by the caller, who keeps the
    /// subscription's secret under it outside the log.
    CreateWebhook {
        id: WebhookId,
        url: String,
        #[serde(default)]
        events: Vec<String>,
        #[serde(default)]
        scope: Option<ScopeId>,
        #[serde(default)]
        description: Option<String>,
    },
    DeleteWebhook {
        webhook: WebhookId,
    },
}
