//! The cluster as an operator sees it: every partition's replicas, leader, in-sync replicas and
//! health, and the detail of the replicas this broker hosts. Read by the admin HTTP API
//! (`/v1/cluster/...`) and the Prometheus metrics, so both report the same thing.
//!
//! Owns no state and does no IO: it combines what exists, the topic registry's assignments, the
//! local replicas' [`ReplicationView`]s and the leader records in etcd's [`ClusterView`]. The
//! rules (which source of leadership wins, what counts as under-replicated or offline) are the
//! pure [`partition_status`], unit-tested below.

use std::collections::{BTreeMap, BTreeSet};

use weir_replication::{NodeId, Role};

use crate::broker::Broker;
use crate::cluster::metadata::{BrokerRecord, LeaderRecord};
use crate::partition::ReplicationView;
use crate::topics::Topic;

/// Kafka-style lower-case name of a replica's Raft role.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Unattached => "unattached",
        Role::Voted => "voted",
        Role::Follower => "follower",
        Role::Prospective => "prospective",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
        Role::Resigned => "resigned",
    }
}

/// One partition as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    /// The assigned replicas (the metadata's target replica set); the first is the preferred
    /// leader.
    pub replicas: Vec<NodeId>,
    /// The leader as last known (it may be on a broker that is gone: see `offline`).
    pub leader: Option<NodeId>,
    pub leader_epoch: Option<i32>,
    /// Voters caught up with the high watermark that fetched recently, as the leader sees them
    /// (Kafka's ISR). Empty when no leader has published it.
    pub isr: Vec<NodeId>,
    /// Assigned replicas on brokers that are not registered (dead or stopped).
    pub offline_replicas: Vec<NodeId>,
    /// Some assigned replica is not in the ISR (always true of an offline partition).
    pub under_replicated: bool,
    /// No live leader: the partition takes no writes and serves no reads.
    pub offline: bool,
}

/// The leadership facts about one partition, wherever they come from.
struct Leadership {
    leader: NodeId,
    epoch: i32,
    isr: Vec<NodeId>,
}

/// A partition's status from what this broker knows of it:
///
/// - `assigned`: the metadata's replica set (empty on a broker that predates assignments: the
///   local replica's set is used then);
/// - `local`: this broker's replica, if it hosts one;
/// - `record`: the leader record in etcd, if any;
/// - `alive`: whether a broker is registered.
///
/// A local leader is the freshest source (its ISR is computed now). Otherwise the record and the
/// local replica's idea of the leader compete by epoch: the record wins ties, and only the record
/// carries an ISR (a follower does not know who is in sync).
pub fn partition_status(
    topic: &str,
    partition: i32,
    assigned: &[NodeId],
    local: Option<&ReplicationView>,
    record: Option<&LeaderRecord>,
    alive: impl Fn(NodeId) -> bool,
) -> PartitionStatus {
    let replicas: Vec<NodeId> = if assigned.is_empty() {
        local
            .map(|v| v.replicas.iter().copied().collect())
            .unwrap_or_default()
    } else {
        assigned.to_vec()
    };
    let local_leading = local.and_then(|v| match (v.role, &v.in_sync, v.leader) {
        (Role::Leader, Some(isr), Some(me)) => Some(Leadership {
            leader: me,
            epoch: v.epoch,
            isr: isr.iter().copied().collect(),
        }),
        _ => None,
    });
    let from_record = record.map(|r| Leadership {
        leader: r.leader,
        epoch: r.epoch,
        isr: r.isr.clone(),
    });
    let from_local_view = local.and_then(|v| {
        v.leader.map(|leader| Leadership {
            leader,
            epoch: v.epoch,
            isr: Vec::new(),
        })
    });
    let leadership = local_leading.or(match (from_record, from_local_view) {
        (Some(r), Some(l)) if l.epoch > r.epoch => Some(l),
        (Some(r), _) => Some(r),
        (None, l) => l,
    });
    let (leader, leader_epoch, mut isr) = match leadership {
        Some(l) => (Some(l.leader), Some(l.epoch), l.isr),
        None => (None, None, Vec::new()),
    };
    isr.sort_unstable();
    isr.dedup();
    let offline_replicas: Vec<NodeId> = replicas.iter().copied().filter(|r| !alive(*r)).collect();
    let offline = !leader.is_some_and(&alive);
    let under_replicated = offline || replicas.iter().any(|r| !isr.contains(r));
    PartitionStatus {
        topic: topic.to_string(),
        partition,
        replicas,
        leader,
        leader_epoch,
        isr,
        offline_replicas,
        under_replicated,
        offline,
    }
}

