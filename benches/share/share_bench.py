#!/usr/bin/env python3
"""Share-group consumption against classic consumer-group consumption of the same topic.

Writes RECORDS records of SIZE bytes into a topic of PARTITIONS partitions once, then, for each
consumer count in --consumers and each round, reads the whole topic with:

  classic  a new consumer group (one process per member, auto-commit as clients default to);
  share    a new share group (one process per member, ShareConsumer with
           share.acknowledgement.mode=explicit: every record acknowledged ACCEPT on its own, the
           acknowledgements sent with the next poll as librdkafka batches them).

The rate is records / (last record received - first record received) over all members, so that
joining a group (the classic group's initial rebalance delay) is not counted. The two modes run
one after the other in each round, their order reversed on alternate rounds; the ratio share /
classic is computed per round (neighbouring runs) and summarised as median [min-max].
Run by benches/run.sh (profile "share"); see benches/README.md.

    share_bench.py --weir BIN --data DIR --port P [--records N] [--size B] [--partitions P]
                   [--consumers 1,4] [--rounds R] [--out results.tsv]
    share_bench.py --summary results.tsv
"""

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid

from confluent_kafka import AcknowledgeType, Consumer, Producer, ShareConsumer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

TOPIC = "share-bench"
# A member gives up after this long without the topic fully read (a hang guard only).
READ_DEADLINE_S = 600


def log(msg):
    print(f"[share {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_port(port, proc, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("broker did not accept connections")


def fill(bootstrap, records, size, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, partitions, 1)])[TOPIC].result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20})
    value = b"x" * size
    for i in range(records):
        while True:
            try:
                p.produce(TOPIC, value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.1)
    if p.flush(60) != 0:
        raise RuntimeError("records left unsent")


def member(mode, bootstrap, group, total, counter, first, last):
    """One group member: reads until `counter` (shared by all members) reaches `total`."""
    if mode == "classic":
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest"})
    else:
        c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "share.acknowledgement.mode": "explicit"})
    c.subscribe([TOPIC])
    deadline = time.monotonic() + READ_DEADLINE_S
    mine = 0
    while time.monotonic() < deadline:
        if mode == "classic":
            got = c.consume(1000, 0.5)
        else:
            got = c.poll(0.5)
        n = 0
        for m in got:
            if m.error() is not None:
                continue
            if mode == "share":
                c.acknowledge(m, AcknowledgeType.ACCEPT)
            n += 1
        if n:
            now = time.time()
            with counter.get_lock():
                if first.value == 0.0:
                    first.value = now
                counter.value += n
                last.value = max(last.value, now)
            mine += n
        with counter.get_lock():
            if counter.value >= total:
                break
    if mode == "share":
        try:
            c.commit_sync(10.0)
        except Exception:  # noqa: BLE001 (the records are counted; the last acks may be lost at close)
            pass
    c.close()


def read_all(mode, bootstrap, consumers, total):
    group = f"{mode}-{uuid.uuid4().hex[:8]}"
    if mode == "share":
        admin = AdminClient({"bootstrap.servers": bootstrap})
        res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
            ConfigEntry("share.auto.offset.reset", "earliest",
                        incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res])[res].result(30)
    counter = mp.Value("q", 0)
    first = mp.Value("d", 0.0)
    last = mp.Value("d", 0.0)
    procs = [mp.Process(target=member, args=(mode, bootstrap, group, total, counter, first, last))
             for _ in range(consumers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(READ_DEADLINE_S + 60)
    if counter.value < total:
        raise RuntimeError(f"{mode} x{consumers}: read {counter.value} of {total} records")
    return counter.value / max(last.value - first.value, 1e-3)


def run(args):
    shutil.rmtree(args.data, ignore_errors=True)
    os.makedirs(args.data)
    logf = open(os.path.join(args.data, "..", "share-broker.log"), "w")
    cmd = [args.weir, "serve", "--listener", f"127.0.0.1:{args.port}", "--data-dir", args.data,
           "--admin-listener", "none", "--fsync", "never"]
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    bootstrap = f"127.0.0.1:{args.port}"
    rows = []
    try:
        wait_port(args.port, proc)
        log(f"writing {args.records} x {args.size} B into {args.partitions} partitions")
        fill(bootstrap, args.records, args.size, args.partitions)
        for consumers in args.consumers:
            for r in range(args.rounds):
                order = ["classic", "share"] if r % 2 == 0 else ["share", "classic"]
                for mode in order:
                    rate = read_all(mode, bootstrap, consumers, args.records)
                    log(f"round {r + 1} {mode} x{consumers}: {rate:,.0f} records/s")
                    rows.append((consumers, r + 1, mode, rate))
    finally:
        proc.terminate()
        proc.wait(30)
        logf.close()
    out = open(args.out, "a") if args.out else sys.stdout
    for consumers, rnd, mode, rate in rows:
        print(f"{args.records}\t{args.size}\t{args.partitions}\t{consumers}\t{rnd}\t{mode}\t{rate:.0f}",
              file=out)
    if args.out:
        out.close()


def summary(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path)][1:]
    by = {}
    for records, size, partitions, consumers, rnd, mode, rate in rows:
        by.setdefault((int(consumers), int(rnd)), {})[mode] = float(rate)
        header = f"{records} records of {size} B in {partitions} partitions, fsync=never"

    def fmt(xs, f):
        return f"{f(statistics.median(xs))} [{f(min(xs))}–{f(max(xs))}]"

    print(f"Share groups against classic groups: {header}; median [min–max] of "
          f"{len({k[1] for k in by})} rounds\n")
    print("| Consumers | Classic group (records/s) | Share group, ack per record (records/s) | Share / classic |")
    print("|---:|---:|---:|---:|")
    for consumers in sorted({k[0] for k in by}):
        rounds = [v for k, v in by.items() if k[0] == consumers and len(v) == 2]
        classic = [v["classic"] for v in rounds]
        share = [v["share"] for v in rounds]
        ratio = [v["share"] / v["classic"] for v in rounds]
        print(f"| {consumers} | {fmt(classic, lambda x: f'{x:,.0f}')} | {fmt(share, lambda x: f'{x:,.0f}')} "
              f"| {fmt(ratio, lambda x: f'{x:.2f}')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir")
    ap.add_argument("--data")
    ap.add_argument("--port", type=int, default=19092)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--consumers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--summary")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
    else:
        if not (args.weir and args.data):
            ap.error("--weir and --data are required")
        run(args)


if __name__ == "__main__":
    main()
