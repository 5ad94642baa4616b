//! Kafka behaviours checked at the wire against the real binary: response byte limits of Fetch
//! (KIP-74) and fetch-session order, ListOffsets' special timestamps, and the authorized operations
//! of Metadata, DescribeCluster and DescribeGroups without an authorizer.

use crate::common::kafka::{producer_batch, Conn};
use crate::common::Broker;
use weir_protocol::{
    DeleteTopicsRequest, DeleteTopicsTopic, DescribeClusterRequest, DescribeGroupsRequest,
    DescribeQuorumPartition, DescribeQuorumRequest, DescribeQuorumTopic, ErrorCode, FetchPartition,
    FetchRequest, FetchResponse, FetchTopic, ListOffsetsPartition, ListOffsetsPartitionResponse,
    ListOffsetsRequest, ListOffsetsTopic, MetadataRequest, MetadataRequestTopic, ProducePartition,
    ProduceRequest, ProduceTopic, Request, Response, AUTHORIZED_OPERATIONS_OMITTED,
};

const BIG: usize = 300_000;

fn fetch(
    conn: &mut Conn,
    topic: &str,
    offsets: &[(i32, i64)],
    max_bytes: i32,
    partition_max_bytes: i32,
    session: (i32, i32),
) -> FetchResponse {
    let response = conn.call(Request::Fetch(FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes,
        session_id: session.0,
        session_epoch: session.1,
        topics: vec![FetchTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: offsets
                .iter()
                .map(|&(partition, fetch_offset)| FetchPartition {
                    partition,
                    fetch_offset,
                    partition_max_bytes,
                    ..FetchPartition::default()
                })
                .collect(),
        }],
        ..FetchRequest::default()
    }));
    let Response::Fetch(r) = response else {
        panic!("not a fetch response: {response:?}");
    };
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    r
}

/// Bytes of records per partition, in response order.
fn record_bytes(r: &FetchResponse) -> Vec<(i32, usize)> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.records.len()))
        .collect()
}

/// Two partitions, each holding two batches of one ~300 KB record.
fn two_full_partitions(conn: &mut Conn, topic: &str) -> usize {
    conn.create_topic(topic, 2, &[]);
    let value = vec![7u8; BIG];
    for partition in 0..2 {
        for _ in 0..2 {
            let p = conn.produce(topic, partition, &[&value], &[1]);
            assert_eq!(p.error_code, ErrorCode::NONE);
        }
    }
    let r = fetch(conn, topic, &[(0, 0)], i32::MAX, i32::MAX, (0, -1));
    // One batch: the whole first response's data is two of them.
    record_bytes(&r)[0].1 / 2
}

#[test]
fn only_the_first_batch_of_a_fetch_response_may_exceed_its_limits() {
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    let batch = two_full_partitions(&mut conn, "limits");
    assert!(batch > BIG && batch < BIG + 1_000, "{batch}");
    let both = [(0, 0), (1, 0)];

    // Response limit of 500 KB: partition 0 gives one batch, and partition 1's first batch
    // would take the response past the limit, so it gives nothing.
    let r = fetch(&mut conn, "limits", &both, 500_000, 1 << 20, (0, -1));
    assert_eq!(record_bytes(&r), vec![(0, batch), (1, 0)]);

    // A batch larger than the response limit still comes out when it is the first (progress),
    // and then nothing else does.
    let r = fetch(&mut conn, "limits", &both, 1_000, 1 << 20, (0, -1));
    assert_eq!(record_bytes(&r), vec![(0, batch), (1, 0)]);

    // Per-partition limits hold likewise: only the first partition's first batch may exceed it.
    let r = fetch(&mut conn, "limits", &both, i32::MAX, 400_000, (0, -1));
    assert_eq!(record_bytes(&r), vec![(0, batch), (1, batch)]);
    let r = fetch(&mut conn, "limits", &both, i32::MAX, 1_000, (0, -1));
    assert_eq!(record_bytes(&r), vec![(0, batch), (1, 0)]);

    // Room for everything: everything.
    let r = fetch(&mut conn, "limits", &both, i32::MAX, i32::MAX, (0, -1));
    assert_eq!(record_bytes(&r), vec![(0, 2 * batch), (1, 2 * batch)]);
}

#[test]
fn a_fetch_session_reads_the_partitions_that_got_data_last() {
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    let batch = two_full_partitions(&mut conn, "fair");
    let both = [(0, 0), (1, 0)];
    // A new session: partition 0 first, as listed; it takes the response.
    let r = fetch(&mut conn, "fair", &both, 500_000, 1 << 20, (0, 0));
    assert_eq!(record_bytes(&r), vec![(0, batch), (1, 0)]);
    let session = r.session_id;
    assert!(session > 0);
    // Next incremental fetch: partition 0 moved to the end, so partition 1 is served first
    // (the answer lists only partitions with something new).
    let r = fetch(&mut conn, "fair", &[(0, 1)], 500_000, 1 << 20, (session, 1));
    assert_eq!(record_bytes(&r), vec![(1, batch)]);
}

fn list_offset(conn: &mut Conn, topic: &str, timestamp: i64) -> ListOffsetsPartitionResponse {
    list_offset_at(conn, None, topic, timestamp)
}

