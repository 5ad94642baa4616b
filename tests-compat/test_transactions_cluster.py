"""Transactions (issue 13) in a 3-broker cluster with confluent-kafka's transactional producer:
the coordinator of a transactional id is the leader of its `__transaction_state` partition
(Kafka's hash), markers reach partitions led by every broker (WriteTxnMarkers between brokers),
a kill -9 of the coordinator leaves every transaction all or nothing while the producer goes on
with the new one, and a consume-transform-produce loop whose group coordinator, transaction
coordinator and output leaders are different brokers commits its offsets with its output only."""

import time

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

from helpers import WAIT_S, admin_client, consumer, produce_and_flush, producer, wait_until
from test_cluster import (
    FAST,
    create_replicated,
    leader_of,
    offsets_partition,
    preferred_leaders_elected,
)
from test_transactions import produce_in_txn, read_all, txn_producer

TXN_PARTITIONS = 6
OFFSETS_PARTITIONS = 6
ARGS = FAST + (
    "--transaction-state-log-num-partitions", str(TXN_PARTITIONS),
    "--offsets-topic-num-partitions", str(OFFSETS_PARTITIONS),
    "--transaction-abort-timed-out-transaction-cleanup-interval-ms", "500",
)
PARTITIONS = 3


def spread_topic(a, topic):
    """A topic of PARTITIONS partitions, each led by a different broker."""
    create_replicated(a, topic, PARTITIONS)
    ps = wait_until("leaders spread", lambda: preferred_leaders_elected(a, topic, PARTITIONS))
    assert len({p.leader for p in ps.values()}) == PARTITIONS, "partitions led by every broker"


def settled_leaders(a, topic, count):
    """Each partition's leader once every one is led by its preferred replica. Leaders
    elected at creation may still move back to their preferred replica (the cluster's automatic
    preferred-leader elections), which would move a coordinator in the middle of a test."""
    ps = preferred_leaders_elected(a, topic, count)
    return None if ps is None else {i: p.leader for i, p in ps.items()}


def txn_leaders(c, a, unique):
    """The leaders of `__transaction_state`'s partitions, once a first transactional producer
    (its FindCoordinator) had the cluster create the topic."""
    txn_producer(c.bootstrap, unique("probe-tid"))
    return wait_until(
        "every transaction state partition led by its preferred replica",
        lambda: settled_leaders(a, "__transaction_state", TXN_PARTITIONS),
    )


def txn_coordinator(a, tid):
    """The leader of the transactional id's `__transaction_state` partition."""
    return wait_until(
        f"the coordinator of {tid}",
        lambda: leader_of(a, "__transaction_state", offsets_partition(tid, TXN_PARTITIONS)),
    )


def id_led_by(leaders, count, make, wanted):
    """An id (from `make()`) whose partition among `count` is led by a broker in `wanted`."""
    for _ in range(500):
        key = make()
        if leaders[offsets_partition(key, count)] in wanted:
            return key
    raise AssertionError(f"no id led by {wanted} among {leaders}")


def log_has(b, text):
    with open(b.log_path, errors="replace") as f:
        return text in f.read()


def test_commits_and_aborts_span_partitions_led_by_every_broker(cluster_factory, unique):
    """Markers reach the partitions of every broker: a read_committed consumer sees each
    committed record once and no aborted one; read_uncommitted sees the aborted ones too."""
    c = cluster_factory(3, ARGS)
    a = admin_client(c.bootstrap)
    topic = unique("txn-cl")
    spread_topic(a, topic)
    tid = unique("tid")
    p = txn_producer(c.bootstrap, tid)
    coordinator = txn_coordinator(a, tid)
    part = offsets_partition(tid, TXN_PARTITIONS)
    assert log_has(
        c.broker(coordinator), f"coordinating the transactions of __transaction_state partition {part}"
    )

    expected, aborted = set(), set()
    for n, kind in enumerate(["commit", "abort", "commit", "abort", "commit"]):
        values = [f"{kind}{n}-{i}".encode() for i in range(6)]
        p.begin_transaction()
        for i, v in enumerate(values):
            produce_in_txn(p, topic, [v], partition=i % PARTITIONS)
        if kind == "commit":
            p.commit_transaction(WAIT_S)
            expected.update(values)
        else:
            p.flush(WAIT_S)
            p.abort_transaction(WAIT_S)
            aborted.update(values)
    p.begin_transaction()
    for i in range(PARTITIONS):
        produce_in_txn(p, topic, [f"end-{i}".encode()], partition=i)
    p.commit_transaction(WAIT_S)
    expected.update(f"end-{i}".encode() for i in range(PARTITIONS))

    committed = read_all(c.bootstrap, topic, PARTITIONS, "read_committed", until=b"end-2")
    assert len(committed) == len(set(committed)), "a committed record read twice"
    assert set(committed) == expected, sorted(set(committed) ^ expected)[:10]
    everything = read_all(c.bootstrap, topic, PARTITIONS, "read_uncommitted", until=b"end-2")
    assert set(everything) == expected | aborted


