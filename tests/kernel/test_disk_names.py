"""A saved file shows the names its saving host gave: users, groups, interfaces, cgroups
and kernel symbols (display formats), and the kernel and user frames of stacks, read
where the host's own answer differs -- an interface and a cgroup gone since, and, in a
mount namespace of the test's, another /etc/passwd, /etc/group and an empty
/proc/kallsyms."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from conftest import BPF_SOURCES, BPFMAP, need_tool, run_cli
from helpers.programs import loaded_program

import bpfmap
from bpfmap.host import hostnames, symbols

pytestmark = pytest.mark.kernel

stacks_prog = loaded_program("stacks")


@pytest.fixture
def elsewhere(tmp_path):
    """Runs bpfmap where this host names things otherwise: in a mount namespace where uid
    and gid 0 are called ``toor`` and /proc/kallsyms is empty."""
    passwd, group, kallsyms = tmp_path / "passwd", tmp_path / "group", tmp_path / "kallsyms"
    passwd.write_text("toor:x:0:0:root:/root:/bin/sh\n")
    group.write_text("toor:x:0:\n")
    kallsyms.write_text("")
    binds = " && ".join(
        f"mount --bind {src} {dst}"
        for src, dst in ((passwd, "/etc/passwd"), (group, "/etc/group"), (kallsyms, "/proc/kallsyms"))
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [need_tool("unshare"), "-m", "sh", "-c", f'{binds} && exec "$@"', "sh", *BPFMAP, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        return r

    return run


@pytest.fixture
def veth():
    """An interface that exists now and is deleted by the test: (name, index)."""
    name = f"d2{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
    try:
        yield name, socket_index(name)
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def socket_index(name: str) -> int:
    import socket

    return socket.if_nametoindex(name)


@pytest.fixture
def cgroup():
    """A cgroup that exists now and is removed by the test: (path under the mount, id)."""
    root = hostnames.cgroup2_mount()
    if root is None:
        pytest.skip("no cgroup2 mount")
    name = f"bpfmap-test-{uuid.uuid4().hex[:8]}"
    path = os.path.join(root, name)
    os.mkdir(path)
    try:
        yield "/" + name, os.stat(path).st_ino
    finally:
        if os.path.isdir(path):
            os.rmdir(path)


def test_a_saved_file_shows_the_names_its_saving_host_gave(pindir, tmp_path, elsewhere, veth, cgroup):
    ifname, ifindex = veth
    cg_path, cg_id = cgroup
    ks = symbols.kernel()
    addr = ks.address("vfs_read")
    assert addr
    pin = os.path.join(pindir, "who")
    layout = "u32:uid=u32,gid=u32,ifindex=u32,cg=u64,ip=u64,ips=u64[2]"
    assert run_cli("create", "hash", "--layout", layout, "--pin", pin, "-q").returncode == 0
    with bpfmap.open(pin) as v:
        v[1] = {"uid": 0, "gid": 0, "ifindex": ifindex, "cg": cg_id, "ip": addr + 5, "ips": [addr, addr + 1]}
        v[2] = {"uid": 0xFFFFFFF0, "gid": 0xFFFFFFF0, "ifindex": 0xFFFFFF, "cg": 3, "ip": 77, "ips": [0, 0]}
    file = str(tmp_path / "who.bpfmap")
    assert run_cli("save", pin, file).returncode == 0
    subprocess.run(["ip", "link", "del", ifname], check=True)
    os.rmdir(os.path.join(hostnames.cgroup2_mount() or "", cg_path.lstrip("/")))

    as_ = ["--as", "uid=uid,gid=gid,ifindex=ifname,cg=cgroup,ip=ksym,ips=ksym"]
    want = {"uid": "root", "gid": "root", "ifindex": ifname, "cg": cg_path, "ip": "vfs_read+0x5",
            "ips": ["vfs_read", "vfs_read+0x1"]}  # fmt: skip
    unnamed = {"uid": 0xFFFFFFF0, "gid": 0xFFFFFFF0, "ifindex": 0xFFFFFF, "cg": 3, "ip": 77, "ips": [0, 0]}
    # the host says otherwise now: the live map shows its names, or numbers
    live = {
        e["key"]: e["value"] for e in map(json.loads, elsewhere("dump", pin, *as_, "-o", "jsonl").stdout.splitlines())
    }
    assert live[1] == {
        "uid": "toor",
        "gid": "toor",
        "ifindex": ifindex,
        "cg": cg_id,
        "ip": addr + 5,
        "ips": [addr, addr + 1],
    }
    for fmt in ("jsonl", "json"):
        out = elsewhere("dump", file, *as_, "-o", fmt).stdout
        rows = json.loads(out) if fmt == "json" else list(map(json.loads, out.splitlines()))
        assert {e["key"]: e["value"] for e in rows} == {1: want, 2: unnamed}, fmt
    text = elsewhere("dump", file, *as_).stdout  # the raw-row path
    assert f'uid=root,gid=root,ifindex={ifname},cg={cg_path},ip=vfs_read+0x5,ips=["vfs_read","vfs_read+0x1"]' in text, (
        text
    )
    one = json.loads(elsewhere("lookup", file, "1", *as_, "-o", "json").stdout)["value"]
    assert one == want
    # a name given back means the number the saving host gave it
    got = elsewhere("dump", file, "--as", "uid=uid,ifindex=ifname", "--where", f"ifindex={ifname}", "-o", "jsonl")
    assert [json.loads(x)["key"] for x in got.stdout.splitlines()] == [1]
    got = elsewhere("dump", file, "--as", "uid=uid", "--where", "uid=root", "-o", "jsonl")
    assert [json.loads(x)["key"] for x in got.stdout.splitlines()] == [1]


def build_stacker(tmp_path) -> str:
    exe = str(tmp_path / "stacker")
    src = os.path.join(BPF_SOURCES, "stacker.c")
    subprocess.run([need_tool("clang"), "-O0", "-g", "-fno-omit-frame-pointer", src, "-o", exe], check=True)
    return exe


def test_stacks_from_a_file_symbolize_as_the_saving_host_did(stacks_prog, tmp_path, elsewhere):
    for name in ("counts", "stacks", "bstacks"):
        assert run_cli("clear", stacks_prog.map(name), "-q").returncode == 0
    counts, stacks = stacks_prog.map("counts"), stacks_prog.map("stacks")
    file = str(tmp_path / "prof.bpfmap")
    exe = build_stacker(tmp_path)
    p = subprocess.Popen(
        [exe, os.path.join(stacks_prog.progs, "profile")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert p.stdout.readline() == b"ran\n"
        live = run_cli("stacks", counts, "--stack-map", stacks)
        assert live.returncode == 0 and "stack_middle" in live.stdout
        assert run_cli("save", counts, stacks, file).returncode == 0
        with bpfmap.Map.open(stacks_prog.map("ids")) as m:
            user_id = int.from_bytes(m.lookup((1).to_bytes(4, "little")), "little", signed=True)
        live_lookup = run_cli("lookup", stacks, str(user_id), "--pid", str(p.pid), "-o", "json").stdout
    finally:
        p.stdin.close()
        p.wait(timeout=10)
    # here and now: the process is gone and the kernel's symbols unknown
    now = elsewhere("stacks", counts, "--stack-map", stacks).stdout
    assert "stack_middle" not in now and "bpf_prog_test_run_raw_tp" not in now
    # the file: as the saving host saw it, kernel and user frames
    saved = elsewhere("stacks", f"{file}:counts", "--stack-map", f"{file}:stacks")
    assert sorted(saved.stdout.splitlines()) == sorted(live.stdout.splitlines())
    [line] = [ln for ln in saved.stdout.splitlines() if ln.startswith("stacker;")]
    assert "main;stack_outer;stack_middle" in line and "bpf_prog_test_run_raw_tp" in line
    got = elsewhere("lookup", f"{file}:stacks", str(user_id), "--pid", str(p.pid), "-o", "json").stdout
    assert json.loads(got) == json.loads(live_lookup)
