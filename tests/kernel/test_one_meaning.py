"""One meaning for every value, on the real kernel: a ``char[N]`` is a C string (the text
before its first NUL) in every verb and format, on the fast path (raw batches straight
to lines) and the decoded one alike; a display format shows an array's elements as it
shows one integer, whichever path writes them; a layout the user gives wins over the
display a map type picks by default."""

from __future__ import annotations

import csv
import io
import json
import pwd
import socket
import subprocess

import pytest
from helpers import compile_bpf, create_pin, run_cli
from helpers.programs import packet_to_ringbuf

from bpfmap import Map, Program, View
from bpfmap.layout import Layout
from bpfmap.output import item_writer, write_entries, write_item_batches

pytestmark = pytest.mark.kernel

LAYOUT = "u32:comm=char[16],n=u64"
# "curl", its NUL, then what an earlier, longer name left in the slot: a comma, a quote,
# a control character, a byte that is not UTF-8, another NUL
COMM = b"curl\0" + b'ABC,"\xff\x01xyz\0'
assert len(COMM) == 16
GARBAGE = ("ABC", "xyz", "\\x00", "\\u0000", "\\xff", "\\udcff")

# the fast path is dump's own; --where (on the number) makes the same dump decode its entries
PATHS = {"fast": [], "decoded": ["--where", "n>=0"]}


@pytest.fixture
def comms(pindir):
    """A hash map whose entry 1 holds COMM (garbage after the NUL), entry 2 a name that
    fills the whole field (no NUL at all)."""
    pin = create_pin(pindir, "comms", "hash", "--key", "4", "--value", "24")
    with Map.open(pin) as m:
        m.update((1).to_bytes(4, "little"), COMM + (7).to_bytes(8, "little"))
        m.update((2).to_bytes(4, "little"), b"abcdefghijklmnop" + (9).to_bytes(8, "little"))
    return pin


def _no_garbage(text: str) -> None:
    for g in GARBAGE:
        assert g not in text, (g, text)
    assert "\0" not in text


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", ["text", "json", "jsonl", "csv", "table"])
def test_dump_shows_a_char_array_up_to_its_nul(comms, fmt, path):
    r = run_cli("dump", comms, "-l", LAYOUT, "-o", fmt, *PATHS[path])
    assert r.returncode == 0, r.stderr
    _no_garbage(r.stdout)
    if fmt == "text":
        assert sorted(r.stdout.splitlines()) == ["1\tcomm=curl,n=7", "2\tcomm=abcdefghijklmnop,n=9"]
    elif fmt in ("json", "jsonl"):
        rows = json.loads(r.stdout) if fmt == "json" else [json.loads(x) for x in r.stdout.splitlines()]
        assert sorted((e["key"], e["value"]["comm"]) for e in rows) == [(1, "curl"), (2, "abcdefghijklmnop")]
    elif fmt == "csv":
        header, *rows = csv.reader(io.StringIO(r.stdout))
        assert header == ["key", "value.comm", "value.n"]
        assert sorted(rows) == [["1", "curl", "7"], ["2", "abcdefghijklmnop", "9"]]
    else:
        lines = r.stdout.splitlines()
        assert any(" 1 " in x and " curl " in x for x in lines), r.stdout


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_lookup_and_watch_show_a_char_array_up_to_its_nul(comms, fmt):
    r = run_cli("lookup", comms, "1", "-l", LAYOUT, "-o", fmt)
    assert r.returncode == 0, r.stderr
    _no_garbage(r.stdout)
    assert (r.stdout if fmt == "text" else json.loads(r.stdout)) == (
        "comm=curl,n=7\n" if fmt == "text" else {"key": 1, "value": {"comm": "curl", "n": 7}}
    )
    r = run_cli("watch", comms, "-l", LAYOUT, "--count", "1")  # off a terminal: one JSON snapshot
    assert r.returncode == 0, r.stderr
    _no_garbage(r.stdout)
    [snap] = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted(row["value"]["comm"] for row in snap["rows"]) == ["abcdefghijklmnop", "curl"]


def test_where_compares_the_string_before_the_nul(comms):
    r = run_cli("dump", comms, "-l", LAYOUT, "--where", "comm=curl")
    assert (r.returncode, r.stdout) == (0, "1\tcomm=curl,n=7\n"), r.stderr
    r = run_cli("count", comms, "-l", LAYOUT, "--where", "comm~url")
    assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr
    r = run_cli("count", comms, "-l", LAYOUT, "--where", "comm~ABC")  # old bytes are not the string
    assert (r.returncode, r.stdout.strip()) == (1, "0"), r.stderr


