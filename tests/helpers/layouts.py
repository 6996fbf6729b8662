"""Random layouts and values that fit them, for the property tests: every leaf of the
layout language, nesting and arrays (random_side), and a value of a layout's type drawn
by hypothesis (value_for)."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from bpfmap.layout.model import Array, Bytes, Char, Formatted, Pad, Scalar, Struct

C_SCALARS = {
    "u8": "unsigned char",
    "u16": "unsigned short",
    "u32": "unsigned int",
    "u64": "unsigned long long",
    "s8": "signed char",
    "s16": "short",
    "s32": "int",
    "s64": "long long",
    "be16": "unsigned short",
    "be32": "unsigned int",
    "be64": "unsigned long long",
    "le16": "unsigned short",
    "le32": "unsigned int",
    "le64": "unsigned long long",
    "f32": "float",
    "f64": "double",
    "bool": "_Bool",
}
LEAVES = list(C_SCALARS) + ["char[{n}]", "hex[{n}]", "ipv4", "ipv6", "mac", "pad[{n}]"]


def random_side(rng: random.Random, depth: int = 0) -> str:
    fields = []
    for i in range(rng.randint(1, 5)):
        if depth < 2 and rng.random() < 0.2:
            t = "{" + random_side(rng, depth + 1) + "}"
        else:
            t = rng.choice(LEAVES).format(n=rng.randint(1, 9))
        if rng.random() < 0.25 and not t.startswith("pad"):
            t += f"[{rng.randint(1, 3)}]"
        fields.append(f"x{depth}_{i}={t}" if not t.startswith("pad") else t)
    return ",".join(fields)


def value_for(t, draw):
    if isinstance(t, Array):
        return [value_for(t.elem, draw) for _ in range(t.count)]
    if isinstance(t, Struct):
        return {f.name: value_for(f.type, draw) for f in t.fields if not isinstance(f.type, Pad)}
    if isinstance(t, Scalar):
        if t.kind == "float":
            return draw(st.floats(width=t.size * 8, allow_nan=False, allow_infinity=False))
        if t.kind == "bool":
            return draw(st.booleans())
        bits = t.size * 8
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if t.kind == "int" else (0, (1 << bits) - 1)
        return draw(st.integers(lo, hi))
    if isinstance(t, Char):
        return draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=t.size))
    if isinstance(t, Bytes):
        return draw(st.binary(min_size=t.size, max_size=t.size)).hex(" ")
    if isinstance(t, Formatted):
        import ipaddress

        if t.name == "mac":
            return draw(st.binary(min_size=6, max_size=6)).hex(":")
        cls = ipaddress.IPv4Address if t.name == "ipv4" else ipaddress.IPv6Address
        return str(cls(draw(st.binary(min_size=t.size, max_size=t.size))))
    raise AssertionError(t)


# leaves every fast output path writes (flat_side makes a struct of them: f0=..,f1=..)
FLAT_LEAVES = [
    "u8",
    "u16",
    "u32",
    "u64",
    "s8",
    "s16",
    "s32",
    "s64",
    "be16",
    "be32",
    "be64",
    "le32",
    "u128",
    "s128",
    "bool",
    "ipv4",
    "ipv6",
    "mac",
    "char[5]",
    "hex[3]",
    "f64",
]


def flat_side(draw_fields) -> str:
    return ",".join(f"f{i}={t}" for i, t in enumerate(draw_fields))


def key_side(draw, leaves: list[str], most: int) -> str:
    """A key side of 1 to ``most`` leaves drawn from ``leaves`` (hypothesis's ``draw``):
    ``kI=TYPE`` each, ``pad[N]`` unnamed, never padding alone (a ``k9=u16`` first then)."""
    n = draw(st.integers(1, most))
    drawn = [draw(st.sampled_from(leaves)) for _ in range(n)]
    key = ",".join(t if t.startswith("pad") else f"k{i}={t}" for i, t in enumerate(drawn))
    if not key.replace("pad[1]", "").strip(","):
        key = "k9=u16," + key
    return key
