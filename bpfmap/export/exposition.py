"""The Prometheus text exposition (format 0.0.4), written by bpfmap itself, streamed.

prometheus-client's ``generate_latest`` builds a ``Sample`` per series and formats each
one by one (~1.5 s for 100,000 series); the exporter's CPU is paid on every host at every
scrape, so counters and gauges are written here: a family's header, then its series as
lines made from a %-template a chunk at a time, and, where the labels name every field
of the key, straight from the kernel's raw batches (:func:`row_lines`) without decoding
an entry.  tests/unit/test_exposition.py checks that what this writes parses, with
prometheus-client's parser, to exactly the samples prometheus-client's own exposition of
the same families gives; OpenMetrics is still prometheus-client's (:func:`to_client`).

Label values are escaped as the format requires (``\\\\``, ``\\"``, ``\\n``); text that is not
valid UTF-8 (bytes a ``char[N]`` held) is written with its bytes as ``\\\\xNN`` (a
backslash, escaped, then x and the hex), so a scrape is always valid UTF-8."""

from __future__ import annotations

import codecs
import re
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import compress
from typing import IO, Any

from ..core.columns import copy_columns
from ..layout.leaves import CODES, LABEL, SAMPLE, label_escaped, native_code, prometheus_number
from ..layout.model import Array, Bytes, Char, Enum, Formatted, Pad, Scalar, Struct, Type

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HELP_ESC = str.maketrans({"\\": "\\\\", "\n": "\\n"})
CHUNK = 4096  # series formatted at once
_ROW_CHUNK = 2048  # entries of a kernel batch summed at once (output.rows.CHUNK)
_FLOAT_CODES = frozenset("efd")  # struct codes of floating-point numbers


