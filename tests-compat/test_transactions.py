"""Transactions (issue 13) with confluent-kafka's transactional producer: commit and abort as a
read_committed and a read_uncommitted consumer see them, offsets sent to a transaction, zombie
fencing, the coordinator's timeout abort, a kill -9 in the middle of transactions, and a
consume-transform-produce loop across a broker restart checked for exactly-once output."""

import threading
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import ConfigResource

from helpers import (
    WAIT_S,
    admin_client,
    assert_no_more,
    assign_from_beginning,
    consume_n,
    consumer,
    create_topic,
    poll_one,
    produce_and_flush,
    producer,
    wait_until,
)

# A short broker timer so that timed-out transactions are aborted promptly.
FAST_CLEANUP = ("--transaction-abort-timed-out-transaction-cleanup-interval-ms", "100")


def txn_producer(bootstrap, transactional_id, **conf):
    p = producer(
        bootstrap,
        **{
            "transactional.id": transactional_id,
            "acks": "all",
            "retry.backoff.ms": 100,
            **conf,
        },
    )
    p.init_transactions(WAIT_S)
    return p


def produce_in_txn(p, topic, values, partition=None):
    for v in values:
        kwargs = {} if partition is None else {"partition": partition}
        while True:
            try:
                p.produce(topic, value=v, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)


def drain(c, wait=3.0):
    """Everything that arrives until nothing has for `wait` seconds."""
    out = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        m = poll_one(c, 0.2)
        if m is not None:
            out.append(m.value())
            deadline = time.monotonic() + wait
    return out


def read_all(bootstrap, topic, partitions, isolation, until=None, timeout=WAIT_S):
    """Values of `topic` from the beginning with `isolation`; with `until`, polls until that
    value arrives (and then drains), else until nothing more comes."""
    c = consumer(bootstrap, **{"isolation.level": isolation})
    assign_from_beginning(c, topic, range(partitions))
    out = []
    if until is not None:
        deadline = time.monotonic() + timeout
        while until not in out:
            assert time.monotonic() < deadline, f"{until!r} never arrived; got {len(out)} records"
            m = poll_one(c, 0.5)
            if m is not None:
                out.append(m.value())
    out += drain(c)
    c.close()
    return out


def test_read_committed_sees_committed_records_once_and_never_aborted_ones(broker, unique):
    topic = unique("txn")
    create_topic(broker.bootstrap, topic, partitions=2)
    p = txn_producer(broker.bootstrap, unique("tid"))
    p.begin_transaction()
    produce_in_txn(p, topic, [f"a{i}".encode() for i in range(10)])
    p.commit_transaction(WAIT_S)
    p.begin_transaction()
    produce_in_txn(p, topic, [f"b{i}".encode() for i in range(10)])
    p.flush(WAIT_S)
    p.abort_transaction(WAIT_S)
    p.begin_transaction()
    produce_in_txn(p, topic, [f"c{i}".encode() for i in range(10)] + [b"end"])
    p.commit_transaction(WAIT_S)

    committed = read_all(broker.bootstrap, topic, 2, "read_committed", until=b"end")
    expected = {f"a{i}".encode() for i in range(10)} | {f"c{i}".encode() for i in range(10)}
    expected.add(b"end")
    assert sorted(committed) == sorted(expected), committed
    assert not [v for v in committed if v.startswith(b"b")]

    uncommitted = read_all(broker.bootstrap, topic, 2, "read_uncommitted", until=b"end")
    assert sorted(uncommitted) == sorted(expected | {f"b{i}".encode() for i in range(10)})


def test_an_open_transaction_holds_read_committed_consumers_back(broker, unique):
    topic = unique("txn-lso")
    create_topic(broker.bootstrap, topic, partitions=1)
    plain = producer(broker.bootstrap)
    produce_and_flush(plain, topic, [{"value": b"before"}])
    p = txn_producer(broker.bootstrap, unique("tid"))
    p.begin_transaction()
    produce_in_txn(p, topic, [b"in-txn"])
    p.flush(WAIT_S)
    produce_and_flush(plain, topic, [{"value": b"after"}])

    rc = consumer(broker.bootstrap, **{"isolation.level": "read_committed"})
    assign_from_beginning(rc, topic, [0])
    assert [m.value() for m in consume_n(rc, 1)] == [b"before"]
    assert_no_more(rc)
    ru = consumer(broker.bootstrap, **{"isolation.level": "read_uncommitted"})
    assign_from_beginning(ru, topic, [0])
    assert [m.value() for m in consume_n(ru, 3)] == [b"before", b"in-txn", b"after"]

    p.commit_transaction(WAIT_S)
    assert [m.value() for m in consume_n(rc, 2)] == [b"in-txn", b"after"]
    assert_no_more(rc)


