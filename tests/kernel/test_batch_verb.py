"""bpfmap batch: many commands in one process, with the output of running them one by one."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import run_cli


@pytest.fixture
def counts(pindir):
    path = os.path.join(pindir, "counts")
    assert run_cli("create", "hash", "--layout", "u32:u64", "--pin", path, "-q").returncode == 0
    for k, v in ((1, 10), (2, 20), (3, 30)):
        assert run_cli("update", path, str(k), str(v)).returncode == 0
    return path


def lines_for(path: str, pindir: str) -> list[str]:
    """A mix: fast-path lookups/updates/deletes, lines the full parser takes (other
    options, other verbs), quoting and JSON."""
    return [
        f"lookup {path} 1",
        f"lookup {path} 2 -o json",
        f"lookup {path} 3 --layout u32:u64 -o jsonl",
        f"lookup {path} 1 --layout=u32:- --output=text",
        f"update {path} 4 40",
        f"lookup {path} 4",
        f"update {path} 5 '50' --noexist",
        f"delete {path} 2",
        f"lookup {path} 1 --exists",
        f"dump {path} -o jsonl --sort key",
        f"show {path} -o json",
        f"create hash --layout u32:u64 --pin {pindir}/made -q",
        f"update {pindir}/made 7 70",
        f"lookup {pindir}/made 7",
    ]


def one_by_one(lines: list[str]) -> tuple[str, int]:
    out = []
    for line in lines:
        r = subprocess.run(f"bpfmap {line}", shell=True, capture_output=True, text=True)
        out.append(r.stdout)
        if r.returncode:
            return "".join(out), r.returncode
    return "".join(out), 0


def test_batch_output_is_what_the_commands_print_one_by_one(pindir, counts, tmp_path):
    lines = lines_for(counts, pindir)
    expected, code = one_by_one(lines)
    assert code == 0
    # reset the maps the first run changed, then run the same lines as one batch
    for k in ("4", "5"):
        run_cli("delete", counts, k)
    run_cli("update", counts, "2", "20")
    os.unlink(f"{pindir}/made")
    script = tmp_path / "cmds"
    script.write_text("# a comment\n\n" + "\n".join(lines) + "\n")
    r = run_cli("batch", str(script))
    assert r.returncode == 0, r.stderr
    # show's JSON holds an id and a memlock that are the same map's; made's is a new map
    assert r.stdout.count("\n") == expected.count("\n")
    got_lines = [x for x in r.stdout.splitlines() if '"id"' not in x]
    want_lines = [x for x in expected.splitlines() if '"id"' not in x]
    assert got_lines == want_lines


def test_stdin_comments_continuations_and_quotes(counts):
    text = f"""
lookup {counts} 1   # the first
# a whole comment line
lookup \\
  {counts} \\
  3
