//! Hostile input: short headers, huge counts and lengths, corrupted record batches, and a
//! proptest that throws arbitrary bytes and mutations of valid requests (every served API
//! at every served version) at `decode_request`. Nothing may panic or abort, and huge
//! claimed sizes must fail fast instead of allocating.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::{crate_versions, request_frame, sb, versions};
use kafka_protocol::messages::{self as m, BrokerId, GroupId, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable};
use proptest::prelude::*;
use weir_protocol::{api_key as k, decode_request, DecodeError};

/// Header for `api_key`/`version` with a null client id, plus `body`.
fn raw_frame(api_key: i16, version: i16, body: &[u8]) -> Bytes {
    let mut f = BytesMut::new();
    f.put_i16(api_key);
    f.put_i16(version);
    f.put_i32(1);
    f.put_i16(-1); // null client id
    if version >= 9 && api_key == k::METADATA {
        f.put_u8(0); // header v2: empty tagged fields
    }
    f.put_slice(body);
    f.freeze()
}

fn assert_fast_body_error(frame: Bytes) {
    let start = Instant::now();
    let res = decode_request(frame);
    assert!(
        matches!(res, Err(DecodeError::Body { .. })),
        "expected a body error, got {res:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn headers_shorter_than_8_bytes_are_rejected() {
    let full = [0u8, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff];
    for len in 0..8 {
        let res = decode_request(Bytes::copy_from_slice(&full[..len]));
        assert!(
            matches!(res, Err(DecodeError::Header(_))),
            "len {len}: {res:?}"
        );
    }
    // 8 bytes: the client id length is missing.
    assert!(matches!(
        decode_request(Bytes::copy_from_slice(&full[..8])),
        Err(DecodeError::Header(_))
    ));
    // Client id claiming more bytes than the frame has.
    let mut f = BytesMut::new();
    f.put_slice(&full[..8]);
    f.put_i16(i16::MAX);
    f.put_slice(b"abc");
    assert!(matches!(
        decode_request(f.freeze()),
        Err(DecodeError::Header(_))
    ));
    // Negative client id length other than -1.
    let mut f = BytesMut::new();
    f.put_slice(&full[..8]);
    f.put_i16(-2);
    assert!(matches!(
        decode_request(f.freeze()),
        Err(DecodeError::Header(_))
    ));
}

#[test]
fn huge_array_counts_fail_fast() {
    // Metadata v1: a 4-byte body claiming i32::MAX topics.
    assert_fast_body_error(raw_frame(k::METADATA, 1, &[0x7f, 0xff, 0xff, 0xff]));
    // Metadata v9+ (compact array): varint u32::MAX.
    for v in 9..=12 {
        assert_fast_body_error(raw_frame(k::METADATA, v, &[0xff, 0xff, 0xff, 0xff, 0x0f]));
    }
    // Produce v0 (hand-decoded path): acks, timeout, then i32::MAX topics.
    let mut body = BytesMut::new();
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(i32::MAX);
    assert_fast_body_error(raw_frame(k::PRODUCE, 0, &body));
    // Fetch v4: replica, max_wait, min_bytes, max_bytes, isolation, then i32::MAX topics.
    let mut body = BytesMut::new();
    body.put_i32(-1);
    body.put_i32(0);
    body.put_i32(0);
    body.put_i32(0);
    body.put_i8(0);
    body.put_i32(i32::MAX);
    assert_fast_body_error(raw_frame(k::FETCH, 4, &body));
}

#[test]
fn huge_string_and_bytes_lengths_fail_fast() {
    // Metadata v1, one topic whose name claims i16::MAX bytes.
    let mut body = BytesMut::new();
    body.put_i32(1);
    body.put_i16(i16::MAX);
    body.put_slice(b"short");
    assert_fast_body_error(raw_frame(k::METADATA, 1, &body));
    // Metadata v9, one topic whose compact name claims u32::MAX - 1 bytes.
    let mut body = BytesMut::new();
    body.put_u8(2); // one element
    body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_fast_body_error(raw_frame(k::METADATA, 9, &body));
    // JoinGroup v2 protocol metadata claiming i32::MAX bytes.
    let mut body = BytesMut::new();
    for s in ["g", ""] {
        body.put_i16(s.len() as i16);
        body.put_slice(s.as_bytes());
        if s == "g" {
            body.put_i32(10_000); // session timeout
            body.put_i32(10_000); // rebalance timeout
        }
    }
    body.put_i16(8);
    body.put_slice(b"consumer");
    body.put_i32(1);
    body.put_i16(5);
    body.put_slice(b"range");
    body.put_i32(i32::MAX);
    let mut f = BytesMut::new();
    f.put_i16(k::JOIN_GROUP);
    f.put_i16(2);
    f.put_i32(1);
    f.put_i16(-1);
    f.put_slice(&body);
    assert_fast_body_error(f.freeze());
}

/// The vendored crate itself: array counts larger than the buffer are decode errors.
#[test]
fn vendored_crate_bounds_array_counts() {
    let mut buf = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    assert!(m::MetadataRequest::decode(&mut buf, 1).is_err());
    let mut buf = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(m::MetadataRequest::decode(&mut buf, 12).is_err());
    // The crate's own header decoder used to panic on < 4 bytes.
    for len in 0..4 {
        let mut buf = Bytes::copy_from_slice(&[0, 3, 0, 1][..len]);
        assert!(kafka_protocol::protocol::decode_request_header_from_buffer(&mut buf).is_err());
    }
}

/// A v2 record batch with a valid CRC whose header claims `record_count` records.
fn batch_with_count(record_count: i32) -> Bytes {
    let mut after_crc = BytesMut::new();
    after_crc.put_i16(0); // attributes: no compression
    after_crc.put_i32(0); // last offset delta
    after_crc.put_i64(0); // first timestamp
    after_crc.put_i64(0); // max timestamp
    after_crc.put_i64(-1); // producer id
    after_crc.put_i16(-1); // producer epoch
    after_crc.put_i32(-1); // base sequence
    after_crc.put_i32(record_count);
    after_crc.put_slice(&[0u8; 3]); // a few bytes of "records"
    let crc = crc32c::crc32c(&after_crc);
    let mut b = BytesMut::new();
    b.put_i64(0); // base offset
    b.put_i32((4 + 1 + 4 + after_crc.len()) as i32); // batch length
    b.put_i32(0); // partition leader epoch
    b.put_i8(2); // magic
    b.put_u32(crc);
    b.put_slice(&after_crc);
    b.freeze()
}

/// The vendored record decoder (not used by Weir, which passes batches through) no longer
/// reserves `record_count` records: i32::MAX and negative counts are errors.
#[test]
fn vendored_crate_bounds_record_counts() {
    use kafka_protocol::records::RecordBatchDecoder;
    for count in [i32::MAX, -1, i32::MIN, 1_000_000] {
        let mut buf = batch_with_count(count);
        let start = Instant::now();
        assert!(
            RecordBatchDecoder::decode(&mut buf).is_err(),
            "count {count}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

/// Weir never decodes records: a Produce carrying the i32::MAX-count batch decodes, and
/// the batch comes through byte for byte.
#[test]
fn produce_with_hostile_record_count_passes_through() {
    let batch = batch_with_count(i32::MAX);
    for v in 3..=newest(k::PRODUCE) {
        let mut p = m::produce_request::PartitionProduceData::default();
        p.records = Some(batch.clone());
        let mut t = m::produce_request::TopicProduceData::default();
        t.name = TopicName(sb("t"));
        t.partition_data = vec![p];
        let mut r = m::ProduceRequest::default();
        r.topic_data = vec![t];
        let (_, req) = decode_request(request_frame(k::PRODUCE, v, 1, &r)).expect("decodes");
        let weir_protocol::Request::Produce(p) = req else {
            panic!()
        };
        assert_eq!(p.topics[0].partitions[0].records.as_ref(), Some(&batch));
    }
}

// ---------------------------------------------------------------------------------------
// proptest: arbitrary bytes and mutations of valid requests
// ---------------------------------------------------------------------------------------

/// The newest version of `key` that Weir serves.
fn newest(key: i16) -> i16 {
    weir_protocol::supported_range(key).expect("a served api").1
}

fn frame<T: Encodable>(key: i16, v: i16, body: &T) -> Bytes {
    request_frame(key, v, 7, body)
}

/// One valid request per served (api, version), each with nested elements populated so
/// that mutations reach the inner decoders: written here for the hand-written APIs (only
/// fields present at every version are set unless the version is checked), generated with
/// every field set for the APIs the table mirrors.
fn seeds() -> Vec<Bytes> {
    let mut out = Vec::new();
    for &(key, min, max) in weir_protocol::supported_apis() {
        for v in (min..=max).filter(|&v| weir_protocol::testing::client_encodes(key, v)) {
            if let Some(frame) = weir_protocol::testing::sample_request_frame(key, v) {
                out.push(frame.unwrap_or_else(|e| panic!("sample api {key} v{v}: {e}")));
            }
        }
    }
    // The versions Kafka 4 removed, as a Kafka 3 client encodes them.
    out.extend(common::kafka3::removed_version_frames());
    let topic = || TopicName(sb("orders"));
    let group = || GroupId(sb("group-1"));
    for v in versions(k::API_VERSIONS) {
        let mut r = m::ApiVersionsRequest::default();
        if v >= 3 {
            r.client_software_name = sb("librdkafka");
            r.client_software_version = sb("2.0.2");
        }
        out.push(frame(k::API_VERSIONS, v, &r));
    }
    for v in versions(k::METADATA) {
        let mut t = m::metadata_request::MetadataRequestTopic::default();
        t.name = Some(topic());
        let mut r = m::MetadataRequest::default();
        r.topics = Some(vec![t.clone(), t]);
        out.push(frame(k::METADATA, v, &r));
    }
    // Produce v0-2 (hand-decoded) as raw frames.
    for v in 0..=2i16 {
        let mut f = BytesMut::new();
        f.put_i16(k::PRODUCE);
        f.put_i16(v);
        f.put_i32(1);
        f.put_i16(-1);
        f.put_i16(1);
        f.put_i32(1000);
        f.put_i32(1);
        f.put_i16(6);
        f.put_slice(b"orders");
        f.put_i32(1);
        f.put_i32(0);
        let batch = batch_with_count(1);
        f.put_i32(batch.len() as i32);
        f.put_slice(&batch);
        out.push(f.freeze());
    }
    for v in 3..=newest(k::PRODUCE) {
        let mut p = m::produce_request::PartitionProduceData::default();
        p.records = Some(batch_with_count(1));
        let mut t = m::produce_request::TopicProduceData::default();
        t.name = topic();
        t.partition_data = vec![p];
        let mut r = m::ProduceRequest::default();
        r.acks = -1;
        r.topic_data = vec![t];
        out.push(frame(k::PRODUCE, v, &r));
    }
    // Fetch v0-3 (hand-decoded) as raw frames.
    for v in 0..=3i16 {
        let mut f = BytesMut::new();
        f.put_i16(k::FETCH);
        f.put_i16(v);
        f.put_i32(1);
        f.put_i16(-1);
        f.put_i32(-1);
        f.put_i32(100);
        f.put_i32(1);
        if v >= 3 {
            f.put_i32(1 << 20);
        }
        f.put_i32(1);
        f.put_i16(6);
        f.put_slice(b"orders");
        f.put_i32(1);
        f.put_i32(0);
        f.put_i64(5);
        f.put_i32(1024);
        out.push(f.freeze());
    }
    for v in crate_versions(k::FETCH) {
        let mut p = m::fetch_request::FetchPartition::default();
        p.fetch_offset = 5;
        p.partition_max_bytes = 1024;
        let mut t = m::fetch_request::FetchTopic::default();
        t.topic = topic();
        t.partitions = vec![p.clone(), p];
        let mut r = m::FetchRequest::default();
        r.replica_id = BrokerId(-1);
        r.topics = vec![t];
        if v >= 7 {
            let mut f = m::fetch_request::ForgottenTopic::default();
            f.topic = topic();
            f.partitions = vec![1];
            r.forgotten_topics_data = vec![f];
        }
        out.push(frame(k::FETCH, v, &r));
    }
    // ListOffsets v0 (hand-decoded) as a raw frame.
    {
        let mut f = BytesMut::new();
        f.put_i16(k::LIST_OFFSETS);
        f.put_i16(0);
        f.put_i32(1);
        f.put_i16(-1);
        f.put_i32(-1);
        f.put_i32(1);
        f.put_i16(6);
        f.put_slice(b"orders");
        f.put_i32(1);
        f.put_i32(0);
        f.put_i64(-2);
        f.put_i32(1);
        out.push(f.freeze());
    }
    for v in crate_versions(k::LIST_OFFSETS) {
        let mut t = m::list_offsets_request::ListOffsetsTopic::default();
        t.name = topic();
        t.partitions = vec![Default::default()];
        let mut r = m::ListOffsetsRequest::default();
        r.topics = vec![t];
        out.push(frame(k::LIST_OFFSETS, v, &r));
    }
    for v in crate_versions(k::OFFSET_COMMIT) {
        let mut p = m::offset_commit_request::OffsetCommitRequestPartition::default();
        p.committed_metadata = Some(sb("md"));
        let mut t = m::offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = topic();
        t.partitions = vec![p];
        let mut r = m::OffsetCommitRequest::default();
        r.group_id = group();
        r.topics = vec![t];
        out.push(frame(k::OFFSET_COMMIT, v, &r));
    }
    for v in crate_versions(k::OFFSET_FETCH) {
        let mut r = m::OffsetFetchRequest::default();
        if v >= 8 {
            let mut t = m::offset_fetch_request::OffsetFetchRequestTopics::default();
            t.name = topic();
            t.partition_indexes = vec![0, 1];
            let mut g = m::offset_fetch_request::OffsetFetchRequestGroup::default();
            g.group_id = group();
            g.topics = Some(vec![t]);
            r.groups = vec![g];
        } else {
            let mut t = m::offset_fetch_request::OffsetFetchRequestTopic::default();
            t.name = topic();
            t.partition_indexes = vec![0, 1];
            r.group_id = group();
            r.topics = Some(vec![t]);
        }
        out.push(frame(k::OFFSET_FETCH, v, &r));
    }
    for v in versions(k::FIND_COORDINATOR) {
        let mut r = m::FindCoordinatorRequest::default();
        if v >= 4 {
            r.coordinator_keys = vec![sb("group-1")];
        } else {
            r.key = sb("group-1");
        }
        out.push(frame(k::FIND_COORDINATOR, v, &r));
    }
    for v in versions(k::JOIN_GROUP) {
        let mut p = m::join_group_request::JoinGroupRequestProtocol::default();
        p.name = sb("range");
        p.metadata = Bytes::from_static(b"\x00\x03abc");
        let mut r = m::JoinGroupRequest::default();
        r.group_id = group();
        r.protocol_type = sb("consumer");
        r.protocols = vec![p];
        out.push(frame(k::JOIN_GROUP, v, &r));
    }
    for v in versions(k::SYNC_GROUP) {
        let mut a = m::sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = sb("m");
        a.assignment = Bytes::from_static(b"xyz");
        let mut r = m::SyncGroupRequest::default();
        r.group_id = group();
        r.assignments = vec![a];
        out.push(frame(k::SYNC_GROUP, v, &r));
    }
    for v in versions(k::LEAVE_GROUP) {
        let mut r = m::LeaveGroupRequest::default();
        r.group_id = group();
        if v >= 3 {
            let mut mem = m::leave_group_request::MemberIdentity::default();
            mem.member_id = sb("m");
            r.members = vec![mem];
        } else {
            r.member_id = sb("m");
        }
        out.push(frame(k::LEAVE_GROUP, v, &r));
    }
    for v in versions(k::INIT_PRODUCER_ID) {
        let mut r = m::InitProducerIdRequest::default();
        r.transactional_id = Some(m::TransactionalId(sb("tx")));
        out.push(frame(k::INIT_PRODUCER_ID, v, &r));
    }
    for v in crate_versions(k::CREATE_TOPICS) {
        let mut c = m::create_topics_request::CreatableTopicConfig::default();
        c.name = sb("cleanup.policy");
        c.value = Some(sb("compact"));
        let mut a = m::create_topics_request::CreatableReplicaAssignment::default();
        a.broker_ids = vec![BrokerId(1)];
        let mut t = m::create_topics_request::CreatableTopic::default();
        t.name = topic();
        t.assignments = vec![a];
        t.configs = vec![c];
        let mut r = m::CreateTopicsRequest::default();
        r.topics = vec![t];
        out.push(frame(k::CREATE_TOPICS, v, &r));
    }
    for v in crate_versions(k::DELETE_TOPICS) {
        let mut r = m::DeleteTopicsRequest::default();
        if v >= 6 {
            let mut t = m::delete_topics_request::DeleteTopicState::default();
            t.name = Some(topic());
            r.topics = vec![t];
        } else {
            r.topic_names = vec![topic()];
        }
        out.push(frame(k::DELETE_TOPICS, v, &r));
    }
    for v in versions(k::CREATE_PARTITIONS) {
        let mut a = m::create_partitions_request::CreatePartitionsAssignment::default();
        a.broker_ids = vec![BrokerId(1)];
        let mut t = m::create_partitions_request::CreatePartitionsTopic::default();
        t.name = topic();
        t.assignments = Some(vec![a]);
        let mut r = m::CreatePartitionsRequest::default();
        r.topics = vec![t];
        out.push(frame(k::CREATE_PARTITIONS, v, &r));
    }
    for v in crate_versions(k::DESCRIBE_CONFIGS) {
        let mut res = m::describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = sb("orders");
        res.configuration_keys = Some(vec![sb("retention.ms")]);
        let mut r = m::DescribeConfigsRequest::default();
        r.resources = vec![res];
        out.push(frame(k::DESCRIBE_CONFIGS, v, &r));
    }
    for v in versions(k::ALTER_CONFIGS) {
        let mut c = m::alter_configs_request::AlterableConfig::default();
        c.name = sb("retention.ms");
        c.value = Some(sb("1"));
        let mut res = m::alter_configs_request::AlterConfigsResource::default();
        res.resource_name = sb("orders");
        res.configs = vec![c];
        let mut r = m::AlterConfigsRequest::default();
        r.resources = vec![res];
        out.push(frame(k::ALTER_CONFIGS, v, &r));
    }
    for v in versions(k::INCREMENTAL_ALTER_CONFIGS) {
        let mut c = m::incremental_alter_configs_request::AlterableConfig::default();
        c.name = sb("retention.ms");
        c.value = Some(sb("1"));
        let mut res = m::incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_name = sb("orders");
        res.configs = vec![c];
        let mut r = m::IncrementalAlterConfigsRequest::default();
        r.resources = vec![res];
        out.push(frame(k::INCREMENTAL_ALTER_CONFIGS, v, &r));
    }
    out
}

#[test]
fn seeds_cover_every_served_version_and_decode() {
    let seeds = seeds();
    let expected: usize = weir_protocol::supported_apis()
        .iter()
        .map(|&(_, min, max)| (max - min + 1) as usize)
        .sum();
    let mut covered: Vec<(i16, i16)> = seeds
        .iter()
        .map(|s| {
            (
                i16::from_be_bytes([s[0], s[1]]),
                i16::from_be_bytes([s[2], s[3]]),
            )
        })
        .collect();
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(seeds.len(), expected, "one seed per served (api, version)");
    assert_eq!(covered.len(), expected, "no (api, version) seeded twice");
    for s in &seeds {
        decode_request(s.clone()).unwrap_or_else(|e| panic!("seed does not decode: {e}"));
    }
}

/// A mutation applied to a seed frame.
#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite one byte.
    Set(usize, u8),
    /// Overwrite 4 bytes with a (typically huge or negative) big-endian i32.
    SetI32(usize, i32),
    /// Overwrite up to 5 bytes with a maximal unsigned varint.
    SetVarint(usize),
    /// Cut the frame.
    Truncate(usize),
    /// Insert bytes.
    Insert(usize, Vec<u8>),
    /// Remove a byte.
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                Just(i32::MAX),
                Just(i32::MIN),
                Just(-1),
                Just(-2),
                Just(0x7fff),
                any::<i32>()
            ]
        )
            .prop_map(|(i, v)| Mutation::SetI32(i, v)),
        any::<usize>().prop_map(Mutation::SetVarint),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(frame: &[u8], mutations: &[Mutation]) -> Bytes {
    let mut f = frame.to_vec();
    for m in mutations {
        let len = f.len().max(1);
        match m {
            Mutation::Set(i, b) => {
                if let Some(x) = f.get_mut(i % len) {
                    *x = *b;
                }
            }
            Mutation::SetI32(i, v) => {
                let at = i % len;
                for (j, b) in v.to_be_bytes().iter().enumerate() {
                    if let Some(x) = f.get_mut(at + j) {
                        *x = *b;
                    }
                }
            }
            Mutation::SetVarint(i) => {
                let at = i % len;
                for (j, b) in [0xffu8, 0xff, 0xff, 0xff, 0x0f].iter().enumerate() {
                    if let Some(x) = f.get_mut(at + j) {
                        *x = *b;
                    }
                }
            }
            Mutation::Truncate(i) => f.truncate(i % len),
            Mutation::Insert(i, bytes) => {
                let at = i % (f.len() + 1);
                f.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i) => {
                if !f.is_empty() {
                    f.remove(i % f.len());
                }
            }
        }
    }
    Bytes::from(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes: any result is fine, a panic is not.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(Bytes::from(bytes));
    }

    /// Arbitrary bytes behind a valid header of a served API and version, so the body
    /// decoders (not just the header check) see the garbage.
    #[test]
    fn arbitrary_bodies_never_panic(
        seed in 0usize..10_000,
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let apis = weir_protocol::supported_apis();
        let (key, min, max) = apis[seed % apis.len()];
        let span = (max - min + 1) as usize;
        let version = min + ((seed / apis.len()) % span) as i16;
        if let Ok((header, request)) = decode_request(raw_frame(key, version, &body)) {
            let response = common::default_response::default_response(&request);
            prop_assert!(weir_protocol::encode_response(&header, &response).is_ok());
        }
    }

    /// Mutations of valid requests of every served API and version.
    #[test]
    fn mutated_requests_never_panic(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        thread_local! {
            static SEEDS: Vec<Bytes> = seeds();
        }
        let frame = SEEDS.with(|s| s[seed.index(s.len())].clone());
        let mutated = apply(&frame, &mutations);
        let start = Instant::now();
        let decoded = decode_request(mutated);
        prop_assert!(start.elapsed() < Duration::from_secs(1));
        // Whatever decoded must be answerable at its own version.
        if let Ok((header, request)) = decoded {
            let response = common::default_response::default_response(&request);
            prop_assert!(weir_protocol::encode_response(&header, &response).is_ok());
        }
    }
}

/// Writes one valid request per served (api, version) into `$WEIR_FUZZ_SEEDS_DIR` to seed
/// the cargo-fuzz corpus (see docs/protocol.md). Without the variable it only checks that
/// the seeds exist, so it always runs.
#[test]
fn write_fuzz_seeds() {
    let seeds = seeds();
    assert!(!seeds.is_empty());
    if let Some(dir) = std::env::var_os("WEIR_FUZZ_SEEDS_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create seed dir");
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), s).expect("write seed");
        }
    }
}
