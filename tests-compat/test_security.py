"""Listeners with security protocols, TLS, mTLS and SASL (docs/security.md) with real clients:
confluent-kafka (librdkafka 2.16) and Debian's kcat (librdkafka 2.0.2), over real TLS with
certificates made by openssl. Every negative path checks that the client is refused, that it
reads no record, and that the broker keeps serving. Also the admin HTTP API off loopback: refused
without TLS and a token, served over HTTPS with a bearer token (probes open)."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from conftest import EXTERNAL, WeirBroker, _LIVE_BROKERS, _close_broker, _free_port, _weir_bin
from helpers import wait_until
from security_pki import Pki, make_cert, SERVER_EXT

pytestmark = pytest.mark.skipif(
    EXTERNAL is not None or shutil.which("openssl") is None,
    reason="needs a broker the suite starts, and the openssl CLI (tests-compat/install.sh)",
)

PASSWORD = "alice-Secret-1"
MAPPING_RULES = "RULE:^CN=([^,]+),OU=clients,.*$/$1/L,DEFAULT"
WAIT_S = 30


class SecureBroker(WeirBroker):
    """A broker with a PLAINTEXT listener (for setup and readiness) plus SSL, SASL_PLAINTEXT and
    SASL_SSL listeners."""

    def __init__(self, name, pki, extra=(), client_auth="requested", cert_dir=None):
        super().__init__(name=name, extra_args=extra)
        self.pki = pki
        self.client_auth = client_auth
        self.cert_dir = cert_dir or pki.dir
        self.ports = {listener: _free_port() for listener in ("SSL", "SASL_PLAINTEXT", "SASL_SSL")}

    def addr(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"

    def command(self):
        listeners = ",".join(
            [f"PLAINTEXT://{self.bootstrap}"] + [f"{n}://{self.addr(n)}" for n in self.ports]
        )
        p = self.pki.path
        return [
            self.bin, "serve",
            "--listeners", listeners,
            "--data-dir", self.data_dir,
            "--admin-listener", f"{self.host}:{self.admin_port}",
            "--ssl-certificate-file", os.path.join(self.cert_dir, "server.crt"),
            "--ssl-key-file", os.path.join(self.cert_dir, "server.key"),
            "--ssl-client-ca-file", p("ca.crt"),
            "--ssl-client-auth", self.client_auth,
            "--ssl-principal-mapping-rules", MAPPING_RULES,
            "--sasl-enabled-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            "--oauthbearer-jwks-file", p("jwks.json"),
            "--oauthbearer-expected-audience", "weir",
            "--oauthbearer-expected-issuer", "https://idp.test",
            "--connection-failed-authentication-delay-ms", "50",
            *self.extra_args,
        ]

    def metrics(self):
        with urllib.request.urlopen(f"http://{self.host}:{self.admin_port}/metrics", timeout=10) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{"):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log(self):
        with open(self.log_path, "rb") as f:
            return re.sub(r"\x1b\[[0-9;]*m", "", f.read().decode("utf-8", "replace"))


def _start(name, pki, extra=(), client_auth="requested", cert_dir=None):
    b = SecureBroker(name, pki, extra, client_auth, cert_dir)
    _LIVE_BROKERS.append(b)
    try:
        b.start()
    except BaseException:
        b.close()
        _LIVE_BROKERS.remove(b)
        raise
    return b


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def sbroker(request, pki):
    b = _start("weir-security", pki)
    # alice gets SCRAM credentials through the CLI (over the PLAINTEXT listener).
    weir(b, "user", "create", "alice", "--password", PASSWORD)
    yield b
    _close_broker(b, request.session.testsfailed > 0)


def weir(b, *args, stdin=None):
    proc = subprocess.run([b.bin, "--brokers", b.bootstrap, *args], input=stdin,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, f"weir {' '.join(args)}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout.decode()


def plaintext_topic(b, name, values):
    """Creates `name` and writes `values` through the PLAINTEXT listener."""
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(name, 1, 1)])[name].result(WAIT_S)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for v in values:
        p.produce(name, v)
    assert p.flush(WAIT_S) == 0


# ---- client configurations -------------------------------------------------------------

def ssl_conf(b, cert=None):
    conf = {"bootstrap.servers": b.addr("SSL"), "security.protocol": "SSL",
            "ssl.ca.location": b.pki.path("ca.crt")}
    if cert:
        conf["ssl.certificate.location"] = b.pki.path(f"{cert}.crt")
        conf["ssl.key.location"] = b.pki.path(f"{cert}.key")
    return conf


def sasl_conf(b, mechanism, password=PASSWORD, user="alice", listener="SASL_PLAINTEXT"):
    conf = {"bootstrap.servers": b.addr(listener), "security.protocol": listener,
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    if listener == "SASL_SSL":
        conf["ssl.ca.location"] = b.pki.path("ca.crt")
    return conf


def oauth_conf(b, token_fn, listener="SASL_SSL"):
    def oauth_cb(_config):
        token = token_fn()
        return token, time.time() + 600

    conf = {"bootstrap.servers": b.addr(listener), "security.protocol": listener,
            "sasl.mechanism": "OAUTHBEARER", "oauth_cb": oauth_cb}
    if listener == "SASL_SSL":
        conf["ssl.ca.location"] = b.pki.path("ca.crt")
    return conf


# ---- what a client sees ----------------------------------------------------------------

def round_trip(conf, topic, n=20):
    """Produce n records and consume them back with `conf`; returns the values read."""
    p = Producer(dict(conf))
    for i in range(n):
        p.produce(topic, f"{topic}-{i}".encode())
    assert p.flush(WAIT_S) == 0, "records not delivered"
    return read_all(conf, topic, n)


def read_all(conf, topic, n, timeout=WAIT_S):
    c = Consumer({**conf, "group.id": f"g-{topic}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
        return got
    finally:
        c.close()


def refused(conf, topic, expect_codes):
    """A consumer with `conf` reports one of `expect_codes` and reads nothing from `topic`."""
    errors = []
    c = Consumer({**conf, "group.id": f"g-refused-{time.monotonic_ns()}",
                  "auto.offset.reset": "earliest", "error_cb": errors.append,
                  "reconnect.backoff.ms": 200})
    got = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = c.poll(0.3)
            if m is not None and m.error() is None:
                got.append(m.value())
            if any(e.code() in expect_codes for e in errors):
                break
    finally:
        c.close()
    assert got == [], "a refused client read records"
    codes = [e.code() for e in errors]
    assert any(code in expect_codes for code in codes), f"errors seen: {errors}"
    return errors


def test_tls_server_only_produce_consume(sbroker, unique):
    topic = unique("ssl")
    plaintext_topic(sbroker, topic, [])
    got = round_trip(ssl_conf(sbroker), topic)
    assert got == [f"{topic}-{i}".encode() for i in range(20)]


def test_mtls_principal_from_the_certificate_subject(sbroker, unique):
    topic = unique("mtls")
    plaintext_topic(sbroker, topic, [])
    got = round_trip(ssl_conf(sbroker, cert="client"), topic)
    assert len(got) == 20
    # The rule maps CN=alice,OU=clients,O=Acme to "alice" (lower-cased).
    assert "principal=User:alice" in sbroker.log()
    assert sbroker.metric("weir_authentications_total", listener="SSL", mechanism="SSL",
                          result="success") >= 1


def test_untrusted_client_certificate_is_refused(sbroker, unique):
    """A certificate from another CA fails the handshake even where certificates are only
    requested. (librdkafka does not even offer it: it sends a certificate only if its issuer is
    among the CAs the server names; Python's ssl offers it regardless.)"""
    before = sbroker.metric("weir_authentications_total", listener="SSL", result="failure")
    ctx = ssl.create_default_context(cafile=sbroker.pki.path("ca.crt"))
    ctx.load_cert_chain(sbroker.pki.path("rogue.crt"), sbroker.pki.path("rogue.key"))
    refused_tls = False
    try:
        with socket.create_connection(("127.0.0.1", sbroker.ports["SSL"])) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                # TLS 1.3 reports the client certificate's rejection on the first read.
                refused_tls = not _api_versions_answered(s)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        refused_tls = True
    assert refused_tls
    # Counted when the broker's side of the handshake ends, which may be after the client's.
    wait_until(
        "the refused handshake counted",
        lambda: sbroker.metric("weir_authentications_total", listener="SSL", result="failure") > before,
    )
    # The trusted certificate still works.
    ctx = ssl.create_default_context(cafile=sbroker.pki.path("ca.crt"))
    ctx.load_cert_chain(sbroker.pki.path("client.crt"), sbroker.pki.path("client.key"))
    with socket.create_connection(("127.0.0.1", sbroker.ports["SSL"])) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert _api_versions_answered(s)


def test_client_certificate_required(request, pki, unique):
    b = _start("weir-mtls-required", pki, client_auth="required")
    try:
        topic = unique("required")
        plaintext_topic(b, topic, [b"secret"])
        tls_refusals = {KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                        KafkaError._AUTHENTICATION}
        refused(ssl_conf(b), topic, tls_refusals)
        refused(ssl_conf(b, cert="rogue"), topic, tls_refusals)
        assert read_all(ssl_conf(b, cert="client"), topic, 1) == [b"secret"]
        if shutil.which("kcat"):
            p = pki.path
            tls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={p('ca.crt')}"]
            for extra in ([], ["-X", f"ssl.certificate.location={p('rogue.crt')}",
                               "-X", f"ssl.key.location={p('rogue.key')}"]):
                bad = kcat("-b", b.addr("SSL"), *tls, *extra, "-C", "-t", topic, "-e", "-o",
                           "beginning", "-q", ok=False)
                assert bad.returncode != 0 and b"secret" not in bad.stdout
            mtls = tls + ["-X", f"ssl.certificate.location={p('client.crt')}",
                          "-X", f"ssl.key.location={p('client.key')}"]
            out = kcat("-b", b.addr("SSL"), *mtls, "-C", "-t", topic, "-e", "-o", "beginning", "-q")
            assert out.splitlines() == ["secret"]
    finally:
        _close_broker(b, request.node.rep_call.failed if hasattr(request.node, "rep_call") else True)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_mechanisms(sbroker, unique, mechanism):
    topic = unique(mechanism.lower())
    plaintext_topic(sbroker, topic, [])
    got = round_trip(sasl_conf(sbroker, mechanism), topic)
    assert got == [f"{topic}-{i}".encode() for i in range(20)]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_is_refused(sbroker, unique, mechanism):
    topic = unique("wrongpw")
    plaintext_topic(sbroker, topic, [b"secret"])
    before = sbroker.metric("weir_authentications_total", mechanism=mechanism, result="failure")
    errors = refused(sasl_conf(sbroker, mechanism, password="not-it"), topic,
                     {KafkaError._AUTHENTICATION})
    assert any("Authentication failed" in e.str() for e in errors), errors
    assert sbroker.metric("weir_authentications_total", mechanism=mechanism,
                          result="failure") > before


def test_unknown_user_is_refused_like_a_wrong_password(sbroker, unique):
    topic = unique("nouser")
    plaintext_topic(sbroker, topic, [b"secret"])
    refused(sasl_conf(sbroker, "SCRAM-SHA-256", user="mallory"), topic, {KafkaError._AUTHENTICATION})


def test_scram_credentials_through_the_admin_api(sbroker, unique):
    a = AdminClient({"bootstrap.servers": sbroker.bootstrap})
    user = unique("bob")
    futures = a.alter_user_scram_credentials([
        UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                     b"bob-password"),
    ])
    futures[user].result(WAIT_S)
    described = a.describe_user_scram_credentials([user])[user].result(WAIT_S)
    infos = described.scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_512, 4096)]
    topic = unique("bob-topic")
    plaintext_topic(sbroker, topic, [])
    assert len(round_trip(sasl_conf(sbroker, "SCRAM-SHA-512", password="bob-password", user=user),
                          topic, 3)) == 3
    # Too few iterations is refused with UNACCEPTABLE_CREDENTIAL.
    bad = a.alter_user_scram_credentials([
        UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000),
                                     b"x"),
    ])
    with pytest.raises(KafkaException) as e:
        bad[user].result(WAIT_S)
    assert "iterations" in str(e.value).lower() or "UNACCEPTABLE" in str(e.value)
    # The CLI lists both users; the password never reaches the broker's disk.
    listing = weir(sbroker, "user", "list")
    assert re.search(r"^alice\s+SCRAM-SHA-256\(8192\), SCRAM-SHA-512\(8192\)$", listing, re.M), listing
    assert re.search(rf"^{user}\s+SCRAM-SHA-512\(4096\)$", listing, re.M), listing
    stored = open(os.path.join(sbroker.data_dir, "__weir_meta", "scram_credentials.json")).read()
    assert PASSWORD not in stored and "bob-password" not in stored
    weir(sbroker, "user", "delete", user)
    refused(sasl_conf(sbroker, "SCRAM-SHA-512", password="bob-password", user=user), topic,
            {KafkaError._AUTHENTICATION})


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_oauthbearer_over_sasl_ssl(sbroker, unique, alg):
    topic = unique(f"oauth-{alg.lower()}")
    plaintext_topic(sbroker, topic, [])
    conf = oauth_conf(sbroker, lambda: sbroker.pki.token(alg=alg))
    got = round_trip(conf, topic)
    assert got == [f"{topic}-{i}".encode() for i in range(20)]
    assert "principal=User:svc-analytics mechanism=OAUTHBEARER" in sbroker.log()


