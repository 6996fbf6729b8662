"""The BTF wire format (include/uapi/linux/btf.h): parse, and build.

Types are indexed by one pass over the type section and decoded on demand, so a
map's BTF and even vmlinux (100k+ types) open quickly.  Split BTF (a module's, or
any BTF referring to kernel types) continues the ids and strings of its base.
"""

from __future__ import annotations

import enum
import struct
from typing import Any

MAGIC = 0xEB9F
_HDR = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
_U32 = struct.Struct("<I")


class Kind(enum.IntEnum):
    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4


class BTFError(ValueError):
    pass


class _Plain:
    """Equality and repr from the public attributes (caches start with ``_``): what
    @dataclass gave, without importing dataclasses (~10 ms of every command that reads BTF)."""

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._fields() == self._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass is

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._fields().items())})"


class BtfMember(_Plain):
    def __init__(self, name: str, type: int, bit_offset: int, bit_size: int = 0) -> None:
        self.name, self.type, self.bit_offset = name, type, bit_offset
        self.bit_size = bit_size  # 0: not a bitfield


class BtfType(_Plain):
    def __init__(
        self, id: int, kind: Kind, name: str, size: int = 0, type: int = 0, kind_flag: bool = False, vlen: int = 0
    ) -> None:
        self.id, self.kind, self.name = id, kind, name
        self.size = size  # INT, STRUCT, UNION, ENUM*, FLOAT, DATASEC
        self.type = type  # PTR, TYPEDEF, CV, FUNC, VAR, DECL_TAG, TYPE_TAG; ARRAY: element
        self.kind_flag, self.vlen = kind_flag, vlen
        self.encoding = self.bits = self.int_offset = 0  # INT
        self.index_type = self.nelems = 0  # ARRAY
        # STRUCT/UNION, FUNC_PROTO params (name, type), DATASEC (type, offset, size)
        self.members: list[BtfMember] = []
        self.values: list[tuple[str, int]] = []  # ENUM/ENUM64
        self.params: list[tuple[str, int]] = []
        self.linkage = 0  # VAR: 0 static, 1 global, 2 extern


def _extra_len(kind: int, vlen: int) -> int:
    if kind in (Kind.INT, Kind.VAR, Kind.DECL_TAG):
        return 4
    if kind == Kind.ARRAY:
        return 12
    if kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM64):
        return 12 * vlen
    if kind in (Kind.ENUM, Kind.FUNC_PROTO):
        return 8 * vlen
    if kind == Kind.DATASEC:
        return 12 * vlen
    return 0


