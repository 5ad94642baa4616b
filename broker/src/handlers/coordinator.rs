//! A group is coordinated by the broker that leads its `__consumer_offsets` partition (clients
//! find it with FindCoordinator). A request for a group coordinated elsewhere is answered
//! NOT_COORDINATOR, as Kafka does, so the client looks the coordinator up again: a single-group
//! request as a whole (`refuse`), a batched one per group (`split_*`: the other groups are taken
//! out before the handler runs and answered after it). ListGroups answers the groups coordinated
//! here (clients ask every broker). On a single node every group is coordinated here.

use weir_protocol::requests::{
    ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest,
    DescribeShareGroupOffsetsRequest, OffsetFetchRequest, ShareGroupDescribeRequest,
};
use weir_protocol::responses::{
    AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsGroupResponse, ShareGroupDescribedGroup, ShareGroupHeartbeatResponse,
};
use weir_protocol::responses::{
    ConsumerGroupDescribedGroup, ConsumerGroupHeartbeatResponse, DeleteGroupResult, DescribedGroup,
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, OffsetCommitResponse,
    OffsetCommitTopicResponse, OffsetDeleteResponse, OffsetFetchGroupResponse, PartitionError,
    SyncGroupResponse,
};
use weir_protocol::{ErrorCode, Request, Response};

use super::access::Post;
use crate::broker::Broker;

const NOT_COORDINATOR: ErrorCode = ErrorCode::NOT_COORDINATOR;

/// The group a single-group request is for (`None`: not such a request).
fn single_group(request: &Request) -> Option<&str> {
    Some(match request {
        Request::JoinGroup(r) => &r.group_id,
        Request::SyncGroup(r) => &r.group_id,
        Request::Heartbeat(r) => &r.group_id,
        Request::LeaveGroup(r) => &r.group_id,
        Request::OffsetCommit(r) => &r.group_id,
        Request::OffsetDelete(r) => &r.group_id,
        Request::ConsumerGroupHeartbeat(r) => &r.group_id,
        Request::ShareGroupHeartbeat(r) => &r.group_id,
        Request::AlterShareGroupOffsets(r) => &r.group_id,
        Request::DeleteShareGroupOffsets(r) => &r.group_id,
        _ => return None,
    })
}

/// Whether a request for `group` is answered NOT_COORDINATOR here. An empty group id is left
/// to the handler, which answers it INVALID_GROUP_ID as Kafka does.
fn elsewhere(broker: &Broker, group: &str) -> bool {
    !group.is_empty() && !broker.is_group_coordinator(group)
}

/// Takes the items whose group is coordinated elsewhere out of `items`, returning them.
fn take_elsewhere<T>(broker: &Broker, items: &mut Vec<T>, group: impl Fn(&T) -> &str) -> Vec<T> {
    let (here, elsewhere_): (Vec<T>, Vec<T>) = std::mem::take(items)
        .into_iter()
        .partition(|t| !elsewhere(broker, group(t)));
    *items = here;
    elsewhere_
}

/// The NOT_COORDINATOR answer to a single-group request for a group coordinated elsewhere
/// (`None`: it is coordinated here, or `request` is not a single-group request).
pub fn refuse(broker: &Broker, request: &Request) -> Option<Response> {
    if !elsewhere(broker, single_group(request)?) {
        return None;
    }
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
        Request::OffsetDelete(_) => Response::OffsetDelete(OffsetDeleteResponse {
            error_code: NOT_COORDINATOR,
            ..OffsetDeleteResponse::default()
        }),
        Request::ConsumerGroupHeartbeat(_) => {
            Response::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
                error_code: NOT_COORDINATOR,
                ..ConsumerGroupHeartbeatResponse::default()
            })
        }
        Request::ShareGroupHeartbeat(_) => {
            Response::ShareGroupHeartbeat(ShareGroupHeartbeatResponse {
                error_code: NOT_COORDINATOR,
                ..ShareGroupHeartbeatResponse::default()
            })
        }
        Request::AlterShareGroupOffsets(_) => {
            Response::AlterShareGroupOffsets(AlterShareGroupOffsetsResponse {
                error_code: NOT_COORDINATOR,
                ..AlterShareGroupOffsetsResponse::default()
            })
        }
        Request::DeleteShareGroupOffsets(_) => {
            Response::DeleteShareGroupOffsets(DeleteShareGroupOffsetsResponse {
                error_code: NOT_COORDINATOR,
                ..DeleteShareGroupOffsetsResponse::default()
            })
        }
        _ => return None,
    };
    Some(response)
}

