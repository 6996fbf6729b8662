#!/usr/bin/env python3
"""How long a scrape of `bpfmap export` takes, and how much memory it holds: a flow map
(hash with BTF, `saddr=ipv4,daddr=ipv4,dport=be16,pad[2]:packets=u64,bytes=u64`)
exported as one counter with three labels (saddr, daddr, dport: every field of the
key), through the HTTP server a Prometheus scrapes (GET /metrics, the whole response
read), for 1,000, 100,000 and 1,000,000 entries; and the same map with a fourth key
field (proto) that the labels leave out, so entries are summed per label set: one entry
per series (proto always 6), and ten (proto 0-9: 1,000,000 entries are 100,000 series).
The exporter is this checkout's code (``python -m bpfmap`` with it on PYTHONPATH), not
an installed bpfmap.  Run as root (not in CI):

    python benchmarks/bench_export.py [--entries 1000,100000,1000000] [--scrapes 10]
        [--cases every,summed,summed10,formats,hist]

``formats``: a 100,000-entry map (`a=u32,b=u32,c=u64,d=hex[16]`, every field a label)
with each display decoder on one label, against the same labels shown plainly;
``hist``: a histogram from a map of in-value slot arrays (`u32:n=u64,slots=u64[27]`,
100,000 entries, every entry's slots summed into one histogram: ``labels: []``) against
a counter of ``n`` on the same map, summed the same way; and 100 histograms (labelled by a
key field) from 100,000 entries.

Targets (issue 25): 100,000 entries in <= 0.3 s per scrape (wall, through HTTP) with the
exporter's CPU <= 0.25 s per scrape; 1,000,000 entries in <= 3 s; the exporter's peak
RSS flat as the map grows from 100,000 to 1,000,000 entries (within 1.25x), and flat
from scrape to scrape.  (Issue 13's: 100,000 under 1 s, 1,000 under 20 ms.)
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from _common import private_bpffs  # noqa: E402

ROOT = os.path.dirname(HERE)
BPFMAP = [sys.executable, "-m", "bpfmap"]  # this checkout's (ENV puts it first on the path)
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))

FLOWS = "saddr=ipv4,daddr=ipv4,dport=be16,pad[2]:packets=u64,bytes=u64"
SUMMED = "saddr=ipv4,daddr=ipv4,dport=be16,proto=u8,pad[1]:packets=u64,bytes=u64"
CASES = {  # name -> (title, layout, entries per series)
    "every": ("every key field", FLOWS, 1),
    "summed": ("summed (proto left out), 1 entry per series", SUMMED, 1),
    "summed10": ("summed (proto left out), 10 entries per series", SUMMED, 10),
}
FLOW_LABELS = "    value: packets\n    labels: [saddr, daddr, dport]\n"


def bpfmap(*args: str, **kw: object) -> None:
    subprocess.run([*BPFMAP, *args], check=True, env=ENV, **kw)  # type: ignore[call-overload]


def make_map(pin: str, n: int, layout: str, per: int = 1) -> None:
    """``n`` flows; with proto in the key, ``per`` flows (proto 0..per-1, or 6) per label set."""
    bpfmap("create", "hash", "--layout", layout, "--max-entries", str(n), "--pin", pin, "-q")

    def proto(i: int) -> str:
        return "" if "proto" not in layout else f",proto={i % per if per > 1 else 6}"

    lines = "".join(
        f"saddr=10.{s >> 16 & 255}.{s >> 8 & 255}.{s & 255},daddr=192.168.0.1,dport={s % 65536}{proto(i)}"
        f"\tpackets={i},bytes={i * 1500}\n"
        for i in range(n)
        for s in (i // per,)
    )
    bpfmap("update", pin, "--from", "-", "-q", input=lines, text=True)


def rss_kib(pid: int, field: str = "VmRSS:") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench(
    pin: str, n: int, scrapes: int, tmp: str, metric: str = FLOW_LABELS, name: str = "flow_packets_total"
) -> dict:
    config = os.path.join(tmp, f"export{n}.yaml")
    with open(config, "w") as f:
        f.write(f"metrics:\n  - name: {name}\n    map: {pin}\n{metric}")
    port = free_port()
    proc = subprocess.Popen([*BPFMAP, "export", config, "--listen", f"127.0.0.1:{port}", "-q"], env=ENV)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=60).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        times, rss, cpu = [], [], []
        size = 0
        for _ in range(scrapes):
            c0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            body = urllib.request.urlopen(url, timeout=120).read()
            times.append(time.perf_counter() - t0)
            cpu.append(cpu_seconds(proc.pid) - c0)
            size = len(body)
            rss.append(rss_kib(proc.pid))
        return {"times": times, "rss": rss, "cpu": cpu, "bytes": size, "peak": rss_kib(proc.pid, "VmHWM:")}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def line(n: int, r: dict, what: str = "entries") -> str:
    med = statistics.median(r["times"])
    return (
        f"{n:>8} {what}: scrape median {med * 1000:8.1f} ms (min {min(r['times']) * 1000:.1f}, "
        f"max {max(r['times']) * 1000:.1f}), exporter CPU median {statistics.median(r['cpu']):.3f} s "
        f"(mean {statistics.mean(r['cpu']):.4f}), "
        f"{r['bytes'] / 1e6:.1f} MB, RSS {r['rss'][0] / 1024:.1f} MiB after the first scrape, "
        f"{r['rss'][-1] / 1024:.1f} MiB after the last, peak {r['peak'] / 1024:.1f} MiB"
    )


def verdict(ok: bool, text: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {text}")


def flows(case: str, sizes: list[int], scrapes: int, tmp: str, fs: str) -> None:
    title, layout, per = CASES[case]
    print(f"== labels: {title}")
    results = {}
    for n in sizes:
        pin = os.path.join(fs, f"flows{n}{case}")
        make_map(pin, n, layout, per)
        results[n] = r = bench(pin, n, scrapes if n < 1000000 else max(3, scrapes // 3), tmp)
        os.unlink(pin)
        print(line(n, r) + (f", {n // per} series" if per > 1 else ""))
    med = {n: statistics.median(r["times"]) for n, r in results.items()}
    cpu = {n: statistics.median(r["cpu"]) for n, r in results.items()}
    # the kernel counts a process's CPU in clock ticks (10 ms): each scrape's figure is a
    # whole number of them, so the mean over the scrapes is the finer reading of the two
    mean_cpu = {n: statistics.mean(r["cpu"]) for n, r in results.items()}
    if case == "summed" and 100000 in results:  # issue 37
        verdict(med[100000] <= 0.15, f"100000 entries summed in <= 150 ms ({med[100000] * 1000:.1f} ms)")
        verdict(
            round(mean_cpu[100000], 4) <= 0.12,
            f"100000 entries summed: exporter CPU <= 0.12 s a scrape (mean {mean_cpu[100000]:.4f} s, "
            f"median {cpu[100000]:.3f} s in clock ticks)",
        )
    if case == "summed10" and 1000000 in results:
        verdict(med[1000000] <= 1.5, f"1000000 entries summed into 100000 series in <= 1.5 s ({med[1000000]:.3f} s)")
        if 100000 in results:
            a, b = results[100000]["peak"], results[1000000]["peak"]
            print(f"      peak RSS {a / 1024:.1f} MiB (10,000 series) -> {b / 1024:.1f} MiB (100,000 series)")
    if case != "every":
        return
    for n, limit in ((100000, 0.3), (1000000, 3.0), (1000, 0.020)):
        if n in results:
            verdict(med[n] <= limit, f"{n} entries in <= {limit * 1000:g} ms ({med[n] * 1000:.1f} ms)")
    if 100000 in results:
        verdict(cpu[100000] <= 0.25, f"100000 entries: exporter CPU <= 0.25 s ({cpu[100000]:.3f} s)")
    if 100000 in results and 1000000 in results:
        a, b = results[100000]["peak"], results[1000000]["peak"]
        verdict(
            b <= a * 1.25, f"peak RSS flat from 100,000 to 1,000,000 entries ({a / 1024:.1f} -> {b / 1024:.1f} MiB)"
        )
    for n, r in results.items():
        third = max(len(r["rss"]) // 3, 1)
        first, last = statistics.median(r["rss"][:third]), statistics.median(r["rss"][-third:])
        verdict(
            last <= first * 1.1,
            f"{n} entries: RSS flat across {len(r['rss'])} scrapes "
            f"(median {first / 1024:.1f} MiB in the first third, {last / 1024:.1f} MiB in the last)",
        )


FORMATS = {  # case -> the as: of the a, b, c, d labels
    "plain": "",
    "ip": "a: ip",
    "ipv4": "a: ipv4",
    "ipv6": "d: ipv6",
    "hex": "a: hex",
    "uid": "b: uid",
    "gid": "b: gid",
    "ifname": "b: ifname",
    "cgroup": "c: cgroup",
    "static_map": "b: {static_map: {0: zero, 1: one}, default: other}",
    "regexp": "a: {regexp: '.*[05]'}",
}


def formats(scrapes: int, tmp: str, fs: str, n: int = 100000) -> None:
    print(f"== display decoders, {n} entries, labels a, b, c, d (every key field)")
    pin = os.path.join(fs, "shown")
    bpfmap(
        "create",
        "hash",
        "--layout",
        "a=u32,b=u32,c=u64,d=hex[16]:packets=u64",
        "--max-entries",
        str(n),
        "--pin",
        pin,
        "-q",
    )
    lines = "".join(f"a={i},b={i % 4},c={1 + i % 3},d={i:032x}\tpackets={i}\n" for i in range(n))
    bpfmap("update", pin, "--from", "-", "-q", input=lines, text=True)
    for case, shown in FORMATS.items():
        metric = "    value: packets\n    labels: [a, b, c, d]\n" + (f"    as: {{{shown}}}\n" if shown else "")
        r = bench(pin, n, scrapes, tmp, metric, "shown_total")
        print(line(n, r, f"entries, {case:>10}"))
    os.unlink(pin)


def hist(scrapes: int, tmp: str, fs: str, n: int = 100000) -> None:
    print(f"== histogram of in-value slot arrays, {n} entries (u32:n=u64,slots=u64[27])")
    pin = os.path.join(fs, "slots")
    bpfmap("create", "hash", "--layout", "u32:n=u64,slots=u64[27]", "--max-entries", str(n), "--pin", pin, "-q")
    lines = "".join(
        f'{{"key": {i}, "value": {{"n": {i}, "slots": [{",".join(str((i + j) % 5) for j in range(27))}]}}}}\n'
        for i in range(n)
    )
    bpfmap("update", pin, "--from", "-", "-q", input=lines, text=True)
    counter = bench(pin, n, scrapes, tmp, "    value: n\n    labels: []\n", "slot_n_total")
    print(line(n, counter, "entries, counter"))
    histogram = bench(pin, n, scrapes, tmp, "    type: histogram\n    slots: slots\n    labels: []\n", "slot_seconds")
    print(line(n, histogram, "entries, histogram"))
    a, b = statistics.median(counter["times"]), statistics.median(histogram["times"])
    verdict(b <= 2 * a, f"histogram within 2x the counter ({b / a:.2f}x)")
    a, b = statistics.median(counter["cpu"]), statistics.median(histogram["cpu"])
    verdict(b <= 2 * a, f"histogram's exporter CPU within 2x the counter's ({b:.3f} s, {a:.3f} s)")
    os.unlink(pin)
    print(f"== histograms of in-value slot arrays by a label, {n} entries (id=u32,grp=u8:slots=u64[27], grp 0-99)")
    bpfmap("create", "hash", "--layout", "id=u32,grp=u8:slots=u64[27]", "--max-entries", str(n), "--pin", pin, "-q")
    lines = "".join(
        f'{{"key": {{"id": {i}, "grp": {i % 100}}}, "value": {{"slots": [{",".join(str((i + j) % 5) for j in range(27))}]}}}}\n'
        for i in range(n)
    )
    bpfmap("update", pin, "--from", "-", "-q", input=lines, text=True)
    metric = "    type: histogram\n    slots: slots\n    labels: [grp]\n"
    print(line(n, bench(pin, n, scrapes, tmp, metric, "slot_seconds"), "entries, 100 histograms"))
    os.unlink(pin)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", default="1000,100000,1000000")
    ap.add_argument("--scrapes", type=int, default=10)
    ap.add_argument("--cases", default="every,summed,summed10,formats,hist")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (maps and a private bpffs)")
    sizes = [int(x) for x in args.entries.split(",")]
    with private_bpffs("bpfmapexport") as (tmp, fs):
        for case in args.cases.split(","):
            if case in CASES:
                flows(case, sizes, args.scrapes, tmp, fs)
            elif case == "formats":
                formats(args.scrapes, tmp, fs)
            elif case == "hist":
                hist(args.scrapes, tmp, fs)
            else:
                sys.exit(f"--cases: no case {case} (every, summed, summed10, formats, hist)")


if __name__ == "__main__":
    main()
