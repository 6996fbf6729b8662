"""A whole map written out: the library's dump, which ``bpfmap dump`` calls once.

Every entry in the kernel's order (or sorted), in text, JSON Lines, JSON, CSV or a
table, memory bounded by a batch (a sort or a table holds the entries; ``--top N`` holds
N).  Where key and value are leaves in structs and arrays and values are whole, raw
batches go straight to their lines (output.rows); otherwise decoded batches through the
templates (output.templates) or entry by entry."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from ..types import Value
from ..view import View, sort_entries
from .entries import UNREADABLE, columns, item_writer, write_entries, write_item_batches

Batches = Iterator[Any]


def dump(
    source: Any,
    out: IO[str],
    format: str = "text",
    *,
    percpu: str | None = None,
    cpu: int | None = None,
    sort: str | None = None,
    reverse: bool = False,
    top: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[Batches, bool], Batches] | None = None,
    note: Callable[[str], None] | None = None,
) -> int:
    """Write every entry of ``source`` (a View, or a Map: read through its BTF) to ``out``
    in ``format`` (text, jsonl, json, csv, table); returns how many were written.

    ``percpu`` reduces per-CPU values (sum, max, min, avg; ``all``/None: every CPU's) or
    ``cpu`` picks one CPU's; ``sort`` orders by a field path (``top``: the N largest,
    ``reverse``: ascending/smallest); ``batch_size`` bounds a kernel batch.  ``progress``
    wraps the batch stream (raw batches when its second argument is True) to count it;
    ``note`` is told about what cannot be shown (values of fd maps).  Raises UsageError for
    options that do not fit the map, the map's errors otherwise."""
    view = source if isinstance(source, View) else View(source)
    m = view.map
    reduce, still_percpu = view.reducer(percpu, cpu)
    if m.kind.value is Value.FD:
        return _keys_only(view, format, out, note)
    lines = None
    if reduce is None and sort is None:  # every value whole, in the kernel's order
        lines = item_writer(format, view.key, view.value, m.ncpus if still_percpu else None)
    # leaves in structs and arrays: raw batches straight to their lines; else decoded ones
    stream: Any = view.raw_batches(size=batch_size) if lines is not None else view.column_batches(size=batch_size)
    batches = progress(stream, lines is not None) if progress is not None else stream
    try:
        if lines is not None:
            return write_item_batches(batches, format, lines, out)
        if reduce is not None:
            batches = ((k, list(map(reduce, v))) for k, v in batches)
        if sort is not None:
            entries = itertools.chain.from_iterable(zip(k, v) for k, v in batches)
            batches = columns(sort_entries(entries, sort, reverse=reverse, top=top))
        return write_entries(batches, format, view.key, view.value, still_percpu, out)
    finally:
        stream.close()  # stops the read-ahead thread before the map's fd is closed


def _keys_only(view: View, fmt: str, out: IO[str], note: Callable[[str], None] | None) -> int:
    """Maps whose values are file descriptors the kernel keeps for programs (sockmap,
    cgroup_array, xskmap, ...): user space can list their keys but not read the values,
    so every value is shown as unreadable (text ``-``, JSON null)."""
    m = view.map
    if note is not None:
        note(
            f"{m.type_label} values are kernel objects (sockets, cgroups, ...) that user space cannot read; "
            f"showing the keys"
        )
    batches: Iterable[Any] = columns((k, None) for k in map(view.key.decode, m.keys()))
    return write_entries(batches, fmt, view.key, UNREADABLE, False, out)
