"""References to kernel objects, for maps keyed (local storage) or valued (sockmap,
cgroup_array, ...) by them: one syntax for every verb.

    pid:N          a task: a pidfd (pidfd_open; threads too, on Linux 6.9+)
    cgroup:PATH    a cgroup2 directory (absolute, or under the cgroup2 mount)
    file:PATH      a file's inode
    sock:PID:FD    the socket process PID holds as FD (pidfd_getfd: needs ptrace rights)

The kernel takes such a key or value as a file descriptor of the object, valid for the
one call: :func:`open_ref` opens it, and closing the returned reference closes it.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import struct
from collections.abc import Callable, Iterator
from typing import Any

from .. import _sys
from ..errors import NotFound, PermissionDenied, UsageError, quote, translate
from ..host.hostnames import cgroup2_mount, cgroup_by_id, cgroups  # noqa: F401  (re-exported)
from ..types import REF_FORMS

CGROUP2_SUPER_MAGIC = 0x63677270


class ObjectRef:
    """An open reference: ``fd`` (closed by :meth:`close` or the with block), ``key``
    the 4 bytes a map takes for it, ``text`` as the user wrote it."""

    __slots__ = ("fd", "kind", "text")

    def __init__(self, fd: int, kind: str, text: str) -> None:
        self.fd, self.kind, self.text = fd, kind, text

    @property
    def key(self) -> bytes:
        return struct.pack("<i", self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ObjectRef:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ref(text: str, want: str, what: str = "key") -> ObjectRef:
    """Open ``text`` (``pid:N``, ...) as an object of kind ``want``; UsageError when it is
    another kind or malformed, NotFound when the object does not exist."""
    kind, sep, rest = text.partition(":")
    form = REF_FORMS[want]
    if not sep or kind not in _OPENERS:
        raise UsageError(f"{what} {quote(text)}: give a {form.described} reference, e.g. {form.example}")
    if kind != want:
        raise UsageError(f"{what} {quote(text)}: this map takes {form.described}, not a {kind} reference")
    return ObjectRef(_OPENERS[kind](rest, text), kind, text)


def _number(text: str, whole: str, what: str) -> int:
    try:
        n = int(text, 10)
    except ValueError:
        n = -1
    if n < 0:
        raise UsageError(f"{quote(whole)}: {what} {quote(text)} is not a number")
    return n


def pidfd(pid: int, thread: bool = False) -> int:
    """pidfd_open(pid); ``thread``: of a thread that need not lead its group."""
    return _sys.pidfd_open(pid, thread)


def _pid(rest: str, whole: str) -> int:
    pid = _number(rest, whole, "pid")
    try:
        return pidfd(pid)
    except OSError as err:
        if err.errno in (errno.EINVAL, errno.ENOENT):  # a thread's id, not a process's
            try:
                return pidfd(pid, thread=True)
            except OSError as again:
                err = again
        if err.errno in (errno.ESRCH, errno.EINVAL, errno.ENOENT):
            raise NotFound(f"{quote(whole)}: no process or thread {pid}") from None
        raise UsageError(f"{quote(whole)}: cannot open process {pid}: {err.strerror}") from None


def cgroup_path(rest: str) -> str:
    """PATH of ``cgroup:PATH`` as a directory: absolute paths on a cgroup2 mount as they
    are, others (``/``, ``system.slice``) under the cgroup2 mount."""
    root = cgroup2_mount()
    if rest.startswith("/") and os.path.isdir(rest) and _on_cgroup2(rest):
        return rest
    if root is None:
        raise NotFound("no cgroup2 hierarchy is mounted; mount one with 'mount -t cgroup2 none /sys/fs/cgroup/unified'")
    return os.path.join(root, rest.lstrip("/"))


def _on_cgroup2(path: str) -> bool:
    try:
        return _sys.fs_magic(path) == CGROUP2_SUPER_MAGIC
    except OSError:
        return False


def _cgroup(rest: str, whole: str) -> int:
    path = cgroup_path(rest)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise NotFound(f"{quote(whole)}: no cgroup {path}") from None
    except OSError as err:
        raise UsageError(f"{quote(whole)}: cannot open {path}: {err.strerror}") from None
    if not _on_cgroup2(path):
        os.close(fd)
        raise UsageError(
            f"{quote(whole)}: {path} is not a cgroup2 directory; cgroup2 is mounted at {cgroup2_mount() or '(nowhere)'}"
        )
    return fd


def _file(rest: str, whole: str) -> int:
    if not rest:
        raise UsageError(f"{quote(whole)}: give a path, e.g. file:/etc/hostname")
    try:
        return os.open(rest, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise NotFound(f"{quote(whole)}: no such file") from None
    except OSError as err:
        raise UsageError(f"{quote(whole)}: cannot open it: {err.strerror}") from None


def _sock(rest: str, whole: str) -> int:
    pid_text, sep, fd_text = rest.partition(":")
    if not sep:
        raise UsageError(f"{quote(whole)}: write sock:PID:FD, e.g. sock:1234:3 (FD as in /proc/PID/fd)")
    pid, target = _number(pid_text, whole, "pid"), _number(fd_text, whole, "fd")
    try:
        pfd = pidfd(pid)
    except OSError:
        raise NotFound(f"{quote(whole)}: no process {pid}") from None
    try:
        fd = _sys.pidfd_getfd(pfd, target)
    except OSError as err:
        if err.errno == errno.EBADF:
            raise NotFound(f"{quote(whole)}: process {pid} has no fd {target}") from None
        if err.errno == errno.EPERM:
            raise PermissionDenied(
                f"{quote(whole)}: may not take fd {target} of process {pid}: pidfd_getfd needs ptrace rights "
                f"over it (the same user and kernel.yama.ptrace_scope allowing it, or CAP_SYS_PTRACE)",
                err.errno,
            ) from None
        raise UsageError(f"{quote(whole)}: cannot take fd {target} of process {pid}: {err.strerror}") from None
    finally:
        os.close(pfd)
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{quote(whole)}: fd {target} of process {pid} is not a socket")
    return fd


# how each kind of types.REF_FORMS that names a kernel object is opened (test_type_table:
# one opener per such form, no other kinds)
_OPENERS: dict[str, Callable[[str, str], int]] = {"pid": _pid, "cgroup": _cgroup, "file": _file, "sock": _sock}


def tasks() -> Iterator[tuple[int, int, str]]:
    """(tid, tgid, comm) of every task in /proc, threads included."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            tids = [t.name for t in os.scandir(f"/proc/{entry.name}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{entry.name}/task/{tid}/comm", "rb") as f:
                    comm = f.read().rstrip(b"\n").decode("utf-8", "replace")
            except OSError:
                continue
            yield int(tid), int(entry.name), comm


