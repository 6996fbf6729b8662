"""Bulk load: the formats dump writes round-trip, bad lines are reported precisely."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import time

import pytest
from conftest import INSTALLED, run_cli

from bpfmap import Map, possible_cpus

FLOW = "saddr=ipv4,dport=be16,proto=u8:packets=u64,comm=char[16],hist=u32[2]"


def _make(bm, pin, kind="hash", key="8", value="32", entries="100000"):
    assert bm("create", kind, "--key", key, "--value", value, "--max-entries", entries, "--pin", pin)[0] == 0


@pytest.mark.parametrize("fmt", ["text", "jsonl", "csv"])
@pytest.mark.parametrize("layout", [FLOW, None], ids=["layout", "hex"])
def test_dump_then_load_round_trips(bm, pindir, tmp_path, fmt, layout):
    src, dst = f"{pindir}/src", f"{pindir}/dst"
    _make(bm, src)
    _make(bm, dst)
    lay = ["-l", layout] if layout else []
    for i in range(1, 300):
        assert (
            bm("update", src, f"10.0.{i // 256}.{i % 256},{i},6", f"{i * 10},p{i},[{i},{-i % 7}]", "-l", FLOW)[0] == 0
        )
    code, dumped, _ = bm("dump", src, *lay, "-o", fmt)
    assert code == 0
    f = tmp_path / f"entries.{fmt}"
    f.write_text(dumped)
    code, _, err = bm("update", dst, "--from", str(f), *lay)
    assert code == 0, err
    assert "299 entries written" in err
    with Map.open(src) as a, Map.open(dst) as b:
        assert sorted(a.items()) == sorted(b.items())


def test_percpu_round_trip(bm, pindir, tmp_path):
    src, dst = f"{pindir}/src", f"{pindir}/dst"
    _make(bm, src, "percpu_hash", "4", "8")
    _make(bm, dst, "percpu_hash", "4", "8")
    n = possible_cpus()
    for i in range(50):
        assert bm("update", src, str(i), *[str(i * 10 + c) for c in range(n)], "-l", "u32:u64")[0] == 0
    for fmt in ("text", "jsonl", "csv"):
        out = bm("dump", src, "-l", "u32:u64", "-o", fmt)[1]
        f = tmp_path / f"p.{fmt}"
        f.write_text(out)
        assert bm("clear", dst)[0] == 0
        code, _, err = bm("update", dst, "--from", str(f), "-l", "u32:u64")
        assert code == 0, err
        with Map.open(src) as a, Map.open(dst) as b:
            assert sorted(a.items()) == sorted(b.items()), fmt


def test_stdin_and_big_load_match_the_file(pindir, tmp_path):
    pin = f"{pindir}/big"
    n = 200000
    with Map.create("hash", 4, 8, max_entries=n) as m:
        m.pin(pin)
    text = "".join(f"{k}\t{k * 3}\n" for k in range(n))
    r = run_cli("update", pin, "--from", "-", "-l", "u32:u64", input=text)
    assert r.returncode == 0 and f"{n} entries written" in r.stderr
    with Map.open(pin) as m:
        got = {struct.unpack("=I", k)[0]: struct.unpack("=Q", v)[0] for k, v in m.items()}
    assert got == {k: k * 3 for k in range(n)}


@pytest.mark.parametrize(
    "bad,line,written,msg",
    [
        ("70000\t1\n", 3, 2, "out of range"),
        ("5\n", 3, 2, "expected KEY<TAB>VALUE"),
        ("x\t1\n", 3, 2, "'x' is not a number"),
    ],
)
def test_bad_line_stops_with_its_number(bm, pindir, tmp_path, bad, line, written, msg):
    pin = f"{pindir}/m"
    _make(bm, pin, key="2", value="8")
    f = tmp_path / "in.txt"
    f.write_text("1\t10\n2\t20\n" + bad + "4\t40\n")
    code, _, err = bm("update", pin, "--from", str(f), "-l", "u16:u64")
    assert code == 2
    assert f"line {line}:" in err and msg in err and f"{written} entries written before it" in err
    with Map.open(pin) as m:
        assert len(list(m.items())) == written


def test_keep_going_skips_and_reports(bm, pindir, tmp_path):
    pin = f"{pindir}/m"
    _make(bm, pin, key="4", value="8")
    f = tmp_path / "in.jsonl"
    f.write_text('{"key": 1, "value": 10}\nnot json\n{"key": 2}\n{"key": -3, "value": 1}\n{"key": 4, "value": 40}\n')
    code, _, err = bm("update", pin, "--from", str(f), "-l", "u32:u64", "--keep-going")
    assert code == 2
    assert "line 2: not JSON" in err and "line 3: expected" in err and "line 4:" in err
    assert "2 entries written, 3 bad lines skipped" in err
    assert (
        json.loads("[" + ",".join(bm("dump", pin, "-l", "u32:u64", "-o", "jsonl")[1].splitlines()) + "]")
        and len(bm("dump", pin)[1].splitlines()) == 2
    )


def test_full_map_says_how_many_went_in(bm, pindir, tmp_path):
    pin = f"{pindir}/small"
    _make(bm, pin, key="4", value="8", entries="100")
    f = tmp_path / "in.txt"
    f.write_text("".join(f"{k}\t{k}\n" for k in range(150)))
    code, _, err = bm("update", pin, "--from", str(f), "-l", "u32:u64")
    assert code == 3 and "map is full" in err and "100 entries written" in err


def test_noexist_mode_applies(bm, pindir, tmp_path):
    pin = f"{pindir}/m"
    _make(bm, pin, key="4", value="8")
    assert bm("update", pin, "2", "7", "-l", "u32:u64")[0] == 0
    f = tmp_path / "in.txt"
    f.write_text("1\t1\n2\t2\n3\t3\n")
    code, _, err = bm("update", pin, "--from", str(f), "-l", "u32:u64", "--noexist")
    assert code == 3 and "key already exists" in err
    assert bm("lookup", pin, "2", "-l", "u32:u64")[1] == "7\n"


def test_ctrl_c_reports_exactly_how_many_are_in(pindir):
    pin = f"{pindir}/m"
    with Map.create("hash", 4, 8, max_entries=1 << 20) as m:
        m.pin(pin)
    cmd = [INSTALLED] if INSTALLED else ["python", "-m", "bpfmap"]
    p = subprocess.Popen(
        [*cmd, "update", pin, "--from", "-", "-l", "u32:u64"], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # a few full reads' worth, then keep the pipe open: the loader waits for more
    chunk = "".join(f"{k}\t{k}\n" for k in range(300000))
    p.stdin.write(chunk)
    p.stdin.flush()
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    reported = int(err.split("interrupted; ")[1].split(" entries")[0])
    with Map.open(pin) as m:
        assert reported == sum(1 for _ in m.items())
    assert reported > 0


def test_dump_delete_drains(bm, pindir):
    pin = f"{pindir}/m"
    _make(bm, pin, key="4", value="8")
    for i in range(100):
        bm("update", pin, str(i), str(i), "-l", "u32:u64")
    out = bm("dump", pin, "-l", "u32:u64", "--delete", "-o", "jsonl")[1]
    assert sorted(json.loads(x)["key"] for x in out.splitlines()) == list(range(100))
    assert bm("dump", pin)[1] == ""
    for i in range(5):
        bm("update", pin, str(i), str(i), "-l", "u32:u64")
    code, _, err = bm("delete", pin, "--all")
    assert code == 0 and "5 entries removed" in err and bm("dump", pin)[1] == ""


def test_format_is_sniffed_past_blank_and_comment_lines(bm, pindir, tmp_path):
    pin = f"{pindir}/m"
    _make(bm, pin, key="4", value="8")
    f = tmp_path / "in"
    f.write_text('\n# exported\n{"key": 1, "value": 10}\n{"key": 2, "value": 20}\n')
    code, _, err = bm("update", pin, "--from", str(f), "-l", "u32:u64")
    assert code == 0 and "2 entries written" in err, err
