//! Fetch (long poll, byte limits, KIP-227 sessions), ListOffsets and OffsetForLeaderEpoch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir_protocol::requests::{FetchRequest, ListOffsetsRequest, OffsetForLeaderEpochRequest};
use weir_protocol::responses::{
    EpochEndOffset, FetchPartitionResponse, FetchResponse, FetchTopicResponse,
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
    OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use weir_protocol::ErrorCode;
use weir_storage::StorageError;

use super::produce::storage_error_code;
use crate::broker::Broker;
use crate::fetch_sessions::{RequestedPartition, SessionPartition};

/// ListOffsets special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405: the first offset on local disk (Weir has no tiered storage: the log start).
const EARLIEST_LOCAL: i64 = -4;
/// KIP-1005: the last offset in tiered storage (none: -1, as Kafka answers without it).
const LATEST_TIERED: i64 = -5;

/// Reads one partition of a fetch. `budget` is what is left of the response's `max_bytes`;
/// `min_one_batch` is true until a partition returned data: only then may a batch exceed the
/// limits (KIP-74), so a record larger than them cannot stall a consumer, and a response is never
/// larger than `max_bytes` plus that one batch.
fn read_partition(
    broker: &Broker,
    topic: &str,
    index: i32,
    p: &SessionPartition,
    budget: usize,
    min_one_batch: bool,
) -> FetchPartitionResponse {
    let mut out = FetchPartitionResponse {
        partition_index: index,
        ..FetchPartitionResponse::default()
    };
    let Some(partition) = broker.topics.partition(topic, index) else {
        out.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
        return out;
    };
    let log = &partition.log;
    out.high_watermark = log.high_watermark();
    out.last_stable_offset = out.high_watermark;
    out.log_start_offset = log.log_start_offset();
    let max = usize::try_from(p.partition_max_bytes)
        .unwrap_or(0)
        .min(budget);
    let read = if min_one_batch {
        log.read(p.fetch_offset, max)
    } else if max == 0 {
        return out;
    } else {
        log.read_within(p.fetch_offset, max)
    };
    match read {
        Ok(bytes) => out.records = Bytes::from(bytes),
        Err(e @ StorageError::OffsetOutOfRange { .. }) => out.error_code = storage_error_code(&e),
        Err(e) => {
            tracing::warn!(topic, partition = index, error = %e, "fetch read failed");
            out.error_code = storage_error_code(&e);
        }
    }
    out
}

pub async fn fetch(broker: &Arc<Broker>, request: FetchRequest) -> FetchResponse {
    let requested: Vec<RequestedPartition> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| RequestedPartition {
                key: (t.name.clone(), p.partition),
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
            })
        })
        .collect();
    let forgotten: Vec<(String, i32)> = request
        .forgotten_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), *p)))
        .collect();
    let resolved = {
        let now = broker.now_ms();
        broker.fetch_sessions.lock().resolve(
            request.session_id,
            request.session_epoch,
            requested,
            &forgotten,
            now,
        )
    };
    let resolved = match resolved {
        Ok(r) => r,
        Err(error_code) => {
            return FetchResponse {
                error_code,
                ..FetchResponse::default()
            }
        }
    };
    let max_wait_ms = u64::try_from(request.max_wait_ms)
        .unwrap_or(0)
        .min(broker.config.fetch_max_wait_cap_ms);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(max_wait_ms);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    loop {
        // Register for wake-ups before reading, so an append between the read and the wait is not missed.
        let notified = broker.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        let mut budget = max_bytes;
        let mut total = 0usize;
        let mut any_error = false;
        let mut results: Vec<((String, i32), FetchPartitionResponse)> =
            Vec::with_capacity(resolved.partitions.len());
        for ((topic, index), p) in &resolved.partitions {
            let r = read_partition(broker, topic, *index, p, budget, total == 0);
            total += r.records.len();
            budget = budget.saturating_sub(r.records.len());
            any_error |= r.error_code != ErrorCode::NONE;
            results.push(((topic.clone(), *index), r));
        }
        if total >= min_bytes
            || any_error
            || broker.is_stopping()
            || tokio::time::Instant::now() >= deadline
        {
            return build_response(broker, resolved.session_id, resolved.incremental, results);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            // Deadline passed: answer with whatever there is now.
            continue;
        }
    }
}

fn build_response(
    broker: &Broker,
    session_id: i32,
    incremental: bool,
    results: Vec<((String, i32), FetchPartitionResponse)>,
) -> FetchResponse {
    let mut topics: Vec<FetchTopicResponse> = Vec::new();
    let mut sessions = broker.fetch_sessions.lock();
    for (key, r) in results {
        let include = sessions.note_sent(
            session_id,
            &key,
            r.high_watermark,
            r.log_start_offset,
            !r.records.is_empty(),
            r.error_code != ErrorCode::NONE,
        );
        if incremental && !include {
            continue;
        }
        match topics.last_mut() {
            Some(t) if t.name == key.0 => t.partitions.push(r),
            _ => topics.push(FetchTopicResponse {
                name: key.0,
                partitions: vec![r],
            }),
        }
    }
    FetchResponse {
        session_id,
        topics,
        ..FetchResponse::default()
    }
}

pub fn list_offsets(broker: &Broker, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        ..ListOffsetsPartitionResponse::default()
                    };
                    let Some(partition) = broker.topics.partition(&t.name, p.partition_index)
                    else {
                        out.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
                        return out;
                    };
                    let log = &partition.log;
                    let found = match p.timestamp {
                        LATEST => Ok(Some((log.high_watermark(), -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        LATEST_TIERED => Ok(None),
                        // KAFKA-16310: the record holding the largest timestamp, not the end of
                        // its batch; kept per segment, so this reads one batch.
                        MAX_TIMESTAMP => log.max_timestamp(),
                        ts if ts >= 0 => log.offset_for_timestamp(ts),
                        _ => {
                            out.error_code = ErrorCode::INVALID_REQUEST;
                            return out;
                        }
                    };
                    match found {
                        Ok(Some((offset, timestamp))) => {
                            out.offset = offset;
                            out.timestamp = timestamp;
                        }
                        // Kafka's "no such offset": -1/-1 with an unknown leader epoch.
                        Ok(None) => out.leader_epoch = -1,
                        Err(e) => out.error_code = storage_error_code(&e),
                    }
                    out
                })
                .collect();
            ListOffsetsTopicResponse {
                name: t.name,
                partitions,
            }
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..ListOffsetsResponse::default()
    }
}

/// A single node never changes leader, so every partition has had one epoch (0) that ends at the log end.
pub fn offset_for_leader_epoch(
    broker: &Broker,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| match broker.topics.partition(&t.topic, p.partition) {
                    Some(partition) => EpochEndOffset {
                        partition: p.partition,
                        error_code: ErrorCode::NONE,
                        leader_epoch: 0,
                        end_offset: partition.log.high_watermark(),
                    },
                    None => EpochEndOffset {
                        partition: p.partition,
                        error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        leader_epoch: -1,
                        end_offset: -1,
                    },
                })
                .collect();
            OffsetForLeaderTopicResult {
                topic: t.topic,
                partitions,
            }
        })
        .collect();
    OffsetForLeaderEpochResponse {
        topics,
        ..OffsetForLeaderEpochResponse::default()
    }
}
