"""``dump --sort FIELD [--top N]`` on raw batches: entries ordered by a leaf field read a
column at a time from the kernel's bytes, then written by the row writer, no entry
decoded.  The order is view.sort_entries's exactly: the same sort keys (integers as they
are; other leaves, decoded by the leaf rules, through view's sort_key: numbers before
text, enums by name, strings, addresses) in the same sequence, through the same
functions (a stable sort; heapq.nlargest/nsmallest for ``--top``), so the output is the
decoded path's byte for byte, NaN included; ``--top`` holds N entries, a full sort the
raw bytes of all (a tenth of their decoded size).  An array of numbers sorts by its
sum (view.sort_key's rule), an element (``hist[2]``) as a leaf; structs take the decoded path."""

from __future__ import annotations

import array
import heapq
import operator
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from ..core.columns import copy_columns
from ..errors import Param, words
from ..layout import TypeCodec, fields
from ..layout.codec import members
from ..layout.model import Array, Pad, Scalar, Struct, Type
from ..view import sort_key

RawBatch = tuple[bytes, bytes, int]
OUT_BATCH = 8192  # entries per batch handed to the writer
_TYPECODES = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h", (4, False): "I", (4, True): "i",
              (8, False): "Q", (8, True): "q"}  # fmt: skip


class SortField:
    """Where a leaf sort field lies in an entry's bytes, and how its sort keys are made."""

    __slots__ = ("side", "offset", "size", "signed", "swap", "integer", "leaf", "summed")

    def __init__(self, side: int, offset: int, t: Type) -> None:
        self.side, self.offset, self.size = side, offset, t.size
        self.summed: list[SortField] | None = None  # an array of numbers sorts by its sum (view.sort_key)
        if isinstance(t, Array):
            e = t.elem
            if isinstance(e, Scalar) and e.kind in ("uint", "int") and e.size <= 8:  # summed a column at a time
                self.summed = [SortField(side, offset + i * e.size, e) for i in range(t.count)]
            else:  # floats (sum()'s own order of additions), bools: each value decoded and summed
                self.summed = []
        self.integer = isinstance(t, Scalar) and t.kind in ("uint", "int") and t.size <= 8
        self.signed = isinstance(t, Scalar) and t.kind == "int"
        host = "<" if sys.byteorder == "little" else ">"
        self.swap = isinstance(t, Scalar) and t.order not in ("=", host) and t.size > 1
        self.leaf = None if self.integer or self.summed else _decoder(t)  # integer arrays: their elements

    def column(self, buf: bytes, stride: int, count: int) -> list[Any]:
        """The sort key of each of ``count`` entries ``stride`` bytes apart in ``buf``."""
        if self.summed:
            total = [0] * count
            for elem in self.summed:
                total = list(map(operator.add, total, elem.column(buf, stride, count)))
            return total  # integers: their own order is sort_key's
        col = bytearray(self.size * count)
        copy_columns(col, self.size, 0, buf, stride, self.offset, self.size, count)
        if self.summed is not None:
            assert self.leaf is not None
            return [sort_key(sum(v)) for v in self.leaf(bytes(col), count)]
        if self.leaf is not None:
            return list(map(sort_key, self.leaf(bytes(col), count)))
        a = array.array(_TYPECODES[(self.size, self.signed)])
        a.frombytes(col)
        if self.swap:
            a.byteswap()
        return a.tolist()  # integers: their own order is sort_key's


