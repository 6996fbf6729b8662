"""bpfmap export's histograms whose counts are an array in the value, summed straight from
raw batches (hist.extract.SlotSums, counted by the extractor's Tally), against the decoded
path and prometheus-client (the oracle), on real kernel maps with random layouts, labels,
display formats, bucket schemes and entries that share label values."""

from __future__ import annotations

import os
import random
import sys
import uuid

import pytest
from helpers import examples
from helpers.layouts import key_side
from helpers.prometheus import client_exposition, parsed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfmap import Map
from bpfmap.export import ConfigError, Exporter, parse_config
from bpfmap.export.exposition import family_text
from bpfmap.layout import Layout

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

pytestmark = pytest.mark.kernel

KEY_LEAVES = ["u8", "u16", "u32", "u64", "s8", "s32", "be16", "be32", "bool", "ipv4", "ipv6", "char[4]", "mac",
              "hex[3]", "pad[1]"]  # fmt: skip
NATIVE = "le64" if sys.byteorder == "little" else "be32"
RAW_COUNTS = ["u64", "u32", "u16", "u8", NATIVE]  # what the raw path sums: unsigned, in the host's order
COUNTS = RAW_COUNTS + ["s32", "s8", "be32" if NATIVE == "le64" else "le64"]
FORMATS = ["uid", "gid", "ifname", "cgroup", "errno"]
TEXTS = ["0", "1", "2", "65", "true", "A", "AA", "0.0.0.1"]  # label texts a static_map names
NAMES = ["zero", "one", "other", 'q"uote']


@st.composite
def cases(draw):
    key = key_side(draw, KEY_LEAVES, 3)
    counts = draw(st.sampled_from(COUNTS))
    slots = draw(st.integers(2, 30))
    before = draw(st.sampled_from(["", "n=u32,", "comm=char[4],", "n=u8,"]))
    after = draw(st.sampled_from(["", ",x=u16"] + ([",comm=char[4]"] if "comm" not in before else [])))
    packed = draw(st.sampled_from(["", "packed "]))  # counts not aligned to their size
    value = f"{packed}{before}slots={counts}[{slots}]{after}"
    fields = [f for f in key.split(",") if not f.startswith("pad")]
    names = [f.split("=")[0] for f in fields]
    labels = draw(st.none() | st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    if labels is not None and "comm" in value and draw(st.booleans()):
        labels.append("comm")  # a label from the value
    shown = {}
    for f in fields:
        name, t = f.split("=")
        if (labels is None or name in labels) and t in ("u32", "u16", "s32") and draw(st.booleans()):
            shown[name] = draw(st.sampled_from(FORMATS))
    if draw(st.booleans()):  # label decoders
        named = labels if labels is not None else names
        for label in draw(st.lists(st.sampled_from(named), unique=True, max_size=2)) if named else []:
            chain = [shown.pop(label)] if label in shown else []
            if draw(st.booleans()):
                table = draw(st.dictionaries(st.sampled_from(TEXTS), st.sampled_from(NAMES), min_size=1, max_size=3))
                chain.append({"static_map": table, **({"default": "other"} if draw(st.booleans()) else {})})
            else:
                chain.append(
                    {"regexp": draw(st.sampled_from(["[0-9]+", "1.*", "A.*", ""])), "drop": draw(st.booleans())}
                )
            shown[label] = chain
    extra = draw(
        st.sampled_from(
            [
                {},
                {"sum_slot": True},
                {"buckets": "linear", "step": 10},
                {"buckets": "fixed", "bounds": [1, 5, 10]},  # slots past the third: +Inf, an error said
                {"buckets": "fixed", "bounds": [2, 4], "sum_slot": True},
                {"buckets": "log2", "multiplier": 1e-6},
            ]
        )
    )
    if draw(st.booleans()):
        extra["slots"] = "slots"
    return f"{key}:{value}", labels, shown, extra, counts


def scrape_pair(pin, layout, labels, shown, extra):
    """(whether the raw path read it, the fast path's text, its decode errors and
    errors, the decoded path's text, its decode errors and errors, the decoded family)"""
    raw = {"name": "lat_seconds", "type": "histogram", "map": pin, "layout": layout, **extra}
    if labels is not None:
        raw["labels"] = labels
    if shown:
        raw["as"] = shown
    e = Exporter(parse_config({"metrics": [raw]}), log=lambda _t: None)
    read_raw = []
    fast_histogram = e._fast_histogram
    e._fast_histogram = lambda m, v: read_raw.append(fast_histogram(m, v)) or read_raw[-1]
    try:
        [metric] = e.metrics
        fast, _n, _m = e.read(metric, fast=True)
        fast_text = "".join(family_text(fast))
        fast_errors = dict(e.decode_errors), dict(e.errors)
        e.decode_errors.clear()
        e.errors[metric.name] = 0
        e._scrape_errors.clear()
        slow, _n, _m = e.read(metric, fast=False)
        slow_text = "".join(family_text(slow))
        return read_raw[0] is not None, fast_text, fast_errors, slow_text, (dict(e.decode_errors), dict(e.errors)), slow
    finally:
        e.close()


def fill(m, lay, rng, count, small):
    """``count`` entries whose key fields come from a few values each, so labels repeat;
    counts small (``small``) or any bytes."""
    ks, vs = lay.key.size, lay.value.size
    alphabet = [0, 1, 2, 0x41] if rng.random() < 0.5 else range(256)
    pools = [bytes(rng.choice(alphabet) for _ in range(ks)) for _ in range(3)]
    for _ in range(count):
        key = bytearray(rng.choice(pools))
        if rng.random() < 0.5:
            key[rng.randrange(ks)] = rng.randrange(256)
        values = [bytes(rng.randrange(4) if small else rng.randrange(256) for _ in range(vs)) for _c in range(m.ncpus)]
        m.update(bytes(key), values if m.percpu else values[0])


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    case=cases(),
    seed=st.binary(min_size=8, max_size=8),
    count=st.integers(0, 60),
    small=st.booleans(),
    percpu=st.sampled_from([None, None, {}, {"percpu": "sum"}, {"percpu": "cpu"}]),
)
def test_raw_histograms_are_what_the_decoded_path_and_prometheus_client_give(bpffs, case, seed, count, small, percpu):
    """Per-CPU maps too (``percpu``: None a hash map, else a per-CPU one's config)."""
    layout, labels, shown, extra, counts = case
    lay = Layout.parse(layout)
    rng = random.Random(seed)
    pin = os.path.join(bpffs, "h" + uuid.uuid4().hex[:12])
    with Map.create("hash" if percpu is None else "percpu_hash", lay.key.size, lay.value.size, max_entries=64) as m:
        fill(m, lay, rng, count, small)
        m.pin(pin)
    # a per-CPU map's raw path sums the CPUs' counts, with labels from the key
    summed = percpu is None or (percpu.get("percpu", "sum") == "sum" and "comm" not in (labels or []))
    try:
        raw, fast, fast_errors, slow, slow_errors, family = scrape_pair(
            pin, layout, labels, shown, {**extra, **(percpu or {})}
        )
        assert raw == (counts in RAW_COUNTS and summed), (layout, labels, shown, extra)  # the raw path where it can
        assert fast == slow, (layout, labels, shown, extra)
        assert fast_errors == slow_errors
        if not any(0xDC80 <= ord(c) <= 0xDCFF for c in fast):  # prometheus-client takes UTF-8
            assert parsed(fast) == parsed(client_exposition([family]))
    finally:
        os.unlink(pin)


