"""Compile a model type into fast decode/encode functions.

decode(bytes) -> JSON-ready Python values (int, float, bool, str, list, dict);
encode(value) -> bytes, taking the same values or text (numbers as strings,
addresses in their usual notation); encode(decode(b)) == b for canonical bytes.
"""

from __future__ import annotations

import itertools
import math
import re
import struct
import sys
from collections.abc import Callable
from typing import Any

from ..errors import UsageError, quote
from .hexbytes import hex_bytes
from .leaves import CODES as _CODES
from .leaves import Leaf, enum_names, unpacking
from .model import Array, Bytes, Char, Enum, Field, Formatted, Pad, Scalar, Struct, Type

Decoder = Callable[[bytes, int], Any]
Encoder = Callable[[bytearray, int, Any, str], None]


# -- decoding: one rule per leaf type, from which every decoder is made ----------------------
#
# A leaf (a number, enum, string, hex bytes, an address) decodes as a struct code and, where
# the unpacked item is not yet the value, a conversion expression over it.  A single value,
# a whole flat struct at once, and a batch of either are all generated from that rule.


def _generate(source: str, env: dict[str, Any], what: str) -> dict[str, Any]:
    """Run generated decoder ``source`` with ``env``; returns its namespace."""
    namespace = dict(env)
    exec(compile(source, f"<bpfmap decoder for {what}>", "exec"), namespace)
    return namespace


def _leaf_decoders(t: Type, leaf: Leaf) -> tuple[Decoder, Callable[[bytes, int], list[Any]]]:
    """(one value at an offset, ``count`` values back to back) for a leaf."""
    st = struct.Struct("=" + leaf.code)
    conv = "v[0]" if leaf.expr is None else leaf.expr.format(v="v[0]")
    ns = _generate(
        f"def one(buf, off):\n    v = _unpack_from(buf, off)\n    return {conv}\n"
        f"def many(buf, count):\n    return [{conv} for v in _iter(buf[:count * {t.size}])]\n",
        {**leaf.env, "_unpack_from": st.unpack_from, "_iter": st.iter_unpack},
        t.c_name(),
    )
    one, many = ns["one"], ns["many"]
    if leaf.expr is None and leaf.code in "BHIQbhiqfd":  # memoryview.cast takes these codes, at C speed
        n, code = t.size, leaf.code

        def many(buf: bytes, count: int) -> list[Any]:
            out: list[Any] = memoryview(buf)[: count * n].cast(code).tolist()  # type: ignore[call-overload]  # code is a struct code
            return out

    return one, many


def _decoder(t: Type) -> Decoder:
    """One value of leaf type ``t`` at an offset."""
    leaf = unpacking(t)
    assert leaf is not None, t
    return _leaf_decoders(t, leaf)[0]


class _NotWhole(Exception):
    """A type the whole-struct decoder does not take (bitfields, unions, anonymous members)."""


_MAX_LEAVES = 1024  # past this, a generated decoder is more code than it is worth


class _WholeStruct:
    """One struct.Struct over every leaf of a nested struct (structs in structs, arrays of
    leaves or structs), and the expression that builds the decoded value from its tuple."""

    def __init__(self) -> None:
        self.fmt, self.pos, self.n = "=", 0, 0
        self.env: dict[str, Any] = {}

    def _at(self, off: int) -> None:
        if off < self.pos:
            raise _NotWhole("overlapping fields")
        if off > self.pos:
            self.fmt += f"{off - self.pos}x"
        self.pos = off

    def add(self, t: Type, off: int) -> str:
        leaf = unpacking(t, str(self.n))
        if leaf is not None:
            self._at(off)
            self.fmt += leaf.code
            v = f"v[{self.n}]"
            self.n += 1
            self.env.update(leaf.env)
            self.pos = off + t.size
            if self.n > _MAX_LEAVES:
                raise _NotWhole("too many leaves")
            return v if leaf.expr is None else leaf.expr.format(v=v)
        if isinstance(t, Array):
            elem = unpacking(t.elem)
            if elem is not None and elem.expr is None and elem.code in "BHIQbhiqfd" and t.count:
                self._at(off)
                first = self.n
                self.fmt += f"{t.count}{elem.code}"
                self.n += t.count
                self.pos = off + t.size
                if self.n > _MAX_LEAVES:
                    raise _NotWhole("too many leaves")
                return f"list(v[{first}:{self.n}])"
            return "[" + ", ".join(self.add(t.elem, off + i * t.elem.size) for i in range(t.count)) + "]"
        if isinstance(t, Struct) and not t.union:
            parts = []
            for f in visible_fields(t):
                if f.bit_size is not None or not f.name:
                    raise _NotWhole("bitfield or anonymous member")
                parts.append(f"{f.name!r}: {self.add(f.type, off + f.offset)}")
            return "{" + ", ".join(parts) + "}"
        raise _NotWhole(type(t).__name__)


