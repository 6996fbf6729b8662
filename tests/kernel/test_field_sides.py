"""Which side a bare field name means: one rule (bpfmap.layout.fields.side) for every option
that names a field, run here on maps whose key and value share a name.  A name both sides
have is refused with the hint ``key.n``/``value.n``, unless the option only ever reads one
side (fields.ONE_SIDE)."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import run_cli

pytestmark = pytest.mark.kernel

LAYOUT = "n=u32,id=u32:n=u64,slots=u32[3],ts=u64"
HINT = "write key.n or value.n"


@pytest.fixture
def shared(bm, pindir):
    """A hash map whose key and value both have a field ``n``, in opposite orders."""
    pin = f"{pindir}/shared"
    assert bm("create", "hash", "--layout", LAYOUT, "--pin", pin)[0] == 0
    for i in range(1, 5):
        key = json.dumps({"n": i, "id": i})
        value = json.dumps({"n": 10 - i, "slots": [3 * i, 0, 10 - i], "ts": i})
        assert bm("update", pin, key, value)[0] == 0
    return pin


def _ids(out: str) -> list[int]:
    return [json.loads(line)["key"]["id"] for line in out.splitlines()]


@pytest.mark.parametrize(
    "option",
    [
        ["--where", "n>2"],
        ["--sort", "n"],
        ["--as", "n=hex"],
        ["--older-than", "1s", "--time-field", "n"],
    ],
)
def test_dump_options_refuse_a_name_both_sides_have(shared, option):
    r = run_cli("dump", shared, *option)
    assert r.returncode == 2 and HINT in r.stderr and r.stdout == "", r.stderr


def test_dump_options_read_the_side_named(shared):
    r = run_cli("dump", shared, "--where", "key.n>2", "--sort", "key.n", "-o", "jsonl")
    assert r.returncode == 0 and _ids(r.stdout) == [3, 4], r.stderr
    r = run_cli("dump", shared, "--sort", "value.n", "-o", "jsonl")
    assert r.returncode == 0 and _ids(r.stdout) == [4, 3, 2, 1], r.stderr
    r = run_cli("dump", shared, "--sort", "key.n", "--reverse", "--as", "key.n=hex", "-o", "jsonl")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["key"]["n"] for line in r.stdout.splitlines()] == [
        "04 00 00 00",
        "03 00 00 00",
        "02 00 00 00",
        "01 00 00 00",
    ]
    assert [json.loads(line)["value"]["n"] for line in r.stdout.splitlines()] == [6, 7, 8, 9]


def test_sort_by_an_array_is_by_its_sum_on_both_paths(shared):
    """--sort on an array of numbers sorts by its sum (the CHANGELOG says so): the raw path
    and the decoded path (here taken through --as on another field) agree."""
    raw = run_cli("dump", shared, "--sort", "slots", "-o", "jsonl")
    decoded = run_cli("dump", shared, "--sort", "slots", "--as", "ts=hex", "-o", "jsonl")
    assert raw.returncode == decoded.returncode == 0, raw.stderr + decoded.stderr
    assert _ids(raw.stdout) == _ids(decoded.stdout) == [1, 2, 3, 4]  # sums 10, 11, 12, 13
    r = run_cli("dump", shared, "--sort", "slots[2]", "-o", "jsonl")
    assert r.returncode == 0 and _ids(r.stdout) == [4, 3, 2, 1], r.stderr


def test_copy_set_takes_a_bare_name_as_the_targets_value_field(shared, bm, pindir):
    src, dst = f"{pindir}/src", f"{pindir}/dst"
    assert bm("create", "hash", "--layout", "n=u32:x=u64", "--pin", src)[0] == 0
    assert bm("update", src, '{"n": 3}', '{"x": 5}')[0] == 0
    assert bm("create", "hash", "--layout", "n=u32:x=u64,n=u32", "--pin", dst)[0] == 0
    r = run_cli("copy", src, dst, "--set", "n=7")
    assert r.returncode == 0, r.stderr
    r = run_cli("dump", dst, "-o", "jsonl")
    assert [json.loads(line) for line in r.stdout.splitlines()] == [{"key": {"n": 3}, "value": {"x": 5, "n": 7}}]


def test_stacks_fields(bm, pindir):
    counts, st = f"{pindir}/counts", f"{pindir}/stacks"
    assert bm("create", "stack_trace", "--key", "4", "--value", "1016", "--max-entries", "8",
              "--pin", st)[0] == 0  # fmt: skip
    assert bm("create", "hash", "--layout", "pid=u32,kern_stack_id=i32:pid=u32,count=u64", "--pin", counts)[0] == 0
    assert bm("update", counts, '{"pid": 1, "kern_stack_id": 3}', '{"pid": 2, "count": 5}')[0] == 0
    r = run_cli("stacks", counts, "--stack-map", st, "--pid", "pid", "-o", "json")
    assert r.returncode == 2 and "write key.pid or value.pid" in r.stderr, r.stderr
    r = run_cli("stacks", counts, "--stack-map", st, "--pid", "value.pid", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert [s["pid"] for s in json.loads(r.stdout)] == [2]


def test_stack_ids_are_key_fields(bm, pindir):
    """A stack id name both sides have is the key's (fields.ONE_SIDE)."""
    counts, st = f"{pindir}/counts", f"{pindir}/stacks"
    assert bm("create", "stack_trace", "--key", "4", "--value", "1016", "--max-entries", "8",
              "--pin", st)[0] == 0  # fmt: skip
    lay = "kern_stack_id=i32:kern_stack_id=i32,count=u64"
    assert bm("create", "hash", "--layout", lay, "--pin", counts)[0] == 0
    assert bm("update", counts, '{"kern_stack_id": -14}', '{"kern_stack_id": -17, "count": 5}')[0] == 0
    r = run_cli("stacks", counts, "--stack-map", st, "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["kernel"][0]["symbol"] == "[missing kernel stack]"  # -EFAULT: the key's


def test_export_labels(shared, tmp_path):
    def once(labels: str) -> subprocess.CompletedProcess:
        cfg = tmp_path / "export.yaml"
        cfg.write_text(f"metrics:\n  - name: shared_ts\n    map: {shared}\n    value: ts\n    labels: {labels}\n")
        return run_cli("export", str(cfg), "--once")

    r = once("[n]")
    assert r.returncode != 0 and HINT in r.stderr and "shared_ts{" not in r.stdout, r.stderr
    r = once("[key.n]")
    assert r.returncode == 0, r.stderr
    assert 'shared_ts_total{key_n="3"} 3' in r.stdout, r.stdout
    r = once("[value.n]")
    assert r.returncode == 0 and 'shared_ts_total{value_n="7"} 3' in r.stdout, r.stdout


def test_one_side_options_read_their_side(shared, bm, pindir):
    """hist's --slot (a key field) and --field (a value field) read one side each."""
    pin = f"{pindir}/h"
    assert bm("create", "hash", "--layout", "n=u32:n=u64", "--pin", pin)[0] == 0
    for slot, count in ((1, 4), (3, 2)):
        assert bm("update", pin, json.dumps({"n": slot}), json.dumps({"n": count}))[0] == 0
    r = run_cli("hist", pin, "--slot", "n", "--field", "n", "-o", "json")
    assert r.returncode == 0, r.stderr
    (h,) = json.loads(r.stdout)
    assert [(b["low"], b["count"]) for b in h["buckets"]] == [(2, 4), (4, 0), (8, 2)]
