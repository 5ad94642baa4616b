//! Dynamic configs of the broker itself (Kafka resource BROKER) and of groups (resource GROUP,
//! Kafka 4.x): the Kafka names, their defaults, validation, and their persistence.
//!
//! Owns `<data>/__weir_meta/configs.json`, replaced atomically like `topics.json`, holding three
//! sets of overrides: this broker's (resource name = the node id), the cluster-wide defaults
//! (resource name `""`), and one set per group. In a cluster only this broker's own set is used
//! from the file: the cluster-wide defaults and the group sets live in etcd, so that every broker
//! answers and applies the same ones (`config_admin` picks the place; the rules are the same, see
//! [`changed_broker`] and [`changed_group`]). Values are kept as the strings clients sent, as
//! Kafka keeps them. Which configs Weir *applies* is documented in `docs/configuration.md`: the
//! share group configs (`share.*` and Weir's `weir.share.*`, read by `share::group_config`) and
//! the broker configs that are synonyms of topic configs (`log.retention.ms`, `message.max.bytes`,
//! ...: `topic_config::TopicDefaults`, put in force by `config_admin`); the others are validated,
//! stored and described as Kafka does, so tools that manage them work, but the broker's settings
//! come from its own configuration.
//!
//! Kafka's rules kept here: a broker config Kafka does not define is accepted as a custom config
//! (`DynamicConfig.Broker` allows custom properties, e.g. for plugins); a config Kafka defines but
//! cannot change at runtime is refused, as is an invalid value, with INVALID_REQUEST (Kafka wraps
//! broker validation errors so, KAFKA-13609); group configs must be known and valid
//! (INVALID_CONFIG). Must not know about sockets or wire types.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::config::BrokerConfig;

/// How a value is checked (and which type DescribeConfigs reports).
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A signed 64-bit integer in `[min, max]`.
    Long {
        min: i64,
        max: i64,
    },
    /// A signed 32-bit integer in `[min, max]`.
    Int {
        min: i32,
        max: i32,
    },
    /// A float in `[min, max]`.
    Double {
        min: f64,
        max: f64,
    },
    Bool,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose items are each one of these (any item if empty).
    ListOf(&'static [&'static str]),
    /// Any string.
    Text,
    /// Kafka's `share.auto.offset.reset`: `latest`, `earliest` or `by_duration:<ISO 8601>`.
    ShareOffsetReset,
}

impl Kind {
    /// Kafka's DescribeConfigs config type: 1 boolean, 2 string, 3 int, 5 long, 6 double, 7 list.
    pub fn config_type(self) -> i8 {
        match self {
            Kind::Bool => 1,
            Kind::Text | Kind::OneOf(_) | Kind::ShareOffsetReset => 2,
            Kind::Int { .. } => 3,
            Kind::Long { .. } => 5,
            Kind::Double { .. } => 6,
            Kind::ListOf(_) => 7,
        }
    }

    fn is_list(self) -> bool {
        matches!(self, Kind::ListOf(_))
    }

    fn accepts(self, value: &str) -> bool {
        let v = value.trim();
        match self {
            Kind::Long { min, max } => v.parse::<i64>().is_ok_and(|x| (min..=max).contains(&x)),
            Kind::Int { min, max } => v.parse::<i32>().is_ok_and(|x| (min..=max).contains(&x)),
            Kind::Double { min, max } => v
                .parse::<f64>()
                .is_ok_and(|x| x.is_finite() && x >= min && x <= max),
            Kind::Bool => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
            Kind::OneOf(options) => options.iter().any(|o| o.eq_ignore_ascii_case(v)),
            Kind::ListOf(options) => {
                options.is_empty()
                    || v.split(',')
                        .map(str::trim)
                        .filter(|i| !i.is_empty())
                        .all(|i| options.contains(&i))
            }
            Kind::Text => true,
            Kind::ShareOffsetReset => {
                v.eq_ignore_ascii_case("latest")
                    || v.eq_ignore_ascii_case("earliest")
                    || v.strip_prefix("by_duration:")
                        .is_some_and(is_non_negative_iso_duration)
            }
        }
    }
}

