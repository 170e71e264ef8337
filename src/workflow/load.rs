//! Reading a workflow file: TOML into raw, span-carrying structures, then into the model, refusing
//! anything unknown, dangling, cyclic or unsafe with the file, line and problem.

use super::catalogue::{check_catalogue, is_valid_id, RoleField, RoleProblem};
use super::model::*;
use super::permission::{parse_pattern, parse_permission, Pattern};
use super::Duration;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// A workflow file that cannot be used. Displays as `FILE:LINE: PROBLEM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct WorkflowError {
    pub file: String,
    pub line: Option<usize>,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    settings: RawSettings,
    #[serde(default)]
    kinds: BTreeMap<Spanned<String>, RawKind>,
    #[serde(default)]
    roles: BTreeMap<Spanned<String>, RawRole>,
    #[serde(default)]
    implications: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
    #[serde(default)]
    reviews: Vec<Spanned<RawReview>>,
}

/// `[[reviews]] kind = "site", every = "90d", due = "14d", on_no_answer = "revoke"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReview {
    kind: Spanned<String>,
    every: Spanned<Duration>,
    due: Spanned<Duration>,
    on_no_answer: OnNoAnswer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    title: Option<String>,
    #[serde(default)]
    parents: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    title: Spanned<String>,
    #[serde(default)]
    description: String,
    kinds: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    permissions: Vec<Spanned<String>>,
    #[serde(default)]
    scope_permissions: Vec<Spanned<String>>,
    #[serde(default)]
    includes: Vec<Spanned<String>>,
    #[serde(default)]
    applies: Applies,
    mailbox: Option<Spanned<String>>,
    #[serde(default = "yes")]
    requestable: bool,
    max_duration: Option<Spanned<Duration>>,
    token_grantable: Option<Spanned<bool>>,
    #[serde(default)]
    api_role: bool,
    #[serde(default)]
    locked: bool,
    #[serde(default)]
    questions: Vec<Spanned<Question>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    for_role: Option<Spanned<String>>,
    for_kind: Option<Spanned<String>>,
    deciders: Vec<Spanned<String>>,
    actions: Option<Vec<Action>>,
    stages: Option<Vec<RawStage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: Option<String>,
    quorum: u32,
    escalate_after: Option<Spanned<Duration>>,
    escalation_deciders: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum RawDeletePolicy {
    #[default]
    Refuse,
    Revoke,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    request_ttl: Option<Spanned<Duration>>,
    reminder_interval: Option<Spanned<Duration>>,
    default_grant_duration: Option<Spanned<Duration>>,
    max_grant_duration: Option<Spanned<Duration>>,
    #[serde(default)]
    incompatible: Vec<(Spanned<String>, Spanned<String>)>,
    admin_mailbox: Option<String>,
    #[serde(default)]
    roles_editable: bool,
    #[serde(default)]
    role_delete: RawDeletePolicy,
    #[serde(default)]
    creator_roles: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    default_roles: Vec<Spanned<String>>,
    decision_reason: Option<Spanned<String>>,
}

const DEFAULT_REQUEST_TTL: i64 = 30 * 24 * 3600;
const DEFAULT_REMINDER_INTERVAL: i64 = 7 * 24 * 3600;

/// Where spans of a role's fields are, to point at the right line after catalogue checks.
struct RoleSpans {
    key: Range<usize>,
    title: Range<usize>,
    kinds: Range<usize>,
    kind_items: Vec<Range<usize>>,
    permissions: Vec<Range<usize>>,
    scope_permissions: Vec<Range<usize>>,
    includes: Vec<Range<usize>>,
    mailbox: Option<Range<usize>>,
    token_grantable: Option<Range<usize>>,
}

impl RoleSpans {
    fn of(&self, field: RoleField, index: Option<usize>) -> Range<usize> {
        let item = |items: &[Range<usize>]| index.and_then(|i| items.get(i).cloned());
        let found = match field {
            RoleField::Title => Some(self.title.clone()),
            RoleField::Kinds => item(&self.kind_items).or(Some(self.kinds.clone())),
            RoleField::Permissions => item(&self.permissions),
            RoleField::ScopePermissions => item(&self.scope_permissions),
            RoleField::Includes => item(&self.includes),
            RoleField::Mailbox => self.mailbox.clone(),
            RoleField::TokenGrantable => self.token_grantable.clone(),
        };
        found.unwrap_or_else(|| self.key.clone())
    }
}

