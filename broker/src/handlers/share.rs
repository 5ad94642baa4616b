//! Share groups (KIP-932) on the wire: ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch,
//! ShareAcknowledge, and DescribeShareGroupOffsets / AlterShareGroupOffsets /
//! DeleteShareGroupOffsets. The rules live in `share`; this module resolves topic ids, reads the
//! log for the records a fetch acquires, and waits for every state change to be durable before it
//! answers.
//!
//! ShareFetch and ShareAcknowledge update the share session and apply acknowledgements in the
//! in-order part of the request; ShareFetch acquires records in its future (like Fetch, whose
//! reads also happen there), long-polling until something is acquired, the wait is over, or the
//! broker stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir_protocol::requests::{
    AcknowledgementBatch, AlterShareGroupOffsetsRequest, DeleteShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsRequest, ShareAcknowledgeRequest, ShareFetchRequest,
    ShareGroupDescribeRequest, ShareGroupHeartbeatRequest,
};
use weir_protocol::responses::{
    AlterShareGroupOffsetsResponse, AlterShareGroupOffsetsTopicResponse,
    DeleteShareGroupOffsetsResponse, DeleteShareGroupOffsetsTopicResponse,
    DescribeShareGroupOffsetsGroupResponse, DescribeShareGroupOffsetsPartitionResponse,
    DescribeShareGroupOffsetsResponse, DescribeShareGroupOffsetsTopicResponse,
    ShareAcknowledgePartitionData, ShareAcknowledgeResponse, ShareAcknowledgeTopicResponse,
    ShareAcquiredRecords, ShareFetchPartitionData, ShareFetchResponse, ShareFetchTopicResponse,
    ShareGroupAssignment, ShareGroupDescribeAssignment, ShareGroupDescribeResponse,
    ShareGroupDescribeTopicPartitions, ShareGroupDescribedGroup, ShareGroupDescribedMember,
    ShareGroupHeartbeatResponse, ShareGroupPartitionResult, ShareGroupTopicPartitions,
    ShareLeaderIdAndEpoch,
};
use weir_protocol::{ErrorCode, Response};
use weir_storage::batch::BatchHeader;
use weir_storage::StorageError;

use super::consumer_groups::group_records_durable;
use super::produce::leader_endpoints;
use super::{blocking, RequestContext, ResponseFuture};
use crate::authz::{Authz, ResourceType};
use crate::broker::Broker;
use crate::consumer_groups::{Assignment, TopicId};
use crate::share::group::{ShareGroupError, ShareHeartbeat};
use crate::share::partition::{
    AckBatch, AckError, AckType, AcquireMode, Disposition, MemberId, RecordLimit,
};
use crate::share::persister::Owner;
use crate::share::session::{SharePartitionKey, FINAL_EPOCH, INITIAL_EPOCH};
use crate::share::{
    group_config, GroupShareConfig, OffsetReset, Pending, Progress, ShareCoordinator,
    ShareIsolation, ShareKey,
};

/// The share group type and protocol type in ListGroups.
pub const SHARE: &str = "share";
/// The assignor share groups report (Kafka's `SimpleAssignor`).
const ASSIGNOR_NAME: &str = "simple";
/// Records acquired by one ShareFetch when the client names no limit.
const DEFAULT_MAX_RECORDS: usize = 500;
/// The highest acknowledge type of a request without renewals (Reject): Renew (4) needs v2 and
/// the request's `IsRenewAck` (KIP-1222).
const MAX_ACK_TYPE: i8 = 3;
/// The highest acknowledge type of a request whose `IsRenewAck` is set (Renew).
const MAX_ACK_TYPE_RENEW: i8 = 4;

/// One partition's acknowledgements as a request carries them.
struct PartitionAcks<'a> {
    batches: &'a [AcknowledgementBatch],
    /// The highest acknowledge type the request may carry (its `IsRenewAck` allows Renew).
    max_ack_type: i8,
}

impl<'a> PartitionAcks<'a> {
    fn new(batches: &'a [AcknowledgementBatch], is_renew_ack: bool) -> Self {
        let max_ack_type = if is_renew_ack {
            MAX_ACK_TYPE_RENEW
        } else {
            MAX_ACK_TYPE
        };
        PartitionAcks {
            batches,
            max_ack_type,
        }
    }
}

fn group_settings(broker: &Broker, group: &str) -> GroupShareConfig {
    group_config(&broker.share.defaults, &broker.group_overrides(group))
}

/// The message of a group id that names a group of another type.
fn other_type(broker: &Broker, group: &str) -> Option<String> {
    let classic = broker.groups.lock().group_state(group).is_some();
    let consumer = broker.consumer_groups.lock().contains(group);
    (classic || consumer).then(|| format!("Group {group} is not a share group."))
}

fn heartbeat_error(e: ShareGroupError) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse {
        error_code: e.code,
        error_message: e.message,
        ..ShareGroupHeartbeatResponse::default()
    }
}

