"""A three-broker Weir cluster (real etcd, real processes) seen by confluent-kafka: replicated
topics, leaders spread and preferred, and no acknowledged record lost or duplicated when a
leader or the controller is killed with SIGKILL under load."""

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

import helpers
from helpers import (
    WAIT_S,
    admin_client,
    consume_n,
    consumer,
    kafka_python_request,
    produce_and_flush,
    producer,
    wait_until,
)

# Short timers so failures are handled within a test's time budget.
FAST = (
    "--broker-session-timeout-ms", "3000",
    "--replica-election-timeout-ms", "1000",
    "--leader-rebalance-interval-ms", "2000",
)


def create_replicated(admin, name, partitions, rf=3):
    """CreateTopics with `rf` replicas. Until `rf` brokers have registered (a cluster just
    started), Kafka and Weir answer INVALID_REPLICATION_FACTOR and create nothing: try again.
    librdkafka (2.10 and later) also drops its bootstrap connections once a Metadata answer
    names the cluster's brokers, failing a request in flight on one with _DESTROY_BROKER
    although the broker may have done it: try again, and then TOPIC_ALREADY_EXISTS is success."""
    from confluent_kafka import KafkaError

    deadline = time.monotonic() + WAIT_S
    answer_lost = False
    while True:
        fs = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=rf)],
            operation_timeout=WAIT_S,
            request_timeout=WAIT_S,
        )
        try:
            fs[name].result(WAIT_S)
            return
        except KafkaException as e:
            code = e.args[0].code()
            if answer_lost and code == KafkaError.TOPIC_ALREADY_EXISTS:
                return
            answer_lost |= code == KafkaError._DESTROY_BROKER
            retry = code in (KafkaError.INVALID_REPLICATION_FACTOR, KafkaError._DESTROY_BROKER)
            if not retry or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def partitions_of(admin, topic):
    md = admin.list_topics(topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return t.partitions


def preferred_leaders_elected(admin, topic, partitions):
    """Every partition led by its preferred (first) replica with the full replica set in sync."""
    ps = partitions_of(admin, topic)
    if ps is None or len(ps) != partitions:
        return None
    for p in ps.values():
        if p.error is not None or p.leader < 0 or p.leader != p.replicas[0]:
            return None
        if sorted(p.isrs) != sorted(p.replicas):
            return None
    return ps


def leader_of(admin, topic, partition):
    ps = partitions_of(admin, topic)
    if ps is None or partition not in ps or ps[partition].leader < 0:
        return None
    return ps[partition].leader


class Checker:
    """A background idempotent acks=all producer writing increasing integers, remembering which
    were acknowledged; `verify` reads the topic back and finds lost and duplicated values."""

    def __init__(self, bootstrap, topic, pace_s=0.002, **conf):
        self.topic = topic
        self.acked = set()
        self.acked_per_partition = {}
        self.errors = []
        self.sent = 0
        self._stop = threading.Event()
        self._pace_s = pace_s
        self._p = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 60000,
                **conf,
            }
        )
        helpers._CLIENTS.append(("producer", self._p))  # closed after the test, even a failed one
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked.add(int(msg.value()))
            p = msg.partition()
            self.acked_per_partition[p] = self.acked_per_partition.get(p, 0) + 1

    def _run(self):
        while not self._stop.is_set():
            try:
                self._p.produce(
                    self.topic,
                    key=str(self.sent % 11).encode(),
                    value=str(self.sent).encode(),
                    on_delivery=self._delivered,
                )
                self.sent += 1
            except BufferError:
                pass
            self._p.poll(0)
            time.sleep(self._pace_s)

    def start(self):
        self._thread.start()
        return self

    def wait_acked(self, n, timeout=WAIT_S):
        wait_until(f"{n} acknowledged records", lambda: len(self.acked) >= n, timeout)

    def wait_acked_in(self, partition, more, timeout=WAIT_S):
        """Until `more` further records are acknowledged in `partition`."""
        want = self.acked_per_partition.get(partition, 0) + more
        wait_until(
            f"{want} acknowledged records in partition {partition}",
            lambda: self.acked_per_partition.get(partition, 0) >= want,
            timeout,
        )

    def stop(self, flush_timeout=90):
        self._stop.set()
        self._thread.join()
        left = self._p.flush(flush_timeout)
        assert left == 0, f"{left} records still in flight after {flush_timeout}s"

    def stop_and_check_exactly_once(self, bootstrap, partitions):
        """Stops producing, then requires no delivery error and every acknowledged record read
        back exactly once."""
        self.stop()
        assert not self.errors, f"delivery errors: {self.errors[:5]}"
        lost, dups, _ = self.verify(bootstrap, partitions)
        assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:10]}"
        assert not dups, f"{len(dups)} records duplicated, e.g. {dups[:10]}"

    def verify(self, bootstrap, partitions):
        c = consumer(bootstrap)
        c.assign([TopicPartition(self.topic, p, 0) for p in range(partitions)])
        seen = {}
        deadline = time.monotonic() + 60
        idle_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - idle_since < 5:
            m = c.poll(0.5)
            if m is None or m.error() is not None:
                continue
            idle_since = time.monotonic()
            v = int(m.value())
            seen[v] = seen.get(v, 0) + 1
        lost = sorted(v for v in self.acked if v not in seen)
        dups = sorted(v for v, n in seen.items() if n > 1)
        return lost, dups, seen