def test_one_histogram_of_many_entries(pindir):
    """2,500 entries (more than a chunk) of 27 u64 slots, labels [], summed into one
    histogram: each bucket the entries' own sum, past 2**64."""
    pin = os.path.join(pindir, "slots")
    layout = "u32:n=u64,slots=u64[27]"
    lay = Layout.parse(layout)
    n = 2500
    with Map.create("hash", lay.key.size, lay.value.size, max_entries=n) as m:
        for i in range(n):
            slots = [(i + j) % 5 for j in range(27)]
            slots[26] = (1 << 64) - 1 - i
            m.update(lay.key.encode(i), lay.value.encode({"n": i, "slots": slots}))
        m.pin(pin)
    raw, fast, fast_errors, slow, _se, _family = scrape_pair(pin, layout, [], {}, {"buckets": "linear", "step": 1})
    assert raw and fast == slow
    buckets = {
        s.labels["le"]: s.value for f in text_string_to_metric_families(fast) for s in f.samples if "le" in s.labels
    }
    want = [sum((i + j) % 5 for i in range(n)) for j in range(26)]
    assert buckets["1.0"] == want[0] and buckets["26.0"] == sum(want)
    total = sum(want) + sum((1 << 64) - 1 - i for i in range(n))
    assert buckets["+Inf"] == pytest.approx(total) and total > 1 << 75  # no count wrapped around
    assert fast_errors == ({}, {"lat_seconds": 0})


@pytest.mark.parametrize(
    "metric",
    [
        {"name": "n_total", "value": "n"},
        {"name": "lat_seconds", "type": "histogram", "slots": "slots", "buckets": "fixed", "bounds": [1, 2]},
    ],
    ids=["counter", "histogram"],
)
def test_an_empty_map_counts_no_error(pindir, metric):
    """The decoded path (OpenMetrics reads it) checks the config's fields against an entry
    of zeros where the map has none; that is no entry of the map's: cgroup id 0 has no
    path and 8 slots reach past 2 buckets, but no entry had them."""
    pin = os.path.join(pindir, "empty")
    layout = "id=u64:n=u64,slots=u64[8]"
    lay = Layout.parse(layout)
    with Map.create("hash", lay.key.size, lay.value.size, max_entries=4) as m:
        m.pin(pin)
    raw = {**metric, "map": pin, "layout": layout, "as": {"id": "cgroup"}}
    e = Exporter(parse_config({"metrics": [raw]}), log=lambda _t: None)
    try:
        [metric] = e.metrics
        family, _n, _m = e.read(metric, fast=False)
        assert family.samples == []
        assert e.decode_errors == {} and e.errors == {metric.name: 0}
    finally:
        e.close()


@pytest.mark.parametrize("count", [0, 3])
def test_a_label_decoder_on_no_label_is_refused_on_either_path(pindir, count):
    """A static_map on a field that is no label is a config error, whether the map has
    entries or not, on the raw path as on the decoded one."""
    pin = os.path.join(pindir, "h")
    layout = "k0=u32,k1=u32:slots=u64[4]"
    lay = Layout.parse(layout)
    with Map.create("hash", lay.key.size, lay.value.size, max_entries=4) as m:
        for i in range(count):
            m.update(lay.key.encode({"k0": i, "k1": i}), bytes(lay.value.size))
        m.pin(pin)
    raw = {"name": "lat_seconds", "type": "histogram", "map": pin, "layout": layout, "labels": ["k0"]}
    raw["as"] = {"k1": {"static_map": {0: "zero"}}}
    e = Exporter(parse_config({"metrics": [raw]}), log=lambda _t: None)
    try:
        [metric] = e.metrics
        said = []
        for fast in (True, False):
            with pytest.raises(ConfigError) as err:
                e.read(metric, fast=fast)
            said.append(str(err.value))
        assert said[0] == said[1] and "k1 is not one" in said[0]
    finally:
        e.close()
