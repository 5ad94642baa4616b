//! Response round trips: Weir encodes each response at every served version and
//! kafka-protocol decodes it (as a client would). `common::roundtrip` also checks the size
//! prefix, the correlation id, and the response header version.

mod common;

use bytes::{Buf, Bytes};
use common::{crate_versions, header, roundtrip, versions};
use kafka_protocol::messages as m;
use weir_protocol::*;

const ID: [u8; 16] = [9; 16];

#[test]
fn api_versions_uses_header_v0_at_every_version() {
    for v in versions(api_key::API_VERSIONS) {
        let resp = Response::ApiVersions(ApiVersionsResponse::supported());
        let got: m::ApiVersionsResponse = roundtrip(api_key::API_VERSIONS, v, &resp);
        assert_eq!(got.error_code, 0);
        let list: Vec<(i16, i16, i16)> = got
            .api_keys
            .iter()
            .map(|a| (a.api_key, a.min_version, a.max_version))
            .collect();
        assert_eq!(list, advertised_apis(), "v{v}");
        // v3+ is flexible, yet the response header stays v0: the body decodes right after
        // the correlation id (checked by roundtrip), and no tagged fields are added.
        assert!(got.supported_features.is_empty());
        assert_eq!(got.finalized_features_epoch, -1);
    }
}

/// Features (KIP-584) travel from v3 on: the supported range of each, and the finalized level
/// with its epoch; older versions have no room for them and leave them out.
#[test]
fn api_versions_carries_features_from_v3() {
    let resp = Response::ApiVersions(ApiVersionsResponse {
        features: vec![Feature {
            name: "transaction.version".into(),
            min_supported: 0,
            max_supported: 2,
            finalized: Some(2),
        }],
        finalized_features_epoch: 1,
        ..ApiVersionsResponse::supported()
    });
    for v in versions(api_key::API_VERSIONS) {
        let got: m::ApiVersionsResponse = roundtrip(api_key::API_VERSIONS, v, &resp);
        let supported: Vec<(String, i16, i16)> = got
            .supported_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version, f.max_version))
            .collect();
        let finalized: Vec<(String, i16)> = got
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect();
        if v >= 3 {
            assert_eq!(supported, vec![("transaction.version".into(), 0, 2)]);
            assert_eq!(finalized, vec![("transaction.version".into(), 2)]);
            assert_eq!(got.finalized_features_epoch, 1);
        } else {
            assert!(supported.is_empty() && finalized.is_empty(), "v{v}");
        }
    }
}

#[test]
fn api_versions_advertises_the_issue_ranges() {
    let find = |key| {
        supported_apis()
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|&(_, a, b)| (a, b))
    };
    assert_eq!(find(api_key::PRODUCE), Some((0, 13)));
    assert_eq!(find(api_key::FETCH), Some((0, 17)));
    assert_eq!(find(api_key::LIST_OFFSETS), Some((0, 10)));
    assert_eq!(find(api_key::METADATA), Some((0, 13)));
    assert_eq!(find(api_key::API_VERSIONS), Some((0, 4)));
    // Kafka 3.9's oldest versions, which Kafka 4.0 removed (KIP-896): old clients still send
    // them.
    assert_eq!(find(api_key::OFFSET_COMMIT), Some((0, 9)));
    assert_eq!(find(api_key::OFFSET_FETCH), Some((0, 9)));
    assert_eq!(find(api_key::JOIN_GROUP), Some((0, 9)));
    assert_eq!(find(api_key::CREATE_TOPICS), Some((0, 7)));
    assert_eq!(find(api_key::DELETE_TOPICS), Some((0, 6)));
    assert_eq!(find(api_key::OFFSET_FOR_LEADER_EPOCH), Some((0, 4)));
    assert_eq!(find(api_key::DESCRIBE_ACLS), Some((0, 3)));
    assert_eq!(find(api_key::CREATE_ACLS), Some((0, 3)));
    assert_eq!(find(api_key::DELETE_ACLS), Some((0, 3)));
    assert_eq!(find(api_key::DESCRIBE_CONFIGS), Some((0, 4)));
    assert_eq!(find(api_key::ALTER_REPLICA_LOG_DIRS), Some((0, 2)));
    assert_eq!(find(api_key::DESCRIBE_LOG_DIRS), Some((0, 4)));
    assert_eq!(find(api_key::FIND_COORDINATOR), Some((0, 6)));
    assert_eq!(find(api_key::SASL_HANDSHAKE), Some((0, 1)));
    assert_eq!(find(api_key::SASL_AUTHENTICATE), Some((0, 2)));
    // Transactions, at Kafka 4.1's ranges (WriteTxnMarkers v0 was removed by KIP-896).
    assert_eq!(find(api_key::ADD_PARTITIONS_TO_TXN), Some((0, 5)));
    assert_eq!(find(api_key::ADD_OFFSETS_TO_TXN), Some((0, 4)));
    assert_eq!(find(api_key::END_TXN), Some((0, 5)));
    assert_eq!(find(api_key::WRITE_TXN_MARKERS), Some((1, 1)));
    assert_eq!(find(api_key::TXN_OFFSET_COMMIT), Some((0, 5)));
    assert_eq!(find(api_key::DESCRIBE_TRANSACTIONS), Some((0, 0)));
    assert_eq!(find(api_key::LIST_TRANSACTIONS), Some((0, 2)));
    // UpdateFeatures (57) is not served.
    assert_eq!(find(57), None);
}

