//! A connection from this broker to another one: Kafka frames over TCP, one request in flight,
//! Weir-owned request and response types (encoded by `weir_protocol::client`). Used for the
//! inter-broker Raft messages and replica fetches.
//!
//! The connection speaks the security protocol of the inter-broker listener ([`PeerSecurity`],
//! Kafka's `inter.broker.listener.name`): TLS checked against the configured CA (offering this
//! broker's own certificate for mTLS), then SASL PLAIN or SCRAM with the inter-broker
//! credentials, before the first request. Failed TLS handshakes and authentications are logged
//! (once per failing streak) and counted in `weir_inter_broker_authentication_failures_total`.
//!
//! Every wait is bounded (connect, handshake, response), every response frame is size-checked; a
//! failure drops the connection and the caller reconnects on its next call.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_protocol::client::{decode_response, encode_request};
use weir_protocol::requests::{SaslAuthenticateRequest, SaslHandshakeRequest};
use weir_protocol::{ErrorCode, Request, Response};

use crate::metrics::{InterBrokerAuthLabels, Metrics};
use crate::security::sasl::Mechanism;
use crate::security::scram::{ScramClient, ScramMechanism};
use crate::security::{tls, ListenerConfig, SecurityConfig, SecurityProtocol};

/// Largest response frame accepted from a peer (a replica fetch is bounded well below this).
const MAX_RESPONSE_BYTES: usize = 128 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("broker {node} at {addr}: cannot connect: {reason}")]
    Connect {
        node: i32,
        addr: String,
        reason: String,
    },
    #[error("broker {node} at {addr}: {reason}")]
    Io {
        node: i32,
        addr: String,
        reason: String,
    },
    #[error("broker {node}: no answer within {timeout_ms} ms")]
    Timeout { node: i32, timeout_ms: u64 },
    #[error("broker {node}: {reason}")]
    Protocol { node: i32, reason: String },
    #[error("broker {node} at {addr}: {stage} failed: {reason}")]
    Auth {
        node: i32,
        addr: String,
        /// `tls` or `sasl`.
        stage: &'static str,
        reason: String,
    },
}

/// What this broker needs to reach the others on the inter-broker listener.
pub struct PeerSecurity {
    listener: String,
    protocol: SecurityProtocol,
    /// CA file and (certificate, key) for TLS listeners.
    tls: Option<(PathBuf, Option<(PathBuf, PathBuf)>)>,
    /// Mechanism, user and password for SASL listeners.
    sasl: Option<(Mechanism, String, String)>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for PeerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSecurity")
            .field("listener", &self.listener)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PeerSecurityError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

impl PeerSecurity {
    /// Plain TCP, no authentication (a PLAINTEXT inter-broker listener).
    pub fn plaintext(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            listener: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
            metrics,
        })
    }

    /// What connecting to `listener` takes, from `config`: fails at start on a missing
    /// credential, an unreadable file, or a mechanism this broker does not enable (Kafka's check:
    /// the inter-broker mechanism must be among sasl.enabled.mechanisms).
    pub fn load(
        listener: &ListenerConfig,
        config: &SecurityConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, PeerSecurityError> {
        let ib = &config.inter_broker;
        let config_err = |m: String| PeerSecurityError::Config(m);
        let tls = if listener.protocol.uses_tls() {
            let ca = ib
                .ssl_ca_file
                .clone()
                .or_else(|| config.ssl_client_ca_file.clone())
                .ok_or_else(|| {
                    config_err(format!(
                        "inter-broker listener {} speaks TLS: set inter-broker-ssl-ca-file (or \
                         ssl-client-ca-file) to the CA that signs the brokers' certificates",
                        listener.name
                    ))
                })?;
            let identity = config
                .ssl_certificate_file
                .clone()
                .zip(config.ssl_key_file.clone());
            // Checked now, so a bad file stops the start rather than every connection.
            tls::client_config(
                &ca,
                identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            )?;
            Some((ca, identity))
        } else {
            None
        };
        let sasl = if listener.protocol.uses_sasl() {
            let mechanism = ib.sasl_mechanism.unwrap_or(Mechanism::Plain);
            if !config.sasl_enabled_mechanisms.contains(&mechanism) {
                return Err(config_err(format!(
                    "sasl-mechanism-inter-broker-protocol {mechanism} must be one of \
                     sasl-enabled-mechanisms"
                )));
            }
            let (Some(user), Some(file)) = (&ib.sasl_username, &ib.sasl_password_file) else {
                return Err(config_err(format!(
                    "inter-broker listener {} speaks SASL: set inter-broker-sasl-username and \
                     inter-broker-sasl-password-file",
                    listener.name
                )));
            };
            let password = std::fs::read_to_string(file).map_err(|e| {
                config_err(format!(
                    "inter-broker-sasl-password-file {}: {e}",
                    file.display()
                ))
            })?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                return Err(config_err(format!(
                    "inter-broker-sasl-password-file {} is empty",
                    file.display()
                )));
            }
            Some((mechanism, user.clone(), password))
        } else {
            None
        };
        Ok(Arc::new(Self {
            listener: listener.name.clone(),
            protocol: listener.protocol,
            tls,
            sasl,
            metrics,
        }))
    }

    fn count_failure(&self, stage: &'static str) {
        self.metrics
            .inter_broker_authentication_failures
            .get_or_create(&InterBrokerAuthLabels {
                listener: self.listener.clone(),
                stage,
            })
            .inc();
    }
}

