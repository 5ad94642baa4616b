//! Share groups (KIP-932, "queues for Kafka"): groups whose members read the same partitions at
//! once, each record handed to one member at a time and acknowledged on its own.
//!
//! - `partition`: the state machine of one share-partition (pure, time passed in).
//! - `group`: membership, epochs and the assignment (pure).
//! - `session`: share sessions of ShareFetch/ShareAcknowledge (pure).
//! - `records`, `store`: the share state log `__share_group_state` and its replay.
//! - this module: [`ShareCoordinator`], which holds all of it for the broker, makes every state
//!   change durable in the log before its caller answers, and resolves a group's settings from
//!   the broker's defaults and the group's configs.
//!
//! Lock order: `groups`, then `sessions`, then `partitions` (the map), then one share-partition.
//! A share-partition's changes are appended to the log while its lock is held, so the log has
//! each share-partition's changes in the order they were made.

pub mod dlq;
pub mod group;
pub mod partition;
pub mod records;
pub mod redrive;
pub mod session;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
use weir_storage::PendingAppend;

use crate::dynamic_config::Overrides;
use crate::offsets::OffsetError;
use group::{Departed, ShareGroups};
use partition::{PersistedPartition, SharePartition, ShareSettings};
use records::{
    encode_group_value, encode_intent_value, encode_partition_value, DeadLetterIntent,
    PartitionValue, StateKey,
};
use session::ShareSessions;
pub use store::{ShareKey, ShareStateStore, SHARE_STATE_TOPIC};

/// The broker-level share group settings (Kafka's `group.share.*`), defaults of the group configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareDefaults {
    /// `group.share.record.lock.duration.ms`.
    pub record_lock_duration_ms: i32,
    /// `group.share.min.record.lock.duration.ms`: group configs below it are raised to it.
    pub min_record_lock_duration_ms: i32,
    /// `group.share.max.record.lock.duration.ms`: group configs above it are lowered to it.
    pub max_record_lock_duration_ms: i32,
    /// `group.share.delivery.count.limit`.
    pub delivery_count_limit: u16,
    /// `group.share.partition.max.record.locks`.
    pub partition_max_record_locks: usize,
    /// `group.share.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.share.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.share.max.size`.
    pub max_size: usize,
    /// `group.share.max.groups` (Kafka: 10; Weir allows more by default).
    pub max_groups: usize,
    /// `group.share.max.share.sessions`.
    pub max_share_sessions: usize,
}

impl Default for ShareDefaults {
    fn default() -> Self {
        Self {
            record_lock_duration_ms: 30_000,
            min_record_lock_duration_ms: 15_000,
            max_record_lock_duration_ms: 60_000,
            delivery_count_limit: 5,
            partition_max_record_locks: 2_000,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: 200,
            max_groups: 1_000,
            max_share_sessions: 2_000,
        }
    }
}

/// Where a share-partition without state starts (`share.auto.offset.reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    Latest,
    Earliest,
    /// The first record at or after now minus this many ms.
    ByDuration(i64),
}

/// A group's settings: its configs over the broker's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupShareConfig {
    pub partition: ShareSettings,
    pub auto_offset_reset: OffsetReset,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    /// `weir.share.dlq.topic`.
    pub dlq_topic: Option<String>,
    /// `weir.share.record.ttl.ms` (0: none).
    pub record_ttl_ms: i64,
}

fn parse_int<T: std::str::FromStr>(overrides: &Overrides, name: &str) -> Option<T> {
    overrides.get(name).and_then(|v| v.trim().parse().ok())
}

