//! One replica of one partition hosted by this broker: its log, its idempotent-producer state and
//! its Raft replica (`weir_replication::Replica`), and the glue between the three.
//!
//! Everything that changes the log goes through here so that the Raft replica's view of the log
//! (where it ends, which epochs it holds, how far it is durable) never drifts from the log itself:
//! leader appends ([`Partition::append`]), follower appends and truncations
//! ([`Partition::apply_fetched`]), control batches the replica asks for, durability
//! ([`Partition::note_durable`]). The replica's outputs are executed under the same lock, in order:
//! its election state is persisted before any message it sends, and role changes and the high
//! watermark are published to readers through atomics.
//!
//! Lock order: `producers`, then `raft`, then the log's own locks. Owns no sockets: messages to
//! other brokers and role changes go to the [`RaftIo`] it was opened with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use weir_replication::{
    BatchMeta, Bootstrap, Config as RaftConfig, ElectionState, EpochCache, FetchAnswer,
    FetchOutcome, FetchRequest, FetchResponse, FollowerAction, Message, NodeId, Output, Replica,
    Role,
};
use weir_storage::batch::{BatchHeader, IntoValidated, ValidatedBatches};
use weir_storage::records::{
    decode_control_batch, encode_control_batch, encode_txn_marker, TxnMarker,
};
use weir_storage::{AppendOptions, Durability, Log, Offset, PendingAppend, StorageError};

use crate::producers::ProducerState;

/// Control record types Weir writes into partition logs (Kafka consumers skip control batches;
/// Kafka's own types are 0..=6). The values are small JSON documents.
pub const CONTROL_LEADER_CHANGE: i16 = 0x5701;
pub const CONTROL_VOTERS: i16 = 0x5702;

/// Files kept beside the log (see `Log::write_side_file`).
const QUORUM_STATE_FILE: &str = "quorum-state";
const VOTERS_FILE: &str = "voters";

/// Why an append or a wait for replication failed, in Kafka's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaError {
    /// This replica does not lead the partition (NOT_LEADER_OR_FOLLOWER).
    NotLeader,
    /// The request named an older leader epoch (FENCED_LEADER_EPOCH).
    FencedEpoch,
    /// The request named a newer leader epoch (UNKNOWN_LEADER_EPOCH).
    UnknownEpoch,
}

/// Why [`Partition::wait_committed_blocking`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommitWaitError {
    /// The leadership that appended ended: the records may be truncated.
    #[error("the leadership that appended ended before the records were committed")]
    NotLeader,
    /// A majority of the replicas did not acknowledge the records in time.
    #[error("not committed by a majority of the replicas within {timeout_ms} ms")]
    TimedOut { timeout_ms: u64 },
}

/// What the rest of the broker must do for a partition's replica: send its messages to other
/// brokers and learn about role changes. The single-node broker has no peers.
pub trait RaftIo: Send + Sync {
    fn send(&self, to: NodeId, topic: &str, partition: i32, message: Message);
    /// Role, epoch or leader changed. Must not call back into the partition synchronously.
    fn role_changed(
        &self,
        topic: &str,
        partition: i32,
        role: Role,
        epoch: i32,
        leader: Option<NodeId>,
    );
    fn now_ms(&self) -> u64;
}

