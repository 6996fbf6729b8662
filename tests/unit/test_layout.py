"""The scalar layout language, without the kernel; ctypes is the C-layout oracle."""

from __future__ import annotations

import ctypes

import pytest
from helpers import examples
from hypothesis import given
from hypothesis import strategies as st

from bpfmap import UsageError
from bpfmap.layout import HexCodec, Layout, parse_hex

CTYPES = {
    "u8": ctypes.c_uint8,
    "u16": ctypes.c_uint16,
    "u32": ctypes.c_uint32,
    "u64": ctypes.c_uint64,
    "s8": ctypes.c_int8,
    "s16": ctypes.c_int16,
    "s32": ctypes.c_int32,
    "s64": ctypes.c_int64,
}


@pytest.mark.parametrize("text", ["01 00 00 00", "0x01000000", "01:00:00:00", "01000000", " 01-00-00-00 "])
def test_hex_forms(text):
    assert parse_hex(text) == b"\x01\0\0\0"


@pytest.mark.parametrize("text", ["1", "0x1", "zz", "1 0 0 0", "01 0"])
def test_bad_hex_names_the_fix(text):
    with pytest.raises(UsageError, match="two hex digits per byte"):
        parse_hex(text)


def test_hex_codec_checks_the_size():
    with pytest.raises(UsageError, match="3 bytes given, 4 expected"):
        HexCodec(4).parse("01 02 03")


def test_single_named_field_stays_a_struct():
    assert Layout.parse("n=u32:u8").key.decode(b"\x01\0\0\0") == {"n": 1}


def test_single_scalar_decodes_to_a_number():
    lay = Layout.parse("u32:u64")
    assert lay.key.size == 4 and lay.value.size == 8
    assert lay.key.decode(b"\x2a\0\0\0") == 42
    assert lay.value.parse("0x10") == (16).to_bytes(8, "little")


def test_struct_padding_is_c_like():
    key = Layout.parse("a=u8,b=u64:u8").key
    assert key.size == 16 and [f.offset for f in key.fields] == [0, 8]
    assert Layout.parse("packed a=u8,b=u64:u8").key.size == 9
    assert Layout.parse("u64,u8:u8").key.size == 16  # tail padding to the struct's alignment


def test_struct_text_forms():
    key = Layout.parse("src=u32,port=u16:u8").key
    want = key.encode({"src": 1, "port": 2})
    assert key.parse("1,2") == want
    assert key.parse("src=1,port=2") == want
    assert key.parse('{"src": 1, "port": 2}') == want
    assert key.parse("[1, 2]") == want
    assert key.decode(want) == {"src": 1, "port": 2}
    assert key.format(key.decode(want)) == "src=1,port=2"


@pytest.mark.parametrize(
    "layout,text,match",
    [
        ("u8:u8", "256", "u8: 256 is out of range 0..255"),
        ("s8:u8", "-129", "out of range -128..127"),
        ("a=u32,b=u32:u8", "1", "1 field\\(s\\) given, 2 expected: a, b"),
        ("a=u32:u8", "x", "'x' is not a number"),
        ("a=u32,b=u8:u8", '{"a": 1, "c": 2}', "unknown field\\(s\\) c"),
    ],
)
def test_bad_values_name_the_field(layout, text, match):
    with pytest.raises(UsageError, match=match):
        Layout.parse(layout).key.parse(text)


@pytest.mark.parametrize(
    "text,match",
    [
        ("u33:u8", "unknown type 'u33'"),
        ("a=u8,a=u8:u8", "used twice"),
        ("1a=u8:u8", "expected a type or field name, found '1' at column 1"),
    ],
)
def test_bad_layouts(text, match):
    with pytest.raises(UsageError, match=match):
        Layout.parse(text)


def test_missing_side_is_hex_and_bare_is_for_keyless_maps():
    lay = Layout.parse(":u64")
    assert lay.key is None and lay.value.size == 8
    assert Layout.parse("-:u64").key is None
    bare = Layout.parse("u32")
    assert bare.key is None and bare.value is None and bare.bare.size == 4


def test_size_mismatch_shows_offsets():
    with pytest.raises(
        UsageError,
        match=r"layout for the key is 16 bytes but the map's key is 12 bytes; "
        r"fields: \{a=u8@0, b=u64@8\}",
    ):
        Layout.parse("a=u8,b=u64:u8").key.check_size(12, "key")


fields = st.lists(st.sampled_from(sorted(CTYPES)), min_size=1, max_size=8)


@given(fields, st.booleans(), st.data())
def test_layout_matches_ctypes_and_round_trips(types, packed, data):
    spec = ("packed " if packed else "") + ",".join(f"x{i}={t}" for i, t in enumerate(types)) + ":u8"
    codec = Layout.parse(spec).key

    class C(ctypes.Structure):
        _pack_ = 1 if packed else 0
        _fields_ = [(f"x{i}", CTYPES[t]) for i, t in enumerate(types)]

    assert codec.size == ctypes.sizeof(C)
    assert [f.offset for f in codec.fields] == [getattr(C, f"x{i}").offset for i in range(len(types))]
    values = {}
    for i, t in enumerate(types):
        bits = ctypes.sizeof(CTYPES[t]) * 8
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if t[0] == "s" else (0, (1 << bits) - 1)
        values[f"x{i}"] = data.draw(st.integers(lo, hi))
    raw = codec.encode(values)
    c = C(**values)
    assert raw == bytes(c)
    decoded = codec.decode(raw)
    assert decoded == values  # named fields stay a dict, even a single one


def test_flat_structs_encode_many_at_once_as_each_one_alone():
    """encode_many of a flat struct of numbers (dicts from JSON Lines, or the name=value
    text dump writes) gives the bytes of encoding each value alone; anything the codec
    would refuse or read another way makes it raise (the loader then goes line by line)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from bpfmap.layout import Layout

    kinds = {"u8": (0, 255), "s16": (-(2**15), 2**15 - 1), "u32": (0, 2**32 - 1), "s64": (-(2**63), 2**63 - 1)}

    @settings(max_examples=examples(200), deadline=None)
    @given(
        st.lists(st.sampled_from([*kinds, "f64"]), min_size=1, max_size=5).flatmap(
            lambda ts: st.tuples(
                st.just(ts),
                st.lists(
                    st.tuples(
                        *[
                            st.floats(allow_nan=False, allow_infinity=False, width=64)
                            if t == "f64"
                            else st.integers(*kinds[t])
                            for t in ts
                        ]
                    ),
                    min_size=1,
                    max_size=30,
                ),
            )
        ),
        st.booleans(),
    )
    def check(case, as_text):
        types, rows = case
        codec = Layout.parse("u32:" + ",".join(f"f{i}={t}" for i, t in enumerate(types))).value
        dicts = [{f"f{i}": v for i, v in enumerate(r)} for r in rows]
        items = [",".join(f"f{i}={v!r}" for i, v in enumerate(r)) for r in rows] if as_text else dicts
        assert codec.encode_many(items) == b"".join(codec.encode(d) for d in dicts)

    check()
    codec = Layout.parse("u32:a=u8,b=s32").value
    for bad in (
        [{"a": 1}],  # a field missing
        [{"a": 1, "b": 2, "c": 3}],  # one too many
        [{"a": True, "b": 2}],  # a bool
        [{"a": 256, "b": 2}],  # out of range
        ["a=1,b=0x10"],  # hex: the line path reads it
        ["b=1,a=2"],  # another order
        ["a=007,b=1"],  # a leading zero
    ):
        with pytest.raises((ValueError, TypeError)):
            codec.encode_many(bad)
