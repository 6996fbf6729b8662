"""The one place that makes the bpf(2) syscall, plus the few other system calls
bpfmap needs (statfs for the bpffs check, mount to create one)."""

from __future__ import annotations

import ctypes
import errno
import os

from .attrs import (
    BPF_TRACE_ITER,
    BpfMapInfo,
    BtfInfo,
    BtfLoadAttr,
    Cmd,
    GetIdAttr,
    InfoAttr,
    IterCreateAttr,
    LinkCreateAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    ObjAttr,
    ProgAttachAttr,
    ProgInfo,
    ProgLoadAttr,
    ProgTestRunAttr,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads the name as True)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol

    CBuffer = ctypes.Array[ctypes.c_char]  # what buffer() makes: the bytes a kernel call reads or fills

    class CreateParams(Protocol):
        """What MAP_CREATE takes of a map's description (bpfmap.MapSpec, resolved): every
        field that is not the inner map's fd or BTF's."""

        @property
        def type(self) -> int: ...
        @property
        def key_size(self) -> int | None: ...
        @property
        def value_size(self) -> int | None: ...
        @property
        def max_entries(self) -> int | None: ...
        @property
        def flags(self) -> int | None: ...
        @property
        def name(self) -> str: ...
        @property
        def numa_node(self) -> int | None: ...
        @property
        def map_extra(self) -> int: ...


# __NR_bpf per architecture (arch/*/entry/syscalls or include/uapi/asm-generic/unistd.h).
_NR_BPF = {
    "x86_64": 321,
    "aarch64": 280,
    "arm64": 280,
    "riscv64": 280,
    "loongarch64": 280,
    "s390x": 351,
    "ppc64le": 361,
    "i686": 357,
    "armv7l": 386,
}

BPF_FS_MAGIC = 0xCAFE4A11

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]


def _nr_bpf() -> int:
    machine = os.uname().machine
    try:
        return _NR_BPF[machine]
    except KeyError:
        raise OSError(f"bpfmap does not know the bpf(2) syscall number on {machine}") from None


NR_BPF = _nr_bpf()


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    """Call bpf(cmd, &attr, sizeof(attr)); return the result or raise OSError(errno)."""
    ret: int = _syscall(NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


# -- helpers that build one attr each -------------------------------------------------


# pidfd_open and pidfd_getfd: the same numbers on every architecture (new syscalls are)
NR_PIDFD_OPEN, NR_PIDFD_GETFD = 434, 438
PIDFD_THREAD = os.O_EXCL  # pidfd_open: a thread's pidfd (Linux 6.9)


# glibc's mallopt(3) parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def retain_heap(mmap_below: int = 32 << 20, trim_above: int = 256 << 20) -> bool:
    """Ask glibc's malloc to serve blocks below ``mmap_below`` bytes from the heap (not
    each from an mmap of its own, unmapped again when freed) and to keep up to
    ``trim_above`` bytes of freed heap: a long-running process that allocates and frees
    the same large buffers over and over (a scrape's) then reuses their pages instead of
    faulting fresh ones in each time.  False where the C library has no mallopt (musl)
    or refuses the values."""
    mallopt = getattr(_libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_below)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_above))


def pidfd_open(pid: int, thread: bool = False) -> int:
    """A pidfd of process ``pid`` (``thread``: of a thread that need not lead its group)."""
    ret: int = _syscall(NR_PIDFD_OPEN, pid, PIDFD_THREAD if thread else 0, 0)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """A duplicate of fd ``target_fd`` of the process ``pidfd`` refers to (ptrace rights)."""
    ret: int = _syscall(NR_PIDFD_GETFD, pidfd, target_fd, 0)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def _addr(buf: CBuffer | None) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


def buffer(data: bytes | int) -> CBuffer:
    """A C buffer holding ``data`` (bytes) or ``data`` zero bytes (int)."""
    if isinstance(data, int):
        return ctypes.create_string_buffer(max(data, 1))
    return ctypes.create_string_buffer(data, max(len(data), 1))


def contents(buf: CBuffer, size: int) -> bytes:
    """The first ``size`` bytes of a C buffer, copied out."""
    return ctypes.string_at(buf, size)