/// How a replica is set up: who this broker is, the voters and replicas from the metadata,
/// timings.
#[derive(Debug, Clone)]
pub struct ReplicaSetup {
    pub node_id: NodeId,
    /// Voters when the log has no voter record yet: the replica set the partition was created with.
    pub initial_voters: BTreeSet<NodeId>,
    /// The replica set the metadata assigns now (the target of reassignments).
    pub target_replicas: BTreeSet<NodeId>,
    pub election_timeout_ms: u64,
    pub election_jitter_ms: u64,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct QuorumStateFile {
    epoch: i32,
    voted_for: Option<NodeId>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VotersFile {
    initial: Vec<NodeId>,
    records: Vec<(Offset, Vec<NodeId>)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VotersValue {
    voters: Vec<NodeId>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LeaderChangeValue {
    leader: NodeId,
    epoch: i32,
}

type Waiter = oneshot::Sender<Result<(), ReplicaError>>;

/// A partition replica hosted here. See the module docs.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub log: Arc<Log>,
    /// Held across the sequence check and the offset assignment of an append.
    pub producers: Mutex<ProducerState>,
    raft: Mutex<Replica>,
    io: Arc<dyn RaftIo>,
    high_watermark: AtomicI64,
    /// The epoch in which this replica takes writes, -1 when it does not.
    append_epoch: AtomicI32,
    epoch: AtomicI32,
    /// The leader as this replica knows it, -1 when unknown.
    leader: AtomicI32,
    /// acks=all appends waiting for the high watermark to pass their last offset, keyed by the
    /// offset the high watermark must exceed.
    waiters: Mutex<BTreeMap<Offset, Vec<Waiter>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("replication state of {log}: {reason}")]
    State { log: String, reason: String },
}

fn metas(headers: &[BatchHeader], bytes: &[u8]) -> Vec<BatchMeta> {
    let mut out = Vec::with_capacity(headers.len());
    let mut pos = 0usize;
    for h in headers {
        let len = h.total_len();
        let voters = if h.is_control() {
            bytes
                .get(pos..pos + len)
                .and_then(decode_control_batch)
                .filter(|(t, _)| *t == CONTROL_VOTERS)
                .and_then(|(_, v)| serde_json::from_slice::<VotersValue>(&v).ok())
                .map(|v| v.voters.into_iter().collect())
        } else {
            None
        };
        out.push(BatchMeta {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            epoch: h.partition_leader_epoch.max(0),
            voters,
        });
        pos += len;
    }
    out
}

impl Partition {
    /// Opens the replica of an already opened (recovered) log.
    pub fn open(
        topic: &str,
        index: i32,
        log: Arc<Log>,
        producers: ProducerState,
        setup: ReplicaSetup,
        io: Arc<dyn RaftIo>,
    ) -> Result<Arc<Partition>, OpenError> {
        let state_error = |reason: String| OpenError::State {
            log: log.name().to_string(),
            reason,
        };
        let quorum: QuorumStateFile = match log.read_side_file(QUORUM_STATE_FILE)? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| state_error(e.to_string()))?,
            None => QuorumStateFile::default(),
        };
        let (initial_voters, voter_records) = match log.read_side_file(VOTERS_FILE)? {
            Some(b) => {
                let v: VotersFile =
                    serde_json::from_slice(&b).map_err(|e| state_error(e.to_string()))?;
                let end = log.log_end_offset();
                (
                    v.initial.into_iter().collect(),
                    v.records
                        .into_iter()
                        .filter(|(o, _)| *o < end)
                        .map(|(o, ids)| (o, ids.into_iter().collect()))
                        .collect(),
                )
            }
            None => (setup.initial_voters.clone(), Vec::new()),
        };
        let epochs = EpochCache::from_entries(log.leader_epochs())
            .map_err(|e| state_error(e.to_string()))?;
        // A single voter writes its election state without fsync (no other replica relies on
        // it), so after a crash the log may hold a newer epoch than the file: never go back.
        let epoch = quorum.epoch.max(epochs.last_epoch().unwrap_or(0));
        let voted_for = quorum.voted_for.filter(|_| epoch == quorum.epoch);
        let now = io.now_ms();
        let replicas: BTreeSet<NodeId> = setup
            .target_replicas
            .union(&initial_voters)
            .copied()
            .collect();
        let boot = Bootstrap {
            election: ElectionState { epoch, voted_for },
            initial_voters,
            voter_records,
            replicas,
            log_start: log.log_start_offset(),
            log_end: log.log_end_offset(),
            epochs,
            high_watermark: log.log_start_offset(),
        };
        let cfg = RaftConfig {
            node_id: setup.node_id,
            election_timeout_ms: setup.election_timeout_ms,
            election_jitter_ms: setup.election_jitter_ms,
            seed: uuid::Uuid::new_v4().as_u64_pair().0,
        };
        let replica = Replica::new(cfg, boot, now);
        let hw = replica.high_watermark();
        let partition = Arc::new(Partition {
            topic: topic.to_string(),
            index,
            log,
            producers: Mutex::new(producers),
            raft: Mutex::new(replica),
            io,
            high_watermark: AtomicI64::new(hw),
            append_epoch: AtomicI32::new(-1),
            epoch: AtomicI32::new(epoch),
            leader: AtomicI32::new(-1),
            waiters: Mutex::new(BTreeMap::new()),
        });
        // Everything on disk at open is durable; a single voter elects itself now rather than at
        // the first timer tick.
        let durable_end = partition.log.high_watermark();
        partition.with_raft(|r, out| {
            if setup.target_replicas != *r.voters() {
                r.set_target_replicas(setup.target_replicas.clone(), now, out);
            }
            r.on_durable(durable_end, out);
            r.tick(now, out);
        });
        Ok(partition)
    }

