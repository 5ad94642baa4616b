//! The default answer to any decoded request, used by the response round-trip tests and by the
//! fuzz target (which includes this file by path, since fuzz/ is its own workspace).

use weir_protocol::{ApiVersionsResponse, Coordinator, FindCoordinatorResponse, Request, Response};

/// A default response for `request`: every decoded request must be answerable at its own
/// version. Single-key FindCoordinator versions need exactly one coordinator, so there is one
/// per key asked.
pub fn default_response(request: &Request) -> Response {
    match request {
        Request::ApiVersions(_) => Response::ApiVersions(ApiVersionsResponse::supported()),
        Request::Metadata(_) => Response::Metadata(Default::default()),
        Request::Produce(_) => Response::Produce(Default::default()),
        Request::Fetch(_) => Response::Fetch(Default::default()),
        Request::ListOffsets(_) => Response::ListOffsets(Default::default()),
        Request::OffsetCommit(_) => Response::OffsetCommit(Default::default()),
        Request::OffsetFetch(_) => Response::OffsetFetch(Default::default()),
        Request::FindCoordinator(r) => Response::FindCoordinator(FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: r
                .keys
                .iter()
                .map(|key| Coordinator {
                    key: key.clone(),
                    ..Default::default()
                })
                .collect(),
        }),
        Request::JoinGroup(_) => Response::JoinGroup(Default::default()),
        Request::SyncGroup(_) => Response::SyncGroup(Default::default()),
        Request::Heartbeat(_) => Response::Heartbeat(Default::default()),
        Request::LeaveGroup(_) => Response::LeaveGroup(Default::default()),
        Request::ListGroups(_) => Response::ListGroups(Default::default()),
        Request::DescribeGroups(_) => Response::DescribeGroups(Default::default()),
        Request::DeleteGroups(_) => Response::DeleteGroups(Default::default()),
        Request::OffsetDelete(_) => Response::OffsetDelete(Default::default()),
        Request::InitProducerId(_) => Response::InitProducerId(Default::default()),
        Request::CreateTopics(_) => Response::CreateTopics(Default::default()),
        Request::DeleteTopics(_) => Response::DeleteTopics(Default::default()),
        Request::CreatePartitions(_) => Response::CreatePartitions(Default::default()),
        Request::DescribeConfigs(_) => Response::DescribeConfigs(Default::default()),
        Request::AlterConfigs(_) => Response::AlterConfigs(Default::default()),
        Request::IncrementalAlterConfigs(_) => {
            Response::IncrementalAlterConfigs(Default::default())
        }
        Request::DeleteRecords(_) => Response::DeleteRecords(Default::default()),
        Request::DescribeCluster(_) => Response::DescribeCluster(Default::default()),
        Request::OffsetForLeaderEpoch(_) => Response::OffsetForLeaderEpoch(Default::default()),
    }
}
