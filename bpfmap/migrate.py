"""Moving entries between maps of different shapes: ``copy`` (every entry, or those a
filter picks, from one map into another, each side decoded by its own layout) and
``migrate`` (a map of a new shape made, filled, and swapped in under the old pin in one
rename, the old map kept pinned next to it).

A copy reads and converts every entry before it writes any, so a value that does not fit
the target (a narrowing, a sign change, a string too long) stops it with the target
untouched.  Programs that hold the old map keep using it after a migration: the intended
flow is migrate, then reload the program, which reopens the pin."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from . import _sys
from .convert import Plan, converter
from .core.spec import MapSpec
from .errors import BpfmapError, MapFull, NoSuchObject, PinExists, UsageError, amended
from .filters import Where
from .layout import Layout
from .maps import Map
from .pins import is_bpffs
from .types import Access, Value
from .view import AGGREGATES, View, aggregate

PERCPU_TO_PLAIN = (*AGGREGATES, "cpu0")
TO_CPU = ("all", "0")
WRITE_CHUNK = 4096


class Copy:
    """Every entry of ``src`` (that ``where`` passes) converted into ``dst``'s layout:
    :meth:`read` takes them all in (the checks of every value happen there), :meth:`write`
    puts them into ``dst``.  ``drops``, ``sets`` and ``truncate`` as in
    bpfmap.convert.Plan; ``percpu`` (sum, max, min, avg, cpu0) makes per-CPU values plain,
    ``to_cpu`` (all, 0) plain values per-CPU.  UsageError for what does not fit, before
    the source is read."""

    def __init__(
        self,
        src: View,
        dst: View,
        where: Where | None = None,
        drops: set[str] | None = None,
        sets: dict[str, str] | None = None,
        truncate: bool = False,
        percpu: str | None = None,
        to_cpu: str | None = None,
    ) -> None:
        self.src, self.dst, self.where = src, dst, where
        sm, dm = src.map, dst.map
        for m, verb, side in ((sm, "dump", "source"), (dm, "update", "target")):
            m.require(verb, "copy")
            if m.kind.access is not Access.KEYED or m.kind.value is not Value.BYTES:
                raise UsageError(
                    f"copy: the {side} {m.ref} is a {m.type_label}; copy moves the entries of maps keyed by "
                    f"data with data values (hash, array, LRU, LPM, their per-CPU kinds, ...)"
                )
        if sm.id == dm.id and not hasattr(sm, "saved"):  # a saved map is never the live one
            raise UsageError(f"copy: {sm.ref} and {dm.ref} are the same map")
        self._reduce = self._percpu_rule(percpu, to_cpu)
        plan = Plan(drops, sets, truncate)
        self.key_convert = self._side(src.key, dst.key, sm.key_size, dm.key_size, "key", plan)
        self.value_convert = self._side(src.value, dst.value, sm.value_size, dm.value_size, "value", plan)
        if plan.unmatched:
            raise UsageError(
                f"copy {sm.ref} -> {dm.ref}: the target has no {', '.join(plan.unmatched)}; "
                f"--drop {' --drop '.join(p.split(' ')[0] for p in plan.unmatched)} to leave "
                f"{'it' if len(plan.unmatched) == 1 else 'them'} behind"
            )
        unused = sorted((plan.drops | set(plan.sets)) - plan.used)
        if unused:
            raise UsageError(f"copy: {', '.join(unused)}: no such field to drop or set (write key.NAME or value.NAME)")
        self.raw = self.key_convert is None and self.value_convert is None and self._reduce is None
        self.read_count = self.written = 0

    def _percpu_rule(self, percpu: str | None, to_cpu: str | None) -> Callable[[Any], Any] | None:
        s, d = self.src.percpu, self.dst.percpu
        if percpu is not None and not (s and not d):
            raise UsageError("--percpu is for copying a per-CPU map into a plain one")
        if to_cpu is not None and not (d and not s):
            raise UsageError("--to-cpu is for copying a plain map into a per-CPU one")
        if s and not d:
            if percpu is None:
                raise UsageError(
                    f"copy: {self.src.map.ref} is per-CPU and {self.dst.map.ref} is not: "
                    f"--percpu {'|'.join(PERCPU_TO_PLAIN)} says how to make one value of each"
                )
            if percpu == "cpu0":
                return lambda vals: vals[0]
            if percpu not in AGGREGATES:
                raise UsageError(f"--percpu {percpu}: choose one of {', '.join(PERCPU_TO_PLAIN)}")
            return lambda vals: aggregate(vals, percpu)
        if d and not s:
            if to_cpu not in TO_CPU:
                raise UsageError(
                    f"copy: {self.dst.map.ref} is per-CPU and {self.src.map.ref} is not: --to-cpu all puts each "
                    f"value on every CPU, --to-cpu 0 on CPU 0 (the others zero)"
                )
            n = self.dst.map.ncpus
            if to_cpu == "all":
                return lambda v: [v] * n
            shape = self.dst.map.shape
            zero = self.dst.decode_value(shape.split(bytes(shape.entry)))[0]
            return lambda v: [v] + [zero] * (n - 1)
        return None

    @staticmethod
    def _side(src_codec: Any, dst_codec: Any, src_size: int, dst_size: int, side: str, plan: Plan):
        """The conversion of one side (None: the bytes as they are)."""
        s, d = getattr(src_codec, "type", None), getattr(dst_codec, "type", None)
        if s is None or d is None:  # a side without a layout: bytes as they are, when sizes agree
            if src_size != dst_size:
                raise UsageError(
                    f"copy: the {side}s are {src_size} and {dst_size} bytes and "
                    f"{'neither has' if s is None and d is None else 'one has no'} layout to convert them by; "
                    f"give both (--from-layout, --to-layout, or BTF)"
                )
            return None
        if s == d:
            return None
        return converter(s, d, side, plan)

    def read(self) -> tuple[bytes, bytes, int]:
        """(keys, values, count): every entry the copy will write, in the target's bytes."""
        src = self.src
        ks, vs = src.map.key_size, src.map.shape.entry
        keys, values = bytearray(), bytearray()
        count = 0
        where = self.where
        if where is not None:
            where.begin()
        stream = src.raw_batches()
        try:
            for kraw, vraw, n in stream:
                if self.raw and not where:
                    keys += kraw[: n * ks]
                    values += vraw[: n * vs]
                    count += n
                    continue
                dk, dv = src.decode_batch(kraw, vraw, n)
                for i in range(n):
                    if where and not where(dk[i], dv[i]):
                        continue
                    kb, vb = kraw[i * ks : (i + 1) * ks], vraw[i * vs : (i + 1) * vs]
                    if not self.raw:
                        kb, vb = self._entry(dk[i], dv[i], kb, vb)
                    keys += kb
                    values += vb
                    count += 1
        finally:
            stream.close()
        self.read_count = count
        return bytes(keys), bytes(values), count

    def _entry(self, key: Any, value: Any, kraw: bytes, vraw: bytes) -> tuple[bytes, bytes]:
        """One entry in the target's bytes (a side that needs no conversion as it was)."""
        src, dst = self.src, self.dst
        kc, vc, spread = self.key_convert, self.value_convert, self._reduce
        enc, pack = dst.value.encode, dst.map.shape.pack
        try:
            kb = kraw if kc is None else dst.key.encode(kc(key))
            if vc is None and spread is None:
                vb = vraw
            elif src.percpu and dst.percpu:  # CPU by CPU
                vb = pack([enc(vc(x)) for x in value], "value")
            elif src.percpu:  # one value of all CPUs'
                v = spread(value)  # type: ignore[misc]
                vb = enc(vc(v) if vc is not None else v)
            elif dst.percpu:  # onto every CPU, or CPU 0
                vb = pack([enc(x) for x in spread(vc(value) if vc is not None else value)], "value")  # type: ignore[misc]
            else:
                vb = enc(vc(value))
        except UsageError as err:
            raise UsageError(
                f"copy {src.map.ref} -> {dst.map.ref}: entry {src.key.format(key)}: {err}; nothing was written"
            ) from None
        return kb, vb

    def write(self, keys: bytes, values: bytes, count: int, progress: Callable[[int], None] | None = None) -> int:
        """Write what :meth:`read` gave; MapFull (with ``done``) says how many went in."""
        dm = self.dst.map
        ks, vs = dm.key_size, dm.shape.entry
        done = 0
        while done < count:
            n = min(WRITE_CHUNK, count - done)
            try:
                dm.update_batch(keys[done * ks : (done + n) * ks], values[done * vs : (done + n) * vs], n)
            except BpfmapError as err:
                went = done + (getattr(err, "done", None) or 0)
                self.written = went
                if isinstance(err, MapFull) or getattr(err, "errno", 0) == 7:  # E2BIG: past an array's end
                    raise amended(
                        err,
                        f"; {dm.ref} is full ({dm.max_entries} max_entries) after {went} of {count} entries went in",
                        done=went,
                    ) from None
                raise amended(err, f"; {went} of {count} entries went in", done=went) from None
            done += n
            self.written = done
            if progress is not None:
                progress(done)
        return done


