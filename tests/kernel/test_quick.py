"""The one-entry verbs' quick path (bpfmap/cli/quick.py) against the full path: the same
command line, run on two maps made alike, once as the console script runs it and once with
the quick path switched off, gives the same exit code, stdout and stderr, and leaves the
two maps holding the same entries.  Lines are drawn at random (hypothesis) from the forms
the quick path takes and from their neighbours it must hand over (other number forms,
sizes, options, references, map types); a fixed set checks that the forms it takes really
go the quick way, so the comparison is not of the full path with itself."""

from __future__ import annotations

import os
import sys

import pytest
from helpers import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bpfmap.cli
import bpfmap.cli.quick as quick
from bpfmap import Map, MapSpec

# name -> (map type, key size, value size, max entries, the layout that fits it)
MAPS = {
    "hash": ("hash", 4, 8, 8, "u32:u64"),
    "array": ("array", 4, 8, 4, "u32:u64"),
    "lru": ("lru_hash", 2, 4, 4, "u16:s32"),
    "small": ("hash", 1, 1, 300, "s8:u8"),
    "percpu": ("percpu_hash", 4, 8, 8, "u32:u64"),
    "queue": ("queue", 0, 8, 3, "u64"),
    "stack": ("stack", 0, 2, 3, "s16"),
}
# entries each map starts with: (key, value) as integers (queues and stacks: values pushed)
START = {
    "hash": [(1, 10), (2, 2**64 - 1)],
    "array": [(0, 5), (3, 7)],
    "lru": [(1, -1), (65535, 2**31 - 1)],
    "small": [(-128, 255), (0, 0)],
    "percpu": [(1, 4)],
    "queue": [(None, 9), (None, 2**64 - 1)],
    "stack": [(None, -32768)],
}

NUMBERS = st.one_of(
    st.integers(-3, 3).map(str),
    st.sampled_from(["10", "65535", "65536", "-128", "-129", "255", "256", "2147483647", "-1"]),
    st.sampled_from([str(2**64 - 1), str(2**64), str(2**63), "-" + str(2**63)]),
    st.sampled_from(["007", "0x5", "1_0", " 5", "+5", "5.0", "1e3", "-0", "", "٣", "-", "--5"]),
)
LAYOUTS = st.sampled_from(
    [
        "u32:u64",
        "u16:s32",
        "s8:u8",
        "u64",
        "s16",
        "u32",
        "u32:u32",
        "u32 : u64",
        "U32:U64",
        "u32:",
        "__u32:__u64",
        "hex",
    ]
)
OPTIONS = st.sampled_from(
    [[], ["-o", "json"], ["-o", "jsonl"], ["--output=jsonl"], ["-o", "table"], ["-o", "csv"], ["-ojson"], ["-o", "yaml"],
     ["--lock"], ["--"], ["-o", "JSON"]]
)  # fmt: skip
VERBS = st.sampled_from(["lookup", "update", "delete", "count", "push", "pop", "enqueue", "dequeue"])


def _make(pindir: str, name: str) -> str:
    """A map of MAPS[name] holding START[name], pinned at PINDIR/NAME."""
    mtype, ks, vs, n, layout = MAPS[name]
    pin = os.path.join(pindir, name)
    key_side, _, value_side = layout.rpartition(":")
    with Map.create(MapSpec(mtype, ks, vs, n)) as m:
        for key, value in START[name]:
            raw = value.to_bytes(vs, sys.byteorder, signed=value_side.startswith("s"))
            if key is None:
                m.push(raw)
            else:
                m.update(key.to_bytes(ks, sys.byteorder, signed=key_side.startswith("s")), raw)
        m.pin(pin)
    return pin


def _contents(pin: str) -> list:
    """What the map holds, read through the library (a queue or stack: popped to the end)."""
    with Map.open(pin) as m:
        if m.key_size == 0:
            out = []
            while True:
                try:
                    out.append(m.pop())
                except bpfmap.NotFound:
                    return out
        if m.percpu:
            return sorted((k, m.lookup(k)) for k in m.keys())
        return sorted((k, v) for keys, values, n in m.batches() for k, v in _pairs(m, keys, values, n))


def _pairs(m: Map, keys: bytes, values: bytes, n: int):
    ks, vs = m.key_size, m.value_size
    return [(keys[i * ks : (i + 1) * ks], values[i * vs : (i + 1) * vs]) for i in range(n)]


def _run(monkeypatch, capsys, args: list[str], use_quick: bool):
    with monkeypatch.context() as mp:
        if not use_quick:
            mp.setattr(bpfmap.cli, "QUICK_VERBS", ())
        code = bpfmap.cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def twins(pindir):
    """Two directories on the private bpffs, each with every map of MAPS made alike."""
    dirs = [os.path.join(pindir, side) for side in ("a", "b")]
    for d in dirs:
        os.mkdir(d)
    return dirs


