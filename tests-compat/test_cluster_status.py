"""The operator's view of a 3-broker cluster: the admin API's /v1/cluster views, the
`weir cluster` CLI and the replication metrics, before, during and after one broker's kill -9.

Every wait below is a hang guard (a generous deadline while the cluster converges), never an
assertion on speed.
"""

import json
import struct
import subprocess
import time
import urllib.error
import urllib.request

from confluent_kafka.admin import NewTopic

from helpers import admin_client, produce_and_flush, producer
from wire import call, carray, cstr

CONVERGE_S = 60.0
# Short timers: a killed broker's lease runs out, and its replicas drop out of the ISR, quickly.
FAST = (
    "--broker-session-timeout-ms", "3000",
    "--replica-election-timeout-ms", "1000",
    "--leader-rebalance-interval-ms", "2000",
)


def get(admin_port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}{path}", timeout=10) as r:
        return r.read().decode()


def get_json(admin_port, path):
    return json.loads(get(admin_port, path))


def sample(admin_port, series):
    """The value of the sample `series` (name and labels as exposed) in /metrics; ValueError
    when absent (e.g. the broker is still opening)."""
    for line in get(admin_port, "/metrics").splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise ValueError(f"no sample {series} on admin port {admin_port}")


def under_replicated_total(brokers):
    """weir_under_replicated_partitions summed over `brokers` (each counts what it leads)."""
    return sum(sample(b.admin_port, "weir_under_replicated_partitions") for b in brokers)


