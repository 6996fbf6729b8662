"""The saved-file format without the kernel: files written by core/saved.Writer read back
by SavedMap and by the CLI's readers, and every kind of damaged or hostile file refused
with exit 2 and one line naming what is wrong and where (never a traceback)."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from helpers import run_cli

from bpfmap.core import saved
from bpfmap.core.saved import FRAME, HEADER, SavedFileError, SavedMap, Writer
from bpfmap.errors import KeyNotFound, NotFound, UsageError

META = {
    "type": 1,
    "type_name": "hash",
    "key_size": 4,
    "value_size": 8,
    "max_entries": 64,
    "flags": 0,
    "map_extra": 0,
    "name": "counts",
    "id": 7,
    "frozen": False,
    "pinned": ["/sys/fs/bpf/counts"],
    "ncpus": 1,
    "value_stride": 8,
}


def write(path, entries=((1, 10), (2, 20), (3, 30)), meta=None, level=1, batches=1, maps=1):
    with Writer(str(path), level) as w:
        w.host({"host": "prod", "kernel": "6.1.0", "ncpus": 4})
        for i in range(maps):
            w.begin({**META, "name": f"m{i}" if maps > 1 else "counts", **(meta or {})})
            rows = list(entries)
            step = max(1, -(-len(rows) // batches))
            for at in range(0, len(rows), step):
                part = rows[at : at + step]
                w.batch(
                    b"".join(struct.pack("<I", k) for k, _ in part),
                    b"".join(struct.pack("<Q", v) for _, v in part),
                    len(part),
                )
            w.end()
    return str(path)


def frames(data: bytes):
    """(offset, tag, fields) of every frame."""
    pos, out = HEADER.size, []
    while pos < len(data):
        f = FRAME.unpack_from(data, pos)
        out.append((pos, f[0], f))
        pos += FRAME.size + f[5]
    return out


def refit(data: bytearray, pos: int) -> None:
    """Recompute the checksum of the frame at ``pos`` (a hostile file with valid checksums)."""
    stored = FRAME.unpack_from(data, pos)[5]
    crc = zlib.crc32(bytes(data[pos + FRAME.size : pos + FRAME.size + stored]), zlib.crc32(bytes(data[pos : pos + 32])))
    data[pos + 32 : pos + 36] = struct.pack("<I", crc)


def test_round_trip_reads_as_a_map(tmp_path):
    path = write(tmp_path / "f.bpfmap", [(k, k * 10) for k in range(1000)], batches=7)
    with SavedMap.open(path) as m:
        assert (m.key_size, m.value_size, m.max_entries, m.name, m.entries) == (4, 8, 64, "counts", 1000)
        assert m.lookup(struct.pack("<I", 500)) == struct.pack("<Q", 5000)
        with pytest.raises(KeyNotFound):
            m.lookup(struct.pack("<I", 5000))
        assert m.next_key() == struct.pack("<I", 0)
        assert m.next_key(struct.pack("<I", 142)) == struct.pack("<I", 143)  # across a batch's end
        with pytest.raises(NotFound):
            m.next_key(struct.pack("<I", 999))
        assert sum(c for _k, _v, c in m.batches(size=100)) == 1000
        with pytest.raises(UsageError, match="read-only"):
            m.update(b"\0" * 4, b"\0" * 8)


def test_the_cli_reads_a_saved_file_without_the_kernel(tmp_path):
    path = write(tmp_path / "f.bpfmap")
    r = run_cli("dump", path, "-l", "u32:u64", "-o", "jsonl")
    assert r.returncode == 0, r.stderr
    assert [json.loads(x) for x in r.stdout.splitlines()] == [{"key": k, "value": k * 10} for k in (1, 2, 3)]
    r = run_cli("lookup", path, "2", "-l", "u32:u64")
    assert (r.returncode, r.stdout.strip()) == (0, "20")
    r = run_cli("count", path, "--where", "value>=20", "-l", "u32:u64")
    assert (r.returncode, r.stdout.strip()) == (0, "2")
    r = run_cli("update", path, "1", "2", "-l", "u32:u64")
    assert r.returncode == 2 and "read-only" in r.stderr


def test_several_maps_are_named_file_colon_name(tmp_path):
    path = write(tmp_path / "f.bpfmap", maps=2)
    r = run_cli("count", path)  # a verb of one map
    assert r.returncode == 2 and "holds 2 maps (m0, m1)" in r.stderr
    assert run_cli("count", f"{path}:m1").stdout.strip() == "3"
    r = run_cli("count", f"{path}:nope")
    assert r.returncode == 1 and "holds no map 'nope'" in r.stderr


def test_compression_keeps_sequential_keys_smaller_than_their_bytes(tmp_path):
    n = 100_000
    path = write(tmp_path / "f.bpfmap", [(k, k) for k in range(n)], batches=4)
    assert (tmp_path / "f.bpfmap").stat().st_size < n * 12
    raw = write(tmp_path / "raw.bpfmap", [(k, k) for k in range(n)], batches=4, level=0)
    header = (tmp_path / "raw.bpfmap").stat().st_size - n * 12
    assert 0 < header < 2048  # uncompressed: the bytes plus a small header
    with SavedMap.open(path) as a, SavedMap.open(raw) as b:
        assert list(a.items()) == list(b.items())


def expect_bad(path, *words):
    r = run_cli("dump", str(path))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    with pytest.raises(SavedFileError):  # on open, or on reading the entries (data is inflated as read)
        with SavedMap.open(str(path)) as m:
            list(m.items())


def test_a_truncated_file_is_refused_wherever_it_is_cut(tmp_path):
    data = open(write(tmp_path / "f.bpfmap", [(k, k) for k in range(500)], batches=3), "rb").read()
    cut = tmp_path / "cut.bpfmap"
    for at in sorted({13, HEADER.size, HEADER.size + 7, *(p for p, _t, _f in frames(data)), len(data) - 1}):
        cut.write_bytes(data[:at])
        expect_bad(cut)


def test_a_flipped_byte_fails_its_checksum(tmp_path):
    data = bytearray(open(write(tmp_path / "f.bpfmap", [(k, k) for k in range(500)]), "rb").read())
    pos = next(p for p, t, _f in frames(bytes(data)) if t == saved.DATA)
    data[pos + FRAME.size + 10] ^= 0x40
    (tmp_path / "bad.bpfmap").write_bytes(data)
    expect_bad(tmp_path / "bad.bpfmap", "checksum", f"at byte {pos:,}")


def test_every_byte_of_a_file_is_checked(tmp_path):
    """A change to any one byte of a saved file is refused when the file is read: no
    reserved or padding byte goes unchecked (a reader could not tell a damaged file).  The
    minor version is the exception: a newer minor version reads, by design."""
    data = open(write(tmp_path / "f.bpfmap", [(k, k) for k in range(3)]), "rb").read()
    bad = tmp_path / "bad.bpfmap"
    unnoticed = []
    minor = range(HEADER.size - 2, HEADER.size)
    for at in (i for i in range(len(data)) if i not in minor):
        changed = bytearray(data)
        changed[at] ^= 0xFF
        bad.write_bytes(changed)
        try:
            with SavedMap.open(str(bad)) as m:
                list(m.items())
        except SavedFileError:
            continue
        unnoticed.append(at)
    assert unnoticed == []


def test_counts_that_claim_more_than_the_file_holds(tmp_path):
    data = bytearray(open(write(tmp_path / "f.bpfmap", level=0), "rb").read())
    pos = next(p for p, t, _f in frames(bytes(data)) if t == saved.DATA)
    data[pos + 12 : pos + 16] = struct.pack("<I", 1_000_000)  # count
    refit(data, pos)
    (tmp_path / "count.bpfmap").write_bytes(data)
    expect_bad(tmp_path / "count.bpfmap", "claims 1,000,000 entries")
    data = bytearray(open(tmp_path / "f.bpfmap", "rb").read())
    data[pos + 24 : pos + 32] = struct.pack("<Q", 1 << 20)  # stored length past the end
    refit(data, pos)
    (tmp_path / "long.bpfmap").write_bytes(data)
    expect_bad(tmp_path / "long.bpfmap", "truncated")


def test_a_decompression_bomb_stops_at_its_declared_size(tmp_path):
    bomb = zlib.compress(bytes(1 << 26), 9)  # 64 MiB of zeros in ~65 KB
    path = tmp_path / "bomb.bpfmap"
    with Writer(str(path), 0) as w:
        w.host({})
        w.begin(META)
        w.batch(bytes(4), bytes(8), 1)
        w.end()
    data = bytearray(path.read_bytes())
    pos = next(p for p, t, _f in frames(bytes(data)) if t == saved.DATA)
    head = FRAME.pack(saved.DATA, saved.ZLIB, 0, 1, 12, len(bomb), 0)
    data[pos : pos + FRAME.size + 12] = head + bomb
    refit(data, pos)
    path.write_bytes(data)
    expect_bad(path, "decompresses to other than the 12 bytes")
    head = FRAME.pack(saved.DATA, saved.ZLIB, 0, 1 << 30, 1 << 40, len(bomb), 0)  # a claim past any limit
    data[pos : pos + FRAME.size] = head
    refit(data, pos)
    path.write_bytes(data)
    expect_bad(path, "more than such a frame may hold")


def test_a_btf_blob_that_does_not_parse(tmp_path):
    path = tmp_path / "btf.bpfmap"
    with Writer(str(path)) as w:
        w.host({})
        w.begin({**META, "btf": {"id": 3, "key_type_id": 1, "value_type_id": 2}}, b"\x9f\xeb\x01\x00" + bytes(40))
        w.end()
    expect_bad(path, "BTF does not parse")


def test_a_newer_major_version_says_so(tmp_path):
    data = bytearray(open(write(tmp_path / "f.bpfmap"), "rb").read())
    data[12:14] = struct.pack("<H", 2)
    (tmp_path / "new.bpfmap").write_bytes(data)
    expect_bad(tmp_path / "new.bpfmap", "format version 2.0", "newer bpfmap")


def test_hostile_descriptions(tmp_path):
    for bad in ({"key_size": -1}, {"value_size": "8"}, {"ncpus": 0}, {"value_stride": 4}, {"type": 1 << 40}):
        path = write(tmp_path / "m.bpfmap", meta=bad)
        expect_bad(path)


def test_a_file_that_is_not_saved_is_not_taken_for_one(tmp_path):
    other = tmp_path / "other"
    other.write_bytes(b"not a map")
    r = run_cli("dump", str(other))
    assert r.returncode in (2, 3) and "Traceback" not in r.stderr
    assert saved.split_ref(f"{other}:x") is None


def test_a_file_of_several_maps_reads_as_a_directory_of_them(tmp_path):
    """Verbs that read several maps read each map of the file, named FILE:NAME."""
    path = write(tmp_path / "f.bpfmap", maps=2)
    r = run_cli("dump", path, "-l", "u32:u64", "-o", "jsonl")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows == [{"map": f"{path}:m{i}", "key": k, "value": k * 10} for i in (0, 1) for k in (1, 2, 3)]
    r = run_cli("dump", path, "-l", "u32:u64")
    assert r.returncode == 0 and r.stdout.count("==> ") == 2 and f"==> {path}:m1 <==" in r.stdout
    r = run_cli("lookup", path, "2", "-l", "u32:u64", "-o", "jsonl")
    assert [json.loads(x)["map"] for x in r.stdout.splitlines()] == [f"{path}:m0", f"{path}:m1"]
    r = run_cli("show", path, "-o", "json")
    assert r.returncode == 0, r.stderr
    assert [m["name"] for m in json.loads(r.stdout)] == ["m0", "m1"]


def test_lookups_read_each_data_frame_once(tmp_path, monkeypatch):
    """Lookups and a key walk go through an index of the keys, not a scan per call."""
    from bpfmap.core.saved import SavedFile

    path = write(tmp_path / "f.bpfmap", [(k, k * 10) for k in range(3000)], batches=6)
    inflated = []
    real = SavedFile._inflate
    monkeypatch.setattr(
        SavedFile, "_inflate", lambda self, frame, payload: inflated.append(frame) or real(self, frame, payload)
    )
    with SavedMap.open(path) as m:
        inflated.clear()
        for k in range(0, 3000, 7):
            assert m.lookup(struct.pack("<I", k)) == struct.pack("<Q", k * 10)
        key, walked = None, []
        for _ in range(3000):
            key = m.next_key(key)
            walked.append(struct.unpack("<I", key)[0])
        with pytest.raises(NotFound):
            m.next_key(key)
        assert walked == list(range(3000))
        data = [f for f in inflated if f.tag == b"DATA"]
        assert len(data) <= 6 + 6 + 1 + 6  # the index, the lookups in key order, the walk
