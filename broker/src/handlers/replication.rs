//! The inter-broker side of replication, in a cluster: votes (Vote, with KIP-996 pre-votes),
//! leader announcements and resignations (BeginQuorumEpoch, EndQuorumEpoch), and follower
//! fetches (Fetch with a replica id). Each request carries many partitions; each is handed to
//! its local replica, whose answer (persisted first, where it votes) becomes the response.
//!
//! Replica fetches read up to the leader's log end, not its high watermark (followers replicate
//! uncommitted entries), and long-poll like consumer fetches.

use std::sync::Arc;
use std::time::Duration;

use weir_protocol::requests::{BeginQuorumEpochRequest, EndQuorumEpochRequest, VoteRequest};
use weir_protocol::responses::{
    BeginQuorumEpochResponse, EndQuorumEpochResponse, FetchPartitionResponse, FetchResponse,
    FetchTopicResponse, QuorumEpochPartitionResponse, QuorumEpochTopicResponse,
    VotePartitionResponse, VoteResponse, VoteTopicResponse,
};
use weir_protocol::{ErrorCode, FetchRequest};
use weir_replication::{FetchAnswer, FetchError, Message};
use weir_storage::Offset;

use super::blocking;
use super::fetch::records_in_file;
use super::produce::storage_error_code;
use crate::broker::Broker;

/// The longest a replica fetch long-polls, whatever it asks for.
const REPLICA_FETCH_MAX_WAIT_MS: u64 = 1_000;

/// How long a Vote waits for this broker to open a replica it is assigned but does not host yet.
const VOTE_WAIT_FOR_REPLICA_MS: u64 = 1_000;

/// Waits (bounded) until this broker hosts every partition of `r` that it may be about to host:
/// one its metadata assigns here, or of a topic it has not heard of yet. A new partition's
/// preferred replica stands for election as soon as it learns of the topic, often before its
/// peers have opened their replicas; refused, it would wait a whole election timeout (seconds)
/// before trying again, and the new topic would have no leader meanwhile.
async fn wait_for_assigned_replicas(broker: &Broker, r: &VoteRequest) {
    let me = broker.config.node_id;
    let coming = |topic: &str, index: i32| {
        broker.topics.partition(topic, index).is_none()
            && broker.cluster.as_ref().is_some_and(|c| {
                c.store.with_view(|v| match v.topics.get(topic) {
                    None => true,
                    Some(t) => usize::try_from(index)
                        .ok()
                        .and_then(|i| t.replicas.get(i))
                        .is_some_and(|replicas| replicas.contains(&me)),
                })
            })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(VOTE_WAIT_FOR_REPLICA_MS);
    while r.topics.iter().any(|t| {
        t.partitions
            .iter()
            .any(|p| coming(&t.topic_name, p.partition_index))
    }) && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn vote(broker: &Arc<Broker>, r: VoteRequest) -> VoteResponse {
    wait_for_assigned_replicas(broker, &r).await;
    let b = broker.clone();
    // A granted vote is written to disk before it is answered: off the async threads.
    blocking(move || {
        let topics = r
            .topics
            .into_iter()
            .map(|t| VoteTopicResponse {
                partitions: t
                    .partitions
                    .iter()
                    .map(
                        |p| match b.topics.partition(&t.topic_name, p.partition_index) {
                            Some(partition) => {
                                let answer = partition.handle_vote(
                                    p.replica_id,
                                    weir_replication::VoteRequest {
                                        epoch: p.replica_epoch,
                                        candidate: p.replica_id,
                                        last_epoch: p.last_offset_epoch,
                                        log_end: p.last_offset,
                                        pre_vote: p.pre_vote,
                                    },
                                );
                                VotePartitionResponse {
                                    partition_index: p.partition_index,
                                    error_code: ErrorCode::NONE,
                                    leader_id: answer.leader.unwrap_or(-1),
                                    leader_epoch: answer.epoch,
                                    vote_granted: answer.granted,
                                }
                            }
                            None => VotePartitionResponse {
                                partition_index: p.partition_index,
                                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                                leader_id: -1,
                                leader_epoch: -1,
                                vote_granted: false,
                            },
                        },
                    )
                    .collect(),
                topic_name: t.topic_name,
            })
            .collect();
        VoteResponse {
            error_code: ErrorCode::NONE,
            topics,
        }
    })
    .await
    .unwrap_or_else(|| VoteResponse {
        error_code: ErrorCode::UNKNOWN_SERVER_ERROR,
        ..VoteResponse::default()
    })
}

/// Per topic: each partition's index, the sending leader, and its message.
type TopicMessages = Vec<(String, Vec<(i32, i32, Message)>)>;

/// BeginQuorumEpoch and EndQuorumEpoch: hand each partition's message to its replica.
async fn step_all(broker: &Arc<Broker>, topics: TopicMessages) -> Vec<QuorumEpochTopicResponse> {
    let b = broker.clone();
    blocking(move || {
        topics
            .into_iter()
            .map(|(topic_name, partitions)| QuorumEpochTopicResponse {
                partitions: partitions
                    .into_iter()
                    .map(
                        |(index, from, message)| match b.topics.partition(&topic_name, index) {
                            Some(p) => {
                                p.step(from, message);
                                QuorumEpochPartitionResponse {
                                    partition_index: index,
                                    error_code: ErrorCode::NONE,
                                    leader_id: p.leader().unwrap_or(-1),
                                    leader_epoch: p.epoch(),
                                }
                            }
                            None => QuorumEpochPartitionResponse {
                                partition_index: index,
                                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                                leader_id: -1,
                                leader_epoch: -1,
                            },
                        },
                    )
                    .collect(),
                topic_name,
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

pub async fn begin_quorum_epoch(
    broker: &Arc<Broker>,
    r: BeginQuorumEpochRequest,
) -> BeginQuorumEpochResponse {
    let topics = r
        .topics
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        p.leader_id,
                        Message::BeginEpoch {
                            epoch: p.leader_epoch,
                            leader: p.leader_id,
                        },
                    )
                })
                .collect();
            (t.topic_name, parts)
        })
        .collect();
    BeginQuorumEpochResponse {
        error_code: ErrorCode::NONE,
        topics: step_all(broker, topics).await,
    }
}

pub async fn end_quorum_epoch(
    broker: &Arc<Broker>,
    r: EndQuorumEpochRequest,
) -> EndQuorumEpochResponse {
    let topics = r
        .topics
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .into_iter()
                .map(|p| {
                    (
                        p.partition_index,
                        p.leader_id,
                        Message::EndEpoch {
                            epoch: p.leader_epoch,
                            leader: p.leader_id,
                            successors: p.preferred_successors,
                        },
                    )
                })
                .collect();
            (t.topic_name, parts)
        })
        .collect();
    EndQuorumEpochResponse {
        error_code: ErrorCode::NONE,
        topics: step_all(broker, topics).await,
    }
}