def map_create(
    spec: CreateParams,
    inner_map_fd: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
) -> int:
    """BPF_MAP_CREATE for ``spec`` (sizes and max_entries filled in); returns the fd."""
    attr = MapCreateAttr(
        map_type=int(spec.type),
        key_size=spec.key_size or 0,
        value_size=spec.value_size or 0,
        max_entries=spec.max_entries or 0,
        map_flags=int(spec.flags or 0),
        inner_map_fd=inner_map_fd,
        numa_node=spec.numa_node or 0,
        map_name=spec.name.encode(),  # type: ignore[arg-type]  # a c_char array field takes bytes
        btf_fd=btf_fd,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
        map_extra=spec.map_extra,
    )
    return bpf(Cmd.MAP_CREATE, attr)


def map_elem(cmd: int, fd: int, key: CBuffer | None, value: CBuffer | None, flags: int = 0) -> None:
    """LOOKUP/UPDATE/DELETE/GET_NEXT_KEY/LOOKUP_AND_DELETE: ``value`` is next_key for GET_NEXT_KEY."""
    bpf(cmd, MapElemAttr(map_fd=fd, key=_addr(key), value=_addr(value), flags=flags))


def map_freeze(fd: int) -> None:
    bpf(Cmd.MAP_FREEZE, MapElemAttr(map_fd=fd))


