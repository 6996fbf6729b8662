"""Names of the host's objects that programs record as numbers: cgroup ids (as
bpf_get_current_cgroup_id gives them: the cgroup directory's inode on the cgroup2 mount),
interface indexes, device numbers, user and group ids.  Each lookup is cached; a miss
looks again (a cgroup made since, an interface added), at most once a second, so a
stream of unknown numbers costs no walk each.  Unknown numbers raise LookupError.

:class:`Names` is where display formats and stack frames get every name: ``LIVE`` asks
this host (and bpfmap.host.symbols) live; a :class:`SavedNames` answers from the table a saved
file holds (what its saving host called the numbers in it), which :class:`Collector`
gathers while a file is saved."""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable, Iterator
from math import gcd
from typing import Any

from . import symbols

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


def _uid_of(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def _gid_of(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


def _ifindex_of(name: str) -> int:
    import socket

    return socket.if_nametoindex(name)


# display format -> (number -> name, name -> number), on this host
_LOOKUPS: dict[str, tuple[Callable[[int], str], Callable[[str], int]]] = {
    "cgroup": (cgroup_path_of, cgroup_path_of.id_of),
    "ifname": (ifname, _ifindex_of),
    "majorminor": (block_device, block_number),
    "majorminor_user": (block_device_user, lambda name: block_number(name, kernel=False)),
    "uid": (user_name, _uid_of),
    "gid": (group_name, _gid_of),
}
KINDS = tuple(_LOOKUPS)  # the display formats that name the host's objects


class Names:
    """Where display formats and stack frames get their names.  This class asks the host
    it runs on (the cached lookups above, /proc/kallsyms, a process's memory maps);
    :class:`SavedNames` answers as the host that saved a file did.  ``name`` and
    ``number`` raise LookupError (or OSError, ValueError) for what has no answer."""

    saved = False

    def name(self, kind: str, n: int) -> str:
        """What display format ``kind`` (one of KINDS) shows number ``n`` as."""
        return _LOOKUPS[kind][0](n)

    def number(self, kind: str, name: str) -> int:
        """The number display format ``kind`` shows as ``name``."""
        return _LOOKUPS[kind][1](name)

    def kernel(self) -> symbols.KernelSymbols:
        """The kernel's text symbols (``ksym``, kernel stack frames)."""
        return symbols.kernel()

    def frames(self, addrs: list[int], pid: int | None = None) -> list[dict[str, Any]]:
        """Each instruction address as a frame (see bpfmap.host.symbols.frames)."""
        return symbols.frames(addrs, pid)

    def gone(self, pid: int) -> bool:
        """Whether process ``pid``'s user addresses cannot be named (it has exited)."""
        return symbols.process(pid).gone


LIVE = Names()


class SavedNames(Names):
    """The names a saved file's table holds (docs/disk-format.md, the NAME frame): what
    the saving host called the numbers the file holds.  A number the table lacks had no
    name there, and has none here."""

    saved = True

    def __init__(self, table: dict[str, Any]) -> None:
        self._by_number = {k: _int_keys(table.get(k)) for k in KINDS}
        self._by_name = {k: {v: n for n, v in sorted(d.items(), reverse=True)} for k, d in self._by_number.items()}
        rows = table.get("ksym")
        self._kernel = symbols.KernelSymbols.from_rows(
            [(int(r[0]), str(r[1]), None if r[2] is None else str(r[2])) for r in rows if _row(r, 3)]
            if isinstance(rows, list)
            else []
        )
        self._user: dict[int, dict[int, dict[str, Any]]] = {}
        users = table.get("user")
        for pid, found in users.items() if isinstance(users, dict) else ():
            if str(pid).isdigit() and isinstance(found, list):
                self._user[int(pid)] = {
                    int(r[0]): {"addr": int(r[0]), "symbol": str(r[1]), "offset": r[2], "module": r[3]}
                    for r in found
                    if _row(r, 4) and (r[2] is None or isinstance(r[2], int))
                }

    def name(self, kind: str, n: int) -> str:
        return self._by_number[kind][n]

    def number(self, kind: str, name: str) -> int:
        return self._by_name[kind][name]

    def kernel(self) -> symbols.KernelSymbols:
        return self._kernel

    def frames(self, addrs: list[int], pid: int | None = None) -> list[dict[str, Any]]:
        user = self._user.get(pid, {}) if pid is not None else {}
        out = []
        for a in addrs:
            if symbols.is_kernel(a):
                out.append(self._kernel.frame(a))
            else:
                out.append(user.get(a) or {"addr": a, "symbol": symbols.UNKNOWN, "offset": None, "module": None})
        return out

    def gone(self, pid: int) -> bool:
        return pid not in self._user


def _int_keys(d: Any) -> dict[int, str]:
    if not isinstance(d, dict):
        return {}
    return {int(n): str(v) for n, v in d.items() if isinstance(n, str) and n.isdigit() and isinstance(v, str)}


def _row(r: Any, n: int) -> bool:
    return isinstance(r, list) and len(r) == n and isinstance(r[0], int) and isinstance(r[1], str)


def names_for(table: dict[str, Any] | None) -> Names:
    """A saved file's names (``table``: its NAME frame), or the host's (None: a live map,
    or a file saved without names)."""
    return LIVE if table is None else SavedNames(table)


_LOW_BYTES = bytes(range(128))  # deleted from a word's top bytes, what is left has its top bit set


class Collector:
    """The names this host gives to the numbers some buffers hold, for a saved file's
    table: fed each batch of keys and values (``feed``), it keeps only numbers the host
    has a name for (users, groups, interfaces, cgroups, block devices, kernel text), so
    the table stays as small as the host's own tables whatever the buffers hold.  Every
    naturally aligned 4- and 8-byte word of each entry is a candidate: the fields a
    display format can be put on later."""

    def __init__(self) -> None:
        self._known: dict[str, set[int]] | None = None
        self._any: set[int] | None = None  # every number the host has a name for
        self._wide = False  # one of them needs more than 4 bytes
        self.found: dict[str, set[int]] = {k: set() for k in KINDS}
        self.ksyms: set[int] = set()  # indexes into the kernel's symbol table
        self.user: dict[int, dict[int, dict[str, Any]]] = {}

    def _host(self) -> dict[str, set[int]]:
        if self._known is None:
            import grp
            import pwd
            import socket

            devices = []
            try:
                for d in os.listdir("/sys/dev/block"):
                    major, _, minor = d.partition(":")
                    devices.append((int(major), int(minor)))
            except (OSError, ValueError):
                pass
            try:
                links = {i for i, _n in socket.if_nameindex()}
            except OSError:
                links = set()
            self._known = {
                "cgroup": set(cgroup_by_id()),
                "ifname": links,
                "majorminor": {ma << 20 | mi for ma, mi in devices},
                "majorminor_user": {os.makedev(ma, mi) for ma, mi in devices},
                "uid": {p.pw_uid for p in pwd.getpwall()},
                "gid": {g.gr_gid for g in grp.getgrall()},
            }
        return self._known

    def feed(self, buf: bytes, entry: int) -> None:
        """The words of ``buf``, entries of ``entry`` bytes back to back."""
        if not buf or not entry:
            return
        known = self._host()
        if self._any is None:
            self._any = set().union(*known.values())
            # every number the host names fits 4 bytes (the usual case): an 8-byte word holding
            # one has it in its low half, which the 4-byte pass sees at the same offset (every
            # 8-byte offset is a 4-byte one), so the 8-byte pass only looks for kernel text
            self._wide = any(n >= 1 << 32 for n in self._any)
        view = memoryview(buf)
        hits: set[int] = set()
        for size in (4, 8):
            for off in range(0, size, gcd(entry, size)):
                n = (len(buf) - off) // size
                if n <= 0:
                    continue
                top = bytes(buf[off + 7 : off + n * 8 : 8]) if size == 8 and not self._wide else None
                if top is not None and not top.translate(None, _LOW_BYTES):
                    continue  # no word with its top bit set: no kernel address here
                words = view[off : off + n * size].cast("I" if size == 4 else "Q")
                if size == 4 or self._wide:
                    hits |= self._any.intersection(words)  # a pass in C, a result as small as the host's tables
                if size == 8 and max(words) >= 1 << 63:  # kernel addresses: only then kallsyms
                    self._kernel_words(sorted(set(words)))
        for kind, numbers in known.items():
            self.found[kind] |= numbers & hits

    def _kernel_words(self, words: list[int]) -> None:
        ks = symbols.kernel()
        for a in words[bisect.bisect_left(words, 1 << 63) :]:
            i = bisect.bisect_right(ks.addrs, a) - 1
            if i >= 0:
                self.ksyms.add(i)

    def user_frame(self, pid: int, frame: dict[str, Any]) -> None:
        """A user-space frame process ``pid`` had a name for (stacks joined at save time)."""
        if frame.get("addr") and (frame["symbol"] != symbols.UNKNOWN or frame.get("module")):
            self.user.setdefault(pid, {})[frame["addr"]] = frame

    def table(self) -> dict[str, Any]:
        """The table (JSON) a saved file's NAME frame holds."""
        out: dict[str, Any] = {}
        for kind, numbers in self.found.items():
            named = {}
            for n in sorted(numbers):
                try:
                    named[str(n)] = LIVE.name(kind, n)
                except (LookupError, OSError, ValueError, OverflowError):
                    continue
            out[kind] = named
        ks = symbols.kernel()
        out["ksym"] = [[ks.addrs[i], ks.names[i], ks.modules[i]] for i in sorted(self.ksyms)]
        out["user"] = {
            str(pid): [[a, f["symbol"], f.get("offset"), f.get("module")] for a, f in sorted(frames.items())]
            for pid, frames in sorted(self.user.items())
        }
        return out
