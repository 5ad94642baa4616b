//! Transactions, the partition side: transactional batches produced over the wire, transaction
//! markers appended as the coordinator appends them (`Partition::append_txn_marker`, called on
//! an in-process broker: the test plays the coordinator), and what read_committed consumers see
//! (last stable offset, aborted transactions, ListOffsets), also after a kill -9.

use std::path::PathBuf;

use crate::common::inproc::InProcess;
use crate::common::kafka::Conn;
use weir_broker::broker::Broker;
use weir_broker::config::BrokerConfig;
use weir_broker::partition::MarkerError;
use weir_protocol::*;
use weir_storage::records::{TxnMarker, TxnMarkerKind};

/// An in-process broker on `data_dir`, with a handle on its state.
fn start(data_dir: PathBuf) -> InProcess {
    // The test plays the transaction coordinator: no coordinator state to verify against.
    InProcess::start(BrokerConfig {
        data_dir,
        transaction_partition_verification_enable: false,
        ..BrokerConfig::default()
    })
}

fn batch(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> Vec<u8> {
    crate::common::kafka::producer_batch(pid, epoch, seq, n, transactional)
}

fn produce(conn: &mut Conn, topic: &str, records: Vec<u8>) -> ProducePartitionResponse {
    conn.produce_batch(Some("txn-test"), topic, 0, records)
}

fn fetch(conn: &mut Conn, topic: &str, offset: i64, isolation_level: i8) -> FetchPartitionResponse {
    let response = conn.call(Request::Fetch(FetchRequest {
        isolation_level,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..FetchPartition::default()
            }],
        }],
        ..FetchRequest::default()
    }));
    let Response::Fetch(mut r) = response else {
        panic!("not a Fetch response: {response:?}");
    };
    r.topics.remove(0).partitions.remove(0)
}

fn latest(conn: &mut Conn, topic: &str, isolation_level: i8) -> i64 {
    let response = conn.call(Request::ListOffsets(ListOffsetsRequest {
        isolation_level,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition::default()],
        }],
        ..ListOffsetsRequest::default()
    }));
    let Response::ListOffsets(r) = response else {
        panic!("not a ListOffsets response: {response:?}");
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::NONE, "{p:?}");
    p.offset
}

/// Appends a marker as the coordinator does; returns its offset.
fn marker(
    broker: &Broker,
    topic: &str,
    pid: i64,
    epoch: i16,
    kind: TxnMarkerKind,
    coordinator_epoch: i32,
) -> Result<i64, MarkerError> {
    let partition = broker.topics.partition(topic, 0).expect("partition");
    let m = TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        kind,
        coordinator_epoch,
    };
    let pending = partition.append_txn_marker(&m, 1, crate::common::now_ms())?;
    let offset = pending.result.base_offset;
    pending.wait().expect("marker durable");
    partition.note_durable();
    broker.appended.notify_waiters();
    Ok(offset)
}

fn aborted(r: &FetchPartitionResponse) -> Vec<(i64, i64)> {
    let mut a: Vec<(i64, i64)> = r
        .aborted_transactions
        .iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect();
    a.sort_unstable();
    a
}

const UNCOMMITTED: i8 = 0;
const COMMITTED: i8 = 1;

