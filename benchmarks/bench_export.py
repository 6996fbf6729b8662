#!/usr/bin/env python3
"""How long a scrape of `bpfmap export` takes, and how much memory it holds: a flow map
(hash with BTF, `saddr=ipv4,daddr=ipv4,dport=u16,proto=u8:packets=u64,bytes=u64`)
exported as one counter with three labels (saddr, daddr, dport), through the HTTP
server a Prometheus scrapes (GET /metrics, the whole response read), for 1,000 and
100,000 entries.  Run as root (not in CI):

    python benchmarks/bench_export.py [--entries 1000,100000] [--scrapes 10]

Targets (issue 13): 100,000 entries under 1 s per scrape, 1,000 under 20 ms; memory
does not grow from scrape to scrape (the exporter's RSS over the last third of the
scrapes against the first third: one scrape's samples are held at a time).
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

LAYOUT = "saddr=ipv4,daddr=ipv4,dport=u16,proto=u8:packets=u64,bytes=u64"


def make_map(pin: str, n: int) -> None:
    subprocess.run(
        ["bpfmap", "create", "hash", "--layout", LAYOUT, "--max-entries", str(n), "--pin", pin, "-q"], check=True
    )
    lines = "".join(
        f"saddr=10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255},daddr=192.168.0.1,dport={i % 65536},proto=6"
        f"\tpackets={i},bytes={i * 1500}\n"
        for i in range(n)
    )
    subprocess.run(["bpfmap", "update", pin, "--from", "-", "-q"], input=lines, text=True, check=True)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench(pin: str, n: int, scrapes: int, tmp: str) -> dict:
    config = os.path.join(tmp, f"export{n}.yaml")
    with open(config, "w") as f:
        f.write(
            f"metrics:\n  - name: flow_packets_total\n    map: {pin}\n    value: packets\n"
            f"    labels: [saddr, daddr, dport]\n"
        )
    port = free_port()
    proc = subprocess.Popen(["bpfmap", "export", config, "--listen", f"127.0.0.1:{port}", "-q"])
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
        times, rss = [], []
        size = 0
        for _ in range(scrapes):
            t0 = time.perf_counter()
            body = urllib.request.urlopen(url, timeout=60).read()
            times.append(time.perf_counter() - t0)
            size = len(body)
            rss.append(rss_kib(proc.pid))
        return {"times": times, "rss": rss, "bytes": size}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", default="1000,100000")
    ap.add_argument("--scrapes", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (maps and a private bpffs)")
    with private_bpffs("bpfmapexport") as (tmp, fs):
        results = {}
        for n in (int(x) for x in args.entries.split(",")):
            pin = os.path.join(fs, f"flows{n}")
            make_map(pin, n)
            r = bench(pin, n, args.scrapes, tmp)
            results[n] = r
            med = statistics.median(r["times"])
            print(
                f"{n:>7} entries: scrape median {med * 1000:8.1f} ms (min {min(r['times']) * 1000:.1f}, "
                f"max {max(r['times']) * 1000:.1f}), {r['bytes'] / 1e6:.1f} MB, exporter RSS "
                f"{r['rss'][0] / 1024:.1f} MiB after the first scrape, {r['rss'][-1] / 1024:.1f} MiB after the last"
            )
        for n, limit in ((100000, 1.0), (1000, 0.020)):
            if n in results:
                med = statistics.median(results[n]["times"])
                print(
                    f"{'PASS' if med < limit else 'FAIL'}  {n} entries under {limit * 1000:g} ms ({med * 1000:.1f} ms)"
                )
        for n, r in results.items():
            # a trend, not the allocator's noise: the last third's median against the first third's
            third = max(len(r["rss"]) // 3, 1)
            first, last = statistics.median(r["rss"][:third]), statistics.median(r["rss"][-third:])
            ok = last <= first * 1.1
            print(
                f"{'PASS' if ok else 'FAIL'}  {n} entries: RSS flat across {len(r['rss'])} scrapes "
                f"(median {first / 1024:.1f} MiB in the first third, {last / 1024:.1f} MiB in the last)"
            )


if __name__ == "__main__":
    main()
