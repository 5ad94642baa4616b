"""Share groups (KIP-932) in a 3-broker cluster: each data partition's leader serves ShareFetch
and ShareAcknowledge for its partitions and holds their in-flight state; the durable state of a
share-partition lives at its share coordinator (the leader of the `__share_group_state`
partition its key `group:topicId:partition` hashes to), reached through the inter-broker share
state APIs. A share group reads a topic whose partitions are led by different brokers
completely, and a kill -9 of a data partition's leader, of the group's coordinator or of a
share-partition's share coordinator loses nothing and delivers no accepted record again.

Most tests run with one share state partition (`ONE_STATE_PARTITION`), so that one known broker
owns all share state and the others must reach it remotely; the spread test runs with the
default partition count."""

import struct
import time

import pytest

from confluent_kafka import AcknowledgeType, KafkaException

from helpers import WAIT_S, admin_client, consumer, produce_and_flush, producer
from wire import call, carray, cstr, describe_share_group_offsets
from test_cluster import (
    FAST,
    create_replicated,
    leader_of,
    offsets_partition,
    partitions_of,
    preferred_leaders_elected,
    wait_until,
)
from test_share_groups import (
    accept_and_commit,
    poll_records,
    read_all,
    set_group_configs,
    share_consumer,
)

# Kafka's error codes the share group offset admin APIs answer here.
NONE, UNKNOWN_TOPIC_OR_PARTITION, NON_EMPTY_GROUP = 0, 3, 68

PARTITIONS = 3
# Weir's default offsets-topic-num-partitions (Kafka's is 50).
OFFSETS_PARTITIONS = 16
# Weir's default share-coordinator-state-topic-num-partitions (Kafka's is 50).
STATE_PARTITIONS = 16
# All share state owned by one broker, the leader of the single state partition.
ONE_STATE_PARTITION = FAST + ("--share-coordinator-state-topic-num-partitions", "1")


def state_partition(group, topic_id, partition, partitions=STATE_PARTITIONS):
    """The `__share_group_state` partition of a share-partition: Kafka's hash of its key."""
    return offsets_partition(f"{group}:{topic_id}:{partition}", partitions)


def topic_id_of(admin, topic):
    """The topic's id as Kafka prints it (URL-safe base64 of its 16 bytes)."""
    from confluent_kafka import TopicCollection

    d = admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic]
    # librdkafka prints it in standard base64; Kafka's Uuid.toString is the URL-safe alphabet.
    text = str(d.result(WAIT_S).topic_id)
    return text.replace("+", "-").replace("/", "_").rstrip("=")


def share_group_coordinated_away_from_state(c, a, topic, unique):
    """A share group id whose group coordinator (the leader of its `__consumer_offsets`
    partition) is not the share coordinator (the leader of `__share_group_state`), so that
    membership and share state live on different brokers."""
    # The first FindCoordinator (here a classic consumer's) creates both internal topics.
    probe = consumer(c.bootstrap, unique("probe"))
    probe.subscribe([topic])

    def state_leader():
        probe.poll(0.2)
        ps = preferred_leaders_elected(a, "__share_group_state", 1)
        return ps and ps[0].leader

    state_leader = wait_until("a share state leader", state_leader)
    probe.close()
    for _ in range(100):
        group = unique("sg-cl")
        if group_coordinator(a, group) != state_leader:
            return group
    raise AssertionError("every group is coordinated by the share state leader")


def group_coordinator(a, group):
    """The leader of the group's `__consumer_offsets` partition (Kafka's hash), once every one is
    led by its preferred replica (an automatic preferred-leader election would move it later)."""
    ps = wait_until(
        "the offsets partitions led by their preferred replicas",
        lambda: preferred_leaders_elected(a, "__consumer_offsets", OFFSETS_PARTITIONS),
    )
    return ps[offsets_partition(group, OFFSETS_PARTITIONS)].leader


