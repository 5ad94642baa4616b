//! The admin API's write endpoints and bounded reads, the ones the web console (`console`) uses:
//! create/delete topics, alter topic configs, produce a test message, read a window of messages,
//! reset a group's offsets (with a preview), delete a group, list and redrive dead letters, and
//! an overview. Documented in `docs/admin-api.md`.
//!
//! Every change goes through the Kafka request handlers (`handlers::dispatch`), as a Kafka client
//! or the `weir` CLI would send it: the same validation, authorization, placement, group
//! coordination and error codes, no second implementation. The requests are made as
//! [`ADMIN_PRINCIPAL`] (for the authorizer, when it is on). Every read is bounded: a message
//! window holds at most [`MAX_WINDOW_RECORDS`] records from at most [`MAX_WINDOW_BYTES`] of log.
//!
//! Write endpoints take JSON bodies (`Content-Type: application/json`): a browser cannot send
//! that from another site without a CORS preflight, which this API never grants.

// Handlers answer errors as ready HTTP responses (`Result<_, Response>`, axum's idiom); a
// `Response` is 128 bytes, which is nothing on a per-request admin path.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use weir_protocol::*;

use crate::admin_http::{error, starting, AdminState};
use crate::broker::Broker;
use crate::handlers::{dispatch, records_in_memory, RequestContext};
use crate::security::{Principal, SecurityProtocol};
use crate::share::redrive::{target_partition, DeadLetter, RedriveFilter, RedrivePlan};

/// Who the admin API's requests are made as, for the authorizer.
pub const ADMIN_PRINCIPAL: &str = "weir-admin-http";
/// The most records a message window returns, and the default.
pub const MAX_WINDOW_RECORDS: usize = 500;
const DEFAULT_WINDOW_RECORDS: usize = 50;
/// The most log bytes one window reads.
pub const MAX_WINDOW_BYTES: i32 = 1 << 20;
/// Decompressed bytes one window may unpack (a compressed batch expands).
const MAX_DECOMPRESSED_BYTES: usize = 16 << 20;
/// Largest key and value of a test message.
pub const MAX_TEST_KEY_BYTES: usize = 64 << 10;
pub const MAX_TEST_VALUE_BYTES: usize = 1 << 20;
const MAX_TEST_HEADERS: usize = 64;
/// The most dead letters one redrive sends, and the default.
pub const MAX_REDRIVE_RECORDS: usize = 10_000;
/// How long produce and admin requests may wait.
const REQUEST_TIMEOUT_MS: i32 = 30_000;

const TOPIC_RESOURCE: i8 = 2;

// ------------------------------------------------------------------------------------------------
// Calling the handlers
// ------------------------------------------------------------------------------------------------

/// Runs `request` through the Kafka handlers as [`ADMIN_PRINCIPAL`], at the newest version Weir
/// serves, and returns its response.
async fn call(b: &Arc<Broker>, request: Request) -> Result<Response2, Response> {
    let api_key = request.api_key();
    let api_version = supported_range(api_key).map_or(0, |(_, max)| max);
    let header = RequestHeader {
        api_key,
        api_version,
        correlation_id: 0,
        client_id: Some("weir-admin-http".into()),
    };
    let ctx = Arc::new(RequestContext {
        peer: SocketAddr::from(([127, 0, 0, 1], 0)),
        listener: Arc::from("admin-http"),
        security_protocol: SecurityProtocol::Plaintext,
        principal: Principal::user(ADMIN_PRINCIPAL),
    });
    match dispatch(b, &ctx, &header, request).await.await {
        Some(r) => Ok(r),
        None => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the broker sent no response",
        )),
    }
}

/// The Kafka protocol's response type, named apart from axum's.
type Response2 = weir_protocol::Response;

