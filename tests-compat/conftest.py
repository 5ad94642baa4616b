"""Fixtures for the client compatibility suite.

The suite runs real Kafka clients (confluent-kafka / librdkafka, kafka-python, Debian's kcat)
over real sockets against the `weir` binary named by $WEIR_BIN.

Fixtures:
  broker          one broker for the whole session; tests isolate themselves by unique topic
                  and group names (see `unique`).
  broker_factory  fresh brokers for tests that restart or kill the broker, so that they never
                  disturb the shared one.

Set WEIR_EXTERNAL_BOOTSTRAP=host:port to run the suite against an already running broker
(e.g. another Kafka-compatible implementation, to check the tests themselves); tests that need
to restart or kill the broker are skipped then.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from helpers import close_all_clients
from ports import free_port as _free_port


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTERNAL = os.environ.get("WEIR_EXTERNAL_BOOTSTRAP")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0

# Brokers currently alive, so a failing test's report can carry their stderr tail.
_LIVE_BROKERS = []


def _weir_bin():
    path = os.environ.get("WEIR_BIN") or os.path.join(REPO_ROOT, "target", "release", "weir")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        pytest.fail(f"broker binary not found: {path} (build it or set WEIR_BIN)", pytrace=False)
    return path


class WeirBroker:
    """One `weir serve` process with fixed ports and data directory across restarts."""

    def __init__(self, name="weir", extra_args=(), host="127.0.0.1", prefix=()):
        self.name = name
        self.bin = _weir_bin()
        self.workdir = tempfile.mkdtemp(prefix=f"{name}-")
        self.data_dir = os.path.join(self.workdir, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(self.workdir, "stderr.log")
        self.port = _free_port()
        self.admin_port = _free_port()
        self.host = host
        self.prefix = list(prefix)  # e.g. `ip netns exec NAME`: runs the broker in a namespace
        self.node_id = 0  # weir's single node advertises the listener as node 0
        self.bootstrap = f"{self.host}:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0
        # Extra environment of the broker process from its next start (e.g. WEIR_CRASH_AT).
        self.env = {}

    # -- lifecycle -------------------------------------------------------------------------

    def command(self):
        return [
            *self.prefix,
            self.bin,
            "serve",
            "--listener", self.bootstrap,
            "--data-dir", self.data_dir,
            "--admin-listener", f"{self.host}:{self.admin_port}",
            # Off loopback (a broker in a network namespace) the admin API needs TLS and a token
            # unless exposed on purpose; the tests read it over plain HTTP.
            *(() if self.host.startswith("127.") else ("--admin-insecure", "true")),
            *self.extra_args,
        ]

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                env={**os.environ, "NO_COLOR": "1", **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                start_new_session=True,
            )
        self._wait_listening()

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    f"broker exited with status {rc} during startup\n{self.stderr_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(
            f"broker did not accept connections on {self.bootstrap} within "
            f"{START_TIMEOUT_S:.0f}s\n{self.stderr_tail()}"
        )

    def stop(self):
        """SIGTERM and wait; a broker that ignores SIGTERM is killed and reported."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"broker did not exit within {STOP_TIMEOUT_S:.0f}s of SIGTERM\n{self.stderr_tail()}"
            )

    def restart(self):
        self.stop()
        self.start()

    def kill9(self):
        assert self.proc is not None and self.proc.poll() is None, "broker not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self):
        try:
            self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def cleanup_files(self):
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- diagnostics -----------------------------------------------------------------------

    def stderr_tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no broker log)"
        text = re.sub(r"\x1b\[[0-9;]*m", "", data.decode("utf-8", "replace")).splitlines()
        return f"--- {self.name} stderr (last {lines} lines of {self.log_path}) ---\n" + "\n".join(
            text[-lines:]
        )


class ExternalBroker:
    """A broker we did not start (WEIR_EXTERNAL_BOOTSTRAP); it cannot be restarted."""

    name = "external"
    node_id = None  # unknown: tests don't check the exact node id

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def _skip(self, *_a, **_k):
        pytest.skip("needs a broker the suite controls (WEIR_EXTERNAL_BOOTSTRAP is set)")

    restart = start = stop = kill9 = _skip

    def close(self):
        pass

    def cleanup_files(self):
        pass

    def stderr_tail(self, lines=60):
        return "(external broker: no log)"


