//! `weir topic create|list|describe|alter|delete`.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde_json::json;
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::{check, parse_kv, Output};

/// Kafka's resource type for topics in DescribeConfigs / IncrementalAlterConfigs.
const RESOURCE_TOPIC: i8 = 2;
/// Kafka's config source for a default value.
const SOURCE_DEFAULT: i8 = 5;
const TIMEOUT_MS: i32 = 30_000;

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions.
        #[arg(short, long, default_value_t = 1)]
        partitions: i32,
        /// Copies of each partition (default: the cluster's default.replication.factor).
        #[arg(short = 'r', long)]
        replication_factor: Option<i16>,
        /// Topic config, e.g. -c retention.ms=86400000 (repeatable).
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topics.
    List {
        /// Include internal topics (__consumer_offsets).
        #[arg(long)]
        internal: bool,
    },
    /// Show a topic's partitions, offsets and configs.
    Describe { name: String },
    /// Add partitions or change configs.
    Alter {
        name: String,
        /// New total number of partitions (can only grow).
        #[arg(short, long)]
        partitions: Option<i32>,
        /// Set a config (repeatable).
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Reset a config to its default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete a topic and its data.
    Delete { name: String },
}

pub async fn run(client: &mut Client, out: &Output, cmd: TopicCommand) -> anyhow::Result<()> {
    match cmd {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let configs = configs
                .iter()
                .map(|c| {
                    parse_kv(c).map(|(k, v)| ConfigEntry {
                        name: k,
                        value: Some(v),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let r = client
                .call(Request::CreateTopics(CreateTopicsRequest {
                    topics: vec![CreatableTopic {
                        name: name.clone(),
                        num_partitions: partitions,
                        replication_factor: replication_factor.unwrap_or(-1),
                        assignments: Vec::new(),
                        configs,
                    }],
                    timeout_ms: TIMEOUT_MS,
                    validate_only: false,
                }))
                .await?;
            let r = expect_response!(r, CreateTopics);
            for t in &r.topics {
                check(
                    t.error_code,
                    &format!("cannot create topic '{name}'"),
                    t.error_message.as_deref(),
                )?;
            }
            out.message(
                &json!({"created": name, "partitions": partitions}),
                &format!("created topic {name} with {partitions} partition(s)"),
            );
        }
        TopicCommand::List { internal } => {
            let md = metadata(client, None, false).await?;
            let mut topics: Vec<_> = md
                .topics
                .iter()
                .filter(|t| internal || !t.is_internal)
                .filter_map(|t| {
                    t.name
                        .clone()
                        .map(|n| (n, t.partitions.len(), t.is_internal))
                })
                .collect();
            topics.sort();
            let json = json!({"topics": topics.iter().map(|(n, p, i)| json!({"name": n, "partitions": p, "internal": i})).collect::<Vec<_>>()});
            let rows: Vec<Vec<String>> = topics
                .iter()
                .map(|(n, p, _)| vec![n.clone(), p.to_string()])
                .collect();
            out.table(&json, &["TOPIC", "PARTITIONS"], &rows);
        }
        TopicCommand::Describe { name } => describe(client, out, &name).await?,
        TopicCommand::Alter {
            name,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                anyhow::bail!(
                    "nothing to change: give --partitions N, -c key=value or --delete-config key"
                );
            }
            if let Some(count) = partitions {
                let r = client
                    .call(Request::CreatePartitions(CreatePartitionsRequest {
                        topics: vec![CreatePartitionsTopic {
                            name: name.clone(),
                            count,
                            assignments: None,
                        }],
                        timeout_ms: TIMEOUT_MS,
                        validate_only: false,
                    }))
                    .await?;
                for t in &expect_response!(r, CreatePartitions).results {
                    check(
                        t.error_code,
                        &format!("cannot change partitions of '{name}'"),
                        t.error_message.as_deref(),
                    )?;
                }
            }
            let mut alter = Vec::new();
            for c in &configs {
                let (k, v) = parse_kv(c)?;
                alter.push(IncrementalAlterableConfig {
                    name: k,
                    config_operation: 0,
                    value: Some(v),
                });
            }
            for k in &delete_configs {
                alter.push(IncrementalAlterableConfig {
                    name: k.clone(),
                    config_operation: 1,
                    value: None,
                });
            }
            if !alter.is_empty() {
                let r = client
                    .call(Request::IncrementalAlterConfigs(
                        IncrementalAlterConfigsRequest {
                            resources: vec![IncrementalAlterConfigsResource {
                                resource_type: RESOURCE_TOPIC,
                                resource_name: name.clone(),
                                configs: alter,
                            }],
                            validate_only: false,
                        },
                    ))
                    .await?;
                for res in &expect_response!(r, IncrementalAlterConfigs).responses {
                    check(
                        res.error_code,
                        &format!("cannot change configs of '{name}'"),
                        res.error_message.as_deref(),
                    )?;
                }
            }
            out.message(&json!({"altered": name}), &format!("altered topic {name}"));
        }
        TopicCommand::Delete { name } => {
            let r = client
                .call(Request::DeleteTopics(DeleteTopicsRequest {
                    topics: vec![DeleteTopicsTopic {
                        name: Some(name.clone()),
                        topic_id: [0; 16],
                    }],
                    timeout_ms: TIMEOUT_MS,
                }))
                .await?;
            for t in &expect_response!(r, DeleteTopics).responses {
                check(
                    t.error_code,
                    &format!("cannot delete topic '{name}'"),
                    t.error_message.as_deref(),
                )?;
            }
            out.message(&json!({"deleted": name}), &format!("deleted topic {name}"));
        }
    }
    Ok(())
}

/// Metadata for `topics` (`None`: all).
pub async fn metadata(
    client: &mut Client,
    topics: Option<Vec<String>>,
    auto_create: bool,
) -> anyhow::Result<MetadataResponse> {
    let r = client
        .call(Request::Metadata(MetadataRequest {
            topics: topics.map(|ts| {
                ts.into_iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some(n),
                        topic_id: [0; 16],
                    })
                    .collect()
            }),
            allow_auto_topic_creation: auto_create,
            ..MetadataRequest::default()
        }))
        .await?;
    Ok(expect_response!(r, Metadata))
}

