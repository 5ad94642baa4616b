//! The Kafka listener: accepts connections, frames requests, and writes responses in request order.
//!
//! Each connection has a reader loop and a writer task joined by a bounded queue of in-flight
//! requests (`max_in_flight_requests_per_connection`). The reader decodes a request and awaits its
//! in-order part (`handlers::dispatch`: every state change the request makes) before it reads the
//! next one, so a connection's requests take effect in the order the client sent them; then it
//! queues the future of the response, and the writer awaits those futures in order. Bad frames
//! close the connection. Owns sockets and limits; owns no protocol logic (see `handlers`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn, Instrument};
use weir_protocol::{
    decode_request, encode_api_versions_unsupported, encode_response, frame, DecodeError,
};

use crate::broker::Broker;
use crate::handlers::{self, RequestContext};
use crate::metrics::{api_name, Metrics, RejectLabels};

/// Connections counted per client IP, to enforce `max_connections_per_ip`.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

struct PerIpGuard {
    counts: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl PerIp {
    fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PerIpGuard> {
        let mut counts = self.0.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PerIpGuard {
            counts: self.clone(),
            ip,
        })
    }
}

/// Accepts connections until `shutdown` turns true. Returns when every connection has finished its
/// in-flight requests.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let request_memory = RequestMemory::new(broker.config.max_queued_request_bytes);
    let per_ip = Arc::new(PerIp::default());
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let metrics = broker.metrics.clone();
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    warn!(%peer, "max.connections reached; closing");
                    metrics.connections_rejected.get_or_create(&RejectLabels { reason: "max_connections" }).inc();
                    continue;
                };
                let Some(ip_guard) = per_ip.try_acquire(peer.ip(), broker.config.max_connections_per_ip) else {
                    warn!(%peer, "max.connections.per.ip reached; closing");
                    metrics.connections_rejected.get_or_create(&RejectLabels { reason: "max_connections_per_ip" }).inc();
                    continue;
                };
                metrics.connections_accepted.inc();
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                let request_memory = request_memory.clone();
                let span = tracing::info_span!("conn", %peer);
                tasks.spawn(async move {
                    let _permit = permit;
                    let _ip = ip_guard;
                    metrics.connections_active.inc();
                    let _active = ActiveGuard(metrics);
                    if let Err(e) = handle_connection(broker, stream, peer, shutdown, request_memory).await {
                        debug!(error = %e, "connection closed");
                    }
                }.instrument(span));
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    info!("listener closed; waiting for connections to finish in-flight requests");
    while tasks.join_next().await.is_some() {}
}

/// Decrements the active-connections gauge when a connection task ends.
struct ActiveGuard(Arc<Metrics>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.connections_active.dec();
    }
}

/// What the writer does with one request's outcome, in request order.
enum Reply {
    Send(Bytes),
    /// Produce with acks=0: the client expects nothing.
    Nothing,
    /// The response could not be encoded (a broker bug): the client would wait forever for this
    /// correlation id, so the connection is closed instead.
    Close,
}

type ResponseTask = JoinHandle<Reply>;

/// The broker-wide budget of request bytes read but not yet answered. A request holds its share
/// from before its body is read until its response is ready; a reader that cannot get its share
/// waits, which stops reading that socket (back-pressure instead of unbounded buffering).
#[derive(Clone)]
struct RequestMemory {
    bytes: Arc<Semaphore>,
    /// Permits are counted in KiB so that the total fits the semaphore's u32 requests.
    capacity_kib: u32,
}

impl RequestMemory {
    fn new(max_bytes: usize) -> Self {
        let capacity_kib = u32::try_from(max_bytes / 1024).unwrap_or(u32::MAX).max(1);
        Self {
            bytes: Arc::new(Semaphore::new(capacity_kib as usize)),
            capacity_kib,
        }
    }

    /// Waits for room for a `len`-byte request. A request larger than the whole budget waits until
    /// it is alone, so it still goes through.
    async fn reserve(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(len.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity_kib);
        self.bytes.clone().acquire_many_owned(kib).await.ok()
    }
}

async fn handle_connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    request_memory: RequestMemory,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let (queue, mut in_flight) =
        mpsc::channel::<ResponseTask>(broker.config.max_in_flight_requests_per_connection.max(1));
    let write_task = tokio::spawn(async move {
        while let Some(task) = in_flight.recv().await {
            match task.await {
                Ok(Reply::Send(bytes)) => writer.write_all(&bytes).await?,
                Ok(Reply::Nothing) => {}
                Ok(Reply::Close) => break,
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        writer.shutdown().await
    });
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let ctx = Arc::new(RequestContext { peer });
    loop {
        let mut prefix = [0u8; 4];
        tokio::select! {
            _ = shutdown.changed() => break,
            read = tokio::time::timeout(idle, reader.read_exact(&mut prefix)) => match read {
                Err(_) => {
                    debug!("idle timeout");
                    break;
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Ok(Err(e)) => return Err(e),
                Ok(Ok(_)) => {}
            },
        }
        let len = match frame::frame_len(prefix, broker.config.max_request_bytes) {
            Ok(len) => len,
            Err(e) => {
                warn!(error = %e, "bad frame; closing");
                break;
            }
        };
        let Some(reserved) = request_memory.reserve(len).await else {
            break;
        };
        let mut body = BytesMut::zeroed(len);
        reader.read_exact(&mut body).await?;
        let task: ResponseTask = match decode_request(body.freeze()) {
            Ok((header, request)) => {
                let started = Instant::now();
                let span = tracing::debug_span!(
                    "request",
                    api = api_name(header.api_key),
                    version = header.api_version,
                    correlation_id = header.correlation_id,
                );
                let metrics = broker.metrics.clone();
                metrics.observe_request(&request, |name| broker.topics.get(name).is_some());
                // The in-order part runs before the next request is read (see `handlers`).
                let response = handlers::dispatch(&broker, &ctx, &header, request)
                    .instrument(span.clone())
                    .await;
                tokio::spawn(async move {
                    let _reserved = reserved;
                    let response = response.await;
                    metrics.observe_response(header.api_key, header.api_version, started, response.as_ref());
                    let Some(response) = response else { return Reply::Nothing };
                    match encode_response(&header, &response) {
                        Ok(bytes) => Reply::Send(bytes),
                        Err(e) => {
                            warn!(api_key = header.api_key, error = %e, "cannot encode response; closing");
                            Reply::Close
                        }
                    }
                }.instrument(span))
            }
            Err(DecodeError::UnsupportedVersion { header })
                if header.api_key == weir_protocol::api_key::API_VERSIONS =>
            {
                let bytes = encode_api_versions_unsupported(&header);
                tokio::spawn(async move { Reply::Send(bytes) })
            }
            Err(e) => {
                warn!(error = %e, "undecodable request; closing");
                break;
            }
        };
        if queue.send(task).await.is_err() {
            break;
        }
    }
    drop(queue);
    match write_task.await {
        Ok(r) => r,
        Err(e) => Err(std::io::Error::other(e)),
    }
}
