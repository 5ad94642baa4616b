"""Kafka requests written by hand, for the APIs the Python clients in the suite do not offer:
flexible versions only (request header v2, response header v1, compact strings and arrays,
tagged fields skipped)."""

import socket
import struct

from helpers import WAIT_S


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def cstr(s):
    data = s.encode()
    return uvarint(len(data) + 1) + data


def carray(items):
    return uvarint(len(items) + 1) + b"".join(items)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        assert len(out) == n, "response cut short"
        self.pos += n
        return out

    def int16(self):
        return struct.unpack(">h", self.take(2))[0]

    def int32(self):
        return struct.unpack(">i", self.take(4))[0]

    def int64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = n = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7

    def cstr(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def carray(self, item):
        n = self.uvarint()
        return [] if n == 0 else [item(self) for _ in range(n - 1)]


def call(bootstrap, api_key, body, version=0):
    """One flexible (header v2) request to `bootstrap`; the response body."""
    host, port = bootstrap.rsplit(":", 1)
    client = b"weir-wire-test"
    header = struct.pack(">hhih", api_key, version, 7, len(client)) + client + b"\x00"
    frame = header + body
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    r = Reader(data[4:])
    assert r.int32() == 7, "correlation id"
    r.tags()
    return r
