//! A connection from this broker to another one: Kafka frames over TCP, one request in flight,
//! Weir-owned request and response types (encoded by `weir_protocol::client`). Used for the
//! inter-broker Raft messages and replica fetches.
//!
//! Every wait is bounded (connect, response), every response frame is size-checked; a failure
//! drops the connection and the caller reconnects on its next call.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_protocol::client::{decode_response, encode_request};
use weir_protocol::{Request, Response};

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
    stream: Option<(String, TcpStream)>,
    next_correlation_id: i32,
}

impl PeerConnection {
    pub fn new(node: i32, me: i32) -> Self {
        Self {
            node,
            client_id: format!("weir-broker-{me}"),
            stream: None,
            next_correlation_id: 1,
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
        if self.stream.as_ref().is_none_or(|(a, _)| a != addr) {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                .await
                .map_err(|_| PeerError::Connect {
                    node,
                    addr: addr.to_string(),
                    reason: "timed out".into(),
                })?
                .map_err(|e| PeerError::Connect {
                    node,
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })?;
            let _ = stream.set_nodelay(true);
            self.stream = Some((addr.to_string(), stream));
        }
        let api_key = request.api_key();
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let (frame, version) = encode_request(correlation_id, &self.client_id, &request)
            .map_err(|e| PeerError::protocol(node, e))?;
        let Some((_, stream)) = self.stream.as_mut() else {
            return Err(PeerError::protocol(node, "no connection"));
        };
        let io = |e: std::io::Error| PeerError::Io {
            node,
            addr: addr.to_string(),
            reason: e.to_string(),
        };
        let exchange = async {
            stream.write_all(&frame).await.map_err(io)?;
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
}