def test_offsets_sent_to_a_transaction_are_committed_with_it_only(broker, unique):
    src = unique("txn-src")
    create_topic(broker.bootstrap, src, partitions=1)
    group = unique("txn-group")
    c = consumer(broker.bootstrap, group=group, **{"isolation.level": "read_committed"})

    def committed():
        return c.committed([TopicPartition(src, 0)], timeout=10)[0].offset

    p = txn_producer(broker.bootstrap, unique("tid"))
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(src, 0, 5)], c.consumer_group_metadata(), WAIT_S)
    p.abort_transaction(WAIT_S)
    assert committed() < 0, "offsets of an aborted transaction became visible"

    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(src, 0, 7)], c.consumer_group_metadata(), WAIT_S)
    p.commit_transaction(WAIT_S)
    assert wait_until("the committed offset", lambda: committed() == 7)


def test_a_member_of_an_older_generation_cannot_commit_offsets_in_a_transaction(broker, unique):
    """KIP-447's zombie fencing: offsets sent to a transaction with the group metadata of a
    generation the group has left (its partitions may be someone else's now) are refused, so the
    transaction aborts instead of committing what the new owner also processes; the current
    generation's metadata commits."""
    src = unique("txn-src")
    create_topic(broker.bootstrap, src, partitions=2)
    group = unique("txn-group")
    a = consumer(broker.bootstrap, group=group)
    a.subscribe([src])
    wait_until("the first member assigned", lambda: a.poll(0.2) is None and a.assignment())
    stale = a.consumer_group_metadata()
    b = consumer(broker.bootstrap, group=group)
    b.subscribe([src])

    def both_assigned():
        a.poll(0.1)
        b.poll(0.1)
        return len(a.assignment()) == 1 and len(b.assignment()) == 1

    wait_until("the partitions shared by both members", both_assigned)
    p = txn_producer(broker.bootstrap, unique("tid"))
    p.begin_transaction()
    with pytest.raises(KafkaException) as refused:
        p.send_offsets_to_transaction([TopicPartition(src, 0, 5)], stale, WAIT_S)
    assert refused.value.args[0].code() == KafkaError.ILLEGAL_GENERATION, refused.value
    p.abort_transaction(WAIT_S)

    (mine,) = a.assignment()
    p.begin_transaction()
    p.send_offsets_to_transaction(
        [TopicPartition(src, mine.partition, 7)], a.consumer_group_metadata(), WAIT_S
    )
    p.commit_transaction(WAIT_S)

    def committed():
        return a.committed([TopicPartition(src, mine.partition)], timeout=10)[0].offset

    assert wait_until("the current generation's offset", lambda: committed() == 7)
    # Nothing of the refused transaction: partition 0 has 7 (it is a's) or nothing.
    first = a.committed([TopicPartition(src, 0)], timeout=10)[0].offset
    assert first in (7 if mine.partition == 0 else -1001,), first


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(broker, unique):
    topic = unique("txn-fence")
    create_topic(broker.bootstrap, topic, partitions=1)
    tid = unique("tid")
    old = txn_producer(broker.bootstrap, tid)
    old.begin_transaction()
    produce_in_txn(old, topic, [f"zombie{i}".encode() for i in range(5)])
    old.flush(WAIT_S)

    new = txn_producer(broker.bootstrap, tid)
    new.begin_transaction()
    produce_in_txn(new, topic, [b"new", b"end"])
    new.commit_transaction(WAIT_S)

    fenced = None
    try:
        produce_in_txn(old, topic, [b"zombie-late"])
        old.commit_transaction(WAIT_S)
    except KafkaException as e:
        fenced = e.args[0]
    assert fenced is not None, "the fenced producer committed"
    assert fenced.fatal() or fenced.txn_requires_abort(), fenced

    seen = read_all(broker.bootstrap, topic, 1, "read_committed", until=b"end")
    assert seen == [b"new", b"end"], seen


