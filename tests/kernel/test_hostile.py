"""Hostile input: what an outsider can hand bpfmap on the command line, in files and in
configs gets a one-line error and exit 2 (never an internal error, never a changed map)."""

from __future__ import annotations

import json
import os

import pytest
from helpers import run_cli

from bpfmap import Map

STRUCT = "k=u32:n=u32,comm=char[8]"
XFF = os.fsdecode(b"a\xffb")  # what Python makes of a non-UTF-8 argument


@pytest.fixture
def smap(bm, pindir):
    pin = f"{pindir}/s"
    assert bm("create", "hash", "--layout", STRUCT, "--pin", pin)[0] == 0
    return pin


def test_bytes_that_are_not_utf8_are_written_as_they_are(smap):
    """A non-UTF-8 argument's bytes are the bytes the field gets (any bytes round-trip);
    text output shows them as \\xNN, JSON as \\udcNN."""
    r = run_cli("update", smap, "1", f"n=1,comm={XFF}")
    assert r.returncode == 0, r.stderr
    with Map.open(smap) as m:
        [(_k, v)] = list(m.items())
    assert v[4:12] == b"a\xffb" + bytes(5)
    assert run_cli("lookup", smap, "1").stdout == 'n=1,comm="a\\xffb"\n'
    assert json.loads(run_cli("lookup", smap, "1", "-o", "json").stdout)["value"]["comm"] == XFF


def test_a_lone_surrogate_from_json_is_a_usage_error(smap):
    r = run_cli("update", smap, "1", '{"n": 1, "comm": "\\ud800"}')
    assert r.returncode == 2, r.stderr
    assert "lone surrogate U+D800" in r.stderr and "internal error" not in r.stderr
    with Map.open(smap) as m:
        assert list(m.keys()) == []


@pytest.mark.parametrize("from_file", [False, True])
def test_a_string_holding_a_nul_is_a_usage_error(smap, tmp_path, from_file):
    """A char[N] is a C string, the text before its first NUL: "ab\\u0000x" would read back
    as "ab", as another entry's "ab" does, so it is refused, nothing written."""
    value = '{"n": 1, "comm": "ab\\u0000x"}'
    if from_file:
        f = tmp_path / "in.jsonl"
        f.write_text('{"key": {"k": 1}, "value": %s}\n' % value)
        r = run_cli("update", smap, "--from", str(f))
    else:
        r = run_cli("update", smap, "1", value)
    assert r.returncode == 2, r.stderr
    assert "holds a NUL at byte 2" in r.stderr and "C string" in r.stderr, r.stderr
    with Map.open(smap) as m:
        assert list(m.keys()) == []
    # NULs at the end are the C string's padding: the text before them, written
    r = run_cli("update", smap, "1", '{"n": 1, "comm": "ab\\u0000\\u0000"}')
    assert r.returncode == 0, r.stderr
    assert run_cli("lookup", smap, "1").stdout == "n=1,comm=ab\n"


def test_var_with_raw_bytes_and_var_on_a_hash(bm, pindir, smap):
    g = f"{pindir}/g"
    assert bm("create", "array", "--layout", "u32:x=u32,comm=char[8]", "--max-entries", "1", "--pin", g)[0] == 0
    r = run_cli("update", g, "--var", f"comm={XFF}")
    assert r.returncode == 0, r.stderr
    assert run_cli("lookup", g).stdout == 'x=0,comm="a\\xffb"\n'
    r = run_cli("update", smap, "--var", "n=1")
    assert r.returncode == 2 and "global-variable map" in r.stderr and "hash" in r.stderr, r.stderr


@pytest.mark.parametrize("fmt", ["text", "jsonl", "csv"])
def test_bad_text_in_a_file_names_its_line_and_keep_going_skips_it(smap, tmp_path, fmt):
    bad = b"far too long for eight" if fmt != "jsonl" else b"\\ud800"  # raw bytes are fine: see above
    lines = {
        "text": [b"k=1\tn=1,comm=ok\n", b"k=2\tn=2,comm=" + bad + b"\n", b"k=3\tn=3,comm=fine\n"],
        "jsonl": [
            b'{"key": {"k": 1}, "value": {"n": 1, "comm": "ok"}}\n',
            b'{"key": {"k": 2}, "value": {"n": 2, "comm": "' + bad + b'"}}\n',
            b'{"key": {"k": 3}, "value": {"n": 3, "comm": "fine"}}\n',
        ],
        "csv": [b"key.k,value.n,value.comm\n", b"1,1,ok\n", b"2,2," + bad + b"\n", b"3,3,fine\n"],
    }[fmt]
    f = tmp_path / f"in.{fmt}"
    f.write_bytes(b"".join(lines))
    bad_line = len(lines) - 1
    r = run_cli("update", smap, "--from", str(f))
    why = "lone surrogate U+D800" if fmt == "jsonl" else "longer than 8"
    assert r.returncode == 2 and f"line {bad_line}:" in r.stderr and why in r.stderr, r.stderr
    assert "1 entry written before it" in r.stderr
    r = run_cli("update", smap, "--from", str(f), "--keep-going")
    assert r.returncode == 2 and "(skipped)" in r.stderr and "2 entries written, 1 bad line skipped" in r.stderr
    with Map.open(smap) as m:
        assert len(list(m.keys())) == 2


def test_a_pin_name_with_a_dot_is_refused_before_the_kernel(pindir):
    r = run_cli("create", "hash", "--key", "4", "--value", "4", "--pin", f"{pindir}/sub/a.b", "--mkdir")
    assert r.returncode == 2, r.stderr
    assert "refuses '.' in a name" in r.stderr and "a_b" in r.stderr and "security module" not in r.stderr
    assert not os.path.exists(f"{pindir}/sub")  # nothing made before the refusal


def test_json_errors_keep_their_shape(smap):
    r = run_cli("update", smap, "1", json.dumps({"n": 1, "comm": "x" * 9}))
    assert r.returncode == 2 and "longer than 8" in r.stderr
