//! One replica of one partition: the Raft state machine.
//!
//! Roles (KRaft's names): `Unattached` (no leader known, no vote cast in this epoch), `Voted`,
//! `Follower`, `Prospective` (asking for pre-votes without bumping the epoch), `Candidate`,
//! `Leader` and `Resigned` (a leader handing over). Replicas outside the voter set are observers:
//! they follow and fetch but never vote or stand.
//!
//! What this module guarantees, given that the caller executes [`Output`]s in order and makes a
//! [`Output::Persist`] durable before it sends anything that comes after it:
//! - at most one leader per epoch (a vote is persisted before it is granted);
//! - the high watermark only covers entries stored durably on a majority of the voters, and on
//!   the leader only once an entry of its own epoch is among them (Raft's commit rule);
//! - a follower never truncates below its high watermark, and the high watermark of a running
//!   replica never decreases;
//! - membership changes one voter at a time, the next only after the previous is committed; a
//!   voter set takes effect when its record is appended (Raft's single-server changes).

use std::collections::{BTreeMap, BTreeSet};

use crate::epoch_cache::EpochCache;
use crate::rng::Rng;
use crate::{Epoch, NodeId, Offset};

/// Timing and identity of a replica. Times are in milliseconds of the caller's clock.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: NodeId,
    /// How long a follower waits without hearing from its leader (and a voter without any leader)
    /// before it asks for pre-votes; also how long a leader waits for fetches from a majority
    /// before it resigns (check-quorum). Kafka's `quorum.fetch.timeout.ms`.
    pub election_timeout_ms: u64,
    /// Upper bound of the random extra wait added to election timeouts and retries, so that
    /// voters do not all stand at once. Kafka's `quorum.election.backoff.max.ms`.
    pub election_jitter_ms: u64,
    /// Seed of the random election jitter.
    pub seed: u64,
}

/// The part of a replica's state that must survive a crash: the epoch it has seen and whom it
/// voted for in it (Kafka's `quorum-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ElectionState {
    pub epoch: Epoch,
    pub voted_for: Option<NodeId>,
}

/// What a replica is created from: its durable state and facts about its log.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub election: ElectionState,
    /// Voters when the log has no voter-set record (the replica set the partition was created
    /// with), then every voter-set record in the log as `(offset, voters)`, oldest first.
    pub initial_voters: BTreeSet<NodeId>,
    pub voter_records: Vec<(Offset, BTreeSet<NodeId>)>,
    /// All replicas of the partition as the cluster metadata assigns them (voters and learners).
    pub replicas: BTreeSet<NodeId>,
    pub log_start: Offset,
    pub log_end: Offset,
    pub epochs: EpochCache,
    /// A high watermark known to be committed (e.g. checkpointed); `log_start` if none.
    pub high_watermark: Offset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Unattached,
    Voted,
    Follower,
    Prospective,
    Candidate,
    Leader,
    Resigned,
}

/// A batch that was appended to the log: its offsets, epoch, and the voter set it carries if it
/// is a voter-set control record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMeta {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub epoch: Epoch,
    pub voters: Option<BTreeSet<NodeId>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRequest {
    /// The epoch the candidate stands in (its current epoch + 1 for a pre-vote).
    pub epoch: Epoch,
    pub candidate: NodeId,
    pub last_epoch: Epoch,
    pub log_end: Offset,
    pub pre_vote: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteResponse {
    /// The voter's epoch.
    pub epoch: Epoch,
    pub granted: bool,
    /// The leader the voter follows, if any (lets a stale candidate find it).
    pub leader: Option<NodeId>,
    pub pre_vote: bool,
}

/// Messages between replicas other than fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Vote(VoteRequest),
    VoteResponse(VoteResponse),
    /// A new leader announces itself so followers need not wait for a timeout.
    BeginEpoch {
        epoch: Epoch,
        leader: NodeId,
    },
    /// A leader steps down (shutdown or leadership transfer); `successors` stand first.
    EndEpoch {
        epoch: Epoch,
        leader: NodeId,
        successors: Vec<NodeId>,
    },
}

/// What a replica asks the caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Make this durable before sending anything that follows it.
    Persist(ElectionState),
    Send(NodeId, Message),
    /// The leader needs a control batch in its epoch: on election (so that entries of earlier
    /// epochs can commit) and for membership changes (`voters: Some`).
    AppendControl {
        epoch: Epoch,
        voters: Option<BTreeSet<NodeId>>,
    },
    /// Role, epoch or leader changed.
    RoleChanged {
        role: Role,
        epoch: Epoch,
        leader: Option<NodeId>,
    },
    HighWatermark(Offset),
    /// The voter records changed (appended, truncated or trimmed): persist them if the caller
    /// keeps them beside the log.
    VotersChanged,
}

/// A follower's (or observer's) fetch: where its log ends and the epoch of its last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchRequest {
    /// The epoch of the leader the follower believes it fetches from.
    pub epoch: Epoch,
    pub fetch_offset: Offset,
    /// Epoch of the batch before `fetch_offset`; negative when the log is empty.
    pub last_fetched_epoch: Epoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// The responder is not the leader (Kafka NOT_LEADER_OR_FOLLOWER).
    NotLeader,
    /// The fetcher's epoch is older than the leader's (FENCED_LEADER_EPOCH).
    FencedEpoch,
    /// The fetcher's epoch is newer than the responder's (UNKNOWN_LEADER_EPOCH).
    UnknownEpoch,
}

/// The leader's decision on a fetch. On `Read` the caller reads the log from `from` up to its
/// log end offset (not the high watermark: followers replicate uncommitted entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchAnswer {
    Read {
        from: Offset,
        high_watermark: Offset,
        log_start: Offset,
    },
    /// The fetcher's log diverges: truncate per KIP-320 and fetch again.
    Diverging {
        epoch: Epoch,
        end_offset: Offset,
        log_start: Offset,
    },
    /// The fetcher is below the leader's log start: start over there.
    OutOfRange { log_start: Offset },
    Error {
        error: FetchError,
        epoch: Epoch,
        leader: Option<NodeId>,
    },
}

