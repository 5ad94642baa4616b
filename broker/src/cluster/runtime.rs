//! The cluster at run time: the tasks that connect this broker's partition replicas to the other
//! brokers and to etcd.
//!
//! - **Raft messages** (votes, new-leader announcements, resignations) leave through
//!   [`ClusterIo`], are batched per destination broker and sent as Kafka's KRaft requests (Vote,
//!   BeginQuorumEpoch, EndQuorumEpoch), one connection per peer; vote answers come back to the
//!   candidate's replica.
//! - **Fetchers**: one per leader broker, pulling every partition this broker follows from it in
//!   one Kafka Fetch (replica id set), applying the answers (append, truncate, reset) off the
//!   async threads, and fetching again at once: the fetch offset is the acknowledgement.
//! - **Ticks**: one timer drives every replica's election and check-quorum deadlines.
//! - **Metadata**: every change etcd reports is applied to the topic registry (replicas opened,
//!   retargeted, removed); replicas that lead publish who leads (and who is in sync) to etcd.
//! - **Controller**: one broker, elected through etcd, moves the replicas of a broker that has
//!   been gone for `replica_replacement_delay_ms` to live brokers.
//!
//! Everything here is glue: the decisions are the replicas' (`weir_replication`) and the
//! placement rules' (`placement`). Queues are bounded; a Raft message that does not fit is
//! dropped (Raft tolerates loss; timers resend).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Notify};
use weir_protocol::requests::{
    BeginQuorumEpochPartition, BeginQuorumEpochRequest, BeginQuorumEpochTopic,
    EndQuorumEpochPartition, EndQuorumEpochRequest, EndQuorumEpochTopic, FetchPartition,
    FetchRequest as KafkaFetchRequest, FetchTopic, VotePartition, VoteRequest as KafkaVoteRequest,
    VoteTopic,
};
use weir_protocol::{ErrorCode, Request, Response};
use weir_replication::{
    FetchError, FetchOutcome, FetchRequest, FetchResponse, Message, NodeId, Role, VoteRequest,
    VoteResponse,
};

use crate::broker::{Broker, GroupPartitions, ShareStatePartitions};
use crate::cluster::elections;
use crate::cluster::metadata::{ClusterView, LeaderRecord};
use crate::cluster::peer::{PeerConnection, PeerSecurity};
use crate::cluster::placement::{self, Candidate};
use crate::cluster::store::EtcdStore;
use crate::config::ClusterSettings;
use crate::handlers::records_in_memory;
use crate::internal_partitions::PartitionOwner;
use crate::partition::{Partition, RaftIo};

/// Raft messages waiting to be sent, over all peers.
const RAFT_QUEUE: usize = 65_536;
/// Raft messages to one peer per request.
const RAFT_BATCH: usize = 4_096;
/// How long a peer has to answer a Raft request.
const RAFT_TIMEOUT_MS: u64 = 3_000;
/// Replica fetch: long-poll time, and how long to wait for the answer beyond it.
const FETCH_MAX_WAIT_MS: i32 = 500;
const FETCH_TIMEOUT_MS: u64 = 5_000;
const FETCH_MAX_BYTES: i32 = 32 << 20;
const FETCH_PARTITION_MAX_BYTES: i32 = 4 << 20;
/// Timer resolution of elections and check-quorum.
const TICK_MS: u64 = 50;
/// How often leaders re-check what they published (ISR changes, etcd coming back).
const PUBLISH_MS: u64 = 1_000;
/// How often the controller looks at the brokers.
const CONTROLLER_MS: u64 = 1_000;
/// How long a stopping broker waits for its partitions' new leaders.
const HAND_OVER_MS: u64 = 3_000;
/// How long a placement waits for this broker's view to catch up with etcd.
const CATCH_UP_MS: u64 = 2_000;

/// A Raft message on its way to another broker.
struct Outgoing {
    to: NodeId,
    topic: String,
    partition: i32,
    message: Message,
}

/// What a partition replica hands the cluster: messages to send, role changes to publish.
pub struct ClusterIo {
    clock: Arc<dyn crate::clock::Clock>,
    raft_tx: mpsc::Sender<Outgoing>,
    /// Woken when roles change: fetchers and the publisher look again.
    changed: Arc<Notify>,
}

impl RaftIo for ClusterIo {
    fn send(&self, to: NodeId, topic: &str, partition: i32, message: Message) {
        let out = Outgoing {
            to,
            topic: topic.to_string(),
            partition,
            message,
        };
        if self.raft_tx.try_send(out).is_err() {
            tracing::debug!(to, topic, partition, "raft queue full; message dropped");
        }
    }

