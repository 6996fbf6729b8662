"""The one slot extractor: where a map keeps its histogram's counts, decided once from
its first entry by one set of defaults, and each entry's counts walked into one tally
per histogram.  ``bpfmap hist``, ``watch --hist`` and ``bpfmap export`` read histogram
maps through it, so the same map gives the same buckets everywhere.

The defaults: counts named by ``slots`` are an array in the value; else, when neither a
slot field nor a count field is named and the value holds an array of counts, that
array; else the slot is in the key: the key itself, or its field named by ``slot``,
else its field ``slot``, else its last numeric field; the count is the value itself, or
its field named by ``count``, else its first numeric field."""

from __future__ import annotations

import struct
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from functools import partial
from typing import Any, Literal

from ..core.columns import copy_columns
from ..errors import UsageError
from ..layout import fields
from ..layout.model import Array, Scalar
from ..view import is_number

# One row of counts: its index in an array of them (None: the array itself, or a slot in
# the key), the strings beside it in its struct, its counts by slot.
SlotRow = tuple[int | None, dict[str, Any], list]


class SlotError(UsageError):
    """Where the counts are could not be read: ``param`` names what was given or left to
    its default (``slot``, ``count`` or ``slots``), ``problem`` says what is wrong; each
    verb words it with its own option."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(problem)
        self.param, self.problem = param, problem


class Place:
    """Where an entry keeps its counts: ``slots`` the path of the array of counts in the
    value ("" the value itself; None: the slot is in the key), ``slot`` the key's slot
    field (None: the key itself), ``count`` the value's count field (None: the value)."""

    __slots__ = ("slots", "slot", "count", "_slot_of", "_count_of")

    def __init__(self, slots: str | None, slot: str | None = None, count: str | None = None) -> None:
        self.slots, self.slot, self.count = slots, slot, count
        self._slot_of = fields.getter(slot) if slot else _identity
        self._count_of = fields.getter(count) if count else _identity

    def rest(self, key: Any) -> dict | None:
        """The key's fields but its slot (what groups a slot-in-the-key map's histograms);
        None for a key that is the slot itself."""
        if self.slots is not None or not isinstance(key, dict):
            return None
        return {k: v for k, v in key.items() if k != self.slot}

    def slot_count(self, key: Any, value: Any) -> tuple[int, Any]:
        """A slot-in-the-key entry's slot and count."""
        try:
            slot = self._slot_of(key)
        except (KeyError, IndexError, TypeError):
            raise SlotError("slot", f"no field {self.slot} in the key") from None
        if not is_number(slot):
            raise SlotError("slot", f"the slot must be a number, not {slot!r}")
        if slot < 0:
            raise SlotError("slot", f"slot {slot} is negative; is the key signed?")
        try:
            count = self._count_of(value)
        except (KeyError, IndexError, TypeError):
            raise SlotError("count", f"no field {self.count} in the value") from None
        if not is_number(count):
            raise SlotError("count", f"the count must be a number, not {count!r}")
        return int(slot), count

    def rows(self, value: Any) -> list[SlotRow]:
        """A slots-in-the-value entry's arrays of counts: the array at ``slots`` itself, or
        each element of an array of them or of structs holding one."""
        try:
            arr = fields.select(value, self.slots) if self.slots else value
        except UsageError as err:
            raise SlotError("slots", str(err)) from None
        if isinstance(arr, list) and all(is_number(x) for x in arr):
            return [(None, {}, arr)]
        rows = _rows(arr)
        if rows is None:
            raise SlotError(
                "slots", f"not an array of counts, nor an array of them or of structs holding one ({str(arr)[:60]})"
            )
        return rows


def locate(
    key: Any,
    value: Any,
    slot: str | None = None,
    count: str | None = None,
    slots: str | None = None,
    strict: bool = False,
) -> Place:
    """Where entries like (``key``, ``value``) keep their counts, by the defaults above;
    ``strict``: the counts must be in the value.  SlotError when a name given is not
    there or a default finds nothing."""
    if slots is None and slot is None and count is None:
        slots = slots_field(value)
    if slots is not None:
        if slot is not None or count is not None:
            raise SlotError("slots", "give the slots in the value or the slot in the key, not both")
        return Place(slots)
    if strict:
        raise SlotError("slots", "the values hold no array of counts; name the field")
    return in_key(key, value, slot, count)


