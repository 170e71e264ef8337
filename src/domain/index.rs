//! Derived lookup structures kept beside the state so that queries are a few hash lookups:
//! interned scopes with their ancestor lists, interned roles with their inclusion closure and
//! compiled permissions, and the live grants of each user and team.

use super::grant::{within, Grant};
use super::types::{GrantId, RequestId, ScopeId, Subject, TeamId, UserId};
use crate::workflow::fast_hash::{FastHashMap, InlineKey};
use crate::workflow::permission::{CompiledPermissions, Pattern};
use crate::workflow::{role_closure, Applies, Role, RoleId, ADMIN, GLOBAL};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Dense number standing for a scope or role id.
pub(super) type Slot = u32;

const INLINE_SLOTS: usize = 7;

/// A short list of slots kept inline (a scope's lineage is rarely longer), read without
/// following a pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Slot>", into = "Vec<Slot>")]
pub(super) enum SlotList {
    Inline { len: u8, slots: [Slot; INLINE_SLOTS] },
    Spilled(Vec<Slot>),
}

impl Default for SlotList {
    fn default() -> Self {
        SlotList::Inline { len: 0, slots: [0; INLINE_SLOTS] }
    }
}

impl From<Vec<Slot>> for SlotList {
    fn from(slots: Vec<Slot>) -> Self {
        if slots.len() > INLINE_SLOTS {
            return SlotList::Spilled(slots);
        }
        let mut inline = [0; INLINE_SLOTS];
        inline[..slots.len()].copy_from_slice(&slots);
        SlotList::Inline { len: slots.len() as u8, slots: inline }
    }
}

impl From<SlotList> for Vec<Slot> {
    fn from(slots: SlotList) -> Self {
        slots.to_vec()
    }
}

impl std::ops::Deref for SlotList {
    type Target = [Slot];

