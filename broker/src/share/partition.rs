//! The state of one share-partition (one share group reading one topic partition, KIP-932): which
//! records are in flight, in what state, held by whom and until when. Pure: no IO, no clock (the
//! caller passes the time in ms), no knowledge of the log beyond the batch offset ranges the
//! caller read.
//!
//! The share-partition start offset (SPSO) is the first offset not yet finished with; the
//! in-flight window runs from it up to `end_offset`, the first offset never handed out. Every
//! offset in the window has a state:
//!
//! - `Available`: may be handed out (acquired) by the next fetch, once its `available_at_ms` has
//!   passed (Weir's retry backoff and delayed delivery hold a record back that way).
//! - `Acquired`: handed to one member, locked until its deadline. No other member gets it.
//! - `Acknowledged`: accepted; finished.
//! - `Archived`: rejected, over the delivery limit, expired, or not a record at all (a gap in
//!   the log); finished.
//! - `Archiving(reason)`: would be archived, but the group has a dead-letter topic and the record
//!   is not there yet. The caller appends it there and then calls
//!   [`SharePartition::dead_lettered`]; until then it holds the start offset back, so a crash in
//!   between dead-letters it again rather than never.
//!
//! The start offset moves over the finished prefix of the window. New records are only taken
//! into the window while it spans fewer than `max_record_locks` offsets (Kafka's
//! `group.share.partition.max.record.locks`), so the state a slow consumer makes the broker hold
//! is bounded.
//!
//! A record held back by delayed delivery (never delivered, not due yet) that reaches the start
//! of the window is *parked*: moved out of the window to a side index of at most
//! `max_delayed_records` entries, so that the start offset, and the window behind it, go on
//! without it. A parked record is handed out from the index when due and acknowledged like any
//! other; it leaves the index when it is finished. Parked records are persisted below the start
//! offset with their own state (`PersistedState::Parked`); their due times are not (after a
//! restart each is asked about again, as window records are). With the index full, delayed
//! records stay in the window and hold it, as before there was an index.
//!
//! Every change that must survive a restart marks its offsets dirty; the caller takes them with
//! [`SharePartition::take_update`] and makes them durable before answering. Acquisitions are not
//! persisted (as in Kafka): after a restart an acquired record is available again, with the
//! delivery count last persisted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::records::DeadLetterIntent;

/// A member id, shared by all the records it holds.
pub type MemberId = Arc<str>;

/// Kafka's acknowledge types (ShareFetch/ShareAcknowledge `AcknowledgeTypes`), and Renew
/// (KIP-1222, ShareFetch v2+) which extends a lock without finishing the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AckType {
    /// 0: the offset is not a record (a gap in a compacted or transactional log).
    Gap,
    /// 1: processed; finished.
    Accept,
    /// 2: give it back for another delivery.
    Release,
    /// 3: unprocessable; finished (dead-lettered when the group has a dead-letter topic).
    Reject,
    /// 4: still being processed; extend the lock.
    Renew,
}

impl AckType {
    /// The acknowledge type of a wire code; `None` for codes Kafka does not define.
    pub fn from_code(code: i8) -> Option<AckType> {
        Some(match code {
            0 => AckType::Gap,
            1 => AckType::Accept,
            2 => AckType::Release,
            3 => AckType::Reject,
            4 => AckType::Renew,
            _ => return None,
        })
    }
}

/// How a fetch's record count bounds what one acquisition takes (ShareFetch's `MaxRecords` and
/// `ShareAcquireMode`, KIP-1206).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLimit {
    /// The most records wanted.
    pub max_records: usize,
    /// Whether the last log batch may take the count past `max_records`.
    pub mode: AcquireMode,
}

/// ShareFetch's `ShareAcquireMode` (v2+; earlier versions are batch-optimized).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireMode {
    /// 0: the limit is soft, checked between log batches; a batch begun is acquired whole.
    BatchOptimized,
    /// 1: never more than the limit; the last batch may be acquired in part.
    RecordLimit,
}

impl AcquireMode {
    /// The mode of a wire code; `None` for codes Kafka does not define.
    pub fn from_code(code: i8) -> Option<AcquireMode> {
        match code {
            0 => Some(AcquireMode::BatchOptimized),
            1 => Some(AcquireMode::RecordLimit),
            _ => None,
        }
    }
}

/// A bare count is Kafka's default, batch-optimized limit.
impl From<usize> for RecordLimit {
    fn from(max_records: usize) -> RecordLimit {
        RecordLimit {
            max_records,
            mode: AcquireMode::BatchOptimized,
        }
    }
}

/// Why a record was archived, where a dead-letter topic would want to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArchiveReason {
    /// A consumer rejected it.
    Rejected,
    /// It was delivered `share.delivery.count.limit` times without being accepted.
    DeliveryLimit,
    /// It outlived its time to live before it was delivered.
    Expired,
}

impl ArchiveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveReason::Rejected => "rejected",
            ArchiveReason::DeliveryLimit => "delivery-limit",
            ArchiveReason::Expired => "expired",
        }
    }
}

/// The state of one in-flight offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired,
    Acknowledged,
    Archived,
    /// Archived once it is in the dead-letter topic.
    Archiving(ArchiveReason),
}

