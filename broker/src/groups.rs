//! The classic consumer-group coordinator (JoinGroup / SyncGroup / Heartbeat / LeaveGroup).
//!
//! Owns group membership, generations, the chosen protocol and member assignments. It does not own
//! committed offsets (see `offsets`) and knows nothing of sockets or wire types: callers hand it plain
//! values plus the current time, and parked JoinGroup/SyncGroup calls are answered through oneshot
//! channels. Time moves only through `tick(now_ms)`, so tests drive it deterministically.
//!
//! The state machine follows Kafka's classic `GroupCoordinator`: Empty -> PreparingRebalance ->
//! CompletingRebalance -> Stable, with the initial-rebalance delay, rebalance timeouts, session
//! expiry, KIP-394 (member id required) and static membership (KIP-345). Requests naming a
//! member are checked as Kafka's `validateMember` does: a `group.instance.id` must map to the
//! member id sent (FENCED_INSTANCE_ID otherwise, so a replaced static member stops instead of
//! rejoining and fencing its replacement in turn), and the member id must be in the group.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::consumer_protocol::{subscription_topics, CONSUMER_PROTOCOL_TYPE};
use crate::errors::ErrorCode;

/// Limits and defaults that Kafka exposes as `group.*` broker settings.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i64,
    pub max_group_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_group_size: 1_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The name Kafka reports in DescribeGroups / ListGroups.
    pub fn kafka_name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member must first obtain an id (KIP-394).
    pub require_known_member_id: bool,
}

#[derive(Clone, Debug, Default)]
pub struct SyncRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// SyncGroup v5+: the protocol type and name the member believes the group uses.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment per member id; empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// Who commits offsets, as an OffsetCommit names it.
#[derive(Clone, Copy, Debug)]
pub struct CommitIdentity<'a> {
    pub group_id: &'a str,
    /// Empty for commits from outside the group.
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    /// -1 for commits from outside the group.
    pub generation_id: i32,
}

/// Whether offsets are committed on their own (OffsetCommit) or inside a transaction
/// (TxnOffsetCommit), which Kafka checks a little differently (KIP-447).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitKind {
    Plain,
    Transactional,
}

#[derive(Clone, Debug, Default)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Clone, Debug, Default)]
pub struct JoinOutcome {
    pub error: ErrorCode,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<JoinMember>,
}

impl JoinOutcome {
    fn error(error: ErrorCode, member_id: &str) -> Self {
        Self {
            error,
            generation_id: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SyncOutcome {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    fn error(error: ErrorCode) -> Self {
        Self {
            error,
            ..Default::default()
        }
    }
}

/// A group's membership handed between the two coordinators in an online migration (Kafka's
/// `group.consumer.migration.policy`): from here to `consumer_groups` as a consumer-protocol
/// member joins a classic group, back when only classic members are left in a consumer group.
#[derive(Clone, Debug, Default)]
pub struct MigratingGroup {
    pub group_id: String,
    pub generation_id: i32,
    /// The protocol the classic group chose (its members' subscriptions are read from it).
    pub protocol_name: Option<String>,
    pub members: Vec<MigratingMember>,
}

#[derive(Clone, Debug, Default)]
pub struct MigratingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    /// The member's consumer-protocol assignment.
    pub assignment: Bytes,
}

/// Either an immediate answer or a receiver that the coordinator answers later.
pub enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

#[derive(Debug)]
struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_heartbeat_ms: i64,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A described member, for DescribeGroups.
#[derive(Clone, Debug)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Clone, Debug)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug)]
struct Group {
    group_id: String,
    state: GroupState,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    /// Insertion-ordered so the first joiner becomes leader, as in Kafka.
    members: BTreeMap<u64, Member>,
    next_seq: u64,
    /// Member ids handed out with MEMBER_ID_REQUIRED that have not joined yet, with their deadline.
    pending_member_ids: HashMap<String, i64>,
    static_members: HashMap<String, String>,
    /// Topics the members of the current generation subscribe to, decoded from their
    /// consumer-protocol metadata when a generation starts; `None` if unknown (not the consumer
    /// protocol, or metadata that does not parse). OffsetDelete consults it.
    subscribed_topics: Option<BTreeSet<String>>,
    /// When the current PreparingRebalance must end even if members have not rejoined.
    rebalance_deadline_ms: i64,
    /// Initial-rebalance delay: joins of a new group wait until this time.
    initial_delay_until_ms: i64,
}

impl Group {
    fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            next_seq: 0,
            pending_member_ids: HashMap::new(),
            static_members: HashMap::new(),
            subscribed_topics: None,
            rebalance_deadline_ms: 0,
            initial_delay_until_ms: 0,
        }
    }

    fn seq_of(&self, member_id: &str) -> Option<u64> {
        self.members
            .iter()
            .find(|(_, m)| m.member_id == member_id)
            .map(|(k, _)| *k)
    }

    fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.values().find(|m| m.member_id == member_id)
    }

    fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.values_mut().find(|m| m.member_id == member_id)
    }

    /// Kafka's `validateMember`: an instance id must be known and mapped to `member_id`, and the
    /// member must be in the group.
    fn validate_member(&self, member_id: &str, group_instance_id: Option<&str>) -> ErrorCode {
        if let Some(instance) = group_instance_id {
            match self.static_members.get(instance) {
                None => return ErrorCode::UNKNOWN_MEMBER_ID,
                Some(current) if current != member_id => return ErrorCode::FENCED_INSTANCE_ID,
                Some(_) => {}
            }
        }
        if self.member(member_id).is_none() {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        }
        ErrorCode::NONE
    }

    fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// As Kafka's `computeSubscribedTopics`, when a generation starts.
    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        let protocol = self.protocol_name.as_deref();
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = protocol?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(subscription_topics(&m.metadata_for(protocol))?);
        }
        Some(topics)
    }

    /// Whether OffsetDelete must leave `topic` alone. Without a decoded subscription a
    /// consumer-protocol group counts as subscribed to everything, as in Kafka.
    fn is_subscribed_to(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// The protocol every member supports that gets the most first-preference votes.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut best: Option<(&String, usize)> = None;
        for candidate in candidates {
            let votes = self
                .members
                .values()
                .filter(|m| {
                    m.protocols.iter().map(|(n, _)| n).find(|n| {
                        self.members
                            .values()
                            .all(|o| o.protocols.iter().any(|(p, _)| p == *n))
                    }) == Some(candidate)
                })
                .count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((candidate, votes));
            }
        }
        best.map(|(n, _)| n.clone())
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn prepare_rebalance(&mut self, now_ms: i64) {
        if self.state == GroupState::CompletingRebalance {
            // Members parked in SyncGroup must rejoin.
            for m in self.members.values_mut() {
                if let Some(tx) = m.sync_waiter.take() {
                    let _ = tx.send(SyncOutcome::error(ErrorCode::REBALANCE_IN_PROGRESS));
                }
            }
        }
        if self.state != GroupState::PreparingRebalance {
            self.rebalance_deadline_ms = now_ms + self.max_rebalance_timeout_ms();
        }
        self.state = GroupState::PreparingRebalance;
    }

    /// The member list a leader gets in its JoinGroup answer: everyone's metadata for the chosen protocol.
    fn join_members(&self) -> Vec<JoinMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata_for(protocol),
            })
            .collect()
    }

    fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// Ends PreparingRebalance: drops members that did not rejoin, bumps the generation and answers
    /// every parked JoinGroup.
    fn complete_join(&mut self) {
        let missing: Vec<u64> = self
            .members
            .iter()
            .filter(|(_, m)| m.join_waiter.is_none())
            .map(|(k, _)| *k)
            .collect();
        for seq in missing {
            if let Some(m) = self.members.remove(&seq) {
                if let Some(id) = &m.group_instance_id {
                    self.static_members.remove(id);
                }
            }
        }
        if self
            .leader
            .as_ref()
            .is_none_or(|l| self.member(l).is_none())
        {
            self.leader = self.members.values().next().map(|m| m.member_id.clone());
        }
        self.generation_id += 1;
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        self.protocol_name = self.select_protocol();
        self.subscribed_topics = self.compute_subscribed_topics();
        self.state = GroupState::CompletingRebalance;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let all = self.join_members();
        let generation_id = self.generation_id;
        let protocol_type = self.protocol_type.clone();
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(tx) = m.join_waiter.take() {
                let members = if m.member_id == leader {
                    all.clone()
                } else {
                    Vec::new()
                };
                let _ = tx.send(JoinOutcome {
                    error: ErrorCode::NONE,
                    generation_id,
                    protocol_type: protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: m.member_id.clone(),
                    members,
                });
            }
        }
    }

    /// The last member is gone (the generation has already been bumped).
    fn become_empty(&mut self) {
        self.state = GroupState::Empty;
        self.protocol_name = None;
        self.subscribed_topics = self.compute_subscribed_topics();
    }

    /// Removes the members whose session ran out by `now_ms` (not those waiting in a join or a
    /// sync: their session restarts when they are answered). A session ends at its last
    /// heartbeat plus the session timeout, as Kafka's heartbeat deadline.
    fn expire_sessions(&mut self, now_ms: i64) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.join_waiter.is_none()
                    && m.sync_waiter.is_none()
                    && now_ms - m.last_heartbeat_ms >= i64::from(m.session_timeout_ms)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            self.remove_member(&id, now_ms);
        }
    }

    fn remove_member(&mut self, member_id: &str, now_ms: i64) {
        let Some(seq) = self.seq_of(member_id) else {
            return;
        };
        if let Some(m) = self.members.remove(&seq) {
            if let Some(id) = &m.group_instance_id {
                self.static_members.remove(id);
            }
            if let Some(tx) = m.join_waiter {
                let _ = tx.send(JoinOutcome::error(ErrorCode::UNKNOWN_MEMBER_ID, member_id));
            }
            if let Some(tx) = m.sync_waiter {
                let _ = tx.send(SyncOutcome::error(ErrorCode::UNKNOWN_MEMBER_ID));
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        match self.state {
            GroupState::PreparingRebalance => {
                // Everyone left, or everyone still here has rejoined: the join phase can end.
                if self.members.is_empty() || self.all_joined() {
                    self.complete_join();
                }
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.generation_id += 1;
                    self.become_empty();
                } else {
                    self.prepare_rebalance(now_ms);
                }
            }
            GroupState::Empty => {}
        }
    }
}

