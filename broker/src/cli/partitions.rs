//! `weir partitions reassign|reassignments|elect-leaders`: moving partition replicas between
//! brokers (AlterPartitionReassignments, ListPartitionReassignments) and preferred-leader
//! elections (ElectLeaders), as Kafka's `kafka-reassign-partitions.sh` and
//! `kafka-leader-election.sh` do.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::json;
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::topics::{metadata, partitions_of};
use super::{check, Output};

const TIMEOUT_MS: i32 = 30_000;
/// ElectLeaders election type: the preferred (first) replica.
const ELECTION_PREFERRED: i8 = 0;
/// How often `reassign --wait` looks whether the move is done.
const WAIT_POLL: Duration = Duration::from_millis(250);

#[derive(Subcommand, Debug)]
pub enum PartitionsCommand {
    /// Move a partition's replicas to other brokers (or cancel a move in progress).
    Reassign {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// The new replica set, broker ids comma-separated; the first is the preferred leader.
        #[arg(
            long,
            value_delimiter = ',',
            required_unless_present = "cancel",
            conflicts_with = "cancel"
        )]
        replicas: Vec<i32>,
        /// Cancel the partition's reassignment in progress: back to the replicas it has now.
        #[arg(long)]
        cancel: bool,
        /// Wait until the partition has moved: its new replicas in sync, the old ones gone.
        #[arg(long, conflicts_with = "cancel")]
        wait: bool,
        /// Longest wait with --wait.
        #[arg(long, default_value_t = 300_000, value_name = "MS")]
        wait_timeout_ms: u64,
    },
    /// List the reassignments in progress.
    Reassignments {
        /// Only this topic's partitions.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Move leadership back to each partition's preferred (first) replica.
    ElectLeaders {
        /// The topic (all its partitions unless --partition is given).
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        topic: Option<String>,
        /// Only this partition.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
        /// Every partition of every topic.
        #[arg(long)]
        all: bool,
    },
}

pub async fn run(client: &mut Client, out: &Output, cmd: PartitionsCommand) -> anyhow::Result<()> {
    match cmd {
        PartitionsCommand::Reassign {
            topic,
            partition,
            replicas,
            cancel,
            wait,
            wait_timeout_ms,
        } => {
            let target = (!cancel).then(|| replicas.clone());
            let r = client
                .call(Request::AlterPartitionReassignments(
                    AlterPartitionReassignmentsRequest {
                        timeout_ms: TIMEOUT_MS,
                        allow_replication_factor_change: true,
                        topics: vec![ReassignableTopic {
                            name: topic.clone(),
                            partitions: vec![ReassignablePartition {
                                partition_index: partition,
                                replicas: target,
                            }],
                        }],
                    },
                ))
                .await?;
            let r = expect_response!(r, AlterPartitionReassignments);
            let what = if cancel {
                format!("cannot cancel the reassignment of {topic}[{partition}]")
            } else {
                format!("cannot reassign {topic}[{partition}]")
            };
            check(r.error_code, &what, r.error_message.as_deref())?;
            for t in &r.responses {
                for p in &t.partitions {
                    check(p.error_code, &what, p.error_message.as_deref())?;
                }
            }
            if wait {
                wait_until_moved(client, &topic, partition, &replicas, wait_timeout_ms).await?;
            }
            let list = |rs: &[i32]| rs.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            let (json, text) = match (cancel, wait) {
                (true, _) => (
                    json!({"topic": topic, "partition": partition, "cancelled": true}),
                    format!("cancelled the reassignment of {topic}[{partition}]"),
                ),
                (false, true) => (
                    json!({"topic": topic, "partition": partition, "replicas": replicas, "done": true}),
                    format!("moved {topic}[{partition}] to replicas {}", list(&replicas)),
                ),
                (false, false) => (
                    json!({"topic": topic, "partition": partition, "replicas": replicas, "done": false}),
                    format!(
                        "reassigning {topic}[{partition}] to replicas {} (follow it with `weir partitions reassignments`)",
                        list(&replicas)
                    ),
                ),
            };
            out.message(&json, &text);
        }
        PartitionsCommand::Reassignments { topic } => {
            let moving = reassignments(client, topic.as_deref()).await?;
            let json = json!({"reassignments": moving.iter().map(|(t, p)| json!({
                "topic": t,
                "partition": p.partition_index,
                "replicas": p.replicas,
                "adding": p.adding_replicas,
                "removing": p.removing_replicas,
            })).collect::<Vec<_>>()});
            if !out.is_json() && moving.is_empty() {
                println!("no reassignment in progress");
                return Ok(());
            }
            let ids = |v: &[i32]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
                }
            };
            let rows: Vec<Vec<String>> = moving
                .iter()
                .map(|(t, p)| {
                    vec![
                        t.clone(),
                        p.partition_index.to_string(),
                        ids(&p.replicas),
                        ids(&p.adding_replicas),
                        ids(&p.removing_replicas),
                    ]
                })
                .collect();
            out.table(
                &json,
                &["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
                &rows,
            );
        }
        PartitionsCommand::ElectLeaders {
            topic,
            partition,
            all,
        } => elect_leaders(client, out, topic, partition, all).await?,
    }
    Ok(())
}

