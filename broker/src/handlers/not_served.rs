//! Answers to the APIs `weir_protocol` decodes but the broker does not serve yet: the
//! inter-broker Raft APIs (Vote, BeginQuorumEpoch, EndQuorumEpoch) and the cluster admin APIs
//! (ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments), all left out of
//! ApiVersions. A client that sends one anyway gets `UNKNOWN_SERVER_ERROR` with a message
//! where the response has room for one, instead of a closed connection or a silent success.
//! Each function goes away when the cluster layer serves its API.

use weir_protocol::{
    AlterPartitionReassignmentsResponse, BeginQuorumEpochResponse, ElectLeadersPartitionResult,
    ElectLeadersRequest, ElectLeadersResponse, EndQuorumEpochResponse, ErrorCode,
    ListPartitionReassignmentsResponse, ReplicaElectionResult, VoteResponse,
};

const ERROR: ErrorCode = ErrorCode::UNKNOWN_SERVER_ERROR;

fn message(api: &str) -> String {
    format!("{api} is not served yet: it is handled by Weir's cluster layer")
}

/// Inter-broker requests have no message field: the refusal is logged on this side.
fn log_inter_broker(api: &str) {
    tracing::warn!(
        api,
        "inter-broker APIs are handled by the cluster layer, which is not running; answered {ERROR}"
    );
}

pub fn vote() -> VoteResponse {
    log_inter_broker("Vote");
    VoteResponse {
        error_code: ERROR,
        ..Default::default()
    }
}

pub fn begin_quorum_epoch() -> BeginQuorumEpochResponse {
    log_inter_broker("BeginQuorumEpoch");
    BeginQuorumEpochResponse {
        error_code: ERROR,
        ..Default::default()
    }
}

pub fn end_quorum_epoch() -> EndQuorumEpochResponse {
    log_inter_broker("EndQuorumEpoch");
    EndQuorumEpochResponse {
        error_code: ERROR,
        ..Default::default()
    }
}

/// ElectLeaders v0 has no top-level error code, so each partition asked for carries it too.
pub fn elect_leaders(r: &ElectLeadersRequest) -> ElectLeadersResponse {
    let message = message("ElectLeaders");
    ElectLeadersResponse {
        throttle_time_ms: 0,
        error_code: ERROR,
        replica_election_results: r
            .topic_partitions
            .iter()
            .flatten()
            .map(|t| ReplicaElectionResult {
                topic: t.topic.clone(),
                partition_result: t
                    .partitions
                    .iter()
                    .map(|&partition_id| ElectLeadersPartitionResult {
                        partition_id,
                        error_code: ERROR,
                        error_message: Some(message.clone()),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub fn alter_partition_reassignments() -> AlterPartitionReassignmentsResponse {
    AlterPartitionReassignmentsResponse {
        error_code: ERROR,
        error_message: Some(message("AlterPartitionReassignments")),
        ..Default::default()
    }
}

pub fn list_partition_reassignments() -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse {
        error_code: ERROR,
        error_message: Some(message("ListPartitionReassignments")),
        ..Default::default()
    }
}
