"""BTF without maps: the wire format read and written, the layout model through BTF and back, the running kernel's vmlinux (and split) BTF parsed (/sys/kernel/btf is readable by anyone)."""

from __future__ import annotations

import json
import os
import random
import subprocess

import pytest
from helpers.layouts import random_side

from bpfmap.btf import BTF, Kind, c_declaration, to_model, vmlinux
from bpfmap.btf.convert import build_btf
from bpfmap.layout.lang import parse_side
from bpfmap.layout.model import Struct

VMLINUX = "/sys/kernel/btf/vmlinux"


needs_vmlinux = pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no /sys/kernel/btf/vmlinux")


@needs_vmlinux
def test_vmlinux_parses_fully():
    btf = vmlinux()
    assert len(btf) > 10000
    kinds = set()
    for tid in btf.ids():
        t = btf.type(tid)
        kinds.add(t.kind)
        if t.kind in (Kind.STRUCT, Kind.UNION):
            for m in t.members:
                assert m.type < btf.count
    assert {
        Kind.INT,
        Kind.PTR,
        Kind.ARRAY,
        Kind.STRUCT,
        Kind.UNION,
        Kind.ENUM,
        Kind.TYPEDEF,
        Kind.FUNC,
        Kind.FUNC_PROTO,
    } <= kinds


@needs_vmlinux
@pytest.mark.parametrize("name", ["task_struct", "sk_buff", "iphdr", "bpf_map"])
def test_struct_sizes_match_bpftool(name, bpftool):
    out = subprocess.run(
        [bpftool, "-j", "btf", "dump", "file", VMLINUX], capture_output=True, text=True, check=True
    ).stdout
    theirs = next(t for t in json.loads(out)["types"] if t["kind"] == "STRUCT" and t["name"] == name)
    ours = vmlinux().find(name, Kind.STRUCT)
    assert (ours.id, ours.size, len(ours.members)) == (theirs["id"], theirs["size"], theirs["vlen"])
    assert [m.name or "(anon)" for m in ours.members] == [m["name"] for m in theirs["members"]]
    assert [m.bit_offset for m in ours.members] == [m["bits_offset"] for m in theirs["members"]]
    model = to_model(vmlinux(), ours.id)
    assert model.size == ours.size


@needs_vmlinux
def test_bitfields_and_anonymous_unions_decode():
    btf = vmlinux()
    iphdr = btf.find("iphdr", Kind.STRUCT)
    from bpfmap.layout import TypeCodec

    codec = TypeCodec(to_model(btf, iphdr.id))
    raw = bytes([0x45, 0, 0, 60, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    got = codec.decode(raw)
    assert (got["ihl"], got["version"], got["ttl"], got["protocol"]) == (5, 4, 64, 6)
    assert got["tot_len"] == 60  # __be16 decodes in network order
    assert got["saddr"] == 0x0A000001
    assert codec.encode(got) == raw
    text = c_declaration(btf, iphdr.id)
    assert "struct iphdr {" in text and "__u8 ihl: 4;" in text and "__be32 saddr;" in text


def test_model_to_btf_and_back_keeps_every_offset():
    rng = random.Random(7)
    for _ in range(60):
        t = parse_side(("packed " if rng.random() < 0.3 else "") + random_side(rng))
        blob, kid, _ = build_btf(t, None)
        back = to_model(BTF(blob), kid)
        assert back.size == t.size
        if isinstance(t, Struct):
            want = [(f.name, f.offset) for f in t.fields if f.name]
            assert [(f.name, f.offset) for f in back.fields] == want


@needs_vmlinux
def test_split_btf_on_vmlinux_is_detected_and_decoded():
    """A BTF blob that continues vmlinux's ids and strings (as module BTF does)."""
    import struct as st

    from bpfmap.btf import parse_btf

    base = vmlinux()
    int_id = base.find("int", Kind.INT).id
    uint_id = base.find("unsigned int", Kind.INT).id
    s0 = base.total_str_len
    strings = b"pair\0a\0b\0"
    types = (
        st.pack("<III", s0, (4 << 24) | 2, 8)
        + st.pack("<III", s0 + 5, int_id, 0)
        + st.pack("<III", s0 + 7, uint_id, 32)
    )
    blob = st.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)) + types + strings
    btf = parse_btf(blob)
    assert btf.base is base and btf.first_id == base.count
    pair = btf.type(base.count)
    assert (pair.name, [m.name for m in pair.members]) == ("pair", ["a", "b"])
    model = to_model(btf, pair.id)
    assert [(f.name, f.offset, f.type.c_name()) for f in model.fields] == [("a", 0, "s32"), ("b", 4, "u32")]
    assert "struct pair {" in c_declaration(btf, pair.id) and "int a;" in c_declaration(btf, pair.id)
    # a closed blob stays standalone
    own, kid, _ = build_btf(parse_side("x=u32,y=u8"), None)
    assert parse_btf(own).base is None