/// Java's `Duration.parse` format (`PnDTnHnMn.nS`), non-negative, as Kafka requires for
/// `by_duration:`.
fn is_non_negative_iso_duration(s: &str) -> bool {
    let s = s.trim().to_ascii_uppercase();
    let s = s.strip_prefix('+').unwrap_or(&s);
    let Some(rest) = s.strip_prefix('P') else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return false,
        None => (rest, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    let mut parts = 0;
    if !date.is_empty() {
        match date.strip_suffix('D') {
            Some(n) if digits(n) => parts += 1,
            _ => return false,
        }
    }
    if let Some(mut t) = time {
        for unit in ['H', 'M'] {
            if let Some((n, after)) = t.split_once(unit) {
                if !digits(n) {
                    return false;
                }
                parts += 1;
                t = after;
            }
        }
        if !t.is_empty() {
            let Some(n) = t.strip_suffix('S') else {
                return false;
            };
            let (whole, frac) = n.split_once(['.', ',']).unwrap_or((n, ""));
            if !digits(whole) || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            parts += 1;
        }
    }
    parts > 0
}

/// The length in ms of a non-negative ISO 8601 duration as Java's `Duration.parse` reads it
/// (`PnDTnHnMn.nS`); `None` if it is not one (or overflows).
pub fn iso_duration_ms(s: &str) -> Option<i64> {
    if !is_non_negative_iso_duration(s) {
        return None;
    }
    let s = s.trim().to_ascii_uppercase();
    let s = s.strip_prefix('+').unwrap_or(&s);
    let rest = s.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut ms: i64 = 0;
    if let Some(days) = date.strip_suffix('D') {
        ms = ms.checked_add(days.parse::<i64>().ok()?.checked_mul(86_400_000)?)?;
    }
    let mut t = time;
    for (unit, scale) in [('H', 3_600_000i64), ('M', 60_000)] {
        if let Some((n, after)) = t.split_once(unit) {
            ms = ms.checked_add(n.parse::<i64>().ok()?.checked_mul(scale)?)?;
            t = after;
        }
    }
    if let Some(n) = t.strip_suffix('S') {
        let (whole, frac) = n.split_once(['.', ',']).unwrap_or((n, ""));
        ms = ms.checked_add(whole.parse::<i64>().ok()?.checked_mul(1_000)?)?;
        let frac_ms: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = ms.checked_add(frac_ms.parse::<i64>().ok()?)?;
    }
    Some(ms)
}

/// One config Kafka defines: its name, Kafka's default (`None`: no default value), how values
/// are checked, and whether Kafka lets it change at runtime.
pub struct Key {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub kind: Kind,
    pub dynamic: bool,
}

const fn key(name: &'static str, default: Option<&'static str>, kind: Kind, dynamic: bool) -> Key {
    Key {
        name,
        default,
        kind,
        dynamic,
    }
}

const LONG: Kind = Kind::Long {
    min: i64::MIN,
    max: i64::MAX,
};
const fn long_from(min: i64) -> Kind {
    Kind::Long { min, max: i64::MAX }
}
const fn int_from(min: i32) -> Kind {
    Kind::Int { min, max: i32::MAX }
}
const fn int_in(min: i32, max: i32) -> Kind {
    Kind::Int { min, max }
}
const fn long_in(min: i64, max: i64) -> Kind {
    Kind::Long { min, max }
}
const RATIO: Kind = Kind::Double { min: 0.0, max: 1.0 };
const RATE: Kind = Kind::Double {
    min: f64::MIN,
    max: f64::MAX,
};

/// Broker configs Kafka defines, with Kafka 4.x defaults. Dynamic ones (Kafka's
/// `DynamicBrokerConfig.AllDynamicConfigs`, except the per-listener TLS/SASL ones: Weir's TLS and
/// SASL settings are its own, see `security`) can be set through the Admin API; the others are
/// read-only.
pub const BROKER_KEYS: &[Key] = &[
    // Read-only: fixed at start (some from Weir's own configuration, see `static_value`).
    key("advertised.listeners", None, Kind::Text, false),
    key("auto.create.topics.enable", Some("true"), Kind::Bool, false),
    key("broker.id", Some("-1"), LONG, false),
    key(
        "connection.failed.authentication.delay.ms",
        Some("100"),
        int_from(0),
        false,
    ),
    key("connections.max.idle.ms", Some("600000"), LONG, false),
    key("connections.max.reauth.ms", Some("0"), LONG, false),
    key("default.replication.factor", Some("1"), LONG, false),
    key("delete.topic.enable", Some("true"), Kind::Bool, false),
    key(
        "group.initial.rebalance.delay.ms",
        Some("3000"),
        LONG,
        false,
    ),
    key("group.max.session.timeout.ms", Some("1800000"), LONG, false),
    key("group.min.session.timeout.ms", Some("6000"), LONG, false),
    key(
        "listener.security.protocol.map",
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
        Kind::Text,
        false,
    ),
    key("listeners", Some("PLAINTEXT://:9092"), Kind::Text, false),
    key("inter.broker.listener.name", None, Kind::Text, false),
    key("log.dirs", None, Kind::Text, false),
    // Deprecated in Kafka 3.x and ignored (the format is always v2); listed as Kafka 3.x does.
    key(
        "log.message.format.version",
        Some("3.0-IV1"),
        Kind::Text,
        false,
    ),
    key(
        "log.retention.check.interval.ms",
        Some("300000"),
        LONG,
        false,
    ),
    key("node.id", Some("-1"), LONG, false),
    key("num.partitions", Some("1"), LONG, false),
    key("offsets.topic.num.partitions", Some("16"), LONG, false),
    key("offsets.topic.replication.factor", Some("3"), LONG, false),
    key(
        "transaction.state.log.num.partitions",
        Some("16"),
        LONG,
        false,
    ),
    key(
        "transaction.state.log.replication.factor",
        Some("3"),
        LONG,
        false,
    ),
    key("queued.max.request.bytes", Some("-1"), LONG, false),
    key(
        "sasl.enabled.mechanisms",
        Some("GSSAPI"),
        Kind::ListOf(&[]),
        false,
    ),
    key(
        "sasl.mechanism.inter.broker.protocol",
        Some("GSSAPI"),
        Kind::Text,
        false,
    ),
    key(
        "share.coordinator.state.topic.num.partitions",
        Some("16"),
        LONG,
        false,
    ),
    key("socket.request.max.bytes", Some("104857600"), LONG, false),
    // Dynamic: log defaults of topics (synonyms of topic configs).
    key("compression.gzip.level", Some("-1"), int_in(-1, 9), true),
    key("compression.lz4.level", Some("9"), int_in(1, 17), true),
    key(
        "compression.type",
        Some("producer"),
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        true,
    ),
    key(
        "compression.zstd.level",
        Some("3"),
        int_in(-131072, 22),
        true,
    ),
    key(
        "log.cleaner.delete.retention.ms",
        Some("86400000"),
        long_from(0),
        true,
    ),
    key(
        "log.cleaner.max.compaction.lag.ms",
        Some("9223372036854775807"),
        long_from(1),
        true,
    ),
    key("log.cleaner.min.cleanable.ratio", Some("0.5"), RATIO, true),
    key(
        "log.cleaner.min.compaction.lag.ms",
        Some("0"),
        long_from(0),
        true,
    ),
    key(
        "log.cleanup.policy",
        Some("delete"),
        Kind::ListOf(&["delete", "compact"]),
        true,
    ),
    key(
        "log.flush.interval.messages",
        Some("9223372036854775807"),
        long_from(1),
        true,
    ),
    key("log.flush.interval.ms", None, LONG, true),
    key("log.index.interval.bytes", Some("4096"), int_from(0), true),
    key(
        "log.index.size.max.bytes",
        Some("10485760"),
        int_from(4),
        true,
    ),
    key("log.local.retention.bytes", Some("-2"), long_from(-2), true),
    key("log.local.retention.ms", Some("-2"), long_from(-2), true),
    key(
        "log.message.timestamp.after.max.ms",
        Some("3600000"),
        long_from(0),
        true,
    ),
    key(
        "log.message.timestamp.before.max.ms",
        Some("9223372036854775807"),
        long_from(0),
        true,
    ),
    key(
        "log.message.timestamp.type",
        Some("CreateTime"),
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        true,
    ),
    key(
        "log.message.downconversion.enable",
        Some("true"),
        Kind::Bool,
        true,
    ),
    key("log.preallocate", Some("false"), Kind::Bool, true),
    key("log.retention.bytes", Some("-1"), LONG, true),
    key("log.retention.hours", Some("168"), int_from(i32::MIN), true),
    key("log.retention.minutes", None, int_from(i32::MIN), true),
    key("log.retention.ms", None, LONG, true),
    key("log.roll.hours", Some("168"), int_from(1), true),
    key("log.roll.jitter.hours", Some("0"), int_from(0), true),
    key("log.roll.jitter.ms", None, LONG, true),
    key("log.roll.ms", None, LONG, true),
    key("log.segment.bytes", Some("1073741824"), int_from(14), true),
    key(
        "log.segment.delete.delay.ms",
        Some("60000"),
        long_from(0),
        true,
    ),
    key("message.max.bytes", Some("1048588"), int_from(0), true),
    key("min.insync.replicas", Some("1"), int_from(1), true),
    key(
        "unclean.leader.election.enable",
        Some("false"),
        Kind::Bool,
        true,
    ),
    // Dynamic: thread pools, the log cleaner, connection limits, producer state, metrics, quotas.
    key("background.threads", Some("10"), int_from(1), true),
    key(
        "follower.replication.throttled.rate",
        Some("9223372036854775807"),
        long_from(0),
        true,
    ),
    key(
        "leader.replication.throttled.rate",
        Some("9223372036854775807"),
        long_from(0),
        true,
    ),
    key("log.cleaner.backoff.ms", Some("15000"), long_from(0), true),
    key(
        "log.cleaner.dedupe.buffer.size",
        Some("134217728"),
        LONG,
        true,
    ),
    key("log.cleaner.io.buffer.load.factor", Some("0.9"), RATE, true),
    key(
        "log.cleaner.io.buffer.size",
        Some("524288"),
        int_from(0),
        true,
    ),
    key(
        "log.cleaner.io.max.bytes.per.second",
        Some("1.7976931348623157E308"),
        RATE,
        true,
    ),
    key("log.cleaner.threads", Some("1"), int_from(0), true),
    key(
        "max.connection.creation.rate",
        Some("2147483647"),
        int_from(0),
        true,
    ),
    key("max.connections", Some("2147483647"), int_from(0), true),
    key(
        "max.connections.per.ip",
        Some("2147483647"),
        int_from(0),
        true,
    ),
    key(
        "max.connections.per.ip.overrides",
        Some(""),
        Kind::Text,
        true,
    ),
    key("metric.reporters", Some(""), Kind::ListOf(&[]), true),
    key("num.io.threads", Some("8"), int_from(1), true),
    key("num.network.threads", Some("3"), int_from(1), true),
    key(
        "num.recovery.threads.per.data.dir",
        Some("2"),
        int_from(1),
        true,
    ),
    key("num.replica.fetchers", Some("1"), int_from(1), true),
    key(
        "producer.id.expiration.ms",
        Some("86400000"),
        int_from(1),
        true,
    ),
    key(
        "replica.alter.log.dirs.io.max.bytes.per.second",
        Some("9223372036854775807"),
        long_from(0),
        true,
    ),
    key(
        "transaction.partition.verification.enable",
        Some("true"),
        Kind::Bool,
        true,
    ),
];

/// Kafka 4.1's group configs (`GroupConfig`), with the broker-level defaults. Values must also lie
/// within the broker's bounds (`group.consumer.min.session.timeout.ms` and the like, at their
/// Kafka defaults here).
pub const GROUP_KEYS: &[Key] = &[
    key(
        "consumer.heartbeat.interval.ms",
        Some("5000"),
        int_in(5000, 15000),
        true,
    ),
    key(
        "consumer.session.timeout.ms",
        Some("45000"),
        int_in(45000, 60000),
        true,
    ),
    key(
        "share.auto.offset.reset",
        Some("latest"),
        Kind::ShareOffsetReset,
        true,
    ),
    // Kafka 4.2's group-level delivery limit (the broker's group.share.delivery.count.limit
    // is its default).
    key("share.delivery.count.limit", Some("5"), int_in(2, 10), true),
    key(
        "share.heartbeat.interval.ms",
        Some("5000"),
        int_in(5000, 15000),
        true,
    ),
    key(
        "share.isolation.level",
        Some("read_uncommitted"),
        Kind::OneOf(&["read_committed", "read_uncommitted"]),
        true,
    ),
    key(
        "share.record.lock.duration.ms",
        Some("30000"),
        // Bounded by the broker's group.share.min/max.record.lock.duration.ms (GroupBounds).
        int_in(1, i32::MAX),
        true,
    ),
    key(
        "share.session.timeout.ms",
        Some("45000"),
        int_in(45000, 60000),
        true,
    ),
    key(
        "streams.heartbeat.interval.ms",
        Some("5000"),
        int_in(5000, 15000),
        true,
    ),
    key(
        "streams.num.standby.replicas",
        Some("0"),
        int_in(0, 2),
        true,
    ),
    key(
        "streams.session.timeout.ms",
        Some("45000"),
        int_in(45000, 60000),
        true,
    ),
    // Weir's share group extensions (docs/queues.md).
    key(
        "weir.share.delayed.records.max",
        Some("10000"),
        int_in(0, 100_000),
        true,
    ),
    key("weir.share.dlq.topic", Some(""), Kind::Text, true),
    key(
        "weir.share.record.ttl.ms",
        Some("0"),
        long_in(0, i64::MAX),
        true,
    ),
    key(
        "weir.share.retry.backoff.max.ms",
        Some("60000"),
        long_in(0, 86_400_000),
        true,
    ),
    key(
        "weir.share.retry.backoff.ms",
        Some("0"),
        long_in(0, 86_400_000),
        true,
    ),
];

/// Each (session timeout, heartbeat interval) pair of a group: the timeout must be larger.
const GROUP_TIMEOUT_PAIRS: &[(&str, &str)] = &[
    (
        "consumer.session.timeout.ms",
        "consumer.heartbeat.interval.ms",
    ),
    ("share.session.timeout.ms", "share.heartbeat.interval.ms"),
    (
        "streams.session.timeout.ms",
        "streams.heartbeat.interval.ms",
    ),
];

/// Bounds on what clients can make the broker store: config entries per set, groups with
/// configs, and the size of a name or value.
pub const MAX_ENTRIES_PER_SET: usize = 1_000;
pub const MAX_GROUPS_WITH_CONFIGS: usize = 100_000;
pub const MAX_NAME_BYTES: usize = 255;
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

pub fn broker_key(name: &str) -> Option<&'static Key> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

pub fn group_key(name: &str) -> Option<&'static Key> {
    GROUP_KEYS.iter().find(|k| k.name == name)
}

