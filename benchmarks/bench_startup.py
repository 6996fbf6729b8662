"""One bpfmap command against the start-up of Python itself: the verbs a script calls once
per entry (lookup, update, delete, push, pop, count), each a child process writing to a
pipe, run in alternation with ``python -c pass`` (and bpftool's lookup, for scale) so a
busy machine slows them alike.  Prints each command's median wall and CPU (user + system)
time over the rounds and its ratio to ``python -c pass``; on a shared machine the CPU
ratio is the steadier figure.  Target: every verb at most 2x ``python -c pass`` of a
virtual environment (issue 37).  The command is the console script's (``from bpfmap.cli
import run``) over this checkout.  Run as root, with a virtual environment's python (see
_common.interpreter_note: a base interpreter whose site imports modules makes the ratio
meaningless):

    V/bin/python benchmarks/bench_startup.py [--rounds 30] [--python-flag -S]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import alternating, child_times, interpreter_note, private_bpffs  # noqa: E402

from bpfmap import Map, MapSpec  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# as an installed package runs: from compiled .pyc files (a child compiles every module
# each time under PYTHONDONTWRITEBYTECODE, which would be most of what is measured)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": REPO}
SCRIPT = "import sys; from bpfmap.cli import run; sys.exit(run())"  # what the console script runs


def make_maps(fs: str) -> dict[str, str]:
    """A hash map u32 -> u64 with key 5, a queue of u64 with one element, pinned in ``fs``."""
    pins = {"hash": os.path.join(fs, "h"), "queue": os.path.join(fs, "q")}
    with Map.create(MapSpec("hash", 4, 8, 64)) as m:
        m.update((5).to_bytes(4, "little"), (7).to_bytes(8, "little"))
        m.pin(pins["hash"])
    with Map.create(MapSpec("queue", 0, 8, 64)) as m:
        m.push((1).to_bytes(8, "little"))
        m.pin(pins["queue"])
    return pins


def commands(pins: dict[str, str], flags: list[str]) -> dict[str, list[str]]:
    """name -> argv; one round runs them in this order, so the map ends each round as it began."""
    py = [sys.executable, *flags]
    bpfmap = [*py, "-c", SCRIPT]
    h, q = pins["hash"], pins["queue"]
    cmds = {
        "python -c pass": [*py, "-c", "pass"],
        "lookup": [*bpfmap, "lookup", h, "5", "--layout", "u32:u64"],
        "update": [*bpfmap, "update", h, "6", "8", "--layout", "u32:u64"],
        "delete": [*bpfmap, "delete", h, "6", "--layout", "u32:u64"],
        "push": [*bpfmap, "push", q, "2", "--layout", "u64"],
        "pop": [*bpfmap, "pop", q, "--layout", "u64"],
        "count": [*bpfmap, "count", h],
    }
    if shutil.which("bpftool"):
        cmds["bpftool lookup"] = ["bpftool", "map", "lookup", "pinned", h, "key", "5", "0", "0", "0"]
    return cmds


def run_once(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``, its stdout a pipe read to the end."""
    return child_times(cmd, stdout=subprocess.PIPE, env=ENV, cwd=REPO)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--python-flag", action="append", default=[], help="e.g. -S (no site: no .pth imports)")
    args = ap.parse_args()
    with private_bpffs("bench-startup-") as (_tmp, fs):
        cmds = commands(make_maps(fs), args.python_flag)
        times = alternating(cmds, args.rounds, run_once, warm=True)
    load = os.getloadavg()[0]
    base_wall = statistics.median(w for w, _ in times["python -c pass"])
    base_cpu = statistics.median(c for _, c in times["python -c pass"])
    print(interpreter_note())
    print(f"{args.rounds} alternating rounds, medians; load average {load:.2f} on {os.cpu_count()} CPUs")
    print(f"{'command':<16} {'wall ms':>8} {'x pass':>7} {'CPU ms':>8} {'x pass':>7}")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:<16} {wall * 1e3:8.1f} {wall / base_wall:7.2f} {cpu * 1e3:8.1f} {cpu / base_cpu:7.2f}")


if __name__ == "__main__":
    main()