/// The settings of a group with `overrides` (its GROUP configs).
pub fn group_config(defaults: &ShareDefaults, overrides: &Overrides) -> GroupShareConfig {
    let lock_ms = parse_int::<i32>(overrides, "share.record.lock.duration.ms")
        .map(|v| {
            v.clamp(
                defaults.min_record_lock_duration_ms,
                defaults
                    .max_record_lock_duration_ms
                    .max(defaults.min_record_lock_duration_ms),
            )
        })
        .unwrap_or(defaults.record_lock_duration_ms);
    let auto_offset_reset = match overrides.get("share.auto.offset.reset").map(|v| v.trim()) {
        Some(v) if v.eq_ignore_ascii_case("earliest") => OffsetReset::Earliest,
        Some(v) => match v.strip_prefix("by_duration:") {
            Some(d) => crate::dynamic_config::iso_duration_ms(d)
                .map(OffsetReset::ByDuration)
                .unwrap_or(OffsetReset::Latest),
            None => OffsetReset::Latest,
        },
        None => OffsetReset::Latest,
    };
    let dlq_topic = overrides
        .get("weir.share.dlq.topic")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    GroupShareConfig {
        partition: ShareSettings {
            record_lock_duration_ms: i64::from(lock_ms),
            delivery_count_limit: parse_int::<u16>(overrides, "share.delivery.count.limit")
                .unwrap_or(defaults.delivery_count_limit),
            max_record_locks: defaults.partition_max_record_locks,
            retry_backoff_ms: parse_int(overrides, "weir.share.retry.backoff.ms").unwrap_or(0),
            retry_backoff_max_ms: parse_int(overrides, "weir.share.retry.backoff.max.ms")
                .unwrap_or(60_000),
            dead_letter: dlq_topic.is_some(),
        },
        auto_offset_reset,
        session_timeout_ms: parse_int(overrides, "share.session.timeout.ms")
            .unwrap_or(defaults.session_timeout_ms),
        heartbeat_interval_ms: parse_int(overrides, "share.heartbeat.interval.ms")
            .unwrap_or(defaults.heartbeat_interval_ms),
        dlq_topic,
        record_ttl_ms: parse_int(overrides, "weir.share.record.ttl.ms").unwrap_or(0),
    }
}

/// Why share state could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum ShareStateError {
    #[error(transparent)]
    Store(#[from] OffsetError),
    /// The group cannot be created (`group.share.max.groups` reached).
    #[error("{0}")]
    GroupLimit(String),
}

/// A share-partition behind its own lock.
pub type SharedPartition = Arc<Mutex<SharePartition>>;

/// Changes made durable together: wait for them before answering.
#[derive(Default)]
#[must_use = "pending appends must be waited for before answering"]
pub struct Pending(Vec<PendingAppend>);

impl Pending {
    pub fn push(&mut self, p: Option<PendingAppend>) {
        self.0.extend(p);
    }

    pub fn extend(&mut self, other: Pending) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_complete(&self) -> bool {
        self.0.iter().all(PendingAppend::is_complete)
    }
}

/// Every share group, share session and share-partition this broker coordinates.
pub struct ShareCoordinator {
    pub store: ShareStateStore,
    pub groups: Mutex<ShareGroups>,
    pub sessions: Mutex<ShareSessions>,
    partitions: Mutex<HashMap<ShareKey, SharedPartition>>,
    /// Dead letters being appended when the state was last persisted (see `records`).
    intents: Mutex<HashMap<ShareKey, DeadLetterIntent>>,
    pub defaults: ShareDefaults,
    /// Notified when records become available other than by an append (a release, a lock
    /// that ran out, a backoff or delay that passed), so parked share fetches look again.
    pub available: Notify,
}

impl ShareCoordinator {
    pub fn new(store: ShareStateStore, defaults: ShareDefaults) -> Self {
        Self {
            store,
            groups: Mutex::new(ShareGroups::new(defaults.max_size, defaults.max_groups)),
            sessions: Mutex::new(ShareSessions::new(
                defaults.max_share_sessions,
                i64::from(defaults.session_timeout_ms),
            )),
            partitions: Mutex::new(HashMap::new()),
            intents: Mutex::new(HashMap::new()),
            defaults,
            available: Notify::new(),
        }
    }