def test_the_coordinator_aborts_a_transaction_past_its_timeout(broker_factory, unique):
    b = broker_factory(*FAST_CLEANUP)
    topic = unique("txn-timeout")
    create_topic(b.bootstrap, topic, partitions=1)
    stuck = txn_producer(b.bootstrap, unique("tid"), **{"transaction.timeout.ms": 1500})
    stuck.begin_transaction()
    produce_in_txn(stuck, topic, [f"stuck{i}".encode() for i in range(5)])
    stuck.flush(WAIT_S)

    # Committed records after the stuck ones are readable by read_committed only once the stuck
    # transaction is aborted (it holds the last stable offset back until then).
    other = txn_producer(b.bootstrap, unique("tid"))
    other.begin_transaction()
    produce_in_txn(other, topic, [b"later", b"end"])
    other.commit_transaction(WAIT_S)
    seen = read_all(b.bootstrap, topic, 1, "read_committed", until=b"end")
    assert seen == [b"later", b"end"], seen

    failed = None
    try:
        stuck.commit_transaction(WAIT_S)
    except KafkaException as e:
        failed = e.args[0]
    assert failed is not None, "a transaction aborted by its timeout was committed"
    assert len(read_all(b.bootstrap, topic, 1, "read_uncommitted", until=b"end")) == 7


def test_after_kill_9_every_transaction_is_all_or_nothing(broker_factory, unique):
    b = broker_factory(*FAST_CLEANUP)
    topic = unique("txn-kill")
    create_topic(b.bootstrap, topic, partitions=3)
    tids = [unique("tid") for _ in range(3)]
    per_txn = 6
    acked = set()  # transactions whose commit returned
    started = set()
    stop = threading.Event()
    errors = []

    def run(tid):
        try:
            p = txn_producer(b.bootstrap, tid, **{"message.timeout.ms": 5000})
            n = 0
            while not stop.is_set():
                name = f"{tid}/{n}"
                started.add(name)
                p.begin_transaction()
                # Spread over every partition: a half-applied commit would show as a part.
                for i in range(per_txn):
                    produce_in_txn(p, topic, [f"{name}/{i}".encode()], partition=i % 3)
                p.commit_transaction(10)
                acked.add(name)
                n += 1
        except KafkaException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in tids]
    for t in threads:
        t.start()
    # Every producer must be initialised before the kill: one still in init_transactions would
    # finish its InitProducerId after the restart and (rightly) fence its replacement below.
    wait_until(
        "three committed transactions per producer",
        lambda: all(sum(a.startswith(f"{t}/") for a in list(acked)) >= 3 for t in tids),
    )
    b.kill9()
    stop.set()
    for t in threads:
        t.join(60)
    b.start()

    # A new producer of each id finishes or aborts what its predecessor left, then commits a
    # sentinel after which everything of that id is decided.
    for tid in tids:
        p = txn_producer(b.bootstrap, tid)
        p.begin_transaction()
        produce_in_txn(p, topic, [f"{tid}/end".encode()], partition=0)
        p.commit_transaction(WAIT_S)

    c = consumer(b.bootstrap, **{"isolation.level": "read_committed"})
    assign_from_beginning(c, topic, range(3))
    values = []
    deadline = time.monotonic() + WAIT_S
    while not all(f"{t}/end".encode() in values for t in tids):
        assert time.monotonic() < deadline, "sentinels never arrived"
        m = poll_one(c, 0.5)
        if m is not None:
            values.append(m.value())
    values += drain(c)

    assert len(values) == len(set(values)), "a record was read twice"
    parts = {}
    for v in values:
        name, _, i = v.decode().rpartition("/")
        if i != "end":
            parts.setdefault(name, set()).add(int(i))
    half = {n: s for n, s in parts.items() if len(s) != per_txn}
    assert not half, f"transactions only partly visible after kill -9: {half}"
    missing = acked - set(parts)
    assert not missing, f"acknowledged commits lost: {sorted(missing)}"
    assert set(parts) <= started