def cli(bin_path, bootstrap, *args):
    out = subprocess.run(
        [bin_path, "--brokers", bootstrap, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"weir {args} failed: {out.stderr}"
    return out.stdout


def until(what, check, timeout=CONVERGE_S):
    """Polls `check` until it returns a truthy value (returned); fails with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not reached within {timeout:.0f}s (last seen: {last!r})")


def describe_quorum(bootstrap):
    """DescribeQuorum v2 (API 55) of `__cluster_metadata` partition 0, as kafka-metadata-quorum
    asks it (the Python clients here have no call for it). Returns (top-level error, the
    partition's error, leader, leader epoch, high watermark, voters as [(id, log end offset)],
    observer ids)."""
    body = carray([cstr("__cluster_metadata") + carray([struct.pack(">i", 0) + b"\x00"]) + b"\x00"])
    r = call(bootstrap, 55, body + b"\x00", version=2)
    error = r.int16()
    r.cstr()

    def replica(r):
        replica_id = r.int32()
        r.take(16)  # directory id
        log_end_offset = r.int64()
        r.int64()  # last fetch
        r.int64()  # last caught up
        r.tags()
        return replica_id, log_end_offset

    def partition(r):
        r.int32()
        code = r.int16()
        r.cstr()
        leader, epoch, hw = r.int32(), r.int32(), r.int64()
        voters = r.carray(replica)
        observers = [i for i, _ in r.carray(replica)]
        r.tags()
        return code, leader, epoch, hw, voters, sorted(observers)

    def topic(r):
        r.cstr()
        ps = r.carray(partition)
        r.tags()
        return ps

    (p,) = [p for ps in r.carray(topic) for p in ps]
    return (error, *p)


def test_under_replication_shows_after_a_kill_and_clears_after_the_restart(
    cluster_factory, unique
):
    c = cluster_factory(3, FAST)
    ids = sorted(b.node_id for b in c.brokers)
    topic = unique("status")

    # Every broker sees the three brokers and the same controller.
    def agreed():
        views = [get_json(b.admin_port, "/v1/cluster") for b in c.brokers]
        brokers_ok = all(sorted(x["node_id"] for x in v["brokers"]) == ids for v in views)
        controllers = {v["controller_id"] for v in views}
        if brokers_ok and len(controllers) == 1 and None not in controllers:
            return views
        return None

    views = until("all brokers list 3 brokers and one controller", agreed)
    controller = views[0]["controller_id"]
    assert controller in ids
    for v in views:
        assert v["mode"] == "cluster"
        assert v["etcd_reachable"] is True
        assert v["is_controller"] == (v["node_id"] == controller)
    assert len({v["cluster_id"] for v in views}) == 1
    until(
        "one broker reports itself the active controller",
        lambda: sum(sample(b.admin_port, "weir_controller_active") for b in c.brokers) == 1,
    )
    # DescribeQuorum (what kafka-metadata-quorum shows): every broker names the controller as
    # the metadata's leader and only voter, the other brokers as observers, and the etcd
    # revision of the metadata it applied as the high watermark.
    for b in c.brokers:
        error, code, leader, epoch, hw, voters, observers = describe_quorum(b.bootstrap)
        assert (error, code) == (0, 0)
        assert (leader, epoch) == (controller, 0)
        assert hw > 0
        assert voters == [(controller, hw)]
        assert observers == [i for i in ids if i != controller]

    bootstrap = ",".join(b.bootstrap for b in c.brokers)
    admin = admin_client(bootstrap)
    futures = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
    futures[topic].result(timeout=30)

    def healthy(port):
        parts = get_json(port, f"/v1/cluster/partitions?topic={topic}")["partitions"]
        if len(parts) == 3 and all(
            len(p["replicas"]) == 3
            and p["isr"] == sorted(p["replicas"])
            and p["leader"] == p["replicas"][0]
            and not p["under_replicated"]
            and not p["offline"]
            for p in parts
        ):
            return parts
        return None

    # Led by their preferred replicas, so no rebalance moves a leader during the test.
    parts = until(
        "RF=3 partitions with a full ISR, led by their preferred replicas",
        lambda: healthy(c.brokers[0].admin_port),
    )
    assert [p["partition"] for p in parts] == [0, 1, 2]

    prod = producer(bootstrap, acks="all")
    produce_and_flush(prod, topic, [{"value": f"v{i}".encode()} for i in range(30)])

    # Kill a follower of partition 0 (it holds every partition, and leads whichever it leads:
    # those fail over). Partition 0's leader stays, and sees the follower fall behind.
    leader0 = parts[0]["leader"]
    victim_id = next(r for r in parts[0]["replicas"] if r != leader0)
    victim = c.broker(victim_id)
    survivors = [b for b in c.brokers if b.node_id != victim_id]
    victim.kill9()
    after_kill = 20
    produce_and_flush(
        prod, topic, [{"value": f"w{i}".encode(), "partition": 0} for i in range(after_kill)]
    )

    def under_replicated(port):
        body = get_json(port, f"/v1/cluster/partitions?topic={topic}&under_replicated=true")
        ps = body["partitions"]
        if len(ps) == 3 and all(
            victim_id in q["offline_replicas"]
            and victim_id not in q["isr"]
            and q["leader"] not in (None, victim_id)
            and not q["offline"]
            for q in ps
        ):
            return body
        return None

    for s in survivors:
        body = until(
            f"node {s.node_id} shows the partitions under-replicated",
            lambda s=s: under_replicated(s.admin_port),
        )
        assert body["total"] == 3
    cluster = get_json(survivors[0].admin_port, "/v1/cluster")
    assert sorted(b["node_id"] for b in cluster["brokers"]) == [s.node_id for s in survivors]

    weir = c.brokers[0].bin

    def cli_under_replicated(via):
        out = cli(weir, via.bootstrap, "cluster", "partitions", "--under-replicated",
                  "--topic", topic, "--output", "json")
        return json.loads(out)["partitions"]

    until(
        "the CLI lists the under-replicated partitions",
        lambda: [q["partition"] for q in cli_under_replicated(survivors[0])
                 if victim_id in q["offline_replicas"]] == [0, 1, 2],
    )
    table = cli(weir, survivors[0].bootstrap, "cluster", "partitions", "--under-replicated",
                "--topic", topic)
    assert sum("under-replicated" in line for line in table.splitlines()) == 3, table

    # The topic's partitions are all led by survivors now, so the survivors' gauges count them.
    until(
        "the survivors' under-replicated gauges count the topic's partitions",
        lambda: under_replicated_total(survivors) >= 3,
    )

    # Partition 0's leader: the victim is out of sync, at least the records written since the
    # kill behind, in /v1/cluster/replicas and in the follower-lag gauge.
    lead = c.broker(leader0)
    replica0 = get_json(lead.admin_port, f"/v1/cluster/replicas?topic={topic}&role=leader")
    replica0 = next(r for r in replica0["replicas"] if r["partition"] == 0)
    behind = next(f for f in replica0["followers"] if f["node_id"] == victim_id)
    assert behind["in_sync"] is False
    assert behind["lag_records"] >= after_kill
    lag_series = (
        f'weir_partition_follower_lag_records{{topic="{topic}",partition="0",'
        f'follower="{victim_id}"}}'
    )
    assert sample(lead.admin_port, lag_series) >= after_kill

    victim.start()

    def recovered(port):
        body = get_json(port, f"/v1/cluster/partitions?topic={topic}&under_replicated=true")
        return body["total"] == 0 and healthy(port)

    for b in c.brokers:
        until(
            f"node {b.node_id} shows the partitions fully replicated again",
            lambda b=b: recovered(b.admin_port),
        )
    until(
        "the restarted follower catches up with partition 0's leader",
        lambda: sample(lead.admin_port, lag_series) == 0,
    )
    until(
        "no broker reports under-replicated partitions",
        lambda: under_replicated_total(c.brokers) == 0,
    )
    until(
        "the CLI lists no under-replicated partition",
        lambda: cli_under_replicated(c.brokers[0]) == [],
    )
    assert sorted(
        b["node_id"] for b in get_json(victim.admin_port, "/v1/cluster")["brokers"]
    ) == ids