    /// Replaces all state by what a replay of the log found.
    pub fn load(&self, replayed: store::Replayed) {
        let mut groups = self.groups.lock();
        let mut sessions = self.sessions.lock();
        let mut partitions = self.partitions.lock();
        groups.clear();
        sessions.clear();
        partitions.clear();
        for (g, epoch) in replayed.groups {
            groups.restore(&g, epoch);
        }
        *self.intents.lock() = replayed.intents.into_iter().collect();
        let settings = group_config(&self.defaults, &Overrides::new()).partition;
        for (key, persisted) in replayed.partitions {
            groups.restore_if_missing(&key.0);
            partitions.insert(
                key,
                Arc::new(Mutex::new(SharePartition::restore(
                    &persisted,
                    settings.clone(),
                ))),
            );
        }
    }

    /// Forgets everything (this broker no longer coordinates share groups).
    pub fn unload(&self) {
        self.groups.lock().clear();
        self.sessions.lock().clear();
        self.partitions.lock().clear();
        self.intents.lock().clear();
    }

    /// The dead-letter intent of `key` recovered from the log, if any.
    pub fn intent(&self, key: &ShareKey) -> Option<DeadLetterIntent> {
        self.intents.lock().get(key).cloned()
    }

    /// Records (durably: wait for the result) that dead letters of `key` are being appended.
    pub fn record_intent(
        &self,
        key: &ShareKey,
        intent: DeadLetterIntent,
        now_ms: i64,
    ) -> Result<Option<PendingAppend>, OffsetError> {
        let record = (intent_key(key), Some(encode_intent_value(&intent)));
        let p = self.store.append(&[record], now_ms)?;
        self.intents.lock().insert(key.clone(), intent);
        Ok(p)
    }

    /// The dead letters of `key` are archived: its intent is done.
    pub fn clear_intent(
        &self,
        key: &ShareKey,
        now_ms: i64,
    ) -> Result<Option<PendingAppend>, OffsetError> {
        if self.intents.lock().remove(key).is_none() {
            return Ok(None);
        }
        self.store.append(&[(intent_key(key), None)], now_ms)
    }

    pub fn partition(&self, key: &ShareKey) -> Option<SharedPartition> {
        self.partitions.lock().get(key).cloned()
    }

