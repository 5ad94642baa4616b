//! The owner side of the share state persister (KIP-932): InitializeShareGroupState,
//! ReadShareGroupState, WriteShareGroupState, DeleteShareGroupState and
//! ReadShareGroupStateSummary, sent by the leaders of data partitions on other brokers to the
//! broker that leads the partition of the share state topic each share-partition's key hashes
//! to. Leaders on that broker call the same `ShareCoordinator::owner_*` functions in-process.
//! A broker that does not own a share-partition's state answers it NOT_COORDINATOR, and the
//! sender looks for the owner again. Between Weir brokers, WriteShareGroupState and
//! ReadShareGroupState also carry a share-partition's dead-letter intent in Weir's tagged field
//! (`share::dlq`); a value that does not decode is answered INVALID_REQUEST.

use std::sync::Arc;

use weir_protocol::requests::{
    DeleteShareGroupStateRequest, InitializeShareGroupStateRequest, ReadShareGroupStateRequest,
    ReadShareGroupStateSummaryRequest, WriteShareGroupStateRequest,
};
use weir_protocol::responses::{
    DeleteShareGroupStateResponse, InitializeShareGroupStateResponse, ReadShareGroupStateResponse,
    ReadShareGroupStateSummaryResponse, ReadShareStatePartitionResult,
    ReadShareStateSummaryPartitionResult, ReadShareStateSummaryTopicResult,
    ReadShareStateTopicResult, ShareStatePartitionResult, ShareStateTopicResult,
};
use weir_protocol::{ErrorCode, Response};

use super::{blocking, ResponseFuture};
use crate::broker::Broker;
use crate::consumer_groups::TopicId;
use crate::share::partition::{LoadEpochs, PersistedPartition};
use crate::share::persister::{
    from_wire, intent_from_wire, intent_to_wire, parked_to_wire, to_wire,
};
use crate::share::{IntentChange, Pending, ShareKey, StateAppend};

fn result(partition: i32, code: ErrorCode) -> ShareStatePartitionResult {
    ShareStatePartitionResult {
        partition,
        error_code: code,
        error_message: None,
    }
}

/// Answers once `pending` is durable; results that were NONE become `failed` otherwise.
fn answer_when_durable(
    broker: &Arc<Broker>,
    pending: Pending,
    mut results: Vec<ShareStateTopicResult>,
    wrap: fn(Vec<ShareStateTopicResult>) -> Response,
) -> ResponseFuture {
    let b = broker.clone();
    Box::pin(async move {
        let durable = pending.is_empty()
            || matches!(blocking(move || b.share.wait(pending)).await, Some(Ok(())));
        if !durable {
            for p in results.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == ErrorCode::NONE {
                    p.error_code = ErrorCode::COORDINATOR_NOT_AVAILABLE;
                }
            }
        }
        Some(wrap(results))
    })
}

