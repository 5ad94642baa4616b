//! The admin HTTP listener (`admin_listener`, default 127.0.0.1:9644): Prometheus `/metrics`,
//! liveness and readiness probes, and a read-only JSON view of topics, groups, share groups and
//! the effective configuration under `/v1/`, and the cluster's health (`/v1/cluster/...`, from
//! `cluster::status`). Documented in `docs/admin-api.md`.
//!
//! It starts before the data directory is opened, so probes answer during recovery: `/v1/health`
//! is 200 as soon as the process serves HTTP; `/v1/ready` and the `/v1/` state endpoints are 503
//! until [`AdminState::set_broker`] is called (data directory open, Kafka listener bound), and
//! readiness turns false again when shutdown begins. Owns no broker state; it only reads it.
//!
//! Exposure ([`AdminHttpConfig`], [`AdminSecurity`]): on a loopback address nothing more is
//! needed. Bound anywhere else it must serve HTTPS (the broker's `ssl-certificate-file` and
//! `ssl-key-file`, through `security::tls`, reloaded when the files change) and require a bearer
//! token (`admin-token-file`, compared in constant time) on every endpoint except the probes
//! `/v1/health` and `/v1/ready`; it refuses to start without both unless `admin-insecure` is
//! set. TLS and the token can also be used on loopback.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::broker::Broker;
use crate::cluster::status;
use crate::config::BrokerConfig;
use crate::console_api;
use crate::metrics::Metrics;
use crate::security::tls::{TlsContext, TlsError};
use crate::security::ClientAuth;

/// How the admin listener is exposed (`admin-tls`, `admin-token-file`, `admin-insecure`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminHttpConfig {
    /// Serve HTTPS with the broker's certificate and key.
    pub tls: bool,
    /// A file holding the bearer token every non-probe request must present.
    pub token_file: Option<PathBuf>,
    /// Allow a non-loopback address without TLS and a token.
    pub insecure: bool,
}

/// Shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Longest time a client may take over the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AdminSecurityError {
    #[error(
        "the admin listener {0} is not a loopback address: it needs admin-tls (with \
         ssl-certificate-file and ssl-key-file) and admin-token-file, or admin-insecure to \
         expose it without them"
    )]
    Exposed(SocketAddr),
    #[error("admin-token-file {path}: {message}")]
    Token { path: PathBuf, message: String },
    #[error("admin-tls: {0}")]
    Tls(#[from] TlsError),
}

/// The admin listener's TLS context and token, checked at start.
#[derive(Default, Clone)]
pub struct AdminSecurity {
    pub tls: Option<Arc<TlsContext>>,
    /// SHA-256 of the token (comparing digests keeps the comparison constant-time whatever
    /// the presented token's length).
    token_digest: Option<[u8; 32]>,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

impl AdminSecurity {
    /// Loads the TLS files and the token `config` names, and refuses an exposed listener
    /// without them (see the module docs).
    pub fn load(config: &BrokerConfig) -> Result<Self, AdminSecurityError> {
        let admin = &config.admin;
        if let Some(addr) = config.admin_listener {
            let exposed = !addr.ip().is_loopback();
            if exposed && !admin.insecure && !(admin.tls && admin.token_file.is_some()) {
                return Err(AdminSecurityError::Exposed(addr));
            }
        }
        let token_digest = match &admin.token_file {
            None => None,
            Some(path) => {
                let token_err = |message: String| AdminSecurityError::Token {
                    path: path.clone(),
                    message,
                };
                let text = std::fs::read_to_string(path).map_err(|e| token_err(e.to_string()))?;
                let token = text.trim();
                if token.len() < MIN_TOKEN_BYTES {
                    return Err(token_err(format!(
                        "the token must be at least {MIN_TOKEN_BYTES} characters"
                    )));
                }
                Some(digest(token.as_bytes()))
            }
        };
        let tls = if admin.tls {
            // The broker's certificate and key; no client certificates asked for (probes and
            // scrapers authenticate with the token).
            let mut security = config.security.clone();
            security.ssl_client_auth = ClientAuth::None;
            Some(Arc::new(TlsContext::load(&security)?))
        } else {
            None
        };
        Ok(Self { tls, token_digest })
    }

