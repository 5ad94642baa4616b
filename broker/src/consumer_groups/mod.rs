//! The coordinator of the consumer group protocol (KIP-848, `group.protocol=consumer`): groups
//! whose members heartbeat with ConsumerGroupHeartbeat and get their partitions from a
//! server-side assignor, as opposed to the classic groups of `groups` (JoinGroup/SyncGroup).
//! Owns membership, member epochs, the target assignment, incremental reconciliation, static
//! members, regex subscriptions, ConsumerGroupDescribe, and the member-epoch checks of
//! OffsetCommit/OffsetFetch v9. Committed offsets stay in `offsets`.
//!
//! Pure like `groups`: no IO, no clock; the caller passes the time and a snapshot of the topics
//! ([`TopicsView`]). Every change to persisted state is queued as a [`records::GroupRecord`]
//! (Kafka's `__consumer_offsets` layout); the caller takes them with [`ConsumerGroups::take_records`]
//! and makes them durable before answering, and [`ConsumerGroups::replay`] rebuilds the groups
//! from them at start.
//!
//! How a group moves, as in Kafka's `GroupMetadataManager`:
//! 1. A heartbeat creates or updates its member. A change of subscription, or of the subscribed
//!    topics themselves (created, deleted, more partitions, a regex matching a new topic), bumps
//!    the *group epoch*.
//! 2. When the group epoch is ahead of the *assignment epoch*, the assignor computes a new
//!    *target assignment* for every member.
//! 3. Each member reconciles towards its target on its own heartbeats: it is first asked to
//!    revoke the partitions it must give up (keeping its epoch, state `UnrevokedPartitions`);
//!    once it reports them gone it moves to the target epoch and gets the partitions that are
//!    free; partitions still owned by another member are handed over later
//!    (`UnreleasedPartitions`). Members that keep their partitions are never interrupted.
//!
//! Online migration (Kafka's `group.consumer.migration.policy=bidirectional`, its default): a
//! consumer-protocol member joining a classic group with members converts it here
//! ([`ConsumerGroups::upgrade`]), its classic members kept as they were; classic members keep
//! speaking JoinGroup/SyncGroup/Heartbeat/LeaveGroup (`classic_*`), a JoinGroup being one
//! reconciliation step with the partitions its subscription says it owns, a Heartbeat asking it
//! to rejoin when that would move it. When the last consumer-protocol member leaves a group of
//! classic members, the group goes back to the classic coordinator
//! ([`ConsumerGroups::take_downgrades`]), which starts a rebalance.

pub mod assignor;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;

use bytes::Bytes;

use crate::consumer_protocol::{self, CONSUMER_PROTOCOL_TYPE};
use crate::errors::ErrorCode;
use crate::groups::{CommitKind, JoinRequest, MigratingGroup, MigratingMember};
use assignor::{AssignmentSpec, AssignorKind};
use records::{ClassicMemberValue, CurrentValue, GroupRecord, MemberValue};

/// A Kafka topic id.
pub type TopicId = [u8; 16];
/// Partitions by topic id.
pub type Assignment = BTreeMap<TopicId, BTreeSet<i32>>;

/// The member epoch of a member leaving the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The member epoch of a static member leaving for now: it keeps its partitions for the
/// session timeout.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;
/// From this ConsumerGroupHeartbeat version the client generates its member id (KIP-1082).
const CLIENT_MEMBER_ID_VERSION: i16 = 1;
/// Compiled regular expressions are bounded (the pattern comes from the client).
const REGEX_SIZE_LIMIT_BYTES: usize = 1 << 20;

/// The `group.consumer.*` settings.
#[derive(Clone, Debug)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.assignors`; the first is the default.
    pub assignors: Vec<AssignorKind>,
    /// `group.consumer.max.size`.
    pub max_size: usize,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            assignors: vec![AssignorKind::Uniform, AssignorKind::Range],
            max_size: 1_000,
        }
    }
}

/// The topics as the coordinator sees them: a snapshot the caller takes from the registry.
#[derive(Clone, Debug, Default)]
pub struct TopicsView {
    by_name: BTreeMap<String, (TopicId, i32)>,
    names: HashMap<TopicId, String>,
}

impl TopicsView {
    pub fn insert(&mut self, name: &str, id: TopicId, partitions: i32) {
        self.by_name.insert(name.to_string(), (id, partitions));
        self.names.insert(id, name.to_string());
    }

    pub fn name(&self, id: &TopicId) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }

    /// A topic's id and partition count by name.
    pub fn get(&self, name: &str) -> Option<(TopicId, i32)> {
        self.by_name.get(name).copied()
    }
}

/// The reconciliation state of a member, with Kafka's record values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Must revoke partitions before it moves to the next epoch.
    UnrevokedPartitions,
    /// Waits for partitions other members still own.
    UnreleasedPartitions,
    Unknown,
}

impl MemberState {
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    pub fn from_value(v: i8) -> Self {
        match v {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// An error answered to the client, with Kafka's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupError {
    pub code: ErrorCode,
    pub message: Option<String>,
}

fn err(code: ErrorCode, message: impl Into<String>) -> GroupError {
    GroupError {
        code,
        message: Some(message.into()),
    }
}

fn invalid(message: &str) -> GroupError {
    err(ErrorCode::INVALID_REQUEST, message)
}

/// A ConsumerGroupHeartbeat as the coordinator needs it.
#[derive(Clone, Debug, Default)]
pub struct Heartbeat {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1 = unchanged.
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns; `None` = not reported.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
    pub api_version: i16,
    /// Set when a classic member's JoinGroup is run as a heartbeat (never from the wire).
    pub classic: Option<ClassicMemberValue>,
}

/// A successful heartbeat's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed or the member sent a full request.
    pub assignment: Option<Assignment>,
}

/// A described member (ConsumerGroupDescribe).
#[derive(Clone, Debug)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: Assignment,
    pub target_assignment: Assignment,
    /// Speaks the classic protocol (joined a consumer group with JoinGroup, online migration).
    pub classic: bool,
}

/// A described group (ConsumerGroupDescribe).
#[derive(Clone, Debug)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: &'static str,
    pub members: Vec<MemberDescription>,
}

#[derive(Clone, Debug, PartialEq)]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    subscribed_topic_names: Vec<String>,
    subscribed_topic_regex: Option<String>,
    server_assignor: Option<String>,
    rebalance_timeout_ms: i32,
    state: MemberState,
    member_epoch: i32,
    previous_member_epoch: i32,
    assigned: Assignment,
    pending_revocation: Assignment,
    /// Not persisted: the member is removed when it has not heartbeated by then.
    session_deadline_ms: i64,
    /// Not persisted: a member asked to revoke partitions is removed if it has not by then.
    revocation_deadline_ms: Option<i64>,
    /// A member that speaks the classic protocol (online migration): its JoinGroup's session
    /// timeout and protocols.
    classic: Option<ClassicMemberValue>,
}

impl Member {
    fn new(member_id: &str) -> Self {
        Member {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: -1,
            state: MemberState::Stable,
            member_epoch: 0,
            previous_member_epoch: 0,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: 0,
            revocation_deadline_ms: None,
            classic: None,
        }
    }

    /// Starts a new session at `now_ms`, for the session timeout: a classic member's own, else
    /// the group's.
    fn renew_session(&mut self, now_ms: i64, config: &ConsumerGroupConfig) {
        let timeout_ms = self
            .classic
            .as_ref()
            .map_or(config.session_timeout_ms, |c| c.session_timeout_ms);
        self.session_deadline_ms = now_ms + i64::from(timeout_ms);
    }

