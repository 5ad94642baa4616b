//! The transaction coordinator over real sockets to the built binary: transactional
//! InitProducerId (epochs, fencing of zombies, aborting the previous producer's transaction),
//! AddPartitionsToTxn (both shapes), EndTxn (protocol 1 and 2) with COMMIT/ABORT markers written
//! into every partition of the transaction, transaction timeouts, TxnOffsetCommit offsets that
//! become visible only at commit, DescribeTransactions/ListTransactions, and all of it surviving
//! a restart (`__transaction_state` and `__consumer_offsets` replayed).

use std::time::Duration;

use crate::common::cluster::Cluster;
use crate::common::kafka::{producer_batch, Conn};
use crate::common::Broker;
use weir_protocol::client::encode_request_at;
use weir_protocol::transactions::*;
use weir_protocol::{
    DescribeProducersPartitionResponse, DescribeProducersRequest, DescribeProducersTopic,
    ErrorCode, FetchPartition, FetchRequest, FetchTopic, FindCoordinatorRequest,
    InitProducerIdRequest, OffsetFetchGroup, OffsetFetchRequest, OffsetFetchTopic, Request,
    Response,
};
use weir_storage::records::{decode_txn_marker, TxnMarker, TxnMarkerKind};

fn start() -> Broker {
    Broker::start(&[
        "--transaction-abort-timed-out-transaction-cleanup-interval-ms",
        "50",
        "--transaction-state-log-num-partitions",
        "4",
    ])
}

/// `request` at version `version` on a fresh connection.
fn call_at(b: &Broker, version: i16, request: Request) -> Response {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(b.kafka).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let key = request.api_key();
    let frame = encode_request_at(7, "txn-test", &request, version).expect("encode");
    s.write_all(&frame).expect("send");
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix).expect("size");
    let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(prefix)).expect("size")];
    s.read_exact(&mut body).expect("body");
    let (_, r) = weir_protocol::client::decode_response(key, version, body.into()).expect("decode");
    r
}

fn init(c: &mut Conn, id: &str, timeout_ms: i32) -> (ErrorCode, i64, i16) {
    let r = c.call_at(
        Request::InitProducerId(InitProducerIdRequest {
            transactional_id: Some(id.into()),
            transaction_timeout_ms: timeout_ms,
            ..InitProducerIdRequest::default()
        }),
        4,
    );
    let Response::InitProducerId(r) = r else {
        panic!("{r:?}")
    };
    (r.error_code, r.producer_id, r.producer_epoch)
}

/// InitProducerId, retried while the previous producer's transaction is being aborted.
fn init_ok(c: &mut Conn, id: &str, timeout_ms: i32) -> (i64, i16) {
    for _ in 0..300 {
        match init(c, id, timeout_ms) {
            (ErrorCode::NONE, pid, epoch) => return (pid, epoch),
            (ErrorCode::CONCURRENT_TRANSACTIONS, _, _) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => panic!("InitProducerId: {other:?}"),
        }
    }
    panic!("InitProducerId never completed");
}

fn add_request(id: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest {
        transactions: vec![AddPartitionsToTxnTransaction {
            transactional_id: id.into(),
            producer_id: pid,
            producer_epoch: epoch,
            verify_only: false,
            topics: parts
                .iter()
                .map(|(t, p)| AddPartitionsToTxnTopic {
                    name: t.to_string(),
                    partitions: vec![*p],
                })
                .collect(),
        }],
    }
}

/// AddPartitionsToTxn at `version`: the error codes of every partition.
fn add(
    b: &Broker,
    version: i16,
    id: &str,
    pid: i64,
    epoch: i16,
    parts: &[(&str, i32)],
) -> Vec<ErrorCode> {
    let r = call_at(
        b,
        version,
        Request::AddPartitionsToTxn(add_request(id, pid, epoch, parts)),
    );
    let Response::AddPartitionsToTxn(r) = r else {
        panic!("{r:?}")
    };
    r.results_by_transaction
        .iter()
        .flat_map(|t| t.topic_results.iter())
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

fn end(b: &Broker, version: i16, id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnResponse {
    let r = call_at(
        b,
        version,
        Request::EndTxn(EndTxnRequest {
            transactional_id: id.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
        }),
    );
    let Response::EndTxn(r) = r else {
        panic!("{r:?}")
    };
    r
}

fn describe(c: &mut Conn, id: &str) -> DescribedTransaction {
    let r = c.call(Request::DescribeTransactions(DescribeTransactionsRequest {
        transactional_ids: vec![id.into()],
    }));
    let Response::DescribeTransactions(mut r) = r else {
        panic!("{r:?}")
    };
    r.transaction_states.remove(0)
}

fn wait_state(c: &mut Conn, id: &str, state: &str) -> DescribedTransaction {
    for _ in 0..500 {
        let d = describe(c, id);
        if d.transaction_state == state {
            return d;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{id} never reached {state}: {:?}", describe(c, id));
}

/// The transaction markers in partition `p` of `topic`, in log order.
fn markers(c: &mut Conn, topic: &str, p: i32) -> Vec<TxnMarker> {
    let r = c.call(Request::Fetch(FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                partition: p,
                current_leader_epoch: -1,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
            }],
        }],
        ..FetchRequest::default()
    }));
    let Response::Fetch(r) = r else {
        panic!("{r:?}")
    };
    let data = r.topics[0].partitions[0]
        .records
        .in_memory()
        .expect("decoded records");
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= data.len() {
        let len = i32::from_be_bytes(data[at + 8..at + 12].try_into().expect("4 bytes"));
        let end = at + 12 + usize::try_from(len).expect("len");
        if end > data.len() {
            break;
        }
        if let Some(m) = decode_txn_marker(&data[at..end]) {
            out.push(m);
        }
        at = end;
    }
    out
}