update {counts} 9 "90"
lookup {counts} 9
"""
    r = run_cli("batch", "-", input=text)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "10\n30\n90\n"


def test_a_failing_line_stops_the_batch_with_its_number(counts):
    text = f"lookup {counts} 1\nlookup {counts} --bogus 1\nupdate {counts} 1 99\n"
    r = run_cli("batch", "-", input=text)
    assert r.returncode == 2
    assert r.stdout == "10\n"
    single = run_cli("lookup", counts, "--bogus", "1")  # the message a single command gives, numbered
    assert single.returncode == 2
    assert r.stderr == single.stderr.replace("bpfmap: ", "bpfmap: line 2: ", 1)
    assert run_cli("lookup", counts, "1").stdout == "10\n"  # line 3 did not run
    r = run_cli("batch", "-", input=f"lookup {counts} 1\nlookup {counts} 77\nupdate {counts} 1 99\n")
    assert r.returncode == 1 and "line 2: " in r.stderr and "key not found" in r.stderr
    r = run_cli("batch", "-", input=f"frobnicate {counts}\n")
    assert r.returncode == 2 and r.stderr.startswith("bpfmap: line 1: ")


def test_keep_going_runs_the_rest_and_exits_with_the_worst(counts):
    text = f"lookup {counts} 77\nlookup {counts} --bogus\nupdate {counts} 1 99\nlookup {counts} 1\n"
    r = run_cli("batch", "-", "--keep-going", input=text)
    assert r.returncode == 2
    assert r.stdout == "99\n"
    assert [x.split(":")[1].strip() for x in r.stderr.splitlines()] == ["line 1", "line 2"]


def test_maps_are_opened_once(counts, tmp_path, monkeypatch, capsys):
    from bpfmap.cli import main
    from bpfmap.core.maps import Map

    opened = []
    real = Map._open.__func__

    def counting(cls, ref, readonly=False):
        opened.append((ref, readonly))
        return real(cls, ref, readonly)

    monkeypatch.setattr(Map, "_open", classmethod(counting))
    script = tmp_path / "many"
    script.write_text("".join(f"lookup {counts} {1 + i % 3}\n" for i in range(200)) + f"update {counts} 1 11\n")
    fds = len(os.listdir("/proc/self/fd"))
    assert main(["batch", str(script)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == ["10", "20", "30"] and len(out.splitlines()) == 200
    assert opened == [(counts, True), (counts, False)]  # read-only once, for writing once
    assert len(os.listdir("/proc/self/fd")) == fds  # and both closed when the batch ended


def test_a_repeated_line_is_read_once_until_the_parser_runs_a_line(counts, pindir, tmp_path, monkeypatch, capsys):
    """A plain line that comes again is not read again (the file system checks of its map
    reference included); after a line the parser runs (which may make pins and files),
    every line is read afresh: a pin made there is seen by the line after it."""
    from bpfmap.cli import batch, main

    reads = []
    real = batch.parse_fast

    def counting(words):
        reads.append(" ".join(words))
        return real(words)

    monkeypatch.setattr(batch, "parse_fast", counting)
    made = os.path.join(pindir, "made")
    lookup = f"lookup {counts} 1"
    script = tmp_path / "many"
    script.write_text(
        f"{lookup}\n" * 100
        + f"create hash --layout u32:u64 --pin {made} -q\n"
        + f"{lookup}\n" * 50
        + f"update {made} 7 70\nlookup {made} 7\n"
    )
    assert main(["batch", str(script)]) == 0
    assert capsys.readouterr().out.splitlines() == ["10"] * 150 + ["70"]
    assert reads.count(lookup) == 2  # once before the create, once after
    assert reads.count(f"update {made} 7 70") == 1


# -- the parser-free path of plain lookups, updates, deletes and dumps -----------------------------


def _maps(root: str) -> dict[str, str]:
    """The same maps, made afresh under ``root``."""
    os.mkdir(root)
    paths = {n: os.path.join(root, n) for n in ("counts", "pcpu", "flows", "jobs")}
    made = [
        ("queue", "--value", "8", "--max-entries", "2", "--pin", paths["jobs"]),
        ("hash", "--layout", "u32:u64", "--pin", paths["counts"]),
        ("percpu_array", "--layout", "u32:u64", "--max-entries", "4", "--pin", paths["pcpu"]),
        ("hash", "--layout", "saddr=ipv4,dport=be16:packets=u64,comm=char[8]", "--pin", paths["flows"]),
    ]
    for args in made:
        assert run_cli("create", *args, "-q").returncode == 0
    for k, v in ((1, 10), (2, 20)):
        assert run_cli("update", paths["counts"], str(k), str(v)).returncode == 0
    return paths


CASES = [
    ["lookup", "counts", "1"],
    ["lookup", "counts", "1", "-o", "json"],
    ["lookup", "counts", "1", "--output=jsonl"],
    ["lookup", "counts", "1", "-o", "TABLE"],
    ["lookup", "counts", "0x2", "--layout", "u32:u64"],
    ["lookup", "counts", "99"],
    ["lookup", "counts", "99", "-o", "json"],
    ["lookup", "counts", "01 00 00 00", "-l", "-:u64"],
    ["lookup", "counts", "abc"],
    ["lookup", "counts", "1", "-l", "u16:u64"],
    ["lookup", "counts"],
    ["lookup", "pcpu", "2"],
    ["lookup", "pcpu", "9", "-o", "json"],
    ["lookup", "nope", "1"],
    ["update", "counts", "6", "60"],
    ["lookup", "counts", "6"],
    ["update", "counts", "6", "x"],
    ["update", "counts", "70000000000", "1"],
    ["update", "pcpu", "1", "5"],
    ["lookup", "pcpu", "1", "-o", "json"],
    ["update", "flows", "saddr=10.0.0.1,dport=80", "packets=3,comm=curl"],
    ["lookup", "flows", "saddr=10.0.0.1,dport=80", "-o", "json"],
    ["update", "flows", "saddr=10.0.0.300,dport=80", "packets=3,comm=curl"],
    ["delete", "counts", "6"],
    ["delete", "counts", "6"],
    ["delete", "pcpu", "1"],
    ["dump", "counts"],
    ["dump", "counts", "-o", "json"],
    ["dump", "counts", "-o", "csv"],
    ["dump", "pcpu", "-o", "jsonl"],
    ["dump", "flows", "--output=json"],
    ["dump", "flows", "-l", "hex[6]:u64,char[8]"],
    ["dump", "flows", "-l", "u32:u64"],
    ["dump", "nope"],
    ["count", "counts"],
    ["count", "counts", "-l", "u32:u64"],
    ["count", "jobs"],
    ["count", "nope"],
    ["pop", "jobs"],
    ["push", "jobs", "7", "-l", "u64"],
    ["push", "jobs", "-8", "--layout", "s64"],
    ["push", "jobs", "9", "-l", "u64"],
    ["push", "jobs", "9", "-l", "u64", "--overwrite"],
    ["push", "jobs", "x", "-l", "u64"],
    ["push", "counts", "1"],
    ["pop", "jobs", "-l", "u64", "-o", "json"],
    ["pop", "jobs", "-o", "jsonl", "-l", "s64"],
    ["pop", "jobs", "-l", "u64"],
    ["pop", "counts"],
    ["delete", "counts", "1"],
    ["delete", "counts", "2"],
    ["count", "counts"],
]


def test_plain_lines_give_what_the_parser_gives(pindir, capsys):
    """Each case through the fast path on one set of maps and through the command-line
    parser on an identical set, in order: the same exit code, stdout and stderr."""
    import bpfmap.cli as cli
    from bpfmap.cli.verbs import parse_fast, run_fast

    fast_maps, plain_maps = _maps(os.path.join(pindir, "a")), _maps(os.path.join(pindir, "b"))
    for case in CASES:
        results = []
        for maps, via_fast in ((fast_maps, True), (plain_maps, False)):
            root = os.path.dirname(maps["counts"])
            args = [case[0], os.path.join(root, case[1]), *case[2:]]
            if via_fast:
                parsed = parse_fast(args)
                assert parsed is not None, case
                code = cli.run_args(args, call=lambda p=parsed: run_fast(p), json_errors=parsed[2] in ("json", "jsonl"))
            else:
                code = cli.run_args(args)
            out, err = capsys.readouterr()
            if case[0] == "dump":  # two hash maps list the same entries in their own orders
                out = "\n".join(sorted(line.rstrip(",") for line in out.splitlines()))
            results.append((code, out.replace(root, "ROOT"), err.replace(root, "ROOT")))
        assert results[0] == results[1], case


def test_a_plain_lookup_does_not_load_the_parser(counts):
    import sys

    code = (
        "import sys; from bpfmap.cli import main; rc = main(sys.argv[1:]); "
        "sys.stderr.write('typer loaded: %s' % ('typer' in sys.modules)); sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code, "lookup", counts, "1"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "10\n" and r.stderr == "typer loaded: False"
    r = subprocess.run(
        [sys.executable, "-c", code, "lookup", counts, "1", "--percpu", "sum"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stderr == "typer loaded: True"  # other options: the parser
    r = subprocess.run([sys.executable, "-c", code, "dump", counts, "-o", "jsonl"], capture_output=True, text=True)
    got = sorted(r.stdout.splitlines())
    assert r.returncode == 0 and r.stderr == "typer loaded: False"
    assert got == ['{"key": 1, "value": 10}', '{"key": 2, "value": 20}', '{"key": 3, "value": 30}']


# -- hostile input -----------------------------------------------------------------------------


def test_lines_end_at_newlines_only(counts):
    """str.splitlines() also ends lines at \\x0c, \\x1c, \\x85: line numbers would not be
    wc -l's.  Those characters stay inside the line (here: inside a key)."""
    text = f"lookup {counts} 1\x0c\nlookup {counts} 2\x1cx\nlookup {counts} 77\n"
    r = run_cli("batch", "-", "--keep-going", input=text)
    lines = [x.split(":")[1].strip() for x in r.stderr.splitlines()]
    assert lines == ["line 2", "line 3"], r.stderr  # line 1's key is 1 (int() takes the \x0c)
    assert r.stdout == "10\n"


