"""Record-level validation and the old message formats, with real clients.

- A compacted topic refuses records without a key: INVALID_RECORD, as Kafka's log validator
  answers (also inside compressed batches, which the broker decompresses to check).
- Clients of the 0.9/0.10 protocol produce message sets of magic 0/1 (Produce v0-2) and fetch with
  Fetch v0-3: librdkafka with api.version.request=false and broker.version.fallback (confluent-kafka
  and kcat), kafka-python pinned to api_version (0, 9) / (0, 10). Weir up-converts what they write
  to v2 batches and down-converts what they read, as Kafka 3.x did.
"""

import shutil
import subprocess
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    KafkaError,
    TopicPartition,
)
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.error import KafkaException
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from conftest import _close_broker, _new_broker
from helpers import (
    Deliveries,
    WAIT_S,
    admin_client,
    consume_n,
    consumer,
    create_topic,
    produce_and_flush,
    producer,
)

CODECS = ["none", "gzip", "snappy", "lz4"]


@pytest.fixture(scope="module")
def broker(request):
    """This module's own broker: its tests create a few dozen topics, and a clean shutdown
    fsyncs every log, which would stretch the shared broker's shutdown on a loaded machine."""
    b = _new_broker("weir-legacy", [])
    yield b
    _close_broker(b, request.session.testsfailed > 0)


def legacy_conf(fallback):
    """librdkafka speaking the protocol of an old broker: no ApiVersions request, a fixed
    feature set. With 0.9.0 that is Produce v0-1 (message format 0), Fetch v0-1, ListOffsets v0."""
    return {"api.version.request": False, "broker.version.fallback": fallback}


@pytest.mark.parametrize("codec", CODECS + ["zstd"])
def test_compacted_topic_refuses_records_without_a_key(broker, unique, codec):
    topic = unique(f"compact-{codec}")
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact"})
    p = producer(broker.bootstrap, **{"compression.type": codec, "linger.ms": 0})

    d = Deliveries()
    for i in range(3):
        p.produce(topic, value=b"no key %d" % i, on_delivery=d)
    assert p.flush(WAIT_S) == 0
    assert len(d.reports) == 3
    assert {r[0].code() for r in d.errors} == {KafkaError.INVALID_RECORD}, d.reports

    # Records with keys (tombstones included) are taken, from offset 0: nothing was appended before.
    reports = produce_and_flush(
        p, topic, [{"key": b"k1", "value": b"v1"}, {"key": b"k2", "value": None}]
    )
    assert [r[3] for r in reports] == [0, 1]

    c = consumer(broker.bootstrap)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = consume_n(c, 2)
    assert [(m.offset(), m.key(), m.value()) for m in got] == [(0, b"k1", b"v1"), (1, b"k2", None)]


def test_compacted_topic_refuses_keyless_records_from_an_old_producer(broker, unique):
    topic = unique("compact-old")
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact"})
    p = producer(broker.bootstrap, **legacy_conf("0.9.0.1"))
    d = Deliveries()
    p.produce(topic, value=b"no key", on_delivery=d)
    assert p.flush(WAIT_S) == 0
    assert [r[0].code() for r in d.errors] == [KafkaError.INVALID_RECORD], d.reports


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("fallback", ["0.9.0.1", "0.10.2"])
def test_librdkafka_legacy_protocol_round_trip(broker, unique, fallback, codec):
    """0.9.0.1: message format 0 both ways. 0.10.2 is what operators set for 0.10 brokers, but
    librdkafka maps every fallback >= 0.10 to "ask ApiVersions" (it sends the request anyway) and
    then speaks the modern protocol: kept as a check that such configs work, not of old formats."""
    topic = unique(f"legacy-{codec}")
    create_topic(broker.bootstrap, topic)
    p = producer(broker.bootstrap, **{"compression.type": codec, **legacy_conf(fallback)})
    records = [{"key": b"key-%d" % i, "value": b"value %d " % i * (i + 1)} for i in range(30)]
    records.append({"key": None, "value": b"keyless"})
    records.append({"key": b"tombstone", "value": None})
    reports = produce_and_flush(p, topic, records)
    assert [r[3] for r in reports] == list(range(len(records)))

    # An old consumer (ListOffsets v0 for the beginning, Fetch v0-1 with message format 0).
    c = consumer(broker.bootstrap, **legacy_conf(fallback))
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = consume_n(c, len(records))
    assert [(m.offset(), m.key(), m.value()) for m in got] == [
        (i, r["key"], r["value"]) for i, r in enumerate(records)
    ]

    # A modern consumer reads the up-converted batches; magic 0 has no timestamps (-1).
    c = consumer(broker.bootstrap)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = consume_n(c, len(records))
    assert [(m.key(), m.value()) for m in got] == [(r["key"], r["value"]) for r in records]
    if fallback.startswith("0.9"):
        assert {m.timestamp() for m in got} == {(TIMESTAMP_CREATE_TIME, -1)}