/// The reassignments in progress (of `topic`'s partitions, or all), sorted.
async fn reassignments(
    client: &mut Client,
    topic: Option<&str>,
) -> anyhow::Result<Vec<(String, OngoingPartitionReassignment)>> {
    let topics = match topic {
        Some(t) => Some(vec![ListPartitionReassignmentsTopic {
            name: t.to_string(),
            partition_indexes: partitions_of(client, t, false).await?,
        }]),
        None => None,
    };
    let r = client
        .call(Request::ListPartitionReassignments(
            ListPartitionReassignmentsRequest {
                timeout_ms: TIMEOUT_MS,
                topics,
            },
        ))
        .await?;
    let r = expect_response!(r, ListPartitionReassignments);
    check(
        r.error_code,
        "cannot list reassignments",
        r.error_message.as_deref(),
    )?;
    let mut moving: Vec<(String, OngoingPartitionReassignment)> = r
        .topics
        .into_iter()
        .flat_map(|t| {
            let name = t.name;
            t.partitions.into_iter().map(move |p| (name.clone(), p))
        })
        .collect();
    moving.sort_by(|a, b| (&a.0, a.1.partition_index).cmp(&(&b.0, b.1.partition_index)));
    Ok(moving)
}

/// Until `topic[partition]` has moved to `target`: no longer listed as moving, and Metadata
/// shows the target as its replicas, all in sync, with a leader. Both, because a broker that
/// has not yet seen the new target (or a partition between leaders) lists no move either.
async fn wait_until_moved(
    client: &mut Client,
    topic: &str,
    partition: i32,
    target: &[i32],
    timeout_ms: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let want: BTreeSet<i32> = target.iter().copied().collect();
    loop {
        let moving = reassignments(client, Some(topic)).await?;
        let listed = moving.iter().any(|(_, p)| p.partition_index == partition);
        let md = metadata(client, Some(vec![topic.to_string()]), false).await?;
        let settled = md
            .topics
            .iter()
            .filter(|t| t.name.as_deref() == Some(topic))
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .is_some_and(|p| {
                p.leader_id >= 0
                    && p.replica_nodes.iter().copied().collect::<BTreeSet<_>>() == want
                    && p.isr_nodes.iter().copied().collect::<BTreeSet<_>>() == want
            });
        if !listed && settled {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{topic}[{partition}] is still moving after {timeout_ms} ms (see `weir partitions reassignments`)"
            );
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

async fn elect_leaders(
    client: &mut Client,
    out: &Output,
    topic: Option<String>,
    partition: Option<i32>,
    all: bool,
) -> anyhow::Result<()> {
    let topic_partitions = match (all, topic) {
        (true, _) => None,
        (false, Some(t)) => {
            let parts = match partition {
                Some(p) => vec![p],
                None => partitions_of(client, &t, false).await?,
            };
            Some(vec![ElectLeadersTopic {
                topic: t,
                partitions: parts,
            }])
        }
        (false, None) => anyhow::bail!("say which partitions: --topic T [--partition P] or --all"),
    };
    let r = client
        .call(Request::ElectLeaders(ElectLeadersRequest {
            election_type: ELECTION_PREFERRED,
            topic_partitions,
            timeout_ms: TIMEOUT_MS,
        }))
        .await?;
    let r = expect_response!(r, ElectLeaders);
    check(r.error_code, "cannot elect leaders", None)?;
    let mut results: Vec<(String, ElectLeadersPartitionResult)> = r
        .replica_election_results
        .into_iter()
        .flat_map(|t| {
            let name = t.topic;
            t.partition_result
                .into_iter()
                .map(move |p| (name.clone(), p))
        })
        .collect();
    results.sort_by(|a, b| (&a.0, a.1.partition_id).cmp(&(&b.0, b.1.partition_id)));
    // Kafka's tool: an election not needed (the preferred replica leads) is no failure.
    let outcome = |p: &ElectLeadersPartitionResult| match p.error_code {
        ErrorCode::NONE => "elected".to_string(),
        ErrorCode::ELECTION_NOT_NEEDED => "already leads".to_string(),
        code => match &p.error_message {
            Some(m) if !m.is_empty() => format!("{code}: {m}"),
            _ => code.to_string(),
        },
    };
    let json = json!({"results": results.iter().map(|(t, p)| json!({
        "topic": t,
        "partition": p.partition_id,
        "error": (!p.error_code.is_none()).then(|| p.error_code.to_string()),
        "message": p.error_message,
        "result": outcome(p),
    })).collect::<Vec<_>>()});
    if !out.is_json() && results.is_empty() {
        println!("every partition is led by its preferred replica");
    } else {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|(t, p)| vec![t.clone(), p.partition_id.to_string(), outcome(p)])
            .collect();
        out.table(&json, &["TOPIC", "PARTITION", "RESULT"], &rows);
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, p)| !p.error_code.is_none() && p.error_code != ErrorCode::ELECTION_NOT_NEEDED)
        .map(|(t, p)| format!("{t}[{}]: {}", p.partition_id, outcome(p)))
        .collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "the election failed for {} partition(s): {}",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(())
}
