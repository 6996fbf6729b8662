"""What a terminal gets and a pipe does not: colour (never with NO_COLOR), progress bars
on stderr, tables with sizes for people; and --quiet / lookup --exists for scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from helpers import BPFMAP, BPFMAP_SH, run_cli
from helpers.terminal import ANSI, on_terminal

from bpfmap.layout.leaves import c_quote


@pytest.fixture
def counts(pindir):
    path = os.path.join(pindir, "counts")
    assert (
        run_cli("create", "hash", "--layout", "u32:u64", "--max-entries", "200000", "--pin", path, "-q").returncode == 0
    )
    return path


def test_errors_are_red_on_a_terminal_and_plain_with_no_color(counts):
    code, screen = on_terminal(["lookup", counts, "9"])
    assert code == 1 and "\x1b[1;31mbpfmap:\x1b[0m lookup" in screen
    code, screen = on_terminal(["lookup", counts, "9"], env={"NO_COLOR": "1"})
    assert code == 1 and not ANSI.search(screen) and "bpfmap: lookup" in screen
    r = run_cli("lookup", counts, "9")  # a pipe: never colour
    assert not ANSI.search(r.stderr)


def test_tables_on_a_terminal_with_sizes_for_people(counts):
    code, screen = on_terminal(["show", counts])
    assert code == 0, screen
    assert "\x1b[" in screen  # rich styles the table
    text = ANSI.sub("", screen)
    assert re.search(r"memlock\s+│\s+\d+\.\d (kB|MB)", text) and "max entries" in text
    code, plain = on_terminal(["show", counts], env={"NO_COLOR": "1"})
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", plain)  # no colour codes (bold may stay)
    code, screen = on_terminal(["list"], cols=250)
    assert code == 0 and counts in ANSI.sub("", screen)
    r = run_cli("show", counts)  # a pipe: bpftool-like text with bytes
    assert re.search(r"memlock \d+B", r.stdout)


def test_progress_bar_on_a_terminal_stderr_only(counts, tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("".join(f"{i}\t{i * 3}\n" for i in range(200000)))
    code, screen = on_terminal(["update", counts, "--from", str(data)], env={"BPFMAP_PROGRESS_DELAY": "0"})
    assert code == 0, screen
    assert "200000 entries written" in screen
    assert re.search(r"load .*in\.txt", screen) and "MB" in screen  # the bar: bytes read of the file's size
    out = tmp_path / "dump.txt"
    code, screen = on_terminal(["dump", counts], env={"BPFMAP_PROGRESS_DELAY": "0"}, stdout_file=str(out))
    assert code == 0 and re.search(r"dump .*counts", screen) and "entries" in screen
    assert len(out.read_text().splitlines()) == 200000 and "\x1b" not in out.read_text()
    # no terminal, no bar
    r = run_cli("update", counts, "--from", str(data), env={"BPFMAP_PROGRESS_DELAY": "0"})
    assert r.returncode == 0 and r.stderr == "bpfmap: update %s --from %s: 200000 entries written\n" % (counts, data)


def test_quiet_and_exists(counts, pindir):
    r = run_cli("create", "hash", "--key", "4", "--value", "8", "--pin", os.path.join(pindir, "q"), "--quiet")
    assert r.returncode == 0 and r.stdout == r.stderr == ""
    assert run_cli("update", counts, "1", "2").returncode == 0
    r = run_cli("lookup", counts, "1", "--exists")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = run_cli("lookup", counts, "2", "--exists")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")
    r = run_cli("update", counts, "--from", "-", "-q", input="5\t6\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    for args in (["clear", counts, "-q"], ["delete", counts, "--all", "--quiet"]):
        r = run_cli(*args)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), args
    r = run_cli("clear", counts)
    assert r.stderr == f"bpfmap: clear {counts}: 0 entries removed\n"
    # --quiet never hides an error
    r = run_cli("lookup", counts, "x", "--exists")
    assert r.returncode == 2 and r.stderr
    # a shell 'if' works on it
    sh = f"if {BPFMAP_SH} lookup {counts} 1 --exists; then echo yes; else echo no; fi"
    assert subprocess.run(["sh", "-c", sh], capture_output=True, text=True).stdout == "no\n"


# -- what map data can do to a terminal ----------------------------------------------------------

HOSTILE = "\x1b[31mRED\x1b]0;pwn\x07\r\x9b2J"  # colour, an OSC title, a carriage return, a C1 CSI


@pytest.fixture
def hostile(pindir):
    """A map whose key field, value string and BTF field name an attacker chose."""
    path = os.path.join(pindir, "hostile")
    assert run_cli("create", "hash", "--layout", "k=u32:comm=char[32]", "--pin", path, "-q").returncode == 0
    assert run_cli("update", path, "1", json.dumps({"comm": HOSTILE})).returncode == 0
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["dump", "{m}"],
        ["dump", "{m}", "-o", "text"],
        ["dump", "{m}", "-o", "jsonl"],
        ["dump", "{m}", "-o", "csv"],
        ["lookup", "{m}", "1"],
        ["lookup", "{m}", "2"],  # an error message quoting the map's data
        ["watch", "{m}", "--count", "1"],
        ["update", "{m}", "1", "comm=" + HOSTILE + "x" * 40],  # an error echoing the input
    ],
    ids=["table", "text", "jsonl", "csv", "lookup", "lookup-error", "watch", "update-error"],
)
def test_map_data_never_drives_the_terminal(hostile, args):
    _code, screen = on_terminal([a.format(m=hostile) for a in args])
    data = ANSI.sub("", screen)  # bpfmap's own colours and cursor moves
    for bad in ("\x1b", "\x07", "\x9b", "\r\r"):
        assert bad not in data.replace("\r\n", "\n"), (args, repr(screen[:400]))
    if args[0] in ("dump", "watch") or args[1:] == ["{m}", "1"]:
        assert "RED" in data and ("\\x1b" in data or "\\u001b" in data), repr(data[:400])


def test_pipes_get_the_bytes_unchanged(hostile):
    """Escaping is for terminals: a pipe gets what the map holds (its own escaping in
    text and CSV is the contract's business)."""
    cmd = list(BPFMAP)
    r = subprocess.run([*cmd, "lookup", hostile, "1", "-o", "json"], capture_output=True, check=True)
    assert json.loads(r.stdout)["value"]["comm"] == HOSTILE
    r = subprocess.run([*cmd, "lookup", hostile, "1", "-o", "text"], capture_output=True, check=True)
    assert r.stdout == b"comm=" + c_quote(HOSTILE).encode() + b"\n"  # quoted as text quotes (C escapes)
