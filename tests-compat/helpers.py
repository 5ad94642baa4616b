"""Small helpers around confluent-kafka shared by the tests (no assertions about the broker here
beyond 'the call succeeded'; the tests state what they check)."""

import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

# How long a test waits for a client-side condition (metadata, records) before failing.
WAIT_S = 30.0

# Producers and consumers made by the helpers; conftest closes them after every test so that a
# failed test does not leave clients retrying (and logging) in the background.
_CLIENTS = []


def close_all_clients():
    while _CLIENTS:
        kind, cl = _CLIENTS.pop()
        try:
            if kind == "producer":
                cl.purge(in_queue=True, in_flight=True, blocking=False)
                cl.poll(0)
            cl.close()
        except Exception:  # already closed, or broker gone: nothing left to release
            pass


def admin_client(bootstrap, **conf):
    return AdminClient({"bootstrap.servers": bootstrap, **conf})


def create_topic(bootstrap, name, partitions=1, config=None, timeout=WAIT_S):
    """Create a topic via CreateTopics and wait until metadata shows every partition led."""
    a = admin_client(bootstrap)
    futures = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    futures[name].result(timeout)
    wait_for_topic(a, name, partitions, timeout)
    return a


def wait_for_topic(admin, name, partitions, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            if all(p.leader >= 0 and p.error is None for p in t.partitions.values()):
                return md
        last = t
        time.sleep(0.2)
    raise AssertionError(f"topic {name} not ready with {partitions} partitions: {last!r}")


def topic_names(admin):
    return set(admin.list_topics(timeout=10).topics)


def producer(bootstrap, **conf):
    p = Producer({"bootstrap.servers": bootstrap, **conf})
    _CLIENTS.append(("producer", p))
    return p


class Deliveries:
    """Delivery-report callback collecting (err, topic, partition, offset, key, value) in
    callback order. Callbacks run inside poll()/flush() on the calling thread."""

    def __init__(self):
        self.reports = []

    def __call__(self, err, msg):
        self.reports.append((err, msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()))

    @property
    def errors(self):
        return [r for r in self.reports if r[0] is not None]

    @property
    def ok(self):
        return [r for r in self.reports if r[0] is None]


def produce_and_flush(p, topic, records, timeout=WAIT_S, flush_each=False):
    """Produce dicts with keys key/value/headers/partition/timestamp; return the delivery reports
    (all of which must be successful)."""
    d = Deliveries()
    for r in records:
        kwargs = {k: r[k] for k in ("key", "value", "headers", "partition", "timestamp") if k in r}
        while True:
            try:
                p.produce(topic, on_delivery=d, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
        if flush_each:
            assert p.flush(timeout) == 0, "flush timed out"
    remaining = p.flush(timeout)
    assert remaining == 0, f"{remaining} records still undelivered after {timeout}s"
    assert not d.errors, f"delivery failed: {d.errors[:5]}"
    assert len(d.reports) == len(records)
    return d.reports


def consumer(bootstrap, group=None, **conf):
    base = {
        "bootstrap.servers": bootstrap,
        # confluent-kafka insists on a group id even for assign()-only consumers; such a
        # consumer never joins the group as long as it never subscribes or commits.
        "group.id": group or f"unused-{uuid.uuid4().hex[:12]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    }
    base.update(conf)
    c = Consumer(base)
    _CLIENTS.append(("consumer", c))
    return c


def assign_from_beginning(c, topic, partitions):
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])


def poll_one(c, timeout):
    """poll() that raises on any real error (partition EOF is not one)."""
    m = c.poll(timeout)
    if m is None:
        return None
    err = m.error()
    if err is not None:
        if err.code() == KafkaError._PARTITION_EOF:
            return None
        raise KafkaException(err)
    return m


def consume_n(c, n, timeout=WAIT_S):
    """Poll until n records arrived (fails with what it has otherwise)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        m = poll_one(c, 0.5)
        if m is not None:
            out.append(m)
    assert len(out) == n, f"expected {n} records, got {len(out)} within {timeout}s"
    return out


def assert_no_more(c, wait=2.0):
    """Nothing further arrives within `wait` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        m = poll_one(c, 0.2)
        assert m is None, f"unexpected extra record p{m.partition()}@{m.offset()} {m.value()!r}"


def wait_until(what, check, timeout=WAIT_S, interval=0.2):
    """Polls check() until it returns a truthy value (a KafkaException counts as not yet); fails
    with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except KafkaException as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}: last {last!r}")


def kafka_python_request(bootstrap, request, node=None, timeout=WAIT_S, **client_conf):
    """Sends `request` (a kafka-python protocol object, any version) with kafka-python's
    low-level client as it is, on a fresh connection from `bootstrap` (`client_conf`: security
    settings) to broker `node` itself (no routing to another broker, as admin clients do), or to
    any broker when `node` is None; the response as a dict."""
    from kafka.client_async import KafkaClient

    client = KafkaClient(bootstrap_servers=bootstrap, **client_conf)
    try:
        deadline = time.monotonic() + timeout
        target = node
        while time.monotonic() < deadline:
            if node is None:
                target = client.least_loaded_node()
            if target is not None and client.ready(target):
                break
            client.poll(timeout_ms=200)
        assert target is not None and client.ready(target), (
            f"could not connect to broker {node} from {bootstrap}" if node is not None
            else f"could not connect to {bootstrap}")
        node = target
        fut = client.send(node, request)
        client.poll(timeout_ms=int(timeout * 1000), future=fut)
        assert fut.succeeded(), fut.exception
        return fut.value.to_object()
    finally:
        client.close()
