//! Share groups (KIP-932, "queues for Kafka"): groups whose members read the same partitions at
//! once, each record handed to one member at a time and acknowledged on its own.
//!
//! - `partition`: the state machine of one share-partition (pure, time passed in).
//! - `group`: membership, epochs and the assignment (pure).
//! - `session`: share sessions of ShareFetch/ShareAcknowledge (pure).
//! - `records`, `store`: the share state log `__share_group_state` (one log per partition of
//!   the topic; a share-partition's key hashes to one of them) and its replay.
//! - this module: [`ShareCoordinator`], which holds all of it for the broker, makes every state
//!   change durable in the log before its caller answers, and resolves a group's settings from
//!   the broker's defaults and the group's configs.
//!
//! - `persister`: how a leader reaches the owner of the durable state on another broker.
//!
//! Lock order: `groups`, then `sessions`, then a state partition's `owned`, then its `intents`
//! (one state partition's at a time). A share-partition's
//! lock may be held while `partitions` (the map of loaded ones) is taken, never the other way
//! round. A share-partition's changes are written while its lock is held, so the owner gets
//! each share-partition's changes in the order they were made.

pub mod dlq;
pub mod group;
pub mod partition;
pub mod persister;
pub mod records;
pub mod redrive;
pub mod session;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::consumer_groups::records::GroupRecord;
use crate::dynamic_config::Overrides;
use crate::internal_partitions::InternalPartitions;
use crate::offsets::{GroupRecordsWrite, OffsetError, OffsetStore};
use group::{Departed, ShareGroups};
use parking_lot::{Mutex, RwLock};
use partition::{PersistedPartition, SharePartition, ShareSettings};
use records::{
    encode_intent_value, encode_partition_value, DeadLetterIntent, PartitionValue, StateKey,
};
use session::ShareSessions;
pub use store::{ShareKey, ShareStateStore, StateAppend, SHARE_STATE_TOPIC};
use tokio::sync::Notify;
use weir_protocol::{Request, Response};

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

/// Which records a share group delivers (`share.isolation.level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShareIsolation {
    /// Up to the high watermark, transactional records included whatever their outcome.
    #[default]
    ReadUncommitted,
    /// Up to the last stable offset; records of aborted transactions are archived unseen.
    ReadCommitted,
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
    /// `share.isolation.level`.
    pub isolation: ShareIsolation,
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
            max_delayed_records: parse_int::<usize>(overrides, "weir.share.delayed.records.max")
                .unwrap_or(partition::DEFAULT_MAX_DELAYED_RECORDS)
                .min(partition::MAX_DELAYED_RECORDS),
        },
        auto_offset_reset,
        session_timeout_ms: parse_int(overrides, "share.session.timeout.ms")
            .unwrap_or(defaults.session_timeout_ms),
        heartbeat_interval_ms: parse_int(overrides, "share.heartbeat.interval.ms")
            .unwrap_or(defaults.heartbeat_interval_ms),
        dlq_topic,
        record_ttl_ms: parse_int(overrides, "weir.share.record.ttl.ms").unwrap_or(0),
        isolation: match overrides.get("share.isolation.level").map(|v| v.trim()) {
            Some("read_committed") => ShareIsolation::ReadCommitted,
            _ => ShareIsolation::ReadUncommitted,
        },
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

/// Most share-partitions a broker holds, as a leader (loaded) or as the owner of their state.
pub const MAX_SHARE_PARTITIONS: usize = 100_000;

/// Changes made durable together: wait for them before answering. In-process appends to the
/// share state log, or writes queued for the remote owner of the state.
#[derive(Default)]
#[must_use = "pending appends must be waited for before answering"]
pub struct Pending {
    /// Each with the share-partitions it carries (dropped here if it fails), as `remote`.
    appends: Vec<(Vec<ShareKey>, StateAppend)>,
    /// Each with the share-partitions it carries (dropped here if it fails).
    remote: Vec<(Vec<ShareKey>, persister::Reply)>,
}

impl Pending {
    pub fn push(&mut self, p: Option<StateAppend>) {
        self.appends.extend(p.map(|p| (Vec::new(), p)));
    }

    /// An append that carries the state of `key`: if it does not become durable and
    /// committed, the share-partition loaded here is dropped and read from the owner again,
    /// so that this leader does not go on from a state that a failover may have lost.
    fn push_for(&mut self, key: &ShareKey, p: Option<StateAppend>) {
        self.appends.extend(p.map(|p| (vec![key.clone()], p)));
    }

    pub fn extend(&mut self, other: Pending) {
        self.appends.extend(other.appends);
        self.remote.extend(other.remote);
    }

    pub fn is_empty(&self) -> bool {
        self.appends.is_empty() && self.remote.is_empty()
    }
}

/// The partitions of `keys` (one group's share-partitions) by topic id, each made by `entry`:
/// the shape of the share state APIs' requests.
fn by_topic<P>(keys: &[ShareKey], entry: impl Fn(i32) -> P) -> BTreeMap<[u8; 16], Vec<P>> {
    let mut topics: BTreeMap<[u8; 16], Vec<P>> = BTreeMap::new();
    for k in keys {
        topics.entry(k.1).or_default().push(entry(k.2));
    }
    topics
}

/// The durable state of one share-partition, at its owner.
#[derive(Clone, Debug, Default)]
pub struct Owned {
    pub persisted: PersistedPartition,
    /// Bumped when the state is replaced (AlterShareGroupOffsets): writes of a leader that
    /// loaded an older state are refused (FENCED_STATE_EPOCH).
    pub state_epoch: i32,
    /// The newest leader epoch of the data partition that read or wrote it: writes and reads
    /// of an older leader are refused (FENCED_LEADER_EPOCH), so a deposed leader cannot
    /// overwrite what its successor did.
    pub leader_epoch: i32,
}

/// A share-partition's durable state as its owner serves it to a leader.
#[derive(Clone, Debug)]
pub struct ReadState {
    pub persisted: PersistedPartition,
    pub state_epoch: i32,
    /// The dead letters being appended when the state was last written, if any.
    pub intent: Option<DeadLetterIntent>,
}

/// A share-partition's state in brief, as its owner answers ReadShareGroupStateSummary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateSummary {
    pub start_offset: i64,
    pub state_epoch: i32,
    /// The leader epoch of the last writer.
    pub leader_epoch: i32,
    /// Offsets at or after the start offset whose delivery is complete (KIP-1226).
    pub delivery_complete_count: i64,
    /// Records parked below the start offset for delayed delivery (Weir's).
    pub parked: i64,
}

/// How far a share group is through one partition (DescribeShareGroupOffsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub start_offset: i64,
    /// Offsets at or after the start offset whose delivery is complete; `None` if the owner
    /// did not say.
    pub delivery_complete_count: Option<i64>,
    /// Records parked below the start offset for delayed delivery.
    pub parked: i64,
}

impl Progress {
    /// The lag ([`partition::lag`]); -1 (Kafka's "not available") without a high watermark or a
    /// completed count.
    pub fn lag(&self, high_watermark: Option<i64>) -> i64 {
        match (high_watermark, self.delivery_complete_count) {
            (Some(hw), Some(complete)) => {
                partition::lag(hw, self.start_offset, complete, self.parked)
            }
            _ => -1,
        }
    }
}

/// What a write of a share-partition's state does to its dead-letter intent (see `dlq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentChange {
    Keep,
    /// Dead letters are about to be appended.
    Set(DeadLetterIntent),
    /// They are archived (the same write archives them).
    Clear,
}

/// The share state owned here for one partition of the share state topic (this broker leads
/// it): the durable state of the share-partitions whose keys hash to it.
pub struct OwnedPartition {
    log: ShareStateStore,
    owned: Mutex<HashMap<ShareKey, Owned>>,
    /// Dead letters being appended when the state was last persisted (see `records`).
    intents: Mutex<HashMap<ShareKey, DeadLetterIntent>>,
}