def test_cluster_forms_and_places_replicas(cluster_factory, unique):
    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    md = wait_until(
        "three brokers in metadata",
        lambda: (lambda m: m if sorted(m.brokers) == [1, 2, 3] else None)(
            admin.list_topics(timeout=10)
        ),
    )
    assert {b.port for b in md.brokers.values()} == {b.port for b in c.brokers}
    desc = admin.describe_cluster(request_timeout=10).result(WAIT_S)
    assert sorted(n.id for n in desc.nodes) == [1, 2, 3]
    assert desc.controller is not None and desc.controller.id in (1, 2, 3)

    topic = unique("replicated")
    create_replicated(admin, topic, partitions=6)
    ps = wait_until(
        "preferred leaders with full ISR",
        lambda: preferred_leaders_elected(admin, topic, 6),
    )
    for p in ps.values():
        assert len(p.replicas) == 3 and len(set(p.replicas)) == 3, p
    led = {n: sum(1 for p in ps.values() if p.leader == n) for n in (1, 2, 3)}
    assert led == {1: 2, 2: 2, 3: 2}, f"leaders not spread evenly: {led}"

    # More replicas than brokers: Kafka's INVALID_REPLICATION_FACTOR.
    bad = unique("too-many-replicas")
    with pytest.raises(KafkaException) as e:
        create_replicated(admin, bad, partitions=1, rf=4)
    assert e.value.args[0].name() == "INVALID_REPLICATION_FACTOR"

    # Records written with acks=all through any broker are read back in order.
    p = producer(c.bootstrap, acks="all")
    produce_and_flush(p, topic, [{"value": f"v{i}".encode(), "partition": i % 6} for i in range(300)])
    cons = consumer(c.bootstrap)
    cons.assign([TopicPartition(topic, i, 0) for i in range(6)])
    got = consume_n(cons, 300)
    assert sorted(m.value() for m in got) == sorted(f"v{i}".encode() for i in range(300))
    for part in range(6):
        # In produce order; a leader's epoch-start control record may take an offset (Kafka's
        # consumers skip control batches, as with transaction markers).
        got_part = [m for m in got if m.partition() == part]
        assert [m.value() for m in got_part] == [f"v{i}".encode() for i in range(part, 300, 6)]
        offs = [m.offset() for m in got_part]
        assert offs == sorted(set(offs)), f"partition {part} offsets {offs[:5]}..."


def test_leader_killed_under_load_loses_and_duplicates_nothing(cluster_factory, unique):
    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("chaos")
    create_replicated(admin, topic, partitions=3)
    wait_until("preferred leaders", lambda: preferred_leaders_elected(admin, topic, 3))

    # A consumer group reading along the way must also come through the failure.
    group = unique("g")
    group_seen = set()
    group_stop = threading.Event()

    def group_reader():
        gc = Consumer(
            {
                "bootstrap.servers": c.bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 200,
            }
        )
        gc.subscribe([topic])
        try:
            while not group_stop.is_set():
                m = gc.poll(0.2)
                if m is not None and m.error() is None:
                    group_seen.add(int(m.value()))
        finally:
            gc.close()

    reader = threading.Thread(target=group_reader, daemon=True)
    reader.start()

    checker = Checker(c.bootstrap, topic).start()
    checker.wait_acked(300)
    victim = leader_of(admin, topic, 0)
    assert victim in (1, 2, 3)
    c.broker(victim).kill9()
    acked_at_kill = len(checker.acked)
    # Writes go on through the new leaders.
    checker.wait_acked(acked_at_kill + 500, timeout=45)
    c.broker(victim).start()
    # The restarted broker catches up and takes its preferred partitions back.
    wait_until(
        "preferred leaders after restart",
        lambda: preferred_leaders_elected(admin, topic, 3),
        timeout=60,
    )
    checker.wait_acked(len(checker.acked) + 300, timeout=45)
    checker.stop_and_check_exactly_once(c.bootstrap, 3)
    assert len(checker.acked) > 1000

    wait_until(
        "the consumer group to read every acknowledged record",
        lambda: checker.acked <= group_seen,
        timeout=60,
    )
    group_stop.set()
    reader.join(30)


def agreed_controller(c):
    """The controller every live broker names in Metadata, once they agree on one."""
    ids = set()
    for b in c.brokers:
        if b.proc is None or b.proc.poll() is not None:
            continue
        ids.add(admin_client(b.bootstrap).list_topics(timeout=10).controller_id)
    return ids.pop() if len(ids) == 1 and -1 not in ids else None


