//! Transaction APIs: InitProducerId with a transactional id, AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, TxnOffsetCommit, WriteTxnMarkers, DescribeTransactions and
//! ListTransactions. Each decides its transition in the in-order part (`txn::state` through
//! `TxnPartition::update`, which appends it) and waits for the log in its future; the rules live
//! in `txn`.

use std::sync::Arc;

use weir_protocol::requests::InitProducerIdRequest;
use weir_protocol::responses::InitProducerIdResponse;
use weir_protocol::transactions::*;
use weir_protocol::{ErrorCode, Response};

use super::{blocking, ready, ResponseFuture};
use crate::authz::acl::{AclOperation as Op, ResourceType as Rt};
use crate::authz::Authz;
use crate::broker::Broker;
use crate::groups::CommitIdentity;
use crate::offsets::CommittedOffset;
use crate::txn::markers;
use crate::txn::state::{self, EndOutcome, Expected, InitOutcome, TxnMetadata};
use crate::txn::{Logged, TxnPartition};

/// Versions from which PRODUCER_FENCED is answered (older ones get INVALID_PRODUCER_EPOCH).
const INIT_FENCED_SINCE: i16 = 4;
const ADD_FENCED_SINCE: i16 = 2;
const END_FENCED_SINCE: i16 = 2;
const TXN_OFFSET_FENCED_SINCE: i16 = 3;
/// EndTxn v5+ is transaction protocol 2 (KIP-890).
const END_TXN_V2_SINCE: i16 = 5;
/// TxnOffsetCommit of transaction protocol 2 (KIP-890): the client sent no AddOffsetsToTxn, so
/// the group's offsets partition is added to the transaction here.
const TXN_OFFSET_COMMIT_ADDS_SINCE: i16 = 5;

/// The loaded partition of transactional id `id`, or what Kafka answers: on a single node
/// COORDINATOR_NOT_AVAILABLE before the topic exists; in a cluster NOT_COORDINATOR when another
/// broker leads its partition (the client looks the coordinator up again), and
/// COORDINATOR_LOAD_IN_PROGRESS when this broker leads it but has not loaded it yet.
fn coordinator(b: &Broker, id: &str) -> Result<Arc<TxnPartition>, ErrorCode> {
    match b.txn.for_id(id) {
        Ok(tp) => Ok(tp),
        Err(e) if b.cluster.is_none() => Err(e),
        Err(_) => {
            let leading = crate::txn::TxnCoordinator::partition_of(&b.topics, id)
                .and_then(|i| b.topics.partition(crate::txn::TXN_TOPIC, i))
                .is_some_and(|p| p.leader_epoch().is_some());
            Err(if leading {
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            } else {
                ErrorCode::NOT_COORDINATOR
            })
        }
    }
}

/// The `__consumer_offsets` partition of `group`, by the topic's partition count (known to every
/// broker, whether or not it coordinates any group).
fn offsets_partition_of(b: &Broker, group: &str) -> Option<i32> {
    let count = i32::try_from(
        b.topics
            .get(crate::offsets::OFFSETS_TOPIC)?
            .partition_count(),
    )
    .ok()?;
    (count > 0).then(|| crate::internal_partitions::partition_for(group, count))
}

/// Whether this broker answers for `transactional_id`'s coordinator itself: it coordinates
/// the id, or it is a single node (which answers every id, with an error if it cannot). The
/// opposite is another broker of the cluster, asked over the network.
pub fn coordinator_is_local(b: &Broker, transactional_id: &str) -> bool {
    !matches!(
        coordinator(b, transactional_id),
        Err(ErrorCode::NOT_COORDINATOR) if b.cluster.is_some()
    )
}

/// KIP-890 part 1, the leader's side of a Produce: before a producer's first transactional batch
/// in a partition is appended, whether its transaction coordinator has that partition in the
/// producer's ongoing transaction, answered from this broker's own coordinator state. Called
/// under the partition's producer-state lock: the coordinator writes a transaction's markers only
/// after its state left `Ongoing`, and a marker's append needs that lock, so a batch found in an
/// ongoing transaction here is appended before any marker that ends it (no hanging transaction).
/// `None`: another broker coordinates the id, so it is not asked from inside this lock.
pub fn verify_produce_here(
    b: &Broker,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    target: &(String, i32),
) -> Option<ErrorCode> {
    match coordinator(b, transactional_id) {
        Ok(tp) => Some(state::verify_partitions(
            tp.get(transactional_id).as_ref(),
            producer_id,
            producer_epoch,
            target,
        )),
        Err(ErrorCode::NOT_COORDINATOR) if b.cluster.is_some() => None,
        Err(e) => Some(e),
    }
}

