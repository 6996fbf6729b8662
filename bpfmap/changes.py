"""Counting and deleting the entries a filter picks (``bpfmap count``, ``delete --where``).

A filtered delete reads the map once (batch lookups), keeps the keys of the entries that
match, and then, a chunk of keys at a time, reads each candidate's current value again,
keeps those that no longer match (a program changed them since the read: they are
``changed``, not deleted), and deletes the rest with one batch delete.  What a program
changes in the microseconds between that re-check and the delete of its chunk is not
seen: the kernel offers no compare-and-delete."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .errors import BpfmapError, KeyNotFound, UsageError
from .filters import Where
from .types import Access
from .view import View

CHUNK = 64  # keys re-checked and then deleted together: the window a program's change can miss


def count(view: View, where: Where | None = None) -> int:
    """How many entries ``view``'s map holds, or how many pass ``where``."""
    m = view.map
    m.require("dump", "count")
    if not where and m.kind.access is Access.KEYED:
        from .core.owners import count as count_all

        n, _exact = count_all(m)
        if n is not None:
            return n
    n = 0
    for keys, _values in _matches(view, where):
        n += len(keys)
    return n


def _matches(view: View, where: Where | None, size: int | None = None) -> Iterator[tuple[list, list]]:
    """Decoded batches of the entries that pass ``where`` (every entry without one)."""
    if where is not None:
        where.begin()
    stream = view.raw_batches(size)
    try:
        for keys, values, n in stream:
            k, v = view.decode_batch(keys, values, n)
            yield where.columns(k, v) if where else (k, v)
    finally:
        stream.close()


class Deletion:
    """``delete MAP --where ...``: iterate :meth:`run` for the deleted entries, decoded, a
    chunk at a time (with ``dry_run``, the entries that match, and nothing is deleted);
    afterwards ``matched`` (candidates found by the read), ``deleted``, ``changed`` (no
    longer matched when re-checked: kept) and ``gone`` (deleted by someone else first)
    add up: matched == deleted + changed + gone.

    A consumer that stops taking entries (the output failed) gets the chunk it did not
    take put back (where no program has made the key again), so nothing is deleted unseen.
    ``before_recheck`` is called with each chunk's raw keys before their re-check (tests
    use it to change entries at that moment)."""

    def __init__(
        self,
        view: View,
        where: Where,
        dry_run: bool = False,
        chunk: int = CHUNK,
        before_recheck: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        if not where:
            raise UsageError("delete --where: give at least one condition (--where or --older-than)")
        m = view.map
        m.require("delete")
        if m.kind.access is not Access.KEYED:
            raise UsageError(
                f"delete --where {m.ref}: a {m.type_label}'s entries belong to kernel objects; "
                f"delete them one object at a time (delete MAP pid:N, cgroup:PATH, ...)"
            )
        self.view, self.where, self.dry_run, self.chunk = view, where, dry_run, max(1, chunk)
        self.before_recheck = before_recheck
        self.matched = self.deleted = self.changed = self.gone = 0

    def run(self) -> Iterator[tuple[list, list]]:
        view, m = self.view, self.view.map
        ks = m.key_size
        candidates: list[bytes] = []
        self.where.begin()
        stream = view.raw_batches()
        try:
            for keys, values, n in stream:
                dk, dv = view.decode_batch(keys, values, n)
                hit = [i for i in range(n) if self.where(dk[i], dv[i])]
                self.matched += len(hit)
                if self.dry_run:
                    if hit:
                        yield [dk[i] for i in hit], [dv[i] for i in hit]
                    continue
                candidates += [keys[i * ks : (i + 1) * ks] for i in hit]
        finally:
            stream.close()
        for start in range(0, len(candidates), self.chunk):
            yield from self._delete_chunk(candidates[start : start + self.chunk])

    def _delete_chunk(self, raw_keys: list[bytes]) -> Iterator[tuple[list, list]]:
        view, m = self.view, self.view.map
        if self.before_recheck is not None:
            self.before_recheck(raw_keys)
        keep_raw: list[tuple[bytes, Any]] = []
        keys: list[Any] = []
        values: list[Any] = []
        for raw in raw_keys:  # the re-check: each candidate's value now
            try:
                value_raw = m.lookup(raw)
            except KeyNotFound:
                self.gone += 1
                continue
            key, value = view.key.decode(raw), view.decode_value(value_raw)
            if not self.where(key, value):
                self.changed += 1
                continue
            keep_raw.append((raw, value_raw))
            keys.append(key)
            values.append(value)
        if not keep_raw:
            return
        done = m.delete_batch(b"".join(k for k, _v in keep_raw), len(keep_raw))
        self.deleted += done
        self.gone += len(keep_raw) - done
        try:
            yield keys, values
        except GeneratorExit:
            self._put_back(keep_raw)
            raise

    def _put_back(self, entries: list[tuple[bytes, Any]]) -> None:
        """Entries deleted but not shown: back in, unless a program has made the key again."""
        m = self.view.map
        for raw, value in entries:
            try:
                m.update(raw, value, "noexist")
                self.deleted -= 1
            except BpfmapError:
                pass
