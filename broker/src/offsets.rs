//! Committed consumer-group offsets, kept durably in the internal topic `__consumer_offsets`.
//!
//! Every commit is appended to the group's partition of that topic (Kafka's
//! `abs(groupId.hashCode) % partitions`, see `internal_partitions`) as a record keyed by (group,
//! topic, partition) in Kafka's own key/value layout (key version 1, value version 3), and a
//! deletion as a tombstone (null value). A partition is replayed into memory when this broker
//! starts leading it (on a single node: at start, every partition), so reads never touch the log.
//! Owns the in-memory maps and their logs, one [`OffsetPartition`] per partition led; knows
//! nothing of group membership (see `groups`).
//!
//! The same log carries the state of consumer-protocol groups (`consumer_groups::records`, key
//! versions 3 and 5-8): this module keeps the latest value of each such key as opaque bytes, so
//! they survive snapshots, and hands them back at start for the groups to be rebuilt.
//!
//! The log is kept bounded without key-based compaction in storage: once it holds many more records
//! than there are live offsets, the whole live map is appended as a snapshot and everything before
//! the snapshot is deleted (`delete_records_before`), per partition. Appends, map updates and
//! snapshots of a partition are ordered by one lock, so a snapshot always covers every record queued before it.
//!
//! Offsets committed inside a transaction (TxnOffsetCommit) are appended as a transactional batch
//! of the producer and kept pending, invisible to OffsetFetch, until the transaction's marker
//! reaches this partition: a COMMIT applies them, an ABORT drops them (`complete_txn`); replay
//! does the same with the batches and markers in the log. A partition with pending transactional
//! offsets is not compacted (the snapshot would drop them).
//!
//! A change is applied in two steps so that callers can keep request order without waiting for
//! each other's fsync: `stage_*` appends the records and updates the map at once (in the order the
//! calls are made), and `finish` waits until they are durable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::{Buf, BufMut};
use parking_lot::{Mutex, RwLock};
use weir_storage::records::NewRecord;
use weir_storage::{AppendOptions, PendingAppend, StorageError};

use crate::consumer_groups::records::is_group_record_key;

use crate::internal_partitions::InternalPartitions;
use crate::partition::Partition;
use crate::topics::{TopicError, TopicRegistry};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    /// Kafka's `NO_METADATA` ("") when the commit carried none (null).
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// Snapshot when the log holds more than this many records and more than twice the live entries.
const COMPACT_AFTER_RECORDS: i64 = 100_000;
/// Kafka's offsets.topic.segment.bytes: small segments so snapshots free disk space soon.
const OFFSETS_SEGMENT_BYTES: &str = "104857600";

/// The committed offsets and consumer group records of one `__consumer_offsets` partition that
/// this broker leads (on a single node: every partition).
pub struct OffsetPartition {
    partition: Arc<Partition>,
    groups: RwLock<HashMap<String, GroupOffsets>>,
    /// The live consumer group records (key to value), in key order.
    group_records: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// Orders log appends with map updates and snapshots.
    write_order: Mutex<()>,
    compact_after_records: i64,
    /// Offsets committed in transactions not ended yet, by producer id, in commit order.
    pending_txn: Mutex<HashMap<i64, Vec<Change>>>,
}

/// Committed offsets of the groups this broker coordinates: one [`OffsetPartition`] per
/// `__consumer_offsets` partition it leads, a group's offsets in partition
/// `partition_for(group, partition count)` as in Kafka.
pub struct OffsetStore {
    partitions: InternalPartitions<OffsetPartition>,
    compact_after_records: i64,
}

/// One change to the committed offsets: a new value, or a deletion (tombstone).
type Change = ((String, String, i32), Option<CommittedOffset>);

/// A change already appended and visible to readers, not yet known to be durable: hand it to
/// [`OffsetStore::finish`].
#[must_use = "a staged change must be finished to know it is durable"]
pub struct StagedChange {
    pending: Option<PendingAppend>,
    /// The offsets partition the change was appended to.
    target: Option<Arc<OffsetPartition>>,
    now_ms: i64,
}

impl StagedChange {
    /// Whether `finish` would not block (nothing to wait for, or already durable).
    pub fn is_complete(&self) -> bool {
        self.pending.as_ref().is_none_or(PendingAppend::is_complete)
    }

