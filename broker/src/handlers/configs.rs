//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for BROKER (4) and GROUP (32)
//! resources; topics are handled in `admin`. Translates between the wire shapes and
//! `dynamic_config`, which owns the names, rules and storage.

use std::collections::HashSet;
use std::sync::Arc;

use weir_protocol::requests::{
    ConfigEntry, DescribeConfigsResource, IncrementalAlterableConfig, ListConfigResourcesRequest,
};
use weir_protocol::responses::{
    AlterConfigsResourceResponse, DescribeConfigsEntry, DescribeConfigsResult,
    DescribeConfigsSynonym, ListConfigResourcesResponse, ListedConfigResource,
};
use weir_protocol::ErrorCode;

use crate::broker::Broker;
use crate::dynamic_config::{
    self as dc, BrokerLevel, DynamicConfigError, Overrides, BROKER_KEYS, GROUP_KEYS,
};
use crate::topic_config::ValueSource;

/// DescribeConfigs config sources (Kafka's `ConfigSource`).
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_GROUP: i8 = 8;
/// IncrementalAlterConfigs DELETE.
const OP_DELETE: i8 = 1;

fn failed_describe(
    res: &DescribeConfigsResource,
    code: ErrorCode,
    message: String,
) -> DescribeConfigsResult {
    DescribeConfigsResult {
        error_code: code,
        error_message: Some(message),
        resource_type: res.resource_type,
        resource_name: res.resource_name.clone(),
        configs: Vec::new(),
    }
}

/// Which level a BROKER resource name addresses, as Kafka reads it: `""` is the cluster-wide
/// default, otherwise it must be this broker's id.
fn broker_level(broker: &Broker, name: &str) -> Result<BrokerLevel, String> {
    if name.is_empty() {
        return Ok(BrokerLevel::ClusterDefault);
    }
    let id: i32 = name
        .parse()
        .map_err(|_| format!("Broker id must be an integer, but it is: {name}"))?;
    if id != broker.config.node_id {
        return Err(format!(
            "Unexpected broker id, expected {} or empty string, but received {name}",
            broker.config.node_id
        ));
    }
    Ok(BrokerLevel::ThisBroker)
}

/// One DescribeConfigs entry: its value and where it comes from, and, when asked, its synonyms
/// as (name, value, source), the one in force first.
fn described(
    name: &str,
    (value, config_source): (Option<String>, i8),
    synonyms: Vec<(String, Option<String>, i8)>,
    read_only: bool,
    config_type: i8,
    include_synonyms: bool,
) -> DescribeConfigsEntry {
    DescribeConfigsEntry {
        name: name.to_string(),
        value,
        read_only,
        config_source,
        is_sensitive: false,
        synonyms: if include_synonyms {
            synonyms
                .into_iter()
                .map(|(name, value, source)| DescribeConfigsSynonym {
                    name,
                    value,
                    source,
                })
                .collect()
        } else {
            Vec::new()
        },
        config_type,
        documentation: None,
    }
}

/// A BROKER or GROUP config whose synonyms all carry its own name: the first layer is in force.
fn entry(
    name: &str,
    layers: Vec<(Option<String>, i8)>,
    read_only: bool,
    config_type: i8,
    include_synonyms: bool,
) -> DescribeConfigsEntry {
    let in_force = layers.first().cloned().unwrap_or((None, SOURCE_DEFAULT));
    let synonyms = layers
        .into_iter()
        .map(|(value, source)| (name.to_string(), value, source))
        .collect();
    described(
        name,
        in_force,
        synonyms,
        read_only,
        config_type,
        include_synonyms,
    )
}

/// DescribeConfigs' source of a broker level.
fn level_source(level: BrokerLevel) -> i8 {
    match level {
        BrokerLevel::ThisBroker => SOURCE_DYNAMIC_BROKER,
        BrokerLevel::ClusterDefault => SOURCE_DYNAMIC_DEFAULT_BROKER,
    }
}

/// Where a topic config's value comes from: the topic's override, a broker-level synonym, or
/// Kafka's default.
pub(super) fn topic_source(e: &crate::topic_config::ConfigEntry) -> i8 {
    match e.source {
        ValueSource::Topic => SOURCE_DYNAMIC_TOPIC,
        ValueSource::Broker(level) => level_source(level),
        ValueSource::Default => SOURCE_DEFAULT,
    }
}

