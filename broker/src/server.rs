//! The Kafka listener: accepts connections, frames requests, and writes responses in request order.
//!
//! Each connection has a reader loop and a writer task joined by a bounded queue of in-flight
//! requests (`max_in_flight_requests_per_connection`). The reader decodes a request and awaits its
//! in-order part (`handlers::dispatch`: every state change the request makes) before it reads the
//! next one, so a connection's requests take effect in the order the client sent them; then it
//! queues the future of the response, and the writer awaits those futures in order. Bad frames
//! close the connection. Owns sockets and limits; owns no protocol logic (see `handlers`).
//!
//! Each listener has a security protocol. TLS listeners finish the TLS handshake first (an SSL
//! listener's client certificate names the principal); SASL listeners accept only ApiVersions,
//! SaslHandshake and SaslAuthenticate, in frames of at most [`MAX_PRE_AUTH_FRAME_BYTES`], until
//! the SASL exchange (`security::sasl`) succeeds, and close the connection on the first
//! non-SASL request after the session expired (KIP-368). A failed authentication is answered
//! after `connection_failed_authentication_delay_ms` and the connection closed.
//!
//! Quotas (`quota`) are applied here, as Kafka's KIP-219: each request's produce bytes, fetch
//! response bytes and handling time are recorded against the client's quotas; a response over a
//! quota carries the throttle time, and once it is written the connection is muted (no request
//! is read from it) for that long. Produce bytes and handling time are known before the response:
//! going over those quotas mutes the connection at once, so pipelined requests wait as well.
//!
//! Connection limits are applied as each connection is accepted, in the order of Kafka's
//! `ConnectionQuotas` (KIP-612): `max_connections` (a client listener accepts only while a
//! connection slot is free, so at the limit new connections wait in the backlog); the broker-wide
//! `max_connection_creation_rate` (accepting waits until the rate is back under it; the
//! inter-broker listener of a cluster is not counted); the client IP's
//! `connection_creation_rate` quota (`quota`: the connection is held for the throttle time,
//! then closed, and not counted); then `max_connections_per_ip` or its override for the IP
//! (closed at once).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn, Instrument};
use weir_protocol::{
    decode_request, encode_api_versions_unsupported, encode_response, encode_response_parts, frame,
    DecodeError, ErrorCode, Request, RequestHeader, Response, ResponseParts,
    SaslAuthenticateResponse, SaslHandshakeResponse,
};

use crate::broker::{Broker, CURRENT_LISTENER};
use crate::handlers::{self, RequestContext};
use crate::metrics::{
    api_name, AcceptThrottleLabels, AuthLabels, Metrics, RejectLabels, UnauthenticatedCloseLabels,
};
use crate::quota::rate::SampledRate;
use crate::security::principal_mapping::subject_dn;
use crate::security::sasl::{Authenticated, Mechanism, SaslEnv, SaslSession, Step};
use crate::security::{ListenerConfig, Principal, SecurityProtocol};
use crate::send::{FrameWriter, ResponseSink};

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

/// Most connections held open at once before they are closed for their IP's
/// `connection_creation_rate`; past it they are closed at once (each holds a socket).
const MAX_HELD_THROTTLED_CONNECTIONS: usize = 1024;

/// Limits shared by every listener: connection counts, per-IP counts, the broker-wide
/// connection creation rate, request memory.
#[derive(Clone)]
pub struct SharedLimits {
    connections: Arc<Semaphore>,
    per_ip: Arc<PerIp>,
    /// Connections created on the client listeners (`max_connection_creation_rate`).
    creation_rate: Arc<Mutex<SampledRate>>,
    /// Room for connections held before they are closed for their IP's creation rate.
    held: Arc<Semaphore>,
    request_memory: RequestMemory,
}

