//! SASL on the wire, against an in-process broker with a PLAINTEXT and a SASL_PLAINTEXT
//! listener and a manual clock: what is accepted before authentication, the pre-auth frame
//! limit, failed authentication, re-authentication and session expiry (KIP-368), and the legacy
//! SaslHandshake v0 framing; and, with the authorizer on (the PLAINTEXT listener's
//! `User:ANONYMOUS` a super user, SASL users not), what the requests clients of the
//! confluent-kafka suite do not send need: the inter-broker APIs, replica fetches, offsets by
//! epoch, topic ids, configs; and client quotas (KIP-546 admin, throttling with KIP-219 muting).
//! (Real clients: tests-compat/test_security.py, test_acls.py, test_quotas.py.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use weir_broker::authz::AuthorizerConfig;
use weir_broker::broker::Broker;
use weir_broker::clock::ManualClock;
use weir_broker::config::BrokerConfig;
use weir_broker::security::listeners::parse_listeners;
use weir_broker::security::sasl::Mechanism;
use weir_broker::security::scram::{random_bytes, ScramClient, ScramMechanism};
use weir_broker::security::SecurityConfig;
use weir_protocol::client::{client_version, decode_response, encode_request_at};
use weir_protocol::*;

const START_MS: i64 = 1_700_000_000_000;
const REAUTH_MS: u64 = 1_000;

struct Running {
    plain: SocketAddr,
    sasl: SocketAddr,
    clock: Arc<ManualClock>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind() -> (std::net::TcpListener, SocketAddr) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    l.set_nonblocking(true).expect("nonblocking");
    (l, addr)
}

fn start() -> Running {
    start_with(AuthorizerConfig::default())
}

/// A broker whose PLAINTEXT listener (`User:ANONYMOUS`) is a super user and whose authorizer is on.
fn start_authorized() -> Running {
    start_with(AuthorizerConfig {
        enabled: true,
        super_users: vec!["User:ANONYMOUS".into()],
        allow_everyone_if_no_acl_found: false,
    })
}

fn start_with(authorizer: AuthorizerConfig) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let (plain_l, plain) = bind();
    let (sasl_l, sasl) = bind();
    let listeners = parse_listeners(
        &format!("PLAINTEXT://{plain},SASL_PLAINTEXT://{sasl}"),
        None,
        None,
    )
    .expect("listeners");
    let config = BrokerConfig {
        listeners: listeners.clone(),
        admin_listener: None,
        data_dir: dir.path().to_path_buf(),
        max_request_bytes: 4 << 20,
        authorizer,
        security: SecurityConfig {
            sasl_enabled_mechanisms: vec![Mechanism::Plain, Mechanism::ScramSha256],
            connections_max_reauth_ms: REAUTH_MS,
            connection_failed_authentication_delay_ms: 10,
            ..SecurityConfig::default()
        },
        ..BrokerConfig::default()
    };
    let clock = Arc::new(ManualClock::new(START_MS));
    let c = clock.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let bound = vec![
                (
                    listeners[0].clone(),
                    tokio::net::TcpListener::from_std(plain_l).expect("listener"),
                ),
                (
                    listeners[1].clone(),
                    tokio::net::TcpListener::from_std(sasl_l).expect("listener"),
                ),
            ];
            let broker = Broker::open(config, c).expect("open broker");
            weir_broker::run_listeners(broker, bound, async move {
                let _ = stop_rx.await;
            })
            .await
            .expect("run");
        });
    });
    Running {
        plain,
        sasl,
        clock,
        stop: Some(stop_tx),
        thread: Some(thread),
        _dir: dir,
    }
}

