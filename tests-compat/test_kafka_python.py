"""kafka-python 2.0.2 (pure Python, old protocol versions): produce/consume with a group and
commits, KafkaAdminClient, raw Metadata v0-v3 requests, and raw requests at the versions Kafka 4.0
removed (KIP-896), encoded and decoded by kafka-python's own protocol classes."""

import threading
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import CommitFailedError, TopicAlreadyExistsError
from kafka.protocol.metadata import MetadataRequest

from helpers import create_topic, kafka_python_request

TIMEOUT_MS = 30000
# kafka-python's heartbeat thread competes with the test for the GIL and its client lock; on a
# loaded 2-core CI machine the 10 s default session timeout was seen to expire once.
GROUP_TIMEOUTS = {"session_timeout_ms": 30000, "heartbeat_interval_ms": 3000}


def poll_records(consumer, n, timeout_s=30):
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        for _tp, recs in consumer.poll(timeout_ms=500).items():
            out.extend(recs)
    assert len(out) == n, f"expected {n} records, got {len(out)}"
    return out


@pytest.mark.parametrize(
    "compression,api_version",
    [
        (None, None),  # auto-detected from the broker's ApiVersions response
        ("gzip", None),
        # Pinned to 0.11 (the first record-batch v2 release): Produce v3, Fetch v5, Metadata v1,
        # JoinGroup v1/v2-era requests, OffsetCommit v2/v3, ListOffsets v2.
        (None, (0, 11, 0)),
        # Pinned to 0.9 (versions Kafka 4.0 removed): JoinGroup v0, SyncGroup v0, Heartbeat v0,
        # Produce v1 and Fetch v1 in message format 0, OffsetCommit v2, OffsetFetch v1.
        (None, (0, 9)),
    ],
    ids=["auto", "auto-gzip", "pinned-0.11", "pinned-0.9"],
)
def test_round_trip_with_group_and_commit(broker, unique, compression, api_version):
    topic = unique("kp")
    group = unique("kp-g")
    create_topic(broker.bootstrap, topic, partitions=2)
    common = {"bootstrap_servers": broker.bootstrap}
    if api_version is not None:
        common["api_version"] = api_version

    producer = KafkaProducer(acks="all", compression_type=compression, **common)
    if api_version is None:
        assert isinstance(producer.config["api_version"], tuple)
        assert producer.config["api_version"] >= (0, 11, 0), producer.config["api_version"]
    metas = [
        producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2)
        for i in range(100)
    ]
    producer.flush(timeout=30)
    offsets = [(m.get(timeout=30).partition, m.get(timeout=30).offset) for m in metas]
    assert offsets == [(i % 2, i // 2) for i in range(100)]

    c = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                      **GROUP_TIMEOUTS, **common)
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
    c2 = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                       **GROUP_TIMEOUTS, **common)
    recs = poll_records(c2, 10)
    assert [(r.partition, r.offset, r.value) for r in recs] == [
        (0, 50 + j, f"v{100 + j}".encode()) for j in range(10)
    ]
    assert c2.poll(timeout_ms=1000) == {}
    c2.close()


def test_two_members_split_partitions(broker, unique):
    """kafka-python's own group protocol (JoinGroup/SyncGroup with its range assignor): two members
    split 4 partitions between them and together read every record once."""
    topic = unique("kp-2m")
    group = unique("kp-g")
    create_topic(broker.bootstrap, topic, partitions=4)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(80):
        producer.send(topic, value=f"{i}".encode(), partition=i % 4)
    producer.flush(timeout=30)
    producer.close()

    # kafka-python blocks inside poll() while its JoinGroup waits for the other members, so each
    # member runs in its own thread (as real applications do).
    stop = threading.Event()
    seen = {0: [], 1: []}
    assigned = {0: set(), 1: set()}
    errors = []
    uncommitted = set()

    def run(idx):
        try:
            m = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                              auto_offset_reset="earliest", enable_auto_commit=False, **GROUP_TIMEOUTS)
            try:
                while not stop.is_set():
                    got = m.poll(timeout_ms=200)
                    batch = [int(r.value) for recs in got.values() for r in recs]
                    seen[idx].extend(batch)
                    if batch:
                        try:
                            m.commit()
                        except CommitFailedError:
                            # Rejected because a rebalance completed meanwhile: these records
                            # may be read again by the partition's next owner.
                            uncommitted.update(batch)
                    assigned[idx] = {tp.partition for tp in m.assignment()}
            finally:
                m.close()
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not errors:
        a0, a1 = assigned[0], assigned[1]
        if a0 and a1 and not (a0 & a1) and sum(len(v) for v in seen.values()) >= 80:
            break
        time.sleep(0.1)
    time.sleep(1)  # anything read twice would show up now
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    a0, a1 = assigned[0], assigned[1]
    assert a0 and a1 and not (a0 & a1) and a0 | a1 == {0, 1, 2, 3}, (a0, a1)
    # The first member may have read (and committed) records before the second joined; with
    # a commit after every poll, only records whose commit failed may be read twice.
    both = seen[0] + seen[1]
    assert sorted(set(both)) == list(range(80))
    twice = {v for v in both if both.count(v) > 1}
    assert twice <= uncommitted, sorted(twice - uncommitted)


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