def _line(verb, name, args, layout, options, ref_form):
    words = [verb]
    ref = {"pin": "{dir}/" + name, "id": "id:{id}", "missing": "{dir}/" + name + "_gone", "dir": "{dir}/"}[ref_form]
    words.append(ref)
    words += args
    if layout is not None:
        words += ["--layout", layout]
    words += options
    return words


OWN_VERBS = {"queue": ["push", "pop", "enqueue", "dequeue"], "stack": ["push", "pop", "dequeue"]}


@st.composite
def lines(draw):
    """(map name, verb, arguments, --layout, other options, reference form): mostly the
    verbs a map's type takes with its own layout, and the neighbours of those."""
    name = draw(st.sampled_from(sorted(MAPS)))
    own = OWN_VERBS.get(name, ["lookup", "update", "delete", "count"])
    verb = draw(st.one_of(st.sampled_from(own), st.sampled_from(own), VERBS))
    layout = draw(st.one_of(st.just(MAPS[name][4]), st.just(MAPS[name][4]), st.none(), LAYOUTS))
    wanted = {"lookup": 1, "update": 2, "delete": 1, "push": 1, "enqueue": 1}.get(verb, 0)
    count = draw(st.one_of(st.just(wanted), st.just(wanted), st.integers(0, 3)))
    args = draw(st.lists(NUMBERS, min_size=count, max_size=count))
    options = draw(st.one_of(st.just([]), st.just([]), OPTIONS))
    ref_form = draw(st.sampled_from(["pin", "pin", "pin", "pin", "id", "missing", "dir"]))
    return name, verb, args, layout, options, ref_form


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=lines())
def test_quick_and_full_paths_say_and_do_the_same(twins, monkeypatch, capsys, drawn):
    name, verb, args, layout, options, ref_form = drawn
    outcomes, held = [], []
    for d, use_quick in zip(twins, (True, False)):
        pin = _make(d, name)
        with Map.open(pin) as m:
            map_id = m.id
        line = [w.format(dir=d, id=map_id) for w in _line(verb, name, args, layout, options, ref_form)]
        code, out, err = _run(monkeypatch, capsys, line, use_quick)
        outcomes.append((code, out.replace(d, "DIR"), err.replace(d, "DIR").replace(f"id:{map_id}", "id:N")))
        held.append(_contents(pin))
        os.unlink(pin)
    assert outcomes[0] == outcomes[1], line
    assert held[0] == held[1], line


# Lines the quick path must take (its answer, not the full path's), with what they print.
TAKEN = [
    (["lookup", "{hash}", "1", "-l", "u32:u64"], 0, "10\n"),
    (
        ["lookup", "{hash}", "2", "--layout=u32:u64", "-o", "json"],
        0,
        '{\n  "key": 2,\n  "value": 18446744073709551615\n}\n',
    ),
    (["lookup", "{lru}", "1", "-l", "u16:s32", "-o", "jsonl"], 0, '{"key": 1, "value": -1}\n'),
    (["lookup", "{array}", "3", "-l", "u32:u64", "-o", "table"], 0, "7\n"),
    (["update", "{small}", "-128", "-0", "-l", "s8:u8"], 0, ""),
    (["lookup", "--layout", "s8:u8", "{small}", "-128"], 0, "0\n"),
    (["delete", "{hash}", "1", "-l", "u32:u64"], 0, ""),
    (["count", "{hash}"], 0, "1\n"),
    (["count", "{array}", "-l", "u32:u64"], 0, "4\n"),
    (["push", "{stack}", "-5", "-l", "s16"], 0, ""),
    (["pop", "{stack}", "-l", "s16", "-o", "jsonl"], 0, '{"value": -5}\n'),
    (["dequeue", "{queue}", "-l", "u64"], 0, "9\n"),
]


def test_the_lines_it_knows_go_the_quick_way(pindir, monkeypatch, capsys):
    pins = {name: _make(pindir, name) for name in MAPS}
    taken = []
    real = quick.attempt
    monkeypatch.setattr(quick, "attempt", lambda verb, words: _spy(real, taken, verb, words))
    for line, code, out in TAKEN:
        taken.clear()
        got = _run(monkeypatch, capsys, [w.format(**pins) for w in line], True)
        assert got == (code, out, ""), line
        assert taken == [True], f"{line}: the full path ran it"


def _spy(real, taken, verb, words):
    done = real(verb, words)
    taken.append(done is not None)
    return done


