"""Whole batches of raw entries to text or JSON lines, one %-format per batch.

A dump reads keys and values from the kernel a batch at a time, packed back to back.
For a key and a value type made of leaves (numbers, strings, addresses, enums, hex) in
structs and arrays nested to any depth, this module compiles, once per type pair and
format:

- one buffer of rows, each entry's key items then its value items in the order the
  line writes them (copied from the kernel's batch a column at a time:
  columns.copy_columns; a struct's fields in order are one copy, a field that overlaps
  one before it -- a union's other member, an address's family -- a copy of its own),
  big-endian fields byte-swapped a column at a time, and one native-order struct unpack
  over every leaf of 2,048 rows: one tuple of items, no Python object per entry but the
  items;
- the line template: the entry's text with one ``%s`` per leaf, nested structs and
  arrays written as JSON around them;
- the conversions a few leaves need (strings cut at NUL and escaped for JSON, enum
  names, addresses, bools, non-finite floats, bitfields shifted and masked, display
  formats), applied a column at a time, each through a bounded memo when its values
  repeat (comm, addresses).

The lines are those ``output.write_entries`` writes for the decoded entries (text:
``Codec.format``; JSON: ``json_dumps`` of ``{"key": K, "value": V}``), byte for byte:
tests compare them on random nested layouts and random C structs and unions.  Types this
does not take (a bitfield over 9 bytes of a packed struct, a field name twice, more than
_MAX_ITEMS leaves) return None and go through the decoded path.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any

from ..core.columns import copy_columns
from ..host.hostnames import LIVE, Names
from ..layout.codec import members
from ..layout.formats import FormattedCodec, ip_kind, ip_text, shown_fields, shown_leaf
from ..layout.leaves import (
    CODES,
    CSV,
    CSV_WHOLE,
    HOST,
    JSON,
    NESTED,
    TEXT,
    enum_names,
    json_str,
    native_code,
    raw_written,
    written,
)
from ..layout.model import IPV6, Array, Bytes, Char, Enum, Field, Scalar, Struct, Type

_MAX_ITEMS = 1024  # leaves per entry past which a template is more text than it is worth
CHUNK = 2048  # entries formatted at once (a kernel batch holds ~1 MiB of them)
_MEMO_MAX = 1 << 16  # values a memoised conversion keeps (a few MiB at most)
_INTS = frozenset("bBhHiIlLqQ")  # struct codes of integers: written by %d

Column = Callable[[list[Any]], list[Any]]  # a conversion of one column of items


def _memo(convert: Callable[[Any], Any]) -> Column:
    """A column conversion through a bounded memo: map lookups at C speed while the values
    repeat (a task name, an address), ``convert`` once per new value.  A column of mostly
    new values (every flow's own address) is converted straight, without the memo."""
    cache: dict[Any, Any] = {}

    def column(items: list[Any]) -> list[Any]:
        try:
            return list(map(cache.__getitem__, items))
        except KeyError:
            new = set(items).difference(cache)
            if len(new) * 4 > len(items):  # few repeats: the memo would cost more than it saves
                return list(map(convert, items))
            if len(cache) + len(new) > _MEMO_MAX:
                cache.clear()
            cache.update(zip(new, map(convert, new)))
            return list(map(cache.__getitem__, items))

    return column


def half_texts(order: str = HOST) -> tuple[bytes, ...]:
    """The texts "a.b" of the 65,536 halves of an ipv4 address (octets a, b), indexed by
    the half's bytes read as an ``order`` (``<`` or ``>``) 16-bit integer: one lookup
    and one ``%s`` a half, where its octets were two ``%d`` (the table is made once a
    process has written TABLE_AFTER halves, ~4 ms)."""
    octets = [b"%d" % i for i in range(256)]
    if order == "<":  # a | b << 8: a block of 256 per second octet
        text = b"".join([(b"." + b + b"\n").join(octets) + b"." + b + b"\n" for b in octets])
    else:  # a << 8 | b: a block per first octet
        text = b"".join([a + b"." + (b"\n" + a + b".").join(octets) + b"\n" for a in octets])
    return tuple(text.splitlines())


TABLE_AFTER = 32_768  # halves written octet by octet before the table pays (~140 ns a half against its 4 ms)


class _Halves:
    """The process's half_texts(), made once it has written TABLE_AFTER halves octet by
    octet (a small dump does not pay for the table)."""

    table: tuple[bytes, ...] = ()
    written = 0


def octet_texts(items: list[int], order: str = HOST) -> list[bytes]:
    """A column of ipv4 address halves (read as ``order`` 16-bit integers) -> their texts
    "a.b", octet by octet: what a small dump writes without making the table."""
    o = _octets()
    if order == "<":
        return [o[v & 255] + b"." + o[v >> 8] for v in items]
    return [o[v >> 8] + b"." + o[v & 255] for v in items]


_OCTETS: list[bytes] = []


def _octets() -> list[bytes]:
    if not _OCTETS:
        _OCTETS.extend(b"%d" % i for i in range(256))
    return _OCTETS


def _halves(items: list[Any]) -> list[Any]:
    """A column of ipv4 address halves -> their texts: octet by octet for a process's first
    TABLE_AFTER halves, then from half_texts() (itemgetter: a lookup at C speed)."""
    table = _Halves.table
    if not table:
        if _Halves.written < TABLE_AFTER:
            _Halves.written += len(items)
            return octet_texts(items)
        table = _Halves.table = half_texts()
    if len(items) < 2:  # itemgetter of one index gives the item, not a tuple
        return [table[i] for i in items]
    return itemgetter(*items)(table)  # type: ignore[no-any-return]  # a tuple, for a slice


def _each(convert: Callable[[Any], Any]) -> Column:
    return lambda items: list(map(convert, items))


def _utf8(text: Any) -> bytes:
    """What ``%s`` writes of ``text``, as the bytes a row's template holds (a lone
    surrogate too: the lines are decoded back the same way)."""
    return (text if type(text) is str else str(text)).encode("utf-8", "surrogatepass")


def _text(convert: Callable[[Any], Any]) -> Callable[[Any], bytes]:
    """An item's conversion to the bytes of its text (the memo keeps those)."""
    return lambda v: _utf8(convert(v))


def _bits(shift: int, bits: int, signed: bool, named: Callable[[int], Any] | None) -> Column:
    """A column of a bitfield's storage units -> its values: shifted, masked and
    sign-extended (``(v ^ sign) - sign``) in one comprehension, then an enum's names."""
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)
    if signed:
        column: Column = lambda items: [((v >> shift & mask) ^ sign) - sign for v in items]  # noqa: E731
    elif shift:
        column = lambda items: [v >> shift & mask for v in items]  # noqa: E731
    else:
        column = lambda items: [v & mask for v in items]  # noqa: E731
    if named is None:
        return column
    names = _memo(_text(named))
    return lambda items: names(column(items))


