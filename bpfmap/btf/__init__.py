"""BTF: the kernel's type info.  Read a map's BTF to decode it with no layout; write
BTF for the maps bpfmap creates so that every tool can decode them.

Reading needs CAP_SYS_ADMIN (BTF_GET_FD_BY_ID); loading needs CAP_BPF.  Maps get
BTF on Linux >= 4.18, value-only BTF for queue/stack from 5.2.

Public: a map's BTF (:func:`map_btf`, :class:`MapBTF`), BTF objects read from the kernel
(:func:`load_btf_by_id`, :func:`open_by_id`, :func:`parse_btf`, :func:`vmlinux`) or loaded
into it (:class:`BtfSpec`, :func:`spec_for`, :func:`load`, :func:`load_sanitized`), the
format (:class:`BTF`, :class:`Kind`, :class:`BTFError`) and its meaning
(:func:`to_model`, :func:`c_declaration`).  Its two modules, ``wire`` and ``convert``, are
what this package's own code runs on, so importing it loads them.
"""

from __future__ import annotations

import errno
import os

from .. import _sys
from ..errors import BpfmapError, KernelError, UsageError, translate
from ..layout import Layout, TypeCodec
from ..layout.model import Type
from .convert import build_btf, c_declaration, to_model
from .wire import BTF, SANITIZE_LEVELS, BTFError, Kind, _Plain, sanitize, vmlinux


class MapBTF(_Plain):
    """A map's BTF and the ids of its key and value types (0: none)."""

    def __init__(self, btf: BTF, btf_id: int, key_type_id: int, value_type_id: int) -> None:
        self.btf, self.btf_id, self.key_type_id, self.value_type_id = btf, btf_id, key_type_id, value_type_id

    def key_c(self) -> str | None:
        return c_declaration(self.btf, self.key_type_id).rstrip() if self.key_type_id else None

    def value_c(self) -> str | None:
        return c_declaration(self.btf, self.value_type_id).rstrip() if self.value_type_id else None

    def value_has_spin_lock(self) -> bool:
        """Whether the value holds a ``struct bpf_spin_lock`` (at its top level, as the
        kernel requires for BPF_F_LOCK)."""
        if not self.value_type_id:
            return False
        t = self.btf.resolve(self.value_type_id)
        return any(self.btf.resolve(m.type).name == "bpf_spin_lock" for m in t.members)

    def layout(self) -> Layout:
        """Codecs for the sides BTF describes (the other side stays hex); compiled once."""
        cached: Layout | None = self.__dict__.get("_layout")
        if cached is not None:
            return cached
        key = TypeCodec(to_model(self.btf, self.key_type_id, "key BTF")) if self.key_type_id else None
        value = TypeCodec(to_model(self.btf, self.value_type_id, "value BTF")) if self.value_type_id else None
        layout = Layout(key, value, bare=value if not self.key_type_id else None)
        self.__dict__["_layout"] = layout
        return layout


def open_by_id(btf_id: int) -> int:
    """An fd of the kernel's BTF object ``btf_id``, to give a new map the same types
    (BtfSpec(b"", key_id, value_id, fd=...)); the caller closes it."""
    try:
        return _sys.get_fd_by_id(_sys.Cmd.BTF_GET_FD_BY_ID, btf_id)
    except OSError as err:
        raise translate("read BTF", f"id {btf_id}", err) from err


def load_btf_by_id(btf_id: int) -> BTF:
    """The BTF object ``btf_id`` from the kernel, parsed (split on vmlinux when it refers to it)."""
    fd = open_by_id(btf_id)
    try:
        data, _id, _name, kernel = _sys.btf_info(fd)
    except OSError as err:
        raise translate("read BTF", f"id {btf_id}", err) from err
    finally:
        os.close(fd)
    try:
        return parse_btf(data, kernel, _name)
    except BTFError as err:
        raise KernelError(f"read BTF id {btf_id}: {err}", errno.EINVAL) from err