/// The key a share-partition's state is placed by (Kafka's `SharePartitionKey`:
/// `group:topicId:partition`, the topic id as Kafka prints a Uuid), hashed over the partitions
/// of the share state topic as Kafka hashes it.
pub fn coordinator_key(key: &ShareKey) -> String {
    use base64::Engine as _;
    format!(
        "{}:{}:{}",
        key.0,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.1),
        key.2
    )
}

/// The share-partition of a coordinator key `group:topicId:partition`, read as Kafka reads one
/// (FindCoordinator v6): exactly three parts, the group trimmed and not empty, the topic id as
/// Kafka prints a Uuid, the partition a decimal integer. `None` if it is not one.
pub fn parse_coordinator_key(key: &str) -> Option<ShareKey> {
    use base64::Engine as _;
    let mut parts = key.split(':');
    let (group, topic_id, partition) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || group.trim().is_empty() {
        return None;
    }
    let topic_id: [u8; 16] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(topic_id)
        .ok()?
        .try_into()
        .ok()?;
    Some((group.trim().to_string(), topic_id, partition.parse().ok()?))
}

/// Every share group, share session and share-partition of this broker. Two roles:
/// - group coordinator (the leader of the group's `__consumer_offsets` partition, like every
///   group): share group membership (`groups`), its epochs written to that partition;
/// - owner (the share coordinator of the share-partitions whose keys hash to a partition of the
///   share state topic that this broker leads; a single node leads them all): their durable
///   state (`state`, replayed from and appended to each partition's log), dead-letter intents;
/// - leader (every broker): the share sessions of the clients that fetch from it and the
///   in-memory state (`SharePartition`) of the share-partitions of the data partitions it leads,
///   loaded from the owner on first fetch and written back to it through the persister.
pub struct ShareCoordinator {
    /// Owner side: the state partitions led here.
    state: InternalPartitions<OwnedPartition>,
    pub groups: Mutex<ShareGroups>,
    pub sessions: Mutex<ShareSessions>,
    /// Leader side: loaded share-partitions.
    partitions: Mutex<HashMap<ShareKey, SharedPartition>>,
    /// The leaders of the state partitions not led here, by index: node and address (set by
    /// the cluster runtime).
    remote_owners: RwLock<BTreeMap<i32, (i32, String)>>,
    /// Tests compact the log sooner.
    compact_after_records: Option<i64>,
    remote: persister::RemotePersister,
    /// Leader side: the idempotent producers of dead letters.
    dead_letter_producers: dlq::DeadLetterProducers,
    pub defaults: ShareDefaults,
    /// Notified when records become available other than by an append (a release, a lock
    /// that ran out, a backoff or delay that passed), so parked share fetches look again.
    pub available: Notify,
}

/// Why a leader could not load or write a share-partition's state: Kafka's code.
pub type PersistError = weir_protocol::ErrorCode;

