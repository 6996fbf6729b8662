"""Map: a BPF map reached through a file descriptor, over bytes.

Keys and values are ``bytes`` of exactly the map's key and value size (per-CPU
values are lists of them, one per possible CPU).  Meaning comes from a Layout,
one layer above (``bpfmap.layout``).  Needs Linux >= 5.2 for queue/stack and
freeze, >= 5.16 for bloom filters; everything else works on 4.x kernels.

Map puts the core together (``bpfmap.core``: fd ownership, value packing, MapSpec and
creation, info and listing, batch operations, programs); it holds no syscall logic of
its own beyond the single-element verbs.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from .. import _sys
from .._lazy import JOINS
from ..errors import (
    ENOTSUPP,
    BpfmapError,
    MapFull,
    NotFound,
    Param,
    PermissionDenied,
    ReadOnly,
    UsageError,
    translate,
    words,
)
from ..types import REF_FORMS, SPECS, Access, MapType, TypeSpec, Value, map_type_label
from ..types import spec as type_spec
from .fd import FdOwner
from .info import MapInfo, id_by_name, info_from_fd, list_maps, map_ids, parse_id
from .pins import PinIndex, check_pin_target, open_pinned, pin_fd
from .savedref import is_saved, split_ref
from .values import ValueReads, ValueShape, possible_cpus

if TYPE_CHECKING:
    from .._sys import CBuffer
    from ..btf import MapBTF
    from .program import Program
    from .spec import MapSpec

# Loaded when first used, not by every command's start-up: batch operations, creation
# (MapSpec) and programs.  ``from bpfmap.core.maps import MapSpec, Program`` still works.
_LAZY = {"MapSpec": "spec", "Program": "program"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_LAZY[name]}", __package__), name)


_T = TypeVar("_T")
UpdateMode = Literal["any", "exist", "noexist"]
_UPDATE_FLAGS = {"any": _sys.BPF_ANY, "exist": _sys.BPF_EXIST, "noexist": _sys.BPF_NOEXIST}

MAX_BATCH_SIZE = 1 << 20  # elements per batch a caller may ask for (buffers stay in memory)


class Map(FdOwner, ValueReads):
    """A BPF map, owned through its file descriptor; a context manager that closes it.

    Make one with :meth:`create` or :meth:`open`.  Raises UsageError for keys and
    values of the wrong size before any syscall, KernelError subclasses for what
    the kernel refuses, KeyNotFound/Empty when there is nothing."""

    def __init__(self, fd: int, ref: str, readonly: bool = False) -> None:
        self._fd = fd
        self._shared = False  # before anything can fail: close() reads it
        self.ref = ref
        self.readonly = readonly
        try:
            info = info_from_fd(fd)
        except BaseException as err:
            self.close()
            if isinstance(err, OSError) and not isinstance(err, BpfmapError):
                raise translate("open", ref, err) from err
            raise
        self.id = info.id
        self.type = info.type
        self.name = info.name
        self.key_size = info.key_size
        self.value_size = info.value_size
        self.max_entries = info.max_entries
        self.flags = info.flags
        self.kind: TypeSpec = type_spec(info.type if isinstance(info.type, MapType) else MapType.UNSPEC)
        self.shape = ValueShape(self.value_size, self.kind.percpu)
        self.btf_id = info.btf_id
        self.btf_key_type_id = info.btf_key_type_id
        self.btf_value_type_id = info.btf_value_type_id
        self.btf_note: str | None = None
        self.walk_note: str | None = None  # how a dump found a local-storage map's objects, when it matters
        self._btf: Any = _UNREAD

    # (the value layout as attributes, type_label, get and `in`: core/values.ValueReads)

    # -- making and opening --------------------------------------------------------

    @classmethod
    def create(
        cls,
        map_type: MapSpec | MapType | str,
        *fields: Any,
        inner_map: Map | str | None = None,
        btf_required: bool = False,
        pin: str | None = None,
        mkdir: bool = False,
        mount: bool = True,
        **named: Any,
    ) -> Map:
        """Create a map from a :class:`MapSpec`, or from its fields: a type, then the
        others in MapSpec's order (key_size, value_size, max_entries, flags, ...) or by
        name; what is not given defaults from the type (see types.SPECS).

        The map lives as long as the returned object, or a pin: with ``pin``, it is pinned
        there (see :meth:`pin`) and known by that path (``ref``).  The pin is checked
        before the map is made, so a refused pin leaves nothing behind: PinExists (a pin
        is never replaced), NotBpffs (with how to mount one), UsageError for a missing
        directory unless ``mkdir``, which makes it.  With ``mount`` (the default) a bpffs
        is mounted on /sys/fs/bpf first when the pin is under it and none is there.
        Raises UsageError for combinations the kernel would refuse with a bare EINVAL,
        Unsupported when the kernel does not know the type.

        A map of maps needs ``inner_map`` (an open template map, or a reference opened
        read-only for the while) or a spec whose ``inner`` describes one.  ``btf`` (see
        :func:`bpfmap.btf.spec_for`) describes the key and value types; when the kernel
        refuses it the map is created without BTF and ``btf_note`` on the result says
        why, unless ``btf_required``."""
        from .spec import MapSpec

        spec = MapSpec.of(map_type, *fields, **named).resolved()
        if pin is None:
            return cls._made(spec, inner_map, btf_required)
        check_pin_target(pin, mkdir, mount)
        m = cls._made(spec, inner_map, btf_required)
        try:
            m.pin(pin, mkdir=mkdir)
        except BaseException:
            m.close()
            raise
        m.ref = pin
        return m

    @classmethod
    def _made(cls, spec: MapSpec, inner_map: Map | str | None, btf_required: bool) -> Map:
        from .spec import create_fd

        template = None
        if isinstance(inner_map, str):
            template = inner_map = cls.open(inner_map, readonly=True)
        elif inner_map is None and spec.inner is not None:
            template = inner_map = cls.create(spec.inner)
        try:
            fd, note = create_fd(spec, inner_map.fileno() if inner_map is not None else 0, btf_required)
        finally:
            if template is not None:
                template.close()  # the outer map keeps what it needs of the template
        m = cls(fd, ref=f"id:{_sys.map_info(fd).id}")
        m.btf_note = note
        return m

    @classmethod
    def open(cls, ref: str, readonly: bool = False) -> Map:
        """Open a map by pinned path, ``id:N`` or ``name:NAME``, or a saved map (a file
        ``bpfmap save`` wrote, or ``FILE:NAME`` for one of several in it): a read-only
        :class:`bpfmap.core.saved.SavedMap` that reads as a Map does.

        ``readonly`` opens with BPF_F_RDONLY, which works on read-only pins and
        read-only maps.  Inside :func:`shared_opens`, a map opened before with the same
        reference is handed out again (and closing it does nothing until the block ends)."""
        if _SHARED is not None:
            cached = _SHARED.get((ref, readonly))
            if cached is not None and not cached.closed:
                return cached
            m = cls._open(ref, readonly)
            m._shared = True
            _SHARED[(ref, readonly)] = m
            return m
        return cls._open(ref, readonly)

    @classmethod
    def _open(cls, ref: str, readonly: bool = False) -> Map:
        flags = _sys.BPF_F_RDONLY if readonly else 0
        if ref.startswith("id:"):
            map_id = parse_id(ref)
            try:
                fd = _sys.get_fd_by_id(_sys.Cmd.MAP_GET_FD_BY_ID, map_id, flags)
            except OSError as err:
                raise translate("open", ref, err) from err
            return cls(fd, ref, readonly)
        if ref.startswith("name:") and not ref[5:]:
            raise UsageError(
                "map reference 'name:': the name is empty (an unset variable?); give name:NAME, id:N or a pin"
            )
        saved = split_ref(ref)  # a saved file (FILE, FILE:NAME): read-only, read as a map is
        if saved is not None:
            from .saved import SavedFile  # only for a saved file: opening a pin does without the reader

            return cast(Map, SavedFile(saved[0]).map(saved[1], ref))  # not a Map, but it reads as one
        several = expand(ref)
        if several is not None:
            shown = ", ".join(several[:8]) + (", ..." if len(several) > 8 else "")
            require_some(several, ref)
            n = len(several)
            raise UsageError(
                f"{ref} names {n} map{'s' if n != 1 else ''} ({shown}); this command takes one map, by its own "
                f"reference: give {'one of them' if n != 1 else 'it'}"
            )
        if ref.startswith("name:"):
            return cls._open(f"id:{id_by_name(ref[5:])}", readonly)._renamed(ref)
        return cls(open_pinned(ref, "map", readonly), ref, readonly)

    def _renamed(self, ref: str) -> Map:
        self.ref = ref
        return self

    def __repr__(self) -> str:
        return (
            f"<Map {self.ref} id={self.id} type={map_type_label(int(self.type))} "
            f"key={self.key_size} value={self.value_size} max_entries={self.max_entries}>"
        )

    def view(
        self,
        layout: Any = None,
        c_header: str | None = None,
        key_type: str | None = None,
        value_type: str | None = None,
        include_dirs: list[str] | None = None,
    ) -> Any:
        """A typed, dict-like View over this map (``m.view("u32:u64")``; no layout: its BTF,
        else hex); closing the View leaves the map open.  (The package joins it to
        bpfmap.View: _lazy.JOINS.)"""
        return JOINS["view"](self, layout, c_header, key_type, value_type, include_dirs)

    # -- metadata ----------------------------------------------------------------------

    def info(self, pins: bool | PinIndex = False) -> MapInfo:
        """Fresh info from the kernel; with ``pins``, the paths it is pinned at (True: a
        walk of every bpffs; a :class:`PinIndex`: the pins it found, for many maps)."""
        info = info_from_fd(self.fileno())
        if pins:
            info.pinned = (pins if isinstance(pins, PinIndex) else PinIndex()).of(info.id)
        elif not self.ref.startswith(("id:", "name:")):  # opened by its pin
            info.pinned = [self.ref]
        return info

    def pin(self, path: str, mkdir: bool = False) -> None:
        """Pin the map at ``path`` on a bpffs, so it outlives this process.

        Never replaces an existing pin (PinExists); NotBpffs when the directory is
        not on a bpffs; UsageError when the directory is missing and not ``mkdir``."""
        pin_fd(self.fileno(), path, mkdir=mkdir)

    def btf(self) -> MapBTF | None:
        """The map's BTF (a :class:`bpfmap.btf.MapBTF`), or None when it has none; read
        once per Map (a map's BTF never changes)."""
        if self._btf is _UNREAD:
            from ..btf import map_btf

            self._btf = map_btf(self.btf_id, self.btf_key_type_id, self.btf_value_type_id)
        return cast("MapBTF | None", self._btf)

    def close(self) -> None:
        if not self._shared:  # a shared map (shared_opens) closes when its block ends
            super().close()

    def reopen(self) -> None:
        """Take an fd of the same map again after :meth:`close` (by its id, so a pin
        replaced meanwhile is not followed): many maps can be kept as Maps without an fd
        each, opened only while used.  Nothing when it is open.  Raises NoSuchObject when
        the map is gone."""
        if self._fd >= 0:
            return
        try:
            self._fd = _sys.get_fd_by_id(_sys.Cmd.MAP_GET_FD_BY_ID, self.id, _sys.BPF_F_RDONLY if self.readonly else 0)
        except OSError as err:
            raise translate("open", self.ref, err) from err

    def freeze(self) -> None:
        """Make the map read-only for user space, for good (Linux >= 5.2)."""
        self._call("freeze", _sys.map_freeze, self.fileno())

    # -- elements --------------------------------------------------------------------

    def lookup(self, key: bytes, lock: bool = False) -> bytes | list[bytes]:
        """The value at ``key`` (a list, one per possible CPU, for per-CPU maps).
        ``lock``: copy it under the value's bpf_spin_lock (BPF_F_LOCK).

        Raises KeyNotFound."""
        self.require("lookup")
        kbuf = self._key_buffer(key)
        vbuf = _sys.buffer(self.shape.entry)
        flags = self._lock_flag("lookup") if lock else 0
        self._call("lookup", _sys.map_elem, _sys.Cmd.MAP_LOOKUP_ELEM, self._fd, kbuf, vbuf, flags)
        return self.shape.split(vbuf.raw)

    def take(self, key: bytes) -> bytes | list[bytes]:
        """Remove ``key`` and return the value it held, in one step
        (BPF_MAP_LOOKUP_AND_DELETE_ELEM: hash maps on Linux 5.14+, so no program's
        update between a read and a delete is lost).  Raises KeyNotFound."""
        self.require("delete")
        if not self.kind.takes:
            takers = ", ".join(t.label for t, s in SPECS.items() if s.takes)
            raise UsageError(
                words(
                    Param("take"),
                    f" {self.ref}: the kernel hands an entry over as it deletes it only for hash "
                    f"maps ({takers}), not {self.type_label}; lookup, then delete",
                )
            )
        kbuf = self._key_buffer(key)
        vbuf = _sys.buffer(self.shape.entry)
        self._write("delete", _sys.map_elem, _sys.Cmd.MAP_LOOKUP_AND_DELETE_ELEM, self._fd, kbuf, vbuf)
        return self.shape.split(vbuf.raw)

    def _lock_flag(self, op: str) -> int:
        """BPF_F_LOCK, for a map whose values hold a bpf_spin_lock (per its BTF)."""
        mb = self.btf()
        if mb is None or not mb.value_has_spin_lock():
            raise UsageError(
                words(
                    f"{op} ",
                    Param("lock"),
                    f" {self.ref}: its values hold no struct bpf_spin_lock"
                    f"{'' if mb is not None else ' (the map has no BTF to say so)'}; ",
                    Param("lock"),
                    " is for values that do",
                )
            )
        return _sys.BPF_F_LOCK

    def update(
        self,
        key: bytes,
        value: bytes | Sequence[bytes] | Map | Program | int,
        mode: UpdateMode | int = "any",
        lock: bool = False,
    ) -> None:
        """Write ``value`` at ``key``.

        ``mode``: ``any`` (create or replace), ``noexist`` (create only: KeyExists
        if present), ``exist`` (replace only: KeyNotFound if absent).  Per-CPU maps
        take one value for every CPU or a sequence with one per possible CPU.  Maps
        of maps take a Map, prog_array a Program (or a raw fd as int).  ``lock``: write it
        under the value's bpf_spin_lock (BPF_F_LOCK)."""
        self.require("update")
        flags = _mode_flags(mode) | (self._lock_flag("update") if lock else 0)
        kbuf = self._key_buffer(key)
        vbuf = _sys.buffer(self._encode_value(value))
        self._write("update", _sys.map_elem, _sys.Cmd.MAP_UPDATE_ELEM, self._fd, kbuf, vbuf, flags)

    def delete(self, key: bytes) -> None:
        """Remove ``key``; raises KeyNotFound if it is not there."""
        self.require("delete")
        if not self.kind.deletable:
            raise UsageError(
                f"delete {self.ref}: {self.type_label} maps cannot delete elements (every index "
                f"always exists); write zeros with update instead"
            )
        kbuf = self._key_buffer(key)
        self._write("delete", _sys.map_elem, _sys.Cmd.MAP_DELETE_ELEM, self._fd, kbuf, None)

    def keys(self) -> Iterator[bytes]:
        """Every key, by BPF_MAP_GET_NEXT_KEY.

        When the current key is deleted under us, hash maps and tries restart from
        their first key; keys already returned are then skipped, so each key comes
        once.  Raises IterationAborted if the map changes so fast that the walk
        cannot finish (after 4x max_entries steps)."""
        self.require("getnext", "iterate")
        from . import batch

        return batch.walk_keys(self)

    __iter__ = keys

    def next_key(self, key: bytes | None = None) -> bytes:
        """The key after ``key`` (BPF_MAP_GET_NEXT_KEY), or the first key when ``key`` is
        None.  A hash map whose ``key`` is absent answers with its first key.  Raises
        NotFound at the end (or on an empty map)."""
        self.require("getnext")
        kbuf = self._key_buffer(key) if key is not None else None
        nxt = _sys.buffer(self.key_size)
        try:
            _sys.map_elem(_sys.Cmd.MAP_GET_NEXT_KEY, self.fileno(), kbuf, nxt)
        except OSError as err:
            if err.errno == errno.ENOENT:
                raise NotFound(
                    f"getnext {self.ref}: {'no key after it' if key is not None else 'the map is empty'}"
                ) from None
            raise translate("getnext", self.ref, err) from err
        return _sys.contents(nxt, self.key_size)

    def batches(self, delete: bool = False, size: int | None = None) -> Iterator[tuple[bytes, bytes, int]]:
        """Raw (keys, values, count) batches: ``count`` keys back to back, and their values
        at the map's value stride (per-CPU: ``round_up(value_size, 8)`` per possible CPU).
        ``delete`` drains the map: each batch is deleted as it is read (Linux >= 5.6).
        ``size`` caps the elements per batch (default: about 1 MiB of buffers); a hash
        bucket holding more than that still comes whole."""
        if size is not None and not 1 <= size <= MAX_BATCH_SIZE:
            raise UsageError(f"batch size {size}: give 1 to {MAX_BATCH_SIZE:,}")
        self.require("delete" if delete else "getnext", "drain" if delete else "iterate")
        if delete and not self.kind.deletable:
            raise UsageError(f"drain {self.ref}: {self.type_label} maps cannot delete elements")
        from . import batch

        return batch.batches(self, delete, size)

    def update_batch(self, keys: bytes, values: bytes, count: int, mode: UpdateMode | int = "any") -> int:
        """Write ``count`` elements from raw buffers (see :meth:`batches` for their shape).

        On failure the exception (MapFull, KeyExists, ...) carries ``done``: how many
        elements went in before it."""
        self.require("update")
        if len(keys) != count * self.key_size or len(values) != count * self.shape.entry:
            raise UsageError(f"update {self.ref}: batch buffers do not hold {count} elements")
        from . import batch

        return self._writing(lambda: batch.update(self, keys, values, count, _mode_flags(mode)), "update")

    def delete_batch(self, keys: bytes, count: int) -> int:
        """Delete ``count`` keys from a raw buffer; returns how many were there."""
        self.require("delete")
        if not self.kind.deletable:
            raise UsageError(f"delete {self.ref}: {self.type_label} maps cannot delete elements")
        from . import batch

        return self._writing(lambda: batch.delete(self, keys, count), "delete")

    def clear(self) -> int:
        """Remove every element (arrays: zero every value); returns how many there were."""
        self.require("clear")
        if self.kind.value is Value.FD:  # no batch operations: key by key, empty slots skipped
            n = 0
            for key in list(self.keys()):
                try:
                    _sys.map_elem(_sys.Cmd.MAP_DELETE_ELEM, self._fd, _sys.buffer(key), None)
                    n += 1
                except OSError as err:
                    if err.errno not in (errno.ENOENT, errno.EINVAL):  # sockmap: EINVAL for an empty slot
                        raise self._refine_write_error("clear", translate("clear", self.ref, err)) from err
            return n
        if self.kind.deletable:
            return sum(count for _k, _v, count in self.batches(delete=True))
        n = 0
        zero = bytes(self.shape.entry)
        for keys, _values, count in self.batches():
            self.update_batch(keys, zero * count, count)
            n += count
        return n

    def fd_values(self) -> tuple[list[tuple[bytes, bytes | None]], bool]:
        """The occupied slots of a map whose values are kernel objects (sockmap,
        cgroup_array, ...): (key, value) pairs, where the kernel reads a value back (a
        socket's cookie with 8-byte values), and whether it could not: then an array's
        slots cannot be told apart (no pairs) and a hash's keys come with None."""
        self.require("dump")
        vbuf = _sys.buffer(self.value_size)
        out: list[tuple[bytes, bytes | None]] = []
        unreadable = False
        for raw in self.keys():
            if not unreadable:
                try:
                    _sys.map_elem(_sys.Cmd.MAP_LOOKUP_ELEM, self._fd, _sys.buffer(raw), vbuf)
                except OSError as err:
                    if err.errno == errno.ENOENT:
                        continue  # an empty slot
                    if err.errno not in (errno.ENOSPC, errno.EOPNOTSUPP, ENOTSUPP, errno.EINVAL):
                        raise translate("dump", self.ref, err) from err
                    unreadable = True
                else:
                    out.append((raw, vbuf.raw))
                    continue
            if self.kind.indexed:
                return [], True  # every index answers getnext: occupied and empty slots look the same
            out.append((raw, None))
        return out, unreadable

    def _writing(self, fn: Callable[[], _T], op: str) -> _T:
        try:
            return fn()
        except PermissionDenied as err:
            refined = self._refine_write_error(op, err)
            if refined is err:
                raise
            raise refined from err

    # -- queue, stack, bloom filter ------------------------------------------------------

    def push(self, value: bytes, overwrite: bool = False) -> None:
        """Push onto a queue or stack, or add to a bloom filter.

        ``overwrite`` (queue/stack) drops the oldest element when full instead of
        raising MapFull."""
        self._require_keyless("push")
        vbuf = _sys.buffer(self._encode_value(value))
        flags = _sys.BPF_EXIST if overwrite else _sys.BPF_ANY
        self._write("push", _sys.map_elem, _sys.Cmd.MAP_UPDATE_ELEM, self._fd, None, vbuf, flags)

    def pop(self) -> bytes:
        """Take the next element off a queue (oldest) or stack (newest); raises Empty."""
        self._require_keyless("pop")
        vbuf = _sys.buffer(self.value_size)
        self._write("pop", _sys.map_elem, _sys.Cmd.MAP_LOOKUP_AND_DELETE_ELEM, self._fd, None, vbuf)
        return vbuf.raw[: self.value_size]

    def peek(self, value: bytes | None = None) -> bytes | bool:
        """The next element of a queue or stack without removing it (raises Empty).

        For a bloom filter, pass ``value``: True if it may be in the set, False if
        it is certainly not."""
        self._require_keyless("peek")
        if self.kind.access is Access.BLOOM:
            if value is None:
                raise UsageError(f"peek {self.ref}: a bloom filter needs the VALUE to test")
            vbuf = _sys.buffer(self._encode_value(value))
            try:
                _sys.map_elem(_sys.Cmd.MAP_LOOKUP_ELEM, self.fileno(), None, vbuf)
            except OSError as err:
                if err.errno == errno.ENOENT:
                    return False
                raise translate("peek", self.ref, err) from err
            return True
        if value is not None:
            raise UsageError(f"peek {self.ref}: {self.type_label} peek takes no VALUE")
        vbuf = _sys.buffer(self.value_size)
        self._call("peek", _sys.map_elem, _sys.Cmd.MAP_LOOKUP_ELEM, self._fd, None, vbuf)
        return vbuf.raw[: self.value_size]

    # -- helpers -------------------------------------------------------------------------

    def put_fd(self, index: int, fd: int) -> None:
        """Store a file descriptor at ``index`` of an fd array (perf_event_array: a perf
        event; cgroup_array: a cgroup directory); the kernel keeps its own reference."""
        try:
            _sys.map_elem(
                _sys.Cmd.MAP_UPDATE_ELEM,
                self.fileno(),
                _sys.buffer(index.to_bytes(4, "little")),
                _sys.buffer(fd.to_bytes(4, "little")),
                _sys.BPF_ANY,
            )
        except OSError as err:
            raise self._refine_write_error("update", translate("update", self.ref, err)) from err

    def remove_fd(self, index: int) -> None:
        """Empty slot ``index`` of an fd array (KeyNotFound if it is empty already)."""
        try:
            _sys.map_elem(_sys.Cmd.MAP_DELETE_ELEM, self.fileno(), _sys.buffer(index.to_bytes(4, "little")), None)
        except OSError as err:
            raise translate("delete", self.ref, err) from err

    def require(self, op: str, verb: str | None = None) -> None:
        """Refuse ``op`` (an element verb of types.TypeSpec.ops) on a type that has no such
        operation, naming the verbs that work; ``verb`` names the call in the message."""
        if self._fd < 0:
            raise ValueError(f"{self.ref}: map is closed")
        if op not in self.kind.ops and self.type is not MapType.UNSPEC:
            raise UsageError(f"{verb or op} {self.ref}: {access_hint(self.type_label, self.kind, op)}")

    def _require_keyless(self, op: str) -> None:
        self.require(op)
        self.fileno()

    def _key_buffer(self, key: bytes) -> CBuffer:
        self.check_key(key)
        return _sys.buffer(key)

    def _encode_value(self, value: object) -> bytes:
        from .program import Program

        if isinstance(value, (Map, Program)):
            if self.kind.value not in (Value.MAP_ID, Value.PROG_ID):
                raise UsageError(f"value for {self.ref}: {self.type_label} values are data, not maps or programs")
            want = Value.MAP_ID if isinstance(value, Map) else Value.PROG_ID
            if self.kind.value is not want:
                raise UsageError(
                    f"value for {self.ref}: {self.type_label} takes "
                    f"{'a map' if self.kind.value is Value.MAP_ID else 'a program'}"
                )
            value = value.fileno()
        if isinstance(value, int):
            if self.kind.value is Value.BYTES:
                raise UsageError(f"value for {self.ref}: give bytes, not an int")
            return value.to_bytes(self.value_size if self.value_size in (4, 8) else 4, "little")
        if self.percpu:
            values = [value] if isinstance(value, (bytes, bytearray, memoryview)) else list(value)  # type: ignore[call-overload]
            return self.shape.pack(values, f"value for {self.ref}")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise UsageError(f"value for {self.ref}: expected bytes, got {type(value).__name__}")
        if len(value) != self.value_size:
            raise UsageError(
                f"value for {self.ref}: {len(value)} bytes given, the map's values are {self.value_size} bytes"
            )
        return bytes(value)

    def _call(self, op: str, fn: Callable[..., object], *args: Any) -> None:
        try:
            fn(*args)
        except OSError as err:
            raise translate(op, self.ref, err) from err

    def _write(self, op: str, fn: Callable[..., object], *args: Any) -> None:
        """A call that changes the map: EPERM there often means frozen or read-only, not root."""
        try:
            fn(*args)
        except OSError as err:
            raise self._refine_write_error(op, translate(op, self.ref, err)) from err

    def _refine_write_error(self, op: str, exc: BpfmapError) -> BpfmapError:
        """A PermissionDenied from a write, told apart: a read-only fd or a frozen map is
        not a missing capability."""
        if isinstance(exc, PermissionDenied):
            if self.readonly:
                return ReadOnly(f"{op} {self.ref}: the map was opened read-only; open it for writing", exc.errno)
            if _sys.fdinfo(self._fd).get("frozen") == "1":
                return ReadOnly(
                    f"{op} {self.ref}: the map is frozen (read-only for user space for good; libbpf "
                    f"freezes a program's .rodata and .kconfig maps at load, so set those knobs before "
                    f"loading); create a new map to write",
                    exc.errno,
                )
        if isinstance(exc, MapFull) and self.kind.indexed and not self.kind.deletable:  # E2BIG of an array
            top = self.max_entries
            return UsageError(
                f"{op} {self.ref}: an index past the end of the array (max_entries {top}: indices 0..{top - 1})"
            )
        return exc


_UNREAD = object()
_SHARED: dict[tuple[str, bool], Map] | None = None


@contextlib.contextmanager
def shared_opens() -> Iterator[None]:
    """Within the block, ``Map.open`` of a reference opened before returns the same Map
    (one fd, its BTF read once), and ``close`` leaves it open; every map is closed when the
    block ends.  For many commands in one process (``bpfmap batch``).  ``forget()``
    drops the maps opened so far (after a command that creates or pins maps)."""
    global _SHARED
    outer = _SHARED
    _SHARED = {}
    try:
        yield
    finally:
        forget()
        _SHARED = outer


def forget() -> None:
    """Close the maps ``shared_opens`` holds (they are opened again on next use)."""
    if _SHARED is None:
        return
    for m in _SHARED.values():
        m._shared = False
        m.close()
    _SHARED.clear()


def verb_list(kind: Any) -> str:
    """The verbs that work on a map type, as a sentence names them: 'bpfmap peek',
    'bpfmap pop' or 'bpfmap push'."""
    works = [f"'bpfmap {o}'" for o in kind.operations() if not o.startswith("none")]
    return " or ".join([", ".join(works[:-1]), works[-1]] if len(works) > 1 else works)


def expand(ref: str, names: bool = False, pins: PinIndex | None = None) -> list[str] | None:
    """The maps a reference to several names, in order (None: it names at most one, for
    Map.open to open or refuse): a directory on a bpffs (every map pinned below it), a glob
    of pin paths (``/sys/fs/bpf/app/*``), ``name:GLOB``, a saved file of several maps, and with ``names`` a ``name:NAME``
    that several maps have (as ``id:N``).  ``pins``: the pins found already (the command
    asks it for each map's pins too)."""
    import os

    if not may_name_several(ref):
        return None
    if is_saved(ref):  # a saved file: each of its maps as FILE:NAME, when it holds several
        from .saved import several

        return several(ref)
    if ref.startswith("name:"):
        pattern = ref[5:]
        wild = _wild(pattern)
        if not pattern or (not wild and (len(pattern) > 15 or not names)):
            return None  # one name: Map.open finds it (and says when several maps have it)
        from fnmatch import fnmatchcase

        ids = [i.id for i in list_maps(pins=False) if fnmatchcase(i.name, pattern)]
        return [f"id:{i}" for i in sorted(ids)] if wild or len(ids) > 1 else None
    if os.path.isdir(ref):
        try:
            on_bpffs = _sys.fs_magic(ref) == _sys.BPF_FS_MAGIC
        except OSError:
            on_bpffs = False
        if not on_bpffs:
            return None  # not a bpffs: opening it says what it is
        root = os.path.realpath(ref)
        found = (pins or PinIndex()).found
        return sorted(path for _id, path in found if os.path.realpath(path).startswith(root + os.sep))
    if _wild(ref) and not os.path.exists(ref):
        import glob

        wanted = set(glob.glob(ref))
        return sorted(path for _id, path in (pins or PinIndex()).found if path in wanted)
    return None


def may_name_several(ref: str) -> bool:
    """Whether :func:`expand` may find several maps in ``ref`` (a ``name:``, a directory, a
    glob that is no path, a saved file), told without listing any: False, and it names at
    most one."""
    import os

    if ref.startswith("id:"):
        return False
    return ref.startswith("name:") or os.path.isdir(ref) or (_wild(ref) and not os.path.exists(ref)) or is_saved(ref)


def _wild(text: str) -> bool:
    return any(c in text for c in "*?[")


def require_some(refs: list[str], ref: str) -> None:
    """NotFound (exit 1) when ``refs``, what :func:`expand` made of ``ref``, is no map at all."""
    if not refs:
        raise NotFound(f"{ref} names no map: no map is pinned there (or matches)")


def access_hint(label: str, kind: Any, op: str = "") -> str:
    """Why a map of this type has no ``op``, and the verbs that work on it instead."""
    use = f"; use {verb_list(kind)}" if verb_list(kind) else ""
    access = kind.access
    if access in (Access.QUEUE, Access.STACK):
        if op == "update":
            return f"{label} maps have no keys; add a value with 'bpfmap push MAP VALUE'"
        return f"{label} maps have no keys and cannot be iterated{use}"
    if access is Access.BLOOM:
        if op == "pop":
            return "bloom filters cannot give elements back; test membership with 'bpfmap peek MAP VALUE'"
        return f"{label} maps have no keys and cannot be iterated; add with 'bpfmap push', test with 'bpfmap peek'"
    if access is Access.STREAM:
        return f"{label} maps carry a stream of records, not entries{use}"
    if access is Access.OBJECT:
        if op in ("dump", "watch", "getnext", "iterate"):
            return (
                f"{label} maps are keyed by kernel objects the kernel cannot list; "
                f"look one up by reference: 'bpfmap lookup MAP {REF_FORMS[kind.object].form if kind.object else ''}'"
            )
        return f"{label} maps are keyed by kernel objects{use}"
    if access is Access.NONE:
        if label == "arena":
            return "an arena is memory shared by mmap(2) between programs and user space; it has no elements"
        return f"{label} maps have no elements user space can reach; the programs that use them do"
    if op == "update" and label == "stack_trace":
        return f"stack_trace maps are written only by programs (bpf_get_stackid){use}"
    if op == "delete" and not kind.deletable:
        return (
            f"{label} maps cannot delete elements (every index always exists); write zeros with 'bpfmap update' instead"
        )
    return f"{label} maps have no {op}{use}"


def _mode_flags(mode: UpdateMode | int) -> int:
    if isinstance(mode, int):
        return mode
    try:
        return _UPDATE_FLAGS[mode]
    except KeyError:
        raise UsageError(f"update mode {mode!r}: choose any, exist or noexist") from None


__all__ = [
    "MAX_BATCH_SIZE",
    "BpfmapError",
    "Map",
    "MapInfo",
    "MapSpec",
    "Program",
    "list_maps",
    "map_ids",
    "possible_cpus",
]
