"""Map: a BPF map reached through a file descriptor, over bytes.

Keys and values are ``bytes`` of exactly the map's key and value size (per-CPU
values are lists of them, one per possible CPU).  Meaning comes from a Layout,
one layer above (``bpfmap.layout``).  Needs Linux >= 5.2 for queue/stack and
freeze, >= 5.16 for bloom filters; everything else works on 4.x kernels.
"""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .btf import BtfSpec

from . import _sys
from .errors import (
    ENOTSUPP,
    BpfmapError,
    IterationAborted,
    KeyNotFound,
    NoSuchObject,
    PermissionDenied,
    ReadOnly,
    Unsupported,
    UsageError,
    WrongObjectType,
    translate,
)
from .inputs import quote
from .pins import open_pinned, pin_fd, pinned_maps
from .types import Access, MapFlag, MapType, TypeSpec, Value, map_type_label, spec

UpdateMode = Literal["any", "exist", "noexist"]
_UPDATE_FLAGS = {"any": _sys.BPF_ANY, "exist": _sys.BPF_EXIST, "noexist": _sys.BPF_NOEXIST}
# errnos with which the kernel refuses a create it does not support (ENOTSUPP leaks from inside)
_REFUSED = (errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.]{0,15}$")


MAX_BATCH_SIZE = 1 << 20  # elements per batch a caller may ask for (buffers stay in memory)


@functools.cache
def possible_cpus() -> int:
    """How many CPUs the kernel could ever bring online: per-CPU values have this many slots."""
    with open("/sys/devices/system/cpu/possible") as f:
        return len(_parse_cpu_list(f.read()))