@pytest.mark.parametrize("codec", CODECS)
def test_old_consumer_reads_batches_of_a_modern_producer(broker, unique, codec):
    """Down-conversion of v2 batches (compressed or not) to message format 0: keys, values and
    offsets kept, headers dropped (the format has none), a fetch from the middle of the log."""
    topic = unique(f"down-{codec}")
    create_topic(broker.bootstrap, topic)
    p = producer(broker.bootstrap, **{"compression.type": codec, "linger.ms": 50})
    records = [
        {"key": b"k%d" % i, "value": b"v%d" % i, "headers": [("h", b"x")], "timestamp": 1_600_000_000_000 + i}
        for i in range(40)
    ]
    produce_and_flush(p, topic, records)

    c = consumer(broker.bootstrap, **legacy_conf("0.9.0.1"))
    c.assign([TopicPartition(topic, 0, 25)])
    got = consume_n(c, 15)
    assert [(m.offset(), m.key(), m.value()) for m in got] == [
        (i, b"k%d" % i, b"v%d" % i) for i in range(25, 40)
    ]
    assert all(m.headers() is None for m in got)
    assert {m.timestamp()[0] for m in got} == {TIMESTAMP_NOT_AVAILABLE}


@pytest.mark.parametrize("compression", [None, "gzip"])
@pytest.mark.parametrize("api_version", [(0, 9), (0, 10)], ids=["0.9", "0.10"])
def test_kafka_python_pinned_to_an_old_protocol(broker, unique, api_version, compression):
    """kafka-python at (0, 9): Produce v1 with message format 0, Fetch v1; at (0, 10): Produce v2
    with message format 1 (timestamps), Fetch v2."""
    topic = unique("kp-old")
    create_topic(broker.bootstrap, topic)
    with_ts = api_version >= (0, 10)
    prod = KafkaProducer(
        bootstrap_servers=broker.bootstrap, api_version=api_version, compression_type=compression
    )
    try:
        futures = [
            prod.send(
                topic,
                key=b"k%d" % i,
                value=b"v%d" % i,
                partition=0,
                timestamp_ms=1_600_000_000_000 + i if with_ts else None,
            )
            for i in range(10)
        ]
        prod.flush(timeout=WAIT_S)
        assert [f.get(timeout=WAIT_S).offset for f in futures] == list(range(10))
    finally:
        prod.close(timeout=10)

    cons = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        api_version=api_version,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=10000,
    )
    try:
        tp = KpTopicPartition(topic, 0)
        cons.assign([tp])
        cons.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + WAIT_S
        while len(got) < 10 and time.monotonic() < deadline:
            for recs in cons.poll(timeout_ms=500).values():
                got.extend(recs)
    finally:
        cons.close()
    assert [(m.offset, m.key, m.value) for m in got] == [(i, b"k%d" % i, b"v%d" % i) for i in range(10)]
    if with_ts:
        assert [m.timestamp for m in got] == [1_600_000_000_000 + i for i in range(10)]
        assert {m.timestamp_type for m in got} == {0}  # CreateTime
    else:
        assert {m.timestamp for m in got} == {None}

    # What a modern client sees: timestamps kept (message format 1) or -1 (format 0).
    c = consumer(broker.bootstrap)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    modern = consume_n(c, 10)
    want = [1_600_000_000_000 + i if with_ts else -1 for i in range(10)]
    assert [m.timestamp()[1] for m in modern] == want


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (run tests-compat/install.sh)")
@pytest.mark.parametrize("codec", CODECS)
def test_kcat_with_the_0_9_protocol(broker, unique, codec):
    topic = unique(f"kcat-old-{codec}")
    create_topic(broker.bootstrap, topic)
    old = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0.1"]

    def kcat(*args, stdin=None):
        proc = subprocess.run(["kcat", "-b", broker.bootstrap, *old, *args], input=stdin,
                              capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
        return proc.stdout.decode()

    lines = [f"key{i}:value {i}" for i in range(20)]
    kcat("-P", "-t", topic, "-K", ":", "-z", codec, stdin=("\n".join(lines) + "\n").encode())
    out = kcat("-C", "-t", topic, "-e", "-o", "beginning", "-q", "-f", "%o %k %s\n")
    assert out.splitlines() == [f"{i} key{i} value {i}" for i in range(20)]


def test_deprecated_message_format_version_is_accepted_and_ignored(broker, unique):
    """Kafka 3.x keeps `message.format.version` (ignored since IBP 3.0); configs written for older
    brokers must not fail. `message.downconversion.enable` is a known topic config too."""
    topic = unique("mfv")
    create_topic(
        broker.bootstrap,
        topic,
        config={"message.format.version": "0.10.2", "message.downconversion.enable": "true"},
    )
    a = admin_client(broker.bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = a.describe_configs([res])[res].result(WAIT_S)
    assert entries["message.format.version"].value == "0.10.2"
    assert entries["message.downconversion.enable"].value == "true"

    # Records still go in as v2 batches and come back to a modern consumer.
    p = producer(broker.bootstrap)
    produce_and_flush(p, topic, [{"key": b"k", "value": b"v", "headers": [("h", b"1")]}])
    c = consumer(broker.bootstrap)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    (m,) = consume_n(c, 1)
    assert (m.key(), m.value(), m.headers()) == (b"k", b"v", [("h", b"1")])

    bad = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("message.format.version", "banana", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    with pytest.raises(KafkaException) as e:
        a.incremental_alter_configs([bad])[bad].result(WAIT_S)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