def in_key(key: Any, value: Any, slot: str | None = None, count: str | None = None) -> Place:
    """The slot in the key: the key itself, or its field ``slot``, by default the field
    called slot, else its last numeric one; the count the value itself, or its field
    ``count``, by default its first numeric one."""
    return Place(None, _pick(key, slot, "key", "slot"), _pick(value, count, "value", "count"))


def _pick(obj: Any, name: str | None, what: str, param: str) -> str | None:
    """A field of a struct: ``name``, else (keys) ``slot``, else the last numeric field of
    a key, the first of a value; None when ``obj`` is not a struct."""
    if not isinstance(obj, dict):
        if name is not None:
            raise SlotError(param, f"the {what} is not a struct")
        return None
    if name is not None:
        try:
            fields.getter(name)(obj)
        except (KeyError, IndexError, TypeError):
            raise SlotError(param, f"the {what} has fields {', '.join(obj)}") from None
        return name
    if what == "key" and "slot" in obj:
        return "slot"
    numeric = [k for k, v in obj.items() if is_number(v)]
    if not numeric:
        raise SlotError(param, f"the {what} has no numeric field; name one")
    return numeric[-1] if what == "key" else numeric[0]


def slots_field(value: Any) -> str | None:
    """Where a decoded value keeps slot counts: "" when it is an array of numbers, else its
    first field that is one, or an array of them, or an array of structs that each hold
    one (runqlen's ``struct hist hists[N]``); None when it keeps none."""
    if _slot_array(value):
        return ""
    if isinstance(value, dict):
        for k, v in value.items():
            if _slot_array(v) or (isinstance(v, list) and v and all(_slot_array(x) or _holder(x) for x in v)):
                return k
    return None