fn wait_markers(c: &mut Conn, topic: &str, p: i32, n: usize) -> Vec<TxnMarker> {
    for _ in 0..500 {
        let m = markers(c, topic, p);
        if m.len() >= n {
            return m;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{topic}-{p} never got {n} markers: {:?}",
        markers(c, topic, p)
    );
}

#[test]
fn commit_and_abort_write_markers_to_every_partition_and_survive_a_restart() {
    let mut b = start();
    let mut c = Conn::connect(b.kafka);
    c.create_topic("out", 2, &[]);
    let (pid, epoch) = init_ok(&mut c, "tx-a", 60_000);
    assert_eq!(epoch, 0);
    // v3 (one transaction in top-level fields) and v4 (batched) shapes.
    assert_eq!(
        add(&b, 3, "tx-a", pid, epoch, &[("out", 0)]),
        vec![ErrorCode::NONE]
    );
    assert_eq!(
        add(&b, 4, "tx-a", pid, epoch, &[("out", 1)]),
        vec![ErrorCode::NONE]
    );
    let d = describe(&mut c, "tx-a");
    assert_eq!(d.transaction_state, "Ongoing");
    assert_eq!(d.topics.len(), 1);
    assert_eq!(d.topics[0].partitions, vec![0, 1]);
    assert_eq!(
        end(&b, 3, "tx-a", pid, epoch, true).error_code,
        ErrorCode::NONE
    );
    wait_state(&mut c, "tx-a", "CompleteCommit");
    for p in 0..2 {
        let m = wait_markers(&mut c, "out", p, 1);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].producer_id, m[0].producer_epoch, m[0].kind),
            (pid, 0, TxnMarkerKind::Commit)
        );
    }
    // A retried EndTxn of protocol 1 is answered as done; the other outcome is refused.
    assert_eq!(
        end(&b, 3, "tx-a", pid, epoch, true).error_code,
        ErrorCode::NONE
    );
    assert_eq!(
        end(&b, 3, "tx-a", pid, epoch, false).error_code,
        ErrorCode::INVALID_TXN_STATE
    );

    // The next transaction, aborted, touches partition 1 only.
    assert_eq!(
        add(&b, 3, "tx-a", pid, epoch, &[("out", 1)]),
        vec![ErrorCode::NONE]
    );
    assert_eq!(
        end(&b, 3, "tx-a", pid, epoch, false).error_code,
        ErrorCode::NONE
    );
    wait_state(&mut c, "tx-a", "CompleteAbort");
    let m = wait_markers(&mut c, "out", 1, 2);
    assert_eq!(m[1].kind, TxnMarkerKind::Abort);
    assert_eq!(
        markers(&mut c, "out", 0).len(),
        1,
        "partition 0 was not in the aborted one"
    );

    // An ongoing transaction is still ongoing after a restart, with its partitions.
    assert_eq!(
        add(&b, 3, "tx-a", pid, epoch, &[("out", 0)]),
        vec![ErrorCode::NONE]
    );
    drop(c);
    b.restart();
    let mut c = Conn::connect(b.kafka);
    let d = describe(&mut c, "tx-a");
    assert_eq!(
        (
            d.transaction_state.as_str(),
            d.producer_id,
            d.producer_epoch
        ),
        ("Ongoing", pid, 0)
    );
    let r = c.call(Request::ListTransactions(ListTransactionsRequest {
        state_filters: vec!["Ongoing".into()],
        ..ListTransactionsRequest::default()
    }));
    let Response::ListTransactions(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.transaction_states.len(), 1);
    assert_eq!(r.transaction_states[0].transactional_id, "tx-a");
    // The producer that comes back is a new epoch; the ongoing transaction is aborted first.
    let (pid2, epoch2) = init_ok(&mut c, "tx-a", 60_000);
    assert_eq!((pid2, epoch2), (pid, 2));
    let m = wait_markers(&mut c, "out", 0, 2);
    assert_eq!((m[1].kind, m[1].producer_epoch), (TxnMarkerKind::Abort, 1));
}

