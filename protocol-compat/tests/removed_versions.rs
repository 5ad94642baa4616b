//! The versions Kafka 4.0 removed (KIP-896) that Weir still serves old clients, checked against
//! kafka-protocol 0.15, generated from Kafka 3.x's specs (which still have them): a request a
//! Kafka 3 client encodes at a removed version decodes to what the same request decodes to at
//! the version Weir serves it as, and a response Weir encodes at a removed version decodes, in
//! full, to the one it encodes at the served version less the fields the old version lacks.

mod common;

use bytes::Bytes;
use kafka_protocol_3::messages as m3;
use kafka_protocol_3::protocol::{Decodable, Encodable};
use weir_protocol::api_key as k;
use weir_protocol::{Request, Response};

use common::header;
use common::kafka3::{self, commit_request, frame, s};

fn decode<T: Encodable>(api_key: i16, version: i16, body: &T) -> Request {
    let (header, request) = weir_protocol::decode_request(frame(api_key, version, body))
        .unwrap_or_else(|e| panic!("api {api_key} v{version}: {e}"));
    assert_eq!((header.api_key, header.api_version), (api_key, version));
    request
}

/// `msg` at the removed version `old` decodes to `msg` made fit for `served_as` (by
/// `for_served_as`, which clears what `served_as` lacks) at `served_as`; returns the request.
fn same_request<T: Encodable + Clone>(
    api_key: i16,
    old: i16,
    served_as: i16,
    msg: &T,
    for_served_as: impl FnOnce(&mut T),
) -> Request {
    let at_old = decode(api_key, old, msg);
    let mut newer = msg.clone();
    for_served_as(&mut newer);
    assert_eq!(
        at_old,
        decode(api_key, served_as, &newer),
        "api {api_key} v{old} as v{served_as}"
    );
    at_old
}

/// Weir's response at `version`, decoded by kafka-protocol 0.15, which must use every byte.
fn response_at<T: Decodable>(api_key: i16, version: i16, response: &Response) -> T {
    let bytes = weir_protocol::encode_response(&header(api_key, version), response)
        .unwrap_or_else(|e| panic!("api {api_key} v{version}: {e}"));
    let size = i32::from_be_bytes(bytes[..4].try_into().expect("size prefix"));
    assert_eq!(usize::try_from(size).ok(), Some(bytes.len() - 4));
    assert_eq!(&bytes[4..8], &77i32.to_be_bytes(), "correlation id");
    let mut body = bytes.slice(8..);
    let msg = T::decode(&mut body, version)
        .unwrap_or_else(|e| panic!("kafka-protocol 0.15 decodes api {api_key} v{version}: {e}"));
    assert!(body.is_empty(), "api {api_key} v{version}: trailing bytes");
    msg
}

/// Weir's response at the removed version `old` is its response at `served_as` less what
/// `for_old` clears.
fn same_response<T: Decodable + PartialEq + std::fmt::Debug>(
    api_key: i16,
    old: i16,
    served_as: i16,
    response: &Response,
    for_old: impl FnOnce(&mut T),
) -> T {
    let at_old: T = response_at(api_key, old, response);
    let mut expected: T = response_at(api_key, served_as, response);
    for_old(&mut expected);
    assert_eq!(at_old, expected, "api {api_key} v{old} as v{served_as}");
    at_old
}

#[test]
fn offset_commit_v0_and_v1_are_commits_without_and_with_a_generation() {
    // v0 has no generation or member: served as a commit from outside the group.
    let v0 = same_request(k::OFFSET_COMMIT, 0, 2, &commit_request(0), |_| {});
    let Request::OffsetCommit(v0) = v0 else {
        panic!("not an OffsetCommit: {v0:?}")
    };
    assert_eq!((v0.generation_id, v0.member_id.as_str()), (-1, ""));
    assert_eq!(v0.retention_time_ms, -1);
    assert_eq!(v0.topics.len(), 2);
    assert_eq!(v0.topics[0].partitions[1].committed_metadata, None);
    assert_eq!(v0.topics[1].partitions[0].committed_offset, 1003);
    // v1 keeps them; its per-partition timestamp is not kept.
    let v1 = same_request(k::OFFSET_COMMIT, 1, 2, &commit_request(1), |m| {
        for t in &mut m.topics {
            for p in &mut t.partitions {
                p.commit_timestamp = -1;
            }
        }
    });
    let Request::OffsetCommit(v1) = v1 else {
        panic!("not an OffsetCommit: {v1:?}")
    };
    assert_eq!((v1.generation_id, v1.member_id.as_str()), (5, "member-1"));

    let response = Response::OffsetCommit(weir_protocol::OffsetCommitResponse {
        throttle_time_ms: 0,
        topics: vec![weir_protocol::OffsetCommitTopicResponse {
            name: "a".into(),
            partitions: vec![weir_protocol::PartitionError {
                partition_index: 1,
                error_code: weir_protocol::ErrorCode(25),
            }],
        }],
    });
    for old in [0, 1] {
        let got: m3::OffsetCommitResponse = same_response(
            k::OFFSET_COMMIT,
            old,
            2,
            &response,
            |_: &mut m3::OffsetCommitResponse| {},
        );
        assert_eq!(got.topics[0].partitions[0].error_code, 25);
    }
}