@pytest.mark.parametrize("case", ["expired", "bad_signature", "wrong_audience", "wrong_issuer",
                                  "unknown_kid", "not_a_jwt"])
def test_bad_tokens_are_refused(sbroker, unique, case):
    pki = sbroker.pki
    token = {
        "expired": lambda: pki.token(exp_in_s=-3600),
        "bad_signature": lambda: pki.token(alg="ES256", key="jwt-untrusted.key"),
        "wrong_audience": lambda: pki.token(aud="someone-else"),
        "wrong_issuer": lambda: pki.token(iss="https://evil.test"),
        "unknown_kid": lambda: pki.token(kid="nope"),
        "not_a_jwt": lambda: "definitely.not.ajwt",
    }[case]
    topic = unique("badtoken")
    plaintext_topic(sbroker, topic, [b"secret"])
    refused(oauth_conf(sbroker, token), topic, {KafkaError._AUTHENTICATION})


def test_plaintext_client_on_a_tls_port(sbroker, unique):
    topic = unique("plain2tls")
    plaintext_topic(sbroker, topic, [b"secret"])
    before = sbroker.metric("weir_unauthenticated_closes_total", listener="SSL", reason="tls_handshake")
    refused({"bootstrap.servers": sbroker.addr("SSL")}, topic,
            {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})
    assert sbroker.metric("weir_unauthenticated_closes_total", listener="SSL",
                          reason="tls_handshake") > before
    assert read_all(ssl_conf(sbroker), topic, 1) == [b"secret"]


