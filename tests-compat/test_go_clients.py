"""Debian 12's Go Kafka clients, sarama 1.22.1 and kafka-go 0.2.1 (2019 and 2018), built from
Debian's packages by tests-compat/install.sh. They speak protocol versions Kafka 4.0 removed
(KIP-896), which Weir serves as Kafka 3.9 did: sarama at its default protocol (Kafka 0.8.2)
produces with Produce v0 (plain and gzip), fetches with Fetch v0 and commits with OffsetCommit
v1; at 0.10/0.11 its admin client creates and deletes topics with v0 and describes configs with
v0, and its consumer groups join with JoinGroup v1; kafka-go creates topics with CreateTopics v0.
The checks themselves are in tests-compat/go/oldclients/main.go."""

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# Debian's Go library packages install their sources here (GOPATH mode, no module proxy).
DEBIAN_GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="module")
def oldclients(tmp_path_factory):
    go = shutil.which("go")
    assert go, "go is not installed (run tests-compat/install.sh)"
    out = str(tmp_path_factory.mktemp("go") / "oldclients")
    env = dict(os.environ, GOPATH=DEBIAN_GOPATH, GO111MODULE="off", GOFLAGS="")
    env.setdefault("GOCACHE", str(tmp_path_factory.mktemp("gocache")))
    proc = subprocess.run([go, "build", "-o", out, "."], cwd=os.path.join(HERE, "go", "oldclients"),
                          env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, f"go build failed:\n{proc.stderr.decode(errors='replace')[-4000:]}"
    return out


def run(oldclients, check, broker, unique):
    proc = subprocess.run([oldclients, check, broker.bootstrap, unique(f"go-{check}"), unique("go-group")],
                          capture_output=True, timeout=180)
    stdout = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0 and stdout.rstrip().endswith("OK"), (
        f"{check} exited {proc.returncode}\nstdout: {stdout[-2000:]}\n"
        f"stderr: {proc.stderr.decode(errors='replace')[-4000:]}\nbroker: {broker.stderr_tail()}"
    )
    return stdout


def test_sarama_at_its_default_kafka_0_8_protocol(oldclients, broker, unique):
    out = run(oldclients, "sarama-0.8", broker, unique)
    assert "sarama version: 0.8.2.0" in out
    assert "consumed 30 records" in out


def test_sarama_admin_and_consumer_group(oldclients, broker, unique):
    out = run(oldclients, "sarama-group", broker, unique)
    assert "committed offsets add up to 30" in out
    assert "topic deleted" in out


def test_kafka_go_creates_writes_and_reads_in_a_group(oldclients, broker, unique):
    out = run(oldclients, "kafka-go", broker, unique)
    assert "read 10 then 5 in one group" in out
