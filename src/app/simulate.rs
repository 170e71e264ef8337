//! "What would this workflow change?": the log read once, up to a moment, and judged under a
//! candidate workflow against the configured one (the domain's [`Simulation`]). Writes nothing.
//! The command line (`roleledger simulate`), the API and the audit page use this one function.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::{DifferenceCounts, DifferenceKind, Event, ScopeId, Simulation},
    store::{EventSelection, EventStore, Moment, StoreError},
    workflow::{RoleId, Workflow},
};

/// What the simulation found: `{summary, differences, position}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Simulated {
    /// How many differences of each kind.
    #[schema(value_type = Object)]
    pub summary: DifferenceCounts,
    /// In log order: the decisions first, then the grants in force at the end, then the decision rights.
    pub differences: Vec<SimulatedDifference>,
    /// The position of the last event judged.
    pub position: i64,
}

/// One difference; `position` is the decision's event or the grant's `RoleGranted`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SimulatedDifference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// `decision_without_authority`, `grant_not_allowed`, `decider_gained` or `decider_lost`.
    #[schema(value_type = String)]
    pub kind: DifferenceKind,
    pub user: String,
    #[schema(value_type = String)]
    pub role: RoleId,
    #[schema(value_type = String)]
    pub scope: ScopeId,
    pub detail: String,
}

impl Simulated {
    pub fn is_empty(&self) -> bool {
        self.differences.is_empty()
    }
}

/// How many events are folded between two chances for other tasks of the thread to run.
const YIELD_EVERY: i64 = 1_000;

/// Judges the log up to `until` (all of it when `None`) under `candidate` against `current`. The
/// end, where grants in force and decision rights are compared, is `until`'s time, or the time of
/// the last event judged for a position, or now.
pub async fn simulate(
    store: &EventStore,
    current: &Workflow,
    candidate: &Workflow,
    until: Option<Moment>,
) -> Result<Simulated, StoreError> {
    let mut simulation = Simulation::new(current, candidate);
    let mut selected = store.select(EventSelection { until, ..EventSelection::default() });
    let (mut position, mut last_recorded_at): (i64, Option<DateTime<Utc>>) = (0, None);
    while let Some(recorded) = selected.next().await? {
        // Raw appends that are no domain event change no state: they are passed over, as a rebuild does.
        if let Ok(event) = Event::from_parts(&recorded.event_type, &recorded.data) {
            simulation.step(recorded.position, recorded.recorded_at, &event);
        }
        (position, last_recorded_at) = (recorded.position, Some(recorded.recorded_at));
        // A server's worker runs other calls between these steps: the fold of a long log holds none of them long.
        if position % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
    }
    let end = match until {
        Some(Moment::Time(time)) => time,
        Some(Moment::Position(_)) => last_recorded_at.unwrap_or_else(Utc::now),
        None => Utc::now(),
    };
    let differences: Vec<SimulatedDifference> = simulation
        .finish(end)
        .into_iter()
        .map(|d| SimulatedDifference {
            position: d.at,
            kind: d.kind,
            user: d.user,
            role: d.role,
            scope: d.scope,
            detail: d.detail,
        })
        .collect();
    let mut summary = DifferenceCounts::default();
    for difference in &differences {
        summary.count(difference.kind);
    }
    Ok(Simulated { summary, differences, position })
}