/// The text being loaded, to turn byte spans into line numbers.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, problem: impl Into<String>) -> WorkflowError {
        let start = span.start.min(self.text.len());
        let line = self.text.as_bytes()[..start].iter().filter(|b| **b == b'\n').count() + 1;
        WorkflowError { file: self.file.to_string(), line: Some(line), problem: problem.into() }
    }

    fn at<T>(&self, spanned: &Spanned<T>, problem: impl Into<String>) -> WorkflowError {
        self.error(spanned.span(), problem)
    }
}

impl Workflow {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Workflow, WorkflowError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| WorkflowError {
            file: file.clone(),
            line: None,
            problem: format!("cannot read: {e}"),
        })?;
        Workflow::from_str(&text, &file)
    }

    /// Parses and fully validates a workflow; `file_name` is only used in messages.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, file_name: &str) -> Result<Workflow, WorkflowError> {
        let source = Source { file: file_name, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => source.error(span, e.message().trim()),
            None => WorkflowError { file: file_name.to_string(), line: None, problem: e.message().to_string() },
        })?;
        let name = raw.name.clone().unwrap_or_else(|| file_stem(file_name));
        let kinds = load_kinds(&source, &raw.kinds)?;
        let (roles, spans) = load_roles(&source, raw.roles)?;
        let implications = load_implications(&source, &raw.implications)?;
        let rules = load_rules(&source, &raw.rules, &kinds, &roles)?;
        let settings = load_settings(&source, raw.settings, &kinds, &roles)?;
        let reviews = load_reviews(&source, &raw.reviews, &kinds)?;
        let mut workflow = Workflow::assemble(
            file_name.to_string(),
            name,
            raw.description,
            kinds,
            roles,
            implications,
            rules,
            settings,
        );
        workflow.reviews = reviews;
        check_catalogue(&workflow.roles, &workflow.kinds, &|role| workflow.is_deciding_role(role)).map_err(
            |RoleProblem { role, field, index, message }| match spans.get(&role) {
                Some(spans) => source.error(spans.of(field, index), message),
                None => WorkflowError { file: file_name.to_string(), line: None, problem: message },
            },
        )?;
        Ok(workflow)
    }
}

