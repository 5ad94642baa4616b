//! `weir group list|describe|reset-offsets|delete` (describe also shows share groups), and the CLI's own
//! consumer-group membership for `weir consume --group` (join as one member, compute a range
//! assignment when it is the leader, commit after printing).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use clap::Subcommand;
use serde_json::json;
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::topics::{list_offsets, metadata, partitions_of};
use super::{check, Output};

const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
use weir_broker::consumer_protocol::CONSUMER_PROTOCOL_TYPE as PROTOCOL_TYPE;
const ASSIGNOR: &str = "range";

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups.
    List,
    /// Show a group's state, members, committed offsets and lag.
    Describe { group: String },
    /// Move a group's committed offsets (the group must have no active members).
    ResetOffsets {
        group: String,
        /// Topic whose offsets to reset.
        #[arg(long)]
        topic: String,
        /// Only this partition (default: all).
        #[arg(long)]
        partition: Option<i32>,
        /// To the earliest offset.
        #[arg(long, group = "target")]
        to_earliest: bool,
        /// To the latest offset (skip everything).
        #[arg(long, group = "target")]
        to_latest: bool,
        /// To this offset.
        #[arg(long, group = "target")]
        to_offset: Option<i64>,
        /// To the first record at or after this timestamp (ms since the epoch).
        #[arg(long, group = "target", value_name = "MS")]
        to_time: Option<i64>,
    },
    /// Delete a group and its committed offsets (the group must have no active members).
    Delete { group: String },
}

use weir_broker::consumer_protocol::{encode_assignment, encode_subscription};

/// The topics of a subscription (any version: they come first).
fn decode_subscription(b: Bytes) -> anyhow::Result<Vec<String>> {
    weir_broker::consumer_protocol::subscription_topics(&b)
        .ok_or_else(|| anyhow::anyhow!("truncated subscription"))
}

/// Topic to partitions of an assignment (any version: they come first). Empty bytes: nothing.
pub fn decode_assignment(b: Bytes) -> anyhow::Result<BTreeMap<String, Vec<i32>>> {
    weir_broker::consumer_protocol::assignment_partitions(&b)
        .ok_or_else(|| anyhow::anyhow!("truncated assignment"))
}