def share_cluster(cluster_factory, spread_state=False):
    """Three brokers, formed; one share state partition, or the default ones with
    `spread_state`."""
    c = cluster_factory(3, FAST if spread_state else ONE_STATE_PARTITION)
    c.wait_formed()
    return c


# The state of a group's share-partitions at one broker, or spread over the brokers.
STATE_LAYOUTS = pytest.mark.parametrize(
    "spread_state", [False, True], ids=["one-state-partition", "spread-state"]
)


def share_group_with_remote_state(c, a, topic, unique):
    """With the share state topic's default partitions: a share group id whose partition 0's
    state is owned by another broker than the one leading the data partition, once the state
    partitions are led by their preferred replicas, which are spread over every broker."""
    probe = consumer(c.bootstrap, unique("probe"))
    probe.subscribe([topic])

    def state_settled():
        probe.poll(0.2)
        return preferred_leaders_elected(a, "__share_group_state", STATE_PARTITIONS)

    state = wait_until("the share state partitions settled", state_settled)
    probe.close()
    assert len({p.leader for p in state.values()}) == 3, "state owned by every broker"
    ps = wait_until("leaders spread", lambda: preferred_leaders_elected(a, topic, PARTITIONS))
    topic_id = topic_id_of(a, topic)
    for _ in range(100):
        group = unique("sg-spread")
        if state[state_partition(group, topic_id, 0)].leader != ps[0].leader:
            return group
    raise AssertionError("every group's state is owned by the data leader")


def share_cluster_topic(c, unique, records, group_configs=None, spread_state=False):
    """A topic of PARTITIONS partitions led by different brokers, `records` records (values
    '0', '1', ...) spread over them, and a share group reading it from the start. With one
    share state partition the group is coordinated by another broker than the one holding the
    share state; with `spread_state` (the default state partitions) partition 0's state is
    owned away from its data leader."""
    a = admin_client(c.bootstrap)
    topic = unique("share-cl")
    create_replicated(a, topic, PARTITIONS)
    if spread_state:
        group = share_group_with_remote_state(c, a, topic, unique)
    else:
        group = share_group_coordinated_away_from_state(c, a, topic, unique)
    ps = wait_until("leaders spread", lambda: preferred_leaders_elected(a, topic, PARTITIONS))
    assert len({p.leader for p in ps.values()}) == PARTITIONS, "partitions led by different brokers"
    set_group_configs(
        c.bootstrap, group, {"share.auto.offset.reset": "earliest", **(group_configs or {})}
    )
    produce_and_flush(
        producer(c.bootstrap, **{"acks": "all"}),
        topic,
        [{"value": str(i).encode(), "partition": i % PARTITIONS} for i in range(records)],
    )
    return a, topic, group


def test_share_group_reads_partitions_led_by_every_broker(cluster_factory, unique):
    """Every record exactly once when all are accepted; a released record comes back with a
    higher delivery count, a rejected one never does, whichever broker leads its partition."""
    c = share_cluster(cluster_factory)
    _, topic, group = share_cluster_topic(c, unique, 150)
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    # Values 0, 1, 2 (one per partition) are released once, 3, 4, 5 rejected.
    released, rejected = {b"0", b"1", b"2"}, {b"3", b"4", b"5"}
    deliveries = []
    deadline = time.monotonic() + WAIT_S * 2
    accepted = set()
    while len(accepted) < 150 - len(rejected) and time.monotonic() < deadline:
        ms = poll_records(sc, 0.5)
        for m in ms:
            deliveries.append((m.value(), m.partition(), m.delivery_count()))
            if m.value() in released and m.delivery_count() == 1:
                kind = AcknowledgeType.RELEASE
            elif m.value() in rejected:
                kind = AcknowledgeType.REJECT
            else:
                kind = AcknowledgeType.ACCEPT
                accepted.add(m.value())
            sc.acknowledge(m, kind)
        if ms:
            results = sc.commit_sync(WAIT_S)
            assert all(err is None for err in results.values()), results
    # Anything more would be a duplicate: look a little longer.
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        for m in poll_records(sc, 0.5):
            deliveries.append((m.value(), m.partition(), m.delivery_count()))
    assert {p for _, p, _ in deliveries} == set(range(PARTITIONS))
    counts = {}
    for v, _, _ in deliveries:
        counts[v] = counts.get(v, 0) + 1
    for i in range(150):
        v = str(i).encode()
        want = 2 if v in released else 1
        assert counts.get(v) == want, f"record {i} delivered {counts.get(v)} times, not {want}"
    assert sorted(d for v, _, d in deliveries if v in released) == [1, 1, 1, 2, 2, 2]


