"""``dump --cpu N`` and ``--percpu sum|max|min`` on raw batches: one CPU's slot copied out
a column at a time, or the CPUs' values reduced a leaf column at a time, into plain
values the row writer formats, no entry decoded.  The result is view.aggregate's on the
decoded values (numbers summed or compared, strings and bools from CPU 0), so the lines
are the decoded path's; a batch whose sum does not fit the field (a u64 counter summed
over CPUs past 2^64) is written by the decoded path, which shows the whole number.
``avg`` makes every integer a float (the sum over the CPUs, divided once), written
through the same type with those fields as f64; with a power-of-two count of CPUs a
chunk whose sums are all small enough (output.rows.exact_bits) is written from each
sum's quotient and remainder instead (output.rows.Mean: the same text, with no float
formatted, which costs several times an integer's).  Values with floats (whose sums depend
on the order), enums (names), bitfields, unions or fields in the other byte order take
the decoded path.  A kernel batch is worked a chunk of entries at a time, as the row
writer works one (output.rows.CHUNK): a chunk's items stay in the caches and its memory
is used again by the next, where a whole batch's would be fresh pages each time."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from operator import add
from typing import Any

from ..core.columns import copy_columns
from ..layout import TypeCodec
from ..layout.leaves import CODES
from ..layout.model import SCALARS, Array, Bytes, Char, Member, Scalar, Struct, Type, layout_struct
from ..view import aggregate
from .rows import CHUNK, Mean, exact_bits

Lines = Callable[[bytes, bytes, int], str]
Utf8 = Callable[[bytes, bytes, int], bytes]  # a chunk's lines in UTF-8
Means = Callable[[bytes, list[Any], int], "bytes | None"]
Lanes = Callable[[bytes, bytes, int], "bytes | None"]  # (keys, a chunk's raw values, count) -> lines, or None
_REDUCTIONS = ("sum", "max", "min", "avg")


def one_cpu(lines: Lines, cpu: int, vsize: int, entry: int) -> Lines:
    """``lines`` of plain values over per-CPU raw batches: CPU ``cpu``'s slot of each."""
    stride = (vsize + 7) & ~7
    utf8 = _utf8(lines)

    def pick(keys: bytes, values: bytes, count: int) -> bytes:
        plain = bytearray(vsize * count)
        copy_columns(plain, vsize, 0, values, entry, cpu * stride, vsize, count)
        return utf8(keys, bytes(plain), count)

    return chunked(pick, entry)


def _utf8(lines: Lines) -> Utf8:
    """``lines``' UTF-8: the row writer's own bytes where it makes them (no text made and
    encoded again), else its text encoded as the row writer's bytes are decoded."""
    pieces = getattr(lines, "utf8_pieces", None)
    if pieces is None:
        return lambda keys, values, count: lines(keys, values, count).encode("utf-8", "surrogatepass")
    return lambda keys, values, count: b"".join(data for data, _n in pieces(keys, values, count))


def chunked(chunk: Utf8, entry: int) -> Lines:
    """``chunk`` (the lines of a few entries, in UTF-8) over whole kernel batches of values
    ``entry`` bytes each: CHUNK entries at a time, with ``utf8_pieces`` and ``pieces`` for
    a writer that writes each chunk's lines as they come, as bytes to a UTF-8 stream
    (output.entries.write_item_batches), as the row writer's lines are written."""

    def utf8_pieces(keys: bytes, values: bytes, count: int) -> Iterator[tuple[bytes, int]]:
        ks = len(keys) // count if count else 0
        for i in range(0, count, CHUNK):
            n = min(CHUNK, count - i)
            yield chunk(keys[i * ks : (i + n) * ks], values[i * entry : (i + n) * entry], n), n

    def pieces(keys: bytes, values: bytes, count: int) -> Iterator[tuple[str, int]]:
        for data, n in utf8_pieces(keys, values, count):
            yield data.decode("utf-8", "surrogatepass"), n

    def lines(keys: bytes, values: bytes, count: int) -> str:
        return "".join(text for text, _n in pieces(keys, values, count))

    lines.pieces = pieces  # type: ignore[attr-defined]
    lines.utf8_pieces = utf8_pieces  # type: ignore[attr-defined]
    return lines