@pytest.mark.parametrize("path", PATHS)
def test_as_hex_still_shows_every_byte(comms, path):
    r = run_cli("dump", comms, "-l", LAYOUT, "--as", "comm=hex", "-o", "jsonl", *PATHS[path])
    assert r.returncode == 0, r.stderr
    got = {json.loads(x)["key"]: json.loads(x)["value"]["comm"] for x in r.stdout.splitlines()}
    assert bytes.fromhex(got[1]) == COMM
    assert bytes.fromhex(got[2]) == b"abcdefghijklmnop"


@pytest.mark.parametrize("fmt", ["text", "jsonl", "csv", "json"])
def test_a_dump_loaded_back_keeps_nul_free_strings_and_zeros_after_a_nul(comms, pindir, tmp_path, fmt):
    """A string without a NUL (the whole field, or shorter and zero-filled) comes back
    byte for byte; one with old bytes after its NUL comes back with zeros there."""
    with Map.open(comms) as m:
        m.update((3).to_bytes(4, "little"), b"bash".ljust(16, b"\0") + (1).to_bytes(8, "little"))
    r = run_cli("dump", comms, "-l", LAYOUT, "-o", fmt)
    assert r.returncode == 0, r.stderr
    dumped = r.stdout
    if fmt == "json":  # a JSON array: loaded as JSON Lines
        dumped = "".join(json.dumps(o) + "\n" for o in json.loads(dumped))
    f = tmp_path / f"d.{fmt}"
    f.write_text(dumped, newline="")
    dst = create_pin(pindir, "dst", "hash", "--key", "4", "--value", "24")
    r = run_cli("update", dst, "--from", str(f), "-l", LAYOUT)
    assert r.returncode == 0, r.stderr
    with Map.open(comms) as a, Map.open(dst) as b:
        src, back = dict(a.items()), dict(b.items())
    key = (1).to_bytes(4, "little")
    assert back.pop(key) == b"curl".ljust(16, b"\0") + (7).to_bytes(8, "little")
    src.pop(key)
    assert back == src


# -- a ring buffer record: old bytes after a string's NUL (records are not zeroed) -----------

RECORD = packet_to_ringbuf(24)  # the 24 bytes after the test packet's Ethernet header
FNAME = b"/etc/ld.so\0" + b'( \0"old,\xff'
assert len(FNAME) == 20


@pytest.fixture
def ring(pindir):
    pin = create_pin(pindir, "ev", "ringbuf", "--max-entries", "4096")
    with Map.open(pin) as m, Program.load("socket_filter", RECORD, {"ev": m}) as prog:

        def send() -> None:
            assert prog.test_run(bytes(14) + (42).to_bytes(4, "little") + FNAME)[0] == 0

        yield pin, send


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_events_show_a_record_string_up_to_its_nul(ring, fmt, path):
    pin, send = ring
    send()
    where = ["--where", "pid>=0"] if path == "decoded" else []
    r = run_cli("events", pin, "--layout", "pid=u32,fname=char[20]", "--count", "1", "-o", fmt, *where)
    assert r.returncode == 0, r.stderr
    _no_garbage(r.stdout)
    assert "old" not in r.stdout
    if fmt == "text":
        assert r.stdout == "pid=42,fname=/etc/ld.so\n"
    else:
        assert json.loads(r.stdout) == {"value": {"pid": 42, "fname": "/etc/ld.so"}}


def test_events_as_hex_show_every_byte_of_a_record_string(ring):
    pin, send = ring
    send()
    r = run_cli("events", pin, "--layout", "pid=u32,fname=char[20]", "--as", "fname=hex", "-c", "1", "-o", "jsonl")
    assert r.returncode == 0, r.stderr
    assert bytes.fromhex(json.loads(r.stdout)["value"]["fname"]) == FNAME


# -- export: a label from a char field --------------------------------------------------------


