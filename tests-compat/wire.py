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


def describe_share_group_offsets(bootstrap, group, topic, partitions, lags=None):
    """DescribeShareGroupOffsets (API 90, v1) of `group`'s `partitions` of `topic`. Returns
    (group error, {partition: (start offset, error)}); fills `lags` with {partition: lag}
    (KIP-1226) when given."""
    parts = carray([struct.pack(">i", p) for p in partitions])
    body = carray([cstr(group) + carray([cstr(topic) + parts + b"\x00"]) + b"\x00"]) + b"\x00"
    r = call(bootstrap, 90, body, version=1)
    r.int32()

    def partition(r):
        index, start = r.int32(), r.int64()
        r.int32()  # leader epoch
        lag = r.int64()
        if lags is not None:
            lags[index] = lag
        code = r.int16()
        r.cstr()
        r.tags()
        return index, (start, code)

    def topic_result(r):
        r.cstr()
        r.take(16)
        found = dict(r.carray(partition))
        r.tags()
        return found

    def group_result(r):
        r.cstr()
        topics = r.carray(topic_result)
        code = r.int16()
        r.cstr()
        r.tags()
        return code, {p: v for t in topics for p, v in t.items()}

    (result,) = r.carray(group_result)
    return result