/// The per-partition walk of InitializeShareGroupState, WriteShareGroupState and
/// DeleteShareGroupState: every partition of every topic (`split` gives a topic's id and
/// partitions, `index` a partition's index) is answered NOT_COORDINATOR where this broker does
/// not own the state, else by `apply` (its appends go to `pending`).
fn each_partition<T, P>(
    broker: &Broker,
    group: &str,
    topics: Vec<T>,
    split: fn(T) -> (TopicId, Vec<P>),
    index: fn(&P) -> i32,
    pending: &mut Pending,
    mut apply: impl FnMut(&ShareKey, P) -> Result<Option<StateAppend>, ErrorCode>,
) -> Vec<ShareStateTopicResult> {
    topics
        .into_iter()
        .map(|t| {
            let (topic_id, partitions) = split(t);
            ShareStateTopicResult {
                topic_id,
                partitions: partitions
                    .into_iter()
                    .map(|p| {
                        let partition = index(&p);
                        let key: ShareKey = (group.to_string(), topic_id, partition);
                        if !broker.share.owns_state(&key) {
                            return result(partition, ErrorCode::NOT_COORDINATOR);
                        }
                        match apply(&key, p) {
                            Ok(a) => {
                                pending.push(a);
                                result(partition, ErrorCode::NONE)
                            }
                            Err(code) => result(partition, code),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// InitializeShareGroupState: share-partitions start at the given offsets (unless they have
/// state already).
pub fn initialize(broker: &Arc<Broker>, r: InitializeShareGroupStateRequest) -> ResponseFuture {
    let now = broker.now_ms();
    let mut pending = Pending::default();
    let results = each_partition(
        broker,
        &r.group_id,
        r.topics,
        |t| (t.topic_id, t.partitions),
        |p| p.partition,
        &mut pending,
        |key, p| {
            if p.start_offset < 0 {
                return Err(ErrorCode::INVALID_REQUEST);
            }
            broker
                .share
                .owner_initialize(key, p.start_offset, p.state_epoch, now)
        },
    );
    answer_when_durable(broker, pending, results, |results| {
        Response::InitializeShareGroupState(InitializeShareGroupStateResponse { results })
    })
}

/// ReadShareGroupState: a leader loads a share-partition (start offset -1: no state yet).
pub fn read(broker: &Broker, r: ReadShareGroupStateRequest) -> ReadShareGroupStateResponse {
    let results = r
        .topics
        .into_iter()
        .map(|t| ReadShareStateTopicResult {
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = ReadShareStatePartitionResult {
                        partition: p.partition,
                        start_offset: -1,
                        ..ReadShareStatePartitionResult::default()
                    };
                    let key: ShareKey = (r.group_id.clone(), t.topic_id, p.partition);
                    if !broker.share.owns_state(&key) {
                        out.error_code = ErrorCode::NOT_COORDINATOR;
                        return out;
                    }
                    match broker.share.owner_read(&key, p.leader_epoch) {
                        Ok(Some(state)) => {
                            out.start_offset = state.persisted.start_offset;
                            out.state_epoch = state.state_epoch;
                            out.state_batches = to_wire(&state.persisted.batches);
                            if let Some(i) = state.intent {
                                out.weir = intent_to_wire(&IntentChange::Set(i));
                            }
                        }
                        Ok(None) => {}
                        Err(code) => out.error_code = code,
                    }
                    out
                })
                .collect(),
        })
        .collect();
    ReadShareGroupStateResponse { results }
}

/// WriteShareGroupState: a leader's changes, durable before the answer.
pub fn write(broker: &Arc<Broker>, r: WriteShareGroupStateRequest) -> ResponseFuture {
    let now = broker.now_ms();
    let mut pending = Pending::default();
    let results = each_partition(
        broker,
        &r.group_id,
        r.topics,
        |t| (t.topic_id, t.partitions),
        |p| p.partition,
        &mut pending,
        |key, p| {
            let batches = from_wire(&p.state_batches).ok_or(ErrorCode::INVALID_REQUEST)?;
            let intent = intent_from_wire(&p.weir).ok_or(ErrorCode::INVALID_REQUEST)?;
            let update = PersistedPartition {
                start_offset: p.start_offset,
                batches,
            };
            let epochs = LoadEpochs {
                leader_epoch: p.leader_epoch,
                state_epoch: p.state_epoch,
            };
            broker.share.owner_write(key, epochs, &update, &intent, now)
        },
    );
    answer_when_durable(broker, pending, results, |results| {
        Response::WriteShareGroupState(weir_protocol::responses::WriteShareGroupStateResponse {
            results,
        })
    })
}

/// DeleteShareGroupState: forgets share-partitions' state.
pub fn delete(broker: &Arc<Broker>, r: DeleteShareGroupStateRequest) -> ResponseFuture {
    let now = broker.now_ms();
    let mut keys = Vec::new();
    let mut pending = Pending::default();
    let results = each_partition(
        broker,
        &r.group_id,
        r.topics,
        |t| (t.topic_id, t.partitions),
        |p| p.partition,
        &mut pending,
        |key, _| {
            keys.push(key.clone());
            Ok(None)
        },
    );
    pending.extend(broker.share.remove_partitions(&keys, now));
    answer_when_durable(broker, pending, results, |results| {
        Response::DeleteShareGroupState(DeleteShareGroupStateResponse { results })
    })
}

/// ReadShareGroupStateSummary: start offsets (-1: no state), the newest leader epochs and, from
/// v1, the counts of completed offsets after the start (KIP-1226).
pub fn read_summary(
    broker: &Broker,
    r: ReadShareGroupStateSummaryRequest,
) -> ReadShareGroupStateSummaryResponse {
    let results = r
        .topics
        .into_iter()
        .map(|t| ReadShareStateSummaryTopicResult {
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = ReadShareStateSummaryPartitionResult {
                        partition: p.partition,
                        start_offset: -1,
                        leader_epoch: -1,
                        delivery_complete_count: -1,
                        ..ReadShareStateSummaryPartitionResult::default()
                    };
                    let key: ShareKey = (r.group_id.clone(), t.topic_id, p.partition);
                    if !broker.share.owns_state(&key) {
                        out.error_code = ErrorCode::NOT_COORDINATOR;
                        return out;
                    }
                    if let Some(summary) = broker.share.owner_summary(&key) {
                        out.start_offset = summary.start_offset;
                        out.state_epoch = summary.state_epoch;
                        out.leader_epoch = summary.leader_epoch;
                        out.delivery_complete_count =
                            i32::try_from(summary.delivery_complete_count).unwrap_or(i32::MAX);
                        out.weir = parked_to_wire(summary.parked);
                    }
                    out
                })
                .collect(),
        })
        .collect();
    ReadShareGroupStateSummaryResponse { results }
}
