"""The BPF filesystem: checking, mounting, pinning, opening pins and finding them."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from .. import _sys
from ..errors import (
    NoSuchObject,
    NotBpffs,
    Param,
    PermissionDenied,
    PinExists,
    UsageError,
    Words,
    WrongObjectType,
    quote,
    translate,
    words,
)

DEFAULT_BPFFS = "/sys/fs/bpf"


def is_bpffs(path: str) -> bool:
    """Whether ``path`` (a file or directory) lives on a BPF filesystem."""
    try:
        return _sys.fs_magic(path) == _sys.BPF_FS_MAGIC
    except FileNotFoundError:
        return False


def _mount_hint(directory: str) -> str:
    return f"mount one with 'mount -t bpf bpf {directory}'"


def ensure_bpffs(directory: str = DEFAULT_BPFFS) -> bool:
    """Mount a bpffs on ``directory`` unless one is there already; True if it mounted.

    Raises NotBpffs when the mount fails, PermissionDenied without CAP_SYS_ADMIN."""
    if is_bpffs(directory):
        return False
    try:
        os.makedirs(directory, exist_ok=True)
        _sys.mount_bpffs(directory)
    except PermissionError as err:
        raise PermissionDenied(f"mount bpffs on {directory}: permission denied; run as root", err.errno) from err
    except OSError as err:
        raise NotBpffs(f"mount bpffs on {directory}: {err.strerror}; {_mount_hint(directory)}", err.errno) from err
    return True


def mount_for(path: str) -> None:
    """Mount a bpffs on /sys/fs/bpf when ``path`` is under it and none is there (see
    :func:`ensure_bpffs`); a path anywhere else is left as it is."""
    if os.path.abspath(path).startswith(DEFAULT_BPFFS + "/"):
        ensure_bpffs(DEFAULT_BPFFS)


def bpffs_mounts() -> list[str]:
    """Mount points of every bpffs this process can see, /sys/fs/bpf first."""
    seen: list[str] = []
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "bpf":
                    point = parts[1].replace("\\040", " ")
                    if point not in seen:
                        seen.append(point)
    except OSError:
        return []
    seen.sort(key=lambda p: p != DEFAULT_BPFFS)
    return seen


def check_pin_target(path: str, mkdir: bool = False, mount: bool = False) -> None:
    """Raise unless ``path`` is a free name in an existing bpffs directory.

    With ``mkdir``, missing directories are created (bpffs supports mkdir); with
    ``mount``, a bpffs is mounted on /sys/fs/bpf first when ``path`` is under it and
    none is there (:func:`mount_for`)."""
    if mount:
        mount_for(path)
    if not path:
        raise UsageError("pin: the path is empty (an unset variable?); give a path on a bpffs")
    if os.path.lexists(path):
        raise PinExists(
            f"pin {path}: something is already pinned there; bpfmap never replaces a pin: "
            f"choose another path or remove it first (rm {path})",
            errno.EEXIST,
        )
    name = os.path.basename(path)
    if "." in name:  # bpf_lookup() in the kernel refuses such names with EPERM
        raise UsageError(
            f"pin {path}: a BPF filesystem refuses '.' in a name; choose one without dots "
            f"(e.g. {name.replace('.', '_')})"
        )
    check_pin_dir(os.path.dirname(os.path.abspath(path)) or "/", mkdir, f"pin {path}")


def check_pin_dir(directory: str, mkdir: bool = False, what: str | Words = "", mount: bool = False) -> None:
    """Raise unless ``directory`` is a directory on a bpffs (with ``mkdir``, create it
    and its missing parents on the bpffs they are under; with ``mount``, mount a bpffs
    on /sys/fs/bpf first when ``directory`` is it or under it and none is there).
    ``what``: the operation the messages start with."""
    if mount:
        mount_for(os.path.join(directory, "x"))
    what = what or f"pin directory {directory}"
    if not os.path.isdir(directory):
        if not mkdir:
            raise UsageError(
                words(
                    what,
                    f": directory {directory} does not exist; create it (mkdir -p {directory}) or pass ",
                    Param("mkdir"),
                )
            )
        if not is_bpffs(_existing_ancestor(directory)):
            raise NotBpffs(
                words(
                    what,
                    f": {_existing_ancestor(directory)} is not on a BPF filesystem; "
                    f"{_mount_hint(_existing_ancestor(directory))}",
                ),
                errno.EPERM,
            )
        os.makedirs(directory, exist_ok=True)
    if not is_bpffs(directory):
        raise NotBpffs(words(what, f": {directory} is not on a BPF filesystem; {_mount_hint(directory)}"), errno.EPERM)


def _existing_ancestor(directory: str) -> str:
    while not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    return directory


def refuse_symlink(path: str, op: str) -> None:
    """Raise unless ``path`` (a map reference) is not a symbolic link.  A verb that
    replaces or rewrites what a pin holds (migrate's swap, copy's target, a restore) would
    replace the link itself, or change a map the user did not name: it refuses, naming the
    link's target."""
    if path.startswith(("id:", "name:")) or not os.path.islink(path):
        return
    target = os.path.join(os.path.dirname(path), os.readlink(path))
    real = os.path.realpath(path)
    shown = real if os.path.normpath(target) == real else f"{os.readlink(path)} ({real})"
    raise UsageError(
        f"{op} {quote(path, bare=True)}: this pin is a symbolic link to {quote(shown, bare=True)}; "
        f"bpfmap does not change a map through a link: give the pin itself ({quote(real, bare=True)})"
    )


