//! Produce and InitProducerId.
//!
//! Appends are split in two: validation, the idempotent-sequence check and offset assignment happen
//! in `produce` itself, in the order requests arrived on the connection; waiting for durability
//! (fsync) happens in the returned future, so pipelined requests share one fdatasync.
//!
//! Transactional batches are checked like idempotent ones (epoch, sequence) and, as Kafka, a
//! non-transactional batch from a producer with a transaction open in the partition is refused
//! (INVALID_TXN_STATE); an older producer epoch is INVALID_PRODUCER_EPOCH for every Produce
//! version (Kafka answers so since 2.7). Transaction markers are not produced by clients: the
//! coordinator appends them with `Partition::append_txn_marker`.
//!
//! Batches are stored as sent. Records are looked at only where Kafka's rules need them: message
//! sets of the legacy formats (Produce v0-2) are up-converted to one v2 batch, and records for a
//! compacted topic must have keys (`record_checks`).

use std::sync::Arc;

use weir_protocol::requests::{DescribeProducersRequest, InitProducerIdRequest, ProduceRequest};
use weir_protocol::responses::{
    ActiveProducer, DescribeProducersPartitionResponse, DescribeProducersResponse,
    DescribeProducersTopicResponse, InitProducerIdResponse, NodeEndpoint, ProducePartitionResponse,
    ProduceResponse, ProduceTopicResponse,
};
use weir_protocol::{ErrorCode, Response};
use weir_storage::batch::{BatchError, BatchHeader, ValidatedBatches, MAGIC_V2};
use weir_storage::legacy::MAGIC_OFFSET;
use weir_storage::{AppendOptions, PendingAppend, StorageError};

use super::{blocking, ResponseFuture};
use crate::broker::Broker;
use crate::partition::{AppendError, ReplicaError};
use crate::producers::{ProducerState, SequenceCheck};
use crate::record_checks;
use crate::topics::Partition;

/// What became of one partition's records before durability is awaited.
enum Staged {
    Done(ProducePartitionResponse),
    Pending {
        index: i32,
        partition: Arc<Partition>,
        pending: Vec<PendingAppend>,
        /// Retried batches already in the log: the first one's base offset and the last one's
        /// last offset (acks=all waits for it to be committed, as for a new append).
        duplicates: Option<(i64, i64)>,
        /// The leader epoch the appends were made (and the duplicates found) in.
        leader_epoch: i32,
    },
}

/// A leader append's error as a partition answer.
fn append_failed(broker: &Broker, partition: &Partition, e: &AppendError) -> Staged {
    match e {
        AppendError::Replica(_) => not_leader(broker, &partition.topic, partition.index),
        AppendError::Storage(s) => failed(partition.index, storage_error_code(s), s.to_string()),
    }
}

/// NOT_LEADER_OR_FOLLOWER, naming the current leader where it is known (KIP-951), so the
/// producer can go there without a Metadata round trip.
fn not_leader(broker: &Broker, topic: &str, index: i32) -> Staged {
    Staged::Done(ProducePartitionResponse {
        index,
        error_code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
        error_message: Some(format!("this broker does not lead {topic}-{index}")),
        current_leader: current_leader(broker, topic, index),
        ..ProducePartitionResponse::default()
    })
}

/// The leader of a partition and its epoch as this broker knows them (its own replica's view,
/// else the cluster's leader record).
pub fn current_leader(broker: &Broker, topic: &str, index: i32) -> Option<(i32, i32)> {
    let local = broker
        .topics
        .partition(topic, index)
        .and_then(|p| p.leader().map(|l| (l, p.epoch())));
    local.or_else(|| {
        broker
            .cluster_leader(topic, index)
            .map(|l| (l.leader, l.epoch))
    })
}

