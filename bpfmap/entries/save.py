"""Saving maps to a file (the format: docs/disk-format.md, core/saved.py).

Each map is read batch by batch (a batch ahead in a thread, as a dump) and written frame
by frame, so memory stays a batch whatever the map's size.  What a map type can give a
file is its TypeSpec's ``disk`` column; a map that cannot be saved is refused with the
reason, and a directory or glob saves what it can and reports what it left out.

The file also holds what this host calls the numbers in it (hostnames.Collector: users,
groups, interfaces, cgroups, block devices and kernel symbols for any word of an entry
that has a name here, and user-space frames of the stacks a counts map in the file joins
with a stack map in it), so display formats read the file as this host would have shown
it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ..core.maps import Map, expand
from ..core.saved import Writer
from ..core.values import possible_cpus
from ..errors import BpfmapError, UsageError
from ..host.hostnames import Collector
from ..layout import Layout
from ..types import DISK_REFUSALS, MapFlag, MapType, Value


class SaveReport:
    """What a save wrote: ``maps`` as (reference, entries), ``skipped`` as (reference,
    why), the file's size and the raw bytes of its entries."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.maps: list[tuple[str, int]] = []
        self.skipped: list[tuple[str, str]] = []
        self.size = 0
        self.raw = 0

    @property
    def entries(self) -> int:
        return sum(n for _ref, n in self.maps)


def refusal(m: Any) -> str | None:
    """Why map ``m`` cannot be saved, or None when it can."""
    if m.kind.disk not in ("restore", "read"):
        return f"a {m.type_label} map cannot be saved: {DISK_REFUSALS.get(m.kind.disk, m.kind.disk)}"
    if MapFlag.WRONLY in MapFlag(m.flags):
        return "the map was created write-only for user space: it cannot be read"
    return None


def host_facts() -> dict[str, Any]:
    """Where and when a file was saved: host, kernel release, possible CPUs, time."""
    from .. import __version__

    u = os.uname()
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            cpus = f.read().strip()
    except OSError:
        cpus = ""
    return {
        "host": u.nodename,
        "kernel": u.release,
        "machine": u.machine,
        "possible_cpus": cpus,
        "ncpus": possible_cpus(),
        "byteorder": sys.byteorder,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bpfmap": __version__,
    }


def save(
    refs: str | list[str],
    path: str,
    layout: Layout | None = None,
    level: int = 1,
) -> SaveReport:
    """Save the maps ``refs`` name (pins, ``id:N``, ``name:``, bpffs directories and
    globs: every map below) into one file at ``path``, replaced only once it is whole.

    ``layout`` describes the key and value of a map without BTF (saved as BTF built from
    it); ``level`` is zlib's compression level (0: none).  Raises UsageError for a map
    named on its own that cannot be saved (the reason in the message) and for no map at
    all; the maps' own errors otherwise (then no file is written)."""
    refs = [refs] if isinstance(refs, str) else list(refs)
    if not refs:
        raise UsageError("save: no map given")
    report = SaveReport(path)
    chosen = _chosen(refs, report)
    if not chosen:
        why = "; ".join(f"{r}: {w}" for r, w in report.skipped[:4])
        raise UsageError(f"save {', '.join(refs)}: nothing to save{' (' + why + ')' if why else ''}")
    names = Collector()
    with Writer(path, level) as w:
        w.host(host_facts())
        stack_maps = []
        for ref in chosen:
            with Map.open(ref, readonly=True) as m:
                report.maps.append((ref, _save_one(w, m, ref, layout if len(chosen) == 1 else None, names)))
                if m.type is MapType.STACK_TRACE:
                    stack_maps.append(ref)
        for ref in stack_maps:
            _user_frames(ref, [r for r in chosen if r not in stack_maps], names)
        w.names(names.table())
        report.raw = w.bytes_raw
    report.size = os.path.getsize(path)
    return report


def _chosen(refs: list[str], report: SaveReport) -> list[str]:
    """The single maps the references name, in order; those of a directory or glob that
    cannot be saved go to ``report.skipped``, a map named alone that cannot be saved is
    refused."""
    chosen: list[str] = []
    for ref in refs:
        several = expand(ref)
        if several is None:
            with Map.open(ref, readonly=True) as m:
                why = refusal(m)
            if why is not None:
                raise UsageError(f"save {ref}: {why}")
            chosen.append(ref)
            continue
        for one in several:
            with Map.open(one, readonly=True) as m:
                why = refusal(m)
            if why is None:
                chosen.append(one)
            else:
                report.skipped.append((one, why))
    return chosen


def _meta(m: Any, ref: str) -> dict[str, Any]:
    info = m.info()
    return {
        "type": int(m.type),
        "type_name": m.type_label,
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "flags": int(m.flags),
        "map_extra": int(info.map_extra),
        "name": m.name,
        "id": m.id,
        "frozen": bool(info.frozen),
        "pinned": list(info.pinned),
        "ref": ref,
        "ncpus": m.ncpus,
        "value_stride": m.stride,
        "restore": m.kind.disk,
    }