impl RecordState {
    /// Whether the record needs nothing more (the start offset may pass it).
    pub fn is_finished(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct InFlight {
    state: RecordState,
    /// How often it was acquired.
    delivery_count: u16,
    /// The member holding it (only while `Acquired`).
    owner: Option<MemberId>,
    /// When the lock runs out (only while `Acquired`).
    lock_deadline_ms: i64,
    /// Not handed out before this time (only while `Available`).
    available_at_ms: i64,
}

impl InFlight {
    fn available(delivery_count: u16, available_at_ms: i64) -> Self {
        Self {
            state: RecordState::Available,
            delivery_count,
            owner: None,
            lock_deadline_ms: 0,
            available_at_ms,
        }
    }

    fn finished(state: RecordState, delivery_count: u16) -> Self {
        Self {
            state,
            delivery_count,
            owner: None,
            lock_deadline_ms: 0,
            available_at_ms: 0,
        }
    }
}

/// The settings a share-partition follows (from the group's configs). They may change while
/// records are in flight; a change applies from the next transition on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareSettings {
    /// `share.record.lock.duration.ms`.
    pub record_lock_duration_ms: i64,
    /// `share.delivery.count.limit`.
    pub delivery_count_limit: u16,
    /// `group.share.partition.max.record.locks`: the most offsets the window spans.
    pub max_record_locks: usize,
    /// `weir.share.retry.backoff.ms`: a released or timed-out record waits this long times
    /// 2^(deliveries - 1) before it is handed out again (0: no backoff).
    pub retry_backoff_ms: i64,
    /// `weir.share.retry.backoff.max.ms`: the longest such wait.
    pub retry_backoff_max_ms: i64,
    /// Whether records archived for a reason go through `Archiving` (a dead-letter topic is set).
    pub dead_letter: bool,
    /// `weir.share.delayed.records.max`: the most delayed records parked out of the window
    /// (at most [`MAX_DELAYED_RECORDS`]; 0: delayed records stay in the window).
    pub max_delayed_records: usize,
}

/// The most parked records a share-partition holds or restores, whatever its settings say.
pub const MAX_DELAYED_RECORDS: usize = 100_000;
/// The default of `weir.share.delayed.records.max`.
pub const DEFAULT_MAX_DELAYED_RECORDS: usize = 10_000;

impl Default for ShareSettings {
    fn default() -> Self {
        Self {
            record_lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            max_record_locks: 2_000,
            retry_backoff_ms: 0,
            retry_backoff_max_ms: 60_000,
            dead_letter: false,
            max_delayed_records: DEFAULT_MAX_DELAYED_RECORDS,
        }
    }
}

impl ShareSettings {
    /// How long a record that was delivered `delivery_count` times waits before the next delivery.
    pub fn backoff_ms(&self, delivery_count: u16) -> i64 {
        if self.retry_backoff_ms <= 0 || delivery_count == 0 {
            return 0;
        }
        let shift = u32::from(delivery_count - 1).min(32);
        self.retry_backoff_ms
            .saturating_mul(1i64 << shift)
            .min(self.retry_backoff_max_ms.max(self.retry_backoff_ms))
    }
}

/// A run of acquired offsets with one delivery count (ShareFetch's `AcquiredRecords`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcquiredRange {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: u16,
}

/// What the caller learned about a record it read, beyond its offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Deliver it now.
    Deliver,
    /// Deliver it no earlier than this time (delayed delivery).
    NotBefore(i64),
    /// Its time to live has passed: never deliver it.
    Expired,
    /// It belongs to an aborted transaction and the group reads committed records only: never
    /// deliver it, and it is no dead letter (Kafka archives it).
    Aborted,
}

/// One acknowledgement batch: `types` has one entry for the whole range or one per offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub types: Vec<AckType>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// A malformed batch (reversed range, wrong number of types): Kafka's INVALID_REQUEST.
    #[error("malformed acknowledgement batch")]
    InvalidRequest,
    /// An offset is not held by this member (or acknowledged twice): INVALID_RECORD_STATE.
    #[error("offset {0} is not acquired by this member")]
    InvalidRecordState(i64),
}

/// A persisted state of a run of offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistedState {
    Available,
    Acknowledged,
    Archived,
    Archiving(ArchiveReason),
    /// Weir: a parked delayed record, below the start offset and not finished.
    Parked,
    /// Weir: a parked record waiting for the dead-letter topic.
    ParkedArchiving(ArchiveReason),
}

impl PersistedState {
    /// Whether an offset below the start offset in this state is still waited for. Every other
    /// state below the start offset is finished (a window record the start offset passed).
    fn kept_below_start(self) -> bool {
        matches!(
            self,
            PersistedState::Parked | PersistedState::ParkedArchiving(_)
        )
    }
}

/// A run of offsets with one persisted state and delivery count (Kafka's `PersisterStateBatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub state: PersistedState,
    pub delivery_count: u16,
}

/// The durable part of a share-partition: its start offset, the states of the offsets in the
/// window that differ from "never delivered", and the parked records below the start offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistedPartition {
    pub start_offset: i64,
    pub batches: Vec<StateBatch>,
}

