//! The share state log: the internal topic `__share_group_state`, one partition, holding every
//! share group's epoch and every share-partition's persisted state as the records of
//! `share::records`. At start (or when this broker becomes the leader of the partition, in a
//! cluster) the log is replayed into [`Replayed`]; afterwards the coordinator holds the state in
//! memory and only appends.
//!
//! The log is kept bounded the way `offsets` keeps `__consumer_offsets` bounded: when it holds
//! many more records than there are live keys, the coordinator appends a snapshot of every key
//! (see `ShareCoordinator::compact_if_due`) and the records before the first of them are
//! deleted, so a restart replays at most a snapshot and what followed it.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
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
use crate::topics::TopicRegistry;

pub const SHARE_STATE_TOPIC: &str = "__share_group_state";
/// Compact when the log holds more than this many records and more than twice the live keys.
const COMPACT_AFTER_RECORDS: i64 = 100_000;
const SEGMENT_BYTES: &str = "104857600";
/// The window a replayed update may describe (the largest `max_record_locks` Weir allows).
pub const MAX_REPLAYED_WINDOW: usize = 100_000;

/// A share-partition's identity: group, topic id, partition.
pub type ShareKey = (String, TopicId, i32);

/// What a replay of the log found.
#[derive(Debug, Default)]
pub struct Replayed {
    pub groups: BTreeMap<String, i32>,
    pub partitions: BTreeMap<ShareKey, PersistedPartition>,
    pub intents: BTreeMap<ShareKey, DeadLetterIntent>,
}

pub struct ShareStateStore {
    /// The state partition: on a single node always there; in a cluster, while this broker
    /// leads it (it is the share coordinator).
    partition: RwLock<Option<Arc<Partition>>>,
    /// Orders appends so a compaction's cut never passes a record appended before it.
    write_order: Mutex<()>,
    compact_after_records: i64,
}

impl ShareStateStore {
    /// Opens (creating if needed) the state topic and replays it.
    pub fn open(topics: &TopicRegistry) -> Result<(Self, Replayed), OffsetError> {
        let topic = match topics.get(SHARE_STATE_TOPIC) {
            Some(t) => t,
            None => topics.create(
                SHARE_STATE_TOPIC,
                1,
                &[
                    ("cleanup.policy".to_string(), "compact".to_string()),
                    ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
                ],
                true,
            )?,
        };
        let store = Self {
            partition: RwLock::new(topic.partition(0).cloned()),
            write_order: Mutex::new(()),
            compact_after_records: COMPACT_AFTER_RECORDS,
        };
        let replayed = store.replay()?;
        Ok((store, replayed))
    }

    /// A store without its partition (a cluster broker that is not the share coordinator).
    pub fn detached() -> Self {
        Self {
            partition: RwLock::new(None),
            write_order: Mutex::new(()),
            compact_after_records: COMPACT_AFTER_RECORDS,
        }
    }

    #[cfg(test)]
    pub fn set_compact_after_records(&mut self, n: i64) {
        self.compact_after_records = n;
    }

    pub fn partition(&self) -> Option<Arc<Partition>> {
        self.partition.read().clone()
    }

    /// Takes over `partition` (this broker leads it now) and replays it.
    pub fn attach(&self, partition: Arc<Partition>) -> Result<Replayed, OffsetError> {
        let _order = self.write_order.lock();
        *self.partition.write() = Some(partition);
        self.replay()
    }

    pub fn detach(&self) {
        let _order = self.write_order.lock();
        *self.partition.write() = None;
    }

    fn replay(&self) -> Result<Replayed, OffsetError> {
        let mut out = Replayed::default();
        let Some(partition) = self.partition() else {
            return Ok(out);
        };
        let mut corrupt = None;
        crate::log_scan::for_each_batch(&partition.log, |_, batch| {
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
    /// append or no partition.
    pub fn append(
        &self,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
        now_ms: i64,
    ) -> Result<Option<PendingAppend>, OffsetError> {
        if records.is_empty() {
            return Ok(None);
        }
        let Some(partition) = self.partition() else {
            return Err(OffsetError::NotCoordinator(
                crate::partition::ReplicaError::NotLeader,
            ));
        };
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
        Ok(Some(partition.append(batch, &AppendOptions::default())?))
    }

    /// Waits until an append is durable and committed by the share state partition's replicas.
    /// Blocking.
    pub fn wait(&self, pending: PendingAppend) -> Result<(), OffsetError> {
        let appended = pending.wait()?;
        if let Some(p) = self.partition() {
            p.note_durable();
            crate::offsets::wait_replicated(&p, &appended)?;
        }
        Ok(())
    }

    /// Whether the log has grown enough, against `live_keys`, to be compacted; if so, the offset
    /// a compaction's snapshot starts at (everything before it is superseded once the snapshot
    /// is written).
    pub fn compaction_cut(&self, live_keys: usize) -> Option<i64> {
        let partition = self.partition()?;
        let log = &partition.log;
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
        let Some(partition) = self.partition() else {
            return Ok(0);
        };
        let start = partition.log.delete_records_before(cut)?;
        partition.note_log_start();
        tracing::info!(log_start_offset = start, "compacted {SHARE_STATE_TOPIC}");
        Ok(start)
    }
}
