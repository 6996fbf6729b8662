"""Reading the config's metrics from their maps at each scrape: counter, gauge and
histogram families (export.exposition writes them; a prometheus-client collector gives
them to prometheus-client for OpenMetrics), and bpfmap's own metrics."""

from __future__ import annotations

import operator
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..core.maps import Map
from ..errors import BpfmapError, KernelError, UsageError, quote, translate
from ..hist.extract import Place, SlotError, SlotSums, Tally, locate, raw_counts
from ..layout import TypeCodec, fields
from ..layout.formats import FormattedCodec, shown_fields
from ..layout.model import Array, Struct
from ..output.rows import NotRow, row_type
from ..view import View, aggregate, numeric_layout
from .config import SELF_PREFIX, ConfigError, Metric, _is_num, _label_name, rounded
from .exposition import (
    CHUNK,
    Family,
    ReadsAlike,
    alike_check,
    encode,
    family_text,
    row_lines,
    summed_lines,
    to_client,
)
from .labels import Chains, Drop, StaticMap, label_text
from .streams import Stream, StreamMetric, is_stream

Labels = Callable[[Any, Any], tuple[Any, ...]]  # (key, value) -> a series' label values
_CODECS = (TypeCodec, FormattedCodec)  # codecs whose fields the raw paths read