/// One partition of a replica fetch: the leader's decision and, on a read, the records from the
/// follower's offset (up to the leader's durable log end).
fn replica_fetch_partition(
    broker: &Broker,
    replica: i32,
    topic: &str,
    p: &weir_protocol::FetchPartition,
) -> FetchPartitionResponse {
    let mut out = FetchPartitionResponse {
        partition_index: p.partition,
        ..FetchPartitionResponse::default()
    };
    let Some(partition) = broker.topics.partition(topic, p.partition) else {
        out.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER;
        return out;
    };
    let answer = partition.handle_replica_fetch(
        replica,
        weir_replication::FetchRequest {
            epoch: p.current_leader_epoch,
            fetch_offset: p.fetch_offset,
            last_fetched_epoch: p.last_fetched_epoch,
        },
    );
    out.high_watermark = partition.high_watermark();
    out.last_stable_offset = out.high_watermark;
    out.log_start_offset = partition.log.log_start_offset();
    match answer {
        FetchAnswer::Read {
            from,
            high_watermark,
            log_start,
        } => {
            out.high_watermark = high_watermark;
            out.last_stable_offset = high_watermark;
            out.log_start_offset = log_start;
            let max = usize::try_from(p.partition_max_bytes).unwrap_or(0);
            // As for consumers, the records stay in their segment file until they are sent.
            match partition.log.slice_below(from, max, Offset::MAX, true) {
                Ok(Some(slice)) => out.records = records_in_file(slice),
                Ok(None) => {}
                Err(e) => out.error_code = storage_error_code(&e),
            }
            out.current_leader = Some((broker.config.node_id, partition.epoch()));
        }
        FetchAnswer::Diverging {
            epoch,
            end_offset,
            log_start,
        } => {
            out.diverging_epoch = Some((epoch, end_offset));
            out.log_start_offset = log_start;
            out.current_leader = Some((broker.config.node_id, partition.epoch()));
        }
        FetchAnswer::OutOfRange { log_start } => {
            out.error_code = ErrorCode::OFFSET_OUT_OF_RANGE;
            out.log_start_offset = log_start;
            out.current_leader = Some((broker.config.node_id, partition.epoch()));
        }
        FetchAnswer::Error {
            error,
            epoch,
            leader,
        } => {
            out.error_code = match error {
                FetchError::NotLeader => ErrorCode::NOT_LEADER_OR_FOLLOWER,
                FetchError::FencedEpoch => ErrorCode::FENCED_LEADER_EPOCH,
                FetchError::UnknownEpoch => ErrorCode::UNKNOWN_LEADER_EPOCH,
            };
            out.current_leader = Some((leader.unwrap_or(-1), epoch));
        }
    }
    out
}

/// A follower's fetch (Fetch with `replica_id` set): every partition it follows from us, at
/// once; long-polls until one has records or the wait is over.
pub async fn replica_fetch(broker: &Arc<Broker>, request: FetchRequest) -> FetchResponse {
    let max_wait = u64::try_from(request.max_wait_ms)
        .unwrap_or(0)
        .min(REPLICA_FETCH_MAX_WAIT_MS);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(max_wait);
    let replica = request.replica_id;
    let request = Arc::new(request);
    loop {
        let notified = broker.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let b = broker.clone();
        let r = request.clone();
        // Reads and the replica's bookkeeping (which may persist an epoch) are blocking work.
        let topics = blocking(move || {
            r.topics
                .iter()
                .map(|t| FetchTopicResponse {
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| replica_fetch_partition(&b, replica, &t.name, p))
                        .collect(),
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let has_data = topics.iter().flat_map(|t| &t.partitions).any(|p| {
            !p.records.is_empty() || p.error_code != ErrorCode::NONE || p.diverging_epoch.is_some()
        });
        if has_data || broker.is_stopping() || tokio::time::Instant::now() >= deadline {
            return FetchResponse {
                topics,
                ..FetchResponse::default()
            };
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            continue;
        }
    }
}
