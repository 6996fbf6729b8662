"""``-o table``: entries as a table, drawn by rich when they are few, streamed when many.

rich's Table measures every cell before it draws a line (65 s for 100,000 entries); a
dump of more than SMALL entries is instead written a chunk at a time, in rich's style
(no edges, ``┃`` under the header, ``│`` between cells, one space of padding), with
column widths from the header, the kind of each column and the first SMALL rows, shrunk
to the console's width when wider; a later cell wider than its column folds onto more
lines, as rich's ``overflow="fold"`` does.  Drawn with the widths rich would choose, the
lines are rich's, byte for byte (tests/unit/test_output.py checks it)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from ..layout import format_text
from .rows import SEP
from .terminal import cell, cells, colour, console, unguarded

SMALL = 1000  # entries rich draws; past that, the table streams
CHUNK = 4096  # rows written at once
MIN_WIDTH = 4  # a column shrunk to fit the console keeps at least this many characters


def write_table(
    entries: Iterable[tuple[object, object]],
    key_text: Callable[[Any], str],
    value_text: Callable[[Any], str],
    percpu: bool,
    out: IO[str],
) -> int:
    """Entries as a table (one column per top-level key field and value field; per CPU,
    one per CPU), then ``N entries``; returns N."""
    it = iter(entries)
    first = list(itertools.islice(it, SMALL + 1))
    if len(first) <= SMALL:
        return _rich_table(first, key_text, value_text, percpu, out)
    names = _columns(first[0], percpu)
    cells = _cells(key_text, value_text, percpu)
    head = [cell(c) for c in names]
    rows = [cells(k, v) for k, v in first]
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]
    if _terminal(out):  # a file or a pipe takes any width; a terminal's lines must fit it
        widths = fit(widths, console(out).width)
    bold = colour(out)
    unguarded(out).write(header(head, widths, bold))  # its own bold; the names are cells
    count = 0
    for chunk in itertools.chain([rows], _chunks(it, cells)):
        out.write(lines(chunk, widths))
        count += len(chunk)
    unguarded(out).write(footer(count, bold))
    return count


def write_raw_table(raw: Iterable[tuple[bytes, bytes, int]], cells_of: Any, out: IO[str]) -> int:
    """The table of raw batches whose cells ``cells_of`` (output.rows.cell_writer) makes
    straight from their bytes: the same table write_table draws of the decoded entries,
    its rows padded by one %-format per chunk."""
    ncols, strings = len(cells_of.columns), cells_of.strings

    def flat_cells(keys: bytes, values: bytes, n: int) -> list[str]:
        flat: list[str] = cells_of(keys, values, n).split(SEP)
        flat.pop()  # after the last cell
        for j in strings:
            flat[j::ncols] = cells(flat[j::ncols])
        return flat

    batches = ((k, v, n) for k, v, n in raw if n)
    held: list[str] = []
    for keys, values, n in batches:
        held += flat_cells(keys, values, n)
        if len(held) > SMALL * ncols:
            break
    head = [cell(c) for c in cells_of.columns]
    if len(held) <= SMALL * ncols:
        rows = [held[i : i + ncols] for i in range(0, len(held), ncols)]
        return _rich_rows(head, rows, out)
    widths = [max(len(head[j]), max(map(len, held[j::ncols]))) for j in range(ncols)]
    if _terminal(out):  # a file or a pipe takes any width; a terminal's lines must fit it
        widths = fit(widths, console(out).width)
    bold = colour(out)
    unguarded(out).write(header(head, widths, bold))  # its own bold; the names are cells
    row = " " + " │ ".join(f"%-{w}s" for w in widths) + " \n"
    count = 0
    for flat in itertools.chain([held], (flat_cells(k, v, n) for k, v, n in batches)):
        n = len(flat) // ncols
        if all(max(map(len, flat[j::ncols])) <= widths[j] for j in range(ncols)):
            out.write((row * n) % tuple(flat))
        else:  # some cell is wider than its column: fold it
            out.write(lines([flat[i : i + ncols] for i in range(0, len(flat), ncols)], widths))
        count += n
    unguarded(out).write(footer(count, bold))
    return count


def _chunks(it: Iterator[tuple[object, object]], cells: Cells) -> Iterator[list[list[str]]]:
    while True:
        part = list(itertools.islice(it, CHUNK))
        if not part:
            return
        yield [cells(k, v) for k, v in part]


def _columns(first: tuple[object, object], percpu: bool) -> list[str]:
    k, v = first
    key_cols = [f"key.{n}" for n in k] if isinstance(k, dict) else ["key"]
    if percpu:
        val_cols = [f"cpu{i}" for i in range(len(v))]  # type: ignore[arg-type]
    else:
        val_cols = list(v) if isinstance(v, dict) else ["value"]
    return key_cols + val_cols


Cells = Callable[[Any, Any], list[str]]


def _cells(key_text: Callable[[Any], str], value_text: Callable[[Any], str], percpu: bool) -> Cells:
    """A function (key, value) -> the row's cells, each made safe for a terminal."""

    def cells(k: Any, v: Any) -> list[str]:
        kcells = [format_text(x) for x in k.values()] if isinstance(k, dict) else [key_text(k)]
        if percpu:
            vcells = [value_text(x) for x in v]
        elif isinstance(v, dict):
            vcells = [format_text(x) for x in v.values()]
        else:
            vcells = [value_text(v)]
        return [cell(c) for c in kcells + vcells]

    return cells


