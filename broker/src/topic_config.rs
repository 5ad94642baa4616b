//! Topic-level configuration: the Kafka names, their defaults, validation, and the translation to the
//! storage engine's `LogConfig`.
//!
//! Owns the table of known topic config keys. Values are kept as the strings clients sent (as Kafka
//! does in its metadata), validated on the way in. A config the topic does not set takes the
//! broker-level value that stands for it (Kafka's `log.*` synonyms, set as dynamic broker
//! configs: [`TopicDefaults`]), else Kafka's default. Must not know about sockets or wire types.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::dynamic_config::BrokerLevel;

use weir_storage::{CompactionConfig, FsyncPolicy, LogConfig};

/// How a config value is validated.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A signed 64-bit integer at least `min`.
    Long {
        min: i64,
    },
    /// A signed 32-bit integer at least `min`.
    Int {
        min: i32,
    },
    Ratio,
    Bool,
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose items are each one of these.
    ListOf(&'static [&'static str]),
    /// A Kafka release as `message.format.version` names it: `0.10.2`, `2.8-IV1`, `3.0`.
    Version,
    /// Kafka's replication throttle lists: empty, `*`, or `partition:broker,...`.
    ThrottledReplicas,
}

impl Kind {
    /// Kafka's DescribeConfigs config type.
    fn config_type(self) -> i8 {
        match self {
            Kind::Bool => 1,
            Kind::OneOf(_) | Kind::Version => 2,
            Kind::ThrottledReplicas => 7,
            Kind::Int { .. } => 3,
            Kind::Long { .. } => 5,
            Kind::Ratio => 6,
            Kind::ListOf(_) => 7,
        }
    }
}

/// One known topic config: its Kafka name, Kafka's default, and how it is checked.
struct Known {
    name: &'static str,
    /// The broker config that sets its default in Kafka (`ServerTopicConfigSynonyms`), which
    /// DescribeConfigs names as its synonym.
    broker: Option<&'static str>,
    default: &'static str,
    kind: Kind,
}