def commit(p, budget_s=45):
    """commit_transaction, called again while its error is retriable (librdkafka resumes it)."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            p.commit_transaction(10)
            return
        except KafkaException as e:
            if not e.args[0].retriable() or time.monotonic() > deadline:
                raise


def abort(p, budget_s=45):
    deadline = time.monotonic() + budget_s
    while True:
        try:
            p.abort_transaction(10)
            return
        except KafkaException as e:
            if not e.args[0].retriable() or time.monotonic() > deadline:
                raise


def test_coordinator_killed_mid_stream_every_transaction_is_all_or_nothing(
    cluster_factory, unique
):
    """kill -9 of the transaction coordinator while a producer runs transactions over partitions
    of every broker: the producer goes on against the new coordinator (the new leader of the
    id's `__transaction_state` partition, which finishes what was prepared); every transaction
    is entirely visible to read_committed or not at all, each committed one exactly once."""
    c = cluster_factory(3, ARGS)
    a = admin_client(c.bootstrap)
    topic = unique("txn-kill")
    spread_topic(a, topic)
    tid = unique("tid")
    part = offsets_partition(tid, TXN_PARTITIONS)
    conf = {"transaction.timeout.ms": 20000, "message.timeout.ms": 15000}
    p = txn_producer(c.bootstrap, tid, **conf)
    victim = txn_coordinator(a, tid)
    per_txn = 6
    outcome = {}  # transaction -> committed / aborted / unknown
    committed_after_kill = 0
    killed = False
    n = 0
    deadline = time.monotonic() + 120
    while committed_after_kill < 5:
        assert time.monotonic() < deadline, f"stuck: {outcome}"
        name = f"t{n}"
        n += 1
        try:
            p.begin_transaction()
            for i in range(per_txn):
                produce_in_txn(p, topic, [f"{name}/{i}".encode()], partition=i % PARTITIONS)
            if not killed and sum(1 for o in outcome.values() if o == "committed") >= 5:
                # In the middle of this transaction: records sent, commit not asked yet.
                p.flush(10)
                c.broker(victim).kill9()
                killed = True
            commit(p)
            outcome[name] = "committed"
            committed_after_kill += killed
        except KafkaException as e:
            err = e.args[0]
            outcome[name] = "unknown"
            if err.txn_requires_abort():
                try:
                    abort(p)
                    outcome[name] = "aborted"
                    continue
                except KafkaException:
                    pass
            # Fatal (or abort impossible): a new producer fences this one and settles its
            # transaction, whichever way the coordinator decided it.
            p = txn_producer(c.live_bootstrap(), tid, **conf)
    assert killed

    # The new coordinator is the partition's new leader, which loaded the transactions.
    live = admin_client(c.live_bootstrap())
    new = wait_until(
        "a new coordinator",
        lambda: (lambda l: l if l is not None and l != victim else None)(
            leader_of(live, "__transaction_state", part)
        ),
    )
    assert log_has(
        c.broker(new), f"coordinating the transactions of __transaction_state partition {part}"
    )

    # A sentinel after which every transaction of the id is decided.
    p.begin_transaction()
    for i in range(PARTITIONS):
        produce_in_txn(p, topic, [f"end/{i}".encode()], partition=i)
    commit(p)
    values = read_all(c.live_bootstrap(), topic, PARTITIONS, "read_committed", until=b"end/2")
    assert len(values) == len(set(values)), "a record was read twice"
    parts = {}
    for v in values:
        txn, _, i = v.decode().rpartition("/")
        if txn != "end":
            parts.setdefault(txn, set()).add(int(i))
    half = {t: s for t, s in parts.items() if len(s) != per_txn}
    assert not half, f"transactions only partly visible: {half}"
    lost = [t for t, o in outcome.items() if o == "committed" and t not in parts]
    assert not lost, f"committed transactions not visible: {lost}"
    ghosts = [t for t, o in outcome.items() if o == "aborted" and t in parts]
    assert not ghosts, f"aborted transactions visible: {ghosts}"


def test_consume_transform_produce_with_coordinators_on_different_brokers(
    cluster_factory, unique
):
    """The group's coordinator, the transaction coordinator and the output partitions' leaders
    are different brokers: offsets sent to a transaction are verified with the transaction
    coordinator, become the group's committed offset only when it commits (never when it
    aborts), and the output holds every input record once."""
    c = cluster_factory(3, ARGS)
    a = admin_client(c.bootstrap)
    src, dst = unique("ctp-in"), unique("ctp-out")
    create_replicated(a, src, 1)
    spread_topic(a, dst)
    total = 60
    produce_and_flush(
        producer(c.bootstrap, acks="all"), src, [{"value": f"r{i}".encode()} for i in range(total)]
    )
    txn_led = txn_leaders(c, a, unique)
    # A first group lookup creates __consumer_offsets.
    probe = consumer(c.bootstrap, group=unique("probe"))
    wait_until(
        "the offsets topic",
        lambda: probe.committed([TopicPartition(src, 0)], timeout=5) is not None,
    )
    offsets_led = wait_until(
        "every offsets partition led by its preferred replica",
        lambda: settled_leaders(a, "__consumer_offsets", OFFSETS_PARTITIONS),
    )
    group = id_led_by(offsets_led, OFFSETS_PARTITIONS, lambda: unique("ctp-group"), {1, 2, 3})
    group_coordinator = offsets_led[offsets_partition(group, OFFSETS_PARTITIONS)]
    others = {1, 2, 3} - {group_coordinator}
    tid = id_led_by(txn_led, TXN_PARTITIONS, lambda: unique("ctp-tid"), others)
    txn_coord = txn_led[offsets_partition(tid, TXN_PARTITIONS)]
    assert len({group_coordinator, txn_coord}) == 2
    # The output topic has a partition on each broker, so one is led by neither coordinator.

    p = txn_producer(c.bootstrap, tid)
    cons = consumer(c.bootstrap, group=group, **{"isolation.level": "read_committed"})
    cons.assign([TopicPartition(src, 0, OFFSET_BEGINNING)])

    def committed():
        return cons.committed([TopicPartition(src, 0)], timeout=WAIT_S)[0].offset

    done = 0
    attempt = 0
    aborted = 0
    deadline = time.monotonic() + 60
    while done < total:
        assert time.monotonic() < deadline, f"stuck at {done} of {total}"
        msgs = [m for m in cons.consume(10, 1.0) if m.error() is None]
        if not msgs:
            continue
        attempt += 1
        nxt = msgs[-1].offset() + 1
        p.begin_transaction()
        for i, m in enumerate(msgs):
            produce_in_txn(p, dst, [b"out-" + m.value()], partition=i % PARTITIONS)
        p.send_offsets_to_transaction(
            [TopicPartition(src, 0, nxt)], cons.consumer_group_metadata(), WAIT_S
        )
        if attempt % 3 == 0:
            p.abort_transaction(WAIT_S)
            aborted += 1
            at = committed()
            assert at == (done if done else -1001), f"aborted offsets visible: {at}, not {done}"
            # Read the aborted records again, from the committed offset.
            cons.assign([TopicPartition(src, 0, done if done else OFFSET_BEGINNING)])
            continue
        p.commit_transaction(WAIT_S)
        done = nxt
        assert wait_until("the committed offset", lambda: committed() == nxt)
    assert aborted > 0

    out = read_all(c.bootstrap, dst, PARTITIONS, "read_committed", until=f"out-r{total - 1}".encode())
    expected = [f"out-r{i}".encode() for i in range(total)]
    assert len(out) == len(set(out)), "records output more than once"
    assert sorted(out) == sorted(expected), sorted(set(expected) - set(out))[:10]
    # The aborted attempts are in the log all the same.
    assert len(read_all(c.bootstrap, dst, PARTITIONS, "read_uncommitted")) > total


def raw_txn_api():
    """InitProducerId v0, AddPartitionsToTxn v0 and EndTxn v0 for kafka-python's low-level client
    (2.0 has no classes for them): the raw requests a test needs to send a transactional batch
    that a well-behaved producer never would."""
    from kafka.protocol.api import Request, Response
    from kafka.protocol.types import Array, Int8, Int16, Int32, Int64, Schema, String

    class InitResp(Response):
        API_KEY, API_VERSION = 22, 0
        SCHEMA = Schema(
            ("throttle_time_ms", Int32), ("error_code", Int16),
            ("producer_id", Int64), ("producer_epoch", Int16),
        )

    class InitReq(Request):
        API_KEY, API_VERSION, RESPONSE_TYPE = 22, 0, InitResp
        SCHEMA = Schema(("transactional_id", String("utf-8")), ("transaction_timeout_ms", Int32))

    class AddResp(Response):
        API_KEY, API_VERSION = 24, 0
        SCHEMA = Schema(
            ("throttle_time_ms", Int32),
            ("results", Array(
                ("topic", String("utf-8")),
                ("partitions", Array(("partition", Int32), ("error_code", Int16))))),
        )

    class AddReq(Request):
        API_KEY, API_VERSION, RESPONSE_TYPE = 24, 0, AddResp
        SCHEMA = Schema(
            ("transactional_id", String("utf-8")), ("producer_id", Int64),
            ("producer_epoch", Int16),
            ("topics", Array(("topic", String("utf-8")), ("partitions", Array(Int32)))),
        )

    class EndResp(Response):
        API_KEY, API_VERSION = 26, 0
        SCHEMA = Schema(("throttle_time_ms", Int32), ("error_code", Int16))

    class EndReq(Request):
        API_KEY, API_VERSION, RESPONSE_TYPE = 26, 0, EndResp
        SCHEMA = Schema(
            ("transactional_id", String("utf-8")), ("producer_id", Int64),
            ("producer_epoch", Int16), ("committed", Int8),
        )

    return InitReq, AddReq, EndReq


def txn_batch(producer_id, epoch, sequence, value):
    """One transactional record batch, as bytes."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=True, producer_id=producer_id,
        producer_epoch=epoch, base_sequence=sequence, batch_size=1 << 20,
    )
    b.append(0, timestamp=int(time.time() * 1000), key=None, value=value, headers=[])
    return bytes(b.build())