def test_export_labels_from_a_char_array_end_at_its_nul(pindir, tmp_path):
    from bpfmap.export import Exporter, read_config
    from bpfmap.export.exposition import family_text

    layout = "id=u32,comm=char[16]:n=u64"
    pin = create_pin(pindir, "by_comm", "hash", "--layout", layout)
    with Map.open(pin) as m:
        m.update((1).to_bytes(4, "little") + COMM, (5).to_bytes(8, "little"))
    config = tmp_path / "export.yaml"
    config.write_text(f"metrics:\n  - name: runs_total\n    map: {pin}\n    value: n\n    labels: [id, comm]\n")
    e = Exporter(read_config(str(config)), log=lambda _t: None)
    try:
        [metric] = e.metrics
        fast, _n, _m = e.read(metric, fast=True)
        assert fast.lines is not None  # straight from the kernel's batch
        slow, _n, _m = e.read(metric, fast=False)
        assert slow.lines is None
        for text in ("".join(family_text(fast)), "".join(family_text(slow))):
            assert 'runs_total{id="1",comm="curl"} 5\n' in text, text
            _no_garbage(text)
    finally:
        e.close()
    r = run_cli("export", str(config), "--once")
    assert r.returncode == 0, r.stderr
    assert 'runs_total{id="1",comm="curl"} 5\n' in r.stdout
    _no_garbage(r.stdout)


# -- display formats on arrays: one element shown as one integer is, on both paths ------------


def _nameless_uid(size: int, signed: bool) -> int:
    """A uid that has no user and fits an element of ``size`` bytes."""
    top = min(2 ** (8 * size - signed), 60000)
    for u in range(top - 1, 0, -1):
        try:
            pwd.getpwuid(u)
        except KeyError:
            return u
    raise AssertionError("every uid has a user")


ELEMS = ["u8", "s8", "u16", "s16", "be16", "u32", "s32", "be32", "u64", "s64"]
INT_FORMATS = ["errno", "syscall", "uid", "gid", "ifname", "ksym", "majorminor", "majorminor_user", "cgroup"]


def _fast_and_decoded(lay: Layout, keys: bytes, values: bytes, count: int, fmt: str) -> tuple[str, str]:
    rows = item_writer(fmt, lay.key, lay.value)
    assert rows is not None, (fmt, lay.value)
    fast = io.StringIO()
    write_item_batches([(keys, values, count)], fmt, rows, fast)
    decoded = io.StringIO()
    batch = (lay.key.decode_many(keys, count), lay.value.decode_many(values, count))
    write_entries([batch], fmt, lay.key, lay.value, False, decoded)
    return fast.getvalue(), decoded.getvalue()


@pytest.mark.parametrize("show", INT_FORMATS)
@pytest.mark.parametrize("elem", ELEMS)
def test_display_formats_on_arrays_agree_on_both_paths(elem, show):
    """Every element width, every integer format: an array whose elements are 0 (a name
    for most formats), 1, 2 and a number with no name, written from raw bytes and from
    decoded values, in every format: the same bytes."""
    from bpfmap.layout.formats import apply

    base = Layout.parse(f"u32:a={elem}[4],n=u32")
    size = base.value.type.fields[0].type.elem.size
    signed = elem.startswith("s")
    order = "big" if elem.startswith("be") else "little"
    nameless = _nameless_uid(size, signed)
    elements = [0, 1, 2, nameless]
    count = 3
    values = b"".join(
        (b"".join(e.to_bytes(size, order, signed=signed) for e in elements) + i.to_bytes(4, "little")).ljust(
            base.value.size, b"\0"
        )
        for i in range(count)
    )
    keys = b"".join(i.to_bytes(4, "little") for i in range(count))
    value, rest = apply(base.value, {"a": show})
    assert not rest
    lay = Layout(base.key, value)
    for fmt in ("text", "jsonl", "json", "csv", "table"):
        fast, decoded = _fast_and_decoded(lay, keys, values, count, fmt)
        assert fast == decoded, (fmt, fast, decoded)


def test_uid_names_each_element_of_an_array_on_its_own(pindir):
    """The issue's case: s16[3] holding 0, 0 and a uid with no user, through the CLI."""
    nameless = _nameless_uid(2, True)
    root = pwd.getpwuid(0).pw_name
    pin = create_pin(pindir, "ids", "hash", "--key", "4", "--value", "8")
    with Map.open(pin) as m:
        m.update(bytes(4), b"".join(v.to_bytes(2, "little", signed=True) for v in (0, 0, nameless, 0)))
    want = {"key": 0, "value": {"ids": [root, root, nameless], "pad": 0}}
    for path in PATHS.values():
        where = ["--where", "pad>=0"] if path else []
        r = run_cli("dump", pin, "-l", "u32:ids=s16[3],pad=u16", "--as", "ids=uid", "-o", "jsonl", *where)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == want, where