/// KIP-890 part 1: a producer's first transactional batch in a partition is appended only when
/// the coordinator has that partition in the producer's ongoing transaction, so neither a
/// partition never added nor a late batch of an ended transaction opens a transaction that no
/// marker would ever end.
#[test]
fn a_first_transactional_batch_is_appended_only_in_a_partition_of_the_transaction() {
    let b = start();
    let mut c = Conn::connect(b.kafka);
    c.create_topic("ver", 2, &[]);
    let id = Some("tx-v");
    let (pid, epoch) = init_ok(&mut c, "tx-v", 60_000);

    let r = c.produce_batch(id, "ver", 0, producer_batch(pid, epoch, 0, 2, true));
    assert_eq!(r.error_code, ErrorCode::INVALID_TXN_STATE, "{r:?}");
    assert_eq!(
        add(&b, 3, "tx-v", pid, epoch, &[("ver", 0)]),
        vec![ErrorCode::NONE]
    );
    // Nothing of the refused batch was written: the accepted one starts at offset 0.
    let r = c.produce_batch(id, "ver", 0, producer_batch(pid, epoch, 0, 2, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 0), "{r:?}");
    let r = c.produce_batch(id, "ver", 1, producer_batch(pid, epoch, 0, 1, true));
    assert_eq!(r.error_code, ErrorCode::INVALID_TXN_STATE, "{r:?}");
    // Later batches of the transaction open in the partition need no verification.
    let r = c.produce_batch(id, "ver", 0, producer_batch(pid, epoch, 2, 1, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 2), "{r:?}");

    assert_eq!(
        end(&b, 3, "tx-v", pid, epoch, false).error_code,
        ErrorCode::NONE
    );
    wait_state(&mut c, "tx-v", "CompleteAbort");
    assert_eq!(wait_markers(&mut c, "ver", 0, 1).len(), 1);
    // A late batch of the aborted transaction, in sequence, does not open a new one.
    let r = c.produce_batch(id, "ver", 0, producer_batch(pid, epoch, 3, 1, true));
    assert_eq!(r.error_code, ErrorCode::INVALID_TXN_STATE, "{r:?}");

    // A zombie: once the producer is initialised again, the old epoch is refused.
    let (pid2, epoch2) = init_ok(&mut c, "tx-v", 60_000);
    assert_eq!((pid2, epoch2), (pid, epoch + 1));
    let r = c.produce_batch(id, "ver", 1, producer_batch(pid, epoch, 0, 1, true));
    assert_eq!(r.error_code, ErrorCode::INVALID_PRODUCER_EPOCH, "{r:?}");
    // Kafka's answer to transactional records without a transactional id.
    let r = c.produce_batch(None, "ver", 1, producer_batch(pid, epoch2, 0, 1, true));
    assert_eq!(
        r.error_code,
        ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        "{r:?}"
    );
    assert_eq!(
        add(&b, 3, "tx-v", pid, epoch2, &[("ver", 1)]),
        vec![ErrorCode::NONE]
    );
    let r = c.produce_batch(id, "ver", 1, producer_batch(pid, epoch2, 0, 1, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 0), "{r:?}");
}

