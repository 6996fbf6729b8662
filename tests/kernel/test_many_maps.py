"""Read verbs over several maps: a directory on a bpffs, a glob, name:GLOB and a name that
several maps have.  Text: a '==> MAP <==' header before each map; JSON: a "map" field
first.  Each map decodes with its own BTF; the writing verbs take one map and list the
matches when given several."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from helpers import run_cli

pytestmark = pytest.mark.kernel


@pytest.fixture
def app(pindir):
    """Two maps of different layouts (and so BTF) under DIR/app, one elsewhere; the two
    share a name unique to this test."""
    d = os.path.join(pindir, "app")
    os.mkdir(d)
    name = "m" + uuid.uuid4().hex[:8]
    flows, counts = os.path.join(d, "flows"), os.path.join(d, "counts")
    assert (
        run_cli(
            "create", "hash", "--layout", "u32:packets=u64,comm=char[8]", "--name", name, "--pin", flows, "-q"
        ).returncode
        == 0
    )
    assert run_cli("create", "hash", "--layout", "u32:u64", "--name", name, "--pin", counts, "-q").returncode == 0
    other = os.path.join(pindir, "other")
    assert run_cli("create", "hash", "--layout", "u32:u64", "--pin", other, "-q").returncode == 0
    assert run_cli("update", flows, "1", "packets=5,comm=curl").returncode == 0
    assert run_cli("update", counts, "1", "7").returncode == 0
    assert run_cli("update", counts, "2", "8").returncode == 0
    return d, flows, counts, other, name


def test_dump_a_directory_and_a_glob(app):
    d, flows, counts, other, _name = app
    text = run_cli("dump", d).stdout
    sections = text.split("\n\n")
    assert sections[0].splitlines()[0] == f"==> {counts} <==" and sorted(sections[0].splitlines()[1:]) == [
        "1\t7",
        "2\t8",
    ]
    assert sections[1] == f"==> {flows} <==\n1\tpackets=5,comm=curl\n"
    assert run_cli("dump", f"{d}/*").stdout == text
    lines = run_cli("dump", d, "-o", "jsonl").stdout.splitlines()
    assert all(x.startswith('{"map": ') for x in lines)  # "map" first
    rows = sorted((json.loads(x) for x in lines), key=lambda r: (r["map"], r["key"]))
    assert rows == [
        {"map": counts, "key": 1, "value": 7},
        {"map": counts, "key": 2, "value": 8},
        {"map": flows, "key": 1, "value": {"packets": 5, "comm": "curl"}},
    ]
    whole = json.loads(run_cli("dump", d, "-o", "json").stdout)
    assert sorted(whole, key=lambda r: (r["map"], r["key"])) == rows
    r = run_cli("dump", d, "-o", "csv")
    assert r.returncode == 2 and "-o jsonl" in r.stderr
    assert other not in run_cli("dump", d).stdout


def test_names_several_maps_have(app):
    _d, flows, counts, _other, name = app
    rows = [json.loads(x) for x in run_cli("dump", f"name:{name}", "-o", "jsonl").stdout.splitlines()]
    assert {r["map"] for r in rows} == {
        f"id:{json.loads(run_cli('show', p, '-o', 'json').stdout)['id']}" for p in (flows, counts)
    }
    assert len(rows) == 3
    globbed = [json.loads(x) for x in run_cli("dump", f"name:{name[:5]}*", "-o", "jsonl").stdout.splitlines()]
    assert len(globbed) == 3


def test_lookup_getnext_show_watch(app):
    d, flows, counts, _other, _name = app
    assert run_cli("lookup", d, "2").stdout == f"==> {counts} <==\n8\n"
    found = [json.loads(x) for x in run_cli("lookup", d, "1", "-o", "jsonl").stdout.splitlines()]
    assert found == [
        {"map": counts, "key": 1, "value": 7},
        {"map": flows, "key": 1, "value": {"packets": 5, "comm": "curl"}},
    ]
    r = run_cli("lookup", d, "9")
    assert r.returncode == 1 and "no map of 2 has that key" in r.stderr
    nexts = [json.loads(x) for x in run_cli("getnext", d, "-o", "jsonl").stdout.splitlines()]
    assert {n["map"] for n in nexts} == {flows, counts}
    shown = json.loads(run_cli("show", d, "-o", "json").stdout)
    assert sorted(s["pinned"][0] for s in shown) == [counts, flows] and {s["entries"] for s in shown} == {1, 2}
    lines = [json.loads(x) for x in run_cli("watch", d, "-o", "jsonl", "--count", "1").stdout.splitlines()]
    assert [(x["map"], x["entries"]) for x in lines] == [(counts, 2), (flows, 1)]
    r = run_cli("watch", d, "-o", "live", "--count", "1")
    assert r.returncode == 0 and r.stdout.index(counts) < r.stdout.index(flows) and "curl" in r.stdout
    r = run_cli("watch", d, "--hist")
    assert r.returncode == 2 and "take one map" in r.stderr


@pytest.mark.parametrize(
    "args",
    [["update", "{m}", "1", "2"], ["delete", "{m}", "1"], ["clear", "{m}"], ["push", "{m}", "1"], ["freeze", "{m}"]],
    ids=["update", "delete", "clear", "push", "freeze"],
)
def test_writing_verbs_take_one_map(app, args):
    d, flows, counts, _other, name = app
    for ref in (d, f"{d}/*", f"name:{name}"):
        r = run_cli(*[a.format(m=ref) for a in args])
        assert r.returncode == 2, (ref, r.stderr)
        assert "names 2 maps" in r.stderr or "2 maps have that name" in r.stderr, r.stderr
    assert run_cli("lookup", counts, "1").stdout == "7\n"  # nothing changed