struct Conn {
    s: TcpStream,
    corr: i32,
    client_id: &'static str,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Conn {
            s,
            corr: 1,
            client_id: "sec-test",
        }
    }

    fn with_client_id(addr: SocketAddr, client_id: &'static str) -> Conn {
        Conn {
            client_id,
            ..Conn::new(addr)
        }
    }

    fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).ok()?;
        let len = usize::try_from(i32::from_be_bytes(len)).ok()?;
        let mut body = BytesMut::zeroed(len);
        self.s.read_exact(&mut body).ok()?;
        Some(body.freeze())
    }

    /// Sends `request`; `None` if the broker closed the connection instead of answering.
    fn call(&mut self, request: Request) -> Option<Response> {
        let version = client_version(request.api_key()).expect("a client version");
        self.call_at(request, version)
    }

    /// [`Conn::call`] at API version `version`.
    fn call_at(&mut self, request: Request, version: i16) -> Option<Response> {
        let api_key = request.api_key();
        self.corr += 1;
        let frame =
            encode_request_at(self.corr, self.client_id, &request, version).expect("encode");
        self.s.write_all(&frame).ok()?;
        let body = self.read_frame()?;
        let (corr, response) = decode_response(api_key, version, body).expect("decode");
        assert_eq!(corr, self.corr);
        Some(response)
    }

    /// Whether the broker closed the connection (EOF or reset; a read timeout is not a close).
    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        match self.s.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    fn metadata(&mut self) -> Option<Response> {
        self.call(Request::Metadata(MetadataRequest::default()))
    }

    fn handshake(&mut self, mechanism: &str) -> SaslHandshakeResponse {
        match self.call(Request::SaslHandshake(SaslHandshakeRequest {
            mechanism: mechanism.into(),
        })) {
            Some(Response::SaslHandshake(r)) => r,
            other => panic!("not a SaslHandshake response: {other:?}"),
        }
    }

    fn authenticate(&mut self, token: &[u8]) -> Option<SaslAuthenticateResponse> {
        match self.call(Request::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: Bytes::copy_from_slice(token),
        }))? {
            Response::SaslAuthenticate(r) => Some(r),
            other => panic!("not a SaslAuthenticate response: {other:?}"),
        }
    }

    /// A whole SCRAM-SHA-256 exchange; returns the final response.
    fn scram(&mut self, user: &str, password: &str) -> Option<SaslAuthenticateResponse> {
        assert_eq!(self.handshake("SCRAM-SHA-256").error_code, ErrorCode::NONE);
        let (mut client, first) = ScramClient::start(ScramMechanism::Sha256, user, password);
        let r = self.authenticate(&first)?;
        assert_eq!(r.error_code, ErrorCode::NONE);
        let fin = client.client_final(&r.auth_bytes).expect("client final");
        let r = self.authenticate(&fin)?;
        if r.error_code.is_none() {
            client
                .verify_server_final(&r.auth_bytes)
                .expect("the broker proves it knows the credential");
        }
        Some(r)
    }
}

/// Gives `user` SCRAM-SHA-256 credentials through AlterUserScramCredentials.
fn create_user(addr: SocketAddr, user: &str, password: &str) {
    let mut c = Conn::new(addr);
    let salt = random_bytes(16);
    let salted = ScramMechanism::Sha256.salted_password(password.as_bytes(), &salt, 4096);
    let r = c.call(Request::AlterUserScramCredentials(
        AlterUserScramCredentialsRequest {
            deletions: Vec::new(),
            upsertions: vec![ScramCredentialUpsertion {
                name: user.into(),
                mechanism: ScramMechanism::Sha256.wire_type(),
                iterations: 4096,
                salt: salt.into(),
                salted_password: salted.into(),
            }],
        },
    ));
    let Some(Response::AlterUserScramCredentials(r)) = r else {
        panic!("no AlterUserScramCredentials response");
    };
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].error_code, ErrorCode::NONE, "{r:?}");
}

#[test]
fn before_authentication_only_api_versions_and_sasl_are_served() {
    let b = start();
    let mut c = Conn::new(b.sasl);
    // ApiVersions v0 (header v1: key, version, correlation id, null client id; empty body).
    let mut api_versions = 10i32.to_be_bytes().to_vec();
    api_versions.extend_from_slice(&18i16.to_be_bytes());
    api_versions.extend_from_slice(&0i16.to_be_bytes());
    api_versions.extend_from_slice(&9i32.to_be_bytes());
    api_versions.extend_from_slice(&(-1i16).to_be_bytes());
    c.s.write_all(&api_versions).expect("write");
    let r = c
        .read_frame()
        .expect("ApiVersions is answered before authentication");
    assert_eq!(&r[0..6], &[0, 0, 0, 9, 0, 0], "correlation id 9, no error");
    assert!(c.metadata().is_none(), "Metadata before authenticating");
    assert!(c.closed());
    // The PLAINTEXT listener needs no authentication, and SASL there is out of place.
    let mut p = Conn::new(b.plain);
    assert!(matches!(p.metadata(), Some(Response::Metadata(_))));
    assert_eq!(
        p.handshake("PLAIN").error_code,
        ErrorCode::ILLEGAL_SASL_STATE
    );
}

