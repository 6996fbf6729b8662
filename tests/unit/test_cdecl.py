"""C declarations: what users' headers hold, checked against gcc's sizeof/offsetof."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bpfmap import UsageError
from bpfmap.layout import Layout
from bpfmap.layout.cdecl import types_from_header
from bpfmap.layout.model import Struct

TYPES_H = r"""
#include <linux/types.h>
#include <stdint.h>
#define TASK_COMM_LEN 16
#define NBUCKETS (4 * 2)

enum proto { P_TCP = 6, P_UDP = 17, P_BIG = 0x80000000 };
enum small { S_A = -1, S_B };

struct flow_key {
    __be32 saddr;
    __be32 daddr;
    __be16 sport;
    __be16 dport;
    __u8 proto;
} __attribute__((packed));

struct __attribute__((__packed__)) tight { uint8_t a; uint64_t b; };

struct bucket { __u32 lo, hi; };

typedef struct {
    __u64 packets;
    __u64 bytes;
    char comm[TASK_COMM_LEN];
    enum proto p;
    struct bucket hist[NBUCKETS];
    unsigned int flag : 1, kind : 3;
    int neg : 5;
    union { __u32 a; __u16 b[2]; };
    unsigned char mac[6];
    _Bool ok;
    double ratio;
    enum small s;
} flow_stats_t;

struct aligned_s { __u8 x; } __attribute__((aligned(8)));
struct with_ptr { void *p; unsigned long ul; long l; unsigned short us; signed char sc; };
union u { __u64 wide; __u8 bytes[8]; };
typedef __u64 counts_t[4];
"""

NOISE = r"""
#include <bpf/bpf_helpers.h>
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct flow_key);
    __type(value, flow_stats_t);
} flows SEC(".maps");

static __always_inline int helper(int x) { return x + 1; }