def test_controller_killed_cluster_goes_on(cluster_factory, unique):
    # Four brokers, so the dead broker's replicas have somewhere to go.
    c = cluster_factory(4, FAST + ("--replica-replacement-delay-ms", "4000"))
    admin = admin_client(c.bootstrap)
    controller = wait_until("brokers agreeing on a controller", lambda: agreed_controller(c))
    topic = unique("before")
    create_replicated(admin, topic, partitions=4, rf=3)
    wait_until("preferred leaders", lambda: preferred_leaders_elected(admin, topic, 4))

    c.broker(controller).kill9()
    survivors = [n for n in (1, 2, 3, 4) if n != controller]
    admin = admin_client(c.live_bootstrap())
    new_controller = wait_until(
        "a new controller",
        lambda: (lambda n: n if n in survivors else None)(agreed_controller(c)),
    )
    assert new_controller != controller
    # Once its session has expired the dead broker leaves the metadata, as in Kafka.
    wait_until(
        "the dead broker gone from metadata",
        lambda: sorted(admin.list_topics(timeout=10).brokers) == sorted(survivors),
    )

    # Topics can still be created, placed on the live brokers only.
    after = unique("after")
    create_replicated(admin, after, partitions=2, rf=3)
    ps = wait_until(
        "leaders for the new topic", lambda: preferred_leaders_elected(admin, after, 2)
    )
    for p in ps.values():
        assert controller not in p.replicas, p

    # The dead broker's replicas move to the live broker that had none, and catch up.
    wait_until(
        "replicas moved off the dead broker",
        lambda: (
            lambda ps: ps
            if ps
            and all(
                controller not in p.replicas and len(p.replicas) == 3 and len(p.isrs) == 3
                for p in ps.values()
            )
            else None
        )(partitions_of(admin, topic)),
        timeout=45,
    )
    p = producer(c.live_bootstrap(), acks="all")
    produce_and_flush(p, topic, [{"value": b"x", "partition": i} for i in range(4)])


def test_graceful_rolling_restart_loses_and_duplicates_nothing(cluster_factory, unique):
    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("rolling")
    create_replicated(admin, topic, partitions=3)
    wait_until("preferred leaders", lambda: preferred_leaders_elected(admin, topic, 3))
    checker = Checker(c.bootstrap, topic).start()
    checker.wait_acked(200)
    for b in c.brokers:
        b.restart()
        wait_until(
            f"preferred leaders after restarting broker {b.node_id}",
            lambda: preferred_leaders_elected(admin, topic, 3),
            timeout=60,
        )
        checker.wait_acked(len(checker.acked) + 200, timeout=45)
    checker.stop_and_check_exactly_once(c.bootstrap, 3)


def test_elect_leaders_moves_leadership_to_the_preferred_replica(cluster_factory, unique):
    from confluent_kafka import ElectionType

    # No automatic rebalancing here: the admin request must do it.
    c = cluster_factory(
        3,
        (
            "--broker-session-timeout-ms", "3000",
            "--replica-election-timeout-ms", "1000",
            "--leader-rebalance-interval-ms", "0",
        ),
    )
    admin = admin_client(c.bootstrap)
    topic = unique("elect")
    create_replicated(admin, topic, partitions=1)
    # The preferred replica campaigns first on a new partition, but on a loaded machine another
    # replica can win the first election; without rebalancing it then keeps leading, which is
    # the state the restart below would produce.
    ps = wait_until(
        "a leader with every replica in sync",
        lambda: (
            lambda ps: ps
            if ps and ps[0].leader >= 0 and sorted(ps[0].isrs) == [1, 2, 3]
            else None
        )(partitions_of(admin, topic)),
    )
    preferred = ps[0].replicas[0]
    if ps[0].leader == preferred:
        # Restart the leader: leadership moves away and, without rebalancing, stays away.
        c.broker(preferred).restart()
    wait_until(
        "another leader, and the old one back in sync",
        lambda: (
            lambda ps: ps
            if ps and ps[0].leader not in (-1, preferred) and sorted(ps[0].isrs) == [1, 2, 3]
            else None
        )(partitions_of(admin, topic)),
        timeout=45,
    )
    # The old leader may still count the restarted replica in sync for a moment (as Kafka's
    # ISR does until replica.lag.time.max.ms): ask until the election succeeds, as an operator
    # would.
    def elect():
        res = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(WAIT_S)
        err = res[TopicPartition(topic, 0)]
        assert err is None or err.name() in (
            "PREFERRED_LEADER_NOT_AVAILABLE",
            "REQUEST_TIMED_OUT",
        ), res
        return err is None

    wait_until("a successful preferred-leader election", elect, timeout=60, interval=1)
    wait_until("the preferred leader back", lambda: leader_of(admin, topic, 0) == preferred)
    # Asking again: nothing to do, which Kafka reports as ELECTION_NOT_NEEDED.
    again = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(WAIT_S)
    err = again[TopicPartition(topic, 0)]
    assert err is not None and err.name() == "ELECTION_NOT_NEEDED", again
    # An unknown partition: UNKNOWN_TOPIC_OR_PARTITION.
    missing = TopicPartition(f"missing-{uuid.uuid4().hex[:8]}", 0)
    res = admin.elect_leaders(ElectionType.PREFERRED, [missing]).result(WAIT_S)
    assert res[missing] is not None and res[missing].name() == "UNKNOWN_TOPIC_OR_PART", res


