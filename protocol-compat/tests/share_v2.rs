//! The share-group message versions of Kafka 4.2 byte for byte, written here from Kafka's
//! message schemas: ShareFetch and ShareAcknowledge v2 (KIP-1206's acquire mode, KIP-1222's
//! renew acknowledgements), DescribeShareGroupOffsets and ReadShareGroupStateSummary v1
//! (KIP-1226's lag). The vendored crate's versions are a Weir patch, so unlike the other round
//! trips the crate cannot serve as the independent implementation: these bytes are.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use weir_protocol::{
    api_key as k, decode_request, encode_response, DescribeShareGroupOffsetsGroupResponse,
    DescribeShareGroupOffsetsPartitionResponse, DescribeShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsTopicResponse, ErrorCode, ReadShareGroupStateSummaryResponse,
    ReadShareStateSummaryPartitionResult, ReadShareStateSummaryTopicResult, Request, RequestHeader,
    Response, ShareAcknowledgeResponse, WeirTag,
};

const TOPIC_ID: [u8; 16] = [9; 16];

fn uvarint(b: &mut BytesMut, mut n: u32) {
    while n >= 0x80 {
        b.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    b.put_u8(n as u8);
}

fn compact_str(b: &mut BytesMut, s: &str) {
    uvarint(b, u32::try_from(s.len()).expect("short") + 1);
    b.put_slice(s.as_bytes());
}

fn compact_len(b: &mut BytesMut, n: u32) {
    uvarint(b, n + 1);
}

/// A request frame with header v2 (flexible): api key, version, correlation id, null client
/// id, no tagged fields.
fn frame(api_key: i16, version: i16, body: &[u8]) -> Bytes {
    let mut f = BytesMut::new();
    f.put_i16(api_key);
    f.put_i16(version);
    f.put_i32(5);
    f.put_i16(-1);
    f.put_u8(0);
    f.put_slice(body);
    f.freeze()
}

/// One topic with one partition acknowledging offsets 10..=12 as `ack_type`.
fn topics_with_one_ack(b: &mut BytesMut, ack_type: i8) {
    compact_len(b, 1);
    b.put_slice(&TOPIC_ID);
    compact_len(b, 1);
    b.put_i32(2); // partition
    compact_len(b, 1);
    b.put_i64(10);
    b.put_i64(12);
    compact_len(b, 1);
    b.put_i8(ack_type);
    b.put_u8(0); // batch tags
    b.put_u8(0); // partition tags
    b.put_u8(0); // topic tags
}

/// ShareFetch's body; `v2_fields` are (ShareAcquireMode, IsRenewAck), written after BatchSize.
fn share_fetch_body(v2_fields: Option<(i8, bool)>) -> BytesMut {
    let mut b = BytesMut::new();
    compact_str(&mut b, "g");
    compact_str(&mut b, "member-1");
    b.put_i32(3); // ShareSessionEpoch
    b.put_i32(0); // MaxWaitMs
    b.put_i32(0); // MinBytes
    b.put_i32(0); // MaxBytes
    b.put_i32(0); // MaxRecords
    b.put_i32(5); // BatchSize
    if let Some((mode, renew)) = v2_fields {
        b.put_i8(mode);
        b.put_u8(u8::from(renew));
    }
    topics_with_one_ack(&mut b, 4);
    compact_len(&mut b, 0); // ForgottenTopicsData
    b.put_u8(0);
    b
}

#[test]
fn share_fetch_v2_carries_the_acquire_mode_and_the_renew_flag_after_the_batch_size() {
    let body = share_fetch_body(Some((1, true)));
    let (header, request) =
        decode_request(frame(k::SHARE_FETCH, 2, &body)).expect("a ShareFetch v2 decodes");
    assert_eq!(header.api_version, 2);
    let Request::ShareFetch(r) = request else {
        panic!("not a ShareFetch: {request:?}");
    };
    assert_eq!(r.group_id.as_deref(), Some("g"));
    assert_eq!(r.member_id.as_deref(), Some("member-1"));
    assert_eq!(r.share_session_epoch, 3);
    assert_eq!(r.batch_size, 5);
    assert_eq!(r.share_acquire_mode, 1);
    assert!(r.is_renew_ack);
    let p = &r.topics[0].partitions[0];
    assert_eq!((r.topics[0].topic_id, p.partition_index), (TOPIC_ID, 2));
    assert_eq!(p.acknowledgement_batches[0].first_offset, 10);
    assert_eq!(p.acknowledgement_batches[0].last_offset, 12);
    assert_eq!(p.acknowledgement_batches[0].acknowledge_types, vec![4]);
    assert!(r.forgotten_topics_data.is_empty());

    // v1 has neither field: the same body without them is batch-optimized and renews nothing.
    let (_, request) = decode_request(frame(k::SHARE_FETCH, 1, &share_fetch_body(None)))
        .expect("a ShareFetch v1 decodes");
    let Request::ShareFetch(r) = request else {
        panic!("not a ShareFetch: {request:?}");
    };
    assert_eq!((r.share_acquire_mode, r.is_renew_ack), (0, false));
    assert_eq!(r.topics[0].partitions[0].partition_index, 2);

    // A v2 body lacking its two bytes is an error, not a v1 request.
    assert!(decode_request(frame(k::SHARE_FETCH, 2, &share_fetch_body(None))).is_err());
}

#[test]
fn share_acknowledge_v2_carries_the_renew_flag_after_the_session_epoch() {
    let body = |renew: Option<bool>| {
        let mut b = BytesMut::new();
        compact_str(&mut b, "g");
        compact_str(&mut b, "member-1");
        b.put_i32(7);
        if let Some(renew) = renew {
            b.put_u8(u8::from(renew));
        }
        topics_with_one_ack(&mut b, 4);
        b.put_u8(0);
        b
    };
    let (_, request) = decode_request(frame(k::SHARE_ACKNOWLEDGE, 2, &body(Some(true))))
        .expect("a ShareAcknowledge v2 decodes");
    let Request::ShareAcknowledge(r) = request else {
        panic!("not a ShareAcknowledge: {request:?}");
    };
    assert_eq!(r.share_session_epoch, 7);
    assert!(r.is_renew_ack);
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.acknowledgement_batches[0].acknowledge_types, vec![4]);

    let (_, request) = decode_request(frame(k::SHARE_ACKNOWLEDGE, 1, &body(None)))
        .expect("a ShareAcknowledge v1 decodes");
    let Request::ShareAcknowledge(r) = request else {
        panic!("not a ShareAcknowledge: {request:?}");
    };
    assert!(!r.is_renew_ack);
    assert_eq!(r.topics[0].partitions[0].partition_index, 2);
}

