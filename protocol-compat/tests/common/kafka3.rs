//! Requests as a Kafka 3 client encodes them, with kafka-protocol 0.15 (generated from Kafka
//! 3.x's specs, which still have the versions Kafka 4.0 removed, KIP-896): the reference for the
//! versions Weir serves old clients by rewriting them. Each builder sets nested elements, so a
//! mutation reaches the inner fields.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol_3::messages as m3;
use kafka_protocol_3::protocol::{Encodable, StrBytes};
use weir_protocol::api_key as k;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A request frame (without the size prefix) as a Kafka 3 client sends it. Every removed
/// version has the classic header v1.
pub fn frame<T: Encodable>(api_key: i16, version: i16, body: &T) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(api_key);
    buf.put_i16(version);
    buf.put_i32(9);
    buf.put_i16(10);
    buf.put_slice(b"old-client");
    body.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("kafka-protocol 0.15 encodes api {api_key} v{version}: {e}"));
    buf.freeze()
}

/// The length of [`frame`]'s header.
pub const HEADER_BYTES: usize = 2 + 2 + 4 + 2 + 10;

/// One populated request frame per version Weir serves by rewriting it (the versions its own
/// client side does not encode).
pub fn removed_version_frames() -> Vec<Bytes> {
    let mut out = Vec::new();
    for &(key, min, max) in weir_protocol::supported_apis() {
        for v in min..=max {
            if weir_protocol::testing::client_encodes(key, v) {
                continue;
            }
            out.push(match key {
                k::OFFSET_COMMIT => frame(key, v, &commit_request(v)),
                k::OFFSET_FETCH => frame(key, v, &offset_fetch_request()),
                k::CREATE_TOPICS => frame(key, v, &create_topics_request(v >= 1)),
                k::DELETE_TOPICS => frame(key, v, &delete_topics_request()),
                k::OFFSET_FOR_LEADER_EPOCH => frame(key, v, &offset_for_leader_epoch_request()),
                k::CREATE_ACLS => frame(key, v, &create_acls_request()),
                k::DESCRIBE_ACLS => frame(key, v, &describe_acls_request()),
                k::DELETE_ACLS => frame(key, v, &delete_acls_request()),
                k::DESCRIBE_CONFIGS => frame(key, v, &describe_configs_request()),
                k::DESCRIBE_LOG_DIRS => frame(key, v, &describe_log_dirs_request()),
                k::ALTER_REPLICA_LOG_DIRS => frame(key, v, &alter_replica_log_dirs_request()),
                other => panic!("no Kafka 3 request builder for api {other} v{v}"),
            });
        }
    }
    out
}

pub fn commit_partition(
    index: i32,
    metadata: Option<&str>,
) -> m3::offset_commit_request::OffsetCommitRequestPartition {
    let mut p = m3::offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = index;
    p.committed_offset = 1000 + i64::from(index);
    p.committed_metadata = metadata.map(s);
    p
}

/// An OffsetCommit of two topics with the fields of `version` (0: none of the group's, 1: a
/// generation, a member and commit timestamps).
pub fn commit_request(version: i16) -> m3::OffsetCommitRequest {
    let mut msg = m3::OffsetCommitRequest::default();
    msg.group_id = m3::GroupId(s("legacy-group"));
    if version == 1 {
        msg.generation_id_or_member_epoch = 5;
        msg.member_id = s("member-1");
    }
    for (name, parts) in [("a", vec![0, 1]), ("b", vec![3])] {
        let mut t = m3::offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = m3::TopicName(s(name));
        t.partitions = parts
            .into_iter()
            .map(|i| {
                let mut p = commit_partition(i, (i != 1).then_some("meta"));
                if version == 1 {
                    p.commit_timestamp = 1_700_000_000_000;
                }
                p
            })
            .collect();
        msg.topics.push(t);
    }
    msg
}

pub fn offset_fetch_request() -> m3::OffsetFetchRequest {
    let mut msg = m3::OffsetFetchRequest::default();
    msg.group_id = m3::GroupId(s("legacy-group"));
    let mut t = m3::offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = m3::TopicName(s("a"));
    t.partition_indexes = vec![0, 2];
    msg.topics = Some(vec![t]);
    msg
}