def _parse_cpu_list(text: str) -> list[int]:
    """``0-3,6`` -> [0, 1, 2, 3, 6] (the kernel's cpulist format)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def _round8(n: int) -> int:
    return (n + 7) & ~7


class MapInfo:
    """What the kernel says about a map (struct bpf_map_info + fdinfo), and where it is pinned."""

    def __init__(
        self,
        id: int,
        type: MapType | int,
        name: str,
        key_size: int,
        value_size: int,
        max_entries: int,
        flags: MapFlag,
        memlock: int | None = None,
        frozen: bool = False,
        btf_id: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        map_extra: int = 0,
        ifindex: int = 0,
        pinned: list[str] | None = None,
    ) -> None:
        self.id, self.type, self.name = id, type, name
        self.key_size, self.value_size, self.max_entries, self.flags = key_size, value_size, max_entries, flags
        self.memlock, self.frozen = memlock, frozen
        self.btf_id, self.btf_key_type_id, self.btf_value_type_id = btf_id, btf_key_type_id, btf_value_type_id
        self.map_extra, self.ifindex = map_extra, ifindex
        self.pinned: list[str] = list(pinned or [])

    def __repr__(self) -> str:
        return f"MapInfo({self.to_dict()!r})"

    @property
    def type_name(self) -> str:
        return map_type_label(int(self.type))

    def to_dict(self) -> dict:
        """The documented JSON shape of ``show``/``list``."""
        return {
            "id": self.id,
            "type": self.type_name,
            "name": self.name,
            "key_size": self.key_size,
            "value_size": self.value_size,
            "max_entries": self.max_entries,
            "flags": MapFlag(self.flags).labels(),
            "memlock": self.memlock,
            "frozen": self.frozen,
            "btf_id": self.btf_id,
            "btf_key_type_id": self.btf_key_type_id,
            "btf_value_type_id": self.btf_value_type_id,
            "map_extra": self.map_extra,
            "pinned": list(self.pinned),
        }


def _info_from_fd(fd: int) -> MapInfo:
    raw = _sys.map_info(fd)
    try:
        mtype: MapType | int = MapType(raw.type)
    except ValueError:
        mtype = raw.type
    extra = _sys.fdinfo(fd)
    memlock = extra.get("memlock")
    return MapInfo(
        id=raw.id,
        type=mtype,
        name=raw.name.decode(errors="replace"),
        key_size=raw.key_size,
        value_size=raw.value_size,
        max_entries=raw.max_entries,
        flags=MapFlag(raw.map_flags),
        memlock=int(memlock) if memlock and memlock.isdigit() else None,
        frozen=extra.get("frozen", "0") == "1",
        btf_id=raw.btf_id,
        btf_key_type_id=raw.btf_key_type_id,
        btf_value_type_id=raw.btf_value_type_id,
        map_extra=raw.map_extra,
        ifindex=raw.ifindex,
    )


def map_ids() -> Iterator[int]:
    """Ids of every map in the system (needs CAP_SYS_ADMIN)."""
    current = 0
    while True:
        try:
            current = _sys.get_next_id(_sys.Cmd.MAP_GET_NEXT_ID, current)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return
            raise translate("list", "maps", err) from err
        yield current


class _FdOwner:
    """Owns a file descriptor: ``fileno``, ``close``, a context manager, closed when collected."""

    _fd: int
    ref: str

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError(f"{self.ref}: already closed")
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Map(_FdOwner):
    """A BPF map, owned through its file descriptor; a context manager that closes it.

    Make one with :meth:`create` or :meth:`open`.  Raises UsageError for keys and
    values of the wrong size before any syscall, KernelError subclasses for what
    the kernel refuses, KeyNotFound/Empty when there is nothing."""

    def __init__(self, fd: int, ref: str, readonly: bool = False) -> None:
        self._fd = fd
        self.ref = ref
        self.readonly = readonly
        try:
            info = _info_from_fd(fd)
        except BaseException:
            self.close()
            raise
        self.id = info.id
        self.type = info.type
        self.name = info.name
        self.key_size = info.key_size
        self.value_size = info.value_size
        self.max_entries = info.max_entries
        self.flags = info.flags
        self.spec: TypeSpec = spec(info.type) if isinstance(info.type, MapType) else spec(MapType.UNSPEC)
        self.percpu = self.spec.percpu
        self.ncpus = possible_cpus() if self.percpu else 1
        self.stride = _round8(self.value_size) if self.percpu else self.value_size
        self.btf_id = info.btf_id
        self.btf_key_type_id = info.btf_key_type_id
        self.btf_value_type_id = info.btf_value_type_id
        self.btf_note: str | None = None

    # -- making and opening --------------------------------------------------------

    @classmethod
    def create(
        cls,
        map_type: MapType | str,
        key_size: int | None = None,
        value_size: int | None = None,
        max_entries: int | None = None,
        flags: MapFlag | str | int | None = None,
        name: str = "",
        inner_map: Map | None = None,
        numa_node: int | None = None,
        map_extra: int = 0,
        btf: BtfSpec | None = None,
        btf_required: bool = False,
    ) -> Map:
        """Create a map; sizes, entries and flags default from the type (see types.SPECS).

        The map lives as long as the returned object (or a pin, see :meth:`pin`).
        Raises UsageError for combinations the kernel would refuse with a bare
        EINVAL, Unsupported when the kernel does not know the type.

        ``btf`` (see :func:`bpfmap.btf.spec_for`) describes the key and value types;
        when the kernel refuses it the map is created without BTF and ``btf_note``
        on the result says why, unless ``btf_required``."""
        mtype = MapType.parse(map_type) if isinstance(map_type, str) else MapType(map_type)
        s = spec(mtype)
        label = mtype.label
        if isinstance(flags, str):
            flags = MapFlag.parse(flags)
        mflags = s.default_flags if flags is None else MapFlag(flags)
        key_size = _pick_size(label, "key", key_size, s.key_size, None)
        value_size = _pick_size(label, "value", value_size, s.value_size, s.default_value_size)
        if max_entries is None:
            max_entries = possible_cpus() if s.default_max_entries is None else s.default_max_entries
        _validate_create(mtype, s, key_size, value_size, max_entries, mflags, name, inner_map, map_extra)
        if numa_node is not None:
            mflags |= MapFlag.NUMA_NODE
        note = None
        btf_fd = 0
        if btf is not None:
            if s.value is not Value.BYTES or s.access in (Access.STREAM, Access.NONE):
                note = f"{label} maps cannot carry BTF for their keys and values; created without"
                btf = None
            else:
                from .btf import load as load_btf

                try:
                    btf_fd = btf.fd or load_btf(btf)
                except BpfmapError as err:
                    if btf_required:
                        raise
                    note = f"{err}; created the map without BTF"
                    btf = None

        def attempt(with_btf: bool) -> int:
            return _sys.map_create(
                mtype,
                key_size,
                value_size,
                max_entries,
                int(mflags),
                name.encode(),
                inner_map_fd=inner_map.fileno() if inner_map is not None else 0,
                numa_node=numa_node or 0,
                map_extra=map_extra,
                btf_fd=btf_fd if with_btf else 0,
                btf_key_type_id=btf.key_type_id if with_btf and btf else 0,
                btf_value_type_id=btf.value_type_id if with_btf and btf else 0,
            )

        try:
            try:
                fd = attempt(btf is not None)
            except OSError as err:
                if btf is None or btf_required or err.errno not in _REFUSED:
                    raise
                fd = attempt(False)  # the kernel refused the BTF, not the map
                note = (
                    f"the kernel refused BTF for a {label} map "
                    f"({errno.errorcode.get(err.errno, err.errno)}); created the map without BTF"
                )
        except OSError as err:
            if err.errno in _REFUSED:
                raise Unsupported(
                    f"create {label}: the kernel refused a {label} map with key {key_size}, value "
                    f"{value_size}, max_entries {max_entries}, flags {','.join(mflags.labels()) or 'none'} "
                    f"(errno {errno.errorcode.get(err.errno, err.errno)}); this kernel may not support "
                    f"{label} maps or this combination{' with this BTF' if btf_required else ''}",
                    err.errno,
                ) from err
            if err.errno == errno.E2BIG:
                raise Unsupported(
                    f"create {label}: key {key_size} / value {value_size} / max_entries {max_entries} is too "
                    f"big for a {label} map on this kernel (E2BIG); use smaller sizes",
                    err.errno,
                ) from err
            raise translate("create", label, err) from err
        finally:
            if btf_fd and not (btf is not None and btf.fd):
                os.close(btf_fd)
        m = cls(fd, ref=f"id:{_sys.map_info(fd).id}")
        m.btf_note = note
        return m

    @classmethod
    def open(cls, ref: str, readonly: bool = False) -> Map:
        """Open a map by pinned path, ``id:N`` or ``name:NAME``.

        ``readonly`` opens with BPF_F_RDONLY, which works on read-only pins and
        read-only maps."""
        flags = _sys.BPF_F_RDONLY if readonly else 0
        if ref.startswith("id:"):
            map_id = _parse_id(ref)
            try:
                fd = _sys.get_fd_by_id(_sys.Cmd.MAP_GET_FD_BY_ID, map_id, flags)
            except OSError as err:
                raise translate("open", ref, err) from err
            return cls(fd, ref, readonly)
        if ref.startswith("name:"):
            if not ref[5:]:
                raise UsageError(
                    "map reference 'name:': the name is empty (an unset variable?); give name:NAME, id:N or a pin"
                )
            return cls.open(f"id:{_id_by_name(ref[5:])}", readonly)._renamed(ref)
        return cls(open_pinned(ref, "map", readonly), ref, readonly)

    def _renamed(self, ref: str) -> Map:
        self.ref = ref
        return self

    def __repr__(self) -> str:
        return (
            f"<Map {self.ref} id={self.id} type={map_type_label(int(self.type))} "
            f"key={self.key_size} value={self.value_size} max_entries={self.max_entries}>"
        )

    # -- metadata ----------------------------------------------------------------------

    def info(self, pins: bool = False) -> MapInfo:
        """Fresh info from the kernel; with ``pins``, the paths it is pinned at (scans bpffs)."""
        info = _info_from_fd(self.fileno())
        if pins:
            info.pinned = [path for map_id, path in pinned_maps() if map_id == info.id]
        elif not self.ref.startswith(("id:", "name:")):  # opened by its pin
            info.pinned = [self.ref]
        return info

    def pin(self, path: str, mkdir: bool = False) -> None:
        """Pin the map at ``path`` on a bpffs, so it outlives this process.

        Never replaces an existing pin (PinExists); NotBpffs when the directory is
        not on a bpffs; UsageError when the directory is missing and not ``mkdir``."""
        pin_fd(self.fileno(), path, mkdir=mkdir)

    def btf(self):
        """The map's BTF (a :class:`bpfmap.btf.MapBTF`), or None when it has none."""
        from .btf import map_btf

        return map_btf(self.btf_id, self.btf_key_type_id, self.btf_value_type_id)

    def freeze(self) -> None:
        """Make the map read-only for user space, for good (Linux >= 5.2)."""
        self._call("freeze", _sys.map_freeze, self.fileno())

    # -- elements --------------------------------------------------------------------

    def lookup(self, key: bytes) -> bytes | list[bytes]:
        """The value at ``key`` (a list, one per possible CPU, for per-CPU maps).

        Raises KeyNotFound."""
        self._require(Access.KEYED, "lookup")
        kbuf = self._key_buffer(key)
        vbuf = _sys.buffer(self.stride * self.ncpus)
        self._call("lookup", _sys.map_elem, _sys.Cmd.MAP_LOOKUP_ELEM, self._fd, kbuf, vbuf)
        return self._split_value(vbuf.raw)

    def get(self, key: bytes, default: object = None) -> object:
        try:
            return self.lookup(key)
        except KeyNotFound:
            return default

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

    def update(
        self, key: bytes, value: bytes | Sequence[bytes] | Map | Program | int, mode: UpdateMode | int = "any"
    ) -> None:
        """Write ``value`` at ``key``.

        ``mode``: ``any`` (create or replace), ``noexist`` (create only: KeyExists
        if present), ``exist`` (replace only: KeyNotFound if absent).  Per-CPU maps
        take one value for every CPU or a sequence with one per possible CPU.  Maps
        of maps take a Map, prog_array a Program (or a raw fd as int)."""
        self._require(Access.KEYED, "update")
        flags = _mode_flags(mode)
        kbuf = self._key_buffer(key)
        vbuf = _sys.buffer(self._encode_value(value))
        self._write("update", _sys.map_elem, _sys.Cmd.MAP_UPDATE_ELEM, self._fd, kbuf, vbuf, flags)

    def delete(self, key: bytes) -> None:
        """Remove ``key``; raises KeyNotFound if it is not there."""
        self._require(Access.KEYED, "delete")
        if not self.spec.deletable:
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
        self._require(Access.KEYED, "iterate")
        return self._walk_keys()

    def _walk_keys(self) -> Iterator[bytes]:
        ks = self.key_size
        # Arrays walk by index and never restart; everything else may.
        seen: set[bytes] | None = (
            None
            if self.type in (MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY, MapType.ARRAY_OF_MAPS)
            else set()
        )
        budget = 4 * max(self.max_entries, 1) + 16
        cur = None
        nxt = _sys.buffer(ks)
        fd = self.fileno()
        while True:
            try:
                _sys.map_elem(_sys.Cmd.MAP_GET_NEXT_KEY, fd, cur, nxt)
            except OSError as err:
                if err.errno == errno.ENOENT:
                    return
                raise translate("iterate", self.ref, err) from err
            budget -= 1
            if budget < 0:
                raise IterationAborted(
                    f"iterate {self.ref}: the map changed too fast to finish the walk; "
                    f"retry, or dump while writers are paused",
                    errno.EAGAIN,
                )
            key = nxt.raw[:ks]
            cur, nxt = nxt, _sys.buffer(ks)
            if seen is not None:
                if key in seen:
                    continue
                seen.add(key)
            yield key

    __iter__ = keys

    def items(self) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """(key, value) pairs, read batch by batch (BPF_MAP_LOOKUP_BATCH where the kernel
        and the map type have it, GET_NEXT_KEY + LOOKUP otherwise); keys deleted during
        the walk are skipped."""
        return self._split_batches(self.batches())

    def _split_batches(self, batches) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        ks, vs = self.key_size, self.stride * self.ncpus
        split = self._split_value
        for keys, values, count in batches:
            for i in range(count):
                yield keys[i * ks : (i + 1) * ks], split(values[i * vs : (i + 1) * vs])

    def batches(self, delete: bool = False, size: int | None = None) -> Iterator[tuple[bytes, bytes, int]]:
        """Raw (keys, values, count) batches: ``count`` keys back to back, and their values
        at the map's value stride (per-CPU: ``round_up(value_size, 8)`` per possible CPU).
        ``delete`` drains the map: each batch is deleted as it is read (Linux >= 5.6).
        ``size`` caps the elements per batch (default: about 1 MiB of buffers); a hash
        bucket holding more than that still comes whole."""
        if size is not None and not 1 <= size <= MAX_BATCH_SIZE:
            raise UsageError(f"batch size {size}: give 1 to {MAX_BATCH_SIZE:,}")
        self._require(Access.KEYED, "drain" if delete else "iterate")
        if delete and not self.spec.deletable:
            raise UsageError(f"drain {self.ref}: {self.type_label} maps cannot delete elements")
        from . import batch

        return batch.batches(self, delete, size)

    def update_batch(self, keys: bytes, values: bytes, count: int, mode: UpdateMode | int = "any") -> int:
        """Write ``count`` elements from raw buffers (see :meth:`batches` for their shape).

        On failure the exception (MapFull, KeyExists, ...) carries ``done``: how many
        elements went in before it."""
        self._require(Access.KEYED, "update")
        if len(keys) != count * self.key_size or len(values) != count * self.stride * self.ncpus:
            raise UsageError(f"update {self.ref}: batch buffers do not hold {count} elements")
        from . import batch

        return self._writing(lambda: batch.update(self, keys, values, count, _mode_flags(mode)), "update")

    def delete_batch(self, keys: bytes, count: int) -> int:
        """Delete ``count`` keys from a raw buffer; returns how many were there."""
        self._require(Access.KEYED, "delete")
        if not self.spec.deletable:
            raise UsageError(f"delete {self.ref}: {self.type_label} maps cannot delete elements")
        from . import batch

        return self._writing(lambda: batch.delete(self, keys, count), "delete")

    def clear(self) -> int:
        """Remove every element (arrays: zero every value); returns how many there were."""
        self._require(Access.KEYED, "clear")
        if self.spec.deletable:
            return sum(count for _k, _v, count in self.batches(delete=True))
        n = 0
        zero = bytes(self.stride * self.ncpus)
        for keys, _values, count in self.batches():
            self.update_batch(keys, zero * count, count)
            n += count
        return n

    def _writing(self, fn, op: str):
        try:
            return fn()
        except PermissionDenied as err:
            refined = self._refine_write_error(op, err)
            if refined is err:
                raise
            raise refined from err

    def values(self) -> Iterator[bytes | list[bytes]]:
        return (value for _key, value in self.items())

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
        if self.spec.access is Access.BLOOM:
            raise UsageError(
                f"pop {self.ref}: bloom filters cannot give elements back; test membership with peek VALUE"
            )
        vbuf = _sys.buffer(self.value_size)
        self._write("pop", _sys.map_elem, _sys.Cmd.MAP_LOOKUP_AND_DELETE_ELEM, self._fd, None, vbuf)
        return vbuf.raw[: self.value_size]

    def peek(self, value: bytes | None = None) -> bytes | bool:
        """The next element of a queue or stack without removing it (raises Empty).

        For a bloom filter, pass ``value``: True if it may be in the set, False if
        it is certainly not."""
        self._require_keyless("peek")
        if self.spec.access is Access.BLOOM:
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

    @property
    def type_label(self) -> str:
        return map_type_label(int(self.type))

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

    def _require(self, access: Access, op: str) -> None:
        if self._fd < 0:
            raise ValueError(f"{self.ref}: map is closed")
        if self.spec.access is not access and self.type is not MapType.UNSPEC:
            raise UsageError(f"{op} {self.ref}: {access_hint(self.type_label, self.spec.access)}")

    def _require_keyless(self, op: str) -> None:
        if self.spec.access not in (Access.QUEUE, Access.STACK, Access.BLOOM):
            raise UsageError(
                f"{op} {self.ref}: {self.type_label} maps have no {op}; "
                f"push/pop/peek are for queue, stack and bloom_filter maps"
            )
        self.fileno()

    def _key_buffer(self, key: bytes):
        if len(key) != self.key_size:
            raise UsageError(f"key for {self.ref}: {len(key)} bytes given, the map's keys are {self.key_size} bytes")
        return _sys.buffer(key)

    def _encode_value(self, value: object) -> bytes:
        if isinstance(value, (Map, Program)):
            if self.spec.value not in (Value.MAP_ID, Value.PROG_ID):
                raise UsageError(f"value for {self.ref}: {self.type_label} values are data, not maps or programs")
            want = Value.MAP_ID if isinstance(value, Map) else Value.PROG_ID
            if self.spec.value is not want:
                raise UsageError(
                    f"value for {self.ref}: {self.type_label} takes "
                    f"{'a map' if self.spec.value is Value.MAP_ID else 'a program'}"
                )
            value = value.fileno()
        if isinstance(value, int):
            if self.spec.value is Value.BYTES:
                raise UsageError(f"value for {self.ref}: give bytes, not an int")
            return value.to_bytes(4, "little")
        if self.percpu:
            return self._percpu_value(value)
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise UsageError(f"value for {self.ref}: expected bytes, got {type(value).__name__}")
        if len(value) != self.value_size:
            raise UsageError(
                f"value for {self.ref}: {len(value)} bytes given, the map's values are {self.value_size} bytes"
            )
        return bytes(value)

    def _percpu_value(self, value: object) -> bytes:
        values = [value] if isinstance(value, (bytes, bytearray, memoryview)) else list(value)  # type: ignore[call-overload]
        if len(values) == 1:
            values = values * self.ncpus
        if len(values) != self.ncpus:
            raise UsageError(
                f"value for {self.ref}: {len(values)} per-CPU values given, this machine has "
                f"{self.ncpus} possible CPUs; give one value (for all) or {self.ncpus}"
            )
        pad = b"\0" * (self.stride - self.value_size)
        out = bytearray()
        for v in values:
            if len(v) != self.value_size:
                raise UsageError(
                    f"value for {self.ref}: {len(v)} bytes given, the map's values are {self.value_size} bytes"
                )
            out += bytes(v) + pad
        return bytes(out)

    def _split_value(self, raw: bytes) -> bytes | list[bytes]:
        if not self.percpu:
            return raw[: self.value_size]
        s, n = self.stride, self.value_size
        return [raw[i * s : i * s + n] for i in range(self.ncpus)]

    def _call(self, op: str, fn, *args) -> None:
        try:
            fn(*args)
        except OSError as err:
            raise translate(op, self.ref, err) from err

    def _write(self, op: str, fn, *args) -> None:
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
                    f"{op} {self.ref}: the map is frozen (read-only for user space for good); "
                    f"create a new map to write",
                    exc.errno,
                )
        return exc


