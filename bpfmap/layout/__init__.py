"""Layouts: meaning for the bytes of keys and values.

A Layout holds one codec for the key and one for the value.  A codec turns bytes
into Python values (``decode``) and back (``encode``), reads the text a user types
(``parse``) and writes the text a user reads (``format``).  Codecs come from the
layout language (:mod:`.lang`), C declarations (:mod:`.cdecl`) or BTF; all three
build the same model (:mod:`.model`), compiled once by :mod:`.codec`.

Public: :class:`Layout` and the codecs (:class:`Codec`, :class:`TypeCodec`,
:class:`HexCodec`, :class:`IdCodec`, :class:`CidrCodec`), the one rule of "a layout or a
C header" (:func:`choose`, :func:`layout_fault`), the text forms (:func:`format_text`,
:func:`inner_text`, :func:`parse_hex`, :func:`split_top`); and, each loaded with its
module on first use, the layout language's sides (:func:`parse_side`, :func:`type_names`),
C declarations (:func:`types_from_header`) and conversions between types
(:class:`Conversion`, :func:`converter`).  Field paths are :mod:`.fields`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._lazy import reexport
from ..errors import Param, UsageError, quote, words
from .hexbytes import hex_bytes
from .leaves import text_string, unquote
from .model import SCALARS, Array, Bytes, Formatted, Pad, Scalar, Struct, Type

if TYPE_CHECKING:
    from .cdecl import types_from_header
    from .convert import Conversion, converter
    from .lang import parse_side, type_names

_LAZY = {
    "types_from_header": "cdecl",
    "Conversion": "convert",
    "converter": "convert",
    "parse_side": "lang",
    "type_names": "lang",
}
__getattr__, __dir__ = reexport(__name__, _LAZY)


class Codec:
    """bytes <-> Python values for one side (key or value) of a map.  (How writers write
    many values at once is theirs: output.templates, output.rows.)"""

    size: int

    def decode_many(self, buf: bytes, count: int) -> list[Any]:
        """Decode ``count`` values packed back to back in ``buf``."""
        n, dec = self.size, self.decode
        return [dec(buf[i * n : (i + 1) * n]) for i in range(count)]

    def encode_many(self, items: list[Any]) -> bytes | None:
        """Encode many values (all text, or all decoded values) in one go, or None when
        this codec has no such fast path.  Raises ValueError/TypeError/OverflowError on
        any bad item: the caller then encodes one by one to say which."""
        return None

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def parse(self, text: str) -> bytes:
        raise NotImplementedError

    def format(self, value: Any) -> str:
        return format_text(value)

    def check_size(self, size: int, what: str) -> None:
        """Raise UsageError when this codec does not fit ``size`` bytes."""
        if size != self.size:
            raise UsageError(f"layout for the {what} is {self.size} bytes but the map's {what} is {size} bytes")


def format_text(value: Any) -> str:
    """Text output: structs as name=value pairs, nested values as compact JSON."""
    if isinstance(value, dict):
        return ",".join(f"{k}={inner_text(v)}" for k, v in value.items())
    return inner_text(value)


def inner_text(value: Any) -> str:
    """One value as text: strings as they are, bools as true/false, structs and arrays as
    compact JSON, numbers by str()."""
    if isinstance(value, str):
        return text_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _compact_json(value)
    return str(value)


_COMPACT: Callable[[Any], str] | None = None


def _compact_json(value: Any) -> str:
    """json.dumps(value, separators=(",", ":")), with one encoder made once (json.dumps
    builds a new encoder at every call given any option)."""
    global _COMPACT
    if _COMPACT is None:
        import json

        _COMPACT = json.JSONEncoder(separators=(",", ":")).encode
    return _COMPACT(value)


class HexCodec(Codec):
    """Raw bytes as hex, the fallback when nothing gives meaning."""

    def __init__(self, size: int) -> None:
        self.size = size

    def decode(self, data: bytes) -> str:
        return data.hex(" ")

    def decode_many(self, buf: bytes, count: int) -> list[Any]:
        n = self.size
        if n == 0:
            return [""] * count
        mv = memoryview(buf)
        return [mv[i : i + n].hex(" ") for i in range(0, count * n, n)]

    def encode_many(self, items: list[Any]) -> bytes | None:
        parts = list(map(bytes.fromhex, items))  # TypeError on a non-string
        if any(len(p) != self.size for p in parts):
            raise ValueError("size")
        return b"".join(parts)

    def encode(self, value: Any) -> bytes:
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
            raise UsageError(
                words(
                    f"{len(data)} bytes given, {self.size} expected; give hex bytes "
                    f"such as '{' '.join(['00'] * min(self.size, 8))}' or use ",
                    Param("layout"),
                )
            )
        return data


def parse_hex(text: str) -> bytes:
    """``01 00 00 00``, ``0x01000000``, ``01:00:00:00`` (or ``-`` separated) -> bytes."""
    data = hex_bytes(text)
    if data is None:
        raise UsageError(
            words(
                f"bad hex bytes {quote(text)}: write two hex digits per byte, e.g. '01 00 00 00' or 0x01000000 ",
                *("(numbers need ", Param("layout"), ", e.g. ", Param("layout", "u32:u64"), ")"),
            )
        )
    return data


class _Compiled:
    """A TypeCodec attribute compiled on first use, with the others of its ``group`` (a
    dump that formats raw rows never compiles decoders, a lookup never the batch
    decoders).  Set on an instance, it is that instance's value from then on."""

    def __init__(self, group: str) -> None:
        self.group = group

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        obj._compile(self.group)
        return obj.__dict__[self.name]


