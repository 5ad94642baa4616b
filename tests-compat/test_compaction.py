"""Log compaction (cleanup.policy=compact) as a Kafka user sees it: after the log cleaner ran, a
consumer reading from the beginning gets the latest record of every key at the offset it was
written to, tombstones while delete.retention.ms has not passed, and the log's start and end
offsets do not move. Real clients (confluent-kafka, kafka-python) read batches the cleaner
rebuilt, recompressed (zstd, gzip) or emptied; a kill -9 afterwards loses nothing."""

import os
import struct
import time
import urllib.request

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from helpers import (
    WAIT_S,
    admin_client,
    assign_from_beginning,
    consumer,
    create_topic,
    kafka_python_request,
    poll_one,
    produce_and_flush,
    producer,
    wait_until,
)

KEYS = 200
DELETED = 50  # the first DELETED keys end with a tombstone
FILLER = 120  # unique keys after the waves, so that the waves lie in sealed segments
# Small segments and any dirty share: the cleaner gets to the waves within a tick.
COMPACTED = {
    "cleanup.policy": "compact",
    "segment.bytes": "4096",
    "min.cleanable.dirty.ratio": "0.01",
}


def produce_waves(p, topic, tombstones):
    """Three waves over the same KEYS keys (the third deletes the first DELETED keys if
    `tombstones`), then FILLER unique keys. Returns key -> (offset, value) of each key's latest
    record."""
    latest = {}
    for wave in range(3):
        records = []
        for k in range(KEYS):
            key = f"key-{k:03}".encode()
            tombstone = tombstones and wave == 2 and k < DELETED
            value = None if tombstone else f"wave{wave}-{k}-".encode() + b"x" * 20
            records.append({"key": key, "value": value})
        for r, rep in zip(records, produce_and_flush(p, topic, records)):
            latest[r["key"]] = (rep[3], r["value"])
    filler = [{"key": f"filler-{i}".encode(), "value": b"f" * 40} for i in range(FILLER)]
    for r, rep in zip(filler, produce_and_flush(p, topic, filler)):
        latest[r["key"]] = (rep[3], r["value"])
    return latest


def wait_compacted(bootstrap, topic, expected, timeout=WAIT_S * 2):
    """Until a consumer from the beginning reads exactly `expected` (the cleaner ran); returns
    what it read."""
    return wait_until(
        "the cleaner to leave the latest record of each key",
        lambda: (lambda r: r if r == expected else None)(read_all(bootstrap, topic, len(expected))),
        timeout=timeout,
        interval=0.5,
    )


