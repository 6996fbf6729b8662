"""bpfmap export's series straight from raw batches where labels leave key fields out
(entries summed per series) or show fields through display formats (export.exposition.Summed),
against the decoded path and prometheus-client (the oracle), on real kernel maps with
random layouts, random labels and entries that share label values."""

from __future__ import annotations

import math
import os
import random
import uuid

import pytest
from helpers import examples
from helpers.layouts import key_side
from helpers.prometheus import client_exposition, parsed
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bpfmap import Map
from bpfmap.export import Exporter, parse_config
from bpfmap.export.exposition import encode, family_text
from bpfmap.layout import Layout

prometheus_client = pytest.importorskip("prometheus_client")

pytestmark = pytest.mark.kernel

KEY_LEAVES = ["u8", "u16", "u32", "u64", "s8", "s32", "be16", "be32", "le64", "bool", "ipv4", "ipv6", "char[4]",
              "mac", "hex[3]", "pad[1]"]  # fmt: skip
NUMBERS = ["u64", "u32", "s64", "s16", "be32", "f64", "f32", "u8"]
FORMATS = ["uid", "gid", "ifname", "cgroup", "errno"]


@st.composite
def cases(draw):
    key = key_side(draw, KEY_LEAVES, 4)
    number = draw(st.sampled_from(NUMBERS))
    value = f"n={number}" + (",v=u16" if draw(st.booleans()) else "")
    fields = [f for f in key.split(",") if not f.startswith("pad")]
    names = [f.split("=")[0] for f in fields]
    labels = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    if "v=" in value and draw(st.booleans()):
        labels.append("v")  # a label from the value
    shown = {}
    for f in fields:
        name, t = f.split("=")
        if name in labels and t in ("u32", "u16", "s32") and draw(st.booleans()):
            shown[name] = draw(st.sampled_from(FORMATS))
    return f"{key}:{value}", labels, shown


def wire(text: str) -> str:
    return encode(text).decode("utf-8")


def scrape_pair(pin, layout, labels, shown, raw_path=True):
    """(the fast path's text, its decode errors, the decoded path's text, its decode
    errors, the decoded family)"""
    raw = {"name": "m_total", "map": pin, "layout": layout, "value": "n", "labels": labels}
    if shown:
        raw["as"] = shown
    e = Exporter(parse_config({"metrics": [raw]}), log=lambda _t: None)
    try:
        [metric] = e.metrics
        fast, _n, _m = e.read(metric, fast=True)
        assert (fast.lines is not None) == raw_path, (layout, labels, shown)  # the raw path where it can
        fast_text = "".join(family_text(fast))  # keys that may read alike: read again summed in its place
        fast_errors = dict(e.decode_errors)
        e.decode_errors.clear()
        slow, _n, _m = e.read(metric, fast=False)
        assert slow.lines is None
        slow_text = "".join(family_text(slow))
        # as written: a byte that was not UTF-8 is \\xNN, whether a line holds it as a
        # lone surrogate (the raw path) or as that text (the decoded path's labels)
        return wire(fast_text), fast_errors, wire(slow_text), dict(e.decode_errors), slow
    finally:
        e.close()


def fill(m, lay, rng, count):
    """``count`` entries whose fields come from a few values each, so labels repeat."""
    ks, vs = lay.key.size, lay.value.size
    pools = [bytes(rng.randrange(256) for _ in range(ks)) for _ in range(3)]
    for _ in range(count):
        key = bytes(rng.choice(pools)[i] if rng.random() < 0.7 else rng.randrange(256) for i in range(ks))
        value = bytes(rng.randrange(256) for _ in range(vs))
        m.update(key, value)


def random_map(bpffs, layout: str, filler, seed: bytes, count: int) -> str:
    """A hash map of ``layout`` (64 entries at most) pinned on ``bpffs``: ``filler(m, lay,
    rng, count)`` fills it from ``seed``, then its non-finite floats are dropped."""
    lay = Layout.parse(layout)
    pin = os.path.join(bpffs, "m" + uuid.uuid4().hex[:12])
    with Map.create("hash", lay.key.size, lay.value.size, max_entries=64) as m:
        filler(m, lay, random.Random(seed), count)
        drop_non_finite(m, lay, layout)
        m.pin(pin)
    return pin


