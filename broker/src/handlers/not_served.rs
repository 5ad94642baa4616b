//! Answers to the inter-broker Raft APIs (Vote, BeginQuorumEpoch, EndQuorumEpoch) on a broker
//! that is not part of a cluster: they are left out of ApiVersions, and a peer that sends one
//! anyway gets `UNKNOWN_SERVER_ERROR` instead of a closed connection or a silent success.

use weir_protocol::{BeginQuorumEpochResponse, EndQuorumEpochResponse, ErrorCode, VoteResponse};

const ERROR: ErrorCode = ErrorCode::UNKNOWN_SERVER_ERROR;

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
