#!/usr/bin/env python3
"""Many lookups from a script: `bpfmap batch` against `bpftool batch file`, each doing the
same N lookups of one key of a pinned hash (u32 -> u64), wall time of the whole command,
interleaved runs.  Run as root (not in CI):

    python benchmarks/bench_batch.py [--lookups 10000] [--reps 5]

Target (issue 14): bpfmap within 5x of bpftool.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys

from _common import child_times, options, private_bpffs


def main() -> None:
    args = options(lookups=10000, reps=5)
    bpftool = shutil.which("bpftool")
    if bpftool is None:
        sys.exit("needs bpftool")
    with private_bpffs("bpfmapbatch") as (tmp, fs):
        pin = os.path.join(fs, "counts")
        subprocess.run(["bpfmap", "create", "hash", "--layout", "u32:u64", "--pin", pin, "-q"], check=True)
        subprocess.run(["bpfmap", "update", pin, "1", "42"], check=True)
        ours = os.path.join(tmp, "ours.txt")
        theirs = os.path.join(tmp, "theirs.txt")
        with open(ours, "w") as f:
            f.write(f"lookup {pin} 1 --layout u32:u64\n" * args.lookups)
        with open(theirs, "w") as f:
            f.write(f"map lookup pinned {pin} key 1 0 0 0\n" * args.lookups)
        a, b = [], []
        for _ in range(args.reps):
            a.append(child_times(["bpfmap", "batch", ours])[0])
            b.append(child_times([bpftool, "batch", "file", theirs])[0])
        ma, mb = statistics.median(a), statistics.median(b)
        print(
            f"{args.lookups} lookups: bpfmap batch {ma:.3f} s (min {min(a):.3f}), bpftool batch {mb:.3f} s (min {min(b):.3f})"
        )
        print(f"{'PASS' if ma <= 5 * mb else 'FAIL'}  bpfmap batch within 5x of bpftool batch ({ma / mb:.2f}x)")


if __name__ == "__main__":
    main()
