//! What each API needs the authorizer to allow, as Kafka's `KafkaApis` checks it (Kafka 4), and
//! what a client gets when it is not allowed:
//!
//! - a request refused as a whole is answered here (`refuse_*`: every part carries the error);
//! - a request refused in part has the refused parts taken out before its handler runs, and
//!   answered with the error after it (`split_*` return that step, a [`Post`]), so handlers only
//!   ever see what the client may do;
//! - Metadata, FindCoordinator and the authorized-operations fields are decided inside their
//!   handlers, which are given the request's [`Authz`].
//!
//! With the authorizer off every check passes and nothing is split.

use std::collections::HashSet;

use weir_protocol::requests::*;
use weir_protocol::responses::*;
use weir_protocol::{ErrorCode, Response};

use super::ResponseFuture;
use crate::authz::{AclOperation as Op, Authz, ResourceType as Rt};

/// What to do to a response once its handler has built it.
pub(super) type Post = Box<dyn FnOnce(&mut Response) + Send>;

/// `future`, with `post` applied to the response it builds (if any).
pub(super) fn then(future: ResponseFuture, post: Option<Post>) -> ResponseFuture {
    let Some(post) = post else { return future };
    Box::pin(async move {
        let mut response = future.await;
        if let Some(r) = response.as_mut() {
            post(r);
        }
        response
    })
}

/// Kafka's config resource types (DescribeConfigs, AlterConfigs, ListConfigResources).
pub(super) const CONFIG_TOPIC: i8 = 2;
pub(super) const CONFIG_BROKER: i8 = 4;
pub(super) const CONFIG_BROKER_LOGGER: i8 = 8;
pub(super) const CONFIG_CLIENT_METRICS: i8 = 16;
pub(super) const CONFIG_GROUP: i8 = 32;

/// Removes the items `allowed` refuses from `items`, returning them.
fn take_refused<T>(items: &mut Vec<T>, mut allowed: impl FnMut(&T) -> bool) -> Vec<T> {
    let (keep, refused): (Vec<T>, Vec<T>) =
        std::mem::take(items).into_iter().partition(|t| allowed(t));
    *items = keep;
    refused
}

// ---------------------------------------------------------------------------------------------
// Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, InitProducerId
// ---------------------------------------------------------------------------------------------

/// Produce: WRITE on each topic (TOPIC_AUTHORIZATION_FAILED), and WRITE on the transactional id
/// when one is given (else every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
pub(super) fn split_produce(az: &Authz, r: &mut ProduceRequest) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    let txn_refused = r
        .transactional_id
        .as_deref()
        .is_some_and(|id| !az.allows(Op::Write, Rt::TransactionalId, id));
    let code = if txn_refused {
        ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else {
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    };
    // An unknown topic id (v13+: no name) is answered UNKNOWN_TOPIC_ID by the handler, as
    // Kafka resolves ids before it authorises.
    let by_id = r.uses_topic_ids;
    let refused = take_refused(&mut r.topics, |t| {
        !txn_refused && ((by_id && t.name.is_empty()) || az.allows(Op::Write, Rt::Topic, &t.name))
    });
    if refused.is_empty() {
        return None;
    }
    let answers: Vec<ProduceTopicResponse> = refused
        .into_iter()
        .map(|t| ProduceTopicResponse {
            name: t.name,
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .iter()
                .map(|p| ProducePartitionResponse {
                    index: p.index,
                    error_code: code,
                    ..ProducePartitionResponse::default()
                })
                .collect(),
        })
        .collect();
    Some(Box::new(move |resp| {
        if let Response::Produce(p) = resp {
            p.topics.extend(answers);
        }
    }))
}

/// A Fetch from a replica (replica id >= 0) needs CLUSTER_ACTION; without it every partition is
/// TOPIC_AUTHORIZATION_FAILED, as Kafka answers.
pub(super) fn refuse_replica_fetch(az: &Authz, r: &FetchRequest) -> Option<Response> {
    if r.replica_id < 0 || az.allows_cluster(Op::ClusterAction) {
        return None;
    }
    Some(Response::Fetch(FetchResponse {
        topics: r
            .topics
            .iter()
            .map(|t| FetchTopicResponse {
                name: t.name.clone(),
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| fetch_refused(p.partition))
                    .collect(),
            })
            .collect(),
        ..FetchResponse::default()
    }))
}

fn fetch_refused(partition: i32) -> FetchPartitionResponse {
    FetchPartitionResponse {
        partition_index: partition,
        error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        ..FetchPartitionResponse::default()
    }
}

/// A consumer's Fetch: READ on each topic. Refused topics are kept out of the fetch (and of its
/// session) and answered TOPIC_AUTHORIZATION_FAILED; a partition the fetch session brings back
/// from an earlier request is checked again in the answer, so ACLs removed since apply at once.
pub(super) fn split_fetch(az: &Authz, r: &mut FetchRequest) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    // An unknown topic id (v13+: no name) is answered UNKNOWN_TOPIC_ID by the handler, as
    // Kafka resolves ids before it authorises.
    let by_id = r.uses_topic_ids;
    let refused = take_refused(&mut r.topics, |t| {
        (by_id && t.name.is_empty()) || az.allows(Op::Read, Rt::Topic, &t.name)
    });
    let az = az.clone();
    Some(Box::new(move |resp| {
        let Response::Fetch(f) = resp else { return };
        for t in &mut f.topics {
            let unknown_id = by_id && t.name.is_empty();
            if !unknown_id && !az.allows_quietly(Op::Read, Rt::Topic, &t.name) {
                for p in &mut t.partitions {
                    *p = fetch_refused(p.partition_index);
                }
            }
        }
        f.topics.extend(refused.into_iter().map(|t| {
            FetchTopicResponse {
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| fetch_refused(p.partition))
                    .collect(),
                name: t.name,
                topic_id: t.topic_id,
            }
        }));
    }))
}

