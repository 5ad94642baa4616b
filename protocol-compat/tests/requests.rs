//! Request round trips: every served API at every served version is encoded by
//! kafka-protocol (as a client would) and decoded by `weir_protocol::decode_request`.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{crate_versions, decode, sb, versions};
use kafka_protocol::messages::{
    self as m, BrokerId, GroupId, ProducerId, TopicName, TransactionalId,
};
use weir_protocol::{
    api_key as k, BeginQuorumEpochPartition, EndQuorumEpochPartition, Request, VotePartition,
};

fn topic(s: &str) -> TopicName {
    TopicName(sb(s))
}

fn group(s: &str) -> GroupId {
    GroupId(sb(s))
}

const ID: [u8; 16] = [7; 16];

#[test]
fn api_versions() {
    for v in versions(k::API_VERSIONS) {
        let mut r = m::ApiVersionsRequest::default();
        if v >= 3 {
            r.client_software_name = sb("librdkafka");
            r.client_software_version = sb("2.3.0");
        }
        let Request::ApiVersions(got) = decode(k::API_VERSIONS, v, &r) else {
            panic!("wrong variant")
        };
        let expected = if v >= 3 { "librdkafka" } else { "" };
        assert_eq!(got.client_software_name, expected, "v{v}");
        assert_eq!(got.client_software_version.is_empty(), v < 3);
    }
}

#[test]
fn metadata() {
    for v in versions(k::METADATA) {
        let mut t = m::metadata_request::MetadataRequestTopic::default();
        t.name = Some(topic("orders"));
        if v >= 10 {
            t.topic_id = uuid::Uuid::from_bytes(ID);
        }
        let mut r = m::MetadataRequest::default();
        r.topics = Some(vec![t]);
        if v >= 4 {
            r.allow_auto_topic_creation = false;
        }
        if v >= 8 {
            r.include_topic_authorized_operations = true;
        }
        let Request::Metadata(got) = decode(k::METADATA, v, &r) else {
            panic!()
        };
        let topics = got.topics.expect("named topics");
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].name.as_deref(), Some("orders"));
        assert_eq!(topics[0].topic_id, if v >= 10 { ID } else { [0; 16] });
        assert_eq!(got.allow_auto_topic_creation, v < 4, "v{v}");
        assert_eq!(got.include_topic_authorized_operations, v >= 8);

        // "All topics": an empty list at v0, null from v1.
        let mut all = m::MetadataRequest::default();
        all.topics = if v == 0 { Some(vec![]) } else { None };
        let Request::Metadata(got) = decode(k::METADATA, v, &all) else {
            panic!()
        };
        assert_eq!(got.topics, None, "v{v} all topics");

        // From v1 an empty list means "no topics".
        if v >= 1 {
            let mut none = m::MetadataRequest::default();
            none.topics = Some(vec![]);
            let Request::Metadata(got) = decode(k::METADATA, v, &none) else {
                panic!()
            };
            assert_eq!(got.topics, Some(vec![]), "v{v} no topics");
        }
    }
}

/// A syntactically plausible v2 record batch header with `record_count = i32::MAX` and no
/// records: Weir must pass it through untouched (it never decodes records).
fn hostile_batch() -> Bytes {
    let mut b = BytesMut::new();
    b.put_i64(0); // base offset
    b.put_i32(49); // batch length (rest of the header)
    b.put_i32(0); // partition leader epoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc (not checked here)
    b.put_i16(0); // attributes
    b.put_i32(0); // last offset delta
    b.put_i64(0); // first timestamp
    b.put_i64(0); // max timestamp
    b.put_i64(-1); // producer id
    b.put_i16(-1); // producer epoch
    b.put_i32(-1); // base sequence
    b.put_i32(i32::MAX); // record count
    b.freeze()
}

#[test]
fn produce_v3_plus_passes_records_through() {
    let batch = hostile_batch();
    let newest = weir_protocol::supported_range(k::PRODUCE)
        .expect("served")
        .1;
    assert_eq!(newest, 13);
    let id = [7u8; 16];
    for v in 3..=newest {
        let mut p = m::produce_request::PartitionProduceData::default();
        p.index = 2;
        p.records = Some(batch.clone());
        let mut null = m::produce_request::PartitionProduceData::default();
        null.index = 3;
        null.records = None;
        let mut t = m::produce_request::TopicProduceData::default();
        if v >= 13 {
            t.topic_id = uuid::Uuid::from_bytes(id);
        } else {
            t.name = topic("orders");
        }
        t.partition_data = vec![p, null];
        let mut r = m::ProduceRequest::default();
        r.transactional_id = Some(TransactionalId(sb("tx-1")));
        r.acks = -1;
        r.timeout_ms = 1500;
        r.topic_data = vec![t];
        let Request::Produce(got) = decode(k::PRODUCE, v, &r) else {
            panic!()
        };
        assert_eq!(got.transactional_id.as_deref(), Some("tx-1"));
        assert_eq!(got.acks, -1);
        assert_eq!(got.timeout_ms, 1500);
        assert_eq!(got.topics.len(), 1);
        // v13 names topics by id only (KIP-516): the broker looks the name up.
        assert_eq!(got.uses_topic_ids, v >= 13, "v{v}");
        if v >= 13 {
            assert_eq!(
                (got.topics[0].name.as_str(), got.topics[0].topic_id),
                ("", id)
            );
        } else {
            assert_eq!(
                (got.topics[0].name.as_str(), got.topics[0].topic_id),
                ("orders", [0; 16])
            );
        }
        let parts = &got.topics[0].partitions;
        assert_eq!(parts[0].index, 2);
        assert_eq!(parts[0].records.as_ref(), Some(&batch), "v{v}");
        assert_eq!(parts[1].records, None);
        assert!(!got.legacy_formats_allowed);
        // v12 is transaction protocol 2: its batches add their partitions to the transaction.
        assert_eq!(got.adds_partitions_to_txn, v >= 12, "v{v}");
    }
}