/// A byte stream to a peer: TCP, or TLS over TCP.
trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerIo for T {}

/// An open connection and when its SASL session must be renewed (KIP-368).
struct Open {
    addr: String,
    io: Box<dyn PeerIo>,
    renew_at: Option<Instant>,
}

impl PeerError {
    fn protocol(node: i32, reason: impl std::fmt::Display) -> Self {
        PeerError::Protocol {
            node,
            reason: reason.to_string(),
        }
    }
}

/// One connection to broker `node`, (re)opened on demand.
pub struct PeerConnection {
    node: i32,
    client_id: String,
    security: Arc<PeerSecurity>,
    stream: Option<Open>,
    next_correlation_id: i32,
    /// Whether the last connection attempt failed its TLS handshake or authentication (the
    /// next failure is then logged at debug, not warn, so a broken peer does not flood the log).
    auth_failing: bool,
}

impl PeerConnection {
    pub fn new(node: i32, me: i32, security: Arc<PeerSecurity>) -> Self {
        Self {
            node,
            client_id: format!("weir-broker-{me}"),
            security,
            stream: None,
            next_correlation_id: 1,
            auth_failing: false,
        }
    }

    /// Drops the connection (the next call reconnects).
    pub fn reset(&mut self) {
        self.stream = None;
    }

