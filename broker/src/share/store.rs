//! The share state log: the internal topic `__share_group_state`, holding every share-partition's
//! persisted state as the records of `share::records`. A share-partition's state lives in one
//! partition of the topic, chosen by hashing its key as Kafka does (`group:topicId:partition`);
//! the broker that leads that partition owns the state (it is the share coordinator of the key).
//! When a broker starts leading a state partition (at start on a single node, which leads them
//! all) the partition's log is replayed into [`Replayed`]; afterwards the owner holds the state
//! in memory and only appends.
//!
//! Each partition's log is kept bounded the way `offsets` keeps `__consumer_offsets` bounded:
//! when it holds many more records than there are live keys, the owner appends a snapshot of
//! every key (see `ShareCoordinator::compact_if_due`) and the records before the first of them
//! are deleted, so a restart replays at most a snapshot and what followed it.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use weir_storage::records::NewRecord;
use weir_storage::{AppendOptions, PendingAppend};

use super::partition::{PersistedPartition, SharePartition};
use super::records::{
    decode_group_value, decode_intent_value, decode_partition_value, DeadLetterIntent,
    PartitionValue, StateKey,
};
use crate::consumer_groups::TopicId;
use crate::offsets::OffsetError;
use crate::partition::Partition;
use crate::topics::{Topic, TopicRegistry};

pub const SHARE_STATE_TOPIC: &str = "__share_group_state";
/// Compact when the log holds more than this many records and more than twice the live keys.
const COMPACT_AFTER_RECORDS: i64 = 100_000;
const SEGMENT_BYTES: &str = "104857600";
/// The window a replayed update may describe (the largest `max_record_locks` Weir allows).
pub const MAX_REPLAYED_WINDOW: usize = 100_000;

/// A share-partition's identity: group, topic id, partition.
pub type ShareKey = (String, TopicId, i32);

/// The topic configs of `__share_group_state`.
pub fn topic_configs() -> Vec<(String, String)> {
    vec![
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
    ]
}

/// The share state topic of a single node, created with `partition_count` partitions if it
/// does not exist yet. An existing topic keeps its partition count (every key's state would
/// move otherwise), so data directories written with one partition keep working.
pub fn open_topic(topics: &TopicRegistry, partition_count: i32) -> Result<Arc<Topic>, OffsetError> {
    match topics.get(SHARE_STATE_TOPIC) {
        Some(t) => Ok(t),
        None => Ok(topics.create(SHARE_STATE_TOPIC, partition_count, &topic_configs(), true)?),
    }
}

/// What a replay of the log found.
#[derive(Debug, Default)]
pub struct Replayed {
    pub groups: BTreeMap<String, i32>,
    pub partitions: BTreeMap<ShareKey, PersistedPartition>,
    pub intents: BTreeMap<ShareKey, DeadLetterIntent>,
}

/// An append to a share state partition, to wait for before answering.
pub struct StateAppend {
    partition: Arc<Partition>,
    append: PendingAppend,
}

impl StateAppend {
    /// Waits until the append is durable and committed by the state partition's replicas.
    /// Blocking.
    pub fn wait(self) -> Result<(), OffsetError> {
        let appended = self.append.wait()?;
        self.partition.note_durable();
        crate::offsets::wait_replicated(&self.partition, &appended)?;
        Ok(())
    }
}

/// The log of one partition of the share state topic, led by this broker.
pub struct ShareStateStore {
    partition: Arc<Partition>,
    /// Orders appends so a compaction's cut never passes a record appended before it.
    write_order: Mutex<()>,
    compact_after_records: i64,
}