impl SharedLimits {
    pub fn new(broker: &Broker) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(broker.config.max_connections)),
            per_ip: Arc::new(PerIp::default()),
            creation_rate: Arc::new(Mutex::new(SampledRate::default())),
            held: Arc::new(Semaphore::new(MAX_HELD_THROTTLED_CONNECTIONS)),
            request_memory: RequestMemory::new(broker.config.max_queued_request_bytes),
        }
    }

    /// Records a connection created on a client listener and returns how long accepting must
    /// wait for the broker-wide rate to come back under `max_connection_creation_rate`.
    fn record_creation(&self, broker: &Broker) -> i64 {
        let mut rate = self.creation_rate.lock();
        let now_ms = broker.now_ms();
        rate.record(1.0, now_ms);
        rate.throttle_ms(
            f64::from(broker.config.max_connection_creation_rate),
            now_ms,
        )
    }
}

/// Whether `listener` is the inter-broker listener of a cluster, which Kafka keeps out of the
/// broker-wide connection creation rate so that brokers can always reach each other.
fn is_inter_broker(broker: &Broker, listener: &ListenerConfig) -> bool {
    broker.config.cluster.is_some()
        && broker
            .config
            .inter_broker_listener()
            .is_ok_and(|l| l.name == listener.name)
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Accepts connections on one listener until `shutdown` turns true. Returns when every
/// connection has finished its in-flight requests.
pub async fn serve(
    broker: Arc<Broker>,
    listener_config: ListenerConfig,
    listener: TcpListener,
    limits: SharedLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let inter_broker = is_inter_broker(&broker, &listener_config);
    let listener_config = Arc::new(listener_config);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        // max.connections, as Kafka: at the limit a client listener stops accepting until a
        // connection closes (new ones wait in the kernel's backlog). The inter-broker listener
        // of a cluster never waits for clients: its connections go over the limit instead.
        let permit = if inter_broker {
            limits.connections.clone().try_acquire_owned().ok()
        } else {
            tokio::select! {
                _ = shutdown.changed() => break,
                permit = limits.connections.clone().acquire_owned() => match permit {
                    Ok(p) => Some(p),
                    Err(_) => break,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
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
                if !inter_broker {
                    let throttle_ms = limits.record_creation(&broker);
                    if throttle_ms > 0 {
                        debug!(%peer, throttle_ms, "max.connection.creation.rate reached; accepting waits");
                        metrics.connection_accept_throttle_ms.get_or_create(&AcceptThrottleLabels { scope: "broker" }).inc_by(throttle_ms as u64);
                        tokio::select! {
                            _ = shutdown.changed() => break,
                            _ = tokio::time::sleep(millis(throttle_ms)) => {}
                        }
                    }
                }
                let throttle_ms = broker.quotas.record_connection(peer.ip(), broker.now_ms());
                if throttle_ms > 0 {
                    // Kafka holds the connection for the throttle time before it closes it, so a
                    // client retrying at once does not spin.
                    warn!(%peer, throttle_ms, "connection_creation_rate quota of the IP reached; closing");
                    metrics.connections_rejected.get_or_create(&RejectLabels { reason: "connection_creation_rate" }).inc();
                    metrics.connection_accept_throttle_ms.get_or_create(&AcceptThrottleLabels { scope: "ip" }).inc_by(throttle_ms as u64);
                    drop(permit);
                    if let Ok(held) = limits.held.clone().try_acquire_owned() {
                        let mut shutdown = shutdown.clone();
                        tasks.spawn(async move {
                            let _held = held;
                            tokio::select! {
                                _ = shutdown.changed() => {}
                                _ = tokio::time::sleep(millis(throttle_ms)) => {}
                            }
                            drop(stream);
                        });
                    }
                    continue;
                }
                let max_per_ip = broker.config.max_connections_per_ip_overrides.limit(peer.ip(), broker.config.max_connections_per_ip);
                let Some(ip_guard) = limits.per_ip.try_acquire(peer.ip(), max_per_ip) else {
                    warn!(%peer, "max.connections.per.ip reached; closing");
                    metrics.connections_rejected.get_or_create(&RejectLabels { reason: "max_connections_per_ip" }).inc();
                    continue;
                };
                metrics.connections_accepted.inc();
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                let request_memory = limits.request_memory.clone();
                let listener_config = listener_config.clone();
                let span = tracing::info_span!("conn", %peer, listener = %listener_config.name);
                tasks.spawn(async move {
                    metrics.connections_active.inc();
                    let _active = ActiveGuard(metrics);
                    // Dropped before `_active` (reverse order): once the gauge shows a
                    // connection gone, its places under the limits are free again.
                    let _permit = permit;
                    let _ip = ip_guard;
                    if let Err(e) = accept_connection(broker, listener_config, stream, peer, shutdown, request_memory).await {
                        debug!(error = %e, "connection closed");
                    }
                }.instrument(span));
            }
        }
    }
    info!(listener = %listener_config.name, "listener closed; waiting for connections to finish in-flight requests");
    while tasks.join_next().await.is_some() {}
}

/// Longest a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest frame accepted before a connection has authenticated (Kafka's fix for
/// CVE-2022-34917: an unauthenticated client cannot make the broker allocate more).
pub const MAX_PRE_AUTH_FRAME_BYTES: usize = 512 * 1024;

/// Sets up the transport (TLS, client certificate principal) and runs the connection.
async fn accept_connection(
    broker: Arc<Broker>,
    listener: Arc<ListenerConfig>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
    request_memory: RequestMemory,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    if !listener.protocol.uses_tls() {
        let (r, w) = stream.into_split();
        let conn = Conn::new(listener, peer, Principal::anonymous());
        return conn.run(broker, r, w, shutdown, request_memory).await;
    }
    let Some(tls) = broker.security.tls.clone() else {
        return Err(std::io::Error::other("TLS listener without TLS settings"));
    };
    let failed = |reason: String| {
        let broker = broker.clone();
        let listener = listener.clone();
        async move {
            warn!(%reason, "TLS authentication failed");
            broker
                .metrics
                .authentications
                .get_or_create(&AuthLabels {
                    listener: listener.name.clone(),
                    mechanism: "SSL",
                    result: "failure",
                })
                .inc();
            broker
                .metrics
                .unauthenticated_closes
                .get_or_create(&UnauthenticatedCloseLabels {
                    listener: listener.name.clone(),
                    reason: "tls_handshake",
                })
                .inc();
            tokio::time::sleep(failure_delay(&broker)).await;
        }
    };
    let tls_stream =
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                failed(format!("handshake: {e}")).await;
                return Ok(());
            }
            Err(_) => {
                failed("handshake timed out".into()).await;
                return Ok(());
            }
        };
    let mut principal = Principal::anonymous();
    if listener.protocol == SecurityProtocol::Ssl {
        let client_cert = tls_stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first());
        if let Some(cert) = client_cert {
            let name =
                subject_dn(cert.as_ref()).and_then(|dn| broker.security.principal_mapper.map(&dn));
            let Some(name) = name else {
                failed(
                    "no ssl.principal.mapping.rules rule matches the certificate subject".into(),
                )
                .await;
                return Ok(());
            };
            principal = Principal::user(name);
            broker
                .metrics
                .authentications
                .get_or_create(&AuthLabels {
                    listener: listener.name.clone(),
                    mechanism: "SSL",
                    result: "success",
                })
                .inc();
            info!(%principal, "authenticated with a client certificate");
        }
    }
    let (r, w) = tokio::io::split(tls_stream);
    let conn = Conn::new(listener, peer, principal);
    conn.run(broker, r, w, shutdown, request_memory).await
}

