//! `weir produce` (stdin lines to records) and `weir consume` (records to stdout lines), the
//! latter optionally as a member of a consumer group.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use serde_json::json;
use weir_broker::handlers::records_in_memory;
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::groups::GroupMember;
use super::records::{decode_batches, encode_batch, next_offset, partition_for_key, CliRecord};
use super::topics::{list_offsets, partitions_of};
use super::{check, parse_kv, Output};

/// Lines per Produce request when stdin is not a terminal.
const DEFAULT_BATCH_LINES: usize = 500;
const FETCH_MAX_WAIT_MS: i32 = 500;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);

#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic to produce to (created if the broker auto-creates topics).
    pub topic: String,
    /// Send every record to this partition (default: by key hash, or round-robin without keys).
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Split each line at the first occurrence of this string into key and value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header added to every record, e.g. -H source=cli (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Lines per request (default 500, or 1 when stdin is a terminal).
    #[arg(long)]
    pub batch_lines: Option<usize>,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to consume.
    pub topic: String,
    /// Consume only this partition (default: all, or the group's assignment).
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Start at the earliest offset (with --group: only where the group has no committed offset).
    #[arg(long, conflicts_with_all = ["offset", "from_time"])]
    pub from_beginning: bool,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition", conflicts_with = "from_time")]
    pub offset: Option<i64>,
    /// Start at the first record with a timestamp at or after this (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub from_time: Option<i64>,
    /// Exit after this many records.
    #[arg(short = 'n', long = "count")]
    pub count: Option<u64>,
    /// Consume as a member of this consumer group, committing offsets after printing.
    #[arg(short, long)]
    pub group: Option<String>,
    /// Print the key, this separator, then the value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Exit once every partition has been read up to its end.
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
}

