"""Bulk load: the formats dump writes round-trip, bad lines are reported precisely."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import time

import pytest
from helpers import BPFMAP, examples, run_cli

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
    cmd = list(BPFMAP)
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


# -- lines of plain numbers: read a block at a time, checked strictly ----------------------------

_GOOD = {
    "jsonl": lambda k, v: f'{{"key": {k}, "value": {v}}}\n',
    "csv": lambda k, v: f"{k},{v}\n",
    "text": lambda k, v: f"{k}\t{v}\n",
}
# lines close to what dump writes that the number path must not take as numbers, each
# placed after good lines, in blocks of a few lines: the result must be the general path's
_TRICKY = {
    "jsonl": [
        '{"key": 00, "value": 1}\n',
        '{"key": 007, "value": 1}\n',
        '{"key": -1, "value": 1}\n',
        '{"key": , "value": 1}\n',
        '{"key": 1, "value": 2, "value": 3}\n{"key": 5}\n',
        '{"key": 1,  "value": 2}\n',
        '{"key":1,"value":2}\n',
        '{"key": 1, "value": 2}\r\n',
        '{"key": 1, "value": 99999999999999999999999}\n',
        '{"key": 4294967296, "value": 1}\n',
        '{"key": 1, "value": 1.0}\n',
        '{"key": 1, "value": 1e3}\n',
        '{"key": "7", "value": 1}\n',
        "\n",
        "# a comment\n",
        '{"key": 1, "value": \u0662}\n',
        '{"key": 1_0, "value": 1}\n',
        '{"k-ey": 5, "value": 1}\n',
        '{"key": 3, "value": 4}',  # no newline at the end
    ],
    "csv": [
        "1,-2\n",
        "-3,4\n",
        '"5",6\n',
        '"7","8\n9"\n',
        "1,2\r\n",
        "1,,2\n",
        ",5\n",
        "5,\n",
        "1, 2\n",
        "1,0x10\n",
        "4294967296,1\n",
        "1,00\n",
        "\n",
        "3,4",
    ],
    "text": [
        "1\t-2\n",
        "1\t0x10\n",
        "1\t2\t3\n",
        "\t5\n",
        "5\t\n",
        "00\t1\n",
        "007\t1\n",
        "1 \t2\n",
        "4294967296\t1\n",
        "# a comment\n",
        "3\t4",
    ],
}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "text"])
def test_number_lines_load_as_the_general_path_loads_them(bm, pindir, tmp_path, monkeypatch, fmt):
    """Every tricky line after good ones, in blocks of ~64 characters (so the lines fall
    in several blocks): exit code, message (line numbers) and map contents the same as
    when every line goes through the general path."""
    import bpfmap.entries.bulk as bulk

    monkeypatch.setattr(bulk, "READ_BYTES", 64)
    head = "key,value\n" if fmt == "csv" else ""
    good = "".join(_GOOD[fmt](k, k * 3) for k in range(12))
    for i, tricky in enumerate(_TRICKY[fmt]):
        f = tmp_path / f"in{i}.{fmt}"
        f.write_text(head + good + tricky + _GOOD[fmt](100, 300))
        results = []
        for general in (False, True):
            if general:
                monkeypatch.setattr(bulk, "_number_fields", lambda block, n, fmt: None)
            pin = f"{pindir}/m{i}{'g' if general else 'f'}"
            assert bm("create", "hash", "--key", "4", "--value", "8", "--max-entries", "64", "--pin", pin)[0] == 0
            code, out, err = bm("update", pin, "--from", str(f), "-l", "u32:s64", "--input-format", fmt)
            with Map.open(pin) as m:
                results.append((code, out, err.replace(pin, "MAP"), sorted(m.items())))
            monkeypatch.undo()
            monkeypatch.setattr(bulk, "READ_BYTES", 64)
        assert results[0] == results[1], (fmt, tricky)
        assert len(results[0][3]) >= 12, (fmt, tricky, results[0][2])  # the good lines before it are in


def test_number_lines_take_the_block_path(pindir, tmp_path, monkeypatch):
    """What dump writes of numbers is read by the number path, not line by line."""
    import bpfmap.entries.bulk as bulk
    from bpfmap.layout import Layout

    calls = []
    real = bulk._number_fields

    def spy(block, n, fmt):
        fields = real(block, n, fmt)
        calls.append((fmt, n, fields is not None))
        return fields

    monkeypatch.setattr(bulk, "_number_fields", spy)
    with Map.create("hash", 4, 8, max_entries=64) as m:
        view = m.view(Layout.parse("u32:u64"))
        for fmt, text in (
            ("jsonl", "".join(_GOOD["jsonl"](k, k) for k in range(5))),
            ("csv", "key,value\n" + "".join(_GOOD["csv"](k, k) for k in range(5))),
            ("text", "".join(_GOOD["text"](k, k) for k in range(5))),
        ):
            import io

            m.clear()
            assert bulk.Loader(view).load_stream(io.StringIO(text), fmt) == 5
            assert sorted(m.items()) == [(struct.pack("=I", k), struct.pack("=Q", k)) for k in range(5)]
    assert calls == [("jsonl", 5, True), ("csv", 5, True), ("text", 5, True)]


_STRUCT = "k=u32,tag=char[8]:n=s64,comm=char[16]"


def _count_lines(fmt: str, layout: str, n: int) -> str:
    """``n`` entries in ``fmt`` for ``layout`` (u32:u64, or a struct that takes the
    general path), with a negative number every 7th line where numbers may be negative
    (those lines leave the number path, so the blocks mix both paths)."""
    rows = []
    for k in range(n):
        if layout == "u32:s64":
            v = -k if k % 7 == 3 else k
            rows.append({"text": f"{k}\t{v}\n", "jsonl": f'{{"key": {k}, "value": {v}}}\n', "csv": f"{k},{v}\n"}[fmt])
        else:
            key, val = {"k": k, "tag": f"t{k % 5}"}, {"n": -k, "comm": f"c{k}"}
            rows.append(
                {
                    "text": f"k={k},tag=t{k % 5}\tn={-k},comm=c{k}\n",
                    "jsonl": json.dumps({"key": key, "value": val}) + "\n",
                    "csv": f"{k},t{k % 5},{-k},c{k}\n",
                }[fmt]
            )
    head = {"csv": "key,value\n" if layout == "u32:s64" else "key.k,key.tag,value.n,value.comm\n"}.get(fmt, "")
    return head + "".join(rows)


@pytest.mark.parametrize("read_bytes", [512, 4096, 2 << 20], ids=["tiny-blocks", "blocks", "one-block"])
@pytest.mark.parametrize("layout", ["u32:s64", _STRUCT], ids=["numbers", "struct"])
@pytest.mark.parametrize("fmt", ["text", "jsonl", "csv"])
@pytest.mark.parametrize("sniffed", [True, False], ids=["auto", "named"])
def test_load_counts_are_exact(bm, pindir, tmp_path, monkeypatch, fmt, layout, read_bytes, sniffed):
    """The count a load prints is the number of entries in the map, whatever the
    format, the layout, the number of blocks and the path each block takes."""
    import bpfmap.entries.bulk as bulk

    monkeypatch.setattr(bulk, "READ_BYTES", read_bytes)
    n = 5000
    f = tmp_path / f"in.{fmt}"
    f.write_text(_count_lines(fmt, layout, n))
    pin = f"{pindir}/m"
    key, value = ("4", "8") if layout == "u32:s64" else ("12", "24")
    _make(bm, pin, key=key, value=value, entries="8000")
    fmt_args = [] if sniffed else ["--input-format", fmt]
    code, _, err = bm("update", pin, "--from", str(f), "-l", layout, *fmt_args)
    assert code == 0, err
    with Map.open(pin) as m:
        assert len(list(m.keys())) == n
    assert f"{n} entries written" in err


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_counts_in_errors_are_the_streams(bm, pindir, tmp_path, monkeypatch, fmt):
    """A bad line or a full map after several blocks: the message counts every entry
    that went in, not the last block's."""
    import bpfmap.entries.bulk as bulk

    monkeypatch.setattr(bulk, "READ_BYTES", 1024)
    good = _count_lines(fmt, _STRUCT, 900)
    f = tmp_path / f"bad.{fmt}"
    f.write_text(good + "garbage\n")
    pin = f"{pindir}/m"
    _make(bm, pin, key="12", value="24", entries="2000")
    code, _, err = bm("update", pin, "--from", str(f), "-l", _STRUCT)
    assert code == 2 and "line 901:" in err and "900 entries written before it" in err, err
    with Map.open(pin) as m:
        assert len(list(m.keys())) == 900
    small = f"{pindir}/small"
    _make(bm, small, key="12", value="24", entries="700")
    f.write_text(good)
    code, _, err = bm("update", small, "--from", str(f), "-l", _STRUCT)
    assert code == 3 and "map is full" in err and "700 entries written" in err, err