/// [`list_offset`] at ListOffsets `version` (`None`: the client's own).
fn list_offset_at(
    conn: &mut Conn,
    version: Option<i16>,
    topic: &str,
    timestamp: i64,
) -> ListOffsetsPartitionResponse {
    let request = Request::ListOffsets(ListOffsetsRequest {
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp,
                ..ListOffsetsPartition::default()
            }],
        }],
        ..ListOffsetsRequest::default()
    });
    let response = match version {
        Some(v) => conn.call_at(request, v),
        None => conn.call(request),
    };
    let Response::ListOffsets(mut r) = response else {
        panic!("not a ListOffsets response: {response:?}");
    };
    r.topics.remove(0).partitions.remove(0)
}

#[test]
fn list_offsets_max_timestamp_is_the_record_holding_it() {
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    conn.create_topic("ts", 1, &[]);
    // Empty partition: -1/-1, as Kafka.
    let empty = list_offset(&mut conn, "ts", -3);
    assert_eq!(
        (empty.error_code, empty.offset, empty.timestamp),
        (ErrorCode::NONE, -1, -1)
    );

    let v: &[u8] = b"v";
    conn.produce("ts", 0, &[v, v, v], &[1_000, 5_000, 2_000]);
    conn.produce("ts", 0, &[v, v], &[3_000, 4_000]);
    // Offset 1 holds 5000 — not offset 2, the end of its batch (KAFKA-16310).
    let max = list_offset(&mut conn, "ts", -3);
    assert_eq!(
        (max.error_code, max.offset, max.timestamp),
        (ErrorCode::NONE, 1, 5_000)
    );

    // The neighbours: earliest, latest, earliest-local (no tiered storage: the log start) and
    // latest-tiered (none: -1).
    assert_eq!(list_offset(&mut conn, "ts", -2).offset, 0);
    assert_eq!(list_offset(&mut conn, "ts", -1).offset, 5);
    let local = list_offset(&mut conn, "ts", -4);
    assert_eq!((local.error_code, local.offset), (ErrorCode::NONE, 0));
    let tiered = list_offset(&mut conn, "ts", -5);
    assert_eq!(
        (tiered.error_code, tiered.offset, tiered.timestamp),
        (ErrorCode::NONE, -1, -1)
    );
    // The versions that brought them (v8: KIP-405, v9: KIP-1005, v10: KIP-1075's timeout)
    // answer the same.
    for v in 8..=10 {
        let local = list_offset_at(&mut conn, Some(v), "ts", -4);
        assert_eq!(
            (local.error_code, local.offset),
            (ErrorCode::NONE, 0),
            "v{v}"
        );
        let tiered = list_offset_at(&mut conn, Some(v), "ts", -5);
        assert_eq!(
            (tiered.error_code, tiered.offset),
            (ErrorCode::NONE, -1),
            "v{v}"
        );
        let max = list_offset_at(&mut conn, Some(v), "ts", -3);
        assert_eq!((max.offset, max.timestamp), (1, 5_000), "v{v}");
    }

    // LogAppendTime: every record of the last batch carries its append time; the first wins.
    conn.create_topic("lat", 1, &[("message.timestamp.type", "LogAppendTime")]);
    let first = conn.produce("lat", 0, &[v, v], &[1, 2]);
    // Two appends within one millisecond share their append time, and then the first batch
    // holds the maximum: make the second one later.
    while crate::common::now_ms() <= first.log_append_time_ms {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let p = conn.produce("lat", 0, &[v, v, v], &[1, 2, 3]);
    assert_eq!(p.error_code, ErrorCode::NONE);
    let max = list_offset(&mut conn, "lat", -3);
    assert!(max.timestamp >= p.log_append_time_ms, "{max:?} {p:?}");
    assert!(max.offset == 0 || max.offset == 2, "{max:?}");
    assert_eq!(
        max.timestamp == p.log_append_time_ms,
        max.offset == 2,
        "{max:?} {p:?}"
    );
}

#[test]
fn authorized_operations_without_an_authorizer_are_everything_kafka_lists() {
    const TOPIC_OPS: i32 = 0b1101_1111_1000;
    const GROUP_OPS: i32 = 0b1101_0100_1000;
    const CLUSTER_OPS: i32 = 0b1_1111_1010_0000;
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    conn.create_topic("ops", 1, &[]);

    let metadata = |conn: &mut Conn, include: bool| {
        let response = conn.call(Request::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some("ops".into()),
                ..MetadataRequestTopic::default()
            }]),
            allow_auto_topic_creation: false,
            include_topic_authorized_operations: include,
            ..MetadataRequest::default()
        }));
        let Response::Metadata(r) = response else {
            panic!("not a Metadata response: {response:?}");
        };
        r.topics[0].topic_authorized_operations
    };
    assert_eq!(metadata(&mut conn, true), TOPIC_OPS);
    assert_eq!(metadata(&mut conn, false), AUTHORIZED_OPERATIONS_OMITTED);

    let cluster = |conn: &mut Conn, include: bool| {
        let response = conn.call(Request::DescribeCluster(DescribeClusterRequest {
            include_cluster_authorized_operations: include,
            ..DescribeClusterRequest::default()
        }));
        let Response::DescribeCluster(r) = response else {
            panic!("not a DescribeCluster response: {response:?}");
        };
        r.cluster_authorized_operations
    };
    assert_eq!(cluster(&mut conn, true), CLUSTER_OPS);
    assert_eq!(cluster(&mut conn, false), AUTHORIZED_OPERATIONS_OMITTED);

    // A group that exists (from a standalone commit): an unknown one is GROUP_ID_NOT_FOUND at
    // DescribeGroups v6, with no operations, as in Kafka 4.
    let committed = conn.call(Request::OffsetCommit(weir_protocol::OffsetCommitRequest {
        group_id: "ops-group".into(),
        topics: vec![weir_protocol::OffsetCommitTopic {
            name: "ops".into(),
            partitions: vec![weir_protocol::OffsetCommitPartition {
                partition_index: 0,
                committed_offset: 0,
                ..Default::default()
            }],
        }],
        ..Default::default()
    }));
    assert!(matches!(committed, Response::OffsetCommit(_)));
    let groups = |conn: &mut Conn, include: bool| {
        let response = conn.call(Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec!["ops-group".into()],
            include_authorized_operations: include,
        }));
        let Response::DescribeGroups(r) = response else {
            panic!("not a DescribeGroups response: {response:?}");
        };
        r.groups[0].authorized_operations
    };
    assert_eq!(groups(&mut conn, true), GROUP_OPS);
    assert_eq!(groups(&mut conn, false), AUTHORIZED_OPERATIONS_OMITTED);
}

