"""A real Weir cluster for tests: one etcd (Debian's etcd-server) and N `weir serve` processes
that find each other through it, all on free localhost ports.

`cluster` (the fixture in conftest) yields a `WeirCluster`; each broker is a `WeirBroker` from
conftest (same start/stop/kill9/restart and log handling), started with --node-id and --etcd.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ETCD_START_TIMEOUT_S = 20.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """A single-member etcd with its own data directory."""

    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="etcd-")
        self.client_port = free_port()
        self.peer_port = free_port()
        while self.peer_port == self.client_port:
            self.peer_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.client_port}"
        self.log_path = os.path.join(self.workdir, "etcd.log")
        self.proc = None

    def start(self):
        etcd = shutil.which("etcd")
        assert etcd, "etcd is not installed (scripts/test.sh installs Debian's etcd-server)"
        peer = f"http://127.0.0.1:{self.peer_port}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    etcd,
                    "--data-dir", os.path.join(self.workdir, "data"),
                    "--listen-client-urls", self.endpoint,
                    "--advertise-client-urls", self.endpoint,
                    "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", f"default={peer}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + ETCD_START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"etcd exited; see {self.log_path}"
            try:
                with socket.create_connection(("127.0.0.1", self.client_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"etcd did not start; see {self.log_path}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self, keep_files=False):
        self.stop()
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)


class WeirCluster:
    """etcd plus brokers 1..n; `brokers[i]` is node id i+1."""

    def __init__(self, make_broker, size, extra_args=()):
        self.etcd = Etcd()
        self.brokers = []
        try:
            self.etcd.start()
            for node in range(1, size + 1):
                args = [
                    "--node-id", str(node),
                    "--etcd", self.etcd.endpoint,
                    "--group-initial-rebalance-delay-ms", "0",
                    *extra_args,
                ]
                self.brokers.append(make_broker(node, args))
            self.wait_formed()
        except BaseException:
            for b in self.brokers:
                b.close()
            self.etcd.close(keep_files=True)
            raise

    def wait_formed(self, timeout=ETCD_START_TIMEOUT_S):
        """Until every broker lists every broker in Metadata (they found each other in etcd)."""
        from confluent_kafka.admin import AdminClient

        want = sorted(b.node_id for b in self.brokers)
        deadline = time.monotonic() + timeout
        for b in self.brokers:
            admin = AdminClient({"bootstrap.servers": b.bootstrap})
            while True:
                seen = sorted(admin.list_topics(timeout=10).brokers)
                if seen == want:
                    break
                assert time.monotonic() < deadline, f"broker {b.node_id} sees brokers {seen}"
                time.sleep(0.1)

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def live_bootstrap(self):
        return ",".join(
            b.bootstrap for b in self.brokers if b.proc is not None and b.proc.poll() is None
        )

    def broker(self, node_id):
        return self.brokers[node_id - 1]
