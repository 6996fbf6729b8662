"""Per-CPU dumps reduced on raw batches (``--percpu sum|max|min|avg``, ``--cpu N``) reach a
UTF-8 stream that is not a terminal as bytes, as a plain dump's lines do
(output.entries.utf8_sink): the bytes the text path writes, with no line made as text and
encoded again."""

from __future__ import annotations

import io

import pytest

from bpfmap import Map, View
from bpfmap.layout import Layout
from bpfmap.output.dump import dump

pytestmark = pytest.mark.kernel

LAYOUT = Layout.parse("id=u32:n=u64,name=char[8]")


class Spy(io.TextIOWrapper):
    """A UTF-8 text stream over bytes that counts what goes through its text layer."""

    texts = 0

    def write(self, s: str) -> int:
        self.texts += len(s)
        return super().write(s)


@pytest.fixture(scope="module")
def view():
    with Map.create("percpu_hash", LAYOUT.key.size, LAYOUT.value.size, max_entries=5000) as m:
        for i in range(4100):  # two chunks and a part
            slots = [LAYOUT.value.encode({"n": i * 3 + c, "name": f"né{i % 7}"}) for c in range(m.ncpus)]
            m.update(LAYOUT.key.encode({"id": i}), slots)  # CPUs' values apart: averages with fractions
        yield View(m, LAYOUT)


@pytest.mark.parametrize("how", [{"percpu": "sum"}, {"percpu": "max"}, {"percpu": "avg"}, {"cpu": 0}])
@pytest.mark.parametrize("fmt", ["text", "jsonl", "json"])
def test_a_reduced_dump_writes_the_texts_bytes(view, how, fmt):
    as_text = io.StringIO()
    assert dump(view, as_text, fmt, **how) == 4100
    raw = io.BytesIO()
    spy = Spy(raw, encoding="utf-8", newline="")
    assert dump(view, spy, fmt, **how) == 4100
    spy.flush()
    assert raw.getvalue() == as_text.getvalue().encode()
    assert spy.texts <= len("[\n  ") + len("\n]\n")  # json's frame at most: no line through the text layer


def test_avg_of_u64_counters_on_a_map_is_each_entrys_float():
    """--percpu avg of a value made of u64s (summed as lanes of one integer, output.percpu)
    on a real per-CPU map: each entry's line holds the float mean of its CPUs' values, a
    chunk with a value past the lanes' bound (written the other way) too."""
    import json

    lay = Layout.parse("id=u32:a=u64,b=u64")
    n = 4500  # three chunks
    with Map.create("percpu_hash", lay.key.size, lay.value.size, max_entries=n) as m:
        means = {}
        for i in range(n):
            per = [(i * 7 + c * 3, (i * 11 + c) * (1 << 40 if i == 4400 else 1)) for c in range(m.ncpus)]
            m.update(lay.key.encode({"id": i}), [lay.value.encode({"a": a, "b": b}) for a, b in per])
            means[i] = {"a": sum(a for a, _b in per) / m.ncpus, "b": sum(b for _a, b in per) / m.ncpus}
        out = io.StringIO()
        assert dump(View(m, lay), out, "jsonl", percpu="avg") == n
    rows = out.getvalue().splitlines()
    assert len(rows) == n
    for line in rows:
        row = json.loads(line)
        assert line == json.dumps({"key": row["key"], "value": means[row["key"]["id"]]})