impl PersistedPartition {
    /// Offsets at or after the start offset whose delivery is complete (acknowledged or
    /// archived): KIP-1226's `DeliveryCompleteCount`, from which a share-partition's lag is the
    /// high watermark less the start offset less this.
    pub fn delivery_complete_count(&self) -> i64 {
        self.batches
            .iter()
            .filter(|b| {
                b.last_offset >= self.start_offset
                    && matches!(
                        b.state,
                        PersistedState::Acknowledged | PersistedState::Archived
                    )
            })
            .map(|b| b.last_offset - b.first_offset.max(self.start_offset) + 1)
            .sum()
    }

    /// Records parked below the start offset, still to be delivered.
    pub fn parked_count(&self) -> i64 {
        self.batches
            .iter()
            .filter(|b| b.last_offset < self.start_offset && b.state.kept_below_start())
            .map(|b| b.last_offset - b.first_offset + 1)
            .sum()
    }
}

/// A share-partition's lag: the records up to `high_watermark` not yet delivered to completion.
/// KIP-1226's (the high watermark less the start offset less the completed offsets after it)
/// plus Weir's records parked below the start offset for delayed delivery.
pub fn lag(
    high_watermark: i64,
    start_offset: i64,
    delivery_complete_count: i64,
    parked: i64,
) -> i64 {
    (high_watermark - start_offset - delivery_complete_count).max(0) + parked
}

/// One share-partition.
#[derive(Clone, Debug)]
pub struct SharePartition {
    start_offset: i64,
    /// The first offset never taken into the window.
    end_offset: i64,
    /// Offsets in `[start_offset, end_offset)`; a missing one is not a record (a gap).
    records: BTreeMap<i64, InFlight>,
    settings: ShareSettings,
    /// Offsets whose persisted state changed since the last `take_update`.
    dirty: BTreeSet<i64>,
    /// Whether the start offset moved since the last `take_update`.
    start_moved: bool,
    /// Records waiting for the dead-letter topic, in offset order (window and parked).
    archiving: BTreeSet<i64>,
    /// Parked records: below `start_offset`, not finished (see the module doc).
    parked: BTreeMap<i64, InFlight>,
    /// Parked offsets (or offsets that left the index) whose persisted state changed since the
    /// last `take_update`; all below `start_offset`.
    parked_dirty: BTreeSet<i64>,
    /// The leader epoch of the data partition this state was loaded under and the state epoch
    /// it was loaded at: the owner of the durable state refuses writes from older ones.
    epochs: LoadEpochs,
    /// The dead-letter batch in flight as last written to the owner (or found there at load):
    /// carried for `dlq`, not read by this state machine.
    dead_letter_intent: Option<DeadLetterIntent>,
}

/// The epochs a share-partition was loaded under (see `SharePartition::epochs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadEpochs {
    pub leader_epoch: i32,
    pub state_epoch: i32,
}

impl SharePartition {
    /// A share-partition that starts reading at `start_offset`.
    pub fn new(start_offset: i64, settings: ShareSettings) -> Self {
        Self {
            start_offset,
            end_offset: start_offset,
            records: BTreeMap::new(),
            settings,
            dirty: BTreeSet::new(),
            start_moved: true,
            archiving: BTreeSet::new(),
            parked: BTreeMap::new(),
            parked_dirty: BTreeSet::new(),
            epochs: LoadEpochs::default(),
            dead_letter_intent: None,
        }
    }

    /// The epochs this state was loaded under.
    pub fn epochs(&self) -> LoadEpochs {
        self.epochs
    }

    pub fn set_epochs(&mut self, epochs: LoadEpochs) {
        self.epochs = epochs;
    }

    /// The dead-letter intent as the owner has it (see the field).
    pub fn dead_letter_intent(&self) -> Option<&DeadLetterIntent> {
        self.dead_letter_intent.as_ref()
    }

    pub fn set_dead_letter_intent(&mut self, intent: Option<DeadLetterIntent>) {
        self.dead_letter_intent = intent;
    }

    /// Rebuilds a share-partition from its persisted state: every record that was acquired is
    /// available again; finished records stay finished.
    pub fn restore(persisted: &PersistedPartition, settings: ShareSettings) -> Self {
        let mut p = Self::new(persisted.start_offset, settings);
        p.start_moved = false;
        let start = persisted.start_offset;
        // A corrupt or foreign batch cannot make the window larger than the settings allow.
        let limit = start.saturating_add(i64::try_from(p.settings.max_record_locks).unwrap_or(0));
        for b in &persisted.batches {
            if b.first_offset < start && b.state.kept_below_start() {
                let last = b.last_offset.min(start - 1);
                for offset in b.first_offset..=last {
                    if p.parked.len() >= MAX_DELAYED_RECORDS {
                        break;
                    }
                    let record = match b.state {
                        PersistedState::ParkedArchiving(r) => {
                            p.archiving.insert(offset);
                            InFlight::finished(RecordState::Archiving(r), b.delivery_count)
                        }
                        // Its due time is asked about again when it would be handed out.
                        _ => InFlight::available(b.delivery_count, 0),
                    };
                    p.parked.insert(offset, record);
                }
            }
            let first = b.first_offset.max(start);
            let last = b.last_offset.min(limit.saturating_sub(1));
            for offset in first..=last {
                let record = match b.state {
                    PersistedState::Available | PersistedState::Parked => {
                        InFlight::available(b.delivery_count, 0)
                    }
                    PersistedState::Acknowledged => {
                        InFlight::finished(RecordState::Acknowledged, b.delivery_count)
                    }
                    PersistedState::Archived => {
                        InFlight::finished(RecordState::Archived, b.delivery_count)
                    }
                    PersistedState::Archiving(r) | PersistedState::ParkedArchiving(r) => {
                        p.archiving.insert(offset);
                        InFlight::finished(RecordState::Archiving(r), b.delivery_count)
                    }
                };
                p.records.insert(offset, record);
                p.end_offset = p.end_offset.max(offset + 1);
            }
        }
        // Offsets of the window that were never persisted were acquired (or not yet read): they
        // are available, never delivered as far as anyone knows. Reading the log will turn the
        // ones that are not records into gaps.
        for offset in start..p.end_offset {
            p.records
                .entry(offset)
                .or_insert_with(|| InFlight::available(0, 0));
        }
        p.advance_start();
        p
    }

