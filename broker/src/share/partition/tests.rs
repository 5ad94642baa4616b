use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn member(name: &str) -> MemberId {
    Arc::from(name)
}

fn settings() -> ShareSettings {
    ShareSettings {
        record_lock_duration_ms: 1_000,
        delivery_count_limit: 3,
        max_record_locks: 100,
        ..ShareSettings::default()
    }
}

fn deliver(_: i64) -> Disposition {
    Disposition::Deliver
}

/// Offsets below `end` delayed until `until_ms`; the others delivered at once.
fn delayed_below(end: i64, until_ms: i64) -> impl Fn(i64) -> Disposition + Copy {
    move |o| {
        if o < end {
            Disposition::NotBefore(until_ms)
        } else {
            Disposition::Deliver
        }
    }
}

fn offsets(ranges: &[AcquiredRange]) -> Vec<i64> {
    ranges
        .iter()
        .flat_map(|r| r.first_offset..=r.last_offset)
        .collect()
}

fn ack(first: i64, last: i64, t: AckType) -> AckBatch {
    AckBatch {
        first_offset: first,
        last_offset: last,
        types: vec![t],
    }
}

#[test]
fn two_members_never_get_the_same_record() {
    let mut p = SharePartition::new(0, settings());
    let (a, b) = (member("a"), member("b"));
    let log = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)];
    let got_a = p.acquire(&a, &log, 4, 0, deliver);
    assert_eq!(offsets(&got_a), vec![0, 1, 2, 3]);
    // b reads from the first available record on.
    let from = p.next_fetch_offset(0);
    assert_eq!(from, Some(4));
    let got_b = p.acquire(&b, &log, 100, 0, deliver);
    assert_eq!(offsets(&got_b), (4..=9).collect::<Vec<_>>());
    assert_eq!(p.next_fetch_offset(0), Some(10));
    assert!(p.acquire(&a, &log, 100, 0, deliver).is_empty());
    assert_eq!(p.owner_of(2).map(|m| &**m), Some("a"));
    assert_eq!(p.owner_of(5).map(|m| &**m), Some("b"));
}

#[test]
fn a_log_batch_is_acquired_whole_even_past_max_records() {
    let mut p = SharePartition::new(0, settings());
    let a = member("a");
    // Kafka's MaxRecords "can be exceeded for alignment of batch boundaries".
    let got = p.acquire(&a, &[(0, 9), (10, 19)], 4, 0, deliver);
    assert_eq!(offsets(&got), (0..=9).collect::<Vec<_>>());
    let got = p.acquire(&a, &[(10, 19)], 0, 0, deliver);
    assert!(got.is_empty(), "a limit of 0 acquires nothing");
}

fn strict(max_records: usize) -> RecordLimit {
    RecordLimit {
        max_records,
        mode: AcquireMode::RecordLimit,
    }
}

#[test]
fn record_limit_mode_splits_a_log_batch_and_takes_the_rest_later() {
    let mut p = SharePartition::new(0, settings());
    let (a, b) = (member("a"), member("b"));
    let log = [(0, 9), (10, 19)];
    let got = p.acquire(&a, &log, strict(4), 0, deliver);
    assert_eq!(offsets(&got), vec![0, 1, 2, 3]);
    // The rest of the batch was not looked at: it is where the next read starts.
    assert_eq!(p.next_fetch_offset(0), Some(4));
    let got = p.acquire(&b, &log, strict(7), 0, deliver);
    assert_eq!(offsets(&got), (4..=10).collect::<Vec<_>>());
    // Released records inside the window count against the limit too.
    p.acknowledge(&a, &[ack(0, 3, AckType::Release)], 0)
        .expect("release");
    let got = p.acquire(&a, &log, strict(2), 0, deliver);
    assert_eq!(offsets(&got), vec![0, 1]);
    assert_eq!(p.state_of(2), Some((RecordState::Available, 1)));
    let got = p.acquire(&a, &log, strict(100), 0, deliver);
    assert_eq!(
        offsets(&got),
        [2, 3].into_iter().chain(11..=19).collect::<Vec<_>>()
    );
    assert!(p.acquire(&a, &log, strict(0), 0, deliver).is_empty());
}

#[test]
fn accepting_the_prefix_moves_the_start_offset() {
    let mut p = SharePartition::new(0, settings());
    let a = member("a");
    p.acquire(&a, &[(0, 4)], 10, 0, deliver);
    p.acknowledge(&a, &[ack(1, 2, AckType::Accept)], 0)
        .expect("ack");
    assert_eq!(p.start_offset(), 0, "offset 0 is still in flight");
    p.acknowledge(&a, &[ack(0, 0, AckType::Accept)], 0)
        .expect("ack");
    assert_eq!(p.start_offset(), 3);
    assert_eq!(p.state_of(3), Some((RecordState::Acquired, 1)));
}

