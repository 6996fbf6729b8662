"""Histogram slot schemes: what range of values slot ``i`` counts.  One vocabulary for
``bpfmap hist`` and ``bpfmap export`` (whose ``buckets:`` adds ``fixed`` bounds of its
own): the names exporters use (exp2, exp2zero) are the same schemes as log2 and bits.

- ``log2``, also called ``exp2`` (libbpf-tools ``log2l()``: ``slot = floor(log2(v))``):
  slot 0 holds 0 and 1, slot ``i`` holds ``[2^i, 2^(i+1))``.
- ``bits``, also called ``exp2zero`` (bit length, the kernel's ``fls64()``; bcc's
  ``bpf_log2l()``): slot 0 holds 0, slot ``i`` holds ``[2^(i-1), 2^i)``.
- ``linear`` (``slot = (v - min) / step``): slot ``i`` holds ``[min + i*step, min + (i+1)*step)``."""

from __future__ import annotations

from typing import Any

from ..errors import Param, UsageError, words

SCHEMES = ("log2", "exp2", "bits", "exp2zero", "linear")
_SAME = {"exp2": "log2", "exp2zero": "bits"}  # the names exporters use for the same slots
# slots a scheme has for 64-bit values (log2: floor(log2(2^64 - 1)) = 63; bits: 0..64)
MAX_SLOTS = {"log2": 64, "bits": 65}


def canonical_scheme(scheme: str) -> str:
    """``scheme``'s own name (exp2 is log2, exp2zero is bits)."""
    return _SAME.get(scheme, scheme)


def slot_range(slot: int, scheme: str = "log2", step: Any = 1, minimum: Any = 0) -> tuple[Any, Any]:
    """The values ``[low, high)`` slot ``slot`` counts under ``scheme`` (ints, or floats
    where ``step`` and ``minimum`` are)."""
    scheme = canonical_scheme(scheme)
    if scheme == "log2":
        return (0, 2) if slot == 0 else (1 << slot, 1 << (slot + 1))
    if scheme == "bits":
        return (0, 1) if slot == 0 else (1 << (slot - 1), 1 << slot)
    if scheme == "linear":
        return minimum + slot * step, minimum + (slot + 1) * step
    raise UsageError(f"histogram scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")


def check_scheme(scheme: str, step: int) -> None:
    """UsageError unless ``scheme`` is one of SCHEMES and ``step`` positive."""
    if scheme not in SCHEMES:
        raise UsageError(f"histogram scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
    if step < 1:
        raise UsageError(words(Param("step"), f" {step}: give a positive number"))
