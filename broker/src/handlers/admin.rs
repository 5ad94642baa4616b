//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs, DeleteRecords. BROKER and GROUP configs are handed to `configs`.

use std::collections::HashSet;
use std::sync::Arc;

use weir_protocol::requests::{
    AlterConfigsRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use weir_protocol::responses::{
    AlterConfigsResourceResponse, AlterConfigsResponse, CreatableTopicConfig, CreatableTopicResult,
    CreatePartitionsResponse, CreatePartitionsTopicResult, CreateTopicsResponse,
    DeletableTopicResult, DeleteRecordsPartitionResult, DeleteRecordsResponse,
    DeleteRecordsTopicResult, DeleteTopicsResponse, DescribeConfigsResponse, DescribeConfigsResult,
    IncrementalAlterConfigsResponse,
};
use weir_protocol::ErrorCode;

use super::produce::storage_error_code;
use super::{blocking, configs};
use crate::broker::Broker;
use crate::topic_admin::{CreateSpec, TopicAdminError};
use crate::topic_config::{ConfigError, TopicConfig};
use crate::topics::TopicError;

use super::access::{
    CONFIG_BROKER as RESOURCE_BROKER, CONFIG_GROUP as RESOURCE_GROUP,
    CONFIG_TOPIC as RESOURCE_TOPIC,
};
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

fn topic_error(e: &TopicError) -> ErrorCode {
    match e {
        TopicError::AlreadyExists(_) => ErrorCode::TOPIC_ALREADY_EXISTS,
        TopicError::Unknown(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        TopicError::InvalidName(_) => ErrorCode::INVALID_TOPIC_EXCEPTION,
        TopicError::InvalidPartitions(_) => ErrorCode::INVALID_PARTITIONS,
        TopicError::Config(_) => ErrorCode::INVALID_CONFIG,
        TopicError::Storage(s) => storage_error_code(s),
        TopicError::Metadata(_) | TopicError::Replica(_) => ErrorCode::KAFKA_STORAGE_ERROR,
    }
}

/// Kafka's error code for a failed topic operation.
pub fn topic_admin_error(e: &TopicAdminError) -> ErrorCode {
    match e {
        TopicAdminError::Topic(t) => topic_error(t),
        TopicAdminError::ReplicationFactor(_) => ErrorCode::INVALID_REPLICATION_FACTOR,
        TopicAdminError::Assignment(_) => ErrorCode::INVALID_REPLICA_ASSIGNMENT,
        // etcd away or contended: retriable, as Kafka's answers while its controller is away.
        TopicAdminError::Store(_) | TopicAdminError::NotApplied => ErrorCode::REQUEST_TIMED_OUT,
    }
}

pub async fn create_topics(broker: &Arc<Broker>, r: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = r
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.clone()))
        .map(|t| t.name.clone())
        .collect();
    let mut results = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        let fail = |code: ErrorCode, message: String| CreatableTopicResult {
            name: t.name.clone(),
            error_code: code,
            error_message: Some(message),
            ..CreatableTopicResult::default()
        };
        if duplicates.contains(&t.name) {
            results.push(fail(
                ErrorCode::INVALID_REQUEST,
                format!("topic '{}' named more than once", t.name),
            ));
            continue;
        }
        let mut assignment: Vec<(i32, Vec<i32>)> = t
            .assignments
            .iter()
            .map(|a| (a.partition_index, a.broker_ids.clone()))
            .collect();
        assignment.sort_by_key(|(i, _)| *i);
        if assignment
            .iter()
            .enumerate()
            .any(|(i, (p, _))| usize::try_from(*p).ok() != Some(i))
        {
            results.push(fail(
                ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                "replica assignments must name partitions 0..n once each".into(),
            ));
            continue;
        }
        let configs: Vec<(String, String)> = t
            .configs
            .iter()
            .filter_map(|c| c.value.clone().map(|v| (c.name.clone(), v)))
            .collect();
        let spec = CreateSpec {
            name: t.name.clone(),
            partitions: t.num_partitions,
            replication_factor: i32::from(t.replication_factor),
            assignment: assignment.into_iter().map(|(_, r)| r).collect(),
            configs,
            internal: false,
            validate_only: r.validate_only,
        };
        let outcome = broker.create_topic(spec).await;
        let partitions = outcome.as_ref().map_or(-1, |c| c.partitions);
        let replication_factor = outcome.as_ref().map_or(-1, |c| c.replication_factor);
        let outcome = outcome.map(|c| (c.config, c.id));
        match outcome {
            Ok((config, topic_id)) => results.push(CreatableTopicResult {
                name: t.name,
                topic_id,
                num_partitions: partitions,
                replication_factor: i16::try_from(replication_factor).unwrap_or(i16::MAX),
                configs: Some(
                    config
                        .entries()
                        .into_iter()
                        .map(|e| CreatableTopicConfig {
                            config_source: configs::topic_source(&e),
                            name: e.name.to_string(),
                            value: Some(e.value),
                            read_only: false,
                            is_sensitive: false,
                        })
                        .collect(),
                ),
                ..CreatableTopicResult::default()
            }),
            Err(e) => results.push(fail(topic_admin_error(&e), e.to_string())),
        }
    }
    CreateTopicsResponse {
        topics: results,
        ..CreateTopicsResponse::default()
    }
}