    pub fn settings(&self) -> &ShareSettings {
        &self.settings
    }

    /// Applies changed settings (a group config was altered). The window is not shrunk: a
    /// smaller `max_record_locks` only stops new records from entering it.
    pub fn set_settings(&mut self, settings: ShareSettings) {
        self.settings = settings;
    }

    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// The state and delivery count of `offset`, if it is in the window and a record.
    pub fn state_of(&self, offset: i64) -> Option<(RecordState, u16)> {
        self.get(offset).map(|r| (r.state, r.delivery_count))
    }

    /// How many delayed records are parked out of the window.
    pub fn parked_len(&self) -> usize {
        self.parked.len()
    }

    /// Offsets of the window whose delivery is complete (KIP-1226's `DeliveryCompleteCount`;
    /// see [`PersistedPartition::delivery_complete_count`]).
    pub fn delivery_complete_count(&self) -> i64 {
        let n = self
            .records
            .values()
            .filter(|r| r.state.is_finished())
            .count();
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    /// This share-partition's [`lag`] up to `high_watermark`.
    pub fn lag(&self, high_watermark: i64) -> i64 {
        let parked = i64::try_from(self.parked.len()).unwrap_or(i64::MAX);
        lag(
            high_watermark,
            self.start_offset,
            self.delivery_complete_count(),
            parked,
        )
    }

    /// The in-flight record at `offset`: in the window, or parked below it.
    fn get(&self, offset: i64) -> Option<&InFlight> {
        if offset < self.start_offset {
            self.parked.get(&offset)
        } else {
            self.records.get(&offset)
        }
    }

    fn get_mut(&mut self, offset: i64) -> Option<&mut InFlight> {
        if offset < self.start_offset {
            self.parked.get_mut(&offset)
        } else {
            self.records.get_mut(&offset)
        }
    }

    /// Every in-flight record, parked ones first (they are below the window), in offset order.
    fn all(&self) -> impl Iterator<Item = (&i64, &InFlight)> {
        self.parked.iter().chain(self.records.iter())
    }

    /// Notes that the persisted state of `offset` changed. A parked record that is finished
    /// leaves the index (persisted as finished, so that the owner of the state drops it too).
    fn mark_dirty(&mut self, offset: i64) {
        if offset < self.start_offset {
            self.parked_dirty.insert(offset);
            if self
                .parked
                .get(&offset)
                .is_some_and(|r| r.state.is_finished())
            {
                self.parked.remove(&offset);
            }
        } else {
            self.dirty.insert(offset);
        }
    }

    fn remove(&mut self, offset: i64) -> Option<InFlight> {
        if offset < self.start_offset {
            self.parked.remove(&offset)
        } else {
            self.records.remove(&offset)
        }
    }

    /// The member holding `offset`, if it is acquired.
    pub fn owner_of(&self, offset: i64) -> Option<&MemberId> {
        self.get(offset).and_then(|r| r.owner.as_ref())
    }

    /// How many records are acquired now.
    pub fn acquired_count(&self) -> usize {
        self.all()
            .filter(|(_, r)| r.state == RecordState::Acquired)
            .count()
    }

    /// How many in-flight records are available, acquired, and waiting for the dead-letter topic.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut out = (0, 0, 0);
        for (_, r) in self.all() {
            match r.state {
                RecordState::Available => out.0 += 1,
                RecordState::Acquired => out.1 += 1,
                RecordState::Archiving(_) => out.2 += 1,
                RecordState::Acknowledged | RecordState::Archived => {}
            }
        }
        out
    }

    /// How many offsets the window spans (what `max_record_locks` bounds).
    pub fn window_len(&self) -> usize {
        usize::try_from(self.end_offset - self.start_offset).unwrap_or(0)
    }

    fn window_full(&self, next_new: i64) -> bool {
        let spanned = usize::try_from(next_new - self.start_offset).unwrap_or(usize::MAX);
        spanned >= self.settings.max_record_locks
    }

    /// Where a fetch should read the log from to find something to hand out at `now_ms`: the
    /// first available record that is due, else the end of the window if the window may grow;
    /// `None` if nothing can be acquired now.
    /// Parked records come first; one whose due time is unknown (restored) counts as due, to be
    /// asked about.
    pub fn next_fetch_offset(&self, now_ms: i64) -> Option<i64> {
        let due = self
            .all()
            .find(|(_, r)| r.state == RecordState::Available && r.available_at_ms <= now_ms);
        match due {
            Some((offset, _)) => Some(*offset),
            None if !self.window_full(self.end_offset) => Some(self.end_offset),
            None => None,
        }
    }

