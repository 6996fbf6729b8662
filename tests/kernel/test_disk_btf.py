"""A saved map's BTF that the kernel refuses is loaded rewritten as libbpf rewrites BTF
for older kernels (btf.wire.sanitize) before the map is made without BTF: the restored
map still decodes as the file does."""

from __future__ import annotations

import json
import os
import struct

import pytest
from conftest import run_cli

from bpfmap.btf import BtfSpec, load, load_sanitized
from bpfmap.btf.wire import Kind
from bpfmap.core.saved import Writer
from bpfmap.errors import BpfmapError

pytestmark = pytest.mark.kernel
HDR = struct.Struct("<HBBIIIII")


def tagged_btf(component: int) -> bytes:
    """u32 (1), TYPE_TAG "user" on it (2), struct v {tagged u32 a; u32 b;} (3), a
    DECL_TAG on v's member ``component`` (4): past its members, the kernel refuses it."""
    strings = bytearray(b"\0")

    def s(text: str) -> int:
        strings.extend(text.encode() + b"\0")
        return len(strings) - len(text) - 1

    types = struct.pack("<III", s("u32"), Kind.INT << 24, 4) + struct.pack("<I", 32)
    types += struct.pack("<III", s("user"), Kind.TYPE_TAG << 24, 1)
    types += struct.pack("<III", s("v"), Kind.STRUCT << 24 | 2, 8)
    types += struct.pack("<III", s("a"), 2, 0) + struct.pack("<III", s("b"), 1, 32)
    types += struct.pack("<III", s("hot"), Kind.DECL_TAG << 24, 3) + struct.pack("<I", component)
    return HDR.pack(0xEB9F, 1, 0, HDR.size, 0, len(types), len(types), len(strings)) + types + bytes(strings)


def test_refused_btf_loads_sanitized(bpffs):
    good = BtfSpec(tagged_btf(1), 1, 3)
    os.close(load(good))
    bad = BtfSpec(tagged_btf(99), 1, 3)
    with pytest.raises(BpfmapError):
        os.close(load(bad))
    fd, note = load_sanitized(bad)
    os.close(fd)
    assert note and "DECL_TAG" in note and "TYPE_TAG" in note


def test_a_saved_file_with_btf_the_kernel_refuses_restores_with_its_btf(pindir, tmp_path):
    file = str(tmp_path / "tagged.bpfmap")
    meta = {
        "type": 1, "type_name": "hash", "key_size": 4, "value_size": 8, "max_entries": 16, "flags": 0,
        "map_extra": 0, "name": "tagged", "id": 0, "frozen": False, "pinned": [], "ncpus": 1, "value_stride": 8,
        "restore": "restore", "btf": {"key_type_id": 1, "value_type_id": 3, "source": "map"},
    }  # fmt: skip
    with Writer(file) as w:
        w.host({"host": "h", "kernel": "6.1", "ncpus": 1})
        w.begin(meta, tagged_btf(99))
        keys = struct.pack("<II", 1, 2)
        w.batch(keys, struct.pack("<IIII", 10, 11, 20, 21), 2)
        w.end()
    pin = os.path.join(pindir, "restored")
    r = run_cli("restore", file, "--pin", pin)
    assert r.returncode == 0, r.stderr
    assert "rewritten" in r.stderr and "without BTF" not in r.stderr
    restored = [json.loads(x) for x in run_cli("dump", pin, "-o", "jsonl").stdout.splitlines()]
    saved = [json.loads(x) for x in run_cli("dump", file, "-o", "jsonl").stdout.splitlines()]
    restored.sort(key=lambda e: e["key"])
    assert restored == saved == [{"key": 1, "value": {"a": 10, "b": 11}}, {"key": 2, "value": {"a": 20, "b": 21}}]
