//! The transaction state machine of one transactional id, as Kafka's `TransactionMetadata` and
//! `TransactionCoordinator` decide it: pure (time and producer ids passed in, no IO).
//!
//! Every request is judged against the current metadata and, when accepted, yields the metadata
//! to log (the caller appends it to `__transaction_state` and only then makes it current). The
//! two-phase end of a transaction: EndTxn moves `Ongoing` to `PrepareCommit`/`PrepareAbort`
//! (logged, answered), the markers are written to every partition, then
//! [`complete`] moves it to `CompleteCommit`/`CompleteAbort` (logged) with no partitions.

use std::collections::BTreeSet;

use weir_protocol::ErrorCode;

/// Kafka's transaction states, with the ids its log uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    /// The id in a `__transaction_state` value.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<Self> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        (0..=7).filter_map(Self::from_id).find(|s| s.name() == name)
    }

    /// Markers are being written: the transaction is ending.
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// The metadata of one transactional id (a `__transaction_state` value, plus what Kafka keeps
/// only in memory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump the producer asked for itself (-1: none), so that a
    /// retried EndTxn of protocol 2 or a retried KIP-360 InitProducerId is recognised. A bump that
    /// fences (a new producer's InitProducerId, the timeout abort) resets it, as Kafka does: the
    /// fenced producer must not pass for one retrying and take the new epoch.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions of the ongoing (or ending) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the ongoing transaction started (-1: none).
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// The highest epoch a producer id is used with; at it, the next bump takes a new producer id.
pub const MAX_EPOCH: i16 = i16::MAX - 1;

/// What the coordinator does for an InitProducerId of a transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitOutcome {
    /// Log this metadata (state `Empty`, new epoch) and answer with its producer id and epoch.
    Ready(TxnMetadata),
    /// A transaction of the previous epoch is ongoing: log this (`PrepareAbort`, epoch bumped so
    /// the old producer is fenced), write abort markers, and answer `CONCURRENT_TRANSACTIONS`
    /// (the client retries and then gets `Ready`).
    AbortOngoing(TxnMetadata),
}

/// The producer id and epoch a client expects in an InitProducerId (KIP-360, v3+): -1/-1 when it
/// has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl Expected {
    pub const NONE: Expected = Expected {
        producer_id: -1,
        producer_epoch: -1,
    };
}

