"""Idempotent-producer state survives a broker restart: a producer that keeps its producer id and
sequence numbers across the restart goes on without OUT_OF_ORDER_SEQUENCE_NUMBER, and nothing is
duplicated or lost."""

from helpers import (
    WAIT_S,
    assert_no_more,
    assign_from_beginning,
    consume_n,
    consumer,
    create_topic,
    produce_and_flush,
    producer,
)


def test_idempotent_producer_continues_across_broker_restart(broker_factory, unique):
    b = broker_factory()
    topic = unique("idem-restart")
    create_topic(b.bootstrap, topic, partitions=1)
    p = producer(
        b.bootstrap,
        **{
            "enable.idempotence": True,
            "acks": "all",
            # Keep retrying through the restart instead of failing the batch.
            "message.timeout.ms": 60000,
            "retry.backoff.ms": 100,
        },
    )
    first = produce_and_flush(p, topic, [{"value": f"a{i}".encode()} for i in range(50)])
    b.restart()
    # Same producer object: same producer id and epoch, sequences continue at 50. Without the
    # recovered per-partition state the broker would reject sequence 50 as out of order.
    second = produce_and_flush(p, topic, [{"value": f"b{i}".encode()} for i in range(50)], timeout=WAIT_S * 2)
    offsets = [r[3] for r in first + second]
    assert offsets == list(range(100)), f"offsets not contiguous: {offsets[:5]}...{offsets[-5:]}"

    c = consumer(b.bootstrap)
    assign_from_beginning(c, topic, [0])
    got = [m.value().decode() for m in consume_n(c, 100)]
    assert got == [f"a{i}" for i in range(50)] + [f"b{i}" for i in range(50)]
    assert_no_more(c)