impl ShareCoordinator {
    pub fn new(defaults: ShareDefaults) -> Self {
        Self {
            state: InternalPartitions::default(),
            groups: Mutex::new(ShareGroups::new(defaults.max_size, defaults.max_groups)),
            sessions: Mutex::new(ShareSessions::new(
                defaults.max_share_sessions,
                i64::from(defaults.session_timeout_ms),
            )),
            partitions: Mutex::new(HashMap::new()),
            remote_owners: RwLock::new(BTreeMap::new()),
            compact_after_records: None,
            remote: persister::RemotePersister::default(),
            dead_letter_producers: dlq::DeadLetterProducers::default(),
            defaults,
            available: Notify::new(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Owner side
    // -----------------------------------------------------------------------------------------

    #[cfg(test)]
    pub fn set_compact_after_records(&mut self, n: i64) {
        self.compact_after_records = Some(n);
    }

    /// Takes over state partition `index` (of `partition_count`; this broker leads it now):
    /// replays its log into the owned state. Groups that have state are known (listed,
    /// described) where they are coordinated: `coordinated_here` says which. Group epochs found
    /// here were written by older versions (they live with the group now). Blocking.
    pub fn load_state_partition(
        &self,
        index: i32,
        partition: Arc<crate::partition::Partition>,
        partition_count: i32,
        coordinated_here: impl Fn(&str) -> bool,
    ) -> Result<(), OffsetError> {
        self.state.set_partition_count(partition_count);
        let log = ShareStateStore::new(partition, self.compact_after_records);
        let replayed = log.replay()?;
        {
            let mut groups = self.groups.lock();
            for (g, epoch) in &replayed.groups {
                if coordinated_here(g) {
                    groups.restore(g, *epoch);
                }
            }
            for key in replayed.partitions.keys() {
                if coordinated_here(&key.0) {
                    groups.restore_if_missing(&key.0);
                }
            }
        }
        let owned = replayed
            .partitions
            .into_iter()
            .map(|(key, persisted)| {
                let o = Owned {
                    persisted,
                    state_epoch: 0,
                    leader_epoch: -1,
                };
                (key, o)
            })
            .collect();
        self.state.insert(
            index,
            Arc::new(OwnedPartition {
                log,
                owned: Mutex::new(owned),
                intents: Mutex::new(replayed.intents.into_iter().collect()),
            }),
        );
        Ok(())
    }

    /// Forgets the state of partition `index` (this broker no longer leads it). Loaded
    /// share-partitions stay: they follow the data partitions' leadership, not this.
    pub fn unload_state_partition(&self, index: i32) {
        self.state.remove(index);
    }

    /// The state partitions led here, each with the replica its log is.
    pub fn state_partitions(&self) -> Vec<(i32, Arc<crate::partition::Partition>)> {
        self.state
            .all()
            .into_iter()
            .map(|(i, op)| (i, op.log.partition().clone()))
            .collect()
    }

    /// The state partition of `key`, if this broker owns it.
    fn owned_here(&self, key: &ShareKey) -> Option<Arc<OwnedPartition>> {
        self.state.for_key(&coordinator_key(key))
    }

    /// Whether this broker owns the durable state of `key` (leads its state partition).
    pub fn owns_state(&self, key: &ShareKey) -> bool {
        self.owned_here(key).is_some()
    }

    /// Whether this broker leads every partition of the share state topic (a single node
    /// does): then every share-partition's state is owned here.
    fn owns_every_state_partition(&self) -> bool {
        let count = self.state.partition_count();
        count > 0 && self.state.all().len() == usize::try_from(count).unwrap_or(usize::MAX)
    }

    /// How many share-partitions' states are owned here.
    fn owned_count(&self) -> usize {
        self.state
            .all()
            .iter()
            .map(|(_, op)| op.owned.lock().len())
            .sum()
    }

    /// The partition of the share state topic `key`'s state lives in (`None` while the
    /// topic's partition count is not known here).
    pub fn state_partition_of(&self, key: &ShareKey) -> Option<i32> {
        self.state.partition_of(&coordinator_key(key))
    }

    /// Where the durable state of `key` is owned: here, at another broker, or nowhere known.
    pub fn owner_of(&self, key: &ShareKey) -> persister::Owner {
        let Some(index) = self.state_partition_of(key) else {
            return persister::Owner::Unknown;
        };
        if self.state.get(index).is_some() {
            return persister::Owner::Local;
        }
        match self.remote_owners.read().get(&index) {
            Some((node, addr)) => persister::Owner::Remote {
                node: *node,
                addr: addr.clone(),
            },
            None => persister::Owner::Unknown,
        }
    }

    /// Sets the share state topic's partition count, the leaders of its partitions on other
    /// brokers (index to node and address; a partition absent has no known leader) and this
    /// broker's id (for its connections).
    pub fn set_remote_owners(
        &self,
        me: i32,
        security: &Arc<crate::cluster::peer::PeerSecurity>,
        partition_count: i32,
        owners: BTreeMap<i32, (i32, String)>,
    ) {
        self.remote.set_node(me, security);
        self.state.set_partition_count(partition_count);
        let mut current = self.remote_owners.write();
        if *current != owners {
            *current = owners;
        }
    }

    /// The owned state of `key` for a leader at `leader_epoch` (`None`: no state), which becomes
    /// the newest leader epoch known.
    pub fn owner_read(
        &self,
        key: &ShareKey,
        leader_epoch: i32,
    ) -> Result<Option<ReadState>, PersistError> {
        let op = self
            .owned_here(key)
            .ok_or(weir_protocol::ErrorCode::NOT_COORDINATOR)?;
        let mut owned = op.owned.lock();
        let Some(o) = owned.get_mut(key) else {
            return Ok(None);
        };
        if leader_epoch < o.leader_epoch {
            return Err(weir_protocol::ErrorCode::FENCED_LEADER_EPOCH);
        }
        o.leader_epoch = leader_epoch;
        let intent = op.intents.lock().get(key).cloned();
        Ok(Some(ReadState {
            persisted: o.persisted.clone(),
            state_epoch: o.state_epoch,
            intent,
        }))
    }

    /// Creates the state of `key` at `start_offset` (with its group, if new) unless it exists.
    pub fn owner_initialize(
        &self,
        key: &ShareKey,
        start_offset: i64,
        state_epoch: i32,
        now_ms: i64,
    ) -> Result<Option<StateAppend>, PersistError> {
        let op = self
            .owned_here(key)
            .ok_or(weir_protocol::ErrorCode::NOT_COORDINATOR)?;
        let at_limit = self.owned_count() >= MAX_SHARE_PARTITIONS;
        let mut owned = op.owned.lock();
        // Existing state is kept unless the caller starts a newer state epoch (a group
        // coordinator's AlterShareGroupOffsets, as Kafka's initialize replaces the state).
        match owned.get(key) {
            Some(o) if state_epoch <= o.state_epoch => return Ok(None),
            Some(_) => {}
            None if at_limit => {
                return Err(weir_protocol::ErrorCode::GROUP_MAX_SIZE_REACHED);
            }
            None => {}
        }
        let persisted = PersistedPartition {
            start_offset,
            batches: Vec::new(),
        };
        let records = [partition_snapshot_record(key, &persisted)];
        let p = op
            .log
            .append(&records, now_ms)
            .map_err(|_| weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
        let replaced = owned
            .insert(
                key.clone(),
                Owned {
                    persisted,
                    state_epoch,
                    leader_epoch: -1,
                },
            )
            .is_some();
        drop(owned);
        if replaced {
            self.partitions.lock().remove(key);
        }
        Ok(p)
    }

    /// Applies a leader's write (`update`: the start offset and the ranges that changed) and
    /// the change to its dead-letter intent, in one append.
    pub fn owner_write(
        &self,
        key: &ShareKey,
        epochs: partition::LoadEpochs,
        update: &PersistedPartition,
        intent: &IntentChange,
        now_ms: i64,
    ) -> Result<Option<StateAppend>, PersistError> {
        let (state_epoch, leader_epoch) = (epochs.state_epoch, epochs.leader_epoch);
        let op = self
            .owned_here(key)
            .ok_or(weir_protocol::ErrorCode::NOT_COORDINATOR)?;
        let mut owned = op.owned.lock();
        let Some(o) = owned.get_mut(key) else {
            // Deleted (or replaced) since the leader loaded it.
            return Err(weir_protocol::ErrorCode::FENCED_STATE_EPOCH);
        };
        if state_epoch < o.state_epoch {
            return Err(weir_protocol::ErrorCode::FENCED_STATE_EPOCH);
        }
        if leader_epoch < o.leader_epoch {
            return Err(weir_protocol::ErrorCode::FENCED_LEADER_EPOCH);
        }
        let mut records = vec![(
            partition_key(key),
            Some(encode_partition_value(&PartitionValue::Update(
                update.clone(),
            ))),
        )];
        let mut intents = op.intents.lock();
        match intent {
            IntentChange::Keep => {}
            IntentChange::Set(i) => records.push((intent_key(key), Some(encode_intent_value(i)))),
            IntentChange::Clear if intents.contains_key(key) => {
                records.push((intent_key(key), None));
            }
            IntentChange::Clear => {}
        }
        let p = op
            .log
            .append(&records, now_ms)
            .map_err(|_| weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
        o.leader_epoch = leader_epoch;
        SharePartition::apply_update(&mut o.persisted, update, store::MAX_REPLAYED_WINDOW);
        match intent {
            IntentChange::Keep => {}
            IntentChange::Set(i) => {
                intents.insert(key.clone(), i.clone());
            }
            IntentChange::Clear => {
                intents.remove(key);
            }
        }
        Ok(p)
    }

    /// The summary of `key`'s state owned here, if it has one.
    pub fn owner_summary(&self, key: &ShareKey) -> Option<StateSummary> {
        self.owned_here(key)?
            .owned
            .lock()
            .get(key)
            .map(|o| StateSummary {
                start_offset: o.persisted.start_offset,
                state_epoch: o.state_epoch,
                leader_epoch: o.leader_epoch,
                delivery_complete_count: o.persisted.delivery_complete_count(),
                parked: o.persisted.parked_count(),
            })
    }

    /// Queues the group epochs that changed in their groups' `__consumer_offsets` partitions
    /// (call with `groups` locked, so the log has them in the order they were made); wait with
    /// [`OffsetStore::wait_group_records`].
    pub fn persist_groups(
        groups: &mut ShareGroups,
        offsets: &OffsetStore,
        now_ms: i64,
    ) -> Result<GroupRecordsWrite, OffsetError> {
        let records = groups
            .take_dirty_groups()
            .into_iter()
            .map(|(group_id, epoch)| {
                let (key, value) = GroupRecord::ShareGroupEpoch {
                    group_id: group_id.clone(),
                    epoch,
                }
                .encode();
                (group_id, key, value)
            })
            .collect();
        offsets.append_group_records(records, now_ms)
    }

    /// Drops the state of share-partitions whose topic is gone (`exists` says which topic ids
    /// still exist), with tombstones.
    pub fn forget_deleted_topics(
        &self,
        exists: impl Fn(&[u8; 16]) -> bool,
        now_ms: i64,
    ) -> Pending {
        let gone = self.owned_keys_where(|k| !exists(&k.1));
        self.remove_partitions(&gone, now_ms)
    }

    /// Deletes the state of those of `keys` owned here (tombstones). A leader holding one of
    /// them finds out at its next write (FENCED_STATE_EPOCH) and loads again.
    pub fn remove_partitions(&self, keys: &[ShareKey], now_ms: i64) -> Pending {
        let mut pending = Pending::default();
        if keys.is_empty() {
            return pending;
        }
        for (_, op) in self.state.all() {
            let mut owned = op.owned.lock();
            let mut intents = op.intents.lock();
            let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            for k in keys {
                if owned.remove(k).is_some() {
                    records.push((partition_key(k), None));
                }
                if intents.remove(k).is_some() {
                    records.push((intent_key(k), None));
                }
            }
            drop(intents);
            drop(owned);
            match op.log.append(&records, now_ms) {
                Ok(p) => pending.push(p),
                Err(e) => tracing::warn!(error = %e, "share state tombstones not persisted"),
            }
        }
        let mut loaded = self.partitions.lock();
        for k in keys {
            loaded.remove(k);
        }
        pending
    }

    /// Replaces the state of `key` by a fresh start at `offset` (AlterShareGroupOffsets), in a
    /// new state epoch.
    pub fn reset(
        &self,
        key: &ShareKey,
        offset: i64,
        now_ms: i64,
    ) -> Result<Pending, ShareStateError> {
        let mut pending = Pending::default();
        let op =
            self.owned_here(key)
                .ok_or(ShareStateError::Store(OffsetError::NotCoordinator(
                    crate::partition::ReplicaError::NotLeader,
                )))?;
        let at_limit = self.owned_count() >= MAX_SHARE_PARTITIONS;
        let mut owned = op.owned.lock();
        if !owned.contains_key(key) && at_limit {
            return Err(ShareStateError::GroupLimit(
                "too many share-partitions".to_string(),
            ));
        }
        let persisted = PersistedPartition {
            start_offset: offset,
            batches: Vec::new(),
        };
        let records = [partition_snapshot_record(key, &persisted)];
        pending.push(op.log.append(&records, now_ms)?);
        let state_epoch = owned
            .get(key)
            .map_or(0, |o| o.state_epoch.saturating_add(1));
        owned.insert(
            key.clone(),
            Owned {
                persisted,
                state_epoch,
                leader_epoch: -1,
            },
        );
        drop(owned);
        self.partitions.lock().remove(key);
        Ok(pending)
    }

    /// Deletes the state of `keys` wherever it is owned (the persister's
    /// DeleteShareGroupState, as a group coordinator deletes a group's state): in-process where
    /// this broker owns it, otherwise queued for the owner, one request per owner and group.
    /// Loaded share-partitions of `keys` here are dropped. `Err` (nothing done) if the owner
    /// of one is not known now.
    pub fn delete_state(&self, keys: &[ShareKey], now_ms: i64) -> Result<Pending, PersistError> {
        use weir_protocol::requests::{
            DeleteShareGroupStateRequest, DeleteShareStatePartition, DeleteShareStateTopic,
        };
        let mut local = Vec::new();
        let mut remote: BTreeMap<(i32, String, String), Vec<ShareKey>> = BTreeMap::new();
        for key in keys {
            match self.owner_of(key) {
                persister::Owner::Local => local.push(key.clone()),
                persister::Owner::Remote { node, addr } => remote
                    .entry((node, addr, key.0.clone()))
                    .or_default()
                    .push(key.clone()),
                persister::Owner::Unknown => {
                    return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)
                }
            }
        }
        let mut pending = self.remove_partitions(&local, now_ms);
        for ((node, addr, group), keys) in remote {
            for k in &keys {
                self.drop_loaded(k);
            }
            let request = Request::DeleteShareGroupState(DeleteShareGroupStateRequest {
                group_id: group,
                topics: by_topic(&keys, |partition| DeleteShareStatePartition { partition })
                    .into_iter()
                    .map(|(topic_id, partitions)| DeleteShareStateTopic {
                        topic_id,
                        partitions,
                    })
                    .collect(),
            });
            match self.remote.send(node, &addr, request) {
                Ok(reply) => pending.remote.push((keys, reply)),
                Err(e) => {
                    tracing::warn!(error = %e, "share state not deleted");
                    return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE);
                }
            }
        }
        Ok(pending)
    }

    /// Replaces the state of `key` by a fresh start at `offset` wherever it is owned
    /// (AlterShareGroupOffsets): here with [`Self::reset`]; at a remote owner, by reading its
    /// state epoch (ReadShareGroupStateSummary) and initializing the state in the next one
    /// (InitializeShareGroupState, which replaces state of an older epoch), so leaders that
    /// loaded the old state are fenced. Blocking (it may wait for another broker).
    pub fn reset_state(
        &self,
        key: &ShareKey,
        offset: i64,
        now_ms: i64,
    ) -> Result<Pending, PersistError> {
        use weir_protocol::requests::{
            InitializeShareGroupStateRequest, InitializeShareStatePartition,
            InitializeShareStateTopic, ReadShareGroupStateSummaryRequest, ReadShareStatePartition,
            ReadShareStateTopic,
        };
        let (node, addr) = match self.owner_of(key) {
            persister::Owner::Local => {
                return self.reset(key, offset, now_ms).map_err(|e| match e {
                    ShareStateError::GroupLimit(_) => {
                        weir_protocol::ErrorCode::GROUP_MAX_SIZE_REACHED
                    }
                    ShareStateError::Store(_) => weir_protocol::ErrorCode::KAFKA_STORAGE_ERROR,
                })
            }
            persister::Owner::Unknown => {
                return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)
            }
            persister::Owner::Remote { node, addr } => (node, addr),
        };
        let summary = Request::ReadShareGroupStateSummary(ReadShareGroupStateSummaryRequest {
            group_id: key.0.clone(),
            topics: vec![ReadShareStateTopic {
                topic_id: key.1,
                partitions: vec![ReadShareStatePartition {
                    partition: key.2,
                    leader_epoch: -1,
                }],
            }],
        });
        let Response::ReadShareGroupStateSummary(r) =
            self.call_owner(node, &addr, summary, "read")?
        else {
            return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE);
        };
        let found = r
            .results
            .into_iter()
            .flat_map(|t| t.partitions)
            .next()
            .ok_or(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
        if found.error_code != weir_protocol::ErrorCode::NONE {
            return Err(found.error_code);
        }
        let state_epoch = if found.start_offset < 0 {
            0
        } else {
            found.state_epoch.saturating_add(1)
        };
        let request = Request::InitializeShareGroupState(InitializeShareGroupStateRequest {
            group_id: key.0.clone(),
            topics: vec![InitializeShareStateTopic {
                topic_id: key.1,
                partitions: vec![InitializeShareStatePartition {
                    partition: key.2,
                    state_epoch,
                    start_offset: offset,
                }],
            }],
        });
        self.drop_loaded(key);
        let mut pending = Pending::default();
        match self.remote.send(node, &addr, request) {
            Ok(reply) => pending.remote.push((vec![key.clone()], reply)),
            Err(e) => {
                tracing::warn!(error = %e, "share state not initialized");
                return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE);
            }
        }
        Ok(pending)
    }

    /// Deletes an empty share group (group coordinator side) with its state, wherever it is
    /// owned (as Kafka's group coordinator deletes it through the persister): the state owned
    /// here with the group's tombstone in the share state log; of `elsewhere` (the
    /// share-partitions the group may have state for, called only if some state is owned by
    /// another broker) those owned by another broker with DeleteShareGroupState. `Err` with
    /// Kafka's code otherwise (COORDINATOR_NOT_AVAILABLE, nothing deleted, if such an owner is
    /// not known now). Blocking: the group's tombstone is durable in `__consumer_offsets` on
    /// return; the state's deletion is in the returned [`Pending`].
    pub fn delete_group(
        &self,
        group: &str,
        offsets: &OffsetStore,
        now_ms: i64,
        elsewhere: impl FnOnce() -> Vec<ShareKey>,
    ) -> Result<Pending, weir_protocol::ErrorCode> {
        let remote: Vec<ShareKey> = if self.owns_every_state_partition() {
            Vec::new()
        } else {
            elsewhere()
                .into_iter()
                .filter(|k| self.owner_of(k) != persister::Owner::Local)
                .collect()
        };
        if remote
            .iter()
            .any(|k| self.owner_of(k) == persister::Owner::Unknown)
        {
            return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        let write = {
            let mut groups = self.groups.lock();
            groups.delete(group)?;
            Self::persist_groups(&mut groups, offsets, now_ms)
        };
        write
            .and_then(|w| offsets.wait_group_records(w, now_ms))
            .map_err(|e| {
                tracing::warn!(group, error = %e, "share group deletion not written");
                weir_protocol::ErrorCode::KAFKA_STORAGE_ERROR
            })?;
        self.sessions.lock().remove_group(group);
        self.partitions.lock().retain(|k, _| k.0 != group);
        let mut pending = Pending::default();
        for (_, op) in self.state.all() {
            op.owned.lock().retain(|k, _| k.0 != group);
            // The group's tombstone in each state partition led here drops its state and
            // intents there at replay too.
            op.intents.lock().retain(|k, _| k.0 != group);
            match op.log.append(
                &[(StateKey::Group(group.to_string()).encode(), None)],
                now_ms,
            ) {
                Ok(p) => pending.push(p),
                Err(_) => return Err(weir_protocol::ErrorCode::KAFKA_STORAGE_ERROR),
            }
        }
        pending.extend(self.delete_state(&remote, now_ms)?);
        Ok(pending)
    }

    /// Bounds the logs of the state partitions led here: where it is due, appends a snapshot of
    /// every key and deletes what came before. Blocking.
    pub fn compact_if_due(&self, now_ms: i64) -> Result<(), OffsetError> {
        for (_, op) in self.state.all() {
            self.compact_partition_if_due(&op, now_ms)?;
        }
        Ok(())
    }

    fn compact_partition_if_due(
        &self,
        op: &OwnedPartition,
        now_ms: i64,
    ) -> Result<(), OffsetError> {
        let live = op.owned.lock().len() + op.intents.lock().len();
        let Some(cut) = op.log.compaction_cut(live) else {
            return Ok(());
        };
        let mut pending = Pending::default();
        {
            // The lock order is owned, then intents.
            let owned = op.owned.lock();
            let intents = op.intents.lock();
            let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = intents
                .iter()
                .map(|(k, i)| (intent_key(k), Some(encode_intent_value(i))))
                .chain(
                    owned
                        .iter()
                        .map(|(k, o)| partition_snapshot_record(k, &o.persisted)),
                )
                .collect();
            for chunk in records.chunks(256) {
                pending.push(op.log.append(chunk, now_ms)?);
            }
        }
        self.wait(pending)?;
        op.log.delete_before(cut)?;
        Ok(())
    }

    /// The start offsets and completed counts of `keys` (share-partitions of `group`) wherever
    /// their state is owned (DescribeShareGroupOffsets): here from the owned state, at each
    /// remote owner through one ReadShareGroupStateSummary, as Kafka's group coordinator asks its
    /// persister. Share-partitions without state are absent. Blocking (it may wait for other
    /// brokers).
    pub fn summaries_of(
        &self,
        group: &str,
        keys: &[ShareKey],
    ) -> Result<BTreeMap<([u8; 16], i32), Progress>, PersistError> {
        use weir_protocol::requests::{
            ReadShareGroupStateSummaryRequest, ReadShareStatePartition, ReadShareStateTopic,
        };
        let mut out = BTreeMap::new();
        let mut remote: BTreeMap<(i32, String), Vec<ShareKey>> = BTreeMap::new();
        for key in keys {
            match self.owner_of(key) {
                persister::Owner::Local => {
                    if let Some(summary) = self.owner_summary(key) {
                        out.insert(
                            (key.1, key.2),
                            Progress {
                                start_offset: summary.start_offset,
                                delivery_complete_count: Some(summary.delivery_complete_count),
                                parked: summary.parked,
                            },
                        );
                    }
                }
                persister::Owner::Remote { node, addr } => {
                    remote.entry((node, addr)).or_default().push(key.clone());
                }
                persister::Owner::Unknown => {
                    return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)
                }
            }
        }
        for ((node, addr), keys) in remote {
            let partitions = by_topic(&keys, |partition| ReadShareStatePartition {
                partition,
                leader_epoch: -1,
            });
            let request = Request::ReadShareGroupStateSummary(ReadShareGroupStateSummaryRequest {
                group_id: group.to_string(),
                topics: partitions
                    .into_iter()
                    .map(|(topic_id, partitions)| ReadShareStateTopic {
                        topic_id,
                        partitions,
                    })
                    .collect(),
            });
            let Response::ReadShareGroupStateSummary(r) =
                self.call_owner(node, &addr, request, "read")?
            else {
                return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE);
            };
            for t in r.results {
                for p in t.partitions {
                    if p.error_code == weir_protocol::ErrorCode::NONE && p.start_offset >= 0 {
                        // -1: an owner that does not count (ReadShareGroupStateSummary v0).
                        let complete = (p.delivery_complete_count >= 0)
                            .then_some(i64::from(p.delivery_complete_count));
                        out.insert(
                            (t.topic_id, p.partition),
                            Progress {
                                start_offset: p.start_offset,
                                delivery_complete_count: complete,
                                parked: persister::parked_from_wire(&p.weir),
                            },
                        );
                    }
                }
            }
        }
        Ok(out)
    }

