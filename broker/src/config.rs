//! Broker configuration: every setting with its default, and the TOML file layout.
//!
//! Precedence (highest first): command-line flags, `WEIR_*` environment variables, the TOML config
//! file, defaults. Flags and environment are merged by the binary (clap); this module owns the
//! defaults, the file format (unknown keys are an error naming the key) and validation.

use std::net::SocketAddr;
use std::path::PathBuf;

use weir_storage::FsyncPolicy;

use crate::authz::{parse_super_users, AuthorizerConfig};
use crate::consumer_groups::assignor::AssignorKind;
use crate::security::listeners::{parse_host_port, parse_listeners};
use crate::security::sasl::{parse_mechanisms, Mechanism};
use crate::security::{ListenerConfig, SecurityConfig};

/// Default partition count of `__consumer_offsets` (Kafka's is 50; see docs/configuration.md).
pub const DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS: i32 = 16;

/// Default partition count of `__transaction_state` (Kafka's is 50; Weir's is the offsets
/// topic's, for the same reasons: see docs/configuration.md).
pub const DEFAULT_TRANSACTION_STATE_LOG_NUM_PARTITIONS: i32 = 16;

/// Default partition count of `__share_group_state` (Kafka's is 50; Weir's is the offsets
/// topic's, for the same reasons: see docs/configuration.md).
pub const DEFAULT_SHARE_COORDINATOR_STATE_TOPIC_NUM_PARTITIONS: i32 = 16;

/// Checks a partition count for `__consumer_offsets`: at least 1, at most what a topic may have.
pub fn check_offsets_topic_num_partitions(count: i32) -> Result<i32, String> {
    let max = crate::topics::MAX_PARTITIONS_PER_TOPIC;
    if (1..=max).contains(&count) {
        Ok(count)
    } else {
        Err(format!("{count}: must be between 1 and {max}"))
    }
}

/// Everything `weir serve` needs to run a broker.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// The single PLAINTEXT listener used when `listeners` is empty (`--listener`).
    pub listener: SocketAddr,
    /// host:port advertised in Metadata for `listener`; defaults to the listener.
    pub advertised_listener: Option<String>,
    /// Named listeners with security protocols (`--listeners`); empty: the one PLAINTEXT
    /// `listener`. See [`BrokerConfig::effective_listeners`].
    pub listeners: Vec<ListenerConfig>,
    /// TLS, SASL and authentication settings.
    pub security: SecurityConfig,
    /// ACL authorization (off by default; see `authz`).
    pub authorizer: AuthorizerConfig,
    /// Admin HTTP listener (metrics, health).
    pub admin_listener: Option<SocketAddr>,
    /// Its TLS, token and exposure (see `admin_http`).
    pub admin: crate::admin_http::AdminHttpConfig,
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    /// Partitions of `__consumer_offsets` when it is created (Kafka's
    /// offsets.topic.num.partitions). An existing topic keeps its partition count.
    pub offsets_topic_num_partitions: i32,
    /// Partitions of `__transaction_state` when it is created (Kafka's
    /// transaction.state.log.num.partitions). An existing topic keeps its partition count.
    pub transaction_state_log_num_partitions: i32,
    /// Partitions of `__share_group_state` when it is created (Kafka's
    /// share.coordinator.state.topic.num.partitions). An existing topic keeps its count.
    pub share_coordinator_state_topic_num_partitions: i32,
    /// The longest transaction timeout a producer may ask for (transaction.max.timeout.ms).
    pub transaction_max_timeout_ms: i32,
    /// KIP-890 part 1 (transaction.partition.verification.enable): a producer's first
    /// transactional batch in a partition is appended only if its transaction coordinator has
    /// the partition in the producer's ongoing transaction.
    pub transaction_partition_verification_enable: bool,
    /// How often timed-out transactions are looked for
    /// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// A transactional id with no transaction open and no request for this long is forgotten
    /// (Kafka's transactional.id.expiration.ms, 7 days).
    pub transactional_id_expiration_ms: i64,
    pub group_initial_rebalance_delay_ms: i64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// Consumer-protocol groups (KIP-848): Kafka's group.consumer.heartbeat.interval.ms.
    pub group_consumer_heartbeat_interval_ms: i32,
    /// Kafka's group.consumer.session.timeout.ms.
    pub group_consumer_session_timeout_ms: i32,
    /// Kafka's group.consumer.assignors: the server assignors members may ask for; the first is
    /// the default.
    pub group_consumer_assignors: Vec<AssignorKind>,
    /// Kafka's group.consumer.max.size.
    pub group_consumer_max_size: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Kafka's max.connections.per.ip.overrides: per-IP limits in place of
    /// `max_connections_per_ip` (host names resolved once, at start).
    pub max_connections_per_ip_overrides: ConnectionOverrides,
    /// Kafka's max.connection.creation.rate: connections per second accepted across the client
    /// listeners; over it, accepting waits (the inter-broker listener is not counted).
    pub max_connection_creation_rate: u32,
    pub max_in_flight_requests_per_connection: usize,
    pub max_request_bytes: usize,
    /// Bytes of requests, across all connections, read but not yet answered (Kafka's
    /// queued.max.request.bytes). Reading stops while it is reached, so memory stays bounded.
    pub max_queued_request_bytes: usize,
    pub connections_max_idle_ms: u64,
    pub log_retention_check_interval_ms: u64,
    /// How often the log cleaner looks for compacted partitions to clean (Kafka's
    /// log.cleaner.backoff.ms).
    pub log_cleaner_backoff_ms: u64,
    /// How often every partition's recovery point is written (storage's
    /// `DataDir::checkpoint_recovery_points`): after a crash of the process, recovery checks the
    /// CRC only of what was written since.
    pub log_recovery_point_interval_ms: u64,
    pub fetch_max_wait_cap_ms: u64,
    /// How long a partition replica waits without hearing from its leader before it stands for
    /// election (and how long a leader waits for fetches from a majority before it steps down).
    /// Kafka's `quorum.fetch.timeout.ms`-like knob; the random extra wait is as large again.
    pub replica_election_timeout_ms: u64,
    /// Share groups (KIP-932): Kafka's `group.share.*` settings.
    pub share: crate::share::ShareDefaults,
    /// Cluster mode (`None`: a single node with local metadata, no etcd).
    pub cluster: Option<ClusterSettings>,
}

