//! A small etcd v3 client over etcd's JSON gateway (`/v3/kv/*`, `/v3/lease/*`, `/v3/watch`).
//!
//! Why not the gRPC `etcd-client` crate: it generates its code with `protoc` at build time, so a
//! plain `cargo build` on a fresh machine would need a system package first. The gateway is part
//! of every etcd 3.4+ server, speaks the same API, and needs only HTTP/1.1, which the broker
//! already has (hyper). See docs/cluster.md.
//!
//! Owns: connections to etcd, encoding of keys and values (base64 in the gateway's JSON), timeouts
//! and size limits of every call. Knows nothing of Weir's metadata layout (see `metadata`).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpStream;

/// Largest response body accepted from etcd (a range over the whole cluster prefix included).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// Largest single watch message accepted.
const MAX_WATCH_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd unreachable at {endpoints}: {reason}")]
    Unreachable { endpoints: String, reason: String },
    #[error("etcd request {path} timed out after {timeout_ms} ms")]
    Timeout { path: String, timeout_ms: u64 },
    #[error("etcd answered {path} with HTTP {status}: {body}")]
    Status {
        path: String,
        status: u16,
        body: String,
    },
    #[error("etcd response to {path} is not what the API describes: {reason}")]
    Protocol { path: String, reason: String },
    #[error("etcd watch ended: {0}")]
    WatchEnded(String),
    #[error("etcd watch from revision {requested} is compacted (oldest kept: {compact_revision})")]
    Compacted {
        requested: i64,
        compact_revision: i64,
    },
}

/// One key and its value with etcd's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub create_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Put(KeyValue),
    Delete { key: Vec<u8>, mod_revision: i64 },
}

/// The comparisons of a transaction (all must hold for its success branch).
#[derive(Debug, Clone)]
pub enum Compare {
    /// The key's mod revision equals this (0: the key does not exist).
    ModRevision(Vec<u8>, i64),
    /// The key's version equals this (0: the key does not exist).
    Version(Vec<u8>, i64),
    /// The key's value equals this.
    Value(Vec<u8>, Vec<u8>),
}

/// An operation of a transaction branch.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: Option<i64>,
    },
    Delete {
        key: Vec<u8>,
    },
    DeletePrefix {
        prefix: Vec<u8>,
    },
}