# -- what a dump writes, a load reads back ------------------------------------------------------


def run(*args: str) -> str:
    """bpfmap in this process (it must succeed); returns its stdout."""
    import contextlib
    import io

    from bpfmap.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(list(args))
    assert code == 0, (args, err.getvalue())
    return out.getvalue()


_TEXT_CHARS = " \t\n\r,\"'=[]{}\\#;:x\x1b\x7f\x85\u00e9\u2028\ufeff"


def test_every_format_round_trips_any_text(pindir, tmp_path):
    """Strings with every character that means something to a format (tabs, newlines,
    carriage returns, commas, quotes, brackets, blanks at the ends, controls, non-ASCII)
    in keys and values: dumped in each format and loaded into a new map, the bytes are
    the same."""
    import itertools

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    layout = "id=u16,name=char[12]:n=u32,comm=char[16],tag=char[6]"

    def text(size: int):
        return st.text(alphabet=_TEXT_CHARS, max_size=size).filter(lambda s: len(s.encode()) <= size)

    entry = st.tuples(st.integers(0, 65535), text(12), st.integers(0, 2**32 - 1), text(16), text(6))
    counter = itertools.count()

    @settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(entry, min_size=1, max_size=12, unique_by=lambda e: (e[0], e[1])))
    def check(entries):
        i = next(counter)
        src = f"{pindir}/src{i}"
        run("create", "hash", "--layout", layout, "--max-entries", "64", "--pin", src, "-q")
        for k, name, n, comm, tag in entries:
            key = json.dumps({"id": k, "name": name})
            run("update", src, key, json.dumps({"n": n, "comm": comm, "tag": tag}))
        with Map.open(src) as m:
            want = sorted(m.items())
        for fmt in ("text", "jsonl", "csv", "json"):
            dumped = run("dump", src, "-o", fmt)
            f = tmp_path / f"d{i}.{fmt}"
            f.write_text(dumped, newline="")
            dst = f"{pindir}/dst{i}{fmt}"
            run("create", "hash", "--layout", layout, "--max-entries", "64", "--pin", dst, "-q")
            if fmt == "json":  # a JSON array: loaded as JSON Lines, one object a line
                f.write_text("\n".join(json.dumps(o) for o in json.loads(dumped)) + "\n")
            run("update", dst, "--from", str(f))
            with Map.open(dst) as m:
                assert sorted(m.items()) == want, (fmt, dumped)

    check()


