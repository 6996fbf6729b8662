"""How a map's values sit in the kernel's buffers: the one place that knows.

A per-CPU map's value is one slot per *possible* CPU, each rounded up to 8 bytes (the
stride; the kernel copies ``round_up(value_size, 8)`` per CPU); any other map's value is
``value_size`` bytes.  Batch buffers hold ``count`` such values back to back.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import KeyNotFound, UsageError
from ..types import map_type_label
from .columns import copy_columns


@functools.cache
def possible_cpus() -> int:
    """How many CPUs the kernel could ever bring online: per-CPU values have this many slots."""
    with open("/sys/devices/system/cpu/possible") as f:
        return len(parse_cpu_list(f.read()))


def parse_cpu_list(text: str) -> list[int]:
    """``0-3,6`` -> [0, 1, 2, 3, 6] (the kernel's cpulist format)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def round8(n: int) -> int:
    return (n + 7) & ~7


class ValueShape:
    """One map's values in buffers: ``ncpus`` slots of ``stride`` bytes each (1 and
    ``value_size`` unless per-CPU); ``entry`` bytes per element in a batch buffer."""

    __slots__ = ("value_size", "percpu", "ncpus", "stride", "entry")

    def __init__(self, value_size: int, percpu: bool, ncpus: int | None = None) -> None:
        """``ncpus``: the slots of a per-CPU value (default: this host's possible CPUs; a
        saved map's are the saving host's)."""
        self.value_size, self.percpu = value_size, percpu
        self.ncpus = (ncpus or possible_cpus()) if percpu else 1
        self.stride = round8(value_size) if percpu else value_size
        self.entry = self.stride * self.ncpus

    def pack(self, values: Sequence[bytes | bytearray | memoryview], what: str) -> bytes:
        """Per-CPU values (one for every CPU, or one per possible CPU) as the kernel's
        buffer; ``what`` starts the UsageError for a wrong count or size."""
        if len(values) == 1:
            values = list(values) * self.ncpus
        if len(values) != self.ncpus:
            raise UsageError(
                f"{what}: {len(values)} per-CPU values given, this machine has {self.ncpus} possible CPUs; "
                f"give one value (for all) or {self.ncpus}"
            )
        pad = b"\0" * (self.stride - self.value_size)
        out = bytearray()
        for v in values:
            if len(v) != self.value_size:
                raise UsageError(f"{what}: {len(v)} bytes given, the map's values are {self.value_size} bytes")
            out += bytes(v) + pad
        return bytes(out)

    def split(self, raw: bytes) -> bytes | list[bytes]:
        """One element's buffer as its value (per-CPU: the list of slots, padding dropped)."""
        if not self.percpu:
            return raw[: self.value_size]
        s, n = self.stride, self.value_size
        return [raw[i * s : i * s + n] for i in range(self.ncpus)]

    def slots(self, values: bytes, count: int) -> bytes:
        """A batch's values as ``count * ncpus`` slots of ``value_size`` bytes back to back
        (per-CPU padding dropped), for decoding many at once."""
        if self.stride == self.value_size:
            return values
        n, slots = self.value_size, count * self.ncpus
        out = bytearray(n * slots)
        copy_columns(out, n, 0, values, self.stride, 0, n, slots)
        return bytes(out)


class ValueReads:
    """What every map that can be read says the same way, a live Map as a SavedMap: its
    value layout as attributes (``shape``), its type's name, ``get``/``in`` over its
    ``lookup``, ``items``/``values`` over its ``batches``, and the check of a key's size."""

    shape: ValueShape
    type: Any
    ref: str
    key_size: int

    @property
    def percpu(self) -> bool:
        return self.shape.percpu

    @property
    def ncpus(self) -> int:
        return self.shape.ncpus

    @property
    def stride(self) -> int:
        return self.shape.stride

    @property
    def type_label(self) -> str:
        return map_type_label(int(self.type))

    def lookup(self, key: bytes, lock: bool = False) -> bytes | list[bytes]:
        raise NotImplementedError

    def batches(self, delete: bool = False, size: int | None = None) -> Iterator[tuple[bytes, bytes, int]]:
        raise NotImplementedError

    def items(self) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """(key, value) pairs read batch by batch through ``batches`` (a live map's:
        BPF_MAP_LOOKUP_BATCH where the kernel and the map type have it, GET_NEXT_KEY +
        LOOKUP otherwise, keys deleted during the walk skipped; a saved map's: as saved);
        a per-CPU value is a list of its slots."""
        ks, vs, split = self.key_size, self.shape.entry, self.shape.split
        for keys, values, count in self.batches():
            for i in range(count):
                yield keys[i * ks : (i + 1) * ks], split(values[i * vs : (i + 1) * vs])

    def values(self) -> Iterator[bytes | list[bytes]]:
        return (value for _key, value in self.items())

    def check_key(self, key: bytes) -> None:
        """Raise UsageError when ``key`` is not the map's key size."""
        if len(key) != self.key_size:
            raise UsageError(f"key for {self.ref}: {len(key)} bytes given, the map's keys are {self.key_size} bytes")

    def get(self, key: bytes, default: object = None) -> object:
        try:
            return self.lookup(key)
        except KeyNotFound:
            return default

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None
