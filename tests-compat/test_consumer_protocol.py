"""The consumer group protocol (KIP-848, librdkafka's group.protocol=consumer): members join and
leave with partitions moving incrementally (a member keeps consuming the partitions it keeps),
static members, committed offsets, regex subscriptions picking up new topics, and the admin
views (ConsumerGroupDescribe, ListGroups v5 types)."""

import time

import pytest

from confluent_kafka import ConsumerGroupState, ConsumerGroupType, TopicPartition

from helpers import (
    WAIT_S,
    admin_client,
    consume_n,
    consumer,
    create_topic,
    poll_one,
    produce_and_flush,
    producer,
)

# Members learn of a new assignment on their next heartbeat: a short interval keeps tests quick.
FAST_HEARTBEAT = ("--group-consumer-heartbeat-interval-ms", "300")


class Member:
    """A consumer-protocol member that records its rebalance callbacks and what it consumed."""

    def __init__(self, bootstrap, group, topics, name, **conf):
        self.name = name
        self.events = []  # ("assign" | "revoke", sorted partitions)
        self.seen = []  # (partition, value)
        self.c = consumer(
            bootstrap,
            group,
            **{"group.protocol": "consumer", "client.id": name, **conf},
        )
        self.c.subscribe(
            topics,
            on_assign=lambda _c, ps: self.events.append(("assign", sorted(p.partition for p in ps))),
            on_revoke=lambda _c, ps: self.events.append(("revoke", sorted(p.partition for p in ps))),
        )

    def step(self, timeout=0.05):
        m = poll_one(self.c, timeout)
        if m is not None:
            self.seen.append((m.partition(), m.value()))

    def assigned(self):
        return {tp.partition for tp in self.c.assignment()}

    def revoked(self):
        return {p for kind, ps in self.events if kind == "revoke" for p in ps}


def pump(members, until, what, timeout=WAIT_S, each_step=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.step()
            if each_step is not None:
                each_step(m)
        if until():
            return
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: " + ", ".join(
        f"{m.name}={sorted(m.assigned())} events={m.events}" for m in members))


def split_between(members, partitions):
    def check():
        owned = [m.assigned() for m in members]
        return all(owned) and sorted(p for o in owned for p in o) == list(range(partitions))
    return check


def test_partitions_move_incrementally_as_members_join_and_leave(broker_factory, unique):
    b = broker_factory(*FAST_HEARTBEAT)
    topic, group = unique("kip848"), unique("g")
    create_topic(b.bootstrap, topic, partitions=6)
    p = producer(b.bootstrap)

    a = Member(b.bootstrap, group, [topic], "a")
    pump([a], lambda: a.assigned() == set(range(6)), "a to own every partition")

    # While b joins, a must never lose the partitions it keeps: checked on every poll.
    bm = Member(b.bootstrap, group, [topic], "b")
    low_water = {"a": set(range(6))}

    def watch(m):
        if m is a:
            low_water["a"] &= a.assigned()

    pump([a, bm], split_between([a, bm], 6), "a and b to share the partitions", each_step=watch)
    kept = a.assigned()
    moved = bm.assigned()
    assert len(kept) == 3 and len(moved) == 3
    # a gave up exactly what b got, and nothing else: no stop-the-world revocation of everything.
    assert a.revoked() == moved
    assert kept <= low_water["a"], f"a lost a partition it kept: {low_water['a']} vs {kept}"
    assert bm.revoked() == set()

    # a still consumes its partitions after the rebalance; b consumes its new ones.
    produce_and_flush(p, topic, [{"value": f"r{i}".encode(), "partition": i} for i in range(6)])
    pump([a, bm], lambda: len(a.seen) + len(bm.seen) >= 6, "the six records")
    assert {part for part, _ in a.seen} == kept
    assert {part for part, _ in bm.seen} == moved

    # b leaves: a gets b's partitions added, without giving up its own.
    bm.c.close()
    events_before = len(a.events)
    pump([a], lambda: a.assigned() == set(range(6)), "a to get b's partitions back")
    assert all(kind == "assign" for kind, _ in a.events[events_before:]), a.events


