"""Maps saved to a file and read back: every type that can be read round-trips, its dump
byte for byte the live map's (maps bpfmap makes, and the BTF maps of real programs); a
saved file reads without root, bpffs or BPF; what cannot be saved is refused with why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest
from helpers import BPF_SOURCES, cli_ok, compile_bpf, create_pin, fill_pin, need_tool, run_cli

import bpfmap
from bpfmap import Map

FORMATS = ("text", "jsonl", "json", "csv")


def assert_same_dumps(live: str, file: str, *extra: str) -> None:
    for fmt in FORMATS:
        a, b = run_cli("dump", live, "-o", fmt, *extra), run_cli("dump", file, "-o", fmt, *extra)
        assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
        assert a.stdout == b.stdout, fmt
        assert a.stdout


MAPS = {
    "hash": (("hash", "--layout", "u32:packets=u64,bytes=u64"), [(i, (i, i * 100)) for i in range(300)]),
    "lru_hash": (("lru_hash", "--layout", "u64:u32", "--max-entries", "512"), [(i * 7, i) for i in range(200)]),
    "array": (("array", "--layout", "u32:s64", "--max-entries", "64"), [(i, -i) for i in range(64)]),
    "percpu_hash": (("percpu_hash", "--layout", "u32:u64"), [(i, i * 3) for i in range(50)]),
    "percpu_array": (("percpu_array", "--layout", "u32:u32", "--max-entries", "16"), [(i, i) for i in range(16)]),
    "lru_percpu_hash": (("lru_percpu_hash", "--layout", "u32:u16"), [(i, i) for i in range(40)]),
    "lpm_trie": (
        ("lpm_trie", "--layout", "prefixlen=u32,addr=ipv4:u32", "--max-entries", "64"),
        [(f"10.{i}.0.0/16", i) for i in range(20)],
    ),
    "hex": (("hash", "--key", "6", "--value", "3"), [(bytes([i, 0, 1, 2, 3, 4]), bytes([i, i, i])) for i in range(30)]),
}


@pytest.mark.parametrize("kind", sorted(MAPS))
def test_a_saved_map_dumps_byte_for_byte_as_the_live_one(pindir, tmp_path, kind):
    args, pairs = MAPS[kind]
    pin = create_pin(pindir, kind, *args)
    fill_pin(pin, pairs)
    file = str(tmp_path / f"{kind}.bpfmap")
    cli_ok("save", pin, file)
    assert_same_dumps(pin, file)
    for extra in (["--sort", "key", "--top", "5"], ["-o", "table"]):
        a, b = run_cli("dump", pin, *extra), run_cli("dump", file, *extra)
        assert (a.returncode, a.stdout) == (b.returncode, b.stdout)
    with Map.open(pin) as live, Map.open(file) as saved:
        assert list(saved.items()) == list(live.items())
        assert (saved.type, saved.key_size, saved.value_size, saved.max_entries, saved.flags) == (
            live.type,
            live.key_size,
            live.value_size,
            live.max_entries,
            live.flags,
        )
        first = live.next_key()
        assert saved.lookup(first) == live.lookup(first)
        assert saved.next_key(first) == live.next_key(first)


def test_per_cpu_options_where_and_as_read_a_saved_map_as_a_live_one(pindir, tmp_path):
    pin = create_pin(pindir, "pc", "percpu_hash", "--layout", "u32:u64")
    fill_pin(pin, [(i, i) for i in range(20)])
    file = str(tmp_path / "pc.bpfmap")
    cli_ok("save", pin, file)
    for extra in (["--percpu", "sum"], ["--cpu", "0"], ["--where", "key>=10"], ["--sort", "key", "--reverse"]):
        assert_same_dumps(pin, file, *extra)
    first = cli_ok("getnext", pin).stdout.split()[0]  # a key with one after it in the map's own order
    for verb, *rest in (("lookup", "3"), ("count",), ("getnext",), ("getnext", first), ("show", "-o", "text")):
        a, b = run_cli(verb, pin, *rest), run_cli(verb, file, *rest)
        assert a.returncode == b.returncode == 0, (verb, a.stderr, b.stderr)
        if verb != "show":
            assert a.stdout == b.stdout, verb
    show = run_cli("show", file).stdout
    assert "saved from" in show and "operations: lookup, dump, watch, getnext\n" in show


def load_object(name: str, bpffs: str, tmp_path) -> str:
    """tests/bpf/NAME.bpf.c compiled and loaded by libbpf (bpftool), its maps pinned: the directory."""
    bpftool = need_tool("bpftool")
    obj = compile_bpf(os.path.join(BPF_SOURCES, f"{name}.bpf.c"), tmp_path / f"{name}.o")
    root = os.path.join(bpffs, f"disk{uuid.uuid4().hex[:8]}")
    os.mkdir(root)
    subprocess.run([bpftool, "prog", "loadall", obj, f"{root}/progs", "pinmaps", f"{root}/maps"], check=True)
    return root


@pytest.fixture
def globals_maps(bpffs, tmp_path):
    root = load_object("globals", bpffs, tmp_path)
    with bpfmap.Program.open(f"{root}/progs/count") as p:
        for _ in range(3):
            p.test_run(bytes(64))
    yield f"{root}/maps"
    shutil.rmtree(root)


def test_the_btf_maps_of_a_real_program_save_whole_and_dump_as_live(globals_maps, tmp_path):
    file = str(tmp_path / "globals.bpfmap")
    r = cli_ok("save", globals_maps, file)
    names = sorted(os.listdir(globals_maps))
    assert f"{len(names)} maps" in r.stderr
    for name in names:
        assert_same_dumps(os.path.join(globals_maps, name), f"{file}:{name}")
    with Map.open(f"{file}:globals.rodata") as m:  # libbpf's map name; the frozen .rodata stays frozen
        assert m.frozen and m.btf() is not None


def test_a_directory_saves_what_it_can_and_says_what_it_left_out(pindir, tmp_path):
    counts = create_pin(pindir, "counts", "hash", "--layout", "u32:u64")
    fill_pin(counts, [(1, 2)])
    create_pin(pindir, "jobs", "queue", "--layout", "u32", "--max-entries", "4")
    create_pin(pindir, "rb", "ringbuf")
    file = str(tmp_path / "dir.bpfmap")
    r = cli_ok("save", pindir, file)
    assert "left out" in r.stderr and "jobs" in r.stderr and "takes them out" in r.stderr
    assert "rb" in r.stderr and "stream of records" in r.stderr
    assert run_cli("dump", f"{file}:counts").stdout == run_cli("dump", counts).stdout
    r = run_cli("save", os.path.join(pindir, "jobs"), str(tmp_path / "q.bpfmap"))
    assert r.returncode == 2 and "queue map cannot be saved" in r.stderr
    assert not os.path.exists(tmp_path / "q.bpfmap")


def test_a_saved_file_reads_without_privileges_bpffs_or_bpf(pindir, tmp_path):
    need_tool("unshare")
    need_tool("setpriv")
    pin = create_pin(pindir, "flows", "hash", "--layout", "u32:packets=u64,comm=char[8]")
    fill_pin(pin, [(i, (i, f"p{i}")) for i in range(10)])
    file = str(tmp_path / "flows.bpfmap")
    cli_ok("save", pin, file)
    want = run_cli("dump", pin, "-o", "jsonl").stdout
    # a mount namespace with no bpffs anywhere, and a process with no capabilities at all
    script = (
        "umount -l /sys/fs/bpf 2>/dev/null; "
        "grep -q ' bpf ' /proc/self/mounts && grep ' bpf ' /proc/self/mounts | cut -d' ' -f2 | xargs -r umount -l; "
        "exec setpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all --no-new-privs -- "
        '"$@"'
    )
    base = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    python = [os.sys.executable]
    probe = subprocess.run(
        [*base, *python, "-c", "import bpfmap; bpfmap.Map.create('array', 4, 4, 1)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode != 0 and "PermissionDenied" in probe.stderr  # no BPF for this process
    mounts = subprocess.run([*base, "cat", "/proc/self/mounts"], capture_output=True, text=True, timeout=60).stdout
    assert " bpf " not in mounts
    r = subprocess.run([*base, *python, "-m", "bpfmap", "dump", file, "-o", "jsonl"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want


def test_hist_watch_and_export_read_a_saved_file_as_the_live_map(pindir, tmp_path):
    lat = create_pin(pindir, "lat", "array", "--layout", "u32:u64", "--max-entries", "16")
    fill_pin(lat, [(i, i * i) for i in range(16)])
    file = str(tmp_path / "lat.bpfmap")
    cli_ok("save", lat, file)
    for args in (("hist",), ("hist", "--percentiles", "50,99", "-o", "json")):
        a, b = run_cli(args[0], lat, *args[1:]), run_cli(args[0], file, *args[1:])
        assert a.returncode == b.returncode == 0 and a.stdout == b.stdout, (args, a.stderr, b.stderr)
    a, b = (run_cli("watch", m, "--count", "1", "-o", "jsonl") for m in (lat, file))
    assert b.returncode == 0, b.stderr
    strip = lambda out: {k: v for k, v in json.loads(out).items() if k != "time"}  # noqa: E731
    assert strip(a.stdout) == strip(b.stdout)
    for m, name in ((lat, "live"), (file, "saved")):
        (tmp_path / f"{name}.yaml").write_text(f"metrics:\n  - name: lat_total\n    map: {m}\n")
    a, b = (run_cli("export", str(tmp_path / f"{n}.yaml"), "--once") for n in ("live", "saved"))
    assert b.returncode == 0, b.stderr
    series = lambda out: [ln for ln in out.splitlines() if ln.startswith("lat_total")]  # noqa: E731
    assert series(a.stdout) == series(b.stdout) and len(series(a.stdout)) == 16


def test_save_replaces_only_a_regular_file_and_leaves_nothing_on_a_full_disk(pindir, tmp_path):
    """A saved file is written whole, then moved into place: over a regular file only,
    never over a device node (it turned /dev/full into a file), a symbolic link, or to
    '-'; a disk that fills says so, leaves no partial file, and keeps the old file."""
    pin = create_pin(pindir, "c", "hash", "--layout", "u32:u64")
    fill_pin(pin, [(i, i) for i in range(200)])
    device = tmp_path / "full"
    os.mknod(device, 0o666 | 0o020000, os.makedev(1, 7))  # a character device: /dev/full's numbers
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    for target in (str(device), "-", str(link)):
        r = run_cli("save", pin, target)
        assert r.returncode == 2 and "save to" in r.stderr, (target, r.stderr)
    assert os.path.exists(device) and not os.path.isfile(device)  # still the device
    assert link.is_symlink() and not os.path.lexists(tmp_path / "elsewhere")
    assert not os.path.lexists("-")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(tiny)], check=True)
    try:
        old = tiny / "x.bpfmap"
        old.write_bytes(b"old")
        r = run_cli("save", pin, str(old), "--level", "0")
        assert r.returncode == 3, r.stderr
        assert "cannot write it: No space left on device" in r.stderr and str(old) in r.stderr
        assert sorted(os.listdir(tiny)) == ["x.bpfmap"] and old.read_bytes() == b"old"
    finally:
        subprocess.run(["umount", str(tiny)], check=True)