/// How a broker joins a cluster: etcd for metadata and discovery, everything else automatic.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// etcd client endpoints (`http://host:port`).
    pub etcd: Vec<String>,
    /// Several Weir clusters can share one etcd: each keeps its keys under `/weir/<name>/`.
    pub cluster_name: String,
    /// Rack of this broker (Kafka's broker.rack): replicas of a partition go to distinct racks.
    pub rack: Option<String>,
    /// A broker that stops renewing its etcd lease for this long is gone (broker.session.timeout.ms).
    pub session_timeout_ms: u64,
    /// Replication factor of topics created without one (default.replication.factor; capped at
    /// the live brokers).
    pub default_replication_factor: i32,
    /// Replication factor of `__consumer_offsets` and the share state topic
    /// (offsets.topic.replication.factor; capped at the live brokers when it is created).
    pub offsets_replication_factor: i32,
    /// Replication factor of `__transaction_state` (transaction.state.log.replication.factor;
    /// capped at the live brokers when it is created).
    pub transaction_state_replication_factor: i32,
    /// How long the controller waits after a broker disappears before it moves that broker's
    /// replicas to other brokers.
    pub replica_replacement_delay_ms: u64,
    /// How often leaders check whether the preferred replica should lead instead
    /// (leader.imbalance.check.interval.seconds; 0 turns auto.leader.rebalance off).
    pub leader_rebalance_interval_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            etcd: Vec::new(),
            cluster_name: "weir".into(),
            rack: None,
            session_timeout_ms: 9_000,
            default_replication_factor: 3,
            offsets_replication_factor: 3,
            transaction_state_replication_factor: 3,
            replica_replacement_delay_ms: 60_000,
            leader_rebalance_interval_ms: 30_000,
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            listener: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised_listener: None,
            listeners: Vec::new(),
            security: SecurityConfig::default(),
            authorizer: AuthorizerConfig::default(),
            admin_listener: Some(SocketAddr::from(([127, 0, 0, 1], 9644))),
            admin: crate::admin_http::AdminHttpConfig::default(),
            data_dir: PathBuf::from("./weir-data"),
            fsync: FsyncPolicy::Never,
            auto_create_topics: true,
            default_partitions: 1,
            offsets_topic_num_partitions: DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS,
            transaction_state_log_num_partitions: DEFAULT_TRANSACTION_STATE_LOG_NUM_PARTITIONS,
            share_coordinator_state_topic_num_partitions:
                DEFAULT_SHARE_COORDINATOR_STATE_TOPIC_NUM_PARTITIONS,
            transaction_max_timeout_ms: 900_000,
            transaction_partition_verification_enable: true,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transactional_id_expiration_ms: 604_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_assignors: vec![AssignorKind::Uniform, AssignorKind::Range],
            group_consumer_max_size: 1_000,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            max_connections_per_ip_overrides: ConnectionOverrides::default(),
            // Kafka's default, Int.MaxValue: no limit.
            max_connection_creation_rate: i32::MAX as u32,
            max_in_flight_requests_per_connection: 64,
            max_request_bytes: weir_protocol::frame::DEFAULT_MAX_REQUEST_BYTES,
            max_queued_request_bytes: 256 << 20,
            connections_max_idle_ms: 600_000,
            log_retention_check_interval_ms: 300_000,
            log_cleaner_backoff_ms: 15_000,
            log_recovery_point_interval_ms: 1_000,
            fetch_max_wait_cap_ms: 30_000,
            replica_election_timeout_ms: 2_000,
            share: crate::share::ShareDefaults::default(),
            cluster: None,
        }
    }
}

