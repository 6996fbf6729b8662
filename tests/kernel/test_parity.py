"""bpftool's map verbs and habits that bpfmap also has: getnext, enqueue/dequeue, show
without MAP, numeric array indices, --percpu on any map, the short usage."""

from __future__ import annotations

import json
import struct
import subprocess

from helpers import BPFMAP, run_cli

from bpfmap import Map

CMD = list(BPFMAP)


def _hash(pindir, n=5):
    pin = f"{pindir}/h"
    with Map.create("hash", 4, 8, max_entries=16) as m:
        for i in range(n):
            m.update(struct.pack("I", i * 10), struct.pack("Q", i))
        m.pin(pin)
    return pin


def test_getnext_walks_every_key_then_exits_1(pindir):
    pin = _hash(pindir)
    seen, key = [], None
    for _ in range(10):
        r = run_cli("getnext", pin, *([key] if key is not None else []), "-l", "u32:u64")
        if r.returncode:
            assert r.returncode == 1 and "no key after it" in r.stderr
            break
        key = r.stdout.strip()
        seen.append(int(key))
    assert sorted(seen) == [0, 10, 20, 30, 40]
    r = run_cli("getnext", pin, str(seen[0]), "-l", "u32:u64", "-o", "json")
    assert json.loads(r.stdout) == {"key": seen[0], "next_key": seen[1]}


