#!/usr/bin/env python3
"""Dumps of a map whose value nests structs and arrays, made from a clang-built object
(its BTF as the compiler wrote it), against bpftool: 100,000 entries, text and JSON.
Run as root, with clang and bpftool (not in CI):

    python benchmarks/bench_nested.py [--entries 100000] [--reps 5]

Issue 14 asks for bpfmap at least 3x faster than bpftool on such a map.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bpfmap import _sys  # noqa: E402

SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct addr { __u32 ip; __u16 port; __u16 pad; };
struct stats { __u64 packets; __u64 bytes; __u32 hist[8]; };
struct flow { struct addr src; struct addr dst; struct stats st; char comm[16]; };

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 131072);
    __type(key, __u32);
    __type(value, struct flow);
} flows SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
"""


def cpu(cmd: list[str]) -> float:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    clang, bpftool = shutil.which("clang"), shutil.which("bpftool")
    if not clang or not bpftool:
        sys.exit("needs clang and bpftool")
    tmp = tempfile.mkdtemp(prefix="bpfmapnested")
    fs = os.path.join(tmp, "fs")
    os.mkdir(fs)
    _sys.mount_bpffs(fs)
    try:
        src, obj = os.path.join(tmp, "nested.c"), os.path.join(tmp, "nested.o")
        with open(src, "w") as f:
            f.write(SOURCE)
        arch = f"-I/usr/include/{platform.machine()}-linux-gnu"
        subprocess.run([clang, "-O2", "-g", "-target", "bpf", arch, "-c", src, "-o", obj], check=True)
        subprocess.run(["bpfmap", "create", "--from-object", obj, "--pin-dir", fs, "-q"], check=True)
        pin = os.path.join(fs, "flows")
        rows = []
        for i in range(args.entries):
            value = {
                "src": {"ip": i, "port": i % 65536, "pad": 0},
                "dst": {"ip": 7, "port": 443, "pad": 0},
                "st": {"packets": i, "bytes": i * 1500, "hist": [i % 7, 1, 2, 3, 4, 5, 6, 7]},
                "comm": f"task{i % 100}",
            }
            rows.append(json.dumps({"key": i, "value": value}))
        subprocess.run(
            ["bpfmap", "update", pin, "--from", "-", "-q"], input="\n".join(rows) + "\n", text=True, check=True
        )
        cases = {
            "bpfmap dump -o text": ["bpfmap", "dump", pin, "-o", "text"],
            "bpfmap dump -o jsonl": ["bpfmap", "dump", pin, "-o", "jsonl"],
            "bpftool map dump": [bpftool, "map", "dump", "pinned", pin],
            "bpftool -j map dump": [bpftool, "-j", "map", "dump", "pinned", pin],
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.reps):
            for name, cmd in cases.items():
                times[name].append(cpu(cmd))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.entries} entries of struct flow (nested structs, an array, a string), CPU seconds:")
        for name, v in times.items():
            print(f"  {name:22s} median {med[name]:.3f} (min {min(v):.3f})")
        for ours, theirs in (
            ("bpfmap dump -o text", "bpftool map dump"),
            ("bpfmap dump -o jsonl", "bpftool -j map dump"),
        ):
            ratio = med[theirs] / med[ours]
            print(f"{'PASS' if ratio >= 3 else 'FAIL'}  {ours} >= 3x faster than {theirs} ({ratio:.2f}x)")
    finally:
        subprocess.run(["umount", fs])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
