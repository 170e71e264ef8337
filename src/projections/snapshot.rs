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
    /// Snapshots not made or not stored because they would not fit (see `Skip`).
    pub skipped: AtomicI64,
}

/// The largest body one row holds: PostgreSQL's `bytea` takes at most 1 GB, SQLite's default
/// limit of a value is 1,000,000,000 bytes (a margin for the row's other columns).
const LARGEST_BODY: u64 = 1_000_000_000 - (1 << 20);

/// Why no snapshot is made at a position: a copy of a model that the machine cannot hold twice
/// would have the server killed for memory, and a body beyond one row is refused by the database
/// after all the work of making it.
#[derive(Debug, PartialEq, thiserror::Error)]
enum Skip {
    #[error("{available} bytes of memory are available, and the copy of the model and its body need up to {needed}")]
    Memory { available: u64, needed: u64 },
    #[error("its body would be about {predicted} bytes, more than one row holds ({LARGEST_BODY})")]
    Size { predicted: u64 },
}

/// The memory of this process and what is left of the machine's (or its control group's).
#[derive(Debug, Clone, Copy)]
struct Memory {
    resident: u64,
    available: u64,
}

impl Memory {
    /// Read from /proc and the cgroup v2 files on Linux; None elsewhere (nothing is skipped then).
    fn now() -> Option<Memory> {
        let kib = |file: &str, name: &str| field(&std::fs::read_to_string(file).ok()?, name)?.checked_mul(1024);
        let resident = kib("/proc/self/status", "VmRSS:")?;
        let machine = kib("/proc/meminfo", "MemAvailable:")?;
        Some(Memory { resident, available: group_room().map_or(machine, |group| group.min(machine)) })
    }
}

/// What the process's memory control group leaves: its limit (the tightest of it and its
/// ancestors) less its working set (the usage less the inactive page cache, which the kernel
/// reclaims first; as the kubelet counts it). cgroup v1 where the memory controller is there, else
/// v2; None without a limit.
fn group_room() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // `ID:CONTROLLERS:PATH`; v2's line has no controllers.
    let path_of = |memory: bool| {
        groups.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let here = if memory { controllers.split(',').any(|c| c == "memory") } else { controllers.is_empty() };
            here.then(|| path.to_string())
        })
    };
    // Inside a cgroup namespace the group is the mount's root.
    let folder = |root: &str, path: &str| {
        let folder = std::path::PathBuf::from(format!("{root}{path}"));
        if folder.is_dir() {
            folder
        } else {
            std::path::PathBuf::from(root)
        }
    };
    let number = |file: std::path::PathBuf| std::fs::read_to_string(file).ok()?.trim().parse::<u64>().ok();
    let room = |limit: u64, usage: u64, inactive: Option<u64>| {
        limit.saturating_sub(usage.saturating_sub(inactive.unwrap_or(0)))
    };
    if let Some(path) = path_of(true) {
        let group = folder("/sys/fs/cgroup/memory", &path);
        let stat = std::fs::read_to_string(group.join("memory.stat")).ok()?;
        let limit = field(&stat, "hierarchical_memory_limit")?;
        return Some(room(limit, number(group.join("memory.usage_in_bytes"))?, field(&stat, "total_inactive_file")));
    }
    let mut group = folder("/sys/fs/cgroup", &path_of(false)?);
    let mut tightest: Option<u64> = None;
    loop {
        // "max" does not parse: no limit at this level.
        if let (Some(limit), Some(usage)) = (number(group.join("memory.max")), number(group.join("memory.current"))) {
            let stat = std::fs::read_to_string(group.join("memory.stat")).unwrap_or_default();
            let here = room(limit, usage, field(&stat, "inactive_file"));
            tightest = Some(tightest.map_or(here, |room| room.min(here)));
        }
        if group.as_os_str() == "/sys/fs/cgroup" || !group.pop() {
            return tightest;
        }
    }
}