fn assignment_to_wire(a: &Assignment) -> Vec<ShareGroupTopicPartitions> {
    a.iter()
        .map(|(id, ps)| ShareGroupTopicPartitions {
            topic_id: *id,
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

/// Waits (off the async threads) until `pending` is durable.
pub(super) async fn wait_durable(broker: &Arc<Broker>, pending: Pending) -> bool {
    if pending.is_empty() {
        return true;
    }
    let b = broker.clone();
    matches!(blocking(move || b.share.wait(pending)).await, Some(Ok(())))
}

/// ShareGroupHeartbeat: membership changes are durable (the group epoch) before the answer.
pub async fn share_group_heartbeat(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    client_id: String,
    r: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let hb = ShareHeartbeat {
        group_id: r.group_id,
        member_id: r.member_id,
        member_epoch: r.member_epoch,
        rack_id: r.rack_id,
        subscribed_topic_names: r.subscribed_topic_names,
        client_id,
        client_host: format!("/{}", ctx.peer.ip()),
    };
    if let Err(e) = crate::share::group::validate(&hb) {
        return heartbeat_error(e);
    }
    if let Some(message) = other_type(broker, &hb.group_id) {
        return heartbeat_error(ShareGroupError {
            code: ErrorCode::GROUP_ID_NOT_FOUND,
            message: Some(message),
        });
    }
    let settings = group_settings(broker, &hb.group_id);
    let timeouts = crate::share::group::MemberTimeouts {
        session_timeout_ms: settings.session_timeout_ms,
        heartbeat_interval_ms: settings.heartbeat_interval_ms,
    };
    let topics = broker.topics_view();
    let now = broker.now_ms();
    let mut departed = Vec::new();
    let (result, write) = {
        let mut groups = broker.share.groups.lock();
        let result = groups.heartbeat(hb, &topics, timeouts, now, &mut departed);
        let write = ShareCoordinator::persist_groups(&mut groups, &broker.offsets, now);
        (result, write)
    };
    let Ok(write) = write else {
        return heartbeat_error(ShareGroupError {
            code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
            message: None,
        });
    };
    let epochs_durable = group_records_durable(broker, write, now).await;
    let pending = broker.share.release_departed(&departed, now);
    if !epochs_durable || !wait_durable(broker, pending).await {
        return heartbeat_error(ShareGroupError {
            code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
            message: None,
        });
    }
    match result {
        Ok(a) => ShareGroupHeartbeatResponse {
            member_id: Some(a.member_id),
            member_epoch: a.member_epoch,
            heartbeat_interval_ms: a.heartbeat_interval_ms,
            assignment: a.assignment.map(|a| ShareGroupAssignment {
                topic_partitions: assignment_to_wire(&a),
            }),
            ..ShareGroupHeartbeatResponse::default()
        },
        Err(e) => heartbeat_error(e),
    }
}

/// ShareGroupDescribe.
pub fn share_group_describe(
    broker: &Broker,
    az: &Authz,
    r: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let topics = broker.topics_view();
    let groups = r
        .group_ids
        .into_iter()
        .map(|group_id| {
            let described = {
                let share = broker.share.groups.lock();
                share.get(&group_id).map(|g| ShareGroupDescribedGroup {
                    group_id: group_id.clone(),
                    group_state: g.state().to_string(),
                    group_epoch: g.group_epoch,
                    assignment_epoch: g.group_epoch,
                    assignor_name: ASSIGNOR_NAME.to_string(),
                    members: g
                        .members
                        .values()
                        .map(|m| ShareGroupDescribedMember {
                            member_id: m.member_id.clone(),
                            rack_id: m.rack_id.clone(),
                            member_epoch: m.member_epoch,
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            subscribed_topic_names: m
                                .subscribed_topic_names
                                .iter()
                                .cloned()
                                .collect(),
                            assignment: ShareGroupDescribeAssignment {
                                topic_partitions: m
                                    .assignment
                                    .iter()
                                    .filter_map(|(id, ps)| {
                                        topics.name(id).map(|name| {
                                            ShareGroupDescribeTopicPartitions {
                                                topic_id: *id,
                                                topic_name: name.to_string(),
                                                partitions: ps.iter().copied().collect(),
                                            }
                                        })
                                    })
                                    .collect(),
                            },
                        })
                        .collect(),
                    authorized_operations: if r.include_authorized_operations {
                        az.operations(ResourceType::Group, &group_id)
                    } else {
                        weir_protocol::responses::AUTHORIZED_OPERATIONS_OMITTED
                    },
                    ..ShareGroupDescribedGroup::default()
                })
            };
            described.unwrap_or_else(|| {
                let message = other_type(broker, &group_id)
                    .unwrap_or_else(|| format!("Group {group_id} not found."));
                ShareGroupDescribedGroup {
                    error_code: ErrorCode::GROUP_ID_NOT_FOUND,
                    error_message: Some(message),
                    group_id,
                    ..ShareGroupDescribedGroup::default()
                }
            })
        })
        .collect();
    ShareGroupDescribeResponse {
        groups,
        ..ShareGroupDescribeResponse::default()
    }
}

// ---------------------------------------------------------------------------------------------
// ShareFetch / ShareAcknowledge
// ---------------------------------------------------------------------------------------------

/// A partition of a share request, resolved.
struct Target {
    topic_id: TopicId,
    index: i32,
    /// The topic's name, or the error of a topic id or partition that does not exist.
    topic: Result<String, ErrorCode>,
}

fn resolve(broker: &Broker, topic_id: TopicId, index: i32) -> Target {
    let topic = match broker.topics.by_id(topic_id) {
        None => Err(ErrorCode::UNKNOWN_TOPIC_ID),
        Some(t) if !t.has_partition(index) => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        Some(t) => Ok(t.name.clone()),
    };
    Target {
        topic_id,
        index,
        topic,
    }
}

fn ack_batches(
    batches: &[AcknowledgementBatch],
    max_ack_type: i8,
) -> Result<Vec<AckBatch>, ErrorCode> {
    batches
        .iter()
        .map(|b| {
            let types = b
                .acknowledge_types
                .iter()
                .map(|&t| {
                    if t > max_ack_type {
                        return None;
                    }
                    AckType::from_code(t)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or(ErrorCode::INVALID_REQUEST)?;
            Ok(AckBatch {
                first_offset: b.first_offset,
                last_offset: b.last_offset,
                types,
            })
        })
        .collect()
}

/// Applies one partition's acknowledgements; the change is appended to `pending`.
fn acknowledge(
    broker: &Broker,
    group: &str,
    member: &MemberId,
    target: &Target,
    acks: PartitionAcks,
    now_ms: i64,
    pending: &mut Pending,
) -> ErrorCode {
    if let Err(code) = &target.topic {
        return *code;
    }
    let batches = match ack_batches(acks.batches, acks.max_ack_type) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let key: ShareKey = (group.to_string(), target.topic_id, target.index);
    // Only the leader of the data partition holds its share-partition's state.
    let Some(epoch) = led_epoch(broker, target) else {
        broker.share.drop_loaded(&key);
        return ErrorCode::NOT_LEADER_OR_FOLLOWER;
    };
    let Some(sp) = broker.share.loaded(&key, epoch) else {
        return ErrorCode::INVALID_RECORD_STATE;
    };
    let mut sp = sp.lock();
    let code = match sp.acknowledge(member, &batches, now_ms) {
        Ok(()) => ErrorCode::NONE,
        Err(AckError::InvalidRequest) => ErrorCode::INVALID_REQUEST,
        Err(AckError::InvalidRecordState(_)) => ErrorCode::INVALID_RECORD_STATE,
    };
    match broker.share.persist(&key, &mut sp, now_ms) {
        Ok(p) => pending.extend(p),
        Err(code) => return code,
    }
    code
}

/// The epoch at which this broker leads the partition of `target`, if it leads it.
fn led_epoch(broker: &Broker, target: &Target) -> Option<i32> {
    let topic = target.topic.as_ref().ok()?;
    broker.topics.partition(topic, target.index)?.leader_epoch()
}

fn leader_of(broker: &Broker, topic: &str, index: i32) -> ShareLeaderIdAndEpoch {
    match super::produce::current_leader(broker, topic, index) {
        Some((leader_id, leader_epoch)) => ShareLeaderIdAndEpoch {
            leader_id,
            leader_epoch,
        },
        None => ShareLeaderIdAndEpoch {
            leader_id: -1,
            leader_epoch: -1,
        },
    }
}

/// What one partition of a fetch produced.
struct Fetched {
    target: Target,
    error: ErrorCode,
    ack_error: Option<ErrorCode>,
    records: Bytes,
    acquired: Vec<ShareAcquiredRecords>,
}

/// The first offset of the partition log a new share-partition starts at. "Latest" is the end
/// consumers see (`end`: records not due yet under the topic's delivery delay come after it).
fn initial_offset(
    partition: &crate::partition::Partition,
    reset: OffsetReset,
    end: i64,
    now_ms: i64,
) -> i64 {
    let log = &partition.log;
    match reset {
        OffsetReset::Latest => end,
        OffsetReset::Earliest => log.log_start_offset(),
        OffsetReset::ByDuration(ms) => match log.offset_for_timestamp(now_ms.saturating_sub(ms)) {
            Ok(Some((offset, _))) => offset.min(end),
            _ => end,
        },
    }
}

/// The (first, last) offsets and byte ranges of the batches in `bytes`.
fn batch_ranges(bytes: &[u8]) -> Vec<(i64, i64, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(rest) = bytes.get(pos..) {
        let Ok(h) = BatchHeader::parse(rest) else {
            break;
        };
        let end = pos + h.total_len();
        if end > bytes.len() {
            break;
        }
        // Control batches (transaction markers) are not records a consumer acknowledges.
        if !h.is_control() {
            out.push((h.base_offset, h.last_offset(), pos..end));
        }
        pos = end;
    }
    out
}

/// Marks every record of `batches` that belongs to one of the `aborted` transactions: a
/// transactional batch of the same producer between the transaction's first offset and its
/// ABORT marker (the rule read_committed consumers apply to Fetch's aborted transactions).
fn mark_aborted(
    bytes: &[u8],
    batches: &[(i64, i64, std::ops::Range<usize>)],
    aborted: &[weir_storage::AbortedTxn],
    held: &mut std::collections::HashMap<i64, Disposition>,
) {
    if aborted.is_empty() {
        return;
    }
    for (first, last, range) in batches {
        let Ok(h) = BatchHeader::parse(&bytes[range.clone()]) else {
            continue;
        };
        let in_aborted = h.is_transactional()
            && aborted.iter().any(|t| {
                t.producer_id == h.producer_id
                    && t.first_offset <= *first
                    && *first <= t.last_offset
            });
        if in_aborted {
            for offset in *first..=*last {
                held.insert(offset, Disposition::Aborted);
            }
        }
    }
}

/// Record header naming the time (ms since the epoch) before which a share group must not
/// deliver the record.
pub const HEADER_DELIVER_AT: &str = "weir.deliver.at.ms";
/// Record header delaying delivery by this many ms after the record's timestamp.
pub const HEADER_DELAY: &str = "weir.delay.ms";
/// Record header: the record expires this many ms after its timestamp.
pub const HEADER_TTL: &str = "weir.ttl.ms";

fn header_ms(headers: &[(String, Option<Vec<u8>>)], name: &str) -> Option<i64> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The records of `batches` that must not be delivered now: delayed (headers `weir.deliver.at.ms`,
/// `weir.delay.ms`) or expired (header `weir.ttl.ms`, else `default_ttl_ms`: the topic's
/// `weir.message.ttl.ms` or the group's `weir.share.record.ttl.ms`; counted from the record's
/// timestamp). A batch that cannot be read is delivered as it is.
fn dispositions(
    bytes: &[u8],
    batches: &[(i64, i64, std::ops::Range<usize>)],
    default_ttl_ms: i64,
    now_ms: i64,
) -> std::collections::HashMap<i64, Disposition> {
    let mut out = std::collections::HashMap::new();
    for (_, _, range) in batches {
        let _ = weir_storage::records::visit_records(
            &bytes[range.clone()],
            crate::record_checks::MAX_DECOMPRESSED_BATCH_BYTES,
            |r| {
                let headers = r.headers().unwrap_or_default();
                let ttl = header_ms(&headers, HEADER_TTL)
                    .or((default_ttl_ms > 0).then_some(default_ttl_ms));
                if ttl.is_some_and(|ttl| now_ms >= r.timestamp_ms.saturating_add(ttl)) {
                    out.insert(r.offset, Disposition::Expired);
                    return;
                }
                let due = header_ms(&headers, HEADER_DELIVER_AT).or_else(|| {
                    header_ms(&headers, HEADER_DELAY).map(|d| r.timestamp_ms.saturating_add(d))
                });
                if let Some(due) = due.filter(|&d| d > now_ms) {
                    out.insert(r.offset, Disposition::NotBefore(due));
                }
            },
        );
    }
    out
}

/// Acquires records of one partition for `member`. `budget` is what is left of the response's
/// byte limit; the first partition to return records may exceed it by one batch.
#[allow(clippy::too_many_arguments)]
fn acquire_partition(
    broker: &Broker,
    group: &str,
    member: &MemberId,
    settings: &GroupShareConfig,
    topic: &str,
    target: &Target,
    limit: RecordLimit,
    budget: usize,
    first_with_data: bool,
    now_ms: i64,
    pending: &mut Pending,
) -> (ErrorCode, Bytes, Vec<ShareAcquiredRecords>) {
    let none = Bytes::new();
    let Some(known) = broker.topics.get(topic) else {
        return (ErrorCode::NOT_LEADER_OR_FOLLOWER, none, Vec::new());
    };
    let Some(partition) = known.partition(target.index).cloned() else {
        return (ErrorCode::NOT_LEADER_OR_FOLLOWER, none, Vec::new());
    };
    let key: ShareKey = (group.to_string(), target.topic_id, target.index);
    let Some(epoch) = partition.leader_epoch() else {
        broker.share.drop_loaded(&key);
        return (ErrorCode::NOT_LEADER_OR_FOLLOWER, none, Vec::new());
    };
    let (delay_ms, topic_ttl_ms) = {
        let config = known.config.read();
        (config.delivery_delay_ms(), config.message_ttl_ms())
    };
    // Records under the topic's delivery delay are not read at all until due, so waiting
    // records cost no memory here: the end moves forward as they fall due.
    let upper = match settings.isolation {
        ShareIsolation::ReadUncommitted => partition.high_watermark(),
        ShareIsolation::ReadCommitted => partition.last_stable_offset(),
    };
    let end = partition.delivery_end(upper, delay_ms, now_ms);
    let sp = match broker.share.load_partition(
        &key,
        epoch,
        &settings.partition,
        || initial_offset(&partition, settings.auto_offset_reset, end, now_ms),
        now_ms,
    ) {
        Ok(sp) => sp,
        // The share state's owner is not reachable yet (being elected, or just moved): no
        // records this time, and the consumer fetches again. librdkafka surfaces any code it
        // does not expect here as an error of poll(), for what is a moment's wait.
        Err(ErrorCode::COORDINATOR_NOT_AVAILABLE) => return (ErrorCode::NONE, none, Vec::new()),
        Err(code) => return (code, none, Vec::new()),
    };
    let mut sp = sp.lock();
    if sp.settings() != &settings.partition {
        sp.set_settings(settings.partition.clone());
    }
    let log = &partition.log;
    let log_start = log.log_start_offset();
    // Also when the start offset is past it: parked records below it may be gone.
    sp.log_start_moved(log_start);
    let mut out = (ErrorCode::NONE, none, Vec::new());
    if let Some(from) = sp.next_fetch_offset(now_ms).filter(|&o| o < end) {
        let max = if first_with_data {
            budget.max(1)
        } else {
            budget
        };
        match log.read_below(from.max(log_start), max, end, first_with_data) {
            Ok(bytes) => {
                let batches = batch_ranges(&bytes);
                let ranges: Vec<(i64, i64)> = batches.iter().map(|(f, l, _)| (*f, *l)).collect();
                let ttl_ms = if topic_ttl_ms > 0 {
                    topic_ttl_ms
                } else {
                    settings.record_ttl_ms
                };
                let mut held = dispositions(&bytes, &batches, ttl_ms, now_ms);
                if settings.isolation == ShareIsolation::ReadCommitted {
                    let aborted = log.aborted_txns(from.max(log_start), end);
                    mark_aborted(&bytes, &batches, &aborted, &mut held);
                }
                let acquired = sp.acquire(member, &ranges, limit, now_ms, |o| {
                    held.get(&o).copied().unwrap_or(Disposition::Deliver)
                });
                if !acquired.is_empty() {
                    // Only the batches holding acquired records go back.
                    let mut kept = Vec::with_capacity(bytes.len());
                    for (first, last, range) in &batches {
                        if acquired
                            .iter()
                            .any(|a| a.first_offset <= *last && *first <= a.last_offset)
                        {
                            kept.extend_from_slice(&bytes[range.clone()]);
                        }
                    }
                    out.1 = Bytes::from(kept);
                }
                out.2 = acquired
                    .into_iter()
                    .map(|a| ShareAcquiredRecords {
                        first_offset: a.first_offset,
                        last_offset: a.last_offset,
                        delivery_count: i16::try_from(a.delivery_count).unwrap_or(i16::MAX),
                    })
                    .collect();
            }
            Err(StorageError::OffsetOutOfRange { .. }) => {
                // The log start moved under the read: the next fetch starts past it.
                sp.log_start_moved(log.log_start_offset());
            }
            Err(e) => {
                tracing::warn!(topic, partition = target.index, error = %e, "share fetch read failed");
                out.0 = super::produce::storage_error_code(&e);
            }
        }
    }
    match broker.share.persist(&key, &mut sp, now_ms) {
        Ok(p) => pending.extend(p),
        Err(code) => {
            // Nothing acquired here may go out: its state could not be written.
            out = (code, Bytes::new(), Vec::new());
        }
    }
    out
}

fn share_fetch_error(code: ErrorCode, message: &str) -> ResponseFuture {
    super::ready(Response::ShareFetch(ShareFetchResponse {
        error_code: code,
        error_message: Some(message.to_string()),
        ..ShareFetchResponse::default()
    }))
}

/// ShareFetch.
pub fn share_fetch(broker: &Arc<Broker>, r: ShareFetchRequest) -> ResponseFuture {
    let (Some(group), Some(member_id)) = (
        r.group_id.clone().filter(|g| !g.is_empty()),
        r.member_id.clone().filter(|m| !m.is_empty()),
    ) else {
        return share_fetch_error(
            ErrorCode::INVALID_REQUEST,
            "GroupId and MemberId are required.",
        );
    };
    let epoch = r.share_session_epoch;
    let has_acks = r.topics.iter().any(|t| {
        t.partitions
            .iter()
            .any(|p| !p.acknowledgement_batches.is_empty())
    });
    if epoch == INITIAL_EPOCH && has_acks {
        return share_fetch_error(
            ErrorCode::INVALID_REQUEST,
            "Acknowledge data is not allowed when opening a share session.",
        );
    }
    let Some(acquire_mode) = AcquireMode::from_code(r.share_acquire_mode) else {
        return share_fetch_error(ErrorCode::INVALID_REQUEST, "Unknown ShareAcquireMode.");
    };
    // A renewing fetch only acknowledges (KIP-1222): time spent fetching could outlast the
    // locks it renews, so it must ask for nothing.
    if r.is_renew_ack
        && (r.max_wait_ms != 0 || r.min_bytes != 0 || r.max_bytes != 0 || r.max_records != 0)
    {
        return share_fetch_error(
            ErrorCode::INVALID_REQUEST,
            "A ShareFetch with renew acknowledgements must not ask for records.",
        );
    }
    let now = broker.now_ms();
    let requested: Vec<SharePartitionKey> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, p.partition_index)))
        .collect();
    let forgotten: Vec<SharePartitionKey> = r
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, *p)))
        .collect();
    // The session, in request order.
    let session = {
        let mut sessions = broker.share.sessions.lock();
        match epoch {
            INITIAL_EPOCH => sessions.open(&group, &member_id, requested.iter().copied(), now),
            FINAL_EPOCH => sessions.close(&group, &member_id).map(|()| Vec::new()),
            e => sessions.advance(
                &group,
                &member_id,
                e,
                requested.iter().copied(),
                &forgotten,
                now,
            ),
        }
    };
    let session_partitions = match session {
        Ok(p) => p,
        Err(code) => return share_fetch_error(code, "The share session was refused."),
    };
    if epoch == INITIAL_EPOCH {
        // A new session reads what the owner has now (the group may have been deleted and
        // created again, or its offsets altered, through another broker).
        for (topic_id, index) in &requested {
            broker
                .share
                .drop_if_idle(&(group.clone(), *topic_id, *index));
        }
    }
    // Acknowledgements, in request order.
    let member: MemberId = Arc::from(member_id.as_str());
    let mut pending = Pending::default();
    let mut ack_errors: BTreeMap<SharePartitionKey, ErrorCode> = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            if p.acknowledgement_batches.is_empty() {
                continue;
            }
            let target = resolve(broker, t.topic_id, p.partition_index);
            let code = acknowledge(
                broker,
                &group,
                &member,
                &target,
                PartitionAcks::new(&p.acknowledgement_batches, r.is_renew_ack),
                now,
                &mut pending,
            );
            ack_errors.insert((t.topic_id, p.partition_index), code);
        }
    }
    if has_acks {
        broker.share.available.notify_waiters();
    }
    let b = broker.clone();
    let max_wait_ms = u64::try_from(r.max_wait_ms)
        .unwrap_or(0)
        .min(broker.config.fetch_max_wait_cap_ms);
    let limit = RecordLimit {
        max_records: usize::try_from(r.max_records)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_RECORDS),
        mode: acquire_mode,
    };
    let fetch = epoch != FINAL_EPOCH && !r.is_renew_ack;
    let max_bytes = usize::try_from(r.max_bytes).unwrap_or(0);
    let full = epoch == INITIAL_EPOCH;
    Box::pin(async move {
        let durable = wait_durable(&b, pending).await;
        if !durable {
            for code in ack_errors.values_mut() {
                *code = ErrorCode::KAFKA_STORAGE_ERROR;
            }
        }
        let settings = group_settings(&b, &group);
        let fetched = if !fetch {
            Vec::new()
        } else {
            fetch_loop(
                &b,
                &group,
                &member,
                &settings,
                &session_partitions,
                max_wait_ms,
                limit,
                max_bytes,
            )
            .await
        };
        Some(Response::ShareFetch(build_fetch_response(
            &b, &settings, fetched, ack_errors, &requested, full,
        )))
    })
}

