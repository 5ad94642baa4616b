//! Prometheus metrics: what the broker counts while it runs, and what it reads off its state at
//! scrape time.
//!
//! Owns the metric definitions and their names (all prefixed `weir_`), the text exposition of
//! `/metrics` (served by `admin_http`), and the fsync-timing [`FileSync`] wrapper handed to the
//! storage writer. Counters are bumped from one place, `server` (request dispatch and connection
//! accounting); per-partition, replication and per-group gauges are computed from the topic
//! registry, the replicas (through `cluster::status`) and the offset store when scraped, so nothing
//! has to be kept in sync with topic, leadership or group changes.

use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use weir_protocol::{Request, Response};
use weir_storage::FileSync;

use crate::broker::Broker;
use crate::cluster::status;

/// Labels of per-request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// Kafka's name of the API, e.g. `Produce`.
    pub api: &'static str,
    pub version: i16,
}

/// Labels of error counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub api: &'static str,
    /// Kafka's name of the code, e.g. `UNKNOWN_TOPIC_OR_PARTITION` (or `UNKNOWN` if unnamed).
    pub error: &'static str,
    pub code: i16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

/// A partition replica's role: one series per hosted replica, for its current role.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub topic: String,
    pub partition: i32,
    /// `leader`, `follower`, `candidate`, `prospective`, `voted`, `unattached` or `resigned`.
    pub role: &'static str,
}

/// One other replica of a partition this broker leads: bounded by the replica set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FollowerLabels {
    pub topic: String,
    pub partition: i32,
    pub follower: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupPartitionLabels {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteFailureLabels {
    /// The OS error, e.g. `ENOSPC` (`other` for errors outside a short list).
    pub cause: &'static str,
    /// `true`: a write or fsync failed after offsets were assigned, and the log refuses appends
    /// until the broker restarts; `false`: appends fail until the disk has room again.
    pub poisoned: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// `max_connections`, `max_connections_per_ip` or `connection_creation_rate` (an IP over its
    /// quota).
    pub reason: &'static str,
}

/// Whose connection creation rate delayed accepting.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AcceptThrottleLabels {
    /// `broker` (max_connection_creation_rate: the accept waited) or `ip` (an IP's
    /// connection_creation_rate quota: the connection was held, then closed).
    pub scope: &'static str,
}

/// Labels of per-client quota metrics. `user` and `client_id` come from clients: past
/// [`MAX_QUOTA_SERIES`] pairs, new ones are counted under [`OTHER_CLIENTS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabels {
    /// `produce`, `fetch` or `request`.
    pub quota_type: &'static str,
    pub user: String,
    pub client_id: String,
}

/// Most (user, client-id) pairs given series of their own in the quota metrics.
pub const MAX_QUOTA_SERIES: usize = 1_000;
/// The `user` and `client_id` of the pairs beyond [`MAX_QUOTA_SERIES`].
pub const OTHER_CLIENTS: &str = "__other__";

/// Labels of authentication outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    /// Listener name (from the broker's config: bounded).
    pub listener: String,
    /// `SSL` for certificate authentication, else the SASL mechanism.
    pub mechanism: &'static str,
    /// `success`, `failure` or `reauthentication`.
    pub result: &'static str,
}

/// Labels of connections closed before they authenticated (or after their session expired).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnauthenticatedCloseLabels {
    pub listener: String,
    /// `frame_too_large`, `request_before_authentication`, `session_expired`, `tls_handshake`
    /// or `sasl_protocol`.
    pub reason: &'static str,
}

/// Labels of this broker's failed connections to other brokers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InterBrokerAuthLabels {
    /// The inter-broker listener (one per broker: bounded).
    pub listener: String,
    /// `tls` (handshake) or `sasl` (authentication).
    pub stage: &'static str,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~52 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