def test_data_leader_killed_while_records_are_held_loses_nothing(cluster_factory, unique):
    """A checker counts across a kill -9 of a data partition's leader (not the share
    coordinator): no record whose acceptance a broker confirmed is delivered again, and every
    record is eventually accepted."""

    def data_leader(a, topic, group):
        coordinator = leader_of(a, "__share_group_state", 0)
        leaders = {p: leader_of(a, topic, p) for p in range(PARTITIONS)}
        return next(l for l in leaders.values() if l is not None and l != coordinator)

    consume_across_kill(cluster_factory, unique, data_leader)


def test_group_coordinator_killed_members_join_again_and_lose_nothing(cluster_factory, unique):
    """The same checker across a kill -9 of the share group's coordinator (which is not the
    share state's): the consumer joins the group at its new coordinator and goes on; nothing
    accepted comes back, nothing is lost."""

    consume_across_kill(cluster_factory, unique, lambda a, _topic, group: group_coordinator(a, group))


def test_share_state_owner_killed_loses_nothing(cluster_factory, unique):
    """With the default share state partitions the state of a group's share-partitions is
    spread over every broker. The same checker across a kill -9 of the broker that owns the
    state of partition 0 (not that partition's leader): the leader finds the state at the
    state partition's new leader, which replayed it from the replicated log; nothing accepted
    comes back, nothing is lost."""

    def state_owner(a, topic, group):
        state = partitions_of(a, "__share_group_state")
        topic_id = topic_id_of(a, topic)
        owner = state[state_partition(group, topic_id, 0)].leader
        assert owner != leader_of(a, topic, 0)
        # FindCoordinator v6 names the same share coordinators, asked at any broker.
        keys = [f"{group}:{topic_id}:{p}" for p in range(PARTITIONS)]
        want = {
            k: (state[state_partition(group, topic_id, p)].leader, NONE)
            for p, k in enumerate(keys)
        }
        for b in a.list_topics(timeout=10).brokers.values():
            assert find_share_coordinators(f"{b.host}:{b.port}", keys) == want
        return owner

    consume_across_kill(cluster_factory, unique, state_owner, spread_state=True)


def consume_across_kill(cluster_factory, unique, choose_victim, spread_state=False):
    total = 300
    c = share_cluster(cluster_factory, spread_state)
    a, topic, group = share_cluster_topic(c, unique, total, spread_state=spread_state)
    sc = share_consumer(
        c.bootstrap, group, **{"share.acknowledgement.mode": "explicit", "max.poll.records": 20}
    )
    sc.subscribe([topic])
    confirmed = set()
    delivered_after_confirmation = []
    victim = None
    deadline = time.monotonic() + WAIT_S * 4
    while len(confirmed) < total and time.monotonic() < deadline:
        try:
            ms = sc.poll(0.5)
        except Exception:  # a broker is away: poll again
            continue
        batch = [m for m in ms if m.error() is None]
        for m in batch:
            if m.value() in confirmed:
                delivered_after_confirmation.append(m.value())
        if not batch:
            continue
        ok = accept_and_commit(sc, batch)
        confirmed.update(m.value() for m in batch if m.partition() in ok)
        if victim is None and len(confirmed) >= 60:
            # The consumer holds records of every partition now.
            victim = choose_victim(a, topic, group)
            c.broker(victim).kill9()
    assert victim is not None
    assert delivered_after_confirmation == [], "accepted records delivered again"
    missing = {str(i).encode() for i in range(total)} - confirmed
    assert not missing, f"{len(missing)} records never accepted"