#[allow(clippy::too_many_arguments)]
async fn fetch_loop(
    broker: &Arc<Broker>,
    group: &str,
    member: &MemberId,
    settings: &GroupShareConfig,
    partitions: &[SharePartitionKey],
    max_wait_ms: u64,
    limit: RecordLimit,
    max_bytes: usize,
) -> Vec<Fetched> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(max_wait_ms);
    loop {
        // Register for wake-ups before looking, so nothing between the look and the wait is missed.
        let appended = broker.appended.notified();
        let available = broker.share.available.notified();
        tokio::pin!(appended);
        tokio::pin!(available);
        appended.as_mut().enable();
        available.as_mut().enable();

        let b = broker.clone();
        let group_owned = group.to_string();
        let member_owned = member.clone();
        let settings_owned = settings.clone();
        let partitions_owned = partitions.to_vec();
        let round = blocking(move || {
            acquire_round(
                &b,
                &group_owned,
                &member_owned,
                &settings_owned,
                &partitions_owned,
                limit,
                max_bytes,
            )
        })
        .await;
        let Some((fetched, pending)) = round else {
            return Vec::new();
        };
        let durable = wait_durable(broker, pending).await;
        let fetched = if durable {
            fetched
        } else {
            // The share-partition's start was not persisted: hand nothing out from it.
            fetched
                .into_iter()
                .map(|mut f| {
                    if !f.acquired.is_empty() {
                        f.error = ErrorCode::KAFKA_STORAGE_ERROR;
                    }
                    f
                })
                .collect()
        };
        let got = fetched
            .iter()
            .any(|f| !f.acquired.is_empty() || f.error != ErrorCode::NONE);
        if got || broker.is_stopping() || tokio::time::Instant::now() >= deadline {
            return fetched;
        }
        // Nothing yet: wait for an append, a release, or the deadline (the coordinator's timer
        // wakes `available` when locks run out and held-back records come due).
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = &mut appended => {}
            _ = &mut available => {}
        }
    }
}

