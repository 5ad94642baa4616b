"""A real Weir cluster for tests: one etcd (Debian's etcd-server) and N `weir serve` processes
that find each other through it, all on free localhost ports.

`cluster` (the fixture in conftest) yields a `WeirCluster`; each broker is a `WeirBroker` from
conftest (same start/stop/kill9/restart and log handling), started with --node-id and --etcd.

`NetnsLink` puts a broker in its own network namespace joined to the host by a veth pair, so
that a test can cut it off from everyone (and heal it) without stopping it.
"""

import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from ports import free_port

ETCD_START_TIMEOUT_S = 20.0


class Etcd:
    """A single-member etcd with its own data directory."""

    def __init__(self, host="127.0.0.1"):
        self.workdir = tempfile.mkdtemp(prefix="etcd-")
        self.host = host
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"http://{host}:{self.client_port}"
        self.log_path = os.path.join(self.workdir, "etcd.log")
        self.proc = None

    def start(self):
        etcd = shutil.which("etcd")
        assert etcd, "etcd is not installed (scripts/test.sh installs Debian's etcd-server)"
        peer = f"http://{self.host}:{self.peer_port}"
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
                with socket.create_connection((self.host, self.client_port), timeout=0.5):
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
    """etcd plus brokers 1..n; `brokers[i]` is node id i+1.

    `host` is the address etcd and the brokers listen on; `placement(node)` may instead give a
    broker its own (host, command prefix), e.g. `NetnsLink.placement` for one in a namespace."""

    def __init__(self, make_broker, size, extra_args=(), host="127.0.0.1", placement=None):
        self.etcd = Etcd(host)
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
                where = placement(node) if placement else None
                broker_host, prefix = where if where else (host, ())
                self.brokers.append(make_broker(node, args, broker_host, prefix))
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


def _ip(*args, check=True):
    """Runs `ip ARGS`; a failure carries ip's own message."""
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


class NetnsLink:
    """A network namespace joined to the host by a veth pair: the host end has `host_ip`, the
    namespace end `ns_ip` (a /30 in 10.231.0.0/16 no interface on the host uses). A process
    started with `prefix` runs inside the namespace; everything on the host that listens on
    `host_ip` is reachable from it and it from the host, until `isolate()` routes each side's
    traffic to the other into a blackhole on both sides (a network split: nothing crosses,
    open connections stall; both ends stay up, so each side still reaches its own addresses,
    e.g. a client inside the namespace still reaches the broker there). `heal()` removes those
    routes. Names carry a random suffix so concurrent runs do not clash. `close()` removes the
    namespace and the veth pair (also after a partial setup)."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.name = f"weir-test-{tag}"
        self.host_if = f"wt{tag}h"  # interface names: at most 15 characters
        self.ns_if = f"wt{tag}n"
        used = {
            ipaddress.ip_interface(word).network
            for line in _ip("-o", "addr", "show").stdout.splitlines()
            for word in line.split()
            if "/" in word and word[0].isdigit() and "." in word
        }
        space = ipaddress.ip_network("10.231.0.0/16")
        for _ in range(100):
            net = ipaddress.ip_network((int(space.network_address) + 4 * secrets.randbelow(16384), 30))
            if not any(net.overlaps(u) for u in used):
                break
        else:
            raise RuntimeError("no free /30 in 10.231.0.0/16 for the test namespace")
        hosts = list(net.hosts())
        self.host_ip, self.ns_ip = str(hosts[0]), str(hosts[1])
        self.prefix = ("ip", "netns", "exec", self.name)
        self._created = False

    def create(self):
        self._created = True
        _ip("netns", "add", self.name)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        _ip("link", "set", self.ns_if, "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.name, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        _ip("-n", self.name, "link", "set", "lo", "up")
        _ip("-n", self.name, "link", "set", self.ns_if, "up")
        return self

    def placement(self, node_in_namespace):
        """For WeirCluster: that node in the namespace, the others on the host end."""
        return lambda node: (
            (self.ns_ip, self.prefix) if node == node_in_namespace else (self.host_ip, ())
        )

    def isolate(self):
        _ip("route", "add", "blackhole", f"{self.ns_ip}/32")
        _ip("-n", self.name, "route", "add", "blackhole", f"{self.host_ip}/32")

    def heal(self):
        _ip("route", "del", "blackhole", f"{self.ns_ip}/32", check=False)
        _ip("-n", self.name, "route", "del", "blackhole", f"{self.host_ip}/32", check=False)

    def close(self):
        if not self._created:
            return
        # Deleting the namespace deletes its veth end, and with it the host end; the explicit
        # delete covers an interface created before the move into the namespace failed.
        self.heal()
        _ip("netns", "del", self.name, check=False)
        _ip("link", "del", self.host_if, check=False)
        self._created = False
