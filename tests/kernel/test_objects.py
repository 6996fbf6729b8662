"""Maps from compiled BPF objects: read like libbpf reads them, created like libbpf creates
them (bpftool's map show agrees on every field), and accepted by libbpf itself: its
pin-by-name check reuses our pins when bpftool loads the object's program."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import pytest
from helpers import BPFMAP_SH, compile_bpf, need_tool, run_cli
from helpers.programs import OBJECT_MAPS

from bpfmap import Map, possible_cpus
from bpfmap.errors import NotBpffs, PinExists, UsageError
from bpfmap.objects import create_maps, read_object


def _in_namespace(script: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a mount namespace of its own with a fresh bpffs on /sys/fs/bpf:
    libbpf pins LIBBPF_PIN_BY_NAME maps under /sys/fs/bpf, and this keeps the real one clean."""
    unshare = need_tool("unshare")
    need_tool("bpftool")
    # $BPFMAP unquoted in the script: the checkout's command, one word or several (python -m bpfmap)
    full = f"set -e; mount -t bpf bpf /sys/fs/bpf; BPFMAP={shlex.quote(BPFMAP_SH)}\n{script}"
    return subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", full], capture_output=True, text=True, timeout=120
    )


SHOW_FIELDS = ("type", "name", "flags", "bytes_key", "bytes_value", "max_entries", "bytes_memlock", "frozen")


@pytest.mark.kernel
def test_maps_match_what_libbpf_creates(obj):
    """Ours (create --from-object) and libbpf's (bpftool prog loadall ... pinmaps), side by
    side in the same namespace; bpftool's map show must agree on every field but ids."""
    # libbpf pins the pin-by-name map under /sys/fs/bpf whatever pinmaps says, and refuses
    # a second path for it: so its maps go to /sys/fs/bpf/NAME, ours to /sys/fs/bpf/ours/NAME
    shows = " ".join(f"bpftool -j map show pinned {{d}}/{n};" for n in OBJECT_MAPS)
    outer = "bpftool -j map dump pinned {d}/outer;"
    script = f"""
mkdir /sys/fs/bpf/ours
$BPFMAP create --from-object {obj} --pin-dir /sys/fs/bpf/ours -q
bpftool prog loadall {obj} /sys/fs/bpf/progs pinmaps /sys/fs/bpf
echo '=== ours'; {shows.format(d="/sys/fs/bpf/ours")} echo; {outer.format(d="/sys/fs/bpf/ours")}
echo '=== libbpf'; {shows.format(d="/sys/fs/bpf")} echo; {outer.format(d="/sys/fs/bpf")}
"""
    r = _in_namespace(script)
    assert r.returncode == 0, r.stderr
    ours_text, libbpf_text = r.stdout.split("=== ours")[1].split("=== libbpf")
    decoder = json.JSONDecoder()

    def objects(text):
        out, i = [], 0
        text = text.strip()
        while i < len(text):
            o, j = decoder.raw_decode(text, i)
            out.append(o)
            i = j
            while i < len(text) and text[i].isspace():
                i += 1
        return out

    ours, theirs = objects(ours_text), objects(libbpf_text)
    assert len(ours) == len(theirs) == len(OBJECT_MAPS) + 1
    for a, b in zip(ours[:-1], theirs[:-1]):
        assert {k: a.get(k) for k in SHOW_FIELDS} == {k: b.get(k) for k in SHOW_FIELDS}
        assert ("btf_id" in a) == ("btf_id" in b), (a, b)
    # map-in-map slots: the same slots filled, each with the map of the same name
    ids_ours = {m["id"]: m["name"] for m in ours[:-1]}
    ids_theirs = {m["id"]: m["name"] for m in theirs[:-1]}

    def slots(dump, ids):
        return {
            bytes(int(x, 16) for x in e["key"])[0]: ids.get(
                int.from_bytes(bytes(int(x, 16) for x in e["value"]), "little")
            )
            for e in dump
        }

    assert slots(ours[-1], ids_ours) == slots(theirs[-1], ids_theirs) == {1: "inner_a", 3: "inner_b"}


@pytest.mark.kernel
def test_libbpf_reuses_our_pins(obj):
    """libbpf's own compatibility check: with our maps pinned where it looks for the
    pin-by-name map, bpftool's loader takes them instead of making its own; an
    incompatible pin makes it fail, as it makes us fail."""
    script = f"""
$BPFMAP create --from-object {obj} --pin-dir /sys/fs/bpf -q
$BPFMAP show /sys/fs/bpf/flows -o json
bpftool prog load {obj} /sys/fs/bpf/prog map name counters pinned /sys/fs/bpf/counters
bpftool -j prog show pinned /sys/fs/bpf/prog
echo
rm /sys/fs/bpf/flows
$BPFMAP create hash --key 16 --value 32 --max-entries 99 --pin /sys/fs/bpf/flows -q
if bpftool prog load {obj} /sys/fs/bpf/prog2 2>/dev/null; then echo LIBBPF-ACCEPTED; else echo LIBBPF-REFUSED; fi
"""
    r = _in_namespace(script)
    assert r.returncode == 0, r.stderr
    decoder = json.JSONDecoder()
    flows, i = decoder.raw_decode(r.stdout)
    prog, _ = decoder.raw_decode(r.stdout[i:].strip())
    with_counters = prog["map_ids"]
    assert flows["id"] in with_counters  # pin by name: libbpf took ours
    assert r.stdout.rstrip().endswith("LIBBPF-REFUSED")


