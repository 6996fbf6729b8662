"""BPF programs for tests: the C programs in tests/bpf/ compiled, loaded by libbpf
(bpftool prog loadall ... pinmaps) and run with BPF_PROG_TEST_RUN (Loaded,
loaded_program); an object declaring maps of every kind (OBJECT_SOURCE); assembler text
(RINGBUF_TWICE, ringbuf_output, update_elem, packet_to_ringbuf)."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import uuid

import pytest

from bpfmap import Program

from . import BPF_SOURCES, compile_bpf, need_tool

SOURCES = BPF_SOURCES


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
    obj = compile_bpf(os.path.join(SOURCES, f"{name}.bpf.c"), tmp_path_factory.mktemp(name) / f"{name}.o")
    root = os.path.join(bpffs, f"{name}{uuid.uuid4().hex[:8]}")
    os.mkdir(root)
    loaded = Loaded(obj, root)
    subprocess.run([bpftool, "prog", "loadall", obj, loaded.progs, "pinmaps", loaded.maps], check=True)
    return loaded


def loaded_program(name: str):
    """A module-scoped fixture: tests/bpf/NAME.bpf.c compiled, loaded by libbpf, pinned;
    everything it pinned removed after the module."""

    @pytest.fixture(scope="module")
    def fixture(bpffs, tmp_path_factory):
        loaded = load(name, bpffs, tmp_path_factory)
        yield loaded
        subprocess.run(["rm", "-rf", loaded.root])

    return fixture


def kernel_version_code() -> int:
    import re

    major, minor, patch = (int(x) for x in re.findall(r"\d+", os.uname().release.split("-")[0])[:3])
    return (major << 16) + (minor << 8) + min(patch, 255)


def sample(pid: int, usecs: int, comm: str) -> bytes:
    return struct.pack("<II16s", pid, usecs, comm.encode())


def ringbuf_output(size: int, map_name: str) -> str:
    """Assembler lines sending the ``size`` bytes at r10 - size to ring buffer ``map_name``
    (r0: 0 or the error)."""
    return f"""
    r1 = map[{map_name}]
    r2 = r10
    r2 += -{size}
    r3 = {size}
    r4 = 0
    call ringbuf_output
"""


def update_elem(map_name: str, key_at: int, value_at: int) -> str:
    """Assembler lines writing the key at r10 - key_at and the value at r10 - value_at into
    ``map_name`` (flags 0: any; r0: 0 or the error)."""
    return f"""
    r1 = map[{map_name}]
    r2 = r10
    r2 += -{key_at}
    r3 = r10
    r3 += -{value_at}
    r4 = 0
    call map_update_elem
"""


def packet_to_ringbuf(size: int, map_name: str = "ev") -> str:
    """A socket filter sending the ``size`` bytes after the test packet's Ethernet header
    as a ring buffer record."""
    return f"""
    r2 = 0
    r3 = r10
    r3 += -{size}
    r4 = {size}
    call skb_load_bytes
    {ringbuf_output(size, map_name)}
    r0 = 0
    exit
"""


# writes two 24-byte records {pid, comm[16], pad} ('pid=u32,comm=char[16]' reads their start)
RINGBUF_TWICE = f"""
    r1 = 0
    *(u64 *)(r10 - 24) = r1
    *(u64 *)(r10 - 16) = r1
    *(u64 *)(r10 - 8) = r1
    r1 = 42
    *(u32 *)(r10 - 24) = r1
    r1 = 0x6c7275
    *(u32 *)(r10 - 20) = r1
    {ringbuf_output(24, "rb") * 2}
    r0 = 0
    exit
"""


# an object declaring maps of every kind libbpf makes: BTF-defined, per-CPU, LRU, ring buffer,
# map-in-map with initial slots and an inner map declared inline
OBJECT_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key { __u32 saddr, daddr; __u16 sport, dport; __u8 proto; };
struct flow_stats { __u64 packets, bytes; char comm[16]; };

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct flow_key);
    __type(value, struct flow_stats);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 128);
    __uint(map_flags, BPF_F_NO_COMMON_LRU);
    __type(key, __u64);
    __type(value, __u32);
} recent SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

struct inner_map {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 4);
    __type(key, __u32);
    __array(values, struct inner_map);
} outer SEC(".maps") = {
    .values = { [1] = &inner_a, [3] = &inner_b },
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
    __uint(max_entries, 8);
    __type(key, __u32);
    __array(values, struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 16);
        __type(key, __u32);
        __type(value, __u32);
    });
} by_cpu SEC(".maps");

SEC("socket")
int prog(struct __sk_buff *skb)
{
    __u32 k = 0;
    struct flow_key fk = {};
    __u64 *v = bpf_map_lookup_elem(&counters, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    bpf_map_lookup_elem(&flows, &fk);
    void *in = bpf_map_lookup_elem(&outer, &k);
    if (in)
        bpf_map_lookup_elem(in, &k);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

OBJECT_MAPS = ["inner_a", "inner_b", "outer", "counters", "flows", "recent", "events", "by_cpu"]  # in ELF order


def object_mutants(data: bytes, n: int, seed: int):
    """Bit flips, random words, truncations and damaged section headers of ``data``."""
    rng = random.Random(seed)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shnum = struct.unpack_from("<H", data, 0x3C)[0]
    for _ in range(n):
        b = bytearray(data)
        kind = rng.randrange(4)
        if kind == 0:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            b = b[: rng.randrange(len(b))]
        elif kind == 2:
            i = rng.randrange(len(b) - 8)
            b[i : i + 8] = rng.getrandbits(64).to_bytes(8, "little")
        else:  # sh_name, sh_type, sh_offset, sh_size, sh_link or sh_info of one section
            i = shoff + 64 * rng.randrange(shnum) + rng.choice([0, 4, 0x18, 0x20, 0x28, 0x2C])
            b[i : i + 4] = rng.getrandbits(32).to_bytes(4, "little")
        yield bytes(b)