    fn subscription_value(&self) -> MemberValue {
        MemberValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
            classic: self.classic.clone(),
        }
    }

    fn current_value(&self) -> CurrentValue {
        CurrentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state,
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }

    fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.member_epoch == epoch && self.state == MemberState::Stable
    }

    fn subscription_differs(&self, other: &Member) -> bool {
        fn names(m: &Member) -> BTreeSet<&String> {
            m.subscribed_topic_names.iter().collect()
        }
        names(self) != names(other) || self.subscribed_topic_regex != other.subscribed_topic_regex
    }
}

/// Changes not yet turned into records.
#[derive(Debug, Default)]
struct Dirty {
    group_epoch: bool,
    assignment_epoch: bool,
    subscriptions: BTreeSet<String>,
    targets: BTreeSet<String>,
    currents: BTreeSet<String>,
    removed: BTreeSet<String>,
}

#[derive(Debug)]
struct Group {
    group_id: String,
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    /// Instance id to member id.
    static_members: HashMap<String, String>,
    /// Member id to its target assignment.
    target: HashMap<String, Assignment>,
    /// The subscribed topics (id, partition count) at the last epoch bump.
    subscribed_topics: BTreeMap<String, (TopicId, i32)>,
    /// The epoch of the member owning (or revoking) each partition.
    partition_epochs: HashMap<(TopicId, i32), i32>,
    /// Compiled subscription regexes, by pattern.
    regexes: HashMap<String, Regex>,
    /// Patterns first seen in the latest heartbeat: they match nothing until the group's next
    /// heartbeat, as Kafka resolves a new regex asynchronously (its members get the literal
    /// topics of a subscription first and the matched ones on a later heartbeat).
    unresolved_regexes: BTreeSet<String>,
    dirty: Dirty,
}

impl Group {
    fn new(group_id: &str) -> Self {
        Group {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: HashMap::new(),
            subscribed_topics: BTreeMap::new(),
            partition_epochs: HashMap::new(),
            regexes: HashMap::new(),
            unresolved_regexes: BTreeSet::new(),
            dirty: Dirty::default(),
        }
    }

    /// The compiled regex of `pattern`, once resolved.
    fn resolved_regex(&self, pattern: &str) -> Option<&Regex> {
        if self.unresolved_regexes.contains(pattern) {
            return None;
        }
        self.regexes.get(pattern)
    }

    /// Kafka's ConsumerGroupState names.
    fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    fn partition_epoch(&self, topic: &TopicId, partition: i32) -> i32 {
        self.partition_epochs
            .get(&(*topic, partition))
            .copied()
            .unwrap_or(-1)
    }

    /// Moves a member's partition ownership from `old` to `new` in the epoch map.
    fn update_partition_epochs(&mut self, old: Option<&Member>, new: Option<&Member>) {
        if let Some(old) = old {
            for (topic, ps) in old.assigned.iter().chain(old.pending_revocation.iter()) {
                for p in ps {
                    self.partition_epochs.remove(&(*topic, *p));
                }
            }
        }
        if let Some(new) = new {
            for (topic, ps) in new.assigned.iter().chain(new.pending_revocation.iter()) {
                for p in ps {
                    self.partition_epochs.insert((*topic, *p), new.member_epoch);
                }
            }
        }
    }

    /// Stores `member`, keeping the static-member index and the partition epochs in step.
    fn put_member(&mut self, member: Member) {
        let old = self.members.remove(&member.member_id);
        self.update_partition_epochs(old.as_ref(), Some(&member));
        if let Some(iid) = &member.instance_id {
            self.static_members
                .insert(iid.clone(), member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
    }

    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let old = self.members.remove(member_id)?;
        self.update_partition_epochs(Some(&old), None);
        if let Some(iid) = &old.instance_id {
            if self.static_members.get(iid).map(String::as_str) == Some(member_id) {
                self.static_members.remove(iid);
            }
        }
        self.target.remove(member_id);
        self.dirty.subscriptions.remove(member_id);
        self.dirty.targets.remove(member_id);
        self.dirty.currents.remove(member_id);
        self.dirty.removed.insert(member_id.to_string());
        Some(old)
    }

    fn bump_group_epoch(&mut self) {
        self.group_epoch += 1;
        self.dirty.group_epoch = true;
        // An empty group has nothing to assign: its assignment epoch follows (KAFKA-20442).
        if self.members.is_empty() {
            self.assignment_epoch = self.group_epoch;
            self.dirty.assignment_epoch = true;
        }
    }

    /// Whether a member subscribes to `topic`, by name or by its regex.
    fn subscribes(&self, m: &Member, topic: &str) -> bool {
        m.subscribed_topic_names.iter().any(|n| n == topic)
            || m.subscribed_topic_regex
                .as_ref()
                .and_then(|p| self.resolved_regex(p))
                .is_some_and(|re| re.is_match(topic))
    }

    /// The topic names a member subscribes to, its regex resolved against `topics`.
    fn member_topics(&self, m: &Member, topics: &TopicsView) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m.subscribed_topic_names.iter().cloned().collect();
        if let Some(re) = m
            .subscribed_topic_regex
            .as_ref()
            .and_then(|p| self.resolved_regex(p))
        {
            out.extend(topics.by_name.keys().filter(|n| re.is_match(n)).cloned());
        }
        out
    }

    /// The existing topics the group subscribes to, with their id and partition count.
    fn compute_subscribed_topics(&self, topics: &TopicsView) -> BTreeMap<String, (TopicId, i32)> {
        let mut out = BTreeMap::new();
        for m in self.members.values() {
            for name in self.member_topics(m, topics) {
                if let Some(meta) = topics.by_name.get(&name) {
                    out.insert(name, *meta);
                }
            }
        }
        out
    }

    /// Compiles the regexes members use and forgets the ones no member uses any more.
    fn refresh_regexes(&mut self) {
        let used: BTreeSet<String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .collect();
        self.regexes.retain(|p, _| used.contains(p));
        self.unresolved_regexes.retain(|p| used.contains(p));
        for p in used {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.regexes.entry(p) {
                // Patterns were checked when the member sent them; one that fails now (a replayed
                // record) matches nothing.
                if let Ok(re) = compile_regex(slot.key()) {
                    slot.insert(re);
                }
            }
        }
    }

    /// The server assignor most members ask for, else the configured default (as Kafka).
    fn assignor(&self, config: &ConsumerGroupConfig) -> AssignorKind {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        votes
            .iter()
            .max_by_key(|(_, n)| **n)
            .and_then(|(name, _)| AssignorKind::parse(name))
            .filter(|k| config.assignors.contains(k))
            .or_else(|| config.assignors.first().copied())
            .unwrap_or(AssignorKind::Uniform)
    }

    /// Computes the target assignment of the current group epoch.
    fn update_target(&mut self, topics: &TopicsView, config: &ConsumerGroupConfig) {
        let partitions: BTreeMap<TopicId, i32> = self.subscribed_topics.values().copied().collect();
        let members: BTreeMap<String, BTreeSet<TopicId>> = self
            .members
            .values()
            .map(|m| {
                let ids = self
                    .member_topics(m, topics)
                    .iter()
                    .filter_map(|n| self.subscribed_topics.get(n).map(|(id, _)| *id))
                    .collect();
                (m.member_id.clone(), ids)
            })
            .collect();
        let kind = self.assignor(config);
        let target = assignor::assign(
            kind,
            &AssignmentSpec {
                members: &members,
                partitions: &partitions,
                previous: &self.target,
            },
        );
        for (member_id, assignment) in target {
            if self.target.get(&member_id) != Some(&assignment) {
                self.dirty.targets.insert(member_id.clone());
                self.target.insert(member_id, assignment);
            }
        }
        self.assignment_epoch = self.group_epoch;
        self.dirty.assignment_epoch = true;
    }