def test_every_format_round_trips_any_bytes(pindir, tmp_path):
    """char[N] fields holding any string at all (bytes that are not UTF-8, controls; up
    to the first NUL, zeros after it: what a string is, see test_one_meaning): dumped in
    each format and loaded into a new map, the bytes are the same.  Text and CSV write
    them with C escapes (\\xNN), JSON as \\udcNN escapes."""
    import itertools
    import struct

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    layouts = {
        "struct": "id=u16,name=char[12]:n=u32,comm=char[16],tag=char[6]",
        "string": "u32:char[10]",
    }
    counter = itertools.count()

    def raw(size: int):  # a C string: its bytes, then zeros to the end of the field
        return st.binary(min_size=size, max_size=size).map(lambda b: b.partition(b"\0")[0].ljust(size, b"\0"))

    struct_entry = st.tuples(st.integers(0, 65535), raw(12), st.integers(0, 2**32 - 1), raw(16), raw(6))
    string_entry = st.tuples(st.integers(0, 2**32 - 1), raw(10))

    @settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        st.lists(struct_entry, min_size=1, max_size=10, unique_by=lambda e: (e[0], e[1])),
        st.lists(string_entry, min_size=1, max_size=10, unique_by=lambda e: e[0]),
    )
    def check(structs, strings):
        i = next(counter)
        items = {
            "struct": {
                struct.pack("<H", k) + name: struct.pack("<I", n) + comm + tag + b"\0\0"
                for k, name, n, comm, tag in structs
            },
            "string": {struct.pack("<I", k): s for k, s in strings},
        }
        for kind, layout in layouts.items():
            src = f"{pindir}/src{kind}{i}"
            run("create", "hash", "--layout", layout, "--max-entries", "64", "--pin", src, "-q")
            with Map.open(src) as m:
                for k, v in items[kind].items():
                    m.update(k, v)
                want = sorted(m.items())
            for fmt in ("text", "jsonl", "csv", "json"):
                dumped = run("dump", src, "-o", fmt)
                dumped.encode("utf-8")  # valid UTF-8 text: the bytes that were not are escaped
                f = tmp_path / f"d{kind}{i}.{fmt}"
                f.write_text(dumped, newline="")
                dst = f"{pindir}/dst{kind}{i}{fmt}"
                run("create", "hash", "--layout", layout, "--max-entries", "64", "--pin", dst, "-q")
                if fmt == "json":  # a JSON array: loaded as JSON Lines, one object a line
                    f.write_text("\n".join(json.dumps(o) for o in json.loads(dumped)) + "\n")
                run("update", dst, "--from", str(f))
                with Map.open(dst) as m:
                    assert sorted(m.items()) == want, (kind, fmt, dumped)

    check()