/// The broker's live metrics. One per process, shared through [`Broker::metrics`].
pub struct Metrics {
    registry: Registry,
    pub requests: Family<ApiLabels, Counter>,
    pub request_duration: Family<ApiLabels, Histogram, fn() -> Histogram>,
    pub errors: Family<ErrorLabels, Counter>,
    pub produce_bytes: Family<TopicLabels, Counter>,
    pub fetch_bytes: Family<TopicLabels, Counter>,
    /// `produce_bytes` and `fetch_bytes` summed over all topics, kept apart so the console's
    /// overview reads two numbers instead of walking one series per topic.
    pub produce_bytes_all: Counter,
    pub fetch_bytes_all: Counter,
    pub connections_active: Gauge,
    pub connections_accepted: Counter,
    pub connections_rejected: Family<RejectLabels, Counter>,
    pub fsync_duration: Histogram,
    pub authentications: Family<AuthLabels, Counter>,
    pub unauthenticated_closes: Family<UnauthenticatedCloseLabels, Counter>,
    pub inter_broker_authentication_failures: Family<InterBrokerAuthLabels, Counter>,
    pub connection_accept_throttle_ms: Family<AcceptThrottleLabels, Counter>,
    pub quota_throttle_ms: Family<QuotaLabels, Counter>,
    pub quota_bytes: Family<QuotaLabels, Counter>,
    pub log_cleaner_removed_records: Family<TopicLabels, Counter>,
    pub log_cleaner_reclaimed_bytes: Family<TopicLabels, Counter>,
    /// The (user, client-id) pairs with series of their own (bounded by [`MAX_QUOTA_SERIES`]).
    quota_clients: parking_lot::Mutex<std::collections::HashSet<(String, String)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let requests = Family::<ApiLabels, Counter>::default();
        let request_duration =
            Family::<ApiLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let errors = Family::<ErrorLabels, Counter>::default();
        let produce_bytes = Family::<TopicLabels, Counter>::default();
        let fetch_bytes = Family::<TopicLabels, Counter>::default();
        let connections_active = Gauge::default();
        let connections_accepted = Counter::default();
        let connections_rejected = Family::<RejectLabels, Counter>::default();
        let fsync_duration = Histogram::new(exponential_buckets(0.000_01, 2.0, 22));
        let authentications = Family::<AuthLabels, Counter>::default();
        let unauthenticated_closes = Family::<UnauthenticatedCloseLabels, Counter>::default();
        let inter_broker_authentication_failures =
            Family::<InterBrokerAuthLabels, Counter>::default();
        let connection_accept_throttle_ms = Family::<AcceptThrottleLabels, Counter>::default();
        let quota_throttle_ms = Family::<QuotaLabels, Counter>::default();
        let quota_bytes = Family::<QuotaLabels, Counter>::default();
        let log_cleaner_removed_records = Family::<TopicLabels, Counter>::default();
        let log_cleaner_reclaimed_bytes = Family::<TopicLabels, Counter>::default();

