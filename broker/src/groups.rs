//! The classic consumer-group coordinator (JoinGroup / SyncGroup / Heartbeat / LeaveGroup).
//!
//! Owns group membership, generations, the chosen protocol and member assignments. It does not own
//! committed offsets (see `offsets`) and knows nothing of sockets or wire types: callers hand it plain
//! values plus the current time, and parked JoinGroup/SyncGroup calls are answered through oneshot
//! channels. Time moves only through `tick(now_ms)`, so tests drive it deterministically.
//!
//! The state machine follows Kafka's classic `GroupCoordinator`: Empty -> PreparingRebalance ->
//! CompletingRebalance -> Stable, with the initial-rebalance delay, rebalance timeouts, session
//! expiry, KIP-394 (member id required) and static membership (KIP-345).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use tokio::sync::oneshot;

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
            self.state = GroupState::Empty;
            self.protocol_name = None;
            return;
        }
        self.protocol_name = self.select_protocol();
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
                    self.state = GroupState::Empty;
                    self.protocol_name = None;
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
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: HashMap::new(),
        }
    }

    fn new_member_id(client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    pub fn join(&mut self, req: JoinRequest, now_ms: i64) -> Pending<JoinOutcome> {
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
        let new_id = if req.member_id.is_empty() {
            Some(Self::new_member_id(&req.client_id))
        } else {
            None
        };
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

        // Static member re-joining under a new member id: replace the old one (fencing it).
        let mut member_id = req.member_id.clone();
        if let Some(instance) = &req.group_instance_id {
            if let Some(old_id) = group.static_members.get(instance).cloned() {
                if member_id.is_empty() {
                    let fresh = new_id.clone().unwrap_or_default();
                    if let Some(m) = group.member_mut(&old_id) {
                        if let Some(tx) = m.join_waiter.take() {
                            let _ =
                                tx.send(JoinOutcome::error(ErrorCode::FENCED_INSTANCE_ID, &old_id));
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
                    member_id = fresh;
                } else if member_id != old_id {
                    return Pending::Ready(JoinOutcome::error(
                        ErrorCode::FENCED_INSTANCE_ID,
                        &member_id,
                    ));
                }
            } else if member_id.is_empty() {
                member_id = new_id.clone().unwrap_or_default();
            }
        } else if member_id.is_empty() {
            let fresh = new_id.clone().unwrap_or_default();
            if req.require_known_member_id {
                group
                    .pending_member_ids
                    .insert(fresh.clone(), now_ms + i64::from(req.session_timeout_ms));
                return Pending::Ready(JoinOutcome::error(ErrorCode::MEMBER_ID_REQUIRED, &fresh));
            }
            member_id = fresh;
        } else if group.member(&member_id).is_none()
            && group.pending_member_ids.remove(&member_id).is_none()
        {
            return Pending::Ready(JoinOutcome::error(ErrorCode::UNKNOWN_MEMBER_ID, &member_id));
        }

        if group.member(&member_id).is_none() && group.members.len() >= config.max_group_size {
            return Pending::Ready(JoinOutcome::error(
                ErrorCode::GROUP_MAX_SIZE_REACHED,
                &member_id,
            ));
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
        if group.protocol_type.is_none() {
            group.protocol_type = Some(req.protocol_type.clone());
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

    pub fn sync(
        &mut self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Pending<SyncOutcome> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return Pending::Ready(SyncOutcome::error(ErrorCode::UNKNOWN_MEMBER_ID));
        };
        if group.member(member_id).is_none() {
            return Pending::Ready(SyncOutcome::error(ErrorCode::UNKNOWN_MEMBER_ID));
        }
        if generation_id != group.generation_id {
            return Pending::Ready(SyncOutcome::error(ErrorCode::ILLEGAL_GENERATION));
        }
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

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
        now_ms: i64,
    ) -> ErrorCode {
        let Some(group) = self.groups.get_mut(group_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        let state = group.state;
        let current_generation = group.generation_id;
        let Some(member) = group.member_mut(member_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        member.last_heartbeat_ms = now_ms;
        match state {
            GroupState::Empty => ErrorCode::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance => ErrorCode::REBALANCE_IN_PROGRESS,
            _ if generation_id != current_generation => ErrorCode::ILLEGAL_GENERATION,
            _ => ErrorCode::NONE,
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

    /// Validates a member's offset commit. `None` generation with an empty member id is a "simple"
    /// commit from a consumer using assign().
    pub fn validate_commit(
        &self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
    ) -> ErrorCode {
        let group = self.groups.get(group_id);
        if generation_id < 0 && member_id.is_empty() {
            return match group {
                Some(g) if g.state != GroupState::Empty => ErrorCode::ILLEGAL_GENERATION,
                _ => ErrorCode::NONE,
            };
        }
        let Some(group) = group else {
            return ErrorCode::ILLEGAL_GENERATION;
        };
        if group.member(member_id).is_none() {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        }
        if generation_id != group.generation_id {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        // As Kafka: the current generation may still commit while a rebalance is being prepared
        // (members commit what they processed before rejoining); only between the join and the
        // leader's assignment are commits refused.
        match group.state {
            GroupState::CompletingRebalance => ErrorCode::REBALANCE_IN_PROGRESS,
            _ => ErrorCode::NONE,
        }
    }

    /// Drives timers: expired sessions, rebalance deadlines, the initial-rebalance delay.
    pub fn tick(&mut self, now_ms: i64) {
        for group in self.groups.values_mut() {
            group
                .pending_member_ids
                .retain(|_, deadline| *deadline > now_ms);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    m.join_waiter.is_none()
                        && m.sync_waiter.is_none()
                        && now_ms - m.last_heartbeat_ms > i64::from(m.session_timeout_ms)
                })
                .map(|m| m.member_id.clone())
                .collect();
            for id in expired {
                group.remove_member(&id, now_ms);
            }
            if group.state == GroupState::PreparingRebalance
                && now_ms >= group.initial_delay_until_ms
                && (group.all_joined() || now_ms >= group.rebalance_deadline_ms)
            {
                group.complete_join();
            }
        }
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

    /// Deletes an empty group's membership record; NON_EMPTY_GROUP if it has members.
    pub fn delete(&mut self, group_id: &str) -> ErrorCode {
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
        let synced = ready(c.sync(
            "g",
            &id,
            1,
            vec![(id.clone(), Bytes::from_static(b"assign"))],
        ));
        assert_eq!(synced.error, ErrorCode::NONE);
        assert_eq!(synced.assignment, Bytes::from_static(b"assign"));
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        assert_eq!(c.heartbeat("g", &id, 1, 100), ErrorCode::NONE);
        assert_eq!(c.heartbeat("g", &id, 0, 100), ErrorCode::ILLEGAL_GENERATION);
        assert_eq!(
            c.heartbeat("g", "nobody", 1, 100),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
    }

    #[test]
    fn second_member_triggers_rebalance_and_both_get_assignments() {
        let mut c = GroupCoordinator::new(config());
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        ready(c.sync("g", &a, 1, vec![(a.clone(), Bytes::from_static(b"all"))]));

        let (b, mut rx_b) = join_new(&mut c, 10);
        assert!(rx_b.try_recv().is_err(), "b waits for a to rejoin");
        assert_eq!(
            c.heartbeat("g", &a, 1, 20),
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

        let mut sync_b = waiting(c.sync("g", &b, 2, vec![]));
        assert!(
            sync_b.try_recv().is_err(),
            "follower waits for the leader's assignment"
        );
        let sa = ready(c.sync(
            "g",
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
        ready(c.sync("g", &a, 2, vec![]));
        // b leaves: a must rejoin.
        let (top, per_member) = c.leave("g", &[(b.clone(), None)], 100);
        assert_eq!((top, per_member), (ErrorCode::NONE, vec![ErrorCode::NONE]));
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let mut rx_a = waiting(c.join(join_req(&a, None), 110));
        assert_eq!(rx_a.try_recv().expect("a alone").generation_id, 3);
        ready(c.sync("g", &a, 3, vec![]));
        // a stops heartbeating: after the session timeout the group is empty.
        c.tick(110 + 10_001);
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        assert_eq!(c.validate_commit("g", &a, 3), ErrorCode::UNKNOWN_MEMBER_ID);
        assert_eq!(
            c.validate_commit("g", "", -1),
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
            c.validate_commit("g", &a, 1),
            ErrorCode::REBALANCE_IN_PROGRESS,
            "awaiting sync"
        );
        ready(c.sync("g", &a, 1, vec![]));
        let (_b, _rx_b) = join_new(&mut c, 10);
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        assert_eq!(c.validate_commit("g", &a, 1), ErrorCode::NONE);
        assert_eq!(c.validate_commit("g", &a, 0), ErrorCode::ILLEGAL_GENERATION);
    }

    #[test]
    fn rebalance_timeout_drops_members_that_do_not_rejoin() {
        let mut c = GroupCoordinator::new(config());
        let (a, mut rx) = join_new(&mut c, 0);
        rx.try_recv().expect("joined");
        ready(c.sync("g", &a, 1, vec![]));
        let (_b, mut rx_b) = join_new(&mut c, 1_000);
        c.tick(1_000 + 4_999);
        assert!(
            rx_b.try_recv().is_err(),
            "still within the rebalance timeout"
        );
        c.heartbeat("g", &a, 1, 5_000);
        c.tick(1_000 + 5_000);
        let jb = rx_b.try_recv().expect("join completes without a");
        assert_eq!(jb.members.len(), 1, "b is now leader and alone");
        assert_eq!(c.validate_commit("g", &a, 1), ErrorCode::UNKNOWN_MEMBER_ID);
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
        ready(c.sync(
            "g",
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
        let synced = ready(c.sync("g", &again.member_id, 1, vec![]));
        assert_eq!(
            synced.assignment,
            Bytes::from_static(b"x"),
            "keeps its assignment"
        );
        assert_eq!(
            c.heartbeat("g", &first.member_id, 1, 60),
            ErrorCode::UNKNOWN_MEMBER_ID
        );
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
        assert_eq!(c.delete("g"), ErrorCode::NON_EMPTY_GROUP);
        assert_eq!(c.delete("nope"), ErrorCode::GROUP_ID_NOT_FOUND);
    }
}