pub async fn delete_topics(broker: &Arc<Broker>, r: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut responses = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        let topic = match &t.name {
            Some(name) => broker.topics.get(name),
            None => broker.topics.by_id(t.topic_id),
        };
        let Some(topic) = topic else {
            let error_code = if t.name.is_some() {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            } else {
                ErrorCode::UNKNOWN_TOPIC_ID
            };
            responses.push(DeletableTopicResult {
                name: t.name,
                topic_id: t.topic_id,
                error_code,
                error_message: None,
            });
            continue;
        };
        if topic.is_internal {
            responses.push(DeletableTopicResult {
                name: Some(topic.name.clone()),
                topic_id: topic.id,
                error_code: ErrorCode::INVALID_REQUEST,
                error_message: Some("internal topics cannot be deleted".into()),
            });
            continue;
        }
        let (error_code, error_message) = match broker.delete_topic(&topic.name).await {
            Ok(()) => (ErrorCode::NONE, None),
            Err(e) => (topic_admin_error(&e), Some(e.to_string())),
        };
        responses.push(DeletableTopicResult {
            name: Some(topic.name.clone()),
            topic_id: topic.id,
            error_code,
            error_message,
        });
    }
    DeleteTopicsResponse {
        responses,
        ..DeleteTopicsResponse::default()
    }
}

pub async fn create_partitions(
    broker: &Arc<Broker>,
    r: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        let known = broker.topics.get(&t.name);
        let current = known.as_ref().map(|topic| topic.partition_count());
        let outcome = match current {
            None => Err((
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("topic '{}' does not exist", t.name),
            )),
            Some(n) if usize::try_from(t.count).map_or(true, |c| c <= n) => Err((
                ErrorCode::INVALID_PARTITIONS,
                format!(
                    "topic currently has {n} partitions, {} would not increase it",
                    t.count
                ),
            )),
            Some(n) => {
                let assignment = t.assignments.clone().unwrap_or_default();
                // Kafka checks a named assignment also when only validating.
                let checked = match (&t.assignments, &known) {
                    (Some(_), Some(topic)) => {
                        let added = usize::try_from(t.count).unwrap_or(0).saturating_sub(n);
                        let rf = topic.assignment.first().map_or(1, Vec::len);
                        crate::topic_admin::check_added_assignment(&assignment, added, rf, |b| {
                            broker.is_broker_alive(b)
                        })
                    }
                    _ => Ok(()),
                };
                match checked {
                    Err(e) => Err((topic_admin_error(&e), e.to_string())),
                    Ok(()) if r.validate_only => Ok(()),
                    Ok(()) => match broker.add_partitions(&t.name, t.count, assignment).await {
                        Ok(()) => Ok(()),
                        Err(e) => Err((topic_admin_error(&e), e.to_string())),
                    },
                }
            }
        };
        results.push(match outcome {
            Ok(()) => CreatePartitionsTopicResult {
                name: t.name,
                error_code: ErrorCode::NONE,
                error_message: None,
            },
            Err((error_code, message)) => CreatePartitionsTopicResult {
                name: t.name,
                error_code,
                error_message: Some(message),
            },
        });
    }
    CreatePartitionsResponse {
        results,
        ..CreatePartitionsResponse::default()
    }
}