        let mut registry = Registry::with_prefix("weir");
        registry.register(
            "requests",
            "Kafka requests handled, by API and version",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a decoded request to its encoded response, by API and version",
            request_duration.clone(),
        );
        registry.register(
            "response_errors",
            "Non-zero error codes in responses (every nested code counts), by API and code",
            errors.clone(),
        );
        registry.register(
            "produce_bytes",
            "Record batch bytes received in Produce requests, by topic",
            produce_bytes.clone(),
        );
        registry.register(
            "fetch_bytes",
            "Record batch bytes sent in Fetch responses, by topic",
            fetch_bytes.clone(),
        );
        registry.register(
            "connections_active",
            "Open Kafka client connections",
            connections_active.clone(),
        );
        registry.register(
            "connections_accepted",
            "Kafka client connections accepted",
            connections_accepted.clone(),
        );
        registry.register(
            "connections_rejected",
            "Kafka client connections closed at once because a connection limit was reached",
            connections_rejected.clone(),
        );
        registry.register(
            "fsync_duration_seconds",
            "Duration of each data fsync (fdatasync) issued by the storage writer and syncer threads",
            fsync_duration.clone(),
        );
        registry.register(
            "authentications",
            "Authentications (TLS client certificates and SASL), by listener, mechanism and result",
            authentications.clone(),
        );
        registry.register(
            "unauthenticated_closes",
            "Connections closed for what they sent before authenticating (or after their session expired), by listener and reason",
            unauthenticated_closes.clone(),
        );
        registry.register(
            "inter_broker_authentication_failures",
            "This broker's connections to other brokers refused in the TLS handshake or SASL authentication, by inter-broker listener and stage",
            inter_broker_authentication_failures.clone(),
        );
        registry.register(
            "connection_accept_throttle_time_ms",
            "Milliseconds new connections were delayed by connection creation rates: the broker's max_connection_creation_rate (accepting waited) or an IP's connection_creation_rate quota (the connection was then closed)",
            connection_accept_throttle_ms.clone(),
        );
        registry.register(
            "quota_throttle_time_ms",
            "Throttle time given to clients by their produce, fetch and request quotas, by quota type, user and client id (pairs past the series cap under __other__)",
            quota_throttle_ms.clone(),
        );
        registry.register(
            "quota_bytes",
            "Bytes counted against clients' byte-rate quotas (produce requests, consumer fetch responses), by quota type, user and client id (pairs past the series cap under __other__)",
            quota_bytes.clone(),
        );
        registry.register(
            "log_cleaner_removed_records",
            "Records the log cleaner removed from compacted topics (superseded, keyless, aborted, expired tombstones), by topic",
            log_cleaner_removed_records.clone(),
        );
        registry.register(
            "log_cleaner_reclaimed_bytes",
            "Bytes the log cleaner's rewrites of compacted topics' segments freed, by topic",
            log_cleaner_reclaimed_bytes.clone(),
        );
        Self {
            log_cleaner_removed_records,
            log_cleaner_reclaimed_bytes,
            inter_broker_authentication_failures,
            connection_accept_throttle_ms,
            quota_throttle_ms,
            quota_bytes,
            quota_clients: Default::default(),
            authentications,
            unauthenticated_closes,
            registry,
            requests,
            request_duration,
            errors,
            produce_bytes,
            fetch_bytes,
            produce_bytes_all: Counter::default(),
            fetch_bytes_all: Counter::default(),
            connections_active,
            connections_accepted,
            connections_rejected,
            fsync_duration,
        }
    }

    /// The labels of a client's quota metrics: its own while fewer than [`MAX_QUOTA_SERIES`]
    /// pairs have series, else [`OTHER_CLIENTS`] (client ids are whatever clients send).
    fn quota_labels(&self, quota_type: &'static str, user: &str, client_id: &str) -> QuotaLabels {
        let mut known = self.quota_clients.lock();
        let pair = (user.to_string(), client_id.to_string());
        let own = known.contains(&pair) || {
            let room = known.len() < MAX_QUOTA_SERIES;
            if room {
                known.insert(pair.clone());
            }
            room
        };
        let (user, client_id) = if own {
            pair
        } else {
            (OTHER_CLIENTS.to_string(), OTHER_CLIENTS.to_string())
        };
        QuotaLabels {
            quota_type,
            user,
            client_id,
        }
    }

    /// Counts a request's bytes (produce, fetch) and the throttle its quota gave it.
    pub fn observe_quota(
        &self,
        quota_type: &'static str,
        user: &str,
        client_id: &str,
        bytes: Option<u64>,
        throttle_ms: i64,
    ) {
        if bytes.is_none() && throttle_ms <= 0 {
            return;
        }
        let labels = self.quota_labels(quota_type, user, client_id);
        if let Some(bytes) = bytes {
            self.quota_bytes.get_or_create(&labels).inc_by(bytes);
        }
        if throttle_ms > 0 {
            self.quota_throttle_ms
                .get_or_create(&labels)
                .inc_by(u64::try_from(throttle_ms).unwrap_or(0));
        }
    }

    /// Counts the record bytes of a Produce request, before it is handled.
    /// `topic_exists` keeps label cardinality bounded by the topics that exist, not by whatever
    /// names clients send.
    pub fn observe_request(&self, request: &Request, topic_exists: impl Fn(&str) -> bool) {
        if let Request::Produce(p) = request {
            for t in p.topics.iter().filter(|t| topic_exists(&t.name)) {
                let bytes: usize = t
                    .partitions
                    .iter()
                    .filter_map(|p| p.records.as_ref().map(|r| r.len()))
                    .sum();
                if bytes > 0 {
                    self.produce_bytes_all.inc_by(bytes as u64);
                    self.produce_bytes
                        .get_or_create(&TopicLabels {
                            topic: t.name.clone(),
                        })
                        .inc_by(bytes as u64);
                }
            }
        }
    }

    /// Records a finished request: count, latency, error codes, and Fetch bytes out.
    /// `response` is `None` when no response is sent (produce with acks=0).
    pub fn observe_response(
        &self,
        api_key: i16,
        version: i16,
        started: Instant,
        response: Option<&Response>,
    ) {
        let api = api_name(api_key);
        let labels = ApiLabels { api, version };
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        let Some(response) = response else {
            return;
        };
        for code in response.error_codes() {
            self.errors
                .get_or_create(&ErrorLabels {
                    api,
                    error: code.name().unwrap_or("UNKNOWN"),
                    code: code.0,
                })
                .inc();
        }
        if let Response::Fetch(f) = response {
            for t in &f.topics {
                let bytes: usize = t.partitions.iter().map(|p| p.records.len()).sum();
                if bytes > 0 {
                    self.fetch_bytes_all.inc_by(bytes as u64);
                    self.fetch_bytes
                        .get_or_create(&TopicLabels {
                            topic: t.name.clone(),
                        })
                        .inc_by(bytes as u64);
                }
            }
        }
    }

    /// The Prometheus text exposition: live metrics plus the state read off `broker` now.
    pub fn encode(&self, broker: Option<&Broker>) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode_registry(&mut out, &self.registry)?;
        if let Some(broker) = broker {
            encode_registry(&mut out, &scrape_state(broker))?;
        }
        encode_eof(&mut out)?;
        Ok(out)
    }
}