/// The number after `name` on its line (`VmRSS:   123 kB` in /proc, `inactive_file 4096` in a
/// cgroup's memory.stat).
fn field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.split_whitespace().next() == Some(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether to skip the snapshot at `position`. Making and storing one takes up to one and a half
/// times the process's resident size more (the copy of the read model, the body as it grows, and
/// the body again in the database call: 470 MB resident at 300,000 events rose to a peak of
/// 1,094 MB), and the machine must have that free. `body_per_event` is what the last body made
/// weighed per event of the log: the body grows with the log.
fn skip(position: i64, body_per_event: Option<f64>, memory: Option<Memory>) -> Option<Skip> {
    if let Some(per_event) = body_per_event {
        // A float's estimate, as large as it may be: `as` saturates.
        let predicted = (per_event * position.max(0) as f64) as u64;
        if predicted > LARGEST_BODY {
            return Some(Skip::Size { predicted });
        }
    }
    let memory = memory?;
    let needed = memory.resident.saturating_add(memory.resident / 2);
    (memory.available < needed).then_some(Skip::Memory { available: memory.available, needed })
}

/// Stores a snapshot of the published model whenever it has moved `every` events beyond the
/// last one. The copy is taken under the read lock (a clone); serializing and sealing run on the
/// blocking pool and the write after it, so the writer is not held up. Several processes may
/// store one at the same position: the first one stays. A snapshot that would not fit (`Skip`) is
/// left out, logged and counted, and the next one tried `every` events later.
pub(super) async fn keep_snapshots(
    mut feed: LogFeed,
    model: Arc<RwLock<DomainModel>>,
    snapshots: Snapshots,
    sealer: Arc<Sealer>,
    every: i64,
    stats: Arc<SnapshotStats>,
) {
    let next_after = |position: i64| (position / every).saturating_add(1).saturating_mul(every);
    let mut next = next_after(stats.newest.load(Ordering::Relaxed));
    let mut body_per_event = None;
    while feed.next_head().await.is_some() {
        let position = model.read().unwrap_or_else(|poisoned| poisoned.into_inner()).position();
        if position < next {
            continue;
        }
        next = next_after(position);
        if let Some(reason) = skip(position, body_per_event, Memory::now()) {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(position, %reason, "no snapshot of the read model at this position");
            continue;
        }
        let copy = model.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let position = copy.position();
        let snapshot = match seal(copy, &snapshots, sealer.clone()).await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(position, %error, "cannot make a snapshot of the read model");
                continue;
            }
        };
        let size = snapshot.body.len() as u64;
        body_per_event = Some(size as f64 / position.max(1) as f64);
        if size > LARGEST_BODY {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(position, reason = %Skip::Size { predicted: size }, "a snapshot of the read model is not stored");
            continue;
        }
        match snapshots.save(&snapshot).await {
            Ok(()) => {
                stats.newest.store(position, Ordering::Relaxed);
                tracing::info!(position, bytes = size, "stored a snapshot of the read model");
            }
            Err(error) => tracing::warn!(position, %error, "cannot store a snapshot of the read model"),
        }
    }
}

/// The copy serialized and sealed, on the blocking pool; the copy is dropped there.
async fn seal(copy: DomainModel, snapshots: &Snapshots, sealer: Arc<Sealer>) -> Result<StoredSnapshot, String> {
    let position = copy.position();
    let hash = snapshots.hash_at(position).await.map_err(|e| e.to_string())?;
    // The published model holds committed events only.
    let hash = hash.ok_or_else(|| format!("the log does not reach position {position}"))?;
    tokio::task::spawn_blocking(move || sealer.seal(&copy, hash)).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn a_copy_is_made_only_where_the_machine_can_hold_it() {
        let memory = |resident, available| Some(Memory { resident, available });
        assert_eq!(skip(100_000, None, memory(GIB, 20 * GIB)), None);
        assert_eq!(skip(100_000, None, None), None, "nothing known of the memory: made");
        // The 10-million-event model on this machine: 13.9 GB resident, 9 GB left.
        assert_eq!(
            skip(10_000_000, None, memory(14 * GIB, 9 * GIB)),
            Some(Skip::Memory { available: 9 * GIB, needed: 21 * GIB })
        );
        assert_eq!(skip(100_000, None, memory(2 * GIB, 3 * GIB)), None, "one and a half times is enough");
        assert!(skip(100_000, None, memory(2 * GIB, 3 * GIB - 1)).is_some());
        assert!(skip(100_000, None, memory(u64::MAX, u64::MAX)).is_none(), "checked arithmetic");
    }

    #[test]
    fn a_body_beyond_one_row_is_foreseen_from_the_last_one() {
        // 341 MB at a million events (bench/RESULTS.md): fits at 2.9 million, not at 3 million.
        let per_event = 341_000_000.0 / 1_000_000.0;
        assert_eq!(skip(2_900_000, Some(per_event), None), None);
        assert_eq!(skip(3_000_000, Some(per_event), None), Some(Skip::Size { predicted: 1_023_000_000 }));
        assert!(matches!(skip(i64::MAX, Some(f64::MAX), None), Some(Skip::Size { predicted: u64::MAX })));
    }

    #[test]
    fn memory_is_read_from_proc_and_cgroup_lines() {
        let status = "Name:\troleledger\nVmPeak:\t  200 kB\nVmRSS:\t   65536 kB\nThreads:\t8\n";
        assert_eq!(field(status, "VmRSS:"), Some(65536));
        assert_eq!(field("MemTotal: 24 kB\nMemAvailable:   22000000 kB\n", "MemAvailable:"), Some(22_000_000));
        assert_eq!(field(status, "MemAvailable:"), None);
        assert_eq!(field("VmRSS: lots kB", "VmRSS:"), None);
        let stat = "active_file 100\ninactive_file 4096\ntotal_inactive_file 8192\n";
        assert_eq!(field(stat, "inactive_file"), Some(4096), "the whole name, not a line that ends in it");
        assert_eq!(field(stat, "total_inactive_file"), Some(8192));
        let now = Memory::now().expect("this is Linux");
        assert!(now.resident > 0 && now.available > 0, "{now:?}");
    }
}
