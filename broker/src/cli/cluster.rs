//! `weir cluster info|nodes|partitions|leaders`: the cluster as Kafka's DescribeCluster and
//! Metadata show it, so it works against any broker of the cluster through `--brokers`, like
//! Kafka's `kafka-topics --describe --under-replicated-partitions`.
//!
//! A partition is under-replicated when one of its assigned replicas is not in its ISR (an
//! offline partition always is), and offline when it has no leader or its leader is on a broker
//! that is gone: the same rules as the admin API's `/v1/cluster/partitions`.

use std::collections::{BTreeMap, BTreeSet};

use clap::Subcommand;
use serde_json::json;
use weir_protocol::responses::MetadataPartition;
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::output::render_table;
use super::topics::metadata;
use super::{check, Output};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers and topic count.
    Info,
    /// The live brokers: address, rack, whether each is the controller, replicas and leaders.
    Nodes,
    /// Every partition's leader, epoch, replicas, in-sync replicas and offline replicas.
    Partitions {
        /// Only this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only partitions with an assigned replica outside the ISR (offline ones included).
        #[arg(long)]
        under_replicated: bool,
        /// Only partitions without a live leader.
        #[arg(long)]
        offline: bool,
    },
    /// Leadership balance: per broker, the partitions it leads and those it should lead (where it
    /// is the preferred, first, replica).
    Leaders,
}

pub async fn run(client: &mut Client, out: &Output, cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Info => info(client, out).await,
        ClusterCommand::Nodes => nodes(client, out).await,
        ClusterCommand::Partitions {
            topic,
            under_replicated,
            offline,
        } => partitions(client, out, topic, under_replicated, offline).await,
        ClusterCommand::Leaders => leaders(client, out).await,
    }
}

async fn describe_cluster(client: &mut Client) -> anyhow::Result<DescribeClusterResponse> {
    let r = client
        .call(Request::DescribeCluster(DescribeClusterRequest::default()))
        .await?;
    let c = expect_response!(r, DescribeCluster);
    check(
        c.error_code,
        "cannot describe the cluster",
        c.error_message.as_deref(),
    )?;
    Ok(c)
}