/// KIP-951: the addresses of the live brokers among `leaders`, for the `node_endpoints` of a
/// Produce or Fetch answer that names them as partitions' current leaders.
pub fn leader_endpoints(broker: &Broker, leaders: impl Iterator<Item = i32>) -> Vec<NodeEndpoint> {
    let named: std::collections::BTreeSet<i32> = leaders.collect();
    if named.is_empty() {
        return Vec::new();
    }
    broker
        .live_brokers()
        .into_iter()
        .filter(|b| named.contains(&b.id))
        .map(|b| NodeEndpoint {
            node_id: b.id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        })
        .collect()
}

/// Kafka's error code for a replica refusing a request.
pub fn replica_error_code(e: ReplicaError) -> ErrorCode {
    match e {
        ReplicaError::NotLeader => ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ReplicaError::FencedEpoch => ErrorCode::FENCED_LEADER_EPOCH,
        ReplicaError::UnknownEpoch => ErrorCode::UNKNOWN_LEADER_EPOCH,
    }
}

pub fn storage_error_code(e: &StorageError) -> ErrorCode {
    match e {
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
        StorageError::RecordTooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
        StorageError::InvalidBatch(b) => batch_error_code(b),
        _ => ErrorCode::KAFKA_STORAGE_ERROR,
    }
}

fn batch_error_code(e: &BatchError) -> ErrorCode {
    match e {
        BatchError::BadMagic(_) => ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        _ => ErrorCode::CORRUPT_MESSAGE,
    }
}

/// A record without a timestamp (Kafka's `RecordBatch.NO_TIMESTAMP`).
const NO_TIMESTAMP: i64 = -1;

fn failed(index: i32, error_code: ErrorCode, message: String) -> Staged {
    Staged::Done(ProducePartitionResponse {
        index,
        error_code,
        error_message: Some(message),
        ..ProducePartitionResponse::default()
    })
}

/// Kafka's name of a partition in messages: `topic-index`.
fn partition_name(partition: &Partition) -> String {
    format!("{}-{}", partition.topic, partition.index)
}

/// The answer for records that failed a record-level check.
fn rejected(index: i32, r: record_checks::Rejection) -> Staged {
    Staged::Done(ProducePartitionResponse {
        index,
        error_code: r.error_code,
        error_message: Some(r.message),
        record_errors: r.record_errors,
        ..ProducePartitionResponse::default()
    })
}

impl Staged {
    fn is_complete(&self) -> bool {
        match self {
            Staged::Done(_) => true,
            Staged::Pending { pending, .. } => pending.iter().all(PendingAppend::is_complete),
        }
    }
}

/// KIP-890: a producer's first transactional batch in a partition is appended only if its
/// transaction coordinator has the partition in the producer's ongoing transaction, so a late or
/// stray batch cannot open a transaction that no marker will ever end. As Kafka: not in the
/// transaction `INVALID_TXN_STATE`; an older epoch `INVALID_PRODUCER_EPOCH`; a coordinator that
/// cannot answer now (or is still completing the previous transaction) `NOT_ENOUGH_REPLICAS`,
/// which every client version retries without a metadata refresh. This broker's own coordinator
/// is asked here, under the partition's producer-state lock; what was asked before staging
/// ([`ask_coordinators`]: another broker's coordinator, or any adding one for protocol 2) is in
/// `asked`, and a remote answer counts only while its guard holds.
fn verify_transaction_start(
    broker: &Broker,
    partition: &Partition,
    transactional_id: Option<&str>,
    h: &BatchHeader,
    asked: Option<&Asked>,
    producers: &ProducerState,
) -> Result<(), (ErrorCode, String)> {
    // Kafka refuses transactional records in a Produce without a transactional id so.
    let Some(id) = transactional_id else {
        return Err((
            ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            format!(
                "transactional batch of producer {} without a transactional id in {}",
                h.producer_id,
                partition_name(partition)
            ),
        ));
    };
    let target = (partition.topic.clone(), partition.index);
    let verdict = match asked {
        // The coordinator refused to add or verify the partition: its answer stands.
        Some(a) if !a.code.is_none() => a.code,
        _ => super::txn::verify_produce_here(broker, id, h.producer_id, h.producer_epoch, &target)
            .unwrap_or(match asked {
                // Asked before staging, and no marker of the producer came since.
                Some(&Asked {
                    code,
                    guard: Some(guard),
                }) if producers.verification_holds(h.producer_id, h.producer_epoch, guard) => code,
                // Not asked (the batch did not start a transaction then), or the answer went
                // stale: the client retries and this broker asks again.
                _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
            }),
    };
    let code = match verdict {
        ErrorCode::NONE => return Ok(()),
        ErrorCode::PRODUCER_FENCED => ErrorCode::INVALID_PRODUCER_EPOCH,
        ErrorCode::COORDINATOR_NOT_AVAILABLE
        | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        | ErrorCode::NOT_COORDINATOR
        | ErrorCode::CONCURRENT_TRANSACTIONS
        | ErrorCode::REQUEST_TIMED_OUT => ErrorCode::NOT_ENOUGH_REPLICAS,
        _ => ErrorCode::INVALID_TXN_STATE,
    };
    Err((
        code,
        format!(
            "producer {} epoch {} of transactional id {id:?}: {} is not in its ongoing transaction ({verdict:?})",
            h.producer_id,
            h.producer_epoch,
            partition_name(partition)
        ),
    ))
}