/// The body of `response` encoded at `version` (its flexible response header checked and
/// stripped).
fn response_body(api_key: i16, version: i16, response: &Response) -> Bytes {
    let header = RequestHeader {
        api_key,
        api_version: version,
        correlation_id: 11,
        client_id: None,
    };
    let mut bytes = encode_response(&header, response).expect("encodes");
    let size = bytes.get_i32();
    assert_eq!(usize::try_from(size).ok(), Some(bytes.remaining()));
    assert_eq!(bytes.get_i32(), 11, "correlation id");
    assert_eq!(bytes.get_u8(), 0, "response header v1: no tagged fields");
    bytes
}

#[test]
fn describe_share_group_offsets_v1_answers_the_lag_after_the_leader_epoch() {
    let response = Response::DescribeShareGroupOffsets(DescribeShareGroupOffsetsResponse {
        throttle_time_ms: 0,
        groups: vec![DescribeShareGroupOffsetsGroupResponse {
            group_id: "g".into(),
            topics: vec![DescribeShareGroupOffsetsTopicResponse {
                topic_name: "t".into(),
                topic_id: TOPIC_ID,
                partitions: vec![DescribeShareGroupOffsetsPartitionResponse {
                    partition_index: 2,
                    start_offset: 40,
                    leader_epoch: -1,
                    lag: 17,
                    error_code: ErrorCode::NONE,
                    error_message: None,
                }],
            }],
            error_code: ErrorCode::NONE,
            error_message: None,
        }],
    });
    let expected = |lag: Option<i64>| {
        let mut b = BytesMut::new();
        b.put_i32(0); // ThrottleTimeMs
        compact_len(&mut b, 1);
        compact_str(&mut b, "g");
        compact_len(&mut b, 1);
        compact_str(&mut b, "t");
        b.put_slice(&TOPIC_ID);
        compact_len(&mut b, 1);
        b.put_i32(2);
        b.put_i64(40); // StartOffset
        b.put_i32(-1); // LeaderEpoch
        if let Some(lag) = lag {
            b.put_i64(lag);
        }
        b.put_i16(0);
        b.put_u8(0); // ErrorMessage: null
        b.put_u8(0); // partition tags
        b.put_u8(0); // topic tags
        b.put_i16(0);
        b.put_u8(0);
        b.put_u8(0); // group tags
        b.put_u8(0);
        b.freeze()
    };
    let key = k::DESCRIBE_SHARE_GROUP_OFFSETS;
    assert_eq!(response_body(key, 1, &response), expected(Some(17)));
    assert_eq!(response_body(key, 0, &response), expected(None));
}

