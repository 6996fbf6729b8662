"""The kernel's bpf(2) ABI: command numbers, attr structs and info structs.

Every structure mirrors the matching member of ``union bpf_attr`` (or
``struct bpf_map_info``) in ``/usr/include/linux/bpf.h`` field by field, with
implicit padding written out and every user pointer as a 64-bit integer, the way
cilium/ebpf's ``internal/sys/types.go`` does.  ``tests/test_sys_abi.py`` checks
every offset against what gcc computes from the installed header.
"""

from __future__ import annotations

import ctypes
from ctypes import c_char, c_uint8, c_uint32, c_uint64

OBJ_NAME_LEN = 16


class Cmd:
    """enum bpf_cmd, as plain integers (no enum module: the one-entry verbs' quick path
    loads this module, and ``enum`` costs it as much as its own work)."""

    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    OBJ_PIN = 6
    OBJ_GET = 7
    PROG_ATTACH = 8
    PROG_DETACH = 9
    PROG_TEST_RUN = 10
    PROG_GET_NEXT_ID = 11
    MAP_GET_NEXT_ID = 12
    PROG_GET_FD_BY_ID = 13
    MAP_GET_FD_BY_ID = 14
    OBJ_GET_INFO_BY_FD = 15
    BTF_LOAD = 18
    BTF_GET_FD_BY_ID = 19
    MAP_LOOKUP_AND_DELETE_ELEM = 21
    MAP_FREEZE = 22
    BTF_GET_NEXT_ID = 23
    MAP_LOOKUP_BATCH = 24
    MAP_LOOKUP_AND_DELETE_BATCH = 25
    MAP_UPDATE_BATCH = 26
    MAP_DELETE_BATCH = 27
    LINK_CREATE = 28
    ITER_CREATE = 33


# Element update flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK).
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4

# file_flags / open_flags for OBJ_GET and *_GET_FD_BY_ID.
BPF_TRACE_ITER = 28  # enum bpf_attach_type: iterator programs

BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4


PROG_TYPE_SOCKET_FILTER = 1  # enum bpf_prog_type: bpfmap.core.program.ProgType names them all

# BPF_PROG_TEST_RUN flags
BPF_F_TEST_RUN_ON_CPU = 1 << 0


class _Attr(ctypes.Structure):
    """Base for attr structs: zeroed on construction, as the kernel requires."""

    def __init__(self, **fields: int) -> None:
        ctypes.memset(ctypes.addressof(self), 0, ctypes.sizeof(self))
        super().__init__(**fields)


