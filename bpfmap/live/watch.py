"""Watching a map: repeated snapshots, and each entry's change and rate between them.

Counters are the most common map content, so every numeric field (at any depth of a
struct or array) gets a delta and a per-second rate; other fields (strings, addresses)
get none.  Per-CPU values are summed first (``how`` picks another aggregate).  Never
writes output; the CLI renders what ``Watcher.poll`` returns."""

from __future__ import annotations

import heapq
import operator
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..core.maps import Map
from ..errors import NoSuchObject, Param, UsageError, words
from ..layout import HexCodec, TypeCodec, fields
from ..view import View, aggregate, is_number, sort_key

SORTS = ("key", "value", "rate")
Note = Callable[[str], Any]


def diff(new: Any, old: Any) -> Any:
    """``new - old`` for every numeric leaf, None where there is nothing to subtract."""
    if is_number(new):
        return new - old if is_number(old) else None
    if isinstance(new, dict):
        old = old if isinstance(old, dict) else {}
        return {k: diff(v, old.get(k)) for k, v in new.items()}
    if isinstance(new, list):
        old = old if isinstance(old, list) and len(old) == len(new) else [None] * len(new)
        return [diff(a, b) for a, b in zip(new, old)]
    return None


def scale(obj: Any, factor: float) -> Any:
    """Every numeric leaf times ``factor``: a delta over ``dt`` seconds into a rate."""
    if is_number(obj):
        return obj * factor
    if isinstance(obj, dict):
        return {k: scale(v, factor) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scale(v, factor) for v in obj]
    return None


def total(obj: Any) -> float | None:
    """The sum of the numeric leaves (what --sort value|rate orders by); None if none."""
    tp = type(obj)
    if tp is int or tp is float:
        return obj  # type: ignore[no-any-return]  # an int or a float: its type said so
    if tp is dict:
        obj = obj.values()
    elif tp is not list:
        return None
    parts = []
    for v in obj:
        tv = type(v)
        if tv is int or tv is float:
            parts.append(v)
        elif tv is dict or tv is list:
            t = total(v)
            if t is not None:
                parts.append(t)
    return sum(parts) if parts else None


def _kind(t: Any) -> str:
    """What a decoded leaf of type ``t`` always is: "number" (an integer or a float),
    "text" (a string, an address, hex), or "other" (enums are names or numbers, bools,
    structs and arrays)."""
    from ..layout.model import Bytes, Char, Formatted, Scalar

    if isinstance(t, Scalar) and t.kind in ("uint", "int", "float"):
        return "number"
    return "text" if isinstance(t, (Char, Formatted, Bytes)) else "other"


def _field_kinds(codec: Any) -> list[tuple[str, str]] | None:
    """(name, _kind) of each field a TypeCodec's struct decodes to (anonymous members'
    in their place); None for another codec or type, or a name twice."""
    from ..layout.codec import members
    from ..layout.model import Struct

    t = codec.type if type(codec) is TypeCodec else None
    if not isinstance(t, Struct):
        return None
    fields = [(n, _kind(f.type)) for n, f, _b in members(t)]
    return fields if len({n for n, _k in fields}) == len(fields) else None


def total_of(codec: Any) -> Callable[[Any], Any]:
    """A function computing ``total`` of a decoded value of ``codec`` (the same number,
    the same additions in the same order): for a struct whose fields are numbers and
    text, one sum() of its number fields; ``total`` itself otherwise."""
    fields = _field_kinds(codec)
    if fields is None or any(k == "other" for _n, k in fields):
        return total
    names = [n for n, k in fields if k == "number"]
    if not names:
        return _none
    summed: Callable[[Any], Any] = eval("lambda v: sum((" + "".join(f"v[{n!r}], " for n in names) + "))")  # noqa: S307
    return summed


def _none(_v: Any) -> None:
    return None


