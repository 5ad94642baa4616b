//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups, DescribeGroups, DeleteGroups, and the
//! committed-offset APIs (OffsetCommit, OffsetFetch, OffsetDelete).

use std::sync::Arc;

use weir_protocol::requests::{
    DeleteGroupsRequest, DescribeGroupsRequest, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use weir_protocol::responses::{
    DeleteGroupResult, DeleteGroupsResponse, DescribeGroupsResponse, DescribedGroup,
    DescribedGroupMember, HeartbeatResponse, JoinGroupMember, JoinGroupResponse,
    LeaveGroupMemberResponse, LeaveGroupResponse, ListGroupsResponse, ListedGroup,
    OffsetCommitResponse, OffsetCommitTopicResponse, OffsetDeleteResponse,
    OffsetDeleteTopicResponse, OffsetFetchGroupResponse, OffsetFetchPartitionResponse,
    OffsetFetchResponse, OffsetFetchTopicResponse, PartitionError, SyncGroupResponse,
};
use weir_protocol::ErrorCode;

use super::{blocking, RequestContext};
use crate::authz::{authorized_operations, ResourceType};
use crate::broker::Broker;
use crate::groups::{GroupState, JoinOutcome, JoinRequest, Pending, SyncOutcome};
use crate::offsets::CommittedOffset;

/// Kafka's offset.metadata.max.bytes.
const MAX_OFFSET_METADATA_BYTES: usize = 4096;

fn join_response(o: JoinOutcome) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: o.error,
        generation_id: o.generation_id,
        protocol_type: o.protocol_type,
        protocol_name: o.protocol_name,
        leader: o.leader,
        member_id: o.member_id,
        members: o
            .members
            .into_iter()
            .map(|m| JoinGroupMember {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                metadata: m.metadata,
            })
            .collect(),
        ..JoinGroupResponse::default()
    }
}

pub async fn join_group(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    client_id: String,
    version: i16,
    r: JoinGroupRequest,
) -> JoinGroupResponse {
    let request = JoinRequest {
        group_id: r.group_id,
        member_id: r.member_id.clone(),
        group_instance_id: r.group_instance_id,
        client_id,
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: r.session_timeout_ms,
        // v0 had no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if r.rebalance_timeout_ms > 0 {
            r.rebalance_timeout_ms
        } else {
            r.session_timeout_ms
        },
        protocol_type: r.protocol_type,
        protocols: r
            .protocols
            .into_iter()
            .map(|p| (p.name, p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let now = broker.now_ms();
    let pending = broker.groups.lock().join(request, now);
    let outcome = match pending {
        Pending::Ready(o) => o,
        Pending::Wait(rx) => rx.await.unwrap_or_else(|_| JoinOutcome {
            error: ErrorCode::UNKNOWN_MEMBER_ID,
            generation_id: -1,
            member_id: r.member_id,
            ..JoinOutcome::default()
        }),
    };
    join_response(outcome)
}

pub async fn sync_group(broker: &Arc<Broker>, r: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = r
        .assignments
        .into_iter()
        .map(|a| (a.member_id, a.assignment))
        .collect();
    let pending =
        broker
            .groups
            .lock()
            .sync(&r.group_id, &r.member_id, r.generation_id, assignments);
    let outcome = match pending {
        Pending::Ready(o) => o,
        Pending::Wait(rx) => rx.await.unwrap_or(SyncOutcome {
            error: ErrorCode::REBALANCE_IN_PROGRESS,
            ..SyncOutcome::default()
        }),
    };
    // SyncGroup v5 names the protocol the member thinks it uses; a mismatch is a client bug.
    if outcome.error == ErrorCode::NONE
        && (r
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != outcome.protocol_type.as_ref())
            || r.protocol_name
                .as_ref()
                .is_some_and(|n| Some(n) != outcome.protocol_name.as_ref()))
    {
        return SyncGroupResponse {
            error_code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
            ..SyncGroupResponse::default()
        };
    }
    SyncGroupResponse {
        error_code: outcome.error,
        protocol_type: outcome.protocol_type,
        protocol_name: outcome.protocol_name,
        assignment: outcome.assignment,
        ..SyncGroupResponse::default()
    }
}

pub fn heartbeat(broker: &Broker, r: HeartbeatRequest) -> HeartbeatResponse {
    let now = broker.now_ms();
    let error_code =
        broker
            .groups
            .lock()
            .heartbeat(&r.group_id, &r.member_id, r.generation_id, now);
    HeartbeatResponse {
        error_code,
        ..HeartbeatResponse::default()
    }
}

pub fn leave_group(broker: &Broker, r: LeaveGroupRequest) -> LeaveGroupResponse {
    let now = broker.now_ms();
    let members: Vec<(String, Option<String>)> = r
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
        .collect();
    let (error_code, results) = broker.groups.lock().leave(&r.group_id, &members, now);
    // Pre-v3 requests name one member and carry its result at the top level.
    let single = if members.len() == 1 {
        results.first().copied()
    } else {
        None
    };
    LeaveGroupResponse {
        error_code: single.unwrap_or(error_code),
        members: r
            .members
            .into_iter()
            .zip(results)
            .map(|(m, error_code)| LeaveGroupMemberResponse {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                error_code,
            })
            .collect(),
        ..LeaveGroupResponse::default()
    }
}

pub fn list_groups(broker: &Broker, r: ListGroupsRequest) -> ListGroupsResponse {
    let groups = broker
        .groups
        .lock()
        .list()
        .into_iter()
        .filter(|(_, _, state)| {
            r.states_filter.is_empty()
                || r.states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state.kafka_name()))
        })
        .map(|(group_id, protocol_type, state)| ListedGroup {
            group_id,
            protocol_type,
            group_state: state.kafka_name().to_string(),
        })
        .collect();
    ListGroupsResponse {
        groups,
        ..ListGroupsResponse::default()
    }
}