/// A Kafka error as an HTTP error: the status a client would expect, Kafka's error name, and the
/// handler's message when it gave one.
fn kafka_error(code: ErrorCode, message: Option<&str>, what: &str) -> Response {
    let status = match code {
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION | ErrorCode::GROUP_ID_NOT_FOUND => {
            StatusCode::NOT_FOUND
        }
        ErrorCode::TOPIC_ALREADY_EXISTS
        | ErrorCode::NON_EMPTY_GROUP
        | ErrorCode::UNKNOWN_MEMBER_ID
        | ErrorCode::ILLEGAL_GENERATION
        | ErrorCode::REBALANCE_IN_PROGRESS => StatusCode::CONFLICT,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
        | ErrorCode::GROUP_AUTHORIZATION_FAILED
        | ErrorCode::CLUSTER_AUTHORIZATION_FAILED => StatusCode::FORBIDDEN,
        ErrorCode::NOT_COORDINATOR
        | ErrorCode::COORDINATOR_NOT_AVAILABLE
        | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        | ErrorCode::NOT_CONTROLLER
        | ErrorCode::NOT_LEADER_OR_FOLLOWER
        | ErrorCode::LEADER_NOT_AVAILABLE
        | ErrorCode::REQUEST_TIMED_OUT => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::UNKNOWN_SERVER_ERROR | ErrorCode::KAFKA_STORAGE_ERROR => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let name = code.name().unwrap_or("UNKNOWN");
    let text = match message {
        Some(m) if !m.is_empty() => format!("{what}: {m} ({name})"),
        _ => format!("{what}: {name}"),
    };
    (status, Json(json!({ "error": text, "kafka_error": name }))).into_response()
}

fn unexpected() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "unexpected response from the handler",
    )
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, Response> {
    match payload {
        Ok(Json(v)) => Ok(v),
        Err(rejection) => Err(error(rejection.status(), rejection.body_text())),
    }
}

fn broker(state: &AdminState) -> Result<&Arc<Broker>, Response> {
    state.broker().ok_or_else(starting)
}

macro_rules! try_or {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

// ------------------------------------------------------------------------------------------------
// Offsets
// ------------------------------------------------------------------------------------------------

/// `ListOffsets` for each of `partitions` at `timestamp` (-2 earliest, -1 latest, or ms).
/// `None` for a partition means no offset (a timestamp past the last record).
async fn list_offsets(
    b: &Arc<Broker>,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, Option<i64>>, Response> {
    let r = call(
        b,
        Request::ListOffsets(ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                name: topic.to_string(),
                partitions: partitions
                    .iter()
                    .map(|&p| ListOffsetsPartition {
                        partition_index: p,
                        timestamp,
                        ..ListOffsetsPartition::default()
                    })
                    .collect(),
            }],
            ..ListOffsetsRequest::default()
        }),
    )
    .await?;
    let Response2::ListOffsets(r) = r else {
        return Err(unexpected());
    };
    let mut out = BTreeMap::new();
    for t in r.topics {
        for p in t.partitions {
            if !p.error_code.is_none() {
                return Err(kafka_error(
                    p.error_code,
                    None,
                    &format!("cannot list offsets of {topic}[{}]", p.partition_index),
                ));
            }
            out.insert(p.partition_index, (p.offset >= 0).then_some(p.offset));
        }
    }
    Ok(out)
}

fn partition_count(b: &Broker, topic: &str) -> Result<i32, Response> {
    match b.topics.get(topic) {
        Some(t) => Ok(i32::try_from(t.partition_count()).unwrap_or(i32::MAX)),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("no topic named '{topic}'"),
        )),
    }
}

// ------------------------------------------------------------------------------------------------
// Overview
// ------------------------------------------------------------------------------------------------

pub async fn overview(State(state): State<Arc<AdminState>>) -> Response {
    let b = try_or!(broker(&state));
    let topics = b.topics.all();
    let (mut partitions, mut size_bytes, mut log_end_offsets) = (0usize, 0u64, 0i64);
    for t in &topics {
        partitions += t.partition_count();
        for p in t.local_partitions() {
            size_bytes += p.log.size_bytes();
            log_end_offsets += p.log.log_end_offset();
        }
    }
    // As `GET /v1/groups` counts them: a consumer-protocol group is not also a classic one.
    let groups = {
        let classic = b.groups.lock();
        let cg = b.consumer_groups.lock();
        let only_classic = classic
            .list()
            .into_iter()
            .filter(|(id, _, _)| !cg.contains(id))
            .count();
        only_classic + cg.list().len()
    };
    let share = b.share.groups.lock().list().len();
    let cluster = crate::cluster::status::summary(b);
    let under_replicated = crate::cluster::status::partitions(b)
        .iter()
        .filter(|p| p.under_replicated)
        .count();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "node_id": state.node_id(),
        "uptime_ms": state.uptime_ms(),
        "topics": topics.len(),
        "partitions": partitions,
        "under_replicated_partitions": under_replicated,
        "groups": groups,
        "share_groups": share,
        "disk_bytes": size_bytes,
        "log_end_offsets": log_end_offsets,
        "bytes_in": b.metrics.produce_bytes_all.get(),
        "bytes_out": b.metrics.fetch_bytes_all.get(),
        "cluster": cluster,
    }))
    .into_response()
}

