"""The maps real programs make, made by real programs: BPF C in tests/bpf/ compiled with
clang, loaded by libbpf (bpftool prog loadall ... pinmaps), run with BPF_PROG_TEST_RUN;
bpfmap's output is checked against what the programs wrote and against bpftool's
formatted dumps.

Global-variable maps (.data, .rodata, .bss, .data.NAME, .kconfig) and histograms kept in
the value live here; event records (short records, 128-bit addresses, --where) too."""

from __future__ import annotations

import json
import os
import struct
import subprocess

import pytest
from helpers import BPF_SOURCES, BPFMAP, compile_bpf, need_tool, run_cli
from helpers.events import communicate_while
from helpers.programs import Loaded, kernel_version_code, loaded_program, sample

from bpfmap import Map, Program, View

SOURCES = BPF_SOURCES


globals_prog = loaded_program("globals")
hists_prog = loaded_program("hists")


def bpftool_formatted(path: str) -> list:
    out = subprocess.run(
        [need_tool("bpftool"), "-j", "map", "dump", "pinned", path], capture_output=True, text=True, check=True
    )
    return [e["formatted"] for e in json.loads(out.stdout)]


def section_from_bpftool(path: str) -> dict:
    """bpftool writes a datasec value as {"SECTION": [{"var": value}, ...]}: one dict here."""
    [entry] = bpftool_formatted(path)
    [(_section, variables)] = entry["value"].items()
    merged: dict = {}
    for v in variables:
        merged.update(v)
    return merged