def sort_field(view: Any, field: str) -> SortField | None:
    """The field ``field`` names, on the side fields.side gives it (as
    view.field_getter reads it), when it is an integer this path sorts by; None
    otherwise (the decoded path sorts, or says what is wrong)."""
    if view.percpu:
        return None
    try:
        key_t, value_t = getattr(view.key, "type", None), getattr(view.value, "type", None)
        side, rest = fields.side(field, key_t, value_t, words(Param("sort"), f" {field}"))
    except Exception:  # the decoded path says what is wrong with it
        return None
    codec = (view.key, view.value)[side]
    if type(codec) is not TypeCodec:
        return None  # display formats change values: the decoded path
    found = _locate(codec.type, fields.keys(rest) if rest is not None else [])
    if found is None:
        return None
    off, t = found
    if isinstance(t, Array) and _numbers(t):
        return SortField(side, off, t)
    if isinstance(t, (Array, Struct, Pad)):
        return None  # a struct sorts by its text, an array of other things too: the decoded path
    return SortField(side, off, t)


def _numbers(t: Array) -> bool:
    """An array whose elements decode to numbers (summed for its sort key)."""
    e = t.elem
    return isinstance(e, Scalar) and e.kind in ("uint", "int", "float", "bool") and t.count > 0


def _decoder(t: Type) -> Any:
    """A function (bytes of ``count`` values of ``t`` back to back, count) -> the decoded
    values, as the codec decodes them."""
    return TypeCodec(t).decode_many


def _locate(t: Type, path: list[Any]) -> Any:
    """(offset, type) of ``path`` in ``t``; None when it has none this path sorts by."""
    off = 0
    for part in path:
        if not isinstance(part, str):  # an array's element
            if not isinstance(t, Array) or part >= t.count:
                return None  # the decoded path says what is wrong
            off += part * t.elem.size
            t = t.elem
            continue
        if not isinstance(t, Struct):
            return None
        found = [(f, base) for name, f, base in members(t, off) if name == part]
        if not found:
            return None
        f, base = found[-1]  # a name twice: the decoded dict keeps the last one's value
        if f.bit_size is not None:
            return None
        off = base + f.offset
        t = f.type
    return off, t


def sorted_batches(
    raw: Iterable[RawBatch], field: SortField, ksize: int, vsize: int, reverse: bool, top: int | None
) -> Iterator[RawBatch]:
    """``raw``'s entries in sort_entries's order, as raw batches."""
    if top is not None:
        return _top(raw, field, ksize, vsize, reverse, top)
    keys, values, col = bytearray(), bytearray(), []
    for k, v, n in raw:
        if not n:
            continue
        keys += k[: n * ksize]
        values += v[: n * vsize]
        col += field.column(k if field.side == 0 else v, ksize if field.side == 0 else vsize, n)
    order = sorted(range(len(col)), key=col.__getitem__, reverse=reverse)
    return _reordered(bytes(keys), bytes(values), order, ksize, vsize)


def _reordered(keys: bytes, values: bytes, order: list[int], ksize: int, vsize: int) -> Iterator[RawBatch]:
    for start in range(0, len(order), OUT_BATCH):
        part = order[start : start + OUT_BATCH]
        yield (
            b"".join([keys[i * ksize : (i + 1) * ksize] for i in part]),
            b"".join([values[i * vsize : (i + 1) * vsize] for i in part]),
            len(part),
        )


def _top(
    raw: Iterable[RawBatch], field: SortField, ksize: int, vsize: int, reverse: bool, top: int
) -> Iterator[RawBatch]:
    """The ``top`` largest (smallest with ``reverse``), as heapq picks them from the whole
    stream of sort keys (what sort_entries gives it), holding ``top`` entries."""
    pick = heapq.nsmallest if reverse else heapq.nlargest

    def entries() -> Iterator[tuple[Any, bytes, bytes]]:
        for k, v, n in raw:
            if not n:
                continue
            col = field.column(k if field.side == 0 else v, ksize if field.side == 0 else vsize, n)
            for i in range(n):
                yield col[i], k[i * ksize : (i + 1) * ksize], v[i * vsize : (i + 1) * vsize]

    chosen = pick(top, entries(), key=_first)
    if chosen:
        yield b"".join(e[1] for e in chosen), b"".join(e[2] for e in chosen), len(chosen)


def _first(e: tuple[Any, ...]) -> Any:
    return e[0]