/// Produce v0-2 are hand-decoded (kafka-protocol starts at v3), so build them by hand.
#[test]
fn produce_v0_to_v2() {
    let batch = hostile_batch();
    for v in 0..=2i16 {
        let mut f = BytesMut::new();
        f.put_i16(k::PRODUCE);
        f.put_i16(v);
        f.put_i32(99);
        f.put_i16(3);
        f.put_slice(b"old");
        f.put_i16(1); // acks
        f.put_i32(3000); // timeout
        f.put_i32(1); // topics
        f.put_i16(6);
        f.put_slice(b"orders");
        f.put_i32(2); // partitions
        f.put_i32(0);
        f.put_i32(batch.len() as i32);
        f.put_slice(&batch);
        f.put_i32(1);
        f.put_i32(-1); // null records
        let (h, req) = weir_protocol::decode_request(f.freeze()).expect("decode");
        assert_eq!((h.api_version, h.correlation_id), (v, 99));
        assert_eq!(h.client_id.as_deref(), Some("old"));
        let Request::Produce(got) = req else { panic!() };
        assert_eq!(got.transactional_id, None);
        assert_eq!((got.acks, got.timeout_ms), (1, 3000));
        assert_eq!(got.topics[0].name, "orders");
        assert_eq!(got.topics[0].partitions[0].records.as_ref(), Some(&batch));
        assert_eq!(got.topics[0].partitions[1].index, 1);
        assert_eq!(got.topics[0].partitions[1].records, None);
        assert!(got.legacy_formats_allowed, "v{v} may carry message sets");
        assert!(!got.adds_partitions_to_txn);
    }
}

#[test]
fn fetch() {
    for v in crate_versions(k::FETCH) {
        let mut p = m::fetch_request::FetchPartition::default();
        p.partition = 4;
        p.fetch_offset = 1234;
        p.partition_max_bytes = 1 << 20;
        if v >= 5 {
            p.log_start_offset = 10;
        }
        if v >= 9 {
            p.current_leader_epoch = 3;
        }
        if v >= 12 {
            p.last_fetched_epoch = 2;
        }
        let mut t = m::fetch_request::FetchTopic::default();
        if v >= 13 {
            t.topic_id = uuid::Uuid::from_bytes([1; 16]);
        } else {
            t.topic = topic("orders");
        }
        t.partitions = vec![p];
        let mut r = m::FetchRequest::default();
        // A follower's fetch: v15+ (KIP-903) says who fetches in the replica state.
        if v >= 15 {
            r.replica_state.replica_id = BrokerId(3);
            r.replica_state.replica_epoch = 9;
        } else {
            r.replica_id = BrokerId(3);
        }
        r.max_wait_ms = 500;
        r.min_bytes = 1;
        r.max_bytes = 52428800;
        r.isolation_level = 1;
        r.topics = vec![t];
        if v >= 7 {
            r.session_id = 5;
            r.session_epoch = 6;
            let mut f = m::fetch_request::ForgottenTopic::default();
            if v >= 13 {
                f.topic_id = uuid::Uuid::from_bytes([2; 16]);
            } else {
                f.topic = topic("old");
            }
            f.partitions = vec![0, 1];
            r.forgotten_topics_data = vec![f];
        }
        if v >= 11 {
            r.rack_id = sb("rack-a");
        }
        if v >= 12 {
            r.cluster_id = Some(sb("cluster"));
        }
        let Request::Fetch(got) = decode(k::FETCH, v, &r) else {
            panic!()
        };
        assert_eq!(got.replica_id, 3, "v{v}");
        assert_eq!(got.uses_topic_ids, v >= 13, "v{v}");
        assert_eq!(
            (got.max_wait_ms, got.min_bytes, got.max_bytes),
            (500, 1, 52428800)
        );
        assert_eq!(got.isolation_level, 1);
        let gp = &got.topics[0].partitions[0];
        if v >= 13 {
            assert_eq!(
                (got.topics[0].name.as_str(), got.topics[0].topic_id),
                ("", [1; 16])
            );
        } else {
            assert_eq!(
                (got.topics[0].name.as_str(), got.topics[0].topic_id),
                ("orders", [0; 16])
            );
        }
        assert_eq!(
            (gp.partition, gp.fetch_offset, gp.partition_max_bytes),
            (4, 1234, 1 << 20)
        );
        assert_eq!(gp.log_start_offset, if v >= 5 { 10 } else { -1 });
        assert_eq!(gp.current_leader_epoch, if v >= 9 { 3 } else { -1 });
        assert_eq!(gp.last_fetched_epoch, if v >= 12 { 2 } else { -1 });
        if v >= 7 {
            assert_eq!((got.session_id, got.session_epoch), (5, 6));
            if v >= 13 {
                assert_eq!(got.forgotten_topics[0].topic_id, [2; 16]);
            } else {
                assert_eq!(got.forgotten_topics[0].name, "old");
            }
            assert_eq!(got.forgotten_topics[0].partitions, vec![0, 1]);
        } else {
            assert_eq!((got.session_id, got.session_epoch), (0, -1), "sessionless");
            assert!(got.forgotten_topics.is_empty());
        }
        assert_eq!(got.rack_id, if v >= 11 { "rack-a" } else { "" });
        assert_eq!(
            got.cluster_id.as_deref(),
            if v >= 12 { Some("cluster") } else { None }
        );
    }
}

/// Fetch v0-3 (hand-decoded): v3 adds max_bytes; the version decides the record format read.
#[test]
fn fetch_v0_to_v3() {
    for v in 0..=3i16 {
        let mut f = BytesMut::new();
        f.put_i16(k::FETCH);
        f.put_i16(v);
        f.put_i32(7);
        f.put_i16(3);
        f.put_slice(b"old");
        f.put_i32(-1); // replica id
        f.put_i32(500); // max wait
        f.put_i32(1); // min bytes
        if v >= 3 {
            f.put_i32(52428800);
        }
        f.put_i32(1); // topics
        f.put_i16(6);
        f.put_slice(b"orders");
        f.put_i32(1); // partitions
        f.put_i32(4);
        f.put_i64(1234);
        f.put_i32(1 << 20);
        let (h, req) = weir_protocol::decode_request(f.freeze()).expect("decode");
        assert_eq!((h.api_version, h.correlation_id), (v, 7));
        let Request::Fetch(got) = req else { panic!() };
        assert_eq!(
            (got.replica_id, got.max_wait_ms, got.min_bytes),
            (-1, 500, 1)
        );
        assert_eq!(
            got.max_bytes,
            if v >= 3 { 52428800 } else { i32::MAX },
            "no response limit before v3"
        );
        assert_eq!(got.record_magic, if v >= 2 { 1 } else { 0 });
        assert_eq!((got.session_id, got.session_epoch), (0, -1), "sessionless");
        let gp = &got.topics[0].partitions[0];
        assert_eq!(got.topics[0].name, "orders");
        assert_eq!(
            (gp.partition, gp.fetch_offset, gp.partition_max_bytes),
            (4, 1234, 1 << 20)
        );
    }
}