/// A fetch response as the follower sees it; records travel beside it, with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchResponse {
    /// The epoch of the responder.
    pub epoch: Epoch,
    pub leader: Option<NodeId>,
    pub outcome: FetchOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Records (possibly none) starting at the fetch offset.
    Records {
        high_watermark: Offset,
        log_start: Offset,
    },
    Diverging {
        epoch: Epoch,
        end_offset: Offset,
        log_start: Offset,
    },
    OutOfRange {
        log_start: Offset,
    },
    Error(FetchError),
}

/// What the follower's caller must do with a fetch response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerAction {
    /// Append the records that came with the response (they start at `at`), then report them with
    /// [`Replica::on_appended`] and their durability with [`Replica::on_durable`].
    Append { at: Offset },
    /// Remove everything at or above `offset`, already reflected in the replica's view.
    Truncate(Offset),
    /// Drop the whole log and start an empty one at `offset`, already reflected.
    Reset(Offset),
    /// Stale or failed response: nothing to do.
    Ignore,
}

/// What the leader knows of another replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The offset the replica last fetched from: everything below is on its disk.
    pub end_offset: Offset,
    pub last_fetch_ms: u64,
}

#[derive(Debug, Clone)]
enum State {
    Unattached {
        election_deadline: u64,
    },
    Voted {
        candidate: NodeId,
        election_deadline: u64,
    },
    Follower {
        leader: NodeId,
        /// No valid contact from the leader by then: stand for election (or, as an observer,
        /// forget the leader).
        leader_deadline: u64,
        leader_high_watermark: Offset,
        /// Whether the leader itself reached us (a fetch answer or BeginEpoch) rather than
        /// someone naming it. Only then does a pre-vote count it as alive.
        contacted: bool,
    },
    Prospective {
        granted: BTreeSet<NodeId>,
        rejected: BTreeSet<NodeId>,
        deadline: u64,
    },
    Candidate {
        granted: BTreeSet<NodeId>,
        rejected: BTreeSet<NodeId>,
        deadline: u64,
    },
    Leader {
        epoch_start: Offset,
        progress: BTreeMap<NodeId, Progress>,
        check_quorum_deadline: u64,
        /// Voters heard from since the last check-quorum deadline.
        heard: BTreeSet<NodeId>,
        /// Set when the leader hands over: no more appends; an election is expected.
        resigned_at: Option<u64>,
        /// A voter-set record was asked for and has not been appended yet.
        control_pending: bool,
        /// A leader-change record of this epoch was asked for (see `become_leader`).
        epoch_marker_asked: bool,
    },
}

/// One replica of one partition. See the module docs.
#[derive(Debug)]
pub struct Replica {
    cfg: Config,
    rng: Rng,
    election: ElectionState,
    state: State,
    initial_voters: BTreeSet<NodeId>,
    voter_records: Vec<(Offset, BTreeSet<NodeId>)>,
    replicas: BTreeSet<NodeId>,
    target_replicas: Option<BTreeSet<NodeId>>,
    log_start: Offset,
    log_end: Offset,
    durable_end: Offset,
    epochs: EpochCache,
    high_watermark: Offset,
}

impl Replica {
    /// A replica after a (re)start: unattached in its persisted epoch. A voter that is the only
    /// voter elects itself at the first [`Self::tick`].
    pub fn new(cfg: Config, boot: Bootstrap, now_ms: u64) -> Self {
        let mut rng = Rng::new(cfg.seed ^ (cfg.node_id as u64).wrapping_mul(0x9E37_79B9));
        let deadline = now_ms + cfg.election_timeout_ms + rng.below(cfg.election_jitter_ms + 1);
        let mut replica = Self {
            rng,
            election: boot.election,
            state: State::Unattached {
                election_deadline: deadline,
            },
            initial_voters: boot.initial_voters,
            voter_records: boot.voter_records,
            replicas: boot.replicas,
            target_replicas: None,
            log_start: boot.log_start,
            log_end: boot.log_end,
            durable_end: boot.log_end,
            epochs: boot.epochs,
            high_watermark: boot.high_watermark.clamp(boot.log_start, boot.log_end),
            cfg,
        };
        if let Some(candidate) = replica.election.voted_for {
            replica.state = State::Voted {
                candidate,
                election_deadline: deadline,
            };
        }
        if replica.voters().len() == 1 && replica.is_voter() {
            // Nobody else can lead: no reason to wait.
            replica.set_election_deadline(now_ms);
        }
        replica
    }

    // ----------------------------------------------------------------------------------------
    // Queries
    // ----------------------------------------------------------------------------------------

    pub fn node_id(&self) -> NodeId {
        self.cfg.node_id
    }

    pub fn epoch(&self) -> Epoch {
        self.election.epoch
    }

    pub fn election_state(&self) -> ElectionState {
        self.election
    }

    pub fn role(&self) -> Role {
        match &self.state {
            State::Unattached { .. } => Role::Unattached,
            State::Voted { .. } => Role::Voted,
            State::Follower { .. } => Role::Follower,
            State::Prospective { .. } => Role::Prospective,
            State::Candidate { .. } => Role::Candidate,
            State::Leader {
                resigned_at: None, ..
            } => Role::Leader,
            State::Leader { .. } => Role::Resigned,
        }
    }