class BTF:
    """A parsed BTF blob; ``types(id)`` decodes type ``id`` (0 is void)."""

    count: int  # one past the last type id
    total_str_len: int  # string bytes of this blob and its base

    def __init__(self, data: bytes, base: BTF | None = None) -> None:
        if len(data) < _HDR.size:
            raise BTFError("BTF too short for its header")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(data, 0)
        if magic != MAGIC:
            raise BTFError(f"not BTF (magic {magic:#x}; big-endian BTF is not supported)")
        if version != 1:
            raise BTFError(f"BTF version {version} is not supported")
        t0, s0 = hdr_len + type_off, hdr_len + str_off
        if t0 + type_len > len(data) or s0 + str_len > len(data):
            raise BTFError("BTF sections run past the end of the data")
        self.data = data
        self.base = base
        self.strings = data[s0 : s0 + str_len]
        self.first_id = base.count if base is not None else 1
        self.str_base = base.total_str_len if base is not None else 0
        self.total_str_len = self.str_base + str_len
        offsets: list[int] = []
        pos, end = t0, t0 + type_len
        unpack = _TYPE.unpack_from
        while pos < end:
            if pos + 12 > end:
                raise BTFError(f"truncated type at byte {pos - t0}")
            _name, info, _size = unpack(data, pos)
            kind = (info >> 24) & 0x1F
            if kind > Kind.ENUM64:
                raise BTFError(f"unknown BTF kind {kind} at type {self.first_id + len(offsets)}")
            offsets.append(pos)
            pos += 12 + _extra_len(kind, info & 0xFFFF)
        if pos != end:
            raise BTFError("type section length does not match its types")
        self._offsets = offsets
        self.count = self.first_id + len(offsets)  # one past the last id
        self._cache: dict[int, BtfType] = {}

    # -- lookups --

    def string(self, off: int) -> str:
        if off < self.str_base:
            assert self.base is not None
            return self.base.string(off)
        off -= self.str_base
        if off >= len(self.strings):
            raise BTFError(f"string offset {off} out of range")
        end = self.strings.find(b"\0", off)
        return self.strings[off : end if end >= 0 else None].decode(errors="replace")

    def __len__(self) -> int:
        return self.count - 1

    def ids(self) -> range:
        """The ids this blob defines (not its base's)."""
        return range(self.first_id, self.count)

    def type(self, tid: int) -> BtfType:
        if tid == 0:
            return BtfType(0, Kind.UNKN, "void")
        if tid < self.first_id:
            if self.base is None:
                raise BTFError(f"type id {tid} out of range")
            return self.base.type(tid)
        hit = self._cache.get(tid)
        if hit is not None:
            return hit
        idx = tid - self.first_id
        if idx >= len(self._offsets):
            raise BTFError(
                f"type id {tid} out of range (this BTF has ids up to {self.count - 1}; split BTF needs its base)"
            )
        t = self._decode(tid, self._offsets[idx])
        self._cache[tid] = t
        return t

    def offset_of(self, tid: int) -> int:
        """Where type ``tid``'s record starts in ``data`` (for fix-ups in place)."""
        return self._offsets[tid - self.first_id]

    def find(self, name: str, kind: Kind | None = None) -> BtfType:
        """The first type called ``name`` (of ``kind``), searching this blob then its base."""
        for tid in self.ids():
            off = self._offsets[tid - self.first_id]
            name_off, info, _ = _TYPE.unpack_from(self.data, off)
            if (kind is None or (info >> 24) & 0x1F == kind) and name_off and self.string(name_off) == name:
                return self.type(tid)
        if self.base is not None:
            return self.base.find(name, kind)
        raise KeyError(name)

    def _decode(self, tid: int, pos: int) -> BtfType:
        d = self.data
        name_off, info, size_or_type = _TYPE.unpack_from(d, pos)
        kind = Kind((info >> 24) & 0x1F)
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        t = BtfType(tid, kind, self.string(name_off) if name_off else "", kind_flag=kflag, vlen=vlen)
        p = pos + 12
        if kind in (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FLOAT, Kind.DATASEC):
            t.size = size_or_type
        else:
            t.type = size_or_type
        if kind == Kind.INT:
            (v,) = _U32.unpack_from(d, p)
            t.encoding, t.int_offset, t.bits = (v >> 24) & 0x0F, (v >> 16) & 0xFF, v & 0xFF
        elif kind == Kind.ARRAY:
            t.type, t.index_type, t.nelems = struct.unpack_from("<III", d, p)
        elif kind in (Kind.STRUCT, Kind.UNION):
            for i in range(vlen):
                m_name, m_type, m_off = struct.unpack_from("<III", d, p + 12 * i)
                if kflag:
                    bit_size, bit_off = m_off >> 24, m_off & 0xFFFFFF
                else:
                    bit_size, bit_off = 0, m_off
                t.members.append(BtfMember(self.string(m_name) if m_name else "", m_type, bit_off, bit_size))
        elif kind == Kind.ENUM:
            fmt = "<Ii" if kflag else "<II"
            for i in range(vlen):
                n, v = struct.unpack_from(fmt, d, p + 8 * i)
                t.values.append((self.string(n), v))
        elif kind == Kind.ENUM64:
            for i in range(vlen):
                n, lo, hi = struct.unpack_from("<III", d, p + 12 * i)
                v = (hi << 32) | lo
                if kflag and v >> 63:
                    v -= 1 << 64
                t.values.append((self.string(n), v))
        elif kind == Kind.FUNC_PROTO:
            for i in range(vlen):
                n, pt = struct.unpack_from("<II", d, p + 8 * i)
                t.params.append((self.string(n) if n else "", pt))
        elif kind == Kind.VAR:
            (t.linkage,) = _U32.unpack_from(d, p)
        elif kind == Kind.DATASEC:
            for i in range(vlen):
                vt, off, sz = struct.unpack_from("<III", d, p + 12 * i)
                t.members.append(BtfMember("", vt, off * 8, sz))
        return t

    def resolve(self, tid: int) -> BtfType:
        """Follow typedefs and cv-qualifiers to the type that has the bytes."""
        for _ in range(64):
            t = self.type(tid)
            if t.kind not in (Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG):
                return t
            tid = t.type
        raise BTFError(f"type {tid}: typedef chain too long (a loop?)")

    def size_of(self, tid: int) -> int:
        t = self.resolve(tid)
        if t.kind in (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.FLOAT, Kind.DATASEC):
            return t.size
        if t.kind == Kind.PTR:
            return 8
        if t.kind == Kind.ARRAY:
            return t.nelems * self.size_of(t.type)
        raise BTFError(f"type {tid} ({t.kind.name.lower()} {t.name}) has no size")


