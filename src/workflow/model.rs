//! The loaded, validated workflow: what the domain consults to decide.

use super::permission::{parse_entry, Pattern, PermissionEntry};
use super::Duration;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

pub type RoleId = String;
pub type KindId = String;

/// The built-in scope, and its kind: the implicit parent of every scope that names no parent.
pub const GLOBAL: &str = "global";
/// Built-in role held on `global`: decides and assigns anything, passes every check.
pub const ADMIN: &str = "admin";
/// Built-in role held on `global`: reads everything, changes nothing.
pub const AUDITOR: &str = "auditor";

pub fn is_builtin_role(id: &str) -> bool {
    id == ADMIN || id == AUDITOR
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Applies {
    /// The grant's scope alone.
    Scope,
    /// The grant's scope and every scope below it.
    #[default]
    Subtree,
}

/// A role, from the workflow file or defined at run time (then carried whole in `RoleDefined`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    #[schema(value_type = String)]
    pub id: RoleId,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Scope kinds it may be held on.
    #[schema(value_type = Vec<String>)]
    pub kinds: Vec<KindId>,
    /// Permission patterns, see [`super::permission`].
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Permission patterns given on the scope alone, never below it, even when the role applies
    /// to the subtree (GOCDB: an NGI's managers add sites to their NGI, not to every NGI below a project).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_permissions: Vec<String>,
    /// Roles whose permissions and authority this one adds.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub includes: Vec<RoleId>,
    #[serde(default)]
    pub applies: Applies,
    /// An address, or a template where `{scope}` stands for the scope id.
    #[serde(default)]
    pub mailbox: Option<String>,
    #[serde(default = "default_true")]
    pub requestable: bool,
    /// ISO 8601 (`P30D`) or short (`30d`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub max_duration: Option<Duration>,
    #[serde(default)]
    pub token_grantable: bool,
    #[serde(default)]
    pub api_role: bool,
    #[serde(default)]
    pub locked: bool,
    /// What a request for it must (or may) answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<Question>,
}

/// A question a role asks of whoever requests it; requests answer it in `answers {id: text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub required: bool,
}

fn default_true() -> bool {
    true
}

impl Role {
    pub fn builtin(id: &str, title: &str, description: &str) -> Role {
        Role {
            id: id.to_string(),
            title: title.to_string(),
            description: description.to_string(),
            kinds: vec![GLOBAL.to_string()],
            permissions: Vec::new(),
            scope_permissions: Vec::new(),
            includes: Vec::new(),
            applies: Applies::Subtree,
            mailbox: None,
            requestable: false,
            max_duration: None,
            token_grantable: false,
            api_role: false,
            locked: false,
            questions: Vec::new(),
        }
    }

    pub fn mailbox_for(&self, scope: &str) -> Option<String> {
        self.mailbox.as_ref().map(|template| template.replace("{scope}", scope))
    }

