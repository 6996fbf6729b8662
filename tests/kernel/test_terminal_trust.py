"""Operator verbs you can trust: the shapes real programs give their maps, read as they
are, and hostile text (a process name, a pin name) that never drives the operator's
terminal.

tests/bpf/wakeup.bpf.c keeps libbpf-tools' wakeuptime counts (a key of two task names
and `w_k_stack_id`) and runqlen's `.bss` of `struct hist hists[N]`; a process whose name
is an escape sequence runs it, and a pin whose name holds one (and a newline) points at
its counts map.  Every verb that prints map, kernel or file-name text runs on a real
pseudo-terminal (pty.openpty)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import uuid

import pytest
from helpers import run_cli
from helpers.programs import loaded_program
from helpers.terminal import ANSI, on_terminal

from bpfmap import Map, Program
from bpfmap.layout.leaves import c_quote

pytestmark = pytest.mark.kernel

wake_prog = loaded_program("wakeup")
tty_prog = loaded_program("wakeup")


def run(loaded, which: int, slot: int, times: int = 1) -> None:
    """One run of `wake` per time: counts its stack and slot ``slot`` of hists[which]."""
    with Program.open(os.path.join(loaded.progs, "wake")) as p:
        for _ in range(times):
            p.test_run(ctx=struct.pack("<QQ", which, slot))


# -- real programs' shapes ---------------------------------------------------------------------


def test_wakeuptime_key_stack_id_found_by_what_it_is(wake_prog, pindir):
    run(wake_prog, 0, 0, times=3)
    counts, stackmap = wake_prog.map("counts"), wake_prog.map("stackmap")
    r = run_cli("stacks", counts, "--stack-map", stackmap)
    assert r.returncode == 0, r.stderr
    [line] = [ln for ln in r.stdout.splitlines() if "sleeper" in ln]
    frames, count = line.rsplit(" ", 1)
    # the key's names head the stack (no comm field: its strings), then the kernel frames
    assert frames.split(";")[:2] == [open("/proc/self/comm").read().strip() or "python", "sleeper"]
    assert "bpf_prog_test_run_raw_tp" in frames.split(";") and frames.split(";")[-1].endswith("_wake")
    assert int(count) >= 3
    data = json.loads(run_cli("stacks", counts, "--stack-map", stackmap, "-o", "json").stdout)
    assert all(s["user"] == [] and s["kernel"] for s in data)
    assert set(data[0]["labels"]) == {"waker", "target"}

    # bcc's offwaketime keeps two kernel and two user stacks: which pair is for the operator to say
    both = os.path.join(pindir, "both")
    layout = "waker=char[16],target=char[16],w_k_stack_id=s32,w_u_stack_id=s32,t_k_stack_id=s32,t_u_stack_id=s32:u64"
    assert run_cli("create", "hash", "--layout", layout, "--pin", both, "-q").returncode == 0
    [ours] = [s for s in data if s["count"] >= 3]
    kid = json.loads(run_cli("dump", counts, "-o", "jsonl").stdout.splitlines()[0])["key"]["w_k_stack_id"]
    assert run_cli("update", both, f"a,b,{kid},-14,{kid},-14", "2").returncode == 0
    r = run_cli("stacks", both, "--stack-map", stackmap)
    assert r.returncode == 2 and "w_k_stack_id, t_k_stack_id" in r.stderr and "--kernel-stack" in r.stderr
    r = run_cli(
        "stacks", both, "--stack-map", stackmap, "--kernel-stack", "t_k_stack_id", "--user-stack", "t_u_stack_id"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("a;b;[missing_user_stack];") and r.stdout.endswith(f"{ours['kernel'][0]['symbol']} 2\n")

    # a field named like a stack id that cannot be one (8 bytes: the stack map's keys are 4)
    wide = os.path.join(pindir, "wide")
    assert run_cli("create", "hash", "--layout", "comm=char[16],stack_id=u64:u64", "--pin", wide, "-q").returncode == 0
    r = run_cli("stacks", wide, "--stack-map", stackmap)
    assert r.returncode == 2 and "no stack id field" in r.stderr


def test_bss_array_of_struct_hist_one_histogram_per_index(wake_prog):
    for which, slot, times in ((0, 1, 2), (2, 5, 1), (3, 0, 4)):
        run(wake_prog, which, slot, times)
    bss = wake_prog.map("wakeup_bss")
    raw = json.loads(run_cli("dump", bss, "-o", "json").stdout)[0]["value"]["hists"]
    want = {i: {j: c for j, c in enumerate(h["slots"]) if c} for i, h in enumerate(raw)}
    assert want[0] and want[2] and want[3] and not want[1]
    for args in (["--var", "hists"], ["--slots", "hists"], []):  # named, or found by itself
        r = run_cli("hist", bss, *args, "--linear", "-o", "json")
        assert r.returncode == 0, (args, r.stderr)
        hists = json.loads(r.stdout)
        assert [h["group"] for h in hists] == [{"index": i} for i in range(4)], args
        got = {h["group"]["index"]: {b["low"]: b["count"] for b in h["buckets"] if b["count"]} for h in hists}
        assert got == want, args
    text = run_cli("hist", bss, "--var", "hists", "--linear").stdout
    assert "index = 2\n[5] " in text and "index = 1\n(no counts)" in text
    r = run_cli("hist", bss, "--var", "hists", "--linear", "--merge", "-o", "json")
    [merged] = json.loads(r.stdout)
    assert merged["total"] == sum(c for h in want.values() for c in h.values())


# -- hostile text and the terminal -------------------------------------------------------------

COMM = "\x1b]0;pwn\x07\r\x9b2J"  # an OSC title, a carriage return, a one-byte CSI: 12 bytes, fits a comm
PIN = "ev\x1b]0;pwn\x07il\nname"  # a pin name with an escape sequence and a newline


@pytest.fixture(scope="module")
def scene(tty_prog, bpffs):
    """A process named COMM that ran the program (its counts, events and stack hold its
    name) and holds the counts map open; a directory with the counts map pinned as PIN."""
    code = (
        "import ctypes, struct, sys\n"
        f"assert ctypes.CDLL(None).prctl(15, {COMM.encode()!r}, 0, 0, 0) == 0\n"
        "from bpfmap import Map, Program\n"
        "m = Map.open(sys.argv[2])\n"
        "with Program.open(sys.argv[1]) as p:\n"
        "    p.test_run(ctx=struct.pack('<QQ', 1, 3))\n"
        "print('ran', flush=True)\n"
        "sys.stdin.read()\n"
    )
    prog = os.path.join(tty_prog.progs, "wake")
    child = subprocess.Popen(
        [sys.executable, "-c", code, prog, tty_prog.map("counts")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    directory = os.path.join(bpffs, "hostile" + uuid.uuid4().hex[:8])
    os.mkdir(directory)
    try:
        assert child.stdout.readline() == b"ran\n"
        with open(f"/proc/{child.pid}/comm", "rb") as f:
            assert f.read() == COMM.encode() + b"\n"
        with Map.open(tty_prog.map("counts")) as m:
            m.pin(os.path.join(directory, PIN))
        yield tty_prog, directory, child.pid
    finally:
        child.stdin.close()
        child.wait(timeout=10)
        shutil.rmtree(directory)


def shown(screen: str) -> str:
    """What the terminal shows as text: bpfmap's own colours and cursor moves taken out."""
    return ANSI.sub("", screen).replace("\r\n", "\n")


