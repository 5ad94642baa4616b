"""Authorization with Kafka's ACLs (docs/security.md#authorization-acls), with confluent-kafka's
AdminClient (create_acls / describe_acls / delete_acls) and SASL/SCRAM users against a broker
started with `--authorizer on`: denied and allowed produce and consume, prefixed patterns, DENY
winning over ALLOW, a super user, hidden topics, idempotent producers (Kafka 4's rule), the
authorized-operations fields, ACLs surviving kill -9, and `weir acl --data-dir`."""

import json
import subprocess
import time
import uuid

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from conftest import EXTERNAL, WeirBroker, _LIVE_BROKERS, _close_broker, _free_port
import helpers
from helpers import WAIT_S

pytestmark = pytest.mark.skipif(
    EXTERNAL is not None, reason="needs a broker the suite starts (it is configured here)"
)

USERS = ("admin", "alice", "bob", "carol")


def password(user):
    return f"{user}-Secret-1"


class AclBroker(WeirBroker):
    """A broker with the authorizer on: a PLAINTEXT listener (readiness only: User:ANONYMOUS has
    no ACLs) and a SASL_PLAINTEXT one with SCRAM-SHA-256; User:admin is a super user."""

    def __init__(self, name, extra=()):
        super().__init__(name=name, extra_args=extra)
        self.sasl_port = _free_port()
        self.sasl = f"127.0.0.1:{self.sasl_port}"
        # Users are created before the first start, straight into the credential store: with the
        # authorizer on, nobody could create them through the broker yet.
        for user in USERS:
            subprocess.run(
                [self.bin, "user", "create", user, "--password", password(user),
                 "--mechanism", "SCRAM-SHA-256", "--iterations", "4096",
                 "--data-dir", self.data_dir],
                check=True, capture_output=True,
            )

    def command(self):
        return [
            self.bin, "serve",
            "--listeners", f"PLAINTEXT://{self.bootstrap},SASL_PLAINTEXT://{self.sasl}",
            "--sasl-enabled-mechanisms", "SCRAM-SHA-256",
            "--data-dir", self.data_dir,
            "--admin-listener", f"{self.host}:{self.admin_port}",
            "--authorizer", "on",
            "--super-users", "User:admin",
            *self.extra_args,
        ]

    def conf(self, user, **extra):
        return {
            "bootstrap.servers": self.sasl,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": user,
            "sasl.password": password(user),
            **extra,
        }


@pytest.fixture(scope="module")
def ab(request):
    b = AclBroker("weir-acls")
    _LIVE_BROKERS.append(b)
    try:
        b.start()
    except BaseException:
        b.close()
        _LIVE_BROKERS.remove(b)
        raise
    yield b
    _close_broker(b, request.session.testsfailed > 0)


_CLIENTS = []


@pytest.fixture(autouse=True)
def _close_own_clients():
    yield
    _ADMINS.clear()
    while _CLIENTS:
        c = _CLIENTS.pop()
        try:
            c.close()
        except Exception:  # already closed
            pass


_ADMINS = []


def admin(b, user="admin"):
    # Kept until the test ends: an AdminClient destroyed before its futures complete fails them.
    a = AdminClient(b.conf(user))
    _ADMINS.append(a)
    return a


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(b, topic, partitions=1):
    a = admin(b)  # kept alive until the result arrives
    a.create_topics([NewTopic(topic, partitions, 1)])[topic].result(WAIT_S)


def acl(rtype, rname, principal, op, perm=AclPermissionType.ALLOW,
        pattern=ResourcePatternType.LITERAL, host="*"):
    return AclBinding(rtype, rname, pattern, principal, host, op, perm)


def add_acls(b, *bindings):
    a = admin(b)
    results = a.create_acls(list(bindings), request_timeout=WAIT_S)
    for f in results.values():
        assert f.result(WAIT_S) is None


def delete_acls(b, *filters):
    a = admin(b)
    results = a.delete_acls(list(filters), request_timeout=WAIT_S)
    return [f.result(WAIT_S) for f in results.values()]


def everything_of(principal):
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
                            AclOperation.ANY, AclPermissionType.ANY)