def test_what_it_hands_over_it_leaves_untouched(pindir, monkeypatch, capsys):
    """A miss, a wrong size, another number form, a per-CPU map: handed over, and the map
    as it was (the full path's own answer follows)."""
    pins = {name: _make(pindir, name) for name in MAPS}
    for line in (
        ["lookup", "{hash}", "3", "-l", "u32:u64"],  # not there: the kernel's ENOENT
        ["update", "{hash}", "3", "0x10", "-l", "u32:u64"],
        ["update", "{hash}", "3", "1", "-l", "u32:u32"],
        ["update", "{percpu}", "3", "1", "-l", "u32:u64"],
        ["delete", "{array}", "0", "-l", "u32:u64"],
        ["pop", "{stack}", "-l", "u32"],
        ["push", "{queue}", "1", "-l", "u64", "--overwrite"],
        ["lookup", "{hash}\0x", "1", "-l", "u32:u64"],  # the kernel would read the path to its NUL
    ):
        before = {name: _contents_kept(pin) for name, pin in pins.items()}
        assert quick.attempt(line[0], [w.format(**pins) for w in line[1:]]) is None, line
        assert {name: _contents_kept(pin) for name, pin in pins.items()} == before, line


def _contents_kept(pin: str) -> list:
    """The keys of a keyed map and their values (a queue or stack: its next element, peeked)."""
    with Map.open(pin, readonly=True) as m:
        if m.key_size == 0:
            return [m.peek()]
        return sorted((k, m.lookup(k)) for k in m.keys())


class _SwapsThenFails:
    """A stdout whose write first puts another queue at ``pin`` (the map popped from stays
    pinned at ``pin``_old), then fails as a full disk does."""

    def __init__(self, pin: str) -> None:
        self.pin = pin

    def write(self, text: str) -> int:
        os.unlink(self.pin)
        with Map.create(MapSpec("queue", 0, 8, 3)) as other:
            other.pin(self.pin)
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_a_pop_whose_output_fails_goes_back_into_its_own_map(pindir, monkeypatch, capsys):
    """The element goes back through the fd it was popped with, as the full path's does: not
    into whatever another process pinned at the path meanwhile."""
    for use_quick in (True, False):
        pin = _make(pindir, "queue")  # holds 9, then 2**64-1
        with Map.open(pin) as m:
            m.pin(pin + "_old")
        monkeypatch.setattr(sys, "stdout", _SwapsThenFails(pin))
        code, out, err = _run(monkeypatch, capsys, ["pop", pin, "-l", "u64"], use_quick)
        monkeypatch.undo()
        assert code == 3 and "the element was put back (at the tail of the queue)" in err, (use_quick, err)
        assert _contents(pin) == [], use_quick  # the queue pinned there since: untouched
        held = [int.from_bytes(v, sys.byteorder) for v in _contents(pin + "_old")]
        assert held == [2**64 - 1, 9], use_quick  # the popped element, back at the tail
        os.unlink(pin)
        os.unlink(pin + "_old")


def test_a_count_of_big_values_reads_batches_of_about_a_mebibyte(pindir):
    """count reads a hash in batches of about 1 MiB of keys and values, as every batch read
    does: a map of 256 KiB values is counted in a few MiB, not 4,096 values at a time."""
    import subprocess

    with Map.create(MapSpec("hash", 4, 256 << 10, 4, flags="no_prealloc")) as m:
        for i in range(3):
            m.update(i.to_bytes(4, sys.byteorder), bytes(256 << 10))
        m.pin(os.path.join(pindir, "big"))
    code = (  # the peak of this process's own memory (VmHWM: ru_maxrss counts the forking parent's too)
        "import sys; from bpfmap.cli import main; rc = main(sys.argv[1:]); "
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0], file=sys.stderr); "
        "sys.exit(rc)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "count", os.path.join(pindir, "big")], capture_output=True, text=True
    )
    *said, peak_kib = r.stderr.split()
    assert (r.returncode, r.stdout, said) == (0, "3\n", [])
    assert int(peak_kib) < 200 << 10, f"count held {peak_kib} KiB"


def test_ctrl_c_in_the_quick_path_is_said_as_the_line_asks(pindir, monkeypatch, capsys):
    pin = _make(pindir, "hash")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(quick._sys, "map_info", interrupted)
    for options, said in ((["-o", "json"], '{"error": "interrupted", "code": 130}\n'), ([], "bpfmap: interrupted\n")):
        code, out, err = _run(monkeypatch, capsys, ["lookup", pin, "1", "-l", "u32:u64", *options], True)
        assert (code, out, err) == (130, "", said)