def _closed(sock, timeout=10):
    """True if the peer closed the connection (reads EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_pre_auth_frame_over_512_kib_closes_the_connection(sbroker):
    before = sbroker.metric("weir_unauthenticated_closes_total", reason="frame_too_large")
    with socket.create_connection(("127.0.0.1", sbroker.ports["SASL_PLAINTEXT"])) as s:
        s.sendall(struct.pack(">i", 600 * 1024) + b"\0" * 1024)
        assert _closed(s)
    assert sbroker.metric("weir_unauthenticated_closes_total", reason="frame_too_large") > before
    # The same size is fine once authenticated? Not needed: a request this size before
    # authentication is what the limit is for. The broker still serves.
    assert "1 brokers" in kcat("-b", sbroker.addr("SASL_PLAINTEXT"), *kcat_sasl("SCRAM-SHA-256"), "-L")


def test_requests_before_authentication_close_the_connection(sbroker):
    # A Metadata v1 request (all topics) on the SASL listener, without authenticating first.
    client_id = b"raw"
    body = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id + struct.pack(">i", -1)
    with socket.create_connection(("127.0.0.1", sbroker.ports["SASL_PLAINTEXT"])) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        assert _closed(s)
    assert sbroker.metric("weir_unauthenticated_closes_total",
                          reason="request_before_authentication") >= 1


# ---- kcat (librdkafka 2.0.2) -------------------------------------------------------------

def kcat(*args, stdin=None, ok=True):
    proc = subprocess.run(["kcat", *args], input=stdin, capture_output=True, timeout=60)
    if ok:
        assert proc.returncode == 0, (f"kcat {' '.join(args)}: "
                                      f"{proc.stderr.decode(errors='replace')[-3000:]}")
    return proc.stdout.decode() if ok else proc


def kcat_sasl(mechanism, password=PASSWORD):
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanism={mechanism}",
            "-X", "sasl.username=alice", "-X", f"sasl.password={password}"]


needs_kcat = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")


@needs_kcat
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kcat_sasl(sbroker, unique, mechanism):
    topic = unique(f"kcat-{mechanism.lower()}")
    plaintext_topic(sbroker, topic, [])
    addr = sbroker.addr("SASL_PLAINTEXT")
    kcat("-b", addr, *kcat_sasl(mechanism), "-P", "-t", topic, stdin=b"one\ntwo\n")
    out = kcat("-b", addr, *kcat_sasl(mechanism), "-C", "-t", topic, "-e", "-o", "beginning", "-q")
    assert out.splitlines() == ["one", "two"]
    before = sbroker.metric("weir_authentications_total", mechanism=mechanism, result="failure")
    bad = kcat("-b", addr, *kcat_sasl(mechanism, password="wrong"), "-C", "-t", topic, "-e",
               "-o", "beginning", "-q", ok=False)
    assert bad.returncode != 0 and b"one" not in bad.stdout
    assert sbroker.metric("weir_authentications_total", mechanism=mechanism,
                          result="failure") > before


@needs_kcat
def test_kcat_ssl_and_mtls(sbroker, unique):
    topic = unique("kcat-ssl")
    plaintext_topic(sbroker, topic, [b"over tls"])
    p = sbroker.pki.path
    tls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={p('ca.crt')}"]
    out = kcat("-b", sbroker.addr("SSL"), *tls, "-C", "-t", topic, "-e", "-o", "beginning", "-q")
    assert out.splitlines() == ["over tls"]
    mtls = tls + ["-X", f"ssl.certificate.location={p('client.crt')}",
                  "-X", f"ssl.key.location={p('client.key')}"]
    out = kcat("-b", sbroker.addr("SSL"), *mtls, "-C", "-t", topic, "-e", "-o", "beginning", "-q")
    assert out.splitlines() == ["over tls"]
    plain = kcat("-b", sbroker.addr("SSL"), "-C", "-t", topic, "-e", "-o", "beginning", "-q",
                 ok=False)
    assert plain.returncode != 0 and b"over tls" not in plain.stdout


@needs_kcat
def test_kcat_unsecured_oauthbearer_token_is_refused(sbroker, unique):
    """librdkafka's built-in OAUTHBEARER token is unsigned (alg none): never accepted."""
    topic = unique("kcat-oauth")
    plaintext_topic(sbroker, topic, [b"secret"])
    bad = kcat("-b", sbroker.addr("SASL_SSL"), "-X", "security.protocol=SASL_SSL",
               "-X", f"ssl.ca.location={sbroker.pki.path('ca.crt')}",
               "-X", "sasl.mechanism=OAUTHBEARER",
               "-X", "sasl.oauthbearer.config=principal=admin scope=all",
               "-X", "enable.sasl.oauthbearer.unsecure.jwt=true",
               "-C", "-t", topic, "-e", "-o", "beginning", "-q", ok=False)
    assert bad.returncode != 0 and b"secret" not in bad.stdout
    assert "reason=malformed token" in sbroker.log() or "is not accepted" in sbroker.log()


