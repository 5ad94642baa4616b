//! The transaction coordinator (KIP-98, Kafka's `TransactionCoordinator` and
//! `TransactionStateManager`): transactional ids, their producer ids and epochs, and the state of
//! their transactions, kept durably in the internal topic `__transaction_state`.
//!
//! - `state`: the pure state machine of one transactional id (time and producer ids passed in).
//! - `records`: Kafka's key/value layout of `__transaction_state`.
//! - this module: one [`TxnPartition`] per `__transaction_state` partition led (a transactional
//!   id lives in partition `abs(hashCode(id)) % partitions`, see `internal_partitions`), replayed
//!   from its log when loaded; every accepted transition is appended to the log before the map
//!   changes, under the partition's lock, so the log and the map agree in order.
//! - `markers`: the IO of ending a transaction: writing a COMMIT/ABORT marker to every partition
//!   of it (through the leader append path), then logging the completion; and the timer that
//!   aborts timed-out transactions and resumes the marker writing of transactions left
//!   preparing by a restart.
//!
//! On a single node the topic is created on the first transactional InitProducerId and every
//! partition is loaded here. In a cluster it is a replicated internal topic created on the first
//! FindCoordinator for a transactional id (or InitProducerId), as Kafka creates it; the
//! coordinator of a transactional id is the leader of its partition: the cluster runtime loads a
//! partition when this broker becomes its leader and drops it when it stops being it (requests
//! for its ids are then answered NOT_COORDINATOR), and markers go to each partition's leader
//! (WriteTxnMarkers when it is another broker).

pub mod markers;
pub mod records;
pub mod state;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use weir_protocol::ErrorCode;
use weir_storage::records::NewRecord;
use weir_storage::{AppendOptions, PendingAppend};

use crate::internal_partitions::{InternalPartitions, PartitionOwner};
use crate::partition::Partition;
use crate::topics::{TopicError, TopicRegistry};
use state::TxnMetadata;

pub const TXN_TOPIC: &str = "__transaction_state";

/// The `transaction.version` feature level ApiVersions finalizes (KIP-584): 2 tells a client it
/// may speak transaction protocol 2 (KIP-890: partitions added by Produce v12 and TxnOffsetCommit
/// v5, the epoch bumped by every EndTxn v5). Protocol 1 stays served for clients that do not.
pub const TRANSACTION_VERSION: i16 = 2;

/// Kafka's transaction.state.log.segment.bytes.
const TXN_SEGMENT_BYTES: &str = "104857600";

#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Storage(#[from] weir_storage::StorageError),
    #[error(transparent)]
    Record(#[from] records::RecordError),
}

/// The transactional ids of one `__transaction_state` partition this broker leads.
pub struct TxnPartition {
    partition: Arc<Partition>,
    /// The metadata of every transactional id of the partition. Its lock also orders appends.
    txns: Mutex<HashMap<String, TxnMetadata>>,
    /// Transactional ids whose markers a task is writing now.
    writing: Mutex<BTreeSet<String>>,
}

/// The coordinator's state: the `__transaction_state` partitions loaded here.
#[derive(Default)]
pub struct TxnCoordinator {
    partitions: InternalPartitions<TxnPartition>,
    /// Serializes the lazy creation of the topic.
    create: Mutex<()>,
    /// Connections to the leaders of other brokers' partitions, for WriteTxnMarkers.
    pub(crate) peers: markers::MarkerPeers,
}

/// A transition appended to the log, not yet known to be durable and committed.
#[must_use = "a logged transition must be waited for"]
pub struct Logged {
    pub partition: Arc<Partition>,
    pub pending: Option<PendingAppend>,
}

impl Logged {
    /// Waits until the transition is durable and (in a cluster) committed by a majority.
    pub async fn wait(self) -> Result<(), ErrorCode> {
        let Some(pending) = self.pending else {
            return Ok(());
        };
        let last = pending.result.last_offset;
        let epoch = pending.result.partition_leader_epoch.unwrap_or(-1);
        let waited = tokio::task::spawn_blocking(move || pending.wait()).await;
        if !matches!(waited, Ok(Ok(_))) {
            return Err(ErrorCode::KAFKA_STORAGE_ERROR);
        }
        self.partition.note_durable();
        self.partition
            .wait_committed(last, epoch)
            .await
            .map_err(|_| ErrorCode::NOT_COORDINATOR)
    }
}

