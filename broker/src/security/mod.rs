//! Authentication: who is on the other end of a connection (see docs/security.md).
//!
//! Owns the listener model (named listeners, each with a security protocol: `listeners`), TLS
//! with certificate reload and client-certificate principals (`tls`, `principal_mapping`), the
//! SASL exchanges (`sasl`: PLAIN, SCRAM-SHA-256/512, OAUTHBEARER) with their pure state machine,
//! SCRAM credentials (`scram`) and where they are kept (`credentials`), and JWT validation
//! (`oauth`). What it produces is a [`Principal`] in each request's context; deciding what a
//! principal may do (ACLs, quotas) belongs to an authorizer, not here.

pub mod credentials;
pub mod listeners;
pub mod oauth;
pub mod principal_mapping;
pub mod sasl;
pub mod scram;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;

pub use listeners::{ListenerConfig, SecurityProtocol};

use crate::security::credentials::{CredentialStore, LocalCredentialStore};
use crate::security::oauth::JwtValidator;
use crate::security::principal_mapping::PrincipalMapper;
use crate::security::sasl::Mechanism;
use crate::security::tls::TlsContext;

/// An authenticated identity, as Kafka's `KafkaPrincipal`: `User:alice`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The principal type; always `User` for now (Kafka's only built-in type).
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            kind: "User".to_string(),
            name: name.into(),
        }
    }

    /// The principal of an unauthenticated connection (PLAINTEXT, or SSL without a client
    /// certificate): `User:ANONYMOUS`.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// Kafka's `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; a client without one connects as `User:ANONYMOUS`.
    Requested,
    /// A certificate signed by the client CA is required.
    Required,
}

impl std::str::FromStr for ClientAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "requested" => Ok(Self::Requested),
            "required" => Ok(Self::Required),
            _ => Err(format!(
                "'{s}' is not a client auth mode (none, requested, required)"
            )),
        }
    }
}

/// Security settings shared by all listeners (docs/configuration.md).
#[derive(Clone, Debug)]
pub struct SecurityConfig {
    /// PEM certificate chain of the broker (SSL and SASL_SSL listeners).
    pub ssl_certificate_file: Option<PathBuf>,
    /// PEM private key of the broker (PKCS#8, PKCS#1 or SEC1).
    pub ssl_key_file: Option<PathBuf>,
    /// PEM CA certificates that sign client certificates (mTLS).
    pub ssl_client_ca_file: Option<PathBuf>,
    pub ssl_client_auth: ClientAuth,
    /// Kafka's `ssl.cipher.suites`: IANA names in order of preference; empty: Weir's default.
    pub ssl_cipher_suites: Vec<String>,
    /// Kafka's `ssl.principal.mapping.rules`.
    pub ssl_principal_mapping_rules: String,
    /// How often certificate, key, CA and JWKS files are checked for changes (0: only SIGHUP).
    pub security_reload_check_interval_ms: u64,
    /// Mechanisms offered on SASL listeners (Kafka's `sasl.enabled.mechanisms`).
    pub sasl_enabled_mechanisms: Vec<Mechanism>,
    /// JWKS file with the keys that sign OAUTHBEARER tokens.
    pub oauthbearer_jwks_file: Option<PathBuf>,
    /// Accepted `aud` values; empty: `aud` is not checked.
    pub oauthbearer_expected_audience: Vec<String>,
    /// Required `iss`; `None`: not checked.
    pub oauthbearer_expected_issuer: Option<String>,
    /// Leeway for `exp` and `nbf` (Kafka's sasl.oauthbearer.clock.skew.seconds).
    pub oauthbearer_clock_skew_s: u64,
    /// The claim naming the principal (Kafka's sasl.oauthbearer.sub.claim.name).
    pub oauthbearer_sub_claim_name: String,
    /// Most milliseconds a SASL session lasts before the client must re-authenticate (KIP-368);
    /// 0: no limit beyond the credential's own expiry.
    pub connections_max_reauth_ms: u64,
    /// How long a failed authentication waits before its answer and close (Kafka's
    /// connection.failed.authentication.delay.ms).
    pub connection_failed_authentication_delay_ms: u64,
    /// How this broker reaches the others of a cluster (see [`InterBrokerConfig`]).
    pub inter_broker: InterBrokerConfig,
}

