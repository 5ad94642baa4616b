//! A small async Kafka client for the CLI that sends each request where a Kafka client would.
//!
//! It learns the brokers, the controller and every partition's leader from Metadata responses
//! (those it asks for and those the commands ask for), and each group's coordinator from
//! FindCoordinator. [`Client::call`] takes a whole request and routes it:
//!
//! - Produce, Fetch and ListOffsets are split per partition leader, sent to the leaders at once,
//!   and their answers merged into one response.
//! - Group requests go to the group's coordinator (split per coordinator when they name several
//!   groups); ListGroups goes to every broker and the groups are merged, as Kafka's admin
//!   client lists them.
//! - CreateTopics, DeleteTopics, CreatePartitions, ElectLeaders and the partition-reassignment
//!   APIs go to the controller, as Kafka's admin client sends them (any Weir broker serves them;
//!   the controller is only preferred). Everything else goes to any broker.
//!
//! A partition answered NOT_LEADER_OR_FOLLOWER or LEADER_NOT_AVAILABLE, a group answered
//! NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or COORDINATOR_LOAD_IN_PROGRESS, and a broker that
//! cannot be reached send the client back to Metadata / FindCoordinator and try again, at most
//! [`MAX_ROUNDS`] times with a short backoff; after that the last answer stands. A request whose
//! connection broke after it was written is only sent again where that cannot duplicate anything
//! (never Produce or topic changes).
//!
//! One connection per broker (at most [`MAX_CONNECTIONS`]), one request in flight on each. On a
//! single node the one broker leads every partition and coordinates every group, so everything
//! goes to the bootstrap address, as before clusters existed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_protocol::client::{decode_response, encode_request};
use weir_protocol::*;

use super::route::{Key, Routed};

const CLIENT_ID: &str = "weir-cli";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one response (fetches long-poll for at most a few seconds; joins may wait
/// for a rebalance).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest response frame accepted.
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// Open broker connections at most (one per broker).
const MAX_CONNECTIONS: usize = 32;
/// Attempts of a request whose partitions or groups moved, or whose broker was unreachable.
/// With the backoff below that is about 17 s: long enough for a Raft election after a broker
/// died (2 s election timeout by default) or a broker session to expire (9 s).
pub const MAX_ROUNDS: u32 = 20;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// FindCoordinator key type of consumer groups.
const KEY_TYPE_GROUP: i8 = 0;

/// Why one exchange with one broker failed.
#[derive(Debug)]
pub enum CallError {
    /// No connection could be made: the request was not sent.
    Connect(anyhow::Error),
    /// The connection broke after the request was (maybe) written.
    Lost(anyhow::Error),
    /// Anything else (a request that cannot be encoded, a malformed response): not retried.
    Other(anyhow::Error),
}

impl From<CallError> for anyhow::Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Connect(e) | CallError::Lost(e) | CallError::Other(e) => e,
        }
    }
}