#[test]
fn acknowledging_a_record_not_held_is_refused_and_changes_nothing() {
    let mut p = SharePartition::new(0, settings());
    let (a, b) = (member("a"), member("b"));
    p.acquire(&a, &[(0, 0), (1, 1)], 1, 0, deliver);
    p.acquire(&b, &[(0, 0), (1, 1)], 1, 0, deliver);
    let err = p.acknowledge(
        &a,
        &[ack(0, 0, AckType::Accept), ack(1, 1, AckType::Accept)],
        0,
    );
    assert_eq!(err, Err(AckError::InvalidRecordState(1)));
    assert_eq!(p.state_of(0), Some((RecordState::Acquired, 1)));
    assert_eq!(p.acknowledge(&a, &[ack(0, 0, AckType::Accept)], 0), Ok(()));
    assert_eq!(
        p.acknowledge(&a, &[ack(0, 0, AckType::Accept)], 0),
        Err(AckError::InvalidRecordState(0)),
        "a second acknowledgement of a finished record"
    );
    assert_eq!(
        p.acknowledge(&b, &[ack(1, 5, AckType::Accept)], 0),
        Err(AckError::InvalidRecordState(5)),
        "past the window"
    );
    assert_eq!(
        p.acknowledge(
            &b,
            &[AckBatch {
                first_offset: 1,
                last_offset: 1,
                types: vec![AckType::Accept, AckType::Accept],
            }],
            0
        ),
        Err(AckError::InvalidRequest)
    );
}

#[test]
fn released_records_come_back_until_the_delivery_limit() {
    let mut p = SharePartition::new(0, settings());
    let a = member("a");
    for round in 1..=3u16 {
        let got = p.acquire(&a, &[(0, 0)], 10, 0, deliver);
        assert_eq!(
            got,
            vec![AcquiredRange {
                first_offset: 0,
                last_offset: 0,
                delivery_count: round
            }]
        );
        p.acknowledge(&a, &[ack(0, 0, AckType::Release)], 0)
            .expect("release");
    }
    assert_eq!(p.start_offset(), 1, "archived at the third release");
    assert!(p.acquire(&a, &[(0, 0)], 10, 0, deliver).is_empty());
}

#[test]
fn a_lock_that_runs_out_makes_the_record_available() {
    let mut p = SharePartition::new(0, settings());
    let (a, b) = (member("a"), member("b"));
    p.acquire(&a, &[(0, 1)], 10, 0, deliver);
    assert_eq!(p.expire_locks(999), 0);
    assert_eq!(p.expire_locks(1_000), 2);
    let got = p.acquire(&b, &[(0, 1)], 10, 1_000, deliver);
    assert_eq!(
        got,
        vec![AcquiredRange {
            first_offset: 0,
            last_offset: 1,
            delivery_count: 2
        }]
    );
    assert_eq!(
        p.acknowledge(&a, &[ack(0, 0, AckType::Accept)], 1_000),
        Err(AckError::InvalidRecordState(0)),
        "the first holder lost it"
    );
    // Renew keeps the lock.
    p.acknowledge(&b, &[ack(0, 0, AckType::Renew)], 1_500)
        .expect("renew");
    assert_eq!(p.expire_locks(2_000), 1, "only offset 1 timed out");
    assert_eq!(p.state_of(0), Some((RecordState::Acquired, 2)));
}

#[test]
fn the_window_is_bounded_by_max_record_locks() {
    let mut p = SharePartition::new(0, settings());
    let a = member("a");
    let got = p.acquire(&a, &[(0, 999)], 1_000, 0, deliver);
    assert_eq!(offsets(&got).len(), 100);
    assert_eq!(p.next_fetch_offset(0), None);
    p.acknowledge(&a, &[ack(0, 9, AckType::Accept)], 0)
        .expect("ack");
    assert_eq!(p.next_fetch_offset(0), Some(100));
    let got = p.acquire(&a, &[(0, 999)], 1_000, 0, deliver);
    assert_eq!(offsets(&got), (100..110).collect::<Vec<_>>());
}

