"""Start-up is a feature for a tool called from shell loops: the light verbs (lookup,
update, delete, push, pop, count to a pipe) load no parser, no rich, no table machinery
and no export package.  Checked on the real command (the checkout's bpfmap, as a user
runs it), through the interpreter's own import log (PYTHONPROFILEIMPORTTIME)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import BPFMAP, create_pin

# what a light verb must not load: package names, and any module under them
HEAVY = ("typer", "click", "rich", "bpfmap.output.table", "bpfmap.output.rows", "bpfmap.export")


def imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run bpfmap ARGS with its stdout a pipe; returns the run and every module it imported."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    env.pop("BPFMAP_DEBUG", None)
    r = subprocess.run([*BPFMAP, *args], capture_output=True, text=True, env=env, timeout=60)
    mods, said = set(), []
    for line in r.stderr.splitlines():
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the log's header row
                mods.add(name)
        else:
            said.append(line)
    r.stderr = "\n".join(said)
    return r, mods


def heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.fixture
def pins(pindir):
    return {
        "hash": create_pin(pindir, "h", "hash", "--layout", "u32:u64", "--max-entries", "8"),
        "queue": create_pin(pindir, "q", "queue", "--value", "4", "--max-entries", "8"),
    }


# in order, on one pair of maps: each line reads what the lines before it did
LIGHT = [
    (["update", "{hash}", "1", "10", "-l", "u32:u64"], 0, ""),
    (["lookup", "{hash}", "1", "-l", "u32:u64"], 0, "10\n"),
    (["lookup", "{hash}", "1", "-l", "u32:u64", "-o", "jsonl"], 0, '{"key": 1, "value": 10}\n'),
    (["count", "{hash}"], 0, "1\n"),
    (["delete", "{hash}", "1", "-l", "u32:u64"], 0, ""),
    (["count", "{hash}"], 1, "0\n"),
    (["push", "{queue}", "7", "-l", "u32"], 0, ""),
    (["pop", "{queue}", "-l", "u32"], 0, "7\n"),
    (["pop", "{queue}", "-l", "u32", "-o", "json"], 1, ""),
]


def test_light_verbs_load_no_parser_no_rich_no_tables_no_export(pins):
    for line, code, out in LIGHT:
        r, mods = imported(*(w.format(**pins) for w in line))
        assert (r.returncode, r.stdout) == (code, out), (line, r.stderr)
        assert "bpfmap.cli" in mods  # the log is real: it saw bpfmap's own modules
        assert heavy(mods) == [], f"{' '.join(line)} imported {heavy(mods)}"


def test_the_check_sees_heavy_lines(pins):
    """The same check on lines that need the parser (another option) or a table: it sees them."""
    r, mods = imported("count", pins["hash"], "--where", "value>0")
    assert r.returncode == 1 and "typer" in heavy(mods), r.stderr
    r, mods = imported("dump", pins["hash"], "-o", "table")
    assert r.returncode == 0 and {"rich", "bpfmap.output.table"} <= set(heavy(mods)), r.stderr


# what a plain dump (no --sort, no --percpu) reads to a pipe without: sorting, per-CPU
# reductions, and the standard modules only those, bulk loads and drains use
NOT_FOR_A_PLAIN_DUMP = ("bpfmap.output.sort", "bpfmap.output.percpu", "queue", "signal", "heapq", "array")


def test_a_plain_dump_loads_no_sorting_no_reductions(pins):
    r, mods = imported("dump", pins["hash"], "-l", "u32:u64", "-o", "jsonl")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr  # the map is empty: nothing written
    assert {"bpfmap.cli", "bpfmap.output.dump", "bpfmap.output.rows"} <= mods  # the log saw the dump's own
    assert sorted(mods.intersection(NOT_FOR_A_PLAIN_DUMP)) == []
    r, mods = imported("dump", pins["hash"], "-l", "u32:u64", "--sort", "value", "--top", "1")
    assert r.returncode == 0 and "bpfmap.output.sort" in mods, r.stderr  # the check sees them


# All a plain one-entry line of integers loads (cli/quick.py: bpf(2) through ctypes, and
# nothing of bpfmap that imports typing, re, enum or collections)
QUICK_MODULES = {
    "bpfmap",
    "bpfmap._lazy",
    "bpfmap.errors",
    "bpfmap._sys",
    "bpfmap._sys.attrs",
    "bpfmap._sys.syscall",
    "bpfmap.cli",
    "bpfmap.cli.wording",
    "bpfmap.cli.quick",
}
NOT_FOR_QUICK = ("typing", "re", "enum", "collections", "functools", "contextlib", "importlib", "typer", "rich")


def loaded_by(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the console script's code on ARGS in a python without site (whose .pth files may
    load modules first); returns the run and the modules the command added."""
    code = (
        "import sys; before = set(sys.modules); from bpfmap.cli import main; code = main(sys.argv[1:]); "
        "sys.stdout.flush(); print(' '.join(sorted(set(sys.modules) - before)), file=sys.stderr); sys.exit(code)"
    )
    import site

    env = {k: v for k, v in os.environ.items() if k != "BPFMAP_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([env.get("PYTHONPATH", ""), *site.getsitepackages()])  # what -S leaves out
    r = subprocess.run([sys.executable, "-S", "-c", code, *args], capture_output=True, text=True, env=env, timeout=60)
    *said, mods = r.stderr.splitlines() or [""]
    r.stderr = "\n".join(said)
    return r, set(mods.split())


def test_the_quick_lines_load_only_bpf2_and_their_own_modules(pins):
    for line, code, out in LIGHT:
        if ("count" in line and "{hash}" in line) or ("pop" in line and code):
            continue  # BTF (the hash map was made with --layout) to read, or the kernel's ENOENT: the full path's
        r, mods = loaded_by(*(w.format(**pins) for w in line))
        assert (r.returncode, r.stdout) == (code, out), (line, r.stderr)
        ours = {m for m in mods if m.split(".")[0] == "bpfmap"}
        assert ours == QUICK_MODULES, (line, sorted(ours ^ QUICK_MODULES))
        assert sorted(m for m in NOT_FOR_QUICK if m in mods) == [], line


def test_the_quick_check_sees_a_line_it_hands_over(pins):
    r, mods = loaded_by("lookup", pins["hash"], "1", "-l", "u32:u64", "-o", "yaml")
    assert r.returncode == 2 and "typing" in mods and "bpfmap.view" in mods, r.stderr