/// One config of a TOPIC resource. Its synonyms are Kafka's: the topic's override, the broker
/// synonyms set at a broker level (this broker's, then the cluster-wide default), then the broker
/// config that sets the default where Kafka gives that config a default of its own (a broker
/// config whose default comes from another, as `log.retention.ms` from `log.retention.hours`, is
/// left out, as Kafka's synonym list leaves it).
pub fn topic_entry(
    e: crate::topic_config::ConfigEntry,
    include_synonyms: bool,
) -> DescribeConfigsEntry {
    let source = topic_source(&e);
    let mut synonyms = Vec::new();
    if e.source == ValueSource::Topic {
        synonyms.push((
            e.name.to_string(),
            Some(e.value.clone()),
            SOURCE_DYNAMIC_TOPIC,
        ));
    }
    for b in e.broker_values {
        synonyms.push((b.name.to_string(), Some(b.value), level_source(b.level)));
    }
    if let Some((name, default)) = e
        .broker_synonym
        .and_then(|b| Some((b, dc::broker_key(b)?.default?)))
    {
        synonyms.push((name.to_string(), Some(default.to_string()), SOURCE_DEFAULT));
    }
    described(
        e.name,
        (Some(e.value), source),
        synonyms,
        false,
        e.config_type,
        include_synonyms,
    )
}

/// A BROKER resource: with the broker's id, every broker config with where its value comes from
/// (dynamic for this broker, dynamic cluster default, Weir's static configuration, Kafka's
/// default); with `""`, only the cluster-wide dynamic defaults that are set (as Kafka).
pub fn describe_broker(
    broker: &Broker,
    res: &DescribeConfigsResource,
    include_synonyms: bool,
) -> DescribeConfigsResult {
    let level = match broker_level(broker, &res.resource_name) {
        Ok(level) => level,
        Err(message) => return failed_describe(res, ErrorCode::INVALID_REQUEST, message),
    };
    let wanted = |name: &str| {
        res.configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k == name))
    };
    let config_type = |name: &str| dc::broker_key(name).map_or(0, |k| k.kind.config_type());
    let cluster = broker.broker_overrides(BrokerLevel::ClusterDefault);
    let configs = match level {
        BrokerLevel::ClusterDefault => cluster
            .iter()
            .filter(|(name, _)| wanted(name))
            .map(|(name, value)| {
                let dynamic = dc::broker_key(name).is_some_and(|k| k.dynamic);
                entry(
                    name,
                    vec![(Some(value.clone()), SOURCE_DYNAMIC_DEFAULT_BROKER)],
                    !dynamic,
                    config_type(name),
                    include_synonyms,
                )
            })
            .collect(),
        BrokerLevel::ThisBroker => {
            let own = broker.broker_overrides(BrokerLevel::ThisBroker);
            let mut names: Vec<&str> = BROKER_KEYS.iter().map(|k| k.name).collect();
            let custom: Vec<&str> = own
                .keys()
                .chain(cluster.keys())
                .map(String::as_str)
                .filter(|n| dc::broker_key(n).is_none())
                .collect();
            names.extend(custom);
            names.sort_unstable();
            names.dedup();
            names
                .into_iter()
                .filter(|name| wanted(name))
                .map(|name| {
                    let key = dc::broker_key(name);
                    let default = key.and_then(|k| k.default);
                    let mut layers = Vec::new();
                    if let Some(v) = own.get(name) {
                        layers.push((Some(v.clone()), SOURCE_DYNAMIC_BROKER));
                    }
                    if let Some(v) = cluster.get(name) {
                        layers.push((Some(v.clone()), SOURCE_DYNAMIC_DEFAULT_BROKER));
                    }
                    match dc::static_value(&broker.config, name) {
                        Some(v) if Some(v.as_str()) != default => {
                            layers.push((Some(v), SOURCE_STATIC_BROKER));
                        }
                        _ => {}
                    }
                    if key.is_some() {
                        layers.push((default.map(String::from), SOURCE_DEFAULT));
                    }
                    // Kafka marks everything outside its dynamic set read-only, custom configs
                    // included.
                    let read_only = !key.is_some_and(|k| k.dynamic);
                    entry(name, layers, read_only, config_type(name), include_synonyms)
                })
                .collect()
        }
    };
    DescribeConfigsResult {
        error_code: ErrorCode::NONE,
        error_message: None,
        resource_type: res.resource_type,
        resource_name: res.resource_name.clone(),
        configs,
    }
}

