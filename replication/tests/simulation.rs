//! Deterministic simulation of the replication core: several replicas of one partition over a
//! network that loses, duplicates, delays and reorders messages and is cut into partitions, with
//! crashes that lose everything not yet synced, restarts, client writes and membership changes.
//!
//! Checked after every step:
//! - at most one leader per epoch;
//! - a running replica's high watermark never decreases;
//! - every replica's committed prefix (below its high watermark) is the same log;
//! - every write acknowledged to a client is in that committed log, at the offset it was given.
//!
//! At the end the network heals and everyone restarts: the replicas must converge on one log that
//! holds every acknowledged write, with the voter set the metadata asked for.
//!
//! `WEIR_SIM_SEEDS=n` runs seeds `0..n` (default 2000, about a minute); `WEIR_SIM_SEED=s` runs one seed and prints
//! its trace. A failure prints the command that reproduces it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use weir_replication::{
    BatchMeta, Bootstrap, Config, ElectionState, Epoch, EpochCache, FetchAnswer, FetchOutcome,
    FetchRequest, FetchResponse, FollowerAction, Message, NodeId, Offset, Output, Replica, Role,
};

/// SplitMix64: the simulation's only source of randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    base: Offset,
    last: Offset,
    epoch: Epoch,
    payload: u64,
    voters: Option<BTreeSet<NodeId>>,
}

impl Entry {
    fn meta(&self) -> BatchMeta {
        BatchMeta {
            base_offset: self.base,
            last_offset: self.last,
            epoch: self.epoch,
            voters: self.voters.clone(),
        }
    }
}

#[derive(Debug, Clone)]
enum Packet {
    Msg(Message),
    FetchReq(FetchRequest),
    FetchResp {
        sent: FetchRequest,
        resp: FetchResponse,
        entries: Vec<Entry>,
    },
}

struct Node {
    id: NodeId,
    replica: Option<Replica>,
    election: ElectionState,
    log: Vec<Entry>,
    log_start: Offset,
    durable_end: Offset,
    fetch_in_flight_since: Option<u64>,
    lifetime_hw: Offset,
    /// Entries below this offset were checked against the committed log.
    checked_upto: Offset,
    restart_at: Option<u64>,
    /// What the broker keeps beside the log: the voter set before any record and the voter
    /// records, rewritten on `VotersChanged` (records may outlive the log segments holding them).
    voters_file: Option<VotersFile>,
}

/// The initial voter set and the voter records, as kept beside the log.
type VotersFile = (BTreeSet<NodeId>, Vec<(Offset, BTreeSet<NodeId>)>);

impl Node {
    fn log_end(&self) -> Offset {
        self.log.last().map_or(self.log_start, |e| e.last + 1)
    }
}

struct PendingAck {
    node: NodeId,
    epoch: Epoch,
    entry: Entry,
}

struct Faults {
    drop_ppm: u64,
    dup_ppm: u64,
    max_delay_ms: u64,
    crash_ppm: u64,
    partition_ppm: u64,
    fsync_ppm: u64,
    write_ppm: u64,
    retention_ppm: u64,
    resign_ppm: u64,
}

struct Sim {
    rng: Rng,
    now: u64,
    seq: u64,
    nodes: BTreeMap<NodeId, Node>,
    initial_voters: BTreeSet<NodeId>,
    target: BTreeSet<NodeId>,
    in_flight: BinaryHeap<Reverse<(u64, u64, NodeId, NodeId)>>,
    packets: BTreeMap<u64, Packet>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    leaders_by_epoch: BTreeMap<Epoch, NodeId>,
    committed: BTreeMap<Offset, Entry>,
    pending_acks: Vec<PendingAck>,
    acked: Vec<Entry>,
    next_payload: u64,
    metadata_leader: Option<(Epoch, NodeId)>,
    faults: Faults,
    trace: bool,
    failure: Option<String>,
}