# ---- re-authentication and certificate reload -----------------------------------------------

def test_reauthentication_keeps_a_long_lived_producer_going(request, pki, unique):
    b = _start("weir-reauth", pki, ["--connections-max-reauth-ms", "2000"])
    try:
        weir(b, "user", "create", "alice", "--password", PASSWORD, "--mechanism", "SCRAM-SHA-256")
        topic = unique("reauth")
        plaintext_topic(b, topic, [])
        p = Producer(sasl_conf(b, "SCRAM-SHA-256"))
        for i in range(12):
            p.produce(topic, f"r{i}".encode())
            p.poll(0)
            time.sleep(0.5)
        assert p.flush(WAIT_S) == 0
        # librdkafka re-authenticates before each 2 s session ends; no record is lost.
        assert read_all(sasl_conf(b, "SCRAM-SHA-256"), topic, 12) == [f"r{i}".encode() for i in range(12)]
        assert b.metric("weir_authentications_total", result="reauthentication") >= 1
    finally:
        _close_broker(b, True if not hasattr(request.node, "rep_call") else request.node.rep_call.failed)


def _server_cert_cn(b):
    ctx = ssl.create_default_context(cafile=b.pki.path("ca.crt"))
    with socket.create_connection(("127.0.0.1", b.ports["SSL"])) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def _tls_connection(b):
    ctx = ssl.create_default_context(cafile=b.pki.path("ca.crt"))
    raw = socket.create_connection(("127.0.0.1", b.ports["SSL"]))
    return ctx.wrap_socket(raw, server_hostname="localhost")