/// A transaction coordinator's answer about one partition, asked before staging: its error
/// code, and for a remote coordinator the producer-state guard under which it was asked.
#[derive(Debug, Clone, Copy)]
struct Asked {
    code: ErrorCode,
    guard: Option<u64>,
}

/// What the transaction checks of a Produce request's partitions need in [`stage`].
struct TxnChecks {
    transactional_id: Option<String>,
    /// Whether a first transactional batch in a partition is checked against the coordinator:
    /// always for protocol 2 (Produce v12+, whose partitions [`ask_coordinators`] added), for
    /// protocol 1 when transaction.partition.verification.enable is on.
    verify: bool,
    /// [`ask_coordinators`]' answers, per partition.
    asked: std::collections::HashMap<(String, i32), Asked>,
}

/// KIP-890 before staging, in the request's in-order part (so the connection's later requests
/// wait for it, as Kafka's do): for each partition whose first batch would start the producer's
/// transaction there, the coordinator is asked to add the partition (protocol 2: Produce v12+)
/// or, when it is another broker, whether the partition is in the transaction (protocol 1; a
/// guard is set in the partition's producer state first). Protocol-1 partitions this broker's
/// own coordinator answers for are left to [`stage`], which asks under the producer-state lock.
async fn ask_coordinators(broker: &Arc<Broker>, request: &ProduceRequest) -> TxnChecks {
    let adds = request.adds_partitions_to_txn;
    let mut checks = TxnChecks {
        transactional_id: request.transactional_id.clone(),
        verify: adds || broker.config.transaction_partition_verification_enable,
        asked: std::collections::HashMap::new(),
    };
    let Some(id) = request
        .transactional_id
        .as_deref()
        .filter(|_| checks.verify)
    else {
        return checks;
    };
    if !adds && broker.cluster.is_none() {
        return checks;
    }
    let ask = if adds {
        super::txn::InTxn::Add
    } else {
        super::txn::InTxn::Verify
    };
    for topic in &request.topics {
        for p in &topic.partitions {
            let Some(h) = p
                .records
                .as_deref()
                .and_then(|r| BatchHeader::parse(r).ok())
            else {
                continue;
            };
            let Some(partition) = broker.topics.partition(&topic.name, p.index) else {
                continue;
            };
            let target = (topic.name.clone(), p.index);
            let guard = {
                let mut producers = partition.producers.lock();
                if h.producer_id < 0 || !producers.starts_transaction(&h) {
                    continue;
                }
                let here = super::txn::coordinator_is_local(broker, id);
                if here && !adds {
                    continue;
                }
                (!here).then(|| producers.begin_verification(h.producer_id, h.producer_epoch))
            };
            let code = super::txn::ensure_in_txn(
                broker,
                id,
                h.producer_id,
                h.producer_epoch,
                &target,
                ask,
            )
            .await;
            checks.asked.insert(target, Asked { code, guard });
        }
    }
    checks
}