#[test]
fn pre_authentication_frames_are_limited_to_512_kib() {
    let b = start();
    create_user(b.plain, "alice", "pw-alice");
    let mut c = Conn::new(b.sasl);
    c.s.write_all(&(512i32 * 1024 + 1).to_be_bytes())
        .expect("write");
    assert!(c.closed());

    // After authentication the broker's own limit applies: a 600 KiB request is answered.
    let mut c = Conn::new(b.sasl);
    let r = c.scram("alice", "pw-alice").expect("answered");
    assert_eq!(r.error_code, ErrorCode::NONE);
    let big = MetadataRequest {
        topics: Some(
            (0..20)
                .map(|i| MetadataRequestTopic {
                    name: Some(format!("{i}{}", "x".repeat(30_000))),
                    topic_id: Default::default(),
                })
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    assert!(matches!(
        c.call(Request::Metadata(big)),
        Some(Response::Metadata(_))
    ));
}

#[test]
fn a_failed_authentication_is_answered_then_closed() {
    let b = start();
    create_user(b.plain, "alice", "pw-alice");
    let mut c = Conn::new(b.sasl);
    let r = c
        .scram("alice", "wrong")
        .expect("an answer before the close");
    assert_eq!(r.error_code, ErrorCode::SASL_AUTHENTICATION_FAILED);
    assert!(r.error_message.is_some_and(|m| m.contains("SCRAM-SHA-256")));
    assert!(c.closed());

    let mut c = Conn::new(b.sasl);
    let r = c.handshake("GSSAPI");
    assert_eq!(r.error_code, ErrorCode::UNSUPPORTED_SASL_MECHANISM);
    assert_eq!(r.mechanisms, vec!["PLAIN", "SCRAM-SHA-256"]);
    assert!(c.closed());
}

#[test]
fn sessions_expire_unless_the_client_reauthenticates() {
    let b = start();
    create_user(b.plain, "alice", "pw-alice");
    let mut c = Conn::new(b.sasl);
    let r = c.scram("alice", "pw-alice").expect("answered");
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(r.session_lifetime_ms, REAUTH_MS as i64);
    assert!(matches!(c.metadata(), Some(Response::Metadata(_))));

    // Re-authenticating before the end starts a new session from now.
    b.clock.advance(600);
    let r = c.scram("alice", "pw-alice").expect("answered");
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(r.session_lifetime_ms, REAUTH_MS as i64);
    b.clock.advance(600); // past the first session's end, within the second
    assert!(matches!(c.metadata(), Some(Response::Metadata(_))));

    // Past the end without re-authenticating: the next request closes the connection.
    b.clock.advance(500);
    assert!(c.metadata().is_none());
    assert!(c.closed());
}

#[test]
fn reauthentication_cannot_change_the_principal() {
    let b = start();
    create_user(b.plain, "alice", "pw-alice");
    create_user(b.plain, "bob", "pw-bob");
    let mut c = Conn::new(b.sasl);
    assert_eq!(
        c.scram("alice", "pw-alice").expect("answered").error_code,
        ErrorCode::NONE
    );
    let r = c.scram("bob", "pw-bob").expect("answered");
    assert_eq!(r.error_code, ErrorCode::SASL_AUTHENTICATION_FAILED);
    assert!(c.closed());
}

#[test]
fn handshake_v0_is_followed_by_bare_tokens() {
    let b = start();
    create_user(b.plain, "alice", "pw-alice");
    let mut c = Conn::new(b.sasl);
    // SaslHandshake v0, header v1: key, version, correlation id, client id; body: mechanism.
    let mut body = Vec::new();
    body.extend_from_slice(&17i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&7i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.extend_from_slice(&5i16.to_be_bytes());
    body.extend_from_slice(b"PLAIN");
    c.s.write_all(&(body.len() as i32).to_be_bytes())
        .expect("write");
    c.s.write_all(&body).expect("write");
    let r = c.read_frame().expect("handshake response");
    assert_eq!(&r[0..4], &7i32.to_be_bytes());
    assert_eq!(&r[4..6], &0i16.to_be_bytes(), "error code NONE");
    // The PLAIN token goes as a bare frame, and the answer is a bare (empty) frame.
    let token = b"\0alice\0pw-alice";
    c.s.write_all(&(token.len() as i32).to_be_bytes())
        .expect("write");
    c.s.write_all(token).expect("write");
    assert_eq!(c.read_frame().expect("bare answer").len(), 0);
    assert!(matches!(c.metadata(), Some(Response::Metadata(_))));
}

#[test]
fn each_listener_is_answered_with_its_own_address() {
    let b = start();
    create_user(b.plain, "alice", "alice-secret");
    let mut c = Conn::new(b.sasl);
    let r = c.scram("alice", "alice-secret").expect("authenticated");
    assert_eq!(r.error_code, ErrorCode::NONE);
    let Some(Response::Metadata(m)) = c.metadata() else {
        panic!("no Metadata response");
    };
    let ports: Vec<i32> = m.brokers.iter().map(|b| b.port).collect();
    assert_eq!(ports, vec![i32::from(b.sasl.port())]);
    // FindCoordinator builds its answer after the in-order part of the request: it must still
    // name the listener the request came on.
    let Some(Response::FindCoordinator(f)) =
        c.call(Request::FindCoordinator(FindCoordinatorRequest {
            key_type: 0,
            keys: vec!["g".into()],
        }))
    else {
        panic!("no FindCoordinator response");
    };
    assert_eq!(f.coordinators.len(), 1);
    assert_eq!(f.coordinators[0].error_code, ErrorCode::NONE);
    assert_eq!(f.coordinators[0].port, i32::from(b.sasl.port()));
}

// ---------------------------------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------------------------------

/// A SASL connection authenticated as `user` (created first through the super-user listener).
fn as_user(b: &Running, user: &str) -> Conn {
    create_user(b.plain, user, "pw");
    let mut c = Conn::new(b.sasl);
    assert_eq!(
        c.scram(user, "pw").expect("answered").error_code,
        ErrorCode::NONE
    );
    c
}

/// Grants `principal` `operation` (Kafka code) on a literal resource, as the super user.
fn grant(b: &Running, principal: &str, resource_type: i8, name: &str, operation: i8) {
    let mut c = Conn::new(b.plain);
    let Some(Response::CreateAcls(r)) = c.call(Request::CreateAcls(CreateAclsRequest {
        creations: vec![AclCreation {
            resource_type,
            resource_name: name.into(),
            resource_pattern_type: 3,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission_type: 3,
        }],
    })) else {
        panic!("no CreateAcls response");
    };
    assert_eq!(r.results[0].error_code, ErrorCode::NONE, "{r:?}");
}

const TOPIC: i8 = 2;
const READ: i8 = 3;
const CLUSTER: i8 = 4;
const DESCRIBE: i8 = 8;
const CLUSTER_ACTION: i8 = 9;

fn create_topic(b: &Running, name: &str) -> [u8; 16] {
    let mut c = Conn::new(b.plain);
    let Some(Response::CreateTopics(r)) = c.call(Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            assignments: Vec::new(),
            configs: Vec::new(),
        }],
        timeout_ms: 10_000,
        validate_only: false,
    })) else {
        panic!("no CreateTopics response");
    };
    assert_eq!(r.topics[0].error_code, ErrorCode::NONE, "{r:?}");
    r.topics[0].topic_id
}

