//! `weir dlq list|show|redrive`: the dead-letter topics of share groups (`docs/queues.md`). A dead
//! letter is an ordinary record whose `weir.dlq.*` headers say where it came from and why; these
//! commands read those headers, and `redrive` produces the records back to their source topics
//! without them.

use clap::Subcommand;
use serde_json::json;
use weir_broker::handlers::records_in_memory;
use weir_broker::share::redrive::{
    target_partition, DeadLetter, RedriveFilter, RedrivePlan, HEADER_PREFIX as DLQ_HEADER_PREFIX,
};
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::records::{decode_batches, encode_batch, CliRecord};
use super::topics::{list_offsets, partitions_of};
use super::{check, Output};

const GROUP_RESOURCE: i8 = 32;
const DLQ_CONFIG: &str = "weir.share.dlq.topic";
const FETCH_MAX_BYTES: i32 = 1 << 20;

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Share groups with a dead-letter topic, and how many records each topic holds.
    List,
    /// Print a dead-letter topic's records: where each came from and why.
    Show {
        topic: String,
        /// Print at most this many.
        #[arg(short = 'n', long = "count")]
        count: Option<usize>,
    },
    /// Produce a dead-letter topic's records back to the topics they came from (without the
    /// weir.dlq.* headers). The dead letters stay where they are.
    Redrive {
        topic: String,
        /// Produce to this topic instead of each record's source topic.
        #[arg(long)]
        to: Option<String>,
        /// Only the dead letters of this share group.
        #[arg(long)]
        group: Option<String>,
        /// Only dead letters with this reason (rejected, delivery-limit, expired).
        #[arg(long)]
        reason: Option<String>,
        /// Print what would be sent, send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(client: &mut Client, out: &Output, command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List => list(client, out).await,
        DlqCommand::Show { topic, count } => show(client, out, &topic, count).await,
        DlqCommand::Redrive {
            topic,
            to,
            group,
            reason,
            dry_run,
        } => redrive(client, out, &topic, to, group, reason, dry_run).await,
    }
}

