//! Preferred-leader elections: whether leadership of a partition should move back to its
//! preferred replica (the first of its assignment, as in Kafka), decided from the cluster view
//! alone. Pure: the controller's automatic rebalancing and the ElectLeaders handler both ask
//! here; the runtime acts (an election request in etcd that the current leader answers by
//! resigning in favour of the preferred replica).
//!
//! Leadership only moves to a preferred replica that is alive, a voter and in sync, so a move
//! never makes the partition wait for a replica to catch up.

use crate::cluster::metadata::ClusterView;

/// What a preferred-leader election would do for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preferred {
    /// The preferred replica leads already (Kafka's ELECTION_NOT_NEEDED).
    AlreadyLeads,
    /// The live leader should hand over to `to`.
    Move { to: i32 },
    /// The preferred replica cannot lead now (PREFERRED_LEADER_NOT_AVAILABLE), and why.
    NotAvailable(&'static str),
    /// No such topic or partition.
    Unknown,
}

/// The decision for partition `index` of `topic`.
pub fn preferred_election(view: &ClusterView, topic: &str, index: i32) -> Preferred {
    let Some(record) = view.topics.get(topic) else {
        return Preferred::Unknown;
    };
    let Some(assignment) = usize::try_from(index)
        .ok()
        .and_then(|i| record.replicas.get(i))
    else {
        return Preferred::Unknown;
    };
    let Some(&preferred) = assignment.first() else {
        return Preferred::NotAvailable("the partition has no replicas");
    };
    let Some(leader) = view.leaders.get(&(topic.to_string(), index)) else {
        return Preferred::NotAvailable("the partition has no leader yet");
    };
    if !view.brokers.contains_key(&leader.leader) {
        return Preferred::NotAvailable("the partition's leader is offline; an election is due");
    }
    if leader.leader == preferred {
        return Preferred::AlreadyLeads;
    }
    if !view.brokers.contains_key(&preferred) {
        return Preferred::NotAvailable("the preferred replica's broker is offline");
    }
    if !leader.voters.contains(&preferred) || !leader.isr.contains(&preferred) {
        return Preferred::NotAvailable("the preferred replica is not in sync");
    }
    Preferred::Move { to: preferred }
}

/// Every partition whose leadership should move to its preferred replica and for which no
/// election is pending: what the controller's periodic rebalance asks for.
pub fn imbalanced(view: &ClusterView) -> Vec<(String, i32, i32)> {
    let mut out = Vec::new();
    for (name, record) in &view.topics {
        for index in 0..record.replicas.len() {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            if view.elections.contains_key(&(name.clone(), index)) {
                continue;
            }
            if let Preferred::Move { to } = preferred_election(view, name, index) {
                out.push((name.clone(), index, to));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::metadata::{BrokerRecord, ElectionRequest, LeaderRecord, TopicRecord};

    fn view(alive: &[i32], assignment: Vec<i32>, leader: Option<(i32, Vec<i32>)>) -> ClusterView {
        let mut v = ClusterView::default();
        for &id in alive {
            v.brokers.insert(
                id,
                BrokerRecord {
                    id,
                    host: "h".into(),
                    port: 1,
                    rack: None,
                    endpoints: Vec::new(),
                },
            );
        }
        let record = TopicRecord {
            name: "t".into(),
            id: "00000000-0000-0000-0000-000000000001".into(),
            internal: false,
            config: Default::default(),
            replicas: vec![assignment.clone()],
        };
        v.topics.insert("t".into(), Arc::new(record));
        if let Some((l, isr)) = leader {
            v.leaders.insert(
                ("t".into(), 0),
                LeaderRecord {
                    leader: l,
                    epoch: 3,
                    isr,
                    voters: assignment,
                },
            );
        }
        v
    }

    #[test]
    fn moves_only_to_a_live_in_sync_preferred_replica() {
        let v = view(&[1, 2, 3], vec![1, 2, 3], Some((2, vec![1, 2, 3])));
        assert_eq!(preferred_election(&v, "t", 0), Preferred::Move { to: 1 });
        assert_eq!(imbalanced(&v), vec![("t".to_string(), 0, 1)]);

        let lagging = view(&[1, 2, 3], vec![1, 2, 3], Some((2, vec![2, 3])));
        assert!(matches!(
            preferred_election(&lagging, "t", 0),
            Preferred::NotAvailable(_)
        ));
        let offline = view(&[2, 3], vec![1, 2, 3], Some((2, vec![1, 2, 3])));
        assert!(matches!(
            preferred_election(&offline, "t", 0),
            Preferred::NotAvailable(_)
        ));
        let leader_gone = view(&[1, 3], vec![1, 2, 3], Some((2, vec![1, 2, 3])));
        assert!(matches!(
            preferred_election(&leader_gone, "t", 0),
            Preferred::NotAvailable(_)
        ));
        assert!(imbalanced(&lagging).is_empty());
    }

    #[test]
    fn preferred_leader_needs_no_election_and_unknowns_are_reported() {
        let v = view(&[1, 2, 3], vec![1, 2, 3], Some((1, vec![1, 2, 3])));
        assert_eq!(preferred_election(&v, "t", 0), Preferred::AlreadyLeads);
        assert_eq!(preferred_election(&v, "t", 1), Preferred::Unknown);
        assert_eq!(preferred_election(&v, "t", -1), Preferred::Unknown);
        assert_eq!(preferred_election(&v, "nope", 0), Preferred::Unknown);
        assert!(imbalanced(&v).is_empty());
    }

    #[test]
    fn pending_elections_are_not_asked_for_twice() {
        let mut v = view(&[1, 2, 3], vec![1, 2, 3], Some((3, vec![1, 2, 3])));
        v.elections
            .insert(("t".into(), 0), ElectionRequest { preferred: 1 });
        assert!(imbalanced(&v).is_empty());
    }
}