def the_key(prog) -> str:
    rows = [json.loads(x) for x in run_cli("dump", prog.map("counts"), "-o", "jsonl").stdout.splitlines()]
    [key] = [r["key"] for r in rows if r["key"]["waker"] == COMM]
    return json.dumps(key)


STACKS = ["stacks", "{counts}", "--stack-map", "{stackmap}", "--kernel-stack", "w_k_stack_id", "--label", "waker"]
VERBS = {
    "dump-table": (["dump", "{counts}"], True),
    "dump-text": (["dump", "{counts}", "-o", "text"], True),
    "dump-dir-table": (["dump", "{dir}"], True),
    "dump-dir-text": (["dump", "{dir}", "-o", "text"], True),
    "lookup": (["lookup", "{counts}", "{key}"], False),
    "lookup-dir": (["lookup", "{dir}", "{key}"], False),
    "getnext-dir": (["getnext", "{dir}"], False),
    "watch": (["watch", "{counts}", "--count", "1"], True),
    "events": (["events", "{events}", "--count", "1", "--object", "{obj}", "--value-type", "struct key_t"], True),
    "stacks-folded": ([*STACKS, "-o", "folded"], True),
    "stacks-text": ([*STACKS, "-o", "text"], True),
    "stacks-interval": ([*STACKS, "-o", "folded", "--interval", "0.1", "--count", "1"], True),
    "stacks-interval-text": ([*STACKS, "--interval", "0.1", "--count", "1"], True),
    "hist-labels": (["hist", "{counts}", "--slot", "w_k_stack_id"], True),
    "show-table": (["show", "{dir}"], False),
    "show-text": (["show", "{dir}", "-o", "text"], True),
    "show-one-table": (["show", "{pin}"], False),
    "list-table": (["list"], False),
    "list-text": (["list", "-o", "text"], True),
    "top-jsonl": (["top", "{dir}", "-o", "jsonl", "--count", "1"], False),
    "top-table": (["top", "{dir}", "--count", "1"], False),
}


