//! Share group membership (ShareGroupHeartbeat, KIP-932): members, epochs, subscriptions,
//! sessions and the assignment. Pure: time and the topics are passed in.
//!
//! Members of a share group may all read the same partitions at once (records, not partitions,
//! are handed out one member at a time), so the assignment is Kafka's simple assignor in its
//! plainest form: every member gets every partition of every topic it subscribes to. Nothing is
//! revoked before it is given to another member, so a member takes its new assignment (and the
//! group epoch) on its next heartbeat.
//!
//! The group epoch moves whenever membership, a subscription or the subscribed topics change.
//! Members are not persisted: after a restart a member's heartbeat is answered
//! UNKNOWN_MEMBER_ID and it joins again, as a Kafka client does after its coordinator lost it.
//! The group epoch is persisted (by the caller, from [`ShareGroups::take_dirty_groups`], in the
//! group's `__consumer_offsets` partition as Kafka does), so epochs never go back. A broker holds
//! the groups of the offsets partitions it leads, like the other group coordinators.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::consumer_groups::{Assignment, TopicsView};
use crate::errors::ErrorCode;

/// The member epoch of a member leaving the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;

/// Group-level settings in force for one heartbeat.
#[derive(Clone, Copy, Debug)]
pub struct MemberTimeouts {
    /// `share.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `share.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
}

/// A heartbeat as the coordinator needs it.
#[derive(Clone, Debug)]
pub struct ShareHeartbeat {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub client_id: String,
    pub client_host: String,
}

/// A successful heartbeat's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's partitions, when they changed (or it joined).
    pub assignment: Option<Assignment>,
}

/// A refused heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareGroupError {
    pub code: ErrorCode,
    pub message: Option<String>,
}

impl ShareGroupError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(message.into()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ShareMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: BTreeSet<String>,
    pub assignment: Assignment,
    /// When the member is gone unless it heartbeats.
    pub session_deadline_ms: i64,
}

#[derive(Clone, Debug, Default)]
pub struct ShareGroup {
    pub group_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
}

impl ShareGroup {
    /// Kafka's share group states: "Empty" without members, else "Stable" (nothing needs
    /// reconciling in a share group).
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// The topics any member subscribes to.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .collect()
    }
}

/// A member that left or timed out: the caller releases what it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departed {
    pub group_id: String,
    pub member_id: String,
}

/// Every share group of this coordinator.
#[derive(Debug, Default)]
pub struct ShareGroups {
    groups: HashMap<String, ShareGroup>,
    /// Groups whose epoch changed since the last `take_dirty_groups` (to persist).
    dirty: BTreeSet<String>,
    /// `group.share.max.size`.
    max_size: usize,
    /// Most share groups (Kafka's `group.share.max.groups`).
    max_groups: usize,
}

/// The assignment of a member: every partition of every topic it subscribes to.
fn assignment_for(subscribed: &BTreeSet<String>, topics: &TopicsView) -> Assignment {
    let mut a = Assignment::new();
    for name in subscribed {
        if let Some((id, partitions)) = topics.get(name) {
            if partitions > 0 {
                a.insert(id, (0..partitions).collect());
            }
        }
    }
    a
}

impl ShareGroups {
    pub fn new(max_size: usize, max_groups: usize) -> Self {
        Self {
            max_size,
            max_groups,
            ..Self::default()
        }
    }

    pub fn contains(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
    }

    pub fn get(&self, group_id: &str) -> Option<&ShareGroup> {
        self.groups.get(group_id)
    }

    /// Group ids and states.
    pub fn list(&self) -> Vec<(String, &'static str)> {
        self.groups
            .iter()
            .map(|(id, g)| (id.clone(), g.state()))
            .collect()
    }