/// Validates and queues one partition's records. Runs in request order. `legacy_formats_allowed`:
/// the request is Produce v0-2, whose records may be magic-0/1 message sets.
fn stage(
    broker: &Broker,
    partition: &Arc<Partition>,
    records: Option<bytes::Bytes>,
    legacy_formats_allowed: bool,
    txn: &TxnChecks,
) -> Staged {
    let index = partition.index;
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return failed(index, ErrorCode::CORRUPT_MESSAGE, "no record batch".into());
    };
    let Some(topic) = broker.topics.get(&partition.topic) else {
        return failed(
            index,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            "topic deleted".into(),
        );
    };
    let (max_bytes, log_append_time, compacted, timestamp_window) = {
        let config = topic.config.read();
        (
            config.max_message_bytes(),
            config.log_append_time(),
            config.compacted(),
            config.timestamp_window(),
        )
    };
    let mut keys_checked = false;
    let records = match records.get(MAGIC_OFFSET).map(|&m| m as i8) {
        Some(magic @ 0..=1) if !legacy_formats_allowed => {
            return failed(
                index,
                ErrorCode::INVALID_RECORD,
                format!(
                    "Produce v3+ may carry only magic {MAGIC_V2} record batches, not magic {magic}"
                ),
            )
        }
        Some(0..=1) => {
            match record_checks::up_convert(&records, compacted.then(|| partition_name(partition)))
            {
                Ok(batch) => {
                    keys_checked = true;
                    bytes::Bytes::from(batch)
                }
                Err(rejection) => return rejected(index, rejection),
            }
        }
        _ => records,
    };
    // Validated once, here: the log appends these batches without computing the CRCs again.
    let batches = match ValidatedBatches::new(records) {
        Ok(b) => b,
        Err(e) => {
            return failed(
                index,
                batch_error_code(&e),
                format!("invalid record batch: {e}"),
            )
        }
    };
    let headers = batches.headers();
    if let Some(h) = headers.iter().find(|h| h.total_len() > max_bytes as usize) {
        return failed(
            index,
            ErrorCode::MESSAGE_TOO_LARGE,
            format!(
                "batch of {} bytes exceeds max.message.bytes={max_bytes}",
                h.total_len()
            ),
        );
    }
    // Kafka's log validator refuses these from clients: control batches are the transaction
    // coordinator's to write, and a client batch holds exactly one record per offset of its range.
    if headers.iter().any(BatchHeader::is_control) {
        return failed(
            index,
            ErrorCode::INVALID_RECORD,
            format!(
                "clients may not write control batches (topic partition {})",
                partition_name(partition)
            ),
        );
    }
    if let Some(h) = headers.iter().find(|h| {
        h.record_count <= 0 || i64::from(h.record_count) != i64::from(h.last_offset_delta) + 1
    }) {
        return failed(
            index,
            ErrorCode::INVALID_RECORD,
            format!(
                "batch of {} records for an offset range of {} in topic partition {}",
                h.record_count,
                i64::from(h.last_offset_delta) + 1,
                partition_name(partition)
            ),
        );
    }
    // Kafka's validator refuses CreateTime records whose timestamp lies outside the topic's window
    // around the broker's clock. Checked on each batch's first and largest timestamps, from the
    // header, so the records are not decompressed for it (-1: no timestamp, not checked).
    if !log_append_time {
        let (earliest, latest) = timestamp_window.range_at(broker.now_ms());
        let outside = |t: i64| t != NO_TIMESTAMP && !(earliest..=latest).contains(&t);
        if let Some(h) = headers
            .iter()
            .find(|h| outside(h.base_timestamp) || outside(h.max_timestamp))
        {
            let t = if outside(h.max_timestamp) {
                h.max_timestamp
            } else {
                h.base_timestamp
            };
            return failed(
                index,
                ErrorCode::INVALID_TIMESTAMP,
                format!(
                    "Timestamp {t} of a record in the batch at offset {} is out of range. The timestamp should be within [{earliest}, {latest}]",
                    h.base_offset
                ),
            );
        }
    }
    // A transactional batch names its producer, as Kafka's validator requires.
    if let Some(h) = headers
        .iter()
        .find(|h| h.is_transactional() && h.producer_id < 0)
    {
        return failed(
            index,
            ErrorCode::INVALID_RECORD,
            format!(
                "transactional batch without a producer id (epoch {}) in topic partition {}",
                h.producer_epoch,
                partition_name(partition)
            ),
        );
    }
    if compacted && !keys_checked {
        if let Err(rejection) =
            record_checks::check_keys(batches.bytes(), headers, &partition_name(partition))
        {
            return rejected(index, rejection);
        }
    }
    let options = AppendOptions {
        log_append_time_ms: log_append_time.then(|| broker.now_ms()),
        max_batch_bytes: Some(max_bytes),
        ..AppendOptions::default()
    };
    let idempotent = headers.iter().any(|h| h.producer_id >= 0);
    let mut producers = partition.producers.lock();
    // The leadership these appends (and answers to retries) belong to: acks=all waits for it to
    // commit them. A follower answers nothing, not even a retry it holds.
    let Some(leader_epoch) = partition.leader_epoch() else {
        return not_leader(broker, &partition.topic, index);
    };
    if !idempotent {
        let appended = partition.append(batches, &options);
        producers.snapshot_if_rolled(&partition.log);
        return match appended {
            Ok(p) => Staged::Pending {
                index,
                partition: partition.clone(),
                pending: vec![p],
                duplicates: None,
                leader_epoch,
            },
            Err(e) => append_failed(broker, partition, &e),
        };
    }
    // Idempotent batches are checked and appended one by one, holding the producer-state lock so no
    // other append slips between a check and its offset assignment.
    let mut pending = Vec::with_capacity(headers.len());
    let mut duplicates: Option<(i64, i64)> = None;
    for one in batches.into_split() {
        let Some(&h) = one.headers().first() else {
            continue;
        };
        let check = match producers.check(&h) {
            SequenceCheck::Append if txn.verify && producers.starts_transaction(&h) => {
                let asked = txn.asked.get(&(partition.topic.clone(), partition.index));
                match verify_transaction_start(
                    broker,
                    partition,
                    txn.transactional_id.as_deref(),
                    &h,
                    asked,
                    &producers,
                ) {
                    Ok(()) => {
                        if asked.is_some_and(|a| a.guard.is_some()) {
                            producers.end_verification(h.producer_id);
                        }
                        SequenceCheck::Append
                    }
                    Err((code, message)) => {
                        tracing::debug!(error = ?code, asked = ?asked, "{message}");
                        return failed(index, code, message);
                    }
                }
            }
            other => other,
        };
        match check {
            SequenceCheck::Append => match partition.append(one, &options) {
                Ok(p) => {
                    producers.record(&h, p.result.base_offset);
                    pending.push(p);
                }
                Err(e) => return append_failed(broker, partition, &e),
            },
            SequenceCheck::Duplicate {
                base_offset,
                last_offset,
            } => {
                let first = duplicates.map_or(base_offset, |(first, _)| first);
                duplicates = Some((first, last_offset));
            }
            SequenceCheck::Reject(code) => {
                // As Kafka's message: what came and what this partition holds of the producer.
                let message = format!(
                    "producer {} epoch {} sequence {} rejected in {}: {}",
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    partition_name(partition),
                    producers.describe(h.producer_id)
                );
                tracing::debug!(error = ?code, "{message}");
                return failed(index, code, message);
            }
        }
    }
    producers.snapshot_if_rolled(&partition.log);
    Staged::Pending {
        index,
        partition: partition.clone(),
        pending,
        duplicates,
        leader_epoch,
    }
}