# -- a layout the user gives wins over the display a map type picks --------------------------


def test_an_lpm_trie_key_laid_out_by_the_user_is_shown_as_laid_out(pindir):
    pin = create_pin(pindir, "lpm", "lpm_trie", "--key", "8", "--value", "4")
    assert run_cli("update", pin, "10.0.0.0/8", "01 00 00 00").returncode == 0
    assert run_cli("dump", pin).stdout == "10.0.0.0/8\t01 00 00 00\n"  # no layout: CIDR
    assert run_cli("dump", pin, "-l", ":u32").stdout == "10.0.0.0/8\t1\n"  # the key not laid out: CIDR
    r = run_cli("dump", pin, "--layout", "plen=u32,addr=u8[4]:u32", "-o", "jsonl")
    assert json.loads(r.stdout) == {"key": {"plen": 8, "addr": [10, 0, 0, 0]}, "value": 1}
    r = run_cli("lookup", pin, "plen=32,addr=[10,1,2,3]", "--layout", "plen=u32,addr=u8[4]:u32")
    assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr
    r = run_cli("dump", pin, "--layout", "hex[8]:u32")
    assert r.stdout == "08 00 00 00 0a 00 00 00\t1\n"


def test_a_stack_trace_value_laid_out_by_the_user_is_shown_as_laid_out(pindir):
    pin = create_pin(pindir, "st", "stack_trace", "--key", "4", "--value", "16", "--max-entries", "4")
    with Map.open(pin) as m:
        view = View(m, Layout.parse(":a=u64,b=u64"))
        assert type(view.value).__name__ == "TypeCodec"
        assert type(view.key).__name__ == "IndexCodec"
        assert type(View(m).value).__name__ == "StackCodec"


# -- which arrays are strings: plain char in BTF, not unsigned char or __u8 ----------------------

CHARS_PROG = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct val { char comm[8]; unsigned char raw[4]; __u8 addr[4]; };

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct val);
} vals SEC(".maps");