#[test]
fn read_committed_reads_below_the_lso_and_learns_the_aborted_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path().to_path_buf());
    let mut conn = Conn::connect(running.addr);
    conn.create_topic("txn", 1, &[]);

    // Producer 1000 opens a transaction at offset 0; a plain batch follows at 2.
    let r = produce(&mut conn, "txn", batch(1000, 0, 0, 2, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 0), "{r:?}");
    let r = produce(&mut conn, "txn", batch(-1, -1, -1, 1, false));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 2), "{r:?}");

    let committed = fetch(&mut conn, "txn", 0, COMMITTED);
    assert_eq!(committed.error_code, ErrorCode::NONE);
    assert_eq!(
        (committed.high_watermark, committed.last_stable_offset),
        (3, 0)
    );
    assert!(committed.records.is_empty());
    let uncommitted = fetch(&mut conn, "txn", 0, UNCOMMITTED);
    assert_eq!(uncommitted.last_stable_offset, 0);
    assert!(!uncommitted.records.is_empty());
    assert_eq!(latest(&mut conn, "txn", COMMITTED), 0);
    assert_eq!(latest(&mut conn, "txn", UNCOMMITTED), 3);

    // The coordinator aborts it: the LSO moves to the end, and the abort is reported.
    let at = marker(&running.broker, "txn", 1000, 0, TxnMarkerKind::Abort, 1).expect("marker");
    assert_eq!(at, 3);
    let committed = fetch(&mut conn, "txn", 0, COMMITTED);
    assert_eq!(
        (committed.high_watermark, committed.last_stable_offset),
        (4, 4)
    );
    assert!(!committed.records.is_empty());
    assert_eq!(aborted(&committed), vec![(1000, 0)]);
    // A fetch that starts after the marker has nothing to drop.
    let r = produce(&mut conn, "txn", batch(2000, 0, 0, 1, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 4), "{r:?}");
    let at = marker(&running.broker, "txn", 2000, 0, TxnMarkerKind::Commit, 1).expect("marker");
    assert_eq!(at, 5);
    let committed = fetch(&mut conn, "txn", 4, COMMITTED);
    assert_eq!(committed.last_stable_offset, 6);
    assert!(!committed.records.is_empty());
    assert_eq!(aborted(&committed), Vec::new());
    assert_eq!(latest(&mut conn, "txn", COMMITTED), 6);
    // read_uncommitted gets no aborted list.
    assert_eq!(
        aborted(&fetch(&mut conn, "txn", 0, UNCOMMITTED)),
        Vec::new()
    );

    // A zombie coordinator (older coordinator epoch) is fenced; so is an older producer epoch.
    let fenced = marker(&running.broker, "txn", 1000, 0, TxnMarkerKind::Commit, 0);
    assert!(
        matches!(
            fenced,
            Err(MarkerError::Refused(
                ErrorCode::TRANSACTION_COORDINATOR_FENCED
            ))
        ),
        "{fenced:?}"
    );
    let r = produce(&mut conn, "txn", batch(3000, 2, 0, 1, true));
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    let stale = marker(&running.broker, "txn", 3000, 1, TxnMarkerKind::Abort, 1);
    assert!(
        matches!(
            stale,
            Err(MarkerError::Refused(ErrorCode::INVALID_PRODUCER_EPOCH))
        ),
        "{stale:?}"
    );
    // Data from an older producer epoch: INVALID_PRODUCER_EPOCH.
    let r = produce(&mut conn, "txn", batch(3000, 1, 0, 1, true));
    assert_eq!(r.error_code, ErrorCode::INVALID_PRODUCER_EPOCH, "{r:?}");
    // A non-transactional batch while its transaction is open: INVALID_TXN_STATE.
    let r = produce(&mut conn, "txn", batch(3000, 2, 1, 1, false));
    assert_eq!(r.error_code, ErrorCode::INVALID_TXN_STATE, "{r:?}");
    // A retry of the transactional batch is a duplicate, the next one appends.
    let r = produce(&mut conn, "txn", batch(3000, 2, 0, 1, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 6), "{r:?}");
    let r = produce(&mut conn, "txn", batch(3000, 2, 1, 1, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 7), "{r:?}");
    assert_eq!(fetch(&mut conn, "txn", 0, COMMITTED).last_stable_offset, 6);
    // Transactional records without a producer id are refused.
    let r = produce(&mut conn, "txn", batch(-1, -1, -1, 1, true));
    assert_eq!(r.error_code, ErrorCode::INVALID_RECORD, "{r:?}");
}

#[test]
fn the_last_stable_offset_never_falls_below_the_log_start() {
    let running = InProcess::start_temp(|c| c.transaction_partition_verification_enable = false);
    let mut conn = Conn::connect(running.addr);
    conn.create_topic("txn", 1, &[("segment.bytes", "400")]);
    // Producer 1 opens a transaction at offset 0 and keeps it open; plain batches follow, over
    // several segments.
    let r = produce(&mut conn, "txn", batch(1, 0, 0, 1, true));
    assert_eq!((r.error_code, r.base_offset), (ErrorCode::NONE, 0), "{r:?}");
    for _ in 0..8 {
        let r = produce(&mut conn, "txn", batch(-1, -1, -1, 1, false));
        assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    }
    assert_eq!(fetch(&mut conn, "txn", 0, COMMITTED).last_stable_offset, 0);

    // DeleteRecords (like retention) removes the start of the open transaction.
    let response = conn.call(Request::DeleteRecords(DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: "txn".into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: 0,
                offset: 5,
            }],
        }],
        timeout_ms: 30_000,
    }));
    let Response::DeleteRecords(r) = response else {
        panic!("not a DeleteRecords response: {response:?}");
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!(
        (p.error_code, p.low_watermark),
        (ErrorCode::NONE, 5),
        "{p:?}"
    );

    // The LSO is the log start now: a read_committed consumer that starts at the latest
    // offset lands in range and waits there for the transaction to end.
    assert_eq!(latest(&mut conn, "txn", COMMITTED), 5);
    let r = fetch(&mut conn, "txn", 5, COMMITTED);
    assert_eq!(
        (r.error_code, r.log_start_offset, r.last_stable_offset),
        (ErrorCode::NONE, 5, 5),
        "{r:?}"
    );
    assert!(r.records.is_empty(), "{r:?}");
    // Once it ends, everything from the log start up is readable.
    let end = marker(&running.broker, "txn", 1, 0, TxnMarkerKind::Commit, 1).expect("commit");
    assert_eq!(latest(&mut conn, "txn", COMMITTED), end + 1);
    let r = fetch(&mut conn, "txn", 5, COMMITTED);
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    let batches =
        weir_storage::batch::validate_batches(r.records.in_memory().expect("decoded records"))
            .expect("batches");
    assert_eq!(batches.first().map(|b| b.base_offset), Some(5));
}

