//! Cluster administration APIs: ElectLeaders (preferred-leader election) and partition
//! reassignment (AlterPartitionReassignments, ListPartitionReassignments).
//!
//! Decisions come from `cluster::elections` and the cluster view; the work is done by the
//! partitions' leaders (election requests, target replica sets in the topic records), so any
//! broker can answer these requests. On a single node every partition already has its only
//! possible leader and replica set.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use weir_protocol::requests::{
    AlterPartitionReassignmentsRequest, ElectLeadersRequest, ListPartitionReassignmentsRequest,
};
use weir_protocol::responses::{
    AlterPartitionReassignmentsResponse, ElectLeadersPartitionResult, ElectLeadersResponse,
    ListPartitionReassignmentsResponse, OngoingPartitionReassignment, OngoingTopicReassignment,
    ReassignablePartitionResponse, ReassignableTopicResponse, ReplicaElectionResult,
};
use weir_protocol::ErrorCode;

use crate::broker::Broker;
use crate::cluster::elections::{self, Preferred};

/// ElectLeaders election types.
const ELECTION_PREFERRED: i8 = 0;
const ELECTION_UNCLEAN: i8 = 1;
/// Longest an ElectLeaders request waits for the elections it asked for.
const ELECTION_WAIT_MAX_MS: u64 = 15_000;

fn result(
    partition_id: i32,
    error_code: ErrorCode,
    message: Option<&str>,
) -> ElectLeadersPartitionResult {
    ElectLeadersPartitionResult {
        partition_id,
        error_code,
        error_message: message.map(str::to_string),
    }
}

/// The partitions an ElectLeaders request names, or every partition when it names none
/// (`topic_partitions` null).
fn requested(broker: &Broker, r: &ElectLeadersRequest) -> (Vec<(String, Vec<i32>)>, bool) {
    match &r.topic_partitions {
        Some(topics) => (
            topics
                .iter()
                .map(|t| {
                    let unique: BTreeSet<i32> = t.partitions.iter().copied().collect();
                    (t.topic.clone(), unique.into_iter().collect())
                })
                .collect(),
            false,
        ),
        None => (
            broker
                .topics
                .all()
                .iter()
                .map(|t| {
                    let n = i32::try_from(t.partition_count()).unwrap_or(i32::MAX);
                    (t.name.clone(), (0..n).collect())
                })
                .collect(),
            true,
        ),
    }
}

