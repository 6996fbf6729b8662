"""Operator verbs you can trust, through the real CLI on the real kernel: options after
positionals are options on every verb (numbers stay values, '--' ends the options);
export refuses a default label that is the CPU label before any scrape; top on a pin that
does not exist says so as every verb does; send --from names the bad line."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import BPFMAP, BPFMAP_SH, run_cli
from helpers import create_pin as create

import bpfmap

pytestmark = pytest.mark.kernel


# -- options after positionals ------------------------------------------------------------------


@pytest.fixture
def maps(pindir):
    """A hash map with BTF (u32 -> u64, entries 1: 10 and 2: 20), a queue, a ring buffer, a
    user ring buffer, a stack-counts map with its stack map, and a batch file: made in this
    process through the library (the verbs under test run as commands; 39 tests x 8
    commands of set-up were most of this module's time)."""

    def made(name: str, kind: str, layout: str | None = None, **fields) -> str:
        path = os.path.join(pindir, name)
        bpfmap.create(kind, layout, path, **fields).close()
        return path

    h = made("h", "hash", "u32:u64", max_entries=16)
    with bpfmap.open(h) as v:
        v[1], v[2] = 10, 20
    return {
        "h": h,
        "dir": pindir,
        "q": made("q", "queue", value_size=4, max_entries=8),
        "rb": made("rb", "ringbuf", max_entries=4096),
        "urb": made("urb", "user_ringbuf", max_entries=4096),
        "cnt": made("cnt", "hash", "kern_stack_id=s32:u64"),
        "st": made("st", "stack_trace", key_size=4, value_size=1016, max_entries=4),
        "empty": made("empty", "hash", "u32:u64"),
    }


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


# (verb, the words with an option after every positional, check of the result)
OPTION_LAST = [
    ("create", ["create", "hash", "--pin", "{dir}/new", "--layout", "u16:u8"], lambda r, m: _made(m, "new", 2, 1)),
    ("show", ["show", "{h}", "-o", "json"], lambda r, m: _json(r.stdout)["type"] == "hash"),
    ("pin", ["pin", "{h}", "{dir}/sub/again", "--mkdir"], lambda r, m: os.path.exists(f"{m['dir']}/sub/again")),
    ("freeze", ["freeze", "{h}", "--help"], lambda r, m: r.stdout.startswith("Usage: bpfmap freeze")),
    ("lookup", ["lookup", "{h}", "1", "-o", "json"], lambda r, m: _json(r.stdout) == {"key": 1, "value": 10}),
    (
        "lookup",
        ["lookup", "{h}", "2", "--layout", "u32:u64", "--output=jsonl"],
        lambda r, m: r.stdout == '{"key": 2, "value": 20}\n',
    ),
    ("update", ["update", "{h}", "1", "11", "--exist", "-q"], lambda r, m: _value(m, "1") == "11"),
    ("update", ["update", "{h}", "7", "70", "--exist"], lambda r, m: r.returncode == 1),
    (
        "delete",
        ["delete", "{h}", "2", "--print", "-o", "json"],
        lambda r, m: _json(r.stdout) == {"key": 2, "value": 20},
    ),
    ("clear", ["clear", "{h}", "-q"], lambda r, m: r.stderr == "" and _value(m, "1") is None),
    ("dump", ["dump", "{h}", "-o", "jsonl"], lambda r, m: len(r.stdout.splitlines()) == 2),
    (
        "dump",
        ["dump", "{h}", "--sort", "value", "--top", "1", "-o", "json"],
        lambda r, m: _json(r.stdout) == [{"key": 2, "value": 20}],
    ),
    ("count", ["count", "{h}", "--where", "value>15"], lambda r, m: r.stdout == "1\n"),
    ("copy", ["copy", "{h}", "{empty}", "-q"], lambda r, m: r.stderr == "" and _value(m, "2", "empty") == "20"),
    (
        "migrate",
        ["migrate", "{h}", "--max-entries", "32", "-q"],
        lambda r, m: _json(run_cli("show", m["h"], "-o", "json").stdout)["max_entries"] == 32,
    ),
    ("getnext", ["getnext", "{h}", "99", "-o", "json"], lambda r, m: _json(r.stdout)["key"] == 99),
    (
        "push",
        ["push", "{q}", "-5", "--layout", "s32"],
        lambda r, m: run_cli("pop", m["q"], "-l", "s32").stdout == "-5\n",
    ),
    ("pop", ["pop", "{q}", "-o", "json", "-l", "u32"], lambda r, m: r.returncode == 1 and "empty" in r.stderr),
    ("peek", ["peek", "{q}", "-o", "json", "-l", "u32"], lambda r, m: r.returncode == 1 and "empty" in r.stderr),
    (
        "watch",
        ["watch", "{h}", "-o", "jsonl", "--count", "1", "-i", "0.1"],
        lambda r, m: _json(r.stdout)["entries"] == 2,
    ),
    ("top", ["top", "{h}", "-o", "jsonl", "--count", "1"], lambda r, m: _json(r.stdout)["pinned"] == [m["h"]]),
    ("hist", ["hist", "{h}", "-o", "json"], lambda r, m: _json(r.stdout)[0]["total"] == 30),
    (
        "events",
        ["events", "{rb}", "--timeout", "0.1", "-o", "jsonl"],
        lambda r, m: r.returncode == 1 and "0 records" in r.stderr,
    ),
    ("send", ["send", "{urb}", "01000000", "-q"], lambda r, m: r.returncode == 0 and r.stderr == ""),
    ("stacks", ["stacks", "{cnt}", "--stack-map", "{st}", "-o", "json"], lambda r, m: _json(r.stdout) == []),
    ("export", ["export", "{config}", "--check", "-q"], lambda r, m: r.returncode == 0 and r.stderr == ""),
    ("batch", ["batch", "{lines}", "--keep-going"], lambda r, m: r.returncode == 1 and r.stdout == "10\n"),
]


def _made(m, name: str, key: int, value: int) -> bool:
    info = _json(run_cli("show", f"{m['dir']}/{name}", "-o", "json").stdout)
    return (info["key_size"], info["value_size"]) == (key, value)


def _value(m, key: str, name: str = "h") -> str | None:
    r = run_cli("lookup", m[name], key)
    return r.stdout.strip() if r.returncode == 0 else None


@pytest.mark.parametrize(
    ("verb", "words", "check"), OPTION_LAST, ids=[f"{c[0]}-{i}" for i, c in enumerate(OPTION_LAST)]
)
def test_every_verb_takes_options_after_its_positionals(maps, tmp_path, verb, words, check):
    config, lines = tmp_path / "export.yaml", tmp_path / "batch.txt"
    config.write_text(f"metrics:\n  - name: h_total\n    map: {maps['h']}\n")
    lines.write_text(f"lookup {maps['h']} 1\nlookup {maps['h']} 9\n")
    r = run_cli(*[w.format(**maps, config=config, lines=lines) for w in words])
    assert "Traceback" not in r.stderr
    assert check(r, maps), (r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize(
    "words",
    [
        ["update", "{h}", "1", "2", "-o", "json"],  # update has no --output: not two more values
        ["update", "{h}", "1", "2", "-x"],
        ["lookup", "{h}", "1", "-x"],
        ["push", "{q}", "7", "-z"],
        ["send", "{urb}", "01000000", "-z"],
        ["update", "{h}", "1", "2", "--noexsit"],
    ],
)
def test_an_unknown_option_after_positionals_is_refused_not_taken_as_a_value(maps, words):
    r = run_cli(*[w.format(**maps) for w in words])
    assert r.returncode == 2, r.stderr
    assert f"no such option: {words[-1] if words[-1] != 'json' else '-o'}" in r.stderr.lower(), r.stderr
    assert "values given" not in r.stderr and r.stderr.count("\n") == 1
    assert run_cli("lookup", maps["h"], "1").stdout == "10\n"  # nothing written


def test_negative_numbers_stay_values_on_both_paths(pindir):
    """-5 is a value (a key, a value, per-CPU values), never an option, on the fast path
    (update/lookup/delete without other options) and the parser's (with --noexist, ...)."""
    m = create(pindir, "s", "hash", "--layout", "s32:s64")
    assert run_cli("update", m, "-5", "-7", "--layout", "s32:s64").returncode == 0
    assert run_cli("update", m, "-6", "-8", "--noexist", "--layout", "s32:s64").returncode == 0
    assert run_cli("update", m, "-0x10", "-1e3", "--layout", "s32:f64").returncode == 0
    assert run_cli("lookup", m, "-16", "--layout", "s32:f64").stdout == "-1000.0\n"
    assert run_cli("delete", m, "-16").returncode == 0
    r = run_cli("lookup", m, "-5", "-o", "json")
    assert (r.returncode, _json(r.stdout)) == (0, {"key": -5, "value": -7}), r.stderr
    r = run_cli("getnext", m, "-99", "-o", "json")  # a key not in a hash map: the first key next
    assert r.returncode == 0 and _json(r.stdout)["key"] == -99, r.stderr
    r = run_cli("delete", m, "-6", "--print", "-o", "jsonl")
    assert (r.returncode, r.stdout) == (0, '{"key": -6, "value": -8}\n'), r.stderr
    r = run_cli("dump", m, "-o", "jsonl")
    assert r.stdout == '{"key": -5, "value": -7}\n'
    pc = create(pindir, "pc", "percpu_array", "--layout", "u32:s64", "--max-entries", "1")
    ncpus = os.cpu_count() or 1
    r = run_cli("update", pc, "0", *["-3"] * ncpus, "-q")
    if r.returncode == 2 and "possible CPUs" in r.stderr:
        pytest.skip("possible CPUs differ from online CPUs here")
    assert r.returncode == 0, r.stderr
    assert run_cli("lookup", pc, "0", "--percpu", "sum").stdout == f"{-3 * ncpus}\n"


def test_double_dash_ends_the_options(pindir):
    """After '--' every word is a value, even one that looks like an option."""
    m = create(pindir, "c", "hash", "--layout", "char[8]:s64")
    r = run_cli("update", m, "-q", "--", "--x", "-9")
    assert r.returncode == 0, r.stderr
    r = run_cli("update", m, "--", "-abc", "5")
    assert r.returncode == 0, r.stderr
    r = run_cli("lookup", m, "-o", "json", "--", "--x")
    assert (r.returncode, _json(r.stdout) if r.stdout else None) == (0, {"key": "--x", "value": -9}), r.stderr
    assert run_cli("lookup", m, "--", "-abc").stdout == "5\n"
    assert run_cli("delete", m, "--", "--x").returncode == 0
    assert run_cli("lookup", m, "--", "--x").returncode == 1


def test_batch_lines_take_options_after_positionals(pindir, tmp_path):
    m = create(pindir, "b", "hash", "--layout", "s32:s64")
    r = run_cli("batch", "-", input=f"update {m} -1 -2 --noexist\nlookup {m} -1 -o jsonl\nupdate {m} 1 2 -o json\n")
    assert r.stdout == '{"key": -1, "value": -2}\n'
    assert r.returncode == 2 and "line 3: no such option: -o" in r.stderr.lower(), r.stderr


# -- top on references that name no map --------------------------------------------------------


@pytest.mark.parametrize("output", [["-o", "jsonl"], []])
def test_top_on_a_pin_that_does_not_exist_says_so(pindir, output):
    """As every verb does for a missing pin: exit 3 with 'no such pin', not an empty screen."""
    create(pindir, "there", "hash", "--layout", "u32:u64")
    r = run_cli("top", f"{pindir}/missing", *output, "--count", "1")
    assert (r.returncode, r.stdout) == (3, ""), r.stderr
    assert "no such pin" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "ref", ["{dir}/missing", "{dir}/nomatch*", "{dir}/empty", "name:nosuchmap_zz", "id:4000000000"]
)
def test_top_refuses_what_names_no_map_as_dump_does(pindir, ref):
    """A glob or a directory matching no map, a name or an id no map has: top exits with the
    code and the words dump (and every other verb) has for it."""
    create(pindir, "there", "hash", "--layout", "u32:u64")
    os.mkdir(f"{pindir}/empty")
    ref = ref.format(dir=pindir)
    dump = run_cli("dump", ref, "-o", "jsonl")
    top = run_cli("top", ref, "-o", "jsonl", "--count", "1")
    assert dump.returncode in (1, 3) and top.stdout == ""
    assert (top.returncode, top.stderr) == (dump.returncode, dump.stderr)


def test_a_one_map_verb_on_a_directory_of_no_maps_says_it_in_words(pindir):
    os.mkdir(f"{pindir}/empty")
    r = run_cli("update", f"{pindir}/empty", "1", "2")
    assert (
        r.returncode == 1 and r.stderr == f"bpfmap: {pindir}/empty names no map: no map is pinned there (or matches)\n"
    )


def test_top_takes_a_relative_pin(pindir):
    pin = create(pindir, "rel", "hash", "--layout", "u32:u64")
    cmd = [*BPFMAP, "top", "rel", "-o", "jsonl", "--count", "1"]
    r = subprocess.run(cmd, cwd=pindir, capture_output=True, text=True, timeout=60)  # run_cli has no cwd
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["pinned"] for line in r.stdout.splitlines()] == [[pin]]