const KNOWN: &[Known] = &[
    Known {
        name: "cleanup.policy",
        broker: Some("log.cleanup.policy"),
        default: "delete",
        kind: Kind::ListOf(&["delete", "compact"]),
    },
    Known {
        name: "compression.type",
        broker: Some("compression.type"),
        default: "producer",
        kind: Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    },
    Known {
        name: "delete.retention.ms",
        broker: Some("log.cleaner.delete.retention.ms"),
        default: "86400000",
        kind: Kind::Long { min: 0 },
    },
    Known {
        name: "file.delete.delay.ms",
        broker: Some("log.segment.delete.delay.ms"),
        default: "60000",
        kind: Kind::Long { min: 0 },
    },
    Known {
        name: "flush.messages",
        broker: Some("log.flush.interval.messages"),
        default: "9223372036854775807",
        kind: Kind::Long { min: 1 },
    },
    Known {
        name: "flush.ms",
        broker: Some("log.flush.interval.ms"),
        default: "9223372036854775807",
        kind: Kind::Long { min: 0 },
    },
    // Replication throttles (kafka-reassign-partitions.sh sets them): accepted and stored;
    // Weir's replication is not throttled.
    Known {
        name: "follower.replication.throttled.replicas",
        broker: None,
        default: "",
        kind: Kind::ThrottledReplicas,
    },
    Known {
        name: "index.interval.bytes",
        broker: Some("log.index.interval.bytes"),
        default: "4096",
        kind: Kind::Int { min: 0 },
    },
    Known {
        name: "leader.replication.throttled.replicas",
        broker: None,
        default: "",
        kind: Kind::ThrottledReplicas,
    },
    Known {
        name: "max.compaction.lag.ms",
        broker: Some("log.cleaner.max.compaction.lag.ms"),
        default: "9223372036854775807",
        kind: Kind::Long { min: 1 },
    },
    Known {
        name: "max.message.bytes",
        broker: Some("message.max.bytes"),
        default: "1048588",
        kind: Kind::Int { min: 0 },
    },
    Known {
        name: "message.downconversion.enable",
        broker: Some("log.message.downconversion.enable"),
        default: "true",
        kind: Kind::Bool,
    },
    // Deprecated in Kafka 3.x and ignored there (the format is always v2 from IBP 3.0 on); kept so
    // that configs written for older brokers are accepted.
    Known {
        name: "message.format.version",
        broker: Some("log.message.format.version"),
        default: "3.0-IV1",
        kind: Kind::Version,
    },
    // How far a CreateTime record's timestamp may lie behind or ahead of the broker's clock
    // (Kafka 3.6+; 4.0 made "ahead" one hour by default).
    Known {
        name: TIMESTAMP_AFTER_MAX_MS,
        broker: Some("log.message.timestamp.after.max.ms"),
        default: "3600000",
        kind: Kind::Long { min: 0 },
    },
    Known {
        name: TIMESTAMP_BEFORE_MAX_MS,
        broker: Some("log.message.timestamp.before.max.ms"),
        default: "9223372036854775807",
        kind: Kind::Long { min: 0 },
    },
    // Deprecated in Kafka 3.6 and gone in 4.0; kept so that configs written for older brokers are
    // accepted. As in 3.6-3.9 it stands for whichever of the two above is not set.
    Known {
        name: TIMESTAMP_DIFFERENCE_MAX_MS,
        broker: Some("log.message.timestamp.difference.max.ms"),
        default: "9223372036854775807",
        kind: Kind::Long { min: 0 },
    },
    Known {
        name: "message.timestamp.type",
        broker: Some("log.message.timestamp.type"),
        default: "CreateTime",
        kind: Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    },
    Known {
        name: "min.cleanable.dirty.ratio",
        broker: Some("log.cleaner.min.cleanable.ratio"),
        default: "0.5",
        kind: Kind::Ratio,
    },
    Known {
        name: "min.compaction.lag.ms",
        broker: Some("log.cleaner.min.compaction.lag.ms"),
        default: "0",
        kind: Kind::Long { min: 0 },
    },
    Known {
        name: "min.insync.replicas",
        broker: Some("min.insync.replicas"),
        default: "1",
        kind: Kind::Int { min: 1 },
    },
    Known {
        name: "preallocate",
        broker: Some("log.preallocate"),
        default: "false",
        kind: Kind::Bool,
    },
    Known {
        name: "retention.bytes",
        broker: Some("log.retention.bytes"),
        default: "-1",
        kind: Kind::Long { min: -1 },
    },
    Known {
        name: "retention.ms",
        broker: Some("log.retention.ms"),
        default: "604800000",
        kind: Kind::Long { min: -1 },
    },
    Known {
        name: "segment.bytes",
        broker: Some("log.segment.bytes"),
        default: "1073741824",
        kind: Kind::Int { min: 14 },
    },
    Known {
        name: "segment.index.bytes",
        broker: Some("log.index.size.max.bytes"),
        default: "10485760",
        kind: Kind::Int { min: 4 },
    },
    Known {
        name: "segment.jitter.ms",
        broker: Some("log.roll.jitter.ms"),
        default: "0",
        kind: Kind::Long { min: 0 },
    },
    Known {
        name: "segment.ms",
        broker: Some("log.roll.ms"),
        default: "604800000",
        kind: Kind::Long { min: 1 },
    },
    Known {
        name: "unclean.leader.election.enable",
        broker: Some("unclean.leader.election.enable"),
        default: "false",
        kind: Kind::Bool,
    },
    // Weir's queue extensions (docs/queues.md).
    Known {
        name: DELIVERY_DELAY_MS,
        broker: None,
        default: "0",
        kind: Kind::Long { min: 0 },
    },
    Known {
        name: MESSAGE_TTL_MS,
        broker: None,
        default: "0",
        kind: Kind::Long { min: 0 },
    },
];

const TIMESTAMP_AFTER_MAX_MS: &str = "message.timestamp.after.max.ms";
const TIMESTAMP_BEFORE_MAX_MS: &str = "message.timestamp.before.max.ms";
const TIMESTAMP_DIFFERENCE_MAX_MS: &str = "message.timestamp.difference.max.ms";

