//! Topic-level configuration: the Kafka names, their defaults, validation, and the translation to the
//! storage engine's `LogConfig`.
//!
//! Owns the table of known topic config keys. Values are kept as the strings clients sent (as Kafka
//! does in its metadata), validated on the way in. Must not know about sockets or wire types.

use std::collections::BTreeMap;

use weir_storage::{FsyncPolicy, LogConfig};

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

/// The overrides a topic carries; everything else is Kafka's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
}

/// One entry of a DescribeConfigs answer.
#[derive(Clone, Debug)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub is_default: bool,
    /// Kafka's DescribeConfigs config type (1 boolean, 2 string, 3 int, 5 long, 6 double, 7 list).
    pub config_type: i8,
    /// The broker config that sets this one's default in Kafka, if any.
    pub broker_synonym: Option<&'static str>,
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
        Kind::ListOf(options) => {
            !value.is_empty() && value.split(',').all(|item| options.contains(&item.trim()))
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
        KNOWN.iter().find(|k| k.name == name).map(|k| k.default)
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
        self.get("cleanup.policy")
            .is_some_and(|p| p.split(',').any(|x| x.trim() == "compact"))
    }

    /// Every known key with its effective value, as DescribeConfigs lists them.
    pub fn entries(&self) -> Vec<ConfigEntry> {
        KNOWN
            .iter()
            .map(|k| {
                let (value, is_default) = match self.overrides.get(k.name) {
                    Some(v) => (v.clone(), false),
                    None => (k.default.to_string(), true),
                };
                ConfigEntry {
                    name: k.name,
                    value,
                    is_default,
                    config_type: k.kind.config_type(),
                    broker_synonym: k.broker,
                }
            })
            .collect()
    }

    /// The storage engine's view of this topic: segment size, retention, fsync policy.
    pub fn log_config(&self, fsync: FsyncPolicy) -> LogConfig {
        let positive = |v: i64| if v < 0 { None } else { Some(v) };
        // A compact-only topic is never trimmed by time or size (Kafka's rule); until compaction
        // exists, that means keeping everything.
        let deletes = self
            .get("cleanup.policy")
            .is_some_and(|p| p.split(',').any(|x| x.trim() == "delete"));
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
        assert!(c.entries().iter().all(|e| e.is_default));
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
