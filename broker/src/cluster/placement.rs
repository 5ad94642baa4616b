//! Where replicas go: the assignment of new partitions to brokers and the replacement of replicas
//! on a broker that is gone. Pure functions of the broker list, so every broker computes the same
//! thing and tests need no cluster.
//!
//! The rules are Kafka's (`AdminUtils.assignReplicasToBrokers`) in spirit: the replicas of a
//! partition are on distinct brokers, in as many distinct racks as there are; the first replica
//! (the preferred leader) goes round the brokers so leadership spreads evenly; the other replicas
//! are shifted so that followers spread too.

use std::collections::{BTreeMap, BTreeSet};

/// A broker as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i32,
    pub rack: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlacementError {
    #[error("replication factor {requested} is larger than the {available} available brokers")]
    NotEnoughBrokers { requested: i32, available: usize },
    #[error("replication factor must be at least 1, got {0}")]
    InvalidReplicationFactor(i32),
}

/// Orders brokers so that consecutive ones are in different racks where possible (Kafka's
/// "rack-alternated" list): rack A's first broker, rack B's first, ..., rack A's second, ...
fn rack_alternated(brokers: &[Candidate]) -> Vec<i32> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for b in brokers {
        by_rack.entry(b.rack.as_deref()).or_default().push(b.id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
    }
    let mut out = Vec::with_capacity(brokers.len());
    let mut round = 0;
    while out.len() < brokers.len() {
        for ids in by_rack.values() {
            if let Some(id) = ids.get(round) {
                out.push(*id);
            }
        }
        round += 1;
    }
    out
}

/// Replica lists for `partitions` new partitions (numbered from `first_partition`), `rf` replicas
/// each. `start` picks where the round starts (Kafka picks it at random; callers pass a random
/// number, tests a fixed one).
pub fn assign(
    brokers: &[Candidate],
    first_partition: i32,
    partitions: i32,
    rf: i32,
    start: usize,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if rf < 1 {
        return Err(PlacementError::InvalidReplicationFactor(rf));
    }
    if rf as usize > brokers.len() {
        return Err(PlacementError::NotEnoughBrokers {
            requested: rf,
            available: brokers.len(),
        });
    }
    let order = rack_alternated(brokers);
    let rack_of: BTreeMap<i32, Option<&str>> =
        brokers.iter().map(|b| (b.id, b.rack.as_deref())).collect();
    let racks: BTreeSet<Option<&str>> = rack_of.values().copied().collect();
    let n = order.len();
    let mut out = Vec::with_capacity(partitions.max(0) as usize);
    for p in 0..partitions.max(0) as usize {
        let p_global = first_partition.max(0) as usize + p;
        let first = (start + p_global) % n;
        // Followers shift by one more every full round, so that the same pairs do not repeat.
        let shift = 1 + (start / n.max(1) + p_global / n) % n.max(1);
        let mut replicas = vec![order[first]];
        let mut used_racks: BTreeSet<Option<&str>> = [rack_of[&order[first]]].into();
        let mut k = 0;
        while replicas.len() < rf as usize {
            let idx = (first + shift + k) % n;
            k += 1;
            let id = order[idx];
            if replicas.contains(&id) {
                if k > 2 * n {
                    // Cannot happen with rf <= n; guard against an endless loop anyway.
                    break;
                }
                continue;
            }
            let rack = rack_of[&id];
            // Prefer a rack not used yet, until every rack has a replica.
            if used_racks.contains(&rack) && used_racks.len() < racks.len() && k <= n {
                continue;
            }
            used_racks.insert(rack);
            replicas.push(id);
        }
        if replicas.len() < rf as usize {
            for id in &order {
                if replicas.len() == rf as usize {
                    break;
                }
                if !replicas.contains(id) {
                    replicas.push(*id);
                }
            }
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Replaces `gone` in `replicas` with the live broker that keeps racks most diverse and carries
/// the fewest replicas (`load`: replicas per broker across the cluster). `None` when no broker
/// outside the replica set is available.
pub fn replace(
    replicas: &[i32],
    gone: i32,
    brokers: &[Candidate],
    load: &BTreeMap<i32, usize>,
) -> Option<Vec<i32>> {
    let rack_of: BTreeMap<i32, Option<&str>> =
        brokers.iter().map(|b| (b.id, b.rack.as_deref())).collect();
    let used_racks: BTreeSet<Option<&str>> = replicas
        .iter()
        .filter(|r| **r != gone)
        .filter_map(|r| rack_of.get(r).copied())
        .collect();
    let best = brokers
        .iter()
        .filter(|b| !replicas.contains(&b.id))
        .min_by_key(|b| {
            (
                used_racks.contains(&b.rack.as_deref()),
                load.get(&b.id).copied().unwrap_or(0),
                b.id,
            )
        })?;
    Some(
        replicas
            .iter()
            .map(|r| if *r == gone { best.id } else { *r })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(spec: &[(i32, Option<&str>)]) -> Vec<Candidate> {
        spec.iter()
            .map(|(id, rack)| Candidate {
                id: *id,
                rack: rack.map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn replicas_are_distinct_and_leaders_spread_evenly() {
        let b = brokers(&[(1, None), (2, None), (3, None)]);
        let a = assign(&b, 0, 30, 3, 0).expect("assign");
        let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
        for r in &a {
            assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 3, "{r:?}");
            *leaders.entry(r[0]).or_default() += 1;
        }
        assert_eq!(
            leaders.values().copied().collect::<Vec<_>>(),
            vec![10, 10, 10]
        );
    }

    #[test]
    fn racks_are_all_used_before_one_is_reused() {
        let b = brokers(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        for start in 0..6 {
            for r in assign(&b, 0, 12, 3, start).expect("assign") {
                let racks: BTreeSet<_> = r.iter().map(|id| (id - 1) / 2).collect();
                assert_eq!(racks.len(), 3, "start {start}: {r:?} reuses a rack");
            }
        }
    }

    #[test]
    fn too_few_brokers_is_an_error() {
        let b = brokers(&[(1, None)]);
        assert_eq!(
            assign(&b, 0, 1, 3, 0),
            Err(PlacementError::NotEnoughBrokers {
                requested: 3,
                available: 1
            })
        );
        assert_eq!(
            assign(&b, 0, 1, 0, 0),
            Err(PlacementError::InvalidReplicationFactor(0))
        );
    }

    #[test]
    fn replacement_prefers_a_new_rack_then_the_least_loaded() {
        let b = brokers(&[
            (1, Some("a")),
            (2, Some("b")),
            (4, Some("a")),
            (5, Some("c")),
        ]);
        let load: BTreeMap<i32, usize> = [(4, 0), (5, 9)].into();
        // Replica on 3 (gone, rack c) replaced: 5 is in a rack not yet used, despite its load.
        assert_eq!(replace(&[1, 2, 3], 3, &b, &load), Some(vec![1, 2, 5]));
        // With no new rack available, the least loaded wins.
        let b2 = brokers(&[
            (1, Some("a")),
            (2, Some("b")),
            (4, Some("a")),
            (6, Some("b")),
        ]);
        let load: BTreeMap<i32, usize> = [(4, 3), (6, 1)].into();
        assert_eq!(replace(&[1, 2, 3], 3, &b2, &load), Some(vec![1, 2, 6]));
        assert_eq!(replace(&[1, 2], 2, &brokers(&[(1, None)]), &load), None);
    }
}