/// What a partition leader or group coordinator asks a transaction coordinator about a
/// partition of a producer's transaction (KIP-890).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InTxn {
    /// Whether it is in the ongoing transaction (protocol 1: the client added it itself).
    Verify,
    /// Add it, opening a transaction if none is ongoing (protocol 2: Produce v12+ and
    /// TxnOffsetCommit v5+, whose clients send no AddPartitionsToTxn or AddOffsetsToTxn).
    Add,
}

/// Whether `target` is in the ongoing transaction of `transactional_id` by this producer id and
/// epoch after asking its coordinator `ask`: the local state when this broker coordinates the
/// id, else the coordinator through AddPartitionsToTxn v4+ (`verify_only` for
/// [`InTxn::Verify`]), as Kafka's partition leaders and group coordinators do. A coordinator
/// that cannot be asked now gives COORDINATOR_NOT_AVAILABLE (the client retries).
pub(super) async fn ensure_in_txn(
    b: &Arc<Broker>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    target: &(String, i32),
    ask: InTxn,
) -> ErrorCode {
    let local = coordinator(b, transactional_id);
    let Some(cluster) = b.cluster.as_ref().filter(|_| local.is_err()) else {
        let tp = match local {
            Ok(tp) => tp,
            Err(e) => return e,
        };
        if ask == InTxn::Verify {
            return state::verify_partitions(
                tp.get(transactional_id).as_ref(),
                producer_id,
                producer_epoch,
                target,
            );
        }
        let partitions = std::slice::from_ref(target);
        return match tp.add_partitions(
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            b.now_ms(),
        ) {
            Ok(logged) => logged.wait().await.err().unwrap_or(ErrorCode::NONE),
            Err(e) => e,
        };
    };
    let leader =
        crate::txn::TxnCoordinator::partition_of(&b.topics, transactional_id).and_then(|i| {
            b.topics
                .partition(crate::txn::TXN_TOPIC, i)
                .and_then(|p| p.leader())
                .or_else(|| b.cluster_leader(crate::txn::TXN_TOPIC, i).map(|l| l.leader))
        });
    let Some(node) = leader.filter(|l| *l >= 0 && *l != cluster.node_id()) else {
        return ErrorCode::COORDINATOR_NOT_AVAILABLE;
    };
    let request = weir_protocol::Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
        transactions: vec![AddPartitionsToTxnTransaction {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch,
            verify_only: ask == InTxn::Verify,
            topics: vec![AddPartitionsToTxnTopic {
                name: target.0.clone(),
                partitions: vec![target.1],
            }],
        }],
    });
    let answer = match b.txn.peers.call(b, node, request).await {
        Ok(Response::AddPartitionsToTxn(r)) if r.error_code.is_none() => r
            .results_by_transaction
            .into_iter()
            .flat_map(|t| t.topic_results)
            .flat_map(|t| t.results_by_partition)
            .map(|p| p.partition_error_code)
            .next()
            .unwrap_or(ErrorCode::COORDINATOR_NOT_AVAILABLE),
        Ok(_) => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        Err(e) => {
            tracing::debug!(peer = node, error = %e, "transaction not verified");
            ErrorCode::COORDINATOR_NOT_AVAILABLE
        }
    };
    match answer {
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => {
            ErrorCode::COORDINATOR_NOT_AVAILABLE
        }
        other => other,
    }
}