/// Partition `index` of `topic` as this broker sees it now: the one rule of Metadata, the admin
/// API and the metrics.
pub fn of_partition(broker: &Broker, topic: &Topic, index: i32) -> PartitionStatus {
    let assigned = usize::try_from(index)
        .ok()
        .and_then(|i| topic.assignment.get(i))
        .map_or(&[][..], Vec::as_slice);
    let local = topic.partition(index).map(|p| p.replication_view());
    let record = broker.cluster_leader(&topic.name, index);
    partition_status(
        &topic.name,
        index,
        assigned,
        local.as_ref(),
        record.as_ref(),
        |id| broker.is_broker_alive(id),
    )
}

/// Every partition of `topic`, in index order, as [`of_partition`] sees it.
pub fn of_topic<'a>(
    broker: &'a Broker,
    topic: &'a Topic,
) -> impl Iterator<Item = PartitionStatus> + 'a {
    (0..i32::try_from(topic.partition_count()).unwrap_or(i32::MAX))
        .map(move |index| of_partition(broker, topic, index))
}

/// What this broker knows of the live brokers and the leader records.
struct Known {
    brokers: BTreeSet<NodeId>,
    leaders: BTreeMap<(String, i32), LeaderRecord>,
}

fn known(broker: &Broker) -> Known {
    match &broker.cluster {
        Some(c) => c.store.with_view(|v| Known {
            brokers: v.brokers.keys().copied().collect(),
            leaders: v.leaders.clone(),
        }),
        None => Known {
            brokers: BTreeSet::from([broker.config.node_id]),
            leaders: BTreeMap::new(),
        },
    }
}

/// Every partition of every topic the broker knows (the whole cluster's, in a cluster), sorted by
/// topic and partition.
pub fn partitions(broker: &Broker) -> Vec<PartitionStatus> {
    let known = known(broker);
    let mut out = Vec::new();
    for topic in broker.topics.all() {
        let count = i32::try_from(topic.partition_count()).unwrap_or(i32::MAX);
        for index in 0..count {
            let assigned = usize::try_from(index)
                .ok()
                .and_then(|i| topic.assignment.get(i))
                .map_or(&[][..], Vec::as_slice);
            let local = topic.partition(index).map(|p| p.replication_view());
            out.push(partition_status(
                &topic.name,
                index,
                assigned,
                local.as_ref(),
                known.leaders.get(&(topic.name.clone(), index)),
                |id| known.brokers.contains(&id),
            ));
        }
    }
    out
}

/// What a leader knows of one other replica of its partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FollowerStatus {
    pub node_id: NodeId,
    /// Whether it votes (a learner catching up before it is promoted does not).
    pub voter: bool,
    /// The offset it last fetched from (everything below is on its disk); `None` if it has not
    /// fetched since this leader was elected.
    pub end_offset: Option<i64>,
    /// The leader's log end minus `end_offset`, in offsets (records and control records).
    pub lag_records: Option<i64>,
    /// Milliseconds since its last fetch.
    pub last_fetch_ms_ago: Option<i64>,
    pub in_sync: bool,
}

/// One replica hosted by this broker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaStatus {
    pub topic: String,
    pub partition: i32,
    pub role: &'static str,
    /// Whether this replica is in the partition's voter set (a learner is not).
    pub voter: bool,
    pub epoch: i32,
    pub leader: Option<NodeId>,
    pub voters: Vec<NodeId>,
    /// The replica set this replica moves towards (voters and learners).
    pub replicas: Vec<NodeId>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// Leader only: the other replicas, by node id.
    pub followers: Option<Vec<FollowerStatus>>,
}