class TypeCodec(Codec):
    """A codec for one model type (a struct, or a bare scalar/string/array)."""

    _dec = _Compiled("codec")
    _enc = _Compiled("codec")
    _many = _Compiled("many")
    _enc_many = _Compiled("encode_many")

    def __init__(self, t: Type) -> None:
        self.type = t
        self.size = t.size

    def _compile(self, group: str) -> None:
        for name, value in _GROUPS[group](self).items():
            self.__dict__.setdefault(name, value)  # one set on the instance stays

    def decode_many(self, buf: bytes, count: int) -> list[Any]:
        many: list[Any] = self._many(buf, count)
        return many

    def encode_many(self, items: list[Any]) -> bytes | None:
        return self._enc_many(items) if self._enc_many is not None else None

    @property
    def fields(self) -> list[Any]:
        return list(self.type.fields) if isinstance(self.type, Struct) else []

    def describe(self) -> str:
        return self.type.describe() if isinstance(self.type, Struct) else f"{self.type.c_name()} ({self.size} bytes)"

    def check_size(self, size: int, what: str) -> None:
        if size != self.size:
            raise UsageError(
                f"layout for the {what} is {self.size} bytes but the map's {what} is {size} bytes; "
                f"fields: {self.describe()}"
            )

    def decode(self, data: bytes) -> Any:
        return self._dec(data, 0)

    def encode(self, value: Any) -> bytes:
        buf = bytearray(self.size)
        self._enc(buf, 0, value, "")
        return bytes(buf)

    def parse(self, text: str) -> bytes:
        s = text.strip()
        if isinstance(self.type, Struct):
            if s.startswith(("{", "[")):
                return self.encode(_json(text))
            parts = split_top(s)
            names = {f.name for f in self.type.fields if f.name}
            pairs = [p.partition("=") for p in parts]
            if parts and all(eq and k.strip() in names for k, eq, _v in pairs):
                return self.encode({k.strip(): _maybe_json(v.strip()) for k, _eq, v in pairs})
            return self.encode([_maybe_json(p.strip()) for p in parts])
        if s.startswith("[") and not s.startswith("[::"):
            return self.encode(_json(text))
        if s.startswith('"'):  # a quoted string, as text output writes one that needs it
            v = _maybe_json(s)
            if isinstance(v, str):
                return self.encode(v)
        return self.encode(s)


