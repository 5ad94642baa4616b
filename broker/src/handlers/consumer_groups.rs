//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup (classic groups, `groups`), ConsumerGroupHeartbeat
//! and ConsumerGroupDescribe (consumer-protocol groups, `consumer_groups`), ListGroups,
//! DescribeGroups, DeleteGroups (both kinds), and the committed-offset APIs (OffsetCommit,
//! OffsetFetch, OffsetDelete).
//!
//! A group id is either a classic or a consumer group. As in Kafka, an empty group converts to the
//! other kind when a member of the other protocol joins it, and so does a group with members
//! (Kafka's online migration, `group.consumer.migration.policy=bidirectional`): a
//! consumer-protocol member joining a classic group of consumers upgrades it, its classic members
//! then served by the consumer-group coordinator through JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup; when the last consumer-protocol member leaves, the classic coordinator takes the
//! group back. Both coordinators are locked classic first when a handler needs both.
//!
//! Membership changes and offset changes are applied before a handler returns (in request order,
//! see `handlers`); the returned futures only wait, for a parked join or sync to be answered or
//! for committed offsets to become durable.

use std::collections::HashSet;
use std::sync::Arc;

use weir_protocol::requests::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupTopicPartitions,
    DeleteGroupsRequest, DescribeGroupsRequest, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use weir_protocol::responses::{
    ConsumerGroupAssignment, ConsumerGroupDescribeAssignment, ConsumerGroupDescribeResponse,
    ConsumerGroupDescribeTopicPartitions, ConsumerGroupDescribedGroup,
    ConsumerGroupDescribedMember, ConsumerGroupHeartbeatResponse, DeleteGroupResult,
    DeleteGroupsResponse, DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
    HeartbeatResponse, JoinGroupMember, JoinGroupResponse, LeaveGroupMemberResponse,
    LeaveGroupResponse, ListGroupsResponse, ListedGroup, OffsetCommitResponse,
    OffsetCommitTopicResponse, OffsetDeleteResponse, OffsetDeleteTopicResponse,
    OffsetFetchGroupResponse, OffsetFetchPartitionResponse, OffsetFetchResponse,
    OffsetFetchTopicResponse, PartitionError, SyncGroupResponse,
};
use weir_protocol::{ErrorCode, Response};

use super::{blocking, RequestContext, ResponseFuture};
use crate::authz::{Authz, ResourceType};
use crate::broker::Broker;
use crate::consumer_groups::{self, Assignment, GroupError, Heartbeat, TopicsView};
use crate::groups::{
    CommitIdentity, GroupState, JoinOutcome, JoinRequest, Pending, SyncOutcome, SyncRequest,
};
use crate::offsets::{CommittedOffset, StagedChange};

/// DescribeGroups carries an error message from v6; older versions describe a group that is
/// not a classic group as "Dead" without an error, as Kafka does.
const DESCRIBE_GROUPS_ERROR_MESSAGE_VERSION: i16 = 6;
/// The group types of ListGroups v5.
const CLASSIC: &str = "classic";
const CONSUMER: &str = "consumer";

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
    let pending = {
        let mut classic = broker.groups.lock();
        let mut cg = broker.consumer_groups.lock();
        // A share group's id is not free for a classic group.
        if broker.share.groups.lock().contains(&request.group_id) {
            return super::ready(Response::JoinGroup(JoinGroupResponse {
                error_code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                member_id: r.member_id,
                ..JoinGroupResponse::default()
            }));
        }
        match cg.is_empty_group(&request.group_id) {
            // A consumer group with members takes classic members (online migration).
            Some(false) => {
                let session_ok = classic.session_timeout_allowed(request.session_timeout_ms);
                drop(classic);
                return classic_join_to_consumer_group(broker, cg, request, session_ok, now);
            }
            // An empty consumer group becomes a classic group (its offsets stay).
            Some(true) => {
                cg.delete(&request.group_id);
                if let Err(e) = broker
                    .queue_group_records(&mut cg, now)
                    .and_then(|p| broker.wait_group_records(p, now))
                {
                    tracing::error!(group = %request.group_id, error = %e, "consumer group deletion failed to reach the log");
                }
            }
            None => {}
        }
        drop(cg);
        classic.join(request, now)
    };
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