def raw_request(broker, request):
    """Sends `request` with kafka-python's low-level client, as it is; the response as a dict."""
    return kafka_python_request(broker.bootstrap, request, timeout=TIMEOUT_MS / 1000)


def test_offsets_committed_without_metadata_read_back_with_empty_metadata(broker, unique):
    """Kafka stores a commit's null metadata as "" (OffsetAndMetadata.NO_METADATA) and answers
    "" for partitions without a commit too; KafkaJS's own suite checks it."""
    from kafka.protocol.commit import OffsetCommitRequest, OffsetFetchRequest

    topic, group = unique("kp-meta"), unique("kp-meta-g")
    create_topic(broker.bootstrap, topic, partitions=3)
    # A commit outside any generation (-1), as admin tools and simple consumers send it.
    commit = raw_request(broker, OffsetCommitRequest[2](
        group, -1, "", -1, [(topic, [(0, 5, None), (1, 7, "kept")])]))
    assert [p["error_code"] for t in commit["topics"] for p in t["partitions"]] == [0, 0]
    fetched = raw_request(broker, OffsetFetchRequest[1](group, [(topic, [0, 1, 2])]))
    (t,) = fetched["topics"]
    got = {p["partition"]: (p["offset"], p["metadata"], p["error_code"]) for p in t["partitions"]}
    assert got == {0: (5, "", 0), 1: (7, "kept", 0), 2: (-1, "", 0)}


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_raw_metadata_versions(broker, unique, version):
    """Old Metadata request versions, as sent by old clients, describe the topic and broker."""
    topic = unique(f"kp-md{version}")
    create_topic(broker.bootstrap, topic, partitions=4)
    host, port = broker.bootstrap.rsplit(":", 1)

    resp = raw_request(broker, MetadataRequest[version](topics=[topic]))

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


def test_removed_versions_of_offset_apis(broker, unique):
    """OffsetCommit v0 (a commit outside any generation) and v1, read back with OffsetFetch v0 and
    v1: the versions Kafka 4.0 removed, which clients of the 0.8 protocol send."""
    from kafka.protocol.commit import OffsetCommitRequest, OffsetFetchRequest

    topic, group = unique("kp-v0"), unique("kp-v0-g")
    create_topic(broker.bootstrap, topic, partitions=3)
    commit = raw_request(broker, OffsetCommitRequest[0](group, [(topic, [(0, 5, "zero")])]))
    assert [p["error_code"] for t in commit["topics"] for p in t["partitions"]] == [0]
    commit = raw_request(broker, OffsetCommitRequest[1](
        group, -1, "", [(topic, [(1, 7, int(time.time() * 1000), "one")])]))
    assert [p["error_code"] for t in commit["topics"] for p in t["partitions"]] == [0]
    for version in (0, 1):
        fetched = raw_request(broker, OffsetFetchRequest[version](group, [(topic, [0, 1, 2])]))
        (t,) = fetched["topics"]
        got = {p["partition"]: (p["offset"], p["metadata"], p["error_code"]) for p in t["partitions"]}
        assert got == {0: (5, "zero", 0), 1: (7, "one", 0), 2: (-1, "", 0)}, f"v{version}"
    # The same commits, for a client of today.
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
    assert c.committed(TopicPartition(topic, 1)) == 7
    c.close()


def test_removed_versions_of_admin_apis(broker, unique):
    """CreateTopics v0, DescribeConfigs v0 (`is_default` instead of a config source) and
    DeleteTopics v0, as sarama and kafka-go before 2019 send them."""
    from kafka.protocol.admin import CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest

    topic = unique("kp-admin-v0")
    request = CreateTopicsRequest[0]([(topic, 2, 1, [], [("retention.ms", "3600000")])], 30000)
    created = raw_request(broker, request)
    assert [(t["topic"], t["error_code"]) for t in created["topic_errors"]] == [(topic, 0)]
    again = raw_request(broker, request)
    assert [t["error_code"] for t in again["topic_errors"]] == [36]  # TOPIC_ALREADY_EXISTS

    described = raw_request(broker, DescribeConfigsRequest[0](
        [(2, topic, ["retention.ms", "cleanup.policy"])]))
    (resource,) = described["resources"]
    assert resource["error_code"] == 0
    configs = {c["config_names"]: (c["config_value"], c["is_default"]) for c in resource["config_entries"]}
    assert configs == {"retention.ms": ("3600000", False), "cleanup.policy": ("delete", True)}

    deleted = raw_request(broker, DeleteTopicsRequest[0]([topic], 30000))
    assert [(t["topic"], t["error_code"]) for t in deleted["topic_error_codes"]] == [(topic, 0)]