    // ----------------------------------------------------------------------------------------
    // Reading the replica's state (lock-free for the hot paths)
    // ----------------------------------------------------------------------------------------

    /// Consumers read below this offset: everything under it is on a majority of the voters.
    pub fn high_watermark(&self) -> Offset {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The leader's epoch when this replica leads and takes writes.
    pub fn leader_epoch(&self) -> Option<i32> {
        let e = self.append_epoch.load(Ordering::Acquire);
        (e >= 0).then_some(e)
    }

    /// The current epoch as this replica knows it.
    pub fn epoch(&self) -> i32 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The leader as this replica knows it.
    pub fn leader(&self) -> Option<NodeId> {
        let l = self.leader.load(Ordering::Acquire);
        (l >= 0).then_some(l)
    }

    /// Checks a client's view of the leader epoch against ours (KIP-320): `current` < ours is
    /// fenced, > ours is unknown; negative means the client does not say.
    pub fn check_epoch(&self, current: i32) -> Result<(), ReplicaError> {
        let epoch = self.epoch();
        if current < 0 || current == epoch {
            Ok(())
        } else if current < epoch {
            Err(ReplicaError::FencedEpoch)
        } else {
            Err(ReplicaError::UnknownEpoch)
        }
    }

    /// Runs `f` on the Raft replica and executes what it asks for.
    pub fn with_raft<R>(&self, f: impl FnOnce(&mut Replica, &mut Vec<Output>) -> R) -> R {
        let mut raft = self.raft.lock();
        let mut out = Vec::new();
        let r = f(&mut raft, &mut out);
        self.execute(&mut raft, out);
        r
    }

    /// Whether this replica is in the partition's voter set (as its log says).
    pub fn is_voter(&self) -> bool {
        self.raft.lock().is_voter()
    }

    /// The in-sync voters and the voter set, for Metadata (`None` unless leader).
    pub fn replication_view(&self) -> ReplicationView {
        let raft = self.raft.lock();
        let now = self.io.now_ms();
        ReplicationView {
            role: raft.role(),
            epoch: raft.epoch(),
            leader: raft.leader(),
            voters: raft.voters().clone(),
            replicas: raft.replicas().clone(),
            in_sync: raft.in_sync_voters(now),
            high_watermark: raft.high_watermark(),
            log_end: raft.log_end(),
            progress: raft.progress(),
        }
    }

    /// Where `epoch` ends in this log (OffsetForLeaderEpoch): the largest epoch at or below it
    /// and its end offset, or `None` if the log has no epoch that old.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, Offset)> {
        let raft = self.raft.lock();
        raft.epochs()
            .end_offset_for(epoch, raft.log_end())
            .map(|e| (e.epoch, e.end_offset))
    }

    // ----------------------------------------------------------------------------------------
    // The leader's side
    // ----------------------------------------------------------------------------------------

    /// Appends client batches as the leader: refused unless this replica leads, stamped with the
    /// leader epoch, reported to the replica. The caller holds `producers` when the append must be
    /// atomic with a sequence check.
    pub fn append(
        &self,
        records: impl IntoValidated,
        options: &AppendOptions,
    ) -> Result<PendingAppend, AppendError> {
        let mut raft = self.raft.lock();
        let Some(epoch) = raft.append_epoch() else {
            return Err(AppendError::Replica(ReplicaError::NotLeader));
        };
        let options = AppendOptions {
            partition_leader_epoch: Some(epoch),
            ..options.clone()
        };
        let pending = self.log.append_pending(records, &options)?;
        let meta = BatchMeta {
            base_offset: pending.result.base_offset,
            last_offset: pending.result.last_offset,
            epoch,
            voters: None,
        };
        let mut out = Vec::new();
        raft.on_appended(&[meta], self.io.now_ms(), &mut out);
        if pending.is_complete() {
            raft.on_durable(self.log.high_watermark(), &mut out);
        }
        self.execute(&mut raft, out);
        Ok(pending)
    }

