"""Inter-broker security (docs/security.md#in-a-cluster): a cluster whose only listeners are
SASL_SSL with mutual TLS, the authorizer on, and brokers that reach each other on that listener
with their own SCRAM credentials (inter-broker-listener-name,
sasl-mechanism-inter-broker-protocol). Real etcd, real `weir` processes, certificates made by
openssl, confluent-kafka as the client. A client without CLUSTER_ACTION cannot fetch as a replica;
a broker with wrong inter-broker credentials stays out of every ISR, logs and counts it."""

import re
import shutil
import socket
import ssl
import struct
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from cluster import Etcd
from conftest import EXTERNAL, WeirBroker, _LIVE_BROKERS, _close_broker
from security_pki import Pki, make_cert
from test_cluster import create_replicated

pytestmark = pytest.mark.skipif(
    EXTERNAL is not None or shutil.which("openssl") is None or shutil.which("etcd") is None,
    reason="starts its own cluster; needs the openssl CLI and etcd (tests-compat/install.sh)",
)

WAIT_S = 60
BROKER_PASSWORD = "broker-Secret-1"
ADMIN_PASSWORD = "admin-Secret-1"
ALICE_PASSWORD = "alice-Secret-1"
# Brokers present this certificate as servers and, under mTLS, as clients of each other.
BROKER_EXT = ("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
              "extendedKeyUsage=serverAuth,clientAuth\n")


