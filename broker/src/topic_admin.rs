//! Creating, deleting and growing topics, the same way whether the metadata is local (a single
//! node: `topics.json`) or the cluster's (etcd: a topic record every broker applies).
//!
//! In a cluster, a topic is created by writing its record (with each partition's replicas,
//! placed rack-aware by `cluster::placement`) to etcd; every broker, this one included, opens its
//! replicas when its watch delivers the record. The calls here return once this broker has
//! applied the change, so a Metadata request right after sees it. Owns no wire types.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;
use crate::cluster::metadata::TopicRecord;
use crate::cluster::placement;
use crate::cluster::store::StoreError;
use crate::config::BrokerConfig;
use crate::topic_config::{ConfigError, TopicConfig};
use crate::topics::{valid_topic_name, Topic, TopicError, MAX_PARTITIONS_PER_TOPIC};

/// How long a broker waits to see its own metadata change come back through the watch.
const APPLY_WAIT_MS: u64 = 10_000;
/// How long CreateTopics waits for a new topic's first leaders before answering anyway.
const LEADERS_WAIT_MS: u64 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum TopicAdminError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("{0}")]
    ReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    Assignment(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the change was written but has not reached this broker yet")]
    NotApplied,
}

impl From<ConfigError> for TopicAdminError {
    fn from(e: ConfigError) -> Self {
        TopicAdminError::Topic(TopicError::Config(e))
    }
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub name: String,
    /// Partitions; ignored when `assignment` is given.
    pub partitions: i32,
    /// Replicas per partition; -1: the broker's default.
    pub replication_factor: i32,
    /// Explicit replica lists, one per partition (empty: placed by the broker).
    pub assignment: Vec<Vec<i32>>,
    pub configs: Vec<(String, String)>,
    pub internal: bool,
    pub validate_only: bool,
}

impl CreateSpec {
    /// How a Kafka internal topic (`__consumer_offsets`, `__transaction_state`,
    /// `__share_group_state`) is created, whoever needs it first: its coordinator, or a Metadata
    /// request allowed to auto-create topics. Each has its own partition count (the broker's
    /// `offsets-topic-num-partitions`, ...) and configs, as in Kafka; created with the defaults of
    /// ordinary topics it would keep a partition count its coordinator does not expect (a
    /// partition count never changes afterwards). `None` for any other name.
    pub fn internal(config: &BrokerConfig, name: &str) -> Option<CreateSpec> {
        let (partitions, configs) = match name {
            crate::offsets::OFFSETS_TOPIC => (
                config.offsets_topic_num_partitions,
                crate::offsets::OffsetStore::topic_configs(),
            ),
            crate::txn::TXN_TOPIC => (
                config.transaction_state_log_num_partitions,
                crate::txn::TxnCoordinator::topic_configs(),
            ),
            crate::share::SHARE_STATE_TOPIC => (
                config.share_coordinator_state_topic_num_partitions,
                crate::share::store::topic_configs(),
            ),
            _ => return None,
        };
        Some(CreateSpec {
            name: name.to_string(),
            partitions,
            replication_factor: -1,
            assignment: Vec::new(),
            configs,
            internal: true,
            validate_only: false,
        })
    }
}

/// What a create settled on (for CreateTopics' answer).
#[derive(Debug, Clone)]
pub struct Created {
    pub id: [u8; 16],
    pub partitions: i32,
    pub replication_factor: i32,
    pub config: TopicConfig,
}

