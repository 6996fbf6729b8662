"""Many maps, few file descriptors: top and watch DIR work within RLIMIT_NOFILE, show DIR
finds the pins once per command (each pin opened a bounded number of times, not once per
map), and show MAP on a terminal shows the facts the piped text shows."""

from __future__ import annotations

import collections
import ctypes
import json
import os
import re
import resource
import shutil
import subprocess
import time
import uuid

import pytest
from helpers import BPFMAP, create_pin, run_cli

pytestmark = pytest.mark.kernel

MAPS, LIMIT = 600, 128  # more maps than the command may hold file descriptors


def _fill(directory: str, n: int, start: int = 0) -> dict[str, int]:
    """``n`` hash maps pinned in ``directory``, map i holding i % 4 entries; pin -> entries."""
    from bpfmap import Map, MapSpec

    want = {}
    for i in range(start, start + n):
        path = os.path.join(directory, f"m{i}")
        with Map.create(MapSpec("hash", 4, 8, 8)) as m:
            for k in range(i % 4):
                m.update(k.to_bytes(4, "little"), (k + 1).to_bytes(8, "little"))
            m.pin(path)
        want[path] = i % 4
    return want


@pytest.fixture(scope="module")
def many(bpffs):
    d = os.path.join(bpffs, "fds" + uuid.uuid4().hex[:8])
    os.mkdir(d)
    yield d, _fill(d, MAPS)
    shutil.rmtree(d)


def _limited(*args: str) -> subprocess.CompletedProcess:
    """The CLI with RLIMIT_NOFILE at LIMIT (soft and hard)."""

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))

    env = dict(os.environ)
    env.pop("BPFMAP_DEBUG", None)
    return subprocess.run(
        [*BPFMAP, *args], capture_output=True, text=True, preexec_fn=lower, env=env, timeout=120, check=False
    )


def test_top_works_within_the_fd_limit(many):
    d, want = many
    r = _limited("top", d, "-o", "jsonl", "--count", "2", "--interval", "0.2")
    assert r.returncode == 0, r.stderr[-500:]
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 2 * MAPS
    got = {(r["pinned"][0], r["entries"]) for r in rows}
    assert got == set(want.items())
    second = rows[MAPS:]
    assert all(r["rate"] == 0 for r in second)  # the second refresh saw the same maps again


def test_top_holds_no_map_open_between_refreshes(many):
    from bpfmap.live.top import Top

    d, want = many
    before = len(os.listdir("/proc/self/fd"))
    with Top([d]) as t:
        rows = t.poll()
        held = len(os.listdir("/proc/self/fd")) - before
    assert len(rows) == MAPS and held < 16


def test_watch_of_a_directory_works_within_the_fd_limit(many):
    d, want = many
    r = _limited("watch", d, "--count", "2", "--interval", "0.2")
    assert r.returncode == 0, r.stderr[-500:]
    snaps = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(snaps) == 2 * MAPS
    for round_ in (snaps[:MAPS], snaps[MAPS:]):
        assert {(s["map"], s["entries"]) for s in round_} == set(want.items())
    keyed = {s["map"]: s for s in snaps[MAPS:]}
    one = keyed[os.path.join(d, "m3")]
    assert [(row["key"], row["value"], row["delta"]) for row in one["rows"]] == [(0, 1, 0), (1, 2, 0), (2, 3, 0)]


def test_watch_of_a_directory_notes_a_map_gone_and_goes_on(pindir):
    """A map removed between refreshes (unpinned, no one holding it) is said once on
    stderr and left out; the others are still watched."""
    from bpfmap import Map
    from bpfmap.errors import NoSuchObject
    from bpfmap.live.watch import Watchers

    _fill(pindir, 3)
    gone = os.path.join(pindir, "m1")
    notes: list[str] = []
    with Watchers(sorted(os.path.join(pindir, n) for n in os.listdir(pindir)), note=notes.append) as ws:
        assert [ref for ref, _m, _snap in ws.poll()] == [os.path.join(pindir, f"m{i}") for i in range(3)]
        with Map.open(gone) as m:
            map_id = m.id
        os.unlink(gone)
        for _ in range(200):  # the kernel frees a map after an RCU grace period
            try:
                Map.open(f"id:{map_id}").close()
            except NoSuchObject:
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"map id:{map_id} still there 4 s after its last pin went")
        assert [ref for ref, _m, _snap in ws.poll()] == [os.path.join(pindir, "m0"), os.path.join(pindir, "m2")]
    assert len(notes) == 1 and gone in notes[0]


