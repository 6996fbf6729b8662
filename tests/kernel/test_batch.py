"""Batch operations against the per-element path, concurrency, and what start-up imports."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time

import pytest
from helpers import run_cli

from bpfmap import Map
from bpfmap.core import batch as batch_mod

pytestmark = pytest.mark.kernel  # every test here makes maps in the process


@pytest.fixture
def no_batch(monkeypatch):
    def set_(off: bool):
        if off:
            monkeypatch.setenv("BPFMAP_NO_BATCH", "1")
        else:
            monkeypatch.delenv("BPFMAP_NO_BATCH", raising=False)

    return set_


def fill(m: Map, n: int) -> dict:
    want = {}
    for i in range(n):
        k = struct.pack("=I", i * 7 + 1 if m.type_label.endswith("hash") else i)
        if m.percpu:
            v = [struct.pack("=Q", i * 100 + c) for c in range(m.ncpus)]
        else:
            v = struct.pack("=Q", i * 3 + 5)
        m.update(k, v)
        want[k] = v
    return want


@pytest.mark.parametrize("mtype", ["hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash"])
def test_batch_and_per_element_paths_agree(no_batch, mtype):
    with Map.create(mtype, 4, 8, max_entries=5000) as m:
        want = fill(m, 3000 if "array" not in mtype else 5000)
        no_batch(False)
        batched = list(m.items())
        no_batch(True)
        single = list(m.items())
        assert sorted(batched) == sorted(single)
        got = dict(batched)
        assert all(got[k] == v for k, v in want.items())
        assert len(batched) == len(set(k for k, _ in batched)) == (len(want) if "array" not in mtype else 5000)
        # the raw batches agree too, and per-CPU slots keep their padding out of values
        no_batch(False)
        raw = sum(c for _k, _v, c in m.batches())
        assert raw == len(batched)


def test_kernel_batches_really_are_used(no_batch, monkeypatch):
    calls = []
    real = batch_mod._sys.map_batch

    def spy(cmd, *a, **k):
        calls.append(cmd)
        return real(cmd, *a, **k)

    monkeypatch.setattr(batch_mod._sys, "map_batch", spy)  # batch writes (core/batch)
    monkeypatch.setattr(batch_mod._sys.syscall, "map_batch", spy)  # batch reads (_sys.batch_reads)
    with Map.create("hash", 4, 8, max_entries=100000) as m:
        n = 70000
        keys = struct.pack(f"={n}I", *range(n))
        vals = struct.pack(f"={n}Q", *range(n))
        assert m.update_batch(keys, vals, n) == n
        assert sum(1 for _ in m.items()) == n
        assert batch_mod._sys.Cmd.MAP_LOOKUP_BATCH in calls and batch_mod._sys.Cmd.MAP_UPDATE_BATCH in calls
        calls.clear()
        no_batch(True)
        assert sum(1 for _ in m.items()) == n
        assert calls == []


def test_maps_of_maps_batch_like_single(no_batch):
    with (
        Map.create("array", 4, 4, max_entries=1) as inner,
        Map.create("hash_of_maps", 4, max_entries=8, inner_map=inner) as outer,
    ):
        for i in range(5):
            outer.update(struct.pack("=I", i), inner)
        no_batch(False)
        a = sorted(outer.items())
        no_batch(True)
        b = sorted(outer.items())
        assert a == b and len(a) == 5 and all(v == struct.pack("=I", inner.id) for _k, v in a)


def test_lpm_trie_falls_back_and_remembers():
    with Map.create("lpm_trie", 8, 4, max_entries=16) as m:
        for i in range(10):
            m.update(struct.pack("=I", 32) + bytes([10, 0, 0, i]), struct.pack("=I", i))
        assert len(list(m.items())) == 10  # lpm_trie has no batch ops: per-element path


def pairs(m, batches):
    """(key, value) pairs of ``batches`` (raw key and value bytes, as Map.batches gives)."""
    ks, vs = m.key_size, m.shape.entry
    for keys, values, count in batches:
        for i in range(count):
            yield keys[i * ks : (i + 1) * ks], values[i * vs : (i + 1) * vs]


def test_hash_bucket_bigger_than_the_batch_grows_it():
    with Map.create("hash", 4, 4, max_entries=4096) as m:
        n = 3000
        m.update_batch(struct.pack(f"={n}I", *range(n)), struct.pack(f"={n}I", *range(n)), n)
        # batches of 1: any bucket with 2 keys needs ENOSPC handling
        keys = [k for k, _ in pairs(m, m.batches(size=1))]
        assert len(keys) == len(set(keys)) == n


def test_update_batch_reports_how_many_went_in():
    with Map.create("hash", 4, 4, max_entries=10) as m:
        n = 15
        with pytest.raises(Exception) as info:
            m.update_batch(struct.pack(f"={n}I", *range(n)), struct.pack(f"={n}I", *range(n)), n)
        assert "map is full" in str(info.value)
        assert info.value.done == 10 == len(list(m.items()))


def test_clear_and_drain(no_batch):
    for off in (False, True):
        no_batch(off)
        with Map.create("hash", 4, 8, max_entries=5000) as m, Map.create("array", 4, 8, max_entries=100) as a:
            want = fill(m, 4000)
            drained = dict(pairs(m, m.batches(delete=True)))
            assert drained == want and list(m.items()) == []
            fill(m, 10)
            assert m.clear() == 10 and list(m.keys()) == []
            fill(a, 100)
            assert a.clear() == 100
            assert all(v == bytes(8) for _k, v in a.items())


def test_dump_while_another_process_inserts_and_deletes(pindir):
    pin = os.path.join(pindir, "busy")
    stable = 20000
    with Map.create("hash", 4, 8, max_entries=80000) as m:
        m.update_batch(struct.pack(f"={stable}I", *range(stable)), bytes(8 * stable), stable)
        m.pin(pin)
    churn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import struct, time
from bpfmap import Map
m = Map.open({pin!r})
end = time.time() + 20
i = 0
while time.time() < end:
    base = 100000 + (i % 50) * 1000
    keys = struct.pack('=1000I', *range(base, base + 1000))
    m.update_batch(keys, bytes(8000), 1000)
    m.delete_batch(keys, 1000)
    i += 1
""",
        ]
    )
    try:
        time.sleep(0.3)
        with Map.open(pin, readonly=True) as m:
            for _ in range(5):
                seen = set()
                for keys, _values, count in m.batches():
                    batch_keys = [keys[i * 4 : (i + 1) * 4] for i in range(count)]
                    assert len(batch_keys) == len(set(batch_keys)), "a key twice in one batch"
                    seen.update(batch_keys)
                assert {struct.pack("=I", i) for i in range(stable)} <= seen
            # and through the CLI, formatted
            r = run_cli("dump", pin, "-l", "u32:u64", "-o", "jsonl")
            assert r.returncode == 0, r.stderr
            got = {json.loads(line)["key"] for line in r.stdout.splitlines()}
            assert set(range(stable)) <= got
    finally:
        churn.kill()
        churn.wait()


