"""Map contents as Prometheus metrics: a config of metrics, each read from a map at
scrape time, exposed through prometheus-client (HTTP /metrics, one exposition, or a
node_exporter textfile).

A metric names a map (pin, ``id:N`` or ``name:NAME``), how to read it (a layout, a C
header, else the map's BTF, else 4/8-byte integers), which value field is the number
and which fields are labels (by name: no sizes, no padding).  Histograms come from
either shape ``bpfmap hist`` knows: slots in the value (an array of counts per entry)
or the slot in the key.  Maps are opened read-only (BPF_F_RDONLY) at every scrape, so a
map that disappears makes its metric absent (and counts an error) and a new map under
the same pin or name is picked up by the next scrape.

Needs ``prometheus-client`` and ``PyYAML`` (``pip install 'bpfmap[export]'``)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import BpfmapError, UsageError, quote

TYPES = ("counter", "gauge", "histogram")
BUCKETS = ("exp2", "exp2zero", "bits", "linear", "fixed")
PERCPU = ("sum", "cpu")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
SELF_PREFIX = "bpfmap_export_"
_KEYS = {
    "name",
    "help",
    "type",
    "map",
    "layout",
    "c_header",
    "key_type",
    "value_type",
    "include_dirs",
    "value",
    "labels",
    "as",
    "percpu",
    "slots",
    "slot",
    "buckets",
    "multiplier",
    "step",
    "min",
    "bounds",
    "sum_slot",
}
_HIST_ONLY = ("slots", "slot", "buckets", "multiplier", "step", "min", "bounds", "sum_slot")


def _need_libraries() -> None:
    try:
        import prometheus_client  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as err:
        raise UsageError(
            f"bpfmap export needs prometheus-client and PyYAML ({err.name} is missing): pip install 'bpfmap[export]'"
        ) from None


class ConfigError(UsageError):
    """A config that cannot be exported: names the metric and the field."""


class Metric:
    """One metric of the config, checked."""

    def __init__(self, raw: dict, index: int, source: str) -> None:
        name = raw.get("name")
        self.where = f"{source}: metric {name if isinstance(name, str) and name else f'#{index + 1}'}"
        odd = [k for k in raw if not isinstance(k, str)]
        if odd:
            raise self.error(repr(odd[0]), "not a field name; fields are names such as name, map, value")
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise self.error(unknown[0], f"unknown field; fields are {', '.join(sorted(_KEYS))}")
        self.name: str = self._required(raw, "name")
        if not _NAME.fullmatch(self.name):
            raise self.error("name", f"{quote(self.name)} is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        if self.name.startswith(SELF_PREFIX):
            raise self.error("name", f"names starting with {SELF_PREFIX} are bpfmap's own metrics; choose another")
        self.type = self._str(raw, "type") or "counter"
        if self.type not in TYPES:
            raise self.error("type", f"{quote(self.type)}: choose one of {', '.join(TYPES)}")
        self.map: str = self._required(raw, "map")
        self.layout_text = self._str(raw, "layout")
        self.c_header = self._str(raw, "c_header")
        self.key_type = self._str(raw, "key_type")
        self.value_type = self._str(raw, "value_type")
        self.include_dirs = self._strings(raw, "include_dirs") or []
        if self.layout_text and self.c_header:
            raise self.error("layout", "give layout or c_header, not both")
        if (self.key_type or self.value_type) and not self.c_header:
            raise self.error("key_type" if self.key_type else "value_type", "needs c_header")
        if self.c_header and not (self.key_type or self.value_type):
            raise self.error("c_header", "name the types with key_type and/or value_type")
        self.value = self._str(raw, "value")
        self.labels = self._strings(raw, "labels")
        self.formats = self._formats(raw.get("as"))
        self.percpu = self._str(raw, "percpu") or "sum"
        if self.percpu not in PERCPU:
            raise self.error("percpu", f"{quote(self.percpu)}: choose sum or cpu")
        if self.labels is not None:
            self.label_names(self.labels)
        self.help = self._str(raw, "help") or ""
        if self.type != "histogram":
            given = [k for k in _HIST_ONLY if k in raw]
            if given:
                raise self.error(given[0], f"applies to histograms (type: histogram), not to a {self.type}")
            self.slots = self.slot = None
            self.multiplier = 1.0
            return
        self.slots = self._str(raw, "slots")
        self.slot = self._str(raw, "slot")
        if self.slots and self.slot:
            raise self.error("slots", "give slots (an array of counts in the value) or slot (in the key), not both")
        if self.slots and self.value:
            raise self.error("value", "a histogram with slots in the value takes its counts from slots, not value")
        self.buckets = self._str(raw, "buckets") or "exp2"
        if self.buckets not in BUCKETS:
            raise self.error("buckets", f"{quote(self.buckets)}: choose one of {', '.join(BUCKETS)}")
        self.multiplier = self._number(raw, "multiplier", 1.0, positive=True)
        self.step = self._number(raw, "step", None, positive=True)
        self.min = self._number(raw, "min", 0.0)
        if self.buckets == "linear" and self.step is None:
            raise self.error("step", "linear buckets need step (the width of a slot)")
        if self.buckets != "linear" and ("step" in raw or "min" in raw):
            raise self.error("step" if "step" in raw else "min", "applies to linear buckets")
        bounds = raw.get("bounds")
        if self.buckets == "fixed":
            if not isinstance(bounds, list) or not bounds:
                raise self.error("bounds", "fixed buckets need bounds: a list of numbers, one per slot")
            bounds = [_number(b) for b in bounds]
            if not all(b is not None and math.isfinite(b) for b in bounds):
                raise self.error("bounds", "give finite numbers, one per slot (+Inf is added after the last)")
            if any(b >= c for b, c in zip(bounds, bounds[1:])):
                raise self.error("bounds", "must increase")
        elif bounds is not None:
            raise self.error("bounds", "applies to fixed buckets")
        self.bounds = [float(b) for b in bounds] if bounds else []
        sum_slot = raw.get("sum_slot", False)
        if not isinstance(sum_slot, bool):
            raise self.error("sum_slot", "true or false")
        self.sum_slot = sum_slot

    # -- checking ---------------------------------------------------------------------------

    def error(self, field: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: {field}: {problem}")

    def _required(self, raw: dict, key: str) -> str:
        v = self._str(raw, key, required=True)
        assert v is not None
        return v

    def _str(self, raw: dict, key: str, required: bool = False) -> str | None:
        v = raw.get(key)
        if v is None:
            if required:
                raise self.error(key, "required")
            return None
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise self.error(key, f"give a string, not {type(v).__name__}")
        return str(v)

    def _strings(self, raw: dict, key: str) -> list[str] | None:
        v = raw.get(key)
        if v is None:
            return None
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise self.error(key, "give a list of names")
        return v

    def _number(self, raw: dict, key: str, default: float | None, positive: bool = False) -> Any:
        v = raw.get(key, default)
        if v is None:
            return None
        n = _number(v)
        if n is None or not math.isfinite(n) or (positive and n <= 0):
            raise self.error(key, f"{v!r}: give a {'positive ' if positive else ''}number")
        return n

    def _formats(self, as_: Any) -> dict[str, str]:
        """``as:``, a mapping of field path -> display format, checked item by item (a key
        with a comma is one bad name, not two fields)."""
        if not as_:
            return {}
        if not isinstance(as_, dict):
            raise self.error("as", "give a mapping of field: format, e.g. {saddr: ip}")
        from .layout.formats import parse_spec

        formats: dict[str, str] = {}
        for k, v in as_.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise self.error("as", f"{quote(str(k))[:60]}: give a field name and a format name, e.g. saddr: ip")
            if "," in k or "=" in k:
                raise self.error("as", f"{quote(k)}: one field per key (a name, NAME.FIELD or NAME[I])")
            try:
                formats.update(parse_spec(f"{k}={v}"))
            except UsageError as err:
                raise self.error("as", str(err).removeprefix("--as ")) from None
        return formats

    def label_names(self, paths: list[str], cpu_label: bool = False) -> list[str]:
        """The Prometheus label names of ``paths`` (the cpu label appended where each CPU is
        its own series), refused when two are one name or one is a name Prometheus or
        bpfmap uses (``le`` in a histogram, ``cpu`` with percpu: cpu)."""
        names = [_label_name(p, self) for p in paths]
        reserved = {"le": "a histogram's bucket label"} if self.type == "histogram" else {}
        if self.percpu == "cpu":
            reserved["cpu"] = "the CPU label of percpu: cpu"
        seen: dict[str, str] = {}
        for path, name in zip(paths, names):
            if name in reserved:
                raise self.error("labels", f"{path}: the label {name} is {reserved[name]}; leave it out or list others")
            if name in seen:
                raise self.error("labels", f"{seen[name]} and {path} are both the label {name}; list one of them")
            seen[name] = path
        return names + (["cpu"] if cpu_label else [])

    def sample_names(self) -> set[str]:
        """Every name this metric's samples and family take in the exposition."""
        if self.type == "counter":
            base = self.name.removesuffix("_total")
            return {base, base + "_total", base + "_created"}
        if self.type == "gauge":
            return {self.name}
        return {self.name} | {self.name + s for s in ("_bucket", "_sum", "_count", "_created")}

    # -- reading ----------------------------------------------------------------------------

    def make_layout(self):
        from .layout import Layout

        try:
            if self.layout_text:
                return Layout.parse(self.layout_text)
            if self.c_header:
                return Layout.from_c(self.c_header, self.key_type, self.value_type, include_dirs=self.include_dirs)
        except UsageError as err:
            raise self.error("layout" if self.layout_text else "c_header", str(err)) from None
        return None

    def help_text(self) -> str:
        if self.help:
            base = self.help
        elif self.type == "histogram":
            base = f"{self.slots or 'counts'} of {self.map}"
        else:
            base = f"{self.value or 'value'} of {self.map}"
        if self.type == "histogram" and not self.sum_slot:
            base += " (sum estimated from bucket midpoints)"
        return base


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(v: Any) -> float | None:
    """A config number: an int or float, or a string YAML left unparsed (``1e-6``, which
    YAML 1.1 reads as text); None for anything else."""
    if _is_num(v):
        return float(v)
    if isinstance(v, str) and _FLOAT.fullmatch(v.strip()):
        return float(v)
    return None