/// Why a change was refused. Kafka answers BROKER problems with INVALID_REQUEST and GROUP ones
/// with INVALID_CONFIG (empty group name: INVALID_REQUEST).
#[derive(Debug, thiserror::Error)]
pub enum DynamicConfigError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("cannot store configs: {0}")]
    Persist(#[from] std::io::Error),
    /// In a cluster: etcd could not take the change (unreachable, or contended); retriable.
    #[error("cannot store configs in the cluster metadata: {0}")]
    Unavailable(String),
}

/// The level a BROKER resource names: this broker (its id) or the cluster-wide default (`""`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerLevel {
    ThisBroker,
    ClusterDefault,
}

/// A set of overrides: config name to value.
pub type Overrides = BTreeMap<String, String>;

fn check_sizes(set: &Overrides) -> Result<(), String> {
    if set.len() > MAX_ENTRIES_PER_SET {
        return Err(format!(
            "more than {MAX_ENTRIES_PER_SET} configs in one resource"
        ));
    }
    match set
        .iter()
        .find(|(k, v)| k.is_empty() || k.len() > MAX_NAME_BYTES || v.len() > MAX_VALUE_BYTES)
    {
        Some((k, _)) => Err(format!(
            "config '{k}': names are 1-{MAX_NAME_BYTES} bytes, values at most {MAX_VALUE_BYTES}"
        )),
        None => Ok(()),
    }
}

