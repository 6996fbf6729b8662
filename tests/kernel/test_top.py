"""bpfmap top: one line per map per refresh for scripts (rates equal what was added between
refreshes), and the live screen in a real terminal (tmux): sort, filter, quit, screen
restored."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time

import pytest
from helpers import BPFMAP_SH, run_cli
from helpers import create_pin as create
from helpers.programs import update_elem

pytestmark = pytest.mark.kernel


ADD_RANDOM_KEY = f"""
    call get_prandom_u32
    *(u32 *)(r10 - 4) = r0
    r1 = 1
    *(u64 *)(r10 - 16) = r1
    {update_elem("m", 4, 16)}
    r0 = 0
    exit
"""


def test_jsonl_rows_and_rates(pindir):
    """A program (a socket filter run with BPF_PROG_TEST_RUN) adds entries between the
    first and second refresh: the second row's rate times its interval is what it added;
    a full map's fill is 1.0, and it sorts first."""
    from bpfmap import Map, Program

    grow = create(pindir, "grow", "hash", "--layout", "u32:u64", "--max-entries", "1000")
    full = create(pindir, "full", "hash", "--layout", "u32:u64", "--max-entries", "10")
    assert run_cli("update", full, "--from", "-", input="".join(f"{i}\t{i}\n" for i in range(10))).returncode == 0
    cmd = [sys.executable, "-m", "bpfmap", "top", f"{pindir}/*", "-o", "jsonl", "--count", "2", "--interval", "1.5"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    first = [json.loads(p.stdout.readline()) for _ in range(2)]
    assert {r["pinned"][0] for r in first} == {grow, full} and all(r["rate"] is None for r in first)
    with Map.open(grow) as m, Program.load("socket_filter", ADD_RANDOM_KEY, {"m": m}) as prog:
        for _ in range(300):
            prog.test_run(bytes(20))
        added = len(list(m.keys()))
    out, _ = p.communicate(timeout=30)
    second = {r["pinned"][0]: r for r in map(json.loads, out.splitlines())}
    assert added > 250 and second[grow]["entries"] == added
    assert round(second[grow]["rate"] * second[grow]["interval"]) == added
    assert second[full]["fill"] == 1.0 and second[full]["rate"] == 0
    assert [r["pinned"][0] for r in first][0] == full  # sorted by fill, fullest first


def test_selection_and_refusals(pindir):
    a = create(pindir, "a", "hash", "--layout", "u32:u64", "--name", "topsel_a")
    create(pindir, "b", "array", "--layout", "u32:u64", "--max-entries", "4")
    rows = [json.loads(x) for x in run_cli("top", "name:topsel_*", "-o", "jsonl", "--count", "1").stdout.splitlines()]
    assert [r["pinned"] for r in rows] == [[a]]
    rows = [json.loads(x) for x in run_cli("top", pindir, "-o", "jsonl", "--count", "1").stdout.splitlines()]
    assert len(rows) == 2  # a directory: every pin below it
    r = run_cli("top", "--sort", "size", "-o", "jsonl")
    assert r.returncode == 2 and "fill, entries, rate, memory, name" in r.stderr


def test_live_screen_in_a_real_terminal(pindir, tmux, tmp_path):
    full = create(pindir, "topfull", "hash", "--layout", "u32:u64", "--max-entries", "4", "--name", "topfull")
    create(pindir, "topother", "hash", "--layout", "u32:u64", "--name", "topother")
    assert run_cli("update", full, "--from", "-", input="".join(f"{i}\t{i}\n" for i in range(4))).returncode == 0
    rc_file = tmp_path / "rc"
    exe = BPFMAP_SH
    tmux.start(f"{exe} top {shlex.quote(pindir)} --interval 0.3; echo $? > {rc_file}; echo after-top; sleep 30")
    screen = tmux.wait_for("sort: fill")
    assert "topfull" in screen and "100.0%" in screen and "topother" in screen
    assert screen.index("topfull") < screen.index("topother")  # fullest first
    tmux.keys("s")
    tmux.wait_for("sort: entries")
    tmux.keys("/", "o", "t", "h", "Enter")
    screen = tmux.wait_for("filter: oth")
    time.sleep(0.5)
    screen = tmux.screen()
    assert "topother" in screen and "topfull" not in screen
    tmux.keys("q")
    screen = tmux.wait_for("after-top")
    assert "sort:" not in screen  # the alternate screen is gone: the terminal is as it was
    assert rc_file.read_text().strip() == "0"
