"""Changing maps safely on the real kernel: --where on every verb that reads or deletes,
the age filter against stamps a program writes, filtered deletes racing a writer,
copies between layouts, and migrations with a pin swap that libbpf then reuses."""

import json
import os
import signal
import subprocess
import time

import pytest
from helpers import BPFMAP, compile_bpf, create_pin, need_tool, run_cli
from helpers.programs import update_elem

from bpfmap import Map, Program, View
from bpfmap.entries.changes import Deletion
from bpfmap.filters import Where

pytestmark = pytest.mark.kernel

FLOWS = "pid=u32,cpu=u32:packets=u64,ts=u64,comm=char[8],stats={retx=u32,rtt=u32}"
SOURCES = os.path.join(os.path.dirname(__file__), "..", "bpf")


@pytest.fixture
def flows(pindir, bm):
    """A hash of 8 flows: pid 1..8 on cpu pid%2, packets 10*pid, comm c<pid>, rtt 100*pid."""
    pin = create_pin(pindir, "flows", "hash", "--layout", FLOWS)
    lines = "".join(
        json.dumps(
            {
                "key": {"pid": p, "cpu": p % 2},
                "value": {"packets": 10 * p, "ts": p, "comm": f"c{p}", "stats": {"retx": p % 3, "rtt": 100 * p}},
            }
        )
        + "\n"
        for p in range(1, 9)
    )
    r = run_cli("update", pin, "--from", "-", "--layout", FLOWS, input=lines)
    assert r.returncode == 0, r.stderr
    return pin


def pids(out: str) -> list[int]:
    return sorted(json.loads(line)["key"]["pid"] for line in out.splitlines())


def test_where_on_dump_count_and_watch(flows, bm):
    code, out, _ = bm("dump", flows, "--layout", FLOWS, "-o", "jsonl", "--where", "packets>=50")
    assert code == 0 and pids(out) == [5, 6, 7, 8]
    code, out, _ = bm("dump", flows, "--layout", FLOWS, "-o", "jsonl", "--where", "cpu=1", "--where", "stats.rtt<500")
    assert pids(out) == [1, 3]
    code, out, _ = bm("dump", flows, "--layout", FLOWS, "-o", "jsonl", "--where", "comm~7")
    assert pids(out) == [7]
    code, out, _ = bm(
        "dump", flows, "--layout", FLOWS, "-o", "jsonl", "--where", "key.pid!=1", "--where", "stats.retx=0"
    )
    assert pids(out) == [3, 6]
    code, out, _ = bm("dump", flows, "--layout", FLOWS, "-o", "csv", "--where", "packets<=20", "--sort", "packets")
    assert out.splitlines()[1:] == ["1,1,10,1,c1,1,100", "2,0,20,2,c2,2,200"]
    assert bm("count", flows)[:2] == (0, "8\n")
    assert bm("count", flows, "--layout", FLOWS, "--where", "stats.rtt>250")[:2] == (0, "6\n")
    code, out, _ = bm("count", flows, "--layout", FLOWS, "--where", "packets>1000")
    assert (code, out) == (1, "0\n")  # none: exit 1, as grep -c
    code, out, _ = bm("watch", flows, "--layout", FLOWS, "--count", "1", "-o", "jsonl", "--where", "pid>6")
    snap = json.loads(out)
    assert snap["entries"] == 2 and sorted(r["key"]["pid"] for r in snap["rows"]) == [7, 8]


def test_where_refusals_name_the_problem(flows, bm):
    code, _, err = bm("dump", flows, "--layout", FLOWS, "--where", "nope=1")
    assert code == 2 and "no field nope in the key or the value" in err
    code, _, err = bm("dump", flows, "--layout", "u32,u32:u64,u64,char[8],u64", "--where", "packets=1")
    assert code == 2
    code, _, err = bm("dump", flows, "--layout", FLOWS, "--where", "packets<lots")
    assert code == 2 and "compares numbers" in err
    code, _, err = bm("dump", flows, "--layout", FLOWS, "--older-than", "5m")
    assert code == 2 and "--time-field" in err
    code, _, err = bm("delete", flows, "--layout", FLOWS, "--dry-run")
    assert code == 2 and "--dry-run goes with --where" in err