/// ListOffsets: DESCRIBE on each topic.
pub(super) fn split_list_offsets(az: &Authz, r: &mut ListOffsetsRequest) -> Option<Post> {
    let refused = take_refused(&mut r.topics, |t| {
        az.allows(Op::Describe, Rt::Topic, &t.name)
    });
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::ListOffsets(l) = resp {
            l.topics.extend(refused.into_iter().map(|t| {
                ListOffsetsTopicResponse {
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                            leader_epoch: -1,
                            ..ListOffsetsPartitionResponse::default()
                        })
                        .collect(),
                    name: t.name,
                }
            }));
        }
    }))
}

/// DescribeProducers: READ on each topic, as Kafka asks.
pub(super) fn split_describe_producers(
    az: &Authz,
    r: &mut DescribeProducersRequest,
) -> Option<Post> {
    let refused = take_refused(&mut r.topics, |t| az.allows(Op::Read, Rt::Topic, &t.name));
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::DescribeProducers(d) = resp {
            d.topics.extend(refused.into_iter().map(|t| {
                DescribeProducersTopicResponse {
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&p| DescribeProducersPartitionResponse {
                            partition_index: p,
                            error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                            ..DescribeProducersPartitionResponse::default()
                        })
                        .collect(),
                    name: t.name,
                }
            }));
        }
    }))
}

/// OffsetForLeaderEpoch: CLUSTER_ACTION (a replica) covers every topic; otherwise DESCRIBE on
/// each topic (KIP-320 consumers).
pub(super) fn split_offset_for_leader_epoch(
    az: &Authz,
    r: &mut OffsetForLeaderEpochRequest,
) -> Option<Post> {
    if !az.is_enabled()
        || az.allows_quietly(Op::ClusterAction, Rt::Cluster, crate::authz::CLUSTER_NAME)
    {
        return None;
    }
    let refused = take_refused(&mut r.topics, |t| {
        az.allows(Op::Describe, Rt::Topic, &t.topic)
    });
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::OffsetForLeaderEpoch(o) = resp {
            o.topics.extend(refused.into_iter().map(|t| {
                OffsetForLeaderTopicResult {
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| EpochEndOffset {
                            error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                            partition: p.partition,
                            ..EpochEndOffset::default()
                        })
                        .collect(),
                    topic: t.topic,
                }
            }));
        }
    }))
}

/// InitProducerId: WRITE on the transactional id if there is one; an idempotent producer needs
/// IDEMPOTENT_WRITE on the cluster or WRITE on some topic (Kafka 3+).
pub(super) fn refuse_init_producer_id(az: &Authz, r: &InitProducerIdRequest) -> Option<Response> {
    let code = match &r.transactional_id {
        Some(id) if !az.allows(Op::Write, Rt::TransactionalId, id) => {
            ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        }
        Some(_) => return None,
        None if az.allows_quietly(Op::IdempotentWrite, Rt::Cluster, crate::authz::CLUSTER_NAME)
            || az.allows_any(Op::Write, Rt::Topic) =>
        {
            return None
        }
        None => ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
    };
    Some(Response::InitProducerId(InitProducerIdResponse {
        error_code: code,
        producer_id: -1,
        producer_epoch: -1,
        ..InitProducerIdResponse::default()
    }))
}

// ---------------------------------------------------------------------------------------------
// Groups and committed offsets
// ---------------------------------------------------------------------------------------------

/// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat: READ on the group.
pub(super) fn refuse_group_call(az: &Authz, request: &weir_protocol::Request) -> Option<Response> {
    use weir_protocol::Request as Rq;
    let group = match request {
        Rq::JoinGroup(r) => &r.group_id,
        Rq::SyncGroup(r) => &r.group_id,
        Rq::Heartbeat(r) => &r.group_id,
        Rq::LeaveGroup(r) => &r.group_id,
        Rq::ConsumerGroupHeartbeat(r) => &r.group_id,
        _ => return None,
    };
    if az.allows(Op::Read, Rt::Group, group) {
        return None;
    }
    let code = ErrorCode::GROUP_AUTHORIZATION_FAILED;
    Some(match request {
        Rq::JoinGroup(_) => Response::JoinGroup(JoinGroupResponse {
            error_code: code,
            generation_id: -1,
            ..JoinGroupResponse::default()
        }),
        Rq::SyncGroup(_) => Response::SyncGroup(SyncGroupResponse {
            error_code: code,
            ..SyncGroupResponse::default()
        }),
        Rq::Heartbeat(_) => Response::Heartbeat(HeartbeatResponse {
            error_code: code,
            ..HeartbeatResponse::default()
        }),
        Rq::LeaveGroup(_) => Response::LeaveGroup(LeaveGroupResponse {
            error_code: code,
            ..LeaveGroupResponse::default()
        }),
        _ => Response::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
            error_code: code,
            ..ConsumerGroupHeartbeatResponse::default()
        }),
    })
}

