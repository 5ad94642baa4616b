"""confluent-kafka AdminClient: topics, configs, partitions; plus ListOffsets (by time and
earliest/latest) through the consumer API."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from helpers import (
    WAIT_S,
    admin_client,
    consume_n,
    consumer,
    create_topic,
    produce_and_flush,
    producer,
    topic_names,
    wait_for_topic,
)


def describe_topic_configs(admin, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    futures = admin.describe_configs([res], request_timeout=WAIT_S)
    (fut,) = futures.values()
    return fut.result(WAIT_S)


def test_create_topic_with_configs_and_list(broker, unique):
    topic = unique("admin-create")
    a = admin_client(broker.bootstrap)
    futures = a.create_topics(
        [
            NewTopic(
                topic,
                num_partitions=5,
                replication_factor=1,
                config={"retention.ms": "3600000", "cleanup.policy": "compact"},
            )
        ],
        operation_timeout=WAIT_S,
    )
    assert futures[topic].result(WAIT_S) is None
    md = wait_for_topic(a, topic, 5)
    t = md.topics[topic]
    assert sorted(t.partitions) == [0, 1, 2, 3, 4]
    brokers = md.brokers
    for part in t.partitions.values():
        assert part.leader in brokers
        assert part.replicas == [part.leader]
        assert part.isrs == [part.leader]

    configs = describe_topic_configs(a, topic)
    assert configs["retention.ms"].value == "3600000"
    assert configs["cleanup.policy"].value == "compact"
    assert not configs["retention.ms"].is_default

    # Creating it again fails with TOPIC_ALREADY_EXISTS and leaves it untouched.
    again = a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    with pytest.raises(KafkaException) as ei:
        again[topic].result(WAIT_S)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert len(a.list_topics(timeout=10).topics[topic].partitions) == 5


def test_metadata_advertises_listener(broker, unique):
    topic = unique("admin-md")
    a = create_topic(broker.bootstrap, topic, partitions=1)
    md = a.list_topics(timeout=10)
    host, port = broker.bootstrap.rsplit(":", 1)
    assert [(b.host, b.port) for b in md.brokers.values()] == [(host, int(port))]
    assert md.controller_id in md.brokers
    assert topic in md.topics


def test_describe_default_topic_configs(broker, unique):
    topic = unique("admin-defaults")
    a = create_topic(broker.bootstrap, topic, partitions=1)
    configs = describe_topic_configs(a, topic)
    assert configs["retention.ms"].value == "604800000"  # 7 days
    assert configs["cleanup.policy"].value == "delete"
    assert configs["retention.bytes"].value == "-1"
    assert configs["retention.ms"].is_default
    for name, entry in configs.items():
        assert entry.name == name


def test_incremental_alter_configs(broker, unique):
    topic = unique("admin-alter")
    a = create_topic(broker.bootstrap, topic, partitions=1, config={"cleanup.policy": "compact"})
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", "1000000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    for fut in a.incremental_alter_configs([res]).values():
        assert fut.result(WAIT_S) is None
    configs = describe_topic_configs(a, topic)
    assert configs["retention.ms"].value == "1000000"
    # Incremental: a config set earlier and not mentioned is kept.
    assert configs["cleanup.policy"].value == "compact"

    # DELETE reverts to the default.
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    for fut in a.incremental_alter_configs([res]).values():
        assert fut.result(WAIT_S) is None
    configs = describe_topic_configs(a, topic)
    assert configs["retention.ms"].value == "604800000"
    assert configs["cleanup.policy"].value == "compact"


def test_create_partitions(broker, unique):
    topic = unique("admin-grow")
    a = create_topic(broker.bootstrap, topic, partitions=3)
    futures = a.create_partitions([NewPartitions(topic, 6)], operation_timeout=WAIT_S)
    assert futures[topic].result(WAIT_S) is None
    wait_for_topic(a, topic, 6)
    # The new partitions are writable and readable.
    p = producer(broker.bootstrap)
    reports = produce_and_flush(p, topic, [{"partition": i, "value": f"p{i}".encode()} for i in range(6)])
    assert sorted((r[2], r[3]) for r in reports) == [(i, 0) for i in range(6)]
    c = consumer(broker.bootstrap)
    c.assign([TopicPartition(topic, 5, 0)])
    (m,) = consume_n(c, 1)
    assert (m.partition(), m.offset(), m.value()) == (5, 0, b"p5")
    c.close()
    # Shrinking is refused.
    futures = a.create_partitions([NewPartitions(topic, 2)])
    with pytest.raises(KafkaException):
        futures[topic].result(WAIT_S)
    # A replica assignment must name each new partition once, on live brokers, also when only
    # validating (Kafka's INVALID_REPLICA_ASSIGNMENT).
    node = broker.node_id
    for assignment in ([[node], [node]], [[node + 7]], [[node, node]]):
        for validate_only in (True, False):
            futures = a.create_partitions(
                [NewPartitions(topic, 7, replica_assignment=assignment)],
                validate_only=validate_only,
            )
            with pytest.raises(KafkaException) as ei:
                futures[topic].result(WAIT_S)
            assert ei.value.args[0].code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, assignment
    futures = a.create_partitions([NewPartitions(topic, 7, replica_assignment=[[node]])])
    assert futures[topic].result(WAIT_S) is None
    wait_for_topic(a, topic, 7)


def test_delete_topic(broker, unique):
    topic = unique("admin-delete")
    keep = unique("admin-keep")
    a = create_topic(broker.bootstrap, topic, partitions=2)
    create_topic(broker.bootstrap, keep, partitions=1)
    futures = a.delete_topics([topic], operation_timeout=WAIT_S)
    assert futures[topic].result(WAIT_S) is None
    deadline = time.monotonic() + WAIT_S
    while topic in topic_names(a) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = topic_names(a)
    assert topic not in names
    assert keep in names
    # Deleting it again is an UNKNOWN_TOPIC_OR_PART error.
    futures = a.delete_topics([topic])
    with pytest.raises(KafkaException) as ei:
        futures[topic].result(WAIT_S)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_list_offsets_by_time_and_watermarks(broker, unique):
    topic = unique("by-time")
    create_topic(broker.bootstrap, topic, partitions=1)
    base = 1_700_000_000_000
    ts = [base + i * 1000 for i in range(10)]  # one second apart
    p = producer(broker.bootstrap, acks="all")
    # Separate flushes so every record is its own batch.
    produce_and_flush(p, topic, [{"value": f"{i}".encode(), "timestamp": t} for i, t in enumerate(ts)],
                      flush_each=True)

    c = consumer(broker.bootstrap)
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    assert (low, high) == (0, 10)

    def offset_for(t):
        (tp,) = c.offsets_for_times([TopicPartition(topic, 0, t)], timeout=10)
        assert tp.error is None
        return tp.offset

    assert offset_for(ts[0] - 5000) == 0  # before everything: the first record
    assert offset_for(ts[0]) == 0
    assert offset_for(ts[3]) == 3  # exact timestamp: that record
    assert offset_for(ts[3] + 1) == 4  # in between: the next one
    assert offset_for(ts[9]) == 9
    assert offset_for(ts[9] + 1) == -1  # after the last: no offset (OFFSET_END)

    # Seeking to the found offset reads from there.
    c.assign([TopicPartition(topic, 0, offset_for(ts[6]))])
    msgs = consume_n(c, 4)
    assert [(m.offset(), m.value(), m.timestamp()[1]) for m in msgs] == [
        (i, f"{i}".encode(), ts[i]) for i in range(6, 10)
    ]
    c.close()


def test_watermarks_empty_and_after_produce(broker, unique):
    topic = unique("watermarks")
    create_topic(broker.bootstrap, topic, partitions=2)
    c = consumer(broker.bootstrap)
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 0)
    p = producer(broker.bootstrap)
    produce_and_flush(p, topic, [{"partition": 1, "value": b"x"} for _ in range(7)])
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 0)
    assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 7)
    c.close()