impl ShareStateStore {
    /// The log of `partition` (replay it with [`Self::replay`]).
    pub fn new(partition: Arc<Partition>, compact_after_records: Option<i64>) -> Self {
        Self {
            partition,
            write_order: Mutex::new(()),
            compact_after_records: compact_after_records.unwrap_or(COMPACT_AFTER_RECORDS),
        }
    }

    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// Reads the log from its start.
    pub fn replay(&self) -> Result<Replayed, OffsetError> {
        let mut out = Replayed::default();
        let mut corrupt = None;
        crate::log_scan::for_each_batch(&self.partition.log, |_, batch| {
            let records = match weir_storage::records::decode_records(batch) {
                Ok(r) => r,
                Err(e) => {
                    corrupt.get_or_insert(e.to_string());
                    return;
                }
            };
            for r in records {
                let Some(key) = r.key.as_deref().and_then(StateKey::decode) else {
                    continue;
                };
                match (key, r.value.as_deref()) {
                    (StateKey::Group(g), None) => {
                        out.groups.remove(&g);
                        out.partitions.retain(|(pg, _, _), _| *pg != g);
                        out.intents.retain(|(pg, _, _), _| *pg != g);
                    }
                    (
                        StateKey::DeadLetterIntent {
                            group,
                            topic_id,
                            partition,
                        },
                        value,
                    ) => {
                        let key = (group, topic_id, partition);
                        match value.and_then(decode_intent_value) {
                            Some(i) => out.intents.insert(key, i),
                            None => out.intents.remove(&key),
                        };
                    }
                    (StateKey::Group(g), Some(v)) => {
                        if let Some(epoch) = decode_group_value(v) {
                            out.groups.insert(g, epoch);
                        }
                    }
                    (
                        StateKey::Partition {
                            group,
                            topic_id,
                            partition,
                        },
                        value,
                    ) => {
                        let key = (group, topic_id, partition);
                        match value.and_then(decode_partition_value) {
                            None => {
                                out.partitions.remove(&key);
                            }
                            Some(PartitionValue::Snapshot(p)) => {
                                out.partitions.insert(key, p);
                            }
                            Some(PartitionValue::Update(u)) => {
                                let state = out.partitions.entry(key).or_default();
                                SharePartition::apply_update(state, &u, MAX_REPLAYED_WINDOW);
                            }
                        }
                    }
                }
            }
        })?;
        match corrupt {
            Some(reason) => Err(OffsetError::Corrupt(reason)),
            None => Ok(out),
        }
    }

    /// Appends records (key, value or tombstone) without waiting; `None` if there is nothing to
    /// append.
    pub fn append(
        &self,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
        now_ms: i64,
    ) -> Result<Option<StateAppend>, OffsetError> {
        if records.is_empty() {
            return Ok(None);
        }
        let new: Vec<NewRecord<'_>> = records
            .iter()
            .map(|(k, v)| NewRecord {
                key: Some(k),
                value: v.as_deref(),
                headers: &[],
                timestamp_ms: now_ms,
            })
            .collect();
        let batch = weir_storage::records::encode_batch(&new);
        let _order = self.write_order.lock();
        let append = self.partition.append(batch, &AppendOptions::default())?;
        Ok(Some(StateAppend {
            partition: self.partition.clone(),
            append,
        }))
    }

    /// Whether the log has grown enough, against `live_keys`, to be compacted; if so, the offset
    /// a compaction's snapshot starts at (everything before it is superseded once the snapshot
    /// is written).
    pub fn compaction_cut(&self, live_keys: usize) -> Option<i64> {
        let log = &self.partition.log;
        let held = log.log_end_offset() - log.log_start_offset();
        let live = i64::try_from(live_keys).unwrap_or(i64::MAX);
        if held > self.compact_after_records && held > live.saturating_mul(2) {
            let _order = self.write_order.lock();
            Some(log.log_end_offset())
        } else {
            None
        }
    }

    /// Deletes the records before `cut` (a compaction's snapshot is durable).
    pub fn delete_before(&self, cut: i64) -> Result<i64, OffsetError> {
        let start = self.partition.log.delete_records_before(cut)?;
        self.partition.note_log_start();
        tracing::info!(
            partition = self.partition.index,
            log_start_offset = start,
            "compacted {SHARE_STATE_TOPIC}"
        );
        Ok(start)
    }
}