// ------------------------------------------------------------------------------------------------
// Topics
// ------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    name: String,
    /// -1 or absent: the broker's default.
    #[serde(default = "minus_one")]
    partitions: i32,
    #[serde(default = "minus_one_i16")]
    replication_factor: i16,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

fn minus_one() -> i32 {
    -1
}

fn minus_one_i16() -> i16 {
    -1
}

pub async fn create_topic(
    State(state): State<Arc<AdminState>>,
    payload: Result<Json<CreateTopic>, JsonRejection>,
) -> Response {
    let b = try_or!(broker(&state));
    let c = try_or!(body(payload));
    let r = try_or!(
        call(
            b,
            Request::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: c.name.clone(),
                    num_partitions: c.partitions,
                    replication_factor: c.replication_factor,
                    assignments: Vec::new(),
                    configs: c
                        .configs
                        .into_iter()
                        .map(|(name, value)| ConfigEntry {
                            name,
                            value: Some(value),
                        })
                        .collect(),
                }],
                timeout_ms: REQUEST_TIMEOUT_MS,
                validate_only: false,
            }),
        )
        .await
    );
    let Response2::CreateTopics(r) = r else {
        return unexpected();
    };
    let Some(t) = r.topics.into_iter().next() else {
        return unexpected();
    };
    if !t.error_code.is_none() {
        return kafka_error(
            t.error_code,
            t.error_message.as_deref(),
            &format!("cannot create topic '{}'", c.name),
        );
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "name": t.name,
            "topic_id": uuid::Uuid::from_bytes(t.topic_id).to_string(),
            "partitions": t.num_partitions,
            "replication_factor": t.replication_factor,
        })),
    )
        .into_response()
}

pub async fn delete_topic(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Response {
    let b = try_or!(broker(&state));
    let r = try_or!(
        call(
            b,
            Request::DeleteTopics(DeleteTopicsRequest {
                topics: vec![DeleteTopicsTopic {
                    name: Some(name.clone()),
                    topic_id: [0; 16],
                }],
                timeout_ms: REQUEST_TIMEOUT_MS,
            }),
        )
        .await
    );
    let Response2::DeleteTopics(r) = r else {
        return unexpected();
    };
    match r.responses.into_iter().next() {
        Some(t) if !t.error_code.is_none() => kafka_error(
            t.error_code,
            t.error_message.as_deref(),
            &format!("cannot delete topic '{name}'"),
        ),
        Some(_) => Json(json!({ "deleted": name })).into_response(),
        None => unexpected(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlterConfigs {
    /// Configs to set.
    #[serde(default)]
    set: BTreeMap<String, String>,
    /// Configs to put back to their defaults.
    #[serde(default)]
    delete: Vec<String>,
    #[serde(default)]
    validate_only: bool,
}

pub async fn alter_topic_configs(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    payload: Result<Json<AlterConfigs>, JsonRejection>,
) -> Response {
    let b = try_or!(broker(&state));
    let a = try_or!(body(payload));
    if a.set.is_empty() && a.delete.is_empty() {
        return bad_request("nothing to change: give configs in 'set' or names in 'delete'");
    }
    let mut configs: Vec<IncrementalAlterableConfig> = a
        .set
        .into_iter()
        .map(|(name, value)| IncrementalAlterableConfig {
            name,
            config_operation: 0,
            value: Some(value),
        })
        .collect();
    configs.extend(a.delete.into_iter().map(|name| IncrementalAlterableConfig {
        name,
        config_operation: 1,
        value: None,
    }));
    let r = try_or!(
        call(
            b,
            Request::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
                resources: vec![IncrementalAlterConfigsResource {
                    resource_type: TOPIC_RESOURCE,
                    resource_name: name.clone(),
                    configs,
                }],
                validate_only: a.validate_only,
            }),
        )
        .await
    );
    let Response2::IncrementalAlterConfigs(r) = r else {
        return unexpected();
    };
    match r.responses.into_iter().next() {
        Some(t) if !t.error_code.is_none() => kafka_error(
            t.error_code,
            t.error_message.as_deref(),
            &format!("cannot alter the configs of topic '{name}'"),
        ),
        Some(_) => Json(json!({ "topic": name, "validate_only": a.validate_only })).into_response(),
        None => unexpected(),
    }
}

// ------------------------------------------------------------------------------------------------
// Messages
// ------------------------------------------------------------------------------------------------

/// A query parameter parsed as `T`, or a 400 naming it.
fn param<T: std::str::FromStr>(
    params: &BTreeMap<String, String>,
    name: &str,
) -> Result<Option<T>, Response> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| bad_request(format!("{name} must be a number, not '{v}'"))),
    }
}