def _leaves(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every non-struct leaf of a decoded key."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip(".") or "key", obj


class Exporter:
    """Reads the config's metrics from their maps, for prometheus-client's registry (a
    custom collector) and for bpfmap's own metrics.

    Scrapes are serialized: prometheus-client serves each request in a thread of its
    own, and the maps held open between scrapes (and the fds behind them) belong to one
    scrape at a time, so a scrape never reads through an fd another one closed.  A
    metric that fails is left out of that scrape and counted; the others are served."""

    def __init__(self, metrics: list[Metric], log: Callable[[str], object] | None = None) -> None:
        self.metrics = metrics
        self.errors = {m.name: 0 for m in metrics}
        self.textfile_errors = 0
        self.decode_errors: dict[tuple[str, str], int] = {}
        self._miss_weight = 1  # entries each value decoded now stands for (0: the entry of zeros a check reads)
        self._layouts = {m.name: m.make_layout() for m in metrics}  # config errors surface here, once
        self._said: dict[str, str] = {}
        self._views: dict[str, View] = {}
        self._alike: set[str] = set()  # metrics whose map held keys that read alike: summed since
        self._lock = threading.Lock()
        self._scrape_errors: set[str] = set()  # metrics that counted an error in this scrape
        self.log = log or (lambda text: sys.stderr.write(f"bpfmap: {text}\n"))
        self.streams: dict[str, Stream] = {}  # map -> its reader, for ring buffers and perf buffers
        self._stream_counts: dict[str, tuple[int, int, int]] = {}  # records, lost, dropped of streams gone
        for metric in metrics:  # streams start now: records sent before the first scrape count
            if metric.map not in self.streams:
                try:
                    self._stream(metric)
                except BpfmapError:
                    pass  # the scrape says what is wrong
        for metric in metrics:
            if metric.labels is None and metric.map not in self.streams:
                self._check_default_labels(metric)

    def _check_default_labels(self, metric: Metric) -> None:
        """Labels left to the key's fields, checked now against the key of the map (one
        that opens later: at its first scrape): a field whose label is one bpfmap uses (cpu
        with percpu: cpu, le in a histogram), or two fields that make one label, are refused
        here (ConfigError), as they are when the config lists them, not at every scrape."""
        try:
            view = self._view(metric)
        except ConfigError:
            raise
        except BpfmapError:
            return  # the scrape says what is wrong
        if view is None:
            return
        m = view.map
        # the plain codecs: display formats' misses on zeros are no decode errors of the map's
        key = getattr(view.key, "inner", view.key).decode(bytes(m.key_size))
        value = getattr(view.value, "inner", view.value).decode(bytes(m.value_size))
        if metric.hist is not None:
            metric.label_names(self._histogram_paths(metric, key, value)[0])
        else:
            metric.label_names(self._label_paths(metric, key, value))

    # prometheus_client calls this at every scrape (OpenMetrics)
    def collect(self) -> list[Any]:
        """Every metric's family and bpfmap's own, read now, as prometheus-client's."""
        with self._lock:
            return [to_client(f) for f in self._families(fast=False)]

    def scrape(self, out: Any) -> None:
        """The text exposition of one scrape into ``out`` (a seekable binary file): each
        metric as it is read (a metric that fails is cut out again and counted), then
        bpfmap's own.  One scrape at a time.  An error writing ``out`` (a full disk) is
        the scrape's, raised as it is: never counted as a metric's."""
        guarded = _Guarded(out)
        try:
            with self._lock:
                for family in self._families(fast=True, out=guarded):
                    for text in family_text(family):
                        guarded.write(encode(text))
        except _Unwritable as failed:
            raise failed.err from None

    def families(self) -> list[Family]:
        """One scrape's families, read into samples."""
        with self._lock:
            return list(self._families(fast=False))

    def _families(self, fast: bool, out: Any = None) -> Iterator[Family]:
        """Every metric's family, then bpfmap's own.  With ``out``, each metric's family is
        written there as it is read (the fast path reads the map while it writes), so a
        failure is cut out of ``out`` again; without, families are read whole."""
        durations = Family(
            SELF_PREFIX + "scrape_duration_seconds", "Seconds spent reading each metric's map", "gauge", ["metric"]
        )
        entries = Family(SELF_PREFIX + "map_entries", "Entries read from each map", "gauge", ["map"])
        max_entries = Family(SELF_PREFIX + "map_max_entries", "Each map's max_entries", "gauge", ["map"])
        errors = Family(
            SELF_PREFIX + "errors",
            "Scrapes where a metric's map could not be read (or held values it could not show)",
            "counter",
            ["metric"],
        )
        maps_done: set[str] = set()
        self._scrape_errors = set()
        for metric in self.metrics:
            start = time.perf_counter()
            mark = out.tell() if out is not None else 0
            family: Family | None = None
            try:
                misses = dict(self.decode_errors) if out is not None else {}
                family, count_of, max_e = self.read(metric, fast)
                if out is not None:
                    try:
                        for text in family_text(family):
                            out.write(encode(text))
                    except ReadsAlike:  # two keys may read the same: their series summed by text
                        out.seek(mark)
                        out.truncate()
                        self.decode_errors.clear()  # what the cut lines counted
                        self.decode_errors.update(misses)
                        self._alike.add(metric.name)
                        family, count_of, max_e = self.read(metric, fast)
                        for text in family_text(family):
                            out.write(encode(text))
                    family = None
            except _Unwritable:  # the scrape's output failed, not the metric
                raise
            except Exception as err:  # one metric's failure is never the whole scrape's
                if out is not None:
                    out.seek(mark)
                    out.truncate()
                if isinstance(err, OSError) and not isinstance(err, BpfmapError):
                    self._drop(metric.name)  # the map went away mid-read
                    err = translate("read", metric.map, err)
                self.count_error(metric, f"export: {metric.name}: {describe_error(err)}")
            else:
                if metric.name not in self._scrape_errors:
                    self._said.pop(metric.name, None)
                if family is not None:
                    yield family
                if count_of is not None and metric.map not in maps_done:
                    maps_done.add(metric.map)
                    entries.add([metric.map], count_of())
                    max_entries.add([metric.map], max_e)
            durations.add([metric.name], time.perf_counter() - start)
        for name, n in self.errors.items():
            errors.add([name], n)
        yield from (durations, entries, max_entries, errors)
        totals = self._stream_totals()
        if totals:
            for suffix, what, i in (
                ("events", "Records read from each metric's ring buffer or perf buffer", 0),
                ("events_lost", "Records a perf buffer lost (it was full) for each metric", 1),
                ("series_dropped", "Series dropped past max_series (the one seen longest ago)", 2),
            ):
                fam = Family(SELF_PREFIX + suffix, what, "counter", ["metric"])
                for name, counts in sorted(totals.items()):
                    fam.add([name], counts[i])
                yield fam
        if self.decode_errors:
            failed = Family(
                SELF_PREFIX + "decode_errors",
                "Label values a decoder could not decode (the raw value is shown)",
                "counter",
                ["metric", "label"],
            )
            for (name, label), n in sorted(self.decode_errors.items()):
                failed.add([name, label], n)
            yield failed
        if self.textfile_errors:
            failed = Family(
                SELF_PREFIX + "textfile_write_errors",
                "Textfile writes that failed (retried at the next interval)",
                "counter",
                [],
            )
            failed.add([], self.textfile_errors)
            yield failed

    def last_error(self, name: str) -> str | None:
        """What the metric ``name``'s last error said (None once it reads again)."""
        return self._said.get(name)

    def count_error(self, metric: Metric, text: str) -> None:
        """Count one error of ``metric`` in this scrape (once, however many entries had it)
        and say it (once, until it changes)."""
        if metric.name not in self._scrape_errors:
            self._scrape_errors.add(metric.name)
            self.errors[metric.name] += 1
        self._say(metric.name, text)

    def describe(self) -> list[Any]:
        return []  # no describe-time reading: the registry must not scrape at registration

    def _say(self, key: str, text: str) -> None:
        if self._said.get(key) != text:  # once per new error, not at every scrape
            self._said[key] = text
            self.log(text)

    def _view(self, metric: Metric) -> View | None:
        """The View for ``metric``'s map: opened (read-only) at every scrape, so that a map
        gone or replaced under its pin or name is seen; the View built for the same map
        (by id) at an earlier scrape is kept, its BTF read and decoders compiled once."""
        try:
            m = Map.open(metric.map, readonly=True)
        except BpfmapError:
            self._drop(metric.name)  # let the old map go: our fd would keep it alive
            raise
        if is_stream(m):
            m.close()
            self._drop(metric.name)
            return None
        cached = self._views.get(metric.name)
        if cached is not None and cached.map.id == m.id:
            m.close()
            return cached
        self._drop(metric.name)
        try:
            view = View(m, self._layouts[metric.name] or numeric_layout(m))
            if metric.formats:
                try:
                    view.show_as(metric.formats)
                except UsageError as err:
                    raise metric.error("as", str(err).removeprefix("as ")) from None  # the field says it
                for codec in (view.key, view.value):
                    if hasattr(codec, "on_miss"):
                        codec.on_miss = lambda path, _fmt, _v, name=metric.name: self._missed(
                            name, path.replace(".", "_")
                        )
        except BaseException:
            m.close()
            raise
        self._views[metric.name] = view
        return view

    def _missed(self, name: str, label: str) -> None:
        """A display format or a label decoder had no name for ``label`` of the entry
        decoded now (counted for the entries it stands for)."""
        if self._miss_weight:
            self.decode_error(name, label, self._miss_weight)

    def _zeros(self, view: View) -> tuple[Any, Any]:
        """The map's entry of zeros, decoded: what the config's fields are checked against
        where no entry was read.  It is no entry of the map: a display format's miss on it
        is not counted."""
        m = view.map
        with self._standing_for(0):
            keys, values = view.decode_batch(bytes(m.key_size), bytes(m.shape.entry), 1)
        return keys[0], values[0]

    @contextmanager
    def _standing_for(self, entries: int) -> Iterator[None]:
        """Misses heard meanwhile count ``entries`` times (0: not at all)."""
        self._miss_weight = entries
        try:
            yield
        finally:
            self._miss_weight = 1

    def _drop(self, name: str) -> None:
        self._alike.discard(name)
        old = self._views.pop(name, None)
        if old is not None:
            old.map.close()

    def close(self) -> None:
        """Close the maps held between scrapes; stop the streams."""
        for name in list(self._views):
            self._drop(name)
        for ref in list(self.streams):
            self._end_stream(ref)

    def _stream(self, metric: Metric) -> StreamMetric | None:
        """``metric``'s sink of its map's stream, the stream started when the map is a ring
        buffer or a perf event array (None for other maps).  Every metric naming the same
        map shares its stream: one consumer, each record counted by each metric."""
        stream = self.streams.get(metric.map)
        if stream is not None:
            if stream.error is None:
                return stream.sinks[metric.name]
            self._end_stream(metric.map)
            raise KernelError(f"reading {metric.map} stopped: {stream.error}", 5)
        m = Map.open(metric.map)  # read-write: a ring's consumer moves its position
        if not is_stream(m):
            m.close()
            return None
        try:
            stream = Stream(m, [x for x in self.metrics if x.map == metric.map], self.log, self.decode_error)
        except BaseException:
            m.close()
            raise
        self.streams[metric.map] = stream
        return stream.sinks[metric.name]

    def _end_stream(self, ref: str) -> None:
        stream = self.streams.pop(ref)
        stream.stop()
        for name, sink in stream.sinks.items():
            old = self._stream_counts.get(name, (0, 0, 0))
            self._stream_counts[name] = (old[0] + sink.records, old[1] + stream.lost, old[2] + sink.dropped)

    def _stream_totals(self) -> dict[str, tuple[int, int, int]]:
        out = dict(self._stream_counts)
        for stream in self.streams.values():
            for name, sink in stream.sinks.items():
                old = out.get(name, (0, 0, 0))
                out[name] = (old[0] + sink.records, old[1] + stream.lost, old[2] + sink.dropped)
        return out

    def read(self, metric: Metric, fast: bool = False) -> tuple[Family, Callable[[], int] | None, int]:
        """The family for ``metric`` read now, a function giving the entries read (once
        the family is written: the fast path reads as it writes), the map's max_entries."""
        if metric.map in self.streams or metric.name in self._stream_counts:
            sink = self._stream(metric)
            if sink is not None:
                return sink.family(), None, 0
        view = self._view(metric)
        if view is None:  # a ring buffer or perf buffer appeared under the metric's name
            sink = self._stream(metric)
            assert sink is not None
            return sink.family(), None, 0
        m = view.map
        if fast:
            family = self._fast_histogram(metric, view) if metric.type == "histogram" else self._fast(metric, view)
            if family is not None:
                if family.lines is not None:
                    family.lines = self._or_summed(metric, family.lines)
                return family, lambda: self._counted, m.max_entries
        count = 0

        def batches(
            source: Iterable[tuple[list[Any], list[Any]]],
        ) -> Iterator[tuple[list[Any], list[Any], list[Any] | None]]:
            nonlocal count
            for keys, values in source:
                count += len(keys)
                if not view.percpu:
                    yield keys, values, None
                elif metric.percpu == "sum":
                    yield keys, [aggregate(v, "sum") for v in values], None
                else:  # a series per CPU: cpu="N"
                    n = len(values[0]) if values else 0
                    cpus = [str(c) for c in range(n)]
                    yield (
                        [k for k in keys for _c in cpus],
                        [x for v in values for x in v],
                        cpus * len(keys),
                    )

        def family_of(source: Iterable[tuple[list[Any], list[Any]]], check: bool = False) -> Family | None:
            if metric.type == "histogram":
                rows = (
                    (k, v, c[i] if c else None) for ks, vs, c in batches(source) for i, (k, v) in enumerate(zip(ks, vs))
                )
                names, tally = self._tally(metric, rows)
                return None if check else self._histogram_family(metric, names, tally)
            return self._scalar(metric, batches(source))

        family = family_of(view.column_batches())
        assert family is not None
        if count == 0:
            # nothing to read the fields from: check value:, labels:, slots: against an
            # entry of zeros (the map's BTF or layout), as the first real entry would be
            key, value = self._zeros(view)
            with self._standing_for(0):  # a label decoder's miss on it is none of the map's either
                family_of([([key], [value])], check=True)
        n = count
        return family, lambda: n, m.max_entries

    def _fast(self, metric: Metric, view: View) -> Family | None:
        """A counter or gauge of leaves the row writer takes: a family whose lines are
        written from the kernel's batches (straight as read where the labels name every
        field of the key, so no two entries share a series; else summed per series, see
        exposition.Summed; label decoders through exposition.Relabel); None when the decoded
        path must do it."""
        if view.percpu:
            return None
        m = view.map
        # the plain codecs: a display format's miss on zeros is no decode error of the map's
        key0 = getattr(view.key, "inner", view.key).decode(bytes(m.key_size))
        value0 = getattr(view.value, "inner", view.value).decode(bytes(m.value_size))
        every = [p for p, _v in _leaves(key0)]
        paths = metric.labels if metric.labels is not None else every
        if metric.value is None and isinstance(value0, dict):
            return None  # the decoded path says what to name
        names = metric.label_names(paths)
        family = Family(metric.name, metric.help_text(), metric.type, names)
        # every key field a label: each entry its own series, written as read, while no key
        # read holds bytes no label shows (exposition.alike_check); a static_map may merge series
        distinct = set(paths) >= set(every) and not metric.decoders and metric.name not in self._alike
        alike = None
        if distinct:
            try:
                key_type = row_type(view.key)
                alike = alike_check(key_type) if key_type is not None else None
            except NotRow:
                distinct = False
        if type(view.key) is TypeCodec and type(view.value) is TypeCodec and distinct:
            lines = row_lines(family.sample_name, names, view.key.type, view.value.type, paths, metric.value)
            if lines is None:
                return None
            family.lines = self._straight(view, lines, alike)
            return family
        summed = self._summed(metric, view, family, paths, key0, value0, distinct, alike)
        if summed is None:
            return None
        family.lines = summed
        return family

    def _or_summed(self, metric: Metric, lines: Iterator[str]) -> Iterator[str]:
        """``lines``; where the map's first batch holds keys that may read alike (ReadsAlike
        before any line: a small map, most often), the metric's series read again summed,
        in their place.  ReadsAlike from a later batch reaches the caller, which cuts what
        it wrote of the metric and reads it again (Exporter._families)."""
        try:
            first = next(lines)
        except StopIteration:
            return
        except ReadsAlike:
            self._alike.add(metric.name)
            family, count_of, _m = self.read(metric, fast=True)
            texts = family_text(family)
            next(texts)  # its header: the caller writes this family's
            yield from texts
            if count_of is not None:
                self._counted = count_of()
            return
        yield first
        yield from lines

    def _straight(self, view: View, lines: Any, alike: Callable[[Any, int], bool] | None) -> Iterator[str]:
        """Each raw batch's series lines as it is read (ReadsAlike: a key may read like
        another, see exposition.alike_check)."""
        self._counted = 0
        stream = view.raw_batches()
        try:
            pieces = lines.pieces
            for keys, values, n in stream:
                if alike is not None and alike(keys, n):
                    raise ReadsAlike
                self._counted += n
                for text, _count in pieces(keys, values, n):
                    yield text
        finally:
            stream.close()

    def _summed(
        self,
        metric: Metric,
        view: View,
        family: Family,
        paths: list[str],
        key0: Any,
        value0: Any,
        distinct: bool,
        alike: Callable[[Any, int], bool] | None,
    ) -> Iterator[str] | None:
        """The series of labels that leave key fields out, or are shown through display
        formats, from raw batches (exposition.Summed); None where the decoded path must do it."""
        sides = []
        for p in paths:  # each label on the side the decoded path reads it (fields.side)
            try:
                sides.append(fields.side(p, key0, value0 if metric.labels is not None else None, p))
            except UsageError:
                return None  # the decoded path says what is wrong
        shown = {
            (side, ".".join(parts)): fmt
            for side, codec in enumerate((view.key, view.value))
            if isinstance(codec, FormattedCodec)
            for parts, fmt, _family in shown_fields(codec)
        }
        decoders = self._relabelling(metric, paths, family.labels) if metric.decoders else None
        if metric.decoders and decoders is None:
            return None
        summed = summed_lines(
            family.sample_name,
            family.labels,
            row_type(view.key),
            row_type(view.value),
            sides,
            metric.value,
            shown,
            distinct,
            lambda label, n: self.decode_error(metric.name, label, n),
            decoders,
        )
        if summed is None:
            return None
        summed.alike = alike
        self._counted = 0

        def text() -> Iterator[str]:
            stream = view.raw_batches()
            try:
                for keys, values, n in stream:
                    yield from summed.add(keys, values, n)
                    self._counted = summed.counted
            finally:
                stream.close()
            yield from summed.text()

        return text()

    def _fast_histogram(self, metric: Metric, view: View) -> Family | None:
        """A histogram whose counts are an array of unsigned integers in the value, from
        the kernel's batches: the arrays summed slot by slot per label set
        (hist.extract.SlotSums) and counted by the extractor's Tally as each entry would be;
        each label set's first entry decoded for its labels.  None when the decoded path
        must do it (the counts in the key, a series per CPU, a label that is a struct or
        an array...).  A per-CPU map's counts are summed over its CPUs (``percpu: sum``)."""
        percpu = view.percpu
        if (percpu and metric.percpu != "sum") or not all(type(c) in _CODECS for c in (view.key, view.value)):
            return None
        key0, value0 = self._zeros(view)
        if percpu:
            value0 = aggregate(value0, "sum")
        try:
            paths, place = self._histogram_paths(metric, key0, value0)
            rows = place.rows(value0) if place.slots is not None else []
        except (ConfigError, SlotError):
            return None  # the decoded path says what is wrong, at the entry it says it of
        found = raw_counts(_type(view.value), place.slots or "") if [r[0] for r in rows] == [None] else None
        spans = self._label_spans(metric, view, paths, key0, value0)
        if found is None or spans is None or (percpu and any(side for side, _o, _n in spans)):
            return None  # (a per-CPU map's labels from its values: the decoded path sums them first)
        names = metric.label_names(paths)
        try:
            Chains(metric.decoders, paths, names, metric.error)  # each on a label
        except ConfigError:
            return None
        m = view.map
        sums = SlotSums(spans, *found, (m.key_size, m.shape.stride), m.shape.ncpus)
        stream = view.raw_batches()
        try:
            for keys, values, n in stream:
                sums.add(keys, values, n)
        finally:
            stream.close()
        self._counted = sums.counted
        h = metric.hist
        assert h is not None
        tally = Tally(place, h.sum_slot, h.max_slots)
        labels_of: Labels | None = None
        for (key, value), (label_bytes, summed) in zip(self._firsts(view, sums), sums.sums.items()):
            if percpu:
                value = aggregate(value, "sum")
            with self._standing_for(sums.entries[label_bytes]):  # a label decoder's miss, for each entry
                if labels_of is None:
                    labels_of = self._label_getter(metric, paths, key, value)
                try:
                    labels = labels_of(key, value)
                except Drop:
                    continue
            tally.add_counts(sums.counts(summed), labels)
        return self._histogram_family(metric, names if sums.sums else [], tally if sums.sums else None)

    def _label_spans(
        self, metric: Metric, view: View, paths: list[str], key0: Any, value0: Any
    ) -> list[tuple[int, int, int]] | None:
        """The bytes labels ``paths`` are made from, as (side, offset, size): each label's
        field and the family field an ``ip`` label reads; None where the decoded path must
        do it (a label that is a struct, an array or a bitfield; a field shown through a
        display format that no label holds, whose misses the decoded path counts)."""
        types = (_type(view.key), _type(view.value))
        spans = []
        for p in paths:
            try:
                side, rest = fields.side(p, key0, value0 if metric.labels is not None else None, p)
                off, t = fields.locate(types[side], rest) if rest is not None else (0, types[side])
            except UsageError:
                return None
            if isinstance(t, (Array, Struct)):
                return None
            spans.append((side, off, t.size))
        for side, codec in enumerate((view.key, view.value)):
            for parts, _fmt, family in shown_fields(codec) if isinstance(codec, FormattedCodec) else ():
                try:
                    off, t = fields.locate(types[side], ".".join(parts))
                    beside = fields.locate(types[side], ".".join([*parts[:-1], family])) if family else None
                except UsageError:
                    return None
                if (side, off, t.size) not in spans:
                    return None
                if beside is not None:
                    spans.append((side, beside[0], beside[1].size))
        return spans

    def _firsts(self, view: View, sums: SlotSums) -> Iterator[tuple[Any, Any]]:
        """The first entry of each of ``sums``' label sets, decoded: a display format's miss
        on it counts once for each entry it stands for, as the decoded path counts them."""
        firsts = [sums.first[k] for k in sums.sums]
        if not any(isinstance(c, FormattedCodec) for c in (view.key, view.value)):
            for i in range(0, len(firsts), CHUNK):
                part = firsts[i : i + CHUNK]
                keys, values = view.decode_batch(
                    b"".join(k for k, _v in part), b"".join(v for _k, v in part), len(part)
                )
                yield from zip(keys, values)
            return
        for (key, value), label_bytes in zip(firsts, sums.sums):
            with self._standing_for(sums.entries[label_bytes]):
                [k], [v] = view.decode_batch(key, value, 1)
            yield k, v

    def _relabelling(
        self, metric: Metric, paths: list[str], names: list[str]
    ) -> tuple[list[int], Callable[[tuple[str, ...]], tuple[tuple[str, ...] | None, list[str]]], bool] | None:
        """The labels ``metric``'s label decoders work on (by index); a function from
        their texts to their decoded texts (None: a regexp drops the series) and the
        labels a decoder had no text for, as the decoded path's Chains decode them; and
        whether one may have none (a static_map without default).  None
        where the decoded path must do it (it says what is wrong; a static_map name the
        raw path cannot write as a char[N]: with a NUL, or not UTF-8)."""
        try:
            Chains(metric.decoders, paths, names, metric.error)  # each on a label
        except ConfigError:
            return None
        for decs in metric.decoders.values():
            for d in decs:
                for name in [*getattr(d, "table", {}).values(), getattr(d, "default", None)]:
                    if name is not None and ("\0" in name or not _utf8(name)):
                        return None
        at = [i for i, p in enumerate(paths) if p in metric.decoders]
        chains = Chains(metric.decoders, [paths[i] for i in at], [names[i] for i in at], metric.error)

        def decorate(texts: tuple[str, ...]) -> tuple[tuple[str, ...] | None, list[str]]:
            missed: list[str] = []
            try:
                return chains.apply(list(texts), missed.append), missed
            except Drop:
                return None, missed

        may_miss = any(isinstance(d, StaticMap) and d.default is None for ds in metric.decoders.values() for d in ds)
        return at, decorate, may_miss

    def _label_paths(self, metric: Metric, key: Any, value: Any, exclude: str | None = None) -> list[str]:
        if metric.labels is not None:
            return metric.labels
        return [p for p, _v in _leaves(key) if p != exclude]

    def _label_getter(self, metric: Metric, paths: list[str], key: Any, value: Any) -> Labels:
        """A function (key, value) -> label values for ``paths``, compiled once from the first
        entry: each path read on the side fields.side gives it (``comm``, ``key.pid``); the
        default labels are the key's own fields."""
        getters: list[tuple[int, Any]] = []
        for p in paths:
            try:
                side, rest = fields.side(p, key, value if metric.labels is not None else None, p)
            except UsageError as err:
                raise metric.error("labels", str(err)) from None
            getters.append((side, fields.getter(rest) if rest is not None else _identity))

        if metric.decoders:
            return self._decorated(metric, paths, self._plain_labels(getters))
        if (
            len(paths) > 1
            and all(side == 0 for side, _g in getters)
            and all("." not in p and "[" not in p and p != "key" for p in paths)
        ):
            # every label a top-level field of a struct key: one C-level itemgetter makes the
            # tuple; numbers become text by str() (what label_text does for them)
            many = operator.itemgetter(*paths)
            plain = all(type(x) is int for x in many(key))
            text = str if plain else label_text
            return lambda k, v: tuple(map(text, many(k)))

        return self._plain_labels(getters)

    @staticmethod
    def _plain_labels(getters: list[tuple[int, Any]]) -> Labels:
        def labels(k: Any, v: Any) -> tuple[Any, ...]:
            return tuple(label_text(g(v if side else k)) for side, g in getters)

        return labels

    def _decorated(self, metric: Metric, paths: list[str], base: Any) -> Labels:
        """``base`` label getter with the metric's label decoders (static_map, regexp)
        applied to the labels they name; a series a regexp leaves out raises Drop."""
        chains = Chains(metric.decoders, paths, [_label_name(p, metric) for p in paths], metric.error)

        def miss(label: str) -> None:
            self._missed(metric.name, label)

        def labels(k: Any, v: Any) -> tuple[Any, ...]:
            return chains.apply(list(base(k, v)), miss)

        return labels

    def decode_error(self, metric: str, label: str, n: int = 1) -> None:
        """Count ``n`` label values a decoder could not decode (they are shown raw)."""
        key = (metric, label)
        self.decode_errors[key] = self.decode_errors.get(key, 0) + n

    def _number_getter(self, metric: Metric, value: Any) -> Callable[[Any], Any]:
        """A function value -> the metric's number, compiled from the first value."""
        if metric.value:
            g = fields.getter(metric.value)
            try:
                v = g(value)
            except (KeyError, IndexError, TypeError):
                have = ", ".join(value) if isinstance(value, dict) else "none (the value is not a struct)"
                raise metric.error("value", f"no field {metric.value} in the value; its fields: {have}") from None
        elif isinstance(value, dict):
            numeric = [k for k, x in value.items() if _is_num(x)]
            raise metric.error("value", f"the value is a struct: name its number ({', '.join(numeric) or 'none'})")
        else:
            g, v = _identity, value
        if not _is_num(v):
            raise metric.error("value", f"{metric.value or 'the value'} is not a number ({str(v)[:40]})")
        return g

    def _scalar(self, metric: Metric, batches: Iterable[tuple[list[Any], list[Any], list[Any] | None]]) -> Family:
        """A counter or gauge, batch by batch: label tuples and numbers made a batch at a
        time, summed where several entries share labels."""
        names: list[str] = []
        sums: dict[tuple[Any, ...], float] = {}
        unique: list[tuple[tuple[Any, ...], float]] = []  # labels name every key field: no two entries share them
        labels_of: Any = None
        number: Any = None
        distinct = False
        for keys, values, cpus in batches:
            if not keys:
                continue
            if labels_of is None:
                paths = self._label_paths(metric, keys[0], values[0])
                names = metric.label_names(paths, cpu_label=cpus is not None)
                labels_of = self._label_getter(metric, paths, keys[0], values[0])
                number = self._number_getter(metric, values[0])
                # every key field a label: no two entries share a series (unless a static_map merges them)
                distinct = set(paths) >= {p for p, _v in _leaves(keys[0])} and not metric.decoders
            if metric.decoders:  # a regexp may leave series out
                labels, keys, values, cpus = _kept(labels_of, keys, values, cpus)
            else:
                labels = list(map(labels_of, keys, values))
            if cpus is not None:
                labels = [t + (c,) for t, c in zip(labels, cpus)]
            try:
                numbers = list(map(number, values))
            except (KeyError, IndexError, TypeError):
                raise metric.error("value", f"{metric.value or 'the value'} is missing in an entry") from None
            if distinct:
                unique.extend(zip(labels, numbers))
                continue
            get = sums.get
            for t, v in zip(labels, numbers):
                sums[t] = get(t, 0) + v
        if len({t for t, _v in unique}) < len(unique):  # keys that read the same (a string past its NUL)
            get = sums.get
            for t, v in unique:
                sums[t] = get(t, 0) + v
            unique = []
        items = unique or list(sums.items())
        if items and not _is_num(items[0][1]):
            raise metric.error("value", f"{metric.value or 'the value'} is not a number")
        family = Family(metric.name, metric.help_text(), metric.type, names)
        family.samples.extend(items)
        return family

    def _histogram_paths(self, metric: Metric, key: Any, value: Any) -> tuple[list[str], Place]:
        """A histogram's label paths and where its counts are (hist's extractor, by its
        defaults), from its first entry."""
        h = metric.hist
        assert h is not None
        try:
            place = locate(key, value, h.slot, metric.value, h.slots)
        except SlotError as err:
            raise _config_error(metric, err) from None
        in_key = place.slots is None
        paths = self._label_paths(metric, key, value, exclude=(place.slot or "key") if in_key else None)
        if in_key and not isinstance(key, dict) and metric.labels is None:
            paths = []
        return paths, place

    def _tally(self, metric: Metric, rows: Iterable[tuple[Any, Any, str | None]]) -> tuple[list[str], Tally | None]:
        """A histogram's label names and each entry's counts walked by hist's extractor
        into one tally per label set (None: no entries)."""
        h = metric.hist
        assert h is not None
        names: list[str] = []
        labels_of: Any = None
        tally: Tally | None = None
        for key, value, cpu in rows:
            if tally is None:
                paths, place = self._histogram_paths(metric, key, value)
                names = metric.label_names(paths, cpu_label=cpu is not None)
                labels_of = self._label_getter(metric, paths, key, value)
                tally = Tally(place, h.sum_slot, h.max_slots)
            try:
                labels = labels_of(key, value) + ((cpu,) if cpu is not None else ())
            except Drop:
                continue
            try:
                tally.add(key, value, labels)
            except SlotError as err:
                raise _config_error(metric, err) from None
        return names, tally

    def _histogram_family(self, metric: Metric, names: list[str], tally: Tally | None) -> Family:
        """A histogram family from its tally: cumulative buckets per label set; slots past
        the scheme's last count in +Inf (an error of the scrape's, said)."""
        h = metric.hist
        assert h is not None
        if tally is not None and tally.past is not None:
            self.count_error(
                metric,
                f"export: {metric.name}: slot {tally.past} is past the last of the {h.max_slots} {h.buckets} "
                "buckets; such counts go to +Inf",
            )
        family = Family(metric.name, metric.help_text(), "histogram", names)
        for labels, counts in tally.groups.items() if tally is not None else ():
            buckets, estimate = h.cumulative(counts.dense(), counts.overflow)
            total_sum = counts.sum * h.multiplier if h.sum_slot else estimate
            family.add_histogram(labels, buckets, rounded(total_sum))  # type: ignore[arg-type]  # the label tuples added above
        return family


# the config field each of the extractor's parameters is
_CONFIG_FIELDS = {"slot": "slot", "count": "value", "slots": "slots"}


def _config_error(metric: Metric, err: SlotError) -> ConfigError:
    return metric.error(_CONFIG_FIELDS[err.param], err.problem)


def _kept(
    labels_of: Any, keys: list[Any], values: list[Any], cpus: list[Any] | None
) -> tuple[list[Any], list[Any], list[Any], list[Any] | None]:
    """Label tuples of the entries a regexp keeps, and those entries."""
    out, ks, vs, cs = [], [], [], []
    for i, (k, v) in enumerate(zip(keys, values)):
        try:
            out.append(labels_of(k, v))
        except Drop:
            continue
        ks.append(k)
        vs.append(v)
        if cpus is not None:
            cs.append(cpus[i])
    return out, ks, vs, cs if cpus is not None else None


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _type(codec: Any) -> Any:
    """The layout type of a TypeCodec or a FormattedCodec (_CODECS)."""
    return codec.type


def _identity(x: Any) -> Any:
    return x


def describe_error(err: BaseException) -> str:
    """An error of one metric, for the log: bpfmap's own as it says it, anything else
    named (it is a bug, but it costs only that metric)."""
    if isinstance(err, BpfmapError):
        return str(err)
    return f"internal error reading it ({type(err).__name__}: {quote(str(err), 200, bare=True)})"


class _Unwritable(Exception):
    """An error writing a scrape's output (carried past the per-metric error handling)."""

    def __init__(self, err: OSError) -> None:
        super().__init__(str(err))
        self.err = err


class _Guarded:
    """A scrape's output whose write errors are _Unwritable: a metric's read errors stay
    OSErrors, so the two are told apart."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, data: bytes) -> int:
        try:
            return self.out.write(data)  # type: ignore[no-any-return]
        except OSError as err:
            raise _Unwritable(err) from err

    def tell(self) -> int:
        return self.out.tell()  # type: ignore[no-any-return]

    def seek(self, pos: int) -> int:
        return self.out.seek(pos)  # type: ignore[no-any-return]

    def truncate(self) -> int:
        return self.out.truncate()  # type: ignore[no-any-return]