def access_hint(label: str, access: Access) -> str:
    """Why a map of this access kind cannot be used by key, and what to use instead."""
    if access in (Access.QUEUE, Access.STACK):
        return f"{label} maps have no keys and cannot be iterated; use 'bpfmap peek' or 'bpfmap pop'"
    if access is Access.BLOOM:
        return f"{label} maps have no keys and cannot be iterated; add with 'bpfmap push', test with 'bpfmap peek'"
    if access is Access.STREAM:
        return f"{label} maps carry a stream of records, not entries; they cannot be read by key"
    return f"{label} maps are keyed by kernel objects (sockets, tasks, cgroups) and cannot be read from here"


def _pick_size(label: str, what: str, given: int | None, required: int | None, default: int | None) -> int:
    if required is not None:
        if given is not None and given != required:
            raise UsageError(f"create {label}: {label} maps need a {what} size of {required}, not {given}")
        return required
    if given is None:
        if default is not None:
            return default
        raise UsageError(f"create {label}: give the {what} size in bytes (--{what} N)")
    if given <= 0:
        raise UsageError(f"create {label}: {what} size must be positive, not {given}")
    return given


def _validate_create(
    mtype: MapType,
    s: TypeSpec,
    key_size: int,
    value_size: int,
    max_entries: int,
    flags: MapFlag,
    name: str,
    inner_map: Map | None,
    map_extra: int,
) -> None:
    label = mtype.label
    if not _NAME_RE.match(name):
        raise UsageError(
            f"create {label}: name {quote(name)} must be at most 15 characters of letters, digits, '_' and '.'"
        )
    missing = s.required_flags & ~flags
    if missing:
        raise UsageError(f"create {label}: {label} maps need the flag(s) {','.join(MapFlag(missing).labels())}")
    if max_entries < 0 or max_entries > 0xFFFFFFFF:
        raise UsageError(f"create {label}: max_entries {max_entries} out of range")
    if max_entries == 0 and s.default_max_entries != 0:
        raise UsageError(f"create {label}: max_entries must be at least 1")
    if s.needs_inner_map and inner_map is None:
        raise UsageError(f"create {label}: maps of maps need a template inner map (--inner-map MAP)")
    if not s.needs_inner_map and inner_map is not None:
        raise UsageError(f"create {label}: --inner-map is only for array_of_maps and hash_of_maps")
    if mtype is MapType.LPM_TRIE and not 5 <= key_size <= 4 + 256:
        raise UsageError(
            f"create {label}: the key is a u32 prefix length plus the data, 5..260 bytes; {key_size} given"
        )
    if mtype in (MapType.RINGBUF, MapType.USER_RINGBUF):
        page = os.sysconf("SC_PAGE_SIZE")
        if max_entries < page or max_entries & (max_entries - 1):
            raise UsageError(
                f"create {label}: the size (--max-entries) must be a power of two "
                f"and at least the page size ({page}); {max_entries} given"
            )
    if mtype is MapType.BLOOM_FILTER and not 0 <= map_extra <= 15:
        raise UsageError(f"create {label}: the number of hash functions (map_extra) must be 0..15")
    if mtype in (MapType.STACK_TRACE,) and value_size % 8:
        raise UsageError(f"create {label}: value size must be a multiple of 8 (u64 instruction pointers)")