def _label_name(path: str, metric: Metric) -> str:
    name = path.replace(".", "_").replace("[", "_").replace("]", "")
    if not _LABEL.fullmatch(name) or name.startswith("__"):
        raise metric.error("labels", f"{quote(path)} does not make a Prometheus label name")
    return name


MAX_CONFIG_NODES = 100_000  # values in the config once YAML aliases are expanded
MAX_CONFIG_DEPTH = 64


def read_config(path: str) -> list[Metric]:
    """The metrics of the YAML config at ``path``, checked (ConfigError names the metric
    and the field).  A key given twice in one mapping is an error, and so is a config
    that expands (through aliases) past MAX_CONFIG_NODES values or nests deeper than
    MAX_CONFIG_DEPTH."""
    _need_libraries()
    import yaml

    from .inputs import read_text

    text = read_text(path, "export config")
    try:
        data = yaml.load(text, Loader=_strict_loader())  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not YAML{where}: {getattr(err, 'problem', None) or err}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config (over {MAX_CONFIG_DEPTH} levels)") from None
    _check_size(data, path)
    return parse_config(data, path)


def _strict_loader() -> type:
    """yaml.SafeLoader refusing a key given twice in one mapping (YAML says keys are
    unique; PyYAML keeps the last silently)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _value in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"{key_node.value!r} is given twice in one mapping", key_node.start_mark
                        )
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep)

    return StrictLoader


def _check_size(data: Any, source: str) -> None:
    """Refuse a config that is larger, with its aliases expanded, than any real one (an
    alias bomb: a few hundred bytes that expand to billions of values)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    nodes = 0
    while stack:
        obj, depth = stack.pop()
        nodes += 1
        if nodes > MAX_CONFIG_NODES:
            raise ConfigError(f"{source}: more than {MAX_CONFIG_NODES:,} values once its aliases are expanded")
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{source}: nested too deeply to be a config (over {MAX_CONFIG_DEPTH} levels)")
        if isinstance(obj, dict):
            stack.extend((x, depth + 1) for kv in obj.items() for x in kv)
        elif isinstance(obj, list):
            stack.extend((x, depth + 1) for x in obj)