@pytest.mark.parametrize("dlq_partitions", [PARTITIONS, 1])
def test_dead_letters_delays_and_expiry_at_every_partition_leader(
    cluster_factory, unique, dlq_partitions
):
    """The queue features beyond Kafka at the leaders of partitions on every broker, with the
    group coordinated away from the share state: a rejected record and an expired one go to the
    dead-letter topic once each, with where they came from; a delayed record arrives; the
    others are delivered once. With a dead-letter topic of one partition, two of the three
    leaders send their dead letters to another broker."""
    c = share_cluster(cluster_factory)
    dlq = unique("dlq")
    a, topic, group = share_cluster_topic(c, unique, 0, {"weir.share.dlq.topic": dlq})
    create_replicated(a, dlq, dlq_partitions)
    wait_until(
        "dead-letter leaders settled",
        lambda: preferred_leaders_elected(a, dlq, dlq_partitions),
    )
    old = int(time.time() * 1000) - 60_000
    records = []
    for p in range(PARTITIONS):
        records += [
            {"value": f"bad-{p}".encode(), "partition": p},
            {"value": f"stale-{p}".encode(), "partition": p, "timestamp": old,
             "headers": [("weir.ttl.ms", b"1000")]},
            {"value": f"later-{p}".encode(), "partition": p,
             "headers": [("weir.delay.ms", b"1500")]},
            {"value": f"good-{p}".encode(), "partition": p},
        ]
    produce_and_flush(producer(c.bootstrap, **{"acks": "all"}), topic, records)
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    delivered = []
    want = {f"{k}-{p}".encode() for k in ("bad", "later", "good") for p in range(PARTITIONS)}
    deadline = time.monotonic() + WAIT_S * 2
    while not want <= set(delivered) and time.monotonic() < deadline:
        ms = poll_records(sc, 0.5)
        for m in ms:
            delivered.append(m.value())
            kind = AcknowledgeType.REJECT if m.value().startswith(b"bad") else AcknowledgeType.ACCEPT
            sc.acknowledge(m, kind)
        if ms:
            sc.commit_sync(WAIT_S)
    assert sorted(delivered) == sorted(want), "each live record once, no expired one"
    letters = read_all(c.bootstrap, dlq, 2 * PARTITIONS, unique)
    by_value = {m.value(): {k: v.decode() for k, v in m.headers()} for m in letters}
    assert len(letters) == 2 * PARTITIONS, sorted(m.value() for m in letters)
    for p in range(PARTITIONS):
        for kind, reason in (("bad", "rejected"), ("stale", "expired")):
            h = by_value[f"{kind}-{p}".encode()]
            assert h["weir.dlq.source.topic"] == topic
            assert h["weir.dlq.source.partition"] == str(p)
            assert h["weir.dlq.group"] == group
            assert h["weir.dlq.reason"] == reason