pub fn describe_configs(broker: &Broker, r: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = r
        .resources
        .into_iter()
        .map(|res| {
            let wanted = |name: &str| {
                res.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k == name))
            };
            let mut out = DescribeConfigsResult {
                resource_type: res.resource_type,
                resource_name: res.resource_name.clone(),
                ..DescribeConfigsResult::default()
            };
            match res.resource_type {
                RESOURCE_TOPIC => match broker.topics.get(&res.resource_name) {
                    Some(topic) => {
                        out.configs = topic
                            .config
                            .read()
                            .entries()
                            .into_iter()
                            .filter(|e| wanted(e.name))
                            .map(|e| configs::topic_entry(e, r.include_synonyms))
                            .collect();
                    }
                    None => {
                        out.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
                        out.error_message =
                            Some(format!("topic '{}' does not exist", res.resource_name));
                    }
                },
                RESOURCE_BROKER => {
                    out = configs::describe_broker(broker, &res, r.include_synonyms);
                }
                RESOURCE_GROUP => {
                    out = configs::describe_group(broker, &res, r.include_synonyms);
                }
                _ => {
                    out.error_code = ErrorCode::INVALID_REQUEST;
                    out.error_message = Some(format!(
                        "unsupported resource type {} '{}'",
                        res.resource_type, res.resource_name
                    ));
                }
            }
            out
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..DescribeConfigsResponse::default()
    }
}

fn config_error(e: &TopicError) -> (ErrorCode, String) {
    (topic_error(e), e.to_string())
}

/// Applies `change` to a topic's config (or only validates it), for both AlterConfigs flavours.
/// In a cluster the change is a transaction on the topic's record in etcd, so every broker
/// applies it.
async fn alter_topic(
    broker: &Arc<Broker>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl Fn(&mut TopicConfig) -> Result<(), ConfigError> + Send + 'static,
) -> AlterConfigsResourceResponse {
    let mut out = AlterConfigsResourceResponse {
        resource_type,
        resource_name: name.to_string(),
        ..AlterConfigsResourceResponse::default()
    };
    if resource_type != RESOURCE_TOPIC {
        out.error_code = ErrorCode::INVALID_REQUEST;
        out.error_message = Some(format!("Unknown resource type {resource_type}"));
        return out;
    }
    let result = if validate_only {
        match broker.topics.get(name) {
            Some(t) => {
                let mut candidate = t.config.read().clone();
                change(&mut candidate).map_err(|e| config_error(&TopicError::from(e)))
            }
            None => Err(config_error(&TopicError::Unknown(name.to_string()))),
        }
    } else {
        broker
            .alter_topic_config(name, change)
            .await
            .map_err(|e| match &e {
                TopicAdminError::Topic(t) => config_error(t),
                other => (topic_admin_error(other), other.to_string()),
            })
    };
    if let Err((code, message)) = result {
        out.error_code = code;
        out.error_message = Some(message);
    }
    out
}

/// One resource of AlterConfigs or IncrementalAlterConfigs: BROKER and GROUP resources take
/// `change` (see `configs`), topics `topic_change`.
async fn alter_resource(
    broker: &Arc<Broker>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: configs::Change<'_>,
    topic_change: impl Fn(&mut TopicConfig) -> Result<(), ConfigError> + Send + 'static,
) -> AlterConfigsResourceResponse {
    match resource_type {
        RESOURCE_BROKER => {
            configs::alter_broker(broker, resource_type, name, validate_only, change).await
        }
        RESOURCE_GROUP => {
            configs::alter_group(broker, resource_type, name, validate_only, change).await
        }
        _ => alter_topic(broker, resource_type, name, validate_only, topic_change).await,
    }
}