impl BrokerConfig {
    /// The listeners to bind: `listeners`, or the one PLAINTEXT `listener` when that is empty.
    pub fn effective_listeners(&self) -> Vec<ListenerConfig> {
        if !self.listeners.is_empty() {
            return self.listeners.clone();
        }
        let advertised = self
            .advertised_listener
            .as_deref()
            .and_then(parse_host_port);
        vec![ListenerConfig::plaintext(self.listener, advertised)]
    }

    /// The listener brokers of a cluster reach each other on (Kafka's
    /// `inter.broker.listener.name`): the one named by `inter-broker-listener-name`, or else
    /// the first PLAINTEXT one. The connecting broker speaks that listener's security protocol.
    pub fn inter_broker_listener(&self) -> Result<ListenerConfig, String> {
        let listeners = self.effective_listeners();
        match &self.security.inter_broker.listener_name {
            Some(name) => listeners
                .into_iter()
                .find(|l| &l.name == name)
                .ok_or_else(|| {
                    format!("inter-broker-listener-name {name} is not one of the listeners")
                }),
            None => listeners
                .into_iter()
                .find(|l| l.protocol == crate::security::listeners::SecurityProtocol::Plaintext)
                .ok_or_else(|| {
                    "a broker in a cluster needs a PLAINTEXT listener for inter-broker \
                     connections, or inter-broker-listener-name naming the listener brokers \
                     use (see docs/security.md#in-a-cluster)"
                        .to_string()
                }),
        }
    }
}

/// The listener and security settings of a config file or of the command line, applied
/// together because `listeners`, `advertised-listeners` and the protocol map are read as one.
#[derive(Debug, Default, Clone)]
pub struct SecuritySettings {
    pub listeners: Option<String>,
    pub advertised_listeners: Option<String>,
    pub listener_security_protocol_map: Option<String>,
    pub ssl_certificate_file: Option<PathBuf>,
    pub ssl_key_file: Option<PathBuf>,
    pub ssl_client_ca_file: Option<PathBuf>,
    pub ssl_client_auth: Option<String>,
    pub ssl_cipher_suites: Option<String>,
    pub ssl_principal_mapping_rules: Option<String>,
    pub security_reload_check_interval_ms: Option<u64>,
    pub sasl_enabled_mechanisms: Option<String>,
    pub oauthbearer_jwks_file: Option<PathBuf>,
    pub oauthbearer_expected_audience: Option<String>,
    pub oauthbearer_expected_issuer: Option<String>,
    pub oauthbearer_clock_skew_s: Option<u64>,
    pub oauthbearer_sub_claim_name: Option<String>,
    pub connections_max_reauth_ms: Option<u64>,
    pub connection_failed_authentication_delay_ms: Option<u64>,
    pub inter_broker_listener_name: Option<String>,
    pub sasl_mechanism_inter_broker_protocol: Option<String>,
    pub inter_broker_sasl_username: Option<String>,
    pub inter_broker_sasl_password_file: Option<PathBuf>,
    pub inter_broker_ssl_ca_file: Option<PathBuf>,
}