const ELECTION_TIMEOUT_MS: u64 = 300;
const JITTER_MS: u64 = 300;
const FETCH_RETRY_MS: u64 = 200;
const MAX_FETCH_ENTRIES: usize = 64;

impl Sim {
    fn new(seed: u64, trace: bool) -> Self {
        let mut rng = Rng(seed);
        let node_count = 3 + rng.below(3) as NodeId; // 3..=5 nodes
        let voter_count = if rng.chance(500_000) {
            3
        } else {
            1 + 2 * rng.below(2) as NodeId
        };
        let initial_voters: BTreeSet<NodeId> = (1..=voter_count.min(node_count)).collect();
        // Half the seeds move the voter set during the run (reassignment).
        let target: BTreeSet<NodeId> = if rng.chance(500_000) {
            let mut ids: Vec<NodeId> = (1..=node_count).collect();
            for i in (1..ids.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                ids.swap(i, j);
            }
            let n = if node_count >= 3 {
                3
            } else {
                node_count as usize
            };
            ids.into_iter().take(n).collect()
        } else {
            initial_voters.clone()
        };
        let faults = Faults {
            drop_ppm: rng.below(200_000),
            dup_ppm: rng.below(50_000),
            max_delay_ms: 1 + rng.below(60),
            crash_ppm: if rng.chance(300_000) {
                1_000 + rng.below(3_000)
            } else {
                rng.below(400)
            },
            partition_ppm: rng.below(600),
            fsync_ppm: 50_000 + rng.below(500_000),
            write_ppm: 20_000 + rng.below(200_000),
            retention_ppm: if rng.chance(500_000) {
                rng.below(2_000)
            } else {
                0
            },
            resign_ppm: rng.below(300),
        };
        let mut sim = Sim {
            rng,
            now: 0,
            seq: 0,
            nodes: BTreeMap::new(),
            initial_voters,
            target,
            in_flight: BinaryHeap::new(),
            packets: BTreeMap::new(),
            blocked: BTreeSet::new(),
            leaders_by_epoch: BTreeMap::new(),
            committed: BTreeMap::new(),
            pending_acks: Vec::new(),
            acked: Vec::new(),
            next_payload: 1,
            metadata_leader: None,
            faults,
            trace,
            failure: None,
        };
        for id in 1..=node_count {
            sim.nodes.insert(
                id,
                Node {
                    id,
                    replica: None,
                    election: ElectionState::default(),
                    log: Vec::new(),
                    log_start: 0,
                    durable_end: 0,
                    fetch_in_flight_since: None,
                    lifetime_hw: 0,
                    checked_upto: 0,
                    restart_at: Some(0),
                    voters_file: None,
                },
            );
        }
        sim
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("{:>6} {}", self.now, what());
        }
    }

    fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(format!("at {} ms: {why}", self.now));
        }
    }

    fn start(&mut self, id: NodeId) {
        let replicas: BTreeSet<NodeId> = self.initial_voters.union(&self.target).copied().collect();
        let node = self.nodes.get_mut(&id).expect("node");
        let mut epochs = EpochCache::default();
        for e in &node.log {
            epochs.assign(e.epoch, e.base);
        }
        let log_end = node.log_end();
        let (initial_voters, mut voter_records) = node
            .voters_file
            .clone()
            .unwrap_or_else(|| (self.initial_voters.clone(), Vec::new()));
        // Records above the durable log end were lost with it.
        voter_records.retain(|(o, _)| *o < log_end);
        let boot = Bootstrap {
            election: node.election,
            initial_voters,
            voter_records,
            replicas,
            log_start: node.log_start,
            log_end: node.log_end(),
            epochs,
            high_watermark: node.log_start,
        };
        let cfg = Config {
            node_id: id,
            election_timeout_ms: ELECTION_TIMEOUT_MS,
            election_jitter_ms: JITTER_MS,
            seed: self.rng.next(),
        };
        let mut replica = Replica::new(cfg, boot, self.now);
        node.lifetime_hw = replica.high_watermark();
        node.checked_upto = node.log_start;
        node.fetch_in_flight_since = None;
        node.restart_at = None;
        if self.target != self.initial_voters {
            let mut out = Vec::new();
            replica.set_target_replicas(self.target.clone(), self.now, &mut out);
            node.replica = Some(replica);
            self.execute(id, out);
        } else {
            node.replica = Some(replica);
        }
        self.log(|| format!("n{id} starts"));
    }

    fn crash(&mut self, id: NodeId) {
        let now = self.now;
        let delay = if self.rng.chance(500_000) {
            5 + self.rng.below(100)
        } else {
            50 + self.rng.below(2_000)
        };
        let node = self.nodes.get_mut(&id).expect("node");
        if node.replica.is_none() {
            return;
        }
        node.replica = None;
        let durable = node.durable_end;
        node.log.retain(|e| e.last < durable);
        node.restart_at = Some(now + delay);
        self.pending_acks.retain(|p| p.node != id);
        self.log(|| format!("n{id} crashes, log durable to {durable}"));
    }

    fn send(&mut self, from: NodeId, to: NodeId, packet: Packet) {
        if self.blocked.contains(&(from, to)) || self.rng.chance(self.faults.drop_ppm) {
            return;
        }
        let copies = if self.rng.chance(self.faults.dup_ppm) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + 1 + self.rng.below(self.faults.max_delay_ms);
            self.seq += 1;
            self.in_flight.push(Reverse((at, self.seq, from, to)));
            self.packets.insert(self.seq, packet.clone());
        }
    }

    /// Executes a replica's outputs in order, as the broker does.
    fn execute(&mut self, id: NodeId, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Persist(state) => {
                    let node = self.nodes.get_mut(&id).expect("node");
                    node.election = state;
                }
                Output::Send(to, msg) => {
                    self.log(|| format!("n{id} -> n{to} {msg:?}"));
                    self.send(id, to, Packet::Msg(msg));
                }
                Output::AppendControl { epoch, voters } => {
                    let payload = self.next_payload;
                    self.next_payload += 1;
                    let node = self.nodes.get_mut(&id).expect("node");
                    let base = node.log_end();
                    let entry = Entry {
                        base,
                        last: base,
                        epoch,
                        payload,
                        voters,
                    };
                    node.log.push(entry.clone());
                    let mut out = Vec::new();
                    if let Some(r) = node.replica.as_mut() {
                        r.on_appended(&[entry.meta()], self.now, &mut out);
                    }
                    self.log(|| format!("n{id} appends control {entry:?}"));
                    self.execute(id, out);
                }
                Output::RoleChanged {
                    role,
                    epoch,
                    leader,
                } => {
                    self.log(|| format!("n{id} is {role:?} in epoch {epoch}, leader {leader:?}"));
                    if role == Role::Leader {
                        if let Some(prev) = self.leaders_by_epoch.insert(epoch, id) {
                            if prev != id {
                                self.fail(format!(
                                    "two leaders in epoch {epoch}: n{prev} and n{id}"
                                ));
                            }
                        }
                        self.metadata_leader = match self.metadata_leader {
                            Some((e, _)) if e > epoch => self.metadata_leader,
                            _ => Some((epoch, id)),
                        };
                    }
                }
                Output::HighWatermark(hw) => {
                    self.log(|| format!("n{id} high watermark {hw}"));
                }
                Output::VotersChanged => {
                    let node = self.nodes.get_mut(&id).expect("node");
                    if let Some(r) = node.replica.as_ref() {
                        node.voters_file =
                            Some((r.initial_voters().clone(), r.voter_records().to_vec()));
                    }
                }
            }
        }
    }

    fn deliver(&mut self, seq: u64, from: NodeId, to: NodeId) {
        let Some(packet) = self.packets.remove(&seq) else {
            return;
        };
        if self.blocked.contains(&(from, to)) {
            return;
        }
        let now = self.now;
        let Some(node) = self.nodes.get_mut(&to) else {
            return;
        };
        let Some(replica) = node.replica.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        match packet {
            Packet::Msg(msg) => {
                replica.step(now, from, msg, &mut out);
                self.execute(to, out);
            }
            Packet::FetchReq(req) => {
                let answer = replica.handle_fetch(now, from, req, &mut out);
                if self.trace {
                    println!("{now:>6} n{to} answers fetch {req:?} from n{from}: {answer:?}");
                }
                let epoch = replica.epoch();
                let leader = replica.leader();
                let (outcome, entries) = match answer {
                    FetchAnswer::Read {
                        from: start,
                        high_watermark,
                        log_start,
                    } => {
                        let entries: Vec<Entry> = node
                            .log
                            .iter()
                            .filter(|e| e.base >= start)
                            .take(MAX_FETCH_ENTRIES)
                            .cloned()
                            .collect();
                        (
                            FetchOutcome::Records {
                                high_watermark,
                                log_start,
                            },
                            entries,
                        )
                    }
                    FetchAnswer::Diverging {
                        epoch,
                        end_offset,
                        log_start,
                    } => (
                        FetchOutcome::Diverging {
                            epoch,
                            end_offset,
                            log_start,
                        },
                        Vec::new(),
                    ),
                    FetchAnswer::OutOfRange { log_start } => {
                        (FetchOutcome::OutOfRange { log_start }, Vec::new())
                    }
                    FetchAnswer::Error { error, .. } => (FetchOutcome::Error(error), Vec::new()),
                };
                self.execute(to, out);
                let resp = FetchResponse {
                    epoch,
                    leader,
                    outcome,
                };
                self.send(
                    to,
                    from,
                    Packet::FetchResp {
                        sent: req,
                        resp,
                        entries,
                    },
                );
            }
            Packet::FetchResp {
                sent,
                resp,
                entries,
            } => {
                node.fetch_in_flight_since = None;
                let action = replica.handle_fetch_response(now, from, sent, resp, &mut out);
                if self.trace {
                    let first = entries.first().map(|e| (e.base, e.epoch));
                    println!("{now:>6} n{to} fetch response {resp:?} (first {first:?}) from n{from}: {action:?}");
                }
                match action {
                    FollowerAction::Append { at } => {
                        let usable = entries.first().is_none_or(|e| e.base == at);
                        if usable && !entries.is_empty() {
                            node.log.extend(entries.iter().cloned());
                            let metas: Vec<BatchMeta> = entries.iter().map(Entry::meta).collect();
                            replica.on_appended(&metas, now, &mut out);
                        }
                    }
                    FollowerAction::Truncate(o) => {
                        if node.log.iter().any(|e| e.base < o && e.last >= o) {
                            let near: Vec<&Entry> = node
                                .log
                                .iter()
                                .filter(|e| e.last >= o - 5 && e.base <= o + 5)
                                .collect();
                            self.failure.get_or_insert(format!(
                                "n{to}: truncation at {o} splits a batch: {near:?}"
                            ));
                        }
                        node.log.retain(|e| e.last < o);
                        // Truncation is made durable at once.
                        node.durable_end = node.durable_end.min(o);
                    }
                    FollowerAction::Reset(o) => {
                        node.log.clear();
                        node.log_start = o;
                        node.durable_end = o;
                    }
                    FollowerAction::Ignore => {}
                }
                self.execute(to, out);
            }
        }
    }

    fn step(&mut self) {
        let now = self.now;
        // Messages due now.
        while let Some(Reverse((at, seq, from, to))) = self.in_flight.peek().copied() {
            if at > now {
                break;
            }
            self.in_flight.pop();
            self.deliver(seq, from, to);
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            let restart = self.nodes[&id].restart_at.is_some_and(|t| t <= now);
            if restart {
                self.start(id);
            }
            let mut out = Vec::new();
            let node = self.nodes.get_mut(&id).expect("node");
            let log_end = node.log_end();
            let Some(replica) = node.replica.as_mut() else {
                continue;
            };
            if now >= replica.next_deadline_ms() {
                replica.tick(now, &mut out);
            }
            // Syncs happen now and then (group commit); a crash loses what was not synced.
            if self.rng.chance(self.faults.fsync_ppm) {
                node.durable_end = log_end;
                replica.on_durable(log_end, &mut out);
            }
            // Observers learn the leader from the metadata, as brokers do from etcd.
            if let Some((epoch, leader)) = self.metadata_leader {
                if replica.leader().is_none() && self.rng.chance(20_000) {
                    replica.hint_leader(epoch, leader, now, &mut out);
                }
            }
            let fetch = replica.fetch_target();
            let idle = node
                .fetch_in_flight_since
                .is_none_or(|t| now >= t + FETCH_RETRY_MS);
            self.execute(id, out);
            if let (Some((leader, req)), true) = (fetch, idle) {
                self.nodes.get_mut(&id).expect("node").fetch_in_flight_since = Some(now);
                self.send(id, leader, Packet::FetchReq(req));
            }
        }
    }

    fn faults(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for &id in &ids {
            if self.rng.chance(self.faults.crash_ppm) {
                self.crash(id);
            }
        }
        // Retention: a replica deletes a committed prefix now and then (so lagging replicas must
        // start over from the leader's log start), and leaders hand over now and then.
        for &id in &ids {
            if self.rng.chance(self.faults.retention_ppm) {
                let now = self.now;
                let node = self.nodes.get_mut(&id).expect("node");
                let Some(replica) = node.replica.as_mut() else {
                    continue;
                };
                let hw = replica.high_watermark();
                let Some(start) = node.log.iter().map(|e| e.base).filter(|b| *b <= hw).nth(2)
                else {
                    continue;
                };
                if start > node.log_start {
                    node.log.retain(|e| e.base >= start);
                    node.log_start = start;
                    replica.on_log_start(start);
                    let _ = now;
                    self.log(|| format!("n{id} deletes records below {start}"));
                }
            }
            if self.rng.chance(self.faults.resign_ppm) {
                let now = self.now;
                let mut out = Vec::new();
                if let Some(r) = self.nodes.get_mut(&id).and_then(|n| n.replica.as_mut()) {
                    if r.resign(now, None, &mut out) {
                        self.log(|| format!("n{id} resigns"));
                    }
                }
                self.execute(id, out);
            }
        }
        if self.rng.chance(self.faults.partition_ppm) {
            if self.blocked.is_empty() {
                // Cut one node off, or split the links of a random pair (one-way sometimes).
                let a = ids[self.rng.below(ids.len() as u64) as usize];
                if self.rng.chance(500_000) {
                    for &b in &ids {
                        if a != b {
                            self.blocked.insert((a, b));
                            self.blocked.insert((b, a));
                        }
                    }
                } else {
                    let b = ids[self.rng.below(ids.len() as u64) as usize];
                    if a != b {
                        self.blocked.insert((a, b));
                        if self.rng.chance(500_000) {
                            self.blocked.insert((b, a));
                        }
                    }
                }
                let blocked = self.blocked.clone();
                self.log(|| format!("network cut {blocked:?}"));
            } else {
                self.blocked.clear();
                self.log(|| "network healed".to_string());
            }
        }
    }

    fn client_write(&mut self) {
        if !self.rng.chance(self.faults.write_ppm) {
            return;
        }
        let leaders: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| {
                n.replica
                    .as_ref()
                    .is_some_and(|r| r.append_epoch().is_some())
            })
            .map(|n| n.id)
            .collect();
        if leaders.is_empty() {
            return;
        }
        let id = leaders[self.rng.below(leaders.len() as u64) as usize];
        let records = 1 + self.rng.below(3) as Offset;
        let payload = self.next_payload;
        self.next_payload += 1;
        let now = self.now;
        let node = self.nodes.get_mut(&id).expect("node");
        let base = node.log_end();
        let replica = node.replica.as_mut().expect("leader runs");
        let epoch = replica.append_epoch().expect("leader");
        let entry = Entry {
            base,
            last: base + records - 1,
            epoch,
            payload,
            voters: None,
        };
        node.log.push(entry.clone());
        let mut out = Vec::new();
        replica.on_appended(&[entry.meta()], now, &mut out);
        self.pending_acks.push(PendingAck {
            node: id,
            epoch,
            entry,
        });
        self.execute(id, out);
    }

    fn check(&mut self) {
        let mut failures = Vec::new();
        let mut newly_committed = Vec::new();
        for node in self.nodes.values_mut() {
            let Some(replica) = node.replica.as_ref() else {
                continue;
            };
            let hw = replica.high_watermark();
            if hw < node.lifetime_hw {
                failures.push(format!(
                    "n{} high watermark went back from {} to {hw}",
                    node.id, node.lifetime_hw
                ));
            }
            node.lifetime_hw = hw;
            let from = node.log.partition_point(|e| e.base < node.checked_upto);
            for e in node.log[from..].iter().take_while(|e| e.last < hw) {
                newly_committed.push((node.id, e.clone()));
            }
            node.checked_upto = node.checked_upto.max(hw.min(node.log_end()));
        }
        for (id, e) in newly_committed {
            match self.committed.get(&e.base) {
                Some(c) if *c != e => {
                    failures.push(format!("n{id} committed {e:?} where {c:?} was committed"))
                }
                Some(_) => {}
                None => {
                    // Must not overlap another committed entry.
                    let overlap = self
                        .committed
                        .range(..=e.last)
                        .next_back()
                        .is_some_and(|(_, c)| c.last >= e.base);
                    if overlap {
                        failures.push(format!("n{id} committed {e:?} overlapping another entry"));
                    }
                    self.committed.insert(e.base, e);
                }
            }
        }
        // Acknowledge writes whose leader's high watermark passed them while still leading.
        let mut still = Vec::new();
        for p in std::mem::take(&mut self.pending_acks) {
            let Some(r) = self.nodes[&p.node].replica.as_ref() else {
                continue;
            };
            if r.epoch() != p.epoch || r.leader() != Some(p.node) {
                continue;
            }
            if r.high_watermark() > p.entry.last {
                if self.committed.get(&p.entry.base) != Some(&p.entry) {
                    failures.push(format!(
                        "acknowledged {:?} is not the committed entry {:?}",
                        p.entry,
                        self.committed.get(&p.entry.base)
                    ));
                }
                self.acked.push(p.entry);
            } else {
                still.push(p);
            }
        }
        self.pending_acks = still;
        for f in failures {
            self.fail(f);
        }
    }

    fn run(&mut self, faulty_ms: u64, quiet_ms: u64) {
        while self.now < faulty_ms && self.failure.is_none() {
            self.faults();
            self.client_write();
            self.step();
            self.check();
            self.now += 1;
        }
        // Heal: no more faults, everyone up, syncs keep coming.
        self.blocked.clear();
        self.faults.drop_ppm = 0;
        self.faults.dup_ppm = 0;
        self.faults.fsync_ppm = self.faults.fsync_ppm.max(200_000);
        let down: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.replica.is_none())
            .map(|n| n.id)
            .collect();
        for id in down {
            self.nodes.get_mut(&id).expect("node").restart_at = Some(self.now);
        }
        let end = self.now + quiet_ms;
        while self.now < end && self.failure.is_none() {
            self.client_write();
            self.step();
            self.check();
            self.now += 1;
        }
        // Drain: no more writes, then everything must have converged.
        let end = self.now + quiet_ms;
        while self.now < end && self.failure.is_none() {
            self.step();
            self.check();
            self.now += 1;
        }
        if self.failure.is_none() {
            self.check_converged();
        }
    }

    fn check_converged(&mut self) {
        let leaders: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.replica.as_ref().is_some_and(|r| r.role() == Role::Leader))
            .map(|n| n.id)
            .collect();
        let [leader] = leaders[..] else {
            self.fail(format!("after healing, leaders {leaders:?}"));
            return;
        };
        let lr = self.nodes[&leader].replica.as_ref().expect("leader");
        let voters = lr.voters().clone();
        if voters != self.target {
            self.fail(format!("voters {voters:?}, target {:?}", self.target));
            return;
        }
        let leader_log = self.nodes[&leader].log.clone();
        let leader_hw = lr.high_watermark();
        if leader_hw != self.nodes[&leader].log_end() {
            self.fail(format!(
                "leader n{leader} high watermark {leader_hw} short of its log end {}",
                self.nodes[&leader].log_end()
            ));
            return;
        }
        let leader_start = self.nodes[&leader].log_start;
        for v in &voters {
            // Retention may have deleted different prefixes: compare what both still hold.
            let n = &self.nodes[v];
            let from = n.log_start.max(leader_start);
            let mine: Vec<&Entry> = n.log.iter().filter(|e| e.base >= from).collect();
            let theirs: Vec<&Entry> = leader_log.iter().filter(|e| e.base >= from).collect();
            if mine != theirs || n.log_end() != self.nodes[&leader].log_end() {
                self.fail(format!("n{v}'s log differs from leader n{leader}'s"));
                return;
            }
        }
        for a in self.acked.clone() {
            if a.base >= leader_start && !leader_log.contains(&a) {
                self.fail(format!("acknowledged {a:?} lost"));
                return;
            }
        }
    }
}

