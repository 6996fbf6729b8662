"""The public API: what `import bpfmap` offers, and what it does not load."""

from __future__ import annotations

import struct

import bpfmap


def test_map_create_takes_a_spec(bpffs):
    spec = bpfmap.MapSpec.of("hash", key_size=4, value_size=8, max_entries=16, name="spec_t")
    with bpfmap.Map.create(spec) as m:
        info = m.info()
        assert (info.type_name, info.key_size, info.value_size, info.max_entries, info.name) == (
            "hash",
            4,
            8,
            16,
            "spec_t",
        )
        assert spec.compatible(info) == []
        other = spec.replace(max_entries=32)
        assert other.compatible(info) == ["max_entries 16 (pinned) vs 32 (spec)"]
    # the same fields positionally or by name, types and flags by name: one parameter list
    with bpfmap.Map.create("lru_hash", 4, 8, 16, flags="no_common_lru", name="kw_t") as m:
        info = m.info()
        assert (info.type_name, info.max_entries, info.flags.labels()) == ("lru_hash", 16, ["no_common_lru"])
    direct = bpfmap.MapSpec(type="hash", key_size=4, value_size=8, flags="no_prealloc")
    assert direct == bpfmap.MapSpec.of("hash", 4, 8, flags=bpfmap.MapFlag.NO_PREALLOC)
    with pytest.raises(bpfmap.UsageError, match="not both"):
        bpfmap.Map.create(spec, 4)
    with pytest.raises(bpfmap.UsageError, match="unknown map type"):
        bpfmap.MapSpec("hashh")


# -- the typed, dict-like API -----------------------------------------------------------------

import ctypes  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
from helpers import examples, need_tool  # noqa: E402
from helpers.layouts import random_side, value_for  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bpfmap.layout import Layout  # noqa: E402
from bpfmap.view import record  # noqa: E402

FLOW = "saddr=ipv4,daddr=ipv4,sport=be16,dport=be16,proto=u8:packets=u64,bytes=u64,comm=char[16]"


def test_open_and_create_give_a_dict_like_view(pindir):
    pin = f"{pindir}/flows"
    with bpfmap.create("hash", layout=FLOW, pin=pin, max_entries=64) as flows:
        flows[("10.0.0.1", "10.0.0.2", 1234, 443, 6)] = {"packets": 1, "bytes": 60, "comm": "curl"}
        flows["10.0.0.3,10.0.0.2,40000,53,17"] = "packets=7,bytes=900,comm=dig"  # the CLI's text forms
    with bpfmap.open(pin) as flows:  # the layout comes back from the BTF create attached
        assert len(flows) == 2
        got = dict(flows.items())
        key = next(k for k in got if k.dport == 443)
        assert (key.saddr, key.sport, got[key].packets, got[key].comm) == ("10.0.0.1", 1234, 1, "curl")
        assert key._asdict()["proto"] == 6 and key in flows and flows[key] == got[key]
        flows[key] = got[key]._replace(packets=2)  # a record goes back in
        assert flows[key].packets == 2 and flows.get(key._replace(dport=1)) is None
        del flows[key]
        with pytest.raises(KeyError):
            flows[key]
        with pytest.raises(bpfmap.KeyNotFound):
            del flows[key]
        assert [k.dport for k in flows] == [53] and [v.comm for v in flows.values()] == ["dig"]
        assert flows.clear() == 1 and len(flows) == 0
    with bpfmap.open(pin, readonly=True) as flows, pytest.raises(bpfmap.ReadOnly):
        flows[("10.0.0.1", "10.0.0.2", 1, 2, 3)] = (1, 2, "x")