#[test]
fn offsets_between_batches_are_gaps() {
    let mut p = SharePartition::new(0, settings());
    let a = member("a");
    let got = p.acquire(&a, &[(0, 1), (5, 6)], 10, 0, deliver);
    assert_eq!(offsets(&got), vec![0, 1, 5, 6]);
    p.acknowledge(&a, &[ack(0, 1, AckType::Accept)], 0)
        .expect("ack");
    assert_eq!(p.start_offset(), 5, "2..=4 are not records");
    // A Gap acknowledgement of an acquired offset archives it.
    p.acknowledge(
        &a,
        &[AckBatch {
            first_offset: 5,
            last_offset: 6,
            types: vec![AckType::Gap, AckType::Accept],
        }],
        0,
    )
    .expect("ack");
    assert_eq!(p.start_offset(), 7);
}

#[test]
fn rejected_records_wait_for_the_dead_letter_topic_when_there_is_one() {
    let mut p = SharePartition::new(
        0,
        ShareSettings {
            dead_letter: true,
            ..settings()
        },
    );
    let a = member("a");
    p.acquire(&a, &[(0, 2)], 10, 0, deliver);
    p.acknowledge(
        &a,
        &[
            ack(0, 0, AckType::Reject),
            ack(1, 1, AckType::Accept),
            ack(2, 2, AckType::Release),
        ],
        0,
    )
    .expect("ack");
    assert_eq!(p.start_offset(), 0);
    assert_eq!(
        p.pending_dead_letters(),
        vec![(0, ArchiveReason::Rejected, 1)]
    );
    // Survives a restart.
    let mut p = SharePartition::restore(&p.persisted(), p.settings().clone());
    assert_eq!(
        p.pending_dead_letters(),
        vec![(0, ArchiveReason::Rejected, 1)]
    );
    p.dead_lettered(&[0]);
    assert_eq!(p.start_offset(), 2);
    assert!(p.pending_dead_letters().is_empty());
}

#[test]
fn a_restart_makes_acquired_records_available_and_keeps_finished_ones() {
    let mut p = SharePartition::new(10, settings());
    let a = member("a");
    p.acquire(&a, &[(10, 15)], 10, 0, deliver);
    p.acknowledge(
        &a,
        &[ack(11, 11, AckType::Accept), ack(12, 12, AckType::Release)],
        0,
    )
    .expect("ack");
    let mut persisted = PersistedPartition::default();
    let update = p.take_update().expect("an update");
    SharePartition::apply_update(&mut persisted, &update, 100);

    let mut q = SharePartition::restore(&persisted, settings());
    assert_eq!(q.start_offset(), 10);
    let got = q.acquire(&a, &[(10, 15)], 10, 0, deliver);
    // 10 was acquired (delivery count not persisted), 11 accepted, 12 released once.
    assert_eq!(
        got,
        vec![
            AcquiredRange {
                first_offset: 10,
                last_offset: 10,
                delivery_count: 1
            },
            AcquiredRange {
                first_offset: 12,
                last_offset: 12,
                delivery_count: 2
            },
            AcquiredRange {
                first_offset: 13,
                last_offset: 15,
                delivery_count: 1
            },
        ]
    );
}

#[test]
fn retry_backoff_grows_with_the_delivery_count() {
    let s = ShareSettings {
        retry_backoff_ms: 100,
        retry_backoff_max_ms: 350,
        delivery_count_limit: 10,
        ..settings()
    };
    assert_eq!(
        (1..=5).map(|d| s.backoff_ms(d)).collect::<Vec<_>>(),
        vec![100, 200, 350, 350, 350]
    );
    let mut p = SharePartition::new(0, s);
    let a = member("a");
    p.acquire(&a, &[(0, 0)], 1, 0, deliver);
    p.acknowledge(&a, &[ack(0, 0, AckType::Release)], 0)
        .expect("release");
    assert!(p.acquire(&a, &[(0, 0)], 1, 99, deliver).is_empty());
    assert_eq!(p.next_due_ms(99), Some(100));
    assert_eq!(offsets(&p.acquire(&a, &[(0, 0)], 1, 100, deliver)), vec![0]);
    p.acknowledge(&a, &[ack(0, 0, AckType::Release)], 100)
        .expect("release");
    assert!(p.acquire(&a, &[(0, 0)], 1, 299, deliver).is_empty());
    assert_eq!(offsets(&p.acquire(&a, &[(0, 0)], 1, 300, deliver)), vec![0]);
}