mod configs {
    use super::*;
    use weir_protocol::{
        AlterConfigsResourceResponse, DescribeConfigsEntry, DescribeConfigsRequest,
        DescribeConfigsResource, DescribeConfigsResult, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResource, IncrementalAlterableConfig,
    };

    const BROKER: i8 = 4;
    const GROUP: i8 = 32;
    const SET: i8 = 0;
    const DELETE: i8 = 1;

    fn alter(
        conn: &mut Conn,
        resource_type: i8,
        name: &str,
        ops: &[(&str, i8, Option<&str>)],
    ) -> AlterConfigsResourceResponse {
        let response = conn.call(Request::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest {
                resources: vec![IncrementalAlterConfigsResource {
                    resource_type,
                    resource_name: name.into(),
                    configs: ops
                        .iter()
                        .map(|(n, op, v)| IncrementalAlterableConfig {
                            name: n.to_string(),
                            config_operation: *op,
                            value: v.map(String::from),
                        })
                        .collect(),
                }],
                validate_only: false,
            },
        ));
        let Response::IncrementalAlterConfigs(mut r) = response else {
            panic!("not an IncrementalAlterConfigs response: {response:?}");
        };
        r.responses.remove(0)
    }

    fn describe(conn: &mut Conn, resource_type: i8, name: &str) -> DescribeConfigsResult {
        let response = conn.call(Request::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type,
                resource_name: name.into(),
                configuration_keys: None,
            }],
            include_synonyms: true,
            include_documentation: false,
        }));
        let Response::DescribeConfigs(mut r) = response else {
            panic!("not a DescribeConfigs response: {response:?}");
        };
        r.results.remove(0)
    }

    fn find<'a>(r: &'a DescribeConfigsResult, name: &str) -> &'a DescribeConfigsEntry {
        r.configs
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {r:?}"))
    }

    fn value_and_source(r: &DescribeConfigsResult, name: &str) -> (Option<String>, i8) {
        let e = find(r, name);
        (e.value.clone(), e.config_source)
    }

    #[test]
    fn broker_and_group_configs_are_validated_stored_and_survive_a_restart() {
        let mut b = Broker::start(&[]);
        let mut conn = Conn::connect(b.kafka);

        // Defaults as Kafka reports them; read-only configs say so.
        let d = describe(&mut conn, BROKER, "0");
        assert_eq!(d.error_code, ErrorCode::NONE, "{d:?}");
        assert_eq!(
            value_and_source(&d, "log.retention.bytes"),
            (Some("-1".into()), 5)
        );
        assert!(!find(&d, "log.retention.bytes").read_only);
        assert!(find(&d, "broker.id").read_only);

        // Dynamic broker configs, per broker and cluster-wide.
        let ok = alter(
            &mut conn,
            BROKER,
            "0",
            &[("log.retention.bytes", SET, Some("1000"))],
        );
        assert_eq!(ok.error_code, ErrorCode::NONE, "{ok:?}");
        let ok = alter(&mut conn, BROKER, "", &[("num.io.threads", SET, Some("4"))]);
        assert_eq!(ok.error_code, ErrorCode::NONE, "{ok:?}");
        // Read-only, invalid values, another broker's id: INVALID_REQUEST, as Kafka.
        for (name, ops) in [
            ("0", vec![("broker.id", SET, Some("7"))]),
            ("0", vec![("log.cleanup.policy", SET, Some("shred"))]),
            ("0", vec![("num.io.threads", SET, Some("zero"))]),
            ("5", vec![("log.retention.bytes", SET, Some("1"))]),
        ] {
            let r = alter(&mut conn, BROKER, name, &ops);
            assert_eq!(r.error_code, ErrorCode::INVALID_REQUEST, "{ops:?}: {r:?}");
        }

        // Group configs (Kafka 4.x), for a group that does not exist yet.
        let g = describe(&mut conn, GROUP, "billing");
        assert_eq!(g.error_code, ErrorCode::NONE, "{g:?}");
        assert_eq!(
            value_and_source(&g, "consumer.session.timeout.ms"),
            (Some("45000".into()), 5)
        );
        assert_eq!(
            value_and_source(&g, "share.auto.offset.reset"),
            (Some("latest".into()), 5)
        );
        let ok = alter(
            &mut conn,
            GROUP,
            "billing",
            &[
                ("consumer.session.timeout.ms", SET, Some("50000")),
                ("share.auto.offset.reset", SET, Some("earliest")),
                ("share.record.lock.duration.ms", SET, Some("20000")),
            ],
        );
        assert_eq!(ok.error_code, ErrorCode::NONE, "{ok:?}");
        // Unknown names and out-of-range values: INVALID_CONFIG, as Kafka.
        for ops in [
            vec![("consumer.session.timeout.mss", SET, Some("50000"))],
            vec![("consumer.session.timeout.ms", SET, Some("1000"))],
            vec![("share.isolation.level", SET, Some("dirty"))],
        ] {
            let r = alter(&mut conn, GROUP, "billing", &ops);
            assert_eq!(r.error_code, ErrorCode::INVALID_CONFIG, "{ops:?}: {r:?}");
        }
        assert_eq!(
            alter(
                &mut conn,
                GROUP,
                "",
                &[("consumer.session.timeout.ms", SET, Some("50000"))]
            )
            .error_code,
            ErrorCode::INVALID_REQUEST
        );

        // After a restart everything set is still there, with its source.
        drop(conn);
        b.restart();
        let mut conn = Conn::connect(b.kafka);
        let d = describe(&mut conn, BROKER, "0");
        assert_eq!(
            value_and_source(&d, "log.retention.bytes"),
            (Some("1000".into()), 2)
        );
        assert_eq!(
            value_and_source(&d, "num.io.threads"),
            (Some("4".into()), 3)
        );
        let synonyms: Vec<i8> = find(&d, "log.retention.bytes")
            .synonyms
            .iter()
            .map(|s| s.source)
            .collect();
        assert_eq!(synonyms, vec![2, 5]);
        let cluster = describe(&mut conn, BROKER, "");
        assert_eq!(
            cluster
                .configs
                .iter()
                .map(|e| (e.name.as_str(), e.value.as_deref(), e.config_source))
                .collect::<Vec<_>>(),
            // min.insync.replicas: written at the first start, as a Kafka 4.1+ cluster does.
            vec![
                ("min.insync.replicas", Some("1"), 3),
                ("num.io.threads", Some("4"), 3)
            ]
        );
        let g = describe(&mut conn, GROUP, "billing");
        assert_eq!(
            value_and_source(&g, "consumer.session.timeout.ms"),
            (Some("50000".into()), 8)
        );
        assert_eq!(
            value_and_source(&g, "share.auto.offset.reset"),
            (Some("earliest".into()), 8)
        );
        assert_eq!(
            value_and_source(&g, "share.session.timeout.ms"),
            (Some("45000".into()), 5)
        );

        // DELETE reverts to the default.
        let ok = alter(
            &mut conn,
            GROUP,
            "billing",
            &[("share.auto.offset.reset", DELETE, None)],
        );
        assert_eq!(ok.error_code, ErrorCode::NONE);
        let g = describe(&mut conn, GROUP, "billing");
        assert_eq!(
            value_and_source(&g, "share.auto.offset.reset"),
            (Some("latest".into()), 5)
        );
    }
}

