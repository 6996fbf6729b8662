"""`bpfmap show DIR` over MAPS maps pinned in one directory of a private bpffs: the
command's wall and CPU time (a child process, as a user runs it; on a busy machine the
CPU time is the steadier figure) and, in this process, its bpf(2) calls and the times
each of the directory's pins is opened.  Target: 1,000 maps under
1 s, and time and calls linear in the maps (10,000 maps: about 10x 1,000's).
Run as root:

    python benchmarks/bench_show.py [--maps 1000 10000] [--reps 3]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import io
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import child_times, private_bpffs  # noqa: E402

from bpfmap import Map, MapSpec  # noqa: E402
from bpfmap._sys import syscall  # noqa: E402
from bpfmap._sys.attrs import Cmd  # noqa: E402


def make_maps(directory: str, n: int) -> None:
    os.makedirs(directory)
    for i in range(n):
        with Map.create(MapSpec("hash", 4, 8, 16)) as m:
            m.update(i.to_bytes(4, "little"), i.to_bytes(8, "little"))
            m.pin(os.path.join(directory, f"m{i}"))


def calls_in_process(directory: str) -> tuple[int, int]:
    """(bpf(2) calls, the most times one pin under ``directory`` was opened) of one
    `show DIR -o jsonl` run in this process, the one syscall function wrapped."""
    from bpfmap.cli import main

    calls, opens = [0], collections.Counter()
    real = syscall.bpf

    def counting(cmd, attr):
        calls[0] += 1
        if cmd == Cmd.OBJ_GET:
            path = os.fsdecode(ctypes.string_at(attr.pathname))
            if path.startswith(directory + os.sep):
                opens[path] += 1
        return real(cmd, attr)

    syscall.bpf = counting
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["show", directory, "-o", "jsonl"]) == 0
    finally:
        syscall.bpf = real
    return calls[0], max(opens.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--maps", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    with private_bpffs("bpfmapshow") as (_tmp, root):
        for n in a.maps:
            d = os.path.join(root, f"d{n}")
            make_maps(d, n)
            runs = [child_times([sys.executable, "-m", "bpfmap", "show", d]) for _ in range(a.reps)]
            wall, cpu = (statistics.median(r[i] for r in runs) for i in (0, 1))
            calls, most = calls_in_process(d)
            print(
                f"show DIR, {n:,} maps: median {wall:.3f} s wall, {cpu:.3f} s CPU, "
                f"{calls:,} bpf() calls ({calls / n:.1f} a map), each pin opened at most {most}x"
            )
            for entry in os.scandir(d):
                os.unlink(entry.path)
            os.rmdir(d)


if __name__ == "__main__":
    main()
