//! Record-level rules and the old message formats on the wire, against the built binary:
//! KIP-467 per-record errors for keyless records on compacted topics, Produce v0-2 message sets
//! (magic 0/1, compressed or not) up-converted to v2 batches, Fetch v0-3 served by down-converting,
//! ListOffsets v0, and the limits around them (decompression bombs, zstd for old fetchers,
//! `message.downconversion.enable`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::Broker;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use weir_protocol::client::{decode_response, encode_request};
use weir_protocol::{
    FetchPartition, FetchRequest, FetchTopic, ProducePartition, ProducePartitionResponse,
    ProduceRequest, ProduceTopic, Request, Response,
};
use weir_storage::batch::testing::split_batches;
use weir_storage::batch::{compute_crc, BATCH_HEADER_LEN};
use weir_storage::compression::Codec;
use weir_storage::legacy::testing::{compressed_set, plain_set, read_set};
use weir_storage::records::{encode_batch, encode_batch_compressed, visit_records, NewRecord};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNSUPPORTED_VERSION: i16 = 35;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;

fn connect(b: &Broker) -> TcpStream {
    let s = TcpStream::connect(b.kafka).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s
}

fn read_frame(s: &mut TcpStream) -> Bytes {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("response size");
    let mut body = BytesMut::zeroed(usize::try_from(i32::from_be_bytes(len)).expect("size"));
    s.read_exact(&mut body).expect("response body");
    body.freeze()
}

/// A request at the Weir client's version.
fn call(s: &mut TcpStream, request: &Request) -> Response {
    let (frame, version) = encode_request(1, "record-formats", request).expect("encode");
    s.write_all(&frame).expect("write");
    let (_, response) =
        decode_response(request.api_key(), version, read_frame(s)).expect("decode response");
    response
}

/// A hand-built request (header v1) at `version`; returns the response body after the
/// correlation id.
fn raw_call(s: &mut TcpStream, api_key: i16, version: i16, body: &[u8]) -> Bytes {
    let mut f = BytesMut::new();
    f.put_i32(0);
    f.put_i16(api_key);
    f.put_i16(version);
    f.put_i32(7);
    f.put_i16(3);
    f.put_slice(b"old");
    f.put_slice(body);
    let size = i32::try_from(f.len() - 4).expect("size");
    f[..4].copy_from_slice(&size.to_be_bytes());
    s.write_all(&f).expect("write");
    let mut r = read_frame(s);
    assert_eq!(r.get_i32(), 7, "correlation id");
    r
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(i16::try_from(s.len()).expect("short"));
    b.put_slice(s.as_bytes());
}

fn get_str(b: &mut Bytes) -> String {
    let n = usize::try_from(b.get_i16()).expect("non-null");
    String::from_utf8(b.split_to(n).to_vec()).expect("utf-8")
}

/// Produce v0-2 of one partition: returns (error code, base offset).
fn produce_old(s: &mut TcpStream, version: i16, topic: &str, records: &[u8]) -> (i16, i64) {
    let mut b = BytesMut::new();
    b.put_i16(-1); // acks
    b.put_i32(30_000);
    b.put_i32(1);
    put_str(&mut b, topic);
    b.put_i32(1);
    b.put_i32(0);
    b.put_i32(i32::try_from(records.len()).expect("len"));
    b.put_slice(records);
    let mut r = raw_call(s, 0, version, &b);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(get_str(&mut r), topic);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i32(), 0);
    let (code, base) = (r.get_i16(), r.get_i64());
    if version >= 2 {
        r.get_i64();
    }
    if version >= 1 {
        r.get_i32();
    }
    assert_eq!(r.remaining(), 0);
    (code, base)
}

/// Fetch v0-3 of one partition: returns (error code, high watermark, records).
fn fetch_old(
    s: &mut TcpStream,
    version: i16,
    topic: &str,
    offset: i64,
    max_bytes: i32,
) -> (i16, i64, Bytes) {
    let mut b = BytesMut::new();
    b.put_i32(-1);
    b.put_i32(0); // max wait
    b.put_i32(0); // min bytes
    if version >= 3 {
        b.put_i32(max_bytes);
    }
    b.put_i32(1);
    put_str(&mut b, topic);
    b.put_i32(1);
    b.put_i32(0);
    b.put_i64(offset);
    b.put_i32(max_bytes);
    let mut r = raw_call(s, 1, version, &b);
    if version >= 1 {
        r.get_i32(); // throttle
    }
    assert_eq!(r.get_i32(), 1);
    assert_eq!(get_str(&mut r), topic);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i32(), 0);
    let (code, hw) = (r.get_i16(), r.get_i64());
    let n = usize::try_from(r.get_i32()).expect("records are never null");
    let records = r.split_to(n);
    assert_eq!(r.remaining(), 0);
    (code, hw, records)
}