/// Per-partition and per-group gauges, read from the broker's state at scrape time.
fn scrape_state(broker: &Broker) -> Registry {
    let mut registry = Registry::with_prefix("weir");
    scrape_logs_and_groups(broker, &mut registry);
    scrape_share_groups(broker, &mut registry);
    scrape_replication(broker, &mut registry);
    registry
}

/// Replication and cluster gauges: each hosted replica's role and epoch, follower lag on the
/// leaders, and the broker-wide counts Kafka operators alert on (under-replicated, offline and
/// led partitions, the active controller), plus whether etcd answers.
///
/// Cardinality: one role and one epoch series per hosted replica, one lag series per other
/// replica of each partition led here (bounded by the replication factor), and a fixed handful
/// of broker-wide gauges.
fn scrape_replication(broker: &Broker, registry: &mut Registry) {
    let role = Family::<RoleLabels, Gauge>::default();
    let epoch = Family::<PartitionLabels, Gauge>::default();
    let follower_lag = Family::<FollowerLabels, Gauge>::default();
    let mut led = 0;
    let mut led_under_replicated = 0;
    let me = broker.config.node_id;
    let now = broker.now_ms();
    let summary = status::summary(broker);
    for topic in broker.topics.all() {
        for p in topic.local_partitions() {
            let view = p.replication_view();
            let replica = status::replica_status(&topic.name, p.index, me, 0, &view, now);
            role.get_or_create(&RoleLabels {
                topic: topic.name.clone(),
                partition: p.index,
                role: replica.role,
            })
            .set(1);
            epoch
                .get_or_create(&PartitionLabels {
                    topic: topic.name.clone(),
                    partition: p.index,
                })
                .set(i64::from(view.epoch));
            if view.role != weir_replication::Role::Leader {
                continue;
            }
            led += 1;
            for f in replica.followers.iter().flatten() {
                if let Some(lag) = f.lag_records {
                    follower_lag
                        .get_or_create(&FollowerLabels {
                            topic: topic.name.clone(),
                            partition: p.index,
                            follower: f.node_id,
                        })
                        .set(lag);
                }
            }
        }
    }
    let mut offline = 0;
    for s in status::partitions(broker) {
        if s.leader == Some(me) && s.under_replicated {
            led_under_replicated += 1;
        }
        if s.offline {
            offline += 1;
        }
    }
    let gauge = |v: i64| {
        let g = Gauge::<i64>::default();
        g.set(v);
        g
    };
    registry.register(
        "partition_role",
        "This broker's replica of the partition in its current Raft role (1 for the role it is in)",
        role,
    );
    registry.register(
        "partition_leader_epoch",
        "Leader epoch (Raft term) as this broker's replica knows it",
        epoch,
    );
    registry.register(
        "partition_follower_lag_records",
        "On the leader: its log end minus the offset each other replica last fetched from",
        follower_lag,
    );
    registry.register(
        "leader_partitions",
        "Partitions this broker leads",
        gauge(led),
    );
    registry.register(
        "under_replicated_partitions",
        "Partitions this broker leads with an assigned replica outside the in-sync set",
        gauge(led_under_replicated),
    );
    registry.register(
        "offline_partitions",
        "Partitions without a live leader (reported by the controller; 0 on other brokers)",
        gauge(if summary.is_controller { offline } else { 0 }),
    );
    registry.register(
        "controller_active",
        "1 when this broker is the controller",
        gauge(i64::from(summary.is_controller)),
    );
    registry.register(
        "live_brokers",
        "Brokers registered in the cluster as this broker sees them",
        gauge(i64::try_from(summary.brokers.len()).unwrap_or(i64::MAX)),
    );
    if let Some(reachable) = summary.etcd_reachable {
        registry.register(
            "etcd_reachable",
            "1 when etcd answered this broker's last request (cluster mode only)",
            gauge(i64::from(reachable)),
        );
    }
}

