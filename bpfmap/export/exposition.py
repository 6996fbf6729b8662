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
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from ..columns import copy_columns
from ..layout.leaves import HOST, enum_names, native_code, prometheus_number, unpacking
from ..layout.model import Char, Enum, Formatted, Scalar, Struct, Type

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_ESC = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESC = str.maketrans({"\\": "\\\\", "\n": "\\n"})
CHUNK = 4096  # series formatted at once


def _surrogates(err: UnicodeError) -> tuple[str, int]:
    """Encoding error handler: a lone surrogate (a byte that was not UTF-8) as ``\\\\xNN``."""
    assert isinstance(err, UnicodeEncodeError)
    out = []
    for ch in err.object[err.start : err.end]:
        c = ord(ch)
        out.append(f"\\\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"\\\\u{c:04x}")
    return "".join(out), err.end


codecs.register_error("bpfmap_exposition", _surrogates)


def encode(text: str) -> bytes:
    return text.encode("utf-8", "bpfmap_exposition")


def label_value(v: str) -> str:
    """A label value escaped for the exposition (quotes not included)."""
    return v.translate(_ESC)


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


def _leaf(t: Type) -> tuple[str, str, Callable[[Any], Any] | None, bool] | None:
    """(struct code, template piece, conversion of the unpacked item, needs a byte swap)
    for a label leaf this path writes, written as the decoded path writes it
    (labels.label_text, escaped); None for others."""
    if isinstance(t, Scalar) and t.size != 16:
        swap = t.order not in ("=", HOST) and t.size > 1
        if t.kind in ("uint", "int"):
            return native_code(t), "%s", None, swap
        if t.kind == "bool":
            return native_code(t), "%s", lambda v: "true" if v else "false", swap
        return None  # floats in labels: the decoded path
    if isinstance(t, Enum):
        names = enum_names(t.values)
        return native_code(t), "%s", lambda v: names.get(v, v), False
    if isinstance(t, Formatted) and t.name == "ipv4":
        return "4B", "%s.%s.%s.%s", None, False
    if isinstance(t, (Char, Formatted)):
        leaf = unpacking(t)
        assert leaf is not None and leaf.expr is not None
        decode = eval(f"lambda v: {leaf.expr.format(v='v')}", dict(leaf.env))  # noqa: S307
        return leaf.code, "%s", lambda v: decode(v).translate(_ESC), False
    return None


def _value_leaf(t: Type) -> tuple[str, Callable[[Any], Any] | None, bool] | None:
    if isinstance(t, Scalar) and t.size != 16 and t.kind in ("uint", "int", "float"):
        swap = t.order not in ("=", HOST) and t.size > 1
        return native_code(t), (value_text if t.kind == "float" else None), swap
    return None


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
    number at ``value_path`` (None: the whole value); None when a field is of a kind this
    path does not write (the decoded path does those)."""
    if key_type is None or value_type is None:
        return None
    ksize, vsize = key_type.size, value_type.size
    columns: list[tuple[int, int, int]] = []  # (0 key / 1 value, offset, size) in row order
    codes: list[str] = []
    pieces: list[str] = []
    convs: list[tuple[Callable[[Any], Any] | None, int]] = []
    swaps: list[tuple[int, int]] = []
    pos = 0
    for path in label_paths:
        side, found = 0, _locate(key_type, path, "key")
        if found is None and path != "key":
            side, found = 1, _locate(value_type, path)
        if found is None:
            return None
        leaf = _leaf(found[1])
        if leaf is None:
            return None
        code, piece, conv, swap = leaf
        columns.append((side, found[0], found[1].size))
        if swap:
            swaps.append((pos, found[1].size))
        codes.append(code)
        pieces.append(piece)
        convs.append((conv, piece.count("%s")))
        pos += found[1].size
    found = _locate(value_type, value_path)
    if found is None:
        return None
    vleaf = _value_leaf(found[1])
    if vleaf is None:
        return None
    vcode, vconv, vswap = vleaf
    columns.append((1, found[0], found[1].size))
    if vswap:
        swaps.append((pos, found[1].size))
    codes.append(vcode)
    pos += found[1].size
    size = pos
    fmt = "=" + "".join(codes)
    if struct.calcsize(fmt) != size:
        return None
    line = sample.replace("%", "%%")
    if label_names:
        line += "{" + ",".join(f'{n}="{p}"' for n, p in zip(label_names, pieces)) + "}"
    line += " %s\n"
    per = sum(p.count("%s") for p in pieces) + 1
    item_convs: list[tuple[int, Callable[[Any], Any]]] = []
    at = 0
    for conv, n in convs:
        if conv is not None:
            item_convs.append((at, conv))
        at += n
    if vconv is not None:
        item_convs.append((per - 1, vconv))
    unpackers: dict[int, Callable[[Any], tuple[Any, ...]]] = {}

    def lines(keys: Any, values: Any, count: int) -> str:
        rows = bytearray(count * size)
        at = 0
        for side, off, n in columns:
            src, stride = (keys, ksize) if side == 0 else (values, vsize)
            copy_columns(rows, size, at, src, stride, off, n, count)
            at += n
        for off, n in swaps:  # a big-endian field's bytes, a column at a time
            cols = [rows[off + i :: size] for i in range(n)]
            for i in range(n):
                rows[off + i :: size] = cols[n - 1 - i]
        unpack = unpackers.get(count)
        if unpack is None:
            unpack = struct.Struct(fmt + fmt[1:] * (count - 1)).unpack
            if len(unpackers) < 8:
                unpackers[count] = unpack
        items: Any = unpack(rows)
        if item_convs:
            items = list(items)
            for j, conv in item_convs:
                items[j::per] = map(conv, items[j::per])
        return (line * count) % tuple(items)

    def chunks(keys: bytes, values: bytes, count: int) -> Iterator[str]:
        """The lines of a kernel batch, CHUNK series at a time (what a writer writes)."""
        kv, vv = memoryview(keys), memoryview(values)
        for i in range(0, count, CHUNK):
            n = min(CHUNK, count - i)
            yield lines(kv[i * ksize : (i + n) * ksize], vv[i * vsize : (i + n) * vsize], n)

    def whole(keys: bytes, values: bytes, count: int) -> str:
        return "".join(chunks(keys, values, count))

    whole.pieces = chunks  # type: ignore[attr-defined]
    return whole