#[test]
fn an_idle_topic_whose_records_all_expired_is_emptied_active_segment_included() {
    let b = crate::common::inproc::InProcess::start_temp(|_| {});
    let mut conn = Conn::connect(b.addr);
    conn.create_topic("idle", 1, &[("retention.ms", "60000")]);
    let v: &[u8] = b"v";
    let now_ms = crate::common::now_ms();
    let p = conn.produce("idle", 0, &[v, v, v], &[now_ms, now_ms, now_ms]);
    assert_eq!(p.error_code, ErrorCode::NONE);
    // Within retention: nothing goes.
    b.broker.topics.enforce_retention(now_ms + 1_000);
    assert_eq!(list_offset(&mut conn, "idle", -2).offset, 0);
    // Past it, with no newer segment: as Kafka, the log rolls and the expired active segment
    // goes too; earliest meets latest and the old records are out of range.
    b.broker.topics.enforce_retention(now_ms + 120_000);
    assert_eq!(list_offset(&mut conn, "idle", -2).offset, 3);
    assert_eq!(list_offset(&mut conn, "idle", -1).offset, 3);
    let r = conn.call(Request::Fetch(FetchRequest {
        max_wait_ms: 0,
        topics: vec![FetchTopic {
            name: "idle".into(),
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..FetchPartition::default()
            }],
        }],
        ..FetchRequest::default()
    }));
    let Response::Fetch(r) = r else {
        panic!("not a fetch response: {r:?}");
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::OFFSET_OUT_OF_RANGE
    );
    // The partition takes and serves new records after it.
    let p = conn.produce("idle", 0, &[v], &[now_ms]);
    assert_eq!((p.error_code, p.base_offset), (ErrorCode::NONE, 3));
    let r = fetch(&mut conn, "idle", &[(0, 3)], 1 << 20, 1 << 20, (0, -1));
    assert!(!r.topics[0].partitions[0].records.is_empty());
}