/// Checks a whole candidate set of broker overrides (Kafka's `DynamicBrokerConfig.validate`).
pub fn validate_broker(set: &Overrides) -> Result<(), DynamicConfigError> {
    check_sizes(set).map_err(DynamicConfigError::InvalidRequest)?;
    let read_only: Vec<&str> = set
        .keys()
        .filter_map(|k| broker_key(k).filter(|k| !k.dynamic).map(|k| k.name))
        .collect();
    if !read_only.is_empty() {
        return Err(DynamicConfigError::InvalidRequest(format!(
            "Cannot update these configs dynamically: {}",
            read_only.join(", ")
        )));
    }
    for (name, value) in set {
        if let Some(k) = broker_key(name) {
            if !k.kind.accepts(value) {
                return Err(DynamicConfigError::InvalidRequest(format!(
                    "Invalid value {value} for configuration {name}"
                )));
            }
        }
    }
    Ok(())
}

/// The broker settings that bound group configs: Kafka checks a group's value against the
/// broker's own limits (e.g. `group.share.min.record.lock.duration.ms` and `max`), not fixed
/// numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBounds {
    /// `share.record.lock.duration.ms`: at least / at most.
    pub share_record_lock_duration_ms: (i32, i32),
}

impl GroupBounds {
    pub fn of(c: &BrokerConfig) -> Self {
        Self {
            share_record_lock_duration_ms: (
                c.share.min_record_lock_duration_ms,
                c.share
                    .max_record_lock_duration_ms
                    .max(c.share.min_record_lock_duration_ms),
            ),
        }
    }