    /// The keys of `group`'s owned state.
    pub fn owned_keys(&self, group: &str) -> Vec<ShareKey> {
        self.owned_keys_where(|k| k.0 == group)
    }

    /// The keys of the state owned here that `keep` keeps.
    fn owned_keys_where(&self, keep: impl Fn(&ShareKey) -> bool) -> Vec<ShareKey> {
        let mut out = Vec::new();
        for (_, op) in self.state.all() {
            out.extend(op.owned.lock().keys().filter(|k| keep(k)).cloned());
        }
        out
    }

    // -----------------------------------------------------------------------------------------
    // Leader side
    // -----------------------------------------------------------------------------------------

    /// The share-partition of `key` if it is loaded under `leader_epoch`. One loaded under
    /// another epoch is dropped: leadership moved away and back, and the leaders in between
    /// may have changed the durable state.
    pub fn loaded(&self, key: &ShareKey, leader_epoch: i32) -> Option<SharedPartition> {
        let mut partitions = self.partitions.lock();
        let sp = partitions.get(key)?.clone();
        drop(partitions);
        if sp.lock().epochs().leader_epoch == leader_epoch {
            return Some(sp);
        }
        partitions = self.partitions.lock();
        if partitions.get(key).is_some_and(|p| Arc::ptr_eq(p, &sp)) {
            partitions.remove(key);
        }
        None
    }

