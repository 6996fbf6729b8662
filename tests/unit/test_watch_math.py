"""watch's arithmetic on decoded values: diff, scale and total follow the value's shape."""

from __future__ import annotations

from bpfmap.live.watch import diff, scale, total


def test_diff_scale_total_follow_the_value_shape():
    new = {"pkts": 10, "bytes": 1000, "comm": "curl", "hist": [1, 2], "up": True}
    old = {"pkts": 4, "bytes": 400, "comm": "wget", "hist": [1, 0], "up": False}
    d = diff(new, old)
    assert d == {"pkts": 6, "bytes": 600, "comm": None, "hist": [0, 2], "up": None}
    assert scale(d, 0.5) == {"pkts": 3.0, "bytes": 300.0, "comm": None, "hist": [0.0, 1.0], "up": None}
    assert total(d) == 608
    assert diff(5, None) is None and total("x") is None
    assert diff([1, 2], [1]) == [None, None]  # a changed shape has nothing to subtract