    /// The leader of the current epoch, if known.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.state {
            State::Follower { leader, .. } => Some(*leader),
            State::Leader { .. } => Some(self.cfg.node_id),
            _ => None,
        }
    }

    /// The epoch to stamp on batches appended now, if this replica accepts appends (it is the
    /// leader and has not resigned).
    pub fn append_epoch(&self) -> Option<Epoch> {
        matches!(
            self.state,
            State::Leader {
                resigned_at: None,
                ..
            }
        )
        .then_some(self.election.epoch)
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn log_start(&self) -> Offset {
        self.log_start
    }

    pub fn log_end(&self) -> Offset {
        self.log_end
    }

    pub fn durable_end(&self) -> Offset {
        self.durable_end
    }

    pub fn epochs(&self) -> &EpochCache {
        &self.epochs
    }

    /// The voter set in force: the last voter record in the log, or the initial voters.
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        self.voter_records
            .last()
            .map_or(&self.initial_voters, |(_, v)| v)
    }

    pub fn initial_voters(&self) -> &BTreeSet<NodeId> {
        &self.initial_voters
    }

    pub fn voter_records(&self) -> &[(Offset, BTreeSet<NodeId>)] {
        &self.voter_records
    }

    pub fn replicas(&self) -> &BTreeSet<NodeId> {
        &self.replicas
    }

    pub fn is_voter(&self) -> bool {
        self.voters().contains(&self.cfg.node_id)
    }

    /// The leader's view of the other replicas (empty unless leader).
    pub fn progress(&self) -> BTreeMap<NodeId, Progress> {
        match &self.state {
            State::Leader { progress, .. } => progress.clone(),
            _ => BTreeMap::new(),
        }
    }

    /// Voters (the leader included) whose log reaches the leader's log end; `None` unless leader.
    /// Kafka's ISR, in the sense clients read it.
    pub fn in_sync_voters(&self, now_ms: u64) -> Option<BTreeSet<NodeId>> {
        let State::Leader { progress, .. } = &self.state else {
            return None;
        };
        let fresh = |p: &Progress| {
            p.end_offset >= self.high_watermark
                && now_ms.saturating_sub(p.last_fetch_ms) <= self.cfg.election_timeout_ms
        };
        Some(
            self.voters()
                .iter()
                .copied()
                .filter(|v| *v == self.cfg.node_id || progress.get(v).is_some_and(fresh))
                .collect(),
        )
    }

    /// Stands for election at the next tick instead of after a random timeout, when no leader
    /// was ever elected for the partition (epoch 0) and this voter knows none: the broker calls
    /// it on the preferred replica of a new partition, so the topic is writable at once and its
    /// leaders are spread as placement intended. Elsewhere it does nothing.
    pub fn campaign_if_new(&mut self, now_ms: u64) {
        if self.election.epoch == 0 && self.leader().is_none() && self.is_voter() {
            self.set_election_deadline(now_ms);
        }
    }

    /// The earliest time [`Self::tick`] has something to do.
    pub fn next_deadline_ms(&self) -> u64 {
        match &self.state {
            State::Unattached { election_deadline }
            | State::Voted {
                election_deadline, ..
            } => *election_deadline,
            State::Follower {
                leader_deadline, ..
            } => *leader_deadline,
            State::Prospective { deadline, .. } | State::Candidate { deadline, .. } => *deadline,
            State::Leader {
                check_quorum_deadline,
                resigned_at,
                ..
            } => match resigned_at {
                Some(t) => (*check_quorum_deadline).min(t + self.cfg.election_timeout_ms),
                None => *check_quorum_deadline,
            },
        }
    }

    /// Where to fetch from and what to ask, when this replica follows a leader and its log is
    /// durable up to its end (the fetch offset is the acknowledgement, so it must be on disk).
    pub fn fetch_target(&self) -> Option<(NodeId, FetchRequest)> {
        let State::Follower { leader, .. } = &self.state else {
            return None;
        };
        if self.durable_end < self.log_end {
            return None;
        }
        Some((
            *leader,
            FetchRequest {
                epoch: self.election.epoch,
                fetch_offset: self.log_end,
                last_fetched_epoch: if self.log_end > self.log_start {
                    self.epochs.last_epoch().unwrap_or(-1)
                } else {
                    -1
                },
            },
        ))
    }

    // ----------------------------------------------------------------------------------------
    // Configuration from the cluster metadata
    // ----------------------------------------------------------------------------------------

    /// The partition's replicas per the cluster metadata. The leader moves the voter set towards
    /// it one change at a time (adding caught-up learners first, then removing).
    pub fn set_target_replicas(
        &mut self,
        target: BTreeSet<NodeId>,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        self.replicas = self.replicas.union(&target).copied().collect();
        self.target_replicas = Some(target);
        self.reconfigure(now_ms, out);
    }

    /// Forgets replicas that are neither voters nor in the target (after a completed move).
    pub fn prune_replicas(&mut self) {
        let voters = self.voters().clone();
        if let Some(target) = &self.target_replicas {
            self.replicas = voters.union(target).copied().collect();
        }
    }

    /// A leader learnt elsewhere (the cluster metadata): lets a restarted observer, which never
    /// stands for election, find the leader. Voters ignore it (the leader reaches them with
    /// BeginEpoch, and a stale hint must not keep resetting their election timers); observers
    /// ignore it unless it is news for their epoch or newer.
    pub fn hint_leader(
        &mut self,
        epoch: Epoch,
        leader: NodeId,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if leader == self.cfg.node_id || self.is_voter() {
            return;
        }
        if epoch > self.election.epoch {
            self.adopt_epoch(epoch, Some(leader), now_ms, out);
        } else if epoch == self.election.epoch
            && matches!(self.state, State::Unattached { .. } | State::Voted { .. })
        {
            self.follow(leader, now_ms, false, out);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Time
    // ----------------------------------------------------------------------------------------

    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        match &mut self.state {
            State::Unattached { election_deadline }
            | State::Voted {
                election_deadline, ..
            } => {
                if now_ms >= *election_deadline {
                    if self.is_voter() {
                        self.become_prospective(now_ms, out);
                    } else {
                        let d = self.random_timeout(now_ms);
                        self.set_election_deadline(d);
                    }
                }
            }
            State::Follower {
                leader_deadline, ..
            } => {
                if now_ms >= *leader_deadline {
                    if self.is_voter() {
                        self.become_prospective(now_ms, out);
                    } else {
                        let d = self.random_timeout(now_ms);
                        self.state = State::Unattached {
                            election_deadline: d,
                        };
                        self.notify_role(out);
                    }
                }
            }
            State::Prospective { deadline, .. } | State::Candidate { deadline, .. } => {
                if now_ms >= *deadline {
                    // No majority in time: back off, then try again from a pre-vote.
                    let d = self.random_timeout(now_ms);
                    self.state = State::Unattached {
                        election_deadline: d,
                    };
                    if let Some(c) = self.election.voted_for {
                        self.state = State::Voted {
                            candidate: c,
                            election_deadline: d,
                        };
                    }
                    self.notify_role(out);
                }
            }
            State::Leader {
                check_quorum_deadline,
                resigned_at,
                ..
            } => {
                let (check_quorum_deadline, resigned_at) = (*check_quorum_deadline, *resigned_at);
                if let Some(t) = resigned_at {
                    if now_ms >= t + self.cfg.election_timeout_ms {
                        // Nobody took over: go back to elections.
                        let d = self.random_timeout(now_ms);
                        self.state = State::Voted {
                            candidate: self.cfg.node_id,
                            election_deadline: d,
                        };
                        self.notify_role(out);
                        return;
                    }
                }
                if now_ms >= check_quorum_deadline {
                    let me = self.cfg.node_id;
                    let voters = self.voters().clone();
                    let heard_voters = match &self.state {
                        State::Leader { heard, .. } => {
                            heard.iter().filter(|v| voters.contains(v)).count()
                        }
                        _ => 0,
                    } + usize::from(voters.contains(&me));
                    if heard_voters * 2 > voters.len() || voters.len() <= 1 {
                        let epoch = self.election.epoch;
                        let replicas: BTreeSet<NodeId> =
                            self.replicas.union(&voters).copied().collect();
                        if let State::Leader {
                            check_quorum_deadline,
                            heard,
                            ..
                        } = &mut self.state
                        {
                            // Replicas that did not fetch may have restarted without knowing us:
                            // tell them again (KRaft resends BeginQuorumEpoch likewise).
                            for r in replicas.iter().filter(|r| **r != me && !heard.contains(r)) {
                                out.push(Output::Send(
                                    *r,
                                    Message::BeginEpoch { epoch, leader: me },
                                ));
                            }
                            heard.clear();
                            *check_quorum_deadline = now_ms + self.cfg.election_timeout_ms;
                        }
                    } else {
                        // Cut off from a majority: a leader elsewhere may already be taking
                        // writes, so stop taking them here.
                        let d = self.random_timeout(now_ms);
                        self.state = State::Voted {
                            candidate: me,
                            election_deadline: d,
                        };
                        self.notify_role(out);
                        return;
                    }
                }
                self.reconfigure(now_ms, out);
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Elections
    // ----------------------------------------------------------------------------------------

    pub fn step(&mut self, now_ms: u64, from: NodeId, message: Message, out: &mut Vec<Output>) {
        match message {
            Message::Vote(req) => {
                let resp = self.handle_vote(now_ms, req, out);
                out.push(Output::Send(from, Message::VoteResponse(resp)));
            }
            Message::VoteResponse(resp) => self.handle_vote_response(now_ms, from, resp, out),
            Message::BeginEpoch { epoch, leader } => {
                if epoch > self.election.epoch {
                    self.adopt_epoch(epoch, Some(leader), now_ms, out);
                }
                if epoch == self.election.epoch
                    && matches!(
                        self.state,
                        State::Unattached { .. }
                            | State::Voted { .. }
                            | State::Follower { .. }
                            | State::Prospective { .. }
                            | State::Candidate { .. }
                    )
                    && self.leader().is_none_or(|l| l == leader)
                {
                    self.follow(leader, now_ms, true, out);
                }
            }
            Message::EndEpoch {
                epoch,
                leader,
                successors,
            } => self.handle_end_epoch(now_ms, epoch, leader, &successors, out),
        }
    }

    fn log_is_up_to_date(&self, last_epoch: Epoch, log_end: Offset) -> bool {
        let mine = (self.last_epoch(), self.log_end);
        (last_epoch, log_end) >= mine
    }

    fn last_epoch(&self) -> Epoch {
        if self.log_end > self.log_start {
            self.epochs.last_epoch().unwrap_or(-1)
        } else {
            -1
        }
    }

    fn leader_is_alive(&self, now_ms: u64) -> bool {
        match &self.state {
            State::Follower {
                leader_deadline,
                contacted,
                ..
            } => *contacted && now_ms < *leader_deadline,
            State::Leader { resigned_at, .. } => resigned_at.is_none(),
            _ => false,
        }
    }

    fn handle_vote(
        &mut self,
        now_ms: u64,
        req: VoteRequest,
        out: &mut Vec<Output>,
    ) -> VoteResponse {
        // Votes are given without consulting our own view of the voter set (Raft §4.1): a
        // replica that has not yet received the record making it a voter must still be able to
        // elect; candidates count only the voters of their own configuration.
        if req.pre_vote {
            // A pre-vote changes nothing here. Refuse while a live leader is known: a replica cut
            // off and healed must not depose a working leader.
            let granted = req.epoch > self.election.epoch
                && !self.leader_is_alive(now_ms)
                && self.log_is_up_to_date(req.last_epoch, req.log_end);
            return VoteResponse {
                epoch: self.election.epoch,
                granted,
                leader: self.leader(),
                pre_vote: true,
            };
        }
        if req.epoch > self.election.epoch {
            self.adopt_epoch(req.epoch, None, now_ms, out);
        }
        let granted = req.epoch == self.election.epoch
            && match &self.state {
                State::Unattached { .. } => true,
                State::Voted { candidate, .. } => *candidate == req.candidate,
                _ => false,
            }
            && self.log_is_up_to_date(req.last_epoch, req.log_end);
        if granted && self.election.voted_for.is_none() {
            self.election.voted_for = Some(req.candidate);
            out.push(Output::Persist(self.election));
            let d = self.random_timeout(now_ms);
            self.state = State::Voted {
                candidate: req.candidate,
                election_deadline: d,
            };
            self.notify_role(out);
        }
        VoteResponse {
            epoch: self.election.epoch,
            granted,
            leader: self.leader(),
            pre_vote: false,
        }
    }

    fn handle_vote_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        resp: VoteResponse,
        out: &mut Vec<Output>,
    ) {
        if resp.epoch > self.election.epoch {
            self.adopt_epoch(resp.epoch, resp.leader, now_ms, out);
            return;
        }
        let voters = self.voters().clone();
        if !voters.contains(&from) {
            return;
        }
        let majority = voters.len() / 2 + 1;
        match &mut self.state {
            State::Prospective {
                granted, rejected, ..
            } if resp.pre_vote => {
                if resp.granted {
                    granted.insert(from);
                } else {
                    rejected.insert(from);
                }
                if granted.len() >= majority {
                    self.become_candidate(now_ms, out);
                } else if rejected.len() >= majority {
                    // Back off. A leader named in a rejection is hearsay (the voter may follow a
                    // leader that is gone): the leader itself will reach us with BeginEpoch.
                    self.become_unattached(now_ms, out);
                }
            }
            State::Candidate {
                granted, rejected, ..
            } if !resp.pre_vote && resp.epoch == self.election.epoch => {
                if resp.granted {
                    granted.insert(from);
                } else {
                    rejected.insert(from);
                }
                if granted.len() >= majority {
                    self.become_leader(now_ms, out);
                }
            }
            _ => {}
        }
    }

    fn handle_end_epoch(
        &mut self,
        now_ms: u64,
        epoch: Epoch,
        leader: NodeId,
        successors: &[NodeId],
        out: &mut Vec<Output>,
    ) {
        if epoch < self.election.epoch {
            return;
        }
        if epoch > self.election.epoch {
            self.adopt_epoch(epoch, None, now_ms, out);
        }
        if self.leader() != Some(leader) && self.leader().is_some() {
            return;
        }
        if !self.is_voter() {
            let d = self.random_timeout(now_ms);
            self.state = State::Unattached {
                election_deadline: d,
            };
            self.notify_role(out);
            return;
        }
        match successors.iter().position(|s| *s == self.cfg.node_id) {
            // The chosen successor stands at once, without a pre-vote: the leader is gone.
            Some(0) => self.become_candidate(now_ms, out),
            position => {
                let rank = position.map_or(successors.len() as u64 + 1, |p| p as u64);
                let d = now_ms
                    + rank * self.cfg.election_timeout_ms / 2
                    + self.rng.below(self.cfg.election_jitter_ms + 1);
                self.state = match self.election.voted_for {
                    Some(c) => State::Voted {
                        candidate: c,
                        election_deadline: d,
                    },
                    None => State::Unattached {
                        election_deadline: d,
                    },
                };
                self.notify_role(out);
            }
        }
    }

    /// No leader known in the current epoch; the vote, if cast, stands.
    fn become_unattached(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let d = self.random_timeout(now_ms);
        self.state = match self.election.voted_for {
            Some(c) => State::Voted {
                candidate: c,
                election_deadline: d,
            },
            None => State::Unattached {
                election_deadline: d,
            },
        };
        self.notify_role(out);
    }

    fn random_timeout(&mut self, now_ms: u64) -> u64 {
        now_ms + self.cfg.election_timeout_ms + self.rng.below(self.cfg.election_jitter_ms + 1)
    }

    fn set_election_deadline(&mut self, deadline: u64) {
        match &mut self.state {
            State::Unattached { election_deadline }
            | State::Voted {
                election_deadline, ..
            } => *election_deadline = deadline,
            _ => {}
        }
    }

    fn notify_role(&self, out: &mut Vec<Output>) {
        out.push(Output::RoleChanged {
            role: self.role(),
            epoch: self.election.epoch,
            leader: self.leader(),
        });
    }

    /// Moves to a newer epoch (persisted), following `leader` if known.
    fn adopt_epoch(
        &mut self,
        epoch: Epoch,
        leader: Option<NodeId>,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        debug_assert!(epoch > self.election.epoch);
        self.election = ElectionState {
            epoch,
            voted_for: None,
        };
        out.push(Output::Persist(self.election));
        match leader {
            Some(l) if l != self.cfg.node_id => self.follow(l, now_ms, false, out),
            _ => {
                let d = self.random_timeout(now_ms);
                self.state = State::Unattached {
                    election_deadline: d,
                };
                self.notify_role(out);
            }
        }
    }

    /// Follows `leader` of the current epoch; `contact` says the leader itself reached us.
    fn follow(&mut self, leader: NodeId, now_ms: u64, contact: bool, out: &mut Vec<Output>) {
        if leader == self.cfg.node_id {
            return;
        }
        if let State::Follower {
            leader: current,
            leader_deadline,
            contacted,
            ..
        } = &mut self.state
        {
            if *current == leader {
                if contact {
                    *leader_deadline = now_ms + self.cfg.election_timeout_ms;
                    *contacted = true;
                }
                return;
            }
        }
        self.state = State::Follower {
            leader,
            leader_deadline: now_ms + self.cfg.election_timeout_ms,
            leader_high_watermark: self.high_watermark,
            contacted: contact,
        };
        self.notify_role(out);
    }

    fn become_prospective(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let me = self.cfg.node_id;
        let mut granted = BTreeSet::new();
        granted.insert(me);
        let deadline = self.random_timeout(now_ms);
        self.state = State::Prospective {
            granted,
            rejected: BTreeSet::new(),
            deadline,
        };
        self.notify_role(out);
        if self.voters().len() <= 1 {
            self.become_candidate(now_ms, out);
            return;
        }
        let req = VoteRequest {
            epoch: self.election.epoch + 1,
            candidate: me,
            last_epoch: self.last_epoch(),
            log_end: self.log_end,
            pre_vote: true,
        };
        for v in self.voters().clone() {
            if v != me {
                out.push(Output::Send(v, Message::Vote(req.clone())));
            }
        }
    }

    fn become_candidate(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let me = self.cfg.node_id;
        self.election = ElectionState {
            epoch: self.election.epoch + 1,
            voted_for: Some(me),
        };
        out.push(Output::Persist(self.election));
        let mut granted = BTreeSet::new();
        granted.insert(me);
        let deadline = self.random_timeout(now_ms);
        self.state = State::Candidate {
            granted,
            rejected: BTreeSet::new(),
            deadline,
        };
        self.notify_role(out);
        if self.voters().len() <= 1 {
            self.become_leader(now_ms, out);
            return;
        }
        let req = VoteRequest {
            epoch: self.election.epoch,
            candidate: me,
            last_epoch: self.last_epoch(),
            log_end: self.log_end,
            pre_vote: false,
        };
        for v in self.voters().clone() {
            if v != me {
                out.push(Output::Send(v, Message::Vote(req.clone())));
            }
        }
    }

    fn become_leader(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let epoch = self.election.epoch;
        self.state = State::Leader {
            epoch_start: self.log_end,
            progress: BTreeMap::new(),
            check_quorum_deadline: now_ms + self.cfg.election_timeout_ms,
            heard: BTreeSet::new(),
            resigned_at: None,
            control_pending: false,
            epoch_marker_asked: false,
        };
        self.notify_role(out);
        // Entries of earlier epochs commit only under one of ours (Raft's rule), so a leader
        // holding uncommitted ones writes one at once. A log committed to its end needs none:
        // Kafka's leader changes take no offset, so a new partition's first record is at 0 and a
        // quiet failover leaves offsets as they were. A voter change asks for one later.
        if self.voters().len() > 1 && self.log_end > self.high_watermark {
            self.ask_epoch_marker(epoch, out);
        }
        let me = self.cfg.node_id;
        for r in self
            .replicas
            .iter()
            .chain(self.voters().iter())
            .copied()
            .collect::<BTreeSet<_>>()
        {
            if r != me {
                out.push(Output::Send(r, Message::BeginEpoch { epoch, leader: me }));
            }
        }
        self.advance_high_watermark(out);
    }

    /// Hands leadership over: to `successor` if given and caught up, else to the most caught-up
    /// voter. Returns whether the leader resigned. Used for shutdown and preferred-leader
    /// election; writes are refused from now on.
    pub fn resign(
        &mut self,
        now_ms: u64,
        successor: Option<NodeId>,
        out: &mut Vec<Output>,
    ) -> bool {
        let me = self.cfg.node_id;
        let log_end = self.log_end;
        let voters = self.voters().clone();
        let State::Leader {
            progress,
            resigned_at,
            ..
        } = &mut self.state
        else {
            return false;
        };
        if resigned_at.is_some() {
            return true;
        }
        let mut ranked: Vec<(NodeId, Offset)> = voters
            .iter()
            .filter(|v| **v != me)
            .map(|v| (*v, progress.get(v).map_or(-1, |p| p.end_offset)))
            .collect();
        ranked.sort_by_key(|&(id, end)| (std::cmp::Reverse(end), id));
        if let Some(s) = successor {
            let caught_up = progress.get(&s).is_some_and(|p| p.end_offset >= log_end);
            if !voters.contains(&s) || !caught_up {
                return false;
            }
            ranked.retain(|(id, _)| *id != s);
            ranked.insert(0, (s, log_end));
        }
        if ranked.is_empty() {
            return false;
        }
        *resigned_at = Some(now_ms);
        let successors: Vec<NodeId> = ranked.iter().map(|(id, _)| *id).collect();
        let epoch = self.election.epoch;
        for v in voters.iter().filter(|v| **v != me) {
            out.push(Output::Send(
                *v,
                Message::EndEpoch {
                    epoch,
                    leader: me,
                    successors: successors.clone(),
                },
            ));
        }
        self.notify_role(out);
        true
    }

    // ----------------------------------------------------------------------------------------
    // Replication: the leader's side
    // ----------------------------------------------------------------------------------------

    /// A fetch from another replica. Updates what the leader knows of it (its fetch offset is its
    /// acknowledgement) and may advance the high watermark.
    pub fn handle_fetch(
        &mut self,
        now_ms: u64,
        from: NodeId,
        req: FetchRequest,
        out: &mut Vec<Output>,
    ) -> FetchAnswer {
        if req.epoch > self.election.epoch {
            // The fetcher has seen a newer epoch than ours: we are stale.
            self.adopt_epoch(req.epoch, None, now_ms, out);
            return self.fetch_error(FetchError::UnknownEpoch);
        }
        if !matches!(self.state, State::Leader { .. }) {
            return self.fetch_error(FetchError::NotLeader);
        }
        if req.epoch < self.election.epoch {
            return self.fetch_error(FetchError::FencedEpoch);
        }
        let log_start = self.log_start;
        if req.fetch_offset < log_start {
            return FetchAnswer::OutOfRange { log_start };
        }
        let consistent = if req.last_fetched_epoch < 0 {
            if req.fetch_offset == log_start {
                true
            } else {
                return FetchAnswer::Diverging {
                    epoch: -1,
                    end_offset: log_start,
                    log_start,
                };
            }
        } else {
            match self
                .epochs
                .end_offset_for(req.last_fetched_epoch, self.log_end)
            {
                // The fetcher's last epoch is older than anything we hold: all it has from our
                // start on diverges.
                None => {
                    return FetchAnswer::Diverging {
                        epoch: -1,
                        end_offset: log_start,
                        log_start,
                    }
                }
                Some(e)
                    if e.epoch == req.last_fetched_epoch && req.fetch_offset <= e.end_offset =>
                {
                    true
                }
                Some(e) => {
                    return FetchAnswer::Diverging {
                        epoch: e.epoch,
                        end_offset: e.end_offset,
                        log_start,
                    }
                }
            }
        };
        debug_assert!(consistent);
        if let State::Leader {
            progress, heard, ..
        } = &mut self.state
        {
            let p = progress.entry(from).or_insert(Progress {
                end_offset: req.fetch_offset,
                last_fetch_ms: now_ms,
            });
            p.end_offset = req.fetch_offset;
            p.last_fetch_ms = now_ms;
            heard.insert(from);
        }
        self.replicas.insert(from);
        self.advance_high_watermark(out);
        self.reconfigure(now_ms, out);
        FetchAnswer::Read {
            from: req.fetch_offset,
            high_watermark: self.high_watermark,
            log_start,
        }
    }

    fn fetch_error(&self, error: FetchError) -> FetchAnswer {
        FetchAnswer::Error {
            error,
            epoch: self.election.epoch,
            leader: self.leader(),
        }
    }

    fn advance_high_watermark(&mut self, out: &mut Vec<Output>) {
        let me = self.cfg.node_id;
        let durable_end = self.durable_end;
        let voters = self.voters().clone();
        let State::Leader {
            progress,
            epoch_start,
            ..
        } = &self.state
        else {
            return;
        };
        let mut ends: Vec<Offset> = voters
            .iter()
            .map(|v| {
                if *v == me {
                    durable_end
                } else {
                    progress.get(v).map_or(-1, |p| p.end_offset)
                }
            })
            .collect();
        if !voters.contains(&me) {
            // A leader being removed still counts only the voters; it keeps its data durable too.
        }
        ends.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&majority_end) = ends.get(voters.len() / 2) else {
            return;
        };
        let single = voters.len() == 1 && voters.contains(&me);
        let own_epoch_committed = single || majority_end > *epoch_start;
        if majority_end > self.high_watermark && own_epoch_committed {
            self.high_watermark = majority_end;
            out.push(Output::HighWatermark(majority_end));
            self.trim_voter_records(out);
        }
    }

    /// Moves the voter set one step towards the target replicas (leader only).
    fn reconfigure(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let Some(target) = self.target_replicas.clone() else {
            return;
        };
        let me = self.cfg.node_id;
        let epoch = self.election.epoch;
        let hw = self.high_watermark;
        let voters = self.voters().clone();
        let State::Leader {
            progress,
            epoch_start,
            resigned_at: None,
            control_pending,
            ..
        } = &self.state
        else {
            return;
        };
        // One change at a time, only once the last one (and one entry of our epoch) committed.
        let pending = *control_pending || self.voter_records.last().is_some_and(|(o, _)| *o >= hw);
        if pending {
            return;
        }
        if voters.len() > 1 && hw <= *epoch_start {
            // A voter change waits for an entry of this epoch to commit (Raft's fix for
            // single-server changes); a leader elected over a committed log has none yet.
            if self.log_end == *epoch_start {
                self.ask_epoch_marker(epoch, out);
            }
            return;
        }
        let timeout = self.cfg.election_timeout_ms;
        let caught_up = |id: &NodeId| {
            progress.get(id).is_some_and(|p| {
                p.end_offset >= hw && now_ms.saturating_sub(p.last_fetch_ms) <= timeout
            })
        };
        if let Some(add) = target.iter().find(|t| !voters.contains(t) && caught_up(t)) {
            let mut next = voters.clone();
            next.insert(*add);
            self.request_voters(epoch, next, out);
            return;
        }
        if target.iter().any(|t| !voters.contains(t)) {
            // Wait for the newcomers before shrinking.
            return;
        }
        if let Some(remove) = voters.iter().find(|v| !target.contains(v) && **v != me) {
            let mut next = voters.clone();
            next.remove(remove);
            self.request_voters(epoch, next, out);
            return;
        }
        if !target.contains(&me) {
            // Everyone else is in place: hand over so that the new leader removes us.
            let successor = target.iter().copied().find(|t| caught_up(t));
            if successor.is_some() {
                self.resign(now_ms, successor, out);
            }
        }
    }

    /// Asks for a leader-change control batch of `epoch`, once per epoch.
    fn ask_epoch_marker(&mut self, epoch: Epoch, out: &mut Vec<Output>) {
        if let State::Leader {
            epoch_marker_asked, ..
        } = &mut self.state
        {
            if !*epoch_marker_asked {
                *epoch_marker_asked = true;
                out.push(Output::AppendControl {
                    epoch,
                    voters: None,
                });
            }
        }
    }

    fn request_voters(&mut self, epoch: Epoch, voters: BTreeSet<NodeId>, out: &mut Vec<Output>) {
        if let State::Leader {
            control_pending, ..
        } = &mut self.state
        {
            *control_pending = true;
        }
        out.push(Output::AppendControl {
            epoch,
            voters: Some(voters),
        });
    }

    // ----------------------------------------------------------------------------------------
    // Replication: the follower's side
    // ----------------------------------------------------------------------------------------

    /// The response to `sent`, a fetch this replica sent to `from`. A response to a fetch that no
    /// longer matches the log (an older one, answered late) is ignored.
    pub fn handle_fetch_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        sent: FetchRequest,
        resp: FetchResponse,
        out: &mut Vec<Output>,
    ) -> FollowerAction {
        let current = self.fetch_target().map(|(_, req)| req);
        let stale = current != Some(sent);
        if resp.epoch > self.election.epoch {
            let leader = resp.leader;
            self.adopt_epoch(resp.epoch, leader, now_ms, out);
            return FollowerAction::Ignore;
        }
        if resp.epoch < self.election.epoch || stale {
            return FollowerAction::Ignore;
        }
        match resp.outcome {
            FetchOutcome::Error(_) => {
                match resp.leader {
                    Some(l) if Some(l) != self.leader() && l != self.cfg.node_id => {
                        self.follow(l, now_ms, false, out)
                    }
                    // The replica we follow says it does not lead this epoch (it restarted or
                    // resigned): stop believing in it, so that we grant pre-votes.
                    None if self.leader() == Some(from) => self.become_unattached(now_ms, out),
                    _ => {}
                }
                return FollowerAction::Ignore;
            }
            _ if self.leader() != Some(from) => {
                // Only the leader of this epoch answers with data; anything else is stale.
                if matches!(self.state, State::Unattached { .. } | State::Voted { .. }) {
                    self.follow(from, now_ms, true, out);
                } else {
                    return FollowerAction::Ignore;
                }
            }
            _ => {}
        }
        if let State::Follower {
            leader_deadline,
            contacted,
            ..
        } = &mut self.state
        {
            *leader_deadline = now_ms + self.cfg.election_timeout_ms;
            *contacted = true;
        }
        match resp.outcome {
            FetchOutcome::Records {
                high_watermark,
                log_start: _,
            } => {
                if let State::Follower {
                    leader_high_watermark,
                    ..
                } = &mut self.state
                {
                    *leader_high_watermark = (*leader_high_watermark).max(high_watermark);
                }
                self.follower_high_watermark(out);
                FollowerAction::Append { at: self.log_end }
            }
            FetchOutcome::Diverging {
                epoch,
                end_offset,
                log_start,
            } => {
                // KIP-320: where the leader's epoch is one we hold, both logs agree up to the
                // smaller end of it. Where we never had that epoch, cut back to the end of our
                // largest epoch below it and ask again (the next answer names an epoch we hold).
                let mine = self.epochs.end_offset_for(epoch, self.log_end);
                let to = match mine {
                    Some(m) if m.epoch == epoch => end_offset.min(m.end_offset),
                    Some(m) => m.end_offset,
                    None => end_offset.min(self.log_start),
                }
                .min(self.log_end);
                if to < self.log_start || (to == self.log_start && log_start > self.log_start) {
                    self.reset_to(log_start, out);
                    return FollowerAction::Reset(log_start);
                }
                assert!(
                    to >= self.high_watermark,
                    "replica {}: truncation to {to} below high watermark {}",
                    self.cfg.node_id,
                    self.high_watermark
                );
                self.truncate_to(to, out);
                FollowerAction::Truncate(to)
            }
            FetchOutcome::OutOfRange { log_start } => {
                if log_start <= self.log_end && log_start >= self.log_start {
                    // Our log reaches past the leader's start: nothing to reset, only fetch
                    // (this answer came from an older state of the leader).
                    return FollowerAction::Ignore;
                }
                self.reset_to(log_start, out);
                FollowerAction::Reset(log_start)
            }
            FetchOutcome::Error(_) => FollowerAction::Ignore,
        }
    }

    fn follower_high_watermark(&mut self, out: &mut Vec<Output>) {
        let State::Follower {
            leader_high_watermark,
            ..
        } = &self.state
        else {
            return;
        };
        let hw = (*leader_high_watermark).min(self.durable_end);
        if hw > self.high_watermark {
            self.high_watermark = hw;
            out.push(Output::HighWatermark(hw));
            self.trim_voter_records(out);
        }
    }

    fn truncate_to(&mut self, offset: Offset, out: &mut Vec<Output>) {
        self.log_end = offset;
        self.durable_end = self.durable_end.min(offset);
        self.epochs.truncate_from_end(offset);
        let before = self.voter_records.len();
        self.voter_records.retain(|(o, _)| *o < offset);
        if self.voter_records.len() != before {
            out.push(Output::VotersChanged);
        }
    }

    fn reset_to(&mut self, offset: Offset, out: &mut Vec<Output>) {
        // Everything we hold is either below the leader's start (committed and deleted there)
        // or divergent, so nothing committed that we must serve is lost.
        self.log_start = offset;
        self.log_end = offset;
        self.durable_end = offset;
        self.epochs = EpochCache::default();
        self.high_watermark = self.high_watermark.max(offset);
        if let Some(last) = self.voter_records.last().cloned() {
            // The voter set in force stays in force: it is committed (below the leader's start).
            self.initial_voters = last.1;
            self.voter_records.clear();
            out.push(Output::VotersChanged);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Log events reported by the caller
    // ----------------------------------------------------------------------------------------

    /// Batches were appended to the log (by the leader for clients, or by a follower from a
    /// fetch), in order, starting at the current log end.
    ///
    /// # Panics
    /// If they go back in offsets (or, on the leader, do not start at the log end) or go back in
    /// epoch: that is a caller bug.
    pub fn on_appended(&mut self, batches: &[BatchMeta], now_ms: u64, out: &mut Vec<Output>) {
        let leader = matches!(self.state, State::Leader { .. });
        for b in batches {
            // Offsets increase; a follower copying a compacted leader log skips the offsets of
            // batches the leader's log cleaner removed. A leader's own appends follow on.
            assert!(
                b.base_offset == self.log_end || (!leader && b.base_offset > self.log_end),
                "replica {}: append at {} but log ends at {}",
                self.cfg.node_id,
                b.base_offset,
                self.log_end
            );
            assert!(b.last_offset >= b.base_offset);
            self.epochs.assign(b.epoch, b.base_offset);
            self.log_end = b.last_offset + 1;
            if let Some(v) = &b.voters {
                self.voter_records.push((b.base_offset, v.clone()));
                out.push(Output::VotersChanged);
                if let State::Leader {
                    control_pending, ..
                } = &mut self.state
                {
                    *control_pending = false;
                }
            }
        }
        if batches.iter().any(|b| b.voters.is_some()) {
            self.after_membership_change(now_ms, out);
        }
    }

    /// Everything below `end` is durable (per the log's fsync policy).
    pub fn on_durable(&mut self, end: Offset, out: &mut Vec<Output>) {
        let end = end.min(self.log_end);
        if end <= self.durable_end {
            return;
        }
        self.durable_end = end;
        match self.state {
            State::Leader { .. } => self.advance_high_watermark(out),
            State::Follower { .. } => self.follower_high_watermark(out),
            _ => {}
        }
    }

    /// The log start moved up (retention or DeleteRecords); only ever below the high watermark.
    pub fn on_log_start(&mut self, offset: Offset) {
        if offset > self.log_start {
            self.log_start = offset.min(self.high_watermark);
            self.epochs.truncate_from_start(self.log_start);
        }
    }

    fn after_membership_change(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let me = self.cfg.node_id;
        let voters = self.voters().clone();
        self.replicas.extend(voters.iter().copied());
        if let State::Leader { .. } = self.state {
            // A removed leader keeps leading until the change commits (Raft), then the
            // reconfiguration hands over; recompute the majority under the new set now.
            self.advance_high_watermark(out);
        } else if !voters.contains(&me) {
            // An observer does not stand for election.
            if matches!(
                self.state,
                State::Prospective { .. } | State::Candidate { .. }
            ) {
                let d = self.random_timeout(now_ms);
                self.state = State::Unattached {
                    election_deadline: d,
                };
                self.notify_role(out);
            }
        }
    }

    /// Drops voter records that are committed, keeping the last committed one as the base.
    fn trim_voter_records(&mut self, out: &mut Vec<Output>) {
        let hw = self.high_watermark;
        let committed = self.voter_records.iter().filter(|(o, _)| *o < hw).count();
        if committed > 1 {
            self.voter_records.drain(..committed - 1);
            out.push(Output::VotersChanged);
        }
    }
}
