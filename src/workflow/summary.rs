//! What `roleledger serve --check` prints: the scope kinds, roles and deciding rules of a loaded
//! workflow, one item per line, for an operator to read back what the file says.

use super::model::{is_builtin_role, Applies, OnNoAnswer, RoleDeletePolicy, RuleTarget, Workflow};
use std::fmt;

/// Displays as the summary; see the module documentation.
pub struct Summary<'a>(pub &'a Workflow);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let workflow = self.0;
        let settings = &workflow.settings;
        writeln!(f, "workflow \"{}\" ({}): {}", workflow.name, workflow.file, workflow.description)?;
        writeln!(f, "scope kinds:")?;
        for kind in workflow.kinds.values() {
            match kind.parents.as_slice() {
                [] => writeln!(f, "  {} (built in)", kind.id)?,
                parents => writeln!(f, "  {} \"{}\" under {}", kind.id, kind.title, parents.join(", "))?,
            }
        }
        writeln!(f, "roles:")?;
        for role in workflow.roles.values() {
            let mut traits = vec![format!("on {}", role.kinds.join(", "))];
            let mut flag = |on: bool, text: &str| {
                if on {
                    traits.push(text.to_string());
                }
            };
            flag(is_builtin_role(&role.id), "built in");
            flag(role.applies == Applies::Scope, "this scope only");
            flag(!role.requestable, "not requestable");
            flag(role.token_grantable, "token-grantable");
            flag(role.api_role, "API role");
            flag(role.locked, "locked");
            flag(workflow.is_deciding_role(&role.id), "decides");
            if !role.includes.is_empty() {
                traits.push(format!("includes {}", role.includes.join(", ")));
            }
            if let Some(mailbox) = &role.mailbox {
                traits.push(format!("mailbox {mailbox}"));
            }
            if !role.permissions.is_empty() {
                traits.push(format!("gives {}", role.permissions.join(" ")));
            }
            if !role.scope_permissions.is_empty() {
                traits.push(format!("gives on the scope alone {}", role.scope_permissions.join(" ")));
            }
            writeln!(f, "  {}: {}", role.id, traits.join("; "))?;
        }
        writeln!(f, "rules:")?;
        if workflow.rules.is_empty() {
            writeln!(f, "  none: administrators decide every request")?;
        }
        for rule in &workflow.rules {
            let target = match &rule.target {
                RuleTarget::Role(role) => format!("role {role}"),
                RuleTarget::Kind(kind) => format!("every role on a {kind}"),
            };
            let deciders: Vec<String> = rule.deciders.iter().map(|d| format!("{}@{}", d.role, d.place)).collect();
            let stages: Vec<String> = rule
                .stages
                .iter()
                .map(|s| match s.escalate_after {
                    Some(after) => {
                        let to: Vec<String> = s.escalation.iter().map(|d| format!("{}@{}", d.role, d.place)).collect();
                        format!("{} ({}, escalated after {after} to {})", s.name, s.quorum, to.join(", "))
                    }
                    None => format!("{} ({})", s.name, s.quorum),
                })
                .collect();
            writeln!(f, "  {target}: decided by {}; stages {}", deciders.join(", "), stages.join(", "))?;
        }
        let on_delete = match settings.role_delete {
            RoleDeletePolicy::Refuse => "is refused",
            RoleDeletePolicy::Revoke => "revokes its grants",
        };
        let edits = if settings.roles_editable { "editable" } else { "immutable" };
        writeln!(f, "roles at run time: {edits}; deleting one in use {on_delete}")?;
        for (a, b) in &settings.incompatible {
            writeln!(f, "incompatible: {a} and {b}")?;
        }
        let defaults: Vec<String> = settings.default_roles.iter().map(|d| format!("{}@{}", d.role, d.scope)).collect();
        if !defaults.is_empty() {
            writeln!(f, "every new user receives: {}", defaults.join(", "))?;
        }
        for (kind, roles) in &settings.creator_roles {
            writeln!(f, "the creator of a {kind} receives: {}", roles.join(", "))?;
        }
        for review in &workflow.reviews {
            let silence = match review.on_no_answer {
                OnNoAnswer::Keep => "kept",
                OnNoAnswer::Revoke => "revoked",
            };
            let (every, due) = (review.every, review.due);
            writeln!(
                f,
                "every {} is reviewed every {every}, due in {due}; unreviewed grants are {silence}",
                review.kind
            )?;
        }
        Ok(())
    }
}