/// The partition indexes of `topic`, sorted; an error naming the topic if it does not exist.
pub async fn partitions_of(
    client: &mut Client,
    topic: &str,
    auto_create: bool,
) -> anyhow::Result<Vec<i32>> {
    // As every Kafka client: the answer that auto-creates a topic only says it is on its way
    // (LEADER_NOT_AVAILABLE, no partitions yet), so ask again for a while.
    const CREATION_POLLS: u32 = 100;
    const CREATION_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
    let mut polls = 0;
    let t = loop {
        let md = metadata(client, Some(vec![topic.to_string()]), auto_create).await?;
        let t = md
            .topics
            .into_iter()
            .find(|t| t.name.as_deref() == Some(topic))
            .ok_or_else(|| anyhow::anyhow!("topic '{topic}' is not in the broker's metadata"))?;
        if auto_create && t.error_code == ErrorCode::LEADER_NOT_AVAILABLE && polls < CREATION_POLLS
        {
            polls += 1;
            tokio::time::sleep(CREATION_POLL_INTERVAL).await;
            continue;
        }
        break t;
    };
    check(t.error_code, &format!("topic '{topic}'"), None)?;
    let mut parts: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    parts.sort_unstable();
    Ok(parts)
}

/// ListOffsets for every partition of `topic` at `timestamp` (-2 earliest, -1 latest, or ms).
/// Partitions with no record at or after a timestamp map to -1.
pub async fn list_offsets(
    client: &mut Client,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let r = client
        .call(Request::ListOffsets(ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                name: topic.to_string(),
                partitions: partitions
                    .iter()
                    .map(|&p| ListOffsetsPartition {
                        partition_index: p,
                        current_leader_epoch: -1,
                        timestamp,
                    })
                    .collect(),
            }],
            ..ListOffsetsRequest::default()
        }))
        .await?;
    let mut out = BTreeMap::new();
    for t in expect_response!(r, ListOffsets).topics {
        for p in t.partitions {
            check(
                p.error_code,
                &format!("cannot list offsets of {topic}[{}]", p.partition_index),
                None,
            )?;
            out.insert(p.partition_index, p.offset);
        }
    }
    Ok(out)
}

async fn describe(client: &mut Client, out: &Output, name: &str) -> anyhow::Result<()> {
    let parts = partitions_of(client, name, false).await?;
    let start = list_offsets(client, name, &parts, -2).await?;
    let end = list_offsets(client, name, &parts, -1).await?;
    let r = client
        .call(Request::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.to_string(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        }))
        .await?;
    let mut configs = Vec::new();
    for res in expect_response!(r, DescribeConfigs).results {
        check(
            res.error_code,
            &format!("cannot describe configs of '{name}'"),
            res.error_message.as_deref(),
        )?;
        configs.extend(res.configs);
    }
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    let get = |m: &BTreeMap<i32, i64>, p: i32| m.get(&p).copied().unwrap_or(-1);
    if out.is_json() {
        let json = json!({
            "name": name,
            "partitions": parts.iter().map(|&p| json!({
                "partition": p,
                "log_start_offset": get(&start, p),
                "log_end_offset": get(&end, p),
            })).collect::<Vec<_>>(),
            "configs": configs.iter().map(|c| json!({
                "name": c.name,
                "value": c.value,
                "default": c.config_source == SOURCE_DEFAULT,
            })).collect::<Vec<_>>(),
        });
        println!("{json}");
        return Ok(());
    }
    println!("Topic: {name}  Partitions: {}", parts.len());
    let rows: Vec<Vec<String>> = parts
        .iter()
        .map(|&p| {
            let (s, e) = (get(&start, p), get(&end, p));
            vec![
                p.to_string(),
                s.to_string(),
                e.to_string(),
                (e - s).max(0).to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        super::output::render_table(
            &["PARTITION", "LOG-START-OFFSET", "LOG-END-OFFSET", "RECORDS"],
            &rows
        )
    );
    let overrides: Vec<Vec<String>> = configs
        .iter()
        .filter(|c| c.config_source != SOURCE_DEFAULT)
        .map(|c| vec![c.name.clone(), c.value.clone().unwrap_or_default()])
        .collect();
    if overrides.is_empty() {
        println!("Configs: all defaults");
    } else {
        println!("Configs (non-default):");
        print!(
            "{}",
            super::output::render_table(&["CONFIG", "VALUE"], &overrides)
        );
    }
    Ok(())
}
