"""The host's maps at a glance, refreshed: entries, fill, how fast entries come and go,
memory, and who uses each map (``bpfmap top``).

A :class:`Top` opens each map for its count and closes it again, so it holds no map open
between refreshes (any number of maps fits in RLIMIT_NOFILE), and reads every count with
batch lookups; each :meth:`Top.poll` returns one row per map with its rate since the
previous poll (the net change of its entries per second).
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from typing import Any

from ..core import owners
from ..core.info import list_maps
from ..core.maps import Map, expand, require_some
from ..errors import BpfmapError, Param, UsageError, quote, words

SORTS = ("fill", "entries", "rate", "memory", "name")
FULL = 0.9  # maps at least this full stand out


class Top:
    """Rows for every map (or those ``refs`` name: pins, id:N, name:NAME, globs of pin
    paths or names), sorted by ``sort``.  Each of ``refs`` must name a map now (maps that
    match it later show up too): raises what Map.open raises for a pin, id or name that
    names none, NotFound for a directory or glob that matches none."""

    def __init__(self, refs: list[str] | None = None, sort: str = "fill") -> None:
        if sort not in SORTS:
            raise UsageError(words(Param("sort"), f" {quote(sort)}: choose one of {', '.join(SORTS)}"))
        self.refs, self.sort, self.filter = [_checked(r) for r in refs or []], sort, ""
        self._before: dict[int, tuple[float, int | None]] = {}  # id -> (time, entries) at the last poll
        self.time: float | None = None
        self.interval: float | None = None

    def _wanted(self, info: Any) -> bool:
        if not self.refs:
            return True
        for ref in self.refs:
            if ref.startswith("id:") and ref[3:].isdigit():
                if info.id == int(ref[3:]):
                    return True
            elif ref.startswith("name:"):
                if fnmatch.fnmatchcase(info.name, ref[5:]):
                    return True
            elif any(
                p == ref or fnmatch.fnmatchcase(p, ref) or p.startswith(ref.rstrip("/") + "/") for p in info.pinned
            ):
                return True
        return False

    def poll(self) -> list[dict[str, Any]]:
        """One row per map now (``rate``: entries per second since the last poll, None on
        the first), as :meth:`shown` orders them."""
        return self.shown(self.read())

    def shown(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` filtered by ``filter`` (a substring of the name or a pin) and sorted by
        ``sort``, as they stand now: the live screen applies a new sort or filter to the
        rows it read last without reading them again."""
        if self.filter:
            rows = [r for r in rows if self.filter in r["name"] or any(self.filter in p for p in r["pinned"])]
        return sorted(rows, key=_sort_key(self.sort))

    def read(self) -> list[dict[str, Any]]:
        """One row per map now, unfiltered, in no order."""
        now = time.time()
        self.interval = None if self.time is None else now - self.time
        self.time = now
        pids, progs = owners.holders(), owners.users()
        rows: list[dict[str, Any]] = []
        seen = set()
        for info in list_maps(pins=True):
            if not self._wanted(info):
                continue
            try:
                m = Map.open(f"id:{info.id}", readonly=True)
            except BpfmapError:
                continue  # gone since it was listed, or not ours to open
            with m:  # open for its count only: no fd is held between refreshes
                try:
                    entries, _exact = owners.count(m)
                except BpfmapError:
                    entries = None
            seen.add(info.id)
            before = self._before.get(info.id)
            rate = None
            if before is not None and entries is not None and before[1] is not None and now > before[0]:
                rate = (entries - before[1]) / (now - before[0])
            self._before[info.id] = (now, entries)
            rows.append(
                {
                    "id": info.id,
                    "name": info.name,
                    "type": info.type_name,
                    "pinned": list(info.pinned),
                    "entries": entries,
                    "max_entries": info.max_entries,
                    "fill": owners.fill(m, entries),
                    "rate": rate,
                    "memlock": info.memlock,
                    "programs": progs.get(info.id, []),
                    "pids": pids.get(info.id, []),
                }
            )
        for gone in set(self._before) - seen:
            del self._before[gone]
        return rows

    def close(self) -> None:
        """Nothing to release (no map is held between refreshes); ``with Top(...)`` reads
        as it always did."""

    def __enter__(self) -> Top:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked(ref: str) -> str:
    """``ref`` as :meth:`Top._wanted` matches it (a path made absolute), once it is known
    to name a map: opened as every verb opens one, or expanded to at least one."""
    several = expand(ref, names=True)
    if several is None:
        Map.open(ref, readonly=True).close()
    else:
        require_some(several, ref)
    return ref if ref.startswith(("id:", "name:")) else os.path.abspath(ref)


def _sort_key(sort: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if sort == "name":
        return lambda r: (r["name"], r["id"])
    field = {"fill": "fill", "entries": "entries", "rate": "rate", "memory": "memlock"}[sort]
    return lambda r: (r[field] is None, -(r[field] or 0), r["id"])