def parse_btf(data: bytes, kernel: bool = False, name: str = "") -> BTF:
    """Parse a BTF blob from the kernel: standalone when it is closed (every type and
    string it refers to is its own), else split on vmlinux (module BTF, or program BTF
    that refers to kernel types)."""
    if kernel and name and name != "vmlinux":
        return BTF(data, base=vmlinux())
    try:
        btf = BTF(data)
        _check_closed(btf)
        return btf
    except BTFError:
        if not os.path.exists("/sys/kernel/btf/vmlinux"):
            raise
        return BTF(data, base=vmlinux())


def _check_closed(btf: BTF) -> None:
    """Raise BTFError if a type names a string or a type id this blob does not have."""
    for tid in btf.ids():
        t = btf.type(tid)  # decodes names: out-of-range string offsets raise here
        refs = [t.type] if t.kind not in (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT, Kind.FWD) else []
        refs += [m.type for m in t.members] + [p for _n, p in t.params]
        if t.kind == Kind.ARRAY:
            refs.append(t.index_type)
        if any(r >= btf.count for r in refs):
            raise BTFError(f"type {tid} refers to a type this BTF does not have")


def map_btf(btf_id: int, key_type_id: int, value_type_id: int) -> MapBTF | None:
    """The BTF of a map, or None when it has none."""
    if not btf_id or not (key_type_id or value_type_id):
        return None
    return MapBTF(load_btf_by_id(btf_id), btf_id, key_type_id, value_type_id)


class BtfSpec(_Plain):
    """BTF to attach to a map at creation: the blob and the key/value type ids in it;
    ``fd`` a BTF object already loaded (shared by several maps; the caller closes it)."""

    def __init__(self, data: bytes, key_type_id: int, value_type_id: int, fd: int = 0) -> None:
        self.data, self.key_type_id, self.value_type_id, self.fd = data, key_type_id, value_type_id, fd


def spec_for(key: Type | None, value: Type | None, key_name: str = "", value_name: str = "") -> BtfSpec:
    data, kid, vid = build_btf(key, value, key_name, value_name)
    return BtfSpec(data, kid, vid)


def load(spec: BtfSpec) -> int:
    """BPF_BTF_LOAD; raises KernelError with the kernel's log line on rejection."""
    try:
        return _sys.btf_load(spec.data, log_size=1 << 16)
    except OSError as err:
        exc = translate("load BTF", "", err)
        log = (err.filename or "").strip().splitlines()
        if log:
            exc = type(exc)(f"load BTF: the kernel refused it: {log[-1]}", err.errno)
        raise exc from err


def load_sanitized(spec: BtfSpec) -> tuple[int, str | None]:
    """BPF_BTF_LOAD of ``spec``; where the kernel refuses it, of the blob with the kinds an
    older kernel lacks rewritten (btf.wire.sanitize, as libbpf does), the newest kind
    first, then the next as well...  Returns the fd and a note naming the kinds rewritten
    (None: loaded as it was).  Raises the first refusal's KernelError when none loads."""
    try:
        return load(spec), None
    except BpfmapError as first:
        kinds: set[Kind] = set()
        for kind in SANITIZE_LEVELS:
            kinds.add(kind)
            try:
                data = sanitize(spec.data, kinds)
            except BTFError:
                break
            if data is None:
                continue
            try:
                fd = load(BtfSpec(data, spec.key_type_id, spec.value_type_id))
            except BpfmapError:
                continue
            names = ", ".join(k.name for k in SANITIZE_LEVELS if k in kinds)
            return fd, f"{first}; loaded it with its {names} types rewritten as an older kernel takes them"
        raise first from None


__all__ = [
    "BTF",
    "BTFError",
    "BtfSpec",
    "MapBTF",
    "Kind",
    "c_declaration",
    "load",
    "load_btf_by_id",
    "load_sanitized",
    "map_btf",
    "open_by_id",
    "parse_btf",
    "spec_for",
    "to_model",
    "vmlinux",
    "BpfmapError",
    "UsageError",
]