def drop_non_finite(m, lay, layout: str) -> None:
    """Delete the entries whose float ``n`` is NaN or infinite (NaN payloads: the decoded
    path's floats are plain numbers)."""
    if "f64" not in layout and "f32" not in layout:
        return
    for k, v in list(m.items()):
        n = lay.value.decode(v)["n"]
        if isinstance(n, float) and not math.isfinite(n):
            m.delete(k)


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases(), seed=st.binary(min_size=8, max_size=8), count=st.integers(0, 60))
@example(case=("k0=u32,k1=u8:n=u64", ["k0"], {"k0": "cgroup"}), seed=bytes(8), count=0)  # cgroup id 0 has no path
def test_summed_series_are_what_the_decoded_path_and_prometheus_client_give(bpffs, case, seed, count):
    layout, labels, shown = case
    pin = random_map(bpffs, layout, fill, seed, count)
    types = dict(f.split("=") for f in layout.replace(":", ",").split(",") if "=" in f)
    # floats summed over labels whose bytes are not one text each go the decoded way (a
    # float sum depends on its order)
    every = {n for n in types if n.startswith("k")}
    raw_path = (
        ":n=f" not in layout
        or set(labels) >= every
        or not any(types[p] in ("bool", "char[4]") or p in shown for p in labels)
    )
    try:
        fast, fast_errors, slow, slow_errors, family = scrape_pair(pin, layout, labels, shown, raw_path)
        assert fast == slow, (layout, labels, shown)
        assert fast_errors == slow_errors
        if fast.isascii() or not any(0xDC80 <= ord(c) <= 0xDCFF for c in fast):  # prometheus-client takes UTF-8
            assert parsed(fast) == parsed(client_exposition([family]))
    finally:
        os.unlink(pin)


def test_a_summed_map_of_many_entries_per_series(pindir):
    """1,000 entries summed into 10 series, each series' sum the entries' own."""
    pin = os.path.join(pindir, "flows")
    layout = "saddr=ipv4,daddr=ipv4,dport=u16,proto=u8,pad[1]:n=u64"
    lay = Layout.parse(layout)
    with Map.create("hash", lay.key.size, lay.value.size, max_entries=1000) as m:
        for i in range(1000):
            key = {"saddr": f"10.0.0.{i % 10}", "daddr": "10.0.1.1", "dport": 80, "proto": i // 10}
            m.update(lay.key.encode(key), lay.value.encode({"n": i}))
        m.pin(pin)
    fast, _fe, slow, _se, _family = scrape_pair(pin, layout, ["saddr", "daddr", "dport"], {})
    assert fast == slow
    lines = fast.splitlines()[2:]
    assert len(lines) == 10
    want = {f"10.0.0.{j}": sum(range(j, 1000, 10)) for j in range(10)}
    got = {line.split('"')[1]: int(line.rsplit(" ", 1)[1]) for line in lines}
    assert got == want


TEXTS = ["0", "1", "2", "65", "255", "true", "false", "A", "AA", "16705", "0.0.0.1", '"', "\\", "\n", "A\\"]
NAMES = ["zero", "one", "other", 'q"uote', "back\\slash", "new\nline", "é"]
SMALL = [0, 1, 2, 0x41, 0xFF, 0x22, 0x5C, 0x0A]  # the key bytes: numbers, A, not UTF-8, " \ and a newline
PATTERNS = ["[0-9]+", "1.*", "A.*", ".*5", "", "(?i)a+"]


@st.composite
def decorated(draw):
    """A case of :func:`cases` with label decoders (static_map, regexp) on some labels."""
    layout, labels, shown = draw(cases())
    if not labels:
        labels = [draw(st.sampled_from([f.split("=")[0] for f in layout.split(":")[0].split(",") if "=" in f]))]
    spec = {}
    for label in draw(st.lists(st.sampled_from(labels), unique=True, min_size=1)):
        chain = [shown.pop(label)] if label in shown else []
        for _ in range(draw(st.integers(1, 2))):
            if draw(st.booleans()):
                table = draw(st.dictionaries(st.sampled_from(TEXTS), st.sampled_from(NAMES), min_size=1, max_size=4))
                item = {"static_map": table}
                if draw(st.booleans()):
                    item["default"] = draw(st.sampled_from(NAMES))
            else:
                item = {"regexp": draw(st.sampled_from(PATTERNS)), "drop": draw(st.booleans())}
            chain.append(item)
        spec[label] = chain
    return layout, labels, {**shown, **spec}


def fill_small(m, lay, rng, count):
    """``count`` entries whose key bytes come from a few values, so labels repeat and some
    match the static_maps' texts."""
    ks, vs = lay.key.size, lay.value.size
    pools = [bytes(rng.choice(SMALL) for _ in range(ks)) for _ in range(4)]
    for _ in range(count):
        key = bytearray(rng.choice(pools))
        if rng.random() < 0.3:
            key[rng.randrange(ks)] = rng.choice(SMALL)
        m.update(bytes(key), bytes(rng.randrange(256) for _ in range(vs)))


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=decorated(), seed=st.binary(min_size=8, max_size=8), count=st.integers(0, 60))
def test_label_decoders_on_raw_batches_are_what_the_decoded_path_gives(bpffs, case, seed, count):
    """static_map and regexp on the series summed from raw batches: the same series,
    numbers and decode errors as the decoded path, and as prometheus-client reads them."""
    layout, labels, shown = case
    pin = random_map(bpffs, layout, fill_small, seed, count)
    raw_path = ":n=f" not in layout  # floats over decoded labels go the decoded way
    try:
        fast, fast_errors, slow, slow_errors, family = scrape_pair(pin, layout, labels, shown, raw_path)
        assert fast == slow, (layout, labels, shown)
        assert fast_errors == slow_errors
        if not any(0xDC80 <= ord(c) <= 0xDCFF for c in fast):
            assert parsed(fast) == parsed(client_exposition([family]))
    finally:
        os.unlink(pin)
