"""Names of the host's objects that programs record as numbers: cgroup ids (as
bpf_get_current_cgroup_id gives them: the cgroup directory's inode on the cgroup2 mount),
interface indexes, device numbers, user and group ids.  Each lookup is cached; a miss
looks again (a cgroup made since, an interface added), at most once a second, so a
stream of unknown numbers costs no walk each.  Unknown numbers raise LookupError."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

REWALK = 1.0  # seconds between walks of the cgroup tree on misses
MAX_CGROUPS = 1 << 17  # directories a walk visits at most


def cgroup2_mount() -> str | None:
    """Where cgroup2 is mounted (from /proc/self/mountinfo), or None."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return left.split(" ")[4].replace("\\040", " ")
    except OSError:
        return None
    return None


def cgroups(root: str) -> Iterator[str]:
    """Every cgroup directory under ``root`` (``root`` first), depth first, by name."""
    stack = [root]
    while stack:
        d = stack.pop()
        yield d
        try:
            subs = sorted((e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)), reverse=True)
        except OSError:
            continue
        stack.extend(subs)


def cgroup_by_id(root: str | None = None) -> dict[int, str]:
    """cgroup id (directory inode) -> path relative to the cgroup2 mount ('/' for the root)."""
    root = root or cgroup2_mount()
    if root is None:
        return {}
    out = {}
    for i, d in enumerate(cgroups(root)):
        if i >= MAX_CGROUPS:
            break
        try:
            out[os.stat(d).st_ino] = "/" + os.path.relpath(d, root).removeprefix(".")
        except OSError:
            continue
    return out


class _Cached:
    """number -> name through ``lookup``, remembered; misses remembered for REWALK seconds."""

    def __init__(self, lookup: Callable[[int], str]) -> None:
        self.lookup = lookup
        self.names: dict[int, str] = {}
        self.missed: dict[int, float] = {}

    def __call__(self, n: int) -> str:
        name = self.names.get(n)
        if name is not None:
            return name
        when = self.missed.get(n)
        if when is not None and time.monotonic() - when < REWALK:
            raise LookupError(n)
        try:
            name = self.lookup(n)
        except (LookupError, OSError, ValueError, OverflowError):
            if len(self.missed) > 4096:
                self.missed.clear()
            self.missed[n] = time.monotonic()
            raise LookupError(n) from None
        if len(self.names) > 65536:
            self.names.clear()
        self.names[n] = name
        return name


class _Cgroups:
    """cgroup id -> path, from one walk of the cgroup2 tree; walked again on a miss (a
    cgroup made since), at most once every REWALK seconds."""

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}
        self.walked = -REWALK

    def __call__(self, cgid: int) -> str:
        path = self.paths.get(cgid)
        if path is None and time.monotonic() - self.walked >= REWALK:
            self.paths = cgroup_by_id()
            self.walked = time.monotonic()
            path = self.paths.get(cgid)
        if path is None:
            raise LookupError(cgid)
        return path

    def id_of(self, path: str) -> int:
        root = cgroup2_mount()
        if root is None:
            raise LookupError(path)
        return os.stat(os.path.join(root, path.lstrip("/"))).st_ino


def _block_device(kernel: bool) -> Callable[[int], str]:
    def lookup(dev: int) -> str:
        major, minor = (dev >> 20, dev & 0xFFFFF) if kernel else (os.major(dev), os.minor(dev))
        return os.path.basename(os.readlink(f"/sys/dev/block/{major}:{minor}"))

    return lookup


def _user(uid: int) -> str:
    import pwd

    return pwd.getpwuid(uid).pw_name


def _group(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _ifname(index: int) -> str:
    import socket

    return socket.if_indextoname(index)


cgroup_path_of = _Cgroups()
ifname = _Cached(_ifname)
block_device = _Cached(_block_device(kernel=True))
block_device_user = _Cached(_block_device(kernel=False))
user_name = _Cached(_user)
group_name = _Cached(_group)


def block_number(name: str, kernel: bool = True) -> int:
    """A block device's name -> its device number (kernel encoding: major << 20 | minor)."""
    with open(f"/sys/class/block/{name}/dev") as f:
        major, minor = (int(x) for x in f.read().strip().split(":"))
    return (major << 20 | minor) if kernel else os.makedev(major, minor)