# -- export: a default label that is the CPU label ---------------------------------------------


@pytest.mark.parametrize("filled", [True, False])
@pytest.mark.parametrize("mode", [["--check"], ["--once"], ["--once", "--textfile", "{tmp}/out.prom"]])
def test_export_refuses_a_default_label_that_is_the_cpu_label_at_load(pindir, tmp_path, mode, filled):
    """percpu: cpu, labels left to the key's fields, one of them cpu: refused before any
    scrape (exit 2, nothing written), as it is when the labels list cpu."""
    pin = create(pindir, "pc", "percpu_hash", "--layout", "cpu=u32,x=u32:u64", "--max-entries", "8")
    if filled:
        assert run_cli("update", pin, "cpu=1,x=2", "5").returncode == 0
    config = tmp_path / "export.yaml"
    for labels in ("", "    labels: [cpu, x]\n"):
        config.write_text(f"metrics:\n  - name: pc_total\n    map: {pin}\n    percpu: cpu\n{labels}")
        r = run_cli("export", str(config), *[w.format(tmp=tmp_path) for w in mode])
        assert (r.returncode, r.stdout) == (2, ""), (labels, r.stderr)
        assert "labels: cpu: the label cpu is the CPU label of percpu: cpu" in r.stderr and r.stderr.count("\n") == 1
        assert not (tmp_path / "out.prom").exists()


