"""confluent-kafka consumer groups: rebalancing with members leaving/joining, commits, resume
after a broker restart, broadcast to several groups, and group-less assign()."""

import time
from collections import defaultdict

import pytest
from confluent_kafka import KafkaException, TopicPartition

from helpers import (
    admin_client,
    assert_no_more,
    assign_from_beginning,
    consume_n,
    consumer,
    create_topic,
    poll_one,
    produce_and_flush,
    producer,
)

PARTITIONS = 6


class Member:
    """One group member that processes a record and then commits it synchronously."""

    def __init__(self, name, bootstrap, group, topic, strategy):
        self.name = name
        self.c = consumer(
            bootstrap,
            group,
            **{
                "partition.assignment.strategy": strategy,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 1000,
                "client.id": name,
            },
        )
        self.c.subscribe([topic])
        self.seen = []  # (partition, offset, value)
        self.failed_commits = set()  # (partition, offset) whose commit raised
        self.closed = False

    def step(self, timeout=0.05):
        m = poll_one(self.c, timeout)
        if m is None:
            return
        self.seen.append((m.partition(), m.offset(), m.value()))
        try:
            # Synchronous commit of offset+1 right after "processing" this record.
            self.c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            # A commit can legitimately be rejected while the group rebalances (e.g.
            # REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION); that record may then be redelivered
            # to the partition's next owner. Only such records are allowed to appear twice.
            self.failed_commits.add((m.partition(), m.offset()))
            print(f"{self.name}: commit of p{m.partition()}@{m.offset()} failed: {e}")

    def assigned(self):
        return {tp.partition for tp in self.c.assignment()}

    def close(self):
        if not self.closed:
            self.c.close()
            self.closed = True


def _pump(members, until, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            if not m.closed:
                m.step()
        if until():
            return
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _stable_assignment(members):
    """All live members together own every partition exactly once and each owns one."""
    live = [m for m in members if not m.closed]
    owned = [p for m in live for p in m.assigned()]
    return sorted(owned) == list(range(PARTITIONS)) and all(m.assigned() for m in live)


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_group_members_leave_and_join_every_record_once(broker, unique, strategy):
    topic = unique(f"grp-{strategy}")
    group = unique("g")
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    p = producer(broker.bootstrap, acks="all")
    n_half = 600
    first = [{"partition": i % PARTITIONS, "value": f"{i}".encode()} for i in range(n_half)]
    second = [{"partition": i % PARTITIONS, "value": f"{i}".encode()} for i in range(n_half, 2 * n_half)]
    produce_and_flush(p, topic, first)

    members = [Member(f"m{i}", broker.bootstrap, group, topic, strategy) for i in range(3)]
    all_members = list(members)
    try:
        total_seen = lambda: sum(len(m.seen) for m in all_members)  # noqa: E731
        # Let the group settle with 3 members, and make progress on the first half.
        _pump(members, lambda: _stable_assignment(members), 60, "3 members sharing 6 partitions")
        _pump(members, lambda: total_seen() >= n_half // 3, 60, "a third of the first half")

        # One member leaves mid-way (close() sends LeaveGroup) and a new one joins.
        leaver = max(members, key=lambda m: len(m.assigned()))
        leaver.close()
        newcomer = Member("m3", broker.bootstrap, group, topic, strategy)
        all_members.append(newcomer)
        members = [m for m in members if m is not leaver] + [newcomer]
        _pump(members, lambda: _stable_assignment(members) and newcomer.assigned(), 60,
              "rebalance onto the new member")

        produce_and_flush(p, topic, second)
        expected = {(r["partition"], int(r["value"])) for r in first + second}
        distinct = lambda: {(pt, int(v)) for m in all_members for pt, _o, v in m.seen}  # noqa: E731
        _pump(members, lambda: distinct() >= expected, 90, "all records consumed")
        # Give any stray redelivery a moment to show up before judging duplicates.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            for m in members:
                m.step()
    finally:
        for m in all_members:
            m.close()

    seen = [(pt, off, v) for m in all_members for pt, off, v in m.seen]
    failed = set().union(*(m.failed_commits for m in all_members))
    # No gaps: every offset 0..199 of every partition was processed, with the right value.
    per_part = defaultdict(dict)
    for pt, off, v in seen:
        assert per_part[pt].setdefault(off, v) == v, f"p{pt}@{off} changed value"
    for pt in range(PARTITIONS):
        assert sorted(per_part[pt]) == list(range(2 * n_half // PARTITIONS)), f"gap in partition {pt}"
        assert [int(per_part[pt][o]) for o in sorted(per_part[pt])] == list(range(pt, 2 * n_half, PARTITIONS))
    # Exactly once: with a synchronous commit after each record, a record is only seen twice if
    # its own commit was rejected during a rebalance.
    counts = defaultdict(int)
    for pt, off, _v in seen:
        counts[(pt, off)] += 1
    dupes = {k: c for k, c in counts.items() if c > 1}
    assert set(dupes) <= failed, f"records delivered twice despite a successful commit: {sorted(dupes)[:10]}"
    # The newcomer really took over work, and each member saw its partitions in offset order.
    assert newcomer.seen, "the member that joined mid-way consumed nothing"
    for m in all_members:
        last = {}
        for pt, off, _v in m.seen:
            assert off > last.get(pt, -1) or (pt, off) in failed or (pt, last.get(pt)) in failed, (
                f"{m.name} went backwards on p{pt}: {last.get(pt)} -> {off}"
            )
            last[pt] = off


def _group_state(bootstrap, group):
    a = admin_client(bootstrap)
    desc = a.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    return str(desc.state).rsplit(".", 1)[-1]


def test_commit_accepted_while_group_prepares_rebalance(broker, unique):
    """A member of the current generation can still commit after a rebalance has started.

    Kafka accepts OffsetCommit from the current generation while the group is in
    PreparingRebalance (only CompletingRebalance answers REBALANCE_IN_PROGRESS). Clients rely on
    it: the Java consumer commits synchronously in onPartitionsRevoked before rejoining, and
    librdkafka members keep processing and committing until their next heartbeat tells them about
    the rebalance. A broker that rejects these commits makes every rebalance redeliver records.
    """
    topic = unique("commit-prep")
    group = unique("g")
    create_topic(broker.bootstrap, topic, partitions=2)
    p = producer(broker.bootstrap)
    produce_and_flush(p, topic, [{"partition": i % 2, "value": f"{i}".encode()} for i in range(10)])

    a = consumer(broker.bootstrap, group, **{"max.poll.interval.ms": 60000, "session.timeout.ms": 30000})
    a.subscribe([topic])
    consume_n(a, 10)
    assert _group_state(broker.bootstrap, group) == "STABLE"

    # b joins; a is not polled, so it does not rejoin and the group stays in PreparingRebalance.
    b = consumer(broker.bootstrap, group)
    b.subscribe([topic])
    deadline = time.monotonic() + 30
    state = None
    while time.monotonic() < deadline:
        b.poll(0.2)
        state = _group_state(broker.bootstrap, group)
        if state == "PREPARING_REBALANCING":
            break
    assert state == "PREPARING_REBALANCING", state

    a.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 3)], asynchronous=False)
    got = a.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert [(tp.partition, tp.offset) for tp in got] == [(0, 5), (1, 3)]


def test_committed_offset_survives_broker_restart(broker_factory, unique):
    b = broker_factory()
    topic = unique("resume")
    group = unique("g")
    create_topic(b.bootstrap, topic, partitions=2)
    p = producer(b.bootstrap, acks="all")
    produce_and_flush(p, topic, [{"partition": i % 2, "value": f"{i}".encode()} for i in range(20)])
    p.flush()

    c = consumer(b.bootstrap, group)
    c.subscribe([topic])
    msgs = consume_n(c, 20)
    # Commit: partition 0 up to (not including) offset 4, partition 1 up to offset 7.
    c.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 7)], asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert [(tp.partition, tp.offset) for tp in committed] == [(0, 4), (1, 7)]
    assert len(msgs) == 20
    c.close()

    b.restart()

    c2 = consumer(b.bootstrap, group)
    committed = c2.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=20)
    assert [(tp.partition, tp.offset) for tp in committed] == [(0, 4), (1, 7)]
    c2.subscribe([topic])
    msgs = consume_n(c2, (10 - 4) + (10 - 7), timeout=60)
    got = defaultdict(list)
    for m in msgs:
        got[m.partition()].append((m.offset(), m.value()))
    assert got[0] == [(o, f"{2 * o}".encode()) for o in range(4, 10)]
    assert got[1] == [(o, f"{2 * o + 1}".encode()) for o in range(7, 10)]
    assert_no_more(c2, wait=1.0)
    c2.close()
    p2 = producer(b.bootstrap, acks="all")
    reports = produce_and_flush(p2, topic, [{"partition": 0, "value": b"after-restart"}])
    assert reports[0][3] == 10, "log end offset after restart must continue at 10"


