"""BTF: parse the kernel's, decode maps with it, write it for the maps we create."""

from __future__ import annotations

import json
import os
import random
import subprocess

import pytest
from helpers import compile_bpf
from helpers.layouts import random_side

from bpfmap import Map, possible_cpus
from bpfmap.btf import spec_for
from bpfmap.layout.lang import parse_side


@pytest.mark.kernel
def test_the_kernel_accepts_our_btf():
    rng = random.Random(11)
    for _ in range(20):
        key = parse_side(random_side(rng))
        value = parse_side(random_side(rng))
        if key.size > 512 or value.size > 4096:
            continue
        with Map.create("hash", key.size, value.size, max_entries=4, btf=spec_for(key, value), btf_required=True) as m:
            assert m.btf_id and m.btf_key_type_id and m.btf_value_type_id


def test_created_map_is_pretty_printed_by_bpftool_and_decoded_without_flags(bm, pindir, bpftool):
    pin = f"{pindir}/flows"
    lay = "saddr=ipv4,sport=be16,proto=u8:packets=u64,comm=char[16],hist=u32[2]"
    code, out, err = bm("create", "hash", "--layout", lay, "--pin", pin, "--name", "btflows", "-o", "json")
    assert code == 0 and err == "", err
    info = json.loads(out)
    assert (info["key_size"], info["value_size"], info["btf_id"] > 0) == (8, 32, True)
    assert bm("update", pin, "10.0.0.1,443,6", "9,curl,[1,2]", "-l", lay)[0] == 0
    # no --layout: bpfmap reads the BTF it wrote
    code, out, _ = bm("dump", pin, "-o", "jsonl")
    assert json.loads(out) == {
        "key": {"saddr": "10.0.0.1", "sport": 443, "proto": 6},
        "value": {"packets": 9, "comm": "curl", "hist": [1, 2]},
    }
    assert bm("lookup", pin, "10.0.0.1,443,6")[1] == "packets=9,comm=curl,hist=[1,2]\n"
    # bpftool pretty-prints it with our field names
    dumped = json.loads(
        subprocess.run([bpftool, "-j", "map", "dump", "pinned", pin], capture_output=True, text=True, check=True).stdout
    )
    formatted = dumped[0]["formatted"]
    assert set(formatted["key"]) == {"saddr", "sport", "proto"}
    assert formatted["value"] == {"packets": 9, "comm": "curl", "hist": [1, 2]}
    # an explicit layout still wins; '-:-' is plain hex
    assert bm("dump", pin, "-l", "-:-")[1].startswith("0a 00 00 01 01 bb 06 00\t09 00")
    code, out, _ = bm("show", pin, "-o", "json")
    shown = json.loads(out)
    assert "bpfmap_ipv4 saddr;" in shown["key_type"] and "char comm[16];" in shown["value_type"]


def test_create_from_c_header_carries_its_names(bm, pindir, tmp_path, bpftool):
    header = tmp_path / "k.h"
    header.write_text(
        "#include <linux/types.h>\nenum dir { IN = 1, OUT = 2 };\n"
        "struct conn { __u32 id; enum dir d; unsigned int f: 3, g: 5; };\n"
    )
    pin = f"{pindir}/conns"
    code, out, err = bm(
        "create", "hash", "--c-header", str(header), "--key-type", "__u32", "--value-type", "struct conn", "--pin", pin
    )
    assert code == 0, err
    assert (
        bm(
            "update",
            pin,
            "1",
            '{"id": 7, "d": "OUT", "f": 5, "g": 17}',
            "--c-header",
            str(header),
            "--key-type",
            "__u32",
            "--value-type",
            "struct conn",
        )[0]
        == 0
    )
    assert json.loads(bm("dump", pin, "-o", "jsonl")[1]) == {"key": 1, "value": {"id": 7, "d": "OUT", "f": 5, "g": 17}}
    shown = bm("show", pin)[1]
    assert "struct conn {" in shown and "enum dir d;" in shown and "unsigned int f: 3;" in shown


def test_layout_sizes_must_agree(bm, pindir):
    code, _, err = bm("create", "hash", "--key", "8", "--layout", "u32:u64", "--pin", f"{pindir}/x")
    assert code == 2 and "the layout's key is 4 bytes but --key says 8" in err


