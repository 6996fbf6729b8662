"""The fast output paths against the plain ones, on random layouts (hypothesis): a dump
writes a batch with one %-format when the codecs have templates, and one line at a time
otherwise; both must give every byte the contract says.  Maps are real: entries go into a
kernel hash map and come back through a batch dump."""

from __future__ import annotations

import io

from helpers import examples
from helpers.layouts import FLAT_LEAVES, flat_side
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfmap import Map, View
from bpfmap.layout import Layout
from bpfmap.output import item_writer, write_entries, write_item_batches
from bpfmap.output.entries import _line_function

layouts = st.tuples(
    st.one_of(
        st.sampled_from(FLAT_LEAVES), st.lists(st.sampled_from(FLAT_LEAVES), min_size=1, max_size=4).map(flat_side)
    ),
    st.one_of(
        st.sampled_from(FLAT_LEAVES), st.lists(st.sampled_from(FLAT_LEAVES), min_size=1, max_size=5).map(flat_side)
    ),
)


def plain(fmt: str, batches, kc, vc) -> str:
    line = _line_function(fmt, kc, vc, False)
    return "".join(line(e) for keys, values in batches for e in zip(keys, values))


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts, seed=st.binary(min_size=8, max_size=8), count=st.integers(1, 40))
def test_fast_and_plain_writers_give_the_same_bytes(bpffs, layout, seed, count):
    import random

    lay = Layout.parse(f"{layout[0]}:{layout[1]}")
    ks, vs = lay.key.size, lay.value.size
    rng = random.Random(seed)
    with Map.create("hash", ks, vs, max_entries=64) as m:
        for _ in range(count):
            value = bytes(rng.randrange(256) for _ in range(vs))
            if "bool" in layout[1]:  # a bool byte other than 0/1 does not round-trip; keep them canonical
                value = bytes(b & 1 for b in value)
            key = bytes(rng.randrange(256) for _ in range(ks))
            if "bool" in layout[0]:
                key = bytes(b & 1 for b in key)
            m.update(key, value)
        view = View(m, lay)
        raw = list(m.batches())
    batches = [view.decode_batch(k, v, n) for k, v, n in raw]
    for fmt in ("text", "jsonl", "json"):
        out = io.StringIO()
        write_entries(batches, fmt, view.key, view.value, False, out)
        if fmt != "json":
            assert out.getvalue() == plain(fmt, batches, view.key, view.value), (fmt, layout)
        lines = item_writer(fmt, view.key, view.value)  # raw batches straight to items (dump's fastest path)
        if lines is not None:
            direct = io.StringIO()
            write_item_batches(raw, fmt, lines, direct)
            assert direct.getvalue() == out.getvalue(), (fmt, layout)


def test_the_comparison_can_fail(bpffs, monkeypatch):
    """A fast path that wrote one byte differently would be caught: the same check on a
    value template that is wrong on purpose fails."""
    import bpfmap.output.templates as templates
    from bpfmap.output.templates import templates_of

    lay = Layout.parse("u32:u64")
    with Map.create("hash", 4, 8, max_entries=4) as m:
        m.update((1).to_bytes(4, "little"), (5).to_bytes(8, "little"))
        view = View(m, lay)
        batches = list(view.column_batches())
    wrong = templates_of(view.value)._replace(text="%s ")  # a stray space
    monkeypatch.setattr(templates, "templates_of", lambda c: wrong if c is view.value else templates_of(c))
    out = io.StringIO()
    write_entries(batches, "text", view.key, view.value, False, out)
    assert out.getvalue() != plain("text", batches, view.key, view.value)


ENUM_HEADER = """
enum state { IDLE = 0, BUSY = 1, GONE = 7 };
struct rec { enum state st; char name[6]; _Bool on; float f; double d; unsigned int n; };
"""


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.binary(min_size=8, max_size=8), count=st.integers(1, 40))
def test_enums_strings_bools_and_floats_from_c_take_the_same_bytes(bpffs, tmp_path_factory, seed, count):
    """Values JSON must escape or convert (enum names, strings with any bytes, bools,
    NaN and infinite floats): the JSON template path escapes them as json.dumps does."""
    import random
    import struct

    header = tmp_path_factory.getbasetemp() / "rec.h"
    header.write_text(ENUM_HEADER)
    lay = Layout.from_c(str(header), "unsigned int", "struct rec")
    assert _batch_template_json(lay) is not None
    rng = random.Random(seed)
    specials = [float("nan"), float("inf"), float("-inf"), 0.1, -2.5, 1e300]
    with Map.create("hash", 4, lay.value.size, max_entries=64) as m:
        for i in range(count):
            name = bytes(rng.choice([0x41, 0x22, 0x5C, 0x0A, 0xC3, 0xA9, 0xFF, 0x00, 0x7F]) for _ in range(6))
            value = struct.pack(
                "=I6s?xfd I",
                rng.choice([0, 1, 7, 3]),
                name,
                rng.choice([True, False]),
                rng.choice(specials[:-1] + [3e38]),  # f32
                rng.choice(specials),
                rng.randrange(1 << 32),
            )
            value = value.ljust(lay.value.size, b"\0")[: lay.value.size]
            m.update(i.to_bytes(4, "little"), value)
        view = View(m, lay)
        raw = list(m.batches())
    batches = [view.decode_batch(k, v, n) for k, v, n in raw]
    out = io.StringIO()
    write_entries(batches, "jsonl", view.key, view.value, False, out)
    assert out.getvalue() == plain("jsonl", batches, view.key, view.value)
    lines = item_writer("jsonl", view.key, view.value)  # the columns converted for JSON
    assert lines is not None
    direct = io.StringIO()
    write_item_batches(raw, "jsonl", lines, direct)
    assert direct.getvalue() == out.getvalue()


def _batch_template_json(lay):
    from bpfmap.output.entries import _batch_template

    return _batch_template("jsonl", lay.key, lay.value, False)


# -- nested structs: one generated decoder against the field-by-field one ------------------------


# -- whole rows: nested structs and arrays formatted a batch at a time ---------------------------


# -- unions, bitfields and anonymous members (C declarations) ------------------------------------