/// A classic member's JoinGroup to a consumer group: answered once its change is in the log.
fn classic_join_to_consumer_group(
    broker: &Arc<Broker>,
    mut cg: parking_lot::MutexGuard<'_, consumer_groups::ConsumerGroups>,
    request: JoinRequest,
    session_timeout_allowed: bool,
    now: i64,
) -> ResponseFuture {
    let refused = |error_code: ErrorCode, member_id: String| {
        super::ready(Response::JoinGroup(JoinGroupResponse {
            error_code,
            generation_id: -1,
            member_id,
            ..JoinGroupResponse::default()
        }))
    };
    if !session_timeout_allowed {
        return refused(ErrorCode::INVALID_SESSION_TIMEOUT, request.member_id);
    }
    // KIP-394, as for classic groups: a dynamic member first gets its id.
    if request.require_known_member_id
        && request.member_id.is_empty()
        && request.group_instance_id.is_none()
    {
        return refused(
            ErrorCode::MEMBER_ID_REQUIRED,
            uuid::Uuid::new_v4().to_string(),
        );
    }
    let topics = broker.topics_view();
    let member_id = request.member_id.clone();
    let result = cg.classic_join(request, &topics, now);
    let pending = broker.queue_group_records(&mut cg, now);
    drop(cg);
    let broker = broker.clone();
    Box::pin(async move {
        let written = queued_group_records_durable(&broker, pending, now).await;
        let response = match result {
            _ if !written => JoinGroupResponse {
                error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                generation_id: -1,
                member_id,
                ..JoinGroupResponse::default()
            },
            Ok(a) => JoinGroupResponse {
                generation_id: a.generation_id,
                protocol_type: Some(crate::consumer_protocol::CONSUMER_PROTOCOL_TYPE.into()),
                protocol_name: Some(a.protocol_name),
                member_id: a.member_id,
                ..JoinGroupResponse::default()
            },
            Err(error_code) => JoinGroupResponse {
                error_code,
                generation_id: -1,
                member_id,
                ..JoinGroupResponse::default()
            },
        };
        Some(Response::JoinGroup(response))
    })
}

