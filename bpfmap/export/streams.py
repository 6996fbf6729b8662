"""Metrics from event streams: a metric whose map is a ring buffer or a perf event array
is read continuously, by a thread of its own, record by record; each record is decoded
by the metric's record type (``layout``, ``c_header`` + ``value_type``, or ``object`` +
``value_type``: the object's BTF) and counted, per label set, as

- a counter of records (``type: counter`` without ``value``),
- a counter (or gauge) summing a field (``value: bytes``),
- a histogram of a field (``type: histogram`` with ``value:`` and buckets as for maps;
  its sum is the exact sum of the values).

Label sets are bounded by ``max_series``: past it, the series seen longest ago goes (and
is counted in ``bpfmap_export_series_dropped_total``).  Records read and lost are counted
per metric (``bpfmap_export_events_total``, ``..._events_lost_total``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..core.maps import Map
from ..errors import BpfmapError, UsageError
from ..layout import Codec, fields
from ..layout.formats import apply
from ..streams.events import RecordDecoder, reader
from ..types import MapType
from .config import Metric, _is_num, rounded
from .exposition import Family
from .labels import Chains, Drop, label_text

WAIT = 0.25  # seconds a reader waits for records before it looks at its stop flag


def record_codec(metric: Metric) -> Any:
    """The codec of one record of ``metric``'s stream (None: hex, which has no fields)."""
    codec: Codec | None
    if metric.object is not None:
        from ..objects import read_object

        if metric.value_type is None:
            raise metric.error("object", "name the record's type with value_type (e.g. 'struct event')")
        try:
            codec = read_object(metric.object).type_codec(metric.value_type)
        except UsageError as err:
            raise metric.error("object", str(err)) from None
    else:
        lay = metric.make_layout()
        codec = None if lay is None else lay.bare if lay.bare is not None else lay.value
    if metric.formats:
        codec, rest = apply(codec, metric.formats)
        if rest:
            raise metric.error("as", f"{', '.join(rest)}: no such field in the record")
    return codec


class StreamMetric:
    """One metric's counts of a stream's records: its own record type, labels, series."""

    def __init__(self, metric: Metric, decode_error: Callable[[str, str], None], perf: bool) -> None:
        if metric.type == "histogram" and not metric.value:
            raise metric.error("value", "a histogram of events needs the field it counts (value: NAME)")
        self.metric, self.decode_error = metric, decode_error
        self.codec = record_codec(metric)
        if (metric.labels or metric.value) and self.codec is None:
            raise metric.error("layout", "records need a layout (layout, c_header or object) to name fields")
        if hasattr(self.codec, "on_miss"):
            self.codec.on_miss = lambda path, _f, _v: decode_error(metric.name, path.replace(".", "_"))
        self.decoder = RecordDecoder(self.codec, perf=perf)
        self.lock = threading.Lock()
        self.series: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self.records = self.dropped = 0
        paths = metric.labels or []
        self._getters = [fields.getter(p) for p in paths]
        self._chains = Chains(metric.decoders, paths, metric.label_names(paths), metric.error)
        self._number = fields.getter(metric.value) if metric.value else None

    def add(self, batch: list[Any]) -> None:
        """Count a batch of records."""
        metric = self.metric
        h = metric.hist
        decoded = self.decoder.decode(batch)
        with self.lock:
            self.records += len(batch)
            for _record, value, _extra in decoded:
                try:
                    labels = self._label_tuple(value)
                except Drop:
                    continue
                number = self._value(value) if self._number is not None else 1
                if number is None:
                    continue
                series = self.series
                held: Any = series.get(labels)
                if held is None:
                    if len(series) >= metric.max_series:
                        series.popitem(last=False)  # the one seen longest ago
                        self.dropped += 1
                    held = [[0] * (h.max_slots + 1), 0.0] if h is not None else 0
                else:
                    series.move_to_end(labels)
                if h is not None:
                    held[0][min(h.slot_of(number), h.max_slots)] += 1
                    held[1] += number
                else:
                    held += number
                series[labels] = held

    def _label_tuple(self, value: Any) -> tuple[Any, ...]:
        out = []
        for g in self._getters:
            try:
                v = g(value)
            except (KeyError, IndexError, TypeError):
                v = ""
            out.append(label_text(v))
        return self._chains.apply(out, self._miss)

    def _miss(self, label: str) -> None:
        self.decode_error(self.metric.name, label)

    def _value(self, value: Any) -> Any:
        assert self._number is not None
        try:
            v = self._number(value)
        except (KeyError, IndexError, TypeError):
            return None
        return v if _is_num(v) else None

    def family(self) -> Family:
        """The metric as a scrape shows it now."""
        metric = self.metric
        names = metric.label_names(metric.labels or [])
        what = f"{metric.value} of the records" if metric.value else "records"
        family = Family(metric.name, metric.help or f"{what} of {metric.map}", metric.type, names)
        h = metric.hist
        with self.lock:
            items = [(k, (list(v[0]), v[1]) if h is not None else v) for k, v in self.series.items()]
        if h is None:
            family.samples.extend(items)
            return family
        for labels, (counts, total) in items:
            last = max((i for i, c in enumerate(counts[: h.max_slots]) if c), default=-1)
            buckets, _estimate = h.cumulative(counts[: last + 1], counts[h.max_slots])
            family.add_histogram(labels, buckets, rounded(total * h.multiplier))
        return family


class Stream:
    """One ring buffer's or perf buffer's reader (a thread of its own, on ``m``, which it
    owns) feeding the sinks of every metric that names the map, until :meth:`stop`."""

    def __init__(
        self, m: Map, metrics: list[Metric], log: Callable[[str], object], decode_error: Callable[[str, str], None]
    ) -> None:
        perf = m.type is MapType.PERF_EVENT_ARRAY
        self.map, self.log = m, log
        self.sinks = {metric.name: StreamMetric(metric, decode_error, perf) for metric in metrics}
        self.lost = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._reader = reader(m)
        self.thread = threading.Thread(target=self._run, name=f"bpfmap-events-{m.ref}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2 * WAIT + 1)
        self._reader.close()
        self.map.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self._reader.read(WAIT)
                if batch:
                    for sink in self.sinks.values():
                        sink.add(batch)  # type: ignore[arg-type]  # records, never Packed: not asked for
                self.lost = self._reader.lost
        except (BpfmapError, OSError, UsageError) as err:
            self.error = str(err)
            self.log(f"export: reading {self.map.ref} stopped: {err}")


def is_stream(m: Map) -> bool:
    """Whether ``m`` carries records bpfmap reads (ring buffers, perf event arrays)."""
    return "events" in m.kind.ops
