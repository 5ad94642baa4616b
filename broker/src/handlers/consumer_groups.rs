//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups, DescribeGroups, DeleteGroups, and the
//! committed-offset APIs (OffsetCommit, OffsetFetch, OffsetDelete).
//!
//! Membership changes and offset changes are applied before a handler returns (in request order,
//! see `handlers`); the returned futures only wait, for a parked join or sync to be answered or
//! for committed offsets to become durable.

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
use weir_protocol::{ErrorCode, Response};

use super::{blocking, RequestContext, ResponseFuture};
use crate::authz::{authorized_operations, ResourceType};
use crate::broker::Broker;
use crate::groups::{CommitIdentity, JoinOutcome, JoinRequest, Pending, SyncOutcome, SyncRequest};
use crate::offsets::{CommittedOffset, StagedChange};

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

pub fn join_group(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    client_id: String,
    version: i16,
    r: JoinGroupRequest,
) -> ResponseFuture {
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
    let member_id = r.member_id;
    Box::pin(async move {
        let outcome = match pending {
            Pending::Ready(o) => o,
            Pending::Wait(rx) => rx.await.unwrap_or_else(|_| JoinOutcome {
                error: ErrorCode::UNKNOWN_MEMBER_ID,
                generation_id: -1,
                member_id,
                ..JoinOutcome::default()
            }),
        };
        Some(Response::JoinGroup(join_response(outcome)))
    })
}

pub fn sync_group(broker: &Arc<Broker>, r: SyncGroupRequest) -> ResponseFuture {
    let request = SyncRequest {
        group_id: r.group_id,
        member_id: r.member_id,
        group_instance_id: r.group_instance_id,
        generation_id: r.generation_id,
        protocol_type: r.protocol_type,
        protocol_name: r.protocol_name,
        assignments: r
            .assignments
            .into_iter()
            .map(|a| (a.member_id, a.assignment))
            .collect(),
    };
    let pending = broker.groups.lock().sync(request);
    Box::pin(async move {
        let outcome = match pending {
            Pending::Ready(o) => o,
            Pending::Wait(rx) => rx.await.unwrap_or(SyncOutcome {
                error: ErrorCode::REBALANCE_IN_PROGRESS,
                ..SyncOutcome::default()
            }),
        };
        Some(Response::SyncGroup(SyncGroupResponse {
            error_code: outcome.error,
            protocol_type: outcome.protocol_type,
            protocol_name: outcome.protocol_name,
            assignment: outcome.assignment,
            ..SyncGroupResponse::default()
        }))
    })
}

pub fn heartbeat(broker: &Broker, r: HeartbeatRequest) -> HeartbeatResponse {
    let now = broker.now_ms();
    let error_code = broker.groups.lock().heartbeat(
        &r.group_id,
        &r.member_id,
        r.group_instance_id.as_deref(),
        r.generation_id,
        now,
    );
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

/// Waits, off the async threads, until every staged offset change is durable.
async fn finish_staged(broker: Arc<Broker>, staged: Vec<StagedChange>) -> bool {
    if staged.iter().all(StagedChange::is_complete) {
        return staged.into_iter().all(|s| broker.offsets.finish(s).is_ok());
    }
    blocking(move || staged.into_iter().all(|s| broker.offsets.finish(s).is_ok()))
        .await
        .unwrap_or(false)
}

pub fn delete_groups(broker: &Arc<Broker>, r: DeleteGroupsRequest) -> ResponseFuture {
    let now = broker.now_ms();
    let mut results = Vec::with_capacity(r.groups.len());
    // Per group: the staged tombstones of its offsets, if it was deleted.
    let mut staged: Vec<Option<StagedChange>> = Vec::with_capacity(r.groups.len());
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
        let mut change = None;
        if error_code == ErrorCode::NONE {
            match broker.offsets.stage_delete(&group_id, &committed, now) {
                Ok(c) => change = Some(c),
                Err(_) => error_code = ErrorCode::KAFKA_STORAGE_ERROR,
            }
        }
        staged.push(change);
        results.push(DeleteGroupResult {
            group_id,
            error_code,
        });
    }
    let b = broker.clone();
    Box::pin(async move {
        for (result, change) in results.iter_mut().zip(staged) {
            if let Some(change) = change {
                if !finish_staged(b.clone(), vec![change]).await {
                    result.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                }
            }
        }
        Some(Response::DeleteGroups(DeleteGroupsResponse {
            results,
            ..DeleteGroupsResponse::default()
        }))
    })
}

