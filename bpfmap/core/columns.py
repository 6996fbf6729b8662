"""Fixed-size records moved between buffers a column at a time.

One strided memoryview assignment per unit-wide column of the records (8, 4, 2 or 1
bytes: the widest that every stride, offset and size is a multiple of), at C speed,
instead of a Python slice per record: per-CPU slots without their padding, a dump's keys
and values joined into rows, a ring buffer's records without their headers."""

from __future__ import annotations

from typing import Any

_CODES = {8: "Q", 4: "I", 2: "H", 1: "B"}


def copy_columns(
    dst: Any, dst_stride: int, dst_at: int, src: Any, src_stride: int, src_at: int, size: int, count: int
) -> None:
    """Copy ``size`` bytes of each of ``count`` records from ``src`` (records
    ``src_stride`` bytes apart, the bytes at ``src_at`` of each) into ``dst`` (records
    ``dst_stride`` apart, at ``dst_at`` of each).  ``dst`` is writable and holds exactly
    ``count`` records; ``src`` at least that many."""
    if not size or not count:
        return
    if size == dst_stride == src_stride:  # back to back on both sides: one copy
        memoryview(dst)[: size * count] = memoryview(src)[: size * count]
        return
    unit = next(u for u in (8, 4, 2, 1) if (dst_stride | dst_at | src_stride | src_at | size) % u == 0)
    code = _CODES[unit]
    d = memoryview(dst).cast(code)  # type: ignore[call-overload]  # one of Q I H B
    s = memoryview(src)[: count * src_stride].cast(code)  # type: ignore[call-overload]
    ds, da, ss, sa = dst_stride // unit, dst_at // unit, src_stride // unit, src_at // unit
    for j in range(size // unit):
        d[da + j :: ds] = s[sa + j :: ss]