SEC("socket")
int keep(struct __sk_buff *skb)
{
    __u32 k = 0;
    return bpf_map_lookup_elem(&vals, &k) != 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_only_plain_char_arrays_from_btf_are_strings(tmp_path, pindir, bpftool):
    src = tmp_path / "chars.c"
    src.write_text(CHARS_PROG)
    obj = compile_bpf(src, tmp_path / "chars.o")
    maps = f"{pindir}/maps"
    subprocess.run([bpftool, "prog", "loadall", obj, f"{pindir}/progs", "pinmaps", maps], check=True)
    with Map.open(f"{maps}/vals") as m:
        m.update(bytes(4), b"sh\0zzzz\0" + b"a\0bc" + bytes([10, 0, 0, 1]))
    for where in ([], ["--where", "key>=0"]):
        r = run_cli("dump", f"{maps}/vals", "-o", "jsonl", *where)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {
            "key": 0,
            "value": {"comm": "sh", "raw": [97, 0, 98, 99], "addr": [10, 0, 0, 1]},
        }


# -- --where FIELD~TEXT: the text the entry shows for the field, under the --as in effect -----

TILDE_LAYOUT = "k=u32:e=s32,a=u32,addr=ipv4,comm=char[16],uid=u32"
TILDE_AS = "e=errno,a=ip,uid=uid"
NAMELESS = _nameless_uid(4, False)


def _tilde_value(e: int, a: str, addr: str, comm: bytes, uid: int) -> bytes:
    return (
        e.to_bytes(4, "little", signed=True)
        + socket.inet_aton(a)
        + socket.inet_aton(addr)
        + comm.ljust(16, b"\0")
        + uid.to_bytes(4, "little")
    )


TILDE_ENTRIES = {  # key -> value: errno, an address shown by --as ip, an ipv4 field, a string, a user
    1: _tilde_value(2, "10.0.0.1", "192.168.1.20", COMM, 0),  # ENOENT, "curl" with old bytes ABC after its NUL
    2: _tilde_value(-5, "10.0.0.2", "10.1.2.3", b"bash", NAMELESS),  # -EIO, a uid with no user
    3: _tilde_value(0, "192.168.1.20", "10.0.0.1", b"ABC", 0),
}


@pytest.fixture
def tilde(pindir):
    pin = create_pin(pindir, "tilde", "hash", "--layout", TILDE_LAYOUT)
    with Map.open(pin) as m:
        for k, v in TILDE_ENTRIES.items():
            m.update(k.to_bytes(4, "little"), v)
    return pin


ROOT = pwd.getpwuid(0).pw_name
# (--as, condition, the keys whose shown text of the field holds TEXT)
TILDES = [
    (TILDE_AS, "e~NOENT", [1]),
    (TILDE_AS, "e~-EIO", [2]),
    (TILDE_AS, "a~10.0.0.", [1, 2]),
    (TILDE_AS, "a~.168.", [3]),
    (TILDE_AS, "addr~10.", [2, 3]),
    (TILDE_AS, "comm~url", [1]),
    (TILDE_AS, "comm~ABC", [3]),  # the bytes after curl's NUL are not its text
    (TILDE_AS, f"uid~{ROOT[:3]}", [1, 3]),
    (TILDE_AS, f"uid~{NAMELESS}", [2]),  # no name: the number is what it shows
    ("uid=uid", "uid~0", []),  # root shows as its name
    ("", "uid~0", [1, 3]),  # no --as: the number
    ("", "e~-", [2]),
    ("", "addr~.168.", [1]),
]
TILDE_IDS = [f"{show or 'as-is'}:{cond}" for show, cond, _keys in TILDES]


def _as(show: str) -> list[str]:
    return ["--as", show] if show else []


def _shown_lines(pin: str, show: str, fmt: str, *where: str) -> dict[int, str]:
    """key -> the line dump writes for it (no --where: the fast path, raw batches straight
    to lines; with one: the decoded path)."""
    r = run_cli("dump", pin, "-l", TILDE_LAYOUT, *_as(show), "-o", fmt, *where)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines(keepends=True)
    if fmt == "jsonl":
        return {json.loads(x)["key"]["k"]: x for x in lines}
    return {int(x.split("\t")[0].removeprefix("k=")): x for x in lines}


def _holding(pin: str, show: str, cond: str) -> list[int]:
    """The keys whose field, as the fast path's JSON shows it, holds the condition's TEXT."""
    field, _tilde, text = cond.partition("~")
    rows = [json.loads(x) for x in _shown_lines(pin, show, "jsonl").values()]
    return sorted(row["key"]["k"] for row in rows if text in str(row["value"][field]))


@pytest.mark.parametrize("show, cond, keys", TILDES, ids=TILDE_IDS)
def test_where_tilde_matches_the_text_the_field_shows(tilde, show, cond, keys):
    """dump (text, jsonl) and count: ``~TEXT`` picks the entries whose field shows TEXT,
    those lines exactly as the fast path writes them."""
    assert _holding(tilde, show, cond) == keys
    for fmt in ("text", "jsonl"):
        every = _shown_lines(tilde, show, fmt)
        picked = _shown_lines(tilde, show, fmt, "--where", cond)
        assert picked == {k: every[k] for k in keys}, (fmt, picked)
    r = run_cli("count", tilde, "-l", TILDE_LAYOUT, *_as(show), "--where", cond)
    assert (r.returncode, r.stdout) == ((0 if keys else 1), f"{len(keys)}\n"), r.stderr


@pytest.mark.parametrize("show, cond, keys", TILDES, ids=TILDE_IDS)
def test_delete_where_tilde_deletes_the_entries_that_show_the_text(tilde, show, cond, keys):
    r = run_cli("delete", tilde, "-l", TILDE_LAYOUT, *_as(show), "--where", cond)
    assert r.returncode == (0 if keys else 1), r.stderr
    assert f": {len(keys)} entr{'y' if len(keys) == 1 else 'ies'} deleted" in r.stderr, r.stderr
    with Map.open(tilde) as m:
        left = sorted(int.from_bytes(k, "little") for k in m.keys())
    assert left == sorted(set(TILDE_ENTRIES) - set(keys))


def test_where_tilde_on_a_saved_map_and_in_watch(tilde, tmp_path):
    """A saved map read as a live one (its names the saving host's) and watch's snapshot
    pick by the shown text too."""
    saved = str(tmp_path / "tilde.bpfmap")
    assert run_cli("save", tilde, saved, "-l", TILDE_LAYOUT, "-q").returncode == 0
    for show, cond, keys in TILDES:
        r = run_cli("count", saved, "-l", TILDE_LAYOUT, *_as(show), "--where", cond)
        assert r.stdout == f"{len(keys)}\n", (show, cond, r.stderr)
        r = run_cli("dump", saved, "-l", TILDE_LAYOUT, *_as(show), "--where", cond, "-o", "jsonl")
        assert sorted(json.loads(x)["key"]["k"] for x in r.stdout.splitlines()) == keys, (show, cond, r.stderr)
    r = run_cli("watch", tilde, "-l", TILDE_LAYOUT, "--as", TILDE_AS, "--where", "e~NOENT", "--count", "1")
    assert r.returncode == 0, r.stderr
    [snap] = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(row["key"]["k"], row["value"]["e"]) for row in snap["rows"]] == [(1, "ENOENT")]