/// One pass over a session's partitions, acquiring what is there. Blocking (reads the log).
fn acquire_round(
    broker: &Broker,
    group: &str,
    member: &MemberId,
    settings: &GroupShareConfig,
    partitions: &[SharePartitionKey],
    limit: RecordLimit,
    max_bytes: usize,
) -> (Vec<Fetched>, Pending) {
    let now = broker.now_ms();
    let mut pending = Pending::default();
    let mut left_records = limit.max_records;
    let mut budget = max_bytes;
    let mut any_data = false;
    let mut out = Vec::with_capacity(partitions.len());
    for &(topic_id, index) in partitions {
        let target = resolve(broker, topic_id, index);
        let mut f = Fetched {
            error: ErrorCode::NONE,
            ack_error: None,
            records: Bytes::new(),
            acquired: Vec::new(),
            target,
        };
        match f.target.topic.clone() {
            Err(code) => f.error = code,
            Ok(topic) if left_records > 0 => {
                let (error, records, acquired) = acquire_partition(
                    broker,
                    group,
                    member,
                    settings,
                    &topic,
                    &f.target,
                    RecordLimit {
                        max_records: left_records,
                        ..limit
                    },
                    budget,
                    !any_data,
                    now,
                    &mut pending,
                );
                let n: i64 = acquired
                    .iter()
                    .map(|a| a.last_offset - a.first_offset + 1)
                    .sum();
                left_records = left_records.saturating_sub(usize::try_from(n).unwrap_or(0));
                budget = budget.saturating_sub(records.len());
                any_data |= !records.is_empty();
                f.error = error;
                f.records = records;
                f.acquired = acquired;
            }
            Ok(_) => {}
        }
        out.push(f);
    }
    (out, pending)
}

