"""Restoring saved maps (core/saved.py): a new map of the saved shape with its BTF and
every entry, pinned only once it is whole, or the entries written into an existing map
through the copy rules (bpfmap.entries.migrate.Copy).

A new map is created, filled and frozen (when the saved one was) before it is pinned: a
restore that fails half way closes it, so no half-filled pin is ever left, and the error
says how many entries went in.  A pin that exists (or is a symlink) is never replaced.
"""

from __future__ import annotations

import errno
import os
from typing import Any, cast

from ..core.maps import Map
from ..core.pins import check_pin_dir, check_pin_target
from ..core.saved import SavedEntry, SavedFile, SavedMap
from ..core.savedref import split_ref
from ..core.spec import MapSpec
from ..core.values import possible_cpus
from ..errors import BpfmapError, EntriesDropped, Param, PinExists, UsageError, amended, quote, words
from ..types import MapFlag
from ..types import spec as type_spec

CPUS = ("sum", "first")


class RestoreReport:
    """``maps`` as (target, entries written); ``notes``: what was restored otherwise than
    saved (without BTF, a flag left out)."""

    def __init__(self) -> None:
        self.maps: list[tuple[str, int]] = []
        self.notes: list[str] = []


def restore(
    ref: str,
    pin: str | None = None,
    pin_dir: str | None = None,
    into: str | None = None,
    cpus: str | None = None,
    mkdir: bool = False,
) -> RestoreReport:
    """Restore the saved map ``ref`` names (``FILE`` or ``FILE:NAME``): as a new map pinned
    at ``pin``, every map of the file under ``pin_dir`` (each at its name), or into the
    existing map ``into``.  ``cpus`` (sum, first) says what to do with per-CPU values saved
    on a host with another number of CPUs (refused without it).  ``mkdir``: create the
    missing directories of ``pin`` or ``pin_dir`` (on a bpffs); without it a missing one
    is refused before any map is made.

    Raises PinExists for a pin that exists, UsageError for a map saved for reading only
    (fd maps) or what does not fit, the kernel's errors otherwise (with how many entries
    went in; no pin is left behind)."""
    if sum(x is not None for x in (pin, pin_dir, into)) != 1:
        raise UsageError("restore: give one of pin, pin_dir or into")
    if cpus is not None and cpus not in CPUS:
        raise UsageError(f"restore cpus {cpus}: choose one of {', '.join(CPUS)}")
    found = split_ref(ref)
    if found is None:
        raise UsageError(f"restore {ref}: not a saved map file")
    path, name = found
    file = SavedFile(path)
    report = RestoreReport()
    try:
        if into is not None:
            _into(file, file.find(name), ref, into, report)
        elif pin is not None:
            entry = file.find(name)
            _free(pin)
            check_pin_target(pin, mkdir=mkdir)
            with _made(file, entry, cpus, report) as (m, n):
                m.pin(pin)
            report.maps.append((pin, n))
        else:
            assert pin_dir is not None
            tops = [file.find(name)] if name is not None else [e for e in file.entries if "inner_of" not in e.meta]
            targets = [os.path.join(pin_dir, os.path.basename(file.label(e))) for e in tops]
            for t in targets:
                _free(t)
            check_pin_dir(pin_dir, mkdir=mkdir, what=words("restore ", Param("pin_dir"), f" {pin_dir}"))
            made = [_made(file, e, cpus, report) for e in tops]
            opened = [cm.__enter__() for cm in made]  # all filled before any is pinned
            try:
                for (m, n), target in zip(opened, targets):
                    m.pin(target)
                    report.maps.append((target, n))
            finally:
                for cm in made:
                    cm.__exit__(None, None, None)
    finally:
        file.close()
    return report


def _free(pin: str) -> None:
    if os.path.lexists(pin):
        what = "a symlink" if os.path.islink(pin) else "taken"
        raise PinExists(
            f"restore: {quote(pin)} is {what}; a restore never replaces a pin: choose another", errno.EEXIST
        )


class _made:
    """A context manager: the map ``entry`` describes, created and filled (and frozen),
    as (Map, entries written); closed on exit (a pin keeps it)."""

    def __init__(self, file: SavedFile, entry: SavedEntry, cpus: str | None, report: RestoreReport) -> None:
        self.m, self.n = _create(file, entry, cpus, report)

    def __enter__(self) -> tuple[Map, int]:
        return self.m, self.n

    def __exit__(self, *exc: object) -> None:
        self.m.close()


def _spec(meta: dict[str, Any], btf: Any = None) -> MapSpec:
    return MapSpec(
        meta["type"],
        meta["key_size"],
        meta["value_size"],
        meta["max_entries"],
        MapFlag(meta["flags"]) & ~MapFlag.RDONLY,  # user space must write the entries in
        name=str(meta.get("name", ""))[:15],
        map_extra=meta.get("map_extra", 0),
        inner=_spec(meta["inner"]) if meta.get("inner") else None,
        btf=btf,
    )