impl TxnCoordinator {
    /// The topic's configs: compacted, Kafka's segment size.
    pub fn topic_configs() -> Vec<(String, String)> {
        vec![
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), TXN_SEGMENT_BYTES.to_string()),
        ]
    }

    /// Whether any partition is loaded (the topic exists and this broker leads some of it).
    pub fn is_loaded(&self) -> bool {
        self.partitions.partition_count() > 0
    }

    /// On a single node: creates the topic with `partition_count` partitions if it does not exist
    /// (an existing one keeps its count), and loads every partition not loaded yet. Blocking.
    pub fn ensure_local(
        &self,
        topics: &TopicRegistry,
        partition_count: i32,
    ) -> Result<(), TxnError> {
        let _creating = self.create.lock();
        if topics.get(TXN_TOPIC).is_none() {
            topics.create(TXN_TOPIC, partition_count, &Self::topic_configs(), true)?;
        }
        self.load_local(topics)
    }

    /// On a single node: loads every partition of an existing topic (at start). Blocking.
    pub fn load_local(&self, topics: &TopicRegistry) -> Result<(), TxnError> {
        let Some(topic) = topics.get(TXN_TOPIC) else {
            return Ok(());
        };
        crate::internal_partitions::follow_every_local(self, &topic)
    }

    /// In a cluster: creates the (replicated, internal) topic if the cluster has none, with
    /// `transaction_state_log_num_partitions` partitions and the internal topics' replication
    /// factor, as Kafka creates it on first need. Its partitions are loaded by the brokers
    /// that come to lead them.
    pub async fn ensure_clustered(broker: &Arc<crate::broker::Broker>) {
        if broker.cluster.is_some() {
            broker.ensure_internal_topic(TXN_TOPIC).await;
        }
    }

    /// The partition of `transactional_id` in the topic as this broker knows it (`None`: no
    /// topic yet).
    pub fn partition_of(topics: &TopicRegistry, transactional_id: &str) -> Option<i32> {
        let count = i32::try_from(topics.get(TXN_TOPIC)?.partition_count()).ok()?;
        (count > 0).then(|| crate::internal_partitions::partition_for(transactional_id, count))
    }

    /// The partition of `transactional_id`, if loaded here; else the error Kafka answers.
    pub fn for_id(&self, transactional_id: &str) -> Result<Arc<TxnPartition>, ErrorCode> {
        if self.partitions.partition_count() == 0 {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        self.partitions
            .for_key(transactional_id)
            .ok_or(ErrorCode::NOT_COORDINATOR)
    }

    /// Every loaded partition.
    pub fn loaded_partitions(&self) -> Vec<(i32, Arc<TxnPartition>)> {
        self.partitions.all()
    }
}

impl PartitionOwner for TxnCoordinator {
    type Error = TxnError;

    fn loaded(&self) -> Vec<(i32, Arc<Partition>)> {
        self.partitions
            .all()
            .into_iter()
            .map(|(i, p)| (i, p.partition.clone()))
            .collect()
    }

    fn load(
        &self,
        index: i32,
        partition: Arc<Partition>,
        partition_count: i32,
    ) -> Result<(), TxnError> {
        let loaded = TxnPartition {
            txns: Mutex::new(TxnPartition::replay(&partition)?),
            partition,
            writing: Mutex::new(BTreeSet::new()),
        };
        self.partitions.set_partition_count(partition_count);
        self.partitions.insert(index, Arc::new(loaded));
        Ok(())
    }

    fn unload(&self, index: i32) {
        if let Some(gone) = self.partitions.remove(index) {
            // Wait for an append in progress, so nothing is logged on it after this returns.
            drop(gone.txns.lock());
        }
    }
}

impl TxnPartition {
    fn replay(partition: &Partition) -> Result<HashMap<String, TxnMetadata>, TxnError> {
        let mut txns = HashMap::new();
        let mut corrupt = None;
        crate::log_scan::for_each_batch(&partition.log, |_, batch| {
            let decoded = match weir_storage::records::decode_records(batch) {
                Ok(r) => r,
                Err(e) => {
                    corrupt.get_or_insert(e.to_string());
                    return;
                }
            };
            for r in decoded {
                let Some(id) = r.key.as_deref().and_then(|k| records::decode_key(k).ok()) else {
                    continue;
                };
                match r.value.as_deref() {
                    None => {
                        txns.remove(&id);
                    }
                    Some(v) => match records::decode_value(&id, v) {
                        Ok(m) => {
                            txns.insert(id, m);
                        }
                        Err(e) => {
                            tracing::warn!(transactional_id = %id, error = %e, "skipping a transaction state record")
                        }
                    },
                }
            }
        })?;
        if let Some(reason) = corrupt {
            tracing::warn!(%reason, "unreadable batch in {TXN_TOPIC}");
        }
        Ok(txns)
    }

