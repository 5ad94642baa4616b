//! Graceful shutdown of the real binary under load: SIGTERM while a producer is writing, exit code
//! 0, every log closed cleanly (the storage clean-shutdown marker is present, so the next open has
//! no recovery to do and truncates nothing), and every acknowledged record present on reopen.
//! A broker whose log output cannot be written keeps serving and still exits cleanly.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc;

use crate::common::Broker;
use bytes::{Bytes, BytesMut};
use weir_protocol::client::{decode_response, encode_request};
use weir_protocol::{ProducePartition, ProduceRequest, ProduceTopic, Request, Response};
use weir_storage::records::{decode_records, encode_batch, NewRecord};
use weir_storage::{DataDir, LogConfig};

const TOPIC: &str = "load";
const PARTITIONS: i32 = 2;

/// One Produce call over a raw socket: `Some(base_offset)` on success, `None` once the broker is
/// gone (connection closed or reset).
fn produce(stream: &mut TcpStream, corr: i32, partition: i32, values: &[String]) -> Option<i64> {
    let records: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord {
            value: Some(v.as_bytes()),
            timestamp_ms: crate::common::now_ms(),
            ..NewRecord::default()
        })
        .collect();
    let batch = encode_batch(&records);
    let request = Request::Produce(ProduceRequest {
        legacy_formats_allowed: false,
        adds_partitions_to_txn: false,
        uses_topic_ids: false,
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: TOPIC.into(),
            topic_id: [0; 16],
            partitions: vec![ProducePartition {
                index: partition,
                records: Some(Bytes::from(batch)),
            }],
        }],
    });
    let (frame, version) = encode_request(corr, "shutdown-test", &request).expect("encode");
    stream.write_all(&frame).ok()?;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).ok()?;
    let len = usize::try_from(i32::from_be_bytes(prefix)).expect("length");
    let mut body = BytesMut::zeroed(len);
    stream.read_exact(&mut body).ok()?;
    let (got, response) =
        decode_response(weir_protocol::api_key::PRODUCE, version, body.freeze()).expect("decode");
    assert_eq!(got, corr);
    let Response::Produce(r) = response else {
        panic!("not a produce response");
    };
    let p = &r.topics[0].partitions[0];
    assert!(p.error_code.is_none(), "produce error {}", p.error_code);
    Some(p.base_offset)
}

#[test]
fn sigterm_under_load_exits_cleanly_and_keeps_every_acknowledged_record() {
    let mut b = Broker::start(&["--fsync", "interval:50"]);
    b.cli_ok(
        &["topic", "create", TOPIC, "-p", &PARTITIONS.to_string()],
        "",
    );

    // Producer threads: each writes to its own partition until the broker goes away, reporting
    // every acknowledged batch.
    let (acked_tx, acked_rx) = mpsc::channel::<(i32, i64, Vec<String>)>();
    let mut producers = Vec::new();
    for partition in 0..PARTITIONS {
        let addr = b.kafka;
        let tx = acked_tx.clone();
        producers.push(std::thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).expect("connect");
            for n in 0.. {
                let values: Vec<String> =
                    (0..5).map(|i| format!("p{partition}-b{n}-r{i}")).collect();
                match produce(&mut stream, n + 1, partition, &values) {
                    Some(base) => {
                        if tx.send((partition, base, values)).is_err() {
                            return;
                        }
                    }
                    None => return,
                }
            }
        }));
    }
    drop(acked_tx);

    // Signal once both producers are well under way (by count of acks, not by time).
    let mut acked: Vec<(i32, i64, Vec<String>)> = Vec::new();
    let mut per_partition: BTreeMap<i32, usize> = BTreeMap::new();
    while per_partition.len() < PARTITIONS as usize || per_partition.values().any(|&n| n < 200) {
        let a = acked_rx.recv().expect("producers running");
        *per_partition.entry(a.0).or_default() += 1;
        acked.push(a);
    }
    b.signal("TERM");
    // Keep collecting: requests in flight at the signal are still answered.
    acked.extend(acked_rx.iter());
    for p in producers {
        p.join().expect("producer thread");
    }
    let code = b.wait();
    assert_eq!(code, Some(0), "weir exited with {code:?}:\n{}", b.stderr());
    let stderr = b.stderr();
    assert!(stderr.contains("shutdown complete"), "{stderr}");

    // Every partition log was closed cleanly: no recovery (and so no truncation) on reopen.
    let logs = b.data_dir().join("logs");
    for p in 0..PARTITIONS {
        let marker = logs.join(format!("{TOPIC}-{p}")).join("clean-shutdown");
        assert!(marker.exists(), "{} missing", marker.display());
    }

    let data = DataDir::open(&logs).expect("reopen data dir");
    for p in 0..PARTITIONS {
        let log = data
            .open_log(&format!("{TOPIC}-{p}"), LogConfig::default())
            .expect("open log");
        let mut stored: BTreeMap<i64, Bytes> = BTreeMap::new();
        let mut offset = log.log_start_offset();
        while offset < log.high_watermark() {
            let bytes = Bytes::from(log.read(offset, 1 << 20).expect("read"));
            let records = decode_records(&bytes).expect("decode stored batches");
            assert!(!records.is_empty(), "no progress reading at {offset}");
            for r in records {
                offset = r.offset + 1;
                stored.insert(r.offset, Bytes::from(r.value.expect("value")));
            }
        }
        let mine: Vec<&(i32, i64, Vec<String>)> = acked.iter().filter(|a| a.0 == p).collect();
        assert!(mine.len() >= 200);
        for (_, base, values) in mine {
            for (i, v) in values.iter().enumerate() {
                let at = base + i as i64;
                assert_eq!(
                    stored.get(&at).map(|b| b.as_ref()),
                    Some(v.as_bytes()),
                    "acknowledged record at {TOPIC}-{p}@{at} missing or different"
                );
            }
        }
    }
    data.shutdown();
}

/// The broker's stderr on `/dev/full` (every write fails with ENOSPC, as for a log file on a full
/// disk): log lines are lost, nothing else. It starts, creates a topic, answers, and exits with 0
/// on SIGTERM; a log line whose write failed used to panic the thread that logged it (the
/// logger reported the failure with `eprintln!`, which panics when stderr fails).
#[test]
fn a_broker_whose_log_output_cannot_be_written_serves_and_exits_cleanly() {
    let mut broker = Broker::start_with_stderr(&[], Path::new("/dev/full"));
    broker.cli_ok(&["topic", "create", "unlogged", "--partitions", "2"], "");
    let listed = broker.cli_ok(&["topic", "list"], "");
    assert!(listed.contains("unlogged"), "topic list: {listed}");
    broker.signal("TERM");
    assert_eq!(broker.wait(), Some(0), "exit code after SIGTERM");
}
