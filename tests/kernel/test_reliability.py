"""Hostile input: every case is a one-line error with its documented exit code, never an
internal error, an unbounded read or a traceback.  (Drains: test_drain.py.)"""

from __future__ import annotations

import os
import struct
import subprocess

import pytest
from helpers import BPFMAP, need_tool, one_line_error, run_cli
from helpers.programs import object_mutants

from bpfmap import Map

CMD = list(BPFMAP)


@pytest.fixture
def counts(pindir):
    pin = f"{pindir}/counts"
    with Map.create("hash", 4, 8, max_entries=64) as m:
        m.update(struct.pack("I", 1), struct.pack("Q", 10))
        m.pin(pin)
    return pin


# -- files that are not what a layout, header or object should be ---------------------------


@pytest.mark.parametrize(
    "args, says",
    [
        (["--layout", "@/dev/zero"], "character device"),
        (["--c-header", "/dev/zero", "--key-type", "__u32", "--value-type", "__u64"], "character device"),
        (["--c-header", "/tmp", "--key-type", "__u32", "--value-type", "__u64"], "directory"),
        (["--layout", "@/proc/self/mountinfo#x"], "no layout"),  # a 0-size /proc file, read bounded
    ],
)
def test_special_files_are_refused_before_reading(bm, counts, args, says):
    code, _out, err = bm("dump", counts, *args)
    assert code == 2 and says in one_line_error(err)