    /// Partitions by topic name, for the consumer protocol; partitions of topics the group no
    /// longer subscribes to (deleted ones) are left out, as Kafka leaves out unknown topics.
    fn names_of(&self, a: &Assignment) -> consumer_protocol::TopicPartitions {
        let names: HashMap<&TopicId, &String> = self
            .subscribed_topics
            .iter()
            .map(|(name, (id, _))| (id, name))
            .collect();
        a.iter()
            .filter_map(|(id, ps)| Some(((*names.get(id)?).clone(), ps.iter().copied().collect())))
            .collect()
    }

    /// Kafka's `waitingOnUnreleasedPartition`: a target partition of `m` it does not have yet
    /// is still owned by another member.
    fn waiting_on_unreleased(&self, m: &Member) -> bool {
        m.state == MemberState::UnreleasedPartitions
            && self
                .target
                .get(&m.member_id)
                .into_iter()
                .flatten()
                .any(|(topic, ps)| {
                    ps.iter().any(|p| {
                        !m.assigned.get(topic).is_some_and(|a| a.contains(p))
                            && self.partition_epoch(topic, *p) != -1
                    })
                })
    }

    /// The group as the classic coordinator takes it back (online downgrade): every member is a
    /// classic one, with the partitions it has now; the generation is the group epoch.
    fn to_classic(&self) -> MigratingGroup {
        MigratingGroup {
            group_id: self.group_id.clone(),
            generation_id: self.group_epoch,
            protocol_name: None,
            members: self
                .members
                .values()
                .filter_map(|m| {
                    let classic = m.classic.as_ref()?;
                    let version = classic
                        .protocols
                        .first()
                        .map_or(0, |(_, meta)| consumer_protocol::subscription_version(meta));
                    Some(MigratingMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        session_timeout_ms: classic.session_timeout_ms,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        protocols: classic
                            .protocols
                            .iter()
                            .map(|(name, meta)| (name.clone(), Bytes::from(meta.clone())))
                            .collect(),
                        assignment: consumer_protocol::encode_assignment(
                            version,
                            &self.names_of(&m.assigned),
                        ),
                    })
                })
                .collect(),
        }
    }

    /// The records that remove the group from the log: what is pending, then tombstones for
    /// every member's records and both epochs (so compaction can never leave a member behind
    /// without its group).
    fn tombstones(&mut self) -> Vec<GroupRecord> {
        let mut out = self.take_records();
        let gid = || self.group_id.clone();
        for member_id in self.members.keys() {
            out.extend(member_tombstones(&self.group_id, member_id));
        }
        out.push(GroupRecord::TargetEpoch {
            group_id: gid(),
            epoch: None,
        });
        out.push(GroupRecord::GroupEpoch {
            group_id: gid(),
            epoch: None,
        });
        out
    }

    fn take_records(&mut self) -> Vec<GroupRecord> {
        let d = std::mem::take(&mut self.dirty);
        let gid = || self.group_id.clone();
        let mut out = Vec::new();
        for member_id in &d.removed {
            if self.members.contains_key(member_id) {
                continue; // removed and added back (a static member's replacement)
            }
            out.extend(member_tombstones(&self.group_id, member_id));
        }
        for member_id in &d.subscriptions {
            if let Some(m) = self.members.get(member_id) {
                out.push(GroupRecord::Member {
                    group_id: gid(),
                    member_id: member_id.clone(),
                    value: Some(m.subscription_value()),
                });
            }
        }
        if d.group_epoch {
            out.push(GroupRecord::GroupEpoch {
                group_id: gid(),
                epoch: Some(self.group_epoch),
            });
        }
        for member_id in &d.targets {
            if let Some(t) = self.target.get(member_id) {
                out.push(GroupRecord::TargetMember {
                    group_id: gid(),
                    member_id: member_id.clone(),
                    value: Some(t.clone()),
                });
            }
        }
        if d.assignment_epoch {
            out.push(GroupRecord::TargetEpoch {
                group_id: gid(),
                epoch: Some(self.assignment_epoch),
            });
        }
        for member_id in &d.currents {
            if let Some(m) = self.members.get(member_id) {
                out.push(GroupRecord::Current {
                    group_id: gid(),
                    member_id: member_id.clone(),
                    value: Some(m.current_value()),
                });
            }
        }
        out
    }
}

/// Compiles a subscription pattern. Kafka matches the whole topic name (RE2/J `matches()`);
/// the `regex` crate's syntax is RE2's.
fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT_BYTES)
        .build()
}

fn blank(s: Option<&str>) -> bool {
    s.is_some_and(|s| s.trim().is_empty())
}