# -- migrate ----------------------------------------------------------------------------------


class Migration:
    """What a migration did: the new map's spec, how many entries moved, where the old map
    is pinned now."""

    def __init__(self, pin: str, kept: str, old: Any, new: Any, entries: int, btf_note: str | None) -> None:
        self.pin, self.kept, self.old, self.new, self.entries, self.btf_note = pin, kept, old, new, entries, btf_note


def new_spec(
    old: Map,
    max_entries: int | None = None,
    map_type: str | None = None,
    flags: str | None = None,
    layout: Layout | None = None,
) -> tuple[MapSpec, int]:
    """The spec of the map that replaces ``old``: its own, with the changes (a layout gives
    new sizes and BTF; otherwise the old map's BTF is kept).  Returns (spec, an fd of the
    old BTF to close after creating, or 0)."""
    from .api import sizes_and_btf

    info = old.info()
    if old.kind.access is not Access.KEYED or old.kind.value is not Value.BYTES:
        raise UsageError(
            f"migrate {old.ref}: a {old.type_label} holds kernel objects or no keyed entries; "
            f"migrate moves maps keyed by data with data values"
        )
    spec = MapSpec(info.type, info.key_size, info.value_size, info.max_entries, info.flags, name=info.name)
    spec.map_extra = info.map_extra
    if map_type is not None:
        spec = spec.replace(type=map_type)
    if flags is not None:
        spec = spec.replace(flags=flags)
    if max_entries is not None:
        spec = spec.replace(max_entries=max_entries)
    btf_fd = 0
    if layout is not None:
        key, value, types = sizes_and_btf(spec.type, layout, None, None)
        spec = spec.replace(key_size=key, value_size=value, btf=types)
    elif info.btf_id:
        from .btf import BtfSpec, open_by_id

        btf_fd = open_by_id(info.btf_id)
        spec = spec.replace(btf=BtfSpec(b"", info.btf_key_type_id, info.btf_value_type_id, fd=btf_fd))
    return spec, btf_fd