#[test]
fn offset_fetch_v0_is_v1() {
    let msg = kafka3::offset_fetch_request();
    same_request(k::OFFSET_FETCH, 0, 1, &msg, |_| {});

    let response = Response::OffsetFetch(weir_protocol::OffsetFetchResponse {
        throttle_time_ms: 0,
        groups: vec![weir_protocol::OffsetFetchGroupResponse {
            group_id: "legacy-group".into(),
            error_code: weir_protocol::ErrorCode::NONE,
            topics: vec![weir_protocol::OffsetFetchTopicResponse {
                name: "a".into(),
                partitions: vec![weir_protocol::OffsetFetchPartitionResponse {
                    partition_index: 2,
                    committed_offset: 42,
                    committed_leader_epoch: -1,
                    metadata: Some("meta".into()),
                    error_code: weir_protocol::ErrorCode::NONE,
                }],
            }],
        }],
    });
    let got: m3::OffsetFetchResponse = same_response(
        k::OFFSET_FETCH,
        0,
        1,
        &response,
        |_: &mut m3::OffsetFetchResponse| {},
    );
    assert_eq!(got.topics[0].partitions[0].committed_offset, 42);
}

#[test]
fn create_topics_v0_and_v1() {
    let msg = kafka3::create_topics_request(false);
    let v0 = same_request(k::CREATE_TOPICS, 0, 2, &msg, |_| {});
    let Request::CreateTopics(v0) = v0 else {
        panic!("not a CreateTopics: {v0:?}")
    };
    assert!(!v0.validate_only);
    assert_eq!(v0.topics[0].num_partitions, 3);
    let v1 = same_request(
        k::CREATE_TOPICS,
        1,
        2,
        &kafka3::create_topics_request(true),
        |_| {},
    );
    assert!(matches!(v1, Request::CreateTopics(r) if r.validate_only));

    let response = Response::CreateTopics(weir_protocol::CreateTopicsResponse {
        throttle_time_ms: 10,
        topics: vec![weir_protocol::CreatableTopicResult {
            name: "legacy-topic".into(),
            error_code: weir_protocol::ErrorCode(36),
            error_message: Some("Topic 'legacy-topic' already exists.".into()),
            ..Default::default()
        }],
    });
    let v0: m3::CreateTopicsResponse = same_response(
        k::CREATE_TOPICS,
        0,
        2,
        &response,
        |r: &mut m3::CreateTopicsResponse| {
            r.throttle_time_ms = 0;
            for t in &mut r.topics {
                t.error_message =
                    m3::create_topics_response::CreatableTopicResult::default().error_message;
            }
        },
    );
    assert_eq!(v0.topics[0].error_code, 36);
    let v1: m3::CreateTopicsResponse = same_response(
        k::CREATE_TOPICS,
        1,
        2,
        &response,
        |r: &mut m3::CreateTopicsResponse| {
            r.throttle_time_ms = 0;
        },
    );
    assert_eq!(
        v1.topics[0].error_message.as_deref(),
        Some("Topic 'legacy-topic' already exists.")
    );
}

#[test]
fn delete_topics_v0() {
    let msg = kafka3::delete_topics_request();
    same_request(k::DELETE_TOPICS, 0, 1, &msg, |_| {});

    let response = Response::DeleteTopics(weir_protocol::DeleteTopicsResponse {
        throttle_time_ms: 10,
        responses: vec![weir_protocol::DeletableTopicResult {
            name: Some("a".into()),
            error_code: weir_protocol::ErrorCode(3),
            ..Default::default()
        }],
    });
    let got: m3::DeleteTopicsResponse = same_response(
        k::DELETE_TOPICS,
        0,
        1,
        &response,
        |r: &mut m3::DeleteTopicsResponse| {
            r.throttle_time_ms = 0;
        },
    );
    assert_eq!(got.responses[0].error_code, 3);
}