class SaslSslBroker(WeirBroker):
    """A cluster broker whose only Kafka listener is SASL_SSL (mTLS required), which is also
    its inter-broker listener."""

    def __init__(self, node, etcd, pki, password_file, extra=()):
        super().__init__(name=f"weir-sec-{node}", extra_args=extra)
        self.node_id = node
        self.etcd = etcd
        self.pki = pki
        self.password_file = password_file

    def command(self):
        p = self.pki.path
        return [
            self.bin, "serve",
            "--node-id", str(self.node_id),
            "--etcd", self.etcd.endpoint,
            "--listeners", f"SECURE://{self.bootstrap}",
            "--listener-security-protocol-map", "SECURE:SASL_SSL",
            "--inter-broker-listener-name", "SECURE",
            "--sasl-mechanism-inter-broker-protocol", "SCRAM-SHA-512",
            "--inter-broker-sasl-username", "broker",
            "--inter-broker-sasl-password-file", self.password_file,
            "--data-dir", self.data_dir,
            "--admin-listener", f"{self.host}:{self.admin_port}",
            "--ssl-certificate-file", p("broker.crt"),
            "--ssl-key-file", p("broker.key"),
            "--ssl-client-ca-file", p("ca.crt"),
            "--ssl-client-auth", "required",
            "--sasl-enabled-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "--authorizer", "on",
            "--super-users", "User:broker;User:admin",
            "--connection-failed-authentication-delay-ms", "50",
            "--group-initial-rebalance-delay-ms", "0",
            "--broker-session-timeout-ms", "3000",
            "--replica-election-timeout-ms", "1000",
            *self.extra_args,
        ]

    def create_user(self, name, password):
        """Into the broker's own credential file while it is stopped: a bootstrap user, moved
        into the cluster's metadata (etcd) when the broker starts."""
        proc = subprocess.run(
            [self.bin, "user", "create", name, "--password", password, "--data-dir", self.data_dir],
            capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")

    def metric(self, name, **labels):
        url = f"http://{self.host}:{self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log(self):
        with open(self.log_path, "rb") as f:
            return re.sub(r"\x1b\[[0-9;]*m", "", f.read().decode("utf-8", "replace"))


class SecureCluster:
    def __init__(self, pki, size=3, wrong_password_nodes=(), bootstrap_users=None):
        self.pki = pki
        self.etcd = Etcd()
        self.brokers = []
        self.etcd.start()
        right = pki.path("broker-password")
        wrong = pki.path("wrong-password")
        for path, pw in ((right, BROKER_PASSWORD), (wrong, "not-the-password")):
            with open(path, "w") as f:
                f.write(pw + "\n")
        for node in range(1, size + 1):
            b = SaslSslBroker(node, self.etcd, pki,
                              wrong if node in wrong_password_nodes else right)
            # Every broker knows the right credentials; the misconfigured one only sends wrong ones.
            b.create_user("broker", BROKER_PASSWORD)
            b.create_user("admin", ADMIN_PASSWORD)
            b.create_user("alice", ALICE_PASSWORD)
            for name, password in (bootstrap_users or {}).get(node, ()):
                b.create_user(name, password)
            _LIVE_BROKERS.append(b)
            self.brokers.append(b)
            b.start()

    def conf(self, user="admin", password=ADMIN_PASSWORD, brokers=None):
        p = self.pki.path
        return {
            "bootstrap.servers": ",".join(b.bootstrap for b in (brokers or self.brokers)),
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": p("ca.crt"),
            "ssl.certificate.location": p("client.crt"),
            "ssl.key.location": p("client.key"),
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": user,
            "sasl.password": password,
        }

    def close(self, failed):
        for b in self.brokers:
            _close_broker(b, failed)
        self.etcd.close(keep_files=failed)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pki = Pki(str(tmp_path_factory.mktemp("pki")))
    make_cert(pki.dir, "broker", "ca", "/CN=localhost", BROKER_EXT)
    return pki


@pytest.fixture
def secure_cluster(request, pki):
    made = []

    def make(**kwargs):
        c = SecureCluster(pki, **kwargs)
        made.append(c)
        return c

    yield make
    rep = getattr(request.node, "rep_call", None)
    failed = rep is None or rep.failed
    for c in made:
        c.close(failed)


def wait_until(what, check, timeout=WAIT_S, interval=0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # noqa: BLE001 - retried until the deadline, then reported
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


def partitions(admin, topic):
    t = admin.list_topics(topic, timeout=10).topics.get(topic)
    if t is None or t.error is not None:
        return None
    return t.partitions


def grant_alice(admin, topic):
    bindings = [
        AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*",
                   op, AclPermissionType.ALLOW)
        for op in (AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE)
    ] + [AclBinding(ResourceType.GROUP, "*", ResourcePatternType.LITERAL, "User:alice", "*",
                    AclOperation.READ, AclPermissionType.ALLOW)]
    for f in admin.create_acls(bindings, request_timeout=WAIT_S).values():
        f.result(WAIT_S)


def produce(conf, topic, values):
    """Writes `values` (acks=all), each exactly once. ACLs granted through one broker reach
    the others through etcd a moment later (as Kafka's brokers apply the metadata log after
    CreateAcls is answered): values refused with TOPIC_AUTHORIZATION_FAILED are sent again
    until the deadline."""
    deadline = time.monotonic() + WAIT_S
    p = Producer({**conf, "acks": "all", "message.timeout.ms": 60000})
    pending = list(values)
    while True:
        errors, refused = [], []

        def delivered(err, m):
            if err is None:
                return
            if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                refused.append(m.value())
            else:
                errors.append(err)

        for v in pending:
            p.produce(topic, v, on_delivery=delivered)
        assert p.flush(WAIT_S) == 0, "records not delivered"
        assert errors == [], errors
        if not refused:
            return
        assert time.monotonic() < deadline, f"{len(refused)} records refused: topic not authorized"
        pending = refused
        time.sleep(0.2)


def consume_all(conf, topic, parts, n):
    c = Consumer({**conf, "group.id": f"g-{topic}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
        got = []
        deadline = time.monotonic() + WAIT_S
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
        return got
    finally:
        c.close()


def test_sasl_ssl_only_cluster_replicates_and_fails_over(secure_cluster, unique):
    c = secure_cluster(size=3)
    admin = AdminClient(c.conf())
    wait_until("every broker registered",
               lambda: sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3])
    topic = unique("secure-repl")
    create_replicated(admin, topic, 3)
    grant_alice(admin, topic)

    # Replication needs the brokers to reach each other: every replica in sync.
    wait_until("all replicas in sync", lambda: (ps := partitions(admin, topic)) and len(ps) == 3
               and all(p.leader > 0 and sorted(p.isrs) == [1, 2, 3] for p in ps.values()))
    alice = c.conf("alice", ALICE_PASSWORD)
    first = [f"a{i}".encode() for i in range(60)]
    produce(alice, topic, first)

    # Kill the leader of partition 0: the others elect a new one over SASL_SSL and go on.
    leader = partitions(admin, topic)[0].leader
    c.brokers[leader - 1].kill9()
    live = [b for b in c.brokers if b.node_id != leader]
    survivors = AdminClient(c.conf(brokers=live))
    wait_until("a new leader for partition 0", lambda: (ps := partitions(survivors, topic))
               and ps[0].leader not in (-1, leader))
    second = [f"b{i}".encode() for i in range(60)]
    produce(c.conf("alice", ALICE_PASSWORD, brokers=live), topic, second)
    got = consume_all(c.conf("alice", ALICE_PASSWORD, brokers=live), topic, 3, 120)
    assert sorted(got) == sorted(first + second)
    for b in live:
        assert b.metric("weir_inter_broker_authentication_failures_total") == 0


# ---- a client speaking as a replica ------------------------------------------------------

def _frame(api_key, version, corr, body):
    client_id = b"not-a-broker"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    msg = header + body
    return struct.pack(">i", len(msg)) + msg


def _read(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf
    (size,) = struct.unpack(">i", exact(4))
    return exact(size)[4:]  # drop the correlation id


def _string(s):
    s = s.encode()
    return struct.pack(">h", len(s)) + s


def replica_fetch_error(c, user, password, topic):
    """The error code a SASL_SSL client authenticated as `user` gets for a Fetch v4 that says it
    comes from replica 2 (what a follower sends)."""
    p = c.pki.path
    ctx = ssl.create_default_context(cafile=p("ca.crt"))
    ctx.load_cert_chain(p("client.crt"), p("client.key"))
    b = c.brokers[0]
    with socket.create_connection((b.host, b.port), timeout=20) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(_frame(17, 1, 1, _string("PLAIN")))  # SaslHandshake v1
        assert struct.unpack(">h", _read(s)[:2])[0] == 0
        token = f"\0{user}\0{password}".encode()
        s.sendall(_frame(36, 0, 2, struct.pack(">i", len(token)) + token))  # SaslAuthenticate v0
        assert struct.unpack(">h", _read(s)[:2])[0] == 0, "authentication failed"
        body = struct.pack(">iiiib", 2, 100, 1, 1 << 20, 0)  # replica_id=2, waits, isolation
        body += struct.pack(">i", 1) + _string(topic)
        body += struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20)
        s.sendall(_frame(1, 4, 3, body))  # Fetch v4
        resp = _read(s)
        # throttle_time_ms, [topic name, [partition index, error code, ...]]
        off = 4 + 4
        (name_len,) = struct.unpack(">h", resp[off:off + 2])
        off += 2 + name_len + 4 + 4
        return struct.unpack(">h", resp[off:off + 2])[0]


def test_client_without_cluster_action_cannot_fetch_as_a_replica(secure_cluster, unique):
    c = secure_cluster(size=3)
    admin = AdminClient(c.conf())
    wait_until("every broker registered",
               lambda: sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3])
    topic = unique("replica-fetch")
    create_replicated(admin, topic, 1)
    grant_alice(admin, topic)
    produce(c.conf("alice", ALICE_PASSWORD), topic, [b"secret"])
    # alice may READ the topic, but not speak as a broker: TOPIC_AUTHORIZATION_FAILED (29), as
    # Kafka answers a follower fetch without CLUSTER_ACTION, and no records.
    assert replica_fetch_error(c, "alice", ALICE_PASSWORD, topic) == 29
    # The brokers' own principal (a super user) is served; the answer may be NOT_LEADER (6)
    # when broker 1 does not lead the partition, but never an authorization error.
    assert replica_fetch_error(c, "broker", BROKER_PASSWORD, topic) in (0, 6, 74)


def test_broker_with_wrong_inter_broker_credentials_stays_out_of_the_isr(secure_cluster, unique):
    c = secure_cluster(size=3, wrong_password_nodes=(3,))
    admin = AdminClient(c.conf(brokers=c.brokers[:2]))
    wait_until("every broker registered",
               lambda: sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3])
    topic = unique("bad-creds")
    create_replicated(admin, topic, 3)
    grant_alice(admin, topic)
    # Brokers 1 and 2 replicate to each other; broker 3 cannot fetch from them.
    wait_until("partitions led by 1 or 2, in sync without 3",
               lambda: (ps := partitions(admin, topic)) and len(ps) == 3
               and all(p.leader in (1, 2) and sorted(p.isrs) == [1, 2] for p in ps.values()))
    produce(c.conf("alice", ALICE_PASSWORD, brokers=c.brokers[:2]), topic,
            [f"r{i}".encode() for i in range(30)])
    time.sleep(2)  # give broker 3 every chance to catch up; it must not
    ps = partitions(admin, topic)
    assert all(3 not in p.isrs for p in ps.values()), ps
    bad = c.brokers[2]
    assert bad.metric("weir_inter_broker_authentication_failures_total", stage="sasl") > 0
    assert "inter-broker connection refused" in bad.log()
    # The brokers it tries count the refusals; their own connections are fine.
    assert sum(g.metric("weir_authentications_total", result="failure") for g in c.brokers[:2]) > 0
    for good in c.brokers[:2]:
        assert good.metric("weir_inter_broker_authentication_failures_total") == 0