fn header(r: &CliRecord, name: &str) -> Option<String> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.as_ref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Every record of `topic` up to its end when called, with its partition.
async fn read_all(client: &mut Client, topic: &str) -> anyhow::Result<Vec<(i32, CliRecord)>> {
    let partitions = partitions_of(client, topic, false).await?;
    let start = list_offsets(client, topic, &partitions, -2).await?;
    let end = list_offsets(client, topic, &partitions, -1).await?;
    let mut out = Vec::new();
    for &p in &partitions {
        let (mut at, stop) = (
            start.get(&p).copied().unwrap_or(0),
            end.get(&p).copied().unwrap_or(0),
        );
        while at < stop {
            let r = client
                .call(Request::Fetch(FetchRequest {
                    max_wait_ms: 0,
                    min_bytes: 0,
                    max_bytes: FETCH_MAX_BYTES,
                    topics: vec![FetchTopic {
                        name: topic.to_string(),
                        topic_id: [0; 16],
                        partitions: vec![FetchPartition {
                            partition: p,
                            fetch_offset: at,
                            partition_max_bytes: FETCH_MAX_BYTES,
                            ..FetchPartition::default()
                        }],
                    }],
                    ..FetchRequest::default()
                }))
                .await?;
            let fetch = expect_response!(r, Fetch);
            check(fetch.error_code, "fetch failed", None)?;
            let mut progressed = false;
            for t in fetch.topics {
                for part in t.partitions {
                    check(part.error_code, &format!("cannot read {topic}[{p}]"), None)?;
                    for rec in decode_batches(&records_in_memory(&part.records)?)? {
                        if rec.offset < at || rec.offset >= stop {
                            continue;
                        }
                        at = rec.offset + 1;
                        progressed = true;
                        out.push((p, rec));
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }
    Ok(out)
}

async fn list(client: &mut Client, out: &Output) -> anyhow::Result<()> {
    let r = client
        .call(Request::ListGroups(ListGroupsRequest {
            types_filter: vec!["share".into()],
            ..ListGroupsRequest::default()
        }))
        .await?;
    let groups = expect_response!(r, ListGroups);
    check(groups.error_code, "cannot list groups", None)?;
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for g in groups.groups {
        let r = client
            .call(Request::DescribeConfigs(DescribeConfigsRequest {
                resources: vec![DescribeConfigsResource {
                    resource_type: GROUP_RESOURCE,
                    resource_name: g.group_id.clone(),
                    configuration_keys: Some(vec![DLQ_CONFIG.to_string()]),
                }],
                ..DescribeConfigsRequest::default()
            }))
            .await?;
        let configs = expect_response!(r, DescribeConfigs);
        let topic = configs
            .results
            .into_iter()
            .flat_map(|r| r.configs)
            .find(|c| c.name == DLQ_CONFIG)
            .and_then(|c| c.value)
            .filter(|v| !v.is_empty());
        let Some(topic) = topic else {
            continue;
        };
        let held = match partitions_of(client, &topic, false).await {
            Ok(parts) => {
                let start = list_offsets(client, &topic, &parts, -2).await?;
                let end = list_offsets(client, &topic, &parts, -1).await?;
                parts
                    .iter()
                    .map(|p| end.get(p).copied().unwrap_or(0) - start.get(p).copied().unwrap_or(0))
                    .sum::<i64>()
            }
            // Not created yet: no dead letters.
            Err(_) => 0,
        };
        rows.push(vec![g.group_id.clone(), topic.clone(), held.to_string()]);
        items.push(json!({"group": g.group_id, "topic": topic, "records": held}));
    }
    out.table(
        &json!(items),
        &["GROUP", "DEAD-LETTER TOPIC", "RECORDS"],
        &rows,
    );
    Ok(())
}

async fn show(
    client: &mut Client,
    out: &Output,
    topic: &str,
    count: Option<usize>,
) -> anyhow::Result<()> {
    let records = read_all(client, topic).await?;
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (p, r) in records.iter().take(count.unwrap_or(usize::MAX)) {
        let h = |n: &str| header(r, &format!("{DLQ_HEADER_PREFIX}{n}")).unwrap_or_default();
        let source = format!(
            "{}[{}]@{}",
            h("source.topic"),
            h("source.partition"),
            h("source.offset")
        );
        let value = r
            .value
            .as_ref()
            .map(|v| String::from_utf8_lossy(v).into_owned());
        rows.push(vec![
            format!("{p}:{}", r.offset),
            source.clone(),
            h("group"),
            h("reason"),
            h("delivery.count"),
            h("time.ms"),
            value.clone().unwrap_or_else(|| "null".into()),
        ]);
        items.push(json!({
            "partition": p,
            "offset": r.offset,
            "source_topic": h("source.topic"),
            "source_partition": h("source.partition"),
            "source_offset": h("source.offset"),
            "group": h("group"),
            "reason": h("reason"),
            "delivery_count": h("delivery.count"),
            "time_ms": h("time.ms"),
            "value": value,
        }));
    }
    out.table(
        &json!(items),
        &[
            "AT",
            "SOURCE",
            "GROUP",
            "REASON",
            "DELIVERIES",
            "TIME-MS",
            "VALUE",
        ],
        &rows,
    );
    Ok(())
}

async fn redrive(
    client: &mut Client,
    out: &Output,
    topic: &str,
    to: Option<String>,
    group: Option<String>,
    reason: Option<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let records = read_all(client, topic).await?;
    let mut plan = RedrivePlan::new(RedriveFilter {
        to,
        group,
        reason,
        max_records: None,
    });
    for (_, r) in records {
        plan.offer(DeadLetter {
            key: r.key,
            value: r.value,
            headers: r.headers,
        });
    }
    let skipped = plan.skipped;
    let mut sent = 0usize;
    let mut items = Vec::new();
    for ((target, partition), recs) in plan.batches {
        let count = partitions_of(client, &target, false).await?.len();
        let partition = target_partition(partition, count);
        let n = recs.len();
        if !dry_run {
            let recs: Vec<CliRecord> = recs
                .into_iter()
                .map(|r| CliRecord {
                    offset: 0,
                    timestamp: 0,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                })
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let r = client
                .call(Request::Produce(ProduceRequest {
                    legacy_formats_allowed: false,
                    adds_partitions_to_txn: false,
                    uses_topic_ids: false,
                    transactional_id: None,
                    acks: -1,
                    timeout_ms: 30_000,
                    topics: vec![ProduceTopic {
                        name: target.clone(),
                        topic_id: [0; 16],
                        partitions: vec![ProducePartition {
                            index: partition,
                            records: Some(encode_batch(&recs, now)),
                        }],
                    }],
                }))
                .await?;
            for t in expect_response!(r, Produce).topics {
                for p in t.partitions {
                    check(
                        p.error_code,
                        &format!("cannot produce to {target}[{partition}]"),
                        p.error_message.as_deref(),
                    )?;
                }
            }
        }
        sent += n;
        items.push(json!({"topic": target, "partition": partition, "records": n}));
    }
    let verb = if dry_run { "would redrive" } else { "redrove" };
    let mut text = format!("{verb} {sent} dead letter(s) from {topic}");
    if skipped > 0 {
        text.push_str(&format!(
            "; {skipped} without a weir.dlq.source.topic header skipped (use --to)"
        ));
    }
    out.message(
        &json!({"dry_run": dry_run, "records": sent, "skipped": skipped, "targets": items}),
        &text,
    );
    Ok(())
}