/// ConsumerGroupHeartbeat naming topics (Kafka 4, KAFKA-18813): every one needs DESCRIBE, else
/// TOPIC_AUTHORIZATION_FAILED (the member is not changed).
pub(super) fn refuse_consumer_group_topics(
    az: &Authz,
    r: &ConsumerGroupHeartbeatRequest,
) -> Option<Response> {
    let names = r.subscribed_topic_names.as_ref()?;
    if names.iter().all(|t| az.allows(Op::Describe, Rt::Topic, t)) {
        return None;
    }
    Some(Response::ConsumerGroupHeartbeat(
        ConsumerGroupHeartbeatResponse {
            error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            ..ConsumerGroupHeartbeatResponse::default()
        },
    ))
}

/// OffsetCommit: READ on the group (else every partition GROUP_AUTHORIZATION_FAILED), READ on
/// each topic.
pub(super) fn split_offset_commit(
    az: &Authz,
    r: &mut OffsetCommitRequest,
) -> Result<Option<Post>, Box<Response>> {
    let partition_errors = |t: &OffsetCommitTopic, code| OffsetCommitTopicResponse {
        name: t.name.clone(),
        partitions: t
            .partitions
            .iter()
            .map(|p| PartitionError {
                partition_index: p.partition_index,
                error_code: code,
            })
            .collect(),
    };
    if !az.allows(Op::Read, Rt::Group, &r.group_id) {
        return Err(Box::new(Response::OffsetCommit(OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| partition_errors(t, ErrorCode::GROUP_AUTHORIZATION_FAILED))
                .collect(),
            ..OffsetCommitResponse::default()
        })));
    }
    let refused = take_refused(&mut r.topics, |t| az.allows(Op::Read, Rt::Topic, &t.name));
    if refused.is_empty() {
        return Ok(None);
    }
    let answers: Vec<OffsetCommitTopicResponse> = refused
        .iter()
        .map(|t| partition_errors(t, ErrorCode::TOPIC_AUTHORIZATION_FAILED))
        .collect();
    Ok(Some(Box::new(move |resp| {
        if let Response::OffsetCommit(c) = resp {
            c.topics.extend(answers);
        }
    })))
}

/// OffsetFetch: DESCRIBE on each group (else that group GROUP_AUTHORIZATION_FAILED); named
/// topics need DESCRIBE (else TOPIC_AUTHORIZATION_FAILED), and an "all topics" fetch leaves out
/// the topics the client may not DESCRIBE.
pub(super) fn split_offset_fetch(az: &Authz, r: &mut OffsetFetchRequest) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    let refused_groups = take_refused(&mut r.groups, |g| {
        az.allows(Op::Describe, Rt::Group, &g.group_id)
    });
    let mut refused_topics: Vec<(String, Vec<OffsetFetchTopic>)> = Vec::new();
    for g in &mut r.groups {
        if let Some(topics) = &mut g.topics {
            let refused = take_refused(topics, |t| az.allows(Op::Describe, Rt::Topic, &t.name));
            if !refused.is_empty() {
                refused_topics.push((g.group_id.clone(), refused));
            }
        }
    }
    let az = az.clone();
    Some(Box::new(move |resp| {
        let Response::OffsetFetch(f) = resp else {
            return;
        };
        for g in &mut f.groups {
            // "All topics" answers (and anything else) only show what the client may see.
            g.topics
                .retain(|t| az.allows_quietly(Op::Describe, Rt::Topic, &t.name));
            if g.error_code != ErrorCode::NONE {
                continue;
            }
            for (_, topics) in refused_topics.iter().filter(|(id, _)| *id == g.group_id) {
                g.topics.extend(topics.iter().map(|t| {
                    OffsetFetchTopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partition_indexes
                            .iter()
                            .map(|&p| OffsetFetchPartitionResponse {
                                partition_index: p,
                                error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                                metadata: None,
                                ..OffsetFetchPartitionResponse::default()
                            })
                            .collect(),
                    }
                }));
            }
        }
        f.groups.extend(
            refused_groups
                .into_iter()
                .map(|g| OffsetFetchGroupResponse {
                    group_id: g.group_id,
                    error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
                    topics: Vec::new(),
                }),
        );
    }))
}

/// OffsetDelete: DELETE on the group (else GROUP_AUTHORIZATION_FAILED), READ on each topic.
pub(super) fn split_offset_delete(
    az: &Authz,
    r: &mut OffsetDeleteRequest,
) -> Result<Option<Post>, Box<Response>> {
    if !az.allows(Op::Delete, Rt::Group, &r.group_id) {
        return Err(Box::new(Response::OffsetDelete(OffsetDeleteResponse {
            error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
            ..OffsetDeleteResponse::default()
        })));
    }
    let refused = take_refused(&mut r.topics, |t| az.allows(Op::Read, Rt::Topic, &t.name));
    if refused.is_empty() {
        return Ok(None);
    }
    Ok(Some(Box::new(move |resp| {
        if let Response::OffsetDelete(d) = resp {
            d.topics.extend(refused.into_iter().map(|t| {
                OffsetDeleteTopicResponse {
                    partitions: t
                        .partitions
                        .iter()
                        .map(|&p| PartitionError {
                            partition_index: p,
                            error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                        })
                        .collect(),
                    name: t.name,
                }
            }));
        }
    })))
}