/// A local replica's status from its view; `me` is this broker, `now_ms` the replica clock.
pub fn replica_status(
    topic: &str,
    partition: i32,
    me: NodeId,
    log_start_offset: i64,
    view: &ReplicationView,
    now_ms: i64,
) -> ReplicaStatus {
    let followers = view.in_sync.as_ref().map(|in_sync| {
        view.voters
            .union(&view.replicas)
            .copied()
            .filter(|id| *id != me)
            .map(|id| {
                let progress = view.progress.get(&id);
                let end = progress.map(|p| p.end_offset);
                FollowerStatus {
                    node_id: id,
                    voter: view.voters.contains(&id),
                    end_offset: end,
                    lag_records: end.map(|e| (view.log_end - e).max(0)),
                    last_fetch_ms_ago: progress.map(|p| {
                        now_ms.saturating_sub(i64::try_from(p.last_fetch_ms).unwrap_or(i64::MAX))
                    }),
                    in_sync: in_sync.contains(&id),
                }
            })
            .collect()
    });
    ReplicaStatus {
        topic: topic.to_string(),
        partition,
        role: role_name(view.role),
        voter: view.voters.contains(&me),
        epoch: view.epoch,
        leader: view.leader,
        voters: view.voters.iter().copied().collect(),
        replicas: view.replicas.iter().copied().collect(),
        log_start_offset,
        log_end_offset: view.log_end,
        high_watermark: view.high_watermark,
        followers,
    }
}

/// Every replica this broker hosts, sorted by topic and partition.
pub fn replicas(broker: &Broker) -> Vec<ReplicaStatus> {
    let me = broker.config.node_id;
    let now = broker.now_ms();
    let mut out = Vec::new();
    for topic in broker.topics.all() {
        for p in topic.local_partitions() {
            let view = p.replication_view();
            out.push(replica_status(
                &topic.name,
                p.index,
                me,
                p.log.log_start_offset(),
                &view,
                now,
            ));
        }
    }
    out
}

