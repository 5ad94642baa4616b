//! The topic registry: which topics exist, their ids, partition counts and configs, and the open log
//! of every partition.
//!
//! Topic metadata is kept locally (the embedded single-node default, no etcd) in
//! `<data-dir>/__weir_meta/topics.json`, replaced atomically (write, fsync, rename, fsync dir) on every
//! change. Partition data lives in the storage engine's `DataDir`, one log per partition named
//! `<topic>-<partition>`. Owns no sockets and no wire types.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use weir_storage::{DataDir, FsyncPolicy, StorageError};

use crate::partition::{RaftIo, ReplicaSetup};
use crate::producers::ProducerState;
use crate::topic_config::{ConfigError, TopicConfig};

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
    pub partitions: Vec<Arc<Partition>>,
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

pub struct TopicRegistry {
    data: Arc<DataDir>,
    replicas: ReplicaContext,
    meta_dir: PathBuf,
    fsync: FsyncPolicy,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
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
            meta_dir,
            fsync,
            topics: RwLock::new(BTreeMap::new()),
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

    /// Opens (recovering) the logs of partitions `indexes` and rebuilds their producer state.
    fn open_partitions(
        &self,
        name: &str,
        indexes: std::ops::Range<i32>,
        config: &TopicConfig,
    ) -> Result<Vec<Arc<Partition>>, TopicError> {
        let log_config = config.log_config(self.fsync);
        indexes
            .map(|index| {
                let log = self
                    .data
                    .open_log(&log_name(name, index), log_config.clone())?;
                let producers = ProducerState::recover(&log);
                let me = self.replicas.node_id;
                let setup = ReplicaSetup {
                    node_id: me,
                    initial_voters: [me].into(),
                    target_replicas: [me].into(),
                    election_timeout_ms: self.replicas.election_timeout_ms,
                    election_jitter_ms: self.replicas.election_jitter_ms,
                };
                Ok(Partition::open(
                    name,
                    index,
                    log,
                    producers,
                    setup,
                    self.replicas.io.clone(),
                )?)
            })
            .collect()
    }

    fn open_topic(
        &self,
        name: &str,
        id: [u8; 16],
        partitions: i32,
        config: TopicConfig,
        is_internal: bool,
    ) -> Result<Topic, TopicError> {
        let partitions = self.open_partitions(name, 0..partitions, &config)?;
        Ok(Topic {
            name: name.to_string(),
            id,
            is_internal,
            config: RwLock::new(config),
            partitions,
        })
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
                    partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
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
            .and_then(|i| t.partitions.get(i).cloned())
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
        for p in &topic.partitions {
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
        let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if total <= current || total > MAX_PARTITIONS_PER_TOPIC {
            return Err(TopicError::InvalidPartitions(total));
        }
        let config = topic.config.read().clone();
        // Only the new partitions are opened: the existing ones keep their logs, producer state
        // and in-flight appends.
        let mut partitions = topic.partitions.clone();
        partitions.extend(self.open_partitions(name, current..total, &config)?);
        let replaced = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            is_internal: topic.is_internal,
            config: RwLock::new(config),
            partitions,
        });
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
        for p in &topic.partitions {
            p.log.set_config(log_config.clone());
        }
        *topic.config.write() = candidate;
        self.persist()?;
        Ok(())
    }

    /// Applies retention to every partition.
    pub fn enforce_retention(&self, now_ms: i64) {
        for topic in self.all() {
            for p in &topic.partitions {
                match p.log.enforce_retention(now_ms) {
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
