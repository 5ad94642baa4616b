"""The `weir` CLI against a real three-broker cluster (etcd and brokers as processes): every
request reaches the broker that owns it (partition leaders, the group coordinator), wherever
the CLI was pointed, and `weir partitions` moves replicas and elects preferred leaders.

confluent-kafka's admin client is the independent witness of where leaders and coordinators
are; the CLI is run as an operator would, as a subprocess of the built binary."""

import json
import os
import signal
import subprocess

from confluent_kafka.admin import NewTopic

from conftest import _weir_bin
from helpers import WAIT_S, admin_client, wait_until
from test_cluster import (
    FAST,
    agreed_controller,
    leader_of,
    partitions_of,
    preferred_leaders_elected,
)

# Below the suite's 120 s per-test timeout, so a hung command fails the test and its
# cluster is still stopped.
CLI_TIMEOUT_S = 60


def cli(bootstrap, *args, stdin="", ok=True):
    """Runs `weir --brokers bootstrap args...`; returns the CompletedProcess (asserting success
    unless ok=False)."""
    p = subprocess.run(
        [_weir_bin(), "--brokers", bootstrap, *args],
        input=stdin.encode(),
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        env={**os.environ, "NO_COLOR": "1"},
    )
    out = p.stdout.decode()
    err = p.stderr.decode()
    if ok:
        assert p.returncode == 0, f"weir {' '.join(args)} failed ({p.returncode}): {err}"
    p.out, p.err = out, err
    return p


def cli_json(bootstrap, *args, stdin=""):
    return json.loads(cli(bootstrap, *args, "--output", "json", stdin=stdin).out)


def consume_all(bootstrap, topic):
    """Every record of `topic` through the CLI, as (partition, offset, value)."""
    out = cli(bootstrap, "consume", topic, "--from-beginning", "-e", "--output", "json").out
    recs = [json.loads(line) for line in out.splitlines() if line.strip()]
    return sorted((r["partition"], r["offset"], r["value"]) for r in recs)


def test_topic_produce_consume_reach_every_leader(cluster_factory, unique):
    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    # One broker as the only bootstrap: the others are found through Metadata.
    boot = c.broker(1).bootstrap
    topic = unique("cli-spread")
    out = cli(boot, "topic", "create", topic, "-p", "6", "-r", "3").out
    assert f"created topic {topic}" in out
    ps = wait_until("preferred leaders", lambda: preferred_leaders_elected(admin, topic, 6))
    leaders = {p.id: p.leader for p in ps.values()}
    assert set(leaders.values()) == {1, 2, 3}, leaders

    lines = "".join(f"k{i}:v{i}\n" for i in range(120))
    produced = cli_json(boot, "produce", topic, "--key-separator", ":", stdin=lines)
    assert produced["records"] == 120
    written = {p["partition"]: p for p in produced["partitions"]}
    assert {leaders[p] for p in written} == {1, 2, 3}, f"records reached leaders {written}"

    # Offsets of every partition, each from its own leader.
    desc = cli_json(boot, "topic", "describe", topic)
    assert [p["partition"] for p in desc["partitions"]] == list(range(6))
    for p in desc["partitions"]:
        if p["partition"] in written:
            assert p["log_end_offset"] == written[p["partition"]]["last_offset"] + 1, p
        assert p["log_start_offset"] == 0, p
    table = cli(boot, "topic", "describe", topic).out
    assert "NOT_LEADER" not in table and table.count("\n") >= 8, table

    got = consume_all(boot, topic)
    assert sorted(v for _, _, v in got) == sorted(f"v{i}" for i in range(120))
    for part, info in written.items():
        offs = [o for p, o, _ in got if p == part]
        assert offs[0] == info["first_offset"] and offs[-1] == info["last_offset"], (part, offs)

    # One partition, pinned, led by a broker other than the bootstrap.
    other = next(p for p, leader in sorted(leaders.items()) if leader != 1)
    cli(boot, "produce", topic, "--partition", str(other), stdin="pinned\n")
    one = cli(boot, "consume", topic, "--partition", str(other), "--from-beginning", "-e").out
    assert one.splitlines()[-1] == "pinned"