def test_ctypes_structures_as_a_layout(pindir):
    class Key(ctypes.Structure):
        _fields_ = [("pid", ctypes.c_uint32), ("cpu", ctypes.c_uint16)]

    class Value(ctypes.Structure):
        _fields_ = [("count", ctypes.c_uint64), ("comm", ctypes.c_char * 8), ("hist", ctypes.c_uint32 * 2)]

    with bpfmap.create("hash", layout=(Key, Value), pin=f"{pindir}/ct", max_entries=8) as m:
        assert (m.map.key_size, m.map.value_size) == (ctypes.sizeof(Key), ctypes.sizeof(Value))
        m[Key(42, 1)] = Value(7, b"bash", (1, 2))  # ctypes instances in
        got = m[(42, 1)]
        assert (got.count, got.comm, got.hist) == (7, "bash", (1, 2))
        raw = m.map.lookup(bytes(Key(42, 1)))
        assert Value.from_buffer_copy(raw).count == 7  # and the bytes are what ctypes lays out


def test_per_cpu_values_and_their_aggregates(bpffs):
    with bpfmap.Map.create("percpu_hash", 4, 8, 4) as raw:
        counters = raw.view("u32:u64")
        n = bpfmap.possible_cpus()
        counters[0] = 3  # one value for every CPU
        assert counters[0] == [3] * n and counters.sum(0) == 3 * n and counters.max(0) == 3
        counters[1] = list(range(1, n + 1))  # one per CPU
        assert counters.sum(1) == n * (n + 1) // 2 and counters.min(1) == 1 and counters.avg(1) == (n + 1) / 2
    with bpfmap.Map.create("hash", 4, 8, 4) as plain_map:
        plain_map.view("u32:u64")[5] = 9
        assert plain_map.view("u32:u64").sum(5) == 9  # the identity on a map that is not per-CPU
        assert not plain_map.closed  # a View over a Map it does not own leaves it open


def _created(call: str, pin: str, name: str, **kw):
    if call == "Map.create":
        return bpfmap.Map.create("hash", 4, 8, 4, name=name, pin=pin, **kw)
    return bpfmap.create("hash", "u32:u64", pin, max_entries=4, name=name, **kw).map


@pytest.mark.parametrize("call", ["Map.create", "bpfmap.create"])
def test_create_checks_the_pin_before_it_makes_the_map(call, pindir, tmp_path):
    """create --pin's checks, in the one call a Python caller makes: a pin is never
    replaced and a refused one leaves no map behind, a directory off a bpffs says how to
    mount one, missing directories are made with mkdir."""
    taken = f"{pindir}/taken"
    with bpfmap.Map.create("array", 4, 4, 1, pin=taken) as first:
        assert first.ref == taken and first.info().pinned == [taken]
    name = "p" + os.urandom(6).hex()
    with pytest.raises(bpfmap.PinExists, match="never replaces a pin"):
        _created(call, taken, name)
    with bpfmap.Map.open(taken) as still:
        assert still.id == first.id  # the pin holds the map it held
    with pytest.raises(bpfmap.NoSuchObject):
        bpfmap.Map.open(f"name:{name}")  # and none was made: the pin was checked first
    with pytest.raises(bpfmap.NotBpffs, match=f"{tmp_path} is not on a BPF filesystem; mount one with 'mount -t bpf"):
        _created(call, str(tmp_path / "m"), name)
    deep = f"{pindir}/sub/dir/m"
    with pytest.raises(bpfmap.UsageError, match="does not exist"):
        _created(call, deep, name)
    with _created(call, deep, name, mkdir=True) as made, bpfmap.Map.open(deep) as again:
        assert again.id == made.id and made.ref == deep


