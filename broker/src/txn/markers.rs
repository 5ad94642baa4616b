//! The IO of ending transactions: writing COMMIT/ABORT markers to every partition of a
//! transaction (each through its leader's append path, waited for like acks=all), retried until
//! written, then logging the completion; and the timer that aborts timed-out transactions and
//! resumes the marker writing of transactions a restart left preparing.

use std::sync::Arc;
use std::time::Duration;

use weir_protocol::ErrorCode;
use weir_storage::records::{TxnMarker, TxnMarkerKind};

use super::state::{self, TxnMetadata, TxnState};
use super::{Logged, TxnPartition};
use crate::broker::Broker;
use crate::partition::{AppendError, MarkerError};

/// Pause between two rounds of marker writes that failed (leader moving, log unable to write).
const RETRY_BACKOFF_MS: u64 = 100;

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
        for (topic, index) in remaining {
            let result = append_marker(broker, &topic, index, marker).await;
            // A partition deleted meanwhile has nothing left to mark (as Kafka drops it); a marker
            // refused for a newer producer or coordinator epoch belongs to a transaction already
            // superseded there (Kafka's coordinator stops sending it too).
            let done = matches!(
                result,
                ErrorCode::NONE
                    | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    | ErrorCode::INVALID_PRODUCER_EPOCH
                    | ErrorCode::TRANSACTION_COORDINATOR_FENCED
            );
            if !done {
                tracing::debug!(%topic, partition = index, error = ?result, "transaction marker not written yet");
                failed.push((topic, index));
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

/// The coordinator's timer: aborts the ongoing transactions past their timeout (with an epoch
/// bump that fences their producer) and (re)starts the marker writing of every preparing
/// transaction without a writer (after a restart, a leadership change, or a failed completion).
pub async fn tick(broker: &Arc<Broker>) {
    let now = broker.now_ms();
    for (_, tp) in broker.txn.loaded_partitions() {
        for meta in tp.all() {
            if meta.state.is_preparing() {
                spawn_end(broker.clone(), tp.clone(), meta);
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
