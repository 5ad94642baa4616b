//! The admin HTTP listener (`admin_listener`, default 127.0.0.1:9644): Prometheus `/metrics`,
//! liveness and readiness probes, and a read-only JSON view of topics, groups and the effective
//! configuration under `/v1/`. Documented in `docs/admin-api.md`.
//!
//! It starts before the data directory is opened, so probes answer during recovery: `/v1/health`
//! is 200 as soon as the process serves HTTP; `/v1/ready` and the `/v1/` state endpoints are 503
//! until [`AdminState::set_broker`] is called (data directory open, Kafka listener bound), and
//! readiness turns false again when shutdown begins. Owns no broker state; it only reads it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::metrics::Metrics;

/// What the admin endpoints read: the metrics, the configuration, and (once open) the broker.
pub struct AdminState {
    metrics: Arc<Metrics>,
    config: BrokerConfig,
    broker: OnceLock<Arc<Broker>>,
    ready: AtomicBool,
}

impl AdminState {
    pub fn new(metrics: Arc<Metrics>, config: BrokerConfig) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            config,
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
}

/// The routes, over `state`.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/health", get(health))
        .route("/v1/ready", get(ready))
        .route("/v1/config", get(config))
        .route("/v1/topics", get(topics))
        .route("/v1/topics/{name}", get(topic))
        .route("/v1/groups", get(groups))
        .route("/v1/groups/{id}", get(group))
        .fallback(not_found)
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint (see docs/admin-api.md)",
    )
}

fn starting() -> Response {
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
    json!({
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
        "max-connections": c.max_connections,
        "max-connections-per-ip": c.max_connections_per_ip,
        "max-in-flight-requests-per-connection": c.max_in_flight_requests_per_connection,
        "max-request-bytes": c.max_request_bytes,
        "connections-max-idle-ms": c.connections_max_idle_ms,
        "log-retention-check-interval-ms": c.log_retention_check_interval_ms,
        "fetch-max-wait-cap-ms": c.fetch_max_wait_cap_ms,
    })
}

#[derive(Serialize)]
struct TopicSummary {
    name: String,
    topic_id: String,
    internal: bool,
    partitions: usize,
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

async fn topics(State(state): State<Arc<AdminState>>) -> Response {
    let Some(b) = state.broker.get() else {
        return starting();
    };
    let mut list: Vec<TopicSummary> = b
        .topics
        .all()
        .iter()
        .map(|t| TopicSummary {
            name: t.name.clone(),
            topic_id: uuid::Uuid::from_bytes(t.id).to_string(),
            internal: t.is_internal,
            partitions: t.partition_count(),
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Json(json!({ "topics": list })).into_response()
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
            default: e.is_default,
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
}

#[derive(Serialize)]
struct GroupOffset {
    topic: String,
    partition: i32,
    committed_offset: i64,
    /// `None` when the partition no longer exists.
    high_watermark: Option<i64>,
    lag: Option<i64>,
    metadata: Option<String>,
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

async fn groups(State(state): State<Arc<AdminState>>) -> Response {
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
    list.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Json(json!({ "groups": list })).into_response()
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
                    member_id: m.member_id,
                    group_instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                })
                .collect::<Vec<_>>(),
        ),
        (Some(desc), None) => (
            desc.group_id,
            desc.state.kafka_name(),
            desc.protocol_type,
            desc.protocol,
            desc.members
                .into_iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                })
                .collect(),
        ),
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