pub fn create_topics_request(validate_only: bool) -> m3::CreateTopicsRequest {
    let mut msg = m3::CreateTopicsRequest::default();
    msg.timeout_ms = 1500;
    let mut t = m3::create_topics_request::CreatableTopic::default();
    t.name = m3::TopicName(s("legacy-topic"));
    t.num_partitions = 3;
    t.replication_factor = 1;
    let mut c = m3::create_topics_request::CreatableTopicConfig::default();
    c.name = s("cleanup.policy");
    c.value = Some(s("compact"));
    t.configs.push(c);
    msg.topics.push(t);
    msg.validate_only = validate_only;
    msg
}

pub fn delete_topics_request() -> m3::DeleteTopicsRequest {
    let mut msg = m3::DeleteTopicsRequest::default();
    msg.timeout_ms = 1500;
    msg.topic_names = vec![m3::TopicName(s("a")), m3::TopicName(s("b"))];
    msg
}

pub fn offset_for_leader_epoch_request() -> m3::OffsetForLeaderEpochRequest {
    let mut msg = m3::OffsetForLeaderEpochRequest::default();
    let mut t = m3::offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
    t.topic = m3::TopicName(s("a"));
    for (partition, epoch) in [(0, 3), (1, 7)] {
        let mut p = m3::offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
        p.partition = partition;
        p.leader_epoch = epoch;
        t.partitions.push(p);
    }
    msg.topics.push(t);
    msg
}

pub fn create_acls_request() -> m3::CreateAclsRequest {
    let mut create = m3::CreateAclsRequest::default();
    let mut c = m3::create_acls_request::AclCreation::default();
    c.resource_type = 2;
    c.resource_name = s("orders");
    c.principal = s("User:alice");
    c.host = s("*");
    c.operation = 3;
    c.permission_type = 3;
    create.creations = vec![c.clone(), c];
    create
}

pub fn describe_acls_request() -> m3::DescribeAclsRequest {
    let mut describe = m3::DescribeAclsRequest::default();
    describe.resource_type_filter = 2;
    describe.resource_name_filter = Some(s("orders"));
    describe.principal_filter = None;
    describe.host_filter = Some(s("*"));
    describe.operation = 1;
    describe.permission_type = 1;
    describe
}

pub fn delete_acls_request() -> m3::DeleteAclsRequest {
    let mut delete = m3::DeleteAclsRequest::default();
    let mut f = m3::delete_acls_request::DeleteAclsFilter::default();
    f.resource_type_filter = 2;
    f.resource_name_filter = None;
    f.principal_filter = Some(s("User:alice"));
    f.host_filter = None;
    f.operation = 1;
    f.permission_type = 1;
    delete.filters = vec![f];
    delete
}

pub fn describe_configs_request() -> m3::DescribeConfigsRequest {
    let mut msg = m3::DescribeConfigsRequest::default();
    let mut r = m3::describe_configs_request::DescribeConfigsResource::default();
    r.resource_type = 2;
    r.resource_name = s("orders");
    r.configuration_keys = Some(vec![s("retention.ms"), s("cleanup.policy")]);
    msg.resources.push(r);
    let mut all = m3::describe_configs_request::DescribeConfigsResource::default();
    all.resource_type = 4;
    all.resource_name = s("0");
    all.configuration_keys = None;
    msg.resources.push(all);
    msg
}

pub fn describe_log_dirs_request() -> m3::DescribeLogDirsRequest {
    let mut describe = m3::DescribeLogDirsRequest::default();
    let mut t = m3::describe_log_dirs_request::DescribableLogDirTopic::default();
    t.topic = m3::TopicName(s("a"));
    t.partitions = vec![0, 1];
    describe.topics = Some(vec![t]);
    describe
}

pub fn alter_replica_log_dirs_request() -> m3::AlterReplicaLogDirsRequest {
    let mut alter = m3::AlterReplicaLogDirsRequest::default();
    let mut dir = m3::alter_replica_log_dirs_request::AlterReplicaLogDir::default();
    dir.path = s("/var/lib/weir/logs");
    let mut t = m3::alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default();
    t.name = m3::TopicName(s("a"));
    t.partitions = vec![0];
    dir.topics.push(t);
    alter.dirs.push(dir);
    alter
}
