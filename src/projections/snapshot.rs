//! Snapshots of the read model, so that a start folds only the log's tail: the model serialized
//! (MessagePack) and sealed with an HMAC-SHA256 whose key is kept outside the database. A stored
//! snapshot is trusted only when its MAC verifies, the chain hash it records is the log's at its
//! position, and it was made under this workflow and this format; any other is ignored, and the
//! reason logged. The store keeps the bytes; judging them is done here.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc, RwLock,
};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{DomainModel, GrantHistory};
use crate::{
    domain::State,
    store::{LogFeed, Snapshots, StoreError, StoredSnapshot},
    workflow::Workflow,
};

/// The shape of a snapshot's body: bumped whenever the model's types change shape, so that a
/// snapshot of an older shape is ignored rather than misread.
pub const FORMAT_VERSION: i32 = 1;

/// What the body holds: the model less its workflow (the current one is checked by digest).
#[derive(Serialize)]
struct BodyRef<'a> {
    state: &'a State,
    position: i64,
    versions: &'a std::collections::HashMap<String, i64>,
    history: &'a GrantHistory,
}

#[derive(Deserialize)]
struct Body {
    state: State,
    position: i64,
    versions: std::collections::HashMap<String, i64>,
    history: GrantHistory,
}

/// Why a stored snapshot was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("its MAC does not verify (another key, or the snapshot was changed)")]
    Mac,
    #[error("format version {found}, not {FORMAT_VERSION}")]
    Format { found: i32 },
    #[error("made under another workflow (digest {found})")]
    Workflow { found: String },
    #[error("its chain hash {recorded} is not the log's at that position ({log})")]
    ChainHash { recorded: String, log: String },
    #[error("the log does not reach its position")]
    BeyondLog,
    #[error("its body cannot be read: {0}")]
    Body(String),
}

/// The digest of a workflow as it shapes the model: a snapshot folded under other rules is of no
/// use. Made of the workflow's contents (not its file name), in a deterministic rendering; a new
/// build that renders them otherwise only costs one full fold.
pub fn workflow_digest(workflow: &Workflow) -> String {
    let contents = format!(
        "{:?}",
        (
            &workflow.name,
            &workflow.description,
            &workflow.kinds,
            &workflow.roles,
            &workflow.implications,
            &workflow.rules,
            &workflow.settings,
            &workflow.reviews
        )
    );
    hex::encode(Sha256::digest(contents.as_bytes()))
}

/// Makes and judges snapshots with one key, under one workflow.
pub struct Sealer {
    key: Vec<u8>,
    workflow: Arc<Workflow>,
    digest: String,
}

impl Sealer {
    pub fn new(key: Vec<u8>, workflow: Arc<Workflow>) -> Self {
        let digest = workflow_digest(&workflow);
        Sealer { key, workflow, digest }
    }

    /// The model serialized and sealed; `chain_hash` is the log's hash at the model's position.
    pub fn seal(&self, model: &DomainModel, chain_hash: String) -> StoredSnapshot {
        let body = BodyRef {
            state: model.state(),
            position: model.position(),
            versions: model.versions(),
            history: model.history(),
        };
        let body = rmp_serde::to_vec_named(&body).expect("the model serializes");
        self.seal_body(model.position(), chain_hash, self.digest.clone(), FORMAT_VERSION, body)
    }

    /// A snapshot of these parts with its MAC (also how tests make snapshots that a key signs).
    pub fn seal_body(
        &self,
        position: i64,
        chain_hash: String,
        workflow_digest: String,
        format_version: i32,
        body: Vec<u8>,
    ) -> StoredSnapshot {
        let mut snapshot =
            StoredSnapshot { position, chain_hash, workflow_digest, format_version, body, mac: Vec::new() };
        snapshot.mac = self.mac(&snapshot).finalize().into_bytes().to_vec();
        snapshot
    }