#[test]
fn offset_for_leader_epoch_v0_and_v1() {
    let msg = kafka3::offset_for_leader_epoch_request();
    for old in [0, 1] {
        same_request(k::OFFSET_FOR_LEADER_EPOCH, old, 2, &msg, |_| {});
    }

    let response =
        weir_protocol::testing::sample_response(k::OFFSET_FOR_LEADER_EPOCH).expect("mirrored");
    same_response(
        k::OFFSET_FOR_LEADER_EPOCH,
        1,
        2,
        &response,
        |r: &mut m3::OffsetForLeaderEpochResponse| r.throttle_time_ms = 0,
    );
    let v0: m3::OffsetForLeaderEpochResponse = same_response(
        k::OFFSET_FOR_LEADER_EPOCH,
        0,
        2,
        &response,
        |r: &mut m3::OffsetForLeaderEpochResponse| {
            r.throttle_time_ms = 0;
            for t in &mut r.topics {
                for p in &mut t.partitions {
                    p.leader_epoch = -1;
                }
            }
        },
    );
    assert!(v0.topics[0].partitions[0].end_offset != 0, "{v0:?}");
}

#[test]
fn acl_apis_v0_know_literal_patterns_only() {
    let create = kafka3::create_acls_request();
    let v0 = same_request(k::CREATE_ACLS, 0, 1, &create, |_| {});
    let Request::CreateAcls(v0) = v0 else {
        panic!("not a CreateAcls: {v0:?}")
    };
    assert_eq!(v0.creations[0].resource_pattern_type, 3, "literal");
    let response = weir_protocol::testing::sample_response(k::CREATE_ACLS).expect("mirrored");
    same_response(
        k::CREATE_ACLS,
        0,
        1,
        &response,
        |_: &mut m3::CreateAclsResponse| {},
    );

    let describe = kafka3::describe_acls_request();
    let v0 = same_request(k::DESCRIBE_ACLS, 0, 1, &describe, |_| {});
    assert!(matches!(v0, Request::DescribeAcls(r) if r.pattern_type_filter == 3));
    let response = weir_protocol::testing::sample_response(k::DESCRIBE_ACLS).expect("mirrored");
    let got: m3::DescribeAclsResponse = same_response(
        k::DESCRIBE_ACLS,
        0,
        1,
        &response,
        |r: &mut m3::DescribeAclsResponse| {
            for res in &mut r.resources {
                res.pattern_type =
                    m3::describe_acls_response::DescribeAclsResource::default().pattern_type;
            }
        },
    );
    assert!(!got.resources.is_empty());

    let delete = kafka3::delete_acls_request();
    same_request(k::DELETE_ACLS, 0, 1, &delete, |_| {});
    let response = weir_protocol::testing::sample_response(k::DELETE_ACLS).expect("mirrored");
    let got: m3::DeleteAclsResponse = same_response(
        k::DELETE_ACLS,
        0,
        1,
        &response,
        |r: &mut m3::DeleteAclsResponse| {
            for f in &mut r.filter_results {
                for acl in &mut f.matching_acls {
                    acl.pattern_type =
                        m3::delete_acls_response::DeleteAclsMatchingAcl::default().pattern_type;
                }
            }
        },
    );
    assert!(!got.filter_results[0].matching_acls.is_empty());
}

