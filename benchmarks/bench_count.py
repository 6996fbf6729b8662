"""Counting a map's entries as show and list do (bpfmap.core.owners.count: batch lookups):
a 1,000,000-entry u32 -> u64 hash.  Target: under 0.5 s.  Run as root:

    python benchmarks/bench_count.py [--entries 1000000] [--reps 5]
"""

from __future__ import annotations

import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import options  # noqa: E402

from bpfmap import Map, MapSpec  # noqa: E402
from bpfmap.core.owners import count  # noqa: E402


def main() -> None:
    a = options(entries=1_000_000, reps=5)
    n = a.entries
    with Map.create(MapSpec("hash", 4, 8, n)) as m:
        keys = struct.pack(f"<{n}I", *range(n))
        values = struct.pack(f"<{n}Q", *range(n))
        step = 100_000
        for i in range(0, n, step):
            k = min(step, n - i)
            m.update_batch(keys[4 * i : 4 * (i + k)], values[8 * i : 8 * (i + k)], k)
        times = []
        for _ in range(a.reps):
            t = time.perf_counter()
            got, exact = count(m)
            times.append(time.perf_counter() - t)
            assert (got, exact) == (n, True), (got, exact)
    print(f"{n:,} entries counted: min {min(times):.3f} s, median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
