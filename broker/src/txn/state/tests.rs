use super::*;
use proptest::prelude::*;

const MAX_TIMEOUT_MS: i32 = 900_000;

fn ids() -> impl FnMut() -> Result<i64, ErrorCode> {
    let mut next = 1000;
    move || {
        next += 1;
        Ok(next)
    }
}

fn init(cur: Option<&TxnMetadata>, expected: Expected) -> Result<InitOutcome, ErrorCode> {
    init_producer_id("t", cur, 60_000, MAX_TIMEOUT_MS, expected, 10, &mut ids())
}

fn ready(o: Result<InitOutcome, ErrorCode>) -> TxnMetadata {
    match o {
        Ok(InitOutcome::Ready(m)) => m,
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn p(t: &str, i: i32) -> (String, i32) {
    (t.to_string(), i)
}

#[test]
fn first_init_allocates_a_producer_id_at_epoch_0_and_the_next_bumps_the_epoch() {
    let m = ready(init(None, Expected::NONE));
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.state),
        (1001, 0, TxnState::Empty)
    );
    let m2 = ready(init(Some(&m), Expected::NONE));
    assert_eq!((m2.producer_id, m2.producer_epoch), (1001, 1));
    assert_eq!(
        m2.last_producer_epoch, -1,
        "a fencing bump keeps no retry epoch"
    );
}

