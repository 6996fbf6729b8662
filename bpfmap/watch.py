"""Watching a map: repeated snapshots, and each entry's change and rate between them.

Counters are the most common map content, so every numeric field (at any depth of a
struct or array) gets a delta and a per-second rate; other fields (strings, addresses)
get none.  Per-CPU values are summed first (``how`` picks another aggregate).  Never
writes output; the CLI renders what ``Watcher.poll`` returns."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from . import fields
from .errors import UsageError
from .view import View, aggregate, is_number, sort_key

SORTS = ("key", "value", "rate")


def _freeze(obj: Any) -> Any:
    """A hashable stand-in for a decoded key (structs are dicts, arrays lists)."""
    if isinstance(obj, dict):
        return tuple((k, _freeze(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return tuple(_freeze(v) for v in obj)
    return obj


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
    if is_number(obj):
        return obj
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list):
        parts = [t for t in map(total, obj) if t is not None]
        return sum(parts) if parts else None
    return None


def _key_order(obj: Any) -> tuple:
    """Sort structs field by field, numbers before strings (never a TypeError)."""
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list):
        return (2, tuple(_key_order(v) for v in obj))
    return sort_key(obj)


class Row:
    """One entry of a snapshot: its value, its change since the previous snapshot and that
    change per second (both None for an entry seen for the first time)."""

    __slots__ = ("key", "value", "delta", "rate")

    def __init__(self, key: Any, value: Any, delta: Any, rate: Any) -> None:
        self.key, self.value, self.delta, self.rate = key, value, delta, rate

    def to_dict(self) -> dict:
        return {"key": self.key, "value": self.value, "delta": self.delta, "rate": self.rate}


class Snapshot:
    """What one poll saw: rows in the order asked for, how many entries the map held,
    when (Unix time) and how long since the previous poll (None for the first)."""

    def __init__(self, rows: list[Row], entries: int, when: float, interval: float | None) -> None:
        self.rows, self.entries, self.time, self.interval = rows, entries, when, interval

    def to_dict(self) -> dict:
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
            raise UsageError(f"--sort {sort}: choose one of {', '.join(SORTS)}")
        if top is not None and top < 1:
            raise UsageError(f"--top {top}: give a positive number")
        self.view, self.sort, self.top, self.how, self.where = view, sort, top, how, where
        self._last: dict[Any, Any] = {}
        self._last_time: float | None = None

    def _entries(self) -> Iterable[tuple[Any, Any]]:
        entries = self.view.entries()
        if self.view.percpu:
            entries = ((k, aggregate(v, self.how)) for k, v in entries)
        if self.where:
            where = self.where
            where.begin()
            entries = ((k, v) for k, v in entries if where(k, v))
        if self.select is not None:  # --var NAME: one variable (field) of each value
            path = self.select
            entries = ((k, fields.select(v, path)) for k, v in entries)
        return entries

    def poll(self) -> Snapshot:
        now_mono, now = time.monotonic(), time.time()
        dt = None if self._last_time is None else now_mono - self._last_time
        seen: dict[Any, Any] = {}
        rows: list[Row] = []
        for key, value in self._entries():
            frozen = _freeze(key)
            seen[frozen] = value
            if frozen in self._last and dt:
                delta = diff(value, self._last[frozen])
                rows.append(Row(key, value, delta, scale(delta, 1.0 / dt)))
            else:
                rows.append(Row(key, value, None, None))
        self._last, self._last_time = seen, now_mono
        count = len(rows)
        rows = self._order(rows)
        return Snapshot(rows, count, now, dt)

    def _order(self, rows: list[Row]) -> list[Row]:
        if self.sort == "key":
            rows.sort(key=lambda r: _key_order(r.key))
        else:
            attr = "value" if self.sort == "value" else "rate"
            # largest first; rows without a number (new entries' rates) last
            rows.sort(
                key=lambda r: (total(getattr(r, attr)) is None, -(total(getattr(r, attr)) or 0), _key_order(r.key))
            )
        return rows[: self.top] if self.top is not None else rows