fn failure_delay(broker: &Broker) -> Duration {
    Duration::from_millis(
        broker
            .config
            .security
            .connection_failed_authentication_delay_ms,
    )
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
    /// A response frame, in parts (a Fetch's records stay in their files until they are sent).
    Send(ResponseParts),
    /// A throttled response (quotas): sent, then the connection reads nothing for this many
    /// milliseconds.
    SendThenMute(ResponseParts, i64),
    /// A failed authentication's answer: sent, then the connection is closed.
    SendThenClose(ResponseParts),
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

/// What one request counts against its client's quotas.
struct Measured {
    broker: Arc<Broker>,
    user: String,
    client_id: String,
    /// Produce: the request's size.
    produce_bytes: Option<usize>,
    /// A consumer's Fetch (followers' fetches are replication, not held to client quotas).
    consumer_fetch: bool,
}

impl Measured {
    /// Records what is known once the in-order part ran (produce bytes, handling time) against
    /// the client's quotas and returns the longer throttle, as Kafka takes the longest.
    fn record_in_order(&self, handling: Duration) -> i64 {
        use crate::quota::QuotaKind;
        let q = &self.broker.quotas;
        let now_ms = self.broker.now_ms();
        let (user, client) = (self.user.as_str(), self.client_id.as_str());
        let metrics = &self.broker.metrics;
        let mut throttle = 0;
        if let Some(bytes) = self.produce_bytes {
            throttle = q.record(QuotaKind::Produce, user, client, bytes as f64, now_ms);
            metrics.observe_quota("produce", user, client, Some(bytes as u64), throttle);
        }
        // Request time in percent-seconds of one thread: a rate of 100 is one thread busy.
        let percent_seconds = handling.as_secs_f64() * 100.0;
        let request_throttle = q.record(QuotaKind::Request, user, client, percent_seconds, now_ms);
        metrics.observe_quota("request", user, client, None, request_throttle);
        throttle.max(request_throttle)
    }

    /// Records a consumer Fetch's response bytes; the throttle for them.
    fn record_fetch(&self, response_bytes: usize) -> i64 {
        if !self.consumer_fetch {
            return 0;
        }
        let (user, client) = (self.user.as_str(), self.client_id.as_str());
        let throttle = self.broker.quotas.record(
            crate::quota::QuotaKind::Fetch,
            user,
            client,
            response_bytes as f64,
            self.broker.now_ms(),
        );
        self.broker.metrics.observe_quota(
            "fetch",
            user,
            client,
            Some(response_bytes as u64),
            throttle,
        );
        throttle
    }
}

/// Until when a connection is muted (quotas).
type Mute = Arc<Mutex<Option<tokio::time::Instant>>>;

/// Mutes `mute` for `throttle_ms` from now (or longer, if it is muted longer already).
fn mute_for(mute: &Mute, throttle_ms: i64) {
    let throttle = Duration::from_millis(u64::try_from(throttle_ms).unwrap_or(0));
    let until = tokio::time::Instant::now() + throttle;
    let mut muted = mute.lock();
    *muted = Some(muted.map_or(until, |m| m.max(until)));
}

/// One connection's authentication state and request context.
struct Conn {
    listener: Arc<ListenerConfig>,
    ctx: Arc<RequestContext>,
    /// Present on SASL listeners.
    sasl: Option<SaslSession>,
    /// Whether requests other than ApiVersions and SASL are accepted.
    authenticated: bool,
    /// When the SASL session ends (KIP-368): a non-SASL request after it closes the connection.
    session_expires_at_ms: Option<i64>,
    /// Until when no request is read (quotas).
    muted_until: Mute,
}

/// What the reader does after one frame.
enum Next {
    Queue(ResponseTask),
    /// Queue this (a failed authentication's delayed answer), then stop reading.
    QueueAndStop(ResponseTask),
    Stop,
}

impl Conn {
    fn new(listener: Arc<ListenerConfig>, peer: SocketAddr, principal: Principal) -> Self {
        let sasl = listener.protocol.uses_sasl().then(SaslSession::new);
        Self {
            ctx: Arc::new(RequestContext {
                peer,
                listener: listener.name.clone().into(),
                security_protocol: listener.protocol,
                principal,
            }),
            authenticated: sasl.is_none(),
            sasl,
            listener,
            session_expires_at_ms: None,
            muted_until: Mute::default(),
        }
    }

    fn close_unauthenticated(&self, broker: &Broker, reason: &'static str) {
        broker
            .metrics
            .unauthenticated_closes
            .get_or_create(&UnauthenticatedCloseLabels {
                listener: self.listener.name.clone(),
                reason,
            })
            .inc();
    }

    fn count_auth(&self, broker: &Broker, mechanism: Option<Mechanism>, result: &'static str) {
        broker
            .metrics
            .authentications
            .get_or_create(&AuthLabels {
                listener: self.listener.name.clone(),
                mechanism: mechanism.map_or("UNKNOWN", Mechanism::name),
                result,
            })
            .inc();
    }

    async fn run<R, W>(
        mut self,
        broker: Arc<Broker>,
        mut reader: R,
        writer: W,
        mut shutdown: watch::Receiver<bool>,
        request_memory: RequestMemory,
    ) -> std::io::Result<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: ResponseSink,
    {
        let (queue, mut in_flight) = mpsc::channel::<ResponseTask>(
            broker.config.max_in_flight_requests_per_connection.max(1),
        );
        // Until when the connection is muted (quotas): set when a request goes over a quota and
        // again as its response goes out; the reader waits for it before the next request.
        let mute = self.muted_until.clone();
        let write_task = tokio::spawn(async move {
            let mut writer = FrameWriter::new(writer);
            while let Some(task) = in_flight.recv().await {
                match task.await {
                    Ok(Reply::Send(frame)) => writer.write_parts(frame).await?,
                    Ok(Reply::SendThenMute(frame, throttle_ms)) => {
                        // Muted for the throttle from the moment the response goes out; set
                        // just before the write so that the client's next request cannot slip
                        // in between.
                        mute_for(&mute, throttle_ms);
                        writer.write_parts(frame).await?;
                    }
                    Ok(Reply::SendThenClose(frame)) => {
                        writer.write_parts(frame).await?;
                        break;
                    }
                    Ok(Reply::Nothing) => {}
                    Ok(Reply::Close) => break,
                    Err(e) => return Err(std::io::Error::other(e)),
                }
            }
            writer.shutdown().await
        });
        let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
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
            let muted = *self.muted_until.lock();
            if let Some(until) = muted.filter(|u| *u > tokio::time::Instant::now()) {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
            let max_bytes = if self.authenticated {
                broker.config.max_request_bytes
            } else {
                broker
                    .config
                    .max_request_bytes
                    .min(MAX_PRE_AUTH_FRAME_BYTES)
            };
            let len = match frame::frame_len(prefix, max_bytes) {
                Ok(len) => len,
                Err(e) => {
                    warn!(error = %e, authenticated = self.authenticated, "bad frame; closing");
                    if !self.authenticated {
                        self.close_unauthenticated(&broker, "frame_too_large");
                    }
                    break;
                }
            };
            let Some(reserved) = request_memory.reserve(len).await else {
                break;
            };
            let body = read_body(&mut reader, len).await?;
            let next = if self
                .sasl
                .as_ref()
                .is_some_and(SaslSession::expects_raw_token)
            {
                self.raw_token(&broker, body.freeze()).await
            } else {
                self.request(&broker, body.freeze(), reserved).await
            };
            let (task, stop) = match next {
                Next::Queue(t) => (t, false),
                Next::QueueAndStop(t) => (t, true),
                Next::Stop => break,
            };
            if queue.send(task).await.is_err() || stop {
                break;
            }
        }
        drop(queue);
        match write_task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// One size-prefixed frame holding a request.
    async fn request(
        &mut self,
        broker: &Arc<Broker>,
        body: Bytes,
        reserved: OwnedSemaphorePermit,
    ) -> Next {
        let request_bytes = body.len();
        let (header, request) = match decode_request(body) {
            Ok(decoded) => decoded,
            Err(DecodeError::UnsupportedVersion { header })
                if header.api_key == weir_protocol::api_key::API_VERSIONS =>
            {
                let bytes = encode_api_versions_unsupported(&header);
                return Next::Queue(tokio::spawn(async move { Reply::Send(bytes.into()) }));
            }
            Err(e) => {
                warn!(error = %e, "undecodable request; closing");
                if !self.authenticated {
                    self.close_unauthenticated(broker, "sasl_protocol");
                }
                return Next::Stop;
            }
        };
        let is_sasl = matches!(
            request,
            Request::SaslHandshake(_) | Request::SaslAuthenticate(_)
        );
        if self.sasl.is_some() && is_sasl {
            return self.sasl_request(broker, header, request).await;
        }
        let in_exchange = self.sasl.as_ref().is_some_and(SaslSession::in_progress);
        if !matches!(request, Request::ApiVersions(_)) {
            if !self.authenticated || in_exchange {
                warn!(
                    api = api_name(header.api_key),
                    "request before authentication; closing"
                );
                self.close_unauthenticated(broker, "request_before_authentication");
                return Next::Stop;
            }
            if self
                .session_expires_at_ms
                .is_some_and(|at| broker.now_ms() >= at)
            {
                info!(principal = %self.ctx.principal, "SASL session expired without re-authentication; closing");
                self.close_unauthenticated(broker, "session_expired");
                return Next::Stop;
            }
        }
        let started = Instant::now();
        let span = tracing::debug_span!(
            "request",
            api = api_name(header.api_key),
            version = header.api_version,
            correlation_id = header.correlation_id,
        );
        let metrics = broker.metrics.clone();
        metrics.observe_request(&request, |name| broker.topics.get(name).is_some());
        let measured = Measured {
            broker: broker.clone(),
            user: self.ctx.principal.name.clone(),
            client_id: header.client_id.clone().unwrap_or_default(),
            produce_bytes: matches!(request, Request::Produce(_)).then_some(request_bytes),
            consumer_fetch: matches!(&request, Request::Fetch(f) if f.replica_id < 0),
        };
        // The in-order part runs before the next request is read (see `handlers`). Both parts
        // know the listener: the addresses a response gives are that listener's.
        let listener = self.ctx.listener.clone();
        let response = CURRENT_LISTENER
            .scope(
                listener.clone(),
                handlers::dispatch(broker, &self.ctx, &header, request).instrument(span.clone()),
            )
            .await;
        // Produce bytes and handling time are known now: a request over a quota mutes the
        // connection at once, so that requests the client pipelined behind it wait too (Kafka
        // reads one request at a time and stays muted after a throttled response).
        let throttle_ms = measured.record_in_order(started.elapsed());
        if throttle_ms > 0 {
            mute_for(&self.muted_until, throttle_ms);
        }
        Next::Queue(tokio::spawn(async move {
            let _reserved = reserved;
            let response = CURRENT_LISTENER.scope(listener, response).await;
            metrics.observe_response(header.api_key, header.api_version, started, response.as_ref());
            // acks=0: nothing to answer (the connection is muted above all the same, as Kafka).
            let Some(mut response) = response else { return Reply::Nothing };
            let encoded = encode_response_parts(&header, &response);
            let throttle_ms = match &encoded {
                Ok(bytes) => throttle_ms.max(measured.record_fetch(bytes.len())),
                Err(_) => throttle_ms,
            };
            let wire_throttle_ms = i32::try_from(throttle_ms).unwrap_or(i32::MAX);
            let encoded = if throttle_ms > 0 && response.set_throttle_time_ms(wire_throttle_ms) {
                encode_response_parts(&header, &response)
            } else {
                encoded
            };
            match encoded {
                Ok(frame) if throttle_ms > 0 => Reply::SendThenMute(frame, throttle_ms),
                Ok(frame) => Reply::Send(frame),
                Err(e) => {
                    warn!(api_key = header.api_key, error = %e, "cannot encode response; closing");
                    Reply::Close
                }
            }
        }.instrument(span)))
    }

    /// Runs one SASL step off the async threads (PLAIN costs a PBKDF2).
    async fn sasl_step(
        &mut self,
        broker: &Arc<Broker>,
        step: impl FnOnce(&mut SaslSession, &SaslEnv<'_>) -> Step + Send + 'static,
    ) -> Option<Step> {
        let mut session = self.sasl.take()?;
        let b = broker.clone();
        let result = tokio::task::spawn_blocking(move || {
            let security = &b.security;
            let env = SaslEnv {
                enabled: &security.config.sasl_enabled_mechanisms,
                credentials: &security.credentials,
                jwt: security.jwt.as_deref(),
                now_ms: b.now_ms(),
                max_reauth_ms: security.config.connections_max_reauth_ms,
            };
            let step = step(&mut session, &env);
            (session, step)
        })
        .await
        .ok()?;
        self.sasl = Some(result.0);
        Some(result.1)
    }

    /// Applies a successful authentication to the connection.
    fn authenticated(&mut self, broker: &Broker, outcome: &Authenticated) {
        self.session_expires_at_ms = outcome.session_expires_at_ms;
        if outcome.reauthentication {
            self.count_auth(broker, Some(outcome.mechanism), "reauthentication");
            debug!(principal = %outcome.principal, mechanism = %outcome.mechanism, "re-authenticated");
        } else {
            self.count_auth(broker, Some(outcome.mechanism), "success");
            info!(principal = %outcome.principal, mechanism = %outcome.mechanism, "authenticated");
        }
        self.authenticated = true;
        self.ctx = Arc::new(RequestContext {
            peer: self.ctx.peer,
            listener: self.ctx.listener.clone(),
            security_protocol: self.ctx.security_protocol,
            principal: outcome.principal.clone(),
        });
    }

    /// A failed authentication: counted, logged, answered after the failure delay, closed.
    fn failed(
        &mut self,
        broker: &Broker,
        mechanism: Option<Mechanism>,
        reason: &str,
        bytes: Option<Bytes>,
    ) -> Next {
        warn!(mechanism = mechanism.map_or("none", Mechanism::name), %reason, "authentication failed");
        self.count_auth(broker, mechanism, "failure");
        let delay = failure_delay(broker);
        Next::QueueAndStop(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            match bytes {
                Some(b) => Reply::SendThenClose(b.into()),
                None => Reply::Close,
            }
        }))
    }

    async fn sasl_request(
        &mut self,
        broker: &Arc<Broker>,
        header: RequestHeader,
        request: Request,
    ) -> Next {
        let version = header.api_version;
        let encode = |response: Response| encode_response(&header, &response).ok();
        match request {
            Request::SaslHandshake(r) => {
                let step = self
                    .sasl_step(broker, move |s, env| {
                        s.handshake(&r.mechanism, version, env)
                    })
                    .await;
                let mechanisms: Vec<String> = broker
                    .security
                    .config
                    .sasl_enabled_mechanisms
                    .iter()
                    .map(|m| m.name().to_string())
                    .collect();
                let response = |error_code| {
                    encode(Response::SaslHandshake(SaslHandshakeResponse {
                        error_code,
                        mechanisms: mechanisms.clone(),
                    }))
                };
                match step {
                    Some(Step::Continue { error_code, .. }) => match response(error_code) {
                        Some(bytes) => {
                            Next::Queue(tokio::spawn(async move { Reply::Send(bytes.into()) }))
                        }
                        None => Next::Stop,
                    },
                    Some(Step::Failed {
                        error_code,
                        reason,
                        mechanism,
                        ..
                    }) => {
                        let bytes = response(error_code);
                        self.failed(broker, mechanism, &reason, bytes)
                    }
                    Some(Step::Done { .. }) | Some(Step::Close { .. }) | None => {
                        self.close_unauthenticated(broker, "sasl_protocol");
                        Next::Stop
                    }
                }
            }
            Request::SaslAuthenticate(r) => {
                let token = r.auth_bytes;
                let step = self
                    .sasl_step(broker, move |s, env| s.authenticate(&token, env))
                    .await;
                match step {
                    Some(Step::Continue {
                        error_code,
                        auth_bytes,
                    }) => {
                        let response = SaslAuthenticateResponse {
                            error_code,
                            auth_bytes: auth_bytes.into(),
                            ..Default::default()
                        };
                        match encode(Response::SaslAuthenticate(response)) {
                            Some(bytes) => {
                                Next::Queue(tokio::spawn(async move { Reply::Send(bytes.into()) }))
                            }
                            None => Next::Stop,
                        }
                    }
                    Some(Step::Done {
                        auth_bytes,
                        outcome,
                    }) => {
                        self.authenticated(broker, &outcome);
                        let response = SaslAuthenticateResponse {
                            error_code: ErrorCode::NONE,
                            error_message: None,
                            auth_bytes: auth_bytes.into(),
                            session_lifetime_ms: outcome.session_lifetime_ms,
                        };
                        match encode(Response::SaslAuthenticate(response)) {
                            Some(bytes) => {
                                Next::Queue(tokio::spawn(async move { Reply::Send(bytes.into()) }))
                            }
                            None => Next::Stop,
                        }
                    }
                    Some(Step::Failed {
                        error_code,
                        message,
                        reason,
                        mechanism,
                    }) => {
                        let bytes = encode(Response::SaslAuthenticate(SaslAuthenticateResponse {
                            error_code,
                            error_message: Some(message),
                            ..Default::default()
                        }));
                        self.failed(broker, mechanism, &reason, bytes)
                    }
                    Some(Step::Close { reason }) => {
                        warn!(%reason, "SASL protocol violation; closing");
                        self.close_unauthenticated(broker, "sasl_protocol");
                        Next::Stop
                    }
                    None => Next::Stop,
                }
            }
            _ => Next::Stop,
        }
    }

    /// A bare SASL token (after SaslHandshake v0): answered with a bare size-prefixed token.
    async fn raw_token(&mut self, broker: &Arc<Broker>, body: Bytes) -> Next {
        let step = self
            .sasl_step(broker, move |s, env| s.authenticate(&body, env))
            .await;
        let frame = |token: Vec<u8>| -> Option<Bytes> {
            let len = i32::try_from(token.len()).ok()?;
            let mut out = BytesMut::with_capacity(4 + token.len());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&token);
            Some(out.freeze())
        };
        match step {
            Some(Step::Continue { auth_bytes, .. }) => match frame(auth_bytes) {
                Some(bytes) => Next::Queue(tokio::spawn(async move { Reply::Send(bytes.into()) })),
                None => Next::Stop,
            },
            Some(Step::Done {
                auth_bytes,
                outcome,
            }) => {
                self.authenticated(broker, &outcome);
                match frame(auth_bytes) {
                    Some(bytes) => {
                        Next::Queue(tokio::spawn(async move { Reply::Send(bytes.into()) }))
                    }
                    None => Next::Stop,
                }
            }
            // Legacy framing has no error response: the connection is closed (after the delay).
            Some(Step::Failed {
                reason, mechanism, ..
            }) => self.failed(broker, mechanism, &reason, None),
            Some(Step::Close { reason }) => {
                warn!(%reason, "SASL protocol violation; closing");
                self.close_unauthenticated(broker, "sasl_protocol");
                Next::Stop
            }
            None => Next::Stop,
        }
    }
}

/// Reads a request body of `len` bytes into a buffer that is not zeroed first: at small records
/// the zeroing cost as much as a copy of every byte received.
async fn read_body<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
) -> std::io::Result<BytesMut> {
    let mut body = BytesMut::with_capacity(len);
    let mut limited = reader.take(len as u64);
    while body.len() < len {
        if limited.read_buf(&mut body).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(body)
}