    /// The offset of the change's last record in the offsets log and the leader epoch it was
    /// appended in, if it wrote one.
    pub fn appended(&self) -> Option<(i64, i32)> {
        self.pending.as_ref().map(|p| {
            (
                p.result.last_offset,
                p.result.partition_leader_epoch.unwrap_or(-1),
            )
        })
    }

    /// The offsets partition replica the change was written to, if it wrote one.
    pub fn partition(&self) -> Option<Arc<Partition>> {
        self.target.as_ref().map(|t| t.partition.clone())
    }
}

/// Consumer group records queued in their groups' offsets partitions, not yet known to be
/// durable: hand them to [`OffsetStore::wait_group_records`].
#[must_use = "queued group records must be waited for to know they are durable"]
#[derive(Default)]
pub struct GroupRecordsWrite {
    pending: Vec<(Arc<OffsetPartition>, PendingAppend)>,
}

impl GroupRecordsWrite {
    /// Whether nothing was queued.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    /// The write is durable here but was not committed by the partition's replicas.
    #[error(transparent)]
    NotCommitted(#[from] crate::partition::CommitWaitError),
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("corrupt offsets record: {0}")]
    Corrupt(String),
    /// This broker does not lead the offsets partition (the group moved to another coordinator).
    #[error("not the coordinator: {0:?}")]
    NotCoordinator(crate::partition::ReplicaError),
    /// This broker has not loaded the offsets partition of the group (another broker leads it).
    #[error("not the coordinator of group {0}")]
    NotLoaded(String),
}

impl From<crate::partition::AppendError> for OffsetError {
    fn from(e: crate::partition::AppendError) -> Self {
        match e {
            crate::partition::AppendError::Replica(r) => OffsetError::NotCoordinator(r),
            crate::partition::AppendError::Storage(s) => OffsetError::Storage(s),
        }
    }
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.put_i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
    buf.extend_from_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn get_string(buf: &mut &[u8]) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 {
        return Some(String::new());
    }
    let len = usize::try_from(len).ok()?;
    if buf.remaining() < len {
        return None;
    }
    let s = String::from_utf8(buf[..len].to_vec()).ok()?;
    buf.advance(len);
    Some(s)
}

fn encode_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::new();
    k.put_i16(KEY_VERSION);
    put_string(&mut k, group);
    put_string(&mut k, topic);
    k.put_i32(partition);
    k
}

fn decode_key(mut b: &[u8]) -> Option<(String, String, i32)> {
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if version > KEY_VERSION {
        return None; // version 2 keys are group metadata, which we do not store
    }
    let group = get_string(&mut b)?;
    let topic = get_string(&mut b)?;
    if b.remaining() < 4 {
        return None;
    }
    Some((group, topic, b.get_i32()))
}

fn encode_value(c: &CommittedOffset) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_i16(VALUE_VERSION);
    v.put_i64(c.offset);
    v.put_i32(c.leader_epoch);
    put_string(&mut v, &c.metadata);
    v.put_i64(c.commit_timestamp_ms);
    v
}

fn decode_value(mut b: &[u8]) -> Option<CommittedOffset> {
    if b.remaining() < 2 + 8 + 4 {
        return None;
    }
    let _version = b.get_i16();
    let offset = b.get_i64();
    let leader_epoch = b.get_i32();
    let metadata = get_string(&mut b)?;
    if b.remaining() < 8 {
        return None;
    }
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms: b.get_i64(),
    })
}

impl OffsetStore {
    /// A store with no offsets partition loaded yet.
    pub fn new() -> Self {
        Self {
            partitions: InternalPartitions::default(),
            compact_after_records: COMPACT_AFTER_RECORDS,
        }
    }