def attach_types() -> dict[int, str]:
    """enum bpf_attach_type of the running kernel (from its BTF): number -> name, lower
    case without ``BPF_`` (``cgroup_inet_egress``); empty when the kernel has no BTF."""
    global _ATTACH
    if _ATTACH is None:
        try:
            from ..btf.wire import vmlinux

            values = vmlinux().find("bpf_attach_type").values
        except (OSError, KeyError, ValueError):
            values = []
        _ATTACH = {n: name.lower().removeprefix("bpf_") for name, n in values if not name.startswith("__")}
    return _ATTACH


_ATTACH: dict[int, str] | None = None


def attach_type(text: str) -> int:
    """An attach type by name (``cgroup_inet_egress``, ``BPF_CGROUP_INET_EGRESS``,
    ``inet_egress``) or number."""
    t = text.strip().lower().removeprefix("bpf_")
    if t.isdigit():
        return int(t)
    names = attach_types()
    for n, name in names.items():
        if name in (t, f"cgroup_{t}"):
            return n
    cgroup = ", ".join(v for v in names.values() if v.startswith("cgroup_"))
    raise UsageError(f"attach type {quote(text)}: unknown; cgroup attach types: {cgroup}")


def cgroup_storage_key(text: str, key_size: int) -> bytes:
    """The key of a cgroup_storage map for ``cgroup:PATH[,ATTACH_TYPE]``: the cgroup's id
    (its directory's inode number) and the attach type (with a 16-byte key)."""
    body = text.partition(":")[2]
    path_text, _, attach = body.rpartition(",") if "," in body else (body, "", "")
    path = cgroup_path(path_text)
    try:
        ino = os.stat(path).st_ino
    except FileNotFoundError:
        raise NotFound(f"{quote(text)}: no cgroup {path}") from None
    if key_size == 8:
        if attach:
            raise UsageError(f"{quote(text)}: this map's 8-byte key is the cgroup alone; leave out ',{attach}'")
        return struct.pack("<Q", ino)
    if not attach:
        raise UsageError(f"{quote(text)}: name the attach type too, e.g. {text},cgroup_inet_egress")
    return struct.pack("<QI4x", ino, attach_type(attach))


# -- walking the objects a local-storage map may hold values for ---------------------------

# How dump shows the key of each kind it can walk (a layout of the bytes walk_objects() makes).
WALK_KEYS = {
    "pid": "pid=s32,comm=char[16]",
    "cgroup": "char[4096]",
}


