"""The md5 of every way a dump is written, for proving a refactoring changed no byte.

Creates maps on a private bpffs (a flow map with addresses, ports, strings and counters,
from a layout and so with BTF; a C-header struct map with an enum, a bool, floats and
an array; a per-CPU map), fills them with the same entries every run, and prints one
line per dump (map, options, format) with its md5.  Run it with two checkouts and
compare:

    sudo python benchmarks/dump_digests.py > before.txt              # in the old checkout
    sudo python benchmarks/dump_digests.py > after.txt && diff before.txt after.txt

The maps are filled through bpfmap itself (``update --from``), so a run needs a
checkout whose loader reads these lines; the dump commands are what is compared.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from _common import private_bpffs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOW = "saddr=ipv4,daddr=ipv4,sport=be16,dport=be16,proto=u8:packets=u64,bytes=u64,comm=char[16]"
HEADER = """
enum kind { KIND_A = 1, KIND_B = 7, KIND_C = 1 << 20 };
struct key { unsigned int id; enum kind kind; };
struct val { _Bool up; float ratio; double avg; unsigned short hist[4]; char name[12]; long long delta; };
"""
N = 3000


def bpfmap(*args: str, input: str | None = None) -> bytes:
    env = dict(os.environ, PYTHONPATH=ROOT, NO_COLOR="1")
    r = subprocess.run(
        [sys.executable, "-m", "bpfmap", *args], input=input.encode() if input else None, capture_output=True, env=env
    )
    if r.returncode:
        raise SystemExit(f"bpfmap {' '.join(args)}: {r.stderr.decode()}")
    return r.stdout


def flow_lines() -> str:
    names = ["curl", "dig", "a,b", " lead", "x\ty", 'q"q', "caf\u00e9", ""]
    out = []
    for i in range(N):
        comm = names[i % len(names)]
        out.append(
            '{"key": {"saddr": "10.%d.%d.1", "daddr": "192.168.%d.%d", "sport": %d, "dport": %d, "proto": %d}, '
            '"value": {"packets": %d, "bytes": %d, "comm": %s}}'
            % (
                i >> 8,
                i & 255,
                i % 7,
                i % 251,
                1024 + i,
                (443, 53, 80)[i % 3],
                (6, 17)[i % 2],
                i * 3,
                i * 1500,
                _js(comm),
            )
        )
    return "\n".join(out) + "\n"


def struct_lines() -> str:
    kinds = ["KIND_A", "KIND_B", "KIND_C"]
    out = []
    for i in range(N):
        out.append(
            '{"key": {"id": %d, "kind": "%s"}, "value": {"up": %s, "ratio": %r, "avg": %r, "hist": [%d, %d, %d, %d], '
            '"name": "n%d", "delta": %d}}'
            % (i, kinds[i % 3], "true" if i % 2 else "false", i / 8, i / 3, i % 5, i % 7, 0, 65535, i, -i * 977)
        )
    return "\n".join(out) + "\n"


def _js(s: str) -> str:
    import json

    return json.dumps(s)


def main() -> None:
    with private_bpffs("bpfmap-digests-") as (tmp, fs):
        header = os.path.join(tmp, "types.h")
        with open(header, "w") as f:
            f.write(HEADER)
        flows, structs, percpu = f"{fs}/flows", f"{fs}/structs", f"{fs}/percpu"
        bpfmap("create", "hash", "--layout", FLOW, "--max-entries", str(N), "--pin", flows, "-q")
        bpfmap("update", flows, "--from", "-", input=flow_lines())
        c = ["--c-header", header, "--key-type", "struct key", "--value-type", "struct val"]
        bpfmap("create", "hash", *c, "--max-entries", str(N), "--pin", structs, "-q")
        bpfmap("update", structs, "--from", "-", *c, input=struct_lines())
        bpfmap("create", "percpu_hash", "--layout", "u32:u64", "--max-entries", str(N), "--pin", percpu, "-q")
        ncpus = os.sysconf("SC_NPROCESSORS_CONF")
        lines = "".join(f"{i}\t" + "\t".join(str(i * 10 + c) for c in range(ncpus)) + "\n" for i in range(N))
        bpfmap("update", percpu, "--from", "-", "--input-format", "text", input=lines)
        cases = [
            ("flows", flows, []),
            ("flows --layout", flows, ["--layout", FLOW]),
            ("flows --as", flows, ["--as", "saddr=hex"]),
            ("flows --sort", flows, ["--sort", "packets", "--reverse"]),
            ("structs", structs, []),
            ("structs --c-header", structs, c),
            ("percpu", percpu, []),
            ("percpu --percpu sum", percpu, ["--percpu", "sum"]),
            ("percpu --percpu avg", percpu, ["--percpu", "avg"]),
            ("hex", flows, ["--layout", "-:-"]),
        ]
        for name, pin, opts in cases:
            for fmt in ("text", "jsonl", "json", "csv"):
                out = bpfmap("dump", pin, *opts, "-o", fmt)
                # hash maps list entries in the kernel's order (its hash seed is per map): compare
                # sorted lines, a JSON array's separating commas left out
                body = b"\n".join(sorted(line.rstrip(b",") for line in out.splitlines()))
                print(f"{name:22} {fmt:6} {hashlib.md5(body).hexdigest()}  {len(out.splitlines())} lines")


if __name__ == "__main__":
    main()