fn scrape_logs_and_groups(broker: &Broker, registry: &mut Registry) {
    let start = Family::<PartitionLabels, Gauge>::default();
    let end = Family::<PartitionLabels, Gauge>::default();
    let hw = Family::<PartitionLabels, Gauge>::default();
    let size = Family::<PartitionLabels, Gauge>::default();
    let committed = Family::<GroupPartitionLabels, Gauge>::default();
    let lag = Family::<GroupPartitionLabels, Gauge>::default();
    let unable_to_write = Family::<WriteFailureLabels, Gauge>::default();
    let topics = broker.topics.all();
    for topic in &topics {
        for p in topic.local_partitions() {
            if let Some(failure) = p.log.write_failure() {
                unable_to_write
                    .get_or_create(&WriteFailureLabels {
                        cause: failure.cause(),
                        poisoned: if failure.poisoned { "true" } else { "false" },
                    })
                    .inc();
            }
            let labels = PartitionLabels {
                topic: topic.name.clone(),
                partition: p.index,
            };
            start.get_or_create(&labels).set(p.log.log_start_offset());
            end.get_or_create(&labels).set(p.log.log_end_offset());
            hw.get_or_create(&labels).set(p.high_watermark());
            size.get_or_create(&labels)
                .set(i64::try_from(p.log.size_bytes()).unwrap_or(i64::MAX));
        }
    }
    for group in broker.offsets.groups() {
        for (topic, partition, offset) in broker.offsets.fetch_all(&group) {
            let labels = GroupPartitionLabels {
                group: group.clone(),
                topic: topic.clone(),
                partition,
            };
            committed.get_or_create(&labels).set(offset.offset);
            if let Some(p) = broker.topics.partition(&topic, partition) {
                lag.get_or_create(&labels)
                    .set((p.high_watermark() - offset.offset).max(0));
            }
        }
    }
    registry.register(
        "partition_log_start_offset",
        "First offset still in the partition's log",
        start,
    );
    registry.register(
        "partition_log_end_offset",
        "Offset the next appended record will get",
        end,
    );
    registry.register(
        "partition_high_watermark",
        "Offset up to which records are durable and readable",
        hw,
    );
    registry.register(
        "partition_size_bytes",
        "Bytes of the partition's segment files",
        size,
    );
    registry.register(
        "logs_unable_to_write",
        "Partition logs whose appends fail, by OS error and whether the log is poisoned (absent when every log can write)",
        unable_to_write,
    );
    registry.register(
        "group_committed_offset",
        "Offset committed by a consumer group",
        committed,
    );
    registry.register(
        "group_lag",
        "High watermark minus the group's committed offset (records not yet consumed)",
        lag,
    );
}