def map_batch(
    cmd: int,
    fd: int,
    keys: CBuffer | None,
    values: CBuffer | None,
    count: int,
    in_batch: CBuffer | None = None,
    out_batch: CBuffer | None = None,
    elem_flags: int = 0,
) -> tuple[int, int]:
    """One *_BATCH call: (elements processed, errno or 0).  Batch calls report a count
    even when they fail (ENOENT at the end of a lookup, E2BIG on a full map), so the
    errno is returned rather than raised."""
    attr = MapBatchAttr(
        in_batch=_addr(in_batch),
        out_batch=_addr(out_batch),
        keys=_addr(keys),
        values=_addr(values),
        count=count,
        map_fd=fd,
        elem_flags=elem_flags,
    )
    ret = _syscall(NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    return attr.count, (ctypes.get_errno() if ret < 0 else 0)


BATCH_BYTES = 1 << 20  # a batch's key + value buffers aim at this size
AUTO_BATCH_MAX = 65536  # and hold at most this many elements: decoded, each costs ~100+ bytes of Python objects


def batches_enabled() -> bool:
    """Whether reads may use batch operations: not with BPFMAP_NO_BATCH set (to 1, or
    anything but 0), which forces the per-element path."""
    return os.environ.get("BPFMAP_NO_BATCH", "") in ("", "0")


def batch_elements(entry: int) -> int:
    """Elements a batch reads of entries ``entry`` bytes each (key and value stride): as
    many as fit BATCH_BYTES, 64 to AUTO_BATCH_MAX (every batch read's default)."""
    return max(64, min(AUTO_BATCH_MAX, BATCH_BYTES // max(entry, 1)))


def batch_reads(
    cmd: int, fd: int, key_size: int, value_size: int, first: int, full: int
) -> Iterator[tuple[CBuffer, CBuffer, int]]:
    """Every element of the map at ``fd`` read by ``cmd`` (BPF_MAP_LOOKUP_BATCH, or
    LOOKUP_AND_DELETE_BATCH to drain it): (keys, values, count) for each batch, the C
    buffers themselves (copy what you keep before the next), ``first`` elements in the
    first batch and ``full`` in the others (``value_size``: the value stride); a hash
    bucket holding more than a batch doubles it.  OSError for any error but the end
    (EINVAL on the first call: no batch operations for this map or kernel)."""
    n = first
    keys, values = buffer(n * key_size), buffer(n * value_size)
    in_b, out_b, other = None, buffer(max(key_size, 4)), buffer(max(key_size, 4))
    while True:
        count, err = map_batch(cmd, fd, keys, values, n, in_b, out_b)
        if err == errno.ENOSPC and count == 0:
            n *= 2  # a hash bucket holds more than a batch: grow and retry from the same place
            keys, values = buffer(n * key_size), buffer(n * value_size)
            continue
        if err and err != errno.ENOENT:
            raise OSError(err, os.strerror(err))
        if count:
            yield keys, values, count
        if err == errno.ENOENT:
            return
        if n < full:
            n = full
            keys, values = buffer(n * key_size), buffer(n * value_size)
        in_b, out_b = out_b, other if in_b is None else in_b  # where the next batch starts, and room for the one after


def map_count(fd: int, key_size: int, value_size: int, batch: int) -> int:
    """How many elements a hash-type map (not per-CPU) holds: its batch_reads, ``batch``
    elements at a time (batch_elements), counted; OSError as batch_reads raises it."""
    return sum(count for _k, _v, count in batch_reads(Cmd.MAP_LOOKUP_BATCH, fd, key_size, value_size, batch, batch))


def obj_pin(fd: int, path: str) -> None:
    p = ctypes.create_string_buffer(os.fsencode(path))
    bpf(Cmd.OBJ_PIN, ObjAttr(pathname=ctypes.addressof(p), bpf_fd=fd))


def obj_get(path: str, flags: int = 0) -> int:
    p = ctypes.create_string_buffer(os.fsencode(path))
    return bpf(Cmd.OBJ_GET, ObjAttr(pathname=ctypes.addressof(p), file_flags=flags))


def get_next_id(cmd: int, start_id: int) -> int:
    attr = GetIdAttr(start_id=start_id)
    bpf(cmd, attr)
    return int(attr.next_id)


def get_fd_by_id(cmd: int, obj_id: int, flags: int = 0) -> int:
    return bpf(cmd, GetIdAttr(start_id=obj_id, open_flags=flags))


def _obj_info(fd: int, info: ctypes.Structure) -> None:
    # The info struct is zeroed by its constructor: this kernel leaves fields it does
    # not fill as the caller passed them.
    bpf(
        Cmd.OBJ_GET_INFO_BY_FD,
        InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info)),
    )


def map_info(fd: int) -> BpfMapInfo:
    info = BpfMapInfo()
    _obj_info(fd, info)
    return info


def prog_info(fd: int) -> ProgInfo:
    info = ProgInfo()
    _obj_info(fd, info)
    return info


def prog_map_ids(fd: int) -> tuple[ProgInfo, list[int]]:
    """A program's info and the ids of the maps it uses (two calls: count, then ids)."""
    info = prog_info(fd)
    n = info.nr_map_ids
    if not n:
        return info, []
    ids = (ctypes.c_uint32 * n)()
    again = ProgInfo(nr_map_ids=n, map_ids=ctypes.addressof(ids))
    _obj_info(fd, again)
    return again, list(ids[: min(n, again.nr_map_ids)])


def btf_info(fd: int) -> tuple[bytes, int, str, bool]:
    """The raw BTF behind a BTF fd: (data, id, name, is kernel BTF)."""
    info = BtfInfo()
    _obj_info(fd, info)  # first call: sizes
    data = ctypes.create_string_buffer(max(info.btf_size, 1))
    name = ctypes.create_string_buffer(max(info.name_len + 1, 64))
    size = info.btf_size
    info = BtfInfo(btf=ctypes.addressof(data), btf_size=size, name=ctypes.addressof(name), name_len=len(name))
    _obj_info(fd, info)
    return data.raw[: info.btf_size], info.id, name.value.decode(errors="replace"), bool(info.kernel_btf)


def btf_load(data: bytes, log_size: int = 0) -> int:
    """Load BTF; on failure the OSError carries the verifier log as ``filename``."""
    dbuf = buffer(data)
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = BtfLoadAttr(
        btf=ctypes.addressof(dbuf),
        btf_size=len(data),
        btf_log_buf=_addr(log),
        btf_log_size=log_size,
        btf_log_level=1 if log_size else 0,
    )
    try:
        return bpf(Cmd.BTF_LOAD, attr)
    except OSError as err:
        if log is not None:
            err.filename = log.value.decode(errors="replace").strip()
        raise


def prog_load(
    prog_type: int,
    insns: bytes,
    license: bytes = b"GPL",
    name: bytes = b"",
    log_level: int = 0,
    log_size: int = 0,
    expected_attach_type: int = 0,
    attach_btf_id: int = 0,
) -> int:
    """Load a program; returns its fd.  With ``log_size``, a failure raises
    ``VerifierError`` carrying the verifier's log."""
    ibuf = buffer(insns)
    lic = ctypes.create_string_buffer(license)
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = ProgLoadAttr(
        prog_type=prog_type,
        insn_cnt=len(insns) // 8,
        insns=ctypes.addressof(ibuf),
        license=ctypes.addressof(lic),
        prog_name=name,  # type: ignore[arg-type]  # a c_char array field takes bytes
        log_level=log_level if log is not None else 0,
        log_size=log_size,
        log_buf=ctypes.addressof(log) if log is not None else 0,
        expected_attach_type=expected_attach_type,
        attach_btf_id=attach_btf_id,
    )
    try:
        return bpf(Cmd.PROG_LOAD, attr)
    except OSError as err:
        if log is None:
            raise
        raise VerifierError(err.errno, log.value.decode("utf-8", "replace")) from None


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """BPF_PROG_ATTACH (a cgroup program to a cgroup directory's fd, ...)."""
    bpf(
        Cmd.PROG_ATTACH,
        ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type, attach_flags=flags),
    )


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    bpf(Cmd.PROG_DETACH, ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type))


