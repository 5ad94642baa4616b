//! The `weir` binary: command-line parsing, logging setup, signals for `weir serve`, and the
//! operator CLI (`cli/`). With `cli/`, the only place that uses `anyhow`.

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir_broker::admin_http::{self, AdminSecurity, AdminState};
use weir_broker::clock::SystemClock;
use weir_broker::config::{parse_optional_addr, BrokerConfig, FileConfig, SecuritySettings};
use weir_broker::metrics::Metrics;

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "A Kafka-wire-compatible message broker"
)]
struct Cli {
    #[command(flatten)]
    common: cli::Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (defaults: Kafka on 127.0.0.1:9092, data in ./weir-data, no setup needed).
    Serve(Box<ServeArgs>),
    #[command(flatten)]
    Cli(cli::CliCommand),
}

/// Flags override `WEIR_*` environment variables, which override the config file, which overrides defaults.
#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file (keys as the long flags below, e.g. `data-dir = "/var/lib/weir"`).
    #[arg(long, env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
    /// Kafka listener address: one PLAINTEXT listener (same as --listeners PLAINTEXT://ADDR).
    #[arg(long, env = "WEIR_LISTENER")]
    listener: Option<SocketAddr>,
    /// host:port advertised to clients in Metadata for --listener (default: the listener).
    #[arg(long, env = "WEIR_ADVERTISED_LISTENER")]
    advertised_listener: Option<String>,
    /// Named listeners, Kafka style: NAME://host:port,... (e.g. PLAINTEXT://127.0.0.1:9092,SASL_SSL://:9093).
    #[arg(long, env = "WEIR_LISTENERS", conflicts_with = "listener")]
    listeners: Option<String>,
    /// What each listener advertises in Metadata: NAME://host:port,... (default: its address).
    #[arg(
        long,
        env = "WEIR_ADVERTISED_LISTENERS",
        conflicts_with = "advertised_listener"
    )]
    advertised_listeners: Option<String>,
    /// Security protocol of each listener name: NAME:PROTOCOL,... (default: names are protocols).
    #[arg(long, env = "WEIR_LISTENER_SECURITY_PROTOCOL_MAP")]
    listener_security_protocol_map: Option<String>,
    /// PEM certificate chain for SSL and SASL_SSL listeners.
    #[arg(long, env = "WEIR_SSL_CERTIFICATE_FILE")]
    ssl_certificate_file: Option<PathBuf>,
    /// PEM private key for SSL and SASL_SSL listeners.
    #[arg(long, env = "WEIR_SSL_KEY_FILE")]
    ssl_key_file: Option<PathBuf>,
    /// PEM CA certificates that sign client certificates (mTLS).
    #[arg(long, env = "WEIR_SSL_CLIENT_CA_FILE")]
    ssl_client_ca_file: Option<PathBuf>,
    /// TLS cipher suites offered, in order of preference, by IANA name (Kafka's
    /// ssl.cipher.suites; default: AES-128-GCM, AES-256-GCM, then ChaCha20-Poly1305).
    #[arg(long, env = "WEIR_SSL_CIPHER_SUITES")]
    ssl_cipher_suites: Option<String>,
    /// Client certificates: none | requested | required (Kafka's ssl.client.auth).
    #[arg(long, env = "WEIR_SSL_CLIENT_AUTH")]
    ssl_client_auth: Option<String>,
    /// Client certificate subject to principal (Kafka's ssl.principal.mapping.rules).
    #[arg(long, env = "WEIR_SSL_PRINCIPAL_MAPPING_RULES")]
    ssl_principal_mapping_rules: Option<String>,
    /// How often certificate, key, CA and JWKS files are checked for changes (0: SIGHUP only).
    #[arg(long, env = "WEIR_SECURITY_RELOAD_CHECK_INTERVAL_MS")]
    security_reload_check_interval_ms: Option<u64>,
    /// SASL mechanisms offered: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (comma-separated).
    #[arg(long, env = "WEIR_SASL_ENABLED_MECHANISMS")]
    sasl_enabled_mechanisms: Option<String>,
    /// JWKS file with the public keys that sign OAUTHBEARER tokens.
    #[arg(long, env = "WEIR_OAUTHBEARER_JWKS_FILE")]
    oauthbearer_jwks_file: Option<PathBuf>,
    /// Accepted token audiences (comma-separated; default: not checked).
    #[arg(long, env = "WEIR_OAUTHBEARER_EXPECTED_AUDIENCE")]
    oauthbearer_expected_audience: Option<String>,
    /// Required token issuer (default: not checked).
    #[arg(long, env = "WEIR_OAUTHBEARER_EXPECTED_ISSUER")]
    oauthbearer_expected_issuer: Option<String>,
    /// Leeway for token exp and nbf, in seconds.
    #[arg(long, env = "WEIR_OAUTHBEARER_CLOCK_SKEW_S")]
    oauthbearer_clock_skew_s: Option<u64>,
    /// Token claim that names the principal.
    #[arg(long, env = "WEIR_OAUTHBEARER_SUB_CLAIM_NAME")]
    oauthbearer_sub_claim_name: Option<String>,
    /// Longest SASL session before the client must re-authenticate (KIP-368; 0: no limit).
    #[arg(long, env = "WEIR_CONNECTIONS_MAX_REAUTH_MS")]
    connections_max_reauth_ms: Option<u64>,
    /// Delay before answering a failed authentication and closing.
    #[arg(long, env = "WEIR_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS")]
    connection_failed_authentication_delay_ms: Option<u64>,
    /// Listener brokers reach each other on (Kafka's inter.broker.listener.name; default: the
    /// first PLAINTEXT listener).
    #[arg(long, env = "WEIR_INTER_BROKER_LISTENER_NAME")]
    inter_broker_listener_name: Option<String>,
    /// SASL mechanism brokers authenticate to each other with: PLAIN, SCRAM-SHA-256 or
    /// SCRAM-SHA-512 (Kafka's sasl.mechanism.inter.broker.protocol; default PLAIN).
    #[arg(long, env = "WEIR_SASL_MECHANISM_INTER_BROKER_PROTOCOL")]
    sasl_mechanism_inter_broker_protocol: Option<String>,
    /// User this broker authenticates as to the others on a SASL inter-broker listener.
    #[arg(long, env = "WEIR_INTER_BROKER_SASL_USERNAME")]
    inter_broker_sasl_username: Option<String>,
    /// File holding that user's password.
    #[arg(long, env = "WEIR_INTER_BROKER_SASL_PASSWORD_FILE")]
    inter_broker_sasl_password_file: Option<PathBuf>,
    /// PEM CA certificates trusted for other brokers' certificates (default: --ssl-client-ca-file).
    #[arg(long, env = "WEIR_INTER_BROKER_SSL_CA_FILE")]
    inter_broker_ssl_ca_file: Option<PathBuf>,
    /// ACL authorization: on | off (default off: every client may do everything).
    #[arg(long, env = "WEIR_AUTHORIZER")]
    authorizer: Option<String>,
    /// Principals allowed everything, `;`-separated (Kafka's super.users), e.g. User:admin.
    #[arg(long, env = "WEIR_SUPER_USERS")]
    super_users: Option<String>,
    /// With the authorizer on, whether a resource no ACL applies to is open to all
    /// (allow.everyone.if.no.acl.found; default false).
    #[arg(long, env = "WEIR_ALLOW_EVERYONE_IF_NO_ACL_FOUND")]
    allow_everyone_if_no_acl_found: Option<bool>,
    /// Admin HTTP listener for metrics and health ("none" disables it).
    #[arg(long, env = "WEIR_ADMIN_LISTENER")]
    admin_listener: Option<String>,
    /// Serve the admin listener over HTTPS with the broker's ssl-certificate-file/ssl-key-file.
    #[arg(long, env = "WEIR_ADMIN_TLS")]
    admin_tls: Option<bool>,
    /// File holding the bearer token the admin endpoints (all but the probes) require.
    #[arg(long, env = "WEIR_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Allow a non-loopback admin listener without TLS and a token.
    #[arg(long, env = "WEIR_ADMIN_INSECURE")]
    admin_insecure: Option<bool>,
    /// Data directory.
    #[arg(long, env = "WEIR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Durability: always | never | interval:<ms>.
    #[arg(long, env = "WEIR_FSYNC")]
    fsync: Option<String>,
    /// Create topics on first use (Kafka's auto.create.topics.enable).
    #[arg(long, env = "WEIR_AUTO_CREATE_TOPICS")]
    auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics (Kafka's num.partitions).
    #[arg(long, env = "WEIR_DEFAULT_PARTITIONS")]
    default_partitions: Option<i32>,
    /// Partitions of `__consumer_offsets` when it is created (Kafka's offsets.topic.num.partitions).
    #[arg(long, env = "WEIR_OFFSETS_TOPIC_NUM_PARTITIONS")]
    offsets_topic_num_partitions: Option<i32>,
    /// Partitions of `__transaction_state` when it is created (Kafka's
    /// transaction.state.log.num.partitions).
    #[arg(long, env = "WEIR_TRANSACTION_STATE_LOG_NUM_PARTITIONS")]
    transaction_state_log_num_partitions: Option<i32>,
    /// Partitions of `__share_group_state` when it is created (Kafka's
    /// share.coordinator.state.topic.num.partitions).
    #[arg(long, env = "WEIR_SHARE_COORDINATOR_STATE_TOPIC_NUM_PARTITIONS")]
    share_coordinator_state_topic_num_partitions: Option<i32>,
    /// Longest transaction timeout a producer may ask for (Kafka's transaction.max.timeout.ms).
    #[arg(long, env = "WEIR_TRANSACTION_MAX_TIMEOUT_MS")]
    transaction_max_timeout_ms: Option<i32>,
    /// Check a producer's first transactional batch in a partition with its transaction
    /// coordinator (Kafka's transaction.partition.verification.enable, KIP-890).
    #[arg(long, env = "WEIR_TRANSACTION_PARTITION_VERIFICATION_ENABLE")]
    transaction_partition_verification_enable: Option<bool>,
    /// How often timed-out transactions are aborted (Kafka's
    /// transaction.abort.timed.out.transaction.cleanup.interval.ms).
    #[arg(
        long,
        env = "WEIR_TRANSACTION_ABORT_TIMED_OUT_TRANSACTION_CLEANUP_INTERVAL_MS"
    )]
    transaction_abort_timed_out_transaction_cleanup_interval_ms: Option<u64>,
    /// A transactional id idle this long, with no transaction open, is forgotten (Kafka's
    /// transactional.id.expiration.ms).
    #[arg(long, env = "WEIR_TRANSACTIONAL_ID_EXPIRATION_MS")]
    transactional_id_expiration_ms: Option<i64>,
    /// Delay before the first rebalance of a new group (Kafka's group.initial.rebalance.delay.ms).
    #[arg(long, env = "WEIR_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    group_initial_rebalance_delay_ms: Option<i64>,
    /// How often the log cleaner looks for compacted partitions to clean, in ms (Kafka's
    /// log.cleaner.backoff.ms).
    #[arg(long, env = "WEIR_LOG_CLEANER_BACKOFF_MS")]
    log_cleaner_backoff_ms: Option<u64>,
    /// Smallest session timeout a classic group member may ask for (group.min.session.timeout.ms).
    #[arg(long, env = "WEIR_GROUP_MIN_SESSION_TIMEOUT_MS")]
    group_min_session_timeout_ms: Option<i32>,
    /// Largest session timeout a classic group member may ask for (group.max.session.timeout.ms).
    #[arg(long, env = "WEIR_GROUP_MAX_SESSION_TIMEOUT_MS")]
    group_max_session_timeout_ms: Option<i32>,
    /// Heartbeat interval of consumer-protocol group members (group.consumer.heartbeat.interval.ms).
    #[arg(long, env = "WEIR_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS")]
    group_consumer_heartbeat_interval_ms: Option<i32>,
    /// Session timeout of consumer-protocol group members (group.consumer.session.timeout.ms).
    #[arg(long, env = "WEIR_GROUP_CONSUMER_SESSION_TIMEOUT_MS")]
    group_consumer_session_timeout_ms: Option<i32>,
    /// Server assignors for consumer-protocol groups, the first the default (group.consumer.assignors).
    #[arg(long, env = "WEIR_GROUP_CONSUMER_ASSIGNORS")]
    group_consumer_assignors: Option<String>,
    /// How long a share group member holds a record it acquired, unless the group sets
    /// share.record.lock.duration.ms (group.share.record.lock.duration.ms).
    #[arg(long, env = "WEIR_GROUP_SHARE_RECORD_LOCK_DURATION_MS")]
    group_share_record_lock_duration_ms: Option<i32>,
    /// Lowest lock duration a share group may set (group.share.min.record.lock.duration.ms).
    #[arg(long, env = "WEIR_GROUP_SHARE_MIN_RECORD_LOCK_DURATION_MS")]
    group_share_min_record_lock_duration_ms: Option<i32>,
    /// Deliveries of a record before it is archived, unless the group sets
    /// share.delivery.count.limit (group.share.delivery.count.limit).
    #[arg(long, env = "WEIR_GROUP_SHARE_DELIVERY_COUNT_LIMIT")]
    group_share_delivery_count_limit: Option<u16>,
    /// Most records in flight per share-partition (group.share.partition.max.record.locks).
    #[arg(long, env = "WEIR_GROUP_SHARE_PARTITION_MAX_RECORD_LOCKS")]
    group_share_partition_max_record_locks: Option<usize>,
    /// Session timeout of share group members (group.share.session.timeout.ms).
    #[arg(long, env = "WEIR_GROUP_SHARE_SESSION_TIMEOUT_MS")]
    group_share_session_timeout_ms: Option<i32>,
    /// Heartbeat interval of share group members (group.share.heartbeat.interval.ms).
    #[arg(long, env = "WEIR_GROUP_SHARE_HEARTBEAT_INTERVAL_MS")]
    group_share_heartbeat_interval_ms: Option<i32>,
    /// Node id of this broker.
    #[arg(long, env = "WEIR_NODE_ID")]
    node_id: Option<i32>,
    /// Most open client connections; more are closed at once (Kafka's max.connections).
    #[arg(long, env = "WEIR_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most open client connections from one IP address (max.connections.per.ip).
    #[arg(long, env = "WEIR_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Per-IP limits in place of --max-connections-per-ip, as `host:count,...`
    /// (max.connections.per.ip.overrides).
    #[arg(long, env = "WEIR_MAX_CONNECTIONS_PER_IP_OVERRIDES")]
    max_connections_per_ip_overrides: Option<String>,
    /// Connections accepted per second across the client listeners; over it, accepting waits
    /// (max.connection.creation.rate).
    #[arg(long, env = "WEIR_MAX_CONNECTION_CREATION_RATE")]
    max_connection_creation_rate: Option<u32>,
    /// Requests read ahead of their responses on one connection.
    #[arg(long, env = "WEIR_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION")]
    max_in_flight_requests_per_connection: Option<usize>,
    /// Largest request frame accepted; larger ones close the connection (socket.request.max.bytes).
    #[arg(long, env = "WEIR_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<usize>,
    /// Bytes of requests read but not yet answered, over all connections (queued.max.request.bytes).
    #[arg(long, env = "WEIR_MAX_QUEUED_REQUEST_BYTES")]
    max_queued_request_bytes: Option<usize>,
    /// Close connections idle for this long (connections.max.idle.ms).
    #[arg(long, env = "WEIR_CONNECTIONS_MAX_IDLE_MS")]
    connections_max_idle_ms: Option<u64>,
    /// etcd endpoints (comma-separated `http://host:port`): join or form a cluster whose
    /// metadata lives there. Without it the broker is a single node with local metadata.
    #[arg(long, env = "WEIR_ETCD", value_delimiter = ',')]
    etcd: Vec<String>,
    /// Name of the cluster in etcd (several clusters can share one etcd).
    #[arg(long, env = "WEIR_CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// Rack of this broker (broker.rack): a partition's replicas go to distinct racks.
    #[arg(long, env = "WEIR_RACK")]
    rack: Option<String>,
    /// Replication factor of topics created without one (default.replication.factor), capped at
    /// the live brokers.
    #[arg(long, env = "WEIR_DEFAULT_REPLICATION_FACTOR")]
    default_replication_factor: Option<i32>,
    /// Replication factor of `__consumer_offsets` and the share state topic when they are
    /// created (offsets.topic.replication.factor), capped at the live brokers.
    #[arg(long, env = "WEIR_OFFSETS_TOPIC_REPLICATION_FACTOR")]
    offsets_topic_replication_factor: Option<i32>,
    /// Replication factor of `__transaction_state` when it is created
    /// (transaction.state.log.replication.factor), capped at the live brokers.
    #[arg(long, env = "WEIR_TRANSACTION_STATE_LOG_REPLICATION_FACTOR")]
    transaction_state_log_replication_factor: Option<i32>,
    /// A broker that stops renewing its etcd lease for this long is gone (broker.session.timeout.ms).
    #[arg(long, env = "WEIR_BROKER_SESSION_TIMEOUT_MS")]
    broker_session_timeout_ms: Option<u64>,
    /// How long a partition replica waits for its leader before standing for election.
    #[arg(long, env = "WEIR_REPLICA_ELECTION_TIMEOUT_MS")]
    replica_election_timeout_ms: Option<u64>,
    /// How long the controller waits before moving the replicas of a broker that is gone.
    #[arg(long, env = "WEIR_REPLICA_REPLACEMENT_DELAY_MS")]
    replica_replacement_delay_ms: Option<u64>,
    /// How often the controller moves leadership back to preferred replicas that are in sync
    /// (Kafka's auto.leader.rebalance.enable with leader.imbalance.check.interval.seconds);
    /// 0 turns automatic rebalancing off (ElectLeaders still works).
    #[arg(long, env = "WEIR_LEADER_REBALANCE_INTERVAL_MS")]
    leader_rebalance_interval_ms: Option<u64>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "WEIR_LOG_JSON")]
    log_json: bool,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<(BrokerConfig, bool)> {
        let mut config = BrokerConfig::default();
        let mut file_security = SecuritySettings::default();
        let mut file_has_listener = false;
        if let Some(path) = &self.config {
            let mut file = FileConfig::load(path)?;
            file_security = file.security_settings();
            file_has_listener = file.listener.is_some() || file.advertised_listener.is_some();
            file.apply(&mut config)?;
        }
        let flag_security = SecuritySettings {
            listeners: self.listeners,
            advertised_listeners: self.advertised_listeners,
            listener_security_protocol_map: self.listener_security_protocol_map,
            ssl_certificate_file: self.ssl_certificate_file,
            ssl_key_file: self.ssl_key_file,
            ssl_client_ca_file: self.ssl_client_ca_file,
            ssl_client_auth: self.ssl_client_auth,
            ssl_cipher_suites: self.ssl_cipher_suites,
            ssl_principal_mapping_rules: self.ssl_principal_mapping_rules,
            security_reload_check_interval_ms: self.security_reload_check_interval_ms,
            sasl_enabled_mechanisms: self.sasl_enabled_mechanisms,
            oauthbearer_jwks_file: self.oauthbearer_jwks_file,
            oauthbearer_expected_audience: self.oauthbearer_expected_audience,
            oauthbearer_expected_issuer: self.oauthbearer_expected_issuer,
            oauthbearer_clock_skew_s: self.oauthbearer_clock_skew_s,
            oauthbearer_sub_claim_name: self.oauthbearer_sub_claim_name,
            connections_max_reauth_ms: self.connections_max_reauth_ms,
            connection_failed_authentication_delay_ms: self
                .connection_failed_authentication_delay_ms,
            inter_broker_listener_name: self.inter_broker_listener_name,
            sasl_mechanism_inter_broker_protocol: self.sasl_mechanism_inter_broker_protocol,
            inter_broker_sasl_username: self.inter_broker_sasl_username,
            inter_broker_sasl_password_file: self.inter_broker_sasl_password_file,
            inter_broker_ssl_ca_file: self.inter_broker_ssl_ca_file,
        };
        let uses_new_listeners =
            flag_security.listeners.is_some() || file_security.listeners.is_some();
        let legacy_listener =
            file_has_listener || self.listener.is_some() || self.advertised_listener.is_some();
        anyhow::ensure!(
            !(uses_new_listeners && legacy_listener),
            "listener/advertised-listener and listeners cannot be combined: \
             write --listener ADDR as --listeners PLAINTEXT://ADDR"
        );
        flag_security.or(file_security).apply(&mut config)?;
        if let Some(v) = self.listener {
            config.listener = v;
        }
        if let Some(v) = self.advertised_listener {
            config.advertised_listener = Some(v);
        }
        if let Some(v) = self.admin_listener {
            config.admin_listener = parse_optional_addr(&v).map_err(anyhow::Error::msg)?;
        }
        if let Some(v) = self.admin_tls {
            config.admin.tls = v;
        }
        if let Some(v) = self.admin_token_file {
            config.admin.token_file = Some(v);
        }
        if let Some(v) = self.admin_insecure {
            config.admin.insecure = v;
        }
        if let Some(v) = &self.authorizer {
            config.authorizer.enabled = weir_broker::config::parse_authorizer(v)
                .map_err(|e| anyhow::anyhow!("--authorizer: {e}"))?;
        }
        if let Some(v) = &self.super_users {
            config.authorizer.super_users = weir_broker::authz::parse_super_users(v)
                .map_err(|e| anyhow::anyhow!("--super-users: {e}"))?;
        }
        if let Some(v) = self.allow_everyone_if_no_acl_found {
            config.authorizer.allow_everyone_if_no_acl_found = v;
        }
        if let Some(v) = self.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = self.fsync {
            config.fsync = v.parse().map_err(|e| {
                anyhow::anyhow!("--fsync {v}: {e} (use always, never or interval:<ms>)")
            })?;
        }
        if let Some(v) = self.auto_create_topics {
            config.auto_create_topics = v;
        }
        if let Some(v) = self.default_partitions {
            anyhow::ensure!(v >= 1, "--default-partitions must be at least 1");
            config.default_partitions = v;
        }
        if let Some(v) = self.offsets_topic_num_partitions {
            config.offsets_topic_num_partitions =
                weir_broker::config::check_offsets_topic_num_partitions(v)
                    .map_err(|e| anyhow::anyhow!("--offsets-topic-num-partitions {e}"))?;
        }
        if let Some(v) = self.transaction_state_log_num_partitions {
            config.transaction_state_log_num_partitions =
                weir_broker::config::check_offsets_topic_num_partitions(v)
                    .map_err(|e| anyhow::anyhow!("--transaction-state-log-num-partitions {e}"))?;
        }
        if let Some(v) = self.share_coordinator_state_topic_num_partitions {
            config.share_coordinator_state_topic_num_partitions =
                weir_broker::config::check_offsets_topic_num_partitions(v).map_err(|e| {
                    anyhow::anyhow!("--share-coordinator-state-topic-num-partitions {e}")
                })?;
        }
        if let Some(v) = self.transaction_max_timeout_ms {
            anyhow::ensure!(v >= 1, "--transaction-max-timeout-ms must be at least 1");
            config.transaction_max_timeout_ms = v;
        }
        if let Some(v) = self.transaction_partition_verification_enable {
            config.transaction_partition_verification_enable = v;
        }
        if let Some(v) = self.transactional_id_expiration_ms {
            config.transactional_id_expiration_ms = v.max(1);
        }
        if let Some(v) = self.transaction_abort_timed_out_transaction_cleanup_interval_ms {
            config.transaction_abort_timed_out_transaction_cleanup_interval_ms = v.max(1);
        }
        if let Some(v) = self.group_initial_rebalance_delay_ms {
            config.group_initial_rebalance_delay_ms = v;
        }
        if let Some(v) = self.log_cleaner_backoff_ms {
            config.log_cleaner_backoff_ms = v;
        }
        if let Some(v) = self.group_min_session_timeout_ms {
            config.group_min_session_timeout_ms = v;
        }
        if let Some(v) = self.group_max_session_timeout_ms {
            config.group_max_session_timeout_ms = v;
        }
        if let Some(v) = self.group_consumer_heartbeat_interval_ms {
            config.group_consumer_heartbeat_interval_ms = v;
        }
        if let Some(v) = self.group_consumer_session_timeout_ms {
            config.group_consumer_session_timeout_ms = v;
        }
        if let Some(v) = &self.group_consumer_assignors {
            config.group_consumer_assignors = weir_broker::config::parse_assignors(v)
                .map_err(|e| anyhow::anyhow!("--group-consumer-assignors {v}: {e}"))?;
        }
        anyhow::ensure!(
            config.group_consumer_heartbeat_interval_ms >= 1,
            "group-consumer-heartbeat-interval-ms must be at least 1"
        );
        anyhow::ensure!(
            config.group_consumer_session_timeout_ms > config.group_consumer_heartbeat_interval_ms,
            "group-consumer-session-timeout-ms must be above the heartbeat interval"
        );
        if let Some(v) = self.group_share_record_lock_duration_ms {
            config.share.record_lock_duration_ms = v;
        }
        if let Some(v) = self.group_share_min_record_lock_duration_ms {
            config.share.min_record_lock_duration_ms = v;
        }
        if let Some(v) = self.group_share_delivery_count_limit {
            config.share.delivery_count_limit = v;
        }
        if let Some(v) = self.group_share_partition_max_record_locks {
            config.share.partition_max_record_locks = v;
        }
        if let Some(v) = self.group_share_session_timeout_ms {
            config.share.session_timeout_ms = v;
        }
        if let Some(v) = self.group_share_heartbeat_interval_ms {
            config.share.heartbeat_interval_ms = v;
        }
        let share = &mut config.share;
        anyhow::ensure!(
            share.record_lock_duration_ms >= 100 && share.min_record_lock_duration_ms >= 100,
            "group-share-record-lock-duration-ms and its minimum must be at least 100"
        );
        // A default below Kafka's minimum lowers the minimum with it (tests use short locks).
        share.min_record_lock_duration_ms = share
            .min_record_lock_duration_ms
            .min(share.record_lock_duration_ms);
        share.max_record_lock_duration_ms = share
            .max_record_lock_duration_ms
            .max(share.record_lock_duration_ms);
        anyhow::ensure!(
            (2..=10).contains(&share.delivery_count_limit),
            "group-share-delivery-count-limit must be 2-10"
        );
        anyhow::ensure!(
            (100..=10_000).contains(&share.partition_max_record_locks),
            "group-share-partition-max-record-locks must be 100-10000"
        );
        anyhow::ensure!(
            share.heartbeat_interval_ms >= 1
                && share.session_timeout_ms > share.heartbeat_interval_ms,
            "group-share-session-timeout-ms must be above group-share-heartbeat-interval-ms"
        );
        if let Some(v) = self.node_id {
            config.node_id = v;
        }
        if let Some(v) = self.max_connections {
            config.max_connections = v;
        }
        if let Some(v) = self.max_connections_per_ip {
            config.max_connections_per_ip = v;
        }
        if let Some(v) = &self.max_connections_per_ip_overrides {
            config.max_connections_per_ip_overrides =
                weir_broker::config::ConnectionOverrides::parse(v)
                    .map_err(|e| anyhow::anyhow!("max-connections-per-ip-overrides: {e}"))?;
        }
        if let Some(v) = self.max_connection_creation_rate {
            config.max_connection_creation_rate = v;
        }
        if let Some(v) = self.max_in_flight_requests_per_connection {
            config.max_in_flight_requests_per_connection = v;
        }
        if let Some(v) = self.max_request_bytes {
            config.max_request_bytes = v;
        }
        if let Some(v) = self.max_queued_request_bytes {
            config.max_queued_request_bytes = v;
        }
        if let Some(v) = self.connections_max_idle_ms {
            config.connections_max_idle_ms = v;
        }
        if let Some(v) = self.replica_election_timeout_ms {
            anyhow::ensure!(v >= 50, "replica-election-timeout-ms must be at least 50");
            config.replica_election_timeout_ms = v;
        }
        if !self.etcd.is_empty() {
            let mut cluster = config.cluster.take().unwrap_or_default();
            cluster.etcd = self.etcd.clone();
            if let Some(v) = self.cluster_name {
                cluster.cluster_name = v;
            }
            if let Some(v) = self.rack {
                cluster.rack = Some(v);
            }
            for (flag, value, setting) in [
                (
                    "--default-replication-factor",
                    self.default_replication_factor,
                    &mut cluster.default_replication_factor,
                ),
                (
                    "--offsets-topic-replication-factor",
                    self.offsets_topic_replication_factor,
                    &mut cluster.offsets_replication_factor,
                ),
                (
                    "--transaction-state-log-replication-factor",
                    self.transaction_state_log_replication_factor,
                    &mut cluster.transaction_state_replication_factor,
                ),
            ] {
                if let Some(v) = value {
                    anyhow::ensure!(v >= 1, "{flag} must be at least 1");
                    *setting = v;
                }
            }
            if let Some(v) = self.broker_session_timeout_ms {
                anyhow::ensure!(
                    v >= 2_000,
                    "--broker-session-timeout-ms must be at least 2000"
                );
                cluster.session_timeout_ms = v;
            }
            if let Some(v) = self.replica_replacement_delay_ms {
                cluster.replica_replacement_delay_ms = v;
            }
            if let Some(v) = self.leader_rebalance_interval_ms {
                cluster.leader_rebalance_interval_ms = v;
            }
            anyhow::ensure!(
                (0..weir_broker::producers::MAX_CLUSTER_NODE_ID).contains(&config.node_id),
                "--node-id must be in 0..{} in a cluster",
                weir_broker::producers::MAX_CLUSTER_NODE_ID
            );
            config.cluster = Some(cluster);
        }
        anyhow::ensure!(
            config.max_connections >= 1,
            "max-connections must be at least 1"
        );
        // As Kafka: 0 only with overrides (only the IPs listed may connect).
        anyhow::ensure!(
            config.max_connections_per_ip >= 1
                || !config.max_connections_per_ip_overrides.by_ip.is_empty(),
            "max-connections-per-ip must be at least 1 (0 only with max-connections-per-ip-overrides)"
        );
        anyhow::ensure!(
            config.max_in_flight_requests_per_connection >= 1,
            "max-in-flight-requests-per-connection must be at least 1"
        );
        anyhow::ensure!(
            config.max_request_bytes >= 1024,
            "max-request-bytes must be at least 1024"
        );
        anyhow::ensure!(
            config.max_queued_request_bytes >= 1024,
            "max-queued-request-bytes must be at least 1024"
        );
        anyhow::ensure!(
            config.connections_max_idle_ms >= 1,
            "connections-max-idle-ms must be at least 1"
        );
        Ok((config, self.log_json))
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A log line that cannot be written (stderr on a full disk) is dropped. tracing-subscriber's
    // default reports such failures with `eprintln!`, which panics when stderr fails: a broker
    // whose log file's disk filled up would die on its next log line.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime does for its servers:
/// the broker holds a descriptor per segment file and per connection, and the usual soft default
/// (1024) is far below what the hard limit allows (10,000 partitions need more). Returns the
/// limit before and after, or the OS error.
fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok((before, limit.rlim_cur))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let (config, json) = (*args).into_config()?;
            init_logging(json);
            match raise_open_files_limit() {
                Ok((before, after)) if after > before => {
                    tracing::info!(
                        before,
                        after,
                        "raised the open files limit to the hard limit"
                    )
                }
                Ok((_, limit)) => tracing::info!(limit, "open files limit"),
                Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(config))
        }
        Command::Cli(command) => {
            if let Err(e) = cli::run(cli.common, command) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for l in config.effective_listeners() {
        let bound = tokio::net::TcpListener::bind(l.addr).await.with_context(|| {
            format!(
                "cannot listen on {} for listener {} (is another broker running? use --listener or --listeners)",
                l.addr, l.name
            )
        })?;
        listeners.push((l, bound));
    }
    let metrics = Arc::new(Metrics::new());
    let admin_security = AdminSecurity::load(&config)?;
    let admin_state = AdminState::secured(metrics.clone(), config.clone(), admin_security);
    let (admin_stop, admin_task) = match config.admin_listener {
        Some(addr) => {
            let admin = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!(
                    "cannot listen on admin address {addr} (is another broker running? \
                     use --admin-listener, or --admin-listener none to disable it)"
                )
            })?;
            tracing::info!(admin_listener = %addr, "admin HTTP API and /metrics listening");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(admin_http::serve(admin, admin_state.clone(), async move {
                let _ = rx.await;
            }));
            (Some(tx), Some(task))
        }
        None => (None, None),
    };
    let data_dir = config.data_dir.clone();
    let broker = match config.cluster.clone() {
        None => tokio::task::spawn_blocking(move || {
            weir_broker::broker::Broker::open_with_metrics(config, Arc::new(SystemClock), metrics)
        })
        .await?
        .with_context(|| format!("cannot open data directory {}", data_dir.display()))?,
        Some(settings) => {
            let cluster = join_cluster(&config, settings, metrics.clone()).await?;
            tokio::task::spawn_blocking(move || {
                weir_broker::broker::Broker::open_clustered(
                    config,
                    Arc::new(SystemClock),
                    metrics,
                    cluster,
                )
            })
            .await?
            .with_context(|| format!("cannot open data directory {}", data_dir.display()))?
        }
    };
    admin_state.set_broker(broker.clone());
    let state = admin_state.clone();
    let reloading = broker.clone();
    let sighup = tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            let b = reloading.clone();
            let _ =
                tokio::task::spawn_blocking(move || weir_broker::reload_security(&b, true)).await;
        }
    });
    let result = weir_broker::run_listeners(broker, listeners, async move {
        shutdown_signal().await;
        state.set_not_ready();
    })
    .await;
    sighup.abort();
    if let Some(stop) = admin_stop {
        let _ = stop.send(());
    }
    if let Some(task) = admin_task {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "admin listener failed"),
            Err(e) => tracing::warn!(error = %e, "admin listener task failed"),
            Ok(Ok(())) => {}
        }
    }
    Ok(result?)
}