/// transactional.id.expiration.ms: an id with no transaction open is forgotten once idle that
/// long (a tombstone, so also after a restart); its next InitProducerId gets a new producer id.
/// An id with a transaction open is kept.
#[test]
fn an_idle_transactional_id_expires_and_stays_forgotten_after_a_restart() {
    let mut b = Broker::start(&[
        "--transaction-abort-timed-out-transaction-cleanup-interval-ms",
        "50",
        "--transactional-id-expiration-ms",
        "1000",
    ]);
    let mut c = Conn::connect(b.kafka);
    c.create_topic("exp", 1, &[]);
    let (idle_pid, _) = init_ok(&mut c, "tx-idle", 60_000);
    let (pid, epoch) = init_ok(&mut c, "tx-open", 60_000);
    assert_eq!(
        add(&b, 3, "tx-open", pid, epoch, &[("exp", 0)]),
        vec![ErrorCode::NONE]
    );
    let mut forgotten = false;
    for _ in 0..500 {
        if describe(&mut c, "tx-idle").error_code == ErrorCode::TRANSACTIONAL_ID_NOT_FOUND {
            forgotten = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        forgotten,
        "tx-idle never expired: {:?}",
        describe(&mut c, "tx-idle")
    );
    assert_eq!(describe(&mut c, "tx-open").transaction_state, "Ongoing");

    b.restart();
    let mut c = Conn::connect(b.kafka);
    assert_eq!(
        describe(&mut c, "tx-idle").error_code,
        ErrorCode::TRANSACTIONAL_ID_NOT_FOUND
    );
    assert_eq!(describe(&mut c, "tx-open").transaction_state, "Ongoing");
    let (again, epoch) = init_ok(&mut c, "tx-idle", 60_000);
    assert_ne!(
        again, idle_pid,
        "a forgotten id starts with a new producer id"
    );
    assert_eq!(epoch, 0);
}

#[test]
fn zombies_are_fenced_and_old_versions_get_invalid_producer_epoch() {
    let b = start();
    let mut c = Conn::connect(b.kafka);
    c.create_topic("out", 1, &[]);
    let (pid, old) = init_ok(&mut c, "tx-z", 60_000);
    assert_eq!(
        add(&b, 3, "tx-z", pid, old, &[("out", 0)]),
        vec![ErrorCode::NONE]
    );
    // A second producer with the same transactional id: the first one's transaction is aborted
    // and its epoch fenced.
    let (pid2, new) = init_ok(&mut c, "tx-z", 60_000);
    assert_eq!(pid2, pid);
    assert!(new > old);
    wait_state(&mut c, "tx-z", "Empty");
    assert_eq!(
        wait_markers(&mut c, "out", 0, 1)[0].kind,
        TxnMarkerKind::Abort
    );
    assert_eq!(
        add(&b, 3, "tx-z", pid, old, &[("out", 0)]),
        vec![ErrorCode::PRODUCER_FENCED]
    );
    assert_eq!(
        add(&b, 1, "tx-z", pid, old, &[("out", 0)]),
        vec![ErrorCode::INVALID_PRODUCER_EPOCH]
    );
    assert_eq!(
        end(&b, 3, "tx-z", pid, old, true).error_code,
        ErrorCode::PRODUCER_FENCED
    );
    assert_eq!(
        end(&b, 1, "tx-z", pid, old, true).error_code,
        ErrorCode::INVALID_PRODUCER_EPOCH
    );
    // An unknown partition is refused, the others not attempted.
    assert_eq!(
        add(&b, 3, "tx-z", pid, new, &[("out", 0), ("nope", 0)]),
        vec![
            ErrorCode::OPERATION_NOT_ATTEMPTED,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    // A timeout above transaction.max.timeout.ms.
    assert_eq!(
        init(&mut c, "tx-big", 900_001).0,
        ErrorCode::INVALID_TRANSACTION_TIMEOUT
    );
    assert_eq!(init(&mut c, "", 1_000).0, ErrorCode::INVALID_REQUEST);
}

#[test]
fn end_txn_v5_bumps_the_epoch_at_every_end() {
    let b = start();
    let mut c = Conn::connect(b.kafka);
    c.create_topic("out", 1, &[]);
    let (pid, epoch) = init_ok(&mut c, "tx-v2", 60_000);
    assert_eq!(
        add(&b, 5, "tx-v2", pid, epoch, &[("out", 0)]),
        vec![ErrorCode::NONE]
    );
    let r = end(&b, 5, "tx-v2", pid, epoch, true);
    assert_eq!(
        (r.error_code, r.producer_id, r.producer_epoch),
        (ErrorCode::NONE, pid, epoch + 1)
    );
    // The marker carries the bumped epoch, so the producer's old epoch is over in the partition.
    let m = wait_markers(&mut c, "out", 0, 1);
    assert_eq!(m[0].producer_epoch, epoch + 1);
    wait_state(&mut c, "tx-v2", "CompleteCommit");
    // A retry with the old epoch is recognised.
    let r = end(&b, 5, "tx-v2", pid, epoch, true);
    assert_eq!(
        (r.error_code, r.producer_epoch),
        (ErrorCode::NONE, epoch + 1)
    );
}

/// Transaction protocol 2 (KIP-890 part 2), as the Java producer from Kafka 4.0 speaks it once
/// ApiVersions finalizes `transaction.version` 2: no AddPartitionsToTxn or AddOffsetsToTxn, as
/// Produce v12 and TxnOffsetCommit v5 add their partitions themselves, and every EndTxn v5
/// bumps the epoch that the next transaction then uses.
#[test]
fn protocol_2_adds_partitions_from_produce_and_txn_offset_commit() {
    let b = start();
    let mut c = Conn::connect(b.kafka);
    let Response::ApiVersions(v) = c.call(Request::ApiVersions(Default::default())) else {
        panic!("not an ApiVersions response")
    };
    let tv = v.features.iter().find(|f| f.name == "transaction.version");
    assert_eq!(
        tv.map(|f| (f.min_supported, f.max_supported, f.finalized)),
        Some((0, 2, Some(2))),
        "{v:?}"
    );
    assert!(v.finalized_features_epoch >= 0, "{v:?}");

    c.create_topic("p2", 2, &[]);
    c.create_topic("in", 1, &[]);
    let id = Some("tx-p2");
    let (pid, epoch) = init_ok(&mut c, "tx-p2", 60_000);
    // Protocol 1 only verifies: a partition never added is refused...
    let r = c.produce_batch_at(
        Some(11),
        id,
        "p2",
        0,
        producer_batch(pid, epoch, 0, 2, true),
    );
    assert_eq!(r.error_code, ErrorCode::INVALID_TXN_STATE, "{r:?}");
    assert_eq!(
        txn_offset_commit(&b, 4, "tx-p2", "g-p2", pid, epoch, 5),
        ErrorCode::INVALID_TXN_STATE
    );
    // ...protocol 2 adds it.
    for p in 0..2 {
        let r = c.produce_batch_at(
            Some(12),
            id,
            "p2",
            p,
            producer_batch(pid, epoch, 0, 2, true),
        );
        assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 0), "{r:?}");
    }
    assert_eq!(
        txn_offset_commit(&b, 5, "tx-p2", "g-p2", pid, epoch, 5),
        ErrorCode::NONE
    );
    let d = wait_state(&mut c, "tx-p2", "Ongoing");
    let mut topics: Vec<(String, usize)> = d
        .topics
        .iter()
        .map(|t| (t.topic.clone(), t.partitions.len()))
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        vec![("__consumer_offsets".into(), 1), ("p2".into(), 2)],
        "{d:?}"
    );
    assert_eq!(offset_of(&mut c, "g-p2"), -1, "pending until the commit");

    let r = end(&b, 5, "tx-p2", pid, epoch, true);
    assert_eq!(
        (r.error_code, r.producer_id, r.producer_epoch),
        (ErrorCode::NONE, pid, epoch + 1)
    );
    wait_state(&mut c, "tx-p2", "CompleteCommit");
    for p in 0..2 {
        let m = wait_markers(&mut c, "p2", p, 1);
        assert_eq!(
            (m[0].kind, m[0].producer_epoch),
            (TxnMarkerKind::Commit, epoch + 1)
        );
    }
    assert_eq!(offset_of(&mut c, "g-p2"), 5);

    // The next transaction runs at the bumped epoch, its sequences from 0; the epoch before it
    // is a zombie's.
    let next = epoch + 1;
    let r = c.produce_batch_at(
        Some(12),
        id,
        "p2",
        0,
        producer_batch(pid, epoch, 2, 1, true),
    );
    assert_eq!(r.error_code, ErrorCode::INVALID_PRODUCER_EPOCH, "{r:?}");
    let r = c.produce_batch_at(Some(12), id, "p2", 0, producer_batch(pid, next, 0, 1, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 3), "{r:?}");
    let r = end(&b, 5, "tx-p2", pid, next, false);
    assert_eq!(
        (r.error_code, r.producer_epoch),
        (ErrorCode::NONE, next + 1)
    );
    let m = wait_markers(&mut c, "p2", 0, 2);
    assert_eq!(
        (m[1].kind, m[1].producer_epoch),
        (TxnMarkerKind::Abort, next + 1)
    );
    assert_eq!(offset_of(&mut c, "g-p2"), 5);
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let b = start();
    let mut c = Conn::connect(b.kafka);
    c.create_topic("out", 1, &[]);
    let (pid, epoch) = init_ok(&mut c, "tx-slow", 100);
    assert_eq!(
        add(&b, 3, "tx-slow", pid, epoch, &[("out", 0)]),
        vec![ErrorCode::NONE]
    );
    let d = wait_state(&mut c, "tx-slow", "CompleteAbort");
    assert_eq!(d.producer_epoch, epoch + 1);
    assert_eq!(
        wait_markers(&mut c, "out", 0, 1)[0].kind,
        TxnMarkerKind::Abort
    );
    assert_eq!(
        end(&b, 3, "tx-slow", pid, epoch, true).error_code,
        ErrorCode::PRODUCER_FENCED
    );
}

