"""confluent-kafka against Kafka behaviours of issue 14: a fetch response never exceeds
fetch.max.bytes by more than its first batch (KIP-74); ListOffsets MAX_TIMESTAMP names the
record with the largest timestamp (KAFKA-16310); without an authorizer, describe_topics,
describe_cluster and describe_consumer_groups report every operation Kafka lists; broker and group
configs are validated, stored and kept across a restart."""

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AclOperation,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    OffsetSpec,
    ResourceType,
)

from helpers import (
    WAIT_S,
    admin_client,
    assign_from_beginning,
    consume_n,
    consumer,
    create_topic,
    produce_and_flush,
    producer,
)

RECORD = 920_000


def test_fetch_response_stays_within_fetch_max_bytes_but_its_first_batch(broker_factory, unique):
    # Its own broker: the shared one is not left with megabytes to sync at shutdown.
    broker = broker_factory(name="weir-fetch-limits")
    topic = unique("limits")
    create_topic(broker.bootstrap, topic, partitions=2)
    p = producer(broker.bootstrap, **{"linger.ms": 0})
    records = [
        {"value": bytes([i]) * RECORD, "partition": part} for part in (0, 1) for i in range(4)
    ]
    produce_and_flush(p, topic, records, flush_each=True)
    # librdkafka rejects a response larger than receive.message.max.bytes, whose minimum is
    # fetch.max.bytes + 512 ("Invalid response size ...: increase receive.message.max.bytes"),
    # drops the connection and retries: two ~920 KB batches in one response break every fetch
    # that names both partitions.
    errors = []
    c = consumer(
        broker.bootstrap,
        **{
            "fetch.max.bytes": 1_000_000,
            "receive.message.max.bytes": 1_000_512,
            "error_cb": lambda e: errors.append(str(e)),
        },
    )
    assign_from_beginning(c, topic, [0, 1])
    got = consume_n(c, 8, timeout=WAIT_S)
    assert sorted((m.partition(), m.offset()) for m in got) == [
        (p, o) for p in (0, 1) for o in range(4)
    ]
    assert errors == []
    assert all(len(m.value()) == RECORD for m in got)


def test_list_offsets_max_timestamp_names_the_record(broker, unique):
    topic = unique("maxts")
    a = create_topic(broker.bootstrap, topic, partitions=1)
    p = producer(broker.bootstrap, **{"linger.ms": 1000})
    # One batch (linger): the largest timestamp is on the middle record.
    produce_and_flush(
        p,
        topic,
        [
            {"value": b"a", "timestamp": 1_700_000_001_000},
            {"value": b"b", "timestamp": 1_700_000_005_000},
            {"value": b"c", "timestamp": 1_700_000_002_000},
        ],
    )
    tp = TopicPartition(topic, 0)
    got = a.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=WAIT_S)[tp].result(
        WAIT_S
    )
    assert (got.offset, got.timestamp) == (1, 1_700_000_005_000)


TOPIC_OPS = {
    AclOperation.READ,
    AclOperation.WRITE,
    AclOperation.CREATE,
    AclOperation.DELETE,
    AclOperation.ALTER,
    AclOperation.DESCRIBE,
    AclOperation.DESCRIBE_CONFIGS,
    AclOperation.ALTER_CONFIGS,
}
CLUSTER_OPS = {
    AclOperation.CREATE,
    AclOperation.ALTER,
    AclOperation.DESCRIBE,
    AclOperation.CLUSTER_ACTION,
    AclOperation.DESCRIBE_CONFIGS,
    AclOperation.ALTER_CONFIGS,
    AclOperation.IDEMPOTENT_WRITE,
}
GROUP_OPS = {
    AclOperation.READ,
    AclOperation.DELETE,
    AclOperation.DESCRIBE,
    AclOperation.DESCRIBE_CONFIGS,
    AclOperation.ALTER_CONFIGS,
}


def test_authorized_operations_without_an_authorizer(broker, unique):
    topic = unique("ops")
    group = unique("ops-group")
    a = create_topic(broker.bootstrap, topic, partitions=1)

    fut = a.describe_topics(
        TopicCollection([topic]), include_authorized_operations=True, request_timeout=WAIT_S
    )[topic]
    assert set(fut.result(WAIT_S).authorized_operations) == TOPIC_OPS
    # Not asked for: none reported.
    fut = a.describe_topics(TopicCollection([topic]), request_timeout=WAIT_S)[topic]
    assert not fut.result(WAIT_S).authorized_operations

    cluster = a.describe_cluster(include_authorized_operations=True, request_timeout=WAIT_S)
    assert set(cluster.result(WAIT_S).authorized_operations) == CLUSTER_OPS

    # A group with a committed offset, described as Kafka does.
    c = consumer(broker.bootstrap, group=group)
    c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    described = a.describe_consumer_groups(
        [group], include_authorized_operations=True, request_timeout=WAIT_S
    )[group].result(WAIT_S)
    assert set(described.authorized_operations) == GROUP_OPS


def _describe(admin, restype, name):
    (fut,) = admin.describe_configs([ConfigResource(restype, name)], request_timeout=WAIT_S).values()
    return fut.result(WAIT_S)


def _alter(admin, restype, name, entries):
    res = ConfigResource(restype, name, incremental_configs=entries)
    (fut,) = admin.incremental_alter_configs([res], request_timeout=WAIT_S).values()
    return fut.result(WAIT_S)


def test_broker_and_group_configs_survive_a_restart(broker_factory, unique):
    b = broker_factory(name="weir-configs")
    a = admin_client(b.bootstrap)
    node = str(b.node_id)
    group = unique("cfg-group")

    before = _describe(a, ResourceType.BROKER, node)
    assert before["log.retention.ms"].is_default
    assert before["broker.id"].is_read_only
    _alter(
        a,
        ResourceType.BROKER,
        node,
        [ConfigEntry("log.retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)],
    )
    # A config Kafka cannot change at runtime is refused.
    with pytest.raises(KafkaException) as ei:
        _alter(
            a,
            ResourceType.BROKER,
            node,
            [ConfigEntry("log.dirs", "/elsewhere", incremental_operation=AlterConfigOpType.SET)],
        )
    assert ei.value.args[0].code() == KafkaError.INVALID_REQUEST

    _alter(
        a,
        ResourceType.GROUP,
        group,
        [
            ConfigEntry(
                "consumer.session.timeout.ms", "50000", incremental_operation=AlterConfigOpType.SET
            ),
            ConfigEntry(
                "share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET
            ),
        ],
    )
    with pytest.raises(KafkaException) as ei:
        _alter(
            a,
            ResourceType.GROUP,
            group,
            [ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)],
        )
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG

    b.restart()
    a = admin_client(b.bootstrap)
    after = _describe(a, ResourceType.BROKER, node)
    assert after["log.retention.ms"].value == "3600000"
    assert after["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    groups = _describe(a, ResourceType.GROUP, group)
    assert groups["consumer.session.timeout.ms"].value == "50000"
    assert groups["consumer.session.timeout.ms"].source == ConfigSource.GROUP_CONFIG.value
    assert groups["share.auto.offset.reset"].value == "earliest"
    assert groups["consumer.heartbeat.interval.ms"].value == "5000"
    assert groups["consumer.heartbeat.interval.ms"].is_default
