#!/usr/bin/env python3
"""Start-up time against data size: writes SIZE bytes across PARTITIONS partitions of one topic
with idempotent producers, stops the broker (SIGTERM, or SIGKILL for "kill9"), restarts it and
measures the time from the new process's start until its port accepts a connection and until a
Metadata request is answered. Run by benches/run.sh (profile "startup"); see benches/README.md.

    startup.py --weir BIN --data DIR --port P --size-mib N --partitions P --stops clean,kill9
               [--variant NAME:ARGS]... [--out results.tsv]

Each stop kind is measured for each variant on the same data (the data is written once per stop
kind). A variant "full-scan" deletes the producer snapshots before the restart, which makes the
broker rebuild producer state from every batch header, as before snapshots existed; "before"
(with --before BIN) restarts another binary, say one built from main.

The listener is bound before the logs are opened, so the port accepts connections (into the
kernel's backlog) at once; "Metadata answered" is when the broker actually serves.
"""

import argparse
import glob
import os
import signal
import socket
import struct
import subprocess
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def log(msg):
    print(f"[startup {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def start(args, logf, binary=None):
    cmd = [binary or args.weir, "serve", "--listener", f"127.0.0.1:{args.port}", "--data-dir", args.data,
           "--admin-listener", "none", "--fsync", args.fsync]
    return subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT), time.monotonic()


def metadata_request(correlation):
    # Metadata v1, all topics (null array), client id "startup".
    client = b"startup"
    body = struct.pack(">hhih", 3, 1, correlation, len(client)) + client + struct.pack(">i", -1)
    return struct.pack(">i", len(body)) + body


def wait_ready(port, t0, proc, timeout_s=600):
    """Seconds from t0 until the port accepts, and until a Metadata answer arrives."""
    accepted = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.005)
            continue
        if accepted is None:
            accepted = time.monotonic() - t0
        try:
            s.settimeout(30)
            s.sendall(metadata_request(1))
            head = s.recv(4, socket.MSG_WAITALL)
            if len(head) == 4:
                n = struct.unpack(">i", head)[0]
                s.recv(n, socket.MSG_WAITALL)
                return accepted, time.monotonic() - t0
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.005)
    raise RuntimeError("broker not ready")


def fill(args):
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{args.port}"})
    fut = admin.create_topics([NewTopic("startup", args.partitions, 1)])["startup"]
    fut.result(60)
    time.sleep(1)
    value = os.urandom(args.record_bytes)
    total = args.size_mib << 20
    producers = [Producer({"bootstrap.servers": f"127.0.0.1:{args.port}", "enable.idempotence": True,
                           "linger.ms": 20, "batch.size": 262144, "queue.buffering.max.kbytes": 262144,
                           "sticky.partitioning.linger.ms": 0}) for _ in range(args.producers)]
    sent = 0
    i = 0
    t = time.monotonic()
    while sent < total:
        p = producers[i % len(producers)]
        try:
            p.produce("startup", value=value, partition=i % args.partitions)
            sent += len(value)
            i += 1
        except BufferError:
            p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    for p in producers:
        assert p.flush(300) == 0, "records not delivered"
    log(f"wrote {sent >> 20} MiB in {i} records to {args.partitions} partitions in {time.monotonic() - t:.1f} s")


def summary(path):
    rows = {}
    with open(path) as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            if c[0] == "size_mib":
                continue
            key = (int(c[0]), int(c[1]), c[3], c[4])
            rows.setdefault(key, {"disk": int(c[2]), "accept": [], "meta": []})
            rows[key]["accept"].append(float(c[6]))
            rows[key]["meta"].append(float(c[7]))

    def median(v):
        v = sorted(v)
        return v[len(v) // 2]

    print("| data | partitions | on disk | stop | variant | runs | port accepts (s) | Metadata answered (s, median) | min-max (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (size, parts, stop, variant), r in sorted(rows.items()):
        print(f"| {size} MiB | {parts} | {r['disk'] / 2**20:.0f} MiB | {stop} | {variant} | {len(r['meta'])} | "
              f"{median(r['accept']):.3f} | {median(r['meta']):.3f} | {min(r['meta']):.3f}-{max(r['meta']):.3f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir")
    ap.add_argument("--data")
    ap.add_argument("--summary", help="print a markdown table (medians) of a results file and exit")
    ap.add_argument("--port", type=int, default=19092)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--record-bytes", type=int, default=1024)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--fsync", default="never")
    ap.add_argument("--stops", default="clean,kill9")
    ap.add_argument("--variants", default="snapshots,full-scan")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", help="another weir binary (say main's) measured as variant 'before'")
    ap.add_argument("--out", default="/dev/stdout")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    if not (args.weir and args.data):
        ap.error("--weir and --data are required")
    logf = open(os.path.join(os.path.dirname(args.data.rstrip("/")) or ".", "startup-broker.log"), "ab")
    with open(args.out, "a") as out:
        for stop in args.stops.split(","):
            subprocess.run(["rm", "-rf", args.data], check=True)
            proc, _ = start(args, logf)
            wait_ready(args.port, time.monotonic(), proc)
            fill(args)
            on_disk = sum(os.path.getsize(f) for f in glob.glob(f"{args.data}/logs/startup-*/*.log"))
            variants = args.variants.split(",") + (["before"] if args.before else [])
            for rep in range(args.repeat):
                for variant in variants:
                    if stop == "clean":
                        proc.send_signal(signal.SIGTERM)
                    else:
                        # The page cache keeps what was written; kill -9 loses nothing here.
                        proc.send_signal(signal.SIGKILL)
                    proc.wait(600)
                    if variant == "full-scan":
                        for f in glob.glob(f"{args.data}/logs/*/*.producer-snapshot"):
                            os.remove(f)
                    proc, t0 = start(args, logf, args.before if variant == "before" else None)
                    accepted, ready = wait_ready(args.port, t0, proc)
                    log(f"{stop} {variant} #{rep + 1}: accepts after {accepted:.3f} s, Metadata after {ready:.3f} s")
                    out.write(f"{args.size_mib}\t{args.partitions}\t{on_disk}\t{stop}\t{variant}\t{rep + 1}\t{accepted:.3f}\t{ready:.3f}\n")
                    out.flush()
            proc.send_signal(signal.SIGTERM)
            proc.wait(600)
    subprocess.run(["rm", "-rf", args.data], check=True)


if __name__ == "__main__":
    main()
