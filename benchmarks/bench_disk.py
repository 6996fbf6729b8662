"""Maps on disk: save, read and diff of N entries (default 1,000,000 sequential u32 keys
and u64 values) against ``dump -o jsonl`` of the same map; and the file's size against
the raw key and value bytes.  Each command runs as a child (start-up included); the
best of --runs.

    python benchmarks/bench_disk.py [--entries N] [--runs R]
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys

from _common import child_times, options, private_bpffs

from bpfmap import Map

BPFMAP = [sys.executable, "-m", "bpfmap"]


def best(cmd: list[str], runs: int) -> tuple[float, float]:
    return min((child_times(cmd) for _ in range(runs)), key=lambda t: t[0])


def main() -> None:
    args = options(entries=1_000_000, runs=1)
    n = args.entries
    env_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join([env_root, os.environ.get("PYTHONPATH", "")])
    with private_bpffs("bench-disk-") as (tmp, fs):
        pin, file = os.path.join(fs, "m"), os.path.join(tmp, "m.bpfmap")
        subprocess.run([*BPFMAP, "create", "hash", "-l", "u32:u64", "--max-entries", str(n), "--pin", pin, "-q"])
        with Map.open(pin) as m:
            step = 65536
            for at in range(0, n, step):
                c = min(step, n - at)
                keys = struct.pack(f"<{c}I", *range(at, at + c))
                m.update_batch(keys, struct.pack(f"<{c}Q", *(k * 3 for k in range(at, at + c))), c)
        rows = []
        dump = best([*BPFMAP, "dump", pin, "-o", "jsonl"], args.runs)
        rows.append(("dump -o jsonl (live map)", dump))
        rows.append(("save", best([*BPFMAP, "save", pin, file, "-q"], args.runs)))
        rows.append(("dump -o jsonl (saved file)", best([*BPFMAP, "dump", file, "-o", "jsonl"], args.runs)))
        rows.append(("count (saved file)", best([*BPFMAP, "count", file], args.runs)))
        diff = [*BPFMAP, "diff", file, pin, "-q"]
        rows.append(("diff file vs live map (equal)", best(diff, args.runs)))
        size, raw = os.path.getsize(file), n * 12
        print(f"{n:,} entries of u32:u64 (raw key and value bytes: {raw:,})")
        for name, (wall, cpu) in rows:
            print(f"  {name:32} {wall:6.2f} s wall {cpu:6.2f} s CPU  ({wall / dump[0]:.2f}x dump -o jsonl)")
        print(f"  file size {size:,} bytes = {size / raw:.2f} of the raw bytes")


if __name__ == "__main__":
    main()