pub fn describe_groups(broker: &Broker, r: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let coordinator = broker.groups.lock();
    let mut groups: Vec<DescribedGroup> = r
        .groups
        .into_iter()
        .map(|group_id| match coordinator.describe(&group_id) {
            Some(d) => DescribedGroup {
                error_code: ErrorCode::NONE,
                group_id,
                group_state: d.state.kafka_name().to_string(),
                protocol_type: d.protocol_type,
                protocol_data: d.protocol,
                members: d
                    .members
                    .into_iter()
                    .map(|m| DescribedGroupMember {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        member_metadata: m.metadata,
                        member_assignment: m.assignment,
                    })
                    .collect(),
                ..DescribedGroup::default()
            },
            // Kafka describes an unknown group as "Dead" with no error.
            None => DescribedGroup {
                group_id,
                group_state: "Dead".into(),
                ..DescribedGroup::default()
            },
        })
        .collect();
    if r.include_authorized_operations {
        // As Kafka: for every group answered without an error, unknown ("Dead") ones included.
        for g in groups
            .iter_mut()
            .filter(|g| g.error_code == ErrorCode::NONE)
        {
            g.authorized_operations = authorized_operations(ResourceType::Group, &g.group_id);
        }
    }
    DescribeGroupsResponse {
        groups,
        ..DescribeGroupsResponse::default()
    }
}

pub async fn delete_groups(broker: &Arc<Broker>, r: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(r.groups.len());
    for group_id in r.groups {
        let committed: Vec<(String, i32)> = broker
            .offsets
            .fetch_all(&group_id)
            .into_iter()
            .map(|(t, p, _)| (t, p))
            .collect();
        let mut error_code = broker.groups.lock().delete(&group_id);
        if error_code == ErrorCode::GROUP_ID_NOT_FOUND && !committed.is_empty() {
            error_code = ErrorCode::NONE;
        }
        if error_code == ErrorCode::NONE {
            let b = broker.clone();
            let g = group_id.clone();
            let now = broker.now_ms();
            if !matches!(
                blocking(move || b.offsets.delete(&g, &committed, now)).await,
                Some(Ok(()))
            ) {
                error_code = ErrorCode::KAFKA_STORAGE_ERROR;
            }
        }
        results.push(DeleteGroupResult {
            group_id,
            error_code,
        });
    }
    DeleteGroupsResponse {
        results,
        ..DeleteGroupsResponse::default()
    }
}

pub async fn offset_commit(broker: &Arc<Broker>, r: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_error = if r.group_id.is_empty() {
        ErrorCode::INVALID_GROUP_ID
    } else {
        broker
            .groups
            .lock()
            .validate_commit(&r.group_id, &r.member_id, r.generation_id)
    };
    let now = broker.now_ms();
    let mut to_commit = Vec::new();
    let mut topics: Vec<OffsetCommitTopicResponse> = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        let known = broker.topics.get(&t.name);
        let partitions = t
            .partitions
            .into_iter()
            .map(|p| {
                let error_code = if group_error != ErrorCode::NONE {
                    group_error
                } else if known.as_ref().is_none_or(|k| {
                    usize::try_from(p.partition_index).map_or(true, |i| i >= k.partitions.len())
                }) {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else if p
                    .committed_metadata
                    .as_ref()
                    .is_some_and(|m| m.len() > MAX_OFFSET_METADATA_BYTES)
                {
                    ErrorCode::OFFSET_METADATA_TOO_LARGE
                } else {
                    to_commit.push((
                        t.name.clone(),
                        p.partition_index,
                        CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata,
                            commit_timestamp_ms: now,
                        },
                    ));
                    ErrorCode::NONE
                };
                PartitionError {
                    partition_index: p.partition_index,
                    error_code,
                }
            })
            .collect();
        topics.push(OffsetCommitTopicResponse {
            name: t.name,
            partitions,
        });
    }
    if !to_commit.is_empty() {
        if group_error == ErrorCode::NONE {
            broker.groups.lock().ensure_group(&r.group_id);
        }
        let b = broker.clone();
        let group = r.group_id.clone();
        let committed = blocking(move || b.offsets.commit(&group, &to_commit, now)).await;
        if !matches!(committed, Some(Ok(()))) {
            tracing::error!(group = %r.group_id, "offset commit failed to reach the log");
            for t in &mut topics {
                for p in &mut t.partitions {
                    if p.error_code == ErrorCode::NONE {
                        p.error_code = ErrorCode::COORDINATOR_NOT_AVAILABLE;
                    }
                }
            }
        }
    }
    OffsetCommitResponse {
        topics,
        ..OffsetCommitResponse::default()
    }
}

