//! Planning in memory: each append positioned, versioned and hashed against the head, the
//! stream versions and the idempotency keys, including the batch's earlier appends; each command
//! decided by the planner first.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{batch::rows, unwind_guard, AppendJob, BatchError, CommandJob, Job, JobError, Models, Results, Written};
use crate::store::{
    backend::{IdempotencyRecord, Rows},
    event::RecordedEvent,
    outbox::{Handover, OutboxRow},
    planner::CommandPlanner,
    webhooks::DeliveryRow,
    AppendOutcome, AppendRequest, ExpectedVersion, LogHead, StoreError,
};

/// A batch planned in memory, each job against the state that includes the earlier ones.
pub(super) struct PlannedBatch<R> {
    pub(super) units: Vec<Result<Vec<Plan>, JobError<R>>>,
    pub(super) results: Results<R>,
}

/// What a planned batch writes: its events, idempotency keys and mail (and the mail's way to this
/// process's worker, once written).
pub(super) struct BatchRows {
    pub(super) events: Vec<RecordedEvent>,
    pub(super) keys: Vec<(String, IdempotencyRecord)>,
    pub(super) outbox: Vec<OutboxRow>,
    pub(super) deliveries: Vec<DeliveryRow>,
    pub(super) handover: Option<Handover>,
}

impl<R: Clone> PlannedBatch<R> {
    pub(super) fn plan<P: CommandPlanner<Refusal = R>>(
        planner: &mut Planner,
        mut models: Option<&mut Models<P>>,
        jobs: &[Job<P>],
    ) -> Result<Self, BatchError> {
        let mut units: Vec<Result<Vec<Plan>, JobError<R>>> = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.iter().enumerate() {
            // Deciding reads the model only: a panic there fails the job and the batch goes on.
            let unit = unwind_guard(|| plan_job(planner, models.as_deref(), job))
                .unwrap_or_else(|message| Err(JobError::Store(StoreError::Panicked(message))));
            if let Ok(plans) = &unit {
                unwind_guard(|| accept(planner, models.as_deref_mut(), plans))
                    .map_err(|message| BatchError::FoldPanicked { job: index, message })?;
            }
            units.push(unit);
        }
        let results = units
            .iter()
            .map(|unit| match unit {
                Ok(plans) => Ok(Written::of(plans)),
                Err(error) => Err(error.clone_for_answer()),
            })
            .collect();
        Ok(PlannedBatch { units, results })
    }

    /// Takes the rows out of the plans, and the mail they cause out of the writer's model.
    pub(super) fn rows<P: CommandPlanner>(
        &mut self,
        planner: &mut Planner,
        models: Option<&mut Models<P>>,
    ) -> BatchRows {
        let (events, keys) = rows(self.units.iter_mut().filter_map(|unit| unit.as_mut().ok()).flatten());
        let outbox = models.map(|models| models.take_outbox(planner)).unwrap_or_default();
        BatchRows { events, keys, outbox: outbox.mail, deliveries: outbox.deliveries, handover: outbox.handover }
    }
}

impl BatchRows {
    pub(super) fn as_rows<'r>(&'r self, head: &'r LogHead) -> Rows<'r> {
        Rows { events: &self.events, keys: &self.keys, head, outbox: &self.outbox, deliveries: &self.deliveries }
    }
}

/// Plans one job: a raw append as it is; a command decided against the writer's model.
pub(super) fn plan_job<P: CommandPlanner>(
    planner: &Planner,
    models: Option<&Models<P>>,
    job: &Job<P>,
) -> Result<Vec<Plan>, JobError<P::Refusal>> {
    let model = models.map(|models| &models.writer);
    match job {
        Job::Append(AppendJob { request, .. }) => {
            planner.plan(request, model).map(|plan| vec![plan]).map_err(JobError::Store)
        }
        Job::Execute(CommandJob { command, metadata, key, .. }) => {
            let model = model.ok_or(JobError::Store(StoreError::NoWorkflow))?;
            if let Some(key) = key {
                if let Some(repeat) = planner.recorded(&key.key, &key.fingerprint).map_err(JobError::Store)? {
                    return Ok(vec![repeat]);
                }
            }
            let events = model.decide(command).map_err(JobError::Rejected)?;
            // The lock and the caught-up model make the decision safe, so the streams take any version.
            let mut scratch = planner.clone();
            let mut plans = Vec::with_capacity(events.len());
            for planned in events {
                let new = planned.event.with_metadata(metadata.clone());
                let plan = scratch
                    .plan(&AppendRequest::new(planned.stream, ExpectedVersion::Any, vec![new]), Some(model))
                    .map_err(JobError::Store)?;
                scratch.accept(&plan);
                plans.push(plan);
            }
            if let (Some(key), Some(first), Some(last)) = (key, plans.first(), plans.last()) {
                // The command's events are contiguous: the record spans them all.
                let outcome = AppendOutcome { last_position: last.outcome.last_position, ..first.outcome.clone() };
                plans[0].key =
                    Some((key.key.clone(), IdempotencyRecord { fingerprint: key.fingerprint.clone(), outcome }));
            }
            Ok(plans)
        }
    }
}