def pin_fd(fd: int, path: str, mkdir: bool = False) -> None:
    """Pin the object behind ``fd`` at ``path``, never replacing what is there."""
    check_pin_target(path, mkdir=mkdir)
    try:
        _sys.obj_pin(fd, path)
    except OSError as err:
        raise translate("pin", path, err) from err


def open_pinned(path: str, kind: str, readonly: bool = False) -> int:
    """Open the pin at ``path`` and return an fd, checking that it is a ``kind`` ('map'/'prog')."""
    shown = quote(path, bare=True)
    try:
        exists = os.path.lexists(path)
    except ValueError:  # a NUL in the path
        raise UsageError(f"open {quote(path)}: a path cannot hold a NUL byte") from None
    if not exists:
        if len(os.path.basename(path)) > 255 or len(path) >= 4096:
            raise UsageError(f"open {shown}: the path is too long for the file system")
        raise NoSuchObject(
            f"open {shown}: no such pin; list pins with 'ls {quote(os.path.dirname(path), bare=True) or '.'}' "
            f"or maps with 'bpfmap list'",
            errno.ENOENT,
        )
    if os.path.isdir(path):
        raise WrongObjectType(f"open {shown}: is a directory, not a pinned {kind}", errno.EISDIR)
    if not is_bpffs(path):
        raise NotBpffs(
            f"open {shown}: not on a BPF filesystem; pinned {kind}s live on a bpffs such as {DEFAULT_BPFFS}",
            errno.EINVAL,
        )
    try:
        fd = _sys.obj_get(path, _sys.BPF_F_RDONLY if readonly else 0)
    except OSError as err:
        raise translate("open", path, err) from err
    actual = _sys.fd_kind(fd)
    if actual != kind:
        os.close(fd)
        raise WrongObjectType(f"open {shown}: this pin is a {actual or 'non-BPF object'}, not a {kind}", errno.EINVAL)
    return fd


def pinned_maps() -> Iterator[tuple[int, str]]:
    """(map id, path) for every map pinned on a mounted bpffs that we can open (each pin
    opened once: a command over many maps walks them once, with a :class:`PinIndex`)."""
    for mount in bpffs_mounts():
        for root, _dirs, files in os.walk(mount):
            for name in sorted(files):
                path = os.path.join(root, name)
                try:
                    fd = _sys.obj_get(path, _sys.BPF_F_RDONLY)
                except OSError:
                    continue
                try:
                    if _sys.fd_kind(fd) == "map":
                        yield _sys.map_info(fd).id, path
                finally:
                    os.close(fd)


class PinIndex:
    """Every map pinned on the mounted bpffs, found on first use by one walk
    (:func:`pinned_maps`) and kept: a command over many maps (``show DIR``, ``list``) asks
    it for each map's pins instead of opening every pin again for each map."""

    def __init__(self) -> None:
        self._found: list[tuple[int, str]] | None = None
        self._by_id: dict[int, list[str]] | None = None

    @property
    def found(self) -> list[tuple[int, str]]:
        """(map id, path) of every pinned map, in the walk's order."""
        if self._found is None:
            self._found = list(pinned_maps())
        return self._found

    def of(self, map_id: int) -> list[str]:
        """The paths the map ``map_id`` is pinned at."""
        if self._by_id is None:
            self._by_id = {}
            for pinned_id, path in self.found:
                self._by_id.setdefault(pinned_id, []).append(path)
        return list(self._by_id.get(map_id, []))