def _group_codec(c: TypeCodec) -> dict[Any, Any]:
    from .codec import compile_type

    dec, enc = compile_type(c.type)
    return {"_dec": dec, "_enc": enc}


def _group_many(c: TypeCodec) -> dict[Any, Any]:
    from .codec import compile_many

    return {"_many": compile_many(c.type)}


def _group_encode_many(c: TypeCodec) -> dict[Any, Any]:
    from .codec import compile_encode_many

    return {"_enc_many": compile_encode_many(c.type)}


# what each group of a TypeCodec's lazily compiled attributes is made by
_GROUPS: dict[str, Callable[[TypeCodec], dict[Any, Any]]] = {
    "codec": _group_codec,
    "many": _group_many,
    "encode_many": _group_encode_many,
}


class IndexCodec(TypeCodec):
    """The 4-byte index key of an array-type map without a layout: a number (u32) in and
    out; four hex bytes with separators (``01 00 00 00``, how such keys were written
    before they were numbers) still parse."""

    def __init__(self) -> None:
        super().__init__(SCALARS["u32"])

    def encode(self, value: Any) -> bytes:
        try:
            return super().encode(value)
        except UsageError:
            data = hex_bytes(value) if isinstance(value, str) and re.search(r"[\s:\-]", value.strip()) else None
            if data is None or len(data) != 4:
                raise
            return data

    def encode_many(self, items: list[Any]) -> bytes | None:
        if any(isinstance(v, str) for v in items):
            return None  # hex strings go one by one, through encode
        return super().encode_many(items)


def _json(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"bad JSON: {err.msg} at column {err.colno}") from None
    except ValueError as err:  # a number past Python's 4300-digit limit
        raise UsageError(f"bad JSON: {str(err).split(';')[0]}") from None
    except RecursionError:
        raise UsageError("JSON nested too deep") from None


def _maybe_json(text: str) -> Any:
    """A field's text: nested structs and arrays as JSON, quoted strings unquoted, else as is."""
    import json

    if text.startswith('"'):
        try:
            return unquote(text)
        except ValueError:
            return text
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text
    return text


def split_top(text: str) -> list[str]:
    """Split on commas outside brackets and quotes."""
    parts: list[str] = []
    cur: list[str] = []
    depth, quote, escaped = 0, False, False
    for ch in text:
        if escaped:  # the character after a backslash inside a JSON string
            escaped = False
        elif quote and ch == "\\":
            escaped = True
        elif ch == '"':
            quote = not quote
        elif not quote and ch in "{[":
            depth += 1
        elif not quote and ch in "}]":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts if text.strip() else []


class IdCodec(Codec):
    """A u32 kernel object id: values of maps of maps and prog_array as user space reads them."""

    size = 4

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def decode(self, data: bytes) -> int:
        return int.from_bytes(data, "little")

    def encode(self, value: Any) -> bytes:
        raise UsageError(f"a {self.kind} value is written as a {self.kind} reference (pin path or id:N)")

    def parse(self, text: str) -> bytes:
        return self.encode(text)


