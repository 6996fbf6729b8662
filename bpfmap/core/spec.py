"""MapSpec: the one description of a map, what creating it checks, and the create itself.

A MapSpec says what the kernel needs to create a map (type, key and value size,
max_entries, flags, name, NUMA node, map_extra, an inner map's spec, key/value BTF) and
what a map pinned elsewhere must match to stand in for it (:meth:`MapSpec.compatible`,
as cilium/ebpf's ``MapSpec.Compatible`` and libbpf's ``map_is_reuse_compat``).  The CLI's
``create``, ``Map.create`` and maps from BPF objects all go through it.
"""

from __future__ import annotations

import errno
import os
import re
from typing import TYPE_CHECKING, Any

from .. import _sys
from ..errors import ENOTSUPP, BpfmapError, Param, Unsupported, UsageError, quote, translate, words
from ..types import SPECS, Access, MapFlag, MapType, TypeSpec, Value
from ..types import spec as type_spec
from .values import possible_cpus

if TYPE_CHECKING:
    from ..btf import BtfSpec

# errnos with which the kernel refuses a create it does not support (ENOTSUPP leaks from inside)
_REFUSED = (errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.]{0,15}$")


class MapSpec:
    """A map to create.  ``None`` sizes, entries and flags default from the type (see
    types.SPECS); :meth:`resolved` fills them in and checks the combination.

    ``inner`` is the spec of a map of maps' template inner map; ``btf`` the key and value
    types (:func:`bpfmap.btf.spec_for`).  (A plain class, not a dataclass: importing
    dataclasses costs every command's start-up.)"""

    __slots__ = (
        "type",
        "key_size",
        "value_size",
        "max_entries",
        "flags",
        "name",
        "numa_node",
        "map_extra",
        "inner",
        "btf",
    )

    def __init__(
        self,
        type: MapType | str | int,
        key_size: int | None = None,
        value_size: int | None = None,
        max_entries: int | None = None,
        flags: MapFlag | str | int | None = None,
        name: str = "",
        numa_node: int | None = None,
        map_extra: int = 0,
        inner: MapSpec | None = None,
        btf: BtfSpec | None = None,
    ) -> None:
        """``type`` and ``flags`` by enum, number or name (``"lru_hash"``,
        ``"no_prealloc,rdonly_prog"``)."""
        self.type: MapType = MapType.parse(type) if isinstance(type, str) else MapType(type)
        self.flags: MapFlag | None = (
            MapFlag.parse(flags) if isinstance(flags, str) else None if flags is None else MapFlag(flags)
        )
        self.key_size, self.value_size, self.max_entries = key_size, value_size, max_entries
        self.name, self.numa_node, self.map_extra = name, numa_node, map_extra
        self.inner, self.btf = inner, btf

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MapSpec) and other._fields() == self._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__ if getattr(self, f) not in (None, "", 0))
        return f"MapSpec({shown})"

    def replace(self, **changes: Any) -> MapSpec:
        """A copy with ``changes``."""
        fields = {f: getattr(self, f) for f in self.__slots__}
        fields.update(changes)
        return MapSpec(**fields)

    @classmethod
    def of(cls, spec: MapSpec | MapType | str | int, *args: Any, **fields: Any) -> MapSpec:
        """``spec`` itself (with no other arguments), or a spec made of a type and the
        other fields, positional in the constructor's order or by name."""
        if isinstance(spec, MapSpec):
            if args or fields:
                raise UsageError("give a MapSpec or its fields, not both")
            return spec
        return cls(spec, *args, **fields)

    @property
    def label(self) -> str:
        return self.type.label

    @property
    def kind(self) -> TypeSpec:
        """What the map type can do (types.SPECS)."""
        return type_spec(self.type)

    def resolved(self) -> MapSpec:
        """This spec with every default filled in, checked: UsageError for what the kernel
        would refuse with a bare EINVAL (sizes the type fixes, names, max_entries, flags,
        LPM key sizes, ring sizes, ...)."""
        s, label = self.kind, self.label
        key_size = _pick_size(label, "key", self.key_size, s.key_size, s.default_key_size)
        value_size = _pick_size(label, "value", self.value_size, s.value_size, s.default_value_size)
        max_entries = self.max_entries
        if max_entries is None:
            max_entries = possible_cpus() if s.default_max_entries is None else s.default_max_entries
        flags = s.default_flags if self.flags is None else MapFlag(self.flags)
        if self.numa_node is not None:
            flags |= MapFlag.NUMA_NODE
        done = self.replace(key_size=key_size, value_size=value_size, max_entries=max_entries, flags=flags)
        done._check()
        return done

    def _check(self) -> None:
        s, label = self.kind, self.label
        assert self.key_size is not None and self.value_size is not None and self.max_entries is not None
        flags = MapFlag(self.flags or 0)
        if not _NAME_RE.match(self.name):
            raise UsageError(
                f"create {label}: name {quote(self.name)} must be at most 15 characters of letters, digits, '_' and '.'"
            )
        missing = s.required_flags & ~flags
        if missing:
            raise UsageError(f"create {label}: {label} maps need the flag(s) {','.join(MapFlag(missing).labels())}")
        if not 0 <= self.max_entries <= 0xFFFFFFFF:
            raise UsageError(f"create {label}: max_entries {self.max_entries} out of range")
        if self.max_entries == 0 and s.default_max_entries != 0:
            raise UsageError(f"create {label}: max_entries must be at least 1")
        if self.type is MapType.LPM_TRIE and not 5 <= self.key_size <= 4 + 256:
            raise UsageError(
                f"create {label}: the key is a u32 prefix length plus the data, 5..260 bytes; {self.key_size} given"
            )
        if s.ring:
            page = os.sysconf("SC_PAGE_SIZE")
            if self.max_entries < page or self.max_entries & (self.max_entries - 1):
                raise UsageError(
                    words(
                        f"create {label}: the size (",
                        Param("max_entries"),
                        f") must be a power of two and at least the page size ({page}); {self.max_entries} given",
                    )
                )
        if self.type is MapType.ARENA and self.map_extra % os.sysconf("SC_PAGE_SIZE"):
            raise UsageError(
                words(f"create {label}: the arena's address (", Param("map_extra"), ") must be page-aligned")
            )
        if self.map_extra and s.extra is None:
            takers = " and ".join(f"{t.label}" for t, ts in SPECS.items() if ts.extra)
            raise UsageError(f"create {label}: map_extra is for {takers} maps")
        if self.type is MapType.BLOOM_FILTER and not 0 <= self.map_extra <= 15:
            raise UsageError(f"create {label}: the number of hash functions (map_extra) must be 0..15")
        if self.type is MapType.STACK_TRACE and self.value_size % 8:
            raise UsageError(f"create {label}: value size must be a multiple of 8 (u64 instruction pointers)")

    def compatible(self, info: Any, source: str = "spec") -> list[str]:
        """How a map (its MapInfo) differs from this spec where reuse needs them equal:
        type, key and value size, max_entries, flags, map_extra, each as ``max_entries 64
        (pinned) vs 128 (SOURCE)``.  Empty: compatible."""
        want = self.resolved()
        out = []
        for what, mine, have in (
            ("type", self.label, info.type_name),
            ("key_size", want.key_size, info.key_size),
            ("value_size", want.value_size, info.value_size),
            ("max_entries", want.max_entries, info.max_entries),
            ("map_flags", _flag_text(want.flags), _flag_text(info.flags)),
            ("map_extra", want.map_extra, info.map_extra),
        ):
            if mine != have:
                out.append(f"{what} {have} (pinned) vs {mine} ({source})")
        return out