@pytest.mark.kernel
def test_create_mounts_a_bpffs_on_sys_fs_bpf_unless_told_not_to():
    """With a pin under /sys/fs/bpf and no bpffs there, create mounts one first (as the
    command line does unless --no-mount); mount=False leaves it to the caller.  In a mount
    namespace of its own, with a tmpfs hiding the host's bpffs: nothing reaches the host."""
    script = """
import bpfmap
try:
    bpfmap.Map.create("array", 4, 4, 1, pin="/sys/fs/bpf/d/m", mkdir=True, mount=False)
except bpfmap.NotBpffs as err:
    print("refused:", err)
print("bpffs before:", bpfmap.is_bpffs("/sys/fs/bpf"))
with bpfmap.Map.create("array", 4, 4, 1, pin="/sys/fs/bpf/d/m", mkdir=True) as m:
    print("bpffs after:", bpfmap.is_bpffs("/sys/fs/bpf"), m.info().pinned)
"""
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(bpfmap.__file__).parents[1]))
    r = subprocess.run(
        [need_tool("unshare"), "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs none /sys/fs/bpf && "$@"']
        + ["sh", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "refused: pin /sys/fs/bpf/d/m: /sys/fs/bpf is not on a BPF filesystem; mount one with "
        "'mount -t bpf bpf /sys/fs/bpf'",
        "bpffs before: False",
        "bpffs after: True ['/sys/fs/bpf/d/m']",
    ]


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False), st.data())
def test_records_round_trip_through_random_layouts(bpffs, rng: random.Random, data):
    text = random_side(rng)
    lay = Layout.parse(f"u32:{text}")
    value = value_for(lay.value.type, data.draw)
    decoded = lay.value.decode(lay.value.encode(value))
    with bpfmap.Map.create("hash", 4, lay.value.size, 4) as m:
        view = m.view(f"u32:{text}")
        view[1] = record(decoded)  # records (nested, arrays as tuples) go back in as they came out
        assert view[1] == record(decoded)
        assert {view[1]: 1}  # hashable
        assert m.lookup(struct.pack("I", 1)) == lay.value.encode(decoded)


def test_library_dump_writes_what_the_cli_writes(bm, pindir):
    """bpfmap.dump is the dump the CLI calls: the same bytes for every format and option."""
    import io

    pin = f"{pindir}/lib"
    lay = "k=u32:n=u64,comm=char[8]"
    assert bm("create", "percpu_hash", "--layout", lay, "--pin", pin)[0] == 0
    for k in range(1, 40):
        assert (
            bm("update", pin, str(k), *[f"n={k * 10 + c},comm=c{k % 3}" for c in range(bpfmap.possible_cpus())])[0] == 0
        )
    cases = [
        ("text", {}, []),
        ("jsonl", {}, []),
        ("json", {"percpu": "sum"}, ["--percpu", "sum"]),
        ("csv", {"cpu": 0}, ["--cpu", "0"]),
        ("jsonl", {"percpu": "max", "sort": "n", "top": 5}, ["--percpu", "max", "--sort", "n", "--top", "5"]),
    ]
    with bpfmap.Map.open(pin) as m:
        for fmt, options, args in cases:
            out = io.StringIO()
            n = bpfmap.dump(m, out, fmt, **options)
            code, cli_out, err = bm("dump", pin, "-o", fmt, *args)
            assert code == 0, err
            assert out.getvalue() == cli_out, (fmt, options)
            assert n == (5 if "top" in options else 39)
        with pytest.raises(bpfmap.UsageError, match="not both"):
            bpfmap.dump(m, io.StringIO(), "text", percpu="sum", cpu=0)


def test_a_map_reached_through_its_module_has_view(pindir):
    """Map.view works however Map is reached in a fresh interpreter: through the package
    root (whose names load lazily) or straight from bpfmap.core.maps."""
    import subprocess
    import sys

    pin = os.path.join(pindir, "m")
    with bpfmap.Map.create("hash", 4, 8, max_entries=4) as m:
        m.update((1).to_bytes(4, sys.byteorder), (7).to_bytes(8, sys.byteorder))
        m.pin(pin)
    for code in (
        "from bpfmap.core.maps import Map; print(Map.open(PIN).view('u32:u64')[1])",
        "import bpfmap.core.maps as maps; print(maps.Map.open(PIN).view('u32:u64')[1])",
        "import bpfmap; print(bpfmap.Map.open(PIN).view('u32:u64')[1])",
    ):
        r = subprocess.run([sys.executable, "-c", code.replace("PIN", repr(pin))], capture_output=True, text=True)
        assert (r.returncode, r.stdout) == (0, "7\n"), (code, r.stderr)