_vmlinux: BTF | None = None


def vmlinux() -> BTF:
    """The kernel's own BTF (/sys/kernel/btf/vmlinux), read once."""
    global _vmlinux
    if _vmlinux is None:
        with open("/sys/kernel/btf/vmlinux", "rb") as f:
            _vmlinux = BTF(f.read())
    return _vmlinux


class Builder:
    """Build a BTF blob type by type (ids from 1), with a deduplicated string table."""

    def __init__(self) -> None:
        self._types: list[bytes] = []
        self._strings = bytearray(b"\0")
        self._str_index: dict[str, int] = {"": 0}
        self._memo: dict[tuple[Any, ...], int] = {}

    def string(self, s: str) -> int:
        off = self._str_index.get(s)
        if off is None:
            off = len(self._strings)
            self._strings += s.encode() + b"\0"
            self._str_index[s] = off
        return off

    def _add(
        self,
        memo_key: tuple[Any, ...] | None,
        name: str,
        kind: Kind,
        vlen: int,
        size_or_type: int,
        extra: bytes = b"",
        kind_flag: bool = False,
    ) -> int:
        if memo_key is not None and memo_key in self._memo:
            return self._memo[memo_key]
        info = (int(kind_flag) << 31) | (int(kind) << 24) | vlen
        self._types.append(_TYPE.pack(self.string(name), info, size_or_type) + extra)
        tid = len(self._types)
        if memo_key is not None:
            self._memo[memo_key] = tid
        return tid

    def int_(self, name: str, size: int, encoding: int = 0) -> int:
        return self._add(
            ("int", name, size, encoding), name, Kind.INT, 0, size, _U32.pack((encoding << 24) | (size * 8))
        )

    def float_(self, name: str, size: int) -> int:
        return self._add(("float", name, size), name, Kind.FLOAT, 0, size)

    def typedef(self, name: str, target: int) -> int:
        return self._add(("typedef", name, target), name, Kind.TYPEDEF, 0, target)

    def array(self, elem: int, nelems: int) -> int:
        index = self.int_("unsigned int", 4)
        return self._add(("array", elem, nelems), "", Kind.ARRAY, 0, 0, struct.pack("<III", elem, index, nelems))

    def enum(self, name: str, size: int, signed: bool, values: list[tuple[str, int]]) -> int:
        if size <= 4:
            extra = b"".join(struct.pack("<Ii" if signed else "<II", self.string(n), v) for n, v in values)
            return self._add(None, name, Kind.ENUM, len(values), size, extra, kind_flag=signed)
        extra = b"".join(struct.pack("<III", self.string(n), v & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF) for n, v in values)
        return self._add(None, name, Kind.ENUM64, len(values), size, extra, kind_flag=signed)

    def struct(self, name: str, size: int, members: list[tuple[str, int, int, int]], union: bool = False) -> int:
        """members: (name, type id, bit offset, bitfield size or 0)."""
        kflag = any(bs for _n, _t, _o, bs in members)
        extra = b"".join(
            struct.pack("<III", self.string(n), t, (bs << 24 | o) if kflag else o) for n, t, o, bs in members
        )
        return self._add(None, name, Kind.UNION if union else Kind.STRUCT, len(members), size, extra, kind_flag=kflag)

    def bytes(self) -> bytes:
        types = b"".join(self._types)
        strings = bytes(self._strings)
        return _HDR.pack(MAGIC, 1, 0, _HDR.size, 0, len(types), len(types), len(strings)) + types + strings