impl Broker {
    /// Creates the internal topic `name` ([`CreateSpec::internal`]) if this broker knows of none
    /// yet. A failure (e.g. etcd unreachable) is only logged: the next caller that needs the
    /// topic tries again.
    pub async fn ensure_internal_topic(self: &Arc<Self>, name: &str) {
        if self.topics.get(name).is_some() {
            return;
        }
        let Some(spec) = CreateSpec::internal(&self.config, name) else {
            return;
        };
        if let Err(e) = self.create_topic(spec).await {
            tracing::debug!(topic = name, error = %e, "internal topic not created (yet)");
        }
    }

    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub async fn create_topic(
        self: &Arc<Self>,
        spec: CreateSpec,
    ) -> Result<Created, TopicAdminError> {
        let Some(cluster) = self.cluster.clone() else {
            return self.create_local(spec).await;
        };
        if !valid_topic_name(&spec.name) {
            return Err(TopicError::InvalidName(spec.name).into());
        }
        if cluster
            .store
            .with_view(|v| v.topics.contains_key(&spec.name))
        {
            return Err(TopicError::AlreadyExists(spec.name).into());
        }
        let config =
            TopicConfig::from_pairs(spec.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let candidates = cluster.caught_up_candidates().await;
        let assignment = if spec.assignment.is_empty() {
            let partitions = if spec.partitions == -1 {
                self.config.default_partitions
            } else {
                spec.partitions
            };
            if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
                return Err(TopicError::InvalidPartitions(partitions).into());
            }
            let rf = if spec.replication_factor == -1 {
                let live = i32::try_from(candidates.len()).unwrap_or(i32::MAX);
                let settings = &cluster.settings;
                let wanted = match spec.name.as_str() {
                    _ if !spec.internal => settings.default_replication_factor,
                    crate::txn::TXN_TOPIC => settings.transaction_state_replication_factor,
                    _ => settings.offsets_replication_factor,
                };
                wanted.min(live).max(1)
            } else {
                spec.replication_factor
            };
            let start = usize::try_from(uuid::Uuid::new_v4().as_u128() % 1_000_003).unwrap_or(0);
            placement::assign(&candidates, 0, partitions, rf, start)
                .map_err(|e| TopicAdminError::ReplicationFactor(e.to_string()))?
        } else {
            check_assignment(&spec.assignment, &candidates)?;
            spec.assignment.clone()
        };
        let partitions = i32::try_from(assignment.len()).unwrap_or(i32::MAX);
        let replication_factor =
            i32::try_from(assignment.first().map_or(0, Vec::len)).unwrap_or(i32::MAX);
        let id = uuid::Uuid::new_v4();
        let created = Created {
            id: *id.as_bytes(),
            partitions,
            replication_factor,
            config: config.clone().with_defaults(self.topics.defaults()),
        };
        if spec.validate_only {
            return Ok(created);
        }
        let record = TopicRecord {
            name: spec.name.clone(),
            id: id.to_string(),
            internal: spec.internal,
            config,
            replicas: assignment,
        };
        cluster
            .store
            .create_topic(&record)
            .await
            .map_err(|e| match e {
                StoreError::TopicExists(n) => TopicAdminError::Topic(TopicError::AlreadyExists(n)),
                e => e.into(),
            })?;
        let name = spec.name.clone();
        self.wait_applied(move |b| b.topics.get(&name).is_some_and(|t| t.id == created.id))
            .await?;
        self.wait_for_leaders(&spec.name).await;
        Ok(created)
    }

    async fn create_local(self: &Arc<Self>, spec: CreateSpec) -> Result<Created, TopicAdminError> {
        if spec.replication_factor > 1
            || spec
                .assignment
                .iter()
                .any(|r| r.len() > 1 || r.iter().any(|b| *b != self.config.node_id))
        {
            return Err(TopicAdminError::ReplicationFactor(format!(
                "replication factor {} is larger than the 1 available broker",
                spec.replication_factor
            )));
        }
        let partitions = if !spec.assignment.is_empty() {
            i32::try_from(spec.assignment.len()).unwrap_or(i32::MAX)
        } else if spec.partitions == -1 {
            self.config.default_partitions
        } else {
            spec.partitions
        };
        if spec.validate_only {
            let config = self
                .topics
                .validate_create(&spec.name, partitions, &spec.configs)?;
            return Ok(Created {
                id: [0; 16],
                partitions,
                replication_factor: 1,
                config: config.with_defaults(self.topics.defaults()),
            });
        }
        let b = self.clone();
        let topic = tokio::task::spawn_blocking(move || {
            b.topics
                .create(&spec.name, partitions, &spec.configs, spec.internal)
        })
        .await
        .map_err(|e| TopicError::Metadata(std::io::Error::other(e)))??;
        let config = topic.config.read().clone();
        Ok(Created {
            id: topic.id,
            partitions,
            replication_factor: 1,
            config,
        })
    }