_WHOLE: dict[Type, tuple[Decoder, Callable[[bytes, int], list[Any]]] | None] = {}


def _whole_struct(t: Struct) -> tuple[Decoder, Callable[[bytes, int], list[Any]]] | None:
    """(one value at an offset, ``count`` values back to back) for a struct that nests
    structs and arrays (no bitfields, unions or anonymous members): one struct.Struct
    unpacks every leaf, generated code builds the nested dicts and lists.  The same values
    as decoding field by field (tests compare them on random nested layouts)."""
    if t in _WHOLE:
        return _WHOLE[t]
    gen = _WholeStruct()
    try:
        body = gen.add(t, 0)
        gen._at(t.size)
    except _NotWhole:
        _WHOLE[t] = None
        return None
    st = struct.Struct(gen.fmt)
    if st.size != t.size or not gen.n:
        _WHOLE[t] = None
        return None
    source = (
        f"def one(buf, off):\n    v = _unpack_from(buf, off)\n    return {body}\n"
        f"def many(buf, count):\n    return [{body} for v in _iter(buf[:count * {t.size}])]\n"
    )
    ns = _generate(source, {**gen.env, "_unpack_from": st.unpack_from, "_iter": st.iter_unpack}, t.c_name())
    _WHOLE[t] = (ns["one"], ns["many"])
    return _WHOLE[t]


def field_by_field(t: Struct) -> Decoder:
    """The decoder that reads a struct one field at a time, each through its own codec
    (what the generated decoders must agree with)."""
    return _struct_decoder(t, *_field_codecs(t))


def _fail(path: str, t: Type, msg: str) -> UsageError:
    if not path:
        return UsageError(f"{t.c_name()}: {msg}")
    return UsageError(f"field {path} ({t.c_name()}): {msg}")


# -- scalars -----------------------------------------------------------------------------