/// Metadata for a topic that does not exist yet, with auto-creation allowed: as Kafka, the first
/// answer says the topic is being created (`LEADER_NOT_AVAILABLE`, no partitions, no id), the
/// next one shows it with its leader. Without auto-creation it stays unknown.
#[test]
fn the_metadata_request_that_auto_creates_a_topic_learns_only_that_it_is_coming() {
    let b = Broker::start(&["--default-partitions", "3"]);
    let mut conn = Conn::connect(b.kafka);
    let metadata = |conn: &mut Conn, name: &str, allow: bool| {
        let response = conn.call(Request::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(name.into()),
                ..MetadataRequestTopic::default()
            }]),
            allow_auto_topic_creation: allow,
            ..MetadataRequest::default()
        }));
        let Response::Metadata(mut r) = response else {
            panic!("not a Metadata response: {response:?}");
        };
        assert_eq!(r.topics.len(), 1, "{r:?}");
        r.topics.remove(0)
    };

    let unknown = metadata(&mut conn, "later", false);
    assert_eq!(unknown.error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);

    let first = metadata(&mut conn, "later", true);
    assert_eq!(
        first.error_code,
        ErrorCode::LEADER_NOT_AVAILABLE,
        "{first:?}"
    );
    assert_eq!(first.name.as_deref(), Some("later"));
    assert!(first.partitions.is_empty(), "{first:?}");
    assert_eq!(first.topic_id, [0; 16]);

    let next = metadata(&mut conn, "later", false);
    assert_eq!(next.error_code, ErrorCode::NONE, "{next:?}");
    assert_ne!(next.topic_id, [0; 16]);
    assert_eq!(next.partitions.len(), 3, "{next:?}");
    assert!(
        next.partitions
            .iter()
            .all(|p| p.error_code == ErrorCode::NONE && p.leader_id >= 0),
        "{next:?}"
    );
}

/// `--group-min-session-timeout-ms` (Kafka's group.min.session.timeout.ms): a classic member
/// asking for less is refused `INVALID_SESSION_TIMEOUT`; lowered, the same join is taken.
#[test]
fn the_smallest_session_timeout_of_classic_members_is_configurable() {
    let join = |conn: &mut Conn| {
        let response = conn.call(Request::JoinGroup(weir_protocol::JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 3_000,
            rebalance_timeout_ms: 3_000,
            member_id: String::new(),
            protocol_type: "consumer".into(),
            protocols: vec![weir_protocol::JoinGroupProtocol {
                name: "range".into(),
                metadata: bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            }],
            ..Default::default()
        }));
        let Response::JoinGroup(r) = response else {
            panic!("not a JoinGroup response: {response:?}");
        };
        r.error_code
    };
    let default = Broker::start(&[]);
    assert_eq!(
        join(&mut Conn::connect(default.kafka)),
        ErrorCode::INVALID_SESSION_TIMEOUT
    );
    let lowered = Broker::start(&["--group-min-session-timeout-ms", "1000"]);
    // The first join of a dynamic member asks it to come back with its id (KIP-394).
    assert_eq!(
        join(&mut Conn::connect(lowered.kafka)),
        ErrorCode::MEMBER_ID_REQUIRED
    );
}