def _btf(m: Any, layout: Layout | None) -> tuple[bytes | None, dict[str, Any]]:
    """The BTF a map is saved with: built from ``layout`` when given, else the map's own
    (rebuilt standalone from its key and value types when it leans on the kernel's BTF)."""
    if layout is not None:
        from ..api import sizes_and_btf

        _k, _v, spec = sizes_and_btf(m.type if isinstance(m.type, MapType) else MapType.HASH, layout, None, None)
        if spec is None:
            return None, {}
        return spec.data, {"key_type_id": spec.key_type_id, "value_type_id": spec.value_type_id, "source": "layout"}
    if not m.btf_id or m.kind.value is not Value.BYTES:
        return None, {}
    mb = m.btf()
    if mb is None:
        return None, {}
    ids = {"id": mb.btf_id, "key_type_id": mb.key_type_id, "value_type_id": mb.value_type_id, "source": "map"}
    if mb.btf.base is None:
        return bytes(mb.btf.data), ids
    from ..btf import spec_for, to_model

    key = to_model(mb.btf, mb.key_type_id) if mb.key_type_id else None
    value = to_model(mb.btf, mb.value_type_id) if mb.value_type_id else None
    spec = spec_for(key, value)
    return spec.data, {**ids, "key_type_id": spec.key_type_id, "value_type_id": spec.value_type_id, "source": "rebuilt"}


def _user_frames(stack_ref: str, others: list[str], names: Collector) -> None:
    """The user-space frames of the stacks each map of ``others`` that ``stacks`` would
    join with stack map ``stack_ref`` holds, named as its processes map them now (a
    counts map with no pid field or stack ids to join is left alone)."""
    from ..live.stacks import Joiner
    from ..view import View

    for ref in others:
        with Map.open(stack_ref, readonly=True) as sm, Map.open(ref, readonly=True) as cm:
            try:
                joiner = Joiner(View(cm), sm)
                if joiner.pid is None or joiner.user is None:
                    continue
                for s in joiner.stacks():
                    for f in s.user:
                        if s.pid is not None:
                            names.user_frame(s.pid, f)
            except BpfmapError:
                continue  # not a counts map of this stack map


def _save_one(
    w: Writer, m: Any, ref: str, layout: Layout | None, names: Collector, extra: dict[str, Any] | None = None
) -> int:
    """Write map ``m`` (and a map of maps' inner maps after it); returns its entries."""
    meta = {**_meta(m, ref), **(extra or {})}
    btf, ids = _btf(m, layout)
    if ids:
        meta["btf"] = ids
    if m.kind.value is Value.FD:  # sockets and the like: the slots, values where the kernel reads them
        pairs, unreadable = m.fd_values()
        meta["values_unreadable"] = unreadable
        w.begin(meta, btf)
        zero = bytes(m.value_size)
        if pairs:
            keys = b"".join(k for k, _v in pairs)
            w.batch(keys, b"".join(v or zero for _k, v in pairs), len(pairs))
            names.feed(keys, m.key_size)
        return w.end()
    if m.kind.value is Value.MAP_ID:
        return _save_outer(w, m, meta, btf, names)
    from ..core.threads import prefetch

    w.begin(meta, btf)
    stream = prefetch(m.batches())
    try:
        for keys, values, count in stream:
            w.batch(keys, values, count)
            names.feed(keys, m.key_size)
            names.feed(values, m.stride * m.ncpus)
    finally:
        stream.close()  # type: ignore[attr-defined]  # a generator: stops the read-ahead thread
    return w.end()


def _save_outer(w: Writer, m: Any, meta: dict[str, Any], btf: bytes | None, names: Collector) -> int:
    """A map of maps: its slots (inner map ids), the shape of its inner maps, then each
    inner map as a map of the file that names its outer map and slot."""
    batches = list(m.batches())  # a map of maps holds few entries: read before its shape is known
    slots = [
        (keys[i * m.key_size : (i + 1) * m.key_size], int.from_bytes(values[i * 4 : i * 4 + 4], sys.byteorder))
        for keys, values, count in batches
        for i in range(count)
    ]
    if slots:
        with Map.open(f"id:{slots[0][1]}", readonly=True) as inner:
            meta["inner"] = {k: _meta(inner, "")[k] for k in ("type", "key_size", "value_size", "max_entries", "flags")}
    outer = w.begin(meta, btf)
    for keys, values, count in batches:
        w.batch(keys, values, count)
        names.feed(keys, m.key_size)
    n = w.end()
    for key, inner_id in slots:
        with Map.open(f"id:{inner_id}", readonly=True) as inner:
            _save_one(w, inner, f"id:{inner_id}", None, names, {"inner_of": outer, "slot": key.hex()})
    return n