@pytest.mark.parametrize("verb", list(VERBS))
def test_hostile_comm_and_pin_name_never_drive_the_terminal(scene, verb):
    prog, directory, pid = scene
    args, comm_shown = VERBS[verb]
    names = {
        "counts": prog.map("counts"),
        "stackmap": prog.map("stackmap"),
        "events": prog.map("events"),
        "obj": prog.obj,
        "dir": directory,
        "pin": os.path.join(directory, PIN),
        "key": the_key(prog) if "{key}" in args else "",
    }
    code, screen = on_terminal([a.format(**names) for a in args], cols=250)
    assert code == 0, (verb, screen[-400:])
    text = shown(screen)
    for bad in ("\x1b", "\x07", "\x9b"):
        assert bad not in text, (verb, repr(screen[:600]))
    assert "\nname" not in text, (verb, repr(text[:600]))  # a pin name's newline starts no line
    assert "\\x1b[H" not in text and "\\x1b[2J" not in text  # bpfmap's own screen clears stay escapes
    if comm_shown:
        assert "pwn" in text and ("\\x1b" in text or "\\u001b" in text), (verb, repr(text[:600]))
    if ("{dir}" in args or "{pin}" in args) and verb.startswith(("dump", "lookup", "getnext", "show")):
        assert "il\\x0aname" in text, (verb, repr(text[:600]))  # the pin's name, escaped, on one line
    if verb == "show-text":  # the holder's name as the kernel keeps it, its \r a \r
        assert f"pids \\x1b]0;pwn\\x07\\x0d\\x9b2J({pid})" in text, repr(text)


def test_names_on_a_pipe_are_written_as_dump_writes_text(scene):
    """Off a terminal, stacks' and hist's lines write a process name as dump's text does
    (C-quoted when it holds a control): its \\r rewrites no line, a flame graph's lines stay lines."""
    prog, _directory, _pid = scene
    quoted = c_quote(COMM)
    r = run_cli("stacks", prog.map("counts"), "--stack-map", prog.map("stackmap"), "-o", "folded")
    assert r.returncode == 0 and "\r" not in r.stdout, r.stderr
    [line] = [ln for ln in r.stdout.splitlines() if "pwn" in ln]
    assert line.startswith(quoted.replace(";", ":") + ";sleeper;") and line.endswith(" 1")
    text = run_cli("stacks", prog.map("counts"), "--stack-map", prog.map("stackmap"), "-o", "text").stdout
    assert f"-                {quoted} sleeper\n" in text
    r = run_cli("hist", prog.map("counts"), "--slot", "w_k_stack_id")
    assert r.returncode == 0 and f"waker = {quoted}, target = sleeper\n" in r.stdout
    assert run_cli("dump", prog.map("counts"), "-o", "text").stdout.startswith(f"waker={quoted},")


def test_a_streamed_table_keeps_its_own_bold_on_a_terminal(pindir):
    """Past 1,000 entries the table streams; its header's bold is bpfmap's, not the map's."""
    path = os.path.join(pindir, "many")
    assert (
        run_cli(
            "create", "hash", "--layout", "k=u32:comm=char[16]", "--max-entries", "2000", "--pin", path, "-q"
        ).returncode
        == 0
    )
    lines = "".join(f"{i}\t{json.dumps(COMM if i == 7 else 'x')}\n" for i in range(1200))
    assert run_cli("update", path, "--from", "-", "-q", input=lines).returncode == 0
    code, screen = on_terminal(["dump", path], cols=120)
    assert code == 0
    text = shown(screen)
    assert "\x1b" not in text and "\\x1b[1m" not in text and "1200 entries" in text
    assert "\\x1b]0;pwn" in text  # the map's escape, shown


def test_export_once_on_a_terminal_escapes_what_maps_hold(pindir, tmp_path):
    """export --once writes label values a map holds (a char[16] with ESC, BEL and an
    OSC title sequence): on a terminal they go through the escaping every verb uses."""
    pin = f"{pindir}/names"
    assert run_cli("create", "hash", "--layout", "comm=char[16]:n=u64", "--pin", pin).returncode == 0
    hostile = "\x1b]0;pwn\x07x"
    with Map.open(pin) as m:
        m.update(hostile.encode().ljust(16, b"\0"), (7).to_bytes(8, "little"))
    config = tmp_path / "export.yaml"
    config.write_text(f"metrics:\n  - name: n_total\n    map: {pin}\n    value: n\n    labels: [comm]\n")
    code, screen = on_terminal(["export", str(config), "--once"])
    assert code == 0, screen
    assert "n_total{" in screen and "\x1b]0;" not in screen and "\x07" not in screen, repr(screen)
    assert "pwn" in screen  # shown, escaped, not acted on
    piped = run_cli("export", str(config), "--once")  # a pipe gets the exposition's own bytes
    assert "\x1b]0;pwn\x07x" in piped.stdout