/// One connection to one broker.
struct Conn {
    addr: String,
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Conn {
    async fn open(addr: &str) -> Result<Self, CallError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                stream.set_nodelay(true).ok();
                Ok(Self {
                    addr: addr.to_string(),
                    stream,
                    next_correlation_id: 1,
                })
            }
            Ok(Err(e)) => Err(CallError::Connect(anyhow!("cannot connect to {addr}: {e}"))),
            Err(_) => Err(CallError::Connect(anyhow!(
                "cannot connect to {addr}: timed out"
            ))),
        }
    }

    /// Sends `request` and waits for its response.
    async fn call(&mut self, request: &Request) -> Result<Response, CallError> {
        let api_key = request.api_key();
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let (frame, version) = encode_request(correlation_id, CLIENT_ID, request)
            .map_err(|e| CallError::Other(e.into()))?;
        let addr = self.addr.clone();
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| CallError::Lost(anyhow!("lost the connection to {addr}: {e}")))?;
        let body = match tokio::time::timeout(RESPONSE_TIMEOUT, self.read_frame()).await {
            Err(_) => {
                return Err(CallError::Lost(anyhow!(
                    "no response from {addr} within {RESPONSE_TIMEOUT:?}"
                )))
            }
            Ok(Err(e)) => {
                return Err(CallError::Lost(
                    e.context(format!("lost the connection to {addr}")),
                ))
            }
            Ok(Ok(body)) => body,
        };
        let (got, response) =
            decode_response(api_key, version, body).map_err(|e| CallError::Other(e.into()))?;
        if got != correlation_id {
            return Err(CallError::Other(anyhow!(
                "response out of order from {addr} (correlation id {got}, expected {correlation_id})"
            )));
        }
        Ok(response)
    }

    async fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix).await?;
        let len = i32::from_be_bytes(prefix);
        let len = usize::try_from(len).context("negative response size")?;
        if len > MAX_RESPONSE_BYTES {
            bail!("response of {len} bytes is larger than the {MAX_RESPONSE_BYTES}-byte limit");
        }
        let mut body = BytesMut::zeroed(len);
        self.stream.read_exact(&mut body).await?;
        Ok(body.freeze())
    }
}

/// Where a key (a partition, a group) goes now.
enum Route {
    /// To this broker address.
    Broker(String),
    /// Known, but without a leader or coordinator at the moment: ask again later.
    Wait,
    /// Unknown (no such topic, say): any broker gives the answer.
    Any,
}

/// `host:port` as a socket address string (IPv6 hosts bracketed).
fn address(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn backoff(round: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1u32 << round.min(10))
        .min(BACKOFF_MAX)
}

/// Whether an error code means "ask again after fresh metadata". UNKNOWN_TOPIC_OR_PARTITION
/// counts only where the metadata named a leader (a broker that has not heard of a new topic
/// yet); for a topic nobody knows it is the answer.
fn retriable(code: ErrorCode, leader_was_known: bool) -> bool {
    matches!(
        code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::NOT_CONTROLLER
    ) || (code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION && leader_was_known)
}

pub struct Client {
    /// The addresses given with --brokers, in order.
    bootstrap: Vec<String>,
    /// Open connections by address.
    conns: BTreeMap<String, Conn>,
    /// Broker id to address, from the last Metadata.
    brokers: BTreeMap<i32, String>,
    controller: Option<i32>,
    /// Partition leaders (-1: none at the moment), from Metadata.
    leaders: BTreeMap<(String, i32), i32>,
    /// Group coordinators (-1: not available at the moment), from FindCoordinator.
    coordinators: BTreeMap<String, i32>,
}

impl Client {
    /// Connects to the first reachable address of the comma-separated `brokers` list.
    pub async fn connect(brokers: &str) -> anyhow::Result<Self> {
        let bootstrap: Vec<String> = brokers
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        let mut client = Self {
            bootstrap,
            conns: BTreeMap::new(),
            brokers: BTreeMap::new(),
            controller: None,
            leaders: BTreeMap::new(),
            coordinators: BTreeMap::new(),
        };
        let mut last_err = None;
        for addr in client.bootstrap.clone() {
            match Conn::open(&addr).await {
                Ok(conn) => {
                    client.conns.insert(addr, conn);
                    return Ok(client);
                }
                Err(e) => last_err = Some(anyhow::Error::from(e)),
            }
        }
        match last_err {
            Some(e) => bail!(
                "{e}: is `weir serve` running? (set the address with --brokers or WEIR_BROKERS)"
            ),
            None => bail!("no broker address given (use --brokers host:port or WEIR_BROKERS)"),
        }
    }