/// The cluster as a whole, from this broker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterSummary {
    /// `cluster` or `single-node`.
    pub mode: &'static str,
    pub cluster_id: String,
    pub node_id: NodeId,
    /// The broker holding the controller key (`None` while nobody does); a single node is its
    /// own controller.
    pub controller_id: Option<NodeId>,
    /// Whether this broker is the controller.
    pub is_controller: bool,
    /// Whether etcd answered the last time this broker asked (`None` on a single node).
    pub etcd_reachable: Option<bool>,
    /// The etcd revision the metadata reflects (`None` on a single node).
    pub metadata_revision: Option<i64>,
    /// Registered brokers, by node id.
    pub brokers: Vec<BrokerStatus>,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokerStatus {
    pub node_id: NodeId,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl From<BrokerRecord> for BrokerStatus {
    fn from(b: BrokerRecord) -> Self {
        Self {
            node_id: b.id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        }
    }
}

pub fn summary(broker: &Broker) -> ClusterSummary {
    let me = broker.config.node_id;
    let mut brokers: Vec<BrokerStatus> = broker
        .live_brokers()
        .into_iter()
        .map(BrokerStatus::from)
        .collect();
    brokers.sort_by_key(|b| b.node_id);
    match &broker.cluster {
        Some(c) => {
            let (controller, revision) = c.store.with_view(|v| (v.controller, v.revision));
            ClusterSummary {
                mode: "cluster",
                cluster_id: broker.cluster_id.clone(),
                node_id: me,
                controller_id: controller,
                is_controller: c.is_controller(),
                etcd_reachable: Some(c.store.is_available()),
                metadata_revision: Some(revision),
                brokers,
            }
        }
        None => ClusterSummary {
            mode: "single-node",
            cluster_id: broker.cluster_id.clone(),
            node_id: me,
            controller_id: Some(me),
            is_controller: true,
            etcd_reachable: None,
            metadata_revision: None,
            brokers,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_replication::Progress;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn view(role: Role, epoch: i32, leader: Option<NodeId>) -> ReplicationView {
        ReplicationView {
            role,
            epoch,
            leader,
            voters: set(&[1, 2, 3]),
            replicas: set(&[1, 2, 3]),
            in_sync: None,
            high_watermark: 10,
            log_end: 12,
            progress: BTreeMap::new(),
        }
    }

    fn record(leader: NodeId, epoch: i32, isr: &[NodeId]) -> LeaderRecord {
        LeaderRecord {
            leader,
            epoch,
            isr: isr.to_vec(),
            voters: vec![1, 2, 3],
        }
    }

    fn all_alive(_: NodeId) -> bool {
        true
    }

    #[test]
    fn a_local_leader_reports_its_own_isr() {
        let mut v = view(Role::Leader, 5, Some(1));
        v.in_sync = Some(set(&[1, 3]));
        // A stale record of an older leader does not override the leader itself.
        let s = partition_status(
            "t",
            0,
            &[1, 2, 3],
            Some(&v),
            Some(&record(2, 4, &[1, 2, 3])),
            all_alive,
        );
        assert_eq!((s.leader, s.leader_epoch), (Some(1), Some(5)));
        assert_eq!(s.isr, vec![1, 3]);
        assert!(s.under_replicated);
        assert!(!s.offline);
    }

    #[test]
    fn a_follower_reports_the_published_record() {
        let v = view(Role::Follower, 7, Some(2));
        let s = partition_status(
            "t",
            0,
            &[1, 2, 3],
            Some(&v),
            Some(&record(2, 7, &[3, 2, 1])),
            all_alive,
        );
        assert_eq!((s.leader, s.leader_epoch), (Some(2), Some(7)));
        assert_eq!(s.isr, vec![1, 2, 3]);
        assert!(!s.under_replicated);
        assert!(!s.offline);
        assert!(s.offline_replicas.is_empty());
    }

    #[test]
    fn a_newer_local_epoch_beats_a_stale_record_but_has_no_isr() {
        let v = view(Role::Follower, 8, Some(3));
        let s = partition_status(
            "t",
            0,
            &[1, 2, 3],
            Some(&v),
            Some(&record(2, 7, &[1, 2, 3])),
            all_alive,
        );
        assert_eq!((s.leader, s.leader_epoch), (Some(3), Some(8)));
        assert!(s.isr.is_empty());
        assert!(s.under_replicated);
    }

    #[test]
    fn a_partition_whose_leader_is_gone_is_offline_and_under_replicated() {
        let alive = |id: NodeId| id != 2;
        let v = view(Role::Follower, 7, Some(2));
        let s = partition_status(
            "t",
            0,
            &[2, 1, 3],
            Some(&v),
            Some(&record(2, 7, &[1, 2, 3])),
            alive,
        );
        assert_eq!(s.leader, Some(2));
        assert!(s.offline);
        assert!(s.under_replicated);
        assert_eq!(s.offline_replicas, vec![2]);
        // Not hosted here and no record at all: nothing is known but the assignment.
        let s = partition_status("t", 1, &[2, 1, 3], None, None, alive);
        assert_eq!((s.leader, s.leader_epoch), (None, None));
        assert!(s.offline && s.under_replicated);
        assert_eq!(s.replicas, vec![2, 1, 3]);
    }

    #[test]
    fn an_assigned_replica_outside_the_isr_is_under_replicated() {
        // A reassignment added 4: it is a learner, not yet in sync.
        let s = partition_status(
            "t",
            0,
            &[1, 2, 4],
            None,
            Some(&record(1, 3, &[1, 2, 3])),
            all_alive,
        );
        assert!(s.under_replicated);
        assert!(!s.offline);
    }

    #[test]
    fn a_single_node_partition_is_healthy() {
        let mut v = view(Role::Leader, 1, Some(0));
        v.voters = set(&[0]);
        v.replicas = set(&[0]);
        v.in_sync = Some(set(&[0]));
        let s = partition_status("t", 0, &[0], Some(&v), None, |id| id == 0);
        assert_eq!(s.isr, vec![0]);
        assert!(!s.under_replicated && !s.offline);
    }

    #[test]
    fn a_leader_lists_its_followers_with_lag() {
        let mut v = view(Role::Leader, 5, Some(1));
        v.replicas = set(&[1, 2, 3, 4]);
        v.in_sync = Some(set(&[1, 2]));
        v.progress.insert(
            2,
            Progress {
                end_offset: 12,
                last_fetch_ms: 990,
            },
        );
        v.progress.insert(
            3,
            Progress {
                end_offset: 4,
                last_fetch_ms: 100,
            },
        );
        let r = replica_status("t", 0, 1, 0, &v, 1_000);
        assert_eq!(r.role, "leader");
        assert!(r.voter);
        let followers = r.followers.expect("leader lists followers");
        let by_id: BTreeMap<NodeId, &FollowerStatus> =
            followers.iter().map(|f| (f.node_id, f)).collect();
        assert_eq!(by_id.keys().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(by_id[&2].lag_records, Some(0));
        assert_eq!(by_id[&2].last_fetch_ms_ago, Some(10));
        assert!(by_id[&2].in_sync);
        assert_eq!(by_id[&3].lag_records, Some(8));
        assert!(!by_id[&3].in_sync);
        // 4 is a learner that has not fetched yet.
        assert!(!by_id[&4].voter);
        assert_eq!((by_id[&4].end_offset, by_id[&4].lag_records), (None, None));

        let f = replica_status("t", 0, 2, 0, &view(Role::Follower, 5, Some(1)), 1_000);
        assert_eq!(f.role, "follower");
        assert_eq!(f.followers, None);
    }
}