/// Kafka's range assignor: per topic, subscribed members sorted by id get contiguous ranges,
/// the first `partitions % members` one extra.
fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, Vec<i32>>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, parts) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let per = parts.len() / members.len();
        let extra = parts.len() % members.len();
        let mut at = 0;
        for (i, m) in members.iter().enumerate() {
            let n = per + usize::from(i < extra);
            let slice = parts[at..at + n].to_vec();
            at += n;
            if let Some(a) = out.get_mut(*m) {
                a.insert(topic.clone(), slice);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Group membership for `weir consume --group`
// ---------------------------------------------------------------------------------------

pub struct GroupMember {
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    /// Partitions of `topic` assigned to this member.
    pub assigned: Vec<i32>,
}

impl GroupMember {
    pub async fn join(client: &mut Client, group: &str, topic: &str) -> anyhow::Result<Self> {
        let mut m = Self {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            assigned: Vec::new(),
        };
        m.rejoin(client).await?;
        Ok(m)
    }

    /// Joins (again) and syncs; updates the generation and assignment.
    pub async fn rejoin(&mut self, client: &mut Client) -> anyhow::Result<()> {
        for _ in 0..10 {
            let r = client
                .call(Request::JoinGroup(JoinGroupRequest {
                    group_id: self.group.clone(),
                    session_timeout_ms: SESSION_TIMEOUT_MS,
                    rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
                    member_id: self.member_id.clone(),
                    group_instance_id: None,
                    protocol_type: PROTOCOL_TYPE.into(),
                    protocols: vec![JoinGroupProtocol {
                        name: ASSIGNOR.into(),
                        metadata: encode_subscription(std::slice::from_ref(&self.topic)),
                    }],
                    reason: None,
                }))
                .await?;
            let join = expect_response!(r, JoinGroup);
            match join.error_code {
                ErrorCode::MEMBER_ID_REQUIRED => {
                    self.member_id = join.member_id;
                    continue;
                }
                ErrorCode::UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                ErrorCode::REBALANCE_IN_PROGRESS => continue,
                code => check(code, &format!("cannot join group '{}'", self.group), None)?,
            }
            self.member_id = join.member_id.clone();
            self.generation = join.generation_id;
            let assignments = if join.leader == join.member_id {
                self.leader_assignments(client, &join.members).await?
            } else {
                Vec::new()
            };
            let r = client
                .call(Request::SyncGroup(SyncGroupRequest {
                    group_id: self.group.clone(),
                    generation_id: self.generation,
                    member_id: self.member_id.clone(),
                    group_instance_id: None,
                    protocol_type: Some(PROTOCOL_TYPE.into()),
                    protocol_name: join.protocol_name.clone(),
                    assignments,
                }))
                .await?;
            let sync = expect_response!(r, SyncGroup);
            if sync.error_code == ErrorCode::REBALANCE_IN_PROGRESS {
                continue;
            }
            check(
                sync.error_code,
                &format!("cannot sync with group '{}'", self.group),
                None,
            )?;
            self.assigned = decode_assignment(sync.assignment)
                .map_err(|e| anyhow::anyhow!("malformed assignment from the group leader: {e}"))?
                .remove(&self.topic)
                .unwrap_or_default();
            self.assigned.sort_unstable();
            return Ok(());
        }
        anyhow::bail!(
            "group '{}' kept rebalancing; try again when its other members are stable",
            self.group
        )
    }

    async fn leader_assignments(
        &self,
        client: &mut Client,
        members: &[JoinGroupMember],
    ) -> anyhow::Result<Vec<SyncGroupAssignment>> {
        let mut subscriptions = BTreeMap::new();
        let mut topics = BTreeSet::new();
        for m in members {
            let ts = decode_subscription(m.metadata.clone()).unwrap_or_default();
            topics.extend(ts.iter().cloned());
            subscriptions.insert(m.member_id.clone(), ts);
        }
        let md = metadata(client, Some(topics.into_iter().collect()), false).await?;
        let partitions: BTreeMap<String, Vec<i32>> = md
            .topics
            .into_iter()
            .filter(|t| t.error_code.is_none())
            .filter_map(|t| {
                let mut ps: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
                ps.sort_unstable();
                t.name.map(|n| (n, ps))
            })
            .collect();
        Ok(range_assign(&subscriptions, &partitions)
            .into_iter()
            .map(|(member_id, a)| SyncGroupAssignment {
                member_id,
                assignment: encode_assignment(0, &a),
            })
            .collect())
    }

    /// Sends a heartbeat; `true` if the group is rebalancing and this member must rejoin.
    pub async fn heartbeat(&mut self, client: &mut Client) -> anyhow::Result<bool> {
        let r = client
            .call(Request::Heartbeat(HeartbeatRequest {
                group_id: self.group.clone(),
                generation_id: self.generation,
                member_id: self.member_id.clone(),
                group_instance_id: None,
            }))
            .await?;
        match expect_response!(r, Heartbeat).error_code {
            ErrorCode::NONE => Ok(false),
            ErrorCode::REBALANCE_IN_PROGRESS => Ok(true),
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                self.member_id.clear();
                Ok(true)
            }
            code => {
                check(code, &format!("heartbeat to group '{}'", self.group), None).map(|_| false)
            }
        }
    }

    /// The group's committed offsets for the topic.
    pub async fn committed(&self, client: &mut Client) -> anyhow::Result<BTreeMap<i32, i64>> {
        let offsets = fetch_committed(client, &self.group).await?;
        Ok(offsets
            .into_iter()
            .filter(|((t, _), _)| *t == self.topic)
            .map(|((_, p), o)| (p, o))
            .collect())
    }

    pub async fn commit(
        &self,
        client: &mut Client,
        positions: &BTreeMap<i32, i64>,
    ) -> anyhow::Result<()> {
        commit(
            client,
            &self.group,
            self.generation,
            &self.member_id,
            &self.topic,
            positions,
        )
        .await
    }

    /// Leaves the group so the others rebalance at once (errors ignored: we are exiting).
    pub async fn leave(&self, client: &mut Client) {
        let _ = client
            .call(Request::LeaveGroup(LeaveGroupRequest {
                group_id: self.group.clone(),
                members: vec![LeaveGroupMember {
                    member_id: self.member_id.clone(),
                    group_instance_id: None,
                    reason: Some("weir consume exiting".into()),
                }],
            }))
            .await;
    }
}

async fn commit(
    client: &mut Client,
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    if positions.is_empty() {
        return Ok(());
    }
    let r = client
        .call(Request::OffsetCommit(OffsetCommitRequest {
            group_id: group.to_string(),
            generation_id: generation,
            member_id: member_id.to_string(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitTopic {
                name: topic.to_string(),
                partitions: positions
                    .iter()
                    .map(|(&p, &o)| OffsetCommitPartition {
                        partition_index: p,
                        committed_offset: o,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                    })
                    .collect(),
            }],
        }))
        .await?;
    for t in expect_response!(r, OffsetCommit).topics {
        for p in t.partitions {
            check(
                p.error_code,
                &format!(
                    "cannot commit offsets of group '{group}' for {topic}[{}]",
                    p.partition_index
                ),
                None,
            )?;
        }
    }
    Ok(())
}

/// Every committed offset of `group`: (topic, partition) to offset.
async fn fetch_committed(
    client: &mut Client,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let r = client
        .call(Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: group.to_string(),
                ..OffsetFetchGroup::default()
            }],
            require_stable: false,
        }))
        .await?;
    let mut out = BTreeMap::new();
    for g in expect_response!(r, OffsetFetch).groups {
        check(
            g.error_code,
            &format!("cannot fetch offsets of group '{group}'"),
            None,
        )?;
        for t in g.topics {
            for p in t.partitions {
                if p.error_code.is_none() && p.committed_offset >= 0 {
                    out.insert((t.name.clone(), p.partition_index), p.committed_offset);
                }
            }
        }
    }
    Ok(out)
}