class Layout:
    """Codecs for the key and the value; either may be None (hex).  ``bare`` is a layout
    without ':', for maps without keys (queue, stack, bloom); ``source`` the text it was
    parsed from, to parse it again packed."""

    __slots__ = ("key", "value", "bare", "source")

    def __init__(
        self, key: Codec | None = None, value: Codec | None = None, bare: Codec | None = None, source: str = ""
    ) -> None:
        self.key, self.value, self.bare, self.source = key, value, bare, source

    @classmethod
    def parse(cls, text: str, packed: bool = False) -> Layout:
        """``KEY:VALUE``, ``:VALUE`` or ``KEY:`` (the missing side is hex); a single
        ``VALUE`` with no ``:`` is for maps without keys; ``@FILE[#NAME]`` reads a file."""
        from .lang import parse_side, read_layout_file, split_layout

        source = text
        if text.strip().startswith("@"):
            text = read_layout_file(text.strip())
        key, value = split_layout(text)
        if value is None:
            return cls(bare=_codec(parse_side(text, packed)), source=source)
        return cls(_codec(parse_side(key, packed)), _codec(parse_side(value, packed)), source=source)

    @classmethod
    def from_c(
        cls,
        header: str,
        key_type: str | None = None,
        value_type: str | None = None,
        use_cpp: bool = True,
        include_dirs: list[str] | None = None,
    ) -> Layout:
        """Key and value types from C declarations in ``header`` (``struct flow_key``,
        ``__u64``); ``#include "x.h"`` is read from beside the header (and ``include_dirs``)."""
        from .cdecl import types_from_header

        names = [n for n in (key_type, value_type) if n]
        if not names:
            raise UsageError(
                words(f"C header {header}: name the types with ", Param("key_type"), " and/or ", Param("value_type"))
            )
        types = dict(zip(names, types_from_header(header, names, use_cpp=use_cpp, include_dirs=include_dirs)))
        return cls(
            _codec(types.get(key_type)) if key_type else None,
            _codec(types.get(value_type)) if value_type else None,
            bare=_codec(types.get(value_type)) if value_type and not key_type else None,
        )

    def packed(self) -> Layout:
        """The same layout with no padding on either side (``--packed``)."""
        if not self.source:
            raise UsageError(
                words(
                    Param("packed"),
                    " applies to ",
                    Param("layout"),
                    ", not to C declarations or BTF (use __attribute__((packed)) there)",
                )
            )
        return Layout.parse(self.source, packed=True)


LAYOUT_PARAMS = ("layout", "packed", "c_header", "key_type", "value_type", "include_dirs")


def layout_fault(
    layout: bool,
    packed: bool = False,
    c_header: bool = False,
    key_type: bool = False,
    value_type: bool = False,
    include_dirs: bool = False,
    names: dict[str, str] | None = None,
) -> str | None:
    """What is wrong with the layout arguments given (each True when given), or None: the
    one rule of "a layout or a C header".  ``names``: how the caller calls each parameter
    (the command line its options; default: the parameter names of :func:`choose`)."""
    n = {p: p for p in LAYOUT_PARAMS} | (names or {})
    if c_header:
        if layout:
            return f"give either {n['layout']} or {n['c_header']}, not both"
        if packed:
            return f"{n['packed']} applies to {n['layout']}; mark C structs __attribute__((packed))"
        if not (key_type or value_type):
            return f"{n['c_header']}: name the types with {n['key_type']} and/or {n['value_type']}"
        return None
    if key_type or value_type:
        return f"{n['key_type']} and {n['value_type']} need {n['c_header']}"
    if include_dirs:
        return f"{n['include_dirs']} goes with {n['c_header']}"
    if packed and not layout:
        return f"{n['packed']} needs {n['layout']}"
    return None


def choose(
    layout: Layout | None = None,
    packed: bool = False,
    c_header: str | None = None,
    key_type: str | None = None,
    value_type: str | None = None,
    include_dirs: list[str] | None = None,
    names: dict[str, str] | None = None,
) -> Layout | None:
    """The one Layout the arguments give: ``layout`` (with ``packed``: no padding), or the
    types ``key_type``/``value_type`` declared in the C header ``c_header`` (its
    ``#include`` files found beside it and in ``include_dirs``), or None for neither.
    Raises UsageError for arguments that do not go together (see :func:`layout_fault`)."""
    fault = layout_fault(
        layout is not None, packed, c_header is not None, bool(key_type), bool(value_type), bool(include_dirs), names
    )
    if fault is not None:
        raise UsageError(fault)
    if c_header is not None:
        return Layout.from_c(c_header, key_type, value_type, include_dirs=include_dirs)
    return layout.packed() if packed and layout is not None else layout


