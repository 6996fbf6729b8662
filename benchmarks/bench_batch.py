#!/usr/bin/env python3
"""Many lookups from a script: `bpfmap batch` against `bpftool batch file`, each doing the
same N lookups of one key of a pinned hash (u32 -> u64), wall and CPU time (user +
system) of the whole command, interleaved runs, medians.  Run as root (not in CI):

    python benchmarks/bench_batch.py [--lookups 10000] [--reps 5]

Targets: bpfmap within 5x of bpftool (issue 14), within 2x (issue 37).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys

from _common import BPFMAP, child_times, options, private_bpffs


def main() -> None:
    args = options(lookups=10000, reps=5)
    bpftool = shutil.which("bpftool")
    if bpftool is None:
        sys.exit("needs bpftool")
    with private_bpffs("bpfmapbatch") as (tmp, fs):
        pin = os.path.join(fs, "counts")
        subprocess.run([*BPFMAP, "create", "hash", "--layout", "u32:u64", "--pin", pin, "-q"], check=True)
        subprocess.run([*BPFMAP, "update", pin, "1", "42"], check=True)
        ours = os.path.join(tmp, "ours.txt")
        theirs = os.path.join(tmp, "theirs.txt")
        with open(ours, "w") as f:
            f.write(f"lookup {pin} 1 --layout u32:u64\n" * args.lookups)
        with open(theirs, "w") as f:
            f.write(f"map lookup pinned {pin} key 1 0 0 0\n" * args.lookups)
        a, b = [], []
        for _ in range(args.reps):
            a.append(child_times([*BPFMAP, "batch", ours]))
            b.append(child_times([bpftool, "batch", "file", theirs]))
        for i, what in ((0, "wall"), (1, "CPU")):
            ma, mb = statistics.median(t[i] for t in a), statistics.median(t[i] for t in b)
            print(
                f"{args.lookups} lookups, {what}: bpfmap batch {ma:.3f} s (min {min(t[i] for t in a):.3f}), "
                f"bpftool batch {mb:.3f} s (min {min(t[i] for t in b):.3f}): {ma / mb:.2f}x"
            )
            print(f"{'PASS' if ma <= 2 * mb else 'FAIL'}  bpfmap batch within 2x of bpftool batch ({what})")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