/// The record timestamps a CreateTime topic accepts, relative to the broker's clock when the
/// batch arrives (Kafka's `message.timestamp.before.max.ms` / `after.max.ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampWindow {
    pub before_max_ms: i64,
    pub after_max_ms: i64,
}

impl TimestampWindow {
    /// The accepted range `[now - before, now + after]`, saturating.
    pub fn range_at(&self, now_ms: i64) -> (i64, i64) {
        (
            now_ms.saturating_sub(self.before_max_ms),
            now_ms.saturating_add(self.after_max_ms),
        )
    }
}

/// Weir: consumers get a record only this many ms after its timestamp (0: at once).
pub const DELIVERY_DELAY_MS: &str = "weir.delivery.delay.ms";
/// Weir: share groups do not deliver a record this many ms after its timestamp (0: never expires).
pub const MESSAGE_TTL_MS: &str = "weir.message.ttl.ms";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown topic config '{0}'")]
    Unknown(String),
    #[error("invalid value '{value}' for topic config '{name}'")]
    InvalidValue { name: String, value: String },
}

/// The overrides a topic carries, and the broker-level defaults in force for the rest.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
    /// Not part of the topic's metadata: the broker's, attached by the registry.
    #[serde(skip)]
    defaults: Arc<TopicDefaults>,
}

/// Two configs are the same when the topic sets the same values (the metadata is the overrides).
impl PartialEq for TopicConfig {
    fn eq(&self, other: &Self) -> bool {
        self.overrides == other.overrides
    }
}

impl Eq for TopicConfig {}

/// One broker-level value of a topic config's synonym: `name` set to `value` at `level`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerValue {
    pub name: &'static str,
    pub value: String,
    pub level: BrokerLevel,
    /// `value` in the topic config's unit (`log.retention.hours` is counted in hours).
    topic_value: String,
}

/// The broker-level values that stand for topic configs a topic does not set. Kafka builds a
/// log's config from the broker's (`log.retention.ms`, `log.cleanup.policy`, `message.max.bytes`,
/// ...) and lays the topic's overrides over it; dynamic broker configs change it for every topic
/// at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicDefaults {
    /// By topic config: every broker value of its synonyms, the one in force first.
    by_config: BTreeMap<&'static str, Vec<BrokerValue>>,
}

/// A topic config's broker synonyms, in Kafka's order of precedence, each with the factor that
/// turns its unit into the topic config's.
fn broker_synonyms(k: &Known) -> Vec<(&'static str, i64)> {
    match k.name {
        "retention.ms" => vec![
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ],
        "segment.ms" => vec![("log.roll.ms", 1), ("log.roll.hours", 3_600_000)],
        "segment.jitter.ms" => vec![
            ("log.roll.jitter.ms", 1),
            ("log.roll.jitter.hours", 3_600_000),
        ],
        _ => k.broker.map(|b| vec![(b, 1)]).unwrap_or_default(),
    }
}

impl TopicDefaults {
    /// The defaults that broker-level overrides give: `levels` in precedence order (this broker's
    /// own, then the cluster-wide ones). A value that is not valid for the topic config is
    /// passed over (the broker table validated it by its own rules).
    pub fn from_levels(levels: &[(BrokerLevel, &BTreeMap<String, String>)]) -> Self {
        let mut by_config = BTreeMap::new();
        for k in KNOWN {
            let mut values = Vec::new();
            for (name, factor) in broker_synonyms(k) {
                for (level, set) in levels {
                    let Some(value) = set.get(name) else {
                        continue;
                    };
                    let topic_value = if factor == 1 {
                        value.trim().to_string()
                    } else {
                        match value.trim().parse::<i64>() {
                            Ok(v) if v < 0 => "-1".to_string(),
                            Ok(v) => v.saturating_mul(factor).to_string(),
                            Err(_) => continue,
                        }
                    };
                    if validate(k, &topic_value).is_ok() {
                        values.push(BrokerValue {
                            name,
                            value: value.clone(),
                            level: *level,
                            topic_value,
                        });
                    }
                }
            }
            if !values.is_empty() {
                by_config.insert(k.name, values);
            }
        }
        Self { by_config }
    }