pub fn offset_fetch(broker: &Broker, r: OffsetFetchRequest) -> OffsetFetchResponse {
    let groups = r
        .groups
        .into_iter()
        .map(|g| {
            let topics: Vec<OffsetFetchTopicResponse> = match g.topics {
                None => {
                    let mut out: Vec<OffsetFetchTopicResponse> = Vec::new();
                    for (topic, partition, c) in broker.offsets.fetch_all(&g.group_id) {
                        let p = OffsetFetchPartitionResponse {
                            partition_index: partition,
                            committed_offset: c.offset,
                            committed_leader_epoch: c.leader_epoch,
                            metadata: c.metadata,
                            error_code: ErrorCode::NONE,
                        };
                        match out.last_mut() {
                            Some(t) if t.name == topic => t.partitions.push(p),
                            _ => out.push(OffsetFetchTopicResponse {
                                name: topic,
                                partitions: vec![p],
                            }),
                        }
                    }
                    out
                }
                Some(topics) => topics
                    .into_iter()
                    .map(|t| OffsetFetchTopicResponse {
                        partitions: t
                            .partition_indexes
                            .iter()
                            .map(|&p| match broker.offsets.fetch(&g.group_id, &t.name, p) {
                                Some(c) => OffsetFetchPartitionResponse {
                                    partition_index: p,
                                    committed_offset: c.offset,
                                    committed_leader_epoch: c.leader_epoch,
                                    metadata: c.metadata,
                                    error_code: ErrorCode::NONE,
                                },
                                None => OffsetFetchPartitionResponse {
                                    partition_index: p,
                                    ..OffsetFetchPartitionResponse::default()
                                },
                            })
                            .collect(),
                        name: t.name,
                    })
                    .collect(),
            };
            OffsetFetchGroupResponse {
                group_id: g.group_id,
                error_code: ErrorCode::NONE,
                topics,
            }
        })
        .collect();
    OffsetFetchResponse {
        groups,
        ..OffsetFetchResponse::default()
    }
}

pub async fn offset_delete(broker: &Arc<Broker>, r: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let state = broker.groups.lock().group_state(&r.group_id);
    let has_offsets = !broker.offsets.fetch_all(&r.group_id).is_empty();
    if state.is_none() && !has_offsets {
        return OffsetDeleteResponse {
            error_code: ErrorCode::GROUP_ID_NOT_FOUND,
            ..OffsetDeleteResponse::default()
        };
    }
    // Kafka refuses to delete offsets of topics an active group consumes; without decoding the
    // consumer protocol's subscriptions, any member makes every topic count as subscribed.
    let active = state.is_some_and(|s| s != GroupState::Empty);
    let mut to_delete = Vec::new();
    let topics = r
        .topics
        .into_iter()
        .map(|t| OffsetDeleteTopicResponse {
            partitions: t
                .partitions
                .iter()
                .map(|&p| {
                    let error_code = if active {
                        ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                    } else {
                        to_delete.push((t.name.clone(), p));
                        ErrorCode::NONE
                    };
                    PartitionError {
                        partition_index: p,
                        error_code,
                    }
                })
                .collect(),
            name: t.name,
        })
        .collect();
    let b = broker.clone();
    let group = r.group_id.clone();
    let now = broker.now_ms();
    let error_code = match blocking(move || b.offsets.delete(&group, &to_delete, now)).await {
        Some(Ok(())) => ErrorCode::NONE,
        _ => ErrorCode::KAFKA_STORAGE_ERROR,
    };
    OffsetDeleteResponse {
        error_code,
        topics,
        ..OffsetDeleteResponse::default()
    }
}