    /// The MAC over every part but the MAC itself, each with its length, so that no two snapshots
    /// share the bytes it covers.
    fn mac(&self, snapshot: &StoredSnapshot) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        let parts: [&[u8]; 5] = [
            &snapshot.position.to_be_bytes(),
            snapshot.chain_hash.as_bytes(),
            snapshot.workflow_digest.as_bytes(),
            &snapshot.format_version.to_be_bytes(),
            &snapshot.body,
        ];
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The model a stored snapshot holds, if it is valid: `log_hash` is the log's chain hash at
    /// its position (None when the log does not reach it).
    pub fn open(&self, snapshot: &StoredSnapshot, log_hash: Option<&str>) -> Result<DomainModel, Rejection> {
        self.mac(snapshot).verify_slice(&snapshot.mac).map_err(|_| Rejection::Mac)?;
        if snapshot.format_version != FORMAT_VERSION {
            return Err(Rejection::Format { found: snapshot.format_version });
        }
        if snapshot.workflow_digest != self.digest {
            return Err(Rejection::Workflow { found: snapshot.workflow_digest.clone() });
        }
        match log_hash {
            None => return Err(Rejection::BeyondLog),
            Some(log) if log != snapshot.chain_hash => {
                return Err(Rejection::ChainHash { recorded: snapshot.chain_hash.clone(), log: log.to_string() })
            }
            Some(_) => {}
        }
        let body: Body = rmp_serde::from_slice(&snapshot.body).map_err(|error| Rejection::Body(error.to_string()))?;
        if body.position != snapshot.position {
            return Err(Rejection::Body(format!("it holds position {}, not {}", body.position, snapshot.position)));
        }
        Ok(DomainModel::restored(self.workflow.clone(), body.state, body.position, body.versions, body.history))
    }

    /// The newest valid stored snapshot's model, the others (newer ones that are not valid)
    /// logged with the reason and passed over. None when no snapshot is valid.
    pub async fn newest_valid(&self, snapshots: &Snapshots) -> Result<Option<DomainModel>, StoreError> {
        for position in snapshots.positions().await? {
            let Some(snapshot) = snapshots.load(position).await? else { continue };
            let log_hash = snapshots.hash_at(position).await?;
            match self.open(&snapshot, log_hash.as_deref()) {
                Ok(model) => return Ok(Some(model)),
                Err(reason) => tracing::warn!(position, %reason, "a snapshot of the read model is ignored"),
            }
        }
        Ok(None)
    }
}

/// What this process knows of snapshots, for `/metrics`.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// The position of the snapshot the start loaded (0: none, it folded the whole log).
    pub loaded_at: AtomicI64,
    /// The events the start folded beyond it.
    pub folded_at_start: AtomicI64,
    /// The position of the newest snapshot this process stored or loaded (0: none).
    pub newest: AtomicI64,
}

/// Stores a snapshot of the published model whenever it has moved `every` events beyond the
/// last one. The copy is taken under the read lock (a clone); serializing and sealing run on the
/// blocking pool and the write after it, so the writer is not held up. Several processes may
/// store one at the same position: the first one stays.
pub(super) async fn keep_snapshots(
    mut feed: LogFeed,
    model: Arc<RwLock<DomainModel>>,
    snapshots: Snapshots,
    sealer: Arc<Sealer>,
    every: i64,
    stats: Arc<SnapshotStats>,
) {
    let next_after = |position: i64| (position / every + 1) * every;
    let mut next = next_after(stats.newest.load(Ordering::Relaxed));
    while feed.next_head().await.is_some() {
        let position = model.read().unwrap_or_else(|poisoned| poisoned.into_inner()).position();
        if position < next {
            continue;
        }
        let copy = model.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let position = copy.position();
        match store_snapshot(copy, &snapshots, sealer.clone()).await {
            Ok(()) => {
                stats.newest.store(position, Ordering::Relaxed);
                tracing::info!(position, "stored a snapshot of the read model");
            }
            Err(error) => tracing::warn!(position, %error, "cannot store a snapshot of the read model"),
        }
        next = next_after(position);
    }
}

async fn store_snapshot(copy: DomainModel, snapshots: &Snapshots, sealer: Arc<Sealer>) -> Result<(), String> {
    let position = copy.position();
    let hash = snapshots.hash_at(position).await.map_err(|e| e.to_string())?;
    // The published model holds committed events only.
    let hash = hash.ok_or_else(|| format!("the log does not reach position {position}"))?;
    let sealing = tokio::task::spawn_blocking(move || sealer.seal(&copy, hash));
    let snapshot = sealing.await.map_err(|e| e.to_string())?;
    snapshots.save(&snapshot).await.map_err(|e| e.to_string())
}