def _key_order(obj: Any) -> tuple[Any, ...]:
    """Sort structs field by field, numbers before strings (never a TypeError)."""
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list):
        return (2, tuple(_key_order(v) for v in obj))
    return sort_key(obj)


def key_order(codec: Any) -> Callable[[Any], Any]:
    """A function (decoded key) -> what keys sort by, ordering keys of ``codec`` exactly as
    _key_order does: where every field of a struct (or the key itself) always decodes to
    one kind of value (numbers or text), the fields' values themselves (a C itemgetter),
    which compare as their sort keys do; _key_order otherwise."""

    if type(codec) is HexCodec or (type(codec) is TypeCodec and _kind(codec.type) != "other"):
        return _same
    fields = _field_kinds(codec)
    if not fields or any(k == "other" for _n, k in fields):
        return _key_order
    names = [n for n, _k in fields]
    return operator.itemgetter(*names) if len(names) > 1 else operator.itemgetter(names[0])


def _same(v: Any) -> Any:
    return v


class Row:
    """One entry of a snapshot: its value, its change since the previous snapshot and that
    change per second (both None for an entry seen for the first time)."""

    __slots__ = ("key", "value", "delta", "rate")

    def __init__(self, key: Any, value: Any, delta: Any, rate: Any) -> None:
        self.key, self.value, self.delta, self.rate = key, value, delta, rate

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "delta": self.delta, "rate": self.rate}


class Snapshot:
    """What one poll saw: rows in the order asked for, how many entries the map held,
    when (Unix time) and how long since the previous poll (None for the first)."""

    def __init__(
        self, rows: list[Row], entries: int, when: float, interval: float | None, available: int | None = None
    ) -> None:
        self.rows, self.entries, self.time, self.interval = rows, entries, when, interval
        self.available = len(rows) if available is None else available  # rows there were before a poll's limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": round(self.time, 6),
            "interval": None if self.interval is None else round(self.interval, 6),
            "entries": self.entries,
            "rows": [r.to_dict() for r in self.rows],
        }


