"""Bulk load: entries from text, JSON Lines or CSV, written with batch updates.

The formats are those ``dump`` writes, so ``dump | update --from -`` round-trips:
- text: ``KEY<TAB>VALUE`` (per-CPU: ``KEY<TAB>V0<TAB>V1...``); blank and ``#`` lines skipped;
- jsonl: ``{"key": K, "value": V}`` (per-CPU ``"values": [...]``); blank and ``#`` lines skipped;
- csv: a header of flattened names (``key``, ``key.port``, ``value.hist[0].lo``,
  ``values[1]``) and one row per entry.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from ..core.threads import WriterThread
from ..errors import BpfmapError, EntriesDropped, KeyNotFound, Param, UsageError, Words, amended, quote, said, words
from ..host.inputs import (
    READ_BYTES,
    BoundedLines,
    LoadError,
    LongLine,
    TextSource,
    line_limit,
    open_input,
    split_lines,
)
from ..layout.codec import _jsonable
from ..layout.fields import keys as field_keys
from ..layout.leaves import unquote
from ..layout.model import Array, Char, Scalar, Struct
from ..types import Value
from ..view import View

INPUT_FORMATS = ("auto", "text", "jsonl", "csv")
CHUNK = 65536
_TEXT_CHUNK = re.compile(r"(?:[^\t\n]*\t[^\t\n]*\n)*")


LoadRecord = tuple[int, Any, Any]  # (line number, key, value or per-CPU list); text fields are str


def detect(first_line: str, name: str = "") -> str:
    s = first_line.lstrip()
    if s.startswith("{"):
        return "jsonl"
    if name.endswith(".csv") or (s.startswith(("key,", "key.", '"key')) and "\t" not in s):
        return "csv"
    return "text"


def sniff(stream: IO[str], name: str = "") -> tuple[str, list[str]]:
    """The format of ``stream`` from its first line that is not blank or a comment, and
    the lines read to find it (they still have to be loaded)."""
    head: list[str] = []
    for line in stream:
        head.append(line)
        if line.strip() and not line.startswith("#"):
            break
    return detect(head[-1] if head else "", name), head


# Lines of plain integers, as ``dump`` writes numbers: what a line is once its digits
# (and, where a number may be negative, its minus signs) are removed.  JSON Lines keys and
# values with a minus sign take the json path (a minus could hide in the braces' text).
_NUMBER_ROWS = {
    "jsonl": (b'{"key": , "value": }\n', b"0123456789"),
    "csv": (b",\n", b"0123456789-"),
    "text": (b"\t\n", b"0123456789-"),
}
_SPACED = bytes.maketrans(b",\t\n", b"   ")
_JSONL_TEXT = b'{}":keyvalu'  # the characters of a JSON Lines line that are not its numbers


def _number_fields(block: str, n: int, fmt: str, columns: int = 2) -> list[str] | None:
    """``n`` lines (each ending with a newline) of ``K<TAB>V``, CSV ``K,V`` or JSON Lines
    ``{"key": K, "value": V}`` where K and V are plain integers, as the list K, V, K, V...;
    checked strictly at C speed (two translations and a comparison); None when any line is
    anything else (the general path reads those).  The numbers are checked by the
    encoders, which parse them as int(x, 0) does (no stray sign, no leading zero)."""
    skeleton, digits = _NUMBER_ROWS[fmt]
    if columns != 2:  # CSV rows of a struct's number columns
        skeleton = b"," * (columns - 1) + b"\n"
    try:
        data = block.encode("ascii")
    except UnicodeEncodeError:
        return None
    if data.translate(None, digits) != skeleton * n:
        return None
    data = data.translate(_SPACED, _JSONL_TEXT if fmt == "jsonl" else b"")
    if fmt == "jsonl" and b" 00" in data:
        return None  # JSON has no 00 (int(x, 0) takes it)
    fields = data.decode("ascii").split()
    return fields if len(fields) == columns * n else None  # an empty number: the general path says so


def _counted(numbered: Iterator[tuple[int, str]], current: list[int]) -> Iterator[str]:
    """The lines of ``numbered``, keeping the number of the last one read in ``current``."""
    for n, line in numbered:
        current[0] = n
        yield line


class BadLine(str):
    """The message of a line that could not be read."""


def _text(lines: Iterable[tuple[int, str]]) -> Iterator[LoadRecord]:
    for n, line in lines:
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        key, tab, rest = line.partition("\t")
        if not tab:
            yield n, BadLine("expected KEY<TAB>VALUE"), None
            continue
        values = rest.split("\t")
        yield n, key, values if len(values) > 1 else values[0]


def _jsonl(lines: Iterable[tuple[int, str]]) -> Iterator[LoadRecord]:
    for n, line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as err:  # ValueError: also a number past 4300 digits
            why = "nested too deep" if isinstance(err, RecursionError) else getattr(err, "msg", str(err).split(";")[0])
            yield n, BadLine(f"not JSON: {why}"), None
            continue
        if not isinstance(obj, dict) or "key" not in obj or not ("value" in obj or "values" in obj):
            yield n, BadLine('expected {"key": ..., "value": ...} (or "values" for per-CPU maps)'), None
            continue
        key, value = obj["key"], (obj["values"] if "values" in obj else obj["value"])
        yield n, _as_json(key), [_as_json(v) for v in value] if type(value) is list else _as_json(value)


class JsonString(str):
    """A key or value JSON gave as a string: a ``char[N]`` takes it as it is (text
    would be unquoted and stripped first)."""

    __slots__ = ()


def _as_json(v: Any) -> Any:
    return JsonString(v) if type(v) is str else v


def _row_builder(header: list[str]) -> Callable[[list[str]], dict[Any, Any]]:
    """A function CSV row -> its tree, for this header: the columns' paths parsed once;
    a header of top-level names only (``key,value``) zips the row into a dict."""
    paths = [field_keys(h) for h in header]
    if all(len(p) == 1 and isinstance(p[0], str) for p in paths) and len(set(header)) == len(header):
        names = [p[0] for p in paths]
        return lambda row: dict(zip(names, row))
    return lambda row: _build(paths, row)


def _build(paths: list[list[Any]], values: list[str]) -> dict[str, Any]:
    """Cells at ``paths`` (``key.a``, ``value[0]``, parsed) -> ``{"key": {"a": ...}, "value": [...]}``."""
    root: dict[str, Any] = {}
    for keys, value in zip(paths, values):
        node: Any = root
        for k, nxt in zip(keys, keys[1:] + [None]):
            if nxt is None:
                _put(node, k, _cell(value))
                break
            child = _get(node, k)
            if child is None:
                child = [] if isinstance(nxt, int) else {}
                _put(node, k, child)
            node = child
    return root


def _cell(text: str) -> str:
    """A CSV cell of one field: a string dump quoted (C escapes, see output.entries.csv_string)
    unquoted; anything else as it is (the field's codec reads it)."""
    if text[:1] == '"':
        try:
            return unquote(text)
        except ValueError:
            pass
    return text


def _get(node: Any, k: Any) -> Any:
    if isinstance(node, list):
        return node[k] if isinstance(k, int) and k < len(node) else None
    return node.get(k)


def _put(node: Any, k: Any, v: Any) -> None:
    if isinstance(node, list):
        if not isinstance(k, int):
            raise UsageError(f"CSV column mixes a list and a field name at {k!r}")
        node.extend([None] * (k + 1 - len(node)))
    elif isinstance(k, int):
        raise UsageError(f"CSV column mixes a field name and a list index at [{k}]")
    node[k] = v


def _csv(lines: Iterable[tuple[int, str]]) -> Iterator[LoadRecord]:
    current = [0]
    reader = csv.reader(_counted(iter(lines), current))
    header = None
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if header is None:
            header = row
            if not any(h == "key" or h.startswith(("key.", "key[")) for h in header):
                yield current[0], BadLine("the CSV header has no key column"), None
                return
            try:
                build = _row_builder(header)
            except UsageError as err:
                yield current[0], BadLine(f"the CSV header: {err}"), None
                return
            if header == ["key", "value"]:  # the common case: rows straight to records
                yield from _csv_pairs(reader, current)
                return
            continue
        if len(row) != len(header):
            yield current[0], BadLine(f"{len(row)} columns, the header has {len(header)}"), None
            continue
        try:
            tree = build(row)
        except UsageError as err:
            yield current[0], BadLine(str(err)), None
            return
        if "key" not in tree or not ("value" in tree or "values" in tree):
            yield current[0], BadLine("expected key and value columns"), None
            continue
        yield current[0], tree["key"], tree.get("values", tree.get("value"))


def _csv_pairs(reader: Iterator[list[str]], current: list[int]) -> Iterator[LoadRecord]:
    """Rows of a ``key,value`` CSV as records (what the general loop makes of them, faster)."""
    for row in reader:
        if len(row) == 2:
            yield current[0], row[0], row[1]
        elif not row or (len(row) == 1 and not row[0].strip()):
            continue
        else:
            yield current[0], BadLine(f"{len(row)} columns, the header has 2"), None


def _takes_strings(codec: Any) -> bool:
    """A codec of a ``char[N]`` alone: a string from JSON is its value as it is."""
    return isinstance(getattr(codec, "type", None), Char)


class Loader:
    """Encode records through a View and write them batch by batch."""

    def __init__(self, view: View, mode: str = "any", keep_going: bool = False) -> None:
        m = view.map
        if m.key_size == 0 or m.kind.value is not Value.BYTES:
            raise UsageError(
                words(
                    f"update {m.ref} ",
                    Param("load"),
                    f": bulk load is for maps with keys and data values, not {m.type_label}",
                )
            )
        self.view, self.map, self.mode, self.keep_going = view, m, mode, keep_going
        self.written = 0
        self.bad: list[tuple[int, str | Words]] = []
        self._stop: tuple[int, str | Words] | None = None
        self._writer: WriterThread | None = None
        # a map that evicts (LRU) drops entries to make room without an error: the keys
        # written, to read back when the load is done
        self._sent: bytearray | None = None  # keys in the order written: the writer's count says how many went in
        self._lost = self._missing_of = 0  # of the keys written, those a map that evicts lost
        self._name = ""

    def load_stream(self, stream: TextSource, fmt: str = "auto", name: str = "") -> int:
        """Load every entry of ``stream``; returns how many were written.

        Text and JSON Lines are read in chunks of lines and, when every line of a chunk
        is well-formed and the layout is a plain number or hex, encoded with one C call
        per chunk; otherwise line by line, which also finds and reports a bad line."""
        if fmt not in INPUT_FORMATS:
            raise UsageError(f"input format {fmt!r}: choose one of {', '.join(INPUT_FORMATS)}")
        bounded = BoundedLines(stream, self.line_limit())
        self._name = name
        try:
            return self._load_lines(bounded, fmt, name)
        except LongLine as long:
            missing = self._settle()
            problem = f"longer than {bounded.limit:,} characters without a newline, not an entry of this map"
            raise _with(LoadError.at(long.line, problem, self.written), missing) from None

    def load_file(self, path: str, fmt: str = "auto") -> int:
        """Load every entry of the file at ``path`` (``-``: standard input), opened as
        :func:`bpfmap.host.inputs.open_input` opens it, so a carriage return inside a
        quoted CSV cell stays data; ``fmt`` "auto" reads the format from the first line
        (or a name ending in ``.csv``).  Returns how many entries were written; UsageError
        when the file cannot be opened, LoadError for a bad line (as load_stream),
        EntriesDropped when a map that evicts (LRU) no longer holds them all (finish)."""
        stream = open_input(path, f"update {self.map.ref}: load {quote(path, bare=True)}")
        try:
            return self.load_stream(stream, fmt, path)
        finally:
            if path != "-":
                stream.close()

    def line_limit(self) -> int:
        """The longest input line taken (see :func:`line_limit`)."""
        m = self.map
        return line_limit(m.key_size + m.value_size * m.ncpus)

    def _load_lines(self, stream: BoundedLines, fmt: str, name: str) -> int:
        head: list[str] = []
        if fmt == "auto":
            fmt, head = sniff(stream, name)  # type: ignore[arg-type]
        block, n = stream.read_block(READ_BYTES)
        block, n = "".join(head) + block, len(head) + n
        lineno = 1
        self._struct_columns: list[str] | None = None
        header: str | None = None
        if fmt == "csv":
            header = self._struct_csv_header()
            if header is not None and block.startswith(header):  # a struct of numbers, a column each
                self._struct_columns = [c.removeprefix("value.") for c in header.rstrip("\n").split(",")[1:]]
                block, n, lineno = block[len(header) :], n - 1, 2
            elif not block.startswith("key,value\n"):  # nested columns, blank lines first, ...
                self._feed(_csv(enumerate(itertools.chain(split_lines(block), stream), 1)))
                return self.finish()
            else:
                block, n, lineno = block[10:], n - 1, 2  # rows of numbers go a block at a time, as text does
        while n:
            fast = self._fast_block(block, n, fmt)
            if fast is not None:
                self._write(*fast)
            elif fmt == "csv" and self._struct_columns is not None:  # the rest through the CSV reader, header first
                again = itertools.chain([header or ""], split_lines(block), stream)
                self._feed(_csv(enumerate(again, lineno - 1)))
                return self.finish()
            elif fmt == "csv":  # the rest through the CSV reader (a quoted cell may span lines)
                current = [lineno]
                rest = enumerate(itertools.chain(split_lines(block), stream), lineno)
                self._feed(_csv_pairs(csv.reader(_counted(rest, current)), current))
                return self.finish()
            else:
                lines = enumerate(split_lines(block), lineno)
                self._feed(_text(lines) if fmt == "text" else _jsonl(lines))
            lineno += n
            block, n = stream.read_block(READ_BYTES)
        return self.finish()

    def _fast_block(self, block: str, n: int, fmt: str) -> tuple[bytes, bytes, int] | None:
        """``n`` lines encoded at once, or None: a line that is not plain, or an item a
        codec refuses (the line-by-line path then reads them and says which)."""
        if self.map.percpu:
            return None
        if not block.endswith("\n"):
            block += "\n"
        try:
            if fmt == "csv" and self._struct_columns is not None:
                return self._struct_rows(block, n)
            fields = _number_fields(block, n, fmt)
            if fields is not None:
                fast = self._encode_fast(fields[0::2], fields[1::2])
                if fast is not None or fmt == "csv":
                    return fast
            if fmt == "text":
                # exactly one tab on every line: then keys and values alternate
                if not _TEXT_CHUNK.fullmatch(block):
                    return None
                fields = block.replace("\n", "\t").split("\t")
                return self._encode_fast(fields[0:-1:2], fields[1:-1:2])
            if fmt != "jsonl":
                return None
            objs = json.loads("[" + block[:-1].replace("\n", ",") + "]")  # no JSON value holds a raw newline
            return self._encode_fast([o["key"] for o in objs], [o["value"] for o in objs])
        except (ValueError, TypeError, KeyError, RecursionError):
            return None

    def _struct_csv_header(self) -> str | None:
        """The CSV header dump writes for a map with an integer key and a value that is a
        flat struct of integers (``key,value.a,value.b``), or None for other maps."""
        kt, vt = getattr(self.view.key, "type", None), getattr(self.view.value, "type", None)
        if not isinstance(kt, Scalar) or kt.kind not in ("uint", "int") or not isinstance(vt, Struct):
            return None
        if vt.union or any(
            f.bit_size is not None or not isinstance(f.type, Scalar) or f.type.kind not in ("uint", "int")
            for f in vt.fields
            if f.name
        ):
            return None
        return "key," + ",".join(f"value.{f.name}" for f in vt.fields if f.name) + "\n"

    def _struct_rows(self, block: str, n: int) -> tuple[bytes, bytes, int] | None:
        """CSV rows of integers (``key,value.a,...``) a block at a time, or None."""
        names = self._struct_columns
        assert names is not None
        cols = len(names) + 1
        fields = _number_fields(block, n, "csv", cols)
        if fields is None:
            return None
        keys = fields[0::cols]
        numbers = [list(map(int, fields[j::cols], itertools.repeat(0))) for j in range(1, cols)]
        values = [dict(zip(names, row)) for row in zip(*numbers)]
        return self._encode_fast(keys, values)

    def load(self, records: Iterable[LoadRecord]) -> int:
        """Write every record; returns how many were written.  Raises LoadError on a bad
        line (unless keep_going), the map's errors (with ``written``) otherwise."""
        self._name = ""
        self._feed(records)
        return self.finish()

    def _feed(self, records: Iterable[LoadRecord]) -> None:
        """Hand every record to the writer (one writer for a whole stream, so that its
        count, and the one in its errors, is the stream's)."""
        it = iter(records)
        while True:
            chunk = list(itertools.islice(it, CHUNK))
            if not chunk:
                return
            keys, values, count = self._encode(chunk)
            if count:
                self._write(keys, values, count)
            if self._stop is not None:
                line, msg = self._stop
                missing = self._settle()
                raise _with(LoadError.at(line, msg, self.written), missing)

    def _encode(self, chunk: list[LoadRecord]) -> tuple[bytes, bytes, int]:
        if not any(isinstance(r[1], BadLine) for r in chunk):
            fast = self._encode_fast([r[1] for r in chunk], [r[2] for r in chunk])
            if fast is not None:
                return fast
        kb, vb = bytearray(), bytearray()
        count = 0
        key_enc, value_enc = self._key_encoder(), self._value_encoder()
        for line, key, value in chunk:
            msg: str | Words
            if isinstance(key, BadLine):
                msg = str(key)
            else:
                try:
                    k = key_enc(key)
                    v = value_enc(value)
                except BpfmapError as err:
                    msg = said(err)
                else:
                    kb += k
                    vb += v
                    count += 1
                    continue
            if not self.keep_going:
                self._stop = (line, msg)
                break
            self.bad.append((line, msg))
        return bytes(kb), bytes(vb), count

    def _encode_fast(self, keys: list[Any], values: list[Any]) -> tuple[bytes, bytes, int] | None:
        """Every key and value at once, when both codecs can and every item is good."""
        if self.map.percpu:
            return None
        try:
            kb = self.view.key.encode_many(keys)
            if kb is None or self._past_end(kb, len(keys)):
                return None  # (an index past an array's end: the slow path says which line)
            vb = self.view.value.encode_many(values)
        except (ValueError, TypeError, OverflowError):
            return None  # a bad line somewhere: the slow path finds and reports it
        if vb is None:
            return None
        return kb, vb, len(keys)

    def _key_encoder(self) -> Callable[[Any], bytes]:
        view = self.view
        as_is = _takes_strings(view.key)

        def key(k: Any) -> bytes:
            if isinstance(k, str) and not (as_is and type(k) is JsonString):
                raw = view.parse_key(k)
            else:
                raw = _encode(view.key, str(k) if type(k) is JsonString else k, "key")
            if self._past_end(raw, 1):
                top = self.map.max_entries
                raise UsageError(
                    f"index {int.from_bytes(raw, sys.byteorder)} is past the end of {self.map.ref}, an array of "
                    f"indices 0..{top - 1}"
                )
            return raw

        return key

    def _past_end(self, keys: bytes, count: int) -> bool:
        """Whether an index of an array's ``count`` keys is past its end (the kernel would
        refuse that entry half way through a batch)."""
        m = self.map
        if not (m.kind.indexed and not m.kind.deletable and m.key_size == 4 and count):
            return False
        return max(memoryview(keys)[: 4 * count].cast("I")) >= m.max_entries

    def _value_encoder(self) -> Callable[[Any], bytes]:
        view, m = self.view, self.map
        as_is = _takes_strings(view.value)

        def one(v: Any) -> bytes:
            if isinstance(v, str) and not (as_is and type(v) is JsonString):
                return view.parse_value(v)
            return _encode(view.value, str(v) if type(v) is JsonString else v, "value")

        if not m.percpu:
            return one

        def per_cpu(v: Any) -> bytes:
            vals = v if isinstance(v, list) and not _is_value_list(view, v) else [v]
            return m.shape.pack([one(x) for x in vals], "values")

        return per_cpu

    def _write(self, keys: bytes, values: bytes, count: int) -> None:
        """Hand a batch to the writer thread: the kernel takes it in while the next chunk
        is parsed (ctypes releases the GIL during bpf(2))."""
        if self.map.kind.evicts:
            if self._sent is None:
                self._sent = bytearray()
            self._sent += memoryview(keys)[: count * self.map.key_size]
        if self._writer is None:
            self._writer = WriterThread(self.map, self.mode)
        self._writer.submit(keys, values, count)

    def finish(self) -> int:
        """Wait for every batch handed over; returns how many entries are in.  A map that
        evicts (LRU) is read back: EntriesDropped when it no longer holds every key
        written (the kernel made room, or a program deleted them)."""
        missing = self._settle()
        if missing is not None:
            from .migrate import _n  # (the load's count as copy words it)

            what = words(f"update {self.map.ref} ", Param("load"), f" {self._name}") if self._name else ""
            keys = f" ({self._missing_of} keys)" if self._missing_of != self.written else ""
            raise EntriesDropped(
                words(
                    what or f"update {self.map.ref}",
                    f": {_n(self.written)} written{keys}, but {missing}; give a map with more room",
                ),
                self._lost,
            )
        return self.written

    def _settle(self) -> str | None:
        """Wait for the writer; for a map that evicts, what it no longer holds of the keys
        written (None: every one), with any error of the writer's amended to say it."""
        writer, self._writer = self._writer, None
        sent, self._sent = self._sent, None
        if writer is not None:
            try:
                writer.close()
            except BpfmapError as err:
                self.written += writer.written
                raise _with(err, self._missing(sent, writer.written) if sent else None) from None
            self.written += writer.written
        return self._missing(sent, writer.written) if sent and writer is not None else None

    def _missing(self, buf: bytearray, count: int) -> str | None:
        """What the map no longer holds of the first ``count`` keys in ``buf``."""
        from .migrate import _split  # keys as copy compares them (loaded only for a map that evicts)

        m = self.map
        ks = m.key_size
        sent = set(_split(bytes(buf[: count * ks]), ks, count))
        del buf[:]
        if len(sent) * 4 < m.max_entries:  # few keys: each looked up, not the whole map read
            held = 0
            for k in sent:
                try:
                    m.lookup(k if isinstance(k, bytes) else k.to_bytes(ks, sys.byteorder))
                    held += 1
                except KeyNotFound:
                    pass
        else:
            held = sum(len(sent.intersection(_split(keys, ks, n))) for keys, _v, n in m.batches())
        self._lost, self._missing_of = len(sent) - held, len(sent)
        if not self._lost:
            return None
        return (
            f"{m.ref} holds {held} of them: {self._lost} dropped (an LRU map evicts entries to make room, even "
            f"before it holds max_entries {m.max_entries}; a program may also have deleted them)"
        )

    def abort(self) -> int:
        """Stop after the batch being written (Ctrl-C); returns exactly how many entries are
        in (not read back: a map that evicts may hold fewer)."""
        writer, self._writer = self._writer, None
        self._sent = None
        if writer is not None:
            writer.close(abort=True)
            self.written += writer.written
        return self.written


def _is_value_list(view: View, v: list[Any]) -> bool:
    """Whether a JSON list is one value (an array layout) rather than per-CPU values."""
    from ..layout import TypeCodec

    return (
        isinstance(view.value, TypeCodec) and isinstance(view.value.type, Array) and not (v and isinstance(v[0], list))
    )


def _encode(codec: Any, value: Any, what: str) -> bytes:
    try:
        encoded: bytes = codec.encode(value)
        return encoded
    except UsageError as err:
        raise UsageError(words(f"{what} {json.dumps(value) if _jsonable(value) else value!r}: ", said(err))) from None


def _with(err: BpfmapError, missing: str | None) -> BpfmapError:
    """``err``, saying what a map that evicts no longer holds of the keys written."""
    return amended(err, f"; and {missing}") if missing else err