    /// Whether an `Authorization` header value carries the token (always, without one).
    pub fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        use subtle::ConstantTimeEq as _;
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let presented = authorization
            .and_then(|h| h.strip_prefix(b"Bearer "))
            .map(|t| t.trim_ascii());
        match presented {
            Some(t) => bool::from(digest(t).ct_eq(expected)),
            None => false,
        }
    }
}

/// What the admin endpoints read: the metrics, the configuration, and (once open) the broker.
pub struct AdminState {
    /// When the listener's state was made (the process start, near enough): the console's uptime.
    started: std::time::Instant,
    metrics: Arc<Metrics>,
    config: BrokerConfig,
    security: AdminSecurity,
    broker: OnceLock<Arc<Broker>>,
    ready: AtomicBool,
}

impl AdminState {
    pub fn new(metrics: Arc<Metrics>, config: BrokerConfig) -> Arc<Self> {
        Self::secured(metrics, config, AdminSecurity::default())
    }

    /// With the token `security` requires (see [`AdminSecurity::load`]).
    pub fn secured(
        metrics: Arc<Metrics>,
        config: BrokerConfig,
        security: AdminSecurity,
    ) -> Arc<Self> {
        Arc::new(Self {
            started: std::time::Instant::now(),
            metrics,
            config,
            security,
            broker: OnceLock::new(),
            ready: AtomicBool::new(false),
        })
    }

    /// The data directory is open and the Kafka listener bound: the broker is ready.
    pub fn set_broker(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
        self.ready.store(true, Ordering::Release);
    }

    /// Shutdown has begun: report not ready so load balancers stop sending new clients.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The broker, once its data directory is open.
    pub(crate) fn broker(&self) -> Option<&Arc<Broker>> {
        self.broker.get()
    }

    pub(crate) fn uptime_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    pub(crate) fn node_id(&self) -> i32 {
        self.config.node_id
    }
}

/// The routes, over `state`.
pub fn router(state: Arc<AdminState>) -> Router {
    // The probes stay open; everything else needs the token when one is configured.
    let open = Router::new()
        .route("/v1/health", get(health))
        .route("/v1/ready", get(ready));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/config", get(config))
        .route("/v1/topics", get(topics).post(console_api::create_topic))
        .route(
            "/v1/topics/{name}",
            get(topic).delete(console_api::delete_topic),
        )
        .route(
            "/v1/topics/{name}/configs",
            axum::routing::patch(console_api::alter_topic_configs),
        )
        .route(
            "/v1/topics/{name}/messages",
            get(console_api::read_messages).post(console_api::produce_message),
        )
        .route("/v1/overview", get(console_api::overview))
        .route("/v1/groups", get(groups))
        .route(
            "/v1/groups/{id}",
            get(group).delete(console_api::delete_group),
        )
        .route(
            "/v1/groups/{id}/reset-offsets",
            axum::routing::post(console_api::reset_offsets),
        )
        .route("/v1/dlq", get(console_api::dead_letter_topics))
        .route(
            "/v1/dlq/{topic}/redrive",
            axum::routing::post(console_api::redrive),
        )
        .route("/v1/cluster", get(cluster))
        .route("/v1/cluster/partitions", get(cluster_partitions))
        .route("/v1/cluster/replicas", get(cluster_replicas))
        .route("/v1/share-groups", get(share_groups))
        .route("/v1/share-groups/{id}", get(share_group))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .merge(open)
        .merge(crate::console::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn require_token(
    State(state): State<Arc<AdminState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if state.security.authorizes(authorization) {
        return next.run(request).await;
    }
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "this endpoint needs the admin token: Authorization: Bearer <token>",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// TLS connections, handshaken off the accept loop (a slow client delays only itself).
struct TlsListener {
    incoming: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(listener: tokio::net::TcpListener, tls: Arc<TlsContext>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, incoming) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = tx.closed() => return,
                    a = listener.accept() => a,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::debug!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tls.files_changed() {
                    // The broker's reload does not know this context: follow the files here.
                    let _ = tls.reload_files();
                }
                let acceptor = tls.acceptor();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "admin TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "admin TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { incoming, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(c) => c,
            // The acceptor only stops once this listener is gone; never reached.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves the admin API on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match state.security.tls.clone() {
        Some(tls) => {
            axum::serve(TlsListener::new(listener, tls)?, router(state))
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint (see docs/admin-api.md)",
    )
}

pub(crate) fn starting() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "broker is starting (data directory not open yet)",
    )
}

async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    match state.metrics.encode(state.broker.get().map(|b| &**b)) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics"),
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<Arc<AdminState>>) -> Response {
    let ready = state.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready }))).into_response()
}