def test_filtered_delete_dry_run_print_and_exit_codes(flows, bm):
    code, out, err = bm(
        "delete", flows, "--layout", FLOWS, "--where", "packets>60", "--dry-run", "--print", "-o", "jsonl"
    )
    assert code == 0 and pids(out) == [7, 8] and "2 entries match; nothing deleted" in err
    assert bm("count", flows)[1] == "8\n"
    code, out, err = bm("delete", flows, "--layout", FLOWS, "--where", "packets>60", "--print", "-o", "jsonl")
    assert code == 0 and pids(out) == [7, 8] and "2 entries deleted" in err
    assert json.loads(out.splitlines()[0])["value"]["comm"] in ("c7", "c8")
    assert bm("count", flows)[1] == "6\n"
    code, out, err = bm("delete", flows, "--layout", FLOWS, "--where", "packets>60")
    assert code == 1 and "0 entries deleted" in err


def test_deletes_recheck_each_candidate_against_a_writer(flows):
    """Between the read and the delete a writer changes one matching entry so it no longer
    matches, and deletes another: the first is kept, the second counted as gone, the rest
    deleted, and the counts add up."""
    from bpfmap.layout import Layout

    lay = Layout.parse(FLOWS)
    with Map.open(flows) as m, Map.open(flows) as writer:
        view = View(m, lay)
        wview = View(writer, lay)

        def race(keys):
            decoded = [view.key.decode(k) for k in keys]
            pid_of = {d["pid"]: k for d, k in zip(decoded, keys)}
            v = wview[{"pid": 6, "cpu": 0}]
            wview[{"pid": 6, "cpu": 0}] = {**dict(v._asdict()), "packets": 1}  # no longer > 40
            writer.delete(pid_of[7])

        d = Deletion(view, Where(["packets>40"], view.key.type, view.value.type), before_recheck=race)
        deleted = [k["pid"] for keys, _values in d.run() for k in keys]
        assert (d.matched, d.deleted, d.changed, d.gone) == (4, 2, 1, 1)
        assert sorted(deleted) == [5, 8]
        left = sorted(k.pid for k, _v in view.items())
        assert left == [1, 2, 3, 4, 6]


def test_a_racing_writer_never_loses_a_refreshed_entry(flows):
    """A program-like writer keeps refreshing some stale entries while delete --older-than
    runs: the counts always add up, and an entry refreshed before its re-check survives."""
    import threading

    from bpfmap.filters import Age
    from bpfmap.layout import Layout

    lay = Layout.parse(FLOWS)
    with Map.open(flows) as m, Map.open(flows) as writer:
        view, wview = View(m, lay), View(writer, lay)
        for i in range(200):  # stale entries (ts 0: older than 1 s on any machine up for 1 s)
            wview[{"pid": 100 + i, "cpu": 0}] = {"packets": 1, "ts": 0, "comm": "x", "stats": {"retx": 0, "rtt": 0}}
        refreshed: set = set()
        stop = threading.Event()

        def refresh():
            i = 0
            while not stop.is_set() and i < 200:
                now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                wview[{"pid": 100 + i, "cpu": 0}] = {
                    "packets": 2, "ts": now, "comm": "y", "stats": {"retx": 0, "rtt": 0}
                }  # fmt: skip
                refreshed.add(100 + i)
                i += 2

        d = Deletion(view, Where([], view.key.type, view.value.type, Age("1s", "ts")), chunk=8)
        t = threading.Thread(target=refresh)
        runs = d.run()
        first = next(runs)  # the read is done: now the writer races the deletes
        t.start()
        rest = list(runs)
        stop.set()
        t.join()
        assert d.matched == d.deleted + d.changed + d.gone
        survivors = {k.pid for k, _v in view.items() if k.pid >= 100}
        for keys, values in [first, *rest]:
            for k, v in zip(keys, values):
                assert k["pid"] < 100 or v["ts"] == 0, "a refreshed entry was deleted"
        assert survivors >= {p for p in refreshed if p not in {k["pid"] for keys, _ in [first, *rest] for k in keys}}