fn fetch_as_replica(c: &mut Conn, topic: &str) -> FetchResponse {
    let Some(Response::Fetch(f)) = c.call(Request::Fetch(FetchRequest {
        replica_id: 1,
        max_wait_ms: 0,
        topics: vec![FetchTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..FetchPartition::default()
            }],
        }],
        ..FetchRequest::default()
    })) else {
        panic!("no Fetch response");
    };
    f
}

#[test]
fn inter_broker_requests_need_cluster_action() {
    let b = start_authorized();
    create_topic(&b, "t");
    let mut c = as_user(&b, "mallory");
    // A client posing as a broker (CVE-2018-1288): refused before anything is looked at.
    let Some(Response::Vote(v)) = c.call(Request::Vote(VoteRequest::default())) else {
        panic!("no Vote response");
    };
    assert_eq!(v.error_code, ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    let Some(Response::BeginQuorumEpoch(r)) =
        c.call(Request::BeginQuorumEpoch(BeginQuorumEpochRequest::default()))
    else {
        panic!("no BeginQuorumEpoch response");
    };
    assert_eq!(r.error_code, ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    let Some(Response::EndQuorumEpoch(r)) =
        c.call(Request::EndQuorumEpoch(EndQuorumEpochRequest::default()))
    else {
        panic!("no EndQuorumEpoch response");
    };
    assert_eq!(r.error_code, ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    let f = fetch_as_replica(&mut c, "t");
    assert_eq!(
        f.topics[0].partitions[0].error_code,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    );
    // A transaction marker written by a client would end (or forge the end of) another
    // producer's transaction.
    assert_eq!(
        write_marker(&mut c, "t"),
        ErrorCode::CLUSTER_AUTHORIZATION_FAILED
    );
    // Where a share-partition's state lives is for brokers' persisters to ask.
    assert_eq!(
        find_share_coordinator(&mut c),
        (ErrorCode::CLUSTER_AUTHORIZATION_FAILED, -1)
    );

    // With CLUSTER_ACTION the same requests get past authorization (a single node does not
    // serve Vote: UNKNOWN_SERVER_ERROR; a replica fetch reads the log; the marker is written;
    // this node owns all share state).
    grant(&b, "User:mallory", CLUSTER, "kafka-cluster", CLUSTER_ACTION);
    assert_eq!(find_share_coordinator(&mut c), (ErrorCode::NONE, 0));
    let Some(Response::Vote(v)) = c.call(Request::Vote(VoteRequest::default())) else {
        panic!("no Vote response");
    };
    assert_eq!(v.error_code, ErrorCode::UNKNOWN_SERVER_ERROR);
    let f = fetch_as_replica(&mut c, "t");
    assert_eq!(f.topics[0].partitions[0].error_code, ErrorCode::NONE);
    assert_eq!(write_marker(&mut c, "t"), ErrorCode::NONE);
}

/// FindCoordinator v6 of a share-partition key: the error code and node id answered.
fn find_share_coordinator(c: &mut Conn) -> (ErrorCode, i32) {
    let Some(Response::FindCoordinator(f)) = c.call_at(
        Request::FindCoordinator(FindCoordinatorRequest {
            key_type: 2,
            keys: vec!["g:AAAAAAAAAAAAAAAAAAAAAQ:0".into()],
        }),
        6,
    ) else {
        panic!("no FindCoordinator response");
    };
    (f.coordinators[0].error_code, f.coordinators[0].node_id)
}

/// WriteTxnMarkers of an ABORT marker for producer 7 to partition 0 of `topic`: its error code.
fn write_marker(c: &mut Conn, topic: &str) -> ErrorCode {
    use weir_protocol::transactions::{
        WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
    };
    let Some(Response::WriteTxnMarkers(r)) =
        c.call(Request::WriteTxnMarkers(WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: 7,
                producer_epoch: 0,
                transaction_result: false,
                topics: vec![WritableTxnMarkerTopic {
                    name: topic.into(),
                    partition_indexes: vec![0],
                }],
                coordinator_epoch: 0,
            }],
        }))
    else {
        panic!("no WriteTxnMarkers response");
    };
    r.markers[0].topics[0].partitions[0].error_code
}