    /// The loaded share-partition of `key`, whatever its epoch (tests, the admin views).
    pub fn partition(&self, key: &ShareKey) -> Option<SharedPartition> {
        self.partitions.lock().get(key).cloned()
    }

    /// Drops a loaded share-partition (its leadership moved, or its state could not be
    /// written): the next fetch loads it from the owner again.
    pub fn drop_loaded(&self, key: &ShareKey) {
        self.partitions.lock().remove(key);
    }

    /// Drops the loaded share-partition of `key` if no record of it is acquired and every
    /// change is written: the next fetch loads it from the owner again. Called when a member
    /// opens a share session, so that a leader picks up state its group coordinator deleted or
    /// replaced at the owner (DeleteGroups, AlterShareGroupOffsets, DeleteShareGroupOffsets
    /// from another broker) before handing out records. Only the retry backoff waits, held in
    /// memory, are lost (as at a restart).
    pub fn drop_if_idle(&self, key: &ShareKey) {
        let Some(sp) = self.partition(key) else {
            return;
        };
        let p = sp.lock();
        if p.acquired_count() == 0 && !p.has_update() {
            // The share-partition's lock is held while the map is taken (the module's lock
            // order): nothing acquires from it meanwhile.
            let mut partitions = self.partitions.lock();
            if partitions.get(key).is_some_and(|q| Arc::ptr_eq(q, &sp)) {
                partitions.remove(key);
            }
        }
    }

