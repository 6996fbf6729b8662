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
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from ..layout.leaves import LABEL, SAMPLE, label_escaped, prometheus_number
from ..layout.model import Array, Struct, Type

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HELP_ESC = str.maketrans({"\\": "\\\\", "\n": "\\n"})
CHUNK = 4096  # series formatted at once


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
