//! Everything that happens, in the past tense. Serialized as `{"type": …, "data": {…}}`, so that a
//! store can keep the type and the data apart and rebuild the event from both.

use super::delegation::DelegationId;
use super::grant::GrantOrigin;
use super::preferences::MailFrequency;
use super::review::{OnNoAnswer, ReviewDecision, ReviewId};
use super::types::{Actor, GrantId, RequestId, ScopeId, Subject, TeamId, TokenId, UserId};
use super::webhook::WebhookId;
use crate::workflow::{Duration, Role, RoleId};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{
    de::{value::SeqAccessDeserializer, DeserializeSeed, IntoDeserializer, SeqAccess},
    Deserialize, Serialize,
};
use std::collections::BTreeMap;

/// Its type is the variant's name, for serde (`type`) and strum alike (`event_type`, `VARIANTS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    UserRegistered {
        user: UserId,
        email: Option<String>,
        name: Option<String>,
        at: DateTime<Utc>,
    },
    UserProfileChanged {
        user: UserId,
        email: Option<String>,
        name: Option<String>,
        at: DateTime<Utc>,
    },
    /// A login token issued at `issued_at` changed the roles its user holds from tokens: tokens
    /// issued earlier no longer sync roles for that user.
    TokenRolesSynced {
        user: UserId,
        issued_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    ScopeCreated {
        scope: ScopeId,
        kind: String,
        parents: Vec<ScopeId>,
        title: String,
        mailbox: Option<String>,
        by: Actor,
        at: DateTime<Utc>,
    },
    ScopeDeleted {
        scope: ScopeId,
        by: Actor,
        at: DateTime<Utc>,
    },
    RoleDefined {
        role: Role,
        copied_from: Option<RoleId>,
        by: Actor,
        at: DateTime<Utc>,
    },
    RoleEdited {
        role: Role,
        by: Actor,
        at: DateTime<Utc>,
    },
    RoleDeleted {
        role: RoleId,
        by: Actor,
        at: DateTime<Utc>,
    },
    TeamCreated {
        team: TeamId,
        title: String,
        by: Actor,
        at: DateTime<Utc>,
    },
    TeamMemberAdded {
        team: TeamId,
        user: UserId,
        by: Actor,
        at: DateTime<Utc>,
    },
    TeamMemberRemoved {
        team: TeamId,
        user: UserId,
        by: Actor,
        at: DateTime<Utc>,
    },
    RoleRequested {
        request: RequestId,
        user: UserId,
        role: RoleId,
        scope: ScopeId,
        reason: String,
        duration: Option<Duration>,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        /// The grant this request would extend (`POST /grants/{id}/extend`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extends: Option<GrantId>,
        /// When the grant it asks for should start (later than the approval).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        starts_at: Option<DateTime<Utc>>,
        /// Who asked, when not the user it is for (a request on someone's behalf).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested_by: Option<UserId>,
        /// Answers to the role's questions, by question id.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        answers: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ticket: Option<String>,
    },
    /// One approval; `stage` is the index it counted for, `approvals_in_stage` includes it.
    RequestApproved {
        request: RequestId,
        by: Actor,
        /// The creator of the API token `by` approved with, when someone else made it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_creator: Option<UserId>,
        /// The delegator whose authority a delegate used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
        comment: String,
        stage: u32,
        stage_name: String,
        approvals_in_stage: u32,
        quorum: u32,
        completes_stage: bool,
        completes_request: bool,
        at: DateTime<Utc>,
        /// The (shorter) duration the approver granted, when they gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<Duration>,
    },
    RequestRejected {
        request: RequestId,
        by: Actor,
        reason: String,
        at: DateTime<Utc>,
        /// The delegator whose authority a delegate used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
    },
    RequestCancelled {
        request: RequestId,
        by: Actor,
        at: DateTime<Utc>,
    },
    RequestExpired {
        request: RequestId,
        at: DateTime<Utc>,
    },
    RoleGranted {
        grant: GrantId,
        subject: Subject,
        role: RoleId,
        scope: ScopeId,
        origin: GrantOrigin,
        by: Actor,
        starts_at: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
        /// For a direct assignment by a delegate: the delegator whose authority was used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
    },
    GrantRevoked {
        grant: GrantId,
        by: Actor,
        reason: String,
        at: DateTime<Utc>,
        /// The delegator whose authority a delegate used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
    },
    GrantExpired {
        grant: GrantId,
        at: DateTime<Utc>,
    },
    /// The request is still pending a reminder interval after it was asked (or last reminded).
    DecidersReminded {
        request: RequestId,
        at: DateTime<Utc>,
    },
    /// The grant ends within the notice period; its holder is told once.
    GrantEndingSoon {
        grant: GrantId,
        ends_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// Only the SHA-256 of the secret is kept; the secret was shown once to its creator.
    ApiTokenCreated {
        token: TokenId,
        user: UserId,
        name: String,
        secret_hash: String,
        expires_at: Option<DateTime<Utc>>,
        by: Actor,
        at: DateTime<Utc>,
    },
    ApiTokenRevoked {
        token: TokenId,
        by: Actor,
        at: DateTime<Utc>,
    },
    // ----- escalation and delegation -----
    /// The request waited its stage's `escalate_after`: the stage's escalation deciders may decide it too.
    RequestEscalated {
        request: RequestId,
        stage: u32,
        at: DateTime<Utc>,
    },
    DelegationGranted {
        delegation: DelegationId,
        from: UserId,
        to: UserId,
        scope: Option<ScopeId>,
        reason: String,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// Ended early (by its delegator or an admin) or, at its `until`, by the scheduler.
    DelegationEnded {
        delegation: DelegationId,
        by: Actor,
        /// True when ended before its `until`.
        early: bool,
        at: DateTime<Utc>,
    },
    // ----- extensions -----
    /// An extension request was approved: the grant now ends at `ends_at`.
    GrantExtended {
        grant: GrantId,
        request: RequestId,
        ends_at: DateTime<Utc>,
        by: Actor,
        at: DateTime<Utc>,
    },
    // ----- access reviews -----
    /// The selection only: the items (the grants active at `at` on the scope or below it, of
    /// `roles` if given) and their reviewers are derived when the event is folded.
    ReviewStarted {
        review: ReviewId,
        scope: ScopeId,
        roles: Option<Vec<RoleId>>,
        title: String,
        due_at: DateTime<Utc>,
        on_no_answer: OnNoAnswer,
        by: Actor,
        at: DateTime<Utc>,
        /// Started by the scheduler, as the workflow's `[[reviews]]` say.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        scheduled: bool,
    },
    ReviewItemDecided {
        review: ReviewId,
        item: GrantId,
        decision: ReviewDecision,
        reason: String,
        by: Actor,
        /// The reviewer whose delegate `by` is, when a delegate decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
        at: DateTime<Utc>,
    },
    /// Undecided items follow `on_no_answer`; the revocations are `GrantRevoked` events after it.
    ReviewClosed {
        review: ReviewId,
        by: Actor,
        at: DateTime<Utc>,
    },
    ReviewersReminded {
        review: ReviewId,
        at: DateTime<Utc>,
    },
    // ----- mail preferences and the daily digest -----
    /// How the user wants their mail: each as it happens, or a digest a day from `digest_hour` (UTC).
    MailPreferencesSet {
        user: UserId,
        mail: MailFrequency,
        digest_hour: u8,
        at: DateTime<Utc>,
    },
    /// The user's digest of `day` (UTC): once a day, its mail in this event's outbox rows.
    DigestSent {
        user: UserId,
        day: NaiveDate,
        at: DateTime<Utc>,
    },
    // ----- webhooks -----
    /// The subscription's id, target and filters; its secret is kept outside the log.
    WebhookCreated {
        webhook: WebhookId,
        url: String,
        /// The event types it receives; empty: every type.
        events: Vec<String>,
        scope: Option<ScopeId>,
        description: Option<String>,
        by: Actor,
        at: DateTime<Utc>,
    },
    /// Its deliveries stop.
    WebhookDeleted {
        webhook: WebhookId,
        by: Actor,
        at: DateTime<Utc>,
    },
}

impl Event {
    pub fn event_type(&self) -> &'static str {
        self.into()
    }

    /// The stream the event belongs to: `user-<id>`, `scope-<id>`, `role-<id>`, `team-<id>`,
    /// `request-<uuid>`, `grant-<uuid>`, `token-<uuid>`, `delegation-<uuid>`, `review-<uuid>` or `webhook-<uuid>`.
    pub fn stream_id(&self) -> String {
        match self {
            Event::UserRegistered { user, .. }
            | Event::UserProfileChanged { user, .. }
            | Event::TokenRolesSynced { user, .. } => {
                format!("user-{user}")
            }
            Event::ScopeCreated { scope, .. } | Event::ScopeDeleted { scope, .. } => {
                format!("scope-{scope}")
            }
            Event::RoleDefined { role, .. } | Event::RoleEdited { role, .. } => {
                format!("role-{}", role.id)
            }
            Event::RoleDeleted { role, .. } => format!("role-{role}"),
            Event::TeamCreated { team, .. }
            | Event::TeamMemberAdded { team, .. }
            | Event::TeamMemberRemoved { team, .. } => format!("team-{team}"),
            Event::RoleRequested { request, .. }
            | Event::RequestApproved { request, .. }
            | Event::RequestRejected { request, .. }
            | Event::RequestCancelled { request, .. }
            | Event::RequestExpired { request, .. }
            | Event::DecidersReminded { request, .. }
            | Event::RequestEscalated { request, .. } => format!("request-{request}"),
            Event::RoleGranted { grant, .. }
            | Event::GrantRevoked { grant, .. }
            | Event::GrantExpired { grant, .. }
            | Event::GrantEndingSoon { grant, .. }
            | Event::GrantExtended { grant, .. } => {
                format!("grant-{grant}")
            }
            Event::ApiTokenCreated { token, .. } | Event::ApiTokenRevoked { token, .. } => {
                format!("token-{token}")
            }
            Event::DelegationGranted { delegation, .. } | Event::DelegationEnded { delegation, .. } => {
                format!("delegation-{delegation}")
            }
            Event::ReviewStarted { review, .. }
            | Event::ReviewItemDecided { review, .. }
            | Event::ReviewClosed { review, .. }
            | Event::ReviewersReminded { review, .. } => format!("review-{review}"),
            Event::MailPreferencesSet { user, .. } | Event::DigestSent { user, .. } => format!("user-{user}"),
            Event::WebhookCreated { webhook, .. } | Event::WebhookDeleted { webhook, .. } => {
                format!("webhook-{webhook}")
            }
        }
    }

    /// The event's data, without its type.
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => tagged.remove("data").unwrap_or_default(),
            _ => unreachable!("an adjacently tagged enum serializes to an object"),
        }
    }

    /// Rebuilds an event from what [`Event::event_type`] and [`Event::data`] gave.
    pub fn from_parts(event_type: &str, data: &serde_json::Value) -> Result<Event, serde_json::Error> {
        // As the sequence `[type, data]`, which adjacently tagged enums also read: the type comes
        // first, so the data is read once into the event instead of buffered until the type is
        // known (a map would yield `data` before `type`). Folding the log spends its time here.
        Event::deserialize(SeqAccessDeserializer::new(TypeThenData { event_type: Some(event_type), data: Some(data) }))
    }
}

/// The two elements of an event read as `[type, data]`.
struct TypeThenData<'a> {
    event_type: Option<&'a str>,
    data: Option<&'a serde_json::Value>,
}

impl<'de> SeqAccess<'de> for TypeThenData<'de> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        if let Some(event_type) = self.event_type.take() {
            return seed.deserialize(event_type.into_deserializer()).map(Some);
        }
        self.data.take().map(|data| seed.deserialize(data)).transpose()
    }
}