def test_where_tilde_in_the_python_api(tilde):
    """A View shown through formats: count, Deletion, dump and the Where itself read
    ``~`` as the shown text, ``=`` as what the field holds."""
    import bpfmap

    with Map.open(tilde) as m:
        view = View(m, Layout.parse(TILDE_LAYOUT))
        view.show_as({"e": "errno", "a": "ip", "uid": "uid"})
        assert bpfmap.count(view, ["e~NOENT"]) == 1
        assert bpfmap.count(view, ["a~10.0.0.", "e=ENOENT"]) == 1
        out = io.StringIO()
        bpfmap.dump(view, out, "jsonl", where=view.where([f"uid~{ROOT}"]))
        assert sorted(json.loads(x)["key"]["k"] for x in out.getvalue().splitlines()) == [1, 3]
        gone = bpfmap.Deletion(view, ["e~EIO"])
        assert sum(len(k) for k, _v in gone.run()) == 1 and gone.deleted == 1
        assert sorted(int.from_bytes(k, "little") for k in m.keys()) == [1, 3]


def test_copy_and_migrate_where_tilde(tilde, pindir):
    """copy (no --as: the text shown by default) and migrate (its --as read by --where)."""
    dst = create_pin(pindir, "dst", "hash", "--layout", TILDE_LAYOUT)
    r = run_cli("copy", tilde, dst, "--where", "comm~ABC", "--where", "addr~10.")
    assert r.returncode == 0 and "1 entry copied" in r.stderr, r.stderr
    with Map.open(dst) as m:
        assert dict(m.items()) == {(3).to_bytes(4, "little"): TILDE_ENTRIES[3]}
    r = run_cli("migrate", tilde, "--max-entries", "8", "--as", TILDE_AS, "--where", "a~10.0.0.", "--where", "e~EIO")
    assert r.returncode == 0 and "1 entry moved" in r.stderr, r.stderr
    with Map.open(tilde) as new, Map.open(f"{tilde}_old") as old:
        assert dict(new.items()) == {(2).to_bytes(4, "little"): TILDE_ENTRIES[2]}
        assert len(dict(old.items())) == 3
    r = run_cli("migrate", f"{tilde}_old", "--max-entries", "8", "--as", "e=errno", "--where", "e=ENOENT")
    assert r.returncode == 0 and "1 entry moved" in r.stderr, r.stderr  # a VALUE in the shown form too


def test_copy_from_a_view_shown_through_formats(tilde, pindir):
    """The Python API: a source View with display formats is filtered by what it shows
    (``~``) and holds (``=``), and copied as what its fields hold."""
    import bpfmap

    with Map.open(tilde) as m, bpfmap.create("hash", TILDE_LAYOUT, max_entries=8) as dst:
        src = View(m, Layout.parse(TILDE_LAYOUT))
        src.show_as({"e": "errno", "a": "ip", "uid": "uid"})
        job = bpfmap.copy(src, dst, where=[f"uid~{ROOT}", "a~.168."])
        assert job.held == 1
        assert dict(dst.map.items()) == {(3).to_bytes(4, "little"): TILDE_ENTRIES[3]}


# -- events: a record's field shown through --as -----------------------------------------------

EVENT = packet_to_ringbuf(len(TILDE_ENTRIES[1]))


