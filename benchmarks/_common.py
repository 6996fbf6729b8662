"""What the benchmark scripts share: a private bpffs for their maps, and the times of one
run of a child command."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bpfmap import _sys  # noqa: E402

# this checkout's bpfmap (not an installed one), its bytecode written once as a pip install
# leaves it (this machine sets PYTHONDONTWRITEBYTECODE, which would make every start compile)
BPFMAP = [sys.executable, "-m", "bpfmap"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": REPO}


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


def child_times(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``, its output discarded; CPU is the child's
    user + system time.  Runs in the checkout with ENV: ``BPFMAP`` is this checkout's."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=ENV, cwd=REPO)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