def test_a_static_member_gets_its_partitions_back_without_a_rebalance(broker_factory, unique):
    b = broker_factory(*FAST_HEARTBEAT)
    topic, group = unique("static848"), unique("g")
    create_topic(b.bootstrap, topic, partitions=4)

    def member(name, instance):
        return Member(b.bootstrap, group, [topic], name,
                      **{"group.instance.id": instance})

    a = member("a", "instance-a")
    pump([a], lambda: a.assigned() == set(range(4)), "a to own every partition")
    s = member("s", "instance-s")
    pump([a, s], split_between([a, s], 4), "a and s to share the partitions")
    a_parts, s_parts = a.assigned(), s.assigned()

    # A static member's close() is a temporary leave (member epoch -2): its partitions stay
    # reserved for it, so a is not handed them and sees no rebalance at all.
    s.c.close()
    a_events = len(a.events)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        a.step()
    assert a.assigned() == a_parts
    assert a.events[a_events:] == []

    back = member("s2", "instance-s")
    pump([a, back], lambda: back.assigned() == s_parts, "the restarted instance to get its partitions")
    assert a.assigned() == a_parts
    assert a.events[a_events:] == []

    admin = admin_client(b.bootstrap)  # kept alive until the result is in
    desc = admin.describe_consumer_groups([group])[group].result(WAIT_S)
    assert {m.group_instance_id for m in desc.members} == {"instance-a", "instance-s"}


def test_committed_offsets_carry_over_to_the_next_member(broker_factory, unique):
    b = broker_factory(*FAST_HEARTBEAT)
    topic, group = unique("commit848"), unique("g")
    create_topic(b.bootstrap, topic, partitions=1)
    produce_and_flush(producer(b.bootstrap), topic,
                      [{"value": f"v{i}".encode()} for i in range(10)])

    first = Member(b.bootstrap, group, [topic], "first")
    pump([first], lambda: len(first.seen) >= 4, "the first records")
    first.c.commit(asynchronous=False)  # OffsetCommit v9 with the member epoch
    committed = first.c.committed([TopicPartition(topic, 0)], timeout=WAIT_S)[0].offset
    assert committed == len(first.seen)
    first.c.close()

    second = consumer(b.bootstrap, group, **{"group.protocol": "consumer"})
    second.subscribe([topic])
    rest = consume_n(second, 10 - committed)
    assert [m.value() for m in rest] == [f"v{i}".encode() for i in range(committed, 10)]

    admin = admin_client(b.bootstrap)  # kept alive until the result is in
    offsets = admin.list_consumer_group_offsets([_group_request(group, topic)])[group].result(WAIT_S)
    assert [tp.offset for tp in offsets.topic_partitions] == [committed]


def _group_request(group, topic):
    from confluent_kafka import ConsumerGroupTopicPartitions
    return ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])


def test_a_regex_subscription_picks_up_a_topic_created_later(broker_factory, unique):
    b = broker_factory(*FAST_HEARTBEAT)
    prefix, group = unique("rx"), unique("g")
    create_topic(b.bootstrap, f"{prefix}-first", partitions=1)
    m = Member(b.bootstrap, group, [f"^{prefix}-.*"], "rx")
    pump([m], lambda: len(m.c.assignment()) == 1, "the first matching topic")

    later = f"{prefix}-later"
    create_topic(b.bootstrap, later, partitions=2)
    produce_and_flush(producer(b.bootstrap), later, [{"value": b"new", "partition": 1}])
    pump([m], lambda: m.seen, "the record of the topic created later")
    assert m.seen == [(1, b"new")]
    assert {(tp.topic, tp.partition) for tp in m.c.assignment()} == {
        (f"{prefix}-first", 0), (later, 0), (later, 1)}


def test_admin_views_of_a_consumer_group(broker_factory, unique):
    b = broker_factory(*FAST_HEARTBEAT)
    topic, group, classic = unique("view848"), unique("g"), unique("classic")
    create_topic(b.bootstrap, topic, partitions=2)
    m = Member(b.bootstrap, group, [topic], "viewer")
    pump([m], lambda: m.assigned() == {0, 1}, "the assignment")
    # A classic group next to it (group.protocol=classic, the default).
    c = consumer(b.bootstrap, classic)
    c.subscribe([topic])
    deadline = time.monotonic() + WAIT_S
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.1)
        m.step()

    admin = admin_client(b.bootstrap)
    desc = admin.describe_consumer_groups([group])[group].result(WAIT_S)
    assert desc.type == ConsumerGroupType.CONSUMER
    assert desc.state == ConsumerGroupState.STABLE
    assert [sorted(tp.partition for tp in mm.assignment.topic_partitions) for mm in desc.members] == [[0, 1]]
    assert desc.members[0].client_id == "viewer"

    listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(WAIT_S)
    ids = {g.group_id: g.type for g in listed.valid}
    assert ids.get(group) == ConsumerGroupType.CONSUMER
    assert classic not in ids
    listed = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(WAIT_S)
    ids = {g.group_id for g in listed.valid}
    assert classic in ids and group not in ids