async fn info(client: &mut Client, out: &Output) -> anyhow::Result<()> {
    let c = describe_cluster(client).await?;
    let md = metadata(client, None, false).await?;
    let topics = md.topics.iter().filter(|t| !t.is_internal).count();
    let partitions: usize = md
        .topics
        .iter()
        .filter(|t| !t.is_internal)
        .map(|t| t.partitions.len())
        .sum();
    if out.is_json() {
        println!(
            "{}",
            json!({
                "cluster_id": c.cluster_id,
                "controller_id": c.controller_id,
                "brokers": c.brokers.iter().map(|b| json!({
                    "node_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack,
                })).collect::<Vec<_>>(),
                "topics": topics,
                "partitions": partitions,
            })
        );
        return Ok(());
    }
    println!("Cluster id: {}", c.cluster_id);
    println!("Controller: {}", c.controller_id);
    println!("Topics: {topics}  Partitions: {partitions}");
    let rows: Vec<Vec<String>> = c
        .brokers
        .iter()
        .map(|b| {
            vec![
                b.broker_id.to_string(),
                format!("{}:{}", b.host, b.port),
                b.rack.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print!("{}", render_table(&["NODE", "ADDRESS", "RACK"], &rows));
    Ok(())
}

/// One partition's health, from Metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct PartitionHealth {
    topic: String,
    partition: i32,
    leader: Option<i32>,
    leader_epoch: Option<i32>,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline_replicas: Vec<i32>,
    under_replicated: bool,
    offline: bool,
}

fn health(topic: &str, p: &MetadataPartition) -> PartitionHealth {
    let leader = (p.leader_id >= 0).then_some(p.leader_id);
    let offline = leader.is_none_or(|l| p.offline_replicas.contains(&l));
    let mut isr = p.isr_nodes.clone();
    isr.sort_unstable();
    PartitionHealth {
        topic: topic.to_string(),
        partition: p.partition_index,
        leader,
        leader_epoch: (leader.is_some() && p.leader_epoch >= 0).then_some(p.leader_epoch),
        replicas: p.replica_nodes.clone(),
        under_replicated: offline || p.replica_nodes.iter().any(|r| !isr.contains(r)),
        isr,
        offline_replicas: p.offline_replicas.clone(),
        offline,
    }
}

/// Every partition of `md` (or of `only`), sorted by topic and partition.
fn all_health(md: &MetadataResponse) -> anyhow::Result<Vec<PartitionHealth>> {
    let mut out = Vec::new();
    for t in &md.topics {
        let name = t.name.clone().unwrap_or_default();
        check(
            t.error_code,
            &format!("cannot describe topic '{name}'"),
            None,
        )?;
        out.extend(t.partitions.iter().map(|p| health(&name, p)));
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}

fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        "-".into()
    } else {
        ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
    }
}

fn opt(v: Option<i32>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

async fn partitions(
    client: &mut Client,
    out: &Output,
    topic: Option<String>,
    under_replicated: bool,
    offline: bool,
) -> anyhow::Result<()> {
    let md = metadata(client, topic.map(|t| vec![t]), false).await?;
    let list: Vec<PartitionHealth> = all_health(&md)?
        .into_iter()
        .filter(|p| !under_replicated || p.under_replicated)
        .filter(|p| !offline || p.offline)
        .collect();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            let state = if p.offline {
                "offline"
            } else if p.under_replicated {
                "under-replicated"
            } else {
                "ok"
            };
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                opt(p.leader),
                opt(p.leader_epoch),
                ids(&p.replicas),
                ids(&p.isr),
                ids(&p.offline_replicas),
                state.to_string(),
            ]
        })
        .collect();
    out.table(
        &json!({ "partitions": list }),
        &[
            "TOPIC",
            "PARTITION",
            "LEADER",
            "EPOCH",
            "REPLICAS",
            "ISR",
            "OFFLINE",
            "STATE",
        ],
        &rows,
    );
    Ok(())
}

/// Per broker: replicas assigned, partitions led, partitions it is the preferred leader of.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
struct Load {
    replicas: usize,
    leaders: usize,
    preferred: usize,
}

fn loads(brokers: &[i32], partitions: &[PartitionHealth]) -> BTreeMap<i32, Load> {
    let mut out: BTreeMap<i32, Load> = brokers.iter().map(|b| (*b, Load::default())).collect();
    for p in partitions {
        for r in &p.replicas {
            out.entry(*r).or_default().replicas += 1;
        }
        if let Some(first) = p.replicas.first() {
            out.entry(*first).or_default().preferred += 1;
        }
        if let Some(l) = p.leader.filter(|_| !p.offline) {
            out.entry(l).or_default().leaders += 1;
        }
    }
    out
}

async fn nodes(client: &mut Client, out: &Output) -> anyhow::Result<()> {
    let c = describe_cluster(client).await?;
    let md = metadata(client, None, false).await?;
    let ids: Vec<i32> = c.brokers.iter().map(|b| b.broker_id).collect();
    let load = loads(&ids, &all_health(&md)?);
    let mut brokers: Vec<&DescribeClusterBroker> = c.brokers.iter().collect();
    brokers.sort_by_key(|b| b.broker_id);
    let json = json!({
        "cluster_id": c.cluster_id,
        "controller_id": (c.controller_id >= 0).then_some(c.controller_id),
        "brokers": brokers.iter().map(|b| {
            let l = load.get(&b.broker_id).cloned().unwrap_or_default();
            json!({
                "node_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack,
                "controller": b.broker_id == c.controller_id,
                "replicas": l.replicas, "leaders": l.leaders,
            })
        }).collect::<Vec<_>>(),
    });
    let rows: Vec<Vec<String>> = brokers
        .iter()
        .map(|b| {
            let l = load.get(&b.broker_id).cloned().unwrap_or_default();
            vec![
                b.broker_id.to_string(),
                format!("{}:{}", b.host, b.port),
                b.rack.clone().unwrap_or_else(|| "-".into()),
                if b.broker_id == c.controller_id {
                    "yes".into()
                } else {
                    "-".into()
                },
                l.replicas.to_string(),
                l.leaders.to_string(),
            ]
        })
        .collect();
    out.table(
        &json,
        &[
            "NODE",
            "ADDRESS",
            "RACK",
            "CONTROLLER",
            "REPLICAS",
            "LEADERS",
        ],
        &rows,
    );
    Ok(())
}

