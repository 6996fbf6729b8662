"""libbpf's fix-ups of an object's BTF before the kernel takes it (btf_fixup_datasec):
DATASEC sizes from the ELF sections, variable offsets from the symbols, extern
variables laid out as allocated ones."""

from __future__ import annotations

import struct
from typing import Any

from ..btf.wire import BTF, BtfType, Kind


class Damaged(Exception):
    """A size or offset in the file that cannot be right (the object is damaged)."""


def fix_datasecs(raw: bytearray, btf: BTF, sections: dict[str, Any], symbols: dict[tuple[int, str], int]) -> None:
    """As libbpf's btf_fixup_datasec: DATASEC sizes from the ELF sections and variable
    offsets from the symbols (clang leaves them 0); the kernel refuses a 0-size DATASEC.
    Extern variables (``__kconfig``) become allocated ones laid out one after another,
    as libbpf lays out its .kconfig map; the kernel refuses extern linkage."""
    for tid in btf.ids():
        t = btf.type(tid)
        if t.kind != Kind.DATASEC:
            continue
        if t.name not in sections:
            _fix_extern_datasec(raw, btf, t)
            continue
        idx, sec = sections[t.name]
        pos = btf.offset_of(tid)
        if sec["sh_size"] > 0xFFFFFFFF:
            raise Damaged(f"section {t.name!r} is {sec['sh_size']:,} bytes, more than BTF can describe")
        struct.pack_into("<I", raw, pos + 8, sec["sh_size"])
        for i, m in enumerate(t.members):
            var = btf.type(m.type)
            value = symbols.get((idx, var.name))
            if value is not None:
                if not 0 <= value <= sec["sh_size"]:
                    raise Damaged(f"symbol {var.name!r} at offset {value:,}, outside its section {t.name!r}")
                struct.pack_into("<I", raw, pos + 12 + 12 * i + 4, value)


def _fix_extern_datasec(raw: bytearray, btf: BTF, sec: BtfType) -> None:
    pos = btf.offset_of(sec.id)
    off = 0
    for i, m in enumerate(sec.members):
        var = btf.type(m.type)
        if var.kind != Kind.VAR:
            return  # extern functions (__ksym): left as they are; the BTF may then be refused
        size = btf.size_of(var.type)
        off = (off + min(size, 8) - 1) // min(size, 8) * min(size, 8) if size else off
        struct.pack_into("<I", raw, btf.offset_of(var.id) + 12, 1)  # BTF_VAR_GLOBAL_ALLOCATED
        struct.pack_into("<II", raw, pos + 12 + 12 * i + 4, off, size)
        off += size
    struct.pack_into("<I", raw, pos + 8, off)
