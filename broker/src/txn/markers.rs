//! The IO of ending transactions: writing COMMIT/ABORT markers to every partition of a
//! transaction (each through its leader's append path, waited for like acks=all: in-process for
//! the partitions this broker leads, Kafka's inter-broker WriteTxnMarkers to the leader of each
//! other one, as Kafka's `TransactionMarkerChannelManager`), retried until written, then logging
//! the completion; and the timer that aborts timed-out transactions and resumes the marker
//! writing of transactions a restart or a change of coordinator left preparing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use weir_protocol::transactions::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use weir_protocol::{Request, Response};

use weir_protocol::ErrorCode;
use weir_storage::records::{TxnMarker, TxnMarkerKind};

use super::state::{self, TxnMetadata, TxnState};
use super::{Logged, TxnPartition};
use crate::broker::Broker;
use crate::cluster::peer::PeerConnection;
use crate::partition::{AppendError, MarkerError};

/// Pause between two rounds of marker writes that failed (leader moving, log unable to write).
const RETRY_BACKOFF_MS: u64 = 100;
/// How long a partition leader has to answer a WriteTxnMarkers (it answers once the markers are
/// committed by its replicas).
const WRITE_MARKERS_TIMEOUT_MS: u64 = 10_000;
/// Idle connections kept per peer broker (more are opened while several transactions end at
/// once, and closed after).
const IDLE_PEER_CONNECTIONS: usize = 4;

/// The coordinator's connections to other brokers, for WriteTxnMarkers: each call takes an idle
/// one (or opens one), so concurrent transactions do not queue behind each other.
#[derive(Default)]
pub struct MarkerPeers {
    idle: Mutex<HashMap<i32, Vec<PeerConnection>>>,
}

impl MarkerPeers {
    pub(crate) async fn call(
        &self,
        broker: &Broker,
        node: i32,
        request: Request,
    ) -> Result<Response, String> {
        let cluster = broker.cluster.as_ref().ok_or("not in a cluster")?;
        let addr = cluster
            .peer_address(node)
            .ok_or_else(|| format!("broker {node} is not registered"))?;
        let taken = self.idle.lock().get_mut(&node).and_then(Vec::pop);
        let mut conn = taken.unwrap_or_else(|| cluster.peer(node));
        let result = conn
            .call(&addr, request, WRITE_MARKERS_TIMEOUT_MS)
            .await
            .map_err(|e| e.to_string());
        if result.is_ok() {
            let mut idle = self.idle.lock();
            // Brokers of the cluster are a bounded set; forget them all if it ever grows large.
            if idle.len() > 256 && !idle.contains_key(&node) {
                idle.clear();
            }
            let conns = idle.entry(node).or_default();
            if conns.len() < IDLE_PEER_CONNECTIONS {
                conns.push(conn);
            }
        }
        result
    }
}

/// Appends `marker` to partition `index` of `topic` as its leader and waits until it is durable
/// and committed: the WriteTxnMarkers path, also taken in-process by this broker's coordinator.
/// A marker of `__consumer_offsets` also settles the transaction's pending offsets there.
pub async fn append_marker(
    broker: &Broker,
    topic: &str,
    index: i32,
    marker: TxnMarker,
) -> ErrorCode {
    let Some(partition) = broker.topics.partition(topic, index) else {
        return if broker
            .topics
            .get(topic)
            .is_some_and(|t| usize::try_from(index).is_ok_and(|i| i < t.partition_count()))
        {
            ErrorCode::NOT_LEADER_OR_FOLLOWER
        } else {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        };
    };
    // One path with the partition side: its producer state checks the marker's epochs, records
    // the end of the transaction (LSO, aborted-transaction index) and orders it with produces.
    // The coordinator's own markers are checked as protocol 1 (epoch not older): an epoch
    // bumped by this coordinator is only ever newer.
    let pending = match partition.append_txn_marker(&marker, 1, broker.now_ms()) {
        Ok(p) => p,
        Err(MarkerError::Refused(code)) => return code,
        Err(MarkerError::Append(AppendError::Replica(_))) => {
            return ErrorCode::NOT_LEADER_OR_FOLLOWER
        }
        Err(MarkerError::Append(AppendError::Storage(_))) => return ErrorCode::KAFKA_STORAGE_ERROR,
    };
    let logged = Logged {
        partition: partition.clone(),
        pending: Some(pending),
    };
    let result = match logged.wait().await {
        Ok(()) => ErrorCode::NONE,
        Err(ErrorCode::NOT_COORDINATOR) => ErrorCode::NOT_LEADER_OR_FOLLOWER,
        Err(e) => e,
    };
    if result.is_none() && topic == crate::offsets::OFFSETS_TOPIC {
        broker.offsets.complete_txn(
            index,
            marker.producer_id,
            marker.kind == TxnMarkerKind::Commit,
        );
    }
    broker.appended.notify_waiters();
    result
}