/// A client of one etcd cluster (one or more endpoints, tried in turn).
pub struct EtcdClient {
    endpoints: Vec<String>,
    /// The endpoint that answered last: tried first.
    preferred: Mutex<usize>,
    timeout: Duration,
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The first key after every key that starts with `prefix` (etcd's `range_end` for a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): the range is open-ended, which etcd spells "\0".
    vec![0]
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn field_int(v: &Value, name: &str) -> i64 {
    v.get(name).and_then(int).unwrap_or(0)
}

fn field_bytes(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => B64.decode(s).map_err(|e| format!("{name}: {e}")),
        Some(other) => Err(format!("{name}: not a string: {other}")),
    }
}

fn key_value(v: &Value) -> Result<KeyValue, String> {
    Ok(KeyValue {
        key: field_bytes(v, "key")?,
        value: field_bytes(v, "value")?,
        mod_revision: field_int(v, "mod_revision"),
        create_revision: field_int(v, "create_revision"),
        version: field_int(v, "version"),
        lease: field_int(v, "lease"),
    })
}

fn header_revision(v: &Value) -> i64 {
    v.get("header").map_or(0, |h| field_int(h, "revision"))
}

impl Compare {
    fn to_json(&self) -> Value {
        match self {
            Compare::ModRevision(key, rev) => json!({
                "key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string()
            }),
            Compare::Version(key, version) => json!({
                "key": b64(key), "target": "VERSION", "result": "EQUAL", "version": version.to_string()
            }),
            Compare::Value(key, value) => json!({
                "key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)
            }),
        }
    }
}

impl Op {
    fn to_json(&self) -> Value {
        match self {
            Op::Put { key, value, lease } => {
                let mut put = json!({"key": b64(key), "value": b64(value)});
                if let Some(l) = lease {
                    put["lease"] = Value::String(l.to_string());
                }
                json!({ "request_put": put })
            }
            Op::Delete { key } => json!({"request_delete_range": {"key": b64(key)}}),
            Op::DeletePrefix { prefix } => json!({
                "request_delete_range": {"key": b64(prefix), "range_end": b64(&prefix_end(prefix))}
            }),
        }
    }
}

/// Outcome of a transaction.
#[derive(Debug, Clone)]
pub struct TxnResult {
    pub succeeded: bool,
    pub revision: i64,
}

impl EtcdClient {
    /// A client for `endpoints` (`http://host:port` or `host:port`). Nothing is contacted yet.
    pub fn new(endpoints: &[String], timeout_ms: u64) -> Self {
        let endpoints = endpoints
            .iter()
            .map(|e| {
                e.trim()
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string()
            })
            .filter(|e| !e.is_empty())
            .collect();
        Self {
            endpoints,
            preferred: Mutex::new(0),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    async fn connect(
        &self,
        endpoint: &str,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(endpoint)
            .await
            .map_err(|e| format!("{endpoint}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{endpoint}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn request(endpoint: &str, path: &str, body: &Value) -> hyper::Request<Full<Bytes>> {
        let body = Bytes::from(body.to_string());
        hyper::Request::post(path)
            .header("host", endpoint)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("static request parts are valid")
    }

    /// Sends `body` to `path` on the first endpoint that answers, and returns the JSON answer.
    async fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        if self.endpoints.is_empty() {
            return Err(EtcdError::Unreachable {
                endpoints: String::new(),
                reason: "no endpoints configured".into(),
            });
        }
        let start = *self.preferred.lock();
        let mut last_error = String::new();
        for i in 0..self.endpoints.len() {
            let idx = (start + i) % self.endpoints.len();
            let endpoint = &self.endpoints[idx];
            let attempt = async {
                let mut sender = self.connect(endpoint).await?;
                let resp = sender
                    .send_request(Self::request(endpoint, path, &body))
                    .await
                    .map_err(|e| format!("{endpoint}: {e}"))?;
                let status = resp.status().as_u16();
                let bytes = read_limited(resp.into_body(), MAX_RESPONSE_BYTES).await?;
                Ok::<_, String>((status, bytes))
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Err(_) => {
                    last_error = format!("{endpoint}: timed out");
                }
                Ok(Err(e)) => last_error = e,
                Ok(Ok((status, bytes))) => {
                    *self.preferred.lock() = idx;
                    if status != 200 {
                        return Err(EtcdError::Status {
                            path: path.into(),
                            status,
                            body: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into(),
                        });
                    }
                    return serde_json::from_slice(&bytes).map_err(|e| EtcdError::Protocol {
                        path: path.into(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        if last_error.ends_with("timed out") {
            return Err(EtcdError::Timeout {
                path: path.into(),
                timeout_ms: self.timeout.as_millis() as u64,
            });
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoints.join(","),
            reason: last_error,
        })
    }

    fn protocol(path: &str, reason: String) -> EtcdError {
        EtcdError::Protocol {
            path: path.into(),
            reason,
        }
    }

    /// Every key starting with `prefix`, and the store revision they were read at.
    pub async fn get_prefix(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let path = "/v3/kv/range";
        let v = self
            .call(
                path,
                json!({"key": b64(prefix), "range_end": b64(&prefix_end(prefix))}),
            )
            .await?;
        let kvs = match v.get("kvs") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(key_value)
                .collect::<Result<_, _>>()
                .map_err(|e| Self::protocol(path, e))?,
            Some(other) => return Err(Self::protocol(path, format!("kvs: {other}"))),
        };
        Ok((kvs, header_revision(&v)))
    }

    /// One key, if it exists.
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
        let path = "/v3/kv/range";
        let v = self.call(path, json!({"key": b64(key)})).await?;
        match v.get("kvs") {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .first()
                .map(key_value)
                .transpose()
                .map_err(|e| Self::protocol(path, e)),
            Some(other) => Err(Self::protocol(path, format!("kvs: {other}"))),
        }
    }

    pub async fn put(
        &self,
        key: &[u8],
        value: &[u8],
        lease: Option<i64>,
    ) -> Result<i64, EtcdError> {
        let mut body = json!({"key": b64(key), "value": b64(value)});
        if let Some(l) = lease {
            body["lease"] = Value::String(l.to_string());
        }
        let v = self.call("/v3/kv/put", body).await?;
        Ok(header_revision(&v))
    }

    pub async fn delete(&self, key: &[u8]) -> Result<i64, EtcdError> {
        let v = self
            .call("/v3/kv/deleterange", json!({"key": b64(key)}))
            .await?;
        Ok(header_revision(&v))
    }

    /// Runs `success` if every comparison holds, `failure` otherwise, atomically.
    pub async fn txn(
        &self,
        compare: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<TxnResult, EtcdError> {
        let body = json!({
            "compare": compare.iter().map(Compare::to_json).collect::<Vec<_>>(),
            "success": success.iter().map(Op::to_json).collect::<Vec<_>>(),
            "failure": failure.iter().map(Op::to_json).collect::<Vec<_>>(),
        });
        let v = self.call("/v3/kv/txn", body).await?;
        Ok(TxnResult {
            succeeded: v.get("succeeded").and_then(Value::as_bool).unwrap_or(false),
            revision: header_revision(&v),
        })
    }

    /// A lease that expires `ttl_s` seconds after its last keep-alive.
    pub async fn lease_grant(&self, ttl_s: i64) -> Result<i64, EtcdError> {
        let path = "/v3/lease/grant";
        let v = self.call(path, json!({"TTL": ttl_s.to_string()})).await?;
        match v.get("ID").and_then(int) {
            Some(id) if id != 0 => Ok(id),
            _ => Err(Self::protocol(path, format!("no lease id in {v}"))),
        }
    }

    /// Refreshes a lease; `Ok(None)` when it has already expired.
    pub async fn lease_keepalive(&self, id: i64) -> Result<Option<i64>, EtcdError> {
        let v = self
            .call("/v3/lease/keepalive", json!({"ID": id.to_string()}))
            .await?;
        let ttl = v.get("result").map_or(0, |r| field_int(r, "TTL"));
        Ok((ttl > 0).then_some(ttl))
    }

    pub async fn lease_revoke(&self, id: i64) -> Result<(), EtcdError> {
        self.call("/v3/lease/revoke", json!({"ID": id.to_string()}))
            .await
            .map(|_| ())
    }

    /// Watches every key under `prefix` from `start_revision` on. The stream ends (with an error)
    /// when etcd goes away; the caller re-reads and watches again.
    pub async fn watch(&self, prefix: &[u8], start_revision: i64) -> Result<Watch, EtcdError> {
        let path = "/v3/watch";
        let body = json!({"create_request": {
            "key": b64(prefix),
            "range_end": b64(&prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
        }});
        let start = *self.preferred.lock();
        let mut last_error = String::new();
        for i in 0..self.endpoints.len() {
            let idx = (start + i) % self.endpoints.len();
            let endpoint = &self.endpoints[idx];
            let attempt = async {
                let mut sender = self.connect(endpoint).await?;
                let resp = sender
                    .send_request(Self::request(endpoint, path, &body))
                    .await
                    .map_err(|e| format!("{endpoint}: {e}"))?;
                if resp.status() != 200 {
                    return Err(format!("{endpoint}: HTTP {}", resp.status()));
                }
                Ok((sender, resp.into_body()))
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok((sender, body))) => {
                    return Ok(Watch {
                        body,
                        buf: BytesMut::new(),
                        requested: start_revision,
                        _connection: sender,
                    })
                }
                Ok(Err(e)) => last_error = e,
                Err(_) => last_error = format!("{endpoint}: timed out"),
            }
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoints.join(","),
            reason: last_error,
        })
    }
}

/// Reads a whole body, refusing more than `limit` bytes.
async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > limit {
                return Err(format!("response larger than {limit} bytes"));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out.freeze())
}

/// An open watch: newline-delimited JSON messages from etcd's gateway.
pub struct Watch {
    body: Incoming,
    buf: BytesMut,
    requested: i64,
    /// Held so the connection lives as long as the watch.
    _connection: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// What one watch message carried.
#[derive(Debug, Clone)]
pub struct WatchBatch {
    /// The store revision after these events.
    pub revision: i64,
    pub events: Vec<WatchEvent>,
}

impl Watch {
    /// The next batch of events (possibly empty: progress or the creation acknowledgement).
    pub async fn next(&mut self) -> Result<WatchBatch, EtcdError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = &line[..pos];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.parse(line);
            }
            match self.body.frame().await {
                None => return Err(EtcdError::WatchEnded("etcd closed the stream".into())),
                Some(Err(e)) => return Err(EtcdError::WatchEnded(e.to_string())),
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        if self.buf.len() + data.len() > MAX_WATCH_MESSAGE_BYTES {
                            return Err(EtcdError::WatchEnded(format!(
                                "watch message larger than {MAX_WATCH_MESSAGE_BYTES} bytes"
                            )));
                        }
                        self.buf.extend_from_slice(data);
                    }
                }
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<WatchBatch, EtcdError> {
        let path = "/v3/watch";
        let v: Value =
            serde_json::from_slice(line).map_err(|e| EtcdClient::protocol(path, e.to_string()))?;
        if let Some(err) = v.get("error") {
            return Err(EtcdError::WatchEnded(err.to_string()));
        }
        let result = v
            .get("result")
            .ok_or_else(|| EtcdClient::protocol(path, format!("no result in {v}")))?;
        let compact = field_int(result, "compact_revision");
        if compact > 0 {
            return Err(EtcdError::Compacted {
                requested: self.requested,
                compact_revision: compact,
            });
        }
        if result.get("canceled").and_then(Value::as_bool) == Some(true) {
            return Err(EtcdError::WatchEnded(format!("canceled: {result}")));
        }
        let mut events = Vec::new();
        if let Some(Value::Array(items)) = result.get("events") {
            for e in items {
                let kv = e
                    .get("kv")
                    .ok_or_else(|| EtcdClient::protocol(path, format!("event without kv: {e}")))?;
                let kv = key_value(kv).map_err(|r| EtcdClient::protocol(path, r))?;
                // proto3 JSON leaves out the default: no "type" means PUT.
                let event = match e.get("type").and_then(Value::as_str) {
                    Some("DELETE") => WatchEvent::Delete {
                        key: kv.key,
                        mod_revision: kv.mod_revision,
                    },
                    _ => WatchEvent::Put(kv),
                };
                events.push(event);
            }
        }
        Ok(WatchBatch {
            revision: header_revision(result),
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/weir/a/"), b"/weir/a0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), vec![b'b']);
        assert_eq!(prefix_end(&[0xff, 0xff]), vec![0]);
    }

    #[test]
    fn gateway_json_integers_are_strings_or_numbers() {
        assert_eq!(int(&json!("42")), Some(42));
        assert_eq!(int(&json!(42)), Some(42));
        assert_eq!(int(&json!("x")), None);
    }
}
