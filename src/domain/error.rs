//! Why a command is refused, with the stable machine codes of SPEC.md (their HTTP statuses are
//! the HTTP adapter's: `routes/problem.rs`).

use super::request::RequestStatus;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{subject} already holds or has requested role \"{role}\" on \"{scope}\"")]
    DuplicateRequest { subject: String, role: String, scope: String },
    #[error("role \"{role}\" cannot be held on a scope of kind \"{kind}\"")]
    WrongScopeKind { role: String, kind: String },
    #[error("unknown role \"{0}\"")]
    UnknownRole(String),
    #[error("unknown scope \"{0}\"")]
    UnknownScope(String),
    #[error("unknown user \"{0}\"")]
    UnknownUser(String),
    #[error("unknown team \"{0}\"")]
    UnknownTeam(String),
    #[error("role \"{0}\" cannot be requested")]
    NotRequestable(String),
    #[error("role \"{role}\" is incompatible with role \"{held}\", which is held")]
    IncompatibleRole { role: String, held: String },
    #[error("the request is {0}, no longer pending")]
    NotPending(RequestStatus),
    #[error("the request expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("no authority to decide role \"{role}\" on \"{scope}\"")]
    NotADecider { role: String, scope: String },
    #[error("nobody decides to their own benefit")]
    SelfApproval,
    #[error("this person has already approved the request")]
    AlreadyApproved,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InUse(String),
    #[error("role \"{0}\" is locked: it takes no new assignments")]
    RoleLocked(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidDuration(String),
    #[error("role \"{role}\" needs {approvals} approvals: ask for it with a request")]
    ApprovalsRequired { role: String, approvals: u32 },
    #[error("a duration of {wanted} is longer than the {max} allowed")]
    DurationTooLong { wanted: String, max: String },
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("the grant has already ended")]
    NotActive,
    #[error("not due before {0}")]
    NotDue(DateTime<Utc>),
    #[error("the user id \"{0}\" is reserved for the server itself")]
    ReservedId(String),
    // ----- escalation and delegation -----
    #[error("a delegation lasts at most 90 days: until {0} is further ahead")]
    DelegationTooLong(DateTime<Utc>),
    #[error("a delegation must end in the future, not at {0}")]
    UntilInPast(DateTime<Utc>),
    #[error("nobody delegates to themselves")]
    SelfDelegation,
    #[error("only someone who decides by a decision rule may delegate (admin power and delegated authority are not delegated)")]
    NoAuthorityToDelegate,
    // ----- extensions -----
    #[error("the grant has no end: there is nothing to extend")]
    NoEnd,
    #[error("question \"{0}\" needs an answer")]
    MissingAnswer(String),
    #[error("role \"{role}\" asks no question \"{question}\"")]
    UnknownQuestion { role: String, question: String },
    #[error("this workflow wants a comment or reason with every decision")]
    ReasonRequired,
    #[error("{0}")]
    InvalidStartsAt(String),
    // ----- access reviews -----
    #[error("not a reviewer of this item")]
    NotAReviewer,
    #[error("this item has already been decided")]
    AlreadyDecided,
    #[error("the review is closed")]
    ReviewClosed,
    // ----- mail preferences -----
    #[error("{0}")]
    InvalidPreferences(String),
    // ----- webhooks -----
    #[error("unknown event type \"{0}\"")]
    UnknownEventType(String),
    #[error("bad webhook URL: {0}")]
    InvalidUrl(String),
    #[error("webhook target refused: {0}")]
    WebhookTargetRefused(String),
}

impl DomainError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::DuplicateRequest { .. } => "duplicate_request",
            DomainError::WrongScopeKind { .. } => "wrong_scope_kind",
            DomainError::UnknownRole(_) => "unknown_role",
            DomainError::UnknownScope(_) => "unknown_scope",
            DomainError::UnknownUser(_) => "unknown_user",
            DomainError::UnknownTeam(_) => "unknown_team",
            DomainError::NotRequestable(_) => "not_requestable",
            DomainError::IncompatibleRole { .. } => "incompatible_role",
            DomainError::NotPending(_) => "not_pending",
            DomainError::Expired(_) => "expired",
            DomainError::NotADecider { .. } => "not_a_decider",
            DomainError::SelfApproval => "self_approval",
            DomainError::AlreadyApproved => "already_approved",
            DomainError::Forbidden(_) => "forbidden",
            DomainError::InUse(_) => "in_use",
            DomainError::RoleLocked(_) => "role_locked",
            DomainError::NotFound(_) => "not_found",
            DomainError::Invalid(_) => "invalid",
            DomainError::InvalidDuration(_) => "invalid_duration",
            DomainError::ApprovalsRequired { .. } => "approvals_required",
            DomainError::DurationTooLong { .. } => "duration_too_long",
            DomainError::AlreadyExists(_) => "already_exists",
            DomainError::NotActive => "not_active",
            DomainError::NotDue(_) => "not_due",
            DomainError::ReservedId(_) => "reserved_id",
            DomainError::DelegationTooLong(_) => "delegation_too_long",
            DomainError::UntilInPast(_) => "until_in_past",
            DomainError::SelfDelegation => "self_delegation",
            DomainError::NoAuthorityToDelegate => "no_authority_to_delegate",
            DomainError::NoEnd => "no_end",
            DomainError::MissingAnswer(_) => "missing_answer",
            DomainError::UnknownQuestion { .. } => "unknown_question",
            DomainError::ReasonRequired => "reason_required",
            DomainError::InvalidStartsAt(_) => "invalid_starts_at",
            DomainError::NotAReviewer => "not_a_reviewer",
            DomainError::AlreadyDecided => "already_decided",
            DomainError::ReviewClosed => "review_closed",
            DomainError::InvalidPreferences(_) => "invalid_preferences",
            DomainError::UnknownEventType(_) => "unknown_event_type",
            DomainError::InvalidUrl(_) => "invalid_url",
            DomainError::WebhookTargetRefused(_) => "webhook_target_refused",
        }
    }
}