    /// Sends `request` to `addr` (reconnecting if the address changed) and waits up to
    /// `timeout_ms` for the response.
    pub async fn call(
        &mut self,
        addr: &str,
        request: Request,
        timeout_ms: u64,
    ) -> Result<Response, PeerError> {
        let result = self.call_inner(addr, request, timeout_ms).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn call_inner(
        &mut self,
        addr: &str,
        request: Request,
        timeout_ms: u64,
    ) -> Result<Response, PeerError> {
        let node = self.node;
        let stale = self
            .stream
            .as_ref()
            .is_none_or(|o| o.addr != addr || o.renew_at.is_some_and(|at| Instant::now() >= at));
        if stale {
            self.stream = None;
            let open = match self.open(addr, timeout_ms).await {
                Ok(open) => open,
                Err(e) => {
                    if let PeerError::Auth { stage, .. } = &e {
                        self.security.count_failure(stage);
                        if self.auth_failing {
                            tracing::debug!(peer = node, error = %e, "inter-broker connection refused");
                        } else {
                            tracing::warn!(
                                peer = node,
                                error = %e,
                                "inter-broker connection refused: check the inter-broker \
                                 credentials and certificates (docs/security.md#in-a-cluster)"
                            );
                        }
                        self.auth_failing = true;
                    }
                    return Err(e);
                }
            };
            if self.auth_failing {
                tracing::info!(peer = node, "inter-broker connection authenticated again");
            }
            self.auth_failing = false;
            self.stream = Some(open);
        }
        let Some(open) = self.stream.as_mut() else {
            return Err(PeerError::protocol(node, "no connection"));
        };
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        round_trip(
            open.io.as_mut(),
            node,
            addr,
            &self.client_id,
            correlation_id,
            request,
            timeout_ms,
        )
        .await
    }

    /// Connects, then runs the listener's TLS handshake and SASL exchange.
    async fn open(&mut self, addr: &str, timeout_ms: u64) -> Result<Open, PeerError> {
        let node = self.node;
        let connect_err = |reason: String| PeerError::Connect {
            node,
            addr: addr.to_string(),
            reason,
        };
        let auth_err = |stage: &'static str, reason: String| PeerError::Auth {
            node,
            addr: addr.to_string(),
            stage,
            reason,
        };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err("timed out".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let mut io: Box<dyn PeerIo> = match &self.security.tls {
            None => Box::new(tcp),
            Some((ca, identity)) => {
                let config = tls::client_config(
                    ca,
                    identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
                )
                .map_err(|e| auth_err("tls", e.to_string()))?;
                let host = addr
                    .rsplit_once(':')
                    .map_or(addr, |(h, _)| h)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| auth_err("tls", format!("server name {host}: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .map_err(|_| auth_err("tls", "handshake timed out".into()))?
                    .map_err(|e| auth_err("tls", e.to_string()))?;
                Box::new(stream)
            }
        };
        let mut renew_at = None;
        let security = self.security.clone();
        if let Some((mechanism, user, password)) = &security.sasl {
            let lifetime_ms = self
                .login(io.as_mut(), addr, *mechanism, user, password, timeout_ms)
                .await?;
            // Renew well before the peer would close the session (KIP-368).
            if let Ok(ms) = u64::try_from(lifetime_ms) {
                if ms > 0 {
                    renew_at = Some(Instant::now() + Duration::from_millis(ms * 8 / 10));
                }
            }
        }
        Ok(Open {
            addr: addr.to_string(),
            io,
            renew_at,
        })
    }

    /// SaslHandshake then SaslAuthenticate (PLAIN, or SCRAM's two rounds with the server's
    /// proof checked). Returns the session lifetime the peer granted (0: unlimited).
    async fn login(
        &mut self,
        io: &mut dyn PeerIo,
        addr: &str,
        mechanism: Mechanism,
        user: &str,
        password: &str,
        timeout_ms: u64,
    ) -> Result<i64, PeerError> {
        let node = self.node;
        let auth_err = |reason: String| PeerError::Auth {
            node,
            addr: addr.to_string(),
            stage: "sasl",
            reason,
        };
        let handshake = Request::SaslHandshake(SaslHandshakeRequest {
            mechanism: mechanism.name().to_string(),
        });
        match self.exchange(io, addr, handshake, timeout_ms).await? {
            Response::SaslHandshake(r) if r.error_code == ErrorCode::NONE => {}
            Response::SaslHandshake(r) => {
                return Err(auth_err(format!(
                    "the peer does not enable {mechanism} (it offers {})",
                    r.mechanisms.join(", ")
                )))
            }
            _ => return Err(auth_err("not a SaslHandshake response".into())),
        }
        let scram = match mechanism {
            Mechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            Mechanism::ScramSha512 => Some(ScramMechanism::Sha512),
            _ => None,
        };
        let Some(scram) = scram else {
            let token = format!("\0{user}\0{password}");
            return self
                .authenticate(io, addr, token.into_bytes(), timeout_ms)
                .await
                .map(|r| r.1);
        };
        let (mut client, first) = ScramClient::start(scram, user, password);
        let (server_first, _) = self.authenticate(io, addr, first, timeout_ms).await?;
        let fin = client
            .client_final(&server_first)
            .map_err(|e| auth_err(e.to_string()))?;
        let (server_final, lifetime_ms) = self.authenticate(io, addr, fin, timeout_ms).await?;
        client
            .verify_server_final(&server_final)
            .map_err(|e| auth_err(format!("the peer's SCRAM proof: {e}")))?;
        Ok(lifetime_ms)
    }

    /// One SaslAuthenticate round: the server's token and session lifetime.
    async fn authenticate(
        &mut self,
        io: &mut dyn PeerIo,
        addr: &str,
        token: Vec<u8>,
        timeout_ms: u64,
    ) -> Result<(Bytes, i64), PeerError> {
        let node = self.node;
        let request = Request::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: Bytes::from(token),
        });
        let auth_err = |reason: String| PeerError::Auth {
            node,
            addr: addr.to_string(),
            stage: "sasl",
            reason,
        };
        // A refused authentication is answered, then the peer closes: an I/O error here is a
        // refusal too.
        match self.exchange(io, addr, request, timeout_ms).await {
            Ok(Response::SaslAuthenticate(r)) if r.error_code == ErrorCode::NONE => {
                Ok((r.auth_bytes, r.session_lifetime_ms))
            }
            Ok(Response::SaslAuthenticate(r)) => Err(auth_err(format!(
                "{:?}: {}",
                r.error_code,
                r.error_message.unwrap_or_default()
            ))),
            Ok(_) => Err(auth_err("not a SaslAuthenticate response".into())),
            Err(e) => Err(auth_err(e.to_string())),
        }
    }

    async fn exchange(
        &mut self,
        io: &mut dyn PeerIo,
        addr: &str,
        request: Request,
        timeout_ms: u64,
    ) -> Result<Response, PeerError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        round_trip(
            io,
            self.node,
            addr,
            &self.client_id,
            correlation_id,
            request,
            timeout_ms,
        )
        .await
    }
}

