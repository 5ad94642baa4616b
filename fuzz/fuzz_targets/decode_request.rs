//! Fuzz target: arbitrary bytes as a request frame (without the size prefix).
//!
//! Properties: `decode_request` never panics or aborts (libFuzzer reports both, and its
//! RSS limit catches over-allocation); a request that decodes can always be answered,
//! i.e. a default response for it encodes at the request's version; an ApiVersions at an
//! unsupported version gets the KIP-511 answer.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_protocol::*;

fn default_response(request: &Request) -> Response {
    match request {
        Request::ApiVersions(_) => Response::ApiVersions(ApiVersionsResponse::supported()),
        Request::Metadata(_) => Response::Metadata(Default::default()),
        Request::Produce(_) => Response::Produce(Default::default()),
        Request::Fetch(_) => Response::Fetch(Default::default()),
        Request::ListOffsets(_) => Response::ListOffsets(Default::default()),
        Request::OffsetCommit(_) => Response::OffsetCommit(Default::default()),
        Request::OffsetFetch(_) => Response::OffsetFetch(Default::default()),
        // Single-key versions need exactly one coordinator: answer one per key asked.
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

fuzz_target!(|data: &[u8]| {
    match decode_request(Bytes::copy_from_slice(data)) {
        Ok((header, request)) => {
            let response = default_response(&request);
            if let Err(e) = encode_response(&header, &response) {
                panic!("a decoded request could not be answered: {e}");
            }
        }
        Err(DecodeError::UnsupportedVersion { header }) if header.api_key == api_key::API_VERSIONS => {
            let out = encode_api_versions_unsupported(&header);
            assert!(out.len() > 10);
        }
        Err(_) => {}
    }
});