    /// Every share-partition of `group`.
    pub fn group_partitions(&self, group: &str) -> Vec<(ShareKey, SharedPartition)> {
        self.partitions
            .lock()
            .iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    /// Every share-partition.
    pub fn all_partitions(&self) -> Vec<(ShareKey, SharedPartition)> {
        self.partitions
            .lock()
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    /// The share-partition of `key`, created at `start_offset()` if it has no state yet (the
    /// creation, and the group's, are appended to the log: wait for `pending`).
    pub fn get_or_init(
        &self,
        key: &ShareKey,
        settings: &ShareSettings,
        start_offset: impl FnOnce() -> i64,
        now_ms: i64,
        pending: &mut Pending,
    ) -> Result<SharedPartition, ShareStateError> {
        if let Some(p) = self.partition(key) {
            return Ok(p);
        }
        let mut groups = self.groups.lock();
        groups
            .ensure(&key.0)
            .map_err(|e| ShareStateError::GroupLimit(e.message.unwrap_or_default()))?;
        let group_records = self.group_records(&mut groups);
        let mut partitions = self.partitions.lock();
        if let Some(p) = partitions.get(key) {
            return Ok(p.clone());
        }
        let sp = SharePartition::new(start_offset(), settings.clone());
        let mut records = group_records;
        records.push(partition_snapshot_record(key, &sp.persisted()));
        pending.push(self.store.append(&records, now_ms)?);
        let shared = Arc::new(Mutex::new(sp));
        partitions.insert(key.clone(), shared.clone());
        Ok(shared)
    }

    fn group_records(&self, groups: &mut ShareGroups) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        groups
            .take_dirty_groups()
            .into_iter()
            .map(|(g, epoch)| (StateKey::Group(g).encode(), epoch.map(encode_group_value)))
            .collect()
    }

    /// Appends the group epochs that changed (call with `groups` locked).
    pub fn persist_groups(
        &self,
        groups: &mut ShareGroups,
        now_ms: i64,
    ) -> Result<Option<PendingAppend>, OffsetError> {
        let records = self.group_records(groups);
        self.store.append(&records, now_ms)
    }

    /// Appends what changed in one share-partition (call with its lock held).
    pub fn persist(
        &self,
        key: &ShareKey,
        sp: &mut SharePartition,
        now_ms: i64,
    ) -> Result<Option<PendingAppend>, OffsetError> {
        let Some(update) = sp.take_update() else {
            return Ok(None);
        };
        let record = (
            partition_key(key),
            Some(encode_partition_value(&PartitionValue::Update(update))),
        );
        self.store.append(&[record], now_ms)
    }

    /// Waits until `pending` is durable. Blocking.
    pub fn wait(&self, pending: Pending) -> Result<(), OffsetError> {
        let mut result = Ok(());
        for p in pending.0 {
            if let Err(e) = self.store.wait(p) {
                result = Err(e);
            }
        }
        result
    }

    /// Members that left or timed out: their records are available again at once, their
    /// sessions gone.
    pub fn release_departed(&self, departed: &[Departed], now_ms: i64) -> Pending {
        let mut pending = Pending::default();
        if departed.is_empty() {
            return pending;
        }
        {
            let mut sessions = self.sessions.lock();
            for d in departed {
                sessions.remove_member(&d.group_id, &d.member_id);
            }
        }
        for d in departed {
            let member: partition::MemberId = Arc::from(d.member_id.as_str());
            for (key, sp) in self.group_partitions(&d.group_id) {
                let mut sp = sp.lock();
                if sp.release_member(&member, now_ms) > 0 {
                    match self.persist(&key, &mut sp, now_ms) {
                        Ok(p) => pending.push(p),
                        Err(e) => tracing::warn!(error = %e, "share state not persisted"),
                    }
                }
            }
        }
        self.available.notify_waiters();
        pending
    }

    /// Timers: member sessions, record locks. Returns what to wait for.
    pub fn tick(&self, now_ms: i64) -> Pending {
        let mut pending = Pending::default();
        let departed = {
            let mut groups = self.groups.lock();
            let departed = groups.tick(now_ms);
            match self.persist_groups(&mut groups, now_ms) {
                Ok(p) => pending.push(p),
                Err(e) => tracing::warn!(error = %e, "share group epochs not persisted"),
            }
            departed
        };
        pending.extend(self.release_departed(&departed, now_ms));
        let mut woke = false;
        for (key, sp) in self.all_partitions() {
            let mut sp = sp.lock();
            let expired = if sp.next_lock_deadline_ms().is_some_and(|d| d <= now_ms) {
                sp.expire_locks(now_ms)
            } else {
                0
            };
            let due = sp
                .next_due_ms(now_ms - GROUP_TICK_SLACK_MS)
                .is_some_and(|d| d <= now_ms);
            woke |= expired > 0 || due;
            if sp.has_update() {
                match self.persist(&key, &mut sp, now_ms) {
                    Ok(p) => pending.push(p),
                    Err(e) => tracing::warn!(error = %e, "share state not persisted"),
                }
            }
        }
        if woke {
            self.available.notify_waiters();
        }
        pending
    }

    /// Drops the state of share-partitions whose topic is gone (`exists` says which topic ids
    /// still exist), with tombstones.
    pub fn forget_deleted_topics(
        &self,
        exists: impl Fn(&[u8; 16]) -> bool,
        now_ms: i64,
    ) -> Pending {
        let gone: Vec<ShareKey> = self
            .partitions
            .lock()
            .keys()
            .filter(|k| !exists(&k.1))
            .cloned()
            .collect();
        self.remove_partitions(&gone, now_ms)
    }

    /// Deletes the state of `keys` (tombstones).
    pub fn remove_partitions(&self, keys: &[ShareKey], now_ms: i64) -> Pending {
        let mut pending = Pending::default();
        if keys.is_empty() {
            return pending;
        }
        let mut partitions = self.partitions.lock();
        let mut intents = self.intents.lock();
        let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for k in keys {
            if partitions.remove(k).is_some() {
                records.push((partition_key(k), None));
            }
            if intents.remove(k).is_some() {
                records.push((intent_key(k), None));
            }
        }
        match self.store.append(&records, now_ms) {
            Ok(p) => pending.push(p),
            Err(e) => tracing::warn!(error = %e, "share state tombstones not persisted"),
        }
        pending
    }

    /// Replaces the state of `key` by a fresh start at `offset` (AlterShareGroupOffsets).
    pub fn reset(
        &self,
        key: &ShareKey,
        settings: &ShareSettings,
        offset: i64,
        now_ms: i64,
    ) -> Result<Pending, ShareStateError> {
        let mut pending = Pending::default();
        let mut groups = self.groups.lock();
        groups
            .ensure(&key.0)
            .map_err(|e| ShareStateError::GroupLimit(e.message.unwrap_or_default()))?;
        let mut records = self.group_records(&mut groups);
        let mut partitions = self.partitions.lock();
        let sp = SharePartition::new(offset, settings.clone());
        records.push(partition_snapshot_record(key, &sp.persisted()));
        pending.push(self.store.append(&records, now_ms)?);
        partitions.insert(key.clone(), Arc::new(Mutex::new(sp)));
        Ok(pending)
    }

    /// Deletes an empty share group with all its state. `Err` with Kafka's code otherwise.
    pub fn delete_group(
        &self,
        group: &str,
        now_ms: i64,
    ) -> Result<Pending, weir_protocol::ErrorCode> {
        let mut groups = self.groups.lock();
        groups.delete(group)?;
        let mut pending = Pending::default();
        let records = self.group_records(&mut groups);
        self.sessions.lock().remove_group(group);
        self.partitions.lock().retain(|k, _| k.0 != group);
        // The group's tombstone drops its intents at replay too.
        self.intents.lock().retain(|k, _| k.0 != group);
        match self.store.append(&records, now_ms) {
            Ok(p) => pending.push(p),
            Err(_) => return Err(weir_protocol::ErrorCode::KAFKA_STORAGE_ERROR),
        }
        Ok(pending)
    }

    /// Bounds the log: if it is due, appends a snapshot of every key and deletes what came
    /// before. Blocking.
    pub fn compact_if_due(&self, now_ms: i64) -> Result<(), OffsetError> {
        let live = self.partitions.lock().len()
            + self.groups.lock().all_epochs().len()
            + self.intents.lock().len();
        let Some(cut) = self.store.compaction_cut(live) else {
            return Ok(());
        };
        let mut pending = Pending::default();
        {
            let groups = self.groups.lock();
            let intents = self.intents.lock();
            let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = groups
                .all_epochs()
                .into_iter()
                .map(|(g, e)| (StateKey::Group(g).encode(), Some(encode_group_value(e))))
                .chain(
                    intents
                        .iter()
                        .map(|(k, i)| (intent_key(k), Some(encode_intent_value(i)))),
                )
                .collect();
            pending.push(self.store.append(&records, now_ms)?);
        }
        for (key, sp) in self.all_partitions() {
            let mut sp = sp.lock();
            // The snapshot supersedes any pending update of this share-partition.
            let _ = sp.take_update();
            let record = partition_snapshot_record(&key, &sp.persisted());
            pending.push(self.store.append(&[record], now_ms)?);
        }
        self.wait(pending)?;
        self.store.delete_before(cut)?;
        Ok(())
    }

    /// Start offsets of `group`'s share-partitions.
    pub fn start_offsets(&self, group: &str) -> BTreeMap<([u8; 16], i32), i64> {
        self.group_partitions(group)
            .into_iter()
            .map(|((_, t, p), sp)| ((t, p), sp.lock().start_offset()))
            .collect()
    }
}

/// How far before now a due record is still worth a wake-up in `tick` (records due between two
/// ticks wake parked fetches on the next one).
const GROUP_TICK_SLACK_MS: i64 = 1_000;

fn partition_key(key: &ShareKey) -> Vec<u8> {
    StateKey::Partition {
        group: key.0.clone(),
        topic_id: key.1,
        partition: key.2,
    }
    .encode()
}

fn intent_key(key: &ShareKey) -> Vec<u8> {
    StateKey::DeadLetterIntent {
        group: key.0.clone(),
        topic_id: key.1,
        partition: key.2,
    }
    .encode()
}

fn partition_snapshot_record(
    key: &ShareKey,
    persisted: &PersistedPartition,
) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        partition_key(key),
        Some(encode_partition_value(&PartitionValue::Snapshot(
            persisted.clone(),
        ))),
    )
}