/// InitProducerId with a transactional id (the idempotent case stays in `produce`).
pub async fn init_producer_id(
    b: &Arc<Broker>,
    version: i16,
    r: InitProducerIdRequest,
) -> ResponseFuture {
    let fail = |e: ErrorCode| {
        ready(Response::InitProducerId(InitProducerIdResponse {
            error_code: state::for_version(e, version, INIT_FENCED_SINCE),
            producer_id: -1,
            producer_epoch: -1,
            ..InitProducerIdResponse::default()
        }))
    };
    let Some(id) = r.transactional_id.clone() else {
        return fail(ErrorCode::INVALID_REQUEST);
    };
    if id.is_empty() {
        return fail(ErrorCode::INVALID_REQUEST);
    }
    // The first transactional producer creates the state topic, as in Kafka.
    crate::txn::TxnCoordinator::ensure_clustered(b).await;
    if b.cluster.is_none() && !b.txn.is_loaded() {
        let bb = b.clone();
        let created = blocking(move || {
            bb.txn
                .ensure_local(&bb.topics, bb.config.transaction_state_log_num_partitions)
        })
        .await;
        if !matches!(created, Some(Ok(()))) {
            return fail(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
    }
    let tp = match coordinator(b, &id) {
        Ok(tp) => tp,
        Err(e) => return fail(e),
    };
    let now = b.now_ms();
    let expected = Expected {
        producer_id: r.producer_id,
        producer_epoch: r.producer_epoch,
    };
    let expected = if expected.producer_id < 0 {
        Expected::NONE
    } else {
        expected
    };
    let max = b.config.transaction_max_timeout_ms;
    let bb = b.clone();
    let decided = tp.update(&id, now, |cur| {
        let outcome = state::init_producer_id(
            &id,
            cur,
            r.transaction_timeout_ms,
            max,
            expected,
            now,
            &mut || bb.new_producer_id(),
        )?;
        Ok(match outcome {
            InitOutcome::Ready(m) => {
                // A retried bump logs nothing new.
                let changed = cur != Some(&m);
                (changed.then(|| m.clone()), (m, false))
            }
            InitOutcome::AbortOngoing(m) => (Some(m.clone()), (m, true)),
        })
    });
    let ((meta, aborting), logged) = match decided {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let b = b.clone();
    Box::pin(async move {
        let waited = logged.wait().await;
        let response = match waited {
            Err(e) => InitProducerIdResponse {
                error_code: e,
                producer_id: -1,
                producer_epoch: -1,
                ..InitProducerIdResponse::default()
            },
            Ok(()) if aborting => {
                // The previous producer's transaction is being aborted: the client retries.
                markers::spawn_end(b.clone(), tp, meta);
                InitProducerIdResponse {
                    error_code: ErrorCode::CONCURRENT_TRANSACTIONS,
                    producer_id: -1,
                    producer_epoch: -1,
                    ..InitProducerIdResponse::default()
                }
            }
            Ok(()) => InitProducerIdResponse {
                producer_id: meta.producer_id,
                producer_epoch: meta.producer_epoch,
                ..InitProducerIdResponse::default()
            },
        };
        Some(Response::InitProducerId(response))
    })
}

fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), *p)))
        .collect()
}

fn results(
    topics: &[AddPartitionsToTxnTopic],
    code: impl Fn(&str, i32) -> ErrorCode,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|p| AddPartitionsToTxnPartitionResult {
                    partition_index: *p,
                    partition_error_code: code(&t.name, *p),
                })
                .collect(),
        })
        .collect()
}