    fn accepts(&self, name: &str, value: &str) -> bool {
        match name {
            "share.record.lock.duration.ms" => {
                let (min, max) = self.share_record_lock_duration_ms;
                value
                    .trim()
                    .parse::<i32>()
                    .is_ok_and(|v| (min..=max).contains(&v))
            }
            _ => true,
        }
    }
}

impl Default for GroupBounds {
    /// Kafka's defaults of the broker limits.
    fn default() -> Self {
        Self {
            share_record_lock_duration_ms: (15_000, 60_000),
        }
    }
}

/// Checks a whole candidate set of group overrides (Kafka's `GroupConfig.validate`).
pub fn validate_group(set: &Overrides, bounds: &GroupBounds) -> Result<(), DynamicConfigError> {
    let invalid = DynamicConfigError::InvalidConfig;
    check_sizes(set).map_err(invalid)?;
    for (name, value) in set {
        let k =
            group_key(name).ok_or_else(|| invalid(format!("Unknown group config name: {name}")))?;
        if !k.kind.accepts(value) || !bounds.accepts(name, value) {
            return Err(invalid(format!(
                "Invalid value {value} for configuration {name}"
            )));
        }
    }
    let effective = |name: &str| -> i64 {
        set.get(name)
            .map(String::as_str)
            .or_else(|| group_key(name).and_then(|k| k.default))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    for (timeout, heartbeat) in GROUP_TIMEOUT_PAIRS {
        if effective(timeout) <= effective(heartbeat) {
            return Err(invalid(format!(
                "{timeout} must be greater than {heartbeat}"
            )));
        }
    }
    Ok(())
}

/// Applies one IncrementalAlterConfigs operation to `set`: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT
/// (the last two only for list configs; `is_list` says which names are). Errors are Kafka's
/// INVALID_CONFIG.
pub fn apply_operation(
    set: &mut Overrides,
    name: &str,
    operation: i8,
    value: Option<&str>,
    default: Option<&str>,
    is_list: bool,
) -> Result<(), String> {
    match operation {
        0 => {
            set.insert(name.to_string(), value.unwrap_or_default().to_string());
        }
        1 => {
            set.remove(name);
        }
        2 | 3 => {
            if !is_list {
                return Err(format!(
                    "Can't {} to key {name} because its type is not LIST.",
                    if operation == 2 { "APPEND" } else { "SUBTRACT" }
                ));
            }
            let items = |s: &str| -> Vec<String> {
                s.split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .map(String::from)
                    .collect()
            };
            let mut current = items(set.get(name).map_or(default.unwrap_or_default(), |v| v));
            let given = items(value.unwrap_or_default());
            if operation == 2 {
                for i in given {
                    if !current.contains(&i) {
                        current.push(i);
                    }
                }
            } else {
                current.retain(|c| !given.contains(c));
            }
            set.insert(name.to_string(), current.join(","));
        }
        other => return Err(format!("Unknown operation type {other}")),
    }
    Ok(())
}

/// Whether `name` is a list config in the BROKER (`group == false`) or GROUP table.
pub fn is_list(name: &str, group: bool) -> bool {
    let k = if group {
        group_key(name)
    } else {
        broker_key(name)
    };
    k.is_some_and(|k| k.kind.is_list())
}

/// Kafka's default of a config of the BROKER or GROUP table.
pub fn default_of(name: &str, group: bool) -> Option<&'static str> {
    let k = if group {
        group_key(name)
    } else {
        broker_key(name)
    };
    k.and_then(|k| k.default)
}