def produce_one(b, user, topic, **conf):
    """Produces one record as `user`; returns the delivery error (None if it was written)."""
    p = Producer(b.conf(user, **{"message.timeout.ms": 10000, **conf}))
    errors = []
    try:
        p.produce(topic, b"v", on_delivery=lambda err, _m: errors.append(err))
        assert p.flush(WAIT_S) == 0
    except KafkaException as e:
        # A fatal error (an idempotent producer refused its producer id) is raised.
        return e.args[0]
    assert len(errors) == 1
    return errors[0]


def consume_from_start(b, user, topic, group, n, timeout=WAIT_S):
    """Subscribes as `user` in `group`; returns (values read, first error seen)."""
    c = Consumer(b.conf(user, **{"group.id": group, "auto.offset.reset": "earliest",
                                 "enable.auto.commit": False}))
    c.subscribe([topic])
    values, error = [], None
    deadline = time.monotonic() + timeout
    try:
        while len(values) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                error = m.error()
                break
            values.append(m.value())
    finally:
        # Closed at once: a consumer left running would join the group once allowed and take
        # the partition from the next one.
        c.close()
    return values, error


def test_acls_are_created_described_and_deleted_with_the_admin_client(ab):
    topic, group = name("acl-api"), name("g")
    bindings = [
        acl(ResourceType.TOPIC, topic, "User:carol", AclOperation.READ),
        acl(ResourceType.TOPIC, topic, "User:carol", AclOperation.WRITE, AclPermissionType.DENY),
        acl(ResourceType.TOPIC, topic[:8], "User:carol", AclOperation.DESCRIBE,
            pattern=ResourcePatternType.PREFIXED),
        acl(ResourceType.GROUP, group, "User:carol", AclOperation.READ, host="10.1.2.3"),
    ]
    add_acls(ab, *bindings)
    a = admin(ab)
    mine = set(a.describe_acls(everything_of("User:carol"), request_timeout=WAIT_S).result(WAIT_S))
    assert mine == set(bindings)
    # MATCH: every ACL that applies to the topic's name (literal and prefixed), and only those.
    match = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert set(a.describe_acls(match, request_timeout=WAIT_S).result(WAIT_S)) == set(bindings[:3])
    only_deny = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, None,
                                 None, AclOperation.ANY, AclPermissionType.DENY)
    assert a.describe_acls(only_deny, request_timeout=WAIT_S).result(WAIT_S) == [bindings[1]]
    # Creating the same ACL again stores it once.
    add_acls(ab, bindings[0])
    assert len(a.describe_acls(everything_of("User:carol"), request_timeout=WAIT_S).result(WAIT_S)) == 4
    # Delete the DENY by a filter, then everything of carol.
    [deleted] = delete_acls(ab, only_deny)
    assert deleted == [bindings[1]]
    [deleted] = delete_acls(ab, everything_of("User:carol"))
    assert set(deleted) == {bindings[0], bindings[2], bindings[3]}
    assert a.describe_acls(everything_of("User:carol"), request_timeout=WAIT_S).result(WAIT_S) == []


def test_invalid_acls_are_refused_with_kafka_errors(ab):
    a = admin(ab)
    # The cluster (librdkafka's BROKER resource type) has one name: kafka-cluster.
    bad = acl(ResourceType.BROKER, "not-the-cluster", "User:carol", AclOperation.ALTER)
    good = acl(ResourceType.TOPIC, name("ok"), "User:carol", AclOperation.READ)
    results = a.create_acls([bad, good], request_timeout=WAIT_S)
    with pytest.raises(KafkaException) as e:
        results[bad].result(WAIT_S)
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert results[good].result(WAIT_S) is None
    delete_acls(ab, everything_of("User:carol"))


def test_acl_apis_need_rights_on_the_cluster(ab):
    topic = name("secret")
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:carol", AclOperation.READ))
    a = admin(ab, "bob")
    # DescribeAcls is refused (CLUSTER_AUTHORIZATION_FAILED, which librdkafka does not surface:
    # it reports the empty answer), so bob sees none of the ACLs the admin sees.
    f = a.describe_acls(everything_of(None), request_timeout=WAIT_S)
    assert f.result(WAIT_S) == []
    assert admin(ab).describe_acls(everything_of(None), request_timeout=WAIT_S).result(WAIT_S)
    results = a.create_acls(
        [acl(ResourceType.TOPIC, "*", "User:bob", AclOperation.ALL)], request_timeout=WAIT_S)
    for fut in results.values():
        with pytest.raises(KafkaException) as e:
            fut.result(WAIT_S)
        assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert admin(ab).describe_acls(everything_of("User:bob"), request_timeout=WAIT_S).result(WAIT_S) == []
    delete_acls(ab, everything_of("User:carol"))


