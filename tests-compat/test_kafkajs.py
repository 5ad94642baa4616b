"""KafkaJS (2.2.4, pure JavaScript, pinned in tests-compat/kafkajs) against Weir: each test runs
one scenario of tests-compat/kafkajs/scenarios.js with node and asserts what a KafkaJS user sees.
Some of these behaviours were found by running KafkaJS's own test suite against a Weir cluster:
DescribeConfigs synonyms as Kafka lists them, and record timestamps checked against the topic's
window (INVALID_TIMESTAMP)."""

import json
import os
import subprocess
from collections import Counter

SCENARIOS = os.path.join(os.path.dirname(__file__), "kafkajs", "scenarios.js")
NODE_TIMEOUT_S = 120


def kafkajs(broker, scenario, **args):
    """Runs `scenario` against `broker` and returns what it printed (parsed JSON)."""
    spec = {"scenario": scenario, "brokers": broker.bootstrap.split(","), **args}
    proc = subprocess.run(["node", SCENARIOS, json.dumps(spec)], capture_output=True,
                          timeout=NODE_TIMEOUT_S)
    assert proc.returncode == 0, (
        f"kafkajs {scenario} failed:\n{proc.stderr.decode(errors='replace')}\n"
        + broker.stderr_tail()
    )
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def test_group_consumes_every_record_once_and_commits_what_it_consumed(broker, unique):
    topic, group = unique("kjs-group"), unique("kjs-g")
    got = kafkajs(broker, "groupRoundTrip", topic=topic, groupId=group, count=60)
    values = Counter(r["value"] for r in got["seen"])
    assert values == Counter(f"v{i}" for i in range(60)), "every record exactly once"
    assert (got["groupState"], got["members"]) == ("Stable", 1)
    committed = {p["partition"]: p for p in got["committed"]}
    assert sorted(committed) == [0, 1, 2]
    per_partition = Counter(r["partition"] for r in got["seen"])
    for index, p in committed.items():
        assert int(p["offset"]) == per_partition[index], (index, p)


def test_transactions_read_committed_sees_only_committed_records(broker, unique):
    got = kafkajs(broker, "transactions", topic=unique("kjs-txn"), groupId=unique("kjs-txn-g"))
    assert got["seen"] == ["committed-1", "committed-2", "committed-3"]


def test_describe_configs_lists_kafkas_synonyms(broker, unique):
    entries = kafkajs(broker, "describeConfigs", topic=unique("kjs-configs"))["entries"]
    # DYNAMIC_TOPIC_CONFIG (1) for the override, DEFAULT_CONFIG (5) for the broker config that
    # sets the default where Kafka has one of that name...
    assert entries["retention.ms"] == {
        "value": "3600000", "isDefault": False, "source": 1,
        "synonyms": [["retention.ms", "3600000", 1]],
    }
    assert entries["compression.type"]["synonyms"] == [["compression.type", "producer", 5]]
    assert entries["segment.bytes"]["synonyms"] == [["log.segment.bytes", "1073741824", 5]]
    # ...and none where the broker default comes from another config (log.roll.ms from
    # log.roll.hours), as Kafka lists it.
    assert entries["segment.ms"] == {
        "value": "604800000", "isDefault": True, "source": 5, "synonyms": [],
    }


def test_record_timestamps_outside_the_topics_window_are_refused(broker, unique):
    results = kafkajs(broker, "timestamps", prefix=unique("kjs-ts"))["results"]
    accepted = {name for name, r in results.items() if r["ok"]}
    assert accepted == {"plainNow", "plainAYearAgo", "differenceNow", "appendTimeTwoHoursAhead"}
    for refused in ("plainTwoHoursAhead", "differenceTwoMinutesAgo"):
        assert results[refused]["error"]["type"] == "INVALID_TIMESTAMP", results[refused]
