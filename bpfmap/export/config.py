"""The export config: a YAML list of metrics, each checked field by field (ConfigError
names the metric and the field), with the bounds that keep a hostile config small."""

from __future__ import annotations

import bisect
import math
import re
from typing import Any

from ..errors import UsageError, quote
from ..hist.schemes import MAX_SLOTS, SCHEMES, canonical_scheme, slot_range
from ..host.inputs import read_text
from ..layout import Layout, choose, layout_fault
from ..layout.formats import parse_spec
from .labels import parse as parse_decoders

TYPES = ("counter", "gauge", "histogram")
BUCKETS = (*SCHEMES, "fixed")  # the slot schemes and fixed bounds
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
    "object",
    "max_series",
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

    def __init__(self, raw: dict[str, Any], index: int, source: str) -> None:
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
        record = bool(raw.get("object"))  # then value_type names the object's record type
        fault = layout_fault(
            bool(self.layout_text),
            c_header=bool(self.c_header),
            key_type=bool(self.key_type),
            value_type=bool(self.value_type) and not (record and not self.c_header),
            include_dirs=bool(self.include_dirs),
        )
        if fault is not None:
            raise ConfigError(f"{self.where}: {fault}")
        self.value = self._str(raw, "value")
        self.labels = self._strings(raw, "labels")
        self.decoders: dict[str, Any] = {}  # label path -> its label decoders (export.labels)
        self.formats = self._formats(raw.get("as"))
        self.percpu = self._str(raw, "percpu") or "sum"
        if self.percpu not in PERCPU:
            raise self.error("percpu", f"{quote(self.percpu)}: choose sum or cpu")
        if self.labels is not None:
            self.label_names(self.labels)
        self.help = self._str(raw, "help") or ""
        self.object = self._str(raw, "object")  # an event stream's records: this object's BTF
        if self.object and (self.layout_text or self.c_header):
            raise self.error("object", "give one of layout, c_header and object")
        if self.object and not self.value_type:
            raise self.error("object", "name the record's type with value_type (e.g. 'struct event')")
        self.max_series = self._number(raw, "max_series", 10000, positive=True)
        if self.max_series != int(self.max_series) or self.max_series > 10_000_000:
            raise self.error("max_series", "give a whole number of series, at most 10,000,000")
        self.max_series = int(self.max_series)
        self.hist: HistogramSpec | None = None
        if self.type != "histogram":
            given = [k for k in _HIST_ONLY if k in raw]
            if given:
                raise self.error(given[0], f"applies to histograms (type: histogram), not to a {self.type}")
            return
        self.hist = HistogramSpec(self, raw)

    # -- checking ---------------------------------------------------------------------------

    def error(self, field: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: {field}: {problem}")

    def _required(self, raw: dict[str, Any], key: str) -> str:
        v = self._str(raw, key, required=True)
        assert v is not None
        return v

    def _str(self, raw: dict[str, Any], key: str, required: bool = False) -> str | None:
        v = raw.get(key)
        if v is None:
            if required:
                raise self.error(key, "required")
            return None
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise self.error(key, f"give a string, not {type(v).__name__}")
        return str(v)

    def _strings(self, raw: dict[str, Any], key: str) -> list[str] | None:
        v = raw.get(key)
        if v is None:
            return None
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise self.error(key, "give a list of names")
        return v

    def _number(self, raw: dict[str, Any], key: str, default: float | None, positive: bool = False) -> Any:
        v = raw.get(key, default)
        if v is None:
            return None
        n = _number(v)
        if n is None or not math.isfinite(n) or (positive and n <= 0):
            raise self.error(key, f"{v!r}: give a {'positive ' if positive else ''}number")
        return n

    def _formats(self, as_: Any) -> dict[str, str]:
        """``as:``, a mapping of field path -> display format (or label decoders: see
        export.labels), checked item by item (a key with a comma is one bad name, not two
        fields).  Label decoders go to ``self.decoders``."""
        if not as_:
            return {}
        if not isinstance(as_, dict):
            raise self.error("as", "give a mapping of field: format, e.g. {saddr: ip}")

        formats: dict[str, str] = {}
        for k, v in as_.items():
            if not isinstance(k, str) or not isinstance(v, (str, dict, list)):
                raise self.error("as", f"{quote(str(k))[:60]}: give a field name and a format name, e.g. saddr: ip")
            if "," in k or "=" in k:
                raise self.error("as", f"{quote(k)}: one field per key (a name, NAME.FIELD or NAME[I])")
            fmt, decoders = parse_decoders(v, lambda text, k=k: self.error("as", f"{k}: {text}"))
            if decoders:
                self.decoders[k] = decoders
            if fmt is None:
                continue
            try:
                formats.update(parse_spec(f"{k}={fmt}"))
            except UsageError as err:
                raise self.error("as", str(err).removeprefix("as ")) from None  # the field says it
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

    def make_layout(self) -> Layout | None:

        try:
            layout = Layout.parse(self.layout_text) if self.layout_text else None
            if self.c_header is None:
                return layout
            return choose(layout, False, self.c_header, self.key_type, self.value_type, self.include_dirs)
        except UsageError as err:
            raise self.error("layout" if self.layout_text else "c_header", str(err)) from None

    def help_text(self, exact_sum: bool = False) -> str:
        if self.help:
            base = self.help
        elif self.hist is not None:
            base = f"{self.hist.slots or 'counts'} of {self.map}"
        else:
            base = f"{self.value or 'value'} of {self.map}"
        if self.hist is not None and not self.hist.sum_slot and not exact_sum:
            base += " (sum estimated from bucket midpoints)"
        return base


# Buckets a linear histogram has at most (a slot of 4294967295 must not make a list of 4
# billion buckets); exp2 and bits have as many as a 64-bit value has slots.
MAX_LINEAR_BUCKETS = 4096


class HistogramSpec:
    """The histogram part of a metric (``type: histogram``): where the counts are, what
    each slot counts (the schemes of ``bpfmap hist``, plus ``fixed`` bounds), units."""

    def __init__(self, metric: Metric, raw: dict[str, Any]) -> None:
        self.slots = metric._str(raw, "slots")
        self.slot = metric._str(raw, "slot")
        if self.slots and self.slot:
            raise metric.error("slots", "give slots (an array of counts in the value) or slot (in the key), not both")
        if self.slots and metric.value:
            raise metric.error("value", "a histogram with slots in the value takes its counts from slots, not value")
        self.buckets = metric._str(raw, "buckets") or "exp2"
        if self.buckets not in BUCKETS:
            raise metric.error("buckets", f"{quote(self.buckets)}: choose one of {', '.join(BUCKETS)}")
        self.multiplier = metric._number(raw, "multiplier", 1.0, positive=True)
        self.step = metric._number(raw, "step", None, positive=True)
        self.min = metric._number(raw, "min", 0.0)
        if self.buckets == "linear" and self.step is None:
            raise metric.error("step", "linear buckets need step (the width of a slot)")
        if self.buckets != "linear" and ("step" in raw or "min" in raw):
            raise metric.error("step" if "step" in raw else "min", "applies to linear buckets")
        bounds = raw.get("bounds")
        if self.buckets == "fixed":
            if not isinstance(bounds, list) or not bounds:
                raise metric.error("bounds", "fixed buckets need bounds: a list of numbers, one per slot")
            bounds = [_number(b) for b in bounds]
            if not all(b is not None and math.isfinite(b) for b in bounds):
                raise metric.error("bounds", "give finite numbers, one per slot (+Inf is added after the last)")
            if any(b >= c for b, c in zip(bounds, bounds[1:])):
                raise metric.error("bounds", "must increase")
        elif bounds is not None:
            raise metric.error("bounds", "applies to fixed buckets")
        self.bounds: list[float] = [float(b) for b in bounds] if bounds else []
        sum_slot = raw.get("sum_slot", False)
        if not isinstance(sum_slot, bool):
            raise metric.error("sum_slot", "true or false")
        self.sum_slot = sum_slot

    @property
    def max_slots(self) -> int:
        """How many buckets (slots) the scheme has; a slot at or past it counts in +Inf."""
        if self.buckets == "fixed":
            return len(self.bounds)
        if self.buckets == "linear":
            return MAX_LINEAR_BUCKETS
        return MAX_SLOTS[canonical_scheme(self.buckets)]

    def slot_of(self, value: float) -> int:
        """The slot an event's value counts in: the first whose upper bound is at least
        the value (Prometheus's le), ``max_slots`` past the last."""
        highs = self.__dict__.get("_highs")
        if highs is None:
            highs = []
            for i in range(self.max_slots):
                b = self.slot_bounds(i)
                if b is None:
                    break
                highs.append(b[1])
            self.__dict__["_highs"] = highs
        return bisect.bisect_left(highs, value)

    def cumulative(self, counts: list[float], overflow: float = 0) -> tuple[list[tuple[str, float]], float]:
        """Cumulative (le, count) pairs ending with +Inf, and the sum estimated from midpoints
        (summed in slot units, multiplied once); ``overflow`` counts only in +Inf."""
        out: list[tuple[str, float]] = []
        running = 0.0
        estimate = 0.0
        for i, c in enumerate(counts):
            bounds = self.slot_bounds(i)
            if bounds is None or not math.isfinite(bounds[1] * self.multiplier):  # past the last bound
                overflow += c
                continue
            low, high = bounds
            le = high * self.multiplier
            running += c
            estimate += c * (low + high) / 2
            out.append((_le(le), running))
        if self.buckets == "fixed":  # every bound, also those no slot of this map reached
            for i in range(len(counts), len(self.bounds)):
                out.append((_le(self.bounds[i] * self.multiplier), running))
        out.append(("+Inf", running + overflow))
        return out, estimate * self.multiplier

    def slot_bounds(self, i: int) -> tuple[float, float] | None:
        """The values ``[low, high)`` slot ``i`` counts (in the map's units), None past the
        last fixed bound."""
        if self.buckets == "fixed":
            if i >= len(self.bounds):
                return None
            return (self.bounds[i - 1] if i else 0.0), self.bounds[i]
        low, high = slot_range(i, self.buckets, self.step or 1.0, self.min)
        return float(low), float(high)


def _le(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() or abs(x) >= 1e15 else f"{x:.1f}"


def rounded(x: float) -> float:
    """``x`` to 15 significant digits: a sum in slot units times the multiplier without
    the float noise of the product (10 slots of 1e-6 is 1e-05, not 9.999999999999999e-06)."""
    return float(f"{x:.15g}") if math.isfinite(x) else x


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


# Values in the config once YAML aliases are expanded: room for a static_map of
# labels.MAX_TABLE entries (two values each) and the rest of a config.
MAX_CONFIG_NODES = 262_144
MAX_CONFIG_DEPTH = 64  # levels of nesting


def read_config(path: str) -> list[Metric]:
    """The metrics of the YAML config at ``path``, checked (ConfigError names the metric
    and the field).  A key given twice in one mapping is an error, and so is a config
    that expands (through aliases) past MAX_CONFIG_NODES values or nests deeper than
    MAX_CONFIG_DEPTH: refused while it is parsed, before anything is built."""
    _need_libraries()
    import yaml

    text = read_text(path, "export config")
    loader = _strict_loader()
    try:
        _check_size(text, path, loader)
        data = yaml.load(text, Loader=loader)  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not YAML{where}: {getattr(err, 'problem', None) or err}") from None
    return parse_config(data, path)


def _strict_loader() -> type:
    """yaml.SafeLoader (libyaml's when PyYAML has it: several times faster) refusing a
    key given twice in one mapping (YAML says keys are unique; PyYAML keeps the last
    silently)."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is optional in PyYAML

    class StrictLoader(base):  # type: ignore[misc]  # PyYAML ships no types for its loaders
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


def _check_size(text: str, source: str, loader: type) -> None:
    """Refuse a config that is larger, with its aliases expanded, than MAX_CONFIG_NODES
    values (an alias bomb: a few hundred bytes that expand to billions) or nested deeper
    than MAX_CONFIG_DEPTH, at the parser event past the limit: what a config past the
    limits costs is bounded by what one at them costs, and nothing is built."""
    import yaml

    values = 0
    anchored: dict[str, int] = {}  # anchor -> the values it stands for
    open_: list[tuple[str | None, int]] = []  # collections being read: anchor, values before
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            values += anchored.get(event.anchor or "", 0)  # an unknown anchor is the loader's error
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if event.anchor is not None:
                anchored[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            open_.append((event.anchor, values))
            values += 1
            if len(open_) > MAX_CONFIG_DEPTH:
                raise ConfigError(f"{source}: nested too deeply to be a config (over {MAX_CONFIG_DEPTH} levels)")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_.pop()
            if anchor is not None:
                anchored[anchor] = values - before
        if values > MAX_CONFIG_NODES:
            raise ConfigError(f"{source}: more than {MAX_CONFIG_NODES:,} values once its aliases are expanded")


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