def test_btf_refused_is_a_note_or_an_error(bm, pindir):
    code, _, err = bm("create", "queue", "--layout", "a=u32,b=u32", "--pin", f"{pindir}/q")
    assert code == 0
    if err:  # kernels without map_check_btf for queues refuse value BTF
        assert err.startswith("bpfmap: note: ") and "without BTF" in err
        code, _, err = bm("create", "queue", "--layout", "a=u32,b=u32", "--pin", f"{pindir}/q2", "--btf", "required")
        assert code == 3 and "refused" in err and not os.path.exists(f"{pindir}/q2")
    code, out, err = bm("create", "hash", "--layout", "u32:u64", "--btf", "none", "--pin", f"{pindir}/n", "-o", "json")
    assert code == 0 and json.loads(out)["btf_id"] == 0


BPF_PROG = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
    __u8 proto;          /* 3 bytes of padding follow */
    __u32 addr;
    __u16 port;          /* tail padding to 12 */
};

struct flow_stats {
    __u64 packets;
    char comm[16];
    __u32 flags;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, struct flow_key);
    __type(value, struct flow_stats);
} flows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_QUEUE);
    __uint(max_entries, 8);
    __type(value, __u32);
} jobs SEC(".maps");

SEC("socket")
int prog(struct __sk_buff *skb)
{
    __u32 k = 0, job;
    __u64 *v = bpf_map_lookup_elem(&counters, &k);
    struct flow_key fk = {};
    if (v)
        __sync_fetch_and_add(v, 1);
    bpf_map_lookup_elem(&flows, &fk);
    bpf_map_peek_elem(&jobs, &job);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture
def bpf_object(tmp_path, pindir, bpftool):
    src = tmp_path / "prog.c"
    src.write_text(BPF_PROG)
    obj = compile_bpf(src, tmp_path / "prog.o")
    maps = f"{pindir}/maps"
    subprocess.run([bpftool, "prog", "loadall", str(obj), f"{pindir}/progs", "pinmaps", maps], check=True)
    return maps


def test_maps_of_a_real_bpf_object_decode_like_bpftool(bm, bpf_object, bpftool):
    flows = f"{bpf_object}/flows"
    rows = [
        (
            "06 00 00 00 01 02 03 04 50 00 00 00",
            "05 00 00 00 00 00 00 00 "
            + " ".join(f"{b:02x}" for b in b"curl".ljust(16, b"\0"))
            + " 07 00 00 00 00 00 00 00",
        ),
        (
            "11 00 00 00 0a 00 00 01 35 00 00 00",
            "ff 00 00 00 00 00 00 00 "
            + " ".join(f"{b:02x}" for b in b"dns-resolver".ljust(16, b"\0"))
            + " 01 00 00 00 00 00 00 00",
        ),
    ]
    for k, v in rows:
        subprocess.run(
            [bpftool, "map", "update", "pinned", flows, "key", "hex", *k.split(), "value", "hex", *v.split()],
            check=True,
        )
    subprocess.run(
        [
            bpftool,
            "map",
            "update",
            "pinned",
            f"{bpf_object}/counters",
            "key",
            "2",
            "0",
            "0",
            "0",
            "value",
            "42",
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
        ],
        check=True,
    )

    def bpftool_formatted(path):
        out = subprocess.run(
            [bpftool, "-j", "map", "dump", "pinned", path], capture_output=True, text=True, check=True
        ).stdout
        return sorted(
            (json.dumps(e["formatted"]["key"]), e["formatted"].get("value", e["formatted"].get("values")))
            for e in json.loads(out)
        )

    def ours(path):
        code, out, err = bm("dump", path, "-o", "jsonl")
        assert code == 0 and err == "", err
        return sorted(
            (json.dumps(e["key"]), e.get("value", e.get("values"))) for e in map(json.loads, out.splitlines())
        )

    assert ours(flows) == bpftool_formatted(flows)
    assert len(ours(flows)) == 2
    theirs = bpftool_formatted(f"{bpf_object}/counters")
    mine = ours(f"{bpf_object}/counters")
    # bpftool shows per-CPU values as [{"cpu": N, "value": V}]
    assert [(k, [c["value"] for c in v]) for k, v in theirs] == mine
    assert dict(mine)["2"] == [42] * possible_cpus()
    # the queue: value type only, if the kernel kept its BTF; values read back either way
    subprocess.run([bpftool, "map", "push", "pinned", f"{bpf_object}/jobs", "value", "9", "0", "0", "0"], check=True)
    code, out, _ = bm("pop", f"{bpf_object}/jobs", "-o", "json")
    assert code == 0 and json.loads(out)["value"] in (9, "09 00 00 00")
