"""Filters and filtered deletes you can trust, on the real kernel: ``delete --where
--print`` into a reader that goes away puts back what it did not print and says so, and
``--where`` compares what a field holds whatever ``--as`` shows."""

import json
import re
import struct
import subprocess

import pytest
from helpers import BPFMAP, BPFMAP_SH, create_pin, run_cli

from bpfmap import Map

pytestmark = pytest.mark.kernel

N = 20_000  # more than a pipe holds, so the deletion is still writing when the reader goes


def _filled(pindir: str) -> str:
    pin = f"{pindir}/m"
    with Map.create("hash", 4, 8, max_entries=N) as m:
        m.update_batch(
            b"".join(struct.pack("I", i) for i in range(N)), b"".join(struct.pack("Q", 3 * i) for i in range(N)), N
        )
        m.pin(pin)
    return pin


def _left(pin: str) -> dict[int, int]:
    with Map.open(pin) as m:
        return {struct.unpack("I", k)[0]: struct.unpack("Q", v)[0] for k, v in m.items()}


def _delete_into(pin: str, reader: str, tmp_path) -> tuple[int, list[str], str]:
    """``delete --where --print | READER`` in a shell: (bpfmap's exit code, what the reader
    printed, bpfmap's stderr)."""
    err_path = tmp_path / "err"
    line = f"{BPFMAP_SH} delete {pin} -l u32:u64 --where 'value>=0' --print 2>{err_path} | {reader}"
    r = subprocess.run(["bash", "-c", line + "; echo rc=${PIPESTATUS[0]}"], capture_output=True, text=True, timeout=120)
    *printed, rc = r.stdout.splitlines()
    return int(rc.removeprefix("rc=")), printed, err_path.read_text()


def _summary(err: str) -> tuple[int, int]:
    """(deleted, put back) from the one summary line."""
    m = re.search(r"the reader closed the output; (\d+) entr(?:y|ies) deleted, (\d+) not printed were put back", err)
    assert m, err
    return int(m.group(1)), int(m.group(2))


def _check_counts(pin: str, printed: list[str], err: str) -> set[int]:
    """The summary's counts against the map: the entries gone are exactly the deleted
    ones, every printed one among them; every entry left has its value."""
    assert "Exception ignored" not in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    deleted, put_back = _summary(err)
    left = _left(pin)
    gone = set(range(N)) - set(left)
    assert len(gone) == deleted and put_back > 0
    assert all(v == 3 * k for k, v in left.items())
    assert {int(p.split("\t")[0]) for p in printed} <= gone
    return gone


def test_delete_print_into_head_puts_back_what_head_did_not_take(pindir, tmp_path):
    """``| head -1``: head reads a block and prints one line; everything it did not read
    (what sat in the pipe, the chunk in hand) goes back into the map."""
    pin = _filled(pindir)
    rc, printed, err = _delete_into(pin, "head -1", tmp_path)
    assert rc == 0 and len(printed) == 1
    gone = _check_counts(pin, printed, err)
    assert len(gone) < 1000  # a block's worth of lines at most, not the map


def test_delete_print_into_a_one_line_reader_keeps_every_entry_not_printed(pindir, tmp_path):
    """A reader that takes exactly one line (the shell's read, a byte at a time): the map
    afterwards holds every entry but that one."""
    pin = _filled(pindir)
    rc, printed, err = _delete_into(pin, "{ read -r line; printf '%s\\n' \"$line\"; }", tmp_path)
    assert rc == 0 and len(printed) == 1
    gone = _check_counts(pin, printed, err)
    assert gone == {int(printed[0].split("\t")[0])}
    assert _summary(err)[0] == 1


LAYOUT = "k=u32:n=u32,e=s32,comm=char[8]"


@pytest.fixture
def shown(pindir):
    """Three entries: k=1 n=9 e=2 (ENOENT), k=2 n=3 e=-5 (-EIO), k=3 n=8 e=0."""
    pin = create_pin(pindir, "shown", "hash", "--layout", LAYOUT)
    lines = "".join(
        json.dumps({"key": {"k": k}, "value": {"n": n, "e": e, "comm": c}}) + "\n"
        for k, n, e, c in [(1, 9, 2, "one"), (2, 3, -5, "two"), (3, 8, 0, "three")]
    )
    r = run_cli("update", pin, "--from", "-", "--layout", LAYOUT, input=lines)
    assert r.returncode == 0, r.stderr
    return pin