/// Writes one request and reads its response, within `timeout_ms`.
async fn round_trip(
    stream: &mut dyn PeerIo,
    node: i32,
    addr: &str,
    client_id: &str,
    correlation_id: i32,
    request: Request,
    timeout_ms: u64,
) -> Result<Response, PeerError> {
    let api_key = request.api_key();
    let (frame, version) = encode_request(correlation_id, client_id, &request)
        .map_err(|e| PeerError::protocol(node, e))?;
    let io = |e: std::io::Error| PeerError::Io {
        node,
        addr: addr.to_string(),
        reason: e.to_string(),
    };
    let exchange = async {
        stream.write_all(&frame).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).await.map_err(io)?;
        let len = usize::try_from(i32::from_be_bytes(prefix))
            .map_err(|_| PeerError::protocol(node, "negative response size"))?;
        if len > MAX_RESPONSE_BYTES {
            return Err(PeerError::protocol(
                node,
                format!("response of {len} bytes over the {MAX_RESPONSE_BYTES}-byte limit"),
            ));
        }
        let mut body = BytesMut::zeroed(len);
        stream.read_exact(&mut body).await.map_err(io)?;
        Ok::<Bytes, PeerError>(body.freeze())
    };
    let body = tokio::time::timeout(Duration::from_millis(timeout_ms), exchange)
        .await
        .map_err(|_| PeerError::Timeout { node, timeout_ms })??;
    let (got, response) =
        decode_response(api_key, version, body).map_err(|e| PeerError::protocol(node, e))?;
    if got != correlation_id {
        return Err(PeerError::protocol(
            node,
            format!("correlation id {got}, expected {correlation_id}"),
        ));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl_listener() -> ListenerConfig {
        ListenerConfig {
            name: "SECURE".into(),
            protocol: SecurityProtocol::SaslPlaintext,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 9093)),
            advertised: None,
        }
    }

    fn err(config: &SecurityConfig) -> String {
        PeerSecurity::load(&sasl_listener(), config, Arc::new(Metrics::new()))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_sasl_inter_broker_listener_needs_credentials_and_an_enabled_mechanism() {
        let dir = std::env::temp_dir().join(format!("weir-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let password = dir.join("password");
        std::fs::write(&password, "s3cret\n").expect("write");
        let mut config = SecurityConfig::default();
        assert!(err(&config).contains("PLAIN must be one of sasl-enabled-mechanisms"));
        config.inter_broker.sasl_mechanism = Some(Mechanism::ScramSha512);
        assert!(err(&config).contains("inter-broker-sasl-username"));
        config.inter_broker.sasl_username = Some("broker".into());
        config.inter_broker.sasl_password_file = Some(dir.join("missing"));
        assert!(err(&config).contains("missing"));
        config.inter_broker.sasl_password_file = Some(password);
        let security = PeerSecurity::load(&sasl_listener(), &config, Arc::new(Metrics::new()))
            .expect("loaded");
        // The password file's line end is not part of the password.
        assert!(matches!(
            &security.sasl,
            Some((Mechanism::ScramSha512, user, pw)) if user == "broker" && pw == "s3cret"
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