def test_an_escaped_backslash_does_not_continue_the_line(counts):
    r = run_cli("batch", "-", "--keep-going", input=f"lookup {counts} 1 \\\\\nlookup {counts} 1\n")
    assert r.stdout == "10\n" and r.returncode == 2
    assert r.stderr.startswith("bpfmap: line 1: "), r.stderr
    # three: an escaped backslash, then a continuation (one command, one error at most)
    r = run_cli("batch", "-", "--keep-going", input=f"lookup {counts} \\\\\\\n 1\n")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "line 1" in r.stderr, r.stderr


def test_keep_going_skips_a_line_with_an_open_quote(counts):
    r = run_cli("batch", "-", "--keep-going", input=f'lookup {counts} "1\nlookup {counts} 1\n')
    assert r.returncode == 2 and r.stdout == "10\n"
    assert "line 1: no closing quotation" in r.stderr, r.stderr


def test_batch_inside_batch_and_stdin_twice_are_refused(counts, tmp_path):
    script = tmp_path / "self"
    script.write_text(f"lookup {counts} 1\nbatch {script}\nlookup {counts} 2\n")
    r = run_cli("batch", str(script))
    assert r.returncode == 2 and r.stdout == "10\n" and "line 2: batch inside batch" in r.stderr, r.stderr
    r = run_cli("batch", "-", input=f"update {counts} --from -\n")
    assert r.returncode == 2 and "line 1: reads standard input" in r.stderr, r.stderr
    r = run_cli("batch", "-", input="batch -\n")
    assert r.returncode == 2 and "batch inside batch" in r.stderr
    # a batch file may load from stdin: stdin is free then
    loader = tmp_path / "load"
    loader.write_text(f"update {counts} --from -\n")
    r = run_cli("batch", str(loader), input="8\t80\n")
    assert r.returncode == 0, r.stderr
    assert run_cli("lookup", counts, "8").stdout == "80\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('lookup x "' + "a" * 8_000_000 + '"', "longer than 1,048,576 characters"),
        ("lookup x " + "a " * 1_000_000, "longer than 1,048,576 characters"),
        ("lookup x " + "a " * 20_000, "20,002 words; at most 10,000"),
        ("lookup x \\\n" + ("a" * 600_000 + " \\\n") * 2 + "b", "longer than 1,048,576 characters"),
    ],
    ids=["8MB-quoted", "million-words", "20k-words", "long-continued"],
)
def test_huge_lines_are_refused_quickly_in_one_short_line(counts, line, message):
    import time

    start = time.monotonic()
    r = run_cli("batch", "-", "--keep-going", input=line + f"\nlookup {counts} 1\n")
    assert time.monotonic() - start < 10
    assert r.returncode == 2 and message in r.stderr, r.stderr[:300]
    assert len(r.stderr) < 300 and r.stdout == "10\n"
