"""bpfmap's own text exposition against prometheus-client, the oracle: random families
(names, label values with every escape and non-ASCII text, NaN, +/-Inf, huge and tiny
numbers, histograms) written by both parse, with prometheus-client's parser, to exactly
the same samples; and the fast path (series straight from raw map bytes) writes the
same bytes as the decoded path, on random layouts and random bytes."""

import struct

import pytest
from helpers import examples
from helpers.prometheus import client_exposition, parsed
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfmap.export.collector import _leaves
from bpfmap.export.exposition import Family, alike_check, encode, family_text, row_lines, text
from bpfmap.export.labels import label_text
from bpfmap.layout import Layout

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

NAME = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
LABEL = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda n: n not in ("le", "quantile"))
VALUE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["\\", '"', "\n", 'a\\"b\nc', "héllo wörld", "日本語", "\\n", "}", '{a="b"}']
)
NUMBER = (
    st.integers(min_value=0, max_value=2**64 - 1)
    | st.integers(min_value=-(2**63), max_value=0)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e-300, 5e-324, 1.7976931348623157e308, 1234567.0, 0.1, -0.0])
)


@st.composite
def families(draw):
    out = []
    for name in draw(st.lists(NAME, min_size=1, max_size=4, unique_by=lambda n: n.removesuffix("_total"))):
        kind = draw(st.sampled_from(["counter", "gauge", "histogram"]))
        labels = draw(st.lists(LABEL, max_size=3, unique=True))
        f = Family(name, draw(VALUE_TEXT), kind, labels)
        rows = draw(st.lists(st.tuples(*[VALUE_TEXT] * len(labels)), max_size=5, unique=True))
        for row in rows:
            if kind == "histogram":
                counts = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
                bounds = sorted(set(draw(st.lists(st.floats(0.001, 1e6), min_size=len(counts), max_size=len(counts)))))
                running, buckets = 0.0, []
                for b, c in zip(bounds, counts):
                    running += c
                    buckets.append((repr(b), running))
                buckets.append(("+Inf", running))
                f.add_histogram(row, buckets, draw(st.floats(0, 1e9)))
            else:
                f.add(row, draw(NUMBER))
        out.append(f)
    names = set()
    for f in out:  # a family's sample names must not collide with another's
        mine = {f.name, f.name + "_total", f.name + "_bucket", f.name + "_sum", f.name + "_count", f.name + "_created"}
        if names & mine:
            return out[: out.index(f)]
        names |= mine
    return out


@settings(max_examples=examples(100), deadline=None)
@given(families())
def test_our_exposition_parses_to_what_prometheus_client_writes(fams):
    ours = text(fams).decode()
    assert parsed(ours, family=True) == parsed(client_exposition(fams), family=True)


def test_bytes_that_are_not_utf8_are_written_escaped_and_the_scrape_stays_utf8():
    f = Family("x", "h", "gauge", ["comm"])
    f.add(["ok\udcff\udcfe"], 1)
    data = text([f])
    data.decode("utf-8")  # valid
    [fam] = text_string_to_metric_families(data.decode())
    assert fam.samples[0].labels["comm"] == "ok\\xff\\xfe"


LEAVES = ["u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "be16", "be32", "le64", "bool", "ipv4", "ipv6",
          "char[6]", "char[16]", "mac", "f32", "f64", "hex[3]", "u128", "s128"]  # fmt: skip


@st.composite
def layouts(draw):
    n = draw(st.integers(1, 4))
    leaves = [draw(st.sampled_from(LEAVES)) for _ in range(n)]
    key = ",".join(f"f{i}={t}" for i, t in enumerate(leaves))
    value_t = draw(st.sampled_from(["u64", "u32", "s64", "f64", "be32", "u128", "s16"]))
    extra = draw(st.booleans())
    value = f"n={value_t}" + (",comm=char[8]" if extra else "")
    return f"{key}:{value}"


@settings(max_examples=examples(200), deadline=None)
@given(layouts(), st.data())
def test_the_fast_path_writes_what_the_decoded_path_writes(layout_text, data):
    lay = Layout.parse(layout_text)
    kt, vt = lay.key.type, lay.value.type
    count = data.draw(st.integers(1, 40))
    keys = data.draw(st.binary(min_size=kt.size * count, max_size=kt.size * count))
    values = data.draw(st.binary(min_size=vt.size * count, max_size=vt.size * count))
    if "n=f64" in layout_text:  # NaN payloads differ: keep floats plain numbers
        values = b"".join(
            struct.pack("=d", data.draw(st.floats(allow_nan=False))) + values[i * vt.size + 8 : (i + 1) * vt.size]
            for i in range(count)
        )
    paths = [p for p, _v in _leaves(lay.key.decode(bytes(kt.size)))]
    if data.draw(st.booleans()):
        paths = list(reversed(paths))
    names = [p.replace(".", "_") for p in paths]
    if "comm" in layout_text and data.draw(st.booleans()):
        paths, names = [*paths, "comm"], [*names, "comm"]  # a label from the value
    lines = row_lines("m_total", names, kt, vt, paths, "n")
    assert lines is not None, layout_text
    fast = lines(keys, values, count)
    f = Family("m_total", "", "counter", names)
    dk, dv = lay.key.decode_many(keys, count), lay.value.decode_many(values, count)
    for k, v in zip(dk, dv):
        f.add([label_text(k[p] if p in k else v[p]) for p in paths], v["n"])
    slow = "".join(list(family_text(f))[1:])
    assert encode(fast) == encode(slow)  # as written (a byte that was not UTF-8: \\xNN either way)


