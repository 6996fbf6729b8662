#!/usr/bin/env python3
"""bpfmap against bpftool and C (libbpf) on big maps: dump, bulk load, start-up, memory.

Run as root on a kernel with BPF (not in CI: it takes minutes and measures the machine):

    python benchmarks/bench.py [--reps 5] [--entries 1000000] [--write benchmarks/RESULTS.md]

It mounts a private bpffs in a temp directory, builds a u32 -> u64 hash with ENTRIES
entries and a struct-keyed one with ENTRIES/10, times every command REPS times (median),
prints a table of medians and ratios against the targets, and unmounts.  The C
baseline (benchmarks/baseline.c) is built with gcc when libbpf-dev is installed.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bpfmap import Map  # noqa: E402
from bpfmap import _sys  # noqa: E402

FLOW = "saddr=ipv4,daddr=ipv4,sport=be16,dport=be16,proto=u8:packets=u64,bytes=u64"


_BUILD = (
    """
import os, struct, sys
from bpfmap import Map
from bpfmap.btf import spec_for
from bpfmap.layout import Layout

fs, n = sys.argv[1], int(sys.argv[2])
small_n = n // 10


def fill(m, count, value_size):
    for lo in range(0, count, 100000):
        c = min(100000, count - lo)
        m.update_batch(struct.pack(f"={c}I", *range(lo, lo + c)), struct.pack(f"={c}Q", *range(lo * 3, (lo + c) * 3, 3))
                       if value_size == 8 else bytes(value_size * c), c)


with Map.create("hash", 4, 8, max_entries=n) as m:
    fill(m, n, 8)
    m.pin(os.path.join(fs, "big"))
with Map.create("hash", 4, 8, max_entries=small_n) as m:  # the same type, a tenth of it: RSS must not grow
    fill(m, small_n, 8)
    m.pin(os.path.join(fs, "tenth"))
lay = Layout.parse(%r)
with Map.create("hash", lay.key.size, lay.value.size, max_entries=small_n,
                btf=spec_for(lay.key.type, lay.value.type)) as m:
    keys = b"".join(lay.key.encode({"saddr": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                                    "daddr": "192.168.0.1", "sport": i & 0xFFFF, "dport": 443, "proto": 6})
                    for i in range(small_n))
    values = b"".join(lay.value.encode({"packets": i, "bytes": i * 1500}) for i in range(small_n))
    m.update_batch(keys, values, small_n)
    m.pin(os.path.join(fs, "small"))
"""
    % FLOW
)


def bpfmap_cmd() -> list[str]:
    exe = shutil.which("bpfmap")
    return [exe] if exe else [sys.executable, "-m", "bpfmap"]


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run, output to /dev/null.

    posix_spawn (vfork underneath) rather than fork: a forked child's peak RSS would
    include the pages it shared with this (large) process before exec."""
    exe = shutil.which(cmd[0]) or cmd[0]
    with tempfile.TemporaryFile() as err:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
        ]
        t = time.perf_counter()
        pid = os.posix_spawn(exe, cmd, os.environ, file_actions=actions)
        _pid, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - t
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({code}): {err.read().decode().strip()[:300]}")
    return elapsed, usage.ru_maxrss


def median(cmd: list[str], reps: int, before=None) -> tuple[float, int]:
    times, rss = [], 0
    for _ in range(reps):
        if before:
            before()
        t, r = run(cmd)
        times.append(t)
        rss = max(rss, r)
    return statistics.median(times), rss