/// The value Weir's own configuration gives a read-only broker config, if it sets one.
pub fn static_value(c: &BrokerConfig, name: &str) -> Option<String> {
    Some(match name {
        "broker.id" | "node.id" => c.node_id.to_string(),
        "auto.create.topics.enable" => c.auto_create_topics.to_string(),
        "num.partitions" => c.default_partitions.to_string(),
        "offsets.topic.num.partitions" => c.offsets_topic_num_partitions.to_string(),
        "log.dirs" => c.data_dir.display().to_string(),
        "listeners" => c
            .effective_listeners()
            .iter()
            .map(|l| format!("{}://{}", l.name, l.addr))
            .collect::<Vec<_>>()
            .join(","),
        "advertised.listeners" => c
            .effective_listeners()
            .iter()
            .map(|l| {
                let (host, port) = l.advertised_host_port();
                format!("{}://{host}:{port}", l.name)
            })
            .collect::<Vec<_>>()
            .join(","),
        "listener.security.protocol.map" => c
            .effective_listeners()
            .iter()
            .map(|l| format!("{}:{}", l.name, l.protocol))
            .collect::<Vec<_>>()
            .join(","),
        "socket.request.max.bytes" => c.max_request_bytes.to_string(),
        "queued.max.request.bytes" => c.max_queued_request_bytes.to_string(),
        "group.initial.rebalance.delay.ms" => c.group_initial_rebalance_delay_ms.to_string(),
        "group.min.session.timeout.ms" => c.group_min_session_timeout_ms.to_string(),
        "group.max.session.timeout.ms" => c.group_max_session_timeout_ms.to_string(),
        "connections.max.idle.ms" => c.connections_max_idle_ms.to_string(),
        "connections.max.reauth.ms" => c.security.connections_max_reauth_ms.to_string(),
        "connection.failed.authentication.delay.ms" => c
            .security
            .connection_failed_authentication_delay_ms
            .to_string(),
        "sasl.enabled.mechanisms" => c
            .security
            .sasl_enabled_mechanisms
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(","),
        "sasl.mechanism.inter.broker.protocol" => c
            .security
            .inter_broker
            .sasl_mechanism
            .as_ref()
            .map_or("PLAIN", |m| m.name())
            .to_string(),
        "inter.broker.listener.name" => c.inter_broker_listener().ok()?.name,
        "log.retention.check.interval.ms" => c.log_retention_check_interval_ms.to_string(),
        "max.connections" => c.max_connections.to_string(),
        "max.connections.per.ip" => c.max_connections_per_ip.to_string(),
        "max.connections.per.ip.overrides" => c.max_connections_per_ip_overrides.text.clone(),
        "max.connection.creation.rate" => c.max_connection_creation_rate.to_string(),
        "transaction.state.log.num.partitions" => {
            c.transaction_state_log_num_partitions.to_string()
        }
        "share.coordinator.state.topic.num.partitions" => {
            c.share_coordinator_state_topic_num_partitions.to_string()
        }
        // A single node has one replica of everything, internal topics included.
        "default.replication.factor" => replication(c, |s| s.default_replication_factor),
        "offsets.topic.replication.factor" => replication(c, |s| s.offsets_replication_factor),
        "transaction.state.log.replication.factor" => {
            replication(c, |s| s.transaction_state_replication_factor)
        }
        _ => return None,
    })
}