fn b64(bytes: Option<&[u8]>) -> Value {
    bytes.map_or(Value::Null, |b| {
        Value::String(base64::engine::general_purpose::STANDARD.encode(b))
    })
}

/// A message window of one partition: `partition`, then `offset` or `timestamp_ms` (the first
/// offset whose record is at or after it), at most `limit` records.
pub async fn read_messages(
    State(state): State<Arc<AdminState>>,
    Path(topic): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    const KNOWN: [&str; 4] = ["partition", "offset", "timestamp_ms", "limit"];
    if let Some(k) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return bad_request(format!(
            "unknown query parameter '{k}' (this endpoint takes {})",
            KNOWN.join(", ")
        ));
    }
    let b = try_or!(broker(&state));
    let partition: i32 = try_or!(param(&params, "partition")).unwrap_or(0);
    let offset: Option<i64> = try_or!(param(&params, "offset"));
    let timestamp_ms: Option<i64> = try_or!(param(&params, "timestamp_ms"));
    let limit: usize = try_or!(param(&params, "limit")).unwrap_or(DEFAULT_WINDOW_RECORDS);
    if offset.is_some() && timestamp_ms.is_some() {
        return bad_request("give offset or timestamp_ms, not both");
    }
    if !(1..=MAX_WINDOW_RECORDS).contains(&limit) {
        return bad_request(format!(
            "limit must be a number from 1 to {MAX_WINDOW_RECORDS}, not {limit}"
        ));
    }
    if timestamp_ms.is_some_and(|t| t < 0) {
        return bad_request("timestamp_ms must be a time in ms since the epoch");
    }
    let count = try_or!(partition_count(b, &topic));
    if !(0..count).contains(&partition) {
        return error(
            StatusCode::NOT_FOUND,
            format!("topic '{topic}' has no partition {partition} (it has {count})"),
        );
    }
    let start = try_or!(list_offsets(b, &topic, &[partition], -2).await)
        .get(&partition)
        .copied()
        .flatten()
        .unwrap_or(0);
    let end = try_or!(list_offsets(b, &topic, &[partition], -1).await)
        .get(&partition)
        .copied()
        .flatten()
        .unwrap_or(0);
    let from = match (offset, timestamp_ms) {
        (_, Some(ts)) => try_or!(list_offsets(b, &topic, &[partition], ts).await)
            .get(&partition)
            .copied()
            .flatten()
            .unwrap_or(end),
        // Negative: that many records before the end (the newest records).
        (Some(o), None) if o < 0 => end.saturating_add(o).max(start),
        (Some(o), None) => o.clamp(start, end),
        (None, None) => start,
    };
    let mut records = Vec::new();
    let mut next_offset = from;
    if from < end {
        let r = try_or!(
            call(
                b,
                Request::Fetch(FetchRequest {
                    max_wait_ms: 0,
                    min_bytes: 0,
                    max_bytes: MAX_WINDOW_BYTES,
                    topics: vec![FetchTopic {
                        name: topic.clone(),
                        topic_id: [0; 16],
                        partitions: vec![FetchPartition {
                            partition,
                            fetch_offset: from,
                            partition_max_bytes: MAX_WINDOW_BYTES,
                            ..FetchPartition::default()
                        }],
                    }],
                    ..FetchRequest::default()
                }),
            )
            .await
        );
        let Response2::Fetch(r) = r else {
            return unexpected();
        };
        if !r.error_code.is_none() {
            return kafka_error(r.error_code, None, "cannot fetch");
        }
        for part in r.topics.into_iter().flat_map(|t| t.partitions) {
            if !part.error_code.is_none() {
                return kafka_error(
                    part.error_code,
                    None,
                    &format!("cannot read {topic}[{partition}]"),
                );
            }
            if let Err(e) = window(&part.records, from, limit, &mut records, &mut next_offset) {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the records of {topic}[{partition}]: {e}"),
                );
            }
        }
    }
    Json(json!({
        "topic": topic,
        "partition": partition,
        "log_start_offset": start,
        "high_watermark": end,
        "records": records,
        "next_offset": next_offset,
    }))
    .into_response()
}