    /// Appends a transaction marker as the leader (the transaction coordinator's WriteTxnMarkers):
    /// checked against the producer's state first (an older producer epoch or coordinator epoch
    /// is refused with Kafka's error), then appended like a produced batch, ending the
    /// producer's open transaction here (an ABORT is indexed). `transaction_version` is the one
    /// the coordinator wrote the marker with (2: KIP-890's epoch bump before every marker). The
    /// caller waits for the append and wakes fetchers (`Broker::appended`): the last stable
    /// offset may have moved.
    pub fn append_txn_marker(
        &self,
        marker: &TxnMarker,
        transaction_version: i16,
        timestamp_ms: i64,
    ) -> Result<PendingAppend, MarkerError> {
        let mut producers = self.producers.lock();
        producers
            .check_marker(marker, transaction_version)
            .map_err(MarkerError::Refused)?;
        let batch = encode_txn_marker(marker, timestamp_ms);
        let pending = self
            .append(batch.clone(), &AppendOptions::default())
            .map_err(MarkerError::Append)?;
        if let Ok(h) = weir_storage::batch::validate_batch(&batch) {
            producers.apply(&self.log, &h, &batch, pending.result.base_offset);
        }
        producers.snapshot_if_rolled(&self.log);
        Ok(pending)
    }

    /// The last stable offset: read_committed consumers read below it. The high watermark, or
    /// the first offset of the oldest transaction still open here if that is lower. As Kafka's,
    /// never below the log start: retention or DeleteRecords may delete the start of a
    /// transaction still open, and an LSO under the log start would send read_committed
    /// consumers (ListOffsets latest) to an offset that is out of range.
    pub fn last_stable_offset(&self) -> Offset {
        let hw = self.high_watermark();
        let start = self.log.log_start_offset();
        let first_unstable = self.producers.lock().first_unstable_offset();
        first_unstable.map_or(hw, |f| f.max(start).min(hw))
    }

    /// Consumers of a topic with a delivery delay (`weir.delivery.delay.ms`) read below this
    /// offset: `upper` (the high watermark or the LSO), or the first batch stamped later than
    /// `now_ms - delay_ms` if that is lower. A batch that is not due holds back the ones after
    /// it, so consumers still get the log in order. Costs a time index lookup and a few batch
    /// header reads.
    pub fn delivery_end(&self, upper: Offset, delay_ms: i64, now_ms: i64) -> Offset {
        if delay_ms <= 0 {
            return upper;
        }
        let not_due_from = now_ms.saturating_sub(delay_ms).saturating_add(1);
        match self.log.first_batch_stamped_from(not_due_from) {
            Ok(Some(first_not_due)) => first_not_due.min(upper),
            Ok(None) => upper,
            Err(e) => {
                // Delivering early would break the delay: deliver nothing new until it reads.
                tracing::warn!(error = %e, "cannot find the delivery-delay end; holding back");
                self.log.log_start_offset().min(upper)
            }
        }
    }

    /// Tells the replica that the log start moved (retention, DeleteRecords).
    pub fn note_log_start(&self) {
        let start = self.log.log_start_offset();
        self.with_raft(|r, _| r.on_log_start(start));
    }

    /// Tells the replica how far the log is durable (after waiting for an append).
    pub fn note_durable(&self) {
        let end = self.log.high_watermark();
        self.with_raft(|r, out| r.on_durable(end, out));
    }

