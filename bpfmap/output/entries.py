"""Entries written in every format: frames (a JSON array's brackets), lines from decoded
batches (one %-format per batch through templates) or straight from raw ones (rows),
CSV, tables, one value, and each entry's own text for drains."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Protocol

from ..layout.leaves import csv_string, non_finite

# tables (rich) and templates load with the first dump that writes them: one lookup's
# value needs neither (start-up is most of a one-entry verb's time)

OUTPUT_FORMATS = ("text", "json", "jsonl", "csv", "table")


def entry_object(key: object, value: object, percpu: bool) -> dict[Any, Any]:
    return {"key": key, "values": value} if percpu else {"key": key, "value": value}


DecodedBatch = tuple[list[Any], list[Any]]  # (keys, values) of one batch, decoded


class TextCodec(Protocol):
    """What the writers need of a side's codec (layout.Codec has it): its text form (and,
    through output.templates, its type for whole-batch formatting)."""

    def format(self, value: Any) -> str: ...


class _Unreadable:
    """The value codec of maps whose values user space cannot read: text ``-``, JSON null."""

    def format(self, value: Any) -> str:
        return "-"


UNREADABLE = _Unreadable()


def columns(entries: Iterable[tuple[object, object]], size: int = 8192) -> Iterator[DecodedBatch]:
    """Regroup (key, value) pairs into batches of columns."""
    it = iter(entries)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        keys, values = zip(*chunk)
        yield list(keys), list(values)


class _Frame:
    """What surrounds and separates entries in a line format: a JSON array's brackets and
    commas (``json``), nothing for ``text`` and ``jsonl``."""

    __slots__ = ("start", "first", "between", "empty_end", "end")

    def __init__(self, start: str = "", first: str = "", between: str = "", empty_end: str = "", end: str = ""):
        self.start, self.first, self.between, self.empty_end, self.end = start, first, between, empty_end, end


_FRAMES = {"text": _Frame(), "jsonl": _Frame(), "json": _Frame("[", "\n  ", ",\n  ", "]\n", "\n]\n")}
_UTF8_FRAMES = {
    fmt: _Frame(*(getattr(f, part).encode() for part in ("start", "first", "between", "empty_end", "end")))
    for fmt, f in _FRAMES.items()
}


def utf8_sink(out: IO[str]) -> IO[bytes] | None:
    """The binary stream under ``out`` when UTF-8 bytes written there are the bytes
    ``out.write`` would write of their text (a UTF-8 text stream that is not a terminal:
    on a terminal the command line's stdout makes control characters visible), its text
    layer flushed; else None."""
    import codecs

    try:
        if out.isatty():
            return None
        buffer, encoding = out.buffer, out.encoding  # type: ignore[attr-defined]
        if codecs.lookup(encoding).name != "utf-8":
            return None
    except (AttributeError, LookupError, TypeError, ValueError, OSError):  # no buffer, closed, not a stream
        return None
    out.flush()
    return buffer  # type: ignore[no-any-return]


def _write_lines(
    fmt: str, batches: Iterable[DecodedBatch], key_codec: TextCodec, value_codec: TextCodec, percpu: bool, out: IO[str]
) -> int:
    """text, jsonl, json: one %-format or one join per batch, one write per batch."""
    fast = _batch_template(fmt, key_codec, value_codec, percpu)
    line = None if fast else _line_function(fmt, key_codec, value_codec, percpu)

    def chunks() -> Iterator[tuple[str, int]]:
        for keys, values in batches:
            n = len(keys)
            if not n:
                continue
            if fast:
                template, items = fast
                pairs = zip(keys, values) if items is None else map(items, keys, values)
                yield (template * n) % tuple(itertools.chain.from_iterable(pairs)), n
            else:
                yield "".join(map(line, zip(keys, values))), n  # type: ignore[arg-type]

    return _write_framed(fmt, chunks(), out)


def _write_framed(fmt: str, chunks: Iterable[tuple[Any, int]], out: IO[Any], newline: Any = "\n") -> int:
    """Write (lines, entries) chunks framed for ``fmt`` (json: one array, an entry per
    line); returns the entries written.  ``newline`` ``b"\\n"``: the lines are UTF-8
    bytes, written to a binary ``out``."""
    frame = _FRAMES[fmt] if type(newline) is str else _UTF8_FRAMES[fmt]
    count = 0
    out.write(frame.start)
    for lines, n in chunks:
        if frame.between:  # one entry per line, never a raw newline inside one
            lines = (frame.first if count == 0 else frame.between) + lines[:-1].replace(newline, frame.between)
        out.write(lines)
        count += n
    out.write(frame.end if count else frame.empty_end)
    return count


def item_writer(
    fmt: str, kc: TextCodec, vc: TextCodec, ncpus: int | None = None
) -> Callable[[bytes, bytes, int], str] | None:
    """For text, jsonl and json: a function (keys, values, count) -> the entries' lines,
    made straight from the raw batch (layout.rows: leaves in structs and arrays, any
    nesting) when both codecs' types allow; else None.  ``ncpus``: per-CPU values, all
    CPUs' shown.  The same bytes as write_entries writes for the decoded batch."""
    from .rows import row_writer

    if fmt == "csv":
        return _csv_items(kc, vc, ncpus)
    if fmt == "table":
        from .rows import cell_writer

        return cell_writer(kc, vc, ncpus)
    return row_writer(fmt, kc, vc, ncpus)


def _csv_items(kc: TextCodec, vc: TextCodec, ncpus: int | None) -> Callable[[bytes, bytes, int], str] | None:
    """CSV rows from raw batches (output.rows.csv_writer); a batch holding a carriage
    return (rows csv.writer writes all quoted) goes through the decoded path instead."""
    from .rows import csv_writer

    lines = csv_writer(kc, vc, ncpus)
    if lines is None:
        return None
    slow = _CsvRows(ncpus is not None, header=False)
    vs: int = vc.size  # type: ignore[attr-defined]
    stride = (vs + 7) & ~7 if ncpus is not None else vs

    def rows(keys: bytes, values: bytes, count: int) -> str:
        text = lines(keys, values, count)
        if "\r" not in text:
            return text
        dk = kc.decode_many(keys, count)  # type: ignore[attr-defined]
        if ncpus is None:
            dv = vc.decode_many(values, count)  # type: ignore[attr-defined]
        else:
            n = count * ncpus
            flat = vc.decode_many(b"".join(values[i * stride : i * stride + vs] for i in range(n)), n)  # type: ignore[attr-defined]
            dv = [flat[i * ncpus : (i + 1) * ncpus] for i in range(count)]
        return "".join(map(slow.row, dk, dv))

    rows.header = lines.header  # type: ignore[attr-defined]
    return rows


def write_item_batches(
    raw: Iterable[tuple[bytes, bytes, int]], fmt: str, lines: Callable[[bytes, bytes, int], str], out: IO[str]
) -> int:
    """Raw batches through ``lines`` (item_writer), framed as write_entries frames them;
    a piece at a time where ``lines`` makes a batch in pieces (layout.rows)."""
    if hasattr(lines, "columns"):  # a table's cells
        from .table import write_raw_table  # rich and the row plans: only a table needs them

        return write_raw_table(raw, lines, out)
    header = getattr(lines, "header", None)
    if header is not None:  # csv: the column row before the first row
        count = 0
        for keys, values, n in raw:
            if n:
                out.write((header if count == 0 else "") + lines(keys, values, n))
                count += n
        return count
    pieces = getattr(lines, "pieces", None)
    utf8_pieces = getattr(lines, "utf8_pieces", None)
    sink = utf8_sink(out) if utf8_pieces is not None else None
    if utf8_pieces is not None and sink is not None:  # the lines' bytes as they are: no text made and encoded again
        data = itertools.chain.from_iterable(utf8_pieces(keys, values, n) for keys, values, n in raw if n)
        return _write_framed(fmt, data, sink, b"\n")
    if pieces is not None:
        chunks = itertools.chain.from_iterable(pieces(keys, values, n) for keys, values, n in raw if n)
        return _write_framed(fmt, chunks, out)
    return _write_framed(fmt, ((lines(keys, values, n), n) for keys, values, n in raw if n), out)


def _entries(batches: Iterable[DecodedBatch]) -> Iterator[tuple[object, object]]:
    return itertools.chain.from_iterable(zip(k, v) for k, v in batches)


def _write_table(batches: Iterable[DecodedBatch], kc: TextCodec, vc: TextCodec, percpu: bool, out: IO[str]) -> int:
    from .table import write_table  # rich and the row plans: only a table needs them

    return write_table(_entries(batches), kc.format, vc.format, percpu, out)


EntryWriter = Callable[[Iterable[DecodedBatch], Any, Any, bool, IO[str]], int]

_ENTRY_WRITERS: dict[str, EntryWriter] = {
    "text": functools.partial(_write_lines, "text"),
    "jsonl": functools.partial(_write_lines, "jsonl"),
    "json": functools.partial(_write_lines, "json"),
    "csv": lambda batches, _kc, _vc, percpu, out: _entries_csv(_entries(batches), percpu, out),
    "table": _write_table,
}


def write_entries(
    batches: Iterable[DecodedBatch],
    fmt: str,
    key_codec: TextCodec,
    value_codec: TextCodec,
    percpu: bool,
    out: IO[str],
) -> int:
    """Stream batches of entries to ``out`` in ``fmt`` (OUTPUT_FORMATS), one write per batch
    (memory bounded by a batch; a table holds every entry); returns how many entries were
    written.  ``key_codec``/``value_codec`` give the text form and, through their
    templates, let plain values be formatted a batch at a time by one %-format."""
    written: int = _writer(_ENTRY_WRITERS, fmt)(batches, key_codec, value_codec, percpu, out)
    return written


def _writer(table: dict[str, Any], fmt: str) -> Any:
    try:
        return table[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt}") from None


def _batch_template(
    fmt: str, kc: TextCodec, vc: TextCodec, percpu: bool
) -> tuple[str, Callable[[Any, Any], tuple[Any, ...]] | None] | None:
    """(%-format for one entry, function entry -> its items) when both sides have
    templates (output.templates), else None."""
    if percpu:
        return None
    from .templates import templates_of

    kt, vt = templates_of(kc), templates_of(vc)
    if fmt == "text":
        kp, vp, head, mid, tail = kt.text, vt.text, "", "\t", "\n"
        kf, vf = kt.flat, vt.flat
    else:
        kp, vp, head, mid, tail = kt.json, vt.json, '{"key": ', ', "value": ', "}\n"
        kf, vf = kt.json_flat, vt.json_flat
    if kp is None or vp is None:
        return None
    if kf is None and vf is None:
        return head + kp + mid + vp + tail, None  # (key, value) pairs are the items
    kf, vf = kf or _alone, vf or _alone

    def items(k: Any, v: Any) -> tuple[Any, ...]:
        return kf(k) + vf(v)

    return head + kp + mid + vp + tail, items


def _alone(x: Any) -> tuple[Any, ...]:
    return (x,)


def _line_function(fmt: str, kc: TextCodec, vc: TextCodec, percpu: bool) -> Callable[[tuple[object, object]], str]:
    """One entry -> its text line (with a newline)."""
    if fmt == "text":
        kt, vt = kc.format, vc.format
        if percpu:
            return lambda e: kt(e[0]) + "\t" + "\t".join(map(vt, e[1])) + "\n"  # type: ignore[call-overload]
        return lambda e: f"{kt(e[0])}\t{vt(e[1])}\n"
    return lambda e: json_dumps(entry_object(e[0], e[1], percpu)) + "\n"


def write_objects(objs: Iterable[object], fmt: str, out: IO[str]) -> int:
    """JSON objects: one per line (jsonl), or one array framed as a dump's entries are
    (json).  Returns how many were written."""
    frame = _FRAMES[fmt]
    count = 0
    out.write(frame.start)
    for obj in objs:
        text = json_dumps(obj)
        out.write((frame.first if count == 0 else frame.between) + text if frame.between else text + "\n")
        count += 1
    out.write(frame.end if count else frame.empty_end)
    return count


def json_dumps(obj: object, indent: int | None = None) -> str:
    """Strict JSON: a NaN or infinite float (f32/f64 fields) is written as the string
    "NaN", "Infinity" or "-Infinity", which bulk load reads back as the same float."""
    import json

    try:
        return json.dumps(obj, indent=indent, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), indent=indent, allow_nan=False)