def test_a_denied_principal_cannot_produce_or_consume_until_granted(ab):
    topic, group = name("orders"), name("billing")
    create_topic(ab, topic)
    assert produce_one(ab, "admin", topic) is None

    # No ACL: alice can neither see, write nor read the topic.
    alice = admin(ab, "alice")
    assert topic not in alice.list_topics(timeout=WAIT_S).topics
    err = produce_one(ab, "alice", topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    values, err = consume_from_start(ab, "alice", topic, group, 1, timeout=10)
    assert values == []
    assert err is not None and err.code() in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)

    # WRITE on the topic: produce works (and the topic is visible: WRITE implies DESCRIBE).
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:alice", AclOperation.WRITE))
    assert produce_one(ab, "alice", topic) is None
    assert topic in admin(ab, "alice").list_topics(timeout=WAIT_S).topics

    # READ on the topic but not the group: the group is refused.
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:alice", AclOperation.READ))
    values, err = consume_from_start(ab, "alice", topic, group, 1, timeout=10)
    assert values == []
    assert err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    # READ on the group too: alice reads both records and commits.
    add_acls(ab, acl(ResourceType.GROUP, group, "User:alice", AclOperation.READ))
    values, err = consume_from_start(ab, "alice", topic, group, 2)
    assert err is None and values == [b"v", b"v"]

    # bob still gets nothing.
    err = produce_one(ab, "bob", topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    delete_acls(ab, everything_of("User:alice"))


def test_removing_an_acl_stops_a_running_consumer(ab):
    topic, group = name("revoke"), name("g")
    create_topic(ab, topic)
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:alice", AclOperation.READ),
             acl(ResourceType.GROUP, group, "User:alice", AclOperation.READ))
    assert produce_one(ab, "admin", topic) is None
    c = Consumer(ab.conf("alice", **{"group.id": group, "auto.offset.reset": "earliest",
                                     "enable.auto.commit": False}))
    _CLIENTS.append(c)
    c.assign([TopicPartition(topic, 0, 0)])
    m = None
    deadline = time.monotonic() + WAIT_S
    while m is None and time.monotonic() < deadline:
        m = c.poll(0.5)
    assert m is not None and m.error() is None and m.value() == b"v"
    delete_acls(ab, AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL,
                                     "User:alice", None, AclOperation.ANY, AclPermissionType.ANY))
    # The consumer's fetch session goes on with the partition it already has; its next fetch is
    # refused. (A fetch already waiting when the ACL went was allowed when it came, and may
    # still bring what arrives meanwhile: records are produced until the refusal shows.)
    err, read_after = None, 0
    deadline = time.monotonic() + WAIT_S
    while err is None and time.monotonic() < deadline:
        assert produce_one(ab, "admin", topic) is None
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is None:
            read_after += 1
            continue
        err = m.error()
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert read_after <= 1, f"read {read_after} records after READ was removed"
    delete_acls(ab, everything_of("User:alice"))


def test_prefixed_acls_cover_every_topic_with_the_prefix(ab):
    prefix = name("team-a") + "."
    mine, other = prefix + "events", name("team-b")
    create_topic(ab, mine)
    create_topic(ab, other)
    add_acls(ab, acl(ResourceType.TOPIC, prefix, "User:alice", AclOperation.WRITE,
                     pattern=ResourcePatternType.PREFIXED))
    assert produce_one(ab, "alice", mine) is None
    err = produce_one(ab, "alice", other)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    visible = admin(ab, "alice").list_topics(timeout=WAIT_S).topics
    assert mine in visible and other not in visible
    delete_acls(ab, everything_of("User:alice"))