/// Kafka's request validation (`throwIfConsumerGroupHeartbeatRequestIsInvalid`), in its order,
/// before any group is looked at.
pub fn validate(hb: &Heartbeat, config: &ConsumerGroupConfig) -> Result<(), GroupError> {
    if (hb.api_version >= CLIENT_MEMBER_ID_VERSION
        || hb.member_epoch > 0
        || hb.member_epoch == LEAVE_GROUP_MEMBER_EPOCH)
        && hb.member_id.trim().is_empty()
    {
        return Err(invalid("MemberId can't be empty."));
    }
    if hb.group_id.trim().is_empty() {
        return Err(invalid("GroupId can't be empty."));
    }
    if blank(hb.instance_id.as_deref()) {
        return Err(invalid("InstanceId can't be empty."));
    }
    if blank(hb.rack_id.as_deref()) {
        return Err(invalid("RackId can't be empty."));
    }
    if hb.member_epoch == 0 {
        if hb.rebalance_timeout_ms == -1 {
            return Err(invalid(
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        if hb.owned.as_ref().is_none_or(|o| !o.is_empty()) {
            return Err(invalid("TopicPartitions must be empty when (re-)joining."));
        }
        if hb.subscribed_topic_names.is_none() && hb.subscribed_topic_regex.is_none() {
            return Err(invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
            ));
        }
    } else if hb.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if hb.instance_id.is_none() {
            return Err(invalid("InstanceId can't be null."));
        }
    } else if hb.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return Err(invalid("MemberEpoch is invalid."));
    }
    if let Some(name) = &hb.server_assignor {
        if !AssignorKind::parse(name).is_some_and(|k| config.assignors.contains(&k)) {
            let supported: Vec<&str> = config.assignors.iter().map(|a| a.name()).collect();
            return Err(err(
                ErrorCode::UNSUPPORTED_ASSIGNOR,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: {}.",
                    supported.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The tombstones of a member's records, in Kafka's order for a removal: current assignment,
/// target, then subscription.
fn member_tombstones(group_id: &str, member_id: &str) -> [GroupRecord; 3] {
    [
        GroupRecord::Current {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
        GroupRecord::TargetMember {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
        GroupRecord::Member {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
    ]
}

/// Partitions by topic name (the consumer protocol's) as partitions by topic id; topics that do
/// not exist are left out.
fn ids_of(names: &consumer_protocol::TopicPartitions, topics: &TopicsView) -> Assignment {
    names
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .filter_map(|(name, ps)| Some((topics.get(name)?.0, ps.iter().copied().collect())))
        .collect()
}

/// The answer to a classic member's JoinGroup to a consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicJoinAnswer {
    pub member_id: String,
    /// The member epoch.
    pub generation_id: i32,
    pub protocol_name: String,
}

/// A classic member's SyncGroup to a consumer group.
#[derive(Clone, Copy, Debug)]
pub struct ClassicSync<'a> {
    pub group_id: &'a str,
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub generation_id: i32,
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
}

/// Whether `owned` holds only partitions of `assigned`.
fn is_subset(owned: Option<&Assignment>, assigned: &Assignment) -> bool {
    let Some(owned) = owned else {
        return false;
    };
    owned.iter().all(|(topic, ps)| {
        assigned
            .get(topic)
            .is_some_and(|a| ps.iter().all(|p| a.contains(p)))
    })
}

/// Whether the member still reports a partition of `revoking`. Not reporting at all counts as
/// still owning (Kafka's rule).
fn owns_any(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    owned.iter().any(|(topic, ps)| {
        revoking
            .get(topic)
            .is_some_and(|r| ps.iter().any(|p| r.contains(p)))
    })
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`, with KAFKA-19233: epoch 0 always rejoins.
fn check_member_epoch(
    member: &Member,
    received: i32,
    owned: Option<&Assignment>,
) -> Result<(), GroupError> {
    if received == 0 {
        return Ok(());
    }
    if received > member.member_epoch {
        return Err(err(
            ErrorCode::FENCED_MEMBER_EPOCH,
            format!(
                "The consumer group member has a greater member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            ),
        ));
    }
    if received < member.member_epoch
        && (received != member.previous_member_epoch || !is_subset(owned, &member.assigned))
    {
        return Err(err(
            ErrorCode::FENCED_MEMBER_EPOCH,
            format!(
                "The consumer group member has a smaller member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            ),
        ));
    }
    Ok(())
}

/// Kafka's `CurrentAssignmentBuilder`: one reconciliation step of `member` towards `target`.
fn reconcile(
    member: &Member,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    partition_epoch: impl Fn(&TopicId, i32) -> i32,
) -> Member {
    let next =
        |epoch: i32| next_assignment(member, epoch, target_epoch, target, owned, &partition_epoch);
    match member.state {
        MemberState::Stable if member.member_epoch != target_epoch => next(member.member_epoch),
        MemberState::Stable => member.clone(),
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.pending_revocation) {
                member.clone()
            } else {
                next(member.member_epoch + 1)
            }
        }
        MemberState::UnreleasedPartitions => next(member.member_epoch),
        MemberState::Unknown => next(target_epoch),
    }
}

fn next_assignment(
    member: &Member,
    member_epoch: i32,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    partition_epoch: &impl Fn(&TopicId, i32) -> i32,
) -> Member {
    let mut has_unreleased = false;
    let mut assigned = Assignment::new();
    let mut revoking = Assignment::new();
    let mut to_assign = Assignment::new();
    let topics: BTreeSet<TopicId> = target
        .keys()
        .chain(member.assigned.keys())
        .copied()
        .collect();
    let empty = BTreeSet::new();
    for topic in topics {
        let t = target.get(&topic).unwrap_or(&empty);
        let current = member.assigned.get(&topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = current.intersection(t).copied().collect();
        let revoke: BTreeSet<i32> = current.difference(&keep).copied().collect();
        let mut add: BTreeSet<i32> = t.difference(&keep).copied().collect();
        let before = add.len();
        add.retain(|p| partition_epoch(&topic, *p) == -1);
        has_unreleased |= add.len() != before;
        if !keep.is_empty() {
            assigned.insert(topic, keep);
        }
        if !revoke.is_empty() {
            revoking.insert(topic, revoke);
        }
        if !add.is_empty() {
            to_assign.insert(topic, add);
        }
    }
    let mut next = member.clone();
    next.previous_member_epoch = member.member_epoch;
    if !revoking.is_empty() && owns_any(owned, &revoking) {
        next.state = MemberState::UnrevokedPartitions;
        next.member_epoch = member_epoch;
        next.assigned = assigned;
        next.pending_revocation = revoking;
    } else {
        for (topic, ps) in to_assign {
            assigned.entry(topic).or_default().extend(ps);
        }
        next.state = if has_unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        next.member_epoch = target_epoch;
        next.assigned = assigned;
        next.pending_revocation = Assignment::new();
    }
    if next.member_epoch == member.member_epoch {
        next.previous_member_epoch = member.previous_member_epoch;
    }
    next
}

/// All consumer-protocol groups this broker coordinates.
pub struct ConsumerGroups {
    config: ConsumerGroupConfig,
    groups: HashMap<String, Group>,
    /// Records of groups that were deleted (tombstones), not yet taken.
    deleted: Vec<GroupRecord>,
    /// Groups of classic members only, handed back to the classic coordinator, not yet taken.
    downgrades: Vec<MigratingGroup>,
}

impl ConsumerGroups {
    pub fn new(config: ConsumerGroupConfig) -> Self {
        ConsumerGroups {
            config,
            groups: HashMap::new(),
            deleted: Vec::new(),
            downgrades: Vec::new(),
        }
    }

    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.config
    }

    pub fn contains(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
    }

    /// Whether the group exists and has no members (it may be converted to a classic group).
    pub fn is_empty_group(&self, group_id: &str) -> Option<bool> {
        self.groups.get(group_id).map(|g| g.members.is_empty())
    }

    /// Handles one ConsumerGroupHeartbeat. The caller has resolved a classic group of the same
    /// id (converted it if empty, refused otherwise).
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        topics: &TopicsView,
        now_ms: i64,
    ) -> Result<HeartbeatAnswer, GroupError> {
        validate(&hb, &self.config)?;
        if hb.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || hb.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            return self.leave(&hb);
        }
        let joining = hb.member_epoch == 0;
        if !self.groups.contains_key(&hb.group_id) {
            if !joining {
                return Err(err(
                    ErrorCode::GROUP_ID_NOT_FOUND,
                    format!("Consumer group {} not found.", hb.group_id),
                ));
            }
            self.groups
                .insert(hb.group_id.clone(), Group::new(&hb.group_id));
        }
        let result = self.heartbeat_in_group(hb.clone(), topics, now_ms);
        // A group created for a join that failed is not kept.
        if let Some(g) = self.groups.get(&hb.group_id) {
            if g.group_epoch == 0 && g.members.is_empty() {
                self.groups.remove(&hb.group_id);
            }
        }
        result
    }

    fn heartbeat_in_group(
        &mut self,
        mut hb: Heartbeat,
        topics: &TopicsView,
        now_ms: i64,
    ) -> Result<HeartbeatAnswer, GroupError> {
        let config = self.config.clone();
        let Some(group) = self.groups.get_mut(&hb.group_id) else {
            return Err(err(
                ErrorCode::GROUP_ID_NOT_FOUND,
                format!("Consumer group {} not found.", hb.group_id),
            ));
        };
        // Regexes an earlier heartbeat introduced are resolved now (see `unresolved_regexes`).
        group.unresolved_regexes.clear();
        let joining = hb.member_epoch == 0;
        if group.members.len() >= config.max_size
            && (hb.member_id.is_empty() || !group.members.contains_key(&hb.member_id))
        {
            return Err(err(
                ErrorCode::GROUP_MAX_SIZE_REACHED,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    config.max_size
                ),
            ));
        }
        if hb.member_id.is_empty() {
            hb.member_id = uuid::Uuid::new_v4().to_string();
        }
        let owned = hb.owned.as_ref();

        // Find (or create, or take over) the member.
        let mut replaced: Option<String> = None;
        let member: Member = match &hb.instance_id {
            None => match group.members.get(&hb.member_id) {
                Some(m) => {
                    check_member_epoch(m, hb.member_epoch, owned)?;
                    m.clone()
                }
                None if joining => Member::new(&hb.member_id),
                None => {
                    return Err(err(
                        ErrorCode::UNKNOWN_MEMBER_ID,
                        format!(
                            "Member {} is not a member of group {}.",
                            hb.member_id, hb.group_id
                        ),
                    ))
                }
            },
            Some(iid) => {
                let existing = group
                    .static_members
                    .get(iid)
                    .and_then(|id| group.members.get(id));
                match existing {
                    None if joining => group
                        .members
                        .get(&hb.member_id)
                        .cloned()
                        .unwrap_or_else(|| Member::new(&hb.member_id)),
                    None => {
                        return Err(err(
                            ErrorCode::UNKNOWN_MEMBER_ID,
                            format!("Instance id {iid} is unknown."),
                        ))
                    }
                    // The same member rejoining (e.g. after being fenced) keeps its place.
                    Some(old) if joining && old.member_id == hb.member_id => old.clone(),
                    Some(old) if joining => {
                        if old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                            return Err(err(
                                ErrorCode::UNRELEASED_INSTANCE_ID,
                                format!(
                                    "Static member {} with instance id {iid} cannot join the group because the instance id is owned by {} member.",
                                    hb.member_id, old.member_id
                                ),
                            ));
                        }
                        // The new instance takes over the old one's subscription and partitions.
                        replaced = Some(old.member_id.clone());
                        let mut m = old.clone();
                        m.member_id = hb.member_id.clone();
                        m.member_epoch = 0;
                        m.previous_member_epoch = 0;
                        m
                    }
                    Some(old) if old.member_id != hb.member_id => {
                        return Err(err(
                            ErrorCode::FENCED_INSTANCE_ID,
                            format!(
                                "Static member {} with instance id {iid} was fenced by member {}.",
                                hb.member_id, old.member_id
                            ),
                        ))
                    }
                    Some(old) => {
                        check_member_epoch(old, hb.member_epoch, owned)?;
                        old.clone()
                    }
                }
            }
        };
        let is_new = !group.members.contains_key(&member.member_id);

        // 1. The member's new subscription and details.
        let mut updated = member.clone();
        if hb.instance_id.is_some() {
            updated.instance_id = hb.instance_id.clone();
        }
        if hb.rack_id.is_some() {
            updated.rack_id = hb.rack_id.clone();
        }
        if hb.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if hb.server_assignor.is_some() {
            updated.server_assignor = hb.server_assignor.clone();
        }
        if let Some(names) = &hb.subscribed_topic_names {
            updated.subscribed_topic_names = names.clone();
        }
        if let Some(regex) = &hb.subscribed_topic_regex {
            updated.subscribed_topic_regex = (!regex.is_empty()).then(|| regex.clone());
        }
        updated.client_id = hb.client_id.clone();
        updated.client_host = hb.client_host.clone();
        updated.classic = hb.classic.clone();
        if let Some(p) = &updated.subscribed_topic_regex {
            if updated.subscribed_topic_regex != member.subscribed_topic_regex
                && !group.regexes.contains_key(p)
            {
                let re = compile_regex(p).map_err(|e| {
                    err(
                        ErrorCode::INVALID_REGULAR_EXPRESSION,
                        format!(
                            "SubscribedTopicRegex `{p}` is not a valid regular expression: {e}."
                        ),
                    )
                })?;
                group.regexes.insert(p.clone(), re);
                group.unresolved_regexes.insert(p.clone());
            }
        }
        // Nothing can fail from here on: apply.
        if let Some(old_id) = &replaced {
            let old_target = group.target.get(old_id).cloned().unwrap_or_default();
            group.remove_member(old_id);
            group.target.insert(updated.member_id.clone(), old_target);
            group.dirty.targets.insert(updated.member_id.clone());
            group.dirty.currents.insert(updated.member_id.clone());
        }
        let mut bump = group.group_epoch == 0 || updated.subscription_differs(&member);
        if is_new
            || replaced.is_some()
            || updated.subscription_value() != member.subscription_value()
        {
            group.dirty.subscriptions.insert(updated.member_id.clone());
        }
        updated.renew_session(now_ms, &config);
        group.put_member(updated.clone());
        group.refresh_regexes();

        // The subscribed topics changed (a subscription, a new topic matching, partitions added).
        let subscribed = group.compute_subscribed_topics(topics);
        if subscribed != group.subscribed_topics {
            group.subscribed_topics = subscribed;
            bump = true;
        }
        if bump {
            group.bump_group_epoch();
        }

        // 2. A new target assignment for the new group epoch.
        if group.group_epoch > group.assignment_epoch {
            group.update_target(topics, &config);
        }

        // 3. Reconcile the member towards its target.
        let target = group
            .target
            .get(&updated.member_id)
            .cloned()
            .unwrap_or_default();
        let before = updated.clone();
        let mut reconciled = if before.is_reconciled_to(group.assignment_epoch) {
            before.clone()
        } else {
            reconcile(&before, group.assignment_epoch, &target, owned, |t, p| {
                group.partition_epoch(t, p)
            })
        };
        if reconciled.member_epoch != before.member_epoch
            || reconciled.previous_member_epoch != before.previous_member_epoch
            || reconciled.state != before.state
            || reconciled.assigned != before.assigned
            || reconciled.pending_revocation != before.pending_revocation
            || is_new
        {
            group.dirty.currents.insert(reconciled.member_id.clone());
            reconciled.revocation_deadline_ms = (reconciled.state
                == MemberState::UnrevokedPartitions)
                .then(|| now_ms + i64::from(reconciled.rebalance_timeout_ms.max(0)));
        }
        group.put_member(reconciled.clone());

        let full_request = joining
            || (hb.rebalance_timeout_ms != -1
                && (hb.subscribed_topic_names.is_some() || hb.subscribed_topic_regex.is_some())
                && hb.owned.is_some());
        let assignment = (full_request || reconciled.assigned != member.assigned)
            .then(|| reconciled.assigned.clone());
        Ok(HeartbeatAnswer {
            member_id: reconciled.member_id,
            member_epoch: reconciled.member_epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment,
        })
    }

    fn leave(&mut self, hb: &Heartbeat) -> Result<HeartbeatAnswer, GroupError> {
        let Some(group) = self.groups.get_mut(&hb.group_id) else {
            return Err(err(
                ErrorCode::GROUP_ID_NOT_FOUND,
                format!("Consumer group {} not found.", hb.group_id),
            ));
        };
        let answer = |epoch| HeartbeatAnswer {
            member_id: hb.member_id.clone(),
            member_epoch: epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        let member_id = match &hb.instance_id {
            None => {
                if !group.members.contains_key(&hb.member_id) {
                    return Err(err(
                        ErrorCode::UNKNOWN_MEMBER_ID,
                        format!(
                            "Member {} is not a member of group {}.",
                            hb.member_id, hb.group_id
                        ),
                    ));
                }
                hb.member_id.clone()
            }
            Some(iid) => {
                let Some(owner) = group.static_members.get(iid).cloned() else {
                    return Err(err(
                        ErrorCode::UNKNOWN_MEMBER_ID,
                        format!("Instance id {iid} is unknown."),
                    ));
                };
                if owner != hb.member_id {
                    return Err(err(
                        ErrorCode::FENCED_INSTANCE_ID,
                        format!(
                            "Static member {} with instance id {iid} was fenced by member {owner}.",
                            hb.member_id
                        ),
                    ));
                }
                if hb.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    // Gone for now: it keeps its partitions until its session times out.
                    if let Some(mut m) = group.members.get(&owner).cloned() {
                        m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                        m.pending_revocation = Assignment::new();
                        m.revocation_deadline_ms = None;
                        group.dirty.currents.insert(owner.clone());
                        group.put_member(m);
                    }
                    return Ok(answer(LEAVE_GROUP_STATIC_MEMBER_EPOCH));
                }
                owner
            }
        };
        let consumer_member = group
            .members
            .get(&member_id)
            .is_some_and(|m| m.classic.is_none());
        Self::fence(group, &member_id);
        if consumer_member {
            self.maybe_downgrade(&hb.group_id);
        }
        Ok(answer(hb.member_epoch))
    }

    /// After a consumer-protocol member left: a group whose members all speak the classic
    /// protocol goes back to the classic coordinator (Kafka's online downgrade), its records
    /// removed from the log.
    fn maybe_downgrade(&mut self, group_id: &str) {
        let all_classic = self.groups.get(group_id).is_some_and(|g| {
            !g.members.is_empty() && g.members.values().all(|m| m.classic.is_some())
        });
        if !all_classic {
            return;
        }
        if let Some(mut g) = self.groups.remove(group_id) {
            tracing::info!(group = %group_id, members = g.members.len(), "consumer group downgraded to a classic group");
            self.downgrades.push(g.to_classic());
            self.deleted.extend(g.tombstones());
        }
    }

    /// Groups handed back to the classic coordinator since the last call (see
    /// [`ConsumerGroups::maybe_downgrade`]); the caller gives them to `groups` at once.
    pub fn take_downgrades(&mut self) -> Vec<MigratingGroup> {
        std::mem::take(&mut self.downgrades)
    }

    /// Kafka's online upgrade: a classic group with members becomes a consumer group as a
    /// consumer-protocol member joins it. Every member stays, as a classic member at the
    /// generation's epoch with the partitions the classic assignment gave it (which is also its
    /// target until the joining member's heartbeat computes a new one). `GROUP_ID_NOT_FOUND` if
    /// a member's subscription or assignment is not the consumer protocol's.
    pub fn upgrade(
        &mut self,
        classic: MigratingGroup,
        topics: &TopicsView,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let malformed = || {
            err(
                ErrorCode::GROUP_ID_NOT_FOUND,
                format!(
                    "Cannot upgrade the classic group {} to a consumer group because the embedded consumer protocol is malformed.",
                    classic.group_id
                ),
            )
        };
        let protocol = classic.protocol_name.as_deref().ok_or_else(malformed)?;
        let mut g = Group::new(&classic.group_id);
        g.group_epoch = classic.generation_id;
        g.assignment_epoch = classic.generation_id;
        for cm in &classic.members {
            let metadata = cm
                .protocols
                .iter()
                .find(|(name, _)| name == protocol)
                .map(|(_, m)| m)
                .ok_or_else(malformed)?;
            let subscription =
                consumer_protocol::parse_subscription(metadata).ok_or_else(malformed)?;
            let assigned = ids_of(
                &consumer_protocol::assignment_partitions(&cm.assignment).ok_or_else(malformed)?,
                topics,
            );
            let mut member = Member {
                instance_id: cm.group_instance_id.clone(),
                rack_id: subscription.rack_id,
                client_id: cm.client_id.clone(),
                client_host: cm.client_host.clone(),
                subscribed_topic_names: subscription.topics,
                rebalance_timeout_ms: cm.rebalance_timeout_ms,
                member_epoch: classic.generation_id,
                previous_member_epoch: classic.generation_id,
                assigned: assigned.clone(),
                classic: Some(ClassicMemberValue {
                    session_timeout_ms: cm.session_timeout_ms,
                    protocols: cm
                        .protocols
                        .iter()
                        .map(|(name, meta)| (name.clone(), meta.to_vec()))
                        .collect(),
                }),
                ..Member::new(&cm.member_id)
            };
            member.renew_session(now_ms, &self.config);
            g.target.insert(cm.member_id.clone(), assigned);
            g.dirty.subscriptions.insert(cm.member_id.clone());
            g.dirty.targets.insert(cm.member_id.clone());
            g.dirty.currents.insert(cm.member_id.clone());
            g.put_member(member);
        }
        g.dirty.group_epoch = true;
        g.dirty.assignment_epoch = true;
        g.refresh_regexes();
        g.subscribed_topics = g.compute_subscribed_topics(topics);
        tracing::info!(group = %classic.group_id, members = classic.members.len(), "classic group upgraded to a consumer group");
        self.groups.insert(classic.group_id.clone(), g);
        Ok(())
    }

    /// A classic member's JoinGroup to a consumer group (online migration): one reconciliation
    /// step, as a consumer-protocol heartbeat of a member reporting the partitions its
    /// subscription says it owns. Answered at once with its member epoch as the generation and
    /// its own first protocol; no member is the leader, the assignment comes in SyncGroup.
    pub fn classic_join(
        &mut self,
        join: JoinRequest,
        topics: &TopicsView,
        now_ms: i64,
    ) -> Result<ClassicJoinAnswer, ErrorCode> {
        let Some(group) = self.groups.get_mut(&join.group_id) else {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        let member_id = if join.member_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            join.member_id.clone()
        };
        // Kafka's `supportsClassicProtocols`: the consumer protocol, and a protocol every other
        // classic member supports (so a downgrade always finds one).
        let supported = join.protocol_type == CONSUMER_PROTOCOL_TYPE
            && join.protocols.iter().any(|(name, _)| {
                group
                    .members
                    .values()
                    .filter(|m| m.member_id != member_id)
                    .filter_map(|m| m.classic.as_ref())
                    .all(|c| c.protocols.iter().any(|(n, _)| n == name))
            });
        let subscription = join
            .protocols
            .first()
            .and_then(|(_, meta)| consumer_protocol::parse_subscription(meta));
        let (true, Some(subscription), Some((protocol_name, _))) =
            (supported, subscription, join.protocols.first())
        else {
            return Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        };
        let protocol_name = protocol_name.clone();
        // A static member back under a new member id replaces the one holding its instance id
        // (its partitions included), as a classic group lets it.
        if let Some(iid) = &join.group_instance_id {
            match group.static_members.get(iid).cloned() {
                Some(owner) if owner != member_id => {
                    if !join.member_id.is_empty() {
                        return Err(ErrorCode::FENCED_INSTANCE_ID);
                    }
                    if let Some(mut old) = group.members.get(&owner).cloned() {
                        old.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                        group.put_member(old);
                    }
                }
                _ => {}
            }
        }
        let existing = group.members.get(&member_id);
        let owned = match existing {
            Some(_) => ids_of(&subscription.owned_partitions, topics),
            None => Assignment::new(),
        };
        let hb = Heartbeat {
            group_id: join.group_id.clone(),
            member_id,
            member_epoch: existing.map_or(0, |m| m.member_epoch),
            instance_id: join.group_instance_id.clone(),
            rack_id: subscription.rack_id,
            rebalance_timeout_ms: join.rebalance_timeout_ms,
            subscribed_topic_names: Some(subscription.topics),
            // Empty: no regex (a consumer-protocol member turned classic drops its own).
            subscribed_topic_regex: Some(String::new()),
            server_assignor: None,
            owned: Some(owned),
            client_id: join.client_id,
            client_host: join.client_host,
            api_version: 0,
            classic: Some(ClassicMemberValue {
                session_timeout_ms: join.session_timeout_ms,
                protocols: join
                    .protocols
                    .into_iter()
                    .map(|(name, meta)| (name, meta.to_vec()))
                    .collect(),
            }),
        };
        let answer = self
            .heartbeat_in_group(hb, topics, now_ms)
            .map_err(|e| e.code)?;
        let generation_id = self
            .groups
            .get(&join.group_id)
            .and_then(|g| g.members.get(&answer.member_id))
            .map_or(answer.member_epoch, |m| m.member_epoch);
        Ok(ClassicJoinAnswer {
            member_id: answer.member_id,
            generation_id,
            protocol_name,
        })
    }

    /// The classic member a SyncGroup, Heartbeat or LeaveGroup names (Kafka's
    /// `validateConsumerGroupMember`, then `throwIfMemberDoesNotUseClassicProtocol`).
    fn classic_member<'a>(
        group: &'a Group,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&'a Member, ErrorCode> {
        let member_id = match instance_id {
            None => member_id,
            Some(iid) => {
                let owner = group
                    .static_members
                    .get(iid)
                    .ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
                if !member_id.is_empty() && owner != member_id {
                    return Err(ErrorCode::FENCED_INSTANCE_ID);
                }
                owner
            }
        };
        match group.members.get(member_id) {
            Some(m) if m.classic.is_some() => Ok(m),
            _ => Err(ErrorCode::UNKNOWN_MEMBER_ID),
        }
    }

    /// A classic member's SyncGroup to a consumer group: its current partitions, in the
    /// version of its subscription. `REBALANCE_IN_PROGRESS` if the group moved on since its
    /// JoinGroup (unless it must first revoke: the SyncGroup tells it what to keep).
    pub fn classic_sync(
        &mut self,
        sync: &ClassicSync<'_>,
        now_ms: i64,
    ) -> Result<Bytes, ErrorCode> {
        let group = self
            .groups
            .get_mut(sync.group_id)
            .ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
        let m = Self::classic_member(group, sync.member_id, sync.instance_id)?;
        if sync.generation_id != m.member_epoch {
            return Err(ErrorCode::ILLEGAL_GENERATION);
        }
        let first = m.classic.as_ref().and_then(|c| c.protocols.first());
        if sync
            .protocol_type
            .is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE)
            || sync
                .protocol_name
                .is_some_and(|n| first.is_none_or(|(name, _)| name != n))
        {
            return Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        if group.group_epoch > m.member_epoch && m.state != MemberState::UnrevokedPartitions {
            return Err(ErrorCode::REBALANCE_IN_PROGRESS);
        }
        let version = first.map_or(0, |(_, meta)| consumer_protocol::subscription_version(meta));
        let assignment =
            consumer_protocol::encode_assignment(version, &group.names_of(&m.assigned));
        let member_id = m.member_id.clone();
        if let Some(m) = group.members.get_mut(&member_id) {
            m.renew_session(now_ms, &self.config);
        }
        Ok(assignment)
    }

    /// A classic member's Heartbeat to a consumer group: `REBALANCE_IN_PROGRESS` asks it to
    /// rejoin when the group epoch moved past its own, when it must revoke partitions, or when
    /// partitions it waits for have been released.
    pub fn classic_heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> ErrorCode {
        let Some(group) = self.groups.get_mut(group_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        let m = match Self::classic_member(group, member_id, instance_id) {
            Ok(m) => m,
            Err(e) => return e,
        };
        if generation_id != m.member_epoch {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        let rejoin = m.member_epoch < group.group_epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions && !group.waiting_on_unreleased(m));
        let member_id = m.member_id.clone();
        if let Some(m) = group.members.get_mut(&member_id) {
            m.renew_session(now_ms, &self.config);
        }
        if rejoin {
            ErrorCode::REBALANCE_IN_PROGRESS
        } else {
            ErrorCode::NONE
        }
    }

    /// A classic LeaveGroup to a consumer group: each named classic member leaves (by instance
    /// id alone for an administrative removal), the group epoch is bumped for the others.
    pub fn classic_leave(
        &mut self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Vec<ErrorCode> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return vec![ErrorCode::UNKNOWN_MEMBER_ID; members.len()];
        };
        members
            .iter()
            .map(|(member_id, instance_id)| {
                match Self::classic_member(group, member_id, instance_id.as_deref()) {
                    Ok(m) => {
                        let id = m.member_id.clone();
                        Self::fence(group, &id);
                        ErrorCode::NONE
                    }
                    Err(e) => e,
                }
            })
            .collect()
    }

    /// Removes a member and bumps the group epoch so the others get its partitions.
    fn fence(group: &mut Group, member_id: &str) {
        if group.remove_member(member_id).is_some() {
            group.refresh_regexes();
            // Topics only the removed member subscribed to leave with it, in the same epoch bump.
            let still: BTreeMap<String, (TopicId, i32)> = group
                .subscribed_topics
                .iter()
                .filter(|(name, _)| group.members.values().any(|m| group.subscribes(m, name)))
                .map(|(name, meta)| (name.clone(), *meta))
                .collect();
            group.subscribed_topics = still;
            group.bump_group_epoch();
        }
    }

    /// Drives the timers: members whose session expired, and members that did not revoke
    /// partitions within their rebalance timeout, are removed.
    pub fn tick(&mut self, now_ms: i64) {
        let mut lost_consumer_member = Vec::new();
        for group in self.groups.values_mut() {
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    now_ms > m.session_deadline_ms
                        || m.revocation_deadline_ms.is_some_and(|d| now_ms > d)
                })
                .map(|m| m.member_id.clone())
                .collect();
            for id in expired {
                tracing::info!(group = %group.group_id, member = %id, "consumer group member expired");
                if group.members.get(&id).is_some_and(|m| m.classic.is_none()) {
                    lost_consumer_member.push(group.group_id.clone());
                }
                Self::fence(group, &id);
            }
        }
        for group_id in lost_consumer_member {
            self.maybe_downgrade(&group_id);
        }
    }

    /// The records of every change since the last call, to append to `__consumer_offsets`.
    pub fn take_records(&mut self) -> Vec<GroupRecord> {
        let mut out = std::mem::take(&mut self.deleted);
        for g in self.groups.values_mut() {
            out.extend(g.take_records());
        }
        out
    }

    /// Rebuilds a group's state from a record read back from the log. Members get a fresh session
    /// from `now_ms`, as Kafka does when it loads a group.
    pub fn replay(&mut self, record: GroupRecord, now_ms: i64) {
        if let GroupRecord::ShareGroupEpoch { .. } = record {
            // The share group coordinator's record (`share::group`), not a consumer group's.
            return;
        }
        let group_id = record.group_id().to_string();
        let group = self
            .groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(&group_id));
        match record {
            GroupRecord::GroupEpoch { epoch, .. } => match epoch {
                Some(e) => group.group_epoch = e,
                None => {
                    self.groups.remove(&group_id);
                    return;
                }
            },
            GroupRecord::TargetEpoch { epoch, .. } => group.assignment_epoch = epoch.unwrap_or(0),
            GroupRecord::TargetMember {
                member_id, value, ..
            } => match value {
                Some(a) => {
                    group.target.insert(member_id, a);
                }
                None => {
                    group.target.remove(&member_id);
                }
            },
            GroupRecord::Member {
                member_id, value, ..
            } => match value {
                Some(v) => {
                    let mut m = group
                        .members
                        .get(&member_id)
                        .cloned()
                        .unwrap_or_else(|| Member::new(&member_id));
                    m.instance_id = v.instance_id;
                    m.rack_id = v.rack_id;
                    m.client_id = v.client_id;
                    m.client_host = v.client_host;
                    m.subscribed_topic_names = v.subscribed_topic_names;
                    m.subscribed_topic_regex = v.subscribed_topic_regex;
                    m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                    m.server_assignor = v.server_assignor;
                    m.classic = v.classic;
                    m.renew_session(now_ms, &self.config);
                    group.put_member(m);
                }
                None => {
                    group.remove_member(&member_id);
                }
            },
            GroupRecord::Current {
                member_id, value, ..
            } => {
                if let (Some(v), Some(mut m)) = (value, group.members.get(&member_id).cloned()) {
                    m.member_epoch = v.member_epoch;
                    m.previous_member_epoch = v.previous_member_epoch;
                    m.state = v.state;
                    m.assigned = v.assigned;
                    m.pending_revocation = v.pending_revocation;
                    m.renew_session(now_ms, &self.config);
                    m.revocation_deadline_ms = (m.state == MemberState::UnrevokedPartitions)
                        .then(|| now_ms + i64::from(m.rebalance_timeout_ms.max(0)));
                    group.put_member(m);
                }
            }
            GroupRecord::ShareGroupEpoch { .. } => {}
        }
        group.refresh_regexes();
        // Replay is not a change: nothing to write back.
        group.dirty = Dirty::default();
    }

    /// Called after replay: the subscribed topics are recomputed from the current topics, so a
    /// topic created or grown while the broker was down triggers a rebalance on the next
    /// heartbeat.
    pub fn finish_replay(&mut self, topics: &TopicsView) {
        self.finish_replay_of(topics, |_| true);
    }

    /// [`ConsumerGroups::finish_replay`] for the groups `replayed` selects only (those of one
    /// offsets partition just loaded; the others are live and keep what they computed).
    pub fn finish_replay_of(
        &mut self,
        topics: &TopicsView,
        mut replayed: impl FnMut(&str) -> bool,
    ) {
        for g in self.groups.values_mut() {
            if replayed(&g.group_id) {
                g.subscribed_topics = g.compute_subscribed_topics(topics);
            }
        }
    }

    /// Drops the groups `leaving` selects (their offsets partition moved to another
    /// coordinator), with their records not yet taken: the new coordinator rebuilds them from
    /// the log.
    pub fn unload(&mut self, mut leaving: impl FnMut(&str) -> bool) {
        self.groups.retain(|id, _| !leaving(id));
        self.deleted.retain(|r| !leaving(r.group_id()));
    }

    pub fn group_ids(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// `(group id, state)` of every group, for ListGroups.
    pub fn list(&self) -> Vec<(String, &'static str)> {
        self.groups
            .values()
            .map(|g| (g.group_id.clone(), g.state()))
            .collect()
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let g = self.groups.get(group_id)?;
        Some(GroupDescription {
            group_id: g.group_id.clone(),
            state: g.state(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor_name: g.assignor(&self.config).name(),
            members: g
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                    assignment: m.assigned.clone(),
                    target_assignment: g.target.get(&m.member_id).cloned().unwrap_or_default(),
                    classic: m.classic.is_some(),
                })
                .collect(),
        })
    }

    /// Kafka's `ConsumerGroup.validateOffsetCommit`; `None` if this is not a consumer group.
    pub fn validate_offset_commit(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
        api_version: i16,
    ) -> Option<Result<(), GroupError>> {
        self.validate_commit_of(
            group_id,
            member_id,
            None,
            member_epoch,
            CommitKind::Plain,
            api_version,
        )
    }

    /// Kafka's `ConsumerGroup.validateOffsetCommit` for a TxnOffsetCommit (KIP-447); `None` if
    /// this is not a consumer group. A member with an older epoch is fenced (its transaction
    /// aborts); a commit naming no member and no epoch (TxnOffsetCommit before v3) is taken.
    pub fn validate_txn_offset_commit(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        member_epoch: i32,
    ) -> Option<Result<(), GroupError>> {
        self.validate_commit_of(
            group_id,
            member_id,
            group_instance_id,
            member_epoch,
            CommitKind::Transactional,
            // TxnOffsetCommit has no version rule for consumer-protocol members.
            i16::MAX,
        )
    }

    fn validate_commit_of(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        member_epoch: i32,
        kind: CommitKind,
        api_version: i16,
    ) -> Option<Result<(), GroupError>> {
        let g = self.groups.get(group_id)?;
        // Without an epoch, the admin client or an assign()-only consumer commits; it may only
        // while the group is empty.
        if member_epoch < 0 && g.members.is_empty() {
            return Some(Ok(()));
        }
        // TxnOffsetCommit before v3 names no member, epoch or instance.
        if kind == CommitKind::Transactional
            && member_epoch == -1
            && member_id.is_empty()
            && group_instance_id.is_none()
        {
            return Some(Ok(()));
        }
        let Some(m) = g.members.get(member_id) else {
            return Some(Err(err(
                ErrorCode::UNKNOWN_MEMBER_ID,
                format!("Member {member_id} is not a member of group {group_id}."),
            )));
        };
        if m.classic.is_none() && api_version < 9 {
            return Some(Err(err(
                ErrorCode::UNSUPPORTED_VERSION,
                "OffsetCommit version 9 or above must be used by members using the modern group protocol",
            )));
        }
        Some(check_member_epoch_of(m, member_epoch))
    }

    /// Kafka's `ConsumerGroup.validateOffsetFetch`; `None` if this is not a consumer group.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Option<Result<(), GroupError>> {
        let g = self.groups.get(group_id)?;
        // Admin clients (and requests before v9) name no member and no epoch.
        if member_id.is_none() && member_epoch < 0 {
            return Some(Ok(()));
        }
        let member_id = member_id.unwrap_or_default();
        let Some(m) = g.members.get(member_id) else {
            return Some(Err(err(
                ErrorCode::UNKNOWN_MEMBER_ID,
                format!("Member {member_id} is not a member of group {group_id}."),
            )));
        };
        Some(check_member_epoch_of(m, member_epoch))
    }

    /// Whether a member subscribes to `topic` (OffsetDelete refuses those).
    pub fn is_subscribed(&self, group_id: &str, topic: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|g| g.members.values().any(|m| g.subscribes(m, topic)))
    }

    /// Deletes an empty group (DeleteGroups); NON_EMPTY_GROUP if it has members, `None` if there
    /// is no such consumer group.
    pub fn delete(&mut self, group_id: &str) -> Option<ErrorCode> {
        let g = self.groups.get(group_id)?;
        if !g.members.is_empty() {
            return Some(ErrorCode::NON_EMPTY_GROUP);
        }
        if let Some(mut g) = self.groups.remove(group_id) {
            self.deleted.extend(g.tombstones());
        }
        Some(ErrorCode::NONE)
    }
}

/// A commit's or fetch's epoch against its member's: a classic member's generation is its
/// member epoch (`ILLEGAL_GENERATION`), a consumer-protocol member's `STALE_MEMBER_EPOCH`.
fn check_member_epoch_of(m: &Member, received: i32) -> Result<(), GroupError> {
    if m.classic.is_some() {
        if received != m.member_epoch {
            return Err(err(
                ErrorCode::ILLEGAL_GENERATION,
                format!(
                    "The received generation id {received} does not match the expected member epoch {}.",
                    m.member_epoch
                ),
            ));
        }
        return Ok(());
    }
    check_stale(received, m.member_epoch)
}

fn check_stale(received: i32, expected: i32) -> Result<(), GroupError> {
    if received != expected {
        return Err(err(
            ErrorCode::STALE_MEMBER_EPOCH,
            format!("The received member epoch {received} does not match the expected member epoch {expected}."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