def dump_json(path: str, *args: str) -> list:
    r = run_cli("dump", path, "-o", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# -- global variables ---------------------------------------------------------------------

SECTIONS = ["globals_rodata", "globals_data", "_data_knobs", "globals_bss", "globals_kconfig"]


def test_global_variables_decode_by_name_as_the_program_wrote_them(globals_prog):
    payload = bytes(50)  # skb->len 50: by_len[2], hists[0][5]
    globals_prog.run("count", payload, times=3)
    values = {name: dump_json(globals_prog.map(name)) for name in SECTIONS}
    for name, entries in values.items():
        assert [e["key"] for e in entries] == [0], name
    rodata, data, knobs, bss, kconfig = (values[n][0]["value"] for n in SECTIONS)
    assert rodata == {
        "target_port": 8080,
        "verbose": True,
        "mode": "MODE_COUNT",
        "limits": {"min_len": 64, "max_len": 1500},
        "tag": "edge",
    }
    assert data == {"seen_total": 103, "delta": -8, "flags": 4, "big": 0x1122334455667788}
    assert knobs == {"knob_a": 10, "knob_b": 9}
    assert bss["packets"] == 3 and bss["by_len"] == [0, 0, 3, 0] and bss["last_tag"] == "edge"
    assert bss["hists"] == [[0, 0, 0, 0, 0, 3, 0, 0], [0] * 8]
    assert kconfig == {"LINUX_KERNEL_VERSION": kernel_version_code(), "CONFIG_BPF_SYSCALL": True}
    # and as bpftool's BTF formatter reads the same bytes
    for name in SECTIONS:
        assert values[name][0]["value"] == section_from_bpftool(globals_prog.map(name)), name


def test_global_variable_maps_in_text_need_no_key_or_layout(globals_prog):
    r = run_cli("lookup", globals_prog.map("_data_knobs"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "knob_a=" + str(View(Map.open(globals_prog.map("_data_knobs")))[0].knob_a) + ",knob_b=9\n"
    r = run_cli("lookup", globals_prog.map("globals_rodata"), "0")
    assert r.stdout.startswith("target_port=8080,verbose=true,mode=MODE_COUNT,limits={")
    r = run_cli("dump", globals_prog.map("globals_rodata"))
    assert r.stdout.startswith("0\ttarget_port=8080,")
    # a map with more than one entry still wants its key
    r = run_cli("lookup", globals_prog.map("globals_data"), "1")
    assert r.returncode == 1


def test_show_prints_the_section_as_c_variables(globals_prog):
    r = run_cli("show", globals_prog.map("globals_rodata"))
    assert r.returncode == 0, r.stderr
    for line in (
        'SEC(".rodata") const volatile __u32 target_port;',
        'SEC(".rodata") const volatile _Bool verbose;',
        'SEC(".rodata") const volatile enum mode mode;',
        'SEC(".rodata") const volatile struct limits limits;',
        'SEC(".rodata") const volatile char tag[8];',
        "struct limits {",
        "MODE_TRACE = 2,",
    ):
        assert line in r.stdout, line
    assert "frozen" in r.stdout.splitlines()[0]
    shown = json.loads(run_cli("show", globals_prog.map("globals_bss"), "-o", "json").stdout)
    assert 'SEC(".bss") __u64 hists[2][8];' in shown["value_type"]


def test_update_var_writes_one_variable_the_program_then_sees(globals_prog):
    bss = globals_prog.map("globals_bss")
    before = dump_json(bss)[0]["value"]
    r = run_cli("update", bss, "--var", "packets=1000", "--var", "hists[1][7]=5")
    assert r.returncode == 0, r.stderr
    globals_prog.run("count", bytes(51))  # odd length: hists[1][5]
    after = dump_json(bss)[0]["value"]
    assert after["packets"] == 1001
    assert after["hists"][1] == [0, 0, 0, 0, 0, before["hists"][1][5] + 1, 0, 5]
    assert after["by_len"][3] == before["by_len"][3] + 1  # the program's own write kept
    r = run_cli("update", globals_prog.map("globals_data"), "--var", "delta=-100", "--var", "big=0x10")
    assert r.returncode == 0, r.stderr
    data = dump_json(globals_prog.map("globals_data"))[0]["value"]
    assert data["delta"] == -100 and data["big"] == 16 and data["seen_total"] >= 103


@pytest.mark.parametrize(
    ("name", "var", "code", "message"),
    [
        ("globals_rodata", "target_port=1", 3, "frozen"),
        ("globals_kconfig", "LINUX_KERNEL_VERSION=1", 3, "frozen"),
        ("globals_data", "nope=1", 2, "no field nope; there are seen_total, delta, flags, big"),
        ("globals_data", "delta=abc", 2, "'abc' is not a number"),
        ("globals_data", "flags=256", 2, "out of range"),
        ("globals_bss", "hists[2][0]=1", 2, "index 2 past the end"),
        ("globals_bss", "packets", 2, "write NAME=VALUE"),
    ],
)
def test_update_var_refuses_with_one_line(globals_prog, name, var, code, message):
    path = globals_prog.map(name)
    before = subprocess.run(["bpftool", "map", "dump", "pinned", path], capture_output=True, text=True).stdout
    r = run_cli("update", path, "--var", var)
    assert r.returncode == code and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    after = subprocess.run(["bpftool", "map", "dump", "pinned", path], capture_output=True, text=True).stdout
    assert before == after


def test_watch_one_variable(globals_prog):
    r = run_cli("watch", globals_prog.map("globals_bss"), "--var", "packets", "-i", "0.05", "-c", "2", "-o", "jsonl")
    assert r.returncode == 0, r.stderr
    snaps = [json.loads(x) for x in r.stdout.splitlines()]
    packets = dump_json(globals_prog.map("globals_bss"))[0]["value"]["packets"]
    assert [s["rows"][0]["value"] for s in snaps] == [packets, packets]
    assert snaps[1]["rows"][0]["delta"] == 0


def test_create_from_object_makes_the_global_maps_as_libbpf_does(globals_prog, pindir):
    """Ours next to a fresh libbpf load of the same object: the same maps to bpftool
    (type, name, flags, sizes, frozen) and the same contents (the section's bytes,
    .kconfig filled from the running kernel)."""
    bpftool = need_tool("bpftool")
    ours = os.path.join(pindir, "ours")
    r = run_cli("create", "--from-object", globals_prog.obj, "--pin-dir", ours, "--mkdir", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert [m["name"] for m in json.loads(r.stdout)] == [
        "globals.rodata",
        "globals.data",
        ".data.knobs",
        "globals.bss",
        "globals.kconfig",
    ]
    assert sorted(os.listdir(ours)) == sorted(SECTIONS)
    fresh = os.path.join(pindir, "fresh")
    os.mkdir(fresh)
    subprocess.run([bpftool, "prog", "loadall", globals_prog.obj, f"{fresh}/progs", "pinmaps", fresh], check=True)
    for name in SECTIONS:

        def show(path):
            out = subprocess.run([bpftool, "-j", "map", "show", "pinned", path], capture_output=True, text=True)
            info = json.loads(out.stdout)
            return {k: info.get(k) for k in ("type", "name", "flags", "bytes_key", "bytes_value", "max_entries")} | {
                "frozen": info.get("frozen", 0)
            }

        assert show(os.path.join(ours, name)) == show(os.path.join(fresh, name)), name
        assert bpftool_formatted(os.path.join(ours, name)) == bpftool_formatted(os.path.join(fresh, name)), name
    # show --object lists them after the declared maps, with their sections
    objs = json.loads(run_cli("show", "--object", globals_prog.obj, "-o", "json").stdout)
    assert [(m["name"], m["section"], m["flags"]) for m in objs] == [
        ("globals.rodata", ".rodata", ["rdonly_prog", "mmapable"]),
        ("globals.data", ".data", ["mmapable"]),
        (".data.knobs", ".data.knobs", ["mmapable"]),
        ("globals.bss", ".bss", ["mmapable"]),
        ("globals.kconfig", ".kconfig", ["rdonly_prog", "mmapable"]),
    ]


def test_libbpf_runs_its_program_on_our_global_maps(globals_prog, pindir):
    """A loader that reuses pins: bpftool (libbpf) loads the program with our .bss and
    .data maps in place of its own, and the program counts into ours."""
    bpftool = need_tool("bpftool")
    r = run_cli("create", "--from-object", globals_prog.obj, "--pin-dir", pindir, "-q")
    assert r.returncode == 0, r.stderr
    prog = os.path.join(pindir, "prog")
    subprocess.run(
        [
            bpftool,
            "prog",
            "load",
            globals_prog.obj,
            prog,
            "map",
            "name",
            "globals.bss",
            "pinned",
            os.path.join(pindir, "globals_bss"),
            "map",
            "name",
            "globals.data",
            "pinned",
            os.path.join(pindir, "globals_data"),
        ],
        check=True,
    )
    with Program.open(prog) as p:
        for _ in range(4):
            p.test_run(bytes(14 + 40))
    assert dump_json(os.path.join(pindir, "globals_bss"))[0]["value"]["packets"] == 4
    assert dump_json(os.path.join(pindir, "globals_data"))[0]["value"]["seen_total"] == 104


# -- histograms in the value -----------------------------------------------------------------


def floor_log2(v: int) -> int:
    return max(v.bit_length() - 1, 0)


@pytest.fixture(scope="module")
def recorded(hists_prog):
    """Latencies per pid, as the program counted them."""
    seen = {42: ("curl", [1, 3, 5, 9, 17, 33, 100, 1000, 1000, 1000]), 7: ("nginx", [0, 2, 200000])}
    for pid, (comm, lats) in seen.items():
        for us in lats:
            hists_prog.run("record", sample(pid, us, comm))
    return seen


def expected_buckets(lats: list[int]) -> list[dict]:
    counts: dict[int, int] = {}
    for us in lats:
        s = min(floor_log2(us), 19)
        counts[s] = counts.get(s, 0) + 1
    lo, hi = min(counts), max(counts)
    return [
        {"low": 0 if s == 0 else 1 << s, "high": 2 if s == 0 else 1 << (s + 1), "count": counts.get(s, 0)}
        for s in range(lo, hi + 1)
    ]


def test_hist_draws_one_histogram_per_entry_headed_by_key_and_comm(hists_prog, recorded):
    r = run_cli("hist", hists_prog.map("hists"), "-o", "json")
    assert r.returncode == 0, r.stderr
    got = {h["group"]["key"]: h for h in json.loads(r.stdout)}
    assert set(got) == set(recorded)
    for pid, (comm, lats) in recorded.items():
        assert got[pid]["group"] == {"key": pid, "comm": comm}
        assert got[pid]["buckets"] == expected_buckets(lats)
        assert got[pid]["total"] == len(lats)
        assert set(got[pid]["percentiles"]) == {"p50", "p90", "p99"}
    text = run_cli("hist", hists_prog.map("hists"), "--unit", "usecs", "--percentiles", "50,99").stdout
    assert "key = 42, comm = curl" in text and "key = 7, comm = nginx" in text
    assert "[512, 1K)" in text and "[128K, 256K)" in text
    assert "usecs" in text.splitlines()[1]
    # p50 of curl's ten samples: the 5th lies in [16, 32), which holds 1 sample after 4
    curl = json.loads(run_cli("hist", hists_prog.map("hists"), "-o", "json", "--percentiles", "50").stdout)
    p50 = next(h for h in curl if h["group"]["key"] == 42)["percentiles"]["p50"]
    assert p50 == 32.0 and "p50 = 32 usecs" in text


def test_hist_merge_and_label_and_explicit_slots(hists_prog, recorded):
    merged = json.loads(run_cli("hist", hists_prog.map("hists"), "--merge", "-o", "json").stdout)
    assert len(merged) == 1 and merged[0]["group"] is None
    assert merged[0]["buckets"] == expected_buckets([us for _c, lats in recorded.values() for us in lats])
    by_comm = json.loads(
        run_cli("hist", hists_prog.map("hists"), "--slots", "slots", "--label", "comm", "-o", "json").stdout
    )
    assert sorted(h["group"]["comm"] for h in by_comm) == ["curl", "nginx"]
    r = run_cli("hist", hists_prog.map("hists"), "--slots", "comm")
    assert r.returncode == 2 and "not an array of counts" in r.stderr
    r = run_cli("hist", hists_prog.map("hists"), "--slots", "slots", "--slot", "x")
    assert r.returncode == 2 and "exclude each other" in r.stderr


def test_hist_of_a_global_array_of_arrays(globals_prog):
    r = run_cli("hist", globals_prog.map("globals_bss"), "--var", "hists", "-o", "json")
    assert r.returncode == 0, r.stderr
    hists = json.loads(r.stdout)
    bss = dump_json(globals_prog.map("globals_bss"))[0]["value"]["hists"]
    assert [h["group"] for h in hists] == [{"index": 0}, {"index": 1}]
    for h, row in zip(hists, bss):
        assert h["total"] == sum(row)
    one = json.loads(run_cli("hist", globals_prog.map("globals_bss"), "--var", "hists[0]", "-o", "json").stdout)
    assert one[0]["group"] is None and one[0]["total"] == sum(bss[0])


@pytest.mark.parametrize("command", [["hist", "--merge", "-i", "1"], ["watch", "--hist", "-i", "1"]])
def test_live_histograms_show_what_was_added_since_the_last_refresh(hists_prog, recorded, command):
    verb, *opts = command
    proc = subprocess.Popen(
        [*BPFMAP, verb, hists_prog.map("hists"), *opts, "-c", "2", "-o", "jsonl"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = [json.loads(proc.stdout.readline())]
    if verb == "watch":  # one line per pid
        first.append(json.loads(proc.stdout.readline()))
    hists_prog.run("record", sample(42, 70, "curl"), times=3)  # slot 6: [64, 128)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=10) == 0
    assert {h["refresh"] for h in first} == {1} and sum(h["total"] for h in first) >= 13
    assert {h["refresh"] for h in rest} == {2}
    changed = [h for h in rest if h["total"]]
    assert [h["buckets"] for h in changed] == [[{"low": 64, "high": 128, "count": 3}]]
    if verb == "watch":
        assert changed[0]["group"] == {"key": 42, "comm": "curl"}


# -- event records as programs send them -------------------------------------------------------

HEADER = os.path.join(SOURCES, "events.h")  # includes "records.h" from beside it


records_prog = loaded_program("records")


def exec_event(pid: int, comm: str, args: str) -> bytes:
    a = args.encode()
    return struct.pack("<II16s64s", pid, len(a), comm.encode(), a)


def events_jsonl(path: str, *args: str) -> tuple[list[dict], str]:
    r = run_cli("events", path, "-o", "jsonl", "--timeout", "0.5", *args)
    assert r.returncode in (0, 1), r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()], r.stderr


def test_short_records_decode_the_fields_that_fit(records_prog):
    sent = [(1, "sh", "ls -l"), (2, "bash", "x" * 64), (3, "cat", "")]
    for pid, comm, args in sent:
        records_prog.run("exec", exec_event(pid, comm, args))
    got, err = events_jsonl(records_prog.map("execs"), "--c-header", HEADER, "--value-type", "struct exec_event")
    assert [g["value"] for g in got] == [
        {"pid": pid, "args_len": len(args), "comm": comm, "args": args} for pid, comm, args in sent
    ]
    # said once, not per record, and never silently
    assert err.count("shorter than struct exec_event (88 bytes)") == 1, err


def test_short_records_cut_a_trailing_array_of_numbers(records_prog):
    records_prog.run("exec", exec_event(9, "dd", "\x01\x02\x03"))
    layout = "pid=u32,args_len=u32,comm=char[16],args=u8[64]"
    [got], err = events_jsonl(records_prog.map("execs"), "--layout", layout)
    assert got["value"] == {"pid": 9, "args_len": 3, "comm": "dd", "args": [1, 2, 3]}
    assert "shorter" in err


def test_long_records_show_the_excess_as_hex(records_prog):
    records_prog.run("exec", exec_event(4, "vi", "ab"))
    [got], err = events_jsonl(records_prog.map("execs"), "--layout", "pid=u32,args_len=u32")
    assert got == {"value": {"pid": 4, "args_len": 2}, "extra": (b"vi".ljust(16, b"\0") + b"ab").hex(" ")}
    assert "longer than" in err
    records_prog.run("exec", exec_event(5, "vi", "ab"))
    r = run_cli("events", records_prog.map("execs"), "--layout", "pid=u32,args_len=u32", "-t", "0.5")
    assert r.stdout == "pid=5,args_len=2 +[" + (b"vi".ljust(16, b"\0") + b"ab").hex(" ") + "]\n"


def test_events_where_filters_before_formatting(records_prog):
    for pid, comm, args in [(10, "bash", "ls"), (11, "curl", "-s x"), (12, "bash", "make all"), (13, "sh", "lsof")]:
        records_prog.run("exec", exec_event(pid, comm, args))
    path = records_prog.map("execs")
    base = ("--c-header", HEADER, "--value-type", "struct exec_event")
    got, _ = events_jsonl(path, *base, "--where", "comm=bash", "--where", "args~make")
    assert [g["value"]["pid"] for g in got] == [12]
    for pid, comm, args in [(10, "bash", "ls"), (11, "curl", "-s x"), (12, "bash", "make all")]:
        records_prog.run("exec", exec_event(pid, comm, args))
    got, _ = events_jsonl(path, *base, "--where", "comm!=bash", "--where", "pid=0xb")
    assert [g["value"]["comm"] for g in got] == ["curl"]
    r = run_cli("events", path, *base, "--where", "nope=1", "-t", "0")
    assert r.returncode == 2 and "--where nope=1" in r.stderr and "no field nope" in r.stderr
    r = run_cli("events", path, "--where", "pid=1", "-t", "0")
    assert r.returncode == 2 and "need a layout" in r.stderr


def test_local_includes_and_include_dirs(records_prog, tmp_path):
    (tmp_path / "tool.h").write_text('#include <linux/types.h>\n#include "records.h"\nstruct top { __u64 n; };\n')
    args = ("--c-header", str(tmp_path / "tool.h"), "--value-type", "struct exec_event", "-t", "0")
    r = run_cli("events", records_prog.map("execs"), *args)
    assert r.returncode == 2 and "records.h" in r.stderr and "(add their directory to --include-dir)" in r.stderr, (
        r.stderr
    )
    records_prog.run("exec", exec_event(21, "top", "-b"))
    got, _ = events_jsonl(records_prog.map("execs"), *args[:-2], "-I", SOURCES)
    assert got[0]["value"] == {"pid": 21, "args_len": 2, "comm": "top", "args": "-b"}
    # and for maps: dump through a header that includes the record header
    r = run_cli(
        "dump",
        records_prog.map("scratch"),
        "--c-header",
        HEADER,
        "--key-type",
        "__u32",
        "--value-type",
        "struct exec_event",
        "-o",
        "json",
    )
    assert r.returncode == 0, r.stderr
    assert 21 in {v["pid"] for v in json.loads(r.stdout)[0]["values"]}  # the last record on its CPU


def conn_event(family: int, saddr: str, daddr: str, dport: int, pid: int) -> bytes:
    import socket

    af = socket.AF_INET if family == 2 else socket.AF_INET6
    s, d = (socket.inet_pton(af, a).ljust(16, b"\0") for a in (saddr, daddr))
    return s + d + struct.pack("<HHI", family, dport, pid) + bytes(8)


def run_tc(loaded: Loaded, payload: bytes) -> None:
    with Program.open(os.path.join(loaded.progs, "conn")) as p:  # tc: the packet starts at its Ethernet header
        p.test_run(payload)


def test_int128_addresses_by_family_over_btf_and_bpftool(records_prog):
    run_tc(records_prog, conn_event(2, "10.0.0.1", "192.168.1.20", 443, 100))
    run_tc(records_prog, conn_event(10, "2001:db8::1", "fe80::2", 80, 200))
    path = records_prog.map("last_conn")
    plain = {e["key"]: e["value"] for e in dump_json(path)}
    theirs = {e["key"]: e["value"] for e in bpftool_formatted(path)}
    for pid in (100, 200):  # bpftool shows __int128 as hex; the same number
        assert plain[pid]["saddr"] == int(theirs[pid]["saddr"], 16)
        assert plain[pid]["daddr"] == int(theirs[pid]["daddr"], 16)
    shown = {e["key"]: e["value"] for e in dump_json(path, "--as", "saddr=ip,daddr=ip")}
    assert shown[100] == {"saddr": "10.0.0.1", "daddr": "192.168.1.20", "family": 2, "dport": 443, "pid": 100}
    assert shown[200] == {"saddr": "2001:db8::1", "daddr": "fe80::2", "family": 10, "dport": 80, "pid": 200}
    r = run_cli("show", path)
    assert "unsigned __int128 saddr;" in r.stdout
    # the formats parse back: update through --as, read the bytes with bpftool
    r = run_cli(
        "update", path, "300", "saddr=10.9.8.7,daddr=10.0.0.2,family=2,dport=22,pid=300", "--as", "saddr=ip,daddr=ip"
    )
    assert r.returncode == 0, r.stderr
    assert {e["key"]: e["value"] for e in bpftool_formatted(path)}[300]["saddr"] == hex(
        int.from_bytes(bytes([10, 9, 8, 7]), "little")
    )


def test_perf_records_with_int128_from_the_object_by_typedef(records_prog):
    path = records_prog.map("conns")

    def write() -> None:
        run_tc(records_prog, conn_event(2, "10.0.0.1", "192.168.1.20", 443, 100))
        run_tc(records_prog, conn_event(10, "2001:db8::1", "fe80::2", 80, 200))

    for where, want in (("family=10", "2001:db8::1"), ("family=2", "10.0.0.1")):
        proc = subprocess.Popen(
            [
                *BPFMAP,
                "events",
                path,
                "--object",
                records_prog.obj,
                "--value-type",
                "conn_event_t",
                "--as",
                "saddr=ip,daddr=ip",
                "--where",
                where,
                "-c",
                "1",
                "-o",
                "jsonl",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = communicate_while(proc, write, timeout=20)
        assert proc.returncode == 0, err
        rec = json.loads(out)
        assert rec["value"]["saddr"] == want and "cpu" in rec and "extra" not in rec


def test_object_types_by_typedef_struct_name_and_absent(records_prog):
    path = records_prog.map("execs")
    for name in ("conn_event_t", "struct conn_event", "struct conn_event_t", "conn_event", "struct exec_event"):
        r = run_cli("events", path, "--object", records_prog.obj, "--value-type", name, "-t", "0")
        assert r.returncode == 1, (name, r.stderr)  # decoded fine; no record came
    r = run_cli("events", path, "--object", records_prog.obj, "--value-type", "struct local_only", "-t", "0")
    assert r.returncode == 2 and "not those only local variables use" in r.stderr
    r = run_cli("events", path, "--object", records_prog.obj, "--value-type", "struct exec_evnt", "-t", "0")
    assert "did you mean exec_event" in r.stderr


def test_u128_in_the_layout_language_round_trips_through_btf(pindir):
    path = os.path.join(pindir, "big")
    assert run_cli("create", "hash", "--layout", "u128:s128", "--pin", path, "-q").returncode == 0
    big = (1 << 128) - 1
    assert run_cli("update", path, str(big), "-170141183460469231731687303715884105728").returncode == 0
    assert run_cli("lookup", path, str(big)).stdout == "-170141183460469231731687303715884105728\n"
    [entry] = bpftool_formatted(path)
    assert int(entry["key"], 16) == big
    r = run_cli("update", path, str(big + 1), "0")
    assert r.returncode == 2 and "out of range" in r.stderr


def test_as_formats_errno_syscall_ksym_mac_hex(pindir):
    from bpfmap.layout.formats import syscall_names

    path = os.path.join(pindir, "f")
    layout = "id=u32:ret=s32,nr=u32,addr=u64,hw=hex[6],raw=u32"
    assert run_cli("create", "hash", "--layout", layout, "--pin", path, "-q").returncode == 0
    addr, name = _unique_kernel_symbol()
    nr = next(n for n, s in syscall_names().items() if s == "openat")
    r = run_cli(
        "update", path, "1", f"ret=-2,nr={nr},addr={addr + 0x10},hw=02 00 5e 10 20 30,raw=7", "--layout", layout
    )
    assert r.returncode == 0, r.stderr
    fmt = ("--as", "ret=errno,nr=syscall,addr=ksym,hw=mac", "--as", "raw=hex")
    got = dump_json(path, *fmt)[0]["value"]
    assert got == {
        "ret": "-ENOENT",
        "nr": "openat",
        "addr": f"{name}+0x10",
        "hw": "02:00:5e:10:20:30",
        "raw": "07 00 00 00",
    }
    # names parse back
    r = run_cli("update", path, "2", f"ret=-EPERM,nr=read,addr={name},hw=aa:bb:cc:dd:ee:ff,raw=01 00 00 00", *fmt)
    assert r.returncode == 0, r.stderr
    assert run_cli("lookup", path, "2", "--layout", layout).stdout == (
        f"ret=-1,nr=0,addr={addr},hw=aa bb cc dd ee ff,raw=1\n"
    )
    for bad, msg in (
        ("nope=ip", "no field nope in the key or the value"),
        ("ret=ipv6", "is 4 bytes"),
        ("ret=base64", "unknown format"),
        ("hw=errno", "not an integer"),
    ):
        r = run_cli("dump", path, "--as", bad)
        assert r.returncode == 2 and msg in r.stderr, (bad, r.stderr)


def _unique_kernel_symbol() -> tuple[int, str]:
    with open("/proc/kallsyms") as f:
        rows = [(int(a, 16), n) for a, _k, n, *_ in (line.split() for line in f)]
    rows.sort()
    for (a, n), (b, _m) in zip(rows, rows[1:]):
        if a and b > a + 0x10 and [x for x, _ in rows].count(a) == 1 and n.isidentifier():
            return a, n
    pytest.skip("no kernel symbols readable")


def test_show_says_which_operations_a_type_allows(pindir, globals_prog):
    def ops(path):
        return json.loads(run_cli("show", path, "-o", "json").stdout)["operations"]

    made = {}
    for t, extra in (
        ("sockmap", ()),
        ("ringbuf", ("--max-entries", "4096")),
        ("queue", ("--value", "4")),
        ("hash", ("--key", "4", "--value", "4")),
    ):
        made[t] = os.path.join(pindir, t)
        assert run_cli("create", t, *extra, "--pin", made[t], "-q").returncode == 0
    assert ops(made["sockmap"]) == ["lookup", "dump", "getnext", "update", "delete", "clear"]
    assert ops(made["ringbuf"]) == ["events"]
    assert ops(made["queue"]) == ["peek", "pop", "push"]
    assert ops(made["hash"]) == ["lookup", "dump", "watch", "getnext", "update", "delete", "clear"]
    assert "update" not in ops(globals_prog.map("globals_rodata"))  # frozen
    assert "operations: lookup, dump" in run_cli("show", made["hash"]).stdout


def test_update_var_on_struct_values_of_any_map(pindir):
    """--var is also a field update for struct values (read, change, write back)."""
    path = os.path.join(pindir, "sv")
    layout = "u32:packets=u64,bytes=u64,comm=char[8]"
    assert run_cli("create", "hash", "--layout", layout, "--pin", path, "-q").returncode == 0
    assert run_cli("update", path, "1", "packets=1,bytes=2,comm=a").returncode == 0
    r = run_cli("update", path, "1", "--var", "packets=5", "--var", "comm=bb")
    assert r.returncode == 0, r.stderr
    assert run_cli("lookup", path, "1").stdout == "packets=5,bytes=2,comm=bb\n"
    r = run_cli("update", path, "2", "--var", "packets=5")  # no such entry: nothing created
    assert r.returncode == 1 and run_cli("lookup", path, "2").returncode == 1
    r = run_cli("update", path, "1", "5", "--var", "packets=1")
    assert r.returncode == 2 and "--var takes no VALUE" in r.stderr


def libbpf_loader(tmp_path_factory) -> str:
    """tests/bpf/loader.c built against the system's libbpf (bpftool bundles its own)."""
    clang = need_tool("clang")
    out = str(tmp_path_factory.mktemp("loader") / "loader")
    subprocess.run([clang, "-O2", os.path.join(SOURCES, "loader.c"), "-o", out, "-lbpf"], check=True)
    return out


def test_global_maps_are_mmapable_by_libbpfs_rule(pindir, tmp_path_factory):
    """libbpf (1.1.2, map_is_mmapable) makes a section of static variables alone
    (runqlat's .bss) without BPF_F_MMAPABLE and one with a global variable with it:
    show --object and create --from-object say and do the same, and a libbpf loader
    reuses our pins (it refuses pins that are not reuse-compatible)."""
    loader = libbpf_loader(tmp_path_factory)
    obj = compile_bpf(os.path.join(SOURCES, "statics.bpf.c"), tmp_path_factory.mktemp("statics") / "statics.o")

    def flags(*args: str) -> dict:
        r = subprocess.run([loader, obj, *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return {name: int(f) for name, f in (line.split() for line in r.stdout.splitlines())}

    libbpf = flags()
    assert libbpf == {"statics.bss": 0, "statics.data": 1 << 10}, libbpf
    shown = {m["section"]: m["flags"] for m in json.loads(run_cli("show", "--object", obj, "-o", "json").stdout)}
    assert shown == {".bss": [], ".data": ["mmapable"]}
    r = run_cli("create", "--from-object", obj, "--pin-dir", pindir, "-q")
    assert r.returncode == 0, r.stderr
    assert flags(pindir) == libbpf  # reused, not made anew: libbpf checked they are compatible
    for name in ("statics_bss", "statics_data"):
        with Map.open(os.path.join(pindir, name)) as m:
            assert m.info().flags == libbpf[name.replace("_", ".")]


def test_local_storage_maps_from_an_object(pindir, tmp_path_factory):
    """task, sk and cgrp storage declared in .maps: create --from-object makes them with
    their BTF (it stopped at the first before), a libbpf loader reuses the pins, and the
    value type decodes what is stored for a task."""
    loader = libbpf_loader(tmp_path_factory)
    obj = compile_bpf(os.path.join(SOURCES, "storage.bpf.c"), tmp_path_factory.mktemp("storage") / "storage.o")
    r = run_cli("create", "--from-object", obj, "--pin-dir", pindir, "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(pindir)) == ["after", "cstore", "sstore", "tstore"]
    r = subprocess.run([loader, obj, pindir], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr  # reused: libbpf found them compatible
    tstore = os.path.join(pindir, "tstore")
    assert run_cli("update", tstore, f"pid:{os.getpid()}", "seen=1,pid=2").returncode == 0
    rows = [json.loads(x) for x in run_cli("dump", tstore, "-o", "jsonl").stdout.splitlines()]
    assert [(r["key"]["pid"], r["value"]) for r in rows] == [(os.getpid(), {"seen": 1, "pid": 2})]
