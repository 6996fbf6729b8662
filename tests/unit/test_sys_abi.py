"""The ctypes attr structs against the installed linux/bpf.h, with gcc as the oracle."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import pytest

from bpfmap._sys import attrs

HEADER = "/usr/include/linux/bpf.h"

# (our struct, C expression naming the same member of union bpf_attr or the struct)
CASES = [
    (
        attrs.MapCreateAttr,
        "union bpf_attr",
        "",
        [
            "map_type",
            "key_size",
            "value_size",
            "max_entries",
            "map_flags",
            "inner_map_fd",
            "numa_node",
            "map_name",
            "map_ifindex",
            "btf_fd",
            "btf_key_type_id",
            "btf_value_type_id",
            "btf_vmlinux_value_type_id",
            "map_extra",
        ],
    ),
    (attrs.MapElemAttr, "union bpf_attr", "", ["map_fd", "key", "value", "flags"]),
    (
        attrs.MapBatchAttr,
        "union bpf_attr",
        "batch.",
        ["in_batch", "out_batch", "keys", "values", "count", "map_fd", "elem_flags", "flags"],
    ),
    (attrs.ObjAttr, "union bpf_attr", "", ["pathname", "bpf_fd", "file_flags"]),
    (attrs.GetIdAttr, "union bpf_attr", "", ["start_id", "next_id", "open_flags"]),
    (attrs.InfoAttr, "union bpf_attr", "info.", ["bpf_fd", "info_len", "info"]),
    (
        attrs.ProgLoadAttr,
        "union bpf_attr",
        "",
        [
            "prog_type",
            "insn_cnt",
            "insns",
            "license",
            "log_level",
            "log_size",
            "log_buf",
            "kern_version",
            "prog_flags",
            "prog_name",
            "prog_ifindex",
            "expected_attach_type",
            "prog_btf_fd",
            "func_info_rec_size",
            "func_info",
            "func_info_cnt",
            "line_info_rec_size",
            "line_info",
            "line_info_cnt",
            "attach_btf_id",
        ],
    ),
    (attrs.ProgAttachAttr, "union bpf_attr", "", ["target_fd", "attach_bpf_fd", "attach_type", "attach_flags"]),
    (attrs.IterCreateAttr, "union bpf_attr", "iter_create.", ["link_fd", "flags"]),
    (
        attrs.ProgInfo,
        "struct bpf_prog_info",
        "",
        [
            "type",
            "id",
            "tag",
            "jited_prog_len",
            "xlated_prog_len",
            "jited_prog_insns",
            "xlated_prog_insns",
            "load_time",
            "created_by_uid",
            "nr_map_ids",
            "map_ids",
            "name",
        ],
    ),
    (
        attrs.ProgTestRunAttr,
        "union bpf_attr",
        "test.",
        [
            "prog_fd",
            "retval",
            "data_size_in",
            "data_size_out",
            "data_in",
            "data_out",
            "repeat",
            "duration",
            "ctx_size_in",
            "ctx_size_out",
            "ctx_in",
            "ctx_out",
            "flags",
            "cpu",
            "batch_size",
        ],
    ),
    (attrs.BtfLoadAttr, "union bpf_attr", "", ["btf", "btf_log_buf", "btf_size", "btf_log_size", "btf_log_level"]),
    (attrs.BtfInfo, "struct bpf_btf_info", "", ["btf", "btf_size", "id", "name", "name_len", "kernel_btf"]),
    (
        attrs.BpfMapInfo,
        "struct bpf_map_info",
        "",
        [
            "type",
            "id",
            "key_size",
            "value_size",
            "max_entries",
            "map_flags",
            "name",
            "ifindex",
            "btf_vmlinux_value_type_id",
            "netns_dev",
            "netns_ino",
            "btf_id",
            "btf_key_type_id",
            "btf_value_type_id",
            "map_extra",
        ],
    ),
]


@pytest.fixture(scope="module")
def c_offsets(tmp_path_factory):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None or not __import__("os").path.exists(HEADER):
        pytest.skip("needs gcc and linux/bpf.h")
    lines = [
        "#include <stdio.h>",
        "#include <stddef.h>",
        f"#include <{HEADER[len('/usr/include/') :]}>",
        "int main(void) {",
    ]
    for cls, ctype, prefix, fields in CASES:
        for f in fields:
            lines.append(
                f'printf("{cls.__name__}.{f} %zu %zu\\n", offsetof({ctype}, {prefix}{f}), '
                f"sizeof((({ctype} *)0)->{prefix}{f}));"
            )
    lines.append('printf("sizeof.MapInfo %zu 0\\n", sizeof(struct bpf_map_info));')
    lines.append("return 0; }")
    d = tmp_path_factory.mktemp("abi")
    src, exe = d / "abi.c", d / "abi"
    src.write_text("\n".join(lines))
    subprocess.run([gcc, "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        name, off, size = line.split()
        table[name] = (int(off), int(size))
    return table


@pytest.mark.parametrize("cls,ctype,prefix,fields", CASES, ids=[c[0].__name__ for c in CASES])
def test_offsets_match_the_header(c_offsets, cls, ctype, prefix, fields):
    # A batch member starts at offset 0 of the union, so offsets compare directly.
    for f in fields:
        ours = getattr(cls, f)
        assert (ours.offset, ours.size) == c_offsets[f"{cls.__name__}.{f}"], f"{cls.__name__}.{f}"


def test_map_info_size(c_offsets):
    assert ctypes.sizeof(attrs.BpfMapInfo) == c_offsets["sizeof.MapInfo"][0]


def _header_enum(name: str) -> list[str]:
    text = open(HEADER).read()
    body = re.search(r"enum %s \{(.*?)\};" % name, text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return [m.group(1) for m in re.finditer(r"^\s*([A-Z0-9_]+)\s*(?:,|$)", body, re.M)]


def test_command_numbers_match_the_header():
    if not __import__("os").path.exists(HEADER):
        pytest.skip("no linux/bpf.h")
    names = _header_enum("bpf_cmd")
    commands = {name: value for name, value in vars(attrs.Cmd).items() if name.isupper()}
    assert len(commands) > 20
    for name, value in commands.items():
        assert names.index("BPF_" + name) == value, name


def test_every_header_map_type_is_known():
    from bpfmap.types import MapType

    if not __import__("os").path.exists(HEADER):
        pytest.skip("no linux/bpf.h")
    names = _header_enum("bpf_map_type")
    assert len(names) > 20
    for i, name in enumerate(names):
        assert MapType[name.removeprefix("BPF_MAP_TYPE_")] == i, name