/// Connects to etcd and registers this broker (id, advertised address, rack).
async fn join_cluster(
    config: &BrokerConfig,
    settings: weir_broker::config::ClusterSettings,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Arc<weir_broker::cluster::runtime::Cluster>> {
    use weir_broker::cluster::metadata::BrokerRecord;
    use weir_broker::cluster::store::{EtcdStore, StoreConfig};
    // Other brokers connect to the inter-broker listener, speaking its security protocol;
    // clients of every listener are told that listener's addresses.
    let inter_broker = config.inter_broker_listener().map_err(anyhow::Error::msg)?;
    let peer_security =
        weir_broker::cluster::peer::PeerSecurity::load(&inter_broker, &config.security, metrics)
            .context("inter-broker security")?;
    let (host, port) = inter_broker.advertised_host_port();
    anyhow::ensure!(
        host != "0.0.0.0" && host != "::" && !host.is_empty(),
        "in a cluster, other brokers connect to the advertised address of listener {}: \
         advertise an address they can reach (--advertised-listener or --advertised-listeners; \
         the listener binds {})",
        inter_broker.name,
        inter_broker.addr
    );
    let endpoints = config
        .effective_listeners()
        .iter()
        .map(|l| {
            let (host, port) = l.advertised_host_port();
            weir_broker::cluster::metadata::BrokerEndpoint {
                listener: l.name.clone(),
                host,
                port: i32::from(port),
            }
        })
        .collect();
    let store_config = StoreConfig {
        endpoints: settings.etcd.clone(),
        cluster_name: settings.cluster_name.clone(),
        session_ttl_s: i64::try_from(settings.session_timeout_ms.div_ceil(1000)).unwrap_or(10),
        request_timeout_ms: 5_000,
    };
    let me = BrokerRecord {
        id: config.node_id,
        host,
        port: i32::from(port),
        rack: settings.rack.clone(),
        endpoints,
    };
    let store = EtcdStore::connect(&store_config, me)
        .await
        .with_context(|| {
            format!(
                "cannot join the cluster through etcd at {}",
                settings.etcd.join(",")
            )
        })?;
    tracing::info!(
        node_id = config.node_id,
        cluster = %settings.cluster_name,
        etcd = %settings.etcd.join(","),
        "joined the cluster"
    );
    Ok(weir_broker::cluster::runtime::Cluster::new(
        store,
        settings,
        Arc::new(SystemClock),
        peer_security,
    ))
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down (send the signal again to exit at once)");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(std::iter::once("weir").chain(args.iter().copied()))
            .expect("parse");
        match cli.command {
            Command::Serve(a) => *a,
            Command::Cli(_) => panic!("not serve"),
        }
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("weir.toml");
        std::fs::write(
            &file,
            "max-connections = 5\nmax-request-bytes = 4096\nconnections-max-idle-ms = 1000\n",
        )
        .expect("write");
        let path = file.to_string_lossy().into_owned();
        let (c, _) = serve_args(&["serve", "--config", &path, "--max-connections", "7"])
            .into_config()
            .expect("config");
        assert_eq!(c.max_connections, 7);
        assert_eq!(c.max_request_bytes, 4096);
        assert_eq!(c.connections_max_idle_ms, 1000);
        assert_eq!(
            c.max_connections_per_ip,
            BrokerConfig::default().max_connections_per_ip
        );
    }

    #[test]
    fn listeners_come_from_flags_or_the_file_but_not_both_forms() {
        let (c, _) = serve_args(&[
            "serve",
            "--listeners",
            "INTERNAL://127.0.0.1:9192,EXTERNAL://0.0.0.0:9193",
            "--listener-security-protocol-map",
            "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
            "--sasl-enabled-mechanisms",
            "PLAIN,SCRAM-SHA-512",
        ])
        .into_config()
        .expect("config");
        let l = c.effective_listeners();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].protocol.name(), "SASL_PLAINTEXT");
        assert_eq!(c.security.sasl_enabled_mechanisms.len(), 2);

        // The old flag is one PLAINTEXT listener, exactly as before.
        let (c, _) = serve_args(&["serve", "--listener", "127.0.0.1:9300"])
            .into_config()
            .expect("config");
        let l = c.effective_listeners();
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].name.as_str(), l[0].protocol.name()),
            ("PLAINTEXT", "PLAINTEXT")
        );
        assert_eq!(l[0].addr, "127.0.0.1:9300".parse().expect("addr"));

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("weir.toml");
        std::fs::write(
            &file,
            "listeners = \"SSL://127.0.0.1:9400\"\nssl-client-auth = \"required\"\n",
        )
        .expect("write");
        let path = file.to_string_lossy().into_owned();
        let (c, _) = serve_args(&["serve", "--config", &path])
            .into_config()
            .expect("config");
        assert_eq!(c.effective_listeners()[0].protocol.name(), "SSL");
        let err = serve_args(&["serve", "--config", &path, "--listener", "127.0.0.1:1"])
            .into_config()
            .expect_err("both forms");
        assert!(
            err.to_string().contains("--listeners PLAINTEXT://"),
            "{err}"
        );
        let err = serve_args(&["serve", "--sasl-enabled-mechanisms", "GSSAPI"])
            .into_config()
            .expect_err("unknown mechanism");
        assert!(err.to_string().contains("GSSAPI"), "{err}");
    }

    #[test]
    fn the_authorizer_is_off_unless_asked_for_by_flag_or_file() {
        let (c, _) = serve_args(&["serve"]).into_config().expect("config");
        assert!(!c.authorizer.enabled);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("weir.toml");
        std::fs::write(
            &file,
            "authorizer = \"on\"\nsuper-users = \"User:admin;User:ops\"\n",
        )
        .expect("write");
        let path = file.to_string_lossy().into_owned();
        let (c, _) = serve_args(&["serve", "--config", &path])
            .into_config()
            .expect("config");
        assert!(c.authorizer.enabled);
        assert_eq!(c.authorizer.super_users, vec!["User:admin", "User:ops"]);
        assert!(!c.authorizer.allow_everyone_if_no_acl_found);
        let (c, _) = serve_args(&[
            "serve",
            "--config",
            &path,
            "--authorizer",
            "off",
            "--allow-everyone-if-no-acl-found",
            "true",
        ])
        .into_config()
        .expect("config");
        assert!(!c.authorizer.enabled && c.authorizer.allow_everyone_if_no_acl_found);
        assert!(serve_args(&["serve", "--authorizer", "maybe"])
            .into_config()
            .is_err());
        assert!(serve_args(&["serve", "--super-users", "admin"])
            .into_config()
            .is_err());
    }

    #[test]
    fn limits_are_validated() {
        let err = serve_args(&["serve", "--max-in-flight-requests-per-connection", "0"])
            .into_config()
            .expect_err("zero in-flight");
        assert!(err
            .to_string()
            .contains("max-in-flight-requests-per-connection"));
    }
}