/// What acks=all still waits for after a partition's appends are durable here: the high watermark
/// passing the last offset, in the leader epoch of the appends.
type Replication = Option<(Arc<Partition>, i64, i32)>;

/// Waits for durability of the staged appends and builds the partition's answer.
fn finish(staged: Staged) -> (ProducePartitionResponse, Replication) {
    let (index, partition, pending, duplicates, leader_epoch) = match staged {
        Staged::Done(r) => return (r, None),
        Staged::Pending {
            index,
            partition,
            pending,
            duplicates,
            leader_epoch,
        } => (index, partition, pending, duplicates, leader_epoch),
    };
    let last_offset = pending
        .last()
        .map(|p| p.result.last_offset)
        .max(duplicates.map(|(_, last)| last));
    let mut response = ProducePartitionResponse {
        index,
        ..ProducePartitionResponse::default()
    };
    response.base_offset = duplicates.map_or(-1, |(first, _)| first);
    for p in pending {
        match p.wait() {
            Ok(r) => {
                if response.base_offset < 0 {
                    response.base_offset = r.base_offset;
                }
                response.log_append_time_ms = r.log_append_time_ms.unwrap_or(-1);
                response.log_start_offset = r.log_start_offset;
            }
            Err(e) => {
                return (
                    ProducePartitionResponse {
                        index,
                        error_code: storage_error_code(&e),
                        error_message: Some(e.to_string()),
                        ..ProducePartitionResponse::default()
                    },
                    None,
                )
            }
        }
    }
    partition.note_durable();
    (response, last_offset.map(|o| (partition, o, leader_epoch)))
}

