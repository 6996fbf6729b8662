#!/usr/bin/env python3
"""Every output format and option against a plain dump (issue 26: no slow path), as a
user runs them (`bpfmap dump ...`, output to /dev/null, wall time with start-up):

- a 100,000-entry flow map with BTF
  (`saddr=ipv4,daddr=ipv4,sport=be16,dport=be16,proto=u8:packets=u64,bytes=u64,comm=char[16]`):
  `-o text`, `-o csv`, `-o table`, `--sort packets --top 10`, `--sort packets` (text,
  jsonl, csv);
- a 100,000-entry per-CPU hash (`u32:u64`): the plain per-CPU dump, `--percpu sum`,
  `--percpu max`, `--cpu 0`;
- a 100,000-entry map of a C struct with bitfields, a union and an anonymous struct
  (BTF from a C header) against a map of the same leaves as plain fields;
- a 100,000-entry flow map of IPv4 and IPv6 flows by a family field, `--as
  saddr=ip,daddr=ip`, against the same map dumped with its addresses as `ipv6`;
- `--sort` by an array (its sum) and by a field of an anonymous struct;
- a live `watch` screen's poll (40 rows), by key and by rate, in-process.

Run as root (not in CI):

    python benchmarks/bench_formats.py [--entries 100000] [--reps 5]

Targets (issue 26): table <= 2x text; csv <= 1.3x text; a full --sort <= 2x the plain
dump of the same format; --percpu/--cpu <= 1.3x the plain per-CPU dump.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from _common import child_times, options, private_bpffs  # noqa: E402

FLOWS = "saddr=ipv4,daddr=ipv4,sport=be16,dport=be16,proto=u8:packets=u64,bytes=u64,comm=char[16]"


def make_flows(pin: str, n: int) -> None:
    subprocess.run(
        ["bpfmap", "create", "hash", "--layout", FLOWS, "--max-entries", str(n), "--pin", pin, "-q"], check=True
    )
    lines = "".join(
        f"saddr=10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255},daddr=192.168.0.1,sport={i % 65536},dport=443,proto=6"
        f"\tpackets={i * 7 % 100003},bytes={i * 1500},comm=c{i % 50}\n"
        for i in range(n)
    )
    subprocess.run(["bpfmap", "update", pin, "--from", "-", "-q"], input=lines, text=True, check=True)


def make_percpu(pin: str, n: int) -> None:
    from bpfmap import Map

    subprocess.run(
        ["bpfmap", "create", "percpu_hash", "--layout", "u32:u64", "--max-entries", str(n), "--pin", pin, "-q"],
        check=True,
    )
    with Map.open(pin) as m:
        keys = b"".join(i.to_bytes(4, "little") for i in range(n))
        values = b"".join(b"".join((i * (c + 1)).to_bytes(8, "little") for c in range(m.ncpus)) for i in range(n))
        m.update_batch(keys, values, n)


PACKED = """
struct conn {
    unsigned int proto : 8, state : 4, dir : 1, flags : 19;
    union { unsigned int v4; unsigned char v6[16]; } addr;
    struct { unsigned long long packets; char comm[8]; };
};
"""
UNPACKED = "proto=u32,state=u32,dir=u32,flags=u32,addr={v4=u32,v6=u8[16]},packets=u64,comm=char[8]"
FAMILIES = "family=u16,saddr=hex[16],daddr=hex[16],sport=be16,dport=be16"


def make_bitfields(tmp: str, packed: str, plain: str, n: int) -> None:
    """The same entries in a map of ``struct conn`` (BTF) and one of its leaves as plain fields."""
    header = os.path.join(tmp, "conn.h")
    with open(header, "w") as f:
        f.write(PACKED)
    create = ["bpfmap", "create", "hash", "--max-entries", str(n), "-q"]
    subprocess.run(
        [*create, "--c-header", header, "--key-type", "__u32", "--value-type", "struct conn", "--pin", packed],
        check=True,
    )
    subprocess.run([*create, "--layout", f"u32:{UNPACKED}", "--pin", plain], check=True)
    lines = {packed: [], plain: []}
    for i in range(n):
        f = {"proto": i % 17, "state": i % 5, "dir": i & 1, "flags": i * 7 % 50000}
        tail = {"packets": i * 3, "comm": f"c{i % 40}"}
        lines[packed].append(json.dumps({"key": i, "value": {**f, "addr": {"v4": 10 << 24 | i}, **tail}}))
        v6 = list((10 << 24 | i).to_bytes(4, "little")) + [0] * 12
        lines[plain].append(json.dumps({"key": i, "value": {**f, "addr": {"v4": 10 << 24 | i, "v6": v6}, **tail}}))
    for pin, text in lines.items():
        subprocess.run(
            ["bpfmap", "update", pin, "--from", "-", "-q"], input="\n".join(text) + "\n", text=True, check=True
        )


def make_families(pin: str, n: int) -> None:
    """Flows keyed by family, addresses and ports: every other one IPv6."""
    from bpfmap import Map

    subprocess.run(
        ["bpfmap", "create", "hash", "--layout", f"{FAMILIES}:u64", "--max-entries", str(n), "--pin", pin, "-q"],
        check=True,
    )
    keys = b"".join(
        (10 if i & 1 else 2).to_bytes(2, "little")
        + ((0x20010DB8 << 96 | i) if i & 1 else (10 << 24 | i) << 96).to_bytes(16, "big")
        + ((0x20010DB8 << 96 | 1) if i & 1 else (192 << 24 | 168 << 16 | 1) << 96).to_bytes(16, "big")
        + (i % 65536).to_bytes(2, "big")
        + (443).to_bytes(2, "big")
        for i in range(n)
    )
    with Map.open(pin) as m:
        m.update_batch(keys, b"".join(i.to_bytes(8, "little") for i in range(n)), n)


def watch_polls(pin: str, reps: int) -> dict[str, float]:
    """A live watch screen's poll (40 rows) by key and by rate, in-process, after a first
    poll (the second compares every entry with the first)."""
    import time

    from bpfmap import Map, View
    from bpfmap.live.watch import Watcher

    out = {}
    with Map.open(pin) as m:
        view = View(m)
        for sort in ("key", "rate"):
            w = Watcher(view, sort=sort)
            w.poll(40)
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                w.poll(40)
                times.append(time.perf_counter() - t0)
            out[f"--sort {sort}"] = statistics.median(times)
    return out


def paired(a: list[str], b: list[str], reps: int) -> tuple[float, float]:
    """Medians of two commands run alternately (a ratio that drifts less with the
    machine's load than two medians taken one after the other)."""
    ta, tb = [], []
    for _ in range(reps):
        ta.append(child_times(a)[0])
        tb.append(child_times(b)[0])
    return statistics.median(ta), statistics.median(tb)


def median(cmd: list[str], reps: int) -> float:
    return statistics.median(child_times(cmd)[0] for _ in range(reps))


def main() -> None:
    args = options(entries=100000, reps=5)
    n, reps = args.entries, args.reps
    with private_bpffs("bpfmapformats") as (_tmp, fs):
        flows, pcpu = os.path.join(fs, "flows"), os.path.join(fs, "pcpu")
        make_flows(flows, n)
        make_percpu(pcpu, n)
        runs = {
            "text": ["-o", "text"],
            "jsonl": ["-o", "jsonl"],
            "csv": ["-o", "csv"],
            "table": ["-o", "table"],
            "sort top 10": ["--sort", "packets", "--top", "10"],
            "sort text": ["--sort", "packets", "-o", "text"],
            "sort jsonl": ["--sort", "packets", "-o", "jsonl"],
            "sort csv": ["--sort", "packets", "-o", "csv"],
        }
        t = {name: median(["bpfmap", "dump", flows, *a], reps) for name, a in runs.items()}
        for name in runs:
            print(f"{n} flows  dump {' '.join(runs[name]):28} {t[name]:.3f} s  ({t[name] / t['text']:.2f}x text)")
        polls = watch_polls(flows, reps)
        for name, v in polls.items():
            print(f"{n} flows  watch poll {name:22} {v:.3f} s (in-process; a screen of 40 rows)")
        p = {
            name: median(["bpfmap", "dump", pcpu, *a], reps)
            for name, a in {
                "all": [],
                "sum": ["--percpu", "sum"],
                "max": ["--percpu", "max"],
                "cpu0": ["--cpu", "0"],
            }.items()
        }
        for name, v in p.items():
            print(f"{n} per-CPU dump {name:5} {v:.3f} s  ({v / p['all']:.2f}x the plain per-CPU dump)")
        packed, unpacked, fams = (os.path.join(fs, x) for x in ("packed", "unpacked", "fams"))
        make_bitfields(_tmp, packed, unpacked, n)
        make_families(fams, n)
        b: dict[str, float] = {}
        b["bitfields"], b["plain fields"] = paired(["bpfmap", "dump", packed], ["bpfmap", "dump", unpacked], 3 * reps)
        b["--as ip"], b["ipv6"] = paired(
            ["bpfmap", "dump", fams, "--as", "saddr=ip,daddr=ip"],
            ["bpfmap", "dump", fams, "--as", "saddr=ipv6,daddr=ipv6"],
            3 * reps,
        )
        b["sort array"] = median(["bpfmap", "dump", packed, "--sort", "addr.v6"], reps)
        b["sort anonymous"] = median(["bpfmap", "dump", packed, "--sort", "packets"], reps)
        print(
            f"{n} bitfields+union dump {b['bitfields']:.3f} s  ({b['bitfields'] / b['plain fields']:.2f}x the same leaves as plain fields, {b['plain fields']:.3f} s)"
        )
        for name in ("sort array", "sort anonymous"):
            print(f"{n} bitfields+union dump --{name} {b[name]:.3f} s  ({b[name] / b['bitfields']:.2f}x the dump)")
        print(
            f"{n} --as saddr=ip,daddr=ip {b['--as ip']:.3f} s  ({b['--as ip'] / b['ipv6']:.2f}x the addresses as ipv6, {b['ipv6']:.3f} s)"
        )
        checks = [
            ("table <= 2x text", t["table"] / t["text"], 2.0),
            ("csv <= 1.3x text", t["csv"] / t["text"], 1.3),
            ("sort text <= 2x text", t["sort text"] / t["text"], 2.0),
            ("sort jsonl <= 2x jsonl", t["sort jsonl"] / t["jsonl"], 2.0),
            ("sort csv <= 2x csv", t["sort csv"] / t["csv"], 2.0),
            ("--percpu sum <= 1.3x", p["sum"] / p["all"], 1.3),
            ("--percpu max <= 1.3x", p["max"] / p["all"], 1.3),
            ("--cpu 0 <= 1.3x", p["cpu0"] / p["all"], 1.3),
            ("bitfields and unions <= 1.3x", b["bitfields"] / b["plain fields"], 1.3),
            ("sort by an array (its sum) <= 2x", b["sort array"] / b["bitfields"], 2.0),
            ("sort by an anonymous member's field <= 2x", b["sort anonymous"] / b["bitfields"], 2.0),
            ("--as ip <= 1.3x", b["--as ip"] / b["ipv6"], 1.3),
        ]
        for what, ratio, limit in checks:
            print(f"{'PASS' if ratio <= limit else 'FAIL'}  {what} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
