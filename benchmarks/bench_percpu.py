"""``dump --percpu sum|max|min|avg`` and ``--cpu 0`` against the plain per-CPU dump (every
CPU's value) of one percpu_hash map, u32 -> u64, ENTRIES entries, written as text to a
pipe.  Each command is a child process, run in alternation with the others so a busy
machine slows them alike; prints the median wall, user and system time over the rounds
and each one's ratio to the plain dump (CPU time: the steadier figure on a shared
machine).  Target: every reduction at most 1.1x the plain dump, with no more system
time.  Run as root:

    python benchmarks/bench_percpu.py [--entries 100000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import alternating, child_usage, private_bpffs  # noqa: E402

from bpfmap import Map, MapSpec  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": REPO}


def make_map(pin: str, entries: int) -> None:
    with Map.create(MapSpec("percpu_hash", 4, 8, entries)) as m:
        stride = m.shape.entry
        keys = b"".join(k.to_bytes(4, "little") for k in range(entries))
        values = b"".join(
            b"".join((k * (c + 1)).to_bytes(8, "little").ljust(stride // m.ncpus, b"\0") for c in range(m.ncpus))
            for k in range(entries)
        )
        m.update_batch(keys, values, entries)
        m.pin(pin)


def run_once(cmd: list[str]) -> tuple[float, float, float]:
    """(wall, user, system) seconds of one run of ``cmd``, its stdout a pipe read to the end."""
    return child_usage(cmd, stdout=subprocess.PIPE, env=ENV, cwd=REPO)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    with private_bpffs("bench-percpu-") as (_tmp, fs):
        pin = os.path.join(fs, "pc")
        make_map(pin, args.entries)
        dump = [sys.executable, "-m", "bpfmap", "dump", pin, "-l", "u32:u64", "-o", "text"]
        cmds = {
            "plain": dump,
            "--percpu sum": [*dump, "--percpu", "sum"],
            "--percpu max": [*dump, "--percpu", "max"],
            "--percpu min": [*dump, "--percpu", "min"],
            "--percpu avg": [*dump, "--percpu", "avg"],
            "--cpu 0": [*dump, "--cpu", "0"],
        }
        times = alternating(cmds, args.rounds, run_once, warm=True)
    med = {name: [statistics.median(x[i] for x in runs) for i in range(3)] for name, runs in times.items()}
    print(
        f"{args.entries:,} entries, {args.rounds} alternating rounds, medians; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"{'command':<14} {'wall ms':>8} {'user ms':>8} {'sys ms':>7} {'CPU ms':>7} {'x plain':>8}")
    for name, (wall, user, sys_) in med.items():
        cpu = statistics.median(u + s for _w, u, s in times[name])
        plain_cpu = statistics.median(u + s for _w, u, s in times["plain"])
        print(
            f"{name:<14} {wall * 1e3:8.0f} {user * 1e3:8.0f} {sys_ * 1e3:7.0f} {cpu * 1e3:7.0f} {cpu / plain_cpu:8.2f}"
        )


if __name__ == "__main__":
    main()