/// ListOffsets v0 (hand-decoded): max_num_offsets is read past.
#[test]
fn list_offsets_v0() {
    let mut f = BytesMut::new();
    f.put_i16(k::LIST_OFFSETS);
    f.put_i16(0);
    f.put_i32(8);
    f.put_i16(-1); // null client id
    f.put_i32(-1); // replica id
    f.put_i32(1); // topics
    f.put_i16(6);
    f.put_slice(b"orders");
    f.put_i32(2); // partitions
    f.put_i32(0);
    f.put_i64(-2);
    f.put_i32(1);
    f.put_i32(1);
    f.put_i64(-1);
    f.put_i32(1);
    let (_, req) = weir_protocol::decode_request(f.freeze()).expect("decode");
    let Request::ListOffsets(got) = req else {
        panic!()
    };
    let ps = &got.topics[0].partitions;
    assert_eq!(
        ps.iter()
            .map(|p| (p.partition_index, p.timestamp))
            .collect::<Vec<_>>(),
        vec![(0, -2), (1, -1)]
    );
}

#[test]
fn list_offsets() {
    for v in crate_versions(k::LIST_OFFSETS) {
        let mut p = m::list_offsets_request::ListOffsetsPartition::default();
        p.partition_index = 1;
        p.timestamp = -2;
        if v >= 4 {
            p.current_leader_epoch = 0;
        }
        let mut t = m::list_offsets_request::ListOffsetsTopic::default();
        t.name = topic("orders");
        t.partitions = vec![p];
        let mut r = m::ListOffsetsRequest::default();
        r.replica_id = BrokerId(-1);
        if v >= 2 {
            r.isolation_level = 1;
        }
        r.topics = vec![t];
        let Request::ListOffsets(got) = decode(k::LIST_OFFSETS, v, &r) else {
            panic!()
        };
        assert_eq!(got.replica_id, -1);
        assert_eq!(got.isolation_level, if v >= 2 { 1 } else { 0 });
        let gp = &got.topics[0].partitions[0];
        assert_eq!((gp.partition_index, gp.timestamp), (1, -2));
        assert_eq!(gp.current_leader_epoch, if v >= 4 { 0 } else { -1 });
    }
}

#[test]
fn offset_commit() {
    for v in crate_versions(k::OFFSET_COMMIT) {
        let mut p = m::offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = 3;
        p.committed_offset = 42;
        p.committed_metadata = Some(sb("meta"));
        if v >= 6 {
            p.committed_leader_epoch = 0;
        }
        let mut t = m::offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = topic("orders");
        t.partitions = vec![p];
        let mut r = m::OffsetCommitRequest::default();
        r.group_id = group("g1");
        r.generation_id_or_member_epoch = 7;
        r.member_id = sb("member-1");
        if v >= 7 {
            r.group_instance_id = Some(sb("inst"));
        }
        if v <= 4 {
            r.retention_time_ms = 60_000;
        }
        r.topics = vec![t];
        let Request::OffsetCommit(got) = decode(k::OFFSET_COMMIT, v, &r) else {
            panic!()
        };
        assert_eq!(got.group_id, "g1");
        assert_eq!(got.generation_id, 7);
        assert_eq!(got.member_id, "member-1");
        assert_eq!(
            got.group_instance_id.as_deref(),
            if v >= 7 { Some("inst") } else { None }
        );
        assert_eq!(got.retention_time_ms, if v <= 4 { 60_000 } else { -1 });
        let gp = &got.topics[0].partitions[0];
        assert_eq!((gp.partition_index, gp.committed_offset), (3, 42));
        assert_eq!(gp.committed_metadata.as_deref(), Some("meta"));
        assert_eq!(gp.committed_leader_epoch, if v >= 6 { 0 } else { -1 });
    }
}

#[test]
fn offset_fetch_single_and_multi_group() {
    for v in crate_versions(k::OFFSET_FETCH) {
        let mut r = m::OffsetFetchRequest::default();
        if v >= 8 {
            let mut t = m::offset_fetch_request::OffsetFetchRequestTopics::default();
            t.name = topic("orders");
            t.partition_indexes = vec![0, 1];
            let mut g1 = m::offset_fetch_request::OffsetFetchRequestGroup::default();
            g1.group_id = group("g1");
            g1.topics = Some(vec![t]);
            if v >= 9 {
                g1.member_id = Some(sb("m"));
                g1.member_epoch = 3;
            }
            let mut g2 = m::offset_fetch_request::OffsetFetchRequestGroup::default();
            g2.group_id = group("g2");
            g2.topics = None;
            r.groups = vec![g1, g2];
        } else {
            let mut t = m::offset_fetch_request::OffsetFetchRequestTopic::default();
            t.name = topic("orders");
            t.partition_indexes = vec![0, 1];
            r.group_id = group("g1");
            r.topics = Some(vec![t]);
        }
        if v >= 7 {
            r.require_stable = true;
        }
        let Request::OffsetFetch(got) = decode(k::OFFSET_FETCH, v, &r) else {
            panic!()
        };
        assert_eq!(got.require_stable, v >= 7);
        assert_eq!(got.groups.len(), if v >= 8 { 2 } else { 1 }, "v{v}");
        let g = &got.groups[0];
        assert_eq!(g.group_id, "g1");
        let topics = g.topics.as_ref().expect("topics");
        assert_eq!(topics[0].name, "orders");
        assert_eq!(topics[0].partition_indexes, vec![0, 1]);
        if v >= 9 {
            assert_eq!((g.member_id.as_deref(), g.member_epoch), (Some("m"), 3));
        } else {
            assert_eq!((g.member_id.as_deref(), g.member_epoch), (None, -1));
        }
        if v >= 8 {
            assert_eq!(got.groups[1].group_id, "g2");
            assert_eq!(got.groups[1].topics, None, "all partitions");
        }
        // v2+ may ask for all partitions with a null topic list.
        if (2..8).contains(&v) {
            let mut all = m::OffsetFetchRequest::default();
            all.group_id = group("g3");
            all.topics = None;
            let Request::OffsetFetch(got) = decode(k::OFFSET_FETCH, v, &all) else {
                panic!()
            };
            assert_eq!(got.groups[0].topics, None);
        }
    }
}