fn file_stem(file_name: &str) -> String {
    Path::new(file_name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn load_kinds(
    source: &Source<'_>,
    raw: &BTreeMap<Spanned<String>, RawKind>,
) -> Result<BTreeMap<KindId, ScopeKind>, WorkflowError> {
    let mut kinds = BTreeMap::new();
    kinds.insert(
        GLOBAL.to_string(),
        ScopeKind { id: GLOBAL.to_string(), title: "Global".to_string(), parents: Vec::new() },
    );
    for (id, kind) in raw {
        if id.get_ref() == GLOBAL {
            return Err(source.at(id, "scope kind \"global\" is built in and cannot be declared"));
        }
        if !is_valid_id(id.get_ref()) {
            return Err(source.at(id, format!("bad scope kind id \"{}\"", id.get_ref())));
        }
        for parent in &kind.parents {
            if parent.get_ref() != GLOBAL && !raw.contains_key(parent.get_ref().as_str()) {
                return Err(source.at(parent, format!("unknown scope kind \"{}\" in parents", parent.get_ref())));
            }
        }
        let mut parents: Vec<KindId> = kind.parents.iter().map(|p| p.get_ref().clone()).collect();
        if parents.is_empty() {
            parents.push(GLOBAL.to_string());
        }
        let title = kind.title.clone().unwrap_or_else(|| id.get_ref().clone());
        kinds.insert(id.get_ref().clone(), ScopeKind { id: id.get_ref().clone(), title, parents });
    }
    Ok(kinds)
}

/// The roles, with the spans of what each one's definition says.
type LoadedRoles = (BTreeMap<RoleId, Role>, BTreeMap<RoleId, RoleSpans>);

fn load_roles(source: &Source<'_>, raw: BTreeMap<Spanned<String>, RawRole>) -> Result<LoadedRoles, WorkflowError> {
    let mut roles = BTreeMap::new();
    let mut spans = BTreeMap::new();
    roles.insert(ADMIN.to_string(), Role::builtin(ADMIN, "Administrator", "Decides and assigns anything."));
    roles.insert(AUDITOR.to_string(), Role::builtin(AUDITOR, "Auditor", "Reads everything, changes nothing."));
    for (id, role) in raw {
        if is_builtin_role(id.get_ref()) {
            return Err(source.at(&id, format!("role \"{}\" is built in and cannot be declared", id.get_ref())));
        }
        if !is_valid_id(id.get_ref()) {
            return Err(source.at(&id, format!("bad role id \"{}\"", id.get_ref())));
        }
        let strings = |items: &[Spanned<String>]| items.iter().map(|i| i.get_ref().clone()).collect::<Vec<_>>();
        let ranges = |items: &[Spanned<String>]| items.iter().map(Spanned::span).collect::<Vec<_>>();
        spans.insert(
            id.get_ref().clone(),
            RoleSpans {
                key: id.span(),
                title: role.title.span(),
                kinds: role.kinds.span(),
                kind_items: ranges(role.kinds.get_ref()),
                permissions: ranges(&role.permissions),
                scope_permissions: ranges(&role.scope_permissions),
                includes: ranges(&role.includes),
                mailbox: role.mailbox.as_ref().map(Spanned::span),
                token_grantable: role.token_grantable.as_ref().map(Spanned::span),
            },
        );
        let loaded = Role {
            id: id.get_ref().clone(),
            title: role.title.into_inner(),
            description: role.description,
            kinds: strings(role.kinds.get_ref()),
            permissions: strings(&role.permissions),
            scope_permissions: strings(&role.scope_permissions),
            includes: strings(&role.includes),
            applies: role.applies,
            mailbox: role.mailbox.map(Spanned::into_inner),
            requestable: role.requestable,
            max_duration: within_limit(source, role.max_duration, "max_duration")?,
            token_grantable: role.token_grantable.is_some_and(|t| *t.get_ref()),
            api_role: role.api_role,
            locked: role.locked,
            questions: load_questions(source, role.questions)?,
        };
        roles.insert(loaded.id.clone(), loaded);
    }
    Ok((roles, spans))
}

fn load_implications(
    source: &Source<'_>,
    raw: &BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
) -> Result<BTreeMap<String, Vec<Pattern>>, WorkflowError> {
    let mut implications = BTreeMap::new();
    for (implying, implied) in raw {
        parse_permission(implying.get_ref()).map_err(|problem| source.at(implying, problem))?;
        let patterns = implied
            .iter()
            .map(|p| parse_pattern(p.get_ref()).map_err(|problem| source.at(p, problem)))
            .collect::<Result<Vec<_>, _>>()?;
        implications.insert(implying.get_ref().clone(), patterns);
    }
    Ok(implications)
}

fn unknown_role_error(
    source: &Source<'_>,
    roles: &BTreeMap<RoleId, Role>,
    role: &Spanned<String>,
    place: &str,
) -> Option<WorkflowError> {
    let id = role.get_ref();
    if is_builtin_role(id) {
        Some(source.at(role, format!("built-in role \"{id}\" cannot be named in {place}")))
    } else if !roles.contains_key(id) {
        Some(source.at(role, format!("unknown role \"{id}\" in {place}")))
    } else {
        None
    }
}

fn load_rules(
    source: &Source<'_>,
    raw: &[Spanned<RawRule>],
    kinds: &BTreeMap<KindId, ScopeKind>,
    roles: &BTreeMap<RoleId, Role>,
) -> Result<Vec<Rule>, WorkflowError> {
    let mut rules: Vec<Rule> = Vec::new();
    for spanned in raw {
        let rule = spanned.get_ref();
        let (target, target_kinds) = match (&rule.for_role, &rule.for_kind) {
            (Some(role), None) => {
                if let Some(error) = unknown_role_error(source, roles, role, "a rule's for_role") {
                    return Err(error);
                }
                (RuleTarget::Role(role.get_ref().clone()), roles[role.get_ref()].kinds.clone())
            }
            (None, Some(kind)) => {
                if !kinds.contains_key(kind.get_ref()) {
                    return Err(source.at(kind, format!("unknown scope kind \"{}\" in for_kind", kind.get_ref())));
                }
                (RuleTarget::Kind(kind.get_ref().clone()), vec![kind.get_ref().clone()])
            }
            _ => return Err(source.at(spanned, "a rule needs exactly one of for_role or for_kind")),
        };
        let id = match &target {
            RuleTarget::Role(role) => format!("role:{role}"),
            RuleTarget::Kind(kind) => format!("kind:{kind}"),
        };
        if rules.iter().any(|r| r.target == target) {
            return Err(source.at(spanned, format!("a second rule for the same target ({id})")));
        }
        if rule.deciders.is_empty() {
            return Err(source.at(spanned, "a rule needs at least one decider"));
        }
        let mut deciders = Vec::new();
        for decider in &rule.deciders {
            let parsed = parse_decider(source, decider, roles)?;
            if !target_kinds.iter().any(|kind| decider_can_hold(kinds, &roles[&parsed.role], kind, parsed.place)) {
                let problem = format!(
                    "decider \"{}\" can never apply: role \"{}\" is not held on any {} scope of a {} scope",
                    decider.get_ref(),
                    parsed.role,
                    parsed.place,
                    target_kinds.join("/")
                );
                return Err(source.at(decider, problem));
            }
            deciders.push(parsed);
        }
        let actions = rule.actions.clone().unwrap_or_else(|| vec![Action::Approve, Action::Reject, Action::Revoke]);
        if actions.is_empty() {
            return Err(source.at(spanned, "a rule's actions may not be empty"));
        }
        let stages: Vec<Stage> = match &rule.stages {
            None => Stage::single_approval(),
            Some(stages) => {
                let mut loaded = Vec::new();
                for (index, s) in stages.iter().enumerate() {
                    let (escalate_after, escalation) = load_escalation(source, s, kinds, roles, &target_kinds)?;
                    loaded.push(Stage {
                        name: s.name.clone().unwrap_or_else(|| format!("stage {}", index + 1)),
                        quorum: s.quorum,
                        escalate_after,
                        escalation,
                    });
                }
                loaded
            }
        };
        if stages.is_empty() || stages.iter().any(|s| s.quorum == 0) {
            return Err(source.at(spanned, "a rule needs at least one stage, each with a quorum of 1 or more"));
        }
        rules.push(Rule { id, target, deciders, actions, stages });
    }
    Ok(rules)
}

/// A stage's `escalate_after` and `escalation_deciders`: both or neither; the deciders sit above
/// the request's scope (`parent`, `ancestor`, `global`), never on it.
fn load_escalation(
    source: &Source<'_>,
    stage: &RawStage,
    kinds: &BTreeMap<KindId, ScopeKind>,
    roles: &BTreeMap<RoleId, Role>,
    target_kinds: &[KindId],
) -> Result<(Option<Duration>, Vec<Decider>), WorkflowError> {
    let (after, deciders) = match (&stage.escalate_after, &stage.escalation_deciders) {
        (None, None) => return Ok((None, Vec::new())),
        (Some(after), None) => {
            return Err(source.at(after, "escalate_after needs escalation_deciders (ROLE@parent|ancestor|global)"))
        }
        (None, Some(deciders)) => return Err(source.at(deciders, "escalation_deciders need escalate_after")),
        (Some(after), Some(deciders)) => (after, deciders),
    };
    if deciders.get_ref().is_empty() {
        return Err(source.at(deciders, "escalation_deciders may not be empty"));
    }
    let mut escalation = Vec::new();
    for decider in deciders.get_ref() {
        let parsed = parse_decider(source, decider, roles)?;
        if parsed.place == Place::Same {
            return Err(source.at(
                decider,
                format!(
                    "escalation decider \"{}\" must be held at parent, ancestor or global, not same",
                    decider.get_ref()
                ),
            ));
        }
        if !target_kinds.iter().any(|kind| decider_can_hold(kinds, &roles[&parsed.role], kind, parsed.place)) {
            let problem = format!(
                "escalation decider \"{}\" can never apply: role \"{}\" is not held on any {} scope of a {} scope",
                decider.get_ref(),
                parsed.role,
                parsed.place,
                target_kinds.join("/")
            );
            return Err(source.at(decider, problem));
        }
        escalation.push(parsed);
    }
    Ok((Some(*after.get_ref()), escalation))
}

fn parse_decider(
    source: &Source<'_>,
    decider: &Spanned<String>,
    roles: &BTreeMap<RoleId, Role>,
) -> Result<Decider, WorkflowError> {
    let text = decider.get_ref();
    let Some((role, place)) = text.split_once('@') else {
        return Err(source.at(decider, format!("decider \"{text}\" must read ROLE@same|parent|ancestor|global")));
    };
    let Some(place) = Place::parse(place) else {
        return Err(source.at(decider, format!("unknown place \"{place}\" in decider (same|parent|ancestor|global)")));
    };
    if is_builtin_role(role) {
        return Err(source.at(decider, format!("built-in role \"{role}\" cannot be named in a rule's deciders")));
    }
    if !roles.contains_key(role) {
        return Err(source.at(decider, format!("unknown role \"{role}\" in a rule's deciders")));
    }
    Ok(Decider { role: role.to_string(), place })
}

/// Whether a role may be held on some scope at `place` relative to a scope of `kind`.
fn decider_can_hold(kinds: &BTreeMap<KindId, ScopeKind>, decider: &Role, kind: &str, place: Place) -> bool {
    let parents_of = |kind: &str| kinds.get(kind).map(|k| k.parents.clone()).unwrap_or_default();
    let candidates: BTreeSet<KindId> = match place {
        Place::Same => [kind.to_string()].into(),
        Place::Parent => parents_of(kind).into_iter().collect(),
        Place::Global => [GLOBAL.to_string()].into(),
        Place::Ancestor => {
            let mut found: BTreeSet<KindId> = BTreeSet::new();
            let mut frontier = parents_of(kind);
            while let Some(next) = frontier.pop() {
                if found.insert(next.clone()) {
                    frontier.extend(parents_of(&next));
                }
            }
            found
        }
    };
    decider.kinds.iter().any(|k| candidates.contains(k))
}

fn parse_role_at(text: &str) -> Option<RoleAt> {
    let (role, scope) = text.split_once('@').unwrap_or((text, GLOBAL));
    is_valid_id(scope).then(|| RoleAt { role: role.to_string(), scope: scope.to_string() })
}

fn load_settings(
    source: &Source<'_>,
    raw: RawSettings,
    kinds: &BTreeMap<KindId, ScopeKind>,
    roles: &BTreeMap<RoleId, Role>,
) -> Result<WorkflowSettings, WorkflowError> {
    let mut incompatible = Vec::new();
    for (first, second) in &raw.incompatible {
        for role in [first, second] {
            if let Some(error) = unknown_role_error(source, roles, role, "incompatible") {
                return Err(error);
            }
        }
        if first.get_ref() == second.get_ref() {
            return Err(source.at(first, format!("role \"{}\" cannot be incompatible with itself", first.get_ref())));
        }
        incompatible.push((first.get_ref().clone(), second.get_ref().clone()));
    }
    let mut creator_roles = BTreeMap::new();
    for (kind, kind_roles) in &raw.creator_roles {
        if kind.get_ref() == GLOBAL || !kinds.contains_key(kind.get_ref()) {
            return Err(source.at(kind, format!("unknown scope kind \"{}\" in creator_roles", kind.get_ref())));
        }
        for role in kind_roles {
            if let Some(error) = unknown_role_error(source, roles, role, "creator_roles") {
                return Err(error);
            }
            if !roles[role.get_ref()].may_be_held_on(kind.get_ref()) {
                let problem =
                    format!("creator role \"{}\" cannot be held on a {} scope", role.get_ref(), kind.get_ref());
                return Err(source.at(role, problem));
            }
        }
        creator_roles.insert(kind.get_ref().clone(), kind_roles.iter().map(|r| r.get_ref().clone()).collect());
    }
    let mut default_roles = Vec::new();
    for entry in &raw.default_roles {
        let Some(role_at) = parse_role_at(entry.get_ref()) else {
            return Err(source.at(entry, format!("default role \"{}\" must read ROLE or ROLE@SCOPE", entry.get_ref())));
        };
        let role = Spanned::new(entry.span(), role_at.role.clone());
        if let Some(error) = unknown_role_error(source, roles, &role, "default_roles") {
            return Err(error);
        }
        if role_at.scope == GLOBAL && !roles[&role_at.role].may_be_held_on(GLOBAL) {
            return Err(source.at(entry, format!("default role \"{}\" cannot be held on global", role_at.role)));
        }
        default_roles.push(role_at);
    }
    if let (Some(default), Some(max)) = (&raw.default_grant_duration, &raw.max_grant_duration) {
        if default.get_ref() > max.get_ref() {
            return Err(source.at(default, "default_grant_duration is longer than max_grant_duration"));
        }
    }
    let fixed = |seconds| Duration::from_seconds(seconds).expect("positive constant");
    Ok(WorkflowSettings {
        request_ttl: within_limit(source, raw.request_ttl, "request_ttl")?
            .unwrap_or_else(|| fixed(DEFAULT_REQUEST_TTL)),
        reminder_interval: within_limit(source, raw.reminder_interval, "reminder_interval")?
            .unwrap_or_else(|| fixed(DEFAULT_REMINDER_INTERVAL)),
        default_grant_duration: within_limit(source, raw.default_grant_duration, "default_grant_duration")?,
        max_grant_duration: within_limit(source, raw.max_grant_duration, "max_grant_duration")?,
        incompatible,
        admin_mailbox: raw.admin_mailbox,
        roles_editable: raw.roles_editable,
        role_delete: match raw.role_delete {
            RawDeletePolicy::Refuse => RoleDeletePolicy::Refuse,
            RawDeletePolicy::Revoke => RoleDeletePolicy::Revoke,
        },
        creator_roles,
        default_roles,
        decision_reason_required: match &raw.decision_reason {
            None => false,
            Some(value) => match value.get_ref().as_str() {
                "required" => true,
                "optional" => false,
                other => {
                    let problem = format!("decision_reason must be \"required\" or \"optional\", not \"{other}\"");
                    return Err(source.at(value, problem));
                }
            },
        },
    })
}

/// A role's questions: each with a valid, unique id and some text.
fn load_questions(source: &Source<'_>, raw: Vec<Spanned<Question>>) -> Result<Vec<Question>, WorkflowError> {
    let mut questions: Vec<Question> = Vec::new();
    for question in raw {
        let id = &question.get_ref().id;
        if !is_valid_id(id) {
            return Err(source.at(&question, format!("question id \"{id}\" is not a valid id")));
        }
        if questions.iter().any(|q| &q.id == id) {
            return Err(source.at(&question, format!("question \"{id}\" is asked twice")));
        }
        if question.get_ref().text.trim().is_empty() {
            return Err(source.at(&question, format!("question \"{id}\" has no text")));
        }
        questions.push(question.into_inner());
    }
    Ok(questions)
}

/// Scheduled access reviews: a declared kind (not `global`), durations within the limit, and each
/// review due before the next one starts.
fn load_reviews(
    source: &Source<'_>,
    raw: &[Spanned<RawReview>],
    kinds: &BTreeMap<KindId, ScopeKind>,
) -> Result<Vec<ScheduledReview>, WorkflowError> {
    let mut reviews = Vec::new();
    for entry in raw {
        let review = entry.get_ref();
        let kind = review.kind.get_ref();
        if kind == GLOBAL || !kinds.contains_key(kind) {
            return Err(source.at(&review.kind, format!("unknown scope kind \"{kind}\" in reviews")));
        }
        if reviews.iter().any(|r: &ScheduledReview| &r.kind == kind) {
            return Err(source.at(&review.kind, format!("scope kind \"{kind}\" has two scheduled reviews")));
        }
        let every = within_limit(source, Some(review.every.clone()), "every")?.expect("given");
        let due = within_limit(source, Some(review.due.clone()), "due")?.expect("given");
        if due > every {
            return Err(
                source.at(&review.due, "a scheduled review must be due before the next one starts (due ≤ every)")
            );
        }
        reviews.push(ScheduledReview { kind: kind.clone(), every, due, on_no_answer: review.on_no_answer });
    }
    Ok(reviews)
}

/// Nothing lasts longer than [`Duration::LONGEST`] (100 years).
fn within_limit(
    source: &Source<'_>,
    duration: Option<Spanned<Duration>>,
    key: &str,
) -> Result<Option<Duration>, WorkflowError> {
    match duration {
        Some(d) if !d.get_ref().is_within_limit() => Err(source.at(&d, format!("{key} is longer than 100 years"))),
        d => Ok(d.map(Spanned::into_inner)),
    }
}