    /// The broker value in force for topic config `name`, if a broker level sets one.
    fn in_force(&self, name: &str) -> Option<&BrokerValue> {
        self.by_config.get(name).and_then(|v| v.first())
    }
}

/// Where a topic config's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// The topic sets it.
    Topic,
    /// A broker-level synonym (see [`TopicDefaults`]).
    Broker(BrokerLevel),
    /// Kafka's default.
    Default,
}

/// One entry of a DescribeConfigs answer.
#[derive(Clone, Debug)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub source: ValueSource,
    /// Kafka's DescribeConfigs config type (1 boolean, 2 string, 3 int, 5 long, 6 double, 7 list).
    pub config_type: i8,
    /// The broker config that sets this one's default in Kafka, if any.
    pub broker_synonym: Option<&'static str>,
    /// The broker-level values of its synonyms, the one in force first.
    pub broker_values: Vec<BrokerValue>,
}

impl ConfigEntry {
    /// Whether the value is Kafka's default (no topic override, no broker-level value).
    pub fn is_default(&self) -> bool {
        self.source == ValueSource::Default
    }
}

fn known(name: &str) -> Result<&'static Known, ConfigError> {
    KNOWN
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| ConfigError::Unknown(name.to_string()))
}

fn validate(k: &Known, value: &str) -> Result<(), ConfigError> {
    let ok = match k.kind {
        Kind::Long { min } => value.parse::<i64>().is_ok_and(|v| v >= min),
        Kind::Int { min } => value.parse::<i32>().is_ok_and(|v| v >= min),
        Kind::Ratio => value.parse::<f64>().is_ok_and(|v| (0.0..=1.0).contains(&v)),
        Kind::Bool => matches!(value, "true" | "false"),
        Kind::OneOf(options) => options.contains(&value),
        // Kafka 4.2 (KAFKA-19112): an empty list is valid (for `cleanup.policy`: neither delete
        // nor compact, the log is kept), a repeated item is not.
        Kind::ListOf(options) => {
            let items: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .collect();
            let distinct: std::collections::BTreeSet<&str> = items.iter().copied().collect();
            (value.trim().is_empty() || items.len() == value.split(',').count())
                && distinct.len() == items.len()
                && items.iter().all(|item| options.contains(item))
        }
        Kind::Version => is_kafka_version(value),
        Kind::ThrottledReplicas => is_throttled_replica_list(value),
    };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            name: k.name.to_string(),
            value: value.to_string(),
        })
    }
}

/// One or more ASCII digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Kafka's `ThrottledReplicaListValidator`: empty, `*`, or `partition:broker` pairs.
fn is_throttled_replica_list(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v == "*"
        || v.split(',').all(|pair| {
            pair.trim()
                .split_once(':')
                .is_some_and(|(p, b)| is_digits(p.trim()) && is_digits(b.trim()))
        })
}

/// `major.minor[.patch[.patch]][-IVn]`, as Kafka's `MetadataVersion` names releases.
fn is_kafka_version(value: &str) -> bool {
    let (release, iv) = match value.split_once("-IV") {
        Some((r, iv)) => (r, Some(iv)),
        None => (value, None),
    };
    let parts: Vec<&str> = release.split('.').collect();
    (2..=4).contains(&parts.len()) && parts.iter().all(|p| is_digits(p)) && iv.is_none_or(is_digits)
}