class Watcher:
    """Poll a map through a View; each poll is compared with the one before it.

    ``how`` reduces per-CPU values (default sum); ``sort`` is key, value or rate (value
    and rate largest first); ``top`` keeps that many rows after sorting; ``where`` (a
    filters.Where bound to the view's types, seeing values reduced) keeps the entries it
    passes, before --var picks a field."""

    def __init__(
        self,
        view: View,
        sort: str = "key",
        top: int | None = None,
        how: str = "sum",
        select: str | None = None,
        where: Any = None,
    ) -> None:
        if select is not None:
            fields.parts(select)  # a malformed path fails before the first refresh
        self.select = select
        if sort not in SORTS:
            raise UsageError(words(Param("sort"), f" {sort}: choose one of {', '.join(SORTS)}"))
        if top is not None and top < 1:
            raise UsageError(words(Param("top"), f" {top}: give a positive number"))
        self.view, self.sort, self.top, self.how, self.where = view, sort, top, how, where
        self._key_order = key_order(view.key)
        self._total = total_of(view.value) if select is None and how != "all" else total
        self._last: dict[Any, Any] = {}
        self._last_time: float | None = None

    def _entries(self) -> Iterator[tuple[bytes, Any, Any]]:
        """(the key's bytes, which name the entry between polls; key; value), the values
        reduced, filtered and selected as asked."""
        view = self.view
        where, path = self.where, self.select
        if where:
            where.begin()
        how = self.how
        reduce = (lambda v: aggregate(v, how)) if view.percpu else None
        for keys, values, n in view.raw_batches():
            if not n:
                continue
            kept, dk, dv = view.passing(where, keys, values, n, reduce)
            ks = len(keys) // n
            for i, k, v in zip(kept, dk, dv):
                yield keys[i * ks : (i + 1) * ks], k, (v if path is None else fields.select(v, path))

    def poll(self, limit: int | None = None) -> Snapshot:
        """One snapshot; ``limit``: only the first so many rows are wanted (a screen's
        worth): only those get their changes worked out, and only they are ordered
        beyond the choice of which they are."""
        now_mono, now = time.monotonic(), time.time()
        dt = None if self._last_time is None else now_mono - self._last_time
        last = self._last if dt else {}
        seen: dict[bytes, tuple[Any, Any]] = {}  # the key's bytes -> (value, its total)
        keys: list[Any] = []
        values: list[Any] = []
        totals: list[Any] = []
        olds: list[Any] = []  # the previous poll's (value, total), or None
        for ident, key, value in self._entries():
            t = self._total(value)  # every poll: the next may sort by value or rate
            seen[ident] = (value, t)
            keys.append(key)
            values.append(value)
            totals.append(t)
            olds.append(last.get(ident))
        self._last, self._last_time = seen, now_mono
        count = len(keys)
        want = self.top if limit is None else limit if self.top is None else min(limit, self.top)
        order = self._order(keys, totals, olds, want)
        rows = []
        for j in order:
            old = olds[j]
            if old is not None:
                delta = diff(values[j], old[0])
                rows.append(Row(keys[j], values[j], delta, scale(delta, 1.0 / dt)))  # type: ignore[operator]
            else:
                rows.append(Row(keys[j], values[j], None, None))
        return Snapshot(rows, count, now, dt, count if self.top is None else min(self.top, count))

    def _order(self, keys: list[Any], totals: list[Any], olds: list[Any], want: int | None) -> list[int]:
        """The indices of the rows to show, in order: by key; or largest value or change
        first (rows without a number, as a new entry's change, last), then by key."""
        korder = list(map(self._key_order, keys))
        if self.sort == "key":
            by: Callable[[int], Any] = korder.__getitem__
        else:
            if self.sort == "value":
                metric = totals
            else:  # the change since the last poll: the same order as the rate's (one interval for all)
                metric = [None if o is None or o[1] is None or t is None else t - o[1] for t, o in zip(totals, olds)]

            def by(j: int) -> Any:
                m = metric[j]
                return (m is None, -(m or 0), korder[j])

        if want is not None:
            return heapq.nsmallest(want, range(len(keys)), key=by)
        return sorted(range(len(keys)), key=by)


class Watchers:
    """Several maps (a directory's, a glob's) watched together, each through its own
    :class:`Watcher`, holding no fd between polls: a poll opens each map again (by id),
    reads it and closes it, so any number of maps works within RLIMIT_NOFILE.

    ``view`` makes each map's View (default: its BTF, else hex); the other keyword
    arguments are Watcher's.  A map that cannot be watched is skipped, and one gone since
    the last poll is dropped, each said once to ``note``."""

    def __init__(
        self, refs: list[str], view: Callable[[Map], View] = View, note: Note | None = None, **options: Any
    ) -> None:
        self.note: Note = note or _none
        self.watched: list[tuple[str, Map, Watcher]] = []
        for ref in refs:
            with Map.open(ref, readonly=True) as m:  # closed again once its View is made
                if "watch" not in m.kind.ops:
                    self.note(f"{ref}: skipped, a {m.type_label} cannot be watched")
                    continue
                self.watched.append((ref, m, Watcher(view(m), **options)))

    def poll(self, limit: int | None = None) -> list[tuple[str, Map, Snapshot]]:
        """(reference, Map, snapshot) of every map still there, in order; ``limit`` as
        :meth:`Watcher.poll` takes it."""
        out = []
        for item in list(self.watched):
            ref, m, watcher = item
            try:
                m.reopen()
            except NoSuchObject:
                self.note(f"{ref}: gone since the last refresh; no longer watched")
                self.watched.remove(item)
                continue
            try:
                out.append((ref, m, watcher.poll(limit)))
            finally:
                m.close()
        return out

    def close(self) -> None:
        for _ref, m, _watcher in self.watched:
            m.close()

    def __enter__(self) -> Watchers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