def test_events_where_tilde_matches_the_shown_text(pindir):
    layout = "e=s32,a=u32,addr=ipv4,comm=char[16],uid=u32"
    for i, (cond, keys) in enumerate(
        [("e~NOENT", [1]), ("a~10.0.0.", [1, 2]), (f"uid~{ROOT}", [1, 3]), ("comm~ABC", [3])]
    ):
        pin = create_pin(pindir, f"evs{i}", "ringbuf", "--max-entries", "4096")  # events takes what it reads
        with Map.open(pin) as m, Program.load("socket_filter", EVENT, {"ev": m}) as prog:
            for v in TILDE_ENTRIES.values():  # in key order
                assert prog.test_run(bytes(14) + v)[0] == 0
        # every record is in the ring already: -c stops at the matches, -t when they never come
        where = ["--where", cond, "-c", str(len(keys)), "-t", "5"]
        r = run_cli("events", pin, "--layout", layout, "--as", TILDE_AS, *where, "-o", "jsonl")
        assert r.returncode == 0, (cond, r.stderr)
        got = [json.loads(x)["value"] for x in r.stdout.splitlines()]
        assert [v["e"] for v in got] == [{1: "ENOENT", 2: "-EIO", 3: 0}[k] for k in keys], (cond, got)


def test_where_on_arrays_structs_and_floats_reads_the_text_dump_prints(pindir):
    """An array, a struct and a float field: ``=`` and ``~`` take the text `dump -o text`
    prints for the field (compact JSON for arrays and structs), not Python's str()."""
    pin = create_pin(pindir, "agg", "hash", "--layout", "u32:h=u16[2],s={a=u8,b=u8},f=f64")
    for key, value in (("1", 'h=[1,2],s={"a":3,"b":4},f=0.5'), ("2", 'h=[5,6],s={"a":7,"b":8},f=2.5')):
        r = run_cli("update", pin, key, value)
        assert r.returncode == 0, r.stderr
    text = run_cli("dump", pin, "-o", "text").stdout
    assert "h=[1,2]" in text and 's={"a":3,"b":4}' in text, text
    for cond, keys in (("h~1,2", [1]), ("h=[5,6]", [2]), ('s~"a":7', [2]), ("f~.5", [1, 2]), ("h~1, 2", [])):
        r = run_cli("dump", pin, "--where", cond, "-o", "jsonl")
        assert r.returncode in (0, 1), r.stderr
        assert sorted(json.loads(x)["key"] for x in r.stdout.splitlines()) == keys, (cond, r.stdout, r.stderr)


def test_where_takes_a_string_as_text_output_writes_it(pindir):
    """A string text output shows quoted (a byte that is not UTF-8, a space) matches --where
    in that same form, and == is =: what a user copies from a dump finds its entry."""
    pin = create_pin(pindir, "quoted", "hash", "--layout", "k=u32:n=u64,comm=char[8]")
    assert run_cli("update", pin, "1", 'n=1,comm="a\\xffb"').returncode == 0
    assert run_cli("update", pin, "2", "n=2,comm=a b").returncode == 0
    shown = run_cli("lookup", pin, "1").stdout.strip()
    assert shown == 'n=1,comm="a\\xffb"'
    for where in (shown.split(",", 1)[1], 'comm=="a\\xffb"', 'comm="a b"', "k==2"):
        r = run_cli("count", pin, "--where", where)
        assert r.returncode == 0 and r.stdout == "1\n", (where, r.stdout, r.stderr)


def test_what_peek_and_pop_write_as_json_push_takes_back(pindir):
    """`pop -o json` writes {"value": V}; push takes that document (and V alone), so a
    value read can be written back as it was printed."""
    pin = create_pin(pindir, "jobs", "queue", "--value", "16", "--max-entries", "4")
    layout = ["--layout", "a=u64,b=u64"]
    assert run_cli("push", pin, "a=1,b=2", *layout).returncode == 0
    printed = run_cli("pop", pin, "-o", "json", *layout).stdout
    assert json.loads(printed) == {"value": {"a": 1, "b": 2}}
    r = run_cli("push", pin, printed, *layout)
    assert r.returncode == 0, r.stderr
    assert run_cli("peek", pin, *layout).stdout == "a=1,b=2\n"
    r = run_cli("push", pin, '{"value": {"c": 1}}', *layout)  # what is wrong with V is said
    assert r.returncode == 2 and "unknown field(s) c" in r.stderr, r.stderr
