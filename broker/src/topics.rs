//! The topic registry: which topics exist, their ids, partition counts and configs, and the open log
//! of every partition.
//!
//! Topic metadata is kept locally (the embedded single-node default, no etcd) in
//! `<data-dir>/__weir_meta/topics.json`, replaced atomically (write, fsync, rename, fsync dir) on every
//! change. Partition data lives in the storage engine's `DataDir`, one log per partition named
//! `<topic>-<partition>`. Owns no sockets and no wire types.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use weir_protocol::ErrorCode;
use weir_storage::{DataDir, FsyncPolicy, StorageError};

use crate::cluster::metadata::ClusterView;
use crate::partition::{RaftIo, ReplicaSetup};
use crate::producers::ProducerState;
use crate::topic_config::{ConfigError, TopicConfig, TopicDefaults};

/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// Upper bound on partitions per topic, so a CreateTopics request cannot make us open millions of files.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    #[error("topic '{0}' does not exist")]
    Unknown(String),
    #[error("invalid topic name '{0}'")]
    InvalidName(String),
    #[error("invalid partition count {0}")]
    InvalidPartitions(i32),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Replica(#[from] crate::partition::OpenError),
    #[error("metadata store: {0}")]
    Metadata(#[from] std::io::Error),
}

pub use crate::partition::Partition;

/// What every partition replica this registry opens is set up with.
#[derive(Clone)]
pub struct ReplicaContext {
    pub node_id: i32,
    pub io: Arc<dyn RaftIo>,
    pub election_timeout_ms: u64,
    pub election_jitter_ms: u64,
}

impl ReplicaContext {
    /// A broker with no peers: every partition a Raft group of one.
    pub fn single_node(node_id: i32, clock: Arc<dyn crate::clock::Clock>) -> Self {
        Self {
            node_id,
            io: Arc::new(crate::partition::LocalRaftIo { clock }),
            election_timeout_ms: 2_000,
            election_jitter_ms: 2_000,
        }
    }
}

pub struct Topic {
    pub name: String,
    pub id: [u8; 16],
    pub is_internal: bool,
    pub config: RwLock<TopicConfig>,
    /// Each partition's target replica set (the first is the preferred leader).
    pub assignment: Vec<Vec<i32>>,
    /// This broker's replica of each partition, where it hosts one (index = partition).
    local: Vec<Option<Arc<Partition>>>,
    /// When this broker added the topic to its registry (at start, for the topics it had).
    pub known_since: std::time::Instant,
}

impl Topic {
    /// Partitions the topic has (hosted here or not).
    pub fn partition_count(&self) -> usize {
        self.assignment.len().max(self.local.len())
    }

    /// Whether partition `index` exists.
    pub fn has_partition(&self, index: i32) -> bool {
        usize::try_from(index).is_ok_and(|i| i < self.partition_count())
    }

    /// This broker's replica of partition `index`, if it hosts one.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.local.get(i))
            .and_then(Option::as_ref)
    }

    /// This broker's replica of partition `index`, or what Kafka answers a request for a
    /// partition the broker does not host: `NOT_LEADER_OR_FOLLOWER` when the topic has it (the
    /// client refreshes its metadata and goes to the leader), `UNKNOWN_TOPIC_OR_PARTITION` when
    /// it does not.
    pub fn hosted(&self, index: i32) -> Result<&Arc<Partition>, ErrorCode> {
        match self.partition(index) {
            Some(p) => Ok(p),
            None if self.has_partition(index) => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        }
    }

    /// Whether the assignment puts a replica of partition `index` on broker `node`.
    pub fn is_assigned_here(&self, index: i32, node: i32) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.assignment.get(i))
            .is_some_and(|r| r.contains(&node))
    }

    /// The replicas this broker hosts, by partition index.
    pub fn local_partitions(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.local.iter().flatten()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TopicRecord {
    name: String,
    id: String,
    partitions: i32,
    #[serde(default)]
    internal: bool,
    config: TopicConfig,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct MetadataFile {
    topics: Vec<TopicRecord>,
}

/// Threads that open a topic's replicas at start (or when a topic arrives).
const OPEN_THREADS: usize = 8;

pub struct TopicRegistry {
    data: Arc<DataDir>,
    replicas: ReplicaContext,
    /// In a cluster the metadata is etcd's and this registry follows it ([`Self::apply_view`]);
    /// otherwise it owns the metadata in `topics.json`.
    clustered: bool,
    meta_dir: PathBuf,
    fsync: FsyncPolicy,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// The broker-level defaults every topic's config is completed with.
    defaults: RwLock<Arc<TopicDefaults>>,
    /// Serialises metadata changes so the file always reflects one consistent map.
    write_lock: Mutex<()>,
}

/// Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], not "." or "..".
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn log_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

impl TopicRegistry {
    /// Opens the registry: reads the metadata file and opens (recovering) every partition log.
    pub fn open(
        data_dir: &Path,
        data: Arc<DataDir>,
        fsync: FsyncPolicy,
        replicas: ReplicaContext,
    ) -> Result<Self, TopicError> {
        let meta_dir = data_dir.join("__weir_meta");
        std::fs::create_dir_all(&meta_dir)?;
        let registry = Self {
            data,
            replicas,
            clustered: false,
            meta_dir,
            fsync,
            topics: RwLock::new(BTreeMap::new()),
            defaults: RwLock::default(),
            write_lock: Mutex::new(()),
        };
        let file = registry.meta_dir.join("topics.json");
        let meta: MetadataFile = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetadataFile::default(),
            Err(e) => return Err(e.into()),
        };
        let mut topics = BTreeMap::new();
        for record in meta.topics {
            let id = uuid::Uuid::parse_str(&record.id)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let topic = registry.open_topic(
                &record.name,
                *id.as_bytes(),
                record.partitions,
                record.config,
                record.internal,
            )?;
            topics.insert(record.name, Arc::new(topic));
        }
        *registry.topics.write() = topics;
        Ok(registry)
    }

    /// A registry that follows the cluster metadata: empty until [`Self::apply_view`].
    pub fn open_clustered(
        data_dir: &Path,
        data: Arc<DataDir>,
        fsync: FsyncPolicy,
        replicas: ReplicaContext,
    ) -> Result<Self, TopicError> {
        let meta_dir = data_dir.join("__weir_meta");
        std::fs::create_dir_all(&meta_dir)?;
        Ok(Self {
            data,
            replicas,
            clustered: true,
            meta_dir,
            fsync,
            topics: RwLock::new(BTreeMap::new()),
            defaults: RwLock::default(),
            write_lock: Mutex::new(()),
        })
    }

    /// Whether the metadata lives in the cluster (etcd) rather than here.
    pub fn is_clustered(&self) -> bool {
        self.clustered
    }

    /// Makes the registry match the cluster metadata: topics appear and go, this broker's
    /// replicas are opened where it is assigned, retargeted when the assignment changes, and
    /// removed (log deleted) once neither assigned here nor a voter any more.
    pub fn apply_view(&self, view: &ClusterView) -> Result<(), TopicError> {
        let _guard = self.write_lock.lock();
        let current = self.topics.read().clone();
        let mut next = BTreeMap::new();
        let mut first_error = None;
        for (name, record) in &view.topics {
            let Ok(id) = uuid::Uuid::parse_str(&record.id) else {
                tracing::warn!(topic = %name, id = %record.id, "topic record with a bad id skipped");
                continue;
            };
            let id = *id.as_bytes();
            let existing = current.get(name).filter(|t| t.id == id);
            if let Some(t) = existing {
                let same_partitions = t.assignment == record.replicas
                    && t.local_partitions().all(|p| {
                        p.is_voter() || t.is_assigned_here(p.index, self.replicas.node_id)
                    });
                if same_partitions && *t.config.read() == record.config {
                    next.insert(name.clone(), t.clone());
                    continue;
                }
            }
            match self.build_topic(
                name,
                id,
                record.internal,
                record.config.clone(),
                record.replicas.clone(),
                existing.map(|t| t.as_ref()),
            ) {
                Ok(topic) => {
                    let log_config = topic.config.read().log_config(self.fsync);
                    for p in topic.local_partitions() {
                        p.log.set_config(log_config.clone());
                    }
                    next.insert(name.clone(), Arc::new(topic));
                }
                Err(e) => {
                    tracing::error!(topic = %name, error = %e, "cannot open the topic's replicas");
                    if let Some(t) = existing {
                        next.insert(name.clone(), t.clone());
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        for (name, old) in &current {
            let kept = next.get(name).filter(|t| t.id == old.id);
            for p in old.local_partitions() {
                if kept.is_none_or(|t| t.partition(p.index).is_none()) {
                    tracing::info!(topic = %name, partition = p.index, "removing this broker's replica");
                    if let Err(e) = self.data.remove_log(&log_name(name, p.index)) {
                        tracing::warn!(topic = %name, partition = p.index, error = %e, "cannot remove a replica's log");
                    }
                }
            }
        }
        *self.topics.write() = next;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Opens (recovering) one partition's log, rebuilds its producer state and starts its Raft
    /// replica with `replicas` as the partition's replica set (the initial voters when the log
    /// has no voter record yet).
    fn open_replica(
        &self,
        name: &str,
        index: i32,
        replicas: &[i32],
        config: &TopicConfig,
    ) -> Result<Arc<Partition>, TopicError> {
        let log = self
            .data
            .open_log(&log_name(name, index), config.log_config(self.fsync))?;
        let producers = ProducerState::recover(&log);
        let set: BTreeSet<i32> = replicas.iter().copied().collect();
        let setup = ReplicaSetup {
            node_id: self.replicas.node_id,
            initial_voters: set.clone(),
            target_replicas: set,
            election_timeout_ms: self.replicas.election_timeout_ms,
            election_jitter_ms: self.replicas.election_jitter_ms,
        };
        let partition =
            Partition::open(name, index, log, producers, setup, self.replicas.io.clone())?;
        if replicas.first() == Some(&self.replicas.node_id) {
            let now = self.replicas.io.now_ms();
            partition.with_raft(|r, _| r.campaign_if_new(now));
        }
        Ok(partition)
    }

    /// A topic with `assignment`, opening this broker's replicas (keeping those of `existing`).
    fn build_topic(
        &self,
        name: &str,
        id: [u8; 16],
        is_internal: bool,
        config: TopicConfig,
        assignment: Vec<Vec<i32>>,
        existing: Option<&Topic>,
    ) -> Result<Topic, TopicError> {
        let config = config.with_defaults(self.defaults.read().clone());
        let me = self.replicas.node_id;
        let index = |i: usize| i32::try_from(i).unwrap_or(i32::MAX);
        let mut local = Vec::with_capacity(assignment.len());
        let mut to_open = Vec::new();
        for (i, replicas) in assignment.iter().enumerate() {
            let kept = existing
                .and_then(|t| t.partition(index(i)))
                .filter(|p| replicas.contains(&me) || p.is_voter())
                .cloned();
            let replica = match kept {
                Some(p) => {
                    p.set_target_replicas(replicas.iter().copied().collect());
                    Some(p)
                }
                None if replicas.contains(&me) => {
                    to_open.push(i);
                    None
                }
                None => None,
            };
            local.push(replica);
        }
        // Opening a replica costs a few fsyncs (recovery, the election): with a thousand
        // partitions one after another that is seconds. Open them from a bounded set of threads,
        // as the data directory closes its logs.
        let next = AtomicUsize::new(0);
        let opened = Mutex::new(Vec::with_capacity(to_open.len()));
        std::thread::scope(|scope| {
            for _ in 0..to_open.len().min(OPEN_THREADS) {
                scope.spawn(|| {
                    while let Some(&i) = to_open.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let r = self.open_replica(name, index(i), &assignment[i], &config);
                        opened.lock().push((i, r));
                    }
                });
            }
        });
        for (i, r) in opened.into_inner() {
            local[i] = Some(r?);
        }
        Ok(Topic {
            name: name.to_string(),
            id,
            is_internal,
            config: RwLock::new(config),
            assignment,
            local,
            known_since: std::time::Instant::now(),
        })
    }

    /// Where a single node puts `partitions` partitions: all on itself.
    fn local_assignment(&self, partitions: i32) -> Vec<Vec<i32>> {
        vec![vec![self.replicas.node_id]; usize::try_from(partitions).unwrap_or(0)]
    }

    fn open_topic(
        &self,
        name: &str,
        id: [u8; 16],
        partitions: i32,
        config: TopicConfig,
        is_internal: bool,
    ) -> Result<Topic, TopicError> {
        let assignment = self.local_assignment(partitions);
        self.build_topic(name, id, is_internal, config, assignment, None)
    }

    fn persist(&self) -> Result<(), TopicError> {
        let meta = MetadataFile {
            topics: self
                .topics
                .read()
                .values()
                .map(|t| TopicRecord {
                    name: t.name.clone(),
                    id: uuid::Uuid::from_bytes(t.id).to_string(),
                    partitions: i32::try_from(t.partition_count()).unwrap_or(i32::MAX),
                    internal: t.is_internal,
                    config: t.config.read().clone(),
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&meta)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let tmp = self.meta_dir.join("topics.json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.meta_dir.join("topics.json"))?;
        std::fs::File::open(&self.meta_dir)?.sync_all()?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn by_id(&self, id: [u8; 16]) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let t = self.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.local.get(i).cloned().flatten())
    }

    /// [`Topic::hosted`] by topic name; a topic this broker does not know is
    /// `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn hosted(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, ErrorCode> {
        let t = self
            .get(topic)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
        t.hosted(partition).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// Checks a create request without creating anything (CreateTopics validate_only, and the first
    /// half of a real create).
    pub fn validate_create(
        &self,
        name: &str,
        partitions: i32,
        config: &[(String, String)],
    ) -> Result<TopicConfig, TopicError> {
        if !valid_topic_name(name) {
            return Err(TopicError::InvalidName(name.to_string()));
        }
        if self.topics.read().contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        Ok(TopicConfig::from_pairs(
            config.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?)
    }

    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        config: &[(String, String)],
        is_internal: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.write_lock.lock();
        let config = self.validate_create(name, partitions, config)?;
        let id = *uuid::Uuid::new_v4().as_bytes();
        let topic = Arc::new(self.open_topic(name, id, partitions, config, is_internal)?);
        self.topics.write().insert(name.to_string(), topic.clone());
        self.persist()?;
        Ok(topic)
    }

    pub fn delete(&self, name: &str) -> Result<(), TopicError> {
        let _guard = self.write_lock.lock();
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.persist()?;
        for p in topic.local_partitions() {
            self.data.remove_log(&log_name(name, p.index))?;
        }
        Ok(())
    }

    /// Grows a topic to `total` partitions (Kafka never shrinks).
    pub fn add_partitions(&self, name: &str, total: i32) -> Result<(), TopicError> {
        let _guard = self.write_lock.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = i32::try_from(topic.partition_count()).unwrap_or(i32::MAX);
        if total <= current || total > MAX_PARTITIONS_PER_TOPIC {
            return Err(TopicError::InvalidPartitions(total));
        }
        let config = topic.config.read().clone();
        // Only the new partitions are opened: the existing ones keep their logs, producer state
        // and in-flight appends.
        let mut assignment = topic.assignment.clone();
        assignment.extend(self.local_assignment(total - current));
        let replaced = Arc::new(self.build_topic(
            name,
            topic.id,
            topic.is_internal,
            config,
            assignment,
            Some(&topic),
        )?);
        self.topics.write().insert(name.to_string(), replaced);
        self.persist()?;
        Ok(())
    }

    /// Replaces a topic's config overrides (AlterConfigs) or applies a change (IncrementalAlterConfigs).
    pub fn update_config(
        &self,
        name: &str,
        change: impl FnOnce(&mut TopicConfig) -> Result<(), ConfigError>,
    ) -> Result<(), TopicError> {
        let _guard = self.write_lock.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let mut candidate = topic.config.read().clone();
        change(&mut candidate)?;
        let log_config = candidate.log_config(self.fsync);
        for p in topic.local_partitions() {
            p.log.set_config(log_config.clone());
        }
        *topic.config.write() = candidate;
        self.persist()?;
        Ok(())
    }

    /// The broker-level defaults topics are completed with now.
    pub fn defaults(&self) -> Arc<TopicDefaults> {
        self.defaults.read().clone()
    }

    /// Puts broker-level defaults in force for every topic (and the topics created from now
    /// on), applying them to the open logs. Nothing happens if they did not change.
    pub fn set_defaults(&self, defaults: TopicDefaults) {
        // Called on every cluster metadata change: the common case takes no lock.
        if **self.defaults.read() == defaults {
            return;
        }
        let _guard = self.write_lock.lock();
        let defaults = Arc::new(defaults);
        *self.defaults.write() = defaults.clone();
        for topic in self.all() {
            let config = topic.config.read().clone().with_defaults(defaults.clone());
            let log_config = config.log_config(self.fsync);
            for p in topic.local_partitions() {
                p.log.set_config(log_config.clone());
            }
            *topic.config.write() = config;
        }
    }

    /// Writes the recovery point of every partition written to since the last call.
    pub fn checkpoint_recovery_points(&self) -> usize {
        self.data.checkpoint_recovery_points()
    }

    /// One log cleaner pass over every local partition of a compacted topic that is due (see
    /// `Log::compact`); returns what each pass did, by topic. Weir's internal topics are left
    /// out: their coordinators bound them with snapshots of their own, and their logs replay as
    /// a sequence, not as the latest record of each key.
    pub fn compact_logs(&self, now_ms: i64) -> Vec<(String, weir_storage::CompactionStats)> {
        let mut cleaned = Vec::new();
        for topic in self.all().iter().filter(|t| !t.is_internal) {
            for p in topic.local_partitions() {
                match p.log.compact(now_ms, p.last_stable_offset()) {
                    Ok(None) => {}
                    Ok(Some(stats)) => {
                        cleaned.push((topic.name.clone(), stats));
                        tracing::info!(
                            topic = %topic.name,
                            partition = p.index,
                            segments = stats.segments_rewritten,
                            records_removed = stats.records_removed,
                            bytes_before = stats.bytes_before,
                            bytes_after = stats.bytes_after,
                            cleaned_to = stats.cleaned_to,
                            "compacted"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "compaction failed")
                    }
                }
            }
        }
        cleaned
    }

    /// Applies retention to every partition.
    pub fn enforce_retention(&self, now_ms: i64) {
        for topic in self.all() {
            for p in topic.local_partitions() {
                match p.log.enforce_retention(now_ms, p.high_watermark()) {
                    Ok(0) => {}
                    Ok(_) => p.note_log_start(),
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "retention failed")
                    }
                }
            }
        }
    }
}