impl SecuritySettings {
    /// `self` with every unset field taken from `lower` (a lower-precedence source).
    pub fn or(self, lower: SecuritySettings) -> SecuritySettings {
        macro_rules! merge {
            ($($f:ident),*) => { SecuritySettings { $($f: self.$f.or(lower.$f),)* } };
        }
        merge!(
            listeners,
            advertised_listeners,
            listener_security_protocol_map,
            ssl_certificate_file,
            ssl_key_file,
            ssl_client_ca_file,
            ssl_client_auth,
            ssl_cipher_suites,
            ssl_principal_mapping_rules,
            security_reload_check_interval_ms,
            sasl_enabled_mechanisms,
            oauthbearer_jwks_file,
            oauthbearer_expected_audience,
            oauthbearer_expected_issuer,
            oauthbearer_clock_skew_s,
            oauthbearer_sub_claim_name,
            connections_max_reauth_ms,
            connection_failed_authentication_delay_ms,
            inter_broker_listener_name,
            sasl_mechanism_inter_broker_protocol,
            inter_broker_sasl_username,
            inter_broker_sasl_password_file,
            inter_broker_ssl_ca_file
        )
    }

    /// Applies the settings over `config`.
    pub fn apply(self, config: &mut BrokerConfig) -> Result<(), ConfigFileError> {
        let invalid =
            |key: &'static str| move |message: String| ConfigFileError::Invalid { key, message };
        if let Some(l) = &self.listeners {
            config.listeners = parse_listeners(
                l,
                self.advertised_listeners.as_deref(),
                self.listener_security_protocol_map.as_deref(),
            )
            .map_err(invalid("listeners"))?;
        } else if self.advertised_listeners.is_some()
            || self.listener_security_protocol_map.is_some()
        {
            return Err(ConfigFileError::Invalid {
                key: "advertised-listeners",
                message: "advertised-listeners and listener-security-protocol-map need listeners"
                    .into(),
            });
        }
        let s = &mut config.security;
        macro_rules! take {
            ($($f:ident),*) => { $(if let Some(v) = self.$f { s.$f = v; })* };
        }
        take!(
            ssl_principal_mapping_rules,
            security_reload_check_interval_ms,
            oauthbearer_clock_skew_s,
            oauthbearer_sub_claim_name,
            connections_max_reauth_ms,
            connection_failed_authentication_delay_ms
        );
        if self.ssl_certificate_file.is_some() {
            s.ssl_certificate_file = self.ssl_certificate_file;
        }
        if self.ssl_key_file.is_some() {
            s.ssl_key_file = self.ssl_key_file;
        }
        if self.ssl_client_ca_file.is_some() {
            s.ssl_client_ca_file = self.ssl_client_ca_file;
        }
        if self.oauthbearer_jwks_file.is_some() {
            s.oauthbearer_jwks_file = self.oauthbearer_jwks_file;
        }
        if self.oauthbearer_expected_issuer.is_some() {
            s.oauthbearer_expected_issuer = self.oauthbearer_expected_issuer;
        }
        if let Some(v) = self.oauthbearer_expected_audience {
            s.oauthbearer_expected_audience = v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(v) = self.ssl_cipher_suites {
            let names: Vec<String> = v
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
            crate::security::tls::cipher_suites(&names)
                .map_err(|e| e.to_string())
                .map_err(invalid("ssl-cipher-suites"))?;
            s.ssl_cipher_suites = names;
        }
        if let Some(v) = self.ssl_client_auth {
            s.ssl_client_auth = v.parse().map_err(invalid("ssl-client-auth"))?;
        }
        if let Some(v) = self.sasl_enabled_mechanisms {
            s.sasl_enabled_mechanisms =
                parse_mechanisms(&v).map_err(invalid("sasl-enabled-mechanisms"))?;
        }
        let ib = &mut s.inter_broker;
        if let Some(v) = self.inter_broker_listener_name {
            ib.listener_name = Some(v.trim().to_ascii_uppercase());
        }
        if let Some(v) = self.sasl_mechanism_inter_broker_protocol {
            let m: Mechanism = v
                .parse()
                .map_err(invalid("sasl-mechanism-inter-broker-protocol"))?;
            if m == Mechanism::OAuthBearer {
                return Err(ConfigFileError::Invalid {
                    key: "sasl-mechanism-inter-broker-protocol",
                    message: "brokers authenticate to each other with PLAIN, SCRAM-SHA-256 or \
                              SCRAM-SHA-512"
                        .into(),
                });
            }
            ib.sasl_mechanism = Some(m);
        }
        if self.inter_broker_sasl_username.is_some() {
            ib.sasl_username = self.inter_broker_sasl_username;
        }
        if self.inter_broker_sasl_password_file.is_some() {
            ib.sasl_password_file = self.inter_broker_sasl_password_file;
        }
        if self.inter_broker_ssl_ca_file.is_some() {
            ib.ssl_ca_file = self.inter_broker_ssl_ca_file;
        }
        Ok(())
    }
}

/// The TOML file: every key optional, unknown keys rejected.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub node_id: Option<i32>,
    pub listener: Option<SocketAddr>,
    pub advertised_listener: Option<String>,
    pub admin_listener: Option<String>,
    pub admin_tls: Option<bool>,
    pub admin_token_file: Option<PathBuf>,
    pub admin_insecure: Option<bool>,
    pub data_dir: Option<PathBuf>,
    pub fsync: Option<String>,
    pub auto_create_topics: Option<bool>,
    pub default_partitions: Option<i32>,
    pub offsets_topic_num_partitions: Option<i32>,
    pub transaction_state_log_num_partitions: Option<i32>,
    pub share_coordinator_state_topic_num_partitions: Option<i32>,
    pub transaction_max_timeout_ms: Option<i32>,
    pub transaction_partition_verification_enable: Option<bool>,
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: Option<u64>,
    pub transactional_id_expiration_ms: Option<i64>,
    pub group_initial_rebalance_delay_ms: Option<i64>,
    pub log_cleaner_backoff_ms: Option<u64>,
    pub group_min_session_timeout_ms: Option<i32>,
    pub group_max_session_timeout_ms: Option<i32>,
    pub group_consumer_heartbeat_interval_ms: Option<i32>,
    pub group_consumer_session_timeout_ms: Option<i32>,
    pub group_consumer_assignors: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_connections_per_ip_overrides: Option<String>,
    pub max_connection_creation_rate: Option<u32>,
    pub max_in_flight_requests_per_connection: Option<usize>,
    pub max_request_bytes: Option<usize>,
    pub max_queued_request_bytes: Option<usize>,
    pub connections_max_idle_ms: Option<u64>,
    pub group_share_record_lock_duration_ms: Option<i32>,
    pub group_share_min_record_lock_duration_ms: Option<i32>,
    pub group_share_delivery_count_limit: Option<u16>,
    pub group_share_partition_max_record_locks: Option<usize>,
    pub group_share_session_timeout_ms: Option<i32>,
    pub group_share_heartbeat_interval_ms: Option<i32>,
    pub authorizer: Option<String>,
    pub super_users: Option<String>,
    pub allow_everyone_if_no_acl_found: Option<bool>,
    // Listeners and security: taken out by `security_settings` and applied after merging with
    // the command line (serde cannot flatten with deny_unknown_fields).
    pub listeners: Option<String>,
    pub advertised_listeners: Option<String>,
    pub listener_security_protocol_map: Option<String>,
    pub ssl_certificate_file: Option<PathBuf>,
    pub ssl_key_file: Option<PathBuf>,
    pub ssl_client_ca_file: Option<PathBuf>,
    pub ssl_client_auth: Option<String>,
    pub ssl_cipher_suites: Option<String>,
    pub ssl_principal_mapping_rules: Option<String>,
    pub security_reload_check_interval_ms: Option<u64>,
    pub sasl_enabled_mechanisms: Option<String>,
    pub oauthbearer_jwks_file: Option<PathBuf>,
    pub oauthbearer_expected_audience: Option<String>,
    pub oauthbearer_expected_issuer: Option<String>,
    pub oauthbearer_clock_skew_s: Option<u64>,
    pub oauthbearer_sub_claim_name: Option<String>,
    pub connections_max_reauth_ms: Option<u64>,
    pub connection_failed_authentication_delay_ms: Option<u64>,
    pub inter_broker_listener_name: Option<String>,
    pub sasl_mechanism_inter_broker_protocol: Option<String>,
    pub inter_broker_sasl_username: Option<String>,
    pub inter_broker_sasl_password_file: Option<PathBuf>,
    pub inter_broker_ssl_ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for '{key}': {message}")]
    Invalid { key: &'static str, message: String },
}

impl FileConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigFileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The listener and security settings of the file (taken out, so `apply` leaves them).
    pub fn security_settings(&mut self) -> SecuritySettings {
        SecuritySettings {
            listeners: self.listeners.take(),
            advertised_listeners: self.advertised_listeners.take(),
            listener_security_protocol_map: self.listener_security_protocol_map.take(),
            ssl_certificate_file: self.ssl_certificate_file.take(),
            ssl_key_file: self.ssl_key_file.take(),
            ssl_client_ca_file: self.ssl_client_ca_file.take(),
            ssl_client_auth: self.ssl_client_auth.take(),
            ssl_cipher_suites: self.ssl_cipher_suites.take(),
            ssl_principal_mapping_rules: self.ssl_principal_mapping_rules.take(),
            security_reload_check_interval_ms: self.security_reload_check_interval_ms.take(),
            sasl_enabled_mechanisms: self.sasl_enabled_mechanisms.take(),
            oauthbearer_jwks_file: self.oauthbearer_jwks_file.take(),
            oauthbearer_expected_audience: self.oauthbearer_expected_audience.take(),
            oauthbearer_expected_issuer: self.oauthbearer_expected_issuer.take(),
            oauthbearer_clock_skew_s: self.oauthbearer_clock_skew_s.take(),
            oauthbearer_sub_claim_name: self.oauthbearer_sub_claim_name.take(),
            connections_max_reauth_ms: self.connections_max_reauth_ms.take(),
            connection_failed_authentication_delay_ms: self
                .connection_failed_authentication_delay_ms
                .take(),
            inter_broker_listener_name: self.inter_broker_listener_name.take(),
            sasl_mechanism_inter_broker_protocol: self.sasl_mechanism_inter_broker_protocol.take(),
            inter_broker_sasl_username: self.inter_broker_sasl_username.take(),
            inter_broker_sasl_password_file: self.inter_broker_sasl_password_file.take(),
            inter_broker_ssl_ca_file: self.inter_broker_ssl_ca_file.take(),
        }
    }