async fn config(State(state): State<Arc<AdminState>>) -> Json<serde_json::Value> {
    Json(config_json(&state.config))
}

/// The effective broker configuration, keyed like the TOML file.
pub fn config_json(c: &BrokerConfig) -> serde_json::Value {
    let mut v = json!({
        "node-id": c.node_id,
        "listener": c.listener.to_string(),
        "advertised-listener": c.advertised_listener,
        "listeners": c.effective_listeners().iter().map(|l| {
            let (host, port) = l.advertised_host_port();
            json!({
                "name": l.name,
                "address": l.addr.to_string(),
                "security-protocol": l.protocol.name(),
                "advertised": format!("{host}:{port}"),
            })
        }).collect::<Vec<_>>(),
        "ssl-client-auth": format!("{:?}", c.security.ssl_client_auth).to_lowercase(),
        "sasl-enabled-mechanisms": c.security.sasl_enabled_mechanisms.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "connections-max-reauth-ms": c.security.connections_max_reauth_ms,
        "connection-failed-authentication-delay-ms": c.security.connection_failed_authentication_delay_ms,
        "authorizer": if c.authorizer.enabled { "on" } else { "off" },
        "super-users": c.authorizer.super_users.join(";"),
        "allow-everyone-if-no-acl-found": c.authorizer.allow_everyone_if_no_acl_found,
        "admin-listener": c.admin_listener.map_or_else(|| "none".to_string(), |a| a.to_string()),
        "data-dir": c.data_dir.display().to_string(),
        "fsync": c.fsync.to_string(),
        "auto-create-topics": c.auto_create_topics,
        "default-partitions": c.default_partitions,
        "group-initial-rebalance-delay-ms": c.group_initial_rebalance_delay_ms,
        "group-min-session-timeout-ms": c.group_min_session_timeout_ms,
        "group-max-session-timeout-ms": c.group_max_session_timeout_ms,
        "group-consumer-heartbeat-interval-ms": c.group_consumer_heartbeat_interval_ms,
        "group-consumer-session-timeout-ms": c.group_consumer_session_timeout_ms,
        "group-consumer-assignors": c.group_consumer_assignors.iter().map(|a| a.name()).collect::<Vec<_>>().join(","),
        "group-consumer-max-size": c.group_consumer_max_size,
        "group-share-record-lock-duration-ms": c.share.record_lock_duration_ms,
        "group-share-min-record-lock-duration-ms": c.share.min_record_lock_duration_ms,
        "group-share-max-record-lock-duration-ms": c.share.max_record_lock_duration_ms,
        "group-share-delivery-count-limit": c.share.delivery_count_limit,
        "group-share-partition-max-record-locks": c.share.partition_max_record_locks,
        "group-share-session-timeout-ms": c.share.session_timeout_ms,
        "group-share-heartbeat-interval-ms": c.share.heartbeat_interval_ms,
        "group-share-max-size": c.share.max_size,
        "group-share-max-groups": c.share.max_groups,
        "group-share-max-share-sessions": c.share.max_share_sessions,
        "max-connections": c.max_connections,
        "max-connections-per-ip": c.max_connections_per_ip,
        "max-in-flight-requests-per-connection": c.max_in_flight_requests_per_connection,
        "max-request-bytes": c.max_request_bytes,
        "connections-max-idle-ms": c.connections_max_idle_ms,
        "log-retention-check-interval-ms": c.log_retention_check_interval_ms,
        "log-recovery-point-interval-ms": c.log_recovery_point_interval_ms,
        "fetch-max-wait-cap-ms": c.fetch_max_wait_cap_ms,
    });
    // Added apart: one json! literal this long exceeds the macro recursion limit.
    if let Some(o) = v.as_object_mut() {
        o.insert("admin-tls".into(), json!(c.admin.tls));
        o.insert(
            "log-cleaner-backoff-ms".into(),
            json!(c.log_cleaner_backoff_ms),
        );
        o.insert(
            "admin-token-file".into(),
            json!(c.admin.token_file.as_ref().map(|p| p.display().to_string())),
        );
        o.insert("admin-insecure".into(), json!(c.admin.insecure));
        o.insert(
            "max-connections-per-ip-overrides".into(),
            json!(c.max_connections_per_ip_overrides.text),
        );
        o.insert(
            "max-connection-creation-rate".into(),
            json!(c.max_connection_creation_rate),
        );
    }
    v
}