@pytest.mark.parametrize(
    "tricky",
    ["1,0x10,2\n", "1,2\n", "1,2,3,4\n", "1,-,2\n", "007,1,2\n", "1,4294967296,2\n", '1,"2",3\n', "\n", "3,-4,5"],
)
def test_struct_csv_rows_load_as_the_csv_reader_loads_them(bm, pindir, tmp_path, monkeypatch, tricky):
    """CSV of a struct of numbers (`key,value.a,value.b`, as dump writes it) goes a block
    at a time; after a tricky row, the exit code, message (line numbers) and the map's
    contents are those of the CSV reader reading every row."""
    import bpfmap.entries.bulk as bulk

    monkeypatch.setattr(bulk, "READ_BYTES", 64)
    f = tmp_path / "in.csv"
    f.write_text("key,value.a,value.b\n" + "".join(f"{k},{k * 3},{-k}\n" for k in range(12)) + tricky + "100,300,-7\n")
    results = []
    for general in (False, True):
        if general:
            monkeypatch.setattr(bulk.Loader, "_struct_csv_header", lambda self: None)
        pin = f"{pindir}/m{'g' if general else 'f'}"
        assert bm("create", "hash", "--layout", "u32:a=u32,b=s32", "--max-entries", "64", "--pin", pin)[0] == 0
        code, out, err = bm("update", pin, "--from", str(f), "--input-format", "csv")
        with Map.open(pin) as m:
            results.append((code, out, err.replace(pin, "MAP"), sorted(m.items())))
    assert results[0] == results[1], tricky
    assert len(results[0][3]) >= 12, results[0][2]


def test_struct_csv_rows_take_the_block_path(bm, pindir, tmp_path, monkeypatch):
    import bpfmap.entries.bulk as bulk

    calls = []
    real = bulk.Loader._struct_rows
    monkeypatch.setattr(bulk.Loader, "_struct_rows", lambda self, block, n: calls.append(n) or real(self, block, n))
    f = tmp_path / "in.csv"
    f.write_text("key,value.a,value.b\n" + "".join(f"{k},{k},{-k}\n" for k in range(1000)))
    pin = f"{pindir}/m"
    assert bm("create", "hash", "--layout", "u32:a=u32,b=s32", "--pin", pin)[0] == 0
    assert bm("update", pin, "--from", str(f), "-q")[0] == 0
    assert sum(calls) == 1000
    with Map.open(pin) as m:
        assert len(list(m.items())) == 1000