    fn deref(&self) -> &[Slot] {
        match self {
            SlotList::Inline { len, slots } => &slots[..*len as usize],
            SlotList::Spilled(slots) => slots,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(super) struct ScopeSlot {
    pub parents: Vec<Slot>,
    pub children: Vec<Slot>,
}

/// What `check` needs of a scope, kept in the id table itself so that one lookup finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ScopeEntry {
    pub slot: Slot,
    /// The scope itself first, then every ancestor once (global last); empty once deleted.
    pub lineage: SlotList,
}

/// What one role of a grant's inclusion closure gives, and how far down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Clause {
    pub permissions: CompiledPermissions,
    pub subtree: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(super) struct RoleSlot {
    /// The role and every role it includes.
    pub closure: Vec<Slot>,
    pub clauses: Vec<Clause>,
}

/// A grant that has neither been revoked nor expired by an event, reduced to what checks need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Holding {
    pub grant: GrantId,
    pub role: Slot,
    pub scope: Slot,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl Holding {
    pub fn gives_at(&self, now: DateTime<Utc>) -> bool {
        within(self.starts_at, self.ends_at, now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Index {
    scope_entries: FastHashMap<InlineKey, ScopeEntry>,
    scope_ids: Vec<ScopeId>,
    pub scopes: Vec<ScopeSlot>,
    role_slots: FastHashMap<RoleId, Slot>,
    role_ids: Vec<RoleId>,
    pub roles: Vec<RoleSlot>,
    user_holdings: FastHashMap<InlineKey, Vec<Holding>>,
    team_holdings: FastHashMap<TeamId, Vec<Holding>>,
    teams_of_user: FastHashMap<InlineKey, BTreeSet<TeamId>>,
    /// Grants not yet revoked or expired by an event, by the scope they are held on.
    pub grants_on_scope: FastHashMap<Slot, BTreeSet<GrantId>>,
    /// Pending requests by requester, role and scope, for duplicate detection.
    pub open_requests: FastHashMap<(UserId, RoleId, ScopeId), RequestId>,
    /// Pending extension requests by the grant they extend.
    pub open_extensions: FastHashMap<GrantId, RequestId>,
    pub global: Slot,
    pub admin: Slot,
}

impl Index {
    pub fn new() -> Index {
        let mut index = Index {
            scope_entries: FastHashMap::default(),
            scope_ids: Vec::new(),
            scopes: Vec::new(),
            role_slots: FastHashMap::default(),
            role_ids: Vec::new(),
            roles: Vec::new(),
            user_holdings: FastHashMap::default(),
            team_holdings: FastHashMap::default(),
            teams_of_user: FastHashMap::default(),
            grants_on_scope: FastHashMap::default(),
            open_requests: FastHashMap::default(),
            open_extensions: FastHashMap::default(),
            global: 0,
            admin: 0,
        };
        index.global = index.add_scope(GLOBAL, &[]);
        index.admin = index.role_slot(ADMIN);
        index
    }

    pub fn scope_slot(&self, id: &str) -> Option<Slot> {
        self.scope_entry(id).map(|entry| entry.slot)
    }

    pub fn scope_entry(&self, id: &str) -> Option<&ScopeEntry> {
        self.scope_entries.get(id.as_bytes())
    }

    /// The scope's lineage: itself, then its ancestors.
    pub fn lineage(&self, slot: Slot) -> &[Slot] {
        let entry = self.scope_id(slot).and_then(|id| self.scope_entry(id));
        entry.map(|e| &e.lineage[..]).unwrap_or_default()
    }

    pub fn scope_id(&self, slot: Slot) -> Option<&str> {
        self.scope_ids.get(slot as usize).map(ScopeId::as_str)
    }

    pub fn role_id(&self, slot: Slot) -> Option<&str> {
        self.role_ids.get(slot as usize).map(String::as_str)
    }

    /// The user's own holdings (not those of their teams).
    pub fn user_holdings(&self, user: &str) -> &[Holding] {
        self.user_holdings.get(user.as_bytes()).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn team_holdings(&self, team: &str) -> &[Holding] {
        self.team_holdings.get(team).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn teams_of(&self, user: &str) -> impl Iterator<Item = &TeamId> {
        self.teams_of_user.get(user.as_bytes()).into_iter().flatten()
    }

    pub fn join_team(&mut self, user: &str, team: &str) {
        self.teams_of_user.entry(InlineKey::new(user)).or_default().insert(TeamId::known(team));
    }

    pub fn leave_team(&mut self, user: &str, team: &str) {
        if let Some(teams) = self.teams_of_user.get_mut(user.as_bytes()) {
            teams.remove(team);
        }
    }

    pub fn known_role_slot(&self, id: &str) -> Option<Slot> {
        self.role_slots.get(id).copied()
    }

    /// The slot of a role id, interning it if new (slots outlive deleted roles).
    pub fn role_slot(&mut self, id: &str) -> Slot {
        if let Some(slot) = self.role_slots.get(id) {
            return *slot;
        }
        let slot = self.roles.len() as Slot;
        self.roles.push(RoleSlot::default());
        self.role_ids.push(id.to_string());
        self.role_slots.insert(id.to_string(), slot);
        slot
    }

    /// Registers a scope under existing parents (re-using the slot of a deleted scope of that id).
    pub fn add_scope(&mut self, id: &str, parents: &[ScopeId]) -> Slot {
        let slot = match self.scope_slot(id) {
            Some(slot) => slot,
            None => {
                let slot = self.scopes.len() as Slot;
                self.scopes.push(ScopeSlot::default());
                self.scope_ids.push(ScopeId::known(id));
                slot
            }
        };
        let parents: Vec<Slot> = parents.iter().filter_map(|p| self.scope_slot(p)).collect();
        let mut lineage = vec![slot];
        for parent in &parents {
            for ancestor in self.lineage(*parent) {
                if !lineage.contains(ancestor) {
                    lineage.push(*ancestor);
                }
            }
        }
        for parent in &parents {
            self.scopes[*parent as usize].children.push(slot);
        }
        let entry = ScopeEntry { slot, lineage: lineage.into() };
        self.scope_entries.insert(InlineKey::new(id), entry);
        self.scopes[slot as usize] = ScopeSlot { parents, children: Vec::new() };
        slot
    }

    pub fn remove_scope(&mut self, id: &str) {
        let Some(entry) = self.scope_entries.get_mut(id.as_bytes()) else {
            return;
        };
        entry.lineage = SlotList::default();
        let slot = entry.slot;
        let removed = std::mem::take(&mut self.scopes[slot as usize]);
        for parent in removed.parents {
            self.scopes[parent as usize].children.retain(|child| *child != slot);
        }
    }

    /// Recompiles every role after a catalogue change: inclusion closures and permissions.
    pub fn compile_roles(&mut self, catalogue: &BTreeMap<RoleId, Role>, implications: &BTreeMap<String, Vec<Pattern>>) {
        for role in self.roles.iter_mut() {
            *role = RoleSlot::default();
        }
        for id in catalogue.keys() {
            let closure_ids = role_closure(catalogue, id);
            let closure = closure_ids.iter().map(|r| self.role_slot(r)).collect();
            let clauses = closure_ids
                .iter()
                .filter_map(|r| catalogue.get(r))
                .flat_map(|r| {
                    let everywhere = Clause {
                        permissions: CompiledPermissions::compile(&r.permission_entries(), implications),
                        subtree: r.applies == Applies::Subtree,
                    };
                    let scope_alone = (!r.scope_permissions.is_empty()).then(|| Clause {
                        permissions: CompiledPermissions::compile(&r.scope_permission_entries(), implications),
                        subtree: false,
                    });
                    std::iter::once(everywhere).chain(scope_alone)
                })
                .collect();
            let slot = self.role_slot(id);
            self.roles[slot as usize] = RoleSlot { closure, clauses };
        }
    }

    pub fn add_grant(&mut self, grant: &Grant) {
        let Some(scope) = self.scope_slot(&grant.scope) else {
            return;
        };
        let holding = Holding {
            grant: grant.id,
            role: self.role_slot(&grant.role),
            scope,
            starts_at: grant.starts_at,
            ends_at: grant.ends_at,
        };
        match &grant.subject {
            Subject::User(user) => self.user_holdings.entry(InlineKey::new(user)).or_default().push(holding),
            Subject::Team(team) => self.team_holdings.entry(team.clone()).or_default().push(holding),
        }
        self.grants_on_scope.entry(scope).or_default().insert(grant.id);
    }

    /// The grant's end moved (an extension): its holding ends then too.
    pub fn set_grant_end(&mut self, grant: &Grant) {
        let holdings = match &grant.subject {
            Subject::User(user) => self.user_holdings.get_mut(user.as_bytes()),
            Subject::Team(team) => self.team_holdings.get_mut(team),
        };
        for holding in holdings.into_iter().flatten().filter(|h| h.grant == grant.id) {
            holding.ends_at = grant.ends_at;
        }
    }

    pub fn remove_grant(&mut self, grant: &Grant) {
        let holdings = match &grant.subject {
            Subject::User(user) => self.user_holdings.get_mut(user.as_bytes()),
            Subject::Team(team) => self.team_holdings.get_mut(team),
        };
        if let Some(holdings) = holdings {
            holdings.retain(|h| h.grant != grant.id);
        }
        if let Some(scope) = self.scope_slot(&grant.scope) {
            if let Some(grants) = self.grants_on_scope.get_mut(&scope) {
                grants.remove(&grant.id);
            }
        }
    }
}