#[derive(Serialize)]
struct TopicSummary {
    name: String,
    topic_id: String,
    internal: bool,
    partitions: usize,
    /// Of the partitions this broker hosts.
    size_bytes: u64,
    records: i64,
    /// Sum of the high watermarks of the partitions this broker hosts: the records ever
    /// committed to them, so two readings give the topic's message rate (the console's).
    high_watermarks: i64,
    retention_ms: Option<String>,
}

#[derive(Serialize)]
struct PartitionInfo {
    partition: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    size_bytes: u64,
}

#[derive(Serialize)]
struct ConfigInfo {
    name: &'static str,
    value: String,
    default: bool,
}

#[derive(Serialize)]
struct TopicDetail {
    name: String,
    topic_id: String,
    internal: bool,
    partitions: Vec<PartitionInfo>,
    configs: Vec<ConfigInfo>,
}

async fn topics(
    State(state): State<Arc<AdminState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let q = match NameQuery::parse(params, &["internal"]) {
        Ok(q) => q,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let internal = match q.flag("internal") {
        Ok(f) => f,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let mut all: Vec<Arc<crate::topics::Topic>> = b
        .topics
        .all()
        .into_iter()
        .filter(|t| q.matches(&t.name))
        .filter(|t| internal.is_none_or(|i| t.is_internal == i))
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    // Sizes and offsets are read for the page's topics only.
    q.page(
        "topics",
        all,
        |t| &t.name,
        |t| {
            let (mut size_bytes, mut records, mut high_watermarks) = (0u64, 0i64, 0i64);
            for p in t.local_partitions() {
                let high_watermark = p.high_watermark();
                size_bytes += p.log.size_bytes();
                records += high_watermark - p.log.log_start_offset();
                high_watermarks += high_watermark;
            }
            let retention_ms = t
                .config
                .read()
                .entries()
                .into_iter()
                .find(|e| e.name == "retention.ms")
                .map(|e| e.value);
            TopicSummary {
                name: t.name.clone(),
                topic_id: uuid::Uuid::from_bytes(t.id).to_string(),
                internal: t.is_internal,
                partitions: t.partition_count(),
                size_bytes,
                records,
                high_watermarks,
                retention_ms,
            }
        },
    )
}

async fn topic(State(state): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let Some(t) = b.topics.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no topic named '{name}'"));
    };
    let configs = t
        .config
        .read()
        .entries()
        .into_iter()
        .map(|e| ConfigInfo {
            name: e.name,
            value: e.value,
            default: e.source != crate::topic_config::ValueSource::Topic,
        })
        .collect();
    let detail = TopicDetail {
        name: t.name.clone(),
        topic_id: uuid::Uuid::from_bytes(t.id).to_string(),
        internal: t.is_internal,
        partitions: t
            .local_partitions()
            .map(|p| PartitionInfo {
                partition: p.index,
                log_start_offset: p.log.log_start_offset(),
                log_end_offset: p.log.log_end_offset(),
                high_watermark: p.high_watermark(),
                size_bytes: p.log.size_bytes(),
            })
            .collect(),
        configs,
    };
    Json(detail).into_response()
}

#[derive(Serialize)]
struct GroupSummary {
    group_id: String,
    protocol_type: String,
    state: &'static str,
}

#[derive(Serialize)]
struct MemberInfo {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    /// Partitions assigned to the member, by topic (empty for a classic group whose protocol
    /// is not Kafka's consumer protocol).
    assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Serialize)]
struct GroupOffset {
    topic: String,
    partition: i32,
    committed_offset: i64,
    /// `None` when the partition no longer exists.
    high_watermark: Option<i64>,
    lag: Option<i64>,
    metadata: String,
}

#[derive(Serialize)]
struct GroupDetail {
    group_id: String,
    state: &'static str,
    protocol_type: String,
    protocol: String,
    members: Vec<MemberInfo>,
    offsets: Vec<GroupOffset>,
}