pub async fn alter_configs(broker: &Arc<Broker>, r: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(r.resources.len());
    for res in r.resources {
        let entries = res.configs.clone();
        let answer = alter_resource(
            broker,
            res.resource_type,
            &res.resource_name,
            r.validate_only,
            configs::Change::Replace(&res.configs),
            move |config| {
                // AlterConfigs replaces the whole set of overrides.
                let mut fresh = TopicConfig::default();
                for c in &entries {
                    if let Some(v) = &c.value {
                        fresh.set(&c.name, v)?;
                    }
                }
                *config = fresh;
                Ok(())
            },
        )
        .await;
        responses.push(answer);
    }
    AlterConfigsResponse {
        responses,
        ..AlterConfigsResponse::default()
    }
}

pub async fn incremental_alter_configs(
    broker: &Arc<Broker>,
    r: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(r.resources.len());
    for res in r.resources {
        let entries = res.configs.clone();
        let answer = alter_resource(
            broker,
            res.resource_type,
            &res.resource_name,
            r.validate_only,
            configs::Change::Incremental(&res.configs),
            move |config| {
                for c in &entries {
                    let value = c.value.clone().unwrap_or_default();
                    match c.config_operation {
                        OP_SET => config.set(&c.name, &value)?,
                        OP_DELETE => config.delete(&c.name)?,
                        OP_APPEND | OP_SUBTRACT => {
                            let current: Vec<String> = config
                                .get(&c.name)
                                .unwrap_or_default()
                                .split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect();
                            let items: Vec<&str> = value
                                .split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .collect();
                            let next: Vec<String> = if c.config_operation == OP_APPEND {
                                let mut n = current.clone();
                                n.extend(
                                    items
                                        .iter()
                                        .filter(|i| !current.iter().any(|c| c == *i))
                                        .map(|s| s.to_string()),
                                );
                                n
                            } else {
                                current
                                    .into_iter()
                                    .filter(|c| !items.contains(&c.as_str()))
                                    .collect()
                            };
                            config.set(&c.name, &next.join(","))?;
                        }
                        _ => {
                            return Err(ConfigError::InvalidValue {
                                name: c.name.clone(),
                                value: format!("operation {}", c.config_operation),
                            })
                        }
                    }
                }
                Ok(())
            },
        )
        .await;
        responses.push(answer);
    }
    IncrementalAlterConfigsResponse {
        responses,
        ..IncrementalAlterConfigsResponse::default()
    }
}

pub async fn delete_records(
    broker: &Arc<Broker>,
    r: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(r.topics.len());
    for t in r.topics {
        // Kafka: a compacted topic that does not also delete keeps its records.
        let compact_only = broker.topics.get(&t.name).is_some_and(|topic| {
            let config = topic.config.read();
            config.compacted() && !config.deletes()
        });
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let mut out = DeleteRecordsPartitionResult {
                partition_index: p.partition_index,
                low_watermark: -1,
                error_code: ErrorCode::NONE,
            };
            match broker.topics.hosted(&t.name, p.partition_index) {
                Err(code) => out.error_code = code,
                Ok(partition) => {
                    // -1 means "up to the high watermark"; nothing above it may go (Kafka:
                    // OFFSET_OUT_OF_RANGE), and only the leader deletes.
                    let hw = partition.high_watermark();
                    let offset = if p.offset == -1 { hw } else { p.offset };
                    if partition.leader_epoch().is_none() {
                        out.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER;
                        partitions.push(out);
                        continue;
                    }
                    if compact_only {
                        out.error_code = ErrorCode::POLICY_VIOLATION;
                        partitions.push(out);
                        continue;
                    }
                    if offset > hw {
                        out.error_code = ErrorCode::OFFSET_OUT_OF_RANGE;
                        partitions.push(out);
                        continue;
                    }
                    let deleted = blocking(move || {
                        let r = partition.log.delete_records_before(offset);
                        partition.note_log_start();
                        r
                    });
                    match deleted.await {
                        Some(Ok(low)) => out.low_watermark = low,
                        Some(Err(e)) => out.error_code = storage_error_code(&e),
                        None => out.error_code = ErrorCode::UNKNOWN_SERVER_ERROR,
                    }
                }
            }
            partitions.push(out);
        }
        topics.push(DeleteRecordsTopicResult {
            name: t.name,
            partitions,
        });
    }
    DeleteRecordsResponse {
        topics,
        ..DeleteRecordsResponse::default()
    }
}