def _leaves_of(decoded):
    return [v for _p, v in _leaves(decoded)]


KEY_LEAVES = [t for t in LEAVES if not t.startswith("f")] + ["pad[3]", "char[3]"]


@st.composite
def key_layouts(draw):
    leaves = draw(st.lists(st.sampled_from(KEY_LEAVES), min_size=1, max_size=4))
    return ",".join(t if t.startswith("pad") else f"f{i}={t}" for i, t in enumerate(leaves)) + ":u64"


@settings(max_examples=examples(300), deadline=None)
@given(key_layouts(), st.data())
def test_alike_check_finds_exactly_the_keys_another_may_read_like(layout_text, data):
    """alike_check of a key type says a batch may hold keys that read the same exactly when
    one of its keys is not the bytes its decoded form encodes to (a string past its NUL, a
    bool past 1, padding that is not zero); where it says not, different keys read as
    different labels."""
    kt = Layout.parse(layout_text).key
    count = data.draw(st.integers(1, 30))
    # canonical keys (decoded and encoded again), a few with one byte changed
    size = kt.type.size
    keys = [kt.encode(kt.decode(data.draw(st.binary(min_size=size, max_size=size)))) for _ in range(count)]
    for _ in range(data.draw(st.integers(0, 2))):
        i, at = data.draw(st.integers(0, count - 1)), data.draw(st.integers(0, size - 1))
        byte = data.draw(st.sampled_from([0, 1, 2, 65, 92, 0xC3, 0xA9, 255]))  # a backslash, UTF-8's é
        keys[i] = keys[i][:at] + bytes([byte]) + keys[i][at + 1 :]
    check = alike_check(kt.type)
    canonical = all(kt.encode(kt.decode(k)) == k for k in keys)
    if check is None:
        assert canonical
        return
    texts = [v for k in keys for v in _leaves_of(kt.decode(k)) if type(v) is str]
    # a byte that is not UTF-8 is written \xNN, as the text \xNN is
    spelled = any(0xDC80 <= ord(c) <= 0xDCFF for t in texts for c in t) and any("\\" in t for t in texts)
    assert check(b"".join(keys), count) is (not canonical or spelled)
    if canonical:
        paths = [p for p, _v in _leaves(kt.decode(bytes(kt.type.size)))]
        texts = {tuple(label_text(kt.decode(k)[p]) for p in paths) for k in set(keys)}
        assert len(texts) == len(set(keys))


@pytest.mark.parametrize("layout_text", ["f=f64:u64", "f=u32,g=f32:u64"])
def test_alike_check_refuses_keys_whose_bytes_do_not_tell_their_text(layout_text):
    from bpfmap.output.rows import NotRow

    with pytest.raises(NotRow):
        alike_check(Layout.parse(layout_text).key.type)


CHUNKS = st.lists(
    st.lists(st.tuples(st.binary(min_size=1, max_size=2), st.integers(-(2**63), 2**64 - 1)), max_size=12),
    max_size=6,
)


@settings(max_examples=examples(300), deadline=None)
@given(chunks=CHUNKS, floats=st.booleans())
def test_a_chunks_sums_are_the_entry_by_entry_loops(chunks, floats):
    """Summed._sum adds a chunk of label bytes without repeats through dict operations:
    every sum is the entry-by-entry loop's (old + new, in entry order), for chunks with
    repeats, sums shared with chunks before, and (floats: the loop itself) float sums."""
    from bpfmap.export.exposition import Summed

    summed = object.__new__(Summed)
    summed.sums, summed.code = {}, "d" if floats else "Q"
    loop: dict = {}
    for chunk in chunks:
        labels = tuple(k for k, _ in chunk)
        numbers = tuple(float(v) if floats else v for _, v in chunk)
        summed._sum(labels, numbers)
        for k, v in zip(labels, numbers):
            loop[k] = loop.get(k, 0) + v
    assert summed.sums == loop
    assert [type(v) for v in summed.sums.values()] == [type(v) for v in loop.values()]
    assert list(summed.sums) == list(loop)  # the series in the loop's order too