def _mode_flags(mode: UpdateMode | int) -> int:
    if isinstance(mode, int):
        return mode
    try:
        return _UPDATE_FLAGS[mode]
    except KeyError:
        raise UsageError(f"update mode {mode!r}: choose any, exist or noexist") from None


def _parse_id(ref: str) -> int:
    try:
        value = int(ref[3:], 0)
    except ValueError:
        raise UsageError(f"map reference {quote(ref)}: expected id:N with a number N") from None
    if not 0 < value < 1 << 32:
        raise UsageError(f"map reference {quote(ref)}: ids are 1 to {(1 << 32) - 1}")
    return value


def _id_by_name(name: str) -> int:
    matches = []
    for map_id in map_ids():
        try:
            fd = _sys.get_fd_by_id(_sys.Cmd.MAP_GET_FD_BY_ID, map_id, _sys.BPF_F_RDONLY)
        except OSError:
            continue  # gone meanwhile
        try:
            if _sys.map_info(fd).name.decode(errors="replace") == name:
                matches.append(map_id)
        finally:
            os.close(fd)
    if not matches:
        raise NoSuchObject(
            f"open name:{quote(name, bare=True)}: no map with that name; names are at most 15 characters "
            f"('bpfmap list' shows them)",
            errno.ENOENT,
        )
    if len(matches) > 1:
        ids = ", ".join(f"id:{i}" for i in matches)
        raise UsageError(
            f"open name:{quote(name, bare=True)}: {len(matches)} maps have that name ({ids}); use id:N or a pin"
        )
    return matches[0]