#[test]
fn delayed_and_expired_records() {
    let mut p = SharePartition::new(0, settings());
    let a = member("a");
    let disposition = |o: i64| match o {
        1 => Disposition::NotBefore(500),
        2 => Disposition::Expired,
        _ => Disposition::Deliver,
    };
    let got = p.acquire(&a, &[(0, 3)], 10, 0, disposition);
    assert_eq!(offsets(&got), vec![0, 3]);
    p.acknowledge(&a, &[ack(0, 0, AckType::Accept)], 0)
        .expect("ack");
    // The delayed record does not hold the start offset: it is parked below it.
    assert_eq!(p.start_offset(), 3);
    assert_eq!(p.parked_len(), 1);
    assert_eq!(p.next_due_ms(0), Some(500));
    assert!(p.acquire(&a, &[(1, 3)], 10, 499, disposition).is_empty());
    let got = p.acquire(&a, &[(1, 3)], 10, 500, disposition);
    assert_eq!(offsets(&got), vec![1]);
    // A delayed record restored from the log is asked about again.
    let mut q = SharePartition::new(0, settings());
    q.acquire(&a, &[(0, 0), (1, 1)], 1, 0, deliver);
    let mut q = SharePartition::restore(&q.persisted(), settings());
    assert_eq!(
        offsets(&q.acquire(&a, &[(0, 1)], 10, 0, disposition)),
        vec![0]
    );
    assert_eq!(q.next_due_ms(0), Some(500));
}

/// Delayed records that reach the start of the window are parked, so later records flow past
/// them; they are handed out when due and acknowledged from the index.
#[test]
fn delayed_records_are_parked_and_do_not_hold_the_window() {
    let s = ShareSettings {
        max_record_locks: 4,
        max_delayed_records: 10,
        ..settings()
    };
    let mut p = SharePartition::new(0, s);
    let a = member("a");
    // Offsets 0-7 are delayed until 1000; 8-11 are not.
    let disposition = delayed_below(8, 1_000);
    let log = [(0, 3), (4, 7), (8, 11)];
    let mut got = Vec::new();
    for _ in 0..4 {
        let Some(from) = p.next_fetch_offset(0) else {
            break;
        };
        let read: Vec<(i64, i64)> = log.iter().copied().filter(|&(_, l)| l >= from).collect();
        got.extend(offsets(&p.acquire(&a, &read, 10, 0, disposition)));
    }
    assert_eq!(got, vec![8, 9, 10, 11]);
    assert_eq!(p.parked_len(), 8);
    assert_eq!(p.start_offset(), 8);
    assert_eq!(p.next_due_ms(0), Some(1_000));
    p.acknowledge(&a, &[ack(8, 11, AckType::Accept)], 0)
        .expect("ack");
    // Due: handed out from the index, then acknowledged like any record.
    assert_eq!(p.next_fetch_offset(1_000), Some(0));
    let got = p.acquire(
        &a,
        &[(0, 2), (3, 3), (4, 7), (8, 11)],
        3,
        1_000,
        disposition,
    );
    assert_eq!(offsets(&got), vec![0, 1, 2]);
    assert_eq!(got[0].delivery_count, 1);
    p.acknowledge(&a, &[ack(0, 0, AckType::Accept)], 1_000)
        .expect("accept a parked record");
    p.acknowledge(&a, &[ack(1, 1, AckType::Release)], 1_000)
        .expect("release a parked record");
    assert!(matches!(
        p.acknowledge(&a, &[ack(3, 3, AckType::Accept)], 1_000),
        Err(AckError::InvalidRecordState(3))
    ));
    assert_eq!(p.state_of(0), None, "finished: out of the index");
    assert_eq!(p.state_of(1), Some((RecordState::Available, 1)));
    assert_eq!(p.parked_len(), 7);
    // A range naming more offsets below the window than are parked is refused outright.
    assert!(matches!(
        p.acknowledge(&a, &[ack(-1_000_000, 2, AckType::Accept)], 1_000),
        Err(AckError::InvalidRecordState(-1_000_000))
    ));
}

