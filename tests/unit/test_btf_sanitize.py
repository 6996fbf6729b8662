"""BTF rewritten for older kernels as libbpf's bpf_object__sanitize_btf does: every type
id kept, each newer kind turned into one an older kernel takes, sizes unchanged."""

from __future__ import annotations

import struct

from bpfmap.btf.wire import BTF, Kind, sanitize

HDR = struct.Struct("<HBBIIIII")


def blob(decl_component: int = 0xFFFFFFFF) -> bytes:
    """u32 (1), a TYPE_TAG on it (2), float (3), an ENUM64 (4), struct v {tagged u32 a;
    float f; enum64 e;} (5), a DECL_TAG on v (6); ``decl_component``: the tag's member."""
    strings = bytearray(b"\0")

    def s(text: str) -> int:
        strings.extend(text.encode() + b"\0")
        return len(strings) - len(text) - 1

    def t(name: str, kind: int, vlen: int, size: int, kflag: int = 0) -> bytes:
        return struct.pack("<III", s(name) if name else 0, kind << 24 | kflag << 31 | vlen, size)

    types = t("u32", Kind.INT, 0, 4) + struct.pack("<I", 32)
    types += t("user", Kind.TYPE_TAG, 0, 1)
    types += t("float", Kind.FLOAT, 0, 4)
    types += (
        t("big", Kind.ENUM64, 2, 8, kflag=0) + struct.pack("<III", s("A"), 1, 0) + struct.pack("<III", s("B"), 0, 1)
    )
    types += t("v", Kind.STRUCT, 3, 16)
    types += struct.pack("<III", s("a"), 2, 0) + struct.pack("<III", s("f"), 3, 32) + struct.pack("<III", s("e"), 4, 64)
    types += t("hot", Kind.DECL_TAG, 0, 5) + struct.pack("<I", decl_component)
    return HDR.pack(0xEB9F, 1, 0, HDR.size, 0, len(types), len(types), len(strings)) + types + bytes(strings)


ALL = set(Kind) & {Kind.ENUM64, Kind.TYPE_TAG, Kind.DECL_TAG, Kind.FLOAT}


def test_every_newer_kind_becomes_an_older_one_and_ids_and_sizes_stay():
    before = BTF(blob())
    after = BTF(sanitize(blob(), ALL) or b"")
    kinds = [after.type(i).kind for i in after.ids()]
    assert kinds == [Kind.INT, Kind.CONST, Kind.STRUCT, Kind.UNION, Kind.STRUCT, Kind.INT, Kind.INT]
    assert not {Kind.ENUM64, Kind.TYPE_TAG, Kind.DECL_TAG, Kind.FLOAT} & set(kinds)
    v0, v1 = before.type(5), after.type(5)
    assert (v1.name, v1.size) == (v0.name, v0.size) == ("v", 16)
    assert after.type(3).size == 4 and after.type(4).size == 8  # float and enum64: their bytes kept
    assert after.type(2).type == 1  # the tag's target, now const u32
    assert after.type(7).name == "enum64_placeholder" and after.type(7).size == 1


def test_one_level_rewrites_only_its_kind_and_nothing_to_do_is_none():
    only_tag = BTF(sanitize(blob(), {Kind.TYPE_TAG}) or b"")
    assert [only_tag.type(i).kind for i in only_tag.ids()] == [
        Kind.INT, Kind.CONST, Kind.FLOAT, Kind.ENUM64, Kind.STRUCT, Kind.DECL_TAG,
    ]  # fmt: skip
    plain = sanitize(blob(), {Kind.TYPE_TAG}) or b""
    assert sanitize(plain, {Kind.TYPE_TAG}) is None
