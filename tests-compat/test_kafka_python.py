"""kafka-python 2.0.2 (pure Python, old protocol versions): produce/consume with a group and
commits, KafkaAdminClient, and raw Metadata v0-v3 requests."""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.client_async import KafkaClient
from kafka.errors import TopicAlreadyExistsError
from kafka.protocol.metadata import MetadataRequest

from helpers import create_topic

TIMEOUT_MS = 30000


def poll_records(consumer, n, timeout_s=30):
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        for _tp, recs in consumer.poll(timeout_ms=500).items():
            out.extend(recs)
    assert len(out) == n, f"expected {n} records, got {len(out)}"
    return out


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_round_trip_with_group_and_commit(broker, unique, compression):
    topic = unique("kp")
    group = unique("kp-g")
    create_topic(broker.bootstrap, topic, partitions=2)

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type=compression)
    # api_version was auto-detected from the broker's ApiVersions response.
    assert isinstance(producer.config["api_version"], tuple)
    assert producer.config["api_version"] >= (0, 10, 0), producer.config["api_version"]
    metas = [
        producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2)
        for i in range(100)
    ]
    producer.flush(timeout=30)
    offsets = [(m.get(timeout=30).partition, m.get(timeout=30).offset) for m in metas]
    assert offsets == [(i % 2, i // 2) for i in range(100)]

    c = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    recs = poll_records(c, 100)
    for part in (0, 1):
        got = [(r.offset, r.key, r.value) for r in recs if r.partition == part]
        assert got == [(i // 2, f"k{i}".encode(), f"v{i}".encode()) for i in range(part, 100, 2)]
    c.commit()
    assert c.committed(TopicPartition(topic, 0)) == 50
    assert c.committed(TopicPartition(topic, 1)) == 50
    c.close()

    # More records; a new member of the same group gets only those.
    for i in range(100, 110):
        producer.send(topic, value=f"v{i}".encode(), partition=0)
    producer.flush(timeout=30)
    producer.close()
    c2 = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    recs = poll_records(c2, 10)
    assert [(r.partition, r.offset, r.value) for r in recs] == [
        (0, 50 + j, f"v{100 + j}".encode()) for j in range(10)
    ]
    assert c2.poll(timeout_ms=1000) == {}
    c2.close()


def test_group_less_assign(broker, unique):
    """group_id=None: no group coordinator involved at all, just assign + seek."""
    topic = unique("kp-assign")
    create_topic(broker.bootstrap, topic, partitions=1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(20):
        producer.send(topic, value=f"{i}".encode())
    producer.flush(timeout=30)
    producer.close()

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    assert [r.value for r in poll_records(c, 20)] == [f"{i}".encode() for i in range(20)]
    c.seek(tp, 12)
    assert [r.offset for r in poll_records(c, 8)] == list(range(12, 20))
    assert c.end_offsets([tp]) == {tp: 20}
    assert c.beginning_offsets([tp]) == {tp: 0}
    c.close()


def test_admin_create_list_delete(broker, unique):
    topic = unique("kp-admin")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)], timeout_ms=TIMEOUT_MS)
    assert topic in admin.list_topics()
    (desc,) = admin.describe_topics([topic])
    assert desc["topic"] == topic
    assert sorted(p["partition"] for p in desc["partitions"]) == [0, 1, 2]

    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)], timeout_ms=TIMEOUT_MS)

    admin.delete_topics([topic], timeout_ms=TIMEOUT_MS)
    deadline = time.monotonic() + 30
    while topic in admin.list_topics() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert topic not in admin.list_topics()
    admin.close()


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_raw_metadata_versions(broker, unique, version):
    """Old Metadata request versions, as sent by old clients, describe the topic and broker."""
    topic = unique(f"kp-md{version}")
    create_topic(broker.bootstrap, topic, partitions=4)
    host, port = broker.bootstrap.rsplit(":", 1)

    client = KafkaClient(bootstrap_servers=broker.bootstrap)
    try:
        deadline = time.monotonic() + 30
        node = None
        while time.monotonic() < deadline:
            node = client.least_loaded_node()
            if node is not None and client.ready(node):
                break
            client.poll(timeout_ms=200)
        assert node is not None and client.ready(node), "could not connect"

        fut = client.send(node, MetadataRequest[version](topics=[topic]))
        client.poll(timeout_ms=TIMEOUT_MS, future=fut)
        assert fut.succeeded(), fut.exception
        resp = fut.value.to_object()
    finally:
        client.close()

    (b,) = resp["brokers"]
    assert (b["host"], b["port"]) == (host, int(port))
    node_id = b["node_id"]
    if broker.node_id is not None:
        assert node_id == broker.node_id
    (t,) = resp["topics"]
    assert (t["error_code"], t["topic"]) == (0, topic)
    parts = sorted(t["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2, 3]
    for p in parts:
        assert p["error_code"] == 0
        assert p["leader"] == node_id
        assert p["replicas"] == [node_id]
        assert p["isr"] == [node_id]
    if version >= 1:
        assert resp["controller_id"] == node_id
        assert t["is_internal"] is False
