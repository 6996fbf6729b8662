"""The fast output paths against the plain ones, on random layouts and bytes (hypothesis),
without maps: rows, sorting, per-CPU reductions and event records written a batch at a
time give every byte the plain path gives."""

from __future__ import annotations

import contextlib
import io

import pytest
from helpers import examples
from helpers.layouts import FLAT_LEAVES, flat_side
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bpfmap.errors import UsageError
from bpfmap.layout import Layout
from bpfmap.output import item_writer, write_entries, write_item_batches
from bpfmap.output.entries import _line_function


def test_the_random_layouts_take_the_fast_path():
    """Most of the layouts drawn have templates on both sides (else the comparisons in
    tests/kernel/test_fast_paths.py would compare the plain path with itself)."""
    from bpfmap.output.entries import _batch_template

    lay = Layout.parse("f0=u8,f1=ipv4:f0=be32,f1=hex[3],f2=u128")
    assert _batch_template("text", lay.key, lay.value, False) is not None
    assert _batch_template("jsonl", lay.key, lay.value, False) is not None
    assert item_writer("jsonl", lay.key, lay.value) is not None
    assert item_writer("text", Layout.parse("u32:u64").key, Layout.parse("u32:u64").value) is not None


@settings(max_examples=examples(40), deadline=None)
@given(
    layout=st.lists(st.sampled_from(FLAT_LEAVES), min_size=1, max_size=4).map(flat_side),
    seed=st.binary(min_size=8, max_size=8),
    cpus=st.booleans(),
)
def test_event_records_batch_path_gives_the_line_path_bytes(layout, seed, cpus):
    """events: a batch of whole records formatted by one %-format, against each record
    formatted alone (as records of another size are)."""
    import random

    from bpfmap.cli.events import _record_lines
    from bpfmap.output import json_dumps
    from bpfmap.streams.events import Record, RecordDecoder

    codec = Layout.parse(layout).bare
    rng = random.Random(seed)
    records = []
    for i in range(20):
        data = bytes(rng.randrange(256) for _ in range(codec.size))
        if "bool" in layout:
            data = bytes(b & 1 for b in data)
        records.append(Record(data, i % 3 if cpus else None))
    dec = RecordDecoder(codec)
    for fmt in ("text", "jsonl"):
        n, text = _record_lines(dec, records, fmt)
        values = [codec.decode(r.data) for r in records]
        if fmt == "text":
            expected = "".join(codec.format(v) + "\n" for v in values)
        else:
            expected = "".join(
                json_dumps({"cpu": r.cpu, "value": v} if r.cpu is not None else {"value": v}) + "\n"
                for r, v in zip(records, values)
            )
        assert (n, text) == (len(records), expected), (fmt, layout)
        if not cpus:  # a ring buffer's run of same-sized records, packed: the same lines
            from bpfmap.streams.events import Packed

            packed = Packed(b"".join(r.data for r in records), codec.size, len(records))
            assert _record_lines(dec, packed, fmt) == (n, text), (fmt, layout)
    # a batch with a short record goes record by record (the short one decodes in part)
    n, text = _record_lines(dec, records[:2] + [Record(records[2].data[:1], None)], "jsonl")
    assert n == 3 and text.count("\n") == 3


NESTED_LEAVES = [
    "u8",
    "u16",
    "u32",
    "u64",
    "s16",
    "be16",
    "be32",
    "bool",
    "ipv4",
    "ipv6",
    "mac",
    "char[3]",
    "hex[2]",
    "f32",
]


def _nested_type(depth: int = 0):
    leaf = st.sampled_from(NESTED_LEAVES)
    array = st.tuples(st.sampled_from(NESTED_LEAVES), st.integers(1, 5)).map(lambda p: f"{p[0]}[{p[1]}]")
    if depth >= 2:
        return st.one_of(leaf, array)
    sub = st.lists(_nested_type(depth + 1), min_size=1, max_size=3).map(
        lambda ts: "{" + ",".join(f"g{i}={t}" for i, t in enumerate(ts)) + "}"
    )
    sub_array = st.tuples(sub, st.integers(1, 3)).map(lambda p: f"{p[0]}[{p[1]}]")
    return st.one_of(leaf, array, sub, sub_array)


nested_layouts = st.lists(_nested_type(), min_size=1, max_size=4).map(
    lambda ts: ",".join(f"f{i}={t}" for i, t in enumerate(ts))
)