async fn groups(
    State(state): State<Arc<AdminState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let q = match NameQuery::parse(params, &[]) {
        Ok(q) => q,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let classic = b.groups.lock();
    let cg = b.consumer_groups.lock();
    let mut list: Vec<GroupSummary> = classic
        .list()
        .into_iter()
        .filter(|(group_id, _, _)| !cg.contains(group_id))
        .map(|(group_id, protocol_type, state)| GroupSummary {
            group_id,
            protocol_type,
            state: state.kafka_name(),
        })
        .collect();
    // Consumer-protocol (KIP-848) groups.
    list.extend(cg.list().into_iter().map(|(group_id, state)| GroupSummary {
        group_id,
        protocol_type: "consumer".into(),
        state,
    }));
    drop(cg);
    drop(classic);
    list.retain(|g| q.matches(&g.group_id));
    list.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    q.page("groups", list, |g| &g.group_id, |g| g)
}

/// A member's assignment (partitions by topic id, as consumer and share groups keep it) by
/// topic name; topics deleted meanwhile are left out.
fn named_assignment(
    b: &Broker,
    assignment: &crate::consumer_groups::Assignment,
) -> BTreeMap<String, Vec<i32>> {
    assignment
        .iter()
        .filter_map(|(id, ps)| {
            let topic = b.topics.by_id(*id)?;
            Some((topic.name.clone(), ps.iter().copied().collect()))
        })
        .collect()
}

async fn group(State(state): State<Arc<AdminState>>, Path(id): Path<String>) -> Response {
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let classic = b.groups.lock().describe(&id);
    let modern = b.consumer_groups.lock().describe(&id);
    let (group_id, state, protocol_type, protocol, members) = match (classic, modern) {
        (_, Some(d)) => (
            d.group_id,
            d.state,
            "consumer".to_string(),
            d.assignor_name.to_string(),
            d.members
                .into_iter()
                .map(|m| MemberInfo {
                    assignment: named_assignment(b, &m.assignment),
                    member_id: m.member_id,
                    group_instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                })
                .collect::<Vec<_>>(),
        ),
        (Some(desc), None) => {
            let consumer_protocol =
                desc.protocol_type == crate::consumer_protocol::CONSUMER_PROTOCOL_TYPE;
            (
                desc.group_id,
                desc.state.kafka_name(),
                desc.protocol_type,
                desc.protocol,
                desc.members
                    .into_iter()
                    .map(|m| MemberInfo {
                        assignment: if consumer_protocol {
                            crate::consumer_protocol::assignment_partitions(&m.assignment)
                                .unwrap_or_default()
                        } else {
                            BTreeMap::new()
                        },
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                    })
                    .collect(),
            )
        }
        (None, None) => {
            return error(StatusCode::NOT_FOUND, format!("no group named '{id}'"));
        }
    };
    let mut offsets: Vec<GroupOffset> = b
        .offsets
        .fetch_all(&id)
        .into_iter()
        .map(|(topic, partition, c)| {
            let hw = b
                .topics
                .partition(&topic, partition)
                .map(|p| p.high_watermark());
            GroupOffset {
                lag: hw.map(|hw| (hw - c.offset).max(0)),
                high_watermark: hw,
                topic,
                partition,
                committed_offset: c.offset,
                metadata: c.metadata,
            }
        })
        .collect();
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let detail = GroupDetail {
        group_id,
        state,
        protocol_type,
        protocol,
        members,
        offsets,
    };
    Json(detail).into_response()
}

/// A list-by-name request's query: `search` (a case-insensitive substring of the name), filters,
/// and paging by name (`limit`, `after`). Parameters may appear once; unknown ones are refused.
struct NameQuery {
    params: Vec<(String, String)>,
    search: Option<String>,
    limit: usize,
    after: Option<String>,
}

impl NameQuery {
    fn parse(params: Vec<(String, String)>, filters: &[&str]) -> Result<Self, String> {
        let mut seen = std::collections::BTreeSet::new();
        for (k, _) in &params {
            if !filters.contains(&k.as_str()) && !["search", "limit", "after"].contains(&k.as_str())
            {
                let mut takes: Vec<&str> = filters.to_vec();
                takes.extend(["search", "limit", "after"]);
                return Err(format!(
                    "unknown query parameter '{k}' (this endpoint takes {})",
                    takes.join(", ")
                ));
            }
            if !seen.insert(k.as_str()) {
                return Err(format!("query parameter '{k}' given more than once"));
            }
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let limit = match get("limit") {
            None => DEFAULT_PAGE_LIMIT,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "limit must be a number from 1 to {MAX_PAGE_LIMIT}, not '{v}'"
                    ))
                }
            },
        };
        let search = get("search")
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase());
        let after = get("after");
        Ok(Self {
            params,
            search,
            limit,
            after,
        })
    }

    fn matches(&self, name: &str) -> bool {
        self.search
            .as_ref()
            .is_none_or(|s| name.to_lowercase().contains(s.as_str()))
    }

    fn flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self
            .params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
        {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(format!("{name} must be true or false, not '{v}'")),
        }
    }

    /// One page of `items` (sorted by name, already filtered): those after `after`, at most
    /// `limit`, each turned into what is sent by `show` (only the page's items are).
    fn page<T, U: Serialize>(
        &self,
        key: &str,
        items: Vec<T>,
        name: impl Fn(&T) -> &String,
        show: impl Fn(T) -> U,
    ) -> Response {
        let total = items.len();
        let mut rest: Vec<T> = match &self.after {
            None => items,
            Some(after) => items
                .into_iter()
                .filter(|i| name(i).as_str() > after.as_str())
                .collect(),
        };
        let more = rest.len() > self.limit;
        rest.truncate(self.limit);
        let next = if more {
            rest.last().map(|i| name(i).clone())
        } else {
            None
        };
        Json(PageBody {
            key,
            items: rest.into_iter().map(show).collect::<Vec<U>>(),
            total,
            next,
        })
        .into_response()
    }
}