fn describe_partitions(
    conn: &mut Conn,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> weir_protocol::DescribeTopicPartitionsResponse {
    let response = conn.call(Request::DescribeTopicPartitions(
        weir_protocol::DescribeTopicPartitionsRequest {
            topics: topics
                .iter()
                .map(|t| weir_protocol::DescribeTopicPartitionsTopic {
                    name: t.to_string(),
                })
                .collect(),
            response_partition_limit: limit,
            cursor: cursor.map(|(topic_name, partition_index)| {
                weir_protocol::DescribeTopicPartitionsCursor {
                    topic_name: topic_name.into(),
                    partition_index,
                }
            }),
        },
    ));
    let Response::DescribeTopicPartitions(r) = response else {
        panic!("not a DescribeTopicPartitions response: {response:?}");
    };
    r
}

/// Partition indexes by topic name, in response order.
type TopicPartitionList = Vec<(String, Vec<i32>)>;

/// `(topic, partitions)` of a DescribeTopicPartitions page, and its next cursor.
fn page(
    r: &weir_protocol::DescribeTopicPartitionsResponse,
) -> (TopicPartitionList, Option<(String, i32)>) {
    (
        r.topics
            .iter()
            .map(|t| {
                (
                    t.name.clone().unwrap_or_default(),
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect(),
        r.next_cursor
            .as_ref()
            .map(|c| (c.topic_name.clone(), c.partition_index)),
    )
}

/// DescribeTopicPartitions (KIP-966, what Kafka's admin client's describeTopics uses): topics in
/// name order with their leaders, cut at the partition limit with a cursor to the next page;
/// an unknown topic named is `UNKNOWN_TOPIC_OR_PARTITION`.
#[test]
fn describe_topic_partitions_pages_through_topics_in_name_order() {
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    conn.create_topic("b", 2, &[]);
    conn.create_topic("a", 3, &[]);
    conn.create_topic("c", 1, &[]);
    let owned = |v: &[(&str, &[i32])]| -> TopicPartitionList {
        v.iter()
            .map(|(t, ps)| (t.to_string(), ps.to_vec()))
            .collect()
    };

    // Every topic, internal ones included, in name order.
    let all = describe_partitions(&mut conn, &[], 2000, None);
    let names: Vec<String> = page(&all).0.into_iter().map(|(t, _)| t).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.iter().any(|n| n == "__consumer_offsets"), "{names:?}");
    assert_eq!(page(&all).1, None);

    let abc = ["c", "a", "b"];
    let first = describe_partitions(&mut conn, &abc, 4, None);
    assert_eq!(
        page(&first),
        (
            owned(&[("a", &[0, 1, 2]), ("b", &[0])]),
            Some(("b".into(), 1))
        )
    );
    let a = &first.topics[0];
    assert_eq!(a.error_code, ErrorCode::NONE);
    assert_ne!(a.topic_id, [0; 16]);
    assert!(a.partitions.iter().all(|p| p.leader_id >= 0
        && p.error_code == ErrorCode::NONE
        && p.replica_nodes == p.isr_nodes
        && !p.replica_nodes.is_empty()));
    let second = describe_partitions(&mut conn, &abc, 4, Some(("b", 1)));
    assert_eq!(page(&second), (owned(&[("b", &[1]), ("c", &[0])]), None));
    // A page ending with a whole topic points at the next one.
    let exact = describe_partitions(&mut conn, &abc, 3, None);
    assert_eq!(
        page(&exact),
        (owned(&[("a", &[0, 1, 2])]), Some(("b".into(), 0)))
    );

    let named = describe_partitions(&mut conn, &["c", "nope"], 2000, None);
    assert_eq!(page(&named).0, owned(&[("c", &[0]), ("nope", &[])]));
    assert_eq!(
        named.topics[1].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
}

/// DescribeLogDirs and AlterReplicaLogDirs (KIP-113): the data directory is the one log
/// directory, with every replica's size and the file system's size; moving a replica to it is
/// a no-op, to anywhere else `LOG_DIR_NOT_FOUND`.
#[test]
fn the_data_directory_is_the_one_log_directory() {
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    conn.create_topic("sized", 2, &[]);
    let produced = conn.produce("sized", 1, &[&[7u8; 1000]], &[1]);
    assert_eq!(produced.error_code, ErrorCode::NONE);
    let describe = |conn: &mut Conn, topics| {
        let response = conn.call(Request::DescribeLogDirs(
            weir_protocol::DescribeLogDirsRequest { topics },
        ));
        let Response::DescribeLogDirs(r) = response else {
            panic!("not a DescribeLogDirs response: {response:?}");
        };
        r
    };
    let all = describe(&mut conn, None);
    assert_eq!(all.error_code, ErrorCode::NONE);
    assert_eq!(all.results.len(), 1);
    let dir = &all.results[0];
    // The storage engine keeps the logs in the data directory's `logs`.
    let data_dir = std::fs::canonicalize(b.data_dir().join("logs")).expect("logs dir");
    assert_eq!(dir.log_dir, data_dir.display().to_string());
    assert!(dir.total_bytes > 0 && dir.usable_bytes >= 0 && dir.usable_bytes <= dir.total_bytes);
    let sized = dir
        .topics
        .iter()
        .find(|t| t.name == "sized")
        .expect("the topic's replicas");
    let sizes: Vec<(i32, i64)> = sized
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.partition_size))
        .collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(sizes.contains(&(0, 0)), "{sizes:?}");
    assert!(sizes.iter().any(|&(i, s)| i == 1 && s > 1000), "{sizes:?}");
    assert!(sized.partitions.iter().all(|p| p.offset_lag == 0));

    let one = describe(
        &mut conn,
        Some(vec![weir_protocol::DescribeLogDirsRequestTopic {
            topic: "sized".into(),
            partitions: vec![1],
        }]),
    );
    let topics: TopicPartitionList = one.results[0]
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    assert_eq!(topics, vec![("sized".to_string(), vec![1])]);

    let alter = |conn: &mut Conn, path: &str, partitions: Vec<i32>| {
        let response = conn.call(Request::AlterReplicaLogDirs(
            weir_protocol::AlterReplicaLogDirsRequest {
                dirs: vec![weir_protocol::AlterReplicaLogDir {
                    path: path.into(),
                    topics: vec![weir_protocol::AlterReplicaLogDirTopic {
                        name: "sized".into(),
                        partitions,
                    }],
                }],
            },
        ));
        let Response::AlterReplicaLogDirs(r) = response else {
            panic!("not an AlterReplicaLogDirs response: {response:?}");
        };
        r.results[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        alter(&mut conn, &dir.log_dir, vec![0, 9]),
        vec![ErrorCode::NONE, ErrorCode::REPLICA_NOT_AVAILABLE]
    );
    assert_eq!(
        alter(&mut conn, "/elsewhere", vec![0]),
        vec![ErrorCode::LOG_DIR_NOT_FOUND]
    );
}

/// ListConfigResources (KIP-1142): the config resources of the asked types, all of them when
/// none is asked; v0 (KIP-714's ListClientMetricsResources) lists client metrics only, which
/// Weir has none of.
#[test]
fn list_config_resources_names_topics_brokers_and_groups() {
    let b = Broker::start(&["--node-id", "7"]);
    let mut conn = Conn::connect(b.kafka);
    conn.create_topic("listed", 1, &[]);
    let committed = conn.call(Request::OffsetCommit(weir_protocol::OffsetCommitRequest {
        group_id: "listed-group".into(),
        topics: vec![weir_protocol::OffsetCommitTopic {
            name: "listed".into(),
            partitions: vec![weir_protocol::OffsetCommitPartition {
                partition_index: 0,
                committed_offset: 0,
                ..Default::default()
            }],
        }],
        ..Default::default()
    }));
    assert!(
        matches!(committed, Response::OffsetCommit(_)),
        "{committed:?}"
    );
    let list = |conn: &mut Conn, types: Vec<i8>, version: i16| {
        let response = conn.call_at(
            Request::ListConfigResources(weir_protocol::ListConfigResourcesRequest {
                resource_types: types,
            }),
            version,
        );
        let Response::ListConfigResources(r) = response else {
            panic!("not a ListConfigResources response: {response:?}");
        };
        assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
        let mut out: Vec<(i8, String)> = r
            .config_resources
            .into_iter()
            .map(|c| (c.resource_type, c.resource_name))
            .collect();
        out.sort();
        out
    };
    let all = list(&mut conn, Vec::new(), 1);
    for expected in [(2, "listed"), (4, "7"), (8, "7"), (32, "listed-group")] {
        assert!(
            all.contains(&(expected.0, expected.1.to_string())),
            "{expected:?} not in {all:?}"
        );
    }
    assert_eq!(list(&mut conn, vec![4], 1), vec![(4, "7".to_string())]);
    assert!(list(&mut conn, Vec::new(), 0).is_empty());
}

/// The topic id Metadata gives for `name`.
fn topic_id_of(conn: &mut Conn, name: &str) -> [u8; 16] {
    let response = conn.call(Request::Metadata(MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(name.into()),
            topic_id: [0; 16],
        }]),
        allow_auto_topic_creation: false,
        ..MetadataRequest::default()
    }));
    let Response::Metadata(r) = response else {
        panic!("not a Metadata response: {response:?}");
    };
    assert_ne!(r.topics[0].topic_id, [0; 16], "{r:?}");
    r.topics[0].topic_id
}

