//! ShareFetch and ShareAcknowledge v2 (Kafka 4.2: KIP-1206's acquire mode, KIP-1222's renew
//! acknowledgements) byte for byte, written here from Kafka's message schemas. The vendored
//! crate's v2 is a Weir patch, so unlike the other round trips the crate cannot serve as the
//! independent implementation: these bytes are.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use weir_protocol::{
    api_key as k, decode_request, encode_response, ErrorCode, Request, RequestHeader, Response,
    ShareAcknowledgeResponse,
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

#[test]
fn share_acknowledge_v2_answers_the_lock_timeout_after_the_error_message() {
    let response = Response::ShareAcknowledge(ShareAcknowledgeResponse {
        error_code: ErrorCode::NONE,
        acquisition_lock_timeout_ms: 30_000,
        ..ShareAcknowledgeResponse::default()
    });
    let body_at = |version: i16| {
        let header = RequestHeader {
            api_key: k::SHARE_ACKNOWLEDGE,
            api_version: version,
            correlation_id: 11,
            client_id: None,
        };
        let mut bytes = encode_response(&header, &response).expect("encodes");
        let size = bytes.get_i32();
        assert_eq!(usize::try_from(size).ok(), Some(bytes.remaining()));
        assert_eq!(bytes.get_i32(), 11, "correlation id");
        assert_eq!(bytes.get_u8(), 0, "response header v1: no tagged fields");
        bytes
    };
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