fn produce_v2_batch(s: &mut TcpStream, topic: &str, batch: Vec<u8>) -> ProducePartitionResponse {
    let request = Request::Produce(ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: vec![ProducePartition {
                index: 0,
                records: Some(Bytes::from(batch)),
            }],
        }],
        ..ProduceRequest::default()
    });
    let Response::Produce(r) = call(s, &request) else {
        panic!("not a produce response")
    };
    r.topics[0].partitions[0].clone()
}

/// (offset, timestamp, key, value) of every record the log holds from `offset`, read with a
/// modern Fetch (v2 batches, decompressed here).
type Rec = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn fetch_modern(s: &mut TcpStream, topic: &str, offset: i64) -> Vec<Rec> {
    let request = Request::Fetch(FetchRequest {
        max_bytes: 64 << 20,
        topics: vec![FetchTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                fetch_offset: offset,
                partition_max_bytes: 64 << 20,
                ..FetchPartition::default()
            }],
        }],
        ..FetchRequest::default()
    });
    let Response::Fetch(r) = call(s, &request) else {
        panic!("not a fetch response")
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code.0, 0, "fetch error");
    let mut out = Vec::new();
    for (_, batch) in split_batches(p.records.in_memory().expect("decoded records")) {
        visit_records(&batch, 1 << 30, |r| {
            out.push((
                r.offset,
                r.timestamp_ms,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
            ))
        })
        .expect("records");
    }
    out
}

fn rec<'a>(key: Option<&'a [u8]>, value: Option<&'a [u8]>, ts: i64) -> NewRecord<'a> {
    NewRecord {
        key,
        value,
        headers: &[],
        timestamp_ms: ts,
    }
}

#[test]
fn keyless_records_on_a_compacted_topic_get_kip_467_record_errors() {
    let b = Broker::start(&[]);
    b.cli_ok(
        &["topic", "create", "cmp", "-c", "cleanup.policy=compact"],
        "",
    );
    b.cli_ok(&["topic", "create", "plain"], "");
    let mut s = connect(&b);
    let records = [
        rec(Some(b"k0"), Some(b"v0"), 1),
        rec(None, Some(b"v1"), 1),
        rec(None, None, 1),
    ];
    let expected = "Compacted topic cannot accept message without key in topic partition cmp-0.";
    for batch in [
        encode_batch(&records),
        encode_batch_compressed(&records, Codec::Gzip).expect("gzip"),
        encode_batch_compressed(&records, Codec::Lz4).expect("lz4"),
    ] {
        let p = produce_v2_batch(&mut s, "cmp", batch);
        assert_eq!(p.error_code.0, INVALID_RECORD);
        assert_eq!(p.base_offset, -1);
        let errors: Vec<(i32, Option<&str>)> = p
            .record_errors
            .iter()
            .map(|e| (e.batch_index, e.message.as_deref()))
            .collect();
        assert_eq!(errors, vec![(1, Some(expected)), (2, Some(expected))]);
        let message = p.error_message.expect("an error message");
        assert!(message.contains(expected), "{message}");
    }
    // Nothing was appended: keyed records start at offset 0. Keyless ones are fine elsewhere.
    let keyed = encode_batch(&[rec(Some(b"k"), None, 1)]);
    let p = produce_v2_batch(&mut s, "cmp", keyed);
    assert_eq!((p.error_code.0, p.base_offset), (0, 0));
    let p = produce_v2_batch(&mut s, "plain", encode_batch(&records));
    assert_eq!((p.error_code.0, p.base_offset), (0, 0));
    assert!(p.record_errors.is_empty());

    // The same rule for an old producer's message set (Produce v2 has no record_errors field).
    let set = plain_set(1, &[(5, Some(b"k"), Some(b"v")), (6, None, Some(b"v"))]);
    assert_eq!(produce_old(&mut s, 2, "cmp", &set), (INVALID_RECORD, -1));
}

