//! Idempotent and transactional producer bookkeeping: per-partition sequence and epoch checks, the
//! transactions open in the partition, and the broker-wide producer id allocator.
//!
//! A producer's transaction in a partition starts with its first transactional data batch and ends
//! with the transaction marker (COMMIT or ABORT control batch) the coordinator appends; the first
//! offset of the oldest open transaction bounds the last stable offset (LSO) that read_committed
//! consumers read below. Every appended, replicated or recovered batch goes through
//! [`ProducerState::apply`], which also records ABORT markers in the log's aborted-transaction
//! index, so leader, follower and recovery build the same state.
//!
//! `ProducerState` decides, for one batch header, whether the batch is new, a retried duplicate (answered
//! with its original offset) or out of order. It is rebuilt at start from the newest usable snapshot
//! (`producer_snapshot`) and the batch headers in the log after it, so it survives restarts and a
//! start reads only the log's tail. It owns no IO beyond that recovery and its snapshots.
//!
//! A producer with no state here (its batches left the log through retention or DeleteRecords,
//! or it never wrote to this partition) may start at any sequence, as in Kafka since KIP-360:
//! the broker cannot tell a gap from records that were deleted, so it accepts the batch and
//! starts tracking the producer from it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use weir_storage::batch::BatchHeader;
use weir_storage::records::{decode_txn_marker, TxnMarker, TxnMarkerKind};
use weir_storage::{AbortedTxn, Log, Offset};

use crate::errors::ErrorCode;

/// Kafka keeps the last five batches per producer to recognise retries (max.in.flight <= 5).
pub(crate) const RETAINED_BATCHES: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchRecord {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) base_offset: Offset,
    pub(crate) last_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    pub(crate) batches: VecDeque<BatchRecord>,
    /// The epoch of the last transaction coordinator whose marker this partition took (-1: none).
    pub(crate) coordinator_epoch: i32,
    /// The first offset of the producer's transaction open in this partition.
    pub(crate) txn_first_offset: Option<Offset>,
    /// The last offset of the producer's last batch or marker here: the entry is kept while the
    /// log holds it (or while its transaction is open).
    pub(crate) last_offset: Offset,
    /// The max timestamp of the producer's last data batch here (-1: none; DescribeProducers).
    pub(crate) last_timestamp_ms: i64,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        Self {
            epoch: 0,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            txn_first_offset: None,
            last_offset: -1,
            last_timestamp_ms: -1,
        }
    }
}

/// What to do with an incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not an idempotent batch, or the next one in sequence: append it.
    Append,
    /// A retry of a batch already in the log: answer with its original offsets, append nothing.
    /// Under acks=all the answer still waits for `last_offset` to be committed, as for the
    /// original: the batch may be in this leader's log but not yet on a majority.
    Duplicate {
        base_offset: Offset,
        last_offset: Offset,
    },
    Reject(ErrorCode),
}

#[derive(Clone, Debug, Default)]
pub struct ProducerState {
    pub(crate) producers: HashMap<i64, ProducerEntry>,
    /// `(first offset, producer id)` of every open transaction (derived from `producers`).
    open_txns: BTreeSet<(Offset, i64)>,
    /// The log's active segment when the state was recovered or last snapshotted: a newer one
    /// means the log rolled since, and a snapshot is due.
    snapshot_segment: Offset,
    /// KIP-890 verification guards (Kafka's VerificationGuard): producer id → (epoch, guard),
    /// set before a remote transaction coordinator is asked whether a producer's first
    /// transactional batch here belongs to its ongoing transaction, dropped by the producer's
    /// next marker. A batch verified remotely is appended only while its guard holds, so a
    /// marker that ended the transaction in between makes the answer stale. Memory only: a
    /// lost guard makes the client retry and verify again.
    verifications: HashMap<i64, (i16, u64)>,
    next_guard: u64,
}

/// At most this many verifications pending per partition; beyond it they are all dropped
/// (their producers retry).
const MAX_PENDING_VERIFICATIONS: usize = 10_000;

/// What a recovery did: where it started reading and how much it read.
#[derive(Debug)]
pub struct Recovery {
    pub state: ProducerState,
    /// The offset of the snapshot it started from (`None`: a full scan from the log start).
    pub snapshot: Option<Offset>,
    pub batches_read: u64,
    pub bytes_read: u64,
}