def removed_records(b, topic):
    """The values of `weir_log_cleaner_removed_records_total` for `topic` on broker `b` (one
    per labelled series; none before the cleaner removed anything)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/metrics", timeout=WAIT_S) as r:
        text = r.read().decode()
    return [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("weir_log_cleaner_removed_records_total{") and f'topic="{topic}"' in line
    ]


def read_all(bootstrap, topic, expected_count, **conf):
    """Every record from the beginning, as (offset, key, value), read until `expected_count`
    arrived or nothing more comes."""
    c = consumer(bootstrap, **conf)
    assign_from_beginning(c, topic, [0])
    out = []
    idle = 0
    while idle < 4 and len(out) < expected_count + 50:
        m = poll_one(c, 0.5)
        if m is None:
            idle += 1
            if len(out) >= expected_count:
                break
            continue
        idle = 0
        out.append((m.offset(), m.key(), m.value()))
    c.close()
    return out


@pytest.mark.parametrize(
    "codec,delete_retention_ms",
    [("zstd", "86400000"), ("gzip", "0")],
)
def test_a_compacted_topic_keeps_the_latest_record_of_each_key(
    broker_factory, unique, codec, delete_retention_ms
):
    b = broker_factory("--log-cleaner-backoff-ms", "200")
    topic = unique(f"compacted-{codec}")
    create_topic(
        b.bootstrap,
        topic,
        partitions=1,
        config={**COMPACTED, "delete.retention.ms": delete_retention_ms},
    )
    p = producer(
        b.bootstrap,
        **{"compression.type": codec, "linger.ms": 5, "batch.num.messages": 20},
    )
    latest = produce_waves(p, topic, tombstones=True)
    produced = 3 * KEYS + FILLER

    keep_tombstones = delete_retention_ms != "0"
    expected = sorted(
        (offset, key, value)
        for key, (offset, value) in latest.items()
        if value is not None or keep_tombstones
    )
    # The cleaner cleans sealed segments only: filler records in the active segment are kept
    # anyway, and the waves are all sealed.
    assert wait_compacted(b.bootstrap, topic, expected) == expected

    c = consumer(b.bootstrap)
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (low, high) == (0, produced), "offsets do not move"
    c.close()

    # Every record of the first two waves, and of the third the tombstones that expired.
    removed = removed_records(b, topic)
    assert removed == [2 * KEYS + (0 if keep_tombstones else DELETED)], removed

    if codec == "gzip":
        # Another client reads the rebuilt and emptied batches too (kafka-python: no zstd).
        kc = KafkaConsumer(
            topic,
            bootstrap_servers=b.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=5000,
        )
        seen = [(m.offset, m.key, m.value) for m in kc]
        kc.close()
        assert seen == expected
        # A consumer of Kafka 0.9's protocol gets the rebuilt batches down-converted (Fetch v0,
        # message format 0) at their offsets.
        old = {"api.version.request": False, "broker.version.fallback": "0.9.0.1"}
        assert read_all(b.bootstrap, topic, len(expected), **old) == expected

    # The rewritten segments are durable: a kill -9 and restart serve the same records.
    b.kill9()
    b.start()
    assert read_all(b.bootstrap, topic, len(expected)) == expected


def test_a_consumer_group_resumes_inside_a_compacted_range(broker_factory, unique):
    """A group's committed offset may point at a record the cleaner removed: the consumer goes
    on with the next record kept, as against Kafka. The topic starts with `delete` and is
    switched to `compact` once the group has committed (the cleaner follows the change)."""
    b = broker_factory("--log-cleaner-backoff-ms", "200")
    topic = unique("compacted-resume")
    create_topic(
        b.bootstrap,
        topic,
        partitions=1,
        config={
            "cleanup.policy": "delete",
            "segment.bytes": "2048",
            "min.cleanable.dirty.ratio": "0.01",
        },
    )
    p = producer(b.bootstrap, **{"linger.ms": 0})
    first = [{"key": b"same", "value": f"old-{i}".encode()} for i in range(100)]
    produce_and_flush(p, topic, first)
    later = [{"key": f"k{i}".encode(), "value": b"v" * 40} for i in range(100)]
    reports = produce_and_flush(p, topic, later)

    group = unique("g")
    c = consumer(b.bootstrap, group=group)
    c.assign([TopicPartition(topic, 0, 10)])
    m = wait_until("a record", lambda: poll_one(c, 0.5))
    assert m.offset() == 10 and m.value() == b"old-10"
    c.commit(message=m, asynchronous=False)  # committed offset 11
    c.close()
    admin = admin_client(b.bootstrap)
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(WAIT_S)

    # Every "old-*" record but the last goes (the last "same" is at offset 99).
    def only_latest_same():
        got = read_all(b.bootstrap, topic, 1 + len(later))
        return got if [r for r in got if r[1] == b"same"] == [(99, b"same", b"old-99")] else None

    wait_until("the cleaner to remove the superseded records", only_latest_same, timeout=WAIT_S * 2)
    c = consumer(b.bootstrap, group=group)
    c.subscribe([topic])
    m = wait_until("the next record", lambda: poll_one(c, 0.5))
    assert (m.offset(), m.value()) == (99, b"old-99"), "resumes at the next record kept"
    m = wait_until("the one after", lambda: poll_one(c, 0.5))
    assert m.offset() == reports[0][3]


def test_a_follower_catches_up_from_a_compacted_leader(cluster_factory, unique):
    """Three brokers, replication factor 3. A follower is down while the leader's cleaner
    compacts the log; back up, it copies the compacted log (whole batches missing: offset gaps)
    to the same end, and after the leader is killed the new leader serves the latest record of
    every key."""
    from test_cluster import FAST, create_replicated, leader_of, logs_equal_everywhere
    from test_cluster import preferred_leaders_elected

    c = cluster_factory(3, FAST + ("--log-cleaner-backoff-ms", "200"))
    admin = admin_client(c.bootstrap)
    topic = unique("compacted-replicated")
    create_replicated(admin, topic, partitions=1)
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            for name, value in COMPACTED.items()
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(WAIT_S)
    ps = wait_until("a preferred leader", lambda: preferred_leaders_elected(admin, topic, 1))
    follower = ps[0].replicas[-1]
    c.broker(follower).kill9()

    p = producer(c.live_bootstrap(), acks="all", **{"linger.ms": 5})
    latest = produce_waves(p, topic, tombstones=False)
    expected = sorted((o, k, v) for k, (o, v) in latest.items())
    wait_compacted(c.live_bootstrap(), topic, expected)

    c.broker(follower).start()

    def caught_up():
        try:
            return logs_equal_everywhere(c, topic, 1)
        except OSError:  # the restarted broker's admin API is not up yet
            return None

    seen = wait_until("every replica at the same end", caught_up)
    end = max(o for o, _ in latest.values()) + 1  # the log also holds Raft control batches
    assert seen[0][0] == (end, end), seen

    victim = leader_of(admin, topic, 0)
    c.broker(victim).kill9()
    admin = admin_client(c.live_bootstrap())
    wait_until("a new leader", lambda: leader_of(admin, topic, 0) not in (None, -1, victim), timeout=45)
    # The new leader serves the same records.
    assert wait_compacted(c.live_bootstrap(), topic, expected, timeout=WAIT_S) == expected


def test_kafkajs_reads_a_compacted_topic(broker_factory, unique):
    """KafkaJS (pure JavaScript) in a consumer group reads the compacted log from the start:
    offset gaps and rebuilt gzip batches of an idempotent producer (whose last batch in the
    cleaned range stays, with no records if all of them went)."""
    from test_kafkajs import kafkajs

    b = broker_factory("--log-cleaner-backoff-ms", "200")
    topic = unique("compacted-kjs")
    create_topic(
        b.bootstrap,
        topic,
        partitions=1,
        config=COMPACTED,
    )
    p = producer(
        b.bootstrap,
        **{
            "compression.type": "gzip",
            "linger.ms": 5,
            "batch.num.messages": 20,
            "enable.idempotence": True,
        },
    )
    latest = produce_waves(p, topic, tombstones=True)
    expected = sorted((o, k, v) for k, (o, v) in latest.items())
    wait_compacted(b.bootstrap, topic, expected)
    got = kafkajs(b, "readAll", topic=topic, groupId=unique("kjs-compacted"), count=len(expected))
    seen = [
        (int(r["offset"]), r["key"].encode(), None if r["value"] is None else r["value"].encode())
        for r in got["seen"]
    ]
    assert seen == expected


def batch_headers(bootstrap, topic, high):
    """The header fields of every batch of partition 0 below `high` as the broker serves them
    (Fetch v4, read_committed, through kafka-python's protocol classes, so control batches are
    seen too): (base offset, attributes, first timestamp, is control)."""
    from kafka.protocol.fetch import FetchRequest

    out, offset = [], 0
    while offset < high:
        req = FetchRequest[4](-1, 500, 1, 8 << 20, 1, [(topic, [(0, offset, 8 << 20)])])
        resp = kafka_python_request(bootstrap, req)
        part = resp["topics"][0]["partitions"][0]
        assert part["error_code"] == 0, f"fetch error {part['error_code']}"
        data, pos, got = part["message_set"] or b"", 0, False
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if pos + 12 + length > len(data):
                break
            attributes, last_delta, first_ts = struct.unpack_from(">hiq", data, pos + 21)
            out.append((base, attributes, first_ts, bool(attributes & 0x20)))
            offset, pos, got = base + last_delta + 1, pos + 12 + length, True
        if not got:
            break
    return out


def test_deletes_and_emptied_transactions_markers_stay_for_delete_retention(broker_factory, unique):
    """KIP-534: a tombstone and the marker of a transaction whose records the cleaner
    removed stay `delete.retention.ms` after the pass that first kept them (which stamps a delete
    horizon in their batches), however old the records' own timestamps, then go."""
    from test_transactions import txn_producer

    b = broker_factory("--log-cleaner-backoff-ms", "200")
    topic = unique("compacted-horizon")
    retention_ms = 15_000
    create_topic(
        b.bootstrap,
        topic,
        partitions=1,
        config={**COMPACTED, "delete.retention.ms": str(retention_ms)},
    )
    tp = txn_producer(b.bootstrap, unique("txn"))
    # Ten transactions over the same keys, with an aborted one among them: the records of the
    # first nine and of the aborted one are all gone after a cleaning.
    for t in range(10):
        if t == 5:
            tp.begin_transaction()
            for k in range(20):
                tp.produce(topic, key=f"key-{k}".encode(), value=b"aborted")
            tp.flush(WAIT_S)
            tp.abort_transaction(WAIT_S)
        tp.begin_transaction()
        for k in range(20):
            tp.produce(topic, key=f"key-{k}".encode(), value=f"txn{t}".encode())
        tp.commit_transaction(WAIT_S)
    # Tombstones stamped a week ago (a replay): their age must not count.
    week_ago_ms = int(time.time() * 1000) - 7 * 86_400_000
    p = producer(b.bootstrap, **{"linger.ms": 0})
    deletes = [{"key": f"key-{k}".encode(), "value": None, "timestamp": week_ago_ms} for k in range(5)]
    delete_reports = produce_and_flush(p, topic, deletes)
    filler = [{"key": f"filler-{i}".encode(), "value": b"f" * 40} for i in range(120)]
    produce_and_flush(p, topic, filler)
    high = consumer(b.bootstrap).get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]

    def markers():
        return [h for h in batch_headers(b.bootstrap, topic, high) if h[3]]

    with_tombstones = lambda: len(  # noqa: E731
        [r for r in read_all(b.bootstrap, topic, 140, **{"isolation.level": "read_committed"}) if r[1].startswith(b"key-")]
    )
    # First cleaning: the superseded records are gone, the tombstones and markers still there.
    wait_until("the cleaner's first pass", lambda: with_tombstones() == 20, timeout=WAIT_S * 2)
    got = read_all(b.bootstrap, topic, 140, **{"isolation.level": "read_committed"})
    tombstones = [(o, k) for o, k, v in got if v is None]
    assert tombstones == [(rep[3], d["key"]) for d, rep in zip(deletes, delete_reports)], (
        "every delete is still readable"
    )
    stamped = markers()
    assert len(stamped) == 11, stamped
    assert all(h[1] & 0x40 for h in stamped[:10]), "the emptied transactions' markers got a horizon"
    horizon = stamped[0][2]
    assert abs(horizon - (time.time() * 1000 + retention_ms)) < retention_ms, horizon
    # The horizon takes the batch's first timestamp field: clients still read each record's own.
    first_delete = delete_reports[0][3]
    c = consumer(b.bootstrap)
    c.assign([TopicPartition(topic, 0, first_delete)])
    # (A tombstone's Message is falsy: its len() is its value's.)
    (m,) = wait_until("a tombstone", lambda: (lambda m: None if m is None else (m,))(poll_one(c, 0.5)))
    c.close()
    assert (m.offset(), m.value(), m.timestamp()[1]) == (first_delete, None, week_ago_ms)
    kc = KafkaConsumer(bootstrap_servers=b.bootstrap, enable_auto_commit=False)
    kc.assign([KafkaTopicPartition(topic, 0)])
    kc.seek(KafkaTopicPartition(topic, 0), first_delete)
    polled = [r for rs in kc.poll(timeout_ms=WAIT_S * 1000, max_records=1).values() for r in rs]
    kc.close()
    assert [(r.offset, r.value, r.timestamp) for r in polled] == [(first_delete, None, week_ago_ms)]

    # After the horizon: the tombstones and the ten markers (the ABORT marker among them, with
    # its transaction index entry) go; the last marker stays. A read_committed consumer still
    # reads the producer's committed records after where the ABORT marker was.
    wait_until(
        "the tombstones and markers to go",
        lambda: with_tombstones() == 15 and len(markers()) == 1,
        timeout=retention_ms / 1000 + WAIT_S * 2,
    )
    assert markers()[0][0] == stamped[-1][0]
    got = read_all(b.bootstrap, topic, 135, **{"isolation.level": "read_committed"})
    assert sorted(v for _, k, v in got if k.startswith(b"key-")) == [b"txn9"] * 15
    low, end = consumer(b.bootstrap).get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (low, end) == (0, high), "offsets do not move"


