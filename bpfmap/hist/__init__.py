"""Histograms kept in maps, in the two shapes programs keep them:

- slot in the key: an array or hash whose key is a bucket (slot) number and whose value
  is a count (bcc, bpftrace, some libbpf-tools);
- slots in the value: a value holding an array of slot counts (``struct hist { __u32
  slots[26]; char comm[16]; }``), one histogram per entry, keyed by pid, cgroup, disk...
  (most libbpf-tools), or a global variable holding such an array or an array of them.

Slot schemes (what range of values slot ``i`` counts: log2/exp2, bits/exp2zero, linear)
are ``hist/schemes.py``'s, the one vocabulary of ``bpfmap hist`` and ``bpfmap export``.

Where the counts are is ``hist/extract.py``'s (the one extractor ``hist``, ``watch --hist``
and ``export`` read maps through).  Per-CPU counts are summed.  A key that is a struct
names its slot field (default: a field called ``slot``, else the last numeric field); its
other fields group entries into one histogram each, as bcc's
``print_log2_hist(section_header=...)`` does.

Public: :func:`histograms` (``from_view``) and :func:`build`, :func:`build_in_value` make
:class:`Histogram` objects of :class:`Bucket` rows; :func:`subtract`, :func:`render`,
:func:`label`, :func:`short` and the ``UNITS``, ``PERCENTILES`` and ``BAR_WIDTH`` the
command line shows them with; :class:`SlotError` when the counts are not where asked.
This package's own code runs on its two modules, so importing it loads them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import Param, UsageError, words
from ..layout import fields, format_text
from ..view import aggregate
from .extract import Place, SlotError, Tally, in_key, locate
from .schemes import check_scheme, slot_range

UNITS = ("nsecs", "usecs", "msecs", "secs", "bytes", "kbytes")
PERCENTILES = (50.0, 90.0, 99.0)
BAR_WIDTH = 52  # bpftrace's


class Bucket:
    """Values in ``[low, high)`` were seen ``count`` times."""

    __slots__ = ("low", "high", "count")

    def __init__(self, low: int, high: int, count: int) -> None:
        self.low, self.high, self.count = low, high, count

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "count": self.count}


class Histogram:
    """Buckets from the first to the last non-empty one (empty ones between kept);
    ``group`` is what this histogram is for: the non-slot key fields, or for slots in the
    value the key's fields and label fields (None for a plain key or a merged one);
    ``sum`` the sum of the values counted when the map keeps one (a sum slot)."""

    def __init__(self, group: dict[str, Any] | None, buckets: list[Bucket], sum: int | None = None) -> None:
        self.group, self.buckets, self.sum = group, buckets, sum
        self.unit: str | None = None

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)

    def percentile(self, p: float) -> float | None:
        """The value below which ``p`` percent of the counts lie, interpolated linearly
        inside its bucket (as histogram_quantile does); None with no counts."""
        total = self.total
        if not total:
            return None
        target = total * p / 100.0
        seen = 0
        for b in self.buckets:
            if b.count and seen + b.count >= target:
                return b.low + (b.high - b.low) * (target - seen) / b.count
            seen += b.count
        return float(self.buckets[-1].high)

    def to_dict(self, percentiles: tuple[float, ...] = PERCENTILES) -> dict[str, Any]:
        return {
            "group": self.group,
            "total": self.total,
            "buckets": [b.to_dict() for b in self.buckets],
            "percentiles": {_pname(p): _round(self.percentile(p)) for p in percentiles},
            "sum": self.sum,
            "unit": self.unit,
        }


def _pname(p: float) -> str:
    return f"p{p:g}"


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


# hist's parameter of each of a SlotError's
_PARAMS = {"slot": "slot_field", "count": "count_field", "slots": "slots"}


def _worded(err: SlotError, given: dict[str, str | None]) -> UsageError:
    """The extractor's refusal in hist's words: the parameter at fault, or what to give."""
    param, name = _PARAMS[err.param], given.get(err.param)
    if "must be a number" in err.problem:
        return UsageError(
            words(
                f"hist: {err.problem}; give a layout (",
                Param("layout", "u32:u64"),
                ") or pick a field (",
                Param("slot_field", "NAME"),
                " / ",
                Param("count_field", "NAME"),
                ")",
            )
        )
    if name is not None:
        return UsageError(words("hist ", Param(param), f" {name}: {err.problem}"))
    if err.problem.endswith("; name one"):
        return UsageError(words(f"hist: {err.problem.removesuffix('; name one')}; give ", Param(param, "NAME")))
    return UsageError(f"hist: {err.problem}")


def build(
    entries: Iterable[tuple[Any, Any]],
    scheme: str = "log2",
    step: int = 1,
    minimum: int = 0,
    slot_field: str | None = None,
    count_field: str | None = None,
) -> list[Histogram]:
    """Histograms from decoded (key, value) entries (per-CPU values already summed), the
    slot in the key: a struct key's other fields group them.  Slots are numbers; missing
    slots (a hash map) count 0."""
    check_scheme(scheme, step)
    tally: Tally | None = None
    given = {"slot": slot_field, "count": count_field}
    try:
        for key, value in entries:
            if tally is None:
                tally = Tally(in_key(key, value, slot_field, count_field))
            group = tally.place.rest(key)
            tally.add(key, value, tuple(map(repr, group.values())) if group is not None else (), group)
    except SlotError as err:
        raise _worded(err, given) from None
    return [
        _from_counts(c.group, c.by_slot, scheme, step, minimum, None) for c in (tally.groups.values() if tally else ())
    ]


def build_in_value(
    entries: Iterable[tuple[Any, Any]],
    slots: str,
    scheme: str = "log2",
    step: int = 1,
    minimum: int = 0,
    labels: list[str] | None = None,
    merge: bool = False,
    sum_slot: bool = False,
    keyed: bool = True,
) -> list[Histogram]:
    """Histograms from values that hold their slot counts: the array at ``slots`` (a
    field path; "" for the value itself), one histogram per entry (and per inner array
    when it holds arrays), headed by the key's fields (``keyed``) and the ``labels``
    fields of the value (default: its string fields, like ``comm``); ``merge`` sums
    them all into one.  An array of arrays, or of structs each holding one (a .bss
    ``struct hist hists[N]``), gives one histogram per element, labelled by its index
    (and the element's strings).  ``sum_slot``: the array's last element is the sum of the values."""
    check_scheme(scheme, step)
    tally = Tally(Place(slots), sum_slot)
    label_names = labels

    def per_row(i: int, beside: dict[str, Any], gid: Any, group: Any) -> tuple[Any, Any]:
        if merge:
            return gid, None
        return (gid, i), {**(group or {}), "index": i, **(beside if labels is None else {})}

    try:
        for n, (key, value) in enumerate(entries):
            if label_names is None:  # default: the value's strings (comm), when entries stand for something
                strings = [k for k, v in value.items() if isinstance(v, str)] if isinstance(value, dict) else []
                label_names = strings if keyed else []
            group: dict[str, Any] = {}
            if keyed:
                group.update(key if isinstance(key, dict) else {"key": key})
            for name in label_names:
                group[name] = fields.select(value, name)
            tally.add(key, value, () if merge else n, None if merge else group or None, per_row)
    except SlotError as err:
        raise _worded(err, {"slots": slots or "value"}) from None
    total = sum_slot or None
    return [
        _from_counts(c.group, c.by_slot, scheme, step, minimum, c.sum if total else None) for c in tally.groups.values()
    ]


def _from_counts(
    group: dict[str, Any] | None, counts: dict[int, Any], scheme: str, step: int, minimum: int, total_sum: Any
) -> Histogram:
    """A histogram of slot counts (slot -> count): buckets from the first to the last
    non-empty slot, the empty ones between kept."""
    used = [i for i, c in counts.items() if c]
    if not used:
        return Histogram(group, [], total_sum)
    lo, hi = min(used), max(used)
    return Histogram(
        group, [Bucket(*slot_range(i, scheme, step, minimum), counts.get(i, 0)) for i in range(lo, hi + 1)], total_sum
    )


def subtract(new: list[Histogram], old: list[Histogram]) -> list[Histogram]:
    """The counts ``new`` added since ``old`` (histograms matched by group): a live view's
    change since the last refresh."""
    before = {repr(h.group): {(b.low, b.high): b.count for b in h.buckets} for h in old}
    out = []
    for h in new:
        prev = before.get(repr(h.group), {})
        buckets = [Bucket(b.low, b.high, b.count - prev.get((b.low, b.high), 0)) for b in h.buckets]
        while buckets and not buckets[0].count:
            buckets.pop(0)
        while buckets and not buckets[-1].count:
            buckets.pop()
        d = Histogram(h.group, buckets, None)
        d.unit = h.unit
        out.append(d)
    return out


def from_view(
    view: Any,
    scheme: str = "log2",
    step: int = 1,
    minimum: int = 0,
    slot_field: str | None = None,
    count_field: str | None = None,
    slots: str | None = None,
    labels: list[str] | None = None,
    merge: bool = False,
    sum_slot: bool = False,
    unit: str | None = None,
    strict: bool = False,
) -> list[Histogram]:
    """The histograms a map (through a View) holds now: slots in the value when ``slots``
    names them or the values hold an array of counts (and no key slot field is named),
    else slot in the key.  Per-CPU counts are summed.  ``strict``: in-value options were
    given, so a map without slots in its values is an error."""
    import itertools

    entries: Iterable[tuple[Any, Any]] = view.entries()
    if view.percpu:
        entries = ((k, aggregate(v, "sum")) for k, v in entries)
    it = iter(entries)
    first = next(it, None)
    if first is None:
        return []
    entries = itertools.chain([first], it)
    try:
        place = locate(*first, slot_field, count_field, slots, strict or sum_slot)
    except SlotError as err:
        if err.param == "slots" and slots is None:
            raise UsageError(
                words(f"hist {view.map.ref}: the values hold no array of counts; give ", Param("slots", "FIELD"))
            ) from None
        raise _worded(err, {"slot": slot_field, "count": count_field, "slots": slots}) from None
    if place.slots is None:
        hists = build(entries, scheme, step, minimum, slot_field, count_field)
    else:
        single = view.map.kind.indexed and view.map.max_entries == 1  # a global-variable map: its key says nothing
        hists = build_in_value(entries, place.slots, scheme, step, minimum, labels, merge, sum_slot, keyed=not single)
    for h in hists:
        h.unit = unit
    return hists


histograms = from_view  # bpfmap.histograms(view, ...): the public name

_SUFFIXES = ("", "K", "M", "G", "T", "P", "E", "Z")


def short(n: int) -> str:
    """bpftrace's bucket labels: 1024 -> 1K, 3 << 20 -> 3M; other numbers as they are."""
    if n == 0:
        return "0"
    i = 0
    while n % 1024 == 0 and i < len(_SUFFIXES) - 1:
        n //= 1024
        i += 1
    return f"{n}{_SUFFIXES[i]}"


def label(b: Bucket) -> str:
    return f"[{short(b.low)}]" if b.high == b.low + 1 else f"[{short(b.low)}, {short(b.high)})"


def render(h: Histogram, width: int = BAR_WIDTH, percentiles: tuple[float, ...] = ()) -> list[str]:
    """bpftrace-style lines: ``[1K, 2K)   12 |@@@@@    |``; a group's fields head it, a
    unit names the values above the bars, requested percentiles (and the sum and mean when
    the map keeps a sum) follow them."""
    lines = []
    if h.group:
        lines.append(", ".join(f"{k} = {format_text(v)}" for k, v in h.group.items()))  # strings as dump's text
    if not h.buckets:
        lines.append("(no counts)")
        return lines
    peak = max(b.count for b in h.buckets) or 1
    labels = [label(b) for b in h.buckets]
    lw = max(len(x) for x in labels + [h.unit or ""])
    cw = max(len(str(b.count)) for b in h.buckets)
    if h.unit:
        lines.append(f"{h.unit:<{lw}} {'count':>{cw}}")
    for text, b in zip(labels, h.buckets):
        bar = "@" * (b.count * width // peak) if b.count > 0 else ""
        lines.append(f"{text:<{lw}} {b.count:>{cw}} |{bar:<{width}}|")
    unit = f" {h.unit}" if h.unit else ""
    extra = [f"{_pname(p)} = {_round(h.percentile(p)):g}{unit}" for p in percentiles if h.total]
    if h.sum is not None and h.total:
        extra.append(f"sum = {h.sum}{unit}, mean = {h.sum / h.total:.3g}{unit}")
    if extra:
        lines.append(", ".join(extra))
    return lines


__all__ = [
    "BAR_WIDTH",
    "PERCENTILES",
    "UNITS",
    "Bucket",
    "Histogram",
    "SlotError",
    "build",
    "build_in_value",
    "from_view",
    "histograms",
    "label",
    "render",
    "short",
    "subtract",
]