#[test]
fn find_coordinator_single_and_batched() {
    for v in versions(k::FIND_COORDINATOR) {
        let mut r = m::FindCoordinatorRequest::default();
        if v >= 4 {
            r.coordinator_keys = vec![sb("g1"), sb("g2")];
        } else {
            r.key = sb("g1");
        }
        if v >= 1 {
            r.key_type = 1;
        }
        let Request::FindCoordinator(got) = decode(k::FIND_COORDINATOR, v, &r) else {
            panic!()
        };
        assert_eq!(got.key_type, if v >= 1 { 1 } else { 0 });
        let expected: Vec<String> = if v >= 4 {
            vec!["g1".into(), "g2".into()]
        } else {
            vec!["g1".into()]
        };
        assert_eq!(got.keys, expected, "v{v}");
    }
}

#[test]
fn join_group() {
    for v in versions(k::JOIN_GROUP) {
        let mut p = m::join_group_request::JoinGroupRequestProtocol::default();
        p.name = sb("range");
        p.metadata = Bytes::from_static(b"\x00\x01sub");
        let mut r = m::JoinGroupRequest::default();
        r.group_id = group("g1");
        r.session_timeout_ms = 45_000;
        r.rebalance_timeout_ms = 300_000;
        r.member_id = sb("");
        r.protocol_type = sb("consumer");
        r.protocols = vec![p];
        if v >= 5 {
            r.group_instance_id = Some(sb("inst"));
        }
        if v >= 8 {
            r.reason = Some(sb("rejoin"));
        }
        let Request::JoinGroup(got) = decode(k::JOIN_GROUP, v, &r) else {
            panic!()
        };
        assert_eq!(got.group_id, "g1");
        // v0 has no rebalance timeout: the session timeout stands for it, as in Kafka.
        let rebalance_timeout_ms = if v == 0 { 45_000 } else { 300_000 };
        assert_eq!(
            (got.session_timeout_ms, got.rebalance_timeout_ms),
            (45_000, rebalance_timeout_ms)
        );
        assert_eq!(got.member_id, "");
        assert_eq!(got.protocol_type, "consumer");
        assert_eq!(got.protocols[0].name, "range");
        assert_eq!(&got.protocols[0].metadata[..], b"\x00\x01sub");
        assert_eq!(got.group_instance_id.is_some(), v >= 5);
        assert_eq!(got.reason.is_some(), v >= 8);
    }
}

#[test]
fn sync_group_and_heartbeat() {
    for v in versions(k::SYNC_GROUP) {
        let mut a = m::sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = sb("m1");
        a.assignment = Bytes::from_static(b"assign");
        let mut r = m::SyncGroupRequest::default();
        r.group_id = group("g1");
        r.generation_id = 2;
        r.member_id = sb("m1");
        r.assignments = vec![a];
        if v >= 3 {
            r.group_instance_id = Some(sb("i"));
        }
        if v >= 5 {
            r.protocol_type = Some(sb("consumer"));
            r.protocol_name = Some(sb("range"));
        }
        let Request::SyncGroup(got) = decode(k::SYNC_GROUP, v, &r) else {
            panic!()
        };
        assert_eq!((got.group_id.as_str(), got.generation_id), ("g1", 2));
        assert_eq!(got.assignments[0].member_id, "m1");
        assert_eq!(&got.assignments[0].assignment[..], b"assign");
        assert_eq!(got.group_instance_id.is_some(), v >= 3);
        assert_eq!(
            got.protocol_name.as_deref(),
            if v >= 5 { Some("range") } else { None }
        );
    }
    for v in versions(k::HEARTBEAT) {
        let mut r = m::HeartbeatRequest::default();
        r.group_id = group("g1");
        r.generation_id = 9;
        r.member_id = sb("m1");
        if v >= 3 {
            r.group_instance_id = Some(sb("i"));
        }
        let Request::Heartbeat(got) = decode(k::HEARTBEAT, v, &r) else {
            panic!()
        };
        assert_eq!(
            (
                got.group_id.as_str(),
                got.generation_id,
                got.member_id.as_str()
            ),
            ("g1", 9, "m1")
        );
        assert_eq!(got.group_instance_id.is_some(), v >= 3);
    }
}

#[test]
fn leave_group_single_and_members() {
    for v in versions(k::LEAVE_GROUP) {
        let mut r = m::LeaveGroupRequest::default();
        r.group_id = group("g1");
        if v >= 3 {
            let mut a = m::leave_group_request::MemberIdentity::default();
            a.member_id = sb("m1");
            a.group_instance_id = Some(sb("i1"));
            if v >= 5 {
                a.reason = Some(sb("bye"));
            }
            let mut b = m::leave_group_request::MemberIdentity::default();
            b.member_id = sb("m2");
            r.members = vec![a, b];
        } else {
            r.member_id = sb("m1");
        }
        let Request::LeaveGroup(got) = decode(k::LEAVE_GROUP, v, &r) else {
            panic!()
        };
        assert_eq!(got.group_id, "g1");
        assert_eq!(got.members[0].member_id, "m1");
        if v >= 3 {
            assert_eq!(got.members.len(), 2);
            assert_eq!(got.members[0].group_instance_id.as_deref(), Some("i1"));
            assert_eq!(
                got.members[0].reason.as_deref(),
                if v >= 5 { Some("bye") } else { None }
            );
        } else {
            assert_eq!(got.members.len(), 1);
        }
    }
}