/// AddPartitionsToTxn: every transaction of the request (one before v4), added or verified.
pub fn add_partitions_to_txn(
    b: &Arc<Broker>,
    az: &Authz,
    version: i16,
    r: AddPartitionsToTxnRequest,
) -> ResponseFuture {
    let now = b.now_ms();
    let mut answers = Vec::new();
    let mut waits: Vec<Logged> = Vec::new();
    for t in r.transactions {
        let all = partitions_of(&t.topics);
        let refused = if !az.allows(Op::Write, Rt::TransactionalId, &t.transactional_id) {
            Some(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        } else if all
            .iter()
            .any(|(topic, _)| !az.allows(Op::Write, Rt::Topic, topic))
        {
            Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED)
        } else if all.iter().any(|(topic, p)| {
            b.topics
                .get(topic)
                .is_none_or(|tp| usize::try_from(*p).map_or(true, |i| i >= tp.partition_count()))
        }) {
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        } else {
            None
        };
        let result = if let Some(code) = refused {
            // As Kafka: the failing partitions carry the error, the others OPERATION_NOT_ATTEMPTED.
            results(&t.topics, |topic, p| {
                let bad = match code {
                    ErrorCode::TOPIC_AUTHORIZATION_FAILED => {
                        !az.allows(Op::Write, Rt::Topic, topic)
                    }
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => b.topics.get(topic).is_none_or(|tp| {
                        usize::try_from(p).map_or(true, |i| i >= tp.partition_count())
                    }),
                    _ => true,
                };
                if bad {
                    code
                } else {
                    ErrorCode::OPERATION_NOT_ATTEMPTED
                }
            })
        } else if t.verify_only {
            let cur = coordinator(b, &t.transactional_id).map(|tp| tp.get(&t.transactional_id));
            results(&t.topics, |topic, p| match &cur {
                Err(e) => *e,
                Ok(m) => state::verify_partitions(
                    m.as_ref(),
                    t.producer_id,
                    t.producer_epoch,
                    &(topic.to_string(), p),
                ),
            })
        } else {
            let code = match coordinator(b, &t.transactional_id).and_then(|tp| {
                tp.add_partitions(
                    &t.transactional_id,
                    t.producer_id,
                    t.producer_epoch,
                    &all,
                    now,
                )
            }) {
                Ok(logged) => {
                    waits.push(logged);
                    ErrorCode::NONE
                }
                Err(e) => state::for_version(e, version, ADD_FENCED_SINCE),
            };
            results(&t.topics, |_, _| code)
        };
        answers.push(AddPartitionsToTxnResult {
            transactional_id: t.transactional_id,
            topic_results: result,
        });
    }
    Box::pin(async move {
        let mut failed = None;
        for w in waits {
            if let Err(e) = w.wait().await {
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            for a in &mut answers {
                for t in &mut a.topic_results {
                    for p in &mut t.results_by_partition {
                        if p.partition_error_code.is_none() {
                            p.partition_error_code = e;
                        }
                    }
                }
            }
        }
        Some(Response::AddPartitionsToTxn(AddPartitionsToTxnResponse {
            results_by_transaction: answers,
            ..AddPartitionsToTxnResponse::default()
        }))
    })
}

fn wait_then(
    logged: Logged,
    respond: impl FnOnce(ErrorCode) -> Response + Send + 'static,
) -> ResponseFuture {
    Box::pin(async move {
        let code = match logged.wait().await {
            Ok(()) => ErrorCode::NONE,
            Err(e) => e,
        };
        Some(respond(code))
    })
}

/// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction.
pub fn add_offsets_to_txn(
    b: &Arc<Broker>,
    az: &Authz,
    version: i16,
    r: AddOffsetsToTxnRequest,
) -> ResponseFuture {
    let respond = |code: ErrorCode| {
        Response::AddOffsetsToTxn(AddOffsetsToTxnResponse {
            error_code: code,
            ..AddOffsetsToTxnResponse::default()
        })
    };
    if !az.allows(Op::Write, Rt::TransactionalId, &r.transactional_id) {
        return ready(respond(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
    }
    if !az.allows(Op::Read, Rt::Group, &r.group_id) {
        return ready(respond(ErrorCode::GROUP_AUTHORIZATION_FAILED));
    }
    let Some(offsets_partition) = offsets_partition_of(b, &r.group_id) else {
        return ready(respond(ErrorCode::COORDINATOR_NOT_AVAILABLE));
    };
    let now = b.now_ms();
    let target = [(crate::offsets::OFFSETS_TOPIC.to_string(), offsets_partition)];
    match coordinator(b, &r.transactional_id).and_then(|tp| {
        tp.add_partitions(
            &r.transactional_id,
            r.producer_id,
            r.producer_epoch,
            &target,
            now,
        )
    }) {
        Ok(logged) => wait_then(logged, respond),
        Err(e) => ready(respond(state::for_version(e, version, ADD_FENCED_SINCE))),
    }
}

/// EndTxn: prepare (logged, answered), then markers and completion in a task.
pub fn end_txn(b: &Arc<Broker>, az: &Authz, version: i16, r: EndTxnRequest) -> ResponseFuture {
    let respond = |code: ErrorCode, pid: i64, epoch: i16| {
        Response::EndTxn(EndTxnResponse {
            error_code: code,
            producer_id: pid,
            producer_epoch: epoch,
            ..EndTxnResponse::default()
        })
    };
    if !az.allows(Op::Write, Rt::TransactionalId, &r.transactional_id) {
        return ready(respond(
            ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            -1,
            -1,
        ));
    }
    let now = b.now_ms();
    let v2 = version >= END_TXN_V2_SINCE;
    let tp = match coordinator(b, &r.transactional_id) {
        Ok(tp) => tp,
        Err(e) => return ready(respond(e, -1, -1)),
    };
    let bb = b.clone();
    let decided = tp.update(&r.transactional_id, now, |cur| {
        match state::end_txn(
            cur,
            r.producer_id,
            r.producer_epoch,
            r.committed,
            v2,
            now,
            &mut || bb.new_producer_id(),
        )? {
            EndOutcome::Prepare(m) => Ok((Some(m.clone()), Some(m))),
            EndOutcome::AlreadyDone { .. } => Ok((None, None)),
        }
    });
    let (prepared, logged): (Option<TxnMetadata>, Logged) = match decided {
        Ok(d) => d,
        Err(e) => {
            return ready(respond(
                state::for_version(e, version, END_FENCED_SINCE),
                -1,
                -1,
            ))
        }
    };
    let b = b.clone();
    Box::pin(async move {
        if let Err(e) = logged.wait().await {
            return Some(respond(e, -1, -1));
        }
        let current = tp.get(&r.transactional_id);
        if let Some(m) = prepared {
            markers::spawn_end(b, tp, m);
        }
        let (pid, epoch) = current
            .map(|c| (c.producer_id, c.producer_epoch))
            .unwrap_or((-1, -1));
        Some(respond(ErrorCode::NONE, pid, epoch))
    })
}

/// TxnOffsetCommit: the offsets go to `__consumer_offsets` as a transactional batch of the
/// producer, pending until the transaction's marker reaches that partition.
/// The group's say on a TxnOffsetCommit (KIP-447): a member fenced by a newer generation or
/// epoch, or unknown to the group, may not commit, so its transaction aborts.
fn txn_commit_group_error(b: &Broker, r: &TxnOffsetCommitRequest) -> ErrorCode {
    let consumer = b.consumer_groups.lock().validate_txn_offset_commit(
        &r.group_id,
        &r.member_id,
        r.group_instance_id.as_deref(),
        r.generation_id,
    );
    match consumer {
        Some(Ok(())) => ErrorCode::NONE,
        Some(Err(e)) => e.code,
        None => b.groups.lock().validate_txn_commit(
            &CommitIdentity {
                group_id: &r.group_id,
                member_id: &r.member_id,
                group_instance_id: r.group_instance_id.as_deref(),
                generation_id: r.generation_id,
            },
            b.now_ms(),
        ),
    }
}

pub async fn txn_offset_commit(
    b: &Arc<Broker>,
    az: &Authz,
    version: i16,
    r: TxnOffsetCommitRequest,
) -> ResponseFuture {
    let respond_all =
        |r: &TxnOffsetCommitRequest, code: &dyn Fn(&str) -> ErrorCode| TxnOffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| TxnOffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| TxnOffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: code(&t.name),
                        })
                        .collect(),
                })
                .collect(),
            ..TxnOffsetCommitResponse::default()
        };
    let refused = if !az.allows(Op::Write, Rt::TransactionalId, &r.transactional_id) {
        Some(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else if !az.allows(Op::Read, Rt::Group, &r.group_id) {
        Some(ErrorCode::GROUP_AUTHORIZATION_FAILED)
    } else if !b.offsets.owns(&r.group_id) {
        Some(ErrorCode::NOT_COORDINATOR)
    } else {
        // The offsets partition must be in the transaction (AddOffsetsToTxn, or added here for
        // protocol 2), with this producer at this epoch, as the transaction coordinator (maybe
        // another broker) says.
        let ask = if version >= TXN_OFFSET_COMMIT_ADDS_SINCE {
            InTxn::Add
        } else {
            InTxn::Verify
        };
        match b.offsets.partition_of(&r.group_id) {
            None => Some(ErrorCode::COORDINATOR_NOT_AVAILABLE),
            Some(i) => {
                let target = (crate::offsets::OFFSETS_TOPIC.to_string(), i);
                match ensure_in_txn(
                    b,
                    &r.transactional_id,
                    r.producer_id,
                    r.producer_epoch,
                    &target,
                    ask,
                )
                .await
                {
                    c if c.is_none() => None,
                    ErrorCode::INVALID_TXN_STATE => Some(ErrorCode::INVALID_TXN_STATE),
                    // The previous transaction is still being completed: a TxnOffsetCommit
                    // client retries COORDINATOR_LOAD_IN_PROGRESS with the same coordinator,
                    // while it would take CONCURRENT_TRANSACTIONS as fatal.
                    ErrorCode::CONCURRENT_TRANSACTIONS => {
                        Some(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
                    }
                    c => Some(state::for_version(c, version, TXN_OFFSET_FENCED_SINCE)),
                }
            }
        }
    };
    // The group may have moved while the coordinator was asked.
    let refused =
        refused.or_else(|| (!b.offsets.owns(&r.group_id)).then_some(ErrorCode::NOT_COORDINATOR));
    let refused = refused.or_else(|| {
        let code = txn_commit_group_error(b, &r);
        (code != ErrorCode::NONE).then_some(code)
    });
    if let Some(code) = refused {
        return ready(Response::TxnOffsetCommit(respond_all(&r, &|_| code)));
    }
    let now = b.now_ms();
    let offsets: Vec<(String, i32, CommittedOffset)> = r
        .topics
        .iter()
        .filter(|t| az.allows(Op::Read, Rt::Topic, &t.name))
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    t.name.clone(),
                    p.partition_index,
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.clone().unwrap_or_default(),
                        commit_timestamp_ms: now,
                    },
                )
            })
        })
        .collect();
    let staged =
        b.offsets
            .stage_txn_commit(&r.group_id, r.producer_id, r.producer_epoch, &offsets, now);
    let b = b.clone();
    let az_topics: Vec<(String, bool)> = r
        .topics
        .iter()
        .map(|t| (t.name.clone(), az.allows(Op::Read, Rt::Topic, &t.name)))
        .collect();
    Box::pin(async move {
        let code = match staged {
            Err(_) => ErrorCode::NOT_COORDINATOR,
            Ok(staged) => {
                let bb = b.clone();
                match blocking(move || bb.offsets.finish(staged)).await {
                    Some(Ok(())) => ErrorCode::NONE,
                    _ => ErrorCode::KAFKA_STORAGE_ERROR,
                }
            }
        };
        let allowed = |topic: &str| az_topics.iter().any(|(name, ok)| name == topic && *ok);
        Some(Response::TxnOffsetCommit(respond_all(&r, &|topic| {
            if allowed(topic) {
                code
            } else {
                ErrorCode::TOPIC_AUTHORIZATION_FAILED
            }
        })))
    })
}