    /// The earliest time after `now_ms` at which a held-back available record becomes due.
    pub fn next_due_ms(&self, now_ms: i64) -> Option<i64> {
        self.all()
            .filter(|(_, r)| r.state == RecordState::Available && r.available_at_ms > now_ms)
            .map(|(_, r)| r.available_at_ms)
            .min()
    }

    /// The earliest lock deadline, for the caller's timer.
    pub fn next_lock_deadline_ms(&self) -> Option<i64> {
        self.all()
            .filter(|(_, r)| r.state == RecordState::Acquired)
            .map(|(_, r)| r.lock_deadline_ms)
            .min()
    }

    /// Acquires records for `member` from what the caller read, up to `limit`: whole log batches
    /// until at least its count is acquired (the last batch may take it past), or, in
    /// record-limit mode, exactly up to the count (the last batch may be taken in part): `batches`
    /// are the `(first, last)` offset ranges of the log's batches in order, read from
    /// [`next_fetch_offset`](Self::next_fetch_offset) on (the first batch may begin before it).
    /// Offsets inside the window that fall between batches are not records and become gaps.
    /// `disposition` says, for a record entering the window, whether it may be delivered now.
    ///
    /// Returns the acquired runs, each with its delivery count.
    pub fn acquire(
        &mut self,
        member: &MemberId,
        batches: &[(i64, i64)],
        limit: impl Into<RecordLimit>,
        now_ms: i64,
        mut disposition: impl FnMut(i64) -> Disposition,
    ) -> Vec<AcquiredRange> {
        let RecordLimit { max_records, mode } = limit.into();
        // In record-limit mode the count is checked before each record, else between batches.
        let strict = mode == AcquireMode::RecordLimit;
        let mut acquired: Vec<AcquiredRange> = Vec::new();
        let Some(from) = self.next_fetch_offset(now_ms) else {
            return acquired;
        };
        let mut count = 0usize;
        // Offsets of the window at or after `from` that no batch covered are gaps: the log read
        // from `from` on is contiguous except where there are no records.
        let mut covered_to = from; // everything below has been looked at
        let lock_deadline = now_ms.saturating_add(self.settings.record_lock_duration_ms);
        let push =
            |acquired: &mut Vec<AcquiredRange>, offset: i64, delivery_count: u16| match acquired
                .last_mut()
            {
                Some(last)
                    if last.last_offset + 1 == offset && last.delivery_count == delivery_count =>
                {
                    last.last_offset = offset;
                }
                _ => acquired.push(AcquiredRange {
                    first_offset: offset,
                    last_offset: offset,
                    delivery_count,
                }),
            };
        'batches: for &(first, last) in batches {
            if last < covered_to || first > last {
                continue;
            }
            // Kafka's limit is soft: it is checked between log batches, and a batch begun is
            // acquired whole (ShareFetch: "exceeded for alignment of batch boundaries").
            if count >= max_records {
                break;
            }
            let first = first.max(covered_to);
            self.mark_gaps(covered_to, first);
            for offset in first..=last {
                if strict && count >= max_records {
                    // The rest of this batch is looked at again by the next fetch.
                    break 'batches;
                }
                covered_to = offset + 1;
                if offset < self.end_offset {
                    // In the window, or below it where only parked records are handed out.
                    let Some(r) = self.get(offset) else {
                        continue; // a gap already, or not parked
                    };
                    if r.state != RecordState::Available || r.available_at_ms > now_ms {
                        continue;
                    }
                    // Delays and times to live are not persisted: a record is asked about
                    // again whenever it would be handed out. A delay only holds back a record
                    // never delivered (a released one waits for its backoff instead).
                    let never_delivered = r.delivery_count == 0;
                    match disposition(offset) {
                        Disposition::NotBefore(at_ms) if at_ms > now_ms && never_delivered => {
                            if let Some(r) = self.get_mut(offset) {
                                r.available_at_ms = at_ms;
                            }
                            continue;
                        }
                        Disposition::Expired => {
                            self.archive(offset, Some(ArchiveReason::Expired));
                            continue;
                        }
                        Disposition::Aborted => {
                            self.archive(offset, None);
                            continue;
                        }
                        Disposition::Deliver | Disposition::NotBefore(_) => {}
                    }
                    let Some(r) = self.get_mut(offset) else {
                        continue;
                    };
                    r.state = RecordState::Acquired;
                    r.delivery_count = r.delivery_count.saturating_add(1);
                    r.owner = Some(member.clone());
                    r.lock_deadline_ms = lock_deadline;
                    count += 1;
                    push(&mut acquired, offset, r.delivery_count);
                    continue;
                }
                // A record entering the window.
                if self.window_full(offset) {
                    break 'batches;
                }
                self.end_offset = offset + 1;
                match disposition(offset) {
                    Disposition::NotBefore(at_ms) if at_ms > now_ms => {
                        // Not persisted: after a restart the record is asked about again.
                        self.records.insert(offset, InFlight::available(0, at_ms));
                    }
                    Disposition::Expired => {
                        self.records.insert(offset, InFlight::available(0, 0));
                        self.archive(offset, Some(ArchiveReason::Expired));
                    }
                    Disposition::Aborted => {
                        self.records.insert(offset, InFlight::available(0, 0));
                        self.archive(offset, None);
                    }
                    Disposition::Deliver | Disposition::NotBefore(_) => {
                        self.records.insert(
                            offset,
                            InFlight {
                                state: RecordState::Acquired,
                                delivery_count: 1,
                                owner: Some(member.clone()),
                                lock_deadline_ms: lock_deadline,
                                available_at_ms: 0,
                            },
                        );
                        count += 1;
                        push(&mut acquired, offset, 1);
                    }
                }
            }
        }
        self.advance_start();
        acquired
    }

    /// Turns the window's offsets in `[from, to)` into gaps (they are not records).
    fn mark_gaps(&mut self, from: i64, to: i64) {
        if from >= to {
            return;
        }
        // A parked offset the log skips is no record (any more): it leaves the index.
        let below = to.min(self.start_offset);
        if from < below {
            let gone: Vec<i64> = self
                .parked
                .range(from..below)
                .filter(|(_, r)| r.state == RecordState::Available)
                .map(|(o, _)| *o)
                .collect();
            for offset in gone {
                self.parked.remove(&offset);
                self.parked_dirty.insert(offset);
            }
        }
        let in_window = to.min(self.end_offset);
        if from < in_window {
            let gaps: Vec<i64> = self
                .records
                .range(from..in_window)
                .filter(|(_, r)| r.state == RecordState::Available)
                .map(|(o, _)| *o)
                .collect();
            for offset in gaps {
                self.records.remove(&offset);
                self.dirty.insert(offset);
            }
        }
        // Offsets past the window that the log skips are taken in as gaps (no entry): they cost
        // no memory, and the start offset passes them once the records before them finish.
        if to > self.end_offset {
            self.end_offset = to;
        }
    }

    /// Finishes `offset` as archived, through `Archiving` when there is a reason and a
    /// dead-letter topic.
    fn archive(&mut self, offset: i64, reason: Option<ArchiveReason>) {
        let dead_letter = self.settings.dead_letter;
        let Some(r) = self.get_mut(offset) else {
            return;
        };
        r.owner = None;
        r.state = match reason {
            Some(reason) if dead_letter => RecordState::Archiving(reason),
            _ => RecordState::Archived,
        };
        if matches!(r.state, RecordState::Archiving(_)) {
            self.archiving.insert(offset);
        }
        self.mark_dirty(offset);
    }

    /// Makes an acquired record available again (or archives it at the delivery limit).
    fn make_available(&mut self, offset: i64, now_ms: i64) {
        let Some(delivery_count) = self.get(offset).map(|r| r.delivery_count) else {
            return;
        };
        if delivery_count >= self.settings.delivery_count_limit {
            self.archive(offset, Some(ArchiveReason::DeliveryLimit));
            return;
        }
        let wait = self.settings.backoff_ms(delivery_count);
        let Some(r) = self.get_mut(offset) else {
            return;
        };
        r.state = RecordState::Available;
        r.owner = None;
        r.available_at_ms = now_ms.saturating_add(wait);
        self.mark_dirty(offset);
    }

    /// Applies one member's acknowledgements, all or nothing: every offset must be acquired by
    /// `member` (Gap may also name an offset that is no record), and none may appear twice.
    pub fn acknowledge(
        &mut self,
        member: &MemberId,
        batches: &[AckBatch],
        now_ms: i64,
    ) -> Result<(), AckError> {
        let mut acks: BTreeMap<i64, AckType> = BTreeMap::new();
        for b in batches {
            if b.first_offset > b.last_offset || b.types.is_empty() {
                return Err(AckError::InvalidRequest);
            }
            let span = b.last_offset - b.first_offset + 1;
            if b.types.len() != 1 && i64::try_from(b.types.len()).ok() != Some(span) {
                return Err(AckError::InvalidRequest);
            }
            // Only offsets of the window, or parked below it, can be held; checking the range
            // first keeps the work bounded by the window and the index, whatever range a client
            // names.
            let below = b
                .last_offset
                .saturating_add(1)
                .min(self.start_offset)
                .saturating_sub(b.first_offset);
            if b.last_offset >= self.end_offset
                || usize::try_from(below).is_ok_and(|n| n > self.parked.len())
            {
                let bad = if b.last_offset >= self.end_offset {
                    b.last_offset
                } else {
                    b.first_offset
                };
                return Err(AckError::InvalidRecordState(bad));
            }
            for (i, offset) in (b.first_offset..=b.last_offset).enumerate() {
                let t = if b.types.len() == 1 {
                    b.types[0]
                } else {
                    b.types[i]
                };
                if acks.insert(offset, t).is_some() {
                    return Err(AckError::InvalidRecordState(offset));
                }
                match self.get(offset) {
                    None if t == AckType::Gap => {}
                    Some(r)
                        if r.state == RecordState::Acquired
                            && r.owner.as_deref() == Some(&**member) => {}
                    _ => return Err(AckError::InvalidRecordState(offset)),
                }
            }
        }
        let lock_deadline = now_ms.saturating_add(self.settings.record_lock_duration_ms);
        for (offset, t) in acks {
            match t {
                AckType::Gap => {
                    if self.remove(offset).is_some() {
                        self.mark_dirty(offset);
                    }
                }
                AckType::Accept => {
                    if let Some(r) = self.get_mut(offset) {
                        r.state = RecordState::Acknowledged;
                        r.owner = None;
                        self.mark_dirty(offset);
                    }
                }
                AckType::Release => self.make_available(offset, now_ms),
                AckType::Reject => self.archive(offset, Some(ArchiveReason::Rejected)),
                AckType::Renew => {
                    if let Some(r) = self.get_mut(offset) {
                        r.lock_deadline_ms = lock_deadline;
                    }
                }
            }
        }
        self.advance_start();
        Ok(())
    }

    /// Records whose lock ran out by `now_ms` become available again (or archived at the delivery
    /// limit). Returns how many.
    pub fn expire_locks(&mut self, now_ms: i64) -> usize {
        let expired: Vec<i64> = self
            .all()
            .filter(|(_, r)| r.state == RecordState::Acquired && r.lock_deadline_ms <= now_ms)
            .map(|(o, _)| *o)
            .collect();
        for &offset in &expired {
            self.make_available(offset, now_ms);
        }
        self.advance_start();
        expired.len()
    }

    /// A member left (or its session ended): the records it holds are available again at once,
    /// their delivery counts kept (archived if at the limit). Returns how many.
    pub fn release_member(&mut self, member: &MemberId, now_ms: i64) -> usize {
        let held: Vec<i64> = self
            .all()
            .filter(|(_, r)| {
                r.state == RecordState::Acquired && r.owner.as_deref() == Some(&**member)
            })
            .map(|(o, _)| *o)
            .collect();
        let limit = self.settings.delivery_count_limit;
        for &offset in &held {
            let Some(r) = self.get_mut(offset) else {
                continue;
            };
            if r.delivery_count >= limit {
                self.archive(offset, Some(ArchiveReason::DeliveryLimit));
            } else {
                r.state = RecordState::Available;
                r.owner = None;
                r.available_at_ms = now_ms;
                self.mark_dirty(offset);
            }
        }
        self.advance_start();
        held.len()
    }

    /// The log's start offset moved to `log_start_offset` (retention, DeleteRecords): records
    /// before it are gone and are no longer waited for.
    pub fn log_start_moved(&mut self, log_start_offset: i64) {
        // Parked records the log no longer has are gone (persisted as finished).
        if self
            .parked
            .first_key_value()
            .is_some_and(|(&o, _)| o < log_start_offset)
        {
            let kept = self.parked.split_off(&log_start_offset);
            let gone = std::mem::replace(&mut self.parked, kept);
            self.parked_dirty.extend(gone.into_keys());
            self.archiving.retain(|o| *o >= log_start_offset);
        }
        if log_start_offset <= self.start_offset {
            return;
        }
        self.records = self.records.split_off(&log_start_offset);
        self.archiving = self.archiving.split_off(&log_start_offset);
        self.dirty = self.dirty.split_off(&log_start_offset);
        self.start_offset = log_start_offset;
        self.end_offset = self.end_offset.max(log_start_offset);
        self.start_moved = true;
        self.advance_start();
    }

    /// Moves the start offset to `offset`, forgetting every in-flight record
    /// (AlterShareGroupOffsets, which Kafka allows only while the group has no members).
    pub fn reset_start(&mut self, offset: i64) {
        self.records.clear();
        self.archiving.clear();
        self.dirty.clear();
        self.parked.clear();
        self.parked_dirty.clear();
        self.start_offset = offset;
        self.end_offset = offset;
        self.start_moved = true;
    }

    /// The records waiting for the dead-letter topic: `(offset, reason, delivery count)`.
    pub fn pending_dead_letters(&self) -> Vec<(i64, ArchiveReason, u16)> {
        self.archiving
            .iter()
            .filter_map(|o| match self.get(*o) {
                Some(InFlight {
                    state: RecordState::Archiving(reason),
                    delivery_count,
                    ..
                }) => Some((*o, *reason, *delivery_count)),
                _ => None,
            })
            .collect()
    }

    /// The records at `offsets` are in the dead-letter topic now: they are archived.
    pub fn dead_lettered(&mut self, offsets: &[i64]) {
        for &offset in offsets {
            if !self.archiving.remove(&offset) {
                continue;
            }
            if let Some(r) = self.get_mut(offset) {
                r.state = RecordState::Archived;
                self.mark_dirty(offset);
            }
        }
        self.advance_start();
    }

    /// Moves the start offset over the finished prefix of the window, and forgets it; a delayed
    /// record in the way is parked while the index has room.
    fn advance_start(&mut self) {
        let mut start = self.start_offset;
        loop {
            match self.records.first_key_value() {
                Some((&offset, r)) if r.state.is_finished() => {
                    self.records.remove(&offset);
                    start = offset + 1;
                }
                // Held back by its delay (a retry backoff has a delivery count): parked.
                Some((&offset, r))
                    if r.state == RecordState::Available
                        && r.delivery_count == 0
                        && r.available_at_ms > 0
                        && self.parked.len()
                            < self.settings.max_delayed_records.min(MAX_DELAYED_RECORDS) =>
                {
                    if let Some(r) = self.records.remove(&offset) {
                        self.parked.insert(offset, r);
                        self.parked_dirty.insert(offset);
                    }
                    start = offset + 1;
                }
                Some((&offset, _)) => {
                    start = offset;
                    break;
                }
                None => {
                    start = start.max(self.end_offset);
                    break;
                }
            }
        }
        if start != self.start_offset {
            self.start_offset = start;
            self.start_moved = true;
            self.dirty = self.dirty.split_off(&start);
        }
    }

    /// Whether there is a change to persist.
    pub fn has_update(&self) -> bool {
        self.start_moved || !self.dirty.is_empty() || !self.parked_dirty.is_empty()
    }

    /// The changes to persist since the last call: the start offset and the persisted state of
    /// every offset that changed (a gap is persisted as archived). `None` if nothing changed.
    pub fn take_update(&mut self) -> Option<PersistedPartition> {
        if !self.has_update() {
            return None;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let parked = std::mem::take(&mut self.parked_dirty);
        self.start_moved = false;
        // Parked offsets are all below the start offset, window offsets at or above it.
        let batches = self.runs(parked.into_iter().chain(dirty));
        Some(PersistedPartition {
            start_offset: self.start_offset,
            batches,
        })
    }

    /// The whole persisted state (a snapshot).
    pub fn persisted(&self) -> PersistedPartition {
        let offsets: Vec<i64> = self.all().map(|(o, _)| *o).collect();
        PersistedPartition {
            start_offset: self.start_offset,
            batches: self.runs(offsets.into_iter()),
        }
    }

    /// Runs of equal persisted state over `offsets` (ascending). An offset that is not in the
    /// window any more and is above the start offset is a gap, persisted as archived; one below
    /// the start offset that is not parked (any more) is finished, persisted as archived too.
    fn runs(&self, offsets: impl Iterator<Item = i64>) -> Vec<StateBatch> {
        let mut out: Vec<StateBatch> = Vec::new();
        for offset in offsets {
            let parked = offset < self.start_offset;
            let (state, delivery_count) = match self.get(offset) {
                Some(r) => (
                    match r.state {
                        RecordState::Available | RecordState::Acquired if parked => {
                            PersistedState::Parked
                        }
                        RecordState::Available | RecordState::Acquired => PersistedState::Available,
                        RecordState::Acknowledged => PersistedState::Acknowledged,
                        RecordState::Archived => PersistedState::Archived,
                        RecordState::Archiving(reason) if parked => {
                            PersistedState::ParkedArchiving(reason)
                        }
                        RecordState::Archiving(reason) => PersistedState::Archiving(reason),
                    },
                    r.delivery_count,
                ),
                None => (PersistedState::Archived, 0),
            };
            match out.last_mut() {
                Some(last)
                    if last.last_offset + 1 == offset
                        && last.state == state
                        && last.delivery_count == delivery_count =>
                {
                    last.last_offset = offset;
                }
                _ => out.push(StateBatch {
                    first_offset: offset,
                    last_offset: offset,
                    state,
                    delivery_count,
                }),
            }
        }
        out
    }

    /// Applies a persisted update onto a persisted state (replaying the log at start).
    pub fn apply_update(
        state: &mut PersistedPartition,
        update: &PersistedPartition,
        max_record_locks: usize,
    ) {
        let start = update.start_offset.max(state.start_offset);
        let limit = start.saturating_add(i64::try_from(max_record_locks).unwrap_or(0));
        let mut offsets: BTreeMap<i64, (PersistedState, u16)> = BTreeMap::new();
        let mut below = 0usize;
        for b in state.batches.iter().chain(update.batches.iter()) {
            // Below the start offset only parked records are kept; an update that says one is
            // finished drops it. Work is bounded by the index, whatever the batch's range.
            if b.first_offset < start {
                let last = b.last_offset.min(start - 1);
                if b.state.kept_below_start() {
                    for offset in b.first_offset..=last {
                        if below >= MAX_DELAYED_RECORDS {
                            break;
                        }
                        if offsets
                            .insert(offset, (b.state, b.delivery_count))
                            .is_none()
                        {
                            below += 1;
                        }
                    }
                } else {
                    let gone: Vec<i64> = offsets
                        .range(b.first_offset..=last)
                        .map(|(o, _)| *o)
                        .collect();
                    below -= gone.len().min(below);
                    for o in gone {
                        offsets.remove(&o);
                    }
                }
            }
            for offset in b.first_offset.max(start)..=b.last_offset.min(limit - 1) {
                offsets.insert(offset, (b.state, b.delivery_count));
            }
        }
        let mut batches: Vec<StateBatch> = Vec::new();
        for (offset, (s, d)) in offsets {
            match batches.last_mut() {
                Some(last)
                    if last.last_offset + 1 == offset
                        && last.state == s
                        && last.delivery_count == d =>
                {
                    last.last_offset = offset;
                }
                _ => batches.push(StateBatch {
                    first_offset: offset,
                    last_offset: offset,
                    state: s,
                    delivery_count: d,
                }),
            }
        }
        state.start_offset = start;
        state.batches = batches;
    }
}

#[cfg(test)]
mod tests;
