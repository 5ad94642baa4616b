"""Static membership (KIP-345, group.instance.id) with confluent-kafka: a static member that restarts
within its session timeout gets its partitions back without the group rebalancing, so the other
member keeps its assignment and generation throughout."""

import time

from confluent_kafka.admin import AdminClient

from helpers import consumer, create_topic


def _wait_assigned(members, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.poll(0.1)
        if all(m.assignment() for m in members):
            return {id(m): sorted(tp.partition for tp in m.assignment()) for m in members}
    raise AssertionError("members never all got partitions")


def _describe(bootstrap, group):
    a = AdminClient({"bootstrap.servers": bootstrap})
    return a.describe_consumer_groups([group])[group].result(30)


def test_static_member_restart_keeps_assignment_without_rebalance(broker, unique):
    topic = unique("static")
    group = unique("g")
    create_topic(broker.bootstrap, topic, partitions=4)

    assignments = {"instance-a": 0, "instance-b": 0}

    def member(instance):
        c = consumer(
            broker.bootstrap,
            group,
            **{"group.instance.id": instance, "session.timeout.ms": 30000, "heartbeat.interval.ms": 500},
        )

        def on_assign(_consumer, _partitions):
            assignments[instance] += 1

        c.subscribe([topic], on_assign=on_assign)
        return c

    a = member("instance-a")
    b = member("instance-b")
    before = _wait_assigned([a, b])
    a_parts_before = before[id(a)]
    b_parts_before = before[id(b)]
    assert sorted(a_parts_before + b_parts_before) == [0, 1, 2, 3]
    desc = _describe(broker.bootstrap, group)
    assert str(desc.state).endswith("STABLE"), desc.state
    ids_before = {m.group_instance_id: m.member_id for m in desc.members}
    assert set(ids_before) == {"instance-a", "instance-b"}

    # A static member's close() does not send LeaveGroup: its partitions stay reserved for it.
    a.close()
    a2 = member("instance-a")
    after = _wait_assigned([a2, b])
    assert after[id(a2)] == a_parts_before, "the restarted static member got different partitions"
    assert after[id(b)] == b_parts_before, "the other member's assignment changed"
    # Keep b polling a little longer: a rebalance triggered by a's return would reach it now.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        b.poll(0.1)
        a2.poll(0.1)
    assert assignments["instance-b"] == 1, f"b was reassigned {assignments['instance-b']} times: the group rebalanced"

    desc = _describe(broker.bootstrap, group)
    assert str(desc.state).endswith("STABLE"), desc.state
    ids_after = {m.group_instance_id: m.member_id for m in desc.members}
    assert ids_after["instance-b"] == ids_before["instance-b"]
    assert ids_after["instance-a"] != ids_before["instance-a"], "restart should get a new member id"
    assert len(desc.members) == 2
