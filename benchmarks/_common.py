"""What the benchmark scripts share: their options, a private bpffs for their maps, the
times of one run of a child command, and rounds of commands run in alternation."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bpfmap import _sys  # noqa: E402

# this checkout's bpfmap (not an installed one), its bytecode written once as a pip install
# leaves it (this machine sets PYTHONDONTWRITEBYTECODE, which would make every start compile)
BPFMAP = [sys.executable, "-m", "bpfmap"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": REPO}
T = TypeVar("T")


def interpreter_note() -> str:
    """A line naming the interpreter the commands run with and what its ``site`` imports
    before any command: a base interpreter whose site-packages holds ``.pth`` files that
    import modules (this machine's sandbox imports certifi, and with it re, typing and
    enum: ~37 ms) slows ``python -c pass`` and prepays the standard library bpfmap
    imports, so ratios to it, and to bpftool, are not what a user's virtual environment
    gives.  Run the benchmarks with a virtual environment's python, made as the README
    installs bpfmap (``python3 -m venv V && V/bin/pip install typer rich``)."""
    code = "import sys; print(len(sys.modules), *[m for m in ('re', 'typing', 'enum', 'certifi') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    note = f"python: {sys.executable} (Python {sys.version.split()[0]}; {out[0]} modules at start-up)"
    if len(out) > 1:
        note += (
            f"\nWARNING: its site imports {', '.join(out[1:])} before any command (.pth files): start-up"
            " is slower and bpfmap's imports are partly prepaid; run this with a virtual environment's"
            " python (python3 -m venv V && V/bin/pip install typer rich)"
        )
    return note


@contextlib.contextmanager
def private_bpffs(prefix: str) -> Iterator[tuple[str, str]]:
    """(a temporary directory, a bpffs mounted at DIR/fs), unmounted and removed after."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    fs = os.path.join(tmp, "fs")
    os.mkdir(fs)
    _sys.mount_bpffs(fs)
    try:
        yield tmp, fs
    finally:
        subprocess.run(["umount", fs])
        shutil.rmtree(tmp, ignore_errors=True)


def child_usage(cmd: list[str], **run: Any) -> tuple[float, float, float]:
    """(wall, user, system) seconds of one run of ``cmd`` (``run``: subprocess.run's
    stdout, env, cwd; the output is discarded unless stdout says otherwise; by default in
    the checkout with ENV, so that ``BPFMAP`` is this checkout's); exits with a message
    when it fails."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, **({"stdout": subprocess.DEVNULL, "env": ENV, "cwd": REPO} | run), check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}")
    return wall, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime


def child_times(cmd: list[str], **run: Any) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``, as child_usage; CPU is the child's user +
    system time."""
    wall, user, system = child_usage(cmd, **run)
    return wall, user + system


def alternating(
    cmds: dict[str, list[str]], rounds: int, run: Callable[[list[str]], T], warm: bool = False
) -> dict[str, list[T]]:
    """name -> what ``run(cmd)`` returned in each round; a round runs every command in turn,
    so that a busy machine slows them alike.  ``warm``: each runs once before, not counted
    (caches filled, .pyc written)."""
    if warm:
        for cmd in cmds.values():
            run(cmd)
    times: dict[str, list[T]] = {name: [] for name in cmds}
    for _ in range(rounds):
        for name, cmd in cmds.items():
            times[name].append(run(cmd))
    return times


def options(root: bool = True, **numbers: int) -> argparse.Namespace:
    """A benchmark's options, ``--NAME N`` for each of ``numbers`` (its default; ``_`` in
    a name is ``-`` on the command line); with ``root``, exits unless run as root."""
    ap = argparse.ArgumentParser()
    for name, default in numbers.items():
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    args = ap.parse_args()
    if root and os.geteuid() != 0:
        sys.exit("run as root")
    return args