STAMP = f"""
    r1 = {{key}}
    *(u32 *)(r10 - 4) = r1
    call ktime_get_ns
    *(u64 *)(r10 - 16) = r0
    r1 = {{key}}
    *(u64 *)(r10 - 24) = r1
    {update_elem("stamps", 4, 24)}
    r0 = 0
    exit
"""


def test_older_than_against_stamps_a_program_writes(pindir, bm):
    """Entries stamped with bpf_ktime_get_ns (CLOCK_MONOTONIC) 1.5 s apart: --older-than
    1s picks the first two; with --clock realtime every stamp looks decades old."""
    pin = create_pin(pindir, "stamps", "hash", "--layout", "u32:packets=u64,ts=u64")
    with Map.open(pin) as m:
        progs = {k: Program.load("socket_filter", STAMP.format(key=k), {"stamps": m}) for k in (1, 2, 3, 4)}
        for k in (1, 2):
            progs[k].test_run(bytes(64))
        time.sleep(1.5)
        for k in (3, 4):
            progs[k].test_run(bytes(64))
        for p in progs.values():
            p.close()
    code, out, _ = bm("dump", pin, "-o", "jsonl", "--older-than", "1s", "--time-field", "ts")
    assert code == 0 and sorted(json.loads(x)["key"] for x in out.splitlines()) == [1, 2]
    code, out, _ = bm("count", pin, "--older-than", "1s", "--time-field", "ts", "--clock", "boottime")
    assert out == "2\n"  # no suspend since the stamps: boottime agrees
    code, out, _ = bm("count", pin, "--older-than", "1s", "--time-field", "ts", "--clock", "realtime")
    assert out == "4\n"
    code, out, err = bm("delete", pin, "--older-than", "1s", "--time-field", "ts", "--print", "-o", "jsonl")
    assert code == 0 and "2 entries deleted" in err
    assert sorted(json.loads(x)["key"] for x in out.splitlines()) == [1, 2]
    code, out, _ = bm("dump", pin, "-o", "jsonl")
    assert sorted(json.loads(x)["key"] for x in out.splitlines()) == [3, 4]


# -- copy ----------------------------------------------------------------------------------


