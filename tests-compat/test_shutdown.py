"""SIGTERM while a consumer is long-polling: the broker answers the parked Fetch at once and exits
cleanly instead of holding shutdown until the poll would have expired."""

import signal
import subprocess
import time

from helpers import (
    assign_from_beginning,
    consume_n,
    consumer,
    create_topic,
    produce_and_flush,
    producer,
)

# The broker's hard limit on how long shutdown waits for in-flight requests (SHUTDOWN_GRACE_MS).
SHUTDOWN_GRACE_S = 10
# Far longer than the grace (the broker caps a Fetch's wait at 30 s by default, still three times
# the grace): a broker that lets this poll run out cannot exit within the grace.
FETCH_WAIT_MS = 60000


def test_sigterm_does_not_wait_for_long_poll_fetches(broker_factory, unique):
    b = broker_factory()
    topic = unique("long-poll")
    create_topic(b.bootstrap, topic)
    produce_and_flush(producer(b.bootstrap), topic, [{"value": b"only"}])

    c = consumer(b.bootstrap, **{"fetch.wait.max.ms": FETCH_WAIT_MS, "fetch.min.bytes": 1})
    assign_from_beginning(c, topic, [0])
    consume_n(c, 1)
    # Nothing more to read: the consumer's next Fetch parks on the broker.
    end = time.monotonic() + 1
    while time.monotonic() < end:
        assert c.poll(0.1) is None

    b.proc.send_signal(signal.SIGTERM)
    try:
        code = b.proc.wait(timeout=SHUTDOWN_GRACE_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"broker still running {SHUTDOWN_GRACE_S}s after SIGTERM\n{b.stderr_tail()}"
        ) from None
    assert code == 0, f"broker exited with {code}\n{b.stderr_tail()}"
    log = b.stderr_tail(lines=200)
    assert "shutdown complete" in log, log
    assert "did not finish" not in log, log