def iter_link(prog_fd: int, map_fd: int = 0) -> int:
    """BPF_LINK_CREATE of an iterator program (BPF_TRACE_ITER), over the map ``map_fd``
    for map iterators; returns the link's fd."""
    info = buffer(map_fd.to_bytes(4, "little") + bytes(4)) if map_fd else None
    attr = LinkCreateAttr(
        prog_fd=prog_fd,
        attach_type=BPF_TRACE_ITER,
        iter_info=ctypes.addressof(info) if info is not None else 0,
        iter_info_len=8 if info is not None else 0,
    )
    return bpf(Cmd.LINK_CREATE, attr)


def iter_create(link_fd: int) -> int:
    """BPF_ITER_CREATE: an fd that reads what the iterator's program writes."""
    return bpf(Cmd.ITER_CREATE, IterCreateAttr(link_fd=link_fd))


class VerifierError(OSError):
    """PROG_LOAD failed; ``log`` is what the verifier said."""

    def __init__(self, errno_: int | None, log: str) -> None:
        errno_ = errno_ or 0
        super().__init__(errno_, os.strerror(errno_))
        self.log = log


def prog_test_run(
    prog_fd: int,
    data: bytes = b"",
    data_out_size: int = 0,
    ctx: bytes = b"",
    repeat: int = 1,
    flags: int = 0,
    cpu: int = 0,
) -> tuple[int, bytes, int]:
    """BPF_PROG_TEST_RUN: run a program once (or ``repeat`` times) on ``data``;
    returns (return value, data out, duration in ns)."""
    din = buffer(data) if data else None
    dout = ctypes.create_string_buffer(data_out_size) if data_out_size else None
    cin = buffer(ctx) if ctx else None
    attr = ProgTestRunAttr(
        prog_fd=prog_fd,
        data_size_in=len(data),
        data_size_out=data_out_size,
        data_in=ctypes.addressof(din) if din is not None else 0,
        data_out=ctypes.addressof(dout) if dout is not None else 0,
        repeat=repeat,
        ctx_size_in=len(ctx),
        ctx_in=ctypes.addressof(cin) if cin is not None else 0,
        flags=flags,
        cpu=cpu,
    )
    bpf(Cmd.PROG_TEST_RUN, attr)
    out = dout.raw[: attr.data_size_out] if dout is not None else b""
    return attr.retval, out, attr.duration


# -- filesystem ------------------------------------------------------------------------


class _Statfs(ctypes.Structure):
    # struct statfs on 64-bit Linux: f_type is the first long.
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 120)]


_statfs = _libc.statfs
_statfs.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Statfs)]
_statfs.restype = ctypes.c_int

_mount = _libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_mount.restype = ctypes.c_int


def fs_magic(path: str) -> int:
    """The f_type of the filesystem holding ``path`` (statfs(2))."""
    buf = _Statfs()
    if _statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(buf.f_type) & 0xFFFFFFFF


def mount_bpffs(target: str) -> None:
    """mount -t bpf bpf TARGET."""
    if _mount(b"bpf", os.fsencode(target), b"bpf", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


_renameat2 = _libc.renameat2
_renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_renameat2.restype = ctypes.c_int
_AT_FDCWD = -100
RENAME_EXCHANGE = 2


def rename_exchange(a: str, b: str) -> None:
    """Swap the names ``a`` and ``b`` in one step (renameat2 RENAME_EXCHANGE)."""
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a, None, b)


def fd_kind(fd: int) -> str:
    """'map', 'prog', 'btf', 'link' or '' for what a bpf fd refers to."""
    target = os.readlink(f"/proc/self/fd/{fd}")
    prefix = "anon_inode:bpf-"
    if target.startswith(prefix):
        return target[len(prefix) :]
    if target == "anon_inode:btf":
        return "btf"
    return ""


def fdinfo(fd: int) -> dict[str, str]:
    """The key/value lines of /proc/self/fdinfo/FD (memlock, frozen, map_type, ...)."""
    out = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out