    /// The replica this state is written to.
    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// The epoch markers are written with: the leader epoch of this partition, so that a
    /// partition can refuse markers of a deposed coordinator.
    pub fn coordinator_epoch(&self) -> i32 {
        self.partition.leader_epoch().unwrap_or(0)
    }

    pub fn get(&self, transactional_id: &str) -> Option<TxnMetadata> {
        self.txns.lock().get(transactional_id).cloned()
    }

    /// Every transactional id of the partition.
    pub fn all(&self) -> Vec<TxnMetadata> {
        self.txns.lock().values().cloned().collect()
    }

    /// Decides a transition with `decide` (given the current metadata) and, if it yields new
    /// metadata, appends it and makes it current: all under the partition's lock, so decisions
    /// see every earlier transition. Returns `decide`'s answer and what to wait for.
    pub fn update<R>(
        &self,
        transactional_id: &str,
        now_ms: i64,
        decide: impl FnOnce(Option<&TxnMetadata>) -> Result<(Option<TxnMetadata>, R), ErrorCode>,
    ) -> Result<(R, Logged), ErrorCode> {
        let mut txns = self.txns.lock();
        let (next, answer) = decide(txns.get(transactional_id))?;
        let Some(next) = next else {
            return Ok((
                answer,
                Logged {
                    partition: self.partition.clone(),
                    pending: None,
                },
            ));
        };
        let key = records::encode_key(transactional_id);
        let value = records::encode_value(&next);
        let batch = weir_storage::records::encode_batch(&[NewRecord {
            key: Some(&key),
            value: Some(&value),
            headers: &[],
            timestamp_ms: now_ms,
        }]);
        let pending = self
            .partition
            .append(batch, &AppendOptions::default())
            .map_err(|e| match e {
                crate::partition::AppendError::Replica(_) => ErrorCode::NOT_COORDINATOR,
                crate::partition::AppendError::Storage(_) => ErrorCode::KAFKA_STORAGE_ERROR,
            })?;
        // The last epoch is memory only (as in Kafka): kept across transitions of one producer id.
        txns.insert(transactional_id.to_string(), next);
        Ok((
            answer,
            Logged {
                partition: self.partition.clone(),
                pending: Some(pending),
            },
        ))
    }

    /// Adds `partitions` to the producer's transaction ([`state::add_partitions`]: opening one if
    /// none is ongoing) through [`Self::update`]; what to wait for before answering.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Logged, ErrorCode> {
        self.update(transactional_id, now_ms, |cur| {
            let next = state::add_partitions(cur, producer_id, producer_epoch, partitions, now_ms)?;
            Ok((next, ()))
        })
        .map(|((), logged)| logged)
    }

    /// Forgets `transactional_id` if it expired ([`state::is_expired`], checked under the lock so
    /// no request slips in between): a tombstone is appended, which a replay also applies.
    pub fn expire(
        &self,
        transactional_id: &str,
        now_ms: i64,
        expiration_ms: i64,
    ) -> Option<Logged> {
        let mut txns = self.txns.lock();
        if !txns
            .get(transactional_id)
            .is_some_and(|m| state::is_expired(m, now_ms, expiration_ms))
        {
            return None;
        }
        let key = records::encode_key(transactional_id);
        let batch = weir_storage::records::encode_batch(&[NewRecord {
            key: Some(&key),
            value: None,
            headers: &[],
            timestamp_ms: now_ms,
        }]);
        let pending = self
            .partition
            .append(batch, &AppendOptions::default())
            .ok()?;
        txns.remove(transactional_id);
        Some(Logged {
            partition: self.partition.clone(),
            pending: Some(pending),
        })
    }

    /// Claims the marker writing of `transactional_id`; `false` if a task already writes them.
    pub fn claim_writing(&self, transactional_id: &str) -> bool {
        self.writing.lock().insert(transactional_id.to_string())
    }

    pub fn release_writing(&self, transactional_id: &str) {
        self.writing.lock().remove(transactional_id);
    }
}
