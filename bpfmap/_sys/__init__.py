"""The only package that imports ctypes or knows syscall numbers and attr layouts.

Private: the library's own layer over bpf(2), not an API (its names change with the code
above it); the public API is the package root's.  Everything here is what the lowest
floor needs at once, so it loads whole."""

from . import attrs
from .attrs import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_F_RDONLY, BPF_F_WRONLY, BPF_NOEXIST, Cmd
from .syscall import (
    BPF_FS_MAGIC,
    VerifierError,
    bpf,
    btf_info,
    btf_load,
    buffer,
    contents,
    fd_kind,
    fdinfo,
    fs_magic,
    get_fd_by_id,
    get_next_id,
    iter_create,
    iter_link,
    map_batch,
    map_count,
    map_create,
    map_elem,
    map_freeze,
    map_info,
    mount_bpffs,
    obj_get,
    obj_pin,
    pidfd_getfd,
    pidfd_open,
    prog_attach,
    prog_detach,
    prog_info,
    prog_load,
    prog_map_ids,
    prog_test_run,
    rename_exchange,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name as True)
if TYPE_CHECKING:
    from .syscall import CBuffer as CBuffer  # a type only: the C buffers buffer() makes

__all__ = [
    "attrs",
    "contents",
    "btf_info",
    "btf_load",
    "Cmd",
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_NOEXIST",
    "BPF_F_LOCK",
    "BPF_F_RDONLY",
    "BPF_F_WRONLY",
    "BPF_FS_MAGIC",
    "bpf",
    "buffer",
    "fd_kind",
    "fdinfo",
    "fs_magic",
    "get_fd_by_id",
    "get_next_id",
    "iter_create",
    "iter_link",
    "map_batch",
    "map_count",
    "map_create",
    "map_elem",
    "map_freeze",
    "map_info",
    "mount_bpffs",
    "rename_exchange",
    "obj_get",
    "obj_pin",
    "pidfd_getfd",
    "pidfd_open",
    "prog_attach",
    "prog_detach",
    "prog_info",
    "prog_map_ids",
    "prog_load",
    "prog_test_run",
    "VerifierError",
]