#[test]
fn read_share_group_state_summary_v1_answers_the_completed_count_after_the_start_offset() {
    let response = Response::ReadShareGroupStateSummary(ReadShareGroupStateSummaryResponse {
        results: vec![ReadShareStateSummaryTopicResult {
            topic_id: TOPIC_ID,
            partitions: vec![ReadShareStateSummaryPartitionResult {
                partition: 1,
                error_code: ErrorCode::NONE,
                error_message: None,
                state_epoch: 3,
                leader_epoch: 4,
                start_offset: 50,
                delivery_complete_count: 6,
                weir: WeirTag(None),
            }],
        }],
    });
    let mut expected = BytesMut::new();
    compact_len(&mut expected, 1);
    expected.put_slice(&TOPIC_ID);
    compact_len(&mut expected, 1);
    expected.put_i32(1);
    expected.put_i16(0);
    expected.put_u8(0); // ErrorMessage: null
    expected.put_i32(3); // StateEpoch
    expected.put_i32(4); // LeaderEpoch
    expected.put_i64(50); // StartOffset
    expected.put_i32(6); // DeliveryCompleteCount
    expected.put_slice(&[0, 0, 0]); // partition, topic and response tags
    let key = k::READ_SHARE_GROUP_STATE_SUMMARY;
    assert_eq!(response_body(key, 1, &response), expected.freeze());
}

#[test]
fn share_acknowledge_v2_answers_the_lock_timeout_after_the_error_message() {
    let response = Response::ShareAcknowledge(ShareAcknowledgeResponse {
        error_code: ErrorCode::NONE,
        acquisition_lock_timeout_ms: 30_000,
        ..ShareAcknowledgeResponse::default()
    });
    let body_at = |version: i16| response_body(k::SHARE_ACKNOWLEDGE, version, &response);
    let mut expected = BytesMut::new();
    expected.put_i32(0); // ThrottleTimeMs
    expected.put_i16(0); // ErrorCode
    expected.put_u8(0); // ErrorMessage: null
    let v1_tail = [1u8, 1, 0]; // Responses, NodeEndpoints: empty; no tagged fields
    let mut v1 = expected.clone();
    v1.put_slice(&v1_tail);
    assert_eq!(body_at(1), v1.freeze());
    expected.put_i32(30_000); // AcquisitionLockTimeoutMs
    expected.put_slice(&v1_tail);
    assert_eq!(body_at(2), expected.freeze());
}