/// How long a group's acquired records stay locked, as ShareFetch and ShareAcknowledge say it.
fn lock_timeout_ms(settings: &GroupShareConfig) -> i32 {
    i32::try_from(settings.partition.record_lock_duration_ms).unwrap_or(i32::MAX)
}

fn build_fetch_response(
    broker: &Broker,
    settings: &GroupShareConfig,
    fetched: Vec<Fetched>,
    mut ack_errors: BTreeMap<SharePartitionKey, ErrorCode>,
    requested: &[SharePartitionKey],
    full: bool,
) -> ShareFetchResponse {
    let mut by_topic: BTreeMap<TopicId, Vec<ShareFetchPartitionData>> = BTreeMap::new();
    let mut leaders_named = Vec::new();
    for mut f in fetched {
        let key = (f.target.topic_id, f.target.index);
        f.ack_error = ack_errors.remove(&key);
        let include = full
            || requested.contains(&key)
            || f.ack_error.is_some()
            || !f.acquired.is_empty()
            || f.error != ErrorCode::NONE;
        if !include {
            continue;
        }
        let current_leader = match &f.target.topic {
            Ok(topic) => leader_of(broker, topic, f.target.index),
            Err(_) => ShareLeaderIdAndEpoch {
                leader_id: -1,
                leader_epoch: -1,
            },
        };
        if f.error == ErrorCode::NOT_LEADER_OR_FOLLOWER && current_leader.leader_id >= 0 {
            leaders_named.push(current_leader.leader_id);
        }
        by_topic
            .entry(f.target.topic_id)
            .or_default()
            .push(ShareFetchPartitionData {
                partition_index: f.target.index,
                error_code: f.error,
                acknowledge_error_code: f.ack_error.unwrap_or(ErrorCode::NONE),
                current_leader,
                records: Some(f.records),
                acquired_records: f.acquired,
                ..ShareFetchPartitionData::default()
            });
    }
    // Acknowledgements of partitions no longer fetched (forgotten, or a final request).
    for ((topic_id, index), code) in ack_errors {
        by_topic
            .entry(topic_id)
            .or_default()
            .push(ShareFetchPartitionData {
                partition_index: index,
                acknowledge_error_code: code,
                current_leader: ShareLeaderIdAndEpoch {
                    leader_id: -1,
                    leader_epoch: -1,
                },
                records: Some(Bytes::new()),
                ..ShareFetchPartitionData::default()
            });
    }
    ShareFetchResponse {
        acquisition_lock_timeout_ms: lock_timeout_ms(settings),
        responses: by_topic
            .into_iter()
            .map(|(topic_id, partitions)| ShareFetchTopicResponse {
                topic_id,
                partitions,
            })
            .collect(),
        node_endpoints: leader_endpoints(broker, leaders_named.into_iter()),
        ..ShareFetchResponse::default()
    }
}