    /// Applies the file's settings over `config` (except the listener and security settings:
    /// see `security_settings`).
    pub fn apply(self, config: &mut BrokerConfig) -> Result<(), ConfigFileError> {
        macro_rules! take {
            ($field:ident) => {
                if let Some(v) = self.$field {
                    config.$field = v;
                }
            };
        }
        take!(node_id);
        take!(listener);
        take!(data_dir);
        take!(auto_create_topics);
        take!(default_partitions);
        if let Some(v) = self.offsets_topic_num_partitions {
            config.offsets_topic_num_partitions =
                check_offsets_topic_num_partitions(v).map_err(|message| {
                    ConfigFileError::Invalid {
                        key: "offsets-topic-num-partitions",
                        message,
                    }
                })?;
        }
        if let Some(v) = self.transaction_state_log_num_partitions {
            config.transaction_state_log_num_partitions = check_offsets_topic_num_partitions(v)
                .map_err(|message| ConfigFileError::Invalid {
                    key: "transaction-state-log-num-partitions",
                    message,
                })?;
        }
        if let Some(v) = self.share_coordinator_state_topic_num_partitions {
            config.share_coordinator_state_topic_num_partitions =
                check_offsets_topic_num_partitions(v).map_err(|message| {
                    ConfigFileError::Invalid {
                        key: "share-coordinator-state-topic-num-partitions",
                        message,
                    }
                })?;
        }
        if let Some(v) = self.transaction_max_timeout_ms {
            if v < 1 {
                return Err(ConfigFileError::Invalid {
                    key: "transaction-max-timeout-ms",
                    message: format!("{v}: must be at least 1"),
                });
            }
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
        take!(group_initial_rebalance_delay_ms);
        take!(log_cleaner_backoff_ms);
        take!(group_min_session_timeout_ms);
        take!(group_max_session_timeout_ms);
        take!(group_consumer_heartbeat_interval_ms);
        take!(group_consumer_session_timeout_ms);
        take!(max_connections);
        take!(max_connections_per_ip);
        take!(max_connection_creation_rate);
        if let Some(v) = self.max_connections_per_ip_overrides {
            config.max_connections_per_ip_overrides =
                ConnectionOverrides::parse(&v).map_err(|message| ConfigFileError::Invalid {
                    key: "max-connections-per-ip-overrides",
                    message,
                })?;
        }
        take!(max_in_flight_requests_per_connection);
        take!(max_request_bytes);
        take!(max_queued_request_bytes);
        take!(connections_max_idle_ms);
        if let Some(v) = self.advertised_listener {
            config.advertised_listener = Some(v);
        }
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
        if let Some(v) = self.admin_listener {
            config.admin_listener =
                parse_optional_addr(&v).map_err(|message| ConfigFileError::Invalid {
                    key: "admin-listener",
                    message,
                })?;
        }
        config.admin.tls = self.admin_tls.unwrap_or(config.admin.tls);
        config.admin.token_file = self.admin_token_file.or(config.admin.token_file.take());
        config.admin.insecure = self.admin_insecure.unwrap_or(config.admin.insecure);
        if let Some(v) = self.group_consumer_assignors {
            config.group_consumer_assignors =
                parse_assignors(&v).map_err(|message| ConfigFileError::Invalid {
                    key: "group-consumer-assignors",
                    message,
                })?;
        }
        if let Some(v) = self.fsync {
            config.fsync = v.parse().map_err(|e| ConfigFileError::Invalid {
                key: "fsync",
                message: format!("{e}"),
            })?;
        }
        if let Some(v) = self.authorizer {
            config.authorizer.enabled =
                parse_authorizer(&v).map_err(|message| ConfigFileError::Invalid {
                    key: "authorizer",
                    message,
                })?;
        }
        if let Some(v) = self.super_users {
            config.authorizer.super_users =
                parse_super_users(&v).map_err(|message| ConfigFileError::Invalid {
                    key: "super-users",
                    message,
                })?;
        }
        if let Some(v) = self.allow_everyone_if_no_acl_found {
            config.authorizer.allow_everyone_if_no_acl_found = v;
        }
        Ok(())
    }
}

/// `authorizer`: `on` (Kafka's ACL authorizer) or `off`.
pub fn parse_authorizer(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "acl" => Ok(true),
        "off" | "false" | "none" | "" => Ok(false),
        _ => Err(format!("'{s}' is not on or off")),
    }
}