/// The share-partitions this broker holds in memory (it leads their data partitions): each one's
/// start offset, lag (as DescribeShareGroupOffsets and the admin API count it) and records
/// acquired now.
fn scrape_share_groups(broker: &Broker, registry: &mut Registry) {
    let start = Family::<GroupPartitionLabels, Gauge>::default();
    let lag = Family::<GroupPartitionLabels, Gauge>::default();
    let acquired = Family::<GroupPartitionLabels, Gauge>::default();
    for ((group, topic_id, partition), sp) in broker.share.all_partitions() {
        let Some(topic) = broker.topics.by_id(topic_id) else {
            continue;
        };
        let labels = GroupPartitionLabels {
            group,
            topic: topic.name.clone(),
            partition,
        };
        let sp = sp.lock();
        start.get_or_create(&labels).set(sp.start_offset());
        let (_, held, _) = sp.counts();
        acquired
            .get_or_create(&labels)
            .set(i64::try_from(held).unwrap_or(i64::MAX));
        if let Some(p) = broker.topics.partition(&topic.name, partition) {
            lag.get_or_create(&labels).set(sp.lag(p.high_watermark()));
        }
    }
    registry.register(
        "share_group_start_offset",
        "A share group's start offset in a partition this broker leads",
        start,
    );
    registry.register(
        "share_group_lag",
        "Records of the partition a share group has not yet delivered to completion (KIP-1226's lag plus delayed records parked below the start offset)",
        lag,
    );
    registry.register(
        "share_group_acquired_records",
        "Records of the partition a share group's members hold (acquired, locked) now",
        acquired,
    );
}

/// Kafka's name of an API key (`Unknown` for keys Weir does not serve).
pub fn api_name(api_key: i16) -> &'static str {
    weir_protocol::api_name(api_key).unwrap_or("Unknown")
}

/// A [`FileSync`] that times every sync into [`Metrics::fsync_duration`].
pub struct TimedFileSync<S> {
    pub inner: S,
    pub metrics: Arc<Metrics>,
}

impl<S: FileSync> FileSync for TimedFileSync<S> {
    fn write_all_at(&self, file: &File, buf: &[u8], pos: u64) -> std::io::Result<()> {
        self.inner.write_all_at(file, buf, pos)
    }
    fn allocate(&self, file: &File, from: u64, to: u64) -> std::io::Result<()> {
        self.inner.allocate(file, from, to)
    }
    fn sync_data(&self, file: &File) -> std::io::Result<()> {
        let started = Instant::now();
        let r = self.inner.sync_data(file);
        self.metrics
            .fsync_duration
            .observe(started.elapsed().as_secs_f64());
        r
    }
    fn sync_all(&self, file: &File) -> std::io::Result<()> {
        let started = Instant::now();
        let r = self.inner.sync_all(file);
        self.metrics
            .fsync_duration
            .observe(started.elapsed().as_secs_f64());
        r
    }
}

#[cfg(test)]
mod quota_metric_tests {
    use super::*;

    #[test]
    fn quota_series_are_capped_and_the_rest_folded_into_other() {
        let m = Metrics::new();
        for i in 0..MAX_QUOTA_SERIES + 5 {
            m.observe_quota("produce", "u", &format!("client-{i}"), Some(10), 0);
        }
        // A pair seen before the cap keeps its own series afterwards.
        m.observe_quota("fetch", "u", "client-0", None, 7);
        let text = m.encode(None).expect("encode");
        let series = |name: &str| text.lines().filter(|l| l.starts_with(name)).count();
        assert_eq!(series("weir_quota_bytes_total{"), MAX_QUOTA_SERIES + 1);
        assert!(text.contains(
            r#"weir_quota_bytes_total{quota_type="produce",user="__other__",client_id="__other__"} 50"#
        ));
        assert!(text.contains(
            r#"weir_quota_throttle_time_ms_total{quota_type="fetch",user="u",client_id="client-0"} 7"#
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::{api_key as k, ErrorCode, HeartbeatResponse};

    /// A new API in the protocol table gets its own label, not "Unknown".
    #[test]
    fn every_served_api_has_a_name() {
        for &(key, _, _) in weir_protocol::supported_apis() {
            assert_ne!(api_name(key), "Unknown", "api key {key}");
        }
    }

    #[test]
    fn request_counts_and_errors_appear_in_the_exposition() {
        let m = Metrics::new();
        let resp = Response::Heartbeat(HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::REBALANCE_IN_PROGRESS,
        });
        m.observe_response(k::HEARTBEAT, 4, Instant::now(), Some(&resp));
        m.observe_response(k::HEARTBEAT, 4, Instant::now(), Some(&resp));
        let text = m.encode(None).expect("encode");
        assert!(
            text.contains("weir_requests_total{api=\"Heartbeat\",version=\"4\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "weir_response_errors_total{api=\"Heartbeat\",error=\"REBALANCE_IN_PROGRESS\",code=\"27\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("weir_request_duration_seconds_count{api=\"Heartbeat\",version=\"4\"} 2"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