def test_group_commands_reach_the_coordinator(cluster_factory, unique):
    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("cli-group")
    group = unique("g")
    cli(c.bootstrap, "topic", "create", topic, "-p", "3", "-r", "3")
    wait_until("preferred leaders", lambda: preferred_leaders_elected(admin, topic, 3))

    def coordinator():
        d = admin.describe_consumer_groups([group], request_timeout=10)[group].result(WAIT_S)
        return d.coordinator.id if d.coordinator is not None and d.coordinator.id > 0 else None

    coord = wait_until("a group coordinator", coordinator)
    # Everything below goes through a broker that does not coordinate the group.
    boot = next(b.bootstrap for b in c.brokers if b.node_id != coord)

    cli(boot, "produce", topic, "--key-separator", ":",
        stdin="".join(f"k{i}:v{i}\n" for i in range(30)))
    out = cli(boot, "consume", topic, "--group", group, "--from-beginning", "-n", "30").out
    assert sorted(out.split()) == sorted(f"v{i}" for i in range(30))

    listed = cli_json(boot, "group", "list")
    assert group in [g["group_id"] for g in listed["groups"]], listed

    desc = cli_json(boot, "group", "describe", group)
    assert desc["state"] == "Empty", desc
    offsets = {o["partition"]: o for o in desc["offsets"]}
    assert sorted(offsets) == [0, 1, 2], desc
    assert all(o["lag"] == 0 for o in offsets.values()), desc

    cli(boot, "produce", topic, "--partition", "1", stdin="a\nb\nc\n")
    desc = cli_json(boot, "group", "describe", group)
    lag = {o["partition"]: o["lag"] for o in desc["offsets"]}
    assert lag == {0: 0, 1: 3, 2: 0}, desc

    reset = cli_json(boot, "group", "reset-offsets", group, "--topic", topic, "--to-earliest")
    assert {o["partition"]: o["committed_offset"] for o in reset["offsets"]} == {0: 0, 1: 0, 2: 0}
    desc = cli_json(boot, "group", "describe", group)
    assert {o["partition"]: o["committed_offset"] for o in desc["offsets"]} == {0: 0, 1: 0, 2: 0}
    assert sum(o["lag"] for o in desc["offsets"]) >= 33, desc

    # The group resumes from the reset offsets.
    again = cli(boot, "consume", topic, "--group", group, "-n", "33").out
    assert sorted(again.split()) == sorted([f"v{i}" for i in range(30)] + ["a", "b", "c"])

    cli(boot, "group", "delete", group)
    listed = cli_json(boot, "group", "list")
    assert group not in [g["group_id"] for g in listed["groups"]], listed


def test_reassign_moves_a_partition_and_its_records(cluster_factory, unique):
    # The default broker session (9 s), so a broker paused for a moment stays registered.
    c = cluster_factory(3, ("--replica-election-timeout-ms", "1000",
                            "--leader-rebalance-interval-ms", "2000"))
    admin = admin_client(c.bootstrap)
    controller = wait_until("brokers agreeing on a controller", lambda: agreed_controller(c))
    # The broker the partition moves to must not be the controller: it is paused below.
    new = next(n for n in (3, 2, 1) if n != controller)
    old, keep = [n for n in (1, 2, 3) if n != new]
    topic = unique("cli-move")
    fs = admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[old, keep]])],
                             request_timeout=WAIT_S)
    fs[topic].result(WAIT_S)
    wait_until("the preferred leader", lambda: preferred_leaders_elected(admin, topic, 1))

    cli(c.bootstrap, "produce", topic, stdin="".join(f"r{i}\n" for i in range(20)))
    before = consume_all(c.bootstrap, topic)
    assert [v for _, _, v in before] == [f"r{i}" for i in range(20)]

    assert cli(c.bootstrap, "partitions", "reassignments").out.strip() == \
        "no reassignment in progress"

    # While the new replica cannot catch up (its broker paused), the move is in progress.
    nb = c.broker(new)
    os.kill(nb.proc.pid, signal.SIGSTOP)
    try:
        out = cli(c.bootstrap, "partitions", "reassign", "--topic", topic, "--partition", "0",
                  "--replicas", f"{keep},{new}").out
        assert f"reassigning {topic}[0] to replicas {keep},{new}" in out
        # (Each broker learns the new target from etcd a moment after it is written.)
        moving = wait_until("the move listed", lambda: cli_json(
            c.bootstrap, "partitions", "reassignments", "--topic", topic)["reassignments"])
        assert moving == [{
            "topic": topic, "partition": 0, "replicas": [keep, new, old],
            "adding": [new], "removing": [old],
        }], moving
        table = cli(c.bootstrap, "partitions", "reassignments").out
        assert topic in table and "ADDING" in table, table
        # Cancelled: back to the replicas it has, nothing in progress.
        cli(c.bootstrap, "partitions", "reassign", "--topic", topic, "--partition", "0",
            "--cancel")
        wait_until("no move listed", lambda: cli_json(
            c.bootstrap, "partitions", "reassignments")["reassignments"] == [])
        again = cli(c.bootstrap, "partitions", "reassign", "--topic", topic, "--partition", "0",
                    "--cancel", ok=False)
        assert again.returncode == 1 and "NO_REASSIGNMENT_IN_PROGRESS" in again.err, again.err
    finally:
        os.kill(nb.proc.pid, signal.SIGCONT)
    assert sorted(partitions_of(admin, topic)[0].replicas) == sorted([old, keep])

    out = cli(c.bootstrap, "partitions", "reassign", "--topic", topic, "--partition", "0",
              "--replicas", f"{keep},{new}", "--wait").out
    assert f"moved {topic}[0] to replicas {keep},{new}" in out
    assert cli_json(c.bootstrap, "partitions", "reassignments")["reassignments"] == []
    wait_until(
        "the new replicas in sync",
        lambda: (lambda ps: ps and sorted(ps[0].replicas) == sorted([keep, new])
                 and sorted(ps[0].isrs) == sorted([keep, new]))(partitions_of(admin, topic)),
    )
    assert consume_all(c.bootstrap, topic) == before

    # The old replica's broker is gone for good: the records are where they were moved.
    c.broker(old).kill9()
    assert consume_all(c.live_bootstrap(), topic) == before


