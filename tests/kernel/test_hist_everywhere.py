"""One map, the same buckets everywhere: `hist -o json`, `watch --hist` and export's
histogram series read a map through one slot extractor (bpfmap/hist/extract.py), with
the same defaults for where the counts are (slot in the key: its field `slot`, else its
last numeric field; slots in the value: found by themselves)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import run_cli

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

# (options of hist and watch, the export config's bucket lines)
SCHEMES = {
    "log2": ([], "buckets: exp2"),
    "linear": (["--linear", "--step", "10", "--min", "100"], "buckets: linear\n    step: 10\n    min: 100"),
}


def _key_slots(pindir: str) -> tuple[str, dict]:
    """A hash keyed by pid and a latency slot (no field called slot: the last numeric one
    is the slot), the value a count; pid -> slot -> count."""
    path = os.path.join(pindir, "bypid")
    assert run_cli("create", "hash", "--layout", "pid=u32,lat=u32:u64", "--pin", path, "-q").returncode == 0
    counts = {42: {1: 3, 2: 5, 6: 1}, 7: {0: 2, 4: 9}}
    for pid, slots in counts.items():
        for slot, n in slots.items():
            assert run_cli("update", path, f"{pid},{slot}", str(n)).returncode == 0
    return path, {str(pid): slots for pid, slots in counts.items()}


def _value_slots(pindir: str) -> tuple[str, dict]:
    """A hash keyed by pid whose value holds the slot counts beside a comm (found by
    themselves: no option names them)."""
    path = os.path.join(pindir, "hists")
    layout = "u32:slots=u32[8],comm=char[16]"
    assert run_cli("create", "hash", "--layout", layout, "--pin", path, "-q").returncode == 0
    counts = {42: [1, 0, 2, 6, 3, 0, 0, 1], 7: [0, 0, 0, 1, 4, 2, 0, 0]}
    for pid, slots in counts.items():
        value = json.dumps({"slots": slots, "comm": f"c{pid}"})
        assert run_cli("update", path, str(pid), value).returncode == 0, value
    return path, {str(pid): dict(enumerate(slots)) for pid, slots in counts.items()}


def _trimmed(buckets: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(upper bound, count) from the first non-empty bucket to the last."""
    used = [i for i, (_hi, n) in enumerate(buckets) if n]
    return buckets[used[0] : used[-1] + 1] if used else []


def _group_id(group: dict) -> str:
    """A histogram's group by its key: the pid field, or a scalar key."""
    return str(group.get("pid", group.get("key")))


def _from_hist_json(dicts: list[dict]) -> dict[str, list[tuple[float, float]]]:
    return {_group_id(h["group"]): [(float(b["high"]), b["count"]) for b in h["buckets"]] for h in dicts}


def _from_export(text: str, name: str) -> dict[str, list[tuple[float, float]]]:
    """Each series' buckets, de-cumulated: (le, count in that bucket), +Inf left out."""
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    series: dict[str, list[tuple[float, float]]] = {}
    for s in family.samples:
        if s.name == name + "_bucket" and s.labels["le"] != "+Inf":
            series.setdefault(_group_id(s.labels), []).append((float(s.labels["le"]), s.value))
    out = {}
    for gid, cumulative in series.items():
        cumulative.sort()
        counts = [(le, n - (cumulative[i - 1][1] if i else 0)) for i, (le, n) in enumerate(cumulative)]
        out[gid] = _trimmed(counts)
    return out


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("shape", ["key", "value"])
def test_hist_watch_and_export_give_one_map_the_same_buckets(pindir, tmp_path, shape, scheme):
    path, counts = (_key_slots if shape == "key" else _value_slots)(pindir)
    options, buckets = SCHEMES[scheme]

    r = run_cli("hist", path, *options, "-o", "json")
    assert r.returncode == 0, r.stderr
    by_hist = _from_hist_json(json.loads(r.stdout))

    r = run_cli("watch", path, "--hist", *options, "--count", "1", "-o", "jsonl")
    assert r.returncode == 0, r.stderr
    by_watch = _from_hist_json([json.loads(line) for line in r.stdout.splitlines()])

    config = tmp_path / "export.yaml"
    config.write_text(f"metrics:\n  - name: lat\n    type: histogram\n    map: {path}\n    {buckets}\n")
    r = run_cli("export", str(config), "--once")
    assert r.returncode == 0, r.stderr
    by_export = _from_export(r.stdout, "lat")

    # the counts written are what every reader shows, each slot where its scheme puts it
    step, low = (10, 100) if scheme == "linear" else (None, None)
    expected = {}
    for gid, slots in counts.items():
        highs = {s: (low + (s + 1) * step if step else (2 if s == 0 else 1 << (s + 1))) for s in range(8)}
        expected[gid] = _trimmed([(float(highs[s]), slots.get(s, 0)) for s in range(8)])
    assert by_hist == expected
    assert by_watch == expected
    assert by_export == expected
