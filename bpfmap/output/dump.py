"""A whole map written out: the library's dump, which ``bpfmap dump`` calls once.

Every entry in the kernel's order (or sorted), in text, JSON Lines, JSON, CSV or a
table, memory bounded by a batch (a sort or a table holds the entries; ``--top N`` holds
N).  Where key and value are leaves in structs and arrays and values are whole, raw
batches go straight to their lines (output.rows); otherwise decoded batches through the
templates (output.templates) or entry by entry."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..errors import Param, UsageError, Words, words
from ..types import Value
from ..view import View, sort_entries
from .entries import UNREADABLE, _CsvRows, _line_function, columns, item_writer, write_entries, write_item_batches

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
    where: Any = None,
    batch_size: int | None = None,
    progress: Callable[[Batches, bool], Batches] | None = None,
    note: Callable[[str | Words], None] | None = None,
) -> int:
    """Write every entry of ``source`` (a View, or a Map: read through its BTF) to ``out``
    in ``format`` (text, jsonl, json, csv, table); returns how many were written.

    ``percpu`` reduces per-CPU values (sum, max, min, avg; ``all``/None: every CPU's) or
    ``cpu`` picks one CPU's; ``sort`` orders by a field path (``top``: the N largest,
    ``reverse``: ascending/smallest); ``where`` (a filters.Where bound to the view, seeing
    values as ``percpu``/``cpu`` leave them) keeps the entries it passes; ``batch_size`` bounds a kernel batch.  ``progress``
    wraps the batch stream (raw batches when its second argument is True) to count it;
    ``note`` is told about what cannot be shown (values of fd maps; a message that may name
    parameters, errors.words).  Raises UsageError for
    options that do not fit the map, the map's errors otherwise."""
    view = source if isinstance(source, View) else View(source)
    m = view.map
    reduce, still_percpu = view.reducer(percpu, cpu)
    m.require("dump")
    if m.kind.value is Value.FD:
        return _fd_slots(view, format, out, note)
    lines = None
    if where is not None:
        where.begin()
    by = None
    if reduce is None and not where:  # every value whole
        if sort is not None:
            if top is not None and top < 1:
                raise UsageError(words(Param("top"), " must be at least 1"))
            from .sort import sort_field  # sorts, per-CPU reductions: loaded by the dumps that use them

            by = sort_field(view, sort)  # an integer field: sorted on the raw bytes
        if sort is None or by is not None:
            lines = item_writer(format, view.key, view.value, m.ncpus if still_percpu else None)
    if reduce is not None and sort is None and not where and format != "table":
        lines = _reduced_lines(view, format, percpu, cpu)  # one CPU's, or the CPUs' reduced
    # leaves in structs and arrays: raw batches straight to their lines; else decoded ones
    # (filtered: from raw batches, for the filter compares what the fields hold, not what --as shows)
    raw = lines is not None or bool(where)
    stream: Any = view.raw_batches(size=batch_size) if raw else view.column_batches(size=batch_size)
    batches = progress(stream, raw) if progress is not None else stream
    try:
        if lines is not None:
            if by is not None:
                from .sort import sorted_batches

                batches = sorted_batches(batches, by, m.key_size, m.shape.entry, reverse, top)
            return write_item_batches(batches, format, lines, out)
        if where:
            batches = (view.passing(where, k, v, n, reduce)[1:] for k, v, n in batches)
        elif reduce is not None:
            batches = ((k, list(map(reduce, v))) for k, v in batches)
        if sort is not None:
            entries = itertools.chain.from_iterable(zip(k, v) for k, v in batches)
            batches = columns(sort_entries(entries, sort, reverse, top, view.field_types, still_percpu))
        return write_entries(batches, format, view.key, view.value, still_percpu, out)
    finally:
        stream.close()  # stops the read-ahead thread before the map's fd is closed
        walk_note = getattr(m, "walk_note", None)
        if note is not None and walk_note:
            note(walk_note)  # how a map of kernel objects was listed, when it matters


def _reduced_lines(view: View, fmt: str, how: str | None, cpu: int | None) -> Any:
    """A lines function over per-CPU raw batches giving plain values: CPU ``cpu``'s, or
    the CPUs' reduced by ``how`` (output.percpu); None for the decoded path."""
    from .percpu import one_cpu, reduced

    plain = item_writer(fmt, view.key, view.value, None)
    if plain is None:
        return None
    m = view.map
    lines: Any
    if cpu is not None:
        lines = one_cpu(plain, cpu, m.value_size, m.shape.entry)
    else:

        def slow(keys: list[Any], values: list[Any]) -> str:
            """The decoded path's lines (made when a batch first needs them: rarely)."""
            if fmt == "csv":
                return "".join(map(_CsvRows(False, header=False).row, keys, values))
            line = _line_function(fmt, view.key, view.value, False)
            return "".join(map(line, zip(keys, values)))

        lines = reduced(lambda codec: item_writer(fmt, view.key, codec, None), view, how or "", slow)
        if lines is None:
            return None
    header = getattr(plain, "header", None)
    if header is not None:
        lines.header = header  # csv: the column row
    return lines


def _fd_slots(view: View, fmt: str, out: IO[str], note: Callable[[str | Words], None] | None) -> int:
    """Maps whose values are kernel objects (sockmap, sockhash, reuseport_sockarray,
    cgroup_array, xskmap): the occupied slots.  Where the kernel reads a value back (a
    socket's cookie, with 8-byte values) it shows; where it cannot, an array's slots cannot
    be told apart (one note says so, nothing is written) and a hash's keys show with an
    unreadable value (text ``-``, JSON null)."""
    m = view.map
    value_codec = view.value  # a socket's cookie as a number (layout/pick)
    pairs, unreadable = m.fd_values()
    items = [(view.key.decode(k), None if v is None else value_codec.decode(v)) for k, v in pairs]
    if unreadable and m.kind.indexed:
        if note is not None:
            cookies = words(" of 4 bytes (make it with ", Param("value_size"), " 8 to read sockets back as cookies)")
            note(
                words(
                    f"{m.type_label} {m.ref}: {m.max_entries} slots; user space cannot read a {m.type_label}'s values",
                    cookies if m.kind.object == "sock" else "",
                    ", so occupied slots cannot be told from empty ones",
                )
            )
        return write_entries(columns([]), fmt, view.key, UNREADABLE, False, out)  # an empty dump (json: [])
    if unreadable and note is not None:
        note(f"{m.type_label} values are kernel objects user space cannot read; showing the keys")
    shown = UNREADABLE if unreadable else value_codec
    return write_entries(columns(items), fmt, view.key, shown, False, out)