def test_an_empty_classic_group_upgrades_and_keeps_its_offsets(broker_factory, unique):
    b = broker_factory(*FAST_HEARTBEAT)
    topic, group = unique("upgrade848"), unique("g")
    create_topic(b.bootstrap, topic, partitions=1)
    produce_and_flush(producer(b.bootstrap), topic,
                      [{"value": f"v{i}".encode()} for i in range(6)])

    # A classic consumer (the default group.protocol) reads three records and commits.
    classic = consumer(b.bootstrap, group)
    classic.subscribe([topic])
    consumed = consume_n(classic, 3)
    classic.commit(message=consumed[-1], asynchronous=False)
    classic.close()

    # The group is now an empty classic group; a consumer-protocol member converts it and
    # resumes from the classic member's committed offset.
    modern = consumer(b.bootstrap, group, **{"group.protocol": "consumer"})
    modern.subscribe([topic])
    rest = consume_n(modern, 3)
    assert [m.value() for m in rest] == [b"v3", b"v4", b"v5"]
    admin = admin_client(b.bootstrap)  # kept alive until the result is in
    desc = admin.describe_consumer_groups([group])[group].result(WAIT_S)
    assert desc.type == ConsumerGroupType.CONSUMER


@pytest.mark.parametrize("assignor", ["range", "roundrobin", "cooperative-sticky"])
def test_a_group_with_members_migrates_between_the_classic_and_the_consumer_protocol(
    broker_factory, unique, assignor
):
    """Kafka's online migration (group.consumer.migration.policy=bidirectional, its default): a
    consumer-protocol member joining a classic group with a member converts the group, the
    classic member keeps consuming and gives up half its partitions through JoinGroup/SyncGroup;
    classic members join the consumer group; when the last consumer-protocol member leaves, the
    group is classic again and its classic member gets every partition. At every poll no
    partition is held by two members, and records produced after each step are all read."""
    b = broker_factory(*FAST_HEARTBEAT)
    topic, group = unique("migrate"), unique("g")
    partitions = 6
    create_topic(b.bootstrap, topic, partitions=partitions)
    p = producer(b.bootstrap)
    admin = admin_client(b.bootstrap)
    classic_conf = {
        "group.protocol": "classic",
        "partition.assignment.strategy": assignor,
        "heartbeat.interval.ms": 300,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 200,
    }
    modern_conf = {"enable.auto.commit": True, "auto.commit.interval.ms": 200}
    members = []
    batch = [0]

    def no_partition_twice(_m):
        held = [m.assigned() for m in members]
        overlap = set.intersection(*held) if len(held) > 1 else set()
        assert not overlap, f"partitions {overlap} held by two members: " + ", ".join(
            f"{m.name}={sorted(m.assigned())}" for m in members)

    def settle(expected_type, what):
        share = partitions // len(members)
        pump(members, lambda: split_between(members, partitions)()
             and all(len(m.assigned()) == share for m in members),
             what, each_step=no_partition_twice)
        desc = admin.describe_consumer_groups([group])[group].result(WAIT_S)
        assert desc.type == expected_type, (what, desc.type)
        # Records produced now reach the members that hold their partitions.
        batch[0] += 1
        values = {f"b{batch[0]}-p{i}".encode() for i in range(partitions)}
        produce_and_flush(p, topic, [{"value": f"b{batch[0]}-p{i}".encode(), "partition": i}
                                     for i in range(partitions)])
        pump(members, lambda: values <= {v for m in members for _, v in m.seen},
             f"the records produced after {what}", each_step=no_partition_twice)

    members.append(Member(b.bootstrap, group, [topic], "classic-a", **classic_conf))
    settle(ConsumerGroupType.CLASSIC, "the classic member alone")

    members.append(Member(b.bootstrap, group, [topic], "modern-b", **modern_conf))
    settle(ConsumerGroupType.CONSUMER, "the upgrade by a consumer-protocol member")

    members.pop(0).c.close()
    settle(ConsumerGroupType.CONSUMER, "the classic member leaving the consumer group")

    members.append(Member(b.bootstrap, group, [topic], "classic-c", **classic_conf))
    settle(ConsumerGroupType.CONSUMER, "a classic member joining the consumer group")

    members.pop(0).c.close()
    settle(ConsumerGroupType.CLASSIC, "the downgrade as the consumer-protocol member left")
    listed = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(WAIT_S)
    assert group in {g.group_id for g in listed.valid}