// ------------------------------------------------------------------------------------------------
// The cluster
// ------------------------------------------------------------------------------------------------

/// Items per page when `limit` is not given, and the most a page may hold.
const DEFAULT_PAGE_LIMIT: usize = 1_000;
const MAX_PAGE_LIMIT: usize = 10_000;

/// A list request's query: filters by name, then paging (`limit`, `after`). Every parameter may
/// appear once; unknown parameters are refused, so a misspelt filter does not silently return
/// everything.
struct ListQuery {
    params: Vec<(String, String)>,
    limit: usize,
    /// Only items after this (topic, partition) position.
    after: Option<(String, i32)>,
}

impl ListQuery {
    /// Parses `params`; the error is the reason for a 400.
    fn parse(params: Vec<(String, String)>, filters: &[&str]) -> Result<Self, String> {
        let mut seen = std::collections::BTreeSet::new();
        for (k, _) in &params {
            if !filters.contains(&k.as_str()) && k != "limit" && k != "after" {
                return Err(format!(
                    "unknown query parameter '{k}' (this endpoint takes {}, limit, after)",
                    filters.join(", ")
                ));
            }
            if !seen.insert(k.as_str()) {
                return Err(format!("query parameter '{k}' given more than once"));
            }
        }
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let limit = match get("limit") {
            None => DEFAULT_PAGE_LIMIT,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "limit must be a number from 1 to {MAX_PAGE_LIMIT}, not '{v}'"
                    ))
                }
            },
        };
        let after = match get("after") {
            None => None,
            Some(v) => match parse_position(v) {
                Some(p) => Some(p),
                None => {
                    return Err(format!(
                        "after must be a position 'topic/partition' as returned in next, not '{v}'"
                    ))
                }
            },
        };
        Ok(Self {
            params,
            limit,
            after,
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A `true`/`false` filter; `None` when absent.
    fn flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(format!("{name} must be true or false, not '{v}'")),
        }
    }
}

/// A (topic, partition) position written `topic/partition` (topic names have no '/').
fn parse_position(s: &str) -> Option<(String, i32)> {
    let (topic, partition) = s.rsplit_once('/')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

/// One page of `items` (sorted by position, already filtered): the items after the query's
/// position, at most its limit, the total matching, and where the next page starts.
fn page<T: Serialize>(
    key: &str,
    items: Vec<T>,
    position: impl Fn(&T) -> (&str, i32),
    q: &ListQuery,
) -> Response {
    let total = items.len();
    let mut rest: Vec<T> = match &q.after {
        None => items,
        Some((topic, partition)) => items
            .into_iter()
            .filter(|i| position(i) > (topic.as_str(), *partition))
            .collect(),
    };
    let more = rest.len() > q.limit;
    rest.truncate(q.limit);
    let next = if more {
        rest.last().map(|i| {
            let (t, p) = position(i);
            format!("{t}/{p}")
        })
    } else {
        None
    };
    Json(PageBody {
        key,
        items: rest,
        total,
        next,
    })
    .into_response()
}

/// `{"<key>": [items], "total": n, "next": position|null}`, items in their fields' order.
struct PageBody<'a, T> {
    key: &'a str,
    items: Vec<T>,
    total: usize,
    next: Option<String>,
}