    /// The offsets topic's configs: compacted, with Kafka's small segments.
    pub fn topic_configs() -> Vec<(String, String)> {
        vec![
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                OFFSETS_SEGMENT_BYTES.to_string(),
            ),
        ]
    }

    /// The offsets topic of a single node, created with `partition_count` partitions if it does
    /// not exist yet. An existing topic keeps its partition count (as in Kafka, which never
    /// changes it: every group's offsets would move), so data directories written with one
    /// partition keep working.
    pub fn open_topic(
        topics: &TopicRegistry,
        partition_count: i32,
    ) -> Result<Arc<crate::topics::Topic>, OffsetError> {
        match topics.get(OFFSETS_TOPIC) {
            Some(t) => Ok(t),
            None => {
                Ok(topics.create(OFFSETS_TOPIC, partition_count, &Self::topic_configs(), true)?)
            }
        }
    }

    /// The partition of the offsets topic a group's offsets live in (`None` until the topic's
    /// partition count is known here).
    pub fn partition_of(&self, group: &str) -> Option<i32> {
        self.partitions.partition_of(group)
    }

    /// Whether this broker has the offsets partition of `group` loaded (it coordinates it).
    pub fn owns(&self, group: &str) -> bool {
        self.partitions.for_key(group).is_some()
    }

    /// The state of offsets partition `index`, if loaded here.
    pub fn get(&self, index: i32) -> Option<Arc<OffsetPartition>> {
        self.partitions.get(index)
    }

    /// The loaded offsets partitions, by index.
    pub fn loaded(&self) -> Vec<(i32, Arc<OffsetPartition>)> {
        self.partitions.all()
    }

    /// Reads offsets partition `partition` (this broker leads it now) into a state not yet in
    /// use: hand it to [`OffsetStore::install`]. Blocking.
    pub fn replay(&self, partition: Arc<Partition>) -> Result<Arc<OffsetPartition>, OffsetError> {
        let loaded = Arc::new(OffsetPartition {
            partition,
            groups: RwLock::new(HashMap::new()),
            group_records: RwLock::new(BTreeMap::new()),
            write_order: Mutex::new(()),
            compact_after_records: self.compact_after_records,
            pending_txn: Mutex::new(HashMap::new()),
        });
        loaded.replay()?;
        Ok(loaded)
    }

    /// Puts a replayed partition in use as partition `index` of a topic of `partition_count`
    /// partitions: from now on its groups' offsets are read and written here.
    pub fn install(&self, index: i32, loaded: Arc<OffsetPartition>, partition_count: i32) {
        self.partitions.set_partition_count(partition_count);
        self.partitions.insert(index, loaded);
    }

    /// [`OffsetStore::replay`] and [`OffsetStore::install`] in one.
    pub fn load(
        &self,
        index: i32,
        partition: Arc<Partition>,
        partition_count: i32,
    ) -> Result<Arc<OffsetPartition>, OffsetError> {
        let loaded = self.replay(partition)?;
        self.install(index, loaded.clone(), partition_count);
        Ok(loaded)
    }

    /// Forgets offsets partition `index` (leadership moved).
    pub fn unload(&self, index: i32) -> Option<Arc<OffsetPartition>> {
        let gone = self.partitions.remove(index)?;
        // Wait for a write in progress, so nothing is staged on it after this returns.
        drop(gone.write_order.lock());
        Some(gone)
    }

    fn target(&self, group: &str) -> Result<Arc<OffsetPartition>, OffsetError> {
        self.partitions
            .for_key(group)
            .ok_or_else(|| OffsetError::NotLoaded(group.to_string()))
    }

    /// Commits offsets for one group: visible to readers at once, durable once
    /// [`finish`](Self::finish) returns.
    pub fn stage_commit(
        &self,
        group: &str,
        offsets: &[(String, i32, CommittedOffset)],
        now_ms: i64,
    ) -> Result<StagedChange, OffsetError> {
        let changes = offsets
            .iter()
            .map(|(t, p, c)| ((group.to_string(), t.clone(), *p), Some(c.clone())))
            .collect();
        self.target(group)?.stage(changes, now_ms)
    }

    /// Deletes committed offsets (OffsetDelete, DeleteGroups) with tombstones: gone for readers at
    /// once, durably once [`finish`](Self::finish) returns.
    pub fn stage_delete(
        &self,
        group: &str,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<StagedChange, OffsetError> {
        let changes = partitions
            .iter()
            .map(|(t, p)| ((group.to_string(), t.clone(), *p), None))
            .collect();
        self.target(group)?.stage(changes, now_ms)
    }

    /// Commits offsets for one group inside the transaction of `producer_id`/`producer_epoch`
    /// (TxnOffsetCommit): appended as a transactional batch of that producer, invisible until
    /// the transaction's marker reaches the partition ([`OffsetStore::complete_txn`]).
    pub fn stage_txn_commit(
        &self,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        offsets: &[(String, i32, CommittedOffset)],
        now_ms: i64,
    ) -> Result<StagedChange, OffsetError> {
        let changes: Vec<Change> = offsets
            .iter()
            .map(|(t, p, c)| ((group.to_string(), t.clone(), *p), Some(c.clone())))
            .collect();
        let target = self.target(group)?;
        if changes.is_empty() {
            return Ok(StagedChange {
                pending: None,
                target: None,
                now_ms,
            });
        }
        let pending = {
            let _order = target.write_order.lock();
            let mut batch = OffsetPartition::encode_changes(&changes, now_ms);
            mark_transactional(&mut batch, producer_id, producer_epoch);
            let pending = target.partition.append(batch, &AppendOptions::default())?;
            target
                .pending_txn
                .lock()
                .entry(producer_id)
                .or_default()
                .extend(changes);
            pending
        };
        Ok(StagedChange {
            pending: Some(pending),
            target: Some(target),
            now_ms,
        })
    }

    /// The marker of `producer_id`'s transaction reached offsets partition `index`: its pending
    /// offsets become visible (`commit`) or are dropped.
    pub fn complete_txn(&self, index: i32, producer_id: i64, commit: bool) {
        let Some(target) = self.partitions.get(index) else {
            return;
        };
        let _order = target.write_order.lock();
        target.settle_txn(producer_id, commit);
    }

    /// The partitions whose offset `group` changed in a transaction whose marker has not been
    /// applied yet (KIP-447: an OffsetFetch asking for stable offsets gets
    /// UNSTABLE_OFFSET_COMMIT for them, and the client asks again).
    pub fn pending_txn_partitions(&self, group: &str) -> HashSet<(String, i32)> {
        let Some(p) = self.partitions.for_key(group) else {
            return HashSet::new();
        };
        let pending = p.pending_txn.lock();
        pending
            .values()
            .flatten()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, topic, partition), _)| (topic.clone(), *partition))
            .collect()
    }

    /// Waits until a staged change is durable (blocking), then compacts the history if it is due.
    pub fn finish(&self, staged: StagedChange) -> Result<(), OffsetError> {
        let (Some(pending), Some(target)) = (staged.pending, staged.target) else {
            return Ok(());
        };
        pending.wait()?;
        target.partition.note_durable();
        target.compact_if_due(staged.now_ms)
    }

    /// Durably commits offsets for one group; returns once the commit is in the log.
    pub fn commit(
        &self,
        group: &str,
        offsets: &[(String, i32, CommittedOffset)],
        now_ms: i64,
    ) -> Result<(), OffsetError> {
        let staged = self.stage_commit(group, offsets, now_ms)?;
        self.finish(staged)
    }

    /// Durably deletes committed offsets (OffsetDelete, DeleteGroups, deleted topics); returns
    /// once the tombstones are in the log.
    pub fn delete(
        &self,
        group: &str,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<(), OffsetError> {
        let staged = self.stage_delete(group, partitions, now_ms)?;
        self.finish(staged)
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.partitions
            .for_key(group)?
            .fetch(group, topic, partition)
    }

    /// All committed offsets of a group, ordered by topic and partition.
    pub fn fetch_all(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        self.partitions
            .for_key(group)
            .map(|p| p.fetch_all(group))
            .unwrap_or_default()
    }

    /// The groups with committed offsets, of every loaded partition.
    pub fn groups(&self) -> Vec<String> {
        self.partitions
            .all()
            .iter()
            .flat_map(|(_, p)| p.groups())
            .collect()
    }

    /// Queues consumer group records (group id, key, value or tombstone) in their groups'
    /// partitions, in log order, and applies them to the live sets; the caller makes them
    /// durable with [`OffsetStore::wait_group_records`]. Call it while holding the lock that
    /// ordered the changes, so each log has them in that order. Records of groups whose
    /// partition is not loaded here fail the whole call (nothing of theirs is written).
    pub fn append_group_records(
        &self,
        records: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
        now_ms: i64,
    ) -> Result<GroupRecordsWrite, OffsetError> {
        let mut by_partition: BTreeMap<i32, (Arc<OffsetPartition>, Vec<_>)> = BTreeMap::new();
        for (group, key, value) in records {
            let index = self
                .partition_of(&group)
                .ok_or_else(|| OffsetError::NotLoaded(group.clone()))?;
            let target = match by_partition.get_mut(&index) {
                Some(t) => t,
                None => {
                    let loaded = self.target(&group)?;
                    by_partition.entry(index).or_insert((loaded, Vec::new()))
                }
            };
            target.1.push((key, value));
        }
        let mut write = GroupRecordsWrite::default();
        for (_, (target, records)) in by_partition {
            if let Some(pending) = target.append_group_records(records, now_ms)? {
                write.pending.push((target, pending));
            }
        }
        Ok(write)
    }

    /// Waits until records queued by [`OffsetStore::append_group_records`] are durable.
    pub fn wait_group_records(
        &self,
        write: GroupRecordsWrite,
        now_ms: i64,
    ) -> Result<(), OffsetError> {
        for (target, pending) in write.pending {
            let appended = pending.wait()?;
            target.partition.note_durable();
            wait_replicated(&target.partition, &appended)?;
            target.compact_if_due(now_ms)?;
        }
        Ok(())
    }
}