pub async fn produce(client: &mut Client, out: &Output, args: ProduceArgs) -> anyhow::Result<()> {
    let partitions = partitions_of(client, &args.topic, true).await?;
    if partitions.is_empty() {
        anyhow::bail!("topic '{}' has no partitions", args.topic);
    }
    if let Some(p) = args.partition {
        if !partitions.contains(&p) {
            anyhow::bail!(
                "topic '{}' has no partition {p} (it has {})",
                args.topic,
                partitions.len()
            );
        }
    }
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|h| parse_kv(h).map(|(k, v)| (k, Some(Bytes::from(v)))))
        .collect::<anyhow::Result<_>>()?;
    let stdin = std::io::stdin();
    let batch_lines = args.batch_lines.unwrap_or(if stdin.is_terminal() {
        1
    } else {
        DEFAULT_BATCH_LINES
    });
    let mut pending: Vec<CliRecord> = Vec::new();
    let mut total = 0u64;
    let mut round_robin = 0usize;
    let mut offsets: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut lines = stdin.lock().lines();
    let mut line_no = 0u64;
    loop {
        let line = lines.next().transpose().context("cannot read stdin")?;
        let done = line.is_none();
        if let Some(line) = line {
            line_no += 1;
            let (key, value) = match &args.key_separator {
                Some(sep) => match line.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(Bytes::from(k.to_string())), v.to_string()),
                    None => anyhow::bail!(
                        "line {line_no} has no key separator '{sep}' (every line must be KEY{sep}VALUE)"
                    ),
                },
                None => (None, line),
            };
            pending.push(CliRecord {
                offset: 0,
                timestamp: 0,
                key,
                value: Some(Bytes::from(value)),
                headers: headers.clone(),
            });
        }
        if pending.len() >= batch_lines.max(1) || (done && !pending.is_empty()) {
            let mut by_partition: BTreeMap<i32, Vec<CliRecord>> = BTreeMap::new();
            // Keyless records of one request go to one partition, rotating per request.
            let keyless = partitions[round_robin % partitions.len()];
            round_robin += 1;
            for r in pending.drain(..) {
                let p = match (args.partition, &r.key) {
                    (Some(p), _) => p,
                    (None, Some(k)) => {
                        partitions[usize::try_from(partition_for_key(
                            k,
                            i32::try_from(partitions.len()).unwrap_or(i32::MAX),
                        ))
                        .unwrap_or(0)
                        .min(partitions.len() - 1)]
                    }
                    (None, None) => keyless,
                };
                by_partition.entry(p).or_default().push(r);
            }
            let now = now_ms();
            let request = ProduceRequest {
                legacy_formats_allowed: false,
                adds_partitions_to_txn: false,
                uses_topic_ids: false,
                transactional_id: None,
                acks: -1,
                timeout_ms: 30_000,
                topics: vec![ProduceTopic {
                    name: args.topic.clone(),
                    topic_id: [0; 16],
                    partitions: by_partition
                        .iter()
                        .map(|(&p, rs)| ProducePartition {
                            index: p,
                            records: Some(encode_batch(rs, now)),
                        })
                        .collect(),
                }],
            };
            let r = client.call(Request::Produce(request)).await?;
            for t in expect_response!(r, Produce).topics {
                for p in t.partitions {
                    check(
                        p.error_code,
                        &format!("cannot produce to {}[{}]", args.topic, p.index),
                        p.error_message.as_deref(),
                    )?;
                    let n = by_partition.get(&p.index).map_or(0, Vec::len) as i64;
                    let last = p.base_offset + n - 1;
                    offsets
                        .entry(p.index)
                        .and_modify(|e| e.1 = last)
                        .or_insert((p.base_offset, last));
                    total += n as u64;
                }
            }
        }
        if done {
            break;
        }
    }
    if out.is_json() {
        println!(
            "{}",
            json!({
                "topic": args.topic,
                "records": total,
                "partitions": offsets.iter().map(|(p, (first, last))| json!({
                    "partition": p, "first_offset": first, "last_offset": last,
                })).collect::<Vec<_>>(),
            })
        );
    } else {
        eprintln!("produced {total} record(s) to {}", args.topic);
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where each assigned partition starts.
async fn start_positions(
    client: &mut Client,
    args: &ConsumeArgs,
    partitions: &[i32],
    committed: &BTreeMap<i32, i64>,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut positions = BTreeMap::new();
    if let Some(offset) = args.offset {
        for &p in partitions {
            positions.insert(p, offset);
        }
        return Ok(positions);
    }
    let latest = list_offsets(client, &args.topic, partitions, -1).await?;
    let fallback = match args.from_time {
        Some(ts) => list_offsets(client, &args.topic, partitions, ts).await?,
        None if args.from_beginning => list_offsets(client, &args.topic, partitions, -2).await?,
        None => latest.clone(),
    };
    for &p in partitions {
        let committed = committed.get(&p).copied().filter(|&o| o >= 0);
        let start = match (args.from_time, committed) {
            (None, Some(c)) => c,
            _ => match fallback.get(&p).copied() {
                Some(o) if o >= 0 => o,
                // No record at or after the timestamp: start at the end.
                _ => latest.get(&p).copied().unwrap_or(0),
            },
        };
        positions.insert(p, start);
    }
    Ok(positions)
}

pub async fn consume(client: &mut Client, out: &Output, args: ConsumeArgs) -> anyhow::Result<()> {
    let all = partitions_of(client, &args.topic, false).await?;
    if let Some(p) = args.partition {
        if !all.contains(&p) {
            anyhow::bail!("topic '{}' has no partition {p}", args.topic);
        }
    }
    let mut member = match &args.group {
        Some(g) => Some(GroupMember::join(client, g, &args.topic).await?),
        None => None,
    };
    let mut assigned = assignment(&args, &all, member.as_ref());
    let committed = match &member {
        Some(m) => m.committed(client).await?,
        None => BTreeMap::new(),
    };
    let mut positions = start_positions(client, &args, &assigned, &committed).await?;
    let mut printed = 0u64;
    let mut last_heartbeat = Instant::now();
    let stdout = std::io::stdout();
    let limit_reached = |n: u64| args.count.is_some_and(|c| n >= c);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while !limit_reached(printed) {
        if let Some(m) = member.as_mut() {
            if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
                last_heartbeat = Instant::now();
                if m.heartbeat(client).await? {
                    m.commit(client, &positions).await.ok();
                    m.rejoin(client).await?;
                    assigned = assignment(&args, &all, Some(m));
                    let committed = m.committed(client).await?;
                    positions = start_positions(client, &args, &assigned, &committed).await?;
                }
            }
        }
        if assigned.is_empty() {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = tokio::time::sleep(Duration::from_millis(FETCH_MAX_WAIT_MS as u64)) => {}
            }
            continue;
        }
        let request = FetchRequest {
            max_wait_ms: FETCH_MAX_WAIT_MS,
            min_bytes: 1,
            max_bytes: 16 << 20,
            topics: vec![FetchTopic {
                name: args.topic.clone(),
                topic_id: [0; 16],
                partitions: positions
                    .iter()
                    .map(|(&p, &o)| FetchPartition {
                        partition: p,
                        fetch_offset: o,
                        partition_max_bytes: PARTITION_MAX_BYTES,
                        ..FetchPartition::default()
                    })
                    .collect(),
            }],
            ..FetchRequest::default()
        };
        let response = tokio::select! {
            _ = &mut ctrl_c => break,
            r = client.call(Request::Fetch(request)) => r?,
        };
        let fetch = expect_response!(response, Fetch);
        check(fetch.error_code, "fetch failed", None)?;
        let mut at_end = true;
        let mut lock = stdout.lock();
        for t in fetch.topics {
            for p in t.partitions {
                if p.error_code == ErrorCode::OFFSET_OUT_OF_RANGE {
                    let earliest =
                        list_offsets(client, &args.topic, &[p.partition_index], -2).await?;
                    if let Some(&o) = earliest.get(&p.partition_index) {
                        eprintln!(
                            "offset out of range on partition {}; resetting to {o}",
                            p.partition_index
                        );
                        positions.insert(p.partition_index, o);
                    }
                    at_end = false;
                    continue;
                }
                check(
                    p.error_code,
                    &format!("cannot fetch {}[{}]", args.topic, p.partition_index),
                    None,
                )?;
                let Some(pos) = positions.get_mut(&p.partition_index) else {
                    continue;
                };
                let records = records_in_memory(&p.records)?;
                for r in decode_batches(&records)? {
                    if r.offset < *pos || limit_reached(printed) {
                        continue;
                    }
                    print_record(&mut lock, out, &args, p.partition_index, &r)?;
                    *pos = r.offset + 1;
                    printed += 1;
                }
                // Past what was skipped too (control batches), unless records are left unprinted.
                if !limit_reached(printed) {
                    if let Some(next) = next_offset(&records) {
                        *pos = (*pos).max(next);
                    }
                }
                if *pos < p.high_watermark {
                    at_end = false;
                }
            }
        }
        lock.flush().ok();
        drop(lock);
        if let Some(m) = &member {
            m.commit(client, &positions).await?;
        }
        if args.exit_at_end && at_end {
            break;
        }
    }
    if let Some(m) = &member {
        m.commit(client, &positions).await?;
        m.leave(client).await;
    }
    Ok(())
}

fn assignment(args: &ConsumeArgs, all: &[i32], member: Option<&GroupMember>) -> Vec<i32> {
    let base: Vec<i32> = match member {
        Some(m) => m.assigned.clone(),
        None => all.to_vec(),
    };
    match args.partition {
        Some(p) => base.into_iter().filter(|&q| q == p).collect(),
        None => base,
    }
}

fn print_record(
    w: &mut impl Write,
    out: &Output,
    args: &ConsumeArgs,
    partition: i32,
    r: &CliRecord,
) -> anyhow::Result<()> {
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    if out.is_json() {
        let headers: serde_json::Map<String, serde_json::Value> = r
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(text(v))))
            .collect();
        writeln!(
            w,
            "{}",
            json!({
                "partition": partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "key": text(&r.key),
                "value": text(&r.value),
                "headers": headers,
            })
        )?;
    } else {
        let value = text(&r.value).unwrap_or_else(|| "null".into());
        match &args.key_separator {
            Some(sep) => {
                let key = text(&r.key).unwrap_or_else(|| "null".into());
                writeln!(w, "{key}{sep}{value}")?;
            }
            None => writeln!(w, "{value}")?,
        }
    }
    Ok(())
}
