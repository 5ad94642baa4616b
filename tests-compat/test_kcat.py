"""Debian 12's kcat 1.7 (librdkafka 2.0.2): an older librdkafka than confluent-kafka's."""

import re
import shutil
import subprocess

import pytest

from helpers import create_topic

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (run tests-compat/install.sh)")


def kcat(*args, stdin=None, timeout=60):
    proc = subprocess.run(
        ["kcat", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"kcat {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout[-2000:]!r}\n"
        f"stderr: {proc.stderr.decode(errors='replace')[-4000:]}"
    )
    return proc.stdout.decode()


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_consume_keys(broker, unique, codec):
    topic = unique(f"kcat-{codec}")
    create_topic(broker.bootstrap, topic, partitions=1)
    lines = [f"key{i}:value {i} with spaces" for i in range(50)]
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-K", ":", "-z", codec, "-X", "acks=all",
         stdin=("\n".join(lines) + "\n").encode())
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-q",
               "-f", "%k %s\n")
    assert out.splitlines() == [f"key{i} value {i} with spaces" for i in range(50)]

    # Offsets and partition as kcat reports them.
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-e", "-o", "45", "-q", "-f", "%p %o %k\n")
    assert out.splitlines() == [f"0 {o} key{o}" for o in range(45, 50)]


def test_kcat_metadata_listing(broker, unique):
    topic = unique("kcat-md")
    create_topic(broker.bootstrap, topic, partitions=3)
    out = kcat("-b", broker.bootstrap, "-L")
    host, port = broker.bootstrap.rsplit(":", 1)
    assert re.search(r"^\s*1 brokers:\s*$", out, re.M), out
    assert re.search(rf"^\s*broker \d+ at {re.escape(host)}:{port}", out, re.M), out
    assert re.search(rf'^\s*topic "{re.escape(topic)}" with 3 partitions:\s*$', out, re.M), out
    for p in range(3):
        assert re.search(rf"^\s*partition {p}, leader \d+, replicas: \d+, isrs: \d+", out, re.M), out

    out = kcat("-b", broker.bootstrap, "-L", "-t", topic)
    assert f'topic "{topic}" with 3 partitions' in out


def test_kcat_balanced_consumer_group(broker, unique):
    """kcat -G: the old librdkafka's group protocol (JoinGroup/SyncGroup/OffsetCommit)."""
    topic = unique("kcat-group")
    group = unique("kcat-g")
    create_topic(broker.bootstrap, topic, partitions=2)
    values = [f"m{i}" for i in range(30)]
    kcat("-b", broker.bootstrap, "-P", "-t", topic, stdin=("\n".join(values) + "\n").encode())
    out = kcat("-b", broker.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
               "-c", "30", "-q", "-f", "%s\n", topic, timeout=90)
    assert sorted(out.splitlines()) == sorted(values)