/// A Fetch of partition 0 of the topic with `topic_id`, by id, at `version`.
fn fetch_by_id(
    conn: &mut Conn,
    version: i16,
    topic_id: [u8; 16],
    session: (i32, i32),
) -> FetchResponse {
    let response = conn.call_at(
        Request::Fetch(FetchRequest {
            max_wait_ms: 0,
            session_id: session.0,
            session_epoch: session.1,
            topics: vec![FetchTopic {
                topic_id,
                partitions: vec![FetchPartition {
                    partition_max_bytes: 1 << 20,
                    ..FetchPartition::default()
                }],
                ..FetchTopic::default()
            }],
            ..FetchRequest::default()
        }),
        version,
    );
    let Response::Fetch(r) = response else {
        panic!("not a fetch response: {response:?}");
    };
    r
}

/// KIP-516: Produce v13 and Fetch v13-17 name topics by id. The answer names them by id too,
/// an id the broker does not know is UNKNOWN_TOPIC_ID (also once the topic was deleted and
/// created again under its name), and a fetch session stays with the naming it was opened with.
#[test]
fn produce_and_fetch_name_topics_by_id_from_v13() {
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    conn.create_topic("by-id", 1, &[]);
    let id = topic_id_of(&mut conn, "by-id");
    let unknown = [0xab; 16];

    let produce = |conn: &mut Conn, topic_id: [u8; 16]| {
        let response = conn.call_at(
            Request::Produce(ProduceRequest {
                acks: -1,
                timeout_ms: 30_000,
                topics: vec![ProduceTopic {
                    topic_id,
                    partitions: vec![ProducePartition {
                        index: 0,
                        records: Some(producer_batch(-1, -1, -1, 3, false).into()),
                    }],
                    ..ProduceTopic::default()
                }],
                uses_topic_ids: true,
                ..ProduceRequest::default()
            }),
            13,
        );
        let Response::Produce(mut r) = response else {
            panic!("not a Produce response: {response:?}");
        };
        assert_eq!(r.topics.len(), 1, "{r:?}");
        assert_eq!(r.topics[0].topic_id, topic_id, "answered by id: {r:?}");
        r.topics.remove(0).partitions.remove(0)
    };
    let first = produce(&mut conn, id);
    assert_eq!(
        (first.error_code, first.base_offset),
        (ErrorCode::NONE, 0),
        "{first:?}"
    );
    let nowhere = produce(&mut conn, unknown);
    assert_eq!(
        nowhere.error_code,
        ErrorCode::UNKNOWN_TOPIC_ID,
        "{nowhere:?}"
    );
    // What v13 wrote is what a fetch by name reads.
    let by_name = fetch(&mut conn, "by-id", &[(0, 0)], i32::MAX, i32::MAX, (0, -1));
    assert!(record_bytes(&by_name)[0].1 > 0, "{by_name:?}");

    for v in 13..=17 {
        let r = fetch_by_id(&mut conn, v, id, (0, -1));
        assert_eq!(r.error_code, ErrorCode::NONE, "v{v}: {r:?}");
        assert_eq!(r.topics.len(), 1, "v{v}: {r:?}");
        assert_eq!(r.topics[0].topic_id, id, "v{v}");
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.high_watermark),
            (ErrorCode::NONE, 3),
            "v{v}"
        );
        assert_eq!(p.records.len(), record_bytes(&by_name)[0].1, "v{v}");

        let r = fetch_by_id(&mut conn, v, unknown, (0, -1));
        assert_eq!(r.topics[0].topic_id, unknown, "v{v}");
        assert_eq!(
            r.topics[0].partitions[0].error_code,
            ErrorCode::UNKNOWN_TOPIC_ID,
            "v{v}: {r:?}"
        );
    }

    // A session opened by id: an incremental v12 fetch (by name) is refused, a v17 one is not.
    let opened = fetch_by_id(&mut conn, 17, id, (0, 0));
    assert!(opened.session_id > 0, "{opened:?}");
    let by_name = conn.call(Request::Fetch(FetchRequest {
        session_id: opened.session_id,
        session_epoch: 1,
        ..FetchRequest::default()
    }));
    let Response::Fetch(by_name) = by_name else {
        panic!("not a fetch response: {by_name:?}");
    };
    assert_eq!(
        by_name.error_code,
        ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR,
        "{by_name:?}"
    );
    let next = conn.call_at(
        Request::Fetch(FetchRequest {
            session_id: opened.session_id,
            session_epoch: 1,
            ..FetchRequest::default()
        }),
        17,
    );
    let Response::Fetch(next) = next else {
        panic!("not a fetch response: {next:?}");
    };
    assert_eq!(next.error_code, ErrorCode::NONE, "{next:?}");

    // The same name again is another topic: the old id no longer reads it.
    let deleted = conn.call(Request::DeleteTopics(DeleteTopicsRequest {
        topics: vec![DeleteTopicsTopic {
            name: Some("by-id".into()),
            topic_id: [0; 16],
        }],
        timeout_ms: 30_000,
    }));
    let Response::DeleteTopics(deleted) = deleted else {
        panic!("not a DeleteTopics response: {deleted:?}");
    };
    assert_eq!(
        deleted.responses[0].error_code,
        ErrorCode::NONE,
        "{deleted:?}"
    );
    conn.create_topic("by-id", 1, &[]);
    let again = topic_id_of(&mut conn, "by-id");
    assert_ne!(again, id);
    let old = fetch_by_id(&mut conn, 17, id, (0, -1));
    assert_eq!(
        old.topics[0].partitions[0].error_code,
        ErrorCode::UNKNOWN_TOPIC_ID,
        "{old:?}"
    );
    let new = fetch_by_id(&mut conn, 17, again, (0, -1));
    assert_eq!(
        new.topics[0].partitions[0].error_code,
        ErrorCode::NONE,
        "{new:?}"
    );
    assert_eq!(new.topics[0].partitions[0].high_watermark, 0, "{new:?}");
}