/// A GROUP resource: every group config, set for the group or Kafka's default. The group need
/// not exist.
pub fn describe_group(
    broker: &Broker,
    res: &DescribeConfigsResource,
    include_synonyms: bool,
) -> DescribeConfigsResult {
    if res.resource_name.is_empty() {
        return failed_describe(
            res,
            ErrorCode::INVALID_REQUEST,
            "Group name must not be empty".into(),
        );
    }
    let wanted = |name: &str| {
        res.configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k == name))
    };
    let set = broker.group_overrides(&res.resource_name);
    let configs = GROUP_KEYS
        .iter()
        .filter(|k| wanted(k.name))
        .map(|k| {
            let layer = match set.get(k.name) {
                Some(v) => (Some(v.clone()), SOURCE_GROUP),
                None => (k.default.map(String::from), SOURCE_DEFAULT),
            };
            entry(
                k.name,
                vec![layer],
                false,
                k.kind.config_type(),
                include_synonyms,
            )
        })
        .collect();
    DescribeConfigsResult {
        error_code: ErrorCode::NONE,
        error_message: None,
        resource_type: res.resource_type,
        resource_name: res.resource_name.clone(),
        configs,
    }
}

/// A change to one resource's set of overrides, from either AlterConfigs flavour.
pub enum Change<'a> {
    /// AlterConfigs: the given configs replace the whole set.
    Replace(&'a [ConfigEntry]),
    /// IncrementalAlterConfigs: SET, DELETE, APPEND, SUBTRACT one by one.
    Incremental(&'a [IncrementalAlterableConfig]),
}

impl Change<'_> {
    /// Kafka's checks of the request itself: each name once, and a value for everything but
    /// DELETE.
    fn check(&self) -> Result<(), String> {
        let (names, missing): (Vec<&str>, Vec<&str>) = match self {
            Change::Replace(c) => (
                c.iter().map(|c| c.name.as_str()).collect(),
                c.iter()
                    .filter(|c| c.value.is_none())
                    .map(|c| c.name.as_str())
                    .collect(),
            ),
            Change::Incremental(c) => (
                c.iter().map(|c| c.name.as_str()).collect(),
                c.iter()
                    .filter(|c| c.config_operation != OP_DELETE && c.value.is_none())
                    .map(|c| c.name.as_str())
                    .collect(),
            ),
        };
        let mut seen = HashSet::new();
        if !names.iter().all(|n| seen.insert(*n)) {
            return Err("Error due to duplicate config keys".into());
        }
        if !missing.is_empty() {
            return Err(format!(
                "Null value not supported for : {}",
                missing.join(", ")
            ));
        }
        Ok(())
    }

    fn apply(&self, set: &mut Overrides, group: bool) -> Result<(), DynamicConfigError> {
        match self {
            Change::Replace(configs) => {
                *set = configs
                    .iter()
                    .filter_map(|c| c.value.clone().map(|v| (c.name.clone(), v)))
                    .collect();
            }
            Change::Incremental(configs) => {
                for c in configs.iter() {
                    if !(0..=3).contains(&c.config_operation) {
                        return Err(DynamicConfigError::InvalidRequest(format!(
                            "Unknown operations type {}",
                            c.config_operation
                        )));
                    }
                    dc::apply_operation(
                        set,
                        &c.name,
                        c.config_operation,
                        c.value.as_deref(),
                        dc::default_of(&c.name, group),
                        dc::is_list(&c.name, group),
                    )
                    .map_err(DynamicConfigError::InvalidConfig)?;
                }
            }
        }
        Ok(())
    }
}

fn alter_response(
    resource_type: i8,
    name: &str,
    result: Result<(), DynamicConfigError>,
) -> AlterConfigsResourceResponse {
    let (error_code, error_message) = match result {
        Ok(()) => (ErrorCode::NONE, None),
        Err(e @ DynamicConfigError::InvalidRequest(_)) => {
            (ErrorCode::INVALID_REQUEST, Some(e.to_string()))
        }
        Err(e @ DynamicConfigError::InvalidConfig(_)) => {
            (ErrorCode::INVALID_CONFIG, Some(e.to_string()))
        }
        Err(e @ DynamicConfigError::Persist(_)) => {
            tracing::error!(error = %e, "could not store dynamic configs");
            (ErrorCode::KAFKA_STORAGE_ERROR, Some(e.to_string()))
        }
        // etcd away or contended: retriable, as Kafka answers while its controller is away.
        Err(e @ DynamicConfigError::Unavailable(_)) => {
            (ErrorCode::REQUEST_TIMED_OUT, Some(e.to_string()))
        }
    };
    AlterConfigsResourceResponse {
        error_code,
        error_message,
        resource_type,
        resource_name: name.to_string(),
    }
}