# -- send --from: the bad line by its number ---------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "number", "problem", "before"),
    [
        ("pid=1,cmd=2\n\npid=x,cmd=3\n", 3, "'x' is not a number", "1 record written before it"),
        ('pid=1,cmd=2\npid=2,cmd=2\n{"pid": -1, "cmd": 2}\n', 3, "out of range", "2 records written before it"),
        ("pid=1\n", 1, "missing field(s) cmd", "0 records written before it"),
        ("pid=1,cmd=2\n" + "9" * (2 << 20) + "\n", 2, "longer than", "1 record written before it"),
    ],
    ids=["text", "json", "short", "long"],
)
def test_send_from_names_the_bad_line(pindir, tmp_path, lines, number, problem, before):
    urb = create(pindir, "urb", "user_ringbuf", "--max-entries", "4096")
    path = tmp_path / "records.txt"
    path.write_text(lines)
    for source, stdin in ((str(path), None), ("-", lines)):
        r = run_cli("send", urb, "--layout", "pid=u32,cmd=u32", "--from", source, input=stdin)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith(f"bpfmap: send {urb} --from {source}: line {number}: "), r.stderr
        assert problem in r.stderr and before in r.stderr, r.stderr


@pytest.mark.parametrize("out", ["full", "closed"])
def test_pop_and_delete_print_put_back_what_the_output_did_not_take(pindir, out):
    """pop and delete KEY --print take an element out, then write it: an output that fails
    (a full disk, a closed stdout) did not get it, so it goes back into the map, and the
    error says so (exit 3); nothing is lost without a word."""
    q = create(pindir, "q", "queue", "--value", "4", "--max-entries", "4")
    h = create(pindir, "h", "hash", "--key", "4", "--value", "8")
    for i in (1, 2, 3):
        assert run_cli("push", q, str(i), "--layout", "u32").returncode == 0
    assert run_cli("update", h, "1", "11", "--layout", "u32:u64").returncode == 0
    redirect = "> /dev/full" if out == "full" else ">&-"
    for command, said in (
        (f"pop {q} --layout u32", "the element was put back (at the tail of the queue)"),
        (f"delete {h} 1 --print --layout u32:u64", "the entry was put back in the map"),
    ):
        r = subprocess.run(f"{BPFMAP_SH} {command} {redirect}", shell=True, capture_output=True, text=True)
        assert r.returncode == 3 and said in r.stderr, r.stderr
    # the queue's first element went to its tail; the hash holds its entry
    popped = [run_cli("pop", q, "--layout", "u32").stdout.strip() for _ in range(3)]
    assert popped == ["2", "3", "1"]
    assert run_cli("lookup", h, "1", "--layout", "u32:u64").stdout == "11\n"