/// A replication factor setting of the cluster, or 1 on a single node.
fn replication(c: &BrokerConfig, of: impl Fn(&crate::config::ClusterSettings) -> i32) -> String {
    c.cluster.as_ref().map_or(1, of).to_string()
}

/// `current` changed by `change`, if the result is a valid set of broker overrides (for the local
/// file and for etcd alike).
pub fn changed_broker(
    current: &Overrides,
    change: impl FnOnce(&mut Overrides) -> Result<(), DynamicConfigError>,
) -> Result<Overrides, DynamicConfigError> {
    let mut next = current.clone();
    change(&mut next)?;
    validate_broker(&next)?;
    Ok(next)
}

/// `current` (a group's overrides) changed by `change`, if the group name may carry configs and
/// the result is a valid set (for the local file and for etcd alike).
pub fn changed_group(
    group: &str,
    current: &Overrides,
    bounds: &GroupBounds,
    change: impl FnOnce(&mut Overrides) -> Result<(), DynamicConfigError>,
) -> Result<Overrides, DynamicConfigError> {
    if group.is_empty() {
        return Err(DynamicConfigError::InvalidRequest(
            "Default group resources are not allowed.".into(),
        ));
    }
    let mut next = current.clone();
    change(&mut next)?;
    validate_group(&next, bounds)?;
    Ok(next)
}

/// Refuses more than [`MAX_GROUPS_WITH_CONFIGS`] groups with configs.
pub fn check_group_count(groups: usize) -> Result<(), DynamicConfigError> {
    if groups > MAX_GROUPS_WITH_CONFIGS {
        return Err(DynamicConfigError::InvalidRequest(format!(
            "more than {MAX_GROUPS_WITH_CONFIGS} groups with configs"
        )));
    }
    Ok(())
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default)]
    broker: Overrides,
    #[serde(default)]
    cluster_default: Overrides,
    #[serde(default)]
    groups: BTreeMap<String, Overrides>,
}

const FILE: &str = "configs.json";

/// The stored dynamic configs, read at start and persisted on every change.
pub struct DynamicConfigs {
    meta_dir: PathBuf,
    stored: Mutex<Stored>,
}