def bpftool_dump(pin: str) -> list:
    r = subprocess.run([need_tool("bpftool"), "-j", "map", "dump", "pinned", pin], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def entries(bm, pin: str, *args: str) -> dict:
    code, out, err = bm("dump", pin, "-o", "jsonl", *args)
    assert code == 0, err
    return {
        json.dumps(e["key"], sort_keys=True): e.get("value", e.get("values")) for e in map(json.loads, out.splitlines())
    }


def test_copy_widens_fills_sets_and_drops(pindir, bm):
    src = create_pin(pindir, "src", "hash", "--layout", "u32:packets=u32,comm=char[8],hist=u16[2],old=u8")
    for k in (1, 2, 3):
        bm("update", src, str(k), json.dumps({"packets": k * 1000, "comm": f"p{k}", "hist": [k, k], "old": 1}))
    dst = create_pin(pindir, "dst", "hash", "--layout", "u64:packets=u64,bytes=u64,comm=char[16],hist=u32[4],v=u8")
    code, _, err = bm("copy", src, dst)
    assert code == 2 and "the target has no value.old (u8)" in err and "--drop value.old" in err
    assert bpftool_dump(dst) == []
    code, _, err = bm("copy", src, dst, "--drop", "old", "--set", "v=2")
    assert code == 0 and "3 entries copied" in err
    got = entries(bm, dst)
    assert got["1"] == {"packets": 1000, "bytes": 0, "comm": "p1", "hist": [1, 1, 0, 0], "v": 2}
    assert set(got) == {"1", "2", "3"}
    code, _, err = bm("copy", src, dst, "--drop", "value.nope", "--drop", "old", "--set", "v=2")
    assert code == 2 and "value.nope: no such field" in err


def test_a_narrowing_that_does_not_fit_leaves_the_target_byte_identical(pindir, bm):
    src = create_pin(pindir, "src", "hash", "--layout", "u32:packets=u64,comm=char[8],hist=u32[4]")
    for k, n in ((1, 10), (2, 70000), (3, 5)):
        bm("update", src, str(k), json.dumps({"packets": n, "comm": "abcdefg", "hist": [1, 2, 3, 4]}))
    dst = create_pin(pindir, "dst", "hash", "--layout", "u16:packets=u16,comm=char[4],hist=u32[2]")
    bm("update", dst, "9", json.dumps({"packets": 9, "comm": "keep", "hist": [9, 9]}))
    before = bpftool_dump(dst)
    code, _, err = bm("copy", src, dst, "--drop", "hist", "--truncate")
    assert (
        code == 2
        and "entry 2: field packets (u16): 70000 is out of range 0..65535" in err
        and "nothing was written" in err
    )
    assert bpftool_dump(dst) == before
    code, _, err = bm("copy", src, dst, "--drop", "hist", "--where", "packets<1000")
    assert code == 2 and "longer than 4" in err  # the strings: cut only with --truncate
    assert bpftool_dump(dst) == before
    code, _, err = bm("copy", src, dst, "--where", "packets<1000", "--truncate")
    assert code == 2 and "value.hist" in err  # arrays shrink only with --drop
    code, _, err = bm("copy", src, dst, "--drop", "hist", "--where", "packets<1000", "--truncate")
    assert code == 0 and "2 entries copied" in err
    assert entries(bm, dst) == {
        "1": {"packets": 10, "comm": "abcd", "hist": [1, 2]},
        "3": {"packets": 5, "comm": "abcd", "hist": [1, 2]},
        "9": {"packets": 9, "comm": "keep", "hist": [9, 9]},
    }
    signed = create_pin(pindir, "signed", "hash", "--layout", "u32:packets=s64,comm=char[8],hist=u32[4]")
    bm("update", signed, "1", json.dumps({"packets": -1, "comm": "x", "hist": [0, 0, 0, 0]}))
    back = create_pin(pindir, "back", "hash", "--layout", "u32:packets=u64,comm=char[8],hist=u32[4]")
    code, _, err = bm("copy", signed, back)
    assert code == 2 and "-1 is out of range" in err  # a sign change is checked too


def test_copy_between_per_cpu_and_plain(pindir, bm):
    pcpu = create_pin(pindir, "pcpu", "percpu_hash", "--layout", "u32:n=u64,ts=u64")
    with Map.open(pcpu) as m:
        view = View(m)
        ncpus = m.ncpus
        view[1] = [{"n": c + 1, "ts": 10 * (c + 1)} for c in range(ncpus)]
    plain = create_pin(pindir, "plain", "hash", "--layout", "u32:n=u64,ts=u64")
    code, _, err = bm("copy", pcpu, plain)
    assert code == 2 and "--percpu" in err
    total = sum(range(1, ncpus + 1))
    for how, want in (("sum", total), ("max", ncpus), ("cpu0", 1)):
        assert bm("copy", pcpu, plain, "--percpu", how)[0] == 0
        assert entries(bm, plain)["1"]["n"] == want
    back = create_pin(pindir, "back", "percpu_hash", "--layout", "u32:n=u64,ts=u64")
    code, _, err = bm("copy", plain, back)
    assert code == 2 and "--to-cpu" in err
    assert bm("copy", plain, back, "--to-cpu", "all")[0] == 0
    assert [v["n"] for v in entries(bm, back)["1"]] == [1] * ncpus
    assert bm("copy", plain, back, "--to-cpu", "0")[0] == 0
    assert [v["n"] for v in entries(bm, back)["1"]] == [1] + [0] * (ncpus - 1)
    wide = create_pin(pindir, "wide", "percpu_hash", "--layout", "u64:n=u64,ts=u64,extra=u32")
    assert bm("copy", pcpu, wide)[0] == 0  # per-CPU to per-CPU, converted CPU by CPU
    assert [v["n"] for v in entries(bm, wide)["1"]] == list(range(1, ncpus + 1))


def test_a_target_without_room_is_refused_before_writing(pindir, bm):
    src = create_pin(pindir, "src", "hash", "--layout", "u32:u64")
    with Map.open(src) as m:
        v = View(m)
        for k in range(10):
            v[k] = k
    small = create_pin(pindir, "small", "hash", "--layout", "u32:u64", "--max-entries", "4")
    code, _, err = bm("copy", src, small)
    assert code == 2 and "which has room for 4 (max_entries 4; 10 needed)" in err and "nothing was written" in err
    assert bm("count", small)[1] == "0\n"
    arr = create_pin(pindir, "arr", "array", "--layout", "u32:u64", "--max-entries", "6")
    code, _, err = bm("copy", src, arr)
    assert code == 2 and "4 entries have keys past the end of" in err


def test_copy_keeps_bytes_without_layouts_and_refuses_what_it_cannot_move(pindir, bm):
    a = create_pin(pindir, "a", "hash", "--key", "4", "--value", "12")
    b = create_pin(pindir, "b", "lru_hash", "--key", "4", "--value", "12")
    c = create_pin(pindir, "c", "hash", "--key", "4", "--value", "16")
    with Map.open(a) as m:
        m.update(b"\1\0\0\0", bytes(range(12)))
    assert bm("copy", a, b)[0] == 0
    assert bpftool_dump(b)[0]["value"] == bpftool_dump(a)[0]["value"]
    code, _, err = bm("copy", a, c)
    assert code == 2 and "12 and 16 bytes" in err
    q = create_pin(pindir, "q", "queue", "--value", "4")
    code, _, err = bm("copy", q, a)
    assert code == 2
    assert bm("copy", a, a)[0] == 2


# -- migrate -------------------------------------------------------------------------------


def info(pin: str) -> dict:
    r = run_cli("show", pin, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_migrate_grows_a_map_and_keeps_the_old_one(pindir, bm):
    pin = create_pin(pindir, "counts", "hash", "--layout", "u32:packets=u64", "--max-entries", "16")
    with Map.open(pin) as m:
        v = View(m)
        for k in range(16):
            v[k] = {"packets": k}
    old = info(pin)
    with Map.open(pin) as holder:  # a "program" holding the old map
        code, _, err = bm("migrate", pin, "--max-entries", "64")
        assert code == 0 and "16 entries moved" in err and "max_entries 16 -> 64" in err
        new = info(pin)
        assert new["max_entries"] == 64 and new["id"] != old["id"] and new["btf_id"] == old["btf_id"]
        assert info(pin + "_old")["id"] == old["id"] == holder.id
        assert entries(bm, pin) == entries(bm, pin + "_old")
    code, _, err = bm("migrate", pin, "--max-entries", "128")
    assert code == 3 and f"{pin}_old exists" in err and info(pin)["id"] == new["id"]
    code, _, err = bm("migrate", pin, "--type", "lru_hash", "--keep-old", pin + "_v2")
    assert code == 0 and info(pin)["type"] == "lru_hash" and info(pin + "_v2")["id"] == new["id"]
    code, _, err = bm("migrate", pin)
    assert code == 2 and "give the new shape" in err
    missing = f"{pindir}/no/such"
    code, _, err = bm("migrate", pin, "--max-entries", "256", "--keep-old", f"{missing}/old")
    assert code == 2  # a usage error, as create --pin into a missing directory
    assert (
        err == f"bpfmap: migrate {pin}: no directory {missing} for --keep-old; create it (mkdir -p {missing}) first\n"
    )
    assert info(pin)["max_entries"] == 64  # nothing changed


def test_migrate_to_a_new_layout_drops_stale_entries_on_the_way(pindir, bm):
    pin = create_pin(pindir, "flows", "hash", "--key", "4", "--value", "16")  # no BTF
    with Map.open(pin) as m:
        for k in range(6):
            m.update(k.to_bytes(4, "little"), (k * 10).to_bytes(8, "little") + k.to_bytes(8, "little"))
    code, _, err = bm(
        "migrate", pin, "--old-layout", "u32:packets=u32,ts=u64", "--layout", "u32:packets=u64,bytes=u64,ts=u64",
        "--where", "ts>=2",
    )  # fmt: skip
    assert code == 0, err
    assert entries(bm, pin) == {str(k): {"packets": 10 * k, "bytes": 0, "ts": k} for k in range(2, 6)}
    assert bpftool_dump(pin)[0]["formatted"]["value"].keys() == {"packets", "bytes", "ts"}  # its BTF


def test_migrate_from_an_object_then_libbpf_reuses_the_pin(pindir, bm, tmp_path):
    """v1 of a program had counts {packets} x 1024; v2 (tests/bpf/migrated.bpf.c) declares
    {packets, bytes} x 4096.  migrate --from-object makes v2's map with the old entries;
    bpftool (libbpf) loading v2 with the pin reuses it, and v2 counts on top of them."""
    bpftool = need_tool("bpftool")
    obj = compile_bpf(os.path.join(SOURCES, "migrated.bpf.c"), tmp_path / "migrated.o")
    pin = create_pin(pindir, "counts", "hash", "--layout", "u32:packets=u64", "--max-entries", "1024")
    bm("update", pin, "7", '{"packets": 100}')
    bm("update", pin, "8", '{"packets": 5}')
    prog_pin = os.path.join(pindir, "prog")
    r = subprocess.run(
        [bpftool, "prog", "load", obj, prog_pin, "map", "name", "counts", "pinned", pin], capture_output=True, text=True
    )
    assert r.returncode != 0  # v1's map is not what v2 declares: libbpf refuses it
    code, _, err = bm("migrate", pin, "--from-object", obj, "--map", "counts")
    assert code == 0, err
    subprocess.run([bpftool, "prog", "load", obj, prog_pin, "map", "name", "counts", "pinned", pin], check=True)
    prog_ids = json.loads(
        subprocess.run(
            [bpftool, "-j", "prog", "show", "pinned", prog_pin], capture_output=True, text=True, check=True
        ).stdout
    )["map_ids"]
    assert info(pin)["id"] in prog_ids
    with Program.open(prog_pin) as prog:
        for _ in range(3):
            prog.test_run(bytes(64))
    got = entries(bm, pin)
    assert got["7"]["packets"] == 103 and got["7"]["bytes"] == 3 * (64 - 14)  # skb->len: past the Ethernet header
    assert got["8"] == {"packets": 5, "bytes": 0}
    assert info(pin)["max_entries"] == 4096


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_migration_leaves_the_old_pin(pindir, sig):
    """A migration stopped while it copies (Ctrl-C, or SIGKILL) leaves PIN the old map and
    no other pin behind; Ctrl-C says what was done."""
    pin = create_pin(pindir, "big", "hash", "--key", "4", "--value", "8", "--max-entries", "400000")
    with Map.open(pin) as m:
        n = 400000
        keys = b"".join(k.to_bytes(4, "little") for k in range(n))
        m.update_batch(keys, bytes(8 * n), n)
    old_id = info(pin)["id"]
    cmd = [*BPFMAP, "migrate", pin, "--old-layout", "u32:a=u32,b=u32", "--layout", "u32:a=u64,b=u64,c=u64"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert p.poll() is None, p.communicate()
    p.send_signal(sig)
    _out, err = p.communicate(timeout=60)
    assert info(pin)["id"] == old_id
    assert sorted(os.listdir(pindir)) == ["big"]
    if sig == signal.SIGINT:
        assert p.returncode == 130 and "interrupted before the swap" in err and "is the old map still" in err


def test_an_interrupted_copy_writes_nothing(pindir):
    """Ctrl-C while a copy reads and converts: exit 130, the target untouched."""
    src = create_pin(pindir, "src", "hash", "--key", "4", "--value", "8", "--max-entries", "400000")
    dst = create_pin(pindir, "dst", "hash", "--layout", "u32:a=u64,b=u64", "--max-entries", "400000")
    with Map.open(src) as m:
        n = 400000
        m.update_batch(b"".join(k.to_bytes(4, "little") for k in range(n)), bytes(8 * n), n)
    p = subprocess.Popen(
        [*BPFMAP, "copy", src, dst, "--from-layout", "u32:a=u32,b=u32"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted while reading; nothing written" in err
    assert bpftool_dump(dst) == []