class Plan:
    """The unpacking of an entry into a row for one line's template: the byte ranges
    copied from the kernel's keys or values (``source``) as runs, a native-order struct
    format over every leaf in template order, the ranges to swap into host order first,
    and each item's conversion.  Leaves come in the order the line writes them; a leaf
    at or past the end of the run being copied extends it (gaps become pad bytes), one
    behind it or from the other source (a union's other member, a family field read
    again, a label from the key after one from the value) starts a new run at the row's
    end: fields that overlap in the kernel's bytes get a copy each.  output.rows' writers
    and export/exposition build one, then compile_plan."""

    def __init__(self) -> None:
        self.fmt, self.pos, self.n = "=", 0, 0  # pos: the row bytes laid out so far
        self.source = 0  # where the next items come from: 0 the keys, 1 the values
        self.runs: list[list[int]] = []  # [source, its offset, row offset, size]: copied a column at a time
        self.open = False  # the last run may grow
        self.swaps: list[tuple[int, int]] = []  # (row offset, size) of fields to byte-swap
        self.convs: dict[int, Column] = {}  # item index -> its column conversion
        self.pairs: dict[int, Callable[[list[Any], list[Any]], list[Any]]] = {}  # item -> conversion with the next
        self.specs: list[str] = []  # each item's spec in the bytes template: %d an int, %a a float, %s its text
        self.claimed: list[tuple[int, int]] = []  # the row bytes items are read from (the rest: pad)

    def _place(self, off: int, size: int, closed: bool = False) -> int:
        """The row offset of ``size`` bytes copied from ``off`` in the kernel's bytes;
        ``closed``: a run of their own that nothing after extends."""
        run = self.runs[-1] if self.runs and self.open and not closed else None
        if run is not None and run[0] == self.source and off - run[1] + run[2] >= self.pos:
            at = off - run[1] + run[2]
            if at > self.pos:
                self.fmt += f"{at - self.pos}x"
            run[3] = at + size - run[2]
        else:  # a new run, at a row offset as aligned as its source bytes (up to 8): columns.copy_columns
            low = (off | size) & -(off | size)  # copies a column of the widest unit that all allow
            at = -(-self.pos // min(low, 8)) * min(low, 8)
            if at > self.pos:
                self.fmt += f"{at - self.pos}x"
            self.runs.append([self.source, off, at, size])
        self.open = not closed
        self.pos = at + size
        self.claimed.append((at, at + size))
        return at

    def _item(self, off: int, size: int, code: str, conv: Column | None = None) -> int:
        at = self._place(off, size)
        self._code(code, conv)
        return at

    def _code(self, code: str, conv: Column | None = None, spec: str | None = None) -> None:
        """One item of struct code ``code``, through ``conv`` (a column of items -> the
        bytes of their texts; ``spec`` says when it gives something else)."""
        self.fmt += code
        if conv is not None:
            self.convs[self.n] = conv
        self.specs.append(
            spec or ("%s" if conv is not None else "%d" if code in _INTS else "%a" if code in "efd" else "%s")
        )
        self.n += 1
        if self.n > _MAX_ITEMS:
            raise NotRow("too many leaves")

    def _swap(self, at: int, t: Type) -> None:
        if isinstance(t, Scalar) and t.order not in ("=", HOST) and 1 < t.size < 16:  # 16: from its bytes
            self.swaps.append((at, t.size))  # swapped a column at a time, then unpacked in host order

    # -- templates: every literal's % doubled, one %s per item ---------------------------

    def piece(self, t: Type, off: int, where: str) -> str:
        """The template of a value of ``t`` at ``off`` written ``where``."""
        if isinstance(t, _Shown):
            return self._shown(t, off, where)
        if isinstance(t, Mean):  # a float's text from two integers: no float formatted
            self._item(off, 8, "Q")  # the quotient
            digits = {f: _utf8(text) for f, text in t.fractions.items()}
            self._item(off + 8, 4, "I", None if t.ncpus <= 2 else _each(digits.__getitem__))
            return "%s.%s"
        leaf = raw_written(t, where)  # every leaf's rule: layout.leaves
        if leaf is not None:
            codes, piece, conv, repeats = leaf
            if len(codes) > 1:  # an ipv4 address: each half's text "a.b" from a table
                self._place(off, t.size)
                for code in codes:
                    self._code(code, _halves)
                return piece
            column = None if conv is None else _memo(_text(conv)) if repeats else _each(_text(conv))
            self._swap(self._item(off, t.size, codes[0], column), t)
            return piece
        inner = NESTED if where == TEXT else where  # nested data in text is compact JSON
        sep, colon = (",", ":") if inner == NESTED else (", ", ": ")
        if isinstance(t, Array):
            return "[" + sep.join(self.piece(t.elem, off + i * t.elem.size, inner) for i in range(t.count)) + "]"
        if isinstance(t, Struct):
            return (
                "{"
                + sep.join(_literal(json_str(n)) + colon + self.member(f, b, inner) for n, f, b in _members(t, off))
                + "}"
            )
        raise NotRow(type(t).__name__)

    def member(self, f: Field, base: int, where: str) -> str:
        """The template of field ``f`` of the struct at ``base``."""
        if f.bit_size is not None:
            return self._bitfield(f, base, where)
        return self.piece(f.type, base + f.offset, where)

    def _bitfield(self, f: Field, base: int, where: str) -> str:
        """A bitfield as the decoder reads it: the little-endian bytes holding its bits in
        a slot of their own (1, 2, 4 or 8 bytes), shifted and masked a column at a time,
        sign-extended, an enum's name; any other integer type written as a number."""
        t, bits = f.type, f.bit_size
        assert bits is not None and f.bit_offset is not None
        if isinstance(t, Enum):
            leaf = raw_written(t, where)
            assert leaf is not None
            named = leaf[2]
        elif isinstance(t, Scalar) and t.kind in ("uint", "int", "bool"):
            named = None
        else:
            raise NotRow("bitfield type")
        first, shift = divmod(base * 8 + f.bit_offset, 8)
        nbytes = (shift + bits + 7) // 8
        slot = next((n for n in (1, 2, 4, 8) if n >= nbytes), 0)
        if not slot or not bits:
            raise NotRow("bitfield size")
        at = self._place(first, nbytes, closed=True)
        self.pos = at + slot  # bytes past the bitfield's in the slot stay zero (a row starts zeroed)
        self.claimed.append((at, at + slot))
        if HOST != "<" and slot > 1:
            self.swaps.append((at, slot))
        column = _bits(shift, bits, getattr(t, "signed", False), named)
        self._code(CODES[("uint", slot)], column, None if named is not None else "%d")
        return "%s"

    def _shown(self, t: _Shown, off: int, where: str) -> str:
        """An integer through a display format (--as ksym, errno, ...): the name where it
        has one, written as a string is, else the number as the integer is."""
        inner = t.inner
        if t.fmt == "ip":
            return self._ip(t, off, where)
        text = written(Char(1), where)
        assert text is not None
        string = text[1]
        leaf = raw_written(inner, where)
        show = shown_leaf(t.fmt, inner.size, t.names)
        if leaf is None or show is None or len(leaf[0]) != 1:
            raise NotRow("format")
        codes, piece, number, _repeats = leaf
        if piece != "%s" or string is None:
            raise NotRow("format")

        def conv(v: Any) -> Any:
            r = show(v)
            if type(r) is str:
                return string(r)
            return number(r) if number is not None else r

        self._swap(self._item(off, inner.size, codes[0], _memo(_text(conv))), inner)
        return piece

    def _ip(self, t: _Shown, off: int, where: str) -> str:
        """``--as FIELD=ip``: the address's bytes, and the family field beside it read
        again right after them; the pair becomes the address (or the hex bytes for
        another family) and an empty string, as FormattedCodec shows it.  Addresses and
        hex need no escaping anywhere: written as ipv6 leaves are."""
        size = t.size
        self._item(off, size, f"{size}s")
        piece = written(IPV6, where)
        assert piece is not None
        if t.family is None:
            self.convs[self.n - 1] = _each(lambda raw: ip_text(raw, None, size).encode())
            return piece[0]
        ftype, delta = t.family
        if isinstance(ftype, Enum):
            names = enum_names(ftype.values)
            family: Callable[[Any], Any] = lambda v: names.get(v, v)  # noqa: E731
        elif isinstance(ftype, Scalar) and ftype.kind in ("uint", "int") and ftype.size <= 8:
            family = int
        else:
            raise NotRow("family field")
        self._swap(self._item(off + delta, ftype.size, native_code(ftype)), ftype)
        kinds = _memo(lambda f: ip_kind(family(f), size))  # the family's few values: a dict lookup each
        import socket  # only here: an import that costs more than a short dump

        ntop, v4, v6 = socket.inet_ntop, socket.AF_INET, socket.AF_INET6

        def pair(raws: list[bytes], fams: list[Any]) -> list[bytes]:
            return [
                (ntop(v4, r[:4]) if k == 4 else ntop(v6, r[:16]) if k == 6 else r.hex(" ")).encode()
                for r, k in zip(raws, kinds(fams))
            ]

        self.pairs[self.n - 2] = pair
        self.specs[-1] = "%s"  # the family field's item: the pair's empty text
        return piece[0].replace("%s", "%s%s")

    def top(self, t: Type, fmt: str, base: int = 0) -> str:
        """The template of a whole key or value at ``base``: text ``name=value,...`` for a
        struct or union (or the value alone), JSON as json.dumps writes it."""
        if fmt == "text" and isinstance(t, Struct):
            return ",".join(_literal(n) + "=" + self.member(f, b, TEXT) for n, f, b in _members(t, base))
        return self.piece(t, base, TEXT if fmt == "text" else JSON)

    def cells(self, t: Type, off: int, name: str, whole: bool, out: list[tuple[str, str]]) -> None:
        """CSV: (column name, template piece) of every leaf of a value of ``t`` at ``off``,
        in the order output.entries.flatten names them (``key.a``, ``value.hist[2]``)."""
        where = CSV_WHOLE if whole else CSV
        if isinstance(t, _Shown) or raw_written(t, where) is not None:
            out.append((name, self.piece(t, off, where)))
            return
        if isinstance(t, Array):
            for i in range(t.count):
                self.cells(t.elem, off + i * t.elem.size, f"{name}[{i}]", False, out)
            return
        if isinstance(t, Struct):
            for n, f, b in _members(t, off):
                if f.bit_size is not None:
                    out.append((f"{name}.{n}", self._bitfield(f, b, CSV)))
                else:
                    self.cells(f.type, b + f.offset, f"{name}.{n}", False, out)
            return
        raise NotRow(type(t).__name__)

    def per_cpu(self, t: Type, fmt: str, ncpus: int) -> str:
        """A per-CPU value: one value of ``t`` per CPU, each in a slot rounded up to 8
        bytes; text: tab-separated, JSON: a list."""
        stride = (t.size + 7) & ~7
        parts = [self.top(t, fmt, i * stride) for i in range(ncpus)]
        return "\t".join(parts) if fmt == "text" else "[" + ", ".join(parts) + "]"


class NotRow(Exception):
    """A type the row writer does not take (a Plan's builder falls back on decoding)."""


def _members(t: Struct, base: int) -> list[tuple[str, Field, int]]:
    """layout.codec.members (the fields a struct decodes to, anonymous members' in their
    place); a name twice is not taken."""
    out = members(t, base)
    if len({n for n, _f, _b in out}) != len(out):
        raise NotRow("a field name twice")
    return out


def _literal(text: str) -> str:
    return text.replace("%", "%%")


class _Shown(Type):
    """An integer leaf written through a display format (``--as``); for ``ip``, the
    address's bytes with the type of the family field beside it and where it lies from
    the address (None: no family field)."""

    __slots__ = ("inner", "fmt", "size", "align", "family", "names")

    def __init__(self, inner: Type, fmt: str, family: tuple[Type, int] | None = None, names: Names = LIVE) -> None:
        self.inner, self.fmt, self.size, self.align, self.family = inner, fmt, inner.size, inner.align, family
        self.names = names  # where the name of a number comes from (the host's, or a saved file's)

    def c_name(self) -> str:
        return self.inner.c_name()


class Mean(Type):
    """An integer leaf of ``--percpu avg``: its sum s over ``ncpus`` CPUs (2**m, up to
    256) stored as the quotient s >> m (u64) and the remainder's fraction's digits as a
    number, F = (s & (2**m - 1)) * 5**m (u32: r / 2**m == r * 5**m / 10**m), 16 bytes in
    all, and written ``Q.F``: F's m digits, zeros cut at the end (no conversion with 1
    or 2 CPUs: F is 0 or 5).  That is the text of the float s / ncpus (repr: what %s and
    json.dumps write) for s from 0 to below 2**exact_bits(ncpus), and only there:
    output.percpu writes other sums as floats."""

    __slots__ = ("ncpus", "size", "align", "fractions")

    def __init__(self, ncpus: int) -> None:
        m = ncpus.bit_length() - 1
        if ncpus != 1 << m or m > 8:
            raise ValueError(f"ncpus {ncpus}: a power of two up to 256")
        self.ncpus, self.size, self.align = ncpus, 16, 8
        self.fractions = {r * 5**m: str(r * 5**m).rjust(m, "0").rstrip("0") or "0" for r in range(ncpus)}

    def __hash__(self) -> int:
        return hash((Mean, self.ncpus))

    def c_name(self) -> str:
        return "double"


def exact_bits(ncpus: int) -> int:
    """E such that a Mean's text is the float's for sums below 2**E: s / ncpus is exact
    (s < 2**53) and its repr is that exact decimal when the float's spacing (at most
    s / ncpus / 2**52) is under twice the place of its last fraction digit (10**-m at
    most, ncpus = 2**m), so no shorter decimal reads back as the same float: s < 2**53 /
    5**m.  (Fixed notation, as repr writes from 1e-4 up to 1e16: 1 / 256 is over 1e-4.)"""
    bound: int = (1 << 53) // 5 ** (ncpus.bit_length() - 1)
    return bound.bit_length() - 1


def _shown_type(codec: Any) -> Type | None:
    """A FormattedCodec's type with each shown field a _Shown leaf (None when a family
    field ``ip`` reads is itself shown, or is not a plain integer field)."""
    shown = shown_fields(codec)
    t: Type | None = codec.inner.type
    for parts, fmt, family in shown:
        if family is not None and any(p == [*parts[:-1], family] for p, _f, _fam in shown):
            return None  # the family as the decoded path sees it would be a name
        t = _with_shown(t, parts, fmt, family, codec.names) if t is not None else None
        if t is None:
            return None
    return t


def _with_shown(t: Type, parts: list[str], fmt: str, family: str | None, names: Names) -> Type | None:
    if not parts:
        if fmt == "ip":
            return None
        if isinstance(t, Scalar) and t.kind in ("uint", "int") and t.size <= 8:
            return _Shown(t, fmt, names=names)
        if isinstance(t, Array) and isinstance(t.elem, Scalar) and t.elem.kind in ("uint", "int") and t.elem.size <= 8:
            return Array(_Shown(t.elem, fmt, names=names), t.count)
        return None
    if not isinstance(t, Struct) or t.union:
        return None
    fields = []
    found = False
    for f in t.fields:
        if f.name == parts[0] and f.bit_size is None:
            if fmt == "ip" and len(parts) == 1:
                inner: Type | None = _ip_leaf(t, f, family)
            else:
                inner = _with_shown(f.type, parts[1:], fmt, family, names)
            if inner is None:
                return None
            f = Field(f.name, inner, f.offset)
            found = True
        fields.append(f)
    return Struct(t.name, tuple(fields), t.size, t.align, t.union, t.packed, t.section) if found else None


def _ip_leaf(parent: Struct, f: Field, family: str | None) -> Type | None:
    """``--as FIELD=ip``'s leaf: the address bytes, and the family field beside them
    (a plain integer or enum field; else None: the decoded path writes it)."""
    if not isinstance(f.type, Bytes):
        return None
    if family is None:
        return _Shown(f.type, "ip")
    fam = next((m for m in parent.fields if m.name == family), None)
    if fam is None or fam.bit_size is not None or not isinstance(fam.type, (Scalar, Enum)):
        return None
    if isinstance(fam.type, Scalar) and (fam.type.kind not in ("uint", "int") or fam.type.size > 8):
        return None
    return _Shown(f.type, "ip", (fam.type, fam.offset - f.offset))


def _type_of(codec: Any) -> Type | None:
    from ..layout import HexCodec, IdCodec, TypeCodec

    if isinstance(codec, FormattedCodec):
        return _shown_type(codec)
    if isinstance(codec, TypeCodec):
        return codec.type
    if type(codec) is HexCodec:
        return Bytes(codec.size)
    if type(codec) is IdCodec:
        return _LE32
    return None


row_type = _type_of  # a codec's type as the row writer writes it (display formats as its leaves), or None

_LE32 = Scalar("u32", "uint", 4, "<")  # a kernel object id, as IdCodec reads it; a record's CPU

_WRITERS: dict[tuple[Any, ...], Callable[[bytes, bytes, int], str] | None] = {}


def row_writer(
    fmt: str, key_codec: Any, value_codec: Any, ncpus: int | None = None
) -> Callable[[bytes, bytes, int], str] | None:
    """For ``text``, ``jsonl`` and ``json``: a function (keys, values, count) -> the
    entries' lines (``json``: each entry's object on a line, framed by the caller), or
    None when a side's type is not made of leaves this module writes.  ``ncpus``: the
    values are per-CPU, ``ncpus`` slots each (text ``KEY<TAB>V0<TAB>V1``, JSON
    ``{"key": K, "values": [V0, V1]}``)."""
    kt, vt = _type_of(key_codec), _type_of(value_codec)
    if fmt not in ("text", "jsonl", "json") or kt is None or not kt.size:
        return None
    if fmt == "text":
        return _writer("text", kt, vt, ncpus, ("", "\t", "\n"))
    return _writer("json", kt, vt, ncpus, ('{"key": ', ', "value": ' if ncpus is None else ', "values": ', "}\n"))


def csv_writer(key_codec: Any, value_codec: Any, ncpus: int | None = None) -> Callable[[bytes, bytes, int], str] | None:
    """CSV rows straight from raw batches: a function (keys, values, count) -> the rows,
    with ``header`` (the column row, written before the first row); None as row_writer.
    The bytes output.entries writes for the decoded entries (csv.writer's quoting; a row
    holding a carriage return is written by the decoded path, all quoted, as it is)."""
    return _compiled("csv", key_codec, value_codec, ncpus, _compile_csv)


def _compile_csv(kt: Type, vt: Type, ncpus: int | None) -> Callable[[bytes, bytes, int], str]:
    row = Plan()
    kcells: list[tuple[str, str]] = []
    vcells: list[tuple[str, str]] = []
    row.cells(kt, 0, "key", True, kcells)
    row.source = 1
    if ncpus is None:
        row.cells(vt, 0, "value", True, vcells)
    else:
        stride = (vt.size + 7) & ~7
        for c in range(ncpus):
            row.cells(vt, c * stride, f"values[{c}]", True, vcells)
    names = [n for n, _p in kcells + vcells]
    if len(names) < 2:
        raise NotRow("one column")
    line = ",".join(p for _n, p in kcells + vcells) + "\n"
    lines = compile_plan(row, line, kt.size, _vsize(vt, ncpus))
    lines.header = _csv_header(names)  # type: ignore[attr-defined]
    return lines


SEP = "\x00"  # between a table's cells (text output escapes every control character a value holds)


def cell_writer(
    key_codec: Any, value_codec: Any, ncpus: int | None = None
) -> Callable[[bytes, bytes, int], str] | None:
    """A table's cells straight from raw batches: a function (keys, values, count) -> each
    entry's cells, SEP between them and after the last; with ``columns`` (the header)
    and ``strings`` (the columns that hold text, which a terminal needs made safe).  The
    cells are what output.table makes of the decoded entries (format_text of each
    top-level field; per CPU, each CPU's value).  None as row_writer."""
    return _compiled("cells", key_codec, value_codec, ncpus, _compile_cells)


def _compiled(
    kind: str, key_codec: Any, value_codec: Any, ncpus: int | None, compile: Callable[..., Any]
) -> Callable[[bytes, bytes, int], str] | None:
    """``compile(key type, value type, ncpus)``, made once per types (None: a type this
    module does not write)."""
    kt, vt = _type_of(key_codec), _type_of(value_codec)
    if kt is None or not kt.size or vt is None or not vt.size:
        return None
    return _made_once((kind, kt, vt, ncpus, None), lambda: compile(kt, vt, ncpus))  # type: ignore[no-any-return]


def _made_once(cache_key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """``make()``'s lines function, kept under ``cache_key`` (None: a type this module
    does not write)."""
    if cache_key not in _WRITERS:
        if len(_WRITERS) >= 64:  # a long batch of many layouts: keep the memos bounded
            _WRITERS.clear()
        try:
            _WRITERS[cache_key] = make()
        except NotRow:
            _WRITERS[cache_key] = None
    return _WRITERS[cache_key]


def _top_cells(side: Plan, t: Type, base: int, name: str, out: list[tuple[str, str, bool]]) -> None:
    """(column, template, holds text) of each top-level field of a struct, or the whole value."""
    if isinstance(t, Struct):
        for n, f, b in _members(t, base):
            if f.bit_size is None and isinstance(f.type, Struct):
                piece = side.top(f.type, "text", b + f.offset)  # name=value,... as format_text writes it
            else:
                piece = side.member(f, b, TEXT)
            out.append((f"{name}.{n}" if name == "key" else n, piece, _has_text(f.type)))
        return
    out.append((name, side.top(t, "text", base), _has_text(t)))


def _has_text(t: Type) -> bool:
    if isinstance(t, (Char, _Shown)):
        return True
    if isinstance(t, Array):
        return _has_text(t.elem)
    if isinstance(t, Struct):
        return any(_has_text(f.type) for f in t.fields)
    return False


def _compile_cells(kt: Type, vt: Type, ncpus: int | None) -> Callable[[bytes, bytes, int], str]:
    row = Plan()
    cells: list[tuple[str, str, bool]] = []
    _top_cells(row, kt, 0, "key", cells)
    row.source = 1
    if ncpus is None:
        _top_cells(row, vt, 0, "value", cells)
    else:
        stride = (vt.size + 7) & ~7
        for c in range(ncpus):
            cells.append((f"cpu{c}", row.top(vt, "text", c * stride), _has_text(vt)))
    line = "".join(p + SEP for _n, p, _t in cells)
    lines = compile_plan(row, line, kt.size, _vsize(vt, ncpus))
    lines.columns = [n for n, _p, _t in cells]  # type: ignore[attr-defined]
    lines.strings = [i for i, (_n, _p, t) in enumerate(cells) if t]  # type: ignore[attr-defined]
    return lines


def _csv_header(names: list[str]) -> str:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(names)
    return buf.getvalue()


def record_writer(fmt: str, codec: Any, cpus: bool = False) -> Callable[[bytes, bytes, int], str] | None:
    """For ``text`` and ``jsonl`` event records: a function (cpus, records, count) -> their
    lines (text: the value; JSON ``{"value": V}``, ``{"cpu": C, "value": V}`` when
    ``cpus``: then ``cpus`` holds each record's CPU as a u32), or None as row_writer."""
    vt = _type_of(codec)
    if fmt == "text":
        return _writer("text", None, vt, None, ("", "", "\n"))
    if cpus:
        return _writer("json", _LE32, vt, None, ('{"cpu": ', ', "value": ', "}\n"))
    return _writer("json", None, vt, None, ('{"value": ', "", "}\n"))


def _writer(
    fmt: str, kt: Type | None, vt: Type | None, ncpus: int | None, frame: tuple[str, str, str]
) -> Callable[[bytes, bytes, int], str] | None:
    """The compiled lines function for these types and line frame, made once (None: a
    type this module does not write)."""
    if vt is None or not vt.size:
        return None
    return _made_once((fmt, kt, vt, ncpus, frame), lambda: _compile(fmt, kt, vt, ncpus, frame))  # type: ignore[no-any-return]


def _compile(
    fmt: str, kt: Type | None, vt: Type, ncpus: int | None, frame: tuple[str, str, str]
) -> Callable[[bytes, bytes, int], str]:
    """Lines ``HEAD KEY MID VALUE TAIL`` (``frame``; no KEY when ``kt`` is None)."""
    row = Plan()
    kbody = row.top(kt, fmt) if kt is not None else ""
    row.source = 1
    vbody = row.top(vt, fmt) if ncpus is None else row.per_cpu(vt, fmt, ncpus)
    head, mid, tail = frame
    return compile_plan(row, head + kbody + mid + vbody + tail, kt.size if kt is not None else 0, _vsize(vt, ncpus))


def _vsize(vt: Type, ncpus: int | None) -> int:
    """The bytes of one entry's value in a kernel batch (per CPU: a slot of 8-byte multiples each)."""
    return vt.size if ncpus is None else ncpus * ((vt.size + 7) & ~7)


def compile_plan(plan: Plan, line: str, ksize: int, vsize: int) -> Callable[[bytes, bytes, int], str]:
    """The lines function of one entry's template ``line`` over ``plan``'s items, from
    batches of keys ``ksize`` and values ``vsize`` bytes each."""
    size = -(-plan.pos // 8) * 8  # a row: the entry's items in the order the line writes them, 8-byte aligned
    row = plan.fmt[1:] + "x" * (size - plan.pos)
    if struct.calcsize("=" + row) != size:
        raise NotRow("size")
    template = _bytes_template(plan, line)
    strides = (ksize, vsize)
    copies = [
        (at, source, strides[source], src, _widened(plan, size, strides[source], src, at, n))
        for source, src, at, n in plan.runs
    ]
    swaps, per = plan.swaps, plan.n
    convs, pairs = sorted(plan.convs.items()), sorted(plan.pairs.items())
    unpackers: dict[int, Callable[[Any], tuple[Any, ...]]] = {}

    def utf8_pieces(keys: bytes, values: bytes, count: int) -> Iterator[tuple[bytes, int]]:
        """(lines in UTF-8, how many) for each chunk of a kernel batch: the items of a
        chunk stay in the CPU's caches, and a writer writes each piece without joining
        them (to a UTF-8 stream's bytes as they are: output.entries.utf8_sink)."""
        kv, vv = memoryview(keys), memoryview(values)
        for i in range(0, count, CHUNK):
            n = min(CHUNK, count - i)
            yield chunk(kv[i * ksize :], vv[i * vsize :], n), n

    def pieces(keys: bytes, values: bytes, count: int) -> Iterator[tuple[str, int]]:
        """(lines, how many) for each chunk, as utf8_pieces, as text."""
        for data, n in utf8_pieces(keys, values, count):
            yield data.decode("utf-8", "surrogatepass"), n

    def lines(keys: bytes, values: bytes, count: int) -> str:
        if count > CHUNK:
            return "".join(text for text, _n in pieces(keys, values, count))
        return chunk(keys, values, count).decode("utf-8", "surrogatepass")

    def chunk(keys: bytes | memoryview, values: bytes | memoryview, count: int) -> bytes:
        rows = bytearray(count * size)  # each entry's items, in template order
        sources = (keys, values)
        for at, source, stride, src, n in copies:  # a struct's fields in order: one copy
            copy_columns(rows, size, at, sources[source], stride, src, n, count)
        for off, n in swaps:  # each byte of a big-endian field, a column at a time
            cols = [rows[off + i :: size] for i in range(n)]
            for i in range(n):
                rows[off + i :: size] = cols[n - 1 - i]
        unpack = unpackers.get(count)
        if unpack is None:  # every leaf of ``count`` entries in one tuple, no tuple per entry
            unpack = struct.Struct("=" + row * count).unpack
            if len(unpackers) < 8:  # the chunk size, and a batch's last chunks
                unpackers[count] = unpack
        items: Any = unpack(rows)
        if convs or pairs:
            items = list(items)
            for j, conv in convs:  # each converted leaf, a column at a time
                items[j::per] = conv(items[j::per])
            for j, pair in pairs:  # an address and its family: the text, and nothing
                items[j::per] = pair(items[j::per], items[j + 1 :: per])
                items[j + 1 :: per] = [b""] * count
            items = tuple(items)
        # bytes: a %-format of bytes copies its literals whole and writes integers in place
        data: bytes = (template * count) % items
        return data

    lines.pieces = pieces  # type: ignore[attr-defined]  # write_item_batches writes chunk by chunk
    lines.utf8_pieces = utf8_pieces  # type: ignore[attr-defined]
    return lines


def _bytes_template(plan: Plan, line: str) -> bytes:
    """``line`` (one ``%s`` per item) as the bytes template of the row's items: ``%d``
    for an integer, ``%a`` for a float (its repr, as ``%s`` writes it), ``%s`` for the
    bytes of a text a conversion gave."""
    converted = set(plan.convs) | set(plan.pairs) | {j + 1 for j in plan.pairs}
    if any(spec == "%s" and j not in converted for j, spec in enumerate(plan.specs)):
        raise NotRow("an item with no text")
    specs = iter(plan.specs)
    try:
        text = re.sub("%[%s]", lambda m: "%%" if m.group() == "%%" else next(specs), line)
    except StopIteration:
        raise NotRow("template") from None
    if next(specs, None) is not None:
        raise NotRow("template")
    return text.encode("utf-8", "surrogatepass")


def _widened(plan: Plan, size: int, stride: int, src: int, at: int, n: int) -> int:
    """The bytes to copy for a run of ``n`` at row offset ``at`` from ``src`` in records
    ``stride`` apart: rounded up to a wider unit (8, 4, 2) where the bytes past it are pad
    in the row and inside the record, so copy_columns moves fewer, wider columns (13 bytes
    of a 16-byte key: two 8-byte columns, not 13 single bytes)."""
    for unit in (8, 4, 2):
        end = at + -(-n // unit) * unit
        if (at | src | stride | size) % unit or src + end - at > stride or end > size:
            continue
        if all(b <= at + n or a >= end for a, b in plan.claimed):
            return end - at
    return n