def _api_versions_answered(s):
    """Sends ApiVersions v0 and reads the whole response; True if it carries our correlation id."""
    body = struct.pack(">hhih", 18, 0, 42, 3) + b"raw"
    s.sendall(struct.pack(">i", len(body)) + body)
    s.settimeout(10)
    head = b""
    while len(head) < 8:
        chunk = s.recv(8 - len(head))
        if not chunk:
            return False
        head += chunk
    size, corr = struct.unpack(">ii", head)
    left = size - 4
    while left > 0:
        chunk = s.recv(min(left, 65536))
        if not chunk:
            return False
        left -= len(chunk)
    return corr == 42


def test_certificate_reload_on_sighup_keeps_connections(request, pki, unique, tmp_path):
    # The broker reads its certificate from its own copy, which the test then replaces.
    shutil.copy(pki.path("server.crt"), tmp_path / "server.crt")
    shutil.copy(pki.path("server.key"), tmp_path / "server.key")
    b = _start("weir-reload", pki, ["--security-reload-check-interval-ms", "0"],
               cert_dir=str(tmp_path))
    try:
        topic = unique("reload")
        plaintext_topic(b, topic, [])
        assert _server_cert_cn(b) == "localhost"
        held = _tls_connection(b)
        assert _api_versions_answered(held)
        p = Producer(ssl_conf(b))
        p.produce(topic, b"before")
        assert p.flush(WAIT_S) == 0
        make_cert(pki.dir, "server2", "ca", "/CN=localhost-renewed", SERVER_EXT)
        shutil.copy(pki.path("server2.crt"), tmp_path / "server.crt")
        shutil.copy(pki.path("server2.key"), tmp_path / "server.key")
        b.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT_S
        while _server_cert_cn(b) != "localhost-renewed" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _server_cert_cn(b) == "localhost-renewed"
        # Connections from before the reload still work.
        assert _api_versions_answered(held)
        held.close()
        p.produce(topic, b"after")
        assert p.flush(WAIT_S) == 0
        assert read_all(ssl_conf(b), topic, 2) == [b"before", b"after"]
        assert "reloaded TLS certificates" in b.log()
    finally:
        _close_broker(b, True if not hasattr(request.node, "rep_call") else request.node.rep_call.failed)