#[test]
fn offsets_by_epoch_and_topic_ids_need_describe() {
    let b = start_authorized();
    let id = create_topic(&b, "hidden");
    let mut c = as_user(&b, "alice");
    let epoch_request = || {
        Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: "hidden".into(),
                partitions: vec![OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    leader_epoch: 0,
                }],
            }],
        })
    };
    let Some(Response::OffsetForLeaderEpoch(r)) = c.call(epoch_request()) else {
        panic!("no OffsetForLeaderEpoch response");
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
    );
    // By id: refused without the name (ids are not secret, names are).
    let Some(Response::Metadata(m)) = c.call(Request::Metadata(MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: None,
            topic_id: id,
        }]),
        ..MetadataRequest::default()
    })) else {
        panic!("no Metadata response");
    };
    assert_eq!(
        m.topics[0].error_code,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        "{m:?}"
    );
    assert_eq!(m.topics[0].name, None);
    assert_eq!(m.topics[0].topic_id, id);
    assert!(m.topics[0].partitions.is_empty());
    // Configs of the broker need DESCRIBE_CONFIGS on the cluster.
    let Some(Response::DescribeConfigs(d)) =
        c.call(Request::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 4,
                resource_name: "0".into(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        }))
    else {
        panic!("no DescribeConfigs response");
    };
    assert_eq!(
        d.results[0].error_code,
        ErrorCode::CLUSTER_AUTHORIZATION_FAILED
    );
    assert!(d.results[0].configs.is_empty());

    grant(&b, "User:alice", TOPIC, "hidden", DESCRIBE);
    let Some(Response::OffsetForLeaderEpoch(r)) = c.call(epoch_request()) else {
        panic!("no OffsetForLeaderEpoch response");
    };
    assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NONE);
}

fn produce_one(b: &Running, topic: &str) {
    let batch = weir_storage::records::encode_batch(&[weir_storage::records::NewRecord {
        value: Some(b"v"),
        timestamp_ms: START_MS,
        ..weir_storage::records::NewRecord::default()
    }]);
    let mut c = Conn::new(b.plain);
    let Some(Response::Produce(p)) = c.call(Request::Produce(ProduceRequest {
        transactional_id: None,
        acks: 1,
        timeout_ms: 10_000,
        topics: vec![ProduceTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: vec![ProducePartition {
                index: 0,
                records: Some(Bytes::from(batch)),
            }],
        }],
        legacy_formats_allowed: false,
        adds_partitions_to_txn: false,
        uses_topic_ids: false,
    })) else {
        panic!("no Produce response");
    };
    assert_eq!(
        p.topics[0].partitions[0].error_code,
        ErrorCode::NONE,
        "{p:?}"
    );
}