async fn leaders(client: &mut Client, out: &Output) -> anyhow::Result<()> {
    let c = describe_cluster(client).await?;
    let md = metadata(client, None, false).await?;
    let parts = all_health(&md)?;
    let live: BTreeSet<i32> = c.brokers.iter().map(|b| b.broker_id).collect();
    let live_ids: Vec<i32> = live.iter().copied().collect();
    let load = loads(&live_ids, &parts);
    let not_preferred = parts
        .iter()
        .filter(|p| !p.offline && p.leader.is_some() && p.leader != p.replicas.first().copied())
        .count();
    let leaderless = parts.iter().filter(|p| p.offline).count();
    if out.is_json() {
        println!(
            "{}",
            json!({
                "brokers": load.iter().map(|(id, l)| json!({
                    "node_id": id, "live": live.contains(id),
                    "leaders": l.leaders, "preferred": l.preferred, "replicas": l.replicas,
                })).collect::<Vec<_>>(),
                "not_preferred_leader": not_preferred,
                "offline": leaderless,
            })
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = load
        .iter()
        .map(|(id, l)| {
            vec![
                if live.contains(id) {
                    id.to_string()
                } else {
                    format!("{id} (gone)")
                },
                l.leaders.to_string(),
                l.preferred.to_string(),
                l.replicas.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        render_table(&["NODE", "LEADERS", "PREFERRED", "REPLICAS"], &rows)
    );
    println!(
        "Partitions led by a replica other than the preferred one: {not_preferred}; without a live leader: {leaderless}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(leader: i32, replicas: &[i32], isr: &[i32], offline: &[i32]) -> MetadataPartition {
        MetadataPartition {
            error_code: ErrorCode::NONE,
            partition_index: 0,
            leader_id: leader,
            leader_epoch: 3,
            replica_nodes: replicas.to_vec(),
            isr_nodes: isr.to_vec(),
            offline_replicas: offline.to_vec(),
        }
    }

    #[test]
    fn health_follows_the_isr_and_the_leader() {
        let ok = health("t", &part(1, &[1, 2, 3], &[3, 1, 2], &[]));
        assert!(!ok.under_replicated && !ok.offline);
        assert_eq!(ok.isr, vec![1, 2, 3]);
        let lagging = health("t", &part(1, &[1, 2, 3], &[1, 2], &[3]));
        assert!(lagging.under_replicated && !lagging.offline);
        // The leader is on a broker that is gone (its replicas have not noticed yet).
        let gone = health("t", &part(3, &[1, 2, 3], &[1, 2, 3], &[3]));
        assert!(gone.offline && gone.under_replicated);
        let none = health("t", &part(-1, &[1, 2, 3], &[], &[]));
        assert!(none.offline && none.under_replicated);
        assert_eq!((none.leader, none.leader_epoch), (None, None));
    }

    #[test]
    fn loads_count_leaders_and_preferred_leaders() {
        let ps = vec![
            health("t", &part(1, &[1, 2, 3], &[1, 2, 3], &[])),
            health("t", &part(1, &[2, 3, 1], &[1, 2, 3], &[])),
            health("t", &part(-1, &[3, 1, 2], &[], &[])),
        ];
        let l = loads(&[1, 2, 3, 4], &ps);
        assert_eq!(
            l[&1],
            Load {
                replicas: 3,
                leaders: 2,
                preferred: 1
            }
        );
        assert_eq!(
            l[&2],
            Load {
                replicas: 3,
                leaders: 0,
                preferred: 1
            }
        );
        assert_eq!(l[&3].leaders, 0);
        assert_eq!(l[&4], Load::default());
    }
}