#[test]
fn group_admin() {
    for v in versions(k::LIST_GROUPS) {
        let mut r = m::ListGroupsRequest::default();
        if v >= 4 {
            r.states_filter = vec![sb("Stable")];
        }
        if v >= 5 {
            r.types_filter = vec![sb("consumer")];
        }
        let Request::ListGroups(got) = decode(k::LIST_GROUPS, v, &r) else {
            panic!()
        };
        assert_eq!(got.states_filter.len(), usize::from(v >= 4));
        let want_types = if v >= 5 {
            vec!["consumer".to_string()]
        } else {
            vec![]
        };
        assert_eq!(got.types_filter, want_types);
    }
    for v in versions(k::DESCRIBE_GROUPS) {
        let mut r = m::DescribeGroupsRequest::default();
        r.groups = vec![group("g1"), group("g2")];
        if v >= 3 {
            r.include_authorized_operations = true;
        }
        let Request::DescribeGroups(got) = decode(k::DESCRIBE_GROUPS, v, &r) else {
            panic!()
        };
        assert_eq!(got.groups, vec!["g1".to_string(), "g2".to_string()]);
        assert_eq!(got.include_authorized_operations, v >= 3);
    }
    for v in versions(k::DELETE_GROUPS) {
        let mut r = m::DeleteGroupsRequest::default();
        r.groups_names = vec![group("g1")];
        let Request::DeleteGroups(got) = decode(k::DELETE_GROUPS, v, &r) else {
            panic!()
        };
        assert_eq!(got.groups, vec!["g1".to_string()]);
    }
    for v in versions(k::OFFSET_DELETE) {
        let mut p = m::offset_delete_request::OffsetDeleteRequestPartition::default();
        p.partition_index = 5;
        let mut t = m::offset_delete_request::OffsetDeleteRequestTopic::default();
        t.name = topic("orders");
        t.partitions = vec![p];
        let mut r = m::OffsetDeleteRequest::default();
        r.group_id = group("g1");
        r.topics = vec![t];
        let Request::OffsetDelete(got) = decode(k::OFFSET_DELETE, v, &r) else {
            panic!()
        };
        assert_eq!(got.group_id, "g1");
        assert_eq!(got.topics[0].name, "orders");
        assert_eq!(got.topics[0].partitions, vec![5]);
    }
}

#[test]
fn init_producer_id() {
    for v in versions(k::INIT_PRODUCER_ID) {
        let mut r = m::InitProducerIdRequest::default();
        r.transactional_id = Some(TransactionalId(sb("tx")));
        r.transaction_timeout_ms = 60_000;
        if v >= 3 {
            r.producer_id = ProducerId(77);
            r.producer_epoch = 2;
        }
        let Request::InitProducerId(got) = decode(k::INIT_PRODUCER_ID, v, &r) else {
            panic!()
        };
        assert_eq!(got.transactional_id.as_deref(), Some("tx"));
        assert_eq!(got.transaction_timeout_ms, 60_000);
        if v >= 3 {
            assert_eq!((got.producer_id, got.producer_epoch), (77, 2));
        } else {
            assert_eq!((got.producer_id, got.producer_epoch), (-1, -1));
        }
    }
}

#[test]
fn topic_admin() {
    for v in crate_versions(k::CREATE_TOPICS) {
        let mut c = m::create_topics_request::CreatableTopicConfig::default();
        c.name = sb("retention.ms");
        c.value = Some(sb("1000"));
        let mut a = m::create_topics_request::CreatableReplicaAssignment::default();
        a.partition_index = 0;
        a.broker_ids = vec![BrokerId(1)];
        let mut t = m::create_topics_request::CreatableTopic::default();
        t.name = topic("new");
        t.num_partitions = 3;
        t.replication_factor = 1;
        t.configs = vec![c];
        t.assignments = vec![a];
        let mut r = m::CreateTopicsRequest::default();
        r.topics = vec![t];
        r.timeout_ms = 1000;
        r.validate_only = true;
        let Request::CreateTopics(got) = decode(k::CREATE_TOPICS, v, &r) else {
            panic!()
        };
        let gt = &got.topics[0];
        assert_eq!(
            (gt.name.as_str(), gt.num_partitions, gt.replication_factor),
            ("new", 3, 1)
        );
        assert_eq!(gt.configs[0].name, "retention.ms");
        assert_eq!(gt.configs[0].value.as_deref(), Some("1000"));
        assert_eq!(gt.assignments[0].broker_ids, vec![1]);
        assert!(got.validate_only);
        assert_eq!(got.timeout_ms, 1000);
    }
    for v in crate_versions(k::DELETE_TOPICS) {
        let mut r = m::DeleteTopicsRequest::default();
        r.timeout_ms = 500;
        if v >= 6 {
            let mut by_name = m::delete_topics_request::DeleteTopicState::default();
            by_name.name = Some(topic("a"));
            let mut by_id = m::delete_topics_request::DeleteTopicState::default();
            by_id.name = None;
            by_id.topic_id = uuid::Uuid::from_bytes(ID);
            r.topics = vec![by_name, by_id];
        } else {
            r.topic_names = vec![topic("a"), topic("b")];
        }
        let Request::DeleteTopics(got) = decode(k::DELETE_TOPICS, v, &r) else {
            panic!()
        };
        assert_eq!(got.timeout_ms, 500);
        assert_eq!(got.topics.len(), 2);
        assert_eq!(got.topics[0].name.as_deref(), Some("a"));
        if v >= 6 {
            assert_eq!(
                (got.topics[1].name.as_deref(), got.topics[1].topic_id),
                (None, ID)
            );
        } else {
            assert_eq!(got.topics[1].name.as_deref(), Some("b"));
        }
    }
    for v in versions(k::CREATE_PARTITIONS) {
        let mut a = m::create_partitions_request::CreatePartitionsAssignment::default();
        a.broker_ids = vec![BrokerId(1)];
        let mut t = m::create_partitions_request::CreatePartitionsTopic::default();
        t.name = topic("orders");
        t.count = 6;
        t.assignments = Some(vec![a]);
        let mut t2 = m::create_partitions_request::CreatePartitionsTopic::default();
        t2.name = topic("other");
        t2.count = 2;
        t2.assignments = None;
        let mut r = m::CreatePartitionsRequest::default();
        r.topics = vec![t, t2];
        r.timeout_ms = 100;
        let Request::CreatePartitions(got) = decode(k::CREATE_PARTITIONS, v, &r) else {
            panic!()
        };
        assert_eq!(
            (got.topics[0].name.as_str(), got.topics[0].count),
            ("orders", 6)
        );
        assert_eq!(got.topics[0].assignments, Some(vec![vec![1]]));
        assert_eq!(got.topics[1].assignments, None);
        assert!(!got.validate_only);
    }
    for v in versions(k::DELETE_RECORDS) {
        let mut p = m::delete_records_request::DeleteRecordsPartition::default();
        p.partition_index = 0;
        p.offset = 100;
        let mut t = m::delete_records_request::DeleteRecordsTopic::default();
        t.name = topic("orders");
        t.partitions = vec![p];
        let mut r = m::DeleteRecordsRequest::default();
        r.topics = vec![t];
        r.timeout_ms = 10;
        let Request::DeleteRecords(got) = decode(k::DELETE_RECORDS, v, &r) else {
            panic!()
        };
        assert_eq!(got.topics[0].partitions[0].offset, 100);
        assert_eq!(got.timeout_ms, 10);
    }
}

