"""Maps keyed or valued by kernel objects, with real objects: local storage (task, cgroup,
inode, socket) through pid:N, cgroup:PATH, file:PATH and sock:PID:FD; their dumps (tasks
from /proc, cgroups under the cgroup2 mount); the older cgroup_storage with a real cgroup
program attached to a cgroup the test makes; fd maps (sockmap, cgroup_array)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import pytest
from helpers import create_pin as create
from helpers import need_tool, run_cli

from bpfmap import Map, MapSpec, Program, _sys
from bpfmap.core.objrefs import cgroup2_mount

pytestmark = pytest.mark.kernel


@pytest.fixture
def cgroup():
    """A cgroup2 directory made for the test (removed after): its path under the mount."""
    root = cgroup2_mount()
    if root is None:
        pytest.skip("no cgroup2 hierarchy is mounted")
    name = "bpfmap" + uuid.uuid4().hex[:8]
    path = os.path.join(root, name)
    os.mkdir(path)
    yield "/" + name, path
    os.rmdir(path)


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p
    p.kill()
    p.wait()


def test_task_storage_made_from_a_layout_or_a_size_carries_btf(pindir, bpftool):
    for args in (("--layout", "s32:u64"), ("--layout", "pid=u32,seen=u64"), ("--value", "12")):
        pin = create(pindir, "t" + uuid.uuid4().hex[:6], "task_storage", *args)
        info = json.loads(subprocess.run([bpftool, "-j", "map", "show", "pinned", pin], capture_output=True).stdout)
        assert info["type"] == "task_storage" and info["btf_id"] > 0
    r = run_cli("create", "task_storage", "--layout", "u64:u64", "--pin", os.path.join(pindir, "bad"))
    assert r.returncode == 2 and "is an int (the object's fd)" in r.stderr


def test_task_storage_by_pid(pindir, sleeper):
    pin = create(pindir, "ts", "task_storage", "--layout", "pid=u32,seen=u64")
    ref = f"pid:{sleeper.pid}"
    assert run_cli("lookup", pin, ref).returncode == 1  # nothing stored for it yet
    assert run_cli("update", pin, ref, "pid=7,seen=42").returncode == 0
    assert run_cli("lookup", pin, ref).stdout == "pid=7,seen=42\n"
    got = json.loads(run_cli("lookup", pin, ref, "-o", "json").stdout)
    assert got == {"key": ref, "value": {"pid": 7, "seen": 42}}
    # dump walks the tasks: the sleeper, keyed by its pid and comm
    rows = [json.loads(line) for line in run_cli("dump", pin, "-o", "jsonl").stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["key"]["pid"] == sleeper.pid and rows[0]["value"] == {"pid": 7, "seen": 42}
    with open(f"/proc/{sleeper.pid}/comm") as f:
        assert rows[0]["key"]["comm"] == f.read().strip()
    assert run_cli("delete", pin, ref).returncode == 0
    assert run_cli("lookup", pin, ref).returncode == 1
    assert run_cli("dump", pin).stdout == ""


def test_task_storage_of_a_thread_and_a_gone_process(pindir):
    import threading

    pin = create(pindir, "ts", "task_storage", "--layout", "u64")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        tid = t.native_id
        assert run_cli("update", pin, f"pid:{tid}", "5").returncode == 0
        rows = [json.loads(x) for x in run_cli("dump", pin, "-o", "jsonl").stdout.splitlines()]
        assert [r["key"]["pid"] for r in rows] == [tid]
    finally:
        stop.set()
        t.join()
    p = subprocess.Popen(["true"])
    p.wait()
    r = run_cli("lookup", pin, f"pid:{p.pid}")
    assert r.returncode == 1 and f"no process or thread {p.pid}" in r.stderr


def test_cgrp_storage_by_path_and_its_dump(pindir, cgroup):
    rel, path = cgroup
    pin = create(pindir, "cs", "cgrp_storage", "--layout", "u64")
    assert run_cli("update", pin, f"cgroup:{rel}", "9").returncode == 0
    assert run_cli("lookup", pin, f"cgroup:{path}").stdout == "9\n"  # an absolute path works too
    assert run_cli("dump", pin).stdout == f"{rel}\t9\n"
    assert json.loads(run_cli("dump", pin, "-o", "json").stdout) == [{"key": rel, "value": 9}]
    r = run_cli("lookup", pin, "cgroup:/no/such/cgroup")
    assert r.returncode == 1 and "no cgroup" in r.stderr
    r = run_cli("lookup", pin, "cgroup:/proc")
    assert r.returncode in (1, 2)
    assert run_cli("delete", pin, f"cgroup:{rel}").returncode == 0
    assert run_cli("dump", pin).stdout == ""


def test_inode_storage_by_file_cannot_be_listed(pindir, tmp_path):
    f = tmp_path / "x"
    f.write_text("x")
    pin = create(pindir, "is", "inode_storage", "--value", "8")
    assert run_cli("update", pin, f"file:{f}", "01 02 03 04 05 06 07 08").returncode == 0
    assert run_cli("lookup", pin, f"file:{f}").stdout == "01 02 03 04 05 06 07 08\n"
    r = run_cli("dump", pin)
    assert r.returncode == 2 and "'bpfmap lookup MAP file:PATH'" in r.stderr
    r = run_cli("lookup", pin, "pid:1")
    assert r.returncode == 2 and "takes file:PATH" in r.stderr


def test_sk_storage_by_socket_of_another_process(pindir):
    pin = create(pindir, "ss", "sk_storage", "--layout", "u32")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        ref = f"sock:{os.getpid()}:{s.fileno()}"
        assert run_cli("update", pin, ref, "77").returncode == 0
        assert run_cli("lookup", pin, ref).stdout == "77\n"
        r = run_cli("lookup", pin, f"sock:{os.getpid()}:0")  # stdin: not a socket
        assert r.returncode == 2 and "is not a socket" in r.stderr
        r = run_cli("lookup", pin, f"sock:{os.getpid()}:9999")
        assert r.returncode == 1 and "has no fd 9999" in r.stderr


def test_sock_reference_needs_ptrace_rights():
    """A user without ptrace rights over a process may not take its socket: said so
    (PermissionDenied, exit 3).  Run as nobody against this (root) process; no bpf(2)
    call is needed to get there."""
    need_tool("setpriv")
    with socket.socket() as s:
        code = (
            "import sys\nfrom bpfmap.core.objrefs import open_ref\nfrom bpfmap.errors import BpfmapError\n"
            f"try:\n    open_ref('sock:{os.getpid()}:{s.fileno()}', 'sock')\n"
            "except BpfmapError as e:\n    print(type(e).__name__, e.exit_code, e)\n"
        )
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
        r = subprocess.run([*cmd, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("PermissionDenied 3 "), (r.stdout, r.stderr)
    assert "pidfd_getfd needs ptrace rights" in r.stdout


def test_cgroup_storage_of_an_attached_program(pindir, cgroup):
    """The older cgroup_storage: entries exist while a program using it is attached;
    dump shows the cgroup's path and the attach type's name (as bpftool's raw key)."""
    rel, path = cgroup
    m = Map.create(MapSpec("cgroup_storage", 16, 8, 0))
    pin = os.path.join(pindir, "cst")
    m.pin(pin)
    prog = Program.load(
        "cgroup_skb",
        "r1 = map[st]\nr2 = 0\ncall get_local_storage\nr1 = 5\nlock *(u64 *)(r0 + 0) += r1\nr0 = 1\nexit",
        {"st": m},
        attach_type=1,
    )
    fd = os.open(path, os.O_RDONLY)
    _sys.prog_attach(fd, prog.fileno(), 1)  # BPF_CGROUP_INET_EGRESS
    try:
        rows = json.loads(run_cli("dump", pin, "-o", "json", "--layout", ":u64").stdout)
        assert rows == [{"key": {"cgroup": rel, "attach_type": "cgroup_inet_egress"}, "value": 0}]
        key = f"cgroup:{rel},cgroup_inet_egress"
        assert run_cli("update", pin, key, "3", "--layout", ":u64").returncode == 0
        assert run_cli("lookup", pin, key, "--layout", ":u64").stdout == "3\n"
        out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", pin], capture_output=True, text=True)
        [entry] = json.loads(out.stdout)
        ino = os.stat(path).st_ino
        assert [int(b, 16) for b in entry["key"][:8]] == list(ino.to_bytes(8, "little"))
        r = run_cli("delete", pin, key)
        assert r.returncode == 2 and "'bpfmap update'" in r.stderr
    finally:
        _sys.prog_detach(fd, prog.fileno(), 1)
        os.close(fd)
        prog.close()
        m.close()


def test_sockmap_shows_occupied_slots_as_cookies(pindir):
    pin = create(pindir, "sm", "sockmap", "--max-entries", "8")
    assert run_cli("dump", pin).stdout == ""  # empty: nothing, not 8 lines of '-'
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        assert run_cli("update", pin, "3", f"sock:{os.getpid()}:{s.fileno()}").returncode == 0
        cookie = s.getsockopt(socket.SOL_SOCKET, 57, 8)  # SO_COOKIE
        rows = json.loads(run_cli("dump", pin, "-o", "json").stdout)
        assert rows == [{"key": 3, "value": int.from_bytes(cookie, "little")}]
        # one meaning: lookup shows the cookie as dump does (it printed its bytes as hex)
        assert run_cli("lookup", pin, "3").stdout == f"{int.from_bytes(cookie, 'little')}\n"
        assert json.loads(run_cli("lookup", pin, "3", "-o", "json").stdout)["value"] == rows[0]["value"]
        assert run_cli("clear", pin, "-q").returncode == 0
        assert run_cli("dump", pin).stdout == ""
    small = create(pindir, "s4", "sockmap", "--value", "4", "--max-entries", "8")
    r = run_cli("dump", small)
    assert (r.returncode, r.stdout) == (0, "") and "8 slots" in r.stderr and "--value 8" in r.stderr


def test_cgroup_array_takes_a_cgroup(pindir, cgroup):
    rel, _path = cgroup
    pin = create(pindir, "ca", "cgroup_array", "--max-entries", "4")
    assert run_cli("update", pin, "1", f"cgroup:{rel}").returncode == 0
    r = run_cli("update", pin, "1", "pid:1")
    assert r.returncode == 2 and "takes cgroup:PATH" in r.stderr
    assert run_cli("delete", pin, "1").returncode == 0
    assert run_cli("delete", pin, "1").returncode == 1


def test_watch_of_local_storage(pindir, sleeper):
    pin = create(pindir, "ts", "task_storage", "--layout", "u64")
    assert run_cli("update", pin, f"pid:{sleeper.pid}", "3").returncode == 0
    r = run_cli("watch", pin, "--count", "1", "-o", "jsonl")
    [frame] = [json.loads(x) for x in r.stdout.splitlines()]
    assert frame["entries"] == 1 and frame["rows"][0]["key"]["pid"] == sleeper.pid


def test_sk_storage_dump_shows_each_socket(pindir):
    """Listening and connected TCP, UDP over IPv6, a unix socket: each shown with its
    family, protocol, state, addresses, ports, inode and cookie (as getsockopt tells)."""
    pin = create(pindir, "ss", "sk_storage", "--layout", "u32")
    with (
        socket.socket() as listener,
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_UNIX) as unix,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        udp.bind(("::1", 0))
        with socket.create_connection(listener.getsockname()) as client:
            socks = {10: listener, 11: udp, 12: client, 13: unix}
            for value, s in socks.items():
                assert run_cli("update", pin, f"sock:{os.getpid()}:{s.fileno()}", str(value)).returncode == 0
            r = run_cli("dump", pin, "-o", "jsonl")
            rows = {row["value"]: row["key"] for row in map(json.loads, r.stdout.splitlines())}
            assert sorted(rows) == [10, 11, 12, 13], r.stderr
            for value, s in socks.items():
                key = rows[value]
                assert key["inode"] == os.fstat(s.fileno()).st_ino
                assert key["cookie"] == int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 57, 8), "little")
            here, there = client.getsockname(), listener.getsockname()
            assert rows[10] | {"inode": 0, "cookie": 0} == {
                "family": "inet", "protocol": "tcp", "state": "listen", "src": "127.0.0.1", "sport": there[1],
                "dst": "0.0.0.0", "dport": 0, "inode": 0, "cookie": 0,
            }  # fmt: skip
            assert (rows[12]["state"], rows[12]["sport"], rows[12]["dport"]) == ("established", here[1], there[1])
            assert (rows[11]["family"], rows[11]["protocol"], rows[11]["state"], rows[11]["src"]) == (
                "inet6",
                "udp",
                None,
                "::1",
            )
            assert rows[13] == {"family": "unix", "inode": rows[13]["inode"], "cookie": rows[13]["cookie"]}
            text = run_cli("dump", pin).stdout
            assert f"state=listen,src=127.0.0.1,sport={there[1]}" in text


def test_sk_storage_iterator_program(pindir):
    """The bpf_sk_storage_map iterator program: assembled from the kernel's BTF offsets;
    where the kernel loads it, its records match the sockets."""
    from bpfmap import Map
    from bpfmap.core.skiter import RECORD_SIZE, SocketKey, _iterate, load_iterator, program
    from bpfmap.errors import Unsupported

    insns, target = program(4)
    assert len(insns) > 40 * 8 and target > 0
    pin = create(pindir, "ss", "sk_storage", "--layout", "u32")
    with socket.socket() as s, Map.open(pin) as m:
        s.bind(("127.0.0.1", 0))
        assert run_cli("update", pin, f"sock:{os.getpid()}:{s.fileno()}", "5").returncode == 0
        try:
            prog = load_iterator(m)
        except Unsupported as err:
            pytest.skip(f"this kernel does not load sk_storage iterators: {err}")
        [(keys, values, n)] = list(_iterate(m, prog, 16))
        assert n == 1 and values == (5).to_bytes(4, "little") and len(keys) == RECORD_SIZE
        key = SocketKey().decode(keys)
        assert (key["sport"], key["inode"]) == (s.getsockname()[1], os.fstat(s.fileno()).st_ino)