/// ShareAcknowledge.
pub fn share_acknowledge(broker: &Arc<Broker>, r: ShareAcknowledgeRequest) -> ResponseFuture {
    let error = |code: ErrorCode, message: &str| {
        super::ready(Response::ShareAcknowledge(ShareAcknowledgeResponse {
            error_code: code,
            error_message: Some(message.to_string()),
            ..ShareAcknowledgeResponse::default()
        }))
    };
    let (Some(group), Some(member_id)) = (
        r.group_id.clone().filter(|g| !g.is_empty()),
        r.member_id.clone().filter(|m| !m.is_empty()),
    ) else {
        return error(
            ErrorCode::INVALID_REQUEST,
            "GroupId and MemberId are required.",
        );
    };
    let epoch = r.share_session_epoch;
    let now = broker.now_ms();
    let session = {
        let mut sessions = broker.share.sessions.lock();
        match epoch {
            // Acknowledgements belong to an open session.
            INITIAL_EPOCH => Err(ErrorCode::INVALID_SHARE_SESSION_EPOCH),
            FINAL_EPOCH => sessions.close(&group, &member_id),
            e => sessions
                .advance(&group, &member_id, e, [], &[], now)
                .map(|_| ()),
        }
    };
    if let Err(code) = session {
        return error(code, "The share session was refused.");
    }
    let member: MemberId = Arc::from(member_id.as_str());
    let mut pending = Pending::default();
    let mut responses = Vec::with_capacity(r.topics.len());
    for t in &r.topics {
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let target = resolve(broker, t.topic_id, p.partition_index);
                let code = acknowledge(
                    broker,
                    &group,
                    &member,
                    &target,
                    PartitionAcks::new(&p.acknowledgement_batches, r.is_renew_ack),
                    now,
                    &mut pending,
                );
                let current_leader = match &target.topic {
                    Ok(topic) => leader_of(broker, topic, p.partition_index),
                    Err(_) => ShareLeaderIdAndEpoch {
                        leader_id: -1,
                        leader_epoch: -1,
                    },
                };
                ShareAcknowledgePartitionData {
                    partition_index: p.partition_index,
                    error_code: code,
                    current_leader,
                    ..ShareAcknowledgePartitionData::default()
                }
            })
            .collect();
        responses.push(ShareAcknowledgeTopicResponse {
            topic_id: t.topic_id,
            partitions,
        });
    }
    broker.share.available.notify_waiters();
    let b = broker.clone();
    Box::pin(async move {
        if !wait_durable(&b, pending).await {
            for p in responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == ErrorCode::NONE {
                    p.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                }
            }
        }
        let settings = group_settings(&b, &group);
        Some(Response::ShareAcknowledge(ShareAcknowledgeResponse {
            acquisition_lock_timeout_ms: lock_timeout_ms(&settings),
            responses,
            ..ShareAcknowledgeResponse::default()
        }))
    })
}

// ---------------------------------------------------------------------------------------------
// Share group offsets (admin)
// ---------------------------------------------------------------------------------------------