def _keys(out: str) -> list[int]:
    return sorted(json.loads(line)["key"]["k"] for line in out.splitlines())


@pytest.mark.parametrize(
    "show, where, same, keys",
    [
        ("n=hex", "n>8", "n>8", [1]),
        ("n=hex", "n>0x7", "n>7", [1, 3]),
        ("n=hex", "n=09 00 00 00", "n=9", [1]),
        ("e=errno", "e=2", "e=2", [1]),
        ("e=errno", "e=ENOENT", "e=2", [1]),
        ("e=errno", "e<0", "e<0", [2]),
        ("e=errno", "e=-EIO", "e=-5", [2]),
        ("e=errno,n=hex", "e!=ENOENT", "e!=2", [2, 3]),
    ],
)
def test_where_compares_what_the_field_holds_whatever_as_shows(shown, bm, show, where, same, keys):
    """The entries --where picks with --as are those it picks without (the shown form of
    a VALUE meaning the number it shows), on dump and count."""
    code, out, err = bm("dump", shown, "--as", show, "--where", where, "-o", "jsonl")
    assert code == 0 and _keys(out) == keys, err
    code, out, err = bm("dump", shown, "--where", same, "-o", "jsonl")
    assert code == 0 and _keys(out) == keys, err
    code, out, _ = bm("count", shown, "--as", show, "--where", where)
    assert (code, out) == (0, f"{len(keys)}\n")


def test_delete_and_watch_with_as_pick_by_what_the_field_holds(shown, bm):
    code, out, err = bm("watch", shown, "--as", "e=errno", "--where", "e=ENOENT", "--count", "1", "-o", "jsonl")
    assert code == 0 and [r["key"]["k"] for r in json.loads(out)["rows"]] == [1]
    code, out, err = bm("delete", shown, "--as", "e=errno", "--where", "e=-EIO", "--print", "-o", "jsonl")
    assert code == 0 and _keys(out) == [2] and json.loads(out)["value"]["e"] == "-EIO", err
    assert "1 entry deleted" in err
    code, out, err = bm("delete", shown, "--as", "n=hex", "--where", "n>8", "--print", "-o", "jsonl")
    assert code == 0 and _keys(out) == [1] and json.loads(out)["value"]["n"] == "09 00 00 00", err
    assert _keys(bm("dump", shown, "-o", "jsonl")[1]) == [3]


def test_tests_that_could_never_pass_are_usage_errors(shown, bm):
    for args, why in [
        (["--where", "comm>1"], "comm is char[8], which has no order"),
        (["--where", "e=ENOENT"], "'ENOENT' is not one"),
        (["--as", "e=errno", "--where", "e=ENOENTX"], "neither a number nor a value errno shows"),
        (["--older-than", "1s", "--time-field", "comm"], "not an integer"),
        (["--older-than", "inf", "--time-field", "n"], "finite"),
        (["--older-than", "1e400", "--time-field", "n"], "finite"),
        (["--older-than", "10M", "--time-field", "n"], "lower case"),
    ]:
        for verb in ("dump", "count", "delete"):
            code, out, err = bm(verb, shown, *args)
            assert code == 2 and why in err and len(err.splitlines()) == 1 and not out, (verb, args, err)
    assert _keys(bm("dump", shown, "-o", "jsonl")[1]) == [1, 2, 3]  # nothing deleted


def test_delete_print_onto_a_full_disk_deletes_nothing(pindir):
    """Every chunk the output refuses goes back: exit 3, the map as it was."""
    pin = _filled(pindir)
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [*BPFMAP, "delete", pin, "-l", "u32:u64", "--where", "value>=0", "--print"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert r.returncode == 3 and "No space left on device" in r.stderr and "put back in the map" in r.stderr
    assert "Exception ignored" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert _left(pin) == {i: 3 * i for i in range(N)}
