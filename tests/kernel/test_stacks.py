"""Stack maps symbolized, and `bpfmap stacks`: a real program (tests/bpf/stacks.bpf.c, a
raw tracepoint run with BPF_PROG_TEST_RUN) records kernel and user stacks with
bpf_get_stackid and counts them in a hash keyed as libbpf-tools' profile keys them; the
output is checked against an independent symbolization of the raw addresses (read with
bpftool, looked up in /proc/kallsyms here) and against what the program recorded."""

from __future__ import annotations

import bisect
import json
import os
import re
import subprocess

import pytest
from helpers import BPF_SOURCES, need_tool, run_cli
from helpers.programs import loaded_program

from bpfmap import Map, Program

pytestmark = pytest.mark.kernel

stacks_prog = loaded_program("stacks")
FOLDED = re.compile(r"^[^ ;\n]+(;[^ ;\n]+)* \d+$")  # what flamegraph.pl reads: frames;...;frames COUNT


@pytest.fixture
def prof(stacks_prog):
    """The loaded program with empty maps."""
    for name in ("counts", "stacks", "bstacks"):
        assert run_cli("clear", stacks_prog.map(name), "-q").returncode == 0
    return stacks_prog


def run(prof, times: int) -> None:
    with Program.open(os.path.join(prof.progs, "profile")) as p:
        for _ in range(times):
            p.test_run(ctx=bytes(8))


def kallsyms() -> tuple[list[int], list[str]]:
    rows = []
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, kind, name = line.split()[:3]
            if kind in "tTwW" and int(addr, 16):
                rows.append((int(addr, 16), name))
    rows.sort()
    return [a for a, _ in rows], [n for _, n in rows]


def bpftool_stacks(path: str) -> dict[int, list[int]]:
    """stack id -> addresses, as bpftool dumps the stack map (hex bytes)."""
    out = subprocess.run([need_tool("bpftool"), "-j", "map", "dump", "pinned", path], capture_output=True, text=True)
    stacks = {}
    for e in json.loads(out.stdout):
        key = bytes(int(b, 16) for b in e["key"])
        raw = bytes(int(b, 16) for b in e["value"])
        addrs = [int.from_bytes(raw[i : i + 8], "little") for i in range(0, len(raw), 8)]
        stacks[int.from_bytes(key, "little")] = [a for a in addrs[: addrs.index(0) if 0 in addrs else None]]
    return stacks


