"""Counting and deleting the entries a filter picks (``bpfmap count``, ``delete --where``).

A filtered delete reads the map once (batch lookups), keeps the keys of the entries that
match, and then, a chunk of keys at a time, reads each candidate's current value again,
keeps those that no longer match (a program changed them since the read: they are
``changed``, not deleted), and deletes the rest with one batch delete.  What a program
changes in the microseconds between that re-check and the delete of its chunk is not
seen: the kernel offers no compare-and-delete."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import IO, Any

from ..errors import BpfmapError, KeyNotFound, Param, UsageError, words
from ..filters import Where
from ..types import Access
from ..view import View

CHUNK = 64  # keys re-checked and then deleted together: the window a program's change can miss


def count(view: View, where: Where | list[str] | None = None) -> int:
    """How many entries ``view``'s map holds, or how many pass ``where`` (a filters.Where,
    or conditions such as ``["packets>=3"]``)."""
    where = bound(view, where)
    m = view.map
    m.require("dump", "count")
    if not where and m.kind.access is Access.KEYED:
        from ..core.owners import count as count_all

        n, _exact = count_all(m)
        if n is not None:
            return n
    n = 0
    for keys, _values in _matches(view, where):
        n += len(keys)
    return n


def bound(view: View, where: Where | list[str] | tuple[str, ...] | None) -> Where | None:
    """``where`` as a filters.Where of ``view``'s types: conditions (``["packets>=3"]``)
    bound, a Where as it is."""
    return view.where(list(where)) if isinstance(where, (list, tuple)) else where


def _matches(view: View, where: Where | None, size: int | None = None) -> Iterator[tuple[list[Any], list[Any]]]:
    """Decoded batches of the entries that pass ``where`` (every entry without one)."""
    if where is not None:
        where.begin()
    stream = view.raw_batches(size)
    try:
        for keys, values, n in stream:
            yield view.passing(where, keys, values, n)[1:]
    finally:
        stream.close()


class Deletion:
    """``delete MAP --where ...``: iterate :meth:`run` for the deleted entries, decoded, a
    chunk at a time (with ``dry_run``, the entries that match, and nothing is deleted),
    or :meth:`write` them to an output; afterwards ``matched`` (candidates found by the
    read), ``deleted``, ``changed`` (no longer matched when re-checked: kept), ``gone``
    (deleted by someone else first) and ``restored`` (deleted, then put back because
    they did not reach the output) add up: matched == deleted + changed + gone + restored.

    A consumer that stops taking entries (the output failed) gets the chunk it did not
    take put back (where no program has made the key again), so nothing is deleted unseen.
    ``before_recheck`` is called with each chunk's raw keys before their re-check (tests
    use it to change entries at that moment)."""

    def __init__(
        self,
        view: View,
        where: Where | list[str],
        dry_run: bool = False,
        chunk: int = CHUNK,
        before_recheck: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        checked = bound(view, where)
        if not checked:
            raise UsageError(
                words(
                    "delete ",
                    Param("where"),
                    ": give at least one condition (",
                    Param("where"),
                    " or ",
                    Param("older_than"),
                    ")",
                )
            )
        m = view.map
        m.require("delete")
        if m.kind.access is not Access.KEYED:
            raise UsageError(
                words(
                    "delete ",
                    Param("where"),
                    f" {m.ref}: a {m.type_label}'s entries belong to kernel objects; "
                    f"delete them one object at a time (delete MAP pid:N, cgroup:PATH, ...)",
                )
            )
        self.view, self.where, self.dry_run, self.chunk = view, checked, dry_run, max(1, chunk)
        self.before_recheck = before_recheck
        self.matched = self.deleted = self.changed = self.gone = self.restored = 0

    def run(self) -> Iterator[tuple[list[Any], list[Any]]]:
        """The deleted entries (dry run: the matching ones), decoded, a chunk at a time."""
        view = self.view
        if self.dry_run:
            yield from self._read()
            return
        for keys, values, n in self.chunks():
            try:
                yield view.decode_batch(keys, values, n)
            except GeneratorExit:
                self._put_back(keys, values, n)
                raise

    def chunks(self) -> Generator[tuple[bytes, bytes, int], None, None]:
        """The deleted entries as raw (keys, values, count) chunks, shaped as Map.batches
        gives them (what bpfmap.entries.drain takes).  Each chunk is gone from the map when it
        comes: a consumer that cannot use it must put it back (:meth:`write` does)."""
        if self.dry_run:
            raise UsageError(
                words("delete ", Param("where"), ": a dry run deletes nothing (iterate run() for the matches)")
            )
        candidates = [raw for raw, _n in self._read()]
        for start in range(0, len(candidates), self.chunk):
            chunk = self._delete_chunk(candidates[start : start + self.chunk])
            if chunk is not None:
                yield chunk

    def write(self, out: IO[str], fmt: str = "text", stop: Callable[[], bool] = lambda: False) -> int:
        """Delete, writing each deleted entry to ``out`` as dump writes it (text, jsonl, json,
        csv) without losing one (see bpfmap.entries.drain): what does not reach the output (a
        reader that closed its pipe, a full disk) is put back in the map and counted in
        ``restored``.  ``stop`` is asked after each chunk (a signal came).  Returns how
        many entries were written.  Raises DeliveryError when the output failed, after
        putting back what it did not take (a reader gone: ``reader_gone``)."""
        from ..output import EntryTexts
        from .drain import DeliveryError, Sink, drain

        view = self.view
        texts = EntryTexts(fmt, view.key, view.value, view.percpu)
        source = self.chunks()
        try:
            return drain(
                view.map,
                lambda keys, values, n: texts.batch(*view.decode_batch(keys, values, n)),
                Sink(out),
                texts.end,
                stop=stop,
                batches=source,
                action="delete",
            )
        except DeliveryError as err:
            self.deleted -= err.restored
            self.restored += err.restored
            raise
        finally:
            source.close()

    def _read(self) -> Iterator[Any]:
        """One pass over the map: dry run, the matching entries' decoded batches; else the
        raw key of each match (with its count, 1)."""
        view, ks = self.view, self.view.map.key_size
        self.where.begin()
        stream = view.raw_batches()
        try:
            for keys, values, n in stream:
                hit, dk, dv = view.passing(self.where, keys, values, n)
                self.matched += len(hit)
                if self.dry_run:
                    if hit:
                        yield dk, dv
                    continue
                for i in hit:
                    yield keys[i * ks : (i + 1) * ks], 1
        finally:
            stream.close()

    def _delete_chunk(self, raw_keys: list[bytes]) -> tuple[bytes, bytes, int] | None:
        """Re-check and delete a chunk of candidates: the deleted ones as a raw chunk."""
        view, m = self.view, self.view.map
        if self.before_recheck is not None:
            self.before_recheck(raw_keys)
        keys: list[bytes] = []
        values: list[bytes] = []
        for raw in raw_keys:  # the re-check: each candidate's value now
            try:
                value = m.lookup(raw)
            except KeyNotFound:
                self.gone += 1
                continue
            if not view.passes(self.where, raw, value):
                self.changed += 1
                continue
            keys.append(raw)
            values.append(m.shape.pack(value, "delete") if isinstance(value, list) else value)
        if not keys:
            return None
        done = m.delete_batch(b"".join(keys), len(keys))
        self.deleted += done
        self.gone += len(keys) - done
        return b"".join(keys), b"".join(values), len(keys)

    def _put_back(self, keys: bytes, values: bytes, count: int) -> None:
        """Entries deleted but not shown: back in, unless a program has made the key again."""
        m = self.view.map
        ks, vs = m.key_size, m.shape.entry
        for i in range(count):
            try:
                m.update(keys[i * ks : (i + 1) * ks], m.shape.split(values[i * vs : (i + 1) * vs]), "noexist")
                self.deleted -= 1
                self.restored += 1
            except BpfmapError:
                pass