def _fold(how: str, ncpus: int) -> Callable[[list[Any]], list[Any]]:
    """The CPUs' columns of one leaf (a chunk's numbers, a tuple per CPU) -> the column of
    their reductions, folded a column at a time: no tuple and no call per entry (the
    builtins max() and sum() on each entry's values cost several times more)."""
    if ncpus == 1:
        return lambda cols: list(cols[0])

    def fold(cols: list[Any]) -> list[Any]:
        acc: list[Any] = cols[0]
        for col in cols[1:]:
            if how == "max":
                acc = [a if a >= b else b for a, b in zip(acc, col)]
            elif how == "min":
                acc = [a if a <= b else b for a, b in zip(acc, col)]
            else:  # integers: exact, the same sum as view.aggregate's in any order (avg: divided after)
                acc = list(map(add, acc, col))
        return acc  # a new list: at least one column was folded in

    return fold


def avg_type(t: Type, mean: Type = SCALARS["f64"]) -> Type:
    """``t`` with every integer an f64 (what ``avg`` makes of it), or ``mean``, packed in
    field order."""
    if isinstance(t, Scalar) and t.kind in ("uint", "int"):
        return mean
    if isinstance(t, Array):
        return Array(avg_type(t.elem, mean), t.count)
    if isinstance(t, Struct):
        members = [Member(f.name, avg_type(f.type, mean)) for f in t.fields if f.name]
        return layout_struct(t.name, members, packed=True)
    return t


def reduced(
    make_lines: Callable[[Any], Lines | None], view: Any, how: str, slow: Callable[[list[Any], list[Any]], str]
) -> Lines | None:
    """A lines function over per-CPU raw batches, each value the CPUs' reduced by ``how``
    (sum, max, min, avg), written by ``make_lines(codec)`` for the reduced values' codec;
    ``slow(keys, values)`` writes a decoded batch (reduced values) for the batches whose
    results do not fit.  None when the value's type is not one this path reduces."""
    if how not in _REDUCTIONS or type(view.value) is not TypeCodec:
        return None
    leaves: list[tuple[int, str, bool]] = []  # (offset, struct code, a number?)
    if not _leaves(view.value.type, 0, leaves):
        return None
    m = view.map
    vsize, ncpus = m.value_size, m.ncpus
    slot = ""
    pos = 0
    for off, code, _num in leaves:
        slot += f"{off - pos}x" if off > pos else ""
        slot += code
        pos = off + struct.calcsize("=" + code)
    if pos < vsize:
        slot += f"{vsize - pos}x"
    if struct.calcsize("=" + slot) != vsize:
        return None
    nleaves = len(leaves)
    numbers = [i for i, (_o, _c, num) in enumerate(leaves) if num]
    firsts = [i for i, (_o, _c, num) in enumerate(leaves) if not num]
    fold = _fold(how, ncpus)
    mean = lanes = None
    if how == "avg":
        out_slot = "".join("d" if num else code for _o, code, num in leaves)
        lines = make_lines(TypeCodec(avg_type(view.value.type)))
        # not CSV's rows (they have a header): a batch holding a carriage return is decoded there, and a Mean is not
        if lines is not None and not hasattr(lines, "header") and ncpus & (ncpus - 1) == 0 and ncpus <= 256:
            mean_lines = make_lines(TypeCodec(avg_type(view.value.type, Mean(ncpus))))
            mean = _means(mean_lines, leaves, ncpus)
            lanes = _lane_means(mean_lines, leaves, ncpus, vsize)
    else:
        out_slot = slot
        lines = make_lines(view.value)
    if lines is None:
        return None
    shape = m.shape
    unpackers: dict[int, Any] = {}
    packers: dict[int, Any] = {}
    utf8 = _utf8(lines)

    def reduce_chunk(keys: bytes, values: bytes, count: int) -> bytes:
        if lanes is not None:
            data = lanes(keys, values, count)
            if data is not None:
                return data
        items = _per_count(unpackers, slot, count * ncpus).unpack(shape.slots(values, count))
        row = nleaves * ncpus  # an entry's items: CPU 0's leaves, then CPU 1's...
        out: list[Any] = [None] * (count * nleaves)
        for j in numbers:
            out[j::nleaves] = fold([items[c * nleaves + j :: row] for c in range(ncpus)])
        for j in firsts:
            out[j::nleaves] = items[j::row]
        if mean is not None:
            data = mean(keys, out, count)
            if data is not None:
                return data
        if how == "avg":  # the sum divided once, as view.aggregate divides it
            for j in numbers:
                out[j::nleaves] = [a / ncpus for a in out[j::nleaves]]
        try:
            plain = _per_count(packers, out_slot, count).pack(*out)
        except struct.error:  # a sum past the field's range: the decoded path shows it whole
            dk = view.key.decode_many(keys, count)
            dv = view.decode_batch(keys, values, count)[1]
            return slow(dk, [aggregate(v, how) for v in dv]).encode("utf-8", "surrogatepass")
        return utf8(keys, plain, count)

    return chunked(reduce_chunk, shape.entry)


