"""bpftool as an independent oracle: our maps look right to it, its maps read right in ours."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import run_cli

from bpfmap import Map, MapFlag, MapType, possible_cpus
from bpfmap.types import spec

pytestmark = pytest.mark.bpftool


def bt(bpftool: str, *args: str, json_out: bool = True):
    cmd = [bpftool, *(["-j"] if json_out else []), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out) if json_out else out


def hexlist(data: bytes) -> list[str]:
    return [f"0x{b:02x}" for b in data]


def from_hexlist(items: list[str]) -> bytes:
    return bytes(int(x, 16) for x in items)


CASES = [
    ("hash", 4, 8),
    ("array", 4, 8),
    ("lru_hash", 8, 4),
    ("percpu_hash", 4, 12),
    ("percpu_array", 4, 4),
    ("lru_percpu_hash", 4, 8),
    ("lpm_trie", 8, 4),
]


def _entries(mtype: str, ks: int, vs: int) -> dict[bytes, object]:
    n = possible_cpus()
    out: dict[bytes, object] = {}
    for i in range(1, 6):
        key = (
            (32).to_bytes(4, "little") + bytes([10, 0, 0, i])
            if mtype == "lpm_trie"
            else i.to_bytes(ks, "little")
            if mtype.endswith("array")
            else (i * 0x01010101).to_bytes(ks, "little")
        )
        if "percpu" in mtype:
            out[key] = [bytes((i * 16 + c + j) & 0xFF for j in range(vs)) for c in range(n)]
        else:
            out[key] = bytes((i * 16 + j) & 0xFF for j in range(vs))
    return out


@pytest.mark.parametrize("mtype,ks,vs", CASES, ids=[c[0] for c in CASES])
def test_bpftool_reads_what_we_write(bpftool, pindir, mtype, ks, vs):
    path = os.path.join(pindir, mtype)
    want = _entries(mtype, ks, vs)
    with Map.create(mtype, ks, vs, max_entries=8, name="ours") as m:
        for k, v in want.items():
            m.update(k, v)
        m.pin(path)
        ours = dict(m.items())
    dumped = bt(bpftool, "map", "dump", "pinned", path)
    theirs: dict[bytes, object] = {}
    for e in dumped:
        key = from_hexlist(e["key"])
        if "values" in e:
            theirs[key] = [from_hexlist(x["value"]) for x in sorted(e["values"], key=lambda x: x["cpu"])]
        else:
            theirs[key] = from_hexlist(e["value"])
    assert theirs == ours
    for k, v in want.items():
        assert theirs[k] == v
    show = bt(bpftool, "map", "show", "pinned", path)
    info = json.loads(run_cli("show", path, "-o", "json").stdout)
    assert (
        show["id"],
        show["type"],
        show["name"],
        show["bytes_key"],
        show["bytes_value"],
        show["max_entries"],
        show["flags"],
        show["bytes_memlock"],
    ) == (
        info["id"],
        info["type"],
        info["name"],
        info["key_size"],
        info["value_size"],
        info["max_entries"],
        int(MapFlag.parse(",".join(info["flags"]))),
        info["memlock"],
    )


@pytest.mark.parametrize("mtype,ks,vs", CASES, ids=[c[0] for c in CASES])
def test_we_read_what_bpftool_writes(bpftool, pindir, mtype, ks, vs):
    path = os.path.join(pindir, "bt_" + mtype)
    extra = ["flags", "1"] if mtype == "lpm_trie" else []
    bt(
        bpftool,
        "map",
        "create",
        path,
        "type",
        mtype,
        "key",
        str(ks),
        "value",
        str(vs),
        "entries",
        "8",
        "name",
        "theirs",
        *extra,
        json_out=False,
    )
    want = _entries(mtype, ks, vs)
    for k, v in want.items():
        one = v if isinstance(v, bytes) else v[0]  # bpftool writes one value to every CPU
        bt(
            bpftool,
            "map",
            "update",
            "pinned",
            path,
            "key",
            "hex",
            *[f"{b:02x}" for b in k],
            "value",
            "hex",
            *[f"{b:02x}" for b in one],
            json_out=False,
        )
    with Map.open(path, readonly=True) as m:
        assert m.name == "theirs"
        got = dict(m.items())
    for k, v in want.items():
        one = v if isinstance(v, bytes) else v[0]
        assert got[k] == ([one] * possible_cpus() if isinstance(v, list) else one)
    # and through the installed command, as jsonl
    r = run_cli("dump", path, "-o", "jsonl")
    rows = {json.loads(line)["key"]: json.loads(line) for line in r.stdout.splitlines()}
    indexed = spec(MapType.parse(mtype)).indexed  # array indices dump as numbers, other keys as hex

    def shown(k: bytes) -> object:
        if indexed:
            return int.from_bytes(k, "little")
        if mtype == "lpm_trie":  # prefix length and IPv4 address: CIDR
            return f"{'.'.join(map(str, k[4:]))}/{int.from_bytes(k[:4], 'little')}"
        return k.hex(" ")

    for k, v in want.items():
        row = rows[shown(k)]
        one = v if isinstance(v, bytes) else v[0]
        assert row.get("value", row.get("values")) == (
            one.hex(" ") if isinstance(v, bytes) else [one.hex(" ")] * possible_cpus()
        )


def test_bpftool_queue_pops_in_order(bpftool, pindir):
    path = os.path.join(pindir, "btq")
    bt(
        bpftool,
        "map",
        "create",
        path,
        "type",
        "queue",
        "key",
        "0",
        "value",
        "4",
        "entries",
        "4",
        "name",
        "btq",
        json_out=False,
    )
    for i in (7, 8, 9):
        bt(bpftool, "map", "push", "pinned", path, "value", str(i), "0", "0", "0", json_out=False)
    r = [run_cli("pop", path, "-l", "u32").stdout for _ in range(3)]
    assert r == ["7\n", "8\n", "9\n"]


def test_our_queue_pops_in_order_in_bpftool(bpftool, pindir):
    path = os.path.join(pindir, "ourq")
    with Map.create("stack", value_size=4, max_entries=4) as m:
        for i in (1, 2):
            m.push(i.to_bytes(4, "little"))
        m.pin(path)
    got = bt(bpftool, "map", "pop", "pinned", path)
    assert from_hexlist(got["value"]) == (2).to_bytes(4, "little")
