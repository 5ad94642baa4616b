//! The share state persister (KIP-932's `Persister`): how the leader of a data partition reaches
//! the durable state of its share-partitions. That state is owned by the leader of the share
//! state partition (`__share_group_state`, the share coordinator). A leader on the same broker
//! calls the owner in-process (`ShareCoordinator::owner_*`); any other one sends it Kafka's
//! InitializeShareGroupState / ReadShareGroupState / WriteShareGroupState through this module:
//! one bounded queue and one task per broker, which sends one request at a time, so the writes
//! of a share-partition reach the owner in the order they were made.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use weir_protocol::requests::ShareStateBatch;
use weir_protocol::{Request, Response};

use super::partition::StateBatch;
use super::records::{state_code, state_of};
use crate::cluster::peer::{PeerConnection, PeerSecurity};

/// Requests queued for the owner before callers are refused.
pub const QUEUE_LEN: usize = 1_024;
/// Longest wait for the owner's answer.
pub const CALL_TIMEOUT_MS: u64 = 5_000;
/// Most state batches accepted in one share-partition's read or write (the window is bounded
/// by `group.share.partition.max.record.locks`, the parked records by their index).
pub const MAX_STATE_BATCHES: usize =
    super::store::MAX_REPLAYED_WINDOW + super::partition::MAX_DELAYED_RECORDS;

/// Where the durable share state is served from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// This broker leads the share state partition (always on a single node).
    Local,
    /// Another broker does.
    Remote { node: i32, addr: String },
    /// Nobody known leads it now.
    Unknown,
}

/// The state batches on the wire.
pub fn to_wire(batches: &[StateBatch]) -> Vec<ShareStateBatch> {
    batches
        .iter()
        .map(|b| ShareStateBatch {
            first_offset: b.first_offset,
            last_offset: b.last_offset,
            delivery_state: i8::try_from(state_code(b.state)).unwrap_or(i8::MAX),
            delivery_count: i16::try_from(b.delivery_count).unwrap_or(i16::MAX),
        })
        .collect()
}

/// The state batches from the wire; `None` if one is not valid (unknown state, negative count,
/// an empty range, or too many of them).
pub fn from_wire(batches: &[ShareStateBatch]) -> Option<Vec<StateBatch>> {
    if batches.len() > MAX_STATE_BATCHES {
        return None;
    }
    batches
        .iter()
        .map(|b| {
            if b.first_offset < 0 || b.last_offset < b.first_offset {
                return None;
            }
            Some(StateBatch {
                first_offset: b.first_offset,
                last_offset: b.last_offset,
                state: state_of(u8::try_from(b.delivery_state).ok()?)?,
                delivery_count: u16::try_from(b.delivery_count).ok()?,
            })
        })
        .collect()
}

/// An answer to come from the owner.
pub type Reply = oneshot::Receiver<Result<Response, String>>;

struct Job {
    node: i32,
    addr: String,
    request: Request,
    reply: oneshot::Sender<Result<Response, String>>,
}

/// The queue to remote owners (its task is started on first use, inside the runtime).
#[derive(Default)]
pub struct RemotePersister {
    me: AtomicI32,
    /// How to reach other brokers (the inter-broker listener's security); set with the node id.
    security: OnceLock<Arc<PeerSecurity>>,
    tx: OnceLock<mpsc::Sender<Job>>,
}

impl RemotePersister {
    pub fn set_node(&self, me: i32, security: &Arc<PeerSecurity>) {
        self.me.store(me, Ordering::Relaxed);
        let _ = self.security.set(Arc::clone(security));
    }

    /// Queues `request` for broker `node` at `addr`. `Err` if the queue is full or there is no
    /// runtime to send it from.
    pub fn send(&self, node: i32, addr: &str, request: Request) -> Result<Reply, String> {
        let tx = match self.tx.get() {
            Some(tx) => tx,
            None => {
                let handle = tokio::runtime::Handle::try_current()
                    .map_err(|_| "no runtime for the share state persister".to_string())?;
                let (tx, rx) = mpsc::channel(QUEUE_LEN);
                let security = self.security.get().cloned().ok_or_else(|| {
                    "share state persister: no inter-broker settings yet".to_string()
                })?;
                if self.tx.set(tx).is_ok() {
                    handle.spawn(run(self.me.load(Ordering::Relaxed), security, rx));
                }
                self.tx
                    .get()
                    .ok_or_else(|| "share state persister not started".to_string())?
            }
        };
        let (reply, rx) = oneshot::channel();
        tx.try_send(Job {
            node,
            addr: addr.to_string(),
            request,
            reply,
        })
        .map_err(|e| format!("share state persister queue: {e}"))?;
        Ok(rx)
    }
}

/// Waits (blocking: not on an async worker) for an answer.
pub fn wait_reply(reply: Reply) -> Result<Response, String> {
    reply
        .blocking_recv()
        .map_err(|_| "share state persister stopped".to_string())?
}

async fn run(me: i32, security: Arc<PeerSecurity>, mut rx: mpsc::Receiver<Job>) {
    // One connection per owner seen; owners are brokers of the cluster, a bounded set.
    let mut conns: HashMap<i32, PeerConnection> = HashMap::new();
    while let Some(job) = rx.recv().await {
        if conns.len() > 64 && !conns.contains_key(&job.node) {
            conns.clear();
        }
        let conn = conns
            .entry(job.node)
            .or_insert_with(|| PeerConnection::new(job.node, me, Arc::clone(&security)));
        let result = conn
            .call(&job.addr, job.request, CALL_TIMEOUT_MS)
            .await
            .map_err(|e| e.to_string());
        let _ = job.reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::super::partition::{ArchiveReason, PersistedState};
    use super::*;

    #[test]
    fn state_batches_round_trip_on_the_wire_and_bad_ones_are_refused() {
        let batches = vec![
            StateBatch {
                first_offset: 0,
                last_offset: 4,
                state: PersistedState::Acknowledged,
                delivery_count: 1,
            },
            StateBatch {
                first_offset: 5,
                last_offset: 5,
                state: PersistedState::Available,
                delivery_count: 3,
            },
            StateBatch {
                first_offset: 6,
                last_offset: 9,
                state: PersistedState::Archiving(ArchiveReason::Rejected),
                delivery_count: 2,
            },
        ];
        let wire = to_wire(&batches);
        assert_eq!(wire[0].delivery_state, 2, "Kafka's ACKNOWLEDGED");
        assert_eq!(wire[1].delivery_state, 0, "Kafka's AVAILABLE");
        assert_eq!(from_wire(&wire), Some(batches));
        let mut bad = wire.clone();
        bad[0].delivery_state = 1; // ACQUIRED is never persisted
        assert_eq!(from_wire(&bad), None);
        let mut bad = wire.clone();
        bad[1].last_offset = 2;
        assert_eq!(from_wire(&bad), None);
        let mut bad = wire;
        bad[2].delivery_count = -1;
        assert_eq!(from_wire(&bad), None);
    }
}
