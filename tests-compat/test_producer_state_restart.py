"""Idempotent-producer state across restarts with producer snapshots (written at segment rolls
and at a clean shutdown; the tail after the newest one is read at start): retries are still
recognised after kill -9, and a producer whose records were all deleted is accepted at whatever
sequence it is at, as Kafka 2.5+ does (KIP-360)."""

from confluent_kafka import TopicPartition

from helpers import (
    WAIT_S,
    admin_client,
    assert_no_more,
    assign_from_beginning,
    consume_n,
    consumer,
    create_topic,
    produce_and_flush,
    producer,
)

IDEMPOTENT = {
    "enable.idempotence": True,
    "acks": "all",
    # Keep retrying through the restart instead of failing the batch.
    "message.timeout.ms": 60000,
    "retry.backoff.ms": 100,
}


def test_idempotent_producer_continues_after_kill9_across_segment_rolls(broker_factory, unique):
    b = broker_factory("--fsync", "always")
    topic = unique("idem-rolls")
    # Small segments: many rolls, so the restart starts from a roll snapshot and reads the tail.
    create_topic(b.bootstrap, topic, partitions=1, config={"segment.bytes": "8192"})
    p = producer(b.bootstrap, **IDEMPOTENT, **{"linger.ms": 5})
    first = produce_and_flush(p, topic, [{"value": f"a{i:04}".encode() * 20} for i in range(400)])
    b.kill9()
    b.start()
    second = produce_and_flush(
        p, topic, [{"value": f"b{i:04}".encode() * 20} for i in range(400)], timeout=WAIT_S * 2
    )
    offsets = [r[3] for r in first + second]
    assert offsets == list(range(800)), f"offsets not contiguous: {offsets[:5]}...{offsets[-5:]}"
    c = consumer(b.bootstrap)
    assign_from_beginning(c, topic, [0])
    got = [m.value() for m in consume_n(c, 800)]
    assert got == [f"a{i:04}".encode() * 20 for i in range(400)] + [f"b{i:04}".encode() * 20 for i in range(400)]
    assert_no_more(c)


def test_producer_whose_records_were_deleted_is_accepted_at_its_sequence(broker_factory, unique):
    b = broker_factory()
    topic = unique("idem-deleted")
    create_topic(b.bootstrap, topic, partitions=1)
    p = producer(b.bootstrap, **IDEMPOTENT)
    first = produce_and_flush(p, topic, [{"value": f"a{i}".encode()} for i in range(50)])
    end = first[-1][3] + 1
    tp = TopicPartition(topic, 0, end)
    admin = admin_client(b.bootstrap)
    deleted = admin.delete_records([tp])[tp].result(WAIT_S)
    assert deleted.low_watermark == end
    # The broker restarts with no record of this producer left in the log: it has no state for
    # it. The producer goes on at sequence 50; Kafka 2.5+ accepts that (it cannot tell a gap from
    # deleted records) rather than answering OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID.
    b.restart()
    second = produce_and_flush(p, topic, [{"value": f"b{i}".encode()} for i in range(50)], timeout=WAIT_S * 2)
    assert [r[3] for r in second] == list(range(end, end + 50))
    c = consumer(b.bootstrap)
    assign_from_beginning(c, topic, [0])
    assert [m.value() for m in consume_n(c, 50)] == [f"b{i}".encode() for i in range(50)]
    assert_no_more(c)
