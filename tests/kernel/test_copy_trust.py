"""copy and migrate lose nothing without saying so, on the real kernel: room checked before
writing (an array's index range, a hash's free room, an LRU map too small), what the
target holds read back after writing (an LRU map evicts before it is full), migrations to
fewer entries refused unless --allow-loss, writes made through the old map while a
migration runs carried over by a real writer process, and symlinked pins refused.
bpftool is the oracle of what a map holds."""

import json
import os
import subprocess
import sys

import pytest
from helpers import create_pin, each_finished, need_tool

import bpfmap.entries.migrate
from bpfmap import Map, MapSpec, possible_cpus
from bpfmap.entries.migrate import migrate
from bpfmap.layout import Layout

pytestmark = pytest.mark.kernel

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def bpftool_dump(pin: str) -> dict[int, int]:
    """{key: value} of a u32:u64 map as bpftool reads it (per-CPU: CPU 0's value)."""
    r = subprocess.run([need_tool("bpftool"), "-j", "map", "dump", "pinned", pin], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = {}
    for e in json.loads(r.stdout):
        key = int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
        raw = e["value"] if "value" in e else e["values"][0]["value"]
        out[key] = int.from_bytes(bytes(int(b, 16) for b in raw), "little")
    return out


def fill(pin: str, keys: range, value=lambda k: k * 10) -> None:
    with Map.open(pin) as m:
        n = len(keys)
        ks = b"".join(k.to_bytes(4, "little") for k in keys)
        per_entry = m.ncpus if m.percpu else 1  # per-CPU: the same value on every CPU
        vs = b"".join(value(k).to_bytes(8, "little") * per_entry for k in keys)
        m.update_batch(ks, vs, n)


@pytest.fixture
def src(pindir):
    """A hash of 2000 entries: key k -> 10k."""
    pin = create_pin(pindir, "src", "hash", "--layout", "u32:u64", "--max-entries", "4096")
    fill(pin, range(2000))
    return pin


@pytest.fixture
def one_cpu():
    """This process (and the threads it starts) on one CPU, so that an LRU map with
    per-CPU lists (no_common_lru) fills one CPU's share: max_entries / possible CPUs."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    yield
    os.sched_setaffinity(0, before)


# -- copy: room checked before writing ------------------------------------------------------


@pytest.mark.parametrize("kind", ["lru_hash", "lru_percpu_hash"])
def test_an_lru_target_too_small_is_refused_before_writing(src, pindir, bm, kind):
    dst = create_pin(pindir, "dst", kind, "--layout", "u32:u64", "--max-entries", "1024")
    extra = ("--to-cpu", "all") if "percpu" in kind else ()
    code, _, err = bm("copy", src, dst, *extra)
    assert code == 2, err
    assert "2000 entries are new to" in err and "room for 1024" in err and "976 would be lost" in err
    assert "nothing was written" in err and "--allow-loss" in err
    assert bpftool_dump(dst) == {}
    code, _, err = bm("copy", src, dst, *extra, "--allow-loss")
    held = bpftool_dump(dst)
    assert code == 3 and 0 < len(held) <= 1024, err
    assert f"{len(held)} entries copied; {2000 - len(held)} dropped (--allow-loss)" in err
    assert all(v == 10 * k for k, v in held.items())


@pytest.mark.parametrize("kind", ["lru_hash", "lru_percpu_hash"])
def test_an_lru_target_that_evicts_before_it_is_full_says_what_it_holds(src, pindir, bm, kind, one_cpu):
    """no_common_lru gives each CPU max_entries / CPUs of the slots: written from one CPU,
    the map evicts long before max_entries.  Room looks fine before writing; what the
    target holds after is read back, said, and the copy exits 3 naming the loss."""
    dst = create_pin(pindir, "dst", kind, "--layout", "u32:u64", "--max-entries", "2048", "--flags", "no_common_lru")
    share = 2048 // possible_cpus()
    if share >= 2000:
        pytest.skip("one possible CPU: per-CPU LRU lists are the whole map")
    extra = ("--to-cpu", "all") if "percpu" in kind else ()
    code, _, err = bm("copy", src, dst, *extra)
    held = bpftool_dump(dst)
    assert code == 3, err
    assert len(held) < 2000
    assert f"2000 entries written, but {dst} holds {len(held)} of them: {2000 - len(held)} dropped" in err
    assert "evicts" in err and "entries copied" not in err


def test_entries_the_target_held_before_and_lost_count_as_dropped(pindir, bm, one_cpu):
    src = create_pin(pindir, "src", "hash", "--layout", "u32:u64", "--max-entries", "4096")
    dst = create_pin(
        pindir, "dst", "lru_hash", "--layout", "u32:u64", "--max-entries", "2048", "--flags", "no_common_lru"
    )
    share = 2048 // possible_cpus()
    if share >= 2048:
        pytest.skip("one possible CPU: per-CPU LRU lists are the whole map")
    old, new = range(10000, 10000 + share // 2), range(share)  # together more than one CPU's share
    fill(dst, old)
    fill(src, new)
    code, _, err = bm("copy", src, dst, "--allow-loss")
    held = bpftool_dump(dst)
    assert code == 3, err
    kept_new = sum(1 for k in held if k < 10000)
    evicted_old = len(old) - sum(1 for k in held if k >= 10000)
    assert evicted_old > 0  # the map had to make room
    assert f"{kept_new} entries copied; {len(new) - kept_new + evicted_old} dropped (--allow-loss)" in err
    assert f"{evicted_old} that {dst} held before were evicted" in err


def test_a_smaller_hash_is_refused_before_writing_and_overlap_counts_as_room(src, pindir, bm):
    dst = create_pin(pindir, "dst", "hash", "--layout", "u32:u64", "--max-entries", "1500")
    fill(dst, range(5000, 5010), lambda k: 7)
    before = bpftool_dump(dst)
    code, _, err = bm("copy", src, dst)
    assert code == 2 and "which has room for 1490 (10 held of max_entries 1500; 2010 needed)" in err, err
    assert bpftool_dump(dst) == before  # nothing written
    code, _, err = bm("copy", src, dst, "--allow-loss")
    after = bpftool_dump(dst)
    assert code == 3 and "1490 entries copied; 510 dropped (--allow-loss): 510 did not fit and were left out" in err
    assert len(after) == 1500 and all(after[k] == 7 for k in before)
    # keys the target holds already need no room: 10 of 15 are there, 5 are new, 5 free
    small = create_pin(pindir, "small", "hash", "--layout", "u32:u64", "--max-entries", "10")
    fill(small, range(5), lambda k: 1)
    few = create_pin(pindir, "few", "hash", "--layout", "u32:u64", "--max-entries", "16")
    fill(few, range(10))
    code, _, err = bm("copy", few, small)
    assert code == 0 and "10 entries copied" in err, err
    assert bpftool_dump(small) == {k: 10 * k for k in range(10)}


def test_an_array_target_checks_the_index_range_before_writing(src, pindir, bm):
    arr = create_pin(pindir, "arr", "array", "--layout", "u32:u64", "--max-entries", "1500")
    before = bpftool_dump(arr)
    code, _, err = bm("copy", src, arr)
    assert code == 2, err
    assert "500 entries have keys past the end of" in err and "(the first: 1500), an array of indices 0..1499" in err
    assert "map is full" not in err and "delete entries" not in err
    assert bpftool_dump(arr) == before
    code, _, err = bm("copy", src, arr, "--allow-loss")
    assert code == 3 and "1500 entries copied; 500 dropped" in err, err
    assert bpftool_dump(arr) == {k: 10 * k for k in range(1500)}


def test_keys_that_become_one_are_refused(pindir, bm):
    """--drop of a key field can make two source keys one target key: one would
    overwrite the other, so the copy refuses before writing."""
    src = create_pin(pindir, "src", "hash", "--layout", "pid=u32,cpu=u32:n=u64")
    dst = create_pin(pindir, "dst", "hash", "--layout", "pid=u32:n=u64")
    for pid, cpu in ((1, 0), (1, 1), (2, 0)):
        bm("update", src, json.dumps({"pid": pid, "cpu": cpu}), json.dumps({"n": pid}))
    code, _, err = bm("copy", src, dst, "--drop", "key.cpu")
    assert code == 2 and "1 entry would overwrite another entry's key" in err, err
    assert bpftool_dump(dst) == {}
    code, _, err = bm("copy", src, dst, "--drop", "key.cpu", "--allow-loss")
    assert code == 3 and "2 entries copied; 1 dropped" in err, err


def test_the_full_target_refusal_replaces_the_kernels_partial_write(pindir, bm):
    src = create_pin(pindir, "src", "hash", "--layout", "u32:u64")
    fill(src, range(10))
    small = create_pin(pindir, "small", "hash", "--layout", "u32:u64", "--max-entries", "4")
    code, _, err = bm("copy", src, small)
    assert code == 2 and "room for 4" in err
    assert bm("count", small)[0] == 1  # none written


# -- migrate ----------------------------------------------------------------------------------


def pin_id(pin: str) -> int:
    with Map.open(pin, readonly=True) as m:
        return m.id


@pytest.mark.parametrize("shape", [("--max-entries", "500"), ("--type", "lru_hash", "--max-entries", "500")])
def test_migrate_to_fewer_entries_than_it_holds(src, pindir, bm, shape):
    old = pin_id(src)
    code, _, err = bm("migrate", src, *shape)
    assert code == 2, err
    assert "2000 entries are new to the new map, which has room for 500 (max_entries 500; 2000 needed)" in err
    assert f"{src} is unchanged" in err and "--allow-loss" in err
    assert pin_id(src) == old and sorted(os.listdir(pindir)) == ["src"]
    code, _, err = bm("migrate", src, *shape, "--allow-loss")
    held = bpftool_dump(src)
    assert code == 3, err
    assert f"{len(held)} entries moved" in err and f"{2000 - len(held)} dropped (--allow-loss)" in err
    assert 0 < len(held) <= 500 and pin_id(src) != old
    assert len(bpftool_dump(src + "_old")) == 2000


def test_migrate_to_an_lru_that_evicts_early_keeps_the_pin(src, pindir, bm, one_cpu):
    """Room looks fine (2000 in 2048), but per-CPU LRU lists evict on the way: found
    before the swap, so the pin stays the old map; --allow-loss swaps and says the count."""
    if 2048 // possible_cpus() >= 2000:
        pytest.skip("one possible CPU")
    old = pin_id(src)
    shape = ("--type", "lru_hash", "--max-entries", "2048", "--flags", "no_common_lru")
    code, _, err = bm("migrate", src, *shape)
    assert code == 3 and "2000 entries written, but the new map holds" in err and f"{src} is unchanged" in err
    assert "--allow-loss swaps it in anyway" in err
    assert pin_id(src) == old and sorted(os.listdir(pindir)) == ["src"]
    code, _, err = bm("migrate", src, *shape, "--allow-loss")
    held = bpftool_dump(src)
    assert code == 3 and f"{len(held)} entries moved" in err and f"{2000 - len(held)} dropped" in err, err


def test_migrate_and_copy_refuse_a_symlinked_pin(src, pindir, bm):
    link = os.path.join(pindir, "link")
    os.symlink("src", link)
    old = pin_id(src)
    code, _, err = bm("migrate", link, "--max-entries", "8192")
    assert code == 2 and f"migrate {link}: this pin is a symbolic link to {src}" in err, err
    assert os.path.islink(link) and pin_id(src) == old
    assert sorted(os.listdir(pindir)) == ["link", "src"]
    other = create_pin(pindir, "other", "hash", "--layout", "u32:u64")
    fill(other, range(3))
    code, _, err = bm("copy", other, link)
    assert code == 2 and "symbolic link" in err and src in err
    assert len(bpftool_dump(src)) == 2000 and 0 in bpftool_dump(src)
    assert bpftool_dump(src)[1] == 10


# -- migrate racing a writer ------------------------------------------------------------------

WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from bpfmap import Map
pin = sys.argv[1]
maps = {"old": Map.open(pin)}  # opened before the migration: the old map, whatever the pin holds later
print("ready", maps["old"].id, flush=True)
for line in sys.stdin:
    which, op, *args = line.split()
    if which not in maps:
        maps[which] = Map.open(pin)  # opened now: what the pin holds now
    m = maps[which]
    key = int(args[0]).to_bytes(4, "little")
    if op == "set":
        m.update(key, int(args[1]).to_bytes(8, "little"))
    else:
        m.delete(key)
    print("ok", m.id, flush=True)
"""


class Writer:
    """Another process that opened the pin before the migration and writes on command."""

    def __init__(self, pin: str) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-c", WRITER, pin, os.path.abspath(ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        word, self.old_id = self.p.stdout.readline().split()
        assert word == "ready"

    def __call__(self, line: str) -> int:
        """Run one write; returns the id of the map it went to."""
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        word, map_id = self.p.stdout.readline().split()
        assert word == "ok"
        return int(map_id)

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(timeout=30)


@pytest.fixture
def writer(pindir):
    yield from each_finished(Writer, Writer.close)


def test_writes_through_the_old_map_while_migrate_runs_are_carried(pindir, writer):
    """A writer process holds the old map.  After the copy and before the swap it changes
    an entry, adds one, deletes one, and changes two more; after the swap another opener
    writes those two to the new map first.  The pass after the swap carries the first
    three, leaves the two newer writes alone, and says so."""
    pin = create_pin(pindir, "counts", "hash", "--layout", "u32:u64", "--max-entries", "64")
    fill(pin, range(10))
    w = writer(pin)
    old_id = pin_id(pin)
    seen = []

    def stage(name):
        if name == "copied":  # the new map is full and not yet swapped in: writes go to the old map
            for line in ("old set 1 100", "old set 50 500", "old del 2", "old set 3 300", "old set 60 1"):
                assert w(line) == old_id
        if name == "swapped":  # an opener after the swap gets the new map
            assert w("new set 3 999") != old_id
            assert w("new set 60 2") != old_id
        seen.append(name)

    result = migrate(pin, MapSpec("hash", 4, 8, 128), on_stage=stage)
    assert seen == ["copied", "swapped"]
    assert (result.entries, result.carried, result.newer, result.failed) == (10, 3, 2, 0)
    want = {k: 10 * k for k in range(10)} | {1: 100, 3: 999, 50: 500, 60: 2}
    del want[2]
    assert bpftool_dump(pin) == want
    assert bpftool_dump(pin + "_old") == {k: 10 * k for k in range(10) if k != 2} | {1: 100, 3: 300, 50: 500, 60: 1}


def test_a_change_that_cannot_be_carried_exits_3_and_says_where_it_is(pindir, writer, bm, monkeypatch):
    """The CLI: a value written to the old map while migrate runs that does not fit the new
    layout stays only in PIN_old; migrate says so and exits 3.  The writer writes at the
    swap (a pause point around the real swap), so the run is the same every time."""
    pin = create_pin(pindir, "counts", "hash", "--layout", "u32:n=u64", "--max-entries", "64")
    fill(pin, range(10))
    w = writer(pin)
    real_swap = bpfmap.entries.migrate.swap

    def swap_with_writes(new, pin_, kept):
        w("old set 5 1099511627776")  # 1 << 40: not a u32
        w("old set 6 66")
        real_swap(new, pin_, kept)

    monkeypatch.setattr(bpfmap.entries.migrate, "swap", swap_with_writes)
    code, _, err = bm("migrate", pin, "--layout", "u32:n=u32")
    assert code == 3, err
    assert "10 entries moved" in err and "1 carried over" in err
    assert f"1 could not be carried: they are only in {pin}_old" in err
    with Map.open(pin) as m:
        values = {int.from_bytes(k, "little"): int.from_bytes(v, "little") for k, v in m.items()}
    assert values[5] == 50 and values[6] == 66
    assert bpftool_dump(pin + "_old")[5] == 1 << 40


def test_library_copy_reports_the_verified_counts(src, pindir):
    """bpfmap.entries.migrate.Copy for Python users: write returns what the target holds."""
    from bpfmap import View

    dst = create_pin(pindir, "dst", "hash", "--layout", "u32:u64", "--max-entries", "1000")
    with Map.open(src) as s, Map.open(dst) as d:
        job = bpfmap.entries.migrate.Copy(View(s), View(d, Layout.parse("u32:u64")), allow_loss=True)
        keys, values, n = job.read()
        assert n == 2000
        assert job.write(keys, values, n) == 1000 == job.held
        assert (job.left_out, job.lost, job.evicted, job.dropped) == (1000, 0, 0, 1000)
    assert len(bpftool_dump(dst)) == 1000