def keep_old_path(pin: str, keep_old: str | None) -> str:
    """Where the old map stays pinned (default: PIN_old); refused when taken or on another
    filesystem than the pin (a rename cannot cross them)."""
    kept = keep_old or pin + "_old"
    if os.path.lexists(kept):
        raise PinExists(f"migrate {pin}: {kept} exists; remove it or give --keep-old PATH", 17)
    here, there = os.path.dirname(os.path.abspath(pin)), os.path.dirname(os.path.abspath(kept))
    if not os.path.isdir(there):
        raise NoSuchObject(f"migrate {pin}: no directory {there} for --keep-old", 2)
    if os.stat(here).st_dev != os.stat(there).st_dev:
        raise UsageError(f"migrate {pin}: --keep-old {kept} is on another filesystem; keep it on the pin's bpffs")
    return kept


def swap(new: Map, pin: str, kept: str) -> None:
    """Put ``new`` at ``pin`` and the map pinned there at ``kept``, in one rename: pinned
    at ``kept`` first, then the two names exchanged (renameat2 RENAME_EXCHANGE), so
    every open of ``pin`` finds a map, the old one or the new one.  Ctrl-C and SIGTERM
    wait until both steps are done."""
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        new.pin(kept)
        try:
            _sys.rename_exchange(kept, pin)
        except OSError as err:
            if err.errno not in (22, 38, 95):  # EINVAL/ENOSYS/EOPNOTSUPP: no exchange here
                os.unlink(kept)
                raise
            # the same, in three steps: the old map linked at kept, the new one renamed over pin
            os.unlink(kept)
            os.link(pin, kept)
            tmp = f"{kept}_new"
            new.pin(tmp)
            os.rename(tmp, pin)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def migrate(
    pin: str,
    spec: MapSpec | None = None,
    *,
    from_object: str | None = None,
    map_name: str | None = None,
    keep_old: str | None = None,
    old_layout: Layout | None = None,
    new_layout: Layout | None = None,
    btf_fd: int = 0,
    copy_options: dict[str, Any] | None = None,
    on_copy: Callable[[Copy], None] | None = None,
) -> Migration:
    """Replace the map pinned at ``pin`` by one made from ``spec`` (see :func:`new_spec`)
    or from the map ``map_name`` of the BPF object ``from_object``, with every entry
    copied (``copy_options``: Copy's), then swapped in (see :func:`swap`).  The old map
    stays pinned at ``keep_old`` (default PIN_old).  ``on_copy`` sees the Copy before it
    reads (to report progress).  A failure or Ctrl-C before the swap leaves ``pin`` as it
    was, the new map gone."""
    if not is_bpffs(os.path.dirname(os.path.abspath(pin)) or "."):
        raise UsageError(f"migrate {pin}: give the path of a pin on a bpffs")
    kept = keep_old_path(pin, keep_old)
    with Map.open(pin) as old:
        try:
            new, definition = _make(old, spec, from_object, map_name)
        finally:
            if btf_fd:
                os.close(btf_fd)
        with new:
            if definition is not None:
                diff = definition.spec.compatible(new.info(), "object")
                if diff:
                    raise UsageError(f"migrate {pin}: the new map differs from {from_object}'s {map_name}: {diff}")
            copy = Copy(View(old, old_layout), View(new, new_layout), **(copy_options or {}))
            if on_copy is not None:
                on_copy(copy)
            keys, values, count = copy.read()
            copy.write(keys, values, count)
            old_info, new_info = old.info(), new.info()
            swap(new, pin, kept)
    return Migration(pin, kept, old_info, new_info, count, getattr(new, "btf_note", None))


def _make(old: Map, spec: MapSpec | None, from_object: str | None, map_name: str | None) -> tuple[Map, Any]:
    if from_object is not None:
        from .objects import read_object
        from .objects.create import create_map

        obj = read_object(from_object)
        if map_name is None:
            raise UsageError(f"migrate --from-object {from_object}: name the map (--map NAME)")
        d = obj.map(map_name)
        return create_map(obj, map_name), d
    if spec is None:
        raise UsageError("migrate: give the new shape (a spec) or an object and a map name")
    return Map.create(spec), None