/// How long a write of group or share state waits for its partition's replicas (Kafka's
/// offsets.commit.timeout.ms).
pub const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

/// Blocks until `appended` (durable here) is committed by its partition's replicas, as Kafka
/// writes its internal topics with acks=all: a coordinator must not answer for state that a
/// failover would lose. At once on a single node.
pub fn wait_replicated(
    partition: &Partition,
    appended: &weir_storage::AppendResult,
) -> Result<(), OffsetError> {
    let Some(epoch) = appended.partition_leader_epoch else {
        return Ok(());
    };
    partition.wait_committed_blocking(appended.last_offset, epoch, OFFSETS_COMMIT_TIMEOUT_MS)?;
    Ok(())
}

impl Default for OffsetStore {
    fn default() -> Self {
        Self::new()
    }
}

impl OffsetPartition {
    /// The replica this state was loaded from (and is written to).
    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// Applies (`commit`) or drops the pending transactional offsets of `producer_id`.
    fn settle_txn(&self, producer_id: i64, commit: bool) {
        let Some(changes) = self.pending_txn.lock().remove(&producer_id) else {
            return;
        };
        if commit {
            let mut groups = self.groups.write();
            for change in changes {
                Self::apply(&mut groups, change);
            }
        }
    }

    fn replay(&self) -> Result<(), OffsetError> {
        let partition = &self.partition;
        let mut groups = self.groups.write();
        let mut group_records = self.group_records.write();
        let mut pending_txn = self.pending_txn.lock();
        let mut corrupt = None;
        crate::log_scan::for_each_batch(&partition.log, |header, batch| {
            if header.is_control() {
                if let Some(marker) = weir_storage::records::decode_txn_marker(batch) {
                    if let Some(changes) = pending_txn.remove(&marker.producer_id) {
                        if marker.kind == weir_storage::records::TxnMarkerKind::Commit {
                            for change in changes {
                                Self::apply(&mut groups, change);
                            }
                        }
                    }
                }
                return;
            }
            let transactional = header.is_transactional().then_some(header.producer_id);
            let records = match weir_storage::records::decode_records(batch) {
                Ok(r) => r,
                Err(e) => {
                    corrupt.get_or_insert(e.to_string());
                    return;
                }
            };
            for r in records {
                if let Some(k) = r.key.as_deref().filter(|k| is_group_record_key(k)) {
                    match r.value.as_deref() {
                        Some(v) => group_records.insert(k.to_vec(), v.to_vec()),
                        None => group_records.remove(k),
                    };
                    continue;
                }
                let Some(key) = r.key.as_deref().and_then(decode_key) else {
                    continue;
                };
                let change = (key, r.value.as_deref().and_then(decode_value));
                match transactional {
                    Some(pid) => pending_txn.entry(pid).or_default().push(change),
                    None => Self::apply(&mut groups, change),
                }
            }
        })?;
        match corrupt {
            Some(reason) => Err(OffsetError::Corrupt(reason)),
            None => Ok(()),
        }
    }

