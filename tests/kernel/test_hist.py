"""hist: slot schemes, bucket building from real maps, and the bpftrace-style bars."""

from __future__ import annotations

import json
import os

import pytest
from helpers import run_cli

from bpfmap import Map


def _fill_array(pindir, counts: dict[int, int], percpu=False):
    m = Map.create("percpu_array" if percpu else "array", 4, 8, 32)
    m.pin(os.path.join(pindir, "lat"))
    for slot, n in counts.items():
        k = slot.to_bytes(4, "little")
        if percpu:  # split the count over the CPUs: hist must sum them
            parts = [n // m.ncpus] * m.ncpus
            parts[0] += n - sum(parts)
            m.update(k, [p.to_bytes(8, "little") for p in parts])
        else:
            m.update(k, n.to_bytes(8, "little"))
    return m


KNOWN = {3: 4, 4: 16, 5: 8, 7: 2, 10: 1}  # slot -> count; slot 6 and 8, 9 are empty


@pytest.mark.parametrize("percpu", [False, True])
def test_cli_draws_a_known_distribution(pindir, percpu):
    with _fill_array(pindir, KNOWN, percpu):
        r = run_cli("hist", os.path.join(pindir, "lat"))
    assert r.returncode == 0, r.stderr
    # bpftrace's layout: label, count, a bar scaled to the largest count (52 wide)
    expected = [
        "[8, 16)     4 |@@@@@@@@@@@@@                                       |",
        "[16, 32)   16 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
        "[32, 64)    8 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |",
        "[64, 128)   0 |                                                    |",
        "[128, 256)  2 |@@@@@@                                              |",
        "[256, 512)  0 |                                                    |",
        "[512, 1K)   0 |                                                    |",
        "[1K, 2K)    1 |@@@                                                 |",
    ]
    assert r.stdout.splitlines() == expected
    for line, (_lo, n) in zip(expected, [(8, 4), (16, 16), (32, 8), (64, 0), (128, 2)]):
        bar = line.split("|")[1]
        assert len(bar) == 52 and bar.count("@") == n * 52 // 16


def test_cli_json_linear_and_bits(pindir):
    with _fill_array(pindir, KNOWN):
        path = os.path.join(pindir, "lat")
        r = run_cli("hist", path, "--linear", "--step", "10", "--min", "100", "-o", "json")
        assert r.returncode == 0, r.stderr
        (h,) = json.loads(r.stdout)
        assert h["group"] is None and h["total"] == sum(KNOWN.values())
        assert h["buckets"][0] == {"low": 130, "high": 140, "count": 4}
        assert h["buckets"][-1] == {"low": 200, "high": 210, "count": 1}
        r = run_cli("hist", path, "--scheme", "bits", "-o", "jsonl")
        assert json.loads(r.stdout)["buckets"][0] == {"low": 4, "high": 8, "count": 4}
        for bad in (["--scheme", "log3"], ["--step", "5"], ["--linear", "--scheme", "bits"], ["-o", "csv"]):
            r = run_cli("hist", path, *bad)
            assert r.returncode == 2 and r.stderr.count("\n") == 1, (bad, r.stderr)


def test_struct_keys_group_histograms(pindir):
    path = os.path.join(pindir, "bypid")
    layout = "pid=u32,slot=u32:u64"
    assert run_cli("create", "hash", "--layout", layout, "--pin", path, "-q").returncode == 0
    for pid, slot, n in ((42, 1, 3), (42, 2, 5), (7, 4, 1)):
        assert run_cli("update", path, f"{pid},{slot}", str(n)).returncode == 0
    r = run_cli("hist", path, "-o", "json")
    hists = sorted(json.loads(r.stdout), key=lambda h: h["group"]["pid"])
    assert [h["group"] for h in hists] == [{"pid": 7}, {"pid": 42}]
    assert hists[1]["buckets"] == [{"low": 2, "high": 4, "count": 3}, {"low": 4, "high": 8, "count": 5}]
    text = run_cli("hist", path).stdout
    assert "pid = 42" in text and "pid = 7" in text


def test_empty_map_exits_1_and_hex_values_need_a_layout(pindir):
    path = os.path.join(pindir, "e")
    assert run_cli("create", "hash", "--key", "4", "--value", "8", "--pin", path, "-q").returncode == 0
    r = run_cli("hist", path)
    assert r.returncode == 1 and "empty" in r.stderr
    odd = os.path.join(pindir, "odd")
    assert run_cli("create", "hash", "--key", "4", "--value", "3", "--pin", odd, "-q").returncode == 0
    assert run_cli("update", odd, "01 00 00 00", "01 02 03").returncode == 0
    r = run_cli("hist", odd)
    assert r.returncode == 2 and "--layout" in r.stderr


def test_cli_takes_the_exporters_names(pindir):
    with _fill_array(pindir, KNOWN):
        path = os.path.join(pindir, "lat")
        for alias, name in (("exp2", "log2"), ("exp2zero", "bits")):
            a = run_cli("hist", path, "--scheme", alias, "-o", "json")
            b = run_cli("hist", path, "--scheme", name, "-o", "json")
            assert a.returncode == 0 and a.stdout == b.stdout, a.stderr