def _flag_text(flags: Any) -> str:
    return ",".join(MapFlag(flags or 0).labels()) or "none"


def _pick_size(label: str, what: str, given: int | None, required: int | None, default: int | None) -> int:
    if required is not None:
        if given is not None and given != required:
            raise UsageError(f"create {label}: {label} maps need a {what} size of {required}, not {given}")
        return required
    if given is None:
        if default is not None:
            return default
        raise UsageError(words(f"create {label}: give the {what} size in bytes (", Param(f"{what}_size", "N"), ")"))
    if given <= 0:
        raise UsageError(f"create {label}: {what} size must be positive, not {given}")
    return given


def create_fd(spec: MapSpec, inner_fd: int = 0, btf_required: bool = False) -> tuple[int, str | None]:
    """Create the map ``spec`` describes (resolved: see MapSpec.resolved); returns its fd
    and a note when it was created without the BTF asked for (the kernel refused it),
    unless ``btf_required``.  ``inner_fd``: the template map of a map of maps.

    Raises Unsupported when the kernel does not know the type or refuses the combination,
    the usual KernelError subclasses otherwise."""
    s, label = spec.kind, spec.label
    key_size, value_size, max_entries = spec.key_size, spec.value_size, spec.max_entries
    assert key_size is not None and value_size is not None and max_entries is not None, "resolve the spec first"
    if s.needs_inner_map and not inner_fd:
        raise UsageError(
            words(f"create {label}: maps of maps need a template inner map (", Param("inner_map", "MAP"), ")")
        )
    if not s.needs_inner_map and inner_fd:
        raise UsageError(words(f"create {label}: ", Param("inner_map"), " is only for array_of_maps and hash_of_maps"))
    flags = MapFlag(spec.flags or 0)
    btf, note, btf_fd = spec.btf, None, 0
    if s.needs_btf:
        btf = btf or _storage_btf(value_size)
        btf_required = True  # the kernel refuses these maps without it
    if btf is not None:
        if s.value is not Value.BYTES or s.access in (Access.STREAM, Access.NONE):
            note = f"{label} maps cannot carry BTF for their keys and values; created without"
            btf = None
        else:
            from ..btf import load_sanitized

            try:
                btf_fd, note = (btf.fd, None) if btf.fd else load_sanitized(btf)
            except BpfmapError as err:
                if btf_required:
                    raise
                note = f"{err}; created the map without BTF"
                btf = None

    def attempt(with_btf: bool) -> int:
        return _sys.map_create(
            spec,
            inner_map_fd=inner_fd,
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
                f"({errno.errorcode.get(err.errno or 0, err.errno)}); created the map without BTF"
            )
    except OSError as err:
        raise _create_error(spec, flags, btf_required, err) from err
    finally:
        if btf_fd and not (btf is not None and btf.fd):
            os.close(btf_fd)
    return fd, note


def _storage_btf(value_size: int) -> BtfSpec:
    """BTF for a local-storage map made without a layout: an int key (the object's fd)
    and the value as bytes (read back as hex)."""
    from ..btf import spec_for
    from ..layout.model import SCALARS, Bytes

    return spec_for(SCALARS["s32"], Bytes(value_size))


def _create_error(spec: MapSpec, flags: MapFlag, btf_required: bool, err: OSError) -> BpfmapError:
    label, code = spec.label, err.errno or 0
    if code in _REFUSED:
        return Unsupported(
            f"create {label}: the kernel refused a {label} map with key {spec.key_size}, value "
            f"{spec.value_size}, max_entries {spec.max_entries}, flags {','.join(flags.labels()) or 'none'} "
            f"(errno {errno.errorcode.get(code, code)}); this kernel may not support "
            f"{label} maps or this combination{' with this BTF' if btf_required else ''}",
            code,
        )
    if code == errno.E2BIG:
        return Unsupported(
            f"create {label}: key {spec.key_size} / value {spec.value_size} / max_entries {spec.max_entries} is "
            f"too big for a {label} map on this kernel (E2BIG); use smaller sizes",
            code,
        )
    return translate("create", label, err)
