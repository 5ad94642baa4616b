"""confluent-kafka (librdkafka 2.x): produce/consume round trips."""

import hashlib
import os
from collections import defaultdict

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME

from helpers import (
    assert_no_more,
    assign_from_beginning,
    consume_n,
    consumer,
    create_topic,
    produce_and_flush,
    producer,
)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compression_codec_round_trip(broker, unique, codec):
    topic = unique(f"codec-{codec}")
    create_topic(broker.bootstrap, topic, partitions=1)
    n = 500
    # Compressible values, batched by linger so each codec really compresses multi-record batches.
    records = [
        {"key": f"k{i}".encode(), "value": (f"value-{i:05d}-" + "abcdefgh" * 20).encode()}
        for i in range(n)
    ]
    p = producer(broker.bootstrap, **{"compression.type": codec, "linger.ms": 50, "acks": "all"})
    reports = produce_and_flush(p, topic, records)
    # One partition, one producer: offsets are assigned 0..n-1 in produce order.
    assert [(r[2], r[3]) for r in reports] == [(0, i) for i in range(n)]

    c = consumer(broker.bootstrap)
    assign_from_beginning(c, topic, [0])
    msgs = consume_n(c, n)
    assert [m.offset() for m in msgs] == list(range(n))
    assert [m.key() for m in msgs] == [r["key"] for r in records]
    assert [m.value() for m in msgs] == [r["value"] for r in records]
    assert_no_more(c, wait=1.0)
    c.close()


def test_acks_all_offsets_contiguous(broker, unique):
    topic = unique("acks-all")
    create_topic(broker.bootstrap, topic, partitions=3)
    p = producer(broker.bootstrap, acks="all")
    records = [{"key": f"k{i}".encode(), "value": f"v{i}".encode(), "partition": i % 3} for i in range(300)]
    reports = produce_and_flush(p, topic, records)
    by_part = defaultdict(list)
    for err, _t, part, off, _k, value in reports:
        by_part[part].append((off, value))
    for part in range(3):
        # Each partition got exactly its 100 records at offsets 0..99, in produce order.
        assert [o for o, _ in by_part[part]] == list(range(100))
        assert [v for _, v in by_part[part]] == [f"v{i}".encode() for i in range(part, 300, 3)]

    c = consumer(broker.bootstrap)
    assign_from_beginning(c, topic, [0, 1, 2])
    got = defaultdict(list)
    for m in consume_n(c, 300):
        got[m.partition()].append((m.offset(), m.value()))
    for part in range(3):
        assert got[part] == by_part[part]
    c.close()


def test_idempotent_producer_exactly_once_in_order(broker, unique):
    topic = unique("idempotent")
    create_topic(broker.bootstrap, topic, partitions=4)
    p = producer(
        broker.bootstrap,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "retries": 1000,
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 5,
            "batch.num.messages": 50,
        },
    )
    n = 2000
    records = [{"key": f"key-{i % 37}".encode(), "value": f"{i}".encode()} for i in range(n)]
    reports = produce_and_flush(p, topic, records, timeout=60)

    # Delivery reports: per partition, offsets are 0..k-1 in the order the app produced.
    sent = defaultdict(list)
    for _e, _t, part, off, key, value in reports:
        sent[part].append((off, key, value))
    for part, rows in sent.items():
        assert [o for o, _, _ in rows] == list(range(len(rows)))
        values = [int(v) for _, _, v in rows]
        assert values == sorted(values), f"partition {part} out of produce order"

    c = consumer(broker.bootstrap)
    assign_from_beginning(c, topic, range(4))
    msgs = consume_n(c, n, timeout=60)
    got = defaultdict(list)
    for m in msgs:
        got[m.partition()].append((m.offset(), m.key(), m.value()))
    assert got == sent
    # Every record exactly once.
    assert sorted(int(m.value()) for m in msgs) == list(range(n))
    # Same key -> same partition (default murmur2-compatible partitioner is deterministic).
    key_parts = defaultdict(set)
    for m in msgs:
        key_parts[m.key()].add(m.partition())
    assert all(len(s) == 1 for s in key_parts.values())
    assert_no_more(c, wait=1.0)
    c.close()


def test_headers_round_trip(broker, unique):
    topic = unique("headers")
    create_topic(broker.bootstrap, topic, partitions=1)
    variants = [
        [("trace-id", b"abc123")],
        [("a", b"1"), ("b", b""), ("a", b"2")],  # duplicate keys keep order; empty value
        [("binary", bytes(range(256))), ("utf8-\u00e9", "caf\u00e9".encode())],
        [("null-value", None)],
        [],
    ]
    p = producer(broker.bootstrap)
    produce_and_flush(
        p, topic, [{"key": b"k", "value": f"v{i}".encode(), "headers": h} for i, h in enumerate(variants)]
    )
    c = consumer(broker.bootstrap)
    assign_from_beginning(c, topic, [0])
    msgs = consume_n(c, len(variants))
    for i, (m, h) in enumerate(zip(msgs, variants)):
        assert m.value() == f"v{i}".encode()
        # librdkafka returns None when a record has no headers.
        assert (m.headers() or []) == h
    c.close()