#[test]
fn configs() {
    for v in crate_versions(k::DESCRIBE_CONFIGS) {
        let mut res = m::describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = sb("orders");
        res.configuration_keys = Some(vec![sb("retention.ms")]);
        let mut all = m::describe_configs_request::DescribeConfigsResource::default();
        all.resource_type = 4;
        all.resource_name = sb("1");
        all.configuration_keys = None;
        let mut r = m::DescribeConfigsRequest::default();
        r.resources = vec![res, all];
        r.include_synonyms = true;
        if v >= 3 {
            r.include_documentation = true;
        }
        let Request::DescribeConfigs(got) = decode(k::DESCRIBE_CONFIGS, v, &r) else {
            panic!()
        };
        assert_eq!(got.resources[0].resource_type, 2);
        assert_eq!(
            got.resources[0].configuration_keys,
            Some(vec!["retention.ms".to_string()])
        );
        assert_eq!(got.resources[1].configuration_keys, None);
        assert!(got.include_synonyms);
        assert_eq!(got.include_documentation, v >= 3);
    }
    for v in versions(k::ALTER_CONFIGS) {
        let mut c = m::alter_configs_request::AlterableConfig::default();
        c.name = sb("retention.ms");
        c.value = None;
        let mut res = m::alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = sb("orders");
        res.configs = vec![c];
        let mut r = m::AlterConfigsRequest::default();
        r.resources = vec![res];
        let Request::AlterConfigs(got) = decode(k::ALTER_CONFIGS, v, &r) else {
            panic!()
        };
        assert_eq!(got.resources[0].resource_name, "orders");
        assert_eq!(got.resources[0].configs[0].value, None);
    }
    for v in versions(k::INCREMENTAL_ALTER_CONFIGS) {
        let mut c = m::incremental_alter_configs_request::AlterableConfig::default();
        c.name = sb("retention.ms");
        c.config_operation = 1;
        c.value = Some(sb("5"));
        let mut res = m::incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = sb("orders");
        res.configs = vec![c];
        let mut r = m::IncrementalAlterConfigsRequest::default();
        r.resources = vec![res];
        r.validate_only = true;
        let Request::IncrementalAlterConfigs(got) = decode(k::INCREMENTAL_ALTER_CONFIGS, v, &r)
        else {
            panic!()
        };
        let c = &got.resources[0].configs[0];
        assert_eq!(
            (c.name.as_str(), c.config_operation, c.value.as_deref()),
            ("retention.ms", 1, Some("5"))
        );
        assert!(got.validate_only);
    }
}

#[test]
fn cluster_and_epochs() {
    for v in versions(k::DESCRIBE_CLUSTER) {
        let mut r = m::DescribeClusterRequest::default();
        r.include_cluster_authorized_operations = true;
        let Request::DescribeCluster(got) = decode(k::DESCRIBE_CLUSTER, v, &r) else {
            panic!()
        };
        assert!(got.include_cluster_authorized_operations);
        assert_eq!(got.endpoint_type, 1);
    }
    for v in crate_versions(k::OFFSET_FOR_LEADER_EPOCH) {
        let mut p = m::offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
        p.partition = 1;
        p.current_leader_epoch = 0;
        p.leader_epoch = 0;
        let mut t = m::offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
        t.topic = topic("orders");
        t.partitions = vec![p];
        let mut r = m::OffsetForLeaderEpochRequest::default();
        if v >= 3 {
            r.replica_id = BrokerId(-1);
        }
        r.topics = vec![t];
        let Request::OffsetForLeaderEpoch(got) = decode(k::OFFSET_FOR_LEADER_EPOCH, v, &r) else {
            panic!()
        };
        assert_eq!(got.topics[0].topic, "orders");
        assert_eq!(got.topics[0].partitions[0].partition, 1);
        assert_eq!(got.replica_id, if v >= 3 { -1 } else { -2 });
    }
}

/// A follower's fetch as Weir's client side writes it (the replica fetcher uses it): every
/// field reaches the broker side, the replica id and epochs included.
#[test]
fn fetch_from_weir_client_keeps_replica_fields() {
    let request = Request::Fetch(weir_protocol::FetchRequest {
        cluster_id: Some("cluster-1".into()),
        replica_id: 2,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        session_id: 7,
        session_epoch: 3,
        topics: vec![weir_protocol::FetchTopic {
            name: "orders".into(),
            topic_id: [0; 16],
            partitions: vec![weir_protocol::FetchPartition {
                partition: 1,
                current_leader_epoch: 5,
                fetch_offset: 120,
                last_fetched_epoch: 4,
                log_start_offset: 10,
                partition_max_bytes: 1 << 16,
            }],
        }],
        forgotten_topics: vec![weir_protocol::ForgottenTopic {
            name: "old".into(),
            topic_id: [0; 16],
            partitions: vec![0, 3],
        }],
        rack_id: "rack-a".into(),
        record_magic: 2,
        uses_topic_ids: false,
    });
    let (frame, v) =
        weir_protocol::client::encode_request(9, "weir-replica", &request).expect("encode");
    assert_eq!(v, 12);
    let (_, got) = weir_protocol::decode_request(frame.slice(4..)).expect("decode");
    assert_eq!(got, request);
}