impl<T: Serialize> Serialize for PageBody<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(self.key, &self.items)?;
        m.serialize_entry("total", &self.total)?;
        m.serialize_entry("next", &self.next)?;
        m.end()
    }
}

async fn cluster(State(state): State<Arc<AdminState>>) -> Response {
    let Some(b) = state.broker.get() else {
        return starting();
    };
    Json(status::summary(b)).into_response()
}

async fn cluster_partitions(
    State(state): State<Arc<AdminState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let parsed =
        ListQuery::parse(params, &["topic", "under_replicated", "offline"]).and_then(|q| {
            let under = q.flag("under_replicated")?;
            let offline = q.flag("offline")?;
            Ok((q, under, offline))
        });
    let (q, under, offline) = match parsed {
        Ok(p) => p,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let topic = q.get("topic");
    let items: Vec<status::PartitionStatus> = status::partitions(b)
        .into_iter()
        .filter(|p| topic.is_none_or(|t| p.topic == t))
        .filter(|p| under.is_none_or(|u| p.under_replicated == u))
        .filter(|p| offline.is_none_or(|o| p.offline == o))
        .collect();
    page("partitions", items, |p| (&p.topic, p.partition), &q)
}

async fn cluster_replicas(
    State(state): State<Arc<AdminState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let q = match ListQuery::parse(params, &["topic", "role"]) {
        Ok(q) => q,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let topic = q.get("topic");
    let role = q.get("role");
    let items: Vec<status::ReplicaStatus> = status::replicas(b)
        .into_iter()
        .filter(|r| topic.is_none_or(|t| r.topic == t))
        .filter(|r| role.is_none_or(|want| r.role == want))
        .collect();
    page("replicas", items, |r| (&r.topic, r.partition), &q)
}

async fn share_groups(
    State(state): State<Arc<AdminState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let q = match NameQuery::parse(params, &[]) {
        Ok(q) => q,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let mut list = b.share.groups.lock().list();
    list.retain(|(id, _)| q.matches(id));
    list.sort();
    q.page(
        "share_groups",
        list,
        |(id, _)| id,
        |(group_id, state)| json!({ "group_id": group_id, "state": state }),
    )
}

async fn share_group(State(state): State<Arc<AdminState>>, Path(id): Path<String>) -> Response {
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let (group_state, epoch, members) = {
        let groups = b.share.groups.lock();
        let Some(g) = groups.get(&id) else {
            return error(
                StatusCode::NOT_FOUND,
                format!("no share group named '{id}'"),
            );
        };
        let members: Vec<serde_json::Value> = g
            .members
            .values()
            .map(|m| {
                json!({
                    "member_id": m.member_id,
                    "member_epoch": m.member_epoch,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "subscribed_topics": m.subscribed_topic_names,
                    "assignment": named_assignment(b, &m.assignment),
                })
            })
            .collect();
        (g.state(), g.group_epoch, members)
    };
    let config = crate::share::group_config(&b.share.defaults, &b.group_overrides(&id));
    let mut partitions: Vec<serde_json::Value> = b
        .share
        .group_partitions(&id)
        .into_iter()
        .filter_map(|((_, topic_id, partition), sp)| {
            let topic = b.topics.by_id(topic_id)?;
            let sp = sp.lock();
            let (available, acquired, dead_letter_pending) = sp.counts();
            let hw = b
                .topics
                .partition(&topic.name, partition)
                .map(|p| p.high_watermark());
            Some(json!({
                "topic": topic.name,
                "partition": partition,
                "start_offset": sp.start_offset(),
                "end_offset": sp.end_offset(),
                "high_watermark": hw,
                "available": available,
                "acquired": acquired,
                "dead_letter_pending": dead_letter_pending,
                // Delayed records parked below the start offset, still to be delivered.
                "delayed_parked": sp.parked_len(),
                "lag": hw.map(|hw| sp.lag(hw)),
            }))
        })
        .collect();
    partitions.sort_by(|a, b| {
        (a["topic"].as_str(), a["partition"].as_i64())
            .cmp(&(b["topic"].as_str(), b["partition"].as_i64()))
    });
    Json(json!({
        "group_id": id,
        "state": group_state,
        "group_epoch": epoch,
        "dead_letter_topic": config.dlq_topic,
        "members": members,
        "partitions": partitions,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exposed_listener_needs_tls_and_a_token_and_the_token_is_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        let exposed = |admin: AdminHttpConfig| BrokerConfig {
            admin_listener: Some(SocketAddr::from(([0, 0, 0, 0], 9644))),
            admin,
            ..BrokerConfig::default()
        };
        assert!(matches!(
            AdminSecurity::load(&exposed(AdminHttpConfig::default())),
            Err(AdminSecurityError::Exposed(_))
        ));
        let token_only = AdminHttpConfig {
            token_file: Some(token_file.clone()),
            ..AdminHttpConfig::default()
        };
        assert!(matches!(
            AdminSecurity::load(&exposed(token_only.clone())),
            Err(AdminSecurityError::Exposed(_))
        ));
        // Loopback (the default address) needs nothing.
        assert!(AdminSecurity::load(&BrokerConfig::default()).is_ok());

        let insecure = AdminHttpConfig {
            insecure: true,
            ..token_only
        };
        std::fs::write(&token_file, "short\n").expect("write");
        assert!(matches!(
            AdminSecurity::load(&exposed(insecure.clone())),
            Err(AdminSecurityError::Token { .. })
        ));
        std::fs::write(&token_file, "  0123456789abcdef-token\n").expect("write");
        let s = AdminSecurity::load(&exposed(insecure)).expect("loads");
        assert!(s.authorizes(Some(b"Bearer 0123456789abcdef-token")));
        assert!(!s.authorizes(Some(b"Bearer 0123456789abcdef-toke")));
        assert!(!s.authorizes(Some(b"Basic 0123456789abcdef-token")));
        assert!(!s.authorizes(None));
        assert!(AdminSecurity::default().authorizes(None));
    }

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    async fn body(r: Response) -> (StatusCode, serde_json::Value) {
        let status = r.status();
        let bytes = http_body_util::BodyExt::collect(r.into_body())
            .await
            .expect("body")
            .to_bytes();
        (status, serde_json::from_slice(&bytes).expect("json body"))
    }

    fn items() -> Vec<(String, i32)> {
        let mut v = Vec::new();
        for t in ["a", "b"] {
            for p in 0..3 {
                v.push((t.to_string(), p));
            }
        }
        v
    }

    fn position(i: &(String, i32)) -> (&str, i32) {
        (&i.0, i.1)
    }

    #[tokio::test]
    async fn pages_follow_next_until_the_end() {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut params = vec![("limit", "4")];
            if let Some(a) = &after {
                params.push(("after", a));
            }
            let q = ListQuery::parse(query(&params), &[]).expect("valid query");
            let (status, v) = body(page("items", items(), position, &q)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(v["total"], 6);
            for i in v["items"].as_array().expect("items") {
                seen.push((
                    i[0].as_str().expect("topic").to_string(),
                    i32::try_from(i[1].as_i64().expect("partition")).expect("i32"),
                ));
            }
            match v["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, items());
    }

    #[test]
    fn bad_queries_are_refused_with_a_reason() {
        for (params, says) in [
            (vec![("limit", "0")], "limit must be"),
            (vec![("limit", "10001")], "limit must be"),
            (vec![("after", "no-partition")], "after must be"),
            (
                vec![("under-replicated", "true")],
                "unknown query parameter",
            ),
            (vec![("topic", "a"), ("topic", "b")], "more than once"),
        ] {
            let reason = ListQuery::parse(query(&params), &["topic"])
                .err()
                .expect("refused");
            assert!(reason.contains(says), "{params:?}: {reason}");
        }
        let q = ListQuery::parse(query(&[("offline", "yes")]), &["offline"]).expect("parsed");
        assert!(q.flag("offline").is_err());
        assert_eq!(
            parse_position("a.b/7"),
            Some(("a.b".to_string(), 7)),
            "topic names may hold dots"
        );
    }
}
