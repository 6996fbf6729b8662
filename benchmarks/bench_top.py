"""One `bpfmap top` refresh (bpfmap.live.top.Top.poll) over MAPS hash maps holding ENTRIES
entries in all, on a private bpffs.  Target: under 1 s for 100 maps and 1,000,000 entries.
Run as root:

    python benchmarks/bench_top.py [--maps 100] [--entries 1000000] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import private_bpffs  # noqa: E402

from bpfmap import Map, MapSpec  # noqa: E402
from bpfmap.live.top import Top  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--maps", type=int, default=100)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    per = a.entries // a.maps
    with private_bpffs("bpfmaptop") as (_tmp, root):
        maps = []
        keys = struct.pack(f"<{per}I", *range(per))
        values = struct.pack(f"<{per}Q", *range(per))
        for i in range(a.maps):
            m = Map.create(MapSpec("hash", 4, 8, per))
            m.update_batch(keys, values, per)
            m.pin(os.path.join(root, f"m{i}"))
            maps.append(m)
        with Top([root]) as t:
            times = []
            for _ in range(a.reps):
                start = time.perf_counter()
                rows = t.poll()
                times.append(time.perf_counter() - start)
            assert len(rows) == a.maps and sum(r["entries"] for r in rows) == per * a.maps
        for m in maps:
            m.close()
    print(
        f"one refresh over {a.maps} maps, {per * a.maps:,} entries: "
        f"min {min(times):.3f} s, median {statistics.median(times):.3f} s"
    )


if __name__ == "__main__":
    main()