def _new_broker(name, extra_args):
    if EXTERNAL:
        return ExternalBroker(EXTERNAL)
    b = WeirBroker(name=name, extra_args=extra_args)
    _LIVE_BROKERS.append(b)
    try:
        b.start()
    except BaseException:
        b.close()
        _LIVE_BROKERS.remove(b)
        raise
    return b


def _close_broker(b, failed):
    if isinstance(b, WeirBroker):
        try:
            b.close()
        finally:
            if b in _LIVE_BROKERS:
                _LIVE_BROKERS.remove(b)
            if failed:
                # Keep the data dir and log of a failed run for inspection (the log's tail is
                # already in the failing test's report).
                print(f"\n(broker files of {b.name} kept in {b.workdir})", file=sys.stderr)
            else:
                b.cleanup_files()


@pytest.fixture(scope="session")
def broker(request):
    """The shared broker: default settings, auto topic creation left at its default."""
    b = _new_broker("weir-shared", [])
    yield b
    _close_broker(b, request.session.testsfailed > 0)


@pytest.fixture
def broker_factory(request):
    """Starts fresh brokers (own ports and data dir) for tests that restart or kill them.

    With WEIR_EXTERNAL_BOOTSTRAP set the test is skipped, since those tests are about our
    broker's own lifecycle.
    """
    if EXTERNAL:
        pytest.skip("restarts/kills the broker; not possible with WEIR_EXTERNAL_BOOTSTRAP")
    made = []

    def make(*extra_args, name=None):
        b = _new_broker(name or f"weir-{request.node.name[:40]}", list(extra_args))
        made.append(b)
        return b

    yield make
    close_all_clients()  # while the brokers still run, so consumers can leave their groups
    rep = getattr(request.node, "rep_call", None)
    failed = rep is None or rep.failed
    for b in made:
        _close_broker(b, failed)


@pytest.fixture
def cluster_factory(request):
    """Starts clusters: cluster_factory(size=3, *extra_args) -> WeirCluster (etcd + `size`
    brokers with node ids 1..size). Everything is stopped after the test."""
    if EXTERNAL:
        pytest.skip("starts its own cluster; not possible with WEIR_EXTERNAL_BOOTSTRAP")
    from cluster import WeirCluster

    made = []

    def make(size=3, extra_args=(), host="127.0.0.1", placement=None):
        def make_broker(node, args, broker_host, prefix):
            b = WeirBroker(
                name=f"weir-{node}-{request.node.name[:30]}",
                extra_args=args,
                host=broker_host,
                prefix=prefix,
            )
            b.node_id = node
            _LIVE_BROKERS.append(b)
            b.start()
            return b

        c = WeirCluster(make_broker, size, extra_args, host=host, placement=placement)
        made.append(c)
        return c

    yield make
    close_all_clients()
    rep = getattr(request.node, "rep_call", None)
    failed = rep is None or rep.failed
    for c in made:
        for b in c.brokers:
            _close_broker(b, failed)
        c.etcd.close(keep_files=failed)


@pytest.fixture
def netns_link():
    """A `cluster.NetnsLink` (a network namespace and a veth pair to the host), removed after
    the test whatever its outcome. Request it before `cluster_factory`, so that the brokers in
    it are stopped first. Fails (not skips) when namespaces cannot be made: the suite runs as
    root where `ip netns` works, and a cluster test that silently did not run checks nothing."""
    if EXTERNAL:
        pytest.skip("starts its own cluster; not possible with WEIR_EXTERNAL_BOOTSTRAP")
    from cluster import NetnsLink

    link = NetnsLink()
    try:
        link.create()
    except (OSError, RuntimeError) as e:
        link.close()
        pytest.fail(
            f"cannot create a network namespace with a veth pair (needs root and iproute2): {e}",
            pytrace=False,
        )
    yield link
    link.close()


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    close_all_clients()


@pytest.fixture
def unique():
    """unique('topic') -> 'topic-<hex>': names that no other test (or earlier run) uses."""

    def make(prefix):
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
    if rep.failed and rep.when in ("setup", "call"):
        for b in list(_LIVE_BROKERS):
            rep.sections.append((f"{b.name} stderr tail", b.stderr_tail()))