#[cfg(test)]
mod tests {
    use super::partition::{AckBatch, AckType, Disposition};
    use super::*;
    use crate::topics::TopicRegistry;

    fn open(dir: &std::path::Path) -> (TopicRegistry, ShareCoordinator) {
        let data = weir_storage::DataDir::open(&dir.join("logs")).expect("data dir");
        let replicas = crate::topics::ReplicaContext::single_node(
            0,
            std::sync::Arc::new(crate::clock::SystemClock),
        );
        let topics = TopicRegistry::open(dir, data, weir_storage::FsyncPolicy::Never, replicas)
            .expect("topics");
        let (mut store, replayed) = ShareStateStore::open(&topics).expect("store");
        store.set_compact_after_records(50);
        let c = ShareCoordinator::new(store, ShareDefaults::default());
        c.load(replayed);
        (topics, c)
    }

    #[test]
    fn state_survives_reopen_and_the_log_is_compacted_into_snapshots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key: ShareKey = ("g".into(), [9; 16], 0);
        let member: partition::MemberId = Arc::from("m");
        {
            let (_topics, c) = open(dir.path());
            let settings = ShareSettings::default();
            let mut pending = Pending::default();
            let sp = c
                .get_or_init(&key, &settings, || 0, 0, &mut pending)
                .expect("init");
            c.wait(pending).expect("durable");
            // 500 records, each acquired and accepted on its own: 500 updates.
            for offset in 0..500 {
                let mut p = sp.lock();
                let got = p.acquire(&member, &[(offset, offset)], 1, 0, |_| Disposition::Deliver);
                assert_eq!(got.len(), 1);
                let types = if offset == 499 {
                    vec![AckType::Release]
                } else {
                    vec![AckType::Accept]
                };
                p.acknowledge(
                    &member,
                    &[AckBatch {
                        first_offset: offset,
                        last_offset: offset,
                        types,
                    }],
                    0,
                )
                .expect("ack");
                let pending = c.persist(&key, &mut p, 0).expect("append");
                drop(p);
                let mut all = Pending::default();
                all.push(pending);
                c.wait(all).expect("durable");
                c.compact_if_due(0).expect("compaction");
            }
            let partition = c.store.partition().expect("partition");
            let log = &partition.log;
            assert!(log.log_start_offset() > 0, "history was never dropped");
            assert!(
                log.log_end_offset() - log.log_start_offset() <= 60,
                "the log holds {} records after compaction with threshold 50",
                log.log_end_offset() - log.log_start_offset()
            );
        }
        let (_topics, c) = open(dir.path());
        let sp = c.partition(&key).expect("restored");
        let mut p = sp.lock();
        assert_eq!(
            p.start_offset(),
            499,
            "offset 499 was released, not accepted"
        );
        let got = p.acquire(&member, &[(499, 499)], 1_000, 0, |_| Disposition::Deliver);
        assert_eq!(
            got.iter()
                .map(|r| (r.first_offset, r.last_offset, r.delivery_count))
                .collect::<Vec<_>>(),
            vec![(499, 499, 2)],
            "only the released record is delivered again"
        );
        assert!(c.groups.lock().contains("g"));
    }
}