impl DynamicConfigs {
    /// Reads `<meta_dir>/configs.json` (none yet: nothing is overridden).
    pub fn open(meta_dir: &Path) -> std::io::Result<Self> {
        let stored = match std::fs::read(meta_dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            meta_dir: meta_dir.to_path_buf(),
            stored: Mutex::new(stored),
        })
    }

    /// The overrides of a broker level.
    pub fn broker(&self, level: BrokerLevel) -> Overrides {
        let s = self.stored.lock();
        match level {
            BrokerLevel::ThisBroker => s.broker.clone(),
            BrokerLevel::ClusterDefault => s.cluster_default.clone(),
        }
    }

    /// The overrides of a group (empty if it has none).
    pub fn group(&self, group: &str) -> Overrides {
        self.stored
            .lock()
            .groups
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Applies `change` to a broker level's overrides, validates the result and (unless
    /// `validate_only`) stores it.
    pub fn alter_broker(
        &self,
        level: BrokerLevel,
        validate_only: bool,
        change: impl FnOnce(&mut Overrides) -> Result<(), DynamicConfigError>,
    ) -> Result<(), DynamicConfigError> {
        let mut stored = self.stored.lock();
        let mut next = stored.clone();
        let set = match level {
            BrokerLevel::ThisBroker => &mut next.broker,
            BrokerLevel::ClusterDefault => &mut next.cluster_default,
        };
        *set = changed_broker(set, change)?;
        if !validate_only {
            self.persist(&next)?;
            *stored = next;
        }
        Ok(())
    }

    /// Applies `change` to a group's overrides, validates the result and (unless
    /// `validate_only`) stores it. The group need not exist (Kafka allows configuring a group
    /// before its first member joins).
    pub fn alter_group(
        &self,
        group: &str,
        validate_only: bool,
        bounds: &GroupBounds,
        change: impl FnOnce(&mut Overrides) -> Result<(), DynamicConfigError>,
    ) -> Result<(), DynamicConfigError> {
        let mut stored = self.stored.lock();
        let mut next = stored.clone();
        let current = next.groups.get(group).cloned().unwrap_or_default();
        let set = changed_group(group, &current, bounds, change)?;
        if set.is_empty() {
            next.groups.remove(group);
        } else {
            next.groups.insert(group.to_string(), set);
        }
        check_group_count(next.groups.len())?;
        if !validate_only {
            self.persist(&next)?;
            *stored = next;
        }
        Ok(())
    }

    /// Replaces `configs.json` atomically: write a temporary file, fsync, rename, fsync the
    /// directory.
    fn persist(&self, stored: &Stored) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(stored)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let tmp = self.meta_dir.join(format!("{FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.meta_dir.join(FILE))?;
        std::fs::File::open(&self.meta_dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> Overrides {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn broker_configs_follow_kafka_rules() {
        assert!(validate_broker(&set(&[("log.retention.ms", "1000")])).is_ok());
        // Custom (unknown to Kafka) broker configs are allowed, as in Kafka.
        assert!(validate_broker(&set(&[("my.plugin.setting", "x")])).is_ok());
        assert!(matches!(
            validate_broker(&set(&[("broker.id", "3")])),
            Err(DynamicConfigError::InvalidRequest(m)) if m.contains("dynamically")
        ));
        assert!(matches!(
            validate_broker(&set(&[("log.cleanup.policy", "delete,bogus")])),
            Err(DynamicConfigError::InvalidRequest(_))
        ));
        assert!(matches!(
            validate_broker(&set(&[("num.io.threads", "0")])),
            Err(DynamicConfigError::InvalidRequest(_))
        ));
    }

    #[test]
    fn group_configs_follow_kafka_rules() {
        let kafka = GroupBounds::default();
        assert!(validate_group(&set(&[("consumer.session.timeout.ms", "50000")]), &kafka).is_ok());
        assert!(validate_group(
            &set(&[("share.auto.offset.reset", "by_duration:P1DT2H3.5S")]),
            &kafka
        )
        .is_ok());
        for bad in [
            ("consumer.session.timeout.ms", "1000"),
            ("share.auto.offset.reset", "by_duration:-PT1H"),
            ("share.auto.offset.reset", "newest"),
            ("share.isolation.level", "serializable"),
            ("streams.num.standby.replicas", "3"),
            ("nope", "1"),
        ] {
            assert!(
                matches!(
                    validate_group(&set(&[bad]), &kafka),
                    Err(DynamicConfigError::InvalidConfig(_))
                ),
                "{bad:?}"
            );
        }
        // The lock duration is bounded by the broker's limits, not fixed numbers.
        let lock = |v: &str| set(&[("share.record.lock.duration.ms", v)]);
        assert!(validate_group(&lock("5000"), &kafka).is_err());
        assert!(validate_group(&lock("15000"), &kafka).is_ok());
        let wide = GroupBounds {
            share_record_lock_duration_ms: (1_000, 60_000),
        };
        assert!(validate_group(&lock("5000"), &wide).is_ok());
        assert!(validate_group(&lock("60001"), &wide).is_err());
        // Heartbeat within bounds but not below the session timeout.
        assert!(validate_group(
            &set(&[
                ("share.session.timeout.ms", "45000"),
                ("share.heartbeat.interval.ms", "15000"),
            ]),
            &kafka
        )
        .is_ok());
        assert!(matches!(
            validate_group(
                &set(&[
                    ("streams.session.timeout.ms", "45000"),
                    ("streams.heartbeat.interval.ms", "15000"),
                    ("consumer.heartbeat.interval.ms", "15000"),
                    ("consumer.session.timeout.ms", "45000"),
                ]),
                &kafka
            ),
            Ok(())
        ));
    }

    #[test]
    fn list_operations() {
        let mut s = Overrides::new();
        apply_operation(
            &mut s,
            "log.cleanup.policy",
            2,
            Some("compact"),
            Some("delete"),
            true,
        )
        .expect("append");
        assert_eq!(s["log.cleanup.policy"], "delete,compact");
        apply_operation(
            &mut s,
            "log.cleanup.policy",
            3,
            Some("delete"),
            Some("delete"),
            true,
        )
        .expect("subtract");
        assert_eq!(s["log.cleanup.policy"], "compact");
        assert!(apply_operation(&mut s, "num.io.threads", 2, Some("1"), None, false).is_err());
    }
}