    fn apply(groups: &mut HashMap<String, GroupOffsets>, change: Change) {
        let ((group, topic, partition), value) = change;
        match value {
            Some(v) => {
                groups
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), v);
            }
            None => {
                if let Some(g) = groups.get_mut(&group) {
                    g.remove(&(topic, partition));
                    if g.is_empty() {
                        groups.remove(&group);
                    }
                }
            }
        }
    }

    fn encode_changes(changes: &[Change], now_ms: i64) -> Vec<u8> {
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = changes
            .iter()
            .map(|((g, t, p), v)| (encode_key(g, t, *p), v.as_ref().map(encode_value)))
            .collect();
        Self::encode_raw(&encoded, now_ms)
    }

    fn encode_raw(encoded: &[(Vec<u8>, Option<Vec<u8>>)], now_ms: i64) -> Vec<u8> {
        let records: Vec<NewRecord<'_>> = encoded
            .iter()
            .map(|(k, v)| NewRecord {
                key: Some(k),
                value: v.as_deref(),
                headers: &[],
                timestamp_ms: now_ms,
            })
            .collect();
        weir_storage::records::encode_batch(&records)
    }

    /// Appends `changes` and applies them to the map, both in call order; does not wait.
    fn stage(
        self: Arc<Self>,
        changes: Vec<Change>,
        now_ms: i64,
    ) -> Result<StagedChange, OffsetError> {
        if changes.is_empty() {
            return Ok(StagedChange {
                pending: None,
                target: None,
                now_ms,
            });
        }
        let pending = {
            let _order = self.write_order.lock();
            let batch = Self::encode_changes(&changes, now_ms);
            let pending = self.partition.append(batch, &AppendOptions::default())?;
            let mut groups = self.groups.write();
            for change in changes {
                Self::apply(&mut groups, change);
            }
            pending
        };
        Ok(StagedChange {
            pending: Some(pending),
            target: Some(self),
            now_ms,
        })
    }

    /// Replaces the log's history by a snapshot of the live offsets when the history has grown large.
    fn compact_if_due(&self, now_ms: i64) -> Result<(), OffsetError> {
        let partition = &self.partition;
        let log = &partition.log;
        let due = |live: usize| {
            let held = log.log_end_offset() - log.log_start_offset();
            held > self.compact_after_records && held > 2 * i64::try_from(live).unwrap_or(i64::MAX)
        };
        let live_entries = || {
            self.groups
                .read()
                .values()
                .map(BTreeMap::len)
                .sum::<usize>()
                + self.group_records.read().len()
        };
        // A snapshot holds live offsets only: pending transactional ones would be lost with
        // the history, so compaction waits until no transaction is pending here.
        if !due(live_entries()) || !self.pending_txn.lock().is_empty() {
            return Ok(());
        }
        let (snapshot_start, pending) = {
            let _order = self.write_order.lock();
            if !due(live_entries()) {
                return Ok(()); // another commit compacted meanwhile
            }
            let mut snapshot: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
                .groups
                .read()
                .iter()
                .flat_map(|(g, offsets)| {
                    offsets
                        .iter()
                        .map(move |((t, p), c)| (encode_key(g, t, *p), Some(encode_value(c))))
                })
                .collect();
            snapshot.extend(
                self.group_records
                    .read()
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone()))),
            );
            if snapshot.is_empty() {
                // Nothing is live: every record in the log is superseded.
                (log.log_end_offset(), None)
            } else {
                let batch = Self::encode_raw(&snapshot, now_ms);
                let pending = partition.append(batch, &AppendOptions::default())?;
                (pending.result.base_offset, Some(pending))
            }
        };
        // History may go only once the snapshot (and so everything queued before it) is durable.
        if let Some(pending) = pending {
            pending.wait()?;
            partition.note_durable();
        }
        let start = log.delete_records_before(snapshot_start)?;
        partition.note_log_start();
        tracing::info!(
            partition = partition.index,
            log_start_offset = start,
            "compacted {OFFSETS_TOPIC} into a snapshot"
        );
        Ok(())
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.groups
            .read()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// All committed offsets of a group, ordered by topic and partition.
    pub fn fetch_all(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        self.groups
            .read()
            .get(group)
            .map(|g| {
                g.iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The groups with committed offsets in this partition.
    pub fn groups(&self) -> Vec<String> {
        self.groups.read().keys().cloned().collect()
    }

    fn append_group_records(
        &self,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        now_ms: i64,
    ) -> Result<Option<PendingAppend>, OffsetError> {
        if records.is_empty() {
            return Ok(None);
        }
        let _order = self.write_order.lock();
        let batch = Self::encode_raw(&records, now_ms);
        let pending = self.partition.append(batch, &AppendOptions::default())?;
        let mut live = self.group_records.write();
        for (k, v) in records {
            match v {
                Some(v) => live.insert(k, v),
                None => live.remove(&k),
            };
        }
        Ok(Some(pending))
    }

    /// The live consumer group records of this partition, in key order (all group epochs, then
    /// members, target epochs, targets and current assignments), for the groups to be rebuilt.
    pub fn group_records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.group_records
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Turns a batch built by `encode_batch` into a transactional batch of `producer_id`/`epoch`
/// (attribute bit, producer fields; no sequence), CRC recomputed.
fn mark_transactional(batch: &mut [u8], producer_id: i64, producer_epoch: i16) {
    const ATTRIBUTES_AT: usize = 21;
    const PRODUCER_ID_AT: usize = 43;
    const PRODUCER_EPOCH_AT: usize = 51;
    const CRC_AT: usize = 17;
    if batch.len() < weir_storage::batch::BATCH_HEADER_LEN {
        return;
    }
    let attrs = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]])
        | weir_storage::batch::ATTR_TRANSACTIONAL;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    let crc = weir_storage::batch::compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip() {
        let key = encode_key("g", "orders", 7);
        assert_eq!(
            decode_key(&key),
            Some(("g".to_string(), "orders".to_string(), 7))
        );
        let value = CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: "meta".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        assert_eq!(decode_value(&encode_value(&value)), Some(value));
        assert_eq!(decode_key(&key[..5]), None);
    }

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: 0,
            metadata: String::new(),
            commit_timestamp_ms: 1,
        }
    }

    fn open(dir: &std::path::Path) -> (TopicRegistry, OffsetStore) {
        let data = weir_storage::DataDir::open(&dir.join("logs")).expect("data dir");
        let replicas = crate::topics::ReplicaContext::single_node(
            0,
            std::sync::Arc::new(crate::clock::SystemClock),
        );
        let topics = TopicRegistry::open(dir, data, weir_storage::FsyncPolicy::Never, replicas)
            .expect("topics");
        let mut store = OffsetStore::new();
        store.compact_after_records = 50;
        let topic = OffsetStore::open_topic(&topics, 4).expect("offsets topic");
        let count = i32::try_from(topic.partition_count()).expect("count");
        for p in topic.local_partitions() {
            store.load(p.index, p.clone(), count).expect("load");
        }
        (topics, store)
    }

    #[test]
    fn commits_survive_reopen_and_history_is_compacted_into_snapshots() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (_topics, store) = open(dir.path());
            for i in 0..500 {
                store
                    .commit(
                        "g1",
                        &[
                            ("t".into(), 0, committed(i)),
                            ("t".into(), 1, committed(i * 2)),
                        ],
                        i,
                    )
                    .expect("commit");
                store
                    .commit("g2", &[("t".into(), 0, committed(7))], i)
                    .expect("commit");
            }
            store.delete("g2", &[("t".into(), 0)], 600).expect("delete");
            let index = store.partition_of("g1").expect("mapped");
            let loaded = store.get(index).expect("loaded");
            let log = &loaded.partition().log;
            let held = log.log_end_offset() - log.log_start_offset();
            assert!(log.log_start_offset() > 0, "history was never dropped");
            assert!(
                held <= 60,
                "log holds {held} records after compaction with threshold 50"
            );
        }
        let (_topics, store) = open(dir.path());
        assert_eq!(store.fetch("g1", "t", 0).map(|c| c.offset), Some(499));
        assert_eq!(store.fetch("g1", "t", 1).map(|c| c.offset), Some(998));
        assert_eq!(
            store.fetch("g2", "t", 0),
            None,
            "the deletion survives compaction and reopen"
        );
        assert_eq!(store.groups(), vec!["g1".to_string()]);
    }
}
