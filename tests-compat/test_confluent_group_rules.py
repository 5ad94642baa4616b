"""confluent-kafka against the group coordinator's rules: commits from one connection take effect
in the order they were sent, a static member replaced under its group.instance.id is fenced (and
stays fenced), and an admin offset commit is refused while the group has members."""

import time

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions

from helpers import WAIT_S, admin_client, consumer, create_topic

# Rounds of pipelined commits: one round rarely shows a broker that applies commits out of order.
COMMIT_ROUNDS = 20
COMMITS_PER_ROUND = 50


def test_async_commits_take_effect_in_the_order_sent(broker, unique):
    """librdkafka pipelines asynchronous commits on its coordinator connection. Kafka applies a
    connection's requests in order, so the last commit sent is the one that stays."""
    topic = unique("commit-order")
    group = unique("g")
    create_topic(broker.bootstrap, topic)
    acked = []
    c = consumer(
        broker.bootstrap,
        group,
        on_commit=lambda err, parts: acked.append((err, [(p.offset, p.error) for p in parts])),
    )
    for r in range(COMMIT_ROUNDS):
        acked.clear()
        first = r * 1000
        for i in range(1, COMMITS_PER_ROUND + 1):
            c.commit(offsets=[TopicPartition(topic, 0, first + i)], asynchronous=True)
        deadline = time.monotonic() + WAIT_S
        while len(acked) < COMMITS_PER_ROUND and time.monotonic() < deadline:
            c.poll(0.05)
        assert len(acked) == COMMITS_PER_ROUND, f"round {r}: {len(acked)} commits acknowledged"
        assert all(err is None and all(e is None for _, e in parts) for err, parts in acked), acked
        got = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
        assert got == first + COMMITS_PER_ROUND, (
            f"round {r}: committed offset is {got}, the last commit sent was {first + COMMITS_PER_ROUND}"
        )


def _wait_assigned(c, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c.poll(0.1)
        if c.assignment():
            return sorted(tp.partition for tp in c.assignment())
    raise AssertionError("consumer never got partitions")


def _describe(bootstrap, group):
    a = admin_client(bootstrap)
    return a.describe_consumer_groups([group], request_timeout=10)[group].result(15)


def test_static_member_replaced_under_its_instance_id_is_fenced(broker, unique):
    """A second consumer with the same group.instance.id takes the membership over. The first one
    must then be told FENCED_INSTANCE_ID (librdkafka stops with a fatal error), not
    UNKNOWN_MEMBER_ID, which makes it rejoin under the instance id and fence the second one in
    turn, back and forth."""
    topic = unique("fenced")
    group = unique("g")
    create_topic(broker.bootstrap, topic, partitions=2)
    conf = {
        "group.instance.id": "instance-1",
        "session.timeout.ms": 30000,
        "heartbeat.interval.ms": 200,
    }
    errors_a = []
    a = consumer(broker.bootstrap, group, error_cb=errors_a.append, **conf)
    a.subscribe([topic])
    assert _wait_assigned(a) == [0, 1]

    assigned_b = []
    b = consumer(broker.bootstrap, group, **conf)
    b.subscribe([topic], on_assign=lambda _c, parts: assigned_b.append(len(parts)))
    assert _wait_assigned(b) == [0, 1]
    b_member = b.memberid()

    # a's next heartbeat is answered FENCED_INSTANCE_ID, which librdkafka raises as a fatal error
    # (from poll(), or through error_cb).
    def is_fatal(e):
        return e is not None and (e.fatal() or e.code() == KafkaError._FATAL)

    fatal = None
    deadline = time.monotonic() + WAIT_S
    while fatal is None and time.monotonic() < deadline:
        m = a.poll(0.1)
        if m is not None and is_fatal(m.error()):
            fatal = m.error()
        fatal = fatal or next((e for e in errors_a if is_fatal(e)), None)
        b.poll(0.05)
    assert fatal is not None, f"the replaced member was never fenced; its errors: {errors_a}"
    assert "same group.instance.id" in fatal.str(), fatal

    # The fenced member does not come back: b keeps the membership and is not reassigned.
    end = time.monotonic() + 3
    while time.monotonic() < end:
        b.poll(0.1)
    desc = _describe(broker.bootstrap, group)
    assert [(m.group_instance_id, m.member_id) for m in desc.members] == [("instance-1", b_member)]
    assert str(desc.state).endswith("STABLE"), desc.state
    assert assigned_b == [2], f"b was assigned {len(assigned_b)} times: the members fenced each other"


def _alter_offsets(bootstrap, group, topic, offset):
    """AlterConsumerGroupOffsets of partition 0; returns the error code the client reports for
    it (librdkafka gives a per-partition error, or fails the whole group)."""
    a = admin_client(bootstrap)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, offset)])
    try:
        done = a.alter_consumer_group_offsets([request], request_timeout=10)[group].result(15)
    except KafkaException as e:
        return e.args[0].code()
    [tp] = done.topic_partitions
    assert (tp.topic, tp.partition, tp.offset) == (topic, 0, offset)
    return KafkaError.NO_ERROR if tp.error is None else tp.error.code()


def test_admin_offset_commit_needs_an_empty_group(broker, unique):
    """AlterConsumerGroupOffsets commits with generation -1 and no member id: Kafka takes it for an
    empty group and answers UNKNOWN_MEMBER_ID while the group has members."""
    topic = unique("alter")
    group = unique("g")
    create_topic(broker.bootstrap, topic)

    # No group yet: accepted (a "simple" group is created).
    assert _alter_offsets(broker.bootstrap, group, topic, 3) == KafkaError.NO_ERROR

    c = consumer(broker.bootstrap, group, **{"session.timeout.ms": 30000})
    c.subscribe([topic])
    _wait_assigned(c)
    assert _alter_offsets(broker.bootstrap, group, topic, 7) == KafkaError.UNKNOWN_MEMBER_ID
    got = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    assert got == 3, "the refused commit must not have been applied"

    # Once the member has left, the group is empty and the admin commit goes through.
    c.close()
    assert _alter_offsets(broker.bootstrap, group, topic, 7) == KafkaError.NO_ERROR
    check = consumer(broker.bootstrap, group)
    assert check.committed([TopicPartition(topic, 0)], timeout=10)[0].offset == 7