/// InitProducerId with a transactional id. `current` is its metadata (`None`: never seen);
/// `new_producer_id` allocates a producer id when one is needed.
pub fn init_producer_id(
    transactional_id: &str,
    current: Option<&TxnMetadata>,
    timeout_ms: i32,
    max_timeout_ms: i32,
    expected: Expected,
    now_ms: i64,
    new_producer_id: &mut dyn FnMut() -> Result<i64, ErrorCode>,
) -> Result<InitOutcome, ErrorCode> {
    if timeout_ms <= 0 || timeout_ms > max_timeout_ms {
        return Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT);
    }
    let Some(cur) = current.filter(|c| c.state != TxnState::Dead) else {
        if expected != Expected::NONE {
            // A producer id the coordinator never gave this transactional id.
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        return Ok(InitOutcome::Ready(TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id: new_producer_id()?,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }));
    };
    if cur.state.is_preparing() || cur.state == TxnState::PrepareEpochFence {
        return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
    }
    if expected != Expected::NONE {
        // KIP-360: the client bumps its own epoch; it must hold the current one (or be retrying
        // the bump it already got, with the epoch before it).
        let same_id = expected.producer_id == cur.producer_id;
        let current_epoch = expected.producer_epoch == cur.producer_epoch;
        let retried =
            expected.producer_epoch == cur.last_producer_epoch && cur.state == TxnState::Empty;
        if !same_id {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        if retried {
            return Ok(InitOutcome::Ready(cur.clone()));
        }
        if !current_epoch {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
    }
    let mut next = cur.clone();
    next.timeout_ms = timeout_ms;
    next.last_update_ms = now_ms;
    bump_epoch(&mut next, new_producer_id)?;
    if expected == Expected::NONE {
        next.last_producer_epoch = -1;
    }
    if cur.state == TxnState::Ongoing {
        next.state = TxnState::PrepareAbort;
        return Ok(InitOutcome::AbortOngoing(next));
    }
    next.state = TxnState::Empty;
    next.partitions.clear();
    next.start_ms = -1;
    Ok(InitOutcome::Ready(next))
}

/// A new epoch for `meta`, or a new producer id at epoch 0 when the epoch is exhausted.
fn bump_epoch(
    meta: &mut TxnMetadata,
    new_producer_id: &mut dyn FnMut() -> Result<i64, ErrorCode>,
) -> Result<(), ErrorCode> {
    if meta.producer_epoch >= MAX_EPOCH {
        meta.producer_id = new_producer_id()?;
        meta.producer_epoch = 0;
        meta.last_producer_epoch = -1;
    } else {
        meta.last_producer_epoch = meta.producer_epoch;
        meta.producer_epoch += 1;
    }
    Ok(())
}

/// The checks every transactional request of a producer shares: the transactional id is known,
/// with this producer id, at this epoch.
fn check_producer(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<&TxnMetadata, ErrorCode> {
    let cur = current
        .filter(|c| c.state != TxnState::Dead)
        .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
    if cur.producer_id != producer_id {
        return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    }
    if cur.producer_epoch != producer_epoch {
        return Err(ErrorCode::PRODUCER_FENCED);
    }
    Ok(cur)
}

/// AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is the group's offsets partition).
/// `Ok(None)`: nothing to log (every partition is already in the ongoing transaction).
pub fn add_partitions(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
    now_ms: i64,
) -> Result<Option<TxnMetadata>, ErrorCode> {
    let cur = check_producer(current, producer_id, producer_epoch)?;
    match cur.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS)
        }
        TxnState::Dead => return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING),
        TxnState::Ongoing if partitions.iter().all(|p| cur.partitions.contains(p)) => {
            return Ok(None)
        }
        _ => {}
    }
    let mut next = cur.clone();
    if next.state != TxnState::Ongoing {
        next.state = TxnState::Ongoing;
        next.partitions.clear();
        next.start_ms = now_ms;
    }
    next.partitions.extend(partitions.iter().cloned());
    next.last_update_ms = now_ms;
    Ok(Some(next))
}

/// Whether every partition is in the ongoing transaction of this producer (AddPartitionsToTxn
/// v4+ `verify_only`, KIP-890 part 1): per partition, `NONE` or `INVALID_TXN_STATE`.
pub fn verify_partitions(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    partition: &(String, i32),
) -> ErrorCode {
    match check_producer(current, producer_id, producer_epoch) {
        Err(e) => e,
        Ok(cur) if cur.state == TxnState::Ongoing && cur.partitions.contains(partition) => {
            ErrorCode::NONE
        }
        Ok(_) => ErrorCode::INVALID_TXN_STATE,
    }
}

/// What an accepted EndTxn does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndOutcome {
    /// Log this (`PrepareCommit`/`PrepareAbort`), write the markers, then [`complete`].
    Prepare(TxnMetadata),
    /// The transaction already ended this way (a retry): answer with this producer id and epoch.
    AlreadyDone {
        producer_id: i64,
        producer_epoch: i16,
    },
}

