"""Map against the real kernel, in a private bpffs."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading

import pytest
from helpers import REPO

from bpfmap import (
    Empty,
    KeyExists,
    KeyNotFound,
    Map,
    MapFlag,
    MapFull,
    MapType,
    NoSuchObject,
    NotBpffs,
    PinExists,
    Program,
    ReadOnly,
    Unsupported,
    UsageError,
    WrongObjectType,
    _sys,
    possible_cpus,
)
from bpfmap.types import spec as type_spec

pytestmark = pytest.mark.kernel  # every test here makes maps in the process


def u32(n: int) -> bytes:
    return struct.pack("=I", n)


def u64(n: int) -> bytes:
    return struct.pack("=Q", n)


def reopen_items(path: str) -> list:
    """Read a pinned map from a separate process: the point of pinning."""
    code = (
        "import sys; from bpfmap import Map\n"
        "m = Map.open(sys.argv[1], readonly=True)\n"
        "for k, v in sorted(m.items()):\n"
        "    print(k.hex(), v.hex() if isinstance(v, bytes) else ','.join(x.hex() for x in v))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True).stdout
    return [tuple(line.split(" ")) for line in out.splitlines()]


KEYED = [
    ("hash", 4, 8),
    ("lru_hash", 4, 8),
    ("array", 4, 8),
    ("lpm_trie", 8, 8),
]


@pytest.mark.parametrize("mtype,ks,vs", KEYED)
def test_keyed_maps_write_read_pin_reopen_delete(pindir, mtype, ks, vs):
    path = os.path.join(pindir, mtype)
    with Map.create(mtype, ks, vs, max_entries=16, name="t_" + mtype[:10]) as m:
        key = u32(24) + bytes([10, 0, 0, 0]) if mtype == "lpm_trie" else u32(3)
        m.update(key, u64(0xDEADBEEF))
        assert m.lookup(key) == u64(0xDEADBEEF)
        m.pin(path)
    # The map outlives its creator's fd through the pin; another process reads it.
    rows = reopen_items(path)
    assert (key.hex(), u64(0xDEADBEEF).hex()) in rows
    with Map.open(path) as m:
        assert m.type is MapType.parse(mtype) and m.name == "t_" + mtype[:10]
        if mtype == "array":
            with pytest.raises(UsageError, match="cannot delete"):
                m.delete(key)
        else:
            m.delete(key)
            with pytest.raises(KeyNotFound):
                m.lookup(key)
            with pytest.raises(KeyNotFound):
                m.delete(key)


def test_lpm_trie_longest_prefix_match():
    with Map.create("lpm_trie", 8, 4, max_entries=8) as m:
        m.update(u32(8) + bytes([10, 0, 0, 0]), u32(8))
        m.update(u32(24) + bytes([10, 1, 2, 0]), u32(24))
        assert m.lookup(u32(32) + bytes([10, 1, 2, 3])) == u32(24)
        assert m.lookup(u32(32) + bytes([10, 9, 9, 9])) == u32(8)
        assert len(list(m.keys())) == 2


def test_lpm_trie_needs_no_prealloc():
    with pytest.raises(UsageError, match="need the flag.*no_prealloc"):
        Map.create("lpm_trie", 8, 4, flags=MapFlag(0))


@pytest.mark.parametrize("mtype", ["percpu_hash", "percpu_array", "lru_percpu_hash"])
def test_percpu_values_distinct_per_cpu(pindir, mtype):
    n = possible_cpus()
    with Map.create(mtype, 4, 4, max_entries=4) as m:
        assert m.percpu and m.ncpus == n
        m.update(u32(1), [u32(100 + i) for i in range(n)])
        assert m.lookup(u32(1)) == [u32(100 + i) for i in range(n)]
        m.update(u32(2), u32(7))  # one value: every CPU
        assert m.lookup(u32(2)) == [u32(7)] * n
        with pytest.raises(UsageError, match=f"this machine has {n} possible CPUs"):
            m.update(u32(1), [u32(1)] * (n + 1))
        m.pin(os.path.join(pindir, "pc"))
    rows = dict(reopen_items(os.path.join(pindir, "pc")))
    assert rows[u32(1).hex()] == ",".join(u32(100 + i).hex() for i in range(n))


def test_possible_cpus_reads_sysfs():
    text = open("/sys/devices/system/cpu/possible").read().strip()
    last = int(text.replace(",", "-").split("-")[-1])
    assert possible_cpus() >= 1 and possible_cpus() <= last + 1


def test_queue_is_fifo_and_stack_is_lifo(pindir):
    with Map.create("queue", value_size=4, max_entries=3) as q, Map.create("stack", value_size=4, max_entries=3) as s:
        for i in (1, 2, 3):
            q.push(u32(i))
            s.push(u32(i))
        with pytest.raises(MapFull, match="map is full"):
            q.push(u32(4))
        q.push(u32(4), overwrite=True)  # drops the oldest (1)
        assert q.peek() == u32(2)
        assert [q.pop() for _ in range(3)] == [u32(2), u32(3), u32(4)]
        assert [s.pop() for _ in range(3)] == [u32(3), u32(2), u32(1)]
        with pytest.raises(Empty):
            q.pop()
        with pytest.raises(Empty):
            s.peek()
        with pytest.raises(UsageError, match="use 'bpfmap peek', 'bpfmap pop' or 'bpfmap push'"):
            q.keys()
        with pytest.raises(UsageError, match="no keys"):
            q.lookup(b"")


def test_bloom_filter_membership():
    with Map.create("bloom_filter", value_size=8, max_entries=100, map_extra=3) as b:
        b.push(u64(42))
        assert b.peek(u64(42)) is True
        assert b.peek(u64(43)) is False
        with pytest.raises(UsageError, match="cannot give elements back"):
            b.pop()


def test_update_modes():
    with Map.create("hash", 4, 4, max_entries=4) as m:
        with pytest.raises(KeyNotFound):
            m.update(u32(1), u32(1), "exist")
        m.update(u32(1), u32(1), "noexist")
        with pytest.raises(KeyExists, match="key already exists"):
            m.update(u32(1), u32(2), "noexist")
        m.update(u32(1), u32(3), "exist")
        assert m.lookup(u32(1)) == u32(3)
        with pytest.raises(UsageError, match="choose any, exist or noexist"):
            m.update(u32(1), u32(3), "sometimes")


def test_full_map_says_so():
    with Map.create("hash", 4, 4, max_entries=2) as m:
        m.update(u32(1), u32(1))
        m.update(u32(2), u32(2))
        with pytest.raises(MapFull, match="map is full .max_entries reached."):
            m.update(u32(3), u32(3))
        m.update(u32(2), u32(5))  # replacing still works


def test_frozen_map_refuses_updates():
    with Map.create("array", 4, 4, max_entries=2) as m:
        m.update(u32(0), u32(9))
        m.freeze()
        assert m.info().frozen
        with pytest.raises(ReadOnly, match="frozen"):
            m.update(u32(0), u32(1))
        assert m.lookup(u32(0)) == u32(9)


def test_wrong_sizes_are_caught_before_the_kernel():
    with Map.create("hash", 4, 8, max_entries=2) as m:
        with pytest.raises(UsageError, match="3 bytes given, the map's keys are 4 bytes"):
            m.lookup(b"abc")
        with pytest.raises(UsageError, match="4 bytes given, the map's values are 8 bytes"):
            m.update(u32(1), u32(1))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(map_type="hash", value_size=4), "give the key size"),
        (dict(map_type="array", key_size=8, value_size=4), "need a key size of 4, not 8"),
        (dict(map_type="queue", key_size=4, value_size=4), "need a key size of 0"),
        (dict(map_type="hash", key_size=4, value_size=4, name="x" * 16), "at most 15 characters"),
        (dict(map_type="array_of_maps"), "need a template inner map"),
        (dict(map_type="ringbuf", max_entries=1000), "power of two"),
        (dict(map_type="hash", key_size=4, value_size=4, max_entries=0), "at least 1"),
        (dict(map_type="no_such_type"), "unknown map type"),
    ],
)
def test_invalid_combinations_are_explained(kwargs, match):
    with pytest.raises(UsageError, match=match):
        Map.create(**kwargs)


def test_kernel_refusal_on_create_names_the_type():
    # no_common_lru is for LRU maps: our checks pass it, the kernel says EINVAL.
    with pytest.raises(Unsupported, match="create hash: the kernel refused a hash map .* flags no_common_lru"):
        Map.create("hash", 4, 4, flags=MapFlag.NO_COMMON_LRU)
    with pytest.raises(Unsupported, match="too big for a hash map"):
        Map.create("hash", 4, 1 << 30, max_entries=1 << 30)


def test_iteration_survives_deletion_of_the_current_key():
    with Map.create("hash", 4, 4, max_entries=64) as m:
        for i in range(50):
            m.update(u32(i), u32(i))
        seen = []
        for k in m.keys():
            seen.append(k)
            m.delete(k)  # the kernel restarts GET_NEXT_KEY from the first key now
        assert sorted(seen) == sorted(u32(i) for i in range(50))
        assert len(seen) == len(set(seen))
        assert list(m.keys()) == []


def test_iteration_while_another_thread_writes():
    with Map.create("hash", 4, 4, max_entries=512) as m:
        stable = [u32(i) for i in range(100)]
        for k in stable:
            m.update(k, k)
        stop = threading.Event()

        def churn():
            i = 0
            while not stop.is_set():
                k = u32(1000 + i % 200)
                m.update(k, k)
                m.delete(k)
                i += 1

        t = threading.Thread(target=churn)
        t.start()
        try:
            for _ in range(20):
                keys = [k for k, _ in m.items()]
                assert len(keys) == len(set(keys))
                assert set(stable) <= set(keys)
        finally:
            stop.set()
            t.join()


def test_open_by_id_and_name(pindir):
    with Map.create("hash", 4, 4, max_entries=2, name="by_name_t") as m:
        m.update(u32(1), u32(2))
        with Map.open(f"id:{m.id}") as a, Map.open("name:by_name_t") as b:
            assert a.id == b.id == m.id
            assert b.lookup(u32(1)) == u32(2)
    with pytest.raises(NoSuchObject, match="no map with that name"):
        Map.open("name:no_such_map_x")
    with pytest.raises(UsageError, match="id:N with a number"):
        Map.open("id:abc")


def test_name_shared_by_two_maps_is_ambiguous():
    with (
        Map.create("array", 4, 4, max_entries=1, name="twin_t") as a,
        Map.create("array", 4, 4, max_entries=1, name="twin_t") as b,
    ):
        with pytest.raises(UsageError, match=f"2 maps have that name .id:{a.id}, id:{b.id}"):
            Map.open("name:twin_t")


def test_pin_errors(pindir, tmp_path):
    with Map.create("array", 4, 4, max_entries=1) as m:
        path = os.path.join(pindir, "a")
        m.pin(path)
        with pytest.raises(PinExists, match="never replaces"):
            m.pin(path)
        with pytest.raises(NotBpffs, match="mount -t bpf bpf"):
            m.pin(str(tmp_path / "x"))
        with pytest.raises(UsageError, match="does not exist.*or pass mkdir$"):
            m.pin(os.path.join(pindir, "sub", "dir", "a"))
        m.pin(os.path.join(pindir, "sub", "dir", "a"), mkdir=True)
        assert Map.open(os.path.join(pindir, "sub", "dir", "a")).id == m.id
    with pytest.raises(NoSuchObject, match="no such pin"):
        Map.open(os.path.join(pindir, "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotBpffs, match="not on a BPF filesystem"):
        Map.open(str(tmp_path / "file"))


def test_a_pinned_program_is_not_a_map(pindir, program):
    path = os.path.join(pindir, "prog")
    _sys.obj_pin(program.fileno(), path)
    with pytest.raises(WrongObjectType, match="this pin is a prog, not a map"):
        Map.open(path)
    with Program.open(path) as p:
        assert p.id == program.id


def test_prog_array_holds_programs(program):
    with Map.create("prog_array", max_entries=4) as m:
        m.update(u32(1), program)
        assert int.from_bytes(m.lookup(u32(1)), "little") == program.id
        with pytest.raises(UsageError, match="takes a program"):
            m.update(u32(2), Map.create("array", 4, 4, max_entries=1))


@pytest.mark.parametrize("outer", ["array_of_maps", "hash_of_maps"])
def test_maps_of_maps_hold_maps(outer, program):
    with Map.create("array", 4, 4, max_entries=2) as inner, Map.create(outer, 4, max_entries=4, inner_map=inner) as m:
        m.update(u32(0), inner)
        assert int.from_bytes(m.lookup(u32(0)), "little") == inner.id
        with pytest.raises(UsageError, match="takes a map"):
            m.update(u32(1), program)
        with Map.create("array", 4, 8, max_entries=2) as other:  # not like the template
            with pytest.raises(Exception, match="rejected|EINVAL"):
                m.update(u32(1), other)


def test_stream_and_device_maps_can_be_created_and_pinned(pindir):
    for mtype, kwargs in [
        ("ringbuf", {}),
        ("perf_event_array", {}),
        ("devmap", {}),
        ("devmap_hash", {}),
        ("cpumap", {"max_entries": possible_cpus()}),
    ]:
        with Map.create(mtype, **kwargs) as m:
            path = os.path.join(pindir, mtype)
            m.pin(path)
        with Map.open(path, readonly=True) as again:
            assert again.type is MapType.parse(mtype)
            if mtype == "perf_event_array":
                assert again.max_entries == possible_cpus()
            if mtype in ("ringbuf", "perf_event_array"):
                with pytest.raises(UsageError, match="stream of records"):
                    again.keys()


def test_devmap_takes_an_ifindex():
    lo = int(open("/sys/class/net/lo/ifindex").read())
    with Map.create("devmap", max_entries=4) as m:
        m.update(u32(0), u32(lo))
        assert m.lookup(u32(0)) == u32(lo)


def test_info_zeroes_what_the_kernel_leaves_alone(pindir):
    with Map.create("hash", 4, 4, max_entries=3, name="info_t") as m:
        info = m.info()
        assert (info.type, info.key_size, info.value_size, info.max_entries, info.name) == (
            MapType.HASH,
            4,
            4,
            3,
            "info_t",
        )
        assert info.btf_id == 0 and info.btf_key_type_id == 0
        assert info.memlock and info.memlock > 0
        m.pin(os.path.join(pindir, "i"))
        assert m.info(pins=True).pinned == [os.path.join(pindir, "i")]


def test_close_and_context_manager():
    m = Map.create("array", 4, 4, max_entries=1)
    fd = m.fileno()
    with m:
        pass
    assert m.closed
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(ValueError, match="closed"):
        m.lookup(u32(0))


def _run_as_nobody(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` as nobody, after importing bpfmap as root (the interpreter may live under /root)."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    pre = (
        "import os, sys, bpfmap, bpfmap.core.maps\n"
        f"os.setgroups([]); os.setgid({nobody.pw_gid}); os.setuid({nobody.pw_uid})\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-c", pre + code, *args], capture_output=True, text=True, env=env)


@pytest.fixture
def public_bpffs(bpffs):
    """A bpffs in a directory everyone can reach (pytest's temp root is 0700)."""
    import ctypes
    import tempfile

    d = tempfile.mkdtemp(prefix="bpfmapro")
    os.chmod(d, 0o755)
    _sys.mount_bpffs(d)
    os.chmod(d, 0o755)
    yield d
    ctypes.CDLL(None).umount2(d.encode(), 2)
    os.rmdir(d)


def test_readonly_pin_as_non_root(public_bpffs):
    """A 0444 pin read as nobody: works where unprivileged bpf is allowed, else a clear message."""
    path = os.path.join(public_bpffs, "ro")
    with Map.create("array", 4, 4, max_entries=1) as m:
        m.update(u32(0), u32(77))
        m.pin(path)
    os.chmod(path, 0o444)
    code = (
        "from bpfmap import Map, BpfmapError\n"
        "for ro in (True, False):\n"
        "    try:\n        m = Map.open(sys.argv[1], readonly=ro)\n        print(m.lookup(bytes(4)).hex())\n"
        "    except BpfmapError as e:\n        print('ERR', type(e).__name__, e)\n"
    )
    out = _run_as_nobody(code, path)
    assert out.returncode == 0, out.stderr
    read_only, read_write = out.stdout.splitlines()
    # Kernels before 6.4 refuse every bpf(2) command to users without CAP_BPF when
    # unprivileged_bpf_disabled is set; newer ones check only the 0444 file mode here.
    if read_only.startswith("ERR"):
        assert "PermissionDenied" in read_only and "run as root or with CAP_BPF" in read_only
    else:
        assert read_only == u32(77).hex()
    assert read_write.startswith("ERR PermissionDenied") and "permission denied" in read_write


# Every type the core issue names: created, written, pinned, read back by another
# process through the installed command, an element deleted, and the map gone once
# its pin is removed.
LIFECYCLE = [
    ("hash", ["--key", "4", "--value", "4"], "keyed"),
    ("array", ["--value", "4"], "array"),
    ("percpu_hash", ["--key", "4", "--value", "4"], "keyed"),
    ("percpu_array", ["--value", "4"], "array"),
    ("lru_hash", ["--key", "4", "--value", "4"], "keyed"),
    ("lru_percpu_hash", ["--key", "4", "--value", "4"], "keyed"),
    ("lpm_trie", ["--key", "8", "--value", "4"], "keyed"),
    ("queue", ["--value", "4"], "queue"),
    ("stack", ["--value", "4"], "queue"),
    ("bloom_filter", ["--value", "4"], "bloom"),
    ("hash_of_maps", ["--key", "4", "--inner-map", "{inner}"], "maps"),
    ("array_of_maps", ["--inner-map", "{inner}"], "maps"),
    ("prog_array", [], "progs"),
    ("perf_event_array", [], "stream"),
    ("ringbuf", [], "stream"),
    ("devmap", [], "keyed"),
    ("devmap_hash", [], "keyed"),
]


@pytest.mark.parametrize("mtype,args,kind", LIFECYCLE, ids=[c[0] for c in LIFECYCLE])
def test_lifecycle_of_every_type(cli, pindir, program, mtype, args, kind):
    inner = os.path.join(pindir, "inner")
    with Map.create("array", 4, 4, max_entries=1) as tmpl:
        tmpl.pin(inner)
    path = os.path.join(pindir, mtype)
    entries = {"ringbuf": "4096", "perf_event_array": str(possible_cpus())}.get(mtype, "4")
    r = cli(
        "create", mtype, *[a.format(inner=inner) for a in args], "--max-entries", entries, "--pin", path, "-o", "json"
    )
    assert r.returncode == 0, r.stderr
    map_id = __import__("json").loads(r.stdout)["id"]
    key = "08 00 00 00 0a 00 00 00" if mtype == "lpm_trie" else "01 00 00 00"
    lo = open("/sys/class/net/lo/ifindex").read().strip()
    value = {"maps": inner, "progs": f"id:{program.id}"}.get(kind, f"{int(lo):02x} 00 00 00")
    if kind in ("keyed", "array", "maps", "progs"):
        assert cli("update", path, key, value).returncode == 0
        got = cli("lookup", path, key, "-o", "json")
        assert got.returncode == 0, got.stderr
        doc = __import__("json").loads(got.stdout)
        if kind == "maps":
            assert doc["value"] == Map.open(inner).id
        elif kind == "progs":
            assert doc["value"] == program.id
        else:
            assert doc.get("value", (doc.get("values") or [None])[0]) == value
        dumped = cli("dump", path, "-o", "jsonl").stdout
        indexed = type_spec(MapType.parse(mtype)).indexed  # 4-byte indices are numbers without a layout
        shown = '"key": 1,' if indexed else '"key": "10.0.0.0/8"' if mtype == "lpm_trie" else key
        assert shown in dumped
        d = cli("delete", path, key)
        if kind == "array":
            assert d.returncode == 2 and "cannot delete" in d.stderr
        else:
            assert d.returncode == 0 and cli("lookup", path, key).returncode == 1
    elif kind == "queue":
        assert cli("push", path, "2a 00 00 00").returncode == 0
        assert cli("pop", path).stdout == "2a 00 00 00\n"
        assert cli("pop", path).returncode == 1
    elif kind == "bloom":
        assert cli("push", path, "2a 00 00 00").returncode == 0
        assert cli("peek", path, "2a 00 00 00").returncode == 0
    else:
        r = cli("dump", path)
        assert r.returncode == 2 and "stream of records" in r.stderr
    os.unlink(path)
    # The pin was the last reference: the kernel frees the map (asynchronously).  Look
    # for its id without opening it: an open by id takes a user reference, and for a
    # prog_array that restarts the deferred clear that holds the map alive.
    import time

    from bpfmap.core.maps import map_ids

    for _ in range(500):
        if map_id not in set(map_ids()):
            break
        time.sleep(0.01)
    else:
        pytest.fail(f"map id:{map_id} still exists after its pin was removed")


def test_numa_node_sets_its_flag():
    with Map.create("hash", 4, 4, max_entries=4, numa_node=0) as m:
        assert MapFlag.NUMA_NODE in m.info().flags
        m.update(u32(1), u32(2))
        assert m.lookup(u32(1)) == u32(2)


def test_map_on_a_wrong_fd_closes_it_and_says_why():
    """Map(fd) on an fd that is not a map: the error is the kernel's (translated), and the
    fd is closed, not leaked (it used to raise AttributeError from close())."""
    import errno

    from bpfmap.errors import BpfmapError

    r, w = os.pipe()
    try:
        with pytest.raises(BpfmapError):
            Map(r, "pipe")
        with pytest.raises(OSError) as err:
            os.fstat(r)
        assert err.value.errno == errno.EBADF
    finally:
        os.close(w)


def test_opening_maps_past_the_fd_limit_fails_cleanly(pindir):
    """Under a low RLIMIT_NOFILE, opening maps fails with a translated error naming the
    limit, and every fd of a failed open is closed (none leaks, none keeps a map alive)."""
    code = f"""
import os, resource
from bpfmap import Map
from bpfmap.errors import BpfmapError
m = Map.create("hash", 4, 4, max_entries=4)
m.pin({pindir!r} + "/lim")
resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))
held, errors = [], set()
for _ in range(40):
    try:
        held.append(Map.open({pindir!r} + "/lim"))
    except BpfmapError as err:
        errors.add(type(err).__name__ + ": " + str(err))
open_fds = len(os.listdir("/proc/self/fd"))
for h in held:
    h.close()
after = len(os.listdir("/proc/self/fd"))
print(len(held), open_fds, after, sorted(errors))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    held, open_fds, after, errors = out.stdout.split(" ", 3)
    assert 0 < int(held) < 40
    assert int(after) == int(open_fds) - int(held)
    assert "too many open files" in errors and "AttributeError" not in out.stderr