#[test]
fn a_full_index_leaves_delayed_records_in_the_window() {
    let s = ShareSettings {
        max_record_locks: 4,
        max_delayed_records: 2,
        ..settings()
    };
    let mut p = SharePartition::new(0, s);
    let a = member("a");
    let delayed = delayed_below(8, 1_000);
    let log = [(0, 11)];
    for _ in 0..4 {
        if let Some(from) = p.next_fetch_offset(0) {
            assert!(
                p.acquire(&a, &log, 10, 0, delayed).is_empty(),
                "from {from}"
            );
        }
    }
    // Two parked; the window holds four more delayed records and is full.
    assert_eq!(p.parked_len(), 2);
    assert_eq!(p.start_offset(), 2);
    assert_eq!(p.next_fetch_offset(0), None);
    // Once they are due, everything flows again.
    let got = p.acquire(&a, &log, 100, 1_000, delayed);
    assert_eq!(offsets(&got), vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn parked_records_survive_a_restart_and_retention() {
    let s = ShareSettings {
        max_delayed_records: 10,
        ..settings()
    };
    let mut p = SharePartition::new(0, s.clone());
    let a = member("a");
    let delayed = delayed_below(3, 5_000);
    let got = p.acquire(&a, &[(0, 4)], 10, 0, delayed);
    assert_eq!(offsets(&got), vec![3, 4]);
    p.acknowledge(&a, &[ack(3, 4, AckType::Accept)], 0)
        .expect("ack");
    let mut persisted = PersistedPartition::default();
    let update = p.take_update().expect("an update");
    SharePartition::apply_update(&mut persisted, &update, 100);
    assert_eq!(persisted.start_offset, 5);
    let mut q = SharePartition::restore(&persisted, s.clone());
    assert_eq!(q.parked_len(), 3);
    // Their due times were not persisted: asked again, still not due.
    assert_eq!(q.next_fetch_offset(0), Some(0));
    assert!(q.acquire(&a, &[(0, 4)], 10, 0, delayed).is_empty());
    assert_eq!(q.next_due_ms(0), Some(5_000));
    // Retention drops the first two; the owner of the state learns it.
    q.log_start_moved(2);
    assert_eq!(q.parked_len(), 1);
    let update = q.take_update().expect("an update");
    SharePartition::apply_update(&mut persisted, &update, 100);
    let r = SharePartition::restore(&persisted, s);
    assert_eq!(r.parked_len(), 1);
    assert_eq!(r.state_of(2), Some((RecordState::Available, 0)));
}

#[test]
fn log_start_movement_drops_what_is_gone() {
    let mut p = SharePartition::new(0, settings());
    let a = member("a");
    p.acquire(&a, &[(0, 9)], 10, 0, deliver);
    p.log_start_moved(5);
    assert_eq!(p.start_offset(), 5);
    assert_eq!(
        p.acknowledge(&a, &[ack(2, 2, AckType::Accept)], 0),
        Err(AckError::InvalidRecordState(2))
    );
    p.log_start_moved(50);
    assert_eq!(p.start_offset(), 50);
    assert_eq!(p.next_fetch_offset(0), Some(50));
}

// ----------------------------------------------------------------------------------------------
// Property test: any sequence of fetches, acknowledgements, timeouts, member departures and
// restarts against a model of who holds what.
// ----------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Records (and maybe a gap after them) are appended to the log; with `delay_ms`, each is
    /// not to be delivered before that long after now (delayed delivery).
    Produce {
        records: i64,
        gap: i64,
        delay_ms: Option<i64>,
    },
    Fetch {
        member: usize,
        max: usize,
        mode: AcquireMode,
    },
    /// Acknowledge the `pick`-th held record of `member` and up to `len` after it.
    Ack {
        member: usize,
        pick: usize,
        len: usize,
        kind: u8,
    },
    /// An acknowledgement of an arbitrary offset (mostly invalid).
    StrayAck {
        member: usize,
        offset: i64,
        kind: u8,
    },
    Advance {
        ms: i64,
    },
    Leave {
        member: usize,
    },
    Restart,
    /// The pending dead letters reach the dead-letter topic.
    DeadLetter,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (
            1i64..6,
            prop_oneof![4 => Just(0i64), 1 => 1i64..3],
            prop_oneof![2 => Just(None), 1 => (1i64..4_000).prop_map(Some)],
        )
            .prop_map(|(records, gap, delay_ms)| Op::Produce { records, gap, delay_ms }),
        4 => (
            0usize..3,
            1usize..6,
            prop_oneof![Just(AcquireMode::BatchOptimized), Just(AcquireMode::RecordLimit)],
        )
            .prop_map(|(member, max, mode)| Op::Fetch { member, max, mode }),
        4 => (0usize..3, 0usize..8, 1usize..4, 0u8..5)
            .prop_map(|(member, pick, len, kind)| Op::Ack { member, pick, len, kind }),
        1 => (0usize..3, -2i64..40, 0u8..5)
            .prop_map(|(member, offset, kind)| Op::StrayAck { member, offset, kind }),
        2 => (0i64..1_500).prop_map(|ms| Op::Advance { ms }),
        1 => (0usize..3).prop_map(|member| Op::Leave { member }),
        1 => Just(Op::Restart),
        1 => Just(Op::DeadLetter),
    ]
}