fn last_seq(header: &BatchHeader) -> i32 {
    // Sequences wrap at i32::MAX back to 0, as in Kafka.
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(0)
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerState {
    pub(crate) fn from_producers(producers: HashMap<i64, ProducerEntry>) -> Self {
        let open_txns = producers
            .iter()
            .filter_map(|(&id, e)| e.txn_first_offset.map(|o| (o, id)))
            .collect();
        Self {
            producers,
            open_txns,
            ..Self::default()
        }
    }

    /// Rebuilds the state of the log: the newest usable snapshot plus the batch headers after it
    /// (all of them when there is none). Also after the log was truncated or reset.
    pub fn recover(log: &Log) -> Self {
        Self::recover_counted(log).state
    }

    /// [`Self::recover`], saying how much of the log it read.
    pub fn recover_counted(log: &Log) -> Recovery {
        let (mut state, snapshot) = match crate::producer_snapshot::load_latest(log) {
            Some((state, at)) => (state, Some(at)),
            None => (Self::default(), None),
        };
        let from = snapshot.unwrap_or_else(|| log.log_start_offset());
        let mut batches_read = 0u64;
        // Markers after the snapshot have their index entries written again if a crash lost
        // them (an entry below the snapshot was durable before the snapshot was written).
        // Headers only: the data is not needed (markers, the only records read, are small).
        let scanned = crate::log_scan::for_each_header_from(log, from, |h, control| {
            batches_read += 1;
            state.apply(log, h, control.unwrap_or_default(), h.base_offset);
        });
        let bytes_read = match scanned {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(log = log.name(), error = %e, "producer state recovery stopped early");
                0
            }
        };
        // The state of the producers with batches in the log, whichever way it was rebuilt.
        state.forget_below(log.log_start_offset());
        state.snapshot_segment = log.active_segment_base();
        Recovery {
            state,
            snapshot,
            batches_read,
            bytes_read,
        }
    }

    /// Drops the batches that left the log (below `log_start`), and the producers with nothing
    /// left in it and no open transaction.
    pub(crate) fn forget_below(&mut self, log_start: Offset) {
        self.producers.retain(|_, entry| {
            entry.batches.retain(|b| b.last_offset >= log_start);
            entry.last_offset >= log_start || entry.txn_first_offset.is_some()
        });
    }

    /// The first offset of the oldest transaction open in this partition: the last stable offset
    /// is the smaller of it and the high watermark.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.open_txns.first().map(|&(o, _)| o)
    }

    /// The transactions open here, `(producer id, first offset)` (tests, tools).
    pub fn open_transactions(&self) -> Vec<(i64, Offset)> {
        self.open_txns.iter().map(|&(o, id)| (id, o)).collect()
    }

    /// Whether an append of this batch would start a transaction in this partition (the point at
    /// which KIP-890 has the leader verify with the transaction coordinator that the partition
    /// was added to the producer's transaction).
    pub fn starts_transaction(&self, header: &BatchHeader) -> bool {
        // A newer epoch's batch does not continue a transaction an older epoch left open here:
        // with transaction protocol 2 every transaction has its own epoch, and the older one
        // is only waiting for its marker. Appending the batch into it would mix the two, and
        // the marker (written at the bumped epoch) would then be refused as stale, leaving the
        // transaction open for good; asking the coordinator instead answers
        // CONCURRENT_TRANSACTIONS until the marker is here.
        header.is_transactional()
            && !header.is_control()
            && self
                .producers
                .get(&header.producer_id)
                .is_none_or(|e| e.txn_first_offset.is_none() || e.epoch < header.producer_epoch)
    }

    /// Before a remote coordinator is asked about `producer_id`'s first transactional batch
    /// here: the guard the append must still find ([`Self::verification_holds`]).
    pub fn begin_verification(&mut self, producer_id: i64, producer_epoch: i16) -> u64 {
        if self.verifications.len() >= MAX_PENDING_VERIFICATIONS {
            self.verifications.clear();
        }
        self.next_guard += 1;
        self.verifications
            .insert(producer_id, (producer_epoch, self.next_guard));
        self.next_guard
    }

    /// Whether no marker of `producer_id` came since [`Self::begin_verification`] gave `guard`.
    pub fn verification_holds(&self, producer_id: i64, producer_epoch: i16, guard: u64) -> bool {
        self.verifications.get(&producer_id) == Some(&(producer_epoch, guard))
    }

    /// The verified batch was appended: its guard is spent.
    pub fn end_verification(&mut self, producer_id: i64) {
        self.verifications.remove(&producer_id);
    }

    /// Writes a snapshot at the log end. The caller holds the partition's producer-state lock,
    /// under which every batch with a producer id is appended and recorded, so the state is the
    /// state after every batch below the log end.
    pub fn write_snapshot(&mut self, log: &Log) {
        self.snapshot_segment = log.active_segment_base();
        // Producers whose batches left the log are still in it; recovery drops them.
        if let Err(e) = crate::producer_snapshot::write(log, self, log.log_end_offset()) {
            tracing::warn!(log = log.name(), error = %e, "cannot write a producer snapshot");
        }
    }

    /// After appends (holding the producer-state lock): a snapshot if the log rolled since the
    /// last one, as Kafka takes one per segment.
    pub fn snapshot_if_rolled(&mut self, log: &Log) {
        if log.active_segment_base() > self.snapshot_segment {
            self.write_snapshot(log);
        }
    }

    /// Whether this partition has state for `producer_id` (tests).
    /// Every producer this partition holds state for, by id.
    pub(crate) fn active(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        let mut active: Vec<(i64, &ProducerEntry)> =
            self.producers.iter().map(|(&id, e)| (id, e)).collect();
        active.sort_unstable_by_key(|(id, _)| *id);
        active.into_iter()
    }

    pub fn knows(&self, producer_id: i64) -> bool {
        self.producers.contains_key(&producer_id)
    }

    /// What this partition holds of `producer_id`, in words (for error messages and logs).
    pub fn describe(&self, producer_id: i64) -> String {
        match self.producers.get(&producer_id) {
            None => "no state for this producer".to_string(),
            Some(e) => match e.batches.back() {
                Some(b) => format!(
                    "epoch {}, last sequence {} at offset {}",
                    e.epoch, b.last_seq, b.last_offset
                ),
                None => format!("epoch {}, no batch", e.epoch),
            },
        }
    }

    pub fn check(&self, header: &BatchHeader) -> SequenceCheck {
        if header.producer_id < 0 {
            return SequenceCheck::Append;
        }
        match self.check_sequence(header) {
            // As Kafka: epoch and sequence first, then the transaction state.
            SequenceCheck::Append
                if !header.is_transactional()
                    && self
                        .producers
                        .get(&header.producer_id)
                        .is_some_and(|e| e.txn_first_offset.is_some()) =>
            {
                SequenceCheck::Reject(ErrorCode::INVALID_TXN_STATE)
            }
            other => other,
        }
    }

    fn check_sequence(&self, header: &BatchHeader) -> SequenceCheck {
        let first = header.base_sequence;
        let last = last_seq(header);
        match self.producers.get(&header.producer_id) {
            // No state: its batches left the log, or it never wrote here (see the module docs).
            None => SequenceCheck::Append,
            Some(entry) if header.producer_epoch < entry.epoch => {
                SequenceCheck::Reject(ErrorCode::INVALID_PRODUCER_EPOCH)
            }
            Some(entry) if header.producer_epoch > entry.epoch => {
                if first == 0 {
                    SequenceCheck::Append
                } else {
                    SequenceCheck::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
                }
            }
            Some(entry) => {
                if let Some(b) = entry
                    .batches
                    .iter()
                    .find(|b| b.first_seq == first && b.last_seq == last)
                {
                    return SequenceCheck::Duplicate {
                        base_offset: b.base_offset,
                        last_offset: b.last_offset,
                    };
                }
                match entry.batches.back() {
                    Some(b) if next_seq(b.last_seq) == first => SequenceCheck::Append,
                    None if first == 0 => SequenceCheck::Append,
                    _ => SequenceCheck::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
                }
            }
        }
    }

    /// Records an appended data batch (`header` as sent; `base_offset` as assigned).
    pub fn record(&mut self, header: &BatchHeader, base_offset: Offset) {
        if header.producer_id < 0 || header.is_control() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        entry.batches.push_back(BatchRecord {
            first_seq: header.base_sequence,
            last_seq: last_seq(header),
            base_offset,
            last_offset,
        });
        while entry.batches.len() > RETAINED_BATCHES {
            entry.batches.pop_front();
        }
        entry.last_offset = entry.last_offset.max(last_offset);
        entry.last_timestamp_ms = header.max_timestamp;
        if header.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(base_offset);
            self.open_txns.insert((base_offset, header.producer_id));
        }
    }

    /// Whether a marker from this coordinator may end this producer's transaction here, as
    /// Kafka's leader decides: a producer epoch older than the last seen is
    /// INVALID_PRODUCER_EPOCH (with transaction version 2, whose coordinator bumps the epoch
    /// before every marker, one not newer is, unless it repeats the marker of a transaction that
    /// already ended); a coordinator epoch older than the last seen is
    /// TRANSACTION_COORDINATOR_FENCED (a zombie coordinator).
    pub fn check_marker(
        &self,
        marker: &TxnMarker,
        transaction_version: i16,
    ) -> Result<(), ErrorCode> {
        let Some(entry) = self.producers.get(&marker.producer_id) else {
            return Ok(());
        };
        let current = entry.epoch;
        let stale = if transaction_version >= 2 {
            marker.producer_epoch <= current
        } else {
            marker.producer_epoch < current
        };
        let retried = transaction_version >= 2
            && marker.producer_epoch == current
            && entry.txn_first_offset.is_none();
        if stale && !retried {
            return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if entry.coordinator_epoch > marker.coordinator_epoch {
            return Err(ErrorCode::TRANSACTION_COORDINATOR_FENCED);
        }
        Ok(())
    }

    /// Records an appended marker at `offset`: ends the producer's open transaction here. For an
    /// ABORT, returns the entry of the aborted-transaction index.
    pub fn record_marker(&mut self, marker: &TxnMarker, offset: Offset) -> Option<AbortedTxn> {
        self.verifications.remove(&marker.producer_id);
        let entry = self.producers.entry(marker.producer_id).or_default();
        if marker.producer_epoch != entry.epoch {
            entry.epoch = marker.producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_offset = entry.last_offset.max(offset);
        let first = entry.txn_first_offset.take();
        if let Some(first) = first {
            self.open_txns.remove(&(first, marker.producer_id));
        }
        match marker.kind {
            TxnMarkerKind::Commit => None,
            TxnMarkerKind::Abort => Some(AbortedTxn {
                producer_id: marker.producer_id,
                first_offset: first.unwrap_or(offset),
                last_offset: offset,
                last_stable_offset: self.first_unstable_offset().unwrap_or(offset + 1),
            }),
        }
    }

    /// Records any batch appended to `log` (a leader's, a follower's, or one read back at
    /// recovery; `bytes` is the whole batch, needed only for a control batch, `base_offset` where
    /// it is): data batches as
    /// [`Self::record`], transaction markers as [`Self::record_marker`] with the aborted ones
    /// written to the log's aborted-transaction index. Other control batches change nothing.
    pub fn apply(&mut self, log: &Log, header: &BatchHeader, bytes: &[u8], base_offset: Offset) {
        if !header.is_control() {
            self.record(header, base_offset);
            return;
        }
        if !header.is_transactional() {
            return;
        }
        let Some(marker) = decode_txn_marker(bytes) else {
            return;
        };
        if let Some(aborted) = self.record_marker(&marker, base_offset) {
            if let Err(e) = log.append_aborted_txn(aborted) {
                tracing::warn!(log = log.name(), offset = base_offset, error = %e, "cannot index an aborted transaction");
            }
        }
    }
}

/// Hands out producer ids, durable across restarts: ids are reserved in blocks and the end of the
/// reserved block is written to disk before any id of it is used.
pub struct ProducerIdAllocator {
    file: PathBuf,
    state: Mutex<(i64, i64)>,
    /// In a cluster every broker hands out ids: broker `n` only those `≡ n (mod stride)`, so no
    /// two brokers ever hand out the same id, with no coordination (and with etcd away).
    stride: i64,
    residue: i64,
}

const ID_BLOCK: i64 = 1000;
/// Brokers of a cluster have node ids below this (the producer-id stride).
pub const MAX_CLUSTER_NODE_ID: i32 = 4096;

impl ProducerIdAllocator {
    /// The allocator of a broker in a cluster: ids `≡ node_id (mod MAX_CLUSTER_NODE_ID)`.
    pub fn open_clustered(meta_dir: &Path, node_id: i32) -> std::io::Result<Self> {
        let mut a = Self::open(meta_dir)?;
        a.stride = i64::from(MAX_CLUSTER_NODE_ID);
        a.residue = i64::from(node_id.clamp(0, MAX_CLUSTER_NODE_ID - 1));
        Ok(a)
    }

    pub fn open(meta_dir: &Path) -> std::io::Result<Self> {
        let file = meta_dir.join("producer_ids");
        let reserved_end = match std::fs::read_to_string(&file) {
            Ok(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        // Start after everything reserved before, so no id is ever handed out twice.
        Ok(Self {
            file,
            state: Mutex::new((reserved_end, reserved_end)),
            stride: 1,
            residue: 0,
        })
    }

    pub fn next(&self) -> std::io::Result<i64> {
        let mut state = self.state.lock();
        if state.0 >= state.1 {
            let end = state.1 + ID_BLOCK;
            let tmp = self.file.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(end.to_string().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.file)?;
            state.1 = end;
        }
        let id = state.0 * self.stride + self.residue;
        state.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    fn transactional(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            attributes: weir_storage::batch::ATTR_TRANSACTIONAL,
            ..header(pid, epoch, seq, records)
        }
    }

    #[test]
    fn a_newer_epoch_starts_its_own_transaction_while_the_older_awaits_its_marker() {
        let mut s = ProducerState::default();
        let first = transactional(7, 0, 0, 2);
        assert!(s.starts_transaction(&first));
        s.record(&first, 100);
        // The same epoch continues the open transaction.
        assert!(!s.starts_transaction(&transactional(7, 0, 2, 1)));
        // Protocol 2 bumped the epoch at EndTxn; the abort marker has not reached this
        // partition yet: the next transaction's first batch must be verified, not appended
        // into the open one.
        assert!(s.starts_transaction(&transactional(7, 1, 0, 1)));
        // Once the marker is here, it starts a transaction as usual.
        s.record_marker(
            &TxnMarker {
                producer_id: 7,
                producer_epoch: 1,
                coordinator_epoch: 0,
                kind: TxnMarkerKind::Abort,
            },
            102,
        );
        assert!(s.starts_transaction(&transactional(7, 1, 0, 1)));
    }

    #[test]
    fn in_order_duplicate_and_gap() {
        let mut s = ProducerState::default();
        let b0 = header(7, 0, 0, 3);
        assert_eq!(s.check(&b0), SequenceCheck::Append);
        s.record(&b0, 100);
        assert_eq!(
            s.check(&b0),
            SequenceCheck::Duplicate {
                base_offset: 100,
                last_offset: 102
            }
        );
        let gap = header(7, 0, 5, 1);
        assert_eq!(
            s.check(&gap),
            SequenceCheck::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        let b1 = header(7, 0, 3, 2);
        assert_eq!(s.check(&b1), SequenceCheck::Append);
        s.record(&b1, 103);
        let old_epoch = header(7, -1, 5, 1);
        assert_eq!(
            s.check(&old_epoch),
            SequenceCheck::Reject(ErrorCode::INVALID_PRODUCER_EPOCH)
        );
        let new_epoch = header(7, 1, 0, 1);
        assert_eq!(s.check(&new_epoch), SequenceCheck::Append);
    }

    #[test]
    fn unknown_producer_may_start_at_any_sequence() {
        // Kafka 2.5+ (KIP-360): no state means its batches may have been deleted; accept.
        let mut s = ProducerState::default();
        assert_eq!(s.check(&header(9, 0, 4, 1)), SequenceCheck::Append);
        assert_eq!(s.check(&header(-1, -1, -1, 1)), SequenceCheck::Append);
        // From then on it is tracked: the next batch must follow.
        s.record(&header(9, 0, 4, 1), 10);
        assert_eq!(
            s.check(&header(9, 0, 7, 1)),
            SequenceCheck::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(s.check(&header(9, 0, 5, 1)), SequenceCheck::Append);
        // A known producer's new epoch must still start at 0.
        assert_eq!(
            s.check(&header(9, 1, 3, 1)),
            SequenceCheck::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
    }

    #[test]
    fn allocator_never_reuses_ids_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ProducerIdAllocator::open(dir.path()).expect("open");
        let first = a.next().expect("id");
        let second = a.next().expect("id");
        assert_eq!(second, first + 1);
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).expect("reopen");
        assert!(b.next().expect("id") > second);
    }
}