/// DescribeShareGroupOffsets: the start offset of each share-partition (-1 without state).
pub fn describe_share_group_offsets(
    broker: &Broker,
    r: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    // A replica here knows the partition's high watermark (a follower's trails the leader's a
    // little); without one the lag is not available (-1).
    let high_watermark = |topic: &str, index: i32| {
        broker
            .topics
            .partition(topic, index)
            .map(|p| p.high_watermark())
    };
    let groups = r
        .groups
        .into_iter()
        .map(|g| {
            let exists = broker.share.groups.lock().contains(&g.group_id);
            if !exists {
                let message = other_type(broker, &g.group_id)
                    .unwrap_or_else(|| format!("Group {} not found.", g.group_id));
                return DescribeShareGroupOffsetsGroupResponse {
                    group_id: g.group_id,
                    error_code: ErrorCode::GROUP_ID_NOT_FOUND,
                    error_message: Some(message),
                    ..DescribeShareGroupOffsetsGroupResponse::default()
                };
            }
            // The share-partitions asked about: those of the named topics, or of every topic.
            let keys: Vec<ShareKey> = match &g.topics {
                Some(topics) => share_keys(
                    &g.group_id,
                    topics
                        .iter()
                        .filter_map(|t| broker.topics.get(&t.topic_name)),
                ),
                None => share_keys_of_all_topics(broker, &g.group_id),
            };
            let progress = match broker.share.summaries_of(&g.group_id, &keys) {
                Ok(progress) => progress,
                Err(error_code) => {
                    return DescribeShareGroupOffsetsGroupResponse {
                        group_id: g.group_id,
                        error_code,
                        error_message: None,
                        ..DescribeShareGroupOffsetsGroupResponse::default()
                    }
                }
            };
            let topics = match g.topics {
                Some(topics) => topics
                    .into_iter()
                    .map(|t| {
                        let topic = broker.topics.get(&t.topic_name);
                        let topic_id = topic.as_ref().map_or([0; 16], |x| x.id);
                        let name = &t.topic_name;
                        let partitions = t
                            .partitions
                            .iter()
                            .copied()
                            .map(|p| {
                                let known = topic.as_ref().is_some_and(|x| x.has_partition(p));
                                let (start_offset, lag) =
                                    progress.get(&(topic_id, p)).map_or((-1, -1), |at| {
                                        (at.start_offset, at.lag(high_watermark(name, p)))
                                    });
                                DescribeShareGroupOffsetsPartitionResponse {
                                    partition_index: p,
                                    start_offset,
                                    leader_epoch: -1,
                                    lag,
                                    error_code: if known {
                                        ErrorCode::NONE
                                    } else {
                                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                                    },
                                    error_message: None,
                                }
                            })
                            .collect();
                        DescribeShareGroupOffsetsTopicResponse {
                            topic_name: t.topic_name,
                            topic_id,
                            partitions,
                        }
                    })
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<TopicId, Vec<(i32, Progress)>> = BTreeMap::new();
                    for ((t, p), at) in progress {
                        by_topic.entry(t).or_default().push((p, at));
                    }
                    by_topic
                        .into_iter()
                        .filter_map(|(topic_id, ps)| {
                            let topic = broker.topics.by_id(topic_id)?;
                            Some(DescribeShareGroupOffsetsTopicResponse {
                                topic_name: topic.name.clone(),
                                topic_id,
                                partitions: ps
                                    .into_iter()
                                    .map(|(p, at)| DescribeShareGroupOffsetsPartitionResponse {
                                        partition_index: p,
                                        start_offset: at.start_offset,
                                        leader_epoch: -1,
                                        lag: at.lag(high_watermark(&topic.name, p)),
                                        ..DescribeShareGroupOffsetsPartitionResponse::default()
                                    })
                                    .collect(),
                            })
                        })
                        .collect()
                }
            };
            DescribeShareGroupOffsetsGroupResponse {
                group_id: g.group_id,
                topics,
                ..DescribeShareGroupOffsetsGroupResponse::default()
            }
        })
        .collect();
    DescribeShareGroupOffsetsResponse {
        groups,
        ..DescribeShareGroupOffsetsResponse::default()
    }
}

/// Every share-partition `group` may have state for: each partition of each topic that is not
/// internal (a group coordinator does not know which of them its group read; a delete of
/// state that does not exist is answered NONE by the owner).
pub(super) fn share_keys_of_all_topics(broker: &Broker, group: &str) -> Vec<ShareKey> {
    share_keys(
        group,
        broker.topics.all().into_iter().filter(|t| !t.is_internal),
    )
}

/// The share-partitions of `group` in every partition of `topics`.
fn share_keys<T: std::ops::Deref<Target = crate::topics::Topic>>(
    group: &str,
    topics: impl Iterator<Item = T>,
) -> Vec<ShareKey> {
    topics
        .flat_map(|t| {
            let count = i32::try_from(t.partition_count()).unwrap_or(i32::MAX);
            let id = t.id;
            (0..count).map(move |p| (group.to_string(), id, p))
        })
        .collect()
}

/// Whether a share group may have its offsets changed: it must not have members (Kafka's
/// NON_EMPTY_GROUP), nor be a group of another type.
fn check_empty_share_group(
    broker: &Broker,
    group: &str,
    create: bool,
) -> Result<(), (ErrorCode, String)> {
    if let Some(message) = other_type(broker, group) {
        return Err((ErrorCode::GROUP_ID_NOT_FOUND, message));
    }
    let groups = broker.share.groups.lock();
    match groups.get(group) {
        Some(g) if !g.members.is_empty() => Err((
            ErrorCode::NON_EMPTY_GROUP,
            format!("The group {group} has active members."),
        )),
        Some(_) => Ok(()),
        None if create => Ok(()),
        None => Err((
            ErrorCode::GROUP_ID_NOT_FOUND,
            format!("Group {group} not found."),
        )),
    }
}

