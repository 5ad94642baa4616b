"""Share groups (KIP-932) in a 3-broker cluster: each data partition's leader serves ShareFetch
and ShareAcknowledge for its partitions and holds their in-flight state; the durable state lives
at the share coordinator (the leader of `__share_group_state`), reached through the inter-broker
share state APIs. A share group reads a topic whose partitions are led by different brokers
completely, and a kill -9 of a data partition's leader loses nothing and delivers no accepted
record again."""

import time

from confluent_kafka import AcknowledgeType

from helpers import WAIT_S, admin_client, consumer, produce_and_flush, producer
from test_cluster import (
    FAST,
    create_replicated,
    leader_of,
    offsets_partition,
    preferred_leaders_elected,
    wait_until,
)
from test_share_groups import poll_records, read_all, set_group_configs, share_consumer

PARTITIONS = 3
# Weir's default offsets-topic-num-partitions (Kafka's is 50).
OFFSETS_PARTITIONS = 16


def share_group_coordinated_away_from_state(c, a, topic, unique):
    """A share group id whose group coordinator (the leader of its `__consumer_offsets`
    partition) is not the share coordinator (the leader of `__share_group_state`), so that
    membership and share state live on different brokers."""
    # The first FindCoordinator (here a classic consumer's) creates both internal topics.
    probe = consumer(c.bootstrap, unique("probe"))
    probe.subscribe([topic])

    def state_leader():
        probe.poll(0.2)
        return leader_of(a, "__share_group_state", 0)

    state_leader = wait_until("a share state leader", state_leader)
    probe.close()
    for _ in range(100):
        group = unique("sg-cl")
        if group_coordinator(a, group) != state_leader:
            return group
    raise AssertionError("every group is coordinated by the share state leader")


def group_coordinator(a, group):
    """The leader of the group's `__consumer_offsets` partition (Kafka's hash)."""
    return wait_until(
        f"the coordinator of {group}",
        lambda: leader_of(a, "__consumer_offsets", offsets_partition(group, OFFSETS_PARTITIONS)),
    )


def share_cluster_topic(c, unique, records, group_configs=None):
    """A topic of PARTITIONS partitions led by different brokers, `records` records (values
    '0', '1', ...) spread over them, and a share group reading it from the start, coordinated
    by another broker than the one holding the share state."""
    a = admin_client(c.bootstrap)
    topic = unique("share-cl")
    create_replicated(a, topic, PARTITIONS)
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
    c = cluster_factory(3, FAST)
    c.wait_formed()
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


def consume_across_kill(cluster_factory, unique, choose_victim):
    total = 300
    c = cluster_factory(3, FAST)
    c.wait_formed()
    a, topic, group = share_cluster_topic(c, unique, total)
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
        for m in batch:
            sc.acknowledge(m, AcknowledgeType.ACCEPT)
        try:
            results = sc.commit_sync(10.0)
        except Exception:
            results = {}
        ok = {tp.partition for tp, err in results.items() if err is None}
        confirmed.update(m.value() for m in batch if m.partition() in ok)
        if victim is None and len(confirmed) >= 60:
            # The consumer holds records of every partition now.
            victim = choose_victim(a, topic, group)
            c.broker(victim).kill9()
    assert victim is not None
    assert delivered_after_confirmation == [], "accepted records delivered again"
    missing = {str(i).encode() for i in range(total)} - confirmed
    assert not missing, f"{len(missing)} records never accepted"


def test_dead_letters_delays_and_expiry_at_every_partition_leader(cluster_factory, unique):
    """The queue features beyond Kafka at the leaders of partitions on every broker, with the
    group coordinated away from the share state: a rejected record and an expired one go to the
    dead-letter topic once each, with where they came from; a delayed record arrives; the
    others are delivered once."""
    c = cluster_factory(3, FAST)
    c.wait_formed()
    dlq = unique("dlq")
    a, topic, group = share_cluster_topic(c, unique, 0, {"weir.share.dlq.topic": dlq})
    create_replicated(a, dlq, PARTITIONS)
    wait_until("dead-letter leaders spread", lambda: preferred_leaders_elected(a, dlq, PARTITIONS))
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