def test_consume_transform_produce_across_restarts_is_exactly_once(broker_factory, unique):
    b = broker_factory(*FAST_CLEANUP)
    src, dst = unique("ctp-in"), unique("ctp-out")
    create_topic(b.bootstrap, src, partitions=1)
    create_topic(b.bootstrap, dst, partitions=2)
    total = 300
    produce_and_flush(producer(b.bootstrap), src, [{"value": f"r{i}".encode()} for i in range(total)])
    group, tid = unique("ctp-group"), unique("ctp-tid")
    restarts_at = {60, 150, 240}
    restarted = set()

    def session():
        """A consumer at the group's committed offset and a producer that fenced its
        predecessor (and so aborted what it left open)."""
        p = txn_producer(b.bootstrap, tid, **{"message.timeout.ms": 10000})
        c = consumer(b.bootstrap, group=group, **{"isolation.level": "read_committed"})
        at = c.committed([TopicPartition(src, 0)], timeout=WAIT_S)[0].offset
        c.assign([TopicPartition(src, 0, at if at >= 0 else OFFSET_BEGINNING)])
        return p, c

    p, c = session()
    done = 0
    deadline = time.monotonic() + 180
    while done < total:
        assert time.monotonic() < deadline, f"stuck at {done} of {total}"
        try:
            msgs = c.consume(25, 1.0)
            msgs = [m for m in msgs if m.error() is None]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                produce_in_txn(p, dst, [b"out-" + m.value()])
            nxt = msgs[-1].offset() + 1
            crossing = [r for r in sorted(restarts_at - restarted) if r <= nxt]
            if crossing:
                # Die in the middle of this transaction: nothing of it may survive.
                p.flush(10)
                restarted.add(crossing[0])
                b.kill9()
                b.start()
                raise KafkaException("restarted")
            p.send_offsets_to_transaction(
                [TopicPartition(src, 0, nxt)], c.consumer_group_metadata(), WAIT_S
            )
            p.commit_transaction(WAIT_S)
            done = nxt
        except KafkaException:
            try:
                p.purge()
                c.close()
            except Exception:  # closed already, or the broker gone
                pass
            p, c = session()
            pos = c.committed([TopicPartition(src, 0)], timeout=WAIT_S)[0].offset
            done = max(pos, 0)
    assert restarted == restarts_at

    out = read_all(b.bootstrap, dst, 2, "read_committed")
    expected = [f"out-r{i}".encode() for i in range(total)]
    dupes = {v for v in out if out.count(v) > 1}
    assert not dupes, f"records output more than once: {sorted(dupes)[:10]}"
    assert sorted(out) == sorted(expected), f"{len(out)} of {total}; missing {sorted(set(expected) - set(out))[:10]}"
    # The aborted attempts are in the log all the same: read_uncommitted sees them.
    assert len(read_all(b.bootstrap, dst, 2, "read_uncommitted")) > total


def test_the_transaction_state_topic_asked_for_first_is_created_as_its_coordinator_would(
    broker_factory, unique
):
    """A Metadata request that may auto-create topics and names `__transaction_state` before any
    transactional producer has used the broker creates it as Kafka does: with the broker's
    transaction.state.log.num.partitions and the topic's own configs (compacted), not as an
    ordinary one-partition topic; transactions then work on it."""
    b = broker_factory("--transaction-state-log-num-partitions", "7")
    admin = admin_client(b.bootstrap)
    name = "__transaction_state"

    def created():
        t = admin.list_topics(name, timeout=10).topics.get(name)
        return t if t is not None and t.error is None else None

    t = wait_until("the transaction state topic auto-created", created)
    assert len(t.partitions) == 7, t.partitions
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    configs = admin.describe_configs([res])[res].result(WAIT_S)
    assert configs["cleanup.policy"].value == "compact", configs["cleanup.policy"]

    topic = unique("txn-after-md")
    create_topic(b.bootstrap, topic, partitions=1)
    p = txn_producer(b.bootstrap, unique("tid"))
    p.begin_transaction()
    produce_in_txn(p, topic, [b"a", b"end"])
    p.commit_transaction(WAIT_S)
    assert read_all(b.bootstrap, topic, 1, "read_committed", until=b"end") == [b"a", b"end"]
