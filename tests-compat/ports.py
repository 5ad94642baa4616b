"""Listening ports for the brokers, etcd and browsers the tests start.

A port is picked below the kernel's ephemeral range: the kernel never gives such a port to an
outgoing connection as its source port. A port picked from that range (bind to port 0) could
be taken after the probe closes, and a client reconnecting to a stopped broker's port can even
connect to itself (TCP simultaneous open: source port = destination port), which then holds
the port so that the restarted broker cannot listen on it.
"""

import random
import socket

_handed_out = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port on 127.0.0.1 that nothing listens on, below the ephemeral range; never the same
    port twice in one process."""
    high = min(_ephemeral_low(), 65536) - 1
    low = 10000 if high > 12000 else 1024
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {low}..{high}")