fn kind(k: u8) -> AckType {
    match k {
        0 => AckType::Accept,
        1 => AckType::Release,
        2 => AckType::Reject,
        3 => AckType::Renew,
        _ => AckType::Gap,
    }
}

/// The log as batches of offsets.
#[derive(Default)]
struct Log {
    batches: Vec<(i64, i64)>,
    end: i64,
}

impl Log {
    /// What a fetch reads from `from`: the batch holding it and up to two after.
    fn read(&self, from: i64) -> Vec<(i64, i64)> {
        self.batches
            .iter()
            .copied()
            .filter(|&(_, last)| last >= from)
            .take(3)
            .collect()
    }

    fn is_record(&self, offset: i64) -> bool {
        self.batches
            .iter()
            .any(|&(f, l)| f <= offset && offset <= l)
    }
}

struct Model {
    p: SharePartition,
    persisted: PersistedPartition,
    log: Log,
    now: i64,
    members: Vec<MemberId>,
    /// offset -> (holder, lock deadline) as the model believes.
    held: BTreeMap<i64, (usize, i64)>,
    accepted: BTreeSet<i64>,
    rejected: BTreeSet<i64>,
    last_start: i64,
    /// offset -> not to be delivered before (delayed records).
    due: BTreeMap<i64, i64>,
}

/// What the caller would learn from the headers of delayed records due at `due`.
fn delays(due: &BTreeMap<i64, i64>) -> impl Fn(i64) -> Disposition + '_ {
    |o| match due.get(&o) {
        Some(&at) => Disposition::NotBefore(at),
        None => Disposition::Deliver,
    }
}

impl Model {
    fn new(s: ShareSettings) -> Self {
        Self {
            p: SharePartition::new(0, s),
            persisted: PersistedPartition::default(),
            log: Log::default(),
            now: 0,
            members: vec![member("m0"), member("m1"), member("m2")],
            held: BTreeMap::new(),
            accepted: BTreeSet::new(),
            rejected: BTreeSet::new(),
            last_start: 0,
            due: BTreeMap::new(),
        }
    }

    fn persist(&mut self) {
        if let Some(update) = self.p.take_update() {
            let limit = self.p.settings().max_record_locks;
            SharePartition::apply_update(&mut self.persisted, &update, limit);
        }
    }

    fn fetch(&mut self, m: usize, limit: RecordLimit) -> Result<(), TestCaseError> {
        let max = limit.max_records;
        let Some(from) = self.p.next_fetch_offset(self.now) else {
            return Ok(());
        };
        let read = self.log.read(from);
        let member = self.members[m].clone();
        let got = self
            .p
            .acquire(&member, &read, limit, self.now, delays(&self.due));
        let got_offsets = offsets(&got);
        if limit.mode == AcquireMode::RecordLimit {
            prop_assert!(got_offsets.len() <= max, "{got_offsets:?} past {max}");
        }
        // The limit is checked between log batches: without the last batch it touched, fewer
        // than `max` were acquired.
        if let Some(&last) = got_offsets.last() {
            let (batch_first, _) = read
                .iter()
                .copied()
                .find(|&(f, l)| f <= last && last <= l)
                .unwrap_or((last, last));
            let before = got_offsets.iter().filter(|&&o| o < batch_first).count();
            prop_assert!(
                before < max,
                "{before} acquired before the last batch, max {max}"
            );
        }
        for r in &got {
            prop_assert!(r.delivery_count >= 1);
            prop_assert!(r.delivery_count <= self.p.settings().delivery_count_limit);
        }
        for o in got_offsets {
            prop_assert!(self.log.is_record(o), "offset {o} is not a record");
            if let Some(&at) = self.due.get(&o) {
                prop_assert!(
                    self.now >= at,
                    "offset {o} delivered at {} before due {at}",
                    self.now
                );
            }
            prop_assert!(
                !self.held.contains_key(&o),
                "offset {o} handed out while held by {:?}",
                self.held.get(&o)
            );
            prop_assert!(
                !self.accepted.contains(&o),
                "offset {o} delivered after it was accepted"
            );
            prop_assert!(
                !self.rejected.contains(&o),
                "offset {o} delivered after it was rejected"
            );
            let deadline = self.now + self.p.settings().record_lock_duration_ms;
            self.held.insert(o, (m, deadline));
        }
        Ok(())
    }