fn offset_of(c: &mut Conn, group: &str) -> i64 {
    let (error, offset) = fetch_offset(c, group, false);
    assert_eq!(error, ErrorCode::NONE);
    offset
}

/// The error and offset OffsetFetch answers for `group`'s partition 0 of `in`.
fn fetch_offset(c: &mut Conn, group: &str, require_stable: bool) -> (ErrorCode, i64) {
    let r = c.call(Request::OffsetFetch(OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: group.into(),
            member_id: None,
            member_epoch: -1,
            topics: Some(vec![OffsetFetchTopic {
                name: "in".into(),
                partition_indexes: vec![0],
            }]),
        }],
        require_stable,
    }));
    let Response::OffsetFetch(r) = r else {
        panic!("{r:?}")
    };
    let p = &r.groups[0].topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

fn txn_commit_offset(
    b: &Broker,
    id: &str,
    group: &str,
    pid: i64,
    epoch: i16,
    offset: i64,
) -> ErrorCode {
    let r = call_at(
        b,
        3,
        Request::AddOffsetsToTxn(AddOffsetsToTxnRequest {
            transactional_id: id.into(),
            producer_id: pid,
            producer_epoch: epoch,
            group_id: group.into(),
        }),
    );
    let Response::AddOffsetsToTxn(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.error_code, ErrorCode::NONE);
    txn_offset_commit(b, 3, id, group, pid, epoch, offset)
}