/// DescribeGroups: DESCRIBE on each group.
pub(super) fn split_describe_groups(az: &Authz, r: &mut DescribeGroupsRequest) -> Option<Post> {
    let refused = take_refused(&mut r.groups, |g| az.allows(Op::Describe, Rt::Group, g));
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::DescribeGroups(d) = resp {
            // Kafka answers refused groups first.
            let described = std::mem::take(&mut d.groups);
            d.groups = refused
                .into_iter()
                .map(|group_id| DescribedGroup {
                    error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
                    group_id,
                    ..DescribedGroup::default()
                })
                .chain(described)
                .collect();
        }
    }))
}

/// ConsumerGroupDescribe: DESCRIBE on each group; a group whose members subscribe to or own a
/// topic the client may not DESCRIBE is answered TOPIC_AUTHORIZATION_FAILED instead (Kafka 4);
/// authorized operations when asked.
pub(super) fn split_consumer_group_describe(
    az: &Authz,
    r: &mut ConsumerGroupDescribeRequest,
) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    let refused = take_refused(&mut r.group_ids, |g| az.allows(Op::Describe, Rt::Group, g));
    let include_operations = r.include_authorized_operations;
    let az = az.clone();
    Some(Box::new(move |resp| {
        let Response::ConsumerGroupDescribe(d) = resp else {
            return;
        };
        for g in &mut d.groups {
            if g.error_code != ErrorCode::NONE {
                continue;
            }
            let hidden = g.members.iter().any(|m| {
                m.subscribed_topic_names
                    .iter()
                    .chain(m.assignment.topic_partitions.iter().map(|t| &t.topic_name))
                    .chain(
                        m.target_assignment
                            .topic_partitions
                            .iter()
                            .map(|t| &t.topic_name),
                    )
                    .any(|t| !az.allows_quietly(Op::Describe, Rt::Topic, t))
            });
            if hidden {
                *g = ConsumerGroupDescribedGroup {
                    group_id: std::mem::take(&mut g.group_id),
                    error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                    ..ConsumerGroupDescribedGroup::default()
                };
            } else if include_operations {
                g.authorized_operations = az.operations(Rt::Group, &g.group_id);
            }
        }
        d.groups.extend(
            refused
                .into_iter()
                .map(|group_id| ConsumerGroupDescribedGroup {
                    group_id,
                    error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
                    ..ConsumerGroupDescribedGroup::default()
                }),
        );
    }))
}

/// ListGroups: every group with DESCRIBE on the cluster, else only the groups the client may
/// DESCRIBE.
pub(super) fn filter_list_groups(az: &Authz) -> Option<Post> {
    if !az.is_enabled() || az.allows_quietly(Op::Describe, Rt::Cluster, crate::authz::CLUSTER_NAME)
    {
        return None;
    }
    let az = az.clone();
    Some(Box::new(move |resp| {
        if let Response::ListGroups(l) = resp {
            l.groups
                .retain(|g| az.allows_quietly(Op::Describe, Rt::Group, &g.group_id));
        }
    }))
}

/// DeleteGroups: DELETE on each group.
pub(super) fn split_delete_groups(az: &Authz, r: &mut DeleteGroupsRequest) -> Option<Post> {
    let refused = take_refused(&mut r.groups, |g| az.allows(Op::Delete, Rt::Group, g));
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::DeleteGroups(d) = resp {
            d.results
                .extend(refused.into_iter().map(|group_id| DeleteGroupResult {
                    group_id,
                    error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
                }));
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// Topics and configs
// ---------------------------------------------------------------------------------------------

/// CreateTopics: CREATE on the cluster, or on each topic (TOPIC_AUTHORIZATION_FAILED, "Authorization
/// failed."); a created topic's configs are only returned with DESCRIBE_CONFIGS on it.
pub(super) fn split_create_topics(az: &Authz, r: &mut CreateTopicsRequest) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    let cluster_create = az.allows_quietly(Op::Create, Rt::Cluster, crate::authz::CLUSTER_NAME);
    let refused = take_refused(&mut r.topics, |t| {
        cluster_create || az.allows(Op::Create, Rt::Topic, &t.name)
    });
    let az = az.clone();
    Some(Box::new(move |resp| {
        let Response::CreateTopics(c) = resp else {
            return;
        };
        for t in &mut c.topics {
            if !az.allows_quietly(Op::DescribeConfigs, Rt::Topic, &t.name) {
                t.topic_config_error_code = ErrorCode::TOPIC_AUTHORIZATION_FAILED;
                t.configs = None;
            }
        }
        c.topics
            .extend(refused.into_iter().map(|t| CreatableTopicResult {
                topic_config_error_code: if az.allows_quietly(
                    Op::DescribeConfigs,
                    Rt::Topic,
                    &t.name,
                ) {
                    ErrorCode::NONE
                } else {
                    ErrorCode::TOPIC_AUTHORIZATION_FAILED
                },
                name: t.name,
                error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                error_message: Some("Authorization failed.".into()),
                num_partitions: -1,
                replication_factor: -1,
                ..CreatableTopicResult::default()
            }));
    }))
}

/// DeleteTopics: DELETE on each topic; by topic id, a client that may not even DESCRIBE the
/// topic is not told its name.
pub(super) fn split_delete_topics(
    az: &Authz,
    broker: &crate::broker::Broker,
    r: &mut DeleteTopicsRequest,
) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    let mut answers = Vec::new();
    r.topics.retain(|t| {
        let (name, by_id) = match &t.name {
            Some(n) => (Some(n.clone()), false),
            None => (
                broker.topics.by_id(t.topic_id).map(|tp| tp.name.clone()),
                true,
            ),
        };
        // Unknown ids are the handler's to answer (UNKNOWN_TOPIC_ID).
        let Some(name) = name else { return true };
        if by_id && !az.allows(Op::Describe, Rt::Topic, &name) {
            answers.push(DeletableTopicResult {
                name: None,
                topic_id: t.topic_id,
                error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                error_message: None,
            });
            return false;
        }
        if !az.allows(Op::Delete, Rt::Topic, &name) {
            answers.push(DeletableTopicResult {
                name: Some(name),
                topic_id: t.topic_id,
                error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                error_message: None,
            });
            return false;
        }
        true
    });
    if answers.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::DeleteTopics(d) = resp {
            d.responses.extend(answers);
        }
    }))
}

