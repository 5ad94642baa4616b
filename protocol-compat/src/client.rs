//! The client side of the wire protocol, for Weir's own tools (the `weir` CLI, tests) and for a
//! broker talking to its peers (Vote, BeginQuorumEpoch, EndQuorumEpoch, a follower's Fetch):
//! encoding Weir-owned [`Request`] values into request frames and decoding response frames into
//! Weir-owned [`Response`] values. The mirror image of `codec`, over the same types, so no caller
//! ever names a `kafka-protocol` type.
//!
//! Every API the table mirrors is covered, at the newest version served, and of the hand-written
//! ones those the tools use, each at one fixed version ([`client_version`]); any other request is
//! a [`ClientError::Unsupported`]. [`encode_request_at_version`] picks another served version.
//! Like the rest of the crate it is pure: the caller owns the socket.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages as m;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::api_key as k;
use crate::apis;
use crate::error::ErrorCode;
use crate::mirror::Mirror;
use crate::requests::*;
use crate::responses::*;

/// Why a request could not be encoded or a response decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The client side does not implement this API.
    #[error("the Weir client does not implement api key {0}")]
    Unsupported(i16),
    /// The request cannot be written at the client's version.
    #[error("cannot encode api key {api_key}: {reason}")]
    Encode { api_key: i16, reason: String },
    /// The response frame is malformed.
    #[error("cannot decode response to api key {api_key}: {reason}")]
    Decode { api_key: i16, reason: String },
}

/// The version the client speaks for `api_key`, or `None` if it does not implement the API.
/// All are within what Weir serves (see [`crate::supported_range`]); APIs mirrored by the
/// table in `apis` use the newest version served.
pub fn client_version(api_key: i16) -> Option<i16> {
    apis::client_version(api_key)
}