def test_broadcast_to_two_groups(broker, unique):
    topic = unique("broadcast")
    create_topic(broker.bootstrap, topic, partitions=3)
    p = producer(broker.bootstrap)
    records = [{"key": f"k{i}".encode(), "value": f"{i}".encode()} for i in range(150)]
    produce_and_flush(p, topic, records)

    # Both groups consume concurrently (polled round-robin from this thread).
    groups = [unique("ga"), unique("gb")]
    cs = {g: consumer(broker.bootstrap, g) for g in groups}
    got = {g: [] for g in groups}
    for c in cs.values():
        c.subscribe([topic])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(len(v) < 150 for v in got.values()):
        for g, c in cs.items():
            m = poll_one(c, 0.1)
            if m is not None:
                got[g].append(int(m.value()))
    for g, c in cs.items():
        # Nothing beyond the 150 records either.
        end = time.monotonic() + 1
        while time.monotonic() < end:
            m = poll_one(c, 0.1)
            if m is not None:
                got[g].append(int(m.value()))
        c.close()
    for g, values in got.items():
        assert sorted(values) == list(range(150)), f"group {g} did not see every record exactly once"


def test_assign_without_group_membership(broker, unique):
    """Two assign()-only consumers (they never join a group or commit) both read everything,
    starting at explicit offsets."""
    topic = unique("assign")
    create_topic(broker.bootstrap, topic, partitions=2)
    p = producer(broker.bootstrap)
    produce_and_flush(p, topic, [{"partition": i % 2, "value": f"{i}".encode()} for i in range(40)])

    a = consumer(broker.bootstrap)
    assign_from_beginning(a, topic, [0, 1])
    got_a = sorted(int(m.value()) for m in consume_n(a, 40))
    assert got_a == list(range(40))

    b = consumer(broker.bootstrap)
    b.assign([TopicPartition(topic, 1, 15)])  # partition 1 only, from offset 15
    msgs = consume_n(b, 5)
    assert [(m.partition(), m.offset(), int(m.value())) for m in msgs] == [
        (1, o, 2 * o + 1) for o in range(15, 20)
    ]
    assert_no_more(b, wait=1.0)
    a.close()
    b.close()
