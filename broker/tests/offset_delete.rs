//! OffsetDelete against a consumer group with members, over a real socket to the built binary: as
//! Kafka, only the topics the members subscribe to (read from their consumer-protocol metadata)
//! keep their committed offsets (GROUP_SUBSCRIBED_TO_TOPIC); offsets of other topics are deleted.
//! No client in the compatibility suite sends OffsetDelete, so the request is written by hand.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::Broker;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use weir_protocol::client::{decode_response, encode_request};
use weir_protocol::{
    ErrorCode, JoinGroupProtocol, JoinGroupRequest, OffsetCommitPartition, OffsetCommitRequest,
    OffsetCommitTopic, OffsetFetchGroup, OffsetFetchRequest, OffsetFetchTopic, Request, Response,
    SyncGroupAssignment, SyncGroupRequest,
};

const GROUP: &str = "readers";
const SUBSCRIBED: &str = "orders";
const OTHER: &str = "audit";
const OFFSET_DELETE: i16 = 47;

fn read_frame(stream: &mut TcpStream) -> Bytes {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).expect("response length");
    let len = usize::try_from(i32::from_be_bytes(prefix)).expect("length");
    let mut body = BytesMut::zeroed(len);
    stream.read_exact(&mut body).expect("response body");
    body.freeze()
}

fn call(stream: &mut TcpStream, correlation_id: i32, request: Request) -> Response {
    let api_key = request.api_key();
    let (frame, version) =
        encode_request(correlation_id, "offset-delete-test", &request).expect("encode request");
    stream.write_all(&frame).expect("send");
    let (got, response) =
        decode_response(api_key, version, read_frame(stream)).expect("decode response");
    assert_eq!(got, correlation_id);
    response
}

/// A consumer-protocol subscription (version 0: topics and no user data).
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(topics.len() as i32);
    for t in topics {
        b.put_i16(t.len() as i16);
        b.put_slice(t.as_bytes());
    }
    b.put_i32(-1);
    b.freeze()
}

/// Joins `GROUP` as its only member, subscribed to `SUBSCRIBED`; returns (member id, generation).
fn join_and_sync(stream: &mut TcpStream) -> (String, i32) {
    let mut join = JoinGroupRequest {
        group_id: GROUP.into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupProtocol {
            name: "range".into(),
            metadata: subscription(&[SUBSCRIBED]),
        }],
        ..JoinGroupRequest::default()
    };
    let Response::JoinGroup(first) = call(stream, 1, Request::JoinGroup(join.clone())) else {
        panic!("not a JoinGroup response");
    };
    assert_eq!(first.error_code, ErrorCode::MEMBER_ID_REQUIRED);
    join.member_id = first.member_id;
    let Response::JoinGroup(joined) = call(stream, 2, Request::JoinGroup(join)) else {
        panic!("not a JoinGroup response");
    };
    assert_eq!(joined.error_code, ErrorCode::NONE);
    let sync = SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        assignments: vec![SyncGroupAssignment {
            member_id: joined.member_id.clone(),
            assignment: Bytes::new(),
        }],
        ..SyncGroupRequest::default()
    };
    let Response::SyncGroup(synced) = call(stream, 3, Request::SyncGroup(sync)) else {
        panic!("not a SyncGroup response");
    };
    assert_eq!(synced.error_code, ErrorCode::NONE);
    (joined.member_id, joined.generation_id)
}

/// OffsetDelete v0 of partition 0 of each topic; returns the top-level error and
/// (topic, partition, error) per partition.
fn offset_delete(stream: &mut TcpStream, topics: &[&str]) -> (i16, Vec<(String, i32, i16)>) {
    let mut body = BytesMut::new();
    body.put_i16(OFFSET_DELETE);
    body.put_i16(0);
    body.put_i32(10);
    body.put_i16(-1); // no client id
    body.put_i16(GROUP.len() as i16);
    body.put_slice(GROUP.as_bytes());
    body.put_i32(topics.len() as i32);
    for t in topics {
        body.put_i16(t.len() as i16);
        body.put_slice(t.as_bytes());
        body.put_i32(1);
        body.put_i32(0);
    }
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    stream.write_all(&frame).expect("send OffsetDelete");
    let mut r = read_frame(stream);
    assert_eq!(r.get_i32(), 10, "correlation id");
    let error = r.get_i16();
    let _throttle_ms = r.get_i32();
    let mut out = Vec::new();
    for _ in 0..r.get_i32() {
        let len = r.get_i16() as usize;
        let name = String::from_utf8(r.split_to(len).to_vec()).expect("topic name");
        for _ in 0..r.get_i32() {
            let partition = r.get_i32();
            out.push((name.clone(), partition, r.get_i16()));
        }
    }
    (error, out)
}

fn committed(stream: &mut TcpStream, topic: &str) -> i64 {
    let fetch = OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: GROUP.into(),
            topics: Some(vec![OffsetFetchTopic {
                name: topic.into(),
                partition_indexes: vec![0],
            }]),
            ..OffsetFetchGroup::default()
        }],
        require_stable: false,
    };
    let Response::OffsetFetch(r) = call(stream, 20, Request::OffsetFetch(fetch)) else {
        panic!("not an OffsetFetch response");
    };
    r.groups[0].topics[0].partitions[0].committed_offset
}

#[test]
fn offset_delete_spares_only_topics_the_members_subscribe_to() {
    let b = Broker::start(&[]);
    for topic in [SUBSCRIBED, OTHER] {
        b.cli_ok(&["topic", "create", topic, "-p", "1"], "");
    }
    let mut stream = TcpStream::connect(b.kafka).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let (member_id, generation_id) = join_and_sync(&mut stream);
    let commit = OffsetCommitRequest {
        group_id: GROUP.into(),
        generation_id,
        member_id,
        topics: [SUBSCRIBED, OTHER]
            .iter()
            .map(|t| OffsetCommitTopic {
                name: t.to_string(),
                partitions: vec![OffsetCommitPartition {
                    partition_index: 0,
                    committed_offset: 5,
                    ..OffsetCommitPartition::default()
                }],
            })
            .collect(),
        ..OffsetCommitRequest::default()
    };
    let Response::OffsetCommit(r) = call(&mut stream, 4, Request::OffsetCommit(commit)) else {
        panic!("not an OffsetCommit response");
    };
    assert!(
        r.topics
            .iter()
            .all(|t| t.partitions.iter().all(|p| p.error_code.is_none())),
        "{r:?}"
    );

    let (error, partitions) = offset_delete(&mut stream, &[SUBSCRIBED, OTHER]);
    assert_eq!(error, 0, "top-level error");
    assert_eq!(
        partitions,
        vec![
            (
                SUBSCRIBED.to_string(),
                0,
                ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC.0
            ),
            (OTHER.to_string(), 0, 0),
        ]
    );
    assert_eq!(committed(&mut stream, SUBSCRIBED), 5);
    assert_eq!(
        committed(&mut stream, OTHER),
        -1,
        "{OTHER}'s offset was not deleted"
    );
}
