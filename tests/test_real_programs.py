"""The maps real programs make, made by real programs: BPF C in tests/bpf/ compiled with
clang, loaded by libbpf (bpftool prog loadall ... pinmaps), run with BPF_PROG_TEST_RUN;
bpfmap's output is checked against what the programs wrote and against bpftool's
formatted dumps.

Global-variable maps (.data, .rodata, .bss, .data.NAME, .kconfig) and histograms kept in
the value live here; event records (short records, 128-bit addresses, --where) too."""

from __future__ import annotations

import json
import os
import platform
import struct
import subprocess
import uuid

import pytest
from conftest import IN_CI, need_tool, run_cli

from bpfmap import Map, Program, View

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = os.path.join(HERE, "bpf")


def compile_bpf(name: str, out_dir: str) -> str:
    clang = need_tool("clang")
    if not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        if IN_CI:
            pytest.fail("libbpf-dev is needed (.ci/run installs it)", pytrace=False)
        pytest.skip("needs libbpf-dev")
    out = os.path.join(out_dir, f"{name}.o")
    cmd = [clang, "-O2", "-g", "-target", "bpf", f"-I/usr/include/{platform.machine()}-linux-gnu"]
    subprocess.run([*cmd, "-c", os.path.join(SOURCES, f"{name}.bpf.c"), "-o", out], check=True)
    return out


class Loaded:
    """One object loaded by libbpf: its programs and maps pinned under a fresh directory."""

    def __init__(self, obj: str, root: str) -> None:
        self.obj, self.root = obj, root
        self.maps, self.progs = os.path.join(root, "maps"), os.path.join(root, "progs")

    def map(self, name: str) -> str:
        return os.path.join(self.maps, name)

    def run(self, prog: str, payload: bytes, times: int = 1) -> None:
        """Run a program on a packet: 14 bytes of Ethernet header (a socket filter sees
        what follows them), then ``payload``."""
        with Program.open(os.path.join(self.progs, prog)) as p:
            for _ in range(times):
                p.test_run(bytes(14) + payload)


def load(name: str, bpffs: str, tmp_path_factory) -> Loaded:
    bpftool = need_tool("bpftool")
    obj = compile_bpf(name, str(tmp_path_factory.mktemp(name)))
    root = os.path.join(bpffs, f"{name}{uuid.uuid4().hex[:8]}")
    os.mkdir(root)
    loaded = Loaded(obj, root)
    subprocess.run([bpftool, "prog", "loadall", obj, loaded.progs, "pinmaps", loaded.maps], check=True)
    return loaded


@pytest.fixture(scope="module")
def globals_prog(bpffs, tmp_path_factory):
    loaded = load("globals", bpffs, tmp_path_factory)
    yield loaded
    subprocess.run(["rm", "-rf", loaded.root])


@pytest.fixture(scope="module")
def hists_prog(bpffs, tmp_path_factory):
    loaded = load("hists", bpffs, tmp_path_factory)
    yield loaded
    subprocess.run(["rm", "-rf", loaded.root])


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


def kernel_version_code() -> int:
    import re

    major, minor, patch = (int(x) for x in re.findall(r"\d+", os.uname().release.split("-")[0])[:3])
    return (major << 16) + (minor << 8) + min(patch, 255)


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


def sample(pid: int, usecs: int, comm: str) -> bytes:
    return struct.pack("<II16s", pid, usecs, comm.encode())


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


def test_hist_live_shows_what_was_added_since_the_last_refresh(hists_prog, recorded):
    proc = subprocess.Popen(
        ["bpfmap", "hist", hists_prog.map("hists"), "--merge", "-i", "1", "-c", "2", "-o", "jsonl"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    hists_prog.run("record", sample(42, 70, "curl"), times=3)  # slot 6: [64, 128)
    second = json.loads(proc.stdout.readline())
    assert proc.wait(timeout=10) == 0
    assert first["refresh"] == 1 and first["total"] >= 13
    assert second["refresh"] == 2 and second["buckets"] == [{"low": 64, "high": 128, "count": 3}]


def test_hist_schemes_and_sum_slot():
    from bpfmap.hist import build_in_value

    entries = [({"pid": 1}, {"slots": [1, 0, 2, 0, 30]})]
    [bits] = build_in_value(entries, "slots", scheme="exp2zero", sum_slot=True)
    assert [(b.low, b.high, b.count) for b in bits.buckets] == [(0, 1, 1), (1, 2, 0), (2, 4, 2)]
    assert bits.sum == 30 and bits.group == {"pid": 1}
    [lin] = build_in_value(entries, "slots", scheme="linear", step=10, minimum=100)
    assert [(b.low, b.high) for b in lin.buckets][-1] == (140, 150)
    assert lin.percentile(100) == 150