/// Writes the markers of `meta` (preparing) to all its partitions, then logs its completion.
/// Runs as a task; at most one per transactional id at a time.
pub fn spawn_end(broker: Arc<Broker>, tp: Arc<TxnPartition>, meta: TxnMetadata) {
    if !tp.claim_writing(&meta.transactional_id) {
        return;
    }
    tokio::spawn(async move {
        write_markers_and_complete(&broker, &tp, &meta).await;
        tp.release_writing(&meta.transactional_id);
    });
}

fn still_current(broker: &Broker, tp: &Arc<TxnPartition>, meta: &TxnMetadata) -> bool {
    let owned = broker
        .txn
        .for_id(&meta.transactional_id)
        .is_ok_and(|p| Arc::ptr_eq(&p, tp));
    owned
        && tp.get(&meta.transactional_id).is_some_and(|c| {
            c.state == meta.state
                && c.producer_id == meta.producer_id
                && c.producer_epoch == meta.producer_epoch
        })
}

async fn write_markers_and_complete(
    broker: &Arc<Broker>,
    tp: &Arc<TxnPartition>,
    meta: &TxnMetadata,
) {
    let kind = match meta.state {
        TxnState::PrepareCommit => TxnMarkerKind::Commit,
        TxnState::PrepareAbort => TxnMarkerKind::Abort,
        _ => return,
    };
    let marker = TxnMarker {
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
        kind,
        coordinator_epoch: tp.coordinator_epoch(),
    };
    let mut remaining: Vec<(String, i32)> = meta.partitions.iter().cloned().collect();
    while !remaining.is_empty() {
        if broker.is_stopping() || !still_current(broker, tp, meta) {
            return;
        }
        let mut failed = Vec::new();
        let (local, remote) = by_leader(broker, remaining);
        for (topic, index) in local {
            let result = append_marker(broker, &topic, index, marker).await;
            if !marker_done(broker, &topic, index, result) {
                tracing::debug!(%topic, partition = index, error = ?result, "transaction marker not written yet");
                failed.push((topic, index));
            }
        }
        // One WriteTxnMarkers per leader broker, all at once.
        let mut calls = tokio::task::JoinSet::new();
        for (node, partitions) in remote {
            let b = broker.clone();
            calls.spawn(async move {
                let results = write_remote(&b, node, marker, &partitions).await;
                (node, partitions, results)
            });
        }
        while let Some(joined) = calls.join_next().await {
            let Ok((node, partitions, results)) = joined else {
                continue;
            };
            for (topic, index) in partitions {
                let result = match &results {
                    Ok(codes) => codes
                        .get(&(topic.clone(), index))
                        .copied()
                        .unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR),
                    Err(e) => {
                        tracing::debug!(peer = node, error = %e, "WriteTxnMarkers not answered");
                        ErrorCode::NETWORK_EXCEPTION
                    }
                };
                if !marker_done(broker, &topic, index, result) {
                    tracing::debug!(%topic, partition = index, leader = node, error = ?result, "transaction marker not written yet");
                    failed.push((topic, index));
                }
            }
        }
        remaining = failed;
        if !remaining.is_empty() {
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        }
    }
    let now = broker.now_ms();
    let completed = tp.update(&meta.transactional_id, now, |cur| match cur {
        Some(c)
            if c.state == meta.state
                && c.producer_id == meta.producer_id
                && c.producer_epoch == meta.producer_epoch =>
        {
            Ok((state::complete(c, now), ()))
        }
        _ => Ok((None, ())),
    });
    if let Ok(((), logged)) = completed {
        if let Err(e) = logged.wait().await {
            tracing::warn!(transactional_id = %meta.transactional_id, error = ?e, "transaction completion not logged; retried at the next tick");
        }
    }
}

/// Whether a marker write that answered `result` needs no retry. A partition deleted meanwhile
/// has nothing left to mark (as Kafka drops it); a marker refused for a newer producer or
/// coordinator epoch belongs to a transaction already superseded there (Kafka's coordinator stops
/// sending it too). A leader that does not know the partition while this broker's metadata still
/// has it is behind: retried.
fn marker_done(broker: &Broker, topic: &str, index: i32, result: ErrorCode) -> bool {
    match result {
        ErrorCode::NONE
        | ErrorCode::INVALID_PRODUCER_EPOCH
        | ErrorCode::TRANSACTION_COORDINATOR_FENCED => true,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => broker
            .topics
            .get(topic)
            .is_none_or(|t| usize::try_from(index).map_or(true, |i| i >= t.partition_count())),
        _ => false,
    }
}