#[test]
fn a_fenced_producer_cannot_pass_for_a_retry_and_take_the_new_epoch() {
    // The old instance holds epoch 0; a new instance of the transactional id takes epoch 1.
    let old = ready(init(None, Expected::NONE));
    let held = Expected {
        producer_id: old.producer_id,
        producer_epoch: 0,
    };
    // An abort of protocol 2 by the old instance, which a retry of one applied would pass.
    let end_v2_abort = |cur: &TxnMetadata| {
        end_txn(
            Some(cur),
            old.producer_id,
            0,
            false,
            true,
            61_002,
            &mut ids(),
        )
    };
    let fenced_by_init = ready(init(Some(&old), Expected::NONE));
    // The old instance asks for its own bump (KIP-360, as librdkafka does when it aborts).
    assert_eq!(
        init(Some(&fenced_by_init), held),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    assert_eq!(
        end_v2_abort(&fenced_by_init),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    // Same after the coordinator aborts its timed-out transaction.
    let ongoing = add_partitions(Some(&old), old.producer_id, 0, &[p("a", 0)], 1_000)
        .expect("ok")
        .expect("logged");
    let aborting = abort_if_timed_out(&ongoing, 61_000, &mut ids()).expect("timed out");
    let aborted = complete(&aborting, 61_001).expect("preparing");
    assert_eq!(init(Some(&aborted), held), Err(ErrorCode::PRODUCER_FENCED));
    assert_eq!(end_v2_abort(&aborted), Err(ErrorCode::PRODUCER_FENCED));
}

#[test]
fn timeouts_outside_the_broker_maximum_are_refused() {
    for timeout in [0, -1, MAX_TIMEOUT_MS + 1] {
        assert_eq!(
            init_producer_id(
                "t",
                None,
                timeout,
                MAX_TIMEOUT_MS,
                Expected::NONE,
                0,
                &mut ids()
            ),
            Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT)
        );
    }
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_ongoing_transaction() {
    let m = ready(init(None, Expected::NONE));
    let ongoing = add_partitions(Some(&m), m.producer_id, 0, &[p("a", 0)], 20)
        .expect("added")
        .expect("logged");
    assert_eq!(ongoing.state, TxnState::Ongoing);
    let aborting = match init(Some(&ongoing), Expected::NONE) {
        Ok(InitOutcome::AbortOngoing(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(aborting.state, TxnState::PrepareAbort);
    assert_eq!(aborting.producer_epoch, 1);
    assert_eq!(
        aborting.partitions.len(),
        1,
        "markers go to the old partitions"
    );
    // The old producer, at epoch 0, is fenced everywhere.
    assert_eq!(
        add_partitions(Some(&aborting), m.producer_id, 0, &[p("b", 0)], 30),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    // While the markers are written, the new producer retries.
    assert_eq!(
        init(Some(&aborting), Expected::NONE),
        Err(ErrorCode::CONCURRENT_TRANSACTIONS)
    );
    let done = complete(&aborting, 40).expect("complete");
    assert_eq!(done.state, TxnState::CompleteAbort);
    assert!(done.partitions.is_empty());
    let again = ready(init(Some(&done), Expected::NONE));
    assert_eq!(again.producer_epoch, 2);
    assert_eq!(
        end_txn(Some(&again), m.producer_id, 1, true, false, 50, &mut ids()),
        Err(ErrorCode::PRODUCER_FENCED)
    );
}

#[test]
fn kip_360_bump_needs_the_current_epoch_and_recognises_a_retry() {
    let m = ready(init(None, Expected::NONE));
    let cur = Expected {
        producer_id: m.producer_id,
        producer_epoch: 0,
    };
    let bumped = ready(init(Some(&m), cur));
    assert_eq!(bumped.producer_epoch, 1);
    // Retrying the same bump returns the same epoch, not a second bump.
    assert_eq!(ready(init(Some(&bumped), cur)).producer_epoch, 1);
    let stale = Expected {
        producer_id: m.producer_id + 7,
        producer_epoch: 0,
    };
    assert_eq!(init(Some(&bumped), stale), Err(ErrorCode::PRODUCER_FENCED));
    assert_eq!(init(None, cur), Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING));
}

#[test]
fn epoch_exhaustion_takes_a_new_producer_id() {
    let mut m = ready(init(None, Expected::NONE));
    m.producer_epoch = MAX_EPOCH;
    let next = ready(init_producer_id(
        "t",
        Some(&m),
        60_000,
        MAX_TIMEOUT_MS,
        Expected::NONE,
        10,
        &mut || Ok(5_000),
    ));
    assert_ne!(next.producer_id, m.producer_id);
    assert_eq!(next.producer_epoch, 0);
}

#[test]
fn end_txn_v1_two_phases_and_retries() {
    let m = ready(init(None, Expected::NONE));
    let pid = m.producer_id;
    assert_eq!(
        end_txn(Some(&m), pid, 0, true, false, 1, &mut ids()),
        Err(ErrorCode::INVALID_TXN_STATE),
        "nothing to commit"
    );
    let ongoing = add_partitions(Some(&m), pid, 0, &[p("a", 0), p("a", 1)], 2)
        .expect("ok")
        .expect("logged");
    assert_eq!(
        add_partitions(Some(&ongoing), pid, 0, &[p("a", 1)], 3),
        Ok(None),
        "already in: nothing to log"
    );
    let prepared = match end_txn(Some(&ongoing), pid, 0, true, false, 4, &mut ids()) {
        Ok(EndOutcome::Prepare(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(prepared.state, TxnState::PrepareCommit);
    assert_eq!(prepared.producer_epoch, 0, "protocol 1 keeps the epoch");
    assert_eq!(
        end_txn(Some(&prepared), pid, 0, true, false, 5, &mut ids()),
        Err(ErrorCode::CONCURRENT_TRANSACTIONS)
    );
    assert_eq!(
        end_txn(Some(&prepared), pid, 0, false, false, 5, &mut ids()),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    assert_eq!(
        add_partitions(Some(&prepared), pid, 0, &[p("b", 0)], 5),
        Err(ErrorCode::CONCURRENT_TRANSACTIONS)
    );
    let done = complete(&prepared, 6).expect("done");
    assert!(matches!(
        end_txn(Some(&done), pid, 0, true, false, 7, &mut ids()),
        Ok(EndOutcome::AlreadyDone { .. })
    ));
    assert_eq!(
        end_txn(Some(&done), pid, 0, false, false, 7, &mut ids()),
        Err(ErrorCode::INVALID_TXN_STATE)
    );
    // The next transaction starts from the completed state.
    let next = add_partitions(Some(&done), pid, 0, &[p("c", 0)], 8)
        .expect("ok")
        .expect("logged");
    assert_eq!(next.partitions.len(), 1);
    assert_eq!(next.start_ms, 8);
}

#[test]
fn end_txn_v2_bumps_the_epoch_and_recognises_a_retry() {
    let m = ready(init(None, Expected::NONE));
    let pid = m.producer_id;
    let ongoing = add_partitions(Some(&m), pid, 0, &[p("a", 0)], 2)
        .expect("ok")
        .expect("logged");
    let prepared = match end_txn(Some(&ongoing), pid, 0, true, true, 3, &mut ids()) {
        Ok(EndOutcome::Prepare(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(prepared.producer_epoch, 1);
    // The client already holds epoch 1 and ends its next transaction, either way, while the
    // markers of this one are still being written: it waits.
    for commit in [true, false] {
        assert_eq!(
            end_txn(Some(&prepared), pid, 1, commit, true, 4, &mut ids()),
            Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            "commit {commit}"
        );
    }
    let done = complete(&prepared, 4).expect("done");
    assert_eq!(
        end_txn(Some(&done), pid, 0, true, true, 5, &mut ids()),
        Ok(EndOutcome::AlreadyDone {
            producer_id: pid,
            producer_epoch: 1
        })
    );
    // Aborting with nothing added is allowed in protocol 2.
    assert!(matches!(
        end_txn(Some(&done), pid, 1, false, true, 6, &mut ids()),
        Ok(EndOutcome::Prepare(m)) if m.producer_epoch == 2 && m.partitions.is_empty()
    ));
}

#[test]
fn timed_out_transactions_are_aborted_with_a_new_epoch() {
    let m = ready(init(None, Expected::NONE));
    let ongoing = add_partitions(Some(&m), m.producer_id, 0, &[p("a", 0)], 1_000)
        .expect("ok")
        .expect("logged");
    assert_eq!(abort_if_timed_out(&ongoing, 60_999, &mut ids()), None);
    let aborted = abort_if_timed_out(&ongoing, 61_000, &mut ids()).expect("timed out");
    assert_eq!(aborted.state, TxnState::PrepareAbort);
    assert_eq!(aborted.producer_epoch, 1);
    assert_eq!(
        abort_if_timed_out(&m, i64::MAX, &mut ids()),
        None,
        "not ongoing"
    );
}

#[test]
fn old_versions_get_invalid_producer_epoch() {
    assert_eq!(
        for_version(ErrorCode::PRODUCER_FENCED, 1, 2),
        ErrorCode::INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        for_version(ErrorCode::PRODUCER_FENCED, 2, 2),
        ErrorCode::PRODUCER_FENCED
    );
    assert_eq!(for_version(ErrorCode::NONE, 0, 2), ErrorCode::NONE);
}

#[test]
fn state_ids_and_names_round_trip() {
    for id in 0..=7 {
        let s = TxnState::from_id(id).expect("known");
        assert_eq!(s.id(), id);
        assert_eq!(TxnState::from_name(s.name()), Some(s));
    }
    assert_eq!(TxnState::from_id(8), None);
}

#[derive(Clone, Debug)]
enum Op {
    Init,
    Add(i32, bool),
    End(bool, bool, bool),
    Complete,
    Timeout(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Init),
        (0..4i32, any::<bool>()).prop_map(|(p, stale)| Op::Add(p, stale)),
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(c, v2, s)| Op::End(c, v2, s)),
        Just(Op::Complete),
        (0..200_000i64).prop_map(Op::Timeout),
    ]
}

proptest! {
    /// Whatever producers send, in any order: a producer id's epoch never goes down, an
    /// `Ongoing` transaction has partitions and a start time, a completed one has neither,
    /// and a request with an older epoch than the current one never changes anything.
    #[test]
    fn invariants_hold_under_any_sequence(ops in proptest::collection::vec(op(), 1..60)) {
        let mut alloc = ids();
        let mut cur: Option<TxnMetadata> = None;
        let mut now = 0i64;
        for op in ops {
            now += 10;
            let before = cur.clone();
            let next: Option<TxnMetadata> = match (&op, cur.as_ref()) {
                (Op::Init, c) => match init_producer_id("t", c, 60_000, MAX_TIMEOUT_MS, Expected::NONE, now, &mut alloc) {
                    Ok(InitOutcome::Ready(m)) | Ok(InitOutcome::AbortOngoing(m)) => Some(m),
                    Err(_) => None,
                },
                (Op::Add(i, stale), Some(c)) => {
                    let epoch = if *stale { c.producer_epoch - 1 } else { c.producer_epoch };
                    let r = add_partitions(Some(c), c.producer_id, epoch, &[p("t", *i)], now);
                    if *stale && c.producer_epoch > 0 {
                        prop_assert_eq!(r.clone(), Err(ErrorCode::PRODUCER_FENCED));
                    }
                    r.ok().flatten()
                }
                (Op::End(commit, v2, stale), Some(c)) => {
                    let epoch = if *stale { c.producer_epoch - 1 } else { c.producer_epoch };
                    match end_txn(Some(c), c.producer_id, epoch, *commit, *v2, now, &mut alloc) {
                        Ok(EndOutcome::Prepare(m)) => {
                            prop_assert!(!*stale, "a stale epoch prepared {:?}", m);
                            Some(m)
                        }
                        _ => None,
                    }
                }
                (Op::Complete, Some(c)) => complete(c, now),
                (Op::Timeout(t), Some(c)) => abort_if_timed_out(c, now + t, &mut alloc),
                (_, None) => None,
            };
            if let Some(n) = next {
                if let Some(b) = &before {
                    if b.producer_id == n.producer_id {
                        prop_assert!(n.producer_epoch >= b.producer_epoch);
                    }
                }
                match n.state {
                    TxnState::Ongoing => {
                        prop_assert!(!n.partitions.is_empty());
                        prop_assert!(n.start_ms >= 0);
                    }
                    TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::Empty => {
                        prop_assert!(n.partitions.is_empty());
                    }
                    _ => {}
                }
                prop_assert!(n.producer_epoch >= 0 && n.producer_epoch <= MAX_EPOCH);
                cur = Some(n);
            }
        }
    }
}