def fit(widths: list[int], total: int) -> list[int]:
    """Column widths shrunk, widest first, until the table (with its separators and
    padding) fits ``total`` characters, no column under MIN_WIDTH."""
    widths = list(widths)
    room = total - 3 * len(widths) + 1  # a line is " " + " │ ".join(cells) + " "
    while sum(widths) > room:
        i = max(range(len(widths)), key=widths.__getitem__)
        if widths[i] <= MIN_WIDTH:
            break
        widths[i] -= 1
    return widths


def _terminal(out: IO[str]) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _folded(cells: list[str], widths: list[int]) -> list[list[str]]:
    """A row's cells padded to their columns, a line each; a cell wider than its column
    folds onto the lines after it."""
    parts = [[c[i : i + w] for i in range(0, len(c), w)] or [""] for c, w in zip(cells, widths)]
    return [[(p[j] if j < len(p) else "").ljust(w) for p, w in zip(parts, widths)] for j in range(max(map(len, parts)))]


def header(names: list[str], widths: list[int], bold: bool) -> str:
    top = ""
    for line in _folded(names, widths):
        if bold:
            line = [f"\x1b[1m{c}\x1b[0m" for c in line]
        top += " " + " ┃ ".join(line) + " \n"
    rule = "╇".join("━" * (w + 2) for w in widths) + "\n"
    return top + rule


def lines(rows: list[list[str]], widths: list[int]) -> str:
    """The rows' lines; a cell wider than its column folds onto lines of its own."""
    out = []
    for r in rows:
        if all(len(c) <= w for c, w in zip(r, widths)):
            out.append(" " + " │ ".join([c.ljust(w) for c, w in zip(r, widths)]) + " \n")
            continue
        out += [" " + " │ ".join(line) + " \n" for line in _folded(r, widths)]
    return "".join(out)


def footer(count: int, dim: bool) -> str:
    text = f"{count} entr{'y' if count == 1 else 'ies'}"
    return f"\x1b[2m{text}\x1b[0m\n" if dim else text + "\n"


def _rich_table(
    entries: list[tuple[object, object]],
    key_text: Callable[[Any], str],
    value_text: Callable[[Any], str],
    percpu: bool,
    out: IO[str],
) -> int:
    """A rich table, fitted to the console: for the few entries it draws quickly."""
    cells = _cells(key_text, value_text, percpu)
    names = _columns(entries[0], percpu) if entries else ["key", "value"]
    return _rich_rows([cell(c) for c in names], [cells(k, v) for k, v in entries], out)


def _rich_rows(names: list[str], rows: list[list[str]], out: IO[str]) -> int:
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for col in names:
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*r)
    con = console(out)
    con.print(table)
    con.print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}", style="dim")
    return len(rows)