/// TxnOffsetCommit alone at `version`, of partition 0 of `in`.
fn txn_offset_commit(
    b: &Broker,
    version: i16,
    id: &str,
    group: &str,
    pid: i64,
    epoch: i16,
    offset: i64,
) -> ErrorCode {
    let r = call_at(
        b,
        version,
        Request::TxnOffsetCommit(TxnOffsetCommitRequest {
            transactional_id: id.into(),
            group_id: group.into(),
            producer_id: pid,
            producer_epoch: epoch,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: vec![TxnOffsetCommitRequestTopic {
                name: "in".into(),
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    committed_metadata: None,
                }],
            }],
        }),
    );
    let Response::TxnOffsetCommit(r) = r else {
        panic!("{r:?}")
    };
    r.topics[0].partitions[0].error_code
}

#[test]
fn offsets_committed_in_a_transaction_are_visible_only_once_it_commits() {
    let mut b = start();
    let mut c = Conn::connect(b.kafka);
    c.create_topic("in", 1, &[]);
    let (pid, epoch) = init_ok(&mut c, "tx-o", 60_000);
    assert_eq!(
        txn_commit_offset(&b, "tx-o", "g1", pid, epoch, 42),
        ErrorCode::NONE
    );
    assert_eq!(
        offset_of(&mut c, "g1"),
        -1,
        "pending until the transaction commits"
    );
    // KIP-447: a consumer asking for stable offsets is told to ask again.
    assert_eq!(
        fetch_offset(&mut c, "g1", true),
        (ErrorCode::UNSTABLE_OFFSET_COMMIT, -1)
    );
    assert_eq!(
        end(&b, 3, "tx-o", pid, epoch, true).error_code,
        ErrorCode::NONE
    );
    wait_state(&mut c, "tx-o", "CompleteCommit");
    assert_eq!(offset_of(&mut c, "g1"), 42);
    assert_eq!(fetch_offset(&mut c, "g1", true), (ErrorCode::NONE, 42));

    assert_eq!(
        txn_commit_offset(&b, "tx-o", "g1", pid, epoch, 99),
        ErrorCode::NONE
    );
    assert_eq!(
        end(&b, 3, "tx-o", pid, epoch, false).error_code,
        ErrorCode::NONE
    );
    wait_state(&mut c, "tx-o", "CompleteAbort");
    assert_eq!(offset_of(&mut c, "g1"), 42, "aborted offsets are dropped");

    // Pending offsets of an unfinished transaction stay invisible after a restart; the replayed
    // commit and abort keep their outcome.
    assert_eq!(
        txn_commit_offset(&b, "tx-o", "g2", pid, epoch, 7),
        ErrorCode::NONE
    );
    drop(c);
    b.restart();
    let mut c = Conn::connect(b.kafka);
    assert_eq!(offset_of(&mut c, "g1"), 42);
    assert_eq!(offset_of(&mut c, "g2"), -1);
    assert_eq!(
        fetch_offset(&mut c, "g2", true),
        (ErrorCode::UNSTABLE_OFFSET_COMMIT, -1),
        "still pending after the restart"
    );
    assert_eq!(fetch_offset(&mut c, "g1", true), (ErrorCode::NONE, 42));
    assert_eq!(
        end(&b, 3, "tx-o", pid, epoch, true).error_code,
        ErrorCode::NONE
    );
    wait_state(&mut c, "tx-o", "CompleteCommit");
    assert_eq!(offset_of(&mut c, "g2"), 7);
}

/// The coordinator of `key` (`key_type` 0: group, 1: transactional id) once one answers.
fn coordinator_of(cluster: &Cluster, key_type: i8, key: &str) -> i32 {
    cluster.wait_until(&format!("a coordinator of {key}"), || {
        let r = cluster
            .conn(1)
            .call(Request::FindCoordinator(FindCoordinatorRequest {
                key_type,
                keys: vec![key.into()],
            }));
        let Response::FindCoordinator(r) = r else {
            panic!("{r:?}")
        };
        r.coordinators
            .first()
            .filter(|k| k.error_code.is_none())
            .map(|k| k.node_id)
    })
}