    /// Sends `request` where it belongs (see the module docs) and returns its response.
    pub async fn call(&mut self, request: Request) -> anyhow::Result<Response> {
        Ok(match request {
            Request::Produce(r) => Response::Produce(self.routed(r).await?),
            Request::Fetch(r) => Response::Fetch(self.routed(r).await?),
            Request::ListOffsets(r) => Response::ListOffsets(self.routed(r).await?),
            Request::JoinGroup(r) => Response::JoinGroup(self.routed(r).await?),
            Request::SyncGroup(r) => Response::SyncGroup(self.routed(r).await?),
            Request::Heartbeat(r) => Response::Heartbeat(self.routed(r).await?),
            Request::LeaveGroup(r) => Response::LeaveGroup(self.routed(r).await?),
            Request::OffsetCommit(r) => Response::OffsetCommit(self.routed(r).await?),
            Request::OffsetFetch(r) => Response::OffsetFetch(self.routed(r).await?),
            Request::OffsetDelete(r) => Response::OffsetDelete(self.routed(r).await?),
            Request::DescribeGroups(r) => Response::DescribeGroups(self.routed(r).await?),
            Request::DeleteGroups(r) => Response::DeleteGroups(self.routed(r).await?),
            Request::ConsumerGroupHeartbeat(r) => {
                Response::ConsumerGroupHeartbeat(self.routed(r).await?)
            }
            Request::ConsumerGroupDescribe(r) => {
                Response::ConsumerGroupDescribe(self.routed(r).await?)
            }
            Request::ShareGroupDescribe(r) => Response::ShareGroupDescribe(self.routed(r).await?),
            Request::DescribeShareGroupOffsets(r) => {
                Response::DescribeShareGroupOffsets(self.routed(r).await?)
            }
            Request::ListGroups(r) => Response::ListGroups(self.list_groups(r).await?),
            r @ (Request::CreateTopics(_)
            | Request::DeleteTopics(_)
            | Request::CreatePartitions(_)
            | Request::ElectLeaders(_)
            | Request::AlterPartitionReassignments(_)
            | Request::ListPartitionReassignments(_)) => self.call_controller(r).await?,
            // Reads, and config changes that set absolute values: safe to send again.
            r => self.call_any(&r, true).await?,
        })
    }

    // -------------------------------------------------------------------------------------
    // Connections
    // -------------------------------------------------------------------------------------

    /// Closes connections (not in `keep`) until `room` more fit under the limit.
    fn make_room(&mut self, room: usize, keep: &BTreeSet<String>) {
        while self.conns.len() + room > MAX_CONNECTIONS {
            let Some(victim) = self.conns.keys().find(|a| !keep.contains(*a)).cloned() else {
                return;
            };
            self.conns.remove(&victim);
        }
    }

    /// One exchange with the broker at `addr` (connecting first if needed). A connection that
    /// failed is closed.
    async fn call_at(&mut self, addr: &str, request: &Request) -> Result<Response, CallError> {
        let mut conn = match self.conns.remove(addr) {
            Some(c) => c,
            None => {
                self.make_room(1, &BTreeSet::new());
                Conn::open(addr).await?
            }
        };
        let result = conn.call(request).await;
        if result.is_ok() {
            self.conns.insert(addr.to_string(), conn);
        }
        result
    }