/// Appends the records at or after `from` in the fetched `records` to `out` (at most `limit`
/// in all), and moves `next` past what was read, control batches included. Records a fetch left
/// in their segment file are read from it first.
fn window(
    records: &FetchRecords,
    from: i64,
    limit: usize,
    out: &mut Vec<Value>,
    next: &mut i64,
) -> Result<(), String> {
    let data = records_in_memory(records).map_err(|e| e.to_string())?;
    let mut rest = &data[..];
    while out.len() < limit {
        let Ok(h) = weir_storage::batch::BatchHeader::parse(rest) else {
            break;
        };
        let Some(batch) = rest.get(..h.total_len()) else {
            break; // a partial batch cut by the size limit
        };
        rest = &rest[h.total_len()..];
        if h.is_control() {
            *next = (*next).max(h.last_offset().saturating_add(1));
            continue;
        }
        let mut failed = None;
        weir_storage::records::visit_records(batch, MAX_DECOMPRESSED_BYTES, |r| {
            if r.offset < from || out.len() >= limit {
                return;
            }
            let headers = match r.headers() {
                Ok(h) => h,
                Err(e) => {
                    failed = Some(e);
                    return;
                }
            };
            out.push(json!({
                "offset": r.offset,
                "timestamp_ms": r.timestamp_ms,
                "key": b64(r.key),
                "value": b64(r.value),
                "headers": headers
                    .iter()
                    .map(|(k, v)| json!({ "key": k, "value": b64(v.as_deref()) }))
                    .collect::<Vec<_>>(),
            }));
            *next = r.offset.saturating_add(1);
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = failed {
            return Err(e.to_string());
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestMessage {
    #[serde(default)]
    partition: i32,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Produces one record (UTF-8 key, value and headers) with acks=all.
pub async fn produce_message(
    State(state): State<Arc<AdminState>>,
    Path(topic): Path<String>,
    payload: Result<Json<TestMessage>, JsonRejection>,
) -> Response {
    let b = try_or!(broker(&state));
    let m = try_or!(body(payload));
    if m.key.as_ref().is_some_and(|k| k.len() > MAX_TEST_KEY_BYTES) {
        return bad_request(format!("key is longer than {MAX_TEST_KEY_BYTES} bytes"));
    }
    if m.value
        .as_ref()
        .is_some_and(|v| v.len() > MAX_TEST_VALUE_BYTES)
    {
        return bad_request(format!("value is longer than {MAX_TEST_VALUE_BYTES} bytes"));
    }
    if m.headers.len() > MAX_TEST_HEADERS {
        return bad_request(format!("more than {MAX_TEST_HEADERS} headers"));
    }
    let headers: Vec<(&str, Option<&[u8]>)> = m
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
        .collect();
    let record = weir_storage::records::NewRecord {
        key: m.key.as_deref().map(str::as_bytes),
        value: m.value.as_deref().map(str::as_bytes),
        headers: &headers,
        timestamp_ms: b.now_ms(),
    };
    let batch = bytes::Bytes::from(weir_storage::records::encode_batch(&[record]));
    let r = try_or!(
        call(
            b,
            Request::Produce(ProduceRequest {
                transactional_id: None,
                acks: -1,
                timeout_ms: REQUEST_TIMEOUT_MS,
                topics: vec![ProduceTopic {
                    name: topic.clone(),
                    topic_id: [0; 16],
                    partitions: vec![ProducePartition {
                        index: m.partition,
                        records: Some(batch),
                    }],
                }],
                legacy_formats_allowed: false,
                adds_partitions_to_txn: false,
                uses_topic_ids: false,
            }),
        )
        .await
    );
    let Response2::Produce(r) = r else {
        return unexpected();
    };
    match r.topics.into_iter().flat_map(|t| t.partitions).next() {
        Some(p) if !p.error_code.is_none() => kafka_error(
            p.error_code,
            p.error_message.as_deref(),
            &format!("cannot produce to {topic}[{}]", m.partition),
        ),
        Some(p) => (
            StatusCode::CREATED,
            Json(json!({ "topic": topic, "partition": p.index, "offset": p.base_offset })),
        )
            .into_response(),
        None => unexpected(),
    }
}

// ------------------------------------------------------------------------------------------------
// Groups
// ------------------------------------------------------------------------------------------------

pub async fn delete_group(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Response {
    let b = try_or!(broker(&state));
    let r = try_or!(
        call(
            b,
            Request::DeleteGroups(DeleteGroupsRequest {
                groups: vec![id.clone()],
            }),
        )
        .await
    );
    let Response2::DeleteGroups(r) = r else {
        return unexpected();
    };
    match r.results.into_iter().next() {
        Some(g) if !g.error_code.is_none() => {
            kafka_error(g.error_code, None, &format!("cannot delete group '{id}'"))
        }
        Some(_) => Json(json!({ "deleted": id })).into_response(),
        None => unexpected(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetOffsets {
    /// The topic whose offsets to reset; absent: every topic the group has offsets for.
    #[serde(default)]
    topic: Option<String>,
    /// Only these partitions (of `topic`).
    #[serde(default)]
    partitions: Option<Vec<i32>>,
    /// `earliest`, `latest`, `timestamp` (with `timestamp_ms`), `offset` (with `offset`) or
    /// `shift` (with `shift`: added to the committed offset).
    to: String,
    #[serde(default)]
    timestamp_ms: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    shift: Option<i64>,
    /// Preview only: say what would be committed, commit nothing. The default.
    #[serde(default = "yes")]
    dry_run: bool,
}

fn yes() -> bool {
    true
}

/// The number of active members of group `id`, or `None` if no coordinator here knows it.
fn members(b: &Broker, id: &str) -> Option<usize> {
    if let Some(d) = b.consumer_groups.lock().describe(id) {
        return Some(d.members.len());
    }
    b.groups.lock().describe(id).map(|d| d.members.len())
}

/// Resets the committed offsets of an inactive group, as `kafka-consumer-groups --reset-offsets`:
/// a preview by default (`dry_run`), a commit otherwise. Targets are kept within each partition's
/// log start and end offsets.
pub async fn reset_offsets(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
    payload: Result<Json<ResetOffsets>, JsonRejection>,
) -> Response {
    let b = try_or!(broker(&state));
    let r = try_or!(body(payload));
    let timestamp = match r.to.as_str() {
        "earliest" => None,
        "latest" => None,
        "timestamp" => match r.timestamp_ms {
            Some(t) if t >= 0 => Some(t),
            _ => return bad_request("to=timestamp needs timestamp_ms (ms since the epoch)"),
        },
        "offset" if r.offset.is_none() => return bad_request("to=offset needs offset"),
        "shift" if r.shift.is_none() => return bad_request("to=shift needs shift"),
        "offset" | "shift" => None,
        other => {
            return bad_request(format!(
                "to must be earliest, latest, timestamp, offset or shift, not '{other}'"
            ))
        }
    };
    if r.partitions.is_some() && r.topic.is_none() {
        return bad_request("partitions needs topic");
    }
    if let Some(n) = members(b, &id).filter(|&n| n > 0) {
        return error(
            StatusCode::CONFLICT,
            format!(
                "group '{id}' has {n} active member(s): offsets can only be reset while it is \
                 inactive (stop its consumers first)"
            ),
        );
    }
    let committed: BTreeMap<(String, i32), i64> = b
        .offsets
        .fetch_all(&id)
        .into_iter()
        .map(|(t, p, c)| ((t, p), c.offset))
        .collect();
    // The partitions to reset, by topic.
    let mut targets: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    match &r.topic {
        Some(topic) => {
            let count = try_or!(partition_count(b, topic));
            let parts = match &r.partitions {
                Some(ps) => {
                    if let Some(p) = ps.iter().find(|p| !(0..count).contains(*p)) {
                        return bad_request(format!(
                            "topic '{topic}' has no partition {p} (it has {count})"
                        ));
                    }
                    ps.clone()
                }
                None => (0..count).collect(),
            };
            targets.insert(topic.clone(), parts);
        }
        None => {
            for (t, p) in committed.keys() {
                if b.topics.get(t).is_some() {
                    targets.entry(t.clone()).or_default().push(*p);
                }
            }
            if targets.is_empty() {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("group '{id}' has no committed offsets: name a topic"),
                );
            }
        }
    }
    let mut plan = Vec::new();
    let mut commit = Vec::new();
    for (topic, parts) in &targets {
        let start = try_or!(list_offsets(b, topic, parts, -2).await);
        let end = try_or!(list_offsets(b, topic, parts, -1).await);
        let at_time = match timestamp {
            Some(ts) => Some(try_or!(list_offsets(b, topic, parts, ts).await)),
            None => None,
        };
        let mut partitions = Vec::new();
        for &p in parts {
            let lo = start.get(&p).copied().flatten().unwrap_or(0);
            let hi = end.get(&p).copied().flatten().unwrap_or(lo);
            let current = committed.get(&(topic.clone(), p)).copied();
            let new = match r.to.as_str() {
                "earliest" => lo,
                "latest" => hi,
                "timestamp" => at_time
                    .as_ref()
                    .and_then(|m| m.get(&p).copied().flatten())
                    .unwrap_or(hi),
                "offset" => r.offset.unwrap_or(lo),
                _ => current.unwrap_or(lo).saturating_add(r.shift.unwrap_or(0)),
            }
            .clamp(lo, hi);
            plan.push(json!({
                "topic": topic,
                "partition": p,
                "current_offset": current,
                "new_offset": new,
                "log_start_offset": lo,
                "log_end_offset": hi,
            }));
            partitions.push(OffsetCommitPartition {
                partition_index: p,
                committed_offset: new,
                committed_leader_epoch: -1,
                committed_metadata: None,
            });
        }
        commit.push(OffsetCommitTopic {
            name: topic.clone(),
            partitions,
        });
    }
    if !r.dry_run {
        let resp = try_or!(
            call(
                b,
                Request::OffsetCommit(OffsetCommitRequest {
                    group_id: id.clone(),
                    topics: commit,
                    ..OffsetCommitRequest::default()
                }),
            )
            .await
        );
        let Response2::OffsetCommit(resp) = resp else {
            return unexpected();
        };
        for t in resp.topics {
            for p in t.partitions {
                if !p.error_code.is_none() {
                    return kafka_error(
                        p.error_code,
                        None,
                        &format!(
                            "cannot commit the offset of {}[{}] for group '{id}'",
                            t.name, p.partition_index
                        ),
                    );
                }
            }
        }
    }
    Json(json!({ "group_id": id, "dry_run": r.dry_run, "partitions": plan })).into_response()
}

// ------------------------------------------------------------------------------------------------
// Dead letters
// ------------------------------------------------------------------------------------------------

/// Each share group with a dead-letter topic, and how many records that topic holds.
pub async fn dead_letter_topics(State(state): State<Arc<AdminState>>) -> Response {
    let b = try_or!(broker(&state));
    let mut groups = b.share.groups.lock().list();
    groups.sort();
    let mut out = Vec::new();
    for (group, _) in groups {
        let config = crate::share::group_config(&b.share.defaults, &b.group_overrides(&group));
        let Some(topic) = config.dlq_topic else {
            continue;
        };
        let records: Option<i64> = b.topics.get(&topic).map(|t| {
            t.local_partitions()
                .map(|p| p.high_watermark() - p.log.log_start_offset())
                .sum()
        });
        out.push(json!({ "group": group, "topic": topic, "records": records.unwrap_or(0) }));
    }
    Json(json!({ "dead_letter_topics": out })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    /// Produce to this topic instead of each record's source topic.
    #[serde(default)]
    to: Option<String>,
    /// Only the dead letters of this share group.
    #[serde(default)]
    group: Option<String>,
    /// Only dead letters with this reason.
    #[serde(default)]
    reason: Option<String>,
    /// At most this many dead letters, oldest first.
    #[serde(default)]
    max_records: Option<usize>,
    #[serde(default)]
    dry_run: bool,
}

/// Produces dead letters back to their source topics without the `weir.dlq.*` headers, as
/// `weir dlq redrive` does. The dead letters stay where they are.
pub async fn redrive(
    State(state): State<Arc<AdminState>>,
    Path(topic): Path<String>,
    payload: Result<Json<Redrive>, JsonRejection>,
) -> Response {
    let b = try_or!(broker(&state));
    let r = try_or!(body(payload));
    let dry_run = r.dry_run;
    let max = r.max_records.unwrap_or(MAX_REDRIVE_RECORDS);
    if !(1..=MAX_REDRIVE_RECORDS).contains(&max) {
        return bad_request(format!(
            "max_records must be a number from 1 to {MAX_REDRIVE_RECORDS}"
        ));
    }
    let count = try_or!(partition_count(b, &topic));
    let parts: Vec<i32> = (0..count).collect();
    let start = try_or!(list_offsets(b, &topic, &parts, -2).await);
    let end = try_or!(list_offsets(b, &topic, &parts, -1).await);
    let mut plan = RedrivePlan::new(RedriveFilter {
        to: r.to,
        group: r.group,
        reason: r.reason,
        max_records: Some(max),
    });
    for &p in &parts {
        let mut at = start.get(&p).copied().flatten().unwrap_or(0);
        let stop = end.get(&p).copied().flatten().unwrap_or(at);
        while at < stop && !plan.is_full() {
            let resp = try_or!(
                call(
                    b,
                    Request::Fetch(FetchRequest {
                        max_bytes: MAX_WINDOW_BYTES,
                        topics: vec![FetchTopic {
                            name: topic.clone(),
                            topic_id: [0; 16],
                            partitions: vec![FetchPartition {
                                partition: p,
                                fetch_offset: at,
                                partition_max_bytes: MAX_WINDOW_BYTES,
                                ..FetchPartition::default()
                            }],
                        }],
                        ..FetchRequest::default()
                    }),
                )
                .await
            );
            let Response2::Fetch(resp) = resp else {
                return unexpected();
            };
            let mut window_records = Vec::new();
            let mut next = at;
            for part in resp.topics.into_iter().flat_map(|t| t.partitions) {
                if !part.error_code.is_none() {
                    return kafka_error(
                        part.error_code,
                        None,
                        &format!("cannot read {topic}[{p}]"),
                    );
                }
                if let Err(e) = window(
                    &part.records,
                    at,
                    MAX_WINDOW_RECORDS,
                    &mut window_records,
                    &mut next,
                ) {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot read {topic}[{p}]: {e}"),
                    );
                }
            }
            if next <= at {
                break;
            }
            at = next;
            for rec in window_records {
                if plan.is_full() || rec["offset"].as_i64().is_some_and(|o| o >= stop) {
                    break;
                }
                let decode = |v: &Value| {
                    v.as_str()
                        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                        .map(bytes::Bytes::from)
                };
                let headers = rec["headers"]
                    .as_array()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                (
                                    h["key"].as_str().unwrap_or_default().to_string(),
                                    decode(&h["value"]),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                plan.offer(DeadLetter {
                    key: decode(&rec["key"]),
                    value: decode(&rec["value"]),
                    headers,
                });
            }
        }
    }
    let mut sent = 0usize;
    let mut targets = Vec::new();
    for ((target, partition), recs) in &plan.batches {
        let partition = target_partition(
            *partition,
            b.topics.get(target).map_or(0, |t| t.partition_count()),
        );
        if !dry_run {
            let headers: Vec<Vec<weir_storage::records::HeaderRef<'_>>> = recs
                .iter()
                .map(|r| {
                    r.headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_deref()))
                        .collect()
                })
                .collect();
            let now = b.now_ms();
            let new: Vec<weir_storage::records::NewRecord<'_>> = recs
                .iter()
                .zip(&headers)
                .map(|(r, h)| weir_storage::records::NewRecord {
                    key: r.key.as_deref(),
                    value: r.value.as_deref(),
                    headers: h,
                    timestamp_ms: now,
                })
                .collect();
            let batch = bytes::Bytes::from(weir_storage::records::encode_batch(&new));
            let resp = try_or!(
                call(
                    b,
                    Request::Produce(ProduceRequest {
                        transactional_id: None,
                        acks: -1,
                        timeout_ms: REQUEST_TIMEOUT_MS,
                        topics: vec![ProduceTopic {
                            name: target.clone(),
                            topic_id: [0; 16],
                            partitions: vec![ProducePartition {
                                index: partition,
                                records: Some(batch),
                            }],
                        }],
                        legacy_formats_allowed: false,
                        adds_partitions_to_txn: false,
                        uses_topic_ids: false,
                    }),
                )
                .await
            );
            let Response2::Produce(resp) = resp else {
                return unexpected();
            };
            for p in resp.topics.into_iter().flat_map(|t| t.partitions) {
                if !p.error_code.is_none() {
                    return kafka_error(
                        p.error_code,
                        p.error_message.as_deref(),
                        &format!("cannot produce to {target}[{partition}]"),
                    );
                }
            }
        }
        sent += recs.len();
        targets.push(json!({ "topic": target, "partition": partition, "records": recs.len() }));
    }
    Json(json!({
        "dry_run": dry_run,
        "records": sent,
        "skipped": plan.skipped,
        "targets": targets,
    }))
    .into_response()
}