def test_deny_wins_over_allow(ab):
    topic = name("deny")
    create_topic(ab, topic)
    add_acls(
        ab,
        acl(ResourceType.TOPIC, "*", "User:*", AclOperation.WRITE),
        acl(ResourceType.TOPIC, topic, "User:alice", AclOperation.ALL),
        acl(ResourceType.TOPIC, topic[:6], "User:bob", AclOperation.WRITE, AclPermissionType.DENY,
            pattern=ResourcePatternType.PREFIXED),
    )
    # bob is allowed by the wildcard ACL and denied by the prefixed DENY: denied.
    err = produce_one(ab, "bob", topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_one(ab, "alice", topic) is None
    assert produce_one(ab, "carol", topic) is None
    # A DENY of everything for alice beats her ALL.
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:alice", AclOperation.ALL,
                     AclPermissionType.DENY))
    err = produce_one(ab, "alice", topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    for p in ("User:*", "User:alice", "User:bob"):
        delete_acls(ab, everything_of(p))


def test_a_super_user_needs_no_acl(ab):
    topic, group = name("super"), name("g")
    a = admin(ab)
    a.create_topics([NewTopic(topic, 2, 1)])[topic].result(WAIT_S)
    assert produce_one(ab, "admin", topic) is None
    values, err = consume_from_start(ab, "admin", topic, group, 1)
    assert err is None and values == [b"v"]
    # Even a DENY does not stop a super user.
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:admin", AclOperation.ALL,
                     AclPermissionType.DENY))
    assert produce_one(ab, "admin", topic) is None
    delete_acls(ab, everything_of("User:admin"))


def test_idempotent_producers_need_write_on_some_topic(ab):
    topic = name("idem")
    create_topic(ab, topic)
    # carol may see the topic but write nowhere: InitProducerId is refused
    # (CLUSTER_AUTHORIZATION_FAILED, fatal for the producer).
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:carol", AclOperation.DESCRIBE))
    err = produce_one(ab, "carol", topic, **{"enable.idempotence": True})
    assert err is not None
    assert err.code() in (KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError._FATAL), err
    # WRITE on the topic is enough in Kafka 4 (no IDEMPOTENT_WRITE on the cluster needed).
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:carol", AclOperation.WRITE))
    assert produce_one(ab, "carol", topic, **{"enable.idempotence": True}) is None
    delete_acls(ab, everything_of("User:carol"))


def test_authorized_operations_reflect_the_acls(ab):
    topic, group = name("ops"), name("g")
    create_topic(ab, topic)
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:alice", AclOperation.READ),
             acl(ResourceType.GROUP, group, "User:alice", AclOperation.READ))
    alice = admin(ab, "alice")
    described = alice.describe_topics(
        TopicCollection([topic]),
        include_authorized_operations=True, request_timeout=WAIT_S)[topic].result(WAIT_S)
    assert set(described.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE}
    # No DESCRIBE on the cluster: its operations are not reported.
    cluster = alice.describe_cluster(include_authorized_operations=True,
                                     request_timeout=WAIT_S).result(WAIT_S)
    assert not cluster.authorized_operations
    cluster = admin(ab).describe_cluster(include_authorized_operations=True,
                                         request_timeout=WAIT_S).result(WAIT_S)
    assert AclOperation.ALTER in cluster.authorized_operations
    # A group alice may read (it exists once she commits in it): she is told READ and DESCRIBE.
    c = Consumer(ab.conf("alice", **{"group.id": group}))
    _CLIENTS.append(c)
    c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    groups = alice.describe_consumer_groups([group], include_authorized_operations=True,
                                            request_timeout=WAIT_S)
    g = groups[group].result(WAIT_S)
    assert set(g.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE}
    delete_acls(ab, everything_of("User:alice"))


def test_acls_survive_kill_9(ab):
    topic = name("durable")
    create_topic(ab, topic)
    add_acls(ab, acl(ResourceType.TOPIC, topic, "User:bob", AclOperation.WRITE))
    ab.kill9()
    ab.start()
    assert produce_one(ab, "bob", topic) is None
    listed = admin(ab).describe_acls(everything_of("User:bob"), request_timeout=WAIT_S).result(WAIT_S)
    assert listed == [acl(ResourceType.TOPIC, topic, "User:bob", AclOperation.WRITE)]
    delete_acls(ab, everything_of("User:bob"))