@settings(max_examples=examples(80), deadline=None)
@given(layout=nested_layouts, data=st.binary(min_size=2048, max_size=2048))
def test_nested_structs_decode_as_field_by_field(layout, data):
    from bpfmap.layout.codec import field_by_field
    from bpfmap.layout.model import Struct

    codec = Layout.parse(layout).bare
    t = codec.type
    assert isinstance(t, Struct)
    n = max(1, min(8, len(data) // t.size))
    buf = (data * (1 + n * t.size // len(data)))[: n * t.size]
    slow = field_by_field(t)
    want = [slow(buf, i * t.size) for i in range(n)]
    assert repr(codec.decode_many(buf, n)) == repr(want), layout
    assert repr(codec.decode(buf[: t.size])) == repr(want[0]), layout


def test_nested_layouts_take_the_generated_decoder():
    from bpfmap.layout.codec import _whole_struct

    t = Layout.parse("a={x=u32,y=be16[3]}[2],b=char[4],c=u64").bare.type
    assert _whole_struct(t) is not None
    from bpfmap.layout.cdecl import CDecls

    decls = CDecls("struct in { unsigned x : 3; }; struct out { struct in i; unsigned y; };", "b.h", ["struct out"])
    assert _whole_struct(decls.resolve("struct out")) is None  # bitfields keep the field-by-field decoder


def counts(top: int) -> st.SearchStrategy[int]:
    """Entry counts: every count up to ``top`` under a deep profile; under the ci profile up
    to 200 (a batch's rows are formatted one way whatever their number; the chunk's edge,
    2048 entries, is an @example where it matters)."""
    return st.integers(1, top if settings.default.max_examples > 100 else 200)


def _rows_against_plain(lay, data: bytes, count: int, ncpus: int | None = None) -> None:
    """row_writer's lines for ``count`` entries cut from ``data`` against the decoded
    entries written one line at a time (text, jsonl) and framed (json); ``ncpus``: the
    values per-CPU, a slot rounded up to 8 bytes each, as the kernel gives them."""
    from bpfmap.output.rows import row_writer

    ks, vs = lay.key.size, lay.value.size
    stride = vs if ncpus is None else (vs + 7) & ~7
    entry = stride * (ncpus or 1)
    buf = data * (1 + count * (ks + entry) // len(data))
    keys, values = buf[: count * ks], buf[count * ks : count * (ks + entry)]
    slots = [lay.value.decode(values[i * stride : i * stride + vs]) for i in range(count * (ncpus or 1))]
    vals = slots if ncpus is None else [slots[i * ncpus : (i + 1) * ncpus] for i in range(count)]
    batch = (lay.key.decode_many(keys, count), vals)
    for fmt in ("text", "jsonl", "json", "csv", "table"):
        if fmt in ("csv", "table"):
            rows = item_writer(fmt, lay.key, lay.value, ncpus)
        else:
            rows = row_writer(fmt, lay.key, lay.value, ncpus)
        assert rows is not None, (fmt, lay.key.type, lay.value.type)
        want = io.StringIO()
        if fmt in ("json", "csv", "table"):
            write_entries([batch], fmt, lay.key, lay.value, ncpus is not None, want)
        else:
            line = _line_function(fmt, lay.key, lay.value, ncpus is not None)
            want.write("".join(map(line, zip(*batch))))
        got = io.StringIO()
        write_item_batches([(keys, values, count)], fmt, rows, got)
        assert got.getvalue() == want.getvalue(), fmt


@settings(max_examples=examples(12), deadline=None)
@given(
    key=st.one_of(st.sampled_from(FLAT_LEAVES), nested_layouts),
    value=nested_layouts,
    data=st.binary(min_size=64, max_size=4096),
    count=counts(3000),
)
# past one chunk of 2048 entries, whatever the profile draws
@example(key="a=u16,b={c=u8[3]}", value="x={y=s32,z=f64}[2],w=char[5]", data=bytes(range(256)) * 3, count=2049)
def test_rows_of_nested_layouts_give_the_plain_bytes(key, value, data, count):
    """Any bytes (NaN floats, bools other than 0/1, strings with no NUL or bad UTF-8),
    nested structs and arrays on both sides, batches past one chunk (2048 entries)."""
    _rows_against_plain(Layout.parse(f"{key}:{value}"), data, count)


@settings(max_examples=examples(10), deadline=None)
@given(
    key=st.sampled_from(FLAT_LEAVES),
    value=st.one_of(st.sampled_from(FLAT_LEAVES), nested_layouts),
    data=st.binary(min_size=64, max_size=2048),
    count=counts(2500),
    ncpus=st.integers(1, 5),
)
def test_rows_of_per_cpu_values_give_the_plain_bytes(key, value, data, count, ncpus):
    """Per-CPU values: each CPU's slot (padding to 8 bytes skipped) as its own value,
    tab-separated in text, a "values" list in JSON."""
    _rows_against_plain(Layout.parse(f"{key}:{value}"), data, count, ncpus)


NESTED_HEADER = """
enum state { IDLE = 0, BUSY = 1, GONE = 7, ALSO_GONE = 7 };
struct in { enum state st[2]; char name[5]; _Bool on; float f; double d; unsigned __int128 big; };
struct rec { struct in a[2]; struct { unsigned short x; } anon_named; enum state top; char comm[4]; };
"""


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=256, max_size=2048), count=st.integers(1, 50))
def test_rows_of_c_structs_with_enums_strings_and_floats(tmp_path_factory, data, count):
    """Enum names (the first of a value's names), strings JSON escapes, bools, NaN and
    infinite floats (bare in text's compact JSON, quoted in JSON output), 128-bit numbers,
    at the top and nested."""
    header = tmp_path_factory.getbasetemp() / "nested_rec.h"
    header.write_text(NESTED_HEADER)
    _rows_against_plain(Layout.from_c(str(header), "enum state", "struct rec"), data, count)


def test_rows_take_nested_layouts_and_leave_the_rest():
    from bpfmap.layout.cdecl import CDecls
    from bpfmap.output.rows import row_writer

    lay = Layout.parse("a={x=u32,y=be16[3]}[2],b=char[4]:c=u64,d={e=ipv6,f=mac}")
    assert row_writer("text", lay.key, lay.value) is not None
    from bpfmap.layout import TypeCodec

    for decl, name in (
        ("struct b { unsigned x : 3; unsigned y; };", "struct b"),
        ("union u { unsigned x; char c[4]; };", "union u"),
        ("struct a { struct { unsigned x; }; unsigned y; };", "struct a"),
    ):
        t = CDecls(decl, "b.h", [name]).resolve(name)
        assert row_writer("jsonl", lay.key, TypeCodec(t)) is not None, decl  # bitfields, unions, anonymous members
    for decl, name in (
        ("struct w { unsigned long long x : 3, y : 62; } __attribute__((packed));", "struct w"),  # 9 bytes for y
        ("struct d { struct { int a; }; union { int a; }; };", "struct d"),  # one name twice
    ):
        t = CDecls(decl, "b.h", [name]).resolve(name)
        assert row_writer("jsonl", lay.key, TypeCodec(t)) is None, decl  # the decoded path writes these
    big = Layout.parse("u32:u64[2000]")
    assert row_writer("text", big.key, big.value) is None  # more leaves than a template is worth


def test_rows_comparison_can_fail():
    """The comparison above catches one wrong byte: a row template with a stray space."""
    import pytest

    from bpfmap.output import rows

    lay = Layout.parse("a=u32:b={c=u16,d=char[3]}")
    rows._WRITERS.clear()
    real = rows._compile

    def broken(*args):
        lines = real(*args)
        return lambda k, v, n: lines(k, v, n).replace(",", ", ", 1)

    rows._compile = broken
    try:
        with pytest.raises(AssertionError):
            _rows_against_plain(lay, bytes(range(64)), 3)
    finally:
        rows._compile = real
        rows._WRITERS.clear()


INT_LEAVES = ["u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "be16", "be32", "be64", "le32"]


@settings(max_examples=examples(150), deadline=None)
@given(
    key=st.lists(st.sampled_from(FLAT_LEAVES), min_size=1, max_size=3),
    value=st.lists(st.sampled_from(FLAT_LEAVES), min_size=1, max_size=3),
    sort_leaf=st.sampled_from(
        [*INT_LEAVES, "f64", "f32", "bool", "char[5]", "ipv4", "ipv6", "mac", "hex[3]", "u128"]
        + ["u16[3]", "s8[4]", "be32[2]", "f64[2]", "bool[3]", "u128[2]", "u64[1]"]  # by their sum, or an element
    ),
    element=st.integers(0, 3),
    where=st.sampled_from(["key", "value"]),
    data=st.binary(min_size=64, max_size=2048),
    count=st.integers(1, 400),
    cut=st.integers(1, 150),
    reverse=st.booleans(),
    top=st.one_of(st.none(), st.integers(1, 60)),
    fmt=st.sampled_from(["text", "jsonl", "csv"]),
)
def test_sorting_raw_batches_gives_the_decoded_order(
    key, value, sort_leaf, element, where, data, count, cut, reverse, top, fmt
):
    """dump --sort on a leaf field, an array of numbers (by its sum) or one element of
    it, on raw batches (cut in random places) against sort_entries on the decoded
    entries: the same bytes, ties in the same order (few distinct values in small fields
    make many ties), NaN floats where they fall."""
    from bpfmap.output.sort import sort_field, sorted_batches
    from bpfmap.view import sort_entries

    (key if where == "key" else value).insert(1, sort_leaf)
    lay = Layout.parse(f"{flat_side(key)}:{flat_side(value)}")
    field = f"{where}.f1"
    count_of = int(sort_leaf.partition("[")[2].rstrip("]") or 0) if sort_leaf.endswith("]") else 0
    if count_of and sort_leaf != "hex[3]" and not sort_leaf.startswith("char") and element < count_of:
        field += f"[{element}]"

    class _View:  # what sort_field reads of a View
        percpu = False

    v = _View()
    v.key, v.value = lay.key, lay.value
    by = sort_field(v, field)
    assert by is not None
    ks, vs = lay.key.size, lay.value.size
    buf = data * (1 + count * (ks + vs) // len(data))
    keys, values = buf[: count * ks], buf[count * ks : count * (ks + vs)]
    raw = [
        (keys[i * ks : (i + cut) * ks], values[i * vs : (i + cut) * vs], min(cut, count - i))
        for i in range(0, count, cut)
    ]
    got = io.StringIO()
    write_item_batches(sorted_batches(raw, by, ks, vs, reverse, top), fmt, item_writer(fmt, lay.key, lay.value), got)
    entries = list(zip(lay.key.decode_many(keys, count), lay.value.decode_many(values, count)))
    want = io.StringIO()
    from bpfmap.output.entries import columns

    write_entries(columns(sort_entries(entries, field, reverse=reverse, top=top)), fmt, lay.key, lay.value, False, want)
    assert got.getvalue() == want.getvalue()


PERCPU_LEAVES = ["u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "bool", "char[5]", "hex[3]"]


@settings(max_examples=examples(120), deadline=None)
@given(
    value=st.one_of(
        st.sampled_from(["u64", "u32", "s64"]),
        st.lists(st.sampled_from(PERCPU_LEAVES), min_size=1, max_size=4).map(flat_side),
        st.lists(st.sampled_from(PERCPU_LEAVES), min_size=1, max_size=2).map(
            lambda f: f"a={{{flat_side(f)}}},b=u16[3]"
        ),
    ),
    data=st.binary(min_size=64, max_size=2048),
    count=st.integers(1, 300),
    ncpus=st.integers(1, 5),
    how=st.sampled_from(["sum", "max", "min", "avg", "cpu"]),
    fmt=st.sampled_from(["text", "jsonl", "json", "csv"]),
)
# batches of more entries than a chunk (output.rows.CHUNK): worked a chunk at a time, a
# chunk whose sums overflow (every one, with 0xff bytes) written the decoded way alone
@example(value="u64", data=bytes(range(256)), count=5000, ncpus=2, how="max", fmt="text")
@example(value="a=u8,b=u32", data=bytes(range(7, 256)), count=4097, ncpus=3, how="cpu", fmt="json")
@example(value="u64", data=b"\xff" * 64, count=4100, ncpus=2, how="sum", fmt="csv")
@example(value="u32", data=bytes(range(256)), count=6000, ncpus=3, how="avg", fmt="jsonl")
def test_per_cpu_reductions_on_raw_batches_give_the_decoded_bytes(value, data, count, ncpus, how, fmt):
    """--percpu sum|max|min and --cpu N straight from per-CPU raw batches against
    view.aggregate on the decoded values (sums past a field's range included: random
    u64s summed overflow, and those batches go the decoded way)."""
    lay = Layout.parse(f"u32:{value}")
    stride = (lay.value.size + 7) & ~7
    buf = data * (1 + count * (4 + stride * ncpus) // len(data))
    keys, values = buf[: count * 4], buf[count * 4 : count * (4 + stride * ncpus)]
    got, want = _reduced_outputs(lay, keys, values, count, ncpus, how, fmt)
    assert got == want


def _reduced_outputs(lay, keys, values, count, ncpus, how, fmt):
    """(the lines output.percpu writes from per-CPU raw batches, those write_entries
    writes for view.aggregate's reductions of the decoded values)."""
    from bpfmap.output.dump import _reduced_lines
    from bpfmap.view import aggregate

    vs = lay.value.size
    stride = (vs + 7) & ~7

    class _Shape:
        entry = stride * ncpus

        @staticmethod
        def slots(values, n):
            return b"".join(values[i * stride : i * stride + vs] for i in range(n * ncpus))

    class _Map:
        value_size = vs
        shape = _Shape()

    _Map.ncpus = ncpus

    class _View:
        key, value, map = lay.key, lay.value, _Map()

        def decode_batch(self, keys, values, n):
            flat = lay.value.decode_many(_Shape.slots(values, n), n * ncpus)
            return lay.key.decode_many(keys, n), [flat[i * ncpus : (i + 1) * ncpus] for i in range(n)]

    view = _View()
    cpu = ncpus - 1 if how == "cpu" else None
    lines = _reduced_lines(view, fmt, None if how == "cpu" else how, cpu)
    assert lines is not None
    got = io.StringIO()
    write_item_batches([(keys, values, count)], fmt, lines, got)
    dk, dv = view.decode_batch(keys, values, count)
    reduced = [v[cpu] for v in dv] if cpu is not None else [aggregate(v, how) for v in dv]
    want = io.StringIO()
    write_entries([(dk, reduced)], fmt, lay.key, lay.value, False, want)  # what dump does, avg's floats too
    return got.getvalue(), want.getvalue()


@st.composite
def _sums_about_the_exact_bound(draw):
    """(CPUs, sums over them) with sums at and around the largest a Mean writes."""
    from bpfmap.output.rows import exact_bits

    ncpus = 1 << draw(st.integers(0, 8))
    top = 1 << exact_bits(ncpus)
    near = st.integers(top - 3 * ncpus, top + 3 * ncpus)
    sums = st.one_of(st.integers(0, 4 * ncpus), near, st.integers(0, top - 1), st.integers(0, 2**64 - 1))
    return ncpus, draw(st.lists(sums, min_size=1, max_size=40))


@settings(max_examples=examples(150), deadline=None)
@given(
    cpus_sums=_sums_about_the_exact_bound(),
    value=st.sampled_from(["u64", "s64", "a=u32,b=char[3],c=u64[2]"]),
    fmt=st.sampled_from(["text", "jsonl", "json"]),
)
@example(cpus_sums=(2, [0, 1, 2, 3, 2**50 - 1, 2**50]), value="u64", fmt="text")
@example(cpus_sums=(256, [1, 255, 256, 257, 2**19 - 1]), value="u64", fmt="jsonl")
def test_avg_written_from_quotients_is_the_floats_text(cpus_sums, value, fmt):
    """--percpu avg with a power-of-two count of CPUs: chunks of sums below
    rows.exact_bits are written from each sum's quotient and remainder (rows.Mean), the
    others as floats; every byte is the decoded path's (repr of the float), at the bound
    and past it."""
    from bpfmap.output import percpu

    ncpus, sums = cpus_sums
    lay = Layout.parse(f"u32:{value}")
    vs = lay.value.size
    stride = (vs + 7) & ~7
    keys = b"".join(i.to_bytes(4, "little") for i in range(len(sums)))
    values = bytearray()
    for s in sums:  # each number leaf of the value holds the sum over the CPUs, spread over them
        for c in range(ncpus):
            part = s // ncpus + (s % ncpus if c == 0 else 0)
            slot = bytearray(stride)
            for off, size in {"u64": [(0, 8)], "s64": [(0, 8)]}.get(value, [(0, 4), (8, 8), (16, 8)]):
                slot[off : off + size] = (part % (1 << 8 * size)).to_bytes(size, "little")
            values += slot
    with _spied_means() as written:
        got, want = _reduced_outputs(lay, keys, bytes(values), len(sums), ncpus, "avg", fmt)
    assert got == want
    if value == "u64":  # one chunk: a Mean wrote it (the lanes' or _means') exactly when every sum is below the bound
        assert [lanes or means for lanes, means in written] == [all(s < 1 << percpu.exact_bits(ncpus) for s in sums)]


@contextlib.contextmanager
def _spied_means():
    """Record, for each chunk --percpu avg writes, whether percpu._lane_means wrote it and
    whether percpu._means did (a list of [lanes, means])."""
    from bpfmap.output import percpu

    written: list[list[bool]] = []
    means, lane_means = percpu._means, percpu._lane_means

    def spy_means(*args):
        inner = means(*args)

        def counted(keys, items, count):
            text = inner(keys, items, count)
            if not written or written[-1][1] is not None:
                written.append([False, None])  # no lanes for this chunk
            written[-1][1] = text is not None
            return text

        return counted

    def spy_lanes(*args):
        inner = lane_means(*args)
        if inner is None:
            return None

        def counted(keys, values, count):
            text = inner(keys, values, count)
            written.append([text is not None, None if text is None else False])
            return text

        return counted

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(percpu, "_means", spy_means)
        mp.setattr(percpu, "_lane_means", spy_lanes)
        yield written


@st.composite
def _u64_lanes(draw):
    """(CPUs, value layout, its number of u64 leaves, each entry's per-CPU u64s): values
    below, at and past the largest the lanes sum (2**(exact_bits - m))."""
    from bpfmap.output.rows import exact_bits

    ncpus = 1 << draw(st.integers(1, 4))
    value, nleaves = draw(st.sampled_from([("u64", 1), ("a=u64,b=u64", 2), ("u64[3]", 3)]))
    top = 1 << (exact_bits(ncpus) - (ncpus.bit_length() - 1))
    small = st.integers(0, 1000)
    part = st.one_of(small, st.integers(0, top - 1), st.integers(top - 2, top), st.integers(0, 2**64 - 1))
    few_big = draw(st.booleans())
    each = part if few_big else st.one_of(small, st.integers(0, top - 1))
    count = draw(st.integers(1, 40))
    entries = draw(
        st.lists(st.lists(each, min_size=ncpus * nleaves, max_size=ncpus * nleaves), min_size=count, max_size=count)
    )
    return ncpus, value, top, entries


@settings(max_examples=examples(120), deadline=None)
@given(case=_u64_lanes(), fmt=st.sampled_from(["text", "jsonl", "json"]))
@example(case=(2, "u64", 1 << 49, [[1, 2], [2**49 - 1, 2**49 - 1], [0, 0]]), fmt="text")
@example(case=(2, "u64", 1 << 49, [[1, 2], [2**49, 0]]), fmt="jsonl")
@example(case=(16, "a=u64,b=u64", 1 << 39, [[7] * 32, [2**39 - 1] * 32]), fmt="json")
def test_avg_of_u64_values_summed_in_lanes_is_the_floats_text(case, fmt):
    """--percpu avg of values made of u64s only (2**m CPUs): chunks whose every value is
    below 2**(exact_bits - m) are summed as lanes of one integer (percpu._lane_means),
    the others as before; every byte is the decoded path's either way."""

    ncpus, value, top, entries = case
    lay = Layout.parse(f"u32:{value}")
    keys = b"".join(i.to_bytes(4, "little") for i in range(len(entries)))
    values = b"".join(v.to_bytes(8, "little") for e in entries for v in e)  # CPU 0's leaves, then CPU 1's...
    with _spied_means() as written:
        got, want = _reduced_outputs(lay, keys, values, len(entries), ncpus, "avg", fmt)
    assert got == want
    assert [lanes for lanes, _means in written] == [all(v < top for e in entries for v in e)]


def test_avg_lanes_take_every_chunk_of_a_big_batch():
    """A batch of several chunks (output.rows.CHUNK), the last one partial: each chunk
    summed in lanes, 4 CPUs, two u64 leaves."""
    from bpfmap.output.rows import CHUNK

    ncpus, n = 4, 2 * CHUNK + 5
    lay = Layout.parse("u32:a=u64,b=u64")
    keys = b"".join(i.to_bytes(4, "little") for i in range(n))
    values = b"".join(
        (i * 7 + c * 3 + leaf).to_bytes(8, "little") for i in range(n) for c in range(ncpus) for leaf in range(2)
    )
    with _spied_means() as written:
        got, want = _reduced_outputs(lay, keys, values, n, ncpus, "avg", "jsonl")
    assert got == want
    assert written == [[True, False]] * 3


@settings(max_examples=examples(20), deadline=None)
@given(
    fields=st.lists(
        st.sampled_from(["u8", "u16", "s32", "u32", "be32", "u64", "char[4]", "s16[3]"]), min_size=1, max_size=4
    ),
    fmt=st.sampled_from(["errno", "syscall", "uid", "gid", "ifname", "ksym", "majorminor", "cgroup"]),
    pick=st.integers(0, 10),
    data=st.binary(min_size=64, max_size=1024),
    count=counts(1500),
)
# an array with a named element (0) beside a nameless one (32512), whatever the profile draws;
# tests/kernel/test_one_meaning.py goes through every element width and format
@example(fields=["s16[3]"], fmt="uid", pick=0, data=bytes(8) + b"\x00\x7f" + bytes(54), count=1)
@example(fields=["u8", "s16[3]"], fmt="gid", pick=1, data=bytes(10) + b"\x00\x7f" + bytes(52), count=2)
def test_rows_of_display_formats_give_the_plain_bytes(fields, fmt, pick, data, count):
    """--as FIELD=FORMAT on integer fields (and arrays of them) straight from raw
    batches: names where the number has one (as a string is written), the number where
    not, exactly as the decoded path shows them."""
    from bpfmap.layout import Layout
    from bpfmap.layout.formats import apply

    ints = [i for i, t in enumerate(fields) if t not in ("char[4]",)]
    if not ints:
        fields = [*fields, "u32"]
        ints = [len(fields) - 1]
    target = ints[pick % len(ints)]
    lay = Layout.parse(f"u32:{flat_side(fields)}")
    value, rest = apply(lay.value, {f"f{target}": fmt})
    assert not rest
    _rows_against_plain(Layout(lay.key, value), data, count)


C_LEAVES = ["unsigned char", "short", "unsigned short", "int", "unsigned int", "long long", "unsigned long long",
            "_Bool", "float", "double", "__be16", "__be32", "enum color", "char"]  # fmt: skip


C_BITS = {"unsigned char": 8, "unsigned short": 16, "short": 16, "int": 32, "unsigned int": 32, "long long": 64,
          "unsigned long long": 64, "_Bool": 1, "enum color": 32, "__be16": 16}  # fmt: skip


@st.composite
def _c_members(draw, depth: int = 0, names=None) -> str:
    """Members of a struct or union body: leaves, arrays, bitfields (named, unnamed, :0),
    nested and anonymous structs and unions; names unique across anonymous members (C11)."""
    names = names if names is not None else iter(range(10**6))
    out = []
    for i in range(draw(st.integers(1, 4))):
        more = ["pad"] + ["sub", "anon"] * (depth < 2) if i else []  # the first a named field: none decodes to {}
        kind = draw(st.sampled_from(["leaf", "leaf", "array", "bits", "bits", *more]))
        if kind == "leaf":
            out.append(f"{draw(st.sampled_from(C_LEAVES))} m{next(names)};")
        elif kind == "array":
            out.append(f"{draw(st.sampled_from(C_LEAVES))} m{next(names)}[{draw(st.integers(1, 3))}];")
        elif kind in ("bits", "pad"):
            t = draw(st.sampled_from(sorted(C_BITS)))
            width = draw(st.integers(0 if kind == "pad" else 1, C_BITS[t]))
            out.append(f"{t} : {width};" if kind == "pad" else f"{t} m{next(names)} : {width};")
        else:
            body = draw(_c_members(depth + 1, names))
            tag = draw(st.sampled_from(["struct", "union"]))
            out.append(f"{tag} {{ {body} }}" + (f" m{next(names)};" if kind == "sub" else ";"))
    return " ".join(out)


c_types = st.tuples(st.sampled_from(["struct", "union"]), _c_members(), st.booleans())


def _c_layout(tmp_path_factory, value) -> Layout:
    tag, body, packed = value
    header = tmp_path_factory.getbasetemp() / "c_rows.h"
    header.write_text(
        "enum color { RED = 0, GREEN = 1, BLUE = 2, DARK = -1 };\n"
        f"{tag} val {{ {body} }}{' __attribute__((packed))' if packed else ''};\n"
    )
    return Layout.from_c(str(header), "unsigned int", f"{tag} val")


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=c_types, data=st.binary(min_size=64, max_size=2048), count=counts(2500))
def test_rows_of_unions_bitfields_and_anonymous_members_give_the_plain_bytes(tmp_path_factory, value, data, count):
    """Random C structs and unions: bitfields of every width (signed ones sign-extended,
    enums by name, unnamed and :0 ones left out), unions (every member from the same
    bytes), anonymous structs and unions (their fields in the parent's place), nested,
    packed or not, through text, JSON, CSV and the table's cells."""
    from hypothesis import assume

    from bpfmap.output.rows import row_writer

    assume(" m" in value[1])  # a struct of padding alone decodes to {}: no columns to compare
    lay = _c_layout(tmp_path_factory, value)
    if row_writer("text", lay.key, lay.value) is None:  # a packed 64-bit bitfield over 9 bytes
        assert value[2] and "long long" in value[1], value
        return
    _rows_against_plain(lay, data, count)


def test_c_rows_comparison_sees_a_bitfield_read_wrong(tmp_path_factory, monkeypatch):
    """The comparison above catches a bitfield read one bit off."""
    import pytest

    from bpfmap.output import rows

    rows._WRITERS.clear()
    real = rows.Plan._bitfield

    def off_by_one(self, f, base, where):
        from bpfmap.layout.model import Field

        return real(self, Field(f.name, f.type, f.offset, f.bit_offset + 1, f.bit_size), base, where)

    monkeypatch.setattr(rows.Plan, "_bitfield", off_by_one)
    try:
        with pytest.raises(AssertionError):
            _rows_against_plain(
                _c_layout(tmp_path_factory, ("struct", "int a : 5; int b : 3;", False)), bytes(range(64)), 9
            )
    finally:
        rows._WRITERS.clear()


IP_FIELDS = st.sampled_from(["u8", "u16", "be16", "u32", "char[3]"])


@settings(max_examples=examples(12), deadline=None)
@given(
    size=st.sampled_from([4, 8, 16]),
    family=st.sampled_from([None, "family", "af", "sa_family"]),
    family_type=st.sampled_from(["u16", "be16", "u8", "u32"]),
    families=st.lists(st.sampled_from([2, 10, 1, 0, 512, 2560]), min_size=1, max_size=6),
    others=st.lists(IP_FIELDS, max_size=3),
    nested=st.booleans(),
    data=st.binary(min_size=64, max_size=1024),
    count=counts(1500),
)
def test_rows_of_ip_addresses_by_family_give_the_plain_bytes(
    size, family, family_type, families, others, nested, data, count
):
    """--as FIELD=ip straight from raw batches: the address by the family field beside it
    (AF_INET: the first 4 bytes, AF_INET6: 16 when the field has them, another family:
    the hex bytes; big-endian or narrow family fields), by the size alone without one;
    at the top or in a nested struct, the family before or after the address."""
    from bpfmap.layout.formats import apply

    if family is None and size == 8:
        size = 16  # without a family field, ip takes only 4 or 16 bytes
    fields = [f"o{i}={t}" for i, t in enumerate(others)] + [f"addr=hex[{size}]"]
    if family is not None:
        fields.insert(len(families) % (len(fields) + 1), f"{family}={family_type}")
    body = ",".join(fields)
    lay = Layout.parse(f"u32:x=u8,in={{{body}}}" if nested else f"u32:{body}")
    value, rest = apply(lay.value, {"in.addr" if nested else "addr": "ip"})
    assert not rest
    from bpfmap.output.rows import row_writer

    assert row_writer("jsonl", lay.key, value) is not None
    # the data's family fields: mostly the families drawn, so both addresses show
    from bpfmap.layout.model import Struct

    buf = bytearray(data * (1 + 4 * count * (4 + lay.value.size) // len(data)))
    t = value.type
    if nested:
        t = next(f for f in t.fields if f.name == "in")
        base = t.offset
        t = t.type
    else:
        base = 0
    assert isinstance(t, Struct)
    if family is not None:
        fam = next(f for f in t.fields if f.name == family)
        vs = lay.value.size
        start = count * 4  # the keys come first in _rows_against_plain's buffer
        order = "big" if family_type == "be16" else "little"
        for i in range(count):
            at = start + i * vs + base + fam.offset
            buf[at : at + fam.type.size] = (families[i % len(families)] % (1 << (8 * fam.type.size))).to_bytes(
                fam.type.size, order
            )
    _rows_against_plain(Layout(lay.key, value), bytes(buf), count)


SORT_HEADER = """
struct k { unsigned int packets; unsigned short port; };
struct v {
    union { unsigned int raw; struct { unsigned short lo, hi; } half; } u;
    struct { unsigned long long packets; unsigned int hist[3]; };
    unsigned int flags : 3;
};
"""


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(["packets", "value.packets", "key.packets", "u.raw", "u.half.hi", "hist", "hist[2]", "port"]),
    data=st.binary(min_size=64, max_size=2048),
    count=st.integers(1, 300),
    reverse=st.booleans(),
    top=st.one_of(st.none(), st.integers(1, 20)),
)
def test_sorting_raw_batches_of_c_structs_finds_the_decoded_field(tmp_path_factory, field, data, count, reverse, top):
    """--sort on fields of anonymous members and union members, found where the decoded
    entries have them: a bare ``packets``, a field of the key and of the value (in an
    anonymous struct), is refused by both paths (fields.side)."""
    from bpfmap.output.entries import columns
    from bpfmap.output.sort import sort_field, sorted_batches
    from bpfmap.view import sort_entries

    header = tmp_path_factory.getbasetemp() / "sort_c.h"
    header.write_text(SORT_HEADER)
    lay = Layout.from_c(str(header), "struct k", "struct v")

    class _View:
        percpu = False

    v = _View()
    v.key, v.value = lay.key, lay.value
    by = sort_field(v, field)
    ks, vs = lay.key.size, lay.value.size
    if field == "packets":
        assert by is None
        entries = list(zip(lay.key.decode_many(data[:ks], 1), lay.value.decode_many(data[ks : ks + vs], 1)))
        with pytest.raises(UsageError, match="write key.packets or value.packets"):
            sort_entries(entries, field)
        return
    assert by is not None, field
    assert by.side == (0 if field in ("key.packets", "port") else 1)
    buf = data * (1 + count * (ks + vs) // len(data))
    keys, values = buf[: count * ks], buf[count * ks : count * (ks + vs)]
    got = io.StringIO()
    rows = item_writer("jsonl", lay.key, lay.value)
    write_item_batches(sorted_batches([(keys, values, count)], by, ks, vs, reverse, top), "jsonl", rows, got)
    entries = list(zip(lay.key.decode_many(keys, count), lay.value.decode_many(values, count)))
    want = io.StringIO()
    write_entries(
        columns(sort_entries(entries, field, reverse=reverse, top=top)), "jsonl", lay.key, lay.value, False, want
    )
    assert got.getvalue() == want.getvalue()


@pytest.mark.parametrize("order, byteorder", [("<", "little"), (">", "big")])
def test_ipv4_half_texts_are_each_halfs_octets(order, byteorder):
    """The table an ipv4 address is written from: the entry of every half (both octets
    each of 0..255), read as a 16-bit integer in either byte order, is the text of those
    two octets as the address's own notation writes them."""
    import ipaddress

    from bpfmap.output.rows import half_texts

    table = half_texts(order)
    assert len(table) == 1 << 16
    for a in range(256):
        for b in range(256):
            dotted = str(ipaddress.IPv4Address(bytes((a, b, 255 - b, 255 - a))))
            assert table[int.from_bytes(bytes((a, b)), byteorder)].decode() == dotted.rsplit(".", 2)[0], (a, b)


@pytest.mark.parametrize("order", ["<", ">"])
def test_ipv4_halves_octet_by_octet_are_the_tables(order):
    """What a small dump writes before the table is made (octet_texts) is the table's
    text for every half, in either byte order."""
    from bpfmap.output.rows import half_texts, octet_texts

    assert octet_texts(list(range(1 << 16)), order) == list(half_texts(order))


def test_rows_write_every_ipv4_half_as_the_decoded_path():
    """Every pair of octets in each half of an address (65,536 entries: both halves of a
    key's and a nested value's address take every value): the rows' table lookups give
    the decoded path's lines (text and JSON; the other formats share the leaf's template,
    _rows_against_plain compares them on the random layouts)."""
    from bpfmap.output.rows import row_writer

    lay = Layout.parse("a=ipv4,b=ipv4:c={d=ipv4}")
    count = 1 << 16
    keys = b"".join(bytes((i & 255, i >> 8, i >> 8, i & 255, i >> 8, i & 255, i & 255, i >> 8)) for i in range(count))
    values = b"".join(bytes((255 - (i >> 8), i & 255, 7, i >> 8)) for i in range(count))
    batch = list(zip(lay.key.decode_many(keys, count), lay.value.decode_many(values, count)))
    for fmt in ("text", "jsonl"):
        rows = row_writer(fmt, lay.key, lay.value)
        assert rows is not None
        got = io.StringIO()
        write_item_batches([(keys, values, count)], fmt, rows, got)
        want = list(map(_line_function(fmt, lay.key, lay.value, False), batch))
        lines = got.getvalue().splitlines(keepends=True)
        assert len(lines) == count, fmt
        assert next(((g, w) for g, w in zip(lines, want) if g != w), None) is None, fmt  # the first wrong line