def test_four_processes_bulk_load_disjoint_ranges(pindir, tmp_path):
    pin = os.path.join(pindir, "shared")
    per = 50000
    with Map.create("hash", 4, 8, max_entries=4 * per) as m:
        m.pin(pin)
    procs = []
    for p in range(4):
        f = tmp_path / f"part{p}.txt"
        f.write_text("".join(f"{k}\t{k * 2}\n" for k in range(p * per, (p + 1) * per)))
        procs.append(
            subprocess.Popen(
                [*(_cmd()), "update", pin, "--from", str(f), "-l", "u32:u64"], stderr=subprocess.PIPE, text=True
            )
        )
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert f"{per} entries written" in err
    with Map.open(pin, readonly=True) as m:
        got = dict(m.items())
    assert len(got) == 4 * per
    assert all(struct.unpack("=Q", got[struct.pack("=I", k)])[0] == 2 * k for k in range(0, 4 * per, 997))


def _cmd() -> list[str]:
    from helpers import BPFMAP

    return list(BPFMAP)


# what no one-entry verb needs: the parser, rich and its tables, the dump's row machinery,
# C and BTF parsing, the exporter, the jobs on many entries, socket (an import slower than
# a lookup), the saved-file reader (a pin is told from a saved file by its magic alone)
HEAVY = (
    "typer",
    "click",
    "rich",
    "pycparser",
    "pydantic",
    "dataclasses",
    "socket",
    "json",
    "bpfmap.btf",
    "bpfmap.layout.cdecl",
    "bpfmap.output.table",
    "bpfmap.output.rows",
    "bpfmap.output.templates",
    "bpfmap.output.dump",
    "bpfmap.export",
    "bpfmap.entries.bulk",
    "bpfmap.entries.drain",
    "bpfmap.entries.migrate",
    "bpfmap.cli.common",
    "bpfmap.cli.manage",
    "bpfmap.cli.elements",
    "bpfmap.cli.changes",
    "bpfmap.core.saved",
)