/// A described group and each member's assignment (topic to partitions). Classic groups come
/// from DescribeGroups; consumer-protocol groups (KIP-848), which DescribeGroups v6 reports as
/// "not a classic group", from ConsumerGroupDescribe.
/// A group as the broker describes it.
enum Described {
    /// A classic or consumer group, with each member's assignment (topic to partitions).
    Group(DescribedGroup, Vec<BTreeMap<String, Vec<i32>>>),
    /// A share group (KIP-932).
    Share(ShareGroupDescribedGroup),
}

/// DescribeGroups, or ConsumerGroupDescribe for a consumer group, or ShareGroupDescribe for a
/// share group (each answers `GROUP_ID_NOT_FOUND` for a group of another type).
async fn describe_group(client: &mut Client, group: &str) -> anyhow::Result<Described> {
    let r = client
        .call(Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec![group.to_string()],
            include_authorized_operations: false,
        }))
        .await?;
    let g = expect_response!(r, DescribeGroups)
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the broker did not describe group '{group}'"))?;
    if g.error_code == ErrorCode::GROUP_ID_NOT_FOUND
        && g.error_message
            .as_deref()
            .is_some_and(|m| m.ends_with("is not a classic group."))
    {
        return describe_consumer_group(client, group).await;
    }
    check(
        g.error_code,
        &format!("cannot describe group '{group}'"),
        g.error_message.as_deref(),
    )?;
    let assignments = g
        .members
        .iter()
        .map(|m| decode_assignment(m.member_assignment.clone()).unwrap_or_default())
        .collect();
    Ok(Described::Group(g, assignments))
}