    fn role_changed(
        &self,
        topic: &str,
        partition: i32,
        role: Role,
        epoch: i32,
        leader: Option<NodeId>,
    ) {
        tracing::info!(topic, partition, ?role, epoch, ?leader, "partition role");
        self.changed.notify_waiters();
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now_ms()).unwrap_or(0)
    }
}

/// The cluster side of a broker. Created before the broker's state (its [`ClusterIo`] goes into
/// every replica), started once the broker is open.
pub struct Cluster {
    pub store: Arc<EtcdStore>,
    pub settings: ClusterSettings,
    pub io: Arc<ClusterIo>,
    node_id: NodeId,
    raft_rx: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    changed: Arc<Notify>,
    /// Whether this broker holds the controller key.
    controller: AtomicBool,
    /// How connections to the other brokers are secured (the inter-broker listener).
    peer_security: Arc<PeerSecurity>,
}

/// Where broker `node` is reached by other brokers (its inter-broker listener).
pub(crate) fn address(view: &ClusterView, node: NodeId) -> Option<String> {
    view.brokers
        .get(&node)
        .map(|b| format!("{}:{}", b.host, b.port))
}

impl Cluster {
    pub fn new(
        store: Arc<EtcdStore>,
        settings: ClusterSettings,
        clock: Arc<dyn crate::clock::Clock>,
        peer_security: Arc<PeerSecurity>,
    ) -> Arc<Self> {
        let (raft_tx, raft_rx) = mpsc::channel(RAFT_QUEUE);
        let changed = Arc::new(Notify::new());
        let node_id = store.node_id();
        Arc::new(Self {
            io: Arc::new(ClusterIo {
                clock,
                raft_tx,
                changed: changed.clone(),
            }),
            store,
            settings,
            node_id,
            raft_rx: Mutex::new(Some(raft_rx)),
            changed,
            controller: AtomicBool::new(false),
            peer_security,
        })
    }