def _handshake(b, configure=lambda ctx: None):
    """TLS version and cipher suite of a handshake with `b`'s SSL listener (Python's OpenSSL
    client, which lists AES-256-GCM before AES-128-GCM)."""
    ctx = ssl.create_default_context(cafile=b.pki.path("ca.crt"))
    configure(ctx)
    with socket.create_connection(("127.0.0.1", b.ports["SSL"])) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version(), s.cipher()[0]


def test_tls_versions_and_cipher_suites(sbroker):
    """TLS 1.3 by default, TLS 1.2 with ECDHE and AEAD suites only: a client that offers only
    CBC suites without forward secrecy is refused. The broker's order decides the suite:
    AES-128-GCM although the client lists AES-256-GCM first."""
    def handshake(configure):
        return _handshake(sbroker, configure)

    version, cipher = handshake(lambda ctx: None)
    assert (version, cipher) == ("TLSv1.3", "TLS_AES_128_GCM_SHA256")

    def tls12(ctx):
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    version, cipher = handshake(tls12)
    assert version == "TLSv1.2" and cipher.startswith("ECDHE-") and cipher.endswith("AES128-GCM-SHA256"), cipher

    def cbc_only(ctx):
        tls12(ctx)
        ctx.set_ciphers("AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA")

    # The client offers them (OpenSSL allows them at this level); the broker's alert refuses.
    with pytest.raises(ssl.SSLError, match="(?i)alert handshake failure"):
        handshake(cbc_only)