impl TopicConfig {
    /// Builds a config from (name, value) pairs, validating each.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for (name, value) in pairs {
            config.set(name, value)?;
        }
        Ok(config)
    }

    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let k = known(name)?;
        validate(k, value)?;
        self.overrides.insert(k.name.to_string(), value.to_string());
        Ok(())
    }

    /// Reverts a key to its default.
    pub fn delete(&mut self, name: &str) -> Result<(), ConfigError> {
        known(name)?;
        self.overrides.remove(name);
        Ok(())
    }

    /// Checks a whole candidate change without applying it.
    pub fn check(name: &str, value: &str) -> Result<(), ConfigError> {
        validate(known(name)?, value)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v);
        }
        if let Some(b) = self.defaults.in_force(name) {
            return Some(&b.topic_value);
        }
        KNOWN.iter().find(|k| k.name == name).map(|k| k.default)
    }

    /// This config with `defaults` in force for what the topic does not set.
    pub fn with_defaults(mut self, defaults: Arc<TopicDefaults>) -> Self {
        self.defaults = defaults;
        self
    }

    fn get_i64(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(-1)
    }

    pub fn max_message_bytes(&self) -> u32 {
        u32::try_from(self.get_i64("max.message.bytes")).unwrap_or(u32::MAX)
    }

    /// `weir.delivery.delay.ms` (0: none).
    pub fn delivery_delay_ms(&self) -> i64 {
        self.get_i64(DELIVERY_DELAY_MS).max(0)
    }

    /// `weir.message.ttl.ms` (0: none).
    pub fn message_ttl_ms(&self) -> i64 {
        self.get_i64(MESSAGE_TTL_MS).max(0)
    }

    /// The timestamp window of CreateTime records. An explicit `before`/`after` wins; otherwise
    /// the deprecated `message.timestamp.difference.max.ms`, if set, stands for it (Kafka 3.6-3.9);
    /// otherwise Kafka's default.
    pub fn timestamp_window(&self) -> TimestampWindow {
        let bound = |name: &str| match self.overrides.get(name) {
            Some(_) => self.get_i64(name),
            None if self.overrides.contains_key(TIMESTAMP_DIFFERENCE_MAX_MS) => {
                self.get_i64(TIMESTAMP_DIFFERENCE_MAX_MS)
            }
            None => self.get_i64(name),
        };
        TimestampWindow {
            before_max_ms: bound(TIMESTAMP_BEFORE_MAX_MS),
            after_max_ms: bound(TIMESTAMP_AFTER_MAX_MS),
        }
    }

    pub fn log_append_time(&self) -> bool {
        self.get("message.timestamp.type") == Some("LogAppendTime")
    }

    /// `message.downconversion.enable`: whether Fetch v0-3 is served by down-converting.
    pub fn down_conversion_enabled(&self) -> bool {
        self.get("message.downconversion.enable") != Some("false")
    }

    /// Whether `cleanup.policy` includes `compact` (records must then have keys).
    pub fn compacted(&self) -> bool {
        self.has_policy("compact")
    }

    /// Whether `cleanup.policy` includes `delete` (retention trims the log).
    pub fn deletes(&self) -> bool {
        self.has_policy("delete")
    }

    fn has_policy(&self, policy: &str) -> bool {
        self.get("cleanup.policy")
            .is_some_and(|p| p.split(',').any(|x| x.trim() == policy))
    }

    /// Every known key with its effective value, as DescribeConfigs lists them.
    pub fn entries(&self) -> Vec<ConfigEntry> {
        KNOWN
            .iter()
            .map(|k| {
                let broker_values = self.defaults.by_config.get(k.name).cloned();
                let (value, source) = match (self.overrides.get(k.name), &broker_values) {
                    (Some(v), _) => (v.clone(), ValueSource::Topic),
                    (None, Some(values)) if !values.is_empty() => (
                        values[0].topic_value.clone(),
                        ValueSource::Broker(values[0].level),
                    ),
                    (None, _) => (k.default.to_string(), ValueSource::Default),
                };
                ConfigEntry {
                    name: k.name,
                    value,
                    source,
                    config_type: k.kind.config_type(),
                    broker_synonym: k.broker,
                    broker_values: broker_values.unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The storage engine's view of this topic: segment size, retention, compaction, fsync
    /// policy.
    pub fn log_config(&self, fsync: FsyncPolicy) -> LogConfig {
        let positive = |v: i64| if v < 0 { None } else { Some(v) };
        // A compact-only topic is never trimmed by time or size (Kafka's rule): only compaction
        // shrinks it.
        let deletes = self.deletes();
        let defaults = CompactionConfig::default();
        let compaction = self.compacted().then(|| CompactionConfig {
            min_cleanable_dirty_ratio: self
                .get("min.cleanable.dirty.ratio")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.min_cleanable_dirty_ratio),
            min_compaction_lag_ms: self.get_i64("min.compaction.lag.ms").max(0),
            max_compaction_lag_ms: positive(self.get_i64("max.compaction.lag.ms"))
                .unwrap_or(defaults.max_compaction_lag_ms),
            delete_retention_ms: positive(self.get_i64("delete.retention.ms"))
                .unwrap_or(defaults.delete_retention_ms),
        });
        let retention = |v: i64| if deletes { positive(v) } else { None };
        LogConfig {
            segment_bytes: u64::try_from(self.get_i64("segment.bytes")).unwrap_or(1 << 30),
            segment_ms: positive(self.get_i64("segment.ms")),
            retention_bytes: retention(self.get_i64("retention.bytes"))
                .and_then(|v| u64::try_from(v).ok()),
            retention_ms: retention(self.get_i64("retention.ms")),
            index_interval_bytes: u32::try_from(self.get_i64("index.interval.bytes"))
                .unwrap_or(4096),
            fsync,
            compaction,
            ..LogConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_extensions_default_to_off_and_refuse_negative_values() {
        let mut c = TopicConfig::default();
        assert_eq!((c.delivery_delay_ms(), c.message_ttl_ms()), (0, 0));
        c.set(DELIVERY_DELAY_MS, "60000").expect("delay");
        c.set(MESSAGE_TTL_MS, "3600000").expect("ttl");
        assert_eq!(
            (c.delivery_delay_ms(), c.message_ttl_ms()),
            (60_000, 3_600_000)
        );
        assert!(matches!(
            c.set(DELIVERY_DELAY_MS, "-1"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set(MESSAGE_TTL_MS, "soon"),
            Err(ConfigError::InvalidValue { .. })
        ));
    }

    #[test]
    fn timestamp_window_takes_the_deprecated_difference_only_where_not_set() {
        let window = |pairs: &[(&str, &str)]| {
            TopicConfig::from_pairs(pairs.iter().copied())
                .expect("valid")
                .timestamp_window()
        };
        assert_eq!(
            window(&[]),
            TimestampWindow {
                before_max_ms: i64::MAX,
                after_max_ms: 3_600_000
            }
        );
        assert_eq!(
            window(&[(TIMESTAMP_DIFFERENCE_MAX_MS, "1000")]),
            TimestampWindow {
                before_max_ms: 1000,
                after_max_ms: 1000
            }
        );
        assert_eq!(
            window(&[
                (TIMESTAMP_DIFFERENCE_MAX_MS, "1000"),
                (TIMESTAMP_AFTER_MAX_MS, "5")
            ]),
            TimestampWindow {
                before_max_ms: 1000,
                after_max_ms: 5
            }
        );
        assert_eq!(window(&[]).range_at(10), (10 - i64::MAX, 3_600_010));
    }

    #[test]
    fn throttled_replica_lists_are_kafkas() {
        for ok in ["", "*", "0:1", "0:1, 1:2 ,2:0"] {
            assert!(is_throttled_replica_list(ok), "{ok:?}");
        }
        for bad in ["x", "0", "0:", ":1", "0:1,", "*,0:1", "-1:2"] {
            assert!(!is_throttled_replica_list(bad), "{bad:?}");
        }
    }

    #[test]
    fn defaults_match_kafka() {
        let c = TopicConfig::default();
        assert_eq!(c.get("retention.ms"), Some("604800000"));
        assert_eq!(c.get("cleanup.policy"), Some("delete"));
        assert_eq!(c.max_message_bytes(), 1_048_588);
        assert!(c.entries().iter().all(ConfigEntry::is_default));
    }

    #[test]
    fn rejects_unknown_and_invalid() {
        let mut c = TopicConfig::default();
        assert_eq!(
            c.set("retention.mss", "1"),
            Err(ConfigError::Unknown("retention.mss".into()))
        );
        assert!(matches!(
            c.set("retention.ms", "-5"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set("cleanup.policy", "delete,bogus"),
            Err(ConfigError::InvalidValue { .. })
        ));
        c.set("cleanup.policy", "compact,delete")
            .expect("valid list");
        c.set("message.timestamp.type", "LogAppendTime")
            .expect("valid");
        assert!(c.log_append_time());
    }

    #[test]
    fn list_configs_may_be_empty_but_not_repeat() {
        let mut c = TopicConfig::default();
        c.set("cleanup.policy", "").expect("empty: Kafka 4.2");
        assert!(!c.compacted());
        let lc = c.log_config(FsyncPolicy::Never);
        assert_eq!(
            (lc.retention_ms, lc.retention_bytes),
            (None, None),
            "neither delete nor compact: the log is kept"
        );
        for bad in ["delete,delete", "delete,", ",compact", "delete,,compact"] {
            assert!(
                matches!(
                    c.set("cleanup.policy", bad),
                    Err(ConfigError::InvalidValue { .. })
                ),
                "{bad:?}"
            );
        }
    }

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn broker_levels_stand_for_what_the_topic_does_not_set() {
        let own = set(&[("log.retention.hours", "2"), ("message.max.bytes", "2000")]);
        let cluster = set(&[
            ("log.retention.minutes", "5"),
            ("message.max.bytes", "3000"),
            ("log.cleanup.policy", "compact"),
            ("log.segment.bytes", "not a number"),
        ]);
        let defaults = Arc::new(TopicDefaults::from_levels(&[
            (BrokerLevel::ThisBroker, &own),
            (BrokerLevel::ClusterDefault, &cluster),
        ]));
        let c = TopicConfig::from_pairs([("segment.ms", "1000")])
            .expect("valid")
            .with_defaults(defaults.clone());
        // Minutes come before hours whatever the level (Kafka merges the levels per name first).
        assert_eq!(c.get("retention.ms"), Some("300000"));
        // This broker's value over the cluster-wide one.
        assert_eq!(c.max_message_bytes(), 2000);
        assert!(c.compacted());
        // An invalid broker value is passed over; the topic's own value wins.
        assert_eq!(c.get("segment.bytes"), Some("1073741824"));
        assert_eq!(c.get("segment.ms"), Some("1000"));
        let entries = c.entries();
        let entry = |name: &str| {
            entries
                .iter()
                .find(|e| e.name == name)
                .expect("known config")
        };
        assert_eq!(
            entry("retention.ms").source,
            ValueSource::Broker(BrokerLevel::ClusterDefault)
        );
        let names: Vec<&str> = entry("retention.ms")
            .broker_values
            .iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["log.retention.minutes", "log.retention.hours"]);
        assert_eq!(
            entry("max.message.bytes").source,
            ValueSource::Broker(BrokerLevel::ThisBroker)
        );
        assert_eq!(entry("segment.ms").source, ValueSource::Topic);
        assert!(entry("flush.ms").is_default());
        // The metadata is the overrides: defaults do not make two configs differ.
        assert_eq!(
            c,
            TopicConfig::from_pairs([("segment.ms", "1000")]).expect("valid")
        );
    }

    #[test]
    fn log_config_maps_infinite_retention_to_none() {
        let c = TopicConfig::from_pairs([("retention.ms", "-1"), ("segment.bytes", "1048576")])
            .expect("valid");
        let lc = c.log_config(FsyncPolicy::Never);
        assert_eq!(lc.retention_ms, None);
        assert_eq!(lc.segment_bytes, 1_048_576);
    }

    #[test]
    fn compact_only_topics_are_not_trimmed_by_retention() {
        let compact =
            TopicConfig::from_pairs([("cleanup.policy", "compact"), ("retention.ms", "1000")])
                .expect("valid");
        let lc = compact.log_config(FsyncPolicy::Never);
        assert_eq!((lc.retention_ms, lc.retention_bytes), (None, None));
        let both = TopicConfig::from_pairs([
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "1000"),
        ])
        .expect("valid");
        assert_eq!(both.log_config(FsyncPolicy::Never).retention_ms, Some(1000));
    }
}