def test_cleaned_segments_are_merged(broker_factory, unique):
    """Segments the cleaner shrank are merged (up to segment.bytes) at a later pass, as Kafka's
    cleaner groups them: a compacted partition does not keep a file per roll forever."""
    b = broker_factory("--log-cleaner-backoff-ms", "200")
    topic = unique("compacted-merge")
    create_topic(b.bootstrap, topic, partitions=1, config=COMPACTED)
    log_dir = os.path.join(b.data_dir, "logs", f"{topic}-0")

    def segment_files():
        return sorted(n for n in os.listdir(log_dir) if n.endswith(".log"))

    p = producer(b.bootstrap, **{"linger.ms": 5, "batch.num.messages": 20})
    # Every other record is one of ten hot keys: cleaned, each segment keeps about half.
    records = [
        {"key": (f"hot-{i % 20}" if i % 2 == 0 else f"u-{i}").encode(), "value": b"x" * 40}
        for i in range(800)
    ]
    latest = {}
    for r, rep in zip(records, produce_and_flush(p, topic, records)):
        latest[r["key"]] = (rep[3], r["value"])
    produced = len(records)

    def check_latest():
        """What a consumer reads holds the latest record of every key at its offset, and
        nothing that was not produced there."""
        got = read_all(b.bootstrap, topic, len(latest))
        by_key = {}
        for offset, key, value in got:
            assert offset < produced, offset
            by_key[key] = (offset, value)
        assert by_key == latest

    wait_until("the cleaner's first pass", lambda: sum(removed_records(b, topic)) > 0, timeout=WAIT_S * 2)
    after_first_pass = segment_files()
    # New records make the next pass due; it merges the segments the first one shrank.
    more = [{"key": f"more-{i}".encode(), "value": b"m" * 40} for i in range(120)]
    for r, rep in zip(more, produce_and_flush(p, topic, more)):
        latest[r["key"]] = (rep[3], r["value"])
    produced += len(more)
    wait_until(
        "the cleaner to merge segments",
        lambda: len(segment_files()) <= len(after_first_pass) - 4,
        timeout=WAIT_S * 2,
    )
    check_latest()
    merged = segment_files()
    assert all(os.path.getsize(os.path.join(log_dir, n)) <= 4096 for n in merged), merged
    b.kill9()
    b.start()
    check_latest()
    assert len(segment_files()) <= len(merged)


def test_max_compaction_lag_rolls_the_active_segment(broker_factory, unique):
    """KIP-354: with `max.compaction.lag.ms`, a compacted topic's active segment rolls at the
    first append after that lag, so a superseded record does not wait in it forever (segment.ms
    is 7 days and segment.bytes 1 GiB here): the cleaner removes it."""
    b = broker_factory("--log-cleaner-backoff-ms", "200")
    topic = unique("compacted-maxlag")
    create_topic(
        b.bootstrap,
        topic,
        partitions=1,
        config={"cleanup.policy": "compact", "max.compaction.lag.ms": "1000"},
    )
    p = producer(b.bootstrap, **{"linger.ms": 0})
    sent = []
    for value in (b"old", b"new", b"filler"):
        key = b"other" if value == b"filler" else b"k"
        rep = produce_and_flush(p, topic, [{"key": key, "value": value}])[0]
        sent.append((rep[3], key, value))
        time.sleep(1.2)
    expected = [sent[1], sent[2]]
    assert wait_compacted(b.bootstrap, topic, expected) == expected
