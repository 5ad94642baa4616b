//! The server-side assignors of the consumer group protocol (`group.consumer.assignors`):
//! `uniform` and `range`. Pure functions of the members' subscriptions, the partition counts and
//! (for `uniform`) the previous target assignment; deterministic (members and topics are
//! visited in sorted order).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Assignment, TopicId};

/// A server-side assignor a member can ask for with `server_assignor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    /// Balanced and sticky: every member gets the same number of partitions (within one) of the
    /// topics it subscribes to, and keeps what it had where that allows.
    Uniform,
    /// Per topic, contiguous ranges of partitions to the members subscribed to it, ordered by
    /// member id (co-partitioned topics land on the same member).
    Range,
}

impl AssignorKind {
    /// The name clients use (`group.remote.assignor`).
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Uniform => "uniform",
            AssignorKind::Range => "range",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "uniform" => Some(AssignorKind::Uniform),
            "range" => Some(AssignorKind::Range),
            _ => None,
        }
    }
}

/// What an assignor works from.
pub struct AssignmentSpec<'a> {
    /// Member id to the ids of the existing topics it subscribes to.
    pub members: &'a BTreeMap<String, BTreeSet<TopicId>>,
    /// Topic id to its partition count.
    pub partitions: &'a BTreeMap<TopicId, i32>,
    /// The previous target assignment, by member id.
    pub previous: &'a HashMap<String, Assignment>,
}

