//! Fetch v0-3: the answer's stored v2 batches, down-converted to the message format the fetcher
//! reads (magic 0 for v0-1, magic 1 for v2-3), as Kafka did before 4.0. Runs on the finished Fetch
//! answer, so the fetch itself (long poll, byte limits) is the same for every version.
//!
//! As in Kafka: a topic with `message.downconversion.enable=false` answers UNSUPPORTED_VERSION, a
//! zstd topic (or zstd batch) UNSUPPORTED_COMPRESSION_TYPE, control batches are not delivered and
//! headers are dropped. Each partition's converted records stay within its `partition_max_bytes`
//! (at least one message, so a consumer always progresses).

use std::collections::HashMap;
use std::sync::Arc;

use weir_protocol::requests::FetchRequest;
use weir_protocol::responses::{FetchRecords, FetchResponse};
use weir_protocol::ErrorCode;
use weir_storage::batch::MAGIC_V2;

use super::fetch::records_in_memory;
use crate::broker::Broker;
use crate::record_checks;

/// What a fetch for an old record format asked for, kept to convert its answer.
pub struct Plan {
    magic: i8,
    /// (topic, partition) → (fetch offset, partition max bytes).
    partitions: HashMap<(String, i32), (i64, usize)>,
}

/// The plan for `request`, or `None` when the fetcher reads v2 batches as stored.
pub fn plan(request: &FetchRequest) -> Option<Plan> {
    if request.record_magic >= MAGIC_V2 {
        return None;
    }
    let partitions = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.clone(), p.partition),
                    (
                        p.fetch_offset,
                        usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    ),
                )
            })
        })
        .collect();
    Some(Plan {
        magic: request.record_magic,
        partitions,
    })
}

/// Converts every partition of `response` in place.
pub fn apply(broker: &Arc<Broker>, plan: &Plan, response: &mut FetchResponse) {
    for topic in &mut response.topics {
        let (enabled, zstd) = match broker.topics.get(&topic.name) {
            Some(t) => {
                let c = t.config.read();
                (
                    c.down_conversion_enabled(),
                    c.get("compression.type") == Some("zstd"),
                )
            }
            None => (true, false),
        };
        for p in &mut topic.partitions {
            if p.error_code != ErrorCode::NONE {
                continue;
            }
            if !enabled {
                p.error_code = ErrorCode::UNSUPPORTED_VERSION;
                p.records = FetchRecords::default();
                continue;
            }
            if zstd {
                p.error_code = ErrorCode::UNSUPPORTED_COMPRESSION_TYPE;
                p.records = FetchRecords::default();
                continue;
            }
            if p.records.is_empty() {
                continue;
            }
            let (fetch_offset, max_bytes) = plan
                .partitions
                .get(&(topic.name.clone(), p.partition_index))
                .copied()
                .unwrap_or((0, 0));
            let stored = match records_in_memory(&p.records) {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::warn!(topic = %topic.name, partition = p.partition_index, error = %e,
                        "fetch read failed");
                    p.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                    p.records = FetchRecords::default();
                    continue;
                }
            };
            match record_checks::down_convert(&stored, plan.magic, fetch_offset, max_bytes) {
                Ok(converted) => p.records = FetchRecords::from(converted),
                Err(e) => {
                    tracing::warn!(topic = %topic.name, partition = p.partition_index, error = %e,
                        "down-conversion failed");
                    p.error_code = record_checks::down_convert_error_code(&e);
                    p.records = FetchRecords::default();
                }
            }
        }
    }
}