def test_incompatible_pin_is_refused_and_nothing_is_created(obj, pindir):
    run = lambda *a: run_cli(*a)  # noqa: E731
    r = run(
        "create",
        "lru_hash",
        "--key",
        "8",
        "--value",
        "4",
        "--max-entries",
        "64",
        "--pin",
        os.path.join(pindir, "recent"),
        "-q",
    )
    assert r.returncode == 0
    r = run("create", "--from-object", obj, "--pin-dir", pindir)
    assert r.returncode == 3 and r.stderr.count("\n") == 1
    assert (
        "max_entries 64 (pinned) vs 128 (object)" in r.stderr and "map_flags none (pinned) vs no_common_lru" in r.stderr
    )
    assert sorted(os.listdir(pindir)) == ["recent"]  # nothing else was made
    with pytest.raises(PinExists):
        create_maps(read_object(obj), pindir)
    assert sorted(os.listdir(pindir)) == ["recent"]


def test_create_maps_checks_the_pin_directory_first(obj, pindir, tmp_path):
    """create --from-object's directory checks, in the library's one call: a directory off a
    bpffs says how to mount one, a missing one is made with mkdir; nothing is made before."""
    parsed = read_object(obj)
    with pytest.raises(NotBpffs, match=f"create from_object {obj}: {tmp_path} is not on a BPF filesystem; mount"):
        create_maps(parsed, str(tmp_path))
    deep = f"{pindir}/sub/dir"
    with pytest.raises(UsageError, match=f"create from_object {obj}: directory {deep} does not exist"):
        create_maps(parsed, deep, ["flows"])
    assert os.listdir(pindir) == []
    made = create_maps(parsed, deep, ["flows"], mkdir=True)
    try:
        with Map.open(f"{deep}/flows") as pinned:
            assert [c.path for c in made] == [pinned.ref] and pinned.id == made[0].map.id
    finally:
        for c in made:
            c.map.close()


def test_reuse_only_and_show(obj, pindir):
    r = run_cli("create", "--from-object", obj, "--pin-dir", pindir, "--only", "flows,counters", "-o", "json")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert [m["name"] for m in made] == ["counters", "flows"] and sorted(os.listdir(pindir)) == ["counters", "flows"]
    again = run_cli("create", "--from-object", obj, "--pin-dir", pindir, "--only", "flows", "-o", "json")
    assert json.loads(again.stdout)[0]["id"] == made[1]["id"] and "reused" in again.stderr
    # the map carries the object's BTF: dump decodes the struct with no layout
    with Map.open(os.path.join(pindir, "flows")) as m:
        m.update(bytes(16), (3).to_bytes(8, "little") + bytes(24))
    dumped = json.loads(run_cli("dump", os.path.join(pindir, "flows"), "-o", "jsonl").stdout)
    assert dumped["value"]["packets"] == 3 and set(dumped["key"]) == {"saddr", "daddr", "sport", "dport", "proto"}
    shown = json.loads(run_cli("show", "--object", obj, "-o", "json").stdout)
    assert [d["name"] for d in shown] == OBJECT_MAPS and shown[4]["pinning"] == "by_name"
    assert "slots 1=inner_a, 3=inner_b" in run_cli("show", "--object", obj).stdout
    for bad in (
        ["create", "hash", "--from-object", obj, "--pin-dir", pindir],
        ["create", "--from-object", obj],
        ["create", "--from-object", obj, "--pin-dir", pindir, "--only", "nope"],
        ["show", os.path.join(pindir, "flows"), "--object", obj],
    ):
        r = run_cli(*bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (bad, r.stderr)


def test_events_decode_records_with_a_type_from_the_object(obj, pindir):
    from helpers.events import Producer

    path = os.path.join(pindir, "rb")
    assert run_cli("create", "ringbuf", "--pin", path, "-q").returncode == 0
    with Map.open(path) as rb:
        prod = Producer(rb, record_size=32)  # {u32 len, u32 0xabcd, zeros}: a struct flow_stats's size
        prod.run(2)
        prod.close()
    r = run_cli("events", path, "--object", obj, "--value-type", "struct flow_stats", "--count", "2", "-o", "jsonl")
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["value"] for x in r.stdout.splitlines()] == [
        {"packets": n | (0xABCD << 32), "bytes": 0, "comm": ""} for n in (0, 1)
    ]
    r = run_cli("events", path, "--object", obj, "--value-type", "struct nope", "--count", "1")
    assert r.returncode == 2 and "no type 'struct nope'" in r.stderr