/// A KIP-227 fetch session keeps fetching the partitions of earlier requests without naming them
/// again (Java consumers; librdkafka sends full fetches): removing READ stops those too.
#[test]
fn a_fetch_session_stops_serving_a_topic_whose_read_is_removed() {
    let b = start_authorized();
    create_topic(&b, "s");
    grant(&b, "User:alice", TOPIC, "s", 3);
    let mut c = as_user(&b, "alice");
    produce_one(&b, "s");
    let Some(Response::Fetch(first)) = c.call(Request::Fetch(FetchRequest {
        max_wait_ms: 0,
        session_id: 0,
        session_epoch: 0,
        topics: vec![FetchTopic {
            name: "s".into(),
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..FetchPartition::default()
            }],
        }],
        ..FetchRequest::default()
    })) else {
        panic!("no Fetch response");
    };
    assert_eq!(first.error_code, ErrorCode::NONE);
    assert!(first.session_id != 0, "a session was created: {first:?}");
    assert_eq!(first.topics[0].partitions[0].error_code, ErrorCode::NONE);
    assert!(!first.topics[0].partitions[0].records.is_empty());

    let mut admin = Conn::new(b.plain);
    let Some(Response::DeleteAcls(d)) = admin.call(Request::DeleteAcls(DeleteAclsRequest {
        filters: vec![DeleteAclsFilter {
            resource_type_filter: 1,
            resource_name_filter: None,
            pattern_type_filter: 1,
            principal_filter: Some("User:alice".into()),
            host_filter: None,
            operation: 1,
            permission_type: 1,
        }],
    })) else {
        panic!("no DeleteAcls response");
    };
    assert_eq!(d.filter_results[0].matching_acls.len(), 1, "{d:?}");
    produce_one(&b, "s");

    // The next incremental fetch names no partition; the session's one has new data, and is
    // answered with the refusal instead.
    let Some(Response::Fetch(next)) = c.call(Request::Fetch(FetchRequest {
        max_wait_ms: 0,
        session_id: first.session_id,
        session_epoch: 1,
        topics: Vec::new(),
        ..FetchRequest::default()
    })) else {
        panic!("no Fetch response");
    };
    let parts: Vec<&FetchPartitionResponse> =
        next.topics.iter().flat_map(|t| &t.partitions).collect();
    assert!(!parts.is_empty(), "{next:?}");
    for p in parts {
        assert_eq!(
            p.error_code,
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            "{next:?}"
        );
        assert!(p.records.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Client quotas
// ---------------------------------------------------------------------------------------------

const DESCRIBE_CONFIGS: i8 = 10;

fn quota_entity(parts: &[(&str, Option<&str>)]) -> Vec<QuotaEntityComponent> {
    parts
        .iter()
        .map(|(t, n)| QuotaEntityComponent {
            entity_type: (*t).into(),
            entity_name: n.map(String::from),
        })
        .collect()
}

fn set_quota(key: &str, value: f64) -> QuotaOp {
    QuotaOp {
        key: key.into(),
        value,
        remove: false,
    }
}

fn alter_quotas(
    c: &mut Conn,
    entries: Vec<QuotaAlteration>,
    validate_only: bool,
) -> AlterClientQuotasResponse {
    let Some(Response::AlterClientQuotas(r)) =
        c.call(Request::AlterClientQuotas(AlterClientQuotasRequest {
            entries,
            validate_only,
        }))
    else {
        panic!("no AlterClientQuotas response");
    };
    r
}

fn describe_quotas(
    c: &mut Conn,
    components: Vec<QuotaFilterComponent>,
    strict: bool,
) -> DescribeClientQuotasResponse {
    let Some(Response::DescribeClientQuotas(r)) =
        c.call(Request::DescribeClientQuotas(DescribeClientQuotasRequest {
            components,
            strict,
        }))
    else {
        panic!("no DescribeClientQuotas response");
    };
    r
}

#[test]
fn client_quotas_are_altered_described_and_need_the_cluster_configs_rights() {
    let b = start_authorized();
    let mut admin = Conn::new(b.plain);
    let alice_apps = quota_entity(&[("user", Some("alice")), ("client-id", None)]);
    let default_user = quota_entity(&[("user", None)]);
    let r = alter_quotas(
        &mut admin,
        vec![
            QuotaAlteration {
                entity: alice_apps.clone(),
                ops: vec![set_quota("producer_byte_rate", 1024.0)],
            },
            QuotaAlteration {
                entity: default_user.clone(),
                ops: vec![
                    set_quota("consumer_byte_rate", 2048.0),
                    set_quota("request_percentage", 50.0),
                ],
            },
            // Refused one by one, as Kafka: an unknown key, a fractional byte rate, a client
            // quota on an ip entity (it takes connection_creation_rate only), a duplicate
            // entity type.
            QuotaAlteration {
                entity: quota_entity(&[("client-id", Some("x"))]),
                ops: vec![set_quota("bogus_rate", 1.0)],
            },
            QuotaAlteration {
                entity: quota_entity(&[("client-id", Some("y"))]),
                ops: vec![set_quota("producer_byte_rate", 1.5)],
            },
            QuotaAlteration {
                entity: quota_entity(&[("ip", Some("10.0.0.1"))]),
                ops: vec![set_quota("producer_byte_rate", 5.0)],
            },
            QuotaAlteration {
                entity: quota_entity(&[("user", Some("a")), ("user", Some("b"))]),
                ops: vec![set_quota("producer_byte_rate", 1.0)],
            },
        ],
        false,
    );
    let codes: Vec<ErrorCode> = r.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::NONE,
            ErrorCode::NONE,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::INVALID_REQUEST
        ],
        "{r:?}"
    );
    assert_eq!(r.entries[0].entity, alice_apps);
    // validate_only checks and stores nothing.
    let r = alter_quotas(
        &mut admin,
        vec![QuotaAlteration {
            entity: quota_entity(&[("client-id", Some("dry"))]),
            ops: vec![set_quota("producer_byte_rate", 10.0)],
        }],
        true,
    );
    assert_eq!(r.entries[0].error_code, ErrorCode::NONE);

    let all = describe_quotas(&mut admin, Vec::new(), false);
    assert_eq!(all.error_code, ErrorCode::NONE);
    let mut entries = all.entries.expect("entries");
    entries.sort_by_key(|e| e.entity.len());
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].entity, default_user);
    assert_eq!(
        entries[0]
            .values
            .iter()
            .map(|v| (v.key.as_str(), v.value))
            .collect::<Vec<_>>(),
        [("consumer_byte_rate", 2048.0), ("request_percentage", 50.0)]
    );
    assert_eq!(entries[1].entity, alice_apps);
    // alice exactly, strict: her user+client-id entity names a client-id too, so it is out.
    let f = QuotaFilterComponent {
        entity_type: "user".into(),
        match_type: 0,
        match_value: Some("alice".into()),
    };
    let r = describe_quotas(&mut admin, vec![f.clone()], false);
    assert_eq!(r.entries.expect("entries").len(), 1);
    let r = describe_quotas(&mut admin, vec![f], true);
    assert_eq!(r.entries.expect("entries").len(), 0);
    let bad = describe_quotas(
        &mut admin,
        vec![QuotaFilterComponent {
            entity_type: "user".into(),
            match_type: 0,
            match_value: None,
        }],
        false,
    );
    assert_eq!(bad.error_code, ErrorCode::INVALID_REQUEST);

    // Removing the last value removes the entity.
    let r = alter_quotas(
        &mut admin,
        vec![QuotaAlteration {
            entity: alice_apps.clone(),
            ops: vec![QuotaOp {
                key: "producer_byte_rate".into(),
                value: 0.0,
                remove: true,
            }],
        }],
        false,
    );
    assert_eq!(r.entries[0].error_code, ErrorCode::NONE);
    assert_eq!(
        describe_quotas(&mut admin, Vec::new(), false)
            .entries
            .expect("entries")
            .len(),
        1
    );

    // Without DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster, nothing.
    let mut mallory = as_user(&b, "mallory");
    let r = describe_quotas(&mut mallory, Vec::new(), false);
    assert_eq!(r.error_code, ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(r.entries, None);
    let r = alter_quotas(
        &mut mallory,
        vec![QuotaAlteration {
            entity: quota_entity(&[("user", Some("mallory"))]),
            ops: vec![set_quota("producer_byte_rate", 1e9)],
        }],
        false,
    );
    assert_eq!(
        r.entries[0].error_code,
        ErrorCode::CLUSTER_AUTHORIZATION_FAILED
    );
    grant(
        &b,
        "User:mallory",
        CLUSTER,
        "kafka-cluster",
        DESCRIBE_CONFIGS,
    );
    let r = describe_quotas(&mut mallory, Vec::new(), false);
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(r.entries.expect("entries").len(), 1);
}