def test_a_first_transactional_batch_is_verified_with_a_remote_coordinator(cluster_factory, unique):
    """KIP-890 part 1 across brokers: the leader of a partition asks the producer's transaction
    coordinator, another broker, before a transactional batch opens a transaction there; one
    for a partition never added, or a late one after the transaction ended, is refused with
    INVALID_TXN_STATE and leaves nothing in the log."""
    from kafka.protocol.produce import ProduceRequest

    from test_cluster import send_to

    INVALID_TXN_STATE = 48
    c = cluster_factory(3, ARGS)
    a = admin_client(c.bootstrap)
    topic = unique("txn-verify")
    spread_topic(a, topic)
    txn_leaders(c, a, unique)
    tid = unique("tid")
    coordinator = txn_coordinator(a, tid)
    partition = next(i for i in range(PARTITIONS) if leader_of(a, topic, i) != coordinator)
    leader = leader_of(a, topic, partition)
    InitReq, AddReq, EndReq = raw_txn_api()

    def init():
        r = send_to(c, coordinator, InitReq(transactional_id=tid, transaction_timeout_ms=60_000))
        return (r["producer_id"], r["producer_epoch"]) if r["error_code"] == 0 else None

    pid, epoch = wait_until("InitProducerId", init)

    def produce(sequence, value):
        r = send_to(c, leader, ProduceRequest[3](
            transactional_id=tid, required_acks=-1, timeout=10_000,
            topics=[(topic, [(partition, txn_batch(pid, epoch, sequence, value))])],
        ))
        ((p,),) = [t["partitions"] for t in r["topics"]]
        return p["error_code"], p["offset"]

    # The log holds the leader's term-start control batch: the end before anything is produced.
    every = consumer(c.bootstrap, **{"isolation.level": "read_uncommitted"})
    tp = TopicPartition(topic, partition)
    _, start = every.get_watermark_offsets(tp, timeout=5, cached=False)

    assert produce(0, b"not-added")[0] == INVALID_TXN_STATE
    added = send_to(c, coordinator, AddReq(
        transactional_id=tid, producer_id=pid, producer_epoch=epoch, topics=[(topic, [partition])],
    ))
    assert [p["error_code"] for t in added["results"] for p in t["partitions"]] == [0]
    # Nothing of the refused batch was written: the accepted one is at the old end.
    assert produce(0, b"in-txn") == (0, start)

    ended = send_to(c, coordinator, EndReq(
        transactional_id=tid, producer_id=pid, producer_epoch=epoch, committed=0,
    ))
    assert ended["error_code"] == 0
    # Once the ABORT marker (after the batch) is in the partition, the LSO is past it.
    cons = consumer(c.bootstrap, **{"isolation.level": "read_committed"})
    wait_until(
        "the abort marker in the partition",
        lambda: cons.get_watermark_offsets(tp, timeout=5, cached=False) == (0, start + 2),
    )
    assert produce(1, b"late")[0] == INVALID_TXN_STATE
    # The high watermark (read_uncommitted) shows that nothing was appended after the marker.
    low_high = every.get_watermark_offsets(tp, timeout=5, cached=False)
    assert low_high == (0, start + 2), low_high