def walk_objects(m: Any, size: int = 256) -> Iterator[tuple[bytes, bytes, int]]:
    """Raw (keys, values, count) batches of a local-storage map, found by trying every
    object of its kind: tasks from /proc, cgroups under the cgroup2 mount.  Keys are the
    bytes WALK_KEYS describes."""
    kind = m.kind.object
    vbuf = _sys.buffer(m.value_size)
    lookup, fd_of_map, elem = _sys.Cmd.MAP_LOOKUP_ELEM, m.fileno(), _sys.map_elem
    keys: list[bytes] = []
    values: list[bytes] = []

    def candidates() -> Iterator[tuple[bytes, Callable[[], int]]]:
        if kind == "pid":
            for tid, tgid, comm in tasks():
                yield struct.pack("<i16s", tid, comm.encode()[:15]), functools.partial(pidfd, tid, tid != tgid)
        elif kind == "cgroup":
            root = cgroup2_mount()
            if root is None:
                raise NotFound("no cgroup2 hierarchy is mounted; mount one with 'mount -t cgroup2 none DIR'")
            for d in cgroups(root):
                shown = ("/" + os.path.relpath(d, root).removeprefix(".")).encode()[:4095]
                yield shown.ljust(4096, b"\0"), functools.partial(os.open, d, os.O_RDONLY | os.O_DIRECTORY)
        else:
            raise UsageError(f"dump {m.ref}: {m.type_label} maps cannot be listed")

    for key, opener in candidates():
        try:
            fd = opener()
        except OSError:
            continue  # gone since it was listed
        try:
            elem(lookup, fd_of_map, _sys.buffer(struct.pack("<i", fd)), vbuf)
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.ESRCH, errno.EBADF):
                continue
            raise translate("dump", m.ref, err) from err
        finally:
            os.close(fd)
        keys.append(key)
        values.append(vbuf.raw)
        if len(keys) >= size:
            yield b"".join(keys), b"".join(values), len(keys)
            keys, values = [], []
    if keys:
        yield b"".join(keys), b"".join(values), len(keys)


def _cgroup_key_codec_class() -> type:
    from ..layout import Codec

    class CgroupStorageKey(Codec):
        """The key of a cgroup_storage map (struct bpf_cgroup_storage_key, or the cgroup
        id alone in 8 bytes) shown as the cgroup's path and the attach type's name:
        ``{"cgroup": "/app", "attach_type": "cgroup_inet_egress"}``.  Parsed from that
        text form or ``cgroup:PATH[,ATTACH_TYPE]``."""

        def __init__(self, size: int) -> None:
            self.size = size
            self._paths: dict[int, str] | None = None

        def _path(self, ino: int) -> str:
            if self._paths is None or ino not in self._paths:
                self._paths = cgroup_by_id()  # walked again on a miss: cgroups come and go
            return self._paths.get(ino, f"(cgroup id {ino})")

        def decode(self, data: bytes) -> Any:
            ino = struct.unpack_from("<Q", data)[0]
            if self.size == 8:
                return {"cgroup": self._path(ino)}
            attach = struct.unpack_from("<I", data, 8)[0]
            return {"cgroup": self._path(ino), "attach_type": attach_types().get(attach, str(attach))}

        def parse(self, text: str) -> bytes:
            t = text.strip()
            if not t.startswith("cgroup:"):
                fields = dict(p.partition("=")[::2] for p in t.split(","))
                if "cgroup" not in fields:
                    raise UsageError(
                        f"key {quote(text)}: write cgroup:PATH,ATTACH_TYPE (e.g. cgroup:/app,cgroup_inet_egress)"
                    )
                t = "cgroup:" + fields["cgroup"] + ("," + fields["attach_type"] if fields.get("attach_type") else "")
            return cgroup_storage_key(t, self.size)

        def encode(self, value: Any) -> bytes:
            if isinstance(value, (bytes, bytearray)):
                return bytes(value)
            if isinstance(value, dict):
                return self.parse(",".join(f"{k}={v}" for k, v in value.items()))
            return self.parse(str(value))

    return CgroupStorageKey


def key_codec(display: str, size: int) -> Any:
    """The codec of a key that names a live kernel object, for layout.pick: local
    storage's (``display`` the object kind: as dump finds them) or a cgroup storage's
    (``cgroup_storage``: the cgroup's path and attach type)."""
    if display == "cgroup_storage":
        return _cgroup_key_codec_class()(size)
    if display == "sock":
        from .skiter import SocketKey

        return SocketKey()
    from ..layout import TypeCodec
    from ..layout.lang import parse_side

    walk_type = parse_side(WALK_KEYS.get(display, "hex[4]"), False)
    assert walk_type is not None
    return TypeCodec(walk_type)