# the display formats (layout.formats), here so that a command's help names them without
# loading them
DISPLAY_FORMATS = {  # name -> what it shows, where its name does not say it (--as's help)
    "ip": "IPv4/IPv6 by the struct's af/family field",
    "ipv4": "",
    "ipv6": "",
    "mac": "",
    "hex": "",
    "ksym": "kernel symbol",
    "errno": "",
    "syscall": "",
    "cgroup": "an id as its path",
    "ifname": "",
    "majorminor": "a kernel dev_t",
    "majorminor_user": "st_dev's",
    "uid": "",
    "gid": "",
}


def _codec(t: Type | None) -> TypeCodec | None:
    return TypeCodec(t) if t is not None else None


__all__ = [
    "LAYOUT_PARAMS",
    "CidrCodec",
    "Codec",
    "Conversion",
    "HexCodec",
    "IdCodec",
    "Layout",
    "TypeCodec",
    "choose",
    "cidr_key",
    "converter",
    "format_text",
    "inner_text",
    "layout_fault",
    "parse_hex",
    "parse_side",
    "split_top",
    "type_names",
    "types_from_header",
]


class CidrCodec(Codec):
    """An LPM trie's key ``{u32 prefixlen; address}`` as CIDR text: ``10.0.0.0/8``,
    ``2001:db8::/32``.  Parses that form, and whatever the key's own codec (``inner``)
    reads (``prefixlen=8,data=...``, hex), so the comma form keeps working."""

    def __init__(self, size: int, inner: Codec) -> None:
        import socket

        self.size, self.inner = size, inner
        self.family = socket.AF_INET if size == 8 else socket.AF_INET6

    def decode(self, data: bytes) -> str:
        import socket

        return f"{socket.inet_ntop(self.family, data[4:])}/{int.from_bytes(data[:4], 'little')}"

    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            return self.parse(value)
        return self.inner.encode(value)

    def parse(self, text: str) -> bytes:
        import socket

        s = text.strip()
        addr, slash, bits = s.partition("/")
        if slash and "," not in s and "=" not in s:
            try:
                raw = socket.inet_pton(self.family, addr.strip())
            except OSError:
                raise UsageError(
                    f"not an IPv{4 if self.family == socket.AF_INET else 6} address "
                    f"with a prefix length (this trie's keys hold {'4' if self.size == 8 else '16'} address bytes)"
                ) from None
            most = len(raw) * 8
            if not bits.strip().isdigit() or int(bits) > most:
                raise UsageError(f"the prefix length must be 0..{most}")
            return int(bits).to_bytes(4, "little") + raw
        return self.inner.parse(text)


def cidr_key(codec: Codec, size: int) -> CidrCodec | None:
    """A CidrCodec for an LPM trie key of ``size`` bytes read by ``codec``, when the key is
    a prefix length and an IPv4 or IPv6 address: hex (no layout) of 8 or 20 bytes, or a
    struct of a 4-byte integer then 4 or 16 address bytes (a u8 array, ipv4/ipv6, hex,
    or a 4-byte integer holding the address, as Cilium's keys do)."""
    if size not in (8, 20):
        return None
    if isinstance(codec, HexCodec):
        return CidrCodec(size, codec)
    t = getattr(codec, "type", None)
    if not isinstance(t, Struct) or t.union:
        return None
    fields = [f for f in t.fields if f.name and f.bit_size is None and not isinstance(f.type, Pad)]
    if len(fields) != 2 or fields[0].offset != 0 or fields[1].offset != 4:
        return None
    first, second = fields[0].type, fields[1].type
    if not (isinstance(first, Scalar) and first.kind in ("uint", "int") and first.size == 4):
        return None
    ok = (
        (isinstance(second, Array) and isinstance(second.elem, Scalar) and second.elem.size == 1)
        or isinstance(second, (Formatted, Bytes))
        or (isinstance(second, Scalar) and second.kind in ("uint", "int") and size == 8)
    )
    return CidrCodec(size, codec) if ok and second.size == size - 4 else None