def test_a_fifo_is_refused_without_waiting_for_a_writer(counts, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for args in (["--layout", f"@{fifo}"], ["--c-header", str(fifo), "--key-type", "__u32"]):
        r = run_cli("dump", counts, *args)  # run_cli times out after 60 s: a blocked open fails the test
        assert r.returncode == 2 and "FIFO" in one_line_error(r.stderr)


def test_binary_and_oversized_files_are_refused(bm, counts, tmp_path):
    binary = tmp_path / "bin.h"
    binary.write_bytes(b"struct k { int a; };\n\xff\xfe\x00junk")
    code, _out, err = bm("dump", counts, "--c-header", str(binary), "--key-type", "struct k")
    assert code == 2 and "not a text file" in one_line_error(err)
    latin = tmp_path / "latin.h"
    latin.write_bytes(b"/* caf\xe9 */ struct k { int a; };\n")
    code, _out, err = bm("dump", counts, "--c-header", str(latin), "--key-type", "struct k")
    assert code == 2 and "byte 0xe9 at offset 6 is not UTF-8" in one_line_error(err)
    big = tmp_path / "big.layout"
    with open(big, "wb") as f:
        f.truncate((16 << 20) + 1)
    code, _out, err = bm("dump", counts, "--layout", f"@{big}")
    assert code == 2 and "over 16 MiB" in one_line_error(err)


def test_bulk_load_of_an_endless_line_stops_at_the_line_limit(counts):
    r = subprocess.run(
        [*CMD, "update", counts, "--from", "/dev/zero", "-l", "u32:u64"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "line 1: longer than" in one_line_error(r.stderr) and "0 entries written" in r.stderr


def test_bulk_load_keeps_lines_that_sniffing_read_ahead(bm, pindir, tmp_path):
    """The format sniffer reads a chunk of lines; none may be lost to the loader."""
    f = tmp_path / "in.txt"
    f.write_text("# a comment\n" + "".join(f"{k}\t{k}\n" for k in range(5000)))
    with Map.create("hash", 4, 8, max_entries=8192) as m:
        m.pin(f"{pindir}/big")
    code, _out, err = bm("update", f"{pindir}/big", "--from", str(f), "-l", "u32:u64")
    assert code == 0 and "5000 entries written" in err


# -- malformed BPF objects ---------------------------------------------------------------------


def test_damaged_objects_create_and_decode_nothing_wrong(bm, obj, pindir, tmp_path):  # noqa: F811
    data = open(obj, "rb").read()
    rb = f"{pindir}/rb"
    assert bm("create", "ringbuf", "--pin", rb)[0] == 0
    path = tmp_path / "mutant.o"
    for i, mutant in enumerate(object_mutants(data, 40, seed=7)):
        path.write_bytes(mutant)
        d = f"{pindir}/m{i}"
        code, _out, err = bm("create", "--from-object", str(path), "--pin-dir", d, "--mkdir")
        assert code in (0, 2, 3), err
        if code:
            one_line_error(err)
        code, _out, err = bm("events", rb, "--object", str(path), "--value-type", "struct flow_key", "--timeout", "0")
        assert code in (1, 2), err  # 1: no record came
        if code == 2:
            one_line_error(err)


# -- numbers and names --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "1e300"])
def test_watch_refuses_bad_intervals_before_printing(counts, value):
    r = run_cli("watch", counts, "--interval", value, "--count", "1")
    assert r.returncode == 2 and r.stdout == ""
    assert "--interval" in one_line_error(r.stderr)


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_events_refuses_bad_timeouts(bm, pindir, value):
    rb = f"{pindir}/rb"
    bm("create", "ringbuf", "--pin", rb)
    code, out, err = bm("events", rb, "--timeout", value)
    assert code == 2 and out == "" and "--timeout" in one_line_error(err)


def test_an_empty_name_is_refused_not_matched_to_unnamed_maps(bm, counts):
    code, _out, err = bm("clear", "name:")
    assert code == 2 and "the name is empty" in one_line_error(err)
    assert bm("lookup", counts, "1", "-l", "u32:u64")[1] == "10\n"


# -- errors stay readable -----------------------------------------------------------------------


def test_long_input_is_quoted_once_and_shortened(bm, counts):
    key = "0a" * 60000
    digits = "9" * 5000
    layout = "u32," * 30000 + "zz:u64"
    cases = [
        (["lookup", counts, key], 2),
        (["lookup", counts, digits, "-l", "u32:u64"], 2),
        (["lookup", counts, "0x" + digits, "-l", "u32:u64"], 2),  # past str()'s 4300-digit limit
        (["update", counts, "1", f"[{digits}]", "-l", "u32:u64"], 2),
        (["lookup", counts, "1", "-l", layout], 2),
        (["lookup", counts, "1", "-l", "u32," * 30000 + "u32:u64"], 2),
        (["dump", os.path.dirname(counts) + "/" + "x" * 120000], 2),
        (["dump", "name:" + "n" * 120000], 3),
        (["create", "hash", "--key", "4", "--value", "8", "--name", digits, "--pin", counts + "x"], 2),
        (["dump", counts, "-o", digits], 2),
    ]
    for args, code in cases:
        got, _out, err = bm(*args)
        line = one_line_error(err)
        assert got == code, (args[:2], err[:300])
        assert len(line) < 1200, (args[:2], len(line))
        assert "chars)" in line or "bit number" in line or "more" in line, line[:300]


def test_bulk_load_error_lines_stay_short(counts, tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"key": %s, "value": 1}\n' % ("9" * 5000))
    r = run_cli("update", counts, "--from", str(f), "-l", "u32:u64")
    assert r.returncode == 2 and len(one_line_error(r.stderr)) < 400


# -- permission hints say what is missing ---------------------------------------------------------


def _as(bounding: str, *args: str) -> subprocess.CompletedProcess:
    setpriv = need_tool("setpriv")
    return subprocess.run(
        [setpriv, f"--bounding-set={bounding}", *CMD, *args], capture_output=True, text=True, timeout=60
    )


def test_hint_names_the_file_permission_for_a_pin_we_may_not_read(counts):
    os.chown(counts, 65534, 65534)
    os.chmod(counts, 0o400)
    r = _as("-dac_override,-dac_read_search", "dump", counts)
    line = one_line_error(r.stderr)
    assert r.returncode == 3 and "mode 0400" in line and "may not read it" in line and "CAP_BPF" not in line
    r = _as("-dac_override", "update", counts, "1", "2", "-l", "u32:u64")  # may read (DAC_READ_SEARCH), not write
    line = one_line_error(r.stderr)
    assert r.returncode == 3 and "may read it but not write it" in line
    assert _as("-dac_override,-dac_read_search", "dump", counts, "--layout", "-:-").returncode == 3


def test_hint_names_cap_sys_admin_to_a_process_with_cap_bpf(counts):
    with Map.open(counts) as m:
        ref = f"id:{m.id}"
    r = _as("-sys_admin", "dump", ref)
    line = one_line_error(r.stderr)
    assert r.returncode == 3 and "has CAP_BPF but not CAP_SYS_ADMIN" in line and "by its pin" in line
    assert _as("-sys_admin", "dump", counts).returncode == 0  # the pin works without it


def test_hint_names_cap_bpf_when_neither_is_held(pindir):
    r = _as("-bpf,-sys_admin", "create", "hash", "--key", "4", "--value", "4", "--pin", f"{pindir}/x")
    line = one_line_error(r.stderr)
    assert r.returncode == 3 and "neither CAP_BPF nor CAP_SYS_ADMIN" in line


def test_more_of_the_matrix(bm, counts, pindir):
    code, _out, err = bm("dump", counts, "--batch-size", "99999999999999999999")
    assert code == 2 and "--batch-size" in one_line_error(err)
    code, _out, err = bm("update", counts, "--from", "/proc/self/mem", "-l", "u32:u64")
    assert code == 3 and "reading the input failed" in one_line_error(err) and "0 entries written" in err
    code, _out, err = bm("pin", counts, "")
    assert code == 2 and "the path is empty" in one_line_error(err)
    code, _out, err = bm("show", "--object", "/dev/zero")
    assert code == 2 and "character device" in one_line_error(err)
    with pytest.raises(Exception, match="batch size 0"), Map.open(counts) as m:
        next(m.batches(size=0))
