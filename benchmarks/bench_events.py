#!/usr/bin/env python3
"""How fast bpfmap drains event streams: a program (built with bpfmap.core.asm, run in the
kernel with BPF_PROG_TEST_RUN, repeat=N) writes N small records while a reader drains
them; reports records/s and how many the program could not write (ring full).

Run as root (not in CI):

    python benchmarks/bench_events.py [--records 1000000] [--ring-mb 16]

Readers measured: the library (RingBufferReader / PerfBufferReader, records counted,
not decoded) and the CLI (`bpfmap events PIN --count N -o text > /dev/null`, decoding
every record through --layout u32,u32, and as a 3-field struct in text and JSON Lines).
Rates count from the program's first record to the reader's end (the CLI is started
0.3 s before; its rate counting that wait and its start-up is printed next to it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from _common import private_bpffs  # noqa: E402

from bpfmap import Map  # noqa: E402
from bpfmap.core.maps import Program  # noqa: E402
from bpfmap.streams.events import reader  # noqa: E402

OUTPUT = {
    "ringbuf": ["r1 = map[out]", "r2 = r10", "r2 += -8", "r3 = 8", "r4 = 0", "call ringbuf_output"],
    "perf_event_array": [
        "r1 = r6",
        "r2 = map[out]",
        "r3 = 0xffffffff ll",
        "r4 = r10",
        "r4 += -8",
        "r5 = 8",
        "call perf_event_output",
    ],
}


def program(kind: str, out: Map, drops: Map) -> Program:
    """Each run writes one 8-byte record (a marker, skb->len); failures count in drops[0]."""
    code = [
        "r6 = r1",
        "r1 = *(u32 *)(r6 + 0)",
        "*(u32 *)(r10 - 8) = r1",
        "r1 = 0xabcd",
        "*(u32 *)(r10 - 4) = r1",
        *OUTPUT[kind],
        "if r0 == 0 goto out",
        "r1 = 0",
        "*(u32 *)(r10 - 12) = r1",
        "r2 = r10",
        "r2 += -12",
        "r1 = map[drops]",
        "call map_lookup_elem",
        "if r0 == 0 goto out",
        "r1 = 1",
        "lock *(u64 *)(r0 + 0) += r1",
        "out:",
        "r0 = 0",
        "exit",
    ]
    return Program.load("socket_filter", "\n".join(code), {"out": out, "drops": drops})


def produce(prog: Program, n: int) -> threading.Thread:
    t = threading.Thread(target=prog.test_run, kwargs={"data": bytes(64), "repeat": n})
    t.start()
    return t


def bench_library(kind: str, n: int, ring: int, pages: int, packed: bool = False) -> tuple[float, int, int]:
    out = Map.create(
        kind, 0 if kind == "ringbuf" else 4, 0 if kind == "ringbuf" else 4, ring if kind == "ringbuf" else None
    )
    drops = Map.create("array", 4, 8, 1)
    prog = program(kind, out, drops)
    got = 0
    with reader(out, pages) as rd:
        start = time.perf_counter()
        t = produce(prog, n)
        idle = None
        while True:
            batch = rd.read(0.2, packed=packed)
            got += len(batch)
            if t.is_alive() or batch:
                idle = None
                continue
            dropped = int.from_bytes(drops.lookup(bytes(4)), "little")
            idle = idle or time.perf_counter()
            if got + dropped >= n or time.perf_counter() - idle > 2:
                break
        elapsed = time.perf_counter() - start
        t.join()
    dropped = int.from_bytes(drops.lookup(bytes(4)), "little")
    for obj in (prog, drops, out):
        obj.close()
    return elapsed, got, dropped


def bench_cli(fs: str, n: int, ring: int, layout: str = "u32,u32", fmt: str = "text") -> tuple[float, float, int, int]:
    """(seconds from the program's first record to the CLI's exit, seconds from starting
    the CLI, records, records not written).  The CLI starts 0.3 s before the program
    writes: the first figure is the drain rate, as the library's is measured; the second
    adds the wait and the start-up, which a stream pays once."""
    path = os.path.join(fs, "rb")
    out = Map.create("ringbuf", 0, 0, ring)
    out.pin(path)
    drops = Map.create("array", 4, 8, 1)
    prog = program("ringbuf", out, drops)
    exe = shutil.which("bpfmap") or sys.executable
    cmd = [exe] if exe.endswith("bpfmap") else [exe, "-m", "bpfmap"]
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(
            cmd + ["events", path, "--layout", layout, "-o", fmt, "--count", str(n), "--timeout", "120", "-q"],
            stdout=devnull,
        )
        time.sleep(0.3)  # the reader starts (the ring keeps records written before it anyway)
        first = time.perf_counter()
        t = produce(prog, n)
        t.join()
        proc.wait()
    end = time.perf_counter()
    dropped = int.from_bytes(drops.lookup(bytes(4)), "little")
    os.unlink(path)
    for obj in (prog, drops, out):
        obj.close()
    return end - first, end - start, n - dropped, dropped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--ring-mb", type=int, default=16, help="ring buffer size (16 MB holds 1M 8-byte records)")
    ap.add_argument("--pages", type=int, default=1024, help="perf buffer pages per CPU")
    args = ap.parse_args()
    ring = args.ring_mb << 20
    n = args.records
    print(f"{n:,} records of 8 bytes, ring buffer {args.ring_mb} MiB, perf buffer {args.pages} pages/CPU")
    print(f"{'reader':<40} {'seconds':>8} {'read':>10} {'not written':>12} {'records/s':>12}")
    for name, (secs, got, dropped) in [
        ("library, ringbuf", bench_library("ringbuf", n, ring, args.pages)),
        ("library, ringbuf, packed=True", bench_library("ringbuf", n, ring, args.pages, packed=True)),
        ("library, perf_event_array", bench_library("perf_event_array", n, ring, args.pages)),
    ]:
        print(f"{name:<40} {secs:8.3f} {got:10,} {dropped:12,} {got / secs:12,.0f}")
    with private_bpffs("bpfmapevents") as (_tmp, fs):
        for label, layout, fmt in (
            ("CLI bpfmap events -o text, ringbuf", "u32,u32", "text"),
            # the same 8 bytes as a 3-field struct {len, tag, hi}, both formats
            ("CLI -o text, 3-field struct", "len=u32,tag=u16,hi=u16", "text"),
            ("CLI -o jsonl, 3-field struct", "len=u32,tag=u16,hi=u16", "jsonl"),
        ):
            secs, whole, got, dropped = bench_cli(fs, n, ring, layout, fmt)
            print(
                f"{label:<40} {secs:8.3f} {got:10,} {dropped:12,} {got / secs:12,.0f}"
                f"   ({got / whole:,.0f}/s counting start-up and the 0.3 s wait)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