def list_maps(pins: bool = True) -> Iterator[MapInfo]:
    """Info on every map in the system, with pinned paths when ``pins``."""
    by_id: dict[int, list[str]] = {}
    if pins:
        for map_id, path in pinned_maps():
            by_id.setdefault(map_id, []).append(path)
    for map_id in map_ids():
        try:
            fd = _sys.get_fd_by_id(_sys.Cmd.MAP_GET_FD_BY_ID, map_id, _sys.BPF_F_RDONLY)
        except OSError as err:
            if err.errno == errno.ENOENT:
                continue
            raise translate("open", f"id:{map_id}", err) from err
        try:
            info = _info_from_fd(fd)
        finally:
            os.close(fd)
        info.pinned = by_id.get(map_id, [])
        yield info


class Program(_FdOwner):
    """A loaded BPF program, held by fd: what prog_array values point to."""

    def __init__(self, fd: int, ref: str) -> None:
        self._fd = fd
        self.ref = ref
        self.id = _sys.prog_info(fd).id

    @classmethod
    def open(cls, ref: str) -> Program:
        """Open a program by pinned path or ``id:N``."""
        if ref.startswith("id:"):
            try:
                fd = _sys.get_fd_by_id(_sys.Cmd.PROG_GET_FD_BY_ID, _parse_id(ref))
            except OSError as err:
                raise translate("open program", ref, err) from err
            return cls(fd, ref)
        if ref.startswith("name:"):
            raise UsageError(f"open program {ref}: programs are given as a pin path or id:N")
        return cls(open_pinned(ref, "prog"), ref)

    @classmethod
    def from_fd(cls, fd: int, ref: str = "") -> Program:
        if _sys.fd_kind(fd) != "prog":
            raise WrongObjectType(f"{ref or fd}: not a program", errno.EINVAL)
        return cls(fd, ref or f"fd:{fd}")

    @classmethod
    def load(
        cls, prog_type: str | int, code: str | bytes, maps: dict | None = None, name: str = "", license: str = "GPL"
    ) -> Program:
        """Load a program: ``code`` is eBPF assembly (see bpfmap.asm) or instructions
        (bytes); ``maps`` names the maps ``map[NAME]`` refers to.  ``prog_type`` is a
        name (``socket_filter``, ``xdp``, ``raw_tracepoint``...) or a number.  Raises
        AsmError (bad assembly), VerifierRejected (with the verifier's log) or the
        usual KernelError subclasses."""
        from .asm import assemble
        from .errors import VerifierRejected

        ptype = _prog_type(prog_type)
        insns = assemble(code, maps) if isinstance(code, str) else bytes(code)
        if not insns or len(insns) % 8:
            raise UsageError(f"load program: {len(insns)} bytes of instructions; give whole 8-byte instructions")
        what = f"load {ptype.name.lower()} program{' ' + name if name else ''}"
        try:
            fd = _sys.prog_load(
                ptype, insns, license.encode() + b"\0", name.encode()[:15], log_level=1, log_size=1 << 20
            )
        except _sys.VerifierError as err:
            log = err.log.strip()
            if err.errno == errno.EACCES and log or err.errno == errno.EINVAL and log:
                tail = " / ".join(log.splitlines()[-3:])
                raise VerifierRejected(f"{what}: the verifier refused it: {tail}", err.errno, log) from None
            raise translate("load program", name, err) from None
        except OSError as err:
            raise translate("load program", name, err) from err
        return cls(fd, f"prog:{name or fd}")

    def test_run(
        self, data: bytes = b"", repeat: int = 1, data_out: int = 0, ctx: bytes = b"", cpu: int | None = None
    ) -> tuple[int, bytes]:
        """Run the program in the kernel with BPF_PROG_TEST_RUN (Linux 4.12+) on a packet
        ``data`` (socket filter, tc, xdp) or a context ``ctx``; returns (return value,
        data out).  ``cpu`` runs it on that CPU (raw_tracepoint programs only)."""
        flags = 0 if cpu is None else _sys.attrs.BPF_F_TEST_RUN_ON_CPU
        try:
            retval, out, _ = _sys.prog_test_run(self.fileno(), data, data_out, ctx, repeat, flags, cpu or 0)
        except OSError as err:
            raise translate("test run", self.ref, err) from err
        return retval, out


def _prog_type(value: str | int) -> _sys.attrs.ProgType:
    if isinstance(value, int):
        return _sys.attrs.ProgType(value)
    try:
        return _sys.attrs.ProgType[value.upper().replace("-", "_")]
    except KeyError:
        names = ", ".join(t.name.lower() for t in _sys.attrs.ProgType if t.value)
        raise UsageError(f"program type {value!r}: choose one of {names}") from None


__all__ = ["Map", "MapInfo", "Program", "list_maps", "map_ids", "possible_cpus", "BpfmapError"]