/// AlterShareGroupOffsets: new start offsets for share-partitions of an empty share group.
pub fn alter_share_group_offsets(
    broker: &Arc<Broker>,
    r: AlterShareGroupOffsetsRequest,
) -> ResponseFuture {
    let reply = |response: AlterShareGroupOffsetsResponse| {
        super::ready(Response::AlterShareGroupOffsets(response))
    };
    if let Err((code, message)) = check_empty_share_group(broker, &r.group_id, true) {
        return reply(AlterShareGroupOffsetsResponse {
            error_code: code,
            error_message: Some(message),
            ..AlterShareGroupOffsetsResponse::default()
        });
    }
    let now = broker.now_ms();
    // The group exists from now on (its coordinator writes it down, as at a first heartbeat).
    let group_write = {
        let mut groups = broker.share.groups.lock();
        if let Err(e) = groups.ensure(&r.group_id) {
            return reply(AlterShareGroupOffsetsResponse {
                error_code: e.code,
                error_message: e.message,
                ..AlterShareGroupOffsetsResponse::default()
            });
        }
        ShareCoordinator::persist_groups(&mut groups, &broker.offsets, now)
    };
    let Ok(group_write) = group_write else {
        return reply(AlterShareGroupOffsetsResponse {
            error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
            ..AlterShareGroupOffsetsResponse::default()
        });
    };
    let mut pending = Pending::default();
    // Resets of state owned by another broker: done after the in-order part (they wait for
    // it), each with the place of its answer (topic, partition).
    let mut remote: Vec<(usize, usize, ShareKey, i64)> = Vec::new();
    let responses: Vec<AlterShareGroupOffsetsTopicResponse> = r
        .topics
        .into_iter()
        .enumerate()
        .map(|(ti, t)| {
            let topic = broker.topics.get(&t.topic_name);
            let topic_id = topic.as_ref().map_or([0; 16], |x| x.id);
            let partitions = t
                .partitions
                .into_iter()
                .enumerate()
                .map(|(pi, p)| {
                    let code = match &topic {
                        Some(x) if x.has_partition(p.partition_index) => {
                            let key: ShareKey = (r.group_id.clone(), topic_id, p.partition_index);
                            // Checked against the log where it is led here (a follower's
                            // high watermark may lag behind the leader's).
                            let valid = broker
                                .topics
                                .partition(&x.name, p.partition_index)
                                .filter(|part| part.leader_epoch().is_some())
                                .is_none_or(|part| {
                                    p.start_offset >= part.log.log_start_offset()
                                        && p.start_offset <= part.high_watermark()
                                });
                            if !valid || p.start_offset < 0 {
                                ErrorCode::INVALID_REQUEST
                            } else if broker.share.owner_of(&key) == Owner::Local {
                                match broker.share.reset(&key, p.start_offset, now) {
                                    Ok(pd) => {
                                        pending.extend(pd);
                                        ErrorCode::NONE
                                    }
                                    Err(_) => ErrorCode::KAFKA_STORAGE_ERROR,
                                }
                            } else {
                                remote.push((ti, pi, key, p.start_offset));
                                ErrorCode::NONE
                            }
                        }
                        _ => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    };
                    ShareGroupPartitionResult {
                        partition_index: p.partition_index,
                        error_code: code,
                        error_message: None,
                    }
                })
                .collect();
            AlterShareGroupOffsetsTopicResponse {
                topic_name: t.topic_name,
                topic_id,
                partitions,
            }
        })
        .collect();
    let b = broker.clone();
    Box::pin(async move {
        let mut responses = responses;
        let group_durable = group_records_durable(&b, group_write, now).await;
        if !remote.is_empty() {
            let b2 = b.clone();
            let outcomes = blocking(move || {
                remote
                    .into_iter()
                    .map(|(ti, pi, key, offset)| {
                        let code = b2
                            .share
                            .reset_state(&key, offset, now)
                            .and_then(|pd| {
                                b2.share
                                    .wait(pd)
                                    .map_err(|_| ErrorCode::COORDINATOR_NOT_AVAILABLE)
                            })
                            .err();
                        (ti, pi, code)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (ti, pi, code) in outcomes {
                if let Some(p) = responses.get_mut(ti).and_then(|t| t.partitions.get_mut(pi)) {
                    p.error_code = code.unwrap_or(ErrorCode::NONE);
                }
            }
        }
        if !group_durable || !wait_durable(&b, pending).await {
            for p in responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == ErrorCode::NONE {
                    p.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                }
            }
        }
        Some(Response::AlterShareGroupOffsets(
            AlterShareGroupOffsetsResponse {
                responses,
                ..AlterShareGroupOffsetsResponse::default()
            },
        ))
    })
}

/// DeleteShareGroupOffsets: forgets the share state of whole topics of an empty share group.
pub fn delete_share_group_offsets(
    broker: &Arc<Broker>,
    r: DeleteShareGroupOffsetsRequest,
) -> ResponseFuture {
    if let Err((code, message)) = check_empty_share_group(broker, &r.group_id, false) {
        return super::ready(Response::DeleteShareGroupOffsets(
            DeleteShareGroupOffsetsResponse {
                error_code: code,
                error_message: Some(message),
                ..DeleteShareGroupOffsetsResponse::default()
            },
        ));
    }
    let now = broker.now_ms();
    let mut pending = Pending::default();
    let responses: Vec<DeleteShareGroupOffsetsTopicResponse> = r
        .topics
        .into_iter()
        .map(|t| match broker.topics.get(&t.topic_name) {
            Some(topic) => {
                // Every partition of the topic, wherever its state is owned (a delete of
                // state that does not exist does nothing).
                let count = i32::try_from(topic.partition_count()).unwrap_or(i32::MAX);
                let keys: Vec<ShareKey> = (0..count)
                    .map(|p| (r.group_id.clone(), topic.id, p))
                    .collect();
                let error_code = match broker.share.delete_state(&keys, now) {
                    Ok(p) => {
                        pending.extend(p);
                        ErrorCode::NONE
                    }
                    Err(code) => code,
                };
                DeleteShareGroupOffsetsTopicResponse {
                    topic_name: t.topic_name,
                    topic_id: topic.id,
                    error_code,
                    error_message: None,
                }
            }
            None => DeleteShareGroupOffsetsTopicResponse {
                topic_name: t.topic_name,
                topic_id: [0; 16],
                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                error_message: None,
            },
        })
        .collect();
    let b = broker.clone();
    Box::pin(async move {
        let mut responses = responses;
        if !wait_durable(&b, pending).await {
            for t in &mut responses {
                if t.error_code == ErrorCode::NONE {
                    t.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                }
            }
        }
        Some(Response::DeleteShareGroupOffsets(
            DeleteShareGroupOffsetsResponse {
                responses,
                ..DeleteShareGroupOffsetsResponse::default()
            },
        ))
    })
}