/// WriteTxnMarkers (from a transaction coordinator, CLUSTER_ACTION checked in `access`): each
/// marker appended through the leader append path of each partition, answered once durable and
/// committed.
pub fn write_txn_markers(b: &Arc<Broker>, r: WriteTxnMarkersRequest) -> ResponseFuture {
    let b = b.clone();
    Box::pin(async move {
        let mut out = Vec::new();
        for m in r.markers {
            let marker = weir_storage::records::TxnMarker {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                kind: if m.transaction_result {
                    weir_storage::records::TxnMarkerKind::Commit
                } else {
                    weir_storage::records::TxnMarkerKind::Abort
                },
                coordinator_epoch: m.coordinator_epoch,
            };
            let mut topics = Vec::new();
            for t in m.topics {
                let mut partitions = Vec::new();
                for p in t.partition_indexes {
                    partitions.push(WritableTxnMarkerPartitionResult {
                        partition_index: p,
                        error_code: markers::append_marker(&b, &t.name, p, marker).await,
                    });
                }
                topics.push(WritableTxnMarkerTopicResult {
                    name: t.name,
                    partitions,
                });
            }
            out.push(WritableTxnMarkerResult {
                producer_id: m.producer_id,
                topics,
            });
        }
        Some(Response::WriteTxnMarkers(WriteTxnMarkersResponse {
            markers: out,
        }))
    })
}

