"""One grammar for field paths (bpfmap.layout.fields), and every option that names a field
reading it: no other module parses paths."""

from __future__ import annotations

import os

from helpers import REPO, run_cli

ROOT = os.path.join(REPO, "bpfmap")


def test_sort_and_as_take_the_grammar(bm, pindir):
    pin = f"{pindir}/m"
    lay = "u32:n=u32,hist=u32[3]"
    assert bm("create", "hash", "--layout", lay, "--pin", pin)[0] == 0
    for k, h in ((1, [1, 9, 0]), (2, [5, 2, 0]), (3, [3, 5, 0])):
        assert bm("update", pin, str(k), f"n={k},hist={h}")[0] == 0
    code, out, err = bm("dump", pin, "--sort", "value.hist[1]", "-o", "jsonl")
    assert code == 0, err
    assert [int(line.split('"key": ')[1].split(",")[0]) for line in out.splitlines()] == [2, 3, 1]
    r = run_cli("dump", pin, "--sort", "value.hist[x]")
    assert r.returncode == 2 and "NAME[INDEX]" in r.stderr, r.stderr
    r = run_cli("dump", pin, "--as", "hist[1]=hex")
    assert r.returncode == 2 and "not an array element" in r.stderr, r.stderr