def test_the_library_loads_a_csv_file_with_carriage_returns_in_its_cells(bpffs, tmp_path):
    """Loader.load_file opens a file as update --from does: a carriage return inside a
    quoted CSV cell is data (a file opened with newline translation would read it as a line
    end, and the cell would come back changed)."""
    import io

    import bpfmap
    from bpfmap.entries.bulk import Loader

    with Map.create("hash", 4, 16, max_entries=8) as m:
        view = m.view("u32:comm=char[16]")
        for k, comm in enumerate(("a\rb", "c\r\nd", "e\r", "\rf"), 1):
            view[k] = comm
        want = sorted(m.items())
        dumped = io.StringIO(newline="")
        bpfmap.dump(view, dumped, "csv")
        assert '"a\rb"' in dumped.getvalue()
        f = tmp_path / "entries.csv"
        f.write_text(dumped.getvalue(), newline="")
        m.clear()
        assert Loader(view).load_file(str(f)) == 4
        assert sorted(m.items()) == want
        assert view[1].comm == "a\rb" and view[2].comm == "c\r\nd"


def test_a_load_into_an_lru_map_that_evicts_says_how_many_were_dropped(pindir, tmp_path):
    """An LRU map makes room for new keys by evicting others, without an error: the load
    reads the keys it wrote back and exits 3 saying how many are gone, with a bad line's
    error too; one that fits says only how many went in (entries the map held before and
    evicted for the new ones are not the load's to count: programs evict them as well)."""
    pin = f"{pindir}/lru"
    with Map.create("lru_hash", 4, 8, max_entries=100) as m:
        m.pin(pin)
    lines = "".join(f"{i}\t{i}\n" for i in range(1, 301))
    r = run_cli("update", pin, "--from", "-", "--layout", "u32:u64", input=lines)
    with Map.open(pin) as m:
        held = len(list(m.keys()))
    assert r.returncode == 3, r.stderr
    assert f"300 entries written, but {pin} holds {held} of them: {300 - held} dropped" in r.stderr
    assert "LRU" in r.stderr
    # a bad line after the evictions: its error, and what was lost
    bad = lines + "garbage\n"
    r = run_cli("update", pin, "--from", "-", "--layout", "u32:u64", input=bad)
    assert r.returncode == 2, r.stderr
    assert "line 301:" in r.stderr and "300 entries written before it; and" in r.stderr and "dropped" in r.stderr
    r = run_cli("update", pin, "--from", "-", "--layout", "u32:u64", "--keep-going", input=bad)
    assert r.returncode == 3, r.stderr
    assert "line 301: " in r.stderr and "(skipped)" in r.stderr and "dropped" in r.stderr, r.stderr
    # full: 50 new keys go in (the map evicts 50 it held before for them)
    new = "".join(f"{i}\t{i}\n" for i in range(1001, 1051))
    r = run_cli("update", pin, "--from", "-", "--layout", "u32:u64", input=new)
    assert r.returncode == 0 and r.stderr.endswith("50 entries written\n"), r.stderr
    # what fits: no word of loss
    roomy = f"{pindir}/roomy"
    with Map.create("lru_hash", 4, 8, max_entries=100_000) as m:
        m.pin(roomy)
    r = run_cli("update", roomy, "--from", "-", "--layout", "u32:u64", input=lines)
    assert r.returncode == 0 and r.stderr == f"bpfmap: update {roomy} --from -: 300 entries written\n", r.stderr


def test_an_index_past_an_arrays_end_is_a_bad_line_not_a_full_map(pindir):
    """An array holds indices 0..max_entries-1: an index past its end is the input's
    error (exit 2, the line named; skipped with --keep-going), not a full map."""
    pin = f"{pindir}/arr"
    with Map.create("array", 4, 8, max_entries=8) as m:
        m.pin(pin)
    r = run_cli("update", pin, "8", "1", "--layout", "u32:u64")
    assert r.returncode == 2 and "index past the end of the array" in r.stderr and "0..7" in r.stderr, r.stderr
    r = run_cli("update", pin, "--from", "-", "--layout", "u32:u64", input="7\t70\n8\t80\n6\t60\n")
    assert r.returncode == 2 and "line 2: index 8 is past the end" in r.stderr and "1 entry written" in r.stderr
    r = run_cli("update", pin, "--from", "-", "--layout", "u32:u64", "--keep-going", input="7\t71\n8\t80\n6\t60\n")
    assert r.returncode == 2 and "(skipped)" in r.stderr and "2 entries written, 1 bad line skipped" in r.stderr
    assert run_cli("lookup", pin, "6", "--layout", "u32:u64").stdout == "60\n"
