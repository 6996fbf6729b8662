"""The only package that imports ctypes or knows syscall numbers and attr layouts."""

from . import attrs
from .attrs import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_F_RDONLY, BPF_F_WRONLY, BPF_NOEXIST, Cmd
from .syscall import (
    BPF_FS_MAGIC,
    bpf,
    btf_info,
    btf_load,
    buffer,
    fd_kind,
    fdinfo,
    fs_magic,
    get_fd_by_id,
    get_next_id,
    map_batch,
    map_create,
    map_elem,
    map_freeze,
    map_info,
    mount_bpffs,
    obj_get,
    obj_pin,
    prog_info,
    prog_load,
    prog_test_run,
    VerifierError,
)

__all__ = [
    "attrs", "btf_info", "btf_load", "Cmd", "BPF_ANY", "BPF_EXIST", "BPF_NOEXIST", "BPF_F_LOCK", "BPF_F_RDONLY",
    "BPF_F_WRONLY", "BPF_FS_MAGIC", "bpf", "buffer", "fd_kind", "fdinfo", "fs_magic",
    "get_fd_by_id", "get_next_id", "map_batch", "map_create", "map_elem", "map_freeze",
    "map_info", "mount_bpffs", "obj_get", "obj_pin", "prog_info", "prog_load",
    "prog_test_run", "VerifierError",
]