def _create(file: SavedFile, entry: SavedEntry, cpus: str | None, report: RestoreReport) -> tuple[Map, int]:
    meta, what = entry.meta, f"restore {file.path}:{file.label(entry)}"
    if meta.get("restore", "restore") != "restore":
        raise UsageError(
            f"{what}: a {meta.get('type_name', 'map')} map is saved for reading only (its values are kernel "
            f"objects, or only programs write it); read the file instead"
        )
    kind_inner = "inner" in meta or type_spec(meta["type"]).needs_inner_map
    if kind_inner and not meta.get("inner"):
        raise UsageError(f"{what}: the map of maps was saved empty, so the file does not say what its inner maps are")
    btf = None
    if entry.btf is not None and meta.get("btf"):
        from ..btf import BtfSpec

        btf = BtfSpec(entry.btf, int(meta["btf"].get("key_type_id", 0)), int(meta["btf"].get("value_type_id", 0)))
    if MapFlag.RDONLY in MapFlag(meta["flags"]):
        report.notes.append(f"{what}: created without rdonly (user space writes the entries in)")
    m = Map.create(_spec(meta, btf))
    if m.btf_note:
        report.notes.append(f"{what}: {m.btf_note}")
    try:
        n = _inners(file, entry, m, cpus, report) if kind_inner else _fill(file, entry, m, cpus, what)
        if meta.get("frozen"):
            m.freeze()
    except BaseException:
        m.close()  # never pinned: the kernel frees it
        raise
    return m, n


def _fill(file: SavedFile, entry: SavedEntry, m: Map, cpus: str | None, what: str) -> int:
    saved = SavedMap(file, entry, what)
    convert = _cpu_rule(saved, m, cpus, what)
    n = 0
    try:
        for keys, values, count in saved.batches():
            m.update_batch(keys, convert(keys, values, count) if convert else values, count)
            n += count
    except BpfmapError as err:
        done = n + int(getattr(err, "done", 0) or 0)
        raise amended(err, f"; {what}: {done:,} of {entry.entries:,} entries went in, nothing was pinned") from err
    if m.kind.evicts:  # an LRU map makes room by evicting, without an error, even before it is full
        held = sum(count for _k, _v, count in m.batches())
        if held < n:
            raise EntriesDropped(
                words(
                    f"{what}: {n:,} entries written, but the new map holds {held:,} of them: {n - held:,} dropped "
                    f"(the kernel evicts entries from an LRU map to make room, even before it holds max_entries "
                    f"{m.max_entries:,}); nothing was pinned: restore ",
                    Param("into"),
                    " a larger map",
                ),
                n - held,
            )
    return n


def _inners(file: SavedFile, outer: SavedEntry, m: Map, cpus: str | None, report: RestoreReport) -> int:
    n = 0
    for e in file.entries:
        if e.meta.get("inner_of") == outer.index:
            inner, _count = _create(file, e, cpus, report)
            with inner:
                m.update(bytes.fromhex(str(e.meta["slot"])), inner)
            n += 1
    return n


def _cpu_rule(saved: SavedMap, m: Map, cpus: str | None, what: str) -> Any:
    """None when the saved per-CPU slots fit this host, else the conversion ``cpus`` names."""
    if not saved.percpu or saved.ncpus == m.ncpus:
        return None
    if cpus is None:
        raise UsageError(
            f"{what}: per-CPU values saved on a host with {saved.ncpus} possible CPUs, this one has "
            f"{possible_cpus()}; say how to restore them: sum (into CPU 0) or first (CPU N's as saved)"
        )
    src, dst = saved.shape, m.shape
    if cpus == "first":
        keep = min(src.ncpus, dst.ncpus)

        def first(keys: bytes, values: bytes, count: int) -> bytes:
            out = bytearray()
            for i in range(count):
                one = values[i * src.entry : (i + 1) * src.entry]
                if any(one[keep * src.stride :]):
                    raise UsageError(f"{what}: cpus first would drop a value of a saved CPU past {keep - 1}")
                out += one[: keep * src.stride].ljust(dst.entry, b"\0")
            return bytes(out)

        return first
    from ..view import View, aggregate

    view = View(cast(Map, saved))  # a SavedMap reads as a Map does

    def summed(keys: bytes, values: bytes, count: int) -> bytes:
        out = bytearray()
        zero = bytes(dst.entry - dst.stride)
        for i in range(count):
            cpus_values = view.decode_value(src.split(values[i * src.entry : (i + 1) * src.entry]))
            out += view.encode_value(aggregate(cpus_values, "sum")).ljust(dst.stride, b"\0") + zero
        return bytes(out)

    return summed


def _into(file: SavedFile, entry: SavedEntry, ref: str, into: str, report: RestoreReport) -> None:
    """The saved entries written into the existing map ``into`` (its pin untouched), through
    the copy rules when the layouts differ; shape, room and key range checked first."""
    from ..view import View
    from .migrate import Copy

    saved = SavedMap(file, entry, ref)
    what = f"restore {ref} -> {into}"
    with Map.open(into) as target:
        if saved.percpu and target.percpu and saved.ncpus != target.ncpus:
            raise UsageError(
                f"{what}: per-CPU values saved on a host with {saved.ncpus} possible CPUs, {into} has "
                f"{target.ncpus}; restore to a new pin (with cpus) and copy from it"
            )
        if saved.entries > target.max_entries:
            raise UsageError(f"{what}: {saved.entries:,} entries saved, {into} holds at most {target.max_entries:,}")
        if target.kind.indexed:
            top = max((int.from_bytes(k[:4], "little") for k in saved.keys()), default=-1)
            if top >= target.max_entries:
                raise UsageError(f"{what}: the saved keys reach index {top}, {into} has {target.max_entries} slots")
        job = Copy(View(cast(Map, saved)), View(target))  # a SavedMap reads as a Map does
        keys, values, n = job.read()
        job.write(keys, values, n)  # a failure says how many went in (Copy.write)
    report.maps.append((into, n))