/// CreatePartitions: ALTER on each topic.
pub(super) fn split_create_partitions(az: &Authz, r: &mut CreatePartitionsRequest) -> Option<Post> {
    let refused = take_refused(&mut r.topics, |t| az.allows(Op::Alter, Rt::Topic, &t.name));
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::CreatePartitions(c) = resp {
            c.results
                .extend(refused.into_iter().map(|t| CreatePartitionsTopicResult {
                    name: t.name,
                    error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                    error_message: None,
                }));
        }
    }))
}

/// DeleteRecords: DELETE on each topic.
pub(super) fn split_delete_records(az: &Authz, r: &mut DeleteRecordsRequest) -> Option<Post> {
    let refused = take_refused(&mut r.topics, |t| az.allows(Op::Delete, Rt::Topic, &t.name));
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::DeleteRecords(d) = resp {
            d.topics.extend(refused.into_iter().map(|t| {
                DeleteRecordsTopicResult {
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark: -1,
                            error_code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                        })
                        .collect(),
                    name: t.name,
                }
            }));
        }
    }))
}

/// The resource and refusal code a config resource is checked on: brokers (and their loggers,
/// client metrics) on the cluster, topics and groups on themselves.
fn config_resource(resource_type: i8, name: &str) -> Option<(Rt, String, ErrorCode)> {
    match resource_type {
        CONFIG_BROKER | CONFIG_BROKER_LOGGER | CONFIG_CLIENT_METRICS => Some((
            Rt::Cluster,
            crate::authz::CLUSTER_NAME.to_string(),
            ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
        )),
        CONFIG_TOPIC => Some((
            Rt::Topic,
            name.to_string(),
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        )),
        CONFIG_GROUP => Some((
            Rt::Group,
            name.to_string(),
            ErrorCode::GROUP_AUTHORIZATION_FAILED,
        )),
        // Unknown types are the handler's to refuse.
        _ => None,
    }
}

/// Why a config resource may not be touched with `op`, if it may not.
fn config_refusal(az: &Authz, op: Op, resource_type: i8, name: &str) -> Option<ErrorCode> {
    let (rt, resource, code) = config_resource(resource_type, name)?;
    (!az.allows(op, rt, &resource)).then_some(code)
}

/// DescribeConfigs: DESCRIBE_CONFIGS on the cluster (brokers), the topic or the group.
pub(super) fn split_describe_configs(az: &Authz, r: &mut DescribeConfigsRequest) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    let mut answers = Vec::new();
    r.resources.retain(|res| {
        match config_refusal(
            az,
            Op::DescribeConfigs,
            res.resource_type,
            &res.resource_name,
        ) {
            None => true,
            Some(code) => {
                answers.push(DescribeConfigsResult {
                    error_code: code,
                    error_message: None,
                    resource_type: res.resource_type,
                    resource_name: res.resource_name.clone(),
                    configs: Vec::new(),
                });
                false
            }
        }
    });
    if answers.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::DescribeConfigs(d) = resp {
            d.results.extend(answers);
        }
    }))
}

fn alter_refused(res_type: i8, name: &str, code: ErrorCode) -> AlterConfigsResourceResponse {
    AlterConfigsResourceResponse {
        error_code: code,
        error_message: None,
        resource_type: res_type,
        resource_name: name.to_string(),
    }
}

/// AlterConfigs: ALTER_CONFIGS on the cluster (brokers), the topic or the group.
pub(super) fn split_alter_configs(az: &Authz, r: &mut AlterConfigsRequest) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    let mut answers = Vec::new();
    r.resources.retain(|res| {
        match config_refusal(az, Op::AlterConfigs, res.resource_type, &res.resource_name) {
            None => true,
            Some(code) => {
                answers.push(alter_refused(res.resource_type, &res.resource_name, code));
                false
            }
        }
    });
    if answers.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::AlterConfigs(a) = resp {
            a.responses.extend(answers);
        }
    }))
}