async fn describe_consumer_group(client: &mut Client, group: &str) -> anyhow::Result<Described> {
    let r = client
        .call(Request::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest {
                group_ids: vec![group.to_string()],
                include_authorized_operations: false,
            },
        ))
        .await?;
    let g = expect_response!(r, ConsumerGroupDescribe)
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the broker did not describe group '{group}'"))?;
    if g.error_code == ErrorCode::GROUP_ID_NOT_FOUND {
        return describe_share_group(client, group).await;
    }
    check(
        g.error_code,
        &format!("cannot describe group '{group}'"),
        g.error_message.as_deref(),
    )?;
    let assignments = g
        .members
        .iter()
        .map(|m| {
            m.assignment
                .topic_partitions
                .iter()
                .map(|t| (t.topic_name.clone(), t.partitions.clone()))
                .collect()
        })
        .collect();
    let described = DescribedGroup {
        group_id: g.group_id,
        group_state: g.group_state,
        protocol_type: "consumer".into(),
        protocol_data: g.assignor_name,
        members: g
            .members
            .into_iter()
            .map(|m| DescribedGroupMember {
                member_id: m.member_id,
                group_instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                ..DescribedGroupMember::default()
            })
            .collect(),
        ..DescribedGroup::default()
    };
    Ok(Described::Group(described, assignments))
}

async fn describe_share_group(client: &mut Client, group: &str) -> anyhow::Result<Described> {
    let r = client
        .call(Request::ShareGroupDescribe(ShareGroupDescribeRequest {
            group_ids: vec![group.to_string()],
            include_authorized_operations: false,
        }))
        .await?;
    let g = expect_response!(r, ShareGroupDescribe)
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the broker did not describe group '{group}'"))?;
    check(
        g.error_code,
        &format!("cannot describe group '{group}'"),
        g.error_message.as_deref(),
    )?;
    Ok(Described::Share(g))
}

/// `weir group describe` of a share group: members, and per share-partition the start offset
/// and the lag (DescribeShareGroupOffsets v1, KIP-1226).
async fn print_share_group(
    client: &mut Client,
    out: &Output,
    g: ShareGroupDescribedGroup,
) -> anyhow::Result<()> {
    let r = client
        .call(Request::DescribeShareGroupOffsets(
            DescribeShareGroupOffsetsRequest {
                groups: vec![DescribeShareGroupOffsetsGroup {
                    group_id: g.group_id.clone(),
                    topics: None,
                }],
            },
        ))
        .await?;
    let o = expect_response!(r, DescribeShareGroupOffsets)
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the broker did not describe group '{}'", g.group_id))?;
    check(
        o.error_code,
        &format!("cannot describe the offsets of group '{}'", g.group_id),
        o.error_message.as_deref(),
    )?;
    // (topic, partition, start offset, lag); -1 is "not available" on the wire.
    let mut offsets: Vec<(String, i32, i64, Option<i64>)> = o
        .topics
        .into_iter()
        .flat_map(|t| {
            let name = t.topic_name;
            t.partitions.into_iter().map(move |p| {
                (
                    name.clone(),
                    p.partition_index,
                    p.start_offset,
                    (p.lag >= 0).then_some(p.lag),
                )
            })
        })
        .collect();
    offsets.sort();
    let json = json!({
        "group_id": g.group_id,
        "state": g.group_state,
        "type": "share",
        "group_epoch": g.group_epoch,
        "members": g.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "assignment": m.assignment.topic_partitions.iter()
                .map(|t| (t.topic_name.clone(), t.partitions.clone()))
                .collect::<BTreeMap<_, _>>(),
        })).collect::<Vec<_>>(),
        "offsets": offsets.iter().map(|(t, p, start, lag)| json!({
            "topic": t,
            "partition": p,
            "start_offset": start,
            "lag": lag,
        })).collect::<Vec<_>>(),
    });
    let rows: Vec<Vec<String>> = offsets
        .iter()
        .map(|(t, p, start, lag)| {
            vec![
                t.clone(),
                p.to_string(),
                start.to_string(),
                lag.map_or("-".into(), |l| l.to_string()),
            ]
        })
        .collect();
    if !out.is_json() {
        println!(
            "Share group: {}  State: {}  Members: {}",
            g.group_id,
            g.group_state,
            g.members.len()
        );
    }
    out.table(&json, &["TOPIC", "PARTITION", "START-OFFSET", "LAG"], &rows);
    Ok(())
}

