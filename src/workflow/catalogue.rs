//! Checks on a role catalogue, shared by the loader (roles of the file) and the domain (custom roles
//! defined or edited at run time), so both refuse exactly the same things.

use super::model::{is_builtin_role, KindId, Role, RoleId, ScopeKind};
use super::permission::parse_entry;
use std::collections::BTreeMap;

/// Which part of a role definition a problem is about, so the loader can point at its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleField {
    Title,
    Kinds,
    Permissions,
    ScopePermissions,
    Includes,
    Mailbox,
    TokenGrantable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleProblem {
    pub role: RoleId,
    pub field: RoleField,
    /// Position in the field's list, where the field is a list.
    pub index: Option<usize>,
    pub message: String,
}

/// Ids of roles, teams and scopes: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
pub fn is_valid_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Why `text` cannot be a mail address (a user's email, a scope's or role's mailbox): a control
/// character there (CR, LF, …) would end a mail header early and start another one.
pub fn mail_address_problem(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return Some("a mail address may not be empty".to_string());
    }
    let control = text.chars().find(|c| c.is_control())?;
    Some(format!("a mail address may not hold a control character (U+{:04X})", u32::from(control)))
}

/// Ids of scopes and teams, which name real places and groups (`NGI_UK`, `RAL-LCG2`, `ops.team`):
/// ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most 128 long.
pub fn is_valid_scope_id(id: &str) -> bool {
    id.len() <= 128
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The role and every role it includes, directly or not, each once; tolerates cycles.
pub fn role_closure(roles: &BTreeMap<RoleId, Role>, id: &str) -> Vec<RoleId> {
    let mut closure = vec![id.to_string()];
    let mut next = 0;
    while next < closure.len() {
        if let Some(role) = roles.get(&closure[next]) {
            for included in &role.includes {
                if !closure.contains(included) {
                    closure.push(included.clone());
                }
            }
        }
        next += 1;
    }
    closure
}

/// Checks every non-built-in role of the catalogue; the first problem found is returned.
pub fn check_catalogue(
    roles: &BTreeMap<RoleId, Role>,
    kinds: &BTreeMap<KindId, ScopeKind>,
    is_deciding_role: &dyn Fn(&str) -> bool,
) -> Result<(), RoleProblem> {
    for role in roles.values().filter(|r| !is_builtin_role(&r.id)) {
        check_role(role, roles, kinds, is_deciding_role)?;
    }
    Ok(())
}

fn check_role(
    role: &Role,
    roles: &BTreeMap<RoleId, Role>,
    kinds: &BTreeMap<KindId, ScopeKind>,
    is_deciding_role: &dyn Fn(&str) -> bool,
) -> Result<(), RoleProblem> {
    let problem = |field, index, message: String| RoleProblem { role: role.id.clone(), field, index, message };
    if role.title.trim().is_empty() {
        return Err(problem(RoleField::Title, None, format!("role \"{}\" needs a title", role.id)));
    }
    if role.kinds.is_empty() {
        return Err(problem(RoleField::Kinds, None, format!("role \"{}\" names no scope kind", role.id)));
    }
    if let Some(index) = role.kinds.iter().position(|k| !kinds.contains_key(k)) {
        let message = format!("unknown scope kind \"{}\" in role \"{}\"", role.kinds[index], role.id);
        return Err(problem(RoleField::Kinds, Some(index), message));
    }
    for (index, entry) in role.permissions.iter().enumerate() {
        parse_entry(entry).map_err(|message| problem(RoleField::Permissions, Some(index), message))?;
    }
    for (index, entry) in role.scope_permissions.iter().enumerate() {
        parse_entry(entry).map_err(|message| problem(RoleField::ScopePermissions, Some(index), message))?;
    }
    for (index, included) in role.includes.iter().enumerate() {
        let message = if is_builtin_role(included) {
            format!("role \"{}\" may not include the built-in role \"{included}\"", role.id)
        } else if !roles.contains_key(included) {
            format!("unknown role \"{included}\" in include")
        } else if let Some(cycle) = inclusion_cycle(roles, &role.id, included) {
            format!("roles include each other in a cycle: {}", cycle.join(" -> "))
        } else {
            continue;
        };
        return Err(problem(RoleField::Includes, Some(index), message));
    }
    if let Some(mailbox) = &role.mailbox {
        if let Some(why) = mail_address_problem(mailbox) {
            return Err(problem(RoleField::Mailbox, None, format!("bad mailbox {mailbox:?}: {why}")));
        }
        if mailbox.replace("{scope}", "").contains(['{', '}']) {
            let message = format!("bad mailbox \"{mailbox}\" (an address; the only placeholder is {{scope}})");
            return Err(problem(RoleField::Mailbox, None, message));
        }
    }
    if role.token_grantable {
        if let Some(reason) = why_not_token_grantable(role, roles, is_deciding_role) {
            let message = format!("role \"{}\" cannot be token-grantable: {reason}", role.id);
            return Err(problem(RoleField::TokenGrantable, None, message));
        }
    }
    Ok(())
}

/// A path from `start` back to itself through `first`, if one exists.
fn inclusion_cycle(roles: &BTreeMap<RoleId, Role>, start: &str, first: &str) -> Option<Vec<String>> {
    let mut path = vec![start.to_string(), first.to_string()];
    let mut stack = vec![(first.to_string(), 0usize)];
    let mut seen = vec![first.to_string()];
    while let Some((current, child)) = stack.last_mut() {
        let includes = roles.get(current.as_str()).map(|r| r.includes.as_slice()).unwrap_or_default();
        let Some(next) = includes.get(*child).cloned() else {
            stack.pop();
            path.pop();
            continue;
        };
        *child += 1;
        if next == start {
            path.push(next);
            return Some(path);
        }
        if !seen.contains(&next) {
            seen.push(next.clone());
            path.push(next.clone());
            stack.push((next, 0));
        }
    }
    None
}

fn why_not_token_grantable(
    role: &Role,
    roles: &BTreeMap<RoleId, Role>,
    is_deciding_role: &dyn Fn(&str) -> bool,
) -> Option<String> {
    role_closure(roles, &role.id).into_iter().find_map(|id| {
        let itself = id == role.id;
        let subject = if itself { "it".to_string() } else { format!("it includes \"{id}\", which") };
        let api_role = roles.get(&id).is_some_and(|r| r.api_role);
        if is_builtin_role(&id) {
            Some(format!("{subject} is built in"))
        } else if api_role {
            Some(format!("{subject} is an API role"))
        } else if is_deciding_role(&id) {
            Some(format!("{subject} decides requests"))
        } else {
            None
        }
    })
}
