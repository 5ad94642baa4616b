//! The share state persister (KIP-932's `Persister`): how the leader of a data partition reaches
//! the durable state of its share-partitions. That state is owned by the leader of the share
//! state partition (`__share_group_state`, the share coordinator). A leader on the same broker
//! calls the owner in-process (`ShareCoordinator::owner_*`); any other one sends it Kafka's
//! InitializeShareGroupState / ReadShareGroupState / WriteShareGroupState through this module:
//! one bounded queue and one task per owner, which sends one request at a time, so the writes
//! of a share-partition reach its owner in the order they were made, and an owner that does not
//! answer (it died, until the call times out) holds up only the share-partitions it owns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use weir_protocol::requests::ShareStateBatch;
use weir_protocol::{Request, Response, WeirTag};

use super::partition::StateBatch;
use super::records::{decode_intent_value, encode_intent_value, state_code, state_of};
use super::IntentChange;
use crate::cluster::peer::{PeerConnection, PeerSecurity};

/// Requests queued for one owner before callers are refused.
pub const QUEUE_LEN: usize = 1_024;
/// Owners with a queue at once; past this the queues of owners not called lately are dropped
/// (owners are brokers of the cluster, a bounded set).
const MAX_OWNER_QUEUES: usize = 64;
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

/// A dead-letter intent change on the wire, in Weir's tagged field: absent to keep it, empty
/// to clear it, else the intent's record value.
pub fn intent_to_wire(change: &IntentChange) -> WeirTag {
    WeirTag(match change {
        IntentChange::Keep => None,
        IntentChange::Clear => Some(Bytes::new()),
        IntentChange::Set(i) => Some(Bytes::from(encode_intent_value(i))),
    })
}

/// The intent change from the wire; `None` if its value does not decode.
pub fn intent_from_wire(tag: &WeirTag) -> Option<IntentChange> {
    match &tag.0 {
        None => Some(IntentChange::Keep),
        Some(b) if b.is_empty() => Some(IntentChange::Clear),
        Some(b) => decode_intent_value(b).map(IntentChange::Set),
    }
}

/// Weir's tag in a ReadShareGroupStateSummary answer: the records parked below the start offset
/// for delayed delivery (8 bytes, big-endian), which Kafka's summary has no field for.
pub fn parked_to_wire(parked: i64) -> WeirTag {
    WeirTag((parked > 0).then(|| Bytes::copy_from_slice(&parked.to_be_bytes())))
}

/// The parked count from the wire: 0 without the tag (or from a broker that does not send
/// it); a value that does not decode counts as 0 too (the lag is an estimate, not state).
pub fn parked_from_wire(tag: &WeirTag) -> i64 {
    tag.0
        .as_deref()
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, |b| i64::from_be_bytes(b).max(0))
}

/// An answer to come from the owner.
pub type Reply = oneshot::Receiver<Result<Response, String>>;

struct Job {
    addr: String,
    request: Request,
    reply: oneshot::Sender<Result<Response, String>>,
}

/// The queues to remote owners, one per owner (each one's task is started on first use,
/// inside the runtime).
#[derive(Default)]
pub struct RemotePersister {
    me: AtomicI32,
    /// How to reach other brokers (the inter-broker listener's security); set with the node id.
    security: OnceLock<Arc<PeerSecurity>>,
    queues: Mutex<HashMap<i32, mpsc::Sender<Job>>>,
}

impl RemotePersister {
    pub fn set_node(&self, me: i32, security: &Arc<PeerSecurity>) {
        self.me.store(me, Ordering::Relaxed);
        let _ = self.security.set(Arc::clone(security));
    }

