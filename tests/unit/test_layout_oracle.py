"""Layouts against the C compiler: random layouts (nesting, arrays, every type) laid out
by bpfmap and by gcc must agree on every size and offset, and round-trip values."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from helpers import examples
from helpers.layouts import C_SCALARS, random_side, value_for
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfmap import UsageError
from bpfmap.layout import Layout
from bpfmap.layout.lang import parse_side
from bpfmap.layout.model import Array, Bytes, Char, Formatted, Pad, Scalar, Struct


def c_decl(t, name: str, packed: bool) -> str:
    """A C declaration of ``name`` with the same layout as model type ``t``."""
    dims = ""
    while isinstance(t, Array):
        dims += f"[{t.count}]"
        t = t.elem
    attr = " __attribute__((packed))" if packed else ""
    if isinstance(t, Scalar):
        return f"{C_SCALARS[t.name]} {name}{dims};"
    if isinstance(t, (Char, Bytes, Pad)):
        return f"{'char' if isinstance(t, Char) else 'unsigned char'} {name}{dims}[{t.size}];"
    if isinstance(t, Formatted):
        inner = {"ipv4": "unsigned int v;", "ipv6": "unsigned int v[4];", "mac": "unsigned char v[6];"}[t.name]
        return f"struct {{ {inner} }}{attr} {name}{dims};"
    assert isinstance(t, Struct)
    body = " ".join(c_decl(f.type, f.name or f"pad{j}", packed) for j, f in enumerate(t.fields))
    return f"struct {{ {body} }}{attr} {name}{dims};"


@pytest.fixture(scope="module")
def gcc():
    path = shutil.which("gcc") or shutil.which("cc")
    if path is None:
        pytest.skip("needs gcc")
    return path


def test_random_layouts_match_gcc(gcc, tmp_path):
    rng = random.Random(20261125)
    cases = []
    for i in range(150):
        packed = rng.random() < 0.3
        text = random_side(rng)
        t = parse_side(("packed " if packed else "") + text)
        if not isinstance(t, Struct):
            continue
        cases.append((i, text, packed, t))
    lines = ["#include <stdio.h>", "#include <stddef.h>"]
    for i, _text, packed, t in cases:
        body = " ".join(c_decl(f.type, f.name or f"pad{j}", packed) for j, f in enumerate(t.fields))
        lines.append(f"struct s{i} {{ {body} }}{' __attribute__((packed))' if packed else ''};")
    lines.append("int main(void) {")
    for i, _text, _packed, t in cases:
        offs = " ".join("%zu" for f in t.fields)
        args = ", ".join(f"offsetof(struct s{i}, {f.name or f'pad{j}'})" for j, f in enumerate(t.fields))
        lines.append(f'printf("{i} %zu %zu {offs}\\n", sizeof(struct s{i}), _Alignof(struct s{i}), {args});')
    lines.append("return 0; }")
    src = tmp_path / "layouts.c"
    src.write_text("\n".join(lines))
    subprocess.run([gcc, "-o", str(tmp_path / "layouts"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "layouts")], capture_output=True, text=True, check=True).stdout
    got = {int(line.split()[0]): list(map(int, line.split()[1:])) for line in out.splitlines()}
    assert len(got) == len(cases) > 100
    for i, text, packed, t in cases:
        size, align, *offsets = got[i]
        ours = [t.size, t.align, *[f.offset for f in t.fields]]
        assert ours == [size, align, *offsets], f"{'packed ' if packed else ''}{text}"


@settings(max_examples=examples(150), deadline=None)
@given(st.randoms(use_true_random=False), st.booleans(), st.data())
def test_round_trip(rng, packed, data):
    text = random_side(rng)
    codec = Layout.parse(("packed " if packed else "") + text + ":u8").key
    value = value_for(codec.type, data.draw)
    raw = codec.encode(value)
    assert len(raw) == codec.size
    decoded = codec.decode(raw)
    assert codec.encode(decoded) == raw
    if not isinstance(codec.type, Struct):
        return
    assert decoded == value
    # the text forms parse back to the same bytes
    assert codec.parse(__import__("json").dumps(decoded)) == raw


@given(st.text(max_size=60))
def test_hostile_layout_strings_raise_only_usage_errors(text):
    try:
        Layout.parse(text)
    except UsageError:
        pass


@given(st.text(alphabet="u8163264bexhcar[]{},=:_ pkdv0129", max_size=40))
def test_layout_shaped_garbage_raises_only_usage_errors(text):
    try:
        Layout.parse(text)
    except UsageError:
        pass


@given(st.text(max_size=40))
def test_hostile_values_raise_only_usage_errors(text):
    codec = Layout.parse("a=u8,b=ipv4,c=char[4],d={e=s16,f=mac}[2],g=f32:u8").key
    try:
        codec.parse(text)
    except UsageError:
        pass


@pytest.mark.parametrize(
    "text",
    [
        "{" * 5000 + "u8" + "}" * 5000 + ":u8",
        "u8" + "[1000]" * 10 + ":u8",
        "x=" * 3000 + "u8:u8",
        ",".join(["u8"] * 20000) + ":u8",
    ],
)
def test_pathological_layouts(text):
    try:
        Layout.parse(text)
    except UsageError:
        pass


def test_deep_json_value():
    codec = Layout.parse("a=u8,b=u8:u8").key
    with pytest.raises(UsageError):
        codec.parse("[" * 100000 + "]" * 100000)


@settings(max_examples=examples(100), deadline=None)
@given(st.randoms(use_true_random=False), st.data())
def test_batch_decoding_equals_one_by_one(rng, data):
    """decode_many has fast paths (casts, one struct.Struct, generated code); they must
    agree with the per-value decoder on every layout."""
    codec = Layout.parse(random_side(rng) + ":u8").key
    values = [value_for(codec.type, data.draw) for _ in range(3)]
    buf = b"".join(codec.encode(v) for v in values)
    one = [codec.decode(buf[i * codec.size : (i + 1) * codec.size]) for i in range(3)]
    assert codec.decode_many(buf, 3) == one


@pytest.mark.parametrize(
    "text",
    ["u32", "s16", "f64", "be16", "a=u32,b=be16,c=ipv4,d=mac,e=char[4],f=hex[2]", "x=u8,y=u64", "e=ipv6,z=bool,q=le32"],
)
@settings(max_examples=examples(30), deadline=None)
@given(data=st.data())
def test_batch_encoding_and_decoding_fast_paths(text, data):
    codec = Layout.parse(text + ":u8").key
    vals = [value_for(codec.type, data.draw) for _ in range(5)]
    buf = b"".join(codec.encode(v) for v in vals)
    assert codec.decode_many(buf, 5) == [codec.decode(buf[i * codec.size : (i + 1) * codec.size]) for i in range(5)]
    fast = codec.encode_many(vals)
    if fast is not None:
        assert fast == buf