def test_elect_leaders_returns_leadership_to_the_preferred_replica(cluster_factory, unique):
    # No automatic rebalancing: the CLI must do it.
    c = cluster_factory(3, ("--broker-session-timeout-ms", "3000",
                            "--replica-election-timeout-ms", "1000",
                            "--leader-rebalance-interval-ms", "0"))
    admin = admin_client(c.bootstrap)
    topic = unique("cli-elect")
    cli(c.bootstrap, "topic", "create", topic, "-p", "1", "-r", "3")
    ps = wait_until("the preferred leader", lambda: preferred_leaders_elected(admin, topic, 1))
    preferred = ps[0].leader
    c.broker(preferred).restart()
    wait_until(
        "another leader, and the old one back in sync",
        lambda: (lambda ps: ps if ps and ps[0].leader not in (-1, preferred)
                 and sorted(ps[0].isrs) == [1, 2, 3] else None)(partitions_of(admin, topic)),
        timeout=45,
    )

    # As an operator would: ask until the preferred replica can take over (the leader may
    # count the restarted replica in sync a moment before it has caught up).
    def elect():
        p = cli(c.bootstrap, "partitions", "elect-leaders", "--topic", topic, "--partition", "0",
                "--output", "json", ok=False)
        if p.returncode != 0:
            assert "PREFERRED_LEADER_NOT_AVAILABLE" in p.err or "REQUEST_TIMED_OUT" in p.err, \
                p.err
            return None
        return json.loads(p.out)

    res = wait_until("a successful election", elect, timeout=60, interval=1)
    assert res["results"] == [{"topic": topic, "partition": 0, "error": None, "message": None,
                               "result": "elected"}], res
    wait_until("the preferred leader back", lambda: leader_of(admin, topic, 0) == preferred)
    out = cli(c.bootstrap, "partitions", "elect-leaders", "--topic", topic).out
    assert "already leads" in out, out
    out = cli(c.bootstrap, "partitions", "elect-leaders", "--all").out
    assert out.strip() == "every partition is led by its preferred replica", out
    missing = cli(c.bootstrap, "partitions", "elect-leaders", "--topic", unique("nope"),
                  "--partition", "0", ok=False)
    assert missing.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in missing.err, missing.err


def test_cli_waits_out_a_leader_failover(cluster_factory, unique):
    """A leader killed with SIGKILL: produce and describe through the CLI retry until a new
    leader is elected instead of failing with NOT_LEADER_OR_FOLLOWER."""
    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("cli-failover")
    cli(c.bootstrap, "topic", "create", topic, "-p", "1", "-r", "3")
    wait_until("the preferred leader", lambda: preferred_leaders_elected(admin, topic, 1))
    cli(c.bootstrap, "produce", topic, stdin="before\n")
    victim = leader_of(admin, topic, 0)
    c.broker(victim).kill9()
    live = c.live_bootstrap()
    # The new leader's first batch is a control batch, last in the log until the next
    # record: reading to the end must step over it, not wait for a record forever.
    assert [v for _, _, v in consume_all(live, topic)] == ["before"]
    cli(live, "produce", topic, stdin="after\n")
    desc = cli_json(live, "topic", "describe", topic)
    assert desc["partitions"][0]["log_end_offset"] >= 2, desc
    assert [v for _, _, v in consume_all(live, topic)] == ["before", "after"]
    assert leader_of(admin, topic, 0) not in (None, victim)
