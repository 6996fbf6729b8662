"""Histograms kept in maps: an array or hash whose key is a bucket (slot) number and
whose value is a count, as bcc, libbpf-tools and bpftrace programs keep them.

Slot schemes (what range of values slot ``i`` counts):

- ``log2`` (libbpf-tools ``log2l()``: ``slot = floor(log2(v))``): slot 0 holds 0 and 1,
  slot ``i`` holds ``[2^i, 2^(i+1))``.
- ``bits`` (bit length, the kernel's ``fls64()``; bcc's ``bpf_log2l()``): slot 0 holds 0,
  slot ``i`` holds ``[2^(i-1), 2^i)``.
- ``linear`` (``slot = (v - min) / step``): slot ``i`` holds ``[min + i*step, min + (i+1)*step)``.

Per-CPU counts are summed.  A key that is a struct names its slot field (default: a
field called ``slot``, else the last numeric field); its other fields group entries
into one histogram each, as bcc's ``print_log2_hist(section_header=...)`` does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import UsageError
from .view import is_number

SCHEMES = ("log2", "bits", "linear")
BAR_WIDTH = 52  # bpftrace's


class Bucket:
    """Values in ``[low, high)`` were seen ``count`` times."""

    __slots__ = ("low", "high", "count")

    def __init__(self, low: int, high: int, count: int) -> None:
        self.low, self.high, self.count = low, high, count

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "count": self.count}


class Histogram:
    """Buckets from the first to the last non-empty one (empty ones between kept);
    ``group`` is the non-slot key fields this histogram is for (None for a plain key)."""

    def __init__(self, group: dict | None, buckets: list[Bucket]) -> None:
        self.group, self.buckets = group, buckets

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)

    def to_dict(self) -> dict:
        return {"group": self.group, "total": self.total, "buckets": [b.to_dict() for b in self.buckets]}


def slot_range(slot: int, scheme: str = "log2", step: int = 1, minimum: int = 0) -> tuple[int, int]:
    """The values ``[low, high)`` slot ``slot`` counts under ``scheme``."""
    if scheme == "log2":
        return (0, 2) if slot == 0 else (1 << slot, 1 << (slot + 1))
    if scheme == "bits":
        return (0, 1) if slot == 0 else (1 << (slot - 1), 1 << slot)
    if scheme == "linear":
        return minimum + slot * step, minimum + (slot + 1) * step
    raise UsageError(f"histogram scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")


def _number(obj: Any, what: str) -> int:
    if not is_number(obj):
        raise UsageError(
            f"hist: the {what} must be a number, not {obj!r}; give a layout (--layout u32:u64) "
            f"or pick a field (--slot NAME / --field NAME)"
        )
    return obj


def _pick(obj: Any, name: str | None, what: str, option: str) -> Any:
    """A numeric field of a struct: ``name``, else (keys) ``slot``, else the last numeric one."""
    if not isinstance(obj, dict):
        if name is not None:
            raise UsageError(f"hist {option} {name}: the {what} is not a struct")
        return obj
    if name is not None:
        if name not in obj:
            raise UsageError(f"hist {option} {name}: the {what} has fields {', '.join(obj)}")
        return name
    if what == "key" and "slot" in obj:
        return "slot"
    numeric = [k for k, v in obj.items() if is_number(v)]
    if not numeric:
        raise UsageError(f"hist: the {what} has no numeric field; give {option} NAME")
    return numeric[-1] if what == "key" else numeric[0]


def build(
    entries: Iterable[tuple[Any, Any]],
    scheme: str = "log2",
    step: int = 1,
    minimum: int = 0,
    slot_field: str | None = None,
    count_field: str | None = None,
) -> list[Histogram]:
    """Histograms from decoded (key, value) entries (per-CPU values already summed).
    Slots are numbers; missing slots (a hash map) count 0."""
    if scheme not in SCHEMES:
        raise UsageError(f"histogram scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
    if step < 1:
        raise UsageError(f"--step {step}: give a positive number")
    groups: dict[tuple, tuple[dict | None, dict[int, int]]] = {}
    key_field = value_field = None
    first = True
    for key, value in entries:
        if first:
            key_field = _pick(key, slot_field, "key", "--slot")
            value_field = _pick(value, count_field, "value", "--field")
            first = False
        if isinstance(key, dict):
            slot = _number(key[key_field], "slot")
            group = {k: v for k, v in key.items() if k != key_field}
            gid = tuple(map(repr, group.values()))
        else:
            slot, group, gid = _number(key, "key (slot)"), None, ()
        count = _number(value[value_field] if isinstance(value, dict) else value, "value (count)")
        if slot < 0:
            raise UsageError(f"hist: slot {slot} is negative; is the key signed?")
        counts = groups.setdefault(gid, (group, {}))[1]
        counts[int(slot)] = counts.get(int(slot), 0) + count
    out = []
    for group, counts in groups.values():
        used = [s for s, c in counts.items() if c]
        if not used:
            out.append(Histogram(group, []))
            continue
        lo, hi = min(used), max(used)
        out.append(
            Histogram(
                group, [Bucket(*slot_range(s, scheme, step, minimum), counts.get(s, 0)) for s in range(lo, hi + 1)]
            )
        )
    return out


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


def render(h: Histogram, width: int = BAR_WIDTH) -> list[str]:
    """bpftrace-style lines: ``[1K, 2K)   12 |@@@@@    |``; a group's fields head it."""
    lines = []
    if h.group:
        lines.append(", ".join(f"{k} = {v}" for k, v in h.group.items()))
    if not h.buckets:
        lines.append("(no counts)")
        return lines
    peak = max(b.count for b in h.buckets) or 1
    labels = [label(b) for b in h.buckets]
    lw = max(len(x) for x in labels)
    cw = max(len(str(b.count)) for b in h.buckets)
    for text, b in zip(labels, h.buckets):
        bar = "@" * (b.count * width // peak)
        lines.append(f"{text:<{lw}} {b.count:>{cw}} |{bar:<{width}}|")
    return lines
