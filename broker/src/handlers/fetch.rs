//! Fetch (long poll, byte limits, KIP-227 sessions, isolation levels), ListOffsets and
//! OffsetForLeaderEpoch.
//!
//! read_committed (isolation level 1) reads below the last stable offset (LSO: the high watermark,
//! or the first offset of the oldest open transaction if lower) and gets the aborted transactions
//! of the range it read from the log's aborted-transaction index, never by scanning the log;
//! read_uncommitted reads below the high watermark. Every answer carries the LSO.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir_protocol::requests::{FetchRequest, ListOffsetsRequest, OffsetForLeaderEpochRequest};
use weir_protocol::responses::{
    AbortedTransaction, DeferredRecords, EpochEndOffset, FetchPartitionResponse, FetchRecords,
    FetchResponse, FetchTopicResponse, ListOffsetsPartitionResponse, ListOffsetsResponse,
    ListOffsetsTopicResponse, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use weir_protocol::ErrorCode;
use weir_storage::{RecordSlice, StorageError};

use super::produce::{current_leader, leader_endpoints, replica_error_code, storage_error_code};
use crate::broker::Broker;
use crate::fetch_sessions::{
    FetchedTopic, PartitionKey, RequestedPartition, SentOffsets, SessionPartition, TopicNaming,
};
use crate::topics::Topic;

/// Fetch and ListOffsets isolation level READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// A read's batches as a Fetch answer's records, left in their segment file: the connection
/// sends them from there.
pub(super) fn records_in_file(slice: RecordSlice) -> FetchRecords {
    if slice.is_empty() {
        return FetchRecords::default();
    }
    FetchRecords::Deferred(DeferredRecords::new(slice.len(), slice))
}

/// A partition's records in memory, for the readers that look at them (down-conversion, the
/// admin API, the CLI): records a fetch left in their segment file are read from it.
pub fn records_in_memory(records: &FetchRecords) -> std::io::Result<Bytes> {
    match records {
        FetchRecords::Bytes(b) => Ok(b.clone()),
        FetchRecords::Deferred(d) => match d.source::<RecordSlice>() {
            Some(slice) => slice.read_to_vec().map(Bytes::from),
            None => Err(std::io::Error::other("deferred records of an unknown kind")),
        },
    }
}

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
#[allow(clippy::too_many_arguments)]
fn read_partition(
    broker: &Broker,
    (fetched, index): &PartitionKey,
    p: &SessionPartition,
    current_leader_epoch: i32,
    budget: usize,
    min_one_batch: bool,
    read_committed: bool,
) -> FetchPartitionResponse {
    let index = *index;
    let mut out = FetchPartitionResponse {
        partition_index: index,
        ..FetchPartitionResponse::default()
    };
    let Some(known) = topic_of(broker, fetched) else {
        out.error_code = match fetched {
            FetchedTopic::Name(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            FetchedTopic::Id(_) => ErrorCode::UNKNOWN_TOPIC_ID,
        };
        return out;
    };
    let topic = known.name.as_str();
    let partition = match known.hosted(index).cloned() {
        Ok(p) => p,
        Err(code) => {
            if code == ErrorCode::NOT_LEADER_OR_FOLLOWER {
                out.current_leader = current_leader(broker, topic, index);
            }
            out.error_code = code;
            return out;
        }
    };
    // Consumers read from the leader, below its high watermark (KIP-320 epoch checks first).
    if let Err(e) = partition.check_epoch(current_leader_epoch) {
        out.error_code = replica_error_code(e);
        return out;
    }
    if partition.leader_epoch().is_none() {
        out.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER;
        out.current_leader = current_leader(broker, topic, index);
        return out;
    }
    let log = &partition.log;
    // Under a delivery delay consumers see the log end where the first record not due is
    // (never above the high watermark).
    let delay_ms = known.config.read().delivery_delay_ms();
    out.high_watermark =
        partition.delivery_end(partition.high_watermark(), delay_ms, broker.now_ms());
    out.last_stable_offset = partition.last_stable_offset().min(out.high_watermark);
    out.log_start_offset = log.log_start_offset();
    let upper = if read_committed {
        out.last_stable_offset
    } else {
        out.high_watermark
    };
    let max = usize::try_from(p.partition_max_bytes)
        .unwrap_or(0)
        .min(budget);
    if !min_one_batch && max == 0 {
        return out;
    }
    let read = log.slice_below(p.fetch_offset, max, upper, min_one_batch);
    match read {
        Ok(None) => {}
        Ok(Some(slice)) => {
            if read_committed {
                if let Some(end) = slice.next_offset() {
                    out.aborted_transactions = log
                        .aborted_txns(p.fetch_offset, end)
                        .into_iter()
                        .map(|t| AbortedTransaction {
                            producer_id: t.producer_id,
                            first_offset: t.first_offset,
                        })
                        .collect();
                }
            }
            out.records = records_in_file(slice);
        }
        Err(e @ StorageError::OffsetOutOfRange { .. }) => out.error_code = storage_error_code(&e),
        Err(e) => {
            tracing::warn!(topic, partition = index, error = %e, "fetch read failed");
            out.error_code = storage_error_code(&e);
        }
    }
    out
}

/// The topic a fetch names, as this broker knows it now.
fn topic_of(broker: &Broker, fetched: &FetchedTopic) -> Option<Arc<Topic>> {
    match fetched {
        FetchedTopic::Name(name) => broker.topics.get(name),
        FetchedTopic::Id(id) => broker.topics.by_id(*id),
    }
}

pub async fn fetch(broker: &Arc<Broker>, request: FetchRequest) -> FetchResponse {
    let by_id = request.uses_topic_ids;
    let naming = if by_id {
        TopicNaming::ById
    } else {
        TopicNaming::ByName
    };
    let fetched = |name: &str, id: [u8; 16]| {
        if by_id {
            FetchedTopic::Id(id)
        } else {
            FetchedTopic::Name(name.to_owned())
        }
    };
    let requested: Vec<RequestedPartition> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| RequestedPartition {
                key: (fetched(&t.name, t.topic_id), p.partition),
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
            })
        })
        .collect();
    // Partitions a session brings back from earlier requests are read without an epoch check.
    let leader_epochs: std::collections::HashMap<&PartitionKey, i32> = requested
        .iter()
        .map(|r| (&r.key, r.current_leader_epoch))
        .collect();
    let forgotten: Vec<PartitionKey> = request
        .forgotten_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (fetched(&t.name, t.topic_id), *p))
        })
        .collect();
    let resolved = {
        let now = broker.now_ms();
        broker.fetch_sessions.lock().resolve(
            request.session_id,
            request.session_epoch,
            naming,
            &requested,
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
        let mut results: Vec<(PartitionKey, FetchPartitionResponse)> =
            Vec::with_capacity(resolved.partitions.len());
        for (key, p) in &resolved.partitions {
            let epoch = leader_epochs.get(key).copied().unwrap_or(-1);
            let r = read_partition(
                broker,
                key,
                p,
                epoch,
                budget,
                total == 0,
                request.isolation_level == READ_COMMITTED,
            );
            total += r.records.len();
            budget = budget.saturating_sub(r.records.len());
            any_error |= r.error_code != ErrorCode::NONE;
            results.push((key.clone(), r));
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
    results: Vec<(PartitionKey, FetchPartitionResponse)>,
) -> FetchResponse {
    let mut topics: Vec<FetchTopicResponse> = Vec::new();
    // The topic of the last partition answered, as the response names it.
    let mut last: Option<FetchedTopic> = None;
    let mut sessions = broker.fetch_sessions.lock();
    for (key, r) in results {
        let include = sessions.note_sent(
            session_id,
            &key,
            SentOffsets {
                high_watermark: r.high_watermark,
                last_stable_offset: r.last_stable_offset,
                log_start_offset: r.log_start_offset,
            },
            !r.records.is_empty(),
            r.error_code != ErrorCode::NONE,
        );
        if incremental && !include {
            continue;
        }
        match topics.last_mut() {
            Some(t) if last.as_ref() == Some(&key.0) => t.partitions.push(r),
            _ => {
                // A topic fetched by name is answered by name (before v13, the id is not
                // written); one fetched by id needs its name for the ACL check of the answer.
                let (name, topic_id) = match &key.0 {
                    FetchedTopic::Name(name) => (name.clone(), [0; 16]),
                    FetchedTopic::Id(id) => {
                        let known = topic_of(broker, &key.0);
                        (known.map(|t| t.name.clone()).unwrap_or_default(), *id)
                    }
                };
                topics.push(FetchTopicResponse {
                    name,
                    topic_id,
                    partitions: vec![r],
                });
                last = Some(key.0);
            }
        }
    }
    drop(sessions);
    let node_endpoints = leader_endpoints(
        broker,
        topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.current_leader.map(|(leader, _)| leader)),
    );
    FetchResponse {
        session_id,
        topics,
        node_endpoints,
        ..FetchResponse::default()
    }
}

pub fn list_offsets(broker: &Broker, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == READ_COMMITTED;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let known = broker.topics.get(&t.name);
            let delay_ms = known
                .as_ref()
                .map_or(0, |k| k.config.read().delivery_delay_ms());
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        ..ListOffsetsPartitionResponse::default()
                    };
                    let hosted = known
                        .as_ref()
                        .map_or(Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION), |k| {
                            k.hosted(p.partition_index)
                        });
                    let partition = match hosted {
                        Ok(partition) => partition,
                        Err(code) => {
                            out.error_code = code;
                            return out;
                        }
                    };
                    if let Err(e) = partition.check_epoch(p.current_leader_epoch) {
                        out.error_code = replica_error_code(e);
                        return out;
                    }
                    if partition.leader_epoch().is_none() {
                        out.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER;
                        return out;
                    }
                    let log = &partition.log;
                    // read_committed sees only what is below the last stable offset; under a
                    // delivery delay, nothing from the first record that is not due.
                    let hw = if read_committed {
                        partition
                            .last_stable_offset()
                            .min(partition.high_watermark())
                    } else {
                        partition.high_watermark()
                    };
                    let hw = partition.delivery_end(hw, delay_ms, broker.now_ms());
                    out.leader_epoch = partition.epoch();
                    let found = match p.timestamp {
                        LATEST => Ok(Some((hw, -1))),
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
                    // Nothing above the high watermark (read_committed: the last stable
                    // offset) is visible to consumers.
                    let found = found.map(|f| f.filter(|(o, _)| *o <= hw));
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

/// Where a leader epoch ends in the leader's log (KIP-101/KIP-320): the largest epoch at or
/// below the one asked for and the first offset after it (the log end offset for the latest
/// epoch), from the partition's leader-epoch cache. An epoch older than the log answers
/// UNDEFINED (-1/-1), as Kafka.
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
                .map(|p| {
                    let mut out = EpochEndOffset {
                        partition: p.partition,
                        error_code: ErrorCode::NONE,
                        leader_epoch: -1,
                        end_offset: -1,
                    };
                    let partition = match broker.topics.hosted(&t.topic, p.partition) {
                        Ok(partition) => partition,
                        Err(code) => {
                            out.error_code = code;
                            return out;
                        }
                    };
                    if let Err(e) = partition.check_epoch(p.current_leader_epoch) {
                        out.error_code = replica_error_code(e);
                    } else if partition.leader_epoch().is_none() {
                        out.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER;
                    } else if let Some((epoch, end)) =
                        partition.end_offset_for_epoch(p.leader_epoch)
                    {
                        out.leader_epoch = epoch;
                        out.end_offset = end;
                    }
                    out
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