    /// Whether `member_id` is a member of `group_id` now.
    pub fn is_member(&self, group_id: &str, member_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|g| g.members.contains_key(member_id))
    }

    /// Recreates a group from its persisted epoch (replay). An epoch never goes back: the
    /// newest of the records found (older data directories also kept it in the share state) wins.
    pub fn restore(&mut self, group_id: &str, group_epoch: i32) {
        let g = self.groups.entry(group_id.to_string()).or_default();
        g.group_epoch = g.group_epoch.max(group_epoch);
    }

    /// Forgets the groups `leaving` selects: their `__consumer_offsets` partition is led by
    /// another broker now, which coordinates them.
    pub fn unload(&mut self, mut leaving: impl FnMut(&str) -> bool) {
        self.groups.retain(|g, _| !leaving(g));
        self.dirty.retain(|g| !leaving(g));
    }

    /// Recreates a group that has share-partition state but no persisted epoch (replay).
    pub fn restore_if_missing(&mut self, group_id: &str) {
        self.groups.entry(group_id.to_string()).or_default();
    }

    /// Creates an empty group (a share-partition of it was initialized, or it was configured
    /// before its first member), if it does not exist.
    pub fn ensure(&mut self, group_id: &str) -> Result<(), ShareGroupError> {
        if self.groups.contains_key(group_id) {
            return Ok(());
        }
        if self.groups.len() >= self.max_groups {
            return Err(ShareGroupError::new(
                ErrorCode::GROUP_MAX_SIZE_REACHED,
                format!("The share group limit of {} is reached.", self.max_groups),
            ));
        }
        self.groups
            .insert(group_id.to_string(), ShareGroup::default());
        self.dirty.insert(group_id.to_string());
        Ok(())
    }

    /// Deletes an empty group. `Err` with Kafka's code if it has members or does not exist.
    pub fn delete(&mut self, group_id: &str) -> Result<(), ErrorCode> {
        match self.groups.get(group_id) {
            None => Err(ErrorCode::GROUP_ID_NOT_FOUND),
            Some(g) if !g.members.is_empty() => Err(ErrorCode::NON_EMPTY_GROUP),
            Some(_) => {
                self.groups.remove(group_id);
                self.dirty.insert(group_id.to_string());
                Ok(())
            }
        }
    }

    /// Groups whose persisted form changed: `(group, Some(epoch))`, or `None` once deleted.
    pub fn take_dirty_groups(&mut self) -> Vec<(String, Option<i32>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|g| {
                let epoch = self.groups.get(&g).map(|x| x.group_epoch);
                (g, epoch)
            })
            .collect()
    }

    /// The persisted form of every group, for a snapshot.
    pub fn all_epochs(&self) -> Vec<(String, i32)> {
        self.groups
            .iter()
            .map(|(g, x)| (g.clone(), x.group_epoch))
            .collect()
    }

    /// Applies one heartbeat. `Ok` carries the answer; a member that left is reported in
    /// `departed`.
    pub fn heartbeat(
        &mut self,
        hb: ShareHeartbeat,
        topics: &TopicsView,
        timeouts: MemberTimeouts,
        now_ms: i64,
        departed: &mut Vec<Departed>,
    ) -> Result<HeartbeatAnswer, ShareGroupError> {
        validate(&hb)?;
        if hb.member_epoch == LEAVE_GROUP_MEMBER_EPOCH {
            let Some(group) = self.groups.get_mut(&hb.group_id) else {
                return Err(ShareGroupError::new(
                    ErrorCode::GROUP_ID_NOT_FOUND,
                    format!("Group {} not found.", hb.group_id),
                ));
            };
            if group.members.remove(&hb.member_id).is_none() {
                return Err(ShareGroupError::new(
                    ErrorCode::UNKNOWN_MEMBER_ID,
                    format!(
                        "Member {} is not a member of group {}.",
                        hb.member_id, hb.group_id
                    ),
                ));
            }
            group.group_epoch += 1;
            self.dirty.insert(hb.group_id.clone());
            departed.push(Departed {
                group_id: hb.group_id,
                member_id: hb.member_id.clone(),
            });
            return Ok(HeartbeatAnswer {
                member_id: hb.member_id,
                member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
                heartbeat_interval_ms: 0,
                assignment: None,
            });
        }
        if hb.member_epoch == 0 {
            self.ensure(&hb.group_id)?;
        }
        let max_size = self.max_size;
        let Some(group) = self.groups.get_mut(&hb.group_id) else {
            return Err(ShareGroupError::new(
                ErrorCode::UNKNOWN_MEMBER_ID,
                format!(
                    "Member {} is not a member of group {}.",
                    hb.member_id, hb.group_id
                ),
            ));
        };
        let mut changed = false;
        let joining = hb.member_epoch == 0;
        if joining {
            if !group.members.contains_key(&hb.member_id) && group.members.len() >= max_size {
                return Err(ShareGroupError::new(
                    ErrorCode::GROUP_MAX_SIZE_REACHED,
                    format!("The share group has reached its maximum size of {max_size}."),
                ));
            }
            // A member joining again with its id starts over.
            group.members.insert(
                hb.member_id.clone(),
                ShareMember {
                    member_id: hb.member_id.clone(),
                    member_epoch: 0,
                    rack_id: None,
                    client_id: String::new(),
                    client_host: String::new(),
                    subscribed_topic_names: BTreeSet::new(),
                    assignment: Assignment::new(),
                    session_deadline_ms: 0,
                },
            );
            changed = true;
        }
        let group_epoch = group.group_epoch;
        let Some(member) = group.members.get_mut(&hb.member_id) else {
            return Err(ShareGroupError::new(
                ErrorCode::UNKNOWN_MEMBER_ID,
                format!(
                    "Member {} is not a member of group {}.",
                    hb.member_id, hb.group_id
                ),
            ));
        };
        if !joining && hb.member_epoch != member.member_epoch {
            return Err(ShareGroupError::new(
                ErrorCode::FENCED_MEMBER_EPOCH,
                format!(
                    "The share group member has a smaller member epoch ({}) than the one known \
                     by the group coordinator ({}).",
                    hb.member_epoch, member.member_epoch
                ),
            ));
        }
        member.session_deadline_ms = now_ms.saturating_add(i64::from(timeouts.session_timeout_ms));
        member.client_id = hb.client_id;
        member.client_host = hb.client_host;
        if hb.rack_id.is_some() {
            member.rack_id = hb.rack_id;
        }
        if let Some(names) = hb.subscribed_topic_names {
            let names: BTreeSet<String> = names.into_iter().collect();
            if names != member.subscribed_topic_names {
                member.subscribed_topic_names = names;
                changed = true;
            }
        }
        let target = assignment_for(&member.subscribed_topic_names, topics);
        if target != member.assignment {
            changed = true;
        }
        let mut send_assignment = joining;
        if changed {
            let new_epoch = group_epoch + 1;
            member.assignment = target;
            member.member_epoch = new_epoch;
            send_assignment = true;
            group.group_epoch = new_epoch;
            self.dirty.insert(hb.group_id.clone());
        } else if member.member_epoch < group_epoch {
            // The group moved on (another member came or went); this member's partitions did not
            // change, but it takes the new epoch.
            member.member_epoch = group_epoch;
        }
        Ok(HeartbeatAnswer {
            member_id: member.member_id.clone(),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: timeouts.heartbeat_interval_ms,
            assignment: send_assignment.then(|| member.assignment.clone()),
        })
    }

    /// Removes members whose session ran out by `now_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Departed> {
        let mut departed = Vec::new();
        for (group_id, group) in &mut self.groups {
            let gone: Vec<String> = group
                .members
                .values()
                .filter(|m| m.session_deadline_ms <= now_ms)
                .map(|m| m.member_id.clone())
                .collect();
            if gone.is_empty() {
                continue;
            }
            for member_id in gone {
                group.members.remove(&member_id);
                departed.push(Departed {
                    group_id: group_id.clone(),
                    member_id,
                });
            }
            group.group_epoch += 1;
            self.dirty.insert(group_id.clone());
        }
        departed
    }
}