/// Partitions of a transaction split by where their markers go: appended here, and sent to each
/// other leader broker.
type ByLeader = (Vec<(String, i32)>, BTreeMap<i32, Vec<(String, i32)>>);

/// Splits partitions into those this broker leads (or whose leader is not known to be another
/// broker: the local append answers why not) and those led by other brokers, by leader.
fn by_leader(broker: &Broker, partitions: Vec<(String, i32)>) -> ByLeader {
    let Some(cluster) = &broker.cluster else {
        return (partitions, BTreeMap::new());
    };
    let me = cluster.node_id();
    let mut local = Vec::new();
    let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, index) in partitions {
        let led_here = broker
            .topics
            .partition(&topic, index)
            .is_some_and(|p| p.leader_epoch().is_some());
        // This replica's view of its leader is the freshest; etcd's record lags behind it.
        let leader = broker
            .topics
            .partition(&topic, index)
            .and_then(|p| p.leader())
            .or_else(|| broker.cluster_leader(&topic, index).map(|l| l.leader))
            .filter(|l| *l >= 0);
        match leader {
            Some(l) if !led_here && l != me => remote.entry(l).or_default().push((topic, index)),
            _ => local.push((topic, index)),
        }
    }
    (local, remote)
}

/// Sends `marker` for `partitions` to their leader `node`: the error code of each partition.
async fn write_remote(
    broker: &Broker,
    node: i32,
    marker: TxnMarker,
    partitions: &[(String, i32)],
) -> Result<HashMap<(String, i32), ErrorCode>, String> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, index) in partitions {
        topics.entry(topic).or_default().push(*index);
    }
    let request = Request::WriteTxnMarkers(WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id: marker.producer_id,
            producer_epoch: marker.producer_epoch,
            transaction_result: marker.kind == TxnMarkerKind::Commit,
            topics: topics
                .into_iter()
                .map(|(name, partition_indexes)| WritableTxnMarkerTopic {
                    name: name.to_string(),
                    partition_indexes,
                })
                .collect(),
            coordinator_epoch: marker.coordinator_epoch,
        }],
    });
    let response = broker.txn.peers.call(broker, node, request).await?;
    let Response::WriteTxnMarkers(r) = response else {
        return Err("not a WriteTxnMarkers response".into());
    };
    Ok(r.markers
        .into_iter()
        .filter(|m| m.producer_id == marker.producer_id)
        .flat_map(|m| m.topics)
        .flat_map(|t| {
            let name = t.name;
            t.partitions
                .into_iter()
                .map(move |p| ((name.clone(), p.partition_index), p.error_code))
        })
        .collect())
}

/// Starts the marker writing of every preparing transaction of the partitions loaded here that
/// has no writer: called when partitions were newly loaded (a new coordinator finishes what the
/// previous one prepared, as Kafka's does after loading), and by the timer.
pub fn resume_preparing(broker: &Arc<Broker>) {
    for (_, tp) in broker.txn.loaded_partitions() {
        for meta in tp.all() {
            if meta.state.is_preparing() {
                spawn_end(broker.clone(), tp.clone(), meta);
            }
        }
    }
}

/// The coordinator's timer: aborts the ongoing transactions past their timeout (with an epoch
/// bump that fences their producer), (re)starts the marker writing of every preparing
/// transaction without a writer (after a restart, a leadership change, or a failed completion),
/// and forgets the transactional ids idle past `transactional_id_expiration_ms`.
pub async fn tick(broker: &Arc<Broker>) {
    let now = broker.now_ms();
    let expiration_ms = broker.config.transactional_id_expiration_ms;
    for (_, tp) in broker.txn.loaded_partitions() {
        for meta in tp.all() {
            if meta.state.is_preparing() {
                spawn_end(broker.clone(), tp.clone(), meta);
                continue;
            }
            if state::is_expired(&meta, now, expiration_ms) {
                if let Some(logged) = tp.expire(&meta.transactional_id, now, expiration_ms) {
                    tracing::info!(transactional_id = %meta.transactional_id, "transactional id expired");
                    if let Err(e) = logged.wait().await {
                        tracing::warn!(transactional_id = %meta.transactional_id, error = ?e, "expiry not committed");
                    }
                }
                continue;
            }
            if meta.state != TxnState::Ongoing {
                continue;
            }
            let b = broker.clone();
            let aborted = tp.update(&meta.transactional_id, now, |cur| {
                let Some(c) = cur else {
                    return Ok((None, None));
                };
                let next = state::abort_if_timed_out(c, now, &mut || b.new_producer_id());
                Ok((next.clone(), next))
            });
            if let Ok((Some(next), logged)) = aborted {
                tracing::info!(transactional_id = %next.transactional_id, "aborting a transaction past its timeout");
                if logged.wait().await.is_ok() {
                    spawn_end(broker.clone(), tp.clone(), next);
                }
            }
        }
    }
}
