"""Histogram slot schemes, labels and rendering: pure functions of their counts."""

from __future__ import annotations

import math
import random

import pytest

from bpfmap.errors import UsageError
from bpfmap.hist import Bucket, build, label, render, short, slot_range


def _log2_floor(v: int) -> int:  # libbpf-tools' log2l()
    return 0 if v < 2 else v.bit_length() - 1


@pytest.mark.parametrize(
    "scheme, slot_of", [("log2", _log2_floor), ("bits", lambda v: v.bit_length()), ("linear", lambda v: v // 10)]
)
def test_every_value_falls_in_its_slots_range(scheme, slot_of):
    rng = random.Random(7)
    for v in [0, 1, 2, 3, 4, 1023, 1024, 1 << 40] + [rng.randrange(1 << 32) for _ in range(500)]:
        low, high = slot_range(slot_of(v), scheme, step=10)
        assert low <= v < high, (scheme, v, low, high)


def test_labels_use_powers_of_1024():
    assert [short(n) for n in (0, 1, 512, 1024, 3072, 1 << 20, 1 << 30, 1000)] == [
        "0",
        "1",
        "512",
        "1K",
        "3K",
        "1M",
        "1G",
        "1000",
    ]
    assert label(Bucket(1024, 2048, 0)) == "[1K, 2K)"
    assert label(Bucket(1, 2, 0)) == "[1]"


def test_build_rejects_negative_slots_and_renders_empty_counts():
    with pytest.raises(UsageError):
        build([(-1, 3)])
    (h,) = build([(0, 0), (1, 0)])
    assert h.buckets == [] and render(h) == ["(no counts)"]
    assert math.isclose(build([(2, 3)], "linear", step=5)[0].buckets[0].low, 10)


def test_one_scheme_vocabulary_for_hist_and_export():
    """exp2 is log2 and exp2zero is bits, in bpfmap hist and in export's buckets: the same
    ranges from the same function, and the largest 64-bit value falls in the last slot."""
    from bpfmap.export.config import Metric

    for alias, name in (("exp2", "log2"), ("exp2zero", "bits")):
        spec = Metric({"name": "m", "map": "/x", "type": "histogram", "buckets": alias}, 0, "test").hist
        assert spec is not None
        for i in range(spec.max_slots):
            assert slot_range(i, alias) == slot_range(i, name)
            assert spec.slot_bounds(i) == tuple(map(float, slot_range(i, name)))
        low, high = slot_range(spec.max_slots - 1, name)
        assert low <= (1 << 64) - 1 < high
    log2 = Metric({"name": "m", "map": "/x", "type": "histogram", "buckets": "log2"}, 0, "test").hist
    assert log2 is not None and log2.max_slots == 64


def test_hist_schemes_and_sum_slot():
    from bpfmap.hist import build_in_value

    entries = [({"pid": 1}, {"slots": [1, 0, 2, 0, 30]})]
    [bits] = build_in_value(entries, "slots", scheme="exp2zero", sum_slot=True)
    assert [(b.low, b.high, b.count) for b in bits.buckets] == [(0, 1, 1), (1, 2, 0), (2, 4, 2)]
    assert bits.sum == 30 and bits.group == {"pid": 1}
    [lin] = build_in_value(entries, "slots", scheme="linear", step=10, minimum=100)
    assert [(b.low, b.high) for b in lin.buckets][-1] == (140, 150)
    assert lin.percentile(100) == 150