SEC("xdp")
int prog(struct xdp_md *ctx) {
    struct flow_key k = {};
    void *p = ({ int x = 1; &x; });
    asm volatile("" ::: "memory");
    bpf_map_update_elem(&flows, &k, &k, BPF_ANY);
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
"""

CHECKS = {
    "struct flow_key": ["saddr", "daddr", "sport", "dport", "proto"],
    "struct tight": ["a", "b"],
    "flow_stats_t": ["packets", "bytes", "comm", "p", "hist", "a", "mac", "ok", "ratio", "s"],
    "struct aligned_s": ["x"],
    "struct with_ptr": ["p", "ul", "l", "us", "sc"],
    "union u": ["wide", "bytes"],
}


@pytest.fixture(scope="module")
def gcc_layout(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc")
    d = tmp_path_factory.mktemp("cdecl")
    lines = ["#include <stdio.h>", "#include <stddef.h>", TYPES_H, "int main(void) {"]
    for ctype, fields in CHECKS.items():
        for f in fields:
            lines.append(f'printf("{ctype}.{f} %zu\\n", offsetof({ctype}, {f}));')
        lines.append(f'printf("{ctype} %zu\\n", sizeof({ctype}));')
    lines.append('printf("counts_t %zu\\n", sizeof(counts_t));')
    lines.append("return 0; }")
    (d / "t.c").write_text("\n".join(lines))
    subprocess.run([gcc, "-o", str(d / "t"), str(d / "t.c")], check=True)
    out = subprocess.run([str(d / "t")], capture_output=True, text=True, check=True).stdout
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}


@pytest.mark.parametrize("use_cpp", [True, False], ids=["cpp", "no-cpp"])
@pytest.mark.parametrize("noise", [False, True], ids=["types", "with-bpf-program"])
def test_sizes_and_offsets_match_gcc(gcc_layout, tmp_path, use_cpp, noise):
    if use_cpp and not shutil.which("cpp"):
        pytest.skip("no cpp")
    header = tmp_path / "t.h"
    header.write_text(TYPES_H + (NOISE if noise else ""))
    names = list(CHECKS) + ["counts_t"]
    types = dict(zip(names, types_from_header(str(header), names, use_cpp=use_cpp)))
    for ctype, fields in CHECKS.items():
        t = types[ctype]
        assert t.size == gcc_layout[ctype], ctype
        offsets = {}
        for f in t.fields:
            if f.name:
                offsets[f.name] = f.offset
            elif isinstance(f.type, Struct):  # anonymous union: its members sit at its offset
                for g in f.type.fields:
                    offsets[g.name] = f.offset + g.offset
        for name in fields:
            assert offsets[name] == gcc_layout[f"{ctype}.{name}"], f"{ctype}.{name}"
    assert types["counts_t"].size == gcc_layout["counts_t"]


def test_decoding_through_c_types(tmp_path):
    header = tmp_path / "t.h"
    header.write_text(TYPES_H)
    lay = Layout.from_c(str(header), "struct flow_key", "flow_stats_t")
    key = lay.key.parse("167772161,167772162,80,443,6")
    assert lay.key.decode(key) == {"saddr": 167772161, "daddr": 167772162, "sport": 80, "dport": 443, "proto": 6}
    assert key[:4] == bytes([10, 0, 0, 1])
    assert key[8:10] == b"\x00\x50"  # __be16 is stored big-endian
    value = {
        "packets": 5,
        "bytes": 1500,
        "comm": "curl",
        "p": "P_UDP",
        "hist": [{"lo": i, "hi": i * 2} for i in range(8)],
        "flag": 1,
        "kind": 5,
        "neg": -3,
        "a": 0x01020304,
        "mac": [1, 2, 3, 4, 5, 6],
        "ok": True,
        "ratio": 0.5,
        "s": "S_A",
    }
    raw = lay.value.encode(value)
    got = lay.value.decode(raw)
    assert got["p"] == "P_UDP" and got["s"] == "S_A"
    assert (got["flag"], got["kind"], got["neg"]) == (1, 5, -3)
    assert got["comm"] == "curl" and got["hist"][3] == {"lo": 3, "hi": 6}
    assert got["a"] == 0x01020304 and got["b"] == [0x0304, 0x0102]  # union members overlap
    assert lay.value.encode(got) == raw  # every union member, decoded from the same bytes, writes them back
    assert lay.value.encode({k: v for k, v in got.items() if k != "b"}) == raw  # one member is enough
    with pytest.raises(UsageError, match="missing field.*a or b"):
        lay.value.encode({k: v for k, v in got.items() if k not in ("a", "b")})


def test_enum_by_number_and_unknown_values(tmp_path):
    header = tmp_path / "e.h"
    header.write_text("enum color { RED, GREEN = 5, BLUE };\nstruct v { enum color c; };")
    lay = Layout.from_c(str(header), None, "struct v")
    assert lay.value.decode(lay.value.encode({"c": "BLUE"})) == {"c": "BLUE"}
    assert lay.value.decode((9).to_bytes(4, "little")) == {"c": 9}
    with pytest.raises(UsageError, match="'PINK' is not one of RED, GREEN, BLUE"):
        lay.value.encode({"c": "PINK"})


@pytest.mark.parametrize(
    "text,ctype,match",
    [
        ("struct a { int x; };", "struct nope", "struct nope is not defined .*defined: struct a"),
        ("struct a { int x; };", "nope_t", "is the type declared"),
        ("struct a { int x[]; };", "struct a", "without a size"),
        ("struct a { int x; ", "struct a", "C header"),
        ("struct a { long double x; };", "struct a", "long double"),
    ],
)
def test_errors_name_the_problem(tmp_path, text, ctype, match):
    header = tmp_path / "bad.h"
    header.write_text(text)
    with pytest.raises(UsageError, match=match):
        Layout.from_c(str(header), ctype, None)


def test_missing_header(tmp_path):
    with pytest.raises(UsageError, match="No such file"):
        Layout.from_c(str(tmp_path / "none.h"), "int", None)


def test_an_include_not_found_names_include_dirs(tmp_path):
    """Python callers read the parameter's name, the command line its option."""
    from bpfmap.cli import worded

    header = tmp_path / "k.h"
    header.write_text('#include "missing.h"\nstruct k { my_t a; };\n')
    with pytest.raises(UsageError) as err:
        Layout.from_c(str(header), "struct k", None)
    assert str(err.value).endswith("includes not found: missing.h (add their directory to include_dirs)")
    assert worded(err.value).endswith("includes not found: missing.h (add their directory to --include-dir)")