fn run_seed(seed: u64, trace: bool) -> Result<(usize, usize), String> {
    // A replica's own assertions (e.g. never truncating below its high watermark) panic: report
    // them as this seed's failure.
    let run = std::panic::catch_unwind(|| {
        let mut sim = Sim::new(seed, trace);
        sim.run(8_000, 3_000);
        match sim.failure {
            Some(f) => Err(f),
            None => Ok((sim.acked.len(), sim.leaders_by_epoch.len())),
        }
    });
    match run {
        Ok(r) => r,
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".to_string())),
    }
}

#[test]
fn replication_survives_faults() {
    if let Ok(seed) = std::env::var("WEIR_SIM_SEED") {
        let seed: u64 = seed.parse().expect("WEIR_SIM_SEED is a number");
        match run_seed(seed, true) {
            Ok((acked, epochs)) => {
                println!("seed {seed}: ok, {acked} acknowledged, {epochs} epochs")
            }
            Err(e) => panic!("seed {seed}: {e}"),
        }
        return;
    }
    let seeds: u64 = std::env::var("WEIR_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut total_acked = 0;
    let mut total_epochs = 0;
    let mut failures = Vec::new();
    for seed in 0..seeds {
        match run_seed(seed, false) {
            Ok((acked, epochs)) => {
                total_acked += acked;
                total_epochs += epochs;
            }
            Err(e) => failures.push(format!(
                "seed {seed}: {e}\n  reproduce: WEIR_SIM_SEED={seed} cargo test --release -p weir-replication --test simulation -- --nocapture"
            )),
        }
    }
    println!(
        "{seeds} seeds: {total_acked} writes acknowledged, {total_epochs} epochs with a leader"
    );
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The runs must exercise something: writes acknowledged and leaders changing.
    assert!(
        total_acked > seeds as usize * 10,
        "too few acknowledged writes: {total_acked}"
    );
    assert!(
        total_epochs > seeds as usize,
        "too few elections: {total_epochs}"
    );
}