/// A Post that adds the groups coordinated elsewhere, answered NOT_COORDINATOR, to a response.
fn answer_elsewhere<T: Send + 'static>(
    taken: Vec<T>,
    add: impl FnOnce(&mut Response, Vec<T>) + Send + 'static,
) -> Option<Post> {
    if taken.is_empty() {
        return None;
    }
    Some(Box::new(move |resp| add(resp, taken)))
}

/// DescribeGroups: groups coordinated elsewhere are answered NOT_COORDINATOR.
pub(super) fn split_describe_groups(
    broker: &Broker,
    r: &mut DescribeGroupsRequest,
) -> Option<Post> {
    let taken = take_elsewhere(broker, &mut r.groups, |g| g);
    answer_elsewhere(taken, |resp, taken| {
        if let Response::DescribeGroups(d) = resp {
            d.groups
                .extend(taken.into_iter().map(|group_id| DescribedGroup {
                    error_code: NOT_COORDINATOR,
                    group_id,
                    ..DescribedGroup::default()
                }));
        }
    })
}

/// DeleteGroups: groups coordinated elsewhere are answered NOT_COORDINATOR.
pub(super) fn split_delete_groups(broker: &Broker, r: &mut DeleteGroupsRequest) -> Option<Post> {
    let taken = take_elsewhere(broker, &mut r.groups, |g| g);
    answer_elsewhere(taken, |resp, taken| {
        if let Response::DeleteGroups(d) = resp {
            d.results
                .extend(taken.into_iter().map(|group_id| DeleteGroupResult {
                    group_id,
                    error_code: NOT_COORDINATOR,
                }));
        }
    })
}

/// OffsetFetch (several groups from v8; one before): groups coordinated elsewhere are answered
/// NOT_COORDINATOR.
pub(super) fn split_offset_fetch(broker: &Broker, r: &mut OffsetFetchRequest) -> Option<Post> {
    let taken = take_elsewhere(broker, &mut r.groups, |g| &g.group_id);
    answer_elsewhere(taken, |resp, taken| {
        if let Response::OffsetFetch(f) = resp {
            f.groups
                .extend(taken.into_iter().map(|g| OffsetFetchGroupResponse {
                    group_id: g.group_id,
                    error_code: NOT_COORDINATOR,
                    ..OffsetFetchGroupResponse::default()
                }));
        }
    })
}

/// ConsumerGroupDescribe: groups coordinated elsewhere are answered NOT_COORDINATOR.
pub(super) fn split_consumer_group_describe(
    broker: &Broker,
    r: &mut ConsumerGroupDescribeRequest,
) -> Option<Post> {
    let taken = take_elsewhere(broker, &mut r.group_ids, |g| g);
    answer_elsewhere(taken, |resp, taken| {
        if let Response::ConsumerGroupDescribe(d) = resp {
            d.groups.extend(
                taken
                    .into_iter()
                    .map(|group_id| ConsumerGroupDescribedGroup {
                        error_code: NOT_COORDINATOR,
                        group_id,
                        ..ConsumerGroupDescribedGroup::default()
                    }),
            );
        }
    })
}

/// ShareGroupDescribe: groups coordinated elsewhere are answered NOT_COORDINATOR.
pub(super) fn split_share_group_describe(
    broker: &Broker,
    r: &mut ShareGroupDescribeRequest,
) -> Option<Post> {
    let taken = take_elsewhere(broker, &mut r.group_ids, |g| g);
    answer_elsewhere(taken, |resp, taken| {
        if let Response::ShareGroupDescribe(d) = resp {
            d.groups
                .extend(taken.into_iter().map(|group_id| ShareGroupDescribedGroup {
                    error_code: NOT_COORDINATOR,
                    group_id,
                    ..ShareGroupDescribedGroup::default()
                }));
        }
    })
}

/// DescribeShareGroupOffsets: groups coordinated elsewhere are answered NOT_COORDINATOR.
pub(super) fn split_describe_share_group_offsets(
    broker: &Broker,
    r: &mut DescribeShareGroupOffsetsRequest,
) -> Option<Post> {
    let taken = take_elsewhere(broker, &mut r.groups, |g| &g.group_id);
    answer_elsewhere(taken, |resp, taken| {
        if let Response::DescribeShareGroupOffsets(d) = resp {
            d.groups.extend(
                taken
                    .into_iter()
                    .map(|g| DescribeShareGroupOffsetsGroupResponse {
                        group_id: g.group_id,
                        error_code: NOT_COORDINATOR,
                        ..DescribeShareGroupOffsetsGroupResponse::default()
                    }),
            );
        }
    })
}
