//! Every error code a [`Response`] carries, flattened: what the broker's error metrics count.
//! Mirrored APIs are collected generically (`mirror::ErrorCodes`); the hand-written ones here.
//!
//! Kept apart from `responses` so the response types stay plain data; this module only reads
//! them. Top-level, per-topic, per-partition and per-member codes are all included, in the order
//! they appear; `NONE` is left out.

use crate::error::ErrorCode;
use crate::responses::Response;

impl Response {
    /// Every non-zero error code in this response (top-level and nested), in order of appearance.
    pub fn error_codes(&self) -> Vec<ErrorCode> {
        let mut out = Vec::new();
        if crate::apis::mirrored_error_codes(self, &mut out) {
            return out;
        }
        let mut add = |code: ErrorCode| {
            if !code.is_none() {
                out.push(code);
            }
        };
        match self {
            Response::ApiVersions(r) => add(r.error_code),
            Response::Metadata(r) => {
                for t in &r.topics {
                    add(t.error_code);
                    t.partitions.iter().for_each(|p| add(p.error_code));
                }
            }
            Response::Produce(r) => r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| add(p.error_code)),
            Response::Fetch(r) => {
                add(r.error_code);
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .for_each(|p| add(p.error_code));
            }
            Response::ListOffsets(r) => r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| add(p.error_code)),
            Response::OffsetCommit(r) => r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| add(p.error_code)),
            Response::OffsetFetch(r) => {
                for g in &r.groups {
                    add(g.error_code);
                    g.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .for_each(|p| add(p.error_code));
                }
            }
            Response::FindCoordinator(r) => r.coordinators.iter().for_each(|c| add(c.error_code)),
            Response::JoinGroup(r) => add(r.error_code),
            Response::SyncGroup(r) => add(r.error_code),
            Response::LeaveGroup(r) => {
                add(r.error_code);
                r.members.iter().for_each(|m| add(m.error_code));
            }
            Response::InitProducerId(r) => add(r.error_code),
            Response::CreateTopics(r) => r.topics.iter().for_each(|t| {
                add(t.error_code);
                add(t.topic_config_error_code);
            }),
            Response::DeleteTopics(r) => r.responses.iter().for_each(|t| add(t.error_code)),
            Response::CreatePartitions(r) => r.results.iter().for_each(|t| add(t.error_code)),
            Response::DescribeConfigs(r) => r.results.iter().for_each(|t| add(t.error_code)),
            Response::AlterConfigs(r) => r.responses.iter().for_each(|t| add(t.error_code)),
            Response::IncrementalAlterConfigs(r) => {
                r.responses.iter().for_each(|t| add(t.error_code))
            }
            // Mirrored APIs were collected above.
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::responses::*;
    use crate::ErrorCode;

    #[test]
    fn nested_codes_are_collected_and_none_is_skipped() {
        let r = Response::Produce(ProduceResponse {
            topics: vec![ProduceTopicResponse {
                name: "t".into(),
                topic_id: [0; 16],
                partitions: vec![
                    ProducePartitionResponse {
                        index: 0,
                        ..Default::default()
                    },
                    ProducePartitionResponse {
                        index: 1,
                        error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        });
        assert_eq!(r.error_codes(), vec![ErrorCode::UNKNOWN_TOPIC_OR_PARTITION]);
        let ok = Response::Heartbeat(HeartbeatResponse::default());
        assert_eq!(ok.error_codes(), Vec::<ErrorCode>::new());
    }
}