def _slot_array(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 1 and all(is_number(x) for x in v)


def _holder(v: Any) -> bool:
    """A struct with a field that is an array of counts (``struct hist { u32 slots[N]; }``)."""
    return isinstance(v, dict) and any(_slot_array(x) for x in v.values())


def _rows(arr: Any) -> list[SlotRow] | None:
    """Each element of an array of arrays of counts, or of structs holding one, with its
    index and the string fields beside it; None when ``arr`` is neither."""
    if not isinstance(arr, list) or not arr:
        return None
    rows: list[SlotRow] = []
    for i, x in enumerate(arr):
        if _slot_array(x):
            rows.append((i, {}, x))
        elif _holder(x):
            counts = next(v for v in x.values() if _slot_array(v))
            rows.append((i, {k: v for k, v in x.items() if isinstance(v, str)}, counts))
        else:
            return None
    return rows


class Counts:
    """One histogram's counts: ``by_slot`` every slot an entry gave (empty ones too),
    ``overflow`` what came in slots past the last one, ``sum`` the sum slots' total."""

    __slots__ = ("group", "by_slot", "overflow", "sum")

    def __init__(self, group: Any) -> None:
        self.group = group
        self.by_slot: dict[int, Any] = {}
        self.overflow: Any = 0
        self.sum: Any = 0

    def dense(self) -> list:
        """The counts as a list by slot, from slot 0 to the last one an entry gave."""
        by = self.by_slot
        return [by.get(i, 0) for i in range(max(by) + 1)] if by else []


# (index, strings beside, gid, group) -> (gid, group): the histogram a row of an array of
# arrays counts in; None: such rows are refused.
PerRow = Callable[[int, dict[str, Any], Hashable, Any], tuple[Hashable, Any]]


class Tally:
    """Entries' counts, walked into one Counts per histogram (``groups``, in the order
    first seen): slot in the key, or slots in the value; ``sum_slot``: an array's last
    element is the sum of the values, not a slot; ``max_slots``: slots at or past it
    count in ``overflow`` (``past`` the last such slot seen)."""

    def __init__(self, place: Place, sum_slot: bool = False, max_slots: int | None = None) -> None:
        self.place, self.sum_slot, self.max_slots = place, sum_slot, max_slots
        self.groups: dict[Hashable, Counts] = {}
        self.past: int | None = None

    def _counts(self, gid: Hashable, group: Any) -> Counts:
        c = self.groups.get(gid)
        if c is None:
            c = self.groups[gid] = Counts(group)
        return c

    def add(self, key: Any, value: Any, gid: Hashable, group: Any = None, per_row: PerRow | None = None) -> None:
        """Count one entry (per-CPU values summed) in the histogram ``gid`` (``group``
        what it is for); an array of arrays in the value counts each row where
        ``per_row`` puts it."""
        place, limit = self.place, self.max_slots
        if place.slots is None:
            slot, count = place.slot_count(key, value)
            c = self._counts(gid, group)
            if limit is not None and slot >= limit:
                self.past = slot
                c.overflow += count
                return
            c.by_slot[slot] = c.by_slot.get(slot, 0) + count
            return
        for index, beside, counts in place.rows(value):
            if index is None:
                c = self._counts(gid, group)
            elif per_row is None:
                raise SlotError("slots", f"{place.slots or 'the value'} is an array of arrays, not of counts")
            else:
                c = self._counts(*per_row(index, beside, gid, group))
            self._add_row(c, counts)

    def add_counts(self, counts: list, gid: Hashable, group: Any = None) -> None:
        """Count an array of counts in the histogram ``gid``: one entry's, or the sums
        slot by slot of several entries' arrays (what :class:`SlotSums` reads), which
        count as the entries would one by one."""
        self._add_row(self._counts(gid, group), counts)

    def _add_row(self, c: Counts, counts: list) -> None:
        """One array of counts into ``c``: its sum slot, the slots past the last, the rest."""
        limit = self.max_slots
        if self.sum_slot:
            if not counts:
                raise SlotError("slots", "the array is empty: it has no sum slot")
            counts, total = counts[:-1], counts[-1]
            c.sum += total
        if limit is not None and len(counts) > limit:
            self.past = len(counts) - 1
            c.overflow += sum(counts[limit:])
            counts = counts[:limit]
        by = c.by_slot
        for i, n in enumerate(counts):
            by[i] = by.get(i, 0) + n


# -- counts summed straight from raw batches ---------------------------------------------------
#
# A map whose counts are one array of unsigned integers in the value (``slots``) need not be
# decoded entry by entry: the arrays are summed slot by slot per label bytes (the bytes of the
# fields its histograms are told apart by), and the sums counted in a Tally with
# add_counts, which counts them as it counts the entries one by one (integer sums are the
# same in any order).  Where a chunk of entries is one histogram, each slot's column of the
# chunk is summed at once (``sum`` over a strided memoryview); else each entry's counts are
# copied into cells with 8 bytes of room above each and read as one integer, and the entries'
# integers added: each cell holds its slot's sum, the room keeping carries out of the next.

_CHUNK = 2048  # entries read at once
_ROOM = 8  # zero bytes above each count in a cell
_UNSIGNED: dict[int, Literal["B", "H", "I", "Q"]] = {1: "B", 2: "H", 4: "I", 8: "Q"}
_little = partial(int.from_bytes, byteorder="little")
Span = tuple[int, int, int]  # (0 key / 1 value, offset, size) of bytes that tell histograms apart


class SlotSums:
    """Entries' arrays of counts summed per label bytes, from raw batches: ``add`` each
    batch (keys ``sizes[0]`` bytes apart, values ``sizes[1]``); then ``sums`` holds, per
    label bytes (the bytes of ``spans`` of an entry, joined) in the order first read, the
    summed counts (see :meth:`counts`), ``first`` the key and value bytes of the first entry
    of each, ``entries`` how many entries each summed.  ``at``: where the array of
    ``count`` unsigned integers of ``size`` bytes in the host's order lies in the value.
    ``per``: a per-CPU map's values, ``per`` values of ``sizes[1]`` bytes an entry, each
    entry's summed (as ``percpu: sum`` sums them; its labels are the key's)."""

    def __init__(self, spans: list[Span], at: int, size: int, count: int, sizes: tuple[int, int], per: int = 1) -> None:
        self.spans, self.at, self.size, self.count, self.per = spans, at, size, count, per
        self.ks, self.vs = sizes
        self.es = self.vs * per  # bytes of values an entry
        self.width = sum(n for _s, _o, n in spans)
        self.cell = size + _ROOM
        self.sums: dict[bytes, int] = {}
        self.first: dict[bytes, tuple[bytes, bytes]] = {}
        self.entries: Counter[bytes] = Counter()
        self.counted = 0
        self._split: dict[tuple[int, int], Callable[[Any], tuple[bytes, ...]]] = {}

    def add(self, keys: bytes, values: bytes, n: int) -> None:
        self.counted += n
        kv, vv = memoryview(keys), memoryview(values)
        ks, es = self.ks, self.es
        for i in range(0, n, _CHUNK):
            m = min(_CHUNK, n - i)
            self._chunk(kv[i * ks : (i + m) * ks], vv[i * es : (i + m) * es], m)

    def counts(self, summed: int) -> list[int]:
        """The counts by slot of one of ``sums``."""
        cell = self.cell
        data = summed.to_bytes(self.count * cell, "little")
        return [int.from_bytes(data[j : j + cell], "little") for j in range(0, len(data), cell)]

    def _chunk(self, keys: memoryview, values: memoryview, n: int) -> None:
        labels = self._labels(keys, values, n)
        sums = self.sums
        if labels.count(labels[0]) == n:  # one histogram: each slot's column summed at once
            one = labels[0]
            if one not in sums:
                self.first[one] = (bytes(keys[: self.ks]), bytes(values[: self.es]))
            sums[one] = sums.get(one, 0) + self._columns(values, n * self.per)
            self.entries[one] += n
            return
        fresh = [k for k in dict.fromkeys(labels) if k not in sums]
        if fresh:
            at = dict(zip(reversed(labels), range(n - 1, -1, -1)))  # each label bytes' first entry
            ks, es = self.ks, self.es
            for k in fresh:
                i = at[k]
                self.first[k] = (bytes(keys[i * ks : (i + 1) * ks]), bytes(values[i * es : (i + 1) * es]))
        get = sums.get
        per = self.per
        for k, v in zip(labels if per == 1 else [k for k in labels for _c in range(per)], self._cells(values, n * per)):
            sums[k] = get(k, 0) + v
        self.entries.update(labels)

    def _labels(self, keys: memoryview, values: memoryview, n: int) -> list[bytes]:
        """Each entry's label bytes."""
        if not self.width:
            return [b""] * n
        rows = bytearray(n * self.width)
        sources, sizes = (keys, values), (self.ks, self.es)
        at = 0
        for side, off, size in self.spans:
            copy_columns(rows, self.width, at, sources[side], sizes[side], off, size, n)
            at += size
        return list(self._splitter(self.width, n)(rows))

    def _columns(self, values: memoryview, n: int) -> int:
        """The chunk's counts summed slot by slot, as one integer of cells."""
        size, vs = self.size, self.vs
        if (vs | self.at) % size:  # not aligned to its counts: copied together first
            packed = bytearray(n * self.count * size)
            copy_columns(packed, self.count * size, 0, values, vs, self.at, self.count * size, n)
            column, stride, start = memoryview(packed).cast(_UNSIGNED[size]), self.count, 0
        else:
            column, stride, start = values.cast(_UNSIGNED[size]), vs // size, self.at // size
        bits = self.cell * 8
        return sum(sum(column[start + j :: stride]) << (j * bits) for j in range(self.count))

    def _cells(self, values: memoryview, n: int) -> Iterator[int]:
        """Each entry's counts as one integer of cells."""
        size, cell, row = self.size, self.cell, self.count * self.cell
        cells = bytearray(n * row)
        for j in range(self.count):
            copy_columns(cells, row, j * cell, values, self.vs, self.at + j * size, size, n)
        return map(_little, self._splitter(row, n)(cells))

    def _splitter(self, width: int, n: int) -> Callable[[Any], tuple[bytes, ...]]:
        """Bytes of ``n`` rows of ``width`` bytes, split into the rows."""
        split = self._split.get((width, n))
        if split is None:
            split = struct.Struct(f"{width}s" * n).unpack
            if len(self._split) < 8:
                self._split[(width, n)] = split
        return split


def raw_counts(t: Any, path: str) -> tuple[int, int, int] | None:
    """(offset, size, count) of the array of counts at ``path`` ("" the value itself) of the
    value type ``t`` where :class:`SlotSums` reads it: unsigned integers in the host's
    order; None for any other."""
    try:
        at, arr = fields.locate(t, path) if path else (0, t)
    except UsageError:
        return None
    if not isinstance(arr, Array) or not isinstance(arr.elem, Scalar) or arr.count < 2:
        return None
    elem = arr.elem
    native = "<" if sys.byteorder == "little" else ">"
    if elem.kind != "uint" or elem.size not in _UNSIGNED or elem.order not in ("=", native):
        return None
    return at, elem.size, arr.count


def _identity(x: Any) -> Any:
    return x