#[test]
fn message_sets_are_up_converted_and_old_fetchers_get_them_down_converted() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "old"], "");
    let mut s = connect(&b);
    let v1 = [
        (1_600_000_000_000, Some(&b"a"[..]), Some(&b"1"[..])),
        (1_600_000_000_002, None, Some(&b"2"[..])),
        (1_600_000_000_001, Some(&b"c"[..]), None),
    ];
    let v0 = [
        (123, Some(&b"d"[..]), Some(&b"4"[..])),
        (456, Some(&b"e"[..]), Some(&b"5"[..])),
    ];
    assert_eq!(produce_old(&mut s, 2, "old", &plain_set(1, &v1)), (0, 0));
    assert_eq!(
        produce_old(&mut s, 2, "old", &compressed_set(1, Codec::Snappy, &v1)),
        (0, 3)
    );
    assert_eq!(
        produce_old(&mut s, 1, "old", &compressed_set(0, Codec::Gzip, &v0)),
        (0, 6)
    );
    // Magic-0 lz4 as Kafka < 0.10 wrote it (the historical frame header checksum).
    assert_eq!(
        produce_old(&mut s, 0, "old", &compressed_set(0, Codec::Lz4, &v0)),
        (0, 8)
    );
    assert_eq!(produce_old(&mut s, 0, "old", &plain_set(0, &v0)), (0, 10));

    let own = |r: &(i64, Option<&[u8]>, Option<&[u8]>), magic: i8| {
        (
            if magic == 0 { -1 } else { r.0 },
            r.1.map(<[u8]>::to_vec),
            r.2.map(<[u8]>::to_vec),
        )
    };
    let mut want: Vec<Rec> = Vec::new();
    for (base, recs, magic) in [
        (0, &v1[..], 1),
        (3, &v1[..], 1),
        (6, &v0[..], 0),
        (8, &v0[..], 0),
        (10, &v0[..], 0),
    ] {
        for (i, r) in recs.iter().enumerate() {
            let (ts, k, v) = own(r, magic);
            want.push((base + i as i64, ts, k, v));
        }
    }
    // Stored as v2 batches: a modern fetch reads them with keys, values and timestamps.
    assert_eq!(fetch_modern(&mut s, "old", 0), want);

    // Fetch v2/v3 read magic 1 (timestamps kept), v0/v1 magic 0 (none), from any offset.
    for version in 0..=3i16 {
        let (code, hw, records) = fetch_old(&mut s, version, "old", 4, 1 << 20);
        assert_eq!((code, hw), (0, 12), "v{version}");
        let got = read_set(&records);
        // The wrapper holding offsets 3-5 is sent whole (a client skips offset 3).
        let expected: Vec<Rec> = want[3..]
            .iter()
            .map(|(o, ts, k, v)| (*o, if version < 2 { -1 } else { *ts }, k.clone(), v.clone()))
            .collect();
        assert_eq!(got, expected, "v{version}");
    }
    // A small partition limit still returns a whole first message, and no more than it.
    let (_, _, records) = fetch_old(&mut s, 2, "old", 10, 1);
    assert_eq!(
        read_set(&records).iter().map(|m| m.0).collect::<Vec<_>>(),
        [10]
    );
}

#[test]
fn produce_v3_plus_carries_only_v2_batches() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "t"], "");
    let mut s = connect(&b);
    let p = produce_v2_batch(&mut s, "t", plain_set(1, &[(1, Some(b"k"), Some(b"v"))]));
    assert_eq!(p.error_code.0, INVALID_RECORD);
    assert_eq!(fetch_modern(&mut s, "t", 0), vec![]);
}

#[test]
fn decompression_bombs_are_refused_and_the_broker_keeps_serving() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "t"], "");
    b.cli_ok(
        &["topic", "create", "cmp", "-c", "cleanup.policy=compact"],
        "",
    );
    let mut s = connect(&b);
    let zeros = vec![0u8; 65 << 20];
    let bomb = compressed_set(1, Codec::Gzip, &[(1, Some(b"k"), Some(&zeros))]);
    assert!(
        bomb.len() < 1 << 20,
        "small on the wire: {} bytes",
        bomb.len()
    );
    assert_eq!(produce_old(&mut s, 2, "t", &bomb), (MESSAGE_TOO_LARGE, -1));

    let batch =
        encode_batch_compressed(&[rec(Some(b"k"), Some(&zeros), 1)], Codec::Lz4).expect("lz4");
    assert!(
        batch.len() < 1 << 20,
        "small on the wire: {} bytes",
        batch.len()
    );
    let p = produce_v2_batch(&mut s, "cmp", batch);
    assert_eq!(p.error_code.0, MESSAGE_TOO_LARGE);

    let p = produce_v2_batch(
        &mut s,
        "cmp",
        encode_batch(&[rec(Some(b"k"), Some(b"v"), 1)]),
    );
    assert_eq!((p.error_code.0, p.base_offset), (0, 0));
}

