"""Layouts: meaning for the bytes of keys and values.

A Layout holds one codec for the key and one for the value.  A codec turns bytes
into a Python value (``decode``) and back (``encode``), reads the text a user
types (``parse``) and writes the text a user reads (``format``).

This module knows the scalar part of the layout language: ``KEY:VALUE``, each side
comma-separated fields ``[name=]type`` with u8..u64 / s8..s64 (i8..i64) scalars,
laid out with C alignment.  One field decodes to a bare number, several to a dict.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass

from ..errors import UsageError

_SCALARS = {
    "u8": ("B", 1), "u16": ("H", 2), "u32": ("I", 4), "u64": ("Q", 8),
    "s8": ("b", 1), "s16": ("h", 2), "s32": ("i", 4), "s64": ("q", 8),
    "i8": ("b", 1), "i16": ("h", 2), "i32": ("i", 4), "i64": ("q", 8),
}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Codec:
    """bytes <-> Python values for one side (key or value) of a map."""

    size: int

    def decode(self, data: bytes) -> object:
        raise NotImplementedError

    def encode(self, value: object) -> bytes:
        raise NotImplementedError

    def parse(self, text: str) -> bytes:
        raise NotImplementedError

    def format(self, value: object) -> str:
        raise NotImplementedError

    def check_size(self, size: int, what: str) -> None:
        """Raise UsageError when this codec does not fit ``size`` bytes."""


class HexCodec(Codec):
    """Raw bytes as hex, the fallback when nothing gives meaning."""

    def __init__(self, size: int) -> None:
        self.size = size

    def decode(self, data: bytes) -> str:
        return data.hex(" ")

    def format(self, value: object) -> str:
        return str(value)

    def encode(self, value: object) -> bytes:
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, str):
            data = parse_hex(value)
        else:
            raise UsageError(f"expected hex bytes such as '01 00 00 00', got {value!r}")
        return self._sized(data)

    def parse(self, text: str) -> bytes:
        return self._sized(parse_hex(text))

    def _sized(self, data: bytes) -> bytes:
        if len(data) != self.size:
            raise UsageError(f"{len(data)} bytes given, {self.size} expected; give hex bytes "
                             f"such as '{' '.join(['00'] * min(self.size, 8))}' or use --layout")
        return data


def parse_hex(text: str) -> bytes:
    """``01 00 00 00``, ``0x01000000``, ``01:00:00:00`` (or ``-`` separated) -> bytes."""
    s = text.strip()
    if s.lower().startswith("0x"):
        s = s[2:]
    tokens = re.split(r"[\s:\-]+", s) if re.search(r"[\s:\-]", s) else [s]
    out = bytearray()
    for tok in tokens:
        if not tok:
            continue
        if len(tok) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", tok):
            raise UsageError(f"bad hex bytes {text!r}: write two hex digits per byte, e.g. "
                             f"'01 00 00 00' or 0x01000000 (numbers need --layout, e.g. --layout u32:u64)")
        out += bytes.fromhex(tok)
    return bytes(out)


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    fmt: str
    size: int
    offset: int


class StructCodec(Codec):
    """A C struct of scalar fields, aligned as the C compiler does on this machine."""

    def __init__(self, fields: list[tuple[str, str]], packed: bool = False, scalar: bool = False) -> None:
        laid: list[Field] = []
        offset = 0
        align_max = 1
        fmt = "="
        for name, typ in fields:
            code, size = _SCALARS[typ]
            align = 1 if packed else size
            pad = -offset % align
            if pad:
                fmt += f"{pad}x"
            offset += pad
            laid.append(Field(name, typ, code, size, offset))
            fmt += code
            offset += size
            align_max = max(align_max, align)
        tail = -offset % align_max
        if tail:
            fmt += f"{tail}x"
        self.fields = laid
        self.size = offset + tail
        self._struct = struct.Struct(fmt)
        # One unnamed field (``u32``) reads as a bare number; a named one stays a struct.
        self.scalar = scalar and len(laid) == 1

    def describe(self) -> str:
        parts = [f"{f.name}={f.type}@{f.offset}" for f in self.fields]
        return f"{{{', '.join(parts)}}} ({self.size} bytes)"

    def check_size(self, size: int, what: str) -> None:
        if size != self.size:
            raise UsageError(f"layout for the {what} is {self.size} bytes but the map's {what} is {size} bytes; "
                             f"fields: {self.describe()}")

    def decode(self, data: bytes) -> object:
        vals = self._struct.unpack(data)
        if self.scalar:
            return vals[0]
        return {f.name: v for f, v in zip(self.fields, vals)}

    def format(self, value: object) -> str:
        if isinstance(value, dict):
            return ",".join(f"{k}={v}" for k, v in value.items())
        return str(value)

    def encode(self, value: object) -> bytes:
        if isinstance(value, dict):
            names = [f.name for f in self.fields]
            unknown = set(value) - set(names)
            if unknown:
                raise UsageError(f"unknown field(s) {', '.join(sorted(unknown))}; fields are {', '.join(names)}")
            missing = [n for n in names if n not in value]
            if missing:
                raise UsageError(f"missing field(s) {', '.join(missing)}")
            items = [value[n] for n in names]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        if len(items) != len(self.fields):
            raise UsageError(f"{len(items)} field(s) given, the layout has {len(self.fields)}: "
                             f"{', '.join(f.name for f in self.fields)}")
        nums = [_int_for(f, v) for f, v in zip(self.fields, items)]
        return self._struct.pack(*nums)

    def parse(self, text: str) -> bytes:
        s = text.strip()
        if s.startswith(("{", "[")):
            try:
                return self.encode(json.loads(s))
            except json.JSONDecodeError as err:
                raise UsageError(f"bad JSON {text!r}: {err.msg}") from None
        parts = [p.strip() for p in s.split(",")] if s else []
        if parts and all("=" in p for p in parts):
            return self.encode(dict(p.split("=", 1) for p in parts))
        return self.encode(parts)


def _int_for(f: Field, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError(f"field {f.name} ({f.type}): expected a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip().replace("_", ""), 0)
        except ValueError:
            raise UsageError(f"field {f.name} ({f.type}): {value!r} is not a number") from None
    bits = f.size * 8
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if f.fmt.islower() else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        raise UsageError(f"field {f.name} ({f.type}): {value} is out of range {lo}..{hi}")
    return value


class IdCodec(Codec):
    """A u32 kernel object id: values of maps of maps and prog_array as user space reads them."""

    size = 4

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def decode(self, data: bytes) -> int:
        return int.from_bytes(data, "little")

    def format(self, value: object) -> str:
        return str(value)

    def encode(self, value: object) -> bytes:
        raise UsageError(f"a {self.kind} value is written as a {self.kind} reference (pin path or id:N)")

    parse = encode


def parse_side(text: str, packed: bool = False) -> StructCodec | None:
    """One side of ``KEY:VALUE``; None for ``-`` or empty (raw hex)."""
    s = text.strip()
    if s.startswith("packed "):
        packed, s = True, s[len("packed "):].strip()
    if s in ("", "-"):
        return None
    fields: list[tuple[str, str]] = []
    named = False
    for i, part in enumerate(p.strip() for p in s.split(",")):
        name, eq, typ = part.rpartition("=")
        named = named or bool(eq)
        name = name.strip() if eq else f"f{i}"
        typ = typ.strip().lower()
        if typ not in _SCALARS:
            raise UsageError(f"layout {text!r}: unknown type {typ!r} in field {i}; "
                             f"known: {', '.join(_SCALARS)}")
        if not _NAME_RE.match(name):
            raise UsageError(f"layout {text!r}: bad field name {name!r}")
        if name in (n for n, _ in fields):
            raise UsageError(f"layout {text!r}: field name {name!r} used twice")
        fields.append((name, typ))
    return StructCodec(fields, packed, scalar=not named)


@dataclass(frozen=True)
class Layout:
    """Codecs for the key and the value; either may be None (hex)."""

    key: Codec | None = None
    value: Codec | None = None
    bare: Codec | None = None  # a layout without ':', for maps without keys (queue, stack, bloom)

    @classmethod
    def parse(cls, text: str, packed: bool = False) -> "Layout":
        """``KEY:VALUE``, ``:VALUE`` or ``KEY:`` (the missing side is hex); a single
        ``VALUE`` with no ``:`` is for maps without keys."""
        key, sep, value = text.partition(":")
        if not sep:
            return cls(bare=parse_side(text, packed))
        return cls(parse_side(key, packed), parse_side(value, packed))


__all__ = ["Codec", "HexCodec", "IdCodec", "Layout", "StructCodec", "parse_hex"]