def test_kernel_stacks_match_kallsyms_and_counts_sum(prof):
    run(prof, 5)
    raw = bpftool_stacks(prof.map("stacks"))
    addrs, names = kallsyms()
    with Map.open(prof.map("ids")) as m:
        kern_id = int.from_bytes(m.lookup((0).to_bytes(4, "little")), "little", signed=True)
    want = [names[bisect.bisect_right(addrs, a) - 1] for a in raw[kern_id]]
    assert "bpf_prog_test_run_raw_tp" in want and want[0].endswith("_profile")  # innermost first
    # the stack map's dump: the same frames, with offsets
    got = json.loads(run_cli("lookup", prof.map("stacks"), str(kern_id), "-o", "json").stdout)["value"]["frames"]
    assert [f["symbol"] for f in got] == want
    assert [f["addr"] for f in got] == raw[kern_id]
    assert all(f["offset"] == a - addrs[bisect.bisect_right(addrs, a) - 1] for f, a in zip(got, raw[kern_id]))
    # stacks: folded, outer to inner, the comm first, counts summed
    r = run_cli("stacks", prof.map("counts"), "--stack-map", prof.map("stacks"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(FOLDED.match(line) for line in lines), r.stdout
    total = sum(int(line.rsplit(" ", 1)[1]) for line in lines)
    assert total == 5
    [line] = [ln for ln in lines if ";".join(reversed(want)) in ln]
    assert line.startswith(("python", "pytest")) and line.endswith(";".join(reversed(want)) + " 5")


def build_stacker(tmp_path) -> str:
    clang = need_tool("clang")
    exe = str(tmp_path / "stacker")
    src = os.path.join(BPF_SOURCES, "stacker.c")
    subprocess.run([clang, "-O0", "-g", "-fno-omit-frame-pointer", "-Wl,--build-id", src, "-o", exe], check=True)
    return exe


def test_user_stack_of_a_process_symbolizes_to_its_functions(prof, tmp_path):
    exe = build_stacker(tmp_path)
    p = subprocess.Popen([exe, os.path.join(prof.progs, "profile")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ran\n"
        r = run_cli("stacks", prof.map("counts"), "--stack-map", prof.map("stacks"))
        [line] = [ln for ln in r.stdout.splitlines() if ln.startswith("stacker;")]
        frames = line.rsplit(" ", 1)[0].split(";")
        assert frames.index("main") < frames.index("stack_outer") < frames.index("stack_middle"), line
        assert line.endswith(" 1")
        # the stack map alone, with --pid: the same names
        with Map.open(prof.map("ids")) as m:
            user_id = int.from_bytes(m.lookup((1).to_bytes(4, "little")), "little", signed=True)
        text = run_cli("lookup", prof.map("stacks"), str(user_id), "--pid", str(p.pid)).stdout
        assert "stack_middle" in text and "stack_outer" in text and "main" in text
        data = json.loads(run_cli("stacks", prof.map("counts"), "--stack-map", prof.map("stacks"), "-o", "json").stdout)
        [ours] = [s for s in data if s["labels"] == {"comm": "stacker"}]
        assert ours["pid"] == p.pid and ours["count"] == 1
        assert {"stack_outer", "stack_middle", "main"} <= {f["symbol"] for f in ours["user"]}
        assert {f["module"] for f in ours["user"] if f["symbol"] == "main"} == {"stacker"}
    finally:
        p.stdin.close()
        p.wait(timeout=10)
    # the process has exited: its user frames are [unknown], said once, never an error
    r = run_cli("lookup", prof.map("stacks"), str(user_id), "--pid", str(p.pid))
    assert r.returncode == 0 and "stack_middle" not in r.stdout and r.stderr.count("has exited") == 1
    r = run_cli("stacks", prof.map("counts"), "--stack-map", prof.map("stacks"))
    assert r.returncode == 0 and r.stderr.count("had exited") == 1
    [line] = [ln for ln in r.stdout.splitlines() if ln.startswith("stacker;")]
    assert "stack_middle" not in line and "[unknown]" in line


def test_missing_stack_ids_become_frames_and_keep_their_count(prof):
    run(prof, 1)
    counts = prof.map("counts")
    rows = [json.loads(x) for x in run_cli("dump", counts, "-o", "jsonl").stdout.splitlines()]
    key = dict(rows[0]["key"], user_stack_id=-14, comm="kthread")  # -EFAULT: no user stack
    assert run_cli("update", counts, json.dumps(key), "7").returncode == 0
    key2 = dict(rows[0]["key"], kern_stack_id=-17, user_stack_id=-14, comm="lost")  # -EEXIST: a collision
    assert run_cli("update", counts, json.dumps(key2), "2").returncode == 0
    r = run_cli("stacks", counts, "--stack-map", prof.map("stacks"))
    lines = {ln.split(";")[0]: ln for ln in r.stdout.splitlines()}
    assert lines["kthread"].startswith("kthread;[missing_user_stack];") and lines["kthread"].endswith(" 7")
    assert lines["lost"] == "lost;[missing_user_stack];[kernel_stack_dropped:_hash_collision] 2"
    text = run_cli("stacks", counts, "--stack-map", prof.map("stacks"), "-o", "text", "--top", "1").stdout
    assert [ln for ln in text.splitlines() if ln.strip()][-1].strip() == "7" and "kthread" in text


def test_stacks_options_and_refusals(prof):
    run(prof, 2)
    counts, stacks = prof.map("counts"), prof.map("stacks")
    r = run_cli("stacks", counts, "--stack-map", counts)
    assert r.returncode == 2 and "not a stack_trace map" in r.stderr
    r = run_cli("stacks", counts, "--stack-map", stacks, "--kernel-stack", "nope")
    assert r.returncode == 2 and "no field nope" in r.stderr and "key.kern_stack_id" in r.stderr
    by_kernel_only = run_cli("stacks", counts, "--stack-map", stacks, "--user-stack", "kern_stack_id", "--label", "pid")
    assert by_kernel_only.returncode == 0 and by_kernel_only.stdout.split(";")[0].isdigit()
    live = run_cli("stacks", counts, "--stack-map", stacks, "--interval", "0.1", "--count", "2", "-o", "folded")
    heads = [ln for ln in live.stdout.splitlines() if ln.startswith("#")]
    assert len(heads) == 2 and heads[1].endswith("0 stacks grew")  # nothing was added between


def test_build_id_stacks(prof, tmp_path):
    """The program's stack map made with BPF_F_STACK_BUILD_ID: the stacker's user frames
    come as its build id (its ELF note) and file offsets; a frame where the kernel fell
    back to the IP (status 2) comes as an address, symbolized."""
    from elftools.elf.elffile import ELFFile

    from bpfmap.layout.stack import StackCodec

    exe = build_stacker(tmp_path)
    with open(exe, "rb") as f:
        note = ELFFile(f).get_section_by_name(".note.gnu.build-id")
        build_id = next(iter(note.iter_notes()))["n_desc"]
    p = subprocess.Popen([exe, os.path.join(prof.progs, "profile")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ran\n"
    finally:
        p.stdin.close()
        p.wait(timeout=10)
    with Map.open(prof.map("ids")) as m:
        bid = int.from_bytes(m.lookup((2).to_bytes(4, "little")), "little", signed=True)
    assert bid >= 0
    frames = json.loads(run_cli("lookup", prof.map("bstacks"), str(bid), "-o", "json").stdout)["value"]["frames"]
    ours = [f for f in frames if f.get("build_id") == build_id]
    assert len(ours) >= 3 and all(0 < f["offset"] < os.path.getsize(exe) for f in ours), frames
    text = run_cli("lookup", prof.map("bstacks"), str(bid)).stdout
    assert f"{build_id}+0x" in text
    raw = (1).to_bytes(4, "little") + bytes(range(20)) + (0x1234).to_bytes(8, "little")
    raw += (2).to_bytes(4, "little") + bytes(20) + (0xFFFFFFFF81000000).to_bytes(8, "little")
    raw += bytes(32)
    got = StackCodec(len(raw), build_id=True).decode(raw)["frames"]
    assert got[0] == {"build_id": bytes(range(20)).hex(), "offset": 0x1234}
    assert got[1]["addr"] == 0xFFFFFFFF81000000 and got[1]["symbol"] != "[unknown]" and len(got) == 2


def test_as_ksym_on_an_array_of_addresses(pindir):
    addrs, names = kallsyms()
    i = names.index("do_sys_openat2") if "do_sys_openat2" in names else 100
    pin = f"{pindir}/ips"
    assert run_cli("create", "hash", "--layout", "u32:n=u32,ips=u64[3]", "--pin", pin, "-q").returncode == 0
    value = json.dumps({"n": 1, "ips": [addrs[i] + 4, addrs[i], 0]})
    assert run_cli("update", pin, "1", value).returncode == 0
    r = run_cli("dump", pin, "--as", "ips=ksym", "-o", "jsonl")
    assert json.loads(r.stdout)["value"]["ips"] == [f"{names[i]}+0x4", names[i], 0]
    assert run_cli("update", pin, "2", f'n=2,ips=["{names[i]}+0x4",0,0]', "--as", "ips=ksym").returncode == 0
    with Map.open(pin) as m:
        assert m.lookup((2).to_bytes(4, "little"))[8:16] == (addrs[i] + 4).to_bytes(8, "little")