def _finite(obj: object) -> object:
    if isinstance(obj, float):
        return non_finite(obj) or obj  # NaN and infinities by their JSON names (layout.leaves)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def flatten(prefix: str, obj: object, out: list[tuple[str, object]]) -> None:
    """(column, scalar) pairs: dicts add ``.name``, lists add ``[i]``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            flatten(f"{prefix}[{i}]", v, out)
    else:
        out.append((prefix, obj))


def _whole(column: str) -> bool:
    """A column holding a whole key or value (``key``, ``value``, per CPU ``values[N]``)."""
    return column in ("key", "value") or (column.startswith("values[") and column[7:-1].isdigit())


def _entries_csv(entries: Iterable[tuple[object, object]], percpu: bool, out: IO[str]) -> int:
    rows = _CsvRows(percpu)
    count = 0
    for k, v in entries:
        out.write(rows.row(k, v))
        count += 1
    return count


class _CsvRows:
    """CSV text for one entry at a time: the header row (flattened names of the first
    entry) comes before the first row."""

    def __init__(self, percpu: bool, header: bool = True) -> None:
        import csv
        import io

        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\n")
        # csv quotes a cell holding the line terminator, not one holding a lone "\r",
        # which a reader then takes for a line end: such rows are written all quoted
        self._quoted = csv.writer(self._buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
        self._side = "values" if percpu else "value"
        self._header = False
        self._with_header = header
        self._strings: list[tuple[int, bool]] = []

    def row(self, k: object, v: object) -> str:
        cells: list[tuple[str, object]] = []
        flatten("key", k, cells)
        flatten(self._side, v, cells)
        if not self._header:
            if self._with_header:
                self._writer.writerow([c for c, _ in cells])
            self._header = True
            # every row has the first's columns: the string ones are checked (csv_string)
            self._strings = [(i, _whole(c)) for i, (c, x) in enumerate(cells) if type(x) is str]
        row = ["true" if x is True else "false" if x is False else x for _, x in cells]
        for i, whole in self._strings:
            x = row[i]
            if type(x) is str and (whole or not x.isascii() or x[:1] == '"'):
                row[i] = csv_string(x, whole)
        if any(type(x) is str and "\r" in x for x in row):
            self._quoted.writerow(row)
        else:
            self._writer.writerow(row)
        text = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate()
        return text


class EntryTexts:
    """Entries one string each, in exactly the bytes write_entries writes (separators
    and a JSON array's brackets included), for a writer that must know where each entry
    ends in its output: a drain puts back the entries a failed write did not deliver.
    Formats: text, jsonl, json, csv (a table is drawn only once every entry is in)."""

    DRAIN_FORMATS = ("text", "jsonl", "json", "csv")

    def __init__(self, fmt: str, key_codec: TextCodec, value_codec: TextCodec, percpu: bool) -> None:
        if fmt not in self.DRAIN_FORMATS:
            raise ValueError(f"unknown format {fmt}")
        self.fmt, self.count = fmt, 0
        if fmt == "csv":
            self._one: Callable[[object, object], str] = _CsvRows(percpu).row
            return
        fast = _batch_template(fmt, key_codec, value_codec, percpu)
        if fast is None:
            line = _line_function(fmt, key_codec, value_codec, percpu)
            self._one = lambda k, v: line((k, v))
        elif fast[1] is None:
            template = fast[0]
            self._one = lambda k, v: template % (k, v)
        else:
            template, make = fast
            assert make is not None
            self._one = lambda k, v: template % make(k, v)

    def batch(self, keys: list[Any], values: list[Any]) -> list[str]:
        """The text of each entry of a decoded batch, in order."""
        texts = list(map(self._one, keys, values))
        frame = _FRAMES.get(self.fmt)
        if frame is not None and frame.between and texts:
            first = frame.start + frame.first if self.count == 0 else frame.between
            texts = [first + texts[0][:-1]] + [frame.between + t[:-1] for t in texts[1:]]
        self.count += len(texts)
        return texts

    def end(self) -> str:
        """What follows the last entry (a JSON array's closing bracket)."""
        frame = _FRAMES.get(self.fmt)
        if frame is None:
            return ""
        return frame.end if self.count else frame.start + frame.empty_end


def write_value(
    key: object,
    value: object,
    fmt: str,
    value_text: Callable[[object], str],
    percpu: bool,
    out: IO[str],
    with_key: bool = True,
) -> None:
    """One value (lookup/pop/peek): text prints the value alone, json an object."""
    if fmt in _JSON_INDENT:
        obj = entry_object(key, value, percpu) if with_key else ({"values": value} if percpu else {"value": value})
        out.write(json_dumps(obj, indent=_JSON_INDENT[fmt]) + "\n")
    elif percpu:
        out.write("\t".join(map(value_text, value)) + "\n")  # type: ignore[call-overload]
    else:
        out.write(value_text(value) + "\n")


_JSON_INDENT = {"json": 2, "jsonl": None}  # single objects: indented for json, one line for jsonl