/// A v2 batch whose records are one zstd frame of a single raw block (zstd cannot be written
/// here; a raw block is valid zstd).
fn zstd_batch(records: &[NewRecord<'_>]) -> Vec<u8> {
    let plain = encode_batch(records);
    let section = &plain[BATCH_HEADER_LEN..];
    assert!(section.len() < 256);
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, section.len() as u8];
    let block_header = ((section.len() as u32) << 3) | 1;
    frame.extend_from_slice(&block_header.to_le_bytes()[..3]);
    frame.extend_from_slice(section);
    let mut batch = plain[..BATCH_HEADER_LEN].to_vec();
    batch.extend_from_slice(&frame);
    let length = i32::try_from(batch.len() - 12).expect("length");
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[21..23].copy_from_slice(&4i16.to_be_bytes()); // attributes: zstd
    let crc = compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[test]
fn old_fetchers_cannot_read_zstd_and_down_conversion_can_be_disabled() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "z"], "");
    b.cli_ok(
        &[
            "topic",
            "create",
            "nodown",
            "-c",
            "message.downconversion.enable=false",
        ],
        "",
    );
    let mut s = connect(&b);
    let p = produce_v2_batch(
        &mut s,
        "z",
        zstd_batch(&[rec(Some(b"k"), Some(b"zstd!"), 9)]),
    );
    assert_eq!((p.error_code.0, p.base_offset), (0, 0));
    assert_eq!(
        fetch_modern(&mut s, "z", 0),
        vec![(0, 9, Some(b"k".to_vec()), Some(b"zstd!".to_vec()))]
    );
    let (code, _, records) = fetch_old(&mut s, 2, "z", 0, 1 << 20);
    assert_eq!((code, records.len()), (UNSUPPORTED_COMPRESSION_TYPE, 0));

    let p = produce_v2_batch(
        &mut s,
        "nodown",
        encode_batch(&[rec(Some(b"k"), Some(b"v"), 1)]),
    );
    assert_eq!(p.error_code.0, 0);
    let (code, _, records) = fetch_old(&mut s, 3, "nodown", 0, 1 << 20);
    assert_eq!((code, records.len()), (UNSUPPORTED_VERSION, 0));
    assert_eq!(fetch_modern(&mut s, "nodown", 0).len(), 1);
}

#[test]
fn list_offsets_v0_answers_the_earliest_and_latest_offsets() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "t"], "");
    let mut s = connect(&b);
    let batch = encode_batch(&[rec(Some(b"a"), None, 1), rec(Some(b"b"), None, 1)]);
    assert_eq!(produce_v2_batch(&mut s, "t", batch).error_code.0, 0);

    let mut body = BytesMut::new();
    body.put_i32(-1);
    body.put_i32(1);
    put_str(&mut body, "t");
    body.put_i32(3);
    for (partition, timestamp) in [(0, -2i64), (0, -1), (7, -1)] {
        body.put_i32(partition);
        body.put_i64(timestamp);
        body.put_i32(1); // max_num_offsets
    }
    let mut r = raw_call(&mut s, 2, 0, &body);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(get_str(&mut r), "t");
    assert_eq!(r.get_i32(), 3);
    let mut got = Vec::new();
    for _ in 0..3 {
        let (partition, code, n) = (r.get_i32(), r.get_i16(), r.get_i32());
        let offsets: Vec<i64> = (0..n).map(|_| r.get_i64()).collect();
        got.push((partition, code, offsets));
    }
    assert_eq!(
        got,
        vec![
            (0, 0, vec![0]),
            (0, 0, vec![2]),
            (7, UNKNOWN_TOPIC_OR_PARTITION, vec![])
        ]
    );
}

/// `batch` with its attributes and lastOffsetDelta replaced (CRC recomputed).
fn patched(mut batch: Vec<u8>, attributes: i16, last_offset_delta: i32) -> Vec<u8> {
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    let crc = compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[test]
fn clients_cannot_write_control_batches_or_batches_with_offset_gaps() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "t"], "");
    let mut s = connect(&b);
    let one = || encode_batch(&[rec(Some(b"k"), Some(b"v"), 1)]);
    // A control batch (attribute bit 5) without the transactional bit.
    let p = produce_v2_batch(&mut s, "t", patched(one(), 0x20, 0));
    assert_eq!(p.error_code.0, INVALID_RECORD);
    // One record claiming an offset range of three.
    let p = produce_v2_batch(&mut s, "t", patched(one(), 0, 2));
    assert_eq!(p.error_code.0, INVALID_RECORD);
    assert_eq!(fetch_modern(&mut s, "t", 0), vec![]);
    let p = produce_v2_batch(&mut s, "t", one());
    assert_eq!((p.error_code.0, p.base_offset), (0, 0));
}
