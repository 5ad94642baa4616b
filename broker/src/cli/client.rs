//! A small async Kafka client for the CLI: one TCP connection to the bootstrap broker, one request
//! in flight at a time, requests and responses as Weir-owned types (encoded by
//! `weir_protocol::client`). Weir is a single node, so every request, coordinator requests
//! included, goes to the bootstrap address.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_protocol::client::{decode_response, encode_request};
use weir_protocol::{Request, Response};

const CLIENT_ID: &str = "weir-cli";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one response (fetches long-poll for at most a few seconds; joins may wait
/// for a rebalance).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest response frame accepted.
const MAX_RESPONSE_BYTES: usize = 256 << 20;

pub struct Client {
    addr: String,
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    /// Connects to the first reachable address of the comma-separated `brokers` list.
    pub async fn connect(brokers: &str) -> anyhow::Result<Self> {
        let mut last_err = None;
        for addr in brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    stream.set_nodelay(true).ok();
                    return Ok(Self {
                        addr: addr.to_string(),
                        stream,
                        next_correlation_id: 1,
                    });
                }
                Ok(Err(e)) => last_err = Some(format!("cannot connect to {addr}: {e}")),
                Err(_) => last_err = Some(format!("cannot connect to {addr}: timed out")),
            }
        }
        match last_err {
            Some(e) => bail!(
                "{e}: is `weir serve` running? (set the address with --brokers or WEIR_BROKERS)"
            ),
            None => bail!("no broker address given (use --brokers host:port or WEIR_BROKERS)"),
        }
    }

    /// Sends `request` and waits for its response.
    pub async fn call(&mut self, request: Request) -> anyhow::Result<Response> {
        let api_key = request.api_key();
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let (frame, version) = encode_request(correlation_id, CLIENT_ID, &request)?;
        let lost = || format!("lost the connection to {}", self.addr);
        self.stream.write_all(&frame).await.with_context(lost)?;
        let body = tokio::time::timeout(RESPONSE_TIMEOUT, self.read_frame())
            .await
            .with_context(|| format!("no response from {} within {RESPONSE_TIMEOUT:?}", self.addr))?
            .with_context(|| format!("lost the connection to {}", self.addr))?;
        let (got, response) = decode_response(api_key, version, body)?;
        if got != correlation_id {
            bail!(
                "response out of order from {} (correlation id {got}, expected {correlation_id})",
                self.addr
            );
        }
        Ok(response)
    }

    async fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix).await?;
        let len = i32::from_be_bytes(prefix);
        let len = usize::try_from(len).context("negative response size")?;
        if len > MAX_RESPONSE_BYTES {
            bail!("response of {len} bytes is larger than the {MAX_RESPONSE_BYTES}-byte limit");
        }
        let mut body = BytesMut::zeroed(len);
        self.stream.read_exact(&mut body).await?;
        Ok(body.freeze())
    }
}

/// Unwraps the expected response variant.
macro_rules! expect_response {
    ($response:expr, $variant:ident) => {
        match $response {
            weir_protocol::Response::$variant(r) => r,
            other => anyhow::bail!(
                "unexpected response (api key {}) to a {} request",
                other.api_key(),
                stringify!($variant)
            ),
        }
    };
}
pub(crate) use expect_response;