/// EndTxn. `v2`: transaction protocol 2 (EndTxn v5+, KIP-890): the epoch is bumped at every end,
/// and the answer carries the epoch for the next transaction.
pub fn end_txn(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    v2: bool,
    now_ms: i64,
    new_producer_id: &mut dyn FnMut() -> Result<i64, ErrorCode>,
) -> Result<EndOutcome, ErrorCode> {
    let done_state = if commit {
        TxnState::CompleteCommit
    } else {
        TxnState::CompleteAbort
    };
    let prepare_state = if commit {
        TxnState::PrepareCommit
    } else {
        TxnState::PrepareAbort
    };
    if v2 {
        // A retry of an EndTxn already applied: the client still holds the epoch before the bump.
        if let Some(cur) = current.filter(|c| c.producer_id == producer_id) {
            let retry =
                cur.last_producer_epoch == producer_epoch && cur.producer_epoch != producer_epoch;
            if retry {
                if cur.state == done_state {
                    return Ok(EndOutcome::AlreadyDone {
                        producer_id: cur.producer_id,
                        producer_epoch: cur.producer_epoch,
                    });
                }
                if cur.state == prepare_state {
                    return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
                }
            }
        }
    }
    let cur = check_producer(current, producer_id, producer_epoch)?;
    match cur.state {
        TxnState::Ongoing => {}
        // Protocol 2: the client already holds the epoch this end bumped to and is ending its
        // next transaction while the last one's markers are still being written (a remote
        // leader is slower): it waits, whichever way it ends, as Kafka's coordinator answers
        // during the prepare states.
        s if v2 && s.is_preparing() => return Err(ErrorCode::CONCURRENT_TRANSACTIONS),
        s if s.is_preparing() || s == TxnState::PrepareEpochFence => {
            return Err(if s == prepare_state {
                ErrorCode::CONCURRENT_TRANSACTIONS
            } else {
                ErrorCode::INVALID_TXN_STATE
            })
        }
        s if s == done_state && !v2 => {
            return Ok(EndOutcome::AlreadyDone {
                producer_id: cur.producer_id,
                producer_epoch: cur.producer_epoch,
            })
        }
        // Protocol 2 lets a producer abort when nothing was added (it cannot know whether a
        // partition leader added one for it).
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort if v2 && !commit => {}
        _ => return Err(ErrorCode::INVALID_TXN_STATE),
    }
    let mut next = cur.clone();
    if next.state != TxnState::Ongoing {
        next.partitions.clear();
        next.start_ms = now_ms;
    }
    next.state = prepare_state;
    next.last_update_ms = now_ms;
    if v2 {
        bump_epoch(&mut next, new_producer_id)?;
    }
    Ok(EndOutcome::Prepare(next))
}

/// The transaction whose markers are all written: `CompleteCommit`/`CompleteAbort`, no
/// partitions. `None` if `current` is not preparing.
pub fn complete(current: &TxnMetadata, now_ms: i64) -> Option<TxnMetadata> {
    let state = match current.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        TxnState::PrepareAbort => TxnState::CompleteAbort,
        _ => return None,
    };
    let mut next = current.clone();
    next.state = state;
    next.partitions.clear();
    next.start_ms = -1;
    next.last_update_ms = now_ms;
    Some(next)
}

/// Whether the coordinator forgets this transactional id (Kafka's `transactional.id.expiration.ms`):
/// no transaction open or ending, and nothing asked of it for `expiration_ms`.
pub fn is_expired(m: &TxnMetadata, now_ms: i64, expiration_ms: i64) -> bool {
    matches!(
        m.state,
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
    ) && now_ms.saturating_sub(m.last_update_ms) >= expiration_ms
}

/// An ongoing transaction past its timeout, aborted by the coordinator: `PrepareAbort` with the
/// epoch bumped, so that the producer that let it time out is fenced (as Kafka's
/// `abortTimedOutTransactions`). `None` if it has not timed out.
pub fn abort_if_timed_out(
    current: &TxnMetadata,
    now_ms: i64,
    new_producer_id: &mut dyn FnMut() -> Result<i64, ErrorCode>,
) -> Option<TxnMetadata> {
    if current.state != TxnState::Ongoing
        || current
            .start_ms
            .saturating_add(i64::from(current.timeout_ms))
            > now_ms
    {
        return None;
    }
    let mut next = current.clone();
    bump_epoch(&mut next, new_producer_id).ok()?;
    next.last_producer_epoch = -1;
    next.state = TxnState::PrepareAbort;
    next.last_update_ms = now_ms;
    Some(next)
}

/// Maps errors for request versions that predate them: PRODUCER_FENCED exists from
/// InitProducerId v4, AddPartitionsToTxn v2, AddOffsetsToTxn v2, EndTxn v2 and TxnOffsetCommit
/// v3; older clients get INVALID_PRODUCER_EPOCH, as Kafka answers them.
pub fn for_version(error: ErrorCode, version: i16, fenced_since: i16) -> ErrorCode {
    if error == ErrorCode::PRODUCER_FENCED && version < fenced_since {
        ErrorCode::INVALID_PRODUCER_EPOCH
    } else {
        error
    }
}

#[cfg(test)]
mod tests;