class MapCreateAttr(_Attr):
    """BPF_MAP_CREATE."""

    _fields_ = [
        ("map_type", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("inner_map_fd", c_uint32),
        ("numa_node", c_uint32),
        ("map_name", c_char * OBJ_NAME_LEN),
        ("map_ifindex", c_uint32),
        ("btf_fd", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("map_extra", c_uint64),
    ]


class MapElemAttr(_Attr):
    """BPF_MAP_*_ELEM; ``value`` doubles as ``next_key`` for GET_NEXT_KEY."""

    _fields_ = [
        ("map_fd", c_uint32),
        ("_pad0", c_uint32),
        ("key", c_uint64),
        ("value", c_uint64),
        ("flags", c_uint64),
    ]


class MapBatchAttr(_Attr):
    """BPF_MAP_*_BATCH (the ``batch`` member)."""

    _fields_ = [
        ("in_batch", c_uint64),
        ("out_batch", c_uint64),
        ("keys", c_uint64),
        ("values", c_uint64),
        ("count", c_uint32),
        ("map_fd", c_uint32),
        ("elem_flags", c_uint64),
        ("flags", c_uint64),
    ]


class ObjAttr(_Attr):
    """BPF_OBJ_PIN and BPF_OBJ_GET."""

    _fields_ = [
        ("pathname", c_uint64),
        ("bpf_fd", c_uint32),
        ("file_flags", c_uint32),
    ]


class GetIdAttr(_Attr):
    """BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID; ``start_id`` is also map_id/prog_id/btf_id."""

    _fields_ = [
        ("start_id", c_uint32),
        ("next_id", c_uint32),
        ("open_flags", c_uint32),
    ]


class InfoAttr(_Attr):
    """BPF_OBJ_GET_INFO_BY_FD (the ``info`` member)."""

    _fields_ = [
        ("bpf_fd", c_uint32),
        ("info_len", c_uint32),
        ("info", c_uint64),
    ]


class ProgLoadAttr(_Attr):
    """BPF_PROG_LOAD, up to ``prog_name`` (the kernel takes a shorter attr)."""

    _fields_ = [
        ("prog_type", c_uint32),
        ("insn_cnt", c_uint32),
        ("insns", c_uint64),
        ("license", c_uint64),
        ("log_level", c_uint32),
        ("log_size", c_uint32),
        ("log_buf", c_uint64),
        ("kern_version", c_uint32),
        ("prog_flags", c_uint32),
        ("prog_name", c_char * OBJ_NAME_LEN),
        ("prog_ifindex", c_uint32),
        ("expected_attach_type", c_uint32),
        ("prog_btf_fd", c_uint32),
        ("func_info_rec_size", c_uint32),
        ("func_info", c_uint64),
        ("func_info_cnt", c_uint32),
        ("line_info_rec_size", c_uint32),
        ("line_info", c_uint64),
        ("line_info_cnt", c_uint32),
        ("attach_btf_id", c_uint32),
    ]


class ProgAttachAttr(_Attr):
    """BPF_PROG_ATTACH and BPF_PROG_DETACH."""

    _fields_ = [
        ("target_fd", c_uint32),
        ("attach_bpf_fd", c_uint32),
        ("attach_type", c_uint32),
        ("attach_flags", c_uint32),
    ]


class LinkCreateAttr(_Attr):
    """BPF_LINK_CREATE, with an iterator's bpf_iter_link_info (``iter_info``)."""

    _fields_ = [
        ("prog_fd", c_uint32),
        ("target_fd", c_uint32),
        ("attach_type", c_uint32),
        ("flags", c_uint32),
        ("iter_info", c_uint64),
        ("iter_info_len", c_uint32),
    ]


class IterCreateAttr(_Attr):
    """BPF_ITER_CREATE."""

    _fields_ = [("link_fd", c_uint32), ("flags", c_uint32)]


class ProgTestRunAttr(_Attr):
    """BPF_PROG_TEST_RUN (``union bpf_attr.test``)."""

    _fields_ = [
        ("prog_fd", c_uint32),
        ("retval", c_uint32),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("data_in", c_uint64),
        ("data_out", c_uint64),
        ("repeat", c_uint32),
        ("duration", c_uint32),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("ctx_in", c_uint64),
        ("ctx_out", c_uint64),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
        ("_pad", c_uint32),
    ]


class BpfMapInfo(_Attr):
    """struct bpf_map_info."""

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("name", c_char * OBJ_NAME_LEN),
        ("ifindex", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("btf_id", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("_pad0", c_uint32),
        ("map_extra", c_uint64),
    ]


class BtfLoadAttr(_Attr):
    """BPF_BTF_LOAD."""

    _fields_ = [
        ("btf", c_uint64),
        ("btf_log_buf", c_uint64),
        ("btf_size", c_uint32),
        ("btf_log_size", c_uint32),
        ("btf_log_level", c_uint32),
    ]


class BtfInfo(_Attr):
    """struct bpf_btf_info."""

    _fields_ = [
        ("btf", c_uint64),
        ("btf_size", c_uint32),
        ("id", c_uint32),
        ("name", c_uint64),
        ("name_len", c_uint32),
        ("kernel_btf", c_uint32),
    ]


class ProgInfo(_Attr):
    """struct bpf_prog_info up to ``name``; the kernel fills what fits (``map_ids``: a
    buffer of ``nr_map_ids`` u32 the caller provides)."""

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("tag", c_uint8 * 8),
        ("jited_prog_len", c_uint32),
        ("xlated_prog_len", c_uint32),
        ("jited_prog_insns", c_uint64),
        ("xlated_prog_insns", c_uint64),
        ("load_time", c_uint64),
        ("created_by_uid", c_uint32),
        ("nr_map_ids", c_uint32),
        ("map_ids", c_uint64),
        ("name", c_char * OBJ_NAME_LEN),
    ]
