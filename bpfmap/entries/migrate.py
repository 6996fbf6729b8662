"""Moving entries between maps of different shapes: ``copy`` (every entry, or those a
filter picks, from one map into another, each side decoded by its own layout) and
``migrate`` (a map of a new shape made, filled, and swapped in under the old pin in one
rename, the old map kept pinned next to it).

A copy reads and converts every entry before it writes any, so a value that does not fit
the target (a narrowing, a sign change, a string too long), or entries the target has no
room for (an array's index range, a hash's free room), stop it with the target
untouched; after writing, the target's keys are read back, and only what it holds is
counted (an LRU map evicts, before it is full too).  Programs and processes that hold the
old map keep using it after a migration (one pass after the swap carries what they wrote
while it ran): the intended flow is migrate, then reload the program, which reopens the
pin."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from .. import _sys
from ..core.maps import Map
from ..core.pins import is_bpffs, refuse_symlink
from ..core.spec import MapSpec
from ..errors import (
    BpfmapError,
    EntriesDropped,
    KeyExists,
    KeyNotFound,
    MapFull,
    NoRoom,
    Param,
    PinExists,
    UsageError,
    amended,
    words,
)
from ..filters import Where
from ..layout import Layout
from ..layout.convert import Conversion, Convert, converter
from ..layout.model import Type
from ..types import Access, Value
from ..view import AGGREGATES, View, aggregate

PERCPU_TO_PLAIN = (*AGGREGATES, "cpu0")
TO_CPU = ("all", "0")
WRITE_CHUNK = 4096
Key = int | bytes  # a key as copies count and compare them (see _split)


class Copy:
    """Every entry of ``src`` (that ``where`` passes) converted into ``dst``'s layout:
    :meth:`read` takes them all in (the checks of every value happen there), :meth:`write`
    puts them into ``dst``.  ``drops``, ``sets`` and ``truncate`` as in
    bpfmap.layout.convert.Conversion; ``percpu`` (sum, max, min, avg, cpu0) makes per-CPU values plain,
    ``to_cpu`` (all, 0) plain values per-CPU.  UsageError for what does not fit, before
    the source is read.

    Every entry counts: :meth:`write` checks before writing that the entries fit ``dst``
    (an array's index range, a hash's free room, keys that become one another's) and
    verifies after writing that ``dst`` holds every key it wrote (``held``); what did not
    make it is ``left_out`` (did not fit: with ``allow_loss`` only), ``lost`` (written,
    then evicted) and ``evicted`` (entries ``dst`` held before, evicted by the copy).
    ``keep_source`` keeps the source's bytes as read, for :meth:`carry`."""

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
        allow_loss: bool = False,
        keep_source: bool = False,
        layouts: tuple[str, str, str] = ("copy", "src_layout", "dst_layout"),
    ) -> None:
        """``layouts``: the verb and the parameters that give the source's and the target's
        layouts, as a message names them (migrate's are its old and new layouts)."""
        self.src, self.dst, self.where = src, dst, where
        self.allow_loss, self.keep_source = allow_loss, keep_source
        sm, dm = src.map, dst.map
        refuse_symlink(dm.ref, "copy")
        # how messages name the job, its target, and the state a refusal leaves (migrate sets its own)
        self.what, self.target, self.untouched = f"copy {sm.ref} -> {dm.ref}", dm.ref, "nothing was written"
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
        plan = Conversion(drops, sets, truncate)
        # what the fields hold is converted, whatever display formats show (they serve the filter)
        (sk, sv), (dk, dv) = src.field_types, dst.field_types
        self.key_convert = self._side(sk, dk, sm.key_size, dm.key_size, "key", plan, layouts)
        self.value_convert = self._side(sv, dv, sm.value_size, dm.value_size, "value", plan, layouts)
        if plan.unmatched:
            each = [
                words(" " if i else "", Param("drops"), f" {p.split(' ')[0]}") for i, p in enumerate(plan.unmatched)
            ]
            raise UsageError(
                words(
                    f"copy {sm.ref} -> {dm.ref}: the target has no {', '.join(plan.unmatched)}; ",
                    *each,
                    f" to leave {'it' if len(plan.unmatched) == 1 else 'them'} behind",
                )
            )
        unused = sorted((plan.drops | set(plan.sets)) - plan.used)
        if unused:
            raise UsageError(f"copy: {', '.join(unused)}: no such field to drop or set (write key.NAME or value.NAME)")
        self.raw = self.key_convert is None and self.value_convert is None and self._reduce is None
        self.read_count = self.written = 0
        self.held = self.left_out = self.lost = self.evicted = 0
        self._read: tuple[bytes, bytes] = (b"", b"")  # the target's bytes of every entry read
        self._source: tuple[bytes, bytes] = (b"", b"")  # the same entries in the source's bytes (keep_source)
        self._kept: list[int] = []  # the indices of the entries written

    def _percpu_rule(self, percpu: str | None, to_cpu: str | None) -> Callable[[Any], Any] | None:
        s, d = self.src.percpu, self.dst.percpu
        if percpu is not None and not (s and not d):
            raise UsageError(words(Param("percpu"), " is for copying a per-CPU map into a plain one"))
        if to_cpu is not None and not (d and not s):
            raise UsageError(words(Param("to_cpu"), " is for copying a plain map into a per-CPU one"))
        if s and not d:
            if percpu is None:
                raise UsageError(
                    words(
                        f"copy: {self.src.map.ref} is per-CPU and {self.dst.map.ref} is not: ",
                        Param("percpu", "|".join(PERCPU_TO_PLAIN)),
                        " says how to make one value of each",
                    )
                )
            if percpu == "cpu0":
                return lambda vals: vals[0]
            if percpu not in AGGREGATES:
                raise UsageError(words(Param("percpu"), f" {percpu}: choose one of {', '.join(PERCPU_TO_PLAIN)}"))
            return lambda vals: aggregate(vals, percpu)
        if d and not s:
            if to_cpu not in TO_CPU:
                raise UsageError(
                    words(
                        f"copy: {self.dst.map.ref} is per-CPU and {self.src.map.ref} is not: ",
                        Param("to_cpu", "all"),
                        " puts each value on every CPU, ",
                        Param("to_cpu", "0"),
                        " on CPU 0 (the others zero)",
                    )
                )
            n = self.dst.map.ncpus
            if to_cpu == "all":
                return lambda v: [v] * n
            shape = self.dst.map.shape
            zero = self.dst.decode_value(shape.split(bytes(shape.entry)))[0]
            return lambda v: [v] + [zero] * (n - 1)
        return None

    @staticmethod
    def _side(
        s: Type | None,
        d: Type | None,
        src_size: int,
        dst_size: int,
        side: str,
        plan: Conversion,
        layouts: tuple[str, str, str],
    ) -> Convert | None:
        """The conversion of one side from type ``s`` to ``d`` (None: the bytes as they are)."""
        if s is None or d is None:  # a side without a layout: bytes as they are, when sizes agree
            if src_size != dst_size:
                raise UsageError(
                    words(
                        f"{layouts[0]}: the {side}s are {src_size} and {dst_size} bytes and "
                        f"{'neither has' if s is None and d is None else 'one has no'} layout to convert them by; "
                        "give both (",
                        *(Param(layouts[1]), ", ", Param(layouts[2]), ", or BTF)"),
                    )
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
        src_keys, src_values = bytearray(), bytearray()
        keep = self.keep_source and not self.raw
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
                picked, dk, dv = src.stored_passing(where, kraw, vraw, n)
                for i in picked:
                    kb, vb = kraw[i * ks : (i + 1) * ks], vraw[i * vs : (i + 1) * vs]
                    if keep:
                        src_keys += kb
                        src_values += vb
                    if not self.raw:
                        kb, vb = self._entry(dk[i], dv[i], kb, vb)
                    keys += kb
                    values += vb
                    count += 1
        finally:
            stream.close()
        self.read_count = count
        self._read = (bytes(keys), bytes(values))
        if self.keep_source:
            self._source = (bytes(src_keys), bytes(src_values)) if keep else self._read
        return self._read[0], self._read[1], count

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
                vb = pack([enc(vc(x)) for x in value], "value")  # type: ignore[misc]  # vc: not None here (no _reduce, bytes differ)
            elif src.percpu:  # one value of all CPUs'
                v = spread(value)  # type: ignore[misc]
                vb = enc(vc(v) if vc is not None else v)
            elif dst.percpu:  # onto every CPU, or CPU 0
                vb = pack([enc(x) for x in spread(vc(value) if vc is not None else value)], "value")  # type: ignore[misc]
            else:
                vb = enc(vc(value))  # type: ignore[misc]  # vc: not None here (no _reduce, bytes differ)
        except UsageError as err:
            raise UsageError(
                f"copy {src.map.ref} -> {dst.map.ref}: entry {src.key.format(key)}: {err}; nothing was written"
            ) from None
        return kb, vb

    def write(self, keys: bytes, values: bytes, count: int, progress: Callable[[int], None] | None = None) -> int:
        """Write what :meth:`read` gave and return how many of its entries the target holds
        after (``held``, verified by reading the target's keys back).

        Before writing: NoRoom when some entries cannot fit (keys past an array's end, more
        new keys than a map's free room, two entries that become one key), unless
        ``allow_loss``: then only what fits is written.  After writing: EntriesDropped when
        the target lost entries (an LRU map evicts, and may before it is full), unless
        ``allow_loss``.  MapFull (with ``done``) when the kernel refused partway (something
        else filled the target since the check)."""
        dm = self.dst.map
        ks, vs = dm.key_size, dm.shape.entry
        before = _keys(dm)
        kept = self._fit(keys, count, before)
        if len(kept) < count:
            keys = b"".join(keys[i * ks : (i + 1) * ks] for i in kept)
            values = b"".join(values[i * vs : (i + 1) * vs] for i in kept)
        self._kept, self.left_out = kept, count - len(kept)
        count = len(kept)
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
        self._verify(set(_split(keys, ks, count)), before)
        return self.held

    @property
    def dropped(self) -> int:
        """Entries of the source (and of the target, evicted) that the target does not hold."""
        return self.left_out + self.lost + self.evicted

    def _fit(self, keys: bytes, count: int, before: set[Key]) -> list[int]:
        """The indices of the entries to write: every one, or (``allow_loss``) those that
        fit; NoRoom when some do not and loss is not allowed."""
        dm, target = self.dst.map, self.target
        ks, top = dm.key_size, dm.max_entries
        # key -> the entry written last with it (the one the target keeps)
        last = dict(zip(_split(keys, ks, count), range(count)))
        reasons, lose = [], count - len(last)
        if lose:
            reasons.append(f"{_n(lose)} would overwrite another entry's key in {target}")
        if dm.kind.indexed and not dm.kind.deletable:  # an array: indices 0..max_entries-1, always there
            past = [k for k in last if isinstance(k, int) and k >= top]  # 4-byte keys: indices
            if past:
                first = min(past)
                reasons.append(
                    f"{_n(len(past))} {'has a key' if len(past) == 1 else 'have keys'} past the end of {target} "
                    f"(the first: {first}), an array of indices 0..{top - 1}"
                )
                lose += len(past)
                for k in past:
                    del last[k]
        elif len(before) + len(last) > top:  # (else every key fits, whichever are new)
            new = [k for k in last if k not in before]
            room = max(0, top - len(before))
            over = len(new) - room
            if over > 0:
                held = f"{len(before)} held of max_entries {top}" if before else f"max_entries {top}"
                evicts = (
                    f": the kernel evicts entries from an LRU map to make room, so {'at least ' if before else ''}"
                    f"{over} would be lost"
                    if dm.kind.evicts
                    else ""
                )
                reasons.append(
                    f"{len(new)} entries are new to {target}, which has room for {room} "
                    f"({held}; {len(before) + len(new)} needed){evicts}"
                )
                lose += over
                if not dm.kind.evicts:  # what fits: the first new keys read
                    for key in new[room:]:
                        del last[key]
        if reasons and not self.allow_loss:
            raise NoRoom(
                f"{self.what}: {'; '.join(reasons)}; {self.untouched}: give a map with room for them, "
                f"or pick fewer entries",
                lose,
            )
        return list(range(count)) if len(last) == count else sorted(last.values())

    def _verify(self, written: set[Key], before: set[Key]) -> None:
        """Read the target's keys back: ``held``, ``lost`` and ``evicted`` as they are."""
        dm = self.dst.map
        after = _keys(dm)
        self.held = len(written & after)
        self.lost = len(written) - self.held
        # entries the target held before that are gone: evicted by the copy (in a map that
        # does not evict, programs deleted them: not the copy's doing)
        self.evicted = len(before - written - after) if dm.kind.evicts else 0
        if (self.lost or self.evicted) and not self.allow_loss:
            also = f" ({self.lost} of these, and {_n(self.evicted)} it held before)" if self.evicted else ""
            why = (
                f" (the kernel evicts entries from an LRU map to make room, even before it holds max_entries "
                f"{dm.max_entries})"
                if dm.kind.evicts
                else " (deleted since they were written)"
            )
            raise EntriesDropped(
                f"{self.what}: {_n(len(written))} written, but {self.target} holds {self.held} of them: "
                f"{self.lost + self.evicted} dropped{also}{why}; give a map with more room",
                self.lost + self.evicted,
            )

    def carry(self) -> tuple[int, int, int]:
        """One pass over the source after the copy: each change since :meth:`read` took it
        (a new key, a new value, a deletion) carried into the target, where the target
        still holds what :meth:`write` put there (a newer write to the target stays).
        Returns (carried, newer, failed): changes carried; changes the target had a newer
        write of; changes that could not go in (a value that does not convert, a full
        target).  Needs ``keep_source``."""
        src, dm = self.src.map, self.dst.map
        sks, svs, dks, dvs = src.key_size, src.shape.entry, dm.key_size, dm.shape.entry
        skeys, svalues = self._source
        keys, values = self._read
        snap = {skeys[i * sks : (i + 1) * sks]: i for i in range(self.read_count)}
        written = {i: (keys[i * dks : (i + 1) * dks], values[i * dvs : (i + 1) * dvs]) for i in self._kept}
        now = dict(_entries(dm))
        seen: set[int] = set()
        carried = newer = failed = 0
        for k, v in list(_entries(src)):
            i = snap.get(k)
            if i is not None:
                seen.add(i)
                if svalues[i * svs : (i + 1) * svs] == v:
                    continue
                if i not in written:
                    continue  # left out by the copy (allow_loss): nothing of it in the target
            try:
                entry = self._one(k, v)
            except UsageError:
                failed += 1
                continue
            if entry is None:  # the filter leaves it out
                continue
            dk, dv = entry
            ours = None if i is None else written[i][1]  # what the copy put at dk (None: nothing)
            if now.get(dk) != ours:  # the target has a newer write at dk
                newer += 1
                continue
            try:
                dm.update_batch(dk, dv, 1, "noexist" if i is None else "exist")
                carried += 1
            except (KeyExists, KeyNotFound):  # the target changed since it was read
                newer += 1
            except BpfmapError:
                failed += 1
        for i in written.keys() - seen:  # deleted from the source since
            dk, dv = written[i]
            if dk not in now:
                continue
            if now[dk] != dv:
                newer += 1
                continue
            try:
                carried += dm.delete_batch(dk, 1)
            except BpfmapError:
                failed += 1
        return carried, newer, failed

    def _one(self, kraw: bytes, vraw: bytes) -> tuple[bytes, bytes] | None:
        """One source entry in the target's bytes, or None when the filter leaves it out."""
        if self.raw and not self.where:
            return kraw, vraw
        picked, dk, dv = self.src.stored_passing(self.where, kraw, vraw, 1)
        if not picked:
            return None
        return (kraw, vraw) if self.raw else self._entry(dk[0], dv[0], kraw, vraw)


def copy(src: View, dst: View, where: Where | list[str] | None = None, **options: Any) -> Copy:
    """Copy every entry of ``src`` (those ``where`` passes: a filters.Where or conditions
    such as ``["packets>=3"]``) into ``dst``, converted between their layouts (``options``:
    :class:`Copy`'s).  Returns the Copy, whose ``held`` says how many entries ``dst``
    holds (read back) and ``dropped`` how many did not make it (only with allow_loss;
    else NoRoom before anything is written, EntriesDropped when the target evicted)."""
    job = Copy(src, dst, src.where(list(where)) if isinstance(where, (list, tuple)) else where, **options)
    keys, values, count = job.read()
    job.write(keys, values, count)
    return job


def _entries(m: Map) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of ``m`` as raw bytes (per-CPU values as one batch entry)."""
    ks, vs = m.key_size, m.shape.entry
    for keys, values, n in m.batches():
        for i in range(n):
            yield keys[i * ks : (i + 1) * ks], values[i * vs : (i + 1) * vs]


def _keys(m: Map) -> set[Key]:
    """Every key of ``m``, as :func:`_split` gives them."""
    ks, out = m.key_size, set[Key]()
    for keys, _values, n in m.batches():
        out.update(_split(keys, ks, n))
    return out


_KEY_CODES: dict[int, Literal["B", "H", "I", "Q"]] = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _split(buf: bytes, size: int, n: int) -> Sequence[Key]:
    """The ``n`` keys of ``size`` bytes in ``buf``, to count and compare: keys of 1, 2, 4
    or 8 bytes as native integers (a column converted at once, and an array's index as
    it is), others as bytes."""
    code = _KEY_CODES.get(size)
    if code is not None:
        return memoryview(buf)[: n * size].cast(code).tolist()
    return [buf[i : i + size] for i in range(0, n * size, size)]


def _n(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


# -- migrate ----------------------------------------------------------------------------------


class Migration:
    """What a migration did: the new map's spec, how many entries it holds (verified:
    ``entries``) and how many were ``dropped`` (only with allow_loss), where the old map is
    pinned now, and the pass after the swap over writes made to the old map meanwhile:
    ``carried`` into the new map, ``newer`` (the new map had a newer write: kept),
    ``failed`` (could not go in: they are only in the old map)."""

    def __init__(self, pin: str, kept: str, old: Any, new: Any, copy: Copy, btf_note: str | None) -> None:
        self.pin, self.kept, self.old, self.new, self.btf_note = pin, kept, old, new, btf_note
        self.entries, self.dropped = copy.held, copy.dropped
        self.carried = self.newer = self.failed = 0


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
    from ..api import sizes_and_btf

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
        from ..btf import BtfSpec, open_by_id

        btf_fd = open_by_id(info.btf_id)
        spec = spec.replace(btf=BtfSpec(b"", info.btf_key_type_id, info.btf_value_type_id, fd=btf_fd))
    return spec, btf_fd


def keep_old_path(pin: str, keep_old: str | None) -> str:
    """Where the old map stays pinned (default: PIN_old); refused when taken or on another
    filesystem than the pin (a rename cannot cross them)."""
    kept = keep_old or pin + "_old"
    if os.path.lexists(kept):
        raise PinExists(words(f"migrate {pin}: {kept} exists; remove it or give ", Param("keep_old", "PATH")), 17)
    here, there = os.path.dirname(os.path.abspath(pin)), os.path.dirname(os.path.abspath(kept))
    if not os.path.isdir(there):
        raise UsageError(
            words(
                f"migrate {pin}: no directory {there} for ", Param("keep_old"), f"; create it (mkdir -p {there}) first"
            )
        )
    if os.stat(here).st_dev != os.stat(there).st_dev:
        raise UsageError(
            words(
                f"migrate {pin}: ", Param("keep_old"), f" {kept} is on another filesystem; keep it on the pin's bpffs"
            )
        )
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
    max_entries: int | None = None,
    map_type: str | None = None,
    flags: str | None = None,
    layout: Layout | None = None,
    from_object: str | None = None,
    map_name: str | None = None,
    keep_old: str | None = None,
    old_layout: Layout | None = None,
    new_layout: Layout | None = None,
    where: Any = None,
    show_as: dict[str, str] | None = None,
    btf_fd: int = 0,
    copy_options: dict[str, Any] | None = None,
    on_copy: Callable[[Copy], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Migration:
    """Replace the map pinned at ``pin`` by one of a new shape holding the same entries:
    the old map's own with the changes ``max_entries``, ``map_type``, ``flags`` and
    ``layout`` (new sizes and BTF; see :func:`new_spec`), or ``spec``, or the map
    ``map_name`` of the BPF object ``from_object`` (then no other shape); UsageError when
    no shape or two are given.  Every entry is copied (``where``: a list of conditions,
    or a function of the old map's View that returns a filters.Where, picks some; its
    conditions read the old map's fields through display formats ``show_as``, as
    View.show_as takes them: a VALUE in the shown form, ``~`` in the text shown;
    ``copy_options``: Copy's; with ``allow_loss`` a new map too small for them takes
    what fits, else NoRoom or EntriesDropped before the swap), then swapped in (see
    :func:`swap`).  The old map stays pinned at ``keep_old`` (default PIN_old).

    Writers that opened ``pin`` before the swap write to the old map: after the swap one
    pass carries what they changed since the copy read it (:meth:`Copy.carry`); what
    they write after that pass stays in the old map.  ``on_copy`` sees the Copy before
    it reads (to report progress); ``on_stage`` is called with "copied" (the new map
    filled, not yet swapped in) and "swapped" (before the pass).  A failure or Ctrl-C
    before the swap leaves ``pin`` as it was, the new map gone.  A symbolic link at
    ``pin`` is refused (UsageError naming its target)."""
    shaped = spec is not None or any(x is not None for x in (max_entries, map_type, flags, layout))
    if from_object is not None:
        if shaped:
            raise UsageError(
                words(
                    "migrate ",
                    Param("from_object"),
                    " takes the new shape from the object; drop the other shape options",
                )
            )
        if map_name is None:
            raise UsageError(
                words(
                    "migrate ", Param("from_object"), f" {from_object}: name the map (", Param("map_name", "NAME"), ")"
                )
            )
    elif map_name is not None:
        raise UsageError(words(Param("map_name", "NAME"), " goes with ", Param("from_object", "OBJ")))
    elif not shaped:
        raise UsageError(
            words(
                "migrate: give the new shape: ",
                *(Param("max_entries"), ", ", Param("map_type"), ", ", Param("flags"), ", "),
                Param("layout", also=True),
                " or ",
                Param("from_object"),
            )
        )
    layout_ = new_layout if layout is None else layout
    with Map.open(pin, readonly=True) as old:
        if spec is None and from_object is None:
            spec, btf_fd = new_spec(old, max_entries, map_type, flags, layout)
            spec = spec.resolved()
        if where is not None or show_as:
            bound = View(old, old_layout)
            if show_as:
                bound.show_as(show_as)  # a field neither side has: refused before anything is made
            if where is not None:
                where = bound.where(list(where)) if isinstance(where, (list, tuple)) else where(bound)
    return _migrate(
        pin,
        spec,
        from_object,
        map_name,
        keep_old,
        old_layout,
        layout_,
        where,
        show_as,
        btf_fd,
        copy_options,
        on_copy,
        on_stage,
    )


def _migrate(
    pin: str,
    spec: MapSpec | None,
    from_object: str | None,
    map_name: str | None,
    keep_old: str | None,
    old_layout: Layout | None,
    new_layout: Layout | None,
    where: Where | None,
    show_as: dict[str, str] | None,
    btf_fd: int,
    copy_options: dict[str, Any] | None,
    on_copy: Callable[[Copy], None] | None,
    on_stage: Callable[[str], None] | None,
) -> Migration:
    refuse_symlink(pin, "migrate")
    if not is_bpffs(os.path.dirname(os.path.abspath(pin)) or "."):
        raise UsageError(f"migrate {pin}: give the path of a pin on a bpffs")
    kept = keep_old_path(pin, keep_old)
    stage = on_stage or (lambda _name: None)
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
            options = dict(copy_options or {})
            if where is not None:
                options["where"] = where
            src = View(old, old_layout)
            if show_as:
                src.show_as(show_as)  # what the filter's ~ tests read
            layouts = ("migrate", "old_layout", "layout")
            copy = Copy(src, View(new, new_layout), keep_source=True, layouts=layouts, **options)
            copy.what, copy.target, copy.untouched = f"migrate {pin}", "the new map", f"{pin} is unchanged"
            if on_copy is not None:
                on_copy(copy)
            keys, values, count = copy.read()
            try:
                copy.write(keys, values, count)
            except EntriesDropped as err:
                raise amended(err, f"; {pin} is unchanged") from None
            old_info, new_info = old.info(), new.info()
            stage("copied")
            swap(new, pin, kept)
            stage("swapped")
            result = Migration(pin, kept, old_info, new_info, copy, getattr(new, "btf_note", None))
            result.carried, result.newer, result.failed = copy.carry()
    return result


def _make(old: Map, spec: MapSpec | None, from_object: str | None, map_name: str | None) -> tuple[Map, Any]:
    if from_object is not None:
        from ..objects import read_object
        from ..objects.create import create_map

        obj = read_object(from_object)
        assert map_name is not None  # migrate() refused the object without it
        d = obj.map(map_name)
        return create_map(obj, map_name), d
    if spec is None:
        raise UsageError("migrate: give the new shape (a spec) or an object and a map name")
    return Map.create(spec), None