/// acks=all: a partition is answered once the high watermark passes its last offset (on a single
/// voter, as soon as it is durable); a leader that loses leadership first answers
/// NOT_LEADER_OR_FOLLOWER (the producer retries, an idempotent one without duplicates), and one
/// that cannot replicate within the request's timeout REQUEST_TIMED_OUT, as Kafka.
async fn await_replication(
    response: ProducePartitionResponse,
    replication: Replication,
    timeout_ms: i32,
) -> ProducePartitionResponse {
    let Some((partition, last_offset, leader_epoch)) = replication else {
        return response;
    };
    let timeout = std::time::Duration::from_millis(u64::try_from(timeout_ms.max(1)).unwrap_or(1));
    let error =
        match tokio::time::timeout(timeout, partition.wait_committed(last_offset, leader_epoch))
            .await
        {
            Ok(Ok(())) => return response,
            Ok(Err(e)) => replica_error_code(e),
            Err(_) => ErrorCode::REQUEST_TIMED_OUT,
        };
    ProducePartitionResponse {
        index: response.index,
        error_code: error,
        error_message: Some(format!(
            "offset {last_offset} not replicated to a majority of the partition's voters"
        )),
        ..ProducePartitionResponse::default()
    }
}

pub async fn produce(broker: &Arc<Broker>, request: ProduceRequest) -> ResponseFuture {
    let checks = ask_coordinators(broker, &request).await;
    let acks = request.acks;
    let timeout_ms = request.timeout_ms;
    let legacy_formats_allowed = request.legacy_formats_allowed;
    let mut staged_topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut staged = Vec::with_capacity(topic.partitions.len());
        // An id `name_topics_by_id` found no topic for.
        let unknown_id = request.uses_topic_ids && topic.name.is_empty();
        for p in topic.partitions {
            let s = if !matches!(acks, -1..=1) {
                failed(
                    p.index,
                    ErrorCode::INVALID_REQUIRED_ACKS,
                    format!("acks={acks} is not 0, 1 or -1"),
                )
            } else if unknown_id {
                failed(
                    p.index,
                    ErrorCode::UNKNOWN_TOPIC_ID,
                    format!("no topic has id {}", uuid::Uuid::from_bytes(topic.topic_id)),
                )
            } else {
                match broker.topics.hosted(&topic.name, p.index) {
                    Ok(partition) => stage(
                        broker,
                        &partition,
                        p.records,
                        legacy_formats_allowed,
                        &checks,
                    ),
                    Err(ErrorCode::NOT_LEADER_OR_FOLLOWER) => {
                        not_leader(broker, &topic.name, p.index)
                    }
                    Err(_) => failed(
                        p.index,
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("unknown topic or partition {}-{}", topic.name, p.index),
                    ),
                }
            };
            staged.push(s);
        }
        staged_topics.push(((topic.name, topic.topic_id), staged));
    }
    let all_complete = staged_topics
        .iter()
        .flat_map(|(_, s)| s)
        .all(Staged::is_complete);
    let broker = broker.clone();
    let finish_all = move || {
        staged_topics
            .into_iter()
            .map(|(name, staged)| (name, staged.into_iter().map(finish).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    };
    Box::pin(async move {
        // Only waiting for an fsync blocks; appends that are already complete (fsync=never or
        // interval) are answered without a hop to the blocking pool.
        let finished = if all_complete {
            finish_all()
        } else {
            blocking(finish_all).await.unwrap_or_default()
        };
        broker.appended.notify_waiters();
        let mut topics = Vec::with_capacity(finished.len());
        for ((name, topic_id), partitions) in finished {
            let mut answers = Vec::with_capacity(partitions.len());
            for (response, replication) in partitions {
                answers.push(if acks == -1 {
                    await_replication(response, replication, timeout_ms).await
                } else {
                    response
                });
            }
            topics.push(ProduceTopicResponse {
                name,
                topic_id,
                partitions: answers,
            });
        }
        if acks == 0 {
            return None;
        }
        // KIP-951: the address of every leader named in an answer (v10+ carries them).
        let node_endpoints = leader_endpoints(
            &broker,
            topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter_map(|p| p.current_leader.map(|(leader, _)| leader)),
        );
        Some(Response::Produce(ProduceResponse {
            topics,
            node_endpoints,
            ..ProduceResponse::default()
        }))
    })
}

/// DescribeProducers (KIP-664): the producers each partition's leader holds state for, as
/// Kafka's `kafka-transactions.sh describe-producers` shows them. Only the leader answers
/// (NOT_LEADER_OR_FOLLOWER elsewhere).
pub fn describe_producers(
    broker: &Broker,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let mut out = DescribeProducersPartitionResponse {
                        partition_index: index,
                        ..DescribeProducersPartitionResponse::default()
                    };
                    match broker.topics.hosted(&t.name, index) {
                        Ok(partition) if partition.leader_epoch().is_some() => {
                            out.active_producers = partition
                                .producers
                                .lock()
                                .active()
                                .map(|(producer_id, e)| ActiveProducer {
                                    producer_id,
                                    producer_epoch: i32::from(e.epoch),
                                    last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                                    last_timestamp: e.last_timestamp_ms,
                                    coordinator_epoch: e.coordinator_epoch,
                                    current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
                                })
                                .collect();
                        }
                        Ok(_) => out.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER,
                        Err(code) => out.error_code = code,
                    }
                    out
                })
                .collect();
            DescribeProducersTopicResponse {
                name: t.name,
                partitions,
            }
        })
        .collect();
    DescribeProducersResponse {
        topics,
        ..DescribeProducersResponse::default()
    }
}

pub fn init_producer_id(broker: &Broker, request: InitProducerIdRequest) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        // Without a transaction coordinator we cannot honour transactional semantics; saying so is
        // better than pretending.
        return InitProducerIdResponse {
            error_code: ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            ..InitProducerIdResponse::default()
        };
    }
    if request.producer_id >= 0 && request.producer_epoch >= 0 {
        // KIP-360: an idempotent producer bumps its epoch to reset sequences after an error.
        if request.producer_epoch < i16::MAX - 1 {
            return InitProducerIdResponse {
                producer_id: request.producer_id,
                producer_epoch: request.producer_epoch + 1,
                ..InitProducerIdResponse::default()
            };
        }
    }
    match broker.producer_ids.next() {
        Ok(id) => InitProducerIdResponse {
            producer_id: id,
            producer_epoch: 0,
            ..InitProducerIdResponse::default()
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            InitProducerIdResponse {
                error_code: ErrorCode::KAFKA_STORAGE_ERROR,
                ..InitProducerIdResponse::default()
            }
        }
    }
}