/// Kafka's checks of a ShareGroupHeartbeat request (`throwIfShareGroupHeartbeatRequestIsInvalid`).
pub fn validate(hb: &ShareHeartbeat) -> Result<(), ShareGroupError> {
    let invalid = |m: &str| ShareGroupError::new(ErrorCode::INVALID_REQUEST, m);
    if hb.group_id.trim().is_empty() {
        return Err(invalid("GroupId can't be empty."));
    }
    if hb.member_id.trim().is_empty() {
        return Err(invalid("MemberId can't be empty."));
    }
    if hb.member_epoch < LEAVE_GROUP_MEMBER_EPOCH {
        return Err(invalid("MemberEpoch is invalid."));
    }
    if hb.member_epoch == 0
        && hb
            .subscribed_topic_names
            .as_ref()
            .is_none_or(|names| names.is_empty())
    {
        return Err(invalid(
            "SubscribedTopicNames must be set in first request.",
        ));
    }
    if hb.rack_id.as_deref().is_some_and(|r| r.is_empty()) {
        return Err(invalid("RackId can't be empty."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> TopicsView {
        let mut v = TopicsView::default();
        v.insert("a", [1; 16], 2);
        v.insert("b", [2; 16], 1);
        v
    }

    const T: MemberTimeouts = MemberTimeouts {
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 5_000,
    };

    fn hb(member: &str, epoch: i32, topics: Option<&[&str]>) -> ShareHeartbeat {
        ShareHeartbeat {
            group_id: "g".into(),
            member_id: member.into(),
            member_epoch: epoch,
            rack_id: None,
            subscribed_topic_names: topics.map(|t| t.iter().map(|s| s.to_string()).collect()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    #[test]
    fn every_member_gets_every_partition_of_its_topics() {
        let mut g = ShareGroups::new(10, 10);
        let mut gone = Vec::new();
        let a = g
            .heartbeat(hb("m1", 0, Some(&["a"])), &topics(), T, 0, &mut gone)
            .expect("join");
        assert_eq!(a.member_epoch, 1);
        let expected: Assignment = [([1; 16], [0, 1].into_iter().collect())].into();
        assert_eq!(a.assignment, Some(expected.clone()));
        let b = g
            .heartbeat(hb("m2", 0, Some(&["a", "b"])), &topics(), T, 0, &mut gone)
            .expect("join");
        assert_eq!(b.member_epoch, 2);
        assert_eq!(b.assignment.map(|a| a.len()), Some(2));
        // m1 keeps its partitions and takes the group epoch, with no assignment sent.
        let a = g
            .heartbeat(hb("m1", 1, None), &topics(), T, 0, &mut gone)
            .expect("heartbeat");
        assert_eq!((a.member_epoch, a.assignment), (2, None));
        assert_eq!(
            g.heartbeat(hb("m1", 1, None), &topics(), T, 0, &mut gone)
                .map_err(|e| e.code),
            Err(ErrorCode::FENCED_MEMBER_EPOCH)
        );
        assert_eq!(
            g.heartbeat(hb("zz", 3, None), &topics(), T, 0, &mut gone)
                .map_err(|e| e.code),
            Err(ErrorCode::UNKNOWN_MEMBER_ID)
        );
        assert!(gone.is_empty());
    }

    #[test]
    fn members_leave_and_time_out() {
        let mut g = ShareGroups::new(10, 10);
        let mut gone = Vec::new();
        g.heartbeat(hb("m1", 0, Some(&["a"])), &topics(), T, 0, &mut gone)
            .expect("join");
        g.heartbeat(hb("m2", 0, Some(&["a"])), &topics(), T, 10, &mut gone)
            .expect("join");
        let left = g
            .heartbeat(hb("m1", -1, None), &topics(), T, 20, &mut gone)
            .expect("leave");
        assert_eq!(left.member_epoch, -1);
        assert_eq!(gone.len(), 1);
        assert!(g.tick(45_009).is_empty());
        let timed_out = g.tick(45_010);
        assert_eq!(
            timed_out,
            vec![Departed {
                group_id: "g".into(),
                member_id: "m2".into()
            }]
        );
        assert_eq!(g.get("g").map(ShareGroup::state), Some("Empty"));
        assert_eq!(g.delete("g"), Ok(()));
    }

    #[test]
    fn invalid_heartbeats_are_refused() {
        let mut g = ShareGroups::new(1, 10);
        let mut gone = Vec::new();
        let code = |r: Result<HeartbeatAnswer, ShareGroupError>| r.map_err(|e| e.code);
        assert_eq!(
            code(g.heartbeat(hb("", 0, Some(&["a"])), &topics(), T, 0, &mut gone)),
            Err(ErrorCode::INVALID_REQUEST)
        );
        assert_eq!(
            code(g.heartbeat(hb("m", 0, None), &topics(), T, 0, &mut gone)),
            Err(ErrorCode::INVALID_REQUEST)
        );
        g.heartbeat(hb("m", 0, Some(&["a"])), &topics(), T, 0, &mut gone)
            .expect("join");
        assert_eq!(
            code(g.heartbeat(hb("n", 0, Some(&["a"])), &topics(), T, 0, &mut gone)),
            Err(ErrorCode::GROUP_MAX_SIZE_REACHED)
        );
        assert_eq!(g.delete("g"), Err(ErrorCode::NON_EMPTY_GROUP));
    }
}
