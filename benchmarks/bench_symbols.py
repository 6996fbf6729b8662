"""Symbolizing stack frames: 100,000 kernel addresses (through /proc/kallsyms) and
100,000 user addresses of this process (through its maps and its files' ELF symbols),
with the tables read once (their load timed apart).  Target: well under a second for
100,000 frames.  Run as root (kallsyms shows addresses to root only):

    python benchmarks/bench_symbols.py [--frames 100000]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bpfmap.host import symbols  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100_000)
    n = ap.parse_args().frames
    rng = random.Random(1)

    t = time.perf_counter()
    ks = symbols.kernel()
    load_k = time.perf_counter() - t
    kaddrs = [rng.choice(ks.addrs) + rng.randrange(64) for _ in range(n)]
    t = time.perf_counter()
    kf = symbols.frames(kaddrs)
    kernel_s = time.perf_counter() - t
    assert all(f["symbol"] != symbols.UNKNOWN for f in kf)

    libc = ctypes.CDLL(None)
    funcs = [ctypes.cast(getattr(libc, name), ctypes.c_void_p).value for name in ("getpid", "read", "write", "malloc")]
    uaddrs = [rng.choice(funcs) + rng.randrange(8) for _ in range(n)]
    t = time.perf_counter()
    symbols.frames(uaddrs[:1], os.getpid())
    load_u = time.perf_counter() - t
    t = time.perf_counter()
    uf = symbols.frames(uaddrs, os.getpid())
    user_s = time.perf_counter() - t
    assert all(f["symbol"] != symbols.UNKNOWN for f in uf)

    print(f"kallsyms loaded in {load_k:.3f} s ({len(ks.addrs):,} text symbols)")
    print(f"{n:,} kernel frames symbolized in {kernel_s:.3f} s")
    print(f"this process's maps and libc's symbols loaded in {load_u:.3f} s")
    print(f"{n:,} user frames symbolized in {user_s:.3f} s")


if __name__ == "__main__":
    main()