def test_ssl_cipher_suites_restricts_and_orders_the_suites(request, pki, unique):
    b = _start(
        "weir-ciphers",
        pki,
        ["--ssl-cipher-suites", "TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
    )
    try:
        assert _handshake(b) == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")

        def tls12(ctx):
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2

        assert _handshake(b, tls12) == ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")

        def aes128_only(ctx):
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")

        with pytest.raises(ssl.SSLError, match="(?i)alert handshake failure"):
            _handshake(b, aes128_only)
        # Kafka clients work over the chosen suite.
        topic = unique("ciphers")
        plaintext_topic(b, topic, [b"over chacha20"])
        assert read_all(ssl_conf(b), topic, 1) == [b"over chacha20"]
    finally:
        _close_broker(b, True if not hasattr(request.node, "rep_call") else request.node.rep_call.failed)


def test_an_unknown_cipher_suite_stops_the_broker_at_start(tmp_path):
    proc = subprocess.run(
        [_weir_bin(), "serve", "--data-dir", str(tmp_path), "--listener", f"127.0.0.1:{_free_port()}",
         "--ssl-cipher-suites", "TLS_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_SHA"],
        capture_output=True, timeout=60,
    )
    assert proc.returncode != 0
    err = proc.stderr.decode(errors="replace")
    assert "ssl-cipher-suites" in err and "TLS_RSA_WITH_RC4_128_SHA" in err, err


# -- the admin HTTP API off loopback: TLS and a bearer token ---------------------------------

ADMIN_TOKEN = "weir-admin-token-0123456789abcdef"


class AdminBroker(WeirBroker):
    """A plain broker whose admin listener is bound to `admin_host`, with the test certificate."""

    def __init__(self, name, pki, admin_host, extra=()):
        super().__init__(name=name, extra_args=extra)
        self.pki = pki
        self.admin_host = admin_host
        self.token_file = os.path.join(self.workdir, "admin.token")
        with open(self.token_file, "w") as f:
            f.write(ADMIN_TOKEN + "\n")

    def command(self):
        return [
            self.bin, "serve",
            "--listener", self.bootstrap,
            "--data-dir", self.data_dir,
            "--admin-listener", f"{self.admin_host}:{self.admin_port}",
            "--ssl-certificate-file", self.pki.path("server.crt"),
            "--ssl-key-file", self.pki.path("server.key"),
            *self.extra_args,
        ]


def _admin_get(b, path, token=None, tls=True):
    """(status, headers, body) of GET `path` on b's admin listener, through 127.0.0.1."""
    scheme = "https" if tls else "http"
    req = urllib.request.Request(f"{scheme}://127.0.0.1:{b.admin_port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    ctx = ssl.create_default_context(cafile=b.pki.path("ca.crt")) if tls else None
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


@pytest.mark.parametrize("extra", [
    [],
    ["--admin-token-file", "TOKEN"],
    ["--admin-tls", "true"],
])
def test_admin_api_off_loopback_refuses_to_start_without_tls_and_a_token(pki, extra):
    b = AdminBroker("weir-admin-refused", pki, "0.0.0.0")
    args = [b.token_file if a == "TOKEN" else a for a in extra]
    try:
        proc = subprocess.run(b.command() + args, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode != 0
        assert "admin-insecure" in proc.stderr, proc.stderr
    finally:
        b.cleanup_files()


def test_admin_api_off_loopback_with_the_insecure_flag_starts_open(request, pki):
    b = AdminBroker("weir-admin-insecure", pki, "0.0.0.0", ["--admin-insecure", "true"])
    _LIVE_BROKERS.append(b)
    passed = False
    try:
        b.start()
        # /v1/config answers from the start (no data directory needed), here without a token.
        status, _, body = _admin_get(b, "/v1/config", tls=False)
        assert status == 200 and json.loads(body)["admin-insecure"] is True
        passed = True
    finally:
        _close_broker(b, not passed)


def test_admin_api_over_tls_with_a_bearer_token(request, pki):
    b = AdminBroker("weir-admin-tls", pki, "0.0.0.0")
    b.extra_args = ["--admin-tls", "true", "--admin-token-file", b.token_file]
    _LIVE_BROKERS.append(b)
    passed = False
    try:
        b.start()
        # Probes stay open.
        assert _admin_get(b, "/v1/health")[0] == 200
        deadline = time.monotonic() + WAIT_S
        while _admin_get(b, "/v1/ready")[0] != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        # Everything else needs the token.
        for path in ("/v1/topics", "/metrics", "/v1/config"):
            status, headers, _ = _admin_get(b, path)
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
            assert _admin_get(b, path, token="wrong-token-of-some-length")[0] == 401, path
            assert _admin_get(b, path, token=ADMIN_TOKEN)[0] == 200, path
        status, _, body = _admin_get(b, "/v1/config", token=ADMIN_TOKEN)
        assert json.loads(body)["admin-tls"] is True
        # Plain HTTP on the TLS port gets no answer.
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            _admin_get(b, "/v1/health", tls=False)
        passed = True
    finally:
        _close_broker(b, not passed)