/// The inter-broker Raft APIs are decoded and encoded but not listed in ApiVersions (nor in the
/// KIP-511 fallback): clients have no business sending them. The cluster admin APIs are listed.
#[test]
fn served_but_not_advertised() {
    let hidden = [
        (api_key::VOTE, 52, (0, 2)),
        (api_key::BEGIN_QUORUM_EPOCH, 53, (0, 1)),
        (api_key::END_QUORUM_EPOCH, 54, (0, 1)),
        (api_key::INITIALIZE_SHARE_GROUP_STATE, 83, (0, 0)),
        (api_key::READ_SHARE_GROUP_STATE, 84, (0, 0)),
        (api_key::WRITE_SHARE_GROUP_STATE, 85, (0, 0)),
        (api_key::DELETE_SHARE_GROUP_STATE, 86, (0, 0)),
        (api_key::READ_SHARE_GROUP_STATE_SUMMARY, 87, (0, 1)),
    ];
    let advertised = advertised_apis();
    for key in [
        api_key::ELECT_LEADERS,
        api_key::ALTER_PARTITION_REASSIGNMENTS,
        api_key::LIST_PARTITION_REASSIGNMENTS,
    ] {
        assert!(
            advertised.iter().any(|&(k, _, _)| k == key),
            "api {key} is not advertised"
        );
    }
    for (key, number, range) in hidden {
        assert_eq!(key, number);
        assert_eq!(supported_range(key), Some(range), "api {key} is decoded");
        assert!(
            !advertised.iter().any(|&(k, _, _)| k == key),
            "api {key} is advertised"
        );
    }
    assert_eq!(advertised.len() + hidden.len(), supported_apis().len());
    let Response::ApiVersions(listed) = Response::ApiVersions(ApiVersionsResponse::supported())
    else {
        unreachable!()
    };
    assert!(listed
        .api_keys
        .iter()
        .all(|a| !hidden.iter().any(|h| h.0 == a.api_key)));
    let mut fallback = encode_api_versions_unsupported(&header(api_key::API_VERSIONS, 99));
    fallback.advance(8);
    let body =
        <m::ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut fallback, 0)
            .expect("v0 body");
    assert!(body
        .api_keys
        .iter()
        .all(|a| !hidden.iter().any(|h| h.0 == a.api_key)));
}

/// KIP-511: ApiVersions at a version we do not serve gets a v0 body with
/// UNSUPPORTED_VERSION and the full list, behind a v0 response header.
#[test]
fn kip_511_api_versions_v99() {
    let mut frame = bytes::BytesMut::new();
    bytes::BufMut::put_i16(&mut frame, 18);
    bytes::BufMut::put_i16(&mut frame, 99);
    bytes::BufMut::put_i32(&mut frame, 31337);
    bytes::BufMut::put_i16(&mut frame, 6);
    bytes::BufMut::put_slice(&mut frame, b"future");
    // Whatever a v99 body looks like, it must not be parsed.
    bytes::BufMut::put_slice(&mut frame, &[0xff; 13]);
    let err = decode_request(frame.freeze()).expect_err("v99 is unsupported");
    let DecodeError::UnsupportedVersion { header } = err else {
        panic!("expected UnsupportedVersion, got {err:?}")
    };
    assert_eq!(
        (header.api_key, header.api_version, header.correlation_id),
        (18, 99, 31337)
    );
    assert_eq!(header.client_id.as_deref(), Some("future"));

    let mut out = encode_api_versions_unsupported(&header);
    let size = out.get_i32();
    assert_eq!(size as usize, out.remaining());
    assert_eq!(out.get_i32(), 31337);
    let body = <m::ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut out, 0)
        .expect("v0 body");
    assert_eq!(out.remaining(), 0);
    assert_eq!(body.error_code, ErrorCode::UNSUPPORTED_VERSION.0);
    assert_eq!(body.error_code, 35);
    assert_eq!(body.api_keys.len(), advertised_apis().len());
    assert!(body
        .api_keys
        .iter()
        .any(|a| a.api_key == 18 && a.min_version == 0 && a.max_version == 4));
}

#[test]
fn other_apis_at_unsupported_versions_and_unknown_keys() {
    for (key, version) in [(1i16, -1i16), (1, 18), (3, 14), (0, 14), (2, 11), (27, 0)] {
        let frame = common::request_frame(key, 0, 1, &m::ApiVersionsRequest::default());
        // Rewrite the version in place: only the header matters here.
        let mut raw = frame.to_vec();
        raw[2..4].copy_from_slice(&version.to_be_bytes());
        match decode_request(Bytes::from(raw)) {
            Err(DecodeError::UnsupportedVersion { header }) => {
                assert_eq!((header.api_key, header.api_version), (key, version))
            }
            other => panic!("api {key} v{version}: {other:?}"),
        }
    }
    for key in [57i16, 56, 999, -1] {
        let mut raw = vec![0u8; 10];
        raw[0..2].copy_from_slice(&key.to_be_bytes());
        raw[8..10].copy_from_slice(&(-1i16).to_be_bytes());
        match decode_request(Bytes::from(raw)) {
            Err(DecodeError::UnknownApiKey { header }) => {
                assert_eq!(header.api_key, key);
                assert_eq!(header.client_id, None);
            }
            other => panic!("api {key}: {other:?}"),
        }
    }
}