def test_data_keeps_flowing_while_etcd_is_down(cluster_factory, unique):
    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("etcd-down")
    create_replicated(admin, topic, partitions=3)
    wait_until("preferred leaders", lambda: preferred_leaders_elected(admin, topic, 3))

    c.etcd.stop()
    # Replication does not go through etcd: acks=all writes and reads go on.
    p = producer(c.bootstrap, acks="all", **{"message.timeout.ms": 20000})
    produce_and_flush(p, topic, [{"value": f"down-{i}".encode(), "partition": i % 3} for i in range(90)])
    # Metadata changes need etcd: a new topic is refused with a retriable error, not lost.
    with pytest.raises(KafkaException) as e:
        create_replicated(admin, unique("while-down"), partitions=1)
    assert e.value.args[0].retriable() or e.value.args[0].name() == "REQUEST_TIMED_OUT", e.value

    c.etcd.start()
    after = unique("etcd-back")
    wait_until(
        "topic creation working again",
        lambda: create_replicated(admin, after, partitions=1) is None,
        timeout=45,
        interval=1,
    )
    wait_until("a leader for the new topic", lambda: preferred_leaders_elected(admin, after, 1))
    produce_and_flush(p, topic, [{"value": f"back-{i}".encode(), "partition": i % 3} for i in range(30)])
    cons = consumer(c.bootstrap)
    cons.assign([TopicPartition(topic, i, 0) for i in range(3)])
    got = consume_n(cons, 120)
    assert sorted(m.value() for m in got) == sorted(
        [f"down-{i}".encode() for i in range(90)] + [f"back-{i}".encode() for i in range(30)]
    )


def test_topic_config_change_reaches_every_broker(cluster_factory, unique):
    import json
    import urllib.error
    import urllib.request

    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("configs")
    create_replicated(admin, topic, partitions=1)
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", "123456", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(WAIT_S)

    def seen_by_every_broker(name, value):
        for b in c.brokers:
            url = f"http://127.0.0.1:{b.admin_port}/v1/topics/{topic}"
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    configs = {e["name"]: e["value"] for e in json.load(r)["configs"]}
            except urllib.error.HTTPError as e:
                # A broker that has not applied the topic's creation yet answers 404.
                if e.code == 404:
                    return None
                raise
            if configs.get(name) != value:
                return None
        return True

    wait_until("retention.ms on every broker", lambda: seen_by_every_broker("retention.ms", "123456"))

    # A cluster-wide broker default (kept in etcd) is the topic's default on every broker.
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KafkaConfigResource
    from kafka.admin import ConfigResourceType

    kafka_admin = KafkaAdminClient(bootstrap_servers=c.bootstrap, request_timeout_ms=int(WAIT_S * 1000))
    try:
        response = kafka_admin.alter_configs(
            [KafkaConfigResource(ConfigResourceType.BROKER, "", configs={"log.retention.bytes": "999999"})]
        )
        assert [r[0] for r in response.resources] == [0], response
    finally:
        kafka_admin.close()
    wait_until(
        "the cluster default retention.bytes on every broker",
        lambda: seen_by_every_broker("retention.bytes", "999999"),
    )


def test_frozen_leader_is_replaced_and_steps_down_when_it_wakes(cluster_factory, unique):
    """SIGSTOP stands for a leader cut off from the others (a long GC pause, a network split):
    the others elect a new leader; when the old one wakes up it must not acknowledge anything
    as leader of its old epoch."""
    import os
    import signal as sig

    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("frozen")
    create_replicated(admin, topic, partitions=1)
    wait_until("a preferred leader", lambda: preferred_leaders_elected(admin, topic, 1))
    # A frozen broker keeps its sockets open: the client only gives up on it after its request
    # timeouts (30 s and 60 s by default), as with Kafka.
    checker = Checker(
        c.bootstrap, topic, **{"request.timeout.ms": 5000, "socket.timeout.ms": 5000}
    ).start()
    checker.wait_acked(300)
    victim = leader_of(admin, topic, 0)
    os.kill(c.broker(victim).proc.pid, sig.SIGSTOP)
    try:
        acked = len(checker.acked)
        checker.wait_acked(acked + 300, timeout=45)
        # Asked of the others (a client asking the frozen broker waits for its timeout).
        others = admin_client(",".join(b.bootstrap for b in c.brokers if b.node_id != victim))
        wait_until(
            "a new leader",
            lambda: leader_of(others, topic, 0) not in (None, -1, victim),
        )
    finally:
        os.kill(c.broker(victim).proc.pid, sig.SIGCONT)
    checker.wait_acked(len(checker.acked) + 300, timeout=45)
    checker.stop_and_check_exactly_once(c.bootstrap, 1)


NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7