    /// Drops every loaded share-partition whose data partition this broker no longer leads at
    /// the epoch it was loaded under (`leader_epoch` gives the current one, `None` if not
    /// leader). Returns how many were dropped.
    pub fn drop_unled(&self, leader_epoch: impl Fn(&ShareKey) -> Option<i32>) -> usize {
        let stale: Vec<ShareKey> = self
            .all_partitions()
            .into_iter()
            .filter(|(k, sp)| leader_epoch(k) != Some(sp.lock().epochs().leader_epoch))
            .map(|(k, _)| k)
            .collect();
        let mut partitions = self.partitions.lock();
        for k in &stale {
            partitions.remove(k);
        }
        stale.len()
    }

    /// Loads the share-partition of `key` for this broker leading its data partition at
    /// `leader_epoch`: its durable state from the owner, created at `start_offset()` if it has
    /// none. Blocking (it may wait for another broker).
    pub fn load_partition(
        &self,
        key: &ShareKey,
        leader_epoch: i32,
        settings: &ShareSettings,
        start_offset: impl FnOnce() -> i64,
        now_ms: i64,
    ) -> Result<SharedPartition, PersistError> {
        if let Some(sp) = self.loaded(key, leader_epoch) {
            return Ok(sp);
        }
        if self.partitions.lock().len() >= MAX_SHARE_PARTITIONS {
            return Err(weir_protocol::ErrorCode::GROUP_MAX_SIZE_REACHED);
        }
        let read = match self.read_state(key, leader_epoch)? {
            Some(found) => found,
            None => {
                self.initialize_state(key, start_offset(), now_ms)?;
                self.read_state(key, leader_epoch)?
                    .ok_or(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)?
            }
        };
        let mut sp = SharePartition::restore(&read.persisted, settings.clone());
        sp.set_epochs(partition::LoadEpochs {
            leader_epoch,
            state_epoch: read.state_epoch,
        });
        sp.set_dead_letter_intent(read.intent);
        let mut partitions = self.partitions.lock();
        // Another fetch may have loaded it meanwhile: one state per share-partition.
        let shared = partitions
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Mutex::new(sp)))
            .clone();
        Ok(shared)
    }

    /// Sends `request` to the owner at `node` and waits for its answer. Blocking. A failure
    /// (the owner moved, died, or the queue is full) is logged as the state not being `what`
    /// and answered COORDINATOR_NOT_AVAILABLE.
    fn call_owner(
        &self,
        node: i32,
        addr: &str,
        request: Request,
        what: &str,
    ) -> Result<Response, PersistError> {
        self.remote
            .send(node, addr, request)
            .and_then(persister::wait_reply)
            .map_err(|e| {
                tracing::warn!(error = %e, "share state not {what}");
                weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE
            })
    }

    fn read_state(
        &self,
        key: &ShareKey,
        leader_epoch: i32,
    ) -> Result<Option<ReadState>, PersistError> {
        use weir_protocol::requests::{
            ReadShareGroupStateRequest, ReadShareStatePartition, ReadShareStateTopic,
        };
        match self.owner_of(key) {
            persister::Owner::Local => self.owner_read(key, leader_epoch),
            persister::Owner::Unknown => Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE),
            persister::Owner::Remote { node, addr } => {
                let request = Request::ReadShareGroupState(ReadShareGroupStateRequest {
                    group_id: key.0.clone(),
                    topics: vec![ReadShareStateTopic {
                        topic_id: key.1,
                        partitions: vec![ReadShareStatePartition {
                            partition: key.2,
                            leader_epoch,
                        }],
                    }],
                });
                let response = self.call_owner(node, &addr, request, "read")?;
                let Response::ReadShareGroupState(r) = response else {
                    return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE);
                };
                let p = r
                    .results
                    .into_iter()
                    .flat_map(|t| t.partitions)
                    .next()
                    .ok_or(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
                if p.error_code != weir_protocol::ErrorCode::NONE {
                    return Err(p.error_code);
                }
                if p.start_offset < 0 {
                    return Ok(None);
                }
                let batches = persister::from_wire(&p.state_batches)
                    .ok_or(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
                let intent = match persister::intent_from_wire(&p.weir) {
                    Some(IntentChange::Set(i)) => Some(i),
                    Some(IntentChange::Keep | IntentChange::Clear) => None,
                    None => return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE),
                };
                Ok(Some(ReadState {
                    persisted: PersistedPartition {
                        start_offset: p.start_offset,
                        batches,
                    },
                    state_epoch: p.state_epoch,
                    intent,
                }))
            }
        }
    }

    fn initialize_state(
        &self,
        key: &ShareKey,
        start_offset: i64,
        now_ms: i64,
    ) -> Result<(), PersistError> {
        use weir_protocol::requests::{
            InitializeShareGroupStateRequest, InitializeShareStatePartition,
            InitializeShareStateTopic,
        };
        match self.owner_of(key) {
            persister::Owner::Local => {
                let mut pending = Pending::default();
                pending.push(self.owner_initialize(key, start_offset, 0, now_ms)?);
                self.wait(pending)
                    .map_err(|_| weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)
            }
            persister::Owner::Unknown => Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE),
            persister::Owner::Remote { node, addr } => {
                let request =
                    Request::InitializeShareGroupState(InitializeShareGroupStateRequest {
                        group_id: key.0.clone(),
                        topics: vec![InitializeShareStateTopic {
                            topic_id: key.1,
                            partitions: vec![InitializeShareStatePartition {
                                partition: key.2,
                                state_epoch: 0,
                                start_offset,
                            }],
                        }],
                    });
                let response = self.call_owner(node, &addr, request, "initialized")?;
                all_results_ok(&response)
            }
        }
    }

    /// Every loaded share-partition of `group`.
    pub fn group_partitions(&self, group: &str) -> Vec<(ShareKey, SharedPartition)> {
        self.partitions
            .lock()
            .iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    /// Every loaded share-partition.
    pub fn all_partitions(&self) -> Vec<(ShareKey, SharedPartition)> {
        self.partitions
            .lock()
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    /// Writes what changed in one loaded share-partition to the owner of its state (call with
    /// its lock held, so writes leave in the order the changes were made). On failure the
    /// share-partition is dropped: the next fetch loads what the owner has.
    pub fn persist(
        &self,
        key: &ShareKey,
        sp: &mut SharePartition,
        now_ms: i64,
    ) -> Result<Pending, PersistError> {
        self.persist_with(key, sp, IntentChange::Keep, now_ms)
    }

    /// [`Self::persist`], with a change to the share-partition's dead-letter intent written in
    /// the same append (`dlq`).
    pub fn persist_with(
        &self,
        key: &ShareKey,
        sp: &mut SharePartition,
        intent: IntentChange,
        now_ms: i64,
    ) -> Result<Pending, PersistError> {
        use weir_protocol::requests::{
            WriteShareGroupStateRequest, WriteShareStatePartition, WriteShareStateTopic,
        };
        let mut pending = Pending::default();
        let update = match sp.take_update() {
            Some(update) => update,
            None if intent == IntentChange::Keep => return Ok(pending),
            None => PersistedPartition {
                start_offset: sp.start_offset(),
                batches: Vec::new(),
            },
        };
        let epochs = sp.epochs();
        let result = match self.owner_of(key) {
            persister::Owner::Local => self
                .owner_write(key, epochs, &update, &intent, now_ms)
                .map(|p| pending.push_for(key, p)),
            persister::Owner::Unknown => Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE),
            persister::Owner::Remote { node, addr } => {
                let request = Request::WriteShareGroupState(WriteShareGroupStateRequest {
                    group_id: key.0.clone(),
                    topics: vec![WriteShareStateTopic {
                        topic_id: key.1,
                        partitions: vec![WriteShareStatePartition {
                            partition: key.2,
                            state_epoch: epochs.state_epoch,
                            leader_epoch: epochs.leader_epoch,
                            start_offset: update.start_offset,
                            state_batches: persister::to_wire(&update.batches),
                            weir: persister::intent_to_wire(&intent),
                        }],
                    }],
                });
                match self.remote.send(node, &addr, request) {
                    Ok(reply) => {
                        pending.remote.push((vec![key.clone()], reply));
                        Ok(())
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "share state not written");
                        Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE)
                    }
                }
            }
        };
        if let Err(code) = result {
            // Never taken under the map's lock elsewhere (see the module's lock order).
            self.partitions.lock().remove(key);
            return Err(code);
        }
        match intent {
            IntentChange::Keep => {}
            IntentChange::Set(i) => sp.set_dead_letter_intent(Some(i)),
            IntentChange::Clear => sp.set_dead_letter_intent(None),
        }
        Ok(pending)
    }

    /// Waits until `pending` is durable and, in a cluster, committed by the share state
    /// partition's replicas. Blocking. A write of a share-partition's state that failed drops
    /// that share-partition (it is loaded again from the owner).
    pub fn wait(&self, pending: Pending) -> Result<(), OffsetError> {
        let mut result = Ok(());
        for (keys, p) in pending.appends {
            if let Err(e) = p.wait() {
                tracing::warn!(error = %e, "share state not written");
                for key in &keys {
                    self.drop_loaded(key);
                }
                result = Err(e);
            }
        }
        for (keys, reply) in pending.remote {
            let code = persister::wait_reply(reply)
                .map_err(|e| {
                    tracing::warn!(error = %e, "share state not written");
                })
                .and_then(|r| all_results_ok(&r).map_err(|_| ()));
            if code.is_err() {
                for key in &keys {
                    self.drop_loaded(key);
                }
                result = Err(OffsetError::NotCoordinator(
                    crate::partition::ReplicaError::NotLeader,
                ));
            }
        }
        result
    }

    /// Members that left or timed out: their records in the share-partitions loaded here are
    /// available again at once, their sessions here gone. (Records they hold at other leaders
    /// come back when their locks run out, as in Kafka.)
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
                        Ok(p) => pending.extend(p),
                        Err(e) => tracing::warn!(error = ?e, "share state not persisted"),
                    }
                }
            }
        }
        self.available.notify_waiters();
        pending
    }

    /// Group timers (group coordinator side): member sessions. Blocking: the epochs are
    /// durable on return; returns what else to wait for.
    pub fn tick_groups(&self, offsets: &OffsetStore, now_ms: i64) -> Pending {
        let (departed, write) = {
            let mut groups = self.groups.lock();
            let departed = groups.tick(now_ms);
            (departed, Self::persist_groups(&mut groups, offsets, now_ms))
        };
        if let Err(e) = write.and_then(|w| offsets.wait_group_records(w, now_ms)) {
            tracing::warn!(error = %e, "share group epochs not persisted");
        }
        self.release_departed(&departed, now_ms)
    }

    /// Timers of the loaded share-partitions (leader side): record locks, due records.
    pub fn tick(&self, now_ms: i64) -> Pending {
        let mut pending = Pending::default();
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
                    Ok(p) => pending.extend(p),
                    Err(e) => tracing::warn!(error = ?e, "share state not persisted"),
                }
            }
        }
        if woke {
            self.available.notify_waiters();
        }
        pending
    }
}