def build_baseline(tmp: str) -> str | None:
    gcc = shutil.which("gcc")
    if not gcc or not os.path.exists("/usr/include/bpf/bpf.h"):
        return None
    exe = os.path.join(tmp, "baseline")
    subprocess.run([gcc, "-O2", "-o", exe, os.path.join(HERE, "baseline.c"), "-lbpf"], check=True)
    return exe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument(
        "--bpftool-load-reps", type=int, default=1, help="bpftool batch of 1M updates is slow: how many times to run it"
    )
    ap.add_argument("--write", metavar="FILE", help="also write the results as Markdown")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark mounts a bpffs and creates maps")
    bpftool = shutil.which("bpftool")
    if bpftool is None:
        raise SystemExit("bpftool is not installed (apt-get install bpftool)")

    tmp = tempfile.mkdtemp(prefix="bpfmapbench")
    fs = os.path.join(tmp, "fs")
    os.mkdir(fs)
    _sys.mount_bpffs(fs)
    rows: list[tuple[str, str, float, str]] = []
    notes: list[str] = []
    try:
        baseline = build_baseline(tmp)
        n = args.entries
        small_n = n // 10
        big, tenth, small = (os.path.join(fs, name) for name in ("big", "tenth", "small"))
        # Built in a child process: this one must stay small, or the peak RSS of every
        # command it starts would include the pages it held (see _WRAP).
        subprocess.run([sys.executable, "-c", _BUILD, fs, str(n)], check=True)
        bm = bpfmap_cmd()
        reps = args.reps

        def add(case: str, tool: str, seconds: float, extra: str = "") -> float:
            rows.append((case, tool, seconds, extra))
            print(f"{case:<34} {tool:<26} {seconds:8.3f} s {extra}", flush=True)
            return seconds

        # -- dump ----------------------------------------------------------------------
        t_text, rss_1m = median([*bm, "dump", big, "-l", "u32:u64", "-o", "text"], reps)
        add(f"dump {n} u32->u64, text", "bpfmap -o text", t_text)
        t_jsonl, _ = median([*bm, "dump", big, "-l", "u32:u64", "-o", "jsonl"], reps)
        add(f"dump {n} u32->u64, JSON", "bpfmap -o jsonl", t_jsonl)
        t_c = None
        if baseline:
            t_c, _ = median([baseline, "dump", big], reps)
            add(f"dump {n} u32->u64, text", "C libbpf batch + printf", t_c)
        else:
            notes.append("no C baseline: gcc or libbpf-dev missing")
        bt_reps = max(1, min(reps, 3))
        t_bt, _ = median([bpftool, "map", "dump", "pinned", big], bt_reps)
        add(f"dump {n} u32->u64, text", "bpftool map dump", t_bt)
        t_btj, _ = median([bpftool, "-j", "map", "dump", "pinned", big], bt_reps)
        add(f"dump {n} u32->u64, JSON", "bpftool -j map dump", t_btj)

        _t, rss_100k = median([*bm, "dump", tenth, "-l", "u32:u64", "-o", "text"], reps)
        t_s_text, _ = median([*bm, "dump", small, "-l", FLOW, "-o", "text"], reps)
        add(f"dump {small_n} struct keys, text", "bpfmap -o text", t_s_text)
        t_s_jsonl, _ = median([*bm, "dump", small, "-o", "jsonl"], reps)
        add(f"dump {small_n} struct keys, JSON", "bpfmap (BTF) -o jsonl", t_s_jsonl)
        t_s_bt, _ = median([bpftool, "-j", "map", "dump", "pinned", small], bt_reps)
        add(f"dump {small_n} struct keys, JSON", "bpftool -j (BTF)", t_s_bt)

        # -- bulk load -------------------------------------------------------------------
        load_txt = os.path.join(tmp, "load.txt")
        with open(load_txt, "w") as f:
            for lo in range(0, n, 100000):
                f.write("".join(f"{k}\t{k * 3}\n" for k in range(lo, min(n, lo + 100000))))
        target = os.path.join(fs, "target")
        with Map.create("hash", 4, 8, max_entries=n) as m:
            m.pin(target)

        def clear() -> None:
            with Map.open(target) as m:
                m.clear()

        t_load, _ = median([*bm, "update", target, "--from", load_txt, "-l", "u32:u64"], reps, before=clear)
        add(f"load {n} u32->u64", "bpfmap update --from (text)", t_load)
        t_cload = None
        if baseline:
            t_cload, _ = median([baseline, "load", target, load_txt], reps, before=clear)
            add(f"load {n} u32->u64", "C fscanf + update_batch (text)", t_cload)
        batch_file = os.path.join(tmp, "bpftool.batch")
        with open(batch_file, "w") as f:
            for k in range(n):
                kb = struct.pack("=I", k).hex(" ")
                vb = struct.pack("=Q", k * 3).hex(" ")
                f.write(f"map update pinned {target} key hex {kb} value hex {vb}\n")
        t_btload, _ = median([bpftool, "batch", "file", batch_file], args.bpftool_load_reps, before=clear)
        add(f"load {n} u32->u64", "bpftool batch file", t_btload)

        # -- start-up --------------------------------------------------------------------
        su_reps = max(reps, 15)
        t_lookup, _ = median([*bm, "lookup", big, "5", "-l", "u32:u64"], su_reps)
        add("one lookup", "bpfmap lookup", t_lookup)
        t_typer, _ = median([sys.executable, "-c", "import typer"], su_reps)
        add("one lookup", "python -c 'import typer'", t_typer)
        t_btlookup, _ = median([bpftool, "map", "lookup", "pinned", big, "key", "5", "0", "0", "0"], su_reps)
        add("one lookup", "bpftool map lookup", t_btlookup)

        # -- memory ----------------------------------------------------------------------
        rows.append((f"peak RSS, dump {small_n} u32->u64", "bpfmap -o text", rss_100k / 1024, "MiB"))
        rows.append((f"peak RSS, dump {n} u32->u64", "bpfmap -o text", rss_1m / 1024, "MiB"))
        print(f"peak RSS: {rss_100k / 1024:.1f} MiB for {small_n} entries, {rss_1m / 1024:.1f} MiB for {n}")

        checks = []
        if t_c:
            checks.append((f"dump text <= 1.5x C ({t_text / t_c:.2f}x)", t_text <= 1.5 * t_c))
            checks.append((f"dump JSONL <= 2x C ({t_jsonl / t_c:.2f}x)", t_jsonl <= 2 * t_c))
        checks.append(
            (
                f"bpftool dump >= 4x slower than ours ({t_bt / t_text:.1f}x text, {t_btj / t_jsonl:.1f}x JSON)",
                t_bt >= 4 * t_text and t_btj >= 4 * t_jsonl,
            )
        )
        if t_cload:
            checks.append((f"bulk load <= 2x C batch update ({t_load / t_cload:.2f}x)", t_load <= 2 * t_cload))
        checks.append((f"lookup <= 1.3x import typer ({t_lookup / t_typer:.2f}x)", t_lookup <= 1.3 * t_typer))
        checks.append((f"dump peak RSS <= 80 MiB ({rss_1m / 1024:.1f} MiB)", rss_1m / 1024 <= 80))
        checks.append(
            (
                f"peak RSS flat from {small_n} to {n} entries ({rss_100k / 1024:.1f} -> {rss_1m / 1024:.1f} MiB)",
                rss_1m <= rss_100k * 1.25 + 4096,
            )
        )
        print()
        for text, ok in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {text}")
        if args.write:
            write_markdown(args.write, rows, checks, notes, n, reps)
        return 0 if all(ok for _t, ok in checks) else 1
    finally:
        ctypes.CDLL(None).umount2(fs.encode(), 2)
        shutil.rmtree(tmp, ignore_errors=True)


