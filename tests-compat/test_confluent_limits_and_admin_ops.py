"""confluent-kafka against Kafka behaviours of issue 14: a fetch response never exceeds
fetch.max.bytes by more than its first batch (KIP-74); ListOffsets MAX_TIMESTAMP names the
record with the largest timestamp (KAFKA-16310); without an authorizer, describe_topics,
describe_cluster and describe_consumer_groups report every operation Kafka lists; broker and group
configs are validated, stored and kept across a restart."""

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KafkaConfigResource
from kafka.admin import ConfigResourceType as KafkaConfigResourceType
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


def _set_cluster_defaults(bootstrap, configs):
    """Replaces the cluster-wide dynamic broker configs with `configs` (AlterConfigs)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(WAIT_S * 1000))
    try:
        response = admin.alter_configs(
            [KafkaConfigResource(KafkaConfigResourceType.BROKER, "", configs=configs)]
        )
        assert [r[0] for r in response.resources] == [0], response
    finally:
        admin.close()


def _produce_one(p, topic, size):
    """Produces one record of `size` bytes; the delivery error (None when it was stored)."""
    errors = []
    p.produce(topic, value=b"x" * size, on_delivery=lambda err, msg: errors.append(err))
    p.flush(WAIT_S)
    assert len(errors) == 1, "one delivery report"
    return errors[0]


def test_broker_level_log_configs_are_the_defaults_of_every_topic(broker_factory, unique):
    """Kafka's broker configs that name a topic config's default (message.max.bytes,
    log.retention.ms, ...), set dynamically for the cluster or for one broker, are in force for
    every topic that does not set its own, reported with their source, and kept across a
    restart; a topic's own value still wins."""
    b = broker_factory(name="weir-topic-defaults")
    a = admin_client(b.bootstrap)
    node = str(b.node_id)
    plain, own = unique("plain"), unique("own")
    create_topic(b.bootstrap, plain, partitions=1)
    create_topic(b.bootstrap, own, partitions=1, config={"max.message.bytes": "100000"})
    p = producer(b.bootstrap, **{"linger.ms": 0, "message.max.bytes": 1_000_000})
    assert _produce_one(p, plain, 5000) is None

    set_ = AlterConfigOpType.SET
    # The cluster-wide defaults (resource name ""), which confluent-kafka's AdminClient cannot
    # name: with kafka-python's AlterConfigs, as `kafka-configs.sh --entity-default` would.
    _set_cluster_defaults(
        b.bootstrap,
        {"min.insync.replicas": "1", "message.max.bytes": "2000", "log.retention.ms": "3600000"},
    )
    _alter(a, ResourceType.BROKER, node, [ConfigEntry("log.retention.hours", "2", incremental_operation=set_)])
    configs = _describe(a, ResourceType.TOPIC, plain)
    assert configs["max.message.bytes"].value == "2000"
    assert configs["max.message.bytes"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    # log.retention.ms before log.retention.hours, whatever the level (Kafka's precedence).
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert configs["cleanup.policy"].is_default
    mine = _describe(a, ResourceType.TOPIC, own)
    assert mine["max.message.bytes"].value == "100000"
    assert mine["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    err = _produce_one(p, plain, 5000)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert _produce_one(p, own, 5000) is None

    # This broker's own value over the cluster-wide one.
    _alter(a, ResourceType.BROKER, node, [ConfigEntry("message.max.bytes", "8000", incremental_operation=set_)])
    configs = _describe(a, ResourceType.TOPIC, plain)
    assert configs["max.message.bytes"].value == "8000"
    assert configs["max.message.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert _produce_one(p, plain, 5000) is None

    b.restart()
    a = admin_client(b.bootstrap)
    p = producer(b.bootstrap, **{"linger.ms": 0, "message.max.bytes": 1_000_000})
    assert _describe(a, ResourceType.TOPIC, plain)["max.message.bytes"].value == "8000"
    err = _produce_one(p, plain, 9000)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err

    # Deleted at both levels: Kafka's default again.
    delete = AlterConfigOpType.DELETE
    _alter(a, ResourceType.BROKER, node, [ConfigEntry("message.max.bytes", None, incremental_operation=delete)])
    _set_cluster_defaults(b.bootstrap, {"min.insync.replicas": "1"})
    configs = _describe(a, ResourceType.TOPIC, plain)
    assert configs["max.message.bytes"].is_default
    assert _produce_one(p, plain, 9000) is None


def test_cleanup_policy_may_be_emptied_and_a_cluster_min_insync_replicas_is_reported(broker, unique):
    """Kafka 4.2: SUBTRACT of the last cleanup.policy leaves it empty (the log is kept), a
    repeated policy is refused. Kafka 4.1+ reports a cluster-wide min.insync.replicas on every
    topic (written when the cluster first starts)."""
    a = admin_client(broker.bootstrap)
    topic = unique("policy")
    create_topic(broker.bootstrap, topic, partitions=1)
    _alter(
        a,
        ResourceType.TOPIC,
        topic,
        [ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)],
    )
    configs = _describe(a, ResourceType.TOPIC, topic)
    assert configs["cleanup.policy"].value == ""
    assert configs["min.insync.replicas"].value == "1"
    assert configs["min.insync.replicas"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    with pytest.raises(KafkaException) as ei:
        _alter(
            a,
            ResourceType.TOPIC,
            topic,
            [ConfigEntry("cleanup.policy", "delete,delete", incremental_operation=AlterConfigOpType.SET)],
        )
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_delete_records_is_refused_on_a_compact_only_topic(broker, unique):
    """Kafka: a topic whose cleanup.policy is compact without delete keeps its records
    (POLICY_VIOLATION); with delete, or with the empty policy (Kafka 4.2), the start moves."""
    a = admin_client(broker.bootstrap)
    p = producer(broker.bootstrap)
    for policy, refused in (("compact", True), ("compact,delete", False), ("", False)):
        topic = unique("cut")
        create_topic(broker.bootstrap, topic, partitions=1, config={"cleanup.policy": policy})
        produce_and_flush(p, topic, [{"key": b"k", "value": str(i).encode()} for i in range(3)])
        tp = TopicPartition(topic, 0, 2)
        future = a.delete_records([tp], request_timeout=WAIT_S)[tp]
        if refused:
            with pytest.raises(KafkaException) as ei:
                future.result(WAIT_S)
            assert ei.value.args[0].code() == KafkaError.POLICY_VIOLATION, policy
        else:
            assert future.result(WAIT_S).low_watermark == 2, policy