/// Protocol 2 across brokers: the producer's transaction coordinator leads neither the
/// partition it writes nor its group's offsets partition, so the partition leader (Produce v12)
/// and the group coordinator (TxnOffsetCommit v5) add them through AddPartitionsToTxn v5 to the
/// coordinator, and its markers reach both. (Also: `__transaction_state` gets its own
/// replication factor.)
#[test]
fn protocol_2_adds_partitions_through_a_remote_coordinator() {
    let cluster = Cluster::start(
        3,
        &[
            "--transaction-state-log-num-partitions",
            "3",
            "--transaction-state-log-replication-factor",
            "2",
            "--offsets-topic-num-partitions",
            "3",
        ],
    );
    let tid = "tx-remote";
    let coordinator = coordinator_of(&cluster, 1, tid);
    let state = cluster.metadata(1, Some(vec!["__transaction_state".into()]));
    let replicas: Vec<usize> = state.topics[0]
        .partitions
        .iter()
        .map(|p| p.replica_nodes.len())
        .collect();
    assert_eq!(replicas, vec![2, 2, 2], "{state:?}");
    let others: Vec<i32> = (1..=3).filter(|n| *n != coordinator).collect();
    cluster.conn(1).create_topic("p2", 3, &[]);
    cluster.conn(1).create_topic("in", 1, &[]);
    let partition = (0..3)
        .find(|p| others.contains(&cluster.leader_of("p2", *p)))
        .expect("a partition led by another broker than the coordinator");
    let leader = cluster.leader_of("p2", partition);
    let group = (0..100)
        .map(|i| format!("g-remote-{i}"))
        .find(|g| others.contains(&coordinator_of(&cluster, 0, g)))
        .expect("a group coordinated by another broker");
    let group_coordinator = coordinator_of(&cluster, 0, &group);

    let txn_broker = cluster.broker(coordinator);
    let mut c = cluster.conn(coordinator);
    let (pid, epoch) = cluster.wait_until("InitProducerId", || match init(&mut c, tid, 60_000) {
        (ErrorCode::NONE, pid, epoch) => Some((pid, epoch)),
        _ => None,
    });
    let mut to_leader = cluster.conn(leader);
    let mut produce = |version: i16, epoch: i16, seq: i32| {
        let batch = producer_batch(pid, epoch, seq, 1, true);
        to_leader
            .produce_batch_at(Some(version), Some(tid), "p2", partition, batch)
            .error_code
    };
    assert_eq!(produce(11, epoch, 0), ErrorCode::INVALID_TXN_STATE);
    // NOT_ENOUGH_REPLICAS while the coordinator cannot be reached yet; clients retry it.
    cluster.wait_until("Produce v12 to add its partition", || {
        match produce(12, epoch, 0) {
            ErrorCode::NONE => Some(()),
            ErrorCode::NOT_ENOUGH_REPLICAS => None,
            other => panic!("Produce v12: {other:?}"),
        }
    });
    let offsets_at = cluster.broker(group_coordinator);
    assert_eq!(
        txn_offset_commit(offsets_at, 4, tid, &group, pid, epoch, 5),
        ErrorCode::INVALID_TXN_STATE
    );
    assert_eq!(
        txn_offset_commit(offsets_at, 5, tid, &group, pid, epoch, 5),
        ErrorCode::NONE
    );
    let d = wait_state(&mut c, tid, "Ongoing");
    let mut topics: Vec<&str> = d.topics.iter().map(|t| t.topic.as_str()).collect();
    topics.sort();
    assert_eq!(topics, vec!["__consumer_offsets", "p2"], "{d:?}");

    let r = end(txn_broker, 5, tid, pid, epoch, true);
    assert_eq!(
        (r.error_code, r.producer_epoch),
        (ErrorCode::NONE, epoch + 1)
    );
    wait_state(&mut c, tid, "CompleteCommit");
    let m = wait_markers(&mut cluster.conn(leader), "p2", partition, 1);
    assert_eq!(
        (m[0].kind, m[0].producer_epoch),
        (TxnMarkerKind::Commit, epoch + 1)
    );
    let mut to_group = cluster.conn(group_coordinator);
    cluster.wait_until("the committed offset", || {
        (offset_of(&mut to_group, &group) == 5).then_some(())
    });
    // The old epoch is fenced in the partition; the bumped one opens the next transaction.
    assert_eq!(produce(12, epoch, 1), ErrorCode::INVALID_PRODUCER_EPOCH);
    assert_eq!(produce(12, epoch + 1, 0), ErrorCode::NONE);
}

fn describe_producers(
    c: &mut Conn,
    topic: &str,
    partitions: &[i32],
) -> Vec<DescribeProducersPartitionResponse> {
    let r = c.call(Request::DescribeProducers(DescribeProducersRequest {
        topics: vec![DescribeProducersTopic {
            name: topic.into(),
            partition_indexes: partitions.to_vec(),
        }],
    }));
    let Response::DescribeProducers(mut r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.topics.len(), 1, "{r:?}");
    r.topics.remove(0).partitions
}