@pytest.mark.parametrize("sender_owns_state", [False, True], ids=["state-elsewhere", "state-here"])
def test_dead_letter_sent_to_another_broker_is_appended_once_across_a_crash(
    cluster_factory, unique, sender_owns_state
):
    """The leader of a source partition sends a rejected record to the dead-letter partition's
    leader and crashes (a crash point aborts it) after the dead letter is committed, before the
    record is archived. The source partition's new leader finds the dead-letter intent with the
    share-partition's state and sends the same batch again with the same producer id and
    sequence: the dead letter is there once, the record is archived and never delivered again,
    the others are delivered once. The intent is held by another broker (a third one when
    there is one), or by the crashed sender itself, whose share state partition the next
    leader replays (then the sender may lead the dead-letter partition too: appended there,
    the batch is found again through the replicated producer state). A record whose accept the
    broker did not confirm (its share state owner was the crashing sender) may come again, as
    Kafka's at-least-once delivery allows; no other record does."""
    c = share_cluster(cluster_factory)
    dlq = unique("dlq")
    a, topic, group = share_cluster_topic(c, unique, 0, {"weir.share.dlq.topic": dlq})
    create_replicated(a, dlq, 1)
    wait_until("the dead-letter leader settled", lambda: preferred_leaders_elected(a, dlq, 1))
    dlq_leader = leader_of(a, dlq, 0)
    owner = leader_of(a, "__share_group_state", 0)
    leaders = {p: leader_of(a, topic, p) for p in range(PARTITIONS)}
    if sender_owns_state:
        source = next(p for p, l in leaders.items() if l == owner)
    else:
        # Led neither by the dead-letter leader nor, if possible, by the owner.
        candidates = [p for p, l in leaders.items() if l != dlq_leader and l != owner]
        candidates = candidates or [p for p, l in leaders.items() if l != dlq_leader]
        source = candidates[0]
    sender = c.broker(leaders[source])
    sender.env = {"WEIR_CRASH_AT": "dead-letters-sent"}
    sender.restart()
    wait_until("leaders back", lambda: preferred_leaders_elected(a, topic, PARTITIONS))
    wait_until("dead-letter leader back", lambda: preferred_leaders_elected(a, dlq, 1))
    assert leader_of(a, topic, source) == sender.node_id
    records = [{"value": b"poison", "partition": source}] + [
        {"value": f"good-{i}".encode(), "partition": i % PARTITIONS} for i in range(6)
    ]
    produce_and_flush(producer(c.bootstrap, **{"acks": "all"}), topic, records)
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    delivered = []
    unconfirmed = set()  # values whose accept the broker did not confirm

    def commit(ms):
        try:
            results = sc.commit_sync(WAIT_S)
        except KafkaException:
            unconfirmed.update(m.value() for m in ms)
            return
        failed = {tp.partition for tp, err in results.items() if err is not None}
        unconfirmed.update(m.value() for m in ms if m.partition() in failed)

    want = {f"good-{i}".encode() for i in range(6)}
    deadline = time.monotonic() + WAIT_S * 3
    while time.monotonic() < deadline:
        try:
            ms = [m for m in sc.poll(0.5) if m.error() is None]
        except KafkaException:  # the sender is away: poll again
            continue
        for m in ms:
            delivered.append(m.value())
            kind = AcknowledgeType.REJECT if m.value() == b"poison" else AcknowledgeType.ACCEPT
            sc.acknowledge(m, kind)
        if ms:
            commit(ms)
        if want <= set(delivered) and sender.proc.poll() is not None:
            break
    assert sender.proc.poll() is not None, "the sender never reached the crash point"
    assert b"crash point reached" in sender.stderr_tail().encode(), sender.stderr_tail()
    # The new leader of the source partition loads the share-partition when the consumer
    # fetches from it, and settles the intent: the record is archived.
    sender.env = {}

    def consume():
        try:
            ms = [m for m in sc.poll(0.3) if m.error() is None]
        except KafkaException:
            return
        for m in ms:
            delivered.append(m.value())
            sc.acknowledge(m, AcknowledgeType.ACCEPT)
        if ms:
            commit(ms)

    def archived():
        consume()
        for b in c.brokers:
            if b.proc.poll() is not None:
                continue
            try:
                code, found = describe_share_group_offsets(b.bootstrap, group, topic, [source])
            except (OSError, AssertionError):
                continue
            if code == NONE:  # the group's coordinator
                start, error = found.get(source, (-1, -1))
                return error == NONE and start >= 1
        return False

    try:
        wait_until("the rejected record archived by the new leader", archived)
    finally:
        sender.start()
    letters = read_all(c.bootstrap, dlq, 1, unique)
    assert [m.value() for m in letters] == [b"poison"], "the dead letter is there once"
    headers = {k: v.decode() for k, v in letters[0].headers()}
    assert headers["weir.dlq.source.partition"] == str(source)
    assert headers["weir.dlq.reason"] == "rejected"
    assert delivered.count(b"poison") == 1, delivered
    goods = [v for v in delivered if v != b"poison"]
    assert set(goods) == want, delivered
    again = {v for v in goods if goods.count(v) > 1}
    assert again <= unconfirmed, (delivered, unconfirmed)