def _surrogates(backslash: str) -> Callable[[UnicodeError], tuple[str, int]]:
    """Encoding error handler: a lone surrogate (a byte that was not UTF-8) as
    ``BACKSLASH xNN``."""

    def handler(err: UnicodeError) -> tuple[str, int]:
        assert isinstance(err, UnicodeEncodeError)
        out = []
        for ch in err.object[err.start : err.end]:
            c = ord(ch)
            out.append(f"{backslash}x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"{backslash}u{c:04x}")
        return "".join(out), err.end

    return handler


codecs.register_error("bpfmap_exposition", _surrogates("\\\\"))  # in the exposition: the backslash escaped
codecs.register_error("bpfmap_label", _surrogates("\\"))


def encode(text: str) -> bytes:
    return text.encode("utf-8", "bpfmap_exposition")


def label_bytes(text: str) -> bytes:
    """A label value as Prometheus stores it once it has read the exposition: UTF-8, a
    byte that was not UTF-8 the text ``\\xNN``."""
    return text.encode("utf-8", "bpfmap_label")


def stored_text(text: str) -> str:
    """A label value as the text Prometheus stores (label_bytes, as text): a byte that
    was not UTF-8 (a lone surrogate) becomes the four characters ``\\xNN``."""
    return text if text.isascii() else label_bytes(text).decode("utf-8")


label_value = label_escaped  # a label value escaped for the exposition (quotes not included)


value_text = prometheus_number  # a sample value: integers exactly, floats by repr, NaN, +Inf, -Inf


class Family:
    """One metric family as the exporter read it: ``type`` counter, gauge or histogram;
    ``labels`` the label names; ``samples``: (label values, number) for counters and
    gauges, (label values, [(le, cumulative count)...], sum) for histograms.
    ``lines``, when set, writes the series itself (the fast path): an iterator of text
    chunks, made as it is consumed.  ``name`` is the exposition's base name (a counter's
    without ``_total``)."""

    __slots__ = ("name", "help", "type", "labels", "samples", "lines")

    def __init__(self, name: str, help: str, type: str, labels: list[str]) -> None:
        if type == "counter" and name.endswith("_total"):
            name = name[: -len("_total")]
        self.name, self.help, self.type, self.labels = name, help, type, list(labels)
        self.samples: list[Any] = []
        self.lines: Iterator[str] | None = None

    def add(self, labels: Iterable[str], value: float) -> None:
        self.samples.append((tuple(labels), value))

    def add_histogram(self, labels: Iterable[str], buckets: list[tuple[str, float]], total: float) -> None:
        self.samples.append((tuple(labels), buckets, total))

    @property
    def sample_name(self) -> str:
        return self.name + "_total" if self.type == "counter" else self.name


def header(f: Family) -> str:
    name = f.sample_name
    return f"# HELP {name} {f.help.translate(_HELP_ESC)}\n# TYPE {name} {f.type}\n"


def template(sample: str, names: list[str]) -> str:
    """``sample{a="%s",b="%s"} %s\\n`` (literal % doubled)."""
    sample = sample.replace("%", "%%")
    if not names:
        return sample + " %s\n"
    return sample + "{" + ",".join(f'{n}="%s"' for n in names) + "} %s\n"


def family_text(f: Family) -> Iterator[str]:
    """The family's lines, a chunk at a time."""
    yield header(f)
    if f.lines is not None:
        yield from f.lines
        return
    if f.type == "histogram":
        yield from _histogram_text(f)
        return
    line = template(f.sample_name, f.labels)
    samples = f.samples
    for i in range(0, len(samples), CHUNK):
        part = samples[i : i + CHUNK]
        items: list[Any] = []
        for labels, value in part:
            items.extend(map(label_value, labels))
            items.append(value_text(value))
        yield (line * len(part)) % tuple(items)


def _histogram_text(f: Family) -> Iterator[str]:
    bucket = template(f.name + "_bucket", [*f.labels, "le"])
    count = template(f.name + "_count", f.labels)
    total = template(f.name + "_sum", f.labels)
    out: list[str] = []
    for labels, buckets, s in f.samples:
        shown = tuple(map(label_value, labels))
        for le, c in buckets:
            out.append(bucket % (*shown, label_value(le), value_text(c)))
        out.append(count % (*shown, value_text(buckets[-1][1] if buckets else 0)))
        out.append(total % (*shown, value_text(s)))
        if len(out) >= CHUNK:
            yield "".join(out)
            out = []
    if out:
        yield "".join(out)


def write(families: Iterable[Family], out: IO[bytes]) -> None:
    """The exposition of ``families`` to ``out`` (bytes, UTF-8)."""
    for f in families:
        for text in family_text(f):
            out.write(encode(text))


def text(families: Iterable[Family]) -> bytes:
    return b"".join(encode(t) for f in families for t in family_text(f))


# -- prometheus-client's families, for OpenMetrics and as the oracle ------------------------


def to_client(f: Family) -> Any:
    """The same family as a prometheus-client metric family (a fast-path family is read
    into samples first: give the exporter ``fast=False``)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    if f.type == "histogram":
        h = HistogramMetricFamily(f.name, f.help, labels=f.labels)
        for labels, buckets, total in f.samples:
            h.add_metric(list(labels), buckets, total)
        return h
    cls = CounterMetricFamily if f.type == "counter" else GaugeMetricFamily
    fam = cls(f.name, f.help, labels=f.labels)
    for labels, value in f.samples:
        fam.add_metric(list(labels), value)
    return fam


# -- the fast path: series straight from raw batches ---------------------------------------


def _locate(t: Type | None, path: str | None, whole: str = "") -> tuple[int, Type] | None:
    """(offset, type) of a plain field path (names only) in ``t``, or of ``t`` itself when
    ``path`` is None or ``whole`` (``key``) and ``t`` is not a struct; None for
    bitfields, arrays, anonymous members, or no such field."""
    if t is None:
        return None
    if path is None or (path == whole and not isinstance(t, Struct)):
        return (0, t) if not isinstance(t, Struct) else None
    off = 0
    for name in path.split("."):
        if not isinstance(t, Struct) or t.union:
            return None
        f = next((f for f in t.fields if f.name == name), None)
        if f is None or f.bit_size is not None:
            return None
        off += f.offset
        t = f.type
    return off, t


def row_lines(
    sample: str,
    label_names: list[str],
    key_type: Type | None,
    value_type: Type | None,
    label_paths: list[str],
    value_path: str | None,
) -> Callable[[bytes, bytes, int], str] | None:
    """A function (keys, values, count) -> the series lines of a kernel batch, each entry
    one series labelled by ``label_paths`` (fields of the key, else of the value) with the
    number at ``value_path`` (None: the whole value); with ``pieces`` (the lines a chunk
    at a time).  The row writer's (output.rows) items and columns, with the leaves'
    LABEL and SAMPLE rules; None when a field is of a kind this path does not write (the
    decoded path does those)."""
    from ..output.rows import NotRow, Plan, compile_plan

    if key_type is None or value_type is None:
        return None
    plan = Plan()
    pieces = []
    try:
        for path in label_paths:
            side, found = 0, _locate(key_type, path, "key")
            if found is None and path != "key":
                side, found = 1, _locate(value_type, path)
            if found is None or isinstance(found[1], (Array, Struct)):
                return None
            plan.source = side
            pieces.append(plan.piece(found[1], found[0], LABEL))
        found = _locate(value_type, value_path)
        if found is None or isinstance(found[1], (Array, Struct)):
            return None
        plan.source = 1
        line = sample.replace("%", "%%")
        if label_names:
            line += "{" + ",".join(f'{n}="{p}"' for n, p in zip(label_names, pieces)) + "}"
        line += " " + plan.piece(found[1], found[0], SAMPLE) + "\n"
        return compile_plan(plan, line, key_type.size, value_type.size)
    except NotRow:
        return None


# -- summed: labels that leave key fields out, or show fields by display formats -----------
#
# Counters and gauges straight from the kernel's raw batches where export.exposition's
# row_lines does not take them: labels that leave key fields out (entries summed per
# series) and labels shown through display formats (``as: {uid: uid}``).
#
# Each entry's labelled fields are copied a column at a time into a row of their own
# (with the number beside them), the rows of a chunk unpacked by one struct into (label
# bytes, number) pairs, and the numbers summed per label bytes: one dict entry per
# distinct label bytes, so memory grows with the series, not the entries.  Once the map
# is read, the distinct label bytes are written by the row writer (output.rows) as the
# series' label text, the same text the decoded path gives each label tuple; label bytes
# whose text is the same (a string's bytes past its NUL, two uids of one name) are summed
# again by their text, in the order the decoded path first sees them.  A float number with
# such labels would be summed in another order than the decoded path sums it (float sums
# depend on it): those go the decoded way.  Where no two entries share a series (every key
# field a label), the series are written a chunk at a time as they are read.
#
# A number a display format has no name for is counted as the decoded path counts it: once
# per entry, under the label's field path (``bpfmap_decode_errors``).  tests/kernel/
# test_export_summed.py holds this to the decoded path and to prometheus-client.

Label = tuple[int, str | None]  # (0 key / 1 value, the path on that side; None: the side itself)


class Summed:
    """A metric's series from raw batches (see the module): ``add`` each kernel batch,
    then ``text()``; ``distinct``: no two entries share a series, each chunk's series are
    the text ``add`` returns.  ``misses(label, n)`` hears of numbers a format could not
    name."""

    def __init__(
        self,
        spans: list[tuple[int, int, int, int]],
        width: int,
        number: tuple[int, Scalar],
        leaves: list[tuple[Type, int]],
        write: RowsWriter,
        lines: Callable[[Any, int], str] | None,
        shown: list[tuple[str, int, Any, Callable[[Any], bool]]],
        merge: bool,
        sizes: tuple[int, int],
        misses: Callable[[str, int], None],
        relabel: Relabel | None = None,
    ) -> None:
        self.spans, self.width, self.sizes = spans, width, sizes  # spans: (source, offset, size, row offset)
        self.value_at, t = number
        self.vsize, self.stride = t.size, width + t.size
        self.order = t.order if t.order in ("<", ">") else "="
        self.code = CODES[(t.kind, t.size)]
        self.leaves, self.write = leaves, write  # the labels' types and places in a row; their writer
        self.lines, self.shown, self.merge, self.misses = lines, shown, merge, misses
        self.relabel = relabel
        self.alike: Callable[[Any, int], bool] | None = None  # with lines: whether keys may read alike
        self.weigh = bool(shown) or (relabel is not None and relabel.misses)  # entries per label bytes in hits
        self.sums: dict[bytes, Any] = {}
        self.hits: Counter[bytes] = Counter()  # entries per label bytes, where a format may miss
        self.counted = 0
        self._unpack: dict[int, Callable[[Any], tuple[Any, ...]]] = {}
        # labels that are one run of the key's bytes (the leading fields, the common case)
        # and their number are read from the kernel's batch in place, no row copied
        start = spans[0][1] if spans else 0
        run = all(src == 0 and at == lo - start for src, lo, _size, at in spans)  # the key's bytes as they lie
        self._in_place = (start, width) if spans and run and sum(s[2] for s in spans) == width else None
        self._direct: dict[int, tuple[Callable[[Any], tuple[Any, ...]], Callable[[Any], tuple[Any, ...]]]] = {}

    def _rows(self, keys: memoryview, values: memoryview, count: int) -> bytearray:
        """Each entry's labelled fields, then its number, ``stride`` bytes an entry."""
        rows = bytearray(count * self.stride)
        sources, sizes = (keys, values), self.sizes
        for source, lo, size, at in self.spans:
            copy_columns(rows, self.stride, at, sources[source], sizes[source], lo, size, count)
        copy_columns(rows, self.stride, self.width, values, sizes[1], self.value_at, self.vsize, count)
        return rows

    def _items(self, rows: bytearray, count: int) -> tuple[Any, ...]:
        unpack = self._unpack.get(count)
        if unpack is None:
            unpack = struct.Struct(self.order + f"{self.width}s{self.code}" * count).unpack
            if len(self._unpack) < 8:
                self._unpack[count] = unpack
        return unpack(rows)

    def chunks(self, keys: bytes, values: bytes, count: int) -> Iterator[tuple[bytearray, int]]:
        kv, vv = memoryview(keys), memoryview(values)
        ks, vs = self.sizes
        for i in range(0, count, _ROW_CHUNK):
            n = min(_ROW_CHUNK, count - i)
            yield self._rows(kv[i * ks :], vv[i * vs :], n), n

    def add(self, keys: bytes, values: bytes, count: int) -> Iterator[str]:
        """Read one kernel batch: summed, or (``distinct``) its series' lines (ReadsAlike
        when ``alike`` finds a key that may read like another)."""
        if self.lines is not None and self.alike is not None and self.alike(keys, count):
            raise ReadsAlike
        self.counted += count
        if self.lines is None and self._in_place is not None:
            self._add_in_place(keys, values, count)
            return
        for rows, n in self.chunks(keys, values, count):
            if self.lines is not None:
                self._count_misses(rows, self.stride, n, None)
                yield self.lines(rows, n)
                continue
            items = self._items(rows, n)
            labels = items[0::2]
            self._sum(labels, items[1::2])
            if self.weigh:
                self.hits.update(labels)

    def _add_in_place(self, keys: bytes, values: bytes, count: int) -> None:
        """``add`` for labels that are one run of the key's bytes: each chunk's label bytes
        unpacked from the keys and its numbers from the values where they lie."""
        assert self._in_place is not None
        lo, size = self._in_place
        (ks, vs), at = self.sizes, self.value_at
        kv, vv = memoryview(keys), memoryview(values)
        for i in range(0, count, _ROW_CHUNK):
            n = min(_ROW_CHUNK, count - i)
            unpackers = self._direct.get(n)
            if unpackers is None:
                unpackers = (
                    struct.Struct("=" + f"{lo}x{size}s{ks - lo - size}x" * n).unpack,
                    struct.Struct(self.order + f"{at}x{self.code}{vs - at - self.vsize}x" * n).unpack,
                )
                if len(self._direct) < 8:  # the chunk size, and a batch's last chunks
                    self._direct[n] = unpackers
            labels_of, numbers_of = unpackers
            labels = labels_of(kv[i * ks : (i + n) * ks])
            self._sum(labels, numbers_of(vv[i * vs : (i + n) * vs]))
            if self.weigh:
                self.hits.update(labels)

    def _sum(self, labels: tuple[bytes, ...], numbers: tuple[Any, ...]) -> None:
        """Add a chunk's numbers to the sums of their label bytes.  A chunk whose label
        bytes are all different (one entry a series: the common case) is added with dict
        operations, no Python step per entry: the sums it shares with chunks before are
        added first, in the order the entry-by-entry loop adds them (old + new), so every
        sum is the loop's to the bit; integers only (a float's 0 + -0.0 is not -0.0)."""
        sums = self.sums
        if self.code not in _FLOAT_CODES:
            chunk = dict(zip(labels, numbers))
            if len(chunk) == len(labels):
                for k in chunk.keys() & sums.keys():
                    chunk[k] = sums[k] + chunk[k]
                sums.update(chunk)
                return
        get = sums.get
        for k, v in zip(labels, numbers):
            sums[k] = get(k, 0) + v

    def text(self) -> Iterator[str]:
        """The summed series, a chunk at a time (after every batch is added)."""
        keys = list(self.sums)
        if not keys:
            return
        if self.shown:
            self._count_misses(b"".join(keys), self.width, len(keys), [self.hits[k] for k in keys])
        numbers = list(self.sums.values())
        leaves, width = self.leaves, self.width
        if self.relabel is not None:
            hits = [self.hits[k] for k in keys] if self.weigh else []
            keys, numbers, leaves, width = self.relabel.apply(keys, numbers, hits, self.misses)
            if not keys:
                return
            if not self.merge:  # the other labels are one text each: label bytes of one text are equal
                keys, numbers = _merged(keys, numbers)
        series: Iterable[tuple[str, Any]]
        if self.merge:  # label bytes of one text: summed again by the text (as written: a
            # byte that is not UTF-8 and the text \xNN are one)
            merged: dict[str, Any] = {}
            get = merged.get
            for head, v in zip(self._head_text(keys, self.write(leaves, width, None)), numbers):
                if not head.isascii():
                    head = encode(head).decode("utf-8")
                merged[head] = get(head, 0) + v
            series = merged.items()
        else:
            code = _sum_code(numbers)
            if code is not None:  # the sums packed beside their labels: the row writer writes the lines
                yield from self._packed(keys, numbers, code, leaves, width)
                return
            series = zip(self._head_text(keys, self.write(leaves, width, None)), numbers)
        out: list[str] = []
        for head, v in series:
            out.append(f"{head} {value_text(v)}\n")
            if len(out) >= _ROW_CHUNK:
                yield "".join(out)
                out = []
        if out:
            yield "".join(out)

    def _packed(
        self, keys: list[bytes], numbers: list[Any], code: str, leaves: list[tuple[Type, int]], width: int
    ) -> Iterator[str]:
        t = _SUM_TYPES[code]
        lines = self.write(leaves, width + t.size, (width, t))
        row = f"{width}s{code}"
        for i in range(0, len(keys), _ROW_CHUNK):
            n = min(_ROW_CHUNK, len(keys) - i)
            items: list[Any] = [None] * (2 * n)
            items[0::2], items[1::2] = keys[i : i + n], numbers[i : i + n]
            yield lines(struct.pack("=" + row * n, *items), n)

    def _head_text(self, keys: list[bytes], heads: Callable[[Any, int], str]) -> Iterator[str]:
        for i in range(0, len(keys), _ROW_CHUNK):
            part = keys[i : i + _ROW_CHUNK]
            yield from heads(b"".join(part), len(part)).split("\n")[:-1]

    def _count_misses(self, rows: Any, stride: int, count: int, weights: list[int] | None) -> None:
        """Count each entry whose shown label has no name (``weights``: entries per row)."""
        for path, at, t, miss in self.shown:
            order = "=" if getattr(t, "order", "=") not in ("<", ">") else t.order
            unpack = struct.Struct(order + f"{at}x{native_code(t)}{stride - at - t.size}x" * count).unpack
            column = unpack(rows)
            unnamed = set(filter(miss, set(column)))
            if not unnamed:
                continue
            if weights is None:
                n = sum(map(unnamed.__contains__, column))
            else:
                n = sum(w for v, w in zip(column, weights) if v in unnamed)
            self.misses(path, n)


# (the texts of the labels a Relabel decodes) -> (their texts decoded, or None: the series is
# dropped; the names of the labels a decoder had no text for)
RowsWriter = Callable[[list[tuple[Type, int]], int, "tuple[int, Scalar] | None"], Callable[[Any, int], str]]
Decorate = Callable[[tuple[str, ...]], tuple[tuple[str, ...] | None, list[str]]]
_UNESCAPE = re.compile(r'\\([\\"n])')


class Relabel:
    """Label decoders that work on a label's text (export.labels: static_map, regexp) on
    the series Summed read: each label they decode written as text from the label bytes
    (what the decoded path hands them), each distinct tuple of those texts decoded once
    by ``decorate``, a miss counted once for each entry of the series; series dropped
    are left out, and the decoded texts written from the rows as a ``char[N]`` each
    (their UTF-8, NUL-padded), so the row writer writes every series' head.  Series
    whose heads come out the same are summed again by Summed (merge)."""

    def __init__(
        self,
        at: list[int],
        leaves: list[tuple[Type, int]],
        spans: list[tuple[int, int]],
        width: int,
        decorate: Decorate,
        misses: bool,
    ) -> None:
        self.at, self.leaves, self.width, self.decorate = at, leaves, width, decorate
        self.misses = misses  # whether a decoder may have no text for a label (a static_map without default)
        self.spans = [spans[i] for i in at]  # (row offset, size) of the bytes each is written from
        self.texts = [_text_writer(leaves[i], width) for i in at]

    def apply(
        self, keys: list[bytes], numbers: list[Any], hits: list[int], misses: Callable[[str, int], None]
    ) -> tuple[list[bytes], list[Any], list[tuple[Type, int]], int]:
        """The series' label bytes, those of the labels decoded zeroed and the decoded texts
        after them; their numbers (the series dropped left out); the labels' types and
        places in these rows, and their width."""
        texts = list(zip(*(_texts(write, keys) for write in self.texts)))
        done = {t: self.decorate(t) for t in dict.fromkeys(texts)}
        if self.misses and any(missed for _out, missed in done.values()):
            entries: Counter[tuple[str, ...]] = Counter()
            for t, n in zip(texts, hits):
                entries[t] += n
            for t, (_out, missed) in done.items():
                for label in missed:
                    misses(label, entries[t])
        if any(out is None for out, _missed in done.values()):
            kept = [done[t][0] is not None for t in texts]
            keys, numbers, texts = (
                list(compress(keys, kept)),
                list(compress(numbers, kept)),
                list(compress(texts, kept)),
            )
        leaves, columns, stride = list(self.leaves), [], self.width
        for j, i in enumerate(self.at):
            shown = {t: out[j].encode("utf-8", "surrogateescape") for t, (out, _m) in done.items() if out is not None}
            size = max(map(len, shown.values()), default=0) + 1
            padded = {t: text.ljust(size, b"\0") for t, text in shown.items()}
            columns.append((stride, size, b"".join(map(padded.__getitem__, texts))))
            leaves[i] = (Char(size), stride)
            stride += size
        n = len(keys)
        rows = bytearray(n * stride)
        copy_columns(rows, stride, 0, b"".join(keys), self.width, 0, self.width, n)
        for at, size in self.spans:
            copy_columns(rows, stride, at, bytes(size * n), size, 0, size, n)
        for at, size, column in columns:
            copy_columns(rows, stride, at, column, size, 0, size, n)
        split = struct.Struct(f"{stride}s" * n).unpack
        return list(split(rows)), numbers, leaves, stride


def _merged(keys: list[bytes], numbers: list[Any]) -> tuple[list[bytes], list[Any]]:
    """Numbers of equal label bytes summed, in the order first seen."""
    if len(set(keys)) == len(keys):
        return keys, numbers
    sums: dict[bytes, Any] = {}
    get = sums.get
    for k, v in zip(keys, numbers):
        sums[k] = get(k, 0) + v
    return list(sums), list(sums.values())


def _texts(write: Callable[[Any, int], str], rows: list[bytes]) -> list[str]:
    """One label's text of each row, as the decoded path has it (written for the
    exposition by ``write``, one a line, then unescaped)."""
    out: list[str] = []
    for i in range(0, len(rows), _ROW_CHUNK):
        part = rows[i : i + _ROW_CHUNK]
        out.extend(write(b"".join(part), len(part)).split("\n")[:-1])
    texts = [_UNESCAPE.sub(_unescaped, t) if "\\" in t else t for t in out]
    return list(map(stored_text, texts))  # as label_text has it


def _unescaped(m: re.Match[str]) -> str:
    return "\n" if m[1] == "n" else m[1]


def _text_writer(leaf: tuple[Type, int], stride: int) -> Callable[[Any, int], str]:
    """The lines of rows ``stride`` bytes apart holding the label ``leaf`` (its type and
    place): its text as a label value, one a line."""
    from ..output.rows import Plan, compile_plan

    plan = Plan()
    lines = compile_plan(plan, plan.piece(leaf[0], leaf[1], LABEL) + "\n", stride, 0)
    return lambda rows, count: lines(rows, b"", count)


def summed_lines(
    sample: str,
    label_names: list[str],
    key_type: Type | None,
    value_type: Type | None,
    labels: list[Label],
    value_path: str | None,
    shown: dict[tuple[int, str], str],
    distinct: bool,
    misses: Callable[[str, int], None],
    decoders: tuple[list[int], Decorate, bool] | None = None,
) -> Summed | None:
    """A Summed for series labelled by ``labels`` (each a side and a field path there) with
    the number at ``value_path`` of the value; ``shown``: (side, path) -> the format a
    FormattedCodec shows it through (each must be a label: the decoded path counts misses
    of every shown field); ``distinct``: every key field is a label; ``misses(label,
    n)``: ``n`` entries' label (its field path, ``_`` for ``.``; a label decoder's: the label's
    name) had no name; ``decoders``: the labels (by index) label decoders work on, the
    function that decodes their texts and whether one may have no text (see Relabel).  None where the decoded path must do it (a field of a kind the row writer does not write, a number
    that is not an integer or a float of up to 8 bytes, ...)."""
    from ..layout.formats import missed
    from ..output.rows import NotRow

    if key_type is None or value_type is None:
        return None
    sides = (key_type, value_type)
    found = _locate(value_type, value_path)
    if found is None:
        return None
    value_at, number = found
    if not isinstance(number, Scalar) or (number.kind, number.size) not in _NUMBERS:
        return None
    spans: list[tuple[int, int, int, int]] = []
    leaves: list[tuple[Type, int]] = []  # each label's type and where it lies in the row
    width = 0
    for side, path in labels:
        where = _locate(sides[side], path, "")
        if where is None or isinstance(where[1], (Array, Struct)):
            return None
        off, t = where
        lo, hi = off, off + t.size
        family = getattr(t, "family", None)  # output.rows' _Shown ip: its family field is read too
        if family is not None:  # ip: its family field is read too
            ftype, delta = family
            lo, hi = min(lo, off + delta), max(hi, off + delta + ftype.size)
        spans.append((side, lo, hi - lo, width))
        leaves.append((t, width + off - lo))
        width += hi - lo
    if set(shown) - {(s, p) for s, p in labels if p is not None}:
        return None  # a shown field that is no label: the decoded path counts its misses
    decoded = set(decoders[0]) if decoders is not None else set()
    injective = all(_injective(t) for i, (t, _at) in enumerate(leaves) if i not in decoded)
    distinct = distinct and decoders is None  # a static_map makes one series of several
    if (not injective or decoded) and number.kind == "float" and not distinct:
        return None
    label_paths = [p or "" for _s, p in labels]
    shown_leaves: list[tuple[str, Any, int]] = [  # output.rows' _Shown leaves but ip (it has no misses)
        (p, t, at) for p, (t, at) in zip(label_paths, leaves) if getattr(t, "fmt", "ip") != "ip"
    ]
    checked = [(p.replace(".", "_"), at, t.inner, missed(t.fmt, t.size, t.names)) for p, t, at in shown_leaves]

    def write(leaves: list[tuple[Type, int]], stride: int, number: tuple[int, Scalar] | None) -> Any:
        return _writer(sample, label_names, leaves, stride, number)

    try:
        write(leaves, width, None)  # the row writer writes these labels
        lines = write(leaves, width + number.size, (width, number)) if distinct else None
        relabel = None
        if decoders is not None:
            at, decorate, may_miss = decoders
            relabel = Relabel(at, leaves, [(a, n) for _s, _o, n, a in spans], width, decorate, may_miss)
    except NotRow:
        return None
    sizes = (key_type.size, value_type.size)
    return Summed(
        spans, width, (value_at, number), leaves, write, lines, checked, not injective, sizes, misses, relabel
    )


_SUM_TYPES = {"Q": Scalar("u64", "uint", 8), "q": Scalar("s64", "int", 8), "d": Scalar("f64", "float", 8)}


def _sum_code(numbers: list[Any]) -> str | None:
    """The struct code that holds every sum exactly (u64, s64 or f64), or None."""
    if type(numbers[0]) is float:
        return "d"
    lo, hi = min(numbers), max(numbers)
    if lo >= 0 and hi < 1 << 64:
        return "Q"
    if lo >= -(1 << 63) and hi < 1 << 63:
        return "q"
    return None


_NUMBERS = {("uint", n) for n in (1, 2, 4, 8)} | {("int", n) for n in (1, 2, 4, 8)} | {("float", 4), ("float", 8)}


def _injective(t: Type) -> bool:
    """Whether two different bytes of ``t`` always make two different label texts."""
    from ..output.rows import _Shown

    if isinstance(t, _Shown):
        return False
    if isinstance(t, Scalar):
        return t.kind in ("uint", "int")
    return isinstance(t, (Enum, Bytes, Formatted))


class ReadsAlike(Exception):
    """A batch held a key that another key may read like (see :func:`alike_check`): its
    series must be summed by their text, so the metric is read again that way."""


_NONZERO = bytes([0] + [1] * 255)  # bytes.translate: a NUL stays 0, any other byte is 1


def alike_check(t: Type) -> Callable[[Any, int], bool] | None:
    """For keys of type ``t`` whose every field is a label: None when two different keys
    always read as two different label sets; else a function for one scrape (a batch's
    keys, their count) -> whether a key of the batch may read like another key: it holds
    bytes no label shows (a ``char[N]``'s bytes past its NUL, a bool other than 0 or 1,
    padding that is not zero), or the scrape's strings so far hold both a byte that is not
    UTF-8 (written ``\\xNN``) and a backslash (the text ``\\xNN`` is written the same), or a
    display format gave two values of the scrape one text (a name the host gives two
    values, a user named 5000 beside uid 5000, which has no name).
    Such keys are rare (a program that copies a string into a key without zeroing it
    first), the check is a few column copies and byte scans a batch: the straight path
    (every entry its own series) stays, and a batch that fails the check sends the metric
    the summed way (:class:`ReadsAlike`).  NotRow where the bytes cannot tell (a float, a
    bitfield, a union, an ``ip`` address read by its family field)."""
    from ..output.rows import NotRow, _Shown

    pads: list[tuple[int, int]] = []
    bools: list[int] = []
    strings: list[tuple[int, int]] = []
    named: list[tuple[int, Any]] = []  # numbers shown by a display format (a name, else the number)

    def walk(t: Type, off: int) -> None:
        if isinstance(t, Struct):
            if t.union:
                raise NotRow("union")
            at = 0
            for f in sorted(t.fields, key=lambda f: f.offset):
                if f.bit_size is not None or f.offset < at:
                    raise NotRow("bitfield")
                if f.offset > at:
                    pads.append((off + at, f.offset - at))
                walk(f.type, off + f.offset)
                at = f.offset + f.type.size
            if t.size > at:
                pads.append((off + at, t.size - at))
        elif isinstance(t, Array):
            for i in range(t.count):
                walk(t.elem, off + i * t.elem.size)
        elif isinstance(t, Pad):
            pads.append((off, t.size))
        elif isinstance(t, Char):
            strings.append((off, t.size))
        elif isinstance(t, Scalar) and t.kind == "bool" and t.size == 1:
            bools.append(off)
        elif isinstance(t, _Shown) and t.fmt != "ip":
            named.append((off, t))
        elif isinstance(t, _Shown) and t.family is not None:  # the address's text depends on the family field
            raise NotRow("an address by its family")
        elif isinstance(t, _Shown):  # ip of a plain number: its bytes as an address, one text each
            pass
        elif not _injective(t):
            raise NotRow("a key leaf whose bytes do not tell its text")

    walk(t, 0)
    if not (pads or bools or strings or named):
        return None
    size = t.size
    seen = [False, False]  # in this scrape's strings: a byte that is not UTF-8, a backslash

    def column(keys: Any, off: int, width: int, count: int, fill: bytes = b"\0", gap: int = 0) -> bytearray:
        out = bytearray(fill * (count * (width + gap)))
        copy_columns(out, width + gap, 0, keys, size, off, width, count)
        return out

    def alike(keys: Any, count: int) -> bool:
        for off, width in pads:  # not zero
            if column(keys, off, width, count).count(0) != count * width:
                return True
        for off in bools:  # not 0 or 1
            if column(keys, off, 1, count).translate(None, b"\0\1"):
                return True
        if strings:  # a NUL then a byte that is not: each string apart from the next (2s between,
            # up to a multiple of 8 bytes: copied in wide units)
            flags = bytes(memoryview(keys)[: count * size]).translate(_NONZERO)
            for off, width in strings:
                gap = -(width + 1) % 8 + 1
                if b"\0\1" in column(flags, off, width, count, b"\2", gap):
                    return True
                # a byte that is not UTF-8 is written \xNN, as the text \xNN is: both kinds
                # seen in the scrape (such a byte, a backslash), the texts may meet
                raw = column(keys, off, width, count, b"\2", gap)
                if not seen[0] and not raw.isascii():
                    try:
                        raw.decode("utf-8")  # each string apart (the 2s), its NULs past the text
                    except UnicodeDecodeError:
                        seen[0] = True
                seen[1] = seen[1] or b"\\" in raw
                if seen[0] and seen[1]:
                    return True
        for (off, shown), (show, code, texts, by_text) in zip(named, names):
            # a name the host gives two values, or one that spells another value's number (a
            # user named 5000, an interface named 7): each value's text once a scrape
            values = struct.unpack(code[0] + str(count) + code[1:], column(keys, off, shown.size, count))
            for v in set(values).difference(texts):
                r = show(v)
                text = r if type(r) is str else str(r)
                if by_text.setdefault(text, v) != v:
                    return True
                texts[v] = text
        return False

    from ..layout.formats import shown_leaf

    # each such leaf: its format's text of a value, the struct code of a column of values
    # (byte order first), and the texts of this scrape by value and by text
    names: list[tuple[Callable[[Any], Any], str, dict[int, str], dict[str, int]]] = []
    for _off, shown in named:
        inner = shown.inner
        show = shown_leaf(shown.fmt, inner.size, shown.names)
        if show is None or not isinstance(inner, Scalar):
            raise NotRow("format")
        order = inner.order if inner.order in ("<", ">") else "="
        names.append((show, order + native_code(inner), {}, {}))
    return alike


def _writer(
    sample: str, names: list[str], leaves: list[tuple[Type, int]], stride: int, number: tuple[int, Scalar] | None
) -> Callable[[Any, int], str]:
    """The lines of rows ``stride`` bytes apart holding the labels at their places: each
    series' ``sample{labels}`` then, with ``number`` (its place and type), `` NUMBER``; a
    newline after each."""
    from ..output.rows import Plan, compile_plan

    plan = Plan()
    pieces = [plan.piece(t, at, LABEL) for t, at in leaves]
    line = sample.replace("%", "%%")
    if names:
        line += "{" + ",".join(f'{n}="{p}"' for n, p in zip(names, pieces)) + "}"
    if number is not None:
        line += " " + plan.piece(number[1], number[0], SAMPLE)
    lines = compile_plan(plan, line + "\n", stride, 0)
    return lambda rows, count: lines(rows, b"", count)