/// Run as a child process by the kill -9 test: writes transactions, says READY, waits to die.
fn kill9_child(dir: PathBuf) {
    let running = start(dir);
    let mut conn = Conn::connect(running.addr);
    // Small segments: the log rolls (and snapshots producer state) in the middle of it all.
    conn.create_topic("txn", 1, &[("segment.bytes", "400")]);
    let b = &running.broker;
    let mut seq = [0i32; 4];
    let mut send = |conn: &mut Conn, pid: usize| {
        let r = produce(conn, "txn", batch(pid as i64, 0, seq[pid], 1, true));
        assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
        seq[pid] += 1;
        r.base_offset
    };
    let first1 = send(&mut conn, 1);
    let first2 = send(&mut conn, 2);
    send(&mut conn, 1);
    marker(b, "txn", 1, 0, TxnMarkerKind::Abort, 1).expect("abort 1");
    for _ in 0..6 {
        send(&mut conn, 2);
    }
    let first3 = send(&mut conn, 3);
    let again1 = send(&mut conn, 1);
    marker(b, "txn", 1, 0, TxnMarkerKind::Commit, 1).expect("commit 1");
    send(&mut conn, 3);
    let log = &b.topics.partition("txn", 0).expect("partition").log;
    assert!(log.segment_count() > 2, "{} segments", log.segment_count());
    println!("READY {first1} {first2} {first3} {again1}");
    std::thread::sleep(std::time::Duration::from_secs(600));
}

#[test]
fn open_transactions_and_the_abort_index_survive_kill_9() {
    if let Ok(dir) = std::env::var("WEIR_TXN_KILL9_CHILD") {
        kill9_child(PathBuf::from(dir));
        return;
    }
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "txn_partition::open_transactions_and_the_abort_index_survive_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WEIR_TXN_KILL9_CHILD", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("child");
    let stdout = child.stdout.take().expect("stdout");
    let mut ready = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        // libtest prints `test <name> ... ` before the child's own output on the same line.
        if let Some(rest) = line.split_once("READY ").map(|(_, r)| r) {
            ready = Some(
                rest.split(' ')
                    .map(|x| x.parse::<i64>().expect("offset"))
                    .collect::<Vec<_>>(),
            );
            break;
        }
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let ready = ready.expect("the child wrote its transactions");
    let (first1, first2, first3) = (ready[0], ready[1], ready[2]);

    let running = start(dir.path().to_path_buf());
    let mut conn = Conn::connect(running.addr);
    // Producers 2 and 3 are still open: the LSO is producer 2's first offset.
    let r = fetch(&mut conn, "txn", 0, COMMITTED);
    assert_eq!(r.last_stable_offset, first2, "{r:?}");
    assert_eq!(aborted(&r), vec![(1, first1)]);
    let partition = running
        .broker
        .topics
        .partition("txn", 0)
        .expect("partition");
    assert_eq!(
        partition.producers.lock().open_transactions(),
        vec![(2, first2), (3, first3)]
    );
    // Producer 2 aborts after the restart: the LSO moves on to producer 3's first offset, and
    // both aborts are indexed.
    marker(&running.broker, "txn", 2, 0, TxnMarkerKind::Abort, 1).expect("abort 2");
    let r = fetch(&mut conn, "txn", 0, COMMITTED);
    assert_eq!(r.last_stable_offset, first3);
    let all: Vec<(i64, i64)> = partition
        .log
        .all_aborted_txns()
        .iter()
        .map(|t| (t.producer_id, t.first_offset))
        .collect();
    assert_eq!(all, vec![(1, first1), (2, first2)]);
    // Everything up to the LSO is readable and the reported aborts cover the range read.
    let mut offset = 0;
    let mut reported = Vec::new();
    while offset < first3 {
        let r = fetch(&mut conn, "txn", offset, COMMITTED);
        assert_eq!(r.error_code, ErrorCode::NONE);
        reported.extend(aborted(&r));
        let batches =
            weir_storage::batch::validate_batches(r.records.in_memory().expect("decoded records"))
                .expect("batches");
        offset = batches.last().expect("a batch").last_offset() + 1;
    }
    reported.sort_unstable();
    reported.dedup();
    assert_eq!(reported, vec![(1, first1), (2, first2)]);
}
