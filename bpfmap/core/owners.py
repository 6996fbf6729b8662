"""Who holds a map and how full it is: the processes with an fd of it (from
/proc/PID/fdinfo, as bpftool shows them), the loaded programs that use it (their
map_ids), and how many entries it holds (counted with batch lookups where the kernel has
them, within a time budget)."""

from __future__ import annotations

import os
import time
from typing import Any

from .. import _sys
from ..errors import BpfmapError
from ..types import Access, Value, spec
from .program import ProgType


def holders(map_ids: set[int] | None = None) -> dict[int, list[dict[str, Any]]]:
    """map id -> the processes holding an fd of it, as ``{"pid": N, "comm": "..."}``
    (each process once per map, this one left out), from every /proc/PID/fd that is a
    BPF map."""
    out: dict[int, list[dict[str, Any]]] = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:  # not the fds this very command opened
            continue
        pid = int(entry.name)
        try:
            fds = [f.name for f in os.scandir(f"/proc/{pid}/fd") if os.readlink(f.path) == "anon_inode:bpf-map"]
        except OSError:
            continue
        if not fds:
            continue
        seen: set[int] = set()
        for fd in fds:
            try:
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    map_id = next((int(ln.split()[1]) for ln in f if ln.startswith("map_id:")), None)
            except (OSError, ValueError):
                continue
            if map_id is None or map_id in seen or (map_ids is not None and map_id not in map_ids):
                continue
            seen.add(map_id)
            try:
                with open(f"/proc/{pid}/comm", "rb") as raw:  # bytes: a \r in a name stays one
                    comm = raw.read().rstrip(b"\n").decode("utf-8", "surrogateescape")
            except OSError:
                comm = "?"
            out.setdefault(map_id, []).append({"pid": pid, "comm": comm})
    return out


def users() -> dict[int, list[dict[str, Any]]]:
    """map id -> the loaded programs using it, as ``{"id", "type", "name"}``."""
    out: dict[int, list[dict[str, Any]]] = {}
    prog_id = 0
    while True:
        try:
            prog_id = _sys.get_next_id(_sys.Cmd.PROG_GET_NEXT_ID, prog_id)
        except OSError:
            return out
        try:
            fd = _sys.get_fd_by_id(_sys.Cmd.PROG_GET_FD_BY_ID, prog_id)
        except OSError:
            continue  # gone since, or not ours to open
        try:
            info, ids = _sys.prog_map_ids(fd)
        except OSError:
            continue
        finally:
            os.close(fd)
        try:
            kind = ProgType(info.type).name.lower()
        except ValueError:
            kind = f"type_{info.type}"
        prog = {"id": info.id, "type": kind, "name": info.name.decode(errors="replace")}
        for map_id in ids:
            out.setdefault(map_id, []).append(prog)


def count(m: Any, budget: float | None = None) -> tuple[int | None, bool]:
    """(entries in ``m``, whether that is all of them): arrays by their slots, maps with
    batch operations a batch at a time, other keyed maps key by key, maps of kernel
    objects by their occupied slots; None for maps that have no count (queues, rings,
    local storage).  With ``budget`` seconds, stops when it runs out: (entries so far,
    False)."""
    kind = m.kind
    if kind.access is not Access.KEYED:
        return None, True
    if kind.indexed and not kind.deletable:  # array, percpu_array: every slot holds an entry
        return m.max_entries, True
    if kind.value is Value.FD:
        try:
            pairs, unreadable = m.fd_values()
        except BpfmapError:  # the kernel would not say: no count, not a failed show
            return None, True
        return (None, True) if unreadable and kind.indexed else (len(pairs), True)
    deadline = None if budget is None else time.monotonic() + budget
    n = 0
    for _keys, _values, got in m.batches():  # batch lookups where the kernel has them (a saved map: its file)
        if n and deadline is not None and time.monotonic() > deadline:
            return n, False  # more to count, and no time left
        n += got
    return n, True


def fill(m: Any, entries: int | None) -> float | None:
    """entries / max_entries for the types a program fills up (hash, LRU, LPM, ...)."""
    if entries is None or not spec(m.type).fills or not m.max_entries:
        return None
    return entries / int(m.max_entries)