def _per_count(cache: dict[int, Any], fmt: str, n: int) -> Any:
    """The struct of ``n`` times ``fmt``, kept for a few counts (the chunk size, a batch's last)."""
    s = cache.get(n)
    if s is None:
        s = struct.Struct("=" + fmt * n)
        if len(cache) < 8:
            cache[n] = s
    return s


def _means(lines: Lines | None, leaves: list[tuple[int, str, bool]], ncpus: int) -> Means | None:
    """``avg`` through output.rows.Mean: (keys, a chunk's items with each number the sum
    over the CPUs, count) -> the lines, or None for a chunk with a sum the Mean does not
    write as the float (negative, or past rows.exact_bits).  Each sum is packed in 16
    bytes and the whole chunk worked as one integer (no Python operation per entry):
    shifted right by m bits (ncpus = 2**m) for the quotients, and its remainders' bits
    times 5**m moved into each sum's upper 8 bytes."""
    if lines is None:
        return None
    m = ncpus.bit_length() - 1
    fmt = "".join("Q8x" if num else code for _o, code, num in leaves)  # a sum, and the room its Mean takes
    # per entry: the quotient's bytes, the remainder's bits, the bits of a sum too big, other leaves' bytes
    masks: tuple[bytearray, ...] = bytearray(), bytearray(), bytearray(), bytearray()
    for _o, code, num in leaves:
        size = struct.calcsize("=" + code)
        fields = ((1 << 64) - 1, (1 << m) - 1, (1 << 64) - (1 << exact_bits(ncpus)), 0) if num else (0, 0, 0, -1)
        for mask, field in zip(masks, fields):
            mask += field.to_bytes(16, "little") if num else (b"\xff" if field else b"\0") * size
    packers: dict[int, Any] = {}
    whole_masks: dict[int, tuple[int, ...]] = {}

    utf8 = _utf8(lines)

    def means(keys: bytes, items: list[Any], count: int) -> bytes | None:
        try:
            buf = _per_count(packers, fmt, count).pack(*items)
        except struct.error:  # a negative sum, or one past 64 bits
            return None
        q, r, high, other = whole_masks.get(count) or _whole_masks(whole_masks, masks, count)
        whole = int.from_bytes(buf, "little")
        if whole & high:
            return None
        means = (whole >> m & q) | (whole & r) * 5**m << 64 | (whole & other)
        return utf8(keys, means.to_bytes(len(buf), "little"), count)

    return means