/// DescribeProducers (KIP-664, `kafka-transactions.sh describe-producers`): each partition's
/// producers with their epoch, last sequence, last batch time and open transaction; an idempotent
/// producer has no transaction, a transactional one shows where its open transaction starts
/// until its marker ends it. Unknown partitions are UNKNOWN_TOPIC_OR_PARTITION.
#[test]
fn describe_producers_shows_sequences_and_open_transactions() {
    let b = Broker::start(&[]);
    let mut c = Conn::connect(b.kafka);
    c.create_topic("dp", 2, &[]);
    let before = crate::common::now_ms();

    let r = c.call(Request::InitProducerId(InitProducerIdRequest::default()));
    let Response::InitProducerId(idem) = r else {
        panic!("{r:?}")
    };
    assert_eq!(idem.error_code, ErrorCode::NONE);
    for (seq, n) in [(0, 3), (3, 2)] {
        let r = c.produce_batch(
            None,
            "dp",
            0,
            producer_batch(idem.producer_id, idem.producer_epoch, seq, n, false),
        );
        assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    }
    let (pid, epoch) = init_ok(&mut c, "tx-dp", 60_000);
    let r = c.produce_batch_at(
        Some(12),
        Some("tx-dp"),
        "dp",
        0,
        producer_batch(pid, epoch, 0, 2, true),
    );
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 5), "{r:?}");

    let parts = describe_producers(&mut c, "dp", &[0, 1, 7]);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].error_code, ErrorCode::NONE, "{parts:?}");
    let mut active = parts[0].active_producers.clone();
    active.sort_by_key(|p| p.producer_id);
    let by_id = |id: i64| {
        active
            .iter()
            .find(|p| p.producer_id == id)
            .unwrap_or_else(|| panic!("producer {id} missing: {active:?}"))
    };
    let i = by_id(idem.producer_id);
    assert_eq!(
        (
            i.producer_epoch,
            i.last_sequence,
            i.coordinator_epoch,
            i.current_txn_start_offset
        ),
        (i32::from(idem.producer_epoch), 4, -1, -1),
        "{i:?}"
    );
    assert!(i.last_timestamp >= before, "{i:?}");
    let t = by_id(pid);
    assert_eq!(
        (
            t.producer_epoch,
            t.last_sequence,
            t.current_txn_start_offset
        ),
        (i32::from(epoch), 1, 5),
        "{t:?}"
    );
    assert_eq!(active.len(), 2, "{active:?}");
    assert_eq!(
        (parts[1].error_code, parts[1].active_producers.len()),
        (ErrorCode::NONE, 0)
    );
    assert_eq!(parts[2].error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);

    // The commit's marker closes the transaction: no start offset any more.
    let r = end(&b, 5, "tx-dp", pid, epoch, true);
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    wait_markers(&mut c, "dp", 0, 1);
    let parts = describe_producers(&mut c, "dp", &[0]);
    let t = parts[0]
        .active_producers
        .iter()
        .find(|p| p.producer_id == pid)
        .expect("still known");
    assert_eq!(t.current_txn_start_offset, -1, "{t:?}");
    assert!(t.coordinator_epoch >= 0, "{t:?}");
}

/// Protocol 2 bumps the epoch at every EndTxn and writes the markers after answering it, so a
/// client's next transaction can reach a partition before the last one's marker does (franz-go's
/// transactional group consumers do, at once). That first batch of the new epoch must wait for
/// the marker (the coordinator answers CONCURRENT_TRANSACTIONS, the partition the retriable
/// NOT_ENOUGH_REPLICAS), never be refused with INVALID_TXN_STATE nor appended into the old
/// transaction, whose marker would then be refused as stale and leave it open for good.
#[test]
fn protocol_2_next_transaction_waits_for_the_markers_of_the_last() {
    const PARTITIONS: i32 = 32;
    const ROUNDS: usize = 20;
    let b = start();
    let mut c = Conn::connect(b.kafka);
    c.create_topic("p2-next", PARTITIONS, &[]);
    let id = Some("tx-p2-next");
    let (pid, mut epoch) = init_ok(&mut c, "tx-p2-next", 60_000);
    let mut retried = 0;
    for round in 0..ROUNDS {
        // The markers of the last transaction are written partition by partition after its
        // EndTxn was answered: produce to the partitions in reverse, so the first batches of
        // this one race them.
        for p in (0..PARTITIONS).rev() {
            let mut attempts = 0;
            loop {
                let r = c.produce_batch_at(
                    Some(12),
                    id,
                    "p2-next",
                    p,
                    producer_batch(pid, epoch, 0, 2, true),
                );
                match r.error_code {
                    ErrorCode::NONE => break,
                    ErrorCode::NOT_ENOUGH_REPLICAS if attempts < 200 => {
                        attempts += 1;
                        retried += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    _ => panic!("round {round}, partition {p}, epoch {epoch}: {r:?}"),
                }
            }
        }
        let r = end(&b, 5, "tx-p2-next", pid, epoch, round % 2 == 0);
        assert_eq!(
            (r.error_code, r.producer_epoch),
            (ErrorCode::NONE, epoch + 1),
            "round {round}: {r:?}"
        );
        epoch = r.producer_epoch;
    }
    // Every transaction ended everywhere (the last one aborted): none is left open.
    wait_state(&mut c, "tx-p2-next", "CompleteAbort");
    for p in 0..PARTITIONS {
        assert_eq!(
            wait_markers(&mut c, "p2-next", p, ROUNDS).len(),
            ROUNDS,
            "partition {p}"
        );
    }
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let open: Vec<_> = describe_producers(&mut c, "p2-next", &partitions)
        .into_iter()
        .filter(|p| {
            p.active_producers
                .iter()
                .any(|a| a.current_txn_start_offset >= 0)
        })
        .collect();
    assert!(
        open.is_empty(),
        "open transactions: {open:?} ({retried} retries)"
    );
    eprintln!("{retried} produce retries while markers were pending");
}