    /// Deletes a topic and its data (every replica, in a cluster).
    pub async fn delete_topic(self: &Arc<Self>, name: &str) -> Result<(), TopicAdminError> {
        let Some(cluster) = self.cluster.clone() else {
            let b = self.clone();
            let name = name.to_string();
            return tokio::task::spawn_blocking(move || b.topics.delete(&name))
                .await
                .map_err(|e| TopicError::Metadata(std::io::Error::other(e)))?
                .map_err(Into::into);
        };
        cluster
            .store
            .delete_topic(name)
            .await
            .map_err(|e| match e {
                StoreError::UnknownTopic(n) => TopicAdminError::Topic(TopicError::Unknown(n)),
                e => e.into(),
            })?;
        let name = name.to_string();
        self.wait_applied(move |b| b.topics.get(&name).is_none())
            .await
    }

    /// Grows a topic to `total` partitions (Kafka never shrinks), with the new partitions' replicas
    /// placed by the broker unless `assignment` names them.
    pub async fn add_partitions(
        self: &Arc<Self>,
        name: &str,
        total: i32,
        assignment: Vec<Vec<i32>>,
    ) -> Result<(), TopicAdminError> {
        let Some(cluster) = self.cluster.clone() else {
            let b = self.clone();
            let name = name.to_string();
            return tokio::task::spawn_blocking(move || b.topics.add_partitions(&name, total))
                .await
                .map_err(|e| TopicError::Metadata(std::io::Error::other(e)))?
                .map_err(Into::into);
        };
        if total > MAX_PARTITIONS_PER_TOPIC {
            return Err(TopicError::InvalidPartitions(total).into());
        }
        let candidates = cluster.caught_up_candidates().await;
        if !assignment.is_empty() {
            check_assignment(&assignment, &candidates)?;
        }
        let mut failure = None;
        cluster
            .store
            .update_topic(name, |record| {
                let current = i32::try_from(record.replicas.len()).unwrap_or(i32::MAX);
                if total <= current {
                    failure = Some(TopicError::InvalidPartitions(total));
                    return Ok(());
                }
                let rf = i32::try_from(record.replicas.first().map_or(1, Vec::len)).unwrap_or(1);
                let added = if assignment.is_empty() {
                    match placement::assign(&candidates, current, total - current, rf, 0) {
                        Ok(a) => a,
                        Err(e) => {
                            failure = Some(TopicError::InvalidPartitions(total));
                            tracing::warn!(error = %e, "cannot place new partitions");
                            return Ok(());
                        }
                    }
                } else {
                    assignment.clone()
                };
                record.replicas.extend(added);
                Ok(())
            })
            .await
            .map_err(|e| match e {
                StoreError::UnknownTopic(n) => TopicAdminError::Topic(TopicError::Unknown(n)),
                e => e.into(),
            })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        let name = name.to_string();
        let total = usize::try_from(total).unwrap_or(0);
        self.wait_applied(move |b| {
            b.topics
                .get(&name)
                .is_some_and(|t| t.partition_count() >= total)
        })
        .await
    }

    /// Changes a topic's configs (AlterConfigs / IncrementalAlterConfigs).
    pub async fn alter_topic_config(
        self: &Arc<Self>,
        name: &str,
        change: impl Fn(&mut TopicConfig) -> Result<(), ConfigError> + Send + 'static,
    ) -> Result<(), TopicAdminError> {
        let Some(cluster) = self.cluster.clone() else {
            return self.topics.update_config(name, change).map_err(Into::into);
        };
        let mut invalid = None;
        let record = cluster
            .store
            .update_topic(name, |record| {
                let mut candidate = record.config.clone();
                match change(&mut candidate) {
                    Ok(()) => {
                        record.config = candidate;
                        invalid = None;
                    }
                    Err(e) => invalid = Some(e),
                }
                Ok(())
            })
            .await
            .map_err(|e| match e {
                StoreError::UnknownTopic(n) => TopicAdminError::Topic(TopicError::Unknown(n)),
                e => e.into(),
            })?;
        if let Some(e) = invalid {
            return Err(e.into());
        }
        let name = name.to_string();
        self.wait_applied(move |b| {
            b.topics
                .get(&name)
                .is_some_and(|t| *t.config.read() == record.config)
        })
        .await
    }

