"""show and list: how many entries a map holds and how full it is, the processes holding
it (checked against bpftool's pids) and the programs using it (checked against bpftool's
prog show map_ids)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import create_pin as create
from helpers import need_tool, run_cli
from helpers.programs import loaded_program

pytestmark = pytest.mark.kernel

userring_prog = loaded_program("userring")


def show(path: str) -> dict:
    r = run_cli("show", path, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize(
    "mtype,args,fill",
    [
        ("hash", ("--layout", "u32:u64", "--max-entries", "64"), True),
        ("lru_hash", ("--layout", "u32:u64", "--max-entries", "64"), True),
        ("percpu_hash", ("--layout", "u32:u64", "--max-entries", "64"), True),
        ("lpm_trie", ("--key", "8", "--value", "4", "--max-entries", "64"), True),
    ],
)
def test_entries_and_fill_of_keyed_maps(pindir, mtype, args, fill):
    pin = create(pindir, "m", mtype, *args)
    for i in range(5):
        key = f"10.{i}.0.0/16" if mtype == "lpm_trie" else str(i)
        value = "01 00 00 00" if mtype == "lpm_trie" else str(i)
        assert run_cli("update", pin, key, value).returncode == 0
    info = show(pin)
    assert (info["entries"], info["entries_exact"]) == (5, True)
    assert info["fill"] == pytest.approx(5 / 64)
    assert "\tentries 5 of 64 (7.8% full)" in run_cli("show", pin).stdout


def test_entries_of_arrays_queues_and_rings(pindir):
    arr = create(pindir, "a", "array", "--layout", "u32:u64", "--max-entries", "8")
    assert (show(arr)["entries"], show(arr)["fill"]) == (8, None)
    q = create(pindir, "q", "queue", "--value", "4", "--max-entries", "8")
    assert show(q)["entries"] is None and "\tentries" not in run_cli("show", q).stdout
    rb = create(pindir, "r", "ringbuf", "--max-entries", "4096")
    assert show(rb)["entries"] is None


def test_list_counts_within_a_budget(pindir):
    n = 200_000  # more than one kernel batch (about 1 MiB of keys and values each)
    pin = create(pindir, "big", "hash", "--layout", "u32:u64", "--max-entries", str(n))
    lines = "".join(f"{i}\t{i}\n" for i in range(n))
    assert run_cli("update", pin, "--from", "-", input=lines).returncode == 0
    rows = {tuple(r["pinned"]): r for r in map(json.loads, run_cli("list", "-o", "jsonl").stdout.splitlines())}
    assert rows[(pin,)]["entries"] == n and rows[(pin,)]["entries_exact"] is True
    tight = run_cli("list", "-o", "jsonl", "--count-budget", "0.000001")
    row = next(r for r in map(json.loads, tight.stdout.splitlines()) if r["pinned"] == [pin])
    assert row["entries_exact"] is False and 0 < row["entries"] < n and row["fill"] is None
    assert f">{row['entries']}" in run_cli("list", "--count-budget", "0.000001").stdout
    none = run_cli("list", "-o", "jsonl", "--no-count")
    row = next(r for r in map(json.loads, none.stdout.splitlines()) if r["pinned"] == [pin])
    assert row["entries"] is None


def test_pids_of_processes_holding_the_map(pindir, bpftool):
    pin = create(pindir, "held", "hash", "--layout", "u32:u64")
    code = f"from bpfmap import Map\nm = Map.open({pin!r})\nprint('open', flush=True)\ninput()\n"
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "open\n"
        info = show(pin)
        assert {(x["pid"], x["comm"]) for x in info["pids"]} == {(p.pid, open(f"/proc/{p.pid}/comm").read().strip())}
        theirs = json.loads(subprocess.run([bpftool, "-j", "map", "show", "pinned", pin], capture_output=True).stdout)
        if "pids" in theirs:  # bpftool finds them with a BPF iterator, where its build and the kernel allow
            assert {(x["pid"], x["comm"]) for x in info["pids"]} == {(x["pid"], x["comm"]) for x in theirs["pids"]}
        assert f"({p.pid})" in run_cli("show", pin).stdout
    finally:
        p.stdin.close()
        p.wait(timeout=10)
    assert p.pid not in {x["pid"] for x in show(pin)["pids"]}


def test_programs_using_the_map(userring_prog):
    bpftool = need_tool("bpftool")
    progs = json.loads(subprocess.run([bpftool, "-j", "prog", "show"], capture_output=True, text=True).stdout)
    got = show(userring_prog.map("got"))
    using = {p["id"] for p in progs if got["id"] in p.get("map_ids", [])}
    assert using and {p["id"] for p in got["programs"]} == using
    [ours] = [p for p in got["programs"] if p["name"] == "drain"]
    assert ours["type"] == "socket_filter"
    assert f"{ours['id']} socket_filter drain" in run_cli("show", userring_prog.map("got")).stdout