def test_getnext_agrees_with_bpftool(pindir, bpftool):
    pin = _hash(pindir)
    # the first key, then the key after it (a key given may be the last in the hash's
    # order, where both tools end: so each step starts from a key the map says has a next)
    first = run_cli("getnext", pin).stdout.strip()
    theirs_first = json.loads(
        subprocess.run(
            [bpftool, "-j", "map", "getnext", "pinned", pin], capture_output=True, text=True, check=True
        ).stdout
    )
    assert first == " ".join(b.removeprefix("0x") for b in theirs_first["next_key"])
    ours = run_cli("getnext", pin, first).stdout.strip()
    theirs = json.loads(
        subprocess.run(
            [bpftool, "-j", "map", "getnext", "pinned", pin, "key", "hex", *first.split()],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert ours == " ".join(b.removeprefix("0x") for b in theirs["next_key"])
    with Map.create("hash", 4, 8, max_entries=4) as empty:
        empty.pin(f"{pindir}/empty")
    r = run_cli("getnext", f"{pindir}/empty")
    assert r.returncode == 1 and "the map is empty" in r.stderr


def test_enqueue_and_dequeue_are_push_and_pop(pindir):
    pin = f"{pindir}/q"
    assert run_cli("create", "queue", "--value", "4", "--max-entries", "4", "--pin", pin).returncode == 0
    assert run_cli("enqueue", pin, "7", "--layout", "u32").returncode == 0
    assert run_cli("push", pin, "8", "--layout", "u32").returncode == 0
    assert run_cli("dequeue", pin, "--layout", "u32").stdout == "7\n"
    assert run_cli("pop", pin, "--layout", "u32").stdout == "8\n"
    assert run_cli("dequeue", pin, "--layout", "u32").returncode == 1


def test_show_without_map_lists_every_map(pindir):
    """show and list agree on the maps this test made (other processes may make or free
    maps between the two commands: only ours are compared)."""
    pins = [f"{pindir}/m{i}" for i in range(3)]
    mine = set()
    for pin in pins:
        with Map.create("hash", 4, 8, max_entries=16) as m:
            m.pin(pin)
            mine.add(m.info().id)
    shown = [json.loads(line) for line in run_cli("show", "-o", "jsonl").stdout.splitlines()]
    listed = [json.loads(line) for line in run_cli("list", "-o", "jsonl").stdout.splitlines()]
    assert [m["id"] for m in shown if m["id"] in mine] == [m["id"] for m in listed if m["id"] in mine]
    assert {m["id"] for m in shown} >= mine
    for pin in pins:
        assert any(pin in m["pinned"] for m in shown)


def test_array_indices_are_numbers_without_a_layout(pindir):
    pin = f"{pindir}/a"
    assert run_cli("create", "array", "--value", "4", "--max-entries", "3", "--pin", pin).returncode == 0
    assert run_cli("update", pin, "2", "2a 00 00 00").returncode == 0
    assert run_cli("update", pin, "01 00 00 00", "07 00 00 00").returncode == 0  # the hex form still parses
    rows = [json.loads(line) for line in run_cli("dump", pin, "-o", "jsonl").stdout.splitlines()]
    assert rows == [
        {"key": 0, "value": "00 00 00 00"},
        {"key": 1, "value": "07 00 00 00"},
        {"key": 2, "value": "2a 00 00 00"},
    ]
    assert run_cli("lookup", pin, "2").stdout == "2a 00 00 00\n"
    assert run_cli("dump", pin, "--layout", "-:-").stdout.splitlines()[2] == "02 00 00 00\t2a 00 00 00"
    with Map.open(pin) as m:  # the bytes are what the number says
        assert m.lookup(struct.pack("I", 2)) == bytes([42, 0, 0, 0])
    # a JSON Lines dump loads back
    copy = f"{pindir}/b"
    run_cli("create", "array", "--value", "4", "--max-entries", "3", "--pin", copy)
    r = subprocess.run(
        [*CMD, "update", copy, "--from", "-"],
        input=run_cli("dump", pin, "-o", "jsonl").stdout,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert run_cli("dump", copy).stdout == run_cli("dump", pin).stdout


def test_percpu_options_are_the_identity_on_other_maps(pindir):
    pin = _hash(pindir)
    plain = run_cli("dump", pin, "-l", "u32:u64").stdout
    for how in ("sum", "max", "min", "avg", "all"):
        assert run_cli("dump", pin, "-l", "u32:u64", "--percpu", how).stdout == plain
    assert run_cli("lookup", pin, "10", "-l", "u32:u64", "--percpu", "sum").stdout == "1\n"


def test_dump_recursive_shows_each_inner_map_under_its_slot(pindir):
    a, b, outer = f"{pindir}/inner_a", f"{pindir}/inner_b", f"{pindir}/outer"
    assert run_cli("create", "array", "--layout", "u32:u64", "--max-entries", "2", "--pin", a, "-q").returncode == 0
    assert run_cli("create", "array", "--value", "8", "--max-entries", "2", "--pin", b, "-q").returncode == 0
    run_cli("update", a, "1", "42")
    run_cli("update", b, "0", "07 00 00 00 00 00 00 00")
    assert run_cli("create", "array_of_maps", "--max-entries", "3", "--inner-map", a, "--pin", outer).returncode == 0
    run_cli("update", outer, "0", a)
    run_cli("update", outer, "2", b)
    ids = {p: json.loads(run_cli("show", p, "-o", "json").stdout)["id"] for p in (a, b)}
    rows = [json.loads(x) for x in run_cli("dump", outer, "--recursive", "-o", "jsonl").stdout.splitlines()]
    assert rows == [
        {"key": 0, "value": ids[a], "inner": [{"key": 0, "value": 0}, {"key": 1, "value": 42}]},  # a's BTF
        {
            "key": 2,
            "value": ids[b],
            "inner": [{"key": 0, "value": "07 00 00 00 00 00 00 00"}, {"key": 1, "value": "00 00 00 00 00 00 00 00"}],
        },  # hex
    ]
    as_json = json.loads(run_cli("dump", outer, "-r", "-o", "json", "--inner-layout", "u32:u64").stdout)
    assert [r["inner"][0]["value"] for r in as_json] == [0, 7]
    text = run_cli("dump", outer, "-r").stdout.splitlines()
    assert text[:3] == [f"0\t{ids[a]}", "\t0\t0", "\t1\t42"]
    r = run_cli("dump", a, "--recursive")
    assert r.returncode == 2 and "maps of maps" in r.stderr