# -- show DIR: the pins found once per command ----------------------------------------------


def _pin_opens(monkeypatch, directory: str) -> collections.Counter:
    """Count BPF_OBJ_GET calls on the pins under ``directory``, by wrapping the one
    function that makes the bpf(2) syscall (our code, not the kernel, instrumented)."""
    from bpfmap._sys import syscall
    from bpfmap._sys.attrs import Cmd

    opens: collections.Counter = collections.Counter()
    real = syscall.bpf

    def counting(cmd, attr):
        if cmd == Cmd.OBJ_GET:
            path = os.fsdecode(ctypes.string_at(attr.pathname))
            if path.startswith(directory + os.sep):
                opens[path] += 1
        return real(cmd, attr)

    monkeypatch.setattr(syscall, "bpf", counting)
    return opens


@pytest.mark.parametrize("form", ["dir", "glob"])
def test_show_of_many_maps_opens_each_pin_a_bounded_number_of_times(pindir, bm, monkeypatch, form):
    n = 30
    want = _fill(pindir, n)
    opens = _pin_opens(monkeypatch, pindir)
    arg = pindir if form == "dir" else os.path.join(pindir, "m*")
    code, out, err = bm("show", arg, "-o", "jsonl")
    assert code == 0, err
    assert {json.loads(x)["pinned"][0] for x in out.splitlines()} == set(want)
    assert set(opens) == set(want) and max(opens.values()) <= 2  # found once, opened once
    first = sum(opens.values())
    _fill(pindir, n, start=n)  # twice the maps: twice the opens
    opens.clear()
    code, out, err = bm("show", arg, "-o", "jsonl")
    assert code == 0 and len(out.splitlines()) == 2 * n, err
    assert sum(opens.values()) == 2 * first


# -- show MAP on a terminal ---------------------------------------------------------------

USE_MAP = "r1 = map[m]\nr0 = 0\nexit"


def _facts_of_text(text: str) -> dict[str, str]:
    """The facts the piped text of show gives, by name."""
    lines = text.splitlines()
    facts = {}
    for ln in lines:
        ln = ln.strip()
        for name in ("entries", "pids", "programs"):
            if ln.startswith(name + " "):
                facts[name] = ln[len(name) + 1 :]
        if ln.startswith("operations: "):
            facts["operations"] = ln[len("operations: ") :]
    return facts


def test_show_on_a_terminal_gives_the_facts_of_the_text(pindir):
    from bpfmap import Map, Program

    pin = create_pin(pindir, "held", "hash", "--layout", "u32:u64", "--max-entries", "64")
    assert run_cli("update", pin, "--from", "-", input="1\t1\n2\t2\n3\t3\n").returncode == 0
    with Map.open(pin) as m, Program.load("socket_filter", USE_MAP, {"m": m}, name="usesm") as prog:
        text = run_cli("show", pin)
        table = run_cli("show", pin, "-o", "table")  # what a terminal gets
        assert text.returncode == table.returncode == 0, text.stderr + table.stderr
        facts = _facts_of_text(text.stdout)
        assert set(facts) == {"entries", "pids", "programs", "operations"}
        rows = {}
        for ln in table.stdout.splitlines():
            parts = re.split(r"\s+│\s+", ln.strip(), maxsplit=1)
            if len(parts) == 2:
                rows[parts[0]] = parts[1].strip()
        assert rows["entries"] == "3 of 64 (4.7% full)" and facts["entries"] == rows["entries"]
        assert rows["pids"] == facts["pids"] and f"({os.getpid()})" in rows["pids"]
        assert rows["programs"] == facts["programs"] == f"{prog.id} socket_filter usesm"
        assert rows["operations"] == facts["operations"]