/// [`client_version`] of the APIs the table does not mirror.
pub(crate) fn custom_client_version(api_key: i16) -> Option<i16> {
    Some(match api_key {
        k::API_VERSIONS => 3,
        k::PRODUCE => 9,
        k::FETCH => 12,
        k::LIST_OFFSETS => 7,
        k::METADATA => 12,
        k::OFFSET_COMMIT => 8,
        k::OFFSET_FETCH => 8,
        k::FIND_COORDINATOR => 4,
        k::JOIN_GROUP => 9,
        k::LEAVE_GROUP => 5,
        k::SYNC_GROUP => 5,
        k::CREATE_TOPICS => 7,
        k::DELETE_TOPICS => 6,
        k::CREATE_PARTITIONS => 3,
        k::DESCRIBE_CONFIGS => 4,
        k::INCREMENTAL_ALTER_CONFIGS => 1,
        k::INIT_PRODUCER_ID => 5,
        _ => return None,
    })
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn opt_sb(s: &Option<String>) -> Option<StrBytes> {
    s.as_deref().map(sb)
}

fn tn(s: &str) -> m::TopicName {
    m::TopicName(sb(s))
}

fn gid(s: &str) -> m::GroupId {
    m::GroupId(sb(s))
}

fn st(s: StrBytes) -> String {
    s.as_str().to_owned()
}

fn opt_st(s: Option<StrBytes>) -> Option<String> {
    s.map(st)
}

fn ec(code: i16) -> ErrorCode {
    ErrorCode(code)
}

// A tagged struct holding kafka-protocol's default was not sent: `None`.

fn diverging_epoch(e: &m::fetch_response::EpochEndOffset) -> Option<(i32, i64)> {
    (*e != Default::default()).then_some((e.epoch, e.end_offset))
}

fn fetch_leader(l: &m::fetch_response::LeaderIdAndEpoch) -> Option<(i32, i32)> {
    (*l != Default::default()).then_some((l.leader_id.0, l.leader_epoch))
}

fn produce_leader(l: &m::produce_response::LeaderIdAndEpoch) -> Option<(i32, i32)> {
    (*l != Default::default()).then_some((l.leader_id.0, l.leader_epoch))
}

/// Encodes `request` as a complete frame (size prefix, request header, body) at
/// [`client_version`] of its API. Returns the frame and the version used.
pub fn encode_request(
    correlation_id: i32,
    client_id: &str,
    request: &Request,
) -> Result<(Bytes, i16), ClientError> {
    let api_key = request.api_key();
    let v = client_version(api_key).ok_or(ClientError::Unsupported(api_key))?;
    Ok((encode_request_at(correlation_id, client_id, request, v)?, v))
}

/// [`encode_request`] at version `version` instead of [`client_version`], e.g. a lower one a
/// peer listed in ApiVersions. The version must be served ([`crate::supported_range`]). APIs
/// the table mirrors encode at every served version; the hand-written ones are only exercised
/// at [`client_version`] and fail with [`ClientError::Encode`] where a version cannot carry
/// the request.
pub fn encode_request_at_version(
    correlation_id: i32,
    client_id: &str,
    request: &Request,
    version: i16,
) -> Result<Bytes, ClientError> {
    let api_key = request.api_key();
    match crate::supported_range(api_key) {
        Some((min, max)) if (min..=max).contains(&version) => {
            encode_request_at(correlation_id, client_id, request, version)
        }
        Some((min, max)) => Err(ClientError::Encode {
            api_key,
            reason: format!("version {version} is outside the served {min}..={max}"),
        }),
        None => Err(ClientError::Unsupported(api_key)),
    }
}

/// [`encode_request`] at version `v` instead of the client's own (tests that need an older or
/// newer version). `v` must be a version Weir serves for the API.
pub fn encode_request_at(
    correlation_id: i32,
    client_id: &str,
    request: &Request,
    v: i16,
) -> Result<Bytes, ClientError> {
    let api_key = request.api_key();
    let key = ApiKey::try_from(api_key).map_err(|_| ClientError::Unsupported(api_key))?;
    let enc = |reason: String| ClientError::Encode { api_key, reason };
    let mut header = m::RequestHeader::default();
    header.request_api_key = api_key;
    header.request_api_version = v;
    header.correlation_id = correlation_id;
    header.client_id = Some(sb(client_id));
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    header
        .encode(&mut out, key.request_header_version(v))
        .map_err(|e| enc(format!("{e:#}")))?;
    apis::encode_request_body(&mut out, v, request).map_err(enc)?;
    let size = i32::try_from(out.len() - 4).map_err(|_| ClientError::Encode {
        api_key,
        reason: format!("request of {} bytes", out.len()),
    })?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

fn put<T: Encodable>(out: &mut BytesMut, v: i16, msg: &T) -> Result<(), String> {
    msg.encode(out, v).map_err(|e| format!("{e:#}"))
}

/// The hand-written request encoders of the APIs the table does not mirror.
pub(crate) fn encode_custom(out: &mut BytesMut, v: i16, request: &Request) -> Result<(), String> {
    match request {
        Request::ApiVersions(r) => {
            let mut msg = m::ApiVersionsRequest::default();
            msg.client_software_name = sb(&r.client_software_name);
            msg.client_software_version = sb(&r.client_software_version);
            put(out, v, &msg)
        }
        Request::Metadata(r) => {
            let mut msg = m::MetadataRequest::default();
            msg.topics = r.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| {
                        let mut e = m::metadata_request::MetadataRequestTopic::default();
                        e.name = t.name.as_deref().map(tn);
                        // v10+ (the vendored encoder drops it before).
                        e.topic_id = uuid::Uuid::from_bytes(t.topic_id);
                        e
                    })
                    .collect()
            });
            msg.allow_auto_topic_creation = r.allow_auto_topic_creation;
            msg.include_topic_authorized_operations = r.include_topic_authorized_operations;
            if v <= 10 {
                msg.include_cluster_authorized_operations = r.include_cluster_authorized_operations;
            }
            put(out, v, &msg)
        }
        Request::Produce(r) => {
            let mut msg = m::ProduceRequest::default();
            msg.transactional_id = r
                .transactional_id
                .as_deref()
                .map(|t| m::TransactionalId(sb(t)));
            msg.acks = r.acks;
            msg.timeout_ms = r.timeout_ms;
            msg.topic_data = r
                .topics
                .iter()
                .map(|t| {
                    let mut e = m::produce_request::TopicProduceData::default();
                    // The version decides which of the two is written (id from v13).
                    e.name = tn(&t.name);
                    e.topic_id = uuid::Uuid::from_bytes(t.topic_id);
                    e.partition_data = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut e = m::produce_request::PartitionProduceData::default();
                            e.index = p.index;
                            e.records = p.records.clone();
                            e
                        })
                        .collect();
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::Fetch(r) => {
            let mut msg = m::FetchRequest::default();
            msg.cluster_id = opt_sb(&r.cluster_id);
            // The version decides where the replica id goes (the replica state from v15).
            msg.replica_id = m::BrokerId(r.replica_id);
            msg.replica_state.replica_id = m::BrokerId(r.replica_id);
            msg.max_wait_ms = r.max_wait_ms;
            msg.min_bytes = r.min_bytes;
            msg.max_bytes = r.max_bytes;
            msg.isolation_level = r.isolation_level;
            msg.session_id = r.session_id;
            msg.session_epoch = r.session_epoch;
            msg.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut e = m::fetch_request::FetchTopic::default();
                    // The version decides which of the two is written (id from v13).
                    e.topic = tn(&t.name);
                    e.topic_id = uuid::Uuid::from_bytes(t.topic_id);
                    e.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut e = m::fetch_request::FetchPartition::default();
                            e.partition = p.partition;
                            e.current_leader_epoch = p.current_leader_epoch;
                            e.fetch_offset = p.fetch_offset;
                            e.last_fetched_epoch = p.last_fetched_epoch;
                            e.log_start_offset = p.log_start_offset;
                            e.partition_max_bytes = p.partition_max_bytes;
                            e
                        })
                        .collect();
                    e
                })
                .collect();
            msg.forgotten_topics_data = r
                .forgotten_topics
                .iter()
                .map(|t| {
                    let mut e = m::fetch_request::ForgottenTopic::default();
                    e.topic = tn(&t.name);
                    e.topic_id = uuid::Uuid::from_bytes(t.topic_id);
                    e.partitions = t.partitions.clone();
                    e
                })
                .collect();
            msg.rack_id = sb(&r.rack_id);
            put(out, v, &msg)
        }
        Request::ListOffsets(r) => {
            let mut msg = m::ListOffsetsRequest::default();
            msg.replica_id = m::BrokerId(r.replica_id);
            msg.isolation_level = r.isolation_level;
            msg.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut e = m::list_offsets_request::ListOffsetsTopic::default();
                    e.name = tn(&t.name);
                    e.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut e = m::list_offsets_request::ListOffsetsPartition::default();
                            e.partition_index = p.partition_index;
                            e.current_leader_epoch = p.current_leader_epoch;
                            e.timestamp = p.timestamp;
                            e
                        })
                        .collect();
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::OffsetCommit(r) => {
            let mut msg = m::OffsetCommitRequest::default();
            msg.group_id = gid(&r.group_id);
            msg.generation_id_or_member_epoch = r.generation_id;
            msg.member_id = sb(&r.member_id);
            msg.group_instance_id = opt_sb(&r.group_instance_id);
            msg.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut e = m::offset_commit_request::OffsetCommitRequestTopic::default();
                    e.name = tn(&t.name);
                    e.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut e =
                                m::offset_commit_request::OffsetCommitRequestPartition::default();
                            e.partition_index = p.partition_index;
                            e.committed_offset = p.committed_offset;
                            e.committed_leader_epoch = p.committed_leader_epoch;
                            e.committed_metadata = opt_sb(&p.committed_metadata);
                            e
                        })
                        .collect();
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::OffsetFetch(r) => {
            let mut msg = m::OffsetFetchRequest::default();
            msg.require_stable = r.require_stable;
            msg.groups = r
                .groups
                .iter()
                .map(|g| {
                    let mut e = m::offset_fetch_request::OffsetFetchRequestGroup::default();
                    e.group_id = gid(&g.group_id);
                    e.member_id = opt_sb(&g.member_id);
                    e.member_epoch = g.member_epoch;
                    e.topics = g.topics.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| {
                                let mut e =
                                    m::offset_fetch_request::OffsetFetchRequestTopics::default();
                                e.name = tn(&t.name);
                                e.partition_indexes = t.partition_indexes.clone();
                                e
                            })
                            .collect()
                    });
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::InitProducerId(r) => {
            let mut msg = m::InitProducerIdRequest::default();
            msg.transactional_id = r
                .transactional_id
                .as_deref()
                .map(|t| m::TransactionalId(sb(t)));
            msg.transaction_timeout_ms = r.transaction_timeout_ms;
            msg.producer_id = m::ProducerId(r.producer_id);
            msg.producer_epoch = r.producer_epoch;
            put(out, v, &msg)
        }
        Request::FindCoordinator(r) => {
            let mut msg = m::FindCoordinatorRequest::default();
            msg.key_type = r.key_type;
            if v < 4 {
                // v0-3 carry one key, at the top level.
                let [key] = r.keys.as_slice() else {
                    return Err(format!("FindCoordinator v{v} takes exactly one key"));
                };
                msg.key = sb(key);
            } else {
                msg.coordinator_keys = r.keys.iter().map(|s| sb(s)).collect();
            }
            put(out, v, &msg)
        }
        Request::JoinGroup(r) => {
            let mut msg = m::JoinGroupRequest::default();
            msg.group_id = gid(&r.group_id);
            msg.session_timeout_ms = r.session_timeout_ms;
            msg.rebalance_timeout_ms = r.rebalance_timeout_ms;
            msg.member_id = sb(&r.member_id);
            msg.group_instance_id = opt_sb(&r.group_instance_id);
            msg.protocol_type = sb(&r.protocol_type);
            msg.protocols = r
                .protocols
                .iter()
                .map(|p| {
                    let mut e = m::join_group_request::JoinGroupRequestProtocol::default();
                    e.name = sb(&p.name);
                    e.metadata = p.metadata.clone();
                    e
                })
                .collect();
            msg.reason = opt_sb(&r.reason);
            put(out, v, &msg)
        }
        Request::SyncGroup(r) => {
            let mut msg = m::SyncGroupRequest::default();
            msg.group_id = gid(&r.group_id);
            msg.generation_id = r.generation_id;
            msg.member_id = sb(&r.member_id);
            msg.group_instance_id = opt_sb(&r.group_instance_id);
            msg.protocol_type = opt_sb(&r.protocol_type);
            msg.protocol_name = opt_sb(&r.protocol_name);
            msg.assignments = r
                .assignments
                .iter()
                .map(|a| {
                    let mut e = m::sync_group_request::SyncGroupRequestAssignment::default();
                    e.member_id = sb(&a.member_id);
                    e.assignment = a.assignment.clone();
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::LeaveGroup(r) => {
            let mut msg = m::LeaveGroupRequest::default();
            msg.group_id = gid(&r.group_id);
            msg.members = r
                .members
                .iter()
                .map(|mem| {
                    let mut e = m::leave_group_request::MemberIdentity::default();
                    e.member_id = sb(&mem.member_id);
                    e.group_instance_id = opt_sb(&mem.group_instance_id);
                    e.reason = opt_sb(&mem.reason);
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::CreateTopics(r) => {
            let mut msg = m::CreateTopicsRequest::default();
            msg.timeout_ms = r.timeout_ms;
            msg.validate_only = r.validate_only;
            msg.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut e = m::create_topics_request::CreatableTopic::default();
                    e.name = tn(&t.name);
                    e.num_partitions = t.num_partitions;
                    e.replication_factor = t.replication_factor;
                    e.configs = t
                        .configs
                        .iter()
                        .map(|c| {
                            let mut e = m::create_topics_request::CreatableTopicConfig::default();
                            e.name = sb(&c.name);
                            e.value = opt_sb(&c.value);
                            e
                        })
                        .collect();
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::DeleteTopics(r) => {
            let mut msg = m::DeleteTopicsRequest::default();
            msg.timeout_ms = r.timeout_ms;
            msg.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut e = m::delete_topics_request::DeleteTopicState::default();
                    e.name = t.name.as_deref().map(tn);
                    e.topic_id = uuid::Uuid::from_bytes(t.topic_id);
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::CreatePartitions(r) => {
            let mut msg = m::CreatePartitionsRequest::default();
            msg.timeout_ms = r.timeout_ms;
            msg.validate_only = r.validate_only;
            msg.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut e = m::create_partitions_request::CreatePartitionsTopic::default();
                    e.name = tn(&t.name);
                    e.count = t.count;
                    e.assignments = None;
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::DescribeConfigs(r) => {
            let mut msg = m::DescribeConfigsRequest::default();
            msg.include_synonyms = r.include_synonyms;
            msg.include_documentation = r.include_documentation;
            msg.resources = r
                .resources
                .iter()
                .map(|res| {
                    let mut e = m::describe_configs_request::DescribeConfigsResource::default();
                    e.resource_type = res.resource_type;
                    e.resource_name = sb(&res.resource_name);
                    e.configuration_keys = res
                        .configuration_keys
                        .as_ref()
                        .map(|ks| ks.iter().map(|s| sb(s)).collect());
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        Request::IncrementalAlterConfigs(r) => {
            let mut msg = m::IncrementalAlterConfigsRequest::default();
            msg.validate_only = r.validate_only;
            msg.resources = r
                .resources
                .iter()
                .map(|res| {
                    let mut e =
                        m::incremental_alter_configs_request::AlterConfigsResource::default();
                    e.resource_type = res.resource_type;
                    e.resource_name = sb(&res.resource_name);
                    e.configs = res
                        .configs
                        .iter()
                        .map(|c| {
                            let mut e =
                                m::incremental_alter_configs_request::AlterableConfig::default();
                            e.name = sb(&c.name);
                            e.config_operation = c.config_operation;
                            e.value = opt_sb(&c.value);
                            e
                        })
                        .collect();
                    e
                })
                .collect();
            put(out, v, &msg)
        }
        other => Err(format!(
            "api key {} is not implemented by the client",
            other.api_key()
        )),
    }
}

/// Decodes a response frame (without its 4-byte size prefix) to a request of `api_key`
/// sent at `api_version`. Returns the correlation id and the response.
pub fn decode_response(
    api_key: i16,
    api_version: i16,
    frame: Bytes,
) -> Result<(i32, Response), ClientError> {
    let dec = |reason: String| ClientError::Decode { api_key, reason };
    let key = ApiKey::try_from(api_key).map_err(|_| ClientError::Unsupported(api_key))?;
    let mut buf = frame;
    let header_version = if api_key == k::API_VERSIONS {
        0
    } else {
        key.response_header_version(api_version)
    };
    let header = m::ResponseHeader::decode(&mut buf, header_version)
        .map_err(|e| dec(format!("header: {e:#}")))?;
    let response = apis::decode_response_body(api_key, api_version, &mut buf).map_err(dec)?;
    Ok((header.correlation_id, response))
}

fn kp<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, String> {
    T::decode(body, version).map_err(|e| format!("{e:#}"))
}

/// The hand-written response decoders of the APIs the table does not mirror.
pub(crate) fn decode_custom(api_key: i16, v: i16, b: &mut Bytes) -> Result<Response, String> {
    Ok(match api_key {
        k::API_VERSIONS => {
            let r: m::ApiVersionsResponse = kp(b, v)?;
            Response::ApiVersions(ApiVersionsResponse {
                error_code: ec(r.error_code),
                api_keys: r
                    .api_keys
                    .into_iter()
                    .map(|a| ApiVersionRange {
                        api_key: a.api_key,
                        min_version: a.min_version,
                        max_version: a.max_version,
                    })
                    .collect(),
                throttle_time_ms: r.throttle_time_ms,
                features: r
                    .supported_features
                    .into_iter()
                    .map(|f| {
                        let finalized = r
                            .finalized_features
                            .iter()
                            .find(|x| x.name == f.name)
                            .map(|x| x.max_version_level);
                        Feature {
                            name: st(f.name),
                            min_supported: f.min_version,
                            max_supported: f.max_version,
                            finalized,
                        }
                    })
                    .collect(),
                finalized_features_epoch: r.finalized_features_epoch,
            })
        }
        k::METADATA => {
            let r: m::MetadataResponse = kp(b, v)?;
            Response::Metadata(MetadataResponse {
                throttle_time_ms: r.throttle_time_ms,
                brokers: r
                    .brokers
                    .into_iter()
                    .map(|b| MetadataBroker {
                        node_id: b.node_id.0,
                        host: st(b.host),
                        port: b.port,
                        rack: opt_st(b.rack),
                    })
                    .collect(),
                cluster_id: opt_st(r.cluster_id),
                controller_id: r.controller_id.0,
                topics: r
                    .topics
                    .into_iter()
                    .map(|t| MetadataTopic {
                        error_code: ec(t.error_code),
                        name: t.name.map(|n| st(n.0)),
                        topic_id: *t.topic_id.as_bytes(),
                        is_internal: t.is_internal,
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| MetadataPartition {
                                error_code: ec(p.error_code),
                                partition_index: p.partition_index,
                                leader_id: p.leader_id.0,
                                leader_epoch: p.leader_epoch,
                                replica_nodes: p.replica_nodes.iter().map(|b| b.0).collect(),
                                isr_nodes: p.isr_nodes.iter().map(|b| b.0).collect(),
                                offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                            })
                            .collect(),
                        topic_authorized_operations: t.topic_authorized_operations,
                    })
                    .collect(),
                cluster_authorized_operations: r.cluster_authorized_operations,
            })
        }
        k::PRODUCE => {
            let r: m::ProduceResponse = kp(b, v)?;
            Response::Produce(ProduceResponse {
                topics: r
                    .responses
                    .into_iter()
                    .map(|t| ProduceTopicResponse {
                        name: st(t.name.0),
                        topic_id: *t.topic_id.as_bytes(),
                        partitions: t
                            .partition_responses
                            .into_iter()
                            .map(|p| ProducePartitionResponse {
                                index: p.index,
                                error_code: ec(p.error_code),
                                base_offset: p.base_offset,
                                log_append_time_ms: p.log_append_time_ms,
                                log_start_offset: p.log_start_offset,
                                record_errors: p
                                    .record_errors
                                    .into_iter()
                                    .map(|e| ProduceRecordError {
                                        batch_index: e.batch_index,
                                        message: opt_st(e.batch_index_error_message),
                                    })
                                    .collect(),
                                error_message: opt_st(p.error_message),
                                current_leader: produce_leader(&p.current_leader),
                            })
                            .collect(),
                    })
                    .collect(),
                throttle_time_ms: r.throttle_time_ms,
                node_endpoints: Mirror::from_kp(r.node_endpoints),
            })
        }
        k::FETCH => {
            let r: m::FetchResponse = kp(b, v)?;
            Response::Fetch(FetchResponse {
                throttle_time_ms: r.throttle_time_ms,
                error_code: ec(r.error_code),
                session_id: r.session_id,
                topics: r
                    .responses
                    .into_iter()
                    .map(|t| FetchTopicResponse {
                        name: st(t.topic.0),
                        topic_id: *t.topic_id.as_bytes(),
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| FetchPartitionResponse {
                                partition_index: p.partition_index,
                                error_code: ec(p.error_code),
                                high_watermark: p.high_watermark,
                                last_stable_offset: p.last_stable_offset,
                                log_start_offset: p.log_start_offset,
                                aborted_transactions: p
                                    .aborted_transactions
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(|a| AbortedTransaction {
                                        producer_id: a.producer_id.0,
                                        first_offset: a.first_offset,
                                    })
                                    .collect(),
                                preferred_read_replica: p.preferred_read_replica.0,
                                records: p.records.unwrap_or_default().into(),
                                diverging_epoch: diverging_epoch(&p.diverging_epoch),
                                current_leader: fetch_leader(&p.current_leader),
                            })
                            .collect(),
                    })
                    .collect(),
                node_endpoints: Mirror::from_kp(r.node_endpoints),
            })
        }
        k::LIST_OFFSETS => {
            let r: m::ListOffsetsResponse = kp(b, v)?;
            Response::ListOffsets(ListOffsetsResponse {
                throttle_time_ms: r.throttle_time_ms,
                topics: r
                    .topics
                    .into_iter()
                    .map(|t| ListOffsetsTopicResponse {
                        name: st(t.name.0),
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                error_code: ec(p.error_code),
                                timestamp: p.timestamp,
                                offset: p.offset,
                                leader_epoch: p.leader_epoch,
                            })
                            .collect(),
                    })
                    .collect(),
            })
        }
        k::OFFSET_COMMIT => {
            let r: m::OffsetCommitResponse = kp(b, v)?;
            Response::OffsetCommit(OffsetCommitResponse {
                throttle_time_ms: r.throttle_time_ms,
                topics: r
                    .topics
                    .into_iter()
                    .map(|t| OffsetCommitTopicResponse {
                        name: st(t.name.0),
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| PartitionError {
                                partition_index: p.partition_index,
                                error_code: ec(p.error_code),
                            })
                            .collect(),
                    })
                    .collect(),
            })
        }
        k::OFFSET_FETCH => {
            let r: m::OffsetFetchResponse = kp(b, v)?;
            Response::OffsetFetch(OffsetFetchResponse {
                throttle_time_ms: r.throttle_time_ms,
                groups: r
                    .groups
                    .into_iter()
                    .map(|g| OffsetFetchGroupResponse {
                        group_id: st(g.group_id.0),
                        error_code: ec(g.error_code),
                        topics: g
                            .topics
                            .into_iter()
                            .map(|t| OffsetFetchTopicResponse {
                                name: st(t.name.0),
                                partitions: t
                                    .partitions
                                    .into_iter()
                                    .map(|p| OffsetFetchPartitionResponse {
                                        partition_index: p.partition_index,
                                        committed_offset: p.committed_offset,
                                        committed_leader_epoch: p.committed_leader_epoch,
                                        metadata: opt_st(p.metadata),
                                        error_code: ec(p.error_code),
                                    })
                                    .collect(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
        }
        k::INIT_PRODUCER_ID => {
            let r: m::InitProducerIdResponse = kp(b, v)?;
            Response::InitProducerId(InitProducerIdResponse {
                throttle_time_ms: r.throttle_time_ms,
                error_code: ec(r.error_code),
                producer_id: r.producer_id.0,
                producer_epoch: r.producer_epoch,
            })
        }
        k::FIND_COORDINATOR => {
            let r: m::FindCoordinatorResponse = kp(b, v)?;
            if v < 4 {
                // v0-3 answer one key at the top level (the key itself is not repeated).
                return Ok(Response::FindCoordinator(FindCoordinatorResponse {
                    throttle_time_ms: r.throttle_time_ms,
                    coordinators: vec![Coordinator {
                        key: String::new(),
                        node_id: r.node_id.0,
                        host: st(r.host),
                        port: r.port,
                        error_code: ec(r.error_code),
                        error_message: opt_st(r.error_message),
                    }],
                }));
            }
            Response::FindCoordinator(FindCoordinatorResponse {
                throttle_time_ms: r.throttle_time_ms,
                coordinators: r
                    .coordinators
                    .into_iter()
                    .map(|c| Coordinator {
                        key: st(c.key),
                        node_id: c.node_id.0,
                        host: st(c.host),
                        port: c.port,
                        error_code: ec(c.error_code),
                        error_message: opt_st(c.error_message),
                    })
                    .collect(),
            })
        }
        k::JOIN_GROUP => {
            let r: m::JoinGroupResponse = kp(b, v)?;
            Response::JoinGroup(JoinGroupResponse {
                throttle_time_ms: r.throttle_time_ms,
                error_code: ec(r.error_code),
                generation_id: r.generation_id,
                protocol_type: opt_st(r.protocol_type),
                protocol_name: opt_st(r.protocol_name),
                leader: st(r.leader),
                skip_assignment: r.skip_assignment,
                member_id: st(r.member_id),
                members: r
                    .members
                    .into_iter()
                    .map(|mem| JoinGroupMember {
                        member_id: st(mem.member_id),
                        group_instance_id: opt_st(mem.group_instance_id),
                        metadata: mem.metadata,
                    })
                    .collect(),
            })
        }
        k::SYNC_GROUP => {
            let r: m::SyncGroupResponse = kp(b, v)?;
            Response::SyncGroup(SyncGroupResponse {
                throttle_time_ms: r.throttle_time_ms,
                error_code: ec(r.error_code),
                protocol_type: opt_st(r.protocol_type),
                protocol_name: opt_st(r.protocol_name),
                assignment: r.assignment,
            })
        }
        k::LEAVE_GROUP => {
            let r: m::LeaveGroupResponse = kp(b, v)?;
            Response::LeaveGroup(LeaveGroupResponse {
                throttle_time_ms: r.throttle_time_ms,
                error_code: ec(r.error_code),
                members: r
                    .members
                    .into_iter()
                    .map(|mem| LeaveGroupMemberResponse {
                        member_id: st(mem.member_id),
                        group_instance_id: opt_st(mem.group_instance_id),
                        error_code: ec(mem.error_code),
                    })
                    .collect(),
            })
        }
        k::CREATE_TOPICS => {
            let r: m::CreateTopicsResponse = kp(b, v)?;
            Response::CreateTopics(CreateTopicsResponse {
                throttle_time_ms: r.throttle_time_ms,
                topics: r
                    .topics
                    .into_iter()
                    .map(|t| CreatableTopicResult {
                        name: st(t.name.0),
                        topic_id: *t.topic_id.as_bytes(),
                        error_code: ec(t.error_code),
                        error_message: opt_st(t.error_message),
                        topic_config_error_code: ec(t.topic_config_error_code),
                        num_partitions: t.num_partitions,
                        replication_factor: t.replication_factor,
                        configs: t.configs.map(|cs| {
                            cs.into_iter()
                                .map(|c| CreatableTopicConfig {
                                    name: st(c.name),
                                    value: opt_st(c.value),
                                    read_only: c.read_only,
                                    config_source: c.config_source,
                                    is_sensitive: c.is_sensitive,
                                })
                                .collect()
                        }),
                    })
                    .collect(),
            })
        }
        k::DELETE_TOPICS => {
            let r: m::DeleteTopicsResponse = kp(b, v)?;
            Response::DeleteTopics(DeleteTopicsResponse {
                throttle_time_ms: r.throttle_time_ms,
                responses: r
                    .responses
                    .into_iter()
                    .map(|t| DeletableTopicResult {
                        name: t.name.map(|n| st(n.0)),
                        topic_id: *t.topic_id.as_bytes(),
                        error_code: ec(t.error_code),
                        error_message: opt_st(t.error_message),
                    })
                    .collect(),
            })
        }
        k::CREATE_PARTITIONS => {
            let r: m::CreatePartitionsResponse = kp(b, v)?;
            Response::CreatePartitions(CreatePartitionsResponse {
                throttle_time_ms: r.throttle_time_ms,
                results: r
                    .results
                    .into_iter()
                    .map(|t| CreatePartitionsTopicResult {
                        name: st(t.name.0),
                        error_code: ec(t.error_code),
                        error_message: opt_st(t.error_message),
                    })
                    .collect(),
            })
        }
        k::DESCRIBE_CONFIGS => {
            let r: m::DescribeConfigsResponse = kp(b, v)?;
            Response::DescribeConfigs(DescribeConfigsResponse {
                throttle_time_ms: r.throttle_time_ms,
                results: r
                    .results
                    .into_iter()
                    .map(|res| DescribeConfigsResult {
                        error_code: ec(res.error_code),
                        error_message: opt_st(res.error_message),
                        resource_type: res.resource_type,
                        resource_name: st(res.resource_name),
                        configs: res
                            .configs
                            .into_iter()
                            .map(|c| DescribeConfigsEntry {
                                name: st(c.name),
                                value: opt_st(c.value),
                                read_only: c.read_only,
                                config_source: c.config_source,
                                is_sensitive: c.is_sensitive,
                                synonyms: c
                                    .synonyms
                                    .into_iter()
                                    .map(|s| DescribeConfigsSynonym {
                                        name: st(s.name),
                                        value: opt_st(s.value),
                                        source: s.source,
                                    })
                                    .collect(),
                                config_type: c.config_type,
                                documentation: opt_st(c.documentation),
                            })
                            .collect(),
                    })
                    .collect(),
            })
        }
        k::INCREMENTAL_ALTER_CONFIGS => {
            let r: m::IncrementalAlterConfigsResponse = kp(b, v)?;
            Response::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
                throttle_time_ms: r.throttle_time_ms,
                responses: r
                    .responses
                    .into_iter()
                    .map(|res| AlterConfigsResourceResponse {
                        error_code: ec(res.error_code),
                        error_message: opt_st(res.error_message),
                        resource_type: res.resource_type,
                        resource_name: st(res.resource_name),
                    })
                    .collect(),
            })
        }
        other => return Err(format!("api key {other} is not implemented by the client")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_request, encode_response};

    /// What the client encodes, the broker side decodes to the same value; what the broker side
    /// encodes, the client decodes back.
    #[test]
    fn round_trips_through_the_broker_codec() {
        let request = Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "orders".into(),
                num_partitions: 3,
                replication_factor: -1,
                assignments: Vec::new(),
                configs: vec![ConfigEntry {
                    name: "retention.ms".into(),
                    value: Some("1000".into()),
                }],
            }],
            timeout_ms: 5000,
            validate_only: false,
        });
        let (frame, v) = encode_request(7, "weir-cli", &request).expect("encode");
        let (header, decoded) = decode_request(frame.slice(4..)).expect("decode");
        assert_eq!(header.correlation_id, 7);
        assert_eq!(header.api_version, v);
        assert_eq!(header.client_id.as_deref(), Some("weir-cli"));
        assert_eq!(decoded, request);

        let response = Response::CreateTopics(CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: vec![CreatableTopicResult {
                name: "orders".into(),
                topic_id: [1; 16],
                error_code: ErrorCode::TOPIC_ALREADY_EXISTS,
                error_message: Some("exists".into()),
                num_partitions: 3,
                replication_factor: 1,
                configs: Some(Vec::new()),
                ..Default::default()
            }],
        });
        let bytes = encode_response(&header, &response).expect("encode response");
        let (corr, back) =
            decode_response(k::CREATE_TOPICS, v, bytes.slice(4..)).expect("decode response");
        assert_eq!(corr, 7);
        assert_eq!(back, response);
    }

    /// A broker checks a peer's versions with ApiVersions and may then pick a lower one.
    #[test]
    fn api_versions_and_a_chosen_version() {
        let request = Request::ApiVersions(ApiVersionsRequest {
            client_software_name: "weir-broker".into(),
            client_software_version: "1".into(),
        });
        let (frame, v) = encode_request(3, "weir-broker", &request).expect("encode");
        let (header, decoded) = decode_request(frame.slice(4..)).expect("decode");
        assert_eq!(decoded, request);
        let response = Response::ApiVersions(ApiVersionsResponse::supported());
        let bytes = encode_response(&header, &response).expect("encode response");
        let (_, back) =
            decode_response(k::API_VERSIONS, v, bytes.slice(4..)).expect("decode response");
        assert_eq!(back, response);

        let vote = Request::Vote(VoteRequest::default());
        let frame = encode_request_at_version(4, "weir-broker", &vote, 1).expect("v1");
        let (header, decoded) = decode_request(frame.slice(4..)).expect("decode v1");
        assert_eq!((header.api_key, header.api_version), (k::VOTE, 1));
        assert_eq!(decoded, vote);
        assert!(matches!(
            encode_request_at_version(5, "weir-broker", &vote, 3),
            Err(ClientError::Encode {
                api_key: k::VOTE,
                ..
            })
        ));
    }

    #[test]
    fn unimplemented_api_is_an_error() {
        let r = Request::AlterConfigs(AlterConfigsRequest::default());
        assert_eq!(
            encode_request(1, "x", &r).map(|_| ()),
            Err(ClientError::Unsupported(k::ALTER_CONFIGS))
        );
    }
}