#[test]
fn describe_configs_v0_answers_is_default_without_synonyms() {
    let msg = kafka3::describe_configs_request();
    let v0 = same_request(k::DESCRIBE_CONFIGS, 0, 1, &msg, |_| {});
    assert!(
        matches!(v0, Request::DescribeConfigs(r) if !r.include_synonyms && r.resources[1].configuration_keys.is_none())
    );

    let entry = |name: &str, source: i8| weir_protocol::DescribeConfigsEntry {
        name: name.into(),
        value: Some("1".into()),
        read_only: source == 4,
        config_source: source,
        is_sensitive: false,
        synonyms: vec![weir_protocol::DescribeConfigsSynonym {
            name: name.into(),
            value: Some("1".into()),
            source,
        }],
        ..Default::default()
    };
    let response = Response::DescribeConfigs(weir_protocol::DescribeConfigsResponse {
        throttle_time_ms: 3,
        results: vec![weir_protocol::DescribeConfigsResult {
            error_code: weir_protocol::ErrorCode::NONE,
            error_message: None,
            resource_type: 2,
            resource_name: "orders".into(),
            configs: vec![entry("retention.ms", 1), entry("cleanup.policy", 5)],
        }],
    });
    let got: m3::DescribeConfigsResponse = same_response(
        k::DESCRIBE_CONFIGS,
        0,
        1,
        &response,
        |r: &mut m3::DescribeConfigsResponse| {
            for res in &mut r.results {
                for c in &mut res.configs {
                    c.is_default = c.config_source == 5;
                    c.config_source = -1;
                    c.synonyms.clear();
                }
            }
        },
    );
    let defaults: Vec<bool> = got.results[0]
        .configs
        .iter()
        .map(|c| c.is_default)
        .collect();
    assert_eq!(defaults, [false, true]);
}

#[test]
fn log_dir_apis_v0_are_v1() {
    let describe = kafka3::describe_log_dirs_request();
    same_request(k::DESCRIBE_LOG_DIRS, 0, 1, &describe, |_| {});
    let response = weir_protocol::testing::sample_response(k::DESCRIBE_LOG_DIRS).expect("mirrored");
    same_response(
        k::DESCRIBE_LOG_DIRS,
        0,
        1,
        &response,
        |_: &mut m3::DescribeLogDirsResponse| {},
    );

    let alter = kafka3::alter_replica_log_dirs_request();
    same_request(k::ALTER_REPLICA_LOG_DIRS, 0, 1, &alter, |_| {});
    let response =
        weir_protocol::testing::sample_response(k::ALTER_REPLICA_LOG_DIRS).expect("mirrored");
    same_response(
        k::ALTER_REPLICA_LOG_DIRS,
        0,
        1,
        &response,
        |_: &mut m3::AlterReplicaLogDirsResponse| {},
    );
}

#[test]
fn join_group_v0_waits_the_session_timeout_for_a_rebalance() {
    let mut msg = m3::JoinGroupRequest::default();
    msg.group_id = m3::GroupId(s("legacy-group"));
    msg.session_timeout_ms = 10_000;
    msg.rebalance_timeout_ms = 60_000;
    msg.protocol_type = s("consumer");
    let mut p = m3::join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"\x00\x00\x00\x00\x00\x01\x00\x01a\xff\xff\xff\xff");
    msg.protocols.push(p);
    let v0 = decode(k::JOIN_GROUP, 0, &msg);
    assert!(
        matches!(&v0, Request::JoinGroup(r) if r.rebalance_timeout_ms == 10_000),
        "{v0:?}"
    );
    same_request(k::JOIN_GROUP, 1, 2, &msg, |_| {});
    let v1 = decode(k::JOIN_GROUP, 1, &msg);
    assert!(
        matches!(&v1, Request::JoinGroup(r) if r.rebalance_timeout_ms == 60_000),
        "{v1:?}"
    );

    let response = Response::JoinGroup(weir_protocol::JoinGroupResponse {
        throttle_time_ms: 5,
        generation_id: 1,
        protocol_name: Some("range".into()),
        leader: "m-1".into(),
        member_id: "m-1".into(),
        ..Default::default()
    });
    for old in [0, 1] {
        let got: m3::JoinGroupResponse = same_response(
            k::JOIN_GROUP,
            old,
            2,
            &response,
            |r: &mut m3::JoinGroupResponse| {
                r.throttle_time_ms = 0;
            },
        );
        assert_eq!(got.generation_id, 1);
    }
}

/// Truncating a removed-version request anywhere is a decode error, never a panic; and the
/// rewritten body is checked like any other.
#[test]
fn truncated_removed_version_requests_are_errors() {
    let frames = [
        frame(k::OFFSET_COMMIT, 0, &commit_request(0)),
        frame(k::OFFSET_COMMIT, 1, &commit_request(1)),
        frame(k::DESCRIBE_ACLS, 0, &kafka3::describe_acls_request()),
    ];
    for full in frames {
        for cut in kafka3::HEADER_BYTES..full.len() {
            assert!(
                weir_protocol::decode_request(full.slice(..cut)).is_err(),
                "a frame cut at {cut} of {} decoded",
                full.len()
            );
        }
    }
}