/// DescribeQuorum on a single node: the node is the metadata quorum's leader and only voter
/// (Weir has no KRaft quorum; it describes who holds the metadata), at every version; any other
/// partition is UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers.
#[test]
fn describe_quorum_names_the_node_holding_the_metadata() {
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    let Response::DescribeCluster(cluster) =
        conn.call(Request::DescribeCluster(DescribeClusterRequest::default()))
    else {
        panic!("no DescribeCluster response");
    };
    let quorum = |topic: &str, partition: i32| {
        Request::DescribeQuorum(DescribeQuorumRequest {
            topics: vec![DescribeQuorumTopic {
                topic_name: topic.into(),
                partitions: vec![DescribeQuorumPartition {
                    partition_index: partition,
                }],
            }],
        })
    };
    for v in 0..=2 {
        let Response::DescribeQuorum(r) = conn.call_at(quorum("__cluster_metadata", 0), v) else {
            panic!("no DescribeQuorum response");
        };
        assert_eq!(r.error_code, ErrorCode::NONE, "v{v}: {r:?}");
        assert_eq!(r.topics.len(), 1, "v{v}: {r:?}");
        assert_eq!(r.topics[0].topic_name, "__cluster_metadata");
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.partition_index, p.error_code),
            (0, ErrorCode::NONE),
            "v{v}"
        );
        assert_eq!(p.leader_id, cluster.controller_id, "v{v}: {p:?}");
        assert!(p.leader_epoch >= 0 && p.high_watermark >= 0, "v{v}: {p:?}");
        let voters: Vec<i32> = p.current_voters.iter().map(|r| r.replica_id).collect();
        assert_eq!(voters, vec![cluster.controller_id], "v{v}: {p:?}");
        assert!(p.observers.is_empty(), "v{v}: {p:?}");

        for (topic, partition) in [("__cluster_metadata", 1), ("orders", 0)] {
            let Response::DescribeQuorum(r) = conn.call_at(quorum(topic, partition), v) else {
                panic!("no DescribeQuorum response");
            };
            let p = &r.topics[0].partitions[0];
            assert_eq!(
                (p.partition_index, p.error_code),
                (partition, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                "v{v} {topic}-{partition}: {r:?}"
            );
        }
    }
}

/// Metadata v13 (KIP-1102's top-level error, never set) and DescribeCluster v2 (KIP-1073's
/// fenced brokers, of which Weir has none) answer as the versions before them.
#[test]
fn metadata_v13_and_describe_cluster_v2_answer_as_before() {
    let b = Broker::start(&[]);
    let mut conn = Conn::connect(b.kafka);
    conn.create_topic("v13", 2, &[]);
    let Response::Metadata(m) = conn.call_at(
        Request::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some("v13".into()),
                topic_id: [0; 16],
            }]),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        }),
        13,
    ) else {
        panic!("no Metadata response");
    };
    assert_eq!(m.topics.len(), 1, "{m:?}");
    assert_eq!(m.topics[0].error_code, ErrorCode::NONE, "{m:?}");
    assert_eq!(m.topics[0].partitions.len(), 2, "{m:?}");
    assert_eq!(m.brokers.len(), 1, "{m:?}");
    let Response::DescribeCluster(c) = conn.call_at(
        Request::DescribeCluster(DescribeClusterRequest::default()),
        2,
    ) else {
        panic!("no DescribeCluster response");
    };
    assert_eq!(c.error_code, ErrorCode::NONE, "{c:?}");
    assert_eq!(
        c.brokers.iter().map(|b| b.broker_id).collect::<Vec<_>>(),
        vec![m.brokers[0].node_id],
        "{c:?}"
    );
    assert_eq!(c.controller_id, m.controller_id);
}
