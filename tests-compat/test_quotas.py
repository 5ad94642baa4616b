"""Client quotas (docs/security.md#quotas): `weir quota set|list|remove` (AlterClientQuotas /
DescribeClientQuotas; neither confluent-kafka 2.x nor kafka-python 2.0 has an admin call for
them, the wire-level tests in broker/tests/security.rs cover the APIs themselves), and a
librdkafka producer over its client id's producer_byte_rate: its throughput is held to the
quota (a lower bound on the time taken, not a speed test) and it sees the throttle (throttle_cb
and the `throttle` statistics), while a producer with another client id is not throttled."""

import json
import subprocess
import time
import urllib.request
import uuid

import pytest

from conftest import EXTERNAL
from helpers import WAIT_S, create_topic, producer

pytestmark = pytest.mark.skipif(
    EXTERNAL is not None, reason="uses the weir CLI against the broker the suite starts"
)

RATE_BPS = 20_000
RECORD_BYTES = 1_000
RECORDS = 300
# The rate is measured over 11 windows of 1 s (at least 10 s), so about 11 s worth of quota can
# pass before the throttle bites; the rest is held to the quota.
CREDIT_S = 11


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def quota(broker, *args):
    out = subprocess.run(
        [broker.bin, "quota", *args, "--brokers", broker.bootstrap, "--output", "json"],
        capture_output=True, text=True, timeout=WAIT_S,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def listed(broker, client_id):
    return [e for e in quota(broker, "list", "--client-id", client_id)
            if e["entity"] == f"client-id={client_id}"]


def test_quota_cli_sets_lists_and_removes(broker):
    client_id = name("cli")
    quota(broker, "set", "--client-id", client_id, "producer_byte_rate=1024",
          "consumer_byte_rate=2048")
    assert listed(broker, client_id) == [{
        "entity": f"client-id={client_id}",
        "values": {"consumer_byte_rate": 2048.0, "producer_byte_rate": 1024.0},
    }]
    quota(broker, "remove", "--client-id", client_id, "consumer_byte_rate")
    assert listed(broker, client_id)[0]["values"] == {"producer_byte_rate": 1024.0}
    quota(broker, "remove", "--client-id", client_id)
    assert listed(broker, client_id) == []
    # Refused as Kafka refuses it: a byte rate is a whole number.
    out = subprocess.run(
        [broker.bin, "quota", "set", "--client-id", client_id, "producer_byte_rate=1.5",
         "--brokers", broker.bootstrap],
        capture_output=True, text=True, timeout=WAIT_S,
    )
    assert out.returncode != 0 and "INVALID_REQUEST" in out.stderr, out.stderr


def metrics(broker):
    url = f"http://127.0.0.1:{broker.admin_port}/metrics"
    with urllib.request.urlopen(url, timeout=WAIT_S) as r:
        return r.read().decode()


def sample(text, metric, **labels):
    """The sum of the series of `metric` carrying these labels (0 if none)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def produce_measured(broker, topic, client_id):
    """Produces RECORDS records of RECORD_BYTES as `client_id`; returns (seconds taken, throttle
    times seen by throttle_cb, the largest `throttle` max of the statistics)."""
    throttles = []
    stats_max = [0]

    def on_stats(raw):
        for b in json.loads(raw).get("brokers", {}).values():
            stats_max[0] = max(stats_max[0], b.get("throttle", {}).get("max", 0))

    p = producer(broker.bootstrap, **{
        "client.id": client_id,
        "linger.ms": 5,
        "batch.size": 16_384,
        "statistics.interval.ms": 200,
        "stats_cb": on_stats,
        "throttle_cb": lambda e: throttles.append(e.throttle_time),
    })
    value = b"x" * RECORD_BYTES
    errors = []
    started = time.monotonic()
    for _ in range(RECORDS):
        while True:
            try:
                p.produce(topic, value=value, on_delivery=lambda err, _m: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0
    taken = time.monotonic() - started
    # Let a last statistics report come in.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        p.poll(0.1)
    assert errors == []
    return taken, throttles, stats_max[0]


def test_a_producer_over_its_byte_rate_is_held_to_it_and_told_so(broker):
    topic = name("quota")
    create_topic(broker.bootstrap, topic)
    slow, free = name("slow"), name("free")
    quota(broker, "set", "--client-id", slow, f"producer_byte_rate={RATE_BPS}")
    try:
        taken, throttles, stats_max = produce_measured(broker, topic, slow)
        payload = RECORDS * RECORD_BYTES
        # What the quota allows at most: the credit of the first window, then the rate.
        floor_s = (payload - CREDIT_S * RATE_BPS) / RATE_BPS
        assert taken >= floor_s, f"{payload} bytes in {taken:.1f}s, quota allows {floor_s:.1f}s"
        assert throttles and max(throttles) > 0, throttles
        assert stats_max > 0

        _, throttles, stats_max = produce_measured(broker, topic, free)
        assert [t for t in throttles if t > 0] == []
        assert stats_max == 0

        # Per client on /metrics: the throttle given and the bytes counted.
        text = metrics(broker)
        assert sample(text, "weir_quota_throttle_time_ms_total", quota_type="produce",
                      client_id=slow) > 0
        assert sample(text, "weir_quota_throttle_time_ms_total", client_id=free) == 0
        assert sample(text, "weir_quota_bytes_total", quota_type="produce",
                      client_id=free) >= payload
    finally:
        quota(broker, "remove", "--client-id", slow)