def parse_config(data: Any, source: str = "config") -> list[Metric]:
    """The metrics of a config already read (a dict with ``metrics:``), checked."""
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), list) or not data["metrics"]:
        raise ConfigError(f"{source}: metrics: give a list of metrics (metrics: [- name: ..., map: ...])")
    extra = [k for k in data if k != "metrics"]
    if extra:
        raise ConfigError(
            f"{source}: {quote(str(extra[0]), 60, bare=True)}: unknown top-level field (the config has metrics:)"
        )
    metrics = []
    taken: dict[str, str] = {}  # exposed name -> the metric exposing it
    for i, raw in enumerate(data["metrics"]):
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: metric #{i + 1}: give its fields (name:, map:, ...)")
        m = Metric(raw, i, source)
        for name in sorted(m.sample_names()):
            if name in taken:
                other = taken[name]
                why = "used by another metric" if other == m.name else f"{name} is also a name of metric {other}"
                raise m.error("name", f"{why}; Prometheus would keep one of them")
        taken.update(dict.fromkeys(m.sample_names(), m.name))
        metrics.append(m)
    return metrics


# -- scraping ---------------------------------------------------------------------------------


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

    def __init__(self, metrics: list[Metric], log=None) -> None:
        self.metrics = metrics
        self.errors = {m.name: 0 for m in metrics}
        self.textfile_errors = 0
        self._layouts = {m.name: m.make_layout() for m in metrics}  # config errors surface here, once
        self._said: dict[str, str] = {}
        self._views: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._scrape_errors: set[str] = set()  # metrics that counted an error in this scrape
        self.log = log or (lambda text: sys.stderr.write(f"bpfmap: {text}\n"))

    # prometheus_client calls this at every scrape
    def collect(self) -> list[Any]:
        """Every metric's family and bpfmap's own, read now (one scrape at a time)."""
        with self._lock:
            return self._collect()

    def _collect(self) -> list[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        durations = GaugeMetricFamily(
            SELF_PREFIX + "scrape_duration_seconds", "Seconds spent reading each metric's map", labels=["metric"]
        )
        entries = GaugeMetricFamily(SELF_PREFIX + "map_entries", "Entries read from each map", labels=["map"])
        max_entries = GaugeMetricFamily(SELF_PREFIX + "map_max_entries", "Each map's max_entries", labels=["map"])
        errors = CounterMetricFamily(
            SELF_PREFIX + "errors",
            "Scrapes where a metric's map could not be read (or held values it could not show)",
            labels=["metric"],
        )
        out: list[Any] = []
        maps_done: set[str] = set()
        self._scrape_errors = set()
        for metric in self.metrics:
            start = time.perf_counter()
            try:
                family, count, max_e = self.read(metric)
            except Exception as err:  # one metric's failure is never the whole scrape's
                self.count_error(metric, f"export: {metric.name}: {describe_error(err)}")
            else:
                if metric.name not in self._scrape_errors:
                    self._said.pop(metric.name, None)
                out.append(family)
                if metric.map not in maps_done:
                    maps_done.add(metric.map)
                    entries.add_metric([metric.map], count)
                    max_entries.add_metric([metric.map], max_e)
            durations.add_metric([metric.name], time.perf_counter() - start)
        for name, n in self.errors.items():
            errors.add_metric([name], n)
        out += [durations, entries, max_entries, errors]
        if self.textfile_errors:
            failed = CounterMetricFamily(
                SELF_PREFIX + "textfile_write_errors", "Textfile writes that failed (retried at the next interval)"
            )
            failed.add_metric([], self.textfile_errors)
            out.append(failed)
        return out

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

    def describe(self) -> list:
        return []  # no describe-time reading: the registry must not scrape at registration

    def _say(self, key: str, text: str) -> None:
        if self._said.get(key) != text:  # once per new error, not at every scrape
            self._said[key] = text
            self.log(text)

    def _view(self, metric: Metric):
        """The View for ``metric``'s map: opened (read-only) at every scrape, so that a map
        gone or replaced under its pin or name is seen; the View built for the same map
        (by id) at an earlier scrape is kept, its BTF read and decoders compiled once."""
        from .maps import Map
        from .view import View, numeric_layout

        try:
            m = Map.open(metric.map, readonly=True)
        except BpfmapError:
            self._drop(metric.name)  # let the old map go: our fd would keep it alive
            raise
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
                    raise metric.error("as", str(err).removeprefix("--as ")) from None
        except BaseException:
            m.close()
            raise
        self._views[metric.name] = view
        return view

    def _drop(self, name: str) -> None:
        old = self._views.pop(name, None)
        if old is not None:
            old.map.close()

    def close(self) -> None:
        """Close the maps held between scrapes."""
        for name in list(self._views):
            self._drop(name)

    def read(self, metric: Metric) -> tuple[Any, int, int]:
        """The metric family for ``metric`` read now, the entries read, the map's max_entries."""
        from .view import aggregate

        view = self._view(metric)
        m = view.map
        count = 0

        def batches(source: Iterable[tuple[list, list]]) -> Iterator[tuple[list, list, list | None]]:
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

        def family_of(source: Iterable[tuple[list, list]]) -> Any:
            if metric.type == "histogram":
                rows = (
                    (k, v, c[i] if c else None) for ks, vs, c in batches(source) for i, (k, v) in enumerate(zip(ks, vs))
                )
                return self._histogram(metric, rows)
            return self._scalar(metric, batches(source))

        try:
            family = family_of(view.column_batches())
        except BpfmapError:
            raise
        except OSError as err:  # the map went away mid-read
            from .errors import translate

            self._drop(metric.name)
            raise translate("read", metric.map, err) from err
        if count == 0:
            # nothing to read the fields from: check value:, labels:, slots: against an
            # entry of zeros (the map's BTF or layout), as the first real entry would be
            family_of([view.decode_batch(bytes(m.key_size), bytes(m.shape.entry), 1)])
        return family, count, m.max_entries

    def _label_paths(self, metric: Metric, key: Any, value: Any, exclude: str | None = None) -> list[str]:
        if metric.labels is not None:
            return metric.labels
        return [p for p, _v in _leaves(key) if p != exclude]

    def _label_getter(self, metric: Metric, paths: list[str], key: Any, value: Any):
        """A function (key, value) -> label values for ``paths``, compiled once from the first
        entry: each path is looked up in the key, else in the value (``comm``)."""
        getters = []
        for p in paths:
            if p == "key" and not isinstance(key, dict):
                getters.append((0, _identity))
                continue
            for side, obj in ((0, key), (1, value)):
                g = _getter(p)
                try:
                    g(obj)
                except (KeyError, IndexError, TypeError):
                    continue
                getters.append((side, g))
                break
            else:
                raise metric.error("labels", f"{p}: no such field in the key or the value")
        import operator

        if (
            len(paths) > 1
            and all(side == 0 for side, _g in getters)
            and all("." not in p and "[" not in p and p != "key" for p in paths)
        ):
            # every label a top-level field of a struct key: one C-level itemgetter makes the
            # tuple; numbers and strings become text by str() (what _label_text does for them)
            many = operator.itemgetter(*paths)
            plain = all(type(x) in (str, int) for x in many(key))
            text = str if plain else _label_text
            return lambda k, v: tuple(map(text, many(k)))

        def labels(k: Any, v: Any) -> tuple:
            return tuple(_label_text(g(v if side else k)) for side, g in getters)

        return labels

    def _number_getter(self, metric: Metric, value: Any):
        """A function value -> the metric's number, compiled from the first value."""
        if metric.value:
            g = _getter(metric.value)
            try:
                v = g(value)
            except (KeyError, IndexError, TypeError):
                fields = ", ".join(value) if isinstance(value, dict) else "none (the value is not a struct)"
                raise metric.error("value", f"no field {metric.value} in the value; its fields: {fields}") from None
        elif isinstance(value, dict):
            numeric = [k for k, x in value.items() if _is_num(x)]
            raise metric.error("value", f"the value is a struct: name its number ({', '.join(numeric) or 'none'})")
        else:
            g, v = _identity, value
        if not _is_num(v):
            raise metric.error("value", f"{metric.value or 'the value'} is not a number ({str(v)[:40]})")
        return g

    def _scalar(self, metric: Metric, batches: Iterable[tuple[list, list, list | None]]):
        """A counter or gauge, batch by batch: label tuples and numbers made a batch at a
        time, summed where several entries share labels."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        names: list[str] = []
        sums: dict[tuple, float] = {}
        unique: list[tuple[tuple, float]] = []  # labels name every key field: no two entries share them
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
                distinct = set(paths) >= {p for p, _v in _leaves(keys[0])}
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
        items = unique or list(sums.items())
        if items and not _is_num(items[0][1]):
            raise metric.error("value", f"{metric.value or 'the value'} is not a number")
        cls = CounterMetricFamily if metric.type == "counter" else GaugeMetricFamily
        family = cls(metric.name, metric.help_text(), labels=names)
        _fill(family, names, items, "_total" if metric.type == "counter" else "")
        return family

    def _histogram(self, metric: Metric, rows: Iterable[tuple[Any, Any, str | None]]):
        from prometheus_client.core import HistogramMetricFamily

        paths: list[str] | None = None
        names: list[str] = []
        labels_of: Any = None
        number: Any = None
        slot_of: Any = None
        slots_of: Any = None
        groups: dict[tuple, list[float]] = {}
        sums: dict[tuple, float] = {}
        overflow: dict[tuple, float] = {}  # counts of slots past the last bucket: they go to +Inf
        limit = bucket_count(metric)
        past: int | None = None
        slot_path: str | None = None
        for key, value, cpu in rows:
            if paths is None:
                if metric.slots is None:  # the slot in the key: the named field, else the key itself
                    if isinstance(key, dict):
                        slot_path = metric.slot or ("slot" if "slot" in key else None)
                        if slot_path is None:
                            raise metric.error("slot", "the key is a struct: name its slot field (slot: NAME)")
                    elif metric.slot:
                        raise metric.error("slot", "the key is not a struct; leave slot out")
                exclude = (slot_path or "key") if metric.slots is None else None
                paths = self._label_paths(metric, key, value, exclude=exclude)
                if metric.slots is None and not isinstance(key, dict) and metric.labels is None:
                    paths = []
                names = metric.label_names(paths, cpu_label=cpu is not None)
                labels_of = self._label_getter(metric, paths, key, value)
                if metric.slots is None:
                    number = self._number_getter(metric, value)
                    slot_of = _getter(slot_path) if slot_path else _identity
                else:
                    slots_of = _getter(metric.slots)
            labels = labels_of(key, value) + ((cpu,) if cpu is not None else ())
            counts = groups.setdefault(labels, [])
            if metric.slots is not None:
                try:
                    arr = slots_of(value)
                except (KeyError, IndexError, TypeError):
                    raise metric.error("slots", f"no field {metric.slots} in the value") from None
                if not isinstance(arr, list) or not all(_is_num(x) for x in arr):
                    raise metric.error("slots", f"{metric.slots} is not an array of counts")
                if metric.sum_slot:
                    arr, total = arr[:-1], arr[-1]
                    sums[labels] = sums.get(labels, 0) + total
                if len(arr) > limit:
                    past = len(arr) - 1
                    overflow[labels] = overflow.get(labels, 0) + sum(arr[limit:])
                    arr = arr[:limit]
                if len(counts) < len(arr):
                    counts += [0] * (len(arr) - len(counts))
                for i, c in enumerate(arr):
                    counts[i] += c
            else:
                try:
                    slot = slot_of(key)
                except (KeyError, IndexError, TypeError):
                    raise metric.error("slot", f"no field {slot_path} in the key") from None
                if not isinstance(slot, int) or slot < 0:
                    raise metric.error("slot", f"slot {slot!r} is not a slot number")
                if slot >= limit:
                    past = slot
                    overflow[labels] = overflow.get(labels, 0) + number(value)
                    continue
                if len(counts) <= slot:
                    counts += [0] * (slot + 1 - len(counts))
                counts[slot] += number(value)
        if past is not None:
            self.count_error(
                metric,
                f"export: {metric.name}: slot {past} is past the last of the {limit} {metric.buckets} buckets; "
                "such counts go to +Inf",
            )
        family = HistogramMetricFamily(metric.name, metric.help_text(), labels=names)
        for labels, counts in groups.items():
            buckets, estimate = _buckets(metric, counts, overflow.get(labels, 0))
            total_sum = sums[labels] * metric.multiplier if metric.sum_slot else estimate
            family.add_metric(list(labels), buckets, _rounded(total_sum))
        return family


def _identity(x: Any) -> Any:
    return x


def _getter(path: str):
    """A function reading the field ``path`` (``a``, ``a.b``, ``a[2]``) of a decoded value;
    KeyError/IndexError/TypeError when it has none."""
    import operator

    from .view import path_parts

    steps = [name if name else int(index) for name, index in path_parts(path)]
    if len(steps) == 1:
        return operator.itemgetter(steps[0])

    def get(obj: Any) -> Any:
        for s in steps:
            obj = obj[s]
        return obj

    return get


def _label_text(v: Any) -> str:
    """A label value: what text output shows of it (bools true/false, arrays as JSON)."""
    from .layout import inner_text

    return v if type(v) is str else inner_text(v)


def _fill(family: Any, names: list[str], items: Iterable[tuple[tuple, float]], suffix: str) -> None:
    """The family's samples, made at once (what ``add_metric`` does one call at a time)."""
    from prometheus_client.samples import Sample

    name = family.name + suffix
    family.samples.extend(Sample(name, dict(zip(names, labels)), value) for labels, value in items)


def _buckets(metric: Metric, counts: list[float], overflow: float = 0) -> tuple[list[tuple[str, float]], float]:
    """Cumulative (le, count) pairs ending with +Inf, and the sum estimated from midpoints
    (summed in slot units, multiplied once); ``overflow`` counts only in +Inf."""
    out: list[tuple[str, float]] = []
    running = 0.0
    estimate = 0.0
    for i, c in enumerate(counts):
        bounds = slot_bounds(metric, i)
        if bounds is None or not math.isfinite(bounds[1] * metric.multiplier):  # past the last bound
            overflow += c
            continue
        low, high = bounds
        le = high * metric.multiplier
        running += c
        estimate += c * (low + high) / 2
        out.append((_le(le), running))
    if metric.buckets == "fixed":  # every bound, also those no slot of this map reached
        for i in range(len(counts), len(metric.bounds)):
            out.append((_le(metric.bounds[i] * metric.multiplier), running))
    out.append(("+Inf", running + overflow))
    return out, estimate * metric.multiplier


def _rounded(x: float) -> float:
    """``x`` to 15 significant digits: a sum in slot units times the multiplier without
    the float noise of the product (10 slots of 1e-6 is 1e-05, not 9.999999999999999e-06)."""
    return float(f"{x:.15g}") if math.isfinite(x) else x


# Buckets a histogram has at most: exp2 slots of a 64-bit value, and a bound on linear
# ones (a slot of 4294967295 must not make a list of 4 billion buckets).
MAX_LINEAR_BUCKETS = 4096


def bucket_count(metric: Metric) -> int:
    """How many buckets (slots) ``metric``'s scheme has; a slot at or past it counts in +Inf."""
    return {"exp2": 64, "exp2zero": 65, "bits": 65, "linear": MAX_LINEAR_BUCKETS}.get(
        metric.buckets, len(metric.bounds)
    )


def describe_error(err: BaseException) -> str:
    """An error of one metric, for the log: bpfmap's own as it says it, anything else
    named (it is a bug, but it costs only that metric)."""
    if isinstance(err, BpfmapError):
        return str(err)
    return f"internal error reading it ({type(err).__name__}: {quote(str(err), 200, bare=True)})"


def slot_bounds(metric: Metric, i: int) -> tuple[float, float] | None:
    """The values ``[low, high)`` slot ``i`` counts (in the map's units), None past the
    last fixed bound."""
    if metric.buckets == "exp2":
        return (0.0, 2.0) if i == 0 else (float(1 << i), float(1 << (i + 1)))
    if metric.buckets in ("exp2zero", "bits"):
        return (0.0, 1.0) if i == 0 else (float(1 << (i - 1)), float(1 << i))
    if metric.buckets == "linear":
        step = metric.step or 1.0
        return metric.min + i * step, metric.min + (i + 1) * step
    if i >= len(metric.bounds):
        return None
    return (metric.bounds[i - 1] if i else 0.0), metric.bounds[i]


def _le(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() or abs(x) >= 1e15 else f"{x:.1f}"


# -- serving ----------------------------------------------------------------------------------


def registry_for(exporter: Exporter):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)
    return registry


def exposition(exporter: Exporter, openmetrics: bool = False) -> bytes:
    """One scrape, in the text format 0.0.4 (or OpenMetrics)."""
    registry = registry_for(exporter)
    if openmetrics:
        from prometheus_client.openmetrics.exposition import generate_latest as om_latest

        return om_latest(registry)
    from prometheus_client import generate_latest

    return generate_latest(registry)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (loopback) -> (host, port)."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:([0-9]{1,5})|([A-Za-z0-9.-]*):([0-9]{1,5})", text.strip())
    if not m:
        raise UsageError(
            f"--listen {quote(text)}: write HOST:PORT with an address or host name and ASCII digits, "
            "e.g. 127.0.0.1:9435 or [::1]:9435"
        )
    host = m.group(1) or m.group(3) or "127.0.0.1"
    port = int(m.group(2) or m.group(4))
    if not 0 < port < 65536:
        raise UsageError(f"--listen {quote(text)}: port {port} is not 1..65535")
    return host, port