    fn ack(&mut self, m: usize, first: i64, last: i64, t: AckType) -> Result<(), TestCaseError> {
        let member = self.members[m].clone();
        let valid = (first..=last).all(|o| match self.held.get(&o) {
            Some(&(holder, _)) => holder == m,
            None => false,
        });
        let result = self
            .p
            .acknowledge(&member, &[ack(first, last, t)], self.now);
        if t == AckType::Gap {
            // A gap of a held record is a client mistake the broker accepts; skip the model.
            if result.is_ok() {
                for o in first..=last {
                    if self.held.remove(&o).is_some() {
                        self.rejected.insert(o);
                    }
                }
            }
            return Ok(());
        }
        prop_assert_eq!(
            result.is_ok(),
            valid,
            "ack {}..={} {:?} by m{}",
            first,
            last,
            t,
            m
        );
        if result.is_ok() {
            for o in first..=last {
                match t {
                    AckType::Accept => {
                        self.held.remove(&o);
                        self.accepted.insert(o);
                    }
                    AckType::Reject => {
                        self.held.remove(&o);
                        self.rejected.insert(o);
                    }
                    AckType::Release => {
                        self.held.remove(&o);
                    }
                    AckType::Renew => {
                        let deadline = self.now + self.p.settings().record_lock_duration_ms;
                        self.held.insert(o, (m, deadline));
                    }
                    AckType::Gap => {}
                }
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let p = &self.p;
        prop_assert!(
            p.start_offset() >= self.last_start,
            "the start offset went back"
        );
        self.last_start = p.start_offset();
        prop_assert!(p.start_offset() <= p.end_offset());
        prop_assert!(p.records.len() <= p.settings().max_record_locks);
        prop_assert!(p.parked.len() <= p.settings().max_delayed_records);
        prop_assert!(p.parked.keys().all(|&o| o < p.start_offset()));
        prop_assert!(p.parked.values().all(|r| !r.state.is_finished()));
        // What is persisted restores the same start offset and the same parked records.
        let q = SharePartition::restore(&self.persisted, p.settings().clone());
        prop_assert_eq!(q.start_offset(), p.start_offset());
        prop_assert_eq!(
            q.parked.keys().collect::<Vec<_>>(),
            p.parked.keys().collect::<Vec<_>>()
        );
        prop_assert!(p
            .records
            .keys()
            .all(|&o| o >= p.start_offset() && o < p.end_offset()));
        if let Some((_, r)) = p.records.first_key_value() {
            prop_assert!(!r.state.is_finished());
        }
        for (o, r) in p.parked.iter().chain(p.records.iter()) {
            prop_assert_eq!(r.state == RecordState::Acquired, r.owner.is_some());
            if r.state == RecordState::Acquired {
                let holder = self.held.get(o).map(|&(h, _)| h);
                prop_assert_eq!(
                    holder.map(|h| &*self.members[h]),
                    r.owner.as_deref(),
                    "offset {} owner",
                    o
                );
            }
        }
        for o in self.accepted.iter().chain(self.rejected.iter()) {
            if let Some((state, _)) = p.state_of(*o) {
                prop_assert!(
                    state.is_finished() || matches!(state, RecordState::Archiving(_)),
                    "finished offset {o} is {state:?}"
                );
            }
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>, s: ShareSettings) -> Result<(), TestCaseError> {
    let mut m = Model::new(s);
    for op in ops {
        match op {
            Op::Produce {
                records,
                gap,
                delay_ms,
            } => {
                let first = m.log.end + gap;
                m.log.batches.push((first, first + records - 1));
                m.log.end = first + records;
                if let Some(d) = delay_ms {
                    for o in first..first + records {
                        m.due.insert(o, m.now + d);
                    }
                }
            }
            Op::Fetch { member, max, mode } => m.fetch(
                member,
                RecordLimit {
                    max_records: max,
                    mode,
                },
            )?,
            Op::Ack {
                member,
                pick,
                len,
                kind: k,
            } => {
                let mine: Vec<i64> = m
                    .held
                    .iter()
                    .filter(|(_, &(h, _))| h == member)
                    .map(|(o, _)| *o)
                    .collect();
                if let Some(&first) = mine.get(pick % mine.len().max(1)) {
                    let last = (first..first + len as i64)
                        .take_while(|o| mine.contains(o))
                        .last()
                        .unwrap_or(first);
                    m.ack(member, first, last, kind(k))?;
                }
            }
            Op::StrayAck {
                member,
                offset,
                kind: k,
            } => m.ack(member, offset, offset, kind(k))?,
            Op::Advance { ms } => {
                m.now += ms;
                m.p.expire_locks(m.now);
                let now = m.now;
                m.held.retain(|_, &mut (_, deadline)| deadline > now);
            }
            Op::Leave { member } => {
                let id = m.members[member].clone();
                m.p.release_member(&id, m.now);
                m.held.retain(|_, &mut (h, _)| h != member);
            }
            Op::DeadLetter => {
                let pending: Vec<i64> = m.p.pending_dead_letters().iter().map(|d| d.0).collect();
                for &o in &pending {
                    prop_assert!(m.log.is_record(o));
                    prop_assert!(
                        !m.accepted.contains(&o),
                        "accepted offset {o} dead-lettered"
                    );
                }
                m.p.dead_lettered(&pending);
            }
            Op::Restart => {
                let s = m.p.settings().clone();
                m.p = SharePartition::restore(&m.persisted, s);
                m.held.clear();
            }
        }
        m.persist();
        m.check()?;
    }
    // Drain: one member takes and accepts whatever is left until nothing is.
    let limit = usize::from(m.p.settings().delivery_count_limit) + 2;
    for _ in 0..(m.log.end as usize + 10) * limit {
        m.now += m.p.settings().record_lock_duration_ms;
        m.p.expire_locks(m.now);
        let pending: Vec<i64> = m.p.pending_dead_letters().iter().map(|d| d.0).collect();
        m.p.dead_lettered(&pending);
        m.persist();
        m.held.clear();
        // Past any retry backoff.
        m.now += m.p.settings().retry_backoff_max_ms;
        // Nothing to hand out yet: delayed records not due hold a full window.
        let Some(from) = m.p.next_fetch_offset(m.now) else {
            continue;
        };
        if m.p.start_offset() >= m.log.end && m.p.parked.is_empty() {
            break;
        }
        let read = m.log.read(from);
        let member = m.members[0].clone();
        let got = m.p.acquire(&member, &read, 1_000, m.now, delays(&m.due));
        for o in offsets(&got) {
            prop_assert!(
                !m.accepted.contains(&o),
                "offset {o} delivered after acceptance"
            );
            prop_assert!(
                !m.rejected.contains(&o),
                "offset {o} delivered after rejection"
            );
            m.p.acknowledge(&member, &[ack(o, o, AckType::Accept)], m.now)
                .map_err(|e| TestCaseError::fail(format!("drain ack {o}: {e}")))?;
            m.accepted.insert(o);
        }
        m.persist();
    }
    prop_assert_eq!(m.p.start_offset(), m.log.end, "every record finished");
    prop_assert!(
        m.p.parked.is_empty(),
        "parked records left: {:?}",
        m.p.parked
    );
    prop_assert!(m.accepted.is_disjoint(&m.rejected));
    // Everything finished survives a restart: nothing is handed out again.
    let mut q = SharePartition::restore(&m.persisted, m.p.settings().clone());
    prop_assert_eq!(q.start_offset(), m.log.end);
    let member = m.members[1].clone();
    let read = m.log.read(0);
    prop_assert!(q.acquire(&member, &read, 1_000, m.now, deliver).is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn share_partition_invariants(
        ops in proptest::collection::vec(op(), 1..80),
        limit in 2u16..5,
        locks in 4usize..20,
        backoff in prop_oneof![Just(0i64), 1i64..300],
        dead_letter in any::<bool>(),
        max_delayed_records in 0usize..4,
    ) {
        let s = ShareSettings {
            record_lock_duration_ms: 1_000,
            delivery_count_limit: limit,
            max_record_locks: locks,
            retry_backoff_ms: backoff,
            retry_backoff_max_ms: 500,
            dead_letter,
            max_delayed_records,
        };
        run(ops, s)?;
    }
}

#[test]
fn delivery_complete_count_counts_finished_offsets_from_the_start_on() {
    let batch = |first_offset, last_offset, state| StateBatch {
        first_offset,
        last_offset,
        state,
        delivery_count: 1,
    };
    let persisted = PersistedPartition {
        start_offset: 5,
        batches: vec![
            // Parked below the start: waited for, not complete.
            batch(2, 2, PersistedState::Parked),
            // Only the part from the start on counts.
            batch(3, 6, PersistedState::Acknowledged),
            batch(7, 8, PersistedState::Available),
            batch(9, 11, PersistedState::Archived),
            // Waiting for the dead-letter topic: not complete yet.
            batch(12, 12, PersistedState::Archiving(ArchiveReason::Rejected)),
        ],
    };
    assert_eq!(persisted.delivery_complete_count(), 2 + 3);
    assert_eq!(PersistedPartition::default().delivery_complete_count(), 0);
}