/// A comma-separated list of server assignor names ("uniform,range"), at least one.
pub fn parse_assignors(s: &str) -> Result<Vec<AssignorKind>, String> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = AssignorKind::parse(name)
            .ok_or_else(|| format!("unknown assignor '{name}' (use uniform and/or range)"))?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    if out.is_empty() {
        return Err("at least one assignor is needed".into());
    }
    Ok(out)
}

/// "none" or "" disables a listener; anything else must be host:port.
pub fn parse_optional_addr(s: &str) -> Result<Option<SocketAddr>, String> {
    if s.is_empty() || s == "none" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e| format!("'{s}' is not an address like 127.0.0.1:9644: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err =
            toml::from_str::<FileConfig>("listner = \"127.0.0.1:1\"").expect_err("unknown key");
        assert!(err.to_string().contains("listner"), "{err}");
    }

    #[test]
    fn inter_broker_traffic_uses_the_first_plaintext_listener() {
        let mut config = BrokerConfig::default();
        let only = config
            .inter_broker_listener()
            .expect("the default listener");
        assert_eq!(only.name, "PLAINTEXT");
        SecuritySettings {
            listeners: Some(
                "EXTERNAL://127.0.0.1:9094,INTERNAL://10.0.0.1:9093,REPL://10.0.0.1:9095".into(),
            ),
            listener_security_protocol_map: Some(
                "EXTERNAL:SASL_SSL,INTERNAL:PLAINTEXT,REPL:PLAINTEXT".into(),
            ),
            ..SecuritySettings::default()
        }
        .apply(&mut config)
        .expect("listeners");
        let l = config
            .inter_broker_listener()
            .expect("a plaintext listener");
        assert_eq!(l.name, "INTERNAL");
        SecuritySettings {
            listeners: Some("SASL_SSL://127.0.0.1:9094".into()),
            ..SecuritySettings::default()
        }
        .apply(&mut config)
        .expect("listeners");
        assert!(config.inter_broker_listener().is_err());
    }

    #[test]
    fn inter_broker_listener_name_chooses_any_listener() {
        let mut config = BrokerConfig::default();
        SecuritySettings {
            listeners: Some("INTERNAL://10.0.0.1:9093,EXTERNAL://0.0.0.0:9094".into()),
            listener_security_protocol_map: Some("INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL".into()),
            inter_broker_listener_name: Some("internal".into()),
            sasl_mechanism_inter_broker_protocol: Some("SCRAM-SHA-512".into()),
            ..SecuritySettings::default()
        }
        .apply(&mut config)
        .expect("settings");
        let l = config.inter_broker_listener().expect("named listener");
        assert_eq!(l.name, "INTERNAL");
        assert_eq!(l.protocol, crate::security::SecurityProtocol::SaslSsl);
        assert_eq!(
            config.security.inter_broker.sasl_mechanism,
            Some(Mechanism::ScramSha512)
        );
        config.security.inter_broker.listener_name = Some("REPL".into());
        let err = config
            .inter_broker_listener()
            .expect_err("no such listener");
        assert!(err.contains("REPL"), "{err}");
        let err = SecuritySettings {
            sasl_mechanism_inter_broker_protocol: Some("OAUTHBEARER".into()),
            ..SecuritySettings::default()
        }
        .apply(&mut config)
        .expect_err("brokers do not mint tokens");
        assert!(err.to_string().contains("inter-broker"), "{err}");
    }

    #[test]
    fn assignors_parse_in_order_and_unknown_ones_are_named() {
        assert_eq!(
            parse_assignors("range, uniform"),
            Ok(vec![AssignorKind::Range, AssignorKind::Uniform])
        );
        let err = parse_assignors("uniform,sticky").expect_err("unknown");
        assert!(err.contains("sticky"), "{err}");
        assert!(parse_assignors(" ").is_err());
    }

    #[test]
    fn file_overrides_defaults() {
        let file: FileConfig = toml::from_str(
            "data-dir = \"/tmp/x\"\nfsync = \"always\"\nadmin-listener = \"none\"\ndefault-partitions = 3",
        )
        .expect("valid");
        let mut c = BrokerConfig::default();
        file.apply(&mut c).expect("apply");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert!(matches!(c.fsync, FsyncPolicy::Always));
        assert_eq!(c.admin_listener, None);
        assert_eq!(c.default_partitions, 3);
    }
}

