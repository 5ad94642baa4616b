"""What the broker asks of the operating system by itself: started with a low soft limit on open
files (the usual 1024, here 256) under a higher hard limit, it raises the soft limit to the hard
one, so that many partitions and connections need no `ulimit -n` first."""

import resource

import pytest

from conftest import WeirBroker


def limits_of(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line")


def test_the_broker_raises_its_open_files_limit_to_the_hard_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.fail(f"this test needs a finite hard limit above 256, not {hard}")
    b = WeirBroker(name="weir-nofile", prefix=("prlimit", f"--nofile=256:{hard}", "--"))
    try:
        b.start()
        assert limits_of(b.proc.pid) == (hard, hard)
    finally:
        b.close()
        b.cleanup_files()