pub fn offset_commit(broker: &Arc<Broker>, version: i16, r: OffsetCommitRequest) -> ResponseFuture {
    let now = broker.now_ms();
    let group_error = if r.group_id.is_empty() {
        ErrorCode::INVALID_GROUP_ID
    } else {
        broker.groups.lock().validate_commit(
            &CommitIdentity {
                group_id: &r.group_id,
                member_id: &r.member_id,
                group_instance_id: r.group_instance_id.as_deref(),
                generation_id: r.generation_id,
            },
            version,
            now,
        )
    };
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
    // The commit is applied here, in request order; only its durability is awaited below.
    let staged = if to_commit.is_empty() {
        Ok(None)
    } else {
        broker.groups.lock().ensure_group(&r.group_id);
        broker
            .offsets
            .stage_commit(&r.group_id, &to_commit, now)
            .map(Some)
    };
    let b = broker.clone();
    let group_id = r.group_id;
    Box::pin(async move {
        let durable = match staged {
            Ok(None) => true,
            Ok(Some(change)) => finish_staged(b, vec![change]).await,
            Err(_) => false,
        };
        if !durable {
            tracing::error!(group = %group_id, "offset commit failed to reach the log");
            for t in &mut topics {
                for p in &mut t.partitions {
                    if p.error_code == ErrorCode::NONE {
                        p.error_code = ErrorCode::COORDINATOR_NOT_AVAILABLE;
                    }
                }
            }
        }
        Some(Response::OffsetCommit(OffsetCommitResponse {
            topics,
            ..OffsetCommitResponse::default()
        }))
    })
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

pub fn offset_delete(broker: &Arc<Broker>, r: OffsetDeleteRequest) -> ResponseFuture {
    let names: Vec<&str> = r.topics.iter().map(|t| t.name.as_str()).collect();
    let check = broker
        .groups
        .lock()
        .offset_delete_check(&r.group_id, &names);
    let subscribed = match check {
        Some(Ok(subscribed)) => subscribed,
        Some(Err(error_code)) => {
            return ready_offset_delete(error_code, Vec::new());
        }
        // Known only through committed offsets (no membership record): nothing is subscribed.
        None if !broker.offsets.fetch_all(&r.group_id).is_empty() => vec![false; names.len()],
        None => return ready_offset_delete(ErrorCode::GROUP_ID_NOT_FOUND, Vec::new()),
    };
    let mut to_delete = Vec::new();
    let topics: Vec<OffsetDeleteTopicResponse> = r
        .topics
        .into_iter()
        .zip(subscribed)
        .map(|(t, subscribed)| OffsetDeleteTopicResponse {
            partitions: t
                .partitions
                .iter()
                .map(|&p| {
                    let error_code = if subscribed {
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
    let staged = broker
        .offsets
        .stage_delete(&r.group_id, &to_delete, broker.now_ms());
    let b = broker.clone();
    Box::pin(async move {
        let durable = match staged {
            Ok(change) => finish_staged(b, vec![change]).await,
            Err(_) => false,
        };
        let error_code = if durable {
            ErrorCode::NONE
        } else {
            ErrorCode::KAFKA_STORAGE_ERROR
        };
        Some(Response::OffsetDelete(OffsetDeleteResponse {
            error_code,
            topics,
            ..OffsetDeleteResponse::default()
        }))
    })
}

fn ready_offset_delete(
    error_code: ErrorCode,
    topics: Vec<OffsetDeleteTopicResponse>,
) -> ResponseFuture {
    super::ready(Response::OffsetDelete(OffsetDeleteResponse {
        error_code,
        topics,
        ..OffsetDeleteResponse::default()
    }))
}