/// Kafka's `max.connections.per.ip.overrides`: `host:count` pairs, comma separated, each host
/// an IP address or a name resolved (to all its addresses) when the config is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionOverrides {
    /// As given, for DescribeConfigs.
    pub text: String,
    pub by_ip: std::collections::HashMap<std::net::IpAddr, usize>,
}

/// Most entries in `max-connections-per-ip-overrides` (a config value, but bound it all the same).
const MAX_CONNECTION_OVERRIDES: usize = 10_000;

impl ConnectionOverrides {
    pub fn parse(text: &str) -> Result<ConnectionOverrides, String> {
        use std::net::ToSocketAddrs;
        let mut by_ip = std::collections::HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            // `rsplit`: an IPv6 address has colons of its own (`::1:50`).
            let (host, count) = entry
                .rsplit_once(':')
                .ok_or_else(|| format!("'{entry}' is not host:count"))?;
            let count: usize = count
                .trim()
                .parse()
                .map_err(|_| format!("'{entry}': the count is not a whole number"))?;
            let host = host.trim().trim_start_matches('[').trim_end_matches(']');
            let ips: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => (host, 0)
                    .to_socket_addrs()
                    .map_err(|e| format!("'{entry}': cannot resolve {host}: {e}"))?
                    .map(|a| a.ip())
                    .collect(),
            };
            for ip in ips {
                by_ip.insert(ip, count);
            }
            if by_ip.len() > MAX_CONNECTION_OVERRIDES {
                return Err(format!(
                    "more than {MAX_CONNECTION_OVERRIDES} addresses in the overrides"
                ));
            }
        }
        Ok(ConnectionOverrides {
            text: text.trim().to_string(),
            by_ip,
        })
    }

    /// The most connections `ip` may have open.
    pub fn limit(&self, ip: std::net::IpAddr, default: usize) -> usize {
        self.by_ip.get(&ip).copied().unwrap_or(default)
    }
}