/// IncrementalAlterConfigs: as AlterConfigs.
pub(super) fn split_incremental_alter_configs(
    az: &Authz,
    r: &mut IncrementalAlterConfigsRequest,
) -> Option<Post> {
    if !az.is_enabled() {
        return None;
    }
    let mut answers = Vec::new();
    r.resources.retain(|res| {
        match config_refusal(az, Op::AlterConfigs, res.resource_type, &res.resource_name) {
            None => true,
            Some(code) => {
                answers.push(alter_refused(res.resource_type, &res.resource_name, code));
                false
            }
        }
    });
    if answers.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        if let Response::IncrementalAlterConfigs(a) = resp {
            a.responses.extend(answers);
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// Cluster operations
// ---------------------------------------------------------------------------------------------

/// APIs that need one operation on the cluster, refused as a whole with
/// CLUSTER_AUTHORIZATION_FAILED: the ACL APIs (DESCRIBE, ALTER), SCRAM credentials (DESCRIBE,
/// ALTER), leader election and reassignments (ALTER, DESCRIBE), and the inter-broker APIs: Raft,
/// share state, WriteTxnMarkers (CLUSTER_ACTION, CVE-2018-1288's lesson: only brokers may speak
/// for brokers).
pub(super) fn refuse_cluster_call(
    az: &Authz,
    request: &weir_protocol::Request,
) -> Option<Response> {
    use weir_protocol::Request as Rq;
    let op = match request {
        Rq::DescribeAcls(_)
        | Rq::DescribeUserScramCredentials(_)
        | Rq::ListPartitionReassignments(_)
        | Rq::DescribeQuorum(_) => Op::Describe,
        Rq::CreateAcls(_)
        | Rq::DeleteAcls(_)
        | Rq::AlterUserScramCredentials(_)
        | Rq::ElectLeaders(_)
        | Rq::AlterPartitionReassignments(_) => Op::Alter,
        Rq::Vote(_)
        | Rq::BeginQuorumEpoch(_)
        | Rq::EndQuorumEpoch(_)
        | Rq::InitializeShareGroupState(_)
        | Rq::ReadShareGroupState(_)
        | Rq::WriteShareGroupState(_)
        | Rq::DeleteShareGroupState(_)
        | Rq::ReadShareGroupStateSummary(_)
        | Rq::WriteTxnMarkers(_) => Op::ClusterAction,
        // As Kafka's KafkaApis: quotas are configs of the cluster.
        Rq::DescribeClientQuotas(_) => Op::DescribeConfigs,
        Rq::AlterClientQuotas(_) => Op::AlterConfigs,
        _ => return None,
    };
    if az.allows_cluster(op) {
        return None;
    }
    let code = ErrorCode::CLUSTER_AUTHORIZATION_FAILED;
    let message = Some(format!("not authorized for {op} on the cluster"));
    Some(match request {
        Rq::DescribeAcls(_) => Response::DescribeAcls(DescribeAclsResponse {
            error_code: code,
            error_message: message,
            ..DescribeAclsResponse::default()
        }),
        Rq::CreateAcls(r) => Response::CreateAcls(CreateAclsResponse {
            results: r
                .creations
                .iter()
                .map(|_| AclCreationResult {
                    error_code: code,
                    error_message: message.clone(),
                })
                .collect(),
            ..CreateAclsResponse::default()
        }),
        Rq::DeleteAcls(r) => Response::DeleteAcls(DeleteAclsResponse {
            filter_results: r
                .filters
                .iter()
                .map(|_| DeleteAclsFilterResult {
                    error_code: code,
                    error_message: message.clone(),
                    matching_acls: Vec::new(),
                })
                .collect(),
            ..DeleteAclsResponse::default()
        }),
        Rq::DescribeUserScramCredentials(_) => {
            Response::DescribeUserScramCredentials(DescribeUserScramCredentialsResponse {
                error_code: code,
                error_message: message,
                ..DescribeUserScramCredentialsResponse::default()
            })
        }
        Rq::AlterUserScramCredentials(r) => {
            let mut users: Vec<&String> = r
                .deletions
                .iter()
                .map(|d| &d.name)
                .chain(r.upsertions.iter().map(|u| &u.name))
                .collect();
            let mut seen = HashSet::new();
            users.retain(|u| seen.insert(*u));
            Response::AlterUserScramCredentials(AlterUserScramCredentialsResponse {
                results: users
                    .into_iter()
                    .map(|user| AlterUserScramCredentialsResult {
                        user: user.clone(),
                        error_code: code,
                        error_message: message.clone(),
                    })
                    .collect(),
                ..AlterUserScramCredentialsResponse::default()
            })
        }
        Rq::ElectLeaders(r) => Response::ElectLeaders(ElectLeadersResponse {
            error_code: code,
            replica_election_results: r
                .topic_partitions
                .iter()
                .flatten()
                .map(|t| ReplicaElectionResult {
                    topic: t.topic.clone(),
                    partition_result: t
                        .partitions
                        .iter()
                        .map(|&p| ElectLeadersPartitionResult {
                            partition_id: p,
                            error_code: code,
                            error_message: message.clone(),
                        })
                        .collect(),
                })
                .collect(),
            ..ElectLeadersResponse::default()
        }),
        Rq::AlterPartitionReassignments(_) => {
            Response::AlterPartitionReassignments(AlterPartitionReassignmentsResponse {
                error_code: code,
                error_message: message,
                ..AlterPartitionReassignmentsResponse::default()
            })
        }
        Rq::ListPartitionReassignments(_) => {
            Response::ListPartitionReassignments(ListPartitionReassignmentsResponse {
                error_code: code,
                error_message: message,
                ..ListPartitionReassignmentsResponse::default()
            })
        }
        Rq::DescribeQuorum(_) => Response::DescribeQuorum(DescribeQuorumResponse {
            error_code: code,
            error_message: message,
            ..DescribeQuorumResponse::default()
        }),
        Rq::DescribeClientQuotas(_) => {
            Response::DescribeClientQuotas(DescribeClientQuotasResponse {
                error_code: code,
                error_message: message,
                ..DescribeClientQuotasResponse::default()
            })
        }
        Rq::AlterClientQuotas(r) => Response::AlterClientQuotas(AlterClientQuotasResponse {
            entries: r
                .entries
                .iter()
                .map(|e| QuotaAlterationResult {
                    error_code: code,
                    error_message: message.clone(),
                    entity: e.entity.clone(),
                })
                .collect(),
            ..AlterClientQuotasResponse::default()
        }),
        Rq::Vote(_) => Response::Vote(VoteResponse {
            error_code: code,
            ..VoteResponse::default()
        }),
        Rq::BeginQuorumEpoch(_) => Response::BeginQuorumEpoch(BeginQuorumEpochResponse {
            error_code: code,
            ..BeginQuorumEpochResponse::default()
        }),
        // As Kafka: every partition of every marker refused.
        Rq::WriteTxnMarkers(r) => {
            use weir_protocol::transactions::{
                WritableTxnMarkerPartitionResult, WritableTxnMarkerResult,
                WritableTxnMarkerTopicResult, WriteTxnMarkersResponse,
            };
            Response::WriteTxnMarkers(WriteTxnMarkersResponse {
                markers: r
                    .markers
                    .iter()
                    .map(|m| WritableTxnMarkerResult {
                        producer_id: m.producer_id,
                        topics: m
                            .topics
                            .iter()
                            .map(|t| WritableTxnMarkerTopicResult {
                                name: t.name.clone(),
                                partitions: t
                                    .partition_indexes
                                    .iter()
                                    .map(|&p| WritableTxnMarkerPartitionResult {
                                        partition_index: p,
                                        error_code: code,
                                    })
                                    .collect(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
        }
        // The share state persister: refused whole, as Kafka answers CLUSTER_AUTHORIZATION_FAILED.
        Rq::InitializeShareGroupState(r) => Response::InitializeShareGroupState(
            weir_protocol::responses::InitializeShareGroupStateResponse {
                results: share_state_refused(&r.topics, |t| {
                    (
                        t.topic_id,
                        t.partitions.iter().map(|p| p.partition).collect(),
                    )
                }),
            },
        ),
        Rq::WriteShareGroupState(r) => {
            Response::WriteShareGroupState(weir_protocol::responses::WriteShareGroupStateResponse {
                results: share_state_refused(&r.topics, |t| {
                    (
                        t.topic_id,
                        t.partitions.iter().map(|p| p.partition).collect(),
                    )
                }),
            })
        }
        Rq::DeleteShareGroupState(r) => Response::DeleteShareGroupState(
            weir_protocol::responses::DeleteShareGroupStateResponse {
                results: share_state_refused(&r.topics, |t| {
                    (
                        t.topic_id,
                        t.partitions.iter().map(|p| p.partition).collect(),
                    )
                }),
            },
        ),
        Rq::ReadShareGroupState(r) => {
            Response::ReadShareGroupState(weir_protocol::responses::ReadShareGroupStateResponse {
                results: r
                    .topics
                    .iter()
                    .map(|t| weir_protocol::responses::ReadShareStateTopicResult {
                        topic_id: t.topic_id,
                        partitions: t
                            .partitions
                            .iter()
                            .map(
                                |p| weir_protocol::responses::ReadShareStatePartitionResult {
                                    partition: p.partition,
                                    error_code: code,
                                    error_message: message.clone(),
                                    start_offset: -1,
                                    ..Default::default()
                                },
                            )
                            .collect(),
                    })
                    .collect(),
            })
        }
        Rq::ReadShareGroupStateSummary(r) => Response::ReadShareGroupStateSummary(
            weir_protocol::responses::ReadShareGroupStateSummaryResponse {
                results: r
                    .topics
                    .iter()
                    .map(
                        |t| weir_protocol::responses::ReadShareStateSummaryTopicResult {
                            topic_id: t.topic_id,
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| {
                                    weir_protocol::responses::ReadShareStateSummaryPartitionResult {
                                        partition: p.partition,
                                        error_code: code,
                                        error_message: message.clone(),
                                        start_offset: -1,
                                        leader_epoch: -1,
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                        },
                    )
                    .collect(),
            },
        ),
        _ => Response::EndQuorumEpoch(EndQuorumEpochResponse {
            error_code: code,
            ..EndQuorumEpochResponse::default()
        }),
    })
}

/// Every partition of a share state request, answered CLUSTER_AUTHORIZATION_FAILED.
fn share_state_refused<T>(
    topics: &[T],
    parts: impl Fn(&T) -> ([u8; 16], Vec<i32>),
) -> Vec<weir_protocol::responses::ShareStateTopicResult> {
    topics
        .iter()
        .map(|t| {
            let (topic_id, partitions) = parts(t);
            weir_protocol::responses::ShareStateTopicResult {
                topic_id,
                partitions: partitions
                    .into_iter()
                    .map(
                        |partition| weir_protocol::responses::ShareStatePartitionResult {
                            partition,
                            error_code: ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
                            error_message: None,
                        },
                    )
                    .collect(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Share groups (KIP-932)
// ---------------------------------------------------------------------------------------------

/// The share group APIs refused as a whole, as Kafka 4.1 checks them:
/// ShareGroupHeartbeat (READ on the group, DESCRIBE on every subscribed topic), ShareFetch and
/// ShareAcknowledge (READ on the group, READ on every topic named; Kafka answers a refused topic
/// per partition, Weir refuses the request, so a client never holds records it may not
/// acknowledge), AlterShareGroupOffsets (READ on the group) and DeleteShareGroupOffsets (DELETE
/// on the group).
pub(super) fn refuse_share_call(
    az: &Authz,
    broker: &crate::broker::Broker,
    request: &weir_protocol::Request,
) -> Option<Response> {
    use weir_protocol::Request as Rq;
    if !az.is_enabled() {
        return None;
    }
    let readable = |id: [u8; 16]| match broker.topics.by_id(id) {
        Some(t) => az.allows(Op::Read, Rt::Topic, &t.name),
        // Unknown ids are the handler's to answer (UNKNOWN_TOPIC_ID).
        None => true,
    };
    let group_code = ErrorCode::GROUP_AUTHORIZATION_FAILED;
    let topic_code = ErrorCode::TOPIC_AUTHORIZATION_FAILED;
    let code = match request {
        Rq::ShareGroupHeartbeat(r) => {
            if !az.allows(Op::Read, Rt::Group, &r.group_id) {
                group_code
            } else if r
                .subscribed_topic_names
                .iter()
                .flatten()
                .any(|t| !az.allows(Op::Describe, Rt::Topic, t))
            {
                topic_code
            } else {
                return None;
            }
        }
        Rq::ShareFetch(r) => {
            let group = r.group_id.as_deref().unwrap_or_default();
            if !az.allows(Op::Read, Rt::Group, group) {
                group_code
            } else if !r.topics.iter().all(|t| readable(t.topic_id)) {
                topic_code
            } else {
                return None;
            }
        }
        Rq::ShareAcknowledge(r) => {
            let group = r.group_id.as_deref().unwrap_or_default();
            if !az.allows(Op::Read, Rt::Group, group) {
                group_code
            } else if !r.topics.iter().all(|t| readable(t.topic_id)) {
                topic_code
            } else {
                return None;
            }
        }
        Rq::AlterShareGroupOffsets(r) if !az.allows(Op::Read, Rt::Group, &r.group_id) => group_code,
        Rq::DeleteShareGroupOffsets(r) if !az.allows(Op::Delete, Rt::Group, &r.group_id) => {
            group_code
        }
        _ => return None,
    };
    Some(match request {
        Rq::ShareGroupHeartbeat(_) => Response::ShareGroupHeartbeat(ShareGroupHeartbeatResponse {
            error_code: code,
            member_epoch: -1,
            ..ShareGroupHeartbeatResponse::default()
        }),
        Rq::ShareFetch(_) => Response::ShareFetch(ShareFetchResponse {
            error_code: code,
            ..ShareFetchResponse::default()
        }),
        Rq::ShareAcknowledge(_) => Response::ShareAcknowledge(ShareAcknowledgeResponse {
            error_code: code,
            ..ShareAcknowledgeResponse::default()
        }),
        Rq::AlterShareGroupOffsets(_) => {
            Response::AlterShareGroupOffsets(AlterShareGroupOffsetsResponse {
                error_code: code,
                ..AlterShareGroupOffsetsResponse::default()
            })
        }
        _ => Response::DeleteShareGroupOffsets(DeleteShareGroupOffsetsResponse {
            error_code: code,
            ..DeleteShareGroupOffsetsResponse::default()
        }),
    })
}

/// ShareGroupDescribe: DESCRIBE on each group (else that group GROUP_AUTHORIZATION_FAILED).
pub(super) fn split_share_group_describe(
    az: &Authz,
    r: &mut ShareGroupDescribeRequest,
) -> Option<Post> {
    let refused = take_refused(&mut r.group_ids, |g| az.allows(Op::Describe, Rt::Group, g));
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        let Response::ShareGroupDescribe(d) = resp else {
            return;
        };
        d.groups.extend(
            refused
                .into_iter()
                .map(|group_id| ShareGroupDescribedGroup {
                    error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
                    group_id,
                    ..ShareGroupDescribedGroup::default()
                }),
        );
    }))
}

/// DescribeShareGroupOffsets: DESCRIBE on each group (else that group
/// GROUP_AUTHORIZATION_FAILED).
pub(super) fn split_describe_share_group_offsets(
    az: &Authz,
    r: &mut DescribeShareGroupOffsetsRequest,
) -> Option<Post> {
    let refused = take_refused(&mut r.groups, |g| {
        az.allows(Op::Describe, Rt::Group, &g.group_id)
    });
    if refused.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| {
        let Response::DescribeShareGroupOffsets(d) = resp else {
            return;
        };
        d.groups.extend(
            refused
                .into_iter()
                .map(|g| DescribeShareGroupOffsetsGroupResponse {
                    group_id: g.group_id,
                    topics: Vec::new(),
                    error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
                    error_message: None,
                }),
        );
    }))
}