#[test]
fn metadata() {
    for v in versions(api_key::METADATA) {
        let resp = Response::Metadata(MetadataResponse {
            throttle_time_ms: 5,
            brokers: vec![MetadataBroker {
                node_id: 1,
                host: "localhost".into(),
                port: 9092,
                rack: None,
            }],
            cluster_id: Some("weir-cluster".into()),
            controller_id: 1,
            topics: vec![MetadataTopic {
                name: Some("orders".into()),
                topic_id: ID,
                partitions: vec![MetadataPartition {
                    partition_index: 0,
                    leader_id: 1,
                    leader_epoch: 0,
                    replica_nodes: vec![1],
                    isr_nodes: vec![1],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let got: m::MetadataResponse = roundtrip(api_key::METADATA, v, &resp);
        assert_eq!(got.brokers[0].host.as_str(), "localhost");
        assert_eq!(got.brokers[0].port, 9092);
        let t = &got.topics[0];
        assert_eq!(t.name.as_ref().map(|n| n.0.as_str()), Some("orders"));
        assert_eq!(t.partitions[0].leader_id.0, 1);
        assert_eq!(t.partitions[0].isr_nodes.len(), 1);
        if v >= 1 {
            assert_eq!(got.controller_id.0, 1);
        }
        if v >= 2 {
            assert_eq!(got.cluster_id.as_deref(), Some("weir-cluster"));
        }
        if v >= 3 {
            assert_eq!(got.throttle_time_ms, 5);
        }
        if v >= 8 {
            assert_eq!(t.topic_authorized_operations, i32::MIN);
        }
        if v >= 10 {
            assert_eq!(t.topic_id.as_bytes(), &ID);
        }
        // v13's top-level error (KIP-1102: REBOOTSTRAP_REQUIRED) is never set by Weir.
        assert_eq!(got.error_code, 0);
    }
}

#[test]
fn produce_v3_plus() {
    for v in 3..=13 {
        let resp = Response::Produce(ProduceResponse {
            topics: vec![ProduceTopicResponse {
                name: "orders".into(),
                topic_id: ID,
                partitions: vec![ProducePartitionResponse {
                    index: 0,
                    error_code: ErrorCode::NONE,
                    base_offset: 100,
                    log_start_offset: 0,
                    error_message: Some("ignored before v8".into()),
                    ..Default::default()
                }],
            }],
            throttle_time_ms: 1,
            ..Default::default()
        });
        let got: m::ProduceResponse = roundtrip(api_key::PRODUCE, v, &resp);
        let p = &got.responses[0].partition_responses[0];
        // v13 names the topic by id (KIP-516).
        if v >= 13 {
            assert_eq!(got.responses[0].topic_id.as_bytes(), &ID);
            assert_eq!(got.responses[0].name.0.as_str(), "");
        } else {
            assert_eq!(got.responses[0].name.0.as_str(), "orders");
        }
        assert_eq!((p.index, p.error_code, p.base_offset), (0, 0, 100));
        assert_eq!(p.log_append_time_ms, -1);
        assert_eq!(p.log_start_offset, if v >= 5 { 0 } else { -1 });
        assert_eq!(p.error_message.is_some(), v >= 8);
        assert_eq!(got.throttle_time_ms, 1);
        // Unset, the KIP-951 tagged fields are not written (old librdkafka).
        assert_eq!(p.current_leader, Default::default());
        assert!(got.node_endpoints.is_empty());
        assert!(p.unknown_tagged_fields.is_empty() && got.unknown_tagged_fields.is_empty());
    }
}

/// KIP-951: a NOT_LEADER_OR_FOLLOWER answer names the new leader and its address (v10+,
/// tagged); older versions drop them; Weir's client side reads them back.
#[test]
fn produce_names_the_new_leader() {
    for v in 3..=11 {
        let produce = ProduceResponse {
            topics: vec![ProduceTopicResponse {
                name: "orders".into(),
                topic_id: [0; 16],
                partitions: vec![ProducePartitionResponse {
                    index: 2,
                    error_code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
                    current_leader: Some((3, 7)),
                    ..Default::default()
                }],
            }],
            throttle_time_ms: 0,
            node_endpoints: vec![NodeEndpoint {
                node_id: 3,
                host: "broker-3".into(),
                port: 9093,
                rack: Some("rack-b".into()),
            }],
        };
        let resp = Response::Produce(produce.clone());
        let got: m::ProduceResponse = roundtrip(api_key::PRODUCE, v, &resp);
        let p = &got.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 6);
        if v >= 10 {
            assert_eq!(
                (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
                (3, 7)
            );
            let n = &got.node_endpoints[0];
            assert_eq!(
                (n.node_id.0, n.host.as_str(), n.port, n.rack.as_deref()),
                (3, "broker-3", 9093, Some("rack-b"))
            );
        } else {
            assert_eq!(p.current_leader, Default::default(), "v{v}");
            assert!(got.node_endpoints.is_empty(), "v{v}");
        }
        let bytes = encode_response(&header(api_key::PRODUCE, v), &resp).expect("encode");
        let (_, back) =
            client::decode_response(api_key::PRODUCE, v, bytes.slice(4..)).expect("client");
        let Response::Produce(back) = back else {
            panic!("wrong variant")
        };
        if v >= 10 {
            assert_eq!(back, produce);
        } else {
            assert_eq!(back.topics[0].partitions[0].current_leader, None);
            assert!(back.node_endpoints.is_empty());
        }
    }
}

/// Produce v0-2 responses are hand-encoded; parse them by hand.
#[test]
fn produce_v0_to_v2() {
    for v in 0..=2i16 {
        let resp = Response::Produce(ProduceResponse {
            topics: vec![ProduceTopicResponse {
                name: "t".into(),
                topic_id: [0; 16],
                partitions: vec![ProducePartitionResponse {
                    index: 3,
                    error_code: ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
                    base_offset: -1,
                    ..Default::default()
                }],
            }],
            throttle_time_ms: 9,
            ..Default::default()
        });
        let mut b = encode_response(&header(0, v), &resp).expect("encode");
        assert_eq!(b.get_i32() as usize, b.remaining());
        assert_eq!(b.get_i32(), 77);
        assert_eq!(b.get_i32(), 1); // topics
        assert_eq!(b.get_i16(), 1);
        assert_eq!(b.get_u8(), b't');
        assert_eq!(b.get_i32(), 1); // partitions
        assert_eq!(b.get_i32(), 3);
        assert_eq!(b.get_i16(), 43);
        assert_eq!(b.get_i64(), -1);
        if v >= 2 {
            assert_eq!(b.get_i64(), -1, "log_append_time_ms");
        }
        if v >= 1 {
            assert_eq!(b.get_i32(), 9, "throttle_time_ms");
        }
        assert_eq!(b.remaining(), 0, "v{v}");
    }
}

#[test]
fn fetch_records_never_null() {
    for v in crate_versions(api_key::FETCH) {
        let batch = Bytes::from_static(b"raw-batch-bytes");
        let resp = Response::Fetch(FetchResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            session_id: 12,
            topics: vec![FetchTopicResponse {
                name: "orders".into(),
                topic_id: ID,
                partitions: vec![
                    FetchPartitionResponse {
                        partition_index: 0,
                        high_watermark: 10,
                        last_stable_offset: 10,
                        log_start_offset: 0,
                        records: batch.clone().into(),
                        ..Default::default()
                    },
                    FetchPartitionResponse {
                        partition_index: 1,
                        error_code: ErrorCode::OFFSET_OUT_OF_RANGE,
                        ..Default::default()
                    },
                ],
            }],
            node_endpoints: vec![NodeEndpoint {
                node_id: 2,
                host: "broker-2".into(),
                port: 9093,
                rack: None,
            }],
        });
        let got: m::FetchResponse = roundtrip(api_key::FETCH, v, &resp);
        // KIP-951's leader addresses are a v16+ tagged field.
        if v >= 16 {
            assert_eq!(got.node_endpoints.len(), 1);
            assert_eq!(got.node_endpoints[0].node_id.0, 2);
            assert_eq!(got.node_endpoints[0].host.as_str(), "broker-2");
            assert_eq!(got.node_endpoints[0].port, 9093);
        } else {
            assert!(got.node_endpoints.is_empty());
        }
        let ps = &got.responses[0].partitions;
        // v13+ names the topic by id (KIP-516).
        if v >= 13 {
            assert_eq!(got.responses[0].topic_id.as_bytes(), &ID);
            assert_eq!(got.responses[0].topic.0.as_str(), "");
        } else {
            assert_eq!(got.responses[0].topic.0.as_str(), "orders");
        }
        assert_eq!(ps[0].records.as_ref(), Some(&batch));
        assert_eq!(
            ps[1].records.as_ref(),
            Some(&Bytes::new()),
            "empty, not null"
        );
        assert_eq!(ps[1].error_code, 1);
        assert_eq!(ps[0].high_watermark, 10);
        assert_eq!(ps[0].aborted_transactions.as_deref(), Some(&[][..]));
        assert_eq!(got.session_id, if v >= 7 { 12 } else { 0 });
        if v >= 11 {
            assert_eq!(ps[0].preferred_read_replica.0, -1);
        }
        // v12+ tagged fields (diverging epoch, current leader, snapshot id) stay absent.
        if v >= 12 {
            assert_eq!(ps[0].current_leader.leader_id.0, -1);
            assert_eq!(ps[0].diverging_epoch.epoch, -1);
            assert!(ps[0].unknown_tagged_fields.is_empty());
        }
    }
}

/// Fetch v0-3 responses are hand-encoded; parse them by hand. Records are never null.
#[test]
fn fetch_v0_to_v3() {
    for v in 0..=3i16 {
        let resp = Response::Fetch(FetchResponse {
            throttle_time_ms: 5,
            topics: vec![FetchTopicResponse {
                name: "t".into(),
                topic_id: [0; 16],
                partitions: vec![
                    FetchPartitionResponse {
                        partition_index: 2,
                        high_watermark: 10,
                        records: Bytes::from_static(b"message-set").into(),
                        ..Default::default()
                    },
                    FetchPartitionResponse {
                        partition_index: 3,
                        error_code: ErrorCode::OFFSET_OUT_OF_RANGE,
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        });
        let mut b = encode_response(&header(api_key::FETCH, v), &resp).expect("encode");
        assert_eq!(b.get_i32() as usize, b.remaining());
        assert_eq!(b.get_i32(), 77);
        if v >= 1 {
            assert_eq!(b.get_i32(), 5, "throttle_time_ms");
        }
        assert_eq!(b.get_i32(), 1); // topics
        assert_eq!(b.get_i16(), 1);
        assert_eq!(b.get_u8(), b't');
        assert_eq!(b.get_i32(), 2); // partitions
        assert_eq!((b.get_i32(), b.get_i16(), b.get_i64()), (2, 0, 10));
        assert_eq!(b.get_i32(), 11);
        let mut records = [0u8; 11];
        b.copy_to_slice(&mut records);
        assert_eq!(&records, b"message-set");
        assert_eq!((b.get_i32(), b.get_i16(), b.get_i64()), (3, 1, -1));
        assert_eq!(b.get_i32(), 0, "empty records, not null");
        assert_eq!(b.remaining(), 0, "v{v}");
    }
}

/// ListOffsets v0 answers an array of offsets per partition: the offset, or none.
#[test]
fn list_offsets_v0() {
    let resp = Response::ListOffsets(ListOffsetsResponse {
        throttle_time_ms: 0,
        topics: vec![ListOffsetsTopicResponse {
            name: "t".into(),
            partitions: vec![
                ListOffsetsPartitionResponse {
                    partition_index: 0,
                    offset: 55,
                    ..Default::default()
                },
                ListOffsetsPartitionResponse {
                    partition_index: 1,
                    error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    ..Default::default()
                },
            ],
        }],
    });
    let mut b = encode_response(&header(api_key::LIST_OFFSETS, 0), &resp).expect("encode");
    assert_eq!(b.get_i32() as usize, b.remaining());
    assert_eq!(b.get_i32(), 77);
    assert_eq!(b.get_i32(), 1); // topics
    assert_eq!(b.get_i16(), 1);
    assert_eq!(b.get_u8(), b't');
    assert_eq!(b.get_i32(), 2); // partitions
    assert_eq!((b.get_i32(), b.get_i16()), (0, 0));
    assert_eq!((b.get_i32(), b.get_i64()), (1, 55));
    assert_eq!((b.get_i32(), b.get_i16()), (1, 3));
    assert_eq!(b.get_i32(), 0, "no offset");
    assert_eq!(b.remaining(), 0);
}

/// What a leader answers a follower: KIP-320's diverging epoch and the current leader (v12+,
/// tagged), dropped at older versions; Weir's client side (the replica fetcher) reads them,
/// and the aborted transactions, back.
#[test]
fn fetch_answers_a_follower() {
    for v in crate_versions(api_key::FETCH) {
        let partition = FetchPartitionResponse {
            partition_index: 4,
            high_watermark: 100,
            last_stable_offset: 100,
            log_start_offset: 0,
            diverging_epoch: Some((3, 120)),
            current_leader: Some((1, 5)),
            aborted_transactions: vec![AbortedTransaction {
                producer_id: 9,
                first_offset: 40,
            }],
            ..Default::default()
        };
        let resp = Response::Fetch(FetchResponse {
            topics: vec![FetchTopicResponse {
                name: "orders".into(),
                topic_id: [0; 16],
                partitions: vec![partition.clone()],
            }],
            ..Default::default()
        });
        let got: m::FetchResponse = roundtrip(api_key::FETCH, v, &resp);
        let p = &got.responses[0].partitions[0];
        if v >= 12 {
            assert_eq!(
                (p.diverging_epoch.epoch, p.diverging_epoch.end_offset),
                (3, 120)
            );
            assert_eq!(
                (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
                (1, 5)
            );
        } else {
            assert_eq!(p.diverging_epoch, Default::default(), "v{v}");
            assert_eq!(p.current_leader, Default::default(), "v{v}");
        }
        let bytes = encode_response(&header(api_key::FETCH, v), &resp).expect("encode");
        let (_, back) =
            client::decode_response(api_key::FETCH, v, bytes.slice(4..)).expect("client");
        let Response::Fetch(back) = back else {
            panic!("wrong variant")
        };
        let back = &back.topics[0].partitions[0];
        assert_eq!(back.aborted_transactions, partition.aborted_transactions);
        if v >= 12 {
            assert_eq!(*back, partition);
        } else {
            assert_eq!((back.diverging_epoch, back.current_leader), (None, None));
        }
    }
}

/// The Raft responses, decoded by kafka-protocol at every version.
#[test]
fn raft_responses() {
    for v in versions(api_key::VOTE) {
        let resp = Response::Vote(VoteResponse {
            error_code: ErrorCode::NONE,
            topics: vec![VoteTopicResponse {
                topic_name: "orders".into(),
                partitions: vec![VotePartitionResponse {
                    partition_index: 2,
                    error_code: ErrorCode::FENCED_LEADER_EPOCH,
                    leader_id: 3,
                    leader_epoch: 8,
                    vote_granted: true,
                }],
            }],
        });
        let got: m::VoteResponse = roundtrip(api_key::VOTE, v, &resp);
        let p = &got.topics[0].partitions[0];
        assert_eq!(got.topics[0].topic_name.0.as_str(), "orders");
        assert_eq!(
            (
                p.partition_index,
                p.error_code,
                p.leader_id.0,
                p.leader_epoch,
                p.vote_granted
            ),
            (2, 74, 3, 8, true)
        );
        // The tagged leader endpoints are never written.
        assert!(got.node_endpoints.is_empty());
    }
    let quorum_topics = vec![QuorumEpochTopicResponse {
        topic_name: "orders".into(),
        partitions: vec![QuorumEpochPartitionResponse {
            partition_index: 1,
            error_code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
            leader_id: 2,
            leader_epoch: 6,
        }],
    }];
    for v in versions(api_key::BEGIN_QUORUM_EPOCH) {
        let resp = Response::BeginQuorumEpoch(BeginQuorumEpochResponse {
            error_code: ErrorCode::INCONSISTENT_CLUSTER_ID,
            topics: quorum_topics.clone(),
        });
        let got: m::BeginQuorumEpochResponse = roundtrip(api_key::BEGIN_QUORUM_EPOCH, v, &resp);
        let p = &got.topics[0].partitions[0];
        assert_eq!(got.error_code, 104);
        assert_eq!(
            (
                p.partition_index,
                p.error_code,
                p.leader_id.0,
                p.leader_epoch
            ),
            (1, 6, 2, 6)
        );
    }
    for v in versions(api_key::END_QUORUM_EPOCH) {
        let resp = Response::EndQuorumEpoch(EndQuorumEpochResponse {
            error_code: ErrorCode::NONE,
            topics: quorum_topics.clone(),
        });
        let got: m::EndQuorumEpochResponse = roundtrip(api_key::END_QUORUM_EPOCH, v, &resp);
        let p = &got.topics[0].partitions[0];
        assert_eq!(
            (
                p.partition_index,
                p.error_code,
                p.leader_id.0,
                p.leader_epoch
            ),
            (1, 6, 2, 6)
        );
    }
}

/// ElectLeaders v0 has no top-level error code (it is dropped); the partition results carry
/// the errors at every version.
#[test]
fn elect_leaders_results() {
    for v in versions(api_key::ELECT_LEADERS) {
        let resp = Response::ElectLeaders(ElectLeadersResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            replica_election_results: vec![ReplicaElectionResult {
                topic: "orders".into(),
                partition_result: vec![ElectLeadersPartitionResult {
                    partition_id: 0,
                    error_code: ErrorCode::ELECTION_NOT_NEEDED,
                    error_message: None,
                }],
            }],
        });
        let got: m::ElectLeadersResponse = roundtrip(api_key::ELECT_LEADERS, v, &resp);
        assert_eq!(got.error_code, if v >= 1 { 31 } else { 0 }, "v{v}");
        let p = &got.replica_election_results[0].partition_result[0];
        assert_eq!(
            (p.partition_id, p.error_code, p.error_message.as_deref()),
            (0, 84, None)
        );
    }
}

#[test]
fn list_offsets() {
    for v in crate_versions(api_key::LIST_OFFSETS) {
        let resp = Response::ListOffsets(ListOffsetsResponse {
            throttle_time_ms: 0,
            topics: vec![ListOffsetsTopicResponse {
                name: "orders".into(),
                partitions: vec![ListOffsetsPartitionResponse {
                    partition_index: 0,
                    offset: 55,
                    timestamp: -1,
                    ..Default::default()
                }],
            }],
        });
        let got: m::ListOffsetsResponse = roundtrip(api_key::LIST_OFFSETS, v, &resp);
        let p = &got.topics[0].partitions[0];
        assert_eq!(p.offset, 55);
        assert_eq!(p.leader_epoch, if v >= 4 { 0 } else { -1 });
    }
}

#[test]
fn offset_commit_and_fetch() {
    for v in crate_versions(api_key::OFFSET_COMMIT) {
        let resp = Response::OffsetCommit(OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: vec![OffsetCommitTopicResponse {
                name: "orders".into(),
                partitions: vec![PartitionError {
                    partition_index: 2,
                    error_code: ErrorCode::ILLEGAL_GENERATION,
                }],
            }],
        });
        let got: m::OffsetCommitResponse = roundtrip(api_key::OFFSET_COMMIT, v, &resp);
        assert_eq!(got.topics[0].partitions[0].error_code, 22);
    }
    for v in crate_versions(api_key::OFFSET_FETCH) {
        let group = OffsetFetchGroupResponse {
            group_id: "g1".into(),
            error_code: ErrorCode::NONE,
            topics: vec![OffsetFetchTopicResponse {
                name: "orders".into(),
                partitions: vec![OffsetFetchPartitionResponse {
                    partition_index: 0,
                    committed_offset: 42,
                    metadata: Some("m".into()),
                    ..Default::default()
                }],
            }],
        };
        let resp = Response::OffsetFetch(OffsetFetchResponse {
            throttle_time_ms: 0,
            groups: vec![group.clone()],
        });
        let got: m::OffsetFetchResponse = roundtrip(api_key::OFFSET_FETCH, v, &resp);
        if v >= 8 {
            assert_eq!(got.groups[0].group_id.0.as_str(), "g1");
            assert_eq!(got.groups[0].topics[0].partitions[0].committed_offset, 42);
        } else {
            assert_eq!(got.topics[0].partitions[0].committed_offset, 42);
            assert_eq!(got.topics[0].partitions[0].metadata.as_deref(), Some("m"));
        }
        // Two groups only fit the batched versions.
        let two = Response::OffsetFetch(OffsetFetchResponse {
            throttle_time_ms: 0,
            groups: vec![group.clone(), group],
        });
        let res = encode_response(&header(api_key::OFFSET_FETCH, v), &two);
        assert_eq!(res.is_ok(), v >= 8, "v{v}");
    }
}

#[test]
fn find_coordinator() {
    for v in versions(api_key::FIND_COORDINATOR) {
        let c = Coordinator {
            key: "g1".into(),
            node_id: 1,
            host: "localhost".into(),
            port: 9092,
            ..Default::default()
        };
        let resp = Response::FindCoordinator(FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![c.clone()],
        });
        let got: m::FindCoordinatorResponse = roundtrip(api_key::FIND_COORDINATOR, v, &resp);
        if v >= 4 {
            assert_eq!(got.coordinators[0].key.as_str(), "g1");
            assert_eq!(got.coordinators[0].port, 9092);
        } else {
            assert_eq!(
                (got.node_id.0, got.host.as_str(), got.port),
                (1, "localhost", 9092)
            );
        }
        let two = Response::FindCoordinator(FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![c.clone(), c],
        });
        assert_eq!(
            encode_response(&header(api_key::FIND_COORDINATOR, v), &two).is_ok(),
            v >= 4
        );
    }
}

#[test]
fn group_membership() {
    for v in versions(api_key::JOIN_GROUP) {
        let resp = Response::JoinGroup(JoinGroupResponse {
            generation_id: 1,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            leader: "m1".into(),
            member_id: "m1".into(),
            members: vec![JoinGroupMember {
                member_id: "m1".into(),
                group_instance_id: None,
                metadata: Bytes::from_static(b"sub"),
            }],
            ..Default::default()
        });
        let got: m::JoinGroupResponse = roundtrip(api_key::JOIN_GROUP, v, &resp);
        assert_eq!(got.generation_id, 1);
        assert_eq!(&got.members[0].metadata[..], b"sub");
        // protocol_name is non-nullable before v7.
        let expected_name = if v >= 7 { None } else { Some("") };
        assert_eq!(got.protocol_name.as_deref(), expected_name, "v{v}");
    }
    for v in versions(api_key::SYNC_GROUP) {
        let resp = Response::SyncGroup(SyncGroupResponse {
            assignment: Bytes::from_static(b"a"),
            protocol_name: Some("range".into()),
            ..Default::default()
        });
        let got: m::SyncGroupResponse = roundtrip(api_key::SYNC_GROUP, v, &resp);
        assert_eq!(&got.assignment[..], b"a");
    }
    for v in versions(api_key::HEARTBEAT) {
        let resp = Response::Heartbeat(HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::REBALANCE_IN_PROGRESS,
        });
        let got: m::HeartbeatResponse = roundtrip(api_key::HEARTBEAT, v, &resp);
        assert_eq!(got.error_code, 27);
    }
    for v in versions(api_key::LEAVE_GROUP) {
        let resp = Response::LeaveGroup(LeaveGroupResponse {
            members: vec![LeaveGroupMemberResponse {
                member_id: "m1".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let got: m::LeaveGroupResponse = roundtrip(api_key::LEAVE_GROUP, v, &resp);
        assert_eq!(got.members.len(), usize::from(v >= 3));
    }
}

#[test]
fn group_admin() {
    for v in versions(api_key::LIST_GROUPS) {
        let resp = Response::ListGroups(ListGroupsResponse {
            groups: vec![ListedGroup {
                group_id: "g1".into(),
                protocol_type: "consumer".into(),
                group_state: "Stable".into(),
                group_type: "consumer".into(),
            }],
            ..Default::default()
        });
        let got: m::ListGroupsResponse = roundtrip(api_key::LIST_GROUPS, v, &resp);
        assert_eq!(got.groups[0].group_id.0.as_str(), "g1");
        if v >= 4 {
            assert_eq!(got.groups[0].group_state.as_str(), "Stable");
        }
        // The group type is v5+; older versions simply do not carry it.
        let want_type = if v >= 5 { "consumer" } else { "" };
        assert_eq!(got.groups[0].group_type.as_str(), want_type);
    }
    for v in versions(api_key::DESCRIBE_GROUPS) {
        let resp = Response::DescribeGroups(DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![DescribedGroup {
                group_id: "g1".into(),
                group_state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol_data: "range".into(),
                members: vec![DescribedGroupMember {
                    member_id: "m1".into(),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    member_assignment: Bytes::from_static(b"x"),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        let got: m::DescribeGroupsResponse = roundtrip(api_key::DESCRIBE_GROUPS, v, &resp);
        assert_eq!(got.groups[0].members[0].client_host.as_str(), "/127.0.0.1");
        let failed = Response::DescribeGroups(DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![DescribedGroup {
                error_code: ErrorCode::GROUP_ID_NOT_FOUND,
                error_message: Some("Group g1 is not a classic group.".into()),
                group_id: "g1".into(),
                group_state: "Dead".into(),
                ..Default::default()
            }],
        });
        let got: m::DescribeGroupsResponse = roundtrip(api_key::DESCRIBE_GROUPS, v, &failed);
        assert_eq!(
            got.groups[0].error_message.as_ref().map(|m| m.as_str()),
            (v >= 6).then_some("Group g1 is not a classic group.")
        );
        if v >= 3 {
            assert_eq!(got.groups[0].authorized_operations, i32::MIN);
        }
    }
    for v in versions(api_key::DELETE_GROUPS) {
        let resp = Response::DeleteGroups(DeleteGroupsResponse {
            throttle_time_ms: 0,
            results: vec![DeleteGroupResult {
                group_id: "g1".into(),
                error_code: ErrorCode::NON_EMPTY_GROUP,
            }],
        });
        let got: m::DeleteGroupsResponse = roundtrip(api_key::DELETE_GROUPS, v, &resp);
        assert_eq!(got.results[0].error_code, 68);
    }
    for v in versions(api_key::OFFSET_DELETE) {
        let resp = Response::OffsetDelete(OffsetDeleteResponse {
            error_code: ErrorCode::NONE,
            throttle_time_ms: 0,
            topics: vec![OffsetDeleteTopicResponse {
                name: "orders".into(),
                partitions: vec![PartitionError {
                    partition_index: 0,
                    error_code: ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC,
                }],
            }],
        });
        let got: m::OffsetDeleteResponse = roundtrip(api_key::OFFSET_DELETE, v, &resp);
        assert_eq!(got.topics[0].partitions[0].error_code, 86);
    }
}

#[test]
fn producer_ids_and_topic_admin() {
    for v in versions(api_key::INIT_PRODUCER_ID) {
        let resp = Response::InitProducerId(InitProducerIdResponse {
            producer_id: 1000,
            producer_epoch: 0,
            ..Default::default()
        });
        let got: m::InitProducerIdResponse = roundtrip(api_key::INIT_PRODUCER_ID, v, &resp);
        assert_eq!((got.producer_id.0, got.producer_epoch), (1000, 0));
    }
    for v in crate_versions(api_key::CREATE_TOPICS) {
        let resp = Response::CreateTopics(CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: vec![CreatableTopicResult {
                name: "new".into(),
                topic_id: ID,
                error_code: ErrorCode::TOPIC_ALREADY_EXISTS,
                error_message: Some("exists".into()),
                num_partitions: 3,
                replication_factor: 1,
                configs: Some(vec![CreatableTopicConfig {
                    name: "retention.ms".into(),
                    value: Some("1".into()),
                    config_source: 5,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
        });
        let got: m::CreateTopicsResponse = roundtrip(api_key::CREATE_TOPICS, v, &resp);
        let t = &got.topics[0];
        assert_eq!(
            (t.error_code, t.error_message.as_deref()),
            (36, Some("exists"))
        );
        if v >= 5 {
            assert_eq!(t.num_partitions, 3);
            assert_eq!(t.configs.as_ref().map(Vec::len), Some(1));
        }
        if v >= 7 {
            assert_eq!(t.topic_id.as_bytes(), &ID);
        }
    }
    for v in crate_versions(api_key::DELETE_TOPICS) {
        let resp = Response::DeleteTopics(DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses: vec![
                DeletableTopicResult {
                    name: Some("a".into()),
                    ..Default::default()
                },
                DeletableTopicResult {
                    name: None,
                    topic_id: ID,
                    error_code: ErrorCode::UNKNOWN_TOPIC_ID,
                    ..Default::default()
                },
            ],
        });
        let got: m::DeleteTopicsResponse = roundtrip(api_key::DELETE_TOPICS, v, &resp);
        assert_eq!(
            got.responses[0].name.as_ref().map(|n| n.0.as_str()),
            Some("a")
        );
        let second = got.responses[1].name.as_ref().map(|n| n.0.as_str());
        assert_eq!(second, if v >= 6 { None } else { Some("") });
    }
    for v in versions(api_key::CREATE_PARTITIONS) {
        let resp = Response::CreatePartitions(CreatePartitionsResponse {
            throttle_time_ms: 0,
            results: vec![CreatePartitionsTopicResult {
                name: "orders".into(),
                error_code: ErrorCode::INVALID_PARTITIONS,
                error_message: None,
            }],
        });
        let got: m::CreatePartitionsResponse = roundtrip(api_key::CREATE_PARTITIONS, v, &resp);
        assert_eq!(got.results[0].error_code, 37);
    }
    for v in versions(api_key::DELETE_RECORDS) {
        let resp = Response::DeleteRecords(DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics: vec![DeleteRecordsTopicResult {
                name: "orders".into(),
                partitions: vec![DeleteRecordsPartitionResult {
                    partition_index: 0,
                    low_watermark: 100,
                    error_code: ErrorCode::NONE,
                }],
            }],
        });
        let got: m::DeleteRecordsResponse = roundtrip(api_key::DELETE_RECORDS, v, &resp);
        assert_eq!(got.topics[0].partitions[0].low_watermark, 100);
    }
}

#[test]
fn configs_cluster_epochs() {
    for v in crate_versions(api_key::DESCRIBE_CONFIGS) {
        let resp = Response::DescribeConfigs(DescribeConfigsResponse {
            throttle_time_ms: 0,
            results: vec![DescribeConfigsResult {
                resource_type: 2,
                resource_name: "orders".into(),
                configs: vec![DescribeConfigsEntry {
                    name: "retention.ms".into(),
                    value: Some("604800000".into()),
                    config_source: 5,
                    synonyms: vec![DescribeConfigsSynonym {
                        name: "log.retention.ms".into(),
                        value: None,
                        source: 5,
                    }],
                    config_type: 5,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        let got: m::DescribeConfigsResponse = roundtrip(api_key::DESCRIBE_CONFIGS, v, &resp);
        let c = &got.results[0].configs[0];
        assert_eq!(c.value.as_deref(), Some("604800000"));
        assert_eq!(c.synonyms.len(), 1);
        if v >= 3 {
            assert_eq!(c.config_type, 5);
        }
    }
    for v in versions(api_key::ALTER_CONFIGS) {
        let resp = Response::AlterConfigs(AlterConfigsResponse {
            throttle_time_ms: 0,
            responses: vec![AlterConfigsResourceResponse {
                error_code: ErrorCode::INVALID_CONFIG,
                error_message: Some("bad".into()),
                resource_type: 2,
                resource_name: "orders".into(),
            }],
        });
        let got: m::AlterConfigsResponse = roundtrip(api_key::ALTER_CONFIGS, v, &resp);
        assert_eq!(got.responses[0].error_code, 40);
    }
    for v in versions(api_key::INCREMENTAL_ALTER_CONFIGS) {
        let resp = Response::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
            throttle_time_ms: 0,
            responses: vec![AlterConfigsResourceResponse {
                resource_type: 2,
                resource_name: "orders".into(),
                ..Default::default()
            }],
        });
        let got: m::IncrementalAlterConfigsResponse =
            roundtrip(api_key::INCREMENTAL_ALTER_CONFIGS, v, &resp);
        assert_eq!(got.responses[0].resource_name.as_str(), "orders");
    }
    for v in versions(api_key::DESCRIBE_CLUSTER) {
        let resp = Response::DescribeCluster(DescribeClusterResponse {
            cluster_id: "weir".into(),
            controller_id: 1,
            brokers: vec![DescribeClusterBroker {
                broker_id: 1,
                host: "localhost".into(),
                port: 9092,
                rack: None,
            }],
            ..Default::default()
        });
        let got: m::DescribeClusterResponse = roundtrip(api_key::DESCRIBE_CLUSTER, v, &resp);
        assert_eq!(got.cluster_id.as_str(), "weir");
        assert_eq!(got.brokers[0].port, 9092);
    }
    for v in crate_versions(api_key::OFFSET_FOR_LEADER_EPOCH) {
        let resp = Response::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse {
            throttle_time_ms: 0,
            topics: vec![OffsetForLeaderTopicResult {
                topic: "orders".into(),
                partitions: vec![EpochEndOffset {
                    partition: 0,
                    leader_epoch: 0,
                    end_offset: 10,
                    ..Default::default()
                }],
            }],
        });
        let got: m::OffsetForLeaderEpochResponse =
            roundtrip(api_key::OFFSET_FOR_LEADER_EPOCH, v, &resp);
        assert_eq!(got.topics[0].partitions[0].end_offset, 10);
    }
}

/// Default responses encode at every served version (no field the crate would refuse).
#[test]
fn default_responses_encode_everywhere() {
    for &(key, min, max) in supported_apis() {
        let resp = match key {
            api_key::FIND_COORDINATOR => Response::FindCoordinator(FindCoordinatorResponse {
                throttle_time_ms: 0,
                coordinators: vec![Coordinator::default()],
            }),
            _ => Response::default_for(key).expect("served api has a default response"),
        };
        assert_eq!(resp.api_key(), key);
        for v in min..=max {
            encode_response(&header(key, v), &resp)
                .unwrap_or_else(|e| panic!("api {key} v{v}: {e}"));
        }
    }
}

/// For every API the table mirrors: a response with every field set encodes at every served
/// version (fields a version lacks are dropped, not an error), and at the newest version
/// Weir's client side decodes it back to the same value.
#[test]
fn mirrored_responses_round_trip_at_every_version() {
    let mut mirrored = 0;
    for &(key, min, max) in supported_apis() {
        let Some(sample) = weir_protocol::testing::sample_response(key) else {
            continue;
        };
        mirrored += 1;
        // The client side does not decode the versions Kafka 4 removed (tests/removed_versions.rs
        // checks Weir's answers at them).
        for v in (min..=max).filter(|&v| weir_protocol::testing::client_encodes(key, v)) {
            let bytes = encode_response(&header(key, v), &sample)
                .unwrap_or_else(|e| panic!("api {key} v{v}: {e}"));
            let (correlation_id, decoded) =
                weir_protocol::client::decode_response(key, v, bytes.slice(4..))
                    .unwrap_or_else(|e| panic!("api {key} v{v}: {e}"));
            assert_eq!(correlation_id, 77);
            if v == max {
                assert_eq!(decoded, sample, "api {key} v{v}");
            }
        }
    }
    assert!(mirrored >= 6, "{mirrored} mirrored APIs");
}

#[test]
fn encode_rejects_mismatch_and_unsupported_versions() {
    let resp = Response::Heartbeat(Default::default());
    assert!(matches!(
        encode_response(&header(api_key::METADATA, 1), &resp),
        Err(EncodeError::ApiKeyMismatch { .. })
    ));
    assert!(matches!(
        encode_response(&header(api_key::HEARTBEAT, 5), &resp),
        Err(EncodeError::UnsupportedVersion { .. })
    ));
}

/// Byte-exact frames: flexible versions carry empty tagged-field sections and nothing
/// else (old librdkafka breaks on unexpected tagged fields).
#[test]
fn golden_bytes_have_no_tagged_fields() {
    // Heartbeat v4 (flexible): size, correlation id, header tagged fields (0),
    // throttle_time_ms, error_code, body tagged fields (0).
    let hb = encode_response(
        &header(api_key::HEARTBEAT, 4),
        &Response::Heartbeat(HeartbeatResponse {
            throttle_time_ms: 1,
            error_code: ErrorCode::NOT_COORDINATOR,
        }),
    )
    .expect("encode");
    assert_eq!(
        &hb[..],
        &[0, 0, 0, 12, 0, 0, 0, 77, 0, 0, 0, 0, 1, 0, 16, 0][..]
    );
    // Heartbeat v3 (not flexible): no tagged-field bytes at all.
    let hb = encode_response(
        &header(api_key::HEARTBEAT, 3),
        &Response::Heartbeat(HeartbeatResponse::default()),
    )
    .expect("encode");
    assert_eq!(&hb[..], &[0, 0, 0, 10, 0, 0, 0, 77, 0, 0, 0, 0, 0, 0][..]);

    // ApiVersions v3: header v0 (no tagged byte after the correlation id); body =
    // error_code, compact array of (key, min, max, tagged 0), throttle, tagged 0.
    let n = advertised_apis().len();
    let av = encode_response(
        &header(api_key::API_VERSIONS, 3),
        &Response::ApiVersions(ApiVersionsResponse::supported()),
    )
    .expect("encode");
    assert_eq!(av.len(), 4 + 4 + 2 + 1 + n * 7 + 4 + 1);
    assert_eq!(
        &av[8..10],
        &[0, 0],
        "error code right after the correlation id"
    );
    assert_eq!(av[10] as usize, n + 1, "compact array length");
    assert_eq!(
        av[av.len() - 1],
        0,
        "no tagged fields (supported_features etc.)"
    );
}
