//! Permission ids and the patterns roles give them with.
//!
//! A permission is a dotted id, optionally qualified by a category: `action.topics.view:incident`.
//! A role lists patterns: an id (`scope.edit`), a qualified id, a group (`action.topics.*`, or `*` for
//! everything), or an exclusion of any of those (`!action.topics.delete`). An unqualified id covers
//! all its qualified forms. Exclusions win over everything the same role gives, implications included.

use super::fast_hash::FastHashSet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One entry of a role's `permissions` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionEntry {
    Give(Pattern),
    Exclude(Pattern),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `a.b.c` or `a.b.c:category`, kept as written.
    Exact(String),
    /// `a.b.*` is stored as `a.b`; `*` as the empty prefix.
    Group(String),
}

fn is_segment(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn is_dotted_id(text: &str) -> bool {
    text.split('.').all(is_segment)
}

/// Parses a permission as asked in a check: `a.b.c` or `a.b.c:category`.
pub fn parse_permission(text: &str) -> Result<Permission<'_>, String> {
    let (base, qualifier) = match text.split_once(':') {
        Some((base, qualifier)) => (base, Some(qualifier)),
        None => (text, None),
    };
    if is_dotted_id(base) && qualifier.is_none_or(is_segment) {
        Ok(Permission { full: text, base })
    } else {
        Err(format!("bad permission \"{text}\" (expected dotted lowercase ids like scope.edit, optionally :category)"))
    }
}

pub fn parse_pattern(text: &str) -> Result<Pattern, String> {
    if text == "*" {
        return Ok(Pattern::Group(String::new()));
    }
    if let Some(prefix) = text.strip_suffix(".*") {
        return if is_dotted_id(prefix) {
            Ok(Pattern::Group(prefix.to_string()))
        } else {
            Err(format!("bad permission group \"{text}\""))
        };
    }
    parse_permission(text).map(|permission| Pattern::Exact(permission.full.to_string()))
}

pub fn parse_entry(text: &str) -> Result<PermissionEntry, String> {
    match text.strip_prefix('!') {
        Some(excluded) => parse_pattern(excluded).map(PermissionEntry::Exclude),
        None => parse_pattern(text).map(PermissionEntry::Give),
    }
}

/// A permission being checked, split once so that matching needs no allocation.
#[derive(Debug, Clone, Copy)]
pub struct Permission<'a> {
    full: &'a str,
    base: &'a str,
}

impl<'a> Permission<'a> {
    /// The group prefixes that contain this permission: "", "a", "a.b" for `a.b.c`.
    fn groups(&self) -> impl Iterator<Item = &'a str> {
        let base = self.base;
        std::iter::once("").chain(base.match_indices('.').map(move |(at, _)| &base[..at]))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PatternSet {
    exact: FastHashSet<String>,
    groups: FastHashSet<String>,
}

impl PatternSet {
    fn insert(&mut self, pattern: &Pattern) -> bool {
        match pattern {
            Pattern::Exact(id) => self.exact.insert(id.clone()),
            Pattern::Group(prefix) => self.groups.insert(prefix.clone()),
        }
    }

    fn matches(&self, permission: &Permission<'_>) -> bool {
        self.exact.contains(permission.full)
            || (permission.full.len() != permission.base.len() && self.exact.contains(permission.base))
            || (!self.groups.is_empty() && permission.groups().any(|group| self.groups.contains(group)))
    }
}

/// What one role gives by itself, with implications resolved: ready for fast matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledPermissions {
    given: PatternSet,
    excluded: PatternSet,
}

impl CompiledPermissions {
    /// `entries` must have been validated with [`parse_entry`]; `implications` maps a permission id
    /// to the patterns it implies.
    pub fn compile(entries: &[PermissionEntry], implications: &BTreeMap<String, Vec<Pattern>>) -> Self {
        let mut compiled = CompiledPermissions { given: PatternSet::default(), excluded: PatternSet::default() };
        for entry in entries {
            match entry {
                PermissionEntry::Give(pattern) => compiled.given.insert(pattern),
                PermissionEntry::Exclude(pattern) => compiled.excluded.insert(pattern),
            };
        }
        // Implications may chain, so repeat until nothing new is given.
        let mut changed = true;
        while changed {
            changed = false;
            for (implying, implied) in implications {
                let Ok(permission) = parse_permission(implying) else {
                    continue;
                };
                if compiled.given.matches(&permission) {
                    for pattern in implied {
                        changed |= compiled.given.insert(pattern);
                    }
                }
            }
        }
        compiled
    }

    pub fn allows(&self, permission: &Permission<'_>) -> bool {
        self.given.matches(permission) && !self.excluded.matches(permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(entries: &[&str], implications: &[(&str, &[&str])]) -> CompiledPermissions {
        let entries: Vec<_> = entries.iter().map(|e| parse_entry(e).unwrap()).collect();
        let implications = implications
            .iter()
            .map(|(from, to)| (from.to_string(), to.iter().map(|p| parse_pattern(p).unwrap()).collect()))
            .collect();
        CompiledPermissions::compile(&entries, &implications)
    }

    fn allows(compiled: &CompiledPermissions, permission: &str) -> bool {
        compiled.allows(&parse_permission(permission).unwrap())
    }

    #[test]
    fn groups_exclusions_and_qualifiers() {
        let role = compile(&["action.topics.*", "!action.topics.delete", "job.view:incident"], &[]);
        assert!(allows(&role, "action.topics.view"));
        assert!(allows(&role, "action.topics.view:incident"));
        assert!(!allows(&role, "action.topics.delete"));
        assert!(!allows(&role, "action.topics.delete:incident"));
        assert!(!allows(&role, "action.topics"));
        assert!(allows(&role, "job.view:incident"));
        assert!(!allows(&role, "job.view"));
        assert!(!allows(&role, "job.view:change"));
    }

    #[test]
    fn star_gives_everything() {
        let role = compile(&["*", "!scope.delete"], &[]);
        assert!(allows(&role, "anything.at.all"));
        assert!(!allows(&role, "scope.delete"));
    }

    #[test]
    fn implications_chain_but_exclusions_win() {
        let role = compile(
            &["resources.admin", "!audit.read"],
            &[("resources.admin", &["resources.view"]), ("resources.view", &["audit.read", "stats.*"])],
        );
        assert!(allows(&role, "resources.view"));
        assert!(allows(&role, "stats.cpu"));
        assert!(!allows(&role, "audit.read"));
    }

    #[test]
    fn refuses_malformed_patterns() {
        for text in ["", "Scope.edit", "a..b", "a.b:", "a.*.c", "a.b.*:x", "!", "a b", "a:b:c"] {
            assert!(parse_entry(text).is_err(), "{text} should be refused");
        }
    }
}