    /// A connection to broker `to`, secured as the inter-broker listener requires.
    pub fn peer(&self, to: NodeId) -> PeerConnection {
        PeerConnection::new(to, self.node_id, self.peer_security.clone())
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Where broker `to` takes inter-broker requests, per the watched view.
    pub fn peer_address(&self, to: NodeId) -> Option<String> {
        self.store.with_view(|v| address(v, to))
    }

    pub fn is_controller(&self) -> bool {
        self.controller.load(Ordering::Acquire)
    }

    /// The live brokers as placement sees them.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.store.with_view(|v| {
            v.brokers
                .values()
                .map(|b| Candidate {
                    id: b.id,
                    rack: b.rack.clone(),
                })
                .collect()
        })
    }

    /// The live brokers, after this broker's view has caught up with etcd, so a placement never
    /// misses a broker that another broker's Metadata already listed. If etcd does not answer,
    /// the view as it is (placement then fails or succeeds on what this broker knows).
    pub async fn caught_up_candidates(&self) -> Vec<Candidate> {
        match self.store.catch_up(CATCH_UP_MS).await {
            Ok(true) => {}
            Ok(false) => tracing::debug!("metadata view did not catch up with etcd in time"),
            Err(e) => tracing::debug!(error = %e, "cannot read etcd's revision"),
        }
        self.candidates()
    }

    /// Graceful shutdown: hands every partition this broker leads to a caught-up voter, then
    /// waits (a bounded time) for the new leaders to be elected, so clients move at once rather
    /// than after an election timeout.
    pub async fn hand_over(&self, broker: &Broker) {
        self.resign_all(broker);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(HAND_OVER_MS);
        while tokio::time::Instant::now() < deadline {
            let still_leading = broker.topics.all().iter().any(|t| {
                t.local_partitions().any(|p| {
                    p.leader() == Some(self.node_id) && p.replication_view().voters.len() > 1
                })
            });
            if !still_leading {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts every background task; they end when `stop` turns true.
    pub fn start(self: &Arc<Self>, broker: Arc<Broker>, stop: watch::Receiver<bool>) {
        tokio::spawn(self.store.clone().run(stop.clone()));
        tokio::spawn(reconcile_loop(broker.clone(), self.clone(), stop.clone()));
        tokio::spawn(tick_loop(broker.clone(), stop.clone()));
        if let Some(rx) = self.raft_rx.lock().take() {
            tokio::spawn(raft_sender(broker.clone(), self.clone(), rx, stop.clone()));
        }
        tokio::spawn(fetch_manager(broker.clone(), self.clone(), stop.clone()));
        tokio::spawn(publish_loop(broker.clone(), self.clone(), stop.clone()));
        tokio::spawn(controller_loop(broker, self.clone(), stop));
    }

    /// Graceful shutdown: hand over every partition this broker leads, so clients move to the
    /// new leaders at once instead of after an election timeout.
    pub fn resign_all(&self, broker: &Broker) {
        for topic in broker.topics.all() {
            for p in topic.local_partitions() {
                if p.leader_epoch().is_some() {
                    p.resign(None);
                }
            }
        }
    }
}

/// Starts `cluster`'s background tasks for `broker`.
pub fn start(cluster: &Arc<Cluster>, broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    cluster.start(broker, stop);
}

// ------------------------------------------------------------------------------------------
// Metadata → replicas
// ------------------------------------------------------------------------------------------

async fn reconcile_loop(
    broker: Arc<Broker>,
    cluster: Arc<Cluster>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = cluster.store.subscribe();
    loop {
        let view = cluster.store.view();
        let b = broker.clone();
        let applied = tokio::task::spawn_blocking(move || b.topics.apply_view(&view)).await;
        if let Ok(Err(e)) = applied {
            tracing::error!(error = %e, "cannot apply the cluster metadata");
        }
        // The cluster-wide broker defaults come with the view.
        broker.refresh_topic_defaults();
        cluster.changed.notify_waiters();
        hint_leaders(&broker, &cluster);
        act_on_elections(&broker, &cluster).await;
        tokio::select! {
            _ = stop.changed() => return,
            r = changes.changed() => if r.is_err() { return },
        }
    }
}

/// Replicas that do not know their leader (observers after a restart) learn it from etcd.
fn hint_leaders(broker: &Broker, cluster: &Cluster) {
    let leaders = cluster.store.with_view(|v| v.leaders.clone());
    for ((topic, index), record) in leaders {
        if let Some(p) = broker.topics.partition(&topic, index) {
            if p.leader().is_none() && record.leader != cluster.node_id {
                let now = cluster.io.now_ms();
                p.with_raft(|r, out| r.hint_leader(record.epoch, record.leader, now, out));
            }
        }
    }
}

/// ElectLeaders requests for partitions this broker leads: hand over to the preferred replica.
async fn act_on_elections(broker: &Broker, cluster: &Cluster) {
    let requests = cluster.store.with_view(|v| v.elections.clone());
    for ((topic, index), request) in requests {
        let Some(p) = broker.topics.partition(&topic, index) else {
            continue;
        };
        if p.leader() == Some(request.preferred) {
            let _ = cluster.store.clear_election(&topic, index).await;
            continue;
        }
        if p.leader_epoch().is_none() {
            continue;
        }
        if p.resign(Some(request.preferred)) {
            tracing::info!(
                topic,
                partition = index,
                to = request.preferred,
                "handing leadership over"
            );
            let _ = cluster.store.clear_election(&topic, index).await;
        } else {
            // Not caught up by this leader's own count, or no longer a voter: drop the request
            // (the controller asks again once the view says the move is possible).
            let still_wanted = cluster.store.with_view(|v| {
                elections::preferred_election(v, &topic, index)
                    == elections::Preferred::Move {
                        to: request.preferred,
                    }
            });
            if !still_wanted {
                let _ = cluster.store.clear_election(&topic, index).await;
            }
        }
    }
}

async fn tick_loop(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_millis(TICK_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = interval.tick() => {}
        }
        let b = broker.clone();
        // Ticks may persist election state (a file write): off the async threads.
        let _ = tokio::task::spawn_blocking(move || {
            let now = u64::try_from(b.now_ms()).unwrap_or(0);
            for topic in b.topics.all() {
                for p in topic.local_partitions() {
                    p.tick(now);
                }
            }
        })
        .await;
    }
}

// ------------------------------------------------------------------------------------------
// Raft messages
// ------------------------------------------------------------------------------------------

async fn raft_sender(
    broker: Arc<Broker>,
    cluster: Arc<Cluster>,
    mut rx: mpsc::Receiver<Outgoing>,
    mut stop: watch::Receiver<bool>,
) {
    let mut peers: HashMap<NodeId, mpsc::Sender<Vec<Outgoing>>> = HashMap::new();
    loop {
        let first = tokio::select! {
            _ = stop.changed() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let mut batch = vec![first];
        while batch.len() < RAFT_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut by_peer: BTreeMap<NodeId, Vec<Outgoing>> = BTreeMap::new();
        for m in batch {
            by_peer.entry(m.to).or_default().push(m);
        }
        for (to, messages) in by_peer {
            let tx = peers.entry(to).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(64);
                tokio::spawn(peer_sender(
                    broker.clone(),
                    cluster.clone(),
                    to,
                    rx,
                    stop.clone(),
                ));
                tx
            });
            if tx.try_send(messages).is_err() {
                tracing::debug!(to, "peer queue full; raft messages dropped");
            }
        }
    }
}