/// Alters a BROKER resource (this broker, or the cluster default with `""`).
pub async fn alter_broker(
    broker: &Arc<Broker>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: Change<'_>,
) -> AlterConfigsResourceResponse {
    let result = match broker_level(broker, name).and_then(|level| change.check().map(|()| level)) {
        Ok(level) => {
            broker
                .alter_broker_overrides(level, validate_only, |set| change.apply(set, false))
                .await
        }
        Err(message) => Err(DynamicConfigError::InvalidRequest(message)),
    };
    if result.is_ok() && !validate_only {
        tracing::info!(
            broker = name,
            "dynamic broker configs stored; Weir reports them but does not apply them (see docs/configuration.md)"
        );
    }
    alter_response(resource_type, name, result)
}

/// Alters a GROUP resource.
pub async fn alter_group(
    broker: &Arc<Broker>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: Change<'_>,
) -> AlterConfigsResourceResponse {
    let result = match change.check() {
        Ok(()) => {
            broker
                .alter_group_overrides(name, validate_only, |set| change.apply(set, true))
                .await
        }
        Err(message) => Err(DynamicConfigError::InvalidRequest(message)),
    };
    alter_response(resource_type, name, result)
}

/// ListConfigResources (KIP-1142; v0 was KIP-714's ListClientMetricsResources): the names of the
/// config resources of the asked types (none asked: all of them), as Kafka lists them: topics,
/// brokers and broker loggers (the live brokers' ids), groups of every type, client metrics
/// (Weir has none). v0 lists client metrics only. Needs DESCRIBE_CONFIGS on the cluster.
pub fn list_config_resources(
    broker: &Broker,
    az: &crate::authz::Authz,
    version: i16,
    r: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    use super::access::{
        CONFIG_BROKER, CONFIG_BROKER_LOGGER, CONFIG_CLIENT_METRICS, CONFIG_GROUP, CONFIG_TOPIC,
    };
    const LISTED: [i8; 5] = [
        CONFIG_TOPIC,
        CONFIG_BROKER,
        CONFIG_BROKER_LOGGER,
        CONFIG_CLIENT_METRICS,
        CONFIG_GROUP,
    ];
    if !az.allows_cluster(crate::authz::AclOperation::DescribeConfigs) {
        return ListConfigResourcesResponse {
            error_code: ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            ..ListConfigResourcesResponse::default()
        };
    }
    let types: Vec<i8> = if version == 0 {
        vec![CONFIG_CLIENT_METRICS]
    } else if r.resource_types.is_empty() {
        LISTED.to_vec()
    } else {
        r.resource_types
    };
    if types.iter().any(|t| !LISTED.contains(t)) {
        return ListConfigResourcesResponse {
            error_code: ErrorCode::UNSUPPORTED_VERSION,
            ..ListConfigResourcesResponse::default()
        };
    }
    let mut out = Vec::new();
    let mut add = |resource_type: i8, names: Vec<String>| {
        out.extend(names.into_iter().map(|resource_name| ListedConfigResource {
            resource_name,
            resource_type,
        }));
    };
    for t in types {
        match t {
            CONFIG_TOPIC => add(
                t,
                broker.topics.all().iter().map(|x| x.name.clone()).collect(),
            ),
            CONFIG_BROKER | CONFIG_BROKER_LOGGER => add(
                t,
                broker
                    .live_brokers()
                    .iter()
                    .map(|b| b.id.to_string())
                    .collect(),
            ),
            CONFIG_GROUP => {
                let mut groups: Vec<String> = broker
                    .groups
                    .lock()
                    .list()
                    .into_iter()
                    .map(|(id, _, _)| id)
                    .collect();
                groups.extend(broker.consumer_groups.lock().group_ids());
                groups.extend(
                    broker
                        .share
                        .groups
                        .lock()
                        .list()
                        .into_iter()
                        .map(|(id, _)| id),
                );
                groups.sort();
                groups.dedup();
                add(t, groups);
            }
            // Client metrics subscriptions (KIP-714) are not kept by Weir.
            _ => {}
        }
    }
    ListConfigResourcesResponse {
        config_resources: out,
        ..ListConfigResourcesResponse::default()
    }
}