pub fn sync_group(broker: &Arc<Broker>, r: SyncGroupRequest) -> ResponseFuture {
    {
        let _classic = broker.groups.lock();
        let mut cg = broker.consumer_groups.lock();
        if cg.contains(&r.group_id) {
            let sync = consumer_groups::ClassicSync {
                group_id: &r.group_id,
                member_id: &r.member_id,
                instance_id: r.group_instance_id.as_deref(),
                generation_id: r.generation_id,
                protocol_type: r.protocol_type.as_deref(),
                protocol_name: r.protocol_name.as_deref(),
            };
            let response = match cg.classic_sync(&sync, broker.now_ms()) {
                Ok(assignment) => SyncGroupResponse {
                    protocol_type: r.protocol_type.clone(),
                    protocol_name: r.protocol_name.clone(),
                    assignment,
                    ..SyncGroupResponse::default()
                },
                Err(error_code) => SyncGroupResponse {
                    error_code,
                    ..SyncGroupResponse::default()
                },
            };
            return super::ready(Response::SyncGroup(response));
        }
    }
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
    let mut classic = broker.groups.lock();
    let mut cg = broker.consumer_groups.lock();
    if cg.contains(&r.group_id) {
        return HeartbeatResponse {
            error_code: cg.classic_heartbeat(
                &r.group_id,
                &r.member_id,
                r.group_instance_id.as_deref(),
                r.generation_id,
                now,
            ),
            ..HeartbeatResponse::default()
        };
    }
    drop(cg);
    let error_code = classic.heartbeat(
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

/// LeaveGroup; classic members of a consumer group leave it once their removal is in the log.
pub fn leave_group(broker: &Arc<Broker>, r: LeaveGroupRequest) -> ResponseFuture {
    let now = broker.now_ms();
    let members: Vec<(String, Option<String>)> = r
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
        .collect();
    let mut classic = broker.groups.lock();
    let mut cg = broker.consumer_groups.lock();
    if cg.contains(&r.group_id) {
        let results = cg.classic_leave(&r.group_id, &members);
        let pending = broker.queue_group_records(&mut cg, now);
        drop((cg, classic));
        let broker = broker.clone();
        return Box::pin(async move {
            let written = queued_group_records_durable(&broker, pending, now).await;
            let response = if written {
                leave_response(r, ErrorCode::NONE, results)
            } else {
                LeaveGroupResponse {
                    error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    ..LeaveGroupResponse::default()
                }
            };
            Some(Response::LeaveGroup(response))
        });
    }
    drop(cg);
    let (error_code, results) = classic.leave(&r.group_id, &members, now);
    drop(classic);
    super::ready(Response::LeaveGroup(leave_response(r, error_code, results)))
}

fn leave_response(
    r: LeaveGroupRequest,
    error_code: ErrorCode,
    results: Vec<ErrorCode>,
) -> LeaveGroupResponse {
    // Pre-v3 requests name one member and carry its result at the top level.
    let single = if r.members.len() == 1 {
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
    let state_ok = |state: &str| {
        r.states_filter.is_empty()
            || r.states_filter
                .iter()
                .any(|s| s.trim().eq_ignore_ascii_case(state))
    };
    // Unknown types match no group, as in Kafka.
    let type_ok = |t: &str| {
        r.types_filter.is_empty()
            || r.types_filter
                .iter()
                .any(|f| f.trim().eq_ignore_ascii_case(t))
    };
    let classic = broker.groups.lock();
    let cg = broker.consumer_groups.lock();
    let mut groups: Vec<ListedGroup> = classic
        .list()
        .into_iter()
        .filter(|(id, _, state)| {
            !cg.contains(id) && state_ok(state.kafka_name()) && type_ok(CLASSIC)
        })
        .map(|(group_id, protocol_type, state)| ListedGroup {
            group_id,
            protocol_type,
            group_state: state.kafka_name().to_string(),
            group_type: CLASSIC.to_string(),
        })
        .collect();
    groups.extend(
        cg.list()
            .into_iter()
            .filter(|(_, state)| state_ok(state) && type_ok(CONSUMER))
            .map(|(group_id, state)| ListedGroup {
                group_id,
                protocol_type: CONSUMER.to_string(),
                group_state: state.to_string(),
                group_type: CONSUMER.to_string(),
            }),
    );
    groups.extend(
        broker
            .share
            .groups
            .lock()
            .list()
            .into_iter()
            .filter(|(_, state)| state_ok(state) && type_ok(super::share::SHARE))
            .map(|(group_id, state)| ListedGroup {
                group_id,
                protocol_type: super::share::SHARE.to_string(),
                group_state: state.to_string(),
                group_type: super::share::SHARE.to_string(),
            }),
    );
    ListGroupsResponse {
        groups,
        ..ListGroupsResponse::default()
    }
}

pub fn describe_groups(
    broker: &Broker,
    az: &Authz,
    version: i16,
    r: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let coordinator = broker.groups.lock();
    let cg = broker.consumer_groups.lock();
    let not_found = |group_id: String, message: String| {
        if version >= DESCRIBE_GROUPS_ERROR_MESSAGE_VERSION {
            DescribedGroup {
                error_code: ErrorCode::GROUP_ID_NOT_FOUND,
                error_message: Some(message),
                group_id,
                group_state: "Dead".into(),
                ..DescribedGroup::default()
            }
        } else {
            // Kafka describes an unknown group as "Dead" with no error.
            DescribedGroup {
                group_id,
                group_state: "Dead".into(),
                ..DescribedGroup::default()
            }
        }
    };
    let mut groups: Vec<DescribedGroup> = r
        .groups
        .into_iter()
        .map(|group_id| match coordinator.describe(&group_id) {
            _ if cg.contains(&group_id) || broker.share.groups.lock().contains(&group_id) => {
                let message = format!("Group {group_id} is not a classic group.");
                not_found(group_id, message)
            }
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
            None => {
                let message = format!("Group {group_id} not found.");
                not_found(group_id, message)
            }
        })
        .collect();
    if r.include_authorized_operations {
        // As Kafka: for every group answered without an error, unknown ("Dead") ones included.
        for g in groups
            .iter_mut()
            .filter(|g| g.error_code == ErrorCode::NONE)
        {
            g.authorized_operations = az.operations(ResourceType::Group, &g.group_id);
        }
    }
    DescribeGroupsResponse {
        groups,
        ..DescribeGroupsResponse::default()
    }
}

/// Waits until every staged offset change is durable here (off the async threads) and
/// committed by its offsets partition's replicas (acks=all, as Kafka writes
/// `__consumer_offsets`), so an acknowledged commit survives the coordinator's failure.
async fn finish_staged(broker: Arc<Broker>, staged: Vec<StagedChange>) -> bool {
    let written: Vec<_> = staged
        .iter()
        .filter_map(|s| Some((s.partition()?, s.appended()?)))
        .collect();
    let durable = if staged.iter().all(StagedChange::is_complete) {
        staged.into_iter().all(|s| broker.offsets.finish(s).is_ok())
    } else {
        let b = broker.clone();
        blocking(move || staged.into_iter().all(|s| b.offsets.finish(s).is_ok()))
            .await
            .unwrap_or(false)
    };
    if !durable {
        return false;
    }
    for (partition, (last, epoch)) in written {
        let committed = tokio::time::timeout(
            std::time::Duration::from_millis(crate::offsets::OFFSETS_COMMIT_TIMEOUT_MS),
            partition.wait_committed(last, epoch),
        )
        .await;
        if !matches!(committed, Ok(Ok(()))) {
            return false;
        }
    }
    true
}

pub fn delete_groups(broker: &Arc<Broker>, r: DeleteGroupsRequest) -> ResponseFuture {
    let mut results = Vec::with_capacity(r.groups.len());
    // Per group: the staged tombstones of its offsets, if it was deleted.
    let mut staged: Vec<Option<StagedChange>> = Vec::with_capacity(r.groups.len());
    // Per group: the deletion of its share state, if it was a share group (waited for off the
    // async threads: it may wait for other brokers).
    let mut share_state: Vec<Option<crate::share::Pending>> = Vec::with_capacity(r.groups.len());
    for group_id in r.groups {
        let committed: Vec<(String, i32)> = broker
            .offsets
            .fetch_all(&group_id)
            .into_iter()
            .map(|(t, p, _)| (t, p))
            .collect();
        let now = broker.now_ms();
        // A share group goes with all its share state.
        let share_deleted = {
            let _classic = broker.groups.lock();
            let _cg = broker.consumer_groups.lock();
            let is_share = broker.share.groups.lock().contains(&group_id);
            is_share.then(|| {
                broker
                    .share
                    .delete_group(&group_id, &broker.offsets, now, || {
                        super::share::share_keys_of_all_topics(broker, &group_id)
                    })
            })
        };
        if let Some(deleted) = share_deleted {
            let error_code = match deleted {
                Ok(pending) => {
                    share_state.push(Some(pending));
                    ErrorCode::NONE
                }
                Err(code) => {
                    share_state.push(None);
                    code
                }
            };
            staged.push(None);
            results.push(DeleteGroupResult {
                group_id,
                error_code,
            });
            continue;
        }
        let (code, pending) = {
            let mut classic = broker.groups.lock();
            let mut cg = broker.consumer_groups.lock();
            match cg.delete(&group_id) {
                Some(code) => (code, Some(broker.queue_group_records(&mut cg, now))),
                None => (classic.delete(&group_id, now), None),
            }
        };
        let mut error_code = match pending {
            None => code,
            Some(pending) => {
                // DeleteGroups is rare: the group's tombstones are made durable right here, in
                // request order, before the offsets' tombstones are staged.
                let written = pending.and_then(|p| broker.wait_group_records(p, now));
                if written.is_ok() {
                    code
                } else {
                    ErrorCode::KAFKA_STORAGE_ERROR
                }
            }
        };
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
        share_state.push(None);
        results.push(DeleteGroupResult {
            group_id,
            error_code,
        });
    }
    let b = broker.clone();
    Box::pin(async move {
        for ((result, change), share) in results.iter_mut().zip(staged).zip(share_state) {
            if let Some(change) = change {
                if !finish_staged(b.clone(), vec![change]).await {
                    result.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                }
            }
            if let Some(pending) = share {
                if !super::share::wait_durable(&b, pending).await {
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
    let mut consumer_group = false;
    let group_error = if r.group_id.is_empty() {
        ErrorCode::INVALID_GROUP_ID
    } else {
        let classic = broker.groups.lock();
        let cg = broker.consumer_groups.lock();
        // v9 carries a consumer-protocol member's epoch in the generation field.
        match cg.validate_offset_commit(&r.group_id, &r.member_id, r.generation_id, version) {
            Some(result) => {
                consumer_group = true;
                result.map_or_else(|e| e.code, |()| ErrorCode::NONE)
            }
            None => {
                drop(cg);
                let mut classic = classic;
                classic.validate_commit(
                    &CommitIdentity {
                        group_id: &r.group_id,
                        member_id: &r.member_id,
                        group_instance_id: r.group_instance_id.as_deref(),
                        generation_id: r.generation_id,
                    },
                    version,
                    now,
                )
            }
        }
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
                    usize::try_from(p.partition_index).map_or(true, |i| i >= k.partition_count())
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
                            metadata: p.committed_metadata.unwrap_or_default(),
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
        if !consumer_group {
            broker.groups.lock().ensure_group(&r.group_id);
        }
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
    let require_stable = r.require_stable;
    let groups = r
        .groups
        .into_iter()
        .map(|g| {
            let checked = broker.consumer_groups.lock().validate_offset_fetch(
                &g.group_id,
                g.member_id.as_deref(),
                g.member_epoch,
            );
            if let Some(Err(e)) = checked {
                return OffsetFetchGroupResponse {
                    group_id: g.group_id,
                    error_code: e.code,
                    topics: Vec::new(),
                };
            }
            let topics: Vec<OffsetFetchTopicResponse> = match g.topics {
                None => {
                    let mut out: Vec<OffsetFetchTopicResponse> = Vec::new();
                    for (topic, partition, c) in broker.offsets.fetch_all(&g.group_id) {
                        let p = OffsetFetchPartitionResponse {
                            partition_index: partition,
                            committed_offset: c.offset,
                            committed_leader_epoch: c.leader_epoch,
                            metadata: Some(c.metadata),
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
                                    metadata: Some(c.metadata),
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
            let mut topics = topics;
            if require_stable {
                mark_unstable(
                    &mut topics,
                    &broker.offsets.pending_txn_partitions(&g.group_id),
                );
            }
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

/// Kafka's answer for a partition whose offset a transaction changed and has not ended: no
/// offset and UNSTABLE_OFFSET_COMMIT (retriable: the client asks again after the marker).
fn mark_unstable(topics: &mut [OffsetFetchTopicResponse], pending: &HashSet<(String, i32)>) {
    if pending.is_empty() {
        return;
    }
    for t in topics {
        for p in &mut t.partitions {
            if pending.contains(&(t.name.clone(), p.partition_index)) {
                *p = OffsetFetchPartitionResponse {
                    partition_index: p.partition_index,
                    error_code: ErrorCode::UNSTABLE_OFFSET_COMMIT,
                    ..OffsetFetchPartitionResponse::default()
                };
            }
        }
    }
}

pub fn offset_delete(broker: &Arc<Broker>, r: OffsetDeleteRequest) -> ResponseFuture {
    let names: Vec<&str> = r.topics.iter().map(|t| t.name.as_str()).collect();
    let consumer_group = broker.consumer_groups.lock().contains(&r.group_id);
    let check = if consumer_group {
        None
    } else {
        broker
            .groups
            .lock()
            .offset_delete_check(&r.group_id, &names)
    };
    let subscribed = match check {
        Some(Ok(subscribed)) => subscribed,
        Some(Err(error_code)) => {
            return ready_offset_delete(error_code, Vec::new());
        }
        // A consumer group knows its members' subscriptions: only those topics count.
        None if consumer_group => {
            let cg = broker.consumer_groups.lock();
            names
                .iter()
                .map(|n| cg.is_subscribed(&r.group_id, n))
                .collect()
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

fn assignment_to_wire(a: &Assignment) -> Vec<ConsumerGroupTopicPartitions> {
    a.iter()
        .map(|(topic_id, ps)| ConsumerGroupTopicPartitions {
            topic_id: *topic_id,
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

fn heartbeat_error(e: GroupError) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        error_code: e.code,
        error_message: e.message,
        ..ConsumerGroupHeartbeatResponse::default()
    }
}

/// Waits (off the async threads, and only if there is something to wait for) until group
/// records queued in `__consumer_offsets` are durable.
pub(super) async fn group_records_durable(
    broker: &Arc<Broker>,
    write: crate::offsets::GroupRecordsWrite,
    now_ms: i64,
) -> bool {
    if write.is_empty() {
        return true;
    }
    let b = broker.clone();
    matches!(
        blocking(move || b.wait_group_records(write, now_ms)).await,
        Some(Ok(()))
    )
}

/// [`group_records_durable`] of what `Broker::queue_group_records` queued; `false` if queueing
/// failed.
async fn queued_group_records_durable(
    broker: &Arc<Broker>,
    queued: Result<crate::offsets::GroupRecordsWrite, crate::offsets::OffsetError>,
    now_ms: i64,
) -> bool {
    match queued {
        Ok(write) => group_records_durable(broker, write, now_ms).await,
        Err(_) => false,
    }
}

/// ConsumerGroupHeartbeat (KIP-848): the state change is in `__consumer_offsets` before the member
/// hears of it.
pub async fn consumer_group_heartbeat(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    client_id: String,
    version: i16,
    r: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let hb = Heartbeat {
        group_id: r.group_id,
        member_id: r.member_id,
        member_epoch: r.member_epoch,
        instance_id: r.instance_id,
        rack_id: r.rack_id,
        rebalance_timeout_ms: r.rebalance_timeout_ms,
        subscribed_topic_names: r.subscribed_topic_names,
        subscribed_topic_regex: r.subscribed_topic_regex,
        server_assignor: r.server_assignor,
        owned: r.topic_partitions.map(|tps| {
            let mut owned = Assignment::new();
            for tp in tps {
                owned.entry(tp.topic_id).or_default().extend(tp.partitions);
            }
            owned
        }),
        client_id,
        client_host: format!("/{}", ctx.peer.ip()),
        api_version: version,
        classic: None,
    };
    let topics: TopicsView = broker.topics_view();
    let now = broker.now_ms();
    let (result, pending) = {
        let mut classic = broker.groups.lock();
        let mut cg = broker.consumer_groups.lock();
        if let Err(e) = consumer_groups::validate(&hb, cg.config()) {
            return heartbeat_error(e);
        }
        let mut upgrade = false;
        if broker.share.groups.lock().contains(&hb.group_id) {
            return heartbeat_error(GroupError {
                code: ErrorCode::GROUP_ID_NOT_FOUND,
                message: Some(format!("Group {} is not a consumer group.", hb.group_id)),
            });
        }
        if !cg.contains(&hb.group_id) {
            let not_consumer = || {
                heartbeat_error(GroupError {
                    code: ErrorCode::GROUP_ID_NOT_FOUND,
                    message: Some(format!("Group {} is not a consumer group.", hb.group_id)),
                })
            };
            match classic.group_state(&hb.group_id) {
                // An empty classic group (e.g. one known only by its offsets) is upgraded once
                // the joining member is in.
                Some(GroupState::Empty) if hb.member_epoch == 0 => upgrade = true,
                // A classic group of consumers with members: converted with them (online
                // upgrade), then the joining member's heartbeat runs in it.
                Some(_) if hb.member_epoch == 0 => match classic.migrating(&hb.group_id) {
                    Some(Ok(group)) => {
                        if let Err(e) = cg.upgrade(group, &topics, now) {
                            return heartbeat_error(e);
                        }
                        classic.remove_migrated(&hb.group_id);
                    }
                    Some(Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)) => {
                        return heartbeat_error(GroupError {
                            code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
                            message: Some(format!(
                                "Group {} is completing a classic rebalance; it is upgraded once its assignment is in.",
                                hb.group_id
                            )),
                        });
                    }
                    _ => return not_consumer(),
                },
                Some(_) => return not_consumer(),
                None => {}
            }
        }
        let group_id = hb.group_id.clone();
        let result = cg.heartbeat(hb, &topics, now);
        if upgrade && result.is_ok() {
            classic.delete(&group_id, now);
        }
        // The last consumer-protocol member left a group of classic members: back to classic.
        for group in cg.take_downgrades() {
            classic.adopt(group, now);
        }
        (result, broker.queue_group_records(&mut cg, now))
    };
    let written = queued_group_records_durable(broker, pending, now).await;
    if !written {
        tracing::error!("consumer group changes failed to reach the log");
        return heartbeat_error(GroupError {
            code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
            message: None,
        });
    }
    match result {
        Ok(a) => ConsumerGroupHeartbeatResponse {
            member_id: Some(a.member_id),
            member_epoch: a.member_epoch,
            heartbeat_interval_ms: a.heartbeat_interval_ms,
            assignment: a.assignment.map(|a| ConsumerGroupAssignment {
                topic_partitions: assignment_to_wire(&a),
            }),
            ..ConsumerGroupHeartbeatResponse::default()
        },
        Err(e) => heartbeat_error(e),
    }
}

fn describe_assignment(a: &Assignment, topics: &TopicsView) -> ConsumerGroupDescribeAssignment {
    ConsumerGroupDescribeAssignment {
        topic_partitions: a
            .iter()
            // As Kafka: partitions of a topic that no longer exists are not described.
            .filter_map(|(id, ps)| {
                topics
                    .name(id)
                    .map(|name| ConsumerGroupDescribeTopicPartitions {
                        topic_id: *id,
                        topic_name: name.to_string(),
                        partitions: ps.iter().copied().collect(),
                    })
            })
            .collect(),
    }
}

/// ConsumerGroupDescribe (KIP-848).
pub fn consumer_group_describe(
    broker: &Broker,
    r: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let topics = broker.topics_view();
    let classic = broker.groups.lock();
    let cg = broker.consumer_groups.lock();
    let groups = r
        .group_ids
        .into_iter()
        .map(|group_id| match cg.describe(&group_id) {
            Some(d) => ConsumerGroupDescribedGroup {
                group_id,
                group_state: d.state.to_string(),
                group_epoch: d.group_epoch,
                assignment_epoch: d.assignment_epoch,
                assignor_name: d.assignor_name.to_string(),
                members: d
                    .members
                    .into_iter()
                    .map(|m| ConsumerGroupDescribedMember {
                        member_id: m.member_id,
                        instance_id: m.instance_id,
                        rack_id: m.rack_id,
                        member_epoch: m.member_epoch,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        subscribed_topic_names: m.subscribed_topic_names,
                        subscribed_topic_regex: m.subscribed_topic_regex,
                        assignment: describe_assignment(&m.assignment, &topics),
                        target_assignment: describe_assignment(&m.target_assignment, &topics),
                        // KIP-1099: 0 for a classic member, 1 for a consumer-protocol one.
                        member_type: if m.classic { 0 } else { 1 },
                    })
                    .collect(),
                ..ConsumerGroupDescribedGroup::default()
            },
            None => {
                let message = if classic.group_state(&group_id).is_some() {
                    format!("Group {group_id} is not a consumer group.")
                } else {
                    format!("Group {group_id} not found.")
                };
                ConsumerGroupDescribedGroup {
                    error_code: ErrorCode::GROUP_ID_NOT_FOUND,
                    error_message: Some(message),
                    group_id,
                    ..ConsumerGroupDescribedGroup::default()
                }
            }
        })
        .collect();
    ConsumerGroupDescribeResponse {
        groups,
        ..ConsumerGroupDescribeResponse::default()
    }
}