def write_markdown(path: str, rows, checks, notes, n: int, reps: int) -> None:
    import typer

    uname = platform.uname()
    cpus = os.cpu_count()
    bt = subprocess.run(["bpftool", "version"], capture_output=True, text=True).stdout.splitlines()[0]
    lines = [
        "# Benchmark results",
        "",
        f"Run on {datetime.date.today().isoformat()}, Linux {uname.release} {uname.machine}, {cpus} CPUs, "
        f"Python {platform.python_version()}, typer {typer.__version__}, {bt}.",
        "",
        f"Reproduce (as root): `python benchmarks/bench.py --reps {reps} --entries {n} --write benchmarks/RESULTS.md`",
        "",
        "Medians of wall time; output to /dev/null. bpftool's batch load ran once (it takes minutes).",
        "",
        "| case | tool | median | vs bpfmap |",
        "|---|---|---:|---:|",
    ]
    reference: dict[str, float] = {}
    for case, tool, value, extra in rows:
        if tool.startswith("bpfmap") and case not in reference:
            reference[case] = value
    for case, tool, value, extra in rows:
        unit = "MiB" if extra == "MiB" else "s"
        ratio = f"{value / reference[case]:.2f}x" if case in reference and unit == "s" else ""
        lines.append(f"| {case} | {tool} | {value:.3f} {unit} | {ratio} |")
    lines += ["", "## Targets", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks]
    if notes:
        lines += ["", *[f"Note: {x}" for x in notes]]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