/// The target assignment: every member of `spec` maps to its partitions (possibly none).
pub fn assign(kind: AssignorKind, spec: &AssignmentSpec<'_>) -> BTreeMap<String, Assignment> {
    match kind {
        AssignorKind::Uniform => uniform(spec),
        AssignorKind::Range => range(spec),
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

fn subscribers(spec: &AssignmentSpec<'_>, topic: &TopicId) -> Vec<String> {
    spec.members
        .iter()
        .filter(|(_, topics)| topics.contains(topic))
        .map(|(id, _)| id.clone())
        .collect()
}

fn range(spec: &AssignmentSpec<'_>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = spec
        .members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (topic, &n) in spec.partitions {
        let members = subscribers(spec, topic);
        if members.is_empty() || n <= 0 {
            continue;
        }
        let per = n / members.len() as i32;
        let extra = n % members.len() as i32;
        let mut next = 0;
        for (i, m) in members.iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            if take > 0 {
                if let Some(a) = out.get_mut(m) {
                    a.entry(*topic).or_default().extend(next..next + take);
                }
            }
            next += take;
        }
    }
    out
}

fn uniform(spec: &AssignmentSpec<'_>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = spec
        .members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    // Every partition of a subscribed topic, and who may take it.
    let mut eligible: BTreeMap<TopicId, Vec<String>> = BTreeMap::new();
    let mut unassigned: BTreeSet<(TopicId, i32)> = BTreeSet::new();
    for (topic, &n) in spec.partitions {
        let members = subscribers(spec, topic);
        if members.is_empty() {
            continue;
        }
        unassigned.extend((0..n.max(0)).map(|p| (*topic, p)));
        eligible.insert(*topic, members);
    }
    let total = unassigned.len();
    let fair_max = if spec.members.is_empty() {
        0
    } else {
        total.div_ceil(spec.members.len())
    };

    // 1. Stickiness: members keep what they had, up to their fair share.
    for (member, topics) in spec.members {
        let Some(previous) = spec.previous.get(member) else {
            continue;
        };
        let Some(mine) = out.get_mut(member) else {
            continue;
        };
        for (topic, partitions) in previous {
            if !topics.contains(topic) {
                continue;
            }
            for &p in partitions {
                if count(mine) < fair_max && unassigned.remove(&(*topic, p)) {
                    mine.entry(*topic).or_default().insert(p);
                }
            }
        }
    }

    // 2. The rest go one by one to the least loaded member that may take them.
    for (topic, p) in std::mem::take(&mut unassigned) {
        let Some(members) = eligible.get(&topic) else {
            continue;
        };
        let least = members
            .iter()
            .min_by_key(|m| (out.get(*m).map_or(0, count), (*m).clone()));
        if let Some(m) = least {
            if let Some(a) = out.get_mut(m) {
                a.entry(topic).or_default().insert(p);
            }
        }
    }

    // 3. Heterogeneous subscriptions can leave a member with two more than another that could
    // take one of its partitions: move one at a time until no such pair is left.
    for _ in 0..=total {
        let Some((from, to, topic, p)) = find_move(&out, &eligible) else {
            break;
        };
        if let Some(a) = out.get_mut(&from) {
            if let Some(set) = a.get_mut(&topic) {
                set.remove(&p);
                if set.is_empty() {
                    a.remove(&topic);
                }
            }
        }
        if let Some(a) = out.get_mut(&to) {
            a.entry(topic).or_default().insert(p);
        }
    }
    out
}

/// A partition that could move from a member to one holding at least two fewer.
fn find_move(
    out: &BTreeMap<String, Assignment>,
    eligible: &BTreeMap<TopicId, Vec<String>>,
) -> Option<(String, String, TopicId, i32)> {
    let mut by_load: Vec<(&String, usize)> = out.iter().map(|(m, a)| (m, count(a))).collect();
    by_load.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (donor, donor_load) in &by_load {
        for (receiver, receiver_load) in by_load.iter().rev() {
            if donor_load < &(receiver_load + 2) {
                break;
            }
            let Some(assignment) = out.get(*donor) else {
                continue;
            };
            for (topic, partitions) in assignment.iter().rev() {
                let may_take = eligible
                    .get(topic)
                    .is_some_and(|members| members.contains(receiver));
                if let (true, Some(&p)) = (may_take, partitions.iter().next_back()) {
                    return Some(((*donor).clone(), (*receiver).clone(), *topic, p));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> TopicId {
        [n; 16]
    }

    fn members(list: &[(&str, &[u8])]) -> BTreeMap<String, BTreeSet<TopicId>> {
        list.iter()
            .map(|(m, topics)| (m.to_string(), topics.iter().map(|&n| t(n)).collect()))
            .collect()
    }

    fn counts(a: &BTreeMap<String, Assignment>) -> Vec<usize> {
        a.values().map(count).collect()
    }

    fn all_partitions(a: &BTreeMap<String, Assignment>) -> Vec<(TopicId, i32)> {
        let mut v: Vec<(TopicId, i32)> = a
            .values()
            .flat_map(|x| {
                x.iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn uniform_balances_and_assigns_every_partition_once() {
        let m = members(&[("a", &[1, 2]), ("b", &[1, 2]), ("c", &[1, 2])]);
        let partitions = BTreeMap::from([(t(1), 4), (t(2), 3)]);
        let out = uniform(&AssignmentSpec {
            members: &m,
            partitions: &partitions,
            previous: &HashMap::new(),
        });
        let mut c = counts(&out);
        c.sort();
        assert_eq!(c, vec![2, 2, 3]);
        let expected: Vec<(TopicId, i32)> = (0..4)
            .map(|p| (t(1), p))
            .chain((0..3).map(|p| (t(2), p)))
            .collect();
        assert_eq!(all_partitions(&out), expected);
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let partitions = BTreeMap::from([(t(1), 6)]);
        let two = members(&[("a", &[1]), ("b", &[1])]);
        let first = uniform(&AssignmentSpec {
            members: &two,
            partitions: &partitions,
            previous: &HashMap::new(),
        });
        let previous: HashMap<String, Assignment> = first.clone().into_iter().collect();
        let three = members(&[("a", &[1]), ("b", &[1]), ("c", &[1])]);
        let second = uniform(&AssignmentSpec {
            members: &three,
            partitions: &partitions,
            previous: &previous,
        });
        assert_eq!(counts(&second), vec![2, 2, 2]);
        // a and b only give partitions up; they keep two of their three each.
        for m in ["a", "b"] {
            let before = &first[m][&t(1)];
            let after = &second[m][&t(1)];
            assert!(after.is_subset(before), "{m}: {before:?} -> {after:?}");
        }
    }

    #[test]
    fn uniform_respects_heterogeneous_subscriptions() {
        let m = members(&[("a", &[1]), ("b", &[1, 2])]);
        let partitions = BTreeMap::from([(t(1), 2), (t(2), 2)]);
        let out = uniform(&AssignmentSpec {
            members: &m,
            partitions: &partitions,
            previous: &HashMap::new(),
        });
        assert!(
            !out["a"].contains_key(&t(2)),
            "a does not subscribe to topic 2"
        );
        assert_eq!(counts(&out), vec![2, 2]);
        assert_eq!(all_partitions(&out).len(), 4);
    }

    #[test]
    fn range_gives_contiguous_ranges_by_member_id() {
        let m = members(&[("b", &[1, 2]), ("a", &[1, 2])]);
        let partitions = BTreeMap::from([(t(1), 3), (t(2), 3)]);
        let out = range(&AssignmentSpec {
            members: &m,
            partitions: &partitions,
            previous: &HashMap::new(),
        });
        assert_eq!(out["a"][&t(1)], BTreeSet::from([0, 1]));
        assert_eq!(out["b"][&t(1)], BTreeSet::from([2]));
        // Co-partitioning: the same partition numbers of both topics go to the same member.
        assert_eq!(out["a"][&t(2)], out["a"][&t(1)]);
    }

    #[test]
    fn members_without_subscriptions_get_nothing() {
        let m = members(&[("a", &[]), ("b", &[1])]);
        let partitions = BTreeMap::from([(t(1), 2)]);
        for kind in [AssignorKind::Uniform, AssignorKind::Range] {
            let out = assign(
                kind,
                &AssignmentSpec {
                    members: &m,
                    partitions: &partitions,
                    previous: &HashMap::new(),
                },
            );
            assert!(out["a"].is_empty(), "{kind:?}");
            assert_eq!(count(&out["b"]), 2, "{kind:?}");
        }
    }
}