fn produce_big(c: &mut Conn, topic: &str, value_bytes: usize) -> ProduceResponse {
    let value = vec![b'x'; value_bytes];
    let batch = weir_storage::records::encode_batch(&[weir_storage::records::NewRecord {
        value: Some(&value),
        timestamp_ms: START_MS,
        ..weir_storage::records::NewRecord::default()
    }]);
    let Some(Response::Produce(p)) = c.call(Request::Produce(ProduceRequest {
        transactional_id: None,
        acks: 1,
        timeout_ms: 10_000,
        topics: vec![ProduceTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: vec![ProducePartition {
                index: 0,
                records: Some(Bytes::from(batch)),
            }],
        }],
        legacy_formats_allowed: false,
        adds_partitions_to_txn: false,
        uses_topic_ids: false,
    })) else {
        panic!("no Produce response");
    };
    assert_eq!(
        p.topics[0].partitions[0].error_code,
        ErrorCode::NONE,
        "{p:?}"
    );
    p
}

#[test]
fn a_client_over_its_produce_quota_is_answered_with_a_throttle_then_muted() {
    let b = start();
    create_topic(&b, "q");
    let mut admin = Conn::new(b.plain);
    let r = alter_quotas(
        &mut admin,
        vec![QuotaAlteration {
            entity: quota_entity(&[("client-id", Some("slow"))]),
            ops: vec![set_quota("producer_byte_rate", 1000.0)],
        }],
        false,
    );
    assert_eq!(r.entries[0].error_code, ErrorCode::NONE);

    // 12 000 bytes measured over the 10 s minimum window is 1 200 B/s against 1 000: about
    // (1200 - 1000) / 1000 * 10 s = 2 s of throttle (the manual clock does not move).
    let mut slow = Conn::with_client_id(b.plain, "slow");
    let p = produce_big(&mut slow, "q", 12_000);
    assert!(
        (2_000..=2_500).contains(&p.throttle_time_ms),
        "throttle {}",
        p.throttle_time_ms
    );
    // The connection is muted after the response: the next request waits out the throttle.
    let sent = std::time::Instant::now();
    assert!(matches!(slow.metadata(), Some(Response::Metadata(_))));
    let waited_ms = sent.elapsed().as_millis();
    assert!(
        waited_ms >= u128::try_from(p.throttle_time_ms).expect("positive") - 50,
        "answered after {waited_ms} ms"
    );

    // Another client id has no quota: never throttled.
    let mut other = Conn::with_client_id(b.plain, "other");
    for _ in 0..3 {
        assert_eq!(produce_big(&mut other, "q", 12_000).throttle_time_ms, 0);
    }
}

fn api_versions(c: &mut Conn) -> Option<Response> {
    c.call(Request::ApiVersions(ApiVersionsRequest::default()))
}