fn describe_one(m: &TxnMetadata) -> DescribedTransaction {
    let mut topics: Vec<DescribedTransactionTopic> = Vec::new();
    for (t, p) in &m.partitions {
        match topics.last_mut() {
            Some(last) if &last.topic == t => last.partitions.push(*p),
            _ => topics.push(DescribedTransactionTopic {
                topic: t.clone(),
                partitions: vec![*p],
            }),
        }
    }
    DescribedTransaction {
        error_code: ErrorCode::NONE,
        transactional_id: m.transactional_id.clone(),
        transaction_state: m.state.name().to_string(),
        transaction_timeout_ms: m.timeout_ms,
        transaction_start_time_ms: m.start_ms,
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        topics,
    }
}

/// DescribeTransactions: DESCRIBE on each transactional id.
pub fn describe_transactions(
    b: &Broker,
    az: &Authz,
    r: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let transaction_states = r
        .transactional_ids
        .into_iter()
        .map(|id| {
            let error = |code| DescribedTransaction {
                error_code: code,
                transactional_id: id.clone(),
                transaction_state: String::new(),
                transaction_timeout_ms: 0,
                transaction_start_time_ms: -1,
                producer_id: -1,
                producer_epoch: -1,
                topics: Vec::new(),
            };
            if !az.allows(Op::Describe, Rt::TransactionalId, &id) {
                return error(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
            }
            match b.txn.for_id(&id) {
                // No state topic yet: nothing is known of any transactional id.
                Err(ErrorCode::COORDINATOR_NOT_AVAILABLE) if b.cluster.is_none() => {
                    error(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND)
                }
                Err(e) => error(e),
                Ok(tp) => match tp.get(&id) {
                    Some(m) if m.state != state::TxnState::Dead => {
                        let mut d = describe_one(&m);
                        d.topics
                            .retain(|t| az.allows(Op::Describe, Rt::Topic, &t.topic));
                        d
                    }
                    _ => error(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND),
                },
            }
        })
        .collect();
    DescribeTransactionsResponse {
        transaction_states,
        ..DescribeTransactionsResponse::default()
    }
}

/// ListTransactions: the transactional ids this broker coordinates that the client may
/// describe, filtered by state, producer id, duration (v1+) and id pattern (v2+).
pub fn list_transactions(
    b: &Broker,
    az: &Authz,
    r: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut unknown_state_filters = Vec::new();
    let mut states = Vec::new();
    for f in &r.state_filters {
        match state::TxnState::from_name(f) {
            Some(s) => states.push(s),
            None => unknown_state_filters.push(f.clone()),
        }
    }
    let pattern = match r
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(re) => Some(re),
            Err(_) => {
                return ListTransactionsResponse {
                    error_code: ErrorCode::INVALID_REGULAR_EXPRESSION,
                    ..ListTransactionsResponse::default()
                }
            }
        },
    };
    let now = b.now_ms();
    let mut transaction_states = Vec::new();
    for (_, tp) in b.txn.loaded_partitions() {
        for m in tp.all() {
            let keep = m.state != state::TxnState::Dead
                && (states.is_empty() || states.contains(&m.state))
                && (r.producer_id_filters.is_empty()
                    || r.producer_id_filters.contains(&m.producer_id))
                && (r.duration_filter < 0
                    || (m.start_ms >= 0 && now - m.start_ms >= r.duration_filter))
                && pattern
                    .as_ref()
                    .is_none_or(|re| re.is_match(&m.transactional_id))
                && az.allows(Op::Describe, Rt::TransactionalId, &m.transactional_id);
            if keep {
                transaction_states.push(ListedTransaction {
                    transactional_id: m.transactional_id,
                    producer_id: m.producer_id,
                    transaction_state: m.state.name().to_string(),
                });
            }
        }
    }
    transaction_states.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    ListTransactionsResponse {
        unknown_state_filters,
        transaction_states,
        ..ListTransactionsResponse::default()
    }
}
