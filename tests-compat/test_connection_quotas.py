"""Connection limits and quotas (docs/security.md#connection-limits), over real sockets:
max-connections (a new connection waits for a free slot), max-connections-per-ip with an
override for one address, the `ip` entity's
connection_creation_rate set with AlterClientQuotas (`weir quota set --ip`: neither
confluent-kafka 2.x nor kafka-python 2.0 has an admin call for client quotas), the counters on
/metrics, and in a 2-broker cluster a quota altered through one broker applied by the other.
Outcomes are counted (connections answered or closed, metric values), never timed."""

import json
import socket
import struct
import subprocess
import urllib.request
import uuid

import pytest
from confluent_kafka.admin import NewTopic

from conftest import EXTERNAL
from helpers import WAIT_S, admin_client, producer, wait_until

pytestmark = pytest.mark.skipif(
    EXTERNAL is not None, reason="starts its own brokers and reads their metrics"
)


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api_versions_answered(host, port):
    """Opens a connection and sends ApiVersions v0; returns (socket, answered). The socket is
    left open so that it keeps counting against the per-IP limit."""
    s = socket.create_connection((host, port), timeout=WAIT_S)
    client_id = b"conn-quota-test"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        s.sendall(struct.pack(">i", len(body)) + body)
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            if not chunk:
                return s, False
            head += chunk
        return s, True
    except (ConnectionResetError, BrokenPipeError):
        return s, False


def metrics(b):
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/metrics", timeout=WAIT_S) as r:
        return r.read().decode()