/// The Raft requests as kafka-protocol writes them, at every version.
#[test]
fn raft_requests() {
    for v in versions(k::VOTE) {
        let mut p = m::vote_request::PartitionData::default();
        p.partition_index = 2;
        p.replica_epoch = 8;
        p.replica_id = BrokerId(3);
        p.last_offset_epoch = 7;
        p.last_offset = 1500;
        p.pre_vote = v >= 2;
        let mut t = m::vote_request::TopicData::default();
        t.topic_name = topic("orders");
        t.partitions = vec![p];
        let mut r = m::VoteRequest::default();
        r.cluster_id = Some(sb("cluster-1"));
        if v >= 1 {
            r.voter_id = BrokerId(1);
        }
        r.topics = vec![t];
        let Request::Vote(got) = decode(k::VOTE, v, &r) else {
            panic!()
        };
        assert_eq!(got.cluster_id.as_deref(), Some("cluster-1"));
        assert_eq!(got.voter_id, if v >= 1 { 1 } else { -1 });
        assert_eq!(got.topics[0].topic_name, "orders");
        assert_eq!(
            got.topics[0].partitions[0],
            VotePartition {
                partition_index: 2,
                replica_epoch: 8,
                replica_id: 3,
                last_offset_epoch: 7,
                last_offset: 1500,
                pre_vote: v >= 2,
            },
            "v{v}"
        );
    }
    for v in versions(k::BEGIN_QUORUM_EPOCH) {
        let mut p = m::begin_quorum_epoch_request::PartitionData::default();
        p.partition_index = 1;
        p.leader_id = BrokerId(2);
        p.leader_epoch = 6;
        let mut t = m::begin_quorum_epoch_request::TopicData::default();
        t.topic_name = topic("orders");
        t.partitions = vec![p];
        let mut r = m::BeginQuorumEpochRequest::default();
        r.cluster_id = None;
        r.topics = vec![t];
        if v >= 1 {
            r.voter_id = BrokerId(3);
            r.leader_endpoints = vec![m::begin_quorum_epoch_request::LeaderEndpoint::default()
                .with_name(sb("PLAINTEXT"))
                .with_host(sb("broker-2"))
                .with_port(9092)];
        }
        let Request::BeginQuorumEpoch(got) = decode(k::BEGIN_QUORUM_EPOCH, v, &r) else {
            panic!()
        };
        assert_eq!(got.cluster_id, None);
        assert_eq!(got.voter_id, if v >= 1 { 3 } else { -1 });
        assert_eq!(
            got.topics[0].partitions[0],
            BeginQuorumEpochPartition {
                partition_index: 1,
                leader_id: 2,
                leader_epoch: 6,
            }
        );
        let endpoints: Vec<_> = got
            .leader_endpoints
            .iter()
            .map(|e| (e.name.as_str(), e.host.as_str(), e.port))
            .collect();
        if v >= 1 {
            assert_eq!(endpoints, vec![("PLAINTEXT", "broker-2", 9092)]);
        } else {
            assert!(endpoints.is_empty());
        }
    }
    // v0 lists successor ids, v1 candidate structs: both read as `preferred_successors`.
    for v in versions(k::END_QUORUM_EPOCH) {
        let mut p = m::end_quorum_epoch_request::PartitionData::default();
        p.partition_index = 1;
        p.leader_id = BrokerId(2);
        p.leader_epoch = 6;
        if v == 0 {
            p.preferred_successors = vec![3, 1];
        } else {
            p.preferred_candidates = [3, 1]
                .into_iter()
                .map(|id| {
                    m::end_quorum_epoch_request::ReplicaInfo::default()
                        .with_candidate_id(BrokerId(id))
                })
                .collect();
        }
        let mut t = m::end_quorum_epoch_request::TopicData::default();
        t.topic_name = topic("orders");
        t.partitions = vec![p];
        let mut r = m::EndQuorumEpochRequest::default();
        r.cluster_id = Some(sb("cluster-1"));
        r.topics = vec![t];
        let Request::EndQuorumEpoch(got) = decode(k::END_QUORUM_EPOCH, v, &r) else {
            panic!()
        };
        assert_eq!(got.cluster_id.as_deref(), Some("cluster-1"));
        assert_eq!(
            got.topics[0].partitions[0],
            EndQuorumEpochPartition {
                partition_index: 1,
                leader_id: 2,
                leader_epoch: 6,
                preferred_successors: vec![3, 1],
            },
            "v{v}"
        );
    }
}

/// Weir's client side writes `preferred_successors` in the field each EndQuorumEpoch version
/// has, and kafka-protocol reads them there.
#[test]
fn end_quorum_epoch_successors_at_each_version() {
    use kafka_protocol::protocol::Decodable;
    let sample = weir_protocol::testing::sample_request(k::END_QUORUM_EPOCH).expect("mirrored");
    let Request::EndQuorumEpoch(ref want) = sample else {
        panic!()
    };
    let successors = want.topics[0].partitions[0].preferred_successors.clone();
    assert_eq!(successors.len(), 2);
    for v in versions(k::END_QUORUM_EPOCH) {
        let frame = weir_protocol::testing::sample_request_frame(k::END_QUORUM_EPOCH, v)
            .expect("mirrored")
            .expect("encode");
        let (_, got) = weir_protocol::decode_request(frame.clone()).expect("decode");
        let Request::EndQuorumEpoch(got) = got else {
            panic!()
        };
        // (`leader_endpoints` are v1+.)
        assert_eq!(got.topics, want.topics, "v{v}");
        // Skip the header (v0: classic, v1: flexible) the way kafka-protocol reads it.
        let mut b = frame;
        let key = m::ApiKey::EndQuorumEpoch;
        m::RequestHeader::decode(&mut b, key.request_header_version(v)).expect("header");
        let body = m::EndQuorumEpochRequest::decode(&mut b, v).expect("body");
        let p = &body.topics[0].partitions[0];
        if v == 0 {
            assert_eq!(p.preferred_successors, successors);
            assert!(p.preferred_candidates.is_empty());
        } else {
            assert!(p.preferred_successors.is_empty());
            let ids: Vec<i32> = p
                .preferred_candidates
                .iter()
                .map(|c| c.candidate_id.0)
                .collect();
            assert_eq!(ids, successors);
        }
    }
}

