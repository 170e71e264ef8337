//! `/ui/scopes`: the scope tree from `global` down, folding without script (a `<details>` under
//! each scope's link, since a link inside a `<summary>` would nest two controls), each
//! scope with the counts of its grants and pending requests that the viewer may see. A search
//! keeps the scopes whose id or title matches, with the way down to them, unfolded.

use std::collections::{BTreeSet, HashMap};

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::{
    html,
    session::{Header, Session},
    PageError,
};
use crate::{domain::State, workflow::GLOBAL};

/// Levels unfolded when nothing is searched.
const UNFOLDED_LEVELS: usize = 2;

#[derive(Default, Deserialize)]
pub struct TreeQuery {
    /// Part of a scope's id or title, in any case.
    #[serde(default)]
    q: String,
}

/// One scope of the tree in document order: the template opens a fold for a scope with children
/// and closes `closes` folds after a scope without.
struct TreeLine {
    id: String,
    title: String,
    kind: String,
    grants: usize,
    pending: usize,
    folds: bool,
    /// How many scopes right under it are shown.
    children: usize,
    open: bool,
    matched: bool,
    closes: usize,
}

#[derive(Template)]
#[template(path = "web/scopes.html")]
struct TreePage {
    head: Option<Header>,
    query: String,
    lines: Vec<TreeLine>,
    matches: usize,
}

/// Counts per scope of what the viewer may see.
#[derive(Default)]
struct Counts {
    grants: HashMap<String, usize>,
    pending: HashMap<String, usize>,
}

/// The scopes in document order, each with its depth and whether it has children shown.
struct Walk<'s> {
    state: &'s State,
    /// Scopes to show (all when `None`): the matches and their ancestors.
    shown: Option<BTreeSet<String>>,
    /// Depth, scope and how many children are shown under it.
    lines: Vec<(usize, &'s str, usize)>,
}

impl<'s> Walk<'s> {
    fn visit(&mut self, scope: &'s str, depth: usize, path: &mut Vec<&'s str>) {
        // A scope under several parents appears under each; a cycle cannot be recorded, but is cut.
        if path.contains(&scope) {
            return;
        }
        let line = self.lines.len();
        self.lines.push((depth, scope, 0));
        path.push(scope);
        let mut children: Vec<&str> = self.state.children_of(scope).iter().map(|child| child.id.as_str()).collect();
        children.sort_unstable();
        children.retain(|child| self.shown.as_ref().is_none_or(|shown| shown.contains(*child)));
        self.lines[line].2 = children.len();
        for child in children {
            self.visit(child, depth + 1, path);
        }
        path.pop();
    }
}

pub async fn scope_tree(session: Session, query: web::Query<TreeQuery>) -> Result<HttpResponse, PageError> {
    let caller = &session.caller;
    let now = Utc::now();
    let needle = query.q.trim().to_lowercase();
    let (lines, matches) = caller.read(|state, workflow| {
        let viewer = caller.viewer(state, now);
        let mut counts = Counts::default();
        for grant in state.grants().filter(|g| g.gives_at(now) && viewer.sees_grant(state, workflow, g)) {
            *counts.grants.entry(grant.scope.to_string()).or_default() += 1;
        }
        for request in state.requests().filter(|r| r.is_pending() && viewer.sees_request(state, workflow, r)) {
            *counts.pending.entry(request.scope.to_string()).or_default() += 1;
        }
        let matching: BTreeSet<String> = if needle.is_empty() {
            BTreeSet::new()
        } else {
            let found = |scope: &&crate::domain::Scope| {
                scope.id.as_str().to_lowercase().contains(&needle) || scope.title.to_lowercase().contains(&needle)
            };
            state.scopes().filter(found).map(|scope| scope.id.to_string()).collect()
        };
        let shown = (!needle.is_empty()).then(|| {
            let ancestors = matching.iter().flat_map(|scope| state.ancestors_of(scope)).map(|a| a.to_string());
            matching.iter().cloned().chain(ancestors).collect::<BTreeSet<_>>()
        });
        let mut walk = Walk { state, shown, lines: Vec::new() };
        walk.visit(GLOBAL, 0, &mut Vec::new());
        let depths: Vec<usize> = walk.lines.iter().map(|(depth, _, _)| *depth).collect();
        let lines = walk
            .lines
            .iter()
            .enumerate()
            .map(|(index, (depth, id, children))| {
                let next = depths.get(index + 1).copied().unwrap_or(0);
                let folds = next > *depth;
                let scope = state.scope(id);
                TreeLine {
                    id: id.to_string(),
                    title: scope.map(|s| s.title.clone()).unwrap_or_default(),
                    kind: scope.map(|s| s.kind.clone()).unwrap_or_default(),
                    grants: counts.grants.get(*id).copied().unwrap_or(0),
                    pending: counts.pending.get(*id).copied().unwrap_or(0),
                    folds,
                    children: *children,
                    open: !needle.is_empty() || *depth < UNFOLDED_LEVELS,
                    matched: matching.contains(*id),
                    closes: if folds { 0 } else { depth - next },
                }
            })
            .collect();
        (lines, matching.len())
    })?;
    html(TreePage { head: session.head(), query: query.q.clone(), lines, matches })
}