def idempotent_batch(producer_id, value):
    """One record batch of an idempotent producer (epoch 0, sequence 0), as bytes, so that the
    very same batch can be sent again as a client's retry does."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=producer_id,
        producer_epoch=0,
        base_sequence=0,
        batch_size=1 << 20,
    )
    b.append(0, timestamp=int(time.time() * 1000), key=None, value=value, headers=[])
    return bytes(b.build())


def produce_to(c, node, topic, batch, timeout_ms):
    """An acks=all Produce of `batch` to partition 0 sent to broker `node`: (error code, offset)."""
    from kafka.protocol.produce import ProduceRequest

    resp = send_to(
        c,
        node,
        ProduceRequest[3](
            transactional_id=None,
            required_acks=-1,
            timeout=timeout_ms,
            topics=[(topic, [(0, batch)])],
        ),
    )
    ((part,),) = [t["partitions"] for t in resp["topics"]]
    return part["error_code"], part["offset"]


def test_a_retried_batch_is_acknowledged_only_once_committed(cluster_factory, unique):
    """An idempotent producer's retry of a batch its leader holds but has not committed (both
    followers are frozen) is answered as the original: not before a majority holds it (acks=all),
    and never by a broker that no longer leads. Kafka waits for the high watermark for a
    duplicate too; answering at once would acknowledge a record a failover can still lose."""
    import os
    import signal as sig

    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("retry")
    create_replicated(admin, topic, partitions=1)
    wait_until("a preferred leader", lambda: preferred_leaders_elected(admin, topic, 1))
    lead = leader_of(admin, topic, 0)
    followers = [b for b in c.brokers if b.node_id != lead]
    batch = idempotent_batch(7_000_001, b"only-once")
    for b in followers:
        os.kill(b.proc.pid, sig.SIGSTOP)
    try:
        first, _ = produce_to(c, lead, topic, batch, timeout_ms=1000)
        assert first in (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT), first
        retried, _ = produce_to(c, lead, topic, batch, timeout_ms=1000)
        assert retried in (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT), (
            f"a retry of an uncommitted batch was answered {retried}"
        )
    finally:
        for b in followers:
            os.kill(b.proc.pid, sig.SIGCONT)

    # Once a majority is back the retry goes through (appended or answered as a duplicate)...
    def retry_succeeds():
        leader = leader_of(admin, topic, 0)
        if leader is None:
            return None
        error, _ = produce_to(c, leader, topic, batch, timeout_ms=5000)
        return error == 0

    wait_until("the retry acknowledged", retry_succeeds, timeout=45)
    # ...and the record is in the partition exactly once.
    cons = consumer(c.bootstrap)
    cons.assign([TopicPartition(topic, 0, 0)])
    assert [m.value() for m in consume_n(cons, 1)] == [b"only-once"]
    helpers.assert_no_more(cons)


def test_deleted_records_stay_deleted_after_failover(cluster_factory, unique):
    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("delete-records")
    create_replicated(admin, topic, partitions=1)
    wait_until("a preferred leader", lambda: preferred_leaders_elected(admin, topic, 1))
    p = producer(c.bootstrap, acks="all")
    reports = produce_and_flush(p, topic, [{"value": f"r{i}".encode()} for i in range(100)])
    cut = reports[50][3]  # the offset of the 51st record
    res = admin.delete_records([TopicPartition(topic, 0, cut)])
    deleted = res[TopicPartition(topic, 0, cut)].result(WAIT_S)
    assert deleted.low_watermark == cut
    # The followers follow the leader's log start once they fetch again.
    produce_and_flush(p, topic, [{"value": b"after"}])
    time.sleep(1.5)
    victim = leader_of(admin, topic, 0)
    c.broker(victim).kill9()
    admin = admin_client(c.live_bootstrap())
    wait_until(
        "a new leader", lambda: leader_of(admin, topic, 0) not in (None, -1, victim), timeout=45
    )
    cons = consumer(c.live_bootstrap())
    low, high = wait_until(
        "watermarks from the new leader",
        lambda: cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=5),
    )
    assert low == cut, (low, high)
    cons.assign([TopicPartition(topic, 0, 0)])
    first = consume_n(cons, 1)[0]
    assert first.value() == b"r50" and first.offset() == cut


def test_create_topics_answers_once_every_partition_has_a_leader(cluster_factory, unique):
    """Kafka answers CreateTopics when the new partitions have leaders, so a client that creates
    a topic and asks the same broker for its metadata at once finds every leader (KafkaJS's own
    suite does this and fails on LEADER_NOT_AVAILABLE otherwise). Weir's partitions elect their
    first leaders after creation, so the broker waits for them before answering."""
    from kafka.protocol.admin import CreateTopicsRequest
    from kafka.protocol.metadata import MetadataRequest

    # Many partitions, so that the peers are still opening their replicas when the first
    # votes arrive (the case that left a partition leaderless for seconds).
    PARTITIONS = 48
    c = cluster_factory(3, FAST)
    for node in (1, 2, 3):
        topic = unique(f"created-led-{node}")
        resp = send_to(c, node, CreateTopicsRequest[2](
            create_topic_requests=[(topic, PARTITIONS, 3, [], [])], timeout=int(WAIT_S * 1000),
            validate_only=False))
        assert [t["error_code"] for t in resp["topic_errors"]] == [0], resp
        md = send_to(c, node, MetadataRequest[1](topics=[topic]))
        (t,) = md["topics"]
        assert t["error_code"] == 0, t
        leaders = {p["partition"]: (p["error_code"], p["leader"]) for p in t["partitions"]}
        assert sorted(leaders) == list(range(PARTITIONS))
        assert all(code == 0 and leader in (1, 2, 3) for code, leader in leaders.values()), leaders


def test_a_broker_without_a_replica_answers_not_leader_or_follower(cluster_factory, unique):
    """A request for a partition of a known topic sent to a broker that hosts no replica of it is
    NOT_LEADER_OR_FOLLOWER, as in Kafka (the client refreshes its metadata and goes to the
    leader); UNKNOWN_TOPIC_OR_PARTITION is only for partitions that do not exist."""
    from kafka.protocol.offset import OffsetRequest

    c = cluster_factory(3, FAST)
    admin = admin_client(c.bootstrap)
    topic = unique("elsewhere")
    create_assigned(admin, topic, [[1]])
    wait_until("a leader", lambda: leader_of(admin, topic, 0) == 1)

    def list_offsets_on(node, partition):
        resp = send_to(c, node, OffsetRequest[1](replica_id=-1, topics=[(topic, [(partition, -1)])]))
        ((part,),) = [t["partitions"] for t in resp["topics"]]
        return part["error_code"]

    assert list_offsets_on(1, 0) == 0
    assert list_offsets_on(2, 0) == 6  # NOT_LEADER_OR_FOLLOWER
    assert list_offsets_on(2, 1) == 3  # UNKNOWN_TOPIC_OR_PARTITION: no partition 1
    code, _ = produce_to(c, 2, topic, idempotent_batch(-1, b"x"), 5000)
    assert code == 6


def java_hash(s):
    """Java's String.hashCode over UTF-16 code units."""
    h = 0
    b = s.encode("utf-16-be")
    for i in range(0, len(b), 2):
        h = (h * 31 + ((b[i] << 8) | b[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group, partitions):
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def coordinator_of(admin, group):
    d = admin.describe_consumer_groups([group], request_timeout=10)[group].result(WAIT_S)
    return d.coordinator.id


def test_groups_are_coordinated_by_the_leaders_of_their_offsets_partitions(
    cluster_factory, unique
):
    parts = 6
    c = cluster_factory(3, FAST + ("--offsets-topic-num-partitions", str(parts)))
    admin = admin_client(c.bootstrap)
    topic = unique("cg")
    create_replicated(admin, topic, partitions=1)
    produce_and_flush(
        producer(c.bootstrap), topic, [{"value": str(i).encode()} for i in range(2000)]
    )
    # The first FindCoordinator creates __consumer_offsets with its partitions.
    wait_until("a group coordinator", lambda: coordinator_of(admin, unique("probe")) > 0)
    # Led by their preferred replicas: a leader elected at creation may still move back to its
    # preferred replica (automatic preferred-leader elections), which moves its groups.
    offsets_leaders = wait_until(
        "every offsets partition led by its preferred replica",
        lambda: preferred_leaders_elected(admin, "__consumer_offsets", parts),
    )
    leaders = {i: p.leader for i, p in offsets_leaders.items()}

    # Groups in every partition: FindCoordinator answers each partition's leader.
    groups = {}
    i = 0
    while len(groups) < parts:
        g = unique(f"g{i}")
        i += 1
        groups.setdefault(offsets_partition(g, parts), g)
    coordinators = {}
    for p, g in groups.items():
        coordinators[g] = wait_until(
            f"the coordinator of {g}",
            lambda g=g, p=p: coordinator_of(admin, g) == leaders[p] and leaders[p],
        )
    assert len(set(coordinators.values())) > 1, coordinators

    # A consumer commits in a group while its coordinator is killed -9.
    group = groups[0]
    victim = coordinators[group]
    acked = []  # offsets whose commit was acknowledged, in order
    stop = threading.Event()
    errors = []

    def commit_loop():
        cons = Consumer(
            {
                "bootstrap.servers": c.bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        cons.subscribe([topic])
        try:
            while not stop.is_set():
                m = cons.poll(0.2)
                if m is None or m.error() is not None:
                    continue
                try:
                    cons.commit(message=m, asynchronous=False)
                    acked.append(m.offset() + 1)
                except KafkaException as e:
                    errors.append(e)
                time.sleep(0.02)
        finally:
            cons.close()

    t = threading.Thread(target=commit_loop, daemon=True)
    t.start()
    wait_until("commits before the kill", lambda: len(acked) >= 20, timeout=60)
    c.broker(victim).kill9()
    at_kill = len(acked)
    wait_until("commits on the new coordinator", lambda: len(acked) >= at_kill + 20, timeout=90)
    stop.set()
    t.join(30)
    assert acked == sorted(acked), "an acknowledged commit went backwards"

    live = admin_client(c.live_bootstrap())
    new_coordinator = wait_until(
        "a new coordinator", lambda: coordinator_of(live, group), timeout=60
    )
    assert new_coordinator != victim
    # Read as the group itself: the last acknowledged commit survived the failover.
    reader = Consumer({"bootstrap.servers": c.live_bootstrap(), "group.id": group})
    try:
        committed = wait_until(
            "the group's committed offset",
            lambda: (
                lambda tps: tps if tps[0].offset >= 0 else None
            )(reader.committed([TopicPartition(topic, 0)], timeout=10)),
        )
    finally:
        reader.close()
    assert committed[0].offset >= acked[-1], (committed, acked[-1])


def create_assigned(admin, name, assignment):
    """A topic with an explicit replica assignment (the first replica is the preferred leader)."""
    fs = admin.create_topics(
        [NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment)],
        operation_timeout=WAIT_S,
        request_timeout=WAIT_S,
    )
    fs[name].result(WAIT_S)


def replica_offsets(b, topic):
    """partition -> (log end offset, high watermark) of `topic`'s replicas on broker b, from its
    admin API."""
    import json
    import urllib.request

    url = f"http://{b.host}:{b.admin_port}/v1/cluster/replicas?topic={topic}&limit=1000"
    with urllib.request.urlopen(url, timeout=5) as r:
        items = json.load(r)["replicas"]
    return {i["partition"]: (i["log_end_offset"], i["high_watermark"]) for i in items}


def logs_equal_everywhere(c, topic, partitions):
    """Every broker holds every partition up to the same committed end, or None."""
    seen = [replica_offsets(b, topic) for b in c.brokers]
    if any(sorted(s) != list(range(partitions)) for s in seen):
        return None
    for p in range(partitions):
        ends = {s[p][0] for s in seen} | {s[p][1] for s in seen}
        if len(ends) != 1:
            return None
    return seen


# Run inside the isolated broker's namespace, the only place it can still be reached from: writes
# negative values (the Checker's are >= 0) to partition 0 with acks=all, prints which were
# acknowledged and which failed.
STALE_PRODUCER = r"""
import json, sys
from confluent_kafka import Producer

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
acked, failed = [], []

def report(err, msg):
    if err is None:
        acked.append(int(msg.value()))
    else:
        failed.append(err.name())

p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 8000,
              "request.timeout.ms": 5000, "socket.timeout.ms": 5000})
for i in range(count):
    p.produce(topic, partition=0, value=str(-1 - i).encode(), on_delivery=report)
p.flush(30)
print(json.dumps({"acked": acked, "failed": failed}))
"""


@pytest.mark.timeout(240)
def test_isolated_broker_is_replaced_then_heals_and_catches_up(
    netns_link, cluster_factory, unique
):
    """Broker 3 runs in its own network namespace; cutting the namespace off is a network split
    with broker 3 alone on one side, still running. First while it follows every partition under
    load, then while it leads one: the majority side goes on acknowledging writes (a new leader
    replaces the cut-off one), the cut-off leader acknowledges nothing, and once healed broker 3
    is back in sync with the same logs."""
    import json
    import subprocess
    import sys

    link = netns_link
    c = cluster_factory(3, FAST, host=link.host_ip, placement=link.placement(3))
    majority = ",".join(c.broker(n).bootstrap for n in (1, 2))
    # Asked of the majority side with short timeouts: a client that has a connection to the
    # cut-off broker waits for its timeouts on it before trying another broker.
    timeouts = {"request.timeout.ms": 5000, "socket.timeout.ms": 5000}
    admin = admin_client(majority, **timeouts)

    def isr_without_3(topic, partitions):
        ps = partitions_of(admin, topic)
        return ps is not None and len(ps) == partitions and all(
            3 not in p.isrs and p.leader in (1, 2) for p in ps.values()
        )

    # Phase 1: broker 3 follows both partitions.
    follow = unique("split-follower")
    create_assigned(admin, follow, [[1, 2, 3], [2, 1, 3]])
    wait_until("preferred leaders", lambda: preferred_leaders_elected(admin, follow, 2))
    checker = Checker(c.bootstrap, follow, **timeouts).start()
    checker.wait_acked(300)
    link.isolate()
    try:
        checker.wait_acked_in(0, 200, timeout=45)
        checker.wait_acked_in(1, 200, timeout=45)
        wait_until("broker 3 out of the ISR", lambda: isr_without_3(follow, 2), timeout=45)
        checker.wait_acked(len(checker.acked) + 200, timeout=45)
    finally:
        link.heal()
    wait_until(
        "broker 3 back in the ISR", lambda: preferred_leaders_elected(admin, follow, 2), timeout=60
    )
    checker.wait_acked(len(checker.acked) + 300, timeout=45)
    checker.stop_and_check_exactly_once(majority, 2)
    wait_until("the same logs on every broker", lambda: logs_equal_everywhere(c, follow, 2))

    # Phase 2: broker 3 leads partition 0.
    lead = unique("split-leader")
    create_assigned(admin, lead, [[3, 1, 2], [1, 2, 3]])
    wait_until("preferred leaders", lambda: preferred_leaders_elected(admin, lead, 2))
    checker = Checker(c.bootstrap, lead, **timeouts).start()
    checker.wait_acked_in(0, 300)
    checker.wait_acked_in(1, 100)
    link.isolate()
    try:
        stale = subprocess.run(
            [*link.prefix, sys.executable, "-c", STALE_PRODUCER, c.broker(3).bootstrap, lead, "20"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stale.returncode == 0, stale.stderr[-2000:]
        stale_result = json.loads(stale.stdout.strip().splitlines()[-1])
        # Without a majority nothing can be committed: acks=all must not be acknowledged.
        assert stale_result["acked"] == [], stale_result
        assert len(stale_result["failed"]) == 20, stale_result
        wait_until(
            "a new leader for the cut-off broker's partition",
            lambda: leader_of(admin, lead, 0) in (1, 2),
            timeout=45,
        )
        checker.wait_acked_in(0, 300, timeout=45)
        checker.wait_acked_in(1, 100, timeout=45)
        wait_until("broker 3 out of the ISR", lambda: isr_without_3(lead, 2), timeout=45)
    finally:
        link.heal()
    # Back in sync, and the preferred leader again (leader rebalancing moves it back).
    wait_until(
        "broker 3 leading partition 0 again with a full ISR",
        lambda: preferred_leaders_elected(admin, lead, 2),
        timeout=60,
    )
    checker.wait_acked_in(0, 300, timeout=45)
    checker.stop()
    assert not checker.errors, f"delivery errors: {checker.errors[:5]}"
    # Partition 0 now read from broker 3, its leader again: every acknowledged record exactly
    # once, and none of the writes the cut-off leader took but never committed.
    lost, dups, seen = checker.verify(c.bootstrap, 2)
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:10]}"
    assert not dups, f"{len(dups)} records duplicated, e.g. {dups[:10]}"
    stale_seen = sorted(v for v in seen if v < 0)
    assert not stale_seen, f"unacknowledged writes to the cut-off leader survived: {stale_seen}"
    wait_until("the same logs on every broker", lambda: logs_equal_everywhere(c, lead, 2))


def send_to(c, node, request):
    """Sends `request` to broker `node` itself (kafka-python's low-level client: no routing to
    another broker as admin clients do) and returns the response as a dict."""
    return kafka_python_request(c.broker(node).bootstrap, request, node=node)


def describe_on(c, node, resource_type, name):
    """DescribeConfigs of one resource sent to broker `node`: (error code, {name: value})."""
    from kafka.protocol.admin import DescribeConfigsRequest

    resp = send_to(
        c,
        node,
        DescribeConfigsRequest[1](resources=[(resource_type, name, None)], include_synonyms=False),
    )
    (res,) = resp["resources"]
    return res["error_code"], {e["config_names"]: e["config_value"] for e in res["config_entries"]}


def alter_on(c, node, resource_type, name, configs):
    """AlterConfigs (the whole set) of one resource sent to broker `node`: the error code.
    (confluent-kafka cannot name the cluster-wide BROKER resource "".)"""
    from kafka.protocol.admin import AlterConfigsRequest

    resp = send_to(
        c,
        node,
        AlterConfigsRequest[0](
            resources=[(resource_type, name, list(configs.items()))], validate_only=False
        ),
    )
    (res,) = resp["resources"]
    return res["error_code"]


RESOURCE_BROKER = 4
RESOURCE_GROUP = 32
INVALID_REQUEST = 42


def test_group_and_cluster_wide_broker_configs_are_the_clusters(cluster_factory, unique):
    """Group configs and the cluster-wide broker defaults (BROKER resource "") set through one
    broker are what every broker answers, also after a restart; a broker's own configs are
    answered by that broker only, as in Kafka."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    c = cluster_factory(3, FAST)
    group = unique("cfg/group")  # '/' allowed in group ids, and in the etcd key
    on_1 = admin_client(c.broker(1).bootstrap)

    def alter(admin, resource):
        admin.incremental_alter_configs([resource])[resource].result(WAIT_S)

    SET = AlterConfigOpType.SET
    alter(
        on_1,
        ConfigResource(
            ResourceType.GROUP,
            group,
            incremental_configs=[
                ConfigEntry("share.delivery.count.limit", "3", incremental_operation=SET),
                ConfigEntry("consumer.session.timeout.ms", "50000", incremental_operation=SET),
            ],
        ),
    )
    assert alter_on(c, 1, RESOURCE_BROKER, "", {"log.retention.ms": "7200000"}) == 0
    # Broker 2's own override: set through broker 2 (the client sends it there).
    alter(
        admin_client(c.broker(2).bootstrap),
        ConfigResource(
            ResourceType.BROKER,
            "2",
            incremental_configs=[
                ConfigEntry("log.retention.bytes", "12345", incremental_operation=SET)
            ],
        ),
    )

    def everywhere():
        for node in (1, 2, 3):
            err, group_configs = describe_on(c, node, RESOURCE_GROUP, group)
            assert err == 0, (node, err)
            if group_configs.get("share.delivery.count.limit") != "3":
                return None
            if group_configs.get("consumer.session.timeout.ms") != "50000":
                return None
            err, defaults = describe_on(c, node, RESOURCE_BROKER, "")
            assert err == 0, (node, err)
            # min.insync.replicas is written again at a start where it is missing (Kafka 4.1+).
            defaults.pop("min.insync.replicas", None)
            if defaults != {"log.retention.ms": "7200000"}:
                return None
            err, own = describe_on(c, node, RESOURCE_BROKER, str(node))
            assert err == 0, (node, err)
            # The cluster default is in force on every broker, under its own override.
            if own.get("log.retention.ms") != "7200000":
                return None
            want_bytes = "12345" if node == 2 else "-1"
            if own.get("log.retention.bytes") != want_bytes:
                return None
        return True

    wait_until("the same configs on every broker", everywhere)

    # A broker's own configs are answered by that broker only: Kafka refuses another broker's id
    # with INVALID_REQUEST (its admin clients send such a request to the broker it names).
    err, _ = describe_on(c, 1, RESOURCE_BROKER, "2")
    assert err == INVALID_REQUEST
    assert alter_on(c, 1, RESOURCE_BROKER, "2", {"log.retention.bytes": "1"}) == INVALID_REQUEST

    # Kept across restarts (of every broker: nothing only in memory).
    for b in c.brokers:
        b.restart()
    c.wait_formed()
    wait_until("the same configs on every broker after restarts", everywhere)

    # A change through broker 3 replaces the value everywhere; a delete removes it everywhere.
    alter(
        admin_client(c.broker(3).bootstrap),
        ConfigResource(
            ResourceType.GROUP,
            group,
            incremental_configs=[
                ConfigEntry(
                    "share.delivery.count.limit", None, incremental_operation=AlterConfigOpType.DELETE
                ),
            ],
        ),
    )

    def deleted_everywhere():
        for node in (1, 2, 3):
            _, group_configs = describe_on(c, node, RESOURCE_GROUP, group)
            if group_configs.get("share.delivery.count.limit") != "5":  # Kafka's default
                return None
            if group_configs.get("consumer.session.timeout.ms") != "50000":
                return None
        return True

    wait_until("the deleted group config gone on every broker", deleted_everywhere)
