"""The rules of every leaf type, in one place: how it is unpacked (struct code, byte order),
how the unpacked item becomes its value, and how a value is written as text (``name=value``
output), inside the compact JSON text output writes for nested data, and in JSON.

The codec (decoding and encoding), the templates (whole batches of decoded values) and
the rows (whole batches of raw bytes) all read these rules: a new leaf type, or a new way
to write one, is added here once.

A leaf is a number (any size and byte order, bool, float), an enum, a ``char[N]`` string,
hex bytes or an address (ipv4, ipv6, mac)."""

from __future__ import annotations

import math
import re
import struct
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from .._lazy import lazy_pattern
from .model import Bytes, Char, Enum, Formatted, Scalar, Type

try:  # what json.dumps escapes strings with, at C speed, without importing json (start-up)
    from _json import encode_basestring_ascii as _json_ascii_str
except ImportError:  # pragma: no cover  (Pythons without the C accelerator)
    from json.encoder import encode_basestring_ascii as _json_ascii_str

json_str: Callable[[str], str] = _json_ascii_str  # a string as json.dumps writes it (ensure_ascii)

CODES = {
    ("uint", 1): "B",
    ("uint", 2): "H",
    ("uint", 4): "I",
    ("uint", 8): "Q",
    ("int", 1): "b",
    ("int", 2): "h",
    ("int", 4): "i",
    ("int", 8): "q",
    ("float", 4): "f",
    ("float", 8): "d",
    ("bool", 1): "?",
}
HOST = "<" if sys.byteorder == "little" else ">"

# Where a value is written: TEXT is a field's value in ``name=value`` text (as it is, or
# quoted when it would not read back: text_string), NESTED is inside the compact JSON that
# text output writes for nested structs and arrays (JSON that allows NaN), JSON is inside
# json.dumps output (NaN and infinities as the strings "NaN", "Infinity", "-Infinity").
TEXT, NESTED, JSON = "text", "nested", "json"
CSV, CSV_WHOLE = "csv", "csv_whole"  # a CSV cell holding one field; one holding a whole key or value
LABEL, SAMPLE = "label", "sample"  # a Prometheus label value (escaped, no quotes); a sample's value


def native_code(t: Scalar | Enum) -> str:
    """The struct code of a number or enum in host byte order (no prefix)."""
    if isinstance(t, Enum):
        return CODES[("int" if t.signed else "uint", t.size)]
    return CODES[(t.kind, t.size)]


# -- unpacking: an item from the bytes, then the value -------------------------------------


class Leaf(NamedTuple):
    code: str  # struct code without a byte-order prefix ("I", "16s")
    expr: str | None  # Python expression turning the unpacked item {v} into the value; None: as is
    env: dict[str, Any]  # the names ``expr`` uses


def unpacking(t: Type, tag: str = "") -> Leaf | None:
    """How a leaf type is read from its bytes (``tag`` keeps its helper names apart from
    other fields'); None for arrays, structs and padding."""
    if isinstance(t, Scalar) and t.size == 16:  # no struct code: from the bytes
        order = "big" if t.order == ">" else "little" if t.order == "<" else sys.byteorder
        return Leaf("16s", f"_from({{v}}, {order!r}, signed={t.kind == 'int'})", {"_from": int.from_bytes})
    if isinstance(t, Scalar):
        code = CODES[(t.kind, t.size)]
        if t.order in ("=", HOST) or t.size == 1:
            return Leaf(code, None, {})
        if t.kind in ("uint", "int"):
            order = "big" if t.order == ">" else "little"
            return Leaf(f"{t.size}s", f"_from({{v}}, {order!r}, signed={t.kind == 'int'})", {"_from": int.from_bytes})
        other = struct.Struct(t.order + code)  # a float (or bool) in the other byte order
        return Leaf(f"{t.size}s", f"_unpack{tag}({{v}})[0]", {f"_unpack{tag}": other.unpack})
    if isinstance(t, Enum):
        return Leaf(native_code(t), f"_names{tag}.get({{v}}, {{v}})", {f"_names{tag}": enum_names(t.values)})
    if isinstance(t, Char):
        return Leaf(f"{t.size}s", "_cstring({v})", {"_cstring": cstring})
    if isinstance(t, Bytes):
        return Leaf(f"{t.size}s", "{v}.hex(' ')", {})
    if isinstance(t, Formatted):
        if t.name == "mac":
            return Leaf("6s", "{v}.hex(':')", {})
        return Leaf(f"{t.size}s", f"_ntop{tag}({{v}})", {f"_ntop{tag}": ntop(t.name)})
    return None


def enum_names(values: tuple[tuple[str, int], ...]) -> dict[int, str]:
    """Value -> the first enumerator with it (C allows several names for one value)."""
    names: dict[int, str] = {}
    for n, v in values:
        names.setdefault(v, n)
    return names


def ntop(name: str) -> Callable[[bytes], str]:
    """An address's bytes -> its usual notation (ipv4, ipv6): the C library's formatting
    (fast; the same text for one value or a batch)."""
    import socket  # only for addresses: start-up

    if name == "ipv4":
        return socket.inet_ntoa
    return lambda raw: socket.inet_ntop(socket.AF_INET6, raw)