    pub fn may_be_held_on(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    /// Parsed permission entries; the role was validated, so bad entries cannot occur.
    pub fn permission_entries(&self) -> Vec<PermissionEntry> {
        entries(&self.permissions)
    }

    pub fn scope_permission_entries(&self) -> Vec<PermissionEntry> {
        entries(&self.scope_permissions)
    }
}

fn entries(patterns: &[String]) -> Vec<PermissionEntry> {
    patterns.iter().filter_map(|p| parse_entry(p).ok()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeKind {
    pub id: KindId,
    pub title: String,
    /// Kinds its scopes may sit under; `global` means "naming no parent".
    pub parents: Vec<KindId>,
}

/// Where a deciding role must be held, relative to the scope of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    Same,
    Parent,
    Ancestor,
    Global,
}

impl Place {
    pub fn parse(text: &str) -> Option<Place> {
        match text {
            "same" => Some(Place::Same),
            "parent" => Some(Place::Parent),
            "ancestor" => Some(Place::Ancestor),
            "global" => Some(Place::Global),
            _ => None,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Place::Same => "same",
            Place::Parent => "parent",
            Place::Ancestor => "ancestor",
            Place::Global => "global",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decider {
    pub role: RoleId,
    pub place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Approve,
    Reject,
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleTarget {
    Role(RoleId),
    Kind(KindId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub quorum: u32,
    /// How long a request may wait in this stage before the scheduler escalates it
    /// (`RequestEscalated`); from then on the `escalation` deciders may decide it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_after: Option<Duration>,
    /// Who may decide once the stage is escalated: roles held at `parent`, `ancestor` or `global`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<Decider>,
}

impl Stage {
    /// The stages of a rule that names none, and of requests no rule decides (admins only).
    pub fn single_approval() -> Vec<Stage> {
        vec![Stage { name: "approval".to_string(), quorum: 1, escalate_after: None, escalation: Vec::new() }]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `role:<id>` or `kind:<id>`: stable as long as the file keeps its targets.
    pub id: String,
    pub target: RuleTarget,
    pub deciders: Vec<Decider>,
    pub actions: Vec<Action>,
    pub stages: Vec<Stage>,
}

impl Rule {
    pub fn allows(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoleDeletePolicy {
    /// Deleting a role that is held or requested answers `in_use`.
    #[default]
    Refuse,
    /// Deleting a role revokes each of its grants and rejects each pending request for it.
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAt {
    pub role: RoleId,
    pub scope: String,
}

/// What happens to the items of an access review nobody decided when it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnNoAnswer {
    Keep,
    Revoke,
}

/// `[[reviews]]`: every scope of `kind` is reviewed every `every`, each review due after `due`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledReview {
    pub kind: KindId,
    pub every: Duration,
    pub due: Duration,
    pub on_no_answer: OnNoAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowSettings {
    pub request_ttl: Duration,
    pub reminder_interval: Duration,
    pub default_grant_duration: Option<Duration>,
    pub max_grant_duration: Option<Duration>,
    pub incompatible: Vec<(RoleId, RoleId)>,
    pub admin_mailbox: Option<String>,
    pub roles_editable: bool,
    pub role_delete: RoleDeletePolicy,
    pub creator_roles: BTreeMap<KindId, Vec<RoleId>>,
    pub default_roles: Vec<RoleAt>,
    /// `decision_reason = "required"`: approving needs a comment and rejecting a reason.
    pub decision_reason_required: bool,
}

#[derive(Debug, Clone)]
pub struct Workflow {
    /// The file it was loaded from, for messages.
    pub file: String,
    pub name: String,
    pub description: String,
    /// Declared kinds plus the built-in `global`.
    pub kinds: BTreeMap<KindId, ScopeKind>,
    /// Declared roles plus the built-in `admin` and `auditor`.
    pub roles: BTreeMap<RoleId, Role>,
    pub implications: BTreeMap<String, Vec<Pattern>>,
    pub rules: Vec<Rule>,
    pub settings: WorkflowSettings,
    /// Access reviews the scheduler starts (`[[reviews]]`).
    pub reviews: Vec<ScheduledReview>,
    rule_by_role: HashMap<RoleId, usize>,
    rule_by_kind: HashMap<KindId, usize>,
    deciding_roles: BTreeSet<RoleId>,
}

impl Workflow {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn assemble(
        file: String,
        name: String,
        description: String,
        kinds: BTreeMap<KindId, ScopeKind>,
        roles: BTreeMap<RoleId, Role>,
        implications: BTreeMap<String, Vec<Pattern>>,
        rules: Vec<Rule>,
        settings: WorkflowSettings,
    ) -> Workflow {
        let mut rule_by_role = HashMap::new();
        let mut rule_by_kind = HashMap::new();
        for (index, rule) in rules.iter().enumerate() {
            match &rule.target {
                RuleTarget::Role(role) => rule_by_role.insert(role.clone(), index),
                RuleTarget::Kind(kind) => rule_by_kind.insert(kind.clone(), index),
            };
        }
        // Escalation deciders decide too (from the escalation on), so they count as deciding roles.
        let deciding_roles = rules
            .iter()
            .flat_map(|r| r.deciders.iter().chain(r.stages.iter().flat_map(|s| s.escalation.iter())))
            .map(|d| d.role.clone())
            .collect();
        Workflow {
            file,
            name,
            description,
            kinds,
            roles,
            implications,
            rules,
            settings,
            reviews: Vec::new(),
            rule_by_role,
            rule_by_kind,
            deciding_roles,
        }
    }

    /// The rule deciding `role` on a scope of `kind`: the role's own rule, else the kind-wide one.
    /// None decides `admin` or `auditor` (rules cannot name them, and a rule for the kind `global`
    /// must not reach them): only administrators assign those.
    pub fn rule_for(&self, role: &str, kind: &str) -> Option<&Rule> {
        if is_builtin_role(role) {
            return None;
        }
        let index = *self.rule_by_role.get(role).or_else(|| self.rule_by_kind.get(kind))?;
        Some(&self.rules[index])
    }

    /// Whether the workflow's own rules name the role as a target.
    pub fn has_own_rule(&self, role: &str) -> bool {
        self.rule_by_role.contains_key(role)
    }

    /// Roles named as deciders by some rule.
    pub fn is_deciding_role(&self, role: &str) -> bool {
        self.deciding_roles.contains(role)
    }

    pub fn kind(&self, id: &str) -> Option<&ScopeKind> {
        self.kinds.get(id)
    }

    pub fn incompatible_with<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.settings.incompatible.iter().filter_map(move |(a, b)| {
            if a == role {
                Some(b.as_str())
            } else if b == role {
                Some(a.as_str())
            } else {
                None
            }
        })
    }

    /// Whether the workflow's rules or settings name the role, which must then stay.
    pub fn refers_to(&self, role: &str) -> bool {
        let settings = &self.settings;
        is_builtin_role(role)
            || self.has_own_rule(role)
            || self.is_deciding_role(role)
            || settings.incompatible.iter().any(|(a, b)| a == role || b == role)
            || settings.creator_roles.values().flatten().any(|r| r == role)
            || settings.default_roles.iter().any(|d| d.role == role)
    }
}