/// Inter-broker security, Kafka's model: the listener brokers reach each other on
/// (`inter.broker.listener.name`), and what the connecting broker needs to speak that listener's
/// protocol. The receiving side treats a broker as any client: it authenticates it and, with
/// the authorizer on, requires CLUSTER_ACTION on the cluster for the inter-broker APIs.
#[derive(Clone, Debug, Default)]
pub struct InterBrokerConfig {
    /// Kafka's `inter.broker.listener.name`; `None`: the first PLAINTEXT listener.
    pub listener_name: Option<String>,
    /// Kafka's `sasl.mechanism.inter.broker.protocol` (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512);
    /// `None`: PLAIN.
    pub sasl_mechanism: Option<Mechanism>,
    /// The user this broker authenticates as on a SASL inter-broker listener (the `username`
    /// of Kafka's `listener.name.<listener>.<mechanism>.sasl.jaas.config`).
    pub sasl_username: Option<String>,
    /// File holding that user's password (a file, so that it shows in no process list).
    pub sasl_password_file: Option<PathBuf>,
    /// PEM CA certificates this broker trusts for the other brokers' certificates (Kafka's
    /// `ssl.truststore.location`); `None`: `ssl-client-ca-file`, as Kafka's one trust store
    /// serves both sides.
    pub ssl_ca_file: Option<PathBuf>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            ssl_certificate_file: None,
            ssl_key_file: None,
            ssl_client_ca_file: None,
            ssl_client_auth: ClientAuth::None,
            ssl_cipher_suites: Vec::new(),
            ssl_principal_mapping_rules: "DEFAULT".to_string(),
            security_reload_check_interval_ms: 10_000,
            sasl_enabled_mechanisms: vec![Mechanism::ScramSha256, Mechanism::ScramSha512],
            oauthbearer_jwks_file: None,
            oauthbearer_expected_audience: Vec::new(),
            oauthbearer_expected_issuer: None,
            oauthbearer_clock_skew_s: 30,
            oauthbearer_sub_claim_name: "sub".to_string(),
            connections_max_reauth_ms: 0,
            connection_failed_authentication_delay_ms: 100,
            inter_broker: InterBrokerConfig::default(),
        }
    }
}

/// Why the security setup cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Oauth(#[from] oauth::OauthError),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
}

/// The broker's authentication machinery, built once from the config at open.
pub struct Security {
    pub config: SecurityConfig,
    /// Server TLS settings; present when a listener speaks TLS.
    pub tls: Option<Arc<TlsContext>>,
    pub credentials: Arc<dyn CredentialStore>,
    /// Present when OAUTHBEARER is enabled.
    pub jwt: Option<Arc<JwtValidator>>,
    pub principal_mapper: PrincipalMapper,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security").finish_non_exhaustive()
    }
}

impl Security {
    /// Loads certificates, keys and the JWKS named by `config`, and opens the local credential
    /// store in `meta_dir`. Fails on any missing or unreadable file the listeners need.
    pub fn open(
        config: &SecurityConfig,
        listeners: &[ListenerConfig],
        meta_dir: &std::path::Path,
    ) -> Result<Self, SecurityError> {
        let credentials: Arc<dyn CredentialStore> = Arc::new(LocalCredentialStore::open(meta_dir)?);
        Self::open_with_store(config, listeners, credentials)
    }

    /// [`Security::open`] with credentials kept in `credentials`.
    pub fn open_with_store(
        config: &SecurityConfig,
        listeners: &[ListenerConfig],
        credentials: Arc<dyn CredentialStore>,
    ) -> Result<Self, SecurityError> {
        let needs_tls = listeners.iter().any(|l| l.protocol.uses_tls());
        let needs_sasl = listeners.iter().any(|l| l.protocol.uses_sasl());
        let tls = if needs_tls {
            Some(Arc::new(TlsContext::load(config)?))
        } else {
            None
        };
        if needs_sasl && config.sasl_enabled_mechanisms.is_empty() {
            return Err(SecurityError::Config(
                "a SASL listener needs at least one of sasl-enabled-mechanisms".into(),
            ));
        }
        let jwt = if config
            .sasl_enabled_mechanisms
            .contains(&Mechanism::OAuthBearer)
        {
            let Some(path) = &config.oauthbearer_jwks_file else {
                return Err(SecurityError::Config(
                    "OAUTHBEARER is enabled but no oauthbearer-jwks-file is set".into(),
                ));
            };
            Some(Arc::new(JwtValidator::load(path, config)?))
        } else {
            None
        };
        let principal_mapper = PrincipalMapper::parse(&config.ssl_principal_mapping_rules)
            .map_err(|e| SecurityError::Config(format!("ssl-principal-mapping-rules: {e}")))?;
        Ok(Self {
            config: config.clone(),
            tls,
            credentials,
            jwt,
            principal_mapper,
        })
    }

    /// Re-reads certificate, key, client CA and JWKS files. Connections already open keep what
    /// they negotiated; new ones get the new files. On error the old settings stay in force.
    pub fn reload(&self) -> Result<bool, SecurityError> {
        let mut changed = false;
        if let Some(tls) = &self.tls {
            changed |= tls.reload(&self.config)?;
        }
        if let Some(jwt) = &self.jwt {
            changed |= jwt.reload()?;
        }
        Ok(changed)
    }

    /// Reloads only if a watched file's modification time changed since the last load.
    pub fn reload_if_changed(&self) -> Result<bool, SecurityError> {
        let tls_changed = self.tls.as_ref().is_some_and(|t| t.files_changed());
        let jwt_changed = self.jwt.as_ref().is_some_and(|j| j.file_changed());
        if tls_changed || jwt_changed {
            self.reload()
        } else {
            Ok(false)
        }
    }
}

/// Modification time of `path`, or `None` if it cannot be read.
pub(crate) fn mtime(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