# -- for older kernels ------------------------------------------------------------------

# The kinds a kernel took last, newest first, as libbpf's bpf_object__sanitize_btf rewrites
# them for a kernel without them: each level adds one kind to the ones rewritten.
SANITIZE_LEVELS = (Kind.ENUM64, Kind.TYPE_TAG, Kind.DECL_TAG, Kind.FLOAT)
_PLACEHOLDER = "enum64_placeholder"


def sanitize(data: bytes, kinds: set[Kind] | frozenset[Kind]) -> bytes | None:
    """``data`` (standalone BTF) with the types of ``kinds`` rewritten as libbpf does for a
    kernel that lacks them, every type id kept: DECL_TAG -> a 1-byte INT, TYPE_TAG ->
    CONST, FLOAT -> an anonymous STRUCT of its size, ENUM64 -> a UNION of its size whose
    members are a 1-byte INT appended at the end (and ENUM's signedness flag cleared).
    None when the blob holds none of them.  Raises BTFError for a blob that does not parse."""
    btf = BTF(data)
    _magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(data, 0)
    t0 = hdr_len + type_off
    out = bytearray(data[t0 : t0 + type_len])
    strings = bytearray(data[hdr_len + str_off : hdr_len + str_off + str_len])
    changed, placeholder = False, 0
    for tid in btf.ids():
        pos = btf.offset_of(tid) - t0
        name_off, info, size = _TYPE.unpack_from(out, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if kind not in kinds and not (kind == Kind.ENUM and Kind.ENUM64 in kinds and info >> 31):
            continue
        changed = True
        if kind == Kind.DECL_TAG:
            _TYPE.pack_into(out, pos, 0, Kind.INT << 24, 1)
            struct.pack_into("<I", out, pos + 12, 8)  # BTF_INT_ENC(0, 0, 8)
        elif kind == Kind.TYPE_TAG:
            _TYPE.pack_into(out, pos, 0, Kind.CONST << 24, size)
        elif kind == Kind.FLOAT:
            _TYPE.pack_into(out, pos, 0, Kind.STRUCT << 24, size)
        elif kind == Kind.ENUM:
            _TYPE.pack_into(out, pos, name_off, info & 0x7FFFFFFF, size)
        else:  # ENUM64: its 12-byte values become 12-byte members of the same names
            placeholder = placeholder or btf.count
            _TYPE.pack_into(out, pos, name_off, Kind.UNION << 24 | vlen, size)
            for i in range(vlen):
                struct.pack_into("<II", out, pos + 12 + 12 * i + 4, placeholder, 0)
    if not changed:
        return None
    if placeholder:
        name = len(strings)
        strings += _PLACEHOLDER.encode() + b"\0"
        out += _TYPE.pack(name, Kind.INT << 24, 1) + struct.pack("<I", 8)
    head = _HDR.pack(MAGIC, version, flags, _HDR.size, 0, len(out), len(out), len(strings))
    return head + bytes(out) + bytes(strings)