def _int_range(t: Scalar | Enum, bits: int | None = None) -> tuple[int, int]:
    bits = bits or t.size * 8
    if t.signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def to_int(value: Any, t: Type, path: str, bits: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        import json

        raise _fail(path, t, f"expected a number, got {json.dumps(value) if _jsonable(value) else repr(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise _fail(path, t, f"{value} is not a whole number")
        value = int(value)
    if isinstance(value, str):
        s = value.strip().replace("_", "")
        try:
            value = int(s, 0)
        except ValueError:
            if s.lstrip("+-").isdigit() and len(s) > 4000:  # past str->int's digit limit
                raise _fail(path, t, f"{_q(value)} has more digits than any integer field holds") from None
            raise _fail(path, t, f"{_q(value)} is not a number") from None
    lo, hi = _int_range(t, bits)  # type: ignore[arg-type]
    if not lo <= value <= hi:
        raise _fail(path, t, f"{_q(value, plain=True)} is out of range {lo}..{hi}")
    return int(value)


def _q(v: Any, plain: bool = False) -> str:
    """A value the user gave, for an error about one field: quoted (``plain``: as
    str() shows it), cut to 40 characters when longer (the whole input is quoted once,
    by the caller)."""
    if isinstance(v, int) and v.bit_length() > 4000:  # str() refuses ints past 4300 digits
        return f"a {v.bit_length()}-bit number"
    if plain or not isinstance(v, str):
        return quote(str(v) if plain else repr(v), limit=40, bare=True)
    return quote(v, limit=40)


def _jsonable(v: Any) -> bool:
    import json

    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def _scalar(t: Scalar) -> tuple[Decoder, Encoder]:
    if t.size == 16:
        order = "big" if t.order == ">" else "little" if t.order == "<" else sys.byteorder

        def enc128(buf: bytearray, off: int, v: Any, path: str) -> None:
            buf[off : off + 16] = to_int(v, t, path).to_bytes(16, order, signed=t.kind == "int")

        return _decoder(t), enc128
    pack_into = struct.Struct(t.order + _CODES[(t.kind, t.size)]).pack_into
    dec = _decoder(t)

    if t.kind == "float":

        def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
            if isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    raise _fail(path, t, f"{_q(v)} is not a number") from None
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _fail(path, t, f"expected a number, got {_q(v)}")
            if t.size == 4 and math.isfinite(v) and abs(v) > 3.4028234663852886e38:
                raise _fail(path, t, f"{_q(v, plain=True)} is out of range for f32")
            pack_into(buf, off, v)
    elif t.kind == "bool":

        def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
            if isinstance(v, str):
                low = v.strip().lower()
                if low in ("true", "1", "yes"):
                    v = True
                elif low in ("false", "0", "no"):
                    v = False
            if not isinstance(v, bool) and v not in (0, 1):
                raise _fail(path, t, f"expected true or false, got {_q(v)}")
            pack_into(buf, off, bool(v))
    else:

        def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
            pack_into(buf, off, to_int(v, t, path))

    return dec, enc


def _enum(t: Enum) -> tuple[Decoder, Encoder]:
    st = struct.Struct("=" + _CODES[("int" if t.signed else "uint", t.size)])
    by_name = dict(t.values)
    dec = _decoder(t)

    def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
        if isinstance(v, str) and v.strip() in by_name:
            v = by_name[v.strip()]
        elif isinstance(v, str) and not re.fullmatch(r"\s*-?(0x[0-9a-fA-F_]+|[0-9_]+)\s*", v):
            raise _fail(path, t, f"{_q(v)} is not one of {', '.join(by_name) or 'its values'}")
        st.pack_into(buf, off, to_int(v, t, path))

    return dec, enc


# -- formatted ---------------------------------------------------------------------------


def _char(t: Char) -> tuple[Decoder, Encoder]:
    n = t.size
    dec = _decoder(t)

    def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
        if not isinstance(v, str):
            raise _fail(path, t, f"expected a string, got {_q(v)}")
        try:
            data = v.encode("utf-8", "surrogateescape")  # U+DC80..U+DCFF: bytes that were not UTF-8
        except UnicodeEncodeError as err:  # a lone "\ud800" from JSON
            raise _fail(
                path, t, f"{_q(v)} is not text (lone surrogate U+{ord(v[err.start]):04X} at character {err.start})"
            ) from None
        data = data.rstrip(b"\0")  # NULs at the end: the C string's padding (a ctypes buffer's text)
        if len(data) > n:
            raise _fail(path, t, f"{_q(v)} is {len(data)} bytes, longer than {n}")
        if b"\0" in data:  # it would read back as the text before the NUL, another's text
            raise _fail(
                path,
                t,
                f"{_q(v)} holds a NUL at byte {data.index(0)}: a char[{n}] is a C string, the text "
                f"before its first NUL; give that text, or the field's bytes as hex[{n}] in the layout",
            )
        buf[off : off + n] = data + b"\0" * (n - len(data))

    return dec, enc


def _bytes(t: Bytes) -> tuple[Decoder, Encoder]:
    n = t.size
    dec = _decoder(t)

    def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
        if isinstance(v, (bytes, bytearray)):
            data = bytes(v)
        elif isinstance(v, str):
            parsed = hex_bytes(v)
            if parsed is None:
                raise _fail(path, t, f"{_q(v)} is not hex bytes") from None
            data = parsed
        else:
            raise _fail(path, t, f"expected hex bytes as a string, got {_q(v)}")
        if len(data) != n:
            raise _fail(path, t, f"{len(data)} bytes given, {n} expected")
        buf[off : off + n] = data

    return dec, enc


def _formatted(t: Formatted) -> tuple[Decoder, Encoder]:
    n = t.size
    dec = _decoder(t)
    if t.name == "mac":

        def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
            s = v.strip().lower() if isinstance(v, str) else ""
            if not re.fullmatch(r"[0-9a-f]{2}([:\-][0-9a-f]{2}){5}", s):
                raise _fail(path, t, f"{_q(v)} is not a MAC address like aa:bb:cc:dd:ee:ff")
            buf[off : off + 6] = bytes.fromhex(re.sub(r"[:\-]", "", s))

        return dec, enc
    import ipaddress

    cls = ipaddress.IPv4Address if t.name == "ipv4" else ipaddress.IPv6Address

    def enc(buf: bytearray, off: int, v: Any, path: str) -> None:  # type: ignore[no-redef]
        try:
            if isinstance(v, bool):
                raise ValueError
            addr = cls(v.strip() if isinstance(v, str) else v)
        except (ValueError, TypeError):
            raise _fail(path, t, f"{_q(v)} is not an {t.name.upper()} address") from None
        buf[off : off + n] = addr.packed

    return dec, enc


# -- composites --------------------------------------------------------------------------


def _array(t: Array) -> tuple[Decoder, Encoder]:
    edec, eenc = compile_type(t.elem)
    step, count = t.elem.size, t.count

    def dec(buf: bytes, off: int) -> list[Any]:
        return [edec(buf, off + i * step) for i in range(count)]

    def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
        if isinstance(v, str):
            v = _json_or_fail(v, path, t)
        if not isinstance(v, (list, tuple)):
            raise _fail(path, t, f"expected a list of {count}, got {_q(v)}")
        if len(v) != count:
            raise _fail(path, t, f"{len(v)} elements given, {count} expected")
        for i, item in enumerate(v):
            eenc(buf, off + i * step, item, f"{path}[{i}]")

    return dec, enc


def _json_or_fail(text: str, path: str, t: Type) -> Any:
    import json

    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also a number past 4300 digits
        raise _fail(path, t, f"{_q(text)}: give it as JSON") from None


def visible_fields(t: Struct) -> list[Any]:
    return [f for f in t.fields if not isinstance(f.type, Pad)]


def members(t: Struct, base: int = 0) -> list[tuple[str, Field, int]]:
    """(name, field, offset of the struct holding it) of each field a struct at ``base``
    decodes to, in the decoded dict's order: those of anonymous members (C11) in their
    place, unnamed bitfields (padding) left out."""
    out: list[tuple[str, Field, int]] = []
    for f in visible_fields(t):
        if f.name:
            out.append((f.name, f, base))
        elif f.bit_size is None and isinstance(f.type, Struct):
            out.extend(members(f.type, base + f.offset))
    return out


def _bitfield(f: Field, path_name: str) -> tuple[Decoder, Encoder]:
    assert f.bit_offset is not None and f.bit_size is not None, f
    t, bits = f.type, f.bit_size
    signed = getattr(t, "signed", False)
    first = f.bit_offset // 8
    shift = f.bit_offset - first * 8
    nbytes = (shift + bits + 7) // 8
    mask = (1 << bits) - 1
    names = enum_names(t.values) if isinstance(t, Enum) else None
    by_name = dict(t.values) if isinstance(t, Enum) else {}

    def dec(buf: bytes, off: int) -> Any:
        raw = int.from_bytes(buf[off + first : off + first + nbytes], "little")
        v = (raw >> shift) & mask
        if signed and v >> (bits - 1):
            v -= 1 << bits
        return names.get(v, v) if names is not None else v

    def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
        if isinstance(v, str) and v in by_name:
            v = by_name[v]
        v = to_int(v, t, path, bits=f.bit_size)
        lo = off + first
        raw = int.from_bytes(buf[lo : lo + nbytes], "little")
        raw = (raw & ~(mask << shift)) | ((v & mask) << shift)
        buf[lo : lo + nbytes] = raw.to_bytes(nbytes, "little")

    return dec, enc


def _field_names(t: Struct) -> list[str]:
    """The keys a struct decodes to: its named fields, and those of anonymous members (C11)."""
    out: list[str] = []
    for f in visible_fields(t):
        if f.name:
            out.append(f.name)
        elif isinstance(f.type, Struct):
            out.extend(_field_names(f.type))
    return out


def _struct(t: Struct) -> tuple[Decoder, Encoder]:
    """Named fields, bitfields and anonymous members (C11), each through its own codec."""
    named, anon = _field_codecs(t)
    whole = _whole_struct(t)
    dec = whole[0] if whole is not None else _struct_decoder(t, named, anon)
    return dec, _struct_encoder(t, named, anon)


def _field_codecs(t: Struct) -> tuple[list[Any], list[Any]]:
    """(named fields as (name, offset, dec, enc), anonymous members as (offset, dec, enc,
    their field names)) of a struct, each through its own codec."""
    named = []  # (name, offset, dec, enc)
    anon = []  # (offset, dec, enc, names)
    for f in visible_fields(t):
        if f.bit_size is not None:
            d, e = _bitfield(f, f.name)
            if f.name:
                named.append((f.name, 0, d, e))
        elif f.name:
            d, e = compile_type(f.type)
            named.append((f.name, f.offset, d, e))
        elif isinstance(f.type, Struct):
            d, e = compile_type(f.type)
            anon.append((f.offset, d, e, set(_field_names(f.type))))
    return named, anon


def _struct_decoder(t: Struct, named: list[Any], anon: list[Any]) -> Decoder:
    """A struct field by field (nested, arrays, bitfields, anonymous members)."""
    by_name = {n: (o, d) for n, o, d, _e in named}
    members = iter(anon)  # in field order: several may share an offset (a union's)
    steps: list[tuple[str | None, int, Decoder]] = []  # (name, or None: merge its fields)
    for f in visible_fields(t):
        if f.name:
            steps.append((f.name, *by_name[f.name]))
        elif f.bit_size is None and isinstance(f.type, Struct):
            o, d, _e, _n = next(members)
            steps.append((None, o, d))

    def dec(buf: bytes, off: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for name, o, d in steps:
            if name is not None:
                out[name] = d(buf, off + o)
            else:
                out.update(d(buf, off + o))
        return out

    return dec


def _struct_encoder(t: Struct, named: list[Any], anon: list[Any]) -> Encoder:
    """Fields from a dict (a union: one member or more), a list in field order, or JSON text."""
    names = _field_names(t)

    def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
        if isinstance(v, str):
            v = _json_or_fail(v, path, t)
        prefix = f"{path}." if path else ""
        if isinstance(v, dict):
            unknown = [k for k in v if k not in names]
            if unknown:
                raise _fail(path, t, f"unknown field(s) {', '.join(map(str, unknown))}; fields are {', '.join(names)}")
            # A union takes one member or more (members decoded from the same bytes write
            # those bytes back); a struct takes every field.
            if t.union:
                if not v:
                    raise _fail(path, t, f"give a member of the union ({', '.join(names)})")
            else:
                missing = [n for n in (n for n, _o, _d, _e in named) if n not in v]
                missing += [" or ".join(sorted(sub)) for _o, _d, _e, sub in anon if not any(k in v for k in sub)]
                if missing:
                    raise _fail(path, t, f"missing field(s) {', '.join(missing)}")
            for name, o, _d, e in named:
                if name in v:
                    e(buf, off + o, v[name], prefix + name)
            for o, _d, e, sub_names in anon:
                sub = {k: v[k] for k in v if k in sub_names}
                if sub:
                    e(buf, off + o, sub, path)
            return
        if isinstance(v, (list, tuple)) and not t.union and not anon:
            if len(v) != len(named):
                raise _fail(path, t, f"{len(v)} field(s) given, {len(named)} expected: {', '.join(names)}")
            for (name, o, _d, e), item in zip(named, v):
                e(buf, off + o, item, prefix + name)
            return
        raise _fail(path, t, f"expected the fields as a JSON object{'' if t.union else ' or list'}, got {_q(v)}")

    return enc


def _pad(t: Pad) -> tuple[Decoder, Encoder]:
    def dec(buf: bytes, off: int) -> None:
        return None

    def enc(buf: bytearray, off: int, v: Any, path: str) -> None:
        pass

    return dec, enc


_COMPILERS: dict[type, Callable[[Any], tuple[Decoder, Encoder]]] = {
    Scalar: _scalar,
    Enum: _enum,
    Char: _char,
    Bytes: _bytes,
    Formatted: _formatted,
    Array: _array,
    Struct: _struct,
    Pad: _pad,
}


def compile_type(t: Type) -> tuple[Decoder, Encoder]:
    return _COMPILERS[type(t)](t)


# -- many at once ------------------------------------------------------------------------------


def compile_many(t: Type) -> Callable[[bytes, int], list[Any]]:
    """A function decoding ``count`` values of ``t`` packed back to back."""
    leaf = unpacking(t)
    if leaf is not None:
        return _leaf_decoders(t, leaf)[1]
    if isinstance(t, Struct):
        whole = _whole_struct(t)
        if whole is not None:
            return whole[1]
    n = t.size
    dec, _ = compile_type(t)
    return lambda buf, count: [dec(buf, i * n) for i in range(count)]


_JUST_INT = frozenset({int})


def _flat_numbers(t: Type) -> list[tuple[str, int, Scalar]] | None:
    """(name, offset, type) of each field of a struct made only of host-order integers
    and floats (no bitfields, unions, anonymous members or nesting); None otherwise."""
    if not isinstance(t, Struct) or t.union or t.packed:
        return None
    out = []
    for f in t.fields:
        if isinstance(f.type, Pad):
            continue
        ft = f.type
        if not f.name or f.bit_size is not None or not isinstance(ft, Scalar):
            return None
        if ft.order != "=" or ft.kind not in ("uint", "int", "float") or ft.size > 8:
            return None
        out.append((f.name, f.offset, ft))
    return out or None


_NUMBER = r"(-?(?:0|[1-9][0-9]*))"  # an integer as int(x, 0) reads a decimal one
_FLOAT = r"(-?(?:[0-9]+\.?[0-9]*(?:e[-+]?[0-9]+)?|inf|nan))"


def _struct_encode_many(t: Struct, leaves: list[tuple[str, int, Scalar]]) -> Callable[[list[Any]], bytes]:
    """Many values of a flat struct of numbers at once: as dicts (JSON Lines) or as the
    ``name=value,...`` text ``dump`` writes.  Raises on anything else (a missing or extra
    field, a bool, a number out of range); callers then go one by one."""
    names = [n for n, _o, _t in leaves]
    fmt, pos = "", 0
    for _n, off, ft in leaves:
        fmt += f"{off - pos}x" if off > pos else ""
        fmt += _CODES[(ft.kind, ft.size)]
        pos = off + ft.size
    fmt += f"{t.size - pos}x" if t.size > pos else ""
    nfields = len(leaves)
    floats = [i for i, (_n, _o, ft) in enumerate(leaves) if ft.kind == "float"]
    line = re.compile(
        "^" + ",".join(re.escape(n) + "=" + (_FLOAT if ft.kind == "float" else _NUMBER) for n, _o, ft in leaves) + "$",
        re.M,
    )
    packers: dict[int, Any] = {}

    def pack(flat: list[Any], n: int) -> bytes:
        p = packers.get(n)
        if p is None:
            p = struct.Struct("=" + fmt * n)
            if len(packers) < 8:
                packers[n] = p
        try:
            return p.pack(*flat)
        except struct.error as err:
            raise ValueError(str(err)) from None

    def many(items: list[Any]) -> bytes:
        n = len(items)
        if not n:
            return b""
        flat: list[Any] = [None] * (n * nfields)
        if type(items[0]) is str:
            found = line.findall("\n".join(items))
            if len(found) != n:
                raise ValueError("not every value is name=number,...")
            cells = list(itertools.chain.from_iterable(found)) if nfields > 1 else found
            for j in range(nfields):
                col = cells[j::nfields]
                flat[j::nfields] = list(map(float, col)) if j in floats else list(map(int, col))
            return pack(flat, n)
        if set(map(type, items)) != _JUST_DICT or set(map(len, items)) != {nfields}:
            raise TypeError("not all dicts of the struct's fields")
        for j, name in enumerate(names):
            col = [d[name] for d in items]
            kinds = set(map(type, col))
            if not kinds <= (_INT_FLOAT if j in floats else _JUST_INT):
                raise TypeError(f"{name}: not all numbers")
            flat[j::nfields] = col
        return pack(flat, n)

    return many


_JUST_DICT = frozenset({dict})
_INT_FLOAT = frozenset({int, float})


def compile_encode_many(t: Type) -> Callable[[list[Any]], bytes] | None:
    """A function encoding many host-order numbers (as text or as numbers) at C speed, or
    many values of a flat struct of them, or None for other types.  It raises on any bad
    item; callers then go one by one."""
    leaves = _flat_numbers(t)
    if leaves is not None:
        assert isinstance(t, Struct)
        return _struct_encode_many(t, leaves)
    if not (isinstance(t, Scalar) and t.order == "=" and t.kind in ("uint", "int", "float") and t.size <= 8):
        return None
    from array import array

    code = _CODES[(t.kind, t.size)]
    if t.kind == "float":

        def many_floats(items: list[Any]) -> bytes:
            if bool in set(map(type, items)):  # the types, gathered at C speed
                raise TypeError("bool")
            return array(code, map(float, items)).tobytes()

        return many_floats

    def many(items: list[Any]) -> bytes:
        if items and type(items[0]) is str:
            return array(code, map(int, items, itertools.repeat(0))).tobytes()
        if not set(map(type, items)) <= _JUST_INT:  # bool is an int to array(): refused here
            raise TypeError("not all integers")
        return array(code, items).tobytes()

    return many