def _imports_of(args: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """A command line run as the console script runs it, and the modules it imported."""
    code = (
        "import sys\nfrom bpfmap.cli import main\nrc = main(sys.argv[1:])\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    return r, set(r.stderr.split())


@pytest.mark.parametrize(
    "args, out",
    [
        (["lookup", "h", "1", "-l", "u32:u64"], "2\n"),
        (["lookup", "h", "01 00 00 00"], "02 00 00 00 00 00 00 00\n"),
        (["update", "h", "3", "4", "--layout", "u32:u64"], ""),
        (["delete", "h", "1", "-l", "u32:u64"], ""),
        (["count", "h"], "1\n"),
        (["push", "q", "7", "-l", "u64"], ""),
        (["enqueue", "q", "7", "-l", "u64"], ""),
        (["pop", "q", "-l", "u64"], "5\n"),
        (["dequeue", "q"], "05 00 00 00 00 00 00 00\n"),
    ],
)
def test_a_one_entry_verb_imports_only_what_it_needs(pindir, args, out):
    h, q = os.path.join(pindir, "h"), os.path.join(pindir, "q")
    with Map.create("hash", 4, 8, max_entries=4) as m:
        m.update(struct.pack("=I", 1), struct.pack("=Q", 2))
        m.pin(h)
    with Map.create("queue", 0, 8, max_entries=4) as m:
        m.push(struct.pack("=Q", 5))
        m.pin(q)
    r, mods = _imports_of([args[0], {"h": h, "q": q}[args[1]], *args[2:]])
    assert r.returncode == 0 and r.stdout == out, r.stderr
    assert {"bpfmap.cli.verbs", "bpfmap.cli.quick"} & mods  # a parser-free path ran it (quick.py: plain integers)
    for heavy in HEAVY:
        assert not any(m == heavy or m.startswith(heavy + ".") for m in mods), f"{heavy} imported by {args[0]}"


def test_a_reads_first_batch_is_small_and_the_rest_full():
    """A reader formats the first batch while the next is read, so the first is one chunk
    at most (core.batch.FIRST_BATCH); the others fill the buffers; every key once; a size
    asked for is every batch's."""
    from bpfmap.core.batch import FIRST_BATCH, batch_count

    with Map.create("hash", 4, 8, max_entries=8192) as m:
        n = 6000
        m.update_batch(struct.pack(f"={n}I", *range(n)), struct.pack(f"={n}Q", *range(n)), n)
        counts = [count for _k, _v, count in m.batches()]
        assert counts[0] <= FIRST_BATCH < batch_count(m) and sum(counts) == n
        assert len(counts) == 2 and counts[1] == n - counts[0]  # the rest in one full batch
        assert len({k for k, _ in pairs(m, m.batches())}) == n
        assert [count for _k, _v, count in m.batches(size=3000)][0] > FIRST_BATCH