# ---- SCRAM credentials are the cluster's ------------------------------------------------------

def authenticates(c, broker, user, password):
    """Whether `user` can authenticate (SCRAM-SHA-256) on `broker` alone."""
    a = AdminClient({**c.conf(user, password, brokers=[broker]), "retries": 0})
    try:
        a.list_topics(timeout=5)
        return True
    except Exception:  # noqa: BLE001 - an authentication failure surfaces as a timeout or error
        return False


def test_scram_users_are_the_clusters_not_one_brokers(secure_cluster, unique):
    c = secure_cluster(size=3, bootstrap_users={2: [("erin", "erin-Secret-1")]})
    b1, b2, b3 = c.brokers
    admin1 = AdminClient(c.conf(brokers=[b1]))
    wait_until("every broker registered",
               lambda: sorted(admin1.list_topics(timeout=10).brokers) == [1, 2, 3])

    # A user created through broker 1 (AlterUserScramCredentials) authenticates on 2 and 3.
    user = unique("dave")
    admin1.alter_user_scram_credentials([
        UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                     b"dave-Secret-1"),
    ])[user].result(WAIT_S)
    for b in (b2, b3):
        wait_until(f"{user} authenticating on broker {b.node_id}",
                   lambda b=b: authenticates(c, b, user, "dave-Secret-1"))
        assert not authenticates(c, b, user, "wrong-password")
    admin3 = AdminClient(c.conf(brokers=[b3]))
    infos = admin3.describe_user_scram_credentials([user])[user].result(WAIT_S) \
        .scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_256, 4096)]

    # A bootstrap user written into broker 2's file only is moved into the cluster at start.
    for b in (b1, b3):
        wait_until(f"erin authenticating on broker {b.node_id}",
                   lambda b=b: authenticates(c, b, "erin", "erin-Secret-1"))

    # Deleted through broker 3: refused everywhere, including by the broker it was created on.
    admin3.alter_user_scram_credentials([
        UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256),
    ])[user].result(WAIT_S)
    for b in (b1, b2, b3):
        wait_until(f"{user} refused on broker {b.node_id}",
                   lambda b=b: not authenticates(c, b, user, "dave-Secret-1"))
    # ... and after a restart of broker 2, its moved bootstrap user is still the cluster's.
    admin1.alter_user_scram_credentials([
        UserScramCredentialDeletion("erin", ScramMechanism.SCRAM_SHA_256),
        UserScramCredentialDeletion("erin", ScramMechanism.SCRAM_SHA_512),
    ])["erin"].result(WAIT_S)
    b2.kill9()
    b2.start()
    wait_until("broker 2 back", lambda: authenticates(c, b2, "admin", ADMIN_PASSWORD))
    assert not authenticates(c, b2, "erin", "erin-Secret-1"), "a deleted bootstrap user came back"
