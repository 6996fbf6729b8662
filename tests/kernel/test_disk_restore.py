"""Saved maps restored (a new pin, every map of a file, into an existing map) and
compared (diff): bpftool's dump of the restored map is the oracle; a restore that fails
leaves no pin; diff's exit codes are diff(1)'s."""

from __future__ import annotations

import json
import os
import struct
import subprocess

import pytest
from helpers import cli_ok, create_pin, fill_pin, need_tool, run_cli

import bpfmap
from bpfmap import Map
from bpfmap.btf import spec_for
from bpfmap.core.saved import Writer
from bpfmap.layout.model import SCALARS


def bpftool_entries(pin: str) -> list:
    """bpftool's JSON dump, in key order (a new hash map has its own order)."""
    out = subprocess.run([need_tool("bpftool"), "-j", "map", "dump", "pinned", pin], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return sorted(json.loads(out.stdout), key=lambda e: json.dumps(e.get("key", e.get("formatted", {}).get("key"))))


def bpftool_show(pin: str) -> dict:
    out = subprocess.run([need_tool("bpftool"), "-j", "map", "show", "pinned", pin], capture_output=True, text=True)
    shown = json.loads(out.stdout)
    return {k: shown.get(k) for k in ("type", "name", "flags", "bytes_key", "bytes_value", "max_entries", "frozen")}


KINDS = {
    "hash": (("hash", "--layout", "u32:packets=u64,bytes=u64"), [(i, (i, i * 9)) for i in range(200)]),
    "array": (("array", "--layout", "u32:u64", "--max-entries", "32"), [(i, i * i) for i in range(32)]),
    "percpu_hash": (("percpu_hash", "--layout", "u32:u64"), [(i, i + 1) for i in range(30)]),
    "percpu_array": (("percpu_array", "--layout", "u32:u32", "--max-entries", "8"), [(i, 7) for i in range(8)]),
    "lru_hash": (("lru_hash", "--layout", "u32:u32", "--max-entries", "128"), [(i, i) for i in range(50)]),
    "lpm_trie": (("lpm_trie", "--layout", "prefixlen=u32,addr=ipv4:u32"), [(f"10.{i}.0.0/16", i) for i in range(9)]),
}


@pytest.mark.bpftool
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_restore_makes_the_saved_map_again_byte_for_byte(pindir, tmp_path, kind):
    args, pairs = KINDS[kind]
    pin = create_pin(pindir, kind, *args)
    fill_pin(pin, pairs)
    file = str(tmp_path / "m.bpfmap")
    cli_ok("save", pin, file)
    again = os.path.join(pindir, f"{kind}_again")
    r = cli_ok("restore", file, "--pin", again)
    assert f"{len(pairs):,} entr" in r.stderr
    assert bpftool_entries(again) == bpftool_entries(pin)
    assert bpftool_show(again) == bpftool_show(pin)
    with Map.open(again) as m:
        assert m.btf() is not None  # with its BTF: dumps decode as the saved map's did
    assert cli_ok("dump", again, "--sort", "key").stdout == cli_ok("dump", file, "--sort", "key").stdout


def test_restore_never_replaces_a_pin_nor_follows_a_symlink(pindir, tmp_path):
    pin = create_pin(pindir, "counts", "hash", "--layout", "u32:u64")
    fill_pin(pin, [(1, 1)])
    file = str(tmp_path / "c.bpfmap")
    cli_ok("save", pin, file)
    with Map.open(pin) as m:
        before = m.id
    r = run_cli("restore", file, "--pin", pin)
    assert r.returncode == 3 and "never replaces a pin" in r.stderr
    link = os.path.join(pindir, "link")
    os.symlink(os.path.join(pindir, "nowhere"), link)
    r = run_cli("restore", file, "--pin", link)
    assert r.returncode == 3 and "symlink" in r.stderr
    assert not os.path.exists(os.path.join(pindir, "nowhere"))
    with Map.open(pin) as m:
        assert m.id == before


def saved_beyond_room(path: str, name: str, map_type: int, max_entries: int, count: int) -> str:
    """A saved file of a u32 -> u64 map of ``map_type`` that claims room for
    ``max_entries`` and holds ``count`` entries (keys 0..count-1, values zero)."""
    meta = {"type": map_type, "key_size": 4, "value_size": 8, "max_entries": max_entries, "flags": 0, "map_extra": 0}
    with Writer(path) as w:
        w.host({})
        w.begin({**meta, "name": name, "ncpus": 1, "value_stride": 8, "pinned": []})
        w.batch(b"".join(struct.pack("<I", i) for i in range(count)), bytes(8 * count), count)
        w.end()
    return path


def test_a_restore_that_fails_half_way_leaves_no_pin_and_says_how_many_went_in(pindir, tmp_path):
    path = saved_beyond_room(str(tmp_path / "big.bpfmap"), "big", 1, 3, 5)  # a hash: five entries, room for three
    target = os.path.join(pindir, "big")
    r = run_cli("restore", path, "--pin", target)
    assert r.returncode == 3, r.stderr
    assert "3 of 5 entries went in, nothing was pinned" in r.stderr
    assert not os.path.lexists(target)


def test_a_restore_into_an_lru_map_that_evicts_says_so_and_pins_nothing(pindir, tmp_path):
    """An LRU map makes room by evicting, without an error (even before it holds
    max_entries): a restore reads the new map back, and one that lost entries is not
    pinned; restore --into a larger map takes them all."""
    path = saved_beyond_room(str(tmp_path / "lru.bpfmap"), "lru", 9, 64, 200)  # an LRU map: 200, room for 64
    target = os.path.join(pindir, "lru")
    r = run_cli("restore", path, "--pin", target)
    assert r.returncode == 3, r.stderr
    assert "200 entries written, but the new map holds" in r.stderr and "nothing was pinned" in r.stderr, r.stderr
    assert not os.path.lexists(target)
    big = create_pin(pindir, "big", "lru_hash", "--key", "4", "--value", "8", "--max-entries", "100000")
    r = run_cli("restore", path, "--into", big)
    assert r.returncode == 0, r.stderr
    with Map.open(big) as m:
        assert len(list(m.keys())) == 200


def test_a_missing_pin_directory_is_refused_before_a_map_is_made_or_made_with_mkdir(pindir, tmp_path):
    pin = create_pin(pindir, "counts", "hash", "--layout", "u32:u64")
    fill_pin(pin, [(1, 7)])
    file = str(tmp_path / "c.bpfmap")
    cli_ok("save", pin, file)
    deep = os.path.join(pindir, "a", "b")
    r = run_cli("restore", file, "--pin", f"{deep}/c")
    assert r.returncode == 2
    assert (
        r.stderr
        == f"bpfmap: pin {deep}/c: directory {deep} does not exist; create it (mkdir -p {deep}) or pass --mkdir\n"
    )
    r = run_cli("restore", file, "--pin-dir", deep)
    assert r.returncode == 2
    assert (
        r.stderr
        == f"bpfmap: restore --pin-dir {deep}: directory {deep} does not exist; create it (mkdir -p {deep}) or pass --mkdir\n"
    )
    assert not os.path.exists(os.path.join(pindir, "a"))
    cli_ok("restore", file, "--pin", f"{deep}/c", "--mkdir")
    assert cli_ok("dump", f"{deep}/c").stdout == "1\t7\n"
    cli_ok("restore", file, "--pin-dir", f"{pindir}/d/e", "--mkdir")
    assert cli_ok("dump", f"{pindir}/d/e/counts").stdout == "1\t7\n"
    # Python: the directory is checked before the map is made (this file's restore would
    # fail filling it, after making it), and mkdir makes it
    big = str(tmp_path / "big.bpfmap")
    meta = {"type": 1, "key_size": 4, "value_size": 8, "max_entries": 3, "flags": 0, "map_extra": 0}
    with Writer(big) as w:
        w.host({})
        w.begin({**meta, "name": "big", "ncpus": 1, "value_stride": 8, "pinned": []})
        w.batch(b"".join(struct.pack("<I", i) for i in range(5)), bytes(40), 5)
        w.end()
    with pytest.raises(bpfmap.UsageError, match=r"does not exist; create it \(mkdir -p .*\) or pass mkdir$"):
        bpfmap.restore(big, pin=f"{pindir}/f/g")
    report = bpfmap.restore(file, pin=f"{pindir}/f/g", mkdir=True)
    assert report.maps == [(f"{pindir}/f/g", 1)]


def test_restore_into_an_existing_map_converts_and_keeps_its_pin(pindir, tmp_path):
    src = create_pin(pindir, "src", "hash", "--layout", "u32:u32")
    fill_pin(src, [(i, i * 2) for i in range(10)])
    file = str(tmp_path / "s.bpfmap")
    cli_ok("save", src, file)
    dst = create_pin(pindir, "dst", "hash", "--layout", "u32:u64")  # wider values: converted
    fill_pin(dst, [(100, 1)])
    with Map.open(dst) as m:
        before = m.id
    r = cli_ok("restore", file, "--into", dst)
    assert "10 entries" in r.stderr
    assert json.loads(cli_ok("lookup", dst, "7", "-o", "json").stdout)["value"] == 14
    assert cli_ok("count", dst).stdout.strip() == "11"
    with Map.open(dst) as m:
        assert m.id == before
    small = create_pin(pindir, "small", "hash", "--layout", "u32:u32", "--max-entries", "4")
    r = run_cli("restore", file, "--into", small)
    assert r.returncode == 2 and "holds at most 4" in r.stderr
    assert run_cli("count", small).returncode == 1  # nothing written


def test_a_map_of_maps_restores_with_its_inner_maps(pindir, tmp_path):
    inner = create_pin(pindir, "inner", "array", "--layout", "u32:u32", "--max-entries", "4")
    outer = os.path.join(pindir, "outer")
    cli_ok("create", "hash_of_maps", "--key", "4", "--inner-map", inner, "--pin", outer, "-q")
    with Map.open(outer) as o:
        for slot in (1, 2):
            with Map.create("array", 4, 4, 4) as m:
                m.update(struct.pack("<I", 0), struct.pack("<I", slot * 10))
                o.update(struct.pack("<I", slot), m)
    file = str(tmp_path / "mom.bpfmap")
    cli_ok("save", outer, file)
    again = os.path.join(pindir, "outer_again")
    cli_ok("restore", file, "--pin", again)
    with Map.open(again) as o:
        assert o.type is bpfmap.MapType.HASH_OF_MAPS
        for key in o.keys():
            inner_id = int.from_bytes(o.lookup(key), "little")
            with Map.open(f"id:{inner_id}") as m:
                assert m.lookup(struct.pack("<I", 0)) == struct.pack("<I", int.from_bytes(key, "little") * 10)


def test_a_frozen_map_is_restored_frozen(pindir, tmp_path):
    pin = create_pin(pindir, "ro", "array", "--layout", "u32:u64", "--max-entries", "2")
    fill_pin(pin, [(0, 5), (1, 6)])
    cli_ok("freeze", pin)
    file = str(tmp_path / "ro.bpfmap")
    cli_ok("save", pin, file)
    again = os.path.join(pindir, "ro_again")
    cli_ok("restore", file, "--pin", again)
    shown = json.loads(cli_ok("show", again, "-o", "json").stdout)
    assert shown["frozen"] is True
    assert cli_ok("dump", again).stdout == cli_ok("dump", pin).stdout


def test_per_cpu_values_from_another_cpu_count_need_to_be_told_how(pindir, tmp_path):
    path = str(tmp_path / "cpus.bpfmap")
    spec = spec_for(SCALARS["u32"], SCALARS["u64"])
    ncpus = bpfmap.possible_cpus() + 2
    meta = {"type": 5, "key_size": 4, "value_size": 8, "max_entries": 16, "flags": 0, "map_extra": 0}
    with Writer(path) as w:
        w.host({})
        meta.update(name="pc", ncpus=ncpus, value_stride=8, pinned=[])
        meta["btf"] = {"key_type_id": spec.key_type_id, "value_type_id": spec.value_type_id}
        w.begin(meta, spec.data)
        w.batch(struct.pack("<I", 1), b"".join(struct.pack("<Q", c + 1) for c in range(ncpus)), 1)
        w.end()
    target = os.path.join(pindir, "pc")
    r = run_cli("restore", path, "--pin", target)
    assert r.returncode == 2 and f"{ncpus} possible CPUs" in r.stderr and "sum" in r.stderr
    assert not os.path.lexists(target)
    cli_ok("restore", path, "--pin", target, "--cpus", "sum")
    values = json.loads(cli_ok("lookup", target, "1", "-o", "json").stdout)["values"]
    assert values[0] == sum(range(1, ncpus + 1)) and not any(values[1:])
    r = run_cli("restore", path, "--pin", target + "2", "--cpus", "first")
    assert r.returncode == 2 and "drop" in r.stderr


def test_diff_exit_codes_and_output(pindir, tmp_path):
    pin = create_pin(pindir, "flows", "hash", "--layout", "u32:packets=u64,comm=char[8]")
    fill_pin(pin, [(i, (i, f"c{i}")) for i in range(6)])
    file = str(tmp_path / "f.bpfmap")
    cli_ok("save", pin, file)
    r = cli_ok("diff", file, pin)
    assert r.stdout == "" and "0 added, 0 removed, 0 changed, 6 the same" in r.stderr
    fill_pin(pin, [(1, (100, "c1")), (9, (9, "new"))])
    with bpfmap.open(pin) as v:
        del v[2]
    r = run_cli("diff", file, pin)
    assert r.returncode == 1, r.stderr
    *in_b, removed = r.stdout.splitlines()  # B's entries in B's order, then what only A has
    assert sorted(in_b) == ["+ 9\tpackets=9,comm=new", "~ 1\tpackets: 1 -> 100"]
    assert removed == "- 2\tpackets=2,comm=c2"
    assert "1 added, 1 removed, 1 changed, 4 the same" in r.stderr
    r = run_cli("diff", file, pin, "-o", "jsonl", "--where", "packets>=50")
    assert r.returncode == 1
    assert [json.loads(x) for x in r.stdout.splitlines()] == [
        {
            "op": "changed",
            "key": 1,
            "old": {"packets": 1, "comm": "c1"},
            "new": {"packets": 100, "comm": "c1"},
            "fields": {"packets": [1, 100]},
        }
    ]
    r = run_cli("diff", file, os.path.join(pindir, "missing"))
    assert r.returncode == 3 and "Traceback" not in r.stderr
    other = create_pin(pindir, "other", "hash", "--layout", "u64:u64")
    r = run_cli("diff", file, other)
    assert r.returncode == 2 and "cannot be compared" in r.stderr
    bad = tmp_path / "bad.bpfmap"
    bad.write_bytes(open(file, "rb").read()[:-5])
    r = run_cli("diff", str(bad), pin)
    assert r.returncode == 2 and "Traceback" not in r.stderr