# -- The share group offset admin APIs on the wire (confluent-kafka's AdminClient has none). --


def alter_share_group_offsets(bootstrap, group, topics):
    """AlterShareGroupOffsets (API 91): `topics` maps a name to {partition: start offset}.
    Returns (group error, {(topic, partition): error})."""
    body = cstr(group) + carray([
        cstr(t) + carray([struct.pack(">iq", p, o) + b"\x00" for p, o in ps.items()]) + b"\x00"
        for t, ps in topics.items()
    ]) + b"\x00"
    r = call(bootstrap, 91, body)
    r.int32()
    error = r.int16()
    r.cstr()

    def partition(r):
        index, code = r.int32(), r.int16()
        r.cstr()
        r.tags()
        return index, code

    def topic(r):
        name = r.cstr()
        r.take(16)
        ps = r.carray(partition)
        r.tags()
        return name, ps

    return error, {(t, p): code for t, ps in r.carray(topic) for p, code in ps}


def delete_share_group_offsets(bootstrap, group, topics):
    """DeleteShareGroupOffsets (API 92). Returns (group error, {topic: error})."""
    body = cstr(group) + carray([cstr(t) + b"\x00" for t in topics]) + b"\x00"
    r = call(bootstrap, 92, body)
    r.int32()
    error = r.int16()
    r.cstr()

    def topic(r):
        name = r.cstr()
        r.take(16)
        code = r.int16()
        r.cstr()
        r.tags()
        return name, code

    return error, dict(r.carray(topic))


def find_share_coordinators(bootstrap, keys):
    """FindCoordinator v6 (API 10) of share-partition keys `group:topicId:partition`, as Kafka's
    persister asks it. Returns {key: (node id, error code)}."""
    body = struct.pack(">b", 2) + carray([cstr(k) for k in keys]) + b"\x00"
    r = call(bootstrap, 10, body, version=6)
    r.int32()  # throttle

    def coordinator(r):
        key, node = r.cstr(), r.int32()
        r.cstr()  # host
        r.int32()  # port
        code = r.int16()
        r.cstr()
        r.tags()
        return key, (node, code)

    return dict(r.carray(coordinator))


def accept_all(sc, want, what):
    """Polls, accepting every record, until the values in `want` were all delivered; returns
    every value delivered and each delivery's (partition, offset, value, delivery count)."""
    seen, counts = [], []
    deadline = time.monotonic() + WAIT_S * 2
    while not want <= set(seen) and time.monotonic() < deadline:
        ms = poll_records(sc, 0.5)
        for m in ms:
            seen.append(m.value())
            counts.append((m.partition(), m.offset(), m.value(), m.delivery_count()))
            sc.acknowledge(m, AcknowledgeType.ACCEPT)
        if ms:
            results = sc.commit_sync(WAIT_S)
            assert all(err is None for err in results.values()), results
    assert want <= set(seen), f"{what}: {len(want - set(seen))} records never delivered"
    return seen, counts


def values(lo, hi):
    return {str(i).encode() for i in range(lo, hi)}


def delete_when_empty(a, group):
    """DeleteGroups once the closed consumer has left the group (NON_EMPTY_GROUP until then)."""
    def deleted():
        try:
            a.delete_consumer_groups([group], request_timeout=10)[group].result(WAIT_S)
            return True
        except KafkaException as e:
            assert e.args[0].code() == NON_EMPTY_GROUP, e
            time.sleep(0.2)
            return None

    wait_until(f"{group} deleted", deleted)