def test_null_and_empty_keys_and_values(broker, unique):
    topic = unique("nulls")
    create_topic(broker.bootstrap, topic, partitions=1)
    cases = [
        (None, b"value-with-null-key"),
        (b"key-with-null-value", None),  # tombstone
        (None, None),
        (b"", b""),  # empty is not null
        (b"", None),
        (None, b""),
        (b"k", b"v"),
    ]
    p = producer(broker.bootstrap)
    records = []
    for k, v in cases:
        r = {"partition": 0}
        if k is not None:
            r["key"] = k
        if v is not None:
            r["value"] = v
        records.append(r)
    produce_and_flush(p, topic, records)
    c = consumer(broker.bootstrap)
    assign_from_beginning(c, topic, [0])
    msgs = consume_n(c, len(cases))
    assert [(m.key(), m.value()) for m in msgs] == cases
    c.close()


def test_one_mib_records(broker, unique):
    topic = unique("big")
    two_mib = 2 * 1024 * 1024
    # The broker's default max.message.bytes (~1 MiB) is too small for a 1 MiB value plus
    # batch overhead; raise it on the topic like a user would.
    create_topic(broker.bootstrap, topic, partitions=1, config={"max.message.bytes": str(two_mib)})
    # The client's message.max.bytes also caps its batches: keep it above one 1 MiB record but
    # below two, so no batch exceeds the topic's 2 MiB limit.
    p = producer(
        broker.bootstrap,
        **{"message.max.bytes": 1024 * 1024 + 64 * 1024, "acks": "all", "compression.type": "none"},
    )
    n = 5
    values = [os.urandom(1024 * 1024) for _ in range(n)]
    reports = produce_and_flush(
        p, topic, [{"key": f"big-{i}".encode(), "value": v} for i, v in enumerate(values)], timeout=60
    )
    assert [r[3] for r in reports] == list(range(n))

    c = consumer(
        broker.bootstrap,
        **{
            "fetch.max.bytes": 8 * 1024 * 1024,
            "max.partition.fetch.bytes": 4 * 1024 * 1024,
            "receive.message.max.bytes": 16 * 1024 * 1024,
        },
    )
    assign_from_beginning(c, topic, [0])
    msgs = consume_n(c, n, timeout=60)
    assert [m.key() for m in msgs] == [f"big-{i}".encode() for i in range(n)]
    assert [len(m.value()) for m in msgs] == [1024 * 1024] * n
    assert [hashlib.sha256(m.value()).hexdigest() for m in msgs] == [
        hashlib.sha256(v).hexdigest() for v in values
    ]
    c.close()


@pytest.mark.timeout(240)
def test_thousand_partitions(broker, unique):
    topic = unique("p1000")
    parts = 1000
    create_topic(broker.bootstrap, topic, partitions=parts, timeout=60)
    p = producer(broker.bootstrap, **{"linger.ms": 20})
    records = [{"partition": i, "key": f"k{i}".encode(), "value": f"partition-{i}".encode()} for i in range(parts)]
    reports = produce_and_flush(p, topic, records, timeout=90)
    # Every record landed at offset 0 of the partition it was sent to.
    assert sorted((r[2], r[3]) for r in reports) == [(i, 0) for i in range(parts)]

    c = consumer(broker.bootstrap)
    assign_from_beginning(c, topic, range(parts))
    msgs = consume_n(c, parts, timeout=90)
    got = {m.partition(): (m.offset(), m.key(), m.value()) for m in msgs}
    assert len(got) == parts, "some partition delivered more than one record"
    assert got == {i: (0, f"k{i}".encode(), f"partition-{i}".encode()) for i in range(parts)}
    c.close()


def test_explicit_timestamps_preserved(broker, unique):
    topic = unique("ts")
    create_topic(broker.bootstrap, topic, partitions=1)
    base = 1_600_000_000_000
    p = producer(broker.bootstrap)
    produce_and_flush(p, topic, [{"value": f"{i}".encode(), "timestamp": base + i * 7} for i in range(10)])
    c = consumer(broker.bootstrap)
    assign_from_beginning(c, topic, [0])
    msgs = consume_n(c, 10)
    assert [m.timestamp() for m in msgs] == [(TIMESTAMP_CREATE_TIME, base + i * 7) for i in range(10)]
    c.close()