#[test]
fn an_ip_over_its_connection_creation_rate_quota_has_new_connections_closed() {
    let b = start();
    let mut admin = Conn::new(b.plain);
    let loopback = quota_entity(&[("ip", Some("127.0.0.1"))]);
    let r = alter_quotas(
        &mut admin,
        vec![
            QuotaAlteration {
                entity: loopback.clone(),
                ops: vec![set_quota("connection_creation_rate", 1.0)],
            },
            QuotaAlteration {
                entity: quota_entity(&[("ip", None)]),
                ops: vec![set_quota("connection_creation_rate", 100.0)],
            },
            // Refused: not an IP address, ip with a user, a fractional rate.
            QuotaAlteration {
                entity: quota_entity(&[("ip", Some("broker.example"))]),
                ops: vec![set_quota("connection_creation_rate", 1.0)],
            },
            QuotaAlteration {
                entity: quota_entity(&[("ip", Some("10.0.0.2")), ("user", Some("a"))]),
                ops: vec![set_quota("connection_creation_rate", 1.0)],
            },
            QuotaAlteration {
                entity: quota_entity(&[("ip", Some("10.0.0.3"))]),
                ops: vec![set_quota("connection_creation_rate", 1.5)],
            },
            QuotaAlteration {
                entity: quota_entity(&[("user", Some("a"))]),
                ops: vec![set_quota("connection_creation_rate", 1.0)],
            },
        ],
        false,
    );
    let codes: Vec<ErrorCode> = r.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::NONE,
            ErrorCode::NONE,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::INVALID_REQUEST,
            ErrorCode::INVALID_REQUEST,
        ],
        "{r:?}"
    );
    // Described under the ip entity type (the default IP with a null name), apart from users.
    let ips = describe_quotas(
        &mut admin,
        vec![QuotaFilterComponent {
            entity_type: "ip".into(),
            match_type: 2,
            match_value: None,
        }],
        true,
    );
    let entries = ips.entries.expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].entity, loopback);
    assert_eq!(entries[0].values[0].key, "connection_creation_rate");
    assert_eq!(entries[0].values[0].value, 1.0);
    let default_ip = describe_quotas(
        &mut admin,
        vec![QuotaFilterComponent {
            entity_type: "ip".into(),
            match_type: 1,
            match_value: None,
        }],
        true,
    );
    assert_eq!(
        default_ip.entries.expect("entries")[0].entity,
        quota_entity(&[("ip", None)])
    );
    let users = describe_quotas(
        &mut admin,
        vec![QuotaFilterComponent {
            entity_type: "user".into(),
            match_type: 2,
            match_value: None,
        }],
        false,
    );
    assert_eq!(users.entries.expect("entries"), Vec::new());

    // 1 connection per second over the 10 s minimum window (the manual clock stands still):
    // ten new connections fit, every further one is closed without an answer; refused ones are
    // not counted, so they do not make room either. Connections already open stay usable.
    let mut outcomes = Vec::new();
    let mut open = Vec::new();
    for _ in 0..12 {
        let mut c = Conn::new(b.plain);
        outcomes.push(api_versions(&mut c).is_some());
        open.push(c);
    }
    assert_eq!(outcomes[..10], [true; 10]);
    assert_eq!(outcomes[10..], [false; 2]);
    assert!(api_versions(&mut admin).is_some());
    assert!(api_versions(&mut open[0]).is_some());

    // The quota is read at each accept: raised, new connections are accepted again.
    let r = alter_quotas(
        &mut admin,
        vec![QuotaAlteration {
            entity: loopback,
            ops: vec![set_quota("connection_creation_rate", 1000.0)],
        }],
        false,
    );
    assert_eq!(r.entries[0].error_code, ErrorCode::NONE);
    assert!(api_versions(&mut Conn::new(b.plain)).is_some());
}

/// DescribeQuorum needs DESCRIBE on the cluster, as Kafka's controllers ask.
#[test]
fn describe_quorum_needs_describe_on_the_cluster() {
    let b = start_authorized();
    let mut mallory = as_user(&b, "mallory");
    let quorum = DescribeQuorumRequest {
        topics: vec![DescribeQuorumTopic {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![DescribeQuorumPartition { partition_index: 0 }],
        }],
    };
    let Some(Response::DescribeQuorum(r)) = mallory.call(Request::DescribeQuorum(quorum.clone()))
    else {
        panic!("no DescribeQuorum response");
    };
    assert_eq!(r.error_code, ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    assert!(r.topics.is_empty(), "{r:?}");
    grant(&b, "User:mallory", CLUSTER, "kafka-cluster", DESCRIBE);
    let Some(Response::DescribeQuorum(r)) = mallory.call(Request::DescribeQuorum(quorum)) else {
        panic!("no DescribeQuorum response");
    };
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::NONE,
        "{r:?}"
    );
}

/// DescribeProducers needs READ on the topic, as Kafka asks.
#[test]
fn describe_producers_needs_read_on_the_topic() {
    let b = start_authorized();
    create_topic(&b, "t");
    let mut mallory = as_user(&b, "mallory");
    let request = Request::DescribeProducers(DescribeProducersRequest {
        topics: vec![DescribeProducersTopic {
            name: "t".into(),
            partition_indexes: vec![0],
        }],
    });
    let Some(Response::DescribeProducers(r)) = mallory.call(request.clone()) else {
        panic!("no DescribeProducers response");
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        "{r:?}"
    );
    grant(&b, "User:mallory", TOPIC, "t", READ);
    let Some(Response::DescribeProducers(r)) = mallory.call(request) else {
        panic!("no DescribeProducers response");
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::NONE,
        "{r:?}"
    );
}