LISTEN_BACKLOG = 128  # connections the kernel queues before accept (socketserver's default is 5)
CLIENT_TIMEOUT = 10.0  # seconds a client may take to send its request or read the answer


def serve(exporter: Exporter, host: str, port: int):
    """Serve /metrics on HOST:PORT in a background thread (plain text, or OpenMetrics when
    the scraper asks for it), a thread per connection with a listen backlog of
    LISTEN_BACKLOG and CLIENT_TIMEOUT seconds for a client to send its request; returns
    the server (``shutdown()`` then ``server_close()`` stop it within a second)."""
    import socket
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import make_wsgi_app

    from .errors import KernelError

    class Handler(WSGIRequestHandler):
        timeout = CLIENT_TIMEOUT

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
            pass

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True  # a slow client never holds the exit
        request_queue_size = LISTEN_BACKLOG
        allow_reuse_address = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that timed out or hung up: its connection is closed, nothing to say

    try:
        Server.address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        httpd = make_server(host, port, make_wsgi_app(registry_for(exporter)), Server, handler_class=Handler)
    except OSError as err:
        raise KernelError(f"export: cannot listen on {host}:{port}: {err.strerror or err}", err.errno or 0) from None
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.25}, daemon=True)
    thread.start()
    return httpd


def check_textfile(path: str) -> None:
    """Refuse a textfile path that cannot be written safely: an empty one, a missing
    directory, or a directory anyone may write to without the sticky bit (anyone could
    then replace the file between our write and node_exporter's read)."""
    import stat

    if not path:
        raise UsageError("--textfile: the path is empty (an unset variable?); give a file such as DIR/bpfmap.prom")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st = os.stat(directory)
    except OSError as err:
        raise UsageError(f"--textfile {quote(path, bare=True)}: directory {directory}: {err.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"--textfile {quote(path, bare=True)}: {directory} is not a directory")
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise UsageError(
            f"--textfile {quote(path, bare=True)}: {directory} is writable by anyone and not sticky; "
            f"write into a directory only trusted users can write to (or chmod +t {directory})"
        )


def write_textfile(exporter: Exporter, path: str) -> None:
    """The exposition written to ``path`` atomically, as node_exporter's textfile
    collector wants: a new temp file beside it (mkstemp: a name nobody can guess, made
    with O_EXCL, never through a symlink), written, fsynced, made world-readable and
    renamed over ``path``."""
    import tempfile

    from .errors import KernelError

    check_textfile(path)
    data = exposition(exporter)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise KernelError(f"export: cannot write {path}: {err.strerror or err}", err.errno or 0) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise KernelError(f"export: cannot write {path}: {err.strerror or err}", err.errno or 0) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


__all__ = [
    "ConfigError",
    "Exporter",
    "Metric",
    "exposition",
    "parse_config",
    "parse_listen",
    "read_config",
    "check_textfile",
    "serve",
    "write_textfile",
]