    /// Sends each request to its address at once; the answers in the same order. At most
    /// [`MAX_CONNECTIONS`] at a time.
    async fn exchange(
        &mut self,
        requests: Vec<(String, Request)>,
    ) -> Vec<(String, Result<Response, CallError>)> {
        let mut out = Vec::with_capacity(requests.len());
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let chunk: Vec<(String, Request)> = requests.by_ref().take(MAX_CONNECTIONS).collect();
            let addrs: BTreeSet<String> = chunk.iter().map(|(a, _)| a.clone()).collect();
            let new = addrs
                .iter()
                .filter(|a| !self.conns.contains_key(*a))
                .count();
            self.make_room(new, &addrs);
            let mut tasks = tokio::task::JoinSet::new();
            // Each answer in its request's slot; a slot left empty (a task that did not finish)
            // counts as a lost connection.
            let mut done: Vec<(String, Option<Result<Response, CallError>>)> = Vec::new();
            for (i, (addr, request)) in chunk.into_iter().enumerate() {
                let conn = self.conns.remove(&addr);
                done.push((addr.clone(), None));
                tasks.spawn(async move {
                    let mut conn = match conn {
                        Some(c) => c,
                        None => match Conn::open(&addr).await {
                            Ok(c) => c,
                            Err(e) => return (i, addr, None, Err(e)),
                        },
                    };
                    let result = conn.call(&request).await;
                    let conn = result.is_ok().then_some(conn);
                    (i, addr, conn, result)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let Ok((i, addr, conn, result)) = joined else {
                    continue;
                };
                if let Some(conn) = conn {
                    self.conns.insert(addr, conn);
                }
                if let Some(slot) = done.get_mut(i) {
                    slot.1 = Some(result);
                }
            }
            out.extend(done.into_iter().map(|(addr, result)| {
                let result = result.unwrap_or_else(|| {
                    Err(CallError::Lost(anyhow!(
                        "the exchange with {addr} did not finish"
                    )))
                });
                (addr, result)
            }));
        }
        out
    }

    /// Addresses to try for "any broker": open connections first, then the bootstrap list,
    /// then the brokers Metadata named.
    fn any_candidates(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.conns
            .keys()
            .chain(self.bootstrap.iter())
            .chain(self.brokers.values())
            .filter(|a| seen.insert((*a).clone()))
            .cloned()
            .collect()
    }

    /// Sends `request` to any broker, trying the next one while they cannot be reached (or,
    /// when `resend_safe`, lose the connection). Returns the address that answered too.
    async fn call_any_at(
        &mut self,
        request: &Request,
        resend_safe: bool,
    ) -> anyhow::Result<(String, Response)> {
        let mut last = None;
        for addr in self.any_candidates() {
            match self.call_at(&addr, request).await {
                Ok(r) => {
                    self.observe(&addr, &r);
                    return Ok((addr, r));
                }
                Err(CallError::Connect(e)) => last = Some(e),
                Err(CallError::Lost(e)) if resend_safe => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow!("no broker address known"))
            .context("no broker could be reached"))
    }

    async fn call_any(&mut self, request: &Request, resend_safe: bool) -> anyhow::Result<Response> {
        Ok(self.call_any_at(request, resend_safe).await?.1)
    }

    /// An address with an open connection, connecting to a candidate if none is open.
    async fn any_addr(&mut self) -> anyhow::Result<String> {
        if let Some(a) = self.conns.keys().next() {
            return Ok(a.clone());
        }
        let mut last = None;
        for addr in self.any_candidates() {
            match Conn::open(&addr).await {
                Ok(c) => {
                    self.conns.insert(addr.clone(), c);
                    return Ok(addr);
                }
                Err(e) => last = Some(anyhow::Error::from(e)),
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow!("no broker address known"))
            .context("no broker could be reached"))
    }

    // -------------------------------------------------------------------------------------
    // What the client knows of the cluster
    // -------------------------------------------------------------------------------------

    /// Learns from a response that passes by (Metadata: brokers, controller, leaders).
    fn observe(&mut self, from: &str, response: &Response) {
        let Response::Metadata(md) = response else {
            return;
        };
        self.brokers = md
            .brokers
            .iter()
            .map(|b| (b.node_id, address(&b.host, b.port)))
            .collect();
        // A single broker is the one that answered: reach it where we reached it, even when it
        // advertises an address this machine cannot use (a single node listening on 0.0.0.0).
        if let [only] = md.brokers.as_slice() {
            self.brokers.insert(only.node_id, from.to_string());
        }
        self.controller = (md.controller_id >= 0).then_some(md.controller_id);
        for t in &md.topics {
            let Some(name) = &t.name else { continue };
            self.leaders.retain(|(topic, _), _| topic != name);
            if t.error_code.is_none() {
                for p in &t.partitions {
                    self.leaders
                        .insert((name.clone(), p.partition_index), p.leader_id);
                }
            }
        }
    }

    /// Fresh metadata for `topics` (none: only brokers and controller).
    async fn refresh_metadata(&mut self, topics: Vec<String>) -> anyhow::Result<()> {
        let request = Request::Metadata(MetadataRequest {
            topics: Some(
                topics
                    .into_iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some(n),
                        topic_id: [0; 16],
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        });
        self.call_any(&request, true).await.map(|_| ())
    }

    /// Asks for the coordinators of `groups`.
    async fn find_coordinators(&mut self, groups: Vec<String>) -> anyhow::Result<()> {
        if self.brokers.is_empty() {
            self.refresh_metadata(Vec::new()).await?;
        }
        let request = Request::FindCoordinator(FindCoordinatorRequest {
            key_type: KEY_TYPE_GROUP,
            keys: groups,
        });
        let response = self.call_any(&request, true).await?;
        let Response::FindCoordinator(r) = response else {
            bail!("unexpected response to a FindCoordinator request");
        };
        for c in r.coordinators {
            if c.error_code.is_none() && c.node_id >= 0 {
                self.brokers
                    .entry(c.node_id)
                    .or_insert_with(|| address(&c.host, c.port));
                self.coordinators.insert(c.key, c.node_id);
            } else {
                self.coordinators.insert(c.key, -1);
            }
        }
        Ok(())
    }

    fn route(&self, key: &Key) -> Route {
        let node = match key {
            Key::Partition(t, p) => self.leaders.get(&(t.clone(), *p)),
            Key::Group(g) => self.coordinators.get(g),
        };
        match node {
            None => Route::Any,
            Some(&id) => match self.brokers.get(&id) {
                Some(addr) if id >= 0 => Route::Broker(addr.clone()),
                _ => Route::Wait,
            },
        }
    }

    fn forget(&mut self, key: &Key) {
        match key {
            Key::Partition(t, p) => {
                self.leaders.remove(&(t.clone(), *p));
            }
            Key::Group(g) => {
                self.coordinators.remove(g);
            }
        }
    }

    /// Looks up the keys that have no broker to go to.
    async fn look_up(&mut self, keys: &BTreeSet<Key>) -> anyhow::Result<()> {
        let mut topics = BTreeSet::new();
        let mut groups = BTreeSet::new();
        for k in keys {
            if matches!(self.route(k), Route::Broker(_)) {
                continue;
            }
            match k {
                Key::Partition(t, _) => topics.insert(t.clone()),
                Key::Group(g) => groups.insert(g.clone()),
            };
        }
        if !topics.is_empty() || (self.brokers.is_empty() && !keys.is_empty()) {
            self.refresh_metadata(topics.into_iter().collect()).await?;
        }
        if !groups.is_empty() {
            self.find_coordinators(groups.into_iter().collect()).await?;
        }
        Ok(())
    }

    // -------------------------------------------------------------------------------------
    // Routing
    // -------------------------------------------------------------------------------------

    /// Sends a request keyed by partitions or groups to the brokers that own them, retrying
    /// the keys that moved (see the module docs), and merges the answers.
    async fn routed<T: Routed>(&mut self, request: T) -> anyhow::Result<T::Resp> {
        let mut pending: BTreeSet<Key> = request.keys().into_iter().collect();
        let mut answers: BTreeMap<Key, T::Part> = BTreeMap::new();
        let mut shell: Option<T::Resp> = None;
        let mut last_err: Option<anyhow::Error> = None;
        for round in 0..MAX_ROUNDS {
            let last_round = round + 1 == MAX_ROUNDS;
            self.look_up(&pending).await?;
            let mut plan: BTreeMap<String, BTreeSet<Key>> = BTreeMap::new();
            let mut retry = BTreeSet::new();
            let mut routed_to_leader = BTreeSet::new();
            for key in &pending {
                let addr = match self.route(key) {
                    Route::Broker(addr) => {
                        routed_to_leader.insert(key.clone());
                        addr
                    }
                    Route::Wait if !last_round => {
                        retry.insert(key.clone());
                        continue;
                    }
                    Route::Wait | Route::Any => self.any_addr().await?,
                };
                plan.entry(addr).or_default().insert(key.clone());
            }
            let (addrs, sent): (Vec<String>, Vec<BTreeSet<Key>>) = plan.into_iter().unzip();
            let requests = addrs
                .iter()
                .zip(&sent)
                .map(|(a, keys)| (a.clone(), request.subset(keys).into_request()))
                .collect();
            let results = self.exchange(requests).await;
            for ((addr, result), keys) in results.into_iter().zip(sent) {
                match result {
                    Ok(response) => {
                        self.observe(&addr, &response);
                        let (s, parts) = T::split(T::from_response(response)?, &keys);
                        shell = Some(match shell.take() {
                            Some(old) => T::combine(old, s),
                            None => s,
                        });
                        for (key, part) in parts {
                            if !keys.contains(&key) {
                                continue;
                            }
                            if retriable(T::error(&part), routed_to_leader.contains(&key)) {
                                self.forget(&key);
                                retry.insert(key.clone());
                            }
                            answers.insert(key, part);
                        }
                    }
                    Err(CallError::Connect(e)) => {
                        for k in &keys {
                            self.forget(k);
                        }
                        retry.extend(keys);
                        last_err = Some(e);
                    }
                    Err(CallError::Lost(e)) if T::RESEND_SAFE => {
                        for k in &keys {
                            self.forget(k);
                        }
                        retry.extend(keys);
                        last_err = Some(e);
                    }
                    Err(CallError::Lost(e)) => {
                        return Err(e.context(T::LOST_HINT));
                    }
                    Err(CallError::Other(e)) => return Err(e),
                }
            }
            pending = retry;
            if pending.is_empty() || last_round {
                break;
            }
            tokio::time::sleep(backoff(round)).await;
        }
        if pending.iter().any(|k| !answers.contains_key(k)) {
            if let Some(e) = last_err {
                return Err(e.context(format!("gave up after {MAX_ROUNDS} attempts")));
            }
        }
        Ok(T::join(shell.unwrap_or_default(), answers))
    }

    /// ListGroups to every broker (each knows the groups it coordinates), merged.
    async fn list_groups(
        &mut self,
        request: ListGroupsRequest,
    ) -> anyhow::Result<ListGroupsResponse> {
        self.refresh_metadata(Vec::new()).await?;
        let mut pending: BTreeSet<i32> = self.brokers.keys().copied().collect();
        let mut merged = ListGroupsResponse::default();
        let mut seen = BTreeSet::new();
        let mut last_err = None;
        for round in 0..MAX_ROUNDS {
            let ids: Vec<i32> = pending
                .iter()
                .copied()
                .filter(|id| self.brokers.contains_key(id))
                .collect();
            let requests = ids
                .iter()
                .filter_map(|id| self.brokers.get(id))
                .map(|a| (a.clone(), Request::ListGroups(request.clone())))
                .collect();
            let results = self.exchange(requests).await;
            let mut retry = BTreeSet::new();
            for (id, (addr, result)) in ids.into_iter().zip(results) {
                match result {
                    Ok(Response::ListGroups(r)) => {
                        if retriable(r.error_code, false) {
                            retry.insert(id);
                            last_err = Some(anyhow!(
                                "cannot list the groups of broker {id} ({addr}): {}",
                                r.error_code
                            ));
                            continue;
                        }
                        if merged.error_code.is_none() {
                            merged.error_code = r.error_code;
                        }
                        // While a coordinator moves two brokers may both list a group.
                        for g in r.groups {
                            if seen.insert(g.group_id.clone()) {
                                merged.groups.push(g);
                            }
                        }
                    }
                    Ok(other) => bail!(
                        "unexpected response (api key {}) to a ListGroups request",
                        other.api_key()
                    ),
                    Err(CallError::Connect(e) | CallError::Lost(e)) => {
                        retry.insert(id);
                        last_err = Some(e);
                    }
                    Err(CallError::Other(e)) => return Err(e),
                }
            }
            pending = retry;
            if pending.is_empty() || round + 1 == MAX_ROUNDS {
                break;
            }
            tokio::time::sleep(backoff(round)).await;
            // A broker that died leaves the metadata once its session expires.
            self.refresh_metadata(Vec::new()).await?;
            pending.retain(|id| self.brokers.contains_key(id));
        }
        if !pending.is_empty() {
            if let Some(e) = last_err {
                return Err(e.context(format!("gave up after {MAX_ROUNDS} attempts")));
            }
        }
        Ok(merged)
    }

    /// Admin requests Kafka sends to the controller; sent once more elsewhere only when they
    /// could not be delivered, or the broker says it is not the controller.
    async fn call_controller(&mut self, request: Request) -> anyhow::Result<Response> {
        let mut last_err = None;
        for round in 0..MAX_ROUNDS {
            if self.brokers.is_empty() || self.controller.is_none() {
                self.refresh_metadata(Vec::new()).await?;
            }
            let target = self
                .controller
                .and_then(|id| self.brokers.get(&id).cloned());
            let addr = match target {
                Some(a) => a,
                None => self.any_addr().await?,
            };
            let retry_lost = matches!(request, Request::ListPartitionReassignments(_));
            match self.call_at(&addr, &request).await {
                Ok(r) if not_controller(&r) && round + 1 < MAX_ROUNDS => {
                    self.controller = None;
                    last_err = Some(anyhow!("{addr} is not the controller"));
                }
                Ok(r) => return Ok(r),
                Err(CallError::Connect(e)) => {
                    self.controller = None;
                    last_err = Some(e);
                }
                Err(CallError::Lost(e)) if retry_lost => {
                    self.controller = None;
                    last_err = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(backoff(round)).await;
        }
        Err(last_err
            .unwrap_or_else(|| anyhow!("no controller"))
            .context(format!("gave up after {MAX_ROUNDS} attempts")))
    }
}

/// Whether an admin response says the broker is not the controller (Kafka's NOT_CONTROLLER).
fn not_controller(r: &Response) -> bool {
    let nc = |c: ErrorCode| c == ErrorCode::NOT_CONTROLLER;
    match r {
        Response::CreateTopics(r) => r.topics.iter().any(|t| nc(t.error_code)),
        Response::DeleteTopics(r) => r.responses.iter().any(|t| nc(t.error_code)),
        Response::CreatePartitions(r) => r.results.iter().any(|t| nc(t.error_code)),
        Response::ElectLeaders(r) => nc(r.error_code),
        Response::AlterPartitionReassignments(r) => nc(r.error_code),
        Response::ListPartitionReassignments(r) => nc(r.error_code),
        _ => false,
    }
}

/// Unwraps the expected response variant.
macro_rules! expect_response {
    ($response:expr, $variant:ident) => {
        match $response {
            weir_protocol::Response::$variant(r) => r,
            other => anyhow::bail!(
                "unexpected response (api key {}) to a {} request",
                other.api_key(),
                stringify!($variant)
            ),
        }
    };
}
pub(crate) use expect_response;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(4), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn addresses_bracket_ipv6_hosts() {
        assert_eq!(address("127.0.0.1", 9092), "127.0.0.1:9092");
        assert_eq!(address("::1", 9092), "[::1]:9092");
    }

    #[test]
    fn unknown_topic_is_retried_only_where_a_leader_was_named() {
        assert!(retriable(ErrorCode::NOT_LEADER_OR_FOLLOWER, false));
        assert!(retriable(ErrorCode::NOT_COORDINATOR, false));
        assert!(retriable(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, true));
        assert!(!retriable(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, false));
        assert!(!retriable(ErrorCode::OFFSET_OUT_OF_RANGE, true));
    }
}