def sample(text, metric, **labels):
    """The value of the one series of `metric` with these labels (others may exist), or 0."""
    total = 0.0
    for line in text.splitlines():
        if not (line.startswith(metric + "{") or line.startswith(metric + " ")):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def quota(b, *args):
    out = subprocess.run(
        [b.bin, "quota", *args, "--brokers", b.bootstrap, "--output", "json"],
        capture_output=True, text=True, timeout=WAIT_S,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def no_connections(b):
    return sample(metrics(b), "weir_connections_active") == 0


def start_probe_gone(b):
    """The broker factory's start-up probe (a bare TCP connect, closed at once) has been
    accepted and has ended. Until it is accepted it waits in the listen backlog, counted
    nowhere, and would take a slot from the connections a test opens next."""
    text = metrics(b)
    return (
        sample(text, "weir_connections_accepted_total") >= 1
        and sample(text, "weir_connections_active") == 0
    )


def test_per_ip_connection_limit_with_an_override(broker_factory):
    # One connection per IP, but three for 127.0.0.1 (the override names the address the
    # test connects from).
    b = broker_factory(
        "--max-connections-per-ip", "1",
        "--max-connections-per-ip-overrides", "127.0.0.1:3,192.0.2.1:50",
    )
    # The start-up probe's connection is gone before counting.
    wait_until("the start-up probe accepted and closed", lambda: start_probe_gone(b))
    opened = [api_versions_answered(b.host, b.port) for _ in range(4)]
    try:
        assert [answered for _, answered in opened] == [True, True, True, False]
        text = metrics(b)
        assert sample(text, "weir_connections_rejected_total", reason="max_connections_per_ip") == 1
    finally:
        for s, _ in opened:
            s.close()
    # Closed connections give their places back.
    wait_until("no open connections", lambda: no_connections(b))
    s, answered = api_versions_answered(b.host, b.port)
    s.close()
    assert answered


def test_at_max_connections_a_new_connection_waits_for_a_free_slot(broker_factory):
    # Kafka's max.connections: the broker stops accepting at the limit, so a new connection
    # waits in the kernel's backlog (it is neither answered nor closed) until one closes.
    b = broker_factory("--max-connections", "2")
    wait_until("the start-up probe accepted and closed", lambda: start_probe_gone(b))
    opened = [api_versions_answered(b.host, b.port) for _ in range(2)]
    waiting = socket.create_connection((b.host, b.port), timeout=WAIT_S)
    try:
        assert [answered for _, answered in opened] == [True, True]
        client_id = b"waiting"
        body = struct.pack(">hhih", 18, 0, 9, len(client_id)) + client_id
        waiting.sendall(struct.pack(">i", len(body)) + body)
        waiting.settimeout(1.0)
        with pytest.raises(socket.timeout):
            waiting.recv(4)
        opened[0][0].close()
        waiting.settimeout(WAIT_S)
        head = waiting.recv(4)
        assert len(head) == 4, head
        assert sample(metrics(b), "weir_connections_rejected_total", reason="max_connections") == 0
    finally:
        waiting.close()
        for s, _ in opened:
            s.close()


def test_ip_connection_creation_rate_set_by_alter_client_quotas(broker_factory):
    b = broker_factory()
    quota(b, "set", "--ip", "127.0.0.1", "connection_creation_rate=1")
    quota(b, "set", "--ip-default", "connection_creation_rate=1000")
    listed = {e["entity"]: e["values"] for e in quota(b, "list", "--ip", "127.0.0.1")}
    assert listed == {"ip=127.0.0.1": {"connection_creation_rate": 1.0}}
    # 1 connection/s measured over at least 10 s: about ten connections fit (the `list` above
    # was one), the next ones are held, then closed unanswered.
    outcomes = []
    for _ in range(12):
        s, answered = api_versions_answered(b.host, b.port)
        s.close()
        outcomes.append(answered)
    refused = outcomes.count(False)
    assert refused >= 1, outcomes
    assert outcomes[0] is True
    # Refused connections are not counted, so once refused, the rest are refused too.
    first_refused = outcomes.index(False)
    assert outcomes[first_refused:] == [False] * (12 - first_refused), outcomes
    text = metrics(b)
    assert sample(text, "weir_connections_rejected_total", reason="connection_creation_rate") == refused
    assert sample(text, "weir_connection_accept_throttle_time_ms_total", scope="ip") > 0


def test_broker_wide_connection_creation_rate_delays_but_accepts(broker_factory):
    b = broker_factory("--max-connection-creation-rate", "1")
    outcomes = []
    for _ in range(12):
        s, answered = api_versions_answered(b.host, b.port)
        s.close()
        outcomes.append(answered)
    # Kafka's broker-wide rate delays accepting; it closes nothing.
    assert outcomes == [True] * 12
    text = metrics(b)
    assert sample(text, "weir_connection_accept_throttle_time_ms_total", scope="broker") > 0
    assert sample(text, "weir_connections_rejected_total") == 0


def test_quota_altered_through_one_broker_applies_on_the_other(cluster_factory):
    c = cluster_factory(size=2)
    c.wait_formed()
    b1, b2 = c.broker(1), c.broker(2)
    topic, client_id = name("cq"), name("slow")
    admin = admin_client(c.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(WAIT_S)

    def partition_led_by_2():
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None:
            return None
        led = [p.id for p in md.partitions.values() if p.leader == 2]
        return led or None

    partition = wait_until("a partition led by broker 2", partition_led_by_2)[0]

    # Set through broker 1 after both brokers started: broker 2 sees it through etcd.
    quota(b1, "set", "--client-id", client_id, "producer_byte_rate=2000")
    wait_until(
        "broker 2 describes the quota",
        lambda: quota(b2, "list", "--client-id", client_id)
        == [{"entity": f"client-id={client_id}", "values": {"producer_byte_rate": 2000.0}}],
    )
    throttles = []
    p = producer(c.bootstrap, **{
        "client.id": client_id,
        "linger.ms": 5,
        "throttle_cb": lambda e: throttles.append(e.throttle_time),
    })
    # 60 KB against 2 000 B/s over at least 10 s: over the quota.
    for _ in range(60):
        p.produce(topic, value=b"x" * 1000, partition=partition)
        p.poll(0)
    assert p.flush(120) == 0
    assert throttles and max(throttles) > 0, throttles
    on_b2 = sample(metrics(b2), "weir_quota_throttle_time_ms_total",
                   quota_type="produce", client_id=client_id)
    assert on_b2 > 0
    assert sample(metrics(b2), "weir_quota_bytes_total",
                  quota_type="produce", client_id=client_id) >= 60_000

    # Removed through broker 2: broker 1 no longer lists it.
    quota(b2, "remove", "--client-id", client_id)
    wait_until("broker 1 forgets the quota",
               lambda: quota(b1, "list", "--client-id", client_id) == [])