    /// Waits until the high watermark passes `last_offset`, appended by this replica as leader of
    /// `leader_epoch` (acks=all), or fails when this replica stops leading. Only the leadership
    /// that appended may say so: once it ended, what is at those offsets may be another leader's
    /// records (this replica's were truncated while it followed), so a later leadership of this
    /// replica answers NotLeader too and the client retries (an idempotent one without
    /// duplicates).
    pub async fn wait_committed(
        &self,
        last_offset: Offset,
        leader_epoch: i32,
    ) -> Result<(), ReplicaError> {
        let rx = {
            let mut waiters = self.waiters.lock();
            if self.leader_epoch() != Some(leader_epoch) {
                return Err(ReplicaError::NotLeader);
            }
            if self.high_watermark() > last_offset {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            waiters.entry(last_offset + 1).or_default().push(tx);
            rx
        };
        rx.await.unwrap_or(Err(ReplicaError::NotLeader))
    }

    /// The blocking form of [`Self::wait_committed`], for the threads that write the broker's
    /// own state (share state, group records) and must not acknowledge what a failover can
    /// still lose. Polls: a Raft group of one has committed by the time this is called, and a
    /// replicated commit takes a loopback round trip, so the naps stay short. A few rare
    /// request paths still call this on an async worker thread: there the wait first hands the
    /// worker's other tasks to another thread (`block_in_place`), since the commit needs them
    /// (the follower fetches that carry it are served by tasks the worker may hold).
    pub fn wait_committed_blocking(
        &self,
        last_offset: Offset,
        leader_epoch: i32,
        timeout_ms: u64,
    ) -> Result<(), CommitWaitError> {
        if self.leader_epoch() == Some(leader_epoch) && self.high_watermark() > last_offset {
            return Ok(());
        }
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if on_worker {
            tokio::task::block_in_place(|| {
                self.poll_committed(last_offset, leader_epoch, timeout_ms)
            })
        } else {
            self.poll_committed(last_offset, leader_epoch, timeout_ms)
        }
    }

    fn poll_committed(
        &self,
        last_offset: Offset,
        leader_epoch: i32,
        timeout_ms: u64,
    ) -> Result<(), CommitWaitError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        let mut nap = std::time::Duration::from_micros(50);
        loop {
            if self.leader_epoch() != Some(leader_epoch) {
                return Err(CommitWaitError::NotLeader);
            }
            if self.high_watermark() > last_offset {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(CommitWaitError::TimedOut { timeout_ms });
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(std::time::Duration::from_millis(2));
        }
    }

    /// A fetch from a follower (or observer) replica.
    pub fn handle_replica_fetch(&self, from: NodeId, req: FetchRequest) -> FetchAnswer {
        let now = self.io.now_ms();
        self.with_raft(|r, out| r.handle_fetch(now, from, req, out))
    }

    /// Hands leadership to `successor` (or the most caught-up voter); false if not possible now.
    pub fn resign(&self, successor: Option<NodeId>) -> bool {
        let now = self.io.now_ms();
        self.with_raft(|r, out| r.resign(now, successor, out))
    }

    // ----------------------------------------------------------------------------------------
    // The follower's side
    // ----------------------------------------------------------------------------------------

    /// What to fetch and from whom, when this replica follows.
    pub fn fetch_target(&self) -> Option<(NodeId, FetchRequest)> {
        self.raft.lock().fetch_target()
    }

    /// Applies the leader's answer to `sent`: appends the records that came with it (waiting for
    /// durability), or truncates / resets the log, as the replica decides.
    pub fn apply_fetched(
        &self,
        from: NodeId,
        sent: FetchRequest,
        resp: FetchResponse,
        records: &[u8],
    ) -> Result<(), StorageError> {
        let now = self.io.now_ms();
        let leader_log_start = match &resp.outcome {
            FetchOutcome::Records { log_start, .. } | FetchOutcome::Diverging { log_start, .. } => {
                Some(*log_start)
            }
            _ => None,
        };
        let mut producers = self.producers.lock();
        let mut raft = self.raft.lock();
        let mut out = Vec::new();
        let action = raft.handle_fetch_response(now, from, sent, resp, &mut out);
        let result = match action {
            FollowerAction::Append { at } => {
                // Nothing new, or not where the log ends (a stale answer): dropped before the
                // bytes are validated and copied. After the end is fine: the leader's log cleaner
                // removed the batches in between.
                let starts_at_end = BatchHeader::parse(records).is_ok_and(|h| h.base_offset >= at);
                if starts_at_end {
                    let batches = ValidatedBatches::new(records.to_vec())
                        .map_err(StorageError::InvalidBatch)?;
                    let headers = batches.headers().to_vec();
                    let pending = self.log.append_replicated(batches)?;
                    raft.on_appended(&metas(&headers, records), now, &mut out);
                    let mut pos = 0usize;
                    for h in &headers {
                        let len = h.total_len();
                        if let Some(bytes) = records.get(pos..pos + len) {
                            producers.apply(&self.log, h, bytes, h.base_offset);
                        }
                        pos += len;
                    }
                    producers.snapshot_if_rolled(&self.log);
                    pending.wait()?;
                    raft.on_durable(self.log.high_watermark(), &mut out);
                }
                Ok(())
            }
            // Rebuilt from a snapshot at or below the new end (those above it are deleted).
            FollowerAction::Truncate(offset) => self.log.truncate_to(offset).map(|()| {
                *producers = ProducerState::recover(&self.log);
            }),
            // Every snapshot is now below the log start: they are deleted, the state is empty.
            FollowerAction::Reset(offset) => self.log.reset_to(offset).map(|()| {
                *producers = ProducerState::recover(&self.log);
            }),
            FollowerAction::Ignore => Ok(()),
        };
        // Records the leader deleted (DeleteRecords, retention) go here too, as far as this
        // replica has committed them (Kafka's follower log start), so a failover does not bring
        // them back.
        if let (Ok(()), Some(start)) = (&result, leader_log_start) {
            let start = start.min(raft.high_watermark());
            if start > self.log.log_start_offset() {
                match self.log.delete_records_before(start) {
                    Ok(_) => raft.on_log_start(self.log.log_start_offset()),
                    Err(e) => {
                        tracing::warn!(log = self.log.name(), error = %e, "cannot follow the leader's log start")
                    }
                }
            }
        }
        self.execute(&mut raft, out);
        result
    }

    /// A vote request from candidate `from`: the answer is returned (not sent), after whatever
    /// it depends on (a granted vote, a newer epoch) is persisted.
    pub fn handle_vote(
        &self,
        from: NodeId,
        req: weir_replication::VoteRequest,
    ) -> weir_replication::VoteResponse {
        let now = self.io.now_ms();
        let mut raft = self.raft.lock();
        let mut out = Vec::new();
        raft.step(now, from, Message::Vote(req), &mut out);
        let mut answer = None;
        out.retain(|o| match o {
            Output::Send(to, Message::VoteResponse(r)) if *to == from && answer.is_none() => {
                answer = Some(r.clone());
                false
            }
            _ => true,
        });
        self.execute(&mut raft, out);
        answer.unwrap_or(weir_replication::VoteResponse {
            epoch: raft.epoch(),
            granted: false,
            leader: raft.leader(),
            pre_vote: false,
        })
    }

    /// A vote, announcement or resignation from another replica.
    pub fn step(&self, from: NodeId, message: Message) {
        let now = self.io.now_ms();
        self.with_raft(|r, out| r.step(now, from, message, out));
    }

    /// Timer work (elections, check-quorum, reconfiguration); returns the next deadline.
    pub fn tick(&self, now_ms: u64) -> u64 {
        let mut raft = self.raft.lock();
        let mut out = Vec::new();
        if now_ms >= raft.next_deadline_ms() {
            raft.tick(now_ms, &mut out);
        }
        self.execute(&mut raft, out);
        raft.next_deadline_ms()
    }

    /// The metadata's replica set for this partition changed.
    pub fn set_target_replicas(&self, target: BTreeSet<NodeId>) {
        let now = self.io.now_ms();
        self.with_raft(|r, out| r.set_target_replicas(target, now, out));
    }

    // ----------------------------------------------------------------------------------------
    // Executing the replica's outputs
    // ----------------------------------------------------------------------------------------

    fn execute(&self, raft: &mut Replica, outputs: Vec<Output>) {
        let mut queue: std::collections::VecDeque<Output> = outputs.into();
        while let Some(o) = queue.pop_front() {
            match o {
                Output::Persist(state) => {
                    let file = QuorumStateFile {
                        epoch: state.epoch,
                        voted_for: state.voted_for,
                    };
                    // Other replicas act on our vote and epoch only when there are others.
                    let durability = if raft.voters().len() > 1 {
                        Durability::Synced
                    } else {
                        Durability::Deferred
                    };
                    let bytes = serde_json::to_vec(&file).unwrap_or_default();
                    if let Err(e) = self
                        .log
                        .write_side_file(QUORUM_STATE_FILE, &bytes, durability)
                    {
                        // Sending a vote we could not persist could elect two leaders: stop here.
                        tracing::error!(log = self.log.name(), error = %e, "cannot persist election state; dropping the replica's messages");
                        queue.retain(|o| !matches!(o, Output::Send(..)));
                    }
                }
                Output::Send(to, message) => self.io.send(to, &self.topic, self.index, message),
                Output::AppendControl { epoch, voters } => {
                    let now = self.io.now_ms();
                    let (control_type, value) = match &voters {
                        Some(v) => (
                            CONTROL_VOTERS,
                            serde_json::to_vec(&VotersValue {
                                voters: v.iter().copied().collect(),
                            }),
                        ),
                        None => (
                            CONTROL_LEADER_CHANGE,
                            serde_json::to_vec(&LeaderChangeValue {
                                leader: raft.node_id(),
                                epoch,
                            }),
                        ),
                    };
                    let batch =
                        encode_control_batch(control_type, &value.unwrap_or_default(), now as i64);
                    let options = AppendOptions {
                        partition_leader_epoch: Some(epoch),
                        ..AppendOptions::default()
                    };
                    let mut out = Vec::new();
                    match self.log.append_pending(batch, &options) {
                        Ok(pending) => {
                            let meta = BatchMeta {
                                base_offset: pending.result.base_offset,
                                last_offset: pending.result.last_offset,
                                epoch,
                                voters,
                            };
                            raft.on_appended(&[meta], now, &mut out);
                            if pending.wait().is_ok() {
                                raft.on_durable(self.log.high_watermark(), &mut out);
                            }
                        }
                        Err(e) => {
                            tracing::error!(log = self.log.name(), error = %e, "cannot append a control batch");
                        }
                    }
                    queue.extend(out);
                }
                Output::RoleChanged {
                    role,
                    epoch,
                    leader,
                } => {
                    self.epoch.store(epoch, Ordering::Release);
                    self.leader.store(leader.unwrap_or(-1), Ordering::Release);
                    let append = if role == Role::Leader { epoch } else { -1 };
                    self.append_epoch.store(append, Ordering::Release);
                    if role != Role::Leader {
                        self.fail_waiters(ReplicaError::NotLeader);
                    }
                    tracing::debug!(topic = %self.topic, partition = self.index, ?role, epoch, ?leader, "replica role");
                    self.io
                        .role_changed(&self.topic, self.index, role, epoch, leader);
                }
                Output::HighWatermark(hw) => {
                    self.high_watermark.fetch_max(hw, Ordering::AcqRel);
                    self.release_waiters(hw);
                }
                Output::VotersChanged => {
                    let file = VotersFile {
                        initial: raft.initial_voters().iter().copied().collect(),
                        records: raft
                            .voter_records()
                            .iter()
                            .map(|(o, v)| (*o, v.iter().copied().collect()))
                            .collect(),
                    };
                    let bytes = serde_json::to_vec(&file).unwrap_or_default();
                    if let Err(e) =
                        self.log
                            .write_side_file(VOTERS_FILE, &bytes, Durability::Synced)
                    {
                        tracing::error!(log = self.log.name(), error = %e, "cannot persist the voter set");
                    }
                }
            }
        }
    }

    fn release_waiters(&self, hw: Offset) {
        let mut waiters = self.waiters.lock();
        let still = waiters.split_off(&(hw + 1));
        let done = std::mem::replace(&mut *waiters, still);
        drop(waiters);
        for tx in done.into_values().flatten() {
            let _ = tx.send(Ok(()));
        }
    }

    fn fail_waiters(&self, error: ReplicaError) {
        let done = std::mem::take(&mut *self.waiters.lock());
        for tx in done.into_values().flatten() {
            let _ = tx.send(Err(error));
        }
    }
}

/// A snapshot of a replica's replication state (for Metadata, metrics, the admin API).
#[derive(Debug, Clone)]
pub struct ReplicationView {
    pub role: Role,
    pub epoch: i32,
    pub leader: Option<NodeId>,
    pub voters: BTreeSet<NodeId>,
    pub replicas: BTreeSet<NodeId>,
    /// Leader only: voters caught up with the high watermark and heard from recently.
    pub in_sync: Option<BTreeSet<NodeId>>,
    pub high_watermark: Offset,
    pub log_end: Offset,
    /// Leader only: where each other replica's log ends.
    pub progress: BTreeMap<NodeId, weir_replication::Progress>,
}

/// Why a transaction marker was not appended.
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    /// The producer's state refuses it (INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED).
    #[error("marker refused: {0:?}")]
    Refused(crate::errors::ErrorCode),
    #[error(transparent)]
    Append(AppendError),
}

/// Why a leader append failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("{0:?}")]
    Replica(ReplicaError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The replica I/O of a broker with no peers (the single-node default): nothing to send.
pub struct LocalRaftIo {
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl RaftIo for LocalRaftIo {
    fn send(&self, to: NodeId, topic: &str, partition: i32, _message: Message) {
        tracing::warn!(
            to,
            topic,
            partition,
            "single node: no broker to send a replication message to"
        );
    }

    fn role_changed(&self, _: &str, _: i32, _: Role, _: i32, _: Option<NodeId>) {}

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now_ms()).unwrap_or(0)
    }
}
