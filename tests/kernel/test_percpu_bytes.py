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