@STATE_LAYOUTS
def test_deleted_share_group_created_again_starts_from_the_reset(
    cluster_factory, unique, spread_state
):
    """DeleteGroups at a group coordinator deletes the share state too, wherever the
    share-partitions' state lives (at one other broker, or spread over the brokers, some of it
    at the coordinator): a new group with the same name reads from share.auto.offset.reset
    again, at every partition's leader."""
    c = share_cluster(cluster_factory, spread_state)
    a, topic, group = share_cluster_topic(c, unique, 30, spread_state=spread_state)
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    seen, _ = accept_all(sc, values(0, 30), "first group")
    assert sorted(seen) == sorted(values(0, 30))
    sc.close()
    delete_when_empty(a, group)
    # The same name again (configs set again: they may go with the group), reading from the start.
    set_group_configs(c.bootstrap, group, {"share.auto.offset.reset": "earliest"})
    produce_and_flush(
        producer(c.bootstrap, **{"acks": "all"}),
        topic,
        [{"value": str(i).encode(), "partition": i % PARTITIONS} for i in range(30, 45)],
    )
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    seen, counts = accept_all(sc, values(0, 45), "the group created again")
    assert sorted(seen) == sorted(values(0, 45)), "every record once, from the log start"
    assert {d for _, _, _, d in counts} == {1}, "a fresh group: first deliveries"


@STATE_LAYOUTS
def test_share_group_offsets_altered_and_deleted_at_a_remote_coordinator(
    cluster_factory, unique, spread_state
):
    """AlterShareGroupOffsets, DescribeShareGroupOffsets and DeleteShareGroupOffsets at the
    group's coordinator, whose share state is held by another broker (or spread over the
    brokers, each owner asked for its part): refused while the group has members
    (NON_EMPTY_GROUP), unknown topics answered UNKNOWN_TOPIC_OR_PARTITION, and what they set is
    what a share consumer reads next."""
    c = share_cluster(cluster_factory, spread_state)
    a, topic, group = share_cluster_topic(c, unique, 30, spread_state=spread_state)
    coordinator = c.broker(group_coordinator(a, group)).bootstrap
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    _, first = accept_all(sc, values(0, 30), "first read")
    error, _ = alter_share_group_offsets(coordinator, group, {topic: {0: 0}})
    assert error == NON_EMPTY_GROUP
    sc.close()

    def altered():
        error, results = alter_share_group_offsets(
            coordinator, group, {topic: {0: 0, 1: 8}, unique("no-such-topic"): {0: 0}}
        )
        if error == NON_EMPTY_GROUP:  # the closed consumer has not left yet
            time.sleep(0.2)
            return None
        return error, results

    error, results = wait_until("offsets altered", altered)
    assert error == NONE
    assert results[(topic, 0)] == NONE and results[(topic, 1)] == NONE, results
    assert [code for (t, _), code in results.items() if t != topic] == [UNKNOWN_TOPIC_OR_PARTITION]
    # The coordinator describes what the share coordinator (another broker) holds now, and
    # the lag (KIP-1226): each partition's records from its start on (a replica of each is
    # here, replication factor 3; altered state has nothing completed yet).
    lags = {}
    error, described = describe_share_group_offsets(
        coordinator, group, topic, range(PARTITIONS), lags
    )
    assert error == NONE
    assert described[0] == (0, NONE) and described[1] == (8, NONE), described
    end_of = {p: max(o for q, o, _, _ in first if q == p) + 1 for p in range(PARTITIONS)}
    assert described[2] == (end_of[2], NONE), ("partition 2 was read to its end", described)
    assert lags == {0: end_of[0], 1: end_of[1] - 8, 2: 0}, (lags, end_of)
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    # Partition 0 from its start, partition 1 from offset 8, partition 2 not at all.
    want = {v for p, o, v, _ in first if p == 0 or (p == 1 and o >= 8)}
    assert len(want) >= 10
    seen, _ = accept_all(sc, want, "after AlterShareGroupOffsets")
    # Look a little longer: nothing else comes (partition 2 was not altered, 1 starts at 8).
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        seen += [m.value() for m in poll_records(sc, 0.5)]
    assert sorted(seen) == sorted(want), (b",".join(sorted(seen)), b",".join(sorted(want)))
    sc.close()

    def deleted():
        error, results = delete_share_group_offsets(coordinator, group, [topic])
        if error == NON_EMPTY_GROUP:
            time.sleep(0.2)
            return None
        return error, results

    assert wait_until("offsets deleted", deleted) == (NONE, {topic: NONE})
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    seen, _ = accept_all(sc, values(0, 30), "after DeleteShareGroupOffsets")
    assert sorted(seen) == sorted(values(0, 30)), "the state is gone: from the log start again"