def cstring(raw: bytes) -> str:
    """A ``char[N]``'s bytes -> its text, as C reads it: up to the first NUL (the whole
    field when it has none); what lies after the NUL is not the string's (a ring buffer
    record or a reused slot holds old bytes there) and is shown by no verb or format:
    ``--as FIELD=hex`` shows every byte.  Bytes that are not UTF-8 become the lone
    surrogates U+DC80..U+DCFF (Python's surrogateescape), which every writer shows as
    the byte (``\\xff`` in text, ``\\udcff`` in JSON) and every reader turns back into
    it.  The one rule every path follows (decoders, raw rows, labels, filters)."""
    return raw.partition(b"\0")[0].decode("utf-8", "surrogateescape")


# -- writing a value -----------------------------------------------------------------------

# A string that text output cannot write as it is and read back the same: blank at an
# end (fields are stripped), a control character (tab and newline end fields and
# lines), a comma or bracket (they split and nest fields), a quote (quoting starts there),
# a byte that is not UTF-8 (a lone surrogate: see cstring).
_TEXT_UNSAFE = re.compile(r'\A\s|\s\Z|[\x00-\x1f\x7f,\[\]{}"\ud800-\udfff]')
_c_unsafe = lazy_pattern(r'[\x00-\x1f\x7f"\\\ud800-\udfff]')  # compiled when a string needs quoting
_C_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _c_escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _C_NAMED.get(ch)
    if named is not None:
        return named
    n = ord(ch)
    if n < 0x80:
        return f"\\x{n:02x}"
    if 0xDC80 <= n <= 0xDCFF:  # a byte that was not UTF-8
        return f"\\x{n - 0xDC00:02x}"
    return f"\\u{n:04x}"  # another lone surrogate (from JSON input)


def text_string(v: str) -> str:
    """A string as text output writes it: as it is where it reads back as itself, else
    quoted with C escapes (``"a,b"``, ``" lead"``, ``"tab\\there"``, ``"\\x1b[0m"``,
    ``"\\xff"`` for a byte that is not UTF-8), which every text reader (update, --from,
    lookup) unquotes: see :func:`unquote`."""
    return v if _TEXT_UNSAFE.search(v) is None else c_quote(v)


def c_quote(v: str) -> str:
    """``v`` in double quotes with C escapes (see text_string)."""
    return '"' + _c_unsafe().sub(_c_escape, v) + '"'


_escape = lazy_pattern(r"\\(?:x([0-9A-Fa-f]{2})|(.))", re.S)


def _json_escape(m: re.Match[str]) -> str:
    hexa = m.group(1)
    if hexa is None:
        return m.group()  # a JSON escape (\n, \", \\, \u00e9): JSON reads it
    n = int(hexa, 16)
    return f"\\u{n if n < 0x80 else 0xDC00 + n:04x}"  # a byte past ASCII: the surrogate it was read as


def unquote(text: str) -> str:
    """A quoted string as text output writes it (C escapes ``\\xNN``, ``\\t``, ``\\n``,
    ``\\r``, ``\\\\``, ``\\"``, and JSON's) back to the string; ValueError when it is not one."""
    import json

    v = json.loads(_escape().sub(_json_escape, text) if "\\x" in text else text)
    if not isinstance(v, str):
        raise ValueError("not a string")
    return v


NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # what JSON output writes for them


def non_finite(v: float) -> str | None:
    """The name JSON output gives a NaN or infinite float (``NaN``, ``Infinity``,
    ``-Infinity``: strings in JSON, which bulk load reads back as the float); None for a
    finite one."""
    return None if math.isfinite(v) else NON_FINITE[repr(v)]


def json_float(v: float) -> str:
    """A float as json_dumps writes it: repr, or the string "NaN"/"Infinity"/"-Infinity"."""
    name = non_finite(v)
    return float.__repr__(v) if name is None else f'"{name}"'


def nested_float(v: float) -> str:
    """A float as the compact JSON of text output writes it (JSON that allows NaN)."""
    name = non_finite(v)
    return float.__repr__(v) if name is None else name


PROMETHEUS_NON_FINITE = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}  # the exposition's names for them


def prometheus_number(v: Any) -> str:
    """A sample value in the Prometheus text exposition: integers exactly, floats as
    Python's repr, ``NaN``, ``+Inf``, ``-Inf``."""
    if type(v) is int:
        return str(v)
    f = float(v)
    return float.__repr__(f) if math.isfinite(f) else PROMETHEUS_NON_FINITE[repr(f)]


BOOL_TEXT = {True: "true", False: "false"}

_LABEL_ESC = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def label_escaped(v: str) -> str:
    """A Prometheus label value escaped for the text exposition (``\\``, ``\"``, ``\n``;
    quotes not included)."""
    return v.translate(_LABEL_ESC)


def _json_enum(v: Any) -> str:
    return json_str(v) if type(v) is str else str(v)