/// The first error of an Initialize/Write/Delete answer, if one partition has one (an answer
/// with no partition is an error too).
fn all_results_ok(response: &Response) -> Result<(), PersistError> {
    let results = match response {
        Response::InitializeShareGroupState(r) => &r.results,
        Response::WriteShareGroupState(r) => &r.results,
        Response::DeleteShareGroupState(r) => &r.results,
        _ => return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE),
    };
    let mut partitions = results.iter().flat_map(|t| t.partitions.iter()).peekable();
    if partitions.peek().is_none() {
        return Err(weir_protocol::ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    match partitions.find(|p| p.error_code != weir_protocol::ErrorCode::NONE) {
        Some(p) => Err(p.error_code),
        None => Ok(()),
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
        let mut c = ShareCoordinator::new(ShareDefaults::default());
        c.set_compact_after_records(50);
        let topic = store::open_topic(&topics, STATE_PARTITIONS).expect("state topic");
        for p in topic.local_partitions() {
            c.load_state_partition(p.index, p.clone(), STATE_PARTITIONS, |_| true)
                .expect("replayed");
        }
        (topics, c)
    }

    /// Several state partitions, so that keys spread over them.
    const STATE_PARTITIONS: i32 = 4;

    /// The log holding `key`'s state.
    fn state_log(c: &ShareCoordinator, key: &ShareKey) -> Arc<crate::partition::Partition> {
        c.owned_here(key).expect("owned").log.partition().clone()
    }

    #[test]
    fn state_survives_reopen_and_the_log_is_compacted_into_snapshots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key: ShareKey = ("g".into(), [9; 16], 0);
        let member: partition::MemberId = Arc::from("m");
        {
            let (_topics, c) = open(dir.path());
            let settings = ShareSettings::default();
            let sp = c.load_partition(&key, 0, &settings, || 0, 0).expect("init");
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
                c.wait(pending).expect("durable");
                c.compact_if_due(0).expect("compaction");
            }
            let partition = state_log(&c, &key);
            let log = &partition.log;
            assert!(log.log_start_offset() > 0, "history was never dropped");
            assert!(
                log.log_end_offset() - log.log_start_offset() <= 60,
                "the log holds {} records after compaction with threshold 50",
                log.log_end_offset() - log.log_start_offset()
            );
        }
        let (_topics, c) = open(dir.path());
        assert!(
            c.partition(&key).is_none(),
            "loaded on first fetch, not at start"
        );
        let sp = c
            .load_partition(&key, 0, &ShareSettings::default(), || 12_345, 0)
            .expect("restored");
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

    fn accept_one(c: &ShareCoordinator, key: &ShareKey, sp: &SharedPartition, offset: i64) {
        let member: partition::MemberId = Arc::from("m");
        let mut p = sp.lock();
        let got = p.acquire(&member, &[(offset, offset)], 1, 0, |_| Disposition::Deliver);
        assert_eq!(got.len(), 1, "offset {offset} acquired");
        p.acknowledge(
            &member,
            &[AckBatch {
                first_offset: offset,
                last_offset: offset,
                types: vec![AckType::Accept],
            }],
            0,
        )
        .expect("ack");
        let pending = c.persist(key, &mut p, 0).expect("written");
        drop(p);
        c.wait(pending).expect("durable");
    }

    #[test]
    fn a_new_leader_loads_what_the_old_one_wrote_and_the_old_one_is_fenced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_topics, c) = open(dir.path());
        let key: ShareKey = ("g".into(), [7; 16], 0);
        let settings = ShareSettings::default();
        // The leader at epoch 3 accepts offsets 0 and 1.
        let old = c.load_partition(&key, 3, &settings, || 0, 0).expect("load");
        accept_one(&c, &key, &old, 0);
        accept_one(&c, &key, &old, 1);
        assert_eq!(c.owner_summary(&key).map(|s| s.start_offset), Some(2));
        // Leadership moved (epoch 4): the state loaded at epoch 3 is dropped, not reused.
        assert!(
            c.loaded(&key, 4).is_none(),
            "state of another epoch is dropped"
        );
        assert!(c.partition(&key).is_none());
        let new = c
            .load_partition(&key, 4, &settings, || 0, 0)
            .expect("reload");
        assert_eq!(
            new.lock().start_offset(),
            2,
            "the new leader starts after the accepted"
        );
        // The deposed leader's write is refused by the owner: it cannot undo the new one's.
        let stale = PersistedPartition {
            start_offset: 0,
            batches: Vec::new(),
        };
        assert_eq!(
            c.owner_write(
                &key,
                partition::LoadEpochs {
                    state_epoch: 0,
                    leader_epoch: 3
                },
                &stale,
                &IntentChange::Keep,
                0
            )
            .err(),
            Some(weir_protocol::ErrorCode::FENCED_LEADER_EPOCH)
        );
        assert_eq!(
            c.owner_read(&key, 3).err(),
            Some(weir_protocol::ErrorCode::FENCED_LEADER_EPOCH)
        );
        accept_one(&c, &key, &new, 2);
        assert_eq!(
            c.owner_summary(&key)
                .map(|s| (s.start_offset, s.leader_epoch)),
            Some((3, 4))
        );
    }

    #[test]
    fn leaders_drop_the_share_partitions_they_no_longer_lead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_topics, c) = open(dir.path());
        let settings = ShareSettings::default();
        let led: ShareKey = ("g".into(), [1; 16], 0);
        let moved: ShareKey = ("g".into(), [1; 16], 1);
        let lost: ShareKey = ("g".into(), [1; 16], 2);
        for k in [&led, &moved, &lost] {
            c.load_partition(k, 5, &settings, || 0, 0).expect("load");
        }
        let dropped = c.drop_unled(|k| match k.2 {
            0 => Some(5),
            1 => Some(6),
            _ => None,
        });
        assert_eq!(dropped, 2);
        assert!(c.partition(&led).is_some());
        assert!(
            c.partition(&moved).is_none(),
            "led again at a newer epoch: reloaded"
        );
        assert!(c.partition(&lost).is_none(), "not led any more");
    }

    #[test]
    fn an_altered_state_fences_the_leader_that_loaded_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_topics, c) = open(dir.path());
        let key: ShareKey = ("g".into(), [2; 16], 0);
        let sp = c
            .load_partition(&key, 1, &ShareSettings::default(), || 0, 0)
            .expect("load");
        let pending = c.reset(&key, 10, 0).expect("reset");
        c.wait(pending).expect("durable");
        let member: partition::MemberId = Arc::from("m");
        let mut p = sp.lock();
        p.acquire(&member, &[(0, 0)], 1, 0, |_| Disposition::Deliver);
        p.acknowledge(
            &member,
            &[AckBatch {
                first_offset: 0,
                last_offset: 0,
                types: vec![AckType::Accept],
            }],
            0,
        )
        .expect("ack");
        assert_eq!(
            c.persist(&key, &mut p, 0).err(),
            Some(weir_protocol::ErrorCode::FENCED_STATE_EPOCH)
        );
        drop(p);
        let again = c
            .load_partition(&key, 1, &ShareSettings::default(), || 0, 0)
            .expect("reload");
        assert_eq!(again.lock().start_offset(), 10);
    }

    #[test]
    fn coordinator_keys_are_read_as_kafka_reads_them() {
        let key: ShareKey = ("orders".into(), [7; 16], 12);
        assert_eq!(parse_coordinator_key(&coordinator_key(&key)), Some(key));
        assert_eq!(
            parse_coordinator_key(" g :AAAAAAAAAAAAAAAAAAAAAQ:-1"),
            Some((
                "g".into(),
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                -1
            ))
        );
        for bad in [
            "",
            "g",
            "g:AAAAAAAAAAAAAAAAAAAAAQ",
            " :AAAAAAAAAAAAAAAAAAAAAQ:1",
            "g:AAAAAAAAAAAAAAAAAAAAAQ:1:2",
            "g:AAAAAAAAAAAAAAAAAAAAAQ:x",
            "g:AAAAAAAAAAAAAAAAAAAAAQ:",
            "g:not-a-uuid:1",
            "g:AAAAAAAAAAAAAAAAAAAA:1",
        ] {
            assert_eq!(parse_coordinator_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_spread_over_the_state_partitions_and_each_is_owned_by_its_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (topics, c) = open(dir.path());
        let settings = ShareSettings::default();
        let keys: Vec<ShareKey> = (0..16).map(|p| ("g".to_string(), [3; 16], p)).collect();
        let index_of = |k: &ShareKey| {
            crate::internal_partitions::partition_for(&coordinator_key(k), STATE_PARTITIONS)
        };
        let used: std::collections::BTreeSet<i32> = keys.iter().map(index_of).collect();
        assert!(used.len() > 1, "16 keys all hashed to one of 4 partitions");
        for k in &keys {
            let sp = c.load_partition(k, 0, &settings, || 0, 0).expect("load");
            accept_one(&c, k, &sp, 0);
            assert_eq!(
                state_log(&c, k).index,
                index_of(k),
                "{k:?} is written to the partition its key hashes to"
            );
        }
        // Another broker leads one of the used partitions now: its keys are owned there, the
        // others still here; a partition nobody is known to lead has no owner.
        let gone = *used.iter().next().expect("a used partition");
        c.unload_state_partition(gone);
        let security =
            crate::cluster::peer::PeerSecurity::plaintext(Arc::new(crate::metrics::Metrics::new()));
        let owners = BTreeMap::from([(gone, (7, "b7:9092".to_string()))]);
        c.set_remote_owners(0, &security, STATE_PARTITIONS, owners);
        for k in &keys {
            let expected = match index_of(k) {
                i if i == gone => persister::Owner::Remote {
                    node: 7,
                    addr: "b7:9092".to_string(),
                },
                _ => persister::Owner::Local,
            };
            assert_eq!(c.owner_of(k), expected, "{k:?}");
            assert_eq!(c.owns_state(k), index_of(k) != gone);
        }
        c.set_remote_owners(0, &security, STATE_PARTITIONS, BTreeMap::new());
        let moved = keys
            .iter()
            .find(|k| index_of(k) == gone)
            .expect("a moved key");
        assert_eq!(c.owner_of(moved), persister::Owner::Unknown);
        assert_eq!(
            c.owner_read(moved, 0).err(),
            Some(weir_protocol::ErrorCode::NOT_COORDINATOR),
            "a broker that does not lead the key's partition refuses to serve it"
        );
        // Leading it again replays that partition's log alone: the state is all there.
        let replica = topics
            .partition(SHARE_STATE_TOPIC, gone)
            .expect("state partition");
        c.load_state_partition(gone, replica, STATE_PARTITIONS, |_| true)
            .expect("replayed");
        for k in &keys {
            assert_eq!(c.owner_summary(k).map(|s| s.start_offset), Some(1), "{k:?}");
        }
        // Deleted state is deleted in each key's own partition, across a restart.
        let (deleted, left) = keys.split_at(10);
        let pending = c.remove_partitions(deleted, 0);
        c.wait(pending).expect("tombstones durable");
        drop((topics, c));
        let (_topics, c) = open(dir.path());
        for k in deleted {
            assert_eq!(c.owner_summary(k), None, "{k:?} was deleted");
        }
        for k in left {
            assert_eq!(
                c.owner_summary(k).map(|s| s.start_offset),
                Some(1),
                "{k:?} was kept"
            );
        }
    }

    #[test]
    fn lag_is_what_the_high_watermark_has_beyond_the_completed_offsets() {
        let at = Progress {
            start_offset: 5,
            delivery_complete_count: Some(3),
            parked: 0,
        };
        assert_eq!(at.lag(Some(20)), 12);
        assert_eq!(at.lag(Some(5)), 0, "never negative");
        let delayed = Progress { parked: 2, ..at };
        assert_eq!(delayed.lag(Some(20)), 14, "parked delayed records wait too");
        assert_eq!(at.lag(None), -1, "no high watermark here");
        let unknown = Progress {
            delivery_complete_count: None,
            ..at
        };
        assert_eq!(unknown.lag(Some(20)), -1, "an owner that does not count");
    }
}