pub async fn run(client: &mut Client, out: &Output, cmd: GroupCommand) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::List => {
            let r = client
                .call(Request::ListGroups(ListGroupsRequest::default()))
                .await?;
            let r = expect_response!(r, ListGroups);
            check(r.error_code, "cannot list groups", None)?;
            let mut groups = r.groups;
            groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            let json = json!({"groups": groups.iter().map(|g| json!({
                "group_id": g.group_id, "state": g.group_state, "protocol_type": g.protocol_type,
                "type": g.group_type,
            })).collect::<Vec<_>>()});
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|g| {
                    vec![
                        g.group_id.clone(),
                        g.group_state.clone(),
                        g.protocol_type.clone(),
                        g.group_type.clone(),
                    ]
                })
                .collect();
            out.table(&json, &["GROUP", "STATE", "PROTOCOL-TYPE", "TYPE"], &rows);
        }
        GroupCommand::Describe { group } => {
            let (g, assignments) = match describe_group(client, &group).await? {
                Described::Group(g, assignments) => (g, assignments),
                Described::Share(g) => return print_share_group(client, out, g).await,
            };
            if g.group_state == "Dead" {
                anyhow::bail!(
                    "group '{group}' does not exist (list groups with `weir group list`)"
                );
            }
            let committed = fetch_committed(client, &group).await?;
            // Who owns which partition, from the members' assignments.
            let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
            for (m, a) in g.members.iter().zip(&assignments) {
                for (t, ps) in a {
                    for p in ps {
                        owner.insert((t.clone(), *p), m.client_id.clone());
                    }
                }
            }
            let topics: BTreeSet<String> = committed.keys().map(|(t, _)| t.clone()).collect();
            let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
            for t in &topics {
                let parts: Vec<i32> = committed
                    .keys()
                    .filter(|(tt, _)| tt == t)
                    .map(|(_, p)| *p)
                    .collect();
                if let Ok(e) = list_offsets(client, t, &parts, -1).await {
                    for (p, o) in e {
                        ends.insert((t.clone(), p), o);
                    }
                }
            }
            let offsets: Vec<(String, i32, i64, Option<i64>)> = committed
                .iter()
                .map(|((t, p), &o)| (t.clone(), *p, o, ends.get(&(t.clone(), *p)).copied()))
                .collect();
            if out.is_json() {
                println!(
                    "{}",
                    json!({
                        "group_id": g.group_id,
                        "state": g.group_state,
                        "protocol_type": g.protocol_type,
                        "protocol": g.protocol_data,
                        "members": g.members.iter().zip(&assignments).map(|(m, a)| json!({
                            "member_id": m.member_id,
                            "client_id": m.client_id,
                            "client_host": m.client_host,
                            "assignment": a,
                        })).collect::<Vec<_>>(),
                        "offsets": offsets.iter().map(|(t, p, o, e)| json!({
                            "topic": t,
                            "partition": p,
                            "committed_offset": o,
                            "log_end_offset": e,
                            "lag": e.map(|e| (e - o).max(0)),
                        })).collect::<Vec<_>>(),
                    })
                );
                return Ok(());
            }
            println!(
                "Group: {}  State: {}  Members: {}",
                g.group_id,
                g.group_state,
                g.members.len()
            );
            let rows: Vec<Vec<String>> = offsets
                .iter()
                .map(|(t, p, o, e)| {
                    vec![
                        t.clone(),
                        p.to_string(),
                        o.to_string(),
                        e.map_or("-".into(), |e| e.to_string()),
                        e.map_or("-".into(), |e| (e - o).max(0).to_string()),
                        owner
                            .get(&(t.clone(), *p))
                            .cloned()
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print!(
                "{}",
                super::output::render_table(
                    &[
                        "TOPIC",
                        "PARTITION",
                        "COMMITTED-OFFSET",
                        "LOG-END-OFFSET",
                        "LAG",
                        "CONSUMER"
                    ],
                    &rows
                )
            );
        }
        GroupCommand::ResetOffsets {
            group,
            topic,
            partition,
            to_earliest,
            to_latest,
            to_offset,
            to_time,
        } => {
            let g = match describe_group(client, &group).await? {
                Described::Group(g, _) => g,
                Described::Share(_) => anyhow::bail!(
                    "'{group}' is a share group: its start offsets are set with \
                     AlterShareGroupOffsets (kafka-share-groups.sh --reset-offsets)"
                ),
            };
            if !g.members.is_empty() {
                anyhow::bail!(
                    "group '{group}' has {} active member(s); stop its consumers before resetting offsets",
                    g.members.len()
                );
            }
            let mut parts = partitions_of(client, &topic, false).await?;
            if let Some(p) = partition {
                anyhow::ensure!(parts.contains(&p), "topic '{topic}' has no partition {p}");
                parts = vec![p];
            }
            let targets: BTreeMap<i32, i64> = match (to_earliest, to_latest, to_offset, to_time) {
                (true, _, _, _) => list_offsets(client, &topic, &parts, -2).await?,
                (_, true, _, _) => list_offsets(client, &topic, &parts, -1).await?,
                (_, _, Some(o), _) => parts.iter().map(|&p| (p, o)).collect(),
                (_, _, _, Some(ts)) => {
                    let latest = list_offsets(client, &topic, &parts, -1).await?;
                    list_offsets(client, &topic, &parts, ts)
                        .await?
                        .into_iter()
                        .map(|(p, o)| {
                            (
                                p,
                                if o < 0 {
                                    latest.get(&p).copied().unwrap_or(0)
                                } else {
                                    o
                                },
                            )
                        })
                        .collect()
                }
                _ => anyhow::bail!(
                    "say where to: --to-earliest, --to-latest, --to-offset N or --to-time MS"
                ),
            };
            commit(client, &group, -1, "", &topic, &targets).await?;
            let rows: Vec<Vec<String>> = targets
                .iter()
                .map(|(p, o)| vec![topic.clone(), p.to_string(), o.to_string()])
                .collect();
            let json = json!({"group_id": group, "offsets": targets.iter().map(|(p, o)| json!({
                "topic": topic, "partition": p, "committed_offset": o,
            })).collect::<Vec<_>>()});
            out.table(&json, &["TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
        }
        GroupCommand::Delete { group } => {
            let r = client
                .call(Request::DeleteGroups(DeleteGroupsRequest {
                    groups: vec![group.clone()],
                }))
                .await?;
            for g in expect_response!(r, DeleteGroups).results {
                check(
                    g.error_code,
                    &format!("cannot delete group '{group}'"),
                    None,
                )?;
            }
            out.message(
                &json!({"deleted": group}),
                &format!("deleted group {group}"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_splits_contiguously() {
        let subs: BTreeMap<String, Vec<String>> = [
            ("a".to_string(), vec!["t".to_string()]),
            ("b".to_string(), vec!["t".to_string(), "u".to_string()]),
        ]
        .into_iter()
        .collect();
        let parts: BTreeMap<String, Vec<i32>> =
            [("t".to_string(), vec![0, 1, 2]), ("u".to_string(), vec![0])]
                .into_iter()
                .collect();
        let a = range_assign(&subs, &parts);
        assert_eq!(a["a"]["t"], vec![0, 1]);
        assert_eq!(a["b"]["t"], vec![2]);
        assert_eq!(a["b"]["u"], vec![0]);
        assert!(!a["a"].contains_key("u"));
        let bytes = encode_assignment(0, &a["b"]);
        assert_eq!(decode_assignment(bytes).expect("decode"), a["b"]);
        assert_eq!(
            decode_subscription(encode_subscription(&["t".to_string()])).expect("decode"),
            vec!["t".to_string()]
        );
    }
}