def written(t: Type, where: str) -> tuple[str, Callable[[Any], str] | None] | None:
    """(template piece with one ``%s``, conversion of the decoded value to the text that
    goes there, or None: the value as ``%s`` writes it) for a leaf written ``where``
    (TEXT, NESTED, JSON, CSV, CSV_WHOLE, LABEL or SAMPLE); None for arrays, structs and
    padding, and for leaves that cannot be written there (a string as a sample)."""
    if where == SAMPLE:  # a number; other leaves make no sample
        if isinstance(t, Scalar) and t.kind in ("uint", "int", "float"):
            return "%s", prometheus_number if t.kind == "float" else None
        return None
    if where == LABEL:  # what text shows of the value (export.labels.label_text), escaped
        if isinstance(t, Scalar) and t.kind == "bool":
            return "%s", BOOL_TEXT.__getitem__
        if isinstance(t, Char):
            return "%s", label_escaped
        return ("%s", None) if isinstance(t, (Scalar, Enum, Bytes, Formatted)) else None
    if isinstance(t, Scalar):
        if t.kind == "bool":
            return "%s", BOOL_TEXT.__getitem__
        if t.kind == "float" and where in (NESTED, JSON):
            return "%s", nested_float if where == NESTED else json_float
        return "%s", None
    if isinstance(t, Enum):
        return "%s", _json_enum if where in (NESTED, JSON) else None
    if isinstance(t, Char):
        if where in (CSV, CSV_WHOLE):
            return "%s", csv_whole_cell if where == CSV_WHOLE else csv_field_cell
        return "%s", text_string if where == TEXT else json_str
    if isinstance(t, (Bytes, Formatted)):
        return ("%s" if where in (TEXT, CSV, CSV_WHOLE) else '"%s"'), None  # hex and addresses: nothing to escape
    return None


# -- CSV cells -------------------------------------------------------------------------------
# A string a CSV cell cannot hold as it is and read back the same: a field's cell that
# starts with a quote (readers unquote it) or holds bytes that are not UTF-8 (a CSV dump
# is UTF-8 text); a whole key or value (a ``key``/``value`` column, read as text output
# is read) whatever text output quotes.  Such a cell holds the C-quoted form, inside the
# cell's own CSV quoting (what csv.writer's QUOTE_MINIMAL does).
_csv_unsafe = lazy_pattern(r'\A"|[\ud800-\udfff]')  # compiled by the first CSV cell
_csv_quote = lazy_pattern(r'[,"\r\n]')


def csv_string(v: str, whole: bool = False) -> str:
    """A string as a CSV cell holds it (before the cell's own CSV quoting); ``whole``: the
    cell is a whole key or value, not one field of it."""
    if whole:
        return text_string(v)
    if v.isascii():  # the common case, at C speed: only a leading quote matters
        return c_quote(v) if v[:1] == '"' else v
    return v if _csv_unsafe().search(v) is None else c_quote(v)


def csv_quoted(v: str) -> str:
    """A cell as csv.writer (QUOTE_MINIMAL) writes it."""
    return '"' + v.replace('"', '""') + '"' if _csv_quote().search(v) else v


def csv_field_cell(v: str) -> str:
    return csv_quoted(csv_string(v))


def csv_whole_cell(v: str) -> str:
    return csv_quoted(csv_string(v, whole=True))


def raw_written(t: Type, where: str) -> tuple[list[str], str, Callable[[Any], Any] | None, bool] | None:
    """For writing straight from raw bytes (output.rows): (the struct codes of the leaf's
    items, host byte order, one item unless said; its template piece; a conversion of the
    unpacked item to its text, or None: as ``%s`` writes it; whether values tend to repeat,
    so a memo pays).  Numbers in the other byte order are unpacked as host-order numbers
    after their bytes are swapped (the caller swaps); an ipv4 address is its two halves,
    two host-order ``H`` items whose texts ("a.b") the caller looks up in a table
    (output.rows.half_texts), the conversion None.  None for arrays, structs and padding."""
    piece_conv = written(t, where)
    if piece_conv is None:
        return None
    piece, conv = piece_conv
    if isinstance(t, Formatted) and t.name == "ipv4":
        quote = '"' if where in (JSON, NESTED) else ""
        return ["H", "H"], f"{quote}%s.%s{quote}", None, False
    if isinstance(t, Scalar) and t.size != 16:
        return [native_code(t)], piece, conv, False
    if isinstance(t, Enum):
        names = enum_names(t.values)
        shown = {v: (conv(n) if conv is not None else n) for v, n in names.items()}
        return [native_code(t)], piece, lambda v: shown.get(v, v), False
    leaf = unpacking(t)
    assert leaf is not None, t
    value = eval(f"lambda v: {leaf.expr.format(v='v')}", dict(leaf.env)) if leaf.expr else None  # noqa: S307
    if value is None:
        item_conv = conv
    elif conv is None:
        item_conv = value
    else:
        item_conv = lambda v: conv(value(v))  # noqa: E731
    repeats = isinstance(t, Char) or (isinstance(t, Formatted) and t.name != "mac")  # names, addresses
    return [leaf.code], piece, item_conv, repeats