EXTERNS = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern int LINUX_KERNEL_VERSION __kconfig;
%s
struct v { __u64 a; char name[8]; };
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, struct v);
} counts SEC(".maps");
SEC("tc")
int prog(struct __sk_buff *skb)
{
    __u32 k = LINUX_KERNEL_VERSION;
    %s
    bpf_map_lookup_elem(&counts, &k);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("ksym", [False, True], ids=["kconfig-extern", "ksym-function"])
def test_objects_with_externs(tmp_path, pindir, ksym):
    """An extern __kconfig variable is laid out as libbpf lays out .kconfig (the object's
    BTF then loads); an extern __ksym function makes the kernel refuse the object's BTF,
    and the map gets BTF generated from its types instead, with a note."""
    decl, call = ("extern void bpf_rcu_read_lock(void) __ksym;", "bpf_rcu_read_lock();") if ksym else ("", "")
    (tmp_path / "e.c").write_text(EXTERNS % (decl, call))
    out = compile_bpf(tmp_path / "e.c", tmp_path / "e.o")
    r = run_cli("create", "--from-object", out, "--pin-dir", pindir, "-o", "json")
    assert r.returncode == 0, r.stderr
    assert ("generated from their key and value types" in r.stderr) is ksym
    shown = json.loads(run_cli("show", os.path.join(pindir, "counts"), "-o", "json").stdout)
    assert shown["btf_id"] and "char name[8];" in shown["value_type"]


MACHINE_FACTS = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} pb SEC(".maps");
SEC("tc")
int prog(struct __sk_buff *skb)
{
    __u64 v = LINUX_KERNEL_VERSION + CONFIG_BPF_SYSCALL;
    bpf_perf_event_output(skb, &pb, BPF_F_CURRENT_CPU, &v, sizeof(v));
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_reading_an_object_is_the_same_on_any_machine(tmp_path, pindir, monkeypatch):
    """What depends on the machine (possible CPUs for a perf buffer's max_entries, the
    kernel's config and version for .kconfig) is not read with the object: the same file
    reads the same whatever the machine says; creating the maps resolves it."""
    from helpers.programs import kernel_version_code

    import bpfmap.core.values as values
    import bpfmap.objects.kconfig as kconfig

    (tmp_path / "m.c").write_text(MACHINE_FACTS)
    out = compile_bpf(tmp_path / "m.c", tmp_path / "m.o")
    first = [d.to_dict() for d in read_object(out).maps]
    with monkeypatch.context() as mp:
        mp.setattr(values, "possible_cpus", lambda: 977)
        mp.setattr(kconfig, "_kernel_config", lambda: {"CONFIG_BPF_SYSCALL": "n"})
        mp.setattr(kconfig, "_release_numbers", lambda: ["9", "9", "9"])
        again = [d.to_dict() for d in read_object(out).maps]
    assert first == again
    pb = next(d for d in first if d["name"] == "pb")
    assert pb["max_entries"] is None
    r = run_cli("show", "--object", out)
    assert "max_entries (possible CPUs)" in r.stdout, r.stdout
    created = {c.definition.name: c for c in create_maps(read_object(out), pindir)}
    try:
        assert created["pb"].map.max_entries == possible_cpus()
        kc = created[next(n for n in created if n.endswith(".kconfig"))].map
        value = kc.lookup(bytes(4))
        assert int.from_bytes(value[:4], "little") == kernel_version_code()
    finally:
        for c in created.values():
            c.map.close()


LEGACY = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct legacy_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct legacy_def SEC("maps") counts = { .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 8, .max_entries = 16 };
SEC("socket") int prog(struct __sk_buff *skb) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_legacy_maps_section_is_refused_the_same_way_everywhere(tmp_path, pindir):
    """A SEC("maps") definition (struct bpf_map_def), which libbpf >= 1.0 refuses: show
    --object and create --from-object both exit 2 naming the section (show printed
    nothing and exit 0 before)."""
    (tmp_path / "l.c").write_text(LEGACY)
    out = compile_bpf(tmp_path / "l.c", tmp_path / "l.o")
    shown = run_cli("show", "--object", out)
    made = run_cli("create", "--from-object", out, "--pin-dir", pindir)
    for r in (shown, made):
        assert r.returncode == 2 and r.stdout == ""
        assert "section 'maps' holds legacy map definitions" in r.stderr and 'SEC(".maps")' in r.stderr
    assert shown.stderr == made.stderr
    assert os.listdir(pindir) == []