def test_an_acknowledgement_is_confirmed_only_once_the_share_state_is_replicated(
    cluster_factory, unique
):
    """The share coordinator confirms an acknowledgement only once a majority of the share
    state partition's replicas hold it (Kafka writes its internal topics with acks=all): with
    both followers frozen, a commit of accepted records is not confirmed, because a failover
    could still lose it. Once they are back, the rest is accepted, and no confirmed record is
    delivered again."""
    import os
    import signal

    from confluent_kafka.admin import NewTopic

    c = share_cluster(cluster_factory)
    a = admin_client(c.bootstrap)
    # The first FindCoordinator creates the internal topics.
    probe = consumer(c.bootstrap, unique("probe"))
    probe.subscribe([unique("nothing")])

    def state_settled():
        probe.poll(0.2)
        return preferred_leaders_elected(a, "__share_group_state", 1)

    state = wait_until("the share state partition settled", state_settled)[0]
    probe.close()
    lead = state.leader
    followers = [n for n in state.replicas if n != lead]
    assert len(followers) == 2, state.replicas
    # The data partition is led by the share coordinator too, so that freezing the state's
    # followers leaves the consumer's fetches and acknowledgements a live leader.
    topic = unique("share-acked")
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=1, replica_assignment=[[lead, *followers]])],
        operation_timeout=WAIT_S,
        request_timeout=WAIT_S,
    )
    fs[topic].result(WAIT_S)
    wait_until("the topic led by the share coordinator", lambda: preferred_leaders_elected(a, topic, 1))
    group = unique("sg-acked")
    set_group_configs(c.bootstrap, group, {"share.auto.offset.reset": "earliest"})
    total = 20
    produce_and_flush(
        producer(c.bootstrap, acks="all"), topic, [{"value": str(i).encode()} for i in range(total)]
    )
    sc = share_consumer(c.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    sc.subscribe([topic])
    deadline = time.monotonic() + WAIT_S
    held = []
    while not held and time.monotonic() < deadline:
        held = poll_records(sc, 0.5)
    assert held, "no records delivered"

    for n in followers:
        os.kill(c.broker(n).proc.pid, signal.SIGSTOP)
    try:
        confirmed_while_frozen = accept_and_commit(sc, held)
        assert confirmed_while_frozen == set(), (
            "acknowledgements confirmed while the share state's followers were frozen"
        )
    finally:
        for n in followers:
            os.kill(c.broker(n).proc.pid, signal.SIGCONT)

    # The held records were accepted without confirmation: they may come back or not.
    unsure = {m.value() for m in held}
    confirmed, again = set(), []
    want = {str(i).encode() for i in range(total)}
    deadline = time.monotonic() + WAIT_S * 3
    while not want <= confirmed | unsure and time.monotonic() < deadline:
        try:
            ms = [m for m in sc.poll(0.5) if m.error() is None]
        except KafkaException:  # leadership moving: poll again
            continue
        again += [m.value() for m in ms if m.value() in confirmed]
        if not ms:
            continue
        ok = accept_and_commit(sc, ms)
        confirmed.update(m.value() for m in ms if m.partition() in ok)
    assert again == [], f"confirmed records delivered again: {again}"
    missing = want - confirmed - unsure
    assert not missing, f"{len(missing)} records never accepted"