def _lane_means(lines: Lines | None, leaves: list[tuple[int, str, bool]], ncpus: int, vsize: int) -> Lanes | None:
    """``avg`` of values made of u64 numbers only (a counter, a struct of counters), 2**m
    CPUs (m >= 1), with no Python number made per value: (keys, a chunk's raw values,
    count) -> the lines through output.rows.Mean, or None for a chunk with a value of
    2**(exact_bits - m) or more (those go through _means or the floats).

    The chunk's values are one integer, each u64 a lane of it.  With every value below
    that bound, no sum of 2**m of them carries out of its lane, so the CPUs' slots of each
    entry are summed in m steps (the upper half of an entry's slots shifted onto the lower
    half and added, the lower half kept); each leaf's sum is moved to its Mean's 16 bytes
    (the entry's slots hold 16 bytes per leaf from 2 CPUs on) and written as
    quotient and remainder, as _means writes them; the entries are then packed to the
    Means' size when more than 2 CPUs leave room between them."""
    if lines is None or ncpus < 2 or vsize != 8 * len(leaves):
        return None
    if any(code != "Q" or not num or off != 8 * i for i, (off, code, num) in enumerate(leaves)):
        return None
    m = ncpus.bit_length() - 1
    nleaves = len(leaves)
    entry, cell = vsize * ncpus, 16 * nleaves  # an entry's bytes in the batch; its Means' bytes
    lane = (1 << 64) - 1
    bound = exact_bits(ncpus) - m  # every value below 2**bound: every sum below 2**exact_bits
    utf8 = _utf8(lines)
    # each entry's masks: the bits at or past the bound in every lane, the first lane, the
    # quotient and remainder bits of each Mean, then for each step the slots it keeps
    shifts = [8 * vsize * (ncpus >> (step + 1)) for step in range(m)]  # the bits of the slots kept
    masks = (
        ((lane >> bound) << bound).to_bytes(8, "little") * (entry // 8),
        b"\xff" * 8 + bytes(entry - 8),
        (b"\xff" * 8 + bytes(8)) * nleaves + bytes(entry - cell),
        ((1 << m) - 1).to_bytes(16, "little") * nleaves + bytes(entry - cell),
        *(b"\xff" * (bits // 8) + bytes(entry - bits // 8) for bits in shifts),
    )
    whole_masks: dict[int, tuple[int, ...]] = {}

    def means(keys: bytes, values: bytes, count: int) -> bytes | None:
        every, first, quot, rem, *halves = whole_masks.get(count) or _whole_masks(whole_masks, masks, count)
        whole = int.from_bytes(values[: entry * count], "little")
        if whole & every:
            return None
        for shift, low in zip(shifts, halves):  # 2**m slots -> 1: the upper half added onto the lower
            whole = (whole & low) + ((whole >> shift) & low)
        if nleaves > 1:  # leaf i's sum, at 8i bytes of its entry, to its Mean's 16i
            spread = 0
            for i in range(nleaves):
                spread |= ((whole >> 64 * i) & first) << 128 * i
            whole = spread
        means = (whole >> m & quot) | (whole & rem) * 5**m << 64
        data = means.to_bytes(entry * count, "little")
        if entry != cell:
            packed = bytearray(cell * count)
            copy_columns(packed, cell, 0, data, entry, 0, cell, count)
            data = bytes(packed)
        return utf8(keys, data, count)

    return means


def _whole_masks(
    cache: dict[int, tuple[int, ...]], masks: tuple[bytes | bytearray, ...], count: int
) -> tuple[int, ...]:
    """Each entry's ``masks`` repeated over ``count`` entries, as integers; kept for a few counts."""
    whole = tuple(int.from_bytes(mask * count, "little") for mask in masks)
    if len(cache) < 8:
        cache[count] = whole
    return whole


def _leaves(t: Type, base: int, out: list[tuple[int, str, bool]]) -> bool:
    """Every leaf of ``t`` as (offset, native struct code, whether it is a number that is
    reduced); False for a type this path does not take."""
    if isinstance(t, Scalar):
        if t.size == 16 or t.kind == "float" or (t.order not in ("=", _HOST) and t.size > 1):
            return False
        out.append((base, CODES[(t.kind, t.size)], t.kind in ("uint", "int")))
        return True
    if isinstance(t, (Char, Bytes)):
        out.append((base, f"{t.size}s", False))
        return True
    if isinstance(t, Array):
        return all(_leaves(t.elem, base + i * t.elem.size, out) for i in range(t.count))
    if isinstance(t, Struct) and not t.union:
        for f in t.fields:
            if f.bit_size is not None or not f.name and isinstance(f.type, Struct):
                return False
            if not f.name:
                continue  # padding
            if not _leaves(f.type, base + f.offset, out):
                return False
        return True
    return False


_HOST = "<" if struct.pack("=H", 1) == b"\x01\x00" else ">"