/// Sends one peer's Raft messages, a batch at a time, and routes vote answers back.
async fn peer_sender(
    broker: Arc<Broker>,
    cluster: Arc<Cluster>,
    to: NodeId,
    mut rx: mpsc::Receiver<Vec<Outgoing>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = cluster.peer(to);
    loop {
        let messages = tokio::select! {
            _ = stop.changed() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let Some(addr) = cluster.store.with_view(|v| address(v, to)) else {
            continue;
        };
        let cluster_id = cluster.store.with_view(|v| v.cluster_id.clone());
        let mut votes: Vec<(String, i32, VoteRequest)> = Vec::new();
        let mut begins: BTreeMap<String, Vec<BeginQuorumEpochPartition>> = BTreeMap::new();
        let mut ends: BTreeMap<String, Vec<EndQuorumEpochPartition>> = BTreeMap::new();
        for m in messages {
            match m.message {
                Message::Vote(v) => votes.push((m.topic, m.partition, v)),
                Message::BeginEpoch { epoch, leader } => {
                    begins
                        .entry(m.topic)
                        .or_default()
                        .push(BeginQuorumEpochPartition {
                            partition_index: m.partition,
                            leader_id: leader,
                            leader_epoch: epoch,
                        })
                }
                Message::EndEpoch {
                    epoch,
                    leader,
                    successors,
                } => ends
                    .entry(m.topic)
                    .or_default()
                    .push(EndQuorumEpochPartition {
                        partition_index: m.partition,
                        leader_id: leader,
                        leader_epoch: epoch,
                        preferred_successors: successors,
                    }),
                // Vote answers travel as responses, never on their own.
                Message::VoteResponse(_) => {}
            }
        }
        if !begins.is_empty() {
            let request = Request::BeginQuorumEpoch(BeginQuorumEpochRequest {
                cluster_id: cluster_id.clone(),
                voter_id: to,
                topics: begins
                    .into_iter()
                    .map(|(topic_name, partitions)| BeginQuorumEpochTopic {
                        topic_name,
                        partitions,
                    })
                    .collect(),
                ..Default::default()
            });
            if let Err(e) = conn.call(&addr, request, RAFT_TIMEOUT_MS).await {
                tracing::debug!(error = %e, "BeginQuorumEpoch not delivered");
            }
        }
        if !ends.is_empty() {
            let request = Request::EndQuorumEpoch(EndQuorumEpochRequest {
                cluster_id: cluster_id.clone(),
                topics: ends
                    .into_iter()
                    .map(|(topic_name, partitions)| EndQuorumEpochTopic {
                        topic_name,
                        partitions,
                    })
                    .collect(),
                ..Default::default()
            });
            if let Err(e) = conn.call(&addr, request, RAFT_TIMEOUT_MS).await {
                tracing::debug!(error = %e, "EndQuorumEpoch not delivered");
            }
        }
        if !votes.is_empty() {
            send_votes(&broker, &mut conn, &addr, to, cluster_id, votes).await;
        }
    }
}

async fn send_votes(
    broker: &Broker,
    conn: &mut PeerConnection,
    addr: &str,
    to: NodeId,
    cluster_id: Option<String>,
    votes: Vec<(String, i32, VoteRequest)>,
) {
    let mut topics: BTreeMap<String, Vec<VotePartition>> = BTreeMap::new();
    for (topic, partition, v) in &votes {
        topics
            .entry(topic.clone())
            .or_default()
            .push(VotePartition {
                partition_index: *partition,
                replica_epoch: v.epoch,
                replica_id: v.candidate,
                last_offset_epoch: v.last_epoch,
                last_offset: v.log_end,
                pre_vote: v.pre_vote,
            });
    }
    let request = Request::Vote(KafkaVoteRequest {
        cluster_id,
        voter_id: to,
        topics: topics
            .into_iter()
            .map(|(topic_name, partitions)| VoteTopic {
                topic_name,
                partitions,
            })
            .collect(),
    });
    let response = match conn.call(addr, request, RAFT_TIMEOUT_MS).await {
        Ok(Response::Vote(r)) => r,
        Ok(_) => return,
        Err(e) => {
            tracing::debug!(error = %e, "Vote not delivered");
            return;
        }
    };
    if response.error_code == ErrorCode::CLUSTER_AUTHORIZATION_FAILED {
        // The peer's authorizer does not let this broker's principal (its inter-broker
        // credentials, or User:ANONYMOUS on a PLAINTEXT listener) speak for the cluster: no
        // election can succeed until an ACL allows it.
        tracing::warn!(
            peer = to,
            "the peer refused a Vote: make the inter-broker principal a super user or grant it \
             CLUSTER_ACTION on the cluster (docs/security.md#in-a-cluster)"
        );
        return;
    }
    for t in response.topics {
        for p in t.partitions {
            // Which of our requests this answers: the first not yet answered for the partition.
            let Some(asked) = votes
                .iter()
                .find(|(topic, index, _)| *topic == t.topic_name && *index == p.partition_index)
            else {
                continue;
            };
            if p.error_code != ErrorCode::NONE {
                continue;
            }
            if let Some(partition) = broker.topics.partition(&t.topic_name, p.partition_index) {
                let answer = VoteResponse {
                    epoch: p.leader_epoch,
                    granted: p.vote_granted,
                    leader: (p.leader_id >= 0).then_some(p.leader_id),
                    pre_vote: asked.2.pre_vote,
                };
                let b = partition.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    b.step(to, Message::VoteResponse(answer));
                })
                .await;
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Fetchers
// ------------------------------------------------------------------------------------------

async fn fetch_manager(
    broker: Arc<Broker>,
    cluster: Arc<Cluster>,
    mut stop: watch::Receiver<bool>,
) {
    let running: Arc<Mutex<BTreeSet<NodeId>>> = Arc::new(Mutex::new(BTreeSet::new()));
    loop {
        let leaders: BTreeSet<NodeId> = broker
            .topics
            .all()
            .iter()
            .flat_map(|t| {
                t.local_partitions()
                    .filter_map(|p| p.fetch_target().map(|(l, _)| l))
                    .collect::<Vec<_>>()
            })
            .collect();
        for leader in leaders {
            if running.lock().insert(leader) {
                let (b, c, r, s) = (
                    broker.clone(),
                    cluster.clone(),
                    running.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    fetcher(b, c, leader, s).await;
                    r.lock().remove(&leader);
                });
            }
        }
        let notified = cluster.changed.notified();
        tokio::select! {
            _ = stop.changed() => return,
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Partitions this broker follows from `leader`, with what to ask for.
fn fetch_targets(broker: &Broker, leader: NodeId) -> Vec<(Arc<Partition>, FetchRequest)> {
    broker
        .topics
        .all()
        .iter()
        .flat_map(|t| {
            t.local_partitions()
                .filter_map(|p| {
                    p.fetch_target()
                        .filter(|(l, _)| *l == leader)
                        .map(|(_, req)| (p.clone(), req))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn fetcher(
    broker: Arc<Broker>,
    cluster: Arc<Cluster>,
    leader: NodeId,
    mut stop: watch::Receiver<bool>,
) {
    let me = cluster.node_id;
    let mut conn = cluster.peer(leader);
    let mut idle_rounds = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let targets = fetch_targets(&broker, leader);
        if targets.is_empty() {
            idle_rounds += 1;
            if idle_rounds > 25 {
                return;
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            continue;
        }
        idle_rounds = 0;
        let Some(addr) = cluster.store.with_view(|v| address(v, leader)) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (p, req) in &targets {
            let part = FetchPartition {
                partition: p.index,
                current_leader_epoch: req.epoch,
                fetch_offset: req.fetch_offset,
                last_fetched_epoch: req.last_fetched_epoch,
                log_start_offset: p.log.log_start_offset(),
                partition_max_bytes: FETCH_PARTITION_MAX_BYTES,
            };
            match topics.last_mut() {
                Some(t) if t.name == p.topic => t.partitions.push(part),
                _ => topics.push(FetchTopic {
                    name: p.topic.clone(),
                    topic_id: [0; 16],
                    partitions: vec![part],
                }),
            }
        }
        let request = Request::Fetch(KafkaFetchRequest {
            cluster_id: None,
            replica_id: me,
            max_wait_ms: FETCH_MAX_WAIT_MS,
            min_bytes: 1,
            max_bytes: FETCH_MAX_BYTES,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics,
            forgotten_topics: Vec::new(),
            rack_id: String::new(),
            record_magic: 2,
            uses_topic_ids: false,
        });
        let response = tokio::select! {
            _ = stop.changed() => return,
            r = conn.call(&addr, request, FETCH_TIMEOUT_MS) => r,
        };
        let response = match response {
            Ok(Response::Fetch(r)) => r,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(leader, error = %e, "replica fetch failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut work = Vec::new();
        for t in response.topics {
            for pr in t.partitions {
                let Some((p, sent)) = targets
                    .iter()
                    .find(|(p, _)| p.topic == t.name && p.index == pr.partition_index)
                else {
                    continue;
                };
                let (epoch, leader_id) = pr
                    .current_leader
                    .map_or((sent.epoch, Some(leader)), |(l, e)| {
                        (e, (l >= 0).then_some(l))
                    });
                let outcome = match pr.error_code {
                    ErrorCode::NONE => match pr.diverging_epoch {
                        Some((epoch, end_offset)) => FetchOutcome::Diverging {
                            epoch,
                            end_offset,
                            log_start: pr.log_start_offset,
                        },
                        None => FetchOutcome::Records {
                            high_watermark: pr.high_watermark,
                            log_start: pr.log_start_offset,
                        },
                    },
                    ErrorCode::OFFSET_OUT_OF_RANGE => FetchOutcome::OutOfRange {
                        log_start: pr.log_start_offset,
                    },
                    ErrorCode::FENCED_LEADER_EPOCH => FetchOutcome::Error(FetchError::FencedEpoch),
                    ErrorCode::UNKNOWN_LEADER_EPOCH => {
                        FetchOutcome::Error(FetchError::UnknownEpoch)
                    }
                    _ => FetchOutcome::Error(FetchError::NotLeader),
                };
                let resp = FetchResponse {
                    epoch,
                    leader: leader_id,
                    outcome,
                };
                work.push((p.clone(), *sent, resp, pr.records));
            }
        }
        let applied = tokio::task::spawn_blocking(move || {
            for (p, sent, resp, records) in work {
                // A decoded response holds its records in memory; this reads them otherwise.
                let records = match records_in_memory(&records) {
                    Ok(records) => records,
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "cannot read fetched records");
                        continue;
                    }
                };
                if let Err(e) = p.apply_fetched(leader, sent, resp, &records) {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "cannot apply fetched records");
                }
            }
        })
        .await;
        if applied.is_err() {
            tracing::error!("replica fetch application panicked");
        }
        broker.appended.notify_waiters();
    }
}

// ------------------------------------------------------------------------------------------
// Leader records
// ------------------------------------------------------------------------------------------

/// Partitions of an internal topic this broker leads, by index, and the topic's partition count.
type Leading = (Vec<(i32, Arc<Partition>)>, i32);

/// The partitions of internal topic `topic` this broker leads now, with the topic's partition
/// count, if they differ from what `owner` has loaded (`None`: nothing to do).
fn leadership_change<O: crate::internal_partitions::PartitionOwner>(
    broker: &Broker,
    topic: &str,
    owner: &O,
) -> Option<Leading> {
    let topic = broker.topics.get(topic)?;
    let leading: Vec<_> = topic
        .local_partitions()
        .filter(|p| p.leader_epoch().is_some())
        .map(|p| (p.index, p.clone()))
        .collect();
    let count = i32::try_from(topic.partition_count()).unwrap_or(i32::MAX);
    let loaded = owner.loaded();
    let unchanged = loaded.len() == leading.len()
        && loaded
            .iter()
            .zip(&leading)
            .all(|((i, p), (j, q))| i == j && Arc::ptr_eq(p, q));
    (!unchanged).then_some((leading, count))
}

/// [`crate::internal_partitions::follow`], logging each partition of `topic` newly loaded
/// ("`role` topic partition i") and unloaded ("no longer `role` ..."). Blocking.
fn follow_logged<O: PartitionOwner>(
    owner: &O,
    leading: &[(i32, Arc<Partition>)],
    count: i32,
    topic: &str,
    role: &str,
) -> Vec<(i32, O::Error)> {
    let before: Vec<i32> = owner.loaded().iter().map(|(i, _)| *i).collect();
    let failed = crate::internal_partitions::follow(owner, leading, count);
    let after: Vec<i32> = owner.loaded().iter().map(|(i, _)| *i).collect();
    for i in after.iter().filter(|i| !before.contains(i)) {
        tracing::info!(partition = *i, "{role} {topic} partition {i}");
    }
    for i in before.iter().filter(|i| !after.contains(i)) {
        tracing::info!(partition = *i, "no longer {role} {topic} partition {i}");
    }
    failed
}

/// Each group is coordinated by the leader of its `__consumer_offsets` partition: load the
/// groups of the partitions this broker newly leads, drop those of the partitions it stopped
/// leading (see `internal_partitions`).
async fn follow_group_coordination(broker: &Arc<Broker>) {
    let Some((leading, count)) = leadership_change(
        broker,
        crate::offsets::OFFSETS_TOPIC,
        &GroupPartitions(broker),
    ) else {
        return;
    };
    let b = broker.clone();
    let followed = tokio::task::spawn_blocking(move || {
        crate::internal_partitions::follow(&GroupPartitions(&b), &leading, count)
    })
    .await;
    for (index, e) in followed.unwrap_or_default() {
        tracing::error!(partition = index, error = %e, "cannot load an offsets partition; its groups are not coordinated here");
    }
}

/// Each transactional id is coordinated by the leader of its `__transaction_state` partition:
/// load the transactions of the partitions this broker newly leads (and finish those the
/// previous coordinator left preparing), drop those of the partitions it stopped leading.
async fn follow_txn_coordination(broker: &Arc<Broker>) {
    let Some((leading, count)) = leadership_change(broker, crate::txn::TXN_TOPIC, &broker.txn)
    else {
        return;
    };
    let b = broker.clone();
    let followed = tokio::task::spawn_blocking(move || {
        follow_logged(
            &b.txn,
            &leading,
            count,
            crate::txn::TXN_TOPIC,
            "coordinating the transactions of",
        )
    })
    .await;
    for (index, e) in followed.unwrap_or_default() {
        tracing::error!(partition = index, error = %e, "cannot load a transaction state partition; its transactions are not coordinated here");
    }
    crate::txn::markers::resume_preparing(broker);
}

/// The leader of each share state partition holds the durable state of the share-partitions
/// whose keys hash to it: load the partitions this broker newly leads, drop those it stopped
/// leading, and note who leads the others (where this broker's leaders send their state).
async fn follow_share_coordination(broker: &Arc<Broker>) {
    let Some(topic) = broker.topics.get(crate::share::SHARE_STATE_TOPIC) else {
        return;
    };
    if let Some(cluster) = &broker.cluster {
        let count = i32::try_from(topic.partition_count()).unwrap_or(i32::MAX);
        let owners = cluster.store.with_view(|v| {
            (0..count)
                .filter_map(|index| {
                    let leader = v
                        .leaders
                        .get(&(crate::share::SHARE_STATE_TOPIC.to_string(), index))?
                        .leader;
                    if leader < 0 || leader == cluster.node_id() {
                        return None;
                    }
                    Some((index, (leader, address(v, leader)?)))
                })
                .collect()
        });
        broker
            .share
            .set_remote_owners(cluster.node_id(), &cluster.peer_security, count, owners);
    }
    let owner = ShareStatePartitions(broker);
    let Some((leading, count)) = leadership_change(broker, crate::share::SHARE_STATE_TOPIC, &owner)
    else {
        return;
    };
    let b = broker.clone();
    let followed = tokio::task::spawn_blocking(move || {
        follow_logged(
            &ShareStatePartitions(&b),
            &leading,
            count,
            crate::share::SHARE_STATE_TOPIC,
            "owning the share state of",
        )
    })
    .await;
    for (index, e) in followed.unwrap_or_default() {
        tracing::error!(partition = index, error = %e, "cannot load a share state partition; its share state is not served here");
    }
}

async fn publish_loop(broker: Arc<Broker>, cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let mut published: HashMap<(String, i32), LeaderRecord> = HashMap::new();
    loop {
        follow_group_coordination(&broker).await;
        follow_txn_coordination(&broker).await;
        follow_share_coordination(&broker).await;
        act_on_elections(&broker, &cluster).await;
        let mut wanted = Vec::new();
        for topic in broker.topics.all() {
            for p in topic.local_partitions() {
                if p.leader_epoch().is_none() {
                    continue;
                }
                let view = p.replication_view();
                let record = LeaderRecord {
                    leader: cluster.node_id,
                    epoch: view.epoch,
                    isr: view
                        .in_sync
                        .map(|s| s.into_iter().collect())
                        .unwrap_or_default(),
                    voters: view.voters.into_iter().collect(),
                };
                let key = (p.topic.clone(), p.index);
                let in_etcd = cluster.store.with_view(|v| v.leaders.get(&key).cloned());
                if published.get(&key) != Some(&record) || in_etcd.as_ref() != Some(&record) {
                    wanted.push((key, record));
                }
            }
        }
        for (key, record) in wanted {
            match cluster.store.publish_leader(&key.0, key.1, &record).await {
                Ok(()) => {
                    published.insert(key, record);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot publish a leader record");
                    break;
                }
            }
        }
        let notified = cluster.changed.notified();
        tokio::select! {
            _ = stop.changed() => return,
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(PUBLISH_MS)) => {}
        }
    }
}

// ------------------------------------------------------------------------------------------
// Controller
// ------------------------------------------------------------------------------------------

async fn controller_loop(
    broker: Arc<Broker>,
    cluster: Arc<Cluster>,
    mut stop: watch::Receiver<bool>,
) {
    // When each assigned broker was first seen missing.
    let mut missing_since: BTreeMap<NodeId, i64> = BTreeMap::new();
    let mut last_rebalance_ms: i64 = 0;
    let mut first = true;
    loop {
        // The first campaign at once, so a new cluster has a controller as soon as it starts.
        let wait_ms = if std::mem::take(&mut first) {
            0
        } else {
            CONTROLLER_MS
        };
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
        }
        let won = cluster.store.campaign().await.unwrap_or(false);
        let was = cluster.controller.swap(won, Ordering::AcqRel);
        if won != was {
            tracing::info!(
                node_id = cluster.node_id,
                controller = won,
                "controller role"
            );
        }
        if !won {
            missing_since.clear();
            continue;
        }
        let now = broker.now_ms();
        let view = cluster.store.view();
        let assigned: BTreeSet<NodeId> = view
            .topics
            .values()
            .flat_map(|t| t.replicas.iter().flatten().copied())
            .collect();
        missing_since.retain(|id, _| assigned.contains(id) && !view.brokers.contains_key(id));
        for id in &assigned {
            if !view.brokers.contains_key(id) {
                missing_since.entry(*id).or_insert(now);
            }
        }
        let delay =
            i64::try_from(cluster.settings.replica_replacement_delay_ms).unwrap_or(i64::MAX);
        let gone: Vec<NodeId> = missing_since
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= delay)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            replace_broker(&cluster, &view, id).await;
        }
        let interval = i64::try_from(cluster.settings.leader_rebalance_interval_ms).unwrap_or(0);
        if interval > 0 && now.saturating_sub(last_rebalance_ms) >= interval {
            last_rebalance_ms = now;
            rebalance_leaders(&cluster, &view).await;
        }
    }
}

/// Asks the leaders of partitions whose preferred replica is alive and in sync to hand over to
/// it (Kafka's auto.leader.rebalance), so leadership returns to where placement spread it after
/// brokers restart.
async fn rebalance_leaders(cluster: &Cluster, view: &ClusterView) {
    for (topic, index, to) in elections::imbalanced(view) {
        match cluster.store.request_election(&topic, index, to).await {
            Ok(()) => tracing::info!(
                topic,
                partition = index,
                to,
                "moving leadership back to the preferred replica"
            ),
            Err(e) => {
                tracing::debug!(error = %e, "cannot request a preferred-leader election");
                return;
            }
        }
    }
}

/// Moves every replica assigned to broker `gone` to a live broker (one topic record update each).
async fn replace_broker(cluster: &Cluster, view: &ClusterView, gone: NodeId) {
    let candidates = cluster.candidates();
    for (name, topic) in &view.topics {
        if !topic.replicas.iter().any(|r| r.contains(&gone)) {
            continue;
        }
        let mut load = view.replica_load();
        let result = cluster
            .store
            .update_topic(name, |record| {
                for replicas in record.replicas.iter_mut() {
                    if replicas.contains(&gone) {
                        if let Some(next) = placement::replace(replicas, gone, &candidates, &load) {
                            for r in &next {
                                *load.entry(*r).or_default() += 1;
                            }
                            *replicas = next;
                        }
                    }
                }
                Ok(())
            })
            .await;
        match result {
            Ok(_) => {
                tracing::info!(topic = %name, gone, "replaced the replicas of a broker that is gone")
            }
            Err(e) => tracing::warn!(topic = %name, gone, error = %e, "cannot replace replicas"),
        }
    }
}