/// All groups this broker coordinates.
#[derive(Default)]
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: HashMap<String, Group>,
    /// Set by `close` at shutdown.
    closed: bool,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: HashMap::new(),
            closed: false,
        }
    }

    fn new_member_id(prefix: &str) -> String {
        format!("{prefix}-{}", uuid::Uuid::new_v4())
    }

    pub fn join(&mut self, req: JoinRequest, now_ms: i64) -> Pending<JoinOutcome> {
        if self.closed {
            return Pending::Ready(JoinOutcome::error(
                ErrorCode::NOT_COORDINATOR,
                &req.member_id,
            ));
        }
        if req.group_id.is_empty() {
            return Pending::Ready(JoinOutcome::error(
                ErrorCode::INVALID_GROUP_ID,
                &req.member_id,
            ));
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Pending::Ready(JoinOutcome::error(
                ErrorCode::INVALID_SESSION_TIMEOUT,
                &req.member_id,
            ));
        }
        let config = self.config.clone();
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id));
        if !group.supports(&req.protocol_type, &req.protocols) {
            return Pending::Ready(JoinOutcome::error(
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                &req.member_id,
            ));
        }

        let mut member_id = req.member_id.clone();
        if member_id.is_empty() {
            // Kafka names a static member after its instance id, a dynamic one after its client.
            let fresh =
                Self::new_member_id(req.group_instance_id.as_deref().unwrap_or(&req.client_id));
            match &req.group_instance_id {
                Some(instance) => {
                    if let Some(old_id) = group.static_members.get(instance).cloned() {
                        // The instance is back under a new member id: it replaces the old member,
                        // whose parked calls are answered FENCED_INSTANCE_ID.
                        if let Some(m) = group.member_mut(&old_id) {
                            if let Some(tx) = m.join_waiter.take() {
                                let _ = tx.send(JoinOutcome::error(
                                    ErrorCode::FENCED_INSTANCE_ID,
                                    &old_id,
                                ));
                            }
                            if let Some(tx) = m.sync_waiter.take() {
                                let _ = tx.send(SyncOutcome::error(ErrorCode::FENCED_INSTANCE_ID));
                            }
                            m.member_id = fresh.clone();
                            m.protocols = req.protocols.clone();
                            m.last_heartbeat_ms = now_ms;
                        }
                        if group.leader.as_deref() == Some(old_id.as_str()) {
                            group.leader = Some(fresh.clone());
                        }
                        group.static_members.insert(instance.clone(), fresh.clone());
                        if group.state == GroupState::Stable {
                            // Same static member back: hand it the current generation, no rebalance.
                            let leader = group.leader.clone().unwrap_or_default();
                            let members = if leader == fresh {
                                group.join_members()
                            } else {
                                Vec::new()
                            };
                            return Pending::Ready(JoinOutcome {
                                error: ErrorCode::NONE,
                                generation_id: group.generation_id,
                                protocol_type: group.protocol_type.clone(),
                                protocol_name: group.protocol_name.clone(),
                                leader,
                                member_id: fresh,
                                members,
                            });
                        }
                    }
                }
                None if req.require_known_member_id => {
                    group
                        .pending_member_ids
                        .insert(fresh.clone(), now_ms + i64::from(req.session_timeout_ms));
                    return Pending::Ready(JoinOutcome::error(
                        ErrorCode::MEMBER_ID_REQUIRED,
                        &fresh,
                    ));
                }
                None => {}
            }
            member_id = fresh;
        } else if req.group_instance_id.is_none()
            && group.member(&member_id).is_none()
            && group.pending_member_ids.remove(&member_id).is_some()
        {
            // A dynamic member back with the id it was handed (KIP-394): it joins now.
        } else {
            let error = group.validate_member(&member_id, req.group_instance_id.as_deref());
            if error != ErrorCode::NONE {
                return Pending::Ready(JoinOutcome::error(error, &member_id));
            }
        }
        if group.member(&member_id).is_none() && group.members.len() >= config.max_group_size {
            return Pending::Ready(JoinOutcome::error(
                ErrorCode::GROUP_MAX_SIZE_REACHED,
                &member_id,
            ));
        }

        if group.members.is_empty() {
            // As Kafka: the first member of an empty group sets its protocol type.
            group.protocol_type = Some(req.protocol_type.clone());
        }
        let (tx, rx) = oneshot::channel();
        match group.member_mut(&member_id) {
            Some(m) => {
                m.protocols = req.protocols.clone();
                m.session_timeout_ms = req.session_timeout_ms;
                m.rebalance_timeout_ms = req.rebalance_timeout_ms;
                m.last_heartbeat_ms = now_ms;
                if let Some(old) = m.join_waiter.replace(tx) {
                    let _ = old.send(JoinOutcome::error(ErrorCode::UNKNOWN_MEMBER_ID, &member_id));
                }
            }
            None => {
                let seq = group.next_seq;
                group.next_seq += 1;
                if let Some(instance) = &req.group_instance_id {
                    group
                        .static_members
                        .insert(instance.clone(), member_id.clone());
                }
                group.members.insert(
                    seq,
                    Member {
                        member_id: member_id.clone(),
                        group_instance_id: req.group_instance_id.clone(),
                        client_id: req.client_id.clone(),
                        client_host: req.client_host.clone(),
                        session_timeout_ms: req.session_timeout_ms,
                        rebalance_timeout_ms: req.rebalance_timeout_ms,
                        protocols: req.protocols.clone(),
                        assignment: Bytes::new(),
                        last_heartbeat_ms: now_ms,
                        join_waiter: Some(tx),
                        sync_waiter: None,
                    },
                );
            }
        }
        match group.state {
            GroupState::Empty => {
                group.initial_delay_until_ms = now_ms + config.initial_rebalance_delay_ms;
                group.prepare_rebalance(now_ms);
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                // Any join to a settled group starts a rebalance in the classic protocol: a member
                // that rejoins may have lost its assignment or changed its subscription.
                group.prepare_rebalance(now_ms);
            }
            GroupState::PreparingRebalance => {}
        }
        if group.all_joined() && now_ms >= group.initial_delay_until_ms {
            group.complete_join();
        }
        Pending::Wait(rx)
    }

    pub fn sync(&mut self, req: SyncRequest) -> Pending<SyncOutcome> {
        if self.closed {
            return Pending::Ready(SyncOutcome::error(ErrorCode::NOT_COORDINATOR));
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return Pending::Ready(SyncOutcome::error(ErrorCode::UNKNOWN_MEMBER_ID));
        };
        let member_id = req.member_id.as_str();
        let error = group.validate_member(member_id, req.group_instance_id.as_deref());
        if error != ErrorCode::NONE {
            return Pending::Ready(SyncOutcome::error(error));
        }
        if req.generation_id != group.generation_id {
            return Pending::Ready(SyncOutcome::error(ErrorCode::ILLEGAL_GENERATION));
        }
        // SyncGroup v5 names the protocol the member thinks the group uses; as Kafka, a mismatch
        // with what the group chose is refused before anything is applied.
        let inconsistent = |sent: &Option<String>, chosen: &Option<String>| matches!((sent, chosen), (Some(s), Some(c)) if s != c);
        if inconsistent(&req.protocol_type, &group.protocol_type)
            || inconsistent(&req.protocol_name, &group.protocol_name)
        {
            return Pending::Ready(SyncOutcome::error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL));
        }
        let assignments = req.assignments;
        match group.state {
            GroupState::Empty => Pending::Ready(SyncOutcome::error(ErrorCode::UNKNOWN_MEMBER_ID)),
            GroupState::PreparingRebalance => {
                Pending::Ready(SyncOutcome::error(ErrorCode::REBALANCE_IN_PROGRESS))
            }
            GroupState::Stable => {
                let assignment = group
                    .member(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Pending::Ready(SyncOutcome {
                    error: ErrorCode::NONE,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    assignment,
                })
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = group.member_mut(member_id) {
                    m.sync_waiter = Some(tx);
                }
                if group.leader.as_deref() == Some(member_id) {
                    let by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    let protocol_type = group.protocol_type.clone();
                    let protocol_name = group.protocol_name.clone();
                    for m in group.members.values_mut() {
                        m.assignment = by_member.get(&m.member_id).cloned().unwrap_or_default();
                    }
                    group.state = GroupState::Stable;
                    for m in group.members.values_mut() {
                        if let Some(tx) = m.sync_waiter.take() {
                            let _ = tx.send(SyncOutcome {
                                error: ErrorCode::NONE,
                                protocol_type: protocol_type.clone(),
                                protocol_name: protocol_name.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                }
                Pending::Wait(rx)
            }
        }
    }

    /// As Kafka: the member (and its instance id) is validated, then the generation, then the
    /// state tells whether a rebalance is under way.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> ErrorCode {
        let Some(group) = self.groups.get_mut(group_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        let error = group.validate_member(member_id, group_instance_id);
        if error != ErrorCode::NONE {
            return error;
        }
        if generation_id != group.generation_id {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        let state = group.state;
        if let Some(member) = group.member_mut(member_id) {
            member.last_heartbeat_ms = now_ms;
        }
        match state {
            GroupState::Empty => ErrorCode::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => ErrorCode::REBALANCE_IN_PROGRESS,
            GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::NONE,
        }
    }

    /// Removes members (by member id, or by instance id for static members). Returns an error per member.
    pub fn leave(
        &mut self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now_ms: i64,
    ) -> (ErrorCode, Vec<ErrorCode>) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return (
                ErrorCode::UNKNOWN_MEMBER_ID,
                vec![ErrorCode::UNKNOWN_MEMBER_ID; members.len()],
            );
        };
        let mut results = Vec::with_capacity(members.len());
        for (member_id, instance_id) in members {
            let target = match instance_id {
                Some(instance) => match group.static_members.get(instance) {
                    Some(id) if member_id.is_empty() || id == member_id => Some(id.clone()),
                    Some(_) => {
                        results.push(ErrorCode::FENCED_INSTANCE_ID);
                        continue;
                    }
                    None => None,
                },
                None => group.member(member_id).map(|m| m.member_id.clone()),
            };
            match target {
                Some(id) => {
                    group.remove_member(&id, now_ms);
                    results.push(ErrorCode::NONE);
                }
                None => results.push(ErrorCode::UNKNOWN_MEMBER_ID),
            }
        }
        (ErrorCode::NONE, results)
    }

    /// Validates an offset commit as Kafka's classic group does. Generation -1 without a member
    /// is a commit from outside the group (an assign() consumer, AlterConsumerGroupOffsets): taken
    /// only while the group is empty (or unknown: it becomes a "simple" group), UNKNOWN_MEMBER_ID
    /// while it has members. A member's commit also keeps its session alive, as in Kafka.
    pub fn validate_commit(
        &mut self,
        commit: &CommitIdentity<'_>,
        api_version: i16,
        now_ms: i64,
    ) -> ErrorCode {
        self.validate_commit_of(commit, CommitKind::Plain, api_version, now_ms)
    }

    /// Validates a TxnOffsetCommit as Kafka's classic group does (KIP-447): a member of an older
    /// generation (a zombie whose partitions were reassigned) is fenced with ILLEGAL_GENERATION,
    /// so its transaction aborts instead of committing what the partitions' new owner also
    /// processes. A commit naming no member and no generation (TxnOffsetCommit before v3) is
    /// taken even while the group has members, and the group may be completing a rebalance.
    pub fn validate_txn_commit(&mut self, commit: &CommitIdentity<'_>, now_ms: i64) -> ErrorCode {
        // Like OffsetCommit before v9: an unknown group with a generation is ILLEGAL_GENERATION.
        self.validate_commit_of(commit, CommitKind::Transactional, 8, now_ms)
    }

    fn validate_commit_of(
        &mut self,
        commit: &CommitIdentity<'_>,
        kind: CommitKind,
        api_version: i16,
        now_ms: i64,
    ) -> ErrorCode {
        let CommitIdentity {
            group_id,
            member_id,
            group_instance_id,
            generation_id,
        } = *commit;
        let Some(group) = self.groups.get_mut(group_id) else {
            return if generation_id < 0 {
                ErrorCode::NONE
            } else if api_version >= 9 {
                ErrorCode::GROUP_ID_NOT_FOUND
            } else {
                ErrorCode::ILLEGAL_GENERATION
            };
        };
        if generation_id < 0 && group.state == GroupState::Empty {
            return ErrorCode::NONE;
        }
        if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
            let error = group.validate_member(member_id, group_instance_id);
            if error != ErrorCode::NONE {
                return error;
            }
            if generation_id != group.generation_id {
                return ErrorCode::ILLEGAL_GENERATION;
            }
        } else if group.state != GroupState::Empty && kind == CommitKind::Plain {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        }
        // The current generation may still commit while a rebalance is being prepared (members
        // commit what they processed before rejoining); only between the join and the leader's
        // assignment are plain commits refused.
        match group.state {
            GroupState::CompletingRebalance if kind == CommitKind::Plain => {
                ErrorCode::REBALANCE_IN_PROGRESS
            }
            GroupState::CompletingRebalance => ErrorCode::NONE,
            GroupState::Stable | GroupState::PreparingRebalance => {
                if let Some(m) = group.member_mut(member_id) {
                    m.last_heartbeat_ms = now_ms;
                }
                ErrorCode::NONE
            }
            GroupState::Empty => ErrorCode::NONE,
        }
    }

    /// OffsetDelete's check of a group: `None` if the group is unknown, NON_EMPTY_GROUP while a
    /// group that does not use the consumer protocol has members (its subscriptions cannot be
    /// known), otherwise which of `topics` the members subscribe to (those keep their offsets).
    pub fn offset_delete_check(
        &self,
        group_id: &str,
        topics: &[&str],
    ) -> Option<Result<Vec<bool>, ErrorCode>> {
        let group = self.groups.get(group_id)?;
        if group.state != GroupState::Empty && !group.uses_consumer_protocol() {
            return Some(Err(ErrorCode::NON_EMPTY_GROUP));
        }
        Some(Ok(topics
            .iter()
            .map(|t| group.is_subscribed_to(t))
            .collect()))
    }

    /// The broker is stopping: as Kafka does when a coordinator unloads its groups, parked
    /// JoinGroup and SyncGroup calls are answered NOT_COORDINATOR at once (the clients find the
    /// coordinator again once it is back), and calls that would park are answered so from now on.
    pub fn close(&mut self) {
        self.closed = true;
        for group in self.groups.values_mut() {
            Self::answer_parked_not_coordinator(group);
        }
    }

    /// Drops the groups `leaving` selects (their offsets partition moved to another
    /// coordinator). As when Kafka unloads a group, their parked JoinGroup and SyncGroup calls
    /// are answered NOT_COORDINATOR, so the clients find the new coordinator.
    pub fn unload(&mut self, mut leaving: impl FnMut(&str) -> bool) {
        self.groups.retain(|id, group| {
            if !leaving(id) {
                return true;
            }
            Self::answer_parked_not_coordinator(group);
            false
        });
    }

    fn answer_parked_not_coordinator(group: &mut Group) {
        for m in group.members.values_mut() {
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(JoinOutcome::error(ErrorCode::NOT_COORDINATOR, &m.member_id));
            }
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncOutcome::error(ErrorCode::NOT_COORDINATOR));
            }
        }
    }

    /// Drives timers: expired sessions, rebalance deadlines, the initial-rebalance delay.
    pub fn tick(&mut self, now_ms: i64) {
        for group in self.groups.values_mut() {
            group
                .pending_member_ids
                .retain(|_, deadline| *deadline > now_ms);
            group.expire_sessions(now_ms);
            if group.state == GroupState::PreparingRebalance
                && now_ms >= group.initial_delay_until_ms
                && (group.all_joined() || now_ms >= group.rebalance_deadline_ms)
            {
                group.complete_join();
            }
        }
    }

    /// Whether a JoinGroup's session timeout is within the broker's bounds.
    pub fn session_timeout_allowed(&self, session_timeout_ms: i32) -> bool {
        (self.config.min_session_timeout_ms..=self.config.max_session_timeout_ms)
            .contains(&session_timeout_ms)
    }

    /// A group with members that a consumer-protocol member may convert (Kafka's
    /// `validateOnlineUpgrade`): the consumer protocol, a generation that completed, and not
    /// between the join and the leader's assignment (whose partitions are not known yet).
    /// `Err` says why not: `GROUP_ID_NOT_FOUND` for another protocol, or
    /// `COORDINATOR_LOAD_IN_PROGRESS` to try again once the assignment is in.
    pub fn migrating(&self, group_id: &str) -> Option<Result<MigratingGroup, ErrorCode>> {
        let g = self.groups.get(group_id)?;
        if !g.uses_consumer_protocol() {
            return Some(Err(ErrorCode::GROUP_ID_NOT_FOUND));
        }
        if g.state == GroupState::CompletingRebalance || g.protocol_name.is_none() {
            return Some(Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS));
        }
        Some(Ok(MigratingGroup {
            group_id: g.group_id.clone(),
            generation_id: g.generation_id,
            protocol_name: g.protocol_name.clone(),
            members: g
                .members
                .values()
                .map(|m| MigratingMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols.clone(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }))
    }

    /// The group went to the consumer-group coordinator: parked JoinGroup and SyncGroup calls
    /// are answered `REBALANCE_IN_PROGRESS`, so their members join again, there.
    pub fn remove_migrated(&mut self, group_id: &str) {
        let Some(mut g) = self.groups.remove(group_id) else {
            return;
        };
        for m in g.members.values_mut() {
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(JoinOutcome::error(
                    ErrorCode::REBALANCE_IN_PROGRESS,
                    &m.member_id,
                ));
            }
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncOutcome::error(ErrorCode::REBALANCE_IN_PROGRESS));
            }
        }
    }

    /// Takes back a consumer group whose members all speak the classic protocol (Kafka's
    /// online downgrade): its members with the partitions they have, at the group epoch as
    /// generation, and a rebalance started so they join again and a leader assigns.
    pub fn adopt(&mut self, migrating: MigratingGroup, now_ms: i64) {
        let mut g = Group::new(&migrating.group_id);
        g.generation_id = migrating.generation_id;
        g.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
        for m in migrating.members {
            if let Some(instance) = &m.group_instance_id {
                g.static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            let seq = g.next_seq;
            g.next_seq += 1;
            g.members.insert(
                seq,
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols,
                    assignment: m.assignment,
                    last_heartbeat_ms: now_ms,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        g.leader = g.members.values().next().map(|m| m.member_id.clone());
        g.protocol_name = g.select_protocol();
        g.subscribed_topics = g.compute_subscribed_topics();
        g.state = GroupState::Stable;
        g.prepare_rebalance(now_ms);
        self.groups.insert(migrating.group_id, g);
    }

    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        self.groups
            .values()
            .map(|g| {
                (
                    g.group_id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect()
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let g = self.groups.get(group_id)?;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        Some(GroupDescription {
            group_id: g.group_id.clone(),
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Deletes an empty group's membership record; NON_EMPTY_GROUP if it has members. Members
    /// whose session ran out by `now_ms` are removed first, as Kafka's exact session timers
    /// would have done, rather than at the next tick.
    pub fn delete(&mut self, group_id: &str, now_ms: i64) -> ErrorCode {
        if let Some(g) = self.groups.get_mut(group_id) {
            g.expire_sessions(now_ms);
        }
        match self.groups.get(group_id) {
            Some(g) if !g.members.is_empty() => ErrorCode::NON_EMPTY_GROUP,
            Some(_) => {
                self.groups.remove(group_id);
                ErrorCode::NONE
            }
            None => ErrorCode::GROUP_ID_NOT_FOUND,
        }
    }

    /// Called when a group is known through committed offsets only (after restart), so ListGroups shows it.
    pub fn ensure_group(&mut self, group_id: &str) {
        self.groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        }
    }

    fn join_req(member_id: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: instance.map(String::from),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 5_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: true,
        }
    }

    fn sync(
        c: &mut GroupCoordinator,
        member_id: &str,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Pending<SyncOutcome> {
        c.sync(SyncRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            generation_id,
            assignments,
            ..SyncRequest::default()
        })
    }

    fn heartbeat(
        c: &mut GroupCoordinator,
        member_id: &str,
        generation_id: i32,
        now: i64,
    ) -> ErrorCode {
        c.heartbeat("g", member_id, None, generation_id, now)
    }

    fn commit(c: &mut GroupCoordinator, member_id: &str, generation_id: i32) -> ErrorCode {
        c.validate_commit(
            &CommitIdentity {
                group_id: "g",
                member_id,
                group_instance_id: None,
                generation_id,
            },
            8,
            0,
        )
    }

    fn ready<T>(p: Pending<T>) -> T {
        match p {
            Pending::Ready(v) => v,
            Pending::Wait(mut rx) => rx.try_recv().expect("answered"),
        }
    }

    fn waiting<T>(p: Pending<T>) -> oneshot::Receiver<T> {
        match p {
            Pending::Wait(rx) => rx,
            Pending::Ready(_) => panic!("expected the call to wait"),
        }
    }

    /// Joins a new member the KIP-394 way (empty id, MEMBER_ID_REQUIRED, rejoin) and returns its id
    /// and the parked join.
    fn join_new(c: &mut GroupCoordinator, now: i64) -> (String, oneshot::Receiver<JoinOutcome>) {
        let first = ready(c.join(join_req("", None), now));
        assert_eq!(first.error, ErrorCode::MEMBER_ID_REQUIRED);
        let id = first.member_id.clone();
        (id.clone(), waiting(c.join(join_req(&id, None), now)))
    }

    #[test]
    fn single_member_join_sync_heartbeat() {
        let mut c = GroupCoordinator::new(config());
        let (id, mut rx) = join_new(&mut c, 0);
        let joined = rx.try_recv().expect("join completes at once with no delay");
        assert_eq!(joined.error, ErrorCode::NONE);
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader, id);
        assert_eq!(joined.members.len(), 1);
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        let synced = ready(sync(
            &mut c,
            &id,
            1,
            vec![(id.clone(), Bytes::from_static(b"assign"))],
        ));
        assert_eq!(synced.error, ErrorCode::NONE);
        assert_eq!(synced.assignment, Bytes::from_static(b"assign"));
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        assert_eq!(heartbeat(&mut c, &id, 1, 100), ErrorCode::NONE);
        assert_eq!(
            heartbeat(&mut c, &id, 0, 100),
            ErrorCode::ILLEGAL_GENERATION
        );
        assert_eq!(
            heartbeat(&mut c, "nobody", 1, 100),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
    }

    #[test]
    fn second_member_triggers_rebalance_and_both_get_assignments() {
        let mut c = GroupCoordinator::new(config());
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        ready(sync(
            &mut c,
            &a,
            1,
            vec![(a.clone(), Bytes::from_static(b"all"))],
        ));

        let (b, mut rx_b) = join_new(&mut c, 10);
        assert!(rx_b.try_recv().is_err(), "b waits for a to rejoin");
        assert_eq!(
            heartbeat(&mut c, &a, 1, 20),
            ErrorCode::REBALANCE_IN_PROGRESS
        );
        let mut rx_a = waiting(c.join(join_req(&a, None), 30));
        let ja = rx_a.try_recv().expect("a joined");
        let jb = rx_b.try_recv().expect("b joined");
        assert_eq!(ja.generation_id, 2);
        assert_eq!(jb.generation_id, 2);
        assert_eq!(ja.leader, a, "the first member stays leader");
        assert_eq!(ja.members.len(), 2);
        assert!(jb.members.is_empty(), "followers get no member list");

        let mut sync_b = waiting(sync(&mut c, &b, 2, vec![]));
        assert!(
            sync_b.try_recv().is_err(),
            "follower waits for the leader's assignment"
        );
        let sa = ready(sync(
            &mut c,
            &a,
            2,
            vec![
                (a.clone(), Bytes::from_static(b"p0")),
                (b.clone(), Bytes::from_static(b"p1")),
            ],
        ));
        assert_eq!(sa.assignment, Bytes::from_static(b"p0"));
        assert_eq!(
            sync_b.try_recv().expect("b synced").assignment,
            Bytes::from_static(b"p1")
        );
    }

    #[test]
    fn leave_and_session_expiry_rebalance_the_rest() {
        let mut c = GroupCoordinator::new(config());
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        let (b, rx_b) = join_new(&mut c, 0);
        let mut rx_a = waiting(c.join(join_req(&a, None), 0));
        rx_a.try_recv().expect("a");
        drop(rx_b);
        ready(sync(&mut c, &a, 2, vec![]));
        // b leaves: a must rejoin.
        let (top, per_member) = c.leave("g", &[(b.clone(), None)], 100);
        assert_eq!((top, per_member), (ErrorCode::NONE, vec![ErrorCode::NONE]));
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let mut rx_a = waiting(c.join(join_req(&a, None), 110));
        assert_eq!(rx_a.try_recv().expect("a alone").generation_id, 3);
        ready(sync(&mut c, &a, 3, vec![]));
        // a stops heartbeating: after the session timeout the group is empty.
        c.tick(110 + 10_001);
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        assert_eq!(commit(&mut c, &a, 3), ErrorCode::UNKNOWN_MEMBER_ID);
        assert_eq!(
            commit(&mut c, "", -1),
            ErrorCode::NONE,
            "simple commits allowed on an empty group"
        );
    }

    #[test]
    fn current_generation_commits_while_preparing_but_not_while_completing() {
        let mut c = GroupCoordinator::new(config());
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        assert_eq!(
            commit(&mut c, &a, 1),
            ErrorCode::REBALANCE_IN_PROGRESS,
            "awaiting sync"
        );
        ready(sync(&mut c, &a, 1, vec![]));
        let (_b, _rx_b) = join_new(&mut c, 10);
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        assert_eq!(commit(&mut c, &a, 1), ErrorCode::NONE);
        assert_eq!(commit(&mut c, &a, 0), ErrorCode::ILLEGAL_GENERATION);
    }

    #[test]
    fn rebalance_timeout_drops_members_that_do_not_rejoin() {
        let mut c = GroupCoordinator::new(config());
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        ready(sync(&mut c, &a, 1, vec![]));
        let (_b, mut rx_b) = join_new(&mut c, 1_000);
        c.tick(1_000 + 4_999);
        assert!(
            rx_b.try_recv().is_err(),
            "still within the rebalance timeout"
        );
        heartbeat(&mut c, &a, 1, 5_000);
        c.tick(1_000 + 5_000);
        let jb = rx_b.try_recv().expect("join completes without a");
        assert_eq!(jb.members.len(), 1, "b is now leader and alone");
        assert_eq!(commit(&mut c, &a, 1), ErrorCode::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn initial_rebalance_delay_holds_the_first_join() {
        let mut c = GroupCoordinator::new(GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            ..GroupConfig::default()
        });
        let (_a, mut rx) = join_new(&mut c, 0);
        assert!(rx.try_recv().is_err());
        c.tick(2_999);
        assert!(rx.try_recv().is_err());
        c.tick(3_000);
        assert_eq!(
            rx.try_recv().expect("joined after the delay").generation_id,
            1
        );
    }

    #[test]
    fn static_member_rejoins_without_rebalance_and_old_id_is_fenced() {
        let mut c = GroupCoordinator::new(config());
        let mut rx = waiting(c.join(join_req("", Some("inst-1")), 0));
        let first = rx
            .try_recv()
            .expect("static members need no member-id round trip");
        ready(sync(
            &mut c,
            &first.member_id,
            1,
            vec![(first.member_id.clone(), Bytes::from_static(b"x"))],
        ));
        // Restart: same instance id, empty member id.
        let again = ready(c.join(join_req("", Some("inst-1")), 50));
        assert_eq!(again.error, ErrorCode::NONE);
        assert_eq!(again.generation_id, 1, "no new generation");
        assert_ne!(again.member_id, first.member_id);
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        let synced = ready(sync(&mut c, &again.member_id, 1, vec![]));
        assert_eq!(
            synced.assignment,
            Bytes::from_static(b"x"),
            "keeps its assignment"
        );
        assert_eq!(
            heartbeat(&mut c, &first.member_id, 1, 60),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
    }

    /// A consumer-protocol subscription (version 1: v0 fields plus no owned partitions).
    fn subscription(topics: &[&str]) -> Bytes {
        let mut b = Vec::new();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for t in topics {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
        }
        b.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
        b.extend_from_slice(&0i32.to_be_bytes()); // v1: no owned partitions
        Bytes::from(b)
    }

    /// A group with one static member "inst-1", Stable at generation 1; returns its member id.
    fn stable_static_member(c: &mut GroupCoordinator) -> String {
        let mut rx = waiting(c.join(join_req("", Some("inst-1")), 0));
        let joined = rx.try_recv().expect("joined");
        assert!(
            joined.member_id.starts_with("inst-1-"),
            "{}",
            joined.member_id
        );
        ready(sync(c, &joined.member_id, 1, vec![]));
        joined.member_id
    }

    #[test]
    fn a_replaced_static_member_is_fenced_everywhere() {
        let mut c = GroupCoordinator::new(config());
        let old = stable_static_member(&mut c);
        let new = ready(c.join(join_req("", Some("inst-1")), 10)).member_id;
        let inst = Some("inst-1");
        assert_eq!(
            c.heartbeat("g", &old, inst, 1, 20),
            ErrorCode::FENCED_INSTANCE_ID
        );
        assert_eq!(c.heartbeat("g", &new, inst, 1, 20), ErrorCode::NONE);
        let sync_old = c.sync(SyncRequest {
            group_id: "g".into(),
            member_id: old.clone(),
            group_instance_id: Some("inst-1".into()),
            generation_id: 1,
            ..SyncRequest::default()
        });
        assert_eq!(ready(sync_old).error, ErrorCode::FENCED_INSTANCE_ID);
        let commit_old = CommitIdentity {
            group_id: "g",
            member_id: &old,
            group_instance_id: inst,
            generation_id: 1,
        };
        assert_eq!(
            c.validate_commit(&commit_old, 8, 20),
            ErrorCode::FENCED_INSTANCE_ID
        );
        assert_eq!(
            ready(c.join(join_req(&old, inst), 20)).error,
            ErrorCode::FENCED_INSTANCE_ID
        );
        let (_, per_member) = c.leave("g", &[(old.clone(), Some("inst-1".into()))], 20);
        assert_eq!(per_member, vec![ErrorCode::FENCED_INSTANCE_ID]);
        // None of that disturbed the replacement.
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        assert_eq!(c.heartbeat("g", &new, inst, 1, 30), ErrorCode::NONE);
        // An instance id the group does not know is an unknown member, as in Kafka.
        assert_eq!(
            c.heartbeat("g", &new, Some("inst-2"), 1, 30),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
        assert_eq!(
            ready(c.join(join_req("made-up", Some("inst-2")), 30)).error,
            ErrorCode::UNKNOWN_MEMBER_ID
        );
    }

    #[test]
    fn commits_from_outside_the_group_need_it_empty() {
        let mut c = GroupCoordinator::new(config());
        let outside = |group_id| CommitIdentity {
            group_id,
            member_id: "",
            group_instance_id: None,
            generation_id: -1,
        };
        assert_eq!(
            c.validate_commit(&outside("new"), 8, 0),
            ErrorCode::NONE,
            "an unknown group takes it (and becomes a simple group)"
        );
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        ready(sync(&mut c, &a, 1, vec![]));
        assert_eq!(
            c.validate_commit(&outside("g"), 8, 0),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
        c.leave("g", &[(a.clone(), None)], 10);
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        assert_eq!(c.validate_commit(&outside("g"), 8, 10), ErrorCode::NONE);
        let member_of_unknown = CommitIdentity {
            group_id: "unknown",
            member_id: "m",
            group_instance_id: None,
            generation_id: 3,
        };
        assert_eq!(
            c.validate_commit(&member_of_unknown, 8, 10),
            ErrorCode::ILLEGAL_GENERATION
        );
        assert_eq!(
            c.validate_commit(&member_of_unknown, 9, 10),
            ErrorCode::GROUP_ID_NOT_FOUND
        );
    }

    #[test]
    fn transactional_commits_fence_older_generations_and_take_anonymous_ones() {
        let mut c = GroupCoordinator::new(config());
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        ready(sync(&mut c, &a, 1, vec![]));
        let as_member = |member_id, generation_id| CommitIdentity {
            group_id: "g",
            member_id,
            group_instance_id: None,
            generation_id,
        };
        assert_eq!(c.validate_txn_commit(&as_member(&a, 1), 0), ErrorCode::NONE);
        // A zombie of an older generation, or a member the group does not know, is fenced.
        assert_eq!(
            c.validate_txn_commit(&as_member(&a, 0), 0),
            ErrorCode::ILLEGAL_GENERATION
        );
        assert_eq!(
            c.validate_txn_commit(&as_member("zombie", 1), 0),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
        // TxnOffsetCommit before v3 names no member: taken although the group has members
        // (a plain commit so is not).
        let anonymous = as_member("", -1);
        assert_eq!(c.validate_txn_commit(&anonymous, 0), ErrorCode::NONE);
        assert_eq!(
            c.validate_commit(&anonymous, 8, 0),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
        let unknown_group = CommitIdentity {
            group_id: "unknown",
            ..as_member("m", 3)
        };
        assert_eq!(
            c.validate_txn_commit(&unknown_group, 0),
            ErrorCode::ILLEGAL_GENERATION
        );
    }

    #[test]
    fn a_members_commit_keeps_its_session_alive() {
        let mut c = GroupCoordinator::new(config());
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        ready(sync(&mut c, &a, 1, vec![]));
        let member = CommitIdentity {
            group_id: "g",
            member_id: &a,
            group_instance_id: None,
            generation_id: 1,
        };
        assert_eq!(c.validate_commit(&member, 8, 9_000), ErrorCode::NONE);
        c.tick(15_000);
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        c.tick(19_001);
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
    }

    #[test]
    fn offset_delete_spares_only_the_topics_members_subscribe_to() {
        let mut c = GroupCoordinator::new(config());
        let mut req = join_req("", None);
        req.protocols = vec![("range".into(), subscription(&["orders", "payments"]))];
        let first = ready(c.join(req.clone(), 0));
        req.member_id = first.member_id.clone();
        waiting(c.join(req, 0)).try_recv().expect("joined");
        assert_eq!(
            c.offset_delete_check("g", &["orders", "audit"]),
            Some(Ok(vec![true, false]))
        );
        assert_eq!(c.offset_delete_check("nope", &["orders"]), None);
        c.leave("g", &[(first.member_id.clone(), None)], 10);
        assert_eq!(
            c.offset_delete_check("g", &["orders"]),
            Some(Ok(vec![false])),
            "an empty group subscribes to nothing"
        );

        // Metadata that is not a subscription: every topic counts as subscribed.
        let (_, _rx) = join_new(&mut c, 20);
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
        assert_eq!(c.offset_delete_check("g", &["x"]), Some(Ok(vec![true])));

        // A group of another protocol type cannot be checked while it has members.
        let mut other = join_req("", None);
        other.group_id = "connect".into();
        other.protocol_type = "connect".into();
        let mut c2 = GroupCoordinator::new(config());
        let id = ready(c2.join(other.clone(), 0)).member_id;
        other.member_id = id;
        let _parked = c2.join(other, 0);
        assert_eq!(
            c2.offset_delete_check("connect", &["x"]),
            Some(Err(ErrorCode::NON_EMPTY_GROUP))
        );
    }

    #[test]
    fn closing_answers_parked_calls_and_parks_no_more() {
        let mut c = GroupCoordinator::new(GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            ..GroupConfig::default()
        });
        let (_a, mut rx) = join_new(&mut c, 0);
        assert!(rx.try_recv().is_err(), "held by the initial delay");
        c.close();
        assert_eq!(
            rx.try_recv().expect("answered").error,
            ErrorCode::NOT_COORDINATOR
        );
        assert_eq!(
            ready(c.join(join_req("", None), 1)).error,
            ErrorCode::NOT_COORDINATOR
        );
    }

    #[test]
    fn unloading_a_group_answers_its_parked_calls_and_leaves_the_others() {
        let mut c = GroupCoordinator::new(GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            ..GroupConfig::default()
        });
        let (_a, mut rx) = join_new(&mut c, 0);
        assert!(rx.try_recv().is_err(), "held by the initial delay");
        c.ensure_group("other");
        c.unload(|id| id == "g");
        assert_eq!(
            rx.try_recv().expect("answered").error,
            ErrorCode::NOT_COORDINATOR
        );
        assert_eq!(c.group_state("g"), None);
        assert_eq!(c.group_state("other"), Some(GroupState::Empty));
        // Not closed: the groups still coordinated here take calls.
        let first = ready(c.join(join_req("", None), 1));
        assert_eq!(first.error, ErrorCode::MEMBER_ID_REQUIRED);
    }

    #[test]
    fn rejects_bad_requests() {
        let mut c = GroupCoordinator::new(config());
        let mut bad = join_req("", None);
        bad.session_timeout_ms = 10;
        assert_eq!(
            ready(c.join(bad, 0)).error,
            ErrorCode::INVALID_SESSION_TIMEOUT
        );
        let mut no_group = join_req("", None);
        no_group.group_id.clear();
        assert_eq!(
            ready(c.join(no_group, 0)).error,
            ErrorCode::INVALID_GROUP_ID
        );
        assert_eq!(
            ready(c.join(join_req("made-up", None), 0)).error,
            ErrorCode::UNKNOWN_MEMBER_ID
        );
        let (_a, _rx) = join_new(&mut c, 0);
        let mut other = join_req("", None);
        other.protocols = vec![("roundrobin".into(), Bytes::new())];
        assert_eq!(
            ready(c.join(other, 0)).error,
            ErrorCode::INCONSISTENT_GROUP_PROTOCOL
        );
        assert_eq!(c.delete("g", 0), ErrorCode::NON_EMPTY_GROUP);
        assert_eq!(c.delete("nope", 0), ErrorCode::GROUP_ID_NOT_FOUND);
    }

    /// A member whose session ran out is gone the moment its deadline passes, for DeleteGroups
    /// too, not only at the next timer tick (librdkafka's admin test deletes a group of closed
    /// static members right after their session timeout).
    #[test]
    fn delete_sees_a_session_that_ran_out_without_a_tick() {
        let mut c = GroupCoordinator::new(config());
        let (id, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        ready(sync(&mut c, &id, 1, vec![(id.clone(), Bytes::new())]));
        assert_eq!(heartbeat(&mut c, &id, 1, 1_000), ErrorCode::NONE);
        // Session timeout 10 s from the last heartbeat.
        assert_eq!(c.delete("g", 10_999), ErrorCode::NON_EMPTY_GROUP);
        assert_eq!(c.delete("g", 11_000), ErrorCode::NONE);
        assert_eq!(c.group_state("g"), None);
    }
}