    /// Waits (bounded, and without failing) until every partition of a new topic has a live
    /// leader, as Kafka answers CreateTopics once the new partitions have leaders (ZooKeeper
    /// mode waits for them; with KRaft brokers learn of a topic with its leaders), so a client
    /// that creates and then produces is not first told `LEADER_NOT_AVAILABLE`.
    async fn wait_for_leaders(self: &Arc<Self>, name: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(LEADERS_WAIT_MS);
        loop {
            let Some(topic) = self.topics.get(name) else {
                return;
            };
            let led = crate::cluster::status::of_topic(self, &topic).all(|p| !p.offline);
            if led || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (bounded) until this broker's registry shows a change it wrote to the cluster.
    async fn wait_applied(
        self: &Arc<Self>,
        done: impl Fn(&Broker) -> bool,
    ) -> Result<(), TopicAdminError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(APPLY_WAIT_MS);
        while !done(self) {
            if tokio::time::Instant::now() >= deadline {
                return Err(TopicAdminError::NotApplied);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// The topic, as this broker's registry has it.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.get(name)
    }
}

/// An explicit assignment: every partition the same replica count, distinct live brokers.
/// Kafka's checks of the replica assignment CreatePartitions names for the new partitions: one
/// entry per partition added, each with the topic's replication factor of distinct brokers
/// that are alive (`INVALID_REPLICA_ASSIGNMENT` otherwise).
pub fn check_added_assignment(
    assignment: &[Vec<i32>],
    added: usize,
    replication_factor: usize,
    alive: impl Fn(i32) -> bool,
) -> Result<(), TopicAdminError> {
    if assignment.len() != added {
        return Err(TopicAdminError::Assignment(format!(
            "attempted to add {added} additional partition(s), but {} assignment(s) were specified",
            assignment.len()
        )));
    }
    for (i, replicas) in assignment.iter().enumerate() {
        let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
        if replicas.is_empty() || distinct.len() != replicas.len() {
            return Err(TopicAdminError::Assignment(format!(
                "new partition {i}: {replicas:?} (replicas must be distinct and not empty)"
            )));
        }
        if replicas.len() != replication_factor {
            return Err(TopicAdminError::Assignment(format!(
                "new partition {i} has {} replica(s), but the topic's partitions have {replication_factor}",
                replicas.len()
            )));
        }
        if let Some(b) = replicas.iter().find(|&&b| !alive(b)) {
            return Err(TopicAdminError::Assignment(format!(
                "new partition {i}: broker {b} is not a live broker"
            )));
        }
    }
    Ok(())
}

fn check_assignment(
    assignment: &[Vec<i32>],
    candidates: &[placement::Candidate],
) -> Result<(), TopicAdminError> {
    let live: BTreeSet<i32> = candidates.iter().map(|c| c.id).collect();
    let rf = assignment.first().map_or(0, Vec::len);
    for (i, replicas) in assignment.iter().enumerate() {
        let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
        if replicas.is_empty() || replicas.len() != rf || distinct.len() != replicas.len() {
            return Err(TopicAdminError::Assignment(format!(
                "partition {i}: {replicas:?} (all partitions need the same number of distinct replicas)"
            )));
        }
        if let Some(b) = replicas.iter().find(|b| !live.contains(b)) {
            return Err(TopicAdminError::Assignment(format!(
                "partition {i}: broker {b} is not a live broker"
            )));
        }
    }
    Ok(())
}