/// The fast path's bookkeeping after a job is planned: the planner and the writer's model move on.
pub(super) fn accept<P: CommandPlanner>(planner: &mut Planner, models: Option<&mut Models<P>>, plans: &[Plan]) {
    for plan in plans {
        planner.accept(plan);
    }
    if let Some(models) = models {
        for plan in plans {
            models.fold(&plan.events);
        }
    }
}

/// What an append will write: its events (already positioned and hashed), its outcome, and its
/// key; or, for a repeat of a key, nothing and the outcome recorded with the key.
#[derive(Clone)]
pub(super) struct Plan {
    pub(super) events: Vec<RecordedEvent>,
    pub(super) key: Option<(String, IdempotencyRecord)>,
    pub(super) outcome: AppendOutcome,
    pub(super) repeated: bool,
}

impl Plan {
    /// The head after this plan's events; `None` when it writes none.
    pub(super) fn head(&self) -> Option<LogHead> {
        self.events.last().map(|last| LogHead { position: last.position, hash: last.hash.clone() })
    }
}

/// The state that appends are checked against: the head, stream versions and idempotency keys,
/// including the appends planned earlier in the same batch.
#[derive(Clone)]
pub(super) struct Planner {
    pub(super) head: LogHead,
    pub(super) versions: HashMap<String, i64>,
    pub(super) known_keys: HashMap<String, IdempotencyRecord>,
    /// The last mail id given out, the batch's included.
    pub(super) last_mail_id: i64,
    pub(super) now: DateTime<Utc>,
}

impl Planner {
    pub(super) fn plan<P: CommandPlanner>(
        &self,
        request: &AppendRequest,
        model: Option<&P>,
    ) -> Result<Plan, StoreError> {
        let fingerprint = request.idempotency_key.as_ref().map(|_| fingerprint(request));
        if let Some((key, fingerprint)) = request.idempotency_key.as_ref().zip(fingerprint.as_ref()) {
            if let Some(repeat) = self.recorded(key, fingerprint)? {
                return Ok(repeat);
            }
        }
        let current = self
            .versions
            .get(&request.stream)
            .copied()
            .or_else(|| model.and_then(|model| model.version_of(&request.stream)))
            .unwrap_or(0);
        if !request.expected.admits(current) {
            return Err(StoreError::Conflict {
                stream: request.stream.clone(),
                expected: request.expected,
                actual: current,
            });
        }
        let mut previous_hash = self.head.hash.clone();
        let events: Vec<RecordedEvent> = (1..)
            .zip(&request.events)
            .map(|(offset, new)| {
                let mut event = RecordedEvent {
                    position: self.head.position + offset,
                    stream: request.stream.clone(),
                    version: current + offset,
                    event_type: new.event_type.clone(),
                    schema_version: new.schema_version,
                    data: new.data.clone(),
                    metadata: new.metadata.clone(),
                    recorded_at: self.now,
                    event_id: Uuid::now_v7(),
                    hash: String::new(),
                };
                event.hash = event.chained_hash(&previous_hash);
                previous_hash.clone_from(&event.hash);
                event
            })
            .collect();
        let count = events.len() as i64;
        let outcome = AppendOutcome {
            stream: request.stream.clone(),
            first_position: self.head.position + 1,
            last_position: self.head.position + count,
            version: current + count,
        };
        let key = request
            .idempotency_key
            .clone()
            .zip(fingerprint)
            .map(|(key, fingerprint)| (key, IdempotencyRecord { fingerprint, outcome: outcome.clone() }));
        Ok(Plan { events, key, outcome, repeated: false })
    }

    /// A key recorded before (in the database or earlier in the batch): with the same fingerprint
    /// a repeat, which writes nothing and has the recorded outcome; with another, refused.
    fn recorded(&self, key: &str, fingerprint: &str) -> Result<Option<Plan>, StoreError> {
        match self.known_keys.get(key) {
            None => Ok(None),
            Some(record) if record.fingerprint == fingerprint => {
                Ok(Some(Plan { events: Vec::new(), key: None, outcome: record.outcome.clone(), repeated: true }))
            }
            Some(_) => Err(StoreError::IdempotencyKeyReused(key.to_string())),
        }
    }

    pub(super) fn accept(&mut self, plan: &Plan) {
        let Some(head) = plan.head() else { return };
        self.head = head;
        self.versions.insert(plan.outcome.stream.clone(), plan.outcome.version);
        if let Some((key, record)) = &plan.key {
            self.known_keys.insert(key.clone(), record.clone());
        }
    }
}

/// What an idempotency key promises to repeat: the stream and the events' types and data
/// (metadata may differ between retries, a different payload may not).
pub(super) fn fingerprint(request: &AppendRequest) -> String {
    let body = serde_json::json!({
        "stream": request.stream,
        "events": request.events.iter().map(|e| serde_json::json!({
            "type": e.event_type, "schema_version": e.schema_version, "data": e.data,
        })).collect::<Vec<_>>(),
    });
    hex::encode(Sha256::digest(crate::store::canonical::to_vec(&body)))
}