def test_weir_acl_data_dir_grants_before_start(request):
    """`weir acl add --data-dir` edits a stopped broker's ACLs: the way to give the first rights
    without a super user."""
    b = AclBroker("weir-acls-offline")
    topic = name("cli")
    out = subprocess.run(
        [b.bin, "acl", "add", "--data-dir", b.data_dir, "--allow-principal", "User:alice",
         "--operation", "Write,Describe,Create", "--topic", topic, "--output", "json"],
        check=True, capture_output=True, text=True,
    )
    assert len(json.loads(out.stdout)) == 3
    _LIVE_BROKERS.append(b)
    try:
        b.start()
        # CREATE on the topic lets alice auto-create it by producing.
        assert produce_one(b, "alice", topic) is None
        err = produce_one(b, "bob", topic)
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        listed = admin(b).describe_acls(everything_of("User:alice"),
                                        request_timeout=WAIT_S).result(WAIT_S)
        assert len(listed) == 3
        passed = True
    finally:
        _close_broker(b, not passed)


def test_without_an_authorizer_the_acl_apis_answer_security_disabled(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    binding = acl(ResourceType.TOPIC, name("t"), "User:alice", AclOperation.READ)
    f = a.create_acls([binding], request_timeout=WAIT_S)[binding]
    with pytest.raises(KafkaException) as e:
        f.result(WAIT_S)
    assert e.value.args[0].code() == KafkaError.SECURITY_DISABLED


def kafka_python_request(b, user, request):
    """Sends `request` with kafka-python 2.0.2's low-level client as `user` (SCRAM-SHA-256), as
    it is; the response as a dict. kafka-python encodes the versions Kafka 4.0 removed."""
    return helpers.kafka_python_request(
        b.sasl, request, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username=user, sasl_plain_password=password(user))


def test_acl_apis_v0_manage_literal_acls(ab):
    """CreateAcls, DescribeAcls and DeleteAcls v0 (removed by Kafka 4.0; sarama before 1.40 sends
    them) know only literal patterns: a v0 ACL is literal, and a v0 filter matches literal ACLs
    only, as Kafka 3.9 answered it."""
    from kafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest

    topic, principal = name("acl-v0"), f"User:v0-{uuid.uuid4().hex[:8]}"
    TOPIC, READ, ANY, ALLOW = 2, 3, 1, 3
    created = kafka_python_request(ab, "admin", CreateAclsRequest[0](
        [(TOPIC, topic, principal, "*", READ, ALLOW)]))
    assert [r["error_code"] for r in created["creation_responses"]] == [0]
    # The modern admin client sees it as a literal ACL; a prefixed one is added beside it.
    prefixed = acl(ResourceType.TOPIC, topic[:6], principal, AclOperation.WRITE,
                   pattern=ResourcePatternType.PREFIXED)
    add_acls(ab, prefixed)
    a = admin(ab)
    assert set(a.describe_acls(everything_of(principal), request_timeout=WAIT_S).result(WAIT_S)) == {
        acl(ResourceType.TOPIC, topic, principal, AclOperation.READ), prefixed}

    described = kafka_python_request(ab, "admin", DescribeAclsRequest[0](
        TOPIC, None, principal, None, ANY, ANY))
    assert described["error_code"] == 0
    assert [(r["resource_type"], r["resource_name"],
             [(x["principal"], x["host"], x["operation"], x["permission_type"]) for x in r["acls"]])
            for r in described["resources"]] == [(TOPIC, topic, [(principal, "*", READ, ALLOW)])]

    deleted = kafka_python_request(ab, "admin", DeleteAclsRequest[0](
        [(TOPIC, None, principal, None, ANY, ANY)]))
    (result,) = deleted["filter_responses"]
    assert result["error_code"] == 0
    assert [(m["resource_name"], m["operation"]) for m in result["matching_acls"]] == [(topic, READ)]
    # The prefixed ACL, which no v0 filter can name, is still there.
    assert a.describe_acls(everything_of(principal), request_timeout=WAIT_S).result(WAIT_S) == [
        prefixed]
    # A principal without rights on the cluster is refused, in v0's shape.
    refused = kafka_python_request(ab, "carol", DescribeAclsRequest[0](
        TOPIC, None, None, None, ANY, ANY))
    assert refused["error_code"] == 31  # CLUSTER_AUTHORIZATION_FAILED