pub async fn elect_leaders(broker: &Arc<Broker>, r: ElectLeadersRequest) -> ElectLeadersResponse {
    let (wanted, all) = requested(broker, &r);
    let mut results: Vec<(String, Vec<ElectLeadersPartitionResult>)> = Vec::new();
    // Elections asked for: (topic, partition, preferred broker).
    let mut moving: Vec<(String, i32, i32)> = Vec::new();
    for (topic, partitions) in wanted {
        let mut out = Vec::new();
        for index in partitions {
            let decision = match &broker.cluster {
                Some(c) => c
                    .store
                    .with_view(|v| elections::preferred_election(v, &topic, index)),
                None => match broker.topics.get(&topic) {
                    Some(t) if t.has_partition(index) => Preferred::AlreadyLeads,
                    _ => Preferred::Unknown,
                },
            };
            let answer = match (r.election_type, decision) {
                (_, Preferred::Unknown) => Some(result(
                    index,
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    Some("This server does not host this topic-partition."),
                )),
                (ELECTION_PREFERRED, Preferred::AlreadyLeads) => {
                    // Electing everything leaves out what needs nothing, as Kafka does.
                    (!all).then(|| {
                        result(
                            index,
                            ErrorCode::ELECTION_NOT_NEEDED,
                            Some("Leader election not needed for topic partition."),
                        )
                    })
                }
                (ELECTION_PREFERRED, Preferred::NotAvailable(why)) => Some(result(
                    index,
                    ErrorCode::PREFERRED_LEADER_NOT_AVAILABLE,
                    Some(why),
                )),
                (ELECTION_PREFERRED, Preferred::Move { to }) => {
                    moving.push((topic.clone(), index, to));
                    None
                }
                // A Raft partition elects its leader from a majority of its replicas by itself;
                // there is no unclean election to ask for.
                (ELECTION_UNCLEAN, Preferred::NotAvailable(_)) => Some(result(
                    index,
                    ErrorCode::ELIGIBLE_LEADERS_NOT_AVAILABLE,
                    Some("partitions are replicated with Raft: a leader is elected by a majority of the replicas, never uncleanly"),
                )),
                (ELECTION_UNCLEAN, _) => (!all).then(|| {
                    result(
                        index,
                        ErrorCode::ELECTION_NOT_NEEDED,
                        Some("Leader election not needed for topic partition."),
                    )
                }),
                _ => Some(result(
                    index,
                    ErrorCode::INVALID_REQUEST,
                    Some("unknown election type"),
                )),
            };
            if let Some(a) = answer {
                out.push(a);
            }
        }
        results.push((topic, out));
    }
    if let (Some(cluster), false) = (&broker.cluster, moving.is_empty()) {
        let leader_now = |topic: &str, index: i32| {
            cluster.store.with_view(|v| {
                let leader = v.leaders.get(&(topic.to_string(), index)).cloned();
                let pending = v.elections.contains_key(&(topic.to_string(), index));
                (leader, pending)
            })
        };
        // (topic, partition, preferred, leader epoch when asked)
        let mut asked = Vec::new();
        for (topic, index, to) in moving {
            let epoch = leader_now(&topic, index).0.map_or(-1, |l| l.epoch);
            match cluster.store.request_election(&topic, index, to).await {
                Ok(()) => asked.push((topic, index, to, epoch)),
                Err(e) => push(
                    &mut results,
                    &topic,
                    result(index, ErrorCode::REQUEST_TIMED_OUT, Some(&e.to_string())),
                ),
            }
        }
        // Answer once each election is decided (or the time is up), so a client that asks and
        // then looks sees the new leaders.
        let wait_ms = u64::try_from(r.timeout_ms)
            .unwrap_or(0)
            .min(ELECTION_WAIT_MAX_MS);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        while !asked.is_empty() {
            let timed_out = tokio::time::Instant::now() >= deadline;
            asked.retain(|(topic, index, to, epoch)| {
                let (leader, pending) = leader_now(topic, *index);
                let outcome = match leader {
                    Some(l) if l.leader == *to => Some(result(*index, ErrorCode::NONE, None)),
                    // The leader handed over, but another replica won the election.
                    Some(l) if l.epoch > *epoch && !pending => Some(result(
                        *index,
                        ErrorCode::PREFERRED_LEADER_NOT_AVAILABLE,
                        Some("another replica won the election"),
                    )),
                    _ if timed_out => Some(result(
                        *index,
                        ErrorCode::REQUEST_TIMED_OUT,
                        Some("the preferred replica has not taken over yet"),
                    )),
                    _ => None,
                };
                match outcome {
                    Some(o) => {
                        push(&mut results, topic, o);
                        false
                    }
                    None => true,
                }
            });
            if !asked.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    ElectLeadersResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::NONE,
        replica_election_results: results
            .into_iter()
            .filter(|(_, parts)| !parts.is_empty())
            .map(|(topic, mut partition_result)| {
                partition_result.sort_by_key(|p| p.partition_id);
                ReplicaElectionResult {
                    topic,
                    partition_result,
                }
            })
            .collect(),
    }
}

fn push(
    results: &mut Vec<(String, Vec<ElectLeadersPartitionResult>)>,
    topic: &str,
    r: ElectLeadersPartitionResult,
) {
    match results.iter_mut().find(|(t, _)| t == topic) {
        Some((_, parts)) => parts.push(r),
        None => results.push((topic.to_string(), vec![r])),
    }
}

// ------------------------------------------------------------------------------------------
// Partition reassignment
// ------------------------------------------------------------------------------------------

/// A partition's reassignment in progress: its voters (from its leader's record) differ from
/// its assignment. `None` when it is not moving or nobody leads it yet.
fn ongoing(
    view: &crate::cluster::metadata::ClusterView,
    topic: &str,
    index: i32,
) -> Option<OngoingPartitionReassignment> {
    let assignment = view
        .topics
        .get(topic)?
        .replicas
        .get(usize::try_from(index).ok()?)?;
    let voters = &view.leaders.get(&(topic.to_string(), index))?.voters;
    let target: BTreeSet<i32> = assignment.iter().copied().collect();
    let current: BTreeSet<i32> = voters.iter().copied().collect();
    if target == current {
        return None;
    }
    let mut replicas = assignment.clone();
    replicas.extend(voters.iter().filter(|v| !target.contains(v)));
    Some(OngoingPartitionReassignment {
        partition_index: index,
        replicas,
        adding_replicas: target.difference(&current).copied().collect(),
        removing_replicas: current.difference(&target).copied().collect(),
    })
}

/// Checks a requested replica set against the live brokers and the current one.
fn check_target(
    target: &[i32],
    current: &[i32],
    live: &BTreeSet<i32>,
    allow_rf_change: bool,
) -> Result<(), (ErrorCode, String)> {
    if target.is_empty() {
        return Err((
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
            "the replica list is empty".into(),
        ));
    }
    let unique: BTreeSet<i32> = target.iter().copied().collect();
    if unique.len() != target.len() {
        return Err((
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
            format!("duplicate replicas in {target:?}"),
        ));
    }
    if let Some(missing) = target.iter().find(|id| !live.contains(id)) {
        return Err((
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
            format!("broker {missing} is not a live broker of the cluster"),
        ));
    }
    if !allow_rf_change && target.len() != current.len() {
        return Err((
            ErrorCode::INVALID_REPLICATION_FACTOR,
            format!(
                "the reassignment changes the replication factor from {} to {}",
                current.len(),
                target.len()
            ),
        ));
    }
    Ok(())
}

pub async fn alter_partition_reassignments(
    broker: &Arc<Broker>,
    r: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let live: BTreeSet<i32> = broker.live_brokers().iter().map(|b| b.id).collect();
    let mut responses = Vec::with_capacity(r.topics.len());
    for topic in r.topics {
        let answer = |partition_index: i32, code: ErrorCode, message: Option<String>| {
            ReassignablePartitionResponse {
                partition_index,
                error_code: code,
                error_message: message,
            }
        };
        let mut results = Vec::new();
        // Partition index → its new replica list, for the partitions that pass the checks.
        let mut changes: Vec<(i32, Vec<i32>)> = Vec::new();
        for p in topic.partitions {
            let index = p.partition_index;
            let (assignment, moving) = match &broker.cluster {
                Some(c) => c.store.with_view(|v| {
                    let assignment = v
                        .topics
                        .get(&topic.name)
                        .and_then(|t| t.replicas.get(usize::try_from(index).ok()?).cloned());
                    (assignment, ongoing(v, &topic.name, index))
                }),
                None => (
                    broker
                        .topics
                        .get(&topic.name)
                        .filter(|t| t.has_partition(index))
                        .map(|_| vec![broker.config.node_id]),
                    None,
                ),
            };
            let Some(assignment) = assignment else {
                results.push(answer(
                    index,
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    Some("This server does not host this topic-partition.".into()),
                ));
                continue;
            };
            match p.replicas {
                // Cancel: back to the replicas that are voters now.
                None => match moving {
                    Some(m) => {
                        let back: Vec<i32> = m
                            .replicas
                            .iter()
                            .copied()
                            .filter(|id| !m.adding_replicas.contains(id))
                            .collect();
                        changes.push((index, back));
                    }
                    None => results.push(answer(
                        index,
                        ErrorCode::NO_REASSIGNMENT_IN_PROGRESS,
                        Some(format!(
                            "no reassignment of {}-{index} is in progress",
                            topic.name
                        )),
                    )),
                },
                Some(target) => {
                    match check_target(
                        &target,
                        &assignment,
                        &live,
                        r.allow_replication_factor_change,
                    ) {
                        Err((code, message)) => results.push(answer(index, code, Some(message))),
                        Ok(()) if target == assignment => {
                            results.push(answer(index, ErrorCode::NONE, None))
                        }
                        Ok(()) => changes.push((index, target)),
                    }
                }
            }
        }
        if !changes.is_empty() {
            let outcome = match &broker.cluster {
                Some(c) => {
                    let changes = changes.clone();
                    c.store
                        .update_topic(&topic.name, move |record| {
                            for (index, replicas) in &changes {
                                if let Some(slot) = usize::try_from(*index)
                                    .ok()
                                    .and_then(|i| record.replicas.get_mut(i))
                                {
                                    *slot = replicas.clone();
                                }
                            }
                            Ok(())
                        })
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                // A single node has one possible replica set, which check_target allowed only
                // when unchanged.
                None => Ok(()),
            };
            for (index, _) in changes {
                results.push(match &outcome {
                    Ok(()) => answer(index, ErrorCode::NONE, None),
                    Err(e) => answer(index, ErrorCode::REQUEST_TIMED_OUT, Some(e.clone())),
                });
            }
        }
        results.sort_by_key(|p| p.partition_index);
        responses.push(ReassignableTopicResponse {
            name: topic.name,
            partitions: results,
        });
    }
    AlterPartitionReassignmentsResponse {
        throttle_time_ms: 0,
        allow_replication_factor_change: r.allow_replication_factor_change,
        error_code: ErrorCode::NONE,
        error_message: None,
        responses,
    }
}

pub fn list_partition_reassignments(
    broker: &Broker,
    r: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let Some(cluster) = &broker.cluster else {
        // A single node never moves a replica.
        return ListPartitionReassignmentsResponse::default();
    };
    let topics = cluster.store.with_view(|v| {
        let wanted: Vec<(String, Vec<i32>)> = match &r.topics {
            Some(ts) => ts
                .iter()
                .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                .collect(),
            None => v
                .topics
                .iter()
                .map(|(name, t)| {
                    let n = i32::try_from(t.replicas.len()).unwrap_or(i32::MAX);
                    (name.clone(), (0..n).collect())
                })
                .collect(),
        };
        wanted
            .into_iter()
            .filter_map(|(name, partitions)| {
                let moving: Vec<OngoingPartitionReassignment> = partitions
                    .iter()
                    .filter_map(|&i| ongoing(v, &name, i))
                    .collect();
                (!moving.is_empty()).then_some(OngoingTopicReassignment {
                    name,
                    partitions: moving,
                })
            })
            .collect()
    });
    ListPartitionReassignmentsResponse {
        topics,
        ..Default::default()
    }
}
