//! In a cluster, group requests reach the broker that leads the offsets partition (clients find
//! it with FindCoordinator). A group request to any other broker is answered NOT_COORDINATOR,
//! as Kafka does, so the client looks the coordinator up again.

use weir_protocol::responses::{
    ConsumerGroupDescribeResponse, ConsumerGroupDescribedGroup, ConsumerGroupHeartbeatResponse,
    DeleteGroupResult, DeleteGroupsResponse, DescribeGroupsResponse, DescribedGroup,
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse,
    OffsetCommitResponse, OffsetCommitTopicResponse, OffsetDeleteResponse,
    OffsetFetchGroupResponse, OffsetFetchResponse, PartitionError, SyncGroupResponse,
};
use weir_protocol::{ErrorCode, Request, Response};

const NOT_COORDINATOR: ErrorCode = ErrorCode::NOT_COORDINATOR;

/// The NOT_COORDINATOR answer to `request`, if it is a group request (`None` otherwise).
pub fn refuse(request: &Request) -> Option<Response> {
    let response = match request {
        Request::JoinGroup(r) => Response::JoinGroup(JoinGroupResponse {
            error_code: NOT_COORDINATOR,
            member_id: r.member_id.clone(),
            generation_id: -1,
            ..JoinGroupResponse::default()
        }),
        Request::SyncGroup(_) => Response::SyncGroup(SyncGroupResponse {
            error_code: NOT_COORDINATOR,
            ..SyncGroupResponse::default()
        }),
        Request::Heartbeat(_) => Response::Heartbeat(HeartbeatResponse {
            error_code: NOT_COORDINATOR,
            ..HeartbeatResponse::default()
        }),
        Request::LeaveGroup(_) => Response::LeaveGroup(LeaveGroupResponse {
            error_code: NOT_COORDINATOR,
            ..LeaveGroupResponse::default()
        }),
        Request::OffsetCommit(r) => Response::OffsetCommit(OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| OffsetCommitTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| PartitionError {
                            partition_index: p.partition_index,
                            error_code: NOT_COORDINATOR,
                        })
                        .collect(),
                })
                .collect(),
            ..OffsetCommitResponse::default()
        }),
        Request::OffsetFetch(r) => Response::OffsetFetch(OffsetFetchResponse {
            groups: r
                .groups
                .iter()
                .map(|g| OffsetFetchGroupResponse {
                    group_id: g.group_id.clone(),
                    error_code: NOT_COORDINATOR,
                    ..OffsetFetchGroupResponse::default()
                })
                .collect(),
            ..OffsetFetchResponse::default()
        }),
        Request::OffsetDelete(_) => Response::OffsetDelete(OffsetDeleteResponse {
            error_code: NOT_COORDINATOR,
            ..OffsetDeleteResponse::default()
        }),
        Request::DeleteGroups(r) => Response::DeleteGroups(DeleteGroupsResponse {
            results: r
                .groups
                .iter()
                .map(|g| DeleteGroupResult {
                    group_id: g.clone(),
                    error_code: NOT_COORDINATOR,
                })
                .collect(),
            ..DeleteGroupsResponse::default()
        }),
        Request::DescribeGroups(r) => Response::DescribeGroups(DescribeGroupsResponse {
            groups: r
                .groups
                .iter()
                .map(|g| DescribedGroup {
                    error_code: NOT_COORDINATOR,
                    group_id: g.clone(),
                    ..DescribedGroup::default()
                })
                .collect(),
            ..DescribeGroupsResponse::default()
        }),
        // Admin clients ask every broker for its groups: this one has none.
        Request::ListGroups(_) => Response::ListGroups(ListGroupsResponse::default()),
        Request::ConsumerGroupHeartbeat(_) => {
            Response::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
                error_code: NOT_COORDINATOR,
                ..ConsumerGroupHeartbeatResponse::default()
            })
        }
        Request::ConsumerGroupDescribe(r) => {
            Response::ConsumerGroupDescribe(ConsumerGroupDescribeResponse {
                groups: r
                    .group_ids
                    .iter()
                    .map(|g| ConsumerGroupDescribedGroup {
                        error_code: NOT_COORDINATOR,
                        group_id: g.clone(),
                        ..ConsumerGroupDescribedGroup::default()
                    })
                    .collect(),
                ..ConsumerGroupDescribeResponse::default()
            })
        }
        _ => return None,
    };
    Some(response)
}