/// The cluster admin requests, with the defaults Kafka defines for older versions.
#[test]
fn cluster_admin_requests() {
    for v in versions(k::ELECT_LEADERS) {
        let mut t = m::elect_leaders_request::TopicPartitions::default();
        t.topic = topic("orders");
        t.partitions = vec![0, 2];
        let mut r = m::ElectLeadersRequest::default();
        if v >= 1 {
            r.election_type = 1;
        }
        r.topic_partitions = Some(vec![t]);
        r.timeout_ms = 3000;
        let Request::ElectLeaders(got) = decode(k::ELECT_LEADERS, v, &r) else {
            panic!()
        };
        assert_eq!(
            got.election_type,
            if v >= 1 { 1 } else { 0 },
            "v0 is preferred"
        );
        assert_eq!(got.timeout_ms, 3000);
        let topics = got.topic_partitions.expect("named partitions");
        assert_eq!(
            (topics[0].topic.as_str(), &topics[0].partitions[..]),
            ("orders", &[0, 2][..])
        );
        // Null: every partition.
        r.topic_partitions = None;
        let Request::ElectLeaders(got) = decode(k::ELECT_LEADERS, v, &r) else {
            panic!()
        };
        assert_eq!(got.topic_partitions, None);
    }
    for v in versions(k::ALTER_PARTITION_REASSIGNMENTS) {
        let mut move_ = m::alter_partition_reassignments_request::ReassignablePartition::default();
        move_.partition_index = 0;
        move_.replicas = Some(vec![BrokerId(1), BrokerId(2), BrokerId(3)]);
        let mut cancel = m::alter_partition_reassignments_request::ReassignablePartition::default();
        cancel.partition_index = 1;
        cancel.replicas = None;
        let mut t = m::alter_partition_reassignments_request::ReassignableTopic::default();
        t.name = topic("orders");
        t.partitions = vec![move_, cancel];
        let mut r = m::AlterPartitionReassignmentsRequest::default();
        r.timeout_ms = 3000;
        r.allow_replication_factor_change = v < 1;
        r.topics = vec![t];
        let Request::AlterPartitionReassignments(got) =
            decode(k::ALTER_PARTITION_REASSIGNMENTS, v, &r)
        else {
            panic!()
        };
        // v0 cannot say no: Kafka's default is true.
        assert_eq!(got.allow_replication_factor_change, v < 1, "v{v}");
        let ps = &got.topics[0].partitions;
        assert_eq!(ps[0].replicas, Some(vec![1, 2, 3]));
        assert_eq!((ps[1].partition_index, ps[1].replicas.as_ref()), (1, None));
    }
    for v in versions(k::LIST_PARTITION_REASSIGNMENTS) {
        let mut r = m::ListPartitionReassignmentsRequest::default();
        r.topics = None;
        let Request::ListPartitionReassignments(got) =
            decode(k::LIST_PARTITION_REASSIGNMENTS, v, &r)
        else {
            panic!()
        };
        assert_eq!(got.topics, None, "all reassignments");
    }
}

/// Every served (api, version) pair decodes a default-valued body: guards the version
/// table against entries the decoder cannot handle. APIs the table mirrors are checked
/// generically instead (next test), so a new API needs no line here.
#[test]
fn every_served_version_decodes_a_default_body() {
    use kafka_protocol::protocol::Encodable;
    fn check<T: Encodable + Default>(key: i16, checked: &mut Vec<i16>) {
        // The old Produce, Fetch and ListOffsets versions are covered by their hand-made tests.
        for v in crate_versions(key) {
            decode(key, v, &T::default());
        }
        checked.push(key);
    }
    let c = &mut Vec::new();
    check::<m::ApiVersionsRequest>(k::API_VERSIONS, c);
    check::<m::MetadataRequest>(k::METADATA, c);
    check::<m::ProduceRequest>(k::PRODUCE, c);
    check::<m::FetchRequest>(k::FETCH, c);
    check::<m::ListOffsetsRequest>(k::LIST_OFFSETS, c);
    check::<m::OffsetCommitRequest>(k::OFFSET_COMMIT, c);
    check::<m::OffsetFetchRequest>(k::OFFSET_FETCH, c);
    check::<m::FindCoordinatorRequest>(k::FIND_COORDINATOR, c);
    check::<m::JoinGroupRequest>(k::JOIN_GROUP, c);
    check::<m::SyncGroupRequest>(k::SYNC_GROUP, c);
    check::<m::LeaveGroupRequest>(k::LEAVE_GROUP, c);
    check::<m::ListGroupsRequest>(k::LIST_GROUPS, c);
    check::<m::DescribeGroupsRequest>(k::DESCRIBE_GROUPS, c);
    check::<m::InitProducerIdRequest>(k::INIT_PRODUCER_ID, c);
    check::<m::CreateTopicsRequest>(k::CREATE_TOPICS, c);
    check::<m::DeleteTopicsRequest>(k::DELETE_TOPICS, c);
    check::<m::CreatePartitionsRequest>(k::CREATE_PARTITIONS, c);
    check::<m::DescribeConfigsRequest>(k::DESCRIBE_CONFIGS, c);
    check::<m::AlterConfigsRequest>(k::ALTER_CONFIGS, c);
    check::<m::IncrementalAlterConfigsRequest>(k::INCREMENTAL_ALTER_CONFIGS, c);
    for &(key, _, _) in weir_protocol::supported_apis() {
        assert!(
            c.contains(&key) || weir_protocol::testing::sample_request(key).is_some(),
            "api key {key} is neither hand-checked here nor mirrored"
        );
    }
}

/// For every API the table mirrors: a request with every field set, encoded by Weir's client
/// side at every served version, decodes on the broker side; at the newest version (which
/// has every field) it decodes to the same value. A new mirrored API is covered by this test
/// without a line of its own.
#[test]
fn mirrored_requests_round_trip_at_every_version() {
    let mut mirrored = 0;
    for &(key, min, max) in weir_protocol::supported_apis() {
        let Some(sample) = weir_protocol::testing::sample_request(key) else {
            continue;
        };
        mirrored += 1;
        for v in (min..=max).filter(|&v| weir_protocol::testing::client_encodes(key, v)) {
            let frame = weir_protocol::testing::sample_request_frame(key, v)
                .expect("mirrored")
                .unwrap_or_else(|e| panic!("api {key} v{v}: {e}"));
            let (header, decoded) = weir_protocol::decode_request(frame)
                .unwrap_or_else(|e| panic!("api {key} v{v}: {e}"));
            assert_eq!((header.api_key, header.api_version), (key, v));
            if v == max {
                assert_eq!(decoded, sample, "api {key} v{v}");
            }
        }
    }
    assert!(mirrored >= 6, "{mirrored} mirrored APIs");
}