    /// Queues `request` for broker `node` at `addr`. `Err` if its queue is full or there is no
    /// runtime to send it from.
    pub fn send(&self, node: i32, addr: &str, request: Request) -> Result<Reply, String> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            addr: addr.to_string(),
            request,
            reply,
        };
        let mut queues = self.queues.lock();
        let tx = match queues.get(&node).filter(|tx| !tx.is_closed()) {
            Some(tx) => tx.clone(),
            None => {
                let handle = tokio::runtime::Handle::try_current()
                    .map_err(|_| "no runtime for the share state persister".to_string())?;
                let security = self.security.get().cloned().ok_or_else(|| {
                    "share state persister: no inter-broker settings yet".to_string()
                })?;
                if queues.len() >= MAX_OWNER_QUEUES {
                    // Dropping a sender ends its task once the jobs queued are answered.
                    queues.clear();
                }
                let (tx, rx) = mpsc::channel(QUEUE_LEN);
                let conn = PeerConnection::new(node, self.me.load(Ordering::Relaxed), security);
                handle.spawn(run(conn, rx));
                queues.insert(node, tx.clone());
                tx
            }
        };
        drop(queues);
        tx.try_send(job)
            .map_err(|e| format!("share state persister queue for broker {node}: {e}"))?;
        Ok(rx)
    }
}

/// Waits (blocking: not on an async worker) for an answer.
pub fn wait_reply(reply: Reply) -> Result<Response, String> {
    reply
        .blocking_recv()
        .map_err(|_| "share state persister stopped".to_string())?
}

/// Sends the jobs of one owner, one at a time, over one connection.
async fn run(mut conn: PeerConnection, mut rx: mpsc::Receiver<Job>) {
    while let Some(job) = rx.recv().await {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_owner_that_does_not_answer_holds_up_only_its_own_queue() {
        use tokio::io::AsyncReadExt;
        use tokio::net::TcpListener;
        // Owner 1 accepts connections and never answers (a broker hung or gone).
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let silent_addr = silent.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let other = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let other_addr = other.local_addr().expect("addr").to_string();
        let persister = RemotePersister::default();
        let metrics = Arc::new(crate::metrics::Metrics::new());
        persister.set_node(0, &PeerSecurity::plaintext(metrics));
        let request =
            || Request::ApiVersions(weir_protocol::requests::ApiVersionsRequest::default());
        let mut stuck = persister.send(1, &silent_addr, request()).expect("queued");
        let _second = persister.send(2, &other_addr, request()).expect("queued");
        // Owner 2 gets its request while owner 1's call still waits for an answer (one queue
        // for every owner sent it only after owner 1's call timed out).
        let (mut socket, _) = other.accept().await.expect("owner 2 called");
        let mut size = [0u8; 4];
        socket
            .read_exact(&mut size)
            .await
            .expect("a request to owner 2");
        assert!(
            matches!(stuck.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
            "owner 1's call was answered before owner 2 was called"
        );
    }

    #[test]
    fn intent_changes_round_trip_in_weirs_tag_and_bad_ones_are_refused() {
        use super::super::records::{DeadLetterIntent, IntentKind, ProducedBatch};
        let set = IntentChange::Set(DeadLetterIntent {
            topic: "dead".into(),
            partition: 1,
            kind: IntentKind::Produced(ProducedBatch {
                producer_id: 42,
                producer_epoch: 0,
                base_sequence: 7,
                time_ms: 1_000,
                offsets: vec![4, 9],
            }),
        });
        for change in [IntentChange::Keep, IntentChange::Clear, set] {
            assert_eq!(intent_from_wire(&intent_to_wire(&change)), Some(change));
        }
        assert_eq!(intent_to_wire(&IntentChange::Keep), WeirTag(None));
        assert_eq!(
            intent_from_wire(&WeirTag(Some(Bytes::from_static(b"\x00\x09junk")))),
            None
        );
    }

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

    #[test]
    fn the_parked_count_crosses_the_wire_and_anything_else_reads_as_none() {
        for n in [1, 250, i64::MAX] {
            assert_eq!(parked_from_wire(&parked_to_wire(n)), n);
        }
        assert_eq!(parked_to_wire(0), WeirTag(None), "nothing parked, no tag");
        assert_eq!(parked_from_wire(&WeirTag(None)), 0);
        assert_eq!(
            parked_from_wire(&WeirTag(Some(Bytes::from_static(b"abc")))),
            0
        );
        let negative = WeirTag(Some(Bytes::copy_from_slice(&(-5i64).to_be_bytes())));
        assert_eq!(parked_from_wire(&negative), 0);
    }
}
