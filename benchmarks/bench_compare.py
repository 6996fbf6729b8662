#!/usr/bin/env python3
"""This checkout against another revision of bpfmap, command by command: does a change make
anything slower?  Run as root (not in CI):

    python benchmarks/bench_compare.py REV [--entries 1000000] [--rounds 7]

REV (a commit, a branch) is checked out into a temporary git worktree; both run as
``python -m bpfmap`` in their own checkout, with it on PYTHONPATH, alternately (a busy
machine slows them alike), on the same maps in a private bpffs: dumps of a u32 -> u64
hash (text, JSON Lines), of a struct-keyed hash of ENTRIES/10 (text, JSON Lines), a per-CPU
hash summed, a bulk load, a count and a one-key lookup.  Prints the medians of CPU (user +
system) and wall time and new/old; a row over 1.05x in CPU is marked SLOWER.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile

from _common import ENV, REPO, alternating, child_usage, private_bpffs

FLOW = "saddr=ipv4,daddr=ipv4,sport=be16,dport=be16,proto=u8:packets=u64,bytes=u64,comm=char[16]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    with tempfile.TemporaryDirectory(prefix="bpfmap-old-") as old, private_bpffs("bpfmap-compare-") as (tmp, fs):
        subprocess.run(["git", "-C", REPO, "worktree", "add", "-q", "--detach", old, args.rev], check=True)
        try:
            compare(old, fs, tmp, args.entries, args.rounds)
        finally:
            subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", old], check=False)


def compare(old: str, fs: str, tmp: str, entries: int, rounds: int) -> None:
    def cli(*a: str, input: str | None = None) -> None:
        subprocess.run([sys.executable, "-m", "bpfmap", *a], input=input, text=True, check=True, env=ENV, cwd=REPO)

    small = max(entries // 10, 1)
    plain, flows, percpu = (os.path.join(fs, n) for n in ("plain", "flows", "percpu"))
    load = os.path.join(tmp, "load.txt")
    with open(load, "w") as f:
        f.writelines(f"{i}\t{i * 7}\n" for i in range(entries))
    cli("create", "hash", "--layout", "u32:u64", "--max-entries", str(entries), "--pin", plain, "-q")
    cli("update", plain, "--from", load, "-q")
    cli("create", "hash", "--layout", FLOW, "--max-entries", str(small), "--pin", flows, "-q")
    rng = random.Random(1)
    rows = (
        f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255},10.0.0.1,{rng.randrange(65536)},443,6\t"
        f"{rng.randrange(10**6)},{rng.randrange(10**9)},proc{i % 97}\n"
        for i in range(small)
    )
    cli("update", flows, "--from", "-", "-q", input="".join(rows))
    cli("create", "percpu_hash", "--layout", "u32:u64", "--max-entries", str(small), "--pin", percpu, "-q")
    cli("update", percpu, "--from", "-", "-q", input="".join(f"{i}\t{i}\n" for i in range(small)))
    cases = {
        f"dump {entries} u32:u64 -o text": ["dump", plain, "-o", "text"],
        f"dump {entries} u32:u64 -o jsonl": ["dump", plain, "-o", "jsonl"],
        f"dump {small} flows -o text": ["dump", flows, "-o", "text"],
        f"dump {small} flows -o jsonl": ["dump", flows, "-o", "jsonl"],
        f"dump {small} percpu --percpu sum": ["dump", percpu, "--percpu", "sum"],
        f"update --from {entries} lines": ["update", plain, "--from", load, "-q"],
        f"count {entries}": ["count", plain],
        "lookup one key": ["lookup", plain, "5"],
    }
    for name, argv in cases.items():
        # the same command line, run in each checkout with it on PYTHONPATH (``-m`` puts the
        # working directory first on sys.path: run from one checkout, both sides would be it)
        cmds = {side: ["env", "-C", where, f"PYTHONPATH={where}", sys.executable, "-m", "bpfmap", *argv]
                for side, where in (("old", old), ("new", REPO))}  # fmt: skip
        times = alternating(cmds, rounds, lambda cmd: child_usage(cmd), warm=True)
        cpu = {s: statistics.median(u + y for _w, u, y in t) for s, t in times.items()}
        wall = {s: statistics.median(w for w, _u, _y in t) for s, t in times.items()}
        ratio = cpu["new"] / cpu["old"]
        print(
            f"{name:<36} CPU old {cpu['old']:.3f} s new {cpu['new']:.3f} s ({ratio:.2f}x)  "
            f"wall old {wall['old']:.3f} new {wall['new']:.3f} ({wall['new'] / wall['old']:.2f}x)"
            + ("  SLOWER" if ratio > 1.05 else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
